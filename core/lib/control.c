/* The control socket: JSON lines over a Unix stream socket (libuv, loop
 * thread).  See control.h for the protocol.
 *
 * Each client has a queue of replies, one per request, in request order.  A
 * reply that is answered while an earlier one is still pending keeps its
 * output until the earlier ones are written, so answers always come back in
 * order.  A reply whose client went away is detached (client NULL): answering
 * it only frees it. */
#define _GNU_SOURCE
#include "control.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#define CONTROL_LINE_MAX (1024u * 1024u)   /* bytes in one request line */
#define CONTROL_READ_CHUNK (64u * 1024u)   /* read at most this at once */
#define CONTROL_PENDING_MAX 256u           /* replies queued per client */
#define CONTROL_OUT_MAX (64u * 1024u * 1024u) /* bytes waiting per client,
						 queued replies and unwritten
						 bytes together */
#define CONTROL_MAX_CLIENTS_DEF 64u       /* clients at once */
#define CONTROL_ROOT_RESERVE 4u           /* more for root, over the limit */
#define CONTROL_IDLE_MS_DEF (300u * 1000u) /* no request, nothing pending */
#define CONTROL_REQUEST_MS_DEF (30u * 1000u) /* a request line in full; a
						reply read by the client */

struct control_cmd {
	control_cmd_fn *fn;
	void *ctx;
};

struct control_client;

struct control_reply {
	struct control_client *client; /* NULL once the client is gone */
	struct control_reply *next;    /* the client's queue */
	unsigned uid;
	bool done;                     /* answered (final line in out, if any) */
	char *out;                     /* lines waiting for earlier replies */
	size_t out_len, out_cap;
	control_reply_gone_fn *gone_fn;
	void *gone_ctx;
};

struct control_client {
	struct control *c;
	uv_pipe_t pipe;
	struct control_client *prev, *next;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char *buf;                /* received bytes not yet handled */
	size_t len, cap;
	struct control_reply *head, *tail;
	unsigned n_pending;
	bool closing;             /* uv_close called or shutdown pending */
	bool paused;              /* reading stopped: too many replies queued */
	bool processing;          /* inside client_process() */
	uint64_t active_ms;       /* last read or write progress */
	uint64_t partial_ms;      /* first byte of an unfinished line (0) */
	size_t queued;            /* bytes in replies' out, not yet written */
};

struct control {
	char *group_name;
	uv_loop_t *loop;
	uv_pipe_t server;
	bool server_open;
	char *path;
	bool has_group;
	gid_t group;
	struct hmap *cmds;        /* name -> struct control_cmd */
	struct hmap *group_cmds;  /* what a non-root peer may run: name -> c */
	struct control_client *clients;
	unsigned handles;         /* open uv handles (server + clients) */
	bool stopping;
	unsigned n_clients;       /* accepted and not closed */
	unsigned max_clients, idle_ms, request_ms;
	bool refusing;            /* over the limit: logged once an episode */
	unsigned n_refused;       /* in this episode */
	bool accept_failing;      /* accept fails (EMFILE): logged once */
	uv_timer_t timer;         /* idle and request timeouts */
};

struct control_write {
	uv_write_t req;
	char *data;
};

static __thread char control_errbuf[512];

static const char *control_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *control_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(control_errbuf, sizeof(control_errbuf), fmt, ap);
	va_end(ap);
	return control_errbuf;
}

/* ---- peer check ---- */

/* True when `group` is in the list. */
static bool control_gid_in(const gid_t *gids, int n, gid_t group)
{
	for (int i = 0; i < n; i++) {
		if (gids[i] == group)
			return true;
	}
	return false;
}

/* May a peer with uid/gid use the socket?  Root always; others when the
 * group is configured and is their primary or a supplementary group (from
 * the group database, by the uid's user name). */
bool control_peer_allowed(uid_t uid, gid_t gid, bool has_group,
			  gid_t group)
{
	if (uid == 0)
		return true;
	if (!has_group)
		return false;
	if (gid == group)
		return true;

	struct passwd pw, *pwp = NULL;
	char pwbuf[4096];
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp) != 0 ||
	    pwp == NULL)
		return false;

	int n = 64;
	gid_t *gids = xmalloc(sizeof(*gids) * (size_t)n);
	if (getgrouplist(pw.pw_name, pw.pw_gid, gids, &n) < 0) {
		gids = xrealloc(gids, sizeof(*gids) * (size_t)n);
		if (getgrouplist(pw.pw_name, pw.pw_gid, gids, &n) < 0)
			n = 0;
	}
	bool ok = control_gid_in(gids, n, group);
	free(gids);
	return ok;
}

