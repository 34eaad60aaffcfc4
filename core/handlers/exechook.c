#define _GNU_SOURCE
#include "exechook.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ophook/plugin.h"
#include "util.h"

/* How the processes are made.
 *
 * uv_spawn() forks on the calling thread (libuv 1.44 on Linux: fork, then
 * it waits on a CLOEXEC pipe until the child called exec), so each spawn
 * stalled the loop for the fork of the whole daemon.  Here the process is
 * made on libuv's thread pool (uv_queue_work) with posix_spawn, which
 * glibc implements with clone(CLONE_VM | CLONE_VFORK): no page tables are
 * copied and only the pool thread waits for the exec.  Back on the loop
 * thread the parent ends of the pipes are opened as uv_pipe_t and the
 * child is watched through a pidfd (uv_poll_t, readable once it exited),
 * then reaped with waitpid(pid, WNOHANG).
 *
 * Nobody else reaps our children: libuv reaps only the processes it
 * spawned itself.  In libuv 1.44 (src/unix/process.c) the SIGCHLD
 * watcher calls uv__wait_children(), which walks loop->process_handles
 * and calls waitpid(process->pid, &status, WNOHANG) for each of those
 * pids (never waitpid(-1, ...)), and skips ECHILD.  Our pids are in no
 * uv_process_t, so their exit status stays for us, and the pid cannot be
 * reused before we reaped it. */

/* After the process exited, how long to wait for its pipes to close (a
 * background child may hold them). */
#define EXECHOOK_EOF_GRACE_MS 200
/* Without a pidfd (Linux < 5.3): how often waitpid looks for the exit. */
#define EXECHOOK_REAP_POLL_MS 50

struct exechook_tail {
	char *buf;
	size_t len, max, dropped;
};

struct exechook_proc {
	uv_loop_t *loop;
	uv_work_t work;        /* the spawn, on the pool */
	uv_pipe_t in, out, err;
	uv_poll_t reap;        /* the pidfd */
	uv_timer_t reap_timer; /* no pidfd: waitpid now and then */
	uv_timer_t timer;      /* timeout, then EOF grace */
	uv_timer_t kill_timer; /* SIGKILL after SIGTERM */
	uv_write_t wreq;
	uv_shutdown_t sreq;
	char *stdin_copy;
	size_t stdin_len;
	struct exechook_tail t_out, t_err;
	char rbuf[65536];
	exechook_cb *cb;
	void *ctx;
	unsigned timeout_ms;
	int handles;     /* open handles; freed at 0 */
	int pipes_open;  /* stdout/stderr not yet at EOF */

	/* copies for the pool thread (freed once the spawn is done) */
	char **argv, **env, *cwd;
	/* written by the pool thread, read after it is done */
	pid_t pid;
	int pidfd;
	int fd_in, fd_out, fd_err; /* the parent's ends, -1 once handed on */
	int spawn_errno;           /* 0, or why no process was made */
	atomic_bool cancel;        /* killed while queued: do not spawn */

	bool queued;     /* the spawn is on the pool, or waits for the gate */
	struct spawn_gate *gate;     /* set while queued */
	struct exechook_proc *gate_next; /* waiting for a pool slot */
	bool gated;      /* waits at the gate, not on the pool yet */
	bool exited, finished, timed_out, kill_pending;
	int64_t exit_status;
	int term_signal;
};

static void exechook_tail_add(struct exechook_tail *t, const char *data,
			      size_t n)
{
	if (n >= t->max) {
		t->dropped += t->len + n - t->max;
		memcpy(t->buf, data + n - t->max, t->max);
		t->len = t->max;
		return;
	}
	if (t->len + n > t->max) {
		size_t keep = t->max - n;

		memmove(t->buf, t->buf + t->len - keep, keep);
		t->dropped += t->len - keep;
		t->len = keep;
	}
	memcpy(t->buf + t->len, data, n);
	t->len += n;
}

static char **exechook_strv_dup(const char *const *v)
{
	size_t n = 0;
	char **copy;

	if (v == NULL)
		return NULL;
	while (v[n] != NULL)
		n++;
	copy = xcalloc(n + 1, sizeof(*copy));
	for (size_t i = 0; i < n; i++)
		copy[i] = xstrdup(v[i]);
	return copy;
}

