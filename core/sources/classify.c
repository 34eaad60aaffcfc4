/* The classifier: path + content + previous facts => typed events.
 * See DESIGN.md, "The OpenPanel tree it must understand". */
#define _GNU_SOURCE
#include "classify.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "util.h"

#define CLASSIFY_MAX_PARTS 16

static const char *const classify_kind_names[CLASSIFY_KIND_MAX] = {
	[CLASSIFY_NONE] = "none",
	[CLASSIFY_DOMAIN_CONF] = "domain_conf",
	[CLASSIFY_CERT_JSON] = "cert",
	[CLASSIFY_CUSTOM_CERT] = "custom_cert",
	[CLASSIFY_USER_DIR] = "user_dir",
	[CLASSIFY_DENYLIST] = "denylist",
	[CLASSIFY_PANEL_CONFIG] = "panel_config",
	[CLASSIFY_ZONE] = "zone",
	[CLASSIFY_NAMED_CONF] = "named_conf",
	[CLASSIFY_MAIL_ACCOUNTS] = "mail_accounts",
	[CLASSIFY_MAIL_VIRTUAL] = "mail_virtual",
	[CLASSIFY_MAIL_QUOTAS] = "mail_quotas",
	[CLASSIFY_FTP_USERS] = "ftp_users",
	[CLASSIFY_CRONS] = "crons",
	[CLASSIFY_BACKUP_ENV] = "backup_env",
	[CLASSIFY_NOTIFICATIONS] = "notifications",
};

const char *classify_kind_name(enum classify_kind kind)
{
	if ((unsigned)kind >= CLASSIFY_KIND_MAX)
		return "?";
	return classify_kind_names[kind];
}

bool classify_kind_is_dir(enum classify_kind kind)
{
	return kind == CLASSIFY_USER_DIR;
}

bool classify_kind_is_customer(enum classify_kind kind)
{
	return kind == CLASSIFY_CRONS || kind == CLASSIFY_BACKUP_ENV;
}

uint64_t classify_hash(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);

	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

/* ends_with for a string of known length and a literal suffix */
#define ENDS_LIT(s, len, lit)                                                \
	((len) >= sizeof(lit) - 1 &&                                         \
	 memcmp((s) + (len) - (sizeof(lit) - 1), lit, sizeof(lit) - 1) == 0)

bool classify_ignored_name(const char *b)
{
	size_t len = strlen(b);

	if (len == 0 || b[0] == '.')
		return true; /* dot files: .#x, .x.swp, renameio ".<name>N" */
	if (len == 9 && strncmp(b, "sed", 3) == 0) {
		bool alnum = true;

		for (size_t i = 3; i < 9; i++)
			if (!isalnum((unsigned char)b[i]))
				alnum = false;
		if (alnum)
			return true;
	}
	if (b[len - 1] == '~' || (len == 4 && memcmp(b, "4913", 4) == 0))
		return true;
	if (ENDS_LIT(b, len, ".swp") || ENDS_LIT(b, len, ".swx") ||
	    ENDS_LIT(b, len, ".swo") || ENDS_LIT(b, len, ".bak") ||
	    ENDS_LIT(b, len, ".dpkg-new") || ENDS_LIT(b, len, ".dpkg-old"))
		return true;
	/* "*.tmp", "*.tmp.*" and "name.tmp12345" (Go's os.CreateTemp with a
	 * "*.tmp*" pattern); every ".tmp" is at or after the first one */
	const char *t = b;

	while ((t = memchr(t, '.', len - (size_t)(t - b))) != NULL &&
	       strncmp(t, ".tmp", 4) != 0)
		t++;
	if (t != NULL) {
		const char *q = t + 4;

		if (ENDS_LIT(b, len, ".tmp") || strstr(t, ".tmp.") != NULL)
			return true;
		while (*q >= '0' && *q <= '9')
			q++;
		if (*q == '\0')
			return true;
	}
	return false;
}

/* Split `rel` on '/' into parts (pointers into buf; empty parts skipped,
 * as strtok would). */
