/* Unit tests for the control socket (core/lib/control.c) and the built-in
 * commands (core/daemon/ctlcmds.c), against a fake engine and journal defined
 * here: the server runs on a private uv loop, the test talks to it through
 * a real Unix socket. */
#include "../../core/lib/control.c"
#include "../../core/daemon/ctlcmds.c"

#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>

#include <cmocka.h>

/* ---- fake engine ---- */

struct fake_submit {
	engine_submit_cb *cb;
	void *ctx;
	char *type, *subject;
	json_t *payload;
};

struct engine {
	uv_loop_t loop;
	struct config cfg;
	char dir[64];
	struct fake_submit sub[1024];
	unsigned n_sub;
	int submit_rc;              /* engine_submit returns this when < 0 */
	engine_listen_fn *listen_fn;
	void *listen_ctx;
	unsigned listens, unlistens;
	int64_t replay_id;
	json_t *rows;               /* journal_query result */
	struct journal_filter last_filter; /* strings not kept */
	char last_type[64];
};

static struct engine *fe; /* the current fake */

uv_loop_t *engine_loop(struct engine *e) { return &e->loop; }
const struct config *engine_config(struct engine *e) { return &e->cfg; }
struct journal *engine_journal(struct engine *e)
{
	return (struct journal *)e;
}

/* exec:slow's delivery of event 1 is due and waits for a slot, at its
 * third attempt by now (the journal row says one) */
const char *engine_delivery_live(struct engine *e, const char *handler,
				 const char *node, const char *subject,
				 int64_t id, struct journal_delivery *d_r)
{
	(void)e;
	(void)node;
	if (strcmp(handler, "exec:slow") != 0 || id != 1 ||
	    strcmp(subject, "example.com") != 0)
		return NULL;
	d_r->state = DELIVERY_FAILED;
	d_r->attempts = 3;
	d_r->next_ms = 999;
	return "ready";
}

json_t *engine_status(struct engine *e)
{
	(void)e;
	/* the shape of the real engine_status() */
	return json_pack("{ss ss sI sI sI sI sI sI sb sI"
			 " s{sI sI s{sI sI sI sI} s{s{sI sI sI sI} s{sI sI sI sI}}}"
			 " s[{ss s[s] sI}] s[{ss ss}]}",
			 "version", "9.9", "node", "testnode", "pid",
			 (json_int_t)77, "uptime_s", (json_int_t)3725,
			 "incoming", (json_int_t)0, "queued", (json_int_t)4,
			 "inflight", (json_int_t)1, "journaled", (json_int_t)8,
			 "journal_ok", 1, "journal_errors", (json_int_t)0,
			 "journal", "events", (json_int_t)8, "last_id",
			 (json_int_t)8, "deliveries", "pending", (json_int_t)1,
			 "done", (json_int_t)7, "failed", (json_int_t)0, "dead",
			 (json_int_t)0, "handlers", "plugin:log", "pending",
			 (json_int_t)1, "done", (json_int_t)7, "failed",
			 (json_int_t)0, "dead", (json_int_t)0, "plugin:old",
			 "pending", (json_int_t)0, "done", (json_int_t)3,
			 "failed", (json_int_t)0, "dead", (json_int_t)2,
			 "handlers", "name", "plugin:log", "patterns", "*",
			 "inflight", (json_int_t)1, "plugins", "name", "log",
			 "file", "/x/log.so");
}

int engine_submit(struct engine *e, const char *type, const char *subject,
		  const char *source, json_t *payload, engine_submit_cb *cb,
		  void *ctx, const char **error_r)
{
	(void)source;
	if (e->submit_rc < 0 || strcmp(type, "bad..type") == 0) {
		json_decref(payload);
		*error_r = "invalid type";
		return e->submit_rc < 0 ? e->submit_rc : -EINVAL;
	}
	assert_true(e->n_sub < 1024);
	struct fake_submit *s = &e->sub[e->n_sub++];
	s->cb = cb;
	s->ctx = ctx;
	s->type = xstrdup(type);
	s->subject = xstrdup(subject);
	s->payload = payload;
	return 0;
}

void engine_when_drained(struct engine *e, unsigned max_ms,
			 void (*fn)(void *ctx), void *ctx)
{
	(void)e;
	(void)max_ms;
	fn(ctx); /* the fake never has a backlog */
}

int engine_replay(struct engine *e, int64_t id, engine_submit_cb *cb,
		  void *ctx, const char **error_r)
{
	if (id == 404) {
		*error_r = "no such event";
		return -ENOENT;
	}
	e->replay_id = id;
	json_t *p = json_pack("{sI}", "replay_of", (json_int_t)id);
	return engine_submit(e, "x.replayed", "s", "replay", p, cb, ctx,
			     error_r);
}

