/* caddy plugin: keep Caddy serving what caddy/domains/ describes.
 *
 * Events (domain.*, user.denylist.changed) only request the coalesced
 * "reload" action; the action validates the whole config, moves every
 * domain conf that breaks it to the quarantine folder (emitting
 * domain.config_rejected with Caddy's message) and reloads Caddy once,
 * through the admin API (POST /load, text/caddyfile) or a configured argv.
 * See plugins/caddy/README.md. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "ophook/plugin.h"
#include <ophook/safe.h>
#include "../common/run.h"
#include "blame.h"

/* under the config's trees (root, paths.log), never a fixed system path */
#define CADDY_DEFAULT_CADDYFILE "${root}/caddy/Caddyfile"
#define CADDY_DEFAULT_LOG_BASE "${paths.log}/caddy/domlogs"
#define CADDY_DEFAULT_RELOAD_ARGV \
	"[\"podman\",\"exec\",\"caddy\",\"caddy\",\"reload\",\"--config\"," \
	"\"/etc/caddy/Caddyfile\"]"
#define CADDY_DEFAULT_VALIDATE_ARGV \
	"[\"caddy\",\"validate\",\"--config\",\"{caddyfile}\",\"--adapter\"," \
	"\"caddyfile\"]"
#define CADDY_CADDYFILE_MAX (16u * 1024u * 1024u)
#define CADDY_MSG_MAX 2048
#define CADDY_ACTION "reload"

struct caddy {
	struct ophook_ctx *ctx;
	const struct ophook_host *host;
	/* caddy validate/reload on customer confs: dies with the daemon,
	 * killed at stop, bounded (caddy_run_opts) */
	struct run_opts run_lim;

	/* settings, read-only after init */
	char *caddyfile;  /* paths: copies without a trailing slash */
	char *domains_dir;
	char *quarantine_dir;
	char *log_base;
	/* owned by the host until fini */
	const char *admin; /* "127.0.0.1:2019", "http://h:p", "unix//path" */
	const char *const *reload_argv;
	const char *const *validate_argv; /* NULL: no separate validation */
	unsigned window_ms;
	unsigned timeout_ms;
	unsigned max_rounds;
	bool remove_logs;
	bool validate_first; /* else validate_argv only bisects a refused load */

	/* set by on_event for changes the fingerprint cannot see */
	bool force; /* __atomic */

	/* action state (one action runs at a time) */
	uint64_t loaded_fp; /* fingerprint of the last good reload, 0: none */
	struct blame_set *good; /* the confs Caddy last accepted, NULL: none */
	char *good_path;	/* <state_dir>/lastgood.json, NULL: not kept */
	unsigned long skipped;
	unsigned long reloads;
	unsigned long reload_failures;
	unsigned long rejected;
	bool validate_missing_logged;
};

static _Thread_local char caddy_errbuf[512];

static const char *caddy_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *caddy_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(caddy_errbuf, sizeof(caddy_errbuf), fmt, ap);
	va_end(ap);
	return caddy_errbuf;
}

static int64_t caddy_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- settings ---- */

/* plugins.caddy.settings (README "Settings"); the host checks them. */
static const struct ophook_setting_decl caddy_settings_decl[] = {
	{ .name = "caddyfile", .type = OPHOOK_SETTING_PATH,
	  .def = CADDY_DEFAULT_CADDYFILE,
	  .description = "the main Caddyfile, read and POSTed to the admin API" },
	{ .name = "domains_dir", .type = OPHOOK_SETTING_PATH,
	  .description = "the folder the Caddyfile imports (default "
			 "<root>/caddy/domains)" },
	{ .name = "quarantine_dir", .type = OPHOOK_SETTING_PATH,
	  .description = "where rejected confs go (default "
			 "<domains_dir>.rejected)" },
	{ .name = "admin", .type = OPHOOK_SETTING_STRING,
	  .description = "admin API: host:port, http://host:port or "
			 "unix//path; unset: reload_argv" },
	{ .name = "reload_argv", .type = OPHOOK_SETTING_ARGV,
	  .def = CADDY_DEFAULT_RELOAD_ARGV,
	  .description = "reload command when admin is unset (no shell)" },
	{ .name = "validate_argv", .type = OPHOOK_SETTING_ARGV,
	  .def = CADDY_DEFAULT_VALIDATE_ARGV,
	  .description = "validate command ({caddyfile}), none: no "
			 "separate validation" },
	{ .name = "validate_first", .type = OPHOOK_SETTING_BOOL, .def = "true",
	  .description = "validate before every reload" },
	{ .name = "window_ms", .type = OPHOOK_SETTING_MS, .def = "500",
	  .min = 0, .max = 3600000,
	  .description = "coalescing window: events inside it give one reload" },
	{ .name = "timeout_ms", .type = OPHOOK_SETTING_MS, .def = "120000",
	  .min = 0, .max = 3600000,
	  .description = "limit for each command and admin API call" },
	{ .name = "max_rounds", .type = OPHOOK_SETTING_INT, .def = "32",
	  .min = 0, .max = 10000,
	  .description = "confs quarantined per action before it yields" },
	{ .name = "log_base", .type = OPHOOK_SETTING_PATH,
	  .def = CADDY_DEFAULT_LOG_BASE,
	  .description = "per-domain log folders are <log_base>/<domain>/" },
	{ .name = "remove_logs", .type = OPHOOK_SETTING_BOOL, .def = "false",
	  .description = "on domain.removed, remove <log_base>/<domain>/" },
};

/* A copy of path without its trailing slashes ("/" stays). */
static char *caddy_path_dup(const char *path)
{
	char *p = strdup(path);
	size_t len;

	if (p == NULL)
		return NULL;
	len = strlen(p);
	while (len > 1 && p[len - 1] == '/')
		p[--len] = '\0';
	return p;
}

/* A command, or NULL when it is the single word "none" or "false" (no
 * separate validation). */
