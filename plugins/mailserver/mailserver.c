/* mailserver plugin: keeps docker-mailserver's config folder in step with
 * the panel's domains and users.
 *
 * domain.added     (mail_enabled) a DKIM key for the selector under
 *                  opendkim/keys/<d>/ (kept when it exists), KeyTable and
 *                  SigningTable lines once each, then mail.dkim.created
 *                  {domain, selector, txt} for the bind9 plugin.
 * domain.removed   the domain's accounts, aliases and catch-alls, quotas
 *                  and DKIM table lines out of their files; each changed
 *                  file backed up, rewritten atomically (owner and mode
 *                  kept), every other line byte for byte.
 * user.suspended   REJECT lines for the user's domains in
 *                  postfix-send-access.cf and postfix-receive-access.cf,
 *                  each after a marker comment "# ophook:suspended:<user>".
 * user.unsuspended those lines out again (the files come back byte for
 *                  byte).  Passwords are never touched.
 *
 * The user's domains: the event's "domains" array, else the plugin's own
 * map domain -> user (state_dir/domains.json, from domain.added's "user").
 * Events run one at a time (OPHOOK_PLUGIN_SERIAL).  reload_argv, when set,
 * runs from one coalesced action after changes. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ophook/plugin.h"
#include <ophook/safe.h>
#include "../common/plugerr.h"
#include "../common/run.h"
#include "dkim.h"
#include "mailfile.h"

#define MS_FILE_MAX (64u * 1024u * 1024u)
#define MS_RUN_TIMEOUT_MS 120000u
#define MS_REASON "Mail for this account is suspended"
#define MS_KEYS_IN_CONTAINER "/tmp/docker-mailserver/opendkim/keys"

struct ms {
	struct ophook_ctx *ctx;
	const struct ophook_host *host;
	char *config_dir;
	bool mail_enabled;
	unsigned dkim_bits;
	char *selector;
	char *keys_path; /* key path prefix written in KeyTable */
	const char *const *reload_argv; /* NULL: none; the host's until fini */
	unsigned backups_keep; /* per file */
	char *state_path;
	json_t *owners; /* domain -> user */
};

/* --- files --------------------------------------------------------------- */

/* Read path; a missing file reads as empty with *exists_r false. */
static int ms_read(const char *path, char **text_r, size_t *len_r,
		   bool *exists_r, const char **error_r)
{
	int ret = ophook_file_read_nofollow(path, MS_FILE_MAX, text_r, len_r);

	*exists_r = ret == 0;
	if (ret == -ENOENT) {
		*text_r = strdup("");
		*len_r = 0;
		return *text_r == NULL ? plug_fail(error_r, -ENOMEM, "out of memory")
				       : 0;
	}
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", path, strerror(-ret));
	return 0;
}

static int ms_strcmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Delete the oldest backups of base in the folder dfd beyond
 * backups_keep (unlinkat: nothing followed). */
static void ms_backup_prune(struct ms *m, int dfd, const char *base)
{
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dh = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	char **names = NULL, **tmp;
	size_t n = 0, blen = strlen(base);

	if (dh == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(dh)) != NULL) {
		if (strncmp(de->d_name, base, blen) != 0 ||
		    de->d_name[blen] != '.' || de->d_name[blen + 1] < '0' ||
		    de->d_name[blen + 1] > '9')
			continue;
		tmp = realloc(names, (n + 1) * sizeof(*names));
		if (tmp == NULL)
			break;
		names = tmp;
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(dh);
	if (n > 1)
		qsort(names, n, sizeof(*names), ms_strcmp);
	for (size_t i = 0; i < n; i++) {
		if (i + m->backups_keep < n)
			(void)unlinkat(dfd, names[i], 0);
		free(names[i]);
	}
	free(names);
}

/* Copy the current file to <config_dir>/ophook-backups/<name>.<stamp>
 * with its owner and mode.  The backup folder is opened (made) without
 * following a symlink and the backup made in it O_EXCL (a name planted
 * there is never written through). */
