/* Unit tests: the firewall plugin (plugins/firewall/firewall.c) against the
 * fake host (tests/unit/pluginmock.h), with fake ufw / csf scripts that log
 * their arguments, one line per call, arguments separated by '|'. */
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

#include "../../plugins/firewall/firewall.c"

static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len;

	if (ophook_file_read_nofollow(path, 1 << 24, &data, &len) < 0)
		return NULL;
	return data;
}

static void spew(const char *path, const char *text, mode_t mode)
{
	assert_int_equal(
		ophook_file_write_atomic(path, text, strlen(text), mode), 0);
	assert_int_equal(chmod(path, mode), 0);
}

struct fx {
	struct pluginmock *m;
	char *fake, *log, *status, *conf;
};

/* A mock with a fake backend binary at tmp/fake; `ufw status` prints the
 * file tmp/status. */
static struct fx *fx_new(const char *backend)
{
	struct fx *x = calloc(1, sizeof(*x));
	const char *tmp;
	char *script, *json;

	assert_non_null(x);
	x->m = pluginmock_new(NULL);
	tmp = pluginmock_tmp(x->m);
	assert_true(asprintf(&x->fake, "%s/fake", tmp) > 0);
	assert_true(asprintf(&x->log, "%s/calls.log", tmp) > 0);
	assert_true(asprintf(&x->status, "%s/status", tmp) > 0);
	assert_true(asprintf(&x->conf, "%s/csf.conf", tmp) > 0);
	assert_true(asprintf(&script,
		"#!/bin/sh\n"
		"(IFS='|'; echo \"$*\") >> '%s'\n"
		"[ \"$1\" = status ] && cat '%s'\n"
		"exit 0\n", x->log, x->status) > 0);
	spew(x->fake, script, 0755);
	free(script);
	spew(x->status, "Status: active\n", 0644);
	pluginmock_set_setting(x->m, "backend",
			       strcmp(backend, "ufw") == 0 ? "\"ufw\"" :
			       "\"csf\"");
	assert_true(asprintf(&json, "[\"%s\"]", x->fake) > 0);
	pluginmock_set_setting(x->m, "ufw_argv", json);
	pluginmock_set_setting(x->m, "csf_argv", json);
	free(json);
	assert_true(asprintf(&json, "\"%s\"", x->conf) > 0);
	pluginmock_set_setting(x->m, "csf_conf", json);
	free(json);
	pluginmock_set_plugin(x->m, &ophook_plugin);
	return x;
}

static void fx_op_config(struct fx *x, const char *text)
{
	char *dir, *path;

	assert_true(asprintf(&dir, "%s/openpanel/conf",
			     pluginmock_root(x->m)) > 0);
	assert_int_equal(ophook_mkdir_p(dir, 0755), 0);
	assert_true(asprintf(&path, "%s/openpanel.config", dir) > 0);
	spew(path, text, 0644);
	free(dir);
	free(path);
}

static char *fx_calls(struct fx *x)
{
	char *s = slurp(x->log);

	return s != NULL ? s : strdup("");
}

static void fx_free(struct fx **xp)
{
	struct fx *x = *xp;

	pluginmock_free(&x->m);
	free(x->fake);
	free(x->log);
	free(x->status);
	free(x->conf);
	free(x);
	*xp = NULL;
}

/* ---- validation ---------------------------------------------------- */

static void test_ip_valid(void **state)
{
	static const char *const good[] = {
		"1.2.3.4", "10.0.0.0/8", "0.0.0.0/0", "::1", "2001:db8::/32",
		"::1/128", "192.168.1.1/32", NULL
	};
	static const char *const bad[] = {
		"1.2.3.4; rm -rf /", "$(id)", "1.2.3.4\n", "1.2.3.4 ", " 1.2.3.4",
		"1.2.3.4/33", "::1/129", "1.2.3.4/", "1.2.3.4/-1", "1.2.3.4/08",
		"1.2.3", "1.2.3.4/2a", "example.com", "", "`id`",
		"1.2.3.4/24/1",
		"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc",
		NULL
	};
	const char *why;

	(void)state;
	for (size_t i = 0; good[i] != NULL; i++) {
		why = NULL;
		assert_true(fw_ip_valid(good[i], &why));
	}
	for (size_t i = 0; bad[i] != NULL; i++) {
		why = NULL;
		assert_false(fw_ip_valid(bad[i], &why));
		assert_non_null(strstr(why, "field ip"));
	}
	assert_false(fw_ip_valid(NULL, &why));
}

