/* Panel DB driver: MySQL/MariaDB through MariaDB Connector/C.  Credentials
 * come from a my.cnf-style option file ([client]: user, password, host,
 * port or socket): OpenPanel 2.x's /etc/openpanel/mysql/host_my.cnf.  Every
 * statement is a server-side prepared statement (parameters never enter
 * the SQL text); the session is read-only. */
#include "paneldb_driver.h"
#include "util.h"

#include <errno.h>
#include <errmsg.h>
#include <mysql.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct paneldb_conn {
	MYSQL *m;
	char *where; /* option file, for messages */
};

static pthread_once_t paneldb_mysql_once = PTHREAD_ONCE_INIT;
static int paneldb_mysql_init_rc;

static void paneldb_mysql_lib_init(void)
{
	paneldb_mysql_init_rc = mysql_library_init(0, NULL, NULL);
}

/* Errors after which the connection is useless: reconnect. */
static bool paneldb_mysql_gone(unsigned e)
{
	return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST ||
	       e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
	       e == CR_SERVER_LOST_EXTENDED || e == CR_COMMANDS_OUT_OF_SYNC ||
	       e == 1053 /* ER_SERVER_SHUTDOWN */ ||
	       e == 1927 /* ER_CONNECTION_KILLED */ ||
	       e == 4031 /* ER_CLIENT_INTERACTION_TIMEOUT */;
}

static int paneldb_mysql_connect(const struct paneldb_target *t,
				 struct paneldb_conn **conn_r, char **error_r)
{
	unsigned timeout = 5, rw_timeout = 60;
	const char *db = t->database;
	MYSQL *m;

	pthread_once(&paneldb_mysql_once, paneldb_mysql_lib_init);
	if (paneldb_mysql_init_rc != 0) {
		*error_r = xstrdup("MySQL client library failed to initialize");
		return -EIO;
	}
	if (t->option_file == NULL || access(t->option_file, R_OK) < 0) {
		int err = t->option_file == NULL ? ENOENT : errno;

		*error_r = xasprintf("panel_db.option_file %s: %s",
				     t->option_file != NULL ? t->option_file :
				     "(none)", strerror(err));
		return -err;
	}
	m = mysql_init(NULL);
	if (m == NULL) {
		*error_r = xstrdup("mysql_init: out of memory");
		return -ENOMEM;
	}
	mysql_options(m, MYSQL_READ_DEFAULT_FILE, t->option_file);
	mysql_options(m, MYSQL_READ_DEFAULT_GROUP, "client");
	mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &rw_timeout);
	mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &rw_timeout);
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (db != NULL && db[0] == '\0')
		db = NULL;
	if (mysql_real_connect(m, NULL, NULL, NULL, db, 0, NULL, 0) == NULL) {
		*error_r = xasprintf("MySQL (%s): %s", t->option_file,
				     mysql_error(m));
		mysql_close(m);
		return -ECONNREFUSED;
	}
	/* Belt and braces: the account should be read-only already. */
	if (mysql_query(m, "SET SESSION TRANSACTION READ ONLY") != 0) {
		*error_r = xasprintf("MySQL (%s): %s", t->option_file,
				     mysql_error(m));
		mysql_close(m);
		return -EIO;
	}
	*conn_r = xcalloc(1, sizeof(**conn_r));
	(*conn_r)->m = m;
	(*conn_r)->where = xstrdup(t->option_file);
	return 0;
}

static int paneldb_mysql_fail(struct paneldb_conn *c, MYSQL_STMT *st,
			      char **error_r)
{
	unsigned e = st != NULL ? mysql_stmt_errno(st) : mysql_errno(c->m);

	*error_r = xasprintf("MySQL (%s): %s", c->where,
			     st != NULL ? mysql_stmt_error(st) :
			     mysql_error(c->m));
	return paneldb_mysql_gone(e) ? -EPIPE : -EINVAL;
}

struct paneldb_mysql_params {
	MYSQL_BIND *bind;
	long long *ints;
	double *reals;
};

