/* The panel database: one poll cycle at a time, chained on the loop:
 *
 *   timer -> work (worker thread: read OpenAdmin's users.db if it changed,
 *   run the three panel SELECTs, build snapshots, diff them against the
 *   committed ones) -> after (loop: submit the events) -> every event
 *   journaled -> commit (swap the snapshots in; the enricher reads them)
 *   -> work (worker: save them under state_dir) -> timer again.
 *
 * The committed snapshots change only on the loop thread between cycles,
 * so the worker may read them while a cycle runs.  A snapshot is committed
 * only once its events are in the journal: a lost server or a crash makes
 * the next diff start from what was last committed (nothing lost; nothing
 * emitted twice unless the daemon dies between journaling and saving). */
#define _GNU_SOURCE
#include "paneldb.h"
#include "dbpoll.h"
#include "engine.h"
#include "entity.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#define PANELDB_WHO "paneldb"
#define PANELDB_STATE_FILE "paneldb.json"
#define PANELDB_STATE_MAX (512u * 1024 * 1024)
#define PANELDB_BACKOFF_MAX_MS 15000u
/* Unchanged SQLite files are not read again for this long. */
#define PANELDB_REREAD_MS 60000
/* user-UID.slice.d drop-ins: at most this many files a folder, this big */
#define PANELDB_SLICE_FILES 64
#define PANELDB_SLICE_FILE_MAX 65536

struct paneldb_job;

struct paneldb {
	struct engine *e;
	struct entity *ent; /* user and domain events merge there (or NULL) */
	bool kick_pending;  /* poll again as soon as this cycle ends */
	uv_loop_t *loop;
	atomic_int refs;
	bool stopping, busy;

	const struct paneldb_driver *drv;
	struct paneldb_target target;
	char *path, *option_file, *database, *admin_db, *state_file;
	char *systemd_dir, *home_dir; /* slice drop-ins; uid -> user */
	unsigned poll_ms;

	pthread_mutex_t conn_lock;
	struct paneldb_conn *conn; /* guarded by conn_lock */

	uv_timer_t timer;
	bool timer_init;
	uv_work_t work;
	struct paneldb_job *job;

	/* Committed state (loop thread writes between cycles). */
	struct dbpoll_panel *panel;
	struct dbpoll_admins *admins;
	struct dbpoll_file_sig admin_sig;
	int64_t admin_read_ms;
	struct dbpoll_file_sig panel_sig; /* SQLite panel DB */
	int64_t panel_read_ms;

	/* Health (loop thread). */
	bool lost, admin_warned;
	unsigned failures;
	int64_t lost_since_ms;
	uint64_t polls, queries, events;
	int64_t kick_ms; /* last poll started early by an unknown domain */

	/* who wants the contexts, and the set last told */
	paneldb_contexts_fn *ctx_fn;
	void *ctx_arg;
	char **ctx_told;
	size_t n_ctx_told;
};

struct paneldb_job {
	struct paneldb *p;
	int64_t now_ms;
	int64_t mono_start_ms; /* when the poll started (mono) */
	bool submitting;       /* back on the loop: panel readable there */
	unsigned queries;
	/* panel part */
	bool panel_read, panel_dirty, panel_failed, panel_skipped;
	struct dbpoll_file_sig panel_sig;
	int panel_ret;
	char *panel_err;
	struct dbpoll_panel *panel;
	/* admin part */
	bool admin_read, admin_dirty, admin_failed, admin_missing;
	char *admin_err;
	struct dbpoll_admins *admins;
	struct dbpoll_file_sig admin_sig;
	/* the slices' drop-ins, read this poll */
	struct paneldb_slices *slices;
	/* events and their journaling */
	struct dbpoll_events events;
	size_t pending;
	/* persistence */
	bool persist;
	int persist_ret;
};

static void paneldb_unref(struct paneldb *p);
static void paneldb_schedule(struct paneldb *p);
static void paneldb_timer_cb(uv_timer_t *t);

/* ---- read-only SQL check ---- */

static const char *paneldb_skip_space(const char *s)
{
	for (;;) {
		while (isspace((unsigned char)*s))
			s++;
		if (s[0] == '-' && s[1] == '-') {
			while (*s != '\0' && *s != '\n')
				s++;
		} else if (s[0] == '/' && s[1] == '*') {
			const char *e = strstr(s + 2, "*/");

			s = e != NULL ? e + 2 : s + strlen(s);
		} else if (s[0] == '#') {
			while (*s != '\0' && *s != '\n')
				s++;
		} else {
			return s;
		}
	}
}

static bool paneldb_word_is(const char *w, size_t len, const char *kw)
{
	return strlen(kw) == len && strncasecmp(w, kw, len) == 0;
}

