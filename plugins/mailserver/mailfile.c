/* Line-level edits of docker-mailserver's config files (see mailfile.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailfile.h"

/* One line of text: [p, p+n) without its '\n' and a trailing '\r'; full:
 * bytes including the '\n'. */
struct mailfile_line {
	const char *p;
	size_t n, full;
};

static bool mailfile_next(const char *text, size_t len, size_t *off,
			  struct mailfile_line *l)
{
	const char *nl;

	if (*off >= len)
		return false;
	l->p = text + *off;
	nl = memchr(l->p, '\n', len - *off);
	l->full = nl != NULL ? (size_t)(nl - l->p) + 1 : len - *off;
	l->n = nl != NULL ? (size_t)(nl - l->p) : l->full;
	if (l->n > 0 && l->p[l->n - 1] == '\r')
		l->n--;
	*off += l->full;
	return true;
}

static bool mailfile_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* True when [p, p+n) equals domain, ignoring case. */
static bool mailfile_is_domain(const char *p, size_t n, const char *domain)
{
	return n == strlen(domain) && strncasecmp(p, domain, n) == 0;
}

/* The domain part of an address [p, p+n): after the last '@'; false when
 * there is no '@'. */
static bool mailfile_addr_domain(const char *p, size_t n, const char **d_r,
				 size_t *dn_r)
{
	const char *at = memrchr(p, '@', n);

	if (at == NULL)
		return false;
	*d_r = at + 1;
	*dn_r = n - (size_t)(at + 1 - p);
	return true;
}

/* Classify a non-blank, non-comment line: 1 belongs to domain, 0 other,
 * -1 unparseable with *why_r. */
static int mailfile_classify(enum mailfile_kind kind, const char *p, size_t n,
			     const char *domain, const char **why_r)
{
	const char *sep, *d, *v;
	size_t kn, dn;

	switch (kind) {
	case MAILFILE_ACCOUNTS:
	case MAILFILE_QUOTAS:
		sep = memchr(p, kind == MAILFILE_ACCOUNTS ? '|' : ':', n);
		if (sep == NULL) {
			*why_r = kind == MAILFILE_ACCOUNTS
					 ? "no '|' after the address"
					 : "no ':' after the address";
			return -1;
		}
		kn = (size_t)(sep - p);
		if (!mailfile_addr_domain(p, kn, &d, &dn) || dn == 0 ||
		    d == p) {
			*why_r = "the address is not user@domain";
			return -1;
		}
		return mailfile_is_domain(d, dn, domain) ? 1 : 0;
	default:
		break;
	}
	/* blank-separated key and value */
	for (kn = 0; kn < n && !mailfile_blank(p[kn]); kn++)
		;
	for (v = p + kn; v < p + n && mailfile_blank(*v); v++)
		;
	if (v == p + n) {
		*why_r = kind == MAILFILE_VIRTUAL ? "an alias without a target"
						  : "a key without a value";
		return -1;
	}
	if (kind == MAILFILE_KEYTABLE) {
		static const char dk[] = "._domainkey.";
		const char *m = memmem(p, kn, dk, sizeof(dk) - 1);

		if (m == NULL)
			return 0;
		d = m + sizeof(dk) - 1;
		return mailfile_is_domain(d, kn - (size_t)(d - p), domain) ? 1
									   : 0;
	}
	/* VIRTUAL, SIGNINGTABLE: user@domain or @domain (or *@domain) */
	if (!mailfile_addr_domain(p, kn, &d, &dn))
		return 0; /* a local name: not a domain's line */
	return mailfile_is_domain(d, dn, domain) ? 1 : 0;
}

int mailfile_remove_domain(enum mailfile_kind kind, const char *text,
			   size_t len, const char *domain,
			   mailfile_warn_fn *warn, void *arg, char **out_r,
			   size_t *out_len_r, unsigned *removed_r)
{
	struct mailfile_line l;
	size_t off = 0, o = 0;
	unsigned lineno = 0, removed = 0;
	bool dropping = false; /* VIRTUAL: the logical line is dropped */
	char *out = malloc(len + 1);

	if (out == NULL)
		return -ENOMEM;
	while (mailfile_next(text, len, &off, &l)) {
		size_t i = 0;
		const char *why = NULL;
		int c;

		lineno++;
		while (i < l.n && mailfile_blank(l.p[i]))
			i++;
		if (i == l.n || l.p[i] == '#') {
			c = 0; /* blank or comment: kept, ends nothing */
		} else if (i > 0 && kind == MAILFILE_VIRTUAL) {
			c = dropping ? 1 : 0; /* continuation line */
		} else {
			c = mailfile_classify(kind, l.p + i, l.n - i, domain,
					      &why);
			if (c < 0) {
				if (warn != NULL)
					warn(arg, lineno, why);
				c = 0;
			}
			dropping = c == 1;
		}
		if (c == 1) {
			removed++;
			continue;
		}
		memcpy(out + o, l.p, l.full);
		o += l.full;
	}
	out[o] = '\0';
	*out_r = out;
	*out_len_r = o;
	*removed_r = removed;
	return 0;
}

