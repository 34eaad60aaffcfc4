/* Run a program without a shell, for plugins (linked from
 * plugins/common/libplugcommon.la).
 *
 * Safe from worker threads: no global state, every descriptor it makes is
 * close-on-exec, the child gets a default signal mask and dispositions and
 * its own process group (so a timeout also reaches its children). */
#ifndef OPHOOK_PLUGIN_RUN_H
#define OPHOOK_PLUGIN_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes of stdout and of stderr kept by run_argv(); the rest is read and
 * dropped, and "\n[output truncated]\n" is appended. */
#define RUN_OUTPUT_MAX (1024u * 1024u)

/* Run argv[0] (looked up in PATH when it has no '/') with arguments argv,
 * NULL-terminated, in the daemon's environment.
 *
 * stdin_data: written to the child's stdin, then stdin is closed; NULL for
 * an empty stdin.  timeout_ms: 0 for none; on expiry the process group gets
 * SIGTERM, then SIGKILL 1 s later.  out_r / err_r: the captured stdout /
 * stderr, NUL-terminated, owned by the caller (free()); either may be NULL
 * to drop that stream.  status_r: the exit code, or 128+signal when the
 * child was killed by a signal.
 *
 * Returns 0 when the program ran (whatever its exit code), -ETIMEDOUT when
 * it was killed for the timeout (*status_r, *out_r, *err_r are set then
 * too), or another -errno when it could not run (-ENOENT: not found); then
 * *error_r says why (thread-local buffer, valid until the next call in
 * the same thread) and *out_r / *err_r are NULL. */
int run_argv(const char *const *argv, const char *stdin_data,
	     unsigned timeout_ms, char **out_r, char **err_r, int *status_r,
	     const char **error_r);

/* What a program run on customer input may use (run_argv_limited()).  A
 * zero field sets no limit. */
struct run_limits {
	uint64_t as_bytes; /* RLIMIT_AS: address space */
	unsigned cpu_s;    /* RLIMIT_CPU: SIGXCPU at cpu_s, SIGKILL 1 s on */
	bool drop;         /* run as uid/gid, no supplementary groups */
	uid_t uid;
	gid_t gid;
	/* Polled at least every RUN_CANCEL_POLL_MS while the child runs
	 * (from the calling thread): true kills the child's process group
	 * at once (SIGKILL) and run_argv_limited() returns -ECANCELED. */
	bool (*cancel)(void *arg);
	void *cancel_arg;
};

#define RUN_CANCEL_POLL_MS 100

/* run_argv() with limits (lim may be NULL: none).  Whatever lim says, the
 * child gets PR_SET_PDEATHSIG(SIGKILL) (set after any change of uid, so
 * that it holds: the child dies with the calling thread, hence with the
 * daemon, even after SIGKILL), its own process group, no core dumps and
 * no descriptor but 0, 1 and 2.  Started with fork() and execve(); only
 * async-signal-safe calls in between.  Returns as run_argv(), and
 * -ECANCELED when lim->cancel said so (*status_r, *out_r, *err_r set, as
 * for -ETIMEDOUT). */
int run_argv_limited(const char *const *argv, const char *stdin_data,
		     unsigned timeout_ms, const struct run_limits *lim,
		     char **out_r, char **err_r, int *status_r,
		     const char **error_r);

/* Fill lim->uid/gid/drop from a user name: "" or "root" (or uid 0)
 * leaves lim->drop false; when the daemon is not root nothing can be
 * dropped either (lim->drop false, 0).  -ENOENT: no such user (*error_r
 * names it). */
int run_limits_user(struct run_limits *lim, const char *user,
		    const char **error_r);

/* Parse a command setting into a NULL-terminated argv.  Preferred form: a
 * JSON array of strings (`["podman","exec","caddy","caddy","reload"]`);
 * otherwise the text is split on blanks (no quoting, no shell).  -EINVAL
 * for an empty command, a JSON value that is not a non-empty array of
 * strings, or a string with a NUL; -ENOMEM.  Free with argv_free(). */
int argv_from_setting(const char *json_or_words, char ***argv_r);

/* Copy of a NULL-terminated argv; NULL on ENOMEM.  Free with argv_free(). */
char **argv_dup(const char *const *argv);

/* Replace every occurrence of `token` inside each argument of argv with
 * `value` ("{caddyfile}" -> "/etc/caddy/Caddyfile").  0 or -ENOMEM (argv
 * unchanged then). */
int argv_subst(char **argv, const char *token, const char *value);

/* Append a copy of arg to *argv_r (which may be NULL); 0 or -ENOMEM. */
int argv_append(char ***argv_r, const char *arg);

/* Number of arguments. */
size_t argv_len(const char *const *argv);

/* Free an argv made by the functions above; sets *argv_r to NULL. */
void argv_free(char ***argv_r);

#endif