bool paneldb_sql_readonly(const char *sql, const char **why_r)
{
	static const char *const banned[] = { "INTO", "UPDATE", "LOCK",
		"GET_LOCK", "LOAD_FILE", "LOAD_EXTENSION", "DELETE", "INSERT",
		"REPLACE", "DROP", "ALTER", "CREATE", "ATTACH", "PRAGMA" };
	const char *s = paneldb_skip_space(sql), *prev_word = NULL;
	size_t prev_len = 0;

	if (strncasecmp(s, "SELECT", 6) != 0 ||
	    (isalnum((unsigned char)s[6]) || s[6] == '_')) {
		*why_r = "only SELECT statements are allowed";
		return false;
	}
	while (*s != '\0') {
		if (*s == '\'' || *s == '"' || *s == '`') {
			char q = *s++;

			while (*s != '\0' && *s != q) {
				if (*s == '\\' && s[1] != '\0')
					s++;
				s++;
			}
			if (*s == '\0') {
				*why_r = "unterminated quoted string";
				return false;
			}
			s++;
		} else if ((s[0] == '-' && s[1] == '-') || *s == '#' ||
			   (s[0] == '/' && s[1] == '*')) {
			s = paneldb_skip_space(s);
		} else if (*s == ';') {
			if (*paneldb_skip_space(s + 1) != '\0') {
				*why_r = "only one statement is allowed";
				return false;
			}
			s++;
		} else if (isalpha((unsigned char)*s) || *s == '_') {
			const char *w = s;
			size_t len;

			while (isalnum((unsigned char)*s) || *s == '_' || *s == '$')
				s++;
			len = (size_t)(s - w);
			for (size_t i = 0; i < sizeof(banned) / sizeof(*banned); i++) {
				if (paneldb_word_is(w, len, banned[i])) {
					*why_r = "the query may only read (INTO, "
						 "locking and writing are refused)";
					return false;
				}
			}
			if (paneldb_word_is(w, len, "SHARE") && prev_word != NULL &&
			    paneldb_word_is(prev_word, prev_len, "FOR")) {
				*why_r = "locking reads are refused";
				return false;
			}
			prev_word = w;
			prev_len = len;
		} else {
			s++;
		}
	}
	return true;
}

const struct paneldb_driver *paneldb_driver_find(const char *name)
{
	if (name == NULL || strcmp(name, "sqlite") == 0)
		return &paneldb_sqlite_driver;
	if (strcmp(name, "mysql") == 0 || strcmp(name, "mariadb") == 0)
		return &paneldb_mysql_driver;
	return NULL;
}

/* ---- the connection (any thread, under conn_lock) ---- */

/* Run fn with a connection, reconnecting once when a reused connection
 * turns out to be gone (server restart, wait_timeout). */
typedef int paneldb_conn_fn(struct paneldb *p, struct paneldb_conn *c,
			    void *ctx, char **error_r);

static int paneldb_with_conn(struct paneldb *p, paneldb_conn_fn *fn,
			     void *ctx, char **error_r)
{
	int ret;

	pthread_mutex_lock(&p->conn_lock);
	for (int attempt = 0;; attempt++) {
		bool fresh = p->conn == NULL;

		if (fresh) {
			ret = p->drv->connect(&p->target, &p->conn, error_r);
			if (ret < 0)
				break;
		}
		ret = fn(p, p->conn, ctx, error_r);
		if (ret == -EPIPE || (ret < 0 && p->drv->per_poll))
			p->drv->close(&p->conn);
		if (ret != -EPIPE || fresh || attempt > 0)
			break;
		free(*error_r);
		*error_r = NULL;
	}
	if (p->drv->per_poll)
		p->drv->close(&p->conn);
	pthread_mutex_unlock(&p->conn_lock);
	return ret;
}

/* ---- paneldb_query ---- */

struct paneldb_query_ctx {
	const char *sql;
	json_t *params, *rows, *cols;
};

static int paneldb_query_fn(struct paneldb *p, struct paneldb_conn *c,
			    void *ctx, char **error_r)
{
	struct paneldb_query_ctx *q = ctx;

	return p->drv->query(c, q->sql, q->params, &q->rows, &q->cols, error_r);
}

int paneldb_query(struct paneldb *p, const char *sql, json_t *params,
		  json_t **rows_r, char **error_r)
{
	struct paneldb_query_ctx q = { sql, params, NULL, NULL };
	const char *why;
	json_t *row, *out;
	size_t i;
	int ret;

	*rows_r = NULL;
	*error_r = NULL;
	if (p == NULL) {
		*error_r = xstrdup("the panel DB is not started");
		return -ENOTCONN;
	}
	if (sql == NULL || !paneldb_sql_readonly(sql, &why)) {
		*error_r = xasprintf("refused query: %s",
				     sql == NULL ? "no SQL" : why);
		return -EPERM;
	}
	if (params != NULL && !json_is_array(params)) {
		*error_r = xstrdup("query parameters must be an array");
		return -EINVAL;
	}
	ret = paneldb_with_conn(p, paneldb_query_fn, &q, error_r);
	if (ret < 0)
		return ret;
	out = json_array();
	json_array_foreach(q.rows, i, row) {
		json_t *obj = json_object(), *v;
		size_t j;

		json_array_foreach(row, j, v) {
			const char *name = json_string_value(
				json_array_get(q.cols, j));

			json_object_set(obj, name != NULL ? name : "?", v);
		}
		json_array_append_new(out, obj);
	}
	json_decref(q.rows);
	json_decref(q.cols);
	*rows_r = out;
	return 0;
}

/* ---- user-UID.slice drop-ins (worker thread) ----
 *
 * opencli plan-apply writes system/user-UID.slice.d/override.conf and
 * `systemctl set-property user-UID.slice CPUQuota=...` (user-change_plan,
 * plan-apply) writes system.control/user-UID.slice.d/50-CPUQuota.conf.
 * The files are root's, but read as hostile anyway: no symlink followed,
 * regular files only, bounded in number and size. */

struct paneldb_slice_file {
	char name[NAME_MAX + 1];
	int prio; /* system.control overrides system for a file name */
	char *text;
	size_t len;
};

struct paneldb_slice_uid {
	int64_t uid;
	struct paneldb_slice_file *f;
	size_t n, cap;
};

struct paneldb_slices {
	struct hmap *by_uid; /* "<uid>" -> struct paneldb_slice_uid */
	bool read;           /* the folder exists */
};

static void paneldb_slice_uid_free(void *v)
{
	struct paneldb_slice_uid *su = v;

	for (size_t i = 0; i < su->n; i++)
		free(su->f[i].text);
	free(su->f);
	free(su);
}

static void paneldb_slices_free(struct paneldb_slices **sp)
{
	if (*sp == NULL)
		return;
	hmap_free(&(*sp)->by_uid, paneldb_slice_uid_free);
	free(*sp);
	*sp = NULL;
}

