/* The journal on SQLite in WAL mode: the default backend of journal.c
 * (see journal.h, journal_backend.h).
 *
 * Schema (PRAGMA user_version 4):
 *   events(id INTEGER PRIMARY KEY, type, subject, source, node, time_ms,
 *          payload)      indexes: (id >> 12, subject), time_ms
 *   (no index on type: a type query wants the newest matches, which a
 *   backward walk of the ids finds at no cost per append)
 *   deliveries(event_id, handler, state, attempts, next_ms, last_error,
 *              duration_us, PRIMARY KEY(event_id, handler)) WITHOUT ROWID
 *              index deliveries_open: (event_id, handler) of the
 *              rows not done (a partial index: marking a delivery done
 *              only deletes its entry)
 *              index deliveries_backlog: (handler, event_id) of the
 *              same rows (one handler's backlog in order)
 *   attempts(id INTEGER PRIMARY KEY, event_id, handler, attempt,
 *            started_ms, duration_us, error)   index (event_id, handler, id)
 *            every attempt of a delivery, its last JOURNAL_ATTEMPTS_KEEP
 *            kept; deleted with the event (version 3 -> 4 adds it)
 * The node column is there for multi-node cursors.
 *
 * The subject index is bucketed by id (JOURNAL_SUBJECT_SHIFT): a plain
 * index on subject takes one page write per distinct subject in every
 * transaction, while the current bucket's entries stay in a few pages.
 * A subject query walks the buckets newest first.  (MariaDB, with
 * InnoDB's change buffer, can use a plain index on subject.)
 *
 * Event ids are never reused: ids come from max(id)+1, and prune always
 * keeps the newest event. */
#define _GNU_SOURCE
#include "journal.h"
#include "journal_backend.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JOURNAL_SCHEMA_VERSION 4
#define JOURNAL_BUSY_TIMEOUT_MS 5000
/* Rows per page in journal_load_pending, events per chunk in prune. */
#define JOURNAL_PAGE 512
#define JOURNAL_PRUNE_CHUNK 500
/* ids per bucket of the subject index: must match the schema's "id >> 12" */
#define JOURNAL_SUBJECT_SHIFT 12

/* Deliveries not done, in the order journal_load_pending hands them out.
 * Queries that want it say "d.state <> 1" word for word (SQLite uses a
 * partial index only when the query repeats its WHERE term). */
#define JOURNAL_OPEN_INDEX \
	"CREATE INDEX deliveries_open ON deliveries(event_id, handler)" \
	" WHERE state <> 1"

/* One handler's deliveries not done, in event id order: the engine refills
 * each handler's in-memory window from it (journal_load_pending_handler),
 * reading that handler's backlog only, not every open row behind a slow
 * handler's 100,000.  Same partial WHERE as deliveries_open. */
#define JOURNAL_BACKLOG_INDEX \
	"CREATE INDEX deliveries_backlog ON deliveries(handler, event_id)" \
	" WHERE state <> 1"

/* The history of attempts, one row per attempt (journal_delivery_update
 * with started_ms), in id order per delivery. */
#define JOURNAL_ATTEMPTS_TABLE \
	"CREATE TABLE attempts (" \
	" id INTEGER PRIMARY KEY," \
	" event_id INTEGER NOT NULL," \
	" handler TEXT NOT NULL," \
	" attempt INTEGER NOT NULL," \
	" started_ms INTEGER NOT NULL," \
	" duration_us INTEGER NOT NULL DEFAULT 0," \
	" error TEXT)"
#define JOURNAL_ATTEMPTS_INDEX \
	"CREATE INDEX attempts_delivery ON attempts(event_id, handler, id)"

static const char *const journal_schema[] = {
	"CREATE TABLE events ("
	" id INTEGER PRIMARY KEY,"
	" type TEXT NOT NULL,"
	" subject TEXT NOT NULL DEFAULT '',"
	" source TEXT NOT NULL DEFAULT '',"
	" node TEXT NOT NULL DEFAULT '',"
	" time_ms INTEGER NOT NULL,"
	" payload TEXT NOT NULL DEFAULT '{}')",
	"CREATE INDEX events_subject ON events(id >> 12, subject)",
	"CREATE INDEX events_time ON events(time_ms)",
	"CREATE TABLE deliveries ("
	" event_id INTEGER NOT NULL,"
	" handler TEXT NOT NULL,"
	" state INTEGER NOT NULL DEFAULT 0,"
	" attempts INTEGER NOT NULL DEFAULT 0,"
	" next_ms INTEGER NOT NULL DEFAULT 0,"
	" last_error TEXT,"
	" duration_us INTEGER NOT NULL DEFAULT 0,"
	" PRIMARY KEY (event_id, handler)) WITHOUT ROWID",
	JOURNAL_OPEN_INDEX,
	JOURNAL_BACKLOG_INDEX,
	JOURNAL_ATTEMPTS_TABLE,
	JOURNAL_ATTEMPTS_INDEX,
};

/* Version 1 -> 2: the deliveries index becomes partial, the type index
 * goes. */
static const char *const journal_migrate_2[] = {
	"DROP INDEX IF EXISTS deliveries_state",
	"DROP INDEX IF EXISTS events_type",
	JOURNAL_OPEN_INDEX,
};

/* Version 2 -> 3: the per-handler backlog index. */
static const char *const journal_migrate_3[] = {
	JOURNAL_BACKLOG_INDEX,
};

/* Version 3 -> 4: the history of attempts (empty: the attempts made
 * before show only in their delivery's last_error). */
static const char *const journal_migrate_4[] = {
	JOURNAL_ATTEMPTS_TABLE,
	JOURNAL_ATTEMPTS_INDEX,
};

#define EVENT_COLS "e.id, e.type, e.subject, e.source, e.node, e.time_ms, e.payload"
#define DELIVERY_COLS \
	"d.handler, d.state, d.attempts, d.next_ms, d.last_error, d.duration_us"
/* EVENT_COLS and DELIVERY_COLS, but the id is d.event_id: the planner then
 * sees that the deliveries_open index gives the ORDER BY. */
#define PENDING_COLS \
	"d.event_id, e.type, e.subject, e.source, e.node, e.time_ms," \
	" e.payload, " DELIVERY_COLS

enum journal_stmt {
	ST_APPEND,
	ST_DELIVERY_ADD,
	ST_DELIVERY_UPDATE,
	ST_GET_EVENT,
	ST_GET_DELIVERIES,
	ST_PENDING_PAGE,
	ST_PENDING_HANDLER_PAGE,
	ST_LAST_ID,
	ST_ATTEMPT_ADD,
	ST_ATTEMPT_TRIM,
	ST_GET_ATTEMPTS,
	ST_BEGIN,
	ST_COMMIT,
	ST_COUNT
};

