#include "pluginproc.h"
#include "dispatch.h"
#include "log.h"
#include "pluginwire.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ophook/plugin.h"

struct pp_call {
	uint64_t token;
	struct delivery *d;
	struct pp_call *next;
};

struct pluginproc {
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t pipe;
	uv_timer_t kill_timer;
	uv_write_t wreq;
	int fd;               /* our end, until the pipe owns it */
	pid_t pid;
	char *name;           /* the plugin's, for messages */
	const struct pluginproc_cbs *cbs; /* NULL: detached */
	void *ctx;
	struct pluginwire_buf out, wbuf;
	bool writing, pipe_open, timer_ready, exited, stopping;
	char *in;
	size_t in_len, in_cap;
	struct pp_call *head, *tail;
	unsigned inflight;
	uint64_t next_token;
	int64_t hung_event;   /* >0: killed at the timeout of this event */
	unsigned hung_attempt;
	unsigned open_handles;
};

const char *pluginproc_signame(int sig)
{
	switch (sig) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGABRT: return "SIGABRT";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGKILL: return "SIGKILL";
	case SIGTERM: return "SIGTERM";
	case SIGSYS: return "SIGSYS";
	case SIGTRAP: return "SIGTRAP";
	case SIGPIPE: return "SIGPIPE";
	default: return "a signal";
	}
}

void pluginproc_hello_clear(struct pluginproc_hello *h)
{
	free(h->name);
	free(h->description);
	if (h->subscriptions != NULL)
		for (char **s = h->subscriptions; *s != NULL; s++)
			free(*s);
	free(h->subscriptions);
	*h = (struct pluginproc_hello){ 0 };
}

static void pp_free_if_closed(struct pluginproc *pp)
{
	if (pp->open_handles > 0 || !pp->exited)
		return;
	while (pp->head != NULL) {
		struct pp_call *c = pp->head;

		pp->head = c->next;
		free(c);
	}
	pluginwire_buf_free(&pp->out);
	pluginwire_buf_free(&pp->wbuf);
	free(pp->in);
	free(pp->name);
	free(pp);
}

static void pp_handle_closed(uv_handle_t *h)
{
	struct pluginproc *pp = h->data;

	pp->open_handles--;
	pp_free_if_closed(pp);
}

static void pp_close_pipe(struct pluginproc *pp)
{
	if (pp->pipe_open) {
		pp->pipe_open = false;
		uv_close((uv_handle_t *)&pp->pipe, pp_handle_closed);
	} else if (pp->fd >= 0) {
		close(pp->fd);
	}
	pp->fd = -1;
}

/* Report and drop every call in flight: the first one ran when the
 * runner died (first_error), the others never ran (OPHOOK_RETRY). */
static void pp_fail_inflight(struct pluginproc *pp, int rc,
			     const char *first_error, const char *others)
{
	bool first = true;

	while (pp->head != NULL) {
		struct pp_call *c = pp->head;

		pp->head = c->next;
		if (pp->head == NULL)
			pp->tail = NULL;
		pp->inflight--;
		if (pp->cbs != NULL)
			pp->cbs->result(pp->ctx, c->d, first ? rc : OPHOOK_RETRY,
					first ? first_error : others);
		first = false;
		free(c);
	}
}

