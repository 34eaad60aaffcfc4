/* Unit tests: panel DB snapshots, diff, enrichment, persistence, the
 * SQLite driver, OpenAdmin's users.db, and the whole poll cycle against a
 * fake engine (events are committed only once journaled). */
#include "../../core/sources/paneldb.c"
#include "hmap.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#ifndef TOP_SRCDIR
#define TOP_SRCDIR "."
#endif

/* ---- a fake engine ---- */

struct engine {
	struct config *cfg;
	uv_loop_t *loop;
	engine_enrich_fn *enrich;
	void *enrich_ctx;
	json_t *journal;  /* array of {type, subject, source, payload} */
	int fail_next;    /* journal failures to simulate */
};

const struct config *engine_config(struct engine *e)
{
	return e->cfg;
}

uv_loop_t *engine_loop(struct engine *e)
{
	return e->loop;
}

void engine_set_enricher(struct engine *e, engine_enrich_fn *fn, void *ctx)
{
	e->enrich = fn;
	e->enrich_ctx = ctx;
}

int engine_submit(struct engine *e, const char *type, const char *subject,
		  const char *source, json_t *payload, engine_submit_cb *cb,
		  void *ctx, const char **error_r)
{
	static struct event fake;

	(void)error_r;
	if (payload == NULL)
		payload = json_object();
	if (e->enrich != NULL)
		e->enrich(payload, type, subject, e->enrich_ctx);
	if (e->fail_next > 0) {
		e->fail_next--;
		json_decref(payload);
		if (cb != NULL)
			cb(NULL, "disk full (simulated)", ctx);
		return 0;
	}
	json_array_append_new(e->journal, json_pack("{s:s,s:s,s:s,s:o}",
		"type", type, "subject", subject, "source", source,
		"payload", payload));
	if (cb != NULL)
		cb(&fake, NULL, ctx);
	return 0;
}

/* ---- helpers ---- */

static char tmpdir[64];

static int setup_tmp(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/test_paneldb.XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown_tmp(void **state)
{
	char *cmd[] = { "rm", "-rf", tmpdir, NULL };
	pid_t pid;

	(void)state;
	pid = fork();
	if (pid == 0) {
		execvp(cmd[0], cmd);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	return 0;
}

static void sql_exec(const char *path, const char *sql)
{
	sqlite3 *db;
	char *err = NULL;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
		fail_msg("%s: %s", sql, err);
	sqlite3_close(db);
}

static void sql_file(const char *path, const char *file)
{
	char *data;
	size_t len;

	assert_int_equal(file_read_nofollow(file, 1 << 20, &data, &len), 0);
	sql_exec(path, data);
	free(data);
}

static char *tmp_path(const char *name)
{
	return xasprintf("%s/%s", tmpdir, name);
}

/* rows from a JSON text */
static json_t *J(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, 0, &err);

	if (v == NULL)
		fail_msg("bad test JSON: %s", err.text);
	return v;
}

static struct dbpoll_panel *panel_of(const char *users, const char *plans,
				     const char *domains,
				     const struct dbpoll_panel *prev,
				     int64_t now)
{
	json_t *u = J(users), *p = J(plans), *d = J(domains);
	struct dbpoll_panel *panel = dbpoll_panel_build(u, p, d, prev, now);

	json_decref(u);
	json_decref(p);
	json_decref(d);
	return panel;
}

static const char *PLANS = "[[1,\"Standard plan\"],[2,\"Developer Plus\"]]";
static const char *USERS =
	"[[1,\"alice\",1,\"alice@example.net\",\"alice\"],"
	" [2,\"bob\",2,\"bob@example.net\",null],"
	" [3,\"carol\",1,\"carol@example.net\",\"carol\"]]";
static const char *DOMAINS =
	"[[\"alice-blog.example\",1],[\"Shop.Example\",1],"
	" [\"bob-site.example\",2]]";

static const char *str(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* ---- tests: snapshots and diff ---- */

static void test_parse_username(void **state)
{
	char *name, *ts;

	(void)state;
	dbpoll_parse_username("SUSPENDED_20261128120000_carol", &name, &ts);
	assert_string_equal(name, "carol");
	assert_string_equal(ts, "20261128120000");
	free(name);
	free(ts);
	dbpoll_parse_username("SUSPENDED_2026_carol", &name, &ts);
	assert_string_equal(name, "SUSPENDED_2026_carol");
	assert_null(ts);
	free(name);
	dbpoll_parse_username("bob", &name, &ts);
	assert_string_equal(name, "bob");
	assert_null(ts);
	free(name);
}

static void test_enrich_map(void **state)
{
	struct dbpoll_panel *p = panel_of(USERS, PLANS, DOMAINS, NULL, 1000);
	json_t *ev;

	(void)state;
	assert_int_equal(hmap_count(p->owners), 3);
	/* domain field */
	ev = J("{\"domain\":\"shop.example\"}");
	dbpoll_enrich(p, ev, "domain.added", "shop.example");
	assert_string_equal(str(ev, "user"), "alice");
	assert_string_equal(str(ev, "plan"), "Standard plan");
	assert_string_equal(str(ev, "context"), "alice");
	assert_int_equal(json_integer_value(json_object_get(ev, "user_id")), 1);
	json_decref(ev);
	/* subject only, upper case; context defaults to the user name */
	ev = json_object();
	dbpoll_enrich(p, ev, "cert.issued", "BOB-SITE.example");
	assert_string_equal(str(ev, "user"), "bob");
	assert_string_equal(str(ev, "plan"), "Developer Plus");
	assert_string_equal(str(ev, "context"), "bob");
	json_decref(ev);
	/* fields already set are kept; unknown domains get nothing */
	ev = J("{\"domain\":\"bob-site.example\",\"user\":\"someone\"}");
	dbpoll_enrich(p, ev, "dns.zone.changed", "bob-site.example");
	assert_string_equal(str(ev, "user"), "someone");
	json_decref(ev);
	ev = J("{\"domain\":\"nobody.test\"}");
	dbpoll_enrich(p, ev, "domain.added", "nobody.test");
	assert_null(json_object_get(ev, "user"));
	json_decref(ev);
	/* other event types are left alone */
	ev = J("{\"domain\":\"bob-site.example\"}");
	dbpoll_enrich(p, ev, "config.changed", "bob-site.example");
	assert_null(json_object_get(ev, "user"));
	json_decref(ev);
	/* user events get the plan */
	ev = J("{\"user\":\"carol\"}");
	dbpoll_enrich(p, ev, "user.denylist.changed", "user:carol");
	assert_string_equal(str(ev, "plan"), "Standard plan");
	json_decref(ev);
	ev = json_object();
	dbpoll_enrich(p, ev, "user.added", "user:bob");
	assert_string_equal(str(ev, "plan"), "Developer Plus");
	json_decref(ev);
	dbpoll_panel_free(&p);
	assert_null(p);
}

static json_t *diff_events(const struct dbpoll_panel *a,
			   const struct dbpoll_panel *b, bool *changed_r)
{
	struct dbpoll_events evs = { 0 };
	json_t *out = json_array();

	*changed_r = dbpoll_diff_panel(a, b, &evs);
	for (size_t i = 0; i < evs.n; i++) {
		json_object_set_new(evs.v[i].payload, "_type",
				    json_string(evs.v[i].type));
		json_object_set_new(evs.v[i].payload, "_subject",
				    json_string(evs.v[i].subject));
		json_array_append(out, evs.v[i].payload);
	}
	dbpoll_events_clear(&evs);
	return out;
}

static void test_user_suspended_no_domains(void **state)
{
	struct dbpoll_panel *a = panel_of(USERS, PLANS, DOMAINS, NULL, 1000);
	struct dbpoll_panel *b = panel_of(
		"[[1,\"alice\",1,\"alice@example.net\",\"alice\"],"
		" [2,\"bob\",2,\"bob@example.net\",null],"
		" [3,\"SUSPENDED_20261128120000_carol\",1,\"carol@example.net\","
		"  \"carol\"]]", PLANS, DOMAINS, a, 2000);
	bool changed;
	json_t *evs, *ev;

	(void)state;
	evs = diff_events(a, b, &changed);
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_type"), "user.suspended");
	assert_string_equal(str(ev, "_subject"), "user:carol");
	assert_string_equal(str(ev, "user"), "carol");
	assert_string_equal(str(ev, "suspended_at"), "2026-11-28T12:00:00Z");
	assert_string_equal(str(ev, "plan"), "Standard plan");
	json_decref(evs);
	/* the suspended user is still known by its real name */
	ev = json_object();
	dbpoll_enrich(b, ev, "user.suspended", "user:carol");
	assert_int_equal(json_integer_value(json_object_get(ev, "user_id")), 3);
	json_decref(ev);
	/* and back */
	evs = diff_events(b, a, &changed);
	assert_int_equal(json_array_size(evs), 1);
	assert_string_equal(str(json_array_get(evs, 0), "_type"),
			    "user.unsuspended");
	json_decref(evs);
	/* nothing changed: no events, nothing to save */
	evs = diff_events(a, a, &changed);
	assert_false(changed);
	assert_int_equal(json_array_size(evs), 0);
	json_decref(evs);
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&b);
}

static void test_plan_added_removed(void **state)
{
	struct dbpoll_panel *a = panel_of(USERS, PLANS, DOMAINS, NULL, 1000);
	struct dbpoll_panel *b = panel_of(
		"[[1,\"alice\",2,\"alice@example.net\",\"alice\"],"
		" [3,\"carol\",1,\"carol@example.net\",\"carol\"],"
		" [4,\"dave\",null,\"dave@example.net\",\"dave\"]]",
		PLANS, "[[\"alice-blog.example\",1]]", a, 2000);
	bool changed;
	json_t *evs, *ev;

	(void)state;
	evs = diff_events(a, b, &changed);
	assert_int_equal(json_array_size(evs), 3);
	/* ordered by user id */
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_type"), "user.plan_changed");
	assert_string_equal(str(ev, "old_plan"), "Standard plan");
	assert_string_equal(str(ev, "plan"), "Developer Plus");
	assert_int_equal(json_integer_value(json_object_get(ev, "plan_id")), 2);
	ev = json_array_get(evs, 1);
	assert_string_equal(str(ev, "_type"), "user.removed");
	assert_string_equal(str(ev, "user"), "bob");
	assert_string_equal(str(ev, "plan"), "Developer Plus");
	ev = json_array_get(evs, 2);
	assert_string_equal(str(ev, "_type"), "user.added");
	assert_string_equal(str(ev, "user"), "dave");
	assert_string_equal(str(ev, "email"), "dave@example.net");
	assert_true(json_is_false(json_object_get(ev, "suspended")));
	json_decref(evs);
	/* a baseline (no previous snapshot) emits nothing */
	evs = diff_events(NULL, a, &changed);
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 0);
	json_decref(evs);
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&b);
}

