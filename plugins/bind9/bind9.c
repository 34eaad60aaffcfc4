/* bind9 plugin: keeps BIND's zones in step with the panel's domains.
 *
 * domain.added     render the zone from the template, check it with
 *                  named-checkzone, write it, add its line to
 *                  named.conf.local, `rndc reconfig` (coalesced); a
 *                  subdomain of a zone the same user owns gets its records
 *                  in that zone instead.
 * domain.removed   remove its line (only its line), archive or delete the
 *                  zone file, `rndc reconfig`; or take a subdomain's
 *                  records out of its parent zone.
 * dns.zone.changed check the zone; bump the serial when the content changed
 *                  and the serial did not; `rndc reload <zone>`.  A zone
 *                  that fails the check is not loaded: dns.zone_rejected.
 * dns.config.changed `rndc reconfig` (named.conf* edited by hand).
 * mail.dkim.created publish <selector>._domainkey TXT in the domain's zone.
 *
 * Files and the state (zones.json under state_dir: zone -> owner, last good
 * serial and content hash; subdomain -> parent zone) are changed under one
 * mutex; named-checkzone of a new zone runs outside it so a burst of adds
 * runs in parallel.  rndc runs from one coalesced action ("rndc").
 * Other nodes' domains (role secondary or both): secondary.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
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
#include "bind9.h"
#include "secondary.h"
#include "zone.h"

/* --- settings ------------------------------------------------------------ */

/* plugins.bind9.settings (README "Settings"), bind9.c's and secondary.c's;
 * the host checks them.  What the host cannot check (paths quoted in
 * named.conf, IP addresses, node names) is checked in bind9_init_settings
 * and secondary_init. */
static const char *const bind9_removed_values[] = { "archive", "delete",
						    NULL };
static const char *const bind9_role_values[] = { "primary", "secondary",
						 "both", NULL };
static const struct ophook_setting_decl bind9_settings_decl[] = {
	{ .name = "zones_dir", .type = OPHOOK_SETTING_PATH,
	  .def = "${paths.bind}/zones", .description = "zone files, <d>.zone" },
	{ .name = "named_conf_local", .type = OPHOOK_SETTING_PATH,
	  .def = "${paths.bind}/named.conf.local",
	  .description = "the file with one zone line per domain" },
	{ .name = "zone_file_in_conf", .type = OPHOOK_SETTING_PATH,
	  .description = "the zones folder as named sees it, or a {domain} "
			 "pattern (default zones_dir)" },
	{ .name = "zone_template", .type = OPHOOK_SETTING_PATH,
	  .description = "zone template file (default built in)" },
	{ .name = "server_ip", .type = OPHOOK_SETTING_STRING,
	  .description = "IP for the A records; required for adds" },
	{ .name = "ns1", .type = OPHOOK_SETTING_STRING,
	  .description = "name server (default from openpanel.config)" },
	{ .name = "ns2", .type = OPHOOK_SETTING_STRING,
	  .description = "name server (default from openpanel.config)" },
	{ .name = "rpemail", .type = OPHOOK_SETTING_STRING,
	  .description = "SOA contact (default from openpanel.config)" },
	{ .name = "rndc_argv", .type = OPHOOK_SETTING_ARGV, .def = "rndc",
	  .description = "rndc command; arguments are appended" },
	{ .name = "checkzone_argv", .type = OPHOOK_SETTING_ARGV,
	  .def = "named-checkzone",
	  .description = "gets <zone> - and the zone on stdin" },
	{ .name = "checkconf_argv", .type = OPHOOK_SETTING_ARGV,
	  .def = "named-checkconf -z",
	  .description = "gets the batch conf's path" },
	{ .name = "checker_user", .type = OPHOOK_SETTING_STRING,
	  .def = "nobody",
	  .description = "user named-checkzone runs as (root: no change)" },
	{ .name = "checker_memory_mb", .type = OPHOOK_SETTING_INT,
	  .def = "256", .min = 0, .max = 65536,
	  .description = "named-checkzone address space, MiB (0: none)" },
	{ .name = "checker_cpu_s", .type = OPHOOK_SETTING_INT, .def = "10",
	  .min = 0, .max = 3600,
	  .description = "named-checkzone CPU seconds (0: none)" },
	{ .name = "checker_timeout_ms", .type = OPHOOK_SETTING_MS,
	  .def = "20000", .min = 100, .max = 600000,
	  .description = "named-checkzone wall clock limit" },
	{ .name = "generate_max", .type = OPHOOK_SETTING_INT, .def = "65536",
	  .min = 1, .max = 4294967296LL,
	  .description = "most steps of one $GENERATE in a zone" },
	{ .name = "window_ms", .type = OPHOOK_SETTING_MS, .def = "500",
	  .min = 0, .max = 3600000,
	  .description = "coalescing window of the rndc action" },
	{ .name = "reload_all_max", .type = OPHOOK_SETTING_INT, .def = "32",
	  .min = 0, .max = 1000000,
	  .description = "more changed zones in one run: one rndc reload" },
	{ .name = "removed_zones", .type = OPHOOK_SETTING_ENUM,
	  .def = "archive", .values = bind9_removed_values,
	  .description = "what happens to a removed domain's zone file" },
	/* secondary.c */
	{ .name = "role", .type = OPHOOK_SETTING_ENUM, .def = "primary",
	  .values = bind9_role_values,
	  .description = "this node's domains, other nodes', or both" },
	{ .name = "node", .type = OPHOOK_SETTING_STRING,
	  .description = "this node's name on hosts without node()" },
	{ .name = "notify", .type = OPHOOK_SETTING_LIST,
	  .description = "primary: \"IP\" or \"IP port N\" to NOTIFY" },
	{ .name = "allow_transfer", .type = OPHOOK_SETTING_LIST,
	  .description = "primary: \"IP\" or \"IP/len\" allowed to transfer" },
	{ .name = "primaries", .type = OPHOOK_SETTING_MAP,
	  .description = "secondary: node name -> \"IP [port N]\"" },
	{ .name = "secondary_dir", .type = OPHOOK_SETTING_PATH,
	  .def = BIND9_SECONDARY_DIR,
	  .description = "where named writes transferred zones" },
	{ .name = "secondary_dir_in_conf", .type = OPHOOK_SETTING_PATH,
	  .description = "secondary_dir as named sees it (default "
			 "secondary_dir)" },
};

/* A copy of string setting key, or of def when unset or empty (NULL def:
 * NULL). */
int bind9_str(struct bind9 *b, const char *key, const char *def,
	      char **out_r)
{
	const char *v = b->host->setting_str(b->ctx, key);

	*out_r = NULL;
	if (v == NULL || *v == '\0')
		v = def;
	if (v == NULL)
		return 0;
	*out_r = strdup(v);
	return *out_r == NULL ? -ENOMEM : 0;
}

/* A path setting that ends up quoted in named.conf: absolute, no quote,
 * backslash or control character. */
int bind9_path_ok(const char *key, const char *path,
		  const char **error_r)
{
	if (path[0] != '/')
		return plug_fail(error_r, -EINVAL,
				  "setting %s: \"%s\" is not an absolute path",
				  key, path);
	for (const char *p = path; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
			return plug_fail(error_r, -EINVAL,
					  "setting %s: a path with a quote, "
					  "backslash or control character",
					  key);
	}
	return 0;
}

/* A host name for the SOA/NS fields: letters, digits, '-', '.', '_'. */
bool bind9_hostname_ok(const char *s)
{
	if (*s == '\0' || strlen(s) > 253)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' ||
		      *p == '_'))
			return false;
	}
	return true;
}

/* --- openpanel.config ---------------------------------------------------- */

/* The value of key in an INI file (any section, first match), trimmed;
 * NULL when absent or unreadable. */
static char *bind9_ini_get(const char *path, const char *key)
{
	char *data = NULL, *line, *save = NULL, *val = NULL;
	size_t len, klen = strlen(key);

	if (ophook_file_read_nofollow(path, BIND9_FILE_MAX, &data, &len) < 0)
		return NULL;
	for (line = strtok_r(data, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char *p = line, *e;

		while (*p == ' ' || *p == '\t')
			p++;
		if (strncmp(p, key, klen) != 0)
			continue;
		p += klen;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		e = p + strlen(p);
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' ||
				 e[-1] == '\r'))
			e--;
		*e = '\0';
		if (*p != '\0')
			val = strdup(p);
		break;
	}
	free(data);
	return val;
}

/* --- paths and state ----------------------------------------------------- */

char *bind9_zone_path(struct bind9 *b, const char *d)
{
	return plug_fmt("%s/%s.zone", b->zones_dir, d);
}

/* The file named in the zone line. */
static char *bind9_conf_file(struct bind9 *b, const char *d)
{
	const char *ph = strstr(b->conf_file, "{domain}");

	if (ph == NULL)
		return plug_fmt("%s/%s.zone", b->conf_file, d);
	return plug_fmt("%.*s%s%s", (int)(ph - b->conf_file), b->conf_file,
			 d, ph + 8);
}

