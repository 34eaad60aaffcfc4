/* Private to the hooks subsystem: the exec hooks' handler (hooks_exec.c),
 * one process per delivery.  Types in hooks_int.h. */
#ifndef OPHOOK_HOOKS_EXEC_H
#define OPHOOK_HOOKS_EXEC_H

struct execfile;
struct hooks;

/* Register x's handler "exec:<pattern>.d/<name>" on the bus; order: its
 * place in run-parts order (a priority hint).  Sets x->ok on success. */
void hooks_exec_register(struct execfile *x, unsigned order);
/* Remove x's handler (if registered) and clear x->ok. */
void hooks_exec_unregister(struct execfile *x);
/* Drop a reference to x; the last one frees it. */
void hooks_exec_unref(struct execfile *x);
/* Kill every exec hook process still running or queued (hooks_stop). */
void hooks_exec_kill_runs(struct hooks *hk);

#endif
