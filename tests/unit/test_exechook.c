/* Exec hooks: exit codes, stdin/env, output kept, timeout kills the whole
 * process group, owner/mode checks, run-parts name filter. */
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
	};
	char cmd[128];
	int ret;

	signal(SIGPIPE, SIG_IGN);
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
