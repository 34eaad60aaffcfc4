/* Unit tests: the caddy plugin's blame rules (plugins/caddy/blame.c): site
 * addresses, candidates and their order, the site-address rule, full-path
 * message matching, confirmation and bisection, the last good record. */
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

#include "../../plugins/caddy/blame.c"

/* ---- helpers ---- */

static char **addrs_of(const char *text, size_t *n_r)
{
	char **v = NULL;

	assert_int_equal(blame_addresses_parse(text, strlen(text), &v, n_r), 0);
	return v;
}

/* Assert the addresses of text are exactly the NULL-terminated list. */
static void expect_addrs(const char *text, ...)
{
	va_list ap;
	size_t n, i = 0;
	char **v = addrs_of(text, &n);
	const char *want;

	va_start(ap, text);
	while ((want = va_arg(ap, const char *)) != NULL) {
		assert_true(i < n);
		assert_string_equal(v[i], want);
		i++;
	}
	va_end(ap);
	assert_int_equal(n, i);
	blame_strv_free(v, n);
}

/* A set built by hand: conf "name" in /d, changed at ctime, content hash,
 * addresses from a Caddyfile fragment. */
static struct blame_set *set_new(void)
{
	struct blame_set *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->confs = calloc(64, sizeof(*s->confs));
	assert_non_null(s->confs);
	return s;
}

static void set_add(struct blame_set *s, const char *name, time_t ctime,
		    uint64_t hash, const char *text)
{
	struct blame_conf *cf = &s->confs[s->n++];

	cf->name = strdup(name);
	assert_true(asprintf(&cf->path, "/d/%s", name) > 0);
	cf->ctime.tv_sec = ctime;
	cf->mtime.tv_sec = ctime;
	cf->hash = hash;
	assert_int_equal(blame_addresses_parse(text, strlen(text), &cf->addrs,
					       &cf->n_addrs), 0);
	qsort(s->confs, s->n, sizeof(*s->confs), blame_conf_cmp_path);
}

static size_t idx_of(const struct blame_set *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->confs[i].name, name) == 0)
			return i;
	}
	fail_msg("no conf %s", name);
	return SIZE_MAX;
}

static const char *const prefixes[] = { "/d", "/etc/caddy/domains", NULL };

/* ---- site addresses ---- */

static void test_addresses(void **state)
{
	(void)state;
	expect_addrs("a.test {\n\ttls internal\n}\n", "a.test", NULL);
	/* several keys, case, nested blocks are not sites */
	expect_addrs("A.Test, www.a.test {\n\troute {\n\t\tinner.test {\n"
		     "\t\t}\n\t}\n}\n", "a.test", "www.a.test", NULL);
	/* keys go on to the next line after a trailing comma */
	expect_addrs("a.test,\nb.test,c.test {\n}\n", "a.test", "b.test",
		     "c.test", NULL);
	/* https:// and :443 are the defaults; http:// is another site */
	expect_addrs("https://c.test:443 http://c.test c.test:8443 {\n}\n",
		     "c.test", "http://c.test", "c.test:8443", NULL);
	/* snippets, named routes and the global options are not sites */
	expect_addrs("{\n\tadmin off\n}\n(common) {\n\tlog\n}\n&(app) {\n"
		     "\trespond hi\n}\nd.test {\n\timport common\n}\n",
		     "d.test", NULL);
	/* comments; a brace in quotes closes nothing */
	expect_addrs("# x.test {\n#}\ne.test { # a comment {\n\trespond \"}\" 200\n"
		     "\trespond `{ }`\n}\nf.test {\n}\n", "e.test", "f.test", NULL);
	/* an import line before a site is not a key */
	expect_addrs("import /etc/caddy/deny/bob.ips\ng.test {\n}\n", "g.test",
		     NULL);
	/* the same site twice in one conf counts once */
	expect_addrs("h.test {\n}\nh.test {\n}\n", "h.test", NULL);
	/* a brace glued to a key is part of the key, as in Caddy */
	expect_addrs("i.test{\n", NULL);
	expect_addrs("", NULL);
	expect_addrs("victim.test.conf:12 {\n}\n", "victim.test.conf:12", NULL);
}

