/* Unit tests: the bind9 plugin's pure zone functions (plugins/bind9/zone.c)
 * and the plugin against the fake host (tests/unit/pluginmock.h), with the
 * real named-checkzone and a fake rndc that logs its arguments. */
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "pluginmock.h"

/* The plugin itself, to reach its statics. */
#include "../../plugins/bind9/bind9.c"
#include "../../plugins/bind9/secondary.c"
#include "../../plugins/bind9/zone.c"

/* 2026-11-28 12:00:00 UTC */
#define T_NOV28 ((time_t)1795867200)

static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len;

	if (ophook_file_read_nofollow(path, 1 << 24, &data, &len) < 0)
		return NULL;
	return data;
}

static void spew(const char *path, const char *text)
{
	assert_int_equal(
		ophook_file_write_atomic(path, text, strlen(text), 0644), 0);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

/* ---- serials ---- */

static void test_serial_next(void **state)
{
	(void)state;
	assert_int_equal(zone_serial_next(0, T_NOV28), 2026112801u);
	assert_int_equal(zone_serial_next(2026010105u, T_NOV28), 2026112801u);
	assert_int_equal(zone_serial_next(2026112801u, T_NOV28), 2026112802u);
	/* nn past 99 keeps counting as an integer */
	assert_int_equal(zone_serial_next(2026112899u, T_NOV28), 2026112900u);
	/* a serial from the future only grows */
	assert_int_equal(zone_serial_next(2030010107u, T_NOV28), 2030010108u);
	/* plain counters (1, 2, 3) jump to the date form */
	assert_int_equal(zone_serial_next(7, T_NOV28), 2026112801u);
	assert_int_equal(zone_serial_next(UINT32_MAX, T_NOV28), 1u);
}

static const char one_line_soa[] =
	"$TTL 300\n"
	"; SOA in a comment 999\n"
	"x IN TXT \"SOA a b 77\"\n"
	"@ IN SOA ns1.a.test. root.a.test. 42 3600 600 86400 300\n"
	"@ IN NS ns1.a.test.\n";

static void test_serial_find(void **state)
{
	uint32_t serial = 0;
	char *out = NULL, *text = NULL;
	const char *err = NULL;
	struct zone_vars v = { .domain = "a.test", .ns1 = "ns1.a.test",
			       .ns2 = "ns2.a.test", .rpemail = "root.a.test",
			       .server_ip = "192.0.2.1", .serial = 2026112805u };

	(void)state;
	assert_int_equal(zone_serial_get(one_line_soa, &serial), 0);
	assert_int_equal(serial, 42);
	assert_int_equal(zone_serial_set(one_line_soa, 2026112801u, &out), 0);
	assert_non_null(strstr(out, "root.a.test. 2026112801 3600"));
	assert_non_null(strstr(out, "\"SOA a b 77\"")); /* untouched */
	free(out);

	/* multi-line SOA with "(" and comments, from the template */
	assert_int_equal(zone_render(zone_default_template, &v, &text, &err), 0);
	assert_int_equal(zone_serial_get(text, &serial), 0);
	assert_int_equal(serial, 2026112805u);
	free(text);

	assert_int_equal(zone_serial_get("@ IN A 1.2.3.4\n", &serial), -ENOENT);
	assert_int_equal(zone_serial_get("@ IN SOA a. b. ( x 1 2 3 4 )\n",
					 &serial), -EINVAL);
}

static void test_hash_ignores_serial(void **state)
{
	char *a = NULL, *b = NULL;

	(void)state;
	assert_int_equal(zone_serial_set(one_line_soa, 1, &a), 0);
	assert_int_equal(zone_serial_set(one_line_soa, 2026112899u, &b), 0);
	assert_true(zone_hash(a) == zone_hash(b));
	b[strlen(b) - 2] = 'X';
	assert_true(zone_hash(a) != zone_hash(b));
	free(a);
	free(b);
}

/* ---- render ---- */

static void test_render(void **state)
{
	struct zone_vars v = { .domain = "example.test", .ns1 = "ns1.op.test",
			       .ns2 = "ns2.op.test", .rpemail = "admin.op.test",
			       .server_ip = "192.0.2.7", .serial = 2026112801u };
	const char *err = NULL;
	char *text = NULL, *path, *file;

	(void)state;
	assert_int_equal(zone_render(zone_default_template, &v, &text, &err), 0);
	assert_null(strchr(text, '{'));
	assert_non_null(strstr(text, "SOA     ns1.op.test. admin.op.test. ("));
	assert_non_null(strstr(text, "2026112801"));
	assert_non_null(strstr(text, "example.test.     14400     IN      A       192.0.2.7"));
	assert_non_null(strstr(text, "@ IN NS      ns2.op.test."));
	assert_non_null(strstr(text, "v=spf1 ip4:192.0.2.7 +a +mx ~all"));
	free(text);

	/* OpenPanel's own template shape: a fixed serial and YYYYMMDD */
	assert_int_equal(zone_render("@ IN SOA {ns1}. {rpemail}. ( 2026081001 1h"
				     " 15m 1w 1h )\n; made YYYYMMDD\n",
				     &v, &text, &err), 0);
	assert_non_null(strstr(text, "( 2026112801 1h"));
	assert_non_null(strstr(text, "; made 20261128\n"));
	free(text);

	/* a placeholder without a value, a template without SOA */
	v.ns2 = NULL;
	assert_int_equal(zone_render(zone_default_template, &v, &text, &err),
			 -EINVAL);
	assert_non_null(strstr(err, "{ns2}"));
	v.ns2 = "ns2.op.test";
	assert_int_equal(zone_render("@ IN A {server_ip}\n", &v, &text, &err),
			 -EINVAL);
	assert_non_null(strstr(err, "SOA"));
	/* unknown braces are kept */
	assert_int_equal(zone_render("@ IN SOA a. b. 1 2 3 4 5\nx TXT \"{x}\"\n",
				     &v, &text, &err), 0);
	assert_non_null(strstr(text, "\"{x}\""));
	free(text);

	/* the shipped zone_template.txt is the built-in one */
	if (asprintf(&path, "%s/plugins/bind9/zone_template.txt",
		     getenv("top_srcdir") != NULL ? getenv("top_srcdir")
						  : "../..") < 0)
		abort();
	file = slurp(path);
	if (file != NULL)
		assert_string_equal(file, zone_default_template);
	free(file);
	free(path);
}

/* ---- named.conf.local ---- */

static const char conf_in[] =
	"// local zones\n"
	"zone \"first.test\" IN { type master; file \"/z/first.test.zone\"; };\n"
	"zone \"example.com\" IN { type master; file \"/z/example.com.zone\"; };\n"
	"zone \"after.test\" IN { type master; file \"/z/after.test.zone\"; };\n"
	"zone \"sub.example.com\" IN { type master; file \"/z/s.zone\"; };\n"
	"zone \"xexample.com\" { type master; file \"/z/x.zone\"; };\n"
	"zone \"multi.test\" {\n"
	"\ttype master;\n"
	"\tfile \"/z/multi.test.zone\"; // the file\n"
	"};\n"
	"# trailing comment\n";

static void test_conf_remove(void **state)
{
	char *out = NULL, *out2 = NULL;
	const char *line;

	(void)state;
	assert_int_equal(zone_conf_remove(conf_in, "example.com", &out), 0);
	assert_non_null(out);
	/* only its line: the line after it is still there, and all others */
	line = "zone \"example.com\" IN { type master; file \"/z/example.com.zone\"; };\n";
	assert_null(strstr(out, line));
	assert_int_equal(strlen(out), strlen(conf_in) - strlen(line));
	assert_non_null(strstr(out, "zone \"after.test\""));
	assert_non_null(strstr(out, "zone \"sub.example.com\""));
	assert_non_null(strstr(out, "zone \"xexample.com\""));
	/* the exact bytes before and after */
	assert_memory_equal(out, conf_in, (size_t)(strstr(conf_in, line) - conf_in));
	assert_string_equal(out + (strstr(conf_in, line) - conf_in),
			    strstr(conf_in, line) + strlen(line));

	/* a statement over several lines goes whole */
	assert_int_equal(zone_conf_remove(out, "MULTI.test.", &out2), 0);
	assert_non_null(out2);
	assert_null(strstr(out2, "multi"));
	assert_null(strstr(out2, "the file"));
	assert_non_null(strstr(out2, "# trailing comment\n"));
	free(out);
	out = NULL;

	/* absent: nothing changes */
	assert_int_equal(zone_conf_remove(out2, "nothere.test", &out), 0);
	assert_null(out);
	free(out2);

	/* two statements on one line: only ours goes */
	assert_int_equal(zone_conf_remove("zone \"a.test\" { type master; file \"a\"; }; "
					  "zone \"b.test\" { type master; file \"b\"; };\n",
					  "a.test", &out), 0);
	assert_string_equal(out, "zone \"b.test\" { type master; file \"b\"; };\n");
	free(out);
}

static void test_conf_add(void **state)
{
	char *out = NULL, *out2 = NULL;

	(void)state;
	assert_int_equal(zone_conf_add(conf_in, "example.com", "/z/e.zone", &out), 0);
	assert_null(out); /* never a duplicate */
	assert_int_equal(zone_conf_add(conf_in, "Example.COM", "/z/e.zone", &out), 0);
	assert_null(out);
	assert_int_equal(zone_conf_add(conf_in, "new.test", "/z/new.test.zone", &out), 0);
	assert_non_null(out);
	assert_memory_equal(out, conf_in, strlen(conf_in));
	assert_string_equal(out + strlen(conf_in),
			    "zone \"new.test\" IN { type master; file \"/z/new.test.zone\"; };\n");
	assert_int_equal(zone_conf_add(out, "new.test", "/z/new.test.zone", &out2), 0);
	assert_null(out2);
	free(out);
	/* no final newline in the input */
	assert_int_equal(zone_conf_add("// x", "a.test", "/a", &out), 0);
	assert_string_equal(out, "// x\nzone \"a.test\" IN { type master; file \"/a\"; };\n");
	free(out);
	assert_int_equal(zone_conf_add("", "a.test", "/a\"; }; zone \"evil", &out),
			 -EINVAL);
}

/* ---- records, TXT ---- */

static void test_records(void **state)
{
	char *out = NULL, *out2 = NULL;

	(void)state;
	assert_int_equal(zone_records_set(one_line_soa, "sub:b.a.test",
					  "b.a.test. 1 IN A 192.0.2.1\n"
					  "www.b.a.test. 1 IN A 192.0.2.1", &out), 0);
	assert_non_null(strstr(out, "b.a.test. 1 IN A 192.0.2.1 ; ophook:sub:b.a.test\n"));
	assert_int_equal(count(out, "; ophook:sub:b.a.test"), 2);
	assert_true(zone_records_has(out, "sub:b.a.test"));
	assert_false(zone_records_has(out, "sub:a.test"));
	/* same again: no change */
	assert_int_equal(zone_records_set(out, "sub:b.a.test",
					  "b.a.test. 1 IN A 192.0.2.1\n"
					  "www.b.a.test. 1 IN A 192.0.2.1", &out2), 0);
	assert_null(out2);
	/* removal gives back the original */
	assert_int_equal(zone_records_set(out, "sub:b.a.test", NULL, &out2), 0);
	assert_string_equal(out2, one_line_soa);
	free(out);
	free(out2);
}

static void test_txt_strings(void **state)
{
	char big[601], *out = NULL;

	(void)state;
	memset(big, 'k', 600);
	big[600] = '\0';
	assert_int_equal(zone_txt_strings(big, &out), 0);
	assert_int_equal(strlen(out), 600 + 3 * 2 + 2);
	assert_int_equal(count(out, "\""), 6);
	assert_int_equal(strchr(out + 1, '"') - out - 1, 255);
	free(out);
	assert_int_equal(zone_txt_strings("a\"b\\c", &out), 0);
	assert_string_equal(out, "\"a\\\"b\\\\c\"");
	free(out);
	/* OpenDKIM's mail.txt shape: quoted chunks are joined */
	assert_int_equal(zone_txt_strings("( \"v=DKIM1; k=rsa; \"\n\t  \"p=MIIB\" )", &out), 0);
	assert_string_equal(out, "\"v=DKIM1; k=rsa; p=MIIB\"");
	free(out);
	assert_int_equal(zone_txt_strings("v=DKIM1\001", &out), -EINVAL);
}

static void test_domain_names(void **state)
{
	const char *bad[] = { "../etc/passwd", "a.test;rm -rf", "a..test",
			      "-a.test", "test", "a.test/../../x", "a test.com",
			      "a.test\nzone", "" };
	const char *why = NULL;
	char *d = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(zone_domain_norm(bad[i], &d, &why), -EINVAL);
		assert_null(d);
		assert_non_null(why);
	}
	assert_int_equal(zone_domain_norm("Ex-Ample.TEST", &d, &why), 0);
	assert_string_equal(d, "ex-ample.test");
	free(d);
	assert_true(zone_is_subdomain("blog.a.test", "a.test"));
	assert_false(zone_is_subdomain("bloga.test", "a.test"));
	assert_false(zone_is_subdomain("a.test", "a.test"));
}

