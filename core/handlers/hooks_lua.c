/* The Lua hooks' handler: one thread and one sandbox (struct luahook) per
 * *.lua file, fed jobs by the loop thread (load, event, pre, quit) and
 * posting them back when done; the handler ops that turn deliveries into
 * event jobs; the host functions a hook calls (emit, db query, own
 * write); and the backstop for a call stuck inside a C function. */
#define _GNU_SOURCE
#include "hooks_lua.h"
#include "dispatch.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "event.h"
#include "handler.h"
#include "hooks_cmds.h"
#include "hooks_int.h"
#include "log.h"
#include "luahook.h"
#include "util.h"

#define HOOKS_JOIN_WAIT_S 3
#define HOOKS_STUCK_GRACE_MS 10000

void hooks_lua_job_free(struct hooks_job *job)
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

/* ---- luahook host functions (hook threads) ------------------------------- */

static int hooks_lua_host_emit(void *ctx, const char *type, const char *subject,
			       json_t *fields, char **error_r)
{
	struct hooks *hk = ctx;
	const char *err = NULL;
	int ret;

	pthread_rwlock_rdlock(&hk->host_gate);
	if (hk->host_gone) {
		pthread_rwlock_unlock(&hk->host_gate);
		*error_r = xstrdup("ophookd is stopping");
		return -ESHUTDOWN;
	}
	ret = engine_submit(hk->e, type, subject, "hook", fields, NULL, NULL,
			    &err);
	pthread_rwlock_unlock(&hk->host_gate);
	if (ret < 0)
		*error_r = xstrdup(err != NULL ? err : strerror(-ret));
	return ret;
}

static int hooks_lua_host_db_query(void *ctx, const char *sql, json_t *params,
				   json_t **rows_r, char **error_r)
{
	struct hooks *hk = ctx;
	int ret;

	if (hk->deps.db_query == NULL) {
		*error_r = xstrdup("no panel database");
		return -ENOTCONN;
	}
	pthread_rwlock_rdlock(&hk->host_gate);
	if (hk->host_gone) {
		pthread_rwlock_unlock(&hk->host_gate);
		*error_r = xstrdup("ophookd is stopping");
		return -ESHUTDOWN;
	}
	ret = hk->deps.db_query(hk->deps.db_ctx, sql, params, rows_r, error_r);
	pthread_rwlock_unlock(&hk->host_gate);
	return ret;
}

static void hooks_lua_host_own_write(void *ctx, const char *path)
{
	struct hooks *hk = ctx;

	pthread_rwlock_rdlock(&hk->host_gate);
	if (!hk->host_gone)
		engine_own_write(hk->e, path);
	pthread_rwlock_unlock(&hk->host_gate);
}

void hooks_lua_host_init(struct hooks *hk)
{
	hk->host.emit = hooks_lua_host_emit;
	hk->host.db_query = hooks_lua_host_db_query;
	hk->host.own_write = hooks_lua_host_own_write;
	hk->host.ctx = hk;
}

/* ---- the Lua threads ----------------------------------------------------- */

/* Hand a finished job to the loop thread (or drop it after a stop). */
static void hooks_lua_post(struct hooks *hk, struct hooks_job *job)
{
	pthread_mutex_lock(&hk->done_mu);
	if (hk->stopped) {
		pthread_mutex_unlock(&hk->done_mu);
		hooks_lua_job_free(job);
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

static bool hooks_lua_is_stopped(struct hooks *hk)
{
	bool stopped;

	pthread_mutex_lock(&hk->done_mu);
	stopped = hk->stopped;
	pthread_mutex_unlock(&hk->done_mu);
	return stopped;
}

json_t *hooks_lua_list(struct luahook *lh, bool pre)
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

static void hooks_lua_run_job(struct luafile *f, struct hooks_job *job)
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
			job->patterns = hooks_lua_list(lh, false);
			job->intents = hooks_lua_list(lh, true);
			job->priority = luahook_priority(lh);
			job->timeout_sum = luahook_timeout_sum(lh);
		} else {
			job->intents = hooks_lua_pre_named(f->path);
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

static void *hooks_lua_thread(void *arg)
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

		if (job->kind != HOOKS_JOB_QUIT &&
		    hooks_lua_is_stopped(f->hk)) {
			pthread_mutex_lock(&f->mu);
			f->cur = NULL;
			pthread_mutex_unlock(&f->mu);
			hooks_lua_job_free(job);
			continue;
		}
		hooks_lua_run_job(f, job);
		pthread_mutex_lock(&f->mu);
		f->cur = NULL;
		pthread_mutex_unlock(&f->mu);
		if (job->kind == HOOKS_JOB_QUIT) {
			luahook_free(&f->lh);
			hooks_lua_post(f->hk, job);
			return NULL;
		}
		hooks_lua_post(f->hk, job);
	}
}

/* Queue a job on the file's thread (loop thread). */
void hooks_lua_queue(struct luafile *f, struct hooks_job *job)
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

void hooks_lua_unref(struct luafile *f)
{
	if (f == NULL || --f->refs > 0)
		return;
	json_decref(f->patterns);
	json_decref(f->intents);
	json_decref(f->pre_named);
	free(f->last_error);
	free(f->path);
	free(f->name);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cond);
	hooks_unref(f->hk);
	free(f);
}

struct luafile *hooks_lua_new(struct hooks *hk, const char *path,
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
	if (pthread_create(&f->thread, NULL, hooks_lua_thread, f) == 0) {
		f->thread_running = true;
		f->refs++; /* released when the QUIT job comes back */
	} else {
		f->last_error = xasprintf("%s: cannot start a thread", name);
	}
	return f;
}

