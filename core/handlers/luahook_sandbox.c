/* The sandbox of a Lua hook: the capped allocator, the instruction-count
 * hook that enforces the call's deadline (and cancel), and the set of
 * safe libraries. */
#define _GNU_SOURCE
#include "luahook_sandbox.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>

#include "luahook_int.h"
#include "util.h"

#define LUAHOOK_COUNT_STEP 1000 /* instructions between deadline checks */

/* ---- allocator, deadline ------------------------------------------------- */

static void *luahook_sandbox_alloc(void *ud, void *ptr, size_t osize,
				   size_t nsize)
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

const char *luahook_sandbox_abort_text(struct luahook *lh, char *buf,
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

/* Raise the abort error with the position of the first Lua function at
 * stack level `level` or above (0: the running function, 1: its caller;
 * C functions such as pcall in between are skipped). */
static int luahook_sandbox_raise_abort(lua_State *L, struct luahook *lh,
				       int level)
{
	char buf[128];
	lua_Debug ar;

	luahook_sandbox_abort_text(lh, buf, sizeof(buf));
	for (int i = level; i < level + 4 && lua_getstack(L, i, &ar); i++) {
		if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
			lua_pushfstring(L, "%s:%d: %s", ar.short_src,
					ar.currentline, buf);
			return lua_error(L);
		}
		if (level == 0)
			break; /* the count hook: the running function only */
	}
	lua_pushstring(L, buf);
	return lua_error(L);
}

static void luahook_sandbox_count_hook(lua_State *L, lua_Debug *ar)
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
	luahook_sandbox_raise_abort(L, lh, 0);
}

/* Called by the functions that wait (exec, http, db): past the deadline
 * (or once cancelled, or outside any call), the call ends at once with the
 * abort error, which pcall cannot swallow; else returns. */
void luahook_sandbox_check_deadline(lua_State *L)
{
	struct luahook *lh = luahook_of(L);

	if (lh->abort == LUAHOOK_ABORT_NONE) {
		if (lh->cancel != NULL && atomic_load(lh->cancel))
			lh->abort = LUAHOOK_ABORT_CANCEL;
		else if (mono_ns() >= lh->deadline_ns)
			lh->abort = LUAHOOK_ABORT_TIMEOUT;
		else
			return;
	}
	luahook_sandbox_raise_abort(L, lh, 1); /* where the hook called */
}

/* Milliseconds left before the current call's deadline (at least 1). */
unsigned luahook_sandbox_remaining_ms(struct luahook *lh)
{
	int64_t left = (lh->deadline_ns - mono_ns()) / 1000000;

	return left < 1 ? 1 : (unsigned)left;
}

/* ---- safe libraries ------------------------------------------------------ */

/* pcall / xpcall that do not swallow the sandbox's own aborts (timeout,
 * memory, cancel): those always end the call. */
static int luahook_sandbox_pcall(lua_State *L)
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

static int luahook_sandbox_xpcall(lua_State *L)
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

/* setmetatable() without finalizers: Lua 5.4 runs a __gc metamethod with
 * the hooks off, so a finalizer that loops would escape the deadline (and
 * could run at any allocation, or at lua_close).  Refused where it is set;
 * an __gc added to a metatable afterwards is never honoured by Lua. */
static int luahook_sandbox_setmetatable(lua_State *L)
{
	int t = lua_type(L, 2);

	/* lbaselib's checks, then the finalizer's */
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2,
			 "nil or table");
	if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
		return luaL_error(L, "cannot change a protected metatable");
	if (t == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");       /* (sp += 1) */
		if (lua_rawget(L, 2) != LUA_TNIL) /* (sp -= 1; sp += 1) */
			return luaL_error(L, "setmetatable: __gc finalizers "
					     "are not allowed in hooks (Lua "
					     "runs them without the "
					     "deadline)");
		lua_pop(L, 1);                    /* (sp -= 1) */
	}
	lua_settop(L, 2);
	lua_setmetatable(L, 1);                   /* (sp -= 1) */
	return 1;
}

/* load() for text chunks only. */
static int luahook_sandbox_load(lua_State *L)
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

lua_State *luahook_sandbox_newstate(struct luahook *lh)
{
	lua_State *L = lua_newstate(luahook_sandbox_alloc, lh);

	if (L == NULL)
		return NULL;
	*(struct luahook **)lua_getextraspace(L) = lh;
	lua_sethook(L, luahook_sandbox_count_hook, LUA_MASKCOUNT,
		    LUAHOOK_COUNT_STEP);
	return L;
}

void luahook_sandbox_open(lua_State *L)
{
	static const char *const base_drop[] = {
		"dofile", "loadfile", "collectgarbage", NULL,
	};
	static const char *const os_keep[] = {
		"time", "date", "clock", "difftime", NULL,
	};

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
	lua_pushcclosure(L, luahook_sandbox_load, 1);
	lua_setglobal(L, "load");
	lua_pushcfunction(L, luahook_sandbox_setmetatable);
	lua_setglobal(L, "setmetatable");
	lua_pushcfunction(L, luahook_sandbox_pcall);
	lua_setglobal(L, "pcall");
	lua_pushcfunction(L, luahook_sandbox_xpcall);
	lua_setglobal(L, "xpcall");
}