void *engine_listen(struct engine *e, engine_listen_fn *fn, void *ctx)
{
	e->listen_fn = fn;
	e->listen_ctx = ctx;
	e->listens++;
	return e;
}

void engine_unlisten(struct engine *e, void **handle)
{
	assert_ptr_equal(*handle, e);
	*handle = NULL;
	e->listen_fn = NULL;
	e->unlistens++;
}

static const char *const state_names[] = { "pending", "done", "failed",
					    "dead" };

const char *delivery_state_name(enum delivery_state st)
{
	return (unsigned)st < 4 ? state_names[st] : "?";
}

int delivery_state_parse(const char *s, enum delivery_state *st_r)
{
	const char *const *n = state_names;
	for (unsigned i = 0; i < 4; i++) {
		if (strcmp(s, n[i]) == 0) {
			*st_r = (enum delivery_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

int journal_query(struct journal *j, const struct journal_filter *f,
		  json_t **events_r, const char **error_r)
{
	struct engine *e = (struct engine *)j;
	(void)error_r;
	e->last_filter = *f;
	snprintf(e->last_type, sizeof(e->last_type), "%s",
		 f->type != NULL ? f->type : "");
	*events_r = json_incref(e->rows);
	return 0;
}

int journal_get_event(struct journal *j, int64_t id, json_t **event_r,
		      const char **error_r)
{
	struct engine *e = (struct engine *)j;
	(void)error_r;
	if (id != 1)
		return -ENOENT;
	*event_r = json_deep_copy(json_array_get(e->rows, 0));
	return 0;
}

/* Journal the n-th submitted event as id. */
static void fake_journal(struct engine *e, unsigned n, int64_t id)
{
	struct fake_submit *s = &e->sub[n];
	struct event ev;

	memset(&ev, 0, sizeof(ev));
	ev.pub.id = id;
	ev.type = s->type;
	ev.subject = s->subject;
	ev.payload = s->payload;
	s->cb(&ev, NULL, s->ctx);
}

/* ---- harness ---- */

struct fixture {
	struct engine e;
	struct control *c;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	const char *error = NULL;

	fe = &f->e;
	uv_loop_init(&f->e.loop);
	snprintf(f->e.dir, sizeof(f->e.dir), "/tmp/test_control.XXXXXX");
	assert_non_null(mkdtemp(f->e.dir));
	f->e.cfg.socket = xasprintf("%s/ctl.sock", f->e.dir);
	f->e.rows = json_pack("[{sIssssssss s[{ssss}{sssssIsI}]}]", "id",
			      (json_int_t)1, "type", "domain.added", "subject",
			      "example.com", "time", "2026-01-02T03:04:05.000Z",
			      "source", "socket", "deliveries", "handler",
			      "plugin:log", "state", "done", "handler",
			      "exec:slow", "state", "failed", "attempts",
			      (json_int_t)1, "next_ms", (json_int_t)5);
	int r = control_start(&f->e.loop, f->e.cfg.socket, f->e.cfg.socket_group, &f->c, &error);
	if (r < 0)
		fail_msg("control_start: %s", error);
	control_register_table(f->c, ctlcmds_commands, &f->e);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	control_stop(&f->c);
	uv_run(&f->e.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->e.loop), 0);
	for (unsigned i = 0; i < f->e.n_sub; i++) {
		free(f->e.sub[i].type);
		free(f->e.sub[i].subject);
		json_decref(f->e.sub[i].payload);
	}
	json_decref(f->e.rows);
	rmdir(f->e.dir);
	free(f->e.cfg.socket);
	free(f);
	return 0;
}

static void spin(struct fixture *f, int n)
{
	for (int i = 0; i < n; i++)
		uv_run(&f->e.loop, UV_RUN_NOWAIT);
}

static int client_connect(struct fixture *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->e.cfg.socket);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	spin(f, 3); /* accept */
	return fd;
}

/* Write everything, running the loop while the socket is full. */
static void client_send(struct fixture *f, int fd, const char *data,
			size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0) {
			if (errno == EPIPE || errno == ECONNRESET)
				return;
			assert_true(errno == EAGAIN || errno == EINTR);
			spin(f, 1);
			continue;
		}
		data += n;
		len -= (size_t)n;
	}
	spin(f, 3);
}

/* Read one line (NULL at EOF or after ~5 s without one).  Caller frees. */
static char *client_line(struct fixture *f, int fd)
{
	static char buf[1 << 16];
	static size_t blen;
	static int bfd = -1;

	if (bfd != fd) {
		blen = 0;
		bfd = fd;
	}
	for (int tries = 0; tries < 5000; tries++) {
		char *nl = memchr(buf, '\n', blen);
		if (nl != NULL) {
			size_t len = (size_t)(nl - buf);
			char *line = xstrndup(buf, len);
			memmove(buf, nl + 1, blen - len - 1);
			blen -= len + 1;
			return line;
		}
		spin(f, 1);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		poll(&p, 1, 1);
		ssize_t n = read(fd, buf + blen, sizeof(buf) - blen);
		if (n == 0)
			return NULL;
		if (n > 0)
			blen += (size_t)n;
		else if (errno != EAGAIN && errno != EINTR)
			return NULL;
	}
	return NULL;
}