static void pp_exit_cb(uv_process_t *proc, int64_t status, int term_signal)
{
	struct pluginproc *pp = proc->data;
	char what[256];
	bool crashed = !pp->stopping;
	struct pp_call *c = pp->head;

	pp->exited = true;
	if (pp->hung_event > 0)
		snprintf(what, sizeof(what),
			 "plugin %s: hung in on_event, event %lld, attempt %u: "
			 "runner killed at the delivery timeout",
			 pp->name, (long long)pp->hung_event, pp->hung_attempt);
	else if (term_signal != 0 && c != NULL)
		snprintf(what, sizeof(what),
			 "plugin %s: %s in on_event, event %lld, attempt %u",
			 pp->name, pluginproc_signame(term_signal),
			 (long long)c->d->ev->pub.id, c->d->attempts + 1);
	else if (term_signal != 0)
		snprintf(what, sizeof(what),
			 "plugin %s: %s outside on_event (an action or a "
			 "thread of the plugin)", pp->name,
			 pluginproc_signame(term_signal));
	else if (c != NULL)
		snprintf(what, sizeof(what),
			 "plugin %s: runner exited with status %lld in "
			 "on_event, event %lld, attempt %u", pp->name,
			 (long long)status, (long long)c->d->ev->pub.id,
			 c->d->attempts + 1);
	else
		snprintf(what, sizeof(what),
			 "plugin %s: runner exited with status %lld",
			 pp->name, (long long)status);
	if (pp->stopping && status == 0 && term_signal == 0)
		crashed = false;
	{
		/* the call that ran fails; the ones behind it never ran: they
		 * go to the next runner, no attempt counted */
		const struct pluginproc_cbs *cbs = pp->cbs;
		void *ctx = pp->ctx;
		struct pp_call *rest = NULL;

		if (c != NULL) {
			pp->head = c->next;
			rest = pp->head;
			pp->head = pp->tail = NULL;
			pp->inflight = 0;
			if (cbs != NULL)
				cbs->result(ctx, c->d, -EIO, what);
			free(c);
		}
		pp->cbs = NULL;
		if (cbs != NULL && cbs->died != NULL)
			cbs->died(ctx, pp, crashed, what);
		while (rest != NULL) {
			struct pp_call *r = rest;

			rest = r->next;
			if (cbs != NULL)
				cbs->requeue(ctx, r->d);
			free(r);
		}
	}
	pp_close_pipe(pp);
	if (pp->timer_ready) {
		uv_timer_stop(&pp->kill_timer);
		pp->timer_ready = false;
		uv_close((uv_handle_t *)&pp->kill_timer, pp_handle_closed);
	}
	uv_close((uv_handle_t *)proc, pp_handle_closed);
}

static void pp_kill_pid(struct pluginproc *pp)
{
	if (!pp->exited && pp->pid > 0)
		kill(pp->pid, SIGKILL);
}

int pluginproc_spawn(uv_loop_t *loop, const char *runner, const char *path,
		     unsigned timeout_ms, struct pluginproc **pp_r,
		     struct pluginproc_hello *hello_r, char **error_r);

/* Wait for one frame on the still blocking fd; returns its type with the
 * frame in pp->in[0..*len_r), or -errno. */
static int pp_wait_frame(struct pluginproc *pp, unsigned timeout_ms,
			 struct pluginwire_rd *rd, long *len_r)
{
	int64_t until = mono_ns() + (int64_t)timeout_ms * 1000000;

	for (;;) {
		long fl = pluginwire_frame_len(pp->in, pp->in_len);
		struct pollfd pfd = { .fd = pp->fd, .events = POLLIN };
		int64_t left = (until - mono_ns()) / 1000000;
		ssize_t n;

		if (fl < 0)
			return -EPROTO;
		if (fl > 0) {
			*len_r = fl;
			return pluginwire_open(rd, pp->in, (size_t)fl);
		}
		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			return -errno;
		if (pfd.revents == 0)
			continue;
		if (pp->in_cap - pp->in_len < 4096) {
			pp->in_cap = pp->in_cap != 0 ? pp->in_cap * 2 : 65536;
			pp->in = xrealloc(pp->in, pp->in_cap);
		}
		n = read(pp->fd, pp->in + pp->in_len, pp->in_cap - pp->in_len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		pp->in_len += (size_t)n;
	}
}

static void pp_consume(struct pluginproc *pp, long fl)
{
	memmove(pp->in, pp->in + fl, pp->in_len - (size_t)fl);
	pp->in_len -= (size_t)fl;
}

static char **pp_split_lines(const char *s)
{
	size_t n = 1, i = 0;
	char **v;

	if (s == NULL)
		return NULL;
	for (const char *p = s; *p != '\0'; p++)
		n += *p == '\n';
	v = xcalloc(n + 1, sizeof(*v));
	while (*s != '\0') {
		const char *nl = strchr(s, '\n');
		size_t len = nl != NULL ? (size_t)(nl - s) : strlen(s);

		v[i++] = xstrndup(s, len);
		s += len + (nl != NULL);
	}
	return v;
}

static char *pp_failure(struct pluginproc *pp, int ret, const char *stage)
{
	if (ret == -ETIMEDOUT)
		return xasprintf("plugin runner for %s: no answer %s", pp->name,
				 stage);
	if (ret == -EPIPE)
		return xasprintf("plugin runner for %s: died %s", pp->name,
				 stage);
	return xasprintf("plugin runner for %s: %s %s", pp->name,
			 strerror(-ret), stage);
}

int pluginproc_spawn(uv_loop_t *loop, const char *runner, const char *path,
		     unsigned timeout_ms, struct pluginproc **pp_r,
		     struct pluginproc_hello *hello_r, char **error_r)
{
	struct pluginproc *pp = xcalloc(1, sizeof(*pp));
	uv_process_options_t opt = { 0 };
	uv_stdio_container_t stdio[4];
	char *args[5] = { (char *)runner, "--fd", "3", (char *)path, NULL };
	struct pluginwire_rd rd;
	int sv[2], ret, type;
	long fl;

