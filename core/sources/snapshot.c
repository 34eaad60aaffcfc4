/* The snapshot: memory map + SQLite persistence with batched writes.
 * snapshot_flush_async() hands the queued writes to a writer thread (the
 * SQLite transaction off the loop); the connection is used by one thread
 * at a time: the writer while it holds a batch, else the loop. */
#define _GNU_SOURCE
#include "snapshot.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "hmap.h"
#include "util.h"

struct snapshot_write {
	bool gone;
	struct snapshot_entry e;
};

struct snapshot {
	sqlite3 *db;
	sqlite3_stmt *upsert, *del;
	struct hmap *mem;     /* path -> struct snapshot_entry */
	struct hmap *queue;   /* path -> struct snapshot_write */
	bool mark_baseline;
	int64_t jmark;        /* journal mark to write with the next batch
				 (0: none) */
	int64_t jmark_loaded; /* the mark found at open (0: none) */
	char *aside;          /* where an unreadable file was kept aside */
	char *aside_why;      /* what was wrong with it */
	bool created;         /* the file did not exist before open */
	char err[256];

	/* the writer thread (started at the first snapshot_flush_async) */
	pthread_t thr;
	bool thr_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hmap *batch;   /* handed to the writer, or failed there (kept
				 for a retry); NULL: none.  Under mu. */
	bool batch_baseline;  /* the batch carries the baseline mark */
	int64_t batch_jmark;  /* and this journal mark (0: none) */
	bool busy;            /* the writer holds batch (and the db) */
	bool failed;          /* batch failed: err_async says why */
	bool quit;
	char err_async[256];
};

static const char snapshot_schema[] =
	"PRAGMA journal_mode=WAL;"
	"PRAGMA synchronous=OFF;"
	/* the memory map holds every row: SQLite's page cache only serves
	 * the batched upserts (1 MiB is plenty, the default 2 MiB is RSS) */
	"PRAGMA cache_size=-1024;"
	"CREATE TABLE IF NOT EXISTS snap ("
	" path TEXT PRIMARY KEY, ino INTEGER, size INTEGER,"
	" mtime_ns INTEGER, hash INTEGER, is_dir INTEGER, facts TEXT);"
	"CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);";

void snapshot_entry_clear(struct snapshot_entry *e)
{
	free(e->facts);
	e->facts = NULL;
}

static void snapshot_entry_free(void *p)
{
	struct snapshot_entry *e = p;

	snapshot_entry_clear(e);
	free(e);
}

static void snapshot_write_free(void *p)
{
	struct snapshot_write *w = p;

	snapshot_entry_clear(&w->e);
	free(w);
}

static int snapshot_fail(struct snapshot *s, const char *what,
			 const char **error_r)
{
	snprintf(s->err, sizeof(s->err), "snapshot: %s: %s", what,
		 sqlite3_errmsg(s->db));
	*error_r = s->err;
	return -EIO;
}

static int snapshot_load(struct snapshot *s, bool *fresh_r,
			 const char **error_r)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(s->db,
			       "SELECT path, ino, size, mtime_ns, hash, is_dir,"
			       " facts FROM snap", -1, &st, NULL) != SQLITE_OK)
		return snapshot_fail(s, "load", error_r);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct snapshot_entry *e = xcalloc(1, sizeof(*e));
		const char *facts = (const char *)sqlite3_column_text(st, 6);

		e->ino = (uint64_t)sqlite3_column_int64(st, 1);
		e->size = (uint64_t)sqlite3_column_int64(st, 2);
		e->mtime_ns = sqlite3_column_int64(st, 3);
		e->hash = (uint64_t)sqlite3_column_int64(st, 4);
		e->is_dir = sqlite3_column_int(st, 5) != 0;
		e->facts = facts != NULL ? xstrdup(facts) : NULL;
		e = hmap_put(s->mem, (const char *)sqlite3_column_text(st, 0),
			     e);
		if (e != NULL)
			snapshot_entry_free(e);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return snapshot_fail(s, "load", error_r);
	if (fresh_r != NULL) {
		*fresh_r = true;
		if (sqlite3_prepare_v2(s->db,
				       "SELECT value FROM meta WHERE"
				       " key='baseline'", -1, &st,
				       NULL) != SQLITE_OK)
			return snapshot_fail(s, "load meta", error_r);
		if (sqlite3_step(st) == SQLITE_ROW)
			*fresh_r = false;
		sqlite3_finalize(st);
	}
	if (sqlite3_prepare_v2(s->db,
			       "SELECT value FROM meta WHERE"
			       " key='journal_last_id'", -1, &st,
			       NULL) != SQLITE_OK)
		return snapshot_fail(s, "load meta", error_r);
	if (sqlite3_step(st) == SQLITE_ROW)
		s->jmark_loaded = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