static void test_reason_sanitize(void **state)
{
	char out[FW_REASON_MAX + 1];
	char longr[200];

	(void)state;
	fw_reason_sanitize("brute \"force\" 'x' `id` #c\n", out);
	assert_string_equal(out, "brute _force_ _x_ _id_ _c_");
	memset(longr, 'a', sizeof(longr) - 1);
	longr[sizeof(longr) - 1] = '\0';
	fw_reason_sanitize(longr, out);
	assert_int_equal(strlen(out), FW_REASON_MAX);
	fw_reason_sanitize(NULL, out);
	assert_string_equal(out, "none");
}

static void test_hostile_event_refused(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	char *calls;

	(void)state;
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "ip",
		"{\"ip\":\"1.2.3.4; rm -rf /\",\"reason\":\"x\"}", &err),
		-EINVAL);
	assert_non_null(strstr(err, "field ip"));
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "ip",
		"{\"ip\":\"$(id)\"}", &err), -EINVAL);
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "ip",
		"{\"reason\":\"x\"}", &err), -EINVAL);
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "ip",
		"{\"ip\":\"1.2.3.4\",\"ttl\":\"5; id\"}", &err), -EINVAL);
	assert_non_null(strstr(err, "field ttl"));
	calls = fx_calls(x);
	assert_null(strstr(calls, "deny"));
	free(calls);
	fx_free(&x);
}

static void test_no_denylist_subscription(void **state)
{
	struct fx *x = fx_new("ufw");

	(void)state;
	assert_false(pluginmock_subscribed(x->m, "user.denylist.changed"));
	assert_true(pluginmock_subscribed(x->m, "firewall.block"));
	assert_true(pluginmock_subscribed(x->m, "firewall.unblock"));
	assert_true(pluginmock_subscribed(x->m, "config.changed"));
	for (size_t i = 0; ophook_plugin.subscriptions[i] != NULL; i++) {
		assert_null(strstr(ophook_plugin.subscriptions[i], "user"));
		assert_string_not_equal(ophook_plugin.subscriptions[i], "*");
	}
	fx_free(&x);
}

