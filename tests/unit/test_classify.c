/* Unit tests for the classifier: paths (including hostile names), every
 * content parser, and the events of each lifecycle. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "classify.h"

#include "test_classify_certs.inc"

#define ROOT "/etc/openpanel"

static enum classify_kind kind_of(const char *path, struct classify_target *t,
				  const char **why)
{
	return classify_path(ROOT, path, t, why);
}

/* Classify content against old facts (JSON text or NULL). */
static void run(const char *path, const char *content, const char *aux,
		bool existed, const char *old_facts, struct classify_result *r)
{
	struct classify_target t;
	const char *why;
	json_t *old = old_facts ? json_loads(old_facts, 0, NULL) : NULL;
	struct classify_input in = {
		.path = path,
		.content = content,
		.len = content ? strlen(content) : 0,
		.aux = aux,
		.aux_len = aux ? strlen(aux) : 0,
		.existed = existed,
		.old_facts = old,
	};

	memset(r, 0, sizeof(*r));
	assert_int_not_equal(kind_of(path, &t, &why), CLASSIFY_NONE);
	classify_content(&t, &in, r);
	json_decref(old);
}

static const char *ev_type(const struct classify_result *r, size_t i)
{
	assert_true(i < r->n_events);
	return r->events[i].type;
}

static const char *ev_str(const struct classify_result *r, size_t i,
			  const char *key)
{
	return json_string_value(json_object_get(r->events[i].payload, key));
}

static char *facts_text(const struct classify_result *r)
{
	return r->facts ? json_dumps(r->facts, JSON_COMPACT | JSON_SORT_KEYS)
			: NULL;
}

static void test_paths(void **state)
{
	struct classify_target t;
	const char *why;

	(void)state;
	assert_int_equal(kind_of(ROOT "/caddy/domains/example.com.conf", &t,
				 &why), CLASSIFY_DOMAIN_CONF);
	assert_string_equal(t.name, "example.com");
	assert_int_equal(kind_of(ROOT "/caddy/ssl/certificates/"
				 "acme-v02.api.letsencrypt.org-directory/"
				 "example.com/example.com.json", &t, &why),
			 CLASSIFY_CERT_JSON);
	assert_string_equal(t.issuer, "acme-v02.api.letsencrypt.org-directory");
	assert_int_equal(kind_of(ROOT "/caddy/ssl/local/example.com/"
				 "example.com.json", &t, &why),
			 CLASSIFY_CERT_JSON);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/local/example.com/"
				 "example.com.crt", &t, &why), CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/local/example.com/"
				 "other.com.json", &t, &why), CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/example.com/"
				 "fullchain.pem", &t, &why),
			 CLASSIFY_CUSTOM_CERT);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/example.com/key.pem",
				 &t, &why), CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/openpanel/core/users/bob", &t, &why),
			 CLASSIFY_USER_DIR);
	assert_string_equal(t.name, "bob");
	assert_int_equal(kind_of(ROOT "/openpanel/core/users/bob/x", &t, &why),
			 CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/deny/bob.ips", &t, &why),
			 CLASSIFY_DENYLIST);
	assert_int_equal(kind_of(ROOT "/openpanel/conf/openpanel.config", &t,
				 &why), CLASSIFY_PANEL_CONFIG);
	assert_int_equal(kind_of("/etc/bind/zones/example.com.zone", &t, &why),
			 CLASSIFY_ZONE);
	assert_string_equal(t.name, "example.com");
	assert_int_equal(kind_of("/etc/bind/named.conf.local", &t, &why),
			 CLASSIFY_NAMED_CONF);
	assert_int_equal(kind_of("/usr/local/mail/openmail/docker-data/dms/"
				 "config/postfix-accounts.cf", &t, &why),
			 CLASSIFY_MAIL_ACCOUNTS);
	assert_int_equal(kind_of("/x/postfix-virtual.cf", &t, &why),
			 CLASSIFY_MAIL_VIRTUAL);
	/* unrelated */
	assert_int_equal(kind_of(ROOT "/caddy/Caddyfile", &t, &why),
			 CLASSIFY_NONE);
	assert_null(why);
	assert_int_equal(kind_of(ROOT "/caddy/domains/sub/x.com.conf", &t,
				 &why), CLASSIFY_NONE);
	assert_int_equal(kind_of("/etc/openpanelx/caddy/domains/x.com.conf",
				 &t, &why), CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/domains/../domains/x.com.conf",
				 &t, &why), CLASSIFY_NONE);
}

static void test_hostile_names(void **state)
{
	static const char *const bad[] = {
		"a;b.com", "$(reboot).com", "a b.com", "a\nb.com", "`id`.com",
		"-a.com", "a-.com", "localhost", "a..com", "a.com.", "*.a.com",
		"xn--\xc3\xa9.com", "a/b.com",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		".com",
	};
	struct classify_target t;
	const char *why;
	char path[512];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(path, sizeof(path), ROOT "/caddy/domains/%s.conf",
			 bad[i]);
		assert_int_equal(kind_of(path, &t, &why), CLASSIFY_NONE);
		if (strchr(bad[i], '/') == NULL)
			assert_non_null(why);
		snprintf(path, sizeof(path), "/etc/bind/zones/%s.zone", bad[i]);
		assert_int_equal(kind_of(path, &t, &why), CLASSIFY_NONE);
	}
	/* a 300-byte name does not overflow */
	char big[400];
	memset(big, 'a', sizeof(big));
	memcpy(big, ROOT "/caddy/domains/", strlen(ROOT "/caddy/domains/"));
	strcpy(big + 380, ".com.conf");
	assert_int_equal(kind_of(big, &t, &why), CLASSIFY_NONE);
	assert_non_null(why);
	/* hostile user names */
	assert_int_equal(kind_of(ROOT "/openpanel/core/users/..", &t, &why),
			 CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/deny/Bob;x.ips", &t, &why),
			 CLASSIFY_NONE);
	assert_non_null(why);
}

static void test_ignored(void **state)
{
	(void)state;
	assert_true(classify_ignored_name("sedAb12Cd"));
	assert_true(classify_ignored_name("x.com.conf.swp"));
	assert_true(classify_ignored_name(".x.com.conf.swp"));
	assert_true(classify_ignored_name("x.com.conf~"));
	assert_true(classify_ignored_name(".#x.com.conf"));
	assert_true(classify_ignored_name("4913"));
	assert_true(classify_ignored_name("x.com.crt.tmp"));
	assert_true(classify_ignored_name("x.com.crt.tmp123"));
	assert_true(classify_ignored_name(".x.com.crt123456"));
	assert_false(classify_ignored_name("x.com.conf"));
	assert_false(classify_ignored_name("sedan.com.conf"));
	assert_false(classify_ignored_name("tmpfoo.com.conf"));
}

static const char conf_live[] =
	"example.com, www.example.com {\n"
	"    reverse_proxy http://127.0.0.1:8080\n"
	"}\n";
/* The real templates' shape (caddy/templates/suspended_user.conf and
 * suspended.conf in OpenPanel 2.x): a route serving the notice, then an
 * `# auto ssl` comment above the tls block.  domains-suspend --comment=X
 * puts `# comment: X` on the first line. */
static const char conf_susp_user[] =
	"example.com, *.example.com {\n"
	"\n"
	"  route {\n"
	"    root * /etc/openpanel/caddy/templates/\n"
	"    rewrite * /suspended_user.html\n"
	"    file_server\n"
	"  }\n"
	"\n"
	"  # auto ssl\n"
	"  tls {\n"
	"    on_demand\n"
	"  }\n"
	"}\n";
static const char conf_susp_domain[] =
	"# comment: unpaid invoice #42\n"
	"example.com, *.example.com {\n"
	"\n"
	"  route {\n"
	"    root * /etc/openpanel/caddy/templates/\n"
	"    rewrite * /suspended_domain.html\n"
	"    file_server\n"
	"  }\n"
	"\n"
	"  # auto ssl\n"
	"  tls {\n"
	"    on_demand\n"
	"  }\n"
	"}\n";

#define CONF ROOT "/caddy/domains/example.com.conf"

