#include "pluginhost.h"
#include "dispatch.h"
#include "engine.h"
#include "hmap.h"
#include "log.h"
#include "plugsettings.h"
#include "util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct action {
	struct ophook_ctx *ctx;
	char *name;
	ophook_action_fn *fn;
	void *data;
	unsigned delay_ms;
	enum { ACTION_IDLE, ACTION_SCHEDULED, ACTION_RUNNING } state;
	bool again;          /* requested while running */
	bool timer_ready;    /* uv_timer_init done (loop thread) */
	bool to_schedule;    /* on ph->sched list */
	struct action *sched_next;
	uv_timer_t timer;
	uv_work_t work;
};

struct ophook_ctx {
	struct pluginhost *ph;
	struct plugin *p;
	json_t *settings;
	struct hmap *setting_text; /* key -> malloc'd JSON text */
	struct hmap *actions;      /* name -> struct action */
	char *state_dir;
	/* declared settings (settings_declare) */
	const struct config_plugin *cp; /* its config entry (file, positions)
					   while init runs, or NULL */
	struct plugsettings *ps;   /* checked values, NULL until declared */
	char *settings_error;      /* the last settings_declare error */
	bool check_only;           /* `ophookd --check-config` */
};

struct plugin {
	struct pluginhost *ph;
	char *name, *file;
	void *dl;
	const struct ophook_plugin *api;
	void *data;
	struct ophook_ctx ctx;
	unsigned running_actions;
	bool unloading;
	struct plugin *next;

	/* deliveries waiting for a worker; workers drain it one call at a
	 * time, so a hung call holds only its own worker */
	pthread_mutex_t qlock;
	pthread_cond_t qcond;           /* work queued or stop, for idlers */
	pthread_cond_t idle_cond;       /* an idler left, for plugin_destroy */
	struct plugin_call *q_head, *q_tail;
	struct plugin_call *done_head;  /* finished, for the loop thread */
	struct plugin_call *free_calls; /* loop thread only */
	unsigned workers, max_workers;
	unsigned idle;                  /* workers lingering for more work */
	unsigned wakes;                 /* idlers signalled for a new call */
	bool stop;                      /* idlers return at once */
	uv_async_t done_async;
	bool async_ready;
};

struct pluginhost {
	struct engine *e;
	struct plugin *plugins;
	pthread_mutex_t lock;      /* actions and the schedule list */
	struct action *sched;
	uv_async_t async;
	uv_timer_t scan_timer;
	struct hmap *seen;         /* files tried in the drop-in dir */
	struct hmap *files;        /* plugin name -> file it was loaded from */
	bool force;                /* load even when the config disables it */
	bool closing;
	unsigned closed; /* handles closed (free at 2) */
};

struct plugin_call {
	struct plugin *p;
	struct delivery *d;
	int rc;
	char *error;
	struct plugin_call *next;
};

struct plugin_worker {
	uv_work_t work;
	struct plugin *p;
};

static void host_log(struct ophook_ctx *ctx, enum ophook_log_level level,
		     const char *fmt, ...)
{
	va_list ap;
	char who[64];

	snprintf(who, sizeof(who), "plugin %s", ctx->p->name);
	va_start(ap, fmt);
	log_msgv((enum log_level)level, who, fmt, ap);
	va_end(ap);
}

static const char *host_setting(struct ophook_ctx *ctx, const char *key)
{
	json_t *v = json_object_get(ctx->settings, key);
	char *text;

	if (v == NULL || json_is_null(v))
		return NULL;
	if (json_is_string(v))
		return json_string_value(v);
	pthread_mutex_lock(&ctx->ph->lock);
	text = hmap_get(ctx->setting_text, key);
	if (text == NULL) {
		text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text != NULL)
			hmap_put(ctx->setting_text, key, text);
	}
	pthread_mutex_unlock(&ctx->ph->lock);
	return text;
}