static void test_backend_required(void **state)
{
	struct pluginmock *m = pluginmock_new(NULL);
	const char *err = NULL;

	(void)state;
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_non_null(strstr(err, "backend"));
	pluginmock_free(&m);
	m = pluginmock_new("{\"backend\":\"iptables\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	pluginmock_free(&m);
	m = pluginmock_new("{\"backend\":\"ufw\",\"ssh_port\":\"22;id\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_non_null(strstr(err, "ssh_port"));
	pluginmock_free(&m);
}

/* ---- wanted set -------------------------------------------------------- */

static void test_wanted_modules(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	struct fw *f;
	json_t *want = NULL;

	(void)state;
	pluginmock_set_setting(x->m, "ports", "{\"web\":\"443/tcp\",\"alt\":8080}");
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	f = pluginmock_data(x->m);

	assert_int_equal(fw_wanted(f, NULL, &want, &err), 0);
	assert_non_null(json_object_get(want, "22/tcp"));
	assert_non_null(json_object_get(want, "2083/tcp"));
	assert_non_null(json_object_get(want, "2087/tcp"));
	assert_non_null(json_object_get(want, "21/tcp"));
	assert_non_null(json_object_get(want, "40000:50000/tcp"));
	assert_non_null(json_object_get(want, "443/tcp"));
	assert_non_null(json_object_get(want, "8080/tcp"));
	assert_null(json_object_get(want, "53/udp"));
	assert_null(json_object_get(want, "25/tcp"));
	assert_int_equal(json_object_size(want), 7);
	json_decref(want);

	assert_int_equal(fw_wanted(f, "[DEFAULT]\nenabled_modules = domains,dns,ssl\n",
				   &want, &err), 0);
	assert_non_null(json_object_get(want, "53/udp"));
	assert_non_null(json_object_get(want, "53/tcp"));
	assert_null(json_object_get(want, "25/tcp"));
	json_decref(want);

	assert_int_equal(fw_wanted(f, "enabled_modules=dnsx,emails\n",
				   &want, &err), 0);
	assert_null(json_object_get(want, "53/udp"));
	for (size_t i = 0; fw_mail_ports[i] != NULL; i++) {
		char k[32];

		snprintf(k, sizeof(k), "%s/tcp", fw_mail_ports[i]);
		assert_non_null(json_object_get(want, k));
	}
	json_decref(want);
	/* only the key line counts */
	assert_int_equal(fw_wanted(f, "# enabled_modules = dns\nx = dns\n",
				   &want, &err), 0);
	assert_null(json_object_get(want, "53/udp"));
	json_decref(want);
	fx_free(&x);
}

static void test_port_valid(void **state)
{
	(void)state;
	assert_true(fw_port_valid("22"));
	assert_true(fw_port_valid("53/udp"));
	assert_true(fw_port_valid("40000:50000/tcp"));
	assert_false(fw_port_valid("0"));
	assert_false(fw_port_valid("65536"));
	assert_false(fw_port_valid("50000:40000"));
	assert_false(fw_port_valid(":22"));
	assert_false(fw_port_valid("22/icmp"));
	assert_false(fw_port_valid("22 ; id"));
	assert_false(fw_port_valid(""));
}

/* ---- ufw converge ----------------------------------------------------- */

static void test_ufw_converge(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	char *calls;

	(void)state;
	pluginmock_set_setting(x->m, "manage_ports", "\"true\"");
	fx_op_config(x, "[DEFAULT]\nenabled_modules = dns\n");
	/* ophook opened 2083 and 9999 before; the admin opened 12345 */
	spew(x->status,
	     "Status: active\n\n"
	     "To                         Action      From\n"
	     "--                         ------      ----\n"
	     "2083/tcp                   ALLOW       Anywhere                   # ophook: panel\n"
	     "9999/tcp                   ALLOW       Anywhere                   # ophook: old\n"
	     "12345/tcp                  ALLOW       Anywhere\n"
	     "Anywhere                   DENY        5.6.7.8                    # ophook: block: x\n"
	     "2083/tcp (v6)              ALLOW       Anywhere (v6)              # ophook: panel\n"
	     "9999/tcp (v6)              ALLOW       Anywhere (v6)              # ophook: old\n",
	     0644);
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	assert_true(pluginmock_action_pending(x->m, "converge"));
	pluginmock_run_actions(x->m);
	calls = fx_calls(x);
	assert_non_null(strstr(calls, "status\n"));
	assert_non_null(strstr(calls, "allow|22/tcp|comment|ophook: ssh\n"));
	assert_non_null(strstr(calls, "allow|53/udp|comment|ophook: dns\n"));
	assert_non_null(strstr(calls, "allow|53/tcp|comment|ophook: dns\n"));
	assert_non_null(strstr(calls, "allow|40000:50000/tcp|comment|ophook: ftp\n"));
	assert_null(strstr(calls, "allow|2083/tcp"));
	assert_non_null(strstr(calls, "delete|allow|9999/tcp\n"));
	assert_null(strstr(calls, "12345"));
	assert_null(strstr(calls, "5.6.7.8"));
	free(calls);
	/* config.changed asks for one coalesced converge */
	assert_int_equal(pluginmock_send(x->m, "config.changed", "openpanel",
					 NULL, &err), 0);
	assert_true(pluginmock_action_pending(x->m, "converge"));
	fx_free(&x);
}

/* ---- csf ------------------------------------------------------------- */

static void test_csf_edit_line(void **state)
{
	const char *text = "A = \"1\"\nTCP_IN = \"20,21,22\"\n# TCP_IN = \"x\"\nTCP_INX = \"5\"\nB\n";
	json_t *add = json_pack("[s,s]", "2083", "22");
	json_t *del = json_pack("[s]", "21");
	char *out = NULL;

	(void)state;
	assert_int_equal(fw_csf_edit(text, "TCP_IN", add, del, &out), 0);
	assert_string_equal(out, "A = \"1\"\nTCP_IN = \"20,22,2083\"\n# TCP_IN = \"x\"\nTCP_INX = \"5\"\nB\n");
	free(out);
	assert_int_equal(fw_csf_edit(text, "UDP_IN", add, del, &out), -ENOENT);
	json_decref(add);
	json_decref(del);
}

/* Lines of a and b that differ, as "a-line|b-line\n". */
static char *diff_lines(const char *a, const char *b)
{
	char *out = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&out, &len);

	while (*a != '\0' || *b != '\0') {
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");

		if (la != lb || memcmp(a, b, la) != 0)
			fprintf(m, "%.*s|%.*s\n", (int)la, a, (int)lb, b);
		a += la + (a[la] != '\0');
		b += lb + (b[lb] != '\0');
	}
	fclose(m);
	return out;
}

static void test_csf_converge(void **state)
{
	struct fx *x = fx_new("csf");
	const char *err = NULL;
	char *orig, *now, *d, *calls, *st;
	char fixture[4096];

	(void)state;
	pluginmock_set_setting(x->m, "manage_ports", "\"true\"");
	snprintf(fixture, sizeof(fixture), "%s/tests/integration/fixtures/csf/csf.conf",
		 getenv("top_srcdir") ? getenv("top_srcdir") : TOP_SRCDIR);
	orig = slurp(fixture);
	assert_non_null(orig);
	spew(x->conf, orig, 0600);
	fx_op_config(x, "enabled_modules = dns\n");
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	pluginmock_run_actions(x->m);
	now = slurp(x->conf);
	d = diff_lines(orig, now);
	assert_string_equal(d,
		"TCP_IN = \"20,21,22,25,53,80,110,143,443,465,587,993,995,8443\"|"
		"TCP_IN = \"20,21,22,25,53,80,110,143,443,465,587,993,995,8443,2083,2087,40000:50000\"\n"
		"TCP_OUT = \"20,21,22,25,53,80,110,113,443,587,993,995\"|"
		"TCP_OUT = \"20,21,22,25,53,80,110,113,443,587,993,995,2083,2087,40000:50000\"\n");
	free(d);
	calls = fx_calls(x);
	assert_string_equal(calls, "-r\n");
	free(calls);
	assert_true(pluginmock_own_written(x->m, x->conf));
	/* the state records only what ophook added */
	{
		char *path;

		assert_true(asprintf(&path, "%s/firewall.json",
				     pluginmock_state_dir(x->m)) > 0);
		st = slurp(path);
		free(path);
		assert_non_null(strstr(st, "2083"));
		assert_null(strstr(st, "\"8443\""));
		free(st);
	}
	fx_free(&x);
	free(now);
	free(orig);
}

static void test_csf_remove_own_only(void **state)
{
	struct fx *x = fx_new("csf");
	const char *err = NULL;
	char *now, *path;

	(void)state;
	pluginmock_set_setting(x->m, "manage_ports", "\"true\"");
	spew(x->conf, "TCP_IN = \"22,8443,2087,9999\"\nTCP_OUT = \"22\"\nX = \"1\"\n", 0600);
	assert_true(asprintf(&path, "%s/firewall.json",
			     pluginmock_state_dir(x->m)) > 0);
	/* ophook added 9999 and 2087 before; 9999 is no longer wanted */
	spew(path, "{\"csf_added\":{\"TCP_IN\":[\"9999\",\"2087\"]}}", 0600);
	free(path);
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	pluginmock_run_actions(x->m);
	now = slurp(x->conf);
	assert_string_equal(now,
		"TCP_IN = \"22,8443,2087,2083,21,40000:50000\"\n"
		"TCP_OUT = \"22,2083,2087,21,40000:50000\"\nX = \"1\"\n");
	free(now);
	fx_free(&x);
}

static void test_csf_block_argv(void **state)
{
	struct fx *x = fx_new("csf");
	const char *err = NULL;
	char *calls;

	(void)state;
	spew(x->conf, "TCP_IN = \"22\"\n", 0600);
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "1.2.3.4",
		"{\"ip\":\"1.2.3.4\",\"reason\":\"brute \\\"force\\\"\",\"ttl\":3600}",
		&err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "198.51.100.0/24",
		"{\"ip\":\"198.51.100.0/24\",\"reason\":\"spam\"}", &err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.unblock", "1.2.3.4",
		"{\"ip\":\"1.2.3.4\"}", &err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.unblock", "198.51.100.0/24",
		"{\"ip\":\"198.51.100.0/24\"}", &err), 0);
	calls = fx_calls(x);
	assert_string_equal(calls,
		"-td|1.2.3.4|3600|ophook: brute _force_\n"
		"-d|198.51.100.0/24|ophook: spam\n"
		"-tr|1.2.3.4\n"
		"-dr|198.51.100.0/24\n");
	free(calls);
	fx_free(&x);
}

