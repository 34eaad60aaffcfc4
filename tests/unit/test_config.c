/* Unit tests for core/lib/config.c: the strict YAML loader.  Each error case
 * writes its YAML to a temp file and checks the exact FILE:LINE:COL. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
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

/* not "config.h": the build folder holds autoconf's config.h */
#include "../../core/lib/config.h"

#ifndef OPHOOK_PLUGINDIR
#define OPHOOK_PLUGINDIR "/usr/local/lib/ophook/plugins"
#endif

/* Write `yaml` to a new temp file; the caller unlinks and frees the name. */
static char *write_temp(const char *yaml)
{
	char *path = strdup("/tmp/test_config-XXXXXX.yaml");
	int fd;

	assert_non_null(path);
	fd = mkstemps(path, 5);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
	close(fd);
	return path;
}

/* Load `yaml` from a temp file; returns config_load's result. */
static int load_yaml(const char *yaml, struct config **c_r, char **error_r)
{
	char *path = write_temp(yaml);
	int r = config_load(path, c_r, error_r);

	unlink(path);
	free(path);
	return r;
}

static struct config *load_ok(const char *yaml)
{
	struct config *c = NULL;
	char *error = NULL;
	int r = load_yaml(yaml, &c, &error);

	if (r != 0)
		print_error("unexpected error: %s\n", error);
	assert_int_equal(r, 0);
	assert_null(error);
	assert_non_null(c);
	return c;
}

/* Expect -EINVAL and "TMPFILE:POS: ...WHAT..." where POS is "LINE:COL". */
static void expect_error(const char *yaml, const char *pos, const char *what)
{
	char *path = write_temp(yaml), *error = NULL, *prefix;
	struct config *c = NULL;
	int r = config_load(path, &c, &error);

	assert_int_equal(r, -EINVAL);
	assert_null(c);
	assert_non_null(error);
	assert_true(asprintf(&prefix, "%s:%s: ", path, pos) > 0);
	if (strncmp(error, prefix, strlen(prefix)) != 0 ||
	    strstr(error, what) == NULL)
		print_error("got  '%s'\nwant '%s...%s...'\n", error, prefix,
			    what);
	assert_memory_equal(error, prefix, strlen(prefix));
	assert_non_null(strstr(error, what));
	free(prefix);
	free(error);
	unlink(path);
	free(path);
}

static const char full_yaml[] =
	"# a complete configuration\n"
	"node: web1.example.net\n"
	"root: /srv/openpanel\n"
	"watch_extra:\n"
	"  - /srv/bind/zones\n"
	"  - \"/srv/mail\"\n"
	"state_dir: /srv/state\n"
	"socket: /srv/run/ophookd.sock\n"
	"socket_group: ophook\n"
	"plugin_dirs: [/srv/plugins, /srv/dropin]\n"
	"hooks_dir: /srv/hooks\n"
	"log_level: debug\n"
	"log: syslog\n"
	"panel_db:\n"
	"  driver: mysql\n"
	"  path: /srv/panel.db\n"
	"  option_file: /srv/my.cnf\n"
	"  database: panel2\n"
	"  admin_db: /srv/users.db\n"
	"  poll_ms: 0\n"
	"journal:\n"
	"  max_attempts: 3\n"
	"  backoff_ms: 10\n"
	"  backoff_max_ms: 4294967295\n"
	"  retention_s: 60\n"
	"  batch: 100\n"
	"  sync: normal\n"
	"dispatch:\n"
	"  concurrency: 5\n"
	"  timeout_ms: 600\n"
	"  threads: 2\n"
	"watch:\n"
	"  settle_ms: 0\n"
	"  reconcile_s: 7\n"
	"  enabled: no\n"
	"hooks:\n"
	"  lua_memory_kb: 1024\n"
	"  timeout_ms: 250\n"
	"  output_max: 0\n"
	"  file_roots: [/srv/openpanel, /var/www]\n"
	"plugins:\n"
	"  log:\n"
	"    settings:\n"
	"      path: /srv/events.log\n"
	"  caddy:\n"
	"    enabled: false\n";