static void test_domain_lifecycle(void **state)
{
	struct classify_result r;
	char *f;

	(void)state;
	run(CONF, conf_live, NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "domain.added");
	assert_string_equal(r.events[0].subject, "example.com");
	assert_string_equal(ev_str(&r, 0, "domain"), "example.com");
	assert_string_equal(ev_str(&r, 0, "path"), CONF);
	assert_null(r.facts);
	classify_result_clear(&r);

	run(CONF, conf_live, NULL, true, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "domain.updated");
	classify_result_clear(&r);

	run(CONF, conf_susp_user, NULL, true, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "domain.suspended");
	assert_string_equal(ev_str(&r, 0, "reason"), "user");
	/* the template's `# auto ssl` is no reason */
	assert_null(ev_str(&r, 0, "comment"));
	f = facts_text(&r);
	classify_result_clear(&r);

	run(CONF, conf_susp_user, NULL, true, f, &r);
	assert_string_equal(ev_type(&r, 0), "domain.updated");
	classify_result_clear(&r);

	run(CONF, conf_live, NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "domain.unsuspended");
	assert_string_equal(ev_str(&r, 0, "reason"), "user");
	assert_null(r.facts);
	classify_result_clear(&r);
	free(f);

	run(CONF, conf_susp_domain, NULL, true, NULL, &r);
	assert_string_equal(ev_type(&r, 0), "domain.suspended");
	assert_string_equal(ev_str(&r, 0, "reason"), "domain");
	assert_string_equal(ev_str(&r, 0, "comment"), "unpaid invoice #42");
	classify_result_clear(&r);

	run(CONF, NULL, NULL, true, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "domain.removed");
	classify_result_clear(&r);

	run(CONF, NULL, NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
}

/* OpenPanel 2.x's domain template shape: a Coraza block with
 * SecRuleEngine in each site, a reverse_proxy whose transport has
 * tls_insecure_skip_verify, then `tls { on_demand }`; domains-ssl custom
 * replaces the tls block with one `tls <cert> <key>` line. */
#define CONF_MODES(waf, tls)                                                 \
	"https://example.com, https://www.example.com {\n"                   \
	"  route {\n"                                                        \
	"    coraza_waf {\n"                                                 \
	"        load_owasp_crs\n"                                           \
	"        directives `\n"                                             \
	"            SecRuleEngine " waf "\n"                                \
	"            SecAuditEngine RelevantOnly\n"                          \
	"        `\n"                                                        \
	"    }\n"                                                            \
	"    reverse_proxy https://127.0.0.1:32775 {\n"                      \
	"      transport http {\n"                                           \
	"        tls_insecure_skip_verify\n"                                 \
	"      }\n"                                                          \
	"    }\n"                                                            \
	"  }\n"                                                              \
	"  # certificate\n" tls "}\n"
#define TLS_AUTO "  tls {\n    on_demand\n  }\n"
#define TLS_CUSTOM                                                           \
	"tls /data/caddy/certificates/custom/example.com/fullchain.pem "     \
	"/data/caddy/certificates/custom/example.com/key.pem\n"

static void test_conf_modes(void **state)
{
	struct classify_result r;
	const char *ssl, *waf;
	char *f, *f2;

	(void)state;
	classify_conf_modes(conf_live, strlen(conf_live), &ssl, &waf);
	assert_null(ssl);
	assert_null(waf);
	classify_conf_modes(conf_susp_user, strlen(conf_susp_user), &ssl,
			    &waf);
	assert_string_equal(ssl, "auto");
	assert_null(waf);
	const char *in = "x {\n  tls internal\n}\n";
	classify_conf_modes(in, strlen(in), &ssl, &waf);
	assert_string_equal(ssl, "internal");
	in = "x {\n  tls {\n    issuer internal\n  }\n"
	     "  # SecRuleEngine On\n  SecRuleEngine DetectionOnly\n}\n";
	classify_conf_modes(in, strlen(in), &ssl, &waf);
	assert_string_equal(ssl, "internal");
	assert_string_equal(waf, "detection_only");

	/* domains-add: the template (WAF off, auto SSL) */
	run(CONF, CONF_MODES("Off", TLS_AUTO), NULL, false, NULL, &r);
	assert_string_equal(ev_type(&r, 0), "domain.added");
	assert_string_equal(ev_str(&r, 0, "ssl"), "auto");
	assert_string_equal(ev_str(&r, 0, "waf"), "off");
	f = facts_text(&r);
	assert_string_equal(f, "{\"ssl\":\"auto\",\"waf\":\"off\"}");
	classify_result_clear(&r);
	/* domains-ssl custom: ssl custom, was auto; the WAF unchanged */
	run(CONF, CONF_MODES("Off", TLS_CUSTOM), NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "domain.updated");
	assert_string_equal(ev_str(&r, 0, "ssl"), "custom");
	assert_string_equal(ev_str(&r, 0, "old_ssl"), "auto");
	assert_string_equal(ev_str(&r, 0, "waf"), "off");
	assert_null(ev_str(&r, 0, "old_waf")); /* and no waf_changed */
	f2 = facts_text(&r);
	classify_result_clear(&r);
	free(f);
	/* the Go panel's WAF switch: domain.updated, and domain.waf_changed
	 * on its own */
	run(CONF, CONF_MODES("On", TLS_CUSTOM), NULL, true, f2, &r);
	assert_int_equal(r.n_events, 2);
	assert_string_equal(ev_type(&r, 0), "domain.updated");
	assert_string_equal(ev_str(&r, 0, "waf"), "on");
	assert_string_equal(ev_str(&r, 0, "old_waf"), "off");
	assert_null(ev_str(&r, 0, "old_ssl"));
	assert_string_equal(ev_type(&r, 1), "domain.waf_changed");
	assert_string_equal(r.events[1].subject, "example.com");
	assert_string_equal(ev_str(&r, 1, "domain"), "example.com");
	assert_string_equal(ev_str(&r, 1, "waf"), "on");
	assert_string_equal(ev_str(&r, 1, "old_waf"), "off");
	f = facts_text(&r);
	classify_result_clear(&r);
	free(f2);
	/* suspended: the template has auto SSL and no WAF (no
	 * waf_changed: a suspension, not a switch) */
	run(CONF, conf_susp_user, NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "domain.suspended");
	assert_string_equal(ev_str(&r, 0, "ssl"), "auto");
	assert_string_equal(ev_str(&r, 0, "old_ssl"), "custom");
	assert_string_equal(ev_str(&r, 0, "old_waf"), "on");
	f2 = facts_text(&r);
	assert_non_null(strstr(f2, "\"suspended\":true"));
	classify_result_clear(&r);
	free(f);
	run(CONF, CONF_MODES("Off", TLS_AUTO), NULL, true, f2, &r);
	assert_string_equal(ev_type(&r, 0), "domain.unsuspended");
	assert_string_equal(ev_str(&r, 0, "waf"), "off");
	assert_null(ev_str(&r, 0, "old_ssl"));
	classify_result_clear(&r);
	free(f2);
}

static void test_suspended_parser(void **state)
{
	const char *reason;
	char *comment;

	(void)state;
	/* a page name only in a comment, or with reverse_proxy active */
	const char *c1 = "# suspended_user.html\nx {\n file_server\n"
			 " reverse_proxy a\n}\n";
	assert_false(classify_conf_suspended(c1, strlen(c1), &reason,
					     &comment));
	assert_null(comment);
	const char *c2 = "x {\n rewrite * /suspended_user.html\n}\n";
	assert_false(classify_conf_suspended(c2, strlen(c2), &reason,
					     &comment));
	/* binary garbage */
	const char c3[] = "\xff\xfe\x00suspended_user.html file_server\r\n#\x01\xff";
	assert_true(classify_conf_suspended(c3, sizeof(c3) - 1, &reason,
					    &comment));
	assert_string_equal(reason, "user");
	free(comment);
}

#define CERTJSON ROOT "/caddy/ssl/certificates/local/a.example.com/a.example.com.json"

static void test_cert(void **state)
{
	struct classify_result r;
	struct classify_cert c;
	const char *why;
	char *f;

	(void)state;
	assert_int_equal(classify_cert_parse(cert1_pem, strlen(cert1_pem), &c,
					     &why), 0);
	assert_string_equal(c.serial, "1235");
	assert_string_equal(c.not_after, CERT1_NOT_AFTER);
	assert_int_equal(json_array_size(c.names), 3);
	assert_string_equal(json_string_value(json_array_get(c.names, 0)),
			    "a.example.com");
	assert_string_equal(json_string_value(json_array_get(c.names, 2)),
			    "127.0.0.1");
	json_decref(c.names);
	assert_int_equal(classify_cert_parse("garbage", 7, &c, &why), -EINVAL);

	run(CERTJSON, "{}", cert1_pem, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.issued");
	assert_string_equal(ev_str(&r, 0, "serial"), "1235");
	assert_string_equal(ev_str(&r, 0, "issuer"), "local");
	assert_string_equal(ev_str(&r, 0, "path"),
			    ROOT "/caddy/ssl/certificates/local/a.example.com/"
				 "a.example.com.crt");
	f = facts_text(&r);
	classify_result_clear(&r);

	run(CERTJSON, "{\"x\":1}", cert1_pem, true, f, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);

	run(CERTJSON, "{}", cert2_pem, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.renewed");
	assert_string_equal(ev_str(&r, 0, "serial"), "1236");
	assert_string_equal(ev_str(&r, 0, "old_serial"), "1235");
	classify_result_clear(&r);

	/* .crt malformed (half written): a warning, old facts kept */
	run(CERTJSON, "{}", "-----BEGIN CERTIFICATE-----\nAAAA\n", true, f, &r);
	assert_int_equal(r.n_events, 0);
	assert_int_equal(r.n_warnings, 1);
	classify_result_clear(&r);
	free(f);

	run(ROOT "/caddy/ssl/custom/a.example.com/fullchain.pem", cert2_pem,
	    NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.installed");
	assert_string_equal(ev_str(&r, 0, "serial"), "1236");
	f = facts_text(&r);
	classify_result_clear(&r);
	run(ROOT "/caddy/ssl/custom/a.example.com/fullchain.pem", cert2_pem,
	    NULL, true, f, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
	free(f);
}

static void test_user_dir(void **state)
{
	struct classify_result r;

	(void)state;
	run(ROOT "/openpanel/core/users/bob", "", NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "user.added");
	assert_string_equal(r.events[0].subject, "user:bob");
	assert_string_equal(ev_str(&r, 0, "user"), "bob");
	classify_result_clear(&r);
	run(ROOT "/openpanel/core/users/bob", NULL, NULL, true, NULL, &r);
	assert_string_equal(ev_type(&r, 0), "user.removed");
	classify_result_clear(&r);
	run(ROOT "/openpanel/core/users/bob", "", NULL, true, NULL, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
}

static void test_denylist(void **state)
{
	struct classify_result r;
	char *f, *s;
	const char *d1 = "@blocked {\n    remote_ip 1.2.3.4 10.0.0.0/8\n}\n"
			 "respond @blocked 403\n";
	const char *d2 = "@blocked {\n    remote_ip 10.0.0.0/8 2001:db8::1 "
			 "not-an-ip 1.2.3.4/99 $(id)\n}\nrespond @blocked 403\n";

	(void)state;
	run(ROOT "/caddy/deny/bob.ips", d1, NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "user.denylist.changed");
	assert_string_equal(r.events[0].subject, "user:bob");
	s = json_dumps(json_object_get(r.events[0].payload, "added"),
		       JSON_COMPACT);
	assert_string_equal(s, "[\"1.2.3.4\",\"10.0.0.0/8\"]");
	free(s);
	f = facts_text(&r);
	classify_result_clear(&r);

	run(ROOT "/caddy/deny/bob.ips", d2, NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_int_equal(r.n_warnings, 3);
	s = json_dumps(r.events[0].payload, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(strstr(s, "\"added\":[\"2001:db8::1\"]"));
	assert_non_null(strstr(s, "\"removed\":[\"1.2.3.4\"]"));
	free(s);
	classify_result_clear(&r);

	run(ROOT "/caddy/deny/bob.ips", d1, NULL, true, f, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
	run(ROOT "/caddy/deny/bob.ips", NULL, NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_int_equal(json_array_size(json_object_get(r.events[0].payload,
							 "removed")), 2);
	classify_result_clear(&r);
	free(f);
}

static void test_ini(void **state)
{
	struct classify_result r;
	char *f, *s;
	const char *c1 = "# comment\nns1 = ns1.a.com\n[DEFAULT]\nmail=x\n"
			 "[STATS]\ngoaccess = yes\nbroken line\n[bad\n";
	const char *c2 = "ns1 = ns9.a.com\n[DEFAULT]\nmail=x\n[STATS]\n"
			 "enabled_modules=a,b\n";

	(void)state;
	run(ROOT "/openpanel/conf/openpanel.config", c1, NULL, false, NULL, &r);
	assert_int_equal(r.n_warnings, 2);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "config.changed");
	assert_string_equal(r.events[0].subject, "config");
	f = facts_text(&r);
	classify_result_clear(&r);
	run(ROOT "/openpanel/conf/openpanel.config", c2, NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	s = json_dumps(json_object_get(r.events[0].payload, "changes"),
		       JSON_COMPACT);
	assert_string_equal(s,
		"[{\"key\":\"STATS.enabled_modules\",\"old\":null,\"new\":\"a,b\"},"
		"{\"key\":\"STATS.goaccess\",\"old\":\"yes\",\"new\":null},"
		"{\"key\":\"ns1\",\"old\":\"ns1.a.com\",\"new\":\"ns9.a.com\"}]");
	free(s);
	classify_result_clear(&r);
	free(f);
}

static const char zone1[] =
	"$TTL 1h\n"
	"@ IN SOA ns1.a.com. hostmaster.a.com. ( ; comment\n"
	"   2026112801 ; serial\n"
	"   3600 600 1209600 3600 )\n"
	"@ IN NS ns1.a.com.\n";

static void test_zone(void **state)
{
	struct classify_result r;
	char *f;

	(void)state;
	assert_int_equal(classify_zone_serial(zone1, strlen(zone1)),
			 2026112801);
	assert_int_equal(classify_zone_serial("@ SOA a b 12", 12), 12);
	assert_int_equal(classify_zone_serial("@ SOA a b x", 11), -1);
	assert_int_equal(classify_zone_serial("nothing", 7), -1);
	assert_int_equal(classify_zone_serial("@ SOA a", 7), -1);

	run("/etc/bind/zones/a.com.zone", zone1, NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "dns.zone.changed");
	assert_string_equal(r.events[0].subject, "a.com");
	assert_int_equal(json_integer_value(json_object_get(
				 r.events[0].payload, "serial")), 2026112801);
	f = facts_text(&r);
	classify_result_clear(&r);
	run("/etc/bind/zones/a.com.zone", "garbage", NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_int_equal(r.n_warnings, 1);
	assert_int_equal(json_integer_value(json_object_get(
				 r.events[0].payload, "old_serial")), 2026112801);
	classify_result_clear(&r);
	free(f);
}

static void test_named(void **state)
{
	struct classify_result r;
	char *f;
	const char *n1 = "zone \"a.com\" IN { type master; file \"/etc/bind/zones/a.com.zone\"; };\n"
			 "zone \"b.com\" IN { type master; };\n";
	const char *n2 = "zone \"b.com\" IN { type master; };\n"
			 "zone \"c.com\" IN { type master; };\n"
			 "zone \"$(x).com\" IN { };\nzone \"unterminated\n";

	(void)state;
	run("/etc/bind/named.conf.local", n1, NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 2);
	f = facts_text(&r);
	classify_result_clear(&r);
	run("/etc/bind/named.conf.local", n2, NULL, true, f, &r);
	assert_int_equal(r.n_events, 2);
	assert_int_equal(r.n_warnings, 2);
	assert_string_equal(r.events[0].subject, "c.com");
	assert_string_equal(ev_str(&r, 0, "change"), "added");
	assert_string_equal(r.events[1].subject, "a.com");
	assert_string_equal(ev_str(&r, 1, "change"), "removed");
	classify_result_clear(&r);
	run("/etc/bind/named.conf.local", "// x\n", NULL, true, "{\"zones\":{}}", &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "dns.config.changed");
	classify_result_clear(&r);
	free(f);
}

/* The folder, the .json or the .crt deleted: cert.removed with what the
 * snapshot knew; a .json without .crt never seen with one: a warning. */
static void test_cert_removed(void **state)
{
	struct classify_result r;
	char *f, *f2;

	(void)state;
	run(CERTJSON, "{}", cert1_pem, false, NULL, &r);
	f = facts_text(&r);
	classify_result_clear(&r);

	/* folder (or .json) deleted */
	run(CERTJSON, NULL, NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.removed");
	assert_string_equal(r.events[0].subject, "a.example.com");
	assert_string_equal(ev_str(&r, 0, "domain"), "a.example.com");
	assert_string_equal(ev_str(&r, 0, "serial"), "1235");
	assert_string_equal(ev_str(&r, 0, "issuer"), "local");
	assert_string_equal(ev_str(&r, 0, "path"),
			    ROOT "/caddy/ssl/certificates/local/a.example.com/"
				 "a.example.com.crt");
	assert_int_equal(json_array_size(json_object_get(
				 r.events[0].payload, "names")), 3);
	assert_null(r.facts);
	classify_result_clear(&r);

	/* .crt deleted, .json left: removed once; facts without a serial */
	run(CERTJSON, "{}", NULL, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.removed");
	assert_int_equal(r.n_warnings, 0);
	f2 = facts_text(&r);
	assert_string_equal(f2, "{}");
	classify_result_clear(&r);
	run(CERTJSON, NULL, NULL, true, f2, &r); /* then the folder */
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
	run(CERTJSON, "{}", cert2_pem, true, f2, &r); /* a new .crt */
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.issued");
	classify_result_clear(&r);
	free(f2);
	free(f);

	/* a .json never seen with a .crt: a warning, no event */
	run(CERTJSON, "{}", NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 0);
	assert_int_equal(r.n_warnings, 1);
	classify_result_clear(&r);
	run(CERTJSON, NULL, NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);

	/* custom certificate removed */
	run(ROOT "/caddy/ssl/custom/a.example.com/fullchain.pem", cert2_pem,
	    NULL, false, NULL, &r);
	f = facts_text(&r);
	classify_result_clear(&r);
	run(ROOT "/caddy/ssl/custom/a.example.com/fullchain.pem", NULL, NULL,
	    true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.removed");
	assert_string_equal(ev_str(&r, 0, "issuer"), "custom");
	assert_string_equal(ev_str(&r, 0, "serial"), "1236");
	classify_result_clear(&r);
	free(f);
}

#define WILDJSON ROOT "/caddy/ssl/certificates/local/wildcard_.example.com/" \
		      "wildcard_.example.com.json"

static void test_cert_wildcard(void **state)
{
	struct classify_target t;
	struct classify_result r;
	const char *why;
	char *f, *aux;

	(void)state;
	assert_int_equal(kind_of(WILDJSON, &t, &why), CLASSIFY_CERT_JSON);
	assert_string_equal(t.name, "*.example.com");
	assert_true(t.wildcard);
	aux = classify_aux_path(&t, WILDJSON);
	assert_string_equal(aux, ROOT "/caddy/ssl/certificates/local/"
				       "wildcard_.example.com/"
				       "wildcard_.example.com.crt");
	free(aux);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/acme/wildcard_.example.com/"
				      "wildcard_.example.com.json", &t, &why),
			 CLASSIFY_CERT_JSON);
	assert_string_equal(t.name, "*.example.com");
	/* only the one prefix; the rest must be a valid domain */
	assert_int_equal(kind_of(ROOT "/caddy/ssl/acme/wildcard_.bad..com/"
				      "wildcard_.bad..com.json", &t, &why),
			 CLASSIFY_NONE);
	assert_non_null(why);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/acme/wildcard_./"
				      "wildcard_..json", &t, &why),
			 CLASSIFY_NONE);

	run(WILDJSON, "{}", cert1_pem, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.issued");
	assert_string_equal(r.events[0].subject, "*.example.com");
	assert_string_equal(ev_str(&r, 0, "domain"), "example.com");
	assert_true(json_is_true(json_object_get(r.events[0].payload,
						 "wildcard")));
	assert_int_equal(json_array_size(json_object_get(
				 r.events[0].payload, "names")), 3);
	f = facts_text(&r);
	classify_result_clear(&r);
	run(WILDJSON, "{}", cert2_pem, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cert.renewed");
	assert_string_equal(r.events[0].subject, "*.example.com");
	assert_string_equal(ev_str(&r, 0, "old_serial"), "1235");
	classify_result_clear(&r);
	free(f);
}

static void test_quotas(void **state)
{
	struct classify_result r;
	struct classify_target t;
	const char *why;
	char *f;

	(void)state;
	assert_int_equal(kind_of("/dms/config/dovecot-quotas.cf", &t, &why),
			 CLASSIFY_MAIL_QUOTAS);
	run("/dms/config/dovecot-quotas.cf",
	    "a@x.com:1G\n# c\nB@y.com:500M\nnocolon\nc@x.com:\n"
	    "bad@$(id).com:1G\n", NULL, false, NULL, &r);
	assert_int_equal(r.n_warnings, 3);
	assert_int_equal(r.n_events, 2);
	assert_string_equal(ev_type(&r, 0), "mail.quota.changed");
	assert_string_equal(ev_str(&r, 0, "address"), "a@x.com");
	assert_string_equal(r.events[0].subject, "x.com");
	assert_string_equal(ev_str(&r, 0, "quota"), "1G");
	assert_true(json_is_null(json_object_get(r.events[0].payload,
						 "old_quota")));
	assert_string_equal(ev_str(&r, 1, "address"), "b@y.com");
	f = facts_text(&r);
	classify_result_clear(&r);

	/* a@ changed, b@ unset, d@ set; same content again: nothing */
	run("/dms/config/dovecot-quotas.cf", "a@x.com:2G\nd@x.com:10M\n", NULL,
	    true, f, &r);
	assert_int_equal(r.n_events, 3);
	assert_string_equal(ev_str(&r, 0, "address"), "d@x.com");
	assert_string_equal(ev_str(&r, 0, "quota"), "10M");
	assert_string_equal(ev_str(&r, 1, "address"), "b@y.com");
	assert_true(json_is_null(json_object_get(r.events[1].payload,
						 "quota")));
	assert_string_equal(ev_str(&r, 1, "old_quota"), "500M");
	assert_string_equal(ev_str(&r, 2, "address"), "a@x.com");
	assert_string_equal(ev_str(&r, 2, "quota"), "2G");
	assert_string_equal(ev_str(&r, 2, "old_quota"), "1G");
	free(f);
	f = facts_text(&r);
	classify_result_clear(&r);
	run("/dms/config/dovecot-quotas.cf", "d@x.com:10M\na@x.com:2G\n", NULL,
	    true, f, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);

	/* the file deleted: every quota unset */
	run("/dms/config/dovecot-quotas.cf", NULL, NULL, true, f, &r);
	assert_int_equal(r.n_events, 2);
	assert_null(r.facts);
	classify_result_clear(&r);
	free(f);
}

static void test_mail(void **state)
{
	struct classify_result r;
	char *f, *s;
	const char *a1 = "a@x.com|{SHA512-CRYPT}$6$salt$HASHONE\n"
			 "b@y.com|{SHA512-CRYPT}$6$salt$HASHTWO|5000\n";
	const char *a2 = "A@x.com|{SHA512-CRYPT}$6$salt$HASHNEW\n"
			 "c@y.com|{SHA512-CRYPT}$6$salt$HASH3\n"
			 "nobar\nbad@$(id).com|{x}y\n";

	(void)state;
	run("/dms/config/postfix-accounts.cf", a1, NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 2);
	assert_string_equal(ev_type(&r, 0), "mail.account.added");
	assert_string_equal(r.events[0].subject, "x.com");
	assert_string_equal(ev_str(&r, 0, "address"), "a@x.com");
	f = facts_text(&r);
	assert_null(strstr(f, "HASH"));
	classify_result_clear(&r);
	run("/dms/config/postfix-accounts.cf", a2, NULL, true, f, &r);
	assert_int_equal(r.n_warnings, 2);
	assert_int_equal(r.n_events, 3);
	assert_string_equal(ev_type(&r, 0), "mail.account.added");
	assert_string_equal(ev_str(&r, 0, "address"), "c@y.com");
	assert_string_equal(ev_type(&r, 1), "mail.account.removed");
	assert_string_equal(ev_str(&r, 1, "address"), "b@y.com");
	assert_string_equal(ev_type(&r, 2), "mail.account.changed");
	for (size_t i = 0; i < r.n_events; i++) {
		s = json_dumps(r.events[i].payload, JSON_COMPACT);
		assert_null(strstr(s, "HASH"));
		assert_null(strstr(s, "SHA512"));
		free(s);
	}
	classify_result_clear(&r);
	free(f);

	run("/dms/config/postfix-virtual.cf",
	    "info@x.com a@x.com,b@x.com\n# c\n@y.com  all@y.com\nlonely@x.com\n",
	    NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 2);
	assert_int_equal(r.n_warnings, 1);
	f = facts_text(&r);
	classify_result_clear(&r);
	run("/dms/config/postfix-virtual.cf", "info@x.com a@x.com\n", NULL, true,
	    f, &r);
	assert_int_equal(r.n_events, 2);
	assert_string_equal(ev_type(&r, 0), "mail.alias.removed");
	assert_string_equal(ev_str(&r, 0, "alias"), "@y.com");
	assert_string_equal(ev_type(&r, 1), "mail.alias.changed");
	assert_string_equal(ev_str(&r, 1, "targets"), "a@x.com");
	assert_string_equal(ev_str(&r, 1, "old_targets"), "a@x.com,b@x.com");
	classify_result_clear(&r);
	free(f);
}

static void test_garbage_everywhere(void **state)
{
	static const char *const paths[] = {
		CONF, CERTJSON, ROOT "/caddy/ssl/custom/a.com/fullchain.pem",
		ROOT "/openpanel/core/users/bob", ROOT "/caddy/deny/bob.ips",
		ROOT "/openpanel/conf/openpanel.config",
		"/etc/bind/zones/a.com.zone", "/etc/bind/named.conf.local",
		"/c/postfix-accounts.cf", "/c/postfix-virtual.cf",
	};
	char junk[2048];
	unsigned seed = 42;

	(void)state;
	for (int round = 0; round < 200; round++) {
		for (size_t i = 0; i < sizeof(junk) - 1; i++) {
			seed = seed * 1103515245 + 12345;
			junk[i] = (char)((seed >> 16) & 0xff);
			if (junk[i] == 0)
				junk[i] = '\n';
		}
		junk[sizeof(junk) - 1] = '\0';
		for (size_t p = 0; p < sizeof(paths) / sizeof(paths[0]); p++) {
			struct classify_result r;

			run(paths[p], junk, junk, round & 1, "{\"x\":[1]}", &r);
			for (size_t e = 0; e < r.n_events; e++)
				assert_non_null(r.events[e].payload);
			classify_result_clear(&r);
		}
	}
}

/* Only `# comment: X` is a suspension comment; other comments are not. */
static void test_suspend_comment(void **state)
{
	const char *reason;
	char *comment;
	static const char page[] =
		"x {\n route {\n  rewrite * /suspended_domain.html\n"
		"  file_server\n }\n # auto ssl\n tls {\n  on_demand\n }\n}\n";
	char buf[512];

	(void)state;
	assert_true(classify_conf_suspended(page, strlen(page), &reason,
					    &comment));
	assert_null(comment);
	snprintf(buf, sizeof(buf), "# comment: late payment  \r\n%s", page);
	assert_true(classify_conf_suspended(buf, strlen(buf), &reason,
					    &comment));
	assert_string_equal(comment, "late payment");
	free(comment);
	/* empty comment: none */
	snprintf(buf, sizeof(buf), "# comment:   \n%s", page);
	assert_true(classify_conf_suspended(buf, strlen(buf), &reason,
					    &comment));
	assert_null(comment);
	/* other comments before it do not count, the first `# comment:`
	 * does */
	snprintf(buf, sizeof(buf), "# suspended\n# comment: a\n# comment: b\n%s",
		 page);
	assert_true(classify_conf_suspended(buf, strlen(buf), &reason,
					    &comment));
	assert_string_equal(comment, "a");
	free(comment);
	/* not a prefix match on other words */
	snprintf(buf, sizeof(buf), "# commentary: x\n%s", page);
	assert_true(classify_conf_suspended(buf, strlen(buf), &reason,
					    &comment));
	assert_null(comment);
}

/* A control character in a comment never reaches the payload raw. */
static void test_suspend_comment_hostile(void **state)
{
	struct classify_result r;
	char buf[600];
	const char *c;

	(void)state;
	snprintf(buf, sizeof(buf), "# comment: a\x1b[31mred\x07\n%s",
		 conf_susp_user);
	run(CONF, buf, NULL, true, NULL, &r);
	assert_int_equal(r.n_events, 1);
	c = ev_str(&r, 0, "comment");
	assert_non_null(c);
	for (; *c; c++)
		assert_true((unsigned char)*c >= 0x20);
	classify_result_clear(&r);
}

/* opencli appends `|<uid>` to docker-mailserver's line with sed -i: no
 * password changed, no event; a new hash is one mail.account.changed. */
static void test_mail_uid_append(void **state)
{
	struct classify_result r;
	char *f, *f2;

	(void)state;
	run("/dms/config/postfix-accounts.cf",
	    "info@x.com|{SHA512-CRYPT}$6$s$AAAA\n", NULL, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "mail.account.added");
	f = facts_text(&r);
	classify_result_clear(&r);
	run("/dms/config/postfix-accounts.cf",
	    "info@x.com|{SHA512-CRYPT}$6$s$AAAA|1001\n", NULL, true, f, &r);
	assert_int_equal(r.n_events, 0);
	f2 = facts_text(&r);
	classify_result_clear(&r);
	/* uid changed (user-rename keeps it; a move would not): still no
	 * password change */
	run("/dms/config/postfix-accounts.cf",
	    "info@x.com|{SHA512-CRYPT}$6$s$AAAA|1002\n", NULL, true, f2, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
	run("/dms/config/postfix-accounts.cf",
	    "info@x.com|{SHA512-CRYPT}$6$t$BBBB|1001\n", NULL, true, f2, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "mail.account.changed");
	classify_result_clear(&r);
	free(f);
	free(f2);
}

static void run_secrets(const char *content, const char *old_facts,
			const char *const *extra, size_t n_extra,
			struct classify_result *r)
{
	struct classify_target t;
	const char *why;
	json_t *old = old_facts ? json_loads(old_facts, 0, NULL) : NULL;
	struct classify_input in = {
		.path = ROOT "/openpanel/conf/openpanel.config",
		.content = content,
		.len = strlen(content),
		.existed = old != NULL,
		.old_facts = old,
		.secret_keys = extra,
		.n_secret_keys = n_extra,
	};

	memset(r, 0, sizeof(*r));
	assert_int_equal(kind_of(in.path, &t, &why), CLASSIFY_PANEL_CONFIG);
	classify_content(&t, &in, r);
	json_decref(old);
}

#define TOKEN1 "Q7m2Zp9LkX4vR8sT1wY6bN3cH5jD0fG2aE4iU7oP9qS1tV3xZ5yB8nM6kL2hJ4gF"
#define TOKEN2 "a9B8c7D6e5F4g3H2i1J0kLmNoPqRsTuVwXyZ0123456789abcdefghijklmnopqr"

/* mail_security_token rotates on every notification mail: config.changed
 * with fingerprints, the token nowhere in the facts or the payload. */
static void test_config_secrets(void **state)
{
	struct classify_result r;
	char *f, *s;
	char fp1[CLASSIFY_FP_SIZE], fp2[CLASSIFY_FP_SIZE];
	static const char *const extra[] = { "webhook_*" };

	(void)state;
	classify_fingerprint(TOKEN1, strlen(TOKEN1), fp1);
	classify_fingerprint(TOKEN2, strlen(TOKEN2), fp2);
	assert_int_equal(strlen(fp1), 15);
	assert_memory_equal(fp1, "sha256:", 7);
	assert_string_not_equal(fp1, fp2);
	run_secrets("[DEFAULT]\nns1=a\nmail_security_token=" TOKEN1 "\n"
		    "webhook_url=https://hooks.example/secret-path\n", NULL,
		    extra, 1, &r);
	f = facts_text(&r);
	assert_null(strstr(f, TOKEN1));
	assert_null(strstr(f, "secret-path"));
	assert_non_null(strstr(f, fp1));
	classify_result_clear(&r);
	run_secrets("[DEFAULT]\nns1=a\nmail_security_token=" TOKEN2 "\n"
		    "webhook_url=https://hooks.example/secret-path\n", f,
		    extra, 1, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "config.changed");
	s = json_dumps(r.events[0].payload, JSON_COMPACT);
	assert_null(strstr(s, TOKEN1));
	assert_null(strstr(s, TOKEN2));
	free(s);
	s = json_dumps(json_object_get(r.events[0].payload, "changes"),
		       JSON_COMPACT);
	char want[300];

	snprintf(want, sizeof(want),
		 "[{\"key\":\"DEFAULT.mail_security_token\",\"secret\":true,"
		 "\"old_fingerprint\":\"%s\",\"new_fingerprint\":\"%s\"}]",
		 fp1, fp2);
	assert_string_equal(s, want);
	free(s);
	classify_result_clear(&r);
	/* facts of an older version held the value: compared by
	 * fingerprint, the value never comes out */
	run_secrets("[DEFAULT]\nmail_security_token=" TOKEN2 "\n",
		    "{\"keys\":{\"DEFAULT.mail_security_token\":\"" TOKEN1
		    "\"}}", NULL, 0, &r);
	assert_int_equal(r.n_events, 1);
	s = json_dumps(r.events[0].payload, JSON_COMPACT);
	assert_null(strstr(s, TOKEN1));
	assert_non_null(strstr(s, fp1));
	free(s);
	classify_result_clear(&r);
	run_secrets("[DEFAULT]\nmail_security_token=" TOKEN2 "\n",
		    "{\"keys\":{\"DEFAULT.mail_security_token\":\"" TOKEN2
		    "\"}}", NULL, 0, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
	free(f);
}

static void test_secret_keys(void **state)
{
	static const char *const extra[] = { "smtp_*", "DEFAULT.relay" };

	(void)state;
	assert_true(classify_secret_key("DEFAULT.mail_security_token", NULL, 0));
	assert_true(classify_secret_key("MAIL.SMTP_PASSWORD", NULL, 0));
	assert_true(classify_secret_key("api_key", NULL, 0));
	assert_true(classify_secret_key("jwt_secret", NULL, 0));
	assert_true(classify_secret_key("token", NULL, 0));
	assert_false(classify_secret_key("ns1", NULL, 0));
	assert_false(classify_secret_key("STATS.goaccess", NULL, 0));
	assert_false(classify_secret_key("keyboard", NULL, 0));
	assert_false(classify_secret_key("smtp_host", NULL, 0));
	assert_true(classify_secret_key("smtp_host", extra, 2));
	assert_true(classify_secret_key("DEFAULT.relay", extra, 2));
	assert_false(classify_secret_key("OTHER.relay", extra, 2));
}

/* Custom certificates: custom/<d>/fullchain.pem (opencli) and
 * custom/<h>/<h>.crt (the panel's host name); keys are never read. */
static void test_custom_cert_shapes(void **state)
{
	struct classify_target t;
	const char *why;

	(void)state;
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/shop.com/fullchain.pem",
				 &t, &why), CLASSIFY_CUSTOM_CERT);
	assert_string_equal(t.name, "shop.com");
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/panel.host.com/"
				      "panel.host.com.crt", &t, &why),
			 CLASSIFY_CUSTOM_CERT);
	assert_string_equal(t.name, "panel.host.com");
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/panel.host.com/"
				      "panel.host.com.key", &t, &why),
			 CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/shop.com/key.pem", &t,
				 &why), CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/a.com/b.com.crt", &t,
				 &why), CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/a.com/.crt", &t,
				 &why), CLASSIFY_NONE);
	assert_int_equal(kind_of(ROOT "/caddy/ssl/custom/a$(id).com/"
				      "a$(id).com.crt", &t, &why),
			 CLASSIFY_NONE);
	assert_non_null(why);
}

/* Noise under core/users/<u>/ gives no kind: activity.log appends, login
 * tokens, emails.yml rebuilds. */
static void test_user_noise(void **state)
{
	struct classify_target t;
	const char *why;
	static const char *const files[] = {
		"activity.log", "logintoken.txt", "emails.yml", "aliases.yml",
		".lastlogin", "notifications.yaml", "favorites.json", "ip.json",
	};
	char path[256];

	(void)state;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), ROOT "/openpanel/core/users/bob/%s",
			 files[i]);
		assert_int_equal(kind_of(path, &t, &why), CLASSIFY_NONE);
		assert_null(why);
	}
}


/* ---- issue 22: FTP accounts, crons.ini, backup.env, notifications ---- */

#define HOME "/home"
#define NOTES "/var/log/openpanel/admin/notifications.log"
static const struct classify_roots roots = { ROOT, HOME, NOTES };

/* run() with the homes and the notification log */
static void run_in(const char *path, const char *content, size_t len,
		   bool existed, const char *old_facts,
		   struct classify_result *r)
{
	struct classify_target t;
	const char *why;
	json_t *old = old_facts ? json_loads(old_facts, 0, NULL) : NULL;
	struct classify_input in = {
		.path = path,
		.content = content,
		.len = content ? len : 0,
		.existed = existed,
		.old_facts = old,
	};

	memset(r, 0, sizeof(*r));
	assert_int_not_equal(classify_path_in(&roots, path, &t, &why),
			     CLASSIFY_NONE);
	classify_content(&t, &in, r);
	json_decref(old);
}

#define RUN_IN(path, text, existed, facts, r)                                \
	run_in(path, text, strlen(text), existed, facts, r)

/* No event payload, facts or warning holds needle. */
static void assert_nowhere(const struct classify_result *r,
			   const char *needle)
{
	char *f = facts_text(r);

	assert_true(f == NULL || strstr(f, needle) == NULL);
	free(f);
	for (size_t i = 0; i < r->n_events; i++) {
		char *p = json_dumps(r->events[i].payload, JSON_COMPACT);

		assert_null(strstr(p, needle));
		free(p);
	}
	for (size_t i = 0; i < r->n_warnings; i++)
		assert_null(strstr(r->warnings[i], needle));
}

static void test_new_paths(void **state)
{
	struct classify_target t;
	const char *why;

	(void)state;
	assert_int_equal(classify_path_in(&roots, ROOT "/ftp/users/bob/"
					  "users.list", &t, &why),
			 CLASSIFY_FTP_USERS);
	assert_string_equal(t.name, "bob");
	assert_int_equal(classify_path_in(&roots, HOME "/bob/crons.ini", &t,
					  &why), CLASSIFY_CRONS);
	assert_string_equal(t.name, "bob");
	assert_true(classify_kind_is_customer(t.kind));
	assert_int_equal(classify_path_in(&roots, HOME "/bob/backup.env", &t,
					  &why), CLASSIFY_BACKUP_ENV);
	assert_int_equal(classify_path_in(&roots, NOTES, &t, &why),
			 CLASSIFY_NOTIFICATIONS);
	assert_false(classify_kind_is_customer(t.kind));
	/* not these: deeper, other names, no home configured */
	assert_int_equal(classify_path_in(&roots, HOME "/bob/x/crons.ini",
					  &t, &why), CLASSIFY_NONE);
	assert_int_equal(classify_path_in(&roots, HOME "/crons.ini", &t,
					  &why), CLASSIFY_NONE);
	assert_int_equal(classify_path_in(&roots, HOME "/bob/.env", &t, &why),
			 CLASSIFY_NONE);
	assert_int_equal(classify_path(ROOT, HOME "/bob/crons.ini", &t, &why),
			 CLASSIFY_NONE);
	assert_int_equal(classify_path_in(&roots, NOTES ".1", &t, &why),
			 CLASSIFY_NONE);
	assert_int_equal(classify_path_in(&roots, ROOT "/ftp/users/bob/x/"
					  "users.list", &t, &why),
			 CLASSIFY_NONE);
	/* hostile context names: refused with a reason */
	assert_int_equal(classify_path_in(&roots, HOME "/-rf/crons.ini", &t,
					  &why), CLASSIFY_NONE);
	assert_non_null(why);
	assert_int_equal(classify_path_in(&roots, ROOT "/ftp/users/a b/"
					  "users.list", &t, &why),
			 CLASSIFY_NONE);
	assert_non_null(why);
}

#define FTP ROOT "/ftp/users/bob/users.list"
#define HASH1 "$6$rounds=5000$saltsalt$AAAAhashhashhash"

static void test_ftp(void **state)
{
	struct classify_result r;
	char *f, *f2;

	(void)state;
	/* opencli ftp-add: `>>` of name|hash|dir|uid|gid */
	RUN_IN(FTP, "web@shop.example|" HASH1 "|/var/www/html/shop.example|"
		    "1001|1001\n", false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "ftp.account.added");
	assert_string_equal(r.events[0].subject, "user:bob");
	assert_string_equal(ev_str(&r, 0, "user"), "bob");
	assert_string_equal(ev_str(&r, 0, "account"), "web@shop.example");
	assert_string_equal(ev_str(&r, 0, "directory"),
			    "/var/www/html/shop.example");
	assert_nowhere(&r, "hashhash");
	f = facts_text(&r);
	classify_result_clear(&r);
	/* a second account; the first unchanged */
	RUN_IN(FTP, "web@shop.example|" HASH1 "|/var/www/html/shop.example|"
		    "1001|1001\nUp@Shop.Example|$6$x$y|/var/www/html/up|1001|"
		    "1001\n", true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_str(&r, 0, "account"), "up@shop.example");
	f2 = facts_text(&r);
	classify_result_clear(&r);
	free(f);
	/* ftp-password: the hash changes, no event */
	RUN_IN(FTP, "web@shop.example|$6$new$hash|/var/www/html/shop.example|"
		    "1001|1001\nup@shop.example|$6$x$y|/var/www/html/up|1001|"
		    "1001\n", true, f2, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
	/* ftp-delete: sed -i '/^name|/d' */
	RUN_IN(FTP, "web@shop.example|" HASH1 "|/var/www/html/shop.example|"
		    "1001|1001\n", true, f2, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "ftp.account.removed");
	assert_string_equal(ev_str(&r, 0, "account"), "up@shop.example");
	assert_string_equal(ev_str(&r, 0, "directory"), "/var/www/html/up");
	f = facts_text(&r);
	classify_result_clear(&r);
	/* the file removed (user-delete): every account goes */
	run_in(FTP, NULL, 0, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "ftp.account.removed");
	classify_result_clear(&r);
	free(f);
	free(f2);
	/* garbage: warnings naming lines, never the hash */
	RUN_IN(FTP, "nobar\n|" HASH1 "|/x\nbad name@x|" HASH1 "|/x\n"
		    "nodir@x|" HASH1 "\n", false, NULL, &r);
	assert_int_equal(r.n_events, 0);
	assert_int_equal(r.n_warnings, 4);
	assert_non_null(strstr(r.warnings[0], "line 1"));
	assert_nowhere(&r, "hashhash");
	classify_result_clear(&r);
}

#define CRONS HOME "/bob/crons.ini"
#define JOB(name, sched, cmd)                                                \
	"[job-exec \"" name "\"]\nschedule = " sched                         \
	"\ncontainer = php-fpm-8.3\ncommand = " cmd "\n"

static void test_crons(void **state)
{
	struct classify_result r;
	json_t *a;
	char *f, *f2;

	(void)state;
	RUN_IN(CRONS, JOB("a", "@every 1h", "php a.php") "\n"
		      JOB("b", "0 0 3 * * *", "php b.php") "no-overlap\n",
	       false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "cron.changed");
	assert_string_equal(r.events[0].subject, "user:bob");
	a = json_object_get(r.events[0].payload, "added");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(a, 1), "name")), "b");
	assert_true(json_is_true(json_object_get(json_array_get(a, 1),
						 "no_overlap")));
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(a, 0), "schedule")),
			    "@every 1h");
	f = facts_text(&r);
	classify_result_clear(&r);
	/* the same jobs written again (os.WriteFile): nothing */
	RUN_IN(CRONS, JOB("a", "@every 1h", "php a.php") "\n"
		      JOB("b", "0 0 3 * * *", "php b.php") "no-overlap\n",
	       true, f, &r);
	assert_int_equal(r.n_events, 0);
	classify_result_clear(&r);
	/* a changed, b removed, c added */
	RUN_IN(CRONS, JOB("a", "@every 5m", "php a.php") "\n"
		      JOB("c", "@daily", "php c.php"), true, f, &r);
	assert_int_equal(r.n_events, 1);
	a = json_object_get(r.events[0].payload, "changed");
	assert_int_equal(json_array_size(a), 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(a, 0), "schedule")),
			    "@every 5m");
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(json_array_get(a, 0),
						    "old"), "schedule")),
			    "@every 1h");
	a = json_object_get(r.events[0].payload, "removed");
	assert_int_equal(json_array_size(a), 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(a, 0), "command")),
			    "php b.php");
	a = json_object_get(r.events[0].payload, "added");
	assert_int_equal(json_array_size(a), 1);
	f2 = facts_text(&r);
	classify_result_clear(&r);
	free(f);
	/* emptied for good (the last job deleted): all removed */
	RUN_IN(CRONS, "", true, f2, &r);
	assert_int_equal(r.n_events, 1);
	assert_int_equal(json_array_size(json_object_get(
				 r.events[0].payload, "removed")), 2);
	classify_result_clear(&r);
	free(f2);
}

