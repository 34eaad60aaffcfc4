/* Unit tests: plugin settings checked against a declared schema
 * (core/plugsettings.c), with the config's positions in the messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plugsettings.h"

static const char *const backends[] = { "ufw", "csf", NULL };
static const struct ophook_setting_decl decls[] = {
	{ .name = "backend", .type = OPHOOK_SETTING_ENUM, .values = backends,
	  .flags = OPHOOK_SETTING_REQUIRED },
	{ .name = "window_ms", .type = OPHOOK_SETTING_MS, .def = "500",
	  .min = 0, .max = 3600000 },
	{ .name = "bits", .type = OPHOOK_SETTING_INT, .def = "2048",
	  .min = 1024, .max = 4096 },
	{ .name = "fsync", .type = OPHOOK_SETTING_BOOL, .def = "false" },
	{ .name = "dir", .type = OPHOOK_SETTING_PATH, .def = "/var/lib/x" },
	{ .name = "name", .type = OPHOOK_SETTING_STRING },
	{ .name = "notify", .type = OPHOOK_SETTING_LIST },
	{ .name = "argv", .type = OPHOOK_SETTING_ARGV, .def = "[\"rndc\"]" },
	{ .name = "ports", .type = OPHOOK_SETTING_MAP },
};
#define N_DECLS (sizeof(decls) / sizeof(decls[0]))

/* Check settings_json; the error (malloc'd) or NULL. */
static char *check(const char *settings_json, struct plugsettings **ps_r)
{
	json_t *settings = json_loads(settings_json, 0, NULL);
	json_t *pos = json_pack("{s:[iiii],s:[iiii],s:[iiii]}", "backend", 7,
				5, 7, 14, "bits", 8, 5, 8, 11, "bogus", 9, 5,
				9, 12);
	struct plugsettings_src src = { .plugin = "firewall",
					.file = "/etc/ophookd.yaml",
					.pos = pos, .line = 6, .column = 3 };
	struct plugsettings *ps = NULL;
	char *err = NULL;
	int ret;

	assert_non_null(settings);
	ret = plugsettings_new(&src, settings, decls, N_DECLS, &ps, &err);
	json_decref(settings);
	json_decref(pos);
	if (ret == 0) {
		assert_null(err);
		if (ps_r != NULL)
			*ps_r = ps;
		else
			plugsettings_free(&ps);
		return NULL;
	}
	assert_int_equal(ret, -EINVAL);
	assert_null(ps);
	assert_non_null(err);
	return err;
}

static void test_good_and_defaults(void **state)
{
	struct plugsettings *ps = NULL;
	const char *const *l;

	(void)state;
	assert_null(check("{\"backend\":\"csf\",\"window_ms\":\"2s\","
			  "\"fsync\":\"yes\",\"notify\":\"10.0.0.2\","
			  "\"ports\":{\"web\":\"443/tcp\",\"alt\":8080}}",
			  &ps));
	assert_string_equal(plugsettings_str(ps, "backend"), "csf");
	assert_true(plugsettings_is_set(ps, "backend"));
	assert_int_equal(plugsettings_int(ps, "window_ms"), 2000);
	assert_int_equal(plugsettings_int(ps, "bits"), 2048); /* default */
	assert_false(plugsettings_is_set(ps, "bits"));
	assert_true(plugsettings_bool(ps, "fsync"));
	assert_string_equal(plugsettings_str(ps, "dir"), "/var/lib/x");
	assert_null(plugsettings_str(ps, "name"));  /* no default */
	assert_null(plugsettings_str(ps, "nokey")); /* undeclared */
	l = plugsettings_list(ps, "notify");        /* one scalar: a list */
	assert_string_equal(l[0], "10.0.0.2");
	assert_null(l[1]);
	l = plugsettings_list(ps, "argv");          /* JSON default */
	assert_string_equal(l[0], "rndc");
	assert_null(l[1]);
	l = plugsettings_list(ps, "ports");         /* name, value pairs */
	assert_string_equal(l[0], "web");
	assert_string_equal(l[1], "443/tcp");
	assert_string_equal(l[2], "alt");
	assert_string_equal(l[3], "8080");
	assert_null(l[4]);
	plugsettings_free(&ps);
	assert_null(ps);

	assert_null(check("{\"backend\":\"ufw\",\"argv\":\"rndc -p 953\","
			  "\"notify\":[\"a\",\"b\"],\"fsync\":\"off\"}",
			  &ps));
	l = plugsettings_list(ps, "argv"); /* words */
	assert_string_equal(l[2], "953");
	assert_null(l[3]);
	assert_string_equal(plugsettings_list(ps, "notify")[1], "b");
	assert_false(plugsettings_bool(ps, "fsync"));
	plugsettings_free(&ps);
}

static void test_unknown_key(void **state)
{
	char *err = check("{\"backend\":\"ufw\",\"bogus\":\"1\"}", NULL);

	(void)state;
	assert_non_null(strstr(err, "/etc/ophookd.yaml:9:5: "
				    "plugins.firewall.settings.bogus: "
				    "unknown setting (known: backend, "));
	free(err);
}

static void test_enum_values(void **state)
{
	char *err = check("{\"backend\":\"ufx\"}", NULL);

	(void)state;
	assert_string_equal(err, "/etc/ophookd.yaml:7:14: "
				 "plugins.firewall.settings.backend: 'ufx' is "
				 "not one of: ufw, csf");
	free(err);
}