/* "user-1002.slice.d" -> 1002; -1 for anything else */
static int64_t paneldb_slice_dir_uid(const char *name)
{
	const char *p = name + 5;
	int64_t uid = 0;

	if (strncmp(name, "user-", 5) != 0 || !isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		uid = uid * 10 + (*p - '0');
		if (uid > UINT32_MAX)
			return -1;
	}
	return strcmp(p, ".slice.d") == 0 ? uid : -1;
}

static void paneldb_slice_read_dir(int dfd, int prio,
				   struct paneldb_slice_uid *su)
{
	DIR *d = fdopendir(dfd);
	struct dirent *de;

	if (d == NULL) {
		close(dfd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t nl = strlen(de->d_name);
		struct paneldb_slice_file *f;
		struct stat st;
		ssize_t got;
		int fd;

		if (nl < 6 || strcmp(de->d_name + nl - 5, ".conf") != 0 ||
		    de->d_name[0] == '.' || su->n >= 2 * PANELDB_SLICE_FILES)
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW |
			    O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
		    st.st_size > PANELDB_SLICE_FILE_MAX) {
			close(fd);
			continue;
		}
		if (su->n == su->cap) {
			su->cap = su->cap ? su->cap * 2 : 4;
			su->f = xrealloc(su->f, su->cap * sizeof(*su->f));
		}
		f = &su->f[su->n];
		snprintf(f->name, sizeof(f->name), "%s", de->d_name);
		f->prio = prio;
		f->text = xmalloc(PANELDB_SLICE_FILE_MAX + 1);
		got = read(fd, f->text, PANELDB_SLICE_FILE_MAX);
		close(fd);
		if (got < 0) {
			free(f->text);
			continue;
		}
		f->len = (size_t)got;
		su->n++;
	}
	closedir(d);
}

static void paneldb_slices_read_tree(struct paneldb_slices *sl,
				     const char *dir, int prio)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	sl->read = true;
	while ((de = readdir(d)) != NULL) {
		int64_t uid = paneldb_slice_dir_uid(de->d_name);
		struct paneldb_slice_uid *su;
		char key[32];
		int sfd;

		if (uid < 0)
			continue;
		sfd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY |
			     O_NOFOLLOW | O_CLOEXEC);
		if (sfd < 0)
			continue;
		snprintf(key, sizeof(key), "%" PRId64, uid);
		su = hmap_get(sl->by_uid, key);
		if (su == NULL) {
			su = xcalloc(1, sizeof(*su));
			su->uid = uid;
			hmap_put(sl->by_uid, key, su);
		}
		paneldb_slice_read_dir(sfd, prio, su);
	}
	closedir(d);
}

/* Read every user-UID.slice.d under systemd_dir (NULL when the folders
 * do not exist: the slices are then not part of the snapshot). */
static struct paneldb_slices *paneldb_slices_read(const char *systemd_dir)
{
	struct paneldb_slices *sl;
	char *dir;

	if (systemd_dir == NULL || systemd_dir[0] == '\0')
		return NULL;
	sl = xcalloc(1, sizeof(*sl));
	sl->by_uid = hmap_new();
	dir = xasprintf("%s/system", systemd_dir);
	paneldb_slices_read_tree(sl, dir, 0);
	free(dir);
	dir = xasprintf("%s/system.control", systemd_dir);
	paneldb_slices_read_tree(sl, dir, 1);
	free(dir);
	if (!sl->read)
		paneldb_slices_free(&sl);
	return sl;
}

static int paneldb_slice_file_cmp(const void *a, const void *b)
{
	const struct paneldb_slice_file *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c != 0 ? c : y->prio - x->prio; /* higher priority first */
}

/* The effective values: drop-ins in file name order, a name in
 * system.control hiding the same name in system. */
static void paneldb_slice_values(struct paneldb_slice_uid *su,
				 char *v[DBPOLL_N_SLICE])
{
	for (unsigned k = 0; k < DBPOLL_N_SLICE; k++)
		v[k] = NULL;
	qsort(su->f, su->n, sizeof(*su->f), paneldb_slice_file_cmp);
	for (size_t i = 0; i < su->n; i++) {
		if (i > 0 && strcmp(su->f[i].name, su->f[i - 1].name) == 0)
			continue;
		dbpoll_slice_parse(su->f[i].text, su->f[i].len, v);
	}
}

struct paneldb_slice_add {
	struct dbpoll_panel *panel;
	const struct dbpoll_panel *prev;
	const char *home_dir;
	struct hmap *uid_user; /* "<uid>" -> user name, built when needed */
};

static bool paneldb_uid_user_one(const char *key, void *value, void *ctx)
{
	const struct dbpoll_user *u = value;
	struct paneldb_slice_add *sa = ctx;
	const char *c = u->context != NULL ? u->context : u->name, *why;
	char id[32];
	struct stat st;
	char *path;

	(void)key;
	if (!name_valid_user(c, &why))
		return true;
	path = xasprintf("%s/%s", sa->home_dir, c);
	if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(id, sizeof(id), "%u", (unsigned)st.st_uid);
		hmap_put(sa->uid_user, id, u->name);
	}
	free(path);
	return true;
}

/* The user whose home (home_dir/<ctx>) that uid owns, as plan-apply maps
 * them: from prev when it knew the slice, else by stat of the homes. */
static const char *paneldb_slice_user(struct paneldb_slice_add *sa,
				      const char *key)
{
	const struct dbpoll_slice *ps = NULL;

	if (sa->prev != NULL && sa->prev->slices != NULL)
		ps = hmap_get(sa->prev->slices, key);
	if (ps != NULL && ps->user != NULL &&
	    hmap_get(sa->panel->by_name, ps->user) != NULL)
		return ps->user;
	if (sa->home_dir == NULL)
		return NULL;
	if (sa->uid_user == NULL) {
		sa->uid_user = hmap_new();
		hmap_each(sa->panel->users, paneldb_uid_user_one, sa);
	}
	return hmap_get(sa->uid_user, key);
}