static void test_crons_hostile(void **state)
{
	struct classify_result r;
	static char big[200000];
	size_t n = 0;
	json_t *a;

	(void)state;
	/* binary, control bytes, no header, duplicates, other sections */
	static const char bin[] = "\x01\x02\xff\xfe=\n[job-exec \"x\x1b[31m\"]\n"
		"schedule = @every 1s\ncommand = echo \x07\xff\n"
		"[job-exec \"x\x1b[31m\"]\nschedule = @daily\n"
		"[global]\nsmtp-host = x\nstray line\n[job-exec]\n"
		"[job-exec \"\"]\n";
	run_in(CRONS, bin, sizeof(bin) - 1, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	a = json_object_get(r.events[0].payload, "added");
	assert_int_equal(json_array_size(a), 1);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(a, 0), "name")), "x?[31m");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(a, 0), "command")),
			    "echo ??");
	assert_true(r.n_warnings >= 4);
	assert_non_null(strstr(r.warnings[0], "line 1"));
	classify_result_clear(&r);
	/* more than CLASSIFY_CRON_MAX jobs: the rest is not read */
	for (unsigned i = 0; i < CLASSIFY_CRON_MAX + 50; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n,
				      "[job-exec \"j%u\"]\nschedule = @daily\n"
				      "\n", i);
	run_in(CRONS, big, n, false, NULL, &r);
	assert_int_equal(json_array_size(json_object_get(
				 r.events[0].payload, "added")),
			 CLASSIFY_CRON_MAX);
	assert_int_equal(r.n_warnings, 1);
	classify_result_clear(&r);
	/* passwords in commands are masked */
	static const char pw[] =
		"[job-exec \"p\"]\ncommand = mysqldump -uroot -pS3cr3tA db "
		"--password=S3cr3tB DB_PASSWORD='S3cr3tC' x=1 --password S3cr3tD "
		"token=a mkdir -p /x\n";
	run_in(CRONS, pw, sizeof(pw) - 1, false, NULL, &r);
	a = json_object_get(r.events[0].payload, "added");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(a, 0), "command")),
			    "mysqldump -uroot -p*** db --password=*** "
			    "DB_PASSWORD='***' x=1 --password *** token=*** "
			    "mkdir -p /x");
	assert_nowhere(&r, "S3cr3t");
	classify_result_clear(&r);
	/* a long command is cut */
	memset(big, 'x', 10000);
	memcpy(big, "[job-exec \"l\"]\ncommand = ", 25);
	run_in(CRONS, big, 10000, false, NULL, &r);
	a = json_object_get(r.events[0].payload, "added");
	assert_int_equal(strlen(json_string_value(json_object_get(
				 json_array_get(a, 0), "command"))), 4096);
	classify_result_clear(&r);
}

