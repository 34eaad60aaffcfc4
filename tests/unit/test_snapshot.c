/* Unit tests for the snapshot: memory map, batched persistence, reload,
 * baseline mark, the writer thread (snapshot_flush_async). */
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
#include <sqlite3.h>
#include <time.h>

#include "snapshot.h"

static char dir[64], db[128];

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/test_snapshot.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(db, sizeof(db), "%s/snapshot.db", dir);
	return 0;
}

static int teardown(void **state)
{
	char p[160];

	(void)state;
	unlink(db);
	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
	rmdir(dir);
	return 0;
}

static void test_persist_reload(void **state)
{
	struct snapshot *s;
	struct snapshot_entry e = { .ino = 7, .size = 9, .mtime_ns = 123,
				    .hash = 0xfedcba9876543210ULL };
	const char *err;
	bool fresh;

	(void)state;
	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_true(fresh);
	e.facts = "{\"suspended\":true}";
	snapshot_put(s, "/a", &e);
	assert_non_null(snapshot_get(s, "/a"));
	assert_string_equal(snapshot_get(s, "/a")->facts, e.facts);
	/* not persisted: lost at reopen */
	snapshot_put(s, "/mem-only", &e);
	snapshot_persist(s, "/a", &e);
	e.facts = NULL;
	snapshot_persist(s, "/b", &e);
	snapshot_persist(s, "/c", &e);
	snapshot_persist(s, "/c", NULL); /* last state wins */
	assert_int_equal(snapshot_pending(s), 3);
	assert_int_equal(snapshot_flush(s, &err), 0);
	assert_int_equal(snapshot_pending(s), 0);
	snapshot_mark_baseline(s);
	snapshot_close(&s);
	assert_null(s);

	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_false(fresh);
	assert_int_equal(snapshot_count(s), 2);
	struct snapshot_entry *a = snapshot_get(s, "/a");
	assert_non_null(a);
	assert_int_equal(a->ino, 7);
	assert_int_equal(a->size, 9);
	assert_int_equal(a->mtime_ns, 123);
	assert_true(a->hash == 0xfedcba9876543210ULL);
	assert_string_equal(a->facts, "{\"suspended\":true}");
	assert_null(snapshot_get(s, "/b")->facts);
	assert_null(snapshot_get(s, "/c"));
	assert_null(snapshot_get(s, "/mem-only"));
	snapshot_persist(s, "/a", NULL);
	snapshot_del(s, "/a");
	assert_null(snapshot_get(s, "/a"));
	snapshot_close(&s); /* flushes */
	assert_int_equal(snapshot_open(db, &s, NULL, &err), 0);
	assert_null(snapshot_get(s, "/a"));
	assert_int_equal(snapshot_count(s), 1);
	snapshot_close(&s);
}

static bool count_cb(const char *path, struct snapshot_entry *e, void *ctx)
{
	(void)path;
	(void)e;
	(*(unsigned *)ctx)++;
	return true;
}

static void test_many(void **state)
{
	struct snapshot *s;
	struct snapshot_entry e = { .hash = 1 };
	const char *err;
	char p[64];
	unsigned n = 0;

	(void)state;
	assert_int_equal(snapshot_open(db, &s, NULL, &err), 0);
	for (int i = 0; i < 20000; i++) {
		snprintf(p, sizeof(p), "/d/%d.com.conf", i);
		e.hash = (uint64_t)i;
		snapshot_put(s, p, &e);
		snapshot_persist(s, p, &e);
	}
	assert_int_equal(snapshot_flush(s, &err), 0);
	snapshot_close(&s);
	assert_int_equal(snapshot_open(db, &s, NULL, &err), 0);
	snapshot_each(s, count_cb, &n);
	assert_true(n >= 20000);
	assert_int_equal(snapshot_get(s, "/d/19999.com.conf")->hash, 19999);
	snapshot_close(&s);
}

/* Batches handed to the writer thread land in order: a state queued while
 * the writer writes an older one wins; the baseline mark goes along. */
static void test_async(void **state)
{
	struct snapshot *s;
	struct snapshot_entry e = { .hash = 1 };
	const char *err;
	bool fresh;
	char p[64];

	(void)state;
	teardown(NULL); /* a new database */
	mkdir(dir, 0700);
	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_true(fresh);
	for (int i = 0; i < 3000; i++) {
		snprintf(p, sizeof(p), "/async/%d.com.conf", i);
		snapshot_persist(s, p, &e);
	}
	snapshot_mark_baseline(s);
	assert_int_equal(snapshot_flush_async(s, &err), 0);
	e.hash = 2;
	snapshot_persist(s, "/async/7.com.conf", &e); /* newer */
	snapshot_persist(s, "/async/8.com.conf", NULL); /* gone */
	/* handed at once, or still queued while the writer is busy */
	assert_int_equal(snapshot_flush_async(s, &err), 0);
	snapshot_close(&s); /* waits for the writer, flushes the rest */

	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_false(fresh);
	assert_int_equal(snapshot_count(s), 2999);
	assert_int_equal(snapshot_get(s, "/async/7.com.conf")->hash, 2);
	assert_int_equal(snapshot_get(s, "/async/9.com.conf")->hash, 1);
	assert_null(snapshot_get(s, "/async/8.com.conf"));
	/* the sync flush waits for a batch in flight */
	e.hash = 3;
	snapshot_persist(s, "/async/1.com.conf", &e);
	assert_int_equal(snapshot_flush_async(s, &err), 0);
	assert_int_equal(snapshot_flush(s, &err), 0);
	assert_int_equal(snapshot_pending(s), 0);
	snapshot_close(&s);
	assert_int_equal(snapshot_open(db, &s, NULL, &err), 0);
	assert_int_equal(snapshot_get(s, "/async/1.com.conf")->hash, 3);
	snapshot_close(&s);
}