/* ---- replies and writing ---- */

static void control_client_close(struct control_client *cl);

static void control_write_cb(uv_write_t *req, int status)
{
	struct control_write *w = (struct control_write *)req;
	struct control_client *cl = req->handle->data;

	if (status == 0)
		cl->active_ms = uv_now(cl->c->loop);
	if (status < 0 && status != UV_ECANCELED) {
		log_debug("control: write to client pid %d: %s",
			  (int)cl->pid, uv_strerror(status));
		control_client_close(cl);
	}
	free(w->data);
	free(w);
}

/* Write data (malloc'd, taken over) to the client. */
static void control_client_write(struct control_client *cl, char *data,
				 size_t len)
{
	if (cl->closing || len == 0) {
		free(data);
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe) + len +
		    cl->queued >
	    CONTROL_OUT_MAX) {
		log_warn("control: client pid %d does not read its replies; "
			 "closing it", (int)cl->pid);
		free(data);
		control_client_close(cl);
		return;
	}
	struct control_write *w = xmalloc(sizeof(*w));
	w->data = data;
	uv_buf_t b = uv_buf_init(data, (unsigned)len);
	int r = uv_write(&w->req, (uv_stream_t *)&cl->pipe, &b, 1,
			 control_write_cb);
	if (r < 0) {
		free(data);
		free(w);
		control_client_close(cl);
	}
}

/* Serialize obj as one line (compact JSON + '\n'); caller frees. */
static char *control_line(json_t *obj, size_t *len_r)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL) {
		/* invalid UTF-8 or the like in a result */
		s = xstrdup("{\"ok\":false,\"error\":\"reply could not be "
			    "encoded as JSON\",\"exit\":2}");
	}
	size_t len = strlen(s);
	char *line = xrealloc(s, len + 2); /* no copy of a big answer */
	line[len] = '\n';
	line[len + 1] = '\0';
	*len_r = len + 1;
	return line;
}

static void control_reply_free(struct control_reply *r)
{
	free(r->out);
	free(r);
}

static void control_reply_append(struct control_reply *r, const char *data,
				 size_t len)
{
	if (r->out_len + len > r->out_cap) {
		size_t cap = r->out_cap == 0 ? 4096 : r->out_cap;
		while (cap < r->out_len + len)
			cap *= 2;
		r->out = xrealloc(r->out, cap);
		r->out_cap = cap;
	}
	memcpy(r->out + r->out_len, data, len);
	r->out_len += len;
}

static void control_client_process(struct control_client *cl);
static void control_start_read(struct control_client *cl);

/* Write what the replies at the head of the queue have, in order; drop the
 * answered ones. */
static void control_client_flush(struct control_client *cl)
{
	struct control_reply *r;

	while ((r = cl->head) != NULL) {
		if (r->out_len > 0) {
			cl->queued -= r->out_len;
			control_client_write(cl, r->out, r->out_len);
			r->out = NULL;
			r->out_len = r->out_cap = 0;
		}
		if (!r->done)
			break;
		cl->head = r->next;
		if (cl->head == NULL)
			cl->tail = NULL;
		cl->n_pending--;
		control_reply_free(r);
	}
	if (cl->paused && !cl->closing && !cl->processing &&
	    cl->n_pending < CONTROL_PENDING_MAX / 2)
		control_client_process(cl);
}

/* Queue one line for reply r: written now when r is at the head of its
 * client's queue, else kept until the earlier replies are answered. */
static void control_reply_put(struct control_reply *r, json_t *obj)
{
	size_t len;
	char *line = control_line(obj, &len);

	if (r->client->head == r && r->out_len == 0) {
		control_client_write(r->client, line, len);
		return;
	} else if (r->client->queued + len +
			   uv_stream_get_write_queue_size(
				   (uv_stream_t *)&r->client->pipe) >
		   CONTROL_OUT_MAX) {
		log_warn("control: client pid %d: too much output queued; "
			 "closing it", (int)r->client->pid);
		control_client_close(r->client);
	} else {
		control_reply_append(r, line, len);
		r->client->queued += len;
	}
	free(line);
}