#define BENV HOME "/bob/backup.env"

static void test_backup_env(void **state)
{
	struct classify_result r;
	json_t *ch;
	char *f;
	const char *extra[] = { "MY_*" };
	json_t *set;

	(void)state;
	RUN_IN(BENV, "# docker-volume-backup\nBACKUP_CRON_EXPRESSION="
		     "\"@daily\"\nAWS_S3_BUCKET_NAME='bkt'\n"
		     "AWS_ACCESS_KEY_ID=AKIAEXAMPLE\n"
		     "AWS_SECRET_ACCESS_KEY=SuperSecretValue1\n"
		     "export GPG_PASSPHRASE=PassPhrase2\n"
		     "SSH_PASSWORD=\"Pw3\"\n"
		     "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpoints;"
		     "AccountKey=Conn4\n"
		     "DROPBOX_REFRESH_TOKEN=Tok5\n", false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "backup.config_changed");
	assert_string_equal(r.events[0].subject, "user:bob");
	assert_int_equal(json_array_size(json_object_get(r.events[0].payload,
							 "keys")), 8);
	assert_nowhere(&r, "SuperSecretValue1");
	assert_nowhere(&r, "PassPhrase2");
	assert_nowhere(&r, "Pw3");
	assert_nowhere(&r, "Conn4");
	assert_nowhere(&r, "Tok5");
	f = facts_text(&r);
	assert_non_null(strstr(f, "\"BACKUP_CRON_EXPRESSION\":\"@daily\""));
	assert_non_null(strstr(f, "\"AWS_S3_BUCKET_NAME\":\"bkt\""));
	classify_result_clear(&r);
	/* the secret changes: its fingerprints, not its values */
	RUN_IN(BENV, "BACKUP_CRON_EXPRESSION=\"@daily\"\n"
		     "AWS_S3_BUCKET_NAME='bkt'\nAWS_ACCESS_KEY_ID=AKIAEXAMPLE\n"
		     "AWS_SECRET_ACCESS_KEY=OtherSecret9\n"
		     "export GPG_PASSPHRASE=PassPhrase2\nSSH_PASSWORD=\"Pw3\"\n"
		     "AZURE_STORAGE_CONNECTION_STRING=DefaultEndpoints;"
		     "AccountKey=Conn4\nDROPBOX_REFRESH_TOKEN=Tok5\n",
	       true, f, &r);
	assert_int_equal(r.n_events, 1);
	ch = json_array_get(json_object_get(r.events[0].payload, "changes"),
			    0);
	assert_string_equal(json_string_value(json_object_get(ch, "key")),
			    "AWS_SECRET_ACCESS_KEY");
	assert_true(json_is_true(json_object_get(ch, "secret")));
	assert_int_equal(strncmp(json_string_value(json_object_get(
					 ch, "new_fingerprint")),
				 "sha256:", 7), 0);
	assert_nowhere(&r, "OtherSecret9");
	assert_nowhere(&r, "SuperSecretValue1");
	classify_result_clear(&r);
	free(f);
	/* bad lines: warned by line, never their text */
	RUN_IN(BENV, "SSH_PASSWORD hunter2\n9BAD=x\nBAD KEY=hunter3\n",
	       false, NULL, &r);
	assert_int_equal(r.n_warnings, 3);
	assert_nowhere(&r, "hunter");
	assert_non_null(strstr(r.warnings[0], "line 1"));
	classify_result_clear(&r);
	/* the admin's secrets.extra_keys count too */
	set = classify_backup_env("MY_THING=v1\n", 12, extra, 1, NULL);
	assert_string_not_equal(json_string_value(json_object_get(set,
								  "MY_THING")),
				"v1");
	json_decref(set);
}

