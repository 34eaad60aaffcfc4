#define _GNU_SOURCE
#include "luahook.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <libgen.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exechook.h"
#include "ophook/plugin.h"
#include "util.h"

#ifndef OPHOOK_VERSION
#define OPHOOK_VERSION "0"
#endif

#define LUAHOOK_MAX_REGS 256        /* ophook.on / ophook.pre per file */
#define LUAHOOK_MAX_TIMEOUT_MS 300000
#define LUAHOOK_COUNT_STEP 1000     /* instructions between deadline checks */
#define LUAHOOK_MSGH_SLACK (256 * 1024) /* extra memory for tracebacks */
#define LUAHOOK_JSON_DEPTH 128
#define LUAHOOK_FILE_MAX (16u << 20)
#define LUAHOOK_SOURCE_MAX (4u << 20)
#define LUAHOOK_HTTP_MAX (1u << 20)
#define LUAHOOK_EXEC_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"
#define LUAHOOK_RO_MT "ophook.ro"
#define LUAHOOK_DENY_MT "ophook.deny"
#define LUAHOOK_RETRY_KEY "ophook.retry"

enum luahook_abort {
	LUAHOOK_ABORT_NONE = 0,
	LUAHOOK_ABORT_TIMEOUT,
	LUAHOOK_ABORT_MEMORY,
	LUAHOOK_ABORT_CANCEL,
};

struct luahook_reg {
	char *pattern; /* on: event pattern; pre: intent */
	int priority;
	unsigned timeout_ms;
	unsigned seq;
	int ref;       /* the function, in the registry */
};

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

struct luahook_ro {
	json_t *j;
	unsigned gen;
};

/* ---- small helpers ---------------------------------------------------- */

static struct luahook *luahook_of(lua_State *L)
{
	return *(struct luahook **)lua_getextraspace(L);
}

static void luahook_tmp_add(struct luahook *lh, void *p)
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

static void luahook_tmp_free(struct luahook *lh, void *p)
{
	for (size_t i = 0; i < lh->n_tmp && p != NULL; i++) {
		if (lh->tmp[i] == p) {
			lh->tmp[i] = NULL;
			break;
		}
	}
	free(p);
}

static void luahook_tmp_json(struct luahook *lh, json_t *j)
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
static void luahook_tmp_json_forget(struct luahook *lh, json_t *j)
{
	for (size_t i = 0; i < lh->n_tmp_json && j != NULL; i++) {
		if (lh->tmp_json[i] == j) {
			lh->tmp_json[i] = NULL;
			break;
		}
	}
}

static void luahook_tmp_json_free(struct luahook *lh, json_t *j)
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
static char *luahook_trunc(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return xstrndup(s, len);
	return xasprintf("%.*s... [%zu bytes cut]", (int)max, s, len - max);
}

static bool luahook_name_chars(const char *s, bool star)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s != '\0'; s++) {
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '.' || (star && *s == '*')))
			return false;
	}
	return true;
}

/* ---- allocator, panic, deadline --------------------------------------- */

static void *luahook_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct luahook *lh = ud;
	size_t old = ptr != NULL ? osize : 0;
	void *p;

	if (nsize == 0) {
		lh->mem_used -= old;
		free(ptr);
		return NULL;
	}
	if (nsize > old &&
	    lh->mem_used - old + nsize > lh->mem_max + lh->mem_slack)
		return NULL;
	p = realloc(ptr, nsize);
	if (p == NULL)
		return NULL;
	lh->mem_used = lh->mem_used - old + nsize;
	return p;
}

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

static const char *luahook_abort_text(struct luahook *lh, char *buf,
				      size_t size)
{
	switch (lh->abort) {
	case LUAHOOK_ABORT_TIMEOUT:
		snprintf(buf, size, "timeout: still running after %u ms",
			 lh->call_timeout_ms);
		break;
	case LUAHOOK_ABORT_CANCEL:
		snprintf(buf, size, "cancelled: the delivery timed out");
		break;
	case LUAHOOK_ABORT_MEMORY:
		snprintf(buf, size, "memory limit of %zu KiB exceeded",
			 lh->mem_max / 1024);
		break;
	default:
		snprintf(buf, size, "aborted");
	}
	return buf;
}

/* Raise the abort error with the current Lua position. */
static int luahook_raise_abort(lua_State *L, struct luahook *lh)
{
	char buf[128];
	lua_Debug ar;

	luahook_abort_text(lh, buf, sizeof(buf));
	if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "Sl", &ar) &&
	    ar.currentline > 0)
		lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline,
				buf);
	else
		lua_pushstring(L, buf);
	return lua_error(L);
}

