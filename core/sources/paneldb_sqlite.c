/* Panel DB driver: SQLite (the embedded default, and OpenAdmin's users.db).
 * Opens read-only; WAL databases are read without writing them. */
#include "paneldb_driver.h"
#include "util.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

struct paneldb_conn {
	sqlite3 *db;
	char *path;
};

static char *paneldb_sqlite_err(sqlite3 *db, const char *path, const char *what)
{
	return xasprintf("%s: %s: %s", path, what,
			 db != NULL ? sqlite3_errmsg(db) : "out of memory");
}

static int paneldb_sqlite_connect(const struct paneldb_target *t,
				  struct paneldb_conn **conn_r, char **error_r)
{
	sqlite3 *db = NULL;
	int rc;

	if (t->path == NULL || t->path[0] == '\0') {
		*error_r = xstrdup("panel_db.path: no SQLite file configured");
		return -EINVAL;
	}
	rc = sqlite3_open_v2(t->path, &db, SQLITE_OPEN_READONLY |
			     SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		*error_r = paneldb_sqlite_err(db, t->path, "cannot open");
		sqlite3_close(db);
		return rc == SQLITE_CANTOPEN ? -ENOENT : -EIO;
	}
	sqlite3_busy_timeout(db, 5000);
	/* A file that is not a database fails here, not at the first poll. */
	rc = sqlite3_exec(db, "SELECT count(*) FROM sqlite_master", NULL, NULL,
			  NULL);
	if (rc != SQLITE_OK) {
		*error_r = paneldb_sqlite_err(db, t->path, "cannot read");
		sqlite3_close(db);
		return -EIO;
	}
	*conn_r = xcalloc(1, sizeof(**conn_r));
	(*conn_r)->db = db;
	(*conn_r)->path = xstrdup(t->path);
	return 0;
}

static int paneldb_sqlite_bind(sqlite3_stmt *st, json_t *params,
			       char **error_r)
{
	size_t i;
	json_t *v;
	int rc = SQLITE_OK;

	if (params == NULL)
		return 0;
	if (!json_is_array(params)) {
		*error_r = xstrdup("query parameters must be an array");
		return -EINVAL;
	}
	if ((int)json_array_size(params) != sqlite3_bind_parameter_count(st)) {
		*error_r = xasprintf("query has %d parameters, %zu given",
				     sqlite3_bind_parameter_count(st),
				     json_array_size(params));
		return -EINVAL;
	}
	json_array_foreach(params, i, v) {
		int n = (int)i + 1;

		switch (json_typeof(v)) {
		case JSON_STRING:
			rc = sqlite3_bind_text(st, n, json_string_value(v),
					       (int)json_string_length(v),
					       SQLITE_TRANSIENT);
			break;
		case JSON_INTEGER:
			rc = sqlite3_bind_int64(st, n, json_integer_value(v));
			break;
		case JSON_REAL:
			rc = sqlite3_bind_double(st, n, json_real_value(v));
			break;
		case JSON_TRUE:
		case JSON_FALSE:
			rc = sqlite3_bind_int(st, n, json_is_true(v));
			break;
		case JSON_NULL:
			rc = sqlite3_bind_null(st, n);
			break;
		default:
			*error_r = xasprintf("query parameter %d: arrays and "
					     "objects are not allowed", n);
			return -EINVAL;
		}
		if (rc != SQLITE_OK) {
			*error_r = xasprintf("query parameter %d: %s", n,
					     sqlite3_errstr(rc));
			return -EINVAL;
		}
	}
	return 0;
}

static json_t *paneldb_sqlite_value(sqlite3_stmt *st, int i)
{
	json_t *v;

	switch (sqlite3_column_type(st, i)) {
	case SQLITE_INTEGER:
		return json_integer(sqlite3_column_int64(st, i));
	case SQLITE_FLOAT:
		return json_real(sqlite3_column_double(st, i));
	case SQLITE_NULL:
		return json_null();
	default:
		v = json_stringn((const char *)sqlite3_column_text(st, i),
				 (size_t)sqlite3_column_bytes(st, i));
		/* Not UTF-8 (a blob): null rather than broken JSON. */
		return v != NULL ? v : json_null();
	}
}

static int paneldb_sqlite_query(struct paneldb_conn *c, const char *sql,
				json_t *params, json_t **rows_r,
				json_t **cols_r, char **error_r)
{
	sqlite3_stmt *st = NULL;
	json_t *rows;
	int rc, ncol, ret;

	rc = sqlite3_prepare_v2(c->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK) {
		*error_r = paneldb_sqlite_err(c->db, c->path, "bad query");
		return rc == SQLITE_ERROR ? -EINVAL : -EPIPE;
	}
	if (st == NULL) {
		*error_r = xstrdup("empty query");
		return -EINVAL;
	}
	ret = paneldb_sqlite_bind(st, params, error_r);
	if (ret < 0) {
		sqlite3_finalize(st);
		return ret;
	}
	ncol = sqlite3_column_count(st);
	rows = json_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_t *row = json_array();

		for (int i = 0; i < ncol; i++)
			json_array_append_new(row, paneldb_sqlite_value(st, i));
		json_array_append_new(rows, row);
	}
	if (rc != SQLITE_DONE) {
		*error_r = paneldb_sqlite_err(c->db, c->path, "query failed");
		sqlite3_finalize(st);
		json_decref(rows);
		return -EPIPE;
	}
	if (cols_r != NULL) {
		*cols_r = json_array();
		for (int i = 0; i < ncol; i++) {
			const char *n = sqlite3_column_name(st, i);
			json_t *s = json_string(n != NULL ? n : "");

			json_array_append_new(*cols_r,
					      s != NULL ? s : json_string("?"));
		}
	}
	sqlite3_finalize(st);
	*rows_r = rows;
	return 0;
}

static int paneldb_sqlite_begin(struct paneldb_conn *c, char **error_r)
{
	/* deferred: the first SELECT takes the read snapshot */
	if (sqlite3_exec(c->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
		*error_r = paneldb_sqlite_err(c->db, c->path, "BEGIN");
		return -EPIPE;
	}
	return 0;
}

static void paneldb_sqlite_end(struct paneldb_conn *c)
{
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
}

static void paneldb_sqlite_close(struct paneldb_conn **connp)
{
	struct paneldb_conn *c = *connp;

	if (c == NULL)
		return;
	sqlite3_close(c->db);
	free(c->path);
	free(c);
	*connp = NULL;
}

const struct paneldb_driver paneldb_sqlite_driver = {
	.name = "sqlite",
	.per_poll = true,
	.connect = paneldb_sqlite_connect,
	.query = paneldb_sqlite_query,
	.begin = paneldb_sqlite_begin,
	.end = paneldb_sqlite_end,
	.close = paneldb_sqlite_close,
};
