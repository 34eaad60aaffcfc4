/* Container events as Podman's and Docker's APIs stream them: one JSON
 * object a line, parsed and validated into a fixed-size struct (whatever a
 * user's containers call themselves is attacker-controlled: names, ids,
 * labels are checked before they go anywhere).  Also the pieces of the
 * container source that need no loop: the catch-up boundary (which events
 * were seen already), the restart-loop counter, kernel OOM lines.  No I/O,
 * no locks: each stream owns its own. */
#ifndef OPHOOK_CTREVENT_H
#define OPHOOK_CTREVENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctrevent_kind {
	CTR_STARTED,
	CTR_STOPPED,
	CTR_DIED,
	CTR_OOM,
	CTR_HEALTH,
};

#define CTR_ID_MAX 64     /* hex digits of a full id */
#define CTR_NAME_MAX 128  /* container names, compose labels */
#define CTR_IMAGE_MAX 255
#define CTR_ACTION_MAX 23

struct ctrevent {
	enum ctrevent_kind kind;
	char action[CTR_ACTION_MAX + 1]; /* the API's status: "died", "die" */
	char id[CTR_ID_MAX + 1];         /* lower-case hex, 12 to 64 */
	char name[CTR_NAME_MAX + 1];
	char image[CTR_IMAGE_MAX + 1];   /* "" when missing or invalid */
	char service[CTR_NAME_MAX + 1];  /* com.docker.compose.service or "" */
	char project[CTR_NAME_MAX + 1];  /* com.docker.compose.project or "" */
	int exit_code;                   /* died: -1 when not given */
	char health[16];                 /* health: "healthy", "unhealthy",
					    "starting"; "" when the event
					    does not say (Podman 4.3) */
	int64_t time_ns;                 /* event time, ns since the epoch */
};

/* Parse one line of /events (Docker) or /libpod/events (Podman).  Returns
 * 0 with *ev filled for the container events that matter (start, stop,
 * died/die, oom, health_status), 1 for anything else (other types and
 * actions: ignored), -EINVAL with *error_r (static) for an object that is
 * not a valid event (bad id, bad name, no time). */
int ctrevent_parse(const char *line, size_t len, struct ctrevent *ev,
		   const char **error_r);

/* The same from an already parsed object. */
int ctrevent_from_json(json_t *obj, struct ctrevent *ev, const char **error_r);

/* The health status in a container's inspect document (State.Health.Status
 * or State.Healthcheck.Status), copied into health (16 bytes); false when
 * there is none or it is not a known word. */
bool ctrevent_inspect_health(json_t *doc, char *health);

/* A container name: 1-128 of [A-Za-z0-9_.-], starting with a letter or
 * digit (Podman's and Docker's own rule). */
bool ctrevent_name_valid(const char *s);
/* A compose label value: 1-128 of [A-Za-z0-9_.-]. */
bool ctrevent_label_valid(const char *s);

/* ---- the catch-up boundary --------------------------------------------
 * The keys (time_ns, id, action) of the events seen within `slack_ns` of
 * the newest one.  A reconnect asks the API for events since newest -
 * slack (ctrseen_since_s), and every key already here is dropped; an event
 * older than the window is dropped too (it was seen before the window
 * moved past it).  Keys are marked journaled once the engine has them;
 * only those are saved, so a crash before journaling fetches them again. */
struct ctrseen_key {
	int64_t ns;
	char id[CTR_ID_MAX + 1];
	char action[CTR_ACTION_MAX + 1];
	bool journaled;
};

struct ctrseen {
	struct ctrseen_key *v;
	size_t n, cap;
	int64_t newest_ns; /* newest seen (0: nothing yet) */
	int64_t floor_ns;  /* events older than this are dropped (0: none) */
	int64_t slack_ns;
	size_t max_keys;   /* the window shrinks past this many keys */
};

void ctrseen_init(struct ctrseen *s, int64_t slack_ns, size_t max_keys);
void ctrseen_clear(struct ctrseen *s);
/* True (and the key added) when the event is new; false when it is a
 * repeat or older than the window. */
bool ctrseen_add(struct ctrseen *s, int64_t ns, const char *id,
		 const char *action);
/* Mark a key journaled (no-op when it left the window). */
void ctrseen_journaled(struct ctrseen *s, int64_t ns, const char *id,
		       const char *action);
/* Whole seconds to pass as since=: newest - slack, or fallback_s when
 * nothing was seen. */
int64_t ctrseen_since_s(const struct ctrseen *s, int64_t fallback_s);
/* The journaled keys as [[ns, id, action], ...]. */
json_t *ctrseen_dump(const struct ctrseen *s);
/* Add keys (as journaled) from ctrseen_dump's array; malformed entries are
 * skipped.  Returns the number added. */
size_t ctrseen_load(struct ctrseen *s, json_t *arr);

/* ---- restart loops ----------------------------------------------------
 * Deaths per container name; a loop is N deaths within a window.  Once
 * reported the name's deaths are forgotten, so the next report needs N new
 * ones. */
struct ctrloop;

struct ctrloop *ctrloop_new(unsigned deaths, int64_t window_ns);
void ctrloop_free(struct ctrloop **l);
/* Count a death of `name` at ns; true when it completes a loop
 * (*count_r: deaths in the window). */
bool ctrloop_death(struct ctrloop *l, const char *name, int64_t ns,
		   unsigned *count_r);
/* {"name": [ns, ...]} and back. */
json_t *ctrloop_dump(const struct ctrloop *l);
void ctrloop_load(struct ctrloop *l, json_t *obj);

/* A kernel log line (/dev/kmsg record text) reporting a memory cgroup OOM
 * kill ("oom-kill:...,oom_memcg=/.../libpod-<id>..." ): copies the 64-hex
 * container id found in its memcg path into id (65 bytes) and returns
 * true. */
bool ctrevent_kmsg_oom(const char *line, size_t len, char *id);

#endif
