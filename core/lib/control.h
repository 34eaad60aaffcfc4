/* The control socket: a Unix stream socket speaking JSON lines, open to root
 * and to members of `socket_group` (checked with SO_PEERCRED).
 *
 * Protocol (one request per line, UTF-8 JSON, at most 1 MiB a line):
 *   request:  {"cmd":"events","args":["--type","domain.*"],"json":true}
 *   response: {"ok":true,"result":<any JSON>,"text":"human-readable table",
 *              "exit":0}
 *             {"ok":false,"error":"message","exit":2}
 * `args` are the words that followed the command on ophookctl's command
 * line; every command parses its own.  Streaming commands (tail) send one
 * {"event":{...}} line per event until the client closes.
 * Each subsystem lists its commands in one table,
 *   const struct control_command NAME_commands[] = {{"status", fn}, ..., {0}};
 * next to the code they drive, and the daemon registers the tables with
 * control_register_table() (grep '_commands\[\]' finds them all). */
#ifndef OPHOOK_CONTROL_H
#define OPHOOK_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>
#include <uv.h>

struct control;
struct control_reply;

/* A command handler (loop thread).  args: JSON array of strings; req: the
 * whole request.  Reply now or later with control_reply_*(); exactly once. */
typedef void control_cmd_fn(struct control_reply *reply, json_t *args,
			    json_t *req, void *ctx);

/* One command of a subsystem's table; the table ends with {NULL, NULL}. */
struct control_command {
	const char *name;
	control_cmd_fn *fn;
};

/* Listen on the Unix socket `path` on `loop` (replacing a stale socket
 * file), open to root and to members of socket_group (NULL: root only). */
int control_start(uv_loop_t *loop, const char *path, const char *socket_group,
		  struct control **c_r, const char **error_r);
/* Limits against clients that hold descriptors or memory: at most
 * max_clients at once (a client over it gets an error line and is
 * closed; one log line an episode; root has 4 places more), a client with nothing pending that
 * sends nothing for idle_ms is closed, and so is one that leaves a request
 * line unfinished, or its replies unread, for request_ms.  0 keeps the
 * default (64 clients, 300 s, 30 s).  Safe with c == NULL. */
void control_set_limits(struct control *c, unsigned max_clients,
			unsigned idle_ms, unsigned request_ms);
/* May a peer with uid/gid use a socket open to root and `group` (when
 * has_group)?  Root always; others when group is their primary or a
 * supplementary group.  (The console's Unix socket checks the same.) */
bool control_peer_allowed(uid_t uid, gid_t gid, bool has_group, gid_t group);
/* Close the socket and every client; NULLs *c. */
void control_stop(struct control **c);

/* Add (or replace) command `name` ("status", "check", "hooks.lint": a
 * two-word command line "hooks lint" arrives as "hooks.lint" when that
 * name is registered, else as "hooks" with "lint" in args). */
void control_register(struct control *c, const char *name,
		      control_cmd_fn *fn, void *ctx);

/* Register every command of `cmds` with ctx.  Safe with c == NULL. */
void control_register_table(struct control *c,
			    const struct control_command *cmds, void *ctx);
/* The commands (registered names: "status", "hooks.test") that a peer who
 * is not root (a socket_group member) may run; every other command answers
 * such a peer "permission denied".  None by default; the daemon decides
 * (its table is the trust model of ophookd.yaml(5)).  A command that lets
 * members in may still refuse them some arguments (control_reply_uid()).
 * Safe with c == NULL. */
void control_allow_group(struct control *c, const char *const *names);
/* Called once (loop thread) when the client of a pending reply goes away
 * (disconnect or control_stop).  The reply is detached: answering or ending
 * it only frees it, and the callback should do so (or arrange it). */
typedef void control_reply_gone_fn(struct control_reply *reply, void *ctx);
/* Set (fn NULL: clear) the gone callback of a pending reply. */
void control_reply_on_gone(struct control_reply *reply,
			   control_reply_gone_fn *fn, void *ctx);
/* True when the reply's client is gone or closing. */
bool control_reply_gone(const struct control_reply *reply);
/* Answer ok with result (reference stolen, may be NULL), human text (may be
 * NULL) and exit status.  Frees *reply. */
void control_reply_ok(struct control_reply **reply, json_t *result,
		      const char *text, int exit_status);
/* Answer with an error (exit status 2 unless given otherwise). */
void control_reply_error(struct control_reply **reply, int exit_status,
			 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* For streaming commands: send one line {"event": ev} (ev not stolen);
 * returns false when the client is gone (then call control_reply_end). */
bool control_reply_stream(struct control_reply *reply, json_t *ev);
void control_reply_end(struct control_reply **reply);
/* The peer's uid (for per-command authorisation). */
unsigned control_reply_uid(const struct control_reply *reply);

#endif