/* Finish r: its output is complete. */
static void control_reply_finish(struct control_reply **reply)
{
	struct control_reply *r = *reply;

	*reply = NULL;
	if (r == NULL)
		return;
	if (r->client == NULL) {
		control_reply_free(r);
		return;
	}
	r->done = true;
	r->gone_fn = NULL;
	control_client_flush(r->client);
}

void control_reply_ok(struct control_reply **reply, json_t *result,
		      const char *text, int exit_status)
{
	struct control_reply *r = *reply;

	if (r == NULL) {
		json_decref(result);
		return;
	}
	if (r->client != NULL) {
		json_t *o = json_object();
		json_object_set_new(o, "ok", json_true());
		json_object_set_new(o, "result",
				    result != NULL ? result : json_null());
		result = NULL;
		if (text != NULL)
			json_object_set_new(o, "text", json_string(text));
		json_object_set_new(o, "exit", json_integer(exit_status));
		control_reply_put(r, o);
		json_decref(o);
	}
	json_decref(result);
	control_reply_finish(reply);
}

/* The error response object for message msg. */
static json_t *control_error_obj(int exit_status, const char *msg)
{
	json_t *o = json_object();

	json_object_set_new(o, "ok", json_false());
	json_object_set_new(o, "error", json_string(msg));
	json_object_set_new(o, "exit", json_integer(exit_status));
	return o;
}

void control_reply_error(struct control_reply **reply, int exit_status,
			 const char *fmt, ...)
{
	struct control_reply *r = *reply;

	if (r == NULL)
		return;
	if (r->client != NULL) {
		char *msg;
		va_list ap;
		va_start(ap, fmt);
		if (vasprintf(&msg, fmt, ap) < 0)
			msg = NULL;
		va_end(ap);
		json_t *o = control_error_obj(exit_status,
					      msg != NULL ? msg : fmt);
		free(msg);
		control_reply_put(r, o);
		json_decref(o);
	}
	control_reply_finish(reply);
}

bool control_reply_stream(struct control_reply *reply, json_t *ev)
{
	if (reply == NULL || reply->client == NULL || reply->client->closing)
		return false;
	json_t *o = json_object();
	json_object_set(o, "event", ev);
	control_reply_put(reply, o);
	json_decref(o);
	return reply->client != NULL && !reply->client->closing;
}

void control_reply_end(struct control_reply **reply)
{
	control_reply_finish(reply);
}

unsigned control_reply_uid(const struct control_reply *reply)
{
	return reply->uid;
}

void control_reply_on_gone(struct control_reply *reply,
			   control_reply_gone_fn *fn, void *ctx)
{
	reply->gone_fn = fn;
	reply->gone_ctx = ctx;
}

bool control_reply_gone(const struct control_reply *reply)
{
	return reply->client == NULL || reply->client->closing;
}

/* ---- clients ---- */

/* Detach every reply from cl: answered ones are freed, pending ones keep
 * living without a client and their gone callbacks run. */
static void control_client_detach(struct control_client *cl)
{
	struct control_reply *r = cl->head;

	cl->head = cl->tail = NULL;
	cl->n_pending = 0;
	cl->queued = 0;
	while (r != NULL) {
		struct control_reply *next = r->next;
		r->next = NULL;
		r->client = NULL;
		if (r->done) {
			control_reply_free(r);
		} else if (r->gone_fn != NULL) {
			control_reply_gone_fn *fn = r->gone_fn;
			r->gone_fn = NULL;
			fn(r, r->gone_ctx); /* may free r */
		}
		r = next;
	}
}

static void control_handle_closed(struct control *c)
{
	if (--c->handles > 0 || !c->stopping)
		return;
	hmap_free(&c->cmds, free);
	hmap_free(&c->group_cmds, NULL);
	free(c->path);
	free(c->group_name);
	free(c);
}

static void control_client_close_cb(uv_handle_t *h)
{
	struct control_client *cl = h->data;
	struct control *c = cl->c;

	if (--c->n_clients < c->max_clients && c->refusing) {
		log_info("control: %u clients, under the limit of %u again "
			 "(%u refused meanwhile)", c->n_clients,
			 c->max_clients, c->n_refused);
		c->refusing = false;
		c->n_refused = 0;
	}
	control_client_detach(cl);
	free(cl->buf);
	free(cl);
	control_handle_closed(c);
}