static void test_ufw_block_argv(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	char *calls;

	(void)state;
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "2001:db8::1",
		"{\"ip\":\"2001:db8::1\",\"reason\":\"scan\"}", &err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.unblock", "2001:db8::1",
		"{\"ip\":\"2001:db8::1\"}", &err), 0);
	calls = fx_calls(x);
	assert_string_equal(calls,
		"insert|1|deny|from|2001:db8::1|comment|ophook: block: scan\n"
		"delete|deny|from|2001:db8::1\n");
	free(calls);
	fx_free(&x);
}

/* manage_ports off (the default): no converge at start nor on
 * config.changed; blocks still work and open no port. */
static void test_manage_ports_off(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	char *calls;

	(void)state;
	fx_op_config(x, "[DEFAULT]\nenabled_modules = dns,mail\n");
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	assert_false(pluginmock_action_pending(x->m, "converge"));
	assert_int_equal(pluginmock_send(x->m, "config.changed", "openpanel",
					 NULL, &err), 0);
	assert_false(pluginmock_action_pending(x->m, "converge"));
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "192.0.2.7",
		"{\"ip\":\"192.0.2.7\",\"reason\":\"scan\"}", &err), 0);
	pluginmock_run_actions(x->m);
	assert_int_equal(pluginmock_action_calls(x->m, "converge"), 0);
	calls = fx_calls(x);
	assert_string_equal(calls,
		"insert|1|deny|from|192.0.2.7|comment|ophook: block: scan\n");
	free(calls);
	fx_free(&x);
}

