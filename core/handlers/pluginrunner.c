#define _GNU_SOURCE
/* ophook-plugin-runner: runs one C plugin out of ophookd's process
 * (plugins.NAME.isolation: process).  ophookd starts it with
 * `ophook-plugin-runner --fd N PATH`, N being its end of a socketpair
 * (pluginwire.h).  The runner loads PATH, says HELLO (name, flags,
 * subscriptions), waits for INIT (settings and paths), calls init() and
 * answers READY or FAIL; then it runs each EVENT in order and answers a
 * RESULT.  Host calls are answered here (settings, typed getters,
 * state_dir, root, node, event_get, request_action) or forwarded without
 * waiting (log, emit, own_write).  A crash or a hang here costs ophookd
 * nothing: it sees the exit status (or kills us at the delivery
 * timeout).  It exits when the socket closes or its parent dies. */
#include "pluginwire.h"
#include "plugsettings.h"
#include "util.h"

#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "ophook/plugin.h"

struct runner_event {
	struct ophook_event pub; /* first: event_get gets it back */
	json_t *parsed;          /* lazily */
	char *texts[16];         /* numbers turned into text */
	unsigned n_texts;
};

struct ophook_ctx {
	json_t *init;             /* the INIT object */
	json_t *settings;
	json_t *setting_text;     /* key -> JSON text of non-strings */
	struct plugsettings *ps;
	char *settings_error;
	const char *state_dir, *root, *node, *name;
};

struct runner_action {
	struct ophook_ctx *ctx;
	char *name;
	ophook_action_fn *fn;
	void *data;
	unsigned delay_ms;
	bool scheduled, running, again;
	pthread_cond_t cond;
	struct runner_action *next;
};

static int runner_fd = -1;
static pthread_mutex_t runner_out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pluginwire_buf runner_out;
/* Results wait for the end of a batch of events, but never behind a long
 * call: the main thread signals runner_flush_cond when it starts a call
 * with results pending, and runner_flusher sends them 1 ms later if that
 * call still runs. */
static pthread_cond_t runner_flush_cond = PTHREAD_COND_INITIALIZER;
static unsigned long runner_call_seq;
static pthread_mutex_t runner_action_lock = PTHREAD_MUTEX_INITIALIZER;
static struct runner_action *runner_actions;

/* Write everything buffered (runner_out_lock held).  Exits when the
 * daemon is gone. */