static int paneldb_mysql_bind_params(MYSQL_STMT *st, json_t *params,
				     struct paneldb_mysql_params *p,
				     char **error_r)
{
	unsigned long want = mysql_stmt_param_count(st);
	size_t n = params != NULL ? json_array_size(params) : 0;
	json_t *v;
	size_t i;

	if (params != NULL && !json_is_array(params)) {
		*error_r = xstrdup("query parameters must be an array");
		return -EINVAL;
	}
	if (n != want) {
		*error_r = xasprintf("query has %lu parameters, %zu given",
				     want, n);
		return -EINVAL;
	}
	if (n == 0)
		return 0;
	p->bind = xcalloc(n, sizeof(*p->bind));
	p->ints = xcalloc(n, sizeof(*p->ints));
	p->reals = xcalloc(n, sizeof(*p->reals));
	json_array_foreach(params, i, v) {
		MYSQL_BIND *b = &p->bind[i];

		switch (json_typeof(v)) {
		case JSON_STRING:
			b->buffer_type = MYSQL_TYPE_STRING;
			b->buffer = (void *)json_string_value(v);
			b->buffer_length = json_string_length(v);
			break;
		case JSON_INTEGER:
		case JSON_TRUE:
		case JSON_FALSE:
			p->ints[i] = json_is_integer(v) ?
				     json_integer_value(v) : json_is_true(v);
			b->buffer_type = MYSQL_TYPE_LONGLONG;
			b->buffer = &p->ints[i];
			break;
		case JSON_REAL:
			p->reals[i] = json_real_value(v);
			b->buffer_type = MYSQL_TYPE_DOUBLE;
			b->buffer = &p->reals[i];
			break;
		case JSON_NULL:
			b->buffer_type = MYSQL_TYPE_NULL;
			break;
		default:
			*error_r = xasprintf("query parameter %zu: arrays and "
					     "objects are not allowed", i + 1);
			return -EINVAL;
		}
	}
	if (mysql_stmt_bind_param(st, p->bind) != 0) {
		*error_r = xasprintf("binding parameters: %s",
				     mysql_stmt_error(st));
		return -EINVAL;
	}
	return 0;
}

static json_t *paneldb_mysql_value(const MYSQL_FIELD *f, const char *s,
				   unsigned long len)
{
	json_t *v;
	char *end;

	switch (f->type) {
	case MYSQL_TYPE_TINY:
	case MYSQL_TYPE_SHORT:
	case MYSQL_TYPE_LONG:
	case MYSQL_TYPE_INT24:
	case MYSQL_TYPE_LONGLONG:
	case MYSQL_TYPE_YEAR:
		errno = 0;
		{
			long long n = strtoll(s, &end, 10);

			if (errno == 0 && end != s && *end == '\0')
				return json_integer(n);
		}
		break;
	case MYSQL_TYPE_FLOAT:
	case MYSQL_TYPE_DOUBLE:
		return json_real(strtod(s, NULL));
	default:
		break;
	}
	v = json_stringn(s, len);
	return v != NULL ? v : json_null();
}

struct paneldb_mysql_result {
	MYSQL_BIND *bind;
	char **bufs;
	unsigned long *lens;
	my_bool *nulls;
	my_bool *errs;
	unsigned n;
};

static void paneldb_mysql_result_free(struct paneldb_mysql_result *r)
{
	for (unsigned i = 0; i < r->n; i++)
		free(r->bufs[i]);
	free(r->bufs);
	free(r->bind);
	free(r->lens);
	free(r->nulls);
	free(r->errs);
}

