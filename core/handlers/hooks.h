/* Admin hooks in hooks_dir: sandboxed Lua hooks (*.lua) and exec hooks
 * (<pattern>.d/ executables), picked up and reloaded while running, plus
 * pre-stage checks (intents that hooks may deny). */
#ifndef OPHOOK_HOOKS_H
#define OPHOOK_HOOKS_H

#include <jansson.h>

#include "control.h"

struct engine;
struct hooks;

/* A read-only query on the panel DB for Lua's ophook.db.query, called from
 * a hook's thread: params is a JSON array (borrowed); 0 with *rows_r (a
 * JSON array of row objects, caller owns it) or -errno with *error_r
 * (malloc'd). */
typedef int hooks_query_fn(void *ctx, const char *sql, json_t *params,
			   json_t **rows_r, char **error_r);

/* What the hooks need from other subsystems, given by the caller (hooks
 * reach the rest of the daemon only through this and the bus API). */
struct hooks_deps {
	hooks_query_fn *db_query; /* NULL: ophook.db.query answers "no panel
				     database" */
	void *db_ctx;
};

/* Load hooks_dir, register one handler per hook on the bus `e`, watch for
 * changes.  deps is copied.  Returns 0 (a missing hooks_dir is not an
 * error) with *h_r set. */
int hooks_start(struct engine *e, const struct hooks_deps *deps,
		struct hooks **h_r, const char **error_r);
/* Unregister every hook's handler, stop the hook threads and processes;
 * NULLs *h. */
void hooks_stop(struct hooks **h);
/* The hooks in error, for status: [{"name":"lua:x.lua","state":"error"|
 * "disabled"|"refused","error":".."}]: a Lua file with no version running
 * (it failed to load, or was disabled), an exec file refused.  A Lua file
 * whose newer version failed while the older one runs is not in error.
 * Caller owns it; safe on NULL (an empty array). */
json_t *hooks_errors(struct hooks *h);
/* check, hooks.list, hooks.lint, hooks.test; ctx: the struct hooks. */
extern const struct control_command hooks_commands[];

#endif
