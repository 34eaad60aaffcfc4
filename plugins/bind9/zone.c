/* bind9 plugin: pure zone and named.conf text functions (see zone.h). */
#define _GNU_SOURCE
#include "zone.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <ophook/safe.h>

const char zone_default_template[] =
	"$TTL 1h\n"
	"@       IN      SOA     {ns1}. {rpemail}. (\n"
	"                        {serial}        ; Serial number\n"
	"                        1h              ; Refresh interval\n"
	"                        15m             ; Retry interval\n"
	"                        1w              ; Expire interval\n"
	"                        1h )            ; Minimum TTL\n"
	"\n"
	"@ IN NS      {ns1}.\n"
	"@ IN NS      {ns2}.\n"
	"\n"
	"ns1     14400     IN      A       {server_ip}\n"
	"ns2     14400     IN      A       {server_ip}\n"
	"\n"
	"{domain}.     14400     IN      A       {server_ip}\n"
	"{domain}.     3600     IN      MX       0 {domain}.\n"
	"www     14400     IN      CNAME   {domain}.\n"
	"\n"
	"mail    14400     IN      CNAME   {domain}.\n"
	"webmail    14400     IN      CNAME   {domain}.\n"
	"\n"
	"{domain}.    14400     IN      TXT       "
	"\"v=spf1 ip4:{server_ip} +a +mx ~all\"\n"
	"_dmarc    14400     IN      TXT     \"v=DMARC1; p=none;\"\n";

/* A growing string; `oom` sticks once an allocation failed. */
struct zone_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void zone_buf_add(struct zone_buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap == 0 ? 256 : b->cap;
		char *p;

		while (b->len + n + 1 > cap)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void zone_buf_str(struct zone_buf *b, const char *s)
{
	zone_buf_add(b, s, strlen(s));
}

/* Hand the text over to *out_r; 0 or -ENOMEM. */
static int zone_buf_finish(struct zone_buf *b, char **out_r)
{
	if (!b->oom && b->p == NULL)
		zone_buf_add(b, "", 0);
	if (b->oom) {
		free(b->p);
		*out_r = NULL;
		return -ENOMEM;
	}
	*out_r = b->p;
	return 0;
}

/* --- SOA serial ---------------------------------------------------------- */

/* Next token of zone text from *pos: blanks, newlines and ";" comments are
 * skipped; "(" and ")" are tokens of their own; a quoted string is one
 * token.  False at the end. */
static bool zone_token(const char *t, size_t *pos, size_t *off_r,
		       size_t *len_r)
{
	size_t i = *pos, start;

	for (;;) {
		while (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' ||
		       t[i] == '\r')
			i++;
		if (t[i] != ';')
			break;
		while (t[i] != '\0' && t[i] != '\n')
			i++;
	}
	if (t[i] == '\0')
		return false;
	start = i;
	if (t[i] == '(' || t[i] == ')') {
		i++;
	} else if (t[i] == '"') {
		for (i++; t[i] != '\0' && t[i] != '"'; i++) {
			if (t[i] == '\\' && t[i + 1] != '\0')
				i++;
		}
		if (t[i] == '"')
			i++;
	} else {
		while (t[i] != '\0' && strchr(" \t\r\n;()\"", t[i]) == NULL)
			i++;
	}
	*off_r = start;
	*len_r = i - start;
	*pos = i;
	return true;
}

int zone_serial_find(const char *text, size_t *off_r, size_t *len_r)
{
	size_t pos = 0, off, len;

	while (zone_token(text, &pos, &off, &len)) {
		if (len != 3 || strncasecmp(text + off, "SOA", 3) != 0)
			continue;
		/* mname rname [(] serial */
		for (int field = 0; field < 3;) {
			if (!zone_token(text, &pos, &off, &len))
				return -ENOENT;
			if (len == 1 && (text[off] == '(' || text[off] == ')'))
				continue;
			field++;
		}
		*off_r = off;
		*len_r = len;
		return 0;
	}
	return -ENOENT;
}

int zone_serial_get(const char *text, uint32_t *serial_r)
{
	size_t off, len;
	uint64_t v = 0;
	int ret = zone_serial_find(text, &off, &len);

	if (ret < 0)
		return ret;
	if (len == 0 || len > 10)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)text[off + i]))
			return -EINVAL;
		v = v * 10 + (uint64_t)(text[off + i] - '0');
	}
	if (v > UINT32_MAX)
		return -EINVAL;
	*serial_r = (uint32_t)v;
	return 0;
}