static int host_settings_declare(struct ophook_ctx *ctx,
				 const struct ophook_setting_decl *decls,
				 size_t n, const char **error_r)
{
	const struct config_plugin *cp = ctx->cp;
	struct plugsettings_src src = {
		.plugin = ctx->p->name,
		.file = cp != NULL ? cp->file : NULL,
		.pos = cp != NULL ? cp->settings_pos : NULL,
		.line = cp != NULL ? cp->line : 0,
		.column = cp != NULL ? cp->column : 0,
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
	return ctx->check_only ? OPHOOK_SETTINGS_CHECKED : 0;
}

static const char *host_setting_str(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_str(ctx->ps, key);
}

static int64_t host_setting_int(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_int(ctx->ps, key);
}

static bool host_setting_bool(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_bool(ctx->ps, key);
}

static const char *const *host_setting_list(struct ophook_ctx *ctx,
					    const char *key)
{
	return plugsettings_list(ctx->ps, key);
}

static bool host_setting_is_set(struct ophook_ctx *ctx, const char *key)
{
	return plugsettings_is_set(ctx->ps, key);
}

static int host_emit(struct ophook_ctx *ctx, const char *type,
		     const char *subject, const char *fields_json,
		     const char **error_r)
{
	json_t *payload = NULL;
	json_error_t jerr;

	if (fields_json != NULL) {
		payload = json_loads(fields_json, 0, &jerr);
		if (payload == NULL || !json_is_object(payload)) {
			json_decref(payload);
			*error_r = "fields_json is not a JSON object";
			return -EINVAL;
		}
	} else {
		payload = json_object();
	}
	json_object_set_new(payload, "plugin", json_string(ctx->p->name));
	return engine_submit(ctx->ph->e, type, subject, "plugin", payload,
			     NULL, NULL, error_r);
}

static void action_run_work(uv_work_t *w)
{
	struct action *a = w->data;

	a->fn(a->ctx, a->data);
}

static void action_timer_cb(uv_timer_t *t);

static void action_after_work(uv_work_t *w, int status)
{
	struct action *a = w->data;
	struct pluginhost *ph = a->ctx->ph;
	bool again;

	(void)status;
	pthread_mutex_lock(&ph->lock);
	a->ctx->p->running_actions--;
	again = a->again && !ph->closing && !a->ctx->p->unloading;
	a->again = false;
	a->state = again ? ACTION_SCHEDULED : ACTION_IDLE;
	pthread_mutex_unlock(&ph->lock);
	if (again)
		uv_timer_start(&a->timer, action_timer_cb, a->delay_ms, 0);
}

static void action_timer_cb(uv_timer_t *t)
{
	struct action *a = t->data;
	struct pluginhost *ph = a->ctx->ph;

	pthread_mutex_lock(&ph->lock);
	if (ph->closing || a->ctx->p->unloading) {
		a->state = ACTION_IDLE;
		pthread_mutex_unlock(&ph->lock);
		return;
	}
	a->state = ACTION_RUNNING;
	a->ctx->p->running_actions++;
	pthread_mutex_unlock(&ph->lock);
	a->work.data = a;
	uv_queue_work(uv_handle_get_loop((uv_handle_t *)t), &a->work,
		      action_run_work, action_after_work);
}

/* Loop thread: start timers for actions requested from any thread. */
static void pluginhost_async_cb(uv_async_t *as)
{
	struct pluginhost *ph = as->data;
	struct action *list;

	pthread_mutex_lock(&ph->lock);
	list = ph->sched;
	ph->sched = NULL;
	for (struct action *a = list; a != NULL; a = a->sched_next)
		a->to_schedule = false;
	pthread_mutex_unlock(&ph->lock);
	for (struct action *a = list, *next; a != NULL; a = next) {
		next = a->sched_next;
		if (!a->timer_ready) {
			uv_timer_init(uv_handle_get_loop((uv_handle_t *)as),
				      &a->timer);
			a->timer.data = a;
			a->timer_ready = true;
		}
		if (!ph->closing)
			uv_timer_start(&a->timer, action_timer_cb,
				       a->delay_ms, 0);
	}
}

static int host_request_action(struct ophook_ctx *ctx, const char *name,
			       unsigned delay_ms, ophook_action_fn *fn,
			       void *data)
{
	struct pluginhost *ph = ctx->ph;
	struct action *a;
	bool wake = false;

	if (name == NULL || fn == NULL)
		return -EINVAL;
	pthread_mutex_lock(&ph->lock);
	a = hmap_get(ctx->actions, name);
	if (a == NULL) {
		a = xcalloc(1, sizeof(*a));
		a->ctx = ctx;
		a->name = xstrdup(name);
		a->fn = fn;
		a->data = data;
		hmap_put(ctx->actions, name, a);
	}
	a->delay_ms = delay_ms;
	switch (a->state) {
	case ACTION_IDLE:
		a->state = ACTION_SCHEDULED;
		if (!a->to_schedule) {
			a->to_schedule = true;
			a->sched_next = ph->sched;
			ph->sched = a;
			wake = true;
		}
		break;
	case ACTION_SCHEDULED:
		break;
	case ACTION_RUNNING:
		a->again = true;
		break;
	}
	pthread_mutex_unlock(&ph->lock);
	if (wake)
		uv_async_send(&ph->async);
	return 0;
}

static const char *host_state_dir(struct ophook_ctx *ctx)
{
	return ctx->state_dir;
}

static const char *host_root(struct ophook_ctx *ctx)
{
	return engine_config(ctx->ph->e)->root;
}

static void host_own_write(struct ophook_ctx *ctx, const char *path)
{
	engine_own_write(ctx->ph->e, path);
}

static const char *host_node(struct ophook_ctx *ctx)
{
	return engine_config(ctx->ph->e)->node;
}

static const struct ophook_host host_table = {
	.size = sizeof(struct ophook_host),
	.abi = OPHOOK_ABI_VERSION,
	.version = OPHOOK_VERSION,
	.log = host_log,
	.setting = host_setting,
	.emit = host_emit,
	.request_action = host_request_action,
	.state_dir = host_state_dir,
	.root = host_root,
	.event_get = event_get,
	.own_write = host_own_write,
	.node = host_node,
	.settings_declare = host_settings_declare,
	.setting_str = host_setting_str,
	.setting_int = host_setting_int,
	.setting_bool = host_setting_bool,
	.setting_list = host_setting_list,
	.setting_is_set = host_setting_is_set,
};

/* ---- handler ---- */

/* How long a worker whose queue ran dry waits for more before it gives
 * its pool thread back: deliveries come in bursts (one journal flush), and
 * a new uv_queue_work per burst costs a hand-off to the pool and back. */
#define PLUGIN_LINGER_NS 1000000L

/* Worker thread, qlock held: wait up to PLUGIN_LINGER_NS for a call.
 * Returns the queue head (NULL when none came or the plugin stops). */
static struct plugin_call *plugin_worker_linger(struct plugin *p)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += PLUGIN_LINGER_NS;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	p->idle++;
	while (p->q_head == NULL && !p->stop) {
		if (pthread_cond_timedwait(&p->qcond, &p->qlock, &until) ==
		    ETIMEDOUT)
			break;
	}
	p->idle--;
	if (p->q_head != NULL && !p->stop && p->wakes > 0)
		p->wakes--;
	if (p->wakes > p->idle)
		p->wakes = p->idle;
	if (p->stop)
		pthread_cond_broadcast(&p->idle_cond);
	return p->stop ? NULL : p->q_head;
}

