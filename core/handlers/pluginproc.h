/* One ophook-plugin-runner process serving a C plugin out of ophookd's
 * process (plugins.NAME.isolation: process), seen from ophookd: start it,
 * hand it deliveries, read back results and the host calls it forwards,
 * and turn its death (a signal, an exit, a kill at the delivery timeout)
 * into a failed delivery naming what happened.  One struct pluginproc per
 * runner process: after a death the plugin host starts a new one.  Loop
 * thread only. */
#ifndef OPHOOK_PLUGINPROC_H
#define OPHOOK_PLUGINPROC_H

#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

#include "handler.h"

struct pluginproc;

/* What the runner said about the plugin before init (its struct
 * ophook_plugin). */
struct pluginproc_hello {
	char *name, *description;
	unsigned abi, flags;
	char **subscriptions; /* NULL-terminated; NULL: every event */
};
void pluginproc_hello_clear(struct pluginproc_hello *h);

/* Callbacks into the plugin host; ctx as given to pluginproc_init. */
struct pluginproc_cbs {
	/* A delivery is over: its result, or its failure when the runner
	 * died (error then says what happened). */
	void (*result)(void *ctx, struct delivery *d, int rc,
		       const char *error);
	void (*log)(void *ctx, int level, const char *msg);
	void (*emit)(void *ctx, const char *type, const char *subject,
		     const char *fields_json);
	void (*own_write)(void *ctx, const char *path);
	/* The runner is gone (after every delivery in flight was reported);
	 * crashed: it died of a signal, exited by itself or was killed at a
	 * timeout, `what` says which.  pp is freed after this returns. */
	void (*died)(void *ctx, struct pluginproc *pp, bool crashed,
		     const char *what);
	/* After died: a delivery that was queued in the dead runner but never
	 * ran, to hand to the next one. */
	void (*requeue)(void *ctx, struct delivery *d);
};

/* Start `runner --fd 3 path` and wait (at most timeout_ms) for its HELLO.
 * 0 with *pp_r and *hello_r (cleared with pluginproc_hello_clear), or
 * -errno with *error_r (malloc'd); the process is then being killed. */
int pluginproc_spawn(uv_loop_t *loop, const char *runner, const char *path,
		     unsigned timeout_ms, struct pluginproc **pp_r,
		     struct pluginproc_hello *hello_r, char **error_r);
/* Send INIT (init_json: the settings and paths, see pluginrunner.c) and
 * wait at most timeout_ms for init() to return; then serve.  0, or -errno
 * with *error_r (malloc'd); on error pp is being killed and freed (no
 * callback). */
int pluginproc_init(struct pluginproc *pp, const char *init_json,
		    unsigned timeout_ms, const struct pluginproc_cbs *cbs,
		    void *ctx, char **error_r);
/* Hand a delivery over (answered through cbs->result). */
void pluginproc_deliver(struct pluginproc *pp, struct delivery *d);
/* d timed out: kill the runner (it hangs). */
void pluginproc_cancel(struct pluginproc *pp, struct delivery *d);
/* Stop: fini, then exit (killed after 2 s); no callback any more, calls
 * in flight are reported with OPHOOK_RETRY first. */
void pluginproc_stop(struct pluginproc **pp);
/* Kill at once (spawned but not wanted). */
void pluginproc_kill(struct pluginproc **pp);
pid_t pluginproc_pid(const struct pluginproc *pp);
/* Deliveries handed over and not answered yet. */
unsigned pluginproc_inflight(const struct pluginproc *pp);

/* "SIGSEGV" for SIGSEGV, "signal N" for others (async-signal-safe). */
const char *pluginproc_signame(int sig);

#endif
