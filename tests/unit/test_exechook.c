/* Exec hooks: exit codes, stdin/env, output kept, timeout kills the whole
 * process group, owner/mode checks, run-parts name filter; processes made
 * off the loop thread (no fork there), in their own session with default
 * signals, spawn errors through the callback, a kill while the spawn waits
 * on the pool makes no process.  The pool has one thread (set in main) so
 * that a test can hold it. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
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

#include "exechook.h"
#include "ophook/plugin.h"
#include "util.h"

static char tmpdir[64];
static size_t out_max = 4096;
static const char *const env[] = { "PATH=/usr/sbin:/usr/bin:/sbin:/bin",
				   "OPHOOK_EVENT=domain.added",
				   "OPHOOK_ID=42", NULL };

static char *script(const char *name, const char *body, mode_t mode)
{
	char *path = xasprintf("%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
	return path;
}

static int run(const char *path, unsigned timeout_ms, const char *in,
	       struct exechook_result *res, char **err_r)
{
	const char *argv[] = { path, NULL };
	struct exechook_opts o = {
		.argv = argv, .env = env, .stdin_data = in,
		.stdin_len = in != NULL ? strlen(in) : 0,
		.timeout_ms = timeout_ms, .output_max = out_max,
	};
	const char *error = NULL;

	assert_int_equal(exechook_run_sync(&o, res, &error), 0);
	return exechook_result_rc(res, timeout_ms, err_r);
}

static void test_exit_codes(void **state)
{
	struct exechook_result res;
	char *p, *err = NULL;

	(void)state;
	p = script("ok", "cat > /dev/null; echo fine", 0755);
	assert_int_equal(run(p, 5000, "{}", &res, &err), 0);
	assert_null(err);
	assert_string_equal(res.out, "fine\n");
	exechook_result_clear(&res);
	free(p);

	p = script("retry", "echo busy >&2; exit 75", 0755);
	assert_int_equal(run(p, 5000, NULL, &res, &err), OPHOOK_RETRY);
	assert_string_equal(err, "exit 75 (retry later): busy");
	free(err);
	exechook_result_clear(&res);
	free(p);

	p = script("fail", "echo first >&2; echo 'no such domain' >&2; exit 1",
		   0755);
	assert_int_equal(run(p, 5000, NULL, &res, &err), -EIO);
	assert_string_equal(err, "exit 1: first\nno such domain");
	free(err);
	exechook_result_clear(&res);
	free(p);

	p = script("sig", "kill -9 $$", 0755);
	assert_int_equal(run(p, 5000, NULL, &res, &err), -EIO);
	assert_non_null(strstr(err, "killed by signal 9"));
	free(err);
	exechook_result_clear(&res);
	free(p);
}

static void test_stdin_env_output(void **state)
{
	struct exechook_result res;
	char *p, *err = NULL;

	(void)state;
	p = script("env", "read line; echo \"$line|$OPHOOK_EVENT|$OPHOOK_ID\"; "
			  "env | grep -v '^PWD=' | grep -v '^SHLVL=' | "
			  "grep -v '^_=' | sort | tr '\\n' ' ' >&2", 0755);
	assert_int_equal(run(p, 5000, "{\"id\":42}\n", &res, &err), 0);
	assert_string_equal(res.out, "{\"id\":42}|domain.added|42\n");
	assert_string_equal(res.err, "OPHOOK_EVENT=domain.added OPHOOK_ID=42 "
				     "PATH=/usr/sbin:/usr/bin:/sbin:/bin ");
	exechook_result_clear(&res);
	free(p);

	/* output is truncated to the last output_max bytes */
	out_max = 64;
	p = script("loud", "i=0; while [ $i -lt 1000 ]; do echo line$i >&2; "
			   "i=$((i+1)); done; exit 2", 0755);
	assert_int_equal(run(p, 5000, NULL, &res, &err), -EIO);
	assert_true(res.err_len <= 64);
	assert_true(res.err_dropped > 0);
	assert_non_null(strstr(res.err, "line999"));
	assert_non_null(strstr(err, "exit 2: ..."));
	out_max = 4096;
	free(err);
	exechook_result_clear(&res);
	free(p);
}

