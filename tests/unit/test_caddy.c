/* Unit tests: the caddy plugin against the fake host
 * (tests/unit/pluginmock.h).  plugins/common/run.c: tests/unit/test_run.c. */
#define _GNU_SOURCE
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

/* The plugin itself, to reach its statics. */
#include "../../plugins/caddy/caddy.c"

/* ---- caddy plugin ---- */

static char *mkpath(struct pluginmock *m, const char *rel)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", pluginmock_tmp(m), rel) > 0);
	return p;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* A mock with the caddy plugin, fake validate/reload commands, folders in
 * its temp folder.  extra: more settings (JSON members) or NULL. */
static struct pluginmock *caddy_mock(const char *validate_json,
				     const char *extra)
{
	struct pluginmock *m = pluginmock_new(NULL);
	char *settings = NULL, *tmp = (char *)pluginmock_tmp(m);
	const char *error = NULL;
	char *p;

	p = mkpath(m, "root/caddy/domains");
	assert_int_equal(ophook_mkdir_p(p, 0755), 0);
	free(p);
	p = mkpath(m, "root/caddy/Caddyfile");
	write_file(p, "{\n\tadmin off\n}\nimport /srv/caddy/domains/*.conf\n");
	free(p);
	assert_true(asprintf(&settings,
			     "{\"caddyfile\": \"%s/root/caddy/Caddyfile\","
			     " \"log_base\": \"%s/logs\","
			     " \"reload_argv\": [\"sh\", \"-c\", \"echo r >> %s/reloads\"],"
			     " \"validate_argv\": %s,"
			     " \"window_ms\": 250%s%s}",
			     tmp, tmp, tmp, validate_json != NULL ? validate_json : "[\"true\"]",
			     extra != NULL ? ", " : "", extra != NULL ? extra : "") > 0);
	pluginmock_set_settings(m, settings);
	free(settings);
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), 0);
	return m;
}

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, ch;

	if (f == NULL)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static void test_caddy_defaults(void **state)
{
	struct pluginmock *m = pluginmock_new(NULL);
	const char *error = NULL;
	struct caddy *c;
	char *want;

	(void)state;
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), 0);
	c = pluginmock_data(m);
	/* defaults follow the trees: ${root}/caddy/Caddyfile */
	want = mkpath(m, "root/caddy/Caddyfile");
	assert_string_equal(c->caddyfile, want);
	free(want);
	want = mkpath(m, "root/caddy/domains");
	assert_string_equal(c->domains_dir, want);
	free(want);
	want = mkpath(m, "root/caddy/domains.rejected");
	assert_string_equal(c->quarantine_dir, want);
	free(want);
	want = mkpath(m, "host/var/log/caddy/domlogs"); /* ${paths.log} */
	assert_string_equal(c->log_base, want);
	free(want);
	assert_null(c->admin);
	assert_int_equal(c->window_ms, 500);
	assert_false(c->remove_logs);
	assert_string_equal(c->reload_argv[0], "podman");
	assert_string_equal(c->reload_argv[6], "/etc/caddy/Caddyfile");
	assert_string_equal(c->validate_argv[3], "{caddyfile}");
	assert_true(pluginmock_subscribed(m, "domain.added"));
	assert_true(pluginmock_subscribed(m, "domain.unsuspended"));
	assert_true(pluginmock_subscribed(m, "user.denylist.changed"));
	assert_false(pluginmock_subscribed(m, "cert.issued"));
	assert_false(pluginmock_subscribed(m, "domain.config_rejected"));
	pluginmock_free(&m);
}