/* Close the client now (pending writes are cancelled). */
static void control_client_close(struct control_client *cl)
{
	if (uv_is_closing((uv_handle_t *)&cl->pipe))
		return;
	cl->closing = true;
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		cl->c->clients = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	cl->prev = cl->next = NULL;
	uv_close((uv_handle_t *)&cl->pipe, control_client_close_cb);
}

static void control_shutdown_cb(uv_shutdown_t *req, int status)
{
	struct control_client *cl = req->handle->data;

	(void)status;
	free(req);
	control_client_close(cl);
}

/* Send a last error line, then close once it is written. */
static void control_client_fail(struct control_client *cl, const char *fmt,
				...) __attribute__((format(printf, 2, 3)));
static void control_client_fail(struct control_client *cl, const char *fmt,
				...)
{
	char msg[512];
	va_list ap;

	if (cl->closing)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	json_t *o = control_error_obj(2, msg);
	size_t len;
	char *line = control_line(o, &len);
	json_decref(o);
	control_client_write(cl, line, len);
	if (cl->closing)
		return;
	uv_read_stop((uv_stream_t *)&cl->pipe);
	cl->closing = true;
	uv_shutdown_t *req = xmalloc(sizeof(*req));
	if (uv_shutdown(req, (uv_stream_t *)&cl->pipe, control_shutdown_cb) < 0) {
		free(req);
		cl->closing = false;
		control_client_close(cl);
	}
}

/* Comma-separated list of the registered commands (dotted ones as the two
 * words a user types).  Caller frees. */
struct control_names {
	const char **v;
	size_t n;
};

static bool control_names_add(const char *key, void *value, void *ctx)
{
	struct control_names *names = ctx;

	(void)value;
	names->v[names->n++] = key;
	return true;
}

static int control_names_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *control_command_list(struct control *c)
{
	struct control_names names = {
		.v = xcalloc(hmap_count(c->cmds) + 1, sizeof(char *)),
	};
	hmap_each(c->cmds, control_names_add, &names);
	qsort(names.v, names.n, sizeof(char *), control_names_cmp);

	size_t len = 1;
	for (size_t i = 0; i < names.n; i++)
		len += strlen(names.v[i]) + 2;
	char *s = xmalloc(len);
	char *p = s;
	*p = '\0';
	for (size_t i = 0; i < names.n; i++) {
		if (i > 0) {
			memcpy(p, ", ", 2);
			p += 2;
		}
		for (const char *k = names.v[i]; *k != '\0'; k++)
			*p++ = *k == '.' ? ' ' : *k;
		*p = '\0';
	}
	free(names.v);
	return s;
}

/* `commands`: every registered command, as ophookctl spells it ("hooks
 * test", not "hooks.test"), sorted; the source of truth for its help. */
static void control_cmd_commands(struct control_reply *reply, json_t *args,
				 json_t *req, void *ctx)
{
	struct control *c = ctx;
	struct control_names names = {
		.v = xcalloc(hmap_count(c->cmds) + 1, sizeof(char *)),
	};
	json_t *arr = json_array();
	char *text = xstrdup("");

	(void)args;
	(void)req;
	hmap_each(c->cmds, control_names_add, &names);
	qsort(names.v, names.n, sizeof(char *), control_names_cmp);
	for (size_t i = 0; i < names.n; i++) {
		char *name = xstrdup(names.v[i]), *old = text;

		for (char *k = name; *k != '\0'; k++)
			if (*k == '.')
				*k = ' ';
		json_array_append_new(arr, json_string(name));
		text = xasprintf("%s%s\n", old, name);
		free(old);
		free(name);
	}
	free(names.v);
	control_reply_ok(&reply, json_pack("{so}", "commands", arr), text, 0);
	free(text);
}

/* Find the command for (cmd, args): "cmd.args[0]" when registered (then
 * *skip_r = 1), else "cmd". */
static const struct control_cmd *control_lookup(struct control *c,
						const char *cmd, json_t *args,
						size_t *skip_r)
{
	*skip_r = 0;
	if (json_array_size(args) > 0) {
		const char *sub = json_string_value(json_array_get(args, 0));
		if (sub != NULL && strchr(sub, '.') == NULL) {
			char *name = xasprintf("%s.%s", cmd, sub);
			const struct control_cmd *cc = hmap_get(c->cmds, name);
			free(name);
			if (cc != NULL) {
				*skip_r = 1;
				return cc;
			}
		}
	}
	return hmap_get(c->cmds, cmd);
}

