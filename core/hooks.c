/* Admin hooks: Lua files (one thread and one sandbox each), exec hooks
 * (<pattern>.d/ executables) and pre-stage checks, reloaded by polling
 * hooks_dir every second. */
#define _GNU_SOURCE
#include "hooks.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "engine.h"
#include "exechook.h"
#include "handler.h"
#include "hmap.h"
#include "log.h"
#include "luahook.h"
#include "ophook/plugin.h"
#include "util.h"

#define HOOKS_POLL_MS 1000
#define HOOKS_JOIN_WAIT_S 3
#define HOOKS_EXEC_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define HOOKS_PAYLOAD_MAX (1u << 20)
#define HOOKS_STUCK_GRACE_MS 10000

enum hooks_job_kind {
	HOOKS_JOB_LOAD,
	HOOKS_JOB_EVENT,
	HOOKS_JOB_PRE,
	HOOKS_JOB_QUIT,
};

struct luafile;

/* One `check` request: the pre hooks of every file, then one answer. */
struct hooks_check {
	struct hooks *hk;
	struct control_reply *reply;
	char *intent;
	json_t *request;     /* read by the hook threads: never changed */
	size_t n, pending;
	struct hooks_check_slot {
		char *file;
		int rc;
		bool deny;
		char *reason, *error;
	} *slots;
};

struct hooks_job {
	enum hooks_job_kind kind;
	struct luafile *f;
	struct hooks_job *next;
	atomic_bool cancel;

	/* event */
	struct delivery *d;
	struct event *ev;
	unsigned attempt;
	/* pre */
	struct hooks_check *check;
	size_t check_slot;
	/* load */
	struct stat sig;

	/* results */
	int rc;
	char *error;
	bool deny;
	char *reason;
	json_t *patterns, *intents; /* load: what the new version has */
	int priority;
	unsigned timeout_sum;
};

/* One *.lua file.  Loop-thread fields unless noted. */
struct luafile {
	struct hooks *hk;
	char *path, *name;
	unsigned refs;        /* hk->lua, the handler, the thread */
	bool removed;

	json_t *patterns, *intents; /* of the running version */
	int priority;
	unsigned timeout_sum;
	bool loaded;          /* a version is running */
	char *last_error;
	int64_t loaded_ms;
	struct stat sig;      /* file identity last seen */
	bool load_pending;
	struct handler *h;

	/* the thread (mu guards the queue, quit and cur) */
	pthread_t thread;
	bool thread_running;
	pthread_mutex_t mu;
	pthread_cond_t cond;
	struct hooks_job *q_head, *q_tail;
	struct hooks_job *cur;
	int64_t cur_started_ms;
	bool quit;
	bool stuck;           /* loop thread: a call never came back */
	struct luahook *lh;   /* used by the thread only */
};

/* One executable in a <pattern>.d folder. */
struct execfile {
	struct hooks *hk;
	char *path, *rel, *pattern;
	unsigned refs;        /* hk->exec, the handler, each run */
	struct stat sig;
	bool ok;              /* passed the checks: has a handler */
	char *last_error;
	bool seen;            /* in the last scan */
};

struct exec_run {
	struct execfile *x;
	struct delivery *d;
	struct exechook_proc *p;
	unsigned timeout_ms;
	struct exec_run *prev, *next; /* hk->exec_runs */
};

struct hooks {
	struct engine *e;
	const struct config *cfg;
	uv_loop_t *loop;
	unsigned refs;        /* the daemon, threads' posted jobs, works */
	bool stopped;
	struct luahook_limits lim;
	struct luahook_host host;
	struct hooks_deps deps;

	struct hmap *lua;     /* name -> luafile */
	struct hmap *exec;    /* rel -> execfile */
	struct exec_run *exec_runs; /* processes made or queued */
	uv_timer_t timer;
	uv_async_t async;
	pthread_mutex_t done_mu;
	pthread_cond_t done_cond; /* signalled with each posted job */
	struct hooks_job *done_head, *done_tail;
	bool leak;            /* a thread would not stop: never free */
};

static void hooks_unref(struct hooks *hk);
static void luafile_apply_load(struct luafile *f, struct hooks_job *job);
static void hooks_check_job_done(struct hooks_job *job);

/* ---- small helpers ------------------------------------------------------ */

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

static bool hooks_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

static uid_t hooks_owner(void)
{
	return geteuid();
}

static void hooks_job_free(struct hooks_job *job)
{
	if (job == NULL)
		return;
	event_unref(&job->ev);
	free(job->error);
	free(job->reason);
	json_decref(job->patterns);
	json_decref(job->intents);
	free(job);
}

/* ---- luahook host functions (hook threads) ------------------------------ */

static int hooks_host_emit(void *ctx, const char *type, const char *subject,
			   json_t *fields, char **error_r)
{
	struct hooks *hk = ctx;
	const char *err = NULL;
	int ret;

	ret = engine_submit(hk->e, type, subject, "hook", fields, NULL, NULL,
			    &err);
	if (ret < 0)
		*error_r = xstrdup(err != NULL ? err : strerror(-ret));
	return ret;
}

static int hooks_host_db_query(void *ctx, const char *sql, json_t *params,
			       json_t **rows_r, char **error_r)
{
	struct hooks *hk = ctx;

	if (hk->deps.db_query == NULL) {
		*error_r = xstrdup("no panel database");
		return -ENOTCONN;
	}
	return hk->deps.db_query(hk->deps.db_ctx, sql, params, rows_r,
				 error_r);
}

static void hooks_host_own_write(void *ctx, const char *path)
{
	struct hooks *hk = ctx;

	engine_own_write(hk->e, path);
}

/* ---- the Lua threads ---------------------------------------------------- */

/* Hand a finished job to the loop thread (or drop it after a stop). */
static void hooks_post(struct hooks *hk, struct hooks_job *job)
{
	pthread_mutex_lock(&hk->done_mu);
	if (hk->stopped) {
		pthread_mutex_unlock(&hk->done_mu);
		hooks_job_free(job);
		return;
	}
	job->next = NULL;
	if (hk->done_tail != NULL)
		hk->done_tail->next = job;
	else
		hk->done_head = job;
	hk->done_tail = job;
	uv_async_send(&hk->async);
	pthread_cond_signal(&hk->done_cond);
	pthread_mutex_unlock(&hk->done_mu);
}

static bool hooks_is_stopped(struct hooks *hk)
{
	bool stopped;

	pthread_mutex_lock(&hk->done_mu);
	stopped = hk->stopped;
	pthread_mutex_unlock(&hk->done_mu);
	return stopped;
}

