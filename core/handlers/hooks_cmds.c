/* The hooks' control commands: check (the pre hooks answer allow or deny
 * for an intent), hooks.list, hooks.lint and hooks.test (these two on the
 * test pool of their own, hooks_cmds_queue_work). */
#define _GNU_SOURCE
#include "hooks_cmds.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "catalogue.h"
#include "config.h"
#include "control.h"
#include "event.h"
#include "exechook.h"
#include "hmap.h"
#include "hooks.h"
#include "hooks_int.h"
#include "hooks_lua.h"
#include "log.h"
#include "luahook.h"
#include "ophook/plugin.h"
#include "util.h"

#define HOOKS_PAYLOAD_MAX (1u << 20)

/* ---- control: check ------------------------------------------------------ */

static void hooks_cmds_check_free(struct hooks_check *c)
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

/* Does a check of intent allow when a pre hook cannot answer
 * (checks.fail_open)? */
static bool hooks_cmds_fail_open(const struct hooks *hk, const char *intent)
{
	const struct config *cfg = hk->cfg;

	for (size_t i = 0; i < cfg->checks.n_fail_open; i++) {
		if (pattern_match(cfg->checks.fail_open[i], intent))
			return true;
	}
	return false;
}

static void hooks_cmds_check_reply(struct hooks_check *c)
{
	json_t *res = json_object(), *ran = json_array();
	const char *reason = NULL, *hook = NULL;
	bool allow = true, open = hooks_cmds_fail_open(c->hk, c->intent);
	bool by_failure = false; /* denied because a hook failed */
	size_t failed = 0;
	char *text;

	for (size_t i = 0; i < c->n; i++) {
		struct hooks_check_slot *s = &c->slots[i];

		json_array_append_new(ran, json_pack("{sssbss?ss?}", "file",
						     s->file, "deny",
						     s->deny || s->rc < 0,
						     "reason", s->reason,
						     "error", s->error));
		failed += s->rc < 0;
		if (!allow)
			continue;
		if (s->rc < 0) {
			/* a check that cannot run cannot say yes, unless
			 * the admin said so for this intent */
			if (open)
				continue;
			allow = false;
			by_failure = true;
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
	/* what a check of this intent does when it cannot be answered */
	json_object_set_new(res, "on_failure",
			    json_string(open ? "open" : "closed"));
	json_object_set_new(res, "failed", json_integer((json_int_t)failed));
	if (allow && failed > 0)
		text = xasprintf("allow: %s (%zu pre hook(s), %zu failed: "
				 "allowed, checks.fail_open)", c->intent,
				 c->n, failed);
	else if (allow)
		text = xasprintf("allow: %s (%zu pre hook(s))", c->intent,
				 c->n);
	else
		text = xasprintf("deny: %s: %s (%s)%s", c->intent,
				 reason != NULL ? reason : "denied", hook,
				 by_failure ? "; a failing check fails closed"
					    : "");
	control_reply_ok(&c->reply, res, text, allow ? 0 : 1);
	free(text);
	hooks_cmds_check_free(c);
}

void hooks_cmds_check_done(struct hooks_job *job)
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
		hooks_cmds_check_reply(c);
}

static bool hooks_cmds_key_ok(const char *k, size_t n)
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

static bool hooks_cmds_collect_pre(const char *key, void *value, void *ctx)
{
	struct hooks_collect *c = ctx;
	struct luafile *f = value;
	size_t i;
	json_t *v;

	(void)key;
	if (!f->loaded && f->pre_named != NULL) {
		/* failed to load: a failing pre hook of what it names */
		json_array_foreach(f->pre_named, i, v) {
			if (strcmp(json_string_value(v), c->intent) == 0) {
				c->files = xrealloc(c->files, (c->n + 1) *
							      sizeof(*c->files));
				c->files[c->n++] = f;
				break;
			}
		}
		return true;
	}
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

static int hooks_cmds_file_cmp(const void *a, const void *b)
{
	const struct luafile *x = *(struct luafile *const *)a;
	const struct luafile *y = *(struct luafile *const *)b;

	return strcmp(x->name, y->name);
}

static void hooks_cmds_check(struct control_reply *reply, json_t *args,
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
	if (catalogue_intent_find(intent) == NULL) {
		/* a typo must not allow silently (ophook-events(7), INTENTS) */
		const char *near = catalogue_intent_suggest(intent);

		if (near != NULL)
			control_reply_error(&reply, 2, "check: unknown intent "
					    "'%s' (did you mean %s?)", intent,
					    near);
		else
			control_reply_error(&reply, 2, "check: unknown intent "
					    "'%s' (`ophookctl types` lists the "
					    "intents)", intent);
		return;
	}
	request = json_pack("{ss}", "intent", intent);
	json_array_foreach(args, i, v) {
		const char *a = json_string_value(v), *eq;

		if (i == 0)
			continue;
		eq = a != NULL ? strchr(a, '=') : NULL;
		if (eq == NULL || !hooks_cmds_key_ok(a, (size_t)(eq - a))) {
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
	hmap_each(hk->lua, hooks_cmds_collect_pre, &col);
	if (col.n > 1)
		qsort(col.files, col.n, sizeof(*col.files),
		      hooks_cmds_file_cmp);
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
		hooks_cmds_check_reply(c);
		return;
	}
	for (i = 0; i < col.n; i++) {
		struct hooks_job *job;

		c->slots[i].file = xstrdup(col.files[i]->name);
		if (!col.files[i]->loaded) {
			c->slots[i].rc = -ENOENT;
			c->slots[i].error = xasprintf(
				"%s: not loaded: %s", col.files[i]->name,
				col.files[i]->last_error != NULL
					? col.files[i]->last_error
					: "load failed");
			c->pending--;
			continue;
		}
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
		hooks_lua_queue(col.files[i], job);
	}
	free(col.files);
	if (c->pending == 0)
		hooks_cmds_check_reply(c);
}

/* ---- control: hooks.list ------------------------------------------------- */

struct hooks_list_ctx {
	json_t *arr;
	char *text;
};

static void hooks_cmds_text_add(char **text, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void hooks_cmds_text_add(char **text, const char *fmt, ...)
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

static bool hooks_cmds_list_lua(const char *key, void *value, void *ctx)
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
	hooks_cmds_text_add(&l->text, "%-32s lua   %-8s %s\n", key,
			    f->loaded && !f->stuck ? "loaded" : state,
			    f->last_error != NULL ? f->last_error : "");
	return true;
}

static bool hooks_cmds_list_exec(const char *key, void *value, void *ctx)
{
	struct hooks_list_ctx *l = ctx;
	struct execfile *x = value;

	json_array_append_new(l->arr, json_pack(
		"{sssssssss?}", "file", key, "kind", "exec",
		"state", x->ok ? "ok" : "refused",
		"pattern", x->pattern, "last_error", x->last_error));
	hooks_cmds_text_add(&l->text, "%-32s exec  %-8s %s\n", key,
			    x->ok ? "ok" : "refused",
			    x->last_error != NULL ? x->last_error : "");
	return true;
}

static bool hooks_errors_lua(const char *key, void *value, void *ctx)
{
	struct luafile *f = value;

	if ((f->loaded && !f->stuck) || f->load_pending)
		return true;
	json_array_append_new(ctx, json_pack(
		"{s:s+,s:s,s:s?}", "name", "lua:", key, "state",
		f->stuck ? "disabled" : "error", "error", f->last_error));
	return true;
}

static bool hooks_errors_exec(const char *key, void *value, void *ctx)
{
	struct execfile *x = value;

	if (x->ok)
		return true;
	json_array_append_new(ctx, json_pack(
		"{s:s+,s:s,s:s?}", "name", "exec:", key, "state", "refused",
		"error", x->last_error));
	return true;
}

json_t *hooks_errors(struct hooks *hk)
{
	json_t *arr = json_array();

	if (hk == NULL)
		return arr;
	hmap_each(hk->lua, hooks_errors_lua, arr);
	hmap_each(hk->exec, hooks_errors_exec, arr);
	return arr;
}

/* The files of one folder named NAME.disabled (prefix "" or "TYPE.d/"),
 * as hooks list rows of state "disabled". */
static void hooks_cmds_list_off(DIR *d, const char *prefix,
				struct hooks_list_ctx *l)
{
	struct dirent *de;

	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n <= 9 || !hooks_ends_with(de->d_name, ".disabled") ||
		    de->d_type != DT_REG)
			continue;
		char *name = xasprintf("%s%.*s", prefix, (int)(n - 9),
				       de->d_name);
		bool lua = prefix[0] == '\0' && hooks_ends_with(name, ".lua");
		json_array_append_new(l->arr, json_pack(
			"{sssssss[]s[]sn}", "file", name, "kind",
			lua ? "lua" : "exec", "state", "disabled", "patterns",
			"intents", "last_error"));
		hooks_cmds_text_add(&l->text, "%-32s %-5s disabled\n", name,
				    lua ? "lua" : "exec");
		free(name);
	}
}

/* The hooks disabled with hooks disable (FILE.disabled in hooks_dir and
 * its TYPE.d folders). */
static void hooks_cmds_list_disabled(struct hooks *hk,
				     struct hooks_list_ctx *l)
{
	DIR *d = hk->hooks_dir != NULL ? opendir(hk->hooks_dir) : NULL;
	struct dirent *de;

	if (d == NULL)
		return;
	hooks_cmds_list_off(d, "", l);
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || !hooks_ends_with(de->d_name, ".d") ||
		    !exechook_name_ok(de->d_name))
			continue;
		int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
				O_CLOEXEC | O_NOFOLLOW);
		DIR *sub = fd >= 0 ? fdopendir(fd) : NULL;
		if (sub == NULL) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		char *prefix = xasprintf("%s/", de->d_name);
		hooks_cmds_list_off(sub, prefix, l);
		free(prefix);
		closedir(sub);
	}
	closedir(d);
}