static void test_full(void **state)
{
	struct config *c = load_ok(full_yaml);
	const struct config_plugin *pl;

	assert_non_null(strstr(c->file, "/tmp/test_config-"));
	assert_string_equal(c->node, "web1.example.net");
	assert_string_equal(c->root, "/srv/openpanel");
	assert_int_equal(c->n_watch_extra, 2);
	assert_string_equal(c->watch_extra[0], "/srv/bind/zones");
	assert_string_equal(c->watch_extra[1], "/srv/mail");
	assert_string_equal(c->state_dir, "/srv/state");
	assert_string_equal(c->socket, "/srv/run/ophookd.sock");
	assert_string_equal(c->socket_group, "ophook");
	assert_int_equal(c->n_plugin_dirs, 2);
	assert_string_equal(c->plugin_dirs[0], "/srv/plugins");
	assert_string_equal(c->plugin_dirs[1], "/srv/dropin");
	assert_string_equal(c->hooks_dir, "/srv/hooks");
	assert_string_equal(c->log_level, "debug");
	assert_string_equal(c->log, "syslog");
	assert_string_equal(c->panel_db.driver, "mysql");
	assert_string_equal(c->panel_db.path, "/srv/panel.db");
	assert_string_equal(c->panel_db.option_file, "/srv/my.cnf");
	assert_string_equal(c->panel_db.database, "panel2");
	assert_string_equal(c->panel_db.admin_db, "/srv/users.db");
	assert_int_equal(c->panel_db.poll_ms, 0);
	assert_int_equal(c->journal.max_attempts, 3);
	assert_int_equal(c->journal.backoff_ms, 10);
	assert_int_equal(c->journal.backoff_max_ms, 4294967295u);
	assert_int_equal(c->journal.retention_s, 60);
	assert_int_equal(c->journal.batch, 100);
	assert_string_equal(c->journal.sync, "normal");
	assert_int_equal(c->dispatch.concurrency, 5);
	assert_int_equal(c->dispatch.timeout_ms, 600);
	assert_int_equal(c->dispatch.threads, 2);
	assert_int_equal(c->watch.settle_ms, 0);
	assert_int_equal(c->watch.reconcile_s, 7);
	assert_false(c->watch.enabled);
	assert_int_equal(c->hooks.memory_kb, 1024);
	assert_int_equal(c->hooks.timeout_ms, 250);
	assert_int_equal(c->hooks.output_max, 0);
	assert_int_equal(c->hooks.n_file_roots, 2);
	assert_string_equal(c->hooks.file_roots[0], "/srv/openpanel");
	assert_string_equal(c->hooks.file_roots[1], "/var/www");

	assert_int_equal(c->n_plugins, 2);
	pl = config_plugin_find(c, "log");
	assert_non_null(pl);
	assert_true(pl->enabled);
	assert_string_equal(json_string_value(json_object_get(pl->settings,
							      "path")),
			    "/srv/events.log");
	assert_string_equal(pl->file, c->file);
	assert_int_equal(pl->line, 42);
	assert_int_equal(pl->column, 3);
	pl = config_plugin_find(c, "caddy");
	assert_non_null(pl);
	assert_false(pl->enabled);
	assert_non_null(pl->settings);
	assert_true(json_is_object(pl->settings));
	assert_int_equal(json_object_size(pl->settings), 0);
	assert_int_equal(pl->line, 45);
	assert_null(config_plugin_find(c, "bind9"));
	config_free(&c);
	assert_null(c);
}

static void check_defaults(const struct config *c)
{
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	assert_string_equal(c->node, host[0] ? host : "localhost");
	assert_string_equal(c->root, "/etc/openpanel");
	assert_int_equal(c->n_watch_extra, 3);
	assert_string_equal(c->watch_extra[0], "/etc/bind/zones");
	assert_string_equal(c->watch_extra[1], "/etc/bind/named.conf.local");
	assert_string_equal(c->watch_extra[2],
			    "/usr/local/mail/openmail/docker-data/dms/config");
	assert_string_equal(c->state_dir, "/var/lib/ophookd");
	assert_string_equal(c->socket, "/run/ophookd.sock");
	assert_null(c->socket_group);
	assert_int_equal(c->n_plugin_dirs, 2);
	assert_string_equal(c->plugin_dirs[0], OPHOOK_PLUGINDIR);
	assert_string_equal(c->plugin_dirs[1], "/etc/openpanel/ophookd/plugins");
	assert_string_equal(c->hooks_dir, "/etc/openpanel/ophookd/hooks");
	assert_string_equal(c->log_level, "info");
	assert_string_equal(c->log, "stderr");
	assert_string_equal(c->panel_db.driver, "sqlite");
	assert_string_equal(c->panel_db.path, "/etc/openpanel/ophookd/panel.db");
	assert_string_equal(c->panel_db.option_file,
			    "/etc/openpanel/mysql/host_my.cnf");
	assert_string_equal(c->panel_db.database, "panel");
	assert_string_equal(c->panel_db.admin_db,
			    "/etc/openpanel/openadmin/users.db");
	assert_int_equal(c->panel_db.poll_ms, 5000);
	assert_int_equal(c->journal.max_attempts, 8);
	assert_int_equal(c->journal.backoff_ms, 1000);
	assert_int_equal(c->journal.backoff_max_ms, 600000);
	assert_int_equal(c->journal.retention_s, 604800);
	assert_int_equal(c->journal.batch, 4096);
	assert_string_equal(c->journal.sync, "full");
	assert_int_equal(c->dispatch.concurrency, 64);
	assert_int_equal(c->dispatch.timeout_ms, 30000);
	assert_int_equal(c->dispatch.threads, 8);
	assert_int_equal(c->watch.settle_ms, 50);
	assert_int_equal(c->watch.reconcile_s, 3600);
	assert_true(c->watch.enabled);
	assert_int_equal(c->hooks.memory_kb, 16384);
	assert_int_equal(c->hooks.timeout_ms, 5000);
	assert_int_equal(c->hooks.output_max, 4096);
}

