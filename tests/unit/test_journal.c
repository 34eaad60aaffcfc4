/* Unit tests for core/journal/journal.c on its SQLite backend.  The .c
 * files are included to reach the SQLite handle (PRAGMA max_page_count
 * stands in for a full disk). */
#include "../../core/journal/journal.c"
#include "../../core/journal/journal_sqlite.c"

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

/* The SQLite handle of a journal opened by test_open. */
#define DB(j) (journal_sqlite_of(j)->db)

static int test_open(const char *path, bool sync_full, struct journal **j_r,
		     const char **error_r)
{
	struct journal_settings s = { .path = path, .sync_full = sync_full };

	return journal_open(&s, j_r, error_r);
}

struct fixture {
	char dir[64];
	char path[96];
};

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	snprintf(fx->dir, sizeof(fx->dir), "%s/test_journal.XXXXXX",
		 tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/journal.db", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	DIR *d = opendir(fx->dir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char p[512];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(fx->dir);
	free(fx);
	return 0;
}

static struct journal *open_ok(const struct fixture *fx, bool sync_full)
{
	struct journal *j = NULL;
	const char *error = NULL;
	int ret = test_open(fx->path, sync_full, &j, &error);

	if (ret != 0)
		fail_msg("journal_open: %s", error);
	assert_non_null(j);
	return j;
}

static int64_t append_ok(struct journal *j, const char *type,
			 const char *subject, int64_t time_ms,
			 const char *payload)
{
	struct journal_event ev = {
		.type = type,
		.subject = subject,
		.source = "inotify",
		.node = "n1",
		.time_ms = time_ms,
		.payload = payload,
	};
	const char *error = NULL;

	if (journal_append(j, &ev, &error) != 0)
		fail_msg("journal_append: %s", error);
	assert_true(ev.id > 0);
	return ev.id;
}

static void add_ok(struct journal *j, int64_t id, const char *handler)
{
	const char *error = NULL;

	if (journal_delivery_add(j, id, handler, &error) != 0)
		fail_msg("journal_delivery_add: %s", error);
}

static void update_ok(struct journal *j, int64_t id, const char *handler,
		      enum delivery_state st, unsigned attempts,
		      const char *last_error)
{
	struct journal_delivery d = {
		.event_id = id,
		.handler = handler,
		.state = st,
		.attempts = attempts,
		.next_ms = st == DELIVERY_FAILED ? 12345 : 0,
		.last_error = last_error,
		.duration_us = 77,
	};
	const char *error = NULL;

	if (journal_delivery_update(j, &d, &error) != 0)
		fail_msg("journal_delivery_update: %s", error);
}

static void begin_ok(struct journal *j)
{
	const char *error = NULL;

	if (journal_begin(j, &error) != 0)
		fail_msg("journal_begin: %s", error);
}

static void commit_ok(struct journal *j)
{
	const char *error = NULL;

	if (journal_commit(j, &error) != 0)
		fail_msg("journal_commit: %s", error);
}

static json_t *get_ok(struct journal *j, int64_t id)
{
	json_t *ev = NULL;
	const char *error = NULL;

	if (journal_get_event(j, id, &ev, &error) != 0)
		fail_msg("journal_get_event %lld: %s", (long long)id, error);
	return ev;
}

static void test_state_names(void **state)
{
	enum delivery_state st;

	(void)state;
	for (int i = DELIVERY_PENDING; i <= DELIVERY_DISCARDED; i++) {
		assert_int_equal(delivery_state_parse(
					 delivery_state_name(
						 (enum delivery_state)i),
					 &st),
				 0);
		assert_int_equal(st, i);
	}
	assert_string_equal(delivery_state_name(DELIVERY_FAILED), "failed");
	assert_string_equal(delivery_state_name(DELIVERY_DISCARDED),
			    "discarded");
	assert_int_equal(delivery_state_parse("Done", &st), -EINVAL);
	assert_int_equal(delivery_state_parse("", &st), -EINVAL);
}

static void test_append_deliveries(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	struct stat stbuf;
	int64_t id1, id2;
	json_t *ev, *ds, *d;

	assert_int_equal(journal_last_id(j), 0);
	begin_ok(j);
	id1 = append_ok(j, "domain.added", "example.com", 1767322245678,
			"{\"domain\":\"example.com\",\"user\":\"bob\"}");
	add_ok(j, id1, "caddy");
	add_ok(j, id1, "bind9");
	id2 = append_ok(j, "user.added", "bob", 0, NULL);
	commit_ok(j);
	assert_true(id2 > id1);
	assert_int_equal(journal_last_id(j), id2);

	/* a duplicate delivery row is refused */
	const char *error = NULL;
	assert_int_equal(journal_delivery_add(j, id1, "caddy", &error),
			 -EEXIST);
	assert_non_null(strstr(error, "delivery add"));

	ev = get_ok(j, id1);
	assert_int_equal(json_integer_value(json_object_get(ev, "id")), id1);
	assert_string_equal(json_string_value(json_object_get(ev, "type")),
			    "domain.added");
	assert_string_equal(json_string_value(json_object_get(ev, "subject")),
			    "example.com");
	assert_string_equal(json_string_value(json_object_get(ev, "source")),
			    "inotify");
	assert_string_equal(json_string_value(json_object_get(ev, "node")),
			    "n1");
	assert_string_equal(json_string_value(json_object_get(ev, "time")),
			    "2026-01-02T02:50:45.678Z");
	assert_int_equal(json_integer_value(json_object_get(ev, "time_ms")),
			 1767322245678);
	assert_true(json_is_object(json_object_get(ev, "payload")));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(ev, "payload"), "user")),
			    "bob");
	ds = json_object_get(ev, "deliveries");
	assert_int_equal(json_array_size(ds), 2);
	d = json_array_get(ds, 0); /* by handler name */
	assert_string_equal(json_string_value(json_object_get(d, "handler")),
			    "bind9");
	assert_string_equal(json_string_value(json_object_get(d, "state")),
			    "pending");
	assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 0);
	assert_true(json_is_null(json_object_get(d, "last_error")));
	json_decref(ev);

	/* time 0 means now; NULL payload is {} */
	ev = get_ok(j, id2);
	assert_true(json_integer_value(json_object_get(ev, "time_ms")) >
		    now_ms() - 60000);
	assert_int_equal(json_object_size(json_object_get(ev, "payload")), 0);
	assert_int_equal(json_array_size(json_object_get(ev, "deliveries")),
			 0);
	json_decref(ev);

	/* an event needs a type */
	struct journal_event bad = { .type = NULL };
	assert_int_equal(journal_append(j, &bad, &error), -EINVAL);

	journal_close(&j);
	assert_null(j);
	journal_close(&j); /* safe on NULL */

	/* the journal is not world-readable */
	assert_int_equal(stat(fx->path, &stbuf), 0);
	assert_int_equal(stbuf.st_mode & 077, 0);
}