static void hooks_cmds_list(struct control_reply *reply, json_t *args,
			    json_t *req, void *ctx)
{
	struct hooks *hk = ctx;
	struct hooks_list_ctx l = { .arr = json_array() };

	(void)args;
	(void)req;
	hooks_cmds_text_add(&l.text, "%-32s %-5s %-8s %s\n", "FILE", "KIND",
			    "STATE", "LAST ERROR");
	hmap_each(hk->lua, hooks_cmds_list_lua, &l);
	hmap_each(hk->exec, hooks_cmds_list_exec, &l);
	hooks_cmds_list_disabled(hk, &l);
	control_reply_ok(&reply, json_pack("{so}", "hooks", l.arr), l.text, 0);
	free(l.text);
}

/* ---- control: hooks.enable, hooks.disable -------------------------------- */

/* Open the folder of hooks_dir that holds `rel` (a file's name as hooks
 * list shows it: "x.lua", "x.sh" or "TYPE.d/NAME", one level at most, each
 * part a name the scan accepts, no symlink on the way); *base_r points at
 * its last part.  An fd, or -errno with *why_r. */
static int hooks_cmds_rel_dir(struct hooks *hk, const char *rel,
			      const char **base_r, char **why_r)
{
	const char *slash = strchr(rel, '/');
	const char *base = slash != NULL ? slash + 1 : rel;
	int dfd, sfd;

	if (rel[0] == '\0' || !exechook_name_ok(base) ||
	    (slash != NULL && strchr(base, '/') != NULL)) {
		*why_r = xasprintf("'%s': not a hook file name of hooks_dir", rel);
		return -EINVAL;
	}
	dfd = open(hk->hooks_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC |
		   O_NOFOLLOW);
	if (dfd < 0 || slash == NULL) {
		if (dfd < 0)
			*why_r = xasprintf("hooks_dir %s: %s", hk->hooks_dir,
					   strerror(errno));
		*base_r = base;
		return dfd < 0 ? -errno : dfd;
	}
	char *sub = xstrndup(rel, (size_t)(slash - rel));
	sfd = hooks_ends_with(sub, ".d") && exechook_name_ok(sub)
		? openat(dfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)
		: -1;
	int e = errno;
	close(dfd);
	if (sfd < 0)
		*why_r = xasprintf("'%s': no folder %s/%s", rel, hk->hooks_dir,
				   sub);
	free(sub);
	*base_r = base;
	return sfd < 0 ? -(e != 0 ? e : EINVAL) : sfd;
}