static void luahook_count_hook(lua_State *L, lua_Debug *ar)
{
	struct luahook *lh = luahook_of(L);

	(void)ar;
	if (lh->abort == LUAHOOK_ABORT_NONE) {
		if (lh->cancel != NULL && atomic_load(lh->cancel))
			lh->abort = LUAHOOK_ABORT_CANCEL;
		else if (mono_ns() >= lh->deadline_ns)
			lh->abort = LUAHOOK_ABORT_TIMEOUT;
		else
			return;
	}
	luahook_raise_abort(L, lh);
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

/* Milliseconds left before the current call's deadline (at least 1). */
static unsigned luahook_remaining_ms(struct luahook *lh)
{
	int64_t left = (lh->deadline_ns - mono_ns()) / 1000000;

	return left < 1 ? 1 : (unsigned)left;
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
					 luahook_abort_text(lh, buf,
							    sizeof(buf)));
		} else if (lh->abort == LUAHOOK_ABORT_MEMORY) {
			full = xasprintf("%s: %s\n%.*s", lh->name,
					 luahook_abort_text(lh, buf,
							    sizeof(buf)),
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

/* ---- JSON <-> Lua ------------------------------------------------------ */

static void luahook_push_json(lua_State *L, struct luahook *lh, json_t *j,
			      bool proxy, int depth);

/* A read-only view of j (object or array), valid during the call. */
static void luahook_push_ro(lua_State *L, struct luahook *lh, json_t *j)
{
	struct luahook_ro *ro = lua_newuserdatauv(L, sizeof(*ro), 0);

	ro->j = j;
	ro->gen = lh->gen;
	luaL_setmetatable(L, LUAHOOK_RO_MT);
}

static json_t *luahook_ro_check(lua_State *L, int idx)
{
	struct luahook *lh = luahook_of(L);
	struct luahook_ro *ro = luaL_checkudata(L, idx, LUAHOOK_RO_MT);

	if (ro->gen != lh->gen)
		luaL_error(L, "the event is only valid during the call that "
			      "received it");
	return ro->j;
}

static void luahook_push_json(lua_State *L, struct luahook *lh, json_t *j,
			      bool proxy, int depth)
{
	if (depth > LUAHOOK_JSON_DEPTH)
		luaL_error(L, "JSON nested too deeply");
	luaL_checkstack(L, 4, "JSON nested too deeply");
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;

		if (proxy) {
			luahook_push_ro(L, lh, j);
			return;
		}
		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_foreach(j, k, v) {
			if (json_is_null(v))
				continue;
			luahook_push_json(L, lh, v, false, depth + 1);
			lua_setfield(L, -2, k);
		}
		return;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;

		if (proxy) {
			luahook_push_ro(L, lh, j);
			return;
		}
		lua_createtable(L, (int)json_array_size(j), 0);
		json_array_foreach(j, i, v) {
			luahook_push_json(L, lh, v, false, depth + 1);
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		return;
	}
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(j), json_string_length(j));
		return;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(j));
		return;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(j));
		return;
	case JSON_TRUE:
		lua_pushboolean(L, 1);
		return;
	case JSON_FALSE:
		lua_pushboolean(L, 0);
		return;
	case JSON_NULL:
	default:
		lua_pushlightuserdata(L, NULL); /* ophook.json.null */
		return;
	}
}

static int luahook_ro_index(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	json_t *j = luahook_ro_check(L, 1), *v = NULL;

	if (json_is_object(j)) {
		const char *k = lua_type(L, 2) == LUA_TSTRING
					? lua_tostring(L, 2) : NULL;

		v = k != NULL ? json_object_get(j, k) : NULL;
		if (v == NULL || json_is_null(v))
			return 0;
	} else {
		int isnum = 0;
		lua_Integer i = lua_tointegerx(L, 2, &isnum);

		if (!isnum || i < 1 || (size_t)i > json_array_size(j))
			return 0;
		v = json_array_get(j, (size_t)i - 1);
	}
	luahook_push_json(L, lh, v, true, 0);
	return 1;
}

static int luahook_ro_newindex(lua_State *L)
{
	return luaL_error(L, "the event is read-only (copy what you need "
			     "into a table of your own)");
}

static int luahook_ro_len(lua_State *L)
{
	json_t *j = luahook_ro_check(L, 1);

	lua_pushinteger(L, (lua_Integer)(json_is_array(j) ? json_array_size(j)
							  : json_object_size(j)));
	return 1;
}

static int luahook_ro_next(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	json_t *j = luahook_ro_check(L, 1);

	if (json_is_object(j)) {
		void *it;

		if (lua_isnil(L, 2)) {
			it = json_object_iter(j);
		} else {
			it = json_object_iter_at(j, luaL_checkstring(L, 2));
			if (it != NULL)
				it = json_object_iter_next(j, it);
		}
		while (it != NULL && json_is_null(json_object_iter_value(it)))
			it = json_object_iter_next(j, it);
		if (it == NULL)
			return 0;
		lua_pushstring(L, json_object_iter_key(it));
		luahook_push_json(L, lh, json_object_iter_value(it), true, 0);
		return 2;
	} else {
		lua_Integer i = lua_isnil(L, 2) ? 0 : luaL_checkinteger(L, 2);

		if (i < 0 || (size_t)i >= json_array_size(j))
			return 0;
		lua_pushinteger(L, i + 1);
		luahook_push_json(L, lh, json_array_get(j, (size_t)i), true, 0);
		return 2;
	}
}

static int luahook_ro_pairs(lua_State *L)
{
	luahook_ro_check(L, 1);
	lua_pushcfunction(L, luahook_ro_next);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

static int luahook_ro_tostring(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	json_t *j = luahook_ro_check(L, 1);
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s == NULL)
		return luaL_error(L, "cannot serialize the event");
	luahook_tmp_add(lh, s);
	lua_pushstring(L, s);
	luahook_tmp_free(lh, s);
	return 1;
}

