/* JSON <-> Lua for the hooks: read-only views of an event's JSON, JSON
 * copied into tables, Lua values encoded back to JSON. */
#define _GNU_SOURCE
#include "luahook_json.h"

#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "luahook_int.h"

#define LUAHOOK_JSON_DEPTH 128
#define LUAHOOK_JSON_RO_MT "ophook.ro"

/* A read-only view: the JSON and the call it is valid in. */
struct luahook_ro {
	json_t *j;
	unsigned gen;
};

/* A read-only view of j (object or array), valid during the call. */
void luahook_json_push_ro(lua_State *L, struct luahook *lh, json_t *j)
{
	struct luahook_ro *ro = lua_newuserdatauv(L, sizeof(*ro), 0);

	ro->j = j;
	ro->gen = lh->gen;
	luaL_setmetatable(L, LUAHOOK_JSON_RO_MT);
}

static json_t *luahook_json_ro_check(lua_State *L, int idx)
{
	struct luahook *lh = luahook_of(L);
	struct luahook_ro *ro = luaL_checkudata(L, idx, LUAHOOK_JSON_RO_MT);

	if (ro->gen != lh->gen)
		luaL_error(L, "the event is only valid during the call that "
			      "received it");
	return ro->j;
}

void luahook_json_push(lua_State *L, struct luahook *lh, json_t *j, bool proxy,
		       int depth)
{
	if (depth > LUAHOOK_JSON_DEPTH)
		luaL_error(L, "JSON nested too deeply");
	luaL_checkstack(L, 4, "JSON nested too deeply");
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *k;
		json_t *v;

		if (proxy) {
			luahook_json_push_ro(L, lh, j);
			return;
		}
		lua_createtable(L, 0, (int)json_object_size(j));
		json_object_foreach(j, k, v) {
			if (json_is_null(v))
				continue;
			luahook_json_push(L, lh, v, false, depth + 1);
			lua_setfield(L, -2, k);
		}
		return;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;

		if (proxy) {
			luahook_json_push_ro(L, lh, j);
			return;
		}
		lua_createtable(L, (int)json_array_size(j), 0);
		json_array_foreach(j, i, v) {
			luahook_json_push(L, lh, v, false, depth + 1);
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

static int luahook_json_ro_index(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	json_t *j = luahook_json_ro_check(L, 1), *v = NULL;

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
	luahook_json_push(L, lh, v, true, 0);
	return 1;
}

static int luahook_json_ro_newindex(lua_State *L)
{
	return luaL_error(L, "the event is read-only (copy what you need "
			     "into a table of your own)");
}

static int luahook_json_ro_len(lua_State *L)
{
	json_t *j = luahook_json_ro_check(L, 1);

	lua_pushinteger(L, (lua_Integer)(json_is_array(j) ? json_array_size(j)
							  : json_object_size(j)));
	return 1;
}

static int luahook_json_ro_next(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	json_t *j = luahook_json_ro_check(L, 1);

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
		luahook_json_push(L, lh, json_object_iter_value(it), true, 0);
		return 2;
	} else {
		lua_Integer i = lua_isnil(L, 2) ? 0 : luaL_checkinteger(L, 2);

		if (i < 0 || (size_t)i >= json_array_size(j))
			return 0;
		lua_pushinteger(L, i + 1);
		luahook_json_push(L, lh, json_array_get(j, (size_t)i), true, 0);
		return 2;
	}
}

static int luahook_json_ro_pairs(lua_State *L)
{
	luahook_json_ro_check(L, 1);
	lua_pushcfunction(L, luahook_json_ro_next);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

static int luahook_json_ro_tostring(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	json_t *j = luahook_json_ro_check(L, 1);
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
static json_t *luahook_json_from_lua(lua_State *L, int idx, int depth,
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
		struct luahook_ro *ro = luaL_testudata(L, idx,
						       LUAHOOK_JSON_RO_MT);

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
			json_t *v = luahook_json_from_lua(L, -1, depth + 1,
							  why_r);

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
json_t *luahook_json_check(lua_State *L, int idx, const char *what)
{
	const char *why = NULL;
	json_t *j = luahook_json_from_lua(L, idx, 0, &why);

	if (j == NULL)
		luaL_error(L, "%s: cannot encode %s", what, why);
	return j;
}

void luahook_json_open(lua_State *L)
{
	static const luaL_Reg ro_mt[] = {
		{ "__index", luahook_json_ro_index },
		{ "__newindex", luahook_json_ro_newindex },
		{ "__len", luahook_json_ro_len },
		{ "__pairs", luahook_json_ro_pairs },
		{ "__tostring", luahook_json_ro_tostring },
		{ NULL, NULL },
	};

	luaL_newmetatable(L, LUAHOOK_JSON_RO_MT);
	luaL_setfuncs(L, ro_mt, 0);
	lua_pushliteral(L, "read-only");
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);
}