/* Rename hooks_dir/REL to REL.disabled (which the scan skips) or back;
 * the hooks poller unloads or loads it within its interval. */
static void hooks_cmds_toggle(struct control_reply *reply, json_t *args,
			      struct hooks *hk, bool enable)
{
	const char *rel = json_string_value(json_array_get(args, 0));
	const char *base = NULL, *op = enable ? "enable" : "disable";
	char *why = NULL, *off;
	struct stat st;
	int dfd;

	if (json_array_size(args) != 1 || rel == NULL) {
		control_reply_error(&reply, 2, "usage: hooks %s FILE", op);
		return;
	}
	dfd = hooks_cmds_rel_dir(hk, rel, &base, &why);
	if (dfd < 0) {
		control_reply_error(&reply, 2, "hooks %s: %s", op, why);
		free(why);
		return;
	}
	off = xasprintf("%s.disabled", base);
	const char *from = enable ? off : base, *to = enable ? base : off;
	if (fstatat(dfd, from, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode)) {
		control_reply_error(&reply, 1, "hooks %s: %s: no %s hook file "
				    "of that name", op, rel,
				    enable ? "disabled" : "enabled");
	} else if (renameat2(dfd, from, dfd, to, RENAME_NOREPLACE) < 0) {
		control_reply_error(&reply, 2, "hooks %s: %s: %s", op, rel,
				    strerror(errno));
	} else {
		char *text = xasprintf("hook %s: %sd (picked up by the next "
				       "scan of hooks_dir)\n", rel, op);
		log_info("hooks: %s: %sd from the control socket", rel, op);
		control_reply_ok(&reply, json_pack("{ssss}", "file", rel,
						   "state", enable ? "enabled"
							: "disabled"),
				 text, 0);
		free(text);
	}
	free(off);
	close(dfd);
}

static void hooks_cmds_enable(struct control_reply *reply, json_t *args,
			      json_t *req, void *ctx)
{
	(void)req;
	hooks_cmds_toggle(reply, args, ctx, true);
}

static void hooks_cmds_disable(struct control_reply *reply, json_t *args,
			       json_t *req, void *ctx)
{
	(void)req;
	hooks_cmds_toggle(reply, args, ctx, false);
}

/* ---- control: hooks.lint, hooks.test (their own pool) -------------------- */

static int hooks_cmds_trusted(struct hooks *hk, const char *real,
			      char **why_r);

/* hooks.test and hooks.lint run on a small pool of their own, never on
 * libuv's (which runs plugin deliveries and exec hook spawns): a test stuck
 * in a C function (a pathological string.find, which the Lua deadline hook
 * cannot interrupt) then holds one of these threads, not a delivery's.  Past
 * HOOKS_POOL_THREADS + HOOKS_POOL_QUEUE jobs (stuck ones included) a request
 * is answered "busy" at once.  Each job has a watchdog on the loop: past
 * hooks.timeout_ms + HOOKS_POOL_GRACE_MS its client is answered and the job
 * abandoned; its thread keeps its slot until the call really returns, then
 * drops the result.  The threads are detached: stop never waits for them. */
#define HOOKS_POOL_THREADS 2
#define HOOKS_POOL_QUEUE 4
#define HOOKS_POOL_GRACE_MS 2000

enum hooks_work_state {
	HOOKS_WORK_QUEUED,
	HOOKS_WORK_RUNNING,
	HOOKS_WORK_DONE,
};

