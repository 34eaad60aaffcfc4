/* Unit tests: plugins/common/run.c (run_argv, argv helpers) and the caddy
 * plugin against the fake host (tests/unit/pluginmock.h). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/common/run.h"
#include "pluginmock.h"

/* ---- run_argv ---- */

static void test_run_echo(void **state)
{
	const char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3", NULL };
	const char *error = NULL;
	char *out, *err;
	int status;

	(void)state;
	assert_int_equal(run_argv(argv, NULL, 5000, &out, &err, &status, &error), 0);
	assert_string_equal(out, "out\n");
	assert_string_equal(err, "err\n");
	assert_int_equal(status, 3);
	free(out);
	free(err);
}

static void test_run_stdin(void **state)
{
	const char *argv[] = { "cat", NULL };
	const char *error = NULL;
	char *out;
	int status;

	(void)state;
	assert_int_equal(run_argv(argv, "hello\nworld", 5000, &out, NULL, &status,
				  &error), 0);
	assert_string_equal(out, "hello\nworld");
	assert_int_equal(status, 0);
	free(out);
}

/* A child that never reads stdin and exits: no SIGPIPE for us. */
static void test_run_stdin_ignored(void **state)
{
	const char *argv[] = { "true", NULL };
	const char *error = NULL;
	char *big = malloc(4 << 20);
	int status;

	(void)state;
	memset(big, 'x', (4 << 20) - 1);
	big[(4 << 20) - 1] = '\0';
	assert_int_equal(run_argv(argv, big, 5000, NULL, NULL, &status, &error), 0);
	assert_int_equal(status, 0);
	free(big);
}

static void test_run_not_found(void **state)
{
	const char *argv[] = { "/nonexistent/ophook-no-such-binary", NULL };
	const char *error = NULL;
	char *out = (char *)"x";
	int status;

	(void)state;
	assert_int_equal(run_argv(argv, NULL, 1000, &out, NULL, &status, &error),
			 -ENOENT);
	assert_null(out);
	assert_non_null(strstr(error, "ophook-no-such-binary"));
}

static void test_run_timeout(void **state)
{
	const char *argv[] = { "sh", "-c", "echo started; sleep 30", NULL };
	const char *error = NULL;
	char *out;
	int status;

	(void)state;
	assert_int_equal(run_argv(argv, NULL, 200, &out, NULL, &status, &error),
			 -ETIMEDOUT);
	assert_int_equal(status, 128 + SIGTERM);
	assert_string_equal(out, "started\n");
	assert_non_null(strstr(error, "timeout"));
	free(out);
}

/* A child that ignores SIGTERM gets SIGKILL. */
static void test_run_timeout_kill(void **state)
{
	const char *argv[] = { "sh", "-c", "trap '' TERM; while :; do sleep 0.05; done",
			       NULL };
	const char *error = NULL;
	int status;

	(void)state;
	assert_int_equal(run_argv(argv, NULL, 100, NULL, NULL, &status, &error),
			 -ETIMEDOUT);
	assert_int_equal(status, 128 + SIGKILL);
}

/* Output beyond the cap is dropped, the child is not blocked. */
static void test_run_cap(void **state)
{
	const char *argv[] = { "head", "-c", "3000000", "/dev/zero", NULL };
	const char *error = NULL;
	char *out;
	int status;

	(void)state;
	assert_int_equal(run_argv(argv, NULL, 10000, &out, NULL, &status, &error), 0);
	assert_int_equal(status, 0);
	assert_non_null(strstr(out + RUN_OUTPUT_MAX, "truncated"));
	free(out);
}

/* A daemonised grandchild holding stdout does not hang us. */
static void test_run_grandchild(void **state)
{
	const char *argv[] = { "sh", "-c", "sleep 5 & echo done", NULL };
	const char *error = NULL;
	char *out;
	int status;
	time_t t0 = time(NULL);

	(void)state;
	assert_int_equal(run_argv(argv, NULL, 20000, &out, NULL, &status, &error), 0);
	assert_int_equal(status, 0);
	assert_string_equal(out, "done\n");
	assert_true(time(NULL) - t0 < 4);
	free(out);
}

static void test_argv_setting(void **state)
{
	char **argv;

	(void)state;
	assert_int_equal(argv_from_setting("[\"podman\",\"exec\",\"caddy\",\"a b\"]",
					   &argv), 0);
	assert_int_equal(argv_len((const char *const *)argv), 4);
	assert_string_equal(argv[3], "a b");
	argv_free(&argv);
	assert_null(argv);

	assert_int_equal(argv_from_setting("  rndc  -p 953\treload ", &argv), 0);
	assert_int_equal(argv_len((const char *const *)argv), 4);
	assert_string_equal(argv[0], "rndc");
	assert_string_equal(argv[3], "reload");
	assert_int_equal(argv_subst(argv, "953", "{x}"), 0);
	assert_string_equal(argv[2], "{x}");
	assert_int_equal(argv_subst(argv, "{x}", "a{x}b"), 0);
	assert_string_equal(argv[2], "a{x}b");
	argv_free(&argv);

	assert_int_equal(argv_from_setting("[]", &argv), -EINVAL);
	assert_int_equal(argv_from_setting("[\"a\", 1]", &argv), -EINVAL);
	assert_int_equal(argv_from_setting("[\"a\"", &argv), -EINVAL);
	assert_int_equal(argv_from_setting("[\"a\\u0000b\"]", &argv), -EINVAL);
	assert_int_equal(argv_from_setting("[\"\"]", &argv), -EINVAL);
	assert_int_equal(argv_from_setting("   ", &argv), -EINVAL);
	assert_int_equal(argv_from_setting(NULL, &argv), -EINVAL);
	assert_null(argv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_echo),
		cmocka_unit_test(test_run_stdin),
		cmocka_unit_test(test_run_stdin_ignored),
		cmocka_unit_test(test_run_not_found),
		cmocka_unit_test(test_run_timeout),
		cmocka_unit_test(test_run_timeout_kill),
		cmocka_unit_test(test_run_cap),
		cmocka_unit_test(test_run_grandchild),
		cmocka_unit_test(test_argv_setting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