static void exechook_strv_free(char ***vp)
{
	if (*vp == NULL)
		return;
	for (char **s = *vp; *s != NULL; s++)
		free(*s);
	free(*vp);
	*vp = NULL;
}

static void exechook_args_free(struct exechook_proc *p)
{
	exechook_strv_free(&p->argv);
	exechook_strv_free(&p->env);
	free(p->cwd);
	p->cwd = NULL;
}

static void exechook_fd_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void exechook_handle_closed(uv_handle_t *handle)
{
	struct exechook_proc *p = handle->data;

	if (--p->handles > 0)
		return;
	exechook_fd_close(&p->pidfd);
	exechook_fd_close(&p->fd_in);
	exechook_fd_close(&p->fd_out);
	exechook_fd_close(&p->fd_err);
	exechook_args_free(p);
	free(p->t_out.buf);
	free(p->t_err.buf);
	free(p->stdin_copy);
	free(p);
}

static void exechook_close(struct exechook_proc *p, uv_handle_t *handle)
{
	(void)p;
	if (handle->loop == NULL || uv_is_closing(handle))
		return;
	uv_close(handle, exechook_handle_closed);
}

static void exechook_close_all(struct exechook_proc *p)
{
	uv_timer_stop(&p->timer);
	exechook_close(p, (uv_handle_t *)&p->timer);
	exechook_close(p, (uv_handle_t *)&p->in);
	exechook_close(p, (uv_handle_t *)&p->out);
	exechook_close(p, (uv_handle_t *)&p->err);
	exechook_close(p, (uv_handle_t *)&p->reap);
	exechook_close(p, (uv_handle_t *)&p->reap_timer);
	if (!p->kill_pending)
		exechook_close(p, (uv_handle_t *)&p->kill_timer);
}

static void exechook_killpg(struct exechook_proc *p, int sig)
{
	if (p->pid > 0)
		kill(-p->pid, sig);
}

static void exechook_kill_timer_cb(uv_timer_t *t)
{
	struct exechook_proc *p = t->data;

	exechook_killpg(p, SIGKILL);
	p->kill_pending = false;
	if (p->finished)
		exechook_close(p, (uv_handle_t *)&p->kill_timer);
}

static void exechook_finish(struct exechook_proc *p)
{
	struct exechook_result res;

	if (p->finished)
		return;
	p->finished = true;
	memset(&res, 0, sizeof(res));
	res.exit_status = p->term_signal != 0 ? -1 : (int)p->exit_status;
	res.term_signal = p->term_signal;
	res.timed_out = p->timed_out;
	p->t_out.buf[p->t_out.len] = '\0';
	p->t_err.buf[p->t_err.len] = '\0';
	res.out = p->t_out.buf;
	res.out_len = p->t_out.len;
	res.out_dropped = p->t_out.dropped;
	res.err = p->t_err.buf;
	res.err_len = p->t_err.len;
	res.err_dropped = p->t_err.dropped;
	p->cb(&res, p->ctx);
	exechook_close_all(p);
}

static void exechook_grace_cb(uv_timer_t *t)
{
	exechook_finish(t->data);
}

static void exechook_timeout_cb(uv_timer_t *t)
{
	exechook_kill(t->data);
}

/* SIGTERM to the group now, SIGKILL later (loop thread, process made). */
static void exechook_terminate(struct exechook_proc *p)
{
	exechook_killpg(p, SIGTERM);
	p->kill_pending = true;
	uv_timer_start(&p->kill_timer, exechook_kill_timer_cb,
		       EXECHOOK_KILL_DELAY_MS, 0);
}

void exechook_kill(struct exechook_proc *p)
{
	if (p->finished || p->timed_out)
		return;
	p->timed_out = true;
	if (p->queued) {
		/* not made yet: the pool thread skips the spawn if it did
		 * not start it; if it did, exechook_after_work_cb kills it;
		 * one still at the gate is dropped when its turn comes */
		atomic_store(&p->cancel, true);
		if (!p->gated)
			uv_cancel((uv_req_t *)&p->work);
		return;
	}
	exechook_terminate(p);
}