/* A new reply at the end of cl's queue. */
static struct control_reply *control_reply_new(struct control_client *cl)
{
	struct control_reply *r = xcalloc(1, sizeof(*r));

	r->client = cl;
	r->uid = (unsigned)cl->uid;
	if (cl->tail != NULL)
		cl->tail->next = r;
	else
		cl->head = r;
	cl->tail = r;
	cl->n_pending++;
	return r;
}

/* Check a parsed request; NULL when fine, else what is wrong. */
static const char *control_request_check(json_t *req)
{
	if (!json_is_object(req))
		return "request must be a JSON object";
	json_t *cmd = json_object_get(req, "cmd");
	if (cmd == NULL)
		return "request has no \"cmd\"";
	if (!json_is_string(cmd) || json_string_length(cmd) == 0)
		return "\"cmd\" must be a non-empty string";
	json_t *args = json_object_get(req, "args");
	if (args != NULL && !json_is_null(args)) {
		size_t i;
		json_t *a;
		if (!json_is_array(args))
			return "\"args\" must be an array of strings";
		json_array_foreach(args, i, a) {
			if (!json_is_string(a))
				return "\"args\" must be an array of strings";
		}
	}
	return NULL;
}

/* Handle one request line (without its newline). */
static void control_client_line(struct control_client *cl, const char *line,
				size_t len)
{
	struct control *c = cl->c;
	struct control_reply *r;
	json_error_t jerr;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len == 0)
		return; /* empty lines are ignored */

	r = control_reply_new(cl);
	json_t *req = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL) {
		control_reply_error(&r, 2,
				    "malformed JSON request: %s (column %d)",
				    jerr.text, jerr.column);
		return;
	}
	const char *why = control_request_check(req);
	if (why != NULL) {
		control_reply_error(&r, 2, "%s", why);
		json_decref(req);
		return;
	}
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	json_t *args = json_object_get(req, "args");
	size_t skip;
	const struct control_cmd *cc = control_lookup(c, cmd, args, &skip);
	if (cc == NULL) {
		char *list = control_command_list(c);
		control_reply_error(&r, 2, "unknown command '%s' (try: %s)",
				    cmd, list);
		free(list);
		json_decref(req);
		return;
	}
	if (r->uid != 0) {
		/* the daemon's trust model: a socket_group member runs only
		 * what control_allow_group() named */
		const char *name = skip != 0
			? json_string_value(json_array_get(args, 0)) : NULL;
		char *full = name != NULL ? xasprintf("%s.%s", cmd, name)
					  : xstrdup(cmd);

		if (hmap_get(c->group_cmds, full) == NULL) {
			log_warn("control: refused '%s' to uid %u (pid %d): "
				 "root only", full, r->uid, (int)cl->pid);
			control_reply_error(&r, 2, "permission denied: '%s' is "
					    "for root only (uid %u is a "
					    "socket_group member)", full,
					    r->uid);
			free(full);
			json_decref(req);
			return;
		}
		free(full);
	}
	json_t *a = json_array();
	for (size_t i = skip; i < json_array_size(args); i++)
		json_array_append(a, json_array_get(args, i));
	cc->fn(r, a, req, cc->ctx);
	json_decref(a);
	json_decref(req);
}

/* Handle the complete lines in cl's buffer (stops when too many replies are
 * queued, and reading with it). */
static void control_client_process(struct control_client *cl)
{
	size_t start = 0;

	cl->processing = true;
	while (!cl->closing && cl->n_pending < CONTROL_PENDING_MAX) {
		char *nl = memchr(cl->buf + start, '\n', cl->len - start);
		if (nl == NULL)
			break;
		size_t len = (size_t)(nl - (cl->buf + start));
		if (len > CONTROL_LINE_MAX)
			break; /* reported below */
		control_client_line(cl, cl->buf + start, len);
		start += len + 1;
	}
	cl->processing = false;
	if (cl->closing)
		return;
	if (start > 0) {
		memmove(cl->buf, cl->buf + start, cl->len - start);
		cl->len -= start;
	}

	/* the first line (complete or not) too long? */
	char *nl = memchr(cl->buf, '\n', cl->len);
	size_t first = nl != NULL ? (size_t)(nl - cl->buf) : cl->len;
	if (first > CONTROL_LINE_MAX) {
		control_client_fail(cl, "request line longer than %u bytes",
				    CONTROL_LINE_MAX);
		return;
	}
	/* an unfinished request line must be finished in request_ms */
	if (cl->len == 0)
		cl->partial_ms = 0;
	else if (cl->partial_ms == 0 || start > 0)
		cl->partial_ms = uv_now(cl->c->loop);
	if (cl->cap > 4 * CONTROL_READ_CHUNK && cl->len < CONTROL_READ_CHUNK) {
		cl->cap = CONTROL_READ_CHUNK;
		cl->buf = xrealloc(cl->buf, cl->cap);
	}

	if (cl->n_pending >= CONTROL_PENDING_MAX) {
		/* too many answers outstanding: read again once they are
		 * written (control_client_flush) */
		if (!cl->paused) {
			uv_read_stop((uv_stream_t *)&cl->pipe);
			cl->paused = true;
		}
		return;
	}
	if (cl->paused) {
		cl->paused = false;
		control_start_read(cl);
	}
}

