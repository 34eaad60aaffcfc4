#define _GNU_SOURCE
#include "exechook.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ophook/plugin.h"
#include "util.h"

/* After the process exited, how long to wait for its pipes to close (a
 * background child may hold them). */
#define EXECHOOK_EOF_GRACE_MS 200

struct exechook_tail {
	char *buf;
	size_t len, max, dropped;
};

struct exechook_proc {
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t in, out, err;
	uv_timer_t timer;      /* timeout, then EOF grace */
	uv_timer_t kill_timer; /* SIGKILL after SIGTERM */
	uv_write_t wreq;
	uv_shutdown_t sreq;
	char *stdin_copy;
	struct exechook_tail t_out, t_err;
	char rbuf[65536];
	exechook_cb *cb;
	void *ctx;
	unsigned timeout_ms;
	int handles;     /* open handles; freed at 0 */
	int pipes_open;  /* stdout/stderr not yet at EOF */
	pid_t pid;
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

static void exechook_handle_closed(uv_handle_t *handle)
{
	struct exechook_proc *p = handle->data;

	if (--p->handles > 0)
		return;
	free(p->t_out.buf);
	free(p->t_err.buf);
	free(p->stdin_copy);
	free(p);
}

static void exechook_close(struct exechook_proc *p, uv_handle_t *handle)
{
	if (handle->loop == NULL || uv_is_closing(handle))
		return;
	uv_close(handle, exechook_handle_closed);
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

	uv_timer_stop(&p->timer);
	exechook_close(p, (uv_handle_t *)&p->timer);
	exechook_close(p, (uv_handle_t *)&p->in);
	exechook_close(p, (uv_handle_t *)&p->out);
	exechook_close(p, (uv_handle_t *)&p->err);
	exechook_close(p, (uv_handle_t *)&p->proc);
	if (!p->kill_pending)
		exechook_close(p, (uv_handle_t *)&p->kill_timer);
}

static void exechook_grace_cb(uv_timer_t *t)
{
	exechook_finish(t->data);
}

static void exechook_timeout_cb(uv_timer_t *t)
{
	exechook_kill(t->data);
}

void exechook_kill(struct exechook_proc *p)
{
	if (p->finished || p->timed_out)
		return;
	p->timed_out = true;
	exechook_killpg(p, SIGTERM);
	p->kill_pending = true;
	uv_timer_start(&p->kill_timer, exechook_kill_timer_cb,
		       EXECHOOK_KILL_DELAY_MS, 0);
}

static void exechook_exit_cb(uv_process_t *proc, int64_t status, int sig)
{
	struct exechook_proc *p = proc->data;

	p->exited = true;
	p->exit_status = status;
	p->term_signal = sig;
	if (p->pipes_open == 0) {
		exechook_finish(p);
		return;
	}
	/* wait a little for the rest of the output */
	uv_timer_stop(&p->timer);
	uv_timer_start(&p->timer, exechook_grace_cb, EXECHOOK_EOF_GRACE_MS, 0);
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

int exechook_spawn(uv_loop_t *loop, const struct exechook_opts *opts,
		   exechook_cb *cb, void *ctx, struct exechook_proc **p_r,
		   const char **error_r)
{
	struct exechook_proc *p = xcalloc(1, sizeof(*p));
	uv_process_options_t o;
	uv_stdio_container_t stdio[3];
	size_t max = opts->output_max > 0 ? opts->output_max : 4096;
	int ret;

	p->loop = loop;
	p->cb = cb;
	p->ctx = ctx;
	p->timeout_ms = opts->timeout_ms;
	p->t_out.max = p->t_err.max = max;
	p->t_out.buf = xmalloc(max + 1);
	p->t_err.buf = xmalloc(max + 1);
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

	memset(&o, 0, sizeof(o));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&p->in;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&p->out;
	stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[2].data.stream = (uv_stream_t *)&p->err;
	o.exit_cb = exechook_exit_cb;
	o.file = opts->argv[0];
	o.args = (char **)opts->argv;
	o.env = (char **)opts->env;
	o.cwd = opts->cwd != NULL ? opts->cwd : "/";
	o.flags = UV_PROCESS_DETACHED; /* setsid: own process group */
	o.stdio_count = 3;
	o.stdio = stdio;
	p->proc.data = p;
	ret = uv_spawn(loop, &p->proc, &o);
	p->handles++; /* the process handle is initialised either way */
	if (ret < 0) {
		*error_r = uv_strerror(ret);
		p->finished = true;
		exechook_close(p, (uv_handle_t *)&p->timer);
		exechook_close(p, (uv_handle_t *)&p->kill_timer);
		exechook_close(p, (uv_handle_t *)&p->in);
		exechook_close(p, (uv_handle_t *)&p->out);
		exechook_close(p, (uv_handle_t *)&p->err);
		exechook_close(p, (uv_handle_t *)&p->proc);
		return ret;
	}
	p->pid = p->proc.pid;
	p->pipes_open = 2;
	uv_read_start((uv_stream_t *)&p->out, exechook_alloc_cb,
		      exechook_read_cb);
	uv_read_start((uv_stream_t *)&p->err, exechook_alloc_cb,
		      exechook_read_cb);
	if (opts->stdin_len > 0) {
		uv_buf_t b;

		p->stdin_copy = xmalloc(opts->stdin_len);
		memcpy(p->stdin_copy, opts->stdin_data, opts->stdin_len);
		b = uv_buf_init(p->stdin_copy, (unsigned)opts->stdin_len);
		p->wreq.data = p;
		p->sreq.data = p;
		if (uv_write(&p->wreq, (uv_stream_t *)&p->in, &b, 1,
			     exechook_write_cb) < 0)
			exechook_close(p, (uv_handle_t *)&p->in);
	} else {
		exechook_close(p, (uv_handle_t *)&p->in);
	}
	if (opts->timeout_ms > 0)
		uv_timer_start(&p->timer, exechook_timeout_cb, opts->timeout_ms,
			       0);
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
	int ret;

	memset(res, 0, sizeof(*res));
	ret = uv_loop_init(&loop);
	if (ret < 0) {
		*error_r = uv_strerror(ret);
		return ret;
	}
	ret = exechook_spawn(&loop, opts, exechook_sync_cb, &s, NULL, error_r);
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
