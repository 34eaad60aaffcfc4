/* libFuzzer target for the control socket's request handling
 * (core/lib/control.c).  Not part of the automake build: see README.md.
 *
 * Each input is the byte stream one client sends: it is put in a fresh
 * client's buffer and control_client_process() splits it into lines and
 * handles each (JSON parse, request check, command lookup with two-word
 * names, replies queued in order).  The client's pipe is one end of a
 * socketpair; the replies written to it are drained from the other end and
 * checked: every reply line must be one JSON object with a boolean "ok"
 * (or an "event" line of a stream).  Fake commands answer now, stream,
 * fail, or answer later (after the next lines, or after the client is
 * gone), so the ordering and detach paths run too. */
#include "../../core/lib/control.c"

#include <fcntl.h>

/* control_start() and the permission path need these; never called with a
 * real engine here. */
const struct config *engine_config(struct engine *e)
{
	(void)e;
	abort();
}

uv_loop_t *engine_loop(struct engine *e)
{
	(void)e;
	abort();
}

#define FUZZ_LATER_MAX 8

static struct control_reply *fuzz_later[FUZZ_LATER_MAX];
static size_t fuzz_n_later;
static struct control *fuzz_c;
static int fuzz_peer = -1;
static char *fuzz_out;
static size_t fuzz_out_len, fuzz_out_cap;

static void fuzz_cmd_echo(struct control_reply *reply, json_t *args,
			  json_t *req, void *ctx)
{
	(void)req;
	(void)ctx;
	control_reply_ok(&reply, json_deep_copy(args), "echo", 0);
}

static void fuzz_cmd_fail(struct control_reply *reply, json_t *args,
			  json_t *req, void *ctx)
{
	(void)req;
	(void)ctx;
	control_reply_error(&reply, 3, "failed with %zu args",
			    json_array_size(args));
}

static void fuzz_cmd_stream(struct control_reply *reply, json_t *args,
			    json_t *req, void *ctx)
{
	size_t i;
	json_t *a;

	(void)req;
	(void)ctx;
	json_array_foreach(args, i, a) {
		json_t *ev = json_pack("{s:O}", "arg", a);
		bool more = control_reply_stream(reply, ev);
		json_decref(ev);
		if (!more)
			break;
	}
	control_reply_end(&reply);
}

static void fuzz_gone(struct control_reply *reply, void *ctx)
{
	(void)reply;
	(void)ctx;
}

static void fuzz_cmd_later(struct control_reply *reply, json_t *args,
			   json_t *req, void *ctx)
{
	(void)args;
	(void)req;
	(void)ctx;
	if (fuzz_n_later == FUZZ_LATER_MAX) {
		control_reply_ok(&reply, NULL, "full", 1);
		return;
	}
	control_reply_on_gone(reply, fuzz_gone, NULL);
	fuzz_later[fuzz_n_later++] = reply;
}

static void fuzz_drain(void)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fuzz_peer, buf, sizeof(buf))) > 0) {
		if (fuzz_out_len + (size_t)n > fuzz_out_cap) {
			fuzz_out_cap = (fuzz_out_len + (size_t)n) * 2;
			fuzz_out = xrealloc(fuzz_out, fuzz_out_cap);
		}
		memcpy(fuzz_out + fuzz_out_len, buf, (size_t)n);
		fuzz_out_len += (size_t)n;
	}
}

/* Every line the server wrote is a JSON object with "ok" or "event". */
static void fuzz_check_output(void)
{
	size_t start = 0;

	while (start < fuzz_out_len) {
		char *nl = memchr(fuzz_out + start, '\n', fuzz_out_len - start);
		if (nl == NULL)
			abort(); /* a reply without its newline */
		size_t len = (size_t)(nl - (fuzz_out + start));
		json_t *o = json_loadb(fuzz_out + start, len, 0, NULL);
		if (!json_is_object(o) ||
		    (!json_is_boolean(json_object_get(o, "ok")) &&
		     json_object_get(o, "event") == NULL))
			abort();
		json_decref(o);
		start += len + 1;
	}
}

static void fuzz_init(void)
{
	static struct control c;

	log_set_level(LOG_ERROR_L);
	c.cmds = hmap_new();
	c.loop = uv_default_loop();
	c.handles = 1; /* the (absent) server: never freed */
	fuzz_c = &c;
	control_register(&c, "echo", fuzz_cmd_echo, NULL);
	control_register(&c, "fail", fuzz_cmd_fail, NULL);
	control_register(&c, "stream", fuzz_cmd_stream, NULL);
	control_register(&c, "later", fuzz_cmd_later, NULL);
	control_register(&c, "hooks.lint", fuzz_cmd_echo, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2];

	if (fuzz_c == NULL)
		fuzz_init();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) < 0)
		abort();
	fuzz_peer = sv[1];
	fuzz_out_len = 0;

	struct control_client *cl = xcalloc(1, sizeof(*cl));
	cl->c = fuzz_c;
	if (uv_pipe_init(fuzz_c->loop, &cl->pipe, 0) < 0 ||
	    uv_pipe_open(&cl->pipe, sv[0]) < 0)
		abort();
	cl->pipe.data = cl;
	fuzz_c->handles++;
	cl->next = fuzz_c->clients;
	if (cl->next != NULL)
		cl->next->prev = cl;
	fuzz_c->clients = cl;
	cl->uid = 0;
	cl->pid = 1;
	cl->cap = size + 1;
	cl->buf = xmalloc(cl->cap);
	memcpy(cl->buf, data, size);
	cl->len = size;

	control_client_process(cl);
	/* answer half the deferred replies while the client is there */
	size_t half = fuzz_n_later / 2;
	for (size_t i = 0; i < half; i++)
		control_reply_ok(&fuzz_later[i], json_string("later"), NULL,
				 0);
	if (!cl->closing && cl->paused)
		control_client_process(cl);
	for (int i = 0; i < 4; i++) {
		uv_run(fuzz_c->loop, UV_RUN_NOWAIT);
		fuzz_drain();
	}
	bool failed = cl->closing;
	if (!cl->closing)
		control_client_close(cl);
	uv_run(fuzz_c->loop, UV_RUN_DEFAULT); /* until closed */
	fuzz_drain();
	/* the rest after the client is gone: they must not touch it */
	for (size_t i = half; i < fuzz_n_later; i++)
		control_reply_ok(&fuzz_later[i], json_string("late"), NULL,
				 0);
	fuzz_n_later = 0;
	close(fuzz_peer);
	fuzz_peer = -1;
	if (!failed)
		fuzz_check_output();
	return 0;
}