struct hooks_work {
	struct hooks *hk;
	struct control_reply *reply; /* loop thread; NULL once answered */
	uv_timer_t *timer;           /* loop thread: the watchdog */
	struct hooks_work *lprev, *lnext; /* loop thread: pool->live */
	/* pool->mu */
	struct hooks_work *next;     /* in pool->q or pool->done */
	enum hooks_work_state state;
	bool abandoned;              /* the thread frees it when done */
	/* the request (read by the thread) */
	unsigned uid;     /* the peer's */
	bool test;
	bool live;        /* test: do what the hook does (--live) */
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

/* Shared by the loop thread and the pool's threads; mu guards every field
 * but async and live.  Freed by whoever drops the last reference. */
struct hooks_pool {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	unsigned refs;          /* the loop's (until async closed), threads' */
	unsigned n_threads, n_idle;
	unsigned n_jobs;        /* queued, running or abandoned and running */
	bool closing;
	struct hooks_work *q_head, *q_tail;       /* waiting for a thread */
	struct hooks_work *done_head, *done_tail; /* results for the loop */
	uv_async_t async;
	struct hooks_work *live; /* loop thread: jobs with a reply pending */
};

/* Can execve() run path: "#!" or an ELF binary first?  0, or -ENOEXEC
 * with *why_r (malloc'd). */
static int hooks_cmds_lint_interpreter(const char *path, char **why_r)
{
	char head[4] = "";
	ssize_t n = -1;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0) {
		n = read(fd, head, sizeof(head));
		close(fd);
	}
	if (n < 0) {
		*why_r = xasprintf("%s: %s", path, strerror(errno));
		return -errno;
	}
	if ((n >= 2 && head[0] == '#' && head[1] == '!') ||
	    (n == 4 && memcmp(head, "\177ELF", 4) == 0))
		return 0;
	*why_r = xasprintf("%s: refused: no \"#!\" line (an exec hook must "
			   "start with one, e.g. #!/bin/sh, or be a binary)",
			   path);
	return -ENOEXEC;
}

static void hooks_cmds_lint_one(struct hooks_work *w, const char *path,
				json_t *out, bool *all_ok)
{
	const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1
						       : path;
	struct luahook *lh = NULL;
	char *err = NULL;
	json_t *item;
	int ret;

	if (w->uid != 0 && (ret = hooks_cmds_trusted(w->hk, path, &err)) < 0) {
		/* hooks_dir with no FILE: the files a member may not lint */
		item = json_pack("{sssssb}", "file", path, "kind",
				 hooks_ends_with(path, ".lua") ? "lua" : "exec",
				 "ok", false);
	} else if (!exechook_name_ok(base)) {
		/* what delivery would never see */
		ret = -EINVAL;
		err = xasprintf("%s: refused: the hooks scan skips this name "
				"(a dotfile, a character outside "
				"[A-Za-z0-9_.-], or a backup such as *~, "
				"*.bak, *.disabled, *.dpkg-*)", path);
		item = json_pack("{sssssb}", "file", path, "kind",
				 hooks_ends_with(path, ".lua") ? "lua" : "exec",
				 "ok", false);
	} else if (hooks_ends_with(path, ".lua")) {
		/* the top level runs: dry, as in hooks test */
		json_t *rec = json_array();
		struct luahook_host dry = { .record = rec };

		ret = luahook_load(path, base, &w->hk->lim, &dry, &lh, &err);
		json_decref(rec);
		item = json_pack("{sssssb}", "file", path, "kind", "lua", "ok",
				 ret == 0);
		if (ret == 0) {
			json_object_set_new(item, "patterns",
					    hooks_lua_list(lh, false));
			json_object_set_new(item, "intents",
					    hooks_lua_list(lh, true));
			hooks_cmds_text_add(&w->text, "%s: ok (%zu event "
					    "handler(s), %zu pre hook(s))\n",
					    path, luahook_on_count(lh),
					    luahook_pre_count(lh));
			{
				json_t *warns = hooks_intents_warn(
					path, json_object_get(item, "intents"),
					false);
				size_t k;
				json_t *wv;

				json_array_foreach(warns, k, wv)
					hooks_cmds_text_add(
						&w->text, "%s: warning: %s\n",
						path, json_string_value(wv));
				if (json_array_size(warns) > 0)
					json_object_set(item, "warnings",
							warns);
				json_decref(warns);
			}
		}
		luahook_free(&lh);
	} else {
		ret = exechook_check_file(path, hooks_owner(), &err);
		if (ret == 0)
			ret = hooks_cmds_lint_interpreter(path, &err);
		item = json_pack("{sssssb}", "file", path, "kind", "exec",
				 "ok", ret == 0);
		if (ret == 0)
			hooks_cmds_text_add(&w->text, "%s: ok (exec hook)\n",
					    path);
	}
	if (ret < 0) {
		*all_ok = false;
		json_object_set_new(item, "error", json_string(err));
		hooks_cmds_text_add(&w->text, "%s\n", err);
	}
	free(err);
	json_array_append_new(out, item);
}

/* hooks.test on an executable ("#!" first): run it like an exec hook. */
static void hooks_cmds_test_exec(struct hooks_work *w)
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
	if (!w->live) {
		/* a dry run: what it would get, not run */
		json_t *jenv = json_array();

		for (size_t i = 0; env[i] != NULL; i++)
			json_array_append_new(jenv, json_string(env[i]));
		w->result = json_pack("{sssssssbs[s]sosssss}", "file", w->file,
				      "event", w->type, "result", "dry",
				      "dry_run", true, "argv", w->file,
				      "env", jenv, "cwd", "/", "stdin",
				      json != NULL ? json : "");
		hooks_cmds_text_add(&w->text, "would run %s\n", w->file);
		for (size_t i = 0; env[i] != NULL; i++)
			hooks_cmds_text_add(&w->text, "  env: %s\n", env[i]);
		hooks_cmds_text_add(&w->text, "  cwd: /\n  stdin: %s\n"
				    "%s: dry run, not run (--live runs it)\n",
				    json != NULL ? json : "", w->file);
		free(json);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.argv = argv;
	o.env = env;
	o.cwd = "/";
	o.stdin_data = json;
	o.stdin_len = json != NULL ? strlen(json) : 0;
	o.timeout_ms = w->hk->timeout_ms; /* never cfg: see struct hooks */
	o.output_max = w->hk->output_max;
	ret = exechook_run_sync(&o, &res, &serr);
	free(json);
	if (ret < 0) {
		w->result = json_pack("{sssssssss}", "file", w->file, "event",
				      w->type, "result", "failed", "error",
				      serr);
		hooks_cmds_text_add(&w->text, "%s: cannot run: %s\n", w->file,
				    serr);
		w->exit_status = 1;
		return;
	}
	ret = exechook_result_rc(&res, o.timeout_ms, &err);
	w->result = json_pack("{sssssssissssss?}", "file", w->file, "event",
			      w->type, "result",
			      ret == 0 ? "done"
				       : (ret == OPHOOK_RETRY ? "retry"
							      : "failed"),
			      "exit", res.exit_status, "stdout", res.out,
			      "stderr", res.err, "error", err);
	hooks_cmds_text_add(&w->text, "stdout: %s\nstderr: %s\n%s: %s%s%s\n",
			    res.out, res.err, w->file,
			    ret == 0 ? "done"
				: (ret == OPHOOK_RETRY ? "retry" : "failed"),
			    err != NULL ? ": " : "", err != NULL ? err : "");
	w->exit_status = ret == 0 ? 0 : 1;
	free(err);
	exechook_result_clear(&res);
}