static bool paneldb_slice_add_one(const char *key, void *value, void *ctx)
{
	struct paneldb_slice_add *sa = ctx;
	char *v[DBPOLL_N_SLICE];

	paneldb_slice_values(value, v);
	dbpoll_panel_add_slice(sa->panel, ((struct paneldb_slice_uid *)value)->uid,
			       paneldb_slice_user(sa, key), v);
	for (unsigned k = 0; k < DBPOLL_N_SLICE; k++)
		free(v[k]);
	return true;
}

static void paneldb_slices_apply(struct paneldb *p, struct paneldb_job *job)
{
	struct paneldb_slice_add sa = { job->panel, p->panel, p->home_dir,
					NULL };

	if (job->slices == NULL)
		return;
	dbpoll_panel_slices_begin(job->panel);
	hmap_each(job->slices->by_uid, paneldb_slice_add_one, &sa);
	if (sa.uid_user != NULL)
		hmap_free(&sa.uid_user, NULL);
}

struct paneldb_slice_cmp {
	const struct dbpoll_panel *prev;
	bool differs;
};

static bool paneldb_slice_cmp_one(const char *key, void *value, void *ctx)
{
	struct paneldb_slice_cmp *sc = ctx;
	const struct dbpoll_slice *ps = hmap_get(sc->prev->slices, key);
	char *v[DBPOLL_N_SLICE];

	if (ps == NULL) {
		sc->differs = true;
		return false;
	}
	paneldb_slice_values(value, v);
	for (unsigned k = 0; k < DBPOLL_N_SLICE; k++) {
		if ((v[k] == NULL) != (ps->v[k] == NULL) ||
		    (v[k] != NULL && strcmp(v[k], ps->v[k]) != 0))
			sc->differs = true;
		free(v[k]);
	}
	return !sc->differs;
}

/* Whether the drop-ins read differ from the committed snapshot's. */
static bool paneldb_slices_differ(const struct paneldb_slices *sl,
				  const struct dbpoll_panel *prev)
{
	struct paneldb_slice_cmp sc = { prev, false };

	if (prev == NULL)
		return true;
	if ((sl == NULL) != (prev->slices == NULL))
		return true;
	if (sl == NULL)
		return false;
	if (hmap_count(sl->by_uid) != hmap_count(prev->slices))
		return true;
	hmap_each(sl->by_uid, paneldb_slice_cmp_one, &sc);
	return sc.differs;
}

/* ---- the vhost of a PHP change (worker thread) ----
 *
 * The Go panel (and opencli php-domain) rewrite the domain's vhost in the
 * user's webserver volume, php-fpm-OLD -> php-fpm-NEW, then update
 * domains.php_version.  The row is the event; the vhost is read to say
 * which version it names now (vhost_php_version), so both observations
 * make ONE domain.php_changed.  The volume is the customer's: each folder
 * is opened without following a symlink, the file is bounded. */
#define PANELDB_VHOST_MAX (1024u * 1024)

static void paneldb_vhost_php(const char *home_dir, json_t *ev)
{
	const char *ctx = json_string_value(json_object_get(ev, "context"));
	const char *domain = json_string_value(json_object_get(ev, "domain"));
	const char *why, *at;
	char *rel, *name, *data = NULL;
	size_t len = 0, n;
	int fd, ret;

	if (home_dir == NULL || ctx == NULL || domain == NULL ||
	    !name_valid_user(ctx, &why) || !name_valid_domain(domain, &why))
		return;
	rel = xasprintf("%s/docker-data/volumes/%s_webserver_data/_data", ctx,
			ctx);
	ret = ophook_dir_open_under(home_dir, rel, 0, 0, &fd, NULL);
	free(rel);
	if (ret < 0)
		return;
	name = xasprintf("%s.conf", domain);
	ret = ophook_file_read_at(fd, name, PANELDB_VHOST_MAX, &data, &len);
	free(name);
	close(fd);
	if (ret < 0)
		return;
	at = memmem(data, len, "php-fpm-", 8);
	if (at != NULL) {
		at += 8;
		for (n = 0; at + n < data + len && n < 16 &&
		     (isdigit((unsigned char)at[n]) || at[n] == '.'); n++)
			;
		if (n > 0) {
			char *v = xstrndup(at, n);

			json_object_set_new(ev, "vhost_php_version",
					    json_string(v));
			free(v);
		}
	}
	free(data);
}

static void paneldb_vhosts(struct paneldb *p, struct paneldb_job *job)
{
	for (size_t i = 0; i < job->events.n; i++)
		if (strcmp(job->events.v[i].type, "domain.php_changed") == 0)
			paneldb_vhost_php(p->home_dir, job->events.v[i].payload);
}

/* ---- the poll (worker thread) ---- */

static void paneldb_poll_admins(struct paneldb_job *job)
{
	struct paneldb *p = job->p;
	struct paneldb_target t = { .path = p->admin_db };
	struct paneldb_conn *c = NULL;
	int ret;

	if (p->admin_db == NULL || p->admin_db[0] == '\0')
		return;
	if (!dbpoll_file_sig(p->admin_db, &job->admin_sig)) {
		job->admin_missing = true;
		return;
	}
	if (p->admins != NULL &&
	    memcmp(&job->admin_sig, &p->admin_sig, sizeof(job->admin_sig)) == 0 &&
	    job->now_ms - p->admin_read_ms < PANELDB_REREAD_MS)
		return; /* unchanged */
	ret = paneldb_sqlite_driver.connect(&t, &c, &job->admin_err);
	if (ret == 0) {
		ret = dbpoll_fetch_admins(&paneldb_sqlite_driver, c,
					  &job->admins, &job->admin_err);
		paneldb_sqlite_driver.close(&c);
	}
	if (ret < 0)
		return;
	job->admin_read = true;
	job->admin_dirty = dbpoll_diff_admins(p->admins, job->admins,
					      &job->events);
}

