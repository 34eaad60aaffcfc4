/* Admin hooks: the scan of hooks_dir (polled every second), loading,
 * reloading and removing hook files as they change, and the subsystem's
 * start and stop.  The handlers are in hooks_lua.c and hooks_exec.c, the
 * control commands in hooks_cmds.c. */
#define _GNU_SOURCE
#include "hooks.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalogue.h"
#include "config.h"
#include "engine.h"
#include "exechook.h"
#include "hmap.h"
#include "hooks_exec.h"
#include "hooks_int.h"
#include "hooks_lua.h"
#include "log.h"
#include "luahook.h"
#include "util.h"

#define HOOKS_POLL_MS 1000

/* ---- small helpers ------------------------------------------------------- */

static bool hooks_sig_same(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_size == b->st_size && a->st_mode == b->st_mode &&
	       a->st_uid == b->st_uid &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

bool hooks_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

uid_t hooks_owner(void)
{
	return geteuid();
}

static int hooks_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir (NULL-terminated, caller frees), NULL if missing. */
char **hooks_list_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;

	if (d == NULL)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = xrealloc(names, (n + 2) * sizeof(*names));
		names[n++] = xstrdup(de->d_name);
	}
	closedir(d);
	if (names == NULL)
		names = xcalloc(1, sizeof(*names));
	names[n] = NULL;
	qsort(names, n, sizeof(*names), hooks_name_cmp);
	return names;
}

void hooks_free_names(char **names)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

bool hooks_pattern_ok(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > 64)
		return false;
	for (; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '.' || *p == '*'))
			return false;
	}
	return true;
}

/* ---- loading, reloading, removing Lua files ------------------------------ */

static bool hooks_json_strs_equal(json_t *a, json_t *b)
{
	return a != NULL && b != NULL && json_equal(a, b);
}

json_t *hooks_intents_warn(const char *name, const json_t *intents,
			   bool log)
{
	json_t *out = json_array(), *v;
	size_t i;

	json_array_foreach(intents, i, v) {
		const char *in = json_string_value(v);
		const char *near;
		char *w;

		if (in == NULL || catalogue_intent_find(in) != NULL)
			continue;
		near = catalogue_intent_suggest(in);
		w = xasprintf("ophook.pre('%s'): unknown intent, `ophookctl "
			      "check` never asks it%s%s%s", in,
			      near != NULL ? " (did you mean " : "",
			      near != NULL ? near : "", near != NULL ? "?)" : "");
		if (log)
			log_msg(LOG_WARN_L, "hooks", "%s: %s", name, w);
		json_array_append_new(out, json_string(w));
		free(w);
	}
	return out;
}

void hooks_apply_load(struct luafile *f, struct hooks_job *job)
{
	bool same;

	f->load_pending = false;
	if (job->rc < 0) {
		bool again = f->last_error == NULL ||
			     strcmp(f->last_error, job->error) != 0;

		free(f->last_error);
		f->last_error = xstrdup(job->error);
		if (!f->loaded) {
			/* its pre checks fail until a version loads */
			json_decref(f->pre_named);
			f->pre_named = json_incref(job->intents);
		}
		if (again)
			log_msg(LOG_ERROR_L, "hooks",
				"%s%s", job->error,
				f->loaded ? " (the previous version keeps "
					    "running)" : " (not loaded)");
		return;
	}
	free(f->last_error);
	f->last_error = NULL;
	json_decref(f->pre_named);
	f->pre_named = NULL;
	same = f->h != NULL && hooks_json_strs_equal(f->patterns, job->patterns);
	json_decref(f->patterns);
	json_decref(f->intents);
	f->patterns = json_incref(job->patterns);
	f->intents = json_incref(job->intents);
	f->priority = job->priority;
	f->timeout_sum = job->timeout_sum;
	log_msg(LOG_INFO_L, "hooks", "%s: %s: %zu event handler(s), %zu pre "
		"hook(s)", f->name, f->loaded ? "reloaded" : "loaded",
		json_array_size(f->patterns), json_array_size(f->intents));
	json_decref(hooks_intents_warn(f->name, f->intents, true));
	f->loaded = true;
	f->loaded_ms = now_ms();
	if (f->removed)
		return;
	if (same) {
		f->h->priority = f->priority;
		f->h->timeout_ms = f->timeout_sum + 2000;
		return;
	}
	hooks_lua_unregister(f);
	if (json_array_size(f->patterns) > 0)
		hooks_lua_register(f);
}