/* The process is gone (reaped): finish now or after the last output. */
static void exechook_exited(struct exechook_proc *p, int64_t status, int sig)
{
	p->exited = true;
	p->exit_status = status;
	p->term_signal = sig;
	exechook_close(p, (uv_handle_t *)&p->reap);
	exechook_close(p, (uv_handle_t *)&p->reap_timer);
	if (p->pipes_open == 0) {
		exechook_finish(p);
		return;
	}
	/* wait a little for the rest of the output */
	uv_timer_stop(&p->timer);
	uv_timer_start(&p->timer, exechook_grace_cb, EXECHOOK_EOF_GRACE_MS, 0);
}

/* Reap the child if it exited (loop thread). */
static void exechook_reap_now(struct exechook_proc *p)
{
	int status = 0;
	pid_t r;

	if (p->exited)
		return;
	do
		r = waitpid(p->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return;
	if (r < 0) {
		/* ECHILD: reaped elsewhere (SIGCHLD set to SIG_IGN): the
		 * status is lost */
		exechook_exited(p, -1, 0);
		return;
	}
	if (WIFSIGNALED(status))
		exechook_exited(p, 0, WTERMSIG(status));
	else
		exechook_exited(p, WEXITSTATUS(status), 0);
}

static void exechook_reap_cb(uv_poll_t *h, int status, int events)
{
	(void)status;
	(void)events;
	exechook_reap_now(h->data);
}

static void exechook_reap_timer_cb(uv_timer_t *t)
{
	exechook_reap_now(t->data);
}

static void exechook_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct exechook_proc *p = h->data;

	(void)suggested;
	buf->base = p->rbuf;
	buf->len = sizeof(p->rbuf);
}

static void exechook_read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct exechook_proc *p = s->data;

	if (n > 0) {
		exechook_tail_add(s == (uv_stream_t *)&p->out ? &p->t_out
							      : &p->t_err,
				  buf->base, (size_t)n);
		return;
	}
	if (n == 0)
		return;
	/* EOF or error */
	uv_read_stop(s);
	exechook_close(p, (uv_handle_t *)s);
	if (--p->pipes_open == 0 && p->exited)
		exechook_finish(p);
}

static void exechook_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct exechook_proc *p = req->data;

	(void)status;
	exechook_close(p, (uv_handle_t *)&p->in);
}

static void exechook_write_cb(uv_write_t *req, int status)
{
	struct exechook_proc *p = req->data;

	if (status < 0 || uv_shutdown(&p->sreq, (uv_stream_t *)&p->in,
				      exechook_shutdown_cb) < 0)
		exechook_close(p, (uv_handle_t *)&p->in);
}

static void exechook_init_handle(struct exechook_proc *p, uv_handle_t *h)
{
	h->data = p;
	p->handles++;
}

/* ---- making the process (pool thread, or the caller's for run_sync) --- */

/* A pipe whose both ends are close-on-exec and above stdio (so that the
 * dup2 onto 0, 1 and 2 cannot clobber one of them). */
static int exechook_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	for (int i = 0; i < 2; i++) {
		int fd;

		if (fds[i] > 2)
			continue;
		fd = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
		if (fd < 0) {
			int ret = -errno;

			close(fds[0]);
			close(fds[1]);
			fds[0] = fds[1] = -1;
			return ret;
		}
		close(fds[i]);
		fds[i] = fd;
	}
	return 0;
}

static const char *exechook_env_path(char *const *env)
{
	for (; env != NULL && *env != NULL; env++) {
		if (strncmp(*env, "PATH=", 5) == 0)
			return *env + 5;
	}
	return "/bin:/usr/bin"; /* execvp's default */
}

/* Can `path` be executed?  0 or -errno.  posix_spawn reports the exec's
 * errno too, but through memory shared with the child: under valgrind
 * (which runs clone(CLONE_VM | CLONE_VFORK) as a fork) a failed exec only
 * shows as exit 127, so the usual errors are found here first. */
static int exechook_can_exec(const char *path)
{
	return faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) < 0 ? -errno : 0;
}

