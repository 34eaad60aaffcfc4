/* A fake plugin host for unit tests.  See pluginmock.h. */
#define _GNU_SOURCE
#include "pluginmock.h"
#include "plugsettings.h"

#include <dlfcn.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define PLUGINMOCK_EVENT_MAGIC 0x6f70686bu

struct pluginmock_action {
	char *name;
	ophook_action_fn *fn;
	void *data;
	unsigned delay_ms;
	unsigned requests;
	unsigned calls;
	bool pending;
};

struct ophook_ctx {
	struct pluginmock *m;
};

struct pluginmock {
	atomic_bool stopping;
	struct ophook_ctx ctx;
	struct ophook_host host;
	pthread_mutex_t lock;

	json_t *settings;
	char **setting_texts; /* strings handed out by setting() */
	size_t n_setting_texts;
	struct plugsettings *ps; /* from settings_declare() */
	char *settings_error;
	bool check_only;

	void *dl;
	const struct ophook_plugin *plugin;
	void *data;
	bool inited;

	char *tmp, *root, *state;

	char **logs;
	size_t n_logs;
	struct pluginmock_emitted *emitted;
	size_t n_emitted;
	int emit_ret;
	struct pluginmock_action *actions;
	size_t n_actions;
	char **own;
	size_t n_own;
};

/* An event made by pluginmock_event(): the public struct first. */
struct pluginmock_event {
	struct ophook_event ev;
	unsigned magic;
	json_t *root;
	char **texts; /* strings handed out by event_get() */
	size_t n_texts;
	char *type, *subject, *json;
};

static void *pm_xmalloc(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (p == NULL) {
		fprintf(stderr, "pluginmock: out of memory\n");
		abort();
	}
	return p;
}

static char *pm_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL) {
		fprintf(stderr, "pluginmock: out of memory\n");
		abort();
	}
	return p;
}

static void *pm_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL) {
		fprintf(stderr, "pluginmock: out of memory\n");
		abort();
	}
	return p;
}

static void pm_push(char ***list, size_t *n, char *s)
{
	*list = pm_xrealloc(*list, (*n + 1) * sizeof(**list));
	(*list)[(*n)++] = s;
}

/* ---- the host table ---- */

static void pm_log(struct ophook_ctx *ctx, enum ophook_log_level level,
		   const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pm_log(struct ophook_ctx *ctx, enum ophook_log_level level,
		   const char *fmt, ...)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	struct pluginmock *m = ctx->m;
	char *msg = NULL, *line = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	va_end(ap);
	if (asprintf(&line, "%s %s", (unsigned)level < 4 ? names[level] : "?",
		     msg) < 0)
		abort();
	free(msg);
	pthread_mutex_lock(&m->lock);
	pm_push(&m->logs, &m->n_logs, line);
	printf("# [%s] %s\n", m->plugin != NULL ? m->plugin->name : "plugin", line);
	fflush(stdout);
	pthread_mutex_unlock(&m->lock);
}