static void hooks_cmds_test_run(struct hooks_work *w)
{
	const char *base = strrchr(w->file, '/') != NULL
				   ? strrchr(w->file, '/') + 1 : w->file;
	json_t *lines, *calls = NULL;
	struct luahook_host host = w->hk->host;
	struct luahook *lh = NULL;
	char *err = NULL, *head = NULL;
	unsigned ran = 0;
	size_t hlen = 0, next_call = 0;
	int ret;

	if (file_read_nofollow(w->file, 1u << 20, &head, &hlen) == 0 &&
	    hlen >= 2 && head[0] == '#' && head[1] == '!') {
		free(head);
		hooks_cmds_test_exec(w);
		return;
	}
	free(head);
	lines = json_array();
	if (!w->live) {
		/* a dry run from the first line on: the top level too */
		calls = json_array();
		host.record = calls;
	}

	ret = luahook_load(w->file, base, &w->hk->lim, &host, &lh, &err);
	if (ret == 0) {
		luahook_capture(lh, lines, true);
		luahook_set_dry_run(lh, true);
		ret = luahook_run_event(lh, w->type, w->payload, 1, NULL, &ran,
					&err);
	}
	w->result = json_pack("{sssssisssOss*}", "file", w->file, "event",
			      w->type, "handlers_run", (int)ran, "result",
			      ret == 0 ? "done"
				       : (ret == OPHOOK_RETRY ? "retry"
							      : "failed"),
			      "log", lines, "error", err);
	json_object_set_new(w->result, "dry_run", json_boolean(!w->live));
	if (calls != NULL)
		json_object_set(w->result, "calls", calls);
	/* the log lines and the calls, in the order they came */
	for (size_t i = 0; i <= json_array_size(lines); i++) {
		for (; next_call < json_array_size(calls); next_call++) {
			json_t *c = json_array_get(calls, next_call);

			if ((size_t)json_integer_value(json_object_get(
				    c, "log_index")) > i)
				break;
			hooks_cmds_text_add(&w->text, "%s\n",
					    json_string_value(json_object_get(
						    c, "text")));
		}
		if (i < json_array_size(lines))
			hooks_cmds_text_add(&w->text, "log: %s\n",
					    json_string_value(
						    json_array_get(lines, i)));
	}
	hooks_cmds_text_add(&w->text, "%s: %u handler(s) ran for %s: %s%s%s%s\n",
			    base, ran, w->type,
			    ret == 0 ? "done"
				     : (ret == OPHOOK_RETRY ? "retry"
							    : "failed"),
			    w->live ? "" : " (dry run: nothing sent, run or "
					   "written; --live does it)",
			    err != NULL ? "\n" : "", err != NULL ? err : "");
	w->exit_status = ret == 0 ? 0 : 1;
	json_decref(lines);
	json_decref(calls);
	luahook_free(&lh);
	free(err);
}

/* Pool thread: run one job. */
static void hooks_cmds_work_run(struct hooks_work *w)
{
	if (w->test) {
		hooks_cmds_test_run(w);
	} else {
		json_t *out = json_array();
		bool ok = true;

		for (size_t i = 0; i < w->n_files; i++)
			hooks_cmds_lint_one(w, w->files[i], out, &ok);
		if (w->n_files == 0)
			hooks_cmds_text_add(&w->text, "no hooks\n");
		w->result = json_pack("{sosb}", "files", out, "ok", ok);
		w->exit_status = ok ? 0 : 1;
	}
}

/* Free what the request and its result hold (not hk's reference). */
static void hooks_cmds_work_free(struct hooks_work *w)
{
	json_decref(w->result);
	free(w->text);
	for (size_t i = 0; i < w->n_files; i++)
		free(w->files[i]);
	free(w->files);
	free(w->file);
	free(w->type);
	json_decref(w->payload);
	free(w);
}

static void hooks_cmds_pool_unref_locked(struct hooks_pool *pool)
{
	if (--pool->refs > 0) {
		pthread_mutex_unlock(&pool->mu);
		return;
	}
	pthread_mutex_unlock(&pool->mu);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->cond);
	free(pool);
}

