/* Unit tests for the hooks subsystem (core/hooks*.c) against a fake bus:
 * the engine_*, handler_* and dispatch_* functions the hooks use, and the
 * control replies of their commands, are defined here, so the real engine,
 * dispatcher and control socket are not linked.  Hooks live in a temp
 * hooks_dir; the hooks run on a private uv loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "control.h"
#include "engine.h"
#include "event.h"
#include "handler.h"
#include "hooks.h"
#include "util.h"

/* ---- the fake bus ------------------------------------------------------- */

#define MAX_HANDLERS 16
#define MAX_SUBMITS 16

struct engine {
	uv_loop_t loop;
	struct config cfg;
	struct handler *handlers[MAX_HANDLERS];
	size_t n_handlers;
	pthread_mutex_t mu; /* submits and own writes come from hook threads */
	char *sub_type[MAX_SUBMITS];
	json_t *sub_payload[MAX_SUBMITS];
	size_t n_sub;
};

uv_loop_t *engine_loop(struct engine *e) { return &e->loop; }
const struct config *engine_config(struct engine *e) { return &e->cfg; }

int engine_submit(struct engine *e, const char *type, const char *subject,
		  const char *source, json_t *payload, engine_submit_cb *cb,
		  void *ctx, const char **error_r)
{
	(void)subject;
	(void)source;
	(void)cb;
	(void)ctx;
	pthread_mutex_lock(&e->mu);
	if (e->n_sub == MAX_SUBMITS) {
		pthread_mutex_unlock(&e->mu);
		json_decref(payload);
		*error_r = "too many";
		return -ENOSPC;
	}
	e->sub_type[e->n_sub] = xstrdup(type);
	e->sub_payload[e->n_sub] = payload;
	e->n_sub++;
	pthread_mutex_unlock(&e->mu);
	return 0;
}

void engine_own_write(struct engine *e, const char *path)
{
	(void)e;
	(void)path;
}

struct handler *handler_new(const struct handler_ops *ops, const char *name)
{
	struct handler *h = xcalloc(1, sizeof(*h));

	h->ops = ops;
	h->name = xstrdup(name);
	return h;
}

void handler_add_pattern(struct handler *h, const char *pattern)
{
	h->patterns = xrealloc(h->patterns,
			       (h->n_patterns + 1) * sizeof(*h->patterns));
	h->patterns[h->n_patterns++] = xstrdup(pattern);
}

static void fake_handler_destroy(struct handler *h)
{
	if (h->ops->free != NULL)
		h->ops->free(h);
	for (size_t i = 0; i < h->n_patterns; i++)
		free(h->patterns[i]);
	free(h->patterns);
	free(h->name);
	free(h);
}

void handler_free_unowned(struct handler **hp)
{
	struct handler *h = *hp;

	*hp = NULL;
	if (h != NULL)
		fake_handler_destroy(h);
}

int engine_handler_add(struct engine *e, struct handler *h,
		       const char **error_r)
{
	for (size_t i = 0; i < e->n_handlers; i++) {
		if (strcmp(e->handlers[i]->name, h->name) == 0) {
			*error_r = "taken";
			return -EEXIST;
		}
	}
	assert_true(e->n_handlers < MAX_HANDLERS);
	e->handlers[e->n_handlers++] = h;
	return 0;
}

void engine_handler_remove(struct engine *e, const char *name)
{
	for (size_t i = 0; i < e->n_handlers; i++) {
		struct handler *h = e->handlers[i];

		if (strcmp(h->name, name) != 0)
			continue;
		memmove(e->handlers + i, e->handlers + i + 1,
			(e->n_handlers - i - 1) * sizeof(*e->handlers));
		e->n_handlers--;
		fake_handler_destroy(h);
		return;
	}
}

static struct handler *fake_handler(struct engine *e, const char *name)
{
	for (size_t i = 0; i < e->n_handlers; i++) {
		if (strcmp(e->handlers[i]->name, name) == 0)
			return e->handlers[i];
	}
	return NULL;
}