static const char *pm_setting(struct ophook_ctx *ctx, const char *key)
{
	struct pluginmock *m = ctx->m;
	const char *ret = NULL;
	char *text = NULL;
	json_t *v;

	pthread_mutex_lock(&m->lock);
	v = json_object_get(m->settings, key);
	if (v == NULL || json_is_null(v)) {
		pthread_mutex_unlock(&m->lock);
		return NULL;
	}
	if (json_is_string(v))
		text = pm_xstrdup(json_string_value(v));
	else if (json_is_true(v))
		text = pm_xstrdup("true");
	else if (json_is_false(v))
		text = pm_xstrdup("false");
	else
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (text == NULL)
		abort();
	pm_push(&m->setting_texts, &m->n_setting_texts, text);
	ret = text;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

static int pm_emit(struct ophook_ctx *ctx, const char *type,
		   const char *subject, const char *fields_json,
		   const char **error_r)
{
	struct pluginmock *m = ctx->m;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = m->emit_ret;
	if (ret == 0 && fields_json != NULL) {
		json_t *o = json_loads(fields_json, 0, NULL);

		if (o == NULL || !json_is_object(o))
			ret = -EINVAL;
		json_decref(o);
	}
	if (ret != 0) {
		pthread_mutex_unlock(&m->lock);
		*error_r = ret == -EINVAL ? "pluginmock: fields_json is not a JSON object"
					  : "pluginmock: emit failed (as asked)";
		return ret;
	}
	m->emitted = pm_xrealloc(m->emitted, (m->n_emitted + 1) * sizeof(*m->emitted));
	m->emitted[m->n_emitted++] = (struct pluginmock_emitted){
		.type = pm_xstrdup(type),
		.subject = pm_xstrdup(subject),
		.fields = fields_json != NULL ? pm_xstrdup(fields_json) : NULL,
	};
	printf("# [%s] emit %s %s %s\n", m->plugin != NULL ? m->plugin->name : "plugin",
	       type, subject, fields_json != NULL ? fields_json : "");
	fflush(stdout);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static struct pluginmock_action *pm_action_find(struct pluginmock *m,
						const char *name)
{
	for (size_t i = 0; i < m->n_actions; i++) {
		if (strcmp(m->actions[i].name, name) == 0)
			return &m->actions[i];
	}
	return NULL;
}

static int pm_request_action(struct ophook_ctx *ctx, const char *name,
			     unsigned delay_ms, ophook_action_fn *fn, void *data)
{
	struct pluginmock *m = ctx->m;
	struct pluginmock_action *a;

	if (name == NULL || fn == NULL)
		return -EINVAL;
	pthread_mutex_lock(&m->lock);
	a = pm_action_find(m, name);
	if (a == NULL) {
		m->actions = pm_xrealloc(m->actions, (m->n_actions + 1) * sizeof(*m->actions));
		a = &m->actions[m->n_actions++];
		*a = (struct pluginmock_action){ .name = pm_xstrdup(name), .fn = fn,
						 .data = data };
	}
	a->requests++;
	a->delay_ms = delay_ms;
	a->pending = true;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static const char *pm_state_dir(struct ophook_ctx *ctx)
{
	return ctx->m->state;
}

static const char *pm_root(struct ophook_ctx *ctx)
{
	return ctx->m->root;
}

static const char *pm_event_get(const struct ophook_event *ev, const char *key)
{
	struct pluginmock_event *pe = (struct pluginmock_event *)ev;
	json_t *v;
	char *text;

	if (pe->magic != PLUGINMOCK_EVENT_MAGIC) {
		fprintf(stderr, "pluginmock: event_get on an event not made by "
				"pluginmock_event()\n");
		abort();
	}
	v = json_object_get(pe->root, key);
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v) || json_is_real(v)) {
		text = json_dumps(v, JSON_ENCODE_ANY);
		if (text == NULL)
			abort();
		pm_push(&pe->texts, &pe->n_texts, text);
		return text;
	}
	return NULL;
}

static void pm_own_write(struct ophook_ctx *ctx, const char *path)
{
	struct pluginmock *m = ctx->m;

	pthread_mutex_lock(&m->lock);
	pm_push(&m->own, &m->n_own, pm_xstrdup(path));
	pthread_mutex_unlock(&m->lock);
}

/* ---- life cycle ---- */

static int pm_settings_declare(struct ophook_ctx *ctx,
			       const struct ophook_setting_decl *decls,
			       size_t n, const char **error_r)
{
	struct pluginmock *m = ctx->m;
	/* ${NAME} of declared defaults: the mock's root and state, the
	 * host's trees under <tmp>/host (a default never reaches the real
	 * /etc, /var or /usr) */
	char *bind = NULL, *bcache = NULL, *mail = NULL, *log = NULL,
	     *csf = NULL;
	json_t *vars;

	if (asprintf(&bind, "%s/host/etc/bind", m->tmp) < 0 ||
	    asprintf(&bcache, "%s/host/var/cache/bind", m->tmp) < 0 ||
	    asprintf(&mail, "%s/host/usr/local/mail/openmail", m->tmp) < 0 ||
	    asprintf(&log, "%s/host/var/log", m->tmp) < 0 ||
	    asprintf(&csf, "%s/host/etc/csf", m->tmp) < 0)
		abort();
	vars = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "root",
			 m->root, "state_dir", m->state, "paths.bind", bind,
			 "paths.bind_cache", bcache, "paths.mail", mail,
			 "paths.log", log, "paths.csf", csf);
	free(bind);
	free(bcache);
	free(mail);
	free(log);
	free(csf);
	struct plugsettings_src src = {
		.plugin = m->plugin != NULL ? m->plugin->name : NULL,
		.vars = vars,
	};
	struct plugsettings *ps = NULL;
	char *err = NULL;
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = plugsettings_new(&src, m->settings, decls, n, &ps, &err);
	if (ret < 0) {
		free(m->settings_error);
		m->settings_error = err != NULL ? err : pm_xstrdup(strerror(-ret));
		*error_r = m->settings_error;
	} else {
		plugsettings_free(&m->ps);
		m->ps = ps;
		ret = m->check_only ? OPHOOK_SETTINGS_CHECKED : 0;
	}
	pthread_mutex_unlock(&m->lock);
	json_decref(vars);
	return ret;
}

