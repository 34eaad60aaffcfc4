/* Lua hook sandbox: hostile hooks fail alone with a clear message, a
 * well-behaved hook beside them still runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "luahook.h"
#include "ophook/plugin.h"
#include "util.h"

static char tmpdir[64];
static char *roots[1];

static struct luahook_limits lim(void)
{
	struct luahook_limits l = {
		.memory_max = 4u << 20,
		.timeout_ms = 3000,
		.output_max = 1024,
		.file_roots = roots,
		.n_file_roots = 1,
	};
	return l;
}

static struct luahook *load(const char *name, const char *code)
{
	struct luahook_limits l = lim();
	struct luahook *lh = NULL;
	char *err = NULL;
	int ret = luahook_load_string(code, strlen(code), name, &l, NULL, &lh,
				      &err);

	if (ret != 0)
		fprintf(stderr, "# load %s: %s\n", name, err);
	assert_int_equal(ret, 0);
	assert_null(err);
	return lh;
}

static json_t *event(const char *type)
{
	return json_pack("{sssssssis[iso]}", "type", type, "subject",
			 "example.com", "domain", "example.com", "id", 42,
			 "list", 1, "two", json_pack("{si}", "n", 3));
}

static int run(struct luahook *lh, const char *type, char **err_r)
{
	json_t *ev = event(type);
	int ret = luahook_run_event(lh, type, ev, 1, NULL, NULL, err_r);

	if (getenv("TEST_VERBOSE") != NULL && *err_r != NULL)
		fprintf(stderr, "# %s: %d: %s\n", type, ret, *err_r);
	json_decref(ev);
	return ret;
}

/* The well-behaved hook: counts events it sees. */
static const char *good_code =
	"seen = 0\n"
	"ophook.on('domain.*', function(ev)\n"
	"  seen = seen + 1\n"
	"  if ev.domain ~= 'example.com' then return false, 'bad field' end\n"
	"  if ev.list[2] ~= 'two' or ev.list[3].n ~= 3 then\n"
	"    return false, 'bad nested' end\n"
	"  ophook.log.info('seen', seen, ev.type)\n"
	"end)\n"
	"ophook.on('count.check', function(ev) return false, tostring(seen) end)\n";

static void good_still_runs(struct luahook *good, int expect_seen)
{
	char *err = NULL;

	assert_int_equal(run(good, "domain.added", &err), 0);
	assert_null(err);
	assert_int_equal(run(good, "count.check", &err), -EIO);
	{
		char want[64];

		snprintf(want, sizeof(want), "returned false: %d",
			 expect_seen);
		assert_non_null(strstr(err, want));
	}
	free(err);
}

static void test_good(void **state)
{
	struct luahook *lh = load("good.lua", good_code);
	json_t *lines = json_array();
	char *err = NULL;
	unsigned ran = 0;
	json_t *ev = event("domain.added");

	(void)state;
	assert_int_equal(luahook_on_count(lh), 2);
	assert_string_equal(luahook_on_pattern(lh, 0), "domain.*");
	luahook_capture(lh, lines, true);
	assert_int_equal(luahook_run_event(lh, "domain.added", ev, 1, NULL,
					   &ran, &err), 0);
	assert_int_equal(ran, 1);
	assert_int_equal(json_array_size(lines), 1);
	assert_string_equal(json_string_value(json_array_get(lines, 0)),
			    "info: seen 1 domain.added");
	/* a type nobody listens to */
	assert_int_equal(luahook_run_event(lh, "user.added", ev, 1, NULL, &ran,
					   &err), 0);
	assert_int_equal(ran, 0);
	luahook_capture(lh, NULL, false);
	json_decref(ev);
	json_decref(lines);
	luahook_free(&lh);
	assert_null(lh);
}

