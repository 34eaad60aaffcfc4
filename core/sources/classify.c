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
	return CLASSIFY_NONE;
}

enum classify_kind classify_path(const char *root, const char *path,
				 struct classify_target *t,
				 const char **why_r)
{
	size_t rl = strlen(root);
	const char *b = base_name(path);

	memset(t, 0, sizeof(*t));
	*why_r = NULL;
	while (rl > 1 && root[rl - 1] == '/')
		rl--;
	if (classify_ignored_name(b))
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
		if (now)
			json_object_set_new(p, "suspended", json_true());
		add_event(r, "domain.updated", t->name, p);
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
	json_object_set_new(p, "not_after", json_string(c->not_after));
	json_object_set(p, "names", c->names);
}

/* Facts kept for a certificate: serial, not-after and names (names so
 * that cert.removed can say what was removed). */
static json_t *cert_facts(const struct classify_cert *c)
{
	json_t *f = json_object();

	json_object_set_new(f, "serial", json_string(c->serial));
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
		const char *eq = memchr(s, '=', l);

		if (eq == NULL) {
			warn(w, "line %u: no '=' in setting", it.lineno);
			continue;
		}
		size_t kl = (size_t)(eq - s), vs = kl + 1;

		while (kl > 0 && (s[kl - 1] == ' ' || s[kl - 1] == '\t'))
			kl--;
		while (vs < l && (s[vs] == ' ' || s[vs] == '\t'))
			vs++;
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

/* A copy of an INI key set with the values of secret keys replaced by
 * their fingerprints (facts written by older versions may hold values). */
static json_t *secrets_masked(const json_t *set,
			      const struct classify_input *in)
{
	json_t *copy = json_object();
	const char *k;
	json_t *v;

	json_object_foreach ((json_t *)set, k, v) {
		const char *sv = json_string_value(v);
		char fp[CLASSIFY_FP_SIZE];

		if (sv != NULL && !is_fingerprint(sv) &&
		    classify_secret_key(k, in->secret_keys,
					in->n_secret_keys)) {
			classify_fingerprint(sv, json_string_length(v), fp);
			json_object_set_new(copy, k, json_string(fp));
		} else {
			json_object_set(copy, k, v);
		}
	}
	return copy;
}

static void classify_panel_config(const struct classify_input *in,
				  struct classify_result *r)
{
	json_t *parsed = in->content != NULL
				 ? classify_ini(in->content, in->len, r)
				 : json_object();
	json_t *now = secrets_masked(parsed, in);
	json_t *old_raw = set_of(in, "keys"), *old;
	json_t *changes = json_array(), *lists[3];
	size_t i, j;

	json_decref(parsed);
	old = old_raw != NULL ? secrets_masked(old_raw, in) : json_object();
	lists[0] = keys_minus(now, old);   /* added */
	lists[1] = keys_minus(old, now);   /* removed */
	lists[2] = keys_changed(now, old); /* changed */
	for (i = 0; i < 3; i++) {
		for (j = 0; j < json_array_size(lists[i]); j++) {
			const char *k =
				json_string_value(json_array_get(lists[i], j));
			json_t *o = json_object_get(old, k);
			json_t *n = json_object_get(now, k);

			if (classify_secret_key(k, in->secret_keys,
						in->n_secret_keys))
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
	if (json_array_size(changes) > 0) {
		json_t *p = payload_new(in->path);
		json_t *keys = json_array();

		for (j = 0; j < json_array_size(changes); j++)
			json_array_append(keys,
					  json_object_get(json_array_get(changes,
									 j),
							  "key"));
		json_object_set_new(p, "keys", keys);
		json_object_set_new(p, "changes", changes);
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
	default:
		break;
	}
}
