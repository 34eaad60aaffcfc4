/* The journal on MariaDB/MySQL: a backend of journal.c (see
 * journal_backend.h) and the cluster calls of journal_mysql.h.
 *
 * Every statement is a server-side prepared statement; parameters never
 * enter the SQL text.  Results are fetched as strings into memory (the
 * queries carry LIMITs), so callbacks may use the journal again. */
#define _GNU_SOURCE
#include "journal_mysql.h"
#include "journal_backend.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

#include <errmsg.h>
#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

#define JM_PAGE 512
#define JM_PRUNE_CHUNK 500
/* multi-row statements: 1, 2, 4 .. 2^(JM_MULTI_SIZES-1) rows, each size
 * prepared once per connection; a statement carries at most JM_MULTI_BYTES
 * of parameter data (unless one row alone is larger) */
#define JM_MULTI_SIZES 9
#define JM_MULTI_BYTES (1024 * 1024)

static const char *const jm_schema[] = {
	"CREATE TABLE IF NOT EXISTS events ("
	" id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
	" node VARCHAR(64) NOT NULL DEFAULT '',"
	" type VARCHAR(128) NOT NULL,"
	" subject VARCHAR(255) NOT NULL DEFAULT '',"
	" source VARCHAR(32) NOT NULL DEFAULT '',"
	" time_ms BIGINT NOT NULL,"
	" payload MEDIUMTEXT NOT NULL,"
	" KEY events_type (type), KEY events_subject (subject),"
	" KEY events_time (time_ms))"
	" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	"CREATE TABLE IF NOT EXISTS deliveries ("
	" event_id BIGINT NOT NULL,"
	" handler VARCHAR(160) NOT NULL,"
	" node VARCHAR(64) NOT NULL DEFAULT '',"
	" state TINYINT NOT NULL DEFAULT 0,"
	" attempts INT NOT NULL DEFAULT 0,"
	" next_ms BIGINT NOT NULL DEFAULT 0,"
	" last_error TEXT NULL,"
	" duration_us BIGINT NOT NULL DEFAULT 0,"
	" claimed_by VARCHAR(64) NULL,"
	" lease_until BIGINT NOT NULL DEFAULT 0,"
	" PRIMARY KEY (event_id, handler, node),"
	" KEY deliveries_node (node, state, event_id),"
	" KEY deliveries_claim (handler, node, state, event_id),"
	" KEY deliveries_claimed (claimed_by, state))"
	" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	/* the history of attempts (journal_delivery_update with
	 * started_ms); an older journal gets it here */
	"CREATE TABLE IF NOT EXISTS attempts ("
	" id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"
	" event_id BIGINT NOT NULL,"
	" handler VARCHAR(160) NOT NULL,"
	" node VARCHAR(64) NOT NULL DEFAULT '',"
	" attempt INT NOT NULL,"
	" started_ms BIGINT NOT NULL,"
	" duration_us BIGINT NOT NULL DEFAULT 0,"
	" error TEXT NULL,"
	" KEY attempts_delivery (event_id, handler, node, id))"
	" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	"CREATE TABLE IF NOT EXISTS cursors ("
	" node VARCHAR(64) NOT NULL,"
	" handler VARCHAR(160) NOT NULL,"
	" last_event_id BIGINT NOT NULL DEFAULT 0,"
	" PRIMARY KEY (node, handler))"
	" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	"CREATE TABLE IF NOT EXISTS nodes ("
	" name VARCHAR(64) NOT NULL PRIMARY KEY,"
	" heartbeat_ms BIGINT NOT NULL DEFAULT 0,"
	" started_ms BIGINT NOT NULL DEFAULT 0,"
	" version VARCHAR(32) NOT NULL DEFAULT '',"
	" last_error TEXT NULL)"
	" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	"CREATE TABLE IF NOT EXISTS commit_marks ("
	" node VARCHAR(64) NOT NULL PRIMARY KEY,"
	" token BIGINT NOT NULL)"
	" ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
	"CREATE TABLE IF NOT EXISTS seq ("
	" k INT NOT NULL PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB",
	"INSERT IGNORE INTO seq (k, v) VALUES (1, 0)",
};

#define EVENT_COLS "e.id, e.type, e.subject, e.source, e.node, e.time_ms, e.payload"
#define DELIVERY_COLS \
	"d.handler, d.state, d.attempts, d.next_ms, d.last_error, d.duration_us"

enum jm_stmt {
	JS_LOCK_SEQ,
	JS_APPEND,
	JS_DELIVERY_ADD,
	JS_DELIVERY_UPDATE,
	JS_GET_EVENT,
	JS_GET_DELIVERIES,
	JS_PENDING_PAGE,
	JS_PENDING_HANDLER_PAGE,
	JS_LAST_ID,
	JS_CURSOR_GET,
	JS_CURSOR_INIT,
	JS_CURSOR_SET,
	JS_FANOUT_PAGE,
	JS_FANOUT_ADD,
	JS_CLAIM_SELECT,
	JS_CLAIM_SET,
	JS_RENEW,
	JS_RELEASE,
	JS_HEARTBEAT,
	JS_MAX_ID,
	JS_MARK,
	JS_ATTEMPT_ADD,
	JS_ATTEMPT_TRIM,
	JS_GET_ATTEMPTS,
	JS_COUNT
};

static const char *const jm_sql[JS_COUNT] = {
	[JS_LOCK_SEQ] = "SELECT v FROM seq WHERE k = 1 FOR UPDATE",
	[JS_APPEND] = "INSERT INTO events (type, subject, source, node, time_ms,"
		      " payload) VALUES (?, ?, ?, ?, ?, ?)",
	[JS_DELIVERY_ADD] = "INSERT INTO deliveries (event_id, handler, node)"
			    " VALUES (?, ?, ?)",
	[JS_DELIVERY_UPDATE] = "UPDATE deliveries SET state = ?, attempts = ?,"
			       " next_ms = ?, last_error = ?, duration_us = ?"
			       " WHERE event_id = ? AND handler = ? AND node = ?",
	[JS_GET_EVENT] = "SELECT " EVENT_COLS " FROM events e WHERE e.id = ?",
	[JS_GET_DELIVERIES] = "SELECT " DELIVERY_COLS ", d.node, d.claimed_by"
			      " FROM deliveries d WHERE d.event_id = ?"
			      " ORDER BY d.handler, d.node",
	[JS_PENDING_PAGE] = "SELECT " EVENT_COLS ", " DELIVERY_COLS
			    " FROM deliveries d JOIN events e ON e.id = d.event_id"
			    " WHERE d.node = ? AND d.state IN (0, 2)"
			    " AND d.event_id >= ?"
			    " ORDER BY d.event_id, d.handler LIMIT ?",
	/* one state at a time: deliveries_claim (handler, node, state,
	 * event_id) then gives the rows in order with no sort of the
	 * backlog (state IN (0, 2) would sort all of it for every page) */
	[JS_PENDING_HANDLER_PAGE] = "SELECT " EVENT_COLS ", " DELIVERY_COLS
			    " FROM deliveries d JOIN events e ON e.id = d.event_id"
			    " WHERE d.handler = ? AND d.node = ? AND d.state = ?"
			    " AND d.event_id >= ?"
			    " ORDER BY d.event_id LIMIT ?",
	[JS_LAST_ID] = "SELECT COALESCE(MAX(id), 0) FROM events",
	[JS_CURSOR_GET] = "SELECT last_event_id FROM cursors"
			  " WHERE node = ? AND handler = ? FOR UPDATE",
	[JS_CURSOR_INIT] = "INSERT IGNORE INTO cursors (node, handler,"
			   " last_event_id) SELECT ?, ?, COALESCE(MAX(id), 0)"
			   " FROM events",
	[JS_CURSOR_SET] = "UPDATE cursors SET last_event_id = ?"
			  " WHERE node = ? AND handler = ?",
	[JS_FANOUT_PAGE] = "SELECT " EVENT_COLS " FROM events e WHERE e.id > ?"
			   " ORDER BY e.id LIMIT ?",
	[JS_FANOUT_ADD] = "INSERT IGNORE INTO deliveries (event_id, handler,"
			  " node) VALUES (?, ?, ?)",
	[JS_CLAIM_SELECT] = "SELECT d.event_id, d.attempts, d.state, d.next_ms"
			    " FROM deliveries d WHERE d.handler = ?"
			    " AND d.node = '' AND d.state IN (0, 2)"
			    " AND d.lease_until < ? AND d.next_ms <= ?"
			    " ORDER BY d.event_id LIMIT ?"
			    " FOR UPDATE SKIP LOCKED",
	[JS_CLAIM_SET] = "UPDATE deliveries SET claimed_by = ?, lease_until = ?"
			 " WHERE event_id = ? AND handler = ? AND node = ''",
	[JS_RENEW] = "UPDATE deliveries SET lease_until = ?"
		     " WHERE claimed_by = ? AND state IN (0, 2) AND node = ''",
	[JS_RELEASE] = "UPDATE deliveries SET lease_until = 0"
		       " WHERE claimed_by = ? AND state IN (0, 2) AND node = ''",
	[JS_MAX_ID] = "SELECT COALESCE(MAX(id), 0) FROM events",
	/* written by every transaction just before its COMMIT: when the
	 * answer to COMMIT is lost, the token read back after reconnecting
	 * says whether it committed (jm_commit_resolve) */
	[JS_MARK] = "INSERT INTO commit_marks (node, token) VALUES (?, ?)"
		    " ON DUPLICATE KEY UPDATE token = VALUES(token)",
	[JS_ATTEMPT_ADD] = "INSERT INTO attempts (event_id, handler, node,"
			   " attempt, started_ms, duration_us, error)"
			   " VALUES (?, ?, ?, ?, ?, ?, ?)",
	/* all but the last JOURNAL_ATTEMPTS_KEEP (20) of a delivery's
	 * attempts; the derived table lets MariaDB read the table it
	 * deletes from */
	[JS_ATTEMPT_TRIM] = "DELETE FROM attempts WHERE event_id = ?"
			    " AND handler = ? AND node = ? AND id <= (SELECT"
			    " t.id FROM (SELECT id FROM attempts"
			    " WHERE event_id = ? AND handler = ? AND node = ?"
			    " ORDER BY id DESC LIMIT 1 OFFSET 20) t)",
	[JS_GET_ATTEMPTS] = "SELECT handler, attempt, started_ms, duration_us,"
			    " error FROM attempts WHERE event_id = ?"
			    " ORDER BY handler, node, id",
	[JS_HEARTBEAT] = "INSERT INTO nodes (name, heartbeat_ms, started_ms,"
			 " version, last_error) VALUES (?, ?, ?, ?, ?)"
			 " ON DUPLICATE KEY UPDATE heartbeat_ms ="
			 " VALUES(heartbeat_ms), started_ms = VALUES(started_ms),"
			 " version = VALUES(version),"
			 " last_error = VALUES(last_error)",
};

/* The multi-row statements: a head, then one row shape repeated. */
enum jm_multi {
	JM_EVENTS,      /* events with ids allocated under the seq lock */
	JM_DADD,        /* new delivery rows */
	JM_FANOUT_ADD,  /* fan-out delivery rows, present ones kept */
	JM_DUPDATE,     /* delivery updates without last_error: one UPDATE
			 * per handler with CASE over event ids */
	JM_DUPDATE_ERR, /* delivery updates with last_error (failures) */
	JM_ATTEMPTS,    /* attempts rows */
	JM_ATTEMPT_TRIM, /* deliveries whose history to trim after them */
	JM_MULTI_COUNT
};

static const struct {
	const char *head, *first, *row, *tail;
	size_t cols;
} jm_multi_sql[JM_MULTI_COUNT] = {
	[JM_EVENTS] = { "INSERT INTO events (id, type, subject, source, node,"
			" time_ms, payload) VALUES ", "(?, ?, ?, ?, ?, ?, ?)",
			", (?, ?, ?, ?, ?, ?, ?)", "", 7 },
	[JM_DADD] = { "INSERT INTO deliveries (event_id, handler, node) VALUES ",
		      "(?, ?, ?)", ", (?, ?, ?)", "", 3 },
	[JM_FANOUT_ADD] = { "INSERT IGNORE INTO deliveries (event_id, handler,"
			    " node) VALUES ", "(?, ?, ?)", ", (?, ?, ?)", "",
			    3 },
	/* built by jm_update_sql */
	[JM_DUPDATE] = { NULL, NULL, NULL, NULL, 7 },
	/* sent one by one (JS_DELIVERY_UPDATE) */
	[JM_DUPDATE_ERR] = { NULL, NULL, NULL, NULL, 8 },
	[JM_ATTEMPTS] = { "INSERT INTO attempts (event_id, handler, node,"
			  " attempt, started_ms, duration_us, error) VALUES ",
			  "(?, ?, ?, ?, ?, ?, ?)", ", (?, ?, ?, ?, ?, ?, ?)",
			  "", 7 },
	/* sent one by one (JS_ATTEMPT_TRIM) */
	[JM_ATTEMPT_TRIM] = { NULL, NULL, NULL, NULL, 3 },
};

/* Rows of one multi-row statement kind waiting for the commit; strings
 * owned. */
struct jm_buf {
	struct jm_arg *a;
	size_t n, cap; /* parameters */
	size_t rows;
};

struct jmysql {
	struct journal j; /* first: the front's part */
	MYSQL *m;
	MYSQL_STMT *st[JS_COUNT];
	MYSQL_STMT *multi[JM_MULTI_COUNT][JM_MULTI_SIZES];
	/* a transaction's appends, delivery adds and updates, sent at commit
	 * (or before any other statement) as multi-row statements */
	struct jm_buf buf[JM_MULTI_COUNT];
	struct hmap *updated; /* "event_id\thandler" of buf[JM_DUPDATE] */
	int64_t next_id;      /* next event id while seq is locked */
	bool flushing, flush_failed;
	char *host, *socket, *user, *password, *database, *node;
	unsigned port;
	char *where;  /* "socket/db" or "host:port/db", for messages */
	bool in_tx, seq_locked, broken;
	struct hmap *modes; /* handler -> (void *)(mode + 1) */
	int64_t token;        /* of the last commit mark written */
	unsigned lose_commit; /* test fault: lose the answer of this commit */
	unsigned commits;
};

/* ---- parameters and rows ---- */

struct jm_arg {
	char t; /* 'i' integer, 's' string (NULL = SQL NULL) */
	long long i;
	const char *s;
};
#define AI(x) ((struct jm_arg){ .t = 'i', .i = (long long)(x) })
#define AS(x) ((struct jm_arg){ .t = 's', .s = (x) })

struct jm_rows {
	size_t n, ncols;
	char **cells; /* n * ncols, NULL for SQL NULL */
};

static void jm_rows_clear(struct jm_rows *r)
{
	for (size_t i = 0; i < r->n * r->ncols; i++)
		free(r->cells[i]);
	free(r->cells);
	*r = (struct jm_rows){ 0 };
}

static const char *jm_cell(const struct jm_rows *r, size_t row, size_t col)
{
	return r->cells[row * r->ncols + col];
}

static const char *jm_text(const struct jm_rows *r, size_t row, size_t col)
{
	const char *s = jm_cell(r, row, col);

	return s != NULL ? s : "";
}

static int64_t jm_int(const struct jm_rows *r, size_t row, size_t col)
{
	const char *s = jm_cell(r, row, col);

	return s != NULL ? strtoll(s, NULL, 10) : 0;
}

/* ---- errors and connection ---- */

static bool jm_gone(unsigned e)
{
	return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST ||
	       e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
	       e == CR_SERVER_LOST_EXTENDED || e == CR_COMMANDS_OUT_OF_SYNC ||
	       e == 1053 /* ER_SERVER_SHUTDOWN */ ||
	       e == 1927 /* ER_CONNECTION_KILLED */ ||
	       e == 4031 /* ER_CLIENT_INTERACTION_TIMEOUT */;
}

/* Record the error of st (or the connection) and return its -errno. */
static int jm_fail(struct jmysql *jm, MYSQL_STMT *st, const char **error_r,
		   const char *op)
{
	unsigned e = st != NULL ? mysql_stmt_errno(st) : mysql_errno(jm->m);
	const char *text = st != NULL ? mysql_stmt_error(st) : mysql_error(jm->m);

	journal_set_error(&jm->j, error_r, op, "%s", text);
	if (jm_gone(e)) {
		jm->broken = true;
		return -EPIPE;
	}
	switch (e) {
	case 1062: /* ER_DUP_ENTRY */
		return -EEXIST;
	case 1205: /* lock wait timeout */
	case 1213: /* deadlock */
		return -EBUSY;
	case 1045: case 1044: case 1142:
		return -EACCES;
	default:
		return -EIO;
	}
}

static void jm_disconnect(struct jmysql *jm)
{
	for (int i = 0; i < JS_COUNT; i++) {
		if (jm->st[i] != NULL)
			mysql_stmt_close(jm->st[i]);
		jm->st[i] = NULL;
	}
	for (int k = 0; k < JM_MULTI_COUNT; k++)
		for (int i = 0; i < JM_MULTI_SIZES; i++) {
			if (jm->multi[k][i] != NULL)
				mysql_stmt_close(jm->multi[k][i]);
			jm->multi[k][i] = NULL;
		}
	if (jm->m != NULL)
		mysql_close(jm->m);
	jm->m = NULL;
}

static pthread_once_t jm_once = PTHREAD_ONCE_INIT;
static int jm_init_rc;

static void jm_lib_init(void)
{
	jm_init_rc = mysql_library_init(0, NULL, NULL);
}

static int jm_query_plain(struct jmysql *jm, const char *sql, const char *op,
			  const char **error_r)
{
	if (mysql_real_query(jm->m, sql, strlen(sql)) != 0)
		return jm_fail(jm, NULL, error_r, op);
	MYSQL_RES *res = mysql_store_result(jm->m);

	if (res != NULL)
		mysql_free_result(res);
	return 0;
}

static int jm_connect(struct jmysql *jm, const char **error_r)
{
	unsigned timeout = 5, rw_timeout = 30;
	int ret;

	jm_disconnect(jm);
	jm->broken = false;
	jm->m = mysql_init(NULL);
	if (jm->m == NULL) {
		journal_set_error(&jm->j, error_r, "connect", "out of memory");
		return -ENOMEM;
	}
	mysql_options(jm->m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(jm->m, MYSQL_OPT_READ_TIMEOUT, &rw_timeout);
	mysql_options(jm->m, MYSQL_OPT_WRITE_TIMEOUT, &rw_timeout);
	mysql_options(jm->m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (mysql_real_connect(jm->m, jm->host, jm->user, jm->password,
			       jm->database, jm->port, jm->socket,
			       CLIENT_FOUND_ROWS) == NULL) {
		journal_set_error(&jm->j, error_r, "connect", "%s",
				  mysql_error(jm->m));
		jm_disconnect(jm);
		jm->broken = true;
		return -ECONNREFUSED;
	}
	ret = jm_query_plain(jm, "SET SESSION TRANSACTION ISOLATION LEVEL"
				 " READ COMMITTED", "connect", error_r);
	if (ret < 0) {
		jm_disconnect(jm);
		jm->broken = true;
	}
	return ret;
}

/* Reconnect when the connection was lost (never inside a transaction). */
static int jm_ensure(struct jmysql *jm, const char **error_r)
{
	if (jm->m != NULL && !jm->broken)
		return 0;
	if (jm->in_tx) {
		journal_set_error(&jm->j, error_r, "query",
				  "the connection was lost in a transaction");
		return -EPIPE;
	}
	return jm_connect(jm, error_r);
}

/* ---- running statements ---- */

/* Execute st with args; when rows is not NULL, fetch every row as strings.
 * *affected_r (may be NULL) gets the matched rows of a write. */
static int jm_exec_stmt(struct jmysql *jm, MYSQL_STMT *st,
			const struct jm_arg *args, size_t nargs,
			struct jm_rows *rows, uint64_t *affected_r,
			const char *op, const char **error_r)
{
	MYSQL_BIND pb_small[16], *pb = pb_small, *rb = NULL;
	unsigned long *lens = NULL;
	my_bool *nulls = NULL;
	char **bufs = NULL;
	MYSQL_RES *meta = NULL;
	size_t ncols = 0;
	int ret = 0, rc;

	if (mysql_stmt_param_count(st) != nargs) {
		journal_set_error(&jm->j, error_r, op,
				  "wrong parameter count");
		return -EINVAL;
	}
	if (nargs > 16)
		pb = xcalloc(nargs, sizeof(*pb));
	else
		memset(pb_small, 0, sizeof(pb_small));
	for (size_t i = 0; i < nargs; i++) {
		if (args[i].t == 'i') {
			pb[i].buffer_type = MYSQL_TYPE_LONGLONG;
			pb[i].buffer = (void *)&args[i].i;
		} else if (args[i].s == NULL) {
			pb[i].buffer_type = MYSQL_TYPE_NULL;
		} else {
			pb[i].buffer_type = MYSQL_TYPE_STRING;
			pb[i].buffer = (void *)args[i].s;
			pb[i].buffer_length = strlen(args[i].s);
		}
	}
	rc = nargs > 0 ? mysql_stmt_bind_param(st, pb) : 0;
	if (pb != pb_small)
		free(pb);
	if (rc != 0)
		return jm_fail(jm, st, error_r, op);
	if (mysql_stmt_execute(st) != 0)
		return jm_fail(jm, st, error_r, op);
	if (affected_r != NULL)
		*affected_r = mysql_stmt_affected_rows(st);
	meta = mysql_stmt_result_metadata(st);
	if (meta == NULL)
		return 0;
	ncols = mysql_num_fields(meta);
	mysql_free_result(meta);
	if (rows == NULL) {
		mysql_stmt_free_result(st);
		return 0;
	}
	if (mysql_stmt_store_result(st) != 0)
		return jm_fail(jm, st, error_r, op);
	rb = xcalloc(ncols, sizeof(*rb));
	lens = xcalloc(ncols, sizeof(*lens));
	nulls = xcalloc(ncols, sizeof(*nulls));
	bufs = xcalloc(ncols, sizeof(*bufs));
	for (size_t c = 0; c < ncols; c++) {
		bufs[c] = xmalloc(256);
		rb[c].buffer_type = MYSQL_TYPE_STRING;
		rb[c].buffer = bufs[c];
		rb[c].buffer_length = 256;
		rb[c].length = &lens[c];
		rb[c].is_null = &nulls[c];
	}
	if (mysql_stmt_bind_result(st, rb) != 0) {
		ret = jm_fail(jm, st, error_r, op);
		goto out;
	}
	*rows = (struct jm_rows){ .ncols = ncols };
	size_t cap = 0;

	while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		if (rows->n == cap) {
			cap = cap ? cap * 2 : 16;
			rows->cells = xrealloc(rows->cells,
					       cap * ncols * sizeof(char *));
		}
		char **cells = rows->cells + rows->n * ncols;

		for (size_t c = 0; c < ncols; c++) {
			if (nulls[c]) {
				cells[c] = NULL;
				continue;
			}
			cells[c] = xmalloc(lens[c] + 1);
			if (lens[c] <= 256) {
				memcpy(cells[c], bufs[c], lens[c]);
			} else {
				MYSQL_BIND one = { 0 };

				one.buffer_type = MYSQL_TYPE_STRING;
				one.buffer = cells[c];
				one.buffer_length = lens[c];
				mysql_stmt_fetch_column(st, &one,
							(unsigned)c, 0);
			}
			cells[c][lens[c]] = '\0';
		}
		rows->n++;
	}
	if (rc != MYSQL_NO_DATA) {
		ret = jm_fail(jm, st, error_r, op);
		jm_rows_clear(rows);
	}
out:
	mysql_stmt_free_result(st);
	for (size_t c = 0; c < ncols; c++)
		free(bufs[c]);
	free(bufs);
	free(rb);
	free(lens);
	free(nulls);
	return ret;
}

/* The update of rows deliveries of one handler and node: parameters
 * (event_id, state) x rows, (event_id, attempts) x rows, (event_id,
 * next_ms) x rows, (event_id, duration_us) x rows, handler, node,
 * event_id x rows.  The WHERE is a range on the primary key. */
static char *jm_update_sql(size_t rows)
{
	static const char *const cols[] = { "state", "attempts", "next_ms",
					    "duration_us" };
	size_t len = 400 + rows * (4 * 16 + 4);
	char *sql = xmalloc(len), *p = sql;

	p = stpcpy(p, "UPDATE deliveries SET last_error = NULL");
	for (size_t c = 0; c < 4; c++) {
		p += sprintf(p, ", %s = CASE event_id", cols[c]);
		for (size_t i = 0; i < rows; i++)
			p = stpcpy(p, " WHEN ? THEN ?");
		p = stpcpy(p, " END");
	}
	p = stpcpy(p, " WHERE handler = ? AND node = ? AND event_id IN (?");
	for (size_t i = 1; i < rows; i++)
		p = stpcpy(p, ", ?");
	stpcpy(p, ")");
	return sql;
}

/* Prepare (or reuse) kind's statement for 2^k rows. */
static int jm_multi_stmt(struct jmysql *jm, enum jm_multi kind, unsigned k,
			 MYSQL_STMT **st_r, const char *op,
			 const char **error_r)
{
	size_t rows = (size_t)1 << k;
	MYSQL_STMT *st;
	char *sql, *p;
	size_t len;
	int ret;

	if (jm->multi[kind][k] != NULL) {
		*st_r = jm->multi[kind][k];
		return 0;
	}
	if (kind == JM_DUPDATE) {
		sql = jm_update_sql(rows);
		goto prepare;
	}
	len = strlen(jm_multi_sql[kind].head) + strlen(jm_multi_sql[kind].first) +
	      (rows - 1) * strlen(jm_multi_sql[kind].row) +
	      strlen(jm_multi_sql[kind].tail) + 1;
	p = sql = xmalloc(len);
	p = stpcpy(p, jm_multi_sql[kind].head);
	p = stpcpy(p, jm_multi_sql[kind].first);
	for (size_t i = 1; i < rows; i++)
		p = stpcpy(p, jm_multi_sql[kind].row);
	stpcpy(p, jm_multi_sql[kind].tail);
prepare:
	st = mysql_stmt_init(jm->m);
	if (st == NULL) {
		free(sql);
		return jm_fail(jm, NULL, error_r, op);
	}
	if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
		ret = jm_fail(jm, st, error_r, op);
		mysql_stmt_close(st);
		free(sql);
		return ret;
	}
	free(sql);
	*st_r = jm->multi[kind][k] = st;
	return 0;
}

static size_t jm_arg_bytes(const struct jm_arg *a, size_t n)
{
	size_t bytes = 0;

	for (size_t i = 0; i < n; i++)
		bytes += a[i].t == 's' && a[i].s != NULL ? strlen(a[i].s) + 4 : 9;
	return bytes;
}

/* Run kind's statement over rows rows of args (cols each), as few
 * multi-row statements as the sizes and JM_MULTI_BYTES allow.  *affected_r
 * (may be NULL) gets the sum of the matched rows. */
static int jm_multi_exec(struct jmysql *jm, enum jm_multi kind,
			 const struct jm_arg *args, size_t rows,
			 uint64_t *affected_r, const char *op,
			 const char **error_r)
{
	size_t cols = jm_multi_sql[kind].cols, done = 0;
	uint64_t total = 0;
	int ret = jm_ensure(jm, error_r);

	while (ret == 0 && done < rows) {
		const struct jm_arg *a = args + done * cols;
		unsigned k = JM_MULTI_SIZES - 1;
		MYSQL_STMT *st = NULL;
		uint64_t n = 0;

		while (k > 0 && (((size_t)1 << k) > rows - done ||
				 jm_arg_bytes(a, ((size_t)1 << k) * cols) >
					 JM_MULTI_BYTES))
			k--;
		ret = jm_multi_stmt(jm, kind, k, &st, op, error_r);
		if (ret == 0)
			ret = jm_exec_stmt(jm, st, a, ((size_t)1 << k) * cols,
					   NULL, &n, op, error_r);
		total += n;
		done += (size_t)1 << k;
	}
	if (affected_r != NULL)
		*affected_r = total;
	return ret;
}

static void jm_buf_clear(struct jm_buf *b)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->a[i].t == 's')
			free((char *)b->a[i].s);
	b->n = 0;
	b->rows = 0;
}

static void jm_buf_free(struct jm_buf *b)
{
	jm_buf_clear(b);
	free(b->a);
	*b = (struct jm_buf){ 0 };
}

/* Append one row (strings copied). */
static void jm_buf_row(struct jm_buf *b, const struct jm_arg *a, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = b->cap ? b->cap * 2 : 256;
		if (b->cap < b->n + n)
			b->cap = b->n + n;
		b->a = xrealloc(b->a, b->cap * sizeof(*b->a));
	}
	for (size_t i = 0; i < n; i++) {
		b->a[b->n] = a[i];
		if (a[i].t == 's' && a[i].s != NULL)
			b->a[b->n].s = xstrdup(a[i].s);
		b->n++;
	}
	b->rows++;
}

