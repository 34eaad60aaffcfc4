/* The container source: one event stream per Podman (libpod) or Docker API
 * socket, root's and each hosting user's, turned into container.started,
 * container.stopped, container.died, container.oom,
 * container.health_changed and the derived container.restart_loop, each
 * attributed to the user whose socket it came from (container names repeat
 * for every user: only the socket or uid tells whose a container is).
 *
 * Each stream runs in a thread of its own (libcurl over the Unix socket,
 * GET /v4.0.0/libpod/events or /events, streaming JSON lines) and posts
 * parsed, validated events to the loop through a uv_async.  On the loop
 * they are deduplicated against the catch-up window (ctrevent.h), enriched
 * with the user (uid -> owner of <home_dir>/<ctx> -> the panel row) and
 * submitted.  A reconnect, a restart of ophookd or of a user's Podman asks
 * for the events since the last one seen (minus a slack) and drops what was
 * seen: the window's journaled keys are saved in
 * <state_dir>/containers.json and recovered from the journal at start.
 *
 * Sockets: containers.sockets (configured), containers.root_socket (uid 0)
 * and, rescanned every scan_ms, <run_user_dir>/<uid>/podman/podman.sock
 * and <run_user_dir>/<uid>/docker.sock.  Loop thread only, except the
 * stream threads' own curl handles. */
#ifndef OPHOOK_CONTAINERS_H
#define OPHOOK_CONTAINERS_H

#include <jansson.h>

struct engine;
struct containers;

/* Start the source for engine e (settings from its config's `containers`
 * section): load the saved window, recover journaled keys, open the
 * kernel log, start a stream per socket and the rescan timer.  Returns 0
 * or -errno with *error_r (static). */
int containers_start(struct engine *e, struct containers **c_r,
		     const char **error_r);

/* Stop the streams (threads joined), submit what they had posted, save
 * the window; NULLs *c.  Safe on NULL. */
void containers_stop(struct containers **c);

/* The streams as JSON: [{socket, uid, ctx, api, connected, events,
 * duplicates, errors, last_error}].  Caller owns it. */
json_t *containers_status(struct containers *c);

#endif