/* ---- expiry ---------------------------------------------------------- */

static void test_expiry_across_reinit(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	char *path, *st, *calls;
	const struct pluginmock_emitted *e;

	(void)state;
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "1.2.3.4",
		"{\"ip\":\"1.2.3.4\",\"reason\":\"x\",\"ttl\":600}", &err), 0);
	{
		/* the expiry thread is armed for this block's own expiry */
		struct fw *f = pluginmock_data(x->m);

		pthread_mutex_lock(&f->tlock);
		assert_true(f->due_ms >= ((int64_t)time(NULL) + 599) * 1000);
		assert_true(f->due_ms <= ((int64_t)time(NULL) + 601) * 1000);
		pthread_mutex_unlock(&f->tlock);
	}
	assert_true(asprintf(&path, "%s/firewall.json",
			     pluginmock_state_dir(x->m)) > 0);
	st = slurp(path);
	assert_non_null(strstr(st, "\"1.2.3.4\""));
	assert_non_null(strstr(st, "\"expires\""));
	free(st);
	pluginmock_fini(x->m);
	fx_free(&x);
	free(path);

	/* the "restarted" daemon finds one expired and one future block */
	x = fx_new("ufw");
	assert_true(asprintf(&path, "%s/firewall.json",
			     pluginmock_state_dir(x->m)) > 0);
	spew(path, "{\"blocks\":{"
		   "\"1.2.3.4\":{\"reason\":\"x\",\"expires\":1000},"
		   "\"5.6.7.8\":{\"reason\":\"y\",\"expires\":99999999999},"
		   "\"9.9.9.9\":{\"reason\":\"z\",\"expires\":0}}}", 0600);
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	assert_true(pluginmock_action_pending(x->m, "expire"));
	pluginmock_run_actions(x->m);
	assert_int_equal(pluginmock_emitted_count(x->m, "firewall.unblocked"), 1);
	e = pluginmock_emitted(x->m, 0);
	assert_string_equal(e->subject, "1.2.3.4");
	assert_non_null(strstr(e->fields, "\"expired\""));
	assert_non_null(strstr(e->fields, "\"1.2.3.4\""));
	calls = fx_calls(x);
	assert_non_null(strstr(calls, "delete|deny|from|1.2.3.4\n"));
	assert_null(strstr(calls, "5.6.7.8"));
	assert_null(strstr(calls, "9.9.9.9"));
	free(calls);
	st = slurp(path);
	assert_null(strstr(st, "1.2.3.4"));
	assert_non_null(strstr(st, "5.6.7.8"));
	assert_non_null(strstr(st, "9.9.9.9"));
	free(st);
	free(path);
	fx_free(&x);
}

