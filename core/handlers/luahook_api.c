/* The ophook.* API of Lua hooks (see ophook-lua(7)): registration (on,
 * pre, deny), log, json, exec, emit, db.query, read_file, write_file;
 * ophook.http.* is in luahook_http.c. */
#define _GNU_SOURCE
#include "luahook_api.h"

#include <errno.h>
#include <lauxlib.h>
#include <libgen.h>
#include <limits.h>
#include <lua.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exechook.h"
#include "log.h"
#include "luahook_http.h"
#include "luahook_int.h"
#include "luahook_json.h"
#include "luahook_sandbox.h"
#include "util.h"

#define LUAHOOK_MAX_REGS 256        /* ophook.on / ophook.pre per file */
#define LUAHOOK_MAX_TIMEOUT_MS 300000
#define LUAHOOK_FILE_MAX (16u << 20)
#define LUAHOOK_EXEC_PATH "PATH=/usr/sbin:/usr/bin:/sbin:/bin"

/* ---- registration: on, pre, deny ----------------------------------------- */

static bool luahook_api_name_chars(const char *s, bool star)
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

unsigned luahook_api_opt_timeout(lua_State *L, int idx, unsigned def)
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

static int luahook_api_register(lua_State *L, bool pre)
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
	if (!luahook_api_name_chars(key, !pre))
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
		timeout = luahook_api_opt_timeout(L, 2, timeout);
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
	return luahook_api_register(L, false);
}