static int jm_run(struct jmysql *jm, enum jm_stmt which,
		  const struct jm_arg *args, size_t nargs, struct jm_rows *rows,
		  uint64_t *affected_r, const char *op, const char **error_r);

/* By handler then node, then position (a stable order). */
static int jm_update_cmp(const void *a, const void *b, void *rows)
{
	const struct jm_arg *x = (const struct jm_arg *)rows +
				 *(const size_t *)a * 7;
	const struct jm_arg *y = (const struct jm_arg *)rows +
				 *(const size_t *)b * 7;
	int c = strcmp(x[1].s, y[1].s);

	if (c == 0)
		c = strcmp(x[2].s, y[2].s);
	if (c == 0)
		c = *(const size_t *)a < *(const size_t *)b ? -1 : 1;
	return c;
}

/* Send buf[JM_DUPDATE] as one UPDATE per handler and node and chunk, and
 * buf[JM_DUPDATE_ERR] row by row.  Rows that are gone are skipped. */
static int jm_update_flush(struct jmysql *jm, const char **error_r)
{
	struct jm_buf *b = &jm->buf[JM_DUPDATE], *eb = &jm->buf[JM_DUPDATE_ERR];
	size_t *order = NULL, done = 0;
	struct jm_arg *a = NULL;
	int ret = 0;

	if (b->rows > 0) {
		order = xcalloc(b->rows, sizeof(*order));
		for (size_t i = 0; i < b->rows; i++)
			order[i] = i;
		qsort_r(order, b->rows, sizeof(*order), jm_update_cmp, b->a);
		a = xcalloc(((size_t)1 << (JM_MULTI_SIZES - 1)) * 9 + 2,
			    sizeof(*a));
	}
	while (ret == 0 && done < b->rows) {
		const struct jm_arg *first = b->a + order[done] * 7;
		size_t same = 1, n, k = JM_MULTI_SIZES - 1, na = 0;
		MYSQL_STMT *st = NULL;

		while (done + same < b->rows) {
			const struct jm_arg *r = b->a + order[done + same] * 7;

			if (strcmp(r[1].s, first[1].s) != 0 ||
			    strcmp(r[2].s, first[2].s) != 0)
				break;
			same++;
		}
		while (k > 0 && ((size_t)1 << k) > same)
			k--;
		n = (size_t)1 << k;
		static const int col[] = { 3, 4, 5, 6 };

		for (size_t c = 0; c < 4; c++)
			for (size_t i = 0; i < n; i++) {
				const struct jm_arg *r = b->a + order[done + i] * 7;

				a[na++] = r[0];
				a[na++] = r[col[c]];
			}
		a[na++] = first[1];
		a[na++] = first[2];
		for (size_t i = 0; i < n; i++)
			a[na++] = b->a[order[done + i] * 7];
		ret = jm_multi_stmt(jm, JM_DUPDATE, (unsigned)k, &st,
				    "delivery update", error_r);
		if (ret == 0)
			ret = jm_exec_stmt(jm, st, a, na, NULL, NULL,
					   "delivery update", error_r);
		done += n;
	}
	free(a);
	free(order);
	for (size_t i = 0; ret == 0 && i < eb->rows; i++) {
		const struct jm_arg *r = eb->a + i * 8;
		struct jm_arg one[] = { r[3], r[4], r[5], r[6], r[7], r[0],
					r[1], r[2] };

		ret = jm_run(jm, JS_DELIVERY_UPDATE, one, 8, NULL, NULL,
			     "delivery update", error_r);
	}
	return ret;
}