static bool pid_gone(pid_t pid)
{
	char path[64], buf[512];
	FILE *f;
	bool gone = true;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return true;
	if (fgets(buf, sizeof(buf), f) != NULL) {
		char *rp = strrchr(buf, ')');

		gone = rp != NULL && rp[1] == ' ' && rp[2] == 'Z';
	}
	fclose(f);
	return gone;
}

static void test_timeout_kills_group(void **state)
{
	struct exechook_result res;
	char *p, *pidfile, *err = NULL, *body, *data = NULL;
	size_t len;
	pid_t child;
	int64_t t0;

	(void)state;
	pidfile = xasprintf("%s/child.pid", tmpdir);
	/* a child that sleeps, and a parent that ignores SIGTERM */
	body = xasprintf("sleep 60 & echo $! > %s\ntrap '' TERM\n"
			 "while :; do sleep 1; done", pidfile);
	p = script("slow", body, 0755);
	t0 = mono_ms();
	assert_int_equal(run(p, 300, NULL, &res, &err), -ETIMEDOUT);
	assert_non_null(strstr(err, "timed out after 300 ms"));
	/* SIGTERM was ignored by the parent: SIGKILL ended it */
	assert_true(mono_ms() - t0 >= 2000);
	assert_true(mono_ms() - t0 < 10000);
	free(err);
	exechook_result_clear(&res);
	assert_int_equal(file_read_nofollow(pidfile, 64, &data, &len), 0);
	child = (pid_t)atoi(data);
	assert_true(child > 0);
	for (int i = 0; i < 100 && !pid_gone(child); i++)
		usleep(50000);
	assert_true(pid_gone(child));
	free(data);
	free(body);
	free(p);
	free(pidfile);
}

static void test_owner_mode(void **state)
{
	char *p, *why = NULL;

	(void)state;
	p = script("good", "exit 0", 0755);
	assert_int_equal(exechook_check_file(p, geteuid(), &why), 0);
	assert_null(why);
	free(p);

	p = script("groupw", "exit 0", 0775);
	assert_int_equal(exechook_check_file(p, geteuid(), &why), -EPERM);
	assert_non_null(strstr(why, "groupw: refused: file writable by group "
				    "or others (mode 0775)"));
	free(why);
	free(p);

	p = script("noexec", "exit 0", 0644);
	assert_int_equal(exechook_check_file(p, geteuid(), &why), -ENOEXEC);
	free(why);
	free(p);

	if (geteuid() == 0) {
		p = script("nobody", "exit 0", 0755);
		assert_int_equal(chown(p, 65534, 65534), 0);
		assert_int_equal(exechook_check_file(p, 0, &why), -EPERM);
		assert_non_null(strstr(why, "owned by uid 65534, not root"));
		free(why);
		free(p);
	}

	p = xasprintf("%s/link", tmpdir);
	assert_int_equal(symlink("/bin/true", p), 0);
	assert_int_equal(exechook_check_file(p, geteuid(), &why), -EPERM);
	assert_non_null(strstr(why, "symbolic link"));
	free(why);
	free(p);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(exechook_name_ok("10-notify"));
	assert_true(exechook_name_ok("20_mail.sh"));
	assert_false(exechook_name_ok(".hidden"));
	assert_false(exechook_name_ok("10-notify~"));
	assert_false(exechook_name_ok("10-notify.dpkg-old"));
	assert_false(exechook_name_ok("10-notify.swp"));
	assert_false(exechook_name_ok("10-notify.disabled"));
	assert_false(exechook_name_ok("has space"));
	assert_false(exechook_name_ok(""));
}

/* ---- exechook_spawn on a loop ---- */

struct spawned {
	int calls;
	struct exechook_result res; /* out/err copied */
};

static void spawned_cb(struct exechook_result *res, void *ctx)
{
	struct spawned *sp = ctx;

	sp->calls++;
	sp->res = *res;
	sp->res.out = xstrndup(res->out, res->out_len);
	sp->res.err = xstrndup(res->err, res->err_len);
}