bool bind9_file_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *bind9_staged_path(struct bind9 *b, const char *d)
{
	return plug_fmt("%s/%s.zone", b->staging_dir, d);
}

static int bind9_state_load(struct bind9 *b, const char **error_r)
{
	json_error_t jerr;
	char *data = NULL;
	size_t len;
	int ret = ophook_file_read_nofollow(b->state_path, BIND9_FILE_MAX,
					    &data, &len);

	if (ret == -ENOENT) {
		b->state = json_pack("{s:{},s:{},s:{}}", "zones", "subs",
				     "retired");
		return b->state == NULL ? -ENOMEM : 0;
	}
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", b->state_path,
				  strerror(-ret));
	b->state = json_loadb(data, len, 0, &jerr);
	free(data);
	if (b->state == NULL || !json_is_object(b->state))
		return plug_fail(error_r, -EINVAL, "%s:%d:%d: %s",
				  b->state_path, jerr.line, jerr.column,
				  b->state == NULL ? jerr.text
						   : "not a JSON object");
	if (!json_is_object(json_object_get(b->state, "zones")))
		json_object_set_new(b->state, "zones", json_object());
	if (!json_is_object(json_object_get(b->state, "subs")))
		json_object_set_new(b->state, "subs", json_object());
	if (!json_is_object(json_object_get(b->state, "retired")))
		json_object_set_new(b->state, "retired", json_object());
	return 0;
}

/* Under b->lock. */
int bind9_state_save(struct bind9 *b, const char **error_r)
{
	char *text = json_dumps(b->state, JSON_SORT_KEYS | JSON_INDENT(1));
	int ret;

	if (text == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	ret = ophook_file_write_atomic(b->state_path, text, strlen(text), 0600);
	free(text);
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", b->state_path,
				  strerror(-ret));
	return 0;
}

json_t *bind9_state_zone(struct bind9 *b, const char *d)
{
	return json_object_get(json_object_get(b->state, "zones"), d);
}

/* True when zone d is rendered but waits for the batch check.  Under
 * b->lock. */
static bool bind9_is_staged(struct bind9 *b, const char *d)
{
	return json_is_true(json_object_get(bind9_state_zone(b, d), "staged"));
}

/* The file holding zone d now: staged or in zones_dir.  Under b->lock. */
static char *bind9_zone_file(struct bind9 *b, const char *d)
{
	return bind9_is_staged(b, d) ? bind9_staged_path(b, d)
				     : bind9_zone_path(b, d);
}

static uint32_t bind9_state_serial(json_t *z)
{
	return (uint32_t)json_integer_value(json_object_get(z, "serial"));
}

/* Record the last good content of zone d. */
static int bind9_state_zone_set(struct bind9 *b, const char *d,
				const char *user, const char *text)
{
	json_t *zones = json_object_get(b->state, "zones");
	json_t *z = json_object_get(zones, d);
	uint32_t serial = 0;
	char hash[17];

	(void)zone_serial_get(text, &serial);
	snprintf(hash, sizeof(hash), "%016" PRIx64, zone_hash(text));
	if (z == NULL) {
		z = json_object();
		if (z == NULL || json_object_set_new(zones, d, z) < 0)
			return -ENOMEM;
	}
	if (user != NULL &&
	    json_object_set_new(z, "user", json_string(user)) < 0)
		return -ENOMEM;
	if (json_object_set_new(z, "serial", json_integer(serial)) < 0 ||
	    json_object_set_new(z, "hash", json_string(hash)) < 0)
		return -ENOMEM;
	return 0;
}

/* --- running tools ------------------------------------------------------- */

/* host->stopping(), for run_opts.cancel. */
static bool bind9_cancel(void *arg)
{
	struct bind9 *b = arg;

	return OPHOOK_HOST_HAS(b->host, stopping) && b->host->stopping(b->ctx);
}

/* Run base argv + extra args with lim, timeout_ms; 0 with *out_r (stdout
 * and stderr joined, trimmed) and *status_r, or -errno with *error_r:
 * -ETIMEDOUT, OPHOOK_RETRY when the daemon is stopping (the child was
 * killed). */