static int paneldb_poll_fn(struct paneldb *p, struct paneldb_conn *c,
			   void *ctx, char **error_r)
{
	struct paneldb_job *job = ctx;

	int ret;

	dbpoll_panel_free(&job->panel);
	ret = dbpoll_fetch_panel(p->drv, c, p->panel, job->now_ms, &job->panel,
				 &job->queries, error_r);
	if (ret == 0)
		paneldb_slices_apply(p, job);
	return ret;
}

static void paneldb_poll_work(uv_work_t *req)
{
	struct paneldb_job *job = req->data;
	struct paneldb *p = job->p;

	paneldb_poll_admins(job);
	job->slices = paneldb_slices_read(p->systemd_dir);
	if (p->drv == &paneldb_sqlite_driver && p->path != NULL &&
	    dbpoll_file_sig(p->path, &job->panel_sig) && p->panel != NULL &&
	    !paneldb_slices_differ(job->slices, p->panel) &&
	    memcmp(&job->panel_sig, &p->panel_sig, sizeof(job->panel_sig)) == 0 &&
	    job->now_ms - p->panel_read_ms < PANELDB_REREAD_MS) {
		job->panel_skipped = true; /* no commit since the last read */
		return;
	}
	job->panel_ret = paneldb_with_conn(p, paneldb_poll_fn, job,
					   &job->panel_err);
	if (job->panel_ret < 0)
		return;
	job->panel_read = true;
	job->panel_dirty = dbpoll_diff_panel(p->panel, job->panel,
					     &job->events);
	paneldb_vhosts(p, job);
}

/* ---- the cycle (loop thread) ---- */

static void paneldb_job_free(struct paneldb_job **jobp)
{
	struct paneldb_job *job = *jobp;

	if (job == NULL)
		return;
	dbpoll_panel_free(&job->panel);
	dbpoll_admins_free(&job->admins);
	paneldb_slices_free(&job->slices);
	dbpoll_events_clear(&job->events);
	free(job->panel_err);
	free(job->admin_err);
	free(job);
	*jobp = NULL;
}

/* Which database a saved snapshot came from: a snapshot of another one
 * (the config changed) is no base for a diff. */
static char *paneldb_panel_source(const struct paneldb *p)
{
	if (p->drv == &paneldb_mysql_driver)
		return xasprintf("mysql:%s:%s", p->option_file ? p->option_file : "",
				 p->database ? p->database : "");
	return xasprintf("sqlite:%s", p->path ? p->path : "");
}

static int paneldb_save(struct paneldb *p)
{
	char *src = paneldb_panel_source(p), *text;
	int ret;

	text = dbpoll_state_dump(p->panel, p->admins, src,
				 p->admin_db ? p->admin_db : "");
	free(src);
	if (text == NULL)
		return -ENOMEM;
	ret = file_write_atomic(p->state_file, text, strlen(text), 0600);
	free(text);
	return ret;
}

static void paneldb_persist_work(uv_work_t *req)
{
	struct paneldb_job *job = req->data;

	job->persist_ret = paneldb_save(job->p);
}

static void paneldb_cycle_done(struct paneldb *p)
{
	paneldb_job_free(&p->job);
	p->busy = false;
	if (p->stopping) {
		paneldb_unref(p);
		return;
	}
	paneldb_schedule(p);
	if (p->kick_pending && !p->lost) {
		p->kick_pending = false;
		uv_timer_start(&p->timer, paneldb_timer_cb, 0, 0);
	}
	paneldb_unref(p);
}

static void paneldb_persist_after(uv_work_t *req, int status)
{
	struct paneldb_job *job = req->data;
	struct paneldb *p = job->p;

	if (status == 0 && job->persist_ret < 0)
		log_msg(LOG_ERROR_L, PANELDB_WHO, "%s: cannot save: %s",
			p->state_file, strerror(-job->persist_ret));
	paneldb_cycle_done(p);
}

struct paneldb_ctx_list {
	char **v; /* not owned: the snapshot's strings */
	size_t n;
};

static bool paneldb_collect_ctx(const char *key, void *value, void *ctx)
{
	const struct dbpoll_user *u = value;
	struct paneldb_ctx_list *acc = ctx;

	(void)key;
	if (u->context != NULL && u->context[0] != '\0') {
		acc->v = xrealloc(acc->v, (acc->n + 1) * sizeof(*acc->v));
		acc->v[acc->n++] = u->context;
	}
	return true;
}

static int paneldb_cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Tell the contexts of the committed snapshot when they changed (always
 * when force). */
static void paneldb_tell_contexts(struct paneldb *p, bool force)
{
	struct paneldb_ctx_list acc = { NULL, 0 };
	size_t k = 0;
	bool same;

	if (p->ctx_fn == NULL || p->panel == NULL)
		return;
	hmap_each(p->panel->users, paneldb_collect_ctx, &acc);
	if (acc.n > 0)
		qsort(acc.v, acc.n, sizeof(*acc.v), paneldb_cmp_str);
	for (size_t i = 0; i < acc.n; i++) /* once each */
		if (k == 0 || strcmp(acc.v[k - 1], acc.v[i]) != 0)
			acc.v[k++] = acc.v[i];
	same = k == p->n_ctx_told;
	for (size_t i = 0; same && i < k; i++)
		same = strcmp(acc.v[i], p->ctx_told[i]) == 0;
	if (!same) {
		for (size_t i = 0; i < p->n_ctx_told; i++)
			free(p->ctx_told[i]);
		free(p->ctx_told);
		p->ctx_told = xcalloc(k + 1, sizeof(*p->ctx_told));
		for (size_t i = 0; i < k; i++)
			p->ctx_told[i] = xstrdup(acc.v[i]);
		p->n_ctx_told = k;
	}
	if (!same || force)
		p->ctx_fn((const char *const *)p->ctx_told, p->n_ctx_told,
			  p->ctx_arg);
	free(acc.v);
}