static const char *pm_setting_str(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_str(ctx->m->ps, key);
}

static int64_t pm_setting_int(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_int(ctx->m->ps, key);
}

static bool pm_setting_bool(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_bool(ctx->m->ps, key);
}

static const char *const *pm_setting_list(struct ophook_ctx *ctx,
					  const char *key)
{
	return plugsettings_list(ctx->m->ps, key);
}

static bool pm_setting_is_set(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_is_set(ctx->m->ps, key);
}

static bool pm_stopping(struct ophook_ctx *ctx)
{
	return atomic_load(&ctx->m->stopping);
}

void pluginmock_stopping(struct pluginmock *m, bool on)
{
	atomic_store(&m->stopping, on);
}

void pluginmock_check_only(struct pluginmock *m, bool on)
{
	m->check_only = on;
}

const char *pluginmock_settings_error(struct pluginmock *m)
{
	return m->settings_error;
}

struct pluginmock *pluginmock_new(const char *settings_json)
{
	struct pluginmock *m = pm_xmalloc(sizeof(*m));
	char tmpl[] = "/tmp/pluginmock.XXXXXX";

	m->ctx.m = m;
	pthread_mutex_init(&m->lock, NULL);
	m->host = (struct ophook_host){
		.size = sizeof(struct ophook_host),
		.abi = OPHOOK_ABI_VERSION,
		.version = "pluginmock",
		.log = pm_log,
		.setting = pm_setting,
		.emit = pm_emit,
		.request_action = pm_request_action,
		.state_dir = pm_state_dir,
		.root = pm_root,
		.event_get = pm_event_get,
		.own_write = pm_own_write,
		.settings_declare = pm_settings_declare,
		.setting_str = pm_setting_str,
		.setting_int = pm_setting_int,
		.setting_bool = pm_setting_bool,
		.setting_list = pm_setting_list,
		.setting_is_set = pm_setting_is_set,
		.stopping = pm_stopping,
	};
	if (mkdtemp(tmpl) == NULL) {
		perror("pluginmock: mkdtemp");
		abort();
	}
	m->tmp = pm_xstrdup(tmpl);
	if (asprintf(&m->root, "%s/root", tmpl) < 0 ||
	    asprintf(&m->state, "%s/state", tmpl) < 0)
		abort();
	if (mkdir(m->root, 0755) < 0 || mkdir(m->state, 0700) < 0) {
		perror("pluginmock: mkdir");
		abort();
	}
	m->settings = json_object();
	pluginmock_set_settings(m, settings_json);
	return m;
}

void pluginmock_set_settings(struct pluginmock *m, const char *settings_json)
{
	json_error_t err;
	json_t *o;

	if (settings_json == NULL) {
		o = json_object();
	} else {
		o = json_loads(settings_json, JSON_REJECT_DUPLICATES, &err);
		if (o == NULL || !json_is_object(o)) {
			fprintf(stderr, "pluginmock: settings are not a JSON object: "
					"%s (line %d)\n", err.text, err.line);
			abort();
		}
	}
	pthread_mutex_lock(&m->lock);
	json_decref(m->settings);
	m->settings = o;
	pthread_mutex_unlock(&m->lock);
}