static int bind9_run(const char *const *base, const char *const *extra,
		     const char *in, const struct run_opts *lim,
		     unsigned timeout_ms, char **out_r, int *status_r,
		     const char **error_r)
{
	size_t n = argv_len(base), m = 0;
	const char **argv;
	char *out = NULL, *err = NULL;
	int ret;

	while (extra[m] != NULL)
		m++;
	argv = calloc(n + m + 1, sizeof(*argv));
	if (argv == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		argv[i] = base[i];
	for (size_t i = 0; i < m; i++)
		argv[n + i] = extra[i];
	ret = run_argv_ex(argv, lim, in, timeout_ms, &out, &err, status_r,
			  error_r);
	free(argv);
	if (ret == -ECANCELED) {
		free(out);
		free(err);
		return plug_fail(error_r, OPHOOK_RETRY,
				 "%s: killed, the daemon is stopping (the "
				 "event stays pending)",
				 base[0]);
	}
	if (ret < 0 && ret != -ETIMEDOUT)
		return plug_fail(error_r, ret, "%s: %s", base[0], *error_r);
	*out_r = plug_fmt("%s%s%s", out != NULL ? out : "",
			   out != NULL && *out != '\0' && err != NULL &&
					   *err != '\0'
				   ? "\n"
				   : "",
			   err != NULL ? err : "");
	free(out);
	free(err);
	if (*out_r == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	for (size_t l = strlen(*out_r);
	     l > 0 && strchr(" \t\r\n", (*out_r)[l - 1]) != NULL; l--)
		(*out_r)[l - 1] = '\0';
	if (ret == -ETIMEDOUT) {
		free(*out_r);
		*out_r = NULL;
		return plug_fail(error_r, ret, "%s: timed out after %u ms",
				  base[0], timeout_ms);
	}
	return 0;
}

/* named-checkzone zone - < text, as checker_user with the checker
 * limits, after the directives a customer may not use are refused.  0 when
 * good, 1 when rejected (*msg_r: why, naming path; only the checker's
 * lines about this zone, escaped: never text of another file), -errno
 * when it could not run (OPHOOK_RETRY when the daemon is stopping). */
static int bind9_check(struct bind9 *b, const char *zone, const char *text,
		       const char *path, char **msg_r, const char **error_r)
{
	const char *extra[] = { zone, "-", NULL };
	char *out = NULL, *diag = NULL, *why = NULL;
	int status = 0, ret;

	*msg_r = NULL;
	ret = zone_directives_check(text, b->zones_dir, b->generate_max, &why);
	if (ret == -EINVAL) {
		*msg_r = plug_fmt("%s: %s", path, why);
		free(why);
		return *msg_r != NULL ? 1
				      : plug_fail(error_r, -ENOMEM,
						  "out of memory");
	}
	if (ret < 0)
		return plug_fail(error_r, ret, "out of memory");
	ret = bind9_run(b->checkzone_argv, extra, text, &b->check_lim,
			b->check_timeout_ms, &out, &status, error_r);
	if (ret == -ETIMEDOUT) {
		*msg_r = plug_fmt("%s: named-checkzone stopped after %u ms "
				  "(limit checker_timeout_ms)",
				  path, b->check_timeout_ms);
		return *msg_r != NULL ? 1
				      : plug_fail(error_r, -ENOMEM,
						  "out of memory");
	}
	if (ret < 0)
		return ret;
	if (status == 0) {
		free(out);
		return 0;
	}
	ret = zone_diag_filter(out, zone, path, &diag);
	free(out);
	if (ret < 0)
		return plug_fail(error_r, ret, "out of memory");
	if (status > 128)
		*msg_r = plug_fmt("%s: named-checkzone killed by signal %d "
				  "(%s), over a checker limit "
				  "(checker_memory_mb %llu, checker_cpu_s "
				  "%u)%s%s",
				  path, status - 128, strsignal(status - 128),
				  b->check_lim.mem_max >> 20,
				  b->check_lim.cpu_max_s,
				  *diag != '\0' ? "\n" : "",
				  diag);
	else if (*diag == '\0')
		*msg_r = plug_fmt("%s: named-checkzone exited with %d", path,
				  status);
	else
		*msg_r = diag;
	if (*msg_r != diag)
		free(diag);
	if (*msg_r == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	return 1;
}

/* --- rndc (coalesced) ---------------------------------------------------- */

static void bind9_action(struct ophook_ctx *ctx, void *data);
static bool bind9_flush(struct bind9 *b);

/* Ask for the coalesced action (batch check of staged zones, rndc). */
static void bind9_kick(struct bind9 *b, unsigned delay_ms)
{
	b->host->request_action(b->ctx, "rndc", delay_ms, bind9_action, b);
}

/* Ask for `rndc reconfig` (zone NULL) or `rndc reload zone`. */
void bind9_reload_request(struct bind9 *b, const char *zone)
{
	pthread_mutex_lock(&b->rlock);
	if (zone == NULL)
		b->reconfig = true;
	else if (json_object_set_new(b->reload, zone, json_true()) < 0)
		b->reconfig = true; /* ENOMEM: the full reload below */
	pthread_mutex_unlock(&b->rlock);
	bind9_kick(b, b->window_ms);
}

/* One rndc call; 0 when it exited 0. */
static int bind9_rndc(struct bind9 *b, const char *const *args)
{
	const char *err = NULL;
	char *out = NULL;
	int status = 0, ret;

	ret = bind9_run(b->rndc_argv, args, NULL, &b->tool_lim,
			BIND9_RUN_TIMEOUT_MS, &out, &status, &err);
	b->reloads++;
	if (ret < 0) {
		b->host->log(b->ctx, OPHOOK_LOG_ERROR, "rndc %s%s%s: %s",
			     args[0], args[1] != NULL ? " " : "",
			     args[1] != NULL ? args[1] : "", err);
		return ret;
	}
	if (status != 0) {
		b->host->log(b->ctx, OPHOOK_LOG_ERROR,
			     "rndc %s%s%s failed (exit %d): %s", args[0],
			     args[1] != NULL ? " " : "",
			     args[1] != NULL ? args[1] : "", status, out);
		free(out);
		return -EIO;
	}
	free(out);
	return 0;
}

/* The coalesced action: one reconfig for every added/removed zone, then a
 * reload per changed zone (or one full reload past reload_all_max). */
static void bind9_action(struct ophook_ctx *ctx, void *data)
{
	struct bind9 *b = data;
	json_t *zones, *fresh = json_object();
	bool reconfig;
	size_t n, ok = 0;
	const char *zone;
	json_t *v;
	void *tmp;

	(void)ctx;
	if (fresh == NULL)
		return;
	if (bind9_flush(b)) {
		pthread_mutex_lock(&b->rlock);
		b->reconfig = true;
		pthread_mutex_unlock(&b->rlock);
	}
	pthread_mutex_lock(&b->rlock);
	reconfig = b->reconfig;
	zones = b->reload;
	b->reconfig = false;
	b->reload = fresh;
	pthread_mutex_unlock(&b->rlock);
	n = json_object_size(zones);

	if (reconfig &&
	    bind9_rndc(b, (const char *const[]){ "reconfig", NULL }) < 0) {
		/* named is down or busy: keep everything for a retry */
		pthread_mutex_lock(&b->rlock);
		b->reconfig = true;
		json_object_update_missing(b->reload, zones);
		b->rndc_failures++;
		pthread_mutex_unlock(&b->rlock);
		json_decref(zones);
		if (b->rndc_failures <= BIND9_RNDC_RETRIES)
			bind9_kick(b, 1000u * b->rndc_failures);
		else
			b->host->log(b->ctx, OPHOOK_LOG_ERROR,
				     "rndc reconfig failed %u times; giving "
				     "up until the next change",
				     b->rndc_failures);
		return;
	}
	b->rndc_failures = 0;
	if (reconfig) {
		json_t *gone;
		const char *err = NULL;

		b->host->log(b->ctx, OPHOOK_LOG_INFO,
			     "rndc reconfig done [reloads=%lu]", b->reloads);
		/* dropped secondary zones: named let go of them, so their
		 * files are not written again */
		pthread_mutex_lock(&b->lock);
		gone = json_object_get(b->state, "gone");
		if (json_object_size(gone) > 0) {
			json_object_foreach_safe(gone, tmp, zone, v)
			{
				secondary_unlink(b, json_string_value(v));
			}
			json_object_clear(gone);
			if (bind9_state_save(b, &err) < 0)
				b->host->log(b->ctx, OPHOOK_LOG_ERROR, "%s",
					     err);
		}
		pthread_mutex_unlock(&b->lock);
	}
	if (n > b->reload_all_max) {
		if (bind9_rndc(b, (const char *const[]){ "reload", NULL }) == 0)
			ok = n;
	} else {
		json_object_foreach_safe(zones, tmp, zone, v)
		{
			if (bind9_rndc(b, (const char *const[]){ "reload",
								 zone,
								 NULL }) == 0)
				ok++;
		}
	}
	if (n > 0)
		b->host->log(b->ctx, OPHOOK_LOG_INFO,
			     "rndc reload: %zu of %zu zones [reloads=%lu]", ok,
			     n, b->reloads);
	json_decref(zones);
}

/* --- file edits ---------------------------------------------------------- */

int bind9_write(struct bind9 *b, const char *path, const char *text,
		const char **error_r)
{
	int ret;

	b->host->own_write(b->ctx, path);
	ret = ophook_file_write_atomic(path, text, strlen(text), 0644);
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", path, strerror(-ret));
	return 0;
}

/* Make sure conf has a master zone line for d: without notify/transfer
 * options any statement for d will do (zone_conf_add); with them, a
 * statement that lacks or differs from them is replaced (zone_conf_put).
 * *out_r NULL when conf is fine as it is. */
static int bind9_conf_master(struct bind9 *b, const char *conf, const char *d,
			     const char *file, char **out_r)
{
	char *line = NULL;
	int ret;

	if (b->opts == NULL || *b->opts == '\0')
		return zone_conf_add(conf, d, file, out_r);
	*out_r = NULL;
	ret = zone_conf_line_opts(d, file, b->opts, &line);
	if (ret == 0)
		ret = zone_conf_put(conf, d, line, out_r);
	free(line);
	return ret;
}

/* Add (add) or remove the zone line of d in named.conf.local; *changed_r
 * says whether the file changed.  Under b->lock. */
int bind9_conf_edit(struct bind9 *b, const char *d, bool add,
		    bool *changed_r, const char **error_r)
{
	char *conf = NULL, *out = NULL, *file = NULL;
	size_t len;
	int ret;

	*changed_r = false;
	ret = ophook_file_read_nofollow(b->conf_path, BIND9_FILE_MAX, &conf,
					&len);
	if (ret == -ENOENT && add) {
		conf = strdup("");
		ret = conf == NULL ? -ENOMEM : 0;
	} else if (ret == -ENOENT) {
		return 0;
	}
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", b->conf_path,
				  strerror(-ret));
	if (add) {
		file = bind9_conf_file(b, d);
		ret = file == NULL ? -ENOMEM
				   : bind9_conf_master(b, conf, d, file, &out);
	} else {
		ret = zone_conf_remove(conf, d, &out);
	}
	if (ret == 0 && out != NULL) {
		ret = bind9_write(b, b->conf_path, out, error_r);
		*changed_r = ret == 0;
	} else if (ret < 0) {
		ret = plug_fail(error_r, ret, "%s: cannot edit the line of "
				 "%s: %s", b->conf_path, d, strerror(-ret));
	}
	free(file);
	free(out);
	free(conf);
	return ret;
}

static bool bind9_conf_has(struct bind9 *b, const char *d)
{
	char *conf = NULL;
	size_t len, s, e;
	bool has;

	if (ophook_file_read_nofollow(b->conf_path, BIND9_FILE_MAX, &conf,
				      &len) < 0)
		return false;
	has = zone_conf_find(conf, d, &s, &e) == 0;
	free(conf);
	return has;
}

/* Set the records under tag in zone (NULL: remove them), bump the serial,
 * check, write, ask for a reload.  Under b->lock. */
static int bind9_zone_records(struct bind9 *b, const char *zone,
			      const char *tag, const char *records,
			      const char **error_r)
{
	char *path = bind9_zone_file(b, zone), *text = NULL, *edited = NULL;
	char *final = NULL, *msg = NULL;
	bool staged = bind9_is_staged(b, zone);
	uint32_t serial = 0, last;
	json_t *z;
	size_t len;
	int ret;

	if (path == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	ret = ophook_file_read_nofollow(path, BIND9_FILE_MAX, &text, &len);
	if (ret < 0) {
		ret = plug_fail(error_r, ret, "%s: %s", path, strerror(-ret));
		goto out;
	}
	ret = zone_records_set(text, tag, records, &edited);
	if (ret < 0 || edited == NULL) /* nothing to change */
		goto out;
	if (zone_serial_get(edited, &serial) < 0) {
		ret = plug_fail(error_r, -EINVAL,
				 "%s: no numeric SOA serial", path);
		goto out;
	}
	z = bind9_state_zone(b, zone);
	last = z != NULL && bind9_state_serial(z) > serial
		       ? bind9_state_serial(z)
		       : serial;
	ret = zone_serial_set(edited, zone_serial_next(last, time(NULL)),
			      &final);
	if (ret < 0)
		goto out;
	/* a staged zone is checked with the batch */
	ret = staged ? 0 : bind9_check(b, zone, final, path, &msg, error_r);
	if (ret == 1) {
		ret = plug_fail(error_r, -EINVAL,
				 "%s with records %s fails named-checkzone: "
				 "%s",
				 path, tag, msg);
		goto out;
	}
	if (ret < 0)
		goto out;
	ret = bind9_write(b, path, final, error_r);
	if (ret < 0)
		goto out;
	if (bind9_state_zone_set(b, zone, NULL, final) < 0) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out;
	}
	ret = bind9_state_save(b, error_r);
	if (staged)
		bind9_kick(b, b->window_ms);
	else
		bind9_reload_request(b, zone);
out:
	free(msg);
	free(final);
	free(edited);
	free(text);
	free(path);
	return ret;
}

/* --- batch check of new zones -------------------------------------------- */

/* The lines of checkconf's output about zone d (its name or its file). */
static char *bind9_flush_msg(const char *out, const char *d,
			     const char *file)
{
	char *zname = plug_fmt("zone %s/", d), *dname = plug_fmt("/%s/IN:", d);
	char *msg = NULL;
	size_t n = 0;

	if (zname == NULL || dname == NULL)
		goto out;
	msg = malloc(strlen(out) + 64);
	if (msg == NULL)
		goto out;
	for (const char *l = out; *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t len = nl == NULL ? strlen(l) : (size_t)(nl - l);
		char *line = strndup(l, len);

		if (line != NULL &&
		    (strstr(line, zname) != NULL || strstr(line, dname) != NULL ||
		     strstr(line, file) != NULL)) {
			if (n > 0)
				msg[n++] = '\n';
			memcpy(msg + n, line, len);
			n += len;
		}
		free(line);
		l += len + (nl != NULL);
	}
	if (n == 0)
		n = (size_t)sprintf(msg, "named-checkconf -z did not load it");
	msg[n] = '\0';
out:
	free(zname);
	free(dname);
	return msg;
}

/* Check every staged zone in one `named-checkconf -z` run, move the good
 * ones into zones_dir and add their lines to named.conf.local (one write),
 * reject the bad ones (dns.zone_rejected).  True when lines were added. */
static bool bind9_flush(struct bind9 *b)
{
	json_t *zones, *list = json_array(), *v;
	struct stat st;
	char *check = NULL, *check_named = NULL, *conf = NULL, *out = NULL;
	const char *err = NULL, *d;
	bool added = false, conf_dirty = false, again = false;
	size_t len, i;
	int status = 0, ret;
	FILE *f;
	char *ctext = NULL;
	size_t clen = 0;

	if (list == NULL)
		return false;
	pthread_mutex_lock(&b->lock);
	zones = json_object_get(b->state, "zones");
	json_object_foreach(zones, d, v)
	{
		if (!json_is_true(json_object_get(v, "staged")))
			continue;
		if (json_array_size(list) >= BIND9_BATCH_MAX) {
			again = true; /* the rest in the next batch */
			break;
		}
		json_array_append_new(
				list, json_pack("[s,s?]", d,
						json_string_value(json_object_get(
							v, "hash"))));
	}
	if (json_array_size(list) == 0)
		goto out;
	check = plug_fmt("%s/check.conf", b->staging_dir);
	check_named = plug_fmt("%s/check.conf", b->staging_named);
	f = open_memstream(&ctext, &clen);
	if (check == NULL || check_named == NULL || f == NULL) {
		if (f != NULL)
			fclose(f);
		b->host->log(b->ctx, OPHOOK_LOG_ERROR, "out of memory");
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		const char *z = json_string_value(json_array_get(v, 0));

		fprintf(f, "zone \"%s\" IN { type master; file \"%s/%s.zone\"; };\n",
			z, b->staging_named, z);
	}
	fclose(f);
	b->host->own_write(b->ctx, check);
	ret = ophook_file_write_atomic(check, ctext, clen, 0644);
	/* the check runs unlocked: adds go on meanwhile; a staged zone
	 * edited meanwhile (new hash) waits for the next batch */
	pthread_mutex_unlock(&b->lock);
	if (ret == 0) {
		const char *extra[] = { check_named, NULL };

		ret = bind9_run(b->checkconf_argv, extra, NULL, &b->tool_lim,
				BIND9_RUN_TIMEOUT_MS, &out, &status, &err);
	} else {
		err = strerror(-ret);
	}
	unlink(check);
	pthread_mutex_lock(&b->lock);
	zones = json_object_get(b->state, "zones");
	if (ret < 0 || (status != 0 && strstr(out, "/IN: ") == NULL)) {
		/* the tool itself failed: keep them staged, try again */
		b->host->log(b->ctx, OPHOOK_LOG_ERROR,
			     "batch check of %zu new zones failed: %s",
			     json_array_size(list), ret < 0 ? err : out);
		bind9_kick(b, 5000);
		goto out;
	}
	ret = ophook_file_read_nofollow(b->conf_path, BIND9_FILE_MAX, &conf,
					&len);
	if (ret == -ENOENT)
		conf = strdup("");
	if (conf == NULL) {
		b->host->log(b->ctx, OPHOOK_LOG_ERROR, "%s: %s", b->conf_path,
			     strerror(-ret));
		bind9_kick(b, 5000);
		goto out;
	}
	json_array_foreach(list, i, v)
	{
		const char *z = json_string_value(json_array_get(v, 0));
		const char *h = json_string_value(json_array_get(v, 1));
		json_t *zs = json_object_get(zones, z);
		const char *now_h = json_string_value(json_object_get(zs, "hash"));
		char *loaded, *staged, *path, *file, *next = NULL;

		if (!json_is_true(json_object_get(zs, "staged")))
			continue; /* removed meanwhile */
		if (h == NULL || now_h == NULL || strcmp(h, now_h) != 0) {
			again = true; /* edited meanwhile */
			continue;
		}
		loaded = plug_fmt("zone %s/IN: loaded serial", z);
		staged = bind9_staged_path(b, z);
		path = bind9_zone_path(b, z);
		file = bind9_conf_file(b, z);
		if (loaded == NULL || staged == NULL || path == NULL ||
		    file == NULL) {
			/* out of memory: stays staged */
		} else if (strstr(out, loaded) == NULL &&
			   strstr(out, "[output truncated]") != NULL) {
			again = true; /* not seen: check it again */
		} else if (strstr(out, loaded) != NULL) {
			b->host->own_write(b->ctx, path);
			if (lstat(path, &st) == 0) {
				b->host->log(b->ctx, OPHOOK_LOG_WARN,
					     "%s: %s appeared meanwhile; "
					     "keeping it",
					     z, path);
				unlink(staged);
			} else if (rename(staged, path) < 0) {
				b->host->log(b->ctx, OPHOOK_LOG_ERROR,
					     "%s -> %s: %s", staged, path,
					     strerror(errno));
				goto next;
			}
			if (bind9_conf_master(b, conf, z, file, &next) == 0 &&
			    next != NULL) {
				free(conf);
				conf = next;
				conf_dirty = true;
			}
			json_object_del(json_object_get(zones, z), "staged");
			added = true;
		} else {
			char *msg = bind9_flush_msg(out, z, staged);
			json_t *fj = json_pack("{s:s,s:s,s:s}", "domain", z,
					       "path", path, "error",
					       msg != NULL ? msg : "rejected");
			char *fields = fj != NULL ? json_dumps(fj, JSON_COMPACT)
						  : NULL;

			b->host->log(b->ctx, OPHOOK_LOG_ERROR,
				     "%s: new zone fails named-checkconf -z, "
				     "not added: %s",
				     z, msg != NULL ? msg : "");
			if (fields != NULL)
				b->host->emit(b->ctx, "dns.zone_rejected", z,
					      fields, &err);
			free(fields);
			json_decref(fj);
			free(msg);
			unlink(staged);
			json_object_del(zones, z);
		}
next:
		free(loaded);
		free(staged);
		free(path);
		free(file);
	}
	if (conf_dirty && bind9_write(b, b->conf_path, conf, &err) < 0) {
		b->host->log(b->ctx, OPHOOK_LOG_ERROR, "%s", err);
		added = false;
	}
	if (bind9_state_save(b, &err) < 0)
		b->host->log(b->ctx, OPHOOK_LOG_ERROR, "%s", err);
	if (added)
		b->host->log(b->ctx, OPHOOK_LOG_INFO,
			     "%zu new zones checked in one batch",
			     json_array_size(list));
	if (again)
		bind9_kick(b, b->window_ms);
out:
	pthread_mutex_unlock(&b->lock);
	free(ctext);
	free(out);
	free(conf);
	free(check);
	free(check_named);
	json_decref(list);
	return added;
}

/* --- events -------------------------------------------------------------- */

/* The event's domain (field "domain", else the subject), validated and in
 * lower case. */
int bind9_event_domain(struct bind9 *b, const struct ophook_event *ev,
		       char **d_r, const char **error_r)
{
	const char *s = b->host->event_get(ev, "domain"), *why = NULL;
	int ret;

	if (s == NULL)
		s = ev->subject;
	ret = zone_domain_norm(s, d_r, &why);
	if (ret == -EINVAL)
		return plug_fail(error_r, ret, "%s: field domain: %s",
				  ev->type, why);
	if (ret < 0)
		return plug_fail(error_r, ret, "out of memory");
	return 0;
}

/* The zone of the same user that d is a subdomain of, or NULL.  Under
 * b->lock. */
static const char *bind9_parent_zone(struct bind9 *b, const char *d,
				     const char *user)
{
	json_t *zones = json_object_get(b->state, "zones");

	if (user == NULL || *user == '\0')
		return NULL;
	for (const char *p = strchr(d, '.'); p != NULL;
	     p = strchr(p + 1, '.')) {
		const char *parent = p + 1, *owner;
		json_t *z;
		char *path;
		bool exists;

		if (strchr(parent, '.') == NULL)
			break; /* a TLD */
		z = json_object_get(zones, parent);
		owner = json_string_value(json_object_get(z, "user"));
		if (owner == NULL || strcmp(owner, user) != 0)
			continue;
		path = bind9_zone_file(b, parent);
		exists = path != NULL && bind9_file_exists(path);
		free(path);
		if (exists)
			return json_object_iter_key(
				json_object_iter_at(zones, parent));
	}
	return NULL;
}

/* Template values for d; strings owned by *v_r's holder (freed by
 * bind9_vars_free). */
struct bind9_vars {
	struct zone_vars v;
	char *ns1, *ns2, *ns3, *ns4, *rpemail;
};

static void bind9_vars_free(struct bind9_vars *bv)
{
	free(bv->ns1);
	free(bv->ns2);
	free(bv->ns3);
	free(bv->ns4);
	free(bv->rpemail);
}

static int bind9_vars(struct bind9 *b, const char *d, uint32_t base,
		      struct bind9_vars *bv, const char **error_r)
{
	char *ini = plug_fmt("%s/openpanel/conf/openpanel.config",
			      b->host->root(b->ctx));
	struct {
		char **dst;
		const char *setting, *key;
	} src[] = {
		{ &bv->ns1, b->ns1, "ns1" },
		{ &bv->ns2, b->ns2, "ns2" },
		{ &bv->ns3, NULL, "ns3" },
		{ &bv->ns4, NULL, "ns4" },
		{ &bv->rpemail, b->rpemail, "email" },
	};

	memset(bv, 0, sizeof(*bv));
	if (ini == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	for (size_t i = 0; i < sizeof(src) / sizeof(src[0]); i++) {
		char *v = src[i].setting != NULL ? strdup(src[i].setting)
						 : bind9_ini_get(ini, src[i].key);

		if (v == NULL && i <= 1)
			v = plug_fmt("ns%zu.%s", i + 1, d);
		else if (v == NULL && i == 4)
			v = plug_fmt("root.%s", d);
		if (v == NULL && (i <= 1 || i == 4)) {
			free(ini);
			bind9_vars_free(bv);
			return plug_fail(error_r, -ENOMEM, "out of memory");
		}
		if (v != NULL && i == 4) {
			for (char *p = v; *p != '\0'; p++)
				*p = *p == '@' ? '.' : *p;
		}
		if (v != NULL) {
			size_t l = strlen(v);

			if (l > 1 && v[l - 1] == '.')
				v[l - 1] = '\0';
		}
		if (v != NULL && !bind9_hostname_ok(v)) {
			plug_fail(error_r, -EINVAL,
				   "%s %s: \"%s\" is not a host name",
				   src[i].setting != NULL ? "setting"
							  : ini,
				   i == 4 ? "rpemail" : src[i].key, v);
			free(v);
			free(ini);
			bind9_vars_free(bv);
			return -EINVAL;
		}
		*src[i].dst = v;
	}
	free(ini);
	bv->v.domain = d;
	bv->v.ns1 = bv->ns1;
	bv->v.ns2 = bv->ns2;
	bv->v.ns3 = bv->ns3;
	bv->v.ns4 = bv->ns4;
	bv->v.rpemail = bv->rpemail;
	bv->v.server_ip = b->server_ip;
	bv->v.serial = zone_serial_next(base, time(NULL));
	return 0;
}

/* The zone text for a new domain d (checked later, in a batch). */
static int bind9_render(struct bind9 *b, const char *d, uint32_t base,
			char **text_r, const char **error_r)
{
	struct bind9_vars bv;
	char *tmpl = NULL;
	size_t len;
	int ret;

	*text_r = NULL;
	if (b->template_path != NULL) {
		ret = ophook_file_read_nofollow(b->template_path,
						BIND9_FILE_MAX, &tmpl, &len);
		if (ret < 0)
			return plug_fail(error_r, ret,
					  "setting zone_template: %s: %s",
					  b->template_path, strerror(-ret));
	}
	ret = bind9_vars(b, d, base, &bv, error_r);
	if (ret == 0) {
		ret = zone_render(tmpl != NULL ? tmpl : zone_default_template,
				  &bv.v, text_r, error_r);
		if (ret == -EINVAL)
			ret = plug_fail(error_r, ret, "%s: %s",
					 b->template_path != NULL
						 ? b->template_path
						 : "built-in template",
					 *error_r);
		bind9_vars_free(&bv);
	}
	free(tmpl);
	return ret;
}

/* Records of subdomain d in its parent zone. */
static char *bind9_sub_records(struct bind9 *b, const char *d)
{
	return plug_fmt("%s. 14400 IN A %s\nwww.%s. 14400 IN A %s\n", d,
			 b->server_ip, d, b->server_ip);
}

static int bind9_added(struct bind9 *b, const char *d, const char *user,
		       const char **error_r)
{
	char *path = bind9_zone_path(b, d), *text = NULL, *tag = NULL;
	char *recs = NULL;
	const char *parent;
	bool changed = false;
	uint32_t base = 0;
	size_t len;
	int ret = 0;

	if (path == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	pthread_mutex_lock(&b->lock);
	if (bind9_is_staged(b, d)) { /* on its way in */
		pthread_mutex_unlock(&b->lock);
		goto out;
	}
	if (bind9_file_exists(path)) {
		/* converge: the line and the owner record */
		ret = bind9_conf_edit(b, d, true, &changed, error_r);
		if (ret == 0 && bind9_state_zone(b, d) == NULL &&
		    ophook_file_read_nofollow(path, BIND9_FILE_MAX, &text,
					      &len) == 0) {
			if (bind9_state_zone_set(b, d, user != NULL ? user : "",
						 text) < 0)
				ret = plug_fail(error_r, -ENOMEM,
						 "out of memory");
			else
				ret = bind9_state_save(b, error_r);
		}
		pthread_mutex_unlock(&b->lock);
		if (changed)
			bind9_reload_request(b, NULL);
		goto out;
	}
	parent = json_string_value(
		json_object_get(json_object_get(b->state, "subs"), d));
	if (parent == NULL)
		parent = bind9_parent_zone(b, d, user);
	if (parent != NULL) {
		char *p = strdup(parent);

		tag = plug_fmt("sub:%s", d);
		if (b->server_ip == NULL) {
			ret = plug_fail(error_r, -EINVAL,
					 "setting server_ip is required to "
					 "add %s",
					 d);
		} else if (p == NULL || tag == NULL ||
			   (recs = bind9_sub_records(b, d)) == NULL) {
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
		} else {
			ret = bind9_zone_records(b, p, tag, recs, error_r);
			if (ret == 0 &&
			    json_object_set_new(json_object_get(b->state,
								"subs"),
						d, json_string(p)) == 0)
				ret = bind9_state_save(b, error_r);
			if (ret == 0)
				b->host->log(b->ctx, OPHOOK_LOG_INFO,
					     "%s: records added to the zone "
					     "of %s",
					     d, p);
		}
		free(p);
		pthread_mutex_unlock(&b->lock);
		goto out;
	}
	/* a zone removed earlier keeps its serial growing (secondaries) */
	base = (uint32_t)json_integer_value(json_object_get(
		json_object_get(b->state, "retired"), d));
	pthread_mutex_unlock(&b->lock);

	if (b->server_ip == NULL) {
		ret = plug_fail(error_r, -EINVAL,
				 "setting server_ip is required to add the "
				 "zone of %s",
				 d);
		goto out;
	}
	ret = bind9_render(b, d, base, &text, error_r);
	if (ret < 0)
		goto out;

	/* stage it: the action checks all new zones in one run, moves
	 * them in, adds their lines and reconfigs once.  The staged file is
	 * the durable record (its owner in a comment; init() picks staged
	 * files up again), so the state is saved by the batch, not here. */
	if (user != NULL && *user != '\0') {
		char *owned = plug_fmt("%s%s%s\n", text, BIND9_OWNER_TAG, user);

		if (owned == NULL) {
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
			goto out;
		}
		free(text);
		text = owned;
	}
	{
		char *staged = bind9_staged_path(b, d);

		ret = ophook_mkdir_p(b->staging_dir, 0755);
		if (ret < 0)
			ret = plug_fail(error_r, ret, "%s: %s",
					 b->staging_dir, strerror(-ret));
		else if (staged == NULL)
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
		else
			ret = bind9_write(b, staged, text, error_r);
		free(staged);
		if (ret < 0)
			goto out;
	}
	pthread_mutex_lock(&b->lock);
	if (!bind9_file_exists(path) && !bind9_is_staged(b, d)) {
		if (bind9_state_zone_set(b, d, user != NULL ? user : "",
					 text) < 0 ||
		    json_object_set_new(bind9_state_zone(b, d), "staged",
					json_true()) < 0)
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
		json_object_del(json_object_get(b->state, "retired"), d);
	}
	pthread_mutex_unlock(&b->lock);
	if (ret == 0) {
		b->host->log(b->ctx, OPHOOK_LOG_DEBUG, "%s: zone staged", d);
		bind9_kick(b, b->window_ms);
	}
out:
	free(recs);
	free(tag);
	free(text);
	free(path);
	return ret;
}

/* Move or delete a removed zone's file.  Under b->lock. */
static int bind9_zone_retire(struct bind9 *b, const char *d, const char *path,
			     const char **error_r)
{
	char stamp[32], *dst;
	time_t now = time(NULL);
	struct tm tm;
	int ret;

	b->host->own_write(b->ctx, path);
	if (b->removed_dir == NULL) {
		if (unlink(path) < 0 && errno != ENOENT)
			return plug_fail(error_r, -errno, "%s: %s", path,
					  strerror(errno));
		return 0;
	}
	ret = ophook_mkdir_p(b->removed_dir, 0750);
	if (ret < 0)
		return plug_fail(error_r, ret, "%s: %s", b->removed_dir,
				  strerror(-ret));
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	dst = plug_fmt("%s/%s.zone.%s", b->removed_dir, d, stamp);
	if (dst == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	b->host->own_write(b->ctx, dst);
	ret = rename(path, dst) < 0 && errno != ENOENT ? -errno : 0;
	if (ret < 0)
		plug_fail(error_r, ret, "%s -> %s: %s", path, dst,
			   strerror(-ret));
	free(dst);
	return ret;
}

static int bind9_removed(struct bind9 *b, const char *d,
			 const char **error_r)
{
	char *path = bind9_zone_path(b, d), *tag = NULL, *parent = NULL;
	json_t *subs;
	bool changed = false, had_file;
	int ret = 0;

	if (path == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	pthread_mutex_lock(&b->lock);
	subs = json_object_get(b->state, "subs");
	if (json_string_value(json_object_get(subs, d)) != NULL) {
		parent = strdup(json_string_value(json_object_get(subs, d)));
		tag = plug_fmt("sub:%s", d);
		if (parent == NULL || tag == NULL)
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
		else
			ret = bind9_zone_records(b, parent, tag, NULL, error_r);
		if (ret == -ENOENT) /* the parent went first */
			ret = 0;
		if (ret == 0) {
			json_object_del(subs, d);
			ret = bind9_state_save(b, error_r);
		}
	}
	if (ret == 0 && bind9_is_staged(b, d)) {
		/* never reached named: drop the staged file */
		char *staged = bind9_staged_path(b, d);

		if (staged != NULL) {
			b->host->own_write(b->ctx, staged);
			unlink(staged);
		}
		free(staged);
		json_object_del(json_object_get(b->state, "zones"), d);
		ret = bind9_state_save(b, error_r);
	}
	if (ret == 0)
		ret = bind9_conf_edit(b, d, false, &changed, error_r);
	had_file = bind9_file_exists(path);
	if (ret == 0 && had_file)
		ret = bind9_zone_retire(b, d, path, error_r);
	if (ret == 0 && (bind9_state_zone(b, d) != NULL || had_file)) {
		const char *k;
		json_t *v;
		void *tmp;

		json_t *z = bind9_state_zone(b, d);

		if (z != NULL && bind9_state_serial(z) > 0)
			json_object_set_new(json_object_get(b->state, "retired"),
					    d,
					    json_integer(bind9_state_serial(z)));
		json_object_del(json_object_get(b->state, "zones"), d);
		json_object_foreach_safe(subs, tmp, k, v)
		{
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), d) == 0)
				json_object_del(subs, k);
		}
		ret = bind9_state_save(b, error_r);
	}
	pthread_mutex_unlock(&b->lock);
	if (ret == 0 && (changed || had_file)) {
		b->host->log(b->ctx, OPHOOK_LOG_INFO, "%s: zone removed%s", d,
			     had_file && b->removed_dir != NULL
				     ? " (file archived)"
				     : "");
		bind9_reload_request(b, NULL);
	}
	free(tag);
	free(parent);
	free(path);
	return ret;
}

/* Log and emit dns.zone_rejected for zone d at path. */
static int bind9_reject(struct bind9 *b, const char *d, const char *path,
			const char *msg, const char **error_r)
{
	json_t *f = json_pack("{s:s,s:s,s:s}", "domain", d, "path", path,
			      "error", msg);
	char *fields = f != NULL ? json_dumps(f, JSON_COMPACT) : NULL;
	const char *eerr = NULL;
	int ret;

	b->host->log(b->ctx, OPHOOK_LOG_WARN,
		     "%s: zone rejected, the loaded one keeps serving: %s", d,
		     msg);
	ret = fields == NULL ? plug_fail(error_r, -ENOMEM, "out of memory")
			     : b->host->emit(b->ctx, "dns.zone_rejected", d,
					     fields, &eerr);
	if (ret < 0 && eerr != NULL)
		ret = plug_fail(error_r, ret, "emit dns.zone_rejected: %s",
				 eerr);
	free(fields);
	json_decref(f);
	return ret;
}

static int bind9_changed(struct bind9 *b, const struct ophook_event *ev,
			 const char **error_r)
{
	const char *evpath = b->host->event_get(ev, "path");
	char *d = NULL, *path = NULL, *text = NULL, *msg = NULL, *bumped = NULL;
	char hash[17];
	const char *old_hash, *ev_old, *ev_change;
	bool unknown_bump = false;
	uint32_t serial = 0, last;
	json_t *z;
	size_t len;
	int ret;

	if (evpath != NULL && strcmp(evpath, b->conf_path) == 0) {
		bind9_reload_request(b, NULL);
		return 0;
	}
	ret = bind9_event_domain(b, ev, &d, error_r);
	if (ret < 0)
		return ret;
	path = bind9_zone_path(b, d);
	if (path == NULL) {
		free(d);
		return plug_fail(error_r, -ENOMEM, "out of memory");
	}
	/* named-checkzone runs unlocked (events of other zones go on); the
	 * file must still hold what was checked once the lock is taken */
	for (int attempt = 0;; attempt++) {
		char *now = NULL;

		ret = ophook_file_read_nofollow(path, BIND9_FILE_MAX, &text,
						&len);
		if (ret == -ENOENT) { /* gone: domain.removed does the rest */
			ret = 0;
			goto out_unlocked;
		}
		if (ret < 0) {
			ret = plug_fail(error_r, ret, "%s: %s", path,
					 strerror(-ret));
			goto out_unlocked;
		}
		ret = bind9_check(b, d, text, path, &msg, error_r);
		if (ret < 0)
			goto out_unlocked;
		if (ret == 1) {
			ret = bind9_reject(b, d, path, msg, error_r);
			goto out_unlocked;
		}
		pthread_mutex_lock(&b->lock);
		if (ophook_file_read_nofollow(path, BIND9_FILE_MAX, &now,
					      &len) == 0 &&
		    strcmp(now, text) == 0) {
			free(now);
			break;
		}
		pthread_mutex_unlock(&b->lock);
		free(now);
		free(text);
		text = NULL;
		if (attempt == 2) {
			ret = plug_fail(error_r, OPHOOK_RETRY,
					 "%s keeps changing", path);
			goto out_unlocked;
		}
	}
	if (zone_serial_get(text, &serial) < 0) {
		ret = plug_fail(error_r, -EINVAL,
				 "%s: no numeric SOA serial", path);
		goto out;
	}
	snprintf(hash, sizeof(hash), "%016" PRIx64, zone_hash(text));
	z = bind9_state_zone(b, d);
	old_hash = json_string_value(json_object_get(z, "hash"));
	if (z != NULL && old_hash != NULL && strcmp(old_hash, hash) == 0 &&
	    bind9_state_serial(z) == serial)
		goto out; /* what named has already */
	/* a zone the plugin has no record of (made before it ran): the
	 * watcher's old_serial tells whether the edit kept the serial */
	ev_old = b->host->event_get(ev, "old_serial");
	ev_change = b->host->event_get(ev, "change");
	if (z == NULL && ev_old != NULL && ev_change != NULL &&
	    strcmp(ev_change, "updated") == 0 &&
	    strtoull(ev_old, NULL, 10) >= serial)
		unknown_bump = true;
	if (unknown_bump ||
	    (z != NULL && old_hash != NULL && strcmp(old_hash, hash) != 0 &&
	     serial <= bind9_state_serial(z))) {
		last = bind9_state_serial(z) > serial ? bind9_state_serial(z)
						      : serial;
		ret = zone_serial_set(text, zone_serial_next(last, time(NULL)),
				      &bumped);
		if (ret < 0) {
			ret = plug_fail(error_r, ret, "out of memory");
			goto out;
		}
		ret = bind9_write(b, path, bumped, error_r);
		if (ret < 0)
			goto out;
		b->host->log(b->ctx, OPHOOK_LOG_INFO,
			     "%s: content changed without a serial bump; "
			     "serial %u -> %u",
			     d, serial, zone_serial_next(last, time(NULL)));
		free(text);
		text = bumped;
		bumped = NULL;
	}
	if (bind9_state_zone_set(b, d, NULL, text) < 0) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out;
	}
	ret = bind9_state_save(b, error_r);
	if (ret == 0 && bind9_conf_has(b, d))
		bind9_reload_request(b, d);
	else if (ret == 0)
		b->host->log(b->ctx, OPHOOK_LOG_INFO,
			     "%s: checked, but it has no line in %s: not "
			     "loaded",
			     d, b->conf_path);
out:
	pthread_mutex_unlock(&b->lock);
out_unlocked:
	free(bumped);
	free(msg);
	free(text);
	free(path);
	free(d);
	return ret;
}

/* A DKIM selector: labels of [A-Za-z0-9_-]. */
static bool bind9_selector_ok(const char *s)
{
	size_t label = 0;

	if (*s == '\0' || strlen(s) > 63)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
			return false;
		label++;
	}
	return label > 0;
}

/* The zone holding d: its own, its parent's as a subdomain, or the
 * nearest enclosing zone file.  Under b->lock; NULL when none. */
static char *bind9_zone_of(struct bind9 *b, const char *d)
{
	const char *parent = json_string_value(
		json_object_get(json_object_get(b->state, "subs"), d));

	if (parent != NULL)
		return strdup(parent);
	for (const char *p = d; p != NULL; p = strchr(p, '.')) {
		char *path;
		bool exists;

		if (*p == '.')
			p++;
		if (strchr(p, '.') == NULL)
			break;
		path = bind9_zone_file(b, p);
		exists = path != NULL && bind9_file_exists(path);
		free(path);
		if (exists)
			return strdup(p);
	}
	return NULL;
}

static int bind9_dkim(struct bind9 *b, const struct ophook_event *ev,
		      const char **error_r)
{
	const char *sel = b->host->event_get(ev, "selector");
	const char *txt = b->host->event_get(ev, "txt");
	char *d = NULL, *zone = NULL, *strings = NULL, *tag = NULL;
	char *recs = NULL;
	int ret;

	ret = bind9_event_domain(b, ev, &d, error_r);
	if (ret < 0)
		return ret;
	if (sel == NULL || !bind9_selector_ok(sel)) {
		ret = plug_fail(error_r, -EINVAL,
				 "%s: field selector: %s", ev->type,
				 sel == NULL ? "missing"
					     : "not a DNS label ([A-Za-z0-9_-])");
		goto out;
	}
	if (txt == NULL) {
		ret = plug_fail(error_r, -EINVAL, "%s: field txt: missing",
				 ev->type);
		goto out;
	}
	ret = zone_txt_strings(txt, &strings);
	if (ret == -EINVAL) {
		ret = plug_fail(error_r, ret,
				 "%s: field txt: control characters",
				 ev->type);
		goto out;
	}
	if (ret < 0)
		goto out;
	tag = plug_fmt("dkim:%s.%s", sel, d);
	recs = plug_fmt("%s._domainkey.%s. 3600 IN TXT %s", sel, d, strings);
	if (tag == NULL || recs == NULL) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out;
	}
	pthread_mutex_lock(&b->lock);
	zone = bind9_zone_of(b, d);
	if (zone == NULL)
		ret = plug_fail(error_r, -ENOENT,
				 "%s: no zone in %s holds %s", ev->type,
				 b->zones_dir, d);
	else
		ret = bind9_zone_records(b, zone, tag, recs, error_r);
	pthread_mutex_unlock(&b->lock);
	if (ret == 0)
		b->host->log(b->ctx, OPHOOK_LOG_INFO,
			     "%s: DKIM selector %s published in zone %s", d,
			     sel, zone);
out:
	free(recs);
	free(tag);
	free(strings);
	free(zone);
	free(d);
	return ret;
}