/* posix_spawn argv[0], looked up like execvp does but in the child's
 * environment's PATH (as uv_spawn did).  0 or -errno. */
static int exechook_posix_spawn(struct exechook_proc *p,
				const posix_spawn_file_actions_t *fa,
				const posix_spawnattr_t *attr)
{
	const char *file = p->argv[0], *dir, *end;
	char *const *env = p->env != NULL ? p->env : environ;
	bool eacces = false;
	int ret;

	if (file == NULL || file[0] == '\0')
		return -ENOENT;
	if (strchr(file, '/') != NULL) {
		ret = exechook_can_exec(file);
		if (ret < 0)
			return ret;
		return -posix_spawn(&p->pid, file, fa, attr, p->argv, env);
	}
	for (dir = exechook_env_path(env);; dir = end + 1) {
		char *full;

		end = strchrnul(dir, ':');
		full = end == dir ? xasprintf("./%s", file)
				  : xasprintf("%.*s/%s", (int)(end - dir),
					      dir, file);
		ret = exechook_can_exec(full);
		if (ret == 0)
			ret = -posix_spawn(&p->pid, full, fa, attr, p->argv,
					   env);
		free(full);
		if (ret == 0)
			return 0;
		if (ret == -EACCES)
			eacces = true;
		else if (ret != -ENOENT && ret != -ENOTDIR)
			return ret;
		if (*end == '\0')
			break;
	}
	return eacces ? -EACCES : -ENOENT;
}

static int exechook_spawn_setup(struct exechook_proc *p,
				posix_spawn_file_actions_t *fa,
				posix_spawnattr_t *attr, const int in[2],
				const int out[2], const int err[2])
{
	sigset_t def, none;
	int ret;

	/* own session and process group (kill(-pid) reaches all of it),
	 * signal dispositions and mask back to the defaults (the daemon
	 * ignores SIGPIPE; pool threads may block signals) */
	sigemptyset(&def);
	for (int sig = 1; sig < 32; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaddset(&def, sig);
	}
#ifdef __GLIBC__
	/* glibc's two internal signals (32, 33): its posix_spawn sets them
	 * to SIG_IGN in the child, which exec keeps, unless they are in the
	 * SETSIGDEF set, and its sigaddset refuses them: set their bits
	 * (Linux sigset_t: bit sig - 1).  The child has every signal
	 * blocked until just before its exec. */
	for (int sig = 32; sig < SIGRTMIN; sig++)
		def.__val[(sig - 1) / (8 * sizeof(def.__val[0]))] |=
			1UL << ((sig - 1) % (8 * sizeof(def.__val[0])));
#endif
	sigemptyset(&none);
	ret = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSID |
					     POSIX_SPAWN_SETSIGDEF |
					     POSIX_SPAWN_SETSIGMASK);
	if (ret == 0)
		ret = posix_spawnattr_setsigdefault(attr, &def);
	if (ret == 0)
		ret = posix_spawnattr_setsigmask(attr, &none);
	if (ret == 0)
		ret = posix_spawn_file_actions_adddup2(fa, in[0], 0);
	if (ret == 0)
		ret = posix_spawn_file_actions_adddup2(fa, out[1], 1);
	if (ret == 0)
		ret = posix_spawn_file_actions_adddup2(fa, err[1], 2);
	if (ret == 0)
		ret = posix_spawn_file_actions_addchdir_np(fa, p->cwd);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	/* descriptors a plugin opened without O_CLOEXEC stay ours */
	if (ret == 0)
		ret = posix_spawn_file_actions_addclosefrom_np(fa, 3);
#endif
	return -ret;
}

/* Make the process: pipes, posix_spawn, pidfd.  Sets p->pid, the parent
 * ends and p->pidfd (-1 without pidfds).  0 or -errno. */
