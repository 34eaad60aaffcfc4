/* Unit tests: plugins/common/run.c, the one runner of the plugins:
 * run_argv() (posix_spawn), run_argv_ex() (fork, struct run_opts: stdin
 * from a descriptor, cancel by descriptor or callback, uid drop, limits,
 * cwd, parent-death signal, pre-exec steps), run_opts_user() and the argv
 * helpers. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* ---- run_argv(): posix_spawn, no options ---- */

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

/* ---- run_argv_ex(): fork, struct run_opts ---- */

/* RLIMIT_AS reaches the child (the shell's `ulimit -v` is in KiB), no
 * core dumps (`ulimit -c`), and no descriptor of ours but 0..2 does. */
static void test_memory_limit_and_fds(void **state)
{
	const char *argv[] = { "sh", "-c",
			       "ulimit -v; ulimit -c; ls /proc/self/fd", NULL };
	struct run_opts o = { .mem_max = 64u << 20 };
	char *out = NULL, *err = NULL;
	const char *why = NULL;
	int status = -1, fd;

	(void)state;
	fd = dup(1); /* not close-on-exec: must not reach the child */
	assert_true(fd > 2);
	assert_int_equal(run_argv_ex(argv, &o, NULL, 5000, &out, &err,
				     &status, &why),
			 0);
	close(fd);
	assert_int_equal(status, 0);
	assert_true(strncmp(out, "65536\n0\n", 8) == 0);
	/* ls's own directory fd is 3; nothing above it */
	assert_string_equal(out + 8, "0\n1\n2\n3\n");
	free(out);
	free(err);
}