static json_t *hooks_lh_list(struct luahook *lh, bool pre)
{
	json_t *a = json_array();
	size_t n = pre ? luahook_pre_count(lh) : luahook_on_count(lh);

	for (size_t i = 0; i < n; i++) {
		const char *s = pre ? luahook_pre_intent(lh, i)
				    : luahook_on_pattern(lh, i);
		bool dup = false;
		size_t k;
		json_t *v;

		json_array_foreach(a, k, v) {
			if (strcmp(json_string_value(v), s) == 0)
				dup = true;
		}
		if (!dup)
			json_array_append_new(a, json_string(s));
	}
	return a;
}

static void luafile_run_job(struct luafile *f, struct hooks_job *job)
{
	struct hooks *hk = f->hk;

	switch (job->kind) {
	case HOOKS_JOB_LOAD: {
		struct luahook *lh = NULL;

		job->rc = luahook_load(f->path, f->name, &hk->lim, &hk->host,
				       &lh, &job->error);
		if (job->rc == 0) {
			luahook_free(&f->lh);
			f->lh = lh;
			job->patterns = hooks_lh_list(lh, false);
			job->intents = hooks_lh_list(lh, true);
			job->priority = luahook_priority(lh);
			job->timeout_sum = luahook_timeout_sum(lh);
		}
		break;
	}
	case HOOKS_JOB_EVENT:
		delivery_started(job->d);
		if (f->lh == NULL) {
			job->rc = -ENOENT;
			job->error = xasprintf("%s: not loaded", f->name);
			break;
		}
		job->rc = luahook_run_event(f->lh, job->ev->type,
					    job->ev->payload, job->attempt,
					    &job->cancel, NULL, &job->error);
		break;
	case HOOKS_JOB_PRE:
		if (f->lh == NULL) {
			job->rc = -ENOENT;
			job->error = xasprintf("%s: not loaded", f->name);
			break;
		}
		job->rc = luahook_run_pre(f->lh, job->check->intent,
					  job->check->request, &job->cancel,
					  &job->deny, &job->reason,
					  &job->error);
		break;
	case HOOKS_JOB_QUIT:
		break;
	}
}

static void *luafile_thread(void *arg)
{
	struct luafile *f = arg;
	struct hooks_job *job;
	sigset_t all;

	/* signals are the loop thread's business */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		pthread_mutex_lock(&f->mu);
		while (f->q_head == NULL)
			pthread_cond_wait(&f->cond, &f->mu);
		job = f->q_head;
		f->q_head = job->next;
		if (f->q_head == NULL)
			f->q_tail = NULL;
		f->cur = job;
		f->cur_started_ms = mono_ms();
		pthread_mutex_unlock(&f->mu);

		if (job->kind != HOOKS_JOB_QUIT && hooks_is_stopped(f->hk)) {
			pthread_mutex_lock(&f->mu);
			f->cur = NULL;
			pthread_mutex_unlock(&f->mu);
			hooks_job_free(job);
			continue;
		}
		luafile_run_job(f, job);
		pthread_mutex_lock(&f->mu);
		f->cur = NULL;
		pthread_mutex_unlock(&f->mu);
		if (job->kind == HOOKS_JOB_QUIT) {
			luahook_free(&f->lh);
			hooks_post(f->hk, job);
			return NULL;
		}
		hooks_post(f->hk, job);
	}
}

/* Queue a job on the file's thread (loop thread). */
static void luafile_queue(struct luafile *f, struct hooks_job *job)
{
	job->f = f;
	job->next = NULL;
	pthread_mutex_lock(&f->mu);
	if (f->q_tail != NULL)
		f->q_tail->next = job;
	else
		f->q_head = job;
	f->q_tail = job;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->mu);
}

static void luafile_unref(struct luafile *f)
{
	if (f == NULL || --f->refs > 0)
		return;
	json_decref(f->patterns);
	json_decref(f->intents);
	free(f->last_error);
	free(f->path);
	free(f->name);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cond);
	hooks_unref(f->hk);
	free(f);
}

static struct luafile *luafile_new(struct hooks *hk, const char *path,
				   const char *name)
{
	struct luafile *f = xcalloc(1, sizeof(*f));

	f->hk = hk;
	hk->refs++;
	f->path = xstrdup(path);
	f->name = xstrdup(name);
	f->refs = 1; /* hk->lua */
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cond, NULL);
	if (pthread_create(&f->thread, NULL, luafile_thread, f) == 0) {
		f->thread_running = true;
		f->refs++; /* released when the QUIT job comes back */
	} else {
		f->last_error = xasprintf("%s: cannot start a thread", name);
	}
	return f;
}

/* -- the Lua handler -- */

static void lua_handler_deliver(struct handler *h, struct delivery *d)
{
	struct luafile *f = h->data;
	struct hooks_job *job = xcalloc(1, sizeof(*job));

	job->kind = HOOKS_JOB_EVENT;
	job->d = d;
	job->ev = event_ref(d->ev);
	job->attempt = d->attempts + 1;
	atomic_init(&job->cancel, false);
	d->hdata = job;
	if (!f->thread_running) {
		d->hdata = NULL;
		hooks_job_free(job);
		dispatch_done(d, -EIO, "the hook's thread is not running");
		return;
	}
	luafile_queue(f, job);
}

static void lua_handler_cancel(struct handler *h, struct delivery *d)
{
	struct hooks_job *job = d->hdata;

	(void)h;
	if (job != NULL)
		atomic_store(&job->cancel, true);
}

static void lua_handler_free(struct handler *h)
{
	struct luafile *f = h->data;

	if (f != NULL && f->h == h)
		f->h = NULL;
	luafile_unref(f);
	h->data = NULL;
}

static const struct handler_ops lua_handler_ops = {
	.deliver = lua_handler_deliver,
	.cancel = lua_handler_cancel,
	.free = lua_handler_free,
};

static bool hooks_json_strs_equal(json_t *a, json_t *b)
{
	return a != NULL && b != NULL && json_equal(a, b);
}

static void luafile_register(struct luafile *f)
{
	struct hooks *hk = f->hk;
	struct handler *h;
	const char *err = NULL;
	char *name;
	size_t i;
	json_t *v;

	name = xasprintf("lua:%s", f->name);
	h = handler_new(&lua_handler_ops, name);
	free(name);
	json_array_foreach(f->patterns, i, v)
		handler_add_pattern(h, json_string_value(v));
	h->priority = f->priority;
	h->timeout_ms = f->timeout_sum + 2000;
	/* one call at a time per file anyway (one state, one thread): do not
	 * let a slow file take the dispatcher's concurrency from the others */
	h->serial = true;
	h->data = f;
	f->refs++;
	if (engine_handler_add(hk->e, h, &err) < 0) {
		log_msg(LOG_ERROR_L, h->name, "cannot register: %s", err);
		handler_free_unowned(&h);
		return;
	}
	f->h = h;
}

