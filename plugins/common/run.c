/* Run a program without a shell; argv helpers.  See run.h. */
#define _GNU_SOURCE
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

extern char **environ;

#define RUN_KILL_GRACE_MS 1000
#define RUN_TRUNC_NOTE "\n[output truncated]\n"

static _Thread_local char run_errbuf[256];

struct run_buf {
	char *data;
	size_t len;
	size_t cap;
	bool keep;      /* caller wants it */
	bool truncated; /* bytes were dropped */
};

static int64_t run_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* "cannot run PROG: WHAT: strerror" in the thread's buffer. */
static const char *run_err(const char *prog, const char *what, int err)
{
	if (what != NULL)
		snprintf(run_errbuf, sizeof(run_errbuf), "cannot run %s: %s: %s",
			 prog, what, strerror(err));
	else
		snprintf(run_errbuf, sizeof(run_errbuf), "cannot run %s: %s",
			 prog, strerror(err));
	return run_errbuf;
}

/* Read what is available on fd into b; returns false at EOF or error. */
static bool run_buf_read(struct run_buf *b, int fd)
{
	char tmp[16384];

	for (;;) {
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		if (!b->keep)
			continue;
		size_t take = (size_t)n;

		if (b->len + take > RUN_OUTPUT_MAX) {
			take = RUN_OUTPUT_MAX - b->len;
			b->truncated = true;
		}
		if (take == 0)
			continue;
		if (b->len + take + 1 > b->cap) {
			size_t cap = b->cap ? b->cap : 4096;

			while (cap < b->len + take + 1)
				cap *= 2;
			char *p = realloc(b->data, cap);

			if (p == NULL) {
				b->truncated = true;
				continue;
			}
			b->data = p;
			b->cap = cap;
		}
		memcpy(b->data + b->len, tmp, take);
		b->len += take;
	}
}

/* Hand the buffer over as a string (empty string when nothing came). */
static char *run_buf_finish(struct run_buf *b)
{
	size_t extra = b->truncated ? sizeof(RUN_TRUNC_NOTE) : 1;
	char *p = realloc(b->data, b->len + extra);

	if (p == NULL) {
		if (b->data == NULL)
			return NULL;
		p = b->data; /* cap >= len + 1 */
		extra = 1;
	}
	if (extra > 1)
		memcpy(p + b->len, RUN_TRUNC_NOTE, sizeof(RUN_TRUNC_NOTE));
	else
		p[b->len] = '\0';
	b->data = NULL;
	return p;
}

static int run_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