static void test_bad_state_file(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	char *path;

	(void)state;
	assert_true(asprintf(&path, "%s/firewall.json",
			     pluginmock_state_dir(x->m)) > 0);
	spew(path, "{not json", 0600);
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	assert_int_equal(pluginmock_log_grep(x->m, "firewall.json line 1"), 1);
	free(path);
	fx_free(&x);
}

/* Settings are checked against fw_settings[]; a check-only load stops in
 * init before any work. */
static void test_settings_declared(void **state)
{
	struct pluginmock *m = pluginmock_new("{\"backend\":\"ufx\"}");
	const char *err = NULL;

	(void)state;
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.firewall.settings.backend: 'ufx' "
				 "is not one of: ufw, csf");
	pluginmock_free(&m);

	m = pluginmock_new("{\"backend\":\"ufw\",\"ports\":[\"80\"]}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_non_null(strstr(err, "ports: want a mapping"));
	pluginmock_free(&m);

	m = pluginmock_new("{\"backend\":\"csf\",\"ssh_port\":2222}");
	pluginmock_set_plugin(m, &ophook_plugin);
	pluginmock_check_only(m, true);
	assert_int_equal(pluginmock_init(m, &err), OPHOOK_SETTINGS_CHECKED);
	assert_int_equal(pluginmock_action_requests(m, NULL), 0);
	assert_null(pluginmock_data(m));
	pluginmock_free(&m);
}

/* ---- refusals and expiry (issue 16, finding 12) ---------------------- */

static struct fw_net net(const char *s)
{
	struct fw_net n;
	const char *why = NULL;

	assert_int_equal(fw_net_parse(s, &n, &why), 0);
	return n;
}

static void test_net_overlap(void **state)
{
	struct fw_net a, b;

	(void)state;
	a = net("0.0.0.0/0"), b = net("127.0.0.1");
	assert_true(fw_net_overlap(&a, &b));
	a = net("10.0.0.0/8"), b = net("10.200.1.2");
	assert_true(fw_net_overlap(&a, &b));
	assert_true(fw_net_overlap(&b, &a));
	a = net("10.0.0.0/9"), b = net("10.200.1.2");
	assert_false(fw_net_overlap(&a, &b));
	a = net("198.51.100.0/24"), b = net("198.51.100.0/23");
	assert_true(fw_net_overlap(&a, &b));
	a = net("198.51.100.0/24"), b = net("198.51.101.0/24");
	assert_false(fw_net_overlap(&a, &b));
	/* IPv4-mapped IPv6 is IPv4 */
	a = net("::ffff:127.0.0.1"), b = net("127.0.0.0/8");
	assert_int_equal(a.family, AF_INET);
	assert_int_equal(a.plen, 32);
	assert_true(fw_net_overlap(&a, &b));
	a = net("2001:db8::/32"), b = net("2001:db8:1::5");
	assert_true(fw_net_overlap(&a, &b));
	a = net("2001:db8::/33"), b = net("2001:db8:8000::5");
	assert_false(fw_net_overlap(&a, &b));
	a = net("::/0"), b = net("127.0.0.1");
	assert_false(fw_net_overlap(&a, &b)); /* families differ */
}