/* ---- the plugin against the fake host ---- */

struct fx {
	struct pluginmock *m;
	char *zones, *conf, *rndc_log;
};

static int fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *argv_json, *s;
	const char *tmp;

	f->m = pluginmock_new(NULL);
	tmp = pluginmock_tmp(f->m);
	if (asprintf(&f->zones, "%s/bind/zones", tmp) < 0 ||
	    asprintf(&f->conf, "%s/bind/named.conf.local", tmp) < 0 ||
	    asprintf(&f->rndc_log, "%s/rndc.log", tmp) < 0 ||
	    asprintf(&argv_json,
		     "[\"/bin/sh\",\"-c\",\"echo \\\"$*\\\" >> %s\",\"rndc\"]",
		     f->rndc_log) < 0)
		abort();
	ophook_mkdir_p(f->zones, 0755);
	spew(f->conf, "// keep me\n"
		      "zone \"other.test\" IN { type master; file \"/x/other.test.zone\"; };\n");
	if (asprintf(&s, "\"%s\"", f->zones) < 0)
		abort();
	pluginmock_set_setting(f->m, "zones_dir", s);
	free(s);
	if (asprintf(&s, "\"%s\"", f->conf) < 0)
		abort();
	pluginmock_set_setting(f->m, "named_conf_local", s);
	free(s);
	pluginmock_set_setting(f->m, "server_ip", "\"192.0.2.10\"");
	pluginmock_set_setting(f->m, "window_ms", "50");
	pluginmock_set_setting(f->m, "rndc_argv", argv_json);
	free(argv_json);
	pluginmock_set_plugin(f->m, &ophook_plugin);
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	struct fx *f = *state;

	pluginmock_free(&f->m);
	free(f->zones);
	free(f->conf);
	free(f->rndc_log);
	free(f);
	return 0;
}

static void fx_init(struct fx *f)
{
	const char *err = NULL;
	int ret = pluginmock_init(f->m, &err);

	if (ret != 0)
		fail_msg("init: %s", err);
}

static int fx_send(struct fx *f, const char *type, const char *domain,
		   const char *json, const char **err)
{
	return pluginmock_send(f->m, type, domain, json, err);
}

/* domain.added, without running the coalesced action. */
static void fx_stage(struct fx *f, const char *d, const char *user)
{
	char *json;
	const char *err = NULL;
	int ret;

	if (asprintf(&json, "{\"domain\":\"%s\",\"user\":\"%s\"}", d, user) < 0)
		abort();
	ret = fx_send(f, "domain.added", d, json, &err);
	if (ret != 0)
		fail_msg("domain.added %s: %d %s", d, ret, err);
	free(json);
}

/* domain.added, then the action (batch check, move in, rndc). */
static void fx_added(struct fx *f, const char *d, const char *user)
{
	fx_stage(f, d, user);
	pluginmock_run_actions(f->m);
}

static char *fx_zone(struct fx *f, const char *d)
{
	char *path, *text;

	if (asprintf(&path, "%s/%s.zone", f->zones, d) < 0)
		abort();
	text = slurp(path);
	free(path);
	return text;
}