/* ---- the Lua handler ----------------------------------------------------- */

static void hooks_lua_deliver(struct handler *h, struct delivery *d)
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
		hooks_lua_job_free(job);
		dispatch_done(d, -EIO, "the hook's thread is not running");
		return;
	}
	hooks_lua_queue(f, job);
}

static void hooks_lua_cancel(struct handler *h, struct delivery *d)
{
	struct hooks_job *job = d->hdata;

	(void)h;
	if (job != NULL)
		atomic_store(&job->cancel, true);
}

static void hooks_lua_handler_free(struct handler *h)
{
	struct luafile *f = h->data;

	if (f != NULL && f->h == h)
		f->h = NULL;
	hooks_lua_unref(f);
	h->data = NULL;
}

static const struct handler_ops hooks_lua_ops = {
	.deliver = hooks_lua_deliver,
	.cancel = hooks_lua_cancel,
	.free = hooks_lua_handler_free,
};

void hooks_lua_register(struct luafile *f)
{
	struct hooks *hk = f->hk;
	struct handler *h;
	const char *err = NULL;
	char *name;
	size_t i;
	json_t *v;

	name = xasprintf("lua:%s", f->name);
	h = handler_new(&hooks_lua_ops, name);
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

void hooks_lua_unregister(struct luafile *f)
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

/* The intents a Lua file's text names in ophook.pre("INTENT", ...): what
 * a file that does not load would have checked (a text scan, so an intent
 * made at run time is not seen).  Read without following a symlink, at
 * most HOOKS_LUA_SCAN_MAX bytes. */
#define HOOKS_LUA_SCAN_MAX (1u << 20)

json_t *hooks_lua_pre_named(const char *path)
{
	json_t *out = json_array();
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	char *buf;
	ssize_t n;

	if (fd < 0)
		return out;
	buf = xmalloc(HOOKS_LUA_SCAN_MAX + 1);
	n = read(fd, buf, HOOKS_LUA_SCAN_MAX);
	close(fd);
	if (n < 0)
		n = 0;
	buf[n] = '\0';
	for (char *p = buf; (p = strstr(p, "ophook.pre")) != NULL;) {
		char q, *end;

		p += strlen("ophook.pre");
		p += strspn(p, " \t\r\n");
		if (*p != '(')
			continue;
		p++;
		p += strspn(p, " \t\r\n");
		q = *p;
		if (q != '"' && q != '\'')
			continue;
		end = strchr(p + 1, q);
		if (end == NULL || end - p - 1 > 64)
			continue;
		*end = '\0';
		if (hooks_pattern_ok(p + 1) && strchr(p + 1, '*') == NULL)
			json_array_append_new(out, json_string(p + 1));
		p = end + 1;
	}
	free(buf);
	return out;
}

/* ---- completions on the loop thread -------------------------------------- */

static void hooks_lua_job_done(struct hooks *hk, struct hooks_job *job)
{
	struct luafile *f = job->f;

	switch (job->kind) {
	case HOOKS_JOB_LOAD:
		hooks_apply_load(f, job);
		break;
	case HOOKS_JOB_EVENT:
		job->d->hdata = NULL;
		dispatch_done(job->d, job->rc, job->error);
		break;
	case HOOKS_JOB_PRE:
		hooks_cmds_check_done(job);
		break;
	case HOOKS_JOB_QUIT:
		pthread_join(f->thread, NULL);
		f->thread_running = false;
		if (f->removed && hk->quitting > 0)
			hk->quitting--;
		hooks_lua_job_free(job);
		hooks_lua_unref(f);
		return;
	}
	(void)hk;
	hooks_lua_job_free(job);
}

void hooks_lua_async_cb(uv_async_t *a)
{
	struct hooks *hk = a->data;
	struct hooks_job *job, *next;

	pthread_mutex_lock(&hk->done_mu);
	job = hk->done_head;
	hk->done_head = hk->done_tail = NULL;
	pthread_mutex_unlock(&hk->done_mu);
	for (; job != NULL; job = next) {
		next = job->next;
		hooks_lua_job_done(hk, job);
	}
}

/* ---- stuck calls, stop --------------------------------------------------- */

/* Fail the jobs still queued for a stuck file (loop thread). */
static void hooks_lua_drain(struct luafile *f)
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
			hooks_lua_job_free(job);
			continue;
		}
		hooks_lua_job_done(f->hk, job);
	}
}

/* The hard backstop: the instruction hook cannot stop a call stuck inside
 * one C function (a pathological string.find).  When a call is still
 * running well past its deadline, disable the file: unregister it, fail
 * what is queued for it, and leave its thread behind; a new version of
 * the file gets a fresh thread and state. */
bool hooks_lua_watch(const char *key, void *value, void *ctx)
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
	hooks_lua_unregister(f);
	hooks_lua_drain(f);
	return true;
}

bool hooks_lua_stop_thread(const char *key, void *value, void *ctx)
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
		hooks_lua_job_free(job);
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

bool hooks_lua_stop_free(const char *key, void *value, void *ctx)
{
	struct luafile *f = value;

	(void)key;
	(void)ctx;
	if (f->thread_running)
		return true;
	hooks_lua_unregister(f);
	if (!f->hk->leak) {
		luahook_free(&f->lh);
		f->refs--; /* the thread's reference */
	}
	hooks_lua_unref(f);
	return true;
}