void paneldb_on_contexts(struct paneldb *p, paneldb_contexts_fn *fn,
			 void *ctx)
{
	if (p == NULL)
		return;
	p->ctx_fn = fn;
	p->ctx_arg = ctx;
	paneldb_tell_contexts(p, true);
}

/* Every event of the cycle is journaled (or failed): commit. */
static void paneldb_commit(struct paneldb_job *job)
{
	struct paneldb *p = job->p;
	int ret;

	if (job->panel_read) {
		if (job->panel_failed) {
			job->panel_dirty = false;
		} else {
			dbpoll_panel_free(&p->panel);
			p->panel = job->panel;
			job->panel = NULL;
			p->panel_sig = job->panel_sig;
			p->panel_read_ms = job->now_ms;
			paneldb_tell_contexts(p, false);
		}
		entity_db_polled(p->ent, job->mono_start_ms);
	}
	if (job->admin_read) {
		if (job->admin_failed) {
			job->admin_dirty = false;
		} else {
			dbpoll_admins_free(&p->admins);
			p->admins = job->admins;
			job->admins = NULL;
			p->admin_sig = job->admin_sig;
			p->admin_read_ms = job->now_ms;
		}
	}
	if (!job->panel_dirty && !job->admin_dirty) {
		paneldb_cycle_done(p);
		return;
	}
	if (p->stopping) {
		/* Shutting down: save now, on this thread. */
		ret = paneldb_save(p);
		if (ret < 0)
			log_msg(LOG_ERROR_L, PANELDB_WHO, "%s: cannot save: %s",
				p->state_file, strerror(-ret));
		paneldb_cycle_done(p);
		return;
	}
	p->work.data = job;
	ret = uv_queue_work(p->loop, &p->work, paneldb_persist_work,
			    paneldb_persist_after);
	if (ret < 0) {
		log_msg(LOG_ERROR_L, PANELDB_WHO, "cannot queue work: %s",
			uv_strerror(ret));
		paneldb_cycle_done(p);
	}
}

struct paneldb_submit {
	struct paneldb_job *job;
	bool admin;
};

static void paneldb_event_done(struct paneldb_job *job, bool admin, bool ok)
{
	if (!ok) {
		if (admin)
			job->admin_failed = true;
		else
			job->panel_failed = true;
	}
	if (--job->pending == 0)
		paneldb_commit(job);
}

static void paneldb_submitted(bool ok, const char *error, void *ctx)
{
	struct paneldb_submit *s = ctx;
	struct paneldb_job *job = s->job;
	bool admin = s->admin;

	free(s);
	if (!ok)
		log_msg(LOG_ERROR_L, PANELDB_WHO,
			"event not journaled (will retry at the next poll): %s",
			error != NULL ? error : "unknown error");
	paneldb_event_done(job, admin, ok);
}

static void paneldb_health(struct paneldb *p, struct paneldb_job *job)
{
	if (job->panel_ret < 0) {
		p->failures++;
		if (!p->lost) {
			p->lost = true;
			p->lost_since_ms = job->now_ms;
			log_msg(LOG_WARN_L, PANELDB_WHO,
				"panel DB lost: %s; retrying with backoff",
				job->panel_err != NULL ? job->panel_err :
				strerror(-job->panel_ret));
		} else {
			log_msg(LOG_DEBUG_L, PANELDB_WHO,
				"panel DB still unavailable: %s",
				job->panel_err != NULL ? job->panel_err : "?");
		}
	} else if (p->lost) {
		log_msg(LOG_INFO_L, PANELDB_WHO,
			"panel DB back after %.1f s (%u failed attempts)",
			(double)(job->now_ms - p->lost_since_ms) / 1000.0,
			p->failures);
		p->lost = false;
		p->failures = 0;
	}
	if (job->panel_read && job->panel->bad_rows > 0 &&
	    (p->panel == NULL || p->panel->bad_rows != job->panel->bad_rows))
		log_msg(LOG_WARN_L, PANELDB_WHO,
			"panel DB: %u rows skipped (invalid user or domain "
			"names, duplicate ids)", job->panel->bad_rows);
	if (job->admin_err != NULL && !p->admin_warned) {
		p->admin_warned = true;
		log_msg(LOG_WARN_L, PANELDB_WHO,
			"admin DB: %s (admin.* events paused; retrying)",
			job->admin_err);
	} else if (job->admin_read && p->admin_warned) {
		p->admin_warned = false;
		log_msg(LOG_INFO_L, PANELDB_WHO, "admin DB %s readable again",
			p->admin_db);
	}
}

static void paneldb_poll_after(uv_work_t *req, int status)
{
	struct paneldb_job *job = req->data;
	struct paneldb *p = job->p;
	size_t n = job->events.n;

	if (status != 0 || p->stopping) {
		paneldb_cycle_done(p);
		return;
	}
	p->polls++;
	p->queries += job->queries;
	job->submitting = true;
	paneldb_health(p, job);
	if (n > 0)
		log_msg(LOG_DEBUG_L, PANELDB_WHO, "poll: %zu events", n);
	job->pending = n + 1; /* +1: callbacks may run inside submit */
	for (size_t i = 0; i < n; i++) {
		struct dbpoll_event *ev = &job->events.v[i];
		struct paneldb_submit *s = xmalloc(sizeof(*s));
		const char *error = NULL;
		json_t *payload = ev->payload;
		int ret;

		s->job = job;
		s->admin = strncmp(ev->type, "admin.", 6) == 0;
		ev->payload = NULL;
		p->events++;
		ret = entity_submit(p->ent, p->e, ev->type, ev->subject, "db",
				    payload, paneldb_submitted, s, &error);
		if (ret < 0) {
			/* Refused for good (a bad name): do not block the
			 * snapshot on it forever. */
			log_msg(LOG_ERROR_L, PANELDB_WHO, "%s %s refused: %s",
				ev->type, ev->subject,
				error != NULL ? error : strerror(-ret));
			free(s);
			job->pending--;
		}
	}
	paneldb_event_done(job, false, true);
}