static void run_close(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

static int run_status(int wstatus)
{
	if (WIFEXITED(wstatus))
		return WEXITSTATUS(wstatus);
	if (WIFSIGNALED(wstatus))
		return 128 + WTERMSIG(wstatus);
	return 255;
}

/* The executable argv0 names: itself when it has a '/', else the first
 * executable match in PATH.  Checked before spawning so that "not found"
 * is -ENOENT everywhere (valgrind's posix_spawn forks and cannot report
 * a failed exec).  *path_r is malloc'd; 0 or -errno. */
static int run_resolve(const char *argv0, char **path_r)
{
	const char *path = getenv("PATH");
	int ret = -ENOENT;

	if (strchr(argv0, '/') != NULL) {
		if (access(argv0, X_OK) < 0)
			return -errno;
		*path_r = strdup(argv0);
		return *path_r != NULL ? 0 : -ENOMEM;
	}
	if (path == NULL || path[0] == '\0')
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	while (*path != '\0') {
		size_t len = strcspn(path, ":");
		char *cand = NULL;

		if (asprintf(&cand, "%.*s/%s", (int)len, len > 0 ? path : ".",
			     argv0) < 0)
			return -ENOMEM;
		if (access(cand, X_OK) == 0) {
			struct stat st;

			if (stat(cand, &st) == 0 && S_ISREG(st.st_mode)) {
				*path_r = cand;
				return 0;
			}
		} else if (errno == EACCES) {
			ret = -EACCES;
		}
		free(cand);
		path += len;
		if (*path == ':')
			path++;
	}
	return ret;
}

/* Start the child with stdin/stdout/stderr on the given fds. */
static int run_spawn(const char *const *argv, int in_fd, int out_fd,
		     int err_fd, pid_t *pid_r)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	char *exe = NULL;
	int ret;

	if ((ret = run_resolve(argv[0], &exe)) < 0)
		return ret;
	if ((ret = posix_spawn_file_actions_init(&fa)) != 0) {
		free(exe);
		return -ret;
	}
	if ((ret = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		free(exe);
		return -ret;
	}
	sigemptyset(&none);
	sigfillset(&all);
	ret = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	if (ret == 0)
		ret = posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (ret == 0)
		ret = posix_spawn_file_actions_adddup2(&fa, err_fd, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	if (ret == 0)
		ret = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
	if (ret == 0)
		ret = posix_spawnattr_setsigmask(&attr, &none);
	if (ret == 0)
		ret = posix_spawnattr_setsigdefault(&attr, &all);
	if (ret == 0)
		ret = posix_spawnattr_setpgroup(&attr, 0);
	if (ret == 0)
		ret = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
						      POSIX_SPAWN_SETSIGDEF |
						      POSIX_SPAWN_SETPGROUP);
	if (ret == 0)
		ret = posix_spawn(pid_r, exe, &fa, &attr, (char *const *)argv,
				  environ);
	free(exe);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return -ret;
}

/* ---- run_argv_ex(): fork, the child's care, cancellation ---- */

/* What the child was doing when it failed before exec (its report to the
 * parent: {step, errno}). */
enum run_step {
	RUN_STEP_PGROUP,
	RUN_STEP_STDIO,
	RUN_STEP_FDS,
	RUN_STEP_LIMITS,
	RUN_STEP_CWD,
	RUN_STEP_UID,
	RUN_STEP_PDEATHSIG,
	RUN_STEP_SIGNALS,
	RUN_STEP_EXEC,
	RUN_STEP_N
};

static const char *const run_steps[RUN_STEP_N] = {
	[RUN_STEP_PGROUP] = "process group",
	[RUN_STEP_STDIO] = "stdio",
	[RUN_STEP_FDS] = "closing descriptors",
	[RUN_STEP_LIMITS] = "limits",
	[RUN_STEP_CWD] = "cwd",
	[RUN_STEP_UID] = "dropping to the uid",
	[RUN_STEP_PDEATHSIG] = "PR_SET_PDEATHSIG",
	[RUN_STEP_SIGNALS] = "signals",
	[RUN_STEP_EXEC] = "exec",
};

/* the 32-bit id calls where the plain ones take 16-bit ids (i386) */
#ifdef SYS_setresuid32
#define RUN_SYS_SETGROUPS SYS_setgroups32
#define RUN_SYS_SETRESGID SYS_setresgid32
#define RUN_SYS_SETRESUID SYS_setresuid32
#else
#define RUN_SYS_SETGROUPS SYS_setgroups
#define RUN_SYS_SETRESGID SYS_setresgid
#define RUN_SYS_SETRESUID SYS_setresuid
#endif

/* Close every descriptor from lowfd up (really closed, not only marked
 * close-on-exec).  Async-signal-safe. */
static void run_close_from(int lowfd)
{
	struct rlimit rl;
	long max = 65536;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0u) == 0)
		return;
#endif
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
	    rl.rlim_cur > (rlim_t)max && rl.rlim_cur <= (rlim_t)(1l << 20))
		max = (long)rl.rlim_cur;
	for (long fd = lowfd; fd < max; fd++)
		(void)close((int)fd);
}

/* The child of run_fork(), which forked it with every signal blocked:
 * everything before exec, with async-signal-safe calls only (raw
 * syscalls for the credentials: glibc's setuid() would try to reach the
 * daemon's other threads, which this process does not have).  On a
 * failure it writes {step, errno} to rep_fd and exits 127. */