static int exechook_start_child(struct exechook_proc *p)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int ret;

	ret = exechook_pipe(in);
	if (ret == 0)
		ret = exechook_pipe(out);
	if (ret == 0)
		ret = exechook_pipe(err);
	if (ret == 0) {
		posix_spawn_file_actions_init(&fa);
		posix_spawnattr_init(&attr);
		ret = exechook_spawn_setup(p, &fa, &attr, in, out, err);
		if (ret == 0)
			ret = exechook_posix_spawn(p, &fa, &attr);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&attr);
	}
	exechook_fd_close(&in[0]);
	exechook_fd_close(&out[1]);
	exechook_fd_close(&err[1]);
	if (ret < 0) {
		p->pid = 0;
		exechook_fd_close(&in[1]);
		exechook_fd_close(&out[0]);
		exechook_fd_close(&err[0]);
		return ret;
	}
	p->fd_in = in[1];
	p->fd_out = out[0];
	p->fd_err = err[0];
	for (int i = 0; i < 3; i++) {
		int fd = i == 0 ? p->fd_in : i == 1 ? p->fd_out : p->fd_err;

		fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
#ifdef SYS_pidfd_open
	/* close-on-exec by itself; -1 (ENOSYS) before Linux 5.3 */
	p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
#else
	p->pidfd = -1;
#endif
	return 0;
}

static void exechook_work_cb(uv_work_t *w)
{
	struct exechook_proc *p = w->data;

	if (atomic_load(&p->cancel)) {
		p->spawn_errno = ECANCELED;
		return;
	}
	p->spawn_errno = -exechook_start_child(p);
}

/* ---- back on the loop thread ---------------------------------------- */

/* Hand an fd to a pipe handle; on failure close it and return -errno. */
static int exechook_pipe_open(uv_pipe_t *pipe, int *fd)
{
	int ret = uv_pipe_open(pipe, *fd);

	if (ret < 0)
		close(*fd);
	*fd = -1;
	return ret;
}

/* The process exists (or could not be made): watch it, feed it, read it. */
static void exechook_started(struct exechook_proc *p)
{
	p->queued = false;
	if (p->spawn_errno != 0) {
		if (p->spawn_errno != ECANCELED) {
			char *msg = xasprintf("exec %s: %s", p->argv[0],
					      strerror(p->spawn_errno));

			exechook_tail_add(&p->t_err, msg, strlen(msg));
			free(msg);
			p->exit_status = EXECHOOK_EXIT_NOT_RUN;
		} else {
			p->exit_status = -1;
		}
		exechook_args_free(p);
		p->exited = true;
		exechook_finish(p);
		return;
	}
	exechook_args_free(p);

	if (p->pidfd >= 0 && uv_poll_init(p->loop, &p->reap, p->pidfd) == 0) {
		exechook_init_handle(p, (uv_handle_t *)&p->reap);
		uv_poll_start(&p->reap, UV_READABLE, exechook_reap_cb);
	} else {
		uv_timer_init(p->loop, &p->reap_timer);
		exechook_init_handle(p, (uv_handle_t *)&p->reap_timer);
		uv_timer_start(&p->reap_timer, exechook_reap_timer_cb,
			       EXECHOOK_REAP_POLL_MS, EXECHOOK_REAP_POLL_MS);
	}

	p->pipes_open = 2;
	if (exechook_pipe_open(&p->out, &p->fd_out) == 0)
		uv_read_start((uv_stream_t *)&p->out, exechook_alloc_cb,
			      exechook_read_cb);
	else
		p->pipes_open--;
	if (exechook_pipe_open(&p->err, &p->fd_err) == 0)
		uv_read_start((uv_stream_t *)&p->err, exechook_alloc_cb,
			      exechook_read_cb);
	else
		p->pipes_open--;
	if (p->stdin_len > 0 && exechook_pipe_open(&p->in, &p->fd_in) == 0) {
		uv_buf_t b = uv_buf_init(p->stdin_copy,
					 (unsigned)p->stdin_len);

		p->wreq.data = p;
		p->sreq.data = p;
		if (uv_write(&p->wreq, (uv_stream_t *)&p->in, &b, 1,
			     exechook_write_cb) < 0)
			exechook_close(p, (uv_handle_t *)&p->in);
	} else {
		exechook_fd_close(&p->fd_in); /* EOF on its stdin */
		exechook_close(p, (uv_handle_t *)&p->in);
	}
	if (p->timed_out)
		exechook_terminate(p); /* exechook_kill came while queued */
	else if (p->timeout_ms > 0)
		uv_timer_start(&p->timer, exechook_timeout_cb, p->timeout_ms,
			       0);
}