static int spawn_on(uv_loop_t *loop, const char *path, struct spawned *sp,
		    struct exechook_proc **p_r)
{
	const char *argv[] = { path, NULL };
	struct exechook_opts o = { .argv = argv, .env = env,
				   .timeout_ms = 5000 };
	const char *error = NULL;

	memset(sp, 0, sizeof(*sp));
	return exechook_spawn(loop, &o, spawned_cb, sp, p_r, &error);
}

/* forks made by the main (loop) thread */
static pthread_t main_thread;
static int main_forks;

static void count_fork(void)
{
	if (pthread_equal(pthread_self(), main_thread))
		main_forks++;
}

static void test_spawn_off_loop(void **state)
{
	uv_loop_t loop;
	struct spawned sp;
	char *p;

	(void)state;
	p = script("quick", "echo out; echo err >&2; exit 3", 0755);
	assert_int_equal(uv_loop_init(&loop), 0);
	main_forks = 0;
	assert_int_equal(spawn_on(&loop, p, &sp, NULL), 0);
	/* uv_spawn forked right here; posix_spawn on the pool runs no
	 * pthread_atfork handlers and not on this thread anyway */
	assert_int_equal(main_forks, 0);
	assert_int_equal(sp.calls, 0); /* cb never before spawn returns */
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(main_forks, 0);
	assert_int_equal(sp.calls, 1);
	assert_int_equal(sp.res.exit_status, 3);
	assert_string_equal(sp.res.out, "out\n");
	assert_string_equal(sp.res.err, "err\n");
	exechook_result_clear(&sp.res);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(p);
}

static bool under_valgrind(void)
{
	const char *pre = getenv("LD_PRELOAD");

	return pre != NULL && strstr(pre, "vgpreload") != NULL;
}

