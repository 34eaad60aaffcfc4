/* goaccess plugin: per-domain GoAccess reports from Caddy's JSON access
 * logs, as OpenPanel lays them out (/var/log/caddy/domlogs/<d>/access.log
 * -> /var/log/caddy/stats/<user>/<d>.html).
 *
 * domain.added       the domain's log folder and its user's stats folder;
 *                    the domain -> user pair goes into the plugin's map.
 * domain.removed     its report (and the map entry).
 * user.suspended     the user's domains are skipped by runs until
 * user.unsuspended   ... this.
 * stats.run          queue goaccess --log-format=CADDY runs for one
 *                    domain (field domain) or every known domain of an
 *                    active user; max_procs threads of the plugin work
 *                    the queue (so at most max_procs processes at once,
 *                    and on_event returns at once); each outcome emitted
 *                    as stats.report {domain, user, ok, hits, total,
 *                    error}.
 * config.changed     re-read the schedule from openpanel.config [STATS].
 *
 * The schedule (daily, hourly, off, or Ns/Nm/Nh) emits stats.run from a
 * self-re-arming coalesced action (request_action), one action name per
 * schedule generation so a changed schedule takes over at once.
 * The map and the suspended set live in state_dir/goaccess.json. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ophook/plugin.h"
#include <ophook/safe.h>
#include "../common/plugerr.h"
#include "../common/run.h"

#define GA_FILE_MAX (16u * 1024u * 1024u)
#define GA_REPORT_MAX (1024u * 1024u * 1024u) /* an HTML report, copied */
#define GA_DAY_MS 86400000u

/* One armed schedule action: its generation. */
struct ga_arm {
	struct ga *ga;
	unsigned gen;
};

struct ga {
	struct ophook_ctx *ctx;
	const struct ophook_host *host;
	char *log_base, *log_name, *stats_dir, *geoip_db, *state_path;
	char *schedule_setting; /* NULL: from openpanel.config */
	const char *const *goaccess_argv; /* owned by the host until fini */
	unsigned max_procs;
	unsigned timeout_ms;
	unsigned long long mem_max; /* RLIMIT_AS of a goaccess run, bytes */
	bool drop;                  /* run goaccess as run_uid/run_gid */
	uid_t run_uid;
	gid_t run_gid;
	int cancel[2];              /* written at fini: running goaccess die */

	pthread_mutex_t lock; /* state, schedule */
	json_t *domains;      /* domain -> user */
	json_t *suspended;    /* user -> true */
	unsigned interval_ms; /* 0: off */
	unsigned gen;
	bool sched_loaded;
	int64_t due_ms; /* monotonic time of the next scheduled run */
	struct ga_arm **arms;
	size_t n_arms;

	/* the run queue, worked off by max_procs threads of the plugin's own
	 * (on_event only queues: a run over many domains outlasts the
	 * daemon's per-call timeout) */
	pthread_mutex_t qlock;
	pthread_cond_t qwork; /* work queued, or stop */
	pthread_cond_t qidle; /* queue empty and no run going */
	char **queue;         /* d0, u0, d1, u1, ... from qhead */
	size_t qhead, qn, qcap; /* pairs */
	json_t *queued;       /* domains in the queue */
	unsigned busy;
	bool stop;
	pthread_t *workers;
	unsigned n_workers;
};

static int64_t ga_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- schedule ------------------------------------------------------------ */

/* "daily", "hourly", "off" (also never/disabled/no/none/0), or a number
 * with unit s, m or h (at least 10 s, at most 24 h) into *ms_r (0: off).
 * 0 or -EINVAL. */
static int ga_schedule_parse(const char *s, unsigned *ms_r)
{
	static const char *const off[] = { "off", "never", "disabled", "no",
					   "none", "0", "false", NULL };
	char *end;
	unsigned long n, unit;

	*ms_r = 0;
	for (size_t i = 0; off[i] != NULL; i++)
		if (strcasecmp(s, off[i]) == 0)
			return 0;
	if (strcasecmp(s, "daily") == 0) {
		*ms_r = GA_DAY_MS;
		return 0;
	}
	if (strcasecmp(s, "hourly") == 0) {
		*ms_r = 3600000u;
		return 0;
	}
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno != 0 || end[0] == '\0' || end[1] != '\0')
		return -EINVAL;
	unit = *end == 's' ? 1000ul : *end == 'm' ? 60000ul
				 : *end == 'h'   ? 3600000ul
						 : 0ul;
	if (unit == 0 || n > GA_DAY_MS / unit || n * unit < 10000ul)
		return -EINVAL;
	*ms_r = (unsigned)(n * unit);
	return 0;
}

/* The value of `schedule` or `goaccess_schedule` in the [STATS] section
 * of an INI text (quotes and blanks stripped); NULL when absent. */
static char *ga_ini_schedule(const char *text)
{
	const char *p = text;
	bool in_stats = false;
	char *found = NULL;

	while (*p != '\0') {
		const char *eol = strchr(p, '\n'), *k, *ke, *v, *ve;
		size_t n = eol != NULL ? (size_t)(eol - p) : strlen(p);

		k = p;
		ve = p + n;
		p = eol != NULL ? eol + 1 : p + n;
		while (k < ve && (*k == ' ' || *k == '\t'))
			k++;
		while (ve > k && (ve[-1] == ' ' || ve[-1] == '\t' ||
				  ve[-1] == '\r'))
			ve--;
		if (k == ve || *k == '#' || *k == ';')
			continue;
		if (*k == '[') {
			in_stats = ve - k == 7 && strncasecmp(k, "[STATS]", 7) == 0;
			continue;
		}
		if (!in_stats || (ke = memchr(k, '=', (size_t)(ve - k))) == NULL)
			continue;
		v = ke + 1;
		while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
			ke--;
		if (!((ke - k == 8 && strncasecmp(k, "schedule", 8) == 0) ||
		      (ke - k == 17 && strncasecmp(k, "goaccess_schedule", 17) == 0)))
			continue;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		if (ve - v >= 2 && (*v == '"' || *v == '\'') && ve[-1] == *v) {
			v++;
			ve--;
		}
		free(found);
		found = strndup(v, (size_t)(ve - v));
	}
	return found;
}

