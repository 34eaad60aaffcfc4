/* Exec hooks: run one executable with an argv array (never a shell), data on
 * its stdin, a fixed environment, in its own process group, with a timeout
 * (SIGTERM to the group, SIGKILL 2 s later) and its output kept (the last
 * output_max bytes of each stream).  Used for hooks_dir/<pattern>.d/ files
 * and for ophook.exec() in Lua hooks. */
#ifndef OPHOOK_EXECHOOK_H
#define OPHOOK_EXECHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

/* Exit status that means "try again later" (EX_TEMPFAIL). */
#define EXECHOOK_EXIT_RETRY 75
/* Delay between SIGTERM and SIGKILL on a timeout. */
#define EXECHOOK_KILL_DELAY_MS 2000
/* Exit status reported when the file could not be run (as a shell does);
 * stderr then holds "exec <file>: <strerror>". */
#define EXECHOOK_EXIT_NOT_RUN 127

struct exechook_result {
	int exit_status;   /* exit code, or -1 when killed by a signal */
	int term_signal;   /* the signal that ended it, 0 if none */
	bool timed_out;    /* the timeout (or exechook_kill) hit */
	char *out, *err;   /* NUL-terminated, at most output_max bytes each
			      (the tail), owned by the result */
	size_t out_len, err_len;
	size_t out_dropped, err_dropped; /* bytes cut off the front */
};

struct exechook_opts {
	const char *const *argv;  /* argv[0] is the file run (absolute path or
				     looked up in the env's PATH) */
	const char *const *env;   /* NULL-terminated "K=V" list, the whole
				     environment */
	const char *cwd;          /* may be NULL: "/" */
	const char *stdin_data;   /* may be NULL */
	size_t stdin_len;
	unsigned timeout_ms;      /* 0 = none */
	size_t output_max;        /* bytes kept per stream (0 = 4096) */
};

struct exechook_proc;

/* Called once on the loop thread when the process ended and its output was
 * read, or when it could not be made (exit_status EXECHOOK_EXIT_NOT_RUN,
 * err "exec <file>: <reason>"), or when exechook_kill came before it was
 * made (timed_out, exit_status -1).  res is valid during the call. */
typedef void exechook_cb(struct exechook_result *res, void *ctx);

/* Start a process on `loop`: it is made on libuv's thread pool (the loop
 * thread never waits for a fork or an exec), then watched on the loop.  0
 * and *p_r (owned by the module, valid until cb returns; cb never comes
 * before this returns) or -errno with *error_r (static text or strerror);
 * a file that cannot be run is reported through cb. */
int exechook_spawn(uv_loop_t *loop, const struct exechook_opts *opts,
		   exechook_cb *cb, void *ctx, struct exechook_proc **p_r,
		   const char **error_r);
/* Stop a running process: SIGTERM to its group now, SIGKILL after
 * EXECHOOK_KILL_DELAY_MS; cb still comes, with timed_out set.  One not
 * made yet is not made (or, when the pool thread was already making it,
 * killed the same way as soon as it exists). */
void exechook_kill(struct exechook_proc *p);

/* Run a process to completion on a private loop (any thread, blocking;
 * the process is made on the calling thread, not on the pool).  0 with
 * *res filled (free with exechook_result_clear), or -errno with *error_r
 * when it could not be started. */
int exechook_run_sync(const struct exechook_opts *opts,
		      struct exechook_result *res, const char **error_r);
void exechook_result_clear(struct exechook_result *res);

/* Map a result to a delivery result: 0 on exit 0, OPHOOK_RETRY on exit 75,
 * else -EIO (or -ETIMEDOUT) with *error_r (malloc'd): "exit N: <stderr
 * tail>", "killed by signal N", "timed out after N ms". */
int exechook_result_rc(const struct exechook_result *res, unsigned timeout_ms,
		       char **error_r);

/* May `path` run as a hook?  A regular file (no symlink), executable,
 * owned by uid 0 or by `owner`, not writable by group or others, in a
 * folder not writable by group or others.  0 or -EPERM / -errno with
 * *why_r (malloc'd) naming the file and the reason.  -ENOEXEC when it is
 * simply not executable (skipped quietly, like run-parts). */
int exechook_check_file(const char *path, uid_t owner, char **why_r);

/* run-parts style name filter: skip dotfiles, backups (*~, *.bak, *.swp,
 * *.dpkg-*, *.rpmsave, *.rpmnew, *.disabled) and names with characters
 * outside [A-Za-z0-9_.-]. */
bool exechook_name_ok(const char *name);

#endif