static void *hooks_cmds_pool_thread(void *arg)
{
	struct hooks_pool *pool = arg;
	struct hooks_work *w;

	pthread_mutex_lock(&pool->mu);
	for (;;) {
		while (!pool->closing && pool->q_head == NULL) {
			pool->n_idle++;
			pthread_cond_wait(&pool->cond, &pool->mu);
			pool->n_idle--;
		}
		if (pool->closing)
			break;
		w = pool->q_head;
		pool->q_head = w->next;
		if (pool->q_head == NULL)
			pool->q_tail = NULL;
		w->next = NULL;
		w->state = HOOKS_WORK_RUNNING;
		pthread_mutex_unlock(&pool->mu);
		hooks_cmds_work_run(w);
		pthread_mutex_lock(&pool->mu);
		if (w->abandoned) {
			/* its client was answered: the late result is
			 * dropped and the slot freed */
			pool->n_jobs--;
			hooks_cmds_work_free(w);
			continue;
		}
		w->state = HOOKS_WORK_DONE;
		if (pool->done_tail != NULL)
			pool->done_tail->next = w;
		else
			pool->done_head = w;
		pool->done_tail = w;
		if (!pool->closing) /* else stop takes it */
			uv_async_send(&pool->async);
	}
	pool->n_threads--;
	hooks_cmds_pool_unref_locked(pool);
	return NULL;
}

static void hooks_cmds_timer_closed(uv_handle_t *h)
{
	free(h);
}

/* Loop thread: answer (if not yet) and forget w on the loop side; the
 * caller then frees w or leaves it to its thread. */
static void hooks_cmds_work_detach(struct hooks_pool *pool,
				   struct hooks_work *w)
{
	if (w->timer != NULL) {
		uv_close((uv_handle_t *)w->timer, hooks_cmds_timer_closed);
		w->timer = NULL;
	}
	if (w->lprev != NULL)
		w->lprev->lnext = w->lnext;
	else
		pool->live = w->lnext;
	if (w->lnext != NULL)
		w->lnext->lprev = w->lprev;
	w->lprev = w->lnext = NULL;
	hooks_unref(w->hk);
}

/* Loop thread: give up on w with `why`; a queued job is freed, a running
 * one is left to its thread.  A finished one is left to the async callback,
 * or answered with its result when `take_done` (at stop). */
static void hooks_cmds_work_abandon(struct hooks_pool *pool,
				    struct hooks_work *w, const char *why,
				    bool take_done)
{
	const char *what = w->test ? "hooks test " : "hooks lint";
	bool mine;

	pthread_mutex_lock(&pool->mu);
	if (w->state == HOOKS_WORK_DONE && !take_done) {
		pthread_mutex_unlock(&pool->mu);
		return; /* its result is on the way */
	}
	if (w->state == HOOKS_WORK_DONE) {
		struct hooks_work **pp = &pool->done_head, *prev = NULL;

		while (*pp != w) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = w->next;
		if (pool->done_tail == w)
			pool->done_tail = prev;
		pool->n_jobs--;
		pthread_mutex_unlock(&pool->mu);
		control_reply_ok(&w->reply, w->result, w->text,
				 w->exit_status);
		w->result = NULL;
		hooks_cmds_work_detach(pool, w);
		hooks_cmds_work_free(w);
		return;
	}
	mine = w->state == HOOKS_WORK_QUEUED;
	if (mine) {
		struct hooks_work **pp = &pool->q_head, *prev = NULL;

		while (*pp != w) {
			prev = *pp;
			pp = &(*pp)->next;
		}
		*pp = w->next;
		if (pool->q_tail == w)
			pool->q_tail = prev;
		pool->n_jobs--;
	} else {
		w->abandoned = true;
	}
	pthread_mutex_unlock(&pool->mu);
	control_reply_error(&w->reply, 1, "%s%s: %s", what,
			    w->test ? w->file : "", why);
	w->reply = NULL;
	hooks_cmds_work_detach(pool, w);
	if (mine)
		hooks_cmds_work_free(w);
}

static void hooks_cmds_watchdog_cb(uv_timer_t *t)
{
	struct hooks_work *w = t->data;
	struct hooks_pool *pool = w->hk->pool;
	unsigned ms = w->hk->cfg->hooks.timeout_ms + HOOKS_POOL_GRACE_MS;
	enum hooks_work_state state;
	char *why;

	pthread_mutex_lock(&pool->mu);
	state = w->state;
	pthread_mutex_unlock(&pool->mu);
	why = state == HOOKS_WORK_QUEUED
		      ? xasprintf("still waiting for a free test thread after "
				  "%u ms (other tests stuck?); abandoned", ms)
		      : xasprintf("still running after %u ms (stuck in a C "
				  "function?); abandoned", ms);
	if (state != HOOKS_WORK_DONE)
		log_msg(LOG_WARN_L, "hooks", "%s%s: %s",
			w->test ? "hooks test " : "hooks lint",
			w->test ? w->file : "", why);
	hooks_cmds_work_abandon(pool, w, why, false);
	free(why);
}

static void hooks_cmds_pool_async_cb(uv_async_t *a)
{
	struct hooks_pool *pool = a->data;
	struct hooks_work *w, *next;

	pthread_mutex_lock(&pool->mu);
	w = pool->done_head;
	pool->done_head = pool->done_tail = NULL;
	for (next = w; next != NULL; next = next->next)
		pool->n_jobs--;
	pthread_mutex_unlock(&pool->mu);
	for (; w != NULL; w = next) {
		next = w->next;
		control_reply_ok(&w->reply, w->result, w->text,
				 w->exit_status);
		w->result = NULL;
		hooks_cmds_work_detach(pool, w);
		hooks_cmds_work_free(w);
	}
}

static void hooks_cmds_pool_closed(uv_handle_t *h)
{
	struct hooks_pool *pool = h->data;

	pthread_mutex_lock(&pool->mu);
	hooks_cmds_pool_unref_locked(pool);
}