/* The handler's patterns joined with spaces (static buffer). */
static const char *fake_patterns(struct handler *h)
{
	static char buf[256];

	buf[0] = '\0';
	for (size_t i = 0; h != NULL && i < h->n_patterns; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s",
			 i > 0 ? " " : "", h->patterns[i]);
	return buf;
}

/* dispatch_done() records the result of the one delivery in flight. */
static struct {
	struct delivery *d;
	bool done;
	int rc;
	char *error;
} res;

void dispatch_done(struct delivery *d, int rc, const char *error)
{
	assert_ptr_equal(d, res.d);
	assert_false(res.done);
	res.done = true;
	res.rc = rc;
	res.error = error != NULL ? xstrdup(error) : NULL;
}

void delivery_started(struct delivery *d)
{
	(void)d;
}

/* The control replies of the hooks' commands. */
struct control_reply {
	bool done;
	json_t *result;
	char *text;
	int exit_status;
};

void control_reply_ok(struct control_reply **reply, json_t *result,
		      const char *text, int exit_status)
{
	struct control_reply *r = *reply;

	*reply = NULL;
	assert_false(r->done);
	r->done = true;
	r->result = result;
	r->text = text != NULL ? xstrdup(text) : NULL;
	r->exit_status = exit_status;
}

void control_reply_error(struct control_reply **reply, int exit_status,
			 const char *fmt, ...)
{
	struct control_reply *r = *reply;
	va_list ap;

	*reply = NULL;
	assert_false(r->done);
	r->done = true;
	va_start(ap, fmt);
	if (vasprintf(&r->text, fmt, ap) < 0)
		abort();
	va_end(ap);
	r->exit_status = exit_status;
}

unsigned control_reply_uid(const struct control_reply *reply)
{
	(void)reply;
	return 0;
}

/* ---- the panel DB given in hooks_deps ----------------------------------- */

static struct {
	unsigned calls;
	char *sql;
	json_t *params;
	void *ctx;
} dbq;

static int fake_db_query(void *ctx, const char *sql, json_t *params,
			 json_t **rows_r, char **error_r)
{
	(void)error_r;
	dbq.calls++;
	dbq.ctx = ctx;
	free(dbq.sql);
	dbq.sql = xstrdup(sql);
	json_decref(dbq.params);
	dbq.params = json_deep_copy(params);
	*rows_r = json_pack("[{ss}]", "username", "bob");
	return 0;
}

/* ---- fixture ------------------------------------------------------------ */

struct fx {
	struct engine e;
	char dir[64];
	struct hooks *hk;
	uv_timer_t tick;
	int db_ctx;
};

static void tick_cb(uv_timer_t *t)
{
	(void)t;
}

/* Write `text` to hooks_dir/name with mode (through a temp file and a
 * rename: a new inode, as editors and sed -i do). */
static void put_file(struct fx *fx, const char *name, const char *text,
		     mode_t mode)
{
	char *path = xasprintf("%s/%s", fx->dir, name);
	char *tmp = xasprintf("%s/.tmp-%s", fx->dir, strrchr(path, '/') + 1);
	char *slash = strrchr(name, '/');

	if (slash != NULL) {
		char *sub = xasprintf("%s/%.*s", fx->dir, (int)(slash - name),
				      name);

		mkdir(sub, 0755);
		chmod(sub, 0755);
		free(tmp);
		tmp = xasprintf("%s/.tmp-%s", sub, slash + 1);
		free(sub);
	}
	assert_int_equal(file_write_atomic(tmp, text, strlen(text), mode), 0);
	assert_int_equal(chmod(tmp, mode), 0);
	assert_int_equal(rename(tmp, path), 0);
	free(tmp);
	free(path);
}

static void rm_file(struct fx *fx, const char *name)
{
	char *path = xasprintf("%s/%s", fx->dir, name);

	assert_int_equal(unlink(path), 0);
	free(path);
}