static void test_caddy_settings(void **state)
{
	struct pluginmock *m = pluginmock_new(
		"{\"admin\": \"127.0.0.1:2019\", \"window_ms\": 20,"
		" \"domains_dir\": \"/srv/d/\", \"remove_logs\": true,"
		" \"validate_argv\": \"none\"}");
	const char *error = NULL;
	struct caddy *c;

	(void)state;
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), 0);
	c = pluginmock_data(m);
	assert_string_equal(c->admin, "127.0.0.1:2019");
	assert_null(c->reload_argv); /* admin API only */
	assert_null(c->validate_argv);
	assert_string_equal(c->domains_dir, "/srv/d");
	assert_string_equal(c->quarantine_dir, "/srv/d.rejected");
	assert_int_equal(c->window_ms, 20);
	assert_true(c->remove_logs);
	pluginmock_free(&m);
}

static void expect_bad_setting(const char *settings, const char *key)
{
	struct pluginmock *m = pluginmock_new(settings);
	const char *error = NULL;

	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), -EINVAL);
	assert_non_null(error);
	print_message("# %s\n", error);
	assert_non_null(strstr(error, key));
	pluginmock_free(&m);
}

static void test_caddy_bad_settings(void **state)
{
	(void)state;
	expect_bad_setting("{\"window_ms\": \"soon\"}", "window_ms");
	expect_bad_setting("{\"window_ms\": -1}", "window_ms");
	expect_bad_setting("{\"reload_argv\": [\"caddy\", [5]]}", "reload_argv");
	expect_bad_setting("{\"reload_argv\": []}", "reload_argv");
	expect_bad_setting("{\"validate_argv\": [\"a\", {}]}", "validate_argv");
	expect_bad_setting("{\"caddyfile\": \"Caddyfile\"}", "caddyfile");
	expect_bad_setting("{\"log_base\": \"logs\"}", "log_base");
	expect_bad_setting("{\"remove_logs\": \"maybe\"}", "remove_logs");
	expect_bad_setting("{\"admin\": \"1.2.3.4:1 -X\"}", "admin");
	expect_bad_setting("{\"domains_dir\": \"/a\", \"quarantine_dir\": \"/a/\"}",
			   "quarantine_dir");
}

/* Settings are checked by the host against caddy_settings_decl[]: the
 * error names the setting and the bounds or the type; a check-only init
 * does nothing at all. */