static void test_commit_reopen(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, true);
	const char *error = NULL;
	json_t *ev = NULL;
	int64_t kept, dropped, autoc;

	begin_ok(j);
	kept = append_ok(j, "domain.added", "a.example", 1000, "{}");
	add_ok(j, kept, "caddy");
	commit_ok(j);

	begin_ok(j);
	assert_int_equal(journal_begin(j, &error), -EINPROGRESS);
	dropped = append_ok(j, "domain.added", "b.example", 2000, "{}");
	add_ok(j, dropped, "caddy");
	journal_rollback(j);
	assert_int_equal(journal_commit(j, &error), -EINVAL);
	assert_int_equal(journal_get_event(j, dropped, &ev, &error), -ENOENT);
	assert_null(ev);

	/* SQLite rolled the transaction back by itself (as it may after
	 * SQLITE_FULL or SQLITE_IOERR): nothing is committed piecemeal */
	begin_ok(j);
	append_ok(j, "domain.added", "c.example", 2500, "{}");
	assert_int_equal(sqlite3_exec(DB(j), "ROLLBACK", NULL, NULL, NULL),
			 SQLITE_OK);
	struct journal_event lost = { .type = "domain.added" };
	assert_int_equal(journal_append(j, &lost, &error), -EIO);
	assert_non_null(strstr(error, "rolled back"));
	assert_int_equal(journal_commit(j, &error), -EIO);
	assert_int_equal(journal_last_id(j), kept);
	begin_ok(j); /* usable again */
	journal_rollback(j);

	/* autocommit outside a transaction */
	autoc = append_ok(j, "domain.removed", "a.example", 3000, "{}");
	add_ok(j, autoc, "caddy");
	update_ok(j, autoc, "caddy", DELIVERY_DONE, 1, NULL);
	journal_close(&j);

	j = open_ok(fx, false);
	ev = get_ok(j, kept);
	assert_int_equal(json_array_size(json_object_get(ev, "deliveries")),
			 1);
	json_decref(ev);
	assert_int_equal(journal_last_id(j), autoc);
	ev = get_ok(j, autoc);
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(ev, "deliveries"), 0),
			"state")),
		"done");
	json_decref(ev);
	journal_close(&j);
}

/* A results-only transaction commits at synchronous = NORMAL; an event
 * never does: the next journal_begin sets FULL again, and an append in a
 * results transaction is refused. */