static void test_plugin_add(void **state)
{
	struct fx *f = *state;
	char *zone, *conf, *log, *zpath;
	uint32_t serial = 0;

	if (access("/usr/bin/named-checkzone", X_OK) != 0 &&
	    access("/usr/sbin/named-checkzone", X_OK) != 0)
		skip();
	fx_init(f);
	fx_stage(f, "example.test", "bob");
	fx_stage(f, "example.test", "bob"); /* twice: no change */
	/* staged: not in zones_dir, no line yet */
	assert_null(fx_zone(f, "example.test"));
	if (asprintf(&zpath, "%s/.ophook-staging/example.test.zone", f->zones) < 0)
		abort();
	assert_true(bind9_file_exists(zpath));
	free(zpath);
	conf = slurp(f->conf);
	assert_null(strstr(conf, "example.test"));
	free(conf);
	assert_true(pluginmock_action_pending(f->m, "rndc"));
	assert_int_equal(pluginmock_action_delay(f->m, "rndc"), 50);
	fx_stage(f, "second.test", "bob");
	pluginmock_run_actions(f->m);
	assert_int_equal(pluginmock_log_grep(f->m, "2 new zones checked in one batch"), 1);
	zone = fx_zone(f, "example.test");
	assert_non_null(zone);
	assert_int_equal(zone_serial_get(zone, &serial), 0);
	assert_int_equal(serial, zone_serial_next(0, time(NULL)));
	assert_non_null(strstr(zone, "192.0.2.10"));
	assert_non_null(strstr(zone, "ns1.example.test."));
	conf = slurp(f->conf);
	if (asprintf(&zpath, "file \"%s/example.test.zone\"", f->zones) < 0)
		abort();
	assert_int_equal(count(conf, "zone \"example.test\""), 1);
	assert_non_null(strstr(conf, zpath));
	assert_non_null(strstr(conf, "// keep me\nzone \"other.test\""));
	assert_int_equal(count(conf, "zone \"second.test\""), 1);
	assert_true(pluginmock_own_written(f->m, f->conf));
	fx_added(f, "example.test", "bob"); /* again: nothing */
	log = slurp(f->rndc_log);
	assert_string_equal(log, "reconfig\n"); /* one for both */
	assert_int_equal(pluginmock_log_grep(f->m, "reloads=1"), 1);
	free(log);
	free(zpath);
	free(conf);
	free(zone);
}

static void test_plugin_hostile(void **state)
{
	struct fx *f = *state;
	const char *names[] = { "../../etc/passwd", "x.test\"; }; zone \"y",
				"a.test;reboot", "..", "a.test/../../b" };
	const char *err = NULL;
	char *conf, *json;

	fx_init(f);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		json_t *j = json_pack("{s:s,s:s}", "domain", names[i], "user", "bob");

		json = json_dumps(j, 0);
		err = NULL;
		assert_int_equal(fx_send(f, "domain.added", "x", json, &err), -EINVAL);
		assert_non_null(strstr(err, "field domain"));
		err = NULL;
		assert_int_equal(fx_send(f, "domain.removed", "x", json, &err), -EINVAL);
		assert_non_null(strstr(err, "field domain"));
		err = NULL;
		assert_int_equal(fx_send(f, "dns.zone.changed", "x", json, &err), -EINVAL);
		free(json);
		json_decref(j);
	}
	/* a hostile user name */
	assert_int_equal(fx_send(f, "domain.added", "ok.test",
				 "{\"domain\":\"ok.test\",\"user\":\"../root\"}", &err),
			 -EINVAL);
	assert_non_null(strstr(err, "field user"));
	assert_int_equal(pluginmock_own_write_count(f->m), 0);
	conf = slurp(f->conf);
	assert_int_equal(count(conf, "zone "), 1);
	free(conf);
	assert_false(pluginmock_action_pending(f->m, "rndc"));
}

static void test_plugin_no_server_ip(void **state)
{
	struct fx *f = *state;
	const char *err = NULL;

	pluginmock_set_setting(f->m, "server_ip", NULL);
	fx_init(f);
	assert_int_equal(fx_send(f, "domain.added", "a.test",
				 "{\"domain\":\"a.test\"}", &err), -EINVAL);
	assert_non_null(strstr(err, "server_ip"));
	assert_int_equal(pluginmock_log_grep(f->m, "server_ip"), 1);
}

static void test_plugin_bad_settings(void **state)
{
	struct fx *f = *state;
	const char *err = NULL;

	pluginmock_set_setting(f->m, "removed_zones", "\"shred\"");
	assert_int_equal(pluginmock_init(f->m, &err), -EINVAL);
	assert_non_null(strstr(err, "removed_zones"));
	pluginmock_set_setting(f->m, "removed_zones", NULL);
	pluginmock_set_setting(f->m, "server_ip", "\"1.2.3.4; rm\"");
	assert_int_equal(pluginmock_init(f->m, &err), -EINVAL);
	assert_non_null(strstr(err, "server_ip"));
	pluginmock_set_setting(f->m, "server_ip", "\"192.0.2.1\"");
	pluginmock_set_setting(f->m, "zone_file_in_conf", "\"/a\\\"b\"");
	assert_int_equal(pluginmock_init(f->m, &err), -EINVAL);
	assert_non_null(strstr(err, "zone_file_in_conf"));
}

static void test_plugin_ns_from_config(void **state)
{
	struct fx *f = *state;
	char *ini, *zone;

	if (asprintf(&ini, "%s/openpanel/conf", pluginmock_root(f->m)) < 0)
		abort();
	ophook_mkdir_p(ini, 0755);
	free(ini);
	if (asprintf(&ini, "%s/openpanel/conf/openpanel.config",
		     pluginmock_root(f->m)) < 0)
		abort();
	spew(ini, "[DEFAULT]\nfoo=bar\n[USERS]\nns1 = ns1.panel.test\nns2=ns2.panel.test\n"
		  "email=admin@panel.test\n");
	free(ini);
	fx_init(f);
	fx_added(f, "example.test", "bob");
	zone = fx_zone(f, "example.test");
	assert_non_null(strstr(zone, "SOA     ns1.panel.test. admin.panel.test. ("));
	assert_non_null(strstr(zone, "NS      ns2.panel.test."));
	free(zone);
}

static void test_plugin_subdomain(void **state)
{
	struct fx *f = *state;
	char *zone, *log;
	const char *err = NULL;
	uint32_t s1 = 0, s2 = 0;

	fx_init(f);
	fx_added(f, "example.test", "bob");
	zone = fx_zone(f, "example.test");
	zone_serial_get(zone, &s1);
	free(zone);
	pluginmock_run_actions(f->m);

	fx_added(f, "blog.example.test", "bob");
	assert_null(fx_zone(f, "blog.example.test"));
	zone = fx_zone(f, "example.test");
	assert_non_null(strstr(zone, "blog.example.test. 14400 IN A 192.0.2.10"));
	assert_non_null(strstr(zone, "www.blog.example.test. 14400 IN A 192.0.2.10"));
	zone_serial_get(zone, &s2);
	assert_true(s2 > s1);
	free(zone);
	fx_added(f, "blog.example.test", "bob"); /* again: no change */
	pluginmock_run_actions(f->m);
	log = slurp(f->rndc_log);
	assert_string_equal(log, "reconfig\nreload example.test\n");
	free(log);

	/* another user's subdomain gets its own zone */
	fx_added(f, "shop.example.test", "alice");
	zone = fx_zone(f, "shop.example.test");
	assert_non_null(zone);
	free(zone);

	/* removing the subdomain takes its records out of the parent */
	assert_int_equal(fx_send(f, "domain.removed", "blog.example.test",
				 "{\"domain\":\"blog.example.test\"}", &err), 0);
	zone = fx_zone(f, "example.test");
	assert_null(strstr(zone, "blog.example.test"));
	assert_non_null(strstr(zone, "SOA"));
	free(zone);
}