static size_t split_path(char *buf, char **parts, size_t max)
{
	size_t n = 0;
	char *p = buf;

	for (;;) {
		while (*p == '/')
			p++;
		if (*p == '\0')
			break;
		if (n == max)
			return max + 1;
		parts[n++] = p;
		p = strchrnul(p, '/');
		if (*p == '\0')
			break;
		*p++ = '\0';
	}
	return n;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

static bool set_name(struct classify_target *t, const char *s, size_t len,
		     bool domain, const char **why_r)
{
	if (len >= sizeof(t->name)) {
		*why_r = domain ? "domain name longer than 253 bytes"
				: "user name too long";
		return false;
	}
	memcpy(t->name, s, len);
	t->name[len] = '\0';
	if (domain)
		return name_valid_domain(t->name, why_r);
	return name_valid_user(t->name, why_r);
}

static enum classify_kind classify_root_path(char **p, size_t n,
					     struct classify_target *t,
					     const char **why_r)
{
	const char *last = p[n - 1];
	size_t ll = strlen(last);

	if (n == 3 && strcmp(p[0], "caddy") == 0 &&
	    strcmp(p[1], "domains") == 0 && ends_with(last, ".conf")) {
		if (!set_name(t, last, ll - 5, true, why_r))
			return CLASSIFY_NONE;
		return t->kind = CLASSIFY_DOMAIN_CONF;
	}
	if (n == 3 && strcmp(p[0], "caddy") == 0 &&
	    strcmp(p[1], "deny") == 0 && ends_with(last, ".ips")) {
		if (!set_name(t, last, ll - 4, false, why_r))
			return CLASSIFY_NONE;
		return t->kind = CLASSIFY_DENYLIST;
	}
	/* custom certificates: custom/<d>/fullchain.pem (+ key.pem) as
	 * opencli domains-ssl writes them, and custom/<h>/<h>.crt (+ .key)
	 * for the panel's own host name; the keys are never read */
	if (n == 5 && strcmp(p[0], "caddy") == 0 &&
	    strcmp(p[1], "ssl") == 0 && strcmp(p[2], "custom") == 0 &&
	    (strcmp(last, "fullchain.pem") == 0 ||
	     (ll == strlen(p[3]) + 4 && ends_with(last, ".crt") &&
	      strncmp(last, p[3], ll - 4) == 0))) {
		if (!set_name(t, p[3], strlen(p[3]), true, why_r))
			return CLASSIFY_NONE;
		return t->kind = CLASSIFY_CUSTOM_CERT;
	}
	/* caddy/ssl/[certificates/]<issuer>/<d>/<d>.json */
	if (n >= 5 && n <= 6 && strcmp(p[0], "caddy") == 0 &&
	    strcmp(p[1], "ssl") == 0 && strcmp(p[2], "custom") != 0 &&
	    ends_with(last, ".json")) {
		const char *d = p[n - 2];
		size_t dl = strlen(d);

		if (ll != dl + 5 || strncmp(last, d, dl) != 0)
			return CLASSIFY_NONE;
		if (n == 6 && strcmp(p[2], "certificates") != 0)
			return CLASSIFY_NONE;
		if (strlen(p[n - 3]) >= sizeof(t->issuer))
			return CLASSIFY_NONE;
		/* Caddy stores *.example.com as wildcard_.example.com */
		if (strncmp(d, "wildcard_.", 10) == 0) {
			if (!set_name(t, d + 10, dl - 10, true, why_r))
				return CLASSIFY_NONE;
			memmove(t->name + 2, t->name, dl - 10 + 1);
			t->name[0] = '*';
			t->name[1] = '.';
			t->wildcard = true;
		} else if (!set_name(t, d, dl, true, why_r)) {
			return CLASSIFY_NONE;
		}
		strcpy(t->issuer, p[n - 3]);
		return t->kind = CLASSIFY_CERT_JSON;
	}
	if (n == 4 && strcmp(p[0], "openpanel") == 0 &&
	    strcmp(p[1], "core") == 0 && strcmp(p[2], "users") == 0) {
		if (!set_name(t, last, ll, false, why_r))
			return CLASSIFY_NONE;
		return t->kind = CLASSIFY_USER_DIR;
	}
	if (n == 3 && strcmp(p[0], "openpanel") == 0 &&
	    strcmp(p[1], "conf") == 0 &&
	    strcmp(last, "openpanel.config") == 0)
		return t->kind = CLASSIFY_PANEL_CONFIG;
	/* ftp/users/<ctx>/users.list (opencli ftp-add, ftp-delete) */
	if (n == 4 && strcmp(p[0], "ftp") == 0 &&
	    strcmp(p[1], "users") == 0 && strcmp(last, "users.list") == 0) {
		if (!set_name(t, p[2], strlen(p[2]), false, why_r))
			return CLASSIFY_NONE;
		return t->kind = CLASSIFY_FTP_USERS;
	}
	return CLASSIFY_NONE;
}

/* The length of dir without trailing slashes (1 for "/"). */
static size_t dir_len(const char *dir)
{
	size_t l = strlen(dir);

	while (l > 1 && dir[l - 1] == '/')
		l--;
	return l;
}

/* HOME/<ctx>/crons.ini and HOME/<ctx>/backup.env */
static enum classify_kind classify_home_path(const char *home,
					     const char *path,
					     struct classify_target *t,
					     const char **why_r)
{
	size_t hl = dir_len(home);
	const char *ctx, *slash, *b;

	if (strncmp(path, home, hl) != 0 || path[hl] != '/')
		return CLASSIFY_NONE;
	ctx = path + hl + 1;
	slash = strchr(ctx, '/');
	if (slash == NULL || strchr(slash + 1, '/') != NULL)
		return CLASSIFY_NONE;
	b = slash + 1;
	if (strcmp(b, "crons.ini") == 0)
		t->kind = CLASSIFY_CRONS;
	else if (strcmp(b, "backup.env") == 0)
		t->kind = CLASSIFY_BACKUP_ENV;
	else
		return CLASSIFY_NONE;
	if (!set_name(t, ctx, (size_t)(slash - ctx), false, why_r))
		return t->kind = CLASSIFY_NONE;
	return t->kind;
}

enum classify_kind classify_path(const char *root, const char *path,
				 struct classify_target *t,
				 const char **why_r)
{
	const struct classify_roots roots = { root, NULL, NULL };

	return classify_path_in(&roots, path, t, why_r);
}

enum classify_kind classify_path_in(const struct classify_roots *roots,
				    const char *path,
				    struct classify_target *t,
				    const char **why_r)
{
	const char *root = roots->root;
	size_t rl = strlen(root);
	const char *b = base_name(path);

	memset(t, 0, sizeof(*t));
	*why_r = NULL;
	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (classify_ignored_name(b))
		return CLASSIFY_NONE;
	if (roots->notifications != NULL &&
	    strcmp(path, roots->notifications) == 0)
		return t->kind = CLASSIFY_NOTIFICATIONS;
	if (roots->home != NULL &&
	    (strcmp(b, "crons.ini") == 0 || strcmp(b, "backup.env") == 0) &&
	    classify_home_path(roots->home, path, t, why_r) != CLASSIFY_NONE)
		return t->kind;
	if (*why_r != NULL)
		return CLASSIFY_NONE;
	if (strncmp(path, root, rl) == 0 && path[rl] == '/') {
		char buf[4096], *parts[CLASSIFY_MAX_PARTS + 1];
		size_t n, len = strlen(path + rl + 1);

		if (len >= sizeof(buf))
			return CLASSIFY_NONE;
		memcpy(buf, path + rl + 1, len + 1);
		n = split_path(buf, parts, CLASSIFY_MAX_PARTS);
		if (n == 0 || n > CLASSIFY_MAX_PARTS)
			return CLASSIFY_NONE;
		return classify_root_path(parts, n, t, why_r);
	}
	/* extra roots: bind zones, named.conf.local, mail config */
	if (strcmp(b, "named.conf.local") == 0)
		return t->kind = CLASSIFY_NAMED_CONF;
	if (strcmp(b, "postfix-accounts.cf") == 0)
		return t->kind = CLASSIFY_MAIL_ACCOUNTS;
	if (strcmp(b, "postfix-virtual.cf") == 0)
		return t->kind = CLASSIFY_MAIL_VIRTUAL;
	if (strcmp(b, "dovecot-quotas.cf") == 0)
		return t->kind = CLASSIFY_MAIL_QUOTAS;
	if (ends_with(b, ".zone") && b > path + 6 &&
	    strncmp(b - 7, "/zones/", 7) == 0) {
		if (!set_name(t, b, strlen(b) - 5, true, why_r))
			return CLASSIFY_NONE;
		return t->kind = CLASSIFY_ZONE;
	}
	return CLASSIFY_NONE;
}

char *classify_aux_path(const struct classify_target *t, const char *path)
{
	size_t len = strlen(path);

	if (t->kind != CLASSIFY_CERT_JSON || len < 5)
		return NULL;
	return xasprintf("%.*s.crt", (int)(len - 5), path);
}

/* ---- results ---- */

void classify_result_clear(struct classify_result *r)
{
	for (size_t i = 0; i < r->n_events; i++) {
		free(r->events[i].type);
		free(r->events[i].subject);
		json_decref(r->events[i].payload);
	}
	free(r->events);
	json_decref(r->facts);
	for (size_t i = 0; i < r->n_warnings; i++)
		free(r->warnings[i]);
	free(r->warnings);
	memset(r, 0, sizeof(*r));
}

static void warn(struct classify_result *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void warn(struct classify_result *r, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	if (r == NULL || r->n_warnings >= 100)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (s == NULL)
		return;
	r->warnings = xrealloc(r->warnings,
			       (r->n_warnings + 1) * sizeof(*r->warnings));
	r->warnings[r->n_warnings++] = s;
}

static void add_event(struct classify_result *r, const char *type,
		      const char *subject, json_t *payload)
{
	if (r->n_events == r->cap_events) {
		r->cap_events = r->cap_events ? r->cap_events * 2 : 4;
		r->events = xrealloc(r->events,
				     r->cap_events * sizeof(*r->events));
	}
	r->events[r->n_events].type = xstrdup(type);
	r->events[r->n_events].subject = xstrdup(subject);
	r->events[r->n_events].payload = payload;
	r->n_events++;
}

/* A JSON string from file text: invalid UTF-8 and control bytes become
 * '?'. */
static json_t *jstr(const char *s, size_t len)
{
	size_t k = 0;

	/* printable ASCII (the common case) is valid UTF-8: no check */
	while (k < len && (unsigned char)s[k] >= 0x20 &&
	       (unsigned char)s[k] < 0x80)
		k++;
	if (k == len)
		return json_stringn_nocheck(s, len);

	json_t *j = json_stringn(s, len);

	if (j != NULL) {
		bool clean = true;

		for (size_t i = 0; i < len; i++)
			if ((unsigned char)s[i] < 0x20)
				clean = false;
		if (clean)
			return j;
		json_decref(j);
	}
	/* a copy of all len bytes: s may hold a NUL (strndup would stop
	 * there and the loop below would run past its end) */
	char *c = xmalloc(len + 1);

	memcpy(c, s, len);
	c[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)c[i] < 0x20 || (unsigned char)c[i] >= 0x7f)
			c[i] = '?';
	j = json_stringn(c, len);
	free(c);
	return j;
}

static json_t *payload_new(const char *path)
{
	json_t *p = json_object();

	json_object_set_new(p, "path", jstr(path, strlen(path)));
	return p;
}

static json_t *payload_domain(const struct classify_target *t,
			      const char *path)
{
	json_t *p = payload_new(path);

	json_object_set_new(p, "domain", json_string(t->name));
	return p;
}

static const char *fact_str(const json_t *facts, const char *key)
{
	return json_string_value(json_object_get(facts, key));
}

/* ---- line helpers ---- */

struct line_iter {
	const char *p, *end;
	unsigned lineno;
};

/* Next line (without '\n' and trailing '\r' / blanks, leading blanks
 * skipped).  False at the end. */
static bool line_next(struct line_iter *it, const char **s_r, size_t *len_r)
{
	if (it->p >= it->end)
		return false;
	const char *s = it->p, *nl = memchr(s, '\n', (size_t)(it->end - s));
	const char *e = nl != NULL ? nl : it->end;

	it->p = nl != NULL ? nl + 1 : it->end;
	it->lineno++;
	while (s < e && (*s == ' ' || *s == '\t'))
		s++;
	while (e > s && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
		e--;
	*s_r = s;
	*len_r = (size_t)(e - s);
	return true;
}

static bool mem_has(const char *s, size_t len, const char *needle)
{
	size_t nl = strlen(needle);
	const char *p = s, *end;

	if (nl == 0 || nl > len)
		return nl == 0;
	end = s + len - nl + 1; /* last possible start + 1 */
	while ((p = memchr(p, needle[0], (size_t)(end - p))) != NULL) {
		if (memcmp(p, needle, nl) == 0)
			return true;
		p++;
	}
	return false;
}

/* ---- Caddy domain conf ---- */

/* What `opencli domains-suspend --comment=X` puts on the first line */
#define CONF_COMMENT "# comment:"
#define CONF_COMMENT_LEN (sizeof(CONF_COMMENT) - 1)

bool classify_conf_suspended(const char *content, size_t len,
			     const char **reason_r, char **comment_r)
{
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;
	bool file_server = false, proxy = false, page_user = false,
	     page_domain = false;

	*reason_r = NULL;
	*comment_r = NULL;
	while (line_next(&it, &s, &l)) {
		if (l == 0)
			continue;
		if (s[0] == '#') {
			/* only the line opencli writes for --comment=X
			 * (`# comment: X`); the templates' own comments
			 * (`# auto ssl`) are no reason */
			if (*comment_r == NULL && l > CONF_COMMENT_LEN &&
			    memcmp(s, CONF_COMMENT, CONF_COMMENT_LEN) == 0) {
				size_t k = CONF_COMMENT_LEN, e = l;

				while (k < e && (s[k] == ' ' || s[k] == '\t'))
					k++;
				while (e > k && (s[e - 1] == ' ' ||
						 s[e - 1] == '\t' ||
						 s[e - 1] == '\r'))
					e--;
				if (e > k)
					*comment_r = xstrndup(s + k, e - k);
			}
			continue;
		}
		if (mem_has(s, l, "reverse_proxy"))
			proxy = true;
		if (mem_has(s, l, "file_server"))
			file_server = true;
		if (mem_has(s, l, "suspended_user.html"))
			page_user = true;
		if (mem_has(s, l, "suspended_domain.html") ||
		    mem_has(s, l, "suspended_website.html"))
			page_domain = true;
	}
	if (file_server && !proxy && (page_user || page_domain)) {
		*reason_r = page_user ? "user" : "domain";
		return true;
	}
	free(*comment_r);
	*comment_r = NULL;
	return false;
}

/* Is the line (blanks stripped) the directive `name`, alone or followed
 * by a blank or a brace? */
static bool line_directive(const char *s, size_t l, const char *name)
{
	size_t nl = strlen(name);

	return l >= nl && memcmp(s, name, nl) == 0 &&
	       (l == nl || s[nl] == ' ' || s[nl] == '\t' || s[nl] == '{');
}

void classify_conf_modes(const char *content, size_t len,
			 const char **ssl_r, const char **waf_r)
{
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;
	int depth = -1; /* the tls block's nesting, -1 outside it */

	*ssl_r = NULL;
	*waf_r = NULL;
	while (line_next(&it, &s, &l)) {
		if (l == 0 || s[0] == '#')
			continue;
		if (depth >= 0) {
			if (mem_has(s, l, "on_demand") && *ssl_r == NULL)
				*ssl_r = "auto";
			if (line_directive(s, l, "issuer") &&
			    mem_has(s, l, "internal"))
				*ssl_r = "internal";
			for (size_t i = 0; i < l; i++)
				depth += s[i] == '{' ? 1 : s[i] == '}' ? -1 : 0;
			if (depth <= 0)
				depth = -1;
		} else if (*ssl_r == NULL && line_directive(s, l, "tls")) {
			/* `tls <cert> <key>` (opencli domains-ssl custom),
			 * `tls internal`, or a block: `tls {` ... `}` */
			const char *a = s + 3, *e = s + l;
			unsigned args = 0;

			while (a < e) {
				while (a < e && (*a == ' ' || *a == '\t'))
					a++;
				if (a == e || *a == '{')
					break;
				if (args == 0 && (size_t)(e - a) >= 8 &&
				    memcmp(a, "internal", 8) == 0 &&
				    (e - a == 8 || a[8] == ' ' || a[8] == '\t'))
					*ssl_r = "internal";
				args++;
				while (a < e && *a != ' ' && *a != '\t')
					a++;
			}
			if (*ssl_r == NULL && args >= 2)
				*ssl_r = "custom";
			if (a < e && *a == '{') {
				depth = 0;
				for (; a < e; a++)
					depth += *a == '{' ? 1
						: *a == '}' ? -1 : 0;
				if (depth <= 0)
					depth = -1;
			}
		}
		/* Coraza's `SecRuleEngine On|Off|DetectionOnly` (the first
		 * one: opencli and the Go panel set every one alike) */
		if (*waf_r == NULL && line_directive(s, l, "SecRuleEngine")) {
			const char *v = s + 13, *e = s + l;

			while (v < e && (*v == ' ' || *v == '\t'))
				v++;
			if ((size_t)(e - v) >= 2 && strncasecmp(v, "on", 2) == 0 &&
			    (e - v == 2 || v[2] == ' ' || v[2] == '\t'))
				*waf_r = "on";
			else if ((size_t)(e - v) >= 3 &&
				 strncasecmp(v, "off", 3) == 0)
				*waf_r = "off";
			else if ((size_t)(e - v) >= 13 &&
				 strncasecmp(v, "DetectionOnly", 13) == 0)
				*waf_r = "detection_only";
		}
	}
}

/* ssl and waf (classify_conf_modes) into the payload, and old_ssl /
 * old_waf when the facts knew another value */
static void conf_modes_payload(json_t *p, const json_t *old_facts,
			       const char *ssl, const char *waf)
{
	static const char *const keys[2][2] = { { "ssl", "old_ssl" },
						{ "waf", "old_waf" } };
	const char *now[2] = { ssl, waf };

	for (int i = 0; i < 2; i++) {
		const char *old = fact_str(old_facts, keys[i][0]);

		if (now[i] != NULL)
			json_object_set_new(p, keys[i][0],
					    json_string(now[i]));
		if (old != NULL && (now[i] == NULL || strcmp(old, now[i]) != 0))
			json_object_set_new(p, keys[i][1], json_string(old));
	}
}

static void classify_domain_conf(const struct classify_target *t,
				 const struct classify_input *in,
				 struct classify_result *r)
{
	const char *reason = NULL, *ssl, *waf;
	char *comment = NULL;
	bool was = json_is_true(json_object_get(in->old_facts, "suspended"));
	bool now;
	json_t *p;

	if (in->content == NULL) {
		if (in->existed)
			add_event(r, "domain.removed", t->name,
				  payload_domain(t, in->path));
		return;
	}
	now = classify_conf_suspended(in->content, in->len, &reason,
				      &comment);
	classify_conf_modes(in->content, in->len, &ssl, &waf);
	if (now || ssl != NULL || waf != NULL)
		r->facts = json_object();
	if (now) {
		json_object_set_new(r->facts, "suspended", json_true());
		json_object_set_new(r->facts, "reason", json_string(reason));
		if (comment != NULL)
			json_object_set_new(r->facts, "comment",
					    jstr(comment, strlen(comment)));
	}
	if (ssl != NULL)
		json_object_set_new(r->facts, "ssl", json_string(ssl));
	if (waf != NULL)
		json_object_set_new(r->facts, "waf", json_string(waf));
	p = payload_domain(t, in->path);
	conf_modes_payload(p, in->existed ? in->old_facts : NULL, ssl, waf);
	if (!in->existed) {
		if (now) {
			json_object_set_new(p, "suspended", json_true());
			json_object_set_new(p, "reason", json_string(reason));
		}
		add_event(r, "domain.added", t->name, p);
	} else if (now && !was) {
		json_object_set_new(p, "reason", json_string(reason));
		if (comment != NULL)
			json_object_set_new(p, "comment",
					    jstr(comment, strlen(comment)));
		add_event(r, "domain.suspended", t->name, p);
	} else if (!now && was) {
		const char *old = fact_str(in->old_facts, "reason");

		if (old != NULL)
			json_object_set_new(p, "reason", json_string(old));
		add_event(r, "domain.unsuspended", t->name, p);
	} else {
		const char *old_waf = fact_str(in->old_facts, "waf");

		if (now)
			json_object_set_new(p, "suspended", json_true());
		add_event(r, "domain.updated", t->name, p);
		/* the WAF switched (opencli waf's sed -i, the Go panel's
		 * rewrite): its own event too, for hooks that care about
		 * nothing else */
		if (waf != NULL && old_waf != NULL && strcmp(waf, old_waf) != 0) {
			p = payload_domain(t, in->path);
			json_object_set_new(p, "waf", json_string(waf));
			json_object_set_new(p, "old_waf", json_string(old_waf));
			add_event(r, "domain.waf_changed", t->name, p);
		}
	}
	free(comment);
}

/* ---- certificates ---- */

int classify_cert_parse(const char *pem, size_t len, struct classify_cert *c,
			const char **why_r)
{
	BIO *bio;
	X509 *x;
	BIGNUM *bn;
	char *hex;
	struct tm tm;
	GENERAL_NAMES *gens;

	memset(c, 0, sizeof(*c));
	if (len > 1 << 20) {
		*why_r = "certificate file too large";
		return -EINVAL;
	}
	bio = BIO_new_mem_buf(pem, (int)len);
	if (bio == NULL) {
		*why_r = "out of memory";
		return -ENOMEM;
	}
	x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (x == NULL) {
		*why_r = "no PEM certificate found";
		return -EINVAL;
	}
	bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
	hex = bn != NULL ? BN_bn2hex(bn) : NULL;
	if (hex == NULL) {
		BN_free(bn);
		X509_free(x);
		*why_r = "bad certificate serial";
		return -EINVAL;
	}
	snprintf(c->serial, sizeof(c->serial), "%s", hex);
	OPENSSL_free(hex);
	BN_free(bn);
	if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) != 1) {
		X509_free(x);
		*why_r = "bad certificate notBefore";
		return -EINVAL;
	}
	strftime(c->not_before, sizeof(c->not_before), "%Y-%m-%dT%H:%M:%SZ",
		 &tm);
	if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) != 1) {
		X509_free(x);
		*why_r = "bad certificate notAfter";
		return -EINVAL;
	}
	strftime(c->not_after, sizeof(c->not_after), "%Y-%m-%dT%H:%M:%SZ",
		 &tm);
	c->names = json_array();
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);

		if (g->type == GEN_DNS) {
			const unsigned char *d =
				ASN1_STRING_get0_data(g->d.dNSName);
			int dl = ASN1_STRING_length(g->d.dNSName);

			json_array_append_new(c->names,
					      jstr((const char *)d,
						   (size_t)dl));
		} else if (g->type == GEN_IPADD) {
			const unsigned char *d =
				ASN1_STRING_get0_data(g->d.iPAddress);
			int dl = ASN1_STRING_length(g->d.iPAddress);
			char ip[INET6_ADDRSTRLEN];

			if ((dl == 4 &&
			     inet_ntop(AF_INET, d, ip, sizeof(ip))) ||
			    (dl == 16 &&
			     inet_ntop(AF_INET6, d, ip, sizeof(ip))))
				json_array_append_new(c->names,
						      json_string(ip));
		}
	}
	GENERAL_NAMES_free(gens);
	X509_free(x);
	return 0;
}

