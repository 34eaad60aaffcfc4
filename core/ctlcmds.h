/* The built-in control commands: status, events, emit, tail, replay.
 * Also a small extension of control.h that long-running commands need. */
#ifndef OPHOOK_CTLCMDS_H
#define OPHOOK_CTLCMDS_H

#include <stdbool.h>

#include "control.h"

struct engine;

/* Register the built-in commands on c (called by engine_start after
 * control_start).  Safe with c == NULL (does nothing). */
void ctlcmds_register(struct engine *e, struct control *c);

/* Called once (loop thread) when the client of a pending reply goes away
 * (disconnect or control_stop).  The reply is detached: answering or ending
 * it only frees it, and the callback should do so (or arrange it). */
typedef void control_reply_gone_fn(struct control_reply *reply, void *ctx);
/* Set (fn NULL: clear) the gone callback of a pending reply. */
void control_reply_on_gone(struct control_reply *reply,
			   control_reply_gone_fn *fn, void *ctx);
/* True when the reply's client is gone or closing. */
bool control_reply_gone(const struct control_reply *reply);

#endif