static void ga_schedule_action(struct ophook_ctx *ctx, void *data);

/* Arm generation gen for delay ms (lock held). */
static void ga_arm(struct ga *g, unsigned delay)
{
	struct ga_arm *a = NULL, **arms;
	char name[32];

	for (size_t i = 0; i < g->n_arms; i++)
		if (g->arms[i]->gen == g->gen)
			a = g->arms[i];
	if (a == NULL) {
		arms = realloc(g->arms, (g->n_arms + 1) * sizeof(*arms));
		a = malloc(sizeof(*a));
		if (arms != NULL)
			g->arms = arms;
		if (arms == NULL || a == NULL) {
			free(a);
			g->host->log(g->ctx, OPHOOK_LOG_ERROR,
				     "schedule: out of memory");
			return;
		}
		a->ga = g;
		a->gen = g->gen;
		g->arms[g->n_arms++] = a;
	}
	snprintf(name, sizeof(name), "schedule-%u", g->gen);
	g->host->request_action(g->ctx, name, delay, ga_schedule_action, a);
}

static void ga_schedule_action(struct ophook_ctx *ctx, void *data)
{
	struct ga_arm *a = data;
	struct ga *g = a->ga;
	const char *err = NULL;
	int64_t now = ga_mono_ms();
	bool run = false;

	(void)ctx;
	pthread_mutex_lock(&g->lock);
	if (a->gen == g->gen && g->interval_ms > 0) {
		if (now + 1000 >= g->due_ms) {
			run = true;
			g->due_ms = now + g->interval_ms;
			ga_arm(g, g->interval_ms);
		} else {
			ga_arm(g, (unsigned)(g->due_ms - now));
		}
	}
	pthread_mutex_unlock(&g->lock);
	if (run && g->host->emit(g->ctx, "stats.run", "stats",
				 "{\"scheduled\":true}", &err) < 0)
		g->host->log(g->ctx, OPHOOK_LOG_ERROR,
			     "schedule: cannot emit stats.run: %s", err);
}

/* Read the schedule (setting, else openpanel.config [STATS], else daily)
 * and re-arm when it changed. */
static void ga_schedule_load(struct ga *g)
{
	char *path = plug_fmt("%s/openpanel/conf/openpanel.config",
			    g->host->root(g->ctx));
	char *text = NULL, *val = NULL;
	const char *src = "default";
	size_t len;
	unsigned ms = GA_DAY_MS;

	if (g->schedule_setting != NULL) {
		val = strdup(g->schedule_setting);
		src = "setting schedule";
	} else if (path != NULL &&
		   ophook_file_read_nofollow(path, GA_FILE_MAX, &text,
					     &len) == 0 &&
		   (val = ga_ini_schedule(text)) != NULL) {
		src = path;
	}
	if (val != NULL && ga_schedule_parse(val, &ms) < 0) {
		g->host->log(g->ctx, OPHOOK_LOG_WARN,
			     "%s: [STATS] schedule \"%s\" is not daily, hourly, "
			     "off or N(s|m|h); using daily",
			     src, val);
		ms = GA_DAY_MS;
	}
	pthread_mutex_lock(&g->lock);
	if (ms != g->interval_ms || !g->sched_loaded) {
		g->sched_loaded = true;
		g->interval_ms = ms;
		g->gen++;
		if (ms > 0) {
			g->due_ms = ga_mono_ms() + ms;
			ga_arm(g, ms);
		}
		g->host->log(g->ctx, OPHOOK_LOG_INFO, "schedule: %s (%s)",
			     ms == 0 ? "off" : val != NULL ? val : "daily", src);
	}
	pthread_mutex_unlock(&g->lock);
	free(val);
	free(text);
	free(path);
}

/* --- state --------------------------------------------------------------- */

/* Save the state (lock held). */
static void ga_state_save(struct ga *g)
{
	json_t *o = json_pack("{s:O, s:O}", "domains", g->domains, "suspended",
			      g->suspended);
	char *s = o != NULL ? json_dumps(o, JSON_SORT_KEYS | JSON_INDENT(1))
			    : NULL;
	int ret = s == NULL ? -ENOMEM
			    : ophook_file_write_atomic(g->state_path, s,
						       strlen(s), 0600);

	if (ret < 0)
		g->host->log(g->ctx, OPHOOK_LOG_ERROR, "%s: %s", g->state_path,
			     strerror(-ret));
	free(s);
	json_decref(o);
}

static void ga_state_load(struct ga *g)
{
	char *text = NULL;
	size_t len;
	json_t *o = NULL, *d, *s;
	json_error_t jerr;

	if (ophook_file_read_nofollow(g->state_path, GA_FILE_MAX, &text,
				      &len) == 0) {
		o = json_loadb(text, len, 0, &jerr);
		if (o == NULL)
			g->host->log(g->ctx, OPHOOK_LOG_WARN,
				     "%s:%d: %s; starting empty", g->state_path,
				     jerr.line, jerr.text);
	}
	d = json_object_get(o, "domains");
	s = json_object_get(o, "suspended");
	g->domains = json_is_object(d) ? json_incref(d) : json_object();
	g->suspended = json_is_object(s) ? json_incref(s) : json_object();
	json_decref(o);
	free(text);
}