/* True when no line is waiting (after running the loop a bit). */
static bool client_quiet(struct fixture *f, int fd)
{
	char c;

	spin(f, 5);
	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

static json_t *client_json(struct fixture *f, int fd)
{
	char *line = client_line(f, fd);
	if (line == NULL)
		return NULL;
	json_t *o = json_loads(line, 0, NULL);
	if (o == NULL)
		fail_msg("not JSON: %s", line);
	free(line);
	return o;
}

static json_t *request(struct fixture *f, int fd, const char *req)
{
	client_send(f, fd, req, strlen(req));
	return client_json(f, fd);
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static json_int_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

/* ---- pure helpers ---- */

static void test_peer(void **state)
{
	gid_t list[] = { 5, 100, 1001 };

	(void)state;
	assert_true(control_gid_in(list, 3, 100));
	assert_false(control_gid_in(list, 3, 7));
	assert_false(control_gid_in(list, 0, 5));
	assert_true(control_peer_allowed(0, 0, false, 0));
	assert_false(control_peer_allowed(1000, 1000, false, 0));
	assert_true(control_peer_allowed(1000, 1234, true, 1234));
	/* uid 65534 (nobody) is not in the root group (gid 0) */
	assert_false(control_peer_allowed(65534, 65534, true, 0));
}

static void test_since(void **state)
{
	int64_t ms;

	(void)state;
	assert_true(ctl_parse_since("90", 1000000, &ms));
	assert_int_equal(ms, 1000000 - 90000);
	assert_true(ctl_parse_since("10m", 10000000, &ms));
	assert_int_equal(ms, 10000000 - 600000);
	assert_true(ctl_parse_since("2h", 10000000, &ms));
	assert_int_equal(ms, 10000000 - 7200000);
	assert_true(ctl_parse_since("1d", 100000000, &ms));
	assert_int_equal(ms, 100000000 - 86400000);
	assert_true(ctl_parse_since("2026-01-02T03:04:05Z", 0, &ms));
	assert_int_equal(ms, 1767323045000LL);
	assert_true(ctl_parse_since("2026-01-02T03:04:05.25Z", 0, &ms));
	assert_int_equal(ms, 1767323045250LL);
	assert_true(ctl_parse_since("2026-01-02T04:04:05+01:00", 0, &ms));
	assert_int_equal(ms, 1767323045000LL);
	assert_true(ctl_parse_since("2026-01-02 03:04", 0, &ms));
	assert_int_equal(ms, 1767323040000LL);
	assert_true(ctl_parse_since("2026-01-02", 0, &ms));
	assert_int_equal(ms, 1767312000000LL);
	assert_false(ctl_parse_since("10x", 0, &ms));
	assert_false(ctl_parse_since("", 0, &ms));
	assert_false(ctl_parse_since("yesterday", 0, &ms));
	assert_false(ctl_parse_since("2026-01-02T03:04:05Zjunk", 0, &ms));
	assert_false(ctl_parse_since("-5", 0, &ms));
}

static void test_events_parse(void **state)
{
	struct ctl_events_opts o;
	json_t *a;

	(void)state;
	a = json_pack("[ssssssssss]", "--type", "domain.*", "--subject",
		      "example.com", "--state", "failed", "--since", "10m",
		      "--limit", "5");
	assert_null(ctl_events_parse(a, 1000000, &o));
	assert_string_equal(o.f.type, "domain.*");
	assert_string_equal(o.f.subject, "example.com");
	assert_string_equal(o.f.state, "failed");
	assert_int_equal(o.f.since_ms, 1000000 - 600000);
	assert_int_equal(o.f.limit, 5);
	json_decref(a);

	a = json_pack("[sss]", "--limit=7", "42", "--type=x.*");
	assert_null(ctl_events_parse(a, 0, &o));
	assert_int_equal(o.f.limit, 7);
	assert_int_equal(o.id, 42);
	assert_string_equal(o.f.type, "x.*");
	json_decref(a);
	a = json_pack("[ss]", "-n", "3");
	assert_null(ctl_events_parse(a, 0, &o));
	assert_int_equal(o.f.limit, 3);
	json_decref(a);

	a = json_pack("[ss]", "--state", "bogus");
	assert_non_null(strstr(ctl_events_parse(a, 0, &o), "--state 'bogus'"));
	json_decref(a);
	a = json_pack("[s]", "--type");
	assert_non_null(strstr(ctl_events_parse(a, 0, &o), "needs a value"));
	json_decref(a);
	a = json_pack("[s]", "--frobnicate");
	assert_non_null(strstr(ctl_events_parse(a, 0, &o),
			       "unknown option '--frobnicate'"));
	json_decref(a);
	a = json_pack("[ss]", "--limit", "0");
	assert_non_null(ctl_events_parse(a, 0, &o));
	json_decref(a);
	a = json_pack("[s]", "abc");
	assert_non_null(strstr(ctl_events_parse(a, 0, &o), "not an event id"));
	json_decref(a);
}

static void test_emit_parse(void **state)
{
	const char *type, *subject, *err;
	json_t *a, *fields;

	(void)state;
	a = json_pack("[ssss]", "domain.added", "example.com", "user=bob",
		      "x=a=b");
	assert_null(ctl_emit_parse(a, &type, &subject, &fields));
	assert_string_equal(type, "domain.added");
	assert_string_equal(subject, "example.com");
	assert_string_equal(jstr(fields, "user"), "bob");
	assert_string_equal(jstr(fields, "x"), "a=b");
	json_decref(fields);
	json_decref(a);

	/* subject defaults: domain=, then user=, then the type */
	a = json_pack("[sss]", "domain.added", "user=bob", "domain=a.example");
	assert_null(ctl_emit_parse(a, &type, &subject, &fields));
	assert_string_equal(subject, "a.example");
	json_decref(fields);
	json_decref(a);
	a = json_pack("[ss]", "user.added", "user=bob");
	assert_null(ctl_emit_parse(a, &type, &subject, &fields));
	assert_string_equal(subject, "bob");
	json_decref(fields);
	json_decref(a);
	a = json_pack("[s]", "config.changed");
	assert_null(ctl_emit_parse(a, &type, &subject, &fields));
	assert_string_equal(subject, "config.changed");
	assert_int_equal(json_object_size(fields), 0);
	json_decref(fields);
	json_decref(a);

	a = json_pack("[sss]", "t.x", "subj", "novalue");
	err = ctl_emit_parse(a, &type, &subject, &fields);
	assert_non_null(strstr(err, "'novalue' is not key=value"));
	assert_null(fields);
	json_decref(a);
	a = json_pack("[ss]", "t.x", "=v");
	assert_non_null(strstr(ctl_emit_parse(a, &type, &subject, &fields),
			       "empty key"));
	json_decref(a);
	a = json_pack("[ss]", "t.x", "id=5");
	assert_non_null(strstr(ctl_emit_parse(a, &type, &subject, &fields),
			       "'id' is set by the engine"));
	json_decref(a);
	a = json_pack("[ss]", "domain.added", "domain=../../etc");
	assert_non_null(strstr(ctl_emit_parse(a, &type, &subject, &fields),
			       "domain '../../etc': "));
	json_decref(a);
	a = json_pack("[ss]", "user.added", "user=Bad/User");
	assert_non_null(strstr(ctl_emit_parse(a, &type, &subject, &fields),
			       "user 'Bad/User': "));
	json_decref(a);
	a = json_array();
	assert_non_null(strstr(ctl_emit_parse(a, &type, &subject, &fields),
			       "usage"));
	json_decref(a);
}

static void test_status_text(void **state)
{
	(void)state;
	json_t *st = engine_status(NULL);
	char *t = ctl_status_text(st);
	assert_non_null(strstr(t, "ophookd 9.9 on testnode, up 1h 2m "
				  "(pid 77)\n"));
	assert_non_null(strstr(t, "0 incoming, 4 queued, 1 in flight"));
	assert_non_null(strstr(t, "ok, 8 events (last id 8)"));
	assert_non_null(strstr(t, "pending 1, done 7"));
	assert_non_null(strstr(t, "plugins:     log\n"));
	assert_non_null(strstr(t, "handlers (1):"));
	assert_non_null(strstr(t, "PENDING"));
	assert_non_null(strstr(t, "plugin:log"));
	assert_non_null(strstr(t, "plugin:old (not loaded)"));
	free(t);
	json_decref(st);
}

/* ---- server ---- */

static void test_status(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);

	json_t *o = request(f, fd, "{\"cmd\":\"status\"}\n");
	assert_non_null(o);
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_int_equal(jint(o, "exit"), 0);
	assert_string_equal(jstr(json_object_get(o, "result"), "node"),
			    "testnode");
	assert_non_null(strstr(jstr(o, "text"), "testnode"));
	json_decref(o);

	o = request(f, fd, "{\"cmd\":\"status\",\"args\":[\"x\"]}\n");
	assert_true(json_is_false(json_object_get(o, "ok")));
	assert_int_equal(jint(o, "exit"), 2);
	json_decref(o);
	close(fd);
}

static void test_bad_requests(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);
	json_t *o;

	o = request(f, fd, "{not json\n");
	assert_true(json_is_false(json_object_get(o, "ok")));
	assert_non_null(strstr(jstr(o, "error"), "malformed JSON"));
	json_decref(o);
	o = request(f, fd, "[1,2]\n");
	assert_non_null(strstr(jstr(o, "error"), "JSON object"));
	json_decref(o);
	o = request(f, fd, "{\"args\":[]}\n");
	assert_non_null(strstr(jstr(o, "error"), "no \"cmd\""));
	json_decref(o);
	o = request(f, fd, "{\"cmd\":5}\n");
	assert_non_null(strstr(jstr(o, "error"), "\"cmd\" must be"));
	json_decref(o);
	o = request(f, fd, "{\"cmd\":\"status\",\"args\":[1]}\n");
	assert_non_null(strstr(jstr(o, "error"), "array of strings"));
	json_decref(o);
	o = request(f, fd, "{\"cmd\":\"nope\"}\n");
	assert_string_equal(jstr(o, "error"), "unknown command 'nope' (try: "
			    "commands, emit, events, replay, status, tail)");
	assert_int_equal(jint(o, "exit"), 2);
	json_decref(o);
	/* binary junk, an empty line, CRLF: the connection stays usable */
	client_send(f, fd, "\x01\xff\xfe\x00zz\n\n", 8);
	o = client_json(f, fd);
	assert_true(json_is_false(json_object_get(o, "ok")));
	json_decref(o);
	o = request(f, fd, "{\"cmd\":\"status\"}\r\n");
	assert_true(json_is_true(json_object_get(o, "ok")));
	json_decref(o);
	close(fd);
}

