/* bench/poll N: the panel DB poller's cost with N users and 5*N domains:
 * time per poll (the three SELECTs, building the snapshot, diffing it
 * against the previous one) and queries per poll, on SQLite; on MariaDB
 * too when OPHOOK_BENCH_MYSQL_OPTION_FILE names a my.cnf-style file and
 * OPHOOK_BENCH_MYSQL_DB a database whose name contains "bench" (its tables
 * users, plans, domains are dropped and re-created).
 * Last line: result: users=U domains=D ms_per_poll=T queries_per_poll=Q
 * (the SQLite figures; MariaDB's are in the table). */
#define _GNU_SOURCE
#include "dbpoll.h"
#include "hmap.h"
#include "log.h"
#include "paneldb_driver.h"
#include "util.h"

#include <errno.h>
#include <mysql.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POLLS 15

static int64_t cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static const char *const schema[] = {
	"CREATE TABLE plans (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255) "
	"NOT NULL, domains_limit INTEGER NOT NULL DEFAULT 0, websites_limit "
	"INTEGER NOT NULL DEFAULT 10, email_limit INTEGER NOT NULL DEFAULT 0, "
	"ftp_limit INTEGER NOT NULL DEFAULT 0, disk_limit TEXT NOT NULL DEFAULT "
	"'5 GB', inodes_limit BIGINT NOT NULL DEFAULT 1000000, db_limit INTEGER "
	"NOT NULL DEFAULT 0, cpu VARCHAR(50) DEFAULT '2', ram VARCHAR(50) "
	"DEFAULT '2g', bandwidth INTEGER DEFAULT 10)",
	"CREATE TABLE users (id INTEGER NOT NULL PRIMARY KEY, username "
	"VARCHAR(255) NOT NULL, password VARCHAR(255) NOT NULL, email "
	"VARCHAR(255) NOT NULL, owner VARCHAR(255) DEFAULT NULL, twofa_enabled "
	"TINYINT DEFAULT 0, otp_secret VARCHAR(255) DEFAULT NULL, server "
	"VARCHAR(255) DEFAULT 'default', plan_id INTEGER DEFAULT NULL)",
	"CREATE TABLE sites (id INTEGER NOT NULL PRIMARY KEY, site_name "
	"VARCHAR(255) DEFAULT NULL, domain_id INTEGER DEFAULT NULL, type "
	"VARCHAR(50) DEFAULT NULL)",
	"CREATE TABLE domains (domain_id INTEGER NOT NULL PRIMARY KEY, docroot "
	"VARCHAR(255) NOT NULL, domain_url VARCHAR(255) NOT NULL, user_id "
	"INTEGER DEFAULT NULL, php_version VARCHAR(255) DEFAULT '8.2')",
};

/* The n-th seeding statement (NULL at the end); batches of 500 rows. */
static char *seed_sql(unsigned users, unsigned k)
{
	unsigned domains = users * 5, per = 500;
	unsigned ub = (users + per - 1) / per, db = (domains + per - 1) / per;
	char *sql, *s;

	if (k == 0)
		return xstrdup("INSERT INTO plans (id, name, domains_limit) VALUES "
			       "(1, 'Standard plan', 0), (2, 'Developer Plus', "
			       "0), (3, 'Reseller', 0)");
	k--;
	if (k < ub) {
		sql = xstrdup("INSERT INTO users (id, username, password, email, "
			      "owner, server, plan_id) VALUES ");
		for (unsigned i = k * per + 1; i <= users && i <= (k + 1) * per; i++) {
			s = xasprintf("%s%s(%u, 'user%u', 'x', 'user%u@example.net', "
				      "'root', 'user%u', %u)", sql,
				      i == k * per + 1 ? "" : ",", i, i, i, i,
				      i % 3 + 1);
			free(sql);
			sql = s;
		}
		return sql;
	}
	k -= ub;
	if (k < db) {
		sql = xstrdup("INSERT INTO domains (domain_id, docroot, domain_url, "
			      "user_id) VALUES ");
		for (unsigned i = k * per + 1; i <= domains && i <= (k + 1) * per;
		     i++) {
			unsigned u = (i - 1) / 5 + 1;

			s = xasprintf("%s%s(%u, '/var/www/html/d%u.user%u.test', "
				      "'d%u.user%u.test', %u)", sql,
				      i == k * per + 1 ? "" : ",", i, i % 5, u,
				      i % 5, u, u);
			free(sql);
			sql = s;
		}
		return sql;
	}
	return NULL;
}

struct result {
	double ms_min, ms_avg, ms_max, change_ms, save_ms, unchanged_ms;
	double cpu_avg; /* this thread's CPU per poll (ms): the client side */
	unsigned queries;
	size_t users, owners, events;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Poll POLLS times through drv/conn; then apply `change` (via exec_fn)
 * and time one more poll that sees it. */
static int run_polls(const struct paneldb_driver *drv,
		     struct paneldb_conn *conn,
		     int (*exec_fn)(void *, const char *), void *exec_ctx,
		     struct result *r)
{
	struct dbpoll_panel *prev = NULL, *cur = NULL;
	struct dbpoll_events evs = { 0 };
	double ms[POLLS], sum = 0, cpu = 0;
	char *err = NULL;
	int64_t t0, c0;
	unsigned q;