static void test_note_parse(void **state)
{
	struct classify_note n;
	const char *l = "2025-05-01 12:00:00 UNREAD Disk Usage MESSAGE: 91% used";

	(void)state;
	assert_true(classify_note_parse(l, strlen(l), &n));
	assert_true(n.unread);
	assert_int_equal(n.title_len, 10);
	assert_memory_equal(n.title, "Disk Usage", 10);
	assert_int_equal(n.message_len, 8);
	l = "2025-05-01 12:00:00 READ Disk Usage MESSAGE: 91% used";
	assert_true(classify_note_parse(l, strlen(l), &n));
	assert_false(n.unread);
	l = "2025-05-01 12:00:00 UNREAD no message part";
	assert_true(classify_note_parse(l, strlen(l), &n));
	assert_int_equal(n.message_len, 0);
	l = "2025-05-01 12:00:00 SEEN x MESSAGE: y";
	assert_false(classify_note_parse(l, strlen(l), &n));
	l = "garbage";
	assert_false(classify_note_parse(l, strlen(l), &n));
	l = "2025-05-01T12:00:00 UNREAD x MESSAGE: y";
	assert_false(classify_note_parse(l, strlen(l), &n));
}

#define N1 "2025-05-01 12:00:00 UNREAD Disk Usage MESSAGE: 91% used\n"
#define N1R "2025-05-01 12:00:00 READ Disk Usage MESSAGE: 91% used\n"
#define N2 "2025-05-01 12:05:00 UNREAD High Load MESSAGE: load 9\n"
#define N3R "2025-05-01 12:06:00 READ Old one MESSAGE: seen\n"