/* Run the loop for about ms milliseconds. */
static void spin_ms(struct fixture *f, int ms)
{
	for (int i = 0; i < ms / 5; i++) {
		usleep(5000);
		uv_run(&f->e.loop, UV_RUN_NOWAIT);
	}
}

/* Issue 16, finding 5: a client limit (root has 4 places more), idle and
 * request timeouts. */
static void test_limits(void **state)
{
	struct fixture *f = *state;
	int fd[7];
	json_t *o;

	control_set_limits(f->c, 2, 400, 250);
	for (int i = 0; i < 7; i++)
		fd[i] = client_connect(f);
	/* 2 + 4 for root served; the seventh refused with a clear error */
	for (int i = 0; i < 6; i++)
		assert_true(client_quiet(f, fd[i]));
	o = client_json(f, fd[6]);
	assert_non_null(o);
	assert_non_null(strstr(jstr(o, "error"), "too many clients"));
	json_decref(o);
	assert_null(client_line(f, fd[6])); /* closed */
	close(fd[6]);
	assert_true(f->c->refusing);
	assert_int_equal(f->c->n_refused, 1);

	/* a request line left unfinished: closed after request_ms */
	client_send(f, fd[0], "{\"cmd\":", 7);
	/* a client that keeps asking stays */
	for (int t = 0; t < 3; t++) {
		spin_ms(f, 150);
		o = request(f, fd[1], "{\"cmd\":\"status\"}\n");
		assert_true(json_is_true(json_object_get(o, "ok")));
		json_decref(o);
	}
	o = client_json(f, fd[0]);
	assert_non_null(o);
	assert_string_equal(jstr(o, "error"),
			    "request not finished within 250 ms");
	json_decref(o);
	/* the idle ones: closed after idle_ms, with a line saying so */
	spin_ms(f, 500);
	for (int i = 2; i < 6; i++) {
		o = client_json(f, fd[i]);
		assert_non_null(o);
		assert_string_equal(jstr(o, "error"),
				    "idle for 400 ms: closing");
		json_decref(o);
		assert_null(client_line(f, fd[i]));
	}
	for (int i = 0; i < 6; i++)
		close(fd[i]);
	spin_ms(f, 50);
	assert_false(f->c->refusing);
	assert_int_equal(f->c->n_clients, 0);
}

