/* The panel database (SQLite by default, MySQL/MariaDB for real): owner
 * enrichment of events, the DB poller (user.suspended, user.plan_changed,
 * ...) and OpenAdmin's users.db (admin.* events). */
#ifndef OPHOOK_PANELDB_H
#define OPHOOK_PANELDB_H

#include <jansson.h>

struct engine;
struct entity;
struct paneldb;

/* Connect (off the loop thread), load the domain -> user map, start the
 * poller, register the enricher (engine_set_enricher) and what ent (may
 * be NULL) asks of the DB; user events go through ent. */
int paneldb_start(struct engine *e, struct entity *ent, struct paneldb **p_r,
		  const char **error_r);
void paneldb_stop(struct paneldb **p);

/* Tell fn the panel's user contexts (users.server, sorted, each once): at
 * once when a snapshot is known (loaded from state_dir or polled), then
 * after every committed poll that changed the set.  fn NULL: stop
 * telling.  The array and its strings are valid during the call only.
 * Safe on p NULL. */
typedef void paneldb_contexts_fn(const char *const *contexts, size_t n,
				 void *ctx);
void paneldb_on_contexts(struct paneldb *p, paneldb_contexts_fn *fn,
			 void *ctx);

/* Run a read-only query (SELECT only; anything else is refused) with
 * positional parameters (JSON array of strings/numbers/null, may be NULL).
 * Blocking: call it from a worker thread, never the loop thread.  Rows come
 * back as a JSON array of objects.  0 or -errno with *error_r (malloc'd). */
int paneldb_query(struct paneldb *p, const char *sql, json_t *params,
		  json_t **rows_r, char **error_r);

#endif
