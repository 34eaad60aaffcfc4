/* One Lua hook's state: load a file (read from one open fd, no symlink
 * followed) into a fresh sandbox and run its top level, the one pcall
 * helper (deadline, traceback, error text), the calls into its
 * ophook.on / ophook.pre handlers, free.  A new version of a file is
 * loaded into a new state (the caller replaces the old one). */
#define _GNU_SOURCE
#include "luahook.h"

#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "luahook_api.h"
#include "luahook_int.h"
#include "luahook_json.h"
#include "luahook_sandbox.h"
#include "ophook/plugin.h"
#include "util.h"

#define LUAHOOK_SOURCE_MAX (4u << 20)

/* ---- small helpers ------------------------------------------------------- */

struct luahook *luahook_of(lua_State *L)
{
	return *(struct luahook **)lua_getextraspace(L);
}

void luahook_tmp_add(struct luahook *lh, void *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < lh->n_tmp; i++) {
		if (lh->tmp[i] == NULL) {
			lh->tmp[i] = p;
			return;
		}
	}
	lh->tmp = xrealloc(lh->tmp, (lh->n_tmp + 1) * sizeof(*lh->tmp));
	lh->tmp[lh->n_tmp++] = p;
}

void luahook_tmp_free(struct luahook *lh, void *p)
{
	for (size_t i = 0; i < lh->n_tmp && p != NULL; i++) {
		if (lh->tmp[i] == p) {
			lh->tmp[i] = NULL;
			break;
		}
	}
	free(p);
}

void luahook_tmp_json(struct luahook *lh, json_t *j)
{
	if (j == NULL)
		return;
	for (size_t i = 0; i < lh->n_tmp_json; i++) {
		if (lh->tmp_json[i] == NULL) {
			lh->tmp_json[i] = j;
			return;
		}
	}
	lh->tmp_json = xrealloc(lh->tmp_json,
				(lh->n_tmp_json + 1) * sizeof(*lh->tmp_json));
	lh->tmp_json[lh->n_tmp_json++] = j;
}

/* Forget j without freeing it (ownership passed on). */
void luahook_tmp_json_forget(struct luahook *lh, json_t *j)
{
	for (size_t i = 0; i < lh->n_tmp_json && j != NULL; i++) {
		if (lh->tmp_json[i] == j) {
			lh->tmp_json[i] = NULL;
			break;
		}
	}
}

void luahook_tmp_json_free(struct luahook *lh, json_t *j)
{
	luahook_tmp_json_forget(lh, j);
	json_decref(j);
}

static void luahook_tmp_clear(struct luahook *lh)
{
	for (size_t i = 0; i < lh->n_tmp; i++) {
		free(lh->tmp[i]);
		lh->tmp[i] = NULL;
	}
	for (size_t i = 0; i < lh->n_tmp_json; i++) {
		json_decref(lh->tmp_json[i]);
		lh->tmp_json[i] = NULL;
	}
}

/* A copy of s cut to max bytes (with a marker). */
char *luahook_trunc(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return xstrndup(s, len);
	return xasprintf("%.*s... [%zu bytes cut]", (int)max, s, len - max);
}

/* ---- panic, the pcall helper --------------------------------------------- */

static int luahook_panic(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	const char *msg = lua_tostring(L, -1);

	log_msg(LOG_ERROR_L, lh != NULL ? lh->who : "lua",
		"unprotected Lua error (panic): %s",
		msg != NULL ? msg : "?");
	abort();
	return 0;
}

/* Message handler: add a traceback (with some memory headroom). */
static int luahook_msgh(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	const char *msg = lua_tostring(L, 1);

	lh->mem_slack = LUAHOOK_MSGH_SLACK;
	if (msg == NULL) {
		if (luaL_callmeta(L, 1, "__tostring") &&
		    lua_type(L, -1) == LUA_TSTRING)
			msg = lua_tostring(L, -1);
		else
			msg = lua_pushfstring(L, "(error object is a %s value)",
					      luaL_typename(L, 1));
	}
	if (strlen(msg) > lh->lim.output_max) /* keep the traceback */
		msg = lua_pushfstring(L, "%s... [cut]",
				      lua_pushlstring(L, msg,
						      lh->lim.output_max));
	luaL_traceback(L, L, msg, 1); /* (sp += 1) */
	return 1;
}