	pp->loop = loop;
	pp->fd = -1;
	pp->name = xstrdup(path);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		ret = -errno;
		*error_r = xasprintf("%s: socketpair: %s", path, strerror(-ret));
		pp->exited = true;
		pp_free_if_closed(pp);
		return ret;
	}
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = 2; /* the plugin's printf lands in our log */
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = sv[1];
	opt.file = runner;
	opt.args = args;
	opt.stdio = stdio;
	opt.stdio_count = 4;
	opt.exit_cb = pp_exit_cb;
	pp->proc.data = pp;
	ret = uv_spawn(loop, &pp->proc, &opt);
	close(sv[1]);
	if (ret < 0) {
		*error_r = xasprintf("%s: cannot start %s: %s", path, runner,
				     uv_strerror(ret));
		close(sv[0]);
		/* a failed uv_spawn still wants uv_close */
		pp->exited = true;
		pp->open_handles = 1;
		uv_close((uv_handle_t *)&pp->proc, pp_handle_closed);
		return ret;
	}
	pp->open_handles = 1;
	pp->pid = pp->proc.pid;
	pp->fd = sv[0];
	type = pp_wait_frame(pp, timeout_ms, &rd, &fl);
	if (type == PW_HELLO) {
		*hello_r = (struct pluginproc_hello){ 0 };
		hello_r->name = xstrdup(pluginwire_get_str(&rd) ?: "");
		const char *desc = pluginwire_get_str(&rd);
		hello_r->description = desc != NULL ? xstrdup(desc) : NULL;
		hello_r->abi = pluginwire_get_u32(&rd);
		hello_r->flags = pluginwire_get_u32(&rd);
		hello_r->subscriptions = pp_split_lines(pluginwire_get_str(&rd));
		pp_consume(pp, fl);
		free(pp->name);
		pp->name = xstrdup(hello_r->name);
		*pp_r = pp;
		return 0;
	}
	if (type == PW_FAIL) {
		*error_r = xstrdup(pluginwire_get_str(&rd) ?: "load failed");
		ret = -ENOEXEC;
	} else {
		*error_r = pp_failure(pp, type < 0 ? type : -EPROTO,
				      "before saying hello");
		ret = type < 0 ? type : -EPROTO;
	}
	pluginproc_kill(&pp);
	return ret;
}

static void pp_write_cb(uv_write_t *req, int status);

static void pp_flush(struct pluginproc *pp)
{
	uv_buf_t buf;
	struct pluginwire_buf t;

	if (pp->writing || pp->out.len == 0 || !pp->pipe_open)
		return;
	t = pp->wbuf;
	pp->wbuf = pp->out;
	pp->out = t;
	pp->out.len = 0;
	buf = uv_buf_init(pp->wbuf.data, (unsigned)pp->wbuf.len);
	pp->wreq.data = pp;
	if (uv_write(&pp->wreq, (uv_stream_t *)&pp->pipe, &buf, 1,
		     pp_write_cb) == 0)
		pp->writing = true;
	else
		pp_kill_pid(pp);
}

static void pp_write_cb(uv_write_t *req, int status)
{
	struct pluginproc *pp = req->data;

	pp->writing = false;
	pp->wbuf.len = 0;
	if (status < 0) {
		pp_kill_pid(pp);
		return;
	}
	pp_flush(pp);
}