/* Worker thread: run queued calls until the queue stays empty. */
static void plugin_worker_run(uv_work_t *w)
{
	struct plugin_worker *pw = w->data;
	struct plugin *p = pw->p;

	for (;;) {
		struct plugin_call *c;
		const char *err = NULL;
		bool wake;

		pthread_mutex_lock(&p->qlock);
		c = p->q_head;
		if (c == NULL)
			c = plugin_worker_linger(p);
		if (c == NULL) {
			p->workers--;
			pthread_mutex_unlock(&p->qlock);
			return;
		}
		p->q_head = c->next;
		if (p->q_head == NULL)
			p->q_tail = NULL;
		pthread_mutex_unlock(&p->qlock);

		delivery_started(c->d);
		c->rc = p->api->on_event(p->data, &c->d->view.pub, &err);
		if (c->rc != 0 && err != NULL)
			c->error = strdup(err);

		pthread_mutex_lock(&p->qlock);
		/* the loop thread takes the whole list: wake it only for the
		 * first result of a batch */
		wake = p->done_head == NULL;
		c->next = p->done_head;
		p->done_head = c;
		pthread_mutex_unlock(&p->qlock);
		if (wake)
			uv_async_send(&p->done_async);
	}
}

static void plugin_worker_after(uv_work_t *w, int status)
{
	(void)status;
	free(w->data);
}

/* Loop thread: report finished calls, oldest first. */
static void plugin_done_cb(uv_async_t *as)
{
	struct plugin *p = as->data;
	struct plugin_call *list, *rev = NULL;

	pthread_mutex_lock(&p->qlock);
	list = p->done_head;
	p->done_head = NULL;
	pthread_mutex_unlock(&p->qlock);
	while (list != NULL) {
		struct plugin_call *next = list->next;

		list->next = rev;
		rev = list;
		list = next;
	}
	while (rev != NULL) {
		struct plugin_call *c = rev;

		rev = c->next;
		dispatch_done(c->d, c->rc, c->error);
		free(c->error);
		c->next = p->free_calls;
		p->free_calls = c;
	}
}