static void test_plugin_changed(void **state)
{
	struct fx *f = *state;
	char *zone, *edited, *path, *json, *log;
	const char *err = NULL;
	uint32_t s1 = 0, s2 = 0;

	fx_init(f);
	fx_added(f, "example.test", "bob");
	pluginmock_run_actions(f->m);
	if (asprintf(&path, "%s/example.test.zone", f->zones) < 0 ||
	    asprintf(&json, "{\"domain\":\"example.test\",\"path\":\"%s\"}", path) < 0)
		abort();
	/* our own write comes back: nothing to do */
	assert_int_equal(fx_send(f, "dns.zone.changed", "example.test", json, &err), 0);
	assert_false(pluginmock_action_pending(f->m, "rndc"));

	/* an edit without a serial bump */
	zone = fx_zone(f, "example.test");
	zone_serial_get(zone, &s1);
	if (asprintf(&edited, "%sextra 300 IN A 192.0.2.99\n", zone) < 0)
		abort();
	spew(path, edited);
	assert_int_equal(fx_send(f, "dns.zone.changed", "example.test", json, &err), 0);
	free(zone);
	zone = fx_zone(f, "example.test");
	zone_serial_get(zone, &s2);
	assert_true(s2 > s1);
	assert_non_null(strstr(zone, "extra 300 IN A 192.0.2.99"));
	pluginmock_run_actions(f->m);
	log = slurp(f->rndc_log);
	assert_string_equal(log, "reconfig\nreload example.test\n");
	free(log);
	free(zone);

	/* an edit that bumps the serial itself is kept as it is */
	zone = fx_zone(f, "example.test");
	free(edited);
	assert_int_equal(zone_serial_set(zone, s2 + 5, &edited), 0);
	spew(path, edited);
	assert_int_equal(fx_send(f, "dns.zone.changed", "example.test", json, &err), 0);
	free(zone);
	zone = fx_zone(f, "example.test");
	assert_string_equal(zone, edited);
	free(zone);
	free(edited);

	/* a broken zone: rejected, not touched, not reloaded */
	spew(path, "$TTL 1h\n@ IN SOA broken\nthis is not a record\n");
	pluginmock_run_actions(f->m);
	unlink(f->rndc_log);
	assert_int_equal(fx_send(f, "dns.zone.changed", "example.test", json, &err), 0);
	assert_int_equal(pluginmock_emitted_count(f->m, "dns.zone_rejected"), 1);
	{
		const struct pluginmock_emitted *e = pluginmock_emitted(f->m, 0);

		assert_string_equal(e->type, "dns.zone_rejected");
		assert_string_equal(e->subject, "example.test");
		assert_non_null(strstr(e->fields, "\"domain\":\"example.test\""));
		assert_non_null(strstr(e->fields, path));
		assert_non_null(strstr(e->fields, "not loaded due to errors"));
	}
	assert_false(pluginmock_action_pending(f->m, "rndc"));
	zone = fx_zone(f, "example.test");
	assert_string_equal(zone, "$TTL 1h\n@ IN SOA broken\nthis is not a record\n");
	free(zone);

	/* named.conf.local itself changed: reconfig */
	free(json);
	if (asprintf(&json, "{\"path\":\"%s\"}", f->conf) < 0)
		abort();
	assert_int_equal(fx_send(f, "dns.zone.changed", "named.conf.local", json, &err), 0);
	pluginmock_run_actions(f->m);
	log = slurp(f->rndc_log);
	assert_string_equal(log, "reconfig\n");
	free(log);
	free(json);
	free(path);
}

static void test_plugin_removed(void **state)
{
	struct fx *f = *state;
	char *conf, *before, *dir, *log;
	const char *err = NULL;
	struct stat st;

	fx_init(f);
	fx_added(f, "example.test", "bob");
	fx_added(f, "after.test", "bob");
	pluginmock_run_actions(f->m);
	unlink(f->rndc_log);
	before = slurp(f->conf);
	assert_int_equal(fx_send(f, "domain.removed", "example.test",
				 "{\"domain\":\"example.test\"}", &err), 0);
	conf = slurp(f->conf);
	assert_null(strstr(conf, "\"example.test\""));
	/* every other line, the one after included */
	assert_non_null(strstr(conf, "// keep me\nzone \"other.test\""));
	assert_non_null(strstr(conf, "zone \"after.test\""));
	assert_int_equal(strlen(before) - strlen(conf),
			 strlen(strstr(before, "zone \"example.test\"")) -
				 strlen(strstr(before, "zone \"after.test\"")));
	assert_null(fx_zone(f, "example.test"));
	if (asprintf(&dir, "%s/.removed", f->zones) < 0)
		abort();
	assert_int_equal(stat(dir, &st), 0);
	pluginmock_run_actions(f->m);
	log = slurp(f->rndc_log);
	assert_string_equal(log, "reconfig\n");
	free(log);
	/* again: nothing to do */
	assert_int_equal(fx_send(f, "domain.removed", "example.test",
				 "{\"domain\":\"example.test\"}", &err), 0);
	assert_false(pluginmock_action_pending(f->m, "rndc"));
	/* added again: the serial keeps growing past the removed zone's */
	fx_added(f, "example.test", "bob");
	{
		char *zone = fx_zone(f, "example.test");
		uint32_t serial = 0;

		assert_int_equal(zone_serial_get(zone, &serial), 0);
		assert_int_equal(serial, zone_serial_next(zone_serial_next(0, time(NULL)),
							  time(NULL)));
		free(zone);
	}
	free(dir);
	free(conf);
	free(before);
}

static void test_plugin_dkim(void **state)
{
	struct fx *f = *state;
	char big[700], *json, *zone;
	const char *err = NULL;

	fx_init(f);
	fx_added(f, "example.test", "bob");
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	if (asprintf(&json, "{\"domain\":\"example.test\",\"selector\":\"mail\","
			    "\"txt\":\"v=DKIM1; k=rsa; p=%s\"}", big) < 0)
		abort();
	assert_int_equal(fx_send(f, "mail.dkim.created", "example.test", json, &err), 0);
	zone = fx_zone(f, "example.test");
	assert_non_null(strstr(zone, "mail._domainkey.example.test. 3600 IN TXT \"v=DKIM1; k=rsa; p=AAA"));
	assert_int_equal(count(zone, "ophook:dkim:mail.example.test"), 1);
	free(zone);
	/* again: replaced, not doubled */
	assert_int_equal(fx_send(f, "mail.dkim.created", "example.test", json, &err), 0);
	zone = fx_zone(f, "example.test");
	assert_int_equal(count(zone, "_domainkey"), 1);
	free(zone);
	free(json);
	/* bad selector, no zone */
	assert_int_equal(fx_send(f, "mail.dkim.created", "example.test",
				 "{\"domain\":\"example.test\",\"selector\":\"a b\",\"txt\":\"x\"}",
				 &err), -EINVAL);
	assert_non_null(strstr(err, "field selector"));
	assert_int_equal(fx_send(f, "mail.dkim.created", "none.test",
				 "{\"domain\":\"none.test\",\"selector\":\"s\",\"txt\":\"x\"}",
				 &err), -ENOENT);
}

static void test_plugin_sub_of_staged(void **state)
{
	struct fx *f = *state;
	char *zone;

	fx_init(f);
	fx_stage(f, "example.test", "bob");
	fx_stage(f, "blog.example.test", "bob");
	pluginmock_run_actions(f->m);
	zone = fx_zone(f, "example.test");
	assert_non_null(strstr(zone, "blog.example.test. 14400 IN A 192.0.2.10"));
	free(zone);
	assert_null(fx_zone(f, "blog.example.test"));
}

static void test_plugin_batch_rejects(void **state)
{
	struct fx *f = *state;
	char *tmpl, *json, *conf;

	/* a template that renders a broken zone for long names only */
	if (asprintf(&tmpl, "%s/tmpl.txt", pluginmock_tmp(f->m)) < 0 ||
	    asprintf(&json, "\"%s\"", tmpl) < 0)
		abort();
	spew(tmpl, "@ IN SOA {ns1}. {rpemail}. ( 1 1h 15m 1w 1h )\n"
		   "@ IN NS {ns1}.\nns1 IN A {server_ip}\n"
		   "{domain}. IN A {server_ip}\n"
		   "x.long-enough-to-break.the-255-byte-limit-of-names"
		   ".in-dns.for-a-long-domain IN A {server_ip}\n");
	pluginmock_set_setting(f->m, "zone_template", json);
	fx_init(f);
	fx_stage(f, "good.test", "bob");
	fx_stage(f, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
		    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb."
		    "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.test", "bob");
	pluginmock_run_actions(f->m);
	assert_int_equal(pluginmock_emitted_count(f->m, "dns.zone_rejected"), 1);
	assert_non_null(strstr(pluginmock_emitted(f->m, 0)->subject, "aaaa"));
	conf = slurp(f->conf);
	assert_non_null(strstr(conf, "zone \"good.test\""));
	assert_null(strstr(conf, "aaaa"));
	free(conf);
	conf = fx_zone(f, "good.test");
	assert_non_null(conf);
	free(conf);
	free(json);
	free(tmpl);
}