static void test_domain_rows_first(void **state)
{
	struct dbpoll_panel *a = panel_of(USERS, PLANS, DOMAINS, NULL, 1000);
	/* the rows go first: domain and user */
	struct dbpoll_panel *b = panel_of(
		"[[1,\"alice\",1,\"alice@example.net\",\"alice\"],"
		" [3,\"carol\",1,\"carol@example.net\",\"carol\"]]",
		PLANS, "[[\"alice-blog.example\",1]]", a, 2000);
	struct dbpoll_panel *c, *d, *e;
	const struct dbpoll_owner *o;
	const char *why;
	json_t *ev, *doc;
	char *text;
	bool changed;

	(void)state;
	changed = dbpoll_diff_panel(a, b, NULL);
	assert_true(changed);
	o = dbpoll_owner_find(b, "bob-site.example");
	assert_non_null(o);
	assert_int_equal(o->gone_ms, 2000);
	/* then the files: domain.removed still names the owner */
	ev = J("{\"domain\":\"bob-site.example\"}");
	dbpoll_enrich(b, ev, "domain.removed", "bob-site.example");
	assert_string_equal(str(ev, "user"), "bob");
	assert_string_equal(str(ev, "plan"), "Developer Plus");
	json_decref(ev);
	/* across a restart (saved, loaded) */
	text = dbpoll_state_dump(b, NULL, "x", NULL);
	doc = J(text);
	free(text);
	struct dbpoll_admins *adm;
	assert_int_equal(dbpoll_state_from_json(doc, &c, &adm, &why), 0);
	json_decref(doc);
	assert_null(adm);
	ev = json_object();
	dbpoll_enrich(c, ev, "cert.removed", "shop.example");
	assert_string_equal(str(ev, "user"), "alice");
	json_decref(ev);
	assert_false(dbpoll_diff_panel(b, c, NULL));
	/* the gone mark stays (same gone_ms) over later polls ... */
	d = panel_of("[[1,\"alice\",1,\"alice@example.net\",\"alice\"],"
		     " [3,\"carol\",1,\"carol@example.net\",\"carol\"]]",
		     PLANS, "[[\"alice-blog.example\",1]]", c, 5000);
	assert_int_equal(dbpoll_owner_find(d, "bob-site.example")->gone_ms, 2000);
	assert_false(dbpoll_diff_panel(c, d, NULL));
	/* ... and is dropped after DBPOLL_GONE_KEEP_MS */
	e = panel_of("[[1,\"alice\",1,\"alice@example.net\",\"alice\"]]",
		     PLANS, "[[\"alice-blog.example\",1]]", d,
		     2000 + DBPOLL_GONE_KEEP_MS + 1);
	assert_null(dbpoll_owner_find(e, "bob-site.example"));
	assert_non_null(dbpoll_owner_find(e, "alice-blog.example"));
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&b);
	dbpoll_panel_free(&c);
	dbpoll_panel_free(&d);
	/* the user row goes before its domains' rows: still named */
	a = panel_of("[[3,\"carol\",1,null,null]]", PLANS,
		     "[[\"alice-blog.example\",1]]", e, 10);
	ev = json_object();
	dbpoll_enrich(a, ev, "domain.removed", "alice-blog.example");
	assert_string_equal(str(ev, "user"), "alice");
	json_decref(ev);
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&e);
}

