/* Panel DB drivers (internal to core/paneldb*.c): SQLite and MySQL/MariaDB
 * behind one small interface.  All calls block: run them on worker threads,
 * never on the loop thread.  A connection is used by one thread at a time
 * (the caller serializes). */
#ifndef OPHOOK_PANELDB_DRIVER_H
#define OPHOOK_PANELDB_DRIVER_H

#include <jansson.h>
#include <stdbool.h>

struct paneldb_conn;

/* Where to connect: built from struct config's panel_db section. */
struct paneldb_target {
	const char *path;        /* sqlite: the database file */
	const char *option_file; /* mysql: my.cnf-style file ([client]) */
	const char *database;    /* mysql: database name (NULL: from file) */
};

struct paneldb_driver {
	const char *name;
	/* Connections are cheap and should not outlive one poll (SQLite: a
	 * replaced file is seen at the next poll). */
	bool per_poll;
	/* Connect read-only.  0 or -errno with *error_r (malloc'd). */
	int (*connect)(const struct paneldb_target *t,
		       struct paneldb_conn **conn_r, char **error_r);
	/* Run one statement with positional parameters (JSON array of
	 * strings, integers, reals, booleans, nulls; may be NULL).  Rows come
	 * back as an array of arrays (integers, reals, strings, nulls) and,
	 * when cols_r is not NULL, the column names as an array of strings.
	 * -EPIPE when the connection is gone (reconnect), other -errno for a
	 * bad statement; *error_r (malloc'd) says why. */
	int (*query)(struct paneldb_conn *conn, const char *sql, json_t *params,
		     json_t **rows_r, json_t **cols_r, char **error_r);
	/* Start / end a read-only transaction, so that several SELECTs see
	 * one snapshot (a user and its domains added in between are seen
	 * together).  end(commit) is called after a failed begin too. */
	int (*begin)(struct paneldb_conn *conn, char **error_r);
	void (*end)(struct paneldb_conn *conn);
	/* Close and set *conn to NULL (NULL is fine). */
	void (*close)(struct paneldb_conn **conn);
};

extern const struct paneldb_driver paneldb_sqlite_driver;
extern const struct paneldb_driver paneldb_mysql_driver;

/* The driver named `name` ("sqlite" or "mysql"), or NULL. */
const struct paneldb_driver *paneldb_driver_find(const char *name);

/* True when sql is a single read-only SELECT statement (a leading comment
 * and a trailing ';' allowed; no INTO, no locking clauses).  On false,
 * *why_r says what is wrong. */
bool paneldb_sql_readonly(const char *sql, const char **why_r);

#endif