static const char *const journal_stmt_sql[ST_COUNT] = {
	[ST_APPEND] = "INSERT INTO events (type, subject, source, node, time_ms,"
		      " payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[ST_DELIVERY_ADD] = "INSERT INTO deliveries (event_id, handler)"
			    " VALUES (?1, ?2)",
	[ST_DELIVERY_UPDATE] = "UPDATE deliveries SET state = ?3, attempts = ?4,"
			       " next_ms = ?5, last_error = ?6,"
			       " duration_us = ?7"
			       " WHERE event_id = ?1 AND handler = ?2",
	[ST_GET_EVENT] = "SELECT " EVENT_COLS " FROM events e WHERE e.id = ?1",
	[ST_GET_DELIVERIES] = "SELECT " DELIVERY_COLS " FROM deliveries d"
			      " WHERE d.event_id = ?1 ORDER BY d.handler",
	/* The deliveries_open index is in (event_id, handler) order: no
	 * sort of the backlog per page; dead rows (few) are skipped. */
	[ST_PENDING_PAGE] =
		"SELECT " PENDING_COLS
		" FROM deliveries d JOIN events e ON e.id = d.event_id"
		" WHERE d.state <> 1 AND d.state <> 3 AND d.state <> 4"
		" AND d.event_id >= ?1"
		" ORDER BY d.event_id, d.handler LIMIT ?2",
	/* deliveries_backlog gives the rows in order: one handler's
	 * backlog, never a scan of the others' */
	[ST_PENDING_HANDLER_PAGE] =
		"SELECT " PENDING_COLS
		" FROM deliveries d JOIN events e ON e.id = d.event_id"
		" WHERE d.handler = ?1 AND d.state <> 1 AND d.state <> 3"
		" AND d.state <> 4"
		" AND d.event_id >= ?2 ORDER BY d.event_id LIMIT ?3",
	[ST_LAST_ID] = "SELECT max(id) FROM events",
	[ST_ATTEMPT_ADD] = "INSERT INTO attempts (event_id, handler, attempt,"
			   " started_ms, duration_us, error)"
			   " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	/* all but the last ?3 of the delivery's attempts */
	[ST_ATTEMPT_TRIM] = "DELETE FROM attempts WHERE event_id = ?1"
			    " AND handler = ?2 AND id <= (SELECT id FROM"
			    " attempts WHERE event_id = ?1 AND handler = ?2"
			    " ORDER BY id DESC LIMIT 1 OFFSET ?3)",
	[ST_GET_ATTEMPTS] = "SELECT handler, attempt, started_ms, duration_us,"
			    " error FROM attempts WHERE event_id = ?1"
			    " ORDER BY handler, id",
	/* prepared once: they run at every group commit (sqlite3_exec would
	 * parse them each time) */
	[ST_BEGIN] = "BEGIN IMMEDIATE",
	[ST_COMMIT] = "COMMIT",
};


/* Rows written inside a transaction are kept and sent at commit (or before
 * any other statement) in multi-row INSERTs of up to JOURNAL_MULTI_MAX
 * rows: SQLite's per-statement work is then paid per statement, not per
 * event and per delivery row.  The event ids are given
 * out at append time from max(id)+1, read once per transaction (the
 * transaction is IMMEDIATE: nobody else writes meanwhile).  Text values
 * are copied into the buffer's arena (the caller's strings may go). */
#define JOURNAL_MULTI_SIZES 6 /* statements of 1, 2, 4 .. 32 rows */
#define JOURNAL_MULTI_MAX (1u << (JOURNAL_MULTI_SIZES - 1))
/* rows kept at most before they are sent (memory bound; a full disk shows
 * in journal_sqlite_append soon, not only at commit) */
#define JOURNAL_BUF_ROWS 512

enum journal_multi { JM_EVENTS, JM_DELIVERIES };

static const unsigned journal_multi_cols[2] = { 7, 2 };

struct journal_val {
	int64_t i;      /* integer, or the text's offset in the arena */
	int32_t len;    /* text length, -1 for an integer */
};

struct journal_buf {
	struct journal_val *v;
	size_t rows, cap_rows;
	char *arena;
	size_t used, cap;
};

struct journal_sqlite {
	struct journal j; /* first: the front's part */
	sqlite3 *db;
	bool in_tx;  /* between journal_begin and commit/rollback */
	bool sync_full;   /* journal.sync: full */
	bool sync_normal_now; /* the connection is at synchronous = NORMAL */
	bool results_tx;  /* this transaction: delivery rows only, no sync */
	sqlite3_stmt *st[ST_COUNT];
	/* rows of the open transaction not sent yet (see journal_buf) */
	struct journal_buf ev_buf, dl_buf;
	int64_t next_id; /* the id of the next event appended, 0: unknown */
	bool tx_failed;  /* a buffered write failed: the commit must not */
	sqlite3_stmt *multi[2][JOURNAL_MULTI_SIZES];
};

/* The backend's struct of the front's j. */
static struct journal_sqlite *journal_sqlite_of(struct journal *j)
{
	return (struct journal_sqlite *)j;
}

static int64_t journal_sqlite_last_id(struct journal *base);

/* ---- errors ---- */

/* -errno for an SQLite result code. */
static int journal_sqlite_errno(sqlite3 *db, int rc)
{
	int sys = db != NULL ? sqlite3_system_errno(db) : 0;

	switch (rc & 0xff) {
	case SQLITE_OK:
		return 0;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_IOERR:
		if (sys == ENOSPC || sys == EDQUOT)
			return -ENOSPC;
		return -EIO;
	case SQLITE_CANTOPEN:
		return sys > 0 ? -sys : -EACCES;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_PERM:
	case SQLITE_AUTH:
		return -EACCES;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_TOOBIG:
		return -E2BIG;
	case SQLITE_MISUSE:
	case SQLITE_RANGE:
		return -EINVAL;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB:
		return -EBADMSG;
	default:
		return -EIO;
	}
}

/* Report SQLite's error for rc (SQLite's message) and return its -errno. */
static int journal_sqlite_fail(struct journal_sqlite *j, const char **error_r,
			       const char *op, int rc)
{
	const char *msg = sqlite3_errmsg(j->db);

	/* errmsg may describe a later, successful call (e.g. a reset). */
	if (sqlite3_errcode(j->db) == SQLITE_OK)
		msg = sqlite3_errstr(rc);
	journal_set_error(&j->j, error_r, op, "%s", msg);
	return journal_sqlite_errno(j->db, rc);
}

/* Inside journal_begin..commit, SQLite may have rolled the transaction back
 * by itself after an error (SQLITE_FULL, SQLITE_IOERR): refuse to go on in
 * autocommit mode, which would commit rows piecemeal. */
static int journal_sqlite_check_tx(struct journal_sqlite *j,
				   const char **error_r, const char *op)
{
	if (j->in_tx && sqlite3_get_autocommit(j->db)) {
		journal_set_error(&j->j, error_r, op,
				  "transaction was rolled back after an "
				  "earlier error");
		return -EIO;
	}
	return 0;
}

/* ---- open and close ---- */

static int journal_sqlite_exec(struct journal_sqlite *j, const char *sql,
			       const char *op, const char **error_r)
{
	int rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return journal_sqlite_fail(j, error_r, op, rc);
	return 0;
}