static void plugin_deliver(struct handler *h, struct delivery *d)
{
	struct plugin *p = h->data;
	struct plugin_call *c = p->free_calls;
	struct plugin_worker *pw = NULL;

	if (c != NULL)
		p->free_calls = c->next;
	else
		c = xmalloc(sizeof(*c));
	*c = (struct plugin_call){ .p = p, .d = d };
	pthread_mutex_lock(&p->qlock);
	if (p->q_tail != NULL)
		p->q_tail->next = c;
	else
		p->q_head = c;
	p->q_tail = c;
	/* one idler per new call: a parallel plugin's calls still spread
	 * over workers (a hung call holds only its own) */
	if (p->idle > p->wakes) {
		p->wakes++;
		pthread_cond_signal(&p->qcond);
	} else if (p->workers < p->max_workers) {
		p->workers++;
		pw = xcalloc(1, sizeof(*pw));
	}
	pthread_mutex_unlock(&p->qlock);
	if (pw != NULL) {
		pw->p = p;
		pw->work.data = pw;
		uv_queue_work(engine_loop(p->ph->e), &pw->work,
			      plugin_worker_run, plugin_worker_after);
	}
}

static void plugin_free_ctx(struct plugin *p)
{
	hmap_free(&p->ctx.setting_text, free);
	json_decref(p->ctx.settings);
	free(p->ctx.state_dir);
	plugsettings_free(&p->ctx.ps);
	free(p->ctx.settings_error);
}

static void action_closed(uv_handle_t *h)
{
	struct action *a = h->data;

	free(a->name);
	free(a);
}

static bool action_close(const char *key, void *value, void *ctx)
{
	struct action *a = value;

	(void)key;
	(void)ctx;
	if (a->timer_ready)
		uv_close((uv_handle_t *)&a->timer, action_closed);
	else
		action_closed((uv_handle_t *)&(struct uv_timer_s){ .data = a });
	return true;
}

static void plugin_async_closed(uv_handle_t *h)
{
	struct plugin *p = h->data;

	while (p->free_calls != NULL) {
		struct plugin_call *c = p->free_calls;

		p->free_calls = c->next;
		free(c);
	}
	if (p->async_ready) {
		pthread_cond_destroy(&p->qcond);
		pthread_cond_destroy(&p->idle_cond);
	}
	pthread_mutex_destroy(&p->qlock);
	free(p);
}

/* Loop thread: send lingering workers away and wait until they left (at
 * most PLUGIN_LINGER_NS); a worker inside a call is not waited for. */
static void plugin_workers_stop(struct plugin *p)
{
	pthread_mutex_lock(&p->qlock);
	p->stop = true;
	pthread_cond_broadcast(&p->qcond);
	while (p->idle > 0)
		pthread_cond_wait(&p->idle_cond, &p->qlock);
	pthread_mutex_unlock(&p->qlock);
}

static void plugin_destroy(struct plugin *p)
{
	if (p->api != NULL && p->api->fini != NULL && p->data != NULL)
		p->api->fini(p->data);
	p->data = NULL;
	if (p->ctx.actions != NULL) {
		hmap_each(p->ctx.actions, action_close, NULL);
		hmap_free(&p->ctx.actions, NULL);
	}
	plugin_free_ctx(p);
	/* the .so stays mapped: a timed-out call may still be inside it */
	free(p->name);
	free(p->file);
	p->name = p->file = NULL;
	if (p->async_ready) {
		plugin_workers_stop(p);
		uv_close((uv_handle_t *)&p->done_async, plugin_async_closed);
	}
	else
		plugin_async_closed((uv_handle_t *)&(uv_async_t){ .data = p });
}

static void plugin_handler_free(struct handler *h)
{
	struct plugin *p = h->data;
	struct pluginhost *ph = p->ph;

	for (struct plugin **pp = &ph->plugins; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	plugin_destroy(p);
	h->data = NULL;
}

static const struct handler_ops plugin_handler_ops = {
	.deliver = plugin_deliver,
	.free = plugin_handler_free,
};

/* ---- loading ---- */

int pluginhost_check_file(const char *path, const char **why_r)
{
	struct stat st;

	if (lstat(path, &st) < 0) {
		*why_r = strerror(errno);
		return -errno;
	}
	if (S_ISLNK(st.st_mode)) {
		*why_r = "is a symlink (refused: install the file itself)";
		return -ELOOP;
	}
	if (!S_ISREG(st.st_mode)) {
		*why_r = "is not a regular file";
		return -EINVAL;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		*why_r = "is not owned by root";
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		*why_r = "is writable by group or others";
		return -EPERM;
	}
	return 0;
}

static bool plugin_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > 32)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-'))
			return false;
	}
	return true;
}

static struct plugin *pluginhost_find(struct pluginhost *ph, const char *name)
{
	for (struct plugin *p = ph->plugins; p != NULL; p = p->next) {
		if (!p->unloading && strcmp(p->name, name) == 0)
			return p;
	}
	return NULL;
}