static void test_long_line(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);

	/* exactly the limit: fine */
	size_t max = CONTROL_LINE_MAX;
	char *big = xmalloc(max + 4096);
	const char *req = "{\"cmd\":\"status\"}";
	memset(big, ' ', max);
	memcpy(big, req, strlen(req));
	big[max] = '\n';
	client_send(f, fd, big, max + 1);
	json_t *o = client_json(f, fd);
	assert_true(json_is_true(json_object_get(o, "ok")));
	json_decref(o);

	/* one byte more, without a newline: one error, then closed; the
	 * server never holds more than a line and a read chunk */
	memset(big, 'x', max + 4096);
	client_send(f, fd, big, max + 4096);
	assert_true(fe != NULL);
	o = client_json(f, fd);
	assert_non_null(o);
	assert_string_equal(jstr(o, "error"),
			    "request line longer than 1048576 bytes");
	json_decref(o);
	assert_null(client_line(f, fd)); /* EOF */
	free(big);
	close(fd);

	/* the server still serves */
	fd = client_connect(f);
	o = request(f, fd, "{\"cmd\":\"status\"}\n");
	assert_true(json_is_true(json_object_get(o, "ok")));
	json_decref(o);
	close(fd);
}

static void test_order_async(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);
	const char *reqs =
		"{\"cmd\":\"emit\",\"args\":[\"domain.added\",\"a.example\","
		"\"user=bob\"]}\n{\"cmd\":\"status\"}\n";

	client_send(f, fd, reqs, strlen(reqs));
	/* the status answer waits for the emit */
	assert_true(client_quiet(f, fd));
	assert_int_equal(f->e.n_sub, 1);
	assert_string_equal(f->e.sub[0].subject, "a.example");
	assert_string_equal(jstr(f->e.sub[0].payload, "user"), "bob");
	fake_journal(&f->e, 0, 41);
	json_t *o = client_json(f, fd);
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_int_equal(jint(json_object_get(o, "result"), "id"), 41);
	json_decref(o);
	o = client_json(f, fd);
	assert_non_null(json_object_get(json_object_get(o, "result"), "node"));
	json_decref(o);

	/* a submit error is answered at once */
	o = request(f, fd, "{\"cmd\":\"emit\",\"args\":[\"bad..type\"]}\n");
	assert_non_null(strstr(jstr(o, "error"), "invalid type"));
	json_decref(o);
	close(fd);
}