static void cert_payload(json_t *p, const struct classify_cert *c)
{
	json_object_set_new(p, "serial", json_string(c->serial));
	json_object_set_new(p, "not_before", json_string(c->not_before));
	json_object_set_new(p, "not_after", json_string(c->not_after));
	json_object_set(p, "names", c->names);
}

/* Facts kept for a certificate: serial, validity and names (names so
 * that cert.removed can say what was removed). */
static json_t *cert_facts(const struct classify_cert *c)
{
	json_t *f = json_object();

	json_object_set_new(f, "serial", json_string(c->serial));
	json_object_set_new(f, "not_before", json_string(c->not_before));
	json_object_set_new(f, "not_after", json_string(c->not_after));
	json_object_set(f, "names", c->names);
	return f;
}

/* The payload of a certificate event: domain is the domain the folder
 * names (the base domain for a wildcard, with "wildcard": true). */
static json_t *cert_payload_new(const struct classify_target *t,
				const char *path, const char *issuer)
{
	json_t *p = payload_new(path);

	json_object_set_new(p, "domain",
			    json_string(t->wildcard ? t->name + 2 : t->name));
	if (t->wildcard)
		json_object_set_new(p, "wildcard", json_true());
	json_object_set_new(p, "issuer", json_string(issuer));
	return p;
}