void hooks_cmds_pool_stop(struct hooks *hk)
{
	struct hooks_pool *pool = hk->pool;
	struct hooks_work *q;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->closing = true;
	q = pool->q_head;
	pool->q_head = pool->q_tail = NULL;
	for (struct hooks_work *w = q; w != NULL; w = w->next)
		pool->n_jobs--;
	if (pool->n_jobs > 0) {
		/* a thread still runs a job that reads hk: never free it */
		hk->leak = true;
	}
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->mu);
	/* results already back are answered; later ones come with closing
	 * set (no async sent) and are taken below */
	hooks_cmds_pool_async_cb(&pool->async);
	for (struct hooks_work *next; q != NULL; q = next) {
		next = q->next;
		control_reply_error(&q->reply, 2, "%s: the daemon is stopping",
				    q->test ? "hooks test" : "hooks lint");
		hooks_cmds_work_detach(pool, q);
		hooks_cmds_work_free(q);
	}
	while (pool->live != NULL)
		hooks_cmds_work_abandon(pool, pool->live,
					"the daemon is stopping; abandoned",
					true);
	hk->pool = NULL;
	uv_close((uv_handle_t *)&pool->async, hooks_cmds_pool_closed);
}

/* The pool, made at the first test or lint; NULL if it cannot be. */
static struct hooks_pool *hooks_cmds_pool(struct hooks *hk)
{
	struct hooks_pool *pool;

	if (hk->pool != NULL)
		return hk->pool;
	pool = xcalloc(1, sizeof(*pool));
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->refs = 1;
	if (uv_async_init(hk->loop, &pool->async,
			  hooks_cmds_pool_async_cb) < 0) {
		pthread_mutex_destroy(&pool->mu);
		pthread_cond_destroy(&pool->cond);
		free(pool);
		return NULL;
	}
	pool->async.data = pool;
	hk->pool = pool;
	return pool;
}

/* Submit w (which owns its request) and answer its client once done; or
 * answer "busy" at once when the pool is full. */
static void hooks_cmds_queue_work(struct hooks *hk, struct hooks_work *w)
{
	struct hooks_pool *pool = hooks_cmds_pool(hk);
	unsigned busy = 0;
	int ret = 0;

	w->hk = hk; /* before a thread can see it */

	if (pool == NULL) {
		control_reply_error(&w->reply, 2, "%s: cannot make the test "
				    "threads", w->test ? "hooks test"
						       : "hooks lint");
		hooks_cmds_work_free(w);
		return;
	}
	pthread_mutex_lock(&pool->mu);
	if (pool->n_jobs >= HOOKS_POOL_THREADS + HOOKS_POOL_QUEUE) {
		busy = pool->n_jobs;
	} else {
		if (pool->n_idle == 0 &&
		    pool->n_threads < HOOKS_POOL_THREADS) {
			pthread_t t;
			pthread_attr_t attr;

			pthread_attr_init(&attr);
			pthread_attr_setdetachstate(&attr,
						    PTHREAD_CREATE_DETACHED);
			ret = pthread_create(&t, &attr, hooks_cmds_pool_thread,
					     pool);
			pthread_attr_destroy(&attr);
			if (ret == 0) {
				pool->n_threads++;
				pool->refs++;
			}
		}
		if (pool->n_threads == 0) {
			ret = ret != 0 ? ret : EAGAIN;
		} else {
			ret = 0;
			w->state = HOOKS_WORK_QUEUED;
			if (pool->q_tail != NULL)
				pool->q_tail->next = w;
			else
				pool->q_head = w;
			pool->q_tail = w;
			pool->n_jobs++;
			pthread_cond_signal(&pool->cond);
		}
	}
	pthread_mutex_unlock(&pool->mu);
	if (busy > 0 || ret != 0) {
		if (busy > 0)
			control_reply_error(&w->reply, 2, "busy: %u hook tests "
					    "already running, try again", busy);
		else
			control_reply_error(&w->reply, 2, "%s: cannot start a "
					    "test thread: %s", w->test
					    ? "hooks test" : "hooks lint",
					    strerror(ret));
		hooks_cmds_work_free(w);
		return;
	}
	/* loop side: hk's reference, the live list, the watchdog */
	hk->refs++;
	w->lnext = pool->live;
	if (pool->live != NULL)
		pool->live->lprev = w;
	pool->live = w;
	w->timer = xmalloc(sizeof(*w->timer));
	uv_timer_init(hk->loop, w->timer);
	w->timer->data = w;
	uv_timer_start(w->timer, hooks_cmds_watchdog_cb,
		       (uint64_t)hk->cfg->hooks.timeout_ms +
			       HOOKS_POOL_GRACE_MS, 0);
}

/* May a peer who is not root have the daemon (root) load or run `real`
 * (a realpath)?  Only the admin's own hooks: a regular file inside
 * hooks_dir, it and every folder from hooks_dir down to it owned by root
 * (or our uid) and writable by nobody else, so that what was checked is
 * what runs.  0, or -EPERM with *why_r (malloc'd). */