static int sync_mode(struct journal *j)
{
	sqlite3_stmt *st;
	int mode = -1;

	assert_int_equal(sqlite3_prepare_v2(DB(j), "PRAGMA synchronous", -1,
					    &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		mode = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return mode;
}

static void test_results_tx(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, true);
	const char *error = NULL;
	int64_t a, b;

	assert_int_equal(sync_mode(j), 2); /* FULL */
	begin_ok(j);
	a = append_ok(j, "domain.added", "a.example", 1000, "{}");
	add_ok(j, a, "caddy");
	commit_ok(j);

	assert_int_equal(journal_begin_results(j, &error), 0);
	assert_int_equal(sync_mode(j), 1); /* NORMAL */
	struct journal_event ev = { .type = "domain.added",
				    .subject = "x.example" };
	assert_int_equal(journal_append(j, &ev, &error), -EINVAL);
	assert_non_null(strstr(error, "results only"));
	update_ok(j, a, "caddy", DELIVERY_DONE, 1, NULL);
	commit_ok(j);
	/* a second one stays at NORMAL, a rollback ends it too */
	assert_int_equal(journal_begin_results(j, &error), 0);
	journal_rollback(j);
	assert_int_equal(sync_mode(j), 1);

	begin_ok(j);
	assert_int_equal(sync_mode(j), 2); /* FULL again for events */
	b = append_ok(j, "domain.added", "b.example", 2000, "{}");
	add_ok(j, b, "caddy");
	commit_ok(j);
	journal_close(&j);

	j = open_ok(fx, false);
	json_t *got = get_ok(j, a);
	assert_string_equal(
		json_string_value(json_object_get(
			json_array_get(json_object_get(got, "deliveries"), 0),
			"state")),
		"done");
	json_decref(got);
	assert_int_equal(journal_last_id(j), b);
	journal_close(&j);
}

struct pending_seen {
	size_t n;
	int64_t ids[8192];
	char handlers[8192][8];
	int states[8192];
	struct journal *update; /* mark each row done while loading */
	size_t stop_after;
};

static int pending_cb(const struct journal_event *ev,
		      const struct journal_delivery *d, void *ctx)
{
	struct pending_seen *s = ctx;

	assert_true(s->n < 8192);
	assert_int_equal(ev->id, d->event_id);
	assert_non_null(ev->type);
	assert_non_null(ev->payload);
	s->ids[s->n] = ev->id;
	snprintf(s->handlers[s->n], sizeof(s->handlers[0]), "%s", d->handler);
	s->states[s->n] = d->state;
	s->n++;
	if (s->update != NULL)
		update_ok(s->update, d->event_id, d->handler, DELIVERY_DONE,
			  d->attempts + 1, NULL);
	if (s->stop_after != 0 && s->n == s->stop_after)
		return 1;
	return 0;
}

/* One handler's backlog: its rows only, pending and failed (not done,
 * not dead), in id order from first_id on, across pages, with callbacks
 * that write to the journal; a callback's stop; the query uses the
 * backlog index. */
static void test_load_pending_handler(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	struct pending_seen *s = xcalloc(1, sizeof(*s));
	const char *error = NULL;
	int64_t first = 0, mid = 0;
	sqlite3_stmt *st;
	bool indexed = false;

	begin_ok(j);
	for (int i = 0; i < 1500; i++) {
		int64_t e = append_ok(j, "user.added", "u", 5000 + i, "{}");

		if (i == 0)
			first = e;
		if (i == 700)
			mid = e;
		add_ok(j, e, "slow");
		add_ok(j, e, "fast");
	}
	commit_ok(j);
	update_ok(j, first, "slow", DELIVERY_DONE, 1, NULL);
	update_ok(j, first + 1, "slow", DELIVERY_DEAD, 8, "gave up");
	update_ok(j, first + 2, "slow", DELIVERY_FAILED, 2, "boom");
	update_ok(j, first + 3, "fast", DELIVERY_DONE, 1, NULL);

	s->update = j;
	assert_int_equal(journal_load_pending_handler(j, "slow", 0, pending_cb,
						      s, &error), 0);
	assert_int_equal(s->n, 1498);
	assert_int_equal(s->ids[0], first + 2);
	assert_int_equal(s->states[0], DELIVERY_FAILED);
	for (size_t i = 0; i < s->n; i++) {
		assert_string_equal(s->handlers[i], "slow");
		if (i > 0 && s->ids[i] <= s->ids[i - 1])
			fail_msg("row %zu out of order", i);
	}
	/* the callback marked them done; fast's rows are all there */
	memset(s, 0, sizeof(*s));
	assert_int_equal(journal_load_pending_handler(j, "slow", 0, pending_cb,
						      s, &error), 0);
	assert_int_equal(s->n, 0);
	assert_int_equal(journal_load_pending_handler(j, "fast", mid,
						      pending_cb, s, &error),
			 0);
	assert_int_equal(s->n, 800);
	assert_int_equal(s->ids[0], mid);
	memset(s, 0, sizeof(*s));
	s->stop_after = 3;
	assert_int_equal(journal_load_pending_handler(j, "fast", 0, pending_cb,
						      s, &error), 0);
	assert_int_equal(s->n, 3);
	assert_int_equal(journal_load_pending_handler(j, "", 0, pending_cb, s,
						      &error), -EINVAL);

	/* one handler's rows through the backlog index, not a walk of all */
	assert_int_equal(sqlite3_prepare_v2(DB(j),
		"EXPLAIN QUERY PLAN "
		"SELECT d.event_id FROM deliveries d JOIN events e"
		" ON e.id = d.event_id WHERE d.handler = 'x'"
		" AND d.state <> 1 AND d.state <> 3 AND d.event_id >= 1"
		" ORDER BY d.event_id LIMIT 10", -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		if (strstr((const char *)sqlite3_column_text(st, 3),
			   "deliveries_backlog") != NULL)
			indexed = true;
	sqlite3_finalize(st);
	assert_true(indexed);

	free(s);
	journal_close(&j);
}

static void test_load_pending_order(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	struct pending_seen *s = xcalloc(1, sizeof(*s));
	const char *error = NULL;
	int64_t id[4];

	begin_ok(j);
	for (int i = 0; i < 4; i++) {
		id[i] = append_ok(j, "domain.updated", "x.example", 1000 + i,
				  "{\"k\":1}");
		add_ok(j, id[i], "zz");
		add_ok(j, id[i], "aa");
	}
	commit_ok(j);
	update_ok(j, id[0], "aa", DELIVERY_DONE, 1, NULL);
	update_ok(j, id[1], "zz", DELIVERY_FAILED, 2, "timeout");
	update_ok(j, id[2], "aa", DELIVERY_DEAD, 5, "gave up");
	update_ok(j, id[2], "zz", DELIVERY_DONE, 1, NULL);

	assert_int_equal(journal_load_pending(j, pending_cb, s, &error), 0);
	/* id0:zz  id1:aa id1:zz(failed)  id3:aa id3:zz */
	assert_int_equal(s->n, 5);
	assert_int_equal(s->ids[0], id[0]);
	assert_string_equal(s->handlers[0], "zz");
	assert_int_equal(s->ids[1], id[1]);
	assert_string_equal(s->handlers[1], "aa");
	assert_int_equal(s->ids[2], id[1]);
	assert_string_equal(s->handlers[2], "zz");
	assert_int_equal(s->states[2], DELIVERY_FAILED);
	assert_int_equal(s->ids[3], id[3]);
	assert_string_equal(s->handlers[3], "aa");
	assert_int_equal(s->ids[4], id[3]);
	assert_string_equal(s->handlers[4], "zz");

	/* a callback's non-zero stops the walk */
	memset(s, 0, sizeof(*s));
	s->stop_after = 2;
	assert_int_equal(journal_load_pending(j, pending_cb, s, &error), 0);
	assert_int_equal(s->n, 2);

	/* more rows than a page, with callbacks that write to the journal:
	 * each row once, in order */
	begin_ok(j);
	for (int i = 0; i < 1500; i++) {
		int64_t e = append_ok(j, "user.added", "u", 5000 + i, "{}");

		add_ok(j, e, "h2");
		add_ok(j, e, "h1");
		if (i % 3 == 0)
			update_ok(j, e, "h1", DELIVERY_DONE, 1, NULL);
	}
	commit_ok(j);
	memset(s, 0, sizeof(*s));
	s->update = j;
	assert_int_equal(journal_load_pending(j, pending_cb, s, &error), 0);
	assert_int_equal(s->n, 5 + 1500 + 1000);
	for (size_t i = 1; i < s->n; i++) {
		bool ordered = s->ids[i] > s->ids[i - 1] ||
			       (s->ids[i] == s->ids[i - 1] &&
				strcmp(s->handlers[i], s->handlers[i - 1]) > 0);
		if (!ordered)
			fail_msg("row %zu out of order", i);
	}
	/* all marked done by the callback: nothing left */
	memset(s, 0, sizeof(*s));
	assert_int_equal(journal_load_pending(j, pending_cb, s, &error), 0);
	assert_int_equal(s->n, 0);

	free(s);
	journal_close(&j);
}

static int64_t counts_get(json_t *c, const char *a, const char *b,
			  const char *k)
{
	json_t *o = json_object_get(c, a);

	if (b != NULL)
		o = json_object_get(o, b);
	if (k != NULL)
		o = json_object_get(o, k);
	assert_true(json_is_integer(o));
	return json_integer_value(o);
}

static void test_update_counts(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	const char *error = NULL;
	json_t *c = NULL, *ev;
	int64_t a, b;

	begin_ok(j);
	a = append_ok(j, "domain.added", "a.example", 1000, "{}");
	b = append_ok(j, "domain.added", "b.example", 1001, "{}");
	add_ok(j, a, "caddy");
	add_ok(j, a, "bind9");
	add_ok(j, b, "caddy");
	add_ok(j, b, "bind9");
	commit_ok(j);
	update_ok(j, a, "caddy", DELIVERY_DONE, 1, NULL);
	update_ok(j, a, "bind9", DELIVERY_FAILED, 1, "rndc: connection refused");
	update_ok(j, b, "bind9", DELIVERY_DEAD, 8, "no zone");

	ev = get_ok(j, a);
	json_t *d = json_array_get(json_object_get(ev, "deliveries"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "handler")),
			    "bind9");
	assert_string_equal(json_string_value(json_object_get(d, "state")),
			    "failed");
	assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 1);
	assert_int_equal(json_integer_value(json_object_get(d, "next_ms")),
			 12345);
	assert_int_equal(json_integer_value(json_object_get(d, "duration_us")),
			 77);
	assert_string_equal(json_string_value(json_object_get(d, "last_error")),
			    "rndc: connection refused");
	json_decref(ev);

	/* NULL last_error clears it */
	update_ok(j, a, "bind9", DELIVERY_DONE, 2, NULL);
	ev = get_ok(j, a);
	d = json_array_get(json_object_get(ev, "deliveries"), 0);
	assert_true(json_is_null(json_object_get(d, "last_error")));
	json_decref(ev);

	struct journal_delivery none = { .event_id = 999, .handler = "caddy" };
	assert_int_equal(journal_delivery_update(j, &none, &error), -ENOENT);
	assert_non_null(strstr(error, fx->path));

	assert_int_equal(journal_counts(j, &c, &error), 0);
	assert_int_equal(counts_get(c, "events", NULL, NULL), 2);
	assert_int_equal(counts_get(c, "last_id", NULL, NULL), b);
	assert_int_equal(counts_get(c, "deliveries", "done", NULL), 2);
	assert_int_equal(counts_get(c, "deliveries", "pending", NULL), 1);
	assert_int_equal(counts_get(c, "deliveries", "failed", NULL), 0);
	assert_int_equal(counts_get(c, "deliveries", "dead", NULL), 1);
	assert_int_equal(counts_get(c, "handlers", "caddy", "done"), 1);
	assert_int_equal(counts_get(c, "handlers", "caddy", "pending"), 1);
	assert_int_equal(counts_get(c, "handlers", "caddy", "dead"), 0);
	assert_int_equal(counts_get(c, "handlers", "bind9", "dead"), 1);
	assert_int_equal(counts_get(c, "handlers", "bind9", "done"), 1);
	json_decref(c);
	journal_close(&j);
}

/* The ids of a query result, as "1,2,3". */
static char *query_ids(struct journal *j, const struct journal_filter *f)
{
	const char *error = NULL;
	json_t *arr = NULL, *ev;
	size_t i;
	char *out = xstrdup("");

	if (journal_query(j, f, &arr, &error) != 0)
		fail_msg("journal_query: %s", error);
	assert_true(json_is_array(arr));
	json_array_foreach (arr, i, ev) {
		char *n = xasprintf(
			"%s%s%lld", out, i > 0 ? "," : "",
			(long long)json_integer_value(json_object_get(ev, "id")));
		free(out);
		out = n;
	}
	json_decref(arr);
	return out;
}

#define assert_query(j, expect, ...)                                   \
	do {                                                           \
		struct journal_filter f_ = { __VA_ARGS__ };            \
		char *got_ = query_ids(j, &f_);                        \
		assert_string_equal(got_, expect);                     \
		free(got_);                                            \
	} while (0)

static void test_query_filters(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	const char *error = NULL;
	json_t *arr = NULL;

	begin_ok(j);
	/* ids 1..6 */
	append_ok(j, "domain.added", "a.example", 1000, "{\"n\":1}");
	append_ok(j, "domain.removed", "a.example", 2000, "{}");
	append_ok(j, "user.added", "bob", 3000, "{\"user\":\"bob\"}");
	append_ok(j, "cert.issued", "a.example", 4000, "{}");
	append_ok(j, "domain.added", "b.example", 5000, "{\"user\":\"alice\"}");
	append_ok(j, "domainXadded", "c.example", 6000, "{}");
	add_ok(j, 1, "caddy");
	add_ok(j, 3, "caddy");
	add_ok(j, 3, "log");
	add_ok(j, 5, "caddy");
	commit_ok(j);
	update_ok(j, 3, "log", DELIVERY_FAILED, 1, "x");
	update_ok(j, 1, "caddy", DELIVERY_DONE, 1, NULL);

	assert_query(j, "1,2,3,4,5,6", .limit = 0);
	assert_query(j, "1,2,5", .type = "domain.*");
	assert_query(j, "1,3,5", .type = "*.added");
	assert_query(j, "1,2,3,4,5,6", .type = "*");
	assert_query(j, "4", .type = "cert.issued");
	assert_query(j, "", .type = "domain?added"); /* '?' is literal */
	assert_query(j, "", .type = "[d]omain.added");
	assert_query(j, "1,2,4", .subject = "a.example");
	assert_query(j, "", .subject = "A.EXAMPLE");
	assert_query(j, "2", .type = "domain.*", .subject = "a.example",
		     .since_ms = 1500);
	assert_query(j, "3", .state = "failed");
	assert_query(j, "3,5", .state = "pending");
	assert_query(j, "1", .state = "done");
	assert_query(j, "", .state = "dead");
	assert_query(j, "4,5,6", .since_ms = 4000);
	assert_query(j, "5,6", .after_id = 4);
	assert_query(j, "4,5,6", .limit = 3);
	/* the console's filters: user, time range, pages back by id */
	assert_query(j, "3", .user = "bob");
	assert_query(j, "5", .user = "alice");
	assert_query(j, "", .user = "carol");
	assert_query(j, "1,2", .until_ms = 3000);
	assert_query(j, "2,3", .since_ms = 2000, .until_ms = 4000);
	assert_query(j, "1,2,3", .before_id = 4);
	assert_query(j, "2,3", .before_id = 4, .limit = 2);
	assert_query(j, "1,2", .subject = "a.example", .before_id = 4);
	assert_query(j, "3", .type = "*.added", .before_id = 5, .since_ms = 2000);
	assert_query(j, "1,2", .subject = "a.example", .limit = 2,
		     .since_ms = 0, .after_id = 0, .type = "domain.*");

	struct journal_filter bad = { .state = "stuck" };
	assert_int_equal(journal_query(j, &bad, &arr, &error), -EINVAL);
	assert_non_null(strstr(error, "stuck"));

	/* NULL filter: everything, shaped like get_event */
	assert_int_equal(journal_query(j, NULL, &arr, &error), 0);
	assert_int_equal(json_array_size(arr), 6);
	json_t *first = json_array_get(arr, 0);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(first, "payload"), "n")),
			 1);
	assert_int_equal(
		json_array_size(json_object_get(first, "deliveries")), 1);
	assert_non_null(json_object_get(first, "time"));
	json_decref(arr);
	journal_close(&j);
}