/* Forget the rows of the transaction not sent yet. */
static void jm_pending_clear(struct jmysql *jm)
{
	for (int k = 0; k < JM_MULTI_COUNT; k++)
		jm_buf_clear(&jm->buf[k]);
	if (jm->updated != NULL)
		hmap_free(&jm->updated, NULL);
}

/* Send the buffered rows: events, then new deliveries, then updates (the
 * order the engine makes them in).  Updates of rows that are gone (pruned)
 * are skipped, as journal_delivery_update's -ENOENT is by its callers. */
static int jm_pending_flush(struct jmysql *jm, const char **error_r)
{
	static const enum jm_multi order[] = { JM_EVENTS, JM_DADD };
	int ret = 0;

	if (jm->flushing)
		return 0;
	jm->flushing = true;
	for (size_t i = 0; ret == 0 && i < sizeof(order) / sizeof(order[0]);
	     i++) {
		struct jm_buf *b = &jm->buf[order[i]];

		if (b->rows > 0)
			ret = jm_multi_exec(jm, order[i], b->a, b->rows, NULL,
					    "commit", error_r);
	}
	if (ret == 0)
		ret = jm_update_flush(jm, error_r);
	if (ret == 0 && jm->buf[JM_ATTEMPTS].rows > 0)
		ret = jm_multi_exec(jm, JM_ATTEMPTS, jm->buf[JM_ATTEMPTS].a,
				    jm->buf[JM_ATTEMPTS].rows, NULL, "commit",
				    error_r);
	for (size_t i = 0; ret == 0 && i < jm->buf[JM_ATTEMPT_TRIM].rows;
	     i++) {
		const struct jm_arg *r = jm->buf[JM_ATTEMPT_TRIM].a + i * 3;
		struct jm_arg two[] = { r[0], r[1], r[2], r[0], r[1], r[2] };

		ret = jm_run(jm, JS_ATTEMPT_TRIM, two, 6, NULL, NULL,
			     "attempt trim", error_r);
	}
	jm->flushing = false;
	jm_pending_clear(jm);
	if (ret < 0)
		jm->flush_failed = true; /* the transaction cannot commit */
	return ret;
}