/* One integer from a one-row query (PRAGMA user_version, max(id)). */
static int journal_sqlite_int_query(struct journal_sqlite *j, const char *sql,
				    const char *op, int64_t *value_r,
				    const char **error_r)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);

	if (rc != SQLITE_OK)
		return journal_sqlite_fail(j, error_r, op, rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*value_r = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*value_r = 0;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		int ret = journal_sqlite_fail(j, error_r, op, rc);

		sqlite3_finalize(st);
		return ret;
	}
	sqlite3_finalize(st);
	return 0;
}

/* Create the schema in a new journal, or check an existing one's version.
 * Later versions migrate here, step by step, inside one transaction. */
static int journal_sqlite_migrate(struct journal_sqlite *j,
				  const char **error_r)
{
	int64_t version;
	int ret;

	ret = journal_sqlite_exec(j, "BEGIN IMMEDIATE", "schema", error_r);
	if (ret < 0)
		return ret;
	ret = journal_sqlite_int_query(j, "PRAGMA user_version", "schema",
				       &version, error_r);
	if (ret < 0)
		goto fail;
	if (version > JOURNAL_SCHEMA_VERSION) {
		journal_set_error(&j->j, error_r, "schema",
				  "schema version %" PRId64
				  " is newer than this ophookd supports (%d)",
				  version, JOURNAL_SCHEMA_VERSION);
		ret = -ENOTSUP;
		goto fail;
	}
	if (version == 0) {
		for (size_t i = 0;
		     i < sizeof(journal_schema) / sizeof(journal_schema[0]);
		     i++) {
			ret = journal_sqlite_exec(j, journal_schema[i],
						  "schema", error_r);
			if (ret < 0)
				goto fail;
		}
	} else {
		for (size_t i = 0; version < 2 &&
				   i < sizeof(journal_migrate_2) /
					       sizeof(journal_migrate_2[0]);
		     i++) {
			ret = journal_sqlite_exec(j, journal_migrate_2[i],
						  "schema", error_r);
			if (ret < 0)
				goto fail;
		}
		for (size_t i = 0; version < 3 &&
				   i < sizeof(journal_migrate_3) /
					       sizeof(journal_migrate_3[0]);
		     i++) {
			ret = journal_sqlite_exec(j, journal_migrate_3[i],
						  "schema", error_r);
			if (ret < 0)
				goto fail;
		}
		for (size_t i = 0; version < 4 &&
				   i < sizeof(journal_migrate_4) /
					       sizeof(journal_migrate_4[0]);
		     i++) {
			ret = journal_sqlite_exec(j, journal_migrate_4[i],
						  "schema", error_r);
			if (ret < 0)
				goto fail;
		}
	}
	if (version < JOURNAL_SCHEMA_VERSION) {
		ret = journal_sqlite_exec(j, "PRAGMA user_version = 4",
					  "schema", error_r);
		if (ret < 0)
			goto fail;
	}
	return journal_sqlite_exec(j, "COMMIT", "schema", error_r);
fail:
	sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	return ret;
}

static int journal_sqlite_setup(struct journal_sqlite *j, bool sync_full,
				const char **error_r)
{
	sqlite3_stmt *st;
	int rc, ret;

	sqlite3_extended_result_codes(j->db, 1);
	sqlite3_busy_timeout(j->db, JOURNAL_BUSY_TIMEOUT_MS);

	rc = sqlite3_prepare_v2(j->db, "PRAGMA journal_mode = WAL", -1, &st,
				NULL);
	if (rc != SQLITE_OK)
		return journal_sqlite_fail(j, error_r, "open", rc);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		ret = journal_sqlite_fail(j, error_r, "open", rc);
		sqlite3_finalize(st);
		return ret;
	}
	const char *mode = (const char *)sqlite3_column_text(st, 0);
	bool wal = mode != NULL && (strcmp(mode, "wal") == 0 ||
				    strcmp(mode, "memory") == 0);
	sqlite3_finalize(st);
	if (!wal) {
		journal_set_error(&j->j, error_r, "open",
				  "cannot switch to WAL journal mode");
		return -ENOTSUP;
	}
	j->sync_full = sync_full;
	ret = journal_sqlite_exec(j,
				  sync_full ? "PRAGMA synchronous = FULL"
					    : "PRAGMA synchronous = NORMAL",
				  "open", error_r);
	if (ret < 0)
		return ret;
	/* 2 MiB of page cache: the subject index takes a page per subject
	 * written in a transaction.  Checkpoint every 2000 WAL pages (8 MiB):
	 * a page rewritten by many transactions is copied back once; keep the
	 * WAL file at most 64 MiB after a checkpoint. */
	ret = journal_sqlite_exec(j,
				  "PRAGMA cache_size = -2048;"
				  " PRAGMA wal_autocheckpoint = 2000;"
				  " PRAGMA journal_size_limit = 67108864",
				  "open", error_r);
	if (ret < 0)
		return ret;
	ret = journal_sqlite_migrate(j, error_r);
	if (ret < 0)
		return ret;
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(j->db, journal_stmt_sql[i], -1,
					SQLITE_PREPARE_PERSISTENT, &j->st[i],
					NULL);
		if (rc != SQLITE_OK)
			return journal_sqlite_fail(j, error_r, "prepare", rc);
	}
	return 0;
}

static int journal_sqlite_open(struct journal *base,
			       const struct journal_settings *s,
			       const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	const char *path = s->path != NULL ? s->path : "";
	int rc;

	j->j.name = xstrdup(path);
	/* Create the file 0600 first: its -wal and -shm files get its mode,
	 * and event payloads are not for everyone to read. */
	if (path[0] != '\0' && strcmp(path, ":memory:") != 0) {
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			      0600);

		if (fd < 0) {
			int ret = -errno;

			journal_set_error(&j->j, error_r, "open", "%s",
					  strerror(errno));
			return ret;
		}
		close(fd);
	}
	rc = sqlite3_open_v2(path, &j->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK)
		return journal_sqlite_fail(j, error_r, "open", rc);
	return journal_sqlite_setup(j, s->sync_full, error_r);
}

/* Step a cached insert/update statement once and reset it. */
static int journal_sqlite_step_reset(struct journal_sqlite *j, sqlite3_stmt *st,
				     const char *op, const char **error_r)
{
	int rc = sqlite3_step(st);

	if (rc != SQLITE_DONE) {
		int ret = journal_sqlite_fail(j, error_r, op, rc);

		sqlite3_reset(st);
		return ret;
	}
	sqlite3_reset(st);
	return 0;
}

/* ---- buffered rows ---- */

static void journal_sqlite_buf_clear(struct journal_buf *b)
{
	b->rows = 0;
	b->used = 0;
}

static void journal_sqlite_buf_free(struct journal_buf *b)
{
	free(b->v);
	free(b->arena);
	memset(b, 0, sizeof(*b));
}

/* Room for one more row of ncols values; returns its first value. */
static struct journal_val *journal_sqlite_buf_row(struct journal_buf *b,
						  unsigned ncols)
{
	if (b->rows == b->cap_rows) {
		b->cap_rows = b->cap_rows ? b->cap_rows * 2 : 256;
		b->v = xrealloc(b->v, b->cap_rows * ncols * sizeof(*b->v));
	}
	return b->v + b->rows++ * ncols;
}