/* ---- the spawn gate ---------------------------------------------------
 *
 * Each spawn holds its pool thread until the child has called exec (a few
 * ms on a loaded machine).  A burst of failing hooks (64 retries due at
 * once) would fill libuv's queue, and an inline plugin's next call would
 * wait behind all of them: 200 log-plugin deliveries took 4 to 6 s beside
 * 1,000 retrying exec hooks.  So at most EXECHOOK_POOL_SPAWNS spawns of a
 * loop are on the pool at once; the others wait here, in order.  A gate
 * is per loop (spawns are made from the loop's own thread), kept in a
 * short list while it has work. */
#define EXECHOOK_POOL_SPAWNS 2

struct spawn_gate {
	uv_loop_t *loop;
	unsigned running;                 /* spawns on the pool */
	struct exechook_proc *head, *tail; /* waiting, in order */
	struct spawn_gate *next;
};

static pthread_mutex_t spawn_gates_lock = PTHREAD_MUTEX_INITIALIZER;
static struct spawn_gate *spawn_gates;

static struct spawn_gate *spawn_gate_get(uv_loop_t *loop)
{
	struct spawn_gate *g;

	pthread_mutex_lock(&spawn_gates_lock);
	for (g = spawn_gates; g != NULL && g->loop != loop; g = g->next)
		;
	if (g == NULL) {
		g = xcalloc(1, sizeof(*g));
		g->loop = loop;
		g->next = spawn_gates;
		spawn_gates = g;
	}
	pthread_mutex_unlock(&spawn_gates_lock);
	return g;
}

static void spawn_gate_put(struct spawn_gate *g)
{
	struct spawn_gate **pp;

	if (g->running > 0 || g->head != NULL)
		return;
	pthread_mutex_lock(&spawn_gates_lock);
	for (pp = &spawn_gates; *pp != NULL && *pp != g; pp = &(*pp)->next)
		;
	if (*pp == g)
		*pp = g->next;
	pthread_mutex_unlock(&spawn_gates_lock);
	free(g);
}

static void exechook_after_work_cb(uv_work_t *w, int status);

/* Put p's spawn on the pool. */
static int spawn_gate_submit(struct spawn_gate *g, struct exechook_proc *p)
{
	int ret = uv_queue_work(g->loop, &p->work, exechook_work_cb,
				exechook_after_work_cb);

	if (ret == 0)
		g->running++;
	return ret;
}

/* A spawn left the pool: the next waiting ones go on (loop thread). */
static void spawn_gate_pump(struct spawn_gate *g)
{
	while (g->head != NULL && g->running < EXECHOOK_POOL_SPAWNS) {
		struct exechook_proc *p = g->head;

		g->head = p->gate_next;
		if (g->head == NULL)
			g->tail = NULL;
		p->gate_next = NULL;
		p->gated = false;
		if (atomic_load(&p->cancel) || spawn_gate_submit(g, p) < 0) {
			/* killed while it waited, or no pool: not made */
			p->gate = NULL;
			p->spawn_errno = ECANCELED;
			exechook_started(p);
		}
	}
	spawn_gate_put(g);
}

static void exechook_after_work_cb(uv_work_t *w, int status)
{
	struct exechook_proc *p = w->data;
	struct spawn_gate *g = p->gate;

	p->gate = NULL;
	if (status == UV_ECANCELED)
		p->spawn_errno = ECANCELED;
	g->running--;
	exechook_started(p);
	spawn_gate_pump(g);
}

