/* The daemon: builds every subsystem around the bus, starts them, reloads
 * the config on SIGHUP, and owns the order in which they stop (as
 * OpenSMTPD's parent does).  The only place that knows both the sources
 * (watcher, panel DB) and the handlers (plugins, hooks). */
#ifndef OPHOOK_DAEMON_H
#define OPHOOK_DAEMON_H

#include <uv.h>

#include "config.h"

struct daemon;

/* Open the journal under config->state_dir (or on MariaDB) and create the
 * bus and the plugin host on `loop`.  config is owned by the daemon from
 * now on (also on failure).  0 or -errno with *error_r. */
int daemon_new(uv_loop_t *loop, struct config *config, struct daemon **d_r,
	       const char **error_r);
/* Load plugins and hooks, connect the panel DB, resume pending deliveries,
 * start the cluster, the control socket, the metrics endpoint and the
 * watcher.  Fails only when the control socket cannot listen. */
int daemon_start(struct daemon *d, const char **error_r);
/* Stop in order: sources and the control socket first (no new events),
 * then wait for running deliveries (10 s at most), then hooks, plugins,
 * the cluster, the bus and the journal.  cb(ctx) runs when all is closed;
 * the loop then runs out. */
void daemon_stop(struct daemon *d, void (*cb)(void *ctx), void *ctx);
/* Reload the config file (SIGHUP): log level, plugins disabled. */
int daemon_reload(struct daemon *d, const char **error_r);
/* Free what is left once the loop has run out; NULLs *d. */
void daemon_free(struct daemon **d);

#endif
