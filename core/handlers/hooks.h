/* Admin hooks in hooks_dir: sandboxed Lua hooks (*.lua) and exec hooks
 * (<pattern>.d/ executables), picked up and reloaded while running, plus
 * pre-stage checks (intents that hooks may deny). */
#ifndef OPHOOK_HOOKS_H
#define OPHOOK_HOOKS_H

#include <jansson.h>

#include "control.h"

struct engine;
struct hooks;

/* Run a read-only panel DB query (a worker thread calls it): rows as a JSON
 * array of objects; 0 or -errno with *error_r (malloc'd). */
typedef int hooks_query_fn(void *ctx, const char *sql, json_t *params,
			   json_t **rows_r, char **error_r);

/* What hooks get from outside the bus (the daemon fills it in). */
struct hooks_deps {
	hooks_query_fn *db_query; /* NULL: no panel database */
	void *db_ctx;
};

/* Load hooks_dir, register one handler per hook, watch for changes.
 * deps (copied, may be NULL). */
int hooks_start(struct engine *e, const struct hooks_deps *deps,
		struct hooks **h_r, const char **error_r);
void hooks_stop(struct hooks **h);
/* check, hooks.list, hooks.lint, hooks.test; ctx: the struct hooks. */
extern const struct control_command hooks_commands[];

#endif