/* Run the loop until cond(fx) holds or ms pass; returns cond(fx). */
static bool run_until(struct fx *fx, bool (*cond)(struct fx *fx),
		      unsigned ms)
{
	int64_t until = mono_ms() + ms;

	while (!cond(fx) && mono_ms() < until)
		uv_run(&fx->e.loop, UV_RUN_ONCE);
	return cond(fx);
}

static int fx_setup(void **state)
{
	struct fx *fx = xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/test_hooks.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	assert_int_equal(uv_loop_init(&fx->e.loop), 0);
	pthread_mutex_init(&fx->e.mu, NULL);
	fx->e.cfg.hooks_dir = fx->dir;
	fx->e.cfg.hooks.memory_kb = 16384;
	fx->e.cfg.hooks.timeout_ms = 3000;
	fx->e.cfg.hooks.output_max = 4096;
	uv_timer_init(&fx->e.loop, &fx->tick);
	uv_timer_start(&fx->tick, tick_cb, 20, 20);
	memset(&res, 0, sizeof(res));
	*state = fx;
	return 0;
}

static void fx_start(struct fx *fx)
{
	const struct hooks_deps deps = {
		.db_query = fake_db_query, .db_ctx = &fx->db_ctx,
	};
	const char *err = NULL;

	assert_int_equal(hooks_start(&fx->e, &deps, &fx->hk, &err), 0);
	assert_non_null(fx->hk);
}