static bool jm_pending(const struct jmysql *jm)
{
	for (int k = 0; k < JM_MULTI_COUNT; k++)
		if (jm->buf[k].rows > 0)
			return true;
	return false;
}

/* A cached statement: prepared on first use after each connect. */
static int jm_run(struct jmysql *jm, enum jm_stmt which,
		  const struct jm_arg *args, size_t nargs, struct jm_rows *rows,
		  uint64_t *affected_r, const char *op, const char **error_r)
{
	int ret = jm_ensure(jm, error_r);

	/* every statement sees the transaction's earlier writes */
	if (ret == 0 && jm_pending(jm))
		ret = jm_pending_flush(jm, error_r);
	if (ret < 0)
		return ret;
	if (jm->st[which] == NULL) {
		MYSQL_STMT *st = mysql_stmt_init(jm->m);

		if (st == NULL)
			return jm_fail(jm, NULL, error_r, op);
		if (mysql_stmt_prepare(st, jm_sql[which],
				       strlen(jm_sql[which])) != 0) {
			ret = jm_fail(jm, st, error_r, op);
			mysql_stmt_close(st);
			return ret;
		}
		jm->st[which] = st;
	}
	return jm_exec_stmt(jm, jm->st[which], args, nargs, rows, affected_r,
			    op, error_r);
}

/* A one-off statement (dynamic SQL built from fixed fragments only). */
static int jm_run_sql(struct jmysql *jm, const char *sql,
		      const struct jm_arg *args, size_t nargs,
		      struct jm_rows *rows, uint64_t *affected_r,
		      const char *op, const char **error_r)
{
	int ret = jm_ensure(jm, error_r);
	MYSQL_STMT *st;

	if (ret == 0 && jm_pending(jm))
		ret = jm_pending_flush(jm, error_r);
	if (ret < 0)
		return ret;
	st = mysql_stmt_init(jm->m);
	if (st == NULL)
		return jm_fail(jm, NULL, error_r, op);
	if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0)
		ret = jm_fail(jm, st, error_r, op);
	else
		ret = jm_exec_stmt(jm, st, args, nargs, rows, affected_r, op,
				   error_r);
	mysql_stmt_close(st);
	return ret;
}

static int jm_int_query(struct jmysql *jm, const char *sql,
			const struct jm_arg *args, size_t nargs,
			int64_t *value_r, const char *op, const char **error_r)
{
	struct jm_rows r = { 0 };
	int ret = jm_run_sql(jm, sql, args, nargs, &r, NULL, op, error_r);

	if (ret < 0)
		return ret;
	*value_r = r.n > 0 ? jm_int(&r, 0, 0) : 0;
	jm_rows_clear(&r);
	return 0;
}

/* ---- open and close ---- */

static char *jm_read_password(const char *file, const char **why_r)
{
	char *data = NULL;
	size_t len = 0;
	int ret = file_read_nofollow(file, 4096, &data, &len);

	if (ret < 0) {
		*why_r = strerror(-ret);
		return NULL;
	}
	data = xrealloc(data, len + 1);
	data[len] = '\0';
	data[strcspn(data, "\r\n")] = '\0';
	return data;
}

/* The backend's struct of the front's j. */
static struct jmysql *jm_of(struct journal *j)
{
	return (struct jmysql *)j;
}

struct jmysql *journal_mysql(struct journal *j)
{
	return j->backend == &journal_mysql_backend ? jm_of(j) : NULL;
}

static int journal_mysql_open(struct journal *j,
			      const struct journal_settings *js,
			      const char **error_r)
{
	const struct jmysql_settings *s = js->mysql;
	struct jmysql *jm = jm_of(j);
	int ret = 0;

	if (s == NULL) {
		*error_r = j->error = xstrdup("MySQL journal: no settings");
		return -EINVAL;
	}
	pthread_once(&jm_once, jm_lib_init);
	jm->host = s->host != NULL ? xstrdup(s->host) : NULL;
	jm->socket = s->socket != NULL ? xstrdup(s->socket) : NULL;
	jm->user = s->user != NULL ? xstrdup(s->user) : NULL;
	jm->database = xstrdup(s->database != NULL ? s->database : "ophook");
	jm->node = xstrdup(s->node != NULL ? s->node : "");
	jm->port = s->port;
	jm->modes = hmap_new();
	if (jm->socket != NULL)
		jm->where = xasprintf("%s/%s", jm->socket, jm->database);
	else
		jm->where = xasprintf("%s:%u/%s",
				      jm->host ? jm->host : "localhost",
				      jm->port, jm->database);
	j->name = xasprintf("MySQL journal %s", jm->where);
	if (jm_init_rc != 0) {
		*error_r = j->error = xstrdup("MySQL client library failed "
					      "to initialize");
		return -EIO;
	}
	if (s->password_file != NULL) {
		const char *why = NULL;

		jm->password = jm_read_password(s->password_file, &why);
		if (jm->password == NULL) {
			*error_r = j->error =
				xasprintf("journal.password_file %s: %s",
					  s->password_file, why);
			return -EACCES;
		}
	}
	{
		uint32_t r = 0;
		const char *lose = getenv("OPHOOK_TEST_LOSE_COMMIT");

		/* tokens differ across restarts of a node */
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			r = (uint32_t)now_ms();
		jm->token = (int64_t)r << 24;
		if (lose != NULL)
			jm->lose_commit = (unsigned)strtoul(lose, NULL, 10);
	}
	ret = jm_connect(jm, error_r);
	for (size_t i = 0; ret == 0 && i < sizeof(jm_schema) /
						     sizeof(jm_schema[0]);
	     i++)
		ret = jm_query_plain(jm, jm_schema[i], "schema", error_r);
	return ret;
}