static void __attribute__((noreturn))
run_child(const char *exe, const char *const *argv, const struct run_opts *o,
	  int in_fd, int out_fd, int err_fd, int rep_fd, pid_t parent)
{
	struct sigaction dfl;
	struct rlimit rl;
	sigset_t none;
	int step, fds[4] = { in_fd, out_fd, err_fd, rep_fd };

	step = RUN_STEP_PGROUP;
	if (setpgid(0, 0) < 0)
		goto fail;
	/* every descriptor the child keeps goes out of the way of 0..3 first
	 * (a daemon started with 0..2 closed may have a pipe of ours there),
	 * then into place: 0..2, and the report pipe at 3 until exec */
	step = RUN_STEP_STDIO;
	for (int i = 0; i < 4; i++)
		if ((fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
			goto fail;
	rep_fd = fds[3];
	if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 ||
	    dup2(fds[2], 2) < 0 || dup3(fds[3], 3, O_CLOEXEC) < 0)
		goto fail;
	rep_fd = 3;
	/* nothing else the daemon has open reaches the program */
	step = RUN_STEP_FDS;
	run_close_from(4);
	step = RUN_STEP_LIMITS;
	rl.rlim_cur = rl.rlim_max = 0;
	if (setrlimit(RLIMIT_CORE, &rl) < 0)
		goto fail;
	if (o->mem_max > 0) {
		rl.rlim_cur = rl.rlim_max = (rlim_t)o->mem_max;
		if (setrlimit(RLIMIT_AS, &rl) < 0)
			goto fail;
	}
	if (o->cpu_max_s > 0) {
		/* SIGXCPU at the soft limit, SIGKILL a second later */
		rl.rlim_cur = o->cpu_max_s;
		rl.rlim_max = (rlim_t)o->cpu_max_s + 1;
		if (setrlimit(RLIMIT_CPU, &rl) < 0)
			goto fail;
	}
	step = RUN_STEP_CWD;
	if (o->cwd != NULL && chdir(o->cwd) < 0)
		goto fail;
	step = RUN_STEP_UID;
	if (o->drop &&
	    (syscall(RUN_SYS_SETGROUPS, 0, NULL) < 0 ||
	     syscall(RUN_SYS_SETRESGID, o->gid, o->gid, o->gid) < 0 ||
	     syscall(RUN_SYS_SETRESUID, o->uid, o->uid, o->uid) < 0))
		goto fail;
	/* after the uid change, which clears the parent-death signal */
	step = RUN_STEP_PDEATHSIG;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		goto fail;
	if (getppid() != parent)
		_exit(127); /* the daemon died before prctl: nobody to report to */
	/* the daemon's handlers go (still blocked, so none ran here), then
	 * the mask: what was sent meanwhile (a SIGTERM at a timeout) now
	 * acts as it would on the program */
	step = RUN_STEP_SIGNALS;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int sig = 1; sig < NSIG; sig++)
		(void)sigaction(sig, &dfl, NULL); /* EINVAL for KILL/STOP */
	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		goto fail;
	step = RUN_STEP_EXEC;
	execve(exe, (char *const *)argv, environ);
fail:
	{
		int msg[2] = { step, errno };

		(void)!write(rep_fd, msg, sizeof(msg));
	}
	_exit(127);
}

/* Fork the child with opts (see run_argv_ex()); *pid_r leads its own
 * process group.  -errno and *what_r (the step) on a failure before exec
 * (the child is reaped then). */