static void test_defaults(void **state)
{
	struct config *c = config_new_default();

	check_defaults(c);
	assert_int_equal(c->hooks.n_file_roots, 1);
	assert_string_equal(c->hooks.file_roots[0], "/etc/openpanel");
	assert_int_equal(c->n_plugins, 0);
	assert_null(config_plugin_find(c, "log"));
	config_free(&c);
	assert_null(c);
	config_free(&c); /* NULL is fine */
}

/* Keys not in the file keep their defaults; file_roots follows root. */
static void test_partial(void **state)
{
	struct config *c = load_ok("log_level: warn\n");

	assert_string_equal(c->log_level, "warn");
	free(c->log_level);
	c->log_level = strdup("info");
	check_defaults(c);
	config_free(&c);

	c = load_ok("root: /srv/op\njournal:\nplugins:\n");
	assert_int_equal(c->hooks.n_file_roots, 1);
	assert_string_equal(c->hooks.file_roots[0], "/srv/op");
	assert_int_equal(c->n_plugins, 0);
	config_free(&c);

	/* an explicit empty list stays empty */
	c = load_ok("hooks:\n  file_roots: []\nwatch_extra: []\n");
	assert_int_equal(c->hooks.n_file_roots, 0);
	assert_int_equal(c->n_watch_extra, 0);
	config_free(&c);
}

static void test_missing_file(void **state)
{
	struct config *c = (struct config *)1;
	char *error = NULL;

	assert_int_equal(config_load("/nonexistent/ophookd.yaml", &c, &error),
			 -ENOENT);
	assert_null(c);
	assert_string_equal(error,
			    "/nonexistent/ophookd.yaml: No such file or directory");
	free(error);
	/* a folder is not a config file */
	assert_int_equal(config_load("/tmp", &c, &error), -EINVAL);
	assert_string_equal(error, "/tmp: not a regular file");
	free(error);
}

static void test_empty(void **state)
{
	expect_error("", "1:1", "empty configuration");
	expect_error("# only a comment\n\n", "1:1", "empty configuration");
	expect_error("---\n", "2:1", "empty configuration");
	expect_error("just a string\n", "1:1", "top level: expected a mapping");
	expect_error("- a\n- b\n", "1:1", "top level: expected a mapping");
}

static void test_syntax(void **state)
{
	/* bad indentation: libyaml stops at the stray key */
	expect_error("root: /a\n  socket: /b\n", "2:9",
		     "syntax error: mapping values are not allowed");
	expect_error("watch_extra: [/a, /b\nroot: /x\n", "2:5",
		     "syntax error: did not find expected ',' or ']' "
		     "(while parsing a flow sequence at 1:14)");
	expect_error("root: \"/unterminated\n", "2:1",
		     "(while scanning a quoted scalar at 1:7)");
	expect_error("root: /a\n\tsocket: /b\n", "2:1", "syntax error");
	expect_error("root: /a\n---\nroot: /b\n", "2:1",
		     "only one YAML document is allowed");
}

static void test_unknown_key(void **state)
{
	expect_error("root: /a\nroots: /b\n", "2:1", "unknown key \"roots\"");
	expect_error("journal:\n  batch: 5\n  bach: 5\n", "3:3",
		     "unknown key \"journal.bach\"");
	expect_error("journal.batch: 5\n", "1:1",
		     "unknown key \"journal.batch\"");
	expect_error("plugins:\n  log:\n    enable: true\n", "3:5",
		     "unknown key \"plugins.log.enable\"");
	expect_error("panel_db: sqlite\n", "1:11",
		     "panel_db: expected a mapping, got \"sqlite\"");
}

static void test_wrong_type(void **state)
{
	expect_error("root:\n  - /a\n", "2:3",
		     "root: expected an absolute path, got a sequence");
	expect_error("node: {a: b}\n", "1:7",
		     "node: expected a string, got a mapping");
	expect_error("watch_extra: /a\n", "1:14",
		     "watch_extra: expected a sequence of absolute paths");
	expect_error("watch_extra:\n  - [/a]\n", "2:5",
		     "watch_extra[0]: expected an absolute path, got a sequence");
	expect_error("node:\n", "1:6", "node: expected a string, got an "
				       "empty value");
	expect_error("node: \"\"\n", "1:7", "node: must not be empty");
	expect_error("plugins: [log]\n", "1:10",
		     "plugins: expected a mapping of plugin names");
	expect_error("plugins:\n  log: true\n", "2:8",
		     "plugins.log: expected a mapping");
	expect_error("plugins:\n  log:\n    settings: [a]\n", "3:15",
		     "plugins.log.settings: expected a mapping");
}

