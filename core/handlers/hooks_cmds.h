/* Private to the hooks subsystem: the control commands (hooks_cmds.c);
 * their table, hooks_commands[], is declared in hooks.h. */
#ifndef OPHOOK_HOOKS_CMDS_H
#define OPHOOK_HOOKS_CMDS_H

struct hooks_job;

/* A pre job of a `check` came back (loop thread): record its answer and
 * reply once the last one is in.  Does not free job. */
void hooks_cmds_check_done(struct hooks_job *job);

#endif