static void runner_flush_locked(void)
{
	size_t off = 0;

	while (off < runner_out.len) {
		ssize_t n = write(runner_fd, runner_out.data + off,
				  runner_out.len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		off += (size_t)n;
	}
	runner_out.len = 0;
}

/* Frames from threads other than the main one are sent at once; the main
 * one writes once per batch of events. */
static __thread bool runner_tls_main;

static void runner_frame_done(void)
{
	pluginwire_end(&runner_out);
	if (!runner_tls_main)
		runner_flush_locked();
	pthread_mutex_unlock(&runner_out_lock);
}

static void runner_send_str(enum pluginwire_type t, const char *s)
{
	pthread_mutex_lock(&runner_out_lock);
	pluginwire_begin(&runner_out, t);
	pluginwire_str(&runner_out, s);
	runner_frame_done();
}

static void runner_log(struct ophook_ctx *ctx, enum ophook_log_level level,
		       const char *fmt, ...)
{
	va_list ap;
	char *msg;

	(void)ctx;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	pthread_mutex_lock(&runner_out_lock);
	pluginwire_begin(&runner_out, PW_LOG);
	pluginwire_u32(&runner_out, (uint32_t)level);
	pluginwire_str(&runner_out, msg != NULL ? msg : fmt);
	runner_frame_done();
	free(msg);
}

static const char *runner_setting(struct ophook_ctx *ctx, const char *key)
{
	json_t *v = json_object_get(ctx->settings, key);
	json_t *t;
	char *text;

	if (v == NULL || json_is_null(v))
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	pthread_mutex_lock(&runner_action_lock);
	t = json_object_get(ctx->setting_text, key);
	if (t == NULL) {
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		t = json_string(text != NULL ? text : "");
		json_object_set_new(ctx->setting_text, key, t);
		free(text);
	}
	pthread_mutex_unlock(&runner_action_lock);
	return json_string_value(t);
}

/* emit is forwarded without waiting: fields_json is checked here, and
 * what ophookd refuses later is logged there. */
static int runner_emit(struct ophook_ctx *ctx, const char *type,
		       const char *subject, const char *fields_json,
		       const char **error_r)
{
	(void)ctx;
	if (fields_json != NULL) {
		json_error_t jerr;
		json_t *j = json_loads(fields_json, 0, &jerr);
		bool obj = j != NULL && json_is_object(j);

		json_decref(j);
		if (!obj) {
			*error_r = "fields_json is not a JSON object";
			return -EINVAL;
		}
	}
	if (type == NULL || subject == NULL) {
		*error_r = "type and subject are required";
		return -EINVAL;
	}
	pthread_mutex_lock(&runner_out_lock);
	pluginwire_begin(&runner_out, PW_EMIT);
	pluginwire_str(&runner_out, type);
	pluginwire_str(&runner_out, subject);
	pluginwire_str(&runner_out, fields_json);
	runner_frame_done();
	return 0;
}

static void *runner_action_thread(void *arg)
{
	struct runner_action *a = arg;

	pthread_mutex_lock(&runner_action_lock);
	for (;;) {
		struct timespec ts;

		while (!a->scheduled)
			pthread_cond_wait(&a->cond, &runner_action_lock);
		pthread_mutex_unlock(&runner_action_lock);
		ts.tv_sec = a->delay_ms / 1000;
		ts.tv_nsec = (long)(a->delay_ms % 1000) * 1000000L;
		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		pthread_mutex_lock(&runner_action_lock);
		a->scheduled = false;
		a->running = true;
		pthread_mutex_unlock(&runner_action_lock);
		a->fn(a->ctx, a->data);
		pthread_mutex_lock(&runner_action_lock);
		a->running = false;
		if (a->again) {
			a->again = false;
			a->scheduled = true;
		}
	}
	return NULL;
}

/* The same coalescing as in ophookd, with one thread per action name. */
static int runner_request_action(struct ophook_ctx *ctx, const char *name,
				 unsigned delay_ms, ophook_action_fn *fn,
				 void *data)
{
	struct runner_action *a;
	int ret = 0;

	if (name == NULL || fn == NULL)
		return -EINVAL;
	pthread_mutex_lock(&runner_action_lock);
	for (a = runner_actions; a != NULL; a = a->next)
		if (strcmp(a->name, name) == 0)
			break;
	if (a == NULL) {
		pthread_t t;

		a = xcalloc(1, sizeof(*a));
		a->ctx = ctx;
		a->name = xstrdup(name);
		a->fn = fn;
		a->data = data;
		pthread_cond_init(&a->cond, NULL);
		if (pthread_create(&t, NULL, runner_action_thread, a) != 0) {
			ret = -EAGAIN;
			free(a->name);
			free(a);
			goto out;
		}
		pthread_detach(t);
		a->next = runner_actions;
		runner_actions = a;
	}
	a->delay_ms = delay_ms;
	if (a->running)
		a->again = true;
	else if (!a->scheduled) {
		a->scheduled = true;
		pthread_cond_signal(&a->cond);
	}
out:
	pthread_mutex_unlock(&runner_action_lock);
	return ret;
}

/* The runner is ended at stop (its children die with it: PDEATHSIG). */
static bool runner_stopping(struct ophook_ctx *ctx)
{
	(void)ctx;
	return false;
}

static const char *runner_state_dir(struct ophook_ctx *ctx)
{
	return ctx->state_dir;
}

static const char *runner_root(struct ophook_ctx *ctx)
{
	return ctx->root;
}

static const char *runner_node(struct ophook_ctx *ctx)
{
	return ctx->node;
}

static const char *runner_event_get(const struct ophook_event *pub,
				    const char *key)
{
	struct runner_event *re = (struct runner_event *)pub;
	json_t *v;

	if (re->parsed == NULL) {
		json_error_t jerr;

		re->parsed = json_loads(pub->json, 0, &jerr);
		if (re->parsed == NULL)
			return NULL;
	}
	v = json_object_get(re->parsed, key);
	if (v == NULL)
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	if (re->n_texts >= sizeof(re->texts) / sizeof(re->texts[0]))
		return NULL;
	if (json_is_integer(v))
		re->texts[re->n_texts] =
			xasprintf("%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		re->texts[re->n_texts] = xasprintf("%g", json_real_value(v));
	else if (json_is_boolean(v))
		re->texts[re->n_texts] =
			xstrdup(json_is_true(v) ? "true" : "false");
	else
		return NULL;
	return re->texts[re->n_texts++];
}

static void runner_own_write(struct ophook_ctx *ctx, const char *path)
{
	(void)ctx;
	if (path != NULL)
		runner_send_str(PW_OWN_WRITE, path);
}

static int runner_settings_declare(struct ophook_ctx *ctx,
				   const struct ophook_setting_decl *decls,
				   size_t n, const char **error_r)
{
	json_t *in = ctx->init;
	struct plugsettings_src src = {
		.plugin = ctx->name,
		.file = json_string_value(json_object_get(in, "file")),
		.pos = json_object_get(in, "settings_pos"),
		.line = (int)json_integer_value(json_object_get(in, "line")),
		.column = (int)json_integer_value(json_object_get(in, "column")),
		.vars = json_object_get(in, "vars"),
	};
	struct plugsettings *ps = NULL;
	char *err = NULL;
	int ret;

	ret = plugsettings_new(&src, ctx->settings, decls, n, &ps, &err);
	if (ret < 0) {
		free(ctx->settings_error);
		ctx->settings_error =
			err != NULL ? err : xstrdup(strerror(-ret));
		*error_r = ctx->settings_error;
		return ret;
	}
	plugsettings_free(&ctx->ps);
	ctx->ps = ps;
	return 0;
}

static const char *runner_setting_str(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_str(ctx->ps, key);
}

static int64_t runner_setting_int(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_int(ctx->ps, key);
}

static bool runner_setting_bool(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_bool(ctx->ps, key);
}

static const char *const *runner_setting_list(struct ophook_ctx *ctx,
					      const char *key)
{
	return plugsettings_list(ctx->ps, key);
}

static bool runner_setting_is_set(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_is_set(ctx->ps, key);
}

static const struct ophook_host runner_host = {
	.size = sizeof(struct ophook_host),
	.abi = OPHOOK_ABI_VERSION,
	.version = OPHOOK_VERSION,
	.log = runner_log,
	.setting = runner_setting,
	.emit = runner_emit,
	.request_action = runner_request_action,
	.state_dir = runner_state_dir,
	.root = runner_root,
	.event_get = runner_event_get,
	.own_write = runner_own_write,
	.node = runner_node,
	.settings_declare = runner_settings_declare,
	.setting_str = runner_setting_str,
	.setting_int = runner_setting_int,
	.setting_bool = runner_setting_bool,
	.setting_list = runner_setting_list,
	.setting_is_set = runner_setting_is_set,
	.stopping = runner_stopping,
};

static void *runner_flusher(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&runner_out_lock);
	for (;;) {
		unsigned long seq;
		struct timespec ts;

		while (runner_out.len == 0)
			pthread_cond_wait(&runner_flush_cond, &runner_out_lock);
		seq = runner_call_seq;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&runner_flush_cond, &runner_out_lock,
				       &ts);
		if (runner_out.len > 0 && runner_call_seq == seq)
			runner_flush_locked();
	}
	return NULL;
}

