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

/* Extra care for a child that works on customer input (run_argv_ex()).
 * A zero-initialised struct is safe: it asks for none of the optional
 * parts (the descriptors only count when their use_ flag is set, since 0
 * is a valid descriptor), and still gets what run_argv_ex() always does. */
struct run_opts {
	/* use_stdin_fd: the child's stdin is stdin_fd (a file the caller
	 * opened safely) and stdin_data is ignored */
	bool use_stdin_fd;
	int stdin_fd;
	/* use_cancel_fd: cancel_fd readable means "stop" (a pipe the caller
	 * writes to when it stops) */
	bool use_cancel_fd;
	int cancel_fd;
	/* when set, polled from the calling thread at least every
	 * RUN_CANCEL_POLL_MS while the child runs; true means "stop"
	 * (host->stopping()) */
	bool (*cancel)(void *arg);
	void *cancel_arg;
	/* drop to uid/gid, no supplementary groups, before exec (real,
	 * effective and saved ids) when drop is true; see run_opts_user() */
	bool drop;
	uid_t uid;
	gid_t gid;
	/* RLIMIT_AS in bytes; RLIMIT_CPU in seconds (SIGXCPU then, SIGKILL
	 * a second later); 0: unchanged */
	unsigned long long mem_max;
	unsigned cpu_max_s;
	/* chdir here before exec; NULL: unchanged */
	const char *cwd;
};

#define RUN_CANCEL_POLL_MS 100

/* run_argv() with opts (NULL: exactly run_argv()).  With opts the child
 * is forked (not posix_spawn'd), with every signal blocked across the
 * fork so that no handler of the daemon's runs in it, and before exec,
 * with only async-signal-safe calls and in this order: its own process
 * group (set by the parent too, so it exists before anything is sent to
 * it), stdin/stdout/stderr, every other descriptor closed, RLIMIT_CORE 0
 * and the limits, the cwd, the uid/gid (raw setgroups/setresgid/setresuid
 * syscalls), then PR_SET_PDEATHSIG(SIGKILL) (it dies with the calling
 * thread, so with the daemon, even after a SIGKILL of it; set after the
 * uid change, which clears it, and followed by a check that the parent is
 * still there), then default signal dispositions and an empty mask.
 * A failure in the child before exec is -errno with *error_r naming the
 * step ("cannot run PROG: cwd: No such file or directory").
 *
 * Cancelled (cancel_fd readable or cancel() true): the child's process
 * group is killed at once (SIGKILL), and -ECANCELED is returned with
 * *status_r, *out_r and *err_r set as for -ETIMEDOUT.  Other results as
 * run_argv(); use_stdin_fd or use_cancel_fd with a negative descriptor is
 * -EBADF. */
int run_argv_ex(const char *const *argv, const struct run_opts *opts,
		const char *stdin_data, unsigned timeout_ms, char **out_r,
		char **err_r, int *status_r, const char **error_r);

/* Fill o->drop/uid/gid from a user name: "" or "root" (or an account
 * with uid 0) leaves o->drop false; when the daemon is not root nothing
 * can be dropped either (o->drop false, 0).  -ENOENT: no such user
 * (*error_r names it). */
int run_opts_user(struct run_opts *o, const char *user, const char **error_r);

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