static void paneldb_timer_cb(uv_timer_t *t)
{
	struct paneldb *p = t->data;
	struct paneldb_job *job;
	int ret;

	if (p->busy || p->stopping)
		return;
	job = xcalloc(1, sizeof(*job));
	job->p = p;
	job->now_ms = now_ms();
	job->mono_start_ms = mono_ms();
	p->job = job;
	p->work.data = job;
	ret = uv_queue_work(p->loop, &p->work, paneldb_poll_work,
			    paneldb_poll_after);
	if (ret < 0) {
		log_msg(LOG_ERROR_L, PANELDB_WHO, "cannot queue work: %s",
			uv_strerror(ret));
		paneldb_job_free(&p->job);
		paneldb_schedule(p);
		return;
	}
	p->busy = true;
	atomic_fetch_add(&p->refs, 1);
}

static void paneldb_schedule(struct paneldb *p)
{
	uint64_t delay = p->poll_ms;

	if (p->stopping || !p->timer_init)
		return;
	if (p->lost) {
		unsigned shift = p->failures < 16 ? p->failures : 16;
		uint64_t cap = p->poll_ms > PANELDB_BACKOFF_MAX_MS ?
			       p->poll_ms : PANELDB_BACKOFF_MAX_MS;

		delay = (uint64_t)p->poll_ms << shift;
		if (delay > cap)
			delay = cap;
	}
	uv_timer_start(&p->timer, paneldb_timer_cb, delay, 0);
}

/* ---- enrichment (loop thread) ---- */

static void paneldb_enrich(json_t *payload, const char *type,
			   const char *subject, void *ctx)
{
	struct paneldb *p = ctx;
	const char *domain, *why;
	int64_t now;

	dbpoll_enrich(p->panel, payload, type, subject);
	if (strncmp(type, "domain.", 7) != 0 || p->busy || p->stopping ||
	    !p->timer_init || p->lost)
		return;
	domain = json_string_value(json_object_get(payload, "domain"));
	if (domain == NULL)
		domain = subject;
	if (json_object_get(payload, "user") != NULL ||
	    !name_valid_domain(domain, &why))
		return;
	/* A domain the map does not know yet (its row came after the last
	 * poll): poll now, so the events that follow carry the owner. */
	now = mono_ms();
	if (now - p->kick_ms < 1000)
		return;
	p->kick_ms = now;
	uv_timer_start(&p->timer, paneldb_timer_cb, 0, 0);
}

/* ---- what the entity merger asks (loop thread) ---- */

/* The newest panel snapshot: the one of the poll being committed, whose
 * events are being submitted, else the committed one. */
static const struct dbpoll_panel *paneldb_newest(const struct paneldb *p)
{
	const struct paneldb_job *job = p->job;

	if (job != NULL && job->submitting && job->panel_read &&
	    !job->panel_failed && job->panel != NULL)
		return job->panel;
	return p->panel;
}

static bool paneldb_ent_active(void *ctx)
{
	struct paneldb *p = ctx;

	return p->panel != NULL && !p->lost && !p->stopping && p->timer_init;
}

static bool paneldb_ent_user_row(void *ctx, const char *name)
{
	const struct dbpoll_panel *panel = paneldb_newest(ctx);

	return panel != NULL && hmap_get(panel->by_name, name) != NULL;
}

static bool paneldb_ent_domain_owned(void *ctx, const char *domain)
{
	const struct dbpoll_owner *o =
		dbpoll_owner_find(paneldb_newest(ctx), domain);

	return o != NULL && o->user != NULL && o->gone_ms == 0;
}

struct paneldb_owned {
	const char *user;
	void (*fn)(const char *domain, void *arg);
	void *arg;
};

static bool paneldb_owned_each(const char *key, void *value, void *ctx)
{
	const struct dbpoll_owner *o = value;
	struct paneldb_owned *po = ctx;

	if (o->user != NULL && strcmp(o->user, po->user) == 0)
		po->fn(key, po->arg);
	return true;
}

static void paneldb_ent_user_domains(void *ctx, const char *user,
				     void (*fn)(const char *domain, void *arg),
				     void *arg)
{
	const struct dbpoll_panel *panel = paneldb_newest(ctx);
	struct paneldb_owned po = { user, fn, arg };

	if (panel != NULL)
		hmap_each(panel->owners, paneldb_owned_each, &po);
}

static void paneldb_ent_kick(void *ctx)
{
	struct paneldb *p = ctx;

	if (p->stopping || !p->timer_init || p->lost)
		return;
	if (p->busy) {
		p->kick_pending = true;
		return;
	}
	uv_timer_start(&p->timer, paneldb_timer_cb, 0, 0);
}

/* ---- start / stop ---- */