static struct exechook_proc *exechook_new(uv_loop_t *loop,
					  const struct exechook_opts *opts,
					  exechook_cb *cb, void *ctx)
{
	struct exechook_proc *p = xcalloc(1, sizeof(*p));
	size_t max = opts->output_max > 0 ? opts->output_max : 4096;

	p->loop = loop;
	p->cb = cb;
	p->ctx = ctx;
	p->timeout_ms = opts->timeout_ms;
	p->pidfd = p->fd_in = p->fd_out = p->fd_err = -1;
	atomic_init(&p->cancel, false);
	p->t_out.max = p->t_err.max = max;
	p->t_out.buf = xmalloc(max + 1);
	p->t_err.buf = xmalloc(max + 1);
	p->argv = exechook_strv_dup(opts->argv);
	p->env = exechook_strv_dup(opts->env);
	p->cwd = xstrdup(opts->cwd != NULL ? opts->cwd : "/");
	if (opts->stdin_len > 0) {
		p->stdin_copy = xmalloc(opts->stdin_len);
		memcpy(p->stdin_copy, opts->stdin_data, opts->stdin_len);
		p->stdin_len = opts->stdin_len;
	}
	uv_pipe_init(loop, &p->in, 0);
	exechook_init_handle(p, (uv_handle_t *)&p->in);
	uv_pipe_init(loop, &p->out, 0);
	exechook_init_handle(p, (uv_handle_t *)&p->out);
	uv_pipe_init(loop, &p->err, 0);
	exechook_init_handle(p, (uv_handle_t *)&p->err);
	uv_timer_init(loop, &p->timer);
	exechook_init_handle(p, (uv_handle_t *)&p->timer);
	uv_timer_init(loop, &p->kill_timer);
	exechook_init_handle(p, (uv_handle_t *)&p->kill_timer);
	p->work.data = p;
	p->reap.data = p;
	p->reap_timer.data = p;
	return p;
}

/* Drop a process that was never made, without calling cb. */
static void exechook_discard(struct exechook_proc *p)
{
	p->finished = true;
	exechook_close_all(p);
}

int exechook_spawn(uv_loop_t *loop, const struct exechook_opts *opts,
		   exechook_cb *cb, void *ctx, struct exechook_proc **p_r,
		   const char **error_r)
{
	struct exechook_proc *p = exechook_new(loop, opts, cb, ctx);
	int ret;

	struct spawn_gate *g = spawn_gate_get(loop);

	p->queued = true;
	p->gate = g;
	if (g->running < EXECHOOK_POOL_SPAWNS && g->head == NULL) {
		ret = spawn_gate_submit(g, p);
		if (ret < 0) {
			*error_r = uv_strerror(ret);
			p->gate = NULL;
			exechook_discard(p);
			spawn_gate_put(g);
			return ret;
		}
	} else {
		p->gated = true;
		if (g->tail != NULL)
			g->tail->gate_next = p;
		else
			g->head = p;
		g->tail = p;
	}
	if (p_r != NULL)
		*p_r = p;
	return 0;
}

struct exechook_sync {
	struct exechook_result *res;
};

static void exechook_sync_cb(struct exechook_result *res, void *ctx)
{
	struct exechook_sync *s = ctx;

	*s->res = *res;
	s->res->out = xstrndup(res->out, res->out_len);
	s->res->err = xstrndup(res->err, res->err_len);
}

int exechook_run_sync(const struct exechook_opts *opts,
		      struct exechook_result *res, const char **error_r)
{
	uv_loop_t loop;
	struct exechook_sync s = { .res = res };
	struct exechook_proc *p;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = uv_loop_init(&loop);
	if (ret < 0) {
		*error_r = uv_strerror(ret);
		return ret;
	}
	/* the calling thread blocks anyway: make the process right here,
	 * not on the pool (this may run on a pool thread: hooks.test) */
	p = exechook_new(&loop, opts, exechook_sync_cb, &s);
	ret = exechook_start_child(p);
	if (ret < 0) {
		*error_r = strerror(-ret);
		exechook_discard(p);
	} else {
		exechook_started(p);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return ret;
}

void exechook_result_clear(struct exechook_result *res)
{
	free(res->out);
	free(res->err);
	res->out = res->err = NULL;
}

/* The last line(s) of stderr (or stdout when stderr is empty) for an
 * error message: whitespace trimmed. */
static char *exechook_tail_text(const struct exechook_result *res)
{
	const char *s = res->err_len > 0 ? res->err : res->out;
	size_t n = res->err_len > 0 ? res->err_len : res->out_len;
	size_t dropped = res->err_len > 0 ? res->err_dropped : res->out_dropped;

	if (s == NULL)
		return xstrdup("");
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' ||
			 s[n - 1] == '\r' || s[n - 1] == '\t'))
		n--;
	if (n == 0)
		return xstrdup("");
	return xasprintf(": %s%.*s", dropped > 0 ? "..." : "", (int)n, s);
}