/* Subject queries walk the id buckets of the subject index. */
static void test_query_subject_buckets(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	const int n = 3 * (1 << JOURNAL_SUBJECT_SHIFT) + 100;

	begin_ok(j);
	for (int i = 1; i <= n; i++) {
		char subj[16];

		snprintf(subj, sizeof(subj), "d%d", i % 1000);
		assert_int_equal(append_ok(j, i % 2 ? "odd.x" : "even.x", subj,
					   i, "{}"),
				 i);
	}
	commit_ok(j);
	/* d7: ids 7, 1007, ... 12007; one per 1000 */
	assert_query(j, "10007,11007,12007", .subject = "d7", .limit = 3);
	assert_query(j, "7,1007,2007,3007,4007,5007,6007,7007,8007,9007,"
			"10007,11007,12007",
		     .subject = "d7");
	assert_query(j, "4007,5007,6007,7007,8007,9007,10007,11007,12007",
		     .subject = "d7", .since_ms = 3500, .limit = 20,
		     .type = "odd.*");
	assert_query(j, "", .subject = "d7", .type = "even.*");
	assert_query(j, "6007,7007,8007,9007,10007,11007,12007",
		     .subject = "d7", .after_id = 5007,
		     .limit = 20, .since_ms = 0, .type = NULL);
	assert_query(j, "12008", .subject = "d8", .after_id = 7500,
		     .limit = 1, .since_ms = 0, .type = "even.*");
	assert_query(j, "", .subject = "d8", .state = "pending");
	assert_query(j, "", .subject = "nope");
	journal_close(&j);
}

