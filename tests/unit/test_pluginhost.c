/* Plugin host: ABI mismatch refused naming both versions, duplicate names
 * refused, init failures reported, unsafe files refused. */
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
#include "engine.h"
#include "pluginhost.h"
#include "util.h"

struct fixture {
	char dir[64];
	uv_loop_t loop;
	struct engine *e;
	struct pluginhost *ph;
};

static char *built(const char *name)
{
	const char *b = getenv("top_builddir");

	return xasprintf("%s/tests/unit/.libs/%s.so", b != NULL ? b : ".",
			 name);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	struct config *c = config_new_default();
	const char *err = NULL;

	snprintf(f->dir, sizeof(f->dir), "/tmp/ophook-ph.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	free(c->state_dir);
	c->state_dir = xasprintf("%s/state", f->dir);
	free(c->root);
	c->root = xstrdup(f->dir);
	uv_loop_init(&f->loop);
	assert_int_equal(engine_new(&f->loop, c, &f->e, &err), 0);
	f->ph = pluginhost_new(f->e);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd;

	pluginhost_free(&f->ph);
	engine_stop(f->e, NULL, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	engine_free(&f->e);
	uv_loop_close(&f->loop);
	cmd = xasprintf("rm -rf %s", f->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f);
	return 0;
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_load_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abi_mismatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_duplicate_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_plugin, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