static void test_bad_rows(void **state)
{
	struct dbpoll_panel *p = panel_of(
		"[[1,\"alice\",1,null,null],[1,\"dup\",1,null,null],"
		" [2,\"../etc\",1,null,null],[null,\"x\",1,null,null]]",
		"[[1,\"Standard plan\"]]",
		"[[\"alice-blog.example\",1],[\"../../etc/passwd\",1],"
		" [\"orphan.test\",99],[\"nouser.test\",null]]", NULL, 1);
	json_t *ev;

	(void)state;
	assert_int_equal(hmap_count(p->users), 1);
	assert_int_equal(p->bad_rows, 4);
	assert_int_equal(hmap_count(p->owners), 3);
	ev = json_object();
	dbpoll_enrich(p, ev, "domain.added", "orphan.test");
	assert_null(json_object_get(ev, "user"));
	json_decref(ev);
	dbpoll_panel_free(&p);
}

/* ---- account, PHP, sites, plan limits ---- */

#define HASH1 "$2b$12$AAAAAAAAAAAAAAAAAAAAAu1111111111111111111111111111111"
#define HASH2 "$2b$12$BBBBBBBBBBBBBBBBBBBBBu2222222222222222222222222222222"
#define OTP1 "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"

/* users rows with the secret columns: [id, username, plan_id, email,
 * server, password, twofa_enabled, otp_secret] */
static char *users_sec(const char *email, const char *hash, int twofa,
		       const char *otp)
{
	return xasprintf("[[1,\"alice\",1,\"%s\",\"alice\",\"%s\",%d,%s%s%s],"
			 " [2,\"bob\",2,\"bob@example.net\",null,\"%s\",0,null]]",
			 email, hash, twofa, otp ? "\"" : "",
			 otp ? otp : "null", otp ? "\"" : "", HASH1);
}

/* No secret nor anything made from one in any event or log-able text. */
static void assert_no_secret(json_t *evs, const struct dbpoll_panel *p)
{
	char *text = json_dumps(evs, JSON_COMPACT);
	const struct dbpoll_user *u = hmap_get(p->users, "1");

	assert_null(strstr(text, "$2b$"));
	assert_null(strstr(text, "JBSWY3DP"));
	if (u->pw_fp != NULL)
		assert_null(strstr(text, u->pw_fp));
	if (u->otp_fp != NULL)
		assert_null(strstr(text, u->otp_fp));
	free(text);
}

static void test_user_updated(void **state)
{
	char *u0 = users_sec("alice@example.net", HASH1, 0, NULL);
	char *u1 = users_sec("alice@example.org", HASH2, 0, NULL);
	char *u2 = users_sec("alice@example.org", HASH2, 1, OTP1);
	char *u3 = users_sec("alice@example.org", HASH2, 0, NULL);
	struct dbpoll_panel *a = panel_of(u0, PLANS, DOMAINS, NULL, 1);
	struct dbpoll_panel *b = panel_of(u1, PLANS, DOMAINS, a, 2);
	struct dbpoll_panel *c = panel_of(u2, PLANS, DOMAINS, b, 3);
	struct dbpoll_panel *d = panel_of(u3, PLANS, DOMAINS, c, 4);
	struct dbpoll_panel *old = panel_of(USERS, PLANS, DOMAINS, NULL, 1);
	bool changed;
	json_t *evs, *ev;

	/* the fingerprint is the first 16 hex digits of SHA-256("password:
	 * ID:HASH") (python3 hashlib): a state file of an older ophook holds
	 * these, so a change of how they are made would read as every
	 * user's password changed */
	assert_string_equal(((const struct dbpoll_user *)hmap_get(
				     a->users, "1"))->pw_fp,
			    "ea8e66d9bd43e33b");
	assert_string_equal(((const struct dbpoll_user *)hmap_get(
				     c->users, "1"))->otp_fp,
			    "a66d445fc2368d28");

	(void)state;
	/* email and password in one write */
	evs = diff_events(a, b, &changed);
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_type"), "user.updated");
	assert_string_equal(str(ev, "_subject"), "user:alice");
	assert_string_equal(str(ev, "email"), "alice@example.org");
	assert_string_equal(str(ev, "old_email"), "alice@example.net");
	assert_int_equal(json_array_size(json_object_get(ev, "changed")), 2);
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(ev, "changed"), 0)), "email");
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(ev, "changed"), 1)), "password");
	assert_no_secret(evs, b);
	json_decref(evs);
	/* 2FA setup: a pending secret, 2FA still off: saved, no event */
	{
		char *up = users_sec("alice@example.org", HASH2, 0, OTP1);
		struct dbpoll_panel *pend = panel_of(up, PLANS, DOMAINS, b, 3);

		evs = diff_events(b, pend, &changed);
		assert_true(changed);
		assert_int_equal(json_array_size(evs), 0);
		json_decref(evs);
		/* confirmed: 2FA on */
		evs = diff_events(pend, c, &changed);
		assert_int_equal(json_array_size(evs), 1);
		json_decref(evs);
		dbpoll_panel_free(&pend);
		free(up);
	}
	/* 2FA on (flag and secret at once), then off */
	evs = diff_events(b, c, &changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(ev, "changed"), 0)), "2fa");
	assert_true(json_is_true(json_object_get(ev, "twofa_enabled")));
	assert_null(json_object_get(ev, "email"));
	assert_no_secret(evs, c);
	json_decref(evs);
	evs = diff_events(c, d, &changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_true(json_is_true(json_object_get(ev, "twofa_disabled")));
	json_decref(evs);
	/* the same hash again: nothing */
	evs = diff_events(d, d, &changed);
	assert_false(changed);
	assert_int_equal(json_array_size(evs), 0);
	json_decref(evs);
	/* a snapshot without the secret columns (older state) is no base
	 * for a password or 2FA change: no event, but saved */
	evs = diff_events(old, a, &changed);
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 1); /* carol is not in a */
	assert_string_equal(str(json_array_get(evs, 0), "_type"),
			    "user.removed");
	json_decref(evs);
	/* the fingerprints survive the state file; the hash is not there */
	{
		char *text = dbpoll_state_dump(d, NULL, "x", NULL);
		json_t *doc = J(text);
		struct dbpoll_panel *q;
		struct dbpoll_admins *ad;
		const char *why;

		assert_null(strstr(text, "$2b$"));
		assert_null(strstr(text, "JBSWY3DP"));
		assert_int_equal(dbpoll_state_from_json(doc, &q, &ad, &why), 0);
		assert_false(dbpoll_diff_panel(d, q, NULL));
		evs = diff_events(q, c, &changed);
		assert_int_equal(json_array_size(evs), 1);
		json_decref(evs);
		json_decref(doc);
		free(text);
		dbpoll_panel_free(&q);
	}
	free(u0);
	free(u1);
	free(u2);
	free(u3);
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&b);
	dbpoll_panel_free(&c);
	dbpoll_panel_free(&d);
	dbpoll_panel_free(&old);
}