static int ms_backup(struct ms *m, const char *path, const char *text,
		     size_t len, const char **error_r)
{
	const char *base = strrchr(path, '/') != NULL ? strrchr(path, '/') + 1
						      : path;
	char stamp[32], *dir, *bak = NULL, *bname = NULL;
	struct stat st;
	time_t now = time(NULL);
	struct tm tm;
	int ret, dfd = -1;

	if (lstat(path, &st) < 0)
		return 0; /* nothing to back up */
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	dir = plug_fmt("%s/ophook-backups", m->config_dir);
	if (dir == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	ret = ophook_dir_open_under(m->config_dir, "ophook-backups",
				    OPHOOK_DIR_CREATE, 0700, &dfd, NULL);
	for (unsigned i = 0; ret == 0 && i < 1000; i++) {
		free(bname);
		bname = i == 0 ? plug_fmt("%s.%s", base, stamp)
			       : plug_fmt("%s.%s-%u", base, stamp, i);
		if (bname == NULL) {
			ret = -ENOMEM;
			break;
		}
		if (faccessat(dfd, bname, F_OK, AT_SYMLINK_NOFOLLOW) != 0)
			break;
	}
	if (ret == 0 && (bak = plug_fmt("%s/%s", dir, bname)) == NULL)
		ret = -ENOMEM;
	if (ret == 0) {
		m->host->own_write(m->ctx, bak);
		ret = ophook_file_write_atomic_at(dfd, bname, text, len,
						  st.st_mode & 07777, st.st_uid,
						  st.st_gid);
	}
	if (ret < 0)
		ret = plug_fail(error_r, ret, "backup of %s: %s%s", path,
				ret == -ELOOP ? dir : "",
				ret == -ELOOP ? ": a symlink, refused"
					      : strerror(-ret));
	else
		ms_backup_prune(m, dfd, base);
	if (dfd >= 0)
		close(dfd);
	free(bak);
	free(bname);
	free(dir);
	return ret;
}

/* Replace path's content (backup first when it existed). */
static int ms_replace(struct ms *m, const char *path, bool existed,
		      const char *old, size_t old_len, const char *text,
		      size_t len, mode_t mode, const char **error_r)
{
	int ret;

	if (existed && (ret = ms_backup(m, path, old, old_len, error_r)) < 0)
		return ret;
	m->host->own_write(m->ctx, path);
	ret = ophook_file_write_atomic(path, text, len, mode);
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", path, strerror(-ret));
	return 0;
}

struct ms_warn {
	struct ms *m;
	const char *path;
};

static void ms_warn_line(void *arg, unsigned line, const char *why)
{
	struct ms_warn *w = arg;

	w->m->host->log(w->m->ctx, OPHOOK_LOG_WARN,
			"%s:%u: %s; line kept as it is", w->path, line, why);
}

/* Take domain's lines out of config_dir/<rel>. */
static int ms_remove_in(struct ms *m, const char *rel,
			enum mailfile_kind kind, const char *domain,
			unsigned *changed, const char **error_r)
{
	char *path = plug_fmt("%s/%s", m->config_dir, rel), *text = NULL,
	     *out = NULL;
	size_t len = 0, out_len = 0;
	unsigned removed = 0;
	bool exists;
	struct ms_warn w = { m, path };
	int ret;

	if (path == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	ret = ms_read(path, &text, &len, &exists, error_r);
	if (ret == 0 && exists) {
		ret = mailfile_remove_domain(kind, text, len, domain,
					     ms_warn_line, &w, &out, &out_len,
					     &removed);
		if (ret < 0)
			ret = plug_fail(error_r, ret, "out of memory");
	}
	if (ret == 0 && removed > 0) {
		ret = ms_replace(m, path, true, text, len, out, out_len, 0644,
				 error_r);
		if (ret == 0) {
			m->host->log(m->ctx, OPHOOK_LOG_INFO,
				     "%s: %u line(s) of %s removed", path,
				     removed, domain);
			(*changed)++;
		}
	}
	free(out);
	free(text);
	free(path);
	return ret;
}

/* --- state: domain -> user ------------------------------------------------ */

static int ms_state_save(struct ms *m, const char **error_r)
{
	char *s = json_dumps(m->owners, JSON_SORT_KEYS | JSON_INDENT(1));
	int ret;

	if (s == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	ret = ophook_file_write_atomic(m->state_path, s, strlen(s), 0600);
	free(s);
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", m->state_path,
			       strerror(-ret));
	return 0;
}

static int ms_state_load(struct ms *m, const char **error_r)
{
	json_error_t jerr;
	char *text = NULL;
	size_t len;
	int ret = ophook_file_read_nofollow(m->state_path, MS_FILE_MAX, &text,
					    &len);

	if (ret == -ENOENT) {
		m->owners = json_object();
		return m->owners == NULL ? plug_fail(error_r, -ENOMEM, "out of memory")
					 : 0;
	}
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", m->state_path,
			       strerror(-ret));
	m->owners = json_loadb(text, len, 0, &jerr);
	free(text);
	if (m->owners == NULL || !json_is_object(m->owners)) {
		m->host->log(m->ctx, OPHOOK_LOG_WARN,
			     "%s:%d: not a JSON object (%s); starting empty",
			     m->state_path, jerr.line, jerr.text);
		json_decref(m->owners);
		m->owners = json_object();
	}
	return m->owners == NULL ? plug_fail(error_r, -ENOMEM, "out of memory") : 0;
}

/* --- actions ------------------------------------------------------------- */

static void ms_reload_action(struct ophook_ctx *ctx, void *data)
{
	struct ms *m = data;
	char *out = NULL, *err = NULL;
	const char *error = NULL;
	int status = 0, ret;

	(void)ctx;
	ret = run_argv(m->reload_argv, NULL,
		       MS_RUN_TIMEOUT_MS, &out, &err, &status, &error);
	if (ret < 0 && ret != -ETIMEDOUT)
		m->host->log(m->ctx, OPHOOK_LOG_ERROR, "reload_argv: %s", error);
	else if (ret < 0 || status != 0)
		m->host->log(m->ctx, OPHOOK_LOG_ERROR,
			     "reload_argv: %s %d: %s",
			     ret < 0 ? "timed out, status" : "exit status",
			     status, err != NULL ? err : "");
	else
		m->host->log(m->ctx, OPHOOK_LOG_INFO, "reload_argv: done");
	free(out);
	free(err);
}

static void ms_reload_request(struct ms *m)
{
	if (m->reload_argv != NULL)
		m->host->request_action(m->ctx, "reload", 1000, ms_reload_action,
					m);
}

/* --- events -------------------------------------------------------------- */

/* The event's domain (field "domain", else the subject), validated and
 * lower-cased into *d_r. */
static int ms_event_domain(struct ms *m, const struct ophook_event *ev,
			   char **d_r, const char **error_r)
{
	const char *d = m->host->event_get(ev, "domain"), *why = NULL;

	if (d == NULL)
		d = ev->subject;
	if (d == NULL || !ophook_name_valid_domain(d, &why))
		return plug_fail(error_r, -EINVAL, "%s: field domain: %s",
			       ev->type, d == NULL ? "missing" : why);
	*d_r = strdup(d);
	if (*d_r == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	for (char *p = *d_r; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return 0;
}

/* Add `line` to the table file unless a line has the same key. */
static int ms_table_ensure(struct ms *m, const char *rel, const char *key,
			   const char *line, const char **error_r)
{
	char *path = plug_fmt("%s/%s", m->config_dir, rel), *text = NULL,
	     *out = NULL;
	size_t len = 0, out_len = 0;
	bool exists;
	int ret;

	if (path == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	ret = ms_read(path, &text, &len, &exists, error_r);
	if (ret == 0 && !mailfile_has_key(text, len, key)) {
		out = mailfile_append(text, len, line, &out_len);
		ret = out == NULL ? plug_fail(error_r, -ENOMEM, "out of memory")
				  : ms_replace(m, path, false, text, len, out,
					       out_len, 0644, error_r);
	}
	free(out);
	free(text);
	free(path);
	return ret;
}

/* Make sure <keys>/<d>/<sel>.private exists (generate it), rewrite
 * <sel>.txt; the TXT value in *txt_r.  The key folder is opened (made)
 * with O_NOFOLLOW per component below config_dir and both files are
 * read and written through its descriptor (O_NOFOLLOW, O_EXCL temp +
 * renameat): a symlink planted as the folder or a file is refused or
 * replaced, never followed by root. */
static int ms_dkim_key(struct ms *m, const char *d, char **txt_r,
		       const char **error_r)
{
	char *rel = plug_fmt("opendkim/keys/%s", d);
	char *dir = plug_fmt("%s/opendkim/keys/%s", m->config_dir, d);
	char *pname = plug_fmt("%s.private", m->selector);
	char *tname = plug_fmt("%s.txt", m->selector);
	char *priv = plug_fmt("%s/%s.private", dir != NULL ? dir : "", m->selector);
	char *txtp = plug_fmt("%s/%s.txt", dir != NULL ? dir : "", m->selector);
	char *pem = NULL, *b64 = NULL, *rec = NULL;
	size_t len, bad = 0;
	int ret = 0, kfd = -1;

	*txt_r = NULL;
	if (rel == NULL || dir == NULL || pname == NULL || tname == NULL ||
	    priv == NULL || txtp == NULL) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out;
	}
	ret = ophook_dir_open_under(m->config_dir, rel, OPHOOK_DIR_CREATE, 0755,
				    &kfd, &bad);
	if (ret < 0) {
		ret = plug_fail(error_r, ret, "%s: DKIM key folder %s/%.*s: %s",
				d, m->config_dir, (int)bad, rel,
				ret == -ELOOP ? "a symlink, refused"
					      : strerror(-ret));
		goto out;
	}
	ret = ophook_file_read_at(kfd, pname, 1u << 20, &pem, &len);
	if (ret == -ENOENT) {
		ret = dkim_keygen(m->dkim_bits, &pem, error_r);
		if (ret == 0) {
			m->host->own_write(m->ctx, priv);
			ret = ophook_file_write_atomic_at(kfd, pname, pem,
							  strlen(pem), 0600,
							  (uid_t)-1, (gid_t)-1);
			if (ret < 0)
				ret = plug_fail(error_r, ret, "%s: %s", priv,
					      strerror(-ret));
			else
				m->host->log(m->ctx, OPHOOK_LOG_INFO,
					     "%s: new %u-bit DKIM key", priv,
					     m->dkim_bits);
		}
	} else if (ret < 0) {
		ret = plug_fail(error_r, ret, "%s: %s: %s", d, priv,
				ret == -ELOOP ? "a symlink, refused"
				: ret == -EINVAL ? "not a regular file, refused"
						 : strerror(-ret));
	}
	if (ret < 0)
		goto out;
	if ((ret = dkim_pubkey_b64(pem, &b64, error_r)) < 0) {
		ret = plug_fail(error_r, ret, "%s: %s", priv, *error_r);
		goto out;
	}
	rec = dkim_txt_record(m->selector, d, b64);
	*txt_r = dkim_txt_value(b64);
	if (rec == NULL || *txt_r == NULL) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out;
	}
	m->host->own_write(m->ctx, txtp);
	ret = ophook_file_write_atomic_at(kfd, tname, rec, strlen(rec), 0644,
					  (uid_t)-1, (gid_t)-1);
	if (ret < 0)
		ret = plug_fail(error_r, ret, "%s: %s", txtp, strerror(-ret));
out:
	if (ret < 0) {
		free(*txt_r);
		*txt_r = NULL;
	}
	if (kfd >= 0)
		close(kfd);
	if (pem != NULL)
		memset(pem, 0, strlen(pem));
	free(pem);
	free(b64);
	free(rec);
	free(txtp);
	free(priv);
	free(tname);
	free(pname);
	free(dir);
	free(rel);
	return ret;
}

static int ms_domain_added(struct ms *m, const struct ophook_event *ev,
			   const char *d, const char **error_r)
{
	const char *user = m->host->event_get(ev, "user"), *why = NULL;
	char *txt = NULL, *key = NULL, *kline = NULL, *skey = NULL,
	     *sline = NULL, *fields = NULL;
	json_t *obj = NULL;
	int ret;

	if (user != NULL && *user != '\0') {
		if (!ophook_name_valid_user(user, &why))
			return plug_fail(error_r, -EINVAL,
				       "%s: field user: %s", ev->type, why);
		json_t *cur = json_object_get(m->owners, d);

		if (!json_is_string(cur) ||
		    strcmp(json_string_value(cur), user) != 0) {
			json_object_set_new(m->owners, d, json_string(user));
			if ((ret = ms_state_save(m, error_r)) < 0)
				return ret;
		}
	}
	if (!m->mail_enabled)
		return 0;
	ret = ms_dkim_key(m, d, &txt, error_r);
	if (ret < 0)
		return ret;
	key = plug_fmt("%s._domainkey.%s", m->selector, d);
	kline = plug_fmt("%s._domainkey.%s %s:%s:%s/%s/%s.private\n", m->selector,
		       d, d, m->selector, m->keys_path, d, m->selector);
	skey = plug_fmt("*@%s", d);
	sline = plug_fmt("*@%s %s._domainkey.%s\n", d, m->selector, d);
	obj = json_pack("{s:s, s:s, s:s}", "domain", d, "selector",
			m->selector, "txt", txt);
	fields = obj != NULL ? json_dumps(obj, JSON_COMPACT) : NULL;
	if (key == NULL || kline == NULL || skey == NULL || sline == NULL ||
	    fields == NULL)
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
	if (ret == 0)
		ret = ms_table_ensure(m, "opendkim/KeyTable", key, kline,
				      error_r);
	if (ret == 0)
		ret = ms_table_ensure(m, "opendkim/SigningTable", skey, sline,
				      error_r);
	if (ret == 0)
		ret = m->host->emit(m->ctx, "mail.dkim.created", d, fields,
				    error_r);
	if (ret == 0)
		ms_reload_request(m);
	json_decref(obj);
	free(fields);
	free(sline);
	free(skey);
	free(kline);
	free(key);
	free(txt);
	return ret;
}

static int ms_domain_removed(struct ms *m, const char *d, const char **error_r)
{
	static const struct {
		const char *rel;
		enum mailfile_kind kind;
	} files[] = {
		{ "postfix-accounts.cf", MAILFILE_ACCOUNTS },
		{ "postfix-virtual.cf", MAILFILE_VIRTUAL },
		{ "dovecot-quotas.cf", MAILFILE_QUOTAS },
		{ "opendkim/KeyTable", MAILFILE_KEYTABLE },
		{ "opendkim/SigningTable", MAILFILE_SIGNINGTABLE },
	};
	unsigned changed = 0;
	int ret = 0;

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		int r = ms_remove_in(m, files[i].rel, files[i].kind, d,
				     &changed, error_r);

		if (r < 0 && ret == 0)
			ret = r; /* go on with the other files */
	}
	if (changed > 0)
		ms_reload_request(m);
	if (json_object_get(m->owners, d) != NULL) {
		json_object_del(m->owners, d);
		int r = ms_state_save(m, error_r);

		if (ret == 0)
			ret = r;
	}
	return ret;
}

/* The user name of an event, without the panel's "SUSPENDED_<stamp>_"
 * prefix, validated. */
static int ms_event_user(struct ms *m, const struct ophook_event *ev,
			 const char **user_r, const char **error_r)
{
	const char *u = m->host->event_get(ev, "user"), *why = NULL;

	if (u == NULL && ev->subject != NULL &&
	    strncmp(ev->subject, "user:", 5) == 0)
		u = ev->subject + 5;
	if (u != NULL && strncmp(u, "SUSPENDED_", 10) == 0 &&
	    strchr(u + 10, '_') != NULL)
		u = strchr(u + 10, '_') + 1;
	if (u == NULL || !ophook_name_valid_user(u, &why))
		return plug_fail(error_r, -EINVAL, "%s: field user: %s",
			       ev->type, u == NULL ? "missing" : why);
	*user_r = u;
	return 0;
}

/* The user's domains: the event's "domains" array or the map.  A NULL
 * terminated array of validated, lower-cased names in *list_r. */
static int ms_user_domains(struct ms *m, const struct ophook_event *ev,
			   const char *user, char ***list_r, size_t *n_r,
			   const char **error_r)
{
	json_t *root = json_loads(ev->json != NULL ? ev->json : "{}", 0, NULL);
	json_t *arr = json_object_get(root, "domains"), *v;
	const char *key, *why = NULL;
	char **list;
	size_t n = 0, i;
	int ret = 0;

	list = calloc((json_is_array(arr) ? json_array_size(arr) : 0) +
			      json_object_size(m->owners) + 1,
		      sizeof(*list));
	if (list == NULL) {
		json_decref(root);
		return plug_fail(error_r, -ENOMEM, "out of memory");
	}
	if (json_is_array(arr)) {
		json_array_foreach(arr, i, v) {
			const char *d = json_string_value(v);

			if (d == NULL || !ophook_name_valid_domain(d, &why)) {
				ret = plug_fail(error_r, -EINVAL,
					      "%s: field domains[%zu]: %s",
					      ev->type, i,
					      d == NULL ? "not a string" : why);
				break;
			}
			if ((list[n++] = strdup(d)) == NULL)
				ret = plug_fail(error_r, -ENOMEM, "out of memory");
		}
	} else {
		json_object_foreach(m->owners, key, v) {
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), user) == 0 &&
			    (list[n++] = strdup(key)) == NULL)
				ret = plug_fail(error_r, -ENOMEM, "out of memory");
		}
	}
	json_decref(root);
	for (i = 0; i < n; i++)
		for (char *p = list[i]; p != NULL && *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	*list_r = list;
	*n_r = n;
	return ret;
}

