/* An event inside the daemon: reference-counted, immutable once journaled. */
#ifndef OPHOOK_EVENT_H
#define OPHOOK_EVENT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ophook/plugin.h"

struct event;

/* What a plugin gets: the public struct plus the event it views (the host
 * finds it again in event_get).  One per delivery, since `attempt` differs. */
struct event_view {
	struct ophook_event pub;
	struct event *ev;
};

struct event {
	atomic_int refcount;
	struct ophook_event pub; /* strings point below; attempt 0 */
	char *type, *subject, *source, *node;
	int64_t time_ms;
	json_t *payload;         /* the whole payload object (read-only after
				    journaling) */
	char *json;              /* payload serialized, compact */
};

/* A valid event type: 1-64 bytes of [a-z0-9_] in dot-separated parts. */
int event_type_valid(const char *type, const char **why_r);

/* New event; payload (reference stolen, may be NULL) gets the standard
 * fields type, subject, source, node and time added.  The id is set later by
 * event_set_id().  Returns NULL and *why_r on an invalid type or subject. */
struct event *event_new(const char *type, const char *subject,
			const char *source, const char *node, int64_t time_ms,
			json_t *payload, const char **why_r);
/* Set the journal id (also written into the payload as "id") and serialize
 * the payload into ev->json. */
void event_set_id(struct event *ev, int64_t id);
/* Same, when `text` is the payload already serialized without "id" (as
 * journaled): splices the id in instead of serializing again. */
void event_set_id_text(struct event *ev, int64_t id, const char *text);
/* Build an event from a journal row (payload text parsed). NULL on bad
 * JSON. */
struct event *event_from_row(int64_t id, const char *type, const char *subject,
			     const char *source, const char *node,
			     int64_t time_ms, const char *payload);

/* payload as compact JSON text, byte for byte what json_dumps(payload,
 * JSON_COMPACT) gives, but without jansson's per-token callbacks for the
 * usual flat object of strings and integers (anything else goes to
 * json_dumps).  NULL when it cannot be serialized.  Caller frees. */
char *event_payload_dump(json_t *payload);

struct event *event_ref(struct event *ev);
void event_unref(struct event **ev);

/* Fill a per-delivery view of ev for attempt number `attempt`. */
void event_view_init(struct event_view *view, struct event *ev,
		     unsigned attempt);

/* Host function ophook_host.event_get (pub must come from an event_view): a top-level string/number/bool field
 * as text (numbers in a thread-local buffer valid until the next call on
 * the same thread). */
const char *event_get(const struct ophook_event *pub, const char *key);

#endif