static int paneldb_mysql_fetch(struct paneldb_conn *c, MYSQL_STMT *st,
			       MYSQL_RES *meta, json_t *rows, json_t *cols,
			       char **error_r)
{
	struct paneldb_mysql_result r = { .n = mysql_num_fields(meta) };
	MYSQL_FIELD *fields = mysql_fetch_fields(meta);
	int rc, ret = 0;

	r.bind = xcalloc(r.n, sizeof(*r.bind));
	r.bufs = xcalloc(r.n, sizeof(*r.bufs));
	r.lens = xcalloc(r.n, sizeof(*r.lens));
	r.nulls = xcalloc(r.n, sizeof(*r.nulls));
	r.errs = xcalloc(r.n, sizeof(*r.errs));
	for (unsigned i = 0; i < r.n; i++) {
		unsigned long size = fields[i].max_length + 1;

		if (size < 64)
			size = 64;
		r.bufs[i] = xmalloc(size);
		r.bind[i].buffer_type = MYSQL_TYPE_STRING;
		r.bind[i].buffer = r.bufs[i];
		r.bind[i].buffer_length = size;
		r.bind[i].length = &r.lens[i];
		r.bind[i].is_null = &r.nulls[i];
		r.bind[i].error = &r.errs[i];
		if (cols != NULL) {
			json_t *s = json_string(fields[i].name);

			json_array_append_new(cols,
					      s != NULL ? s : json_string("?"));
		}
	}
	if (mysql_stmt_bind_result(st, r.bind) != 0) {
		ret = paneldb_mysql_fail(c, st, error_r);
		goto out;
	}
	while ((rc = mysql_stmt_fetch(st)) == 0 || rc == MYSQL_DATA_TRUNCATED) {
		json_t *row = json_array();

		for (unsigned i = 0; i < r.n; i++) {
			if (r.nulls[i]) {
				json_array_append_new(row, json_null());
				continue;
			}
			if (r.lens[i] >= r.bind[i].buffer_length) {
				/* Longer than max_length said: fetch again. */
				r.bufs[i] = xrealloc(r.bufs[i], r.lens[i] + 1);
				r.bind[i].buffer = r.bufs[i];
				r.bind[i].buffer_length = r.lens[i] + 1;
				if (mysql_stmt_fetch_column(st, &r.bind[i], i,
							    0) != 0) {
					json_decref(row);
					ret = paneldb_mysql_fail(c, st,
								 error_r);
					goto out;
				}
			}
			r.bufs[i][r.lens[i]] = '\0';
			json_array_append_new(row, paneldb_mysql_value(
				&fields[i], r.bufs[i], r.lens[i]));
		}
		json_array_append_new(rows, row);
	}
	if (rc != MYSQL_NO_DATA)
		ret = paneldb_mysql_fail(c, st, error_r);
out:
	paneldb_mysql_result_free(&r);
	return ret;
}

static int paneldb_mysql_query(struct paneldb_conn *c, const char *sql,
			       json_t *params, json_t **rows_r,
			       json_t **cols_r, char **error_r)
{
	struct paneldb_mysql_params p = { 0 };
	MYSQL_STMT *st = mysql_stmt_init(c->m);
	MYSQL_RES *meta = NULL;
	json_t *rows = NULL, *cols = NULL;
	my_bool one = 1;
	int ret;

	if (st == NULL)
		return paneldb_mysql_fail(c, NULL, error_r);
	if (mysql_stmt_prepare(st, sql, strlen(sql)) != 0) {
		ret = paneldb_mysql_fail(c, st, error_r);
		goto out;
	}
	ret = paneldb_mysql_bind_params(st, params, &p, error_r);
	if (ret < 0)
		goto out;
	if (mysql_stmt_execute(st) != 0) {
		ret = paneldb_mysql_fail(c, st, error_r);
		goto out;
	}
	rows = json_array();
	cols = json_array();
	meta = mysql_stmt_result_metadata(st);
	if (meta != NULL) {
		mysql_stmt_attr_set(st, STMT_ATTR_UPDATE_MAX_LENGTH, &one);
		if (mysql_stmt_store_result(st) != 0) {
			ret = paneldb_mysql_fail(c, st, error_r);
			goto out;
		}
		ret = paneldb_mysql_fetch(c, st, meta, rows, cols, error_r);
		if (ret < 0)
			goto out;
	}
	*rows_r = rows;
	rows = NULL;
	if (cols_r != NULL) {
		*cols_r = cols;
		cols = NULL;
	}
out:
	if (meta != NULL)
		mysql_free_result(meta);
	mysql_stmt_close(st);
	free(p.bind);
	free(p.ints);
	free(p.reals);
	json_decref(rows);
	json_decref(cols);
	return ret;
}

static int paneldb_mysql_begin(struct paneldb_conn *c, char **error_r)
{
	if (mysql_query(c->m, "START TRANSACTION WITH CONSISTENT SNAPSHOT") != 0)
		return paneldb_mysql_fail(c, NULL, error_r);
	return 0;
}

static void paneldb_mysql_end(struct paneldb_conn *c)
{
	(void)mysql_query(c->m, "COMMIT");
}

static void paneldb_mysql_close(struct paneldb_conn **connp)
{
	struct paneldb_conn *c = *connp;

	if (c == NULL)
		return;
	mysql_close(c->m);
	free(c->where);
	free(c);
	*connp = NULL;
}

const struct paneldb_driver paneldb_mysql_driver = {
	.name = "mysql",
	.per_poll = false,
	.connect = paneldb_mysql_connect,
	.query = paneldb_mysql_query,
	.begin = paneldb_mysql_begin,
	.end = paneldb_mysql_end,
	.close = paneldb_mysql_close,
};