static int plugin_init(struct pluginhost *ph, struct plugin *p,
		       const struct config_plugin *cp, char **error_r)
{
	const struct config *cfg = engine_config(ph->e);
	const char *err = NULL;
	struct handler *h;
	int ret;

	p->ctx.ph = ph;
	p->ctx.p = p;
	p->ctx.settings = cp != NULL ? json_deep_copy(cp->settings)
				     : json_object();
	p->ctx.setting_text = hmap_new();
	p->ctx.actions = hmap_new();
	p->ctx.state_dir = xasprintf("%s/plugins/%s", cfg->state_dir, p->name);
	ret = mkdir_p(p->ctx.state_dir, 0700);
	if (ret < 0) {
		*error_r = xasprintf("plugin %s: %s: %s", p->name,
				     p->ctx.state_dir, strerror(-ret));
		return ret;
	}
	p->ctx.cp = cp;
	ret = p->api->init(&p->ctx, &host_table, &p->data, &err);
	p->ctx.cp = NULL; /* the config may be replaced on reload */
	if (ret < 0) {
		*error_r = xasprintf("plugin %s (%s): init failed: %s",
				     p->name, p->file,
				     err != NULL ? err : strerror(-ret));
		p->data = NULL;
		return ret;
	}
	pthread_mutex_init(&p->qlock, NULL);
	pthread_cond_init(&p->idle_cond, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&p->qcond, &ca);
		pthread_condattr_destroy(&ca);
	}
	uv_async_init(engine_loop(ph->e), &p->done_async, plugin_done_cb);
	p->done_async.data = p;
	p->async_ready = true;
	/* one worker drains a plugin's queue unless it asks for more: worker
	 * hand-offs cost more than a fast plugin's call (bench/README.md) */
	p->max_workers = (p->api->flags & OPHOOK_PLUGIN_PARALLEL) != 0 &&
				 (p->api->flags & OPHOOK_PLUGIN_SERIAL) == 0
				 ? (cfg->dispatch.threads > 2
					    ? cfg->dispatch.threads / 2
					    : 1)
				 : 1;
	h = handler_new(&plugin_handler_ops, "");
	free(h->name);
	h->name = xasprintf("plugin:%s", p->name);
	h->data = p;
	h->serial = (p->api->flags & OPHOOK_PLUGIN_SERIAL) != 0;
	if (p->api->subscriptions != NULL) {
		for (const char *const *s = p->api->subscriptions; *s != NULL;
		     s++)
			handler_add_pattern(h, *s);
		if (h->n_patterns == 0)
			handler_add_pattern(h, "-none-");
	}
	p->next = ph->plugins;
	ph->plugins = p;
	ret = engine_handler_add(ph->e, h, &err);
	if (ret < 0) {
		ph->plugins = p->next;
		*error_r = xasprintf("plugin %s: %s", p->name, err);
		h->data = NULL;
		handler_free_unowned(&h);
		return ret;
	}
	return 0;
}

int pluginhost_load(struct pluginhost *ph, const char *path, char **error_r)
{
	const struct config *cfg = engine_config(ph->e);
	const struct config_plugin *cp;
	const struct ophook_plugin *api;
	struct plugin *p, *other;
	const char *why;
	void *dl;
	int ret;

	if (pluginhost_check_file(path, &why) < 0) {
		*error_r = xasprintf("%s: %s", path, why);
		return -EPERM;
	}
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		*error_r = xasprintf("%s: %s", path, dlerror());
		return -ENOEXEC;
	}
	api = dlsym(dl, "ophook_plugin");
	if (api == NULL) {
		*error_r = xasprintf("%s: no ophook_plugin symbol (not an "
				     "ophook plugin?)", path);
		dlclose(dl);
		return -ENOEXEC;
	}
	if (api->abi != OPHOOK_ABI_VERSION) {
		*error_r = xasprintf("%s: plugin ABI version %u, but ophookd "
				     "%s speaks ABI version %u: rebuild the "
				     "plugin against this ophook",
				     path, api->abi, OPHOOK_VERSION,
				     OPHOOK_ABI_VERSION);
		dlclose(dl);
		return -EPROTO;
	}
	if (api->name == NULL || !plugin_name_valid(api->name)) {
		*error_r = xasprintf("%s: invalid plugin name (want "
				     "[a-z0-9_-]{1,32})", path);
		dlclose(dl);
		return -EINVAL;
	}
	if (api->init == NULL || api->on_event == NULL) {
		*error_r = xasprintf("%s: plugin %s has no init or on_event",
				     path, api->name);
		dlclose(dl);
		return -EINVAL;
	}
	other = pluginhost_find(ph, api->name);
	if (other != NULL) {
		*error_r = xasprintf("%s: a plugin named '%s' is already "
				     "loaded from %s", path, api->name,
				     other->file);
		dlclose(dl);
		return -EEXIST;
	}
	cp = config_plugin_find(cfg, api->name);
	free(hmap_put(ph->files, api->name, xstrdup(path)));
	if (cp != NULL && !cp->enabled && !ph->force) {
		dlclose(dl);
		return -ECANCELED;
	}
	p = xcalloc(1, sizeof(*p));
	p->ph = ph;
	p->name = xstrdup(api->name);
	p->file = xstrdup(path);
	p->dl = dl;
	p->api = api;
	ret = plugin_init(ph, p, cp, error_r);
	if (ret < 0) {
		if (p->ctx.actions != NULL)
			hmap_free(&p->ctx.actions, NULL);
		plugin_free_ctx(p);
		free(p->name);
		free(p->file);
		if (p->async_ready)
			uv_close((uv_handle_t *)&p->done_async,
				 plugin_async_closed);
		else
			free(p);
		dlclose(dl);
		return ret;
	}
	log_info("plugin %s loaded from %s", api->name, path);
	return 0;
}