static void journal_mysql_close(struct journal *j)
{
	struct jmysql *jm = jm_of(j);

	if (jm->in_tx && jm->m != NULL)
		mysql_rollback(jm->m);
	jm_disconnect(jm);
	hmap_free(&jm->modes, NULL);
	jm_pending_clear(jm);
	for (int k = 0; k < JM_MULTI_COUNT; k++)
		jm_buf_free(&jm->buf[k]);
	if (jm->password != NULL)
		explicit_bzero(jm->password, strlen(jm->password));
	free(jm->password);
	free(jm->host);
	free(jm->socket);
	free(jm->user);
	free(jm->database);
	free(jm->node);
	free(jm->where);
}

const char *jmysql_node(const struct jmysql *jm)
{
	return jm->node;
}

void jmysql_set_mode(struct jmysql *jm, const char *handler,
		     enum jmysql_mode mode)
{
	if (mode == JMYSQL_LOCAL)
		hmap_del(jm->modes, handler);
	else
		hmap_put(jm->modes, handler, (void *)(intptr_t)(mode + 1));
}

/* How deliveries to handler are keyed (jmysql_set_mode). */
static enum jmysql_mode jmysql_mode(const struct jmysql *jm,
				    const char *handler)
{
	intptr_t v = (intptr_t)hmap_get(jm->modes, handler);

	return v == 0 ? JMYSQL_LOCAL : (enum jmysql_mode)(v - 1);
}

/* The node column of handler's delivery rows on this node. */
static const char *jm_row_node(const struct jmysql *jm, const char *handler)
{
	return jmysql_mode(jm, handler) == JMYSQL_SHARED ? "" : jm->node;
}

/* ---- transactions ---- */

static int jmysql_begin(struct jmysql *jm, const char **error_r)
{
	int ret;

	if (jm->in_tx) {
		journal_set_error(&jm->j, error_r, "begin",
				  "a transaction is already open");
		return -EINPROGRESS;
	}
	ret = jm_ensure(jm, error_r);
	if (ret == 0)
		ret = jm_query_plain(jm, "START TRANSACTION", "begin", error_r);
	if (ret < 0)
		return ret;
	jm->in_tx = true;
	jm->seq_locked = false;
	jm->flush_failed = false;
	jm_pending_clear(jm);
	return 0;
}

#define JM_RESOLVE_TRIES 25 /* x 200 ms */

/* The connection went while COMMIT was under way: did it commit?  Read
 * this node's commit mark back on a new connection (the server may be
 * restarting: a few seconds of tries).  0 when the transaction is in,
 * -EPIPE when it is not (the caller retries it) or nobody can tell. */
static int jm_commit_resolve(struct jmysql *jm, const char **error_r)
{
	struct jm_arg a[] = { AS(jm->node) };

	for (int i = 0; i < JM_RESOLVE_TRIES; i++) {
		int64_t token;

		if (i > 0)
			uv_sleep(200);
		if (jm_connect(jm, NULL) < 0 ||
		    jm_int_query(jm, "SELECT token FROM commit_marks"
				 " WHERE node = ?", a, 1, &token, "commit",
				 NULL) < 0)
			continue;
		if (token == jm->token) {
			log_warn("%s: the answer to COMMIT was lost, but the "
				 "transaction is in (commit mark %" PRId64 ")",
				 jm->where, jm->token);
			return 0;
		}
		journal_set_error(&jm->j, error_r, "commit",
				  "the connection was lost in COMMIT and the "
				  "transaction is not in (it is done again)");
		return -EPIPE;
	}
	journal_set_error(&jm->j, error_r, "commit",
			  "the connection was lost in COMMIT and the server "
			  "did not answer for %d s: whether the transaction "
			  "is in is unknown (its events may be journaled "
			  "twice)",
			  JM_RESOLVE_TRIES / 5);
	return -EPIPE;
}

static int jmysql_commit(struct jmysql *jm, const char **error_r)
{
	int ret;

	if (!jm->in_tx) {
		journal_set_error(&jm->j, error_r, "commit",
				  "no transaction open");
		return -EINVAL;
	}
	ret = jm_pending(jm) && !jm->broken ? jm_pending_flush(jm, error_r) : 0;
	jm_pending_clear(jm);
	if (ret == 0 && jm->flush_failed) {
		journal_set_error(&jm->j, error_r, "commit",
				  "a write of the transaction failed");
		ret = -EIO;
	}
	if (ret == 0 && !jm->broken) {
		struct jm_arg ma[] = { AS(jm->node), AI(++jm->token) };

		ret = jm_run(jm, JS_MARK, ma, 2, NULL, NULL, "commit",
			     error_r);
	}
	jm->in_tx = false;
	jm->seq_locked = false;
	jm->flush_failed = false;
	if (ret < 0) {
		if (!jm->broken)
			mysql_rollback(jm->m);
		return ret;
	}
	if (jm->broken) {
		journal_set_error(&jm->j, error_r, "commit",
				  "the connection was lost in the transaction");
		return -EPIPE;
	}
	if (mysql_commit(jm->m) != 0) {
		ret = jm_fail(jm, NULL, error_r, "commit");
		if (jm->broken)
			return jm_commit_resolve(jm, error_r);
		mysql_rollback(jm->m);
		return ret;
	}
	if (jm->lose_commit != 0 && ++jm->commits == jm->lose_commit) {
		/* OPHOOK_TEST_LOSE_COMMIT: committed, but the answer "lost" */
		jm_disconnect(jm);
		jm->broken = true;
		journal_set_error(&jm->j, error_r, "commit",
				  "test: answer lost");
		return jm_commit_resolve(jm, error_r);
	}
	return 0;
}

static void jmysql_rollback(struct jmysql *jm)
{
	if (jm->in_tx && jm->m != NULL && !jm->broken)
		mysql_rollback(jm->m);
	jm->in_tx = false;
	jm->seq_locked = false;
	jm->flush_failed = false;
	jm_pending_clear(jm);
}

/* A transaction of results only is an ordinary one here. */
static int journal_mysql_tx_begin(struct journal *j, bool results,
				  const char **error_r)
{
	(void)results;
	return jmysql_begin(jm_of(j), error_r);
}

static int journal_mysql_commit(struct journal *j, const char **error_r)
{
	return jmysql_commit(jm_of(j), error_r);
}

static void journal_mysql_rollback(struct journal *j)
{
	jmysql_rollback(jm_of(j));
}

/* ---- the hot path ---- */

static int journal_mysql_append(struct journal *j, struct journal_event *ev,
				const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	struct jm_rows r = { 0 };
	int ret;

	if (!jm->seq_locked) {
		/* ids are handed out and committed in order across nodes */
		ret = jm_run(jm, JS_LOCK_SEQ, NULL, 0, &r, NULL, "append",
			     error_r);
		jm_rows_clear(&r);
		/* in a transaction, the ids come from here: nobody else can
		 * append until it ends (READ COMMITTED: the newest id) */
		if (ret == 0 && jm->in_tx)
			ret = jm_run(jm, JS_MAX_ID, NULL, 0, &r, NULL, "append",
				     error_r);
		if (ret == 0 && jm->in_tx)
			jm->next_id = (r.n > 0 ? jm_int(&r, 0, 0) : 0) + 1;
		jm_rows_clear(&r);
		if (ret < 0)
			return ret;
		jm->seq_locked = jm->in_tx;
	}
	if (jm->seq_locked) {
		/* sent with the others at commit */
		struct jm_arg row[] = {
			AI(jm->next_id), AS(ev->type),
			AS(ev->subject ? ev->subject : ""),
			AS(ev->source ? ev->source : ""),
			AS(ev->node ? ev->node : jm->node),
			AI(ev->time_ms != 0 ? ev->time_ms : now_ms()),
			AS(ev->payload ? ev->payload : "{}"),
		};

		jm_buf_row(&jm->buf[JM_EVENTS], row, 7);
		ev->id = jm->next_id++;
		return 0;
	}
	struct jm_arg a[] = {
		AS(ev->type), AS(ev->subject ? ev->subject : ""),
		AS(ev->source ? ev->source : ""),
		AS(ev->node ? ev->node : jm->node),
		AI(ev->time_ms != 0 ? ev->time_ms : now_ms()),
		AS(ev->payload ? ev->payload : "{}"),
	};
	ret = jm_run(jm, JS_APPEND, a, 6, NULL, NULL, "append", error_r);
	if (ret < 0)
		return ret;
	ev->id = (int64_t)mysql_stmt_insert_id(jm->st[JS_APPEND]);
	return 0;
}

static int journal_mysql_delivery_add(struct journal *j, int64_t event_id,
				      const char *handler,
				      const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	struct jm_arg a[] = { AI(event_id), AS(handler),
			      AS(jm_row_node(jm, handler)) };

	if (jm->in_tx && !jm->broken) {
		/* sent with the others at commit */
		jm_buf_row(&jm->buf[JM_DADD], a, 3);
		return 0;
	}
	return jm_run(jm, JS_DELIVERY_ADD, a, 3, NULL, NULL, "delivery add",
		      error_r);
}

static int jm_delivery_update(struct jmysql *jm,
			      const struct journal_delivery *d,
			      const char **error_r);