static void test_get_event_enoent(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	const char *error = NULL;
	json_t *ev = NULL;
	char *expect;

	assert_int_equal(journal_get_event(j, 42, &ev, &error), -ENOENT);
	assert_null(ev);
	expect = xasprintf("%s: get event: no event 42", fx->path);
	assert_string_equal(error, expect);
	free(expect);
	journal_close(&j);
}

static void test_prune(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	const char *error = NULL;
	unsigned deleted = 99;
	int64_t done_old, pending_old, failed_old, bare_old, new_done, last;
	json_t *c = NULL, *ev = NULL;

	begin_ok(j);
	done_old = append_ok(j, "a.b", "s", 1000, "{}");
	add_ok(j, done_old, "h1");
	add_ok(j, done_old, "h2");
	pending_old = append_ok(j, "a.b", "s", 1001, "{}");
	add_ok(j, pending_old, "h1");
	add_ok(j, pending_old, "h2");
	failed_old = append_ok(j, "a.b", "s", 1002, "{}");
	add_ok(j, failed_old, "h1");
	bare_old = append_ok(j, "a.b", "s", 1003, "{}");
	/* a chunk and a bit of prunable events */
	for (int i = 0; i < 1234; i++) {
		int64_t e = append_ok(j, "bulk.done", "s", 1100 + i % 7, "{}");

		add_ok(j, e, "h1");
		update_ok(j, e, "h1", DELIVERY_DONE, 1, NULL);
	}
	new_done = append_ok(j, "a.b", "s", 9000, "{}");
	add_ok(j, new_done, "h1");
	/* the newest event is old and done, but ids must never be reused */
	last = append_ok(j, "a.b", "s", 1004, "{}");
	commit_ok(j);
	update_ok(j, done_old, "h1", DELIVERY_DONE, 1, NULL);
	update_ok(j, done_old, "h2", DELIVERY_DONE, 1, NULL);
	update_ok(j, pending_old, "h1", DELIVERY_DONE, 1, NULL);
	update_ok(j, failed_old, "h1", DELIVERY_FAILED, 1, "x");
	update_ok(j, new_done, "h1", DELIVERY_DONE, 1, NULL);

	assert_int_equal(journal_prune(j, 5000, &deleted, &error), 0);
	assert_int_equal(deleted, 1 + 1 + 1234);
	assert_int_equal(journal_get_event(j, done_old, &ev, &error), -ENOENT);
	assert_int_equal(journal_get_event(j, bare_old, &ev, &error), -ENOENT);
	json_decref(get_ok(j, pending_old));
	json_decref(get_ok(j, failed_old));
	json_decref(get_ok(j, new_done));
	json_decref(get_ok(j, last));
	assert_int_equal(journal_last_id(j), last);

	assert_int_equal(journal_counts(j, &c, &error), 0);
	assert_int_equal(counts_get(c, "events", NULL, NULL), 4);
	/* the deliveries went with their events */
	assert_int_equal(counts_get(c, "deliveries", "done", NULL), 2);
	assert_int_equal(counts_get(c, "deliveries", "pending", NULL), 1);
	assert_int_equal(counts_get(c, "deliveries", "failed", NULL), 1);
	json_decref(c);

	/* nothing more to do; a later event gets a fresh id */
	assert_int_equal(journal_prune(j, 5000, &deleted, &error), 0);
	assert_int_equal(deleted, 0);
	assert_true(append_ok(j, "a.b", "s", 1, "{}") > last);

	/* inside the caller's transaction, and undone with it */
	begin_ok(j);
	assert_int_equal(journal_prune(j, 100000, &deleted, &error), 0);
	assert_int_equal(deleted, 2); /* new_done, last */
	journal_rollback(j);
	json_decref(get_ok(j, new_done));
	journal_close(&j);
}

static int count_pending(const struct journal_event *ev,
			 const struct journal_delivery *d, void *ctx)
{
	(void)ev;
	(void)d;
	(*(unsigned *)ctx)++;
	return 0;
}

/* A discarded delivery is kept, counted, never loaded again, and pruned
 * like a done one. */
static void test_discarded(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	const char *error = NULL;
	unsigned deleted = 99, n = 0;
	int64_t a, b, last;
	json_t *c = NULL, *ev = NULL, *evs = NULL;
	struct journal_filter f = { .state = "discarded" };

	begin_ok(j);
	a = append_ok(j, "a.b", "s", 1000, "{}");
	add_ok(j, a, "h1");
	add_ok(j, a, "h2");
	b = append_ok(j, "a.b", "s", 1001, "{}");
	add_ok(j, b, "h1");
	last = append_ok(j, "a.b", "s", 9000, "{}");
	commit_ok(j);
	update_ok(j, a, "h1", DELIVERY_DONE, 1, NULL);
	update_ok(j, a, "h2", DELIVERY_DISCARDED, 3, "gave up");
	update_ok(j, b, "h1", DELIVERY_DISCARDED, 0, NULL);

	assert_int_equal(journal_load_pending(j, count_pending, &n, &error), 0);
	assert_int_equal(n, 0);
	n = 0;
	assert_int_equal(journal_load_pending_handler(j, "h2", 1, count_pending,
						      &n, &error),
			 0);
	assert_int_equal(n, 0);
	ev = get_ok(j, a);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_object_get(ev,
								   "deliveries"),
						   1),
				    "state")),
			    "discarded");
	json_decref(ev);
	assert_int_equal(journal_query(j, &f, &evs, &error), 0);
	assert_int_equal(json_array_size(evs), 2);
	json_decref(evs);
	assert_int_equal(journal_counts(j, &c, &error), 0);
	assert_int_equal(counts_get(c, "deliveries", "discarded", NULL), 2);
	assert_int_equal(counts_get(c, "handlers", "h2", "discarded"), 1);
	json_decref(c);

	assert_int_equal(journal_prune(j, 5000, &deleted, &error), 0);
	assert_int_equal(deleted, 2);
	assert_int_equal(journal_get_event(j, a, &ev, &error), -ENOENT);
	json_decref(get_ok(j, last));
	journal_close(&j);
}

