/* Watching the OpenPanel tree: inotify watcher, classifier, snapshot and
 * reconcile.  Produces typed events through engine_submit(). */
#ifndef OPHOOK_WATCH_H
#define OPHOOK_WATCH_H

#include "control.h"

struct engine;
struct entity;
struct watch;

/* Watch config->root and config->watch_extra; run a reconcile at start
 * (changes made while stopped become events with source "reconcile").
 * User and domain events go through ent (may be NULL: to the engine). */
int watch_start(struct engine *e, struct entity *ent, struct watch **w_r,
		const char **error_r);
/* Stop watching; NULLs *w. */
void watch_stop(struct watch **w);
/* Run a full reconcile now (ophookctl reconcile).  cb (may be NULL) gets
 * the number of events it produced when done. */
int watch_reconcile(struct watch *w, void (*cb)(unsigned events, void *ctx),
		    void *ctx);

/* reconcile; ctx: the struct watch, or NULL when the watcher is off (the
 * command then says so). */
extern const struct control_command watch_commands[];

#endif