/* Lua value at idx -> new JSON (NULL and *why_r on error).  Allocates
 * nothing on the Lua side, so it never raises. */
static json_t *luahook_to_json(lua_State *L, int idx, int depth,
			       const char **why_r)
{
	idx = lua_absindex(L, idx);
	if (depth > LUAHOOK_JSON_DEPTH) {
		*why_r = "nested too deeply (or a cycle)";
		return NULL;
	}
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		return json_null();
	case LUA_TBOOLEAN:
		return json_boolean(lua_toboolean(L, idx));
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			return json_integer((json_int_t)lua_tointeger(L, idx));
		if (!isfinite(lua_tonumber(L, idx))) {
			*why_r = "NaN or infinity";
			return NULL;
		}
		return json_real(lua_tonumber(L, idx));
	case LUA_TSTRING: {
		size_t len;
		const char *s = lua_tolstring(L, idx, &len);
		json_t *j = json_stringn(s, len);

		if (j == NULL)
			*why_r = "a string that is not valid UTF-8";
		return j;
	}
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) == NULL)
			return json_null();
		break;
	case LUA_TUSERDATA: {
		struct luahook_ro *ro = luaL_testudata(L, idx, LUAHOOK_RO_MT);

		if (ro != NULL && ro->gen == luahook_of(L)->gen)
			return json_deep_copy(ro->j);
		break;
	}
	case LUA_TTABLE: {
		lua_Unsigned n = lua_rawlen(L, idx);
		size_t count = 0;
		bool array;
		json_t *out;

		if (!lua_checkstack(L, 4)) {
			*why_r = "nested too deeply";
			return NULL;
		}
		lua_pushnil(L);
		while (lua_next(L, idx) != 0) {
			if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1 &&
			    (lua_Unsigned)lua_tointeger(L, -2) <= n)
				count++;
			else
				count = (size_t)-1 / 2; /* not a list */
			lua_pop(L, 1);
		}
		array = n > 0 && count == n;
		out = array ? json_array() : json_object();
		lua_pushnil(L);
		while (lua_next(L, idx) != 0) {
			json_t *v = luahook_to_json(L, -1, depth + 1, why_r);

			if (v == NULL) {
				lua_pop(L, 2);
				json_decref(out);
				return NULL;
			}
			if (array) {
				/* keys are 1..n: set in order */
				lua_Integer k = lua_tointeger(L, -2);

				while (json_array_size(out) < (size_t)k)
					json_array_append_new(out, json_null());
				json_array_set_new(out, (size_t)k - 1, v);
			} else if (lua_type(L, -2) == LUA_TSTRING) {
				size_t klen;
				const char *k = lua_tolstring(L, -2, &klen);

				if (json_object_setn_new(out, k, klen, v) < 0) {
					lua_pop(L, 2);
					json_decref(out);
					*why_r = "a key that is not valid UTF-8";
					return NULL;
				}
			} else if (lua_isinteger(L, -2)) {
				char key[32];

				snprintf(key, sizeof(key), "%lld",
					 (long long)lua_tointeger(L, -2));
				json_object_set_new(out, key, v);
			} else {
				json_decref(v);
				lua_pop(L, 2);
				json_decref(out);
				*why_r = "a table key that is neither a string "
					 "nor an integer";
				return NULL;
			}
			lua_pop(L, 1);
		}
		return out;
	}
	default:
		break;
	}
	*why_r = lua_type(L, idx) == LUA_TFUNCTION ? "a function"
						   : "a value JSON cannot hold";
	return NULL;
}

/* to_json or raise "what: why". */
static json_t *luahook_check_json(lua_State *L, int idx, const char *what)
{
	const char *why = NULL;
	json_t *j = luahook_to_json(L, idx, 0, &why);

	if (j == NULL)
		luaL_error(L, "%s: cannot encode %s", what, why);
	return j;
}

/* ---- the ophook API ---------------------------------------------------- */

static unsigned luahook_opt_timeout(lua_State *L, int idx, unsigned def)
{
	lua_Integer t;

	if (lua_getfield(L, idx, "timeout") == LUA_TNIL) {
		lua_pop(L, 1);
		return def;
	}
	t = luaL_checkinteger(L, -1);
	lua_pop(L, 1);
	if (t < 1 || t > LUAHOOK_MAX_TIMEOUT_MS)
		luaL_error(L, "opts.timeout must be 1..%d ms",
			   LUAHOOK_MAX_TIMEOUT_MS);
	return (unsigned)t;
}