static int run_fork(const char *const *argv, const struct run_opts *o,
		    int in_fd, int out_fd, int err_fd, pid_t *pid_r,
		    const char **what_r)
{
	char *exe = NULL;
	int ep[2], ret, msg[2];
	sigset_t all, old;
	pid_t parent = getpid(), pid;
	ssize_t n;

	*what_r = NULL;
	if ((ret = run_resolve(argv[0], &exe)) < 0)
		return ret;
	if (pipe2(ep, O_CLOEXEC) < 0) {
		ret = -errno;
		free(exe);
		return ret;
	}
	/* no handler of the daemon's may run in the child before it resets
	 * them (libuv's would write to the daemon's own signal pipe) */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		run_child(exe, argv, o, in_fd, out_fd, err_fd, ep[1], parent);
	ret = pid < 0 ? -errno : 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(ep[1]);
	free(exe);
	if (ret == 0) {
		/* the group exists before anything is sent to it (EACCES
		 * once the child has exec'd: it made the group itself) */
		(void)setpgid(pid, pid);
		while ((n = read(ep[0], msg, sizeof(msg))) < 0 && errno == EINTR)
			;
		if (n == (ssize_t)sizeof(msg)) {
			while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
				;
			ret = msg[1] > 0 ? -msg[1] : -EIO;
			if (msg[0] >= 0 && msg[0] < RUN_STEP_N)
				*what_r = run_steps[msg[0]];
		} else {
			*pid_r = pid;
		}
	}
	close(ep[0]);
	return ret;
}

static int run_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0) {
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		return fd;
	}
#else
	(void)pid;
#endif
	return -1;
}

struct run_io {
	int in, out, err, pidfd;
	int cancel_fd;                /* -1: none */
	bool (*cancel)(void *arg);    /* NULL: none */
	void *cancel_arg;
	bool cancelled;
	const char *in_data;
	size_t in_len, in_off;
	struct run_buf ob, eb;
};

/* Feed stdin and collect output until the child exits and its pipes close,
 * or until deadline_ms (monotonic, 0 = none), or until cancelled
 * (io->cancelled).  Returns true when the child was reaped (status in
 * *wstatus_r). */
static bool run_pump(struct run_io *io, pid_t pid, int64_t deadline_ms,
		     int *wstatus_r)
{
	bool reaped = false;
	unsigned drains = 0;

	for (;;) {
		if (!reaped) {
			pid_t w = waitpid(pid, wstatus_r, WNOHANG);

			if (w == pid || (w < 0 && errno == ECHILD))
				reaped = true;
		}
		if (reaped && io->out < 0 && io->err < 0)
			return true;

		struct pollfd pf[5];
		int n = 0, i_in = -1, i_out = -1, i_err = -1, i_cancel = -1;

		if (io->in >= 0) {
			pf[n] = (struct pollfd){ .fd = io->in, .events = POLLOUT };
			i_in = n++;
		}
		if (io->out >= 0) {
			pf[n] = (struct pollfd){ .fd = io->out, .events = POLLIN };
			i_out = n++;
		}
		if (io->err >= 0) {
			pf[n] = (struct pollfd){ .fd = io->err, .events = POLLIN };
			i_err = n++;
		}
		if (!reaped && io->pidfd >= 0)
			pf[n++] = (struct pollfd){ .fd = io->pidfd, .events = POLLIN };
		if (!reaped && io->cancel_fd >= 0) {
			pf[n] = (struct pollfd){ .fd = io->cancel_fd,
						 .events = POLLIN };
			i_cancel = n++;
		}

		int wait_ms = -1;

		if (reaped) {
			/* The child is gone but something (a grandchild)
			 * may hold the pipes: drain what is there, stop. */
			if (++drains > 64)
				return true;
			wait_ms = 0;
		} else if (io->pidfd < 0) {
			wait_ms = 10;
		}
		if (!reaped && io->cancel != NULL) {
			if (io->cancel(io->cancel_arg)) {
				io->cancelled = true;
				return false;
			}
			if (wait_ms < 0 || wait_ms > RUN_CANCEL_POLL_MS)
				wait_ms = RUN_CANCEL_POLL_MS;
		}
		if (deadline_ms > 0) {
			int64_t left = deadline_ms - run_mono_ms();

			if (left <= 0)
				return reaped;
			if (wait_ms < 0 || left < wait_ms)
				wait_ms = (int)left;
		}
		int r = poll(pf, (nfds_t)n, wait_ms);

		if (r < 0 && errno != EINTR)
			return reaped; /* cannot happen with valid fds */
		if (r <= 0) {
			if (reaped)
				return true;
			continue;
		}
		if (i_cancel >= 0 && pf[i_cancel].revents) {
			io->cancelled = true;
			return false;
		}
		if (i_in >= 0 && pf[i_in].revents) {
			if (pf[i_in].revents & (POLLERR | POLLHUP)) {
				run_close(&io->in);
			} else {
				ssize_t w = send(io->in, io->in_data + io->in_off,
						 io->in_len - io->in_off,
						 MSG_NOSIGNAL | MSG_DONTWAIT);

				if (w > 0)
					io->in_off += (size_t)w;
				else if (w < 0 && errno != EAGAIN &&
					 errno != EWOULDBLOCK && errno != EINTR)
					run_close(&io->in);
				if (io->in >= 0 && io->in_off >= io->in_len)
					run_close(&io->in);
			}
		}
		if (i_out >= 0 && pf[i_out].revents && !run_buf_read(&io->ob, io->out))
			run_close(&io->out);
		if (i_err >= 0 && pf[i_err].revents && !run_buf_read(&io->eb, io->err))
			run_close(&io->err);
	}
}