/* Run fn(ud) in protected mode with the deadline; 0 or -errno with
 * *error_r (malloc'd, truncated). */
static int luahook_pcall(struct luahook *lh, lua_CFunction fn, void *ud,
			 unsigned timeout_ms, char **error_r)
{
	lua_State *L = lh->L;
	int status, ret = 0;

	lua_settop(L, 0);
	lua_pushcfunction(L, luahook_msgh);  /* (sp += 1) */
	lua_pushcfunction(L, fn);            /* (sp += 1) */
	lua_pushlightuserdata(L, ud);        /* (sp += 1) */
	lh->abort = LUAHOOK_ABORT_NONE;
	lh->call_timeout_ms = timeout_ms;
	lh->deadline_ns = mono_ns() + (int64_t)timeout_ms * 1000000;
	lh->mem_slack = 0;
	status = lua_pcall(L, 1, 0, 1);      /* (sp -= 2) */
	lh->deadline_ns = 0; /* anything running outside a call stops */
	lh->mem_slack = LUAHOOK_MSGH_SLACK;
	if (status != LUA_OK) {
		char buf[128];
		size_t len = 0;
		const char *msg = lua_tolstring(L, -1, &len);
		char *full;

		if (status == LUA_ERRMEM)
			lh->abort = LUAHOOK_ABORT_MEMORY;
		if (lh->abort == LUAHOOK_ABORT_MEMORY &&
		    (msg == NULL || strncmp(msg, "not enough memory", 17) == 0)) {
			full = xasprintf("%s: %s", lh->name,
					 luahook_sandbox_abort_text(
						 lh, buf, sizeof(buf)));
		} else if (lh->abort == LUAHOOK_ABORT_MEMORY) {
			full = xasprintf("%s: %s\n%.*s", lh->name,
					 luahook_sandbox_abort_text(
						 lh, buf, sizeof(buf)),
					 (int)len, msg);
		} else {
			full = msg != NULL ? xstrndup(msg, len)
					   : xstrdup("(no error message)");
		}
		*error_r = luahook_trunc(full, strlen(full),
					 lh->lim.output_max);
		free(full);
		switch (lh->abort) {
		case LUAHOOK_ABORT_TIMEOUT: ret = -ETIMEDOUT; break;
		case LUAHOOK_ABORT_MEMORY: ret = -ENOMEM; break;
		case LUAHOOK_ABORT_CANCEL: ret = -ECANCELED; break;
		default: ret = -EIO;
		}
	}
	lua_settop(L, 0);
	lh->gen++;
	lh->mem_slack = 0;
	luahook_tmp_clear(lh);
	if (status != LUA_OK)
		lua_gc(L, LUA_GCCOLLECT);
	return ret;
}

/* ---- load ---------------------------------------------------------------- */

/* The sandbox's globals (run inside the first pcall): the safe
 * libraries, the event views, the ophook table. */
static int luahook_setup(lua_State *L)
{
	luahook_sandbox_open(L);
	luahook_json_open(L);
	luahook_api_open(L);
	return 0;
}

struct luahook_loadctx {
	const char *code;
	size_t len;
	char *syntax_error;
};

static int luahook_load_tramp(lua_State *L)
{
	struct luahook_loadctx *c = lua_touserdata(L, 1);
	struct luahook *lh = luahook_of(L);
	char *chunk = xasprintf("@%s", lh->name);
	int st;

	luahook_tmp_add(lh, chunk);
	st = luaL_loadbufferx(L, c->code, c->len, chunk, "t"); /* (sp += 1) */
	luahook_tmp_free(lh, chunk);
	if (st != LUA_OK) {
		const char *m = lua_tostring(L, -1);

		c->syntax_error = xstrdup(m != NULL ? m : "cannot load");
		return 0;
	}
	lua_call(L, 0, 0); /* (sp -= 1) */
	return 0;
}