static int luahook_register(lua_State *L, bool pre)
{
	struct luahook *lh = luahook_of(L);
	const char *what = pre ? "ophook.pre" : "ophook.on";
	const char *key = luaL_checkstring(L, 1);
	struct luahook_reg *r, **regs = pre ? &lh->pres : &lh->ons;
	size_t *n = pre ? &lh->n_pres : &lh->n_ons;
	int fn = 2, priority = 0;
	unsigned timeout = lh->lim.timeout_ms;

	if (!lh->loading)
		return luaL_error(L, "%s: only allowed while the file loads "
				     "(at its top level)", what);
	if (!luahook_name_chars(key, !pre))
		return luaL_error(L, "%s: invalid %s '%s' (1-64 of [a-z0-9_.%s])",
				  what, pre ? "intent" : "pattern", key,
				  pre ? "" : "*");
	if (lua_type(L, 2) == LUA_TTABLE) {
		fn = 3;
		if (lua_getfield(L, 2, "priority") != LUA_TNIL) {
			lua_Integer p = luaL_checkinteger(L, -1);

			if (p < -1000000 || p > 1000000)
				return luaL_error(L, "%s: opts.priority out "
						     "of range", what);
			priority = (int)p;
		}
		lua_pop(L, 1);
		timeout = luahook_opt_timeout(L, 2, timeout);
	}
	luaL_checktype(L, fn, LUA_TFUNCTION);
	if (*n >= LUAHOOK_MAX_REGS)
		return luaL_error(L, "%s: more than %d registrations", what,
				  LUAHOOK_MAX_REGS);
	lua_pushvalue(L, fn);
	*regs = xrealloc(*regs, (*n + 1) * sizeof(**regs));
	r = &(*regs)[*n];
	r->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* (sp -= 1) */
	r->pattern = xstrdup(key);
	r->priority = priority;
	r->timeout_ms = timeout;
	r->seq = (unsigned)*n;
	(*n)++;
	return 0;
}

static int luahook_api_on(lua_State *L)
{
	return luahook_register(L, false);
}

static int luahook_api_pre(lua_State *L)
{
	return luahook_register(L, true);
}

static int luahook_api_deny(lua_State *L)
{
	const char *reason = luaL_optstring(L, 1, "denied by a hook");

	lua_createtable(L, 0, 1);
	lua_pushstring(L, reason);
	lua_setfield(L, -2, "reason");
	luaL_setmetatable(L, LUAHOOK_DENY_MT);
	return 1;
}

static void luahook_log_line(struct luahook *lh, enum log_level level,
			     const char *msg, size_t len)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };
	char *cut = luahook_trunc(msg, len, lh->lim.output_max);

	if (lh->capture != NULL)
		json_array_append_new(lh->capture,
				      json_sprintf("%s: %s", names[level], cut));
	if (lh->capture == NULL || !lh->capture_quiet)
		log_msg(level, lh->who, "%s", cut);
	free(cut);
}

static int luahook_log_level(lua_State *L, enum log_level level)
{
	struct luahook *lh = luahook_of(L);
	int n = lua_gettop(L);
	luaL_Buffer b;
	size_t len;
	const char *s;

	luaL_buffinit(L, &b);
	for (int i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ' ');
		luaL_tolstring(L, i, NULL);
		luaL_addvalue(&b);
		if (luaL_bufflen(&b) > lh->lim.output_max)
			break;
	}
	luaL_pushresult(&b);
	s = lua_tolstring(L, -1, &len);
	luahook_log_line(lh, level, s, len);
	return 0;
}

static int luahook_api_log_debug(lua_State *L)
{
	return luahook_log_level(L, LOG_DEBUG_L);
}

static int luahook_api_log_info(lua_State *L)
{
	return luahook_log_level(L, LOG_INFO_L);
}

static int luahook_api_log_warn(lua_State *L)
{
	return luahook_log_level(L, LOG_WARN_L);
}

static int luahook_api_log_error(lua_State *L)
{
	return luahook_log_level(L, LOG_ERROR_L);
}

static int luahook_fail(lua_State *L, const char *msg)
{
	lua_pushnil(L);
	lua_pushstring(L, msg);
	return 2;
}

static int luahook_api_json_encode(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	size_t flags = JSON_COMPACT | JSON_ENCODE_ANY;
	json_t *j;
	char *s;

	luaL_checkany(L, 1);
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_getfield(L, 2, "pretty");
		if (lua_toboolean(L, -1))
			flags = JSON_INDENT(2) | JSON_ENCODE_ANY;
		lua_pop(L, 1);
	}
	j = luahook_check_json(L, 1, "ophook.json.encode");
	s = json_dumps(j, flags);
	json_decref(j);
	if (s == NULL)
		return luaL_error(L, "ophook.json.encode: out of memory");
	luahook_tmp_add(lh, s);
	lua_pushstring(L, s);
	luahook_tmp_free(lh, s);
	return 1;
}

static int luahook_api_json_decode(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	json_error_t jerr;
	json_t *j = json_loadb(s, len, JSON_DECODE_ANY, &jerr);

	if (j == NULL) {
		lua_pushnil(L);
		lua_pushfstring(L, "line %d column %d: %s", jerr.line,
				jerr.column, jerr.text);
		return 2;
	}
	luahook_tmp_json(lh, j);
	luahook_push_json(L, lh, j, false, 0);
	luahook_tmp_json_free(lh, j);
	return 1;
}