static void test_endless_loop(void **state)
{
	struct luahook *good = load("good.lua", good_code);
	struct luahook *lh = load("loop.lua",
		"ophook.on('domain.added', {timeout = 200}, function(ev)\n"
		"  local i = 0\n"
		"  while true do i = i + 1 end\n"
		"end)\n"
		"ophook.on('domain.removed', {timeout = 300}, function(ev)\n"
		"  while true do pcall(function() while true do end end) end\n"
		"end)\n");
	char *err = NULL;
	int64_t t0 = mono_ms();

	(void)state;
	assert_int_equal(run(lh, "domain.added", &err), -ETIMEDOUT);
	assert_non_null(strstr(err, "loop.lua:3: timeout: still running "
				    "after 200 ms"));
	assert_non_null(strstr(err, "stack traceback"));
	free(err);
	/* pcall cannot swallow the deadline */
	assert_int_equal(run(lh, "domain.removed", &err), -ETIMEDOUT);
	assert_non_null(strstr(err, "timeout"));
	free(err);
	assert_true(mono_ms() - t0 < 5000);
	good_still_runs(good, 1);
	luahook_free(&lh);
	luahook_free(&good);
}

static void test_memory_bomb(void **state)
{
	struct luahook *good = load("good.lua", good_code);
	struct luahook *lh = load("bomb.lua",
		"ophook.on('domain.added', function(ev)\n"
		"  local t = {}\n"
		"  for i = 1, 1e9 do t[i] = string.rep('x', 1000) .. i end\n"
		"end)\n"
		"ophook.on('domain.updated', function(ev)\n"
		"  return string.rep('x', 64 << 20)\n"
		"end)\n"
		"ophook.on('domain.removed', function(ev)\n"
		"  local ok = pcall(function() local t = {} for i = 1, 1e9 do"
		" t[i] = {i} end end)\n"
		"  return false, 'pcall swallowed the memory error'\n"
		"end)\n");
	char *err = NULL;

	(void)state;
	assert_int_equal(run(lh, "domain.added", &err), -ENOMEM);
	assert_non_null(strstr(err, "bomb.lua: memory limit of 4096 KiB "
				    "exceeded"));
	free(err);
	assert_true(luahook_memory(lh) <= (4u << 20) + (256u << 10));
	assert_int_equal(run(lh, "domain.updated", &err), -ENOMEM);
	assert_non_null(strstr(err, "memory limit"));
	free(err);
	assert_int_equal(run(lh, "domain.removed", &err), -ENOMEM);
	free(err);
	/* the state is usable again afterwards (garbage collected) */
	assert_true(luahook_memory(lh) < (1u << 20));
	good_still_runs(good, 1);
	luahook_free(&lh);
	luahook_free(&good);
}

static void test_sandbox_escapes(void **state)
{
	struct luahook *good = load("good.lua", good_code);
	struct luahook *lh = load("escape.lua",
		"ophook.on('probe.globals', function(ev)\n"
		"  for _, n in ipairs({'io', 'package', 'require', 'debug',\n"
		"      'dofile', 'loadfile', 'collectgarbage', 'coroutine'}) do\n"
		"    if _G[n] ~= nil then return false, 'has ' .. n end\n"
		"  end\n"
		"  if os.execute or os.getenv or os.remove or os.exit then\n"
		"    return false, 'os leaks' end\n"
		"  if string.dump then return false, 'string.dump' end\n"
		"  local f, e = load('\\27Lua' .. string.rep('\\0', 32))\n"
		"  if f then return false, 'binary chunk loaded' end\n"
		"  if not e:find('binary') then return false, e end\n"
		"  local g = load('return 1 + 1')\n"
		"  if g() ~= 2 then return false, 'text load broken' end\n"
		"end)\n"
		"ophook.on('probe.execute', function(ev)\n"
		"  os.execute('touch /tmp/ophook-escaped')\n"
		"end)\n"
		"ophook.on('probe.io', function(ev)\n"
		"  io.open('/etc/passwd')\n"
		"end)\n"
		"ophook.on('probe.require', function(ev)\n"
		"  require('os')\n"
		"end)\n"
		"ophook.on('probe.readonly', function(ev)\n"
		"  ev.domain = 'evil.example'\n"
		"end)\n"
		"ophook.on('probe.register', function(ev)\n"
		"  ophook.on('x', function() end)\n"
		"end)\n");
	char *err = NULL;

	(void)state;
	assert_int_equal(run(lh, "probe.globals", &err), 0);
	assert_null(err);
	assert_int_equal(run(lh, "probe.execute", &err), -EIO);
	assert_non_null(strstr(err, "escape.lua:16: attempt to call a nil "
				    "value (field 'execute')"));
	free(err);
	assert_int_equal(access("/tmp/ophook-escaped", F_OK), -1);
	assert_int_equal(run(lh, "probe.io", &err), -EIO);
	assert_non_null(strstr(err, "escape.lua:19:"));
	assert_non_null(strstr(err, "io"));
	free(err);
	assert_int_equal(run(lh, "probe.require", &err), -EIO);
	assert_non_null(strstr(err, "require"));
	free(err);
	assert_int_equal(run(lh, "probe.readonly", &err), -EIO);
	assert_non_null(strstr(err, "read-only"));
	free(err);
	assert_int_equal(run(lh, "probe.register", &err), -EIO);
	assert_non_null(strstr(err, "only allowed while the file loads"));
	free(err);
	good_still_runs(good, 1);
	luahook_free(&lh);
	luahook_free(&good);
}