/* cert.removed for a certificate known by old_facts (none if unknown). */
static void cert_removed(const struct classify_target *t, const char *path,
			 const char *issuer, const json_t *old_facts,
			 struct classify_result *r)
{
	const char *serial = fact_str(old_facts, "serial");
	json_t *p, *names;

	if (serial == NULL)
		return;
	p = cert_payload_new(t, path, issuer);
	json_object_set_new(p, "serial", json_string(serial));
	names = json_object_get(old_facts, "names");
	if (json_is_array(names))
		json_object_set(p, "names", names);
	add_event(r, "cert.removed", t->name, p);
}

static void classify_cert_json(const struct classify_target *t,
			       const struct classify_input *in,
			       struct classify_result *r)
{
	struct classify_cert c;
	const char *why, *old;
	char *crt;
	json_t *p;

	crt = classify_aux_path(t, in->path);
	if (in->content == NULL || in->aux == NULL) {
		/* the folder, the .json or the .crt deleted */
		if (in->content != NULL && fact_str(in->old_facts,
						    "serial") == NULL)
			warn(r, "certificate for %s: .crt missing next to "
			     ".json", t->name);
		cert_removed(t, crt, t->issuer, in->old_facts, r);
		if (in->content != NULL)
			r->facts = json_object(); /* known, no certificate */
		free(crt);
		return;
	}
	if (classify_cert_parse(in->aux, in->aux_len, &c, &why) < 0) {
		warn(r, "certificate for %s: %s", t->name, why);
		r->facts = json_deep_copy(in->old_facts);
		free(crt);
		return;
	}
	r->facts = cert_facts(&c);
	old = fact_str(in->old_facts, "serial");
	if (old == NULL || strcmp(old, c.serial) != 0) {
		p = cert_payload_new(t, crt, t->issuer);
		cert_payload(p, &c);
		if (old != NULL)
			json_object_set_new(p, "old_serial", json_string(old));
		add_event(r, old == NULL ? "cert.issued" : "cert.renewed",
			  t->name, p);
	}
	free(crt);
	json_decref(c.names);
}

static void classify_custom_cert(const struct classify_target *t,
				 const struct classify_input *in,
				 struct classify_result *r)
{
	struct classify_cert c;
	const char *why, *old;
	json_t *p;

	if (in->content == NULL) {
		cert_removed(t, in->path, "custom", in->old_facts, r);
		return;
	}
	if (classify_cert_parse(in->content, in->len, &c, &why) < 0) {
		warn(r, "custom certificate for %s: %s", t->name, why);
		r->facts = json_deep_copy(in->old_facts);
		return;
	}
	r->facts = cert_facts(&c);
	old = fact_str(in->old_facts, "serial");
	if (old == NULL || strcmp(old, c.serial) != 0) {
		p = cert_payload_new(t, in->path, "custom");
		cert_payload(p, &c);
		add_event(r, "cert.installed", t->name, p);
	}
	json_decref(c.names);
}

/* ---- users ---- */

static void classify_user_dir(const struct classify_target *t,
			      const struct classify_input *in,
			      struct classify_result *r)
{
	char subject[300];
	json_t *p;

	if ((in->content != NULL) == in->existed)
		return;
	snprintf(subject, sizeof(subject), "user:%s", t->name);
	p = payload_new(in->path);
	json_object_set_new(p, "user", json_string(t->name));
	add_event(r, in->content != NULL ? "user.added" : "user.removed",
		  subject, p);
}

/* ---- sets and diffs ---- */

static json_t *set_of(const struct classify_input *in, const char *key)
{
	json_t *s = json_object_get(in->old_facts, key);

	return json_is_object(s) ? s : NULL;
}

static bool ip_token_valid(const char *s)
{
	char buf[64], *slash;
	unsigned char addr[16];
	long bits = -1;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash != NULL) {
		char *end;

		bits = strtol(slash + 1, &end, 10);
		if (*end != '\0' || slash[1] == '\0' || bits < 0 || bits > 128)
			return false;
		*slash = '\0';
	}
	if (inet_pton(AF_INET, buf, addr) == 1)
		return bits <= 32;
	return inet_pton(AF_INET6, buf, addr) == 1;
}

json_t *classify_deny_ips(const char *content, size_t len,
			  struct classify_result *w)
{
	json_t *set = json_object();
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;
	bool in_ip = false;

	while (line_next(&it, &s, &l)) {
		char *line = xstrndup(s, l), *save = NULL, *tok;
		char *hash = strchr(line, '#');

		if (hash != NULL)
			*hash = '\0';
		for (tok = strtok_r(line, " \t{}", &save); tok != NULL;
		     tok = strtok_r(NULL, " \t{}", &save)) {
			if (strcmp(tok, "remote_ip") == 0 ||
			    strcmp(tok, "client_ip") == 0) {
				in_ip = true;
				continue;
			}
			if (!in_ip)
				continue;
			if (ip_token_valid(tok))
				json_object_set_new(set, tok, json_string(""));
			else if (strcmp(tok, "respond") == 0)
				in_ip = false;
			else
				warn(w, "line %u: not an IP address: %.64s",
				     it.lineno, tok);
		}
		in_ip = false; /* remote_ip takes the rest of its line */
		free(line);
	}
	return set;
}

json_t *classify_named_zones(const char *content, size_t len,
			     struct classify_result *w)
{
	json_t *set = json_object();
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;

	while (line_next(&it, &s, &l)) {
		if (l < 6 || strncmp(s, "zone", 4) != 0 ||
		    (s[4] != ' ' && s[4] != '\t'))
			continue;
		const char *q = memchr(s, '"', l), *e;

		if (q == NULL) {
			warn(w, "line %u: zone without a quoted name",
			     it.lineno);
			continue;
		}
		e = memchr(q + 1, '"', l - (size_t)(q + 1 - s));
		if (e == NULL) {
			warn(w, "line %u: unterminated zone name", it.lineno);
			continue;
		}
		char *name = xstrndup(q + 1, (size_t)(e - q - 1));
		const char *why;

		if (name_valid_domain(name, &why))
			json_object_set_new(set, name, json_string(""));
		else
			warn(w, "line %u: bad zone name: %s", it.lineno, why);
		free(name);
	}
	return set;
}

/* The domain of an address "a@b" (validated), or NULL. */
static const char *addr_domain(const char *addr)
{
	const char *at = strrchr(addr, '@'), *why;

	if (at == NULL || !name_valid_domain(at + 1, &why))
		return NULL;
	return at + 1;
}