/* The attempt of d (d->started_ms set) into the history: with the
 * transaction's other rows at commit, or now. */
static int jm_attempt_add(struct jmysql *jm, const struct journal_delivery *d,
			  const char **error_r)
{
	struct jm_arg row[] = {
		AI(d->event_id), AS(d->handler),
		AS(jm_row_node(jm, d->handler)), AI(d->attempts),
		AI(d->started_ms), AI(d->duration_us), AS(d->last_error),
	};
	int ret;

	if (jm->in_tx && !jm->broken) {
		jm_buf_row(&jm->buf[JM_ATTEMPTS], row, 7);
		if (d->state != DELIVERY_DONE)
			jm_buf_row(&jm->buf[JM_ATTEMPT_TRIM], row, 3);
		return 0;
	}
	ret = jm_run(jm, JS_ATTEMPT_ADD, row, 7, NULL, NULL, "attempt add",
		     error_r);
	if (ret == 0 && d->state != DELIVERY_DONE) {
		struct jm_arg two[] = { row[0], row[1], row[2],
					row[0], row[1], row[2] };

		ret = jm_run(jm, JS_ATTEMPT_TRIM, two, 6, NULL, NULL,
			     "attempt trim", error_r);
	}
	return ret;
}

static int journal_mysql_delivery_update(struct journal *j,
					 const struct journal_delivery *d,
					 const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	int ret = jm_delivery_update(jm, d, error_r);

	if (ret == 0 && d->started_ms != 0)
		ret = jm_attempt_add(jm, d, error_r);
	return ret;
}

static int jm_delivery_update(struct jmysql *jm,
			      const struct journal_delivery *d,
			      const char **error_r)
{
	struct jm_arg a[] = {
		AI(d->state), AI(d->attempts), AI(d->next_ms),
		AS(d->last_error), AI(d->duration_us), AI(d->event_id),
		AS(d->handler), AS(jm_row_node(jm, d->handler)),
	};
	uint64_t n = 0;
	int ret;

	if (jm->in_tx && !jm->broken) {
		/* sent with the others at commit; a second update of the same
		 * row sends the first ones before it */
		char key[200];
		struct jm_arg row[] = {
			AI(d->event_id), AS(d->handler),
			AS(jm_row_node(jm, d->handler)), AI(d->state),
			AI(d->attempts), AI(d->next_ms), AS(d->last_error),
			AI(d->duration_us),
		};

		snprintf(key, sizeof(key), "%" PRId64 "\t%s", d->event_id,
			 d->handler);
		if (jm->updated != NULL && hmap_get(jm->updated, key) != NULL) {
			ret = jm_pending_flush(jm, error_r);
			if (ret < 0)
				return ret;
		}
		if (jm->updated == NULL)
			jm->updated = hmap_new();
		hmap_put(jm->updated, key, (void *)1);
		if (d->last_error != NULL) {
			jm_buf_row(&jm->buf[JM_DUPDATE_ERR], row, 8);
		} else {
			struct jm_arg ok[] = { row[0], row[1], row[2], row[3],
					       row[4], row[5], row[7] };

			jm_buf_row(&jm->buf[JM_DUPDATE], ok, 7);
		}
		return 0;
	}
	ret = jm_run(jm, JS_DELIVERY_UPDATE, a, 8, NULL, &n,
		     "delivery update", error_r);
	if (ret < 0)
		return ret;
	if (n == 0) {
		journal_set_error(&jm->j, error_r, "delivery update",
				  "no delivery of event %" PRId64 " to handler %s",
				  d->event_id, d->handler);
		return -ENOENT;
	}
	return 0;
}

/* ---- reading back ---- */

/* Fill ev from the EVENT_COLS at column col of row i. */
static void jm_row_event(const struct jm_rows *r, size_t i, size_t col,
			 struct journal_event *ev)
{
	ev->id = jm_int(r, i, col);
	ev->type = jm_text(r, i, col + 1);
	ev->subject = jm_text(r, i, col + 2);
	ev->source = jm_text(r, i, col + 3);
	ev->node = jm_text(r, i, col + 4);
	ev->time_ms = jm_int(r, i, col + 5);
	ev->payload = jm_text(r, i, col + 6);
}

static void jm_row_delivery(const struct jm_rows *r, size_t i, size_t col,
			    struct journal_delivery *d)
{
	d->handler = jm_text(r, i, col);
	d->state = (enum delivery_state)jm_int(r, i, col + 1);
	d->attempts = (unsigned)jm_int(r, i, col + 2);
	d->next_ms = jm_int(r, i, col + 3);
	d->last_error = jm_cell(r, i, col + 4);
	d->duration_us = jm_int(r, i, col + 5);
}

static int journal_mysql_load_pending_from(struct journal *j,
					   int64_t first_id,
					   journal_pending_cb *cb, void *ctx,
					   const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	int64_t from = first_id;
	int ret = 0;

	for (;;) {
		struct jm_rows r = { 0 };
		struct jm_arg a[] = { AS(jm->node), AI(from), AI(JM_PAGE) };
		size_t n;

		ret = jm_run(jm, JS_PENDING_PAGE, a, 3, &r, NULL,
			     "load pending", error_r);
		if (ret < 0)
			return ret;
		n = r.n;
		/* a full page: hand out whole events only, the rest of the
		 * last one comes with the next page */
		if (r.n == JM_PAGE) {
			int64_t last = jm_int(&r, r.n - 1, 0);

			while (n > 0 && jm_int(&r, n - 1, 0) == last)
				n--;
			if (n == 0)
				n = r.n; /* one event with a page of rows */
		}
		for (size_t i = 0; ret == 0 && i < n; i++) {
			struct journal_event ev;
			struct journal_delivery d;

			jm_row_event(&r, i, 0, &ev);
			jm_row_delivery(&r, i, 7, &d);
			d.event_id = ev.id;
			ret = cb(&ev, &d, ctx);
			from = ev.id + 1;
		}
		bool full = r.n == JM_PAGE;

		jm_rows_clear(&r);
		if (ret != 0 || !full)
			break;
	}
	return ret > 0 ? 0 : ret;
}

static int journal_mysql_load_pending_handler(struct journal *j,
					      const char *handler,
					      int64_t first_id,
					      journal_pending_cb *cb, void *ctx,
					      const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	int64_t from = first_id;
	int ret = 0;

	for (;;) {
		/* a page of pending (0) and one of failed (2) rows, merged in
		 * id order up to where a full page's knowledge ends */
		struct jm_rows r[2] = { { 0 }, { 0 } };
		static const int states[2] = { DELIVERY_PENDING,
					       DELIVERY_FAILED };
		int64_t upto = INT64_MAX;
		size_t i[2] = { 0, 0 };
		bool full = false;

		for (int k = 0; ret == 0 && k < 2; k++) {
			struct jm_arg a[] = { AS(handler), AS(jm->node),
					      AI(states[k]), AI(from),
					      AI(JM_PAGE) };

			ret = jm_run(jm, JS_PENDING_HANDLER_PAGE, a, 5, &r[k],
				     NULL, "load pending", error_r);
			if (ret == 0 && r[k].n == JM_PAGE) {
				int64_t last = jm_int(&r[k], r[k].n - 1, 0);

				full = true;
				if (last < upto)
					upto = last;
			}
		}
		while (ret == 0) {
			int k;

			if (i[0] < r[0].n && i[1] < r[1].n)
				k = jm_int(&r[0], i[0], 0) < jm_int(&r[1], i[1], 0)
					    ? 0 : 1;
			else if (i[0] < r[0].n)
				k = 0;
			else if (i[1] < r[1].n)
				k = 1;
			else
				break;
			if (jm_int(&r[k], i[k], 0) > upto)
				break;

			struct journal_event ev;
			struct journal_delivery d;

			jm_row_event(&r[k], i[k], 0, &ev);
			jm_row_delivery(&r[k], i[k], 7, &d);
			d.event_id = ev.id;
			ret = cb(&ev, &d, ctx);
			from = ev.id + 1;
			i[k]++;
		}
		jm_rows_clear(&r[0]);
		jm_rows_clear(&r[1]);
		if (ret != 0 || !full)
			break;
	}
	return ret > 0 ? 0 : ret;
}

/* The JSON object of the event in row i of r (EVENT_COLS), with its
 * deliveries. */
static int jm_event_json(struct jmysql *jm, const struct jm_rows *r,
			 size_t i, bool get_attempts, json_t **obj_r,
			 const char *op, const char **error_r)
{
	struct journal_event ev;
	struct jm_rows dr = { 0 };
	json_t *obj;
	int ret;

	jm_row_event(r, i, 0, &ev);
	struct jm_arg a[] = { AI(ev.id) };

	ret = jm_run(jm, JS_GET_DELIVERIES, a, 1, &dr, NULL, op, error_r);
	if (ret < 0)
		return ret;
	obj = journal_event_json(&ev);
	for (size_t k = 0; k < dr.n; k++) {
		struct journal_delivery d;

		jm_row_delivery(&dr, k, 0, &d);
		journal_event_json_delivery(obj, &d, jm_text(&dr, k, 6),
					    jm_cell(&dr, k, 7));
	}
	jm_rows_clear(&dr);
	if (get_attempts) {
		ret = jm_run(jm, JS_GET_ATTEMPTS, a, 1, &dr, NULL, op, error_r);
		if (ret < 0) {
			json_decref(obj);
			return ret;
		}
		for (size_t k = 0; k < dr.n; k++)
			journal_event_json_attempt(obj, jm_text(&dr, k, 0),
						   jm_int(&dr, k, 1),
						   jm_int(&dr, k, 2),
						   jm_int(&dr, k, 3),
						   jm_cell(&dr, k, 4));
		jm_rows_clear(&dr);
	}
	*obj_r = obj;
	return 0;
}