/* An attempt result: update_ok with started_ms and an error of its own. */
static void attempt_ok(struct journal *j, int64_t id, const char *handler,
		       enum delivery_state st, unsigned attempt,
		       int64_t started_ms, const char *err)
{
	struct journal_delivery d = {
		.event_id = id, .handler = handler, .state = st,
		.attempts = attempt, .last_error = err, .duration_us = attempt,
		.started_ms = started_ms,
	};
	const char *error = NULL;

	if (journal_delivery_update(j, &d, &error) != 0)
		fail_msg("journal_delivery_update: %s", error);
}

static json_t *attempts_log(json_t *ev, const char *handler)
{
	size_t i;
	json_t *d;

	json_array_foreach(json_object_get(ev, "deliveries"), i, d) {
		if (strcmp(json_string_value(json_object_get(d, "handler")),
			   handler) == 0)
			return json_object_get(d, "attempts_log");
	}
	fail_msg("no delivery to %s", handler);
	return NULL;
}

/* Every attempt is kept with its own error, the last
 * JOURNAL_ATTEMPTS_KEEP per delivery, written in the results transaction
 * (a rollback drops it), and pruned with its event; an update that is no
 * attempt (started_ms 0: retry, discard) adds none. */
static void test_attempts(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, false);
	const char *error = NULL;
	unsigned deleted = 0;
	int64_t a, last;
	json_t *ev, *log, *at;
	char msg[32];

	begin_ok(j);
	a = append_ok(j, "a.b", "s", 1000, "{}");
	add_ok(j, a, "h1");
	add_ok(j, a, "h2");
	last = append_ok(j, "a.b", "s", 9000, "{}");
	commit_ok(j);
	assert_int_equal(journal_begin_results(j, &error), 0);
	attempt_ok(j, a, "h1", DELIVERY_FAILED, 1, 5000, "first");
	attempt_ok(j, a, "h1", DELIVERY_DEAD, 2, 6000, "second");
	commit_ok(j);
	/* a retry: back to pending, no attempt */
	update_ok(j, a, "h1", DELIVERY_PENDING, 0, "second");
	/* rolled back with its transaction */
	assert_int_equal(journal_begin_results(j, &error), 0);
	attempt_ok(j, a, "h1", DELIVERY_FAILED, 1, 6500, "lost");
	journal_rollback(j);
	attempt_ok(j, a, "h1", DELIVERY_DONE, 1, 7000, NULL);

	ev = get_ok(j, a);
	log = attempts_log(ev, "h1");
	assert_int_equal(json_array_size(log), 3);
	at = json_array_get(log, 0);
	assert_int_equal(json_integer_value(json_object_get(at, "attempt")), 1);
	assert_int_equal(json_integer_value(json_object_get(at, "started_ms")),
			 5000);
	assert_string_equal(json_string_value(json_object_get(at, "error")),
			    "first");
	at = json_array_get(log, 1);
	assert_string_equal(json_string_value(json_object_get(at, "error")),
			    "second");
	at = json_array_get(log, 2);
	assert_int_equal(json_integer_value(json_object_get(at, "attempt")), 1);
	assert_true(json_is_null(json_object_get(at, "error")));
	assert_int_equal(json_array_size(attempts_log(ev, "h2")), 0);
	json_decref(ev);

	/* the cap: the last JOURNAL_ATTEMPTS_KEEP of h2's 30 */
	for (unsigned i = 1; i <= 30; i++) {
		snprintf(msg, sizeof(msg), "fail %u", i);
		attempt_ok(j, a, "h2", DELIVERY_FAILED, i, 10000 + i, msg);
	}
	ev = get_ok(j, a);
	log = attempts_log(ev, "h2");
	assert_int_equal(json_array_size(log), JOURNAL_ATTEMPTS_KEEP);
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(log, 0), "error")),
			    "fail 11");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(log, JOURNAL_ATTEMPTS_KEEP - 1),
				    "error")),
			    "fail 30");
	json_decref(ev);

	/* pruned with the event */
	update_ok(j, a, "h2", DELIVERY_DISCARDED, 30, "fail 30");
	assert_int_equal(journal_prune(j, 5000, &deleted, &error), 0);
	assert_int_equal(deleted, 1);
	{
		int64_t n = -1;

		assert_int_equal(journal_sqlite_int_query(
					 journal_sqlite_of(j),
					 "SELECT count(*) FROM attempts", "t",
					 &n, NULL),
				 0);
		assert_int_equal(n, 0);
	}
	json_decref(get_ok(j, last));
	journal_close(&j);
}

/* A journal made at schema version 3 (by hand, as ophookd wrote it) opens
 * at version 4 with its rows kept, and records attempts from then on. */