static void test_plugin_staged_restart(void **state)
{
	struct fx *f = *state;
	struct bind9 *b;
	json_t *z;

	/* an add acknowledged but not yet batched survives a restart */
	fx_init(f);
	fx_stage(f, "example.test", "bob");
	pluginmock_fini(f->m);
	fx_init(f);
	b = pluginmock_data(f->m);
	assert_true(bind9_is_staged(b, "example.test"));
	z = bind9_state_zone(b, "example.test");
	assert_string_equal(json_string_value(json_object_get(z, "user")), "bob");
	assert_true(pluginmock_action_pending(f->m, "rndc"));
}

static void test_plugin_conf_paths(void **state)
{
	static const char *const fake_checkconf[] = {
		"/bin/sh", "-c", "echo 'zone a.test/IN: loaded serial 1'", "x",
		NULL
	};
	struct fx *f = *state;
	struct bind9 *b;
	char *conf, *log;
	const char *err = NULL;

	/* named sees the zones elsewhere (a container's mount) */
	pluginmock_set_setting(f->m, "zone_file_in_conf", "\"/var/named/zones\"");
	fx_init(f);
	b = pluginmock_data(f->m);
	assert_string_equal(b->staging_named, "/var/named/zones/.ophook-staging");
	/* the batch check cannot see /var/named here: the check is faked */
	b->checkconf_argv = fake_checkconf;
	fx_added(f, "a.test", "bob");
	conf = slurp(f->conf);
	assert_non_null(strstr(conf, "zone \"a.test\" IN { type master; file "
				     "\"/var/named/zones/a.test.zone\"; };\n"));
	free(conf);
	unlink(f->rndc_log);

	/* named's config edited by hand: reconfig */
	assert_int_equal(fx_send(f, "dns.config.changed", "dns",
				 "{\"path\":\"/etc/bind/named.conf.options\"}", &err), 0);
	pluginmock_run_actions(f->m);
	log = slurp(f->rndc_log);
	assert_string_equal(log, "reconfig\n");
	free(log);
}

static void test_plugin_unknown_zone_edit(void **state)
{
	struct fx *f = *state;
	char *path, *json, *zone;
	const char *err = NULL;
	uint32_t serial = 0;

	/* a zone from before the plugin: the watcher's old_serial says the
	 * edit kept the serial */
	fx_init(f);
	if (asprintf(&path, "%s/old.test.zone", f->zones) < 0 ||
	    asprintf(&json, "{\"domain\":\"old.test\",\"path\":\"%s\","
			    "\"change\":\"updated\",\"serial\":7,\"old_serial\":7}",
		     path) < 0)
		abort();
	spew(path, "$TTL 300\n@ IN SOA ns1.old.test. root.old.test. 7 3600 600 86400 300\n"
		   "@ IN NS ns1.old.test.\nns1 IN A 192.0.2.1\n");
	assert_int_equal(fx_send(f, "dns.zone.changed", "old.test", json, &err), 0);
	zone = fx_zone(f, "old.test");
	assert_int_equal(zone_serial_get(zone, &serial), 0);
	assert_int_equal(serial, zone_serial_next(7, time(NULL)));
	free(zone);
	free(json);
	free(path);
}

static void test_plugin_state_reload(void **state)
{
	struct fx *f = *state;
	char *zone;

	/* the owner record survives a restart: the subdomain still merges */
	fx_init(f);
	fx_added(f, "example.test", "bob");
	pluginmock_fini(f->m);
	fx_init(f);
	/* no actions from here: the mock keeps the first init's data for
	 * an action name */
	fx_stage(f, "blog.example.test", "bob");
	zone = fx_zone(f, "example.test");
	assert_non_null(strstr(zone, "blog.example.test."));
	free(zone);
}

/* ---- several nodes: addresses, zone lines ---- */