static void control_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
	struct control_client *cl = h->data;

	(void)suggested;
	/* never more than one line plus one chunk */
	if (cl->cap - cl->len < CONTROL_READ_CHUNK) {
		size_t cap = cl->len + CONTROL_READ_CHUNK;
		cl->buf = xrealloc(cl->buf, cap);
		cl->cap = cap;
	}
	*b = uv_buf_init(cl->buf + cl->len, (unsigned)(cl->cap - cl->len));
}

static void control_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
	struct control_client *cl = s->data;

	(void)b;
	if (nread < 0) {
		if (nread != UV_EOF)
			log_debug("control: read from pid %d: %s",
				  (int)cl->pid, uv_strerror((int)nread));
		control_client_close(cl);
		return;
	}
	if (cl->closing)
		return;
	cl->len += (size_t)nread;
	cl->active_ms = uv_now(cl->c->loop);
	control_client_process(cl);
}

static void control_connection_cb(uv_stream_t *server, int status)
{
	struct control *c = server->data;

	if (status < 0) {
		/* out of descriptors (libuv drops the waiting connections
		 * then): said once until an accept works again */
		if (!c->accept_failing)
			log_error("control: accept on %s: %s (said once until "
				  "an accept works again)", c->path,
				  uv_strerror(status));
		c->accept_failing = true;
		return;
	}
	struct control_client *cl = xcalloc(1, sizeof(*cl));
	cl->c = c;
	uv_pipe_init(c->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	cl->active_ms = uv_now(c->loop);
	c->handles++;
	c->n_clients++;
	cl->next = c->clients;
	if (c->clients != NULL)
		c->clients->prev = cl;
	c->clients = cl;

	int r = uv_accept(server, (uv_stream_t *)&cl->pipe);
	if (r < 0) {
		if (!c->accept_failing)
			log_error("control: accept on %s: %s (said once until "
				  "an accept works again)", c->path,
				  uv_strerror(r));
		c->accept_failing = true;
		control_client_close(cl);
		return;
	}
	if (c->accept_failing) {
		log_info("control: accept on %s works again", c->path);
		c->accept_failing = false;
	}

	uv_os_fd_t fd;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) {
		log_warn("control: cannot read the peer credentials: %s",
			 strerror(errno));
		control_client_close(cl);
		return;
	}
	cl->uid = cred.uid;
	cl->gid = cred.gid;
	cl->pid = cred.pid;
	/* root keeps a few places of its own: members of socket_group
	 * cannot lock the admin out */
	if (c->n_clients > c->max_clients +
				   (cred.uid == 0 ? CONTROL_ROOT_RESERVE : 0)) {
		/* one line an episode, not one per client: a flood of idle
		 * clients must not flood the log either */
		if (!c->refusing)
			log_error("control: %u clients connected, the limit "
				  "(socket_max_clients) is %u: refusing new "
				  "clients (first: uid %u, pid %d) until one "
				  "leaves", c->n_clients - 1, c->max_clients,
				  (unsigned)cred.uid, (int)cred.pid);
		c->refusing = true;
		c->n_refused++;
		control_client_fail(cl, "too many clients: the control socket "
				    "serves at most %u at once "
				    "(socket_max_clients); try again later",
				    c->max_clients);
		return;
	}
	if (!control_peer_allowed(cred.uid, cred.gid, c->has_group, c->group)) {
		log_warn("control: refused uid %u (pid %d): not root%s",
			 (unsigned)cred.uid, (int)cred.pid,
			 c->has_group ? " nor in socket_group" : "");
		if (c->has_group)
			control_client_fail(cl, "permission denied: uid %u is "
					    "not root and not in group '%s'",
					    (unsigned)cred.uid,
					    c->group_name);
		else
			control_client_fail(cl, "permission denied: uid %u is "
					    "not root (no socket_group is "
					    "configured)", (unsigned)cred.uid);
		return;
	}
	control_start_read(cl);
}

