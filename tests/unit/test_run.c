/* Unit tests: plugins/common/run.c, the limits of run_argv_limited(). */
#define _GNU_SOURCE
#include <errno.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../plugins/common/run.h"

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RLIMIT_AS reaches the child (the shell's `ulimit -v` is in KiB), and no
 * descriptor of ours but 0..2 does. */
static void test_memory_limit_and_fds(void **state)
{
	const char *argv[] = { "sh", "-c", "ulimit -v; ls /proc/self/fd",
			       NULL };
	struct run_limits lim = { .as_bytes = 64u << 20 };
	char *out = NULL, *err = NULL;
	const char *why = NULL;
	int status = -1, fd;

	(void)state;
	fd = dup(1); /* not close-on-exec: must not reach the child */
	assert_true(fd > 2);
	assert_int_equal(run_argv_limited(argv, NULL, 5000, &lim, &out, &err,
					  &status, &why),
			 0);
	close(fd);
	assert_int_equal(status, 0);
	assert_true(strncmp(out, "65536\n", 6) == 0);
	/* ls's own directory fd is 3; nothing above it */
	assert_string_equal(out + 6, "0\n1\n2\n3\n");
	free(out);
	free(err);
}

/* A CPU hog is stopped by RLIMIT_CPU, well before the wall timeout. */
static void test_cpu_limit(void **state)
{
	const char *argv[] = { "sh", "-c", "while :; do :; done", NULL };
	struct run_limits lim = { .cpu_s = 1 };
	const char *why = NULL;
	int status = -1;
	int64_t t0 = now_ms();

	(void)state;
	assert_int_equal(run_argv_limited(argv, NULL, 20000, &lim, NULL, NULL,
					  &status, &why),
			 0);
	assert_true(status == 128 + SIGXCPU || status == 128 + SIGKILL);
	assert_true(now_ms() - t0 < 10000);
}

static int cancel_calls;

static bool cancel_after_3(void *arg)
{
	(void)arg;
	return ++cancel_calls > 3;
}

/* cancel() kills the child at once: -ECANCELED. */
static void test_cancel(void **state)
{
	const char *argv[] = { "sleep", "30", NULL };
	struct run_limits lim = { .cancel = cancel_after_3 };
	const char *why = NULL;
	int status = -1;
	int64_t t0 = now_ms();

	(void)state;
	assert_int_equal(run_argv_limited(argv, NULL, 60000, &lim, NULL, NULL,
					  &status, &why),
			 -ECANCELED);
	assert_int_equal(status, 128 + SIGKILL);
	assert_non_null(strstr(why, "stopping"));
	assert_true(now_ms() - t0 < 5000);
}

/* The wall timeout still holds, and a missing program is -ENOENT. */
static void test_timeout_and_missing(void **state)
{
	const char *argv[] = { "sleep", "30", NULL };
	const char *missing[] = { "/nonexistent/prog", NULL };
	struct run_limits lim = { 0 };
	const char *why = NULL;
	int status = -1;

	(void)state;
	assert_int_equal(run_argv_limited(argv, NULL, 200, &lim, NULL, NULL,
					  &status, &why),
			 -ETIMEDOUT);
	assert_int_equal(run_argv_limited(missing, NULL, 200, &lim, NULL,
					  NULL, &status, &why),
			 -ENOENT);
}

/* As root, drop reaches the child: it runs as nobody, no groups. */
static void test_drop_user(void **state)
{
	const char *argv[] = { "id", NULL };
	struct run_limits lim = { 0 };
	char *out = NULL, *expect = NULL;
	const char *why = NULL;
	struct passwd *pw = getpwnam("nobody");
	int status = -1;

	(void)state;
	assert_int_equal(run_limits_user(&lim, "root", &why), 0);
	assert_false(lim.drop);
	assert_int_equal(run_limits_user(&lim, "no-such-user-here", &why),
			 geteuid() == 0 ? -ENOENT : 0);
	if (geteuid() != 0 || pw == NULL)
		skip();
	assert_int_equal(run_limits_user(&lim, "nobody", &why), 0);
	assert_true(lim.drop);
	assert_int_equal(run_argv_limited(argv, NULL, 5000, &lim, &out, NULL,
					  &status, &why),
			 0);
	assert_int_equal(status, 0);
	assert_true(asprintf(&expect, "uid=%u(", (unsigned)pw->pw_uid) > 0);
	assert_true(strncmp(out, expect, strlen(expect)) == 0);
	assert_null(strstr(out, "groups=0("));
	free(expect);
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memory_limit_and_fds),
		cmocka_unit_test(test_cpu_limit),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_timeout_and_missing),
		cmocka_unit_test(test_drop_user),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