static void hooks_load_lua(struct luafile *f, const struct stat *st)
{
	struct hooks_job *job;

	f->sig = *st;
	if (!f->thread_running || f->load_pending)
		return;
	job = xcalloc(1, sizeof(*job));
	job->kind = HOOKS_JOB_LOAD;
	job->sig = *st;
	f->load_pending = true;
	hooks_lua_queue(f, job);
}

/* The file is gone: unregister, let the thread finish and quit. */
static void hooks_remove_lua(struct luafile *f)
{
	struct hooks_job *job;

	f->removed = true;
	hooks_lua_unregister(f);
	if (f->thread_running) {
		job = xcalloc(1, sizeof(*job));
		job->kind = HOOKS_JOB_QUIT;
		f->hk->quitting++;
		hooks_lua_queue(f, job);
	}
	hooks_lua_unref(f); /* hk->lua's */
}

/* ---- scanning hooks_dir -------------------------------------------------- */

static bool hooks_mark_unseen(const char *key, void *value, void *ctx)
{
	struct execfile *x = value;

	(void)key;
	(void)ctx;
	x->seen = false;
	return true;
}

struct hooks_gone {
	char **keys;
	size_t n;
	bool lua;
	struct hooks *hk;
};

static bool hooks_collect_gone(const char *key, void *value, void *ctx)
{
	struct hooks_gone *g = ctx;
	bool gone;

	if (g->lua) {
		struct luafile *f = value;
		char *path = xasprintf("%s/%s", g->hk->cfg->hooks_dir, key);
		struct stat st;

		gone = lstat(path, &st) < 0 || !S_ISREG(st.st_mode);
		free(path);
		(void)f;
	} else {
		gone = !((struct execfile *)value)->seen;
	}
	if (gone) {
		g->keys = xrealloc(g->keys, (g->n + 1) * sizeof(*g->keys));
		g->keys[g->n++] = xstrdup(key);
	}
	return true;
}

static void hooks_scan_lua(struct hooks *hk, const char *name)
{
	char *path = xasprintf("%s/%s", hk->cfg->hooks_dir, name);
	struct luafile *f = hmap_get(hk->lua, name);
	struct stat st;
	char *why = NULL;
	int ret;

	if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
		free(path);
		return;
	}
	if (f != NULL && hooks_sig_same(&f->sig, &st)) {
		free(path);
		return;
	}
	if (f != NULL && f->stuck) {
		/* a new version: a fresh thread and state; the stuck thread
		 * and its file entry are left behind */
		log_msg(LOG_INFO_L, "hooks", "%s: changed: loading it on a "
			"new thread", name);
		hmap_del(hk->lua, name);
		f = NULL;
	}
	/* same rules as exec hooks: root's, not group/other-writable */
	ret = (st.st_uid != 0 && st.st_uid != hooks_owner()) ||
	      (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ? -EPERM : 0;
	if (ret < 0) {
		why = st.st_uid != 0 && st.st_uid != hooks_owner()
			      ? xasprintf("%s: refused: file owned by uid %u, "
					  "not root", path, (unsigned)st.st_uid)
			      : xasprintf("%s: refused: file writable by group "
					  "or others (mode %04o)", path,
					  (unsigned)(st.st_mode & 07777));
		if (f == NULL) {
			f = hooks_lua_new(hk, path, name);
			hmap_put(hk->lua, name, f);
		}
		f->sig = st;
		log_msg(LOG_ERROR_L, "hooks", "%s", why);
		free(f->last_error);
		f->last_error = why;
		free(path);
		return;
	}
	if (f == NULL) {
		f = hooks_lua_new(hk, path, name);
		hmap_put(hk->lua, name, f);
	}
	hooks_load_lua(f, &st);
	free(path);
}