int zone_serial_set(const char *text, uint32_t serial, char **out_r)
{
	struct zone_buf b = { 0 };
	char num[16];
	size_t off, len;
	int ret = zone_serial_find(text, &off, &len);

	if (ret < 0)
		return ret;
	snprintf(num, sizeof(num), "%u", serial);
	zone_buf_add(&b, text, off);
	zone_buf_str(&b, num);
	zone_buf_str(&b, text + off + len);
	return zone_buf_finish(&b, out_r);
}

uint32_t zone_serial_next(uint32_t old, time_t now)
{
	struct tm tm;
	uint64_t day;

	gmtime_r(&now, &tm);
	day = (uint64_t)(tm.tm_year + 1900) * 1000000u +
	      (uint64_t)(tm.tm_mon + 1) * 10000u + (uint64_t)tm.tm_mday * 100u;
	if (day + 1 > old && day + 1 <= UINT32_MAX)
		return (uint32_t)(day + 1);
	/* 0 is a valid serial, but a fresh zone never needs it */
	return old == UINT32_MAX ? 1 : old + 1;
}

uint64_t zone_hash(const char *text)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t off = 0, len = 0, n = strlen(text);

	if (zone_serial_find(text, &off, &len) < 0)
		off = n + 1;
	for (size_t i = 0; i < n; i++) {
		if (i == off) {
			i += len - 1;
			continue;
		}
		h ^= (unsigned char)text[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

/* --- render -------------------------------------------------------------- */

static const char *zone_var(const struct zone_vars *v, const char *name,
			    size_t len, char serial[16], bool *known_r)
{
	static const char *const names[] = {
		"domain", "ns1", "ns2", "ns3", "ns4", "rpemail", "server_ip",
		"serial",
	};
	const char *vals[] = {
		v->domain, v->ns1, v->ns2, v->ns3, v->ns4, v->rpemail,
		v->server_ip, serial,
	};

	*known_r = false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == len &&
		    memcmp(names[i], name, len) == 0) {
			*known_r = true;
			return vals[i];
		}
	}
	return NULL;
}

int zone_render(const char *tmpl, const struct zone_vars *v, char **out_r,
		const char **error_r)
{
	static _Thread_local char why[160];
	struct zone_buf b = { 0 };
	char serial[16], day[16], *text;
	const char *p = tmpl;
	int ret;

	snprintf(serial, sizeof(serial), "%u", v->serial);
	snprintf(day, sizeof(day), "%u", v->serial / 100u);
	*out_r = NULL;
	while (*p != '\0') {
		const char *close, *val;
		bool known;

		if (*p == 'Y' && strncmp(p, "YYYYMMDD", 8) == 0) {
			zone_buf_str(&b, day);
			p += 8;
			continue;
		}
		if (*p != '{' || (close = strchr(p, '}')) == NULL ||
		    close - p > 16) {
			zone_buf_add(&b, p, 1);
			p++;
			continue;
		}
		val = zone_var(v, p + 1, (size_t)(close - p - 1), serial,
			       &known);
		if (!known) {
			zone_buf_add(&b, p, 1);
			p++;
			continue;
		}
		if (val == NULL) {
			snprintf(why, sizeof(why),
				 "zone template: no value for placeholder %.*s",
				 (int)(close - p + 1), p);
			*error_r = why;
			free(b.p);
			return -EINVAL;
		}
		zone_buf_str(&b, val);
		p = close + 1;
	}
	ret = zone_buf_finish(&b, &text);
	if (ret < 0)
		return ret;
	ret = zone_serial_set(text, v->serial, out_r);
	free(text);
	if (ret == -ENOENT)
		*error_r = "zone template: no SOA record";
	return ret == -ENOENT ? -EINVAL : ret;
}