static void paneldb_load_state(struct paneldb *p)
{
	json_error_t jerr;
	const char *why, *saved;
	char *data, *src;
	size_t len;
	json_t *doc;
	int ret;

	ret = file_read_nofollow(p->state_file, PANELDB_STATE_MAX, &data, &len);
	if (ret == -ENOENT)
		return;
	if (ret < 0) {
		log_msg(LOG_WARN_L, PANELDB_WHO,
			"%s: cannot read: %s (starting from a new baseline)",
			p->state_file, strerror(-ret));
		return;
	}
	doc = json_loadb(data, len, 0, &jerr);
	free(data);
	if (doc == NULL) {
		log_msg(LOG_WARN_L, PANELDB_WHO,
			"%s:%d:%d: %s (starting from a new baseline)",
			p->state_file, jerr.line, jerr.column, jerr.text);
		return;
	}
	if (dbpoll_state_from_json(doc, &p->panel, &p->admins, &why) < 0)
		log_msg(LOG_WARN_L, PANELDB_WHO,
			"%s: %s (starting from a new baseline)", p->state_file,
			why);
	src = paneldb_panel_source(p);
	saved = json_string_value(json_object_get(doc, "panel_source"));
	if (p->panel != NULL && (saved == NULL || strcmp(saved, src) != 0)) {
		log_msg(LOG_INFO_L, PANELDB_WHO, "%s: saved from %s, not %s: "
			"starting from a new baseline", p->state_file,
			saved != NULL ? saved : "?", src);
		dbpoll_panel_free(&p->panel);
	}
	free(src);
	saved = json_string_value(json_object_get(doc, "admin_source"));
	if (p->admins != NULL && (saved == NULL ||
	    strcmp(saved, p->admin_db ? p->admin_db : "") != 0))
		dbpoll_admins_free(&p->admins);
	json_decref(doc);
}

static char *paneldb_strdup0(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

static void paneldb_free(struct paneldb *p)
{
	pthread_mutex_lock(&p->conn_lock);
	p->drv->close(&p->conn);
	pthread_mutex_unlock(&p->conn_lock);
	pthread_mutex_destroy(&p->conn_lock);
	dbpoll_panel_free(&p->panel);
	dbpoll_admins_free(&p->admins);
	for (size_t i = 0; i < p->n_ctx_told; i++)
		free(p->ctx_told[i]);
	free(p->ctx_told);
	free(p->path);
	free(p->option_file);
	free(p->database);
	free(p->admin_db);
	free(p->state_file);
	free(p->systemd_dir);
	free(p->home_dir);
	free(p);
}

static void paneldb_unref(struct paneldb *p)
{
	if (atomic_fetch_sub(&p->refs, 1) == 1)
		paneldb_free(p);
}

static void paneldb_timer_closed(uv_handle_t *h)
{
	paneldb_unref(h->data);
}

int paneldb_start(struct engine *e, struct entity *ent, struct paneldb **p_r,
		  const char **error_r)
{
	const struct config *cfg = engine_config(e);
	const struct paneldb_driver *drv;
	struct paneldb *p;
	int ret;

	*p_r = NULL;
	drv = paneldb_driver_find(cfg->panel_db.driver);
	if (drv == NULL) {
		*error_r = "panel_db.driver: unknown driver (sqlite or mysql)";
		return -EINVAL;
	}
	p = xcalloc(1, sizeof(*p));
	atomic_init(&p->refs, 1);
	p->e = e;
	p->ent = ent;
	p->loop = engine_loop(e);
	p->drv = drv;
	p->path = paneldb_strdup0(cfg->panel_db.path);
	p->option_file = paneldb_strdup0(cfg->panel_db.option_file);
	p->database = paneldb_strdup0(cfg->panel_db.database);
	p->admin_db = paneldb_strdup0(cfg->panel_db.admin_db);
	p->systemd_dir = paneldb_strdup0(cfg->paths.systemd);
	p->home_dir = paneldb_strdup0(cfg->paths.home);
	p->target.path = p->path;
	p->target.option_file = p->option_file;
	p->target.database = p->database;
	p->poll_ms = cfg->panel_db.poll_ms;
	p->state_file = xasprintf("%s/%s", cfg->state_dir, PANELDB_STATE_FILE);
	pthread_mutex_init(&p->conn_lock, NULL);
	ret = mkdir_p(cfg->state_dir, 0700);
	if (ret < 0 && ret != -EEXIST) {
		*error_r = "state_dir: cannot create it";
		paneldb_free(p);
		return ret;
	}
	paneldb_load_state(p);
	engine_set_enricher(e, paneldb_enrich, p);
	{
		const struct entity_db db = {
			paneldb_ent_active, paneldb_ent_user_row,
			paneldb_ent_domain_owned, paneldb_ent_user_domains,
			paneldb_ent_kick, p
		};

		entity_set_db(ent, &db);
	}
	if (p->poll_ms > 0) {
		uv_timer_init(p->loop, &p->timer);
		p->timer.data = p;
		p->timer_init = true;
		atomic_fetch_add(&p->refs, 1); /* the timer's */
		uv_timer_start(&p->timer, paneldb_timer_cb, 0, 0);
	}
	log_msg(LOG_INFO_L, PANELDB_WHO, "%s panel DB %s, poll %u ms%s%s",
		drv->name, strcmp(drv->name, "mysql") == 0 ?
		(p->option_file != NULL ? p->option_file : "?") :
		(p->path != NULL ? p->path : "?"), p->poll_ms,
		p->panel != NULL ? ", state loaded from " : "",
		p->panel != NULL ? p->state_file : "");
	*p_r = p;
	return 0;
}

void paneldb_stop(struct paneldb **pp)
{
	struct paneldb *p = *pp;

	if (p == NULL)
		return;
	*pp = NULL;
	p->stopping = true;
	p->ctx_fn = NULL;
	engine_set_enricher(p->e, NULL, NULL);
	entity_set_db(p->ent, NULL);
	if (p->busy && p->job != NULL)
		uv_cancel((uv_req_t *)&p->work); /* fails once running */
	if (p->timer_init) {
		uv_timer_stop(&p->timer);
		uv_close((uv_handle_t *)&p->timer, paneldb_timer_closed);
	}
	paneldb_unref(p);
}
