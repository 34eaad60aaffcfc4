/* Plugin host: ABI mismatch refused naming both versions, duplicate names
 * refused, init failures reported, unsafe files refused, a delivery run
 * through the plugin's on_event.  Against a fake bus (the engine_* and
 * dispatch_* functions the plugin host calls are defined here), so no
 * journal and no dispatcher are built. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "engine.h"
#include "pluginhost.h"
#include "util.h"

/* ---- fake bus ---- */

#define FAKE_MAX_HANDLERS 8

struct engine {
	uv_loop_t *loop;
	struct config *cfg;
	struct handler *handlers[FAKE_MAX_HANDLERS];
	size_t n_handlers;
	unsigned submitted, own_writes;
	int done_rc;                 /* last dispatch_done */
	char done_error[256];
	unsigned dones, starts;
};

static struct engine *fe;

uv_loop_t *engine_loop(struct engine *e) { return e->loop; }
const struct config *engine_config(struct engine *e) { return e->cfg; }

int engine_submit(struct engine *e, const char *type, const char *subject,
		  const char *source, json_t *payload, engine_submit_cb *cb,
		  void *ctx, const char **error_r)
{
	(void)type, (void)subject, (void)source, (void)cb, (void)ctx,
		(void)error_r;
	json_decref(payload);
	e->submitted++;
	return 0;
}

void engine_own_write(struct engine *e, const char *path)
{
	(void)path;
	e->own_writes++;
}

int engine_handler_add(struct engine *e, struct handler *h,
		       const char **error_r)
{
	for (size_t i = 0; i < e->n_handlers; i++) {
		if (strcmp(e->handlers[i]->name, h->name) == 0) {
			*error_r = "a handler with this name is already "
				   "registered";
			return -EEXIST;
		}
	}
	assert_true(e->n_handlers < FAKE_MAX_HANDLERS);
	e->handlers[e->n_handlers++] = h;
	return 0;
}

struct handler *engine_handler_find(struct engine *e, const char *name)
{
	for (size_t i = 0; i < e->n_handlers; i++) {
		if (strcmp(e->handlers[i]->name, name) == 0)
			return e->handlers[i];
	}
	return NULL;
}

void engine_handler_remove(struct engine *e, const char *name)
{
	for (size_t i = 0; i < e->n_handlers; i++) {
		struct handler *h = e->handlers[i];

		if (strcmp(h->name, name) != 0)
			continue;
		e->handlers[i] = e->handlers[--e->n_handlers];
		handler_free_unowned(&h); /* nothing in flight here */
		return;
	}
}

void engine_metric_count(struct engine *e, const char *name, uint64_t n)
{
	(void)e;
	(void)name;
	(void)n;
}

void dispatch_done(struct delivery *d, int rc, const char *error)
{
	(void)d;
	fe->dones++;
	fe->done_rc = rc;
	snprintf(fe->done_error, sizeof(fe->done_error), "%s",
		 error != NULL ? error : "");
}

void delivery_started(struct delivery *d)
{
	(void)d;
	fe->starts++;
}

/* ---- fixture ---- */

struct fixture {
	char dir[64];
	uv_loop_t loop;
	struct engine bus;
	struct engine *e;
	struct pluginhost *ph;
};

static char *built(const char *name)
{
	const char *b = getenv("top_builddir");

	return xasprintf("%s/tests/unit/.libs/%s.so", b != NULL ? b : ".",
			 name);
}

/* plugins.NAME: { enabled: true } (a system-folder plugin is opt-in);
 * written says whether `enabled:` is in the entry at all. */