static void luafile_unregister(struct luafile *f)
{
	char *name;

	if (f->h == NULL)
		return;
	name = xstrdup(f->h->name);
	f->h->data = f;  /* the free op drops our reference */
	f->h = NULL;
	engine_handler_remove(f->hk->e, name);
	free(name);
}

static void luafile_apply_load(struct luafile *f, struct hooks_job *job)
{
	bool same;

	f->load_pending = false;
	if (job->rc < 0) {
		bool again = f->last_error == NULL ||
			     strcmp(f->last_error, job->error) != 0;

		free(f->last_error);
		f->last_error = xstrdup(job->error);
		if (again)
			log_msg(LOG_ERROR_L, "hooks",
				"%s%s", job->error,
				f->loaded ? " (the previous version keeps "
					    "running)" : " (not loaded)");
		return;
	}
	free(f->last_error);
	f->last_error = NULL;
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
	f->loaded = true;
	f->loaded_ms = now_ms();
	if (f->removed)
		return;
	if (same) {
		f->h->priority = f->priority;
		f->h->timeout_ms = f->timeout_sum + 2000;
		return;
	}
	luafile_unregister(f);
	if (json_array_size(f->patterns) > 0)
		luafile_register(f);
}

static void luafile_load(struct luafile *f, const struct stat *st)
{
	struct hooks_job *job;

	f->sig = *st;
	if (!f->thread_running || f->load_pending)
		return;
	job = xcalloc(1, sizeof(*job));
	job->kind = HOOKS_JOB_LOAD;
	job->sig = *st;
	f->load_pending = true;
	luafile_queue(f, job);
}

/* The file is gone: unregister, let the thread finish and quit. */
static void luafile_remove(struct luafile *f)
{
	struct hooks_job *job;

	f->removed = true;
	luafile_unregister(f);
	if (f->thread_running) {
		job = xcalloc(1, sizeof(*job));
		job->kind = HOOKS_JOB_QUIT;
		luafile_queue(f, job);
	}
	luafile_unref(f); /* hk->lua's */
}

/* ---- completions on the loop thread ------------------------------------- */

static void hooks_job_done(struct hooks *hk, struct hooks_job *job)
{
	struct luafile *f = job->f;

	switch (job->kind) {
	case HOOKS_JOB_LOAD:
		luafile_apply_load(f, job);
		break;
	case HOOKS_JOB_EVENT:
		job->d->hdata = NULL;
		dispatch_done(job->d, job->rc, job->error);
		break;
	case HOOKS_JOB_PRE:
		hooks_check_job_done(job);
		break;
	case HOOKS_JOB_QUIT:
		pthread_join(f->thread, NULL);
		f->thread_running = false;
		hooks_job_free(job);
		luafile_unref(f);
		return;
	}
	(void)hk;
	hooks_job_free(job);
}

static void hooks_async_cb(uv_async_t *a)
{
	struct hooks *hk = a->data;
	struct hooks_job *job, *next;

	pthread_mutex_lock(&hk->done_mu);
	job = hk->done_head;
	hk->done_head = hk->done_tail = NULL;
	pthread_mutex_unlock(&hk->done_mu);
	for (; job != NULL; job = next) {
		next = job->next;
		hooks_job_done(hk, job);
	}
}

/* ---- exec hooks ---------------------------------------------------------- */

static void execfile_unref(struct execfile *x)
{
	if (x == NULL || --x->refs > 0)
		return;
	free(x->path);
	free(x->rel);
	free(x->pattern);
	free(x->last_error);
	hooks_unref(x->hk);
	free(x);
}

static void exec_run_cb(struct exechook_result *res, void *ctx)
{
	struct exec_run *r = ctx;
	struct execfile *x = r->x;
	char *error = NULL;
	int rc;

	rc = exechook_result_rc(res, r->timeout_ms, &error);
	if (!x->hk->stopped) {
		if (rc == 0 && (res->out_len > 0 || res->err_len > 0))
			log_msg(LOG_DEBUG_L, "hooks", "%s: exit 0; stdout: "
				"%.*s; stderr: %.*s", x->rel,
				(int)res->out_len, res->out,
				(int)res->err_len, res->err);
		if (error != NULL) {
			char *full = xasprintf("%s: %s", x->rel, error);

			free(error);
			error = full;
		}
		r->d->hdata = NULL;
		dispatch_done(r->d, rc, error);
	}
	free(error);
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		x->hk->exec_runs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	execfile_unref(x);
	free(r);
}

static void exec_handler_deliver(struct handler *h, struct delivery *d)
{
	struct execfile *x = h->data;
	struct hooks *hk = x->hk;
	struct exec_run *r;
	struct exechook_opts o;
	char id[64], type[128], subject[300], attempt[48];
	const char *argv[2] = { x->path, NULL };
	const char *env[] = { HOOKS_EXEC_PATH, id, type, subject, attempt,
			      "LANG=C.UTF-8", NULL };
	const char *err = NULL;
	char *why = NULL;
	int ret;

	/* check again right before running (TOCTOU) */
	ret = exechook_check_file(x->path, hooks_owner(), &why);
	if (ret < 0) {
		dispatch_done(d, ret == -ENOEXEC ? -EPERM : ret, why);
		free(why);
		return;
	}
	snprintf(id, sizeof(id), "OPHOOK_ID=%lld", (long long)d->ev->pub.id);
	snprintf(type, sizeof(type), "OPHOOK_EVENT=%s", d->ev->type);
	snprintf(subject, sizeof(subject), "OPHOOK_SUBJECT=%s", d->ev->subject);
	snprintf(attempt, sizeof(attempt), "OPHOOK_ATTEMPT=%u",
		 d->attempts + 1);
	memset(&o, 0, sizeof(o));
	o.argv = argv;
	o.env = env;
	o.cwd = "/";
	o.stdin_data = d->ev->json;
	o.stdin_len = d->ev->json != NULL ? strlen(d->ev->json) : 0;
	o.timeout_ms = hk->cfg->hooks.timeout_ms;
	o.output_max = hk->cfg->hooks.output_max;
	r = xcalloc(1, sizeof(*r));
	r->x = x;
	r->d = d;
	r->timeout_ms = o.timeout_ms;
	delivery_started(d);
	ret = exechook_spawn(hk->loop, &o, exec_run_cb, r, &r->p, &err);
	if (ret < 0) {
		char *msg = xasprintf("%s: cannot run: %s", x->rel, err);

		free(r);
		dispatch_done(d, ret, msg);
		free(msg);
		return;
	}
	x->refs++;
	d->hdata = r;
	r->next = hk->exec_runs;
	if (hk->exec_runs != NULL)
		hk->exec_runs->prev = r;
	hk->exec_runs = r;
}