static void test_error_in_the_middle(void **state)
{
	struct luahook *good = load("good.lua", good_code);
	struct luahook *lh = load("mid.lua",
		"local function helper(x)\n"
		"  local y = x * 2\n"
		"  error('boom at ' .. y)\n"
		"end\n"
		"ophook.on('domain.added', function(ev)\n"
		"  ophook.log.info('before')\n"
		"  helper(21)\n"
		"  ophook.log.info('after')\n"
		"end)\n");
	json_t *lines = json_array();
	char *err = NULL;

	(void)state;
	luahook_capture(lh, lines, true);
	assert_int_equal(run(lh, "domain.added", &err), -EIO);
	assert_non_null(strstr(err, "mid.lua:3: boom at 42"));
	assert_non_null(strstr(err, "stack traceback"));
	assert_non_null(strstr(err, "mid.lua:7"));
	assert_int_equal(json_array_size(lines), 1);
	free(err);
	json_decref(lines);
	good_still_runs(good, 1);
	luahook_free(&lh);
	luahook_free(&good);
}

static void test_huge_return(void **state)
{
	struct luahook *lh = load("huge.lua",
		"ophook.on('domain.added', function(ev)\n"
		"  return false, string.rep('y', 1000000)\n"
		"end)\n"
		"ophook.on('domain.updated', function(ev)\n"
		"  local t = {} for i = 1, 100000 do t[i] = i end\n"
		"  return t\n"
		"end)\n"
		"ophook.on('domain.removed', function(ev)\n"
		"  error(string.rep('z', 1000000))\n"
		"end)\n");
	char *err = NULL;

	(void)state;
	assert_int_equal(run(lh, "domain.added", &err), -EIO);
	assert_true(strlen(err) < 1024 + 200);
	assert_non_null(strstr(err, "bytes cut"));
	free(err);
	assert_int_equal(run(lh, "domain.updated", &err), 0);
	assert_null(err);
	assert_int_equal(run(lh, "domain.removed", &err), -EIO);
	assert_true(strlen(err) < 1024 + 200);
	free(err);
	luahook_free(&lh);
}

static void test_syntax_error_reload(void **state)
{
	struct luahook_limits l = lim();
	struct luahook *v1 = load("reload.lua", good_code), *v2 = NULL;
	const char *bad = "ophook.on('domain.*', function(ev)\n"
			  "  local x = = 1\n"
			  "end)\n";
	char *err = NULL;

	(void)state;
	assert_int_equal(luahook_load_string(bad, strlen(bad), "reload.lua",
					     &l, NULL, &v2, &err), -EINVAL);
	assert_null(v2);
	assert_non_null(strstr(err, "reload.lua:2:"));
	free(err);
	/* binary chunks are refused at load too */
	assert_int_equal(luahook_load_string("\x1bLua\x54", 5, "bin.lua", &l,
					     NULL, &v2, &err), -EINVAL);
	assert_non_null(strstr(err, "binary"));
	free(err);
	/* an error at the top level names the line */
	assert_int_equal(luahook_load_string("local a = 1\nnope()\n", 18,
					     "top.lua", &l, NULL, &v2, &err),
			 -EIO);
	assert_non_null(strstr(err, "top.lua:2:"));
	free(err);
	/* the old version is untouched */
	good_still_runs(v1, 1);
	luahook_free(&v1);
}