/* Read until one complete frame is at the start of *in; returns its
 * length.  Exits on EOF. */
static long runner_read_frame(struct pluginwire_buf *in)
{
	for (;;) {
		long fl = pluginwire_frame_len(in->data, in->len);
		ssize_t n;

		if (fl < 0)
			_exit(3);
		if (fl > 0)
			return fl;
		if (in->cap - in->len < 65536) {
			in->cap = in->cap != 0 ? in->cap * 2 : 262144;
			in->data = xrealloc(in->data, in->cap);
		}
		n = read(runner_fd, in->data + in->len, in->cap - in->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0);
		in->len += (size_t)n;
	}
}

static void runner_consume(struct pluginwire_buf *in, long fl)
{
	memmove(in->data, in->data + fl, in->len - (size_t)fl);
	in->len -= (size_t)fl;
}

static void runner_fail(const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	runner_send_str(PW_FAIL, msg != NULL ? msg : fmt);
	pthread_mutex_lock(&runner_out_lock);
	runner_flush_locked();
	pthread_mutex_unlock(&runner_out_lock);
	_exit(2);
}

static void runner_run_event(const struct ophook_plugin *api, void *data,
			     struct pluginwire_rd *rd)
{
	struct runner_event re = { 0 };
	uint64_t token = pluginwire_get_u64(rd);
	const char *err = NULL;
	int rc;