/* A CPU hog is stopped by RLIMIT_CPU, well before the wall timeout. */
static void test_cpu_limit(void **state)
{
	const char *argv[] = { "sh", "-c", "while :; do :; done", NULL };
	struct run_opts o = { .cpu_max_s = 1 };
	const char *why = NULL;
	int status = -1;
	int64_t t0 = now_ms();

	(void)state;
	assert_int_equal(run_argv_ex(argv, &o, NULL, 20000, NULL, NULL,
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
	struct run_opts o = { .cancel = cancel_after_3 };
	const char *why = NULL;
	int status = -1;
	int64_t t0 = now_ms();

	(void)state;
	cancel_calls = 0;
	assert_int_equal(run_argv_ex(argv, &o, NULL, 60000, NULL, NULL,
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
	struct run_opts o = { 0 };
	const char *why = NULL;
	int status = -1;

	(void)state;
	assert_int_equal(run_argv_ex(argv, &o, NULL, 200, NULL, NULL, &status,
				     &why),
			 -ETIMEDOUT);
	assert_int_equal(status, 128 + SIGTERM);
	assert_int_equal(run_argv_ex(missing, &o, NULL, 200, NULL, NULL,
				     &status, &why),
			 -ENOENT);
}

/* As root, drop reaches the child: it runs as nobody (real, effective,
 * saved), no groups. */
static void test_drop_user(void **state)
{
	const char *argv[] = { "sh", "-c", "id; grep '^Uid:' /proc/self/status",
			       NULL };
	struct run_opts o = { 0 };
	char *out = NULL, *expect = NULL;
	const char *why = NULL;
	struct passwd *pw = getpwnam("nobody");
	unsigned u = 0;
	int status = -1;

	(void)state;
	assert_int_equal(run_opts_user(&o, "root", &why), 0);
	assert_false(o.drop);
	assert_int_equal(run_opts_user(&o, "", &why), 0);
	assert_false(o.drop);
	assert_int_equal(run_opts_user(&o, "no-such-user-here", &why),
			 geteuid() == 0 ? -ENOENT : 0);
	if (geteuid() != 0 || pw == NULL)
		skip();
	assert_non_null(strstr(why, "no-such-user-here"));
	u = (unsigned)pw->pw_uid;
	assert_int_equal(run_opts_user(&o, "nobody", &why), 0);
	assert_true(o.drop);
	assert_int_equal(o.uid, pw->pw_uid);
	assert_int_equal(run_argv_ex(argv, &o, NULL, 5000, &out, NULL, &status,
				     &why),
			 0);
	assert_int_equal(status, 0);
	assert_true(asprintf(&expect, "uid=%u(", u) > 0);
	assert_true(strncmp(out, expect, strlen(expect)) == 0);
	assert_null(strstr(out, "groups=0("));
	free(expect);
	assert_true(asprintf(&expect, "Uid:\t%u\t%u\t%u\t%u\n", u, u, u, u) > 0);
	assert_non_null(strstr(out, expect));
	free(expect);
	free(out);
}
/* stdin from a descriptor (stdin_data ignored), limits, cwd (issue 16,
 * finding 2). */
static void test_run_ex_stdin_fd_limits(void **state)
{
	const char *argv[] = { "sh", "-c",
			       "cat; ulimit -v; ulimit -t; pwd",
			       NULL };
	struct run_opts o = { .mem_max = 512ull << 20, .cpu_max_s = 7,
			      .cwd = "/" };
	const char *error = NULL;
	char path[] = "/tmp/test_run_ex.XXXXXX", *out;
	int fd = mkstemp(path), status;

	(void)state;
	assert_true(fd >= 0);
	unlink(path);
	assert_int_equal(write(fd, "from the file\n", 14), 14);
	lseek(fd, 0, SEEK_SET);
	o.use_stdin_fd = true;
	o.stdin_fd = fd;
	assert_int_equal(run_argv_ex(argv, &o, "ignored", 5000, &out, NULL,
				     &status, &error), 0);
	assert_int_equal(status, 0);
	/* ulimit -v is in KiB */
	assert_string_equal(out, "from the file\n524288\n7\n/\n");
	free(out);
	close(fd);
}

/* A failure in the child before exec names its step. */
static void test_run_ex_child_fail(void **state)
{
	const char *argv[] = { "true", NULL };
	struct run_opts o = { .cwd = "/nonexistent/ophook" };
	const char *error = NULL;
	char *out = NULL;
	int status;

	(void)state;
	assert_int_equal(run_argv_ex(argv, &o, NULL, 5000, &out, NULL, &status,
				     &error), -ENOENT);
	assert_null(out);
	assert_non_null(strstr(error, "cwd"));
}

/* A readable cancel_fd kills the child at once: -ECANCELED. */
static void test_run_ex_cancel(void **state)
{
	const char *argv[] = { "sleep", "30", NULL };
	int p[2];
	struct run_opts o = { .use_cancel_fd = true };
	const char *error = NULL;
	int status;
	time_t t0 = time(NULL);

	(void)state;
	assert_int_equal(pipe(p), 0);
	o.cancel_fd = p[0];
	assert_int_equal(write(p[1], "x", 1), 1);
	assert_int_equal(run_argv_ex(argv, &o, NULL, 20000, NULL, NULL, &status,
				     &error), -ECANCELED);
	assert_int_equal(status, 128 + SIGKILL); /* at once, no grace */
	assert_non_null(strstr(error, "stopping"));
	assert_true(time(NULL) - t0 < 5);
	close(p[0]);
	close(p[1]);
}


/* A zeroed struct run_opts is safe: descriptor 0 is neither the child's
 * stdin nor a cancel descriptor (ours is a readable pipe here), and the
 * child still gets its own process group.  A use_ flag with a negative
 * descriptor is refused. */
static void test_run_ex_zeroed_opts(void **state)
{
	const char *argv[] = { "sh", "-c",
			       "sleep 0.3; cat; "
			       "read -r p c s pp g r < /proc/$$/stat; "
			       "[ \"$g\" = \"$$\" ] && echo own group",
			       NULL };
	struct run_opts o = { 0 }, bad = { .use_stdin_fd = true, .stdin_fd = -1 };
	const char *error = NULL;
	char *out = NULL;
	int p[2], saved, status;

	(void)state;
	saved = dup(0);
	assert_true(saved >= 0);
	assert_int_equal(pipe(p), 0);
	assert_int_equal(write(p[1], "daemon's stdin\n", 15), 15);
	assert_int_equal(dup2(p[0], 0), 0);
	assert_int_equal(run_argv_ex(argv, &o, NULL, 5000, &out, NULL, &status,
				     &error), 0);
	assert_int_equal(dup2(saved, 0), 0);
	close(saved);
	close(p[0]);
	close(p[1]);
	assert_int_equal(status, 0);
	assert_string_equal(out, "own group\n");
	free(out);

	assert_int_equal(run_argv_ex(argv, &bad, NULL, 5000, &out, NULL,
				     &status, &error), -EBADF);
	assert_non_null(strstr(error, "stdin_fd"));
	assert_null(out);
	bad = (struct run_opts){ .use_cancel_fd = true, .cancel_fd = -1 };
	assert_int_equal(run_argv_ex(argv, &bad, NULL, 5000, &out, NULL,
				     &status, &error), -EBADF);
	assert_non_null(strstr(error, "cancel_fd"));
}

/* What the daemon ignores or blocks is default and unblocked in the
 * child: a shell that sends itself SIGTERM (ignored here) or SIGUSR1
 * (blocked here) dies of it. */
static void test_run_ex_signals_reset(void **state)
{
	const char *term[] = { "sh", "-c", "kill -TERM $$; echo survived",
			       NULL };
	const char *usr1[] = { "sh", "-c", "kill -USR1 $$; echo survived",
			       NULL };
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	struct run_opts o = { 0 };
	sigset_t set, oldset;
	const char *error = NULL;
	char *out = NULL;
	int status;

	(void)state;
	sigemptyset(&ign.sa_mask);
	assert_int_equal(sigaction(SIGTERM, &ign, &old), 0);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	assert_int_equal(sigprocmask(SIG_BLOCK, &set, &oldset), 0);
	assert_int_equal(run_argv_ex(term, &o, NULL, 5000, &out, NULL, &status,
				     &error), 0);
	assert_int_equal(status, 128 + SIGTERM);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(run_argv_ex(usr1, &o, NULL, 5000, &out, NULL, &status,
				     &error), 0);
	assert_int_equal(status, 128 + SIGUSR1);
	assert_string_equal(out, "");
	free(out);
	assert_int_equal(sigprocmask(SIG_SETMASK, &oldset, NULL), 0);
	assert_int_equal(sigaction(SIGTERM, &old, NULL), 0);
}

/* stdin_data reaches a forked child too, with a cancel descriptor that
 * stays quiet (five descriptors polled at once) and a cancel callback that
 * says no. */
static bool never(void *arg)
{
	(void)arg;
	return false;
}

static void test_run_ex_stdin_data_quiet_cancel(void **state)
{
	const char *argv[] = { "sh", "-c", "sleep 0.2; cat", NULL };
	struct run_opts o = { .use_cancel_fd = true, .cancel = never };
	const char *error = NULL;
	char *out = NULL;
	int p[2], status;

	(void)state;
	assert_int_equal(pipe(p), 0);
	o.cancel_fd = p[0];
	assert_int_equal(run_argv_ex(argv, &o, "through the socket", 5000, &out,
				     NULL, &status, &error), 0);
	assert_int_equal(status, 0);
	assert_string_equal(out, "through the socket");
	free(out);
	close(p[0]);
	close(p[1]);
}

/* A cancel during a timeout's grace (a child that ignores SIGTERM) kills
 * it at once; the result stays a timeout. */
static void test_run_ex_cancel_in_grace(void **state)
{
	const char *argv[] = { "sh", "-c",
			       "trap '' TERM; while :; do sleep 0.05; done",
			       NULL };
	struct run_opts o = { .use_cancel_fd = true };
	const char *error = NULL;
	int p[2], status;
	int64_t t0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	o.cancel_fd = p[0];
	/* readable from the start would cancel: write it late, from a child */
	pid_t w = fork();

	assert_true(w >= 0);
	if (w == 0) {
		usleep(700 * 1000);
		(void)!write(p[1], "x", 1);
		_exit(0);
	}
	t0 = now_ms();
	assert_int_equal(run_argv_ex(argv, &o, NULL, 500, NULL, NULL, &status,
				     &error), -ETIMEDOUT);
	assert_int_equal(status, 128 + SIGKILL);
	/* the write at 700 ms, well before the grace ends at 1500 ms */
	assert_true(now_ms() - t0 < 1400);
	waitpid(w, NULL, 0);
	close(p[0]);
	close(p[1]);
}

/* The child dies with the process that ran it, even after SIGKILL of
 * that process (PR_SET_PDEATHSIG), with a uid drop before it (which would
 * clear it). */
static void test_run_ex_pdeathsig(void **state)
{
	char path[] = "/tmp/test_run_pd.XXXXXX";
	char *cmd = NULL;
	int fd = mkstemp(path), n = 0;
	pid_t runner, victim = 0;
	FILE *f;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	assert_true(asprintf(&cmd, "echo $$ > %s; exec sleep 30", path) > 0);
	if (geteuid() == 0)
		assert_int_equal(chmod(path, 0666), 0);
	runner = fork();
	assert_true(runner >= 0);
	if (runner == 0) {
		const char *argv[] = { "sh", "-c", cmd, NULL };
		struct run_opts o = { 0 };
		const char *error = NULL;
		int status;

		if (geteuid() == 0)
			(void)run_opts_user(&o, "nobody", &error);
		(void)run_argv_ex(argv, &o, NULL, 60000, NULL, NULL, &status,
				  &error);
		_exit(0);
	}
	/* wait for the grandchild's pid */
	for (n = 0; n < 500 && victim <= 0; n++) {
		usleep(10 * 1000);
		f = fopen(path, "r");
		if (f != NULL) {
			if (fscanf(f, "%d", &victim) != 1)
				victim = 0;
			fclose(f);
		}
	}
	assert_true(victim > 0);
	usleep(100 * 1000); /* it has exec'd sleep */
	kill(runner, SIGKILL);
	waitpid(runner, NULL, 0);
	/* gone (reaped by init, or a zombie for a moment) within 5 s */
	for (n = 0; n < 500; n++) {
		char st[64], buf[512];
		FILE *sf;
		bool alive = false;

		snprintf(st, sizeof(st), "/proc/%d/stat", (int)victim);
		sf = fopen(st, "r");
		if (sf != NULL) {
			if (fgets(buf, sizeof(buf), sf) != NULL) {
				char *rp = strrchr(buf, ')');

				alive = rp != NULL && rp[1] == ' ' &&
					rp[2] != 'Z' && rp[2] != 'X';
			}
			fclose(sf);
		}
		if (!alive)
			break;
		usleep(10 * 1000);
	}
	assert_true(n < 500);
	unlink(path);
	free(cmd);
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
		cmocka_unit_test(test_memory_limit_and_fds),
		cmocka_unit_test(test_cpu_limit),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_timeout_and_missing),
		cmocka_unit_test(test_drop_user),
		cmocka_unit_test(test_run_ex_stdin_fd_limits),
		cmocka_unit_test(test_run_ex_child_fail),
		cmocka_unit_test(test_run_ex_cancel),
		cmocka_unit_test(test_run_ex_zeroed_opts),
		cmocka_unit_test(test_run_ex_signals_reset),
		cmocka_unit_test(test_run_ex_stdin_data_quiet_cancel),
		cmocka_unit_test(test_run_ex_cancel_in_grace),
		cmocka_unit_test(test_run_ex_pdeathsig),
		cmocka_unit_test(test_argv_setting),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