/* Kill the child's process group.  Cancelled: SIGKILL at once.  Timed
 * out: SIGTERM, then SIGKILL after a grace (at once if a cancel comes
 * during it). */
static int run_kill(struct run_io *io, pid_t pid)
{
	int wstatus = 0;

	if (!io->cancelled) {
		kill(-pid, SIGTERM);
		kill(pid, SIGTERM);
		if (run_pump(io, pid, run_mono_ms() + RUN_KILL_GRACE_MS,
			     &wstatus))
			return wstatus;
	}
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
		;
	return wstatus;
}

int run_argv(const char *const *argv, const char *stdin_data,
	     unsigned timeout_ms, char **out_r, char **err_r, int *status_r,
	     const char **error_r)
{
	return run_argv_ex(argv, NULL, stdin_data, timeout_ms, out_r, err_r,
			   status_r, error_r);
}

int run_argv_ex(const char *const *argv, const struct run_opts *opts,
		const char *stdin_data, unsigned timeout_ms, char **out_r,
		char **err_r, int *status_r, const char **error_r)
{
	struct run_io io = { .in = -1, .out = -1, .err = -1, .pidfd = -1,
			     .cancel_fd = -1 };
	const char *what = NULL;
	bool in_fd = opts != NULL && opts->use_stdin_fd;
	int inpair[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int devnull = -1, ret, wstatus = 0;
	pid_t pid;

	if (out_r != NULL)
		*out_r = NULL;
	if (err_r != NULL)
		*err_r = NULL;
	*status_r = -1;
	if (argv == NULL || argv[0] == NULL || argv[0][0] == '\0') {
		*error_r = "run: empty command";
		return -EINVAL;
	}
	if (opts != NULL && ((opts->use_stdin_fd && opts->stdin_fd < 0) ||
			     (opts->use_cancel_fd && opts->cancel_fd < 0))) {
		*error_r = run_err(argv[0], opts->use_stdin_fd &&
						    opts->stdin_fd < 0
					    ? "stdin_fd"
					    : "cancel_fd",
				   EBADF);
		return -EBADF;
	}
	io.ob.keep = out_r != NULL;
	io.eb.keep = err_r != NULL;

	/* stdin is a socket so that writing to a child that closed it gives
	 * EPIPE (MSG_NOSIGNAL) and never SIGPIPE in the daemon. */
	if (in_fd) {
		stdin_data = NULL;
	} else if (stdin_data != NULL) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, inpair) < 0 ||
		    shutdown(inpair[1], SHUT_WR) < 0 || shutdown(inpair[0], SHUT_RD) < 0) {
			ret = -errno;
			*error_r = run_err(argv[0], "stdin socket", -ret);
			goto out;
		}
	} else if ((devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
		ret = -errno;
		*error_r = run_err(argv[0], "/dev/null", -ret);
		goto out;
	}
	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		ret = -errno;
		*error_r = run_err(argv[0], "pipe", -ret);
		goto out;
	}
	int child_in = in_fd ? opts->stdin_fd
		       : stdin_data != NULL ? inpair[1] : devnull;

	if (opts != NULL)
		ret = run_fork(argv, opts, child_in, outp[1], errp[1], &pid,
			       &what);
	else
		ret = run_spawn(argv, child_in, outp[1], errp[1], &pid);
	run_close(&inpair[1]);
	run_close(&outp[1]);
	run_close(&errp[1]);
	run_close(&devnull);
	if (ret < 0) {
		*error_r = run_err(argv[0], what, -ret);
		goto out;
	}
	if (opts != NULL) {
		io.cancel_fd = opts->use_cancel_fd ? opts->cancel_fd : -1;
		io.cancel = opts->cancel;
		io.cancel_arg = opts->cancel_arg;
	}
	io.in = inpair[0];
	io.out = outp[0];
	io.err = errp[0];
	inpair[0] = outp[0] = errp[0] = -1;
	io.in_data = stdin_data;
	io.in_len = stdin_data != NULL ? strlen(stdin_data) : 0;
	if (io.in >= 0 && io.in_len == 0)
		run_close(&io.in);
	if ((io.in >= 0 && run_nonblock(io.in) < 0) ||
	    run_nonblock(io.out) < 0 || run_nonblock(io.err) < 0) {
		/* cannot happen; the pump would still work, only slower */
	}
	io.pidfd = run_pidfd(pid);

	int64_t deadline = timeout_ms > 0 ? run_mono_ms() + timeout_ms : 0;

	if (run_pump(&io, pid, deadline, &wstatus)) {
		ret = 0;
	} else {
		/* a cancel during a timeout's grace hastens the kill but
		 * leaves it a timeout */
		bool cancelled = io.cancelled;

		wstatus = run_kill(&io, pid);
		ret = cancelled ? -ECANCELED : -ETIMEDOUT;
		if (cancelled)
			snprintf(run_errbuf, sizeof(run_errbuf),
				 "%s: killed: stopping (cancelled)", argv[0]);
		else
			snprintf(run_errbuf, sizeof(run_errbuf),
				 "%s: killed after the %u ms timeout", argv[0],
				 timeout_ms);
		*error_r = run_errbuf;
	}
	*status_r = run_status(wstatus);
	if (out_r != NULL)
		*out_r = run_buf_finish(&io.ob);
	if (err_r != NULL)
		*err_r = run_buf_finish(&io.eb);
	if ((out_r != NULL && *out_r == NULL) || (err_r != NULL && *err_r == NULL)) {
		if (out_r != NULL) {
			free(*out_r);
			*out_r = NULL;
		}
		if (err_r != NULL) {
			free(*err_r);
			*err_r = NULL;
		}
		if (ret == 0) {
			ret = -ENOMEM;
			*error_r = "run: out of memory";
		}
	}