/* --- named.conf ---------------------------------------------------------- */

/* Skip blanks and comments (//, #, / * * /) in named.conf text. */
static size_t zone_conf_skip(const char *c, size_t i)
{
	for (;;) {
		while (c[i] == ' ' || c[i] == '\t' || c[i] == '\n' ||
		       c[i] == '\r')
			i++;
		if (c[i] == '#' || (c[i] == '/' && c[i + 1] == '/')) {
			while (c[i] != '\0' && c[i] != '\n')
				i++;
		} else if (c[i] == '/' && c[i + 1] == '*') {
			const char *e = strstr(c + i + 2, "*/");

			i = e == NULL ? strlen(c) : (size_t)(e - c) + 2;
		} else {
			return i;
		}
	}
}

/* From a `zone` keyword at i: the end of the statement (after its ';'), or
 * 0 when it does not end. */
static size_t zone_conf_stmt_end(const char *c, size_t i)
{
	int depth = 0;
	bool opened = false;

	while (c[i] != '\0') {
		size_t j = zone_conf_skip(c, i);

		if (j != i) {
			i = j;
			continue;
		}
		if (c[i] == '"') {
			for (i++; c[i] != '\0' && c[i] != '"'; i++) {
				if (c[i] == '\\' && c[i + 1] != '\0')
					i++;
			}
			if (c[i] == '"')
				i++;
			continue;
		}
		if (c[i] == '{') {
			depth++;
			opened = true;
		} else if (c[i] == '}') {
			depth--;
		} else if (c[i] == ';' && depth == 0 && opened) {
			return i + 1;
		}
		i++;
	}
	return 0;
}

/* True when the zone name at c[i] (quoted or not) is domain. */
static bool zone_conf_name_is(const char *c, size_t i, const char *domain)
{
	size_t n = strlen(domain), len;
	bool quoted = c[i] == '"';

	if (n > 0 && domain[n - 1] == '.')
		n--;

	if (quoted)
		i++;
	for (len = 0; c[i + len] != '\0'; len++) {
		char ch = c[i + len];

		if (quoted ? ch == '"' : strchr(" \t\r\n{;", ch) != NULL)
			break;
	}
	if (quoted && c[i + len] != '"')
		return false;
	if (len > 0 && c[i + len - 1] == '.')
		len--;
	return len == n && strncasecmp(c + i, domain, n) == 0;
}

int zone_conf_find(const char *conf, const char *domain, size_t *start_r,
		   size_t *end_r)
{
	size_t line = 0;

	while (conf[line] != '\0') {
		size_t i = line, end;
		const char *nl = strchr(conf + line, '\n');
		size_t next = nl == NULL ? strlen(conf) : (size_t)(nl - conf) + 1;

		while (conf[i] == ' ' || conf[i] == '\t')
			i++;
		if (strncmp(conf + i, "zone", 4) == 0 &&
		    (conf[i + 4] == ' ' || conf[i + 4] == '\t')) {
			size_t name = i + 4;

			while (conf[name] == ' ' || conf[name] == '\t')
				name++;
			if (zone_conf_name_is(conf, name, domain) &&
			    (end = zone_conf_stmt_end(conf, i)) != 0) {
				size_t k = end;

				while (conf[k] == ' ' || conf[k] == '\t' ||
				       conf[k] == '\r')
					k++;
				if (conf[k] == '#' ||
				    (conf[k] == '/' && conf[k + 1] == '/')) {
					while (conf[k] != '\0' && conf[k] != '\n')
						k++;
				}
				if (conf[k] == '\n' || conf[k] == '\0') {
					/* the whole line(s) go */
					*start_r = line;
					*end_r = conf[k] == '\n' ? k + 1 : k;
				} else {
					/* more statements follow on the line */
					*start_r = i;
					*end_r = k;
				}
				return 0;
			}
		}
		line = next;
	}
	return -ENOENT;
}