static void test_ttl_parse(void **state)
{
	char why[256];
	int64_t ttl = -1;

	(void)state;
	assert_int_equal(fw_ttl_parse(NULL, 100, &ttl, why, sizeof(why)), 0);
	assert_int_equal(ttl, 0);
	assert_int_equal(fw_ttl_parse("0", 100, &ttl, why, sizeof(why)), 0);
	assert_int_equal(ttl, 0);
	assert_int_equal(fw_ttl_parse("2", 100, &ttl, why, sizeof(why)), 0);
	assert_int_equal(ttl, 2);
	assert_int_equal(fw_ttl_parse("31536000", 31536000, &ttl, why,
				      sizeof(why)), 0);
	static const char *const bad[] = { "-1", "abc", "5s", "", "101",
					   "4294968", "99999999999999999999",
					   "9223372036854775807" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(fw_ttl_parse(bad[i], 100, &ttl, why,
					      sizeof(why)), -EINVAL);
		assert_non_null(strstr(why, "field ttl:"));
		assert_non_null(strstr(why, "max_ttl"));
	}
}

static void test_proc_tcp_peers(void **state)
{
	const char *v4 =
		"  sl  local_address rem_address   st tx_queue rx_queue tr "
		"tm->when retrnsmt   uid  timeout inode\n"
		"   0: 00000000:0016 00000000:0000 0A 00000000:00000000 "
		"00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
		"   1: 0100000A:0016 097100CB:D431 01 00000000:00000000 "
		"00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1\n"
		"   2: 0100000A:0050 0A7100CB:D432 01 00000000:00000000 "
		"00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1\n"
		"   3: 0100000A:0016 0B7100CB:D433 06 00000000:00000000 "
		"00:00000000 00000000     0        0 4 1 0 20 4 30 10 -1\n";
	const char *v6 =
		"  sl  local_address                         remote_address"
		"                        st\n"
		"   0: 00000000000000000000000000000000:0016 "
		"0000000000000000FFFF00000C7100CB:D434 01 0:0 0 0\n"
		"   1: 00000000000000000000000000000000:0016 "
		"B80D0120000000000000000005000000:D435 01 0:0 0 0\n";
	unsigned port = 22;
	struct fw_net *peers = NULL, want;
	size_t n = 0;

	(void)state;
	assert_int_equal(fw_proc_tcp_peers(v4, false, &port, 1, &peers, &n), 0);
	assert_int_equal(n, 1); /* established, to port 22 */
	want = net("203.0.113.9");
	assert_memory_equal(&peers[0], &want, sizeof(want));
	assert_int_equal(fw_proc_tcp_peers(v6, true, &port, 1, &peers, &n), 0);
	assert_int_equal(n, 3);
	want = net("203.0.113.12");
	assert_memory_equal(&peers[1], &want, sizeof(want));
	want = net("2001:db8::5");
	assert_memory_equal(&peers[2], &want, sizeof(want));
	free(peers);
}

/* Blocks that would cut the server off are refused with the field and the
 * reason, and never reach the backend. */