static void test_integers(void **state)
{
	expect_error("journal:\n  batch: abc\n", "2:10",
		     "journal.batch: expected a number, got \"abc\"");
	expect_error("journal:\n  batch: -5\n", "2:10",
		     "journal.batch: must not be negative");
	expect_error("journal:\n  batch: 4294967296\n", "2:10",
		     "journal.batch: 4294967296 is out of range (1..4294967295)");
	expect_error("journal:\n  batch: 99999999999999999999999\n", "2:10",
		     "out of range");
	expect_error("journal:\n  batch: 0x10\n", "2:10", "expected a number");
	expect_error("journal:\n  batch: 1.5\n", "2:10", "expected a number");
	expect_error("journal:\n  batch: \"5\"\n", "2:10", "expected a number");
	expect_error("journal:\n  batch: 0\n", "2:10",
		     "journal.batch: 0 is out of range");
	expect_error("dispatch:\n  threads: 1025\n", "2:12",
		     "dispatch.threads: 1025 is out of range (1..1024)");
	expect_error("journal:\n  backoff_ms: 5000\n  backoff_max_ms: 100\n",
		     "3:19", "journal.backoff_max_ms (100) is less than");
}

static void test_bools(void **state)
{
	struct config *c = load_ok("watch:\n  enabled: Yes\n");

	assert_true(c->watch.enabled);
	config_free(&c);
	c = load_ok("watch:\n  enabled: FALSE\n");
	assert_false(c->watch.enabled);
	config_free(&c);
	expect_error("watch:\n  enabled: on\n", "2:12",
		     "watch.enabled: expected true or false, got \"on\"");
	expect_error("watch:\n  enabled: 1\n", "2:12", "expected true or false");
	expect_error("watch:\n  enabled: \"true\"\n", "2:12",
		     "expected true or false");
	expect_error("plugins:\n  log:\n    enabled: maybe\n", "3:14",
		     "plugins.log.enabled: expected true or false");
}

static void test_duplicate(void **state)
{
	expect_error("root: /a\nsocket: /s\nroot: /b\n", "3:1",
		     "duplicate key \"root\"");
	expect_error("journal:\n  batch: 1\n  sync: full\n  'batch': 2\n",
		     "4:3", "duplicate key \"batch\"");
	expect_error("plugins:\n  log: {}\n  log: {}\n", "3:3",
		     "duplicate key \"log\"");
	/* inside settings too */
	expect_error("plugins:\n  log:\n    settings: {a: 1, b: 2, a: 3}\n",
		     "3:28", "duplicate key \"a\"");
}

static void test_enums(void **state)
{
	expect_error("log_level: verbose\n", "1:12",
		     "log_level: invalid value \"verbose\" "
		     "(expected debug|info|warn|error)");
	expect_error("log: file\n", "1:6",
		     "log: invalid value \"file\" (expected stderr|syslog)");
	expect_error("panel_db:\n  driver: postgres\n", "2:11",
		     "panel_db.driver: invalid value \"postgres\" "
		     "(expected sqlite|mysql)");
	expect_error("journal:\n  sync: off\n", "2:9",
		     "(expected full|normal)");
}

/* journal.backend mysql and its connection keys, plugins.NAME.mode */
static void test_cluster(void **state)
{
	struct config *c = load_ok("journal:\n  backend: mysql\n"
				   "  host: 127.0.0.1\n  port: 3307\n"
				   "  user: ophook\n"
				   "  password_file: /etc/ophook.pw\n"
				   "  database: ophook2\n  poll_ms: 50\n"
				   "  lease_ms: 2000\n"
				   "plugins:\n  log:\n    mode: fanout\n"
				   "  bind9:\n    mode: shared\n"
				   "  caddy:\n    mode: local\n");

	assert_string_equal(c->journal.backend, "mysql");
	assert_string_equal(c->journal.host, "127.0.0.1");
	assert_int_equal(c->journal.port, 3307);
	assert_string_equal(c->journal.user, "ophook");
	assert_string_equal(c->journal.password_file, "/etc/ophook.pw");
	assert_string_equal(c->journal.database, "ophook2");
	assert_null(c->journal.socket);
	assert_int_equal(c->journal.poll_ms, 50);
	assert_int_equal(c->journal.lease_ms, 2000);
	assert_int_equal(config_plugin_find(c, "log")->mode, CONFIG_MODE_FANOUT);
	assert_int_equal(config_plugin_find(c, "bind9")->mode,
			 CONFIG_MODE_SHARED);
	assert_int_equal(config_plugin_find(c, "caddy")->mode,
			 CONFIG_MODE_LOCAL);
	config_free(&c);

	c = load_ok("plugins:\n  log:\n    enabled: true\n");
	assert_string_equal(c->journal.backend, "sqlite");
	assert_string_equal(c->journal.database, "ophook");
	assert_int_equal(c->journal.port, 3306);
	assert_int_equal(c->journal.lease_ms, 30000);
	assert_int_equal(config_plugin_find(c, "log")->mode, CONFIG_MODE_LOCAL);
	config_free(&c);

	expect_error("journal:\n  backend: postgres\n", "2:12",
		     "(expected sqlite|mysql)");
	expect_error("journal:\n  port: 70000\n", "2:9", "journal.port");
	expect_error("journal:\n  hots: db\n", "2:3",
		     "unknown key \"journal.hots\"");
	expect_error("journal:\n  lease_ms: [1]\n", "2:13", "journal.lease_ms");
	expect_error("plugins:\n  log:\n    mode: everywhere\n", "3:11",
		     "plugins.log.mode: expected local, fanout or shared");
	expect_error("plugins:\n  log:\n    mode: [fanout]\n", "3:11",
		     "plugins.log.mode");
}