static bool zone_path_quotable(const char *path)
{
	for (const char *p = path; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 ||
		    *p == 0x7f)
			return false;
	}
	return true;
}

int zone_conf_line(const char *domain, const char *path, char **out_r)
{
	return zone_conf_line_opts(domain, path, NULL, out_r);
}

int zone_conf_line_opts(const char *domain, const char *path,
			const char *opts, char **out_r)
{
	struct zone_buf b = { 0 };

	if (!zone_path_quotable(path))
		return -EINVAL;
	zone_buf_str(&b, "zone \"");
	zone_buf_str(&b, domain);
	zone_buf_str(&b, "\" IN { type master; file \"");
	zone_buf_str(&b, path);
	zone_buf_str(&b, "\";");
	if (opts != NULL && *opts != '\0') {
		zone_buf_str(&b, " ");
		zone_buf_str(&b, opts);
	}
	zone_buf_str(&b, " };");
	return zone_buf_finish(&b, out_r);
}

int zone_slave_line(const char *domain, const char *primary,
		    const char *path, char **out_r)
{
	struct zone_buf b = { 0 };
	char *norm = NULL;
	const char *why;
	int ret;

	if (!zone_path_quotable(path))
		return -EINVAL;
	ret = zone_addr_norm(primary, true, false, &norm, &why);
	if (ret < 0)
		return ret;
	zone_buf_str(&b, "zone \"");
	zone_buf_str(&b, domain);
	zone_buf_str(&b, "\" IN { type slave; masters { ");
	zone_buf_str(&b, norm);
	zone_buf_str(&b, "; }; file \"");
	zone_buf_str(&b, path);
	zone_buf_str(&b, "\"; };");
	free(norm);
	return zone_buf_finish(&b, out_r);
}

int zone_addr_norm(const char *s, bool allow_port, bool allow_prefix,
		   char **out_r, const char **why_r)
{
	char ip[64], text[INET6_ADDRSTRLEN], *end;
	unsigned char bin[16];
	const char *p = s, *q;
	unsigned long port = 0, prefix = 0;
	bool has_port = false, has_prefix = false;
	int af;
	size_t n;

	*out_r = NULL;
	while (*p == ' ' || *p == '\t')
		p++;
	n = strcspn(p, " \t/");
	if (n == 0 || n >= sizeof(ip)) {
		*why_r = "not an IP address";
		return -EINVAL;
	}
	memcpy(ip, p, n);
	ip[n] = '\0';
	p += n;
	af = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
	if (inet_pton(af, ip, bin) != 1 ||
	    inet_ntop(af, bin, text, sizeof(text)) == NULL) {
		*why_r = "not an IP address";
		return -EINVAL;
	}
	if (*p == '/') {
		if (!allow_prefix) {
			*why_r = "a prefix length is not allowed here";
			return -EINVAL;
		}
		q = p + 1;
		errno = 0;
		prefix = strtoul(q, &end, 10);
		if (errno != 0 || end == q || *q < '0' || *q > '9' ||
		    prefix > (af == AF_INET ? 32u : 128u)) {
			*why_r = "bad prefix length";
			return -EINVAL;
		}
		has_prefix = true;
		p = end;
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "port", 4) == 0 && (p[4] == ' ' || p[4] == '\t')) {
		if (!allow_port) {
			*why_r = "a port is not allowed here";
			return -EINVAL;
		}
		p += 4;
		while (*p == ' ' || *p == '\t')
			p++;
		errno = 0;
		port = strtoul(p, &end, 10);
		if (errno != 0 || end == p || *p < '0' || *p > '9' ||
		    port == 0 || port > 65535) {
			*why_r = "bad port (want 1..65535)";
			return -EINVAL;
		}
		has_port = true;
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
	}
	if (*p != '\0') {
		*why_r = allow_port ? "want \"IP\" or \"IP port N\""
				    : "want an IP address or IP/prefix";
		return -EINVAL;
	}
	{
		char buf[INET6_ADDRSTRLEN + 16];

		if (has_port)
			snprintf(buf, sizeof(buf), "%s port %lu", text, port);
		else if (has_prefix)
			snprintf(buf, sizeof(buf), "%s/%lu", text, prefix);
		else
			snprintf(buf, sizeof(buf), "%s", text);
		*out_r = strdup(buf);
	}
	return *out_r == NULL ? -ENOMEM : 0;
}