static void test_migrate_3(void **state)
{
	struct fixture *fx = *state;
	static const char *const v3[] = {
		"CREATE TABLE events (id INTEGER PRIMARY KEY, type TEXT NOT"
		" NULL, subject TEXT NOT NULL DEFAULT '', source TEXT NOT NULL"
		" DEFAULT '', node TEXT NOT NULL DEFAULT '', time_ms INTEGER"
		" NOT NULL, payload TEXT NOT NULL DEFAULT '{}')",
		"CREATE INDEX events_subject ON events(id >> 12, subject)",
		"CREATE INDEX events_time ON events(time_ms)",
		"CREATE TABLE deliveries (event_id INTEGER NOT NULL, handler"
		" TEXT NOT NULL, state INTEGER NOT NULL DEFAULT 0, attempts"
		" INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL DEFAULT"
		" 0, last_error TEXT, duration_us INTEGER NOT NULL DEFAULT 0,"
		" PRIMARY KEY (event_id, handler)) WITHOUT ROWID",
		"CREATE INDEX deliveries_open ON deliveries(event_id, handler)"
		" WHERE state <> 1",
		"CREATE INDEX deliveries_backlog ON deliveries(handler,"
		" event_id) WHERE state <> 1",
		"INSERT INTO events (id, type, subject, time_ms, payload)"
		" VALUES (7, 'domain.added', 'x.com', 1000,"
		" '{\"domain\":\"x.com\"}')",
		"INSERT INTO deliveries VALUES (7, 'exec:a', 3, 5, 0, 'gone',"
		" 12)",
		"INSERT INTO deliveries VALUES (7, 'plugin:log', 1, 1, 0, NULL,"
		" 3)",
		"PRAGMA user_version = 3",
	};
	struct journal *j;
	sqlite3 *db = NULL;
	json_t *ev, *d;
	int64_t version = 0;

	assert_int_equal(sqlite3_open(fx->path, &db), SQLITE_OK);
	for (size_t i = 0; i < sizeof(v3) / sizeof(v3[0]); i++)
		assert_int_equal(sqlite3_exec(db, v3[i], NULL, NULL, NULL),
				 SQLITE_OK);
	sqlite3_close(db);

	j = open_ok(fx, false);
	assert_int_equal(journal_sqlite_int_query(journal_sqlite_of(j),
						  "PRAGMA user_version", "t",
						  &version, NULL),
			 0);
	assert_int_equal(version, 4);
	ev = get_ok(j, 7);
	assert_string_equal(json_string_value(json_object_get(ev, "subject")),
			    "x.com");
	d = json_array_get(json_object_get(ev, "deliveries"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "handler")),
			    "exec:a");
	assert_string_equal(json_string_value(json_object_get(d, "state")),
			    "dead");
	assert_int_equal(json_integer_value(json_object_get(d, "attempts")), 5);
	assert_string_equal(json_string_value(json_object_get(d, "last_error")),
			    "gone");
	assert_int_equal(json_array_size(json_object_get(d, "attempts_log")), 0);
	json_decref(ev);
	attempt_ok(j, 7, "exec:a", DELIVERY_DONE, 1, 2000, NULL);
	journal_close(&j);

	/* reopened at version 4: no migration again, the rows still there */
	j = open_ok(fx, false);
	ev = get_ok(j, 7);
	d = json_array_get(json_object_get(ev, "deliveries"), 0);
	assert_string_equal(json_string_value(json_object_get(d, "state")),
			    "done");
	assert_int_equal(json_array_size(json_object_get(d, "attempts_log")), 1);
	assert_int_equal(json_array_size(json_object_get(ev, "deliveries")), 2);
	json_decref(ev);
	assert_int_equal(journal_last_id(j), 7);
	journal_close(&j);
}

static void test_backoff(void **state)
{
	(void)state;
	for (int round = 0; round < 200; round++) {
		unsigned v;

		v = journal_backoff_ms(1000, 60000, 1);
		assert_in_range(v, 900, 1000);
		v = journal_backoff_ms(1000, 60000, 2);
		assert_in_range(v, 1800, 2000);
		v = journal_backoff_ms(1000, 60000, 4);
		assert_in_range(v, 7200, 8000);
		v = journal_backoff_ms(1000, 60000, 7); /* 64000 > cap */
		assert_in_range(v, 54000, 60000);
		v = journal_backoff_ms(1000, 60000, 32);
		assert_in_range(v, 54000, 60000);
		v = journal_backoff_ms(1000, 60000, 1000);
		assert_in_range(v, 54000, 60000);
		v = journal_backoff_ms(UINT_MAX, UINT_MAX, 1000);
		assert_true(v >= UINT_MAX - UINT_MAX / 10);
		v = journal_backoff_ms(5, 1000, 0); /* treated as 1 */
		assert_int_equal(v, 5);
		v = journal_backoff_ms(5000, 1000, 1); /* max below base */
		assert_in_range(v, 900, 1000);
	}
	assert_int_equal(journal_backoff_ms(0, 60000, 3), 0);
	assert_int_equal(journal_backoff_ms(9, 60000, 1), 9); /* no jitter */
	/* jitter does happen */
	bool varied = false;
	unsigned first = journal_backoff_ms(1000, 60000, 10);
	for (int i = 0; i < 100 && !varied; i++)
		varied = journal_backoff_ms(1000, 60000, 10) != first;
	assert_true(varied);
}