static int so_filter(const struct dirent *de)
{
	size_t len = strlen(de->d_name);

	return len > 3 && de->d_name[0] != '.' &&
	       strcmp(de->d_name + len - 3, ".so") == 0;
}

static unsigned pluginhost_scan_dir(struct pluginhost *ph, const char *dir,
				    bool quiet_seen)
{
	struct dirent **list;
	unsigned loaded = 0;
	int n = scandir(dir, &list, so_filter, alphasort);

	if (n < 0) {
		if (!quiet_seen)
			log_warn("plugin dir %s: %s", dir, strerror(errno));
		return 0;
	}
	for (int i = 0; i < n; i++) {
		char *path = xasprintf("%s/%s", dir, list[i]->d_name);
		char *err = NULL;
		int ret;

		if (hmap_get(ph->seen, path) != NULL) {
			free(path);
			free(list[i]);
			continue;
		}
		hmap_put(ph->seen, path, (void *)1);
		ret = pluginhost_load(ph, path, &err);
		if (ret == 0)
			loaded++;
		else if (ret == -ECANCELED)
			log_info("plugin %s: disabled in the config", path);
		else
			log_error("plugin %s", err);
		free(err);
		free(path);
		free(list[i]);
	}
	free(list);
	return loaded;
}

void pluginhost_load_all(struct pluginhost *ph, unsigned *loaded_r)
{
	const struct config *cfg = engine_config(ph->e);
	unsigned loaded = 0;

	for (size_t i = 0; i < cfg->n_plugin_dirs; i++)
		loaded += pluginhost_scan_dir(ph, cfg->plugin_dirs[i], false);
	*loaded_r = loaded;
}

/* Check the settings of one plugin file in check-only mode.  0 (checked,
 * or nothing to check), or -errno with *error_r (malloc'd). */
static int pluginhost_check_one(const struct config *cfg, const char *path,
				char **error_r)
{
	static struct pluginhost no_host = {
		.lock = PTHREAD_MUTEX_INITIALIZER,
	};
	const struct config_plugin *cp;
	const struct ophook_plugin *api;
	struct plugin p = { 0 };
	const char *why = NULL;
	void *dl, *data = NULL;
	int ret = 0;

	if (pluginhost_check_file(path, &why) < 0) {
		log_warn("plugin %s: %s (not checked)", path, why);
		return 0;
	}
	dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (dl == NULL) {
		log_warn("plugin %s: %s (not checked)", path, dlerror());
		return 0;
	}
	api = dlsym(dl, "ophook_plugin");
	if (api == NULL || api->abi != OPHOOK_ABI_VERSION ||
	    api->name == NULL || !plugin_name_valid(api->name) ||
	    api->init == NULL) {
		log_warn("plugin %s: not a loadable ophook plugin (not "
			 "checked)", path);
		goto out;
	}
	cp = config_plugin_find(cfg, api->name);
	if (cp != NULL && !cp->enabled)
		goto out;
	if ((api->flags & OPHOOK_PLUGIN_DECLARES_SETTINGS) == 0) {
		if (cp != NULL && json_object_size(cp->settings) > 0)
			log_warn("plugins.%s.settings: not checked (the "
				 "plugin does not declare its settings)",
				 api->name);
		goto out;
	}
	/* a check-only load: settings_declare answers
	 * OPHOOK_SETTINGS_CHECKED and init returns at once */
	p.name = (char *)api->name;
	p.file = (char *)path;
	p.api = api;
	p.ctx.ph = &no_host;
	p.ctx.p = &p;
	p.ctx.cp = cp;
	p.ctx.check_only = true;
	p.ctx.settings = cp != NULL ? json_deep_copy(cp->settings)
				    : json_object();
	ret = api->init(&p.ctx, &host_table, &data, &why);
	if (ret == OPHOOK_SETTINGS_CHECKED) {
		ret = 0;
	} else if (ret < 0) {
		*error_r = p.ctx.settings_error != NULL
				   ? xstrdup(p.ctx.settings_error)
				   : xasprintf("plugin %s (%s): %s", api->name,
					       path,
					       why != NULL ? why
							   : strerror(-ret));
	} else {
		/* it went on with init: undo, and say so */
		log_warn("plugin %s (%s): init did not stop at "
			 "OPHOOK_SETTINGS_CHECKED", api->name, path);
		if (api->fini != NULL)
			api->fini(data);
		ret = 0;
	}
	json_decref(p.ctx.settings);
	plugsettings_free(&p.ctx.ps);
	free(p.ctx.settings_error);
out:
	dlclose(dl);
	return ret;
}