/* --- runs ---------------------------------------------------------------- */

/* An IP, a CIDR or a goaccess range a-b: hex digits, '.', ':', '/', '-'. */
static bool ga_ip_ok(const char *s, size_t n)
{
	if (n == 0 || n > 100)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
		      (c >= 'A' && c <= 'F') || c == '.' || c == ':' ||
		      c == '/' || c == '-'))
			return false;
	}
	return true;
}

/* Append --exclude-ip=IP for each line of the user's list. */
static int ga_excluded(struct ga *g, const char *user, char ***argv)
{
	char *path = plug_fmt("%s/openpanel/core/users/%s/goaccess_excluded_ips",
			    g->host->root(g->ctx), user);
	char *text = NULL, *arg;
	const char *p;
	size_t len;
	unsigned lineno = 0;
	int ret = 0;

	if (path == NULL)
		return -ENOMEM;
	if (ophook_file_read_nofollow(path, GA_FILE_MAX, &text, &len) < 0) {
		free(path);
		return 0; /* optional */
	}
	for (p = text; ret == 0 && *p != '\0';) {
		const char *e = strchr(p, '\n'), *s = p, *t;

		lineno++;
		t = e != NULL ? e : p + strlen(p);
		p = e != NULL ? e + 1 : t;
		while (s < t && (*s == ' ' || *s == '\t'))
			s++;
		while (t > s && (t[-1] == ' ' || t[-1] == '\t' || t[-1] == '\r'))
			t--;
		if (s == t || *s == '#')
			continue;
		if (!ga_ip_ok(s, (size_t)(t - s))) {
			g->host->log(g->ctx, OPHOOK_LOG_WARN,
				     "%s:%u: not an IP, CIDR or range; ignored",
				     path, lineno);
			continue;
		}
		arg = plug_fmt("--exclude-ip=%.*s", (int)(t - s), s);
		ret = arg == NULL ? -ENOMEM : argv_append(argv, arg);
		free(arg);
	}
	free(text);
	free(path);
	return ret;
}

/* The goaccess argv for one domain, writing html_out and json_out. */
static int ga_build_argv(struct ga *g, const char *user, const char *log,
			 const char *html_out, const char *json_out,
			 char ***argv_r)
{
	char **argv = argv_dup(g->goaccess_argv);
	char *geo = NULL;
	int ret = argv == NULL ? -ENOMEM : 0;
	struct stat st;

	const char *fixed[] = { log, "--log-format=CADDY", "-o", html_out, "-o",
				json_out, "--no-global-config", "--no-progress",
				NULL };
	for (size_t i = 0; ret == 0 && fixed[i] != NULL; i++)
		ret = argv_append(&argv, fixed[i]);
	if (ret == 0 && g->geoip_db != NULL && *g->geoip_db != '\0' &&
	    stat(g->geoip_db, &st) == 0 && S_ISREG(st.st_mode)) {
		geo = plug_fmt("--geoip-database=%s", g->geoip_db);
		ret = geo == NULL ? -ENOMEM : argv_append(&argv, geo);
	}
	if (ret == 0)
		ret = ga_excluded(g, user, &argv);
	free(geo);
	if (ret < 0)
		argv_free(&argv);
	*argv_r = argv;
	return ret;
}

static void ga_report(struct ga *g, const char *d, const char *user, bool ok,
		      long long hits, long long total, const char *error)
{
	json_t *o = json_pack("{s:s, s:s, s:b}", "domain", d, "user", user,
			      "ok", ok);
	char *s;
	const char *err = NULL;

	if (o == NULL)
		return;
	if (hits >= 0)
		json_object_set_new(o, "hits", json_integer(hits));
	if (total >= 0)
		json_object_set_new(o, "total", json_integer(total));
	if (error != NULL)
		json_object_set_new(o, "error", json_string(error));
	s = json_dumps(o, JSON_COMPACT);
	if (s != NULL && g->host->emit(g->ctx, "stats.report", d, s, &err) < 0)
		g->host->log(g->ctx, OPHOOK_LOG_ERROR,
			     "%s: cannot emit stats.report: %s", d, err);
	free(s);
	json_decref(o);
}