static void test_client_gone(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);
	const char *req = "{\"cmd\":\"emit\",\"args\":[\"user.added\","
			  "\"user=carol\"]}\n";

	client_send(f, fd, req, strlen(req));
	assert_int_equal(f->e.n_sub, 1);
	close(fd);
	spin(f, 10);
	/* answering the detached reply only frees it */
	fake_journal(&f->e, 0, 7);
	spin(f, 3);
}

static void test_batch(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);
	const char *req =
		"{\"cmd\":\"emit\",\"events\":["
		"{\"type\":\"a.b\",\"fields\":{\"domain\":\"x.example\","
		"\"seq\":\"1\"}},"
		"{\"type\":\"a.b\",\"subject\":\"s2\"},"
		"{\"type\":\"a.c\",\"fields\":{\"user\":\"dan\"}}]}\n";

	client_send(f, fd, req, strlen(req));
	assert_int_equal(f->e.n_sub, 3);
	assert_string_equal(f->e.sub[0].subject, "x.example");
	assert_string_equal(f->e.sub[1].subject, "s2");
	assert_string_equal(f->e.sub[2].subject, "dan");
	fake_journal(&f->e, 0, 10);
	fake_journal(&f->e, 1, 11);
	assert_true(client_quiet(f, fd));
	fake_journal(&f->e, 2, 12);
	json_t *o = client_json(f, fd);
	json_t *res = json_object_get(o, "result");
	assert_int_equal(jint(res, "count"), 3);
	assert_int_equal(json_integer_value(json_array_get(
				 json_object_get(res, "ids"), 0)), 10);
	assert_int_equal(json_integer_value(json_array_get(
				 json_object_get(res, "ids"), 1)), 12);
	json_decref(o);

	o = request(f, fd, "{\"cmd\":\"emit\",\"events\":[{\"fields\":{}}]}\n");
	assert_non_null(strstr(jstr(o, "error"), "events[0] has no \"type\""));
	json_decref(o);
	o = request(f, fd, "{\"cmd\":\"emit\",\"events\":[{\"type\":\"a.b\","
			   "\"fields\":{\"time\":\"x\"}}]}\n");
	assert_non_null(strstr(jstr(o, "error"), "'time' is set by"));
	json_decref(o);
	o = request(f, fd, "{\"cmd\":\"emit\",\"events\":[{\"type\":\"a.b\"},"
			   "{\"type\":\"a.b\",\"fields\":{\"domain\":5}}]}\n");
	assert_non_null(strstr(jstr(o, "error"), "events[1]: field 'domain' "
			       "must be a string"));
	json_decref(o);
	close(fd);
}

static void test_batch_partial(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);
	const char *req = "{\"cmd\":\"emit\",\"events\":[{\"type\":\"a.b\"},"
			  "{\"type\":\"bad..type\"}]}\n";

	client_send(f, fd, req, strlen(req));
	assert_int_equal(f->e.n_sub, 1);
	assert_true(client_quiet(f, fd));
	fake_journal(&f->e, 0, 3);
	json_t *o = client_json(f, fd);
	assert_non_null(strstr(jstr(o, "error"), "events[1] (bad..type)"));
	assert_non_null(strstr(jstr(o, "error"), "1 of 2 events journaled"));
	json_decref(o);
	close(fd);
}