static int bind9_on_event(void *data, const struct ophook_event *ev,
			  const char **error_r)
{
	struct bind9 *b = data;
	const char *from = secondary_origin(b, ev);
	char *d = NULL;
	int ret;

	if (from == NULL)
		return plug_fail(error_r, -EINVAL,
				 "%s: field node/origin_node: not a node name",
				 ev->type);
	if (strcmp(from, b->node) != 0)
		return secondary_event(b, ev, from, error_r);
	if (!b->primary) {
		/* role secondary: this node's zones are not served from
		 * here; named's own config edited by hand still reconfigs */
		const char *path = b->host->event_get(ev, "path");

		if (strcmp(ev->type, "dns.config.changed") == 0 ||
		    (strcmp(ev->type, "dns.zone.changed") == 0 &&
		     path != NULL && strcmp(path, b->conf_path) == 0))
			bind9_reload_request(b, NULL);
		return 0;
	}

	if (strcmp(ev->type, "dns.zone.changed") == 0)
		return bind9_changed(b, ev, error_r);
	if (strcmp(ev->type, "dns.config.changed") == 0) {
		bind9_reload_request(b, NULL); /* named.conf* edited by hand */
		return 0;
	}
	if (strcmp(ev->type, "mail.dkim.created") == 0)
		return bind9_dkim(b, ev, error_r);
	if (strcmp(ev->type, "domain.added") != 0 &&
	    strcmp(ev->type, "domain.removed") != 0)
		return 0;
	ret = bind9_event_domain(b, ev, &d, error_r);
	if (ret < 0)
		return ret;
	if (secondary_is_zone(b, d)) {
		ret = strcmp(ev->type, "domain.added") == 0
			      ? plug_fail(error_r, -EEXIST,
					  "%s: %s is a secondary zone here "
					  "(its primary is another node); "
					  "remove it there first",
					  ev->type, d)
			      : 0;
		free(d);
		return ret;
	}
	if (strcmp(ev->type, "domain.added") == 0) {
		const char *user = b->host->event_get(ev, "user");
		const char *why = NULL;

		if (user != NULL && !ophook_name_valid_user(user, &why))
			ret = plug_fail(error_r, -EINVAL,
					 "%s: field user: %s", ev->type, why);
		else
			ret = bind9_added(b, d, user, error_r);
	} else {
		ret = bind9_removed(b, d, error_r);
	}
	free(d);
	return ret;
}