	re.pub.id = (int64_t)pluginwire_get_u64(rd);
	re.pub.time_ms = (int64_t)pluginwire_get_u64(rd);
	re.pub.attempt = pluginwire_get_u32(rd);
	re.pub.type = pluginwire_get_str(rd);
	re.pub.subject = pluginwire_get_str(rd);
	re.pub.source = pluginwire_get_str(rd);
	re.pub.json = pluginwire_get_str(rd);
	if (rd->bad)
		_exit(3);
	pthread_mutex_lock(&runner_out_lock);
	runner_call_seq++;
	if (runner_out.len > 0)
		pthread_cond_signal(&runner_flush_cond);
	pthread_mutex_unlock(&runner_out_lock);
	rc = api->on_event(data, &re.pub, &err);
	pthread_mutex_lock(&runner_out_lock);
	pluginwire_begin(&runner_out, PW_RESULT);
	pluginwire_u64(&runner_out, token);
	pluginwire_u32(&runner_out, (uint32_t)rc);
	pluginwire_str(&runner_out, rc != 0 ? err : NULL);
	pluginwire_end(&runner_out);
	pthread_mutex_unlock(&runner_out_lock);
	json_decref(re.parsed);
	for (unsigned i = 0; i < re.n_texts; i++)
		free(re.texts[i]);
}

/* Built with AddressSanitizer (CI), the runner leaves fatal signals alone:
 * a plugin's crash must kill the runner by its signal, which the daemon
 * reports ("SIGSEGV in on_event"), not become a sanitizer report and exit
 * status 1.  Unused in a normal build; ASAN_OPTIONS still takes
 * precedence. */
__attribute__((used, visibility("default"))) const char *
__asan_default_options(void);
__attribute__((used, visibility("default"))) const char *
__asan_default_options(void)
{
	return "handle_segv=0:handle_sigbus=0:handle_sigfpe=0:"
	       "handle_sigill=0:handle_abort=0";
}