static const char *DOMAINS_PHP =
	"[[\"alice-blog.example\",1,\"8.2\",1],[\"shop.example\",1,\"8.3\",2],"
	" [\"bob-site.example\",2,\"8.2\",3]]";

static void test_php_changed(void **state)
{
	struct dbpoll_panel *a = panel_of(USERS, PLANS, DOMAINS_PHP, NULL, 1);
	struct dbpoll_panel *b = panel_of(USERS, PLANS,
		"[[\"alice-blog.example\",1,\"8.4\",1],"
		" [\"shop.example\",1,\"8.3\",2]]", a, 2);
	struct dbpoll_panel *c = panel_of(USERS, PLANS, DOMAINS, a, 2);
	bool changed;
	json_t *evs, *ev;

	(void)state;
	/* one changed, one removed (no php event for a removed row) */
	evs = diff_events(a, b, &changed);
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_type"), "domain.php_changed");
	assert_string_equal(str(ev, "_subject"), "alice-blog.example");
	assert_string_equal(str(ev, "php_version"), "8.4");
	assert_string_equal(str(ev, "old_php_version"), "8.2");
	assert_string_equal(str(ev, "user"), "alice");
	json_decref(evs);
	/* rows without the column: unknown, no event */
	evs = diff_events(a, c, &changed);
	assert_int_equal(json_array_size(evs), 0);
	json_decref(evs);
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&b);
	dbpoll_panel_free(&c);
}

static struct dbpoll_panel *panel_sites(const char *domains,
					const char *sites,
					const struct dbpoll_panel *prev)
{
	struct dbpoll_panel *p = panel_of(USERS, PLANS, domains, prev, 1);
	json_t *s = J(sites);

	dbpoll_panel_add_sites(p, s, prev);
	json_decref(s);
	return p;
}

static void test_sites(void **state)
{
	struct dbpoll_panel *a = panel_sites(DOMAINS_PHP,
		"[[1,\"alice-blog.example\",1,\"wordpress\"]]", NULL);
	struct dbpoll_panel *b = panel_sites(DOMAINS_PHP,
		"[[1,\"alice-blog.example\",1,\"wordpress\"],"
		" [2,\"bob-site.example/shop\",3,\"opencart\"]]", a);
	/* the domain row and the site row go in one poll */
	struct dbpoll_panel *c = panel_sites(
		"[[\"alice-blog.example\",1,\"8.2\",1],"
		" [\"shop.example\",1,\"8.3\",2]]",
		"[[1,\"alice-blog.example\",1,\"wordpress\"]]", b);
	bool changed;
	json_t *evs, *ev;

	(void)state;
	evs = diff_events(a, b, &changed);
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_type"), "site.added");
	assert_string_equal(str(ev, "_subject"), "bob-site.example");
	assert_string_equal(str(ev, "site"), "bob-site.example/shop");
	assert_string_equal(str(ev, "site_type"), "opencart");
	assert_string_equal(str(ev, "user"), "bob");
	assert_int_equal(json_integer_value(json_object_get(ev, "site_id")), 2);
	json_decref(evs);
	evs = diff_events(b, c, &changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_type"), "site.removed");
	assert_string_equal(str(ev, "domain"), "bob-site.example");
	assert_string_equal(str(ev, "user"), "bob");
	json_decref(evs);
	evs = diff_events(b, b, &changed);
	assert_false(changed);
	json_decref(evs);
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&b);
	dbpoll_panel_free(&c);
}

static const char *PLANS_LIM =
	"[[1,\"Standard plan\",0,10,0,0,\"5 GB\",1000000,0,\"2\",\"2g\",10],"
	" [2,\"Developer Plus\",0,10,0,0,\"10 GB\",1000000,0,\"4\",\"6g\",100]]";

static void test_plan_limits(void **state)
{
	struct dbpoll_panel *a = panel_of(USERS, PLANS_LIM, DOMAINS, NULL, 1);
	/* plan 1 gets more CPU and RAM; carol moves to plan 2 meanwhile */
	struct dbpoll_panel *b = panel_of(
		"[[1,\"alice\",1,\"alice@example.net\",\"alice\"],"
		" [2,\"bob\",2,\"bob@example.net\",null],"
		" [3,\"carol\",2,\"carol@example.net\",\"carol\"]]",
		"[[1,\"Standard plan\",0,10,0,0,\"5 GB\",1000000,0,\"3\",\"4g\",10],"
		" [2,\"Developer Plus\",0,10,0,0,\"10 GB\",1000000,0,\"4\",\"6g\",100]]",
		DOMAINS, a, 2);
	struct dbpoll_panel *c = panel_of(USERS, PLANS, DOMAINS, a, 2);
	bool changed;
	json_t *evs, *ev, *lim;

	(void)state;
	evs = diff_events(a, b, &changed);
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 2);
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_type"), "user.limits_changed");
	assert_string_equal(str(ev, "_subject"), "user:alice");
	assert_string_equal(str(ev, "origin"), "plan");
	lim = json_object_get(ev, "limits");
	assert_int_equal(json_object_size(lim), 2);
	assert_string_equal(str(json_object_get(lim, "cpu"), "old"), "2");
	assert_string_equal(str(json_object_get(lim, "cpu"), "new"), "3");
	assert_string_equal(str(json_object_get(lim, "ram"), "new"), "4g");
	/* carol: the plan change only, with the limits that differ */
	ev = json_array_get(evs, 1);
	assert_string_equal(str(ev, "_type"), "user.plan_changed");
	assert_string_equal(str(ev, "_subject"), "user:carol");
	lim = json_object_get(ev, "limits");
	assert_string_equal(str(json_object_get(lim, "disk_limit"), "new"),
			    "10 GB");
	assert_string_equal(str(json_object_get(lim, "bandwidth"), "old"),
			    "10");
	json_decref(evs);
	/* rows without the limit columns: no base, no event */
	evs = diff_events(a, c, &changed);
	assert_int_equal(json_array_size(evs), 0);
	json_decref(evs);
	/* limits survive the state file */
	{
		char *text = dbpoll_state_dump(b, NULL, "x", NULL);
		json_t *doc = J(text);
		struct dbpoll_panel *q;
		struct dbpoll_admins *ad;
		const char *why;

		assert_int_equal(dbpoll_state_from_json(doc, &q, &ad, &why), 0);
		assert_false(dbpoll_diff_panel(b, q, NULL));
		evs = diff_events(q, a, &changed);
		assert_int_equal(json_array_size(evs), 2);
		json_decref(evs);
		json_decref(doc);
		free(text);
		dbpoll_panel_free(&q);
	}
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&b);
	dbpoll_panel_free(&c);
}