static int luahook_reg_cmp(const void *a, const void *b)
{
	const struct luahook_reg *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq ? 1 : 0);
}

int luahook_load_string(const char *code, size_t len, const char *name,
			const struct luahook_limits *limits,
			const struct luahook_host *host, struct luahook **lh_r,
			char **error_r)
{
	struct luahook *lh = xcalloc(1, sizeof(*lh));
	struct luahook_loadctx c = { .code = code, .len = len };
	char *err = NULL;
	int ret;

	*lh_r = NULL;
	*error_r = NULL;
	lh->name = xstrdup(name);
	lh->who = xasprintf("lua:%s", name);
	lh->lim = *limits;
	if (lh->lim.output_max == 0)
		lh->lim.output_max = 4096;
	if (lh->lim.timeout_ms == 0)
		lh->lim.timeout_ms = 5000;
	if (host != NULL)
		lh->host = *host;
	lh->mem_max = limits->memory_max > 0 ? limits->memory_max
					      : 16u << 20;
	lh->mem_slack = LUAHOOK_MSGH_SLACK;
	lh->L = luahook_sandbox_newstate(lh);
	if (lh->L == NULL) {
		*error_r = xasprintf("%s: cannot create a Lua state within "
				     "%zu KiB", name, lh->mem_max / 1024);
		luahook_free(&lh);
		return -ENOMEM;
	}
	lua_atpanic(lh->L, luahook_panic);
	ret = luahook_pcall(lh, luahook_setup, lh, lh->lim.timeout_ms, &err);
	if (ret < 0) {
		*error_r = xasprintf("%s: sandbox setup failed: %s", name, err);
		free(err);
		luahook_free(&lh);
		return ret;
	}
	lh->loading = true;
	ret = luahook_pcall(lh, luahook_load_tramp, &c, lh->lim.timeout_ms,
			    &err);
	lh->loading = false;
	if (ret == 0 && c.syntax_error != NULL) {
		err = c.syntax_error;
		c.syntax_error = NULL;
		ret = -EINVAL;
	}
	free(c.syntax_error);
	if (ret < 0) {
		*error_r = err;
		luahook_free(&lh);
		return ret;
	}
	if (lh->n_ons > 1)
		qsort(lh->ons, lh->n_ons, sizeof(*lh->ons), luahook_reg_cmp);
	if (lh->n_pres > 1)
		qsort(lh->pres, lh->n_pres, sizeof(*lh->pres),
		      luahook_reg_cmp);
	*lh_r = lh;
	return 0;
}

int luahook_load(const char *path, const char *name,
		 const struct luahook_limits *limits,
		 const struct luahook_host *host, struct luahook **lh_r,
		 char **error_r)
{
	char *code = NULL;
	size_t len = 0;
	int ret;

	ret = file_read_nofollow(path, LUAHOOK_SOURCE_MAX, &code, &len);
	if (ret < 0) {
		*lh_r = NULL;
		*error_r = xasprintf("%s: %s", name,
				     ret == -EFBIG ? "file too large"
						   : strerror(-ret));
		return ret;
	}
	ret = luahook_load_string(code, len, name, limits, host, lh_r, error_r);
	free(code);
	return ret;
}

void luahook_free(struct luahook **lhp)
{
	struct luahook *lh = *lhp;

	if (lh == NULL)
		return;
	*lhp = NULL;
	if (lh->L != NULL) {
		lh->deadline_ns = 0; /* finalizers stop at once */
		lua_close(lh->L);
	}
	luahook_tmp_clear(lh);
	free(lh->tmp);
	free(lh->tmp_json);
	for (size_t i = 0; i < lh->n_ons; i++)
		free(lh->ons[i].pattern);
	for (size_t i = 0; i < lh->n_pres; i++)
		free(lh->pres[i].pattern);
	free(lh->ons);
	free(lh->pres);
	free(lh->name);
	free(lh->who);
	free(lh);
}