static void hooks_scan_exec_dir(struct hooks *hk, const char *dname,
				unsigned *order)
{
	char *dir = xasprintf("%s/%s", hk->cfg->hooks_dir, dname);
	char *pattern = xstrndup(dname, strlen(dname) - 2);
	char **names;

	if (!hooks_pattern_ok(pattern)) {
		static char *warned;

		if (warned == NULL || strcmp(warned, dname) != 0) {
			log_msg(LOG_WARN_L, "hooks", "%s: skipped: '%s' is not "
				"an event pattern ([a-z0-9_.*])", dir, pattern);
			free(warned);
			warned = xstrdup(dname);
		}
		goto out;
	}
	names = hooks_list_dir(dir);
	for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
		char *rel, *path, *why = NULL;
		struct execfile *x;
		struct stat st;
		int ret;

		if (!exechook_name_ok(names[i]))
			continue;
		rel = xasprintf("%s/%s", dname, names[i]);
		path = xasprintf("%s/%s", dir, names[i]);
		x = hmap_get(hk->exec, rel);
		(*order)++;
		if (lstat(path, &st) < 0) {
			free(rel);
			free(path);
			continue;
		}
		if (x != NULL) {
			x->seen = true;
			if (hooks_sig_same(&x->sig, &st)) {
				free(rel);
				free(path);
				continue;
			}
		} else {
			x = xcalloc(1, sizeof(*x));
			x->hk = hk;
			hk->refs++;
			x->refs = 1;
			x->rel = xstrdup(rel);
			x->path = xstrdup(path);
			x->pattern = xstrdup(pattern);
			x->seen = true;
			hmap_put(hk->exec, rel, x);
		}
		x->sig = st;
		ret = exechook_check_file(path, hooks_owner(), &why);
		free(x->last_error);
		x->last_error = why;
		if (ret < 0) {
			log_msg(ret == -ENOEXEC ? LOG_INFO_L : LOG_ERROR_L,
				"hooks", "%s", why);
			hooks_exec_unregister(x);
		} else if (!x->ok) {
			log_msg(LOG_INFO_L, "hooks", "%s: exec hook for '%s'",
				rel, pattern);
			hooks_exec_register(x, *order);
		}
		free(rel);
		free(path);
	}
	hooks_free_names(names);
out:
	free(dir);
	free(pattern);
}

/* hooks_dir itself must be root's and not writable by group or others:
 * else anyone could swap the hooks.  0 or -EPERM (logged once). */