static void test_slice_parse(void **state)
{
	static const char text[] =
		"# made by systemctl set-property\n"
		"[Unit]\nCPUQuota=999%\n"
		"[Slice]\n  CPUQuota = 200% \r\nMemoryMax=2G\nTasksMax=300\n"
		"MemoryMax=bad\x01value\nTasksMax=\n"
		"[Service]\nMemoryMax=1G\n";
	char *v[DBPOLL_N_SLICE] = { NULL, NULL, NULL };
	char *big = xmalloc(4000);

	(void)state;
	dbpoll_slice_parse(text, sizeof(text) - 1, v);
	assert_string_equal(v[0], "200%");
	assert_string_equal(v[1], "2G");
	assert_null(v[2]); /* reset by the empty assignment */
	/* a later file overrides; an over-long line is ignored */
	memset(big, 'A', 3999);
	memcpy(big, "[Slice]\nCPUQuota=", 17);
	big[3999] = '\0';
	dbpoll_slice_parse(big, strlen(big), v);
	assert_string_equal(v[0], "200%");
	dbpoll_slice_parse("[Slice]\nCPUQuota=300%", 21, v);
	assert_string_equal(v[0], "300%");
	for (unsigned k = 0; k < DBPOLL_N_SLICE; k++)
		free(v[k]);
	free(big);
}

static void test_slice_diff(void **state)
{
	char *v1[DBPOLL_N_SLICE] = { "200%", "2G", "300" };
	char *v2[DBPOLL_N_SLICE] = { "200%", "4G", "600" };
	struct dbpoll_panel *a = panel_of(USERS, PLANS, DOMAINS, NULL, 1);
	struct dbpoll_panel *b = panel_of(USERS, PLANS, DOMAINS, a, 2);
	struct dbpoll_panel *q;
	struct dbpoll_admins *ad;
	const char *why;
	bool changed;
	json_t *evs, *ev, *lim, *doc;
	char *text;

	(void)state;
	dbpoll_panel_add_slice(a, 2001, "alice", v1);
	dbpoll_panel_add_slice(a, 9999, NULL, v1);
	dbpoll_panel_add_slice(b, 2001, "alice", v2);
	dbpoll_panel_add_slice(b, 9999, NULL, v2); /* no panel user: no event */
	dbpoll_panel_add_slice(b, 2003, "carol", v2); /* new: no event */
	evs = diff_events(a, b, &changed);
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_type"), "user.limits_changed");
	assert_string_equal(str(ev, "_subject"), "user:alice");
	assert_string_equal(str(ev, "origin"), "slice");
	assert_int_equal(json_integer_value(json_object_get(ev, "uid")), 2001);
	lim = json_object_get(ev, "limits");
	assert_int_equal(json_object_size(lim), 2);
	assert_string_equal(str(json_object_get(lim, "memory_max"), "old"), "2G");
	assert_string_equal(str(json_object_get(lim, "tasks_max"), "new"), "600");
	json_decref(evs);
	/* the slices survive the state file */
	text = dbpoll_state_dump(b, NULL, "x", NULL);
	doc = J(text);
	assert_int_equal(dbpoll_state_from_json(doc, &q, &ad, &why), 0);
	assert_false(dbpoll_diff_panel(b, q, NULL));
	evs = diff_events(q, a, &changed);
	assert_int_equal(json_array_size(evs), 1);
	json_decref(evs);
	json_decref(doc);
	free(text);
	dbpoll_panel_free(&q);
	dbpoll_panel_free(&a);
	dbpoll_panel_free(&b);
}

static struct dbpoll_panel *panel_pk(const char *rows,
				     const struct dbpoll_panel *prev)
{
	struct dbpoll_panel *p = panel_of(USERS, PLANS, DOMAINS, prev, 1);
	json_t *r = rows != NULL ? J(rows) : NULL;

	dbpoll_panel_set_passkeys(p, r);
	json_decref(r);
	return p;
}

static void test_passkeys(void **state)
{
	struct dbpoll_panel *none = panel_pk(NULL, NULL);
	struct dbpoll_panel *empty = panel_pk("[]", none);
	struct dbpoll_panel *one = panel_pk("[[2,1,1]]", empty);
	/* one removed, another added in the same poll */
	struct dbpoll_panel *swap = panel_pk("[[2,1,2]]", one);
	bool changed;
	json_t *evs, *ev;

	(void)state;
	evs = diff_events(none, empty, &changed); /* the table appears */
	assert_true(changed);
	assert_int_equal(json_array_size(evs), 0);
	json_decref(evs);
	evs = diff_events(empty, one, &changed);
	assert_int_equal(json_array_size(evs), 1);
	ev = json_array_get(evs, 0);
	assert_string_equal(str(ev, "_subject"), "user:bob");
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(ev, "changed"), 0)), "passkeys");
	assert_int_equal(json_integer_value(json_object_get(ev, "passkeys")), 1);
	json_decref(evs);
	evs = diff_events(one, swap, &changed);
	assert_int_equal(json_array_size(evs), 1);
	json_decref(evs);
	evs = diff_events(swap, swap, &changed);
	assert_false(changed);
	json_decref(evs);
	dbpoll_panel_free(&none);
	dbpoll_panel_free(&empty);
	dbpoll_panel_free(&one);
	dbpoll_panel_free(&swap);
}

static void test_state_json_malformed(void **state)
{
	struct dbpoll_panel *p;
	struct dbpoll_admins *a;
	const char *why = NULL;
	json_t *doc;

	(void)state;
	doc = J("{\"version\":2}");
	assert_int_equal(dbpoll_state_from_json(doc, &p, &a, &why), -EINVAL);
	assert_non_null(why);
	json_decref(doc);
	doc = J("{\"version\":1,\"panel\":{\"users\":[]}}");
	assert_int_equal(dbpoll_state_from_json(doc, &p, &a, &why), -EINVAL);
	json_decref(doc);
	doc = J("{\"version\":1,\"panel\":null,\"admins\":null}");
	assert_int_equal(dbpoll_state_from_json(doc, &p, &a, &why), 0);
	assert_null(p);
	assert_null(a);
	json_decref(doc);
}

static void test_state_dump_escapes(void **state)
{
	struct dbpoll_panel *p = panel_of(
		"[[1,\"alice\",1,\"a\\\"b\\\\c\\n\\u0001\u00e9\",null]]",
		"[[1,\"Plan \\\"gold\\\"\"]]", "[[\"alice-blog.example\",1]]",
		NULL, 1), *q;
	struct dbpoll_admins *a;
	const char *why;
	char *text = dbpoll_state_dump(p, NULL, "s\"rc", NULL);
	json_t *doc = J(text);

	(void)state;
	assert_string_equal(str(doc, "panel_source"), "s\"rc");
	assert_int_equal(dbpoll_state_from_json(doc, &q, &a, &why), 0);
	assert_false(dbpoll_diff_panel(p, q, NULL));
	assert_string_equal(((struct dbpoll_user *)hmap_get(q->users, "1"))->email,
			    "a\"b\\c\n\001\u00e9");
	assert_string_equal(dbpoll_owner_find(q, "alice-blog.example")->plan,
			    "Plan \"gold\"");
	json_decref(doc);
	free(text);
	dbpoll_panel_free(&p);
	dbpoll_panel_free(&q);
}