void pluginmock_set_setting(struct pluginmock *m, const char *key,
			    const char *value_json)
{
	pthread_mutex_lock(&m->lock);
	if (value_json == NULL) {
		json_object_del(m->settings, key);
	} else {
		json_t *v = json_loads(value_json, JSON_DECODE_ANY, NULL);

		if (v == NULL) {
			fprintf(stderr, "pluginmock: setting %s: bad JSON\n", key);
			abort();
		}
		json_object_set_new(m->settings, key, v);
	}
	pthread_mutex_unlock(&m->lock);
}

static int pm_rm(const char *path, const struct stat *st, int flag,
		 struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void pluginmock_fini(struct pluginmock *m)
{
	if (m->inited && m->plugin->fini != NULL)
		m->plugin->fini(m->data);
	m->inited = false;
	m->data = NULL;
}

void pluginmock_free(struct pluginmock **mp)
{
	struct pluginmock *m = *mp;
	const char *keep = getenv("PLUGINMOCK_KEEP");

	if (m == NULL)
		return;
	pluginmock_fini(m);
	if (m->dl != NULL)
		dlclose(m->dl);
	if (keep != NULL && strcmp(keep, "1") == 0)
		printf("# pluginmock: kept %s\n", m->tmp);
	else
		nftw(m->tmp, pm_rm, 16, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < m->n_setting_texts; i++)
		free(m->setting_texts[i]);
	free(m->setting_texts);
	for (size_t i = 0; i < m->n_logs; i++)
		free(m->logs[i]);
	free(m->logs);
	for (size_t i = 0; i < m->n_emitted; i++) {
		free(m->emitted[i].type);
		free(m->emitted[i].subject);
		free(m->emitted[i].fields);
	}
	free(m->emitted);
	for (size_t i = 0; i < m->n_actions; i++)
		free(m->actions[i].name);
	free(m->actions);
	for (size_t i = 0; i < m->n_own; i++)
		free(m->own[i]);
	free(m->own);
	json_decref(m->settings);
	plugsettings_free(&m->ps);
	free(m->settings_error);
	free(m->tmp);
	free(m->root);
	free(m->state);
	pthread_mutex_destroy(&m->lock);
	free(m);
	*mp = NULL;
}

int pluginmock_load(struct pluginmock *m, const char *path,
		    const char **error_r)
{
	static char buf[512];
	const struct ophook_plugin *p;
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);

	if (dl == NULL) {
		snprintf(buf, sizeof(buf), "dlopen %s: %s", path, dlerror());
		*error_r = buf;
		return -ENOENT;
	}
	p = dlsym(dl, "ophook_plugin");
	if (p == NULL) {
		snprintf(buf, sizeof(buf), "%s: no ophook_plugin symbol", path);
		dlclose(dl);
		*error_r = buf;
		return -ENOEXEC;
	}
	if (p->abi != OPHOOK_ABI_VERSION) {
		snprintf(buf, sizeof(buf), "%s: ABI %u, host has %u", path, p->abi,
			 OPHOOK_ABI_VERSION);
		dlclose(dl);
		*error_r = buf;
		return -ENOEXEC;
	}
	m->dl = dl;
	m->plugin = p;
	return 0;
}

void pluginmock_set_plugin(struct pluginmock *m,
			   const struct ophook_plugin *plugin)
{
	m->plugin = plugin;
}

const struct ophook_plugin *pluginmock_plugin(struct pluginmock *m)
{
	return m->plugin;
}

int pluginmock_init(struct pluginmock *m, const char **error_r)
{
	int ret;

	*error_r = NULL;
	if (m->plugin == NULL || m->plugin->init == NULL) {
		*error_r = "pluginmock: no plugin";
		return -EINVAL;
	}
	ret = m->plugin->init(&m->ctx, &m->host, &m->data, error_r);
	m->inited = ret == 0;
	return ret;
}

void *pluginmock_data(struct pluginmock *m)
{
	return m->data;
}

int pluginmock_deliver(struct pluginmock *m, const struct ophook_event *ev,
		       const char **error_r)
{
	*error_r = NULL;
	if (!m->inited || m->plugin->on_event == NULL) {
		*error_r = "pluginmock: plugin not initialised";
		return -EINVAL;
	}
	return m->plugin->on_event(m->data, ev, error_r);
}

