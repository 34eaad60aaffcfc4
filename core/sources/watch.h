/* Watching the OpenPanel tree: inotify watcher, classifier, snapshot and
 * reconcile.  Produces typed events through engine_submit(). */
#ifndef OPHOOK_WATCH_H
#define OPHOOK_WATCH_H

#include <stddef.h>

#include "control.h"

#include <stdbool.h>

struct engine;
struct entity;
struct watch;

/* Watch config->root and config->watch_extra; run a reconcile at start
 * (changes made while stopped become events with source "reconcile").
 * User and domain events go through ent (may be NULL: to the engine). */
int watch_start(struct engine *e, struct entity *ent, struct watch **w_r,
		const char **error_r);
/* The panel's user contexts (users.server) are now contexts[0..n): watch
 * <paths.home>/<ctx>/crons.ini and backup.env of each (as files: through
 * their folder, never below), stop watching those of contexts gone (their
 * files are looked at once more).  New contexts' files are compared with
 * the snapshot by a reconcile.  Safe on NULL. */
void watch_set_contexts(struct watch *w, const char *const *contexts,
			size_t n);
/* Stop watching; NULLs *w. */
void watch_stop(struct watch **w);
/* Run a full reconcile now (ophookctl reconcile).  cb (may be NULL) gets
 * the number of events it produced when done. */
int watch_reconcile(struct watch *w, void (*cb)(unsigned events, void *ctx),
		    void *ctx);

/* Call cb(events, ctx) once the reconcile running now (the one at start)
 * is done, or at once when none runs.  cb may get events 0 when the
 * watcher stops first. */
void watch_after_reconcile(struct watch *w,
			   void (*cb)(unsigned events, void *ctx), void *ctx);
/* Call fn for every path whose classified facts the snapshot holds (facts
 * as JSON text); fn returns false to stop.  fn must not change the
 * watcher. */
void watch_each_fact(struct watch *w,
		     bool (*fn)(const char *path, const char *facts,
				void *ctx),
		     void *ctx);
/* The OpenPanel root watched (normalized). */
const char *watch_root(const struct watch *w);

/* reconcile; ctx: the struct watch, or NULL when the watcher is off (the
 * command then says so). */
extern const struct control_command watch_commands[];

#endif