static void test_pre(void **state)
{
	struct luahook *lh = load("deny.lua",
		"ophook.pre('domain.add', function(req)\n"
		"  if req.domain:match('%.example$') or req.domain == 'example' then\n"
		"    return ophook.deny('reserved domain: ' .. req.domain)\n"
		"  end\n"
		"end)\n");
	json_t *req = json_pack("{ssss}", "intent", "domain.add", "domain",
				"reserved.example");
	char *reason = NULL, *err = NULL;
	bool deny = false;

	(void)state;
	assert_true(luahook_has_pre(lh, "domain.add"));
	assert_false(luahook_has_pre(lh, "user.add"));
	assert_int_equal(luahook_run_pre(lh, "domain.add", req, NULL, &deny,
					 &reason, &err), 0);
	assert_true(deny);
	assert_string_equal(reason, "reserved domain: reserved.example");
	free(reason);
	json_object_set_new(req, "domain", json_string("shop.com"));
	assert_int_equal(luahook_run_pre(lh, "domain.add", req, NULL, &deny,
					 &reason, &err), 0);
	assert_false(deny);
	assert_null(reason);
	json_decref(req);
	luahook_free(&lh);
}

static void test_api(void **state)
{
	char code[4096], inside[128], outside[] = "/etc/hostname";
	struct luahook *lh;
	char *err = NULL;

	(void)state;
	snprintf(inside, sizeof(inside), "%s/data.txt", tmpdir);
	snprintf(code, sizeof(code),
		"ophook.on('api.json', function(ev)\n"
		"  local s = ophook.json.encode({a = 1, b = {1, 2, 'x'}, c = ev})\n"
		"  local t = ophook.json.decode(s)\n"
		"  if t.a ~= 1 or t.b[3] ~= 'x' or t.c.domain ~= 'example.com' then\n"
		"    return false, s end\n"
		"  local v, e = ophook.json.decode('{bad')\n"
		"  if v ~= nil or not e then return false, 'decode' end\n"
		"end)\n"
		"ophook.on('api.exec', function(ev)\n"
		"  local code, out, err = ophook.exec({'/bin/sh', '-c', 'read x; echo \"$x:$PATH\"; echo e >&2; exit 3'}, {stdin = 'hi\\n'})\n"
		"  if code ~= 3 or out ~= 'hi:/usr/sbin:/usr/bin:/sbin:/bin\\n' or err ~= 'e\\n' then\n"
		"    return false, tostring(code) .. out .. err end\n"
		"  local c2, o2, e2, why = ophook.exec({'/bin/sleep', '5'}, {timeout = 100})\n"
		"  if c2 ~= nil or not why:find('timed out') then return false, 'timeout' end\n"
		"end)\n"
		"ophook.on('api.files', function(ev)\n"
		"  assert(ophook.write_file('%s', 'hello'))\n"
		"  if ophook.read_file('%s') ~= 'hello' then return false, 'rw' end\n"
		"  local v, e = ophook.read_file('%s')\n"
		"  if v or not e:find('outside') then return false, 'outside: ' .. tostring(e) end\n"
		"  v, e = ophook.write_file('%s/../escape.txt', 'x')\n"
		"  if v or not e:find('outside') then return false, 'dotdot' end\n"
		"  v, e = ophook.read_file('%s/link')\n"
		"  if v then return false, 'symlink followed out' end\n"
		"  assert(ophook.write_file('%s/wl', 'replaced'))\n"
		"  assert(ophook.write_file('%s/dirlink/f', 'through'))\n"
		"  if ophook.read_file('%s/dirlink/f') ~= 'through' then\n"
		"    return false, 'folder symlink inside the roots' end\n"
		"end)\n"
		"ophook.on('api.retry', function(ev) return ophook.retry, 'later' end)\n"
		"ophook.on('api.emit', function(ev)\n"
		"  local ok, e = ophook.emit('custom.thing', {domain = 'example.com'})\n"
		"  if ok then return false, 'emit without host' end\n"
		"  local rows, e2 = ophook.db.query('SELECT 1')\n"
		"  if rows or not e2:find('no panel database') then return false, 'db' end\n"
		"end)\n",
		inside, inside, outside, tmpdir, tmpdir, tmpdir, tmpdir,
		tmpdir);
	{
		char link[128], victim[128], sub[128];

		snprintf(link, sizeof(link), "%s/link", tmpdir);
		unlink(link);
		assert_int_equal(symlink("/etc/hostname", link), 0);
		/* a symlink as the name written: replaced, never followed */
		snprintf(victim, sizeof(victim), "%s/victim", tmpdir);
		assert_int_equal(file_write_atomic(victim, "precious", 8, 0644), 0);
		snprintf(link, sizeof(link), "%s/wl", tmpdir);
		unlink(link);
		assert_int_equal(symlink(victim, link), 0);
		snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
		(void)mkdir(sub, 0755);
		snprintf(link, sizeof(link), "%s/dirlink", tmpdir);
		unlink(link);
		assert_int_equal(symlink(sub, link), 0);
	}
	lh = load("api.lua", code);
	assert_int_equal(run(lh, "api.json", &err), 0);
	assert_null(err);
	assert_int_equal(run(lh, "api.exec", &err), 0);
	assert_null(err);
	if (run(lh, "api.files", &err) != 0)
		fail_msg("%s", err);
	{
		char p[128], *data = NULL;
		size_t len;
		struct stat st;

		snprintf(p, sizeof(p), "%s/victim", tmpdir);
		assert_int_equal(file_read_nofollow(p, 100, &data, &len), 0);
		assert_string_equal(data, "precious");
		free(data);
		snprintf(p, sizeof(p), "%s/wl", tmpdir);
		assert_int_equal(lstat(p, &st), 0);
		assert_true(S_ISREG(st.st_mode));
	}
	assert_int_equal(run(lh, "api.retry", &err), OPHOOK_RETRY);
	assert_non_null(strstr(err, "later"));
	free(err);
	assert_int_equal(run(lh, "api.emit", &err), 0);
	luahook_free(&lh);
}