int exechook_result_rc(const struct exechook_result *res, unsigned timeout_ms,
		       char **error_r)
{
	char *tail;
	int rc;

	if (!res->timed_out && res->term_signal == 0 &&
	    res->exit_status == 0) {
		*error_r = NULL;
		return 0;
	}
	tail = exechook_tail_text(res);
	if (res->timed_out) {
		*error_r = xasprintf("timed out after %u ms (process group "
				     "sent SIGTERM, SIGKILL %u ms later)%s",
				     timeout_ms, EXECHOOK_KILL_DELAY_MS, tail);
		rc = -ETIMEDOUT;
	} else if (res->term_signal != 0) {
		*error_r = xasprintf("killed by signal %d (%s)%s",
				     res->term_signal,
				     strsignal(res->term_signal), tail);
		rc = -EIO;
	} else if (res->exit_status == EXECHOOK_EXIT_RETRY) {
		*error_r = xasprintf("exit 75 (retry later)%s", tail);
		rc = OPHOOK_RETRY;
	} else {
		*error_r = xasprintf("exit %d%s", res->exit_status, tail);
		rc = -EIO;
	}
	free(tail);
	return rc;
}

static int exechook_check_mode(const char *what, const char *path,
			       const struct stat *st, uid_t owner, char **why_r)
{
	if (st->st_uid != 0 && st->st_uid != owner) {
		*why_r = xasprintf("%s: refused: %s owned by uid %u, not root",
				   path, what, (unsigned)st->st_uid);
		return -EPERM;
	}
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		*why_r = xasprintf("%s: refused: %s writable by group or others "
				   "(mode %04o)", path, what,
				   (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

int exechook_check_file(const char *path, uid_t owner, char **why_r)
{
	struct stat st;
	char *dir;
	int fd, ret;

	*why_r = NULL;
	fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		*why_r = xasprintf("%s: %s", path, strerror(errno));
		return ret;
	}
	ret = fstat(fd, &st);
	close(fd);
	if (ret < 0) {
		ret = -errno;
		*why_r = xasprintf("%s: %s", path, strerror(errno));
		return ret;
	}
	if (S_ISLNK(st.st_mode)) {
		*why_r = xasprintf("%s: refused: is a symbolic link", path);
		return -EPERM;
	}
	if (!S_ISREG(st.st_mode)) {
		*why_r = xasprintf("%s: refused: not a regular file", path);
		return -EPERM;
	}
	if ((st.st_mode & S_IXUSR) == 0) {
		*why_r = xasprintf("%s: skipped: not executable", path);
		return -ENOEXEC;
	}
	ret = exechook_check_mode("file", path, &st, owner, why_r);
	if (ret < 0)
		return ret;
	dir = xstrdup(path);
	if (stat(dirname(dir), &st) < 0) {
		ret = -errno;
		*why_r = xasprintf("%s: %s", dir, strerror(errno));
	} else {
		ret = exechook_check_mode("its folder", path, &st, owner,
					  why_r);
	}
	free(dir);
	return ret;
}

static bool exechook_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

bool exechook_name_ok(const char *name)
{
	static const char *const skip[] = {
		"~", ".bak", ".swp", ".swx", ".tmp", ".rpmsave", ".rpmnew",
		".rpmorig", ".disabled", ".orig", ".dpkg-old", ".dpkg-new",
		".dpkg-dist", ".dpkg-tmp", ".ucf-old", ".ucf-new", ".ucf-dist",
	};

	if (name[0] == '\0' || name[0] == '.')
		return false;
	for (const char *c = name; *c != '\0'; c++) {
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-' ||
		      *c == '.'))
			return false;
	}
	for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		if (exechook_ends_with(name, skip[i]))
			return false;
	}
	return true;
}