/* Remove the private work folder name in dirfd (its files, then it). */
static void ga_workdir_remove(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					     O_CLOEXEC);
	DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (dh == NULL && fd >= 0)
		close(fd);
	while (dh != NULL && (de = readdir(dh)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			(void)unlinkat(dirfd(dh), de->d_name, 0);
	if (dh != NULL)
		closedir(dh);
	(void)unlinkat(parent, name, AT_REMOVEDIR);
}

/* Work folders a killed daemon left in state_dir go at start. */
static void ga_workdirs_clean(struct ga *g)
{
	DIR *dh = opendir(g->host->state_dir(g->ctx));
	struct dirent *de;

	while (dh != NULL && (de = readdir(dh)) != NULL)
		if (strncmp(de->d_name, "work-", 5) == 0)
			ga_workdir_remove(dirfd(dh), de->d_name);
	if (dh != NULL)
		closedir(dh);
}

/* "what it is" for an error of ophook_dir_open_* / ophook_file_open_at. */
static const char *ga_why(int ret)
{
	return ret == -ELOOP	? "a symlink, refused"
	       : ret == -ENOTDIR ? "not a folder, refused"
	       : ret == -EMLINK	? "more than one hard link, refused"
	       : ret == -EINVAL	? "not a regular file, refused"
				: strerror(-ret);
}

/* Open the folder <base>/<rel> without following a symlink below base;
 * on failure msg says which component and why. */
static int ga_dir_open(const char *base, const char *rel, bool create,
		       int *fd_r, char *msg, size_t msg_size)
{
	size_t bad = 0;
	int ret = ophook_dir_open_under(base, rel,
					create ? OPHOOK_DIR_CREATE : 0, 0755,
					fd_r, &bad);

	if (ret < 0 && bad == 0)
		snprintf(msg, msg_size, "%s: %s", base, strerror(-ret));
	else if (ret < 0)
		snprintf(msg, msg_size, "%s/%.*s: %s", base, (int)bad, rel,
			 ga_why(ret));
	return ret;
}

/* May the stats folder (fstat'ed) take a report for user?  It must belong
 * to root, to the owner of stats_dir or to the user's own account. */
static bool ga_owner_ok(struct ga *g, const char *user, const struct stat *st)
{
	struct stat bst;
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (st->st_uid == 0)
		return true;
	if (stat(g->stats_dir, &bst) == 0 && st->st_uid == bst.st_uid)
		return true;
	return getpwnam_r(user, &pw, buf, sizeof(buf), &res) == 0 &&
	       res != NULL && pw.pw_uid == st->st_uid;
}

/* Run goaccess for one domain; the outcome goes out as stats.report.
 *
 * No path a customer may write to is ever handed to goaccess, and root
 * never opens one by name: the log is opened here (its folder walked
 * without symlinks, the file O_NOFOLLOW, one link) and given to goaccess
 * as stdin; goaccess (as run_user, with limits) writes into a private
 * work folder under the plugin's state_dir (0700, reached only through
 * its cwd); the report is then copied into the stats folder, opened the
 * same way, as an O_EXCL temp file renamed over <d>.html through the
 * folder's descriptor. */
static void ga_run_one(struct ga *g, const char *d, const char *user)
{
	char *html = plug_fmt("%s/%s/%s.html", g->stats_dir, user, d);
	char *hname = plug_fmt("%s.html", d);
	char wname[] = "work-XXXXXX", *wpath = NULL, *text = NULL;
	char **argv = NULL, *err_out = NULL, msg[768];
	const char *error = NULL, *state = g->host->state_dir(g->ctx);
	long long hits = -1, total = -1;
	int status = 0, ret, logdir = -1, logfd = -1, sdir = -1, wdir = -1;
	int hfd = -1, statefd = -1;
	struct stat st;
	size_t len;

	msg[0] = '\0';
	if (html == NULL || hname == NULL) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto out;
	}
	/* the log: <log_base>/<d>/<log_name>, no symlink anywhere below
	 * log_base */
	if ((ret = ga_dir_open(g->log_base, d, false, &logdir, msg,
			       sizeof(msg))) < 0) {
		if (ret == -ENOENT)
			snprintf(msg, sizeof(msg), "%s/%s/%s: no access log",
				 g->log_base, d, g->log_name);
		goto out;
	}
	ret = ophook_file_open_at(logdir, g->log_name, true, &logfd);
	if (ret < 0) {
		snprintf(msg, sizeof(msg), "%s/%s/%s: %s", g->log_base, d,
			 g->log_name,
			 ret == -ENOENT ? "no access log" : ga_why(ret));
		goto out;
	}
	/* the stats folder: <stats_dir>/<user>, made when missing */
	if (ga_dir_open(g->stats_dir, user, true, &sdir, msg, sizeof(msg)) < 0)
		goto out;
	if (fstat(sdir, &st) < 0 || !ga_owner_ok(g, user, &st)) {
		snprintf(msg, sizeof(msg),
			 "%s/%s: owned by uid %u, not root, the owner of %s or "
			 "%s: refused",
			 g->stats_dir, user, (unsigned)st.st_uid, g->stats_dir,
			 user);
		goto out;
	}
	/* the private work folder */
	statefd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (statefd < 0 || (wpath = plug_fmt("%s/%s", state, wname)) == NULL ||
	    mkdtemp(wpath) == NULL) {
		snprintf(msg, sizeof(msg), "%s: cannot make a work folder: %s",
			 state, strerror(errno));
		goto out;
	}
	memcpy(wname, wpath + strlen(wpath) - strlen(wname), sizeof(wname));
	wdir = openat(statefd, wname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					      O_CLOEXEC);
	if (wdir < 0 || (g->drop && fchown(wdir, g->run_uid, g->run_gid) < 0)) {
		snprintf(msg, sizeof(msg), "%s: %s", wpath, strerror(errno));
		goto out;
	}
	if (ga_build_argv(g, user, "-", "report.html", "report.json",
			  &argv) < 0) {
		snprintf(msg, sizeof(msg), "out of memory");
		goto out;
	}
	/* over a customer's access log: killed when the plugin stops
	 * (cancel[0], written at fini: also at a reload or an unload, and in
	 * an isolated runner, where host->stopping() is always false), dies
	 * with the daemon (PDEATHSIG) */
	struct run_opts ro = { .use_stdin_fd = true, .stdin_fd = logfd,
			       .use_cancel_fd = true, .cancel_fd = g->cancel[0],
			       .drop = g->drop, .uid = g->run_uid,
			       .gid = g->run_gid, .mem_max = g->mem_max,
			       .cpu_max_s = g->timeout_ms / 1000u,
			       .cwd = wpath };

	ret = run_argv_ex((const char *const *)argv, &ro, NULL, g->timeout_ms,
			  NULL, &err_out, &status, &error);
	if (ret == -ETIMEDOUT) {
		snprintf(msg, sizeof(msg), "goaccess timed out after %u ms",
			 g->timeout_ms);
	} else if (ret < 0) {
		snprintf(msg, sizeof(msg), "%s", error);
	} else if (status != 0) {
		size_t n = err_out != NULL ? strlen(err_out) : 0;

		while (n > 0 && (err_out[n - 1] == '\n' || err_out[n - 1] == ' '))
			err_out[--n] = '\0';
		snprintf(msg, sizeof(msg), "goaccess exit status %d: %.400s",
			 status, err_out != NULL ? err_out : "");
	} else if ((ret = ophook_file_read_at(wdir, "report.json", GA_FILE_MAX,
					      &text, &len)) < 0 ||
		   (ret = ophook_file_open_at(wdir, "report.html", true,
					      &hfd)) < 0) {
		snprintf(msg, sizeof(msg), "goaccess output: %s", ga_why(ret));
	} else {
		json_t *o = json_loadb(text, len, 0, NULL);
		json_t *gen = json_object_get(o, "general");
		json_t *v = json_object_get(gen, "valid_requests");
		json_t *t = json_object_get(gen, "total_requests");

		hits = json_is_integer(v) ? json_integer_value(v) : -1;
		total = json_is_integer(t) ? json_integer_value(t) : -1;
		json_decref(o);
		g->host->own_write(g->ctx, html);
		/* a report in a customer's own folder is theirs */
		ret = ophook_file_copy_atomic_at(
			sdir, hname, hfd, GA_REPORT_MAX, 0644,
			st.st_uid != 0 ? st.st_uid : (uid_t)-1,
			st.st_uid != 0 ? st.st_gid : (gid_t)-1);
		if (ret < 0)
			snprintf(msg, sizeof(msg), "%s: %s", html,
				 ga_why(ret));
	}
out:
	if (wdir >= 0)
		close(wdir);
	if (wpath != NULL && statefd >= 0 && strstr(wpath, "XXXXXX") == NULL)
		ga_workdir_remove(statefd, wname);
	if (msg[0] != '\0')
		g->host->log(g->ctx, OPHOOK_LOG_WARN, "%s: %s", d, msg);
	ga_report(g, d, user, msg[0] == '\0', hits, total,
		  msg[0] != '\0' ? msg : NULL);
	if (hfd >= 0)
		close(hfd);
	if (sdir >= 0)
		close(sdir);
	if (logfd >= 0)
		close(logfd);
	if (logdir >= 0)
		close(logdir);
	if (statefd >= 0)
		close(statefd);
	argv_free(&argv);
	free(err_out);
	free(text);
	free(wpath);
	free(hname);
	free(html);
}