static int run_cancel(struct luahook *lh, atomic_bool *cancel, char **err_r)
{
	json_t *ev = event("domain.added");
	int ret = luahook_run_event(lh, "domain.added", ev, 1, cancel, NULL,
				    err_r);

	json_decref(ev);
	return ret;
}

static void test_cancel_and_loop_guard(void **state)
{
	struct luahook *lh = load("cancel.lua",
		"ophook.on('domain.added', function(ev) while true do end end)\n"
		"ophook.on('self.made', function(ev) return false, 'ran' end)\n");
	json_t *ev = json_pack("{ss}", "emitted_by", "lua:cancel.lua");
	atomic_bool cancel;
	char *err = NULL;
	unsigned ran = 9;

	(void)state;
	atomic_init(&cancel, true);
	assert_int_equal(run_cancel(lh, &cancel, &err), -ECANCELED);
	assert_non_null(strstr(err, "cancelled"));
	free(err);
	/* a hook never sees the events it emitted itself */
	assert_int_equal(luahook_run_event(lh, "self.made", ev, 1, NULL, &ran,
					   &err), 0);
	assert_int_equal(ran, 0);
	json_decref(ev);
	luahook_free(&lh);
}

static void test_event_after_call(void **state)
{
	struct luahook *lh = load("keep.lua",
		"local kept\n"
		"ophook.on('a.b', function(ev) kept = ev end)\n"
		"ophook.on('a.c', function(ev) return kept.domain end)\n");
	char *err = NULL;

	(void)state;
	assert_int_equal(run(lh, "a.b", &err), 0);
	assert_int_equal(run(lh, "a.c", &err), -EIO);
	assert_non_null(strstr(err, "only valid during the call"));
	free(err);
	luahook_free(&lh);
}

/* Finding 6 (issue 16): Lua 5.4 runs finalizers with the hooks off, so a
 * __gc that loops would escape the deadline; the sandbox refuses them,
 * naming the file and line, and ophook.deny()'s metatable is hidden. */