static void test_caddy_settings_declared(void **state)
{
	struct pluginmock *m = pluginmock_new("{\"window_ms\": 4000000}");
	const char *error = NULL;
	struct caddy *c;
	char *settings = NULL;

	(void)state;
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), -EINVAL);
	assert_string_equal(error, "plugins.caddy.settings.window_ms: "
				   "'4000000' is out of range 0..3600000");
	pluginmock_free(&m);

	m = pluginmock_new("{\"max_rounds\": 10001}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), -EINVAL);
	assert_string_equal(error, "plugins.caddy.settings.max_rounds: "
				   "'10001' is out of range 0..10000");
	pluginmock_free(&m);

	m = pluginmock_new("{\"validate_first\": \"maybe\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), -EINVAL);
	assert_string_equal(error, "plugins.caddy.settings.validate_first: "
				   "'maybe' is not a boolean (true or false)");
	pluginmock_free(&m);

	m = pluginmock_new("{\"reload_argv\": \"caddy\", \"windows_ms\": 5}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), -EINVAL);
	assert_non_null(strstr(error, "plugins.caddy.settings.windows_ms: "
				      "unknown setting (known: caddyfile, "));
	pluginmock_free(&m);

	/* units, words, "false" switches validation off */
	m = pluginmock_new("{\"window_ms\": \"2s\", \"timeout_ms\": \"1m\","
			   " \"reload_argv\": \"caddy reload --force\","
			   " \"validate_argv\": false, \"max_rounds\": 0}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), 0);
	c = pluginmock_data(m);
	assert_int_equal(c->window_ms, 2000);
	assert_int_equal(c->timeout_ms, 60000);
	assert_int_equal(c->max_rounds, 1);
	assert_string_equal(c->reload_argv[2], "--force");
	assert_null(c->reload_argv[3]);
	assert_null(c->validate_argv);
	pluginmock_free(&m);

	/* check-only: good settings, nothing done, nothing written */
	m = pluginmock_new(NULL);
	assert_true(asprintf(&settings,
			     "{\"caddyfile\": \"%s/root/caddy/Caddyfile\","
			     " \"domains_dir\": \"%s/root/caddy/domains\","
			     " \"log_base\": \"%s/logs\", \"remove_logs\": true}",
			     pluginmock_tmp(m), pluginmock_tmp(m),
			     pluginmock_tmp(m)) > 0);
	pluginmock_set_settings(m, settings);
	free(settings);
	pluginmock_set_plugin(m, &ophook_plugin);
	pluginmock_check_only(m, true);
	assert_int_equal(pluginmock_init(m, &error), OPHOOK_SETTINGS_CHECKED);
	assert_null(pluginmock_data(m));
	assert_int_equal(pluginmock_tmp_entries(m), 0);
	assert_int_equal(pluginmock_action_requests(m, NULL), 0);
	assert_int_equal(pluginmock_log_count(m), 0);
	pluginmock_free(&m);
}

static void test_caddy_hostile_names(void **state)
{
	static const char *const bad[] = {
		"../../etc", "a/b.test", "evil.test/../../x", "x;rm -rf /", "a b.test",
		"-x.test", "localhost", "", ".test", "a..test", "\xc3\xa9.test",
	};
	struct pluginmock *m = caddy_mock(NULL, NULL);
	const char *error = NULL;
	char *logs = mkpath(m, "logs");

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *o = json_pack("{s:s}", "domain", bad[i]);
		char *j = json_dumps(o, JSON_COMPACT);

		assert_int_equal(pluginmock_send(m, "domain.added", "x.test", j, &error),
				 -EINVAL);
		print_message("# %s\n", error);
		assert_non_null(strstr(error, "field \"domain\""));
		if (bad[i][0] != '\0')
			assert_null(strstr(error, bad[i]));
		free(j);
		json_decref(o);
	}
	/* no domain field: the subject is checked */
	assert_int_equal(pluginmock_send(m, "domain.removed", "../x", NULL, &error),
			 -EINVAL);
	assert_non_null(strstr(error, "field \"subject\""));
	assert_false(exists(logs)); /* nothing created anywhere */
	assert_int_equal(pluginmock_action_requests(m, NULL), 0);
	free(logs);
	pluginmock_free(&m);
}

static void test_caddy_log_folder(void **state)
{
	struct pluginmock *m = caddy_mock(NULL, NULL);
	const char *error = NULL;
	char *dir = mkpath(m, "logs/example.test");
	struct stat st;

	(void)state;
	assert_int_equal(pluginmock_send(m, "domain.added", "example.test",
					 "{\"domain\":\"example.test\"}", &error), 0);
	assert_int_equal(lstat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	/* idempotent */
	assert_int_equal(pluginmock_send(m, "domain.added", "example.test",
					 "{\"domain\":\"example.test\"}", &error), 0);
	/* kept on removal by default */
	assert_int_equal(pluginmock_send(m, "domain.removed", "example.test",
					 "{\"domain\":\"example.test\"}", &error), 0);
	assert_true(exists(dir));
	free(dir);
	pluginmock_free(&m);
}

/* Issue 16, finding 2: a symlink planted as a domain's log folder is
 * refused (named in the error), nothing is made where it points. */
static void test_caddy_log_folder_symlink(void **state)
{
	struct pluginmock *m = caddy_mock(NULL, NULL);
	const char *error = NULL;
	char *logs = mkpath(m, "logs");
	char *dir = mkpath(m, "logs/example.test");
	char *outside = mkpath(m, "outside");
	char *made = mkpath(m, "outside/made");
	char *dangling = mkpath(m, "logs/dangling.test");

	(void)state;
	assert_int_equal(mkdir(logs, 0755), 0);
	assert_int_equal(mkdir(outside, 0755), 0);
	assert_int_equal(symlink(outside, dir), 0);
	assert_int_equal(pluginmock_send(m, "domain.added", "example.test",
					 "{\"domain\":\"example.test\"}", &error),
			 -ELOOP);
	assert_non_null(strstr(error, "example.test"));
	assert_non_null(strstr(error, "logs/example.test: a symlink, refused"));
	/* a dangling one: not made through */
	assert_int_equal(symlink(made, dangling), 0);
	assert_int_equal(pluginmock_send(m, "domain.added", "dangling.test",
					 "{\"domain\":\"dangling.test\"}", &error),
			 -ELOOP);
	assert_false(exists(made));
	free(logs);
	free(dir);
	free(outside);
	free(made);
	free(dangling);
	pluginmock_free(&m);
}

static void test_caddy_remove_logs(void **state)
{
	struct pluginmock *m = caddy_mock(NULL, "\"remove_logs\": true");
	const char *error = NULL;
	char *dir = mkpath(m, "logs/example.test");
	char *file = mkpath(m, "logs/example.test/access.log");
	char *other = mkpath(m, "logs/other.test");
	char *outside = mkpath(m, "outside");
	char *link = mkpath(m, "logs/example.test/link");

	(void)state;
	assert_int_equal(pluginmock_send(m, "domain.added", "example.test", NULL,
					 &error), 0);
	assert_int_equal(pluginmock_send(m, "domain.added", "other.test", NULL,
					 &error), 0);
	write_file(file, "log line\n");
	assert_int_equal(mkdir(outside, 0755), 0);
	assert_int_equal(symlink(outside, link), 0);
	assert_int_equal(pluginmock_send(m, "domain.removed", "example.test", NULL,
					 &error), 0);
	assert_false(exists(dir));
	assert_true(exists(other));
	assert_true(exists(outside)); /* a symlink is removed, not followed */
	free(dir);
	free(file);
	free(other);
	free(outside);
	free(link);
	pluginmock_free(&m);
}

/* A burst of events gives one reload. */
static void test_caddy_burst(void **state)
{
	struct pluginmock *m = caddy_mock(NULL, NULL);
	const char *error = NULL;
	char *reloads = mkpath(m, "reloads");
	char *stats = NULL;
	char *text = NULL;
	size_t len;

	(void)state;
	for (int i = 0; i < 100; i++) {
		char d[64];

		snprintf(d, sizeof(d), "d%d.test", i);
		assert_int_equal(pluginmock_send(m, i % 10 == 0 ? "domain.updated" :
						 "domain.added", d, NULL, &error), 0);
	}
	assert_int_equal(pluginmock_send(m, "user.denylist.changed", "user:bob",
					 "{\"user\":\"bob\"}", &error), 0);
	assert_int_equal(pluginmock_action_requests(m, "reload"), 101);
	assert_int_equal(pluginmock_action_delay(m, "reload"), 250);
	assert_int_equal(count_lines(reloads), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_int_equal(count_lines(reloads), 1);
	assert_int_equal(pluginmock_log_grep(m, "reload #1 done"), 1);
	assert_true(asprintf(&stats, "%s/stats.json", pluginmock_state_dir(m)) > 0);
	assert_int_equal(ophook_file_read_nofollow(stats, 4096, &text, &len),
			 0);
	assert_non_null(strstr(text, "\"reloads\":1,"));
	/* nothing pending: no more reloads */
	assert_int_equal(pluginmock_run_actions(m), 0);
	assert_int_equal(count_lines(reloads), 1);

	/* an event that changes no file: the action skips the reload */
	assert_int_equal(pluginmock_send(m, "domain.updated", "d1.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_int_equal(count_lines(reloads), 1);
	/* a denylist change is imported from elsewhere: always reloads */
	assert_int_equal(pluginmock_send(m, "user.denylist.changed", "user:bob",
					 "{\"user\":\"bob\"}", &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_int_equal(count_lines(reloads), 2);
	/* a new conf in domains/ reloads */
	{
		char *conf = mkpath(m, "root/caddy/domains/new.test.conf");

		write_file(conf, "new.test {\n}\n");
		free(conf);
	}
	assert_int_equal(pluginmock_send(m, "domain.added", "new.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_int_equal(count_lines(reloads), 3);
	free(text);
	text = NULL;
	assert_int_equal(ophook_file_read_nofollow(stats, 4096, &text, &len),
			 0);
	assert_non_null(strstr(text, "\"reloads\":3,"));
	assert_non_null(strstr(text, "\"skipped\":1,"));
	free(text);
	free(stats);
	free(reloads);
	pluginmock_free(&m);
}

/* A new conf Caddy names in its error by its full path (as the Caddyfile's
 * import line names it) is quarantined once the config validates without
 * it; the rest reloads. */
static void test_caddy_quarantine(void **state)
{
	/* Fails while bad.test.conf is in domains/ and imported, naming it
	 * by the path the Caddyfile imports it from, as Caddy would. */
	struct pluginmock *m = caddy_mock(
		"[\"sh\", \"-c\", \"if [ -e $(dirname $1)/domains/bad.test.conf ] && "
		"grep -q 'domains/[*]\\\\|bad.test.conf' $1; "
		"then echo '{\\\"level\\\":\\\"info\\\"}' >&2; echo 'Error: adapting "
		"config using caddyfile: /srv/caddy/domains/bad.test.conf:3: "
		"unrecognized directive: bogus' >&2; exit 1; fi\", \"v\", \"{caddyfile}\"]",
		NULL);
	char *bad, *good, *moved, *reloads;
	const char *error = NULL;
	const struct pluginmock_emitted *e;

	(void)state;
	bad = mkpath(m, "root/caddy/domains/bad.test.conf");
	good = mkpath(m, "root/caddy/domains/good.test.conf");
	moved = mkpath(m, "root/caddy/domains.rejected/bad.test.conf");
	reloads = mkpath(m, "reloads");
	write_file(bad, "bad.test {\n\ttls internal\n\tbogus\n}\n");
	write_file(good, "good.test {\n}\n");

	assert_int_equal(pluginmock_send(m, "domain.added", "bad.test", NULL, &error), 0);
	assert_int_equal(pluginmock_send(m, "domain.added", "good.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_false(exists(bad));
	assert_true(exists(moved));
	assert_true(exists(good));
	assert_true(pluginmock_own_written(m, bad));
	assert_true(pluginmock_own_written(m, moved));
	assert_int_equal(pluginmock_emitted_count(m, "domain.config_rejected"), 1);
	e = pluginmock_emitted(m, 0);
	assert_string_equal(e->subject, "bad.test");
	assert_non_null(strstr(e->fields, "\"domain\":\"bad.test\""));
	assert_non_null(strstr(e->fields, "bad.test.conf:3: unrecognized directive: bogus"));
	assert_non_null(strstr(e->fields, "\"blame\":\"message\""));
	assert_null(strstr(e->fields, "level")); /* JSON log lines dropped */
	assert_int_equal(count_lines(reloads), 1);

	/* The next change reloads without rejecting anything. */
	write_file(good, "good.test {\n\t# edited\n}\n");
	assert_int_equal(pluginmock_send(m, "domain.updated", "good.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_int_equal(count_lines(reloads), 2);
	assert_int_equal(pluginmock_emitted_count(m, "domain.config_rejected"), 1);

	/* Removing the domain forgets its quarantined conf. */
	assert_int_equal(pluginmock_send(m, "domain.removed", "bad.test", NULL, &error), 0);
	assert_false(exists(moved));
	free(bad);
	free(good);
	free(moved);
	free(reloads);
	pluginmock_free(&m);
}

/* An error naming no domain conf, without {caddyfile} to bisect: no
 * reload, a clear log line. */
static void test_caddy_unblamable(void **state)
{
	struct pluginmock *m = caddy_mock(
		"[\"sh\", \"-c\", \"echo 'Error: loading: bad global option' >&2; exit 1\"]",
		NULL);
	const char *error = NULL;
	char *reloads = mkpath(m, "reloads");

	(void)state;
	assert_int_equal(pluginmock_send(m, "domain.added", "a.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_int_equal(count_lines(reloads), 0);
	assert_int_equal(pluginmock_log_grep(m, "bad global option"), 1);
	assert_int_equal(pluginmock_log_grep(m, "bisecting"), 0);
	assert_int_equal(pluginmock_log_grep(m, "not reloading"), 1);
	assert_int_equal(pluginmock_emitted_count(m, NULL), 0);
	free(reloads);
	pluginmock_free(&m);
}

/* Fake validator: the imported files are the glob when the Caddyfile has
 * one, else its import "..." lines; two "dup.test {" are an ambiguous site,
 * a "nofile" line an error that names no file (in the Caddyfile itself
 * too). */
static const char caddy_fake_validator[] =
	"[\"sh\", \"-c\", \"f=$1; d=$(dirname $f)/domains; "
	"if grep -q nofile $f; then echo 'Error: bad global option' >&2; exit 1; fi; "
	"if grep -q 'domains/[*]' $f; then set -- $d/*.conf; "
	"else set -- $(sed -n 's/^import \\\"\\\\(.*\\\\)\\\"$/\\\\1/p' $f); fi; "
	"n=0; for x in \\\"$@\\\"; do [ -f \\\"$x\\\" ] || continue; "
	"grep -q '^dup.test {' \\\"$x\\\" && n=$((n+1)); "
	"if grep -q nofile \\\"$x\\\"; then echo 'Error: loading: some "
	"error naming no file' >&2; exit 1; fi; done; "
	"if [ $n -ge 2 ]; then echo 'Error: adapting config using caddyfile: "
	"ambiguous site definition: dup.test' >&2; exit 1; fi\", "
	"\"validator\", \"{caddyfile}\"]";

static void caddy_write_conf(struct pluginmock *m, const char *name,
			     const char *body)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/root/caddy/domains/%s.conf",
			     pluginmock_tmp(m), name) > 0);
	write_file(p, body);
	free(p);
}

/* Issue 16 finding 10: only what changed since the last good reload can
 * be blamed.  A new conf repeating a served site loses it (no bisection,
 * even though it sorts before the owner); a new conf breaking the config
 * in a way Caddy names no file for is confirmed by validating without
 * it; the last good set is kept in the state folder. */
static void test_caddy_blame_changed(void **state)
{
	struct pluginmock *m = caddy_mock(caddy_fake_validator, NULL);
	const char *error = NULL;
	char *cf = mkpath(m, "root/caddy/Caddyfile");
	const char *names[] = { "b.test", "c.test", "dup.test", "e.test" };
	char *reloads = mkpath(m, "reloads");
	char *rej_a = mkpath(m, "root/caddy/domains.rejected/a-dup.test.conf");
	char *rej_y = mkpath(m, "root/caddy/domains.rejected/y.test.conf");
	char *record = NULL, *owner = NULL, *text = NULL;
	const struct pluginmock_emitted *e;
	size_t len;

	(void)state;
	{
		char *t = NULL;

		assert_true(asprintf(&t, "{\n}\nimport %s/root/caddy/domains/*.conf\n",
				     pluginmock_tmp(m)) > 0);
		write_file(cf, t);
		free(t);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *body = NULL;

		assert_true(asprintf(&body, "%s {\n}\n", names[i]) > 0);
		caddy_write_conf(m, names[i], body);
		free(body);
	}
	assert_int_equal(pluginmock_send(m, "domain.added", "e.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_int_equal(count_lines(reloads), 1);
	assert_true(asprintf(&record, "%s/lastgood.json", pluginmock_state_dir(m)) > 0);
	assert_int_equal(ophook_file_read_nofollow(record, 1 << 20, &text, &len), 0);
	assert_non_null(strstr(text, "dup.test.conf"));
	free(text);

	/* a new conf that sorts first repeats dup.test's site */
	caddy_write_conf(m, "a-dup.test", "a-dup.test {\n}\ndup.test {\n}\n");
	assert_int_equal(pluginmock_send(m, "domain.added", "a-dup.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_true(exists(rej_a));
	assert_int_equal(pluginmock_emitted_count(m, "domain.config_rejected"), 1);
	e = pluginmock_emitted(m, 0);
	assert_string_equal(e->subject, "a-dup.test");
	assert_true(asprintf(&owner, "\"owner\":\"%s/root/caddy/domains/dup.test.conf\"",
			     pluginmock_tmp(m)) > 0);
	assert_non_null(strstr(e->fields, owner));
	assert_non_null(strstr(e->fields, "\"address\":\"dup.test\""));
	assert_non_null(strstr(e->fields, "\"blame\":\"duplicate\""));
	assert_non_null(strstr(e->fields, "ambiguous site"));
	assert_int_equal(pluginmock_log_grep(m, "(duplicate, 0 validation(s))"), 1);
	assert_int_equal(count_lines(reloads), 2);

	/* a new conf whose error names no file: the newest change,
	 * confirmed by one validation without it */
	caddy_write_conf(m, "y.test", "y.test {\n\tnofile\n}\n");
	assert_int_equal(pluginmock_send(m, "domain.added", "y.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_true(exists(rej_y));
	assert_int_equal(pluginmock_emitted_count(m, "domain.config_rejected"), 2);
	e = pluginmock_emitted(m, 1);
	assert_string_equal(e->subject, "y.test");
	assert_non_null(strstr(e->fields, "\"blame\":\"newest\""));
	assert_null(strstr(e->fields, "\"owner\""));
	assert_int_equal(pluginmock_log_grep(m, "(newest, 1 validation(s))"), 1);
	assert_int_equal(count_lines(reloads), 3);

	/* an unchanged conf is never blamed: the fault is elsewhere */
	{
		char *t = NULL;

		assert_true(asprintf(&t, "{\n\tnofile\n}\nimport %s/root/caddy/domains/*.conf\n",
				     pluginmock_tmp(m)) > 0);
		write_file(cf, t);
		free(t);
	}
	assert_int_equal(pluginmock_send(m, "user.denylist.changed", "user:bob",
					 "{\"user\":\"bob\"}", &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_int_equal(pluginmock_emitted_count(m, "domain.config_rejected"), 2);
	assert_int_equal(pluginmock_log_grep(m, "no domain conf changed since"), 1);
	assert_int_equal(count_lines(reloads), 3);
	free(owner);
	free(record);
	free(cf);
	free(reloads);
	free(rej_a);
	free(rej_y);
	pluginmock_free(&m);
}

/* Without a last good set (a first start), every conf counts as changed:
 * a conf that breaks the config is found by bisection over them. */
static void test_caddy_bisect(void **state)
{
	struct pluginmock *m = caddy_mock(caddy_fake_validator, NULL);
	const char *error = NULL;
	char *cf = mkpath(m, "root/caddy/Caddyfile");
	char *names[] = { "a.test", "b.test", "c.test", "d.test", "x.test",
			  "f.test", "g.test", "h.test", "z.test" };
	char *reloads = mkpath(m, "reloads");
	char *moved = mkpath(m, "root/caddy/domains.rejected/x.test.conf");

	(void)state;
	{
		char *text = NULL;

		assert_true(asprintf(&text, "{\n}\nimport %s/root/caddy/domains/*.conf\n",
				     pluginmock_tmp(m)) > 0);
		write_file(cf, text);
		free(text);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *body = NULL;

		assert_true(asprintf(&body, "%s {\n%s}\n", names[i],
				     strcmp(names[i], "x.test") == 0 ? "\tnofile\n" :
								      "") > 0);
		caddy_write_conf(m, names[i], body);
		free(body);
	}
	assert_int_equal(pluginmock_send(m, "domain.added", "x.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_true(exists(moved));
	assert_int_equal(pluginmock_emitted_count(m, "domain.config_rejected"), 1);
	assert_non_null(strstr(pluginmock_emitted(m, 0)->fields, "naming no file"));
	assert_string_equal(pluginmock_emitted(m, 0)->subject, "x.test");
	assert_int_equal(pluginmock_log_grep(m, "(bisection, "), 1);
	assert_int_equal(count_lines(reloads), 1);
	free(cf);
	free(reloads);
	free(moved);
	pluginmock_free(&m);
}

/* The useful line of Caddy 2.6's output. */
static void test_caddy_message(void **state)
{
	char *msg;

	(void)state;
	msg = caddy_message("{\"level\":\"info\"}\nError: adapting: x.conf:1: bad\n",
			    "");
	assert_string_equal(msg, "adapting: x.conf:1: bad");
	free(msg);
	msg = caddy_message("", "something failed\n\n");
	assert_string_equal(msg, "something failed");
	free(msg);
}

/* validate_first: false: no validation before the reload; a refused
 * reload that names a conf quarantines it and reloads again. */
static void test_caddy_no_validate_first(void **state)
{
	struct pluginmock *m = pluginmock_new(NULL);
	char *settings = NULL, *tmp = (char *)pluginmock_tmp(m);
	const char *error = NULL;
	char *p, *bad, *moved, *validated, *reloads;

	(void)state;
	p = mkpath(m, "root/caddy/domains");
	assert_int_equal(ophook_mkdir_p(p, 0755), 0);
	free(p);
	/* the reload refuses while bad.test.conf is there, as /load would */
	assert_true(asprintf(&settings,
			     "{\"caddyfile\": \"%s/root/caddy/Caddyfile\","
			     " \"log_base\": \"%s/logs\", \"validate_first\": false,"
			     " \"validate_argv\": [\"sh\", \"-c\", \"echo v >> %s/validated\"],"
			     " \"reload_argv\": [\"sh\", \"-c\", \"if [ -e %s/root/caddy/domains/bad.test.conf ]; "
			     "then echo 'Error: adapting config using caddyfile: /x/domains/bad.test.conf:2: "
			     "unrecognized directive: x' >&2; exit 1; fi; echo r >> %s/reloads\"]}",
			     tmp, tmp, tmp, tmp, tmp) > 0);
	pluginmock_set_settings(m, settings);
	free(settings);
	p = mkpath(m, "root/caddy/Caddyfile");
	write_file(p, "import /x/domains/*.conf\n");
	free(p);
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &error), 0);
	bad = mkpath(m, "root/caddy/domains/bad.test.conf");
	moved = mkpath(m, "root/caddy/domains.rejected/bad.test.conf");
	validated = mkpath(m, "validated");
	reloads = mkpath(m, "reloads");
	write_file(bad, "bad.test {\n\tx\n}\n");
	assert_int_equal(pluginmock_send(m, "domain.added", "bad.test", NULL, &error), 0);
	assert_int_equal(pluginmock_run_actions(m), 1);
	assert_true(exists(moved));
	assert_int_equal(count_lines(reloads), 1);
	assert_int_equal(count_lines(validated), 0);
	assert_int_equal(pluginmock_emitted_count(m, "domain.config_rejected"), 1);
	free(bad);
	free(moved);
	free(validated);
	free(reloads);
	pluginmock_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caddy_defaults),
		cmocka_unit_test(test_caddy_settings),
		cmocka_unit_test(test_caddy_bad_settings),
		cmocka_unit_test(test_caddy_settings_declared),
		cmocka_unit_test(test_caddy_hostile_names),
		cmocka_unit_test(test_caddy_log_folder),
		cmocka_unit_test(test_caddy_log_folder_symlink),
		cmocka_unit_test(test_caddy_remove_logs),
		cmocka_unit_test(test_caddy_burst),
		cmocka_unit_test(test_caddy_quarantine),
		cmocka_unit_test(test_caddy_unblamable),
		cmocka_unit_test(test_caddy_blame_changed),
		cmocka_unit_test(test_caddy_bisect),
		cmocka_unit_test(test_caddy_no_validate_first),
		cmocka_unit_test(test_caddy_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