/* ---- candidates ---- */

static void test_candidates(void **state)
{
	struct blame_set *good = set_new(), *cur = set_new();
	size_t *idx = NULL, n;

	(void)state;
	set_add(good, "a.test.conf", 100, 11, "a.test {\n}\n");
	set_add(good, "b.test.conf", 100, 12, "b.test {\n}\n");
	set_add(good, "c.test.conf", 100, 13, "c.test {\n}\n");
	/* a unchanged (even with a new ctime), b changed, c gone, d and e
	 * new at the same time, f unreadable */
	set_add(cur, "a.test.conf", 900, 11, "a.test {\n}\n");
	set_add(cur, "b.test.conf", 300, 99, "b.test {\n}\n");
	set_add(cur, "d.test.conf", 500, 14, "d.test {\n}\n");
	set_add(cur, "e.test.conf", 500, 15, "e.test {\n}\n");
	set_add(cur, "f.test.conf", 200, 0, "");
	blame_mark_changed(cur, good);
	assert_false(cur->confs[idx_of(cur, "a.test.conf")].changed);
	n = blame_candidates(cur, &idx);
	assert_int_equal(n, 4);
	/* newest change first, ties by name */
	assert_string_equal(cur->confs[idx[0]].name, "d.test.conf");
	assert_string_equal(cur->confs[idx[1]].name, "e.test.conf");
	assert_string_equal(cur->confs[idx[2]].name, "b.test.conf");
	assert_string_equal(cur->confs[idx[3]].name, "f.test.conf");
	free(idx);

	/* no record: everything is a candidate */
	blame_mark_changed(cur, NULL);
	n = blame_candidates(cur, &idx);
	assert_int_equal(n, 5);
	assert_string_equal(cur->confs[idx[0]].name, "a.test.conf");
	free(idx);

	/* nothing changed: none */
	blame_mark_changed(good, good);
	assert_int_equal(blame_candidates(good, &idx), 0);
	assert_null(idx);
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* ---- the site-address rule ---- */

/* Issue 16 finding 10: one new conf repeats six served sites.  It sorts
 * first and even claims an older change time: it is still the one. */
static void test_duplicate_six(void **state)
{
	struct blame_set *good = set_new(), *cur = set_new();
	size_t conf, owner;
	const char *addr;
	char name[32], text[64];

	(void)state;
	for (int i = 1; i <= 6; i++) {
		snprintf(name, sizeof(name), "v%d.test.conf", i);
		snprintf(text, sizeof(text), "v%d.test {\n}\n", i);
		set_add(good, name, 500, (uint64_t)i, text);
		set_add(cur, name, 500, (uint64_t)i, text);
	}
	set_add(cur, "a-cust.test.conf", 10, 77,
		"cust.test, v1.test {\n}\nv2.test v3.test {\n}\nv4.test {\n}\n"
		"https://v5.test {\n}\nV6.TEST:443 {\n}\n");
	blame_mark_changed(cur, good);
	assert_true(blame_duplicate(cur, good, &conf, &owner, &addr));
	assert_string_equal(cur->confs[conf].name, "a-cust.test.conf");
	assert_string_equal(cur->confs[owner].name, "v1.test.conf");
	assert_string_equal(addr, "v1.test");

	/* the same after a victim was edited (changed, kept its site) */
	cur->confs[idx_of(cur, "v1.test.conf")].hash = 1234;
	cur->confs[idx_of(cur, "v1.test.conf")].ctime.tv_sec = 9000;
	blame_mark_changed(cur, good);
	assert_true(blame_duplicate(cur, good, &conf, &owner, &addr));
	assert_string_equal(cur->confs[conf].name, "a-cust.test.conf");
	assert_string_equal(cur->confs[owner].name, "v1.test.conf");

	/* and blame_find takes it without validating anything */
	struct blame_result res;
	const char *error = NULL;

	assert_int_equal(blame_find(cur, good, "ambiguous site definition: v1.test",
				    prefixes, NULL, NULL, true, &res, &error), 0);
	assert_int_equal(res.how, BLAME_DUPLICATE);
	assert_string_equal(cur->confs[res.conf].name, "a-cust.test.conf");
	assert_int_equal(res.validations, 0);
	blame_set_free(&good);
	blame_set_free(&cur);
}

static void test_duplicate_new_pair(void **state)
{
	struct blame_set *good = set_new(), *cur = set_new();
	size_t conf, owner;
	const char *addr;

	(void)state;
	set_add(good, "a.test.conf", 100, 1, "a.test {\n}\n");
	set_add(cur, "a.test.conf", 100, 1, "a.test {\n}\n");
	/* two new confs claim x.test: the one that changed first keeps it */
	set_add(cur, "z-first.test.conf", 200, 2, "x.test {\n}\n");
	set_add(cur, "b-second.test.conf", 300, 3, "x.test {\n}\n");
	blame_mark_changed(cur, good);
	assert_true(blame_duplicate(cur, good, &conf, &owner, &addr));
	assert_string_equal(cur->confs[conf].name, "b-second.test.conf");
	assert_string_equal(cur->confs[owner].name, "z-first.test.conf");
	assert_string_equal(addr, "x.test");

	/* no record at all: the older change keeps it too */
	blame_mark_changed(cur, NULL);
	assert_true(blame_duplicate(cur, NULL, &conf, &owner, &addr));
	assert_string_equal(cur->confs[conf].name, "b-second.test.conf");

	/* no duplicate: none */
	blame_set_free(&cur);
	cur = set_new();
	set_add(cur, "a.test.conf", 100, 1, "a.test {\n}\n");
	set_add(cur, "b.test.conf", 100, 2, "http://a.test b.test {\n}\n");
	blame_mark_changed(cur, good);
	assert_false(blame_duplicate(cur, good, &conf, &owner, &addr));
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* A conf that had the address in the last good set and changed keeps it;
 * an unchanged conf is never the one to blame. */
static void test_duplicate_had_it(void **state)
{
	struct blame_set *good = set_new(), *cur = set_new();
	size_t conf, owner;
	const char *addr;

	(void)state;
	set_add(good, "old.test.conf", 100, 1, "old.test www.old.test {\n}\n");
	set_add(cur, "old.test.conf", 900, 2, "old.test www.old.test {\n}\n");
	set_add(cur, "new.test.conf", 50, 3, "www.old.test {\n}\n");
	blame_mark_changed(cur, good);
	assert_true(blame_duplicate(cur, good, &conf, &owner, &addr));
	assert_string_equal(cur->confs[conf].name, "new.test.conf");
	assert_string_equal(addr, "www.old.test");
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* ---- Caddy's message ---- */

static void test_message_match(void **state)
{
	struct blame_set *good = set_new(), *cur = set_new();
	size_t conf = SIZE_MAX;

	(void)state;
	set_add(good, "victim.test.conf", 100, 1, "victim.test {\n}\n");
	set_add(cur, "victim.test.conf", 100, 1, "victim.test {\n}\n");
	set_add(cur, "evil.test.conf", 200, 2, "evil.test {\n}\n");
	set_add(cur, "b.test.conf", 300, 3, "b.test {\n}\n");
	blame_mark_changed(cur, good);

	assert_true(blame_message_match(cur, "adapting config using caddyfile: "
					"/d/b.test.conf:3: unrecognized directive: "
					"bogus", prefixes, &conf));
	assert_string_equal(cur->confs[conf].name, "b.test.conf");
	/* the container's path, in a parse error */
	assert_true(blame_message_match(cur, "parsing caddyfile tokens for "
					"'route': /etc/caddy/domains/evil.test.conf:12"
					" - Error during parsing", prefixes, &conf));
	assert_string_equal(cur->confs[conf].name, "evil.test.conf");
	assert_true(blame_message_match(cur, "x '/d/b.test.conf:1' y", prefixes,
					&conf));
	/* base names are never enough */
	assert_false(blame_message_match(cur, "parsing: b.test.conf:12 - bad",
					 prefixes, &conf));
	/* a site address crafted to look like a location */
	assert_false(blame_message_match(cur, "ambiguous site definition: "
					 "victim.test.conf:12", prefixes, &conf));
	/* the full path of an unchanged conf is never matched */
	assert_false(blame_message_match(cur, "/d/victim.test.conf:3: "
					 "unrecognized directive: x", prefixes,
					 &conf));
	/* a path inside a longer one, or no line number */
	assert_false(blame_message_match(cur, "/x/d/b.test.conf:3: bad", prefixes,
					 &conf));
	assert_false(blame_message_match(cur, "/d/b.test.conf: bad", prefixes,
					 &conf));
	assert_false(blame_message_match(cur, "/d/b.test.confx:3: bad", prefixes,
					 &conf));
	/* a directive named like another changed conf's location: the
	 * real location comes first */
	assert_true(blame_message_match(cur, "adapting config using caddyfile: "
					"/d/evil.test.conf:2: unrecognized directive:"
					" /d/b.test.conf:3", prefixes, &conf));
	assert_string_equal(cur->confs[conf].name, "evil.test.conf");
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* ---- confirmation and bisection, with a fake validator ---- */

/* Valid unless an included conf is "bad", or two included confs are both
 * "clash" (they only break together); "base_bad" breaks everything. */
struct fake {
	const struct blame_set *cur;
	const char *bad[4];
	const char *clash[2];
	bool base_bad;
	unsigned calls;
};

static bool fake_is(const char *const *list, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++) {
		if (list[i] != NULL && strcmp(list[i], name) == 0)
			return true;
	}
	return false;
}

static int fake_validate(void *ud, const bool *include, char **msg_r)
{
	struct fake *f = ud;
	unsigned clashes = 0;

	f->calls++;
	*msg_r = NULL;
	if (f->base_bad) {
		*msg_r = strdup("Caddyfile:3: bad global option");
		return 1;
	}
	for (size_t i = 0; i < f->cur->n; i++) {
		if (!include[i])
			continue;
		if (fake_is(f->bad, 4, f->cur->confs[i].name)) {
			assert_true(asprintf(msg_r, "%s:2: unrecognized directive",
					     f->cur->confs[i].path) > 0);
			return 1;
		}
		clashes += fake_is(f->clash, 2, f->cur->confs[i].name);
	}
	if (clashes == 2) {
		*msg_r = strdup("redeclaration of previously declared snippet");
		return 1;
	}
	return 0;
}

static struct blame_set *find_set(struct blame_set **good_r)
{
	struct blame_set *good = set_new(), *cur = set_new();
	char name[32], text[64];

	for (int i = 0; i < 8; i++) {
		snprintf(name, sizeof(name), "old%d.test.conf", i);
		snprintf(text, sizeof(text), "old%d.test {\n}\n", i);
		set_add(good, name, 100, (uint64_t)i + 1, text);
		set_add(cur, name, 100, (uint64_t)i + 1, text);
	}
	set_add(cur, "n1.test.conf", 201, 901, "n1.test {\n}\n");
	set_add(cur, "n2.test.conf", 202, 902, "n2.test {\n}\n");
	set_add(cur, "n3.test.conf", 203, 903, "n3.test {\n}\n");
	set_add(cur, "n4.test.conf", 204, 904, "n4.test {\n}\n");
	blame_mark_changed(cur, good);
	*good_r = good;
	return cur;
}

static void test_find_newest(void **state)
{
	struct blame_set *good, *cur = find_set(&good);
	struct fake f = { .cur = cur, .bad = { "n4.test.conf" } };
	struct blame_result res;
	const char *error = NULL;

	(void)state;
	/* a message naming no file: the newest change, confirmed */
	assert_int_equal(blame_find(cur, good, "ambiguous site definition: z",
				    prefixes, fake_validate, &f, true, &res,
				    &error), 0);
	assert_int_equal(res.how, BLAME_NEWEST);
	assert_string_equal(cur->confs[res.conf].name, "n4.test.conf");
	assert_int_equal(res.validations, 1);

	/* a message naming it by full path: confirmed the same way */
	assert_int_equal(blame_find(cur, good, "/d/n4.test.conf:2: x", prefixes,
				    fake_validate, &f, true, &res, &error), 0);
	assert_int_equal(res.how, BLAME_MESSAGE);
	assert_string_equal(cur->confs[res.conf].name, "n4.test.conf");
	assert_int_equal(res.validations, 1);

	/* without a validator: only unconfirmed message locations */
	assert_int_equal(blame_find(cur, good, "/d/n4.test.conf:2: x", prefixes,
				    NULL, NULL, true, &res, &error), 0);
	assert_int_equal(res.how, BLAME_MESSAGE_UNCONFIRMED);
	assert_int_equal(blame_find(cur, good, "ambiguous: x", prefixes, NULL, NULL,
				    true, &res, &error), -ENOENT);
	assert_non_null(strstr(error, "{caddyfile}"));
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* The message names a changed conf that is not at fault (a crafted
 * location): not confirmed, bisection finds the real one. */
static void test_find_crafted(void **state)
{
	struct blame_set *good, *cur = find_set(&good);
	struct fake f = { .cur = cur, .bad = { "n2.test.conf" } };
	struct blame_result res;
	const char *error = NULL;

	(void)state;
	assert_int_equal(blame_find(cur, good, "ambiguous site definition: "
				    "/d/n3.test.conf:1", prefixes, fake_validate,
				    &f, true, &res, &error), 0);
	assert_int_equal(res.how, BLAME_BISECT);
	assert_string_equal(cur->confs[res.conf].name, "n2.test.conf");
	/* without n3, without n4, the unchanged ones, then log2(4) */
	assert_int_equal(res.validations, 5);
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* Two changes that only break together: the later one goes. */
static void test_find_clash(void **state)
{
	struct blame_set *good, *cur = find_set(&good);
	struct fake f = { .cur = cur, .clash = { "n3.test.conf", "n1.test.conf" } };
	struct blame_result res;
	const char *error = NULL;

	(void)state;
	assert_int_equal(blame_find(cur, good, "redeclaration", prefixes,
				    fake_validate, &f, true, &res, &error), 0);
	assert_int_equal(res.how, BLAME_BISECT);
	assert_string_equal(cur->confs[res.conf].name, "n3.test.conf");
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* Two broken changes: one per call, each confirmed. */
static void test_find_two_bad(void **state)
{
	struct blame_set *good, *cur = find_set(&good);
	struct fake f = { .cur = cur, .bad = { "n1.test.conf", "n3.test.conf" } };
	struct blame_result res;
	const char *error = NULL;

	(void)state;
	assert_int_equal(blame_find(cur, good, "/d/n1.test.conf:2: x", prefixes,
				    fake_validate, &f, true, &res, &error), 0);
	assert_int_equal(res.how, BLAME_BISECT);
	assert_string_equal(cur->confs[res.conf].name, "n1.test.conf");
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* The fault is not in any change: nothing is blamed. */
static void test_find_elsewhere(void **state)
{
	struct blame_set *good, *cur = find_set(&good);
	struct fake f = { .cur = cur, .base_bad = true };
	struct blame_result res;
	const char *error = NULL;

	(void)state;
	assert_int_equal(blame_find(cur, good, "Caddyfile:3: bad global option",
				    prefixes, fake_validate, &f, true, &res,
				    &error), -ENOENT);
	assert_non_null(strstr(error, "the fault is elsewhere"));
	/* nothing changed: nothing can be blamed, nothing validated */
	f.calls = 0;
	assert_int_equal(blame_find(good, good, "/d/old1.test.conf:2: x",
				    prefixes, fake_validate, &f, true, &res,
				    &error), -ENOENT);
	assert_int_equal(f.calls, 0);
	assert_non_null(strstr(error, "no domain conf changed"));
	/* a refused load of a config that validates: no conf's fault */
	f.base_bad = false;
	assert_int_equal(blame_find(cur, good, "listen tcp :80: address in use",
				    prefixes, fake_validate, &f, false, &res,
				    &error), -ENOENT);
	assert_non_null(strstr(error, "validates as a whole"));
	blame_set_free(&good);
	blame_set_free(&cur);
}

/* ---- the folder scan and the record ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char *p = NULL;
	FILE *f;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	free(p);
}

static void test_scan_record(void **state)
{
	char dir[] = "/tmp/ophook-blame.XXXXXX", *rec = NULL, *sub = NULL;
	struct blame_set *cur = NULL, *good = NULL, *again = NULL;
	const char *error = NULL;

	(void)state;
	assert_non_null(mkdtemp(dir));
	write_file(dir, "b.test.conf", "b.test www.b.test {\n}\n");
	write_file(dir, "a.test.conf", "a.test {\n}\n");
	write_file(dir, "notes.txt", "c.test {\n}\n");
	assert_true(asprintf(&sub, "%s/sub.conf", dir) > 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(blame_scan(dir, "*.conf", &cur, &error), 0);
	assert_int_equal(cur->n, 2);
	assert_string_equal(cur->confs[0].name, "a.test.conf");
	assert_string_equal(cur->confs[1].name, "b.test.conf");
	assert_int_equal(cur->confs[1].n_addrs, 2);
	assert_true(cur->confs[0].hash != 0);

	/* saved and loaded back: the same paths, hashes, addresses */
	assert_true(asprintf(&rec, "%s/lastgood.json", sub) > 0);
	assert_int_equal(blame_record_load(rec, &good, &error), 0);
	assert_null(good); /* no record yet */
	assert_int_equal(blame_record_save(rec, cur, &error), 0);
	assert_int_equal(blame_record_load(rec, &good, &error), 0);
	assert_non_null(good);
	assert_int_equal(good->n, 2);
	assert_string_equal(good->confs[1].path, cur->confs[1].path);
	assert_string_equal(good->confs[1].name, "b.test.conf");
	assert_true(good->confs[1].hash == cur->confs[1].hash);
	assert_string_equal(good->confs[1].addrs[1], "www.b.test");

	/* one conf edited, one added: those two changed */
	write_file(dir, "b.test.conf", "b.test {\n\tlog\n}\n");
	write_file(dir, "c.test.conf", "c.test {\n}\n");
	assert_int_equal(blame_scan(dir, "*.conf", &again, &error), 0);
	blame_mark_changed(again, good);
	assert_false(again->confs[0].changed);
	assert_true(again->confs[1].changed);
	assert_true(again->confs[2].changed);

	/* a damaged record is refused */
	write_file(sub, "lastgood.json", "{\"version\": 7}");
	blame_set_free(&good);
	assert_int_equal(blame_record_load(rec, &good, &error), -EINVAL);
	assert_null(good);
	write_file(sub, "lastgood.json", "{not json");
	assert_int_equal(blame_record_load(rec, &good, &error), -EINVAL);

	blame_set_free(&cur);
	blame_set_free(&again);
	free(rec);
	assert_true(asprintf(&rec, "rm -rf '%s'", dir) > 0);
	assert_int_equal(system(rec), 0);
	free(rec);
	free(sub);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_candidates),
		cmocka_unit_test(test_duplicate_six),
		cmocka_unit_test(test_duplicate_new_pair),
		cmocka_unit_test(test_duplicate_had_it),
		cmocka_unit_test(test_message_match),
		cmocka_unit_test(test_find_newest),
		cmocka_unit_test(test_find_crafted),
		cmocka_unit_test(test_find_clash),
		cmocka_unit_test(test_find_two_bad),
		cmocka_unit_test(test_find_elsewhere),
		cmocka_unit_test(test_scan_record),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