static bool addr_chars_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == '"' || *s == '\\' ||
		    (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

json_t *classify_mail_accounts(const char *content, size_t len,
			       struct classify_result *w)
{
	json_t *set = json_object();
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;

	while (line_next(&it, &s, &l)) {
		if (l == 0 || s[0] == '#')
			continue;
		const char *bar = memchr(s, '|', l);

		if (bar == NULL) {
			warn(w, "line %u: no '|' between address and hash",
			     it.lineno);
			continue;
		}
		char *addr = xstrndup(s, (size_t)(bar - s));
		/* only the password hash (the second field) counts: opencli
		 * appends `|<uid>` to the line with sed -i after
		 * docker-mailserver added it, which changes no password */
		const char *hs = bar + 1, *end = s + l;
		const char *he = memchr(hs, '|', (size_t)(end - hs));
		uint64_t h = classify_hash(hs, (size_t)((he ? he : end) - hs),
					   CLASSIFY_HASH_SEED);
		char hx[20];

		for (char *c = addr; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (!addr_chars_ok(addr) || addr_domain(addr) == NULL) {
			warn(w, "line %u: bad mail address", it.lineno);
			free(addr);
			continue;
		}
		snprintf(hx, sizeof(hx), "%016llx", (unsigned long long)h);
		json_object_set_new(set, addr, json_string(hx));
		free(addr);
	}
	return set;
}

json_t *classify_mail_aliases(const char *content, size_t len,
			      struct classify_result *w)
{
	json_t *set = json_object();
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;

	while (line_next(&it, &s, &l)) {
		if (l == 0 || s[0] == '#')
			continue;
		size_t k = 0;

		while (k < l && s[k] != ' ' && s[k] != '\t')
			k++;
		char *alias = xstrndup(s, k);
		while (k < l && (s[k] == ' ' || s[k] == '\t'))
			k++;
		for (char *c = alias; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (k == l) {
			warn(w, "line %u: alias without targets", it.lineno);
		} else if (!addr_chars_ok(alias) ||
			   addr_domain(alias) == NULL) {
			warn(w, "line %u: bad alias address", it.lineno);
		} else {
			json_object_set_new(set, alias, jstr(s + k, l - k));
		}
		free(alias);
	}
	return set;
}

json_t *classify_mail_quotas(const char *content, size_t len,
			     struct classify_result *w)
{
	json_t *set = json_object();
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;

	while (line_next(&it, &s, &l)) {
		if (l == 0 || s[0] == '#')
			continue;
		const char *colon = memchr(s, ':', l);

		if (colon == NULL || colon == s + l - 1) {
			warn(w, "line %u: no ':quota' after the address",
			     it.lineno);
			continue;
		}
		char *addr = xstrndup(s, (size_t)(colon - s));

		for (char *c = addr; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (!addr_chars_ok(addr) || addr_domain(addr) == NULL) {
			warn(w, "line %u: bad mail address", it.lineno);
		} else {
			const char *q = colon + 1;

			json_object_set_new(set, addr,
					    jstr(q, l - (size_t)(q - s)));
		}
		free(addr);
	}
	return set;
}

/* An ini line "key = value" (s, l): the key's length (blanks before '='
 * trimmed) and where the value starts (blanks after it skipped).  False
 * when the line has no '='. */
static bool ini_setting(const char *s, size_t l, size_t *kl_r, size_t *vs_r)
{
	const char *eq = memchr(s, '=', l);
	size_t kl, vs;

	if (eq == NULL)
		return false;
	kl = (size_t)(eq - s);
	vs = kl + 1;
	while (kl > 0 && (s[kl - 1] == ' ' || s[kl - 1] == '\t'))
		kl--;
	while (vs < l && (s[vs] == ' ' || s[vs] == '\t'))
		vs++;
	*kl_r = kl;
	*vs_r = vs;
	return true;
}

json_t *classify_ini(const char *content, size_t len,
		     struct classify_result *w)
{
	json_t *set = json_object();
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;
	char section[128] = "";

	while (line_next(&it, &s, &l)) {
		if (l == 0 || s[0] == '#' || s[0] == ';')
			continue;
		if (s[0] == '[') {
			if (s[l - 1] != ']' || l - 2 >= sizeof(section)) {
				warn(w, "line %u: bad section header",
				     it.lineno);
				continue;
			}
			memcpy(section, s + 1, l - 2);
			section[l - 2] = '\0';
			continue;
		}
		size_t kl, vs;

		if (!ini_setting(s, l, &kl, &vs)) {
			warn(w, "line %u: no '=' in setting", it.lineno);
			continue;
		}
		if (kl == 0 || kl > 128) {
			warn(w, "line %u: bad key", it.lineno);
			continue;
		}
		char *key = section[0] != '\0'
				    ? xasprintf("%s.%.*s", section, (int)kl, s)
				    : xstrndup(s, kl);
		json_t *k = json_string(key);

		if (k == NULL)
			warn(w, "line %u: key is not UTF-8", it.lineno);
		else
			json_object_set_new(set, key, jstr(s + vs, l - vs));
		json_decref(k);
		free(key);
	}
	return set;
}

/* Keys of a minus b, as a sorted JSON array. */
static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static json_t *keys_minus(const json_t *a, const json_t *b)
{
	size_t n = json_object_size(a), k = 0;
	const char **keys = xcalloc(n + 1, sizeof(*keys));
	const char *key;
	json_t *v, *arr = json_array();

	json_object_foreach((json_t *)a, key, v)
		if (json_object_get(b, key) == NULL)
			keys[k++] = key;
	qsort(keys, k, sizeof(*keys), cmp_str);
	for (size_t i = 0; i < k; i++)
		json_array_append_new(arr, json_string(keys[i]));
	free(keys);
	return arr;
}

/* Keys in both whose values differ, sorted. */
static json_t *keys_changed(const json_t *a, const json_t *b)
{
	size_t n = json_object_size(a), k = 0;
	const char **keys = xcalloc(n + 1, sizeof(*keys));
	const char *key;
	json_t *v, *arr = json_array();

	json_object_foreach((json_t *)a, key, v) {
		json_t *o = json_object_get(b, key);

		if (o != NULL && !json_equal(o, v))
			keys[k++] = key;
	}
	qsort(keys, k, sizeof(*keys), cmp_str);
	for (size_t i = 0; i < k; i++)
		json_array_append_new(arr, json_string(keys[i]));
	free(keys);
	return arr;
}

static json_t *set_facts(const char *key, json_t *set)
{
	json_t *f = json_object();

	json_object_set_new(f, key, set);
	return f;
}

static void classify_denylist(const struct classify_target *t,
			      const struct classify_input *in,
			      struct classify_result *r)
{
	json_t *now = in->content != NULL
			      ? classify_deny_ips(in->content, in->len, r)
			      : json_object();
	json_t *old = set_of(in, "ips"), *empty = json_object();
	json_t *added, *removed;
	char subject[300];

	if (old == NULL)
		old = empty;
	added = keys_minus(now, old);
	removed = keys_minus(old, now);
	if (json_array_size(added) + json_array_size(removed) > 0) {
		json_t *p = payload_new(in->path);

		json_object_set_new(p, "user", json_string(t->name));
		json_object_set(p, "added", added);
		json_object_set(p, "removed", removed);
		snprintf(subject, sizeof(subject), "user:%s", t->name);
		add_event(r, "user.denylist.changed", subject, p);
	}
	json_decref(added);
	json_decref(removed);
	json_decref(empty);
	if (in->content != NULL)
		r->facts = set_facts("ips", now);
	else
		json_decref(now);
}

/* ---- secrets ---- */

const char *const classify_secret_defaults[] = {
	"*_token", "token", "*password*", "*passwd*", "*secret*", "*_key",
	"key", "*apikey*", "*api_key*", "*private*", NULL
};

static bool secret_match(const char *pat, const char *key)
{
	return fnmatch(pat, key, FNM_CASEFOLD) == 0;
}

bool classify_secret_key(const char *key, const char *const *extra,
			 size_t n_extra)
{
	const char *dot = strrchr(key, '.');
	const char *leaf = dot != NULL ? dot + 1 : key;

	for (size_t i = 0; classify_secret_defaults[i] != NULL; i++)
		if (secret_match(classify_secret_defaults[i], leaf) ||
		    secret_match(classify_secret_defaults[i], key))
			return true;
	for (size_t i = 0; i < n_extra; i++)
		if (secret_match(extra[i], leaf) || secret_match(extra[i], key))
			return true;
	return false;
}

void classify_fingerprint(const char *value, size_t len,
			  char out[CLASSIFY_FP_SIZE])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const char hex[] = "0123456789abcdef";

	if (EVP_Digest(value, len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
	    mdlen < 4) {
		/* never the value, even when libcrypto fails */
		snprintf(out, CLASSIFY_FP_SIZE, "sha256:????????");
		return;
	}
	memcpy(out, "sha256:", 7);
	for (unsigned i = 0; i < 4; i++) {
		out[7 + 2 * i] = hex[md[i] >> 4];
		out[8 + 2 * i] = hex[md[i] & 15];
	}
	out[15] = '\0';
}

/* A fingerprint as the facts keep it ("sha256:" + 8 hex) */
static bool is_fingerprint(const char *v)
{
	if (v == NULL || strncmp(v, "sha256:", 7) != 0 || strlen(v) != 15)
		return false;
	for (size_t i = 7; i < 15; i++)
		if (!isxdigit((unsigned char)v[i]))
			return false;
	return true;
}

typedef bool kv_secret_fn(const char *key, const struct classify_input *in);

static bool config_secret_in(const char *key, const struct classify_input *in)
{
	return classify_secret_key(key, in->secret_keys, in->n_secret_keys);
}

/* A copy of a key set with the values of secret keys replaced by their
 * fingerprints (facts written by older versions may hold values). */
static json_t *kv_masked(const json_t *set, const struct classify_input *in,
			 kv_secret_fn *secret)
{
	json_t *copy = json_object();
	const char *k;
	json_t *v;

	json_object_foreach ((json_t *)set, k, v) {
		const char *sv = json_string_value(v);
		char fp[CLASSIFY_FP_SIZE];

		if (sv != NULL && !is_fingerprint(sv) && secret(k, in)) {
			classify_fingerprint(sv, json_string_length(v), fp);
			json_object_set_new(copy, k, json_string(fp));
		} else {
			json_object_set(copy, k, v);
		}
	}
	return copy;
}

/* The changes from old to now (both masked): [{key, old, new}] or, for a
 * secret key, [{key, secret: true, old_fingerprint, new_fingerprint}];
 * added keys, then removed, then changed, each sorted. */
static json_t *kv_changes(const json_t *now, const json_t *old,
			  const struct classify_input *in,
			  kv_secret_fn *secret)
{
	json_t *changes = json_array(), *lists[3];
	size_t i, j;

	lists[0] = keys_minus(now, old);   /* added */
	lists[1] = keys_minus(old, now);   /* removed */
	lists[2] = keys_changed(now, old); /* changed */
	for (i = 0; i < 3; i++) {
		for (j = 0; j < json_array_size(lists[i]); j++) {
			const char *k =
				json_string_value(json_array_get(lists[i], j));
			json_t *o = json_object_get(old, k);
			json_t *n = json_object_get(now, k);

			if (secret(k, in))
				/* never the value: its fingerprint */
				json_array_append_new(
					changes,
					json_pack("{s:s, s:b, s:O, s:O}", "key",
						  k, "secret", 1,
						  "old_fingerprint",
						  o ? o : json_null(),
						  "new_fingerprint",
						  n ? n : json_null()));
			else
				json_array_append_new(
					changes,
					json_pack("{s:s, s:O, s:O}", "key", k,
						  "old", o ? o : json_null(),
						  "new", n ? n : json_null()));
		}
		json_decref(lists[i]);
	}
	return changes;
}

/* "keys": [the changed keys] and "changes" (stolen) into payload p. */
static void kv_payload(json_t *p, json_t *changes)
{
	json_t *keys = json_array();

	for (size_t j = 0; j < json_array_size(changes); j++)
		json_array_append(keys,
				  json_object_get(json_array_get(changes, j),
						  "key"));
	json_object_set_new(p, "keys", keys);
	json_object_set_new(p, "changes", changes);
}

static void classify_panel_config(const struct classify_input *in,
				  struct classify_result *r)
{
	json_t *parsed = in->content != NULL
				 ? classify_ini(in->content, in->len, r)
				 : json_object();
	json_t *now = kv_masked(parsed, in, config_secret_in);
	json_t *old_raw = set_of(in, "keys"), *old, *changes;

	json_decref(parsed);
	old = old_raw != NULL ? kv_masked(old_raw, in, config_secret_in)
			      : json_object();
	changes = kv_changes(now, old, in, config_secret_in);
	if (json_array_size(changes) > 0) {
		json_t *p = payload_new(in->path);

		kv_payload(p, changes);
		add_event(r, "config.changed", "config", p);
	} else {
		json_decref(changes);
	}
	json_decref(old);
	if (in->content != NULL)
		r->facts = set_facts("keys", now);
	else
		json_decref(now);
}

int64_t classify_zone_serial(const char *content, size_t len)
{
	/* Tokenize without comments; the serial is the first number after
	 * SOA, the primary NS and the contact. */
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;
	int state = 0; /* 0 before SOA, 1 mname, 2 rname, 3 serial */

	while (line_next(&it, &s, &l)) {
		char *line = xstrndup(s, l), *save = NULL, *tok;
		char *semi = strchr(line, ';');

		if (semi != NULL)
			*semi = '\0';
		for (tok = strtok_r(line, " \t()", &save); tok != NULL;
		     tok = strtok_r(NULL, " \t()", &save)) {
			if (state == 0) {
				if (strcasecmp(tok, "SOA") == 0)
					state = 1;
			} else if (state < 3) {
				state++;
			} else {
				char *end;
				long long v;

				errno = 0;
				v = strtoll(tok, &end, 10);
				if (*end != '\0' || errno != 0 || v < 0 ||
				    v > 4294967295LL)
					v = -1;
				free(line);
				return v;
			}
		}
		free(line);
	}
	return -1;
}

static void classify_zone(const struct classify_target *t,
			  const struct classify_input *in,
			  struct classify_result *r)
{
	json_t *p = payload_domain(t, in->path);
	json_t *old = json_object_get(in->old_facts, "serial");

	if (in->content == NULL) {
		if (!in->existed) {
			json_decref(p);
			return;
		}
		json_object_set_new(p, "change", json_string("removed"));
	} else {
		int64_t serial = classify_zone_serial(in->content, in->len);

		json_object_set_new(p, "change",
				    json_string(in->existed ? "updated"
							    : "added"));
		if (serial >= 0) {
			json_object_set_new(p, "serial", json_integer(serial));
			r->facts = json_object();
			json_object_set_new(r->facts, "serial",
					    json_integer(serial));
		} else {
			warn(r, "no SOA serial found");
		}
	}
	if (json_is_integer(old))
		json_object_set(p, "old_serial", old);
	add_event(r, "dns.zone.changed", t->name, p);
}

static void classify_named_conf(const struct classify_input *in,
				struct classify_result *r)
{
	json_t *now = in->content != NULL
			      ? classify_named_zones(in->content, in->len, r)
			      : json_object();
	json_t *old = set_of(in, "zones"), *empty = json_object();
	json_t *lists[2];

	if (old == NULL)
		old = empty;
	lists[0] = keys_minus(now, old);
	lists[1] = keys_minus(old, now);
	for (int i = 0; i < 2; i++) {
		for (size_t j = 0; j < json_array_size(lists[i]); j++) {
			const char *d =
				json_string_value(json_array_get(lists[i], j));
			json_t *p = payload_new(in->path);

			json_object_set_new(p, "domain", json_string(d));
			json_object_set_new(p, "change",
					    json_string(i == 0 ? "added"
							       : "removed"));
			add_event(r, "dns.zone.changed", d, p);
		}
		json_decref(lists[i]);
	}
	if (r->n_events == 0 && in->existed && in->content != NULL)
		add_event(r, "dns.config.changed", "dns",
			  payload_new(in->path));
	json_decref(empty);
	if (in->content != NULL)
		r->facts = set_facts("zones", now);
	else
		json_decref(now);
}

static void mail_event(struct classify_result *r, const char *type,
		       const char *path, const char *addr_key,
		       const char *addr, json_t *extra)
{
	const char *d = addr_domain(addr);
	json_t *p = payload_new(path);

	if (d == NULL) { /* cannot happen: parsers validated */
		json_decref(p);
		json_decref(extra);
		return;
	}
	json_object_set_new(p, addr_key, json_string(addr));
	json_object_set_new(p, "domain", json_string(d));
	if (extra != NULL)
		json_object_update(p, extra);
	json_decref(extra);
	add_event(r, type, d, p);
}

static void classify_mail(const struct classify_input *in, bool accounts,
			  struct classify_result *r)
{
	const char *fk = accounts ? "accounts" : "aliases";
	const char *pre = accounts ? "mail.account." : "mail.alias.";
	const char *ak = accounts ? "address" : "alias";
	json_t *now, *old = set_of(in, fk), *empty = json_object();
	json_t *lists[3];
	static const char *const what[3] = { "added", "removed", "changed" };

	if (in->content == NULL)
		now = json_object();
	else if (accounts)
		now = classify_mail_accounts(in->content, in->len, r);
	else
		now = classify_mail_aliases(in->content, in->len, r);
	if (old == NULL)
		old = empty;
	lists[0] = keys_minus(now, old);
	lists[1] = keys_minus(old, now);
	lists[2] = keys_changed(now, old);
	for (int i = 0; i < 3; i++) {
		char type[40];

		snprintf(type, sizeof(type), "%s%s", pre, what[i]);
		for (size_t j = 0; j < json_array_size(lists[i]); j++) {
			const char *a =
				json_string_value(json_array_get(lists[i], j));
			json_t *extra = NULL;

			if (!accounts) {
				json_t *nt = json_object_get(now, a);
				json_t *ot = json_object_get(old, a);

				extra = json_object();
				if (nt != NULL)
					json_object_set(extra, "targets", nt);
				if (i == 2 && ot != NULL)
					json_object_set(extra, "old_targets",
							ot);
			}
			mail_event(r, type, in->path, ak, a, extra);
		}
		json_decref(lists[i]);
	}
	json_decref(empty);
	if (in->content != NULL)
		r->facts = set_facts(fk, now);
	else
		json_decref(now);
}

/* dovecot-quotas.cf: mail.quota.changed per address whose quota was set,
 * changed or unset (old_quota / quota null when there was or is none). */
static void classify_quotas(const struct classify_input *in,
			    struct classify_result *r)
{
	json_t *now, *old = set_of(in, "quotas"), *empty = json_object();
	json_t *lists[3];

	now = in->content != NULL
		? classify_mail_quotas(in->content, in->len, r)
		: json_object();
	if (old == NULL)
		old = empty;
	lists[0] = keys_minus(now, old);
	lists[1] = keys_minus(old, now);
	lists[2] = keys_changed(now, old);
	for (int i = 0; i < 3; i++) {
		for (size_t j = 0; j < json_array_size(lists[i]); j++) {
			const char *a =
				json_string_value(json_array_get(lists[i], j));
			json_t *nq = json_object_get(now, a);
			json_t *oq = json_object_get(old, a);
			json_t *extra = json_object();

			json_object_set(extra, "quota",
					nq != NULL ? nq : json_null());
			json_object_set(extra, "old_quota",
					oq != NULL ? oq : json_null());
			mail_event(r, "mail.quota.changed", in->path,
				   "address", a, extra);
		}
		json_decref(lists[i]);
	}
	json_decref(empty);
	if (in->content != NULL)
		r->facts = set_facts("quotas", now);
	else
		json_decref(now);
}

/* ---- FTP accounts ---- */

json_t *classify_ftp_accounts(const char *content, size_t len,
			      struct classify_result *w)
{
	json_t *set = json_object();
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;

	while (line_next(&it, &s, &l)) {
		if (l == 0 || s[0] == '#')
			continue;
		const char *bar = memchr(s, '|', l), *end = s + l;

		if (bar == NULL) {
			warn(w, "line %u: no '|' after the account name",
			     it.lineno);
			continue;
		}
		if (bar == s || bar - s > 255) {
			warn(w, "line %u: bad account name", it.lineno);
			continue;
		}
		char *acct = xstrndup(s, (size_t)(bar - s));

		for (char *c = acct; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (!addr_chars_ok(acct) || strlen(acct) != (size_t)(bar - s)) {
			warn(w, "line %u: bad account name", it.lineno);
			free(acct);
			continue;
		}
		/* account|hash|directory|uid|gid: the hash is skipped */
		const char *d = memchr(bar + 1, '|', (size_t)(end - bar - 1));
		const char *de;

		if (d == NULL) {
			warn(w, "line %u: no directory after the password "
			     "field", it.lineno);
			free(acct);
			continue;
		}
		d++;
		de = memchr(d, '|', (size_t)(end - d));
		if (de == NULL)
			de = end;
		if (json_object_get(set, acct) != NULL)
			warn(w, "line %u: account listed twice: the last line "
			     "counts", it.lineno);
		json_object_set_new(set, acct,
				    jstr(d, (size_t)(de - d) > 4096
						    ? 4096 : (size_t)(de - d)));
		free(acct);
	}
	return set;
}

static void classify_ftp(const struct classify_target *t,
			 const struct classify_input *in,
			 struct classify_result *r)
{
	json_t *now = in->content != NULL
			      ? classify_ftp_accounts(in->content, in->len, r)
			      : json_object();
	json_t *old = set_of(in, "accounts"), *empty = json_object();
	json_t *lists[2];
	char subject[300];

	if (old == NULL)
		old = empty;
	snprintf(subject, sizeof(subject), "user:%s", t->name);
	lists[0] = keys_minus(now, old);
	lists[1] = keys_minus(old, now);
	for (int i = 0; i < 2; i++) {
		for (size_t j = 0; j < json_array_size(lists[i]); j++) {
			const char *a =
				json_string_value(json_array_get(lists[i], j));
			json_t *p = payload_new(in->path);
			json_t *dir = json_object_get(i == 0 ? now : old, a);

			json_object_set_new(p, "user", json_string(t->name));
			json_object_set_new(p, "account", json_string(a));
			if (dir != NULL)
				json_object_set(p, "directory", dir);
			add_event(r, i == 0 ? "ftp.account.added"
					    : "ftp.account.removed",
				  subject, p);
		}
		json_decref(lists[i]);
	}
	json_decref(empty);
	if (in->content != NULL)
		r->facts = set_facts("accounts", now);
	else
		json_decref(now);
}

/* ---- cron jobs ---- */

#define CRON_VALUE_MAX 4096

/* A printable ASCII copy of s (other bytes '?'), malloc'd. */
static char *ascii_copy(const char *s, size_t len)
{
	char *c = xmalloc(len + 1);

	for (size_t i = 0; i < len; i++)
		c[i] = (unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f
			       ? '?' : s[i];
	c[len] = '\0';
	return c;
}

static bool cron_word_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '-';
}

/* Mask what looks like a password in a cron command, in place: the value
 * of `WORD=VALUE` when WORD is a secret key (classify_secret_key:
 * --password=, DB_PASSWORD=, token=, ...), of `--password VALUE`, and
 * mysql's glued `-pVALUE` in a mysql / mysqldump / mariadb command.  A
 * value ends at a blank or a quote; it becomes "***". */
static void cron_mask(char *c)
{
	bool mysql = strstr(c, "mysql") != NULL || strstr(c, "mariadb") != NULL;
	char *p = c;

	while (*p != '\0') {
		char *w = p, *v = NULL;

		while (*p != '\0' && !cron_word_char(*p))
			p++;
		w = p;
		while (cron_word_char(*p))
			p++;
		if (p == w)
			continue;
		char save = *p;

		*p = '\0';
		if (save == '=' && classify_secret_key(w, NULL, 0))
			v = p + 1;
		else if (save == ' ' && (strcmp(w, "--password") == 0 ||
					 strcmp(w, "--pass") == 0))
			v = p + 1;
		else if (mysql && w > c && w[-1] == ' ' && w[0] == '-' &&
			 w[1] == 'p' && w[2] != '\0' && w[2] != '-')
			v = w + 2;
		*p = save;
		if (v == NULL)
			continue;
		char *e = v;

		if (*e == '"' || *e == '\'')
			e++;
		while (*e != '\0' && *e != ' ' && *e != '\t' && *e != '"' &&
		       *e != '\'')
			e++;
		if (e == v || (e == v + 1 && (*v == '"' || *v == '\'')))
			continue;
		if (*v == '"' || *v == '\'')
			v++;
		memmove(v + 3, e, strlen(e) + 1);
		memcpy(v, "***", 3);
		p = v + 3;
	}
}

static json_t *cron_command(const char *s, size_t len)
{
	char *c = xmalloc(3 * len + 4); /* "***" for a 1-byte value grows */
	json_t *j;

	memcpy(c, s, len);
	c[len] = '\0';
	/* a NUL inside: the rest is not a command */
	cron_mask(c);
	j = jstr(c, strlen(c));
	free(c);
	return j;
}

/* `[job-exec "NAME"]`: NAME (malloc'd, printable ASCII), or NULL with
 * *other_r true when the line is another section. */
static char *cron_header(const char *s, size_t l, bool *other_r)
{
	static const char pre[] = "[job-exec";
	const char *q, *e;

	*other_r = true;
	if (l < sizeof(pre) || memcmp(s, pre, sizeof(pre) - 1) != 0 ||
	    s[l - 1] != ']')
		return NULL;
	*other_r = false;
	q = memchr(s, '"', l);
	if (q == NULL)
		return NULL;
	e = memchr(q + 1, '"', (size_t)(s + l - q - 1));
	if (e == NULL || e == q + 1 || e - q - 1 > 255)
		return NULL;
	return ascii_copy(q + 1, (size_t)(e - q - 1));
}

json_t *classify_cron_jobs(const char *content, size_t len,
			   struct classify_result *w)
{
	json_t *set = json_object(), *job = NULL;
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;
	bool skipping = false;

	while (line_next(&it, &s, &l)) {
		if (l == 0 || s[0] == '#' || s[0] == ';')
			continue;
		if (s[0] == '[') {
			bool other;
			char *name = cron_header(s, l, &other);

			job = NULL;
			skipping = true;
			if (name == NULL) {
				warn(w, other ? "line %u: not a [job-exec] "
					  "block: skipped"
					      : "line %u: [job-exec] without a "
						"quoted name: skipped",
				     it.lineno);
				continue;
			}
			if (json_object_get(set, name) != NULL) {
				warn(w, "line %u: job name used twice: the "
				     "first block counts", it.lineno);
			} else if (json_object_size(set) >=
				   CLASSIFY_CRON_MAX) {
				warn(w, "line %u: more than %u jobs: the rest "
				     "is not read", it.lineno,
				     CLASSIFY_CRON_MAX);
				free(name);
				break;
			} else {
				job = json_object();
				json_object_set_new(set, name, job);
				skipping = false;
			}
			free(name);
			continue;
		}
		if (job == NULL) {
			if (!skipping)
				warn(w, "line %u: outside a [job-exec] block",
				     it.lineno);
			continue;
		}
		if (l == 10 && memcmp(s, "no-overlap", 10) == 0) {
			json_object_set_new(job, "no_overlap", json_true());
			continue;
		}
		size_t kl, vs;

		if (!ini_setting(s, l, &kl, &vs)) {
			warn(w, "line %u: no '=' in setting", it.lineno);
			continue;
		}
		size_t vl = l - vs > CRON_VALUE_MAX ? CRON_VALUE_MAX : l - vs;

		if (kl == 8 && memcmp(s, "schedule", 8) == 0)
			json_object_set_new(job, "schedule", jstr(s + vs, vl));
		else if (kl == 9 && memcmp(s, "container", 9) == 0)
			json_object_set_new(job, "container",
					    jstr(s + vs, vl));
		else if (kl == 7 && memcmp(s, "command", 7) == 0)
			json_object_set_new(job, "command",
					    cron_command(s + vs, vl));
		else if (kl == 10 && memcmp(s, "no-overlap", 10) == 0)
			json_object_set_new(job, "no_overlap",
					    json_boolean(vl == 4 &&
							 memcmp(s + vs, "true",
								4) == 0));
		/* other go-cron keys (user, tty, environment) carry no
		 * schedule: not compared */
	}
	return set;
}

/* {"name": name} + the job's fields (+ "old": the old job's). */
static json_t *cron_item(const char *name, const json_t *job,
			 const json_t *old)
{
	json_t *o = json_object();

	json_object_set_new(o, "name", json_string(name));
	if (json_is_object(job))
		json_object_update(o, (json_t *)job);
	if (old != NULL && json_is_object(old))
		json_object_set_new(o, "old", json_deep_copy(old));
	return o;
}

static void classify_crons(const struct classify_target *t,
			   const struct classify_input *in,
			   struct classify_result *r)
{
	json_t *now = in->content != NULL
			      ? classify_cron_jobs(in->content, in->len, r)
			      : json_object();
	json_t *old = set_of(in, "jobs"), *empty = json_object();
	json_t *lists[3], *out[3];
	static const char *const keys[3] = { "added", "removed", "changed" };
	char subject[300];

	if (old == NULL)
		old = empty;
	lists[0] = keys_minus(now, old);
	lists[1] = keys_minus(old, now);
	lists[2] = keys_changed(now, old);
	for (int i = 0; i < 3; i++) {
		out[i] = json_array();
		for (size_t j = 0; j < json_array_size(lists[i]); j++) {
			const char *n =
				json_string_value(json_array_get(lists[i], j));

			json_array_append_new(
				out[i],
				cron_item(n, json_object_get(i == 1 ? old : now, n),
					  i == 2 ? json_object_get(old, n)
						 : NULL));
		}
		json_decref(lists[i]);
	}
	if (json_array_size(out[0]) + json_array_size(out[1]) +
		    json_array_size(out[2]) > 0) {
		json_t *p = payload_new(in->path);

		json_object_set_new(p, "user", json_string(t->name));
		for (int i = 0; i < 3; i++)
			json_object_set(p, keys[i], out[i]);
		snprintf(subject, sizeof(subject), "user:%s", t->name);
		add_event(r, "cron.changed", subject, p);
	}
	for (int i = 0; i < 3; i++)
		json_decref(out[i]);
	json_decref(empty);
	if (in->content != NULL)
		r->facts = set_facts("jobs", now);
	else
		json_decref(now);
}

/* ---- backup settings ---- */

/* Keys of backup.env that are secret besides classify_secret_key's:
 * SSH_IDENTITY_PASSPHRASE, GPG_PASSPHRASE, AZURE_STORAGE_CONNECTION_STRING
 * (it holds the account key), credentials files. */
static const char *const backup_secret_patterns[] = {
	"*passphrase*", "*connection_string*", "*credential*", NULL
};

static bool backup_secret_key(const char *key, const char *const *extra,
			      size_t n_extra)
{
	if (classify_secret_key(key, extra, n_extra))
		return true;
	for (size_t i = 0; backup_secret_patterns[i] != NULL; i++)
		if (secret_match(backup_secret_patterns[i], key))
			return true;
	return false;
}

static bool env_key_ok(const char *s, size_t l)
{
	if (l == 0 || l > 128 || isdigit((unsigned char)s[0]))
		return false;
	for (size_t i = 0; i < l; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

json_t *classify_backup_env(const char *content, size_t len,
			    const char *const *extra, size_t n_extra,
			    struct classify_result *w)
{
	json_t *set = json_object();
	struct line_iter it = { content, content + len, 0 };
	const char *s;
	size_t l;

	while (line_next(&it, &s, &l)) {
		if (l == 0 || s[0] == '#')
			continue;
		if (l > 7 && memcmp(s, "export ", 7) == 0) {
			s += 7;
			l -= 7;
			while (l > 0 && (*s == ' ' || *s == '\t')) {
				s++;
				l--;
			}
		}
		const char *eq = memchr(s, '=', l);

		/* never the line itself in a warning: it may hold a
		 * password */
		if (eq == NULL) {
			warn(w, "line %u: no '=' in setting", it.lineno);
			continue;
		}
		size_t kl = (size_t)(eq - s), vs = kl + 1, ve = l;

		while (kl > 0 && (s[kl - 1] == ' ' || s[kl - 1] == '\t'))
			kl--;
		if (!env_key_ok(s, kl)) {
			warn(w, "line %u: bad key (letters, digits and '_' "
			     "only)", it.lineno);
			continue;
		}
		while (vs < ve && (s[vs] == ' ' || s[vs] == '\t' ||
				   s[vs] == '"' || s[vs] == '\''))
			vs++;
		while (ve > vs && (s[ve - 1] == ' ' || s[ve - 1] == '\t' ||
				   s[ve - 1] == '"' || s[ve - 1] == '\''))
			ve--;
		char *key = xstrndup(s, kl);

		if (backup_secret_key(key, extra, n_extra)) {
			char fp[CLASSIFY_FP_SIZE];

			classify_fingerprint(s + vs, ve - vs, fp);
			json_object_set_new(set, key, json_string(fp));
		} else {
			json_object_set_new(set, key,
					    jstr(s + vs, ve - vs > 4096
							      ? 4096 : ve - vs));
		}
		free(key);
	}
	return set;
}

static bool backup_secret_in(const char *key, const struct classify_input *in)
{
	return backup_secret_key(key, in->secret_keys, in->n_secret_keys);
}

static void classify_backup(const struct classify_target *t,
			    const struct classify_input *in,
			    struct classify_result *r)
{
	json_t *now = in->content != NULL
			      ? classify_backup_env(in->content, in->len,
						    in->secret_keys,
						    in->n_secret_keys, r)
			      : json_object();
	json_t *old_raw = set_of(in, "keys"), *old, *changes;
	char subject[300];

	old = old_raw != NULL ? kv_masked(old_raw, in, backup_secret_in)
			      : json_object();
	changes = kv_changes(now, old, in, backup_secret_in);
	if (json_array_size(changes) > 0) {
		json_t *p = payload_new(in->path);

		json_object_set_new(p, "user", json_string(t->name));
		kv_payload(p, changes);
		snprintf(subject, sizeof(subject), "user:%s", t->name);
		add_event(r, "backup.config_changed", subject, p);
	} else {
		json_decref(changes);
	}
	json_decref(old);
	if (in->content != NULL)
		r->facts = set_facts("keys", now);
	else
		json_decref(now);
}

/* ---- admin notifications ---- */

static bool note_time_ok(const char *s)
{
	/* YYYY-mm-dd HH:MM:SS */
	static const char shape[] = "dddd-dd-dd dd:dd:dd";

	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		if (shape[i] == 'd' ? !isdigit((unsigned char)s[i])
				    : s[i] != shape[i])
			return false;
	}
	return true;
}

bool classify_note_parse(const char *line, size_t len,
			 struct classify_note *n)
{
	static const char msg[] = " MESSAGE:";
	const char *p, *end = line + len, *m;

	memset(n, 0, sizeof(*n));
	if (len < 19 + 1 + 4 || !note_time_ok(line) || line[19] != ' ')
		return false;
	n->time = line;
	n->time_len = 19;
	p = line + 20;
	if ((size_t)(end - p) >= 6 && memcmp(p, "UNREAD", 6) == 0 &&
	    (p + 6 == end || p[6] == ' ')) {
		n->unread = true;
		p += 6;
	} else if ((size_t)(end - p) >= 4 && memcmp(p, "READ", 4) == 0 &&
		   (p + 4 == end || p[4] == ' ')) {
		p += 4;
	} else {
		return false;
	}
	if (p < end)
		p++;
	n->title = p;
	m = NULL;
	for (const char *q = p; q + sizeof(msg) - 1 <= end; q++) {
		if (memcmp(q, msg, sizeof(msg) - 1) == 0) {
			m = q;
			break;
		}
	}
	if (m == NULL) {
		n->title_len = (size_t)(end - p);
		n->message = end;
		return true;
	}
	n->title_len = (size_t)(m - p);
	n->message = m + sizeof(msg) - 1;
	if (n->message < end && *n->message == ' ')
		n->message++;
	n->message_len = (size_t)(end - n->message);
	return true;
}

/* The key of a notification whatever its READ / UNREAD marker. */
static void note_key(const struct classify_note *n, char out[17])
{
	uint64_t h = classify_hash(n->time, n->time_len, CLASSIFY_HASH_SEED);

	h = classify_hash("\n", 1, h);
	h = classify_hash(n->title, n->title_len, h);
	h = classify_hash("\n", 1, h);
	h = classify_hash(n->message, n->message_len, h);
	snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* Every notification (the last CLASSIFY_NOTES_MAX lines) is kept as a key
 * that does not change when sed -i marks it READ, with its count: a line
 * is new when its key is not in the facts (more often than before), so a
 * rewrite in place or by rename announces nothing again, appended lines
 * once each, and a restart reads the facts from the snapshot. */
static void classify_notifications(const struct classify_input *in,
				   struct classify_result *r)
{
	json_t *old = set_of(in, "seen"), *left, *now;
	struct line_iter it;
	const char *s;
	size_t l, total = 0, skip;

	if (in->content == NULL)
		return; /* gone (rotated away): nothing to announce */
	now = json_object();
	left = old != NULL ? json_deep_copy(old) : json_object();
	it = (struct line_iter){ in->content, in->content + in->len, 0 };
	while (line_next(&it, &s, &l))
		total++;
	skip = total > CLASSIFY_NOTES_MAX ? total - CLASSIFY_NOTES_MAX : 0;
	it = (struct line_iter){ in->content, in->content + in->len, 0 };
	while (line_next(&it, &s, &l)) {
		struct classify_note n;
		char key[17];
		json_int_t c;

		if (skip > 0) {
			skip--;
			continue;
		}
		if (!classify_note_parse(s, l, &n))
			continue; /* another writer's line: not a note */
		note_key(&n, key);
		c = json_integer_value(json_object_get(now, key));
		json_object_set_new(now, key, json_integer(c + 1));
		c = json_integer_value(json_object_get(left, key));
		if (c > 0) {
			json_object_set_new(left, key, json_integer(c - 1));
			continue;
		}
		if (!n.unread)
			continue;
		json_t *p = payload_new(in->path);

		json_object_set_new(p, "logged_at", jstr(n.time, n.time_len));
		json_object_set_new(p, "title", jstr(n.title, n.title_len));
		json_object_set_new(p, "message",
				    jstr(n.message, n.message_len > 4096
							    ? 4096
							    : n.message_len));
		add_event(r, "panel.notification", "notifications", p);
	}
	json_decref(left);
	r->facts = set_facts("seen", now);
}

void classify_content(const struct classify_target *t,
		      const struct classify_input *in,
		      struct classify_result *r)
{
	switch (t->kind) {
	case CLASSIFY_DOMAIN_CONF:
		classify_domain_conf(t, in, r);
		break;
	case CLASSIFY_CERT_JSON:
		classify_cert_json(t, in, r);
		break;
	case CLASSIFY_CUSTOM_CERT:
		classify_custom_cert(t, in, r);
		break;
	case CLASSIFY_USER_DIR:
		classify_user_dir(t, in, r);
		break;
	case CLASSIFY_DENYLIST:
		classify_denylist(t, in, r);
		break;
	case CLASSIFY_PANEL_CONFIG:
		classify_panel_config(in, r);
		break;
	case CLASSIFY_ZONE:
		classify_zone(t, in, r);
		break;
	case CLASSIFY_NAMED_CONF:
		classify_named_conf(in, r);
		break;
	case CLASSIFY_MAIL_ACCOUNTS:
		classify_mail(in, true, r);
		break;
	case CLASSIFY_MAIL_VIRTUAL:
		classify_mail(in, false, r);
		break;
	case CLASSIFY_MAIL_QUOTAS:
		classify_quotas(in, r);
		break;
	case CLASSIFY_FTP_USERS:
		classify_ftp(t, in, r);
		break;
	case CLASSIFY_CRONS:
		classify_crons(t, in, r);
		break;
	case CLASSIFY_BACKUP_ENV:
		classify_backup(t, in, r);
		break;
	case CLASSIFY_NOTIFICATIONS:
		classify_notifications(in, r);
		break;
	default:
		break;
	}
}
