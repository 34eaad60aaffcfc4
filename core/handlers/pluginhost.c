#include "pluginhost.h"
#include "dispatch.h"
#include "engine.h"
#include "hmap.h"
#include "log.h"
#include "pluginproc.h"
#include "plugsettings.h"
#include "util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
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
	json_t *vars;              /* ${NAME} of declared defaults: root,
				      state_dir, paths.* */
};

/* What ${NAME} stands for in a plugin's declared defaults: the config's
 * trees, so that a plugin's default paths follow root and paths. */
static json_t *ph_vars(const struct config *cfg)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "root",
			 cfg->root, "state_dir", cfg->state_dir, "paths.bind",
			 cfg->paths.bind, "paths.bind_cache",
			 cfg->paths.bind_cache, "paths.mail", cfg->paths.mail,
			 "paths.log", cfg->paths.log, "paths.csf",
			 cfg->paths.csf);
}

struct plugin {
	struct pluginhost *ph;
	char *name, *file;
	void *dl;
	const struct ophook_plugin *api;
	void *data;
	struct ophook_ctx ctx;
	unsigned running_actions;
	bool unloading;
	bool destroying;        /* plugin_destroy running */
	struct plugin *next;
	/* the build that runs: the file's identity when it was loaded */
	dev_t dev;
	ino_t ino;
	int64_t mtime_ms;
	/* isolation: process */
	bool isolated;
	struct pluginproc *pp;          /* the runner, NULL between runs */
	struct ophook_plugin proc_api;  /* what the runner said (HELLO) */
	struct pluginproc_hello hello;
	char *init_json;                /* INIT for each (re)start */
	unsigned crash_limit, crash_window_ms;
	int64_t *crash_ms;              /* the last crash_limit crashes */
	unsigned n_crashes;             /* crashes since loaded */
	unsigned calls_inside;          /* inline calls past their timeout */

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
	char *runner;              /* ophook-plugin-runner */
	char *qdir;                /* state_dir/plugins/.quarantine */
	struct hmap *quarantined;  /* name -> malloc'd reason */
	struct hmap *reload_after; /* names to load again once unloaded */
	bool closing;
	atomic_bool stopping; /* the daemon is stopping: host->stopping() */
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
		.vars = ctx->vars,
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

static bool host_stopping(struct ophook_ctx *ctx)
{
	return atomic_load(&ctx->ph->stopping);
}

void pluginhost_stopping(struct pluginhost *ph)
{
	if (ph != NULL)
		atomic_store(&ph->stopping, true);
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
	.stopping = host_stopping,
};

/* ---- an inline plugin's fatal signal ---- */

/* The call this worker thread runs (inline plugins), for the fatal signal
 * handler: it names the plugin and the event, and leaves the quarantine
 * file that keeps the plugin out at the next start. */
static _Thread_local struct plugin_call *volatile ph_tls_call;
static char ph_sig_qdir[1024];

/* Each thread that runs inline plugin code gets an alternate signal
 * stack (SA_ONSTACK), so that ph_fatal_signal runs also when a plugin
 * overflowed its stack (no stack is left for the handler then).  A fixed
 * set of them, in bss: pool threads live as long as the daemon. */
#define PH_ALTSTACKS 64
#define PH_ALTSTACK_SIZE (64 * 1024)
static char ph_altstack_mem[PH_ALTSTACKS][PH_ALTSTACK_SIZE];
static atomic_uint ph_altstack_next;
static _Thread_local bool ph_tls_altstack;

static void ph_altstack_ensure(void)
{
	stack_t old, ss = { 0 };
	unsigned i;

	if (ph_tls_altstack)
		return;
	ph_tls_altstack = true;
	/* one set already (a sanitizer's): keep it */
	if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
		return;
	i = atomic_fetch_add(&ph_altstack_next, 1);
	if (i >= PH_ALTSTACKS)
		return;
	ss.ss_sp = ph_altstack_mem[i];
	ss.ss_size = PH_ALTSTACK_SIZE;
	(void)sigaltstack(&ss, NULL);
}

static size_t ph_sig_cat(char *buf, size_t len, size_t cap, const char *s)
{
	while (*s != '\0' && len + 1 < cap)
		buf[len++] = *s++;
	buf[len] = '\0';
	return len;
}

static size_t ph_sig_num(char *buf, size_t len, size_t cap, long long v)
{
	char tmp[24];
	int i = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v
				     : (unsigned long long)v;

	do {
		tmp[i++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0 && i < 23);
	if (v < 0)
		tmp[i++] = '-';
	while (i > 0 && len + 1 < cap)
		buf[len++] = tmp[--i];
	buf[len] = '\0';
	return len;
}

/* Async-signal-safe: only write(2), open(2), close(2) and stack buffers. */
static void ph_fatal_signal(int sig)
{
	struct plugin_call *c = ph_tls_call;

	if (c != NULL && c->p != NULL && c->p->name != NULL) {
		char why[256], line[512], path[1100];
		size_t n = 0, m = 0, k = 0;
		int fd;

		n = ph_sig_cat(why, n, sizeof(why), pluginproc_signame(sig));
		n = ph_sig_cat(why, n, sizeof(why), " in on_event, event ");
		n = ph_sig_num(why, n, sizeof(why), c->d->view.pub.id);
		n = ph_sig_cat(why, n, sizeof(why), ", attempt ");
		n = ph_sig_num(why, n, sizeof(why), c->d->view.pub.attempt);
		n = ph_sig_cat(why, n, sizeof(why), " (it took ophookd down)");
		m = ph_sig_cat(line, m, sizeof(line), "ophookd: fatal: plugin ");
		m = ph_sig_cat(line, m, sizeof(line), c->p->name);
		m = ph_sig_cat(line, m, sizeof(line), ": ");
		m = ph_sig_cat(line, m, sizeof(line), why);
		m = ph_sig_cat(line, m, sizeof(line),
			       "; it is quarantined at the next start\n");
		(void)!write(2, line, m);
		if (ph_sig_qdir[0] != '\0') {
			k = ph_sig_cat(path, k, sizeof(path), ph_sig_qdir);
			k = ph_sig_cat(path, k, sizeof(path), "/");
			k = ph_sig_cat(path, k, sizeof(path), c->p->name);
			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
				  0600);
			if (fd >= 0) {
				(void)!write(fd, why, n);
				close(fd);
			}
		}
	}
	/* SA_RESETHAND|SA_NODEFER: this dies of sig as it would have */
	raise(sig);
}

static void ph_fatal_install(const char *qdir)
{
	static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
	struct sigaction sa = { 0 };

	if (strlen(qdir) >= sizeof(ph_sig_qdir))
		return;
	memcpy(ph_sig_qdir, qdir, strlen(qdir) + 1);
	sa.sa_handler = ph_fatal_signal;
	sa.sa_flags = (int)(SA_RESETHAND | SA_NODEFER | SA_ONSTACK);
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
}

/* ---- quarantine ---- */

static void ph_quarantine_announce(struct pluginhost *ph, const char *name,
				   const char *reason, unsigned crashes);

/* Why name is quarantined (from memory or the file an inline crash left),
 * or NULL. */
static const char *ph_quarantine_reason(struct pluginhost *ph,
					const char *name)
{
	char *reason = hmap_get(ph->quarantined, name);
	char *path, buf[512];
	ssize_t n;
	int fd;

	if (reason != NULL)
		return reason;
	path = xasprintf("%s/%s", ph->qdir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	reason = xstrdup(n > 0 ? buf : "quarantined");
	hmap_put(ph->quarantined, name, reason);
	/* left by a crash of an earlier ophookd: say it once now */
	ph_quarantine_announce(ph, name, reason, 1);
	return reason;
}

static void ph_quarantine_clear(struct pluginhost *ph, const char *name)
{
	char *path = xasprintf("%s/%s", ph->qdir, name);

	unlink(path);
	free(path);
	free(hmap_del(ph->quarantined, name));
}

/* Announce a quarantine: log, metric, plugin.quarantined event. */
static void ph_quarantine_announce(struct pluginhost *ph, const char *name,
				   const char *reason, unsigned crashes)
{
	char *subject = xasprintf("plugin:%s", name);
	const char *err = NULL;

	log_error("plugin %s: quarantined (%s): `ophookctl plugins enable "
		  "%s` brings it back", name, reason, name);
	engine_metric_count(ph->e, "plugins_quarantined", 1);
	if (engine_submit(ph->e, "plugin.quarantined", subject, "plugin",
			  json_pack("{s:s, s:s, s:i}", "plugin", name,
				    "reason", reason, "crashes", crashes),
			  NULL, NULL, &err) < 0)
		log_warn("plugin %s: plugin.quarantined: %s", name, err);
	free(subject);
}

static void ph_quarantine(struct pluginhost *ph, struct plugin *p,
			  const char *reason)
{
	char *path = xasprintf("%s/%s", ph->qdir, p->name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd >= 0) {
		(void)!write(fd, reason, strlen(reason));
		close(fd);
	}
	free(path);
	free(hmap_put(ph->quarantined, p->name, xstrdup(reason)));
	ph_quarantine_announce(ph, p->name, reason, p->n_crashes);
	pluginhost_unload(ph, p->name);
}

/* ---- isolated plugins (pluginproc.c runs the runner) ---- */

static void proc_result(void *ctx, struct delivery *d, int rc,
			const char *error)
{
	(void)ctx;
	dispatch_done(d, rc, error);
}

static void proc_log(void *ctx, int level, const char *msg)
{
	struct plugin *p = ctx;
	char who[64];

	snprintf(who, sizeof(who), "plugin %s", p->name);
	log_msg((enum log_level)level, who, "%s", msg);
}

static void proc_emit(void *ctx, const char *type, const char *subject,
		      const char *fields_json)
{
	struct plugin *p = ctx;
	const char *err = NULL;

	if (host_emit(&p->ctx, type, subject, fields_json, &err) < 0)
		log_warn("plugin %s: emit %s: %s", p->name, type, err);
}

static void proc_own_write(void *ctx, const char *path)
{
	struct plugin *p = ctx;

	engine_own_write(p->ph->e, path);
}

static void proc_died(void *ctx, struct pluginproc *pp, bool crashed,
		      const char *what)
{
	struct plugin *p = ctx;
	int64_t now = mono_ms();
	unsigned within = 0;

	if (p->pp == pp)
		p->pp = NULL;
	if (!crashed || p->unloading)
		return;
	log_error("%s", what);
	engine_metric_count(p->ph->e, "plugin_crashes", 1);
	memmove(p->crash_ms + 1, p->crash_ms,
		(p->crash_limit - 1) * sizeof(*p->crash_ms));
	p->crash_ms[0] = now;
	p->n_crashes++;
	for (unsigned i = 0; i < p->crash_limit && i < p->n_crashes; i++)
		if (now - p->crash_ms[i] <= (int64_t)p->crash_window_ms)
			within++;
	if (within >= p->crash_limit) {
		char *reason = xasprintf("%u crashes within %u s, the last: %s",
					 within, p->crash_window_ms / 1000,
					 what);

		ph_quarantine(p->ph, p, reason);
		free(reason);
	}
}

static void proc_deliver(struct plugin *p, struct delivery *d);

static void proc_requeue(void *ctx, struct delivery *d)
{
	struct plugin *p = ctx;

	if (p->unloading)
		dispatch_done(d, OPHOOK_RETRY, "the plugin was stopped");
	else
		proc_deliver(p, d);
}

static const struct pluginproc_cbs proc_cbs = {
	.requeue = proc_requeue,
	.result = proc_result,
	.log = proc_log,
	.emit = proc_emit,
	.own_write = proc_own_write,
	.died = proc_died,
};

/* Start the plugin's runner (again): HELLO, INIT, init().  A runner
 * already up (the one pluginhost_load asked for its HELLO) is only sent
 * INIT.  0 or -errno with *error_r (malloc'd). */
static int proc_start(struct plugin *p, char **error_r)
{
	struct pluginproc_hello hello = { 0 };
	unsigned to = engine_config(p->ph->e)->dispatch.timeout_ms;
	int ret;

	if (p->pp == NULL) {
		ret = pluginproc_spawn(engine_loop(p->ph->e), p->ph->runner,
				       p->file, to, &p->pp, &hello, error_r);
		if (ret < 0)
			return ret;
		if (strcmp(hello.name, p->name) != 0) {
			*error_r = xasprintf("%s: now says it is plugin %s, "
					     "not %s", p->file, hello.name,
					     p->name);
			pluginproc_hello_clear(&hello);
			pluginproc_kill(&p->pp);
			return -EEXIST;
		}
		pluginproc_hello_clear(&hello);
	}
	ret = pluginproc_init(p->pp, p->init_json, to, &proc_cbs, p, error_r);
	if (ret < 0)
		p->pp = NULL;
	else
		log_info("plugin %s: runner started (pid %d)", p->name,
			 (int)pluginproc_pid(p->pp));
	return ret;
}

static void proc_deliver(struct plugin *p, struct delivery *d)
{
	char *err = NULL;

	if (p->pp == NULL && proc_start(p, &err) < 0) {
		dispatch_done(d, -EIO, err);
		free(err);
		return;
	}
	pluginproc_deliver(p->pp, d);
}

static void plugin_cancel(struct handler *h, struct delivery *d)
{
	struct plugin *p = h->data;

	if (p->isolated) {
		if (p->pp != NULL)
			pluginproc_cancel(p->pp, d);
	} else {
		/* inline: the call goes on in its worker; keep the .so */
		p->calls_inside++;
	}
}

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
		ph_altstack_ensure();
		ph_tls_call = c;
		c->rc = p->api->on_event(p->data, &c->d->view.pub, &err);
		ph_tls_call = NULL;
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

	if (p->isolated) {
		proc_deliver(p, d);
		return;
	}
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
	json_decref(p->ctx.vars);
	p->ctx.vars = NULL;
	free(p->ctx.state_dir);
	plugsettings_free(&p->ctx.ps);
	free(p->ctx.settings_error);
	pluginproc_hello_clear(&p->hello);
	free(p->init_json);
	free(p->crash_ms);
	p->init_json = NULL;
	p->crash_ms = NULL;
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
	struct pluginhost *ph = p->ph;
	char *again = NULL;

	/* stopping a runner fails its calls in flight, which may release the
	 * handler, whose free comes back here: the outer call finishes */
	if (p->destroying)
		return;
	p->destroying = true;
	if (p->pp != NULL)
		pluginproc_stop(&p->pp);
	if (!p->isolated && p->api != NULL && p->api->fini != NULL &&
	    p->data != NULL)
		p->api->fini(p->data);
	p->data = NULL;
	/* the old code goes once its calls are over, so that a reload maps
	 * the new file; a call stuck past its timeout keeps it mapped */
	if (p->dl != NULL && p->calls_inside == 0) {
		dlclose(p->dl);
		p->dl = NULL;
	}
	if (p->name != NULL && !ph->closing &&
	    hmap_del(ph->reload_after, p->name) != NULL)
		again = xstrdup(p->name);
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
	if (again != NULL) {
		char *err = NULL;

		if (pluginhost_enable(ph, again, &err) < 0) {
			log_error("plugin %s: reload: %s", again, err);
			free(err);
		} else {
			log_info("plugin %s: reloaded", again);
		}
		free(again);
	}
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
	.cancel = plugin_cancel,
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

/* True when path is in the admin's drop-in folder (the last of two or
 * more plugin_dirs). */
static bool ph_cfg_dropin(const struct config *cfg, const char *path)
{
	const char *dir;
	size_t len;

	if (cfg->n_plugin_dirs < 2)
		return false;
	dir = cfg->plugin_dirs[cfg->n_plugin_dirs - 1];
	len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	return strncmp(path, dir, len) == 0 && path[len] == '/' &&
	       strchr(path + len + 1, '/') == NULL;
}

static bool ph_dropin(struct pluginhost *ph, const char *path)
{
	return ph_cfg_dropin(engine_config(ph->e), path);
}

/* Plugins are opt-in: one from a system plugin folder loads only when its
 * entry says `enabled: true`; one dropped into the admin's drop-in folder
 * loads unless its entry says `enabled: false` (dropping it there is the
 * admin's choice). */
static bool ph_cfg_enabled(const struct config *cfg, const char *path,
			   const struct config_plugin *cp)
{
	if (ph_cfg_dropin(cfg, path))
		return cp == NULL || cp->enabled;
	return cp != NULL && cp->enabled_set && cp->enabled;
}

/* Checks before a plugin named name from path is set up: not loaded
 * twice, enabled, not quarantined.  *cp_r: its config entry. */
static int ph_load_checks(struct pluginhost *ph, const char *path,
			  const char *name, const struct config_plugin **cp_r,
			  char **error_r)
{
	const struct config_plugin *cp;
	struct plugin *other = pluginhost_find(ph, name);
	const char *q;

	if (other != NULL) {
		*error_r = xasprintf("%s: a plugin named '%s' is already "
				     "loaded from %s", path, name,
				     other->file);
		return -EEXIST;
	}
	cp = config_plugin_find(engine_config(ph->e), name);
	*cp_r = cp;
	free(hmap_put(ph->files, name, xstrdup(path)));
	if (!ph->force && !ph_cfg_enabled(engine_config(ph->e), path, cp)) {
		*error_r = xasprintf("%s: plugin %s: %s", path, name,
				     cp != NULL && cp->enabled_set
					     ? "disabled in the config"
					     : "not enabled (a plugin of the "
					       "system plugin folder loads "
					       "only when plugins.NAME says "
					       "`enabled: true`)");
		return -ECANCELED;
	}
	q = ph->force ? NULL : ph_quarantine_reason(ph, name);
	if (q != NULL) {
		*error_r = xasprintf("%s: plugin %s is quarantined (%s): "
				     "`ophookctl plugins enable %s` brings "
				     "it back", path, name, q, name);
		return -EPERM;
	}
	return 0;
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
	p->ctx.vars = ph_vars(cfg);
	p->ctx.state_dir = xasprintf("%s/plugins/%s", cfg->state_dir, p->name);
	ret = mkdir_p(p->ctx.state_dir, 0700);
	if (ret < 0) {
		*error_r = xasprintf("plugin %s: %s: %s", p->name,
				     p->ctx.state_dir, strerror(-ret));
		return ret;
	}
	p->crash_limit = cp != NULL ? cp->crash_limit : CONFIG_CRASH_LIMIT_DEF;
	p->crash_window_ms = cp != NULL ? cp->crash_window_ms
					: CONFIG_CRASH_WINDOW_DEF_MS;
	p->crash_ms = xcalloc(p->crash_limit, sizeof(*p->crash_ms));
	p->ctx.cp = cp;
	if (p->isolated) {
		json_t *init = json_pack(
			"{s:s, s:s, s:s, s:s, s:O, s:O, s:s?, s:i, s:i, s:O}",
			"name", p->name, "state_dir", p->ctx.state_dir, "root",
			cfg->root, "node", cfg->node, "settings",
			p->ctx.settings, "settings_pos",
			cp != NULL ? cp->settings_pos : json_object(), "file",
			cp != NULL ? cp->file : NULL, "line",
			cp != NULL ? cp->line : 0, "column",
			cp != NULL ? cp->column : 0, "vars", p->ctx.vars);
		char *perr = NULL;

		p->init_json = json_dumps(init, JSON_COMPACT);
		json_decref(init);
		p->ctx.cp = NULL;
		ret = proc_start(p, &perr);
		if (ret < 0) {
			*error_r = perr;
			return ret;
		}
		goto handler;
	}
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
handler:
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
	h->out_of_process = p->isolated;
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

/* An isolated plugin is described by what its runner said (p->hello). */
static void plugin_use_hello(struct plugin *p)
{
	p->isolated = true;
	p->proc_api = (struct ophook_plugin){
		.abi = p->hello.abi,
		.name = p->hello.name,
		.description = p->hello.description,
		.flags = p->hello.flags,
		.subscriptions = (const char *const *)p->hello.subscriptions,
	};
	p->api = &p->proc_api;
}

int pluginhost_load(struct pluginhost *ph, const char *path, char **error_r)
{
	const struct config *cfg = engine_config(ph->e);
	const struct config_plugin *cp;
	const struct ophook_plugin *api;
	struct plugin *p;
	const char *why;
	void *dl = NULL;
	int ret;

	struct pluginproc *probe = NULL;
	struct pluginproc_hello hello = { 0 };
	struct stat st;
	bool isolated = false;

	if (pluginhost_check_file(path, &why) < 0) {
		*error_r = xasprintf("%s: %s", path, why);
		return -EPERM;
	}
	if (stat(path, &st) < 0) {
		*error_r = xasprintf("%s: %s", path, strerror(errno));
		return -errno;
	}
	if (ph_dropin(ph, path)) {
		/* a drop-in plugin: no code of it runs in ophookd unless its
		 * config says inline */
		ret = pluginproc_spawn(engine_loop(ph->e), ph->runner, path,
				       cfg->dispatch.timeout_ms, &probe,
				       &hello, error_r);
		if (ret < 0)
			return ret;
		cp = config_plugin_find(cfg, hello.name);
		isolated = cp == NULL ||
			   cp->isolation != CONFIG_ISOLATION_INLINE;
		if (!isolated)
			pluginproc_kill(&probe);
	}
	if (isolated) {
		ret = ph_load_checks(ph, path, hello.name, &cp, error_r);
		if (ret < 0) {
			pluginproc_kill(&probe);
			pluginproc_hello_clear(&hello);
			return ret;
		}
		p = xcalloc(1, sizeof(*p));
		p->hello = hello;
		p->pp = probe; /* the runner that said HELLO gets the INIT */
		plugin_use_hello(p);
		goto load;
	}
	pluginproc_hello_clear(&hello);
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
	ret = ph_load_checks(ph, path, api->name, &cp, error_r);
	if (ret < 0) {
		dlclose(dl);
		return ret;
	}
	p = xcalloc(1, sizeof(*p));
	if (cp != NULL && cp->isolation == CONFIG_ISOLATION_PROCESS) {
		/* a shipped plugin its config isolates: its constructors ran
		 * here, nothing else will */
		dlclose(dl);
		dl = NULL;
		ret = pluginproc_spawn(engine_loop(ph->e), ph->runner, path,
				       cfg->dispatch.timeout_ms, &probe,
				       &p->hello, error_r);
		if (ret < 0) {
			free(p);
			return ret;
		}
		p->pp = probe; /* the runner that said HELLO gets the INIT */
		plugin_use_hello(p);
		api = p->api;
	}
	p->dl = dl;
	p->api = api;
load:
	p->ph = ph;
	p->name = xstrdup(p->api->name);
	p->file = xstrdup(path);
	p->dev = st.st_dev;
	p->ino = st.st_ino;
	p->mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 +
		      st.st_mtim.tv_nsec / 1000000;
	api = p->api;
	ret = plugin_init(ph, p, cp, error_r);
	if (ret < 0) {
		if (p->pp != NULL) /* its HELLO runner, never sent INIT */
			pluginproc_kill(&p->pp);
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
		if (dl != NULL)
			dlclose(dl);
		return ret;
	}
	/* the drop-in scan knows this build now (no second reload) */
	free(hmap_put(ph->seen, path,
		      xasprintf("%llu:%llu", (unsigned long long)st.st_dev,
				(unsigned long long)st.st_ino)));
	log_info("plugin %s loaded from %s (%s, inode %llu)%s", api->name,
		 path, p->isolated ? "isolated: own process" : "inline",
		 (unsigned long long)p->ino,
		 ph_dropin(ph, path) ? ": the admins' drop-in folder, which "
				       "loads what is dropped there unless "
				       "its entry says `enabled: false`"
				     : "");
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
		char *err = NULL, *id;
		const char *old;
		struct stat st;
		bool replaced;
		int ret;

		if (stat(path, &st) < 0) {
			free(path);
			free(list[i]);
			continue;
		}
		id = xasprintf("%llu:%llu", (unsigned long long)st.st_dev,
			       (unsigned long long)st.st_ino);
		old = hmap_get(ph->seen, path);
		replaced = old != NULL;
		if (old != NULL && strcmp(old, id) == 0) {
			free(id);
			free(path);
			free(list[i]);
			continue;
		}
		free(hmap_put(ph->seen, path, id));
		if (replaced) {
			/* replaced (a new inode): the new build replaces the
			 * old one once its calls are over */
			struct plugin *p = NULL;

			for (struct plugin *q = ph->plugins; q != NULL;
			     q = q->next)
				if (!q->unloading && strcmp(q->file, path) == 0)
					p = q;
			if (p != NULL) {
				char *name = xstrdup(p->name);

				log_info("plugin %s: %s was replaced: "
					 "reloading", name, path);
				if (pluginhost_reload(ph, name, &err) < 0) {
					log_error("plugin %s: %s", name, err);
					free(err);
				}
				free(name);
				free(path);
				free(list[i]);
				continue;
			}
		}
		ret = pluginhost_load(ph, path, &err);
		if (ret == 0)
			loaded++;
		else if (ret == -ECANCELED)
			log_info("%s", err);
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
	if (!ph_cfg_enabled(cfg, path, cp))
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
	p.ctx.vars = ph_vars(cfg);
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
	json_decref(p.ctx.vars);
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
	ph->quarantined = hmap_new();
	ph->reload_after = hmap_new();
	ph->runner = xstrdup(getenv("OPHOOK_PLUGIN_RUNNER") != NULL
				     ? getenv("OPHOOK_PLUGIN_RUNNER")
				     : OPHOOK_PLUGIN_RUNNER);
	ph->qdir = xasprintf("%s/plugins/.quarantine",
			     engine_config(e)->state_dir);
	if (mkdir_p(ph->qdir, 0700) < 0)
		log_warn("%s: cannot create it: quarantines will not "
			 "survive a restart", ph->qdir);
	ph_fatal_install(ph->qdir);
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
	if (ph_quarantine_reason(ph, name) != NULL) {
		log_info("plugin %s: out of quarantine", name);
		ph_quarantine_clear(ph, name);
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
	if (pluginhost_find(ph, name) == NULL) {
		*error_r = xasprintf("plugin %s is not loaded", name);
		return -ENOENT;
	}
	/* loaded again from plugin_destroy, once the old code's calls are
	 * over (at once when none is in flight) */
	hmap_put(ph->reload_after, name, (void *)1);
	pluginhost_unload(ph, name);
	if (pluginhost_find(ph, name) == NULL &&
	    hmap_get(ph->reload_after, name) != NULL)
		return 1; /* pending */
	return 0;
}

static bool ph_list_quarantined(const char *name, void *value, void *ctx)
{
	const char *file = NULL;
	json_t *arr = ctx;

	(void)file;
	json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "name",
					     name, "state", "quarantined",
					     "reason", (const char *)value,
					     "description", ""));
	return true;
}

json_t *pluginhost_list(struct pluginhost *ph)
{
	json_t *arr = json_array();

	for (struct plugin *p = ph->plugins; p != NULL; p = p->next) {
		json_t *o;

		if (p->unloading)
			continue;
		o = json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:I, s:I, s:I}",
			      "name", p->name, "file", p->file, "description",
			      p->api->description != NULL
				      ? p->api->description
				      : "",
			      "abi", (json_int_t)p->api->abi, "state",
			      "running", "isolation",
			      p->isolated ? "process" : "inline", "inode",
			      (json_int_t)p->ino, "mtime_ms",
			      (json_int_t)p->mtime_ms, "crashes",
			      (json_int_t)p->n_crashes);
		if (p->isolated && p->pp != NULL)
			json_object_set_new(o, "pid",
					    json_integer(pluginproc_pid(p->pp)));
		json_array_append_new(arr, o);
	}
	hmap_each(ph->quarantined, ph_list_quarantined, arr);
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
	hmap_free(&ph->seen, free);
	hmap_free(&ph->files, free);
	hmap_free(&ph->quarantined, free);
	hmap_free(&ph->reload_after, NULL);
	free(ph->runner);
	free(ph->qdir);
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
	char *text = xstrdup("NAME            STATE        ISOLATION PID     "
			     "INODE      MTIME                FILE\n");

	(void)args;
	(void)req;
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(list, i);
		const char *state = json_string_value(json_object_get(p, "state"));
		char when[32] = "-", *t;
		json_t *mt = json_object_get(p, "mtime_ms");

		if (mt != NULL) {
			time_t sec = (time_t)(json_integer_value(mt) / 1000);
			struct tm tm;

			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S",
				 localtime_r(&sec, &tm));
		}
		if (strcmp(state, "quarantined") == 0)
			t = xasprintf("%s%-15s %-12s %-9s %-7s %-10s %-20s %s\n",
				      text,
				      json_string_value(json_object_get(p, "name")),
				      state, "-", "-", "-", "-",
				      json_string_value(json_object_get(p, "reason")));
		else
			t = xasprintf("%s%-15s %-12s %-9s %-7lld %-10lld %-20s %s\n",
				      text,
				      json_string_value(json_object_get(p, "name")),
				      state,
				      json_string_value(json_object_get(p, "isolation")),
				      (long long)json_integer_value(json_object_get(p, "pid")),
				      (long long)json_integer_value(json_object_get(p, "inode")),
				      when,
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
				   : ret == 1 ? "reloading once its calls "
						"in flight are over"
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