static void test_addr_norm(void **state)
{
	const struct {
		const char *in;
		bool port, prefix;
		const char *out; /* NULL: -EINVAL */
	} cases[] = {
		{ "127.0.0.1", true, false, "127.0.0.1" },
		{ " 127.0.0.1  port  5301 ", true, false, "127.0.0.1 port 5301" },
		{ "::1 port 53", true, false, "::1 port 53" },
		{ "2001:DB8::0:1", true, false, "2001:db8::1" },
		{ "192.0.2.0/24", false, true, "192.0.2.0/24" },
		{ "2001:db8::/32", false, true, "2001:db8::/32" },
		{ "127.0.0.1 port 5301", false, true, NULL },
		{ "192.0.2.0/24", true, false, NULL },
		{ "192.0.2.0/33", false, true, NULL },
		{ "127.0.0.1 port 0", true, false, NULL },
		{ "127.0.0.1 port 65536", true, false, NULL },
		{ "127.0.0.1 port -1", true, false, NULL },
		{ "127.0.0.1 port 53x", true, false, NULL },
		{ "127.0.0.1; }; allow-transfer { any", true, true, NULL },
		{ "127.0.0.1;", true, true, NULL },
		{ "ns1.example.test", true, true, NULL },
		{ "any", true, true, NULL },
		{ "\"127.0.0.1\"", true, true, NULL },
		{ "", true, true, NULL },
		{ "300.1.1.1", true, true, NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *out = NULL;
		const char *why = NULL;
		int ret = zone_addr_norm(cases[i].in, cases[i].port,
					 cases[i].prefix, &out, &why);

		if (cases[i].out == NULL) {
			if (ret != -EINVAL)
				fail_msg("\"%s\" accepted as \"%s\"",
					 cases[i].in, out);
			assert_non_null(why);
			assert_null(out);
		} else {
			if (ret != 0)
				fail_msg("\"%s\": %s", cases[i].in, why);
			assert_string_equal(out, cases[i].out);
		}
		free(out);
	}
}

static void test_conf_cluster_lines(void **state)
{
	const char *notify[] = { "127.0.0.1 port 5301", "192.0.2.7", NULL };
	const char *xfer[] = { "127.0.0.1", "192.0.2.0/24", NULL };
	const char *bad[] = { "127.0.0.1; }; allow-transfer { any", NULL };
	const char *empty[] = { NULL };
	char *opts, *line, *out;

	(void)state;
	assert_int_equal(zone_conf_opts(notify, xfer, &opts), 0);
	assert_string_equal(opts, "notify yes; also-notify { 127.0.0.1 port "
				  "5301; 192.0.2.7; }; allow-transfer { "
				  "127.0.0.1; 192.0.2.0/24; };");
	assert_int_equal(zone_conf_line_opts("a.test", "/z/a.test.zone", opts,
					     &line),
			 0);
	assert_string_equal(line, "zone \"a.test\" IN { type master; file "
				  "\"/z/a.test.zone\"; notify yes; also-notify "
				  "{ 127.0.0.1 port 5301; 192.0.2.7; }; "
				  "allow-transfer { 127.0.0.1; 192.0.2.0/24; "
				  "}; };");
	free(line);
	free(opts);
	assert_int_equal(zone_conf_opts(NULL, xfer, &opts), 0);
	assert_string_equal(opts, "allow-transfer { 127.0.0.1; 192.0.2.0/24; };");
	free(opts);
	assert_int_equal(zone_conf_opts(empty, NULL, &opts), 0);
	assert_string_equal(opts, "");
	/* no options: exactly the old line */
	assert_int_equal(zone_conf_line_opts("a.test", "/z/a", opts, &line), 0);
	free(opts);
	assert_string_equal(line, "zone \"a.test\" IN { type master; file \"/z/a\"; };");
	free(line);
	assert_int_equal(zone_conf_opts(bad, NULL, &opts), -EINVAL);
	assert_null(opts);
	assert_int_equal(zone_conf_opts(NULL, notify, &opts), -EINVAL); /* port */
	assert_null(opts);

	assert_int_equal(zone_slave_line("b.test", "127.0.0.1  port 5300",
					 "/s/b.test.db", &line),
			 0);
	assert_string_equal(line, "zone \"b.test\" IN { type slave; masters { "
				  "127.0.0.1 port 5300; }; file \"/s/b.test.db\"; };");
	assert_int_equal(zone_slave_line("b.test", "127.0.0.1; }; x", "/s/b",
					 &out),
			 -EINVAL);
	assert_int_equal(zone_slave_line("b.test", "127.0.0.1", "/s/\"b", &out),
			 -EINVAL);

	/* put: append, same again (NULL), replace in place */
	assert_int_equal(zone_conf_put("// top\n", "b.test", line, &out), 0);
	assert_non_null(out);
	{
		char *again = NULL, *exp;

		if (asprintf(&exp, "// top\n%s\n", line) < 0)
			abort();
		assert_string_equal(out, exp);
		free(exp);
		assert_int_equal(zone_conf_put(out, "b.test", line, &again), 0);
		assert_null(again);
		assert_int_equal(zone_conf_put(
					 "zone \"a.test\" { type master; file \"a\"; };\n"
					 "  zone \"b.test\" IN { type master; file \"/z/b\"; };\n"
					 "zone \"c.test\" { type master; file \"c\"; };\n",
					 "b.test", line, &again),
				 0);
		if (asprintf(&exp, "zone \"a.test\" { type master; file \"a\"; };\n"
				   "%s\n"
				   "zone \"c.test\" { type master; file \"c\"; };\n",
			     line) < 0)
			abort();
		assert_string_equal(again, exp);
		free(exp);
		free(again);
		/* two statements on one line: the other one stays */
		assert_int_equal(zone_conf_put("zone \"b.test\" { type master; "
					       "file \"b\"; };  zone \"c.test\" "
					       "{ file \"c\"; };\n",
					       "b.test", line, &again),
				 0);
		if (asprintf(&exp, "%s zone \"c.test\" { file \"c\"; };\n",
			     line) < 0)
			abort();
		assert_string_equal(again, exp);
		free(exp);
		free(again);
		/* the last line without a newline */
		assert_int_equal(zone_conf_put("zone \"b.test\" { file \"b\"; };",
					       "b.test", line, &again),
				 0);
		assert_string_equal(again, line);
		free(again);
	}
	free(out);
	free(line);
}

/* Settings of a node B that follows node A. */
static char *fx_secondary(struct fx *f, const char *role)
{
	char *dir, *s;

	if (asprintf(&dir, "%s/secondary", pluginmock_tmp(f->m)) < 0 ||
	    asprintf(&s, "\"%s\"", dir) < 0)
		abort();
	pluginmock_set_setting(f->m, "secondary_dir", s);
	free(s);
	if (asprintf(&s, "\"%s\"", role) < 0)
		abort();
	pluginmock_set_setting(f->m, "role", s);
	free(s);
	pluginmock_set_setting(f->m, "node", "\"nodeB\"");
	pluginmock_set_setting(f->m, "primaries",
			       "{\"nodeA\":\"127.0.0.1 port 5300\","
			       "\"nodeB\":\"127.0.0.1 port 5301\"}");
	return dir;
}

static void test_plugin_secondary(void **state)
{
	struct fx *f = *state;
	char *dir = fx_secondary(f, "both"), *conf, *log, *line, *db, *jnl;
	const char *err = NULL;

	fx_init(f);
	if (asprintf(&line, "zone \"x.test\" IN { type slave; masters { "
			    "127.0.0.1 port 5300; }; file \"%s/x.test.db\"; };",
		     dir) < 0 ||
	    asprintf(&db, "%s/x.test.db", dir) < 0 ||
	    asprintf(&jnl, "%s/x.test.db.jnl", dir) < 0)
		abort();
	/* from node A (the journal's node field) */
	assert_int_equal(fx_send(f, "domain.added", "x.test",
				 "{\"domain\":\"x.test\",\"node\":\"nodeA\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_int_equal(count(conf, line), 1);
	assert_non_null(strstr(conf, "// keep me\nzone \"other.test\""));
	free(conf);
	assert_null(fx_zone(f, "x.test")); /* no master zone, nothing staged */
	pluginmock_run_actions(f->m);
	log = slurp(f->rndc_log);
	assert_string_equal(log, "reconfig\n");
	free(log);
	/* again (at least once delivery): nothing changes */
	assert_int_equal(fx_send(f, "domain.added", "x.test",
				 "{\"domain\":\"x.test\",\"node\":\"nodeA\"}",
				 &err),
			 0);
	assert_false(pluginmock_action_pending(f->m, "rndc"));
	conf = slurp(f->conf);
	assert_int_equal(count(conf, "x.test"), 2); /* name and file */
	free(conf);
	/* from a node that is not a primary here: ignored */
	assert_int_equal(fx_send(f, "domain.added", "y.test",
				 "{\"domain\":\"y.test\",\"node\":\"nodeC\"}",
				 &err),
			 0);
	/* a hostile node or domain from another node */
	assert_int_equal(fx_send(f, "domain.added", "z.test",
				 "{\"domain\":\"z.test\",\"node\":\"a/../b\"}",
				 &err),
			 -EINVAL);
	assert_int_equal(fx_send(f, "domain.added", "z.test",
				 "{\"domain\":\"../z\",\"node\":\"nodeA\"}",
				 &err),
			 -EINVAL);
	assert_non_null(strstr(err, "field domain"));
	/* emitted on this node's socket naming the origin */
	assert_int_equal(fx_send(f, "domain.added", "w.test",
				 "{\"domain\":\"w.test\",\"origin_node\":\"nodeA\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_null(strstr(conf, "y.test"));
	assert_null(strstr(conf, "z.test"));
	assert_non_null(strstr(conf, "zone \"w.test\" IN { type slave;"));
	free(conf);
	/* this node's own add of a zone it follows: refused, untouched */
	assert_int_equal(fx_send(f, "domain.added", "x.test",
				 "{\"domain\":\"x.test\",\"user\":\"bob\"}", &err),
			 -EEXIST);
	assert_non_null(strstr(err, "secondary zone"));
	assert_null(fx_zone(f, "x.test"));
	/* removal from another node than the one it follows: kept */
	assert_int_equal(fx_send(f, "domain.removed", "x.test",
				 "{\"domain\":\"x.test\",\"node\":\"nodeC\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_int_equal(count(conf, line), 1);
	free(conf);
	/* removal from node A: line and file gone */
	pluginmock_run_actions(f->m);
	unlink(f->rndc_log);
	spew(db, "; transferred\n");
	spew(jnl, "j");
	assert_int_equal(fx_send(f, "domain.removed", "x.test",
				 "{\"domain\":\"x.test\",\"node\":\"nodeA\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_null(strstr(conf, "x.test"));
	assert_non_null(strstr(conf, "zone \"w.test\""));
	free(conf);
	assert_false(bind9_file_exists(db));
	assert_false(bind9_file_exists(jnl));
	spew(db, "; written by named before the reconfig\n");
	{
		/* the second deletion is on disk, for a restart meanwhile */
		char *sp, *st;

		if (asprintf(&sp, "%s/zones.json",
			     pluginmock_state_dir(f->m)) < 0)
			abort();
		st = slurp(sp);
		assert_non_null(strstr(st, "\"gone\""));
		assert_non_null(strstr(st, "x.test.db\""));
		free(st);
		pluginmock_run_actions(f->m);
		st = slurp(sp);
		assert_null(strstr(st, "x.test.db\""));
		free(st);
		free(sp);
	}
	assert_false(bind9_file_exists(db));
	log = slurp(f->rndc_log);
	assert_string_equal(log, "reconfig\n");
	free(log);
	/* state: w.test still followed, x.test not */
	assert_non_null(json_object_get(json_object_get(
		((struct bind9 *)pluginmock_data(f->m))->state, "secondaries"),
		"w.test"));
	assert_null(json_object_get(json_object_get(
		((struct bind9 *)pluginmock_data(f->m))->state, "secondaries"),
		"x.test"));
	/* a subdomain of a followed zone of the same user lives in the
	 * parent zone on the primary: no zone of its own here */
	assert_int_equal(fx_send(f, "domain.added", "p.test",
				 "{\"domain\":\"p.test\",\"user\":\"bob\","
				 "\"node\":\"nodeA\"}",
				 &err),
			 0);
	assert_int_equal(fx_send(f, "domain.added", "blog.p.test",
				 "{\"domain\":\"blog.p.test\",\"user\":\"bob\","
				 "\"node\":\"nodeA\"}",
				 &err),
			 0);
	assert_int_equal(pluginmock_log_grep(f->m, "blog.p.test: a subdomain of p.test"), 1);
	/* another user's subdomain is a zone of its own on the primary */
	assert_int_equal(fx_send(f, "domain.added", "shop.p.test",
				 "{\"domain\":\"shop.p.test\",\"user\":\"eve\","
				 "\"node\":\"nodeA\"}",
				 &err),
			 0);
	assert_int_equal(fx_send(f, "domain.added", "bad.p.test",
				 "{\"domain\":\"bad.p.test\",\"user\":\"../x\","
				 "\"node\":\"nodeA\"}",
				 &err),
			 -EINVAL);
	conf = slurp(f->conf);
	assert_int_equal(count(conf, "zone \"p.test\" IN { type slave;"), 1);
	assert_null(strstr(conf, "blog.p.test"));
	assert_null(strstr(conf, "bad.p.test"));
	assert_int_equal(count(conf, "zone \"shop.p.test\" IN { type slave;"), 1);
	free(conf);
	/* the subdomain's removal touches nothing */
	assert_int_equal(fx_send(f, "domain.removed", "blog.p.test",
				 "{\"domain\":\"blog.p.test\",\"node\":\"nodeA\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_int_equal(count(conf, "zone \"p.test\" IN { type slave;"), 1);
	free(conf);
	/* after a restart the followed zones are still known: removal works,
	 * and the subdomain rule still holds */
	pluginmock_fini(f->m);
	fx_init(f);
	assert_int_equal(fx_send(f, "domain.added", "news.p.test",
				 "{\"domain\":\"news.p.test\",\"user\":\"bob\","
				 "\"node\":\"nodeA\"}",
				 &err),
			 0);
	assert_int_equal(fx_send(f, "domain.removed", "w.test",
				 "{\"domain\":\"w.test\",\"node\":\"nodeA\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_null(strstr(conf, "w.test"));
	assert_null(strstr(conf, "news.p.test"));
	assert_non_null(strstr(conf, "zone \"p.test\" IN { type slave;"));
	free(conf);
	free(jnl);
	free(db);
	free(line);
	free(dir);
}

static void test_plugin_primary_notify(void **state)
{
	struct fx *f = *state;
	char *conf, *path, *line, *zone;
	const char *err = NULL;

	if (access("/usr/bin/named-checkzone", X_OK) != 0 &&
	    access("/usr/sbin/named-checkzone", X_OK) != 0)
		skip();
	pluginmock_set_setting(f->m, "notify", "[\"127.0.0.1 port 5301\"]");
	pluginmock_set_setting(f->m, "allow_transfer", "[\"127.0.0.1\"]");
	pluginmock_set_setting(f->m, "node", "\"nodeA\"");
	fx_init(f);
	fx_added(f, "a.test", "bob");
	if (asprintf(&line, "zone \"a.test\" IN { type master; file "
			    "\"%s/a.test.zone\"; notify yes; also-notify { "
			    "127.0.0.1 port 5301; }; allow-transfer { "
			    "127.0.0.1; }; };",
		     f->zones) < 0)
		abort();
	conf = slurp(f->conf);
	assert_int_equal(count(conf, line), 1);
	/* other lines are left as they are */
	assert_non_null(strstr(conf, "zone \"other.test\" IN { type master; "
				     "file \"/x/other.test.zone\"; };"));
	free(conf);
	free(line);
	/* a zone made before (OpenPanel's line, no options): converged */
	zone = fx_zone(f, "a.test");
	if (asprintf(&path, "%s/old.test.zone", f->zones) < 0)
		abort();
	spew(path, zone);
	free(zone);
	free(path);
	conf = slurp(f->conf);
	if (asprintf(&line, "%szone \"old.test\" IN { type master; file "
			    "\"/etc/bind/zones/old.test.zone\"; };\n",
		     conf) < 0)
		abort();
	spew(f->conf, line);
	free(line);
	free(conf);
	assert_int_equal(fx_send(f, "domain.added", "old.test",
				 "{\"domain\":\"old.test\",\"user\":\"bob\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_int_equal(count(conf, "zone \"old.test\""), 1);
	assert_non_null(strstr(conf, "old.test.zone\"; notify yes; also-notify "
				     "{ 127.0.0.1 port 5301; }"));
	free(conf);
	/* an event from another node: not ours to make a master zone of */
	assert_int_equal(fx_send(f, "domain.added", "b.test",
				 "{\"domain\":\"b.test\",\"node\":\"nodeB\"}",
				 &err),
			 0);
	pluginmock_run_actions(f->m);
	assert_null(fx_zone(f, "b.test"));
	conf = slurp(f->conf);
	assert_null(strstr(conf, "b.test"));
	free(conf);
}

static void test_plugin_role_secondary(void **state)
{
	struct fx *f = *state;
	char *dir = fx_secondary(f, "secondary"), *conf, *before;
	const char *err = NULL;

	fx_init(f);
	before = slurp(f->conf);
	/* this node's own domains: not served from here */
	assert_int_equal(fx_send(f, "domain.added", "mine.test",
				 "{\"domain\":\"mine.test\",\"user\":\"bob\"}",
				 &err),
			 0);
	assert_false(pluginmock_action_pending(f->m, "rndc"));
	pluginmock_run_actions(f->m);
	assert_null(fx_zone(f, "mine.test"));
	conf = slurp(f->conf);
	assert_string_equal(conf, before);
	free(conf);
	/* nodeB is listed in primaries, but it is this node: not a secondary */
	assert_int_equal(fx_send(f, "domain.added", "mine.test",
				 "{\"domain\":\"mine.test\",\"node\":\"nodeB\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_string_equal(conf, before);
	free(conf);
	free(before);
	assert_false(pluginmock_action_pending(f->m, "rndc"));
	/* named's config edited by hand: reconfig, whatever the role */
	assert_int_equal(fx_send(f, "dns.config.changed", "named.conf",
				 "{\"path\":\"/etc/bind/named.conf\"}", &err),
			 0);
	assert_true(pluginmock_action_pending(f->m, "rndc"));
	free(dir);
}

static const char *fx_host_node(struct ophook_ctx *ctx)
{
	(void)ctx;
	return "nodeB";
}

/* A host with node(): the daemon's name wins over the setting. */
static void test_plugin_host_node(void **state)
{
	struct fx *f = *state;
	char *dir = fx_secondary(f, "both"), *conf;
	struct ophook_host *h = (struct ophook_host *)pluginmock_host(f->m);
	const char *err = NULL;

	h->node = fx_host_node;
	pluginmock_set_setting(f->m, "node", "\"nodeA\"");
	fx_init(f);
	assert_string_equal(((struct bind9 *)pluginmock_data(f->m))->node, "nodeB");
	assert_int_equal(pluginmock_log_grep(f->m, "setting node \"nodeA\" ignored"), 1);
	/* so nodeA's events are another node's: a secondary zone */
	assert_int_equal(fx_send(f, "domain.added", "x.test",
				 "{\"domain\":\"x.test\",\"node\":\"nodeA\"}",
				 &err),
			 0);
	conf = slurp(f->conf);
	assert_non_null(strstr(conf, "zone \"x.test\" IN { type slave;"));
	free(conf);
	free(dir);
}

static void test_plugin_bad_cluster_settings(void **state)
{
	struct fx *f = *state;
	const struct {
		const char *key, *value, *names;
	} bad[] = {
		{ "role", "\"boss\"", "role" },
		{ "notify", "[\"127.0.0.1; }; allow-transfer { any\"]", "notify" },
		{ "notify", "[\"ns1.example.test\"]", "notify" },
		{ "notify", "[5301]", "notify" },
		{ "allow_transfer", "[\"127.0.0.1 port 53\"]", "allow_transfer" },
		{ "allow_transfer", "{\"a\":\"b\"}", "allow_transfer" },
		{ "primaries", "[\"127.0.0.1\"]", "primaries" },
		{ "primaries", "{\"nodeA\":\"127.0.0.1; };\"}", "primaries.nodeA" },
		{ "primaries", "{\"nodeA\":5300}", "primaries.nodeA" },
		{ "primaries", "{\"a b\":\"127.0.0.1\"}", "primaries" },
		{ "node", "\"a/b\"", "node" },
		{ "secondary_dir", "\"relative\"", "secondary_dir" },
		{ "secondary_dir_in_conf", "\"/a\\\"b\"", "secondary_dir_in_conf" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *err = NULL;
		int ret;

		pluginmock_set_setting(f->m, bad[i].key, bad[i].value);
		ret = pluginmock_init(f->m, &err);
		if (ret != -EINVAL || err == NULL ||
		    strstr(err, bad[i].names) == NULL)
			fail_msg("%s: %s: %d %s", bad[i].key, bad[i].value,
				 ret, err != NULL ? err : "");
		pluginmock_set_setting(f->m, bad[i].key, NULL);
	}
}

/* Settings are checked by the host against bind9_settings_decl[]: the
 * error names the setting and the allowed values or bounds; a check-only
 * init does nothing (no state, no staging folder, no rndc). */
static void test_plugin_settings_declared(void **state)
{
	struct fx *f = *state;
	const struct {
		const char *key, *value, *error;
	} bad[] = {
		{ "removed_zones", "\"shred\"",
		  "plugins.bind9.settings.removed_zones: 'shred' is not one of: "
		  "archive, delete" },
		{ "role", "\"boss\"",
		  "plugins.bind9.settings.role: 'boss' is not one of: primary, "
		  "secondary, both" },
		{ "window_ms", "\"2h\"",
		  "plugins.bind9.settings.window_ms: '2h' is out of range "
		  "0..3600000" },
		{ "reload_all_max", "-1",
		  "plugins.bind9.settings.reload_all_max: '-1' is out of range "
		  "0..1000000" },
		{ "zones_dir", "\"zones\"",
		  "plugins.bind9.settings.zones_dir: 'zones' is not an absolute "
		  "path" },
		{ "primaries", "[\"127.0.0.1\"]",
		  "plugins.bind9.settings.primaries: want a mapping of names to "
		  "values" },
		{ "checkconf_argv", "[]",
		  "plugins.bind9.settings.checkconf_argv: want a command (a list "
		  "of strings, or words)" },
	};
	size_t entries = pluginmock_tmp_entries(f->m);
	const char *err = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		pluginmock_set_setting(f->m, bad[i].key, bad[i].value);
		assert_int_equal(pluginmock_init(f->m, &err), -EINVAL);
		assert_string_equal(err, bad[i].error);
		pluginmock_set_setting(f->m, bad[i].key, NULL);
	}
	assert_int_equal(pluginmock_tmp_entries(f->m), entries);

	pluginmock_set_setting(f->m, "role", "\"both\"");
	pluginmock_set_setting(f->m, "primaries", "{\"nodeB\": \"192.0.2.2\"}");
	pluginmock_check_only(f->m, true);
	assert_int_equal(pluginmock_init(f->m, &err), OPHOOK_SETTINGS_CHECKED);
	assert_null(pluginmock_data(f->m));
	assert_int_equal(pluginmock_tmp_entries(f->m), entries);
	assert_int_equal(pluginmock_action_requests(f->m, NULL), 0);
	assert_int_equal(pluginmock_log_count(f->m), 0);
	assert_false(bind9_file_exists(f->rndc_log));
}

/* $INCLUDE outside zones_dir and huge $GENERATE ranges are refused with
 * the line; what is inside the folder or small passes. */
static void test_directives_check(void **state)
{
	const char *dir = "/etc/bind/zones";
	char *msg = NULL;

	(void)state;
	assert_int_equal(zone_directives_check("$TTL 1h\n@ IN A 1.2.3.4\n",
					       dir, 65536, &msg),
			 0);
	assert_null(msg);
	assert_int_equal(zone_directives_check(
				 "$TTL 1h\n$INCLUDE /etc/bind/zones/x.inc\n"
				 "$INCLUDE \"/etc/bind/zones/sub/y\" o.test.\n"
				 "$GENERATE 1-100 h$ A 192.0.2.1\n",
				 dir, 65536, &msg),
			 0);
	static const char *const bad[] = {
		"$INCLUDE /root/secret\n",
		"$include /etc/bind/zones/../../shadow\n",
		"$INCLUDE etc/shadow\n",
		"$INCLUDE /etc/bind/zonesX/a\n",
		"$INCLUDE /etc/bind/zones/\n",
		"$INCLUDE /etc/bind/zones/./a\n",
		"$INCLUDE\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *text = NULL;

		assert_true(asprintf(&text, "$TTL 1h\n%s", bad[i]) > 0);
		assert_int_equal(zone_directives_check(text, dir, 65536, &msg),
				 -EINVAL);
		assert_non_null(strstr(msg, "line 2: $INCLUDE"));
		free(msg);
		free(text);
	}
	assert_int_equal(zone_directives_check(
				 "$TTL 1h\n\n$GENERATE 0-2147483646 h$ A "
				 "192.0.2.1\n",
				 dir, 65536, &msg),
			 -EINVAL);
	assert_string_equal(msg, "line 3: $GENERATE 0-2147483646: more than "
				 "the 65536 steps allowed (limit "
				 "generate_max)");
	free(msg);
	/* 65536 steps pass, 65537 do not; a step counts; stop < start */
	assert_int_equal(zone_directives_check("$GENERATE 0-65535 h$ A 1.2.3.4",
					       dir, 65536, &msg), 0);
	assert_int_equal(zone_directives_check("$GENERATE 0-65536 h$ A 1.2.3.4",
					       dir, 65536, &msg), -EINVAL);
	free(msg);
	assert_int_equal(zone_directives_check(
				 "$GENERATE 0-655350/10 h$ A 1.2.3.4", dir,
				 65536, &msg), 0);
	assert_int_equal(zone_directives_check("$GENERATE 9-1 h$ A 1.2.3.4",
					       dir, 65536, &msg), -EINVAL);
	free(msg);
}

/* Only the checker's lines about the zone's own stream or the zone stay,
 * escaped and capped; another file's words never do. */
static void test_diag_filter(void **state)
{
	const char *out =
		"/tmp/secret:1: unknown RR type 'secretword2'\n"
		"dns_rdata_fromtext: stream-0x7fc3741f1a80:6: near 'zzz\x01\xff': "
		"bad IPv6 address\n"
		"stream-0x7f:7: something\n"
		"zone ex.test/IN: loading from master file (null) failed: x\n"
		"zone other.test/IN: not ours\n"
		"named-checkzone(_start+0x21)[0x563a4ed36421]\n";
	char *res = NULL, *longline = NULL;

	(void)state;
	assert_int_equal(zone_diag_filter(out, "ex.test", "/z/ex.test.zone",
					  &res),
			 0);
	assert_string_equal(res,
			    "dns_rdata_fromtext: /z/ex.test.zone:6: near "
			    "'zzz\\x01\\xff': bad IPv6 address\n"
			    "/z/ex.test.zone:7: something\n"
			    "zone ex.test/IN: loading from master file "
			    "/z/ex.test.zone failed: x");
	assert_null(strstr(res, "secretword"));
	free(res);
	assert_true(asprintf(&longline, "stream-0x1:1: %0500d\n", 0) > 0);
	assert_int_equal(zone_diag_filter(longline, "ex.test", "/p", &res), 0);
	assert_int_equal(strlen(res), ZONE_DIAG_LINE_MAX + 3);
	free(res);
	free(longline);
	assert_int_equal(zone_diag_filter("/etc/shadow:1: root\n", "ex.test",
					  "/p", &res),
			 0);
	assert_string_equal(res, "");
	free(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_directives_check),
		cmocka_unit_test(test_diag_filter),
		cmocka_unit_test(test_serial_next),
		cmocka_unit_test(test_serial_find),
		cmocka_unit_test(test_hash_ignores_serial),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_conf_remove),
		cmocka_unit_test(test_conf_add),
		cmocka_unit_test(test_records),
		cmocka_unit_test(test_txt_strings),
		cmocka_unit_test(test_domain_names),
		cmocka_unit_test(test_addr_norm),
		cmocka_unit_test(test_conf_cluster_lines),
		cmocka_unit_test_setup_teardown(test_plugin_add, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_hostile, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_no_server_ip, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_bad_settings, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_ns_from_config, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_subdomain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_changed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_removed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_dkim, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_sub_of_staged, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_batch_rejects, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_staged_restart, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_conf_paths, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_unknown_zone_edit, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_state_reload, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_secondary, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_primary_notify, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_role_secondary, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_host_node, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_bad_cluster_settings, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_plugin_settings_declared, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