int zone_conf_opts(const char *const *notify,
		   const char *const *allow_transfer, char **out_r)
{
	struct zone_buf b = { 0 };
	const char *why;

	for (int l = 0; l < 2; l++) {
		const char *const *list = l == 0 ? notify : allow_transfer;

		if (list == NULL || list[0] == NULL)
			continue;
		if (b.len > 0)
			zone_buf_str(&b, " ");
		zone_buf_str(&b, l == 0 ? "notify yes; also-notify { "
					: "allow-transfer { ");
		for (size_t i = 0; list[i] != NULL; i++) {
			char *norm = NULL;
			int ret = zone_addr_norm(list[i], l == 0, l == 1,
						 &norm, &why);

			if (ret < 0) {
				free(b.p);
				*out_r = NULL;
				return ret;
			}
			zone_buf_str(&b, norm);
			zone_buf_str(&b, "; ");
			free(norm);
		}
		zone_buf_str(&b, "};");
	}
	return zone_buf_finish(&b, out_r);
}

int zone_conf_put(const char *conf, const char *domain, const char *line,
		  char **out_r)
{
	struct zone_buf b = { 0 };
	size_t s, e, n = strlen(conf), ts, te;

	*out_r = NULL;
	if (zone_conf_find(conf, domain, &s, &e) < 0) {
		zone_buf_add(&b, conf, n);
		if (n > 0 && conf[n - 1] != '\n')
			zone_buf_str(&b, "\n");
		zone_buf_str(&b, line);
		zone_buf_str(&b, "\n");
		return zone_buf_finish(&b, out_r);
	}
	ts = s;
	te = e;
	while (ts < te && strchr(" \t", conf[ts]) != NULL)
		ts++;
	while (te > ts && strchr(" \t\r\n", conf[te - 1]) != NULL)
		te--;
	if (te - ts == strlen(line) && strncmp(conf + ts, line, te - ts) == 0)
		return 0;
	zone_buf_add(&b, conf, s);
	zone_buf_str(&b, line);
	if (e > s && conf[e - 1] == '\n')
		zone_buf_str(&b, "\n");
	else if (conf[e] != '\0')
		zone_buf_str(&b, " ");
	zone_buf_str(&b, conf + e);
	return zone_buf_finish(&b, out_r);
}

int zone_conf_add(const char *conf, const char *domain, const char *path,
		  char **out_r)
{
	struct zone_buf b = { 0 };
	size_t s, e, n = strlen(conf);
	char *line;
	int ret;

	*out_r = NULL;
	if (zone_conf_find(conf, domain, &s, &e) == 0)
		return 0;
	ret = zone_conf_line(domain, path, &line);
	if (ret < 0)
		return ret;
	zone_buf_add(&b, conf, n);
	if (n > 0 && conf[n - 1] != '\n')
		zone_buf_str(&b, "\n");
	zone_buf_str(&b, line);
	zone_buf_str(&b, "\n");
	free(line);
	return zone_buf_finish(&b, out_r);
}

int zone_conf_remove(const char *conf, const char *domain, char **out_r)
{
	struct zone_buf b = { 0 };
	size_t s, e;

	*out_r = NULL;
	if (zone_conf_find(conf, domain, &s, &e) < 0)
		return 0;
	zone_buf_add(&b, conf, s);
	zone_buf_str(&b, conf + e);
	return zone_buf_finish(&b, out_r);
}