static int snapshot_open_once(const char *path, struct snapshot **s_r,
			      bool *fresh_r, const char **error_r);
static bool snapshot_writer_settle(struct snapshot *s, const char **error_r);

/* Move path and its -wal and -shm files to aside (+ the same suffixes). */
static int snapshot_set_aside(const char *path, const char *aside)
{
	static const char *const sfx[] = { "-wal", "-shm" };

	if (rename(path, aside) < 0)
		return -errno;
	for (size_t i = 0; i < 2; i++) {
		char *from = xasprintf("%s%s", path, sfx[i]);
		char *to = xasprintf("%s%s", aside, sfx[i]);

		if (rename(from, to) < 0 && errno == ENOENT)
			(void)0; /* none: fine */
		free(from);
		free(to);
	}
	return 0;
}

int snapshot_open(const char *path, struct snapshot **s_r, bool *fresh_r,
		  const char **error_r)
{
	bool existed = access(path, F_OK) == 0;
	int ret = snapshot_open_once(path, s_r, fresh_r, error_r);
	char *aside, *why;

	if (ret == 0) {
		(*s_r)->created = !existed;
		return 0;
	}
	if (ret != -EIO || access(path, F_OK) != 0)
		return ret;
	/* The snapshot is a cache (written with synchronous=OFF): when it is
	 * unreadable, keep it aside (never overwritten: named by the time)
	 * and start empty, NOT as a first run; snapshot_recovered() says so,
	 * and the caller names it in an error and rebuilds what it can. */
	why = xstrdup(*error_r != NULL ? *error_r : "unreadable");
	aside = xasprintf("%s.corrupt-%lld", path, (long long)time(NULL));
	if (snapshot_set_aside(path, aside) < 0) {
		free(aside);
		free(why);
		return ret;
	}
	ret = snapshot_open_once(path, s_r, NULL, error_r);
	if (ret < 0) {
		free(aside);
		free(why);
		return ret;
	}
	if (fresh_r != NULL)
		*fresh_r = false;
	(*s_r)->aside = aside;
	(*s_r)->aside_why = why;
	(*s_r)->created = true;
	return 0;
}

const char *snapshot_recovered(const struct snapshot *s, const char **why_r)
{
	if (why_r != NULL)
		*why_r = s->aside_why;
	return s->aside;
}

bool snapshot_created(const struct snapshot *s)
{
	return s->created;
}

int64_t snapshot_journal_mark(const struct snapshot *s)
{
	return s->jmark_loaded;
}

void snapshot_set_journal_mark(struct snapshot *s, int64_t last_id)
{
	if (last_id > s->jmark)
		s->jmark = last_id;
}