static void test_plugin_names(void **state)
{
	struct config *c =
		load_ok("plugins:\n  a_b-9: {}\n"
			"  abcdefghijklmnopqrstuvwxyz012345:\n");

	assert_int_equal(c->n_plugins, 2);
	assert_non_null(config_plugin_find(c, "a_b-9"));
	config_free(&c);
	expect_error("plugins:\n  Caddy: {}\n", "2:3",
		     "plugins: invalid plugin name \"Caddy\"");
	expect_error("plugins:\n  log: {}\n  ../evil: {}\n", "3:3",
		     "invalid plugin name \"../evil\"");
	expect_error("plugins:\n  abcdefghijklmnopqrstuvwxyz0123456: {}\n", "2:3",
		     "invalid plugin name");
	expect_error("plugins:\n  \"\": {}\n", "2:3", "invalid plugin name");
}

/* `enabled:` written or not: a system-folder plugin needs it said. */
static void test_plugin_enabled_set(void **state)
{
	struct config *c = load_ok("plugins:\n  a: {}\n  b:\n    enabled: true\n"
				   "  c:\n    enabled: false\n");

	(void)state;
	assert_true(config_plugin_find(c, "a")->enabled);
	assert_false(config_plugin_find(c, "a")->enabled_set);
	assert_true(config_plugin_find(c, "b")->enabled_set);
	assert_true(config_plugin_find(c, "b")->enabled);
	assert_true(config_plugin_find(c, "c")->enabled_set);
	assert_false(config_plugin_find(c, "c")->enabled);
	config_free(&c);
}

/* paths: watch_extra and the root-relative files follow the trees. */
static void test_paths(void **state)
{
	struct config *c = load_ok("root: /t/op\npaths:\n  bind: /t/bind\n"
				   "  mail: /t/mail\n");

	(void)state;
	assert_string_equal(c->paths.bind, "/t/bind");
	assert_string_equal(c->paths.log, "/var/log");
	assert_string_equal(c->paths.bind_cache, "/var/cache/bind");
	assert_int_equal(c->n_watch_extra, 3);
	assert_string_equal(c->watch_extra[0], "/t/bind/zones");
	assert_string_equal(c->watch_extra[1], "/t/bind/named.conf.local");
	assert_string_equal(c->watch_extra[2], "/t/mail/docker-data/dms/config");
	assert_string_equal(c->hooks_dir, "/t/op/ophookd/hooks");
	assert_string_equal(c->panel_db.path, "/t/op/ophookd/panel.db");
	assert_string_equal(c->panel_db.admin_db, "/t/op/openadmin/users.db");
	assert_string_equal(c->panel_db.option_file, "/t/op/mysql/host_my.cnf");
	config_free(&c);
	c = load_ok("paths:\n  bind: /t/bind\nwatch_extra: [/w]\n"
		    "hooks_dir: /h\n");
	assert_int_equal(c->n_watch_extra, 1);
	assert_string_equal(c->watch_extra[0], "/w");
	assert_string_equal(c->hooks_dir, "/h");
	assert_string_equal(c->panel_db.path, "/etc/openpanel/ophookd/panel.db");
	config_free(&c);
	expect_error("paths:\n  www: /x\n", "2:3", "unknown key \"paths.www\"");
	/* the notification log follows paths.log unless set */
	c = load_ok("paths:\n  log: /t/log\n  home: /t/home\n");
	assert_string_equal(c->paths.home, "/t/home");
	assert_string_equal(c->paths.admin_notifications,
			    "/t/log/openpanel/admin/notifications.log");
	config_free(&c);
	c = load_ok("paths:\n  log: /t/log\n  admin_notifications: /n.log\n");
	assert_string_equal(c->paths.admin_notifications, "/n.log");
	config_free(&c);
	expect_error("paths:\n  home: rel\n", "2:9", "absolute path");
}

static void test_plugin_isolation(void **state)
{
	struct config *c =
		load_ok("plugins:\n  a:\n    isolation: process\n"
			"    crash_limit: 5\n    crash_window: 2m\n"
			"  b:\n    isolation: inline\n  c: {}\n");
	const struct config_plugin *a = config_plugin_find(c, "a");
	const struct config_plugin *b = config_plugin_find(c, "b");
	const struct config_plugin *cp = config_plugin_find(c, "c");

	(void)state;
	assert_int_equal(a->isolation, CONFIG_ISOLATION_PROCESS);
	assert_int_equal(a->crash_limit, 5);
	assert_int_equal(a->crash_window_ms, 120000);
	assert_int_equal(b->isolation, CONFIG_ISOLATION_INLINE);
	assert_int_equal(cp->isolation, CONFIG_ISOLATION_DEFAULT);
	assert_int_equal(cp->crash_limit, CONFIG_CRASH_LIMIT_DEF);
	assert_int_equal(cp->crash_window_ms, CONFIG_CRASH_WINDOW_DEF_MS);
	config_free(&c);
	expect_error("plugins:\n  a:\n    isolation: thread\n", "3:16",
		     "plugins.a.isolation");
	expect_error("plugins:\n  a:\n    crash_limit: 0\n", "3:18",
		     "out of range");
	expect_error("plugins:\n  a:\n    crash_window: 5x\n", "3:19",
		     "a duration");
	expect_error("plugins:\n  a:\n    crash_window: 500ms\n", "3:19",
		     "out of range");
}