static const char *const *caddy_argv_or_off(const char *const *argv)
{
	if (argv != NULL && argv[0] != NULL && argv[1] == NULL &&
	    (strcmp(argv[0], "none") == 0 || strcmp(argv[0], "false") == 0))
		return NULL;
	return argv;
}

static void caddy_free(struct caddy **cp)
{
	struct caddy *c = *cp;

	if (c == NULL)
		return;
	free(c->caddyfile);
	free(c->domains_dir);
	free(c->quarantine_dir);
	free(c->log_base);
	free(c->good_path);
	blame_set_free(&c->good);
	free(c);
	*cp = NULL;
}

/* Read the checked settings into c; the checks the host cannot make
 * (admin's characters, quarantine_dir != domains_dir) are made here. */
static int caddy_settings(struct caddy *c, const char **error_r)
{
	const struct ophook_host *h = c->host;
	const char *root = h->root(c->ctx), *v;
	char *def = NULL;

	if (root == NULL)
		root = "/etc/openpanel";
	c->caddyfile = caddy_path_dup(h->setting_str(c->ctx, "caddyfile"));
	c->log_base = caddy_path_dup(h->setting_str(c->ctx, "log_base"));
	v = h->setting_str(c->ctx, "domains_dir");
	if (v != NULL)
		c->domains_dir = caddy_path_dup(v);
	else if (asprintf(&def, "%s/caddy/domains", root) >= 0) {
		c->domains_dir = caddy_path_dup(def);
		free(def);
	}
	if (c->caddyfile == NULL || c->log_base == NULL ||
	    c->domains_dir == NULL)
		goto nomem;
	v = h->setting_str(c->ctx, "quarantine_dir");
	if (v != NULL)
		c->quarantine_dir = caddy_path_dup(v);
	else if (asprintf(&def, "%s.rejected", c->domains_dir) >= 0) {
		c->quarantine_dir = def;
		def = NULL;
	}
	if (c->quarantine_dir == NULL)
		goto nomem;
	if (strcmp(c->quarantine_dir, c->domains_dir) == 0) {
		*error_r = "setting quarantine_dir: must differ from domains_dir";
		return -EINVAL;
	}
	c->admin = h->setting_str(c->ctx, "admin");
	if (c->admin != NULL && c->admin[0] == '\0')
		c->admin = NULL;
	if (c->admin != NULL && strpbrk(c->admin, " \t\r\n\"'<>\\") != NULL) {
		*error_r = "setting admin: must be host:port, http://host:port "
			   "or unix//path";
		return -EINVAL;
	}
	/* reload_argv is used when admin is not set (or set both). */
	if (c->admin == NULL || h->setting_is_set(c->ctx, "reload_argv"))
		c->reload_argv = h->setting_list(c->ctx, "reload_argv");
	c->validate_argv =
		caddy_argv_or_off(h->setting_list(c->ctx, "validate_argv"));
	c->window_ms = (unsigned)h->setting_int(c->ctx, "window_ms");
	c->timeout_ms = (unsigned)h->setting_int(c->ctx, "timeout_ms");
	c->max_rounds = (unsigned)h->setting_int(c->ctx, "max_rounds");
	if (c->max_rounds == 0)
		c->max_rounds = 1;
	c->remove_logs = h->setting_bool(c->ctx, "remove_logs");
	c->validate_first = h->setting_bool(c->ctx, "validate_first");
	return 0;
nomem:
	*error_r = "out of memory";
	return -ENOMEM;
}

/* ---- small file helpers ---- */

/* Remove a folder tree under dirfd without following symlinks. */
static int caddy_rmtree_at(int dirfd, const char *name)
{
	int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d;
	struct dirent *de;
	int ret = 0;

	if (fd < 0) {
		if (errno == ENOTDIR || errno == ELOOP)
			return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
		return errno == ENOENT ? 0 : -errno;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -errno;
	}
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_type == DT_DIR || de->d_type == DT_UNKNOWN) {
			int r = caddy_rmtree_at(fd, de->d_name);

			if (r < 0 && ret == 0)
				ret = r;
		} else if (unlinkat(fd, de->d_name, 0) < 0 && ret == 0) {
			ret = -errno;
		}
	}
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && ret == 0)
		ret = -errno;
	return ret;
}

/* Domain from the event: field "domain", else the subject; validated. */
static int caddy_event_domain(struct caddy *c, const struct ophook_event *ev,
			      const char **domain_r, const char **error_r)
{
	const char *d = c->host->event_get(ev, "domain");
	const char *field = "domain";
	const char *why = NULL;

	if (d == NULL) {
		d = ev->subject;
		field = "subject";
	}
	if (d == NULL || !ophook_name_valid_domain(d, &why)) {
		*error_r = caddy_err("%s event %lld: field \"%s\": not a valid "
				     "domain name (%s)", ev->type,
				     (long long)ev->id, field,
				     why != NULL ? why : "missing");
		return -EINVAL;
	}
	*domain_r = d;
	return 0;
}

/* <log_base>/<domain>/, made when missing.  Caddy writes there and the
 * folder may be shared with the domain's owner: it is opened (or made)
 * with O_NOFOLLOW below log_base, so a symlink planted as it is refused,
 * never followed by root. */
static int caddy_log_dir_create(struct caddy *c, const char *domain,
				const char **error_r)
{
	struct stat st;
	size_t bad = 0;
	int fd = -1, ret;
	char *path = NULL;

	if (asprintf(&path, "%s/%s", c->log_base, domain) < 0)
		return -ENOMEM;
	bool existed = lstat(path, &st) == 0;

	ret = ophook_dir_open_under(c->log_base, domain, OPHOOK_DIR_CREATE,
				    0755, &fd, &bad);
	if (ret == 0) {
		close(fd);
		if (!existed)
			c->host->log(c->ctx, OPHOOK_LOG_DEBUG,
				     "created log folder %s", path);
	} else {
		*error_r = caddy_err("log folder for %s under %s (setting "
				     "log_base): %s: %s", domain, c->log_base,
				     bad > 0 ? path : c->log_base,
				     ret == -ELOOP ? "a symlink, refused"
						   : strerror(-ret));
	}
	free(path);
	return ret;
}