/* ---- accessors ----------------------------------------------------------- */

const char *luahook_name(const struct luahook *lh)
{
	return lh->name;
}

size_t luahook_on_count(const struct luahook *lh)
{
	return lh->n_ons;
}

const char *luahook_on_pattern(const struct luahook *lh, size_t i)
{
	return i < lh->n_ons ? lh->ons[i].pattern : NULL;
}

int luahook_priority(const struct luahook *lh)
{
	int p = 0;

	for (size_t i = 0; i < lh->n_ons; i++) {
		if (i == 0 || lh->ons[i].priority < p)
			p = lh->ons[i].priority;
	}
	return p;
}

unsigned luahook_timeout_sum(const struct luahook *lh)
{
	unsigned sum = 0;

	for (size_t i = 0; i < lh->n_ons; i++)
		sum += lh->ons[i].timeout_ms;
	return sum;
}

size_t luahook_pre_count(const struct luahook *lh)
{
	return lh->n_pres;
}

const char *luahook_pre_intent(const struct luahook *lh, size_t i)
{
	return i < lh->n_pres ? lh->pres[i].pattern : NULL;
}

bool luahook_has_pre(const struct luahook *lh, const char *intent)
{
	for (size_t i = 0; i < lh->n_pres; i++) {
		if (strcmp(lh->pres[i].pattern, intent) == 0)
			return true;
	}
	return false;
}

size_t luahook_memory(const struct luahook *lh)
{
	return lh->mem_used;
}

void luahook_capture(struct luahook *lh, json_t *lines, bool quiet)
{
	lh->capture = lines;
	lh->capture_quiet = quiet;
}

void luahook_set_dry_run(struct luahook *lh, bool dry_run)
{
	lh->dry_run = dry_run;
}

/* ---- calls --------------------------------------------------------------- */

enum luahook_outcome {
	LUAHOOK_OUT_DONE = 0,
	LUAHOOK_OUT_RETRY,
	LUAHOOK_OUT_FAIL,
	LUAHOOK_OUT_DENY,
};

struct luahook_callctx {
	const struct luahook_reg *reg;
	json_t *payload;
	unsigned attempt;
	bool pre;
	enum luahook_outcome out;
	char *msg; /* fail / retry / deny message */
};

static bool luahook_is_mt(lua_State *L, int idx, const char *mt)
{
	bool same;

	if (!lua_getmetatable(L, idx))
		return false;
	luaL_getmetatable(L, mt);
	same = lua_rawequal(L, -1, -2);
	lua_pop(L, 2);
	return same;
}

static char *luahook_result_text(lua_State *L, int idx, size_t max)
{
	size_t len = 0;
	const char *s;

	if (lua_type(L, idx) != LUA_TSTRING && lua_type(L, idx) != LUA_TNUMBER)
		return NULL;
	s = lua_tolstring(L, idx, &len);
	return luahook_trunc(s, len, max);
}

