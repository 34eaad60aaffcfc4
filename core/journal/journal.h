/* The durable journal: an event row per event and a delivery row per
 * (event, handler).  Nothing is dispatched before its rows are committed.
 * Used from the loop thread only.  A front (journal.c) over a backend:
 * SQLite in WAL mode (journal_sqlite.c, the default) or MariaDB/MySQL
 * (journal_mysql.c, which adds what a cluster of nodes needs).
 *
 * Errors: functions return 0 or -errno and set *error_r to a message owned by
 * the journal, valid until the next journal call. */
#ifndef OPHOOK_JOURNAL_H
#define OPHOOK_JOURNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

enum delivery_state {
	DELIVERY_PENDING = 0, /* not yet run, or running */
	DELIVERY_DONE = 1,    /* handler succeeded */
	DELIVERY_FAILED = 2,  /* failed; retried at next_ms */
	DELIVERY_DEAD = 3,    /* gave up after max attempts */
	DELIVERY_DISCARDED = 4, /* given up by hand (ophookctl discard): kept
				   for the record, never retried, pruned
				   like a done one */
};

/* "pending" "done" "failed" "dead" "discarded"; parse returns -EINVAL on
 * others. */
const char *delivery_state_name(enum delivery_state st);
int delivery_state_parse(const char *s, enum delivery_state *st_r);

struct journal;

struct journal_event {
	int64_t id;          /* set by journal_append */
	const char *type;
	const char *subject;
	const char *source;
	const char *node;
	int64_t time_ms;
	const char *payload; /* JSON object text */
};

struct journal_delivery {
	int64_t event_id;
	const char *handler;
	enum delivery_state state;
	unsigned attempts;
	int64_t next_ms;      /* when a failed delivery may run again */
	const char *last_error;
	int64_t duration_us;  /* of the last attempt */
	/* journal_delivery_update: the wall clock ms this attempt started,
	 * or 0 when the update is no attempt (retry, discard): an attempt
	 * also goes to the delivery's history of attempts */
	int64_t started_ms;
};

/* The history kept per delivery: its last JOURNAL_ATTEMPTS_KEEP attempts
 * (failed ones; the attempt that succeeded may make it one more). */
#define JOURNAL_ATTEMPTS_KEEP 20

struct jmysql_settings;

/* Which backend journal_open uses, and its settings. */
struct journal_settings {
	const char *backend; /* "sqlite" (also NULL) or "mysql" */
	/* sqlite: the database file, created if missing */
	const char *path;
	/* sqlite: PRAGMA synchronous=FULL (every commit fsynced) instead of
	 * NORMAL */
	bool sync_full;
	/* mysql: the server, database and node name (journal_mysql.h) */
	const struct jmysql_settings *mysql;
};

/* Open (create) the journal on the backend s->backend names; -EINVAL for
 * an unknown name.  On error *error_r is a message valid until the next
 * journal_open of the thread. */
int journal_open(const struct journal_settings *s, struct journal **j_r,
		 const char **error_r);
/* Close; NULLs *j.  Safe on NULL. */
void journal_close(struct journal **j);

/* Group commit: everything between begin and commit is one transaction. */
int journal_begin(struct journal *j, const char **error_r);
/* A transaction of delivery updates only (no journal_append in it): with
 * sync full it commits without waiting for the disk.  Losing it to a power
 * cut only runs those deliveries again (at least once); the next commit
 * with events syncs the log up to and including it. */
int journal_begin_results(struct journal *j, const char **error_r);
int journal_commit(struct journal *j, const char **error_r);
void journal_rollback(struct journal *j);

/* Insert an event row; sets ev->id.  Within a transaction. */
int journal_append(struct journal *j, struct journal_event *ev,
		   const char **error_r);
/* Insert a pending delivery row for (event_id, handler). */
int journal_delivery_add(struct journal *j, int64_t event_id,
			 const char *handler, const char **error_r);
/* Update a delivery row's state, attempts, next_ms, last_error (NULL keeps
 * none), duration_us; with d->started_ms, add the attempt (number
 * d->attempts, started_ms, duration_us, last_error) to the delivery's
 * history, in the same transaction. */
int journal_delivery_update(struct journal *j,
			    const struct journal_delivery *d,
			    const char **error_r);

/* Call cb for every delivery in state pending or failed, with its event, in
 * event id order (then handler name).  cb returns 0 to go on.  Pointers are
 * valid during the call only. */
typedef int journal_pending_cb(const struct journal_event *ev,
			       const struct journal_delivery *d, void *ctx);
int journal_load_pending(struct journal *j, journal_pending_cb *cb, void *ctx,
			 const char **error_r);

/* Same, from event id first_id on; cb returning > 0 stops (not an
 * error). */
int journal_load_pending_from(struct journal *j, int64_t first_id,
			      journal_pending_cb *cb, void *ctx,
			      const char **error_r);

/* The backlog of one handler: call cb for each of its deliveries in state
 * pending or failed (the MariaDB journal: this node's rows), with its
 * event, in event id order from event id first_id on; cb returning > 0
 * stops (not an error).  The engine refills each handler's in-memory
 * window with it, so a handler's backlog is read without walking the
 * rows of the others.  -EINVAL when handler is NULL or empty. */
int journal_load_pending_handler(struct journal *j, const char *handler,
				 int64_t first_id, journal_pending_cb *cb,
				 void *ctx, const char **error_r);

/* One event as a JSON object {id,type,subject,source,node,time,payload:{..},
 * deliveries:[{handler,state,attempts,next_ms,last_error,duration_us,
 * attempts_log:[{attempt,started_ms,duration_us,error}]}]} (attempts_log
 * oldest first; attempt numbers start again at 1 after a retry).
 * -ENOENT when there is no such id.  Caller owns *event_r. */
int journal_get_event(struct journal *j, int64_t id, json_t **event_r,
		      const char **error_r);

struct journal_filter {
	const char *type;     /* glob pattern on type, or NULL */
	const char *subject;  /* exact subject, or NULL */
	const char *state;    /* events with at least one delivery in this
				 state, or NULL */
	int64_t since_ms;     /* events at or after this time, or 0 */
	int64_t after_id;     /* events with id > after_id, or 0 */
	int64_t until_ms;     /* events before this time, or 0 */
	int64_t before_id;    /* events with id < before_id, or 0 */
	const char *user;     /* events whose payload's user is this, or NULL */
	unsigned limit;       /* newest `limit` events, 0 = 100 */
};
/* Matching events, oldest first, as a JSON array of objects shaped like
 * journal_get_event's.  Caller owns *events_r. */
int journal_query(struct journal *j, const struct journal_filter *f,
		  json_t **events_r, const char **error_r);

/* Counts for status: {"events":N,"last_id":N,"deliveries":{"pending":N,..},
 * "handlers":{"name":{"pending":N,"done":N,"failed":N,"dead":N}}}. */
int journal_counts(struct journal *j, json_t **counts_r,
		   const char **error_r);

/* Delete events older than before_ms whose deliveries are all done or
 * discarded (or that have none); *deleted_r gets the number of events removed. */
int journal_prune(struct journal *j, int64_t before_ms, unsigned *deleted_r,
		  const char **error_r);

/* The largest event id in the journal (0 when empty). */
int64_t journal_last_id(struct journal *j);

/* Backoff before attempt `attempt`+1 after `attempt` failures (attempt >= 1):
 * base * 2^(attempt-1), capped at max, with up to 10% jitter subtracted. */
unsigned journal_backoff_ms(unsigned base_ms, unsigned max_ms,
			    unsigned attempt);

#endif