static void exec_handler_cancel(struct handler *h, struct delivery *d)
{
	struct exec_run *r = d->hdata;

	(void)h;
	if (r != NULL && r->p != NULL)
		exechook_kill(r->p);
}

static void exec_handler_free(struct handler *h)
{
	execfile_unref(h->data);
	h->data = NULL;
}

static const struct handler_ops exec_handler_ops = {
	.deliver = exec_handler_deliver,
	.cancel = exec_handler_cancel,
	.free = exec_handler_free,
};

static void execfile_register(struct execfile *x, unsigned order)
{
	struct handler *h;
	const char *err = NULL;
	char *name = xasprintf("exec:%s", x->rel);

	h = handler_new(&exec_handler_ops, name);
	free(name);
	handler_add_pattern(h, x->pattern);
	h->priority = (int)order; /* run-parts order, as a hint */
	h->timeout_ms = x->hk->cfg->hooks.timeout_ms +
			EXECHOOK_KILL_DELAY_MS + 3000;
	h->data = x;
	x->refs++;
	if (engine_handler_add(x->hk->e, h, &err) < 0) {
		log_msg(LOG_ERROR_L, h->name, "cannot register: %s", err);
		handler_free_unowned(&h);
		return;
	}
	x->ok = true;
}

static void execfile_unregister(struct execfile *x)
{
	char *name;

	if (!x->ok)
		return;
	x->ok = false;
	name = xasprintf("exec:%s", x->rel);
	engine_handler_remove(x->hk->e, name);
	free(name);
}

/* ---- scanning hooks_dir ------------------------------------------------- */

static int hooks_name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir (NULL-terminated, caller frees), NULL if missing. */
static char **hooks_list_dir(const char *dir)
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

static void hooks_free_names(char **names)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

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
			f = luafile_new(hk, path, name);
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
		f = luafile_new(hk, path, name);
		hmap_put(hk->lua, name, f);
	}
	luafile_load(f, &st);
	free(path);
}

static bool hooks_pattern_ok(const char *p)
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
			execfile_unregister(x);
		} else if (!x->ok) {
			log_msg(LOG_INFO_L, "hooks", "%s: exec hook for '%s'",
				rel, pattern);
			execfile_register(x, *order);
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
		luafile_remove(f);
		free(g.keys[i]);
	}
	free(g.keys);
	memset(&g, 0, sizeof(g));
	g.hk = hk;
	hmap_each(hk->exec, hooks_collect_gone, &g);
	for (size_t i = 0; i < g.n; i++) {
		struct execfile *x = hmap_del(hk->exec, g.keys[i]);

		log_msg(LOG_INFO_L, "hooks", "%s: removed", g.keys[i]);
		execfile_unregister(x);
		execfile_unref(x);
		free(g.keys[i]);
	}
	free(g.keys);
}

/* ---- control: check ------------------------------------------------------ */

static void hooks_check_free(struct hooks_check *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->slots[i].file);
		free(c->slots[i].reason);
		free(c->slots[i].error);
	}
	free(c->slots);
	free(c->intent);
	json_decref(c->request);
	hooks_unref(c->hk);
	free(c);
}

static void hooks_check_reply(struct hooks_check *c)
{
	json_t *res = json_object(), *ran = json_array();
	const char *reason = NULL, *hook = NULL;
	bool allow = true;
	char *text;

	for (size_t i = 0; i < c->n; i++) {
		struct hooks_check_slot *s = &c->slots[i];

		json_array_append_new(ran, json_pack("{sssbss?ss?}", "file",
						     s->file, "deny",
						     s->deny || s->rc < 0,
						     "reason", s->reason,
						     "error", s->error));
		if (!allow)
			continue;
		if (s->rc < 0) {
			/* a check that cannot run cannot say yes */
			allow = false;
			reason = s->error != NULL ? s->error : "hook failed";
			hook = s->file;
		} else if (s->deny) {
			allow = false;
			reason = s->reason;
			hook = s->file;
		}
	}
	json_object_set_new(res, "allow", json_boolean(allow));
	json_object_set_new(res, "intent", json_string(c->intent));
	json_object_set_new(res, "reason", reason != NULL ? json_string(reason)
							  : json_null());
	json_object_set_new(res, "hook", hook != NULL ? json_string(hook)
						      : json_null());
	json_object_set_new(res, "hooks", ran);
	if (allow)
		text = xasprintf("allow: %s (%zu pre hook(s))", c->intent,
				 c->n);
	else
		text = xasprintf("deny: %s: %s (%s)", c->intent,
				 reason != NULL ? reason : "denied", hook);
	control_reply_ok(&c->reply, res, text, allow ? 0 : 1);
	free(text);
	hooks_check_free(c);
}

static void hooks_check_job_done(struct hooks_job *job)
{
	struct hooks_check *c = job->check;
	struct hooks_check_slot *s = &c->slots[job->check_slot];

	s->rc = job->rc;
	s->deny = job->deny;
	s->reason = job->reason;
	job->reason = NULL;
	s->error = job->error;
	job->error = NULL;
	if (--c->pending == 0)
		hooks_check_reply(c);
}