/* 1: the line is user's marker, 2: user's marker with " +nl", 3: another
 * user's marker, 0: not a marker. */
static int mailfile_marker(const struct mailfile_line *l, const char *user)
{
	size_t mn = strlen(MAILFILE_MARK), un = strlen(user);

	if (l->n < mn || memcmp(l->p, MAILFILE_MARK, mn) != 0)
		return 0;
	if (l->n >= mn + un && memcmp(l->p + mn, user, un) == 0) {
		if (l->n == mn + un)
			return 1;
		if (l->n == mn + un + 4 && memcmp(l->p + mn + un, " +nl", 4) == 0)
			return 2;
	}
	return 3;
}

int mailfile_access_strip(const char *text, size_t len, const char *user,
			  char **out_r, size_t *out_len_r,
			  unsigned *removed_r)
{
	struct mailfile_line l;
	size_t off = 0, o = 0;
	unsigned removed = 0;
	bool skip_next = false, give_nl = false;
	char *out = malloc(len + 8);

	if (out == NULL)
		return -ENOMEM;
	while (mailfile_next(text, len, &off, &l)) {
		int m;

		if (skip_next) {
			skip_next = false;
			removed++;
			continue;
		}
		m = mailfile_marker(&l, user);
		if (m == 1 || m == 2) {
			skip_next = true;
			removed++;
			if (m == 2)
				give_nl = true;
			continue;
		}
		if (give_nl && m == 3 && l.full == l.n + 1 &&
		    memmem(l.p, l.n, " +nl", 4) == NULL) {
			/* the next block of ours now owns the added newline */
			memcpy(out + o, l.p, l.n);
			o += l.n;
			memcpy(out + o, " +nl\n", 5);
			o += 5;
			give_nl = false;
			continue;
		}
		give_nl = false;
		memcpy(out + o, l.p, l.full);
		o += l.full;
	}
	if (give_nl && o > 0 && out[o - 1] == '\n')
		o--;
	out[o] = '\0';
	*out_r = out;
	*out_len_r = o;
	*removed_r = removed;
	return 0;
}

int mailfile_access_add(const char *text, size_t len, const char *user,
			const char *const *domains, size_t n_domains,
			const char *reason, char **out_r, size_t *out_len_r)
{
	size_t size = len + 2, o = len;
	bool need_nl = len > 0 && text[len - 1] != '\n';
	char *out;

	for (size_t i = 0; i < n_domains; i++)
		size += strlen(MAILFILE_MARK) + strlen(user) + 8 +
			strlen(domains[i]) + strlen(reason) + 16;
	out = malloc(size);
	if (out == NULL)
		return -ENOMEM;
	memcpy(out, text, len);
	if (need_nl && n_domains > 0)
		out[o++] = '\n';
	for (size_t i = 0; i < n_domains; i++)
		o += (size_t)snprintf(out + o, size - o, "%s%s%s\n%s REJECT %s\n",
				      MAILFILE_MARK, user,
				      i == 0 && need_nl ? " +nl" : "",
				      domains[i], reason);
	out[o] = '\0';
	*out_r = out;
	*out_len_r = o;
	return 0;
}

bool mailfile_has_key(const char *text, size_t len, const char *key)
{
	struct mailfile_line l;
	size_t off = 0, kn = strlen(key);

	while (mailfile_next(text, len, &off, &l)) {
		if (l.n >= kn && memcmp(l.p, key, kn) == 0 &&
		    (l.n == kn || mailfile_blank(l.p[kn])))
			return true;
	}
	return false;
}

char *mailfile_append(const char *text, size_t len, const char *line,
		      size_t *out_len_r)
{
	size_t ln = strlen(line), o = len;
	char *out = malloc(len + ln + 2);

	if (out == NULL)
		return NULL;
	memcpy(out, text, len);
	if (len > 0 && text[len - 1] != '\n')
		out[o++] = '\n';
	memcpy(out + o, line, ln);
	o += ln;
	out[o] = '\0';
	*out_len_r = o;
	return out;
}