out:
	run_close(&io.in);
	run_close(&io.out);
	run_close(&io.err);
	run_close(&io.pidfd);
	run_close(&inpair[0]);
	run_close(&inpair[1]);
	run_close(&outp[0]);
	run_close(&outp[1]);
	run_close(&errp[0]);
	run_close(&errp[1]);
	run_close(&devnull);
	free(io.ob.data);
	free(io.eb.data);
	return ret;
}

int run_opts_user(struct run_opts *o, const char *user, const char **error_r)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int ret;

	o->drop = false;
	if (user == NULL || user[0] == '\0' || strcmp(user, "root") == 0 ||
	    geteuid() != 0)
		return 0;
	ret = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (res == NULL) {
		snprintf(run_errbuf, sizeof(run_errbuf), "no user %s%s%s", user,
			 ret != 0 ? ": " : "", ret != 0 ? strerror(ret) : "");
		*error_r = run_errbuf;
		return ret != 0 ? -ret : -ENOENT;
	}
	if (pw.pw_uid == 0)
		return 0;
	o->uid = pw.pw_uid;
	o->gid = pw.pw_gid;
	o->drop = true;
	return 0;
}

/* ---- argv helpers ---- */

size_t argv_len(const char *const *argv)
{
	size_t n = 0;

	while (argv != NULL && argv[n] != NULL)
		n++;
	return n;
}