static void journal_sqlite_buf_text(struct journal_buf *b,
				    struct journal_val *v, const char *s)
{
	size_t len = strlen(s);

	if (b->used + len + 1 > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 65536;
		while (b->used + len + 1 > b->cap)
			b->cap *= 2;
		b->arena = xrealloc(b->arena, b->cap);
	}
	memcpy(b->arena + b->used, s, len + 1);
	v->i = (int64_t)b->used;
	v->len = (int32_t)len;
	b->used += len + 1;
}

static void journal_sqlite_buf_int(struct journal_val *v, int64_t i)
{
	v->i = i;
	v->len = -1;
}

/* The multi-row INSERT of 2^k rows for `which`, prepared on first use. */
static int journal_sqlite_multi_stmt(struct journal_sqlite *j,
				     enum journal_multi which, unsigned k,
				     sqlite3_stmt **st_r, const char **error_r)
{
	static const char *const head[2] = {
		"INSERT INTO events (id, type, subject, source, node, time_ms,"
		" payload) VALUES ",
		"INSERT INTO deliveries (event_id, handler) VALUES ",
	};
	static const char *const row[2] = { "(?,?,?,?,?,?,?)", "(?,?)" };
	char *sql;
	size_t len, n = (size_t)1 << k;
	int rc;

	if (j->multi[which][k] != NULL) {
		*st_r = j->multi[which][k];
		return 0;
	}
	len = strlen(head[which]) + n * (strlen(row[which]) + 1) + 1;
	sql = xmalloc(len);
	strcpy(sql, head[which]);
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			strcat(sql, ",");
		strcat(sql, row[which]);
	}
	rc = sqlite3_prepare_v3(j->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
				&j->multi[which][k], NULL);
	free(sql);
	if (rc != SQLITE_OK)
		return journal_sqlite_fail(j, error_r, "prepare", rc);
	*st_r = j->multi[which][k];
	return 0;
}

/* Send one buffer's rows. */
static int journal_sqlite_buf_send(struct journal_sqlite *j,
				   enum journal_multi which, const char *op,
				   const char **error_r)
{
	struct journal_buf *b = which == JM_EVENTS ? &j->ev_buf : &j->dl_buf;
	unsigned ncols = journal_multi_cols[which];
	size_t done = 0;
	int ret = 0;

	while (ret == 0 && done < b->rows) {
		unsigned k = JOURNAL_MULTI_SIZES - 1;
		sqlite3_stmt *st = NULL;

		while (((size_t)1 << k) > b->rows - done)
			k--;
		ret = journal_sqlite_multi_stmt(j, which, k, &st, error_r);
		if (ret < 0)
			break;
		size_t n = (size_t)1 << k;
		const struct journal_val *v = b->v + done * ncols;

		for (size_t i = 0; i < n * ncols; i++) {
			if (v[i].len < 0)
				sqlite3_bind_int64(st, (int)i + 1, v[i].i);
			else
				sqlite3_bind_text(st, (int)i + 1,
						  b->arena + v[i].i, v[i].len,
						  SQLITE_STATIC);
		}
		ret = journal_sqlite_step_reset(j, st, op, error_r);
		done += n;
	}
	journal_sqlite_buf_clear(b);
	return ret;
}

/* Send the transaction's buffered rows: events, then deliveries. */
static int journal_sqlite_flush(struct journal_sqlite *j, const char **error_r)
{
	int ret = 0;

	if (j->ev_buf.rows > 0)
		ret = journal_sqlite_buf_send(j, JM_EVENTS, "append", error_r);
	if (ret == 0 && j->dl_buf.rows > 0)
		ret = journal_sqlite_buf_send(j, JM_DELIVERIES, "delivery add",
					      error_r);
	journal_sqlite_buf_clear(&j->ev_buf);
	journal_sqlite_buf_clear(&j->dl_buf);
	if (ret < 0)
		j->tx_failed = true;
	return ret;
}

/* Before a read inside a transaction: the buffered rows go first (an error
 * fails the commit). */
static void journal_sqlite_flush_reads(struct journal_sqlite *j)
{
	if (j->in_tx && (j->ev_buf.rows > 0 || j->dl_buf.rows > 0))
		(void)journal_sqlite_flush(j, NULL);
}

static void journal_sqlite_close(struct journal *base)
{
	struct journal_sqlite *j = journal_sqlite_of(base);

	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(j->st[i]);
	for (int w = 0; w < 2; w++)
		for (int k = 0; k < JOURNAL_MULTI_SIZES; k++)
			sqlite3_finalize(j->multi[w][k]);
	journal_sqlite_buf_free(&j->ev_buf);
	journal_sqlite_buf_free(&j->dl_buf);
	if (j->db != NULL) {
		if (!sqlite3_get_autocommit(j->db))
			sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		sqlite3_close(j->db);
	}
}

/* ---- transactions ---- */

/* BEGIN IMMEDIATE; a transaction of delivery results only (journal.sync
 * full) runs at synchronous = NORMAL, any other at FULL again.  The pragma
 * is set outside the transaction (inside, it does not change the commit)
 * and not prepared (SQLite applies it when it compiles it). */
static int journal_sqlite_tx_begin(struct journal *base, bool results,
				   const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	int ret;

	if (j->in_tx || !sqlite3_get_autocommit(j->db)) {
		journal_set_error(&j->j, error_r, "begin",
				  "a transaction is already open");
		return -EINPROGRESS;
	}
	if (j->sync_full && results != j->sync_normal_now) {
		ret = journal_sqlite_exec(
			j,
			results ? "PRAGMA synchronous = NORMAL"
				: "PRAGMA synchronous = FULL",
			"begin", error_r);
		if (ret < 0)
			return ret;
		j->sync_normal_now = results;
	}
	ret = journal_sqlite_step_reset(j, j->st[ST_BEGIN], "begin", error_r);
	if (ret < 0)
		return ret;
	j->in_tx = true;
	j->results_tx = results && j->sync_full;
	j->tx_failed = false;
	j->next_id = 0;
	journal_sqlite_buf_clear(&j->ev_buf);
	journal_sqlite_buf_clear(&j->dl_buf);
	return 0;
}

static int journal_sqlite_commit(struct journal *base, const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	int ret;

	if (!j->in_tx) {
		journal_set_error(&j->j, error_r, "commit",
				  "no transaction open");
		return -EINVAL;
	}
	ret = journal_sqlite_check_tx(j, error_r, "commit");
	if (ret == 0)
		ret = journal_sqlite_flush(j, error_r);
	if (ret == 0 && j->tx_failed) {
		journal_set_error(&j->j, error_r, "commit", "a write of the "
				  "transaction failed");
		ret = -EIO;
	}
	if (ret == 0)
		ret = journal_sqlite_check_tx(j, error_r, "commit");
	if (ret < 0) {
		/* SQLite may have ended the transaction (SQLITE_FULL): the
		 * caller rolls back either way */
		j->in_tx = !sqlite3_get_autocommit(j->db);
		if (!j->in_tx)
			j->results_tx = false;
		return ret;
	}
	ret = journal_sqlite_step_reset(j, j->st[ST_COMMIT], "commit",
					error_r);
	/* A failed COMMIT may leave the transaction open (SQLITE_BUSY): the
	 * caller retries the commit or rolls back. */
	if (ret == 0 || sqlite3_get_autocommit(j->db))
		j->in_tx = false;
	if (!j->in_tx)
		j->results_tx = false;
	return ret;
}

