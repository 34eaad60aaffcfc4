/* Journal backends (internal to core/journal*.c): the front (journal.c)
 * checks arguments and dispatches every journal.h call to one table of
 * functions, SQLite's (journal_sqlite.c) or MariaDB's (journal_mysql.c).
 * The shared work lives in the front: the event JSON shape, the counts
 * shape, messages.  The front calls a backend only with checked
 * arguments. */
#ifndef OPHOOK_JOURNAL_BACKEND_H
#define OPHOOK_JOURNAL_BACKEND_H

#include "journal.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the front keeps of an open journal: the first member of each
 * backend's own struct, which the front allocates (backend->size bytes,
 * zeroed) and frees. */
struct journal {
	const struct journal_backend *backend;
	char *name;  /* the start of every message: set by open, freed by
		      * the front */
	char *error; /* the last message handed out through error_r */
};

struct journal_backend {
	const char *name; /* journal.backend: "sqlite", "mysql" */
	size_t size;      /* of the backend's struct (struct journal first) */

	/* Make j (zeroed but for backend) an open journal.  On error,
	 * *error_r is a message valid until close; the front then calls
	 * close. */
	int (*open)(struct journal *j, const struct journal_settings *s,
		    const char **error_r);
	/* Free what open made, after a failed open too; not j itself. */
	void (*close)(struct journal *j);

	/* journal_begin (results false) and journal_begin_results. */
	int (*tx_begin)(struct journal *j, bool results, const char **error_r);
	int (*commit)(struct journal *j, const char **error_r);
	void (*rollback)(struct journal *j);

	/* ev->type is set (not empty). */
	int (*append)(struct journal *j, struct journal_event *ev,
		      const char **error_r);
	int (*delivery_add)(struct journal *j, int64_t event_id,
			    const char *handler, const char **error_r);
	int (*delivery_update)(struct journal *j,
			       const struct journal_delivery *d,
			       const char **error_r);
	int (*load_pending_from)(struct journal *j, int64_t first_id,
				 journal_pending_cb *cb, void *ctx,
				 const char **error_r);
	/* handler is not NULL nor empty. */
	int (*load_pending_handler)(struct journal *j, const char *handler,
				    int64_t first_id, journal_pending_cb *cb,
				    void *ctx, const char **error_r);
	/* Objects from journal_event_json. */
	int (*get_event)(struct journal *j, int64_t id, json_t **event_r,
			 const char **error_r);
	/* f is not NULL, f->limit is not 0, and state is f->state parsed
	 * when f->state is not NULL. */
	int (*query)(struct journal *j, const struct journal_filter *f,
		     enum delivery_state state, json_t **events_r,
		     const char **error_r);
	/* An object from journal_counts_new. */
	int (*counts)(struct journal *j, json_t **counts_r,
		      const char **error_r);
	int (*prune)(struct journal *j, int64_t before_ms,
		     unsigned *deleted_r, const char **error_r);
	int64_t (*last_id)(struct journal *j);
};

extern const struct journal_backend journal_sqlite_backend;
extern const struct journal_backend journal_mysql_backend;

/* Set j->error to "NAME: op: message" and, when error_r is not NULL, hand
 * it out.  Returns j->error. */
const char *journal_set_error(struct journal *j, const char **error_r,
			      const char *op, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* The event object of journal_get_event and journal_query from one event
 * row, with an empty "deliveries" array for journal_event_json_delivery.
 * A payload that is not JSON shows as a string.  Caller owns it. */
json_t *journal_event_json(const struct journal_event *ev);
/* Append one delivery row to event's "deliveries".  node: the row's node
 * (MariaDB: "" for a shared delivery, which then also shows claimed_by,
 * NULL for none), or NULL for a journal whose rows have no node. */
void journal_event_json_delivery(json_t *event,
				 const struct journal_delivery *d,
				 const char *node, const char *claimed_by);

/* Append one attempt to the "attempts_log" of event's delivery to handler
 * (the last one of that handler: call after journal_event_json_delivery). */
void journal_event_json_attempt(json_t *event, const char *handler,
				int64_t attempt, int64_t started_ms,
				int64_t duration_us, const char *error);

/* Copy ev and d into *ev_r and *d_r with their strings (NULL stays NULL)
 * in one allocation, returned: the caller frees it when done with the
 * copies.  For rows handed to callbacks that may use the journal. */
char *journal_row_copy(const struct journal_event *ev,
		       const struct journal_delivery *d,
		       struct journal_event *ev_r,
		       struct journal_delivery *d_r);

/* The object of journal_counts with no deliveries yet; add them with
 * journal_counts_add.  Caller owns it. */
json_t *journal_counts_new(int64_t events, int64_t last_id);
/* Add n deliveries of handler in state (a number from the database:
 * unknown states are skipped). */
void journal_counts_add(json_t *counts, const char *handler, int64_t state,
			int64_t n);

#endif