int main(int argc, char **argv)
{
	struct pluginwire_buf in = { 0 };
	struct ophook_ctx ctx = { 0 };
	const struct ophook_plugin *api;
	struct pluginwire_rd rd;
	char *subs = NULL;
	void *dl, *data = NULL;
	const char *err = NULL;
	json_error_t jerr;
	long fl;
	int ret;

	if (argc != 4 || strcmp(argv[1], "--fd") != 0) {
		fprintf(stderr, "usage: ophook-plugin-runner --fd N PLUGIN.so "
				"(started by ophookd)\n");
		return 2;
	}
	runner_fd = atoi(argv[2]);
	runner_tls_main = true;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return 0;
	signal(SIGPIPE, SIG_IGN);

	dl = dlopen(argv[3], RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL)
		runner_fail("%s: %s", argv[3], dlerror());
	api = dlsym(dl, "ophook_plugin");
	if (api == NULL)
		runner_fail("%s: no ophook_plugin symbol (not an ophook "
			    "plugin?)", argv[3]);
	if (api->abi != OPHOOK_ABI_VERSION)
		runner_fail("%s: plugin ABI version %u, but ophookd %s speaks "
			    "ABI version %u: rebuild the plugin against this "
			    "ophook", argv[3], api->abi, OPHOOK_VERSION,
			    OPHOOK_ABI_VERSION);
	if (api->name == NULL || api->init == NULL || api->on_event == NULL)
		runner_fail("%s: no name, init or on_event", argv[3]);
	if (api->subscriptions != NULL) {
		subs = xstrdup("");
		for (const char *const *s = api->subscriptions; *s != NULL;
		     s++) {
			char *t = xasprintf("%s%s%s", subs,
					    *subs != '\0' ? "\n" : "", *s);

			free(subs);
			subs = t;
		}
	}
	pthread_mutex_lock(&runner_out_lock);
	pluginwire_begin(&runner_out, PW_HELLO);
	pluginwire_str(&runner_out, api->name);
	pluginwire_str(&runner_out, api->description);
	pluginwire_u32(&runner_out, api->abi);
	pluginwire_u32(&runner_out, api->flags);
	pluginwire_str(&runner_out, subs);
	pluginwire_end(&runner_out);
	runner_flush_locked();
	pthread_mutex_unlock(&runner_out_lock);
	free(subs);

	fl = runner_read_frame(&in);
	if (pluginwire_open(&rd, in.data, (size_t)fl) != PW_INIT)
		_exit(3);
	{
		const char *text = pluginwire_get_str(&rd);

		ctx.init = json_loads(text != NULL ? text : "{}", 0, &jerr);
	}
	runner_consume(&in, fl);
	if (ctx.init == NULL)
		_exit(3);
	ctx.settings = json_object_get(ctx.init, "settings");
	ctx.setting_text = json_object();
	ctx.name = api->name;
	ctx.state_dir = json_string_value(json_object_get(ctx.init, "state_dir"));
	ctx.root = json_string_value(json_object_get(ctx.init, "root"));
	ctx.node = json_string_value(json_object_get(ctx.init, "node"));
	ret = api->init(&ctx, &runner_host, &data, &err);
	if (ret < 0)
		runner_fail("init failed: %s",
			    ctx.settings_error != NULL ? ctx.settings_error
			    : err != NULL		? err
							: strerror(-ret));
	pthread_mutex_lock(&runner_out_lock);
	pluginwire_begin(&runner_out, PW_READY);
	pluginwire_end(&runner_out);
	runner_flush_locked();
	pthread_mutex_unlock(&runner_out_lock);

	{
		pthread_t t;

		if (pthread_create(&t, NULL, runner_flusher, NULL) == 0)
			pthread_detach(t);
	}
	for (;;) {
		size_t off = 0;

		runner_read_frame(&in);
		/* every complete frame read so far, then one write */
		while ((fl = pluginwire_frame_len(in.data + off,
						  in.len - off)) > 0) {
			int type = pluginwire_open(&rd, in.data + off,
						   (size_t)fl);

			off += (size_t)fl;
			if (type == PW_EVENT) {
				runner_run_event(api, data, &rd);
			} else if (type == PW_FINI) {
				if (api->fini != NULL)
					api->fini(data);
				pthread_mutex_lock(&runner_out_lock);
				runner_flush_locked();
				pthread_mutex_unlock(&runner_out_lock);
				_exit(0);
			}
		}
		if (fl < 0)
			_exit(3);
		runner_consume(&in, (long)off);
		pthread_mutex_lock(&runner_out_lock);
		runner_flush_locked();
		pthread_mutex_unlock(&runner_out_lock);
	}
}