static void test_sql_readonly(void **state)
{
	const char *why;

	(void)state;
	assert_true(paneldb_sql_readonly("SELECT 1", &why));
	assert_true(paneldb_sql_readonly(" -- hi\n select * from users where "
					 "username = ? ;  ", &why));
	assert_true(paneldb_sql_readonly("SELECT 'into; update' AS x", &why));
	assert_false(paneldb_sql_readonly("DELETE FROM users", &why));
	assert_false(paneldb_sql_readonly("SELECT 1; DROP TABLE users", &why));
	assert_false(paneldb_sql_readonly("SELECT * INTO OUTFILE '/tmp/x' "
					  "FROM users", &why));
	assert_false(paneldb_sql_readonly("SELECT * FROM users FOR UPDATE",
					  &why));
	assert_false(paneldb_sql_readonly("SELECT * FROM users FOR SHARE",
					  &why));
	assert_false(paneldb_sql_readonly("SELECT LOAD_FILE('/etc/shadow')",
					  &why));
	assert_false(paneldb_sql_readonly("SELECT 'unterminated", &why));
	assert_false(paneldb_sql_readonly("SELECTx", &why));
	assert_false(paneldb_sql_readonly("PRAGMA table_info(users)", &why));
}

/* ---- tests: the SQLite driver and users.db ---- */