/* A batch the writer cannot write (the database locked by another
 * connection past the busy timeout) is reported and retried; newer
 * states queued meanwhile win. */
static void test_async_fail(void **state)
{
	struct snapshot *s;
	struct snapshot_entry e = { .hash = 1 };
	const char *err = NULL;
	sqlite3 *other;
	int ret = 0;

	(void)state;
	assert_int_equal(snapshot_open(db, &s, NULL, &err), 0);
	assert_int_equal(sqlite3_open(db, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL,
				      NULL), SQLITE_OK);
	snapshot_persist(s, "/f/a", &e);
	snapshot_persist(s, "/f/b", &e);
	assert_int_equal(snapshot_flush_async(s, &err), 0);
	e.hash = 2;
	snapshot_persist(s, "/f/a", &e);
	/* the writer gives up after the busy timeout (5 s) */
	for (int i = 0; i < 400 && ret == 0; i++) {
		struct timespec ts = { 0, 50 * 1000 * 1000 };

		nanosleep(&ts, NULL);
		ret = snapshot_flush_async(s, &err);
	}
	assert_int_equal(ret, -EIO);
	assert_non_null(strstr(err, "snapshot"));
	assert_int_equal(snapshot_pending(s), 2); /* back in the queue */
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(snapshot_flush(s, &err), 0);
	snapshot_close(&s);
	assert_int_equal(snapshot_open(db, &s, NULL, &err), 0);
	assert_int_equal(snapshot_get(s, "/f/a")->hash, 2);
	assert_int_equal(snapshot_get(s, "/f/b")->hash, 1);
	snapshot_close(&s);
}

static void test_bad_path(void **state)
{
	struct snapshot *s;
	const char *err = NULL;

	(void)state;
	assert_true(snapshot_open("/nonexistent/dir/snapshot.db", &s, NULL,
				  &err) < 0);
	assert_null(s);
	assert_non_null(err);
	assert_non_null(strstr(err, "snapshot"));
}

static void test_corrupt(void **state)
{
	struct snapshot *s;
	const char *err;
	bool fresh = true;
	FILE *f;
	char aside[160];

	(void)state;
	teardown(NULL);
	mkdir(dir, 0700);
	f = fopen(db, "w");
	assert_non_null(f);
	fputs("this is not an SQLite database, not at all, really not......"
	      "..............................................................",
	      f);
	fclose(f);
	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_false(fresh); /* not a first run: the caller rebuilds it */
	assert_int_equal(snapshot_count(s), 0);
	/* never silent: where it was kept and what was wrong (issue 16, 4) */
	const char *why = NULL;
	const char *kept = snapshot_recovered(s, &why);
	assert_non_null(kept);
	assert_non_null(why);
	assert_non_null(strstr(why, "not a database"));
	snprintf(aside, sizeof(aside), "%s.corrupt-", db);
	assert_memory_equal(kept, aside, strlen(aside));
	assert_true(snapshot_created(s));
	snprintf(aside, sizeof(aside), "%s", kept);
	snapshot_close(&s);
	assert_int_equal(access(aside, F_OK), 0);
	unlink(aside);
	/* read back: nothing to say */
	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_null(snapshot_recovered(s, NULL));
	assert_false(snapshot_created(s));
	snapshot_close(&s);
}

/* The journal mark is written with a batch and read back at open. */
static void test_journal_mark(void **state)
{
	struct snapshot *s;
	struct snapshot_entry e = { .ino = 1, .size = 2, .hash = 3 };
	const char *err;
	bool fresh;

	(void)state;
	teardown(NULL);
	mkdir(dir, 0700);
	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_true(fresh);
	assert_true(snapshot_created(s));
	assert_int_equal(snapshot_journal_mark(s), 0);
	/* alone it writes nothing */
	snapshot_set_journal_mark(s, 41);
	assert_int_equal(snapshot_pending(s), 0);
	snapshot_persist(s, "/a", &e);
	snapshot_set_journal_mark(s, 42);
	assert_int_equal(snapshot_flush(s, &err), 0);
	snapshot_close(&s);
	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_int_equal(snapshot_journal_mark(s), 42);
	/* the async writer carries it too */
	snapshot_persist(s, "/b", &e);
	snapshot_set_journal_mark(s, 50);
	assert_int_equal(snapshot_flush_async(s, &err), 0);
	snapshot_close(&s);
	assert_int_equal(snapshot_open(db, &s, &fresh, &err), 0);
	assert_int_equal(snapshot_journal_mark(s), 50);
	snapshot_close(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_persist_reload),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_async),
		cmocka_unit_test(test_async_fail),
		cmocka_unit_test(test_bad_path),
		cmocka_unit_test(test_corrupt),
		cmocka_unit_test(test_journal_mark),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