/* --- records the plugin owns --------------------------------------------- */

/* True when the line [l, l+len) ends with the marker for tag. */
static bool zone_line_tagged(const char *l, size_t len, const char *tag)
{
	size_t tl = strlen(tag);

	while (len > 0 && (l[len - 1] == ' ' || l[len - 1] == '\r' ||
			   l[len - 1] == '\t'))
		len--;
	if (len < tl + 9)
		return false;
	return memcmp(l + len - tl, tag, tl) == 0 &&
	       memcmp(l + len - tl - 9, "; ophook:", 9) == 0;
}

bool zone_records_has(const char *text, const char *tag)
{
	for (const char *l = text; *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t len = nl == NULL ? strlen(l) : (size_t)(nl - l);

		if (zone_line_tagged(l, len, tag))
			return true;
		l += len + (nl != NULL);
	}
	return false;
}

int zone_records_set(const char *text, const char *tag, const char *records,
		     char **out_r)
{
	struct zone_buf b = { 0 }, old = { 0 };
	int ret;

	*out_r = NULL;
	for (const char *l = text; *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t len = nl == NULL ? strlen(l) : (size_t)(nl - l);

		if (zone_line_tagged(l, len, tag))
			zone_buf_add(&old, l, len + (nl != NULL));
		else
			zone_buf_add(&b, l, len + (nl != NULL));
		l += len + (nl != NULL);
	}
	if (b.len > 0 && b.p[b.len - 1] != '\n')
		zone_buf_str(&b, "\n");
	for (const char *l = records == NULL ? "" : records; *l != '\0';) {
		const char *nl = strchr(l, '\n');
		size_t len = nl == NULL ? strlen(l) : (size_t)(nl - l);

		if (len > 0) {
			zone_buf_add(&b, l, len);
			zone_buf_str(&b, " ; ophook:");
			zone_buf_str(&b, tag);
			zone_buf_str(&b, "\n");
		}
		l += len + (nl != NULL);
	}
	ret = zone_buf_finish(&b, out_r);
	if (ret == 0 && strcmp(*out_r, text) == 0) {
		free(*out_r);
		*out_r = NULL;
	}
	free(old.p);
	if (old.oom)
		ret = -ENOMEM;
	return ret;
}

int zone_txt_strings(const char *value, char **out_r)
{
	struct zone_buf raw = { 0 }, b = { 0 };
	const char *p;
	int ret;

	*out_r = NULL;
	for (p = value; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\n' &&
		    *p != '\r')
			return -EINVAL;
		if (*p == 0x7f)
			return -EINVAL;
	}
	p = value + strspn(value, " \t\r\n(");
	if (*p == '"') {
		/* quoted chunks: join their contents */
		for (p = value; (p = strchr(p, '"')) != NULL;) {
			const char *q = ++p;

			while (*q != '\0' && *q != '"') {
				if (*q == '\\' && q[1] != '\0')
					q++;
				q++;
			}
			for (const char *r = p; r < q; r++) {
				if (*r == '\\' && r + 1 < q)
					r++;
				zone_buf_add(&raw, r, 1);
			}
			if (*q == '\0')
				break;
			p = q + 1;
		}
	} else {
		zone_buf_str(&raw, value);
	}
	ret = zone_buf_finish(&raw, &raw.p);
	if (ret < 0)
		return ret;
	for (p = raw.p; *p != '\0'; p++) {
		if (*p == '\n' || *p == '\r' || *p == '\t') {
			free(raw.p);
			return -EINVAL;
		}
	}
	p = raw.p;
	do {
		size_t n = strlen(p) > 255 ? 255 : strlen(p);

		if (b.len > 0)
			zone_buf_str(&b, " ");
		zone_buf_str(&b, "\"");
		for (size_t i = 0; i < n; i++) {
			if (p[i] == '"' || p[i] == '\\')
				zone_buf_str(&b, "\\");
			zone_buf_add(&b, p + i, 1);
		}
		zone_buf_str(&b, "\"");
		p += n;
	} while (*p != '\0');
	free(raw.p);
	return zone_buf_finish(&b, out_r);
}