static void test_anchors_aliases(void **state)
{
	expect_error("root: &r /a\nsocket: /s\n", "1:7",
		     "anchors (&r) are not supported");
	expect_error("hooks:\n  file_roots: [/a]\nwatch_extra: *x\n", "3:14",
		     "aliases (*x) are not supported");
	expect_error("watch_extra: &x [/a]\nplugin_dirs: *x\n", "1:14",
		     "anchors (&x) are not supported");
	expect_error("watch_extra: [/a]\nplugin_dirs: *x\n", "2:14",
		     "aliases (*x) are not supported");
	expect_error("root: !!str /a\n", "1:7", "tags (tag:yaml.org,2002:str)");
	expect_error("a: &b {x: 1}\n", "1:4", "anchors (&b)");
}

static void test_relative_paths(void **state)
{
	expect_error("root: etc/openpanel\n", "1:7",
		     "root: must be an absolute path, got \"etc/openpanel\"");
	expect_error("panel_db:\n  path: panel.db\n", "2:9",
		     "panel_db.path: must be an absolute path");
	expect_error("plugin_dirs:\n  - /ok\n  - ./plugins\n", "3:5",
		     "plugin_dirs[1]: must be an absolute path");
	expect_error("hooks:\n  file_roots: [/a, b]\n", "2:20",
		     "hooks.file_roots[1]: must be an absolute path");
	expect_error("socket: \"/run/a\\0b\"\n", "1:9",
		     "socket: must not contain a NUL character");
}