static int hooks_check_dir(struct hooks *hk)
{
	static char *last;
	struct stat st;
	char *why = NULL;

	if (stat(hk->cfg->hooks_dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return 0; /* nothing there (yet) */
	if (st.st_uid != 0 && st.st_uid != hooks_owner())
		why = xasprintf("%s: refused: hooks folder owned by uid %u, "
				"not root: no hooks are loaded from it",
				hk->cfg->hooks_dir, (unsigned)st.st_uid);
	else if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		why = xasprintf("%s: refused: hooks folder writable by group "
				"or others (mode %04o): no hooks are loaded "
				"from it", hk->cfg->hooks_dir,
				(unsigned)(st.st_mode & 07777));
	if (why == NULL) {
		free(last);
		last = NULL;
		return 0;
	}
	if (last == NULL || strcmp(last, why) != 0)
		log_msg(LOG_ERROR_L, "hooks", "%s", why);
	free(last);
	last = why;
	return -EPERM;
}

static void hooks_scan(struct hooks *hk)
{
	char **names;
	struct hooks_gone g = { .hk = hk };
	unsigned order = 0;

	if (hooks_check_dir(hk) < 0)
		return;
	names = hooks_list_dir(hk->cfg->hooks_dir);

	hmap_each(hk->exec, hooks_mark_unseen, NULL);
	for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
		const char *n = names[i];
		char *path;
		struct stat st;

		if (hooks_ends_with(n, ".lua")) {
			if (exechook_name_ok(n))
				hooks_scan_lua(hk, n);
			continue;
		}
		if (!hooks_ends_with(n, ".d"))
			continue;
		path = xasprintf("%s/%s", hk->cfg->hooks_dir, n);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			hooks_scan_exec_dir(hk, n, &order);
		free(path);
	}
	hooks_free_names(names);

	/* vanished files */
	g.lua = true;
	hmap_each(hk->lua, hooks_collect_gone, &g);
	for (size_t i = 0; i < g.n; i++) {
		struct luafile *f = hmap_del(hk->lua, g.keys[i]);

		log_msg(LOG_INFO_L, "hooks", "%s: removed", g.keys[i]);
		hooks_remove_lua(f);
		free(g.keys[i]);
	}
	free(g.keys);
	memset(&g, 0, sizeof(g));
	g.hk = hk;
	hmap_each(hk->exec, hooks_collect_gone, &g);
	for (size_t i = 0; i < g.n; i++) {
		struct execfile *x = hmap_del(hk->exec, g.keys[i]);

		log_msg(LOG_INFO_L, "hooks", "%s: removed", g.keys[i]);
		hooks_exec_unregister(x);
		hooks_exec_unref(x);
		free(g.keys[i]);
	}
	free(g.keys);
}

/* ---- start / stop -------------------------------------------------------- */

static void hooks_timer_cb(uv_timer_t *t)
{
	struct hooks *hk = t->data;

	hmap_each(hk->lua, hooks_lua_watch, hk);
	hooks_scan(hk);
}

static void hooks_free(struct hooks *hk)
{
	for (size_t i = 0; hk->file_roots != NULL && hk->file_roots[i] != NULL;
	     i++)
		free(hk->file_roots[i]);
	free(hk->file_roots);
	free(hk->hooks_dir);
	pthread_rwlock_destroy(&hk->host_gate);
	hmap_free(&hk->lua, NULL);
	hmap_free(&hk->exec, NULL);
	pthread_mutex_destroy(&hk->done_mu);
	pthread_cond_destroy(&hk->done_cond);
	free(hk);
}

void hooks_unref(struct hooks *hk)
{
	if (--hk->refs > 0 || hk->leak)
		return;
	hooks_free(hk);
}

static void hooks_handle_closed(uv_handle_t *h)
{
	hooks_unref(h->data);
}

static bool hooks_load_pending(const char *key, void *value, void *ctx)
{
	struct luafile *f = value;

	(void)key;
	if (f->load_pending)
		*(bool *)ctx = true;
	return !f->load_pending;
}

/* At start, wait for the first load of every Lua file (they load in
 * parallel, each bounded by its deadline) so that their handlers exist
 * before the sources start and the journal's pending deliveries resume. */
static void hooks_wait_loads(struct hooks *hk)
{
	int64_t until = mono_ms() + hk->cfg->hooks.timeout_ms + 2000;

	for (;;) {
		bool pending = false;
		struct timespec ts;

		hmap_each(hk->lua, hooks_load_pending, &pending);
		if (!pending || mono_ms() >= until)
			break;
		pthread_mutex_lock(&hk->done_mu);
		if (hk->done_head == NULL) {
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 50 * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&hk->done_cond, &hk->done_mu,
					       &ts);
		}
		pthread_mutex_unlock(&hk->done_mu);
		hooks_lua_async_cb(&hk->async);
	}
}

int hooks_start(struct engine *e, const struct hooks_deps *deps,
		struct hooks **h_r, const char **error_r)
{
	const struct config *cfg = engine_config(e);
	struct hooks *hk;
	struct stat st;