static void test_block_refusals(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	char *tcp, *calls;
	struct fw *f;

	(void)state;
	pluginmock_set_setting(x->m, "admin_networks",
			       "[\"198.51.100.0/24\", \"2001:db8:a::1\"]");
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	f = pluginmock_data(x->m);
	assert_true(asprintf(&tcp, "%s/tcp", pluginmock_tmp(x->m)) > 0);
	spew(tcp, "  sl  local_address rem_address   st\n"
		  "   1: 0100000A:0016 097100CB:D431 01 0:0 0 0\n", 0644);
	f->proc_tcp[0] = tcp;
	f->proc_tcp[1] = NULL;
	static const struct {
		const char *ip, *ttl, *why;
	} bad[] = {
		{ "0.0.0.0/0", NULL, "field ip: a /0 block is wider than "
				     "min_prefix_v4 (/24)" },
		{ "::/0", NULL, "field ip: a /0 block is wider than "
				"min_prefix_v6 (/64)" },
		{ "10.0.0.0/8", NULL, "min_prefix_v4 (/24)" },
		{ "127.0.0.1", NULL, "covers 127.0.0.0/8 (loopback)" },
		{ "::1", NULL, "covers ::1/128 (loopback)" },
		{ "::ffff:127.0.0.5", NULL, "loopback" },
		{ "198.51.100.7", NULL, "overlaps 198.51.100.0/24 "
					"(admin_networks)" },
		{ "2001:db8:a::/64", NULL, "(admin_networks)" },
		{ "203.0.113.9", NULL, "covers 203.0.113.9/32, connected to "
				       "SSH now" },
		{ "203.0.113.0/24", NULL, "connected to SSH now" },
		{ "192.0.2.1", "99999999999", "field ttl:" },
		{ "192.0.2.1", "-5", "field ttl:" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *fields = NULL;

		if (bad[i].ttl != NULL)
			assert_true(asprintf(&fields,
					     "{\"ip\":\"%s\",\"ttl\":%s}",
					     bad[i].ip, bad[i].ttl) > 0);
		else
			assert_true(asprintf(&fields, "{\"ip\":\"%s\"}",
					     bad[i].ip) > 0);
		if (pluginmock_send(x->m, "firewall.block", bad[i].ip, fields,
				    &err) != -EINVAL)
			fail_msg("%s ttl %s: not refused", bad[i].ip,
				 bad[i].ttl != NULL ? bad[i].ttl : "-");
		if (strstr(err, bad[i].why) == NULL)
			fail_msg("%s: '%s' lacks '%s'", bad[i].ip, err,
				 bad[i].why);
		assert_non_null(strstr(err, "refused"));
		free(fields);
	}
	/* the server's own addresses (loopback here at least, from
	 * getifaddrs): a neighbour of the admin network passes */
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "198.51.101.7",
		"{\"ip\":\"198.51.101.7\",\"ttl\":60}", &err), 0);
	calls = fx_calls(x);
	assert_null(strstr(calls, "0.0.0.0/0"));
	assert_null(strstr(calls, "127.0.0.1"));
	assert_null(strstr(calls, "203.0.113"));
	assert_non_null(strstr(calls, "198.51.101.7"));
	free(calls);
	free(tcp);
	fx_free(&x);
}

/* A short block made after a long one expires on its own time. */
static void test_expiry_earliest(void **state)
{
	struct fx *x = fx_new("ufw");
	const char *err = NULL;
	time_t end;
	char *calls;

	(void)state;
	assert_int_equal(pluginmock_init(x->m, &err), 0);
	pluginmock_run_actions(x->m); /* converge, first expire */
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "192.0.2.10",
		"{\"ip\":\"192.0.2.10\",\"ttl\":3600}", &err), 0);
	assert_int_equal(pluginmock_send(x->m, "firewall.block", "192.0.2.11",
		"{\"ip\":\"192.0.2.11\",\"ttl\":1}", &err), 0);
	end = time(NULL) + 10;
	while (!pluginmock_action_pending(x->m, "expire") && time(NULL) < end)
		usleep(20000);
	assert_true(pluginmock_action_pending(x->m, "expire"));
	pluginmock_run_actions(x->m);
	assert_int_equal(pluginmock_emitted_count(x->m, "firewall.unblocked"), 1);
	calls = fx_calls(x);
	assert_non_null(strstr(calls, "delete|deny|from|192.0.2.11\n"));
	assert_null(strstr(calls, "delete|deny|from|192.0.2.10\n"));
	free(calls);
	fx_free(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_valid),
		cmocka_unit_test(test_reason_sanitize),
		cmocka_unit_test(test_hostile_event_refused),
		cmocka_unit_test(test_no_denylist_subscription),
		cmocka_unit_test(test_backend_required),
		cmocka_unit_test(test_port_valid),
		cmocka_unit_test(test_wanted_modules),
		cmocka_unit_test(test_ufw_converge),
		cmocka_unit_test(test_csf_edit_line),
		cmocka_unit_test(test_csf_converge),
		cmocka_unit_test(test_csf_remove_own_only),
		cmocka_unit_test(test_csf_block_argv),
		cmocka_unit_test(test_ufw_block_argv),
		cmocka_unit_test(test_expiry_across_reinit),
		cmocka_unit_test(test_bad_state_file),
		cmocka_unit_test(test_settings_declared),
		cmocka_unit_test(test_net_overlap),
		cmocka_unit_test(test_ttl_parse),
		cmocka_unit_test(test_proc_tcp_peers),
		cmocka_unit_test(test_block_refusals),
		cmocka_unit_test(test_expiry_earliest),
		cmocka_unit_test(test_manage_ports_off),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