static void control_start_read(struct control_client *cl)
{
	int r = uv_read_start((uv_stream_t *)&cl->pipe, control_alloc_cb,
			      control_read_cb);
	if (r < 0)
		control_client_close(cl);
}

/* ---- timeouts ---- */

/* Close the clients that sent nothing for idle_ms with nothing pending,
 * that left a request line unfinished for request_ms, or that read none of
 * their replies for request_ms. */
static void control_timer_cb(uv_timer_t *t)
{
	struct control *c = t->data;
	uint64_t now = uv_now(c->loop);
	struct control_client *cl, *next;

	for (cl = c->clients; cl != NULL; cl = next) {
		size_t unwritten = uv_stream_get_write_queue_size(
			(uv_stream_t *)&cl->pipe);

		next = cl->next;
		if (cl->closing)
			continue;
		if (unwritten > 0 && now - cl->active_ms >= c->request_ms) {
			log_warn("control: client pid %d read none of its "
				 "replies for %u ms (%zu bytes waiting): "
				 "closing it", (int)cl->pid, c->request_ms,
				 unwritten);
			control_client_close(cl);
		} else if (cl->partial_ms != 0 &&
			   now - cl->partial_ms >= c->request_ms) {
			log_warn("control: client pid %d did not finish its "
				 "request in %u ms: closing it", (int)cl->pid,
				 c->request_ms);
			control_client_fail(cl, "request not finished within "
					    "%u ms", c->request_ms);
		} else if (cl->head == NULL && cl->len == 0 &&
			   unwritten == 0 &&
			   now - cl->active_ms >= c->idle_ms) {
			log_debug("control: client pid %d idle for %u ms: "
				  "closing it", (int)cl->pid, c->idle_ms);
			control_client_fail(cl, "idle for %u ms: closing",
					    c->idle_ms);
		}
	}
}

/* Check every quarter of the shorter timeout (at most once a second). */
static void control_timer_arm(struct control *c)
{
	unsigned every = c->idle_ms < c->request_ms ? c->idle_ms
						     : c->request_ms;

	every /= 4;
	if (every > 1000)
		every = 1000;
	if (every < 10)
		every = 10;
	uv_timer_start(&c->timer, control_timer_cb, every, every);
}

void control_set_limits(struct control *c, unsigned max_clients,
			unsigned idle_ms, unsigned request_ms)
{
	if (c == NULL)
		return;
	c->max_clients = max_clients > 0 ? max_clients
					 : CONTROL_MAX_CLIENTS_DEF;
	c->idle_ms = idle_ms > 0 ? idle_ms : CONTROL_IDLE_MS_DEF;
	c->request_ms = request_ms > 0 ? request_ms : CONTROL_REQUEST_MS_DEF;
	control_timer_arm(c);
}

/* ---- start / stop ---- */

/* Remove a stale socket at path; refuse anything else. */
static int control_clear_path(const char *path, const char **error_r)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		int err = errno;
		*error_r = control_err("socket %s: %s", path, strerror(err));
		return -err;
	}
	if (!S_ISSOCK(st.st_mode)) {
		*error_r = control_err("socket %s: the path exists and is not a "
				       "socket; refusing to replace it", path);
		return -EEXIST;
	}

	/* a live daemon answers on it: do not steal its socket */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0) {
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		memcpy(sa.sun_path, path, strlen(path) + 1);
		int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (r == 0) {
			*error_r = control_err("socket %s: another process is "
					       "listening on it", path);
			return -EADDRINUSE;
		}
	}
	if (unlink(path) < 0 && errno != ENOENT) {
		int err = errno;
		*error_r = control_err("socket %s: cannot remove the stale "
				       "socket: %s", path, strerror(err));
		return -err;
	}
	return 0;
}

static void control_server_close_cb(uv_handle_t *h)
{
	control_handle_closed(h->data);
}