int pluginhost_check_config(const struct config *cfg, char **error_r)
{
	int ret = 0;

	*error_r = NULL;
	for (size_t i = 0; i < cfg->n_plugin_dirs && ret == 0; i++) {
		struct dirent **list;
		int n = scandir(cfg->plugin_dirs[i], &list, so_filter,
				alphasort);

		for (int j = 0; j < n; j++) {
			char *path = xasprintf("%s/%s", cfg->plugin_dirs[i],
					       list[j]->d_name);

			if (ret == 0)
				ret = pluginhost_check_one(cfg, path, error_r);
			free(path);
			free(list[j]);
		}
		if (n >= 0)
			free(list);
	}
	return ret;
}

static void pluginhost_scan_cb(uv_timer_t *t)
{
	struct pluginhost *ph = t->data;
	const struct config *cfg = engine_config(ph->e);

	if (cfg->n_plugin_dirs > 0)
		pluginhost_scan_dir(ph, cfg->plugin_dirs[cfg->n_plugin_dirs - 1],
				    true);
}

void pluginhost_watch(struct pluginhost *ph, unsigned interval_ms)
{
	uv_timer_start(&ph->scan_timer, pluginhost_scan_cb, interval_ms,
		       interval_ms);
	uv_unref((uv_handle_t *)&ph->scan_timer);
}

struct pluginhost *pluginhost_new(struct engine *e)
{
	struct pluginhost *ph = xcalloc(1, sizeof(*ph));

	ph->e = e;
	pthread_mutex_init(&ph->lock, NULL);
	ph->seen = hmap_new();
	ph->files = hmap_new();
	uv_async_init(engine_loop(e), &ph->async, pluginhost_async_cb);
	ph->async.data = ph;
	uv_unref((uv_handle_t *)&ph->async);
	uv_timer_init(engine_loop(e), &ph->scan_timer);
	ph->scan_timer.data = ph;
	return ph;
}

int pluginhost_unload(struct pluginhost *ph, const char *name)
{
	struct plugin *p = pluginhost_find(ph, name);
	char *hname;

	if (p == NULL)
		return -ENOENT;
	p->unloading = true;
	hname = xasprintf("plugin:%s", name);
	engine_handler_remove(ph->e, hname);
	free(hname);
	return 0;
}

int pluginhost_enable(struct pluginhost *ph, const char *name, char **error_r)
{
	const char *path = hmap_get(ph->files, name);
	int ret;

	if (pluginhost_find(ph, name) != NULL) {
		*error_r = xasprintf("plugin %s is already loaded", name);
		return -EALREADY;
	}
	if (path == NULL) {
		*error_r = xasprintf("no plugin named %s was ever loaded "
				     "(drop its .so into a plugin dir)", name);
		return -ENOENT;
	}
	{
		/* pluginhost_load replaces the map's copy: keep our own */
		char *copy = xstrdup(path);

		ph->force = true;
		ret = pluginhost_load(ph, copy, error_r);
		ph->force = false;
		free(copy);
	}
	return ret;
}

int pluginhost_reload(struct pluginhost *ph, const char *name, char **error_r)
{
	if (pluginhost_unload(ph, name) < 0) {
		*error_r = xasprintf("plugin %s is not loaded", name);
		return -ENOENT;
	}
	return pluginhost_enable(ph, name, error_r);
}

json_t *pluginhost_list(struct pluginhost *ph)
{
	json_t *arr = json_array();

	for (struct plugin *p = ph->plugins; p != NULL; p = p->next) {
		if (p->unloading)
			continue;
		json_array_append_new(
			arr, json_pack("{s:s, s:s, s:s, s:I}", "name", p->name,
				       "file", p->file, "description",
				       p->api->description != NULL
					       ? p->api->description
					       : "",
				       "abi", (json_int_t)p->api->abi));
	}
	return arr;
}

