/* Admin hooks in hooks_dir: sandboxed Lua hooks (*.lua) and exec hooks
 * (<pattern>.d/ executables), picked up and reloaded while running, plus
 * pre-stage checks (intents that hooks may deny). */
#ifndef OPHOOK_HOOKS_H
#define OPHOOK_HOOKS_H

#include "control.h"

struct engine;
struct hooks;

/* Load hooks_dir, register one handler per hook, watch for changes. */
int hooks_start(struct engine *e, struct hooks **h_r, const char **error_r);
void hooks_stop(struct hooks **h);
/* check, hooks.list, hooks.lint, hooks.test; ctx: the struct hooks. */
extern const struct control_command hooks_commands[];

#endif