static int hooks_cmds_trusted(struct hooks *hk, const char *real,
			      char **why_r)
{
	/* hk's copy: a pool thread may run this after the daemon freed cfg */
	char *dir = hk->hooks_dir != NULL ? realpath(hk->hooks_dir, NULL) : NULL;
	size_t n = dir != NULL ? strlen(dir) : 0;
	char *p;
	int ret = 0;

	if (dir == NULL || strncmp(real, dir, n) != 0 || real[n] != '/') {
		*why_r = xasprintf("%s: not inside hooks_dir %s (a socket_group "
				   "member may only lint or test the "
				   "installed hooks)", real,
				   hk->hooks_dir != NULL ? hk->hooks_dir : "");
		free(dir);
		return -EPERM;
	}
	p = xstrdup(real);
	for (char *end = p + strlen(p); ret == 0;) {
		struct stat st;

		*end = '\0';
		if (lstat(p, &st) < 0) {
			*why_r = xasprintf("%s: %s", p, strerror(errno));
			ret = -EPERM;
		} else if (end == p + strlen(real) && !S_ISREG(st.st_mode)) {
			*why_r = xasprintf("%s: not a regular file", p);
			ret = -EPERM;
		} else if ((st.st_uid != 0 && st.st_uid != hooks_owner()) ||
			   (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
			*why_r = xasprintf("%s: owned by uid %u, mode %04o: a "
					   "socket_group member may only lint "
					   "or test hooks that root owns and "
					   "only root can write",
					   p, (unsigned)st.st_uid,
					   (unsigned)(st.st_mode & 07777));
			ret = -EPERM;
		}
		if (ret < 0 || (size_t)(end - p) <= n)
			break; /* hooks_dir itself was the last one */
		end = strrchr(p, '/');
		if (end == NULL || (size_t)(end - p) < n)
			break;
	}
	free(p);
	free(dir);
	return ret;
}

/* Resolve a FILE argument: absolute, else relative to hooks_dir (never
 * the client's working folder: ophookctl makes ./x and ../x absolute).  A peer who is not root may
 * only name the admin's hooks (hooks_cmds_trusted).  NULL with *why_r. */
static char *hooks_cmds_resolve_arg(struct hooks *hk, const char *arg,
				    json_t *req, unsigned uid, char **why_r)
{
	char *path, *real;

	(void)req;
	if (arg[0] == '/')
		path = xstrdup(arg);
	else
		path = xasprintf("%s/%s", hk->cfg->hooks_dir, arg);
	real = realpath(path, NULL);
	if (real == NULL) {
		*why_r = xasprintf("%s: %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	free(path);
	if (uid == 0 || hooks_cmds_trusted(hk, real, why_r) == 0)
		return real;
	free(real);
	return NULL;
}

static void hooks_cmds_lint(struct control_reply *reply, json_t *args,
			    json_t *req, void *ctx)
{
	struct hooks *hk = ctx;
	struct hooks_work *w = xcalloc(1, sizeof(*w));
	size_t i;
	json_t *v;

	json_array_foreach(args, i, v) {
		const char *arg = json_string_value(v) != NULL
					  ? json_string_value(v) : "";
		char *why = NULL;
		char *p = hooks_cmds_resolve_arg(hk, arg, req,
						 control_reply_uid(reply),
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
	w->uid = control_reply_uid(reply);
	hooks_cmds_queue_work(hk, w);
}

static void hooks_cmds_test(struct control_reply *reply, json_t *args,
			    json_t *req, void *ctx)
{
	struct hooks *hk = ctx;
	const char *file = NULL, *type = NULL, *payload = NULL;
	const char *subject = NULL, *payload_json = NULL;
	char *path = NULL, *ppath = NULL, *why = NULL, *data = NULL;
	json_t *p = NULL;
	json_error_t jerr;
	struct hooks_work *w;
	size_t len, n = json_array_size(args);
	const char *twhy = NULL;
	bool live = false;

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
		} else if (strcmp(a, "--payload-json") == 0 && next != NULL) {
			/* the payload's text: ophookctl reads --payload FILE
			 * with the caller's own rights and sends this */
			payload_json = next;
			i++;
		} else if (strcmp(a, "--subject") == 0 && next != NULL) {
			subject = next;
			i++;
		} else if (strcmp(a, "--live") == 0) {
			live = true;
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
				    "TYPE [--payload FILE.json] [--subject S] "
				    "[--live]");
		return;
	}
	if (event_type_valid(type, &twhy) < 0) {
		control_reply_error(&reply, 2, "hooks test: event type '%s': "
				    "%s", type, twhy);
		return;
	}
	path = hooks_cmds_resolve_arg(hk, file, req, control_reply_uid(reply),
				      &why);
	if (path == NULL)
		goto fail;
	if (payload != NULL) {
		ppath = hooks_cmds_resolve_arg(hk, payload, req,
					       control_reply_uid(reply), &why);
		if (ppath == NULL)
			goto fail;
		struct stat pst;

		if (control_reply_uid(reply) != 0 &&
		    (stat(ppath, &pst) < 0 || (pst.st_mode & S_IROTH) == 0)) {
			/* its parse errors would quote a root-only file */
			why = xasprintf("%s: not readable by everyone (send "
					"its content with --payload-json)",
					ppath);
			goto fail;
		}
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
	} else if (payload_json != NULL) {
		p = json_loads(payload_json, 0, &jerr);
		if (p == NULL || !json_is_object(p)) {
			why = p == NULL ? xasprintf("payload:%d:%d: %s",
						    jerr.line, jerr.column,
						    jerr.text)
					: xstrdup("payload: not a JSON object");
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
	w->live = live;
	w->file = path;
	w->type = xstrdup(type);
	w->payload = p;
	w->reply = reply;
	w->uid = control_reply_uid(reply);
	free(ppath);
	hooks_cmds_queue_work(hk, w);
	return;
fail:
	control_reply_error(&reply, 2, "hooks test: %s", why);
	free(why);
	free(path);
	free(ppath);
}

const struct control_command hooks_commands[] = {
	{"check", hooks_cmds_check},
	{"hooks.list", hooks_cmds_list},
	{"hooks.enable", hooks_cmds_enable},
	{"hooks.disable", hooks_cmds_disable},
	{"hooks.lint", hooks_cmds_lint},
	{"hooks.test", hooks_cmds_test},
	{NULL, NULL},
};