/* Queue a run of d for user unless d is queued already (qlock held).
 * 0 or -ENOMEM. */
static int ga_enqueue_locked(struct ga *g, const char *d, const char *user)
{
	char *dd, *uu;

	if (json_object_get(g->queued, d) != NULL)
		return 0;
	if (g->qhead > 0 && g->qhead == g->qn)
		g->qhead = g->qn = 0; /* drained: start over */
	if (g->qn == g->qcap) {
		size_t cap = g->qcap == 0 ? 64 : 2 * g->qcap;
		char **q = realloc(g->queue, 2 * cap * sizeof(*q));

		if (q == NULL)
			return -ENOMEM;
		g->queue = q;
		g->qcap = cap;
	}
	dd = strdup(d);
	uu = strdup(user);
	if (dd == NULL || uu == NULL ||
	    json_object_set_new(g->queued, d, json_true()) < 0) {
		free(dd);
		free(uu);
		return -ENOMEM;
	}
	g->queue[2 * g->qn] = dd;
	g->queue[2 * g->qn + 1] = uu;
	g->qn++;
	pthread_cond_signal(&g->qwork);
	return 0;
}

static void *ga_worker(void *arg)
{
	struct ga *g = arg;

	pthread_mutex_lock(&g->qlock);
	for (;;) {
		char *d, *u;

		while (!g->stop && g->qhead == g->qn)
			pthread_cond_wait(&g->qwork, &g->qlock);
		if (g->stop)
			break;
		d = g->queue[2 * g->qhead];
		u = g->queue[2 * g->qhead + 1];
		g->qhead++;
		json_object_del(g->queued, d);
		g->busy++;
		pthread_mutex_unlock(&g->qlock);
		ga_run_one(g, d, u);
		free(d);
		free(u);
		pthread_mutex_lock(&g->qlock);
		g->busy--;
		if (g->qhead == g->qn && g->busy == 0)
			pthread_cond_broadcast(&g->qidle);
	}
	pthread_mutex_unlock(&g->qlock);
	return NULL;
}

/* Wait until the queue is empty and no run is going (tests). */
static void __attribute__((unused)) ga_drain(struct ga *g)
{
	pthread_mutex_lock(&g->qlock);
	while (!(g->qhead == g->qn && g->busy == 0))
		pthread_cond_wait(&g->qidle, &g->qlock);
	pthread_mutex_unlock(&g->qlock);
}

/* Queue runs: one domain (of user, or of its owner in the map) or every
 * known domain; suspended users' domains are left out.  *n_r: queued. */