static char **luahook_check_argv(lua_State *L, int idx, const char *what)
{
	lua_Unsigned n;
	char **argv;

	luaL_checktype(L, idx, LUA_TTABLE);
	n = lua_rawlen(L, idx);
	if (n == 0 || n > 1024)
		luaL_error(L, "%s: argv must be a list of 1-1024 strings", what);
	for (lua_Unsigned i = 1; i <= n; i++) {
		if (lua_rawgeti(L, idx, (lua_Integer)i) != LUA_TSTRING)
			luaL_error(L, "%s: argv[%d] is not a string", what,
				   (int)i);
		lua_pop(L, 1);
	}
	argv = xcalloc(n + 1, sizeof(*argv));
	for (lua_Unsigned i = 1; i <= n; i++) {
		/* the strings stay alive in the table during the call */
		lua_rawgeti(L, idx, (lua_Integer)i);
		argv[i - 1] = (char *)lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	return argv;
}

static int luahook_api_exec(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	static const char *const env[] = { LUAHOOK_EXEC_PATH, "LANG=C.UTF-8",
					   NULL };
	struct exechook_opts o;
	struct exechook_result res;
	unsigned timeout = luahook_remaining_ms(lh);
	const char *error;
	char **argv;
	int ret;

	memset(&o, 0, sizeof(o));
	if (lua_type(L, 2) == LUA_TTABLE) {
		unsigned t = luahook_opt_timeout(L, 2, timeout);

		if (t < timeout)
			timeout = t;
		if (lua_getfield(L, 2, "stdin") == LUA_TSTRING)
			o.stdin_data = lua_tolstring(L, -1, &o.stdin_len);
		/* the string stays referenced by opts */
		lua_pop(L, 1);
	}
	argv = luahook_check_argv(L, 1, "ophook.exec");
	o.argv = (const char *const *)argv;
	o.env = env;
	o.timeout_ms = timeout;
	o.output_max = lh->lim.output_max;
	ret = exechook_run_sync(&o, &res, &error);
	if (ret < 0) {
		char msg[512];

		snprintf(msg, sizeof(msg), "ophook.exec: %s: %s", argv[0],
			 error);
		free(argv);
		return luahook_fail(L, msg);
	}
	free(argv);
	luahook_tmp_add(lh, res.out);
	luahook_tmp_add(lh, res.err);
	if (res.timed_out || res.term_signal != 0)
		lua_pushnil(L);
	else
		lua_pushinteger(L, res.exit_status);
	lua_pushlstring(L, res.out, res.out_len);
	lua_pushlstring(L, res.err, res.err_len);
	if (res.timed_out)
		lua_pushfstring(L, "timed out after %d ms", (int)timeout);
	else if (res.term_signal != 0)
		lua_pushfstring(L, "killed by signal %d", res.term_signal);
	else
		lua_pushnil(L);
	luahook_tmp_free(lh, res.out);
	luahook_tmp_free(lh, res.err);
	return 4;
}

/* ---- http --------------------------------------------------------------- */

static pthread_once_t luahook_curl_once = PTHREAD_ONCE_INIT;

static void luahook_curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct luahook_body {
	char *data;
	size_t len, max;
	bool too_big;
};

static size_t luahook_curl_write(char *ptr, size_t size, size_t nmemb,
				 void *ud)
{
	struct luahook_body *b = ud;
	size_t n = size * nmemb;

	if (b->len + n > b->max) {
		b->too_big = true;
		return 0;
	}
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static bool luahook_header_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/* Collect opts.headers into a curl list; false on a bad header. */
static bool luahook_http_headers(lua_State *L, int opts,
				 struct curl_slist **list, bool *has_ct,
				 const char **bad_r)
{
	if (opts == 0 || lua_getfield(L, opts, "headers") != LUA_TTABLE) {
		if (opts != 0)
			lua_pop(L, 1);
		return true;
	}
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		char *line = NULL;

		if (lua_type(L, -2) == LUA_TSTRING &&
		    lua_type(L, -1) == LUA_TSTRING) {
			const char *k = lua_tostring(L, -2);
			const char *v = lua_tostring(L, -1);

			if (luahook_header_ok(k) && luahook_header_ok(v) &&
			    strchr(k, ':') == NULL)
				line = xasprintf("%s: %s", k, v);
			if (strcasecmp(k, "content-type") == 0)
				*has_ct = true;
		} else if (lua_type(L, -2) == LUA_TNUMBER &&
			   lua_type(L, -1) == LUA_TSTRING) {
			const char *v = lua_tostring(L, -1);

			if (luahook_header_ok(v) && strchr(v, ':') != NULL)
				line = xstrdup(v);
			if (strncasecmp(v, "content-type:", 13) == 0)
				*has_ct = true;
		}
		if (line == NULL) {
			*bad_r = "opts.headers: each header must be "
				 "name = \"value\" (no CR/LF)";
			lua_pop(L, 3);
			return false;
		}
		*list = curl_slist_append(*list, line);
		free(line);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return true;
}

static int luahook_http(lua_State *L, bool post)
{
	struct luahook *lh = luahook_of(L);
	const char *url = luaL_checkstring(L, 1);
	size_t body_len = 0;
	const char *body = post ? luaL_optlstring(L, 2, "", &body_len) : NULL;
	int opts = post ? 3 : 2;
	unsigned timeout = luahook_remaining_ms(lh);
	struct curl_slist *headers = NULL;
	struct luahook_body b = { .max = LUAHOOK_HTTP_MAX };
	bool has_ct = false;
	const char *bad = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;
	CURL *c;

	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return luahook_fail(L, "ophook.http: only http:// and "
				       "https:// URLs");
	if (lua_type(L, opts) != LUA_TTABLE) {
		opts = 0;
	} else {
		unsigned t = luahook_opt_timeout(L, opts, timeout);

		if (t < timeout)
			timeout = t;
	}
	if (!luahook_http_headers(L, opts, &headers, &has_ct, &bad)) {
		curl_slist_free_all(headers);
		return luahook_fail(L, bad);
	}
	if (post && !has_ct)
		headers = curl_slist_append(headers,
					    "Content-Type: application/json");
	pthread_once(&luahook_curl_once, luahook_curl_init);
	c = curl_easy_init();
	if (c == NULL) {
		curl_slist_free_all(headers);
		return luahook_fail(L, "ophook.http: curl_easy_init failed");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ophook/" OPHOOK_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, luahook_curl_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (post) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)body_len);
		curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	luahook_tmp_add(lh, b.data);
	if (rc != CURLE_OK) {
		lua_pushnil(L);
		if (b.too_big)
			lua_pushfstring(L, "ophook.http: %s: response larger "
					   "than %d bytes", url,
					(int)LUAHOOK_HTTP_MAX);
		else
			lua_pushfstring(L, "ophook.http: %s: %s", url,
					errbuf[0] != '\0' ? errbuf
						: curl_easy_strerror(rc));
		luahook_tmp_free(lh, b.data);
		return 2;
	}
	lua_pushinteger(L, status);
	lua_pushlstring(L, b.data != NULL ? b.data : "", b.len);
	luahook_tmp_free(lh, b.data);
	return 2;
}

static int luahook_api_http_post(lua_State *L)
{
	return luahook_http(L, true);
}

static int luahook_api_http_get(lua_State *L)
{
	return luahook_http(L, false);
}

/* ---- db, emit, files ---------------------------------------------------- */

static int luahook_api_db_query(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	const char *sql = luaL_checkstring(L, 1);
	int n = lua_gettop(L);
	json_t *params = json_array(), *rows = NULL;
	char *error = NULL;
	int ret;

	luahook_tmp_json(lh, params);
	for (int i = 2; i <= n; i++) {
		json_t *p;
		int t = lua_type(L, i);

		if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN &&
		    t != LUA_TNIL)
			return luaL_error(L, "ophook.db.query: parameter %d "
					     "must be a string, number, "
					     "boolean or nil", i - 1);
		p = luahook_check_json(L, i, "ophook.db.query");
		json_array_append_new(params, p);
	}
	if (lh->host.db_query == NULL) {
		luahook_tmp_json_free(lh, params);
		return luahook_fail(L, "ophook.db.query: no panel database");
	}
	ret = lh->host.db_query(lh->host.ctx, sql, params, &rows, &error);
	luahook_tmp_json_free(lh, params);
	if (ret < 0) {
		luahook_tmp_add(lh, error);
		lua_pushnil(L);
		lua_pushfstring(L, "ophook.db.query: %s",
				error != NULL ? error : strerror(-ret));
		luahook_tmp_free(lh, error);
		return 2;
	}
	luahook_tmp_json(lh, rows);
	luahook_push_json(L, lh, rows, false, 0);
	luahook_tmp_json_free(lh, rows);
	return 1;
}

static int luahook_api_emit(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	const char *type = luaL_checkstring(L, 1);
	const char *subject = NULL;
	char *subj_buf = NULL, *error = NULL;
	json_t *fields, *v;
	int ret;

	if (!luahook_name_chars(type, false))
		return luaL_error(L, "ophook.emit: invalid event type '%s'",
				  type);
	if (lua_isnoneornil(L, 2)) {
		fields = json_object();
	} else {
		luaL_checktype(L, 2, LUA_TTABLE);
		fields = luahook_check_json(L, 2, "ophook.emit");
		if (!json_is_object(fields)) {
			json_decref(fields);
			fields = json_object();
		}
	}
	luahook_tmp_json(lh, fields);
	if ((v = json_object_get(fields, "subject")) != NULL &&
	    json_is_string(v))
		subject = json_string_value(v);
	else if ((v = json_object_get(fields, "domain")) != NULL &&
		 json_is_string(v))
		subject = json_string_value(v);
	else if ((v = json_object_get(fields, "user")) != NULL &&
		 json_is_string(v))
		subject = subj_buf = xasprintf("user:%s", json_string_value(v));
	else
		subject = type;
	json_object_set_new(fields, "emitted_by", json_string(lh->who));
	if (lh->dry_run || lh->host.emit == NULL) {
		char *s = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);

		if (lh->capture != NULL)
			json_array_append_new(lh->capture,
					      json_sprintf("emit (not sent): "
							   "%s %s %s", type,
							   subject, s));
		free(s);
		free(subj_buf);
		luahook_tmp_json_free(lh, fields);
		if (lh->host.emit == NULL && !lh->dry_run)
			return luahook_fail(L, "ophook.emit: not available");
		lua_pushboolean(L, 1);
		return 1;
	}
	/* the host steals the reference */
	luahook_tmp_json_forget(lh, fields);
	ret = lh->host.emit(lh->host.ctx, type, subject, fields, &error);
	free(subj_buf);
	if (ret < 0) {
		luahook_tmp_add(lh, error);
		lua_pushnil(L);
		lua_pushfstring(L, "ophook.emit: %s",
				error != NULL ? error : strerror(-ret));
		luahook_tmp_free(lh, error);
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* Is `real` (a resolved path) inside one of the file roots? */
static bool luahook_path_in_roots(struct luahook *lh, const char *real)
{
	for (size_t i = 0; i < lh->lim.n_file_roots; i++) {
		char *root = realpath(lh->lim.file_roots[i], NULL);
		size_t n;
		bool ok;

		if (root == NULL)
			continue;
		n = strlen(root);
		ok = strcmp(root, "/") == 0 ||
		     (strncmp(real, root, n) == 0 &&
		      (real[n] == '/' || real[n] == '\0'));
		free(root);
		if (ok)
			return true;
	}
	return false;
}

/* Resolve path for read (whole path) or write (folder + last name); NULL
 * and *why_r when it is not allowed. */
static char *luahook_resolve(struct luahook *lh, const char *path, bool write,
			     char *why, size_t why_size)
{
	char *real;

	if (path[0] != '/') {
		snprintf(why, why_size, "%s: not an absolute path", path);
		return NULL;
	}
	if (!write) {
		real = realpath(path, NULL);
		if (real == NULL) {
			snprintf(why, why_size, "%s: %s", path, strerror(errno));
			return NULL;
		}
	} else {
		char *d = xstrdup(path), *b = xstrdup(path);
		const char *base = basename(b);
		char *rdir;

		if (strcmp(base, ".") == 0 || strcmp(base, "..") == 0 ||
		    strcmp(base, "/") == 0 || base[0] == '\0') {
			snprintf(why, why_size, "%s: not a file name", path);
			free(d);
			free(b);
			return NULL;
		}
		rdir = realpath(dirname(d), NULL);
		if (rdir == NULL) {
			snprintf(why, why_size, "%s: %s", path, strerror(errno));
			free(d);
			free(b);
			return NULL;
		}
		real = xasprintf("%s/%s", strcmp(rdir, "/") == 0 ? "" : rdir,
				 base);
		free(rdir);
		free(d);
		free(b);
	}
	if (!luahook_path_in_roots(lh, real)) {
		snprintf(why, why_size, "%s: outside hooks.file_roots", path);
		free(real);
		return NULL;
	}
	return real;
}

static int luahook_api_read_file(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	const char *path = luaL_checkstring(L, 1);
	char why[PATH_MAX + 64], *real, *data = NULL;
	size_t len = 0, max = LUAHOOK_FILE_MAX;
	int ret;

	real = luahook_resolve(lh, path, false, why, sizeof(why));
	if (real == NULL)
		return luahook_fail(L, why);
	if (lh->mem_max > lh->mem_used && lh->mem_max - lh->mem_used < max)
		max = lh->mem_max - lh->mem_used;
	ret = file_read_nofollow(real, max, &data, &len);
	free(real);
	if (ret < 0) {
		snprintf(why, sizeof(why), "%s: %s", path,
			 ret == -EFBIG ? "file too large" : strerror(-ret));
		return luahook_fail(L, why);
	}
	luahook_tmp_add(lh, data);
	lua_pushlstring(L, data, len);
	luahook_tmp_free(lh, data);
	return 1;
}

static int luahook_api_write_file(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	const char *path = luaL_checkstring(L, 1);
	size_t len;
	const char *data = luaL_checklstring(L, 2, &len);
	char why[PATH_MAX + 64], *real;
	int ret;

	real = luahook_resolve(lh, path, true, why, sizeof(why));
	if (real == NULL)
		return luahook_fail(L, why);
	luahook_tmp_add(lh, real);
	if (lh->host.own_write != NULL)
		lh->host.own_write(lh->host.ctx, real);
	ret = file_write_atomic(real, data, len, 0644);
	luahook_tmp_free(lh, real);
	if (ret < 0) {
		snprintf(why, sizeof(why), "%s: %s", path, strerror(-ret));
		return luahook_fail(L, why);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- sandbox ------------------------------------------------------------ */

/* pcall / xpcall that do not swallow the sandbox's own aborts (timeout,
 * memory, cancel): those always end the call. */
static int luahook_sb_pcall(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	int status;

	luaL_checkany(L, 1);
	status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
	if (status == LUA_ERRMEM)
		lh->abort = LUAHOOK_ABORT_MEMORY;
	if (status != LUA_OK && lh->abort != LUAHOOK_ABORT_NONE)
		return lua_error(L);
	lua_pushboolean(L, status == LUA_OK); /* (sp += 1) */
	lua_insert(L, 1);
	return lua_gettop(L);
}

static int luahook_sb_xpcall(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	int n = lua_gettop(L), status;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushboolean(L, 1);  /* first result if no errors */
	lua_pushvalue(L, 1);    /* the function */
	lua_rotate(L, 3, 2);    /* below the function's arguments */
	status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
	if (status == LUA_ERRMEM)
		lh->abort = LUAHOOK_ABORT_MEMORY;
	if (status != LUA_OK) {
		if (lh->abort != LUAHOOK_ABORT_NONE)
			return lua_error(L);
		lua_pushboolean(L, 0);
		lua_pushvalue(L, -2);
		return 2;
	}
	return lua_gettop(L) - 2;
}

/* load() for text chunks only. */
static int luahook_sb_load(lua_State *L)
{
	int n = lua_gettop(L) >= 4 ? 4 : 3;

	lua_settop(L, n);
	lua_pushstring(L, "t");
	lua_replace(L, 3);
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, n, LUA_MULTRET);
	return lua_gettop(L);
}

static void luahook_setfuncs(lua_State *L, const char *table,
			     const luaL_Reg *fns)
{
	lua_newtable(L);
	luaL_setfuncs(L, fns, 0);
	lua_setfield(L, -2, table);
}

static int luahook_setup(lua_State *L)
{
	struct luahook *lh = lua_touserdata(L, 1);
	static const char *const base_drop[] = {
		"dofile", "loadfile", "collectgarbage", NULL,
	};
	static const char *const os_keep[] = {
		"time", "date", "clock", "difftime", NULL,
	};
	static const luaL_Reg ro_mt[] = {
		{ "__index", luahook_ro_index },
		{ "__newindex", luahook_ro_newindex },
		{ "__len", luahook_ro_len },
		{ "__pairs", luahook_ro_pairs },
		{ "__tostring", luahook_ro_tostring },
		{ NULL, NULL },
	};
	static const luaL_Reg api[] = {
		{ "on", luahook_api_on },
		{ "pre", luahook_api_pre },
		{ "deny", luahook_api_deny },
		{ "exec", luahook_api_exec },
		{ "emit", luahook_api_emit },
		{ "read_file", luahook_api_read_file },
		{ "write_file", luahook_api_write_file },
		{ NULL, NULL },
	};
	static const luaL_Reg log_fns[] = {
		{ "debug", luahook_api_log_debug },
		{ "info", luahook_api_log_info },
		{ "warn", luahook_api_log_warn },
		{ "error", luahook_api_log_error },
		{ NULL, NULL },
	};
	static const luaL_Reg json_fns[] = {
		{ "encode", luahook_api_json_encode },
		{ "decode", luahook_api_json_decode },
		{ NULL, NULL },
	};
	static const luaL_Reg http_fns[] = {
		{ "post", luahook_api_http_post },
		{ "get", luahook_api_http_get },
		{ NULL, NULL },
	};
	static const luaL_Reg db_fns[] = {
		{ "query", luahook_api_db_query },
		{ NULL, NULL },
	};

	(void)lh;
	luaL_requiref(L, LUA_GNAME, luaopen_base, 1);
	lua_pop(L, 1);
	luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 1);
	lua_pushnil(L);
	lua_setfield(L, -2, "dump");
	lua_pop(L, 1);
	luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 1);
	lua_pop(L, 1);
	luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 1);
	lua_pop(L, 1);
	luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 1);
	lua_pop(L, 1);
	/* os: only the clock functions */
	luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
	lua_newtable(L);
	for (const char *const *k = os_keep; *k != NULL; k++) {
		lua_getfield(L, -2, *k);
		lua_setfield(L, -2, *k);
	}
	lua_setglobal(L, LUA_OSLIBNAME);
	lua_pop(L, 1);
	/* LOADED.os still holds the full table: drop it */
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	lua_pushnil(L);
	lua_setfield(L, -2, LUA_OSLIBNAME);
	lua_pop(L, 1);

	for (const char *const *k = base_drop; *k != NULL; k++) {
		lua_pushnil(L);
		lua_setglobal(L, *k);
	}
	lua_getglobal(L, "load");
	lua_pushcclosure(L, luahook_sb_load, 1);
	lua_setglobal(L, "load");
	lua_pushcfunction(L, luahook_sb_pcall);
	lua_setglobal(L, "pcall");
	lua_pushcfunction(L, luahook_sb_xpcall);
	lua_setglobal(L, "xpcall");
	lua_pushcfunction(L, luahook_api_log_info);
	lua_setglobal(L, "print");

	luaL_newmetatable(L, LUAHOOK_RO_MT);
	luaL_setfuncs(L, ro_mt, 0);
	lua_pushliteral(L, "read-only");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
	luaL_newmetatable(L, LUAHOOK_DENY_MT);
	lua_pop(L, 1);

	lua_newtable(L); /* ophook */
	luaL_setfuncs(L, api, 0);
	luahook_setfuncs(L, "log", log_fns);
	luahook_setfuncs(L, "http", http_fns);
	luahook_setfuncs(L, "db", db_fns);
	luahook_setfuncs(L, "json", json_fns);
	lua_getfield(L, -1, "json");
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	lua_pop(L, 1);
	lua_newtable(L); /* the retry marker */
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, LUAHOOK_RETRY_KEY);
	lua_setfield(L, -2, "retry");
	lua_pushstring(L, OPHOOK_VERSION);
	lua_setfield(L, -2, "version");
	lua_pushstring(L, luahook_of(L)->name);
	lua_setfield(L, -2, "name");
	lua_setglobal(L, "ophook");
	return 0;
}

/* ---- load --------------------------------------------------------------- */

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
	lh->L = lua_newstate(luahook_alloc, lh);
	if (lh->L == NULL) {
		*error_r = xasprintf("%s: cannot create a Lua state within "
				     "%zu KiB", name, lh->mem_max / 1024);
		luahook_free(&lh);
		return -ENOMEM;
	}
	*(struct luahook **)lua_getextraspace(lh->L) = lh;
	lua_atpanic(lh->L, luahook_panic);
	lua_sethook(lh->L, luahook_count_hook, LUA_MASKCOUNT,
		    LUAHOOK_COUNT_STEP);
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

/* ---- accessors ---------------------------------------------------------- */

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

/* ---- calls -------------------------------------------------------------- */

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
	luahook_push_ro(L, lh, c->payload);             /* (sp += 1) */
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