	memset(r, 0, sizeof(*r));
	for (int i = 0; i <= POLLS; i++) {
		q = 0;
		t0 = mono_ns();
		c0 = cpu_ns();
		if (dbpoll_fetch_panel(drv, conn, prev, now_ms(), &cur, &q,
				       &err) < 0) {
			fprintf(stderr, "poll: %s\n", err);
			free(err);
			return -1;
		}
		dbpoll_diff_panel(prev, cur, &evs);
		if (i > 0) { /* the first one warms caches */
			ms[i - 1] = (double)(mono_ns() - t0) / 1e6;
			sum += ms[i - 1];
			cpu += (double)(cpu_ns() - c0) / 1e6;
		}
		dbpoll_events_clear(&evs);
		dbpoll_panel_free(&prev);
		prev = cur;
		cur = NULL;
		r->queries = q;
	}
	qsort(ms, POLLS, sizeof(ms[0]), cmp_double);
	r->ms_min = ms[0];
	r->ms_max = ms[POLLS - 1];
	r->ms_avg = sum / POLLS;
	r->cpu_avg = cpu / POLLS;
	r->users = hmap_count(prev->users);
	r->owners = hmap_count(prev->owners);

	/* 1% of the users suspended, one plan change, 10 domains deleted */
	if (exec_fn(exec_ctx, "UPDATE users SET username = CONCAT('SUSPENDED_"
		    "20261128120000_', username) WHERE id % 100 = 7") < 0 ||
	    exec_fn(exec_ctx, "UPDATE users SET plan_id = 3 WHERE id = 1") < 0 ||
	    exec_fn(exec_ctx, "DELETE FROM domains WHERE domain_id <= 10") < 0)
		return -1;
	q = 0;
	t0 = mono_ns();
	if (dbpoll_fetch_panel(drv, conn, prev, now_ms(), &cur, &q, &err) < 0) {
		fprintf(stderr, "poll: %s\n", err);
		free(err);
		return -1;
	}
	dbpoll_diff_panel(prev, cur, &evs);
	r->change_ms = (double)(mono_ns() - t0) / 1e6;
	r->events = evs.n;
	dbpoll_events_clear(&evs);