/* --- init / fini --------------------------------------------------------- */

static void bind9_fini(void *data)
{
	struct bind9 *b = data;

	if (b == NULL)
		return;
	free(b->zones_dir);
	free(b->conf_path);
	free(b->conf_file);
	free(b->template_path);
	free(b->server_ip);
	free(b->ns1);
	free(b->ns2);
	free(b->rpemail);
	free(b->state_path);
	free(b->removed_dir);
	free(b->staging_dir);
	free(b->staging_named);
	json_decref(b->state);
	json_decref(b->reload);
	json_decref(b->primaries);
	free(b->node);
	free(b->opts);
	free(b->sec_dir);
	free(b->sec_named);
	pthread_mutex_destroy(&b->lock);
	pthread_mutex_destroy(&b->rlock);
	free(b);
}

static int bind9_init_settings(struct bind9 *b, const char **error_r)
{
	const struct ophook_host *h = b->host;
	int ret;

	if ((ret = bind9_str(b, "zones_dir", NULL, &b->zones_dir)) < 0 ||
	    (ret = bind9_str(b, "named_conf_local", NULL, &b->conf_path)) < 0 ||
	    (ret = bind9_str(b, "zone_file_in_conf", b->zones_dir,
			     &b->conf_file)) < 0 ||
	    (ret = bind9_str(b, "zone_template", NULL,
			     &b->template_path)) < 0 ||
	    (ret = bind9_str(b, "server_ip", NULL, &b->server_ip)) < 0 ||
	    (ret = bind9_str(b, "ns1", NULL, &b->ns1)) < 0 ||
	    (ret = bind9_str(b, "ns2", NULL, &b->ns2)) < 0 ||
	    (ret = bind9_str(b, "rpemail", NULL, &b->rpemail)) < 0)
		return plug_fail(error_r, ret, "out of memory");
	for (size_t l = strlen(b->zones_dir);
	     l > 1 && b->zones_dir[l - 1] == '/'; l--)
		b->zones_dir[l - 1] = '\0';
	if ((ret = bind9_path_ok("zones_dir", b->zones_dir, error_r)) < 0 ||
	    (ret = bind9_path_ok("named_conf_local", b->conf_path,
				 error_r)) < 0 ||
	    (ret = bind9_path_ok("zone_file_in_conf", b->conf_file,
				 error_r)) < 0)
		return ret;
	if (b->server_ip != NULL) {
		unsigned char addr[16];

		if (inet_pton(AF_INET, b->server_ip, addr) != 1 &&
		    inet_pton(AF_INET6, b->server_ip, addr) != 1)
			return plug_fail(error_r, -EINVAL,
					 "setting server_ip: \"%s\" is not an "
					 "IP address",
					 b->server_ip);
	}
	if (strcmp(h->setting_str(b->ctx, "removed_zones"), "archive") == 0) {
		b->removed_dir = plug_fmt("%s/.removed", b->zones_dir);
		if (b->removed_dir == NULL)
			return plug_fail(error_r, -ENOMEM, "out of memory");
	}
	b->window_ms = (unsigned)h->setting_int(b->ctx, "window_ms");
	b->reload_all_max = (unsigned)h->setting_int(b->ctx, "reload_all_max");
	b->rndc_argv = h->setting_list(b->ctx, "rndc_argv");
	b->check_lim.mem_max =
		(unsigned long long)h->setting_int(b->ctx, "checker_memory_mb")
		<< 20;
	b->check_lim.cpu_max_s =
		(unsigned)h->setting_int(b->ctx, "checker_cpu_s");
	b->check_timeout_ms =
		(unsigned)h->setting_int(b->ctx, "checker_timeout_ms");
	b->generate_max = (uint64_t)h->setting_int(b->ctx, "generate_max");
	b->check_lim.cancel = b->tool_lim.cancel = bind9_cancel;
	b->check_lim.cancel_arg = b->tool_lim.cancel_arg = b;
	{
		const char *why = NULL;
		int r = run_opts_user(&b->check_lim,
					h->setting_str(b->ctx, "checker_user"),
					&why);

		if (r < 0)
			return plug_fail(error_r, r, "setting checker_user: %s",
					 why);
	}
	b->checkzone_argv = h->setting_list(b->ctx, "checkzone_argv");
	b->checkconf_argv = h->setting_list(b->ctx, "checkconf_argv");
	/* staged zones live beside the others, so that a named-checkconf in
	 * named's container sees them under zone_file_in_conf */
	b->staging_dir = plug_fmt("%s/.ophook-staging", b->zones_dir);
	b->staging_named =
		strstr(b->conf_file, "{domain}") != NULL
			? plug_fmt("%s", b->staging_dir)
			: plug_fmt("%s/.ophook-staging", b->conf_file);
	if (b->staging_dir == NULL || b->staging_named == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	return 0;
}

/* The owner named in a zone's BIND9_OWNER_TAG comment, or NULL. */
static char *bind9_owner_of(const char *text)
{
	const char *p = strstr(text, "\n" BIND9_OWNER_TAG), *why;
	char *user;

	if (p == NULL)
		return NULL;
	p += 1 + strlen(BIND9_OWNER_TAG);
	user = strndup(p, strcspn(p, "\r\n"));
	if (user != NULL && !ophook_name_valid_user(user, &why)) {
		free(user);
		user = NULL;
	}
	return user;
}

/* After a restart: staged files the state does not know (their adds were
 * acknowledged, the state is saved per batch) are staged again; staged
 * entries whose file is gone are dropped, or finished when the file made it
 * into zones_dir.  True when something waits for the batch. */
static bool bind9_staging_scan(struct bind9 *b)
{
	json_t *zones = json_object_get(b->state, "zones"), *v;
	const char *d, *err = NULL;
	struct dirent *de;
	bool pending = false, dirty = false;
	void *tmp;
	DIR *dir;

	json_object_foreach_safe(zones, tmp, d, v)
	{
		char *staged, *path;
		bool changed = false;

		if (!json_is_true(json_object_get(v, "staged")))
			continue;
		staged = bind9_staged_path(b, d);
		path = bind9_zone_path(b, d);
		if (staged != NULL && bind9_file_exists(staged)) {
			pending = true;
		} else if (path != NULL && bind9_file_exists(path)) {
			json_object_del(v, "staged");
			if (bind9_conf_edit(b, d, true, &changed, &err) < 0)
				b->host->log(b->ctx, OPHOOK_LOG_ERROR, "%s",
					     err);
			if (changed)
				bind9_reload_request(b, NULL);
			dirty = true;
		} else if (staged != NULL && path != NULL) {
			json_object_del(zones, d);
			dirty = true;
		}
		free(staged);
		free(path);
	}
	dir = opendir(b->staging_dir);
	while (dir != NULL && (de = readdir(dir)) != NULL) {
		size_t n = strlen(de->d_name);
		char *name, *norm = NULL, *path, *text = NULL, *user;
		const char *why;
		size_t len;

		if (n <= 5 || strcmp(de->d_name + n - 5, ".zone") != 0)
			continue;
		name = strndup(de->d_name, n - 5);
		if (name == NULL)
			break;
		if (zone_domain_norm(name, &norm, &why) == 0 &&
		    strcmp(norm, name) == 0 && !bind9_is_staged(b, name) &&
		    (path = bind9_staged_path(b, name)) != NULL) {
			if (ophook_file_read_nofollow(path, BIND9_FILE_MAX,
						      &text, &len) == 0) {
				user = bind9_owner_of(text);
				if (bind9_state_zone_set(b, name,
							 user != NULL ? user
								      : "",
							 text) == 0)
					json_object_set_new(
						bind9_state_zone(b, name),
						"staged", json_true());
				free(user);
				free(text);
				pending = dirty = true;
			}
			free(path);
		}
		free(norm);
		free(name);
	}
	if (dir != NULL)
		closedir(dir);
	if (dirty && bind9_state_save(b, &err) < 0)
		b->host->log(b->ctx, OPHOOK_LOG_ERROR, "%s", err);
	return pending;
}

static int bind9_init(struct ophook_ctx *ctx, const struct ophook_host *host,
		      void **data_r, const char **error_r)
{
	struct bind9 *b;
	int ret;

	if (!OPHOOK_HOST_HAS(host, setting_is_set))
		return plug_fail(error_r, -ENOTSUP,
				  "the host is too old (no settings_declare)");
	ret = host->settings_declare(ctx, bind9_settings_decl,
				     sizeof(bind9_settings_decl) /
					     sizeof(bind9_settings_decl[0]),
				     error_r);
	if (ret != 0)
		return ret; /* a bad setting, or a check-only load */
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return plug_fail(error_r, -ENOMEM, "out of memory");
	b->ctx = ctx;
	b->host = host;
	pthread_mutex_init(&b->lock, NULL);
	pthread_mutex_init(&b->rlock, NULL);
	b->reload = json_object();
	b->state_path = plug_fmt("%s/zones.json", host->state_dir(ctx));
	if (b->reload == NULL || b->state_path == NULL) {
		bind9_fini(b);
		return plug_fail(error_r, -ENOMEM, "out of memory");
	}
	ret = bind9_init_settings(b, error_r);
	if (ret == 0)
		ret = secondary_init(b, error_r);
	if (ret == 0)
		ret = bind9_state_load(b, error_r);
	if (ret < 0) {
		bind9_fini(b);
		return ret;
	}
	*data_r = b;
	if (bind9_staging_scan(b))
		bind9_kick(b, b->window_ms);
	if (json_object_size(json_object_get(b->state, "gone")) > 0)
		bind9_reload_request(b, NULL); /* finish removals */
	return 0;
}

const struct ophook_plugin ophook_plugin = {
	OPHOOK_PLUGIN_HEADER("bind9"),
	.description = "BIND9 zones for the panel's domains (render, check, "
		       "named.conf.local, coalesced rndc)",
	.flags = OPHOOK_PLUGIN_DECLARES_SETTINGS,
	.subscriptions = (const char *const[]){ "domain.added",
						"domain.removed",
						"dns.zone.changed",
						"dns.config.changed",
						"mail.dkim.created", NULL },
	.init = bind9_init,
	.fini = bind9_fini,
	.on_event = bind9_on_event,
};
