/* One sandboxed Lua 5.4 hook file: its own lua_State with a capped
 * allocator, only safe libraries, a wall-clock deadline per call enforced
 * by an instruction-count hook, and the `ophook` API (see ophook-lua(7)).
 *
 * A struct luahook is used by one thread at a time (the caller serializes);
 * it does not touch the engine: everything it needs from the daemon comes
 * through struct luahook_host. */
#ifndef OPHOOK_LUAHOOK_H
#define OPHOOK_LUAHOOK_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "log.h"

struct luahook;

struct luahook_limits {
	size_t memory_max;         /* bytes per state */
	unsigned timeout_ms;       /* per call unless opts.timeout says */
	size_t output_max;         /* bytes of a message / exec output kept */
	char *const *file_roots;   /* read_file/write_file roots (borrowed) */
	size_t n_file_roots;
};

/* What a hook may ask of the daemon.  Called from the hook's thread; any
 * member may be NULL (the Lua function then returns nil, "not available"). */
struct luahook_host {
	/* Submit an event; fields: JSON object, reference stolen.  0 or
	 * -errno with *error_r (malloc'd). */
	int (*emit)(void *ctx, const char *type, const char *subject,
		    json_t *fields, char **error_r);
	/* Read-only panel DB query; see paneldb_query(). */
	int (*db_query)(void *ctx, const char *sql, json_t *params,
			json_t **rows_r, char **error_r);
	/* A path the hook is about to write (so the watcher ignores it). */
	void (*own_write)(void *ctx, const char *path);
	void *ctx;
	/* A dry run (hooks.test without --live) when not NULL: a JSON array
	 * (borrowed) that receives, in order, one object per side-effecting
	 * call (http.post/get, exec, write_file, emit, db.query) instead of
	 * doing it: {"call", ..., "text": "would ..."}.  The calls return
	 * plausible values and ophook.dry_run is true. */
	json_t *record;
};

/* Load `path` into a fresh sandbox and run its top level (which registers
 * ophook.on / ophook.pre handlers).  `name` is used in messages and as the
 * chunk name ("notify.lua:12: ...").  0 or -errno with *error_r (malloc'd,
 * "name:line: message").  host and limits are copied (roots borrowed). */
int luahook_load(const char *path, const char *name,
		 const struct luahook_limits *limits,
		 const struct luahook_host *host, struct luahook **lh_r,
		 char **error_r);
/* Same, from a string (tests, hooks.test). */
int luahook_load_string(const char *code, size_t len, const char *name,
			const struct luahook_limits *limits,
			const struct luahook_host *host, struct luahook **lh_r,
			char **error_r);
/* Close the state and free *lh; NULLs it (NULL is fine). */
void luahook_free(struct luahook **lh);

/* The name given at load. */
const char *luahook_name(const struct luahook *lh);
/* Registered ophook.on patterns (in priority order) and ophook.pre intents.
 * Strings valid while lh lives. */
size_t luahook_on_count(const struct luahook *lh);
const char *luahook_on_pattern(const struct luahook *lh, size_t i);
/* The smallest opts.priority and the sum of the per-call timeouts of the
 * ophook.on handlers (for the dispatcher). */
int luahook_priority(const struct luahook *lh);
unsigned luahook_timeout_sum(const struct luahook *lh);
size_t luahook_pre_count(const struct luahook *lh);
const char *luahook_pre_intent(const struct luahook *lh, size_t i);
bool luahook_has_pre(const struct luahook *lh, const char *intent);
/* Memory in use by the state, bytes. */
size_t luahook_memory(const struct luahook *lh);

/* Capture ophook.log lines (and ophook.emit calls) into `lines` (a JSON
 * array, borrowed; NULL stops).  Captured lines are also logged unless
 * quiet. */
void luahook_capture(struct luahook *lh, json_t *lines, bool quiet);
/* Make ophook.emit record instead of submitting (hooks.test). */
void luahook_set_dry_run(struct luahook *lh, bool dry_run);

/* Run every ophook.on handler whose pattern matches `type`, in priority
 * order, with the event (payload, read-only) and the attempt number;
 * stops at the first failure.  *cancel (may be NULL) set by another
 * thread stops the call.  Returns 0 done, OPHOOK_RETRY, -ETIMEDOUT,
 * -ENOMEM, -ECANCELED or -EIO with *error_r (malloc'd: "name:line:
 * message" plus a traceback, truncated to output_max).  *ran_r (may be
 * NULL): how many handlers ran. */
int luahook_run_event(struct luahook *lh, const char *type, json_t *payload,
		      unsigned attempt, atomic_bool *cancel, unsigned *ran_r,
		      char **error_r);

/* Run the ophook.pre handlers for `intent` with `request` (a JSON object of
 * the key=value arguments plus "intent").  0 with *deny_r and *reason_r
 * (malloc'd or NULL) or -errno with *error_r as above. */
int luahook_run_pre(struct luahook *lh, const char *intent, json_t *request,
		    atomic_bool *cancel, bool *deny_r, char **reason_r,
		    char **error_r);

#endif