static void test_two_words(void **state)
{
	struct fixture *f = *state;

	control_register(f->c, "hooks.lint", ctl_cmd_status, &f->e);
	int fd = client_connect(f);
	/* "hooks lint" -> hooks.lint with no args (status accepts none) */
	json_t *o = request(f, fd, "{\"cmd\":\"hooks\",\"args\":[\"lint\"]}\n");
	assert_true(json_is_true(json_object_get(o, "ok")));
	json_decref(o);
	o = request(f, fd, "{\"cmd\":\"hooks\",\"args\":[\"other\"]}\n");
	assert_non_null(strstr(jstr(o, "error"), "unknown command 'hooks'"));
	assert_non_null(strstr(jstr(o, "error"), "hooks lint"));
	json_decref(o);
	close(fd);
}

static void test_events_replay(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);

	json_t *o = request(f, fd, "{\"cmd\":\"events\",\"args\":[\"--type\","
				   "\"domain.*\",\"--limit\",\"3\"]}\n");
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_int_equal(json_array_size(json_object_get(o, "result")), 1);
	assert_string_equal(f->e.last_type, "domain.*");
	assert_int_equal(f->e.last_filter.limit, 3);
	const char *text = jstr(o, "text");
	assert_non_null(strstr(text, "ID"));
	assert_non_null(strstr(text, "SUBJECT"));
	assert_non_null(strstr(text, "domain.added"));
	assert_non_null(strstr(text, "done"));
	json_decref(o);

	o = request(f, fd, "{\"cmd\":\"events\",\"args\":[\"1\"]}\n");
	assert_true(json_is_true(json_object_get(o, "ok")));
	assert_non_null(strstr(jstr(o, "text"), "plugin:log"));
	/* the live state of a failed delivery, with the engine's newer
	 * attempts and next_ms; a done one has none */
	assert_non_null(strstr(jstr(o, "text"), "attempts 3 (ready)"));
	json_t *ds = json_object_get(json_object_get(o, "result"), "deliveries");
	assert_null(json_object_get(json_array_get(ds, 0), "live"));
	assert_string_equal(jstr(json_array_get(ds, 1), "live"), "ready");
	assert_int_equal(jint(json_array_get(ds, 1), "attempts"), 3);
	assert_int_equal(jint(json_array_get(ds, 1), "next_ms"), 999);
	json_decref(o);
	o = request(f, fd, "{\"cmd\":\"events\",\"args\":[\"2\"]}\n");
	assert_int_equal(jint(o, "exit"), 1);
	json_decref(o);

	o = request(f, fd, "{\"cmd\":\"replay\",\"args\":[\"404\"]}\n");
	assert_int_equal(jint(o, "exit"), 1);
	json_decref(o);
	o = request(f, fd, "{\"cmd\":\"replay\",\"args\":[\"x\"]}\n");
	assert_int_equal(jint(o, "exit"), 2);
	json_decref(o);
	client_send(f, fd, "{\"cmd\":\"replay\",\"args\":[\"5\"]}\n",
		    strlen("{\"cmd\":\"replay\",\"args\":[\"5\"]}\n"));
	assert_int_equal(f->e.replay_id, 5);
	fake_journal(&f->e, 0, 6);
	o = client_json(f, fd);
	assert_int_equal(jint(json_object_get(o, "result"), "id"), 6);
	assert_int_equal(jint(json_object_get(o, "result"), "replay_of"), 5);
	json_decref(o);
	close(fd);
}

static void test_tail(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);
	struct event ev;

	client_send(f, fd, "{\"cmd\":\"tail\",\"args\":[\"--type\","
			   "\"domain.*\"]}\n",
		    strlen("{\"cmd\":\"tail\",\"args\":[\"--type\","
			   "\"domain.*\"]}\n"));
	assert_int_equal(f->e.listens, 1);
	memset(&ev, 0, sizeof(ev));
	ev.type = "user.added";
	ev.payload = json_pack("{sIss}", "id", (json_int_t)3, "type",
			       "user.added");
	f->e.listen_fn(&ev, f->e.listen_ctx);
	assert_true(client_quiet(f, fd)); /* filtered out */
	json_decref(ev.payload);
	ev.type = "domain.added";
	ev.payload = json_pack("{sIss}", "id", (json_int_t)4, "type",
			       "domain.added");
	f->e.listen_fn(&ev, f->e.listen_ctx);
	json_t *o = client_json(f, fd);
	assert_int_equal(jint(json_object_get(o, "event"), "id"), 4);
	json_decref(o);
	json_decref(ev.payload);

	/* the client goes: the listener is removed */
	close(fd);
	spin(f, 10);
	assert_int_equal(f->e.unlistens, 1);

	/* a tail still open at control_stop is cleaned up too (teardown);
	 * and a pending emit */
	fd = client_connect(f);
	client_send(f, fd, "{\"cmd\":\"tail\"}\n",
		    strlen("{\"cmd\":\"tail\"}\n"));
	client_send(f, fd, "{\"cmd\":\"emit\",\"args\":[\"a.b\"]}\n",
		    strlen("{\"cmd\":\"emit\",\"args\":[\"a.b\"]}\n"));
	assert_int_equal(f->e.listens, 2);
	control_stop(&f->c);
	assert_int_equal(f->e.unlistens, 2);
	uv_run(&f->e.loop, UV_RUN_DEFAULT);
	fake_journal(&f->e, 0, 1); /* detached: freed */
	close(fd);
	struct stat st;
	assert_int_equal(stat(f->e.cfg.socket, &st), -1);
}