static void cfg_plugin(struct config *c, const char *name, bool enabled,
		       bool written)
{
	struct config_plugin *pl;

	c->plugins = realloc(c->plugins, (c->n_plugins + 1) * sizeof(*pl));
	assert_non_null(c->plugins);
	pl = &c->plugins[c->n_plugins++];
	memset(pl, 0, sizeof(*pl));
	pl->name = xstrdup(name);
	pl->enabled = enabled;
	pl->enabled_set = written;
	pl->crash_limit = CONFIG_CRASH_LIMIT_DEF;
	pl->crash_window_ms = CONFIG_CRASH_WINDOW_DEF_MS;
	pl->settings = json_object();
	pl->settings_pos = json_object();
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct config *c = config_new_default();
	snprintf(f->dir, sizeof(f->dir), "/tmp/ophook-ph.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	free(c->state_dir);
	c->state_dir = xasprintf("%s/state", f->dir);
	free(c->root);
	c->root = xstrdup(f->dir);
	cfg_plugin(c, "testgood", true, true);
	uv_loop_init(&f->loop);
	f->bus.loop = &f->loop;
	f->bus.cfg = c;
	f->e = fe = &f->bus;
	f->ph = pluginhost_new(f->e);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd;

	pluginhost_free(&f->ph);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->bus.n_handlers, 0); /* every handler removed */
	assert_int_equal(uv_loop_close(&f->loop), 0);
	config_free(&f->bus.cfg);
	cmd = xasprintf("rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f);
	return 0;
}

/* Opt-in: a plugin outside the drop-in folder with no entry, or an entry
 * without `enabled: true`, is not loaded. */
static void test_opt_in(void **state)
{
	struct fixture *f = *state;
	struct config *c = (struct config *)f->bus.cfg;
	char *path = built("testgood"), *err = NULL;

	free(c->plugins[0].name);
	c->plugins[0].name = xstrdup("other");
	assert_int_equal(pluginhost_load(f->ph, path, &err), -ECANCELED);
	assert_non_null(strstr(err, "not enabled"));
	free(err);
	err = NULL;
	cfg_plugin(c, "testgood", true, false); /* settings only */
	assert_int_equal(pluginhost_load(f->ph, path, &err), -ECANCELED);
	assert_null(engine_handler_find(f->e, "plugin:testgood"));
	free(err);
	free(path);
}

static void test_load_good(void **state)
{
	struct fixture *f = *state;
	char *path = built("testgood"), *err = NULL;

	assert_int_equal(pluginhost_load(f->ph, path, &err), 0);
	assert_non_null(engine_handler_find(f->e, "plugin:testgood"));
	free(path);
}

static void test_abi_mismatch(void **state)
{
	struct fixture *f = *state;
	char *path = built("testbadabi"), *err = NULL, *want;

	assert_int_equal(pluginhost_load(f->ph, path, &err), -EPROTO);
	assert_non_null(err);
	/* names both versions */
	assert_non_null(strstr(err, "plugin ABI version 999"));
	want = xasprintf("ABI version %u", OPHOOK_ABI_VERSION);
	assert_non_null(strstr(err, want));
	assert_null(engine_handler_find(f->e, "plugin:testgood"));
	free(want);
	free(err);
	free(path);
}

static void test_duplicate_name(void **state)
{
	struct fixture *f = *state;
	char *good = built("testgood"), *dup = built("testdup"), *err = NULL;

	assert_int_equal(pluginhost_load(f->ph, good, &err), 0);
	assert_int_equal(pluginhost_load(f->ph, dup, &err), -EEXIST);
	assert_non_null(strstr(err, "already loaded from"));
	assert_non_null(strstr(err, "testgood.so"));
	free(err);
	free(good);
	free(dup);
}

static void test_unsafe_file(void **state)
{
	struct fixture *f = *state;
	char *src = built("testgood"), *err = NULL;
	char *copy = xasprintf("%s/ww.so", f->dir);
	char *link = xasprintf("%s/ln.so", f->dir);
	char *cmd = xasprintf("cp %s %s && chmod 666 %s", src, copy, copy);

	assert_int_equal(system(cmd), 0);
	assert_int_equal(pluginhost_load(f->ph, copy, &err), -EPERM);
	assert_non_null(strstr(err, "writable by group or others"));
	free(err);
	err = NULL;
	assert_int_equal(symlink(src, link), 0);
	assert_int_equal(pluginhost_load(f->ph, link, &err), -EPERM);
	assert_non_null(strstr(err, "symlink"));
	free(err);
	free(cmd);
	free(copy);
	free(link);
	free(src);
}

static void test_not_a_plugin(void **state)
{
	struct fixture *f = *state;
	char *path = xasprintf("%s/junk.so", f->dir), *err = NULL;
	FILE *fp = fopen(path, "w");

	fputs("not an ELF file\n", fp);
	fclose(fp);
	chmod(path, 0644);
	assert_int_equal(pluginhost_load(f->ph, path, &err), -ENOEXEC);
	assert_non_null(strstr(err, path));
	free(err);
	free(path);
}

/* One event through the fake bus: the plugin's on_event runs (off the loop
 * thread) and its result reaches dispatch_done, error text included. */
static void deliver_one(struct fixture *f, struct handler *h, json_t *payload)
{
	const char *why = NULL;
	struct delivery d = { 0 };
	struct event *ev = event_new("test.one", "example.com", "socket",
				     "node1", now_ms(), payload, &why);

	assert_non_null(ev);
	event_set_id(ev, 7);
	d.ev = ev;
	d.h = h;
	event_view_init(&d.view, ev, 1);
	f->bus.dones = 0;
	h->ops->deliver(h, &d);
	while (f->bus.dones == 0)
		uv_run(&f->loop, UV_RUN_ONCE);
	event_unref(&ev);
}

static void test_deliver(void **state)
{
	struct fixture *f = *state;
	char *path = built("testgood"), *err = NULL;
	struct handler *h;

	assert_int_equal(pluginhost_load(f->ph, path, &err), 0);
	h = engine_handler_find(f->e, "plugin:testgood");
	assert_non_null(h);
	assert_true(handler_matches(h, "test.one"));
	assert_false(handler_matches(h, "domain.added"));
	deliver_one(f, h, NULL);
	assert_int_equal(f->bus.done_rc, 0);
	assert_int_equal(f->bus.starts, 1);
	deliver_one(f, h, json_pack("{s:s}", "fail", "told to fail"));
	assert_int_equal(f->bus.done_rc, -EIO);
	assert_non_null(strstr(f->bus.done_error, "told to fail"));
	/* unload removes the handler from the bus */
	assert_int_equal(pluginhost_unload(f->ph, "testgood"), 0);
	while (engine_handler_find(f->e, "plugin:testgood") != NULL)
		uv_run(&f->loop, UV_RUN_ONCE);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_opt_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abi_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_plugin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deliver, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
