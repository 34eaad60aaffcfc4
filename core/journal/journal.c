/* The journal's front (see journal.h): argument checks, the shapes of
 * what it hands out (event JSON, counts), delivery state names and
 * retry backoff, and dispatch of every call to the backend chosen at
 * open (journal_backend.h). */
#define _GNU_SOURCE
#include "journal.h"
#include "journal_backend.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_QUERY_DEFAULT_LIMIT 100

static const struct journal_backend *const journal_backends[] = {
	&journal_sqlite_backend,
	&journal_mysql_backend,
};

static const char *const delivery_state_names[] = {
	[DELIVERY_PENDING] = "pending",
	[DELIVERY_DONE] = "done",
	[DELIVERY_FAILED] = "failed",
	[DELIVERY_DEAD] = "dead",
	[DELIVERY_DISCARDED] = "discarded",
};
#define DELIVERY_STATES \
	(sizeof(delivery_state_names) / sizeof(delivery_state_names[0]))

const char *delivery_state_name(enum delivery_state st)
{
	if ((unsigned)st >= DELIVERY_STATES)
		return "unknown";
	return delivery_state_names[st];
}

int delivery_state_parse(const char *s, enum delivery_state *st_r)
{
	for (unsigned i = 0; i < DELIVERY_STATES; i++) {
		if (strcmp(s, delivery_state_names[i]) == 0) {
			*st_r = (enum delivery_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* ---- for the backends ---- */

const char *journal_set_error(struct journal *j, const char **error_r,
			      const char *op, const char *fmt, ...)
{
	char *msg;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	free(j->error);
	j->error = xasprintf("%s: %s: %s",
			     j->name != NULL ? j->name : "journal", op,
			     msg != NULL ? msg : "out of memory");
	free(msg);
	if (error_r != NULL)
		*error_r = j->error;
	return j->error;
}

json_t *journal_event_json(const struct journal_event *ev)
{
	char tbuf[40];
	json_t *obj, *payload;

	time_format_ms(ev->time_ms, tbuf, sizeof(tbuf));
	payload = json_loads(ev->payload, JSON_DECODE_ANY, NULL);
	if (payload == NULL) /* not JSON: show it as it is */
		payload = json_string(ev->payload);
	obj = json_object();
	json_object_set_new(obj, "id", json_integer(ev->id));
	json_object_set_new(obj, "type", json_string(ev->type));
	json_object_set_new(obj, "subject", json_string(ev->subject));
	json_object_set_new(obj, "source", json_string(ev->source));
	json_object_set_new(obj, "node", json_string(ev->node));
	json_object_set_new(obj, "time", json_string(tbuf));
	json_object_set_new(obj, "time_ms", json_integer(ev->time_ms));
	json_object_set_new(obj, "payload",
			    payload != NULL ? payload : json_null());
	json_object_set_new(obj, "deliveries", json_array());
	return obj;
}

void journal_event_json_delivery(json_t *event,
				 const struct journal_delivery *d,
				 const char *node, const char *claimed_by)
{
	json_t *dj = json_object();

	json_object_set_new(dj, "handler", json_string(d->handler));
	if (node != NULL) {
		json_object_set_new(dj, "node", json_string(node));
		if (node[0] == '\0')
			json_object_set_new(dj, "claimed_by",
					    claimed_by != NULL
						    ? json_string(claimed_by)
						    : json_null());
	}
	json_object_set_new(dj, "state",
			    json_string(delivery_state_name(d->state)));
	json_object_set_new(dj, "attempts", json_integer(d->attempts));
	json_object_set_new(dj, "next_ms", json_integer(d->next_ms));
	json_object_set_new(dj, "last_error",
			    d->last_error != NULL ? json_string(d->last_error)
						  : json_null());
	json_object_set_new(dj, "duration_us", json_integer(d->duration_us));
	json_object_set_new(dj, "attempts_log", json_array());
	json_array_append_new(json_object_get(event, "deliveries"), dj);
}

void journal_event_json_attempt(json_t *event, const char *handler,
				int64_t attempt, int64_t started_ms,
				int64_t duration_us, const char *error)
{
	json_t *dels = json_object_get(event, "deliveries"), *dj = NULL;

	for (size_t i = json_array_size(dels); i > 0; i--) {
		json_t *d = json_array_get(dels, i - 1);
		const char *h = json_string_value(json_object_get(d, "handler"));

		if (h != NULL && strcmp(h, handler) == 0) {
			dj = d;
			break;
		}
	}
	if (dj == NULL)
		return;
	json_array_append_new(
		json_object_get(dj, "attempts_log"),
		json_pack("{s:I,s:I,s:I,s:o}", "attempt", (json_int_t)attempt,
			  "started_ms", (json_int_t)started_ms, "duration_us",
			  (json_int_t)duration_us, "error",
			  error != NULL ? json_string(error) : json_null()));
}

char *journal_row_copy(const struct journal_event *ev,
		       const struct journal_delivery *d,
		       struct journal_event *ev_r,
		       struct journal_delivery *d_r)
{
	const char *src[7] = { ev->type, ev->subject, ev->source, ev->node,
			       ev->payload, d->handler, d->last_error };
	size_t len[7], total = 0;
	char *strings, *p;

	for (int i = 0; i < 7; i++) {
		len[i] = src[i] != NULL ? strlen(src[i]) + 1 : 0;
		total += len[i];
	}
	*ev_r = *ev;
	*d_r = *d;
	p = strings = xmalloc(total > 0 ? total : 1);
	const char **dst[7] = { &ev_r->type, &ev_r->subject, &ev_r->source,
				&ev_r->node, &ev_r->payload, &d_r->handler,
				&d_r->last_error };
	for (int i = 0; i < 7; i++) {
		if (src[i] == NULL) {
			*dst[i] = NULL;
			continue;
		}
		memcpy(p, src[i], len[i]);
		*dst[i] = p;
		p += len[i];
	}
	return strings;
}

/* {"pending":0,"done":0,"failed":0,"dead":0} */
static json_t *journal_state_counts(void)
{
	json_t *obj = json_object();

	for (unsigned i = 0; i < DELIVERY_STATES; i++)
		json_object_set_new(obj, delivery_state_names[i],
				    json_integer(0));
	return obj;
}

json_t *journal_counts_new(int64_t events, int64_t last_id)
{
	json_t *counts = json_object();

	json_object_set_new(counts, "events", json_integer(events));
	json_object_set_new(counts, "last_id", json_integer(last_id));
	json_object_set_new(counts, "deliveries", journal_state_counts());
	json_object_set_new(counts, "handlers", json_object());
	return counts;
}

/* obj[name] += n */
static void journal_counts_inc(json_t *obj, const char *name, int64_t n)
{
	json_t *old = json_object_get(obj, name);

	json_object_set_new(obj, name,
			    json_integer(json_integer_value(old) + n));
}

void journal_counts_add(json_t *counts, const char *handler, int64_t state,
			int64_t n)
{
	json_t *handlers = json_object_get(counts, "handlers");
	const char *name;
	json_t *h;

	if (state < 0 || (uint64_t)state >= DELIVERY_STATES)
		return; /* not written by this version */
	name = delivery_state_names[state];
	h = json_object_get(handlers, handler);
	if (h == NULL) {
		h = journal_state_counts();
		json_object_set_new(handlers, handler, h);
	}
	journal_counts_inc(h, name, n);
	journal_counts_inc(json_object_get(counts, "deliveries"), name, n);
}

/* ---- open and close ---- */

int journal_open(const struct journal_settings *s, struct journal **j_r,
		 const char **error_r)
{
	/* There is no journal left to own an open error: keep it per
	 * thread. */
	static _Thread_local char open_error[600];
	const char *name = s->backend != NULL ? s->backend : "sqlite";
	const struct journal_backend *b = NULL;
	const char *error = NULL;
	struct journal *j;
	int ret;

	for (size_t i = 0;
	     i < sizeof(journal_backends) / sizeof(journal_backends[0]); i++)
		if (strcmp(journal_backends[i]->name, name) == 0)
			b = journal_backends[i];
	if (b == NULL) {
		snprintf(open_error, sizeof(open_error),
			 "unknown journal backend \"%.40s\" (sqlite, mysql)",
			 name);
		*error_r = open_error;
		return -EINVAL;
	}
	j = xcalloc(1, b->size);
	j->backend = b;
	ret = b->open(j, s, &error);
	if (ret < 0) {
		snprintf(open_error, sizeof(open_error), "%s",
			 error != NULL ? error : strerror(-ret));
		*error_r = open_error;
		journal_close(&j);
		return ret;
	}
	*j_r = j;
	return 0;
}

void journal_close(struct journal **jp)
{
	struct journal *j = *jp;

	if (j == NULL)
		return;
	*jp = NULL;
	j->backend->close(j);
	free(j->error);
	free(j->name);
	free(j);
}

/* ---- transactions ---- */

int journal_begin(struct journal *j, const char **error_r)
{
	return j->backend->tx_begin(j, false, error_r);
}

int journal_begin_results(struct journal *j, const char **error_r)
{
	return j->backend->tx_begin(j, true, error_r);
}

int journal_commit(struct journal *j, const char **error_r)
{
	return j->backend->commit(j, error_r);
}

void journal_rollback(struct journal *j)
{
	j->backend->rollback(j);
}

/* ---- writing ---- */

int journal_append(struct journal *j, struct journal_event *ev,
		   const char **error_r)
{
	if (ev->type == NULL || ev->type[0] == '\0') {
		journal_set_error(j, error_r, "append", "event without a type");
		return -EINVAL;
	}
	return j->backend->append(j, ev, error_r);
}

int journal_delivery_add(struct journal *j, int64_t event_id,
			 const char *handler, const char **error_r)
{
	return j->backend->delivery_add(j, event_id, handler, error_r);
}

int journal_delivery_update(struct journal *j,
			    const struct journal_delivery *d,
			    const char **error_r)
{
	return j->backend->delivery_update(j, d, error_r);
}

/* ---- reading back ---- */

int journal_load_pending(struct journal *j, journal_pending_cb *cb, void *ctx,
			 const char **error_r)
{
	return journal_load_pending_from(j, 0, cb, ctx, error_r);
}

int journal_load_pending_from(struct journal *j, int64_t first_id,
			      journal_pending_cb *cb, void *ctx,
			      const char **error_r)
{
	return j->backend->load_pending_from(j, first_id, cb, ctx, error_r);
}

int journal_load_pending_handler(struct journal *j, const char *handler,
				 int64_t first_id, journal_pending_cb *cb,
				 void *ctx, const char **error_r)
{
	if (handler == NULL || handler[0] == '\0') {
		journal_set_error(j, error_r, "load pending",
				  "no handler named");
		return -EINVAL;
	}
	return j->backend->load_pending_handler(j, handler, first_id, cb, ctx,
						error_r);
}

int journal_get_event(struct journal *j, int64_t id, json_t **event_r,
		      const char **error_r)
{
	return j->backend->get_event(j, id, event_r, error_r);
}

int journal_query(struct journal *j, const struct journal_filter *f,
		  json_t **events_r, const char **error_r)
{
	struct journal_filter q = { 0 };
	enum delivery_state state = DELIVERY_PENDING;

	if (f != NULL)
		q = *f;
	if (q.state != NULL && delivery_state_parse(q.state, &state) < 0) {
		journal_set_error(j, error_r, "query",
				  "unknown delivery state \"%.40s\" (pending, "
				  "done, failed, dead, discarded)",
				  q.state);
		return -EINVAL;
	}
	if (q.limit == 0)
		q.limit = JOURNAL_QUERY_DEFAULT_LIMIT;
	return j->backend->query(j, &q, state, events_r, error_r);
}

/* ---- status and maintenance ---- */

int journal_counts(struct journal *j, json_t **counts_r,
		   const char **error_r)
{
	return j->backend->counts(j, counts_r, error_r);
}

int journal_prune(struct journal *j, int64_t before_ms, unsigned *deleted_r,
		  const char **error_r)
{
	return j->backend->prune(j, before_ms, deleted_r, error_r);
}

int64_t journal_last_id(struct journal *j)
{
	return j->backend->last_id(j);
}

/* ---- retries ---- */

unsigned journal_backoff_ms(unsigned base_ms, unsigned max_ms,
			    unsigned attempt)
{
	static _Thread_local unsigned seed;
	static _Thread_local bool seeded;
	uint64_t delay = base_ms;
	unsigned jitter_max;

	if (attempt > 1) {
		unsigned shift = attempt - 1;

		/* 2^32 * UINT_MAX still fits 64 bits; beyond, it is capped */
		delay = shift >= 32 ? UINT64_MAX : (uint64_t)base_ms << shift;
	}
	if (delay > max_ms)
		delay = max_ms;
	jitter_max = (unsigned)(delay / 10);
	if (jitter_max == 0)
		return (unsigned)delay;
	if (!seeded) {
		if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(seed))
			seed = (unsigned)time(NULL) ^ (unsigned)getpid();
		seeded = true;
	}
	return (unsigned)delay -
	       (unsigned)((unsigned)rand_r(&seed) % (jitter_max + 1));
}