static void test_settings(void **state)
{
	struct config *c = load_ok(
		"plugins:\n"
		"  caddy:\n"
		"    enabled: yes\n"
		"    settings:\n"
		"      reload: [podman, exec, caddy, \"caddy reload\"]\n"
		"      port: 2019\n"
		"      tls: true\n"
		"      empty:\n"
		"      quoted: \"\"\n"
		"      nested:\n"
		"        a: {b: [1, {c: d}]}\n"
		"      block: |\n"
		"        line1\n"
		"        line2\n"
		"  bind9:\n"
		"    settings: {}\n"
		"  firewall:\n"
		"    settings:\n");
	const struct config_plugin *pl = config_plugin_find(c, "caddy");
	char *dump;

	assert_non_null(pl);
	assert_true(pl->enabled);
	assert_int_equal(pl->line, 2);
	assert_int_equal(pl->column, 3);
	dump = json_dumps(pl->settings, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(dump,
			    "{\"block\":\"line1\\nline2\\n\",\"empty\":\"\","
			    "\"nested\":{\"a\":{\"b\":[\"1\",{\"c\":\"d\"}]}},"
			    "\"port\":\"2019\",\"quoted\":\"\","
			    "\"reload\":[\"podman\",\"exec\",\"caddy\","
			    "\"caddy reload\"],\"tls\":\"true\"}");
	free(dump);
	pl = config_plugin_find(c, "bind9");
	assert_true(json_is_object(pl->settings));
	assert_int_equal(json_object_size(pl->settings), 0);
	pl = config_plugin_find(c, "firewall");
	assert_non_null(pl->settings);
	assert_int_equal(json_object_size(pl->settings), 0);
	assert_int_equal(pl->line, 17);
	config_free(&c);

	expect_error("plugins:\n  log:\n    settings:\n      {a: b}: c\n", "4:7",
		     "a mapping key must be a plain string");
}

static void test_nullable(void **state)
{
	struct config *c = load_ok("socket_group: ~\n");

	assert_null(c->socket_group);
	config_free(&c);
	c = load_ok("socket_group: null\nsocket: '/x y/ophookd.sock'\n");
	assert_null(c->socket_group);
	assert_string_equal(c->socket, "/x y/ophookd.sock");
	config_free(&c);
}

/* containers: off by default, the real paths as defaults, the sockets
 * sequence checked item by item with positions */
static void test_containers(void **state)
{
	struct config *c;

	(void)state;
	c = config_new_default();
	assert_false(c->containers.enabled);
	assert_string_equal(c->containers.root_socket, "/run/podman/podman.sock");
	assert_string_equal(c->containers.run_user_dir, "/run/user");
	assert_true(c->containers.peer_check);
	assert_int_equal(c->containers.n_sockets, 0);
	config_free(&c);
	c = load_ok("containers:\n  enabled: true\n  root_socket: ~\n"
		    "  kmsg: ~\n  sockets:\n"
		    "    - { path: /t/u1.sock, uid: 1001 }\n"
		    "    - path: /t/d.sock\n      uid: 0\n      api: docker\n");
	assert_true(c->containers.enabled);
	assert_null(c->containers.root_socket);
	assert_null(c->containers.kmsg);
	assert_int_equal(c->containers.n_sockets, 2);
	assert_string_equal(c->containers.sockets[0].path, "/t/u1.sock");
	assert_int_equal(c->containers.sockets[0].uid, 1001);
	assert_false(c->containers.sockets[0].docker);
	assert_int_equal(c->containers.sockets[1].uid, 0);
	assert_true(c->containers.sockets[1].docker);
	config_free(&c);
	expect_error("containers:\n  sockets:\n    - { path: rel.sock, uid: 1 }\n",
		     "3:15", "containers.sockets[].path: must be an absolute path");
	expect_error("containers:\n  sockets:\n    - { path: /a, uid: -1 }\n",
		     "3:24", "containers.sockets[].uid: expected a uid");
	expect_error("containers:\n  sockets:\n    - { path: /a, uid: 1, api: rest }\n",
		     "3:32", "containers.sockets[].api: expected libpod|docker");
	expect_error("containers:\n  sockets:\n    - { path: /a, gid: 1 }\n",
		     "3:19", "unknown key \"containers.sockets[].gid\"");
	expect_error("containers:\n  sockets:\n    - { path: /a }\n",
		     "3:7", "path and uid are required");
	expect_error("containers:\n  sockets: /a\n", "2:12",
		     "containers.sockets: expected a sequence");
	expect_error("containers:\n  restart_loop_deaths: 1\n", "2:24",
		     "containers.restart_loop_deaths");
}

/* alerts.*: defaults, durations and levels parsed and sorted, errors with
 * their position. */
static void test_alerts(void **state)
{
	struct config *c = NULL;
	char *err = NULL;

	(void)state;
	assert_int_equal(load_yaml("node: x\n", &c, &err), 0);
	assert_false(c->alerts.enabled);
	assert_int_equal(c->alerts.n_cert_thresholds, 3);
	assert_int_equal(c->alerts.cert_th_s[0], 14 * 86400);
	assert_int_equal(c->alerts.cert_th_s[2], 86400);
	assert_int_equal(c->alerts.quota_lv[0], 90);
	assert_int_equal(c->alerts.quota_lv[1], 100);
	assert_int_equal(c->alerts.n_quota_command, 5);
	assert_string_equal(c->alerts.quota_command[0], "repquota");
	assert_string_equal(c->alerts.backup_container, "backup");
	config_free(&c);
	assert_int_equal(load_yaml("alerts:\n  enabled: true\n"
				   "  cert_thresholds: [30s, 2h, 5m]\n"
				   "  quota_levels: [100, 80]\n"
				   "  quota_command: [/usr/local/bin/rq, --csv, "
				   "\"a b\"]\n  backup_container: ~\n",
				   &c, &err), 0);
	assert_true(c->alerts.enabled);
	assert_int_equal(c->alerts.cert_th_s[0], 7200);
	assert_int_equal(c->alerts.cert_th_s[1], 300);
	assert_int_equal(c->alerts.cert_th_s[2], 30);
	assert_int_equal(c->alerts.quota_lv[0], 80);
	assert_string_equal(c->alerts.quota_command[2], "a b");
	assert_null(c->alerts.backup_container);
	config_free(&c);
	expect_error("alerts:\n  cert_thresholds: [7x]\n", "2:20",
		     "alerts.cert_thresholds: a threshold is not a duration");
	expect_error("alerts:\n  cert_thresholds: [7d, 168h]\n", "2:20",
		     "given twice");
	expect_error("alerts:\n  quota_levels: [0]\n", "2:17",
		     "alerts.quota_levels: a level is a percentage");
	expect_error("alerts:\n  quota_margin: 101\n", "2:17",
		     "alerts.quota_margin");
}

static void test_depth(void **state)
{
	char yaml[512] = "plugins:\n  log:\n    settings:\n      a: ";
	size_t len = strlen(yaml);

	for (int i = 0; i < 80; i++)
		yaml[len++] = '[';
	yaml[len] = '\0';
	expect_error(yaml, "4:71", "nested deeper than 64 levels");
}

static char *make_dir(const char *base, const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", base, name) > 0);
	assert_int_equal(mkdir(p, 0700), 0);
	return p;
}

static void test_check_paths(void **state)
{
	char base[] = "/tmp/test_config-dir-XXXXXX", *yaml, *error = NULL;
	char *root, *state_parent, *plugins, *file;
	struct config *c;

	assert_non_null(mkdtemp(base));
	root = make_dir(base, "root");
	state_parent = make_dir(base, "var");
	plugins = make_dir(base, "plugins");
	assert_true(asprintf(&file, "%s/file", base) > 0);
	assert_int_equal(close(creat(file, 0600)), 0);

	assert_true(asprintf(&yaml,
			     "root: %s\nstate_dir: %s/ophookd\n"
			     "plugin_dirs: [%s, %s, /etc/openpanel/ophookd/plugins]\n",
			     root, state_parent, OPHOOK_PLUGINDIR, plugins) > 0);
	c = load_ok(yaml);
	free(yaml);
	assert_int_equal(config_check_paths(c, &error), 0);
	assert_null(error);

	/* root missing */
	free(c->root);
	assert_true(asprintf(&c->root, "%s/nope", base) > 0);
	assert_int_equal(config_check_paths(c, &error), -ENOENT);
	assert_non_null(strstr(error, ": root: "));
	assert_non_null(strstr(error, "No such file or directory"));
	assert_memory_equal(error, c->file, strlen(c->file));
	free(error);

	/* root is a file */
	free(c->root);
	c->root = strdup(file);
	assert_int_equal(config_check_paths(c, &error), -ENOTDIR);
	assert_non_null(strstr(error, ": root: "));
	assert_non_null(strstr(error, "not a directory"));
	free(error);
	free(c->root);
	c->root = strdup(root);

	/* state_dir's parent missing */
	free(c->state_dir);
	assert_true(asprintf(&c->state_dir, "%s/no/ophookd/", base) > 0);
	assert_int_equal(config_check_paths(c, &error), -ENOENT);
	assert_non_null(strstr(error, ": state_dir (parent): "));
	assert_non_null(strstr(error, "/no: "));
	free(error);
	free(c->state_dir);
	assert_true(asprintf(&c->state_dir, "%s/ophookd", state_parent) > 0);

	/* a plugin dir that is not a built-in default must exist */
	free(c->plugin_dirs[1]);
	assert_true(asprintf(&c->plugin_dirs[1], "%s/gone", base) > 0);
	assert_int_equal(config_check_paths(c, &error), -ENOENT);
	assert_non_null(strstr(error, ": plugin_dirs: "));
	assert_non_null(strstr(error, "/gone: No such file"));
	free(error);
	config_free(&c);

	rmdir(root);
	rmdir(state_parent);
	rmdir(plugins);
	unlink(file);
	rmdir(base);
	free(root);
	free(state_parent);
	free(plugins);
	free(file);
}

/* The shipped etc/ophookd.yaml loads and lists the plugins. */
static void test_shipped_config(void **state)
{
	const char *top = getenv("top_srcdir");
	const char *names[] = { "log", "caddy", "bind9", "mailserver",
				"goaccess", "firewall" };
	struct config *c = NULL;
	char *path, *error = NULL;
	int r;

	if (top == NULL || top[0] == '\0')
		top = access("etc/ophookd.yaml", R_OK) == 0 ? "." : "../..";
	assert_true(asprintf(&path, "%s/etc/ophookd.yaml", top) > 0);
	r = config_load(path, &c, &error);
	if (r != 0)
		print_error("%s\n", error);
	assert_int_equal(r, 0);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const struct config_plugin *pl = config_plugin_find(c, names[i]);

		assert_non_null(pl);
		assert_true(pl->enabled == (i == 0));
		assert_true(json_is_object(pl->settings));
	}
	/* the documented values are the defaults */
	check_defaults(c);
	assert_int_equal(c->hooks.n_file_roots, 1);
	assert_string_equal(c->hooks.file_roots[0], "/etc/openpanel");
	config_free(&c);
	free(path);
}