static void test_required(void **state)
{
	char *err = check("{}", NULL);

	(void)state;
	assert_string_equal(err, "/etc/ophookd.yaml:6:3: "
				 "plugins.firewall.settings.backend: required "
				 "(one of: ufw, csf)");
	free(err);
}

static void test_wrong_type(void **state)
{
	char *err;

	(void)state;
	err = check("{\"backend\":\"ufw\",\"bits\":\"many\"}", NULL);
	assert_string_equal(err, "/etc/ophookd.yaml:8:11: "
				 "plugins.firewall.settings.bits: 'many' is "
				 "not an integer");
	free(err);
	err = check("{\"backend\":\"ufw\",\"fsync\":\"maybe\"}", NULL);
	assert_non_null(strstr(err, "fsync: 'maybe' is not a boolean"));
	free(err);
	err = check("{\"backend\":\"ufw\",\"dir\":\"rel/x\"}", NULL);
	assert_non_null(strstr(err, "dir: 'rel/x' is not an absolute path"));
	free(err);
	err = check("{\"backend\":[\"ufw\"]}", NULL);
	assert_non_null(strstr(err, "backend: want one of"));
	free(err);
	err = check("{\"backend\":\"ufw\",\"ports\":[\"80\"]}", NULL);
	assert_non_null(strstr(err, "ports: want a mapping"));
	free(err);
	err = check("{\"backend\":\"ufw\",\"notify\":[[\"x\"]]}", NULL);
	assert_non_null(strstr(err, "notify: item 1 is not a string"));
	free(err);
	err = check("{\"backend\":\"ufw\",\"window_ms\":\"5 parsecs\"}", NULL);
	assert_non_null(strstr(err, "window_ms: '5 parsecs' is not a "
				    "duration"));
	free(err);
}

static void test_out_of_range(void **state)
{
	char *err = check("{\"backend\":\"ufw\",\"bits\":\"512\"}", NULL);

	(void)state;
	assert_string_equal(err, "/etc/ophookd.yaml:8:11: "
				 "plugins.firewall.settings.bits: '512' is out "
				 "of range 1024..4096");
	free(err);
	err = check("{\"backend\":\"ufw\",\"window_ms\":\"2h\"}", NULL);
	assert_non_null(strstr(err, "'2h' is out of range 0..3600000"));
	free(err);
}

static void test_bad_declaration(void **state)
{
	static const struct ophook_setting_decl bad[] = {
		{ .name = "a", .type = OPHOOK_SETTING_ENUM }, /* no values */
	};
	static const struct ophook_setting_decl bad_def[] = {
		{ .name = "n", .type = OPHOOK_SETTING_INT, .def = "x" },
	};
	struct plugsettings_src src = { .plugin = "p" };
	struct plugsettings *ps = NULL;
	json_t *empty = json_object();
	char *err = NULL;

	(void)state;
	assert_int_equal(plugsettings_new(&src, empty, bad, 1, &ps, &err),
			 -EINVAL);
	assert_string_equal(err, "plugins.p.settings.a: the plugin declares "
				 "this setting badly (entry 1)");
	free(err);
	assert_int_equal(plugsettings_new(&src, empty, bad_def, 1, &ps, &err),
			 -EINVAL);
	assert_non_null(strstr(err, "n: the plugin's default is not valid"));
	free(err);
	json_decref(empty);
}

/* ${NAME} in a declared default: the host's trees, the built-in ones
 * when the host gives none, an error for an unknown name. */
static void test_default_vars(void **state)
{
	static const struct ophook_setting_decl d[] = {
		{ .name = "dir", .type = OPHOOK_SETTING_PATH,
		  .def = "${paths.bind}/zones" },
		{ .name = "argv", .type = OPHOOK_SETTING_ARGV,
		  .def = "[\"tool\", \"${root}/x\"]" },
	};
	static const struct ophook_setting_decl unknown[] = {
		{ .name = "dir", .type = OPHOOK_SETTING_PATH,
		  .def = "${nope}/zones" },
	};
	json_t *vars = json_pack("{s:s, s:s}", "paths.bind", "/tmp/t \"q\"/bind",
				 "root", "/tmp/t/root");
	struct plugsettings_src src = { .plugin = "p", .vars = vars };
	struct plugsettings *ps = NULL;
	json_t *empty = json_object();
	char *err = NULL;

	(void)state;
	assert_int_equal(plugsettings_new(&src, empty, d, 2, &ps, &err), 0);
	assert_string_equal(plugsettings_str(ps, "dir"), "/tmp/t \"q\"/bind/zones");
	assert_string_equal(plugsettings_list(ps, "argv")[1], "/tmp/t/root/x");
	assert_false(plugsettings_is_set(ps, "dir"));
	plugsettings_free(&ps);
	src.vars = NULL;
	assert_int_equal(plugsettings_new(&src, empty, d, 2, &ps, &err), 0);
	assert_string_equal(plugsettings_str(ps, "dir"), "/etc/bind/zones");
	plugsettings_free(&ps);
	assert_int_equal(plugsettings_new(&src, empty, unknown, 1, &ps, &err),
			 -EINVAL);
	assert_non_null(strstr(err, "unknown ${NAME}"));
	free(err);
	json_decref(empty);
	json_decref(vars);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_and_defaults),
		cmocka_unit_test(test_default_vars),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_enum_values),
		cmocka_unit_test(test_required),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_out_of_range),
		cmocka_unit_test(test_bad_declaration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