	*h_r = NULL;
	if (cfg->hooks_dir == NULL || stat(cfg->hooks_dir, &st) < 0) {
		log_msg(LOG_INFO_L, "hooks", "%s: no hooks folder: no hooks",
			cfg->hooks_dir != NULL ? cfg->hooks_dir : "(unset)");
	}
	(void)error_r;
	/* exec hooks and webhooks write to pipes and sockets that may close */
	signal(SIGPIPE, SIG_IGN);
	hk = xcalloc(1, sizeof(*hk));
	hk->e = e;
	if (deps != NULL)
		hk->deps = *deps;
	hk->cfg = cfg;
	hk->loop = engine_loop(e);
	hk->refs = 1;
	hk->lim.memory_max = (size_t)cfg->hooks.memory_kb * 1024;
	hk->lim.timeout_ms = cfg->hooks.timeout_ms;
	hk->lim.output_max = cfg->hooks.output_max;
	hk->hooks_dir = cfg->hooks_dir != NULL ? xstrdup(cfg->hooks_dir) : NULL;
	hk->timeout_ms = cfg->hooks.timeout_ms;
	hk->output_max = cfg->hooks.output_max;
	hk->file_roots = xcalloc(cfg->hooks.n_file_roots + 1,
				 sizeof(*hk->file_roots));
	for (size_t i = 0; i < cfg->hooks.n_file_roots; i++)
		hk->file_roots[i] = xstrdup(cfg->hooks.file_roots[i]);
	hk->lim.file_roots = hk->file_roots;
	hk->lim.n_file_roots = cfg->hooks.n_file_roots;
	pthread_rwlock_init(&hk->host_gate, NULL);
	hooks_lua_host_init(hk);
	hk->lua = hmap_new();
	hk->exec = hmap_new();
	pthread_mutex_init(&hk->done_mu, NULL);
	pthread_cond_init(&hk->done_cond, NULL);
	uv_async_init(hk->loop, &hk->async, hooks_lua_async_cb);
	hk->async.data = hk;
	hk->refs++;
	uv_timer_init(hk->loop, &hk->timer);
	hk->timer.data = hk;
	hk->refs++;
	hooks_scan(hk);
	hooks_wait_loads(hk);
	/* first tick right away: the control socket exists by then */
	uv_timer_start(&hk->timer, hooks_timer_cb, 0, HOOKS_POLL_MS);
	*h_r = hk;
	return 0;
}

static bool hooks_stop_exec(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	hooks_exec_unregister(value);
	hooks_exec_unref(value);
	return true;
}

/* done_mu held: wait (at most 3 s) until the QUIT job of every removed
 * file's thread is on the done list: posted once `stopped` is set it would
 * be dropped, and the file (and hk) with it. */
static void hooks_stop_wait_quits(struct hooks *hk)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 3;
	for (;;) {
		unsigned n = 0;

		for (struct hooks_job *j = hk->done_head; j != NULL; j = j->next)
			n += j->kind == HOOKS_JOB_QUIT && j->f->removed;
		if (n >= hk->quitting ||
		    pthread_cond_timedwait(&hk->done_cond, &hk->done_mu, &ts) != 0)
			return;
	}
}

void hooks_stop(struct hooks **hp)
{
	struct hooks *hk = *hp;
	struct hooks_job *job, *next;

	if (hk == NULL)
		return;
	*hp = NULL;
	/* no host function runs from now on (a hooks.test thread that is
	 * never waited for may still call one) */
	pthread_rwlock_wrlock(&hk->host_gate);
	hk->host_gone = true;
	pthread_rwlock_unlock(&hk->host_gate);
	pthread_mutex_lock(&hk->done_mu);
	hooks_stop_wait_quits(hk);
	hk->stopped = true;
	job = hk->done_head;
	hk->done_head = hk->done_tail = NULL;
	pthread_mutex_unlock(&hk->done_mu);
	hooks_cmds_pool_stop(hk);
	for (; job != NULL; job = next) {
		next = job->next;
		if (job->kind == HOOKS_JOB_QUIT) {
			pthread_join(job->f->thread, NULL);
			job->f->thread_running = false;
			if (job->f->removed && hk->quitting > 0)
				hk->quitting--;
			hooks_lua_unref(job->f);
		}
		hooks_lua_job_free(job);
	}
	uv_timer_stop(&hk->timer);
	hmap_each(hk->lua, hooks_lua_stop_thread, hk);
	hmap_each(hk->lua, hooks_lua_stop_free, hk);
	/* exec hooks' results are dropped from now on: end their processes
	 * (one still queued on the pool is not made, or killed once made);
	 * each run keeps its execfile and hk until its process is reaped */
	hooks_exec_kill_runs(hk);
	hmap_each(hk->exec, hooks_stop_exec, hk);
	hmap_free(&hk->lua, NULL);
	hmap_free(&hk->exec, NULL);
	hk->lua = hmap_new();
	hk->exec = hmap_new();
	uv_close((uv_handle_t *)&hk->timer, hooks_handle_closed);
	uv_close((uv_handle_t *)&hk->async, hooks_handle_closed);
	hooks_unref(hk);
}