static void test_disk_full(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = open_ok(fx, true);
	const char *error = NULL;
	char *payload = xmalloc(4001), *expect;
	int ret = 0;
	int64_t before;

	memset(payload, 'x', 4000);
	payload[0] = '"';
	payload[3999] = '"';
	payload[4000] = '\0';
	append_ok(j, "a.b", "s", 1, "{}");
	before = journal_last_id(j);
	assert_int_equal(sqlite3_exec(DB(j), "PRAGMA max_page_count = 40",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	begin_ok(j);
	for (int i = 0; i < 1000 && ret == 0; i++) {
		struct journal_event ev = { .type = "big.event",
					    .subject = "s",
					    .payload = payload };

		ret = journal_append(j, &ev, &error);
	}
	assert_int_equal(ret, -ENOSPC);
	expect = xasprintf("%s: append: database or disk is full", fx->path);
	assert_string_equal(error, expect);
	free(expect);
	journal_rollback(j);
	assert_int_equal(journal_last_id(j), before);

	/* autocommit hits it too, and the journal keeps working */
	struct journal_event ev = { .type = "big.event", .payload = payload };
	while ((ret = journal_append(j, &ev, &error)) == 0)
		;
	assert_int_equal(ret, -ENOSPC);
	assert_int_equal(sqlite3_exec(DB(j), "PRAGMA max_page_count = 100000",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	begin_ok(j);
	int64_t id = append_ok(j, "after.full", "s", 1, "{}");
	add_ok(j, id, "h");
	commit_ok(j);
	json_decref(get_ok(j, id));
	free(payload);
	journal_close(&j);
}

static void test_open_errors(void **state)
{
	struct fixture *fx = *state;
	struct journal *j = NULL;
	const char *error = NULL;
	char *p;
	int fd;

	p = xasprintf("%s/missing/journal.db", fx->dir);
	assert_int_equal(test_open(p, false, &j, &error), -ENOENT);
	assert_null(j);
	assert_non_null(strstr(error, p));
	free(p);

	/* not a database */
	fd = open(fx->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	for (int i = 0; i < 64; i++)
		assert_int_equal(write(fd, "garbage garbage garbage garbage\n",
				       32),
				 32);
	close(fd);
	assert_true(test_open(fx->path, false, &j, &error) < 0);
	assert_null(j);
	assert_non_null(strstr(error, fx->path));
	assert_non_null(strstr(error, "not a database"));
	unlink(fx->path);

	/* a version 2 journal gains the backlog index (and the attempts
	 * table of version 4) */
	j = open_ok(fx, false);
	assert_int_equal(sqlite3_exec(DB(j), "DROP INDEX deliveries_backlog;"
				      " DROP TABLE attempts;"
				      " PRAGMA user_version = 2", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	journal_close(&j);
	j = open_ok(fx, false);
	{
		int64_t n = 0;

		assert_int_equal(journal_sqlite_int_query(
					 journal_sqlite_of(j),
					 "SELECT count(*) FROM sqlite_master"
					 " WHERE name = 'deliveries_backlog'",
					 "test", &n, &error), 0);
		assert_int_equal(n, 1);
		assert_int_equal(journal_sqlite_int_query(
					 journal_sqlite_of(j),
					 "PRAGMA user_version", "test", &n,
					 &error), 0);
		assert_int_equal(n, 4);
	}
	journal_close(&j);
	unlink(fx->path);

	/* a journal from a newer ophookd */
	j = open_ok(fx, false);
	assert_int_equal(sqlite3_exec(DB(j), "PRAGMA user_version = 7", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	journal_close(&j);
	assert_int_equal(test_open(fx->path, false, &j, &error), -ENOTSUP);
	assert_null(j);
	assert_non_null(strstr(error, "schema version 7"));
}

/* The crash test.  A child appends events with a delivery each in
 * group-committed transactions and writes every committed id to a pipe
 * after its commit; the parent SIGKILLs it at a random point, reopens
 * the journal and checks that every reported id is there, pending, and
 * that no transaction landed half. */
#define CRASH_BATCH 50

static void crash_child(const char *path, int wfd)
{
	struct journal *j = NULL;
	const char *error = NULL;
	int64_t ids[CRASH_BATCH];

	if (test_open(path, true, &j, &error) != 0)
		_exit(2);
	for (unsigned n = 0;; n++) {
		if (journal_begin(j, &error) != 0)
			_exit(3);
		for (int i = 0; i < CRASH_BATCH; i++) {
			char payload[64];
			struct journal_event ev = { .type = "crash.test",
						    .subject = "s",
						    .source = "test",
						    .payload = payload };

			snprintf(payload, sizeof(payload), "{\"n\":%u}",
				 n * CRASH_BATCH + (unsigned)i);
			if (journal_append(j, &ev, &error) != 0 ||
			    journal_delivery_add(j, ev.id, "h", &error) != 0)
				_exit(4);
			ids[i] = ev.id;
		}
		if (journal_commit(j, &error) != 0)
			_exit(5);
		if (write(wfd, ids, sizeof(ids)) != (ssize_t)sizeof(ids))
			_exit(6);
	}
}

static void test_crash(void **state)
{
	struct fixture *fx = *state;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	size_t cap = 1 << 16, nids = 0, unreported = 0;
	int64_t *ids = xmalloc(cap * sizeof(*ids));

	printf("# crash test seed %u\n", seed);
	for (int round = 0; round < 4; round++) {
		size_t round_start = nids;
		size_t target = CRASH_BATCH * (1 + (size_t)rand_r(&seed) % 20);
		int pfd[2], status;
		pid_t pid;
		ssize_t r;

		assert_int_equal(pipe(pfd), 0);
		fflush(stdout);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			crash_child(fx->path, pfd[1]);
			_exit(1);
		}
		close(pfd[1]);
		/* read until target ids committed, then kill at a random
		 * moment of the next transactions */
		for (;;) {
			if (nids == cap) {
				cap *= 2;
				ids = xrealloc(ids, cap * sizeof(*ids));
			}
			r = read(pfd[0], &ids[nids],
				 (cap - nids) * sizeof(*ids));
			if (r <= 0)
				break;
			assert_int_equal(r % (ssize_t)sizeof(*ids), 0);
			nids += (size_t)r / sizeof(*ids);
			if (nids - round_start >= target)
				break;
		}
		usleep((useconds_t)(rand_r(&seed) % 5000));
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!WIFSIGNALED(status))
			fail_msg("crash child exited %d before the kill",
				 WEXITSTATUS(status));
		/* what it wrote before dying was committed too */
		for (;;) {
			if (nids == cap) {
				cap *= 2;
				ids = xrealloc(ids, cap * sizeof(*ids));
			}
			r = read(pfd[0], &ids[nids],
				 (cap - nids) * sizeof(*ids));
			if (r <= 0)
				break;
			nids += (size_t)r / sizeof(*ids);
		}
		close(pfd[0]);
		printf("# crash round %d: %zu ids reported committed\n", round,
		       nids - round_start);

		struct journal *j = open_ok(fx, true);
		sqlite3_stmt *st;
		int64_t events, orphans;
		const char *error = NULL;

		assert_int_equal(
			sqlite3_prepare_v2(DB(j),
					   "SELECT state FROM deliveries WHERE"
					   " event_id = ?1 AND handler = 'h'",
					   -1, &st, NULL),
			SQLITE_OK);
		for (size_t i = 0; i < nids; i++) {
			sqlite3_bind_int64(st, 1, ids[i]);
			if (sqlite3_step(st) != SQLITE_ROW)
				fail_msg("committed event %lld lost",
					 (long long)ids[i]);
			assert_int_equal(sqlite3_column_int(st, 0),
					 DELIVERY_PENDING);
			sqlite3_reset(st);
		}
		sqlite3_finalize(st);
		assert_int_equal(
			journal_sqlite_int_query(journal_sqlite_of(j),
						 "SELECT count(*) FROM events",
						 "t", &events, &error),
			0);
		assert_int_equal(
			journal_sqlite_int_query(journal_sqlite_of(j),
						 "SELECT count(*) FROM events e"
						 " WHERE NOT EXISTS (SELECT 1"
						 " FROM deliveries d WHERE"
						 " d.event_id = e.id)",
						 "t", &orphans, &error),
			0);
		/* whole transactions only; at most one batch per round
		 * committed but not reported (killed between commit and
		 * write) */
		assert_int_equal(orphans, 0);
		assert_int_equal(events % CRASH_BATCH, 0);
		assert_true((size_t)events >= nids + unreported);
		assert_true((size_t)events <= nids + unreported + CRASH_BATCH);
		journal_close(&j);
		unreported = (size_t)events - nids;
	}
	free(ids);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_names),
		cmocka_unit_test_setup_teardown(test_append_deliveries, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_commit_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_results_tx, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_load_pending_handler,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_pending_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_update_counts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_query_filters, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_query_subject_buckets,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_event_enoent, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discarded, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_attempts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_migrate_3, setup,
						teardown),
		cmocka_unit_test(test_backoff),
		cmocka_unit_test_setup_teardown(test_disk_full, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_crash, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