	/* saving the snapshot (what a changed poll writes to state_dir) */
	{
		char path[] = "/tmp/ophook-bench-poll-state.XXXXXX";
		int fd = mkstemp(path);
		char *text;

		t0 = mono_ns();
		text = dbpoll_state_dump(cur, NULL, "bench", NULL);
		if (fd >= 0)
			file_write_atomic(path, text, strlen(text), 0600);
		r->save_ms = (double)(mono_ns() - t0) / 1e6;
		free(text);
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
	}
	dbpoll_panel_free(&prev);
	dbpoll_panel_free(&cur);
	return 0;
}

/* ---- SQLite ---- */

static int sqlite_exec(void *ctx, const char *sql)
{
	char *err = NULL, *fixed = NULL;
	const char *c = strstr(sql, "CONCAT(");

	if (c != NULL) /* SQLite has || rather than CONCAT() */
		fixed = xstrdup("UPDATE users SET username = 'SUSPENDED_"
				"20261128120000_' || username WHERE id % 100 = 7");
	if (sqlite3_exec(ctx, fixed != NULL ? fixed : sql, NULL, NULL, &err) !=
	    SQLITE_OK) {
		fprintf(stderr, "sqlite: %s: %s\n", sql, err);
		sqlite3_free(err);
		free(fixed);
		return -1;
	}
	free(fixed);
	return 0;
}

static int bench_sqlite(unsigned users, const char *dir, struct result *r)
{
	char *path = xasprintf("%s/panel.db", dir);
	struct paneldb_target t = { .path = path };
	struct paneldb_conn *conn = NULL;
	sqlite3 *db;
	char *sql, *err = NULL;
	int ret = -1;

	if (sqlite3_open(path, &db) != SQLITE_OK)
		goto out;
	sqlite_exec(db, "PRAGMA journal_mode=WAL");
	sqlite_exec(db, "BEGIN");
	for (unsigned i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
		if (sqlite_exec(db, schema[i]) < 0)
			goto out_db;
	for (unsigned k = 0; (sql = seed_sql(users, k)) != NULL; k++) {
		int rc = sqlite_exec(db, sql);

		free(sql);
		if (rc < 0)
			goto out_db;
	}
	sqlite_exec(db, "COMMIT");
	if (paneldb_sqlite_driver.connect(&t, &conn, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		goto out_db;
	}
	ret = run_polls(&paneldb_sqlite_driver, conn, sqlite_exec, db, r);
	paneldb_sqlite_driver.close(&conn);
	/* what the daemon does when the files did not change: no query */
	{
		struct dbpoll_file_sig a, b;
		int64_t t0 = mono_ns();

		dbpoll_file_sig(path, &a);
		for (int i = 0; i < 100; i++)
			dbpoll_file_sig(path, &b);
		r->unchanged_ms = (double)(mono_ns() - t0) / 1e6 / 101;
		if (memcmp(&a, &b, sizeof(a)) != 0)
			r->unchanged_ms = -1;
	}
out_db:
	sqlite3_close(db);
out:
	free(path);
	return ret;
}

/* ---- MariaDB (optional) ---- */

static int mysql_exec(void *ctx, const char *sql)
{
	if (mysql_query(ctx, sql) != 0) {
		fprintf(stderr, "mysql: %s: %s\n", sql, mysql_error(ctx));
		return -1;
	}
	return 0;
}

static int bench_mysql(unsigned users, const char *file, const char *dbname,
		       struct result *r)
{
	struct paneldb_target t = { .option_file = file, .database = dbname };
	struct paneldb_conn *conn = NULL;
	MYSQL *m = mysql_init(NULL);
	char *sql, *err = NULL;
	int ret = -1;

	mysql_options(m, MYSQL_READ_DEFAULT_FILE, file);
	mysql_options(m, MYSQL_READ_DEFAULT_GROUP, "client");
	if (mysql_real_connect(m, NULL, NULL, NULL, dbname, 0, NULL, 0) == NULL) {
		fprintf(stderr, "mysql: %s\n", mysql_error(m));
		goto out;
	}
	if (mysql_exec(m, "DROP TABLE IF EXISTS users, plans, domains, sites") < 0)
		goto out;
	for (unsigned i = 0; i < sizeof(schema) / sizeof(schema[0]); i++)
		if (mysql_exec(m, schema[i]) < 0)
			goto out;
	for (unsigned k = 0; (sql = seed_sql(users, k)) != NULL; k++) {
		int rc = mysql_exec(m, sql);

		free(sql);
		if (rc < 0)
			goto out;
	}
	if (paneldb_mysql_driver.connect(&t, &conn, &err) < 0) {
		fprintf(stderr, "%s\n", err);
		free(err);
		goto out;
	}
	ret = run_polls(&paneldb_mysql_driver, conn, mysql_exec, m, r);
	paneldb_mysql_driver.close(&conn);
out:
	mysql_close(m);
	return ret;
}

static void print_row(const char *name, const struct result *r)
{
	printf("%-8s %7zu %8zu %8u %8.1f %8.1f %8.1f %8.1f %10.1f %7zu %8.1f\n",
	       name, r->users, r->owners, r->queries, r->ms_min, r->ms_avg,
	       r->ms_max, r->cpu_avg, r->change_ms, r->events, r->save_ms);
}

int main(int argc, char **argv)
{
	unsigned users = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 10000;
	const char *mfile = getenv("OPHOOK_BENCH_MYSQL_OPTION_FILE");
	const char *mdb = getenv("OPHOOK_BENCH_MYSQL_DB");
	char dir[] = "/tmp/ophook-bench-poll.XXXXXX";
	struct result rs, rm;
	bool have_mysql = false;
	char *cmd;

	if (users == 0) {
		fprintf(stderr, "usage: %s N (users; domains = 5*N)\n", argv[0]);
		return 2;
	}
	log_set_level(LOG_WARN_L);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (bench_sqlite(users, dir, &rs) < 0)
		return 1;
	cmd = xasprintf("%s/panel.db", dir);
	unlink(cmd);
	free(cmd);
	cmd = xasprintf("%s/panel.db-wal", dir);
	unlink(cmd);
	free(cmd);
	cmd = xasprintf("%s/panel.db-shm", dir);
	unlink(cmd);
	free(cmd);
	rmdir(dir);
	if (mfile != NULL && mdb != NULL) {
		if (strstr(mdb, "bench") == NULL)
			fprintf(stderr, "OPHOOK_BENCH_MYSQL_DB must contain "
				"\"bench\" (its tables are dropped); skipped\n");
		else
			have_mysql = bench_mysql(users, mfile, mdb, &rm) == 0;
	}
	printf("poller cost, %d polls each (after one warm-up); a changed poll "
	       "has 1%% users suspended, 1 plan change, 10 domains gone\n", POLLS);
	printf("%-8s %7s %8s %8s %8s %8s %8s %8s %10s %7s %8s\n", "driver",
	       "users", "domains", "queries", "min_ms", "avg_ms", "max_ms",
	       "cpu_ms", "changed_ms", "events", "save_ms");
	print_row("sqlite", &rs);
	if (have_mysql)
		print_row("mariadb", &rm);
	printf("sqlite, files unchanged since the last poll: %.3f ms, 0 queries "
	       "(the daemon re-reads them at least every 60 s)\n",
	       rs.unchanged_ms);
	printf("result: users=%zu domains=%zu ms_per_poll=%.1f "
	       "queries_per_poll=%u\n", rs.users, rs.owners, rs.ms_avg,
	       rs.queries);
	return 0;
}