static void ms_list_free(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* Strip user's blocks from one access map, then add them again for
 * domains (n 0: unsuspend). */
static int ms_access(struct ms *m, const char *rel, const char *user,
		     char **domains, size_t n, bool *changed_r,
		     const char **error_r)
{
	char *path = plug_fmt("%s/%s", m->config_dir, rel), *text = NULL,
	     *mid = NULL, *out = NULL;
	size_t len = 0, mid_len = 0, out_len = 0;
	unsigned removed = 0;
	bool exists;
	int ret;

	if (path == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	ret = ms_read(path, &text, &len, &exists, error_r);
	if (ret == 0 &&
	    mailfile_access_strip(text, len, user, &mid, &mid_len, &removed) < 0)
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
	if (ret == 0 && mailfile_access_add(mid, mid_len, user,
					    (const char *const *)domains, n,
					    MS_REASON, &out, &out_len) < 0)
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
	if (ret == 0 && (out_len != len || memcmp(out, text, len) != 0)) {
		ret = ms_replace(m, path, exists, text, len, out, out_len, 0644,
				 error_r);
		if (ret == 0)
			*changed_r = true;
	}
	free(out);
	free(mid);
	free(text);
	free(path);
	return ret;
}

static int ms_user_event(struct ms *m, const struct ophook_event *ev,
			 bool suspend, const char **error_r)
{
	const char *user = NULL;
	char **domains = NULL;
	size_t n = 0;
	bool changed = false;
	int ret = ms_event_user(m, ev, &user, error_r);

	if (ret < 0)
		return ret;
	if (suspend) {
		ret = ms_user_domains(m, ev, user, &domains, &n, error_r);
		if (ret == 0 && n == 0)
			m->host->log(m->ctx, OPHOOK_LOG_INFO,
				     "user %s has no domains: no mail to stop",
				     user);
	}
	if (ret == 0)
		ret = ms_access(m, "postfix-send-access.cf", user, domains, n,
				&changed, error_r);
	if (ret == 0)
		ret = ms_access(m, "postfix-receive-access.cf", user, domains,
				n, &changed, error_r);
	if (ret == 0 && changed) {
		m->host->log(m->ctx, OPHOOK_LOG_INFO, "mail of user %s %s (%zu domain(s))",
			     user, suspend ? "stopped" : "restored", n);
		ms_reload_request(m);
	}
	ms_list_free(domains, n);
	return ret;
}

static int ms_on_event(void *data, const struct ophook_event *ev,
		       const char **error_r)
{
	struct ms *m = data;
	char *d = NULL;
	int ret;

	if (strcmp(ev->type, "user.suspended") == 0)
		return ms_user_event(m, ev, true, error_r);
	if (strcmp(ev->type, "user.unsuspended") == 0)
		return ms_user_event(m, ev, false, error_r);
	if (strcmp(ev->type, "domain.added") != 0 &&
	    strcmp(ev->type, "domain.removed") != 0)
		return 0;
	ret = ms_event_domain(m, ev, &d, error_r);
	if (ret < 0)
		return ret;
	if (strcmp(ev->type, "domain.added") == 0)
		ret = ms_domain_added(m, ev, d, error_r);
	else
		ret = ms_domain_removed(m, d, error_r);
	free(d);
	return ret;
}

/* --- init ---------------------------------------------------------------- */

static void ms_fini(void *data)
{
	struct ms *m = data;

	if (m == NULL)
		return;
	free(m->config_dir);
	free(m->selector);
	free(m->keys_path);
	free(m->state_path);
	json_decref(m->owners);
	free(m);
}

/* plugins.mailserver.settings (README "Settings"); the host checks them. */
static const struct ophook_setting_decl ms_settings_decl[] = {
	{ .name = "config_dir", .type = OPHOOK_SETTING_PATH,
	  .def = "${paths.mail}/docker-data/dms/config",
	  .description = "docker-mailserver's config folder" },
	{ .name = "mail_enabled", .type = OPHOOK_SETTING_BOOL, .def = "true",
	  .description = "false: no DKIM keys on domain.added" },
	{ .name = "dkim_bits", .type = OPHOOK_SETTING_INT, .def = "2048",
	  .min = 1024, .max = 8192, .description = "RSA key size" },
	{ .name = "dkim_selector", .type = OPHOOK_SETTING_STRING,
	  .def = "mail", .description = "DKIM selector ([A-Za-z0-9_-]{1,63})" },
	{ .name = "dkim_keys_path", .type = OPHOOK_SETTING_STRING,
	  .def = MS_KEYS_IN_CONTAINER,
	  .description = "the keys folder as the container sees it" },
	{ .name = "backups_keep", .type = OPHOOK_SETTING_INT, .def = "10",
	  .min = 1, .max = 100000,
	  .description = "backups kept per file in ophook-backups/" },
	{ .name = "reload_argv", .type = OPHOOK_SETTING_ARGV,
	  .description = "command run after changes (no shell); unset: none" },
};

/* A copy of a string setting; empty means def. */
static char *ms_str_setting(struct ms *m, const char *key, const char *def)
{
	const char *v = m->host->setting_str(m->ctx, key);

	return strdup(v != NULL && *v != '\0' ? v : def);
}

/* Read the checked settings into m; the checks the host cannot make
 * (the selector's characters, keys_path's) are made here. */
static int ms_settings(struct ms *m, const char **error_r)
{
	const struct ophook_host *h = m->host;

	m->config_dir = strdup(h->setting_str(m->ctx, "config_dir"));
	m->selector = ms_str_setting(m, "dkim_selector", "mail");
	m->keys_path = ms_str_setting(m, "dkim_keys_path", MS_KEYS_IN_CONTAINER);
	if (m->config_dir == NULL || m->selector == NULL || m->keys_path == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	if (!dkim_selector_valid(m->selector))
		return plug_fail(error_r, -EINVAL,
			       "setting dkim_selector: want 1-63 of [A-Za-z0-9_-]");
	if (strpbrk(m->keys_path, " \t\n:") != NULL)
		return plug_fail(error_r, -EINVAL,
			       "setting dkim_keys_path: no blank or ':' allowed");
	m->mail_enabled = h->setting_bool(m->ctx, "mail_enabled");
	m->dkim_bits = (unsigned)h->setting_int(m->ctx, "dkim_bits");
	m->backups_keep = (unsigned)h->setting_int(m->ctx, "backups_keep");
	m->reload_argv = h->setting_list(m->ctx, "reload_argv");
	return 0;
}

static int ms_init(struct ophook_ctx *ctx, const struct ophook_host *host,
		   void **data_r, const char **error_r)
{
	struct ms *m;
	int ret;

	if (!OPHOOK_HOST_HAS(host, setting_is_set))
		return plug_fail(error_r, -ENOTSUP,
			       "the host is too old (no settings_declare)");
	ret = host->settings_declare(ctx, ms_settings_decl,
				     sizeof(ms_settings_decl) /
					     sizeof(ms_settings_decl[0]),
				     error_r);
	if (ret != 0)
		return ret; /* a bad setting, or a check-only load */
	m = calloc(1, sizeof(*m));
	if (m == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	m->ctx = ctx;
	m->host = host;
	m->state_path = plug_fmt("%s/domains.json", host->state_dir(ctx));
	ret = m->state_path == NULL ? plug_fail(error_r, -ENOMEM, "out of memory")
				    : ms_settings(m, error_r);
	if (ret == 0)
		ret = ms_state_load(m, error_r);
	if (ret < 0) {
		ms_fini(m);
		return ret;
	}
	*data_r = m;
	return 0;
}

const struct ophook_plugin ophook_plugin = {
	OPHOOK_PLUGIN_HEADER("mailserver"),
	.description = "docker-mailserver: accounts, aliases and quotas of "
		       "removed domains, suspensions, DKIM keys",
	.flags = OPHOOK_PLUGIN_SERIAL | OPHOOK_PLUGIN_DECLARES_SETTINGS,
	.subscriptions = (const char *const[]){ "domain.added",
						"domain.removed",
						"user.suspended",
						"user.unsuspended", NULL },
	.init = ms_init,
	.fini = ms_fini,
	.on_event = ms_on_event,
};