static int caddy_log_dir_remove(struct caddy *c, const char *domain,
				const char **error_r)
{
	int dfd = open(c->log_base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int ret;

	if (dfd < 0)
		return errno == ENOENT ? 0 : -errno;
	ret = caddy_rmtree_at(dfd, domain);
	close(dfd);
	if (ret < 0)
		*error_r = caddy_err("removing logs of %s under %s: %s", domain,
				     c->log_base, strerror(-ret));
	else
		c->host->log(c->ctx, OPHOOK_LOG_INFO, "removed logs of %s", domain);
	return ret;
}

/* A stale quarantined conf of a removed domain goes too (unlinkat in the
 * quarantine folder's descriptor: nothing is followed). */
static void caddy_quarantine_forget(struct caddy *c, const char *domain)
{
	char *path = NULL, *name = NULL, *ename = NULL;
	int qfd = open(c->quarantine_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (qfd < 0)
		return;
	if (asprintf(&name, "%s.conf", domain) < 0)
		name = NULL;
	if (asprintf(&ename, "%s.conf.error", domain) < 0)
		ename = NULL;
	if (asprintf(&path, "%s/%s.conf", c->quarantine_dir, domain) < 0)
		path = NULL;
	if (name != NULL && ename != NULL && path != NULL &&
	    faccessat(qfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		c->host->own_write(c->ctx, path);
		if (unlinkat(qfd, name, 0) == 0)
			c->host->log(c->ctx, OPHOOK_LOG_INFO,
				     "removed quarantined %s (domain removed)", path);
	}
	if (ename != NULL)
		(void)unlinkat(qfd, ename, 0);
	close(qfd);
	free(path);
	free(name);
	free(ename);
}


/* ---- Caddy messages ---- */

/* The useful part of Caddy's output: the last "Error: " line, else the
 * last non-empty line that is not a JSON log line; capped. */
static char *caddy_message(const char *err, const char *out)
{
	const char *best = NULL, *best_end = NULL;
	const char *srcs[2] = { err, out };

	for (int s = 0; s < 2 && best == NULL; s++) {
		const char *p = srcs[s], *last = NULL, *last_end = NULL;

		while (p != NULL && *p != '\0') {
			const char *e = strchrnul(p, '\n');

			if (strncmp(p, "Error: ", 7) == 0) {
				best = p + 7;
				best_end = e;
			} else if (e > p && p[0] != '{') {
				last = p;
				last_end = e;
			}
			p = *e != '\0' ? e + 1 : e;
		}
		if (best == NULL && last != NULL) {
			best = last;
			best_end = last_end;
		}
	}
	if (best == NULL)
		return strdup("(no message from caddy)");
	while (best_end > best && isspace((unsigned char)best_end[-1]))
		best_end--;
	size_t len = (size_t)(best_end - best);

	if (len > CADDY_MSG_MAX)
		len = CADDY_MSG_MAX;
	return strndup(best, len);
}

/* ---- running Caddy ---- */

/* host->stopping(), for run_opts.cancel. */
static bool caddy_cancel(void *arg)
{
	struct caddy *c = arg;

	return OPHOOK_HOST_HAS(c->host, stopping) && c->host->stopping(c->ctx);
}

/* Caddy is a Go program: it reserves far more address space than it uses
 * (under 2 GiB it does not start), hence the wide RLIMIT_AS.  It keeps
 * the daemon's uid: it must read the Caddyfile's imports. */
#define CADDY_RUN_AS_BYTES (4ull << 30)
#define CADDY_RUN_CPU_S 120u

static void caddy_run_opts(struct caddy *c)
{
	c->run_lim = (struct run_opts){ .mem_max = CADDY_RUN_AS_BYTES,
					.cpu_max_s = CADDY_RUN_CPU_S,
					.cancel = caddy_cancel,
					.cancel_arg = c };
}

/* Run a command with {caddyfile} replaced.  0 when it exited 0; 1 when it
 * ran and failed (*msg_r set); -errno when it could not run (*msg_r set). */
static int caddy_run(struct caddy *c, const char *const *argv_tmpl,
		     const char *caddyfile, char **msg_r)
{
	char **argv = argv_dup(argv_tmpl);
	char *out = NULL, *err = NULL;
	const char *error = NULL;
	int status = 0, ret;

	*msg_r = NULL;
	if (argv == NULL || argv_subst(argv, "{caddyfile}", caddyfile) < 0) {
		argv_free(&argv);
		*msg_r = strdup("out of memory");
		return -ENOMEM;
	}
	ret = run_argv_ex((const char *const *)argv, &c->run_lim, NULL,
			  c->timeout_ms, &out, &err, &status, &error);
	if (ret < 0 && ret != -ETIMEDOUT) {
		*msg_r = strdup(error);
	} else if (ret == -ETIMEDOUT) {
		*msg_r = strdup(error);
		ret = 1;
	} else if (status != 0) {
		*msg_r = caddy_message(err, out);
		ret = 1;
	}
	free(out);
	free(err);
	argv_free(&argv);
	return ret;
}

struct caddy_body {
	char *data;
	size_t len;
};

static size_t caddy_curl_write(char *ptr, size_t size, size_t n, void *ud)
{
	struct caddy_body *b = ud;
	size_t add = size * n;

	if (b->len + add > 65536)
		return add; /* enough to report */
	char *p = realloc(b->data, b->len + add + 1);

	if (p == NULL)
		return 0;
	memcpy(p + b->len, ptr, add);
	b->len += add;
	p[b->len] = '\0';
	b->data = p;
	return add;
}

/* POST the Caddyfile to the admin API's /load.  0 done, 1 refused by Caddy
 * (*msg_r: its error), -errno could not talk to it (*msg_r). */
static int caddy_admin_load(struct caddy *c, char **msg_r)
{
	struct caddy_body body = { 0 };
	struct curl_slist *hdrs = NULL;
	char *caddyfile = NULL, *url = NULL;
	size_t len = 0;
	long code = 0;
	CURL *curl;
	CURLcode cc;
	int ret;

	*msg_r = NULL;
	ret = ophook_file_read_nofollow(c->caddyfile, CADDY_CADDYFILE_MAX,
					&caddyfile, &len);
	if (ret < 0) {
		if (asprintf(msg_r, "reading %s (setting caddyfile): %s",
			     c->caddyfile, strerror(-ret)) < 0)
			*msg_r = NULL;
		return ret;
	}
	curl = curl_easy_init();
	if (curl == NULL) {
		free(caddyfile);
		*msg_r = strdup("curl_easy_init failed");
		return -ENOMEM;
	}
	if (strncmp(c->admin, "unix/", 5) == 0) {
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->admin + 5);
		ret = asprintf(&url, "http://localhost/load");
	} else if (strncmp(c->admin, "http://", 7) == 0 ||
		   strncmp(c->admin, "https://", 8) == 0) {
		ret = asprintf(&url, "%s/load", c->admin);
	} else {
		ret = asprintf(&url, "http://%s/load", c->admin);
	}
	if (ret < 0) {
		curl_easy_cleanup(curl);
		free(caddyfile);
		*msg_r = strdup("out of memory");
		return -ENOMEM;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: text/caddyfile");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_POST, 1L);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, caddyfile);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, caddy_curl_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = curl_easy_perform(curl);
	if (cc != CURLE_OK) {
		if (asprintf(msg_r, "admin API %s: %s", url, curl_easy_strerror(cc)) < 0)
			*msg_r = NULL;
		ret = -EIO;
	} else {
		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
		ret = code >= 200 && code < 300 ? 0 : 1;
		if (ret == 1) {
			json_t *j = body.data != NULL ? json_loads(body.data, 0, NULL) : NULL;
			const char *e = json_string_value(json_object_get(j, "error"));

			if (e != NULL)
				*msg_r = strndup(e, CADDY_MSG_MAX);
			else if (asprintf(msg_r, "admin API %s: HTTP %ld: %.*s", url,
					  code, CADDY_MSG_MAX,
					  body.data != NULL ? body.data : "") < 0)
				*msg_r = NULL;
			json_decref(j);
		}
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	free(url);
	free(body.data);
	free(caddyfile);
	return ret;
}

/* Reload Caddy: 0 done, 1 Caddy refused (*msg_r), -errno (*msg_r). */
static int caddy_reload(struct caddy *c, char **msg_r)
{
	if (c->admin != NULL)
		return caddy_admin_load(c, msg_r);
	return caddy_run(c, c->reload_argv, c->caddyfile, msg_r);
}

/* Validate the config at `caddyfile`: 0 valid, 1 invalid (*msg_r), -errno
 * when the validator cannot run (*msg_r). */
static int caddy_validate(struct caddy *c, const char *caddyfile, char **msg_r)
{
	*msg_r = NULL;
	if (c->validate_argv == NULL)
		return -ENOSYS;
	return caddy_run(c, c->validate_argv, caddyfile, msg_r);
}

/* ---- validating subsets of the domain confs, for the blame ---- */

/* The domain import line of the Caddyfile: "import DIR/GLOB" where DIR
 * ends with the same folder name as domains_dir.  Sets *start_r and *end_r to
 * the line, *dir_r (malloc'd) and *glob_r (malloc'd). */
static bool caddy_find_import(struct caddy *c, const char *text,
			      const char **start_r, const char **end_r,
			      char **dir_r, char **glob_r)
{
	const char *dbase = strrchr(c->domains_dir, '/') + 1;

	for (const char *p = text; *p != '\0';) {
		const char *e = strchrnul(p, '\n');
		const char *q = p;

		while (q < e && (*q == ' ' || *q == '\t'))
			q++;
		if (e - q > 7 && strncmp(q, "import", 6) == 0 &&
		    (q[6] == ' ' || q[6] == '\t')) {
			const char *a = q + 6, *ae;

			while (a < e && (*a == ' ' || *a == '\t'))
				a++;
			ae = a;
			while (ae < e && !isspace((unsigned char)*ae))
				ae++;
			const char *slash = NULL;

			for (const char *s = a; s < ae; s++) {
				if (*s == '/')
					slash = s;
			}
			if (slash != NULL && memchr(slash, '*', (size_t)(ae - slash)) != NULL) {
				const char *db = slash;

				while (db > a && db[-1] != '/')
					db--;
				if ((size_t)(slash - db) == strlen(dbase) &&
				    strncmp(db, dbase, (size_t)(slash - db)) == 0) {
					*start_r = p;
					*end_r = e;
					*dir_r = strndup(a, (size_t)(slash - a));
					*glob_r = strndup(slash + 1, (size_t)(ae - slash - 1));
					return *dir_r != NULL && *glob_r != NULL;
				}
			}
		}
		p = *e != '\0' ? e + 1 : e;
	}
	return false;
}

/* The main Caddyfile and its domain import line, for scanning the confs
 * Caddy imports and validating subsets of them. */
struct caddy_imports {
	char *text;		/* the Caddyfile */
	const char *start, *end; /* its import line, when found */
	char *dir;		/* the import's folder as Caddy names it */
	char *glob;		/* the import's file pattern ("*.conf") */
	char *dir_abs;		/* dir, made absolute from the Caddyfile's */
	bool found;
};

static void caddy_imports_free(struct caddy_imports *im)
{
	free(im->text);
	free(im->dir);
	free(im->glob);
	free(im->dir_abs);
	memset(im, 0, sizeof(*im));
}

/* Read the Caddyfile and find its import line; without one the confs are
 * the *.conf files of domains_dir and no subset can be validated.  0 or -errno. */
static int caddy_imports_load(struct caddy *c, struct caddy_imports *im)
{
	size_t len;
	int ret;

	memset(im, 0, sizeof(*im));
	ret = ophook_file_read_nofollow(c->caddyfile, CADDY_CADDYFILE_MAX,
					&im->text, &len);
	if (ret < 0)
		return ret;
	im->found = caddy_find_import(c, im->text, &im->start, &im->end,
				      &im->dir, &im->glob);
	if (!im->found) {
		free(im->dir);
		free(im->glob);
		im->dir = NULL;
		im->glob = strdup("*.conf");
		return im->glob != NULL ? 0 : -ENOMEM;
	}
	if (im->dir[0] == '/')
		im->dir_abs = strdup(im->dir);
	else if (asprintf(&im->dir_abs, "%.*s/%s",
			  (int)(strrchr(c->caddyfile, '/') - c->caddyfile),
			  c->caddyfile, im->dir) < 0)
		im->dir_abs = NULL;
	return im->dir_abs != NULL ? 0 : -ENOMEM;
}

/* The confs Caddy imports now, marked against the last good set. */
static int caddy_scan(struct caddy *c, const struct caddy_imports *im,
		      struct blame_set **cur_r, const char **error_r)
{
	int ret = blame_scan(c->domains_dir, im->glob, cur_r, error_r);

	if (ret == 0)
		blame_mark_changed(*cur_r, c->good);
	return ret;
}

struct caddy_subset {
	struct caddy *c;
	const struct caddy_imports *im;
	const struct blame_set *cur;
	char *tmp_path;
};

/* blame_validate_fn: validate the Caddyfile with its import line replaced
 * by one import per included conf, written beside it (the same folder, so
 * relative paths in it mean the same). */
static int caddy_subset_validate(void *ud, const bool *include, char **msg_r)
{
	struct caddy_subset *s = ud;
	const struct caddy_imports *im = s->im;
	size_t cap = strlen(im->text) + 64;
	char *buf, *o;
	int ret;

	*msg_r = NULL;
	for (size_t i = 0; i < s->cur->n; i++)
		cap += strlen(im->dir) + strlen(s->cur->confs[i].name) + 16;
	buf = malloc(cap);
	if (buf == NULL)
		return -ENOMEM;
	o = buf;
	memcpy(o, im->text, (size_t)(im->start - im->text));
	o += im->start - im->text;
	for (size_t i = 0; i < s->cur->n; i++) {
		if (include[i])
			o += sprintf(o, "import \"%s/%s\"\n", im->dir,
				     s->cur->confs[i].name);
	}
	strcpy(o, im->end);
	s->c->host->own_write(s->c->ctx, s->tmp_path);
	ret = ophook_file_write_atomic(s->tmp_path, buf, strlen(buf), 0600);
	free(buf);
	if (ret < 0)
		return ret;
	return caddy_validate(s->c, s->tmp_path, msg_r);
}

/* ---- quarantine ---- */

/* Move name from the folder sfd to the folder dfd (renameat; across file
 * systems a copy made in dfd, then unlinkat in sfd). */
static int caddy_move(int sfd, int dfd, const char *name)
{
	char *data = NULL;
	size_t len;
	int ret;

	if (renameat(sfd, name, dfd, name) == 0)
		return 0;
	if (errno != EXDEV)
		return -errno;
	ret = ophook_file_read_at(sfd, name, CADDY_CADDYFILE_MAX, &data, &len);
	if (ret == 0)
		ret = ophook_file_write_atomic_at(dfd, name, data, len, 0644,
						  (uid_t)-1, (gid_t)-1);
	if (ret == 0 && unlinkat(sfd, name, 0) < 0)
		ret = -errno;
	free(data);
	return ret;
}

/* Move domains_dir/name to the quarantine and emit domain.config_rejected
 * with msg; how, and for a duplicate site address the address and the
 * path of the conf that keeps it (owner), go in the event too (NULL:
 * left out).  0 or -errno (logged). */
static int caddy_quarantine(struct caddy *c, const char *name, const char *msg,
			    const char *how, const char *address,
			    const char *owner)
{
	char *from = NULL, *to = NULL, *epath = NULL, *domain = NULL;
	char *ename = NULL;
	const char *why = NULL, *error = NULL;
	json_t *fields;
	char *fj;
	int ret, qfd = -1, sfd = -1;

	if (asprintf(&from, "%s/%s", c->domains_dir, name) < 0)
		from = NULL;
	if (asprintf(&to, "%s/%s", c->quarantine_dir, name) < 0)
		to = NULL;
	if (asprintf(&epath, "%s/%s.error", c->quarantine_dir, name) < 0)
		epath = NULL;
	if (asprintf(&ename, "%s.error", name) < 0)
		ename = NULL;
	domain = strdup(name);
	if (from == NULL || to == NULL || epath == NULL || domain == NULL ||
	    ename == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	if (strlen(domain) > 5 && strcmp(domain + strlen(domain) - 5, ".conf") == 0)
		domain[strlen(domain) - 5] = '\0';
	ret = ophook_dir_open_under(c->quarantine_dir, "", OPHOOK_DIR_CREATE,
				    0755, &qfd, NULL);
	if (ret < 0) {
		c->host->log(c->ctx, OPHOOK_LOG_ERROR,
			     "quarantine folder %s (setting quarantine_dir): %s",
			     c->quarantine_dir, strerror(-ret));
		goto out;
	}
	sfd = open(c->domains_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sfd < 0 || strchr(name, '/') != NULL) {
		ret = sfd < 0 ? -errno : -EINVAL;
		c->host->log(c->ctx, OPHOOK_LOG_ERROR, "moving %s to %s: %s", from,
			     to, strerror(-ret));
		goto out;
	}
	c->host->own_write(c->ctx, from);
	c->host->own_write(c->ctx, to);
	c->host->own_write(c->ctx, epath);
	ret = caddy_move(sfd, qfd, name);
	if (ret < 0) {
		c->host->log(c->ctx, OPHOOK_LOG_ERROR, "moving %s to %s: %s", from,
			     to, strerror(-ret));
		goto out;
	}
	if (ename != NULL)
		(void)ophook_file_write_atomic_at(qfd, ename, msg, strlen(msg),
						  0644, (uid_t)-1, (gid_t)-1);
	c->rejected++;
	c->host->log(c->ctx, OPHOOK_LOG_WARN,
		     "rejected %s (moved to %s): %s", from, to, msg);

	bool valid = ophook_name_valid_domain(domain, &why);

	fields = json_pack("{s:s, s:s, s:s}", "path", from, "quarantined", to,
			   "error", msg);
	if (fields != NULL && valid)
		json_object_set_new(fields, "domain", json_string(domain));
	if (fields != NULL && how != NULL)
		json_object_set_new(fields, "blame", json_string(how));
	if (fields != NULL && address != NULL)
		json_object_set_new(fields, "address", json_string(address));
	if (fields != NULL && owner != NULL)
		json_object_set_new(fields, "owner", json_string(owner));
	fj = fields != NULL ? json_dumps(fields, JSON_COMPACT) : NULL;
	json_decref(fields);
	if (fj == NULL ||
	    c->host->emit(c->ctx, "domain.config_rejected", valid ? domain : "caddy",
			  fj, &error) < 0)
		c->host->log(c->ctx, OPHOOK_LOG_ERROR,
			     "cannot emit domain.config_rejected for %s: %s", from,
			     error != NULL ? error : "out of memory");
	free(fj);
out:
	if (qfd >= 0)
		close(qfd);
	if (sfd >= 0)
		close(sfd);
	free(from);
	free(to);
	free(epath);
	free(ename);
	free(domain);
	return ret;
}

/* ---- fingerprint of the inputs, to skip reloads that change nothing ---- */

static uint64_t caddy_fnv(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* A hash of the Caddyfile's text and of every entry of domains_dir (name,
 * inode, size, mtime, ctime), independent of readdir order.  0 when
 * something cannot be read (never equal: always reload then). */
static uint64_t caddy_fingerprint(struct caddy *c)
{
	uint64_t h = 0xcbf29ce484222325ull, sum = 0, count = 0;
	char *text = NULL;
	size_t len = 0;
	DIR *d;
	struct dirent *de;

	if (ophook_file_read_nofollow(c->caddyfile, CADDY_CADDYFILE_MAX, &text,
				      &len) < 0)
		return 0;
	h = caddy_fnv(h, text, len);
	free(text);
	d = opendir(c->domains_dir);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		uint64_t e = 0xcbf29ce484222325ull;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			closedir(d);
			return 0;
		}
		e = caddy_fnv(e, de->d_name, strlen(de->d_name) + 1);
		e = caddy_fnv(e, &st.st_ino, sizeof(st.st_ino));
		e = caddy_fnv(e, &st.st_size, sizeof(st.st_size));
		e = caddy_fnv(e, &st.st_mtim, sizeof(st.st_mtim));
		e = caddy_fnv(e, &st.st_ctim, sizeof(st.st_ctim));
		sum += e;
		count++;
	}
	closedir(d);
	h = caddy_fnv(h, &sum, sizeof(sum));
	h = caddy_fnv(h, &count, sizeof(count));
	return h != 0 ? h : 1;
}

/* ---- the coalesced action ---- */

static void caddy_write_stats(struct caddy *c, int64_t last_ms, bool ok)
{
	const char *dir = c->host->state_dir(c->ctx);
	char *path = NULL, *text = NULL;

	if (dir == NULL || asprintf(&path, "%s/stats.json", dir) < 0)
		return;
	if (asprintf(&text,
		     "{\"reloads\":%lu,\"reload_failures\":%lu,\"rejected\":%lu,"
		     "\"skipped\":%lu,\"last_ms\":%lld,\"last_ok\":%s}\n",
		     c->reloads, c->reload_failures, c->rejected, c->skipped,
		     (long long)last_ms, ok ? "true" : "false") >= 0)
		(void)ophook_file_write_atomic(path, text, strlen(text), 0644);
	free(text);
	free(path);
}

static const char *const caddy_blame_how[] = {
	[BLAME_DUPLICATE] = "duplicate",
	[BLAME_MESSAGE] = "message",
	[BLAME_MESSAGE_UNCONFIRMED] = "message-unconfirmed",
	[BLAME_NEWEST] = "newest",
	[BLAME_BISECT] = "bisection",
};

/* Quarantine the conf a failure blames (README "Blame"): only confs new
 * or changed since the last good set; may_validate: subsets may be
 * validated to confirm it; full_fails: msg came from validating the whole
 * config.  Returns true when one was moved. */
static bool caddy_blame(struct caddy *c, const char *msg, bool may_validate,
			bool full_fails)
{
	struct caddy_imports im;
	struct caddy_subset sub = { .c = c, .im = &im };
	struct blame_set *cur = NULL;
	struct blame_result res;
	const char *prefixes[3] = { c->domains_dir, NULL, NULL };
	const char *error = NULL;
	char *why = NULL;
	bool moved = false;
	int ret;

	ret = caddy_imports_load(c, &im);
	if (ret < 0) {
		c->host->log(c->ctx, OPHOOK_LOG_ERROR, "reading %s (setting "
			     "caddyfile): %s", c->caddyfile, strerror(-ret));
		return false;
	}
	if (caddy_scan(c, &im, &cur, &error) < 0) {
		c->host->log(c->ctx, OPHOOK_LOG_ERROR, "%s", error);
		goto out;
	}
	if (im.found) {
		prefixes[1] = im.dir_abs;
		bool has_token = false;

		for (const char *const *a = c->validate_argv;
		     a != NULL && *a != NULL; a++)
			has_token |= strstr(*a, "{caddyfile}") != NULL;
		char *slash = strrchr(c->caddyfile, '/');

		if (may_validate && has_token &&
		    asprintf(&sub.tmp_path, "%.*s/.ophook-caddy-bisect.Caddyfile",
			     (int)(slash - c->caddyfile), c->caddyfile) < 0)
			sub.tmp_path = NULL;
	}
	sub.cur = cur;
	ret = blame_find(cur, c->good, msg, prefixes,
			 sub.tmp_path != NULL ? caddy_subset_validate : NULL,
			 &sub, full_fails, &res, &error);
	if (sub.tmp_path != NULL)
		unlink(sub.tmp_path);
	if (ret < 0) {
		c->host->log(c->ctx, OPHOOK_LOG_ERROR, "no domain conf to blame "
			     "for caddy's error: %s", error);
		goto out;
	}
	const struct blame_conf *cf = &cur->confs[res.conf];

	if (res.how == BLAME_DUPLICATE) {
		if (asprintf(&why, "site address %s of %s is already served by "
			     "%s, which had it first (caddy: %s)", res.addr,
			     cf->path, cur->confs[res.owner].path, msg) < 0)
			why = NULL;
	} else if (asprintf(&why, "%s", msg) < 0) {
		why = NULL;
	}
	if (why == NULL)
		goto out;
	c->host->log(c->ctx, OPHOOK_LOG_INFO, "blaming %s (%s, %u validation(s))",
		     cf->path, caddy_blame_how[res.how], res.validations);
	moved = caddy_quarantine(c, cf->name, why, caddy_blame_how[res.how],
				 res.how == BLAME_DUPLICATE ? res.addr : NULL,
				 res.how == BLAME_DUPLICATE ?
					 cur->confs[res.owner].path : NULL) == 0;
out:
	free(why);
	free(sub.tmp_path);
	blame_set_free(&cur);
	caddy_imports_free(&im);
	return moved;
}

/* The confs as they are just before a reload: what Caddy accepts if it
 * succeeds.  NULL when they cannot be read (the record is then kept). */
static struct blame_set *caddy_snapshot(struct caddy *c)
{
	struct caddy_imports im;
	struct blame_set *cur = NULL;
	const char *error = NULL;

	if (caddy_imports_load(c, &im) < 0)
		return NULL;
	if (caddy_scan(c, &im, &cur, &error) < 0)
		c->host->log(c->ctx, OPHOOK_LOG_WARN, "%s", error);
	caddy_imports_free(&im);
	return cur;
}

/* Caddy accepted snap: it is the last good set from now on, kept in the
 * state folder so that it survives a restart. */
static void caddy_good_update(struct caddy *c, struct blame_set **snapp)
{
	const char *error = NULL;

	if (*snapp == NULL)
		return;
	blame_set_free(&c->good);
	c->good = *snapp;
	*snapp = NULL;
	if (c->good_path != NULL &&
	    blame_record_save(c->good_path, c->good, &error) < 0)
		c->host->log(c->ctx, OPHOOK_LOG_ERROR, "last good set: %s", error);
}

static void caddy_action(struct ophook_ctx *ctx, void *data)
{
	struct caddy *c = data;
	int64_t t0 = caddy_mono_ms(), tv;
	unsigned rounds = 0, rejected0 = (unsigned)c->rejected;
	struct blame_set *snap = NULL;
	char *msg = NULL;
	int ret;

	(void)ctx;
	/* 0. nothing changed since the last good reload: nothing to do (a
	 * burst whose files were all in place at the first reload) */
	bool force = __atomic_exchange_n(&c->force, false, __ATOMIC_ACQ_REL);
	uint64_t fp = caddy_fingerprint(c);

	if (!force && fp != 0 && fp == c->loaded_fp) {
		c->skipped++;
		c->host->log(c->ctx, OPHOOK_LOG_DEBUG,
			     "config unchanged since reload #%lu: not reloading",
			     c->reloads);
		caddy_write_stats(c, 0, true);
		return;
	}
	/* 1. validate, quarantining what breaks it */
	for (;;) {
		if (!c->validate_first)
			break; /* the load checks it (atomically) */
		ret = caddy_validate(c, c->caddyfile, &msg);
		if (ret == 0 || ret == -ENOSYS)
			break;
		if (ret < 0) {
			if (!c->validate_missing_logged)
				c->host->log(c->ctx, OPHOOK_LOG_WARN,
					     "cannot validate (setting validate_argv): "
					     "%s; relying on the reload's own check", msg);
			c->validate_missing_logged = true;
			break;
		}
		if (++rounds > c->max_rounds) {
			c->host->log(c->ctx, OPHOOK_LOG_WARN,
				     "still invalid after %u rejected confs; "
				     "continuing in the next round", c->max_rounds);
			c->host->request_action(c->ctx, CADDY_ACTION, c->window_ms,
						caddy_action, c);
			goto out;
		}
		if (!caddy_blame(c, msg, true, true)) {
			c->reload_failures++;
			c->loaded_fp = 0; /* whatever changed is not loaded */
			c->host->log(c->ctx, OPHOOK_LOG_ERROR,
				     "config %s is invalid and no domain conf is to "
				     "blame; not reloading: %s", c->caddyfile, msg);
			caddy_write_stats(c, caddy_mono_ms() - t0, false);
			goto out;
		}
		free(msg);
		msg = NULL;
	}
	free(msg);
	msg = NULL;
	tv = caddy_mono_ms();
	if (c->rejected != rejected0)
		fp = caddy_fingerprint(c); /* domains/ changed meanwhile */

	/* 2. reload; Caddy keeps the old config when a load fails, and a
	 * refusal that names a conf (or, without validate_first, one found
	 * by bisection) quarantines it too */
	for (;;) {
		blame_set_free(&snap);
		snap = caddy_snapshot(c);
		ret = caddy_reload(c, &msg);
		if (ret == 0)
			break;
		if (ret < 0 || ++rounds > c->max_rounds ||
		    !caddy_blame(c, msg, !c->validate_first, false)) {
			c->reload_failures++;
			c->loaded_fp = 0;
			c->host->log(c->ctx, OPHOOK_LOG_ERROR, "reload failed: %s",
				     msg != NULL ? msg : "?");
			caddy_write_stats(c, caddy_mono_ms() - t0, false);
			goto out;
		}
		free(msg);
		msg = NULL;
		fp = caddy_fingerprint(c); /* without the quarantined conf */
	}
	c->reloads++;
	c->loaded_fp = fp;
	caddy_good_update(c, &snap);
	int64_t t1 = caddy_mono_ms();

	c->host->log(c->ctx, OPHOOK_LOG_INFO,
		     "reload #%lu done in %lld ms (validate %lld ms, %u conf(s) "
		     "rejected)", c->reloads, (long long)(t1 - t0),
		     (long long)(tv - t0), (unsigned)c->rejected - rejected0);
	caddy_write_stats(c, t1 - t0, true);
out:
	blame_set_free(&snap);
	free(msg);
}

/* ---- plugin callbacks ---- */

/* The last good set from the state folder.  A record that cannot be read
 * is logged and set aside: every conf then counts as changed until the
 * next good reload.  0 or -ENOMEM. */
static int caddy_good_load(struct caddy *c)
{
	const char *dir = c->host->state_dir(c->ctx), *error = NULL;

	if (dir == NULL)
		return 0;
	if (asprintf(&c->good_path, "%s/lastgood.json", dir) < 0) {
		c->good_path = NULL;
		return -ENOMEM;
	}
	if (blame_record_load(c->good_path, &c->good, &error) < 0)
		c->host->log(c->ctx, OPHOOK_LOG_WARN, "last good set: %s; every "
			     "domain conf counts as changed until the next "
			     "good reload", error);
	else if (c->good == NULL)
		c->host->log(c->ctx, OPHOOK_LOG_INFO, "no last good set yet (%s): "
			     "every domain conf counts as changed until the "
			     "first good reload", c->good_path);
	return 0;
}

static int caddy_init(struct ophook_ctx *ctx, const struct ophook_host *host,
		      void **data_r, const char **error_r)
{
	struct caddy *c;
	int ret;

	if (!OPHOOK_HOST_HAS(host, setting_is_set)) {
		*error_r = "the host is too old (no settings_declare)";
		return -ENOTSUP;
	}
	ret = host->settings_declare(ctx, caddy_settings_decl,
				     sizeof(caddy_settings_decl) /
					     sizeof(caddy_settings_decl[0]),
				     error_r);
	if (ret != 0)
		return ret; /* a bad setting, or a check-only load */
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		*error_r = "out of memory";
		return -ENOMEM;
	}
	c->ctx = ctx;
	c->host = host;
	caddy_run_opts(c);
	ret = caddy_settings(c, error_r);
	if (ret < 0) {
		caddy_free(&c);
		return ret;
	}
	ret = caddy_good_load(c);
	if (ret < 0) {
		caddy_free(&c);
		*error_r = "out of memory";
		return ret;
	}
	if (c->admin != NULL && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		caddy_free(&c);
		*error_r = "curl_global_init failed";
		return -EIO;
	}
	host->log(ctx, OPHOOK_LOG_INFO,
		  "caddyfile %s, domains %s, quarantine %s, reload via %s, "
		  "window %u ms", c->caddyfile, c->domains_dir, c->quarantine_dir,
		  c->admin != NULL ? c->admin : c->reload_argv[0], c->window_ms);
	*data_r = c;
	return 0;
}

static void caddy_fini(void *data)
{
	struct caddy *c = data;

	if (c != NULL && c->admin != NULL)
		curl_global_cleanup();
	caddy_free(&c);
}

static int caddy_on_event(void *data, const struct ophook_event *ev,
			  const char **error_r)
{
	struct caddy *c = data;
	const char *domain = NULL;
	int ret;

	if (strncmp(ev->type, "domain.", 7) == 0) {
		ret = caddy_event_domain(c, ev, &domain, error_r);
		if (ret < 0)
			return ret;
		if (strcmp(ev->type, "domain.added") == 0) {
			ret = caddy_log_dir_create(c, domain, error_r);
			if (ret < 0)
				return ret;
		} else if (strcmp(ev->type, "domain.removed") == 0) {
			caddy_quarantine_forget(c, domain);
			if (c->remove_logs) {
				ret = caddy_log_dir_remove(c, domain, error_r);
				if (ret < 0)
					return ret;
			}
		}
	}
	/* a denylist snippet is imported, not in domains/: always reload */
	if (strcmp(ev->type, "user.denylist.changed") == 0)
		__atomic_store_n(&c->force, true, __ATOMIC_RELEASE);
	ret = c->host->request_action(c->ctx, CADDY_ACTION, c->window_ms,
				      caddy_action, c);
	if (ret < 0)
		*error_r = caddy_err("cannot schedule the reload: %s", strerror(-ret));
	return ret;
}

static const char *const caddy_subscriptions[] = {
	"domain.added",
	"domain.updated",
	"domain.removed",
	"domain.suspended",
	"domain.unsuspended",
	"user.denylist.changed",
	NULL,
};

OPHOOK_EXPORT const struct ophook_plugin ophook_plugin = {
	OPHOOK_PLUGIN_HEADER("caddy"),
	.description = "validate and reload Caddy on domain changes, "
		       "quarantine broken domain confs",
	.flags = OPHOOK_PLUGIN_DECLARES_SETTINGS,
	.subscriptions = caddy_subscriptions,
	.init = caddy_init,
	.fini = caddy_fini,
	.on_event = caddy_on_event,
};
