/* Private to the hooks subsystem (core/hooks*.c): what its parts share.
 *   hooks.c       the scan of hooks_dir, load/reload/removal of hook files,
 *                 hooks_start/hooks_stop;
 *   hooks_lua.c   the Lua hooks' handler: one thread and one sandbox per
 *                 file, the jobs it runs, their completions on the loop;
 *   hooks_exec.c  the exec hooks' handler: one process per delivery;
 *   hooks_cmds.c  the control commands (check, hooks.list/lint/test).
 * Everything here runs on the loop thread unless a comment says not. */
#ifndef OPHOOK_HOOKS_INT_H
#define OPHOOK_HOOKS_INT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "hooks.h"
#include "luahook.h"

/* The environment's PATH of exec hooks (and of hooks.test on one). */
#define HOOKS_EXEC_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

struct config;
struct delivery;
struct event;
struct exec_run;
struct handler;
struct hmap;

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

/* Work for a Lua file's thread; back to the loop thread when done. */
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
	json_t *pre_named;    /* no version runs (the load failed): the
				 intents its text names in ophook.pre(...),
				 whose checks count it as a failing hook */
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
	unsigned quitting;    /* loop thread: QUIT jobs of removed files not
				 yet taken back (hooks_stop waits for them) */
	struct hooks_job *done_head, *done_tail;
	bool leak;            /* a thread would not stop: never free */
	struct hooks_pool *pool; /* hooks.test/lint threads (hooks_cmds.c) */
	/* What threads that may outlive the daemon's stop (a hooks.test or
	 * lint stuck in a C function; the pool never waits for them) read:
	 * hk's own copies, never the config, which the daemon frees. */
	char *hooks_dir;      /* cfg->hooks_dir */
	unsigned timeout_ms, output_max;
	char **file_roots;    /* cfg->hooks.file_roots; lim.file_roots */
	/* Host functions (emit, db_query, own_write) reach the engine and the
	 * daemon: hooks_stop sets host_gone under the write lock, so that
	 * none runs once it returns (the daemon then frees them). */
	pthread_rwlock_t host_gate;
	bool host_gone;
};

/* ---- hooks_cmds.c ------------------------------------------------------- */

struct hooks_pool;
/* At stop: answer the pending hooks.test/lint requests, let the pool's
 * threads go (never waited for: one may be stuck in a C function; then hk
 * is leaked, not freed under it).  Loop thread. */
void hooks_cmds_pool_stop(struct hooks *hk);

/* ---- hooks.c ------------------------------------------------------------ */

/* Drop a reference to hk; the last one frees it (unless hk->leak). */
void hooks_unref(struct hooks *hk);
/* True when s ends with suffix and is longer than it. */
bool hooks_ends_with(const char *s, const char *suffix);
/* The uid, besides root, that may own hooks and hooks_dir: ours. */
uid_t hooks_owner(void);
/* An event pattern or intent: 1-64 of [a-z0-9_.*]. */
bool hooks_pattern_ok(const char *p);
/* The sorted names in dir, without dot files (NULL-terminated, free with
 * hooks_free_names()); NULL when dir cannot be opened. */
char **hooks_list_dir(const char *dir);
/* Free what hooks_list_dir() returned (NULL is fine). */
void hooks_free_names(char **names);
/* A load job of f came back: run the new version (register, re-register
 * or adjust its handler) or keep the previous one and log why not. */
void hooks_apply_load(struct luafile *f, struct hooks_job *job);
/* The intents of `intents` (a Lua file's ophook.pre) that are not in the
 * catalogue, as warnings ("ophook.pre('domian.add'): unknown intent ...
 * (did you mean domain.add?)"), logged with name when log.  New array. */
json_t *hooks_intents_warn(const char *name, const json_t *intents,
			   bool log);

#endif