int pluginmock_send(struct pluginmock *m, const char *type,
		    const char *subject, const char *json,
		    const char **error_r)
{
	struct ophook_event *ev = pluginmock_event(type, subject, json);
	int ret = pluginmock_deliver(m, ev, error_r);

	pluginmock_event_free(&ev);
	return ret;
}

static bool pm_pattern_match(const char *pat, const char *s)
{
	if (*pat == '\0')
		return *s == '\0';
	if (*pat == '*') {
		for (;; s++) {
			if (pm_pattern_match(pat + 1, s))
				return true;
			if (*s == '\0')
				return false;
		}
	}
	return *pat == *s && pm_pattern_match(pat + 1, s + 1);
}

bool pluginmock_subscribed(struct pluginmock *m, const char *type)
{
	const char *const *subs = m->plugin->subscriptions;

	if (subs == NULL)
		return true;
	for (; *subs != NULL; subs++) {
		if (pm_pattern_match(*subs, type))
			return true;
	}
	return false;
}

const struct ophook_host *pluginmock_host(struct pluginmock *m)
{
	return &m->host;
}

struct ophook_ctx *pluginmock_ctx(struct pluginmock *m)
{
	return &m->ctx;
}

const char *pluginmock_tmp(struct pluginmock *m)
{
	return m->tmp;
}

static size_t pm_tmp_entries_n; /* nftw has no user pointer */

static int pm_tmp_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)path;
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		pm_tmp_entries_n++;
	return 0;
}

size_t pluginmock_tmp_entries(struct pluginmock *m)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	size_t n;

	pthread_mutex_lock(&lock);
	pm_tmp_entries_n = 0;
	if (nftw(m->tmp, pm_tmp_entry, 16, FTW_PHYS) < 0) {
		perror("pluginmock: nftw");
		abort();
	}
	n = pm_tmp_entries_n - 2; /* root/ and state/ */
	pthread_mutex_unlock(&lock);
	return n;
}

const char *pluginmock_root(struct pluginmock *m)
{
	return m->root;
}

const char *pluginmock_state_dir(struct pluginmock *m)
{
	return m->state;
}

/* ---- inspection ---- */

size_t pluginmock_log_count(struct pluginmock *m)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n_logs;
	pthread_mutex_unlock(&m->lock);
	return n;
}

const char *pluginmock_log_line(struct pluginmock *m, size_t i)
{
	const char *line;

	pthread_mutex_lock(&m->lock);
	line = i < m->n_logs ? m->logs[i] : NULL;
	pthread_mutex_unlock(&m->lock);
	return line;
}