void argv_free(char ***argv_r)
{
	char **argv = *argv_r;

	if (argv == NULL)
		return;
	for (size_t i = 0; argv[i] != NULL; i++)
		free(argv[i]);
	free(argv);
	*argv_r = NULL;
}

int argv_append(char ***argv_r, const char *arg)
{
	size_t n = argv_len((const char *const *)*argv_r);
	char *copy = strdup(arg);
	char **p;

	if (copy == NULL)
		return -ENOMEM;
	p = realloc(*argv_r, (n + 2) * sizeof(*p));
	if (p == NULL) {
		free(copy);
		return -ENOMEM;
	}
	p[n] = copy;
	p[n + 1] = NULL;
	*argv_r = p;
	return 0;
}

char **argv_dup(const char *const *argv)
{
	size_t n = argv_len(argv);
	char **copy = calloc(n + 1, sizeof(*copy));

	if (copy == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if ((copy[i] = strdup(argv[i])) == NULL) {
			argv_free(&copy);
			return NULL;
		}
	}
	return copy;
}

/* s with every token replaced by value; NULL on ENOMEM. */
static char *argv_subst_one(const char *s, const char *token,
			    const char *value)
{
	size_t tl = strlen(token), vl = strlen(value), count = 0;

	for (const char *p = s; (p = strstr(p, token)) != NULL; p += tl)
		count++;
	char *out = malloc(strlen(s) + count * vl + 1);

	if (out == NULL)
		return NULL;
	char *o = out;
	const char *p = s, *q;

	while ((q = strstr(p, token)) != NULL) {
		memcpy(o, p, (size_t)(q - p));
		o += q - p;
		memcpy(o, value, vl);
		o += vl;
		p = q + tl;
	}
	strcpy(o, p);
	return out;
}

int argv_subst(char **argv, const char *token, const char *value)
{
	size_t n = argv_len((const char *const *)argv);
	char **repl;

	if (token[0] == '\0' || n == 0)
		return 0;
	repl = calloc(n, sizeof(*repl));
	if (repl == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (strstr(argv[i], token) == NULL)
			continue;
		if ((repl[i] = argv_subst_one(argv[i], token, value)) == NULL) {
			for (size_t j = 0; j < i; j++)
				free(repl[j]);
			free(repl);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (repl[i] != NULL) {
			free(argv[i]);
			argv[i] = repl[i];
		}
	}
	free(repl);
	return 0;
}

static int argv_from_json(const char *text, char ***argv_r)
{
	json_error_t jerr;
	json_t *arr = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	char **argv = NULL;
	size_t i;
	json_t *v;
	int ret = 0;

	if (arr == NULL)
		return -EINVAL;
	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		json_decref(arr);
		return -EINVAL;
	}
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			ret = -EINVAL;
			break;
		}
		if ((ret = argv_append(&argv, json_string_value(v))) < 0)
			break;
	}
	json_decref(arr);
	if (ret == 0 && argv[0][0] == '\0')
		ret = -EINVAL;
	if (ret < 0) {
		argv_free(&argv);
		return ret;
	}
	*argv_r = argv;
	return 0;
}

int argv_from_setting(const char *json_or_words, char ***argv_r)
{
	const char *p = json_or_words;
	char **argv = NULL;
	int ret;

	*argv_r = NULL;
	if (p == NULL)
		return -EINVAL;
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	if (*p == '[')
		return argv_from_json(p, argv_r);
	while (*p != '\0') {
		size_t len = strcspn(p, " \t\r\n");

		if (len > 0) {
			char *word = strndup(p, len);

			if (word == NULL) {
				argv_free(&argv);
				return -ENOMEM;
			}
			ret = argv_append(&argv, word);
			free(word);
			if (ret < 0) {
				argv_free(&argv);
				return ret;
			}
		}
		p += len;
		p += strspn(p, " \t\r\n");
	}
	if (argv == NULL)
		return -EINVAL;
	*argv_r = argv;
	return 0;
}