static void journal_sqlite_rollback(struct journal *base)
{
	struct journal_sqlite *j = journal_sqlite_of(base);

	if (!sqlite3_get_autocommit(j->db))
		sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
	j->in_tx = false;
	j->results_tx = false;
	j->tx_failed = false;
	journal_sqlite_buf_clear(&j->ev_buf);
	journal_sqlite_buf_clear(&j->dl_buf);
}

/* ---- the hot path ---- */

static int journal_sqlite_append(struct journal *base,
				 struct journal_event *ev, const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	sqlite3_stmt *st = j->st[ST_APPEND];
	int ret;

	ret = journal_sqlite_check_tx(j, error_r, "append");
	if (ret < 0)
		return ret;
	if (j->results_tx) {
		/* it would commit without a sync */
		journal_set_error(&j->j, error_r, "append", "an event in a "
				  "transaction begun for results only");
		return -EINVAL;
	}
	if (j->in_tx) {
		struct journal_val *v;

		if (j->next_id == 0 || j->ev_buf.rows >= JOURNAL_BUF_ROWS ||
		    j->dl_buf.rows >= JOURNAL_BUF_ROWS) {
			ret = journal_sqlite_flush(j, error_r);
			if (ret < 0)
				return ret;
		}
		if (j->next_id == 0)
			j->next_id = journal_sqlite_last_id(base) + 1;
		v = journal_sqlite_buf_row(&j->ev_buf,
					   journal_multi_cols[JM_EVENTS]);
		ev->id = j->next_id++;
		journal_sqlite_buf_int(&v[0], ev->id);
		journal_sqlite_buf_text(&j->ev_buf, &v[1], ev->type);
		journal_sqlite_buf_text(&j->ev_buf, &v[2],
					ev->subject != NULL ? ev->subject : "");
		journal_sqlite_buf_text(&j->ev_buf, &v[3],
					ev->source != NULL ? ev->source : "");
		journal_sqlite_buf_text(&j->ev_buf, &v[4],
					ev->node != NULL ? ev->node : "");
		journal_sqlite_buf_int(&v[5], ev->time_ms != 0 ? ev->time_ms
							       : now_ms());
		journal_sqlite_buf_text(&j->ev_buf, &v[6],
					ev->payload != NULL ? ev->payload
							    : "{}");
		return 0;
	}
	sqlite3_bind_text(st, 1, ev->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, ev->subject != NULL ? ev->subject : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 3, ev->source != NULL ? ev->source : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_text(st, 4, ev->node != NULL ? ev->node : "", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, ev->time_ms != 0 ? ev->time_ms : now_ms());
	sqlite3_bind_text(st, 6, ev->payload != NULL ? ev->payload : "{}", -1,
			  SQLITE_STATIC);
	ret = journal_sqlite_step_reset(j, st, "append", error_r);
	if (ret < 0)
		return ret;
	ev->id = sqlite3_last_insert_rowid(j->db);
	return 0;
}

static int journal_sqlite_delivery_add(struct journal *base,
				       int64_t event_id, const char *handler,
				       const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	sqlite3_stmt *st = j->st[ST_DELIVERY_ADD];
	int ret = journal_sqlite_check_tx(j, error_r, "delivery add");

	if (ret < 0)
		return ret;
	if (j->in_tx) {
		struct journal_val *v;

		if (j->dl_buf.rows >= JOURNAL_BUF_ROWS) {
			ret = journal_sqlite_flush(j, error_r);
			if (ret < 0)
				return ret;
		}
		v = journal_sqlite_buf_row(&j->dl_buf,
					   journal_multi_cols[JM_DELIVERIES]);

		journal_sqlite_buf_int(&v[0], event_id);
		journal_sqlite_buf_text(&j->dl_buf, &v[1], handler);
		return 0;
	}
	sqlite3_bind_int64(st, 1, event_id);
	sqlite3_bind_text(st, 2, handler, -1, SQLITE_STATIC);
	return journal_sqlite_step_reset(j, st, "delivery add", error_r);
}

static int journal_sqlite_delivery_update(struct journal *base,
					  const struct journal_delivery *d,
					  const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	sqlite3_stmt *st = j->st[ST_DELIVERY_UPDATE];
	int ret = journal_sqlite_check_tx(j, error_r, "delivery update");

	if (ret == 0)
		ret = journal_sqlite_flush(j, error_r);
	if (ret < 0)
		return ret;
	sqlite3_bind_int64(st, 1, d->event_id);
	sqlite3_bind_text(st, 2, d->handler, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, (int)d->state);
	sqlite3_bind_int64(st, 4, d->attempts);
	sqlite3_bind_int64(st, 5, d->next_ms);
	if (d->last_error != NULL)
		sqlite3_bind_text(st, 6, d->last_error, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, d->duration_us);
	ret = journal_sqlite_step_reset(j, st, "delivery update", error_r);
	if (ret < 0)
		return ret;
	if (sqlite3_changes(j->db) == 0) {
		journal_set_error(&j->j, error_r, "delivery update",
				  "no delivery of event %" PRId64
				  " to handler %s",
				  d->event_id, d->handler);
		return -ENOENT;
	}
	if (d->started_ms == 0)
		return 0;
	st = j->st[ST_ATTEMPT_ADD];
	sqlite3_bind_int64(st, 1, d->event_id);
	sqlite3_bind_text(st, 2, d->handler, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, d->attempts);
	sqlite3_bind_int64(st, 4, d->started_ms);
	sqlite3_bind_int64(st, 5, d->duration_us);
	if (d->last_error != NULL)
		sqlite3_bind_text(st, 6, d->last_error, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	ret = journal_sqlite_step_reset(j, st, "attempt add", error_r);
	/* a first attempt that succeeded cannot make the history too long
	 * but by one (after a retry): the trim is for failures */
	if (ret < 0 || d->state == DELIVERY_DONE)
		return ret;
	st = j->st[ST_ATTEMPT_TRIM];
	sqlite3_bind_int64(st, 1, d->event_id);
	sqlite3_bind_text(st, 2, d->handler, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, JOURNAL_ATTEMPTS_KEEP);
	return journal_sqlite_step_reset(j, st, "attempt trim", error_r);
}

/* ---- reading back ---- */

static const char *journal_sqlite_col_text(sqlite3_stmt *st, int col)
{
	const char *s = (const char *)sqlite3_column_text(st, col);

	return s != NULL ? s : "";
}

/* Fill ev from the EVENT_COLS at column `col` of st. */
static void journal_sqlite_row_event(sqlite3_stmt *st, int col,
				     struct journal_event *ev)
{
	ev->id = sqlite3_column_int64(st, col);
	ev->type = journal_sqlite_col_text(st, col + 1);
	ev->subject = journal_sqlite_col_text(st, col + 2);
	ev->source = journal_sqlite_col_text(st, col + 3);
	ev->node = journal_sqlite_col_text(st, col + 4);
	ev->time_ms = sqlite3_column_int64(st, col + 5);
	ev->payload = journal_sqlite_col_text(st, col + 6);
}

/* Fill d (but event_id) from the DELIVERY_COLS at column `col` of st. */
static void journal_sqlite_row_delivery(sqlite3_stmt *st, int col,
					struct journal_delivery *d)
{
	d->handler = journal_sqlite_col_text(st, col);
	d->state = (enum delivery_state)sqlite3_column_int(st, col + 1);
	d->attempts = (unsigned)sqlite3_column_int64(st, col + 2);
	d->next_ms = sqlite3_column_int64(st, col + 3);
	d->last_error = (const char *)sqlite3_column_text(st, col + 4);
	d->duration_us = sqlite3_column_int64(st, col + 5);
}

/* A pending row copied out of SQLite, so that callbacks may use the
 * journal (update a delivery, say) while we page through. */
struct journal_pending_row {
	struct journal_event ev;
	struct journal_delivery d;
	char *strings; /* all the strings above, one allocation */
};

static int journal_sqlite_load_pending_from(struct journal *base,
					    int64_t first_id,
					    journal_pending_cb *cb, void *ctx,
					    const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	struct journal_pending_row *rows =
		xcalloc(JOURNAL_PAGE, sizeof(*rows));
	sqlite3_stmt *st = j->st[ST_PENDING_PAGE];
	int64_t from_id = first_id;
	char *after_handler = NULL; /* last row handed out, of event from_id */
	unsigned seen = 0;	    /* rows handed out of event from_id */
	int ret = 0;

	journal_sqlite_flush_reads(j);

	for (;;) {
		size_t n = 0;
		int rc = SQLITE_DONE;

		/* Rows of event from_id already handed out come back (>=)
		 * and are skipped: the LIMIT leaves room for them. */
		sqlite3_bind_int64(st, 1, from_id);
		sqlite3_bind_int64(st, 2, (int64_t)JOURNAL_PAGE + seen);
		while (n < JOURNAL_PAGE &&
		       (rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct journal_event ev;
			struct journal_delivery d;

			journal_sqlite_row_event(st, 0, &ev);
			journal_sqlite_row_delivery(st, 7, &d);
			d.event_id = ev.id;
			if (after_handler != NULL && ev.id == from_id &&
			    strcmp(d.handler, after_handler) <= 0)
				continue;
			rows[n].strings = journal_row_copy(&ev, &d, &rows[n].ev,
							   &rows[n].d);
			n++;
		}
		if (n == JOURNAL_PAGE)
			rc = SQLITE_DONE;
		if (rc != SQLITE_DONE)
			ret = journal_sqlite_fail(j, error_r, "load pending",
						  rc);
		sqlite3_reset(st);
		/* Move the cursor to the last row of this page. */
		for (size_t i = 0; ret == 0 && i < n; i++) {
			if (rows[i].ev.id != from_id) {
				from_id = rows[i].ev.id;
				seen = 0;
			}
			seen++;
		}
		if (ret == 0 && n > 0) {
			free(after_handler);
			after_handler = xstrdup(rows[n - 1].d.handler);
		}
		for (size_t i = 0; i < n; i++) {
			if (ret == 0)
				ret = cb(&rows[i].ev, &rows[i].d, ctx);
			free(rows[i].strings);
		}
		if (ret != 0 || n == 0)
			break;
	}
	free(after_handler);
	free(rows);
	if (ret > 0)
		ret = 0; /* a callback's "stop" is not an error */
	return ret;
}

static int journal_sqlite_load_pending_handler(struct journal *base,
					       const char *handler,
					       int64_t first_id,
					       journal_pending_cb *cb,
					       void *ctx, const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	struct journal_pending_row *rows =
		xcalloc(JOURNAL_PAGE, sizeof(*rows));
	sqlite3_stmt *st = j->st[ST_PENDING_HANDLER_PAGE];
	int64_t from_id = first_id;
	int ret = 0;

	journal_sqlite_flush_reads(j);
	for (;;) {
		size_t n = 0;
		int rc;

		/* one row per event for a handler: the next page starts
		 * after the last id */
		sqlite3_bind_text(st, 1, handler, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, from_id);
		sqlite3_bind_int64(st, 3, JOURNAL_PAGE);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct journal_event ev;
			struct journal_delivery d;

			journal_sqlite_row_event(st, 0, &ev);
			journal_sqlite_row_delivery(st, 7, &d);
			d.event_id = ev.id;
			rows[n].strings = journal_row_copy(&ev, &d, &rows[n].ev,
							   &rows[n].d);
			n++;
		}
		if (rc != SQLITE_DONE)
			ret = journal_sqlite_fail(j, error_r, "load pending",
						  rc);
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		if (n > 0)
			from_id = rows[n - 1].ev.id + 1;
		for (size_t i = 0; i < n; i++) {
			if (ret == 0)
				ret = cb(&rows[i].ev, &rows[i].d, ctx);
			free(rows[i].strings);
		}
		if (ret != 0 || n < JOURNAL_PAGE)
			break;
	}
	free(rows);
	return ret > 0 ? 0 : ret;
}

/* The JSON object of the event in st at EVENT_COLS, with its deliveries. */
static int journal_sqlite_event_json(struct journal_sqlite *j,
				     sqlite3_stmt *st, bool get_attempts,
				     json_t **obj_r, const char *op,
				     const char **error_r)
{
	struct journal_event ev;
	sqlite3_stmt *dst = j->st[ST_GET_DELIVERIES];
	json_t *obj;
	int rc;

	journal_sqlite_row_event(st, 0, &ev);
	obj = journal_event_json(&ev);
	sqlite3_bind_int64(dst, 1, ev.id);
	while ((rc = sqlite3_step(dst)) == SQLITE_ROW) {
		struct journal_delivery d;

		journal_sqlite_row_delivery(dst, 0, &d);
		journal_event_json_delivery(obj, &d, NULL, NULL);
	}
	if (rc != SQLITE_DONE) {
		int ret = journal_sqlite_fail(j, error_r, op, rc);

		sqlite3_reset(dst);
		json_decref(obj);
		return ret;
	}
	sqlite3_reset(dst);
	if (get_attempts) {
		sqlite3_stmt *ast = j->st[ST_GET_ATTEMPTS];

		sqlite3_bind_int64(ast, 1, ev.id);
		while ((rc = sqlite3_step(ast)) == SQLITE_ROW)
			journal_event_json_attempt(
				obj, journal_sqlite_col_text(ast, 0),
				sqlite3_column_int64(ast, 1),
				sqlite3_column_int64(ast, 2),
				sqlite3_column_int64(ast, 3),
				sqlite3_column_type(ast, 4) == SQLITE_NULL
					? NULL
					: journal_sqlite_col_text(ast, 4));
		sqlite3_reset(ast);
		if (rc != SQLITE_DONE) {
			json_decref(obj);
			return journal_sqlite_fail(j, error_r, op, rc);
		}
	}
	*obj_r = obj;
	return 0;
}

static int journal_sqlite_get_event(struct journal *base, int64_t id,
				    json_t **event_r, const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	sqlite3_stmt *st = j->st[ST_GET_EVENT];
	int rc, ret;

	journal_sqlite_flush_reads(j);
	sqlite3_bind_int64(st, 1, id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		ret = journal_sqlite_event_json(j, st, true, event_r,
						"get event", error_r);
	} else if (rc == SQLITE_DONE) {
		journal_set_error(&j->j, error_r, "get event",
				  "no event %" PRId64, id);
		ret = -ENOENT;
	} else {
		ret = journal_sqlite_fail(j, error_r, "get event", rc);
	}
	sqlite3_reset(st);
	return ret;
}

/* A type pattern where only '*' is special, as SQLite GLOB text. */
static char *journal_sqlite_glob(const char *pattern)
{
	char *out = xmalloc(strlen(pattern) * 3 + 1), *p = out;

	for (const char *s = pattern; *s != '\0'; s++) {
		if (*s == '?' || *s == '[') {
			*p++ = '[';
			*p++ = *s;
			*p++ = ']';
		} else {
			*p++ = *s;
		}
	}
	*p = '\0';
	return out;
}

/* Run a prepared query (newest first, LIMIT in its last parameter
 * `limit_arg`) and append its events to arr; *left is the room left in the
 * result. */
static int journal_sqlite_query_run(struct journal_sqlite *j,
				    sqlite3_stmt *st, int limit_arg,
				    json_t *arr, int64_t *left,
				    const char **error_r)
{
	int rc, ret = 0;

	sqlite3_bind_int64(st, limit_arg, *left);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *obj;

		ret = journal_sqlite_event_json(j, st, false, &obj, "query",
						 error_r);
		if (ret < 0)
			break;
		json_array_append_new(arr, obj);
		(*left)--;
	}
	if (ret == 0 && rc != SQLITE_DONE)
		ret = journal_sqlite_fail(j, error_r, "query", rc);
	sqlite3_reset(st);
	return ret;
}

static int journal_sqlite_query(struct journal *base,
				const struct journal_filter *f,
				enum delivery_state state, json_t **events_r,
				const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	char sql[1024], *glob = NULL;
	sqlite3_stmt *st = NULL;
	json_t *newest_first, *events;
	int rc, ret = 0, arg = 0, bucket_arg = 0;
	int64_t left;
	size_t n;

	journal_sqlite_flush_reads(j);
	snprintf(sql, sizeof(sql),
		 "SELECT " EVENT_COLS " FROM events e WHERE 1%s%s%s%s%s%s%s%s"
		 " ORDER BY e.id DESC LIMIT ?",
		 f->subject != NULL ? " AND (e.id >> 12) = ?"
				      " AND e.subject = ?"
				    : "",
		 f->type != NULL ? " AND e.type GLOB ?" : "",
		 f->state == NULL ? ""
		 : state == DELIVERY_DONE
			 ? " AND e.id IN (SELECT d.event_id FROM"
			   " deliveries d WHERE d.state = ?)"
			 /* the other states are in deliveries_open */
			 : " AND e.id IN (SELECT d.event_id FROM"
			   " deliveries d WHERE d.state = ? AND d.state <> 1)",
		 f->since_ms != 0 ? " AND e.time_ms >= ?" : "",
		 f->after_id != 0 ? " AND e.id > ?" : "",
		 f->until_ms != 0 ? " AND e.time_ms < ?" : "",
		 f->before_id != 0 ? " AND e.id < ?" : "",
		 f->user != NULL ? " AND json_extract(e.payload, '$.user') = ?"
				 : "");
	rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return journal_sqlite_fail(j, error_r, "query", rc);
	if (f->subject != NULL) {
		bucket_arg = ++arg;
		sqlite3_bind_text(st, ++arg, f->subject, -1, SQLITE_STATIC);
	}
	if (f->type != NULL) {
		glob = journal_sqlite_glob(f->type);
		sqlite3_bind_text(st, ++arg, glob, -1, SQLITE_STATIC);
	}
	if (f->state != NULL)
		sqlite3_bind_int(st, ++arg, (int)state);
	if (f->since_ms != 0)
		sqlite3_bind_int64(st, ++arg, f->since_ms);
	if (f->after_id != 0)
		sqlite3_bind_int64(st, ++arg, f->after_id);
	if (f->until_ms != 0)
		sqlite3_bind_int64(st, ++arg, f->until_ms);
	if (f->before_id != 0)
		sqlite3_bind_int64(st, ++arg, f->before_id);
	if (f->user != NULL)
		sqlite3_bind_text(st, ++arg, f->user, -1, SQLITE_STATIC);
	left = f->limit;

	newest_first = json_array();
	if (f->subject == NULL) {
		ret = journal_sqlite_query_run(j, st, arg + 1, newest_first,
					       &left, error_r);
	} else {
		/* One bucket of the subject index at a time, newest first. */
		int64_t last = journal_sqlite_last_id(base), first = 0;

		ret = journal_sqlite_int_query(j, "SELECT min(id) FROM events",
					       "query", &first, error_r);
		if (f->after_id > first)
			first = f->after_id;
		for (int64_t b = last >> JOURNAL_SUBJECT_SHIFT;
		     ret == 0 && left > 0 &&
		     b >= first >> JOURNAL_SUBJECT_SHIFT;
		     b--) {
			sqlite3_bind_int64(st, bucket_arg, b);
			ret = journal_sqlite_query_run(j, st, arg + 1,
						       newest_first, &left,
						       error_r);
		}
	}
	sqlite3_finalize(st);
	free(glob);
	if (ret < 0) {
		json_decref(newest_first);
		return ret;
	}
	n = json_array_size(newest_first);
	events = json_array();
	for (size_t i = n; i > 0; i--)
		json_array_append(events, json_array_get(newest_first, i - 1));
	json_decref(newest_first);
	*events_r = events;
	return 0;
}

/* ---- status and maintenance ---- */

static int journal_sqlite_counts(struct journal *base, json_t **counts_r,
				 const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	json_t *counts;
	sqlite3_stmt *st;
	int64_t events, last_id;
	int rc, ret;

	journal_sqlite_flush_reads(j);
	ret = journal_sqlite_int_query(j, "SELECT count(*) FROM events",
				       "counts", &events, error_r);
	if (ret < 0)
		return ret;
	ret = journal_sqlite_int_query(j, "SELECT max(id) FROM events",
				       "counts", &last_id, error_r);
	if (ret < 0)
		return ret;
	rc = sqlite3_prepare_v2(j->db,
				"SELECT handler, state, count(*) FROM"
				" deliveries GROUP BY handler, state",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return journal_sqlite_fail(j, error_r, "counts", rc);

	counts = journal_counts_new(events, last_id);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		journal_counts_add(counts, journal_sqlite_col_text(st, 0),
				   sqlite3_column_int(st, 1),
				   sqlite3_column_int64(st, 2));
	if (rc != SQLITE_DONE) {
		ret = journal_sqlite_fail(j, error_r, "counts", rc);
		json_decref(counts);
	} else {
		*counts_r = counts;
	}
	sqlite3_finalize(st);
	return ret;
}

/* One chunk of a prune: collect up to JOURNAL_PRUNE_CHUNK prunable events
 * after the (time, id) cursor and delete them with their deliveries.
 * *more_r is false when the scan reached its end. */
static int journal_sqlite_prune_chunk(struct journal_sqlite *j,
				      sqlite3_stmt *sel, sqlite3_stmt *del_d,
				      sqlite3_stmt *del_a, sqlite3_stmt *del_e,
				      int64_t *cur_time, int64_t *cur_id,
				      unsigned *deleted, bool *more_r,
				      const char **error_r)
{
	int64_t ids[JOURNAL_PRUNE_CHUNK];
	size_t n = 0, scanned = 0;
	int rc, ret = 0;

	sqlite3_bind_int64(sel, 1, *cur_time);
	sqlite3_bind_int64(sel, 2, *cur_id);
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		scanned++;
		*cur_id = sqlite3_column_int64(sel, 0);
		*cur_time = sqlite3_column_int64(sel, 1);
		if (sqlite3_column_int(sel, 2))
			ids[n++] = *cur_id;
	}
	if (rc != SQLITE_DONE)
		ret = journal_sqlite_fail(j, error_r, "prune", rc);
	sqlite3_reset(sel);
	for (size_t i = 0; ret == 0 && i < n; i++) {
		sqlite3_bind_int64(del_d, 1, ids[i]);
		ret = journal_sqlite_step_reset(j, del_d, "prune", error_r);
		if (ret < 0)
			break;
		sqlite3_bind_int64(del_a, 1, ids[i]);
		ret = journal_sqlite_step_reset(j, del_a, "prune", error_r);
		if (ret < 0)
			break;
		sqlite3_bind_int64(del_e, 1, ids[i]);
		ret = journal_sqlite_step_reset(j, del_e, "prune", error_r);
		if (ret == 0)
			(*deleted)++;
	}
	*more_r = scanned == JOURNAL_PRUNE_CHUNK;
	return ret;
}

static int journal_sqlite_prune(struct journal *base, int64_t before_ms,
				unsigned *deleted_r, const char **error_r)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	sqlite3_stmt *sel = NULL, *del_d = NULL, *del_a = NULL, *del_e = NULL;
	/* Inside the caller's transaction, prune within it; otherwise one
	 * short transaction per chunk, so the write lock is never held
	 * long. */
	bool own_tx;
	int64_t last_id, cur_time = INT64_MIN, cur_id = 0;
	unsigned deleted = 0;
	bool more = true;
	int rc, ret;

	journal_sqlite_flush_reads(j);
	own_tx = sqlite3_get_autocommit(j->db);

	*deleted_r = 0;
	ret = journal_sqlite_check_tx(j, error_r, "prune");
	if (ret < 0)
		return ret;
	ret = journal_sqlite_int_query(j, "SELECT max(id) FROM events",
				       "prune", &last_id, error_r);
	if (ret < 0)
		return ret;
	rc = sqlite3_prepare_v2(
		j->db,
		"SELECT e.id, e.time_ms, NOT EXISTS (SELECT 1 FROM deliveries"
		" d WHERE d.event_id = e.id AND d.state <> 1"
		" AND d.state <> 4)"
		" FROM events e WHERE (e.time_ms, e.id) > (?1, ?2)"
		" AND e.time_ms < ?3 AND e.id < ?4"
		" ORDER BY e.time_ms, e.id LIMIT ?5",
		-1, &sel, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(j->db,
					"DELETE FROM deliveries"
					" WHERE event_id = ?1",
					-1, &del_d, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(j->db,
					"DELETE FROM attempts"
					" WHERE event_id = ?1",
					-1, &del_a, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(j->db,
					"DELETE FROM events WHERE id = ?1",
					-1, &del_e, NULL);
	if (rc != SQLITE_OK) {
		ret = journal_sqlite_fail(j, error_r, "prune", rc);
		goto out;
	}
	sqlite3_bind_int64(sel, 3, before_ms);
	sqlite3_bind_int64(sel, 4, last_id); /* ids are never reused */
	sqlite3_bind_int(sel, 5, JOURNAL_PRUNE_CHUNK);
	while (more) {
		if (own_tx) {
			ret = journal_sqlite_exec(j, "BEGIN IMMEDIATE",
						  "prune", error_r);
			if (ret < 0)
				break;
		}
		ret = journal_sqlite_prune_chunk(j, sel, del_d, del_a, del_e,
						 &cur_time, &cur_id, &deleted,
						 &more, error_r);
		if (own_tx) {
			if (ret == 0)
				ret = journal_sqlite_exec(j, "COMMIT", "prune",
							  error_r);
			if (ret < 0) {
				if (!sqlite3_get_autocommit(j->db))
					sqlite3_exec(j->db, "ROLLBACK", NULL,
						     NULL, NULL);
				/* rolled back: not deleted after all */
				break;
			}
			*deleted_r = deleted;
		}
		if (ret < 0)
			break;
	}
	if (!own_tx && ret == 0)
		*deleted_r = deleted;
out:
	sqlite3_finalize(sel);
	sqlite3_finalize(del_d);
	sqlite3_finalize(del_a);
	sqlite3_finalize(del_e);
	return ret;
}

static int64_t journal_sqlite_last_id(struct journal *base)
{
	struct journal_sqlite *j = journal_sqlite_of(base);
	sqlite3_stmt *st = j->st[ST_LAST_ID];
	int64_t id = 0;

	if (j->next_id != 0 && j->in_tx)
		return j->next_id - 1; /* the buffered ones count */
	if (sqlite3_step(st) == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	return id;
}

const struct journal_backend journal_sqlite_backend = {
	.name = "sqlite",
	.size = sizeof(struct journal_sqlite),
	.open = journal_sqlite_open,
	.close = journal_sqlite_close,
	.tx_begin = journal_sqlite_tx_begin,
	.commit = journal_sqlite_commit,
	.rollback = journal_sqlite_rollback,
	.append = journal_sqlite_append,
	.delivery_add = journal_sqlite_delivery_add,
	.delivery_update = journal_sqlite_delivery_update,
	.load_pending_from = journal_sqlite_load_pending_from,
	.load_pending_handler = journal_sqlite_load_pending_handler,
	.get_event = journal_sqlite_get_event,
	.query = journal_sqlite_query,
	.counts = journal_sqlite_counts,
	.prune = journal_sqlite_prune,
	.last_id = journal_sqlite_last_id,
};