static void test_error_r_null(void **state)
{
	struct config *c;

	assert_int_equal(config_load("/nonexistent", &c, NULL), -ENOENT);
	assert_int_equal(load_yaml("roots: /x\n", &c, NULL), -EINVAL);
	assert_null(c);
}

/* What a reload changed: keys added, removed or edited, comments and
 * order ignored, skipped keys left out. */
static void test_changed_keys(void **state)
{
	static const char *const live[] = { "log", "log_level", NULL };
	struct config *a = load_ok("log_level: info\nsocket_max_clients: 8\n"
				   "alerts:\n  enabled: false\n"
				   "console:\n  listen: /run/c.sock\n");
	struct config *b = load_ok("# a comment\nconsole:\n  listen: /run/c.sock\n"
				   "socket_max_clients: 8\nlog_level: debug\n"
				   "alerts:\n  enabled: false\n");
	struct config *c = load_ok("log_level: info\nalerts:\n  enabled: true\n"
				   "console:\n  listen: /run/c.sock\n"
				   "socket_idle_ms: 1000\n");
	char buf[256];

	(void)state;
	config_changed_keys(a, b, live, buf, sizeof(buf));
	assert_string_equal(buf, "");
	config_changed_keys(a, b, NULL, buf, sizeof(buf));
	assert_string_equal(buf, "log_level");
	config_changed_keys(a, c, live, buf, sizeof(buf));
	assert_string_equal(buf, "alerts, socket_idle_ms, socket_max_clients");
	/* too small for the whole list: whole keys only */
	config_changed_keys(a, c, live, buf, 20);
	assert_string_equal(buf, "alerts");
	config_free(&a);
	config_free(&b);
	config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_partial),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_integers),
		cmocka_unit_test(test_bools),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_cluster),
		cmocka_unit_test(test_plugin_names),
		cmocka_unit_test(test_plugin_enabled_set),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_anchors_aliases),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_nullable),
		cmocka_unit_test(test_alerts),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_plugin_isolation),
		cmocka_unit_test(test_check_paths),
		cmocka_unit_test(test_shipped_config),
		cmocka_unit_test(test_error_r_null),
		cmocka_unit_test(test_changed_keys),
	};

	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