static int snapshot_open_once(const char *path, struct snapshot **s_r,
			      bool *fresh_r, const char **error_r)
{
	struct snapshot *s = xcalloc(1, sizeof(*s));
	int ret;

	*s_r = NULL;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	s->mem = hmap_new();
	s->queue = hmap_new();
	if (sqlite3_open_v2(path, &s->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		ret = snapshot_fail(s, path, error_r);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	if (sqlite3_exec(s->db, snapshot_schema, NULL, NULL, NULL) !=
	    SQLITE_OK) {
		ret = snapshot_fail(s, "schema", error_r);
		goto fail;
	}
	if (sqlite3_prepare_v2(s->db,
			       "INSERT OR REPLACE INTO snap (path, ino, size,"
			       " mtime_ns, hash, is_dir, facts)"
			       " VALUES (?,?,?,?,?,?,?)", -1, &s->upsert,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, "DELETE FROM snap WHERE path=?", -1,
			       &s->del, NULL) != SQLITE_OK) {
		ret = snapshot_fail(s, "prepare", error_r);
		goto fail;
	}
	ret = snapshot_load(s, fresh_r, error_r);
	if (ret < 0)
		goto fail;
	*s_r = s;
	return 0;
fail:
	/* error_r points into s->err: keep a static copy */
	{
		static __thread char msg[256];

		snprintf(msg, sizeof(msg), "%s", s->err);
		*error_r = msg;
	}
	snapshot_close(&s);
	return ret;
}

void snapshot_close(struct snapshot **sp)
{
	struct snapshot *s = *sp;
	const char *err;

	if (s == NULL)
		return;
	if (s->db != NULL) {
		(void)snapshot_writer_settle(s, &err);
		if (snapshot_pending(s) > 0)
			(void)snapshot_flush(s, &err);
	}
	if (s->thr_started) {
		pthread_mutex_lock(&s->mu);
		s->quit = true;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thr, NULL);
	}
	hmap_free(&s->batch, snapshot_write_free);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	sqlite3_finalize(s->upsert);
	sqlite3_finalize(s->del);
	sqlite3_close(s->db);
	free(s->aside);
	free(s->aside_why);
	hmap_free(&s->mem, snapshot_entry_free);
	hmap_free(&s->queue, snapshot_write_free);
	free(s);
	*sp = NULL;
}

struct snapshot_entry *snapshot_get(struct snapshot *s, const char *path)
{
	return hmap_get(s->mem, path);
}

static void entry_copy(struct snapshot_entry *dst,
		       const struct snapshot_entry *src)
{
	*dst = *src;
	dst->facts = src->facts != NULL ? xstrdup(src->facts) : NULL;
}

struct snapshot_entry *snapshot_put(struct snapshot *s, const char *path,
				    const struct snapshot_entry *e)
{
	struct snapshot_entry *cur = hmap_get(s->mem, path);

	if (cur == NULL) {
		cur = xcalloc(1, sizeof(*cur));
		hmap_put(s->mem, path, cur);
	} else if (cur == e) {
		return cur;
	} else {
		uint32_t seen = cur->seen, busy = cur->busy;
		char *old = cur->facts;

		entry_copy(cur, e);
		cur->seen = seen > e->seen ? seen : e->seen;
		cur->busy = busy;
		free(old);
		return cur;
	}
	entry_copy(cur, e);
	return cur;
}

void snapshot_del(struct snapshot *s, const char *path)
{
	struct snapshot_entry *e = hmap_del(s->mem, path);

	if (e != NULL)
		snapshot_entry_free(e);
}

void snapshot_persist(struct snapshot *s, const char *path,
		      const struct snapshot_entry *e)
{
	struct snapshot_write *w = xcalloc(1, sizeof(*w));

	if (e != NULL)
		entry_copy(&w->e, e);
	else
		w->gone = true;
	w = hmap_put(s->queue, path, w);
	if (w != NULL)
		snapshot_write_free(w);
}

size_t snapshot_pending(const struct snapshot *s)
{
	return hmap_count(s->queue) + (s->mark_baseline ? 1 : 0);
}

void snapshot_mark_baseline(struct snapshot *s)
{
	s->mark_baseline = true;
}

struct flush_ctx {
	struct snapshot *s;
	int rc;
};

static int snapshot_write_batch(struct snapshot *s, struct hmap *batch,
				bool baseline, int64_t jmark,
				const char **error_r);

static bool snapshot_flush_one(const char *path, void *value, void *ctx)
{
	struct flush_ctx *fc = ctx;
	struct snapshot_write *w = value;
	sqlite3_stmt *st = w->gone ? fc->s->del : fc->s->upsert;

	sqlite3_reset(st);
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	if (!w->gone) {
		sqlite3_bind_int64(st, 2, (sqlite3_int64)w->e.ino);
		sqlite3_bind_int64(st, 3, (sqlite3_int64)w->e.size);
		sqlite3_bind_int64(st, 4, w->e.mtime_ns);
		sqlite3_bind_int64(st, 5, (sqlite3_int64)w->e.hash);
		sqlite3_bind_int(st, 6, w->e.is_dir ? 1 : 0);
		if (w->e.facts != NULL)
			sqlite3_bind_text(st, 7, w->e.facts, -1,
					  SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 7);
	}
	fc->rc = sqlite3_step(st);
	sqlite3_clear_bindings(st);
	sqlite3_reset(st);
	return fc->rc == SQLITE_DONE;
}

/* Write batch (and the baseline mark) in one transaction.  0 or -EIO
 * (*error_r: s->err).  The caller holds the db. */
static int snapshot_write_batch(struct snapshot *s, struct hmap *batch,
				bool baseline, int64_t jmark,
				const char **error_r)
{
	struct flush_ctx fc = { s, SQLITE_DONE };
	char sql[128];

	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return snapshot_fail(s, "begin", error_r);
	hmap_each(batch, snapshot_flush_one, &fc);
	if (fc.rc == SQLITE_DONE && baseline &&
	    sqlite3_exec(s->db,
			 "INSERT OR REPLACE INTO meta VALUES"
			 " ('baseline', '1')", NULL, NULL,
			 NULL) != SQLITE_OK)
		fc.rc = SQLITE_ERROR;
	snprintf(sql, sizeof(sql),
		 "INSERT OR REPLACE INTO meta VALUES ('journal_last_id', %lld)",
		 (long long)jmark);
	if (fc.rc == SQLITE_DONE && jmark > 0 &&
	    sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		fc.rc = SQLITE_ERROR;
	if (fc.rc != SQLITE_DONE ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		int ret = snapshot_fail(s, "write", error_r);

		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return ret;
	}
	return 0;
}

static bool merge_one(const char *path, void *value, void *ctx)
{
	struct hmap *queue = ctx;

	if (hmap_get(queue, path) == NULL)
		hmap_put(queue, path, value);
	else
		snapshot_write_free(value); /* a newer state is queued */
	return true;
}

/* Wait until the writer is idle; a batch it failed goes back into the
 * queue (behind newer states of the same paths).  True when one failed
 * (*error_r: why, valid until the next call).  Loop thread. */
static bool snapshot_writer_settle(struct snapshot *s, const char **error_r)
{
	bool failed = false;

	if (!s->thr_started)
		return false;
	pthread_mutex_lock(&s->mu);
	while (s->busy)
		pthread_cond_wait(&s->cv, &s->mu);
	if (s->batch != NULL) { /* failed: retry with the queue */
		hmap_each(s->batch, merge_one, s->queue);
		hmap_free(&s->batch, NULL);
		s->mark_baseline |= s->batch_baseline;
		s->batch_baseline = false;
		if (s->batch_jmark > s->jmark)
			s->jmark = s->batch_jmark;
		s->batch_jmark = 0;
	}
	if (s->failed) {
		failed = true;
		snprintf(s->err, sizeof(s->err), "%s", s->err_async);
		*error_r = s->err;
		s->failed = false;
	}
	pthread_mutex_unlock(&s->mu);
	return failed;
}

int snapshot_flush(struct snapshot *s, const char **error_r)
{
	(void)snapshot_writer_settle(s, error_r);
	if (hmap_count(s->queue) == 0 && !s->mark_baseline)
		return 0;
	int ret = snapshot_write_batch(s, s->queue, s->mark_baseline,
				       s->jmark, error_r);
	if (ret < 0)
		return ret;
	s->mark_baseline = false;
	s->jmark = 0;
	hmap_free(&s->queue, snapshot_write_free);
	s->queue = hmap_new();
	return 0;
}

static void *snapshot_writer(void *arg)
{
	struct snapshot *s = arg;

	pthread_mutex_lock(&s->mu);
	for (;;) {
		while (!s->busy && !s->quit)
			pthread_cond_wait(&s->cv, &s->mu);
		if (!s->busy)
			break; /* quit */
		pthread_mutex_unlock(&s->mu);

		const char *err = NULL;
		int ret = snapshot_write_batch(s, s->batch, s->batch_baseline,
					       s->batch_jmark, &err);

		pthread_mutex_lock(&s->mu);
		if (ret < 0) {
			s->failed = true;
			snprintf(s->err_async, sizeof(s->err_async), "%s",
				 err != NULL ? err : "snapshot: write failed");
		} else {
			hmap_free(&s->batch, snapshot_write_free);
			s->batch_baseline = false;
			s->batch_jmark = 0;
		}
		s->busy = false;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	return NULL;
}

int snapshot_flush_async(struct snapshot *s, const char **error_r)
{
	bool failed;
	int ret = 0;

	if (!s->thr_started) {
		sigset_t all, old;
		int rc;

		/* signals are the loop's business: none for the writer */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		rc = pthread_create(&s->thr, NULL, snapshot_writer, s);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0)
			return snapshot_flush(s, error_r); /* no thread */
		s->thr_started = true;
	}
	pthread_mutex_lock(&s->mu);
	failed = s->failed;
	if (!s->busy && !failed && s->batch == NULL &&
	    (hmap_count(s->queue) > 0 || s->mark_baseline)) {
		s->batch = s->queue;
		s->batch_baseline = s->mark_baseline;
		s->batch_jmark = s->jmark;
		s->queue = hmap_new();
		s->mark_baseline = false;
		s->jmark = 0;
		s->busy = true;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	if (failed) {
		/* report it, take the batch back; the next call retries */
		if (snapshot_writer_settle(s, error_r))
			ret = -EIO;
	}
	return ret;
}

size_t snapshot_count(const struct snapshot *s)
{
	return hmap_count(s->mem);
}

struct each_ctx {
	bool (*fn)(const char *path, struct snapshot_entry *e, void *ctx);
	void *ctx;
};

static bool snapshot_each_one(const char *key, void *value, void *ctx)
{
	struct each_ctx *ec = ctx;

	return ec->fn(key, value, ec->ctx);
}

void snapshot_each(struct snapshot *s,
		   bool (*fn)(const char *path, struct snapshot_entry *e,
			      void *ctx),
		   void *ctx)
{
	struct each_ctx ec = { fn, ctx };

	hmap_each(s->mem, snapshot_each_one, &ec);
}
