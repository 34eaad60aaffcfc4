/* The in-flight ledger: what a process that died left running is found by
 * the next one (a child process that exits without releasing plays the
 * crash), released calls are not, a full ledger runs calls unrecorded, the
 * file is never opened through a symlink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ledger.h"
#include "util.h"

struct fixture {
	char dir[64];
	char *path;
};

struct seen {
	unsigned n;
	int64_t ids[8];
	char handlers[8][160];
};

static void collect(int64_t event_id, const char *handler, void *ctx)
{
	struct seen *s = ctx;

	if (s->n < 8) {
		s->ids[s->n] = event_id;
		snprintf(s->handlers[s->n], sizeof(s->handlers[0]), "%s",
			 handler);
	}
	s->n++;
}

static bool seen_has(const struct seen *s, int64_t id, const char *handler)
{
	for (unsigned i = 0; i < s->n && i < 8; i++) {
		if (s->ids[i] == id && strcmp(s->handlers[i], handler) == 0)
			return true;
	}
	return false;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/ophook-ledger.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->path = xasprintf("%s/inflight", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf %s", f->dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(f->path);
	free(f);
	return 0;
}

/* A child opens the ledger, releases one call and dies with two running. */
static void crash_with_two_running(const char *path)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		struct ledger *l = NULL;
		const char *err = NULL;
		struct seen s = { 0 };
		int done;

		if (ledger_open(path, 16, &l, &err) < 0)
			_exit(10);
		ledger_take_leftovers(l, collect, &s);
		done = ledger_claim(l, 5, "plugin:done");
		if (ledger_claim(l, 7, "plugin:caddy") < 0 ||
		    ledger_claim(l, 8, "lua:notify.lua") < 0 || done < 0)
			_exit(11);
		ledger_release(l, done);
		_exit(0); /* no release, no close: as kill -9 */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_leftovers_after_crash(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = NULL;
	const char *err = NULL;
	struct seen s = { 0 };

	crash_with_two_running(f->path);
	assert_int_equal(ledger_open(f->path, 16, &l, &err), 0);
	assert_int_equal(ledger_take_leftovers(l, collect, &s), 2);
	assert_int_equal(s.n, 2);
	assert_true(seen_has(&s, 7, "plugin:caddy"));
	assert_true(seen_has(&s, 8, "lua:notify.lua"));
	assert_false(seen_has(&s, 5, "plugin:done"));
	/* taken once: the ledger is clear now */
	memset(&s, 0, sizeof(s));
	assert_int_equal(ledger_take_leftovers(l, collect, &s), 0);
	ledger_close(&l);
	assert_null(l);
	/* and stays clear for the next process */
	assert_int_equal(ledger_open(f->path, 16, &l, &err), 0);
	assert_int_equal(ledger_take_leftovers(l, collect, &s), 0);
	ledger_close(&l);
}

static void test_full(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = NULL;
	const char *err = NULL;
	struct seen s = { 0 };
	int a, b;

	assert_int_equal(ledger_open(f->path, 2, &l, &err), 0);
	assert_int_equal(ledger_take_leftovers(l, collect, &s), 0);
	a = ledger_claim(l, 1, "plugin:a");
	b = ledger_claim(l, 2, "plugin:b");
	assert_true(a >= 0 && b >= 0 && a != b);
	assert_int_equal(ledger_claim(l, 3, "plugin:c"), -1);
	ledger_release(l, a);
	assert_int_equal(ledger_claim(l, 3, "plugin:c"), a);
	/* out-of-range and unrecorded slots are ignored */
	ledger_release(l, -1);
	ledger_release(l, 99);
	ledger_close(&l);
}

static void test_long_name(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = NULL;
	const char *err = NULL;
	struct seen s = { 0 };
	char name[400];

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_int_equal(ledger_open(f->path, 4, &l, &err), 0);
	ledger_take_leftovers(l, collect, &s);
	assert_true(ledger_claim(l, 9, name) >= 0);
	ledger_close(&l);
	assert_int_equal(ledger_open(f->path, 4, &l, &err), 0);
	assert_int_equal(ledger_take_leftovers(l, collect, &s), 1);
	assert_int_equal(s.ids[0], 9);
	assert_true(strlen(s.handlers[0]) < sizeof(name) - 1);
	assert_int_equal(strncmp(s.handlers[0], name, strlen(s.handlers[0])), 0);
	ledger_close(&l);
}

static void test_symlink_refused(void **state)
{
	struct fixture *f = *state;
	struct ledger *l = NULL;
	const char *err = NULL;
	char *target = xasprintf("%s/elsewhere", f->dir);

	assert_int_equal(symlink(target, f->path), 0);
	assert_int_equal(ledger_open(f->path, 4, &l, &err), -ELOOP);
	assert_null(l);
	assert_non_null(err);
	assert_int_equal(access(target, F_OK), -1); /* nothing created */
	free(target);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_leftovers_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