static int ga_queue_runs(struct ga *g, const char *only, const char *only_user,
			 size_t *n_r, bool *known_r)
{
	const char *d;
	json_t *u;
	int ret = 0;

	*n_r = 0;
	*known_r = false;
	pthread_mutex_lock(&g->lock);
	pthread_mutex_lock(&g->qlock);
	json_object_foreach(g->domains, d, u) {
		const char *user = json_string_value(u);

		if (user == NULL || (only != NULL && strcmp(d, only) != 0))
			continue;
		*known_r = true;
		if (only_user != NULL || json_object_get(g->suspended, user) != NULL)
			continue;
		if ((ret = ga_enqueue_locked(g, d, user)) < 0)
			break;
		(*n_r)++;
	}
	if (ret == 0 && only != NULL && only_user != NULL &&
	    json_object_get(g->suspended, only_user) == NULL) {
		*known_r = true;
		if ((ret = ga_enqueue_locked(g, only, only_user)) == 0)
			(*n_r)++;
	}
	pthread_mutex_unlock(&g->qlock);
	pthread_mutex_unlock(&g->lock);
	return ret;
}

static int ga_stats_run(struct ga *g, const struct ophook_event *ev,
			const char **error_r)
{
	const char *d = g->host->event_get(ev, "domain");
	const char *u = g->host->event_get(ev, "user"), *why = NULL;
	size_t n = 0;
	bool known = false;
	int ret;

	if (d != NULL && !ophook_name_valid_domain(d, &why))
		return plug_fail(error_r, -EINVAL, "%s: field domain: %s",
			       ev->type, why);
	if (u != NULL && !ophook_name_valid_user(u, &why))
		return plug_fail(error_r, -EINVAL, "%s: field user: %s",
			       ev->type, why);
	ret = ga_queue_runs(g, d, d != NULL ? u : NULL, &n, &known);
	if (ret < 0)
		return plug_fail(error_r, ret, "out of memory");
	if (d != NULL && !known)
		return plug_fail(error_r, -EINVAL,
			       "%s: field domain: %s is not a known domain "
			       "(give user= too)",
			       ev->type, d);
	if (d != NULL && n == 0)
		g->host->log(g->ctx, OPHOOK_LOG_INFO,
			     "%s: owner suspended, no report", d);
	else
		g->host->log(g->ctx, OPHOOK_LOG_INFO,
			     "stats.run: %zu domain(s) queued", n);
	return 0;
}

/* --- events -------------------------------------------------------------- */

/* The user of an event without the panel's "SUSPENDED_<stamp>_" prefix. */
static const char *ga_user_name(const char *u)
{
	if (u != NULL && strncmp(u, "SUSPENDED_", 10) == 0 &&
	    strchr(u + 10, '_') != NULL)
		return strchr(u + 10, '_') + 1;
	return u;
}

static int ga_domain_event(struct ga *g, const struct ophook_event *ev,
			   bool added, const char **error_r)
{
	const char *d = g->host->event_get(ev, "domain"), *why = NULL;
	const char *u = ga_user_name(g->host->event_get(ev, "user"));
	char *user = NULL, *path = NULL, msg[600];
	json_t *cur;
	int ret = 0;

	if (d == NULL)
		d = ev->subject;
	if (d == NULL || !ophook_name_valid_domain(d, &why))
		return plug_fail(error_r, -EINVAL, "%s: field domain: %s",
			       ev->type, d == NULL ? "missing" : why);
	if (u != NULL && *u != '\0' && !ophook_name_valid_user(u, &why))
		return plug_fail(error_r, -EINVAL, "%s: field user: %s",
			       ev->type, why);
	if (u != NULL && *u == '\0')
		u = NULL;
	pthread_mutex_lock(&g->lock);
	cur = json_object_get(g->domains, d);
	if (u == NULL && json_is_string(cur))
		u = json_string_value(cur);
	user = u != NULL ? strdup(u) : NULL;
	if (added && user != NULL &&
	    (!json_is_string(cur) || strcmp(json_string_value(cur), user) != 0)) {
		json_object_set_new(g->domains, d, json_string(user));
		ga_state_save(g);
	} else if (!added && cur != NULL) {
		json_object_del(g->domains, d);
		ga_state_save(g);
	}
	pthread_mutex_unlock(&g->lock);

	if (added) {
		/* both folders made without following a symlink below the
		 * settings' folders (a customer's own stats folder may hold
		 * one) */
		int fd = -1;

		ret = ga_dir_open(g->log_base, d, true, &fd, msg, sizeof(msg));
		if (ret == 0) {
			close(fd);
			if (user != NULL)
				ret = ga_dir_open(g->stats_dir, user, true, &fd,
						  msg, sizeof(msg));
			if (ret == 0 && user != NULL)
				close(fd);
		}
		if (ret < 0)
			ret = plug_fail(error_r, ret, "%s: %s", d, msg);
	} else if (user != NULL) {
		/* unlinkat through the folder's descriptor: a symlinked
		 * folder is refused, a symlink as the report is removed
		 * itself */
		int fd = -1;

		path = plug_fmt("%s.html", d);
		ret = path == NULL ? -ENOMEM
				   : ga_dir_open(g->stats_dir, user, false, &fd,
						 msg, sizeof(msg));
		if (ret == -ENOENT) {
			ret = 0;
		} else if (ret < 0) {
			ret = plug_fail(error_r, ret, "%s: %s", d,
					path == NULL ? "out of memory" : msg);
		} else if (unlinkat(fd, path, 0) < 0 && errno != ENOENT) {
			ret = plug_fail(error_r, -errno, "%s: %s/%s/%s: %s", d,
					g->stats_dir, user, path,
					strerror(errno));
		} else {
			g->host->log(g->ctx, OPHOOK_LOG_INFO,
				     "%s: report removed", d);
		}
		if (fd >= 0)
			close(fd);
	} else {
		g->host->log(g->ctx, OPHOOK_LOG_WARN,
			     "%s: owner unknown, no report to remove", d);
	}
	free(path);
	free(user);
	return ret;
}