size_t pluginmock_log_grep(struct pluginmock *m, const char *substr)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_logs; i++) {
		if (strstr(m->logs[i], substr) != NULL)
			n++;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

size_t pluginmock_emitted_count(struct pluginmock *m, const char *type)
{
	size_t n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_emitted; i++) {
		if (type == NULL || strcmp(m->emitted[i].type, type) == 0)
			n++;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

const struct pluginmock_emitted *pluginmock_emitted(struct pluginmock *m,
						    size_t i)
{
	const struct pluginmock_emitted *e;

	/* valid until the next emit() (the array may move) */
	pthread_mutex_lock(&m->lock);
	e = i < m->n_emitted ? &m->emitted[i] : NULL;
	pthread_mutex_unlock(&m->lock);
	return e;
}

void pluginmock_emit_fail(struct pluginmock *m, int ret)
{
	pthread_mutex_lock(&m->lock);
	m->emit_ret = ret;
	pthread_mutex_unlock(&m->lock);
}

unsigned pluginmock_action_requests(struct pluginmock *m, const char *name)
{
	unsigned n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_actions; i++) {
		if (name == NULL || strcmp(m->actions[i].name, name) == 0)
			n += m->actions[i].requests;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

unsigned pluginmock_action_calls(struct pluginmock *m, const char *name)
{
	unsigned n = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_actions; i++) {
		if (name == NULL || strcmp(m->actions[i].name, name) == 0)
			n += m->actions[i].calls;
	}
	pthread_mutex_unlock(&m->lock);
	return n;
}

bool pluginmock_action_pending(struct pluginmock *m, const char *name)
{
	struct pluginmock_action *a;
	bool ret;

	pthread_mutex_lock(&m->lock);
	a = pm_action_find(m, name);
	ret = a != NULL && a->pending;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

unsigned pluginmock_action_delay(struct pluginmock *m, const char *name)
{
	struct pluginmock_action *a;
	unsigned ret;

	pthread_mutex_lock(&m->lock);
	a = pm_action_find(m, name);
	ret = a != NULL ? a->delay_ms : 0;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

unsigned pluginmock_run_actions(struct pluginmock *m)
{
	unsigned calls = 0;

	for (unsigned round = 0; round < 100; round++) {
		bool any = false;

		for (size_t i = 0;; i++) {
			ophook_action_fn *fn;
			void *data;

			pthread_mutex_lock(&m->lock);
			if (i >= m->n_actions) {
				pthread_mutex_unlock(&m->lock);
				break;
			}
			if (!m->actions[i].pending) {
				pthread_mutex_unlock(&m->lock);
				continue;
			}
			m->actions[i].pending = false;
			m->actions[i].calls++;
			fn = m->actions[i].fn;
			data = m->actions[i].data;
			pthread_mutex_unlock(&m->lock);
			fn(&m->ctx, data);
			calls++;
			any = true;
		}
		if (!any)
			break;
	}
	return calls;
}

size_t pluginmock_own_write_count(struct pluginmock *m)
{
	size_t n;

	pthread_mutex_lock(&m->lock);
	n = m->n_own;
	pthread_mutex_unlock(&m->lock);
	return n;
}

const char *pluginmock_own_write(struct pluginmock *m, size_t i)
{
	const char *p;

	pthread_mutex_lock(&m->lock);
	p = i < m->n_own ? m->own[i] : NULL;
	pthread_mutex_unlock(&m->lock);
	return p;
}

bool pluginmock_own_written(struct pluginmock *m, const char *path)
{
	bool ret = false;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_own && !ret; i++)
		ret = strcmp(m->own[i], path) == 0;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* ---- events ---- */

struct ophook_event *pluginmock_event(const char *type, const char *subject,
				      const char *json)
{
	static int64_t next_id = 1;
	struct pluginmock_event *pe = pm_xmalloc(sizeof(*pe));
	json_error_t err;
	struct timespec ts;

	if (json != NULL) {
		pe->root = json_loads(json, 0, &err);
		if (pe->root == NULL || !json_is_object(pe->root)) {
			fprintf(stderr, "pluginmock_event: bad JSON: %s\n", json);
			abort();
		}
	} else {
		pe->root = json_object();
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	pe->magic = PLUGINMOCK_EVENT_MAGIC;
	pe->ev.id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	pe->ev.time_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	pe->ev.attempt = 1;
	if (json_object_get(pe->root, "id") == NULL)
		json_object_set_new(pe->root, "id", json_integer(pe->ev.id));
	if (json_object_get(pe->root, "type") == NULL)
		json_object_set_new(pe->root, "type", json_string(type));
	if (json_object_get(pe->root, "subject") == NULL)
		json_object_set_new(pe->root, "subject", json_string(subject));
	if (json_object_get(pe->root, "source") == NULL)
		json_object_set_new(pe->root, "source", json_string("socket"));
	if (json_object_get(pe->root, "time") == NULL)
		json_object_set_new(pe->root, "time", json_string("2026-01-01T00:00:00.000Z"));
	pe->type = pm_xstrdup(type);
	pe->subject = pm_xstrdup(subject);
	pe->json = json_dumps(pe->root, JSON_COMPACT);
	if (pe->json == NULL)
		abort();
	pe->ev.type = pe->type;
	pe->ev.subject = pe->subject;
	pe->ev.source = "socket";
	pe->ev.json = pe->json;
	return &pe->ev;
}

void pluginmock_event_free(struct ophook_event **evp)
{
	struct pluginmock_event *pe = (struct pluginmock_event *)*evp;

	if (pe == NULL)
		return;
	for (size_t i = 0; i < pe->n_texts; i++)
		free(pe->texts[i]);
	free(pe->texts);
	json_decref(pe->root);
	free(pe->type);
	free(pe->subject);
	free(pe->json);
	free(pe);
	*evp = NULL;
}