/* --- names --------------------------------------------------------------- */

int zone_domain_norm(const char *s, char **out_r, const char **why_r)
{
	char *d;

	*out_r = NULL;
	if (s == NULL) {
		*why_r = "missing";
		return -EINVAL;
	}
	if (!ophook_name_valid_domain(s, why_r))
		return -EINVAL;
	d = strdup(s);
	if (d == NULL)
		return -ENOMEM;
	for (char *p = d; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	*out_r = d;
	return 0;
}

bool zone_is_subdomain(const char *s, const char *parent)
{
	size_t n = strlen(s), m = strlen(parent);

	return n > m + 1 && s[n - m - 1] == '.' &&
	       strcmp(s + n - m, parent) == 0;
}

/* --- customer zones: directives and the checker's diagnosis ------------- */

/* The first token of a directive's arguments at *p (quoted or bare), in
 * buf; p moves past it.  False when there is none. */
static bool zone_dir_token(const char **p, const char *end, char *buf,
			   size_t cap)
{
	const char *s = *p;
	size_t n = 0;

	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	if (s >= end || *s == ';')
		return false;
	if (*s == '"') {
		for (s++; s < end && *s != '"'; s++) {
			if (*s == '\\' && s + 1 < end)
				s++;
			if (n + 1 < cap)
				buf[n++] = *s;
		}
		if (s < end)
			s++;
	} else {
		for (; s < end && *s != ' ' && *s != '\t' && *s != ';'; s++)
			if (n + 1 < cap)
				buf[n++] = *s;
	}
	buf[n] = '\0';
	*p = s;
	return true;
}

/* An $INCLUDE target inside dir: absolute, under dir + "/", with no "."
 * or ".." component and no empty one. */
static bool zone_include_inside(const char *file, const char *dir)
{
	size_t dl = strlen(dir);

	while (dl > 1 && dir[dl - 1] == '/')
		dl--;
	if (file[0] != '/' || strncmp(file, dir, dl) != 0 || file[dl] != '/' ||
	    file[dl + 1] == '\0')
		return false;
	for (const char *c = file + dl + 1; *c != '\0';) {
		size_t l = strcspn(c, "/");

		if (l == 0 || (l == 1 && c[0] == '.') ||
		    (l == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		c += l;
		if (*c == '/')
			c++;
		else
			break;
	}
	return file[strlen(file) - 1] != '/';
}

/* The printable form of a directive argument for a message. */
static void zone_printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

int zone_directives_check(const char *text, const char *zones_dir,
			  uint64_t generate_max, char **msg_r)
{
	const char *line = text;
	size_t lineno = 1;
	char arg[512];

	*msg_r = NULL;
	for (; *line != '\0'; lineno++) {
		const char *nl = strchr(line, '\n');
		const char *end = nl != NULL ? nl : line + strlen(line);
		const char *p = line + 9;
		int n = 0;

		if (end - line >= 8 && strncasecmp(line, "$INCLUDE", 8) == 0 &&
		    (end - line == 8 || line[8] == ' ' || line[8] == '\t')) {
			p = line + 8;
			if (!zone_dir_token(&p, end, arg, sizeof(arg)))
				n = asprintf(msg_r, "line %zu: $INCLUDE without "
						    "a file", lineno);
			else if (!zone_include_inside(arg, zones_dir)) {
				zone_printable(arg);
				n = asprintf(msg_r,
					     "line %zu: $INCLUDE %s: only "
					     "files inside %s may be "
					     "included",
					     lineno, arg, zones_dir);
			}
		} else if (end - line >= 9 &&
			   strncasecmp(line, "$GENERATE", 9) == 0 &&
			   (line[9] == ' ' || line[9] == '\t')) {
			unsigned long long a, b, step = 1;
			char *e;

			if (!zone_dir_token(&p, end, arg, sizeof(arg)))
				goto next;
			errno = 0;
			a = strtoull(arg, &e, 10);
			if (e == arg || *e != '-' || !isdigit((unsigned char)e[1]))
				goto next; /* the checker says what is wrong */
			b = strtoull(e + 1, &e, 10);
			if (*e == '/' && isdigit((unsigned char)e[1]))
				step = strtoull(e + 1, &e, 10);
			if (errno != 0 || *e != '\0' || step == 0 || b < a ||
			    (b - a) / step >= generate_max) {
				zone_printable(arg);
				n = asprintf(msg_r,
					     "line %zu: $GENERATE %s: more "
					     "than the %llu steps allowed "
					     "(limit generate_max)",
					     lineno, arg,
					     (unsigned long long)generate_max);
			}
		}
next:
		if (n < 0) {
			*msg_r = NULL;
			return -ENOMEM;
		}
		if (*msg_r != NULL)
			return -EINVAL;
		if (nl == NULL)
			break;
		line = nl + 1;
	}
	return 0;
}

/* Length of a "stream-0x<hex>" or "(null)" name at p, else 0. */
static size_t zone_stream_len(const char *p)
{
	if (strncmp(p, "stream-0x", 9) == 0)
		return 9 + strspn(p + 9, "0123456789abcdefABCDEF");
	if (strncmp(p, "(null)", 6) == 0)
		return 6;
	return 0;
}

int zone_diag_filter(const char *out, const char *zone, const char *path,
		     char **out_r)
{
	size_t zl = strlen(zone), kept = 0, cap, n = 0;
	char *res;

	cap = ZONE_DIAG_LINES * (ZONE_DIAG_LINE_MAX + 16) + 1;
	res = malloc(cap);
	if (res == NULL)
		return -ENOMEM;
	for (const char *l = out; *l != '\0' && kept < ZONE_DIAG_LINES;) {
		const char *nl = strchr(l, '\n');
		size_t len = nl != NULL ? (size_t)(nl - l) : strlen(l);
		const char *loc = l;
		bool keep = false;

		/* "dns_master_load: stream-0x...:5: ..." */
		for (size_t i = 0; i < len && i < 40; i++) {
			if (l[i] == ' ')
				break;
			if (l[i] == ':' && i + 2 < len && l[i + 1] == ' ') {
				loc = l + i + 2;
				break;
			}
		}
		if (zone_stream_len(l) > 0 && l[zone_stream_len(l)] == ':')
			loc = l;
		if (zone_stream_len(loc) > 0 &&
		    loc[zone_stream_len(loc)] == ':')
			keep = true;
		else if (len > 5 + zl + 4 && strncmp(l, "zone ", 5) == 0 &&
			 strncasecmp(l + 5, zone, zl) == 0 &&
			 strncmp(l + 5 + zl, "/IN:", 4) == 0)
			keep = true;
		if (keep) {
			size_t ln = 0;

			if (kept > 0)
				res[n++] = '\n';
			for (size_t i = 0; i < len; i++) {
				unsigned char c = (unsigned char)l[i];
				size_t sl = zone_stream_len(l + i);
				char tmp[ZONE_DIAG_LINE_MAX + 1];
				const char *add = tmp;
				size_t al;

				if (sl > 0) {
					add = path;
					al = strlen(path);
					i += sl - 1;
				} else if (c >= 0x20 && c < 0x7f) {
					tmp[0] = (char)c;
					al = 1;
				} else {
					snprintf(tmp, sizeof(tmp), "\\x%02x", c);
					al = 4;
				}
				if (ln + al > ZONE_DIAG_LINE_MAX) {
					memcpy(res + n, "...", 3);
					n += 3;
					break;
				}
				memcpy(res + n, add, al);
				n += al;
				ln += al;
			}
			kept++;
		}
		l += len + (nl != NULL);
	}
	res[n] = '\0';
	*out_r = res;
	return 0;
}