static void test_no_finalizers(void **state)
{
	struct luahook_limits l = lim();
	struct luahook *lh = NULL;
	const char *code =
		"local t = {}\n"
		"setmetatable(t, {__gc = function() while true do end end})\n";
	char *err = NULL;

	(void)state;
	assert_int_equal(luahook_load_string(code, strlen(code), "gc.lua", &l,
					     NULL, &lh, &err), -EIO);
	assert_null(lh);
	assert_non_null(err);
	assert_non_null(strstr(err, "gc.lua:2:"));
	assert_non_null(strstr(err, "__gc"));
	free(err);
	err = NULL;
	/* in a call too, and pcall does not hide it from the hook's author;
	 * an ordinary metatable still works */
	lh = load("gc2.lua",
		"ophook.on('a.b', function(ev)\n"
		"  local ok, e = pcall(setmetatable, {}, {__gc = print})\n"
		"  if ok then return false, 'accepted' end\n"
		"  local v = setmetatable({}, {__index = function() return 7 end})\n"
		"  if v.x ~= 7 then return false, 'index' end\n"
		"  if getmetatable(ophook.deny('x')) ~= false then\n"
		"    return false, 'deny metatable visible' end\n"
		"  return false, e\n"
		"end)\n");
	assert_int_equal(run(lh, "a.b", &err), -EIO);
	assert_non_null(strstr(err, "__gc finalizers are not allowed"));
	free(err);
	luahook_free(&lh);
}

/* Finding 7 (issue 16): once a call is past its deadline, exec, http and
 * db fail at once (pcall cannot catch it), instead of each exec waiting
 * its own timeout and kill grace. */
static void test_past_deadline(void **state)
{
	struct luahook *lh = load("late.lua",
		"ophook.on('a.exec', {timeout = 300}, function(ev)\n"
		"  for i = 1, 8 do\n"
		"    pcall(ophook.exec, {'/bin/sh', '-c', 'trap \"\" TERM; sleep 10'})\n"
		"  end\n"
		"end)\n"
		"ophook.on('a.db', {timeout = 200}, function(ev)\n"
		"  ophook.exec({'/bin/sleep', '5'})\n"
		"  local ok, r, e = pcall(ophook.db.query, 'select 1')\n"
		"  return false, 'db answered: ' .. tostring(e)\n"
		"end)\n"
		"ophook.on('a.http', {timeout = 200}, function(ev)\n"
		"  ophook.exec({'/bin/sleep', '5'})\n"
		"  local ok, r, e = pcall(ophook.http.get, 'http://127.0.0.1:9/')\n"
		"  return false, 'http answered: ' .. tostring(e)\n"
		"end)\n");
	char *err = NULL;
	int64_t t0 = mono_ms();

	(void)state;
	assert_int_equal(run(lh, "a.exec", &err), -ETIMEDOUT);
	assert_non_null(strstr(err, "timeout"));
	free(err);
	/* one exec's timeout and kill grace, not eight */
	assert_true(mono_ms() - t0 < 6000);
	assert_int_equal(run(lh, "a.db", &err), -ETIMEDOUT);
	assert_non_null(strstr(err, "late.lua:8: timeout"));
	free(err);
	assert_int_equal(run(lh, "a.http", &err), -ETIMEDOUT);
	assert_non_null(strstr(err, "late.lua:13: timeout"));
	free(err);
	luahook_free(&lh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_endless_loop),
		cmocka_unit_test(test_memory_bomb),
		cmocka_unit_test(test_sandbox_escapes),
		cmocka_unit_test(test_error_in_the_middle),
		cmocka_unit_test(test_huge_return),
		cmocka_unit_test(test_syntax_error_reload),
		cmocka_unit_test(test_pre),
		cmocka_unit_test(test_api),
		cmocka_unit_test(test_cancel_and_loop_guard),
		cmocka_unit_test(test_event_after_call),
		cmocka_unit_test(test_no_finalizers),
		cmocka_unit_test(test_past_deadline),
	};
	char cmd[128];
	int ret;

	signal(SIGPIPE, SIG_IGN);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_luahook.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	roots[0] = tmpdir;
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		ret = 1;
	return ret;
}