static void pluginhost_closed(uv_handle_t *h)
{
	struct pluginhost *ph = h->data;

	if (++ph->closed == 2) {
		pthread_mutex_destroy(&ph->lock);
		free(ph);
	}
}

bool pluginhost_busy(struct pluginhost *ph)
{
	for (struct plugin *p = ph->plugins; p != NULL; p = p->next) {
		if (p->running_actions > 0)
			return true;
	}
	return false;
}

void pluginhost_free(struct pluginhost **php)
{
	struct pluginhost *ph = *php;

	if (ph == NULL)
		return;
	*php = NULL;
	ph->closing = true;
	/* the dispatcher is idle by now: removal releases at once */
	for (struct plugin *p = ph->plugins, *next; p != NULL; p = next) {
		char *hname = xasprintf("plugin:%s", p->name);

		next = p->next;
		p->unloading = true;
		engine_handler_remove(ph->e, hname);
		free(hname);
	}
	while (ph->plugins != NULL) {
		struct plugin *p = ph->plugins;

		ph->plugins = p->next;
		plugin_destroy(p);
	}
	hmap_free(&ph->seen, NULL);
	hmap_free(&ph->files, free);
	uv_close((uv_handle_t *)&ph->async, pluginhost_closed);
	uv_close((uv_handle_t *)&ph->scan_timer, pluginhost_closed);
}

/* ---- control commands: plugins list|enable|disable|reload ---- */

static void pluginhost_cmd_list(struct control_reply *reply, json_t *args,
				    json_t *req, void *ctx)
{
	struct pluginhost *ph = ctx;
	json_t *list = pluginhost_list(ph);
	size_t n = json_array_size(list);
	char *text = xstrdup("NAME            ABI  FILE\n");

	(void)args;
	(void)req;
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(list, i);
		char *t = xasprintf("%s%-15s %-4lld %s\n", text,
				    json_string_value(json_object_get(p, "name")),
				    (long long)json_integer_value(json_object_get(p, "abi")),
				    json_string_value(json_object_get(p, "file")));

		free(text);
		text = t;
	}
	control_reply_ok(&reply, list, text, 0);
	free(text);
}

static void pluginhost_cmd_op(struct control_reply *reply, json_t *args,
				  const char *op, struct pluginhost *ph)
{
	const char *name = json_string_value(json_array_get(args, 0));
	char *err = NULL;
	int ret;

	if (name == NULL || json_array_size(args) != 1) {
		control_reply_error(&reply, 2, "usage: plugins %s NAME", op);
		return;
	}
	if (strcmp(op, "disable") == 0) {
		ret = pluginhost_unload(ph, name);
		if (ret < 0)
			err = xasprintf("plugin %s is not loaded", name);
	} else if (strcmp(op, "enable") == 0) {
		ret = pluginhost_enable(ph, name, &err);
	} else {
		ret = pluginhost_reload(ph, name, &err);
	}
	if (ret < 0) {
		control_reply_error(&reply, ret == -ENOENT ? 1 : 2, "%s",
				    err != NULL ? err : strerror(-ret));
	} else {
		const char *done = strcmp(op, "disable") == 0 ? "disabled"
				   : strcmp(op, "enable") == 0 ? "enabled"
							       : "reloaded";
		char *text = xasprintf("plugin %s: %s", name, done);

		log_info("plugin %s: %s from the control socket", name, done);
		control_reply_ok(&reply, json_pack("{s:s,s:s}", "plugin", name,
						   "done", done),
				 text, 0);
		free(text);
	}
	free(err);
}

static void pluginhost_cmd_enable(struct control_reply *r, json_t *a,
				      json_t *q, void *ctx)
{
	(void)q;
	pluginhost_cmd_op(r, a, "enable", ctx);
}

static void pluginhost_cmd_disable(struct control_reply *r, json_t *a,
				       json_t *q, void *ctx)
{
	(void)q;
	pluginhost_cmd_op(r, a, "disable", ctx);
}

static void pluginhost_cmd_reload(struct control_reply *r, json_t *a,
				      json_t *q, void *ctx)
{
	(void)q;
	pluginhost_cmd_op(r, a, "reload", ctx);
}

const struct control_command pluginhost_commands[] = {
	{"plugins.list", pluginhost_cmd_list},
	{"plugins.enable", pluginhost_cmd_enable},
	{"plugins.disable", pluginhost_cmd_disable},
	{"plugins.reload", pluginhost_cmd_reload},
	{NULL, NULL},
};