static int ga_user_event(struct ga *g, const struct ophook_event *ev,
			 bool suspended, const char **error_r)
{
	const char *u = g->host->event_get(ev, "user"), *why = NULL;

	if (u == NULL && ev->subject != NULL &&
	    strncmp(ev->subject, "user:", 5) == 0)
		u = ev->subject + 5;
	u = ga_user_name(u);
	if (u == NULL || !ophook_name_valid_user(u, &why))
		return plug_fail(error_r, -EINVAL, "%s: field user: %s", ev->type,
			       u == NULL ? "missing" : why);
	pthread_mutex_lock(&g->lock);
	if (suspended && json_object_get(g->suspended, u) == NULL) {
		json_object_set_new(g->suspended, u, json_true());
		ga_state_save(g);
	} else if (!suspended && json_object_get(g->suspended, u) != NULL) {
		json_object_del(g->suspended, u);
		ga_state_save(g);
	}
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static int ga_on_event(void *data, const struct ophook_event *ev,
		       const char **error_r)
{
	struct ga *g = data;

	if (strcmp(ev->type, "stats.run") == 0)
		return ga_stats_run(g, ev, error_r);
	if (strcmp(ev->type, "domain.added") == 0)
		return ga_domain_event(g, ev, true, error_r);
	if (strcmp(ev->type, "domain.removed") == 0)
		return ga_domain_event(g, ev, false, error_r);
	if (strcmp(ev->type, "user.suspended") == 0)
		return ga_user_event(g, ev, true, error_r);
	if (strcmp(ev->type, "user.unsuspended") == 0)
		return ga_user_event(g, ev, false, error_r);
	if (strcmp(ev->type, "config.changed") == 0)
		ga_schedule_load(g);
	return 0;
}

/* --- init ---------------------------------------------------------------- */

static void ga_fini(void *data)
{
	struct ga *g = data;

	if (g == NULL)
		return;
	pthread_mutex_lock(&g->qlock);
	g->stop = true;
	pthread_cond_broadcast(&g->qwork);
	pthread_mutex_unlock(&g->qlock);
	/* running goaccess processes are killed, not waited for */
	if (g->cancel[1] >= 0)
		(void)!write(g->cancel[1], "x", 1);
	for (unsigned i = 0; i < g->n_workers; i++)
		pthread_join(g->workers[i], NULL);
	for (int i = 0; i < 2; i++)
		if (g->cancel[i] >= 0)
			close(g->cancel[i]);
	free(g->workers);
	for (size_t i = 2 * g->qhead; i < 2 * g->qn; i++)
		free(g->queue[i]);
	free(g->queue);
	json_decref(g->queued);
	free(g->log_base);
	free(g->log_name);
	free(g->stats_dir);
	free(g->geoip_db);
	free(g->state_path);
	free(g->schedule_setting);
	json_decref(g->domains);
	json_decref(g->suspended);
	for (size_t i = 0; i < g->n_arms; i++)
		free(g->arms[i]);
	free(g->arms);
	pthread_mutex_destroy(&g->lock);
	pthread_mutex_destroy(&g->qlock);
	pthread_cond_destroy(&g->qwork);
	pthread_cond_destroy(&g->qidle);
	free(g);
}

/* plugins.goaccess.settings (README "Settings"); the host checks them. */
static const struct ophook_setting_decl ga_settings_decl[] = {
	{ .name = "log_base", .type = OPHOOK_SETTING_PATH,
	  .def = "${paths.log}/caddy/domlogs",
	  .description = "per-domain log folders" },
	{ .name = "log_name", .type = OPHOOK_SETTING_STRING,
	  .def = "access.log",
	  .description = "the log file's name in <log_base>/<domain>/" },
	{ .name = "stats_dir", .type = OPHOOK_SETTING_PATH,
	  .def = "${paths.log}/caddy/stats",
	  .description = "reports go to <stats_dir>/<user>/<domain>.html" },
	{ .name = "goaccess_argv", .type = OPHOOK_SETTING_ARGV,
	  .def = "goaccess", .description = "goaccess command (no shell)" },
	{ .name = "geoip_db", .type = OPHOOK_SETTING_STRING,
	  .def = "/usr/share/GeoIP/GeoLite2-City.mmdb",
	  .description = "GeoIP database, used when the file exists" },
	{ .name = "max_procs", .type = OPHOOK_SETTING_INT, .def = "2",
	  .min = 1, .max = 64,
	  .description = "goaccess processes at once" },
	{ .name = "timeout_s", .type = OPHOOK_SETTING_INT, .def = "3600",
	  .min = 1, .max = 86400,
	  .description = "seconds per run, then SIGTERM/SIGKILL" },
	{ .name = "run_user", .type = OPHOOK_SETTING_STRING, .def = "nobody",
	  .description = "account goaccess runs as (root: no drop)" },
	{ .name = "mem_max_mb", .type = OPHOOK_SETTING_INT, .def = "2048",
	  .min = 64, .max = 1048576,
	  .description = "address space limit of a goaccess run (MiB)" },
	{ .name = "schedule", .type = OPHOOK_SETTING_STRING,
	  .description = "daily, hourly, off or N(s|m|h) (10 s..24 h); "
			 "unset: openpanel.config [STATS]" },
};

/* A copy of a string setting; empty means the default (def, or NULL). */
static int ga_str_setting(struct ga *g, const char *key, const char *def,
			  char **out_r)
{
	const char *v = g->host->setting_str(g->ctx, key);

	if (v == NULL || *v == '\0')
		v = def;
	*out_r = v != NULL ? strdup(v) : NULL;
	return v != NULL && *out_r == NULL ? -ENOMEM : 0;
}

/* Read the checked settings into g; the checks the host cannot make
 * (log_name a file name, schedule's syntax) are made here. */
static int ga_settings(struct ga *g, const char **error_r)
{
	unsigned ms;

	if (ga_str_setting(g, "log_base", NULL, &g->log_base) < 0 ||
	    ga_str_setting(g, "log_name", "access.log", &g->log_name) < 0 ||
	    ga_str_setting(g, "stats_dir", NULL, &g->stats_dir) < 0 ||
	    ga_str_setting(g, "geoip_db", "/usr/share/GeoIP/GeoLite2-City.mmdb",
			   &g->geoip_db) < 0 ||
	    ga_str_setting(g, "schedule", NULL, &g->schedule_setting) < 0 ||
	    g->log_base == NULL || g->stats_dir == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	if (strchr(g->log_name, '/') != NULL || strcmp(g->log_name, "..") == 0 ||
	    strcmp(g->log_name, ".") == 0)
		return plug_fail(error_r, -EINVAL,
			       "setting log_name: a file name, no '/'");
	if (g->schedule_setting != NULL &&
	    ga_schedule_parse(g->schedule_setting, &ms) < 0)
		return plug_fail(error_r, -EINVAL,
			       "setting schedule: \"%s\" is not daily, hourly, "
			       "off or N(s|m|h) (10 s..24 h)",
			       g->schedule_setting);
	{
		const char *ru = g->host->setting_str(g->ctx, "run_user");
		struct passwd pw, *res = NULL;
		char buf[1024];

		if (ru == NULL || *ru == '\0')
			ru = "nobody";
		if (strcmp(ru, "root") != 0) {
			if (getpwnam_r(ru, &pw, buf, sizeof(buf), &res) != 0 ||
			    res == NULL)
				return plug_fail(error_r, -ENOENT,
						 "setting run_user: no account "
						 "named \"%s\" (root: run "
						 "goaccess as root)",
						 ru);
			/* only root can drop (a daemon run unprivileged
			 * runs goaccess as itself) */
			g->drop = pw.pw_uid != 0 && geteuid() == 0;
			g->run_uid = pw.pw_uid;
			g->run_gid = pw.pw_gid;
		}
	}
	g->mem_max = (unsigned long long)g->host->setting_int(g->ctx,
							      "mem_max_mb")
		     << 20;
	g->max_procs = (unsigned)g->host->setting_int(g->ctx, "max_procs");
	g->timeout_ms =
		(unsigned)g->host->setting_int(g->ctx, "timeout_s") * 1000u;
	g->goaccess_argv = g->host->setting_list(g->ctx, "goaccess_argv");
	return 0;
}

static int ga_init(struct ophook_ctx *ctx, const struct ophook_host *host,
		   void **data_r, const char **error_r)
{
	struct ga *g;
	int ret;

	if (!OPHOOK_HOST_HAS(host, setting_is_set))
		return plug_fail(error_r, -ENOTSUP,
			       "the host is too old (no settings_declare)");
	ret = host->settings_declare(ctx, ga_settings_decl,
				     sizeof(ga_settings_decl) /
					     sizeof(ga_settings_decl[0]),
				     error_r);
	if (ret != 0)
		return ret; /* a bad setting, or a check-only load */
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	g->ctx = ctx;
	g->host = host;
	g->cancel[0] = g->cancel[1] = -1;
	pthread_mutex_init(&g->lock, NULL);
	pthread_mutex_init(&g->qlock, NULL);
	pthread_cond_init(&g->qwork, NULL);
	pthread_cond_init(&g->qidle, NULL);
	g->queued = json_object();
	g->state_path = plug_fmt("%s/goaccess.json", host->state_dir(ctx));
	ret = g->state_path == NULL ? plug_fail(error_r, -ENOMEM, "out of memory")
				    : ga_settings(g, error_r);
	if (ret < 0) {
		ga_fini(g);
		return ret;
	}
	ga_state_load(g);
	ga_workdirs_clean(g);
	if (pipe2(g->cancel, O_CLOEXEC | O_NONBLOCK) < 0) {
		ret = -errno;
		ga_fini(g);
		return plug_fail(error_r, ret, "pipe: %s", strerror(-ret));
	}
	g->workers = calloc(g->max_procs, sizeof(*g->workers));
	if (g->domains == NULL || g->suspended == NULL || g->queued == NULL ||
	    g->workers == NULL) {
		ga_fini(g);
		return plug_fail(error_r, -ENOMEM, "out of memory");
	}
	for (; g->n_workers < g->max_procs; g->n_workers++) {
		ret = pthread_create(&g->workers[g->n_workers], NULL, ga_worker,
				     g);
		if (ret != 0) {
			ga_fini(g);
			return plug_fail(error_r, -ret, "cannot start a thread: %s",
				       strerror(ret));
		}
	}
	ga_schedule_load(g);
	*data_r = g;
	return 0;
}

const struct ophook_plugin ophook_plugin = {
	OPHOOK_PLUGIN_HEADER("goaccess"),
	.description = "GoAccess reports from Caddy's JSON access logs, on a "
		       "schedule and on stats.run",
	.flags = OPHOOK_PLUGIN_DECLARES_SETTINGS,
	.subscriptions = (const char *const[]){ "domain.added",
						"domain.removed",
						"user.suspended",
						"user.unsuspended",
						"stats.run", "config.changed",
						NULL },
	.init = ga_init,
	.fini = ga_fini,
	.on_event = ga_on_event,
};