static void test_spawn_error_cb(void **state)
{
	uv_loop_t loop;
	struct spawned sp;
	char *p, *err = NULL;

	(void)state;
	assert_int_equal(uv_loop_init(&loop), 0);
	/* the file is looked at on the pool: the error comes through cb */
	assert_int_equal(spawn_on(&loop, "/nonexistent/hook", &sp, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(sp.calls, 1);
	assert_int_equal(sp.res.exit_status, EXECHOOK_EXIT_NOT_RUN);
	assert_false(sp.res.timed_out);
	assert_string_equal(sp.res.err, "exec /nonexistent/hook: No such file "
					"or directory");
	assert_int_equal(exechook_result_rc(&sp.res, 5000, &err), -EIO);
	assert_string_equal(err, "exit 127: exec /nonexistent/hook: No such "
				 "file or directory");
	free(err);
	exechook_result_clear(&sp.res);

	/* not executable (EACCES); no "#!" line (ENOEXEC): never a shell */
	p = script("noexec2", "exit 0", 0644);
	assert_int_equal(spawn_on(&loop, p, &sp, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(sp.calls, 1);
	assert_non_null(strstr(sp.res.err, "Permission denied"));
	assert_non_null(strstr(sp.res.err, "/noexec2"));
	exechook_result_clear(&sp.res);
	free(p);
	p = xasprintf("%s/noshebang", tmpdir);
	assert_int_equal(file_write_atomic(p, "exit 0\n", 7, 0755), 0);
	assert_int_equal(spawn_on(&loop, p, &sp, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(sp.res.exit_status, EXECHOOK_EXIT_NOT_RUN);
	/* under valgrind posix_spawn cannot see the exec's error: the
	 * child just exits 127 */
	if (!under_valgrind())
		assert_non_null(strstr(sp.res.err, "Exec format error"));
	exechook_result_clear(&sp.res);
	free(p);

	/* a name without '/' is looked up in the env's PATH */
	assert_int_equal(spawn_on(&loop, "true", &sp, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(sp.res.exit_status, 0);
	exechook_result_clear(&sp.res);
	assert_int_equal(spawn_on(&loop, "no-such-tool-here", &sp, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_string_equal(sp.res.err, "exec no-such-tool-here: No such "
					"file or directory");
	exechook_result_clear(&sp.res);
	assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_session_signals(void **state)
{
	uv_loop_t loop;
	struct spawned sp;
	char *p;
	int pid = 0, sid = -1;
	char ign[32] = "", blk[32] = "";

	(void)state;
	/* this program ignores SIGPIPE; the hook must not inherit that */
	p = script("sess", "set -- $(cat /proc/$$/stat); echo $$ $6; "
			   "grep -E '^Sig(Ign|Blk):' /proc/$$/status | "
			   "tr -d '\t'", 0755);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(spawn_on(&loop, p, &sp, NULL), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(sp.res.exit_status, 0);
	assert_int_equal(sscanf(sp.res.out, "%d %d\nSigBlk:%31s\nSigIgn:%31s",
				&pid, &sid, blk, ign), 4);
	assert_true(pid > 0);
	assert_int_equal(sid, pid); /* getsid(pid) == pid: own session */
	assert_string_equal(blk, "0000000000000000");
	assert_string_equal(ign, "0000000000000000");
	exechook_result_clear(&sp.res);
	assert_int_equal(uv_loop_close(&loop), 0);
	free(p);
}

/* a work request that holds the pool's only thread until released */
static int hold_fds[2];

static void hold_work(uv_work_t *w)
{
	char c;

	(void)w;
	while (read(hold_fds[0], &c, 1) < 0 && errno == EINTR)
		;
}

static void hold_done(uv_work_t *w, int status)
{
	(void)w;
	(void)status;
}

static void test_kill_while_queued(void **state)
{
	uv_loop_t loop;
	uv_work_t hold;
	struct spawned sp;
	struct exechook_proc *proc = NULL;
	struct exechook_result res;
	char *p, *pidfile, *body, *err = NULL;
	struct stat st;

	(void)state;
	pidfile = xasprintf("%s/queued.pid", tmpdir);
	body = xasprintf("echo $$ > %s; sleep 60", pidfile);
	p = script("queued", body, 0755);
	assert_int_equal(pipe(hold_fds), 0);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(uv_queue_work(&loop, &hold, hold_work, hold_done), 0);

	/* while the pool is held, exechook_run_sync still works (it makes
	 * its process on the calling thread: hooks.test runs it on a pool
	 * thread) */
	assert_int_equal(run("/bin/true", 5000, NULL, &res,
			     &err), 0);
	exechook_result_clear(&res);

	/* the spawn waits behind the held thread: killed, it is never made */
	assert_int_equal(spawn_on(&loop, p, &sp, &proc), 0);
	assert_non_null(proc);
	exechook_kill(proc);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(sp.calls, 1);
	assert_true(sp.res.timed_out);
	assert_int_equal(sp.res.exit_status, -1);
	assert_int_equal(exechook_result_rc(&sp.res, 5000, &err), -ETIMEDOUT);
	free(err);
	exechook_result_clear(&sp.res);

	assert_int_equal(write(hold_fds[1], "x", 1), 1);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(stat(pidfile, &st), -1); /* no process ran */
	close(hold_fds[0]);
	close(hold_fds[1]);
	free(body);
	free(p);
	free(pidfile);
}

static void test_missing(void **state)
{
	const char *argv[] = { "/nonexistent/hook", NULL };
	struct exechook_opts o = { .argv = argv, .env = env, .timeout_ms = 1000 };
	struct exechook_result res;
	const char *error = NULL;

	(void)state;
	assert_true(exechook_run_sync(&o, &res, &error) < 0);
	assert_non_null(error);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_stdin_env_output),
		cmocka_unit_test(test_timeout_kills_group),
		cmocka_unit_test(test_owner_mode),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_missing),
		cmocka_unit_test(test_spawn_off_loop),
		cmocka_unit_test(test_spawn_error_cb),
		cmocka_unit_test(test_session_signals),
		cmocka_unit_test(test_kill_while_queued),
	};
	char cmd[128];
	int ret;

	signal(SIGPIPE, SIG_IGN);
	/* one pool thread (before the pool's first use), for
	 * test_kill_while_queued */
	setenv("UV_THREADPOOL_SIZE", "1", 1);
	main_thread = pthread_self();
	pthread_atfork(count_fork, NULL, NULL);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_exechook.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return 1;
	chmod(tmpdir, 0755);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		ret = 1;
	return ret;
}