static int journal_mysql_get_event(struct journal *j, int64_t id,
				   json_t **event_r, const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	struct jm_rows r = { 0 };
	struct jm_arg a[] = { AI(id) };
	int ret = jm_run(jm, JS_GET_EVENT, a, 1, &r, NULL, "get event",
			 error_r);

	if (ret < 0)
		return ret;
	if (r.n == 0) {
		journal_set_error(&jm->j, error_r, "get event",
				  "no event %" PRId64, id);
		ret = -ENOENT;
	} else {
		ret = jm_event_json(jm, &r, 0, true, event_r, "get event",
				    error_r);
	}
	jm_rows_clear(&r);
	return ret;
}

/* A type pattern where only '*' is special, as LIKE text (escape '\'). */
static char *jm_like(const char *pattern)
{
	char *out = xmalloc(strlen(pattern) * 2 + 1), *p = out;

	for (const char *s = pattern; *s != '\0'; s++) {
		if (*s == '*') {
			*p++ = '%';
			continue;
		}
		if (*s == '%' || *s == '_' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p = '\0';
	return out;
}

static int journal_mysql_query(struct journal *j,
			       const struct journal_filter *f,
			       enum delivery_state state, json_t **events_r,
			       const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	struct jm_arg a[12];
	struct jm_rows r = { 0 };
	size_t n = 0;
	char sql[1024], *like = NULL;
	json_t *events;
	int ret = 0;

	snprintf(sql, sizeof(sql),
		 "SELECT * FROM (SELECT " EVENT_COLS " FROM events e WHERE 1%s%s%s%s%s%s%s%s"
		 " ORDER BY e.id DESC LIMIT ?) t ORDER BY t.id",
		 f->subject != NULL ? " AND e.subject = ?" : "",
		 f->type != NULL ? " AND e.type LIKE ?" : "",
		 f->state != NULL ? " AND e.id IN (SELECT d.event_id FROM"
				    " deliveries d WHERE d.state = ?)" : "",
		 f->since_ms != 0 ? " AND e.time_ms >= ?" : "",
		 f->after_id != 0 ? " AND e.id > ?" : "",
		 f->until_ms != 0 ? " AND e.time_ms < ?" : "",
		 f->before_id != 0 ? " AND e.id < ?" : "",
		 f->user != NULL ? " AND JSON_UNQUOTE(JSON_EXTRACT(e.payload,"
				   " '$.user')) = ?" : "");
	if (f->subject != NULL)
		a[n++] = AS(f->subject);
	if (f->type != NULL) {
		like = jm_like(f->type);
		a[n++] = AS(like);
	}
	if (f->state != NULL)
		a[n++] = AI(state);
	if (f->since_ms != 0)
		a[n++] = AI(f->since_ms);
	if (f->after_id != 0)
		a[n++] = AI(f->after_id);
	if (f->until_ms != 0)
		a[n++] = AI(f->until_ms);
	if (f->before_id != 0)
		a[n++] = AI(f->before_id);
	if (f->user != NULL)
		a[n++] = AS(f->user);
	a[n++] = AI(f->limit);
	ret = jm_run_sql(jm, sql, a, n, &r, NULL, "query", error_r);
	free(like);
	if (ret < 0)
		return ret;
	events = json_array();
	for (size_t i = 0; ret == 0 && i < r.n; i++) {
		json_t *obj;

		ret = jm_event_json(jm, &r, i, false, &obj, "query", error_r);
		if (ret == 0)
			json_array_append_new(events, obj);
	}
	jm_rows_clear(&r);
	if (ret < 0) {
		json_decref(events);
		return ret;
	}
	*events_r = events;
	return 0;
}

/* ---- status and maintenance ---- */

static int journal_mysql_counts(struct journal *j, json_t **counts_r,
				const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	struct jm_rows r = { 0 };
	int64_t events, last_id;
	json_t *counts;
	int ret;

	ret = jm_int_query(jm, "SELECT count(*) FROM events", NULL, 0, &events,
			   "counts", error_r);
	if (ret == 0)
		ret = jm_int_query(jm, "SELECT COALESCE(MAX(id), 0) FROM events",
				   NULL, 0, &last_id, "counts", error_r);
	struct jm_arg a[] = { AS(jm->node), AS(jm->node) };

	/* this node's rows, and the shared ones it claimed */
	if (ret == 0)
		ret = jm_run_sql(jm, "SELECT handler, state, count(*) FROM"
				     " deliveries WHERE node = ? OR (node = ''"
				     " AND claimed_by = ?)"
				     " GROUP BY handler, state",
				 a, 2, &r, NULL, "counts", error_r);
	if (ret < 0)
		return ret;
	counts = journal_counts_new(events, last_id);
	for (size_t i = 0; i < r.n; i++)
		journal_counts_add(counts, jm_text(&r, i, 0), jm_int(&r, i, 1),
				   jm_int(&r, i, 2));
	jm_rows_clear(&r);
	*counts_r = counts;
	return 0;
}

static int journal_mysql_prune(struct journal *j, int64_t before_ms,
			       unsigned *deleted_r, const char **error_r)
{
	struct jmysql *jm = jm_of(j);
	int64_t last_id = 0, min_cursor = 0, has_cursor = 0;
	unsigned deleted = 0;
	int ret;

	*deleted_r = 0;
	ret = jm_int_query(jm, "SELECT COALESCE(MAX(id), 0) FROM events", NULL,
			   0, &last_id, "prune", error_r);
	if (ret == 0)
		ret = jm_int_query(jm, "SELECT count(*) FROM cursors", NULL, 0,
				   &has_cursor, "prune", error_r);
	if (ret == 0 && has_cursor)
		ret = jm_int_query(jm, "SELECT MIN(last_event_id) FROM cursors",
				   NULL, 0, &min_cursor, "prune", error_r);
	if (ret < 0)
		return ret;
	/* keep the newest event, and everything a fan-out cursor has not
	 * passed yet */
	int64_t upto = last_id - 1;

	if (has_cursor && min_cursor < upto)
		upto = min_cursor;
	for (;;) {
		struct jm_rows r = { 0 };
		struct jm_arg a[] = { AI(before_ms), AI(upto),
				      AI(JM_PRUNE_CHUNK) };

		ret = jm_run_sql(jm, "SELECT e.id FROM events e WHERE"
				     " e.time_ms < ? AND e.id <= ? AND NOT EXISTS"
				     " (SELECT 1 FROM deliveries d WHERE"
				     " d.event_id = e.id AND d.state <> 1"
				     " AND d.state <> 4)"
				     " ORDER BY e.id LIMIT ?",
				 a, 3, &r, NULL, "prune", error_r);
		if (ret < 0)
			break;
		if (r.n == 0) {
			jm_rows_clear(&r);
			break;
		}
		bool own_tx = !jm->in_tx;

		if (own_tx)
			ret = jmysql_begin(jm, error_r);
		for (size_t i = 0; ret == 0 && i < r.n; i++) {
			struct jm_arg id[] = { AI(jm_int(&r, i, 0)) };

			ret = jm_run_sql(jm, "DELETE FROM deliveries WHERE"
					     " event_id = ?", id, 1, NULL, NULL,
					 "prune", error_r);
			if (ret == 0)
				ret = jm_run_sql(jm, "DELETE FROM attempts"
						     " WHERE event_id = ?", id,
						 1, NULL, NULL, "prune",
						 error_r);
			if (ret == 0)
				ret = jm_run_sql(jm, "DELETE FROM events WHERE"
						     " id = ?", id, 1, NULL,
						 NULL, "prune", error_r);
		}
		if (own_tx) {
			if (ret == 0)
				ret = jmysql_commit(jm, error_r);
			else
				jmysql_rollback(jm);
		}
		size_t got = r.n;

		jm_rows_clear(&r);
		if (ret < 0)
			break;
		deleted += (unsigned)got;
		if (got < JM_PRUNE_CHUNK)
			break;
	}
	*deleted_r = deleted;
	return ret;
}

static int64_t journal_mysql_last_id(struct journal *j)
{
	struct jmysql *jm = jm_of(j);
	struct jm_rows r = { 0 };
	int64_t id = 0;

	if (jm_run(jm, JS_LAST_ID, NULL, 0, &r, NULL, "last id", NULL) == 0 &&
	    r.n > 0)
		id = jm_int(&r, 0, 0);
	jm_rows_clear(&r);
	return id;
}

const struct journal_backend journal_mysql_backend = {
	.name = "mysql",
	.size = sizeof(struct jmysql),
	.open = journal_mysql_open,
	.close = journal_mysql_close,
	.tx_begin = journal_mysql_tx_begin,
	.commit = journal_mysql_commit,
	.rollback = journal_mysql_rollback,
	.append = journal_mysql_append,
	.delivery_add = journal_mysql_delivery_add,
	.delivery_update = journal_mysql_delivery_update,
	.load_pending_from = journal_mysql_load_pending_from,
	.load_pending_handler = journal_mysql_load_pending_handler,
	.get_event = journal_mysql_get_event,
	.query = journal_mysql_query,
	.counts = journal_mysql_counts,
	.prune = journal_mysql_prune,
	.last_id = journal_mysql_last_id,
};

/* ---- cluster ---- */

void jmysql_rows_free(struct jmysql_row **rows, size_t n)
{
	if (*rows == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free((*rows)[i].strings);
	free(*rows);
	*rows = NULL;
}

/* Copy an event (and handler) into an owned row. */
static void jm_row_copy(struct jmysql_row *row, const struct journal_event *ev,
			const char *handler)
{
	struct journal_delivery d = { .event_id = ev->id, .handler = handler };

	row->strings = journal_row_copy(ev, &d, &row->ev, &row->d);
}

int jmysql_fanout_fetch(struct jmysql *jm, const char *handler,
			unsigned limit,
			bool (*match)(const char *type, void *ctx), void *ctx,
			struct jmysql_row **rows_r, size_t *n_r, bool *more_r,
			const char **error_r)
{
	struct jm_rows cr = { 0 }, er = { 0 };
	struct jmysql_row *rows = NULL;
	struct jm_arg *da = NULL;
	size_t n = 0;
	int64_t cursor;
	int ret;

	*rows_r = NULL;
	*n_r = 0;
	*more_r = false;
	ret = jmysql_begin(jm, error_r);
	if (ret < 0)
		return ret;
	struct jm_arg key[] = { AS(jm->node), AS(handler) };

	ret = jm_run(jm, JS_CURSOR_GET, key, 2, &cr, NULL, "fanout", error_r);
	if (ret == 0 && cr.n == 0) {
		ret = jm_run(jm, JS_CURSOR_INIT, key, 2, NULL, NULL, "fanout",
			     error_r);
		if (ret == 0)
			ret = jm_run(jm, JS_CURSOR_GET, key, 2, &cr, NULL,
				     "fanout", error_r);
	}
	if (ret < 0)
		goto fail;
	cursor = cr.n > 0 ? jm_int(&cr, 0, 0) : 0;
	struct jm_arg pa[] = { AI(cursor), AI(limit) };

	ret = jm_run(jm, JS_FANOUT_PAGE, pa, 2, &er, NULL, "fanout", error_r);
	if (ret < 0)
		goto fail;
	if (er.n == 0) {
		/* keeps a cursor created just now */
		ret = jmysql_commit(jm, error_r);
		if (ret < 0)
			goto fail_done;
		goto out;
	}
	rows = xcalloc(er.n, sizeof(*rows));
	da = xcalloc(er.n * 3, sizeof(*da));
	for (size_t i = 0; i < er.n; i++) {
		struct journal_event ev;

		jm_row_event(&er, i, 0, &ev);
		cursor = ev.id;
		if (!match(ev.type, ctx))
			continue;
		da[n * 3] = AI(ev.id);
		da[n * 3 + 1] = AS(handler);
		da[n * 3 + 2] = AS(jm->node);
		jm_row_copy(&rows[n++], &ev, handler);
	}
	/* the page's delivery rows in a few multi-row statements */
	ret = n > 0 ? jm_multi_exec(jm, JM_FANOUT_ADD, da, n, NULL, "fanout",
				    error_r)
		    : 0;
	free(da);
	da = NULL;
	if (ret < 0)
		goto fail;
	struct jm_arg sa[] = { AI(cursor), AS(jm->node), AS(handler) };

	ret = jm_run(jm, JS_CURSOR_SET, sa, 3, NULL, NULL, "fanout", error_r);
	if (ret == 0)
		ret = jmysql_commit(jm, error_r);
	if (ret < 0)
		goto fail_done;
	*more_r = er.n == limit;
	*rows_r = rows;
	*n_r = n;
	rows = NULL;
out:
	jm_rows_clear(&cr);
	jm_rows_clear(&er);
	return 0;
fail:
	jmysql_rollback(jm);
fail_done:
	jmysql_rows_free(&rows, n);
	jm_rows_clear(&cr);
	jm_rows_clear(&er);
	return ret;
}

int jmysql_shared_claim(struct jmysql *jm, const char *handler,
			unsigned limit, unsigned lease_ms,
			struct jmysql_row **rows_r, size_t *n_r,
			const char **error_r)
{
	struct jm_rows cr = { 0 };
	struct jmysql_row *rows = NULL;
	int64_t now = now_ms();
	size_t n = 0;
	int ret;

	*rows_r = NULL;
	*n_r = 0;
	ret = jmysql_begin(jm, error_r);
	if (ret < 0)
		return ret;
	struct jm_arg ca[] = { AS(handler), AI(now), AI(now), AI(limit) };

	ret = jm_run(jm, JS_CLAIM_SELECT, ca, 4, &cr, NULL, "claim", error_r);
	if (ret < 0)
		goto fail;
	if (cr.n == 0) {
		jmysql_rollback(jm);
		goto out;
	}
	for (size_t i = 0; i < cr.n; i++) {
		struct jm_arg sa[] = { AS(jm->node), AI(now + (int64_t)lease_ms),
				       AI(jm_int(&cr, i, 0)), AS(handler) };

		ret = jm_run(jm, JS_CLAIM_SET, sa, 4, NULL, NULL, "claim",
			     error_r);
		if (ret < 0)
			goto fail;
	}
	ret = jmysql_commit(jm, error_r);
	if (ret < 0)
		goto out_err;
	rows = xcalloc(cr.n, sizeof(*rows));
	for (size_t i = 0; i < cr.n; i++) {
		struct jm_rows er = { 0 };
		struct jm_arg ea[] = { AI(jm_int(&cr, i, 0)) };
		struct journal_event ev;

		ret = jm_run(jm, JS_GET_EVENT, ea, 1, &er, NULL, "claim",
			     error_r);
		if (ret < 0) {
			/* claimed but not loaded: the lease runs out and
			 * someone takes them again */
			jm_rows_clear(&er);
			break;
		}
		if (er.n == 0) {
			jm_rows_clear(&er);
			continue;
		}
		jm_row_event(&er, 0, 0, &ev);
		jm_row_copy(&rows[n], &ev, handler);
		rows[n].d.attempts = (unsigned)jm_int(&cr, i, 1);
		rows[n].d.state = (enum delivery_state)jm_int(&cr, i, 2);
		rows[n].d.next_ms = jm_int(&cr, i, 3);
		n++;
		jm_rows_clear(&er);
	}
	*rows_r = rows;
	*n_r = n;
out:
	jm_rows_clear(&cr);
	return 0;
fail:
	jmysql_rollback(jm);
out_err:
	jm_rows_clear(&cr);
	return ret;
}

int jmysql_shared_renew(struct jmysql *jm, unsigned lease_ms,
			const char **error_r)
{
	struct jm_arg a[] = { AI(now_ms() + (int64_t)lease_ms), AS(jm->node) };

	return jm_run(jm, JS_RENEW, a, 2, NULL, NULL, "renew", error_r);
}

int jmysql_shared_release(struct jmysql *jm, const char **error_r)
{
	struct jm_arg a[] = { AS(jm->node) };

	return jm_run(jm, JS_RELEASE, a, 1, NULL, NULL, "release", error_r);
}

int jmysql_cursors_forget(struct jmysql *jm, const char **error_r)
{
	struct jm_rows r = { 0 };
	struct jm_arg a[] = { AS(jm->node) };
	int ret = jm_run_sql(jm, "SELECT handler FROM cursors WHERE node = ?", a,
			     1, &r, NULL, "cursors", error_r);

	for (size_t i = 0; ret == 0 && i < r.n; i++) {
		const char *h = jm_text(&r, i, 0);

		if (jmysql_mode(jm, h) == JMYSQL_FANOUT)
			continue;
		struct jm_arg d[] = { AS(jm->node), AS(h) };

		ret = jm_run_sql(jm, "DELETE FROM cursors WHERE node = ? AND"
				     " handler = ?", d, 2, NULL, NULL, "cursors",
				 error_r);
	}
	jm_rows_clear(&r);
	return ret;
}

int jmysql_heartbeat(struct jmysql *jm, int64_t started_ms,
		     const char *version, const char *last_error,
		     const char **error_r)
{
	struct jm_arg a[] = { AS(jm->node), AI(now_ms()), AI(started_ms),
			      AS(version), AS(last_error) };

	return jm_run(jm, JS_HEARTBEAT, a, 5, NULL, NULL, "heartbeat", error_r);
}

int jmysql_cluster_status(struct jmysql *jm, int64_t dead_after_ms,
			  json_t **nodes_r, const char **error_r)
{
	struct jm_rows r = { 0 };
	int64_t now = now_ms();
	json_t *nodes;
	int ret;

	/* lag: events not yet past the node's fan-out cursors, plus its
	 * unfinished deliveries */
	ret = jm_run_sql(
		jm,
		"SELECT n.name, n.heartbeat_ms, n.started_ms, n.version,"
		" n.last_error,"
		" (SELECT COALESCE(SUM((SELECT count(*) FROM events e"
		"   WHERE e.id > c.last_event_id)), 0)"
		"   FROM cursors c WHERE c.node = n.name),"
		" (SELECT count(*) FROM deliveries d WHERE (d.node = n.name OR"
		"   (d.node = '' AND d.claimed_by = n.name)) AND d.state = 0),"
		" (SELECT count(*) FROM deliveries d WHERE (d.node = n.name OR"
		"   (d.node = '' AND d.claimed_by = n.name)) AND d.state = 2),"
		" (SELECT count(*) FROM deliveries d WHERE (d.node = n.name OR"
		"   (d.node = '' AND d.claimed_by = n.name)) AND d.state = 3)"
		" FROM nodes n ORDER BY n.name",
		NULL, 0, &r, NULL, "cluster status", error_r);
	if (ret < 0)
		return ret;
	nodes = json_array();
	for (size_t i = 0; i < r.n; i++) {
		json_t *o = json_object();
		int64_t hb = jm_int(&r, i, 1);

		json_object_set_new(o, "name", json_string(jm_text(&r, i, 0)));
		json_object_set_new(o, "heartbeat_ms", json_integer(hb));
		json_object_set_new(o, "age_ms", json_integer(now - hb));
		json_object_set_new(o, "alive",
				    json_boolean(now - hb < dead_after_ms));
		json_object_set_new(o, "started_ms",
				    json_integer(jm_int(&r, i, 2)));
		json_object_set_new(o, "version",
				    json_string(jm_text(&r, i, 3)));
		json_object_set_new(o, "last_error",
				    jm_cell(&r, i, 4) != NULL
					    ? json_string(jm_cell(&r, i, 4))
					    : json_null());
		json_object_set_new(o, "lag", json_integer(jm_int(&r, i, 5) +
							   jm_int(&r, i, 6) +
							   jm_int(&r, i, 7)));
		json_object_set_new(o, "pending",
				    json_integer(jm_int(&r, i, 6)));
		json_object_set_new(o, "failed",
				    json_integer(jm_int(&r, i, 7)));
		json_object_set_new(o, "dead", json_integer(jm_int(&r, i, 8)));
		json_array_append_new(nodes, o);
	}
	jm_rows_clear(&r);
	*nodes_r = nodes;
	return 0;
}