static void pp_alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct pluginproc *pp = h->data;

	(void)hint;
	if (pp->in_cap - pp->in_len < 65536) {
		pp->in_cap = pp->in_cap != 0 ? pp->in_cap * 2 : 262144;
		pp->in = xrealloc(pp->in, pp->in_cap);
	}
	*buf = uv_buf_init(pp->in + pp->in_len,
			   (unsigned)(pp->in_cap - pp->in_len));
}

static void pp_frame(struct pluginproc *pp, int type, struct pluginwire_rd *rd)
{
	const struct pluginproc_cbs *cbs = pp->cbs;

	switch (type) {
	case PW_RESULT: {
		uint64_t token = pluginwire_get_u64(rd);
		int rc = (int)pluginwire_get_u32(rd);
		const char *err = pluginwire_get_str(rd);
		struct pp_call *c = pp->head;

		if (rd->bad || c == NULL || c->token != token) {
			log_error("plugin %s: runner answered out of order",
				  pp->name);
			pp_kill_pid(pp);
			return;
		}
		pp->head = c->next;
		if (pp->head == NULL)
			pp->tail = NULL;
		else
			delivery_started(pp->head->d); /* runs now */
		pp->inflight--;
		if (cbs != NULL)
			cbs->result(pp->ctx, c->d, rc, err);
		free(c);
		break;
	}
	case PW_LOG: {
		unsigned level = pluginwire_get_u32(rd);
		const char *msg = pluginwire_get_str(rd);

		if (!rd->bad && cbs != NULL && msg != NULL)
			cbs->log(pp->ctx, (int)level, msg);
		break;
	}
	case PW_EMIT: {
		const char *t = pluginwire_get_str(rd);
		const char *s = pluginwire_get_str(rd);
		const char *f = pluginwire_get_str(rd);

		if (!rd->bad && cbs != NULL && t != NULL && s != NULL)
			cbs->emit(pp->ctx, t, s, f);
		break;
	}
	case PW_OWN_WRITE: {
		const char *path = pluginwire_get_str(rd);

		if (!rd->bad && cbs != NULL && path != NULL)
			cbs->own_write(pp->ctx, path);
		break;
	}
	default:
		break;
	}
}

static void pp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct pluginproc *pp = s->data;
	size_t off = 0;
	long fl;

	(void)buf;
	if (nread < 0) {
		/* the runner is gone or going: its exit status tells why */
		uv_read_stop(s);
		pp_kill_pid(pp);
		return;
	}
	pp->in_len += (size_t)nread;
	while ((fl = pluginwire_frame_len(pp->in + off, pp->in_len - off)) >
	       0) {
		struct pluginwire_rd rd;
		int type = pluginwire_open(&rd, pp->in + off, (size_t)fl);

		off += (size_t)fl;
		pp_frame(pp, type, &rd);
	}
	if (fl < 0) {
		log_error("plugin %s: bad frame from its runner", pp->name);
		uv_read_stop(s);
		pp_kill_pid(pp);
	}
	pp_consume(pp, (long)off);
}

