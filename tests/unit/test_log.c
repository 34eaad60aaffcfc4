/* Unit tests: the log plugin (plugins/log/log.c) against the fake host
 * (tests/unit/pluginmock.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pluginmock.h"

#include "../../plugins/log/log.c"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* A mock whose settings.path is <tmp>/events.log (*path_r, freed by the
 * caller); extra: more JSON members or NULL. */
static struct pluginmock *log_mock(const char *extra, char **path_r)
{
	struct pluginmock *m = pluginmock_new(NULL);
	char *settings = NULL;

	assert_true(asprintf(path_r, "%s/events.log", pluginmock_tmp(m)) > 0);
	assert_true(asprintf(&settings, "{\"path\": \"%s\"%s%s}", *path_r,
			     extra != NULL ? ", " : "",
			     extra != NULL ? extra : "") > 0);
	pluginmock_set_settings(m, settings);
	free(settings);
	pluginmock_set_plugin(m, &ophook_plugin);
	return m;
}

static void test_lines(void **state)
{
	char *path = NULL, *text;
	struct pluginmock *m = log_mock("\"fsync\": true", &path);
	const char *err = NULL;
	struct log_plugin *lp;
	int lines = 0;

	(void)state;
	assert_int_equal(pluginmock_init(m, &err), 0);
	lp = pluginmock_data(m);
	assert_true(lp->fsync_each);
	assert_int_equal(pluginmock_send(m, "domain.added", "a.test",
					 "{\"domain\":\"a.test\"}", &err), 0);
	assert_int_equal(pluginmock_send(m, "domain.removed", "a.test", NULL,
					 &err), 0);
	text = slurp(path);
	/* two lines, one JSON object each */
	for (const char *p = text; *p != '\0'; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 2);
	assert_int_equal(text[0], '{');
	assert_non_null(strstr(text, "}\n{"));
	assert_non_null(strstr(text, "\"domain\":\"a.test\""));
	free(text);
	pluginmock_free(&m);
	free(path);
}

/* Settings are checked by the host against log_settings[]: the error names
 * the setting and what it wants; a check-only init opens no file. */
static void test_settings_declared(void **state)
{
	struct pluginmock *m = pluginmock_new("{\"path\": \"events.log\"}");
	const char *err = NULL;
	char *path = NULL;

	(void)state;
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.log.settings.path: 'events.log' is "
				 "not an absolute path");
	pluginmock_free(&m);

	/* no path: ${paths.log}/ophookd/events.log, its folder made */
	m = pluginmock_new("{}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_true(asprintf(&path, "%s/host", pluginmock_tmp(m)) > 0);
	assert_int_equal(mkdir(path, 0755), 0);
	free(path);
	assert_true(asprintf(&path, "%s/host/var", pluginmock_tmp(m)) > 0);
	assert_int_equal(mkdir(path, 0755), 0);
	free(path);
	assert_true(asprintf(&path, "%s/host/var/log", pluginmock_tmp(m)) > 0);
	assert_int_equal(mkdir(path, 0755), 0);
	free(path);
	assert_int_equal(pluginmock_init(m, &err), 0);
	assert_true(asprintf(&path, "%s/host/var/log/ophookd/events.log",
			     pluginmock_tmp(m)) > 0);
	assert_int_equal(access(path, F_OK), 0);
	free(path);
	path = NULL;
	pluginmock_free(&m);

	m = log_mock("\"fsync\": \"always\"", &path);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.log.settings.fsync: 'always' is not "
				 "a boolean (true or false)");
	assert_int_equal(pluginmock_tmp_entries(m), 0);
	pluginmock_free(&m);
	free(path);

	m = log_mock("\"fsync\": \"yes\"", &path);
	pluginmock_check_only(m, true);
	assert_int_equal(pluginmock_init(m, &err), OPHOOK_SETTINGS_CHECKED);
	assert_null(pluginmock_data(m));
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(pluginmock_tmp_entries(m), 0);
	assert_int_equal(pluginmock_log_count(m), 0);
	pluginmock_free(&m);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_settings_declared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