static void test_notifications(void **state)
{
	struct classify_result r;
	char *f, *f2;

	(void)state;
	RUN_IN(NOTES, N1, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_type(&r, 0), "panel.notification");
	assert_string_equal(r.events[0].subject, "notifications");
	assert_string_equal(ev_str(&r, 0, "title"), "Disk Usage");
	assert_string_equal(ev_str(&r, 0, "message"), "91% used");
	assert_string_equal(ev_str(&r, 0, "logged_at"), "2025-05-01 12:00:00");
	f = facts_text(&r);
	classify_result_clear(&r);
	/* appended (>>): the new line only; a READ one is not announced */
	RUN_IN(NOTES, N1 N2 N3R, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_str(&r, 0, "title"), "High Load");
	f2 = facts_text(&r);
	classify_result_clear(&r);
	free(f);
	/* sed -i marks the first READ: nothing */
	RUN_IN(NOTES, N1R N2 N3R, true, f2, &r);
	assert_int_equal(r.n_events, 0);
	f = facts_text(&r);
	classify_result_clear(&r);
	free(f2);
	/* the same line logged again: announced again (count) */
	RUN_IN(NOTES, N1R N2 N3R N1, true, f, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_str(&r, 0, "title"), "Disk Usage");
	classify_result_clear(&r);
	/* lines removed (cleared by hand), then one appended */
	RUN_IN(NOTES, N2, true, f, &r);
	assert_int_equal(r.n_events, 0);
	f2 = facts_text(&r);
	classify_result_clear(&r);
	free(f);
	/* rotated: a new file with the new line */
	RUN_IN(NOTES, "2025-05-02 00:00:01 UNREAD Reboot MESSAGE: up\n", true,
	       f2, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_str(&r, 0, "title"), "Reboot");
	classify_result_clear(&r);
	free(f2);
	/* control bytes and lines of other writers */
	static const char odd[] = "not a note\n2025-05-01 12:00:00 UNREAD "
				  "T\x1b]0; MESSAGE: m\x07\xff\n";
	run_in(NOTES, odd, sizeof(odd) - 1, false, NULL, &r);
	assert_int_equal(r.n_events, 1);
	assert_string_equal(ev_str(&r, 0, "title"), "T?]0;");
	assert_string_equal(ev_str(&r, 0, "message"), "m??");
	classify_result_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_hostile_names),
		cmocka_unit_test(test_ignored),
		cmocka_unit_test(test_domain_lifecycle),
		cmocka_unit_test(test_suspended_parser),
		cmocka_unit_test(test_conf_modes),
		cmocka_unit_test(test_cert),
		cmocka_unit_test(test_cert_removed),
		cmocka_unit_test(test_cert_wildcard),
		cmocka_unit_test(test_quotas),
		cmocka_unit_test(test_user_dir),
		cmocka_unit_test(test_denylist),
		cmocka_unit_test(test_ini),
		cmocka_unit_test(test_zone),
		cmocka_unit_test(test_named),
		cmocka_unit_test(test_mail),
		cmocka_unit_test(test_garbage_everywhere),
		cmocka_unit_test(test_suspend_comment),
		cmocka_unit_test(test_suspend_comment_hostile),
		cmocka_unit_test(test_mail_uid_append),
		cmocka_unit_test(test_config_secrets),
		cmocka_unit_test(test_secret_keys),
		cmocka_unit_test(test_custom_cert_shapes),
		cmocka_unit_test(test_user_noise),
		cmocka_unit_test(test_new_paths),
		cmocka_unit_test(test_ftp),
		cmocka_unit_test(test_crons),
		cmocka_unit_test(test_crons_hostile),
		cmocka_unit_test(test_backup_env),
		cmocka_unit_test(test_note_parse),
		cmocka_unit_test(test_notifications),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