int pluginproc_init(struct pluginproc *pp, const char *init_json,
		    unsigned timeout_ms, const struct pluginproc_cbs *cbs,
		    void *ctx, char **error_r)
{
	struct pluginwire_buf b = { 0 };
	struct pluginwire_rd rd;
	size_t off = 0;
	long fl;
	int type;

	pluginwire_begin(&b, PW_INIT);
	pluginwire_str(&b, init_json);
	pluginwire_end(&b);
	while (off < b.len) {
		ssize_t n = write(pp->fd, b.data + off, b.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		off += (size_t)n;
	}
	pluginwire_buf_free(&b);
	pp->cbs = cbs;
	pp->ctx = ctx;
	/* init may log before it answers */
	for (;;) {
		type = pp_wait_frame(pp, timeout_ms, &rd, &fl);
		if (type == PW_LOG || type == PW_EMIT || type == PW_OWN_WRITE) {
			pp_frame(pp, type, &rd);
			pp_consume(pp, fl);
			continue;
		}
		break;
	}
	if (type == PW_READY) {
		pp_consume(pp, fl);
		uv_pipe_init(pp->loop, &pp->pipe, 0);
		pp->pipe.data = pp;
		if (uv_pipe_open(&pp->pipe, pp->fd) == 0) {
			pp->fd = -1;
			pp->pipe_open = true;
			pp->open_handles++;
			uv_read_start((uv_stream_t *)&pp->pipe, pp_alloc_cb,
				      pp_read_cb);
			return 0;
		}
		uv_close((uv_handle_t *)&pp->pipe, NULL);
		*error_r = xasprintf("plugin %s: cannot watch its runner",
				     pp->name);
	} else if (type == PW_FAIL) {
		*error_r = xasprintf("plugin %s: %s", pp->name,
				     pluginwire_get_str(&rd) ?: "init failed");
	} else {
		*error_r = pp_failure(pp, type < 0 ? type : -EPROTO,
				      "in init");
	}
	pp->cbs = NULL;
	pluginproc_kill(&pp);
	return -EINVAL;
}

void pluginproc_deliver(struct pluginproc *pp, struct delivery *d)
{
	struct pp_call *c = xmalloc(sizeof(*c));
	const struct ophook_event *ev = &d->view.pub;

	*c = (struct pp_call){ .token = ++pp->next_token, .d = d };
	if (pp->tail != NULL)
		pp->tail->next = c;
	else {
		pp->head = c;
		delivery_started(d);
	}
	pp->tail = c;
	pp->inflight++;
	pluginwire_begin(&pp->out, PW_EVENT);
	pluginwire_u64(&pp->out, c->token);
	pluginwire_u64(&pp->out, (uint64_t)ev->id);
	pluginwire_u64(&pp->out, (uint64_t)ev->time_ms);
	pluginwire_u32(&pp->out, ev->attempt);
	pluginwire_str(&pp->out, ev->type);
	pluginwire_str(&pp->out, ev->subject);
	pluginwire_str(&pp->out, ev->source);
	pluginwire_str(&pp->out, ev->json);
	pluginwire_end(&pp->out);
	pp_flush(pp);
}

void pluginproc_cancel(struct pluginproc *pp, struct delivery *d)
{
	if (pp->head == NULL || pp->head->d != d || pp->exited)
		return;
	pp->hung_event = d->ev->pub.id;
	pp->hung_attempt = d->attempts + 1;
	pp_kill_pid(pp);
}

static void pp_kill_timer_cb(uv_timer_t *t)
{
	pp_kill_pid(t->data);
}

void pluginproc_stop(struct pluginproc **ppp)
{
	struct pluginproc *pp = *ppp;
	const char fini_frame[5] = { 1, 0, 0, 0, PW_FINI };

	if (pp == NULL)
		return;
	*ppp = NULL;
	pp_fail_inflight(pp, OPHOOK_RETRY, "the plugin was stopped",
			 "the plugin was stopped");
	pp->cbs = NULL;
	pp->stopping = true;
	if (pp->exited)
		return;
	/* what is queued, then FINI; the runner also ends at EOF */
	if (pp->pipe_open && !pp->writing && pp->out.len == 0) {
		if (uv_try_write((uv_stream_t *)&pp->pipe,
				 &(uv_buf_t){ .base = (char *)fini_frame,
					      .len = 5 }, 1) != 5)
			pp_kill_pid(pp);
	}
	pp_close_pipe(pp);
	uv_timer_init(pp->loop, &pp->kill_timer);
	pp->kill_timer.data = pp;
	pp->timer_ready = true;
	pp->open_handles++;
	uv_timer_start(&pp->kill_timer, pp_kill_timer_cb, 2000, 0);
}

void pluginproc_kill(struct pluginproc **ppp)
{
	struct pluginproc *pp = *ppp;

	if (pp == NULL)
		return;
	*ppp = NULL;
	pp->cbs = NULL;
	pp->stopping = true;
	pp_kill_pid(pp);
	if (pp->exited) {
		pp_close_pipe(pp);
		pp_free_if_closed(pp);
	}
}

pid_t pluginproc_pid(const struct pluginproc *pp)
{
	return pp->pid;
}

unsigned pluginproc_inflight(const struct pluginproc *pp)
{
	return pp->inflight;
}