static int fx_teardown(void **state)
{
	struct fx *fx = *state;
	char *cmd;

	hooks_stop(&fx->hk);
	assert_null(fx->hk);
	/* every handler is gone with the hooks */
	assert_int_equal(fx->e.n_handlers, 0);
	uv_close((uv_handle_t *)&fx->tick, NULL);
	while (uv_run(&fx->e.loop, UV_RUN_DEFAULT) != 0)
		;
	assert_int_equal(uv_loop_close(&fx->e.loop), 0);
	for (size_t i = 0; i < fx->e.n_sub; i++) {
		free(fx->e.sub_type[i]);
		json_decref(fx->e.sub_payload[i]);
	}
	pthread_mutex_destroy(&fx->e.mu);
	free(res.error);
	memset(&res, 0, sizeof(res));
	free(dbq.sql);
	json_decref(dbq.params);
	memset(&dbq, 0, sizeof(dbq));
	cmd = xasprintf("rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(fx);
	return 0;
}

static bool result_done(struct fx *fx)
{
	(void)fx;
	return res.done;
}

/* Deliver one event (type, subject example.com) to handler `name` and wait
 * for its result. */
static void deliver(struct fx *fx, const char *name, const char *type)
{
	struct handler *h = fake_handler(&fx->e, name);
	const char *why = NULL;
	struct delivery *d;

	assert_non_null(h);
	d = xcalloc(1, sizeof(*d));
	d->ev = event_new(type, "example.com", "test", "node1", now_ms(),
			  json_pack("{ss}", "domain", "example.com"), &why);
	assert_non_null(d->ev);
	event_set_id(d->ev, 42);
	d->h = h;
	free(res.error);
	memset(&res, 0, sizeof(res));
	res.d = d;
	h->ops->deliver(h, d);
	assert_true(run_until(fx, result_done, 10000));
	assert_null(d->hdata);
	event_unref(&d->ev);
	free(d);
}

/* Run control command `name` of hooks_commands[] with args (a JSON array,
 * stolen) and wait for its reply (the caller frees it). */
static struct control_reply *command(struct fx *fx, const char *name,
				     json_t *args)
{
	struct control_reply *r = xcalloc(1, sizeof(*r)), *arg = r;
	const struct control_command *c;
	json_t *req = json_object();
	int64_t until = mono_ms() + 10000;

	for (c = hooks_commands; c->name != NULL; c++) {
		if (strcmp(c->name, name) == 0)
			break;
	}
	assert_non_null(c->name);
	c->fn(arg, args, req, fx->hk);
	while (!r->done && mono_ms() < until)
		uv_run(&fx->e.loop, UV_RUN_ONCE);
	assert_true(r->done);
	json_decref(args);
	json_decref(req);
	return r;
}

static void reply_free(struct control_reply *r)
{
	json_decref(r->result);
	free(r->text);
	free(r);
}

/* ---- tests -------------------------------------------------------------- */

static const char *lua_two =
	"ophook.on('domain.added', function(ev) end)\n"
	"ophook.on('cert.*', { priority = 5 }, function(ev) end)\n";

/* A Lua hook and an exec hook in hooks_dir become handlers named after
 * them with their patterns; a delivery runs the exec hook with the event
 * on stdin. */
static void test_handlers_found(void **state)
{
	struct fx *fx = *state;
	struct handler *lua, *ex;
	char *script, *out, *data = NULL;
	size_t len = 0;

	out = xasprintf("%s/out.json", fx->dir);
	script = xasprintf("#!/bin/sh\ncat > '%s'\n", out);
	put_file(fx, "two.lua", lua_two, 0644);
	put_file(fx, "domain.added.d/10-save", script, 0755);
	put_file(fx, "domain.added.d/20-notexec", "#!/bin/sh\n", 0644);
	fx_start(fx);

	lua = fake_handler(&fx->e, "lua:two.lua");
	assert_non_null(lua);
	assert_string_equal(fake_patterns(lua), "domain.added cert.*");
	assert_true(lua->serial);
	ex = fake_handler(&fx->e, "exec:domain.added.d/10-save");
	assert_non_null(ex);
	assert_string_equal(fake_patterns(ex), "domain.added");
	/* not executable: no handler */
	assert_null(fake_handler(&fx->e, "exec:domain.added.d/20-notexec"));
	assert_int_equal(fx->e.n_handlers, 2);

	deliver(fx, "exec:domain.added.d/10-save", "domain.added");
	assert_int_equal(res.rc, 0);
	assert_int_equal(file_read_nofollow(out, 1 << 20, &data, &len), 0);
	assert_non_null(strstr(data, "\"type\":\"domain.added\""));
	assert_non_null(strstr(data, "\"id\":42"));
	free(data);

	deliver(fx, "lua:two.lua", "domain.added");
	assert_int_equal(res.rc, 0);
	free(script);
	free(out);
}

static bool reloaded(struct fx *fx)
{
	return strcmp(fake_patterns(fake_handler(&fx->e, "lua:a.lua")),
		      "user.added") == 0;
}

/* A hook file changed on disk is loaded again: its handler follows the
 * new version's patterns. */
static void test_reload(void **state)
{
	struct fx *fx = *state;

	put_file(fx, "a.lua", "ophook.on('domain.added', function() end)\n",
		 0644);
	fx_start(fx);
	assert_string_equal(fake_patterns(fake_handler(&fx->e, "lua:a.lua")),
			    "domain.added");

	put_file(fx, "a.lua", "ophook.on('user.added', function() end)\n",
		 0644);
	assert_true(run_until(fx, reloaded, 10000));
	assert_int_equal(fx->e.n_handlers, 1);
}

static bool all_gone(struct fx *fx)
{
	return fx->e.n_handlers == 0;
}

/* A removed hook file takes its handler with it. */
static void test_remove(void **state)
{
	struct fx *fx = *state;

	put_file(fx, "a.lua", lua_two, 0644);
	put_file(fx, "user.added.d/10-x", "#!/bin/sh\nexit 0\n", 0755);
	fx_start(fx);
	assert_non_null(fake_handler(&fx->e, "lua:a.lua"));
	assert_non_null(fake_handler(&fx->e, "exec:user.added.d/10-x"));

	rm_file(fx, "a.lua");
	rm_file(fx, "user.added.d/10-x");
	assert_true(run_until(fx, all_gone, 10000));
}

/* `check` asks the pre hooks: a deny names its reason and hook. */
static void test_check(void **state)
{
	struct fx *fx = *state;
	struct control_reply *r;

	put_file(fx, "reserved.lua",
		 "ophook.pre('domain.add', function(req)\n"
		 "  if req.domain == 'bad.com' then\n"
		 "    return ophook.deny('reserved name')\n"
		 "  end\n"
		 "end)\n", 0644);
	fx_start(fx);

	r = command(fx, "check", json_pack("[ss]", "domain.add",
					   "domain=bad.com"));
	assert_int_equal(r->exit_status, 1);
	assert_false(json_is_true(json_object_get(r->result, "allow")));
	assert_string_equal(json_string_value(json_object_get(r->result,
							      "reason")),
			    "reserved name");
	assert_string_equal(json_string_value(json_object_get(r->result,
							      "hook")),
			    "reserved.lua");
	reply_free(r);

	r = command(fx, "check", json_pack("[ss]", "domain.add",
					   "domain=good.com"));
	assert_int_equal(r->exit_status, 0);
	assert_true(json_is_true(json_object_get(r->result, "allow")));
	assert_int_equal(json_array_size(json_object_get(r->result, "hooks")),
			 1);
	reply_free(r);

	/* an intent no hook checks is allowed by none */
	r = command(fx, "check", json_pack("[s]", "user.add"));
	assert_int_equal(r->exit_status, 0);
	assert_int_equal(json_array_size(json_object_get(r->result, "hooks")),
			 0);
	reply_free(r);
}

/* `hooks lint` reports a broken Lua file with its line. */
static void test_lint(void **state)
{
	struct fx *fx = *state;
	struct control_reply *r;
	json_t *f;

	put_file(fx, "broken.lua", "local a = 1\nlocal b = 2\nlocal = 3\n",
		 0644);
	put_file(fx, "good.lua", lua_two, 0644);
	fx_start(fx);

	r = command(fx, "hooks.lint", json_pack("[s]", "broken.lua"));
	assert_int_equal(r->exit_status, 1);
	assert_false(json_is_true(json_object_get(r->result, "ok")));
	f = json_array_get(json_object_get(r->result, "files"), 0);
	assert_false(json_is_true(json_object_get(f, "ok")));
	assert_non_null(strstr(json_string_value(json_object_get(f, "error")),
			       "broken.lua:3:"));
	assert_non_null(strstr(r->text, "broken.lua:3:"));
	reply_free(r);

	r = command(fx, "hooks.lint", json_pack("[s]", "good.lua"));
	assert_int_equal(r->exit_status, 0);
	assert_true(json_is_true(json_object_get(r->result, "ok")));
	reply_free(r);
}

/* Lua's ophook.db.query reaches the function given in hooks_deps. */
static void test_db_query(void **state)
{
	struct fx *fx = *state;
	json_t *p;

	put_file(fx, "db.lua",
		 "ophook.on('domain.added', function(ev)\n"
		 "  local rows, err = ophook.db.query(\n"
		 "    'SELECT username FROM users WHERE id = ?', 7)\n"
		 "  if rows == nil then return false, err end\n"
		 "  ophook.emit('test.db_seen', { subject = 'x',\n"
		 "              user = rows[1].username })\n"
		 "end)\n", 0644);
	fx_start(fx);

	deliver(fx, "lua:db.lua", "domain.added");
	assert_int_equal(res.rc, 0);
	assert_int_equal(dbq.calls, 1);
	assert_ptr_equal(dbq.ctx, &fx->db_ctx);
	assert_string_equal(dbq.sql, "SELECT username FROM users WHERE id = ?");
	assert_int_equal(json_array_size(dbq.params), 1);
	assert_int_equal(json_integer_value(json_array_get(dbq.params, 0)), 7);
	/* the rows came back into Lua */
	pthread_mutex_lock(&fx->e.mu);
	assert_int_equal(fx->e.n_sub, 1);
	assert_string_equal(fx->e.sub_type[0], "test.db_seen");
	p = fx->e.sub_payload[0];
	assert_string_equal(json_string_value(json_object_get(p, "user")),
			    "bob");
	pthread_mutex_unlock(&fx->e.mu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handlers_found, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_reload, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_remove, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_check, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_lint, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_db_query, fx_setup,
						fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