static bool hooks_key_ok(const char *k, size_t n)
{
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((k[i] >= 'a' && k[i] <= 'z') ||
		      (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
			return false;
	}
	return true;
}

struct hooks_collect {
	struct luafile **files;
	size_t n;
	const char *intent;
};

static bool hooks_collect_pre(const char *key, void *value, void *ctx)
{
	struct hooks_collect *c = ctx;
	struct luafile *f = value;
	size_t i;
	json_t *v;

	(void)key;
	if (!f->loaded || f->intents == NULL)
		return true;
	json_array_foreach(f->intents, i, v) {
		if (strcmp(json_string_value(v), c->intent) == 0) {
			c->files = xrealloc(c->files,
					    (c->n + 1) * sizeof(*c->files));
			c->files[c->n++] = f;
			break;
		}
	}
	return true;
}

static int hooks_file_cmp(const void *a, const void *b)
{
	const struct luafile *x = *(struct luafile *const *)a;
	const struct luafile *y = *(struct luafile *const *)b;

	return strcmp(x->name, y->name);
}

static void hooks_cmd_check(struct control_reply *reply, json_t *args,
			    json_t *req, void *ctx)
{
	struct hooks *hk = ctx;
	struct hooks_collect col = { 0 };
	struct hooks_check *c;
	const char *intent;
	json_t *request;
	size_t i;
	json_t *v;

	(void)req;
	intent = json_string_value(json_array_get(args, 0));
	if (intent == NULL) {
		control_reply_error(&reply, 2, "usage: check INTENT "
				    "[key=value...]");
		return;
	}
	if (!hooks_pattern_ok(intent) || strchr(intent, '*') != NULL) {
		control_reply_error(&reply, 2, "check: invalid intent '%s' "
				    "(1-64 of [a-z0-9_.])", intent);
		return;
	}
	request = json_pack("{ss}", "intent", intent);
	json_array_foreach(args, i, v) {
		const char *a = json_string_value(v), *eq;

		if (i == 0)
			continue;
		eq = a != NULL ? strchr(a, '=') : NULL;
		if (eq == NULL || !hooks_key_ok(a, (size_t)(eq - a))) {
			json_decref(request);
			control_reply_error(&reply, 2, "check: argument %zu "
					    "'%s' is not key=value (key: "
					    "[a-z0-9_])", i, a != NULL ? a : "");
			return;
		}
		{
			char *k = xstrndup(a, (size_t)(eq - a));
			json_t *val = json_string(eq + 1);

			if (val == NULL) {
				free(k);
				json_decref(request);
				control_reply_error(&reply, 2, "check: "
						    "argument %zu is not "
						    "UTF-8", i);
				return;
			}
			json_object_set_new(request, k, val);
			free(k);
		}
	}
	col.intent = intent;
	hmap_each(hk->lua, hooks_collect_pre, &col);
	if (col.n > 1)
		qsort(col.files, col.n, sizeof(*col.files), hooks_file_cmp);
	c = xcalloc(1, sizeof(*c));
	c->hk = hk;
	hk->refs++;
	c->reply = reply;
	c->intent = xstrdup(intent);
	c->request = request;
	c->n = c->pending = col.n;
	c->slots = xcalloc(col.n + 1, sizeof(*c->slots));
	if (col.n == 0) {
		free(col.files);
		hooks_check_reply(c);
		return;
	}
	for (i = 0; i < col.n; i++) {
		struct hooks_job *job;

		c->slots[i].file = xstrdup(col.files[i]->name);
		if (col.files[i]->stuck || !col.files[i]->thread_running) {
			c->slots[i].rc = -EIO;
			c->slots[i].error = xasprintf(
				"%s: disabled: a call never returned",
				col.files[i]->name);
			c->pending--;
			continue;
		}
		job = xcalloc(1, sizeof(*job));
		job->kind = HOOKS_JOB_PRE;
		job->check = c;
		job->check_slot = i;
		atomic_init(&job->cancel, false);
		luafile_queue(col.files[i], job);
	}
	free(col.files);
	if (c->pending == 0)
		hooks_check_reply(c);
}

/* ---- control: hooks.list ------------------------------------------------- */

struct hooks_list_ctx {
	json_t *arr;
	char *text;
};

static void hooks_text_add(char **text, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void hooks_text_add(char **text, const char *fmt, ...)
{
	va_list ap;
	char *add, *old = *text;

	va_start(ap, fmt);
	if (vasprintf(&add, fmt, ap) < 0)
		abort();
	va_end(ap);
	*text = xasprintf("%s%s", old != NULL ? old : "", add);
	free(old);
	free(add);
}

static bool hooks_list_lua(const char *key, void *value, void *ctx)
{
	struct hooks_list_ctx *l = ctx;
	struct luafile *f = value;
	const char *state = f->stuck ? "disabled" : f->loaded ? (f->last_error != NULL
						 ? "loaded (newer version "
						   "failed)"
						 : "loaded")
				      : (f->load_pending ? "loading" : "error");

	json_array_append_new(l->arr, json_pack(
		"{sssssssososiss?}", "file", key, "kind", "lua",
		"state", state,
		"patterns", f->patterns != NULL ? json_incref(f->patterns)
						: json_array(),
		"intents", f->intents != NULL ? json_incref(f->intents)
					      : json_array(),
		"priority", f->priority, "last_error", f->last_error));
	hooks_text_add(&l->text, "%-32s lua   %-8s %s\n", key,
		       f->loaded && !f->stuck ? "loaded" : state,
		       f->last_error != NULL ? f->last_error : "");
	return true;
}

static bool hooks_list_exec(const char *key, void *value, void *ctx)
{
	struct hooks_list_ctx *l = ctx;
	struct execfile *x = value;

	json_array_append_new(l->arr, json_pack(
		"{sssssssss?}", "file", key, "kind", "exec",
		"state", x->ok ? "ok" : "refused",
		"pattern", x->pattern, "last_error", x->last_error));
	hooks_text_add(&l->text, "%-32s exec  %-8s %s\n", key,
		       x->ok ? "ok" : "refused",
		       x->last_error != NULL ? x->last_error : "");
	return true;
}

static void hooks_cmd_list(struct control_reply *reply, json_t *args,
			   json_t *req, void *ctx)
{
	struct hooks *hk = ctx;
	struct hooks_list_ctx l = { .arr = json_array() };

	(void)args;
	(void)req;
	hooks_text_add(&l.text, "%-32s %-5s %-8s %s\n", "FILE", "KIND",
		       "STATE", "LAST ERROR");
	hmap_each(hk->lua, hooks_list_lua, &l);
	hmap_each(hk->exec, hooks_list_exec, &l);
	control_reply_ok(&reply, json_pack("{so}", "hooks", l.arr), l.text, 0);
	free(l.text);
}

/* ---- control: hooks.lint, hooks.test (thread pool) ----------------------- */

struct hooks_work {
	uv_work_t req;
	struct hooks *hk;
	struct control_reply *reply;
	bool test;
	char **files;     /* lint: files to check */
	size_t n_files;
	char *file;       /* test */
	char *type;
	json_t *payload;
	/* results */
	json_t *result;
	char *text;
	int exit_status;
};

static void hooks_lint_one(struct hooks_work *w, const char *path,
			   json_t *out, bool *all_ok)
{
	const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1
						       : path;
	struct luahook *lh = NULL;
	char *err = NULL;
	json_t *item;
	int ret;

	if (hooks_ends_with(path, ".lua")) {
		ret = luahook_load(path, base, &w->hk->lim, NULL, &lh, &err);
		item = json_pack("{sssssb}", "file", path, "kind", "lua", "ok",
				 ret == 0);
		if (ret == 0) {
			json_object_set_new(item, "patterns",
					    hooks_lh_list(lh, false));
			json_object_set_new(item, "intents",
					    hooks_lh_list(lh, true));
			hooks_text_add(&w->text, "%s: ok (%zu event "
				       "handler(s), %zu pre hook(s))\n", path,
				       luahook_on_count(lh),
				       luahook_pre_count(lh));
		}
		luahook_free(&lh);
	} else {
		ret = exechook_check_file(path, hooks_owner(), &err);
		item = json_pack("{sssssb}", "file", path, "kind", "exec",
				 "ok", ret == 0);
		if (ret == 0)
			hooks_text_add(&w->text, "%s: ok (exec hook)\n", path);
	}
	if (ret < 0) {
		*all_ok = false;
		json_object_set_new(item, "error", json_string(err));
		hooks_text_add(&w->text, "%s\n", err);
	}
	free(err);
	json_array_append_new(out, item);
}

/* hooks.test on an executable ("#!" first): run it like an exec hook. */
static void hooks_test_exec(struct hooks_work *w)
{
	char id[64], type[128], subject[300];
	const char *argv[2] = { w->file, NULL };
	const char *env[] = { HOOKS_EXEC_PATH, id, type, subject,
			      "OPHOOK_ATTEMPT=1", "LANG=C.UTF-8", NULL };
	const char *serr = NULL, *subj;
	struct exechook_opts o;
	struct exechook_result res;
	char *json, *err = NULL;
	int ret;

	subj = json_string_value(json_object_get(w->payload, "subject"));
	snprintf(id, sizeof(id), "OPHOOK_ID=%lld", (long long)json_integer_value(
			 json_object_get(w->payload, "id")));
	snprintf(type, sizeof(type), "OPHOOK_EVENT=%s", w->type);
	snprintf(subject, sizeof(subject), "OPHOOK_SUBJECT=%s",
		 subj != NULL ? subj : "");
	json = json_dumps(w->payload, JSON_COMPACT);
	memset(&o, 0, sizeof(o));
	o.argv = argv;
	o.env = env;
	o.cwd = "/";
	o.stdin_data = json;
	o.stdin_len = json != NULL ? strlen(json) : 0;
	o.timeout_ms = w->hk->cfg->hooks.timeout_ms;
	o.output_max = w->hk->cfg->hooks.output_max;
	ret = exechook_run_sync(&o, &res, &serr);
	free(json);
	if (ret < 0) {
		w->result = json_pack("{sssssssss}", "file", w->file, "event",
				      w->type, "result", "failed", "error",
				      serr);
		hooks_text_add(&w->text, "%s: cannot run: %s\n", w->file,
			       serr);
		w->exit_status = 1;
		return;
	}
	ret = exechook_result_rc(&res, o.timeout_ms, &err);
	w->result = json_pack("{sssssssisssss?}", "file", w->file, "event",
			      w->type, "result",
			      ret == 0 ? "done"
				       : (ret == OPHOOK_RETRY ? "retry"
							      : "failed"),
			      "exit", res.exit_status, "stdout", res.out,
			      "stderr", res.err, "error", err);
	hooks_text_add(&w->text, "stdout: %s\nstderr: %s\n%s: %s%s%s\n",
		       res.out, res.err, w->file,
		       ret == 0 ? "done"
				: (ret == OPHOOK_RETRY ? "retry" : "failed"),
		       err != NULL ? ": " : "", err != NULL ? err : "");
	w->exit_status = ret == 0 ? 0 : 1;
	free(err);
	exechook_result_clear(&res);
}

static void hooks_test_run(struct hooks_work *w)
{
	const char *base = strrchr(w->file, '/') != NULL
				   ? strrchr(w->file, '/') + 1 : w->file;
	json_t *lines;
	struct luahook *lh = NULL;
	char *err = NULL, *head = NULL;
	unsigned ran = 0;
	size_t hlen = 0;
	int ret;

	if (file_read_nofollow(w->file, 1u << 20, &head, &hlen) == 0 &&
	    hlen >= 2 && head[0] == '#' && head[1] == '!') {
		free(head);
		hooks_test_exec(w);
		return;
	}
	free(head);
	lines = json_array();

	ret = luahook_load(w->file, base, &w->hk->lim, &w->hk->host, &lh, &err);
	if (ret == 0) {
		luahook_capture(lh, lines, true);
		luahook_set_dry_run(lh, true);
		ret = luahook_run_event(lh, w->type, w->payload, 1, NULL, &ran,
					&err);
	}
	w->result = json_pack("{sssssisssOs?}", "file", w->file, "event",
			      w->type, "handlers_run", (int)ran, "result",
			      ret == 0 ? "done"
				       : (ret == OPHOOK_RETRY ? "retry"
							      : "failed"),
			      "log", lines, "error", err);
	for (size_t i = 0; i < json_array_size(lines); i++)
		hooks_text_add(&w->text, "log: %s\n",
			       json_string_value(json_array_get(lines, i)));
	hooks_text_add(&w->text, "%s: %u handler(s) ran for %s: %s%s%s\n",
		       base, ran, w->type,
		       ret == 0 ? "done"
				: (ret == OPHOOK_RETRY ? "retry" : "failed"),
		       err != NULL ? "\n" : "", err != NULL ? err : "");
	w->exit_status = ret == 0 ? 0 : 1;
	json_decref(lines);
	luahook_free(&lh);
	free(err);
}

static void hooks_work_cb(uv_work_t *req)
{
	struct hooks_work *w = req->data;

	if (w->test) {
		hooks_test_run(w);
	} else {
		json_t *out = json_array();
		bool ok = true;

		for (size_t i = 0; i < w->n_files; i++)
			hooks_lint_one(w, w->files[i], out, &ok);
		if (w->n_files == 0)
			hooks_text_add(&w->text, "no hooks\n");
		w->result = json_pack("{sosb}", "files", out, "ok", ok);
		w->exit_status = ok ? 0 : 1;
	}
}

static void hooks_after_work_cb(uv_work_t *req, int status)
{
	struct hooks_work *w = req->data;

	(void)status;
	control_reply_ok(&w->reply, w->result, w->text, w->exit_status);
	w->result = NULL;
	free(w->text);
	for (size_t i = 0; i < w->n_files; i++)
		free(w->files[i]);
	free(w->files);
	free(w->file);
	free(w->type);
	json_decref(w->payload);
	hooks_unref(w->hk);
	free(w);
}

static void hooks_queue_work(struct hooks *hk, struct hooks_work *w)
{
	w->hk = hk;
	hk->refs++;
	w->req.data = w;
	uv_queue_work(hk->loop, &w->req, hooks_work_cb, hooks_after_work_cb);
}

/* Resolve a FILE argument: absolute, relative to the client's "cwd" when
 * it sent one, else relative to hooks_dir.  Non-root peers may only name
 * files inside hooks_dir or readable by everyone.  NULL with *why_r. */
static char *hooks_resolve_arg(struct hooks *hk, const char *arg, json_t *req,
			       unsigned uid, char **why_r)
{
	const char *cwd = json_string_value(json_object_get(req, "cwd"));
	char *path, *real, *dir;
	struct stat st;
	size_t n;

	if (arg[0] == '/')
		path = xstrdup(arg);
	else if (cwd != NULL && cwd[0] == '/')
		path = xasprintf("%s/%s", cwd, arg);
	else
		path = xasprintf("%s/%s", hk->cfg->hooks_dir, arg);
	real = realpath(path, NULL);
	if (real == NULL) {
		*why_r = xasprintf("%s: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	free(path);
	if (uid == 0)
		return real;
	dir = realpath(hk->cfg->hooks_dir, NULL);
	n = dir != NULL ? strlen(dir) : 0;
	if ((dir != NULL && strncmp(real, dir, n) == 0 && real[n] == '/') ||
	    (stat(real, &st) == 0 && (st.st_mode & S_IROTH) != 0)) {
		free(dir);
		return real;
	}
	free(dir);
	*why_r = xasprintf("%s: not in hooks_dir and not readable by "
			   "everyone (only root may name it)", real);
	free(real);
	return NULL;
}

static void hooks_cmd_lint(struct control_reply *reply, json_t *args,
			   json_t *req, void *ctx)
{
	struct hooks *hk = ctx;
	struct hooks_work *w = xcalloc(1, sizeof(*w));
	size_t i;
	json_t *v;

	json_array_foreach(args, i, v) {
		char *why = NULL;
		char *p = hooks_resolve_arg(hk, json_string_value(v) != NULL
						? json_string_value(v) : "",
					    req, control_reply_uid(reply),
					    &why);

		if (p == NULL) {
			control_reply_error(&reply, 2, "hooks lint: %s", why);
			free(why);
			for (size_t k = 0; k < w->n_files; k++)
				free(w->files[k]);
			free(w->files);
			free(w);
			return;
		}
		w->files = xrealloc(w->files, (w->n_files + 1) *
						      sizeof(*w->files));
		w->files[w->n_files++] = p;
	}
	if (json_array_size(args) == 0) {
		/* everything in hooks_dir */
		char **names = hooks_list_dir(hk->cfg->hooks_dir);

		for (size_t k = 0; names != NULL && names[k] != NULL; k++) {
			char *path = xasprintf("%s/%s", hk->cfg->hooks_dir,
					       names[k]);

			if (hooks_ends_with(names[k], ".lua")) {
				w->files = xrealloc(w->files,
						    (w->n_files + 1) *
							    sizeof(*w->files));
				w->files[w->n_files++] = path;
				continue;
			}
			if (hooks_ends_with(names[k], ".d")) {
				char **sub = hooks_list_dir(path);

				for (size_t j = 0; sub != NULL &&
						   sub[j] != NULL; j++) {
					if (!exechook_name_ok(sub[j]))
						continue;
					w->files = xrealloc(
						w->files, (w->n_files + 1) *
								  sizeof(*w->files));
					w->files[w->n_files++] = xasprintf(
						"%s/%s", path, sub[j]);
				}
				hooks_free_names(sub);
			}
			free(path);
		}
		hooks_free_names(names);
	}
	w->reply = reply;
	hooks_queue_work(hk, w);
}

static void hooks_cmd_test(struct control_reply *reply, json_t *args,
			   json_t *req, void *ctx)
{
	struct hooks *hk = ctx;
	const char *file = NULL, *type = NULL, *payload = NULL;
	const char *subject = NULL;
	char *path, *ppath = NULL, *why = NULL, *data = NULL;
	json_t *p = NULL;
	json_error_t jerr;
	struct hooks_work *w;
	size_t len, n = json_array_size(args);
	const char *twhy = NULL;

	for (size_t i = 0; i < n; i++) {
		const char *a = json_string_value(json_array_get(args, i));
		const char *next = i + 1 < n ? json_string_value(
						       json_array_get(args, i + 1))
					     : NULL;

		if (a == NULL)
			continue;
		if (strcmp(a, "--event") == 0 && next != NULL) {
			type = next;
			i++;
		} else if (strcmp(a, "--payload") == 0 && next != NULL) {
			payload = next;
			i++;
		} else if (strcmp(a, "--subject") == 0 && next != NULL) {
			subject = next;
			i++;
		} else if (file == NULL && a[0] != '-') {
			file = a;
		} else {
			control_reply_error(&reply, 2, "hooks test: unexpected "
					    "argument '%s'", a);
			return;
		}
	}
	if (file == NULL || type == NULL) {
		control_reply_error(&reply, 2, "usage: hooks test FILE --event "
				    "TYPE [--payload FILE.json] [--subject S]");
		return;
	}
	if (event_type_valid(type, &twhy) < 0) {
		control_reply_error(&reply, 2, "hooks test: event type '%s': "
				    "%s", type, twhy);
		return;
	}
	path = hooks_resolve_arg(hk, file, req, control_reply_uid(reply), &why);
	if (path == NULL)
		goto fail;
	if (payload != NULL) {
		ppath = hooks_resolve_arg(hk, payload, req,
					  control_reply_uid(reply), &why);
		if (ppath == NULL)
			goto fail;
		int r = file_read_nofollow(ppath, HOOKS_PAYLOAD_MAX, &data,
					   &len);

		if (r < 0) {
			why = xasprintf("%s: %s", ppath, strerror(-r));
			goto fail;
		}
		p = json_loadb(data, len, 0, &jerr);
		free(data);
		if (p == NULL || !json_is_object(p)) {
			why = p == NULL ? xasprintf("%s:%d:%d: %s", ppath,
						    jerr.line, jerr.column,
						    jerr.text)
					: xasprintf("%s: not a JSON object",
						    ppath);
			json_decref(p);
			goto fail;
		}
	} else {
		p = json_object();
	}
	/* the standard fields, where the payload has none */
	if (json_object_get(p, "type") == NULL)
		json_object_set_new(p, "type", json_string(type));
	if (json_object_get(p, "id") == NULL)
		json_object_set_new(p, "id", json_integer(0));
	if (json_object_get(p, "source") == NULL)
		json_object_set_new(p, "source", json_string("test"));
	if (json_object_get(p, "node") == NULL && hk->cfg->node != NULL)
		json_object_set_new(p, "node", json_string(hk->cfg->node));
	if (json_object_get(p, "time") == NULL) {
		char tbuf[40];

		time_format_ms(now_ms(), tbuf, sizeof(tbuf));
		json_object_set_new(p, "time", json_string(tbuf));
	}
	if (json_object_get(p, "subject") == NULL) {
		const char *d = json_string_value(json_object_get(p, "domain"));

		json_object_set_new(p, "subject",
				    json_string(subject != NULL ? subject
						: (d != NULL ? d : "test")));
	}
	w = xcalloc(1, sizeof(*w));
	w->test = true;
	w->file = path;
	w->type = xstrdup(type);
	w->payload = p;
	w->reply = reply;
	free(ppath);
	hooks_queue_work(hk, w);
	return;
fail:
	control_reply_error(&reply, 2, "hooks test: %s", why);
	free(why);
	free(path);
	free(ppath);
}

/* ---- start / stop ----------------------------------------------------------- */

const struct control_command hooks_commands[] = {
	{"check", hooks_cmd_check},
	{"hooks.list", hooks_cmd_list},
	{"hooks.lint", hooks_cmd_lint},
	{"hooks.test", hooks_cmd_test},
	{NULL, NULL},
};

/* Fail the jobs still queued for a stuck file (loop thread). */
static void luafile_drain(struct luafile *f)
{
	struct hooks_job *job, *next;

	pthread_mutex_lock(&f->mu);
	job = f->q_head;
	f->q_head = f->q_tail = NULL;
	pthread_mutex_unlock(&f->mu);
	for (; job != NULL; job = next) {
		next = job->next;
		job->rc = -EIO;
		free(job->error);
		job->error = xasprintf("%s: disabled: a call never returned",
				       f->name);
		if (job->kind == HOOKS_JOB_LOAD) {
			f->load_pending = false;
			hooks_job_free(job);
			continue;
		}
		hooks_job_done(f->hk, job);
	}
}

/* The hard backstop: the instruction hook cannot stop a call stuck inside
 * one C function (a pathological string.find).  When a call is still
 * running well past its deadline, disable the file: unregister it, fail
 * what is queued for it, and leave its thread behind; a new version of
 * the file gets a fresh thread and state. */
static bool hooks_watch_lua(const char *key, void *value, void *ctx)
{
	struct luafile *f = value;
	struct hooks *hk = ctx;
	int64_t limit, running = -1;

	(void)key;
	if (f->stuck || !f->thread_running)
		return true;
	limit = (int64_t)(f->timeout_sum > hk->lim.timeout_ms
				  ? f->timeout_sum : hk->lim.timeout_ms) +
		HOOKS_STUCK_GRACE_MS;
	pthread_mutex_lock(&f->mu);
	if (f->cur != NULL) {
		running = mono_ms() - f->cur_started_ms;
		if (running > limit)
			atomic_store(&f->cur->cancel, true);
	}
	pthread_mutex_unlock(&f->mu);
	if (running <= limit)
		return true;
	f->stuck = true;
	free(f->last_error);
	f->last_error = xasprintf("%s: disabled: a call has been running for "
				  "%lld ms, past its deadline, inside a C "
				  "function; the file stays disabled until "
				  "it changes", f->name, (long long)running);
	log_msg(LOG_ERROR_L, "hooks", "%s", f->last_error);
	luafile_unregister(f);
	luafile_drain(f);
	return true;
}

static void hooks_timer_cb(uv_timer_t *t)
{
	struct hooks *hk = t->data;

	hmap_each(hk->lua, hooks_watch_lua, hk);
	hooks_scan(hk);
}

static void hooks_free(struct hooks *hk)
{
	hmap_free(&hk->lua, NULL);
	hmap_free(&hk->exec, NULL);
	pthread_mutex_destroy(&hk->done_mu);
	pthread_cond_destroy(&hk->done_cond);
	free(hk);
}

static void hooks_unref(struct hooks *hk)
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
		hooks_async_cb(&hk->async);
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
	hk->lim.file_roots = cfg->hooks.file_roots;
	hk->lim.n_file_roots = cfg->hooks.n_file_roots;
	hk->host.emit = hooks_host_emit;
	hk->host.db_query = hooks_host_db_query;
	hk->host.own_write = hooks_host_own_write;
	hk->host.ctx = hk;
	hk->lua = hmap_new();
	hk->exec = hmap_new();
	pthread_mutex_init(&hk->done_mu, NULL);
	pthread_cond_init(&hk->done_cond, NULL);
	uv_async_init(hk->loop, &hk->async, hooks_async_cb);
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

static bool hooks_stop_lua(const char *key, void *value, void *ctx)
{
	struct luafile *f = value;
	struct hooks *hk = ctx;
	struct hooks_job *job, *next;
	struct timespec ts;

	(void)key;
	if (!f->thread_running)
		return true;
	pthread_mutex_lock(&f->mu);
	for (job = f->q_head; job != NULL; job = next) {
		next = job->next;
		hooks_job_free(job);
	}
	f->q_head = f->q_tail = NULL;
	if (f->cur != NULL)
		atomic_store(&f->cur->cancel, true);
	job = xcalloc(1, sizeof(*job));
	job->kind = HOOKS_JOB_QUIT;
	job->f = f;
	f->q_head = f->q_tail = job;
	pthread_cond_signal(&f->cond);
	pthread_mutex_unlock(&f->mu);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += HOOKS_JOIN_WAIT_S;
	if (pthread_timedjoin_np(f->thread, NULL, &ts) != 0) {
		log_msg(LOG_WARN_L, "hooks", "%s: the hook's thread did not "
			"stop; leaving it", f->name);
		pthread_detach(f->thread);
		hk->leak = true;
		return true;
	}
	f->thread_running = false;
	return true;
}

static bool hooks_stop_exec(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	execfile_unregister(value);
	execfile_unref(value);
	return true;
}

static bool hooks_stop_lua_free(const char *key, void *value, void *ctx)
{
	struct luafile *f = value;

	(void)key;
	(void)ctx;
	if (f->thread_running)
		return true;
	luafile_unregister(f);
	if (!f->hk->leak) {
		luahook_free(&f->lh);
		f->refs--; /* the thread's reference */
	}
	luafile_unref(f);
	return true;
}

void hooks_stop(struct hooks **hp)
{
	struct hooks *hk = *hp;
	struct hooks_job *job, *next;

	if (hk == NULL)
		return;
	*hp = NULL;
	pthread_mutex_lock(&hk->done_mu);
	hk->stopped = true;
	job = hk->done_head;
	hk->done_head = hk->done_tail = NULL;
	pthread_mutex_unlock(&hk->done_mu);
	for (; job != NULL; job = next) {
		next = job->next;
		if (job->kind == HOOKS_JOB_QUIT) {
			pthread_join(job->f->thread, NULL);
			job->f->thread_running = false;
			luafile_unref(job->f);
		}
		hooks_job_free(job);
	}
	uv_timer_stop(&hk->timer);
	hmap_each(hk->lua, hooks_stop_lua, hk);
	hmap_each(hk->lua, hooks_stop_lua_free, hk);
	/* exec hooks' results are dropped from now on: end their processes
	 * (one still queued on the pool is not made, or killed once made);
	 * each run keeps its execfile and hk until its process is reaped */
	for (struct exec_run *r = hk->exec_runs; r != NULL; r = r->next)
		exechook_kill(r->p);
	hmap_each(hk->exec, hooks_stop_exec, hk);
	hmap_free(&hk->lua, NULL);
	hmap_free(&hk->exec, NULL);
	hk->lua = hmap_new();
	hk->exec = hmap_new();
	uv_close((uv_handle_t *)&hk->timer, hooks_handle_closed);
	uv_close((uv_handle_t *)&hk->async, hooks_handle_closed);
	hooks_unref(hk);
}
