/* Private to the Lua host (core/luahook*.c), split by concern as
 * Dovecot's lib-lua is:
 *   luahook.c          a hook's state: load, the one pcall helper (with a
 *                      traceback), the calls into ophook.on / ophook.pre
 *                      handlers, free;
 *   luahook_sandbox.c  the capped allocator, the deadline hook, the safe
 *                      library set;
 *   luahook_json.c     JSON <-> Lua (the events' read-only views);
 *   luahook_api.c      the ophook.* functions;
 *   luahook_http.c     ophook.http.* (webhooks) with libcurl.
 * This header holds struct luahook and what luahook.c lends the others;
 * each other part declares its own in luahook_<part>.h. */
#ifndef OPHOOK_LUAHOOK_INT_H
#define OPHOOK_LUAHOOK_INT_H

#include <jansson.h>
#include <lua.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "luahook.h"

#ifndef OPHOOK_VERSION
#define OPHOOK_VERSION "0"
#endif

#define LUAHOOK_MSGH_SLACK (256 * 1024) /* extra memory for tracebacks */
#define LUAHOOK_DENY_MT "ophook.deny"     /* metatable of ophook.deny() */
#define LUAHOOK_RETRY_KEY "ophook.retry"  /* registry: ophook.retry */

enum luahook_abort {
	LUAHOOK_ABORT_NONE = 0,
	LUAHOOK_ABORT_TIMEOUT,
	LUAHOOK_ABORT_MEMORY,
	LUAHOOK_ABORT_CANCEL,
};

/* One ophook.on or ophook.pre registration. */
struct luahook_reg {
	char *pattern; /* on: event pattern; pre: intent */
	int priority;
	unsigned timeout_ms;
	unsigned seq;
	int ref;       /* the function, in the registry */
};

/* One loaded hook file: its state (used by one thread at a time). */
struct luahook {
	lua_State *L;
	char *name;
	char *who; /* "lua:NAME" for log lines */
	struct luahook_limits lim;
	struct luahook_host host;

	size_t mem_used, mem_max, mem_slack;
	int64_t deadline_ns;
	unsigned call_timeout_ms;
	atomic_bool *cancel;
	enum luahook_abort abort;
	unsigned gen; /* bumped after every call: old event proxies die */
	bool loading;

	struct luahook_reg *ons, *pres;
	size_t n_ons, n_pres;

	json_t *capture;
	bool capture_quiet, dry_run;

	void **tmp; /* C memory to free if a Lua error jumps out */
	size_t n_tmp;
	json_t **tmp_json;
	size_t n_tmp_json;
};


/* The struct luahook of a state (kept in its extra space). */
struct luahook *luahook_of(lua_State *L);
/* C memory (p) or a JSON value (j) held across Lua API calls that may
 * raise: freed at the end of the call if an error jumps out, unless given
 * back first with luahook_tmp_free() / _json_free() (which free it) or
 * luahook_tmp_json_forget() (ownership passed on).  NULL is ignored. */
void luahook_tmp_add(struct luahook *lh, void *p);
void luahook_tmp_free(struct luahook *lh, void *p);
void luahook_tmp_json(struct luahook *lh, json_t *j);
void luahook_tmp_json_forget(struct luahook *lh, json_t *j);
void luahook_tmp_json_free(struct luahook *lh, json_t *j);
/* A malloc'd copy of s (len bytes) cut to max bytes, with a marker. */
char *luahook_trunc(const char *s, size_t len, size_t max);

#endif