static int luahook_api_pre(lua_State *L)
{
	return luahook_api_register(L, true);
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

/* ---- log, json ----------------------------------------------------------- */

static void luahook_api_log_line(struct luahook *lh, enum log_level level,
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

static int luahook_api_log_level(lua_State *L, enum log_level level)
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
	luahook_api_log_line(lh, level, s, len);
	return 0;
}

static int luahook_api_log_debug(lua_State *L)
{
	return luahook_api_log_level(L, LOG_DEBUG_L);
}

static int luahook_api_log_info(lua_State *L)
{
	return luahook_api_log_level(L, LOG_INFO_L);
}

static int luahook_api_log_warn(lua_State *L)
{
	return luahook_api_log_level(L, LOG_WARN_L);
}

static int luahook_api_log_error(lua_State *L)
{
	return luahook_api_log_level(L, LOG_ERROR_L);
}

int luahook_api_fail(lua_State *L, const char *msg)
{
	lua_pushnil(L);
	lua_pushstring(L, msg);
	return 2;
}

bool luahook_api_record(struct luahook *lh, json_t *call, const char *fmt,
			...)
{
	va_list ap;
	char *text;

	if (lh->host.record == NULL) {
		json_decref(call);
		return false;
	}
	va_start(ap, fmt);
	if (vasprintf(&text, fmt, ap) < 0)
		abort();
	va_end(ap);
	json_object_set_new(call, "text", json_string(text));
	json_object_set_new(call, "log_index", json_integer((json_int_t)(
		lh->capture != NULL ? json_array_size(lh->capture) : 0)));
	json_object_set_new(call, "dry", json_true());
	json_array_append_new(lh->host.record, call);
	free(text);
	return true;
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
	j = luahook_json_check(L, 1, "ophook.json.encode");
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
	luahook_json_push(L, lh, j, false, 0);
	luahook_tmp_json_free(lh, j);
	return 1;
}

/* ---- exec ---------------------------------------------------------------- */

static char **luahook_api_check_argv(lua_State *L, int idx, const char *what)
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
	unsigned timeout;
	const char *error;
	char **argv;
	int ret;

	luahook_sandbox_check_deadline(L); /* past it: fail at once */
	timeout = luahook_sandbox_remaining_ms(lh);
	memset(&o, 0, sizeof(o));
	if (lua_type(L, 2) == LUA_TTABLE) {
		unsigned t = luahook_api_opt_timeout(L, 2, timeout);

		if (t < timeout)
			timeout = t;
		if (lua_getfield(L, 2, "stdin") == LUA_TSTRING)
			o.stdin_data = lua_tolstring(L, -1, &o.stdin_len);
		/* the string stays referenced by opts */
		lua_pop(L, 1);
	}
	argv = luahook_api_check_argv(L, 1, "ophook.exec");
	if (lh->host.record != NULL) {
		/* dry run: say what would run; rc 0, no output */
		json_t *a = json_array();
		char *line = xstrdup("");

		for (size_t i = 0; argv[i] != NULL; i++) {
			char *old = line;

			json_array_append_new(a, json_string(argv[i]));
			line = xasprintf("%s%s%s", old, i > 0 ? " " : "",
					 argv[i]);
			free(old);
		}
		luahook_api_record(lh, json_pack("{sssosI}", "call", "exec",
						 "argv", a, "stdin_bytes",
						 (json_int_t)o.stdin_len),
				   "would run %s%s", line,
				   o.stdin_len > 0 ? " (with stdin)" : "");
		free(line);
		free(argv);
		lua_pushinteger(L, 0);
		lua_pushliteral(L, "");
		lua_pushliteral(L, "");
		lua_pushnil(L);
		return 4;
	}
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
		return luahook_api_fail(L, msg);
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

/* ---- db, emit, files ----------------------------------------------------- */

static int luahook_api_db_query(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	const char *sql = luaL_checkstring(L, 1);
	int n = lua_gettop(L);
	json_t *params, *rows = NULL;
	char *error = NULL;
	int ret;

	luahook_sandbox_check_deadline(L); /* past it: fail at once */
	params = json_array();
	luahook_tmp_json(lh, params);
	for (int i = 2; i <= n; i++) {
		json_t *p;
		int t = lua_type(L, i);

		if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN &&
		    t != LUA_TNIL)
			return luaL_error(L, "ophook.db.query: parameter %d "
					     "must be a string, number, "
					     "boolean or nil", i - 1);
		p = luahook_json_check(L, i, "ophook.db.query");
		json_array_append_new(params, p);
	}
	if (lh->host.record != NULL) {
		/* dry run: no query, no rows */
		luahook_tmp_json_forget(lh, params);
		luahook_api_record(lh, json_pack("{sssssO}", "call", "db.query",
						 "sql", sql, "params", params),
				   "would query %s (%zu parameter(s))", sql,
				   json_array_size(params));
		json_decref(params);
		lua_newtable(L);
		return 1;
	}
	if (lh->host.db_query == NULL) {
		luahook_tmp_json_free(lh, params);
		return luahook_api_fail(L, "ophook.db.query: no panel "
					   "database");
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
	luahook_json_push(L, lh, rows, false, 0);
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

	if (!luahook_api_name_chars(type, false))
		return luaL_error(L, "ophook.emit: invalid event type '%s'",
				  type);
	if (lua_isnoneornil(L, 2)) {
		fields = json_object();
	} else {
		luaL_checktype(L, 2, LUA_TTABLE);
		fields = luahook_json_check(L, 2, "ophook.emit");
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
	if (lh->dry_run || lh->host.emit == NULL ||
	    lh->host.record != NULL) {
		char *s = json_dumps(fields, JSON_COMPACT | JSON_SORT_KEYS);

		luahook_api_record(lh, json_pack("{sssssssO}", "call", "emit",
						 "type", type, "subject",
						 subject, "fields", fields),
				   "would emit %s %s %s", type, subject, s);
		if (lh->capture != NULL && lh->host.record == NULL)
			json_array_append_new(lh->capture,
					      json_sprintf("emit (not sent): "
							   "%s %s %s", type,
							   subject, s));
		free(s);
		free(subj_buf);
		luahook_tmp_json_free(lh, fields);
		if (lh->host.emit == NULL && !lh->dry_run &&
		    lh->host.record == NULL)
			return luahook_api_fail(L, "ophook.emit: not "
						   "available");
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
static bool luahook_api_path_in_roots(struct luahook *lh, const char *real)
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
static char *luahook_api_resolve(struct luahook *lh, const char *path,
				 bool write, char *why, size_t why_size)
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
	if (!luahook_api_path_in_roots(lh, real)) {
		snprintf(why, why_size, "%s: outside hooks.file_roots", path);
		free(real);
		return NULL;
	}
	return real;
}

/* Open the folder of real (a resolved absolute path: no symlink in it)
 * walking each component from / with O_NOFOLLOW, so that a folder a
 * customer can write to, swapped for a symlink after the check against
 * the roots, is refused (-ELOOP) instead of followed; *base_r points
 * into real.  0 or -errno. */
static int luahook_api_open_parent(char *real, int *dfd_r,
				   const char **base_r)
{
	char *slash = strrchr(real, '/');
	int ret;

	*dfd_r = -1;
	if (slash == NULL || slash[1] == '\0')
		return -EINVAL;
	*slash = '\0';
	ret = ophook_dir_open_under("/", real[0] == '\0' ? "" : real + 1, 0, 0,
				    dfd_r, NULL);
	*slash = '/';
	*base_r = slash + 1;
	return ret;
}

static int luahook_api_read_file(lua_State *L)
{
	struct luahook *lh = luahook_of(L);
	const char *path = luaL_checkstring(L, 1);
	char why[PATH_MAX + 64], *real, *data = NULL;
	const char *base = NULL;
	size_t len = 0, max = LUAHOOK_FILE_MAX;
	int ret, dfd = -1;

	real = luahook_api_resolve(lh, path, false, why, sizeof(why));
	if (real == NULL)
		return luahook_api_fail(L, why);
	if (lh->mem_max > lh->mem_used && lh->mem_max - lh->mem_used < max)
		max = lh->mem_max - lh->mem_used;
	ret = luahook_api_open_parent(real, &dfd, &base);
	if (ret == 0)
		ret = ophook_file_read_at(dfd, base, max, &data, &len);
	if (dfd >= 0)
		close(dfd);
	free(real);
	if (ret < 0) {
		snprintf(why, sizeof(why), "%s: %s", path,
			 ret == -EFBIG ? "file too large" : strerror(-ret));
		return luahook_api_fail(L, why);
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
	const char *base = NULL;
	int ret, dfd = -1;

	real = luahook_api_resolve(lh, path, true, why, sizeof(why));
	if (real == NULL)
		return luahook_api_fail(L, why);
	if (lh->host.record != NULL) {
		/* dry run: the path is checked, nothing written */
		luahook_api_record(lh, json_pack("{sssssI}", "call",
						 "write_file", "path", real,
						 "bytes", (json_int_t)len),
				   "would write %s (%zu bytes)", real, len);
		free(real);
		lua_pushboolean(L, 1);
		return 1;
	}
	luahook_tmp_add(lh, real);
	if (lh->host.own_write != NULL)
		lh->host.own_write(lh->host.ctx, real);
	ret = luahook_api_open_parent(real, &dfd, &base);
	if (ret == 0)
		ret = ophook_file_write_atomic_at(dfd, base, data, len, 0644,
						  (uid_t)-1, (gid_t)-1);
	if (dfd >= 0)
		close(dfd);
	luahook_tmp_free(lh, real);
	if (ret < 0) {
		snprintf(why, sizeof(why), "%s: %s", path, strerror(-ret));
		return luahook_api_fail(L, why);
	}
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- the ophook table ---------------------------------------------------- */

static void luahook_api_setfuncs(lua_State *L, const char *table,
				 const luaL_Reg *fns)
{
	lua_newtable(L);
	luaL_setfuncs(L, fns, 0);
	lua_setfield(L, -2, table);
}

void luahook_api_open(lua_State *L)
{
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
	static const luaL_Reg db_fns[] = {
		{ "query", luahook_api_db_query },
		{ NULL, NULL },
	};

	lua_pushcfunction(L, luahook_api_log_info);
	lua_setglobal(L, "print");
	luaL_newmetatable(L, LUAHOOK_DENY_MT);
	/* hidden from getmetatable: an __gc added to it would make every
	 * later ophook.deny() value a finalizer */
	lua_pushboolean(L, 0);
	lua_setfield(L, -2, "__metatable");
	lua_pop(L, 1);

	lua_newtable(L); /* ophook */
	luaL_setfuncs(L, api, 0);
	luahook_api_setfuncs(L, "log", log_fns);
	luahook_http_open(L);
	luahook_api_setfuncs(L, "db", db_fns);
	luahook_api_setfuncs(L, "json", json_fns);
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
	/* true in a dry run (hooks test without --live) */
	lua_pushboolean(L, luahook_of(L)->host.record != NULL);
	lua_setfield(L, -2, "dry_run");
	lua_setglobal(L, "ophook");
}