/* Resolve socket_group into c->group. */
static int control_resolve_group(struct control *c, const char *name,
				 const char **error_r)
{
	struct group gr, *grp = NULL;
	char buf[16384];

	if (name == NULL || name[0] == '\0')
		return 0;
	int r = getgrnam_r(name, &gr, buf, sizeof(buf), &grp);
	if (r != 0 || grp == NULL) {
		*error_r = control_err("socket_group '%s': %s", name,
				       r != 0 ? strerror(r) : "no such group");
		return r != 0 ? -r : -ENOENT;
	}
	c->has_group = true;
	c->group = grp->gr_gid;
	c->group_name = xstrdup(name);
	return 0;
}

int control_start(uv_loop_t *loop, const char *path, const char *socket_group,
		  struct control **c_r, const char **error_r)
{
	struct sockaddr_un sa;
	int r;

	*c_r = NULL;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		*error_r = control_err("socket %s: path longer than %zu bytes",
				       path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}

	struct control *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->path = xstrdup(path);
	c->cmds = hmap_new();
	c->group_cmds = hmap_new();
	control_register(c, "commands", control_cmd_commands, c);
	hmap_put(c->group_cmds, "commands", c);
	if ((r = control_resolve_group(c, socket_group, error_r)) < 0 ||
	    (r = control_clear_path(path, error_r)) < 0) {
		hmap_free(&c->cmds, free);
		hmap_free(&c->group_cmds, NULL);
		free(c->path);
		free(c->group_name);
		free(c);
		return r;
	}

	uv_pipe_init(c->loop, &c->server, 0);
	c->server.data = c;
	c->server_open = true;
	c->handles = 2; /* the server and the timer */
	uv_timer_init(c->loop, &c->timer);
	c->timer.data = c;
	c->max_clients = CONTROL_MAX_CLIENTS_DEF;
	c->idle_ms = CONTROL_IDLE_MS_DEF;
	c->request_ms = CONTROL_REQUEST_MS_DEF;
	control_timer_arm(c);

	/* not reachable before listen(): set mode and owner first */
	r = uv_pipe_bind(&c->server, path);
	if (r < 0) {
		*error_r = control_err("socket %s: bind: %s", path,
				       uv_strerror(r));
		goto fail;
	}
	if (chmod(path, 0660) < 0) {
		r = -errno;
		*error_r = control_err("socket %s: chmod: %s", path,
				       strerror(errno));
		goto fail_unlink;
	}
	if (c->has_group && chown(path, (uid_t)-1, c->group) < 0) {
		r = -errno;
		*error_r = control_err("socket %s: chown to group '%s': %s",
				       path, socket_group,
				       strerror(errno));
		goto fail_unlink;
	}
	r = uv_listen((uv_stream_t *)&c->server, 128, control_connection_cb);
	if (r < 0) {
		*error_r = control_err("socket %s: listen: %s", path,
				       uv_strerror(r));
		goto fail_unlink;
	}
	log_info("control: listening on %s", path);
	*c_r = c;
	return 0;

fail_unlink:
	unlink(path);
fail:
	c->stopping = true;
	uv_close((uv_handle_t *)&c->timer, control_server_close_cb);
	uv_close((uv_handle_t *)&c->server, control_server_close_cb);
	return r;
}

void control_stop(struct control **cp)
{
	struct control *c = *cp;

	*cp = NULL;
	if (c == NULL)
		return;
	c->stopping = true;
	while (c->clients != NULL) {
		struct control_client *cl = c->clients;
		control_client_close(cl);  /* unlinks cl from the list */
		control_client_detach(cl); /* gone callbacks run now */
	}
	unlink(c->path);
	uv_close((uv_handle_t *)&c->timer, control_server_close_cb);
	uv_close((uv_handle_t *)&c->server, control_server_close_cb);
}

void control_register(struct control *c, const char *name, control_cmd_fn *fn,
		      void *ctx)
{
	struct control_cmd *cc = xmalloc(sizeof(*cc));

	cc->fn = fn;
	cc->ctx = ctx;
	free(hmap_put(c->cmds, name, cc));
}

void control_register_table(struct control *c,
			    const struct control_command *cmds, void *ctx)
{
	if (c == NULL)
		return;
	for (; cmds->name != NULL; cmds++)
		control_register(c, cmds->name, cmds->fn, ctx);
}

void control_allow_group(struct control *c, const char *const *names)
{
	if (c == NULL)
		return;
	for (; *names != NULL; names++)
		hmap_put(c->group_cmds, *names, c);
}