static int luahook_call_tramp(lua_State *L)
{
	struct luahook_callctx *c = lua_touserdata(L, 1);
	struct luahook *lh = luahook_of(L);

	lua_settop(L, 0);
	lua_rawgeti(L, LUA_REGISTRYINDEX, c->reg->ref); /* (sp += 1) */
	luahook_json_push_ro(L, lh, c->payload);             /* (sp += 1) */
	lua_pushinteger(L, c->attempt);                  /* (sp += 1) */
	lua_call(L, 2, 2);                 /* (sp -= 3; sp += 2) */
	c->out = LUAHOOK_OUT_DONE;
	if (c->pre) {
		if (lua_type(L, 1) == LUA_TTABLE &&
		    luahook_is_mt(L, 1, LUAHOOK_DENY_MT)) {
			lua_getfield(L, 1, "reason");
			c->out = LUAHOOK_OUT_DENY;
			c->msg = luahook_result_text(L, -1, lh->lim.output_max);
		} else if (lua_type(L, 1) == LUA_TBOOLEAN &&
			   !lua_toboolean(L, 1)) {
			c->out = LUAHOOK_OUT_DENY;
			c->msg = luahook_result_text(L, 2, lh->lim.output_max);
		}
		return 0;
	}
	lua_getfield(L, LUA_REGISTRYINDEX, LUAHOOK_RETRY_KEY);
	if (lua_rawequal(L, 1, -1)) {
		c->out = LUAHOOK_OUT_RETRY;
		c->msg = luahook_result_text(L, 2, lh->lim.output_max);
	} else if (lua_type(L, 1) == LUA_TBOOLEAN && !lua_toboolean(L, 1)) {
		c->out = LUAHOOK_OUT_FAIL;
		c->msg = luahook_result_text(L, 2, lh->lim.output_max);
	}
	return 0;
}

int luahook_run_event(struct luahook *lh, const char *type, json_t *payload,
		      unsigned attempt, atomic_bool *cancel, unsigned *ran_r,
		      char **error_r)
{
	json_t *by = json_object_get(payload, "emitted_by");
	unsigned ran = 0;
	int ret = 0;

	*error_r = NULL;
	/* never feed a hook its own events (no loops) */
	if (by != NULL && json_is_string(by) &&
	    strcmp(json_string_value(by), lh->who) == 0)
		goto out;
	lh->cancel = cancel;
	for (size_t i = 0; i < lh->n_ons && ret == 0; i++) {
		struct luahook_callctx c = {
			.reg = &lh->ons[i], .payload = payload,
			.attempt = attempt,
		};
		char *err = NULL;

		if (!pattern_match(lh->ons[i].pattern, type))
			continue;
		ran++;
		ret = luahook_pcall(lh, luahook_call_tramp, &c,
				    lh->ons[i].timeout_ms, &err);
		if (ret < 0) {
			*error_r = err;
		} else if (c.out == LUAHOOK_OUT_RETRY) {
			ret = OPHOOK_RETRY;
			*error_r = xasprintf("%s: handler for '%s' asked to "
					     "retry later%s%s", lh->name,
					     lh->ons[i].pattern,
					     c.msg != NULL ? ": " : "",
					     c.msg != NULL ? c.msg : "");
		} else if (c.out == LUAHOOK_OUT_FAIL) {
			ret = -EIO;
			*error_r = xasprintf("%s: handler for '%s' returned "
					     "false%s%s", lh->name,
					     lh->ons[i].pattern,
					     c.msg != NULL ? ": " : "",
					     c.msg != NULL ? c.msg : "");
		}
		free(c.msg);
	}
	lh->cancel = NULL;
out:
	if (ran_r != NULL)
		*ran_r = ran;
	return ret;
}

int luahook_run_pre(struct luahook *lh, const char *intent, json_t *request,
		    atomic_bool *cancel, bool *deny_r, char **reason_r,
		    char **error_r)
{
	int ret = 0;

	*deny_r = false;
	*reason_r = NULL;
	*error_r = NULL;
	lh->cancel = cancel;
	for (size_t i = 0; i < lh->n_pres && ret == 0 && !*deny_r; i++) {
		struct luahook_callctx c = {
			.reg = &lh->pres[i], .payload = request, .attempt = 1,
			.pre = true,
		};

		if (strcmp(lh->pres[i].pattern, intent) != 0)
			continue;
		ret = luahook_pcall(lh, luahook_call_tramp, &c,
				    lh->pres[i].timeout_ms, error_r);
		if (ret == 0 && c.out == LUAHOOK_OUT_DENY) {
			*deny_r = true;
			*reason_r = c.msg != NULL ? c.msg
						  : xstrdup("denied by a hook");
			c.msg = NULL;
		}
		free(c.msg);
	}
	lh->cancel = NULL;
	return ret;
}