static void test_sqlite_fetch_panel(void **state)
{
	char *db = tmp_path("panel.db");
	struct paneldb_target t = { .path = db };
	struct paneldb_conn *c = NULL;
	struct dbpoll_panel *p = NULL;
	unsigned q = 0;
	char *err = NULL;
	json_t *rows, *cols, *params = J("[\"bob\"]");

	(void)state;
	sql_file(db, TOP_SRCDIR "/contrib/demo/panel.sql");
	assert_int_equal(paneldb_sqlite_driver.connect(&t, &c, &err), 0);
	assert_int_equal(dbpoll_fetch_panel(&paneldb_sqlite_driver, c, NULL,
					    1, &p, &q, &err), 0);
	assert_int_equal(q, 5); /* user_passkeys is not there: no retry */
	assert_int_equal(hmap_count(p->sites), 1);
	assert_int_equal(hmap_count(p->limits), 2);
	assert_string_equal(dbpoll_owner_find(p, "shop.example")->php, "8.3");
	assert_int_equal(hmap_count(p->users), 3);
	assert_int_equal(hmap_count(p->owners), 3);
	assert_string_equal(dbpoll_owner_find(p, "shop.example")->user,
			    "alice");
	/* parameters */
	assert_int_equal(paneldb_sqlite_driver.query(c,
		"SELECT id, email FROM users WHERE username = ?",
		params, &rows, &cols, &err), 0);
	json_decref(params);
	assert_int_equal(json_array_size(rows), 1);
	assert_int_equal(json_integer_value(json_array_get(
		json_array_get(rows, 0), 0)), 2);
	assert_string_equal(json_string_value(json_array_get(cols, 1)), "email");
	json_decref(rows);
	json_decref(cols);
	/* read-only */
	assert_true(paneldb_sqlite_driver.query(c, "DELETE FROM users", NULL,
						&rows, NULL, &err) < 0);
	assert_non_null(err);
	free(err);
	err = NULL;
	paneldb_sqlite_driver.close(&c);
	assert_null(c);
	dbpoll_panel_free(&p);
	/* missing file */
	t.path = "/nonexistent/panel.db";
	assert_int_equal(paneldb_sqlite_driver.connect(&t, &c, &err), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/panel.db"));
	free(err);
	free(db);
}

static const char *ADMIN_SCHEMA =
	"CREATE TABLE user (id INTEGER PRIMARY KEY, username TEXT UNIQUE NOT "
	"NULL, password_hash TEXT NOT NULL, role TEXT NOT NULL DEFAULT 'user', "
	"is_active BOOLEAN DEFAULT 1 NOT NULL, totp_enabled BOOLEAN DEFAULT 0);"
	"INSERT INTO user VALUES (1, 'root', 'x', 'admin', 1, 1);"
	"INSERT INTO user VALUES (2, 'helper', 'x', 'reseller', 1, 0);";

static struct dbpoll_admins *admins_read(const char *db)
{
	struct paneldb_target t = { .path = db };
	struct paneldb_conn *c = NULL;
	struct dbpoll_admins *a = NULL;
	char *err = NULL;

	assert_int_equal(paneldb_sqlite_driver.connect(&t, &c, &err), 0);
	if (dbpoll_fetch_admins(&paneldb_sqlite_driver, c, &a, &err) < 0)
		fail_msg("%s", err);
	paneldb_sqlite_driver.close(&c);
	return a;
}

static void test_admin_totp_off(void **state)
{
	char *db = tmp_path("users.db");
	struct dbpoll_admins *a, *b;
	struct dbpoll_events evs = { 0 };
	json_t *ev;

	(void)state;
	sql_exec(db, "PRAGMA journal_mode=WAL;");
	sql_exec(db, ADMIN_SCHEMA);
	a = admins_read(db);
	assert_int_equal(hmap_count(a->admins), 2);
	sql_exec(db, "UPDATE user SET totp_enabled = 0 WHERE username = 'root';"
		     "INSERT INTO user VALUES (3, 'eve', 'x', 'admin', 1, 0);"
		     "DELETE FROM user WHERE id = 2;");
	b = admins_read(db);
	assert_true(dbpoll_diff_admins(a, b, &evs));
	assert_int_equal(evs.n, 3);
	assert_string_equal(evs.v[0].type, "admin.changed");
	assert_string_equal(evs.v[0].subject, "admin:root");
	ev = evs.v[0].payload;
	assert_true(json_is_true(json_object_get(ev, "totp_disabled")));
	assert_true(json_is_false(json_object_get(ev, "totp_enabled")));
	assert_true(json_is_true(json_object_get(ev, "old_totp_enabled")));
	assert_string_equal(json_string_value(json_array_get(
		json_object_get(ev, "changed"), 0)), "totp_enabled");
	assert_string_equal(evs.v[1].type, "admin.removed");
	assert_string_equal(evs.v[2].type, "admin.added");
	assert_string_equal(str(evs.v[2].payload, "role"), "admin");
	dbpoll_events_clear(&evs);
	assert_false(dbpoll_diff_admins(b, b, &evs));
	assert_int_equal(evs.n, 0);
	dbpoll_admins_free(&a);
	dbpoll_admins_free(&b);
	free(db);
}

static void test_admin_tolerant_schema(void **state)
{
	char *db = tmp_path("users-old.db");
	struct dbpoll_admins *a, *b;
	struct dbpoll_events evs = { 0 };

	(void)state;
	/* OpenAdmin's original table: no 2FA column at all */
	sql_exec(db, "CREATE TABLE user (id INTEGER PRIMARY KEY, username TEXT "
		     "UNIQUE NOT NULL, password_hash TEXT NOT NULL, role TEXT NOT "
		     "NULL DEFAULT 'user', is_active BOOLEAN DEFAULT 1 NOT NULL);"
		     "INSERT INTO user VALUES (1, 'root', 'x', 'admin', 1);");
	a = admins_read(db);
	sql_exec(db, "UPDATE user SET is_active = 0, role = 'user';");
	b = admins_read(db);
	assert_true(dbpoll_diff_admins(a, b, &evs));
	assert_int_equal(evs.n, 1);
	assert_true(json_is_true(json_object_get(evs.v[0].payload,
						 "deactivated")));
	assert_null(json_object_get(evs.v[0].payload, "totp_enabled"));
	assert_int_equal(json_array_size(json_object_get(evs.v[0].payload,
							 "changed")), 2);
	dbpoll_events_clear(&evs);
	dbpoll_admins_free(&a);
	dbpoll_admins_free(&b);
	free(db);
}

/* ---- tests: the whole cycle with a fake engine ---- */

struct rig {
	uv_loop_t loop;
	struct config cfg;
	struct engine e;
	struct paneldb *p;
	char *panel_db, *admin_db;
};

static void rig_start(struct rig *r, unsigned poll_ms)
{
	const char *err = NULL;

	r->cfg.panel_db.driver = "sqlite";
	r->cfg.panel_db.path = r->panel_db;
	r->cfg.panel_db.admin_db = r->admin_db;
	r->cfg.panel_db.poll_ms = poll_ms;
	r->cfg.state_dir = tmpdir;
	r->e.cfg = &r->cfg;
	r->e.loop = &r->loop;
	if (r->e.journal == NULL)
		r->e.journal = json_array();
	assert_int_equal(paneldb_start(&r->e, NULL, &r->p, &err), 0);
}

/* Run the loop until `polls` more polls completed (cycle finished). */
static void rig_polls(struct rig *r, unsigned polls)
{
	uint64_t want = r->p->polls + polls;
	int64_t end = mono_ms() + 20000;

	while ((r->p->polls < want || r->p->busy) && mono_ms() < end)
		uv_run(&r->loop, UV_RUN_ONCE);
	assert_true(r->p->polls >= want);
}

static void rig_stop(struct rig *r)
{
	paneldb_stop(&r->p);
	assert_null(r->p);
	uv_run(&r->loop, UV_RUN_DEFAULT);
}

static size_t journal_count(struct rig *r, const char *type,
			    const char *subject)
{
	size_t i, n = 0;
	json_t *ev;

	json_array_foreach(r->e.journal, i, ev) {
		if (strcmp(str(ev, "type"), type) == 0 &&
		    (subject == NULL || strcmp(str(ev, "subject"), subject) == 0))
			n++;
	}
	return n;
}

static void test_cycle(void **state)
{
	struct rig r = { 0 };
	json_t *rows = NULL, *ev, *params = J("[3]");
	char *err = NULL, *sf;
	size_t i;

	(void)state;
	assert_int_equal(uv_loop_init(&r.loop), 0);
	r.panel_db = tmp_path("cycle-panel.db");
	r.admin_db = tmp_path("cycle-users.db");
	sql_file(r.panel_db, TOP_SRCDIR "/contrib/demo/panel.sql");
	sql_exec(r.admin_db, ADMIN_SCHEMA);
	rig_start(&r, 10);
	rig_polls(&r, 1);
	/* baseline: no events, state saved */
	assert_int_equal(json_array_size(r.e.journal), 0);
	sf = tmp_path("paneldb.json");
	assert_int_equal(access(sf, F_OK), 0);
	/* unchanged SQLite files are not queried again */
	uint64_t q0 = r.p->queries;
	rig_polls(&r, 3);
	assert_int_equal(r.p->queries, q0);

	/* a user without domains suspended; a plan changed; 2FA off */
	sql_exec(r.panel_db,
		 "UPDATE users SET username = 'SUSPENDED_20261128120000_carol' "
		 "WHERE id = 3; UPDATE users SET plan_id = 2 WHERE id = 1;");
	sql_exec(r.admin_db, "UPDATE user SET totp_enabled = 0 WHERE id = 1");
	/* the first journal write fails: nothing is committed, so the next
	 * poll emits the lost events again; the others once */
	r.e.fail_next = 1;
	rig_polls(&r, 3);
	assert_int_equal(journal_count(&r, "user.suspended", "user:carol"), 1);
	assert_int_equal(journal_count(&r, "user.plan_changed", "user:alice"), 1);
	assert_int_equal(journal_count(&r, "admin.changed", "admin:root"), 1);
	json_array_foreach(r.e.journal, i, ev) {
		assert_string_equal(str(ev, "source"), "db");
		if (strcmp(str(ev, "type"), "admin.changed") == 0)
			assert_true(json_is_true(json_object_get(
				json_object_get(ev, "payload"), "totp_disabled")));
	}

	/* domain deleted rows-first: enrichment still names the owner */
	sql_exec(r.panel_db, "DELETE FROM domains WHERE domain_id = 3");
	rig_polls(&r, 2);
	ev = json_object();
	r.e.enrich(ev, "domain.removed", "bob-site.example", r.e.enrich_ctx);
	assert_string_equal(str(ev, "user"), "bob");
	json_decref(ev);

	/* paneldb_query: rows as objects; writes refused */
	assert_int_equal(paneldb_query(r.p, "SELECT id, username FROM users "
				       "WHERE id = ?", params, &rows, &err), 0);
	json_decref(params);
	assert_int_equal(json_array_size(rows), 1);
	assert_string_equal(str(json_array_get(rows, 0), "username"),
			    "SUSPENDED_20261128120000_carol");
	json_decref(rows);
	assert_int_equal(paneldb_query(r.p, "DELETE FROM users", NULL, &rows,
				       &err), -EPERM);
	assert_non_null(err);
	free(err);
	rig_stop(&r);

	/* restart: nothing re-emitted; a change made while down is seen */
	size_t before = json_array_size(r.e.journal);
	sql_exec(r.panel_db, "UPDATE users SET username = 'carol' WHERE id = 3;"
		 "INSERT INTO users (id, username, password, email, plan_id) "
		 "VALUES (4, 'dave', 'x', 'dave@example.net', 1);");
	rig_start(&r, 10);
	ev = json_object();
	r.e.enrich(ev, "domain.removed", "bob-site.example", r.e.enrich_ctx);
	assert_string_equal(str(ev, "user"), "bob");
	json_decref(ev);
	rig_polls(&r, 2);
	assert_int_equal(json_array_size(r.e.journal), before + 2);
	assert_int_equal(journal_count(&r, "user.unsuspended", "user:carol"), 1);
	assert_int_equal(journal_count(&r, "user.added", "user:dave"), 1);

	/* the panel DB disappears and comes back: logged, nothing lost */
	char *away = tmp_path("cycle-panel.away");
	assert_int_equal(rename(r.panel_db, away), 0);
	rig_polls(&r, 1);
	assert_true(r.p->lost);
	sql_exec(away, "DELETE FROM users WHERE id = 4");
	assert_int_equal(rename(away, r.panel_db), 0);
	rig_polls(&r, 2);
	assert_false(r.p->lost);
	assert_int_equal(journal_count(&r, "user.removed", "user:dave"), 1);
	assert_int_equal(json_array_size(r.e.journal), before + 3);
	rig_stop(&r);

	/* another panel DB configured: the saved snapshot is no base */
	char *other = tmp_path("cycle-other.db");
	sql_exec(other, "CREATE TABLE users (id INTEGER, username TEXT, "
		 "plan_id INTEGER, email TEXT, server TEXT); CREATE TABLE plans "
		 "(id INTEGER, name TEXT); CREATE TABLE domains (domain_url TEXT, "
		 "user_id INTEGER);");
	char *orig = r.panel_db;
	r.panel_db = other;
	rig_start(&r, 10);
	assert_null(r.p->panel);
	assert_non_null(r.p->admins);
	rig_polls(&r, 1);
	assert_int_equal(json_array_size(r.e.journal), before + 3);
	/* an older schema (no password, php_version, limits, sites): read
	 * with the first columns, a baseline without them */
	for (int k = 0; k < 5 && r.p->panel == NULL; k++)
		rig_polls(&r, 1); /* a poll that failed is tried again */
	assert_non_null(r.p->panel);
	assert_null(r.p->panel->sites);
	rig_stop(&r);
	r.panel_db = orig;
	free(other);

	free(away);
	free(sf);
	free(r.panel_db);
	free(r.admin_db);
	json_decref(r.e.journal);
	assert_int_equal(uv_loop_close(&r.loop), 0);
}

/* A domain event for a domain the map does not know yet starts a poll
 * now (not at the next interval), so the events after it are enriched. */
static void test_kick_unknown_domain(void **state)
{
	struct rig r = { 0 };
	json_t *ev;
	int64_t t0;

	(void)state;
	assert_int_equal(uv_loop_init(&r.loop), 0);
	r.panel_db = tmp_path("kick-panel.db");
	sql_file(r.panel_db, TOP_SRCDIR "/contrib/demo/panel.sql");
	rig_start(&r, 600000); /* 10 minutes: only a kick polls again */
	rig_polls(&r, 1);
	sql_exec(r.panel_db, "INSERT INTO domains (domain_id, docroot, "
		 "domain_url, user_id) VALUES (9, '/x', 'carol-new.example', 3)");
	ev = J("{\"domain\":\"carol-new.example\"}");
	r.e.enrich(ev, "domain.added", "carol-new.example", r.e.enrich_ctx);
	assert_null(json_object_get(ev, "user"));
	json_decref(ev);
	t0 = mono_ms();
	rig_polls(&r, 1);
	assert_true(mono_ms() - t0 < 20000);
	ev = J("{\"domain\":\"carol-new.example\"}");
	r.e.enrich(ev, "cert.issued", "carol-new.example", r.e.enrich_ctx);
	assert_string_equal(str(ev, "user"), "carol");
	json_decref(ev);
	rig_stop(&r);
	free(r.panel_db);
	json_decref(r.e.journal);
	assert_int_equal(uv_loop_close(&r.loop), 0);
}

static void test_start_bad_driver(void **state)
{
	struct rig r = { 0 };
	const char *err = NULL;

	(void)state;
	assert_int_equal(uv_loop_init(&r.loop), 0);
	r.cfg.panel_db.driver = "oracle";
	r.cfg.state_dir = tmpdir;
	r.e.cfg = &r.cfg;
	r.e.loop = &r.loop;
	assert_int_equal(paneldb_start(&r.e, NULL, &r.p, &err), -EINVAL);
	assert_non_null(strstr(err, "panel_db.driver"));
	assert_null(r.p);
	assert_int_equal(uv_loop_close(&r.loop), 0);
}

/* paneldb_on_contexts: the sorted, distinct contexts at once, then only
 * when they change. */
struct ctx_rec {
	unsigned calls;
	char text[256];
};

static void ctx_record(const char *const *contexts, size_t n, void *arg)
{
	struct ctx_rec *rec = arg;

	rec->calls++;
	rec->text[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		strncat(rec->text, contexts[i],
			sizeof(rec->text) - strlen(rec->text) - 2);
		strcat(rec->text, ",");
	}
}

static void test_contexts(void **state)
{
	struct paneldb p = { 0 };
	struct ctx_rec rec = { 0 };

	(void)state;
	paneldb_on_contexts(&p, ctx_record, &rec); /* no snapshot yet */
	assert_int_equal(rec.calls, 0);
	p.panel = panel_of("[[1,\"alice\",1,\"a@x.net\",\"zed\"],"
			   " [2,\"bob\",2,\"b@x.net\",null],"
			   " [3,\"carol\",1,\"c@x.net\",\"alice\"],"
			   " [4,\"dup\",1,\"d@x.net\",\"zed\"]]",
			   PLANS, "[]", NULL, 0);
	paneldb_on_contexts(&p, ctx_record, &rec);
	assert_int_equal(rec.calls, 1);
	assert_string_equal(rec.text, "alice,zed,");
	paneldb_tell_contexts(&p, false); /* same set: not told */
	assert_int_equal(rec.calls, 1);
	dbpoll_panel_free(&p.panel);
	p.panel = panel_of("[[1,\"alice\",1,\"a@x.net\",\"zed\"]]", PLANS,
			   "[]", NULL, 0);
	paneldb_tell_contexts(&p, false);
	assert_int_equal(rec.calls, 2);
	assert_string_equal(rec.text, "zed,");
	paneldb_on_contexts(&p, NULL, NULL);
	dbpoll_panel_free(&p.panel);
	p.panel = panel_of("[]", PLANS, "[]", NULL, 0);
	paneldb_tell_contexts(&p, false); /* nobody asks */
	assert_int_equal(rec.calls, 2);
	dbpoll_panel_free(&p.panel);
	for (size_t i = 0; i < p.n_ctx_told; i++)
		free(p.ctx_told[i]);
	free(p.ctx_told);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_username),
		cmocka_unit_test(test_enrich_map),
		cmocka_unit_test(test_user_suspended_no_domains),
		cmocka_unit_test(test_user_updated),
		cmocka_unit_test(test_php_changed),
		cmocka_unit_test(test_sites),
		cmocka_unit_test(test_plan_limits),
		cmocka_unit_test(test_passkeys),
		cmocka_unit_test(test_slice_parse),
		cmocka_unit_test(test_slice_diff),
		cmocka_unit_test(test_plan_added_removed),
		cmocka_unit_test(test_domain_rows_first),
		cmocka_unit_test(test_bad_rows),
		cmocka_unit_test(test_state_json_malformed),
		cmocka_unit_test(test_state_dump_escapes),
		cmocka_unit_test(test_sql_readonly),
		cmocka_unit_test(test_sqlite_fetch_panel),
		cmocka_unit_test(test_admin_totp_off),
		cmocka_unit_test(test_admin_tolerant_schema),
		cmocka_unit_test(test_cycle),
		cmocka_unit_test(test_kick_unknown_domain),
		cmocka_unit_test(test_start_bad_driver),
		cmocka_unit_test(test_contexts),
	};

	log_set_level(LOG_ERROR_L);
	return cmocka_run_group_tests(tests, setup_tmp, teardown_tmp);
}