static void test_socket_path(void **state)
{
	struct fixture *f = *state;
	struct control *c2 = NULL;
	const char *error = NULL;
	struct stat st;

	/* mode 0660 */
	assert_int_equal(stat(f->e.cfg.socket, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);

	/* a live socket is not taken over */
	assert_int_equal(control_start(&f->e.loop, f->e.cfg.socket, f->e.cfg.socket_group, &c2, &error), -EADDRINUSE);
	assert_non_null(strstr(error, "another process"));
	control_stop(&f->c);
	spin(f, 5);

	/* a stale one is */
	int s = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->e.cfg.socket);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(s);
	assert_int_equal(control_start(&f->e.loop, f->e.cfg.socket, f->e.cfg.socket_group, &f->c, &error), 0);
	control_stop(&f->c);
	spin(f, 5);

	/* anything else is refused */
	int fd = open(f->e.cfg.socket, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(control_start(&f->e.loop, f->e.cfg.socket, f->e.cfg.socket_group, &c2, &error), -EEXIST);
	assert_non_null(strstr(error, "not a socket"));
	unlink(f->e.cfg.socket);

	/* an unknown group */
	f->e.cfg.socket_group = "no-such-group-ophook";
	assert_int_equal(control_start(&f->e.loop, f->e.cfg.socket, f->e.cfg.socket_group, &c2, &error), -ENOENT);
	assert_non_null(strstr(error, "no-such-group-ophook"));
	f->e.cfg.socket_group = NULL;
}

static void test_pipelined_many(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);
	struct ctl_buf b = { 0 };
	unsigned n = CONTROL_PENDING_MAX * 3;

	/* more requests than the queue holds: reading pauses and resumes,
	 * every answer comes back in order */
	for (unsigned i = 0; i < n; i++)
		ctl_buf_printf(&b, "{\"cmd\":\"nope%u\"}\n", i);
	client_send(f, fd, b.s, b.len);
	for (unsigned i = 0; i < n; i++) {
		json_t *o = client_json(f, fd);
		char want[64];
		assert_non_null(o);
		snprintf(want, sizeof(want), "unknown command 'nope%u'", i);
		assert_non_null(strstr(jstr(o, "error"), want));
		json_decref(o);
	}
	free(b.s);
	close(fd);
}

static void test_pipelined_async(void **state)
{
	struct fixture *f = *state;
	int fd = client_connect(f);
	struct ctl_buf b = { 0 };
	unsigned n = CONTROL_PENDING_MAX + 100;

	/* answers that wait: reading pauses at CONTROL_PENDING_MAX queued
	 * replies and resumes when they are written */
	for (unsigned i = 0; i < n; i++)
		ctl_buf_printf(&b, "{\"cmd\":\"emit\",\"args\":[\"a.b\","
			       "\"s%u\"]}\n", i);
	client_send(f, fd, b.s, b.len);
	spin(f, 20);
	assert_int_equal(f->e.n_sub, CONTROL_PENDING_MAX);
	for (unsigned i = 0; i < CONTROL_PENDING_MAX; i++)
		fake_journal(&f->e, i, 1000 + i);
	spin(f, 20);
	assert_int_equal(f->e.n_sub, n);
	for (unsigned i = CONTROL_PENDING_MAX; i < n; i++)
		fake_journal(&f->e, i, 1000 + i);
	for (unsigned i = 0; i < n; i++) {
		json_t *o = client_json(f, fd);
		assert_non_null(o);
		assert_int_equal(jint(json_object_get(o, "result"), "id"),
				 1000 + i);
		json_decref(o);
	}
	/* and the connection still reads */
	json_t *o = request(f, fd, "{\"cmd\":\"status\"}\n");
	assert_true(json_is_true(json_object_get(o, "ok")));
	json_decref(o);
	free(b.s);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_peer),
		cmocka_unit_test(test_since),
		cmocka_unit_test(test_events_parse),
		cmocka_unit_test(test_emit_parse),
		cmocka_unit_test(test_status_text),
		cmocka_unit_test_setup_teardown(test_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_long_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_order_async, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_client_gone, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batch_partial, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_two_words, setup, teardown),
		cmocka_unit_test_setup_teardown(test_events_replay, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_tail, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_path, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_many, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_async, setup,
						teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
