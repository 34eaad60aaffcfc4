/* caddy plugin: which domain conf to blame when Caddy refuses the config.
 * See blame.h and README "Blame". */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include <ophook/safe.h>
#include "blame.h"

#define BLAME_CONF_MAX (16u * 1024u * 1024u)
#define BLAME_RECORD_VERSION 1

static _Thread_local char blame_errbuf[512];

static const char *blame_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *blame_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(blame_errbuf, sizeof(blame_errbuf), fmt, ap);
	va_end(ap);
	return blame_errbuf;
}

/* ---- site addresses ---- */

char *blame_addr_norm(const char *addr, size_t len)
{
	char *s;

	if (len >= 8 && strncasecmp(addr, "https://", 8) == 0) {
		addr += 8;
		len -= 8;
	}
	if (len > 4 && memcmp(addr + len - 4, ":443", 4) == 0 &&
	    memchr(addr, '/', len) == NULL)
		len -= 4;
	s = strndup(addr, len);
	if (s == NULL)
		return NULL;
	for (char *p = s; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return s;
}

struct blame_strv {
	char **v;
	size_t n, cap;
};

/* Add the normalised key s[0..len) unless empty or already there. */
static int blame_strv_add(struct blame_strv *sv, const char *s, size_t len)
{
	char *a;

	if (len == 0)
		return 0;
	a = blame_addr_norm(s, len);
	if (a == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sv->n; i++) {
		if (strcmp(sv->v[i], a) == 0) {
			free(a);
			return 0;
		}
	}
	if (sv->n == sv->cap) {
		size_t cap = sv->cap ? sv->cap * 2 : 8;
		char **v = realloc(sv->v, cap * sizeof(*v));

		if (v == NULL) {
			free(a);
			return -ENOMEM;
		}
		sv->v = v;
		sv->cap = cap;
	}
	sv->v[sv->n++] = a;
	return 0;
}

static void blame_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

struct blame_tok {
	const char *s;
	size_t len;
};

/* The keys of one top-level block: split on commas; none for a snippet
 * "(name)" or a named route "&(name)". */
static int blame_keys_add(struct blame_strv *sv, const struct blame_tok *keys,
			  size_t n)
{
	if (n == 0 || keys[0].s[0] == '(' ||
	    (keys[0].len > 1 && keys[0].s[0] == '&' && keys[0].s[1] == '('))
		return 0;
	for (size_t k = 0; k < n; k++) {
		const char *p = keys[k].s, *end = keys[k].s + keys[k].len;

		while (p < end) {
			const char *c = memchr(p, ',', (size_t)(end - p));
			const char *e = c != NULL ? c : end;
			int r = blame_strv_add(sv, p, (size_t)(e - p));

			if (r < 0)
				return r;
			p = c != NULL ? c + 1 : end;
		}
	}
	return 0;
}

/* A small Caddyfile lexer: tokens separated by blanks, "quoted" (with \
 * escapes) or `backquoted`, '#' at a token's start comments out the rest
 * of the line, '{' and '}' count only as whole tokens (as in Caddy). */
int blame_addresses_parse(const char *text, size_t len, char ***addrs_r,
			  size_t *n_r)
{
	struct blame_strv sv = { 0 };
	struct blame_tok *group = NULL;
	size_t ng = 0, capg = 0, i = 0;
	unsigned depth = 0;
	int ret = 0;

	*addrs_r = NULL;
	*n_r = 0;
	while (i < len) {
		char ch = text[i];

		if (ch == '\n') {
			/* keys go on past a line only after a trailing comma */
			if (depth == 0 && ng > 0 &&
			    group[ng - 1].s[group[ng - 1].len - 1] != ',')
				ng = 0;
			i++;
			continue;
		}
		if (isspace((unsigned char)ch)) {
			i++;
			continue;
		}
		if (ch == '#') {
			while (i < len && text[i] != '\n')
				i++;
			continue;
		}
		struct blame_tok t;
		bool quoted = false;

		if (ch == '"' || ch == '`') {
			size_t j = i + 1;

			while (j < len && text[j] != ch) {
				if (ch == '"' && text[j] == '\\' && j + 1 < len)
					j++;
				j++;
			}
			t.s = text + i + 1;
			t.len = (j < len ? j : len) - (i + 1);
			i = j < len ? j + 1 : len;
			quoted = true;
		} else {
			size_t j = i;

			while (j < len && !isspace((unsigned char)text[j]))
				j++;
			t.s = text + i;
			t.len = j - i;
			i = j;
		}
		if (!quoted && t.len == 1 && t.s[0] == '{') {
			if (depth == 0) {
				ret = blame_keys_add(&sv, group, ng);
				if (ret < 0)
					goto out;
				ng = 0;
			}
			depth++;
		} else if (!quoted && t.len == 1 && t.s[0] == '}') {
			if (depth > 0)
				depth--;
		} else if (depth == 0 && t.len > 0) {
			if (ng == capg) {
				size_t cap = capg ? capg * 2 : 8;
				struct blame_tok *g = realloc(group, cap * sizeof(*g));

				if (g == NULL) {
					ret = -ENOMEM;
					goto out;
				}
				group = g;
				capg = cap;
			}
			group[ng++] = t;
		}
	}
out:
	free(group);
	if (ret < 0) {
		blame_strv_free(sv.v, sv.n);
		return ret;
	}
	*addrs_r = sv.v;
	*n_r = sv.n;
	return 0;
}

/* ---- sets of confs ---- */

static uint64_t blame_fnv(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h != 0 ? h : 1;
}

static void blame_conf_clear(struct blame_conf *cf)
{
	free(cf->name);
	free(cf->path);
	blame_strv_free(cf->addrs, cf->n_addrs);
	memset(cf, 0, sizeof(*cf));
}

void blame_set_free(struct blame_set **setp)
{
	struct blame_set *set = *setp;

	if (set == NULL)
		return;
	for (size_t i = 0; i < set->n; i++)
		blame_conf_clear(&set->confs[i]);
	free(set->confs);
	free(set);
	*setp = NULL;
}

static int blame_conf_cmp_path(const void *a, const void *b)
{
	return strcmp(((const struct blame_conf *)a)->path,
		      ((const struct blame_conf *)b)->path);
}

const struct blame_conf *blame_set_find(const struct blame_set *set,
					const char *path)
{
	struct blame_conf key = { .path = (char *)path };

	if (set == NULL || set->n == 0)
		return NULL;
	return bsearch(&key, set->confs, set->n, sizeof(key),
		       blame_conf_cmp_path);
}

/* Read a conf (following a symlink, as Caddy's import does). */
static int blame_read(int dfd, const char *name, char **data_r, size_t *len_r)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	struct stat st;
	char *buf;
	size_t got = 0;
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		ret = -errno;
	else if (!S_ISREG(st.st_mode))
		ret = -EINVAL;
	else if ((size_t)st.st_size > BLAME_CONF_MAX)
		ret = -EFBIG;
	if (ret < 0) {
		close(fd);
		return ret;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*data_r = buf;
	*len_r = got;
	return 0;
}

int blame_scan(const char *dir, const char *glob, struct blame_set **set_r,
	       const char **error_r)
{
	struct blame_set *set = calloc(1, sizeof(*set));
	size_t cap = 0;
	DIR *d;
	struct dirent *de;
	int ret = 0;

	*set_r = NULL;
	if (set == NULL) {
		*error_r = "out of memory";
		return -ENOMEM;
	}
	d = opendir(dir);
	if (d == NULL) {
		ret = -errno;
		*error_r = blame_err("reading %s: %s", dir, strerror(-ret));
		free(set);
		return ret;
	}
	while ((de = readdir(d)) != NULL) {
		struct blame_conf *cf;
		struct stat st;
		char *data = NULL;
		size_t len = 0;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fnmatch(glob, de->d_name, 0) != 0)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue; /* gone, or a folder: Caddy imports files */
		if (set->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct blame_conf *c2 = realloc(set->confs, ncap * sizeof(*c2));

			if (c2 == NULL) {
				ret = -ENOMEM;
				break;
			}
			set->confs = c2;
			cap = ncap;
		}
		cf = &set->confs[set->n];
		memset(cf, 0, sizeof(*cf));
		cf->name = strdup(de->d_name);
		if (cf->name == NULL ||
		    asprintf(&cf->path, "%s/%s", dir, de->d_name) < 0) {
			free(cf->name);
			ret = -ENOMEM;
			break;
		}
		set->n++;
		cf->mtime = st.st_mtim;
		cf->ctime = st.st_ctim;
		if (blame_read(dirfd(d), de->d_name, &data, &len) == 0) {
			cf->hash = blame_fnv(data, len);
			ret = blame_addresses_parse(data, len, &cf->addrs,
						    &cf->n_addrs);
			free(data);
			if (ret < 0)
				break;
		}
	}
	closedir(d);
	if (ret < 0) {
		blame_set_free(&set);
		*error_r = "out of memory";
		return ret;
	}
	if (set->n > 1)
		qsort(set->confs, set->n, sizeof(*set->confs),
		      blame_conf_cmp_path);
	*set_r = set;
	return 0;
}

void blame_mark_changed(struct blame_set *cur, const struct blame_set *good)
{
	for (size_t i = 0; i < cur->n; i++) {
		const struct blame_conf *g = blame_set_find(good, cur->confs[i].path);

		cur->confs[i].changed = g == NULL || cur->confs[i].hash == 0 ||
					g->hash != cur->confs[i].hash;
	}
}

static bool blame_has_addr(const struct blame_conf *cf, const char *addr)
{
	for (size_t i = 0; cf != NULL && i < cf->n_addrs; i++) {
		if (strcmp(cf->addrs[i], addr) == 0)
			return true;
	}
	return false;
}

static int blame_ts_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

/* <0 when conf a changed before conf b (older ctime, then name). */
static int blame_older(const struct blame_set *cur, size_t a, size_t b)
{
	int r = blame_ts_cmp(&cur->confs[a].ctime, &cur->confs[b].ctime);

	return r != 0 ? r : strcmp(cur->confs[a].name, cur->confs[b].name);
}

/* qsort_r: the newest change first, ties by name. */
static int blame_newest_first(const void *a, const void *b, void *ud)
{
	const struct blame_set *cur = ud;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int r = blame_ts_cmp(&cur->confs[y].ctime, &cur->confs[x].ctime);

	return r != 0 ? r : strcmp(cur->confs[x].name, cur->confs[y].name);
}

size_t blame_candidates(const struct blame_set *cur, size_t **idx_r)
{
	size_t n = 0, *idx;

	*idx_r = NULL;
	for (size_t i = 0; i < cur->n; i++)
		n += cur->confs[i].changed;
	if (n == 0)
		return 0;
	idx = malloc(n * sizeof(*idx));
	if (idx == NULL)
		return (size_t)-1;
	n = 0;
	for (size_t i = 0; i < cur->n; i++) {
		if (cur->confs[i].changed)
			idx[n++] = i;
	}
	qsort_r(idx, n, sizeof(*idx), blame_newest_first, (void *)cur);
	*idx_r = idx;
	return n;
}

/* ---- the site-address rule ---- */

struct blame_claim {
	const char *addr;
	size_t conf;
};

static int blame_claim_cmp(const void *a, const void *b)
{
	const struct blame_claim *x = a, *y = b;
	int r = strcmp(x->addr, y->addr);

	if (r != 0)
		return r;
	return x->conf < y->conf ? -1 : x->conf > y->conf;
}

/* Did conf i have addr in the last good set? */
static bool blame_had(const struct blame_set *cur, const struct blame_set *good,
		      size_t i, const char *addr)
{
	return blame_has_addr(blame_set_find(good, cur->confs[i].path), addr);
}

bool blame_duplicate(const struct blame_set *cur, const struct blame_set *good,
		     size_t *conf_r, size_t *owner_r, const char **addr_r)
{
	struct blame_claim *cl;
	size_t n = 0, k = 0;
	bool found = false;

	for (size_t i = 0; i < cur->n; i++)
		n += cur->confs[i].n_addrs;
	if (n < 2)
		return false;
	cl = malloc(n * sizeof(*cl));
	if (cl == NULL)
		return false;
	for (size_t i = 0; i < cur->n; i++) {
		for (size_t a = 0; a < cur->confs[i].n_addrs; a++)
			cl[k++] = (struct blame_claim){ cur->confs[i].addrs[a], i };
	}
	qsort(cl, n, sizeof(*cl), blame_claim_cmp);
	for (size_t s = 0, e; s < n; s = e) {
		const char *addr = cl[s].addr;
		size_t owner = SIZE_MAX;

		for (e = s + 1; e < n && strcmp(cl[e].addr, addr) == 0; e++)
			;
		if (e - s < 2)
			continue;
		/* the owner: a conf that had it in the last good set (an
		 * unchanged one first), else the oldest change */
		for (size_t j = s; j < e; j++) {
			size_t i = cl[j].conf;

			if (!blame_had(cur, good, i, addr))
				continue;
			if (owner == SIZE_MAX || (!cur->confs[i].changed &&
						  cur->confs[owner].changed))
				owner = i;
		}
		if (owner == SIZE_MAX) {
			owner = cl[s].conf;
			for (size_t j = s + 1; j < e; j++) {
				if (blame_older(cur, cl[j].conf, owner) < 0)
					owner = cl[j].conf;
			}
		}
		/* the others are to blame, unless they had it too (the
		 * last good set cannot hold a real duplicate: a difference
		 * in how Caddy and we normalise) or did not change */
		for (size_t j = s; j < e; j++) {
			size_t i = cl[j].conf;

			if (i == owner || !cur->confs[i].changed ||
			    blame_had(cur, good, i, addr))
				continue;
			if (!found || blame_older(cur, *conf_r, i) < 0) {
				*conf_r = i;
				*owner_r = owner;
				*addr_r = addr;
				found = true;
			}
		}
	}
	free(cl);
	return found;
}

/* ---- Caddy's message ---- */

static bool blame_loc_at(const char *msg, const char *at, size_t len)
{
	if (at > msg) {
		char b = at[-1];

		if (!isspace((unsigned char)b) && b != '"' && b != '\'' &&
		    b != '(' && b != ',')
			return false;
	}
	return at[len] == ':' && isdigit((unsigned char)at[len + 1]);
}

bool blame_message_match(const struct blame_set *cur, const char *msg,
			 const char *const *prefixes, size_t *conf_r)
{
	const char *best = NULL;
	char *full = NULL;

	for (size_t i = 0; i < cur->n; i++) {
		if (!cur->confs[i].changed)
			continue;
		for (const char *const *p = prefixes; *p != NULL; p++) {
			size_t plen = strlen(*p);

			while (plen > 1 && (*p)[plen - 1] == '/')
				plen--;
			free(full);
			if (asprintf(&full, "%.*s/%s", (int)plen, *p,
				     cur->confs[i].name) < 0) {
				full = NULL;
				continue;
			}
			size_t flen = strlen(full);

			for (const char *at = strstr(msg, full); at != NULL;
			     at = strstr(at + 1, full)) {
				if (best != NULL && at >= best)
					break;
				if (blame_loc_at(msg, at, flen)) {
					best = at;
					*conf_r = i;
					break;
				}
			}
		}
	}
	free(full);
	return best != NULL;
}

/* ---- finding the culprit ---- */

int blame_find(const struct blame_set *cur, const struct blame_set *good,
	       const char *msg, const char *const *prefixes,
	       blame_validate_fn *validate, void *ud, bool full_fails,
	       struct blame_result *res_r, const char **error_r)
{
	size_t *cand = NULL, n, m, tested = SIZE_MAX;
	bool *inc = NULL;
	char *vmsg = NULL;
	int ret, r;

	memset(res_r, 0, sizeof(*res_r));
	n = blame_candidates(cur, &cand);
	if (n == (size_t)-1) {
		*error_r = "out of memory";
		return -ENOMEM;
	}
	if (n == 0) {
		*error_r = "no domain conf changed since the last configuration "
			   "Caddy accepted";
		return -ENOENT;
	}
	if (blame_duplicate(cur, good, &res_r->conf, &res_r->owner,
			    &res_r->addr)) {
		res_r->how = BLAME_DUPLICATE;
		ret = 0;
		goto out;
	}
	inc = malloc(cur->n * sizeof(*inc) + 1);
	if (inc == NULL) {
		ret = -ENOMEM;
		*error_r = "out of memory";
		goto out;
	}
#define VALIDATE(expr_include)						\
	do {								\
		for (size_t i_ = 0; i_ < cur->n; i_++)			\
			inc[i_] = (expr_include);			\
		free(vmsg);						\
		vmsg = NULL;						\
		r = validate(ud, inc, &vmsg);				\
		res_r->validations++;					\
	} while (0)

	if (validate != NULL && !full_fails) {
		/* a refused load: is the config itself at fault? */
		VALIDATE(true);
		if (r < 0)
			validate = NULL;
		else if (r == 0) {
			*error_r = "the config validates as a whole: no domain "
				   "conf is to blame";
			ret = -ENOENT;
			goto out;
		}
	}
	if (blame_message_match(cur, msg, prefixes, &m)) {
		res_r->conf = m;
		if (validate != NULL) {
			VALIDATE(i_ != m);
			if (r == 0) {
				res_r->how = BLAME_MESSAGE;
				ret = 0;
				goto out;
			}
			if (r < 0)
				validate = NULL;
			tested = m;
		}
		if (validate == NULL) {
			res_r->how = BLAME_MESSAGE_UNCONFIRMED;
			ret = 0;
			goto out;
		}
	}
	if (validate == NULL) {
		*error_r = "Caddy's message names no changed domain conf by its "
			   "full path, and the config cannot be validated "
			   "without a conf (validate_argv needs {caddyfile})";
		ret = -ENOENT;
		goto out;
	}
	/* the newest change, confirmed by validating without it */
	if (cand[0] != tested) {
		VALIDATE(i_ != cand[0]);
		if (r < 0) {
			ret = r;
			*error_r = vmsg != NULL ? blame_err("%s", vmsg) :
						  "cannot validate";
			goto out;
		}
		if (r == 0) {
			res_r->conf = cand[0];
			res_r->how = BLAME_NEWEST;
			ret = 0;
			goto out;
		}
	}
	/* bisect over the changes, oldest first, on top of the unchanged
	 * confs: the first change whose addition breaks the config */
	if (n > 1) {
		VALIDATE(!cur->confs[i_].changed);
		if (r < 0) {
			ret = r;
			*error_r = vmsg != NULL ? blame_err("%s", vmsg) :
						  "cannot validate";
			goto out;
		}
	} else {
		r = 1; /* the only change: without it, just validated, fails */
	}
	if (r != 0) {
		*error_r = blame_err("the config fails without any of the %zu "
				     "changed domain conf(s) too: the fault is "
				     "elsewhere (the main Caddyfile or a file it "
				     "imports)%s%s", n, vmsg != NULL ? ": " : "",
				     vmsg != NULL ? vmsg : "");
		ret = -ENOENT;
		goto out;
	}
	{
		bool *in_prefix = calloc(cur->n + 1, sizeof(*in_prefix));
		size_t lo = 0, hi = n; /* lo changes pass, hi changes fail */

		if (in_prefix == NULL) {
			ret = -ENOMEM;
			*error_r = "out of memory";
			goto out;
		}
		while (hi - lo > 1) {
			size_t mid = lo + (hi - lo) / 2;

			memset(in_prefix, 0, cur->n * sizeof(*in_prefix));
			for (size_t k = 0; k < mid; k++)
				in_prefix[cand[n - 1 - k]] = true;
			VALIDATE(!cur->confs[i_].changed || in_prefix[i_]);
			if (r < 0)
				break;
			if (r == 0)
				lo = mid;
			else
				hi = mid;
		}
		free(in_prefix);
		if (r < 0) {
			ret = r;
			*error_r = vmsg != NULL ? blame_err("%s", vmsg) :
						  "cannot validate";
			goto out;
		}
		res_r->conf = cand[n - hi];
		res_r->how = BLAME_BISECT;
		ret = 0;
	}
#undef VALIDATE
out:
	free(vmsg);
	free(inc);
	free(cand);
	return ret;
}

/* ---- the record of the last good set ---- */

int blame_record_save(const char *path, const struct blame_set *set,
		      const char **error_r)
{
	json_t *root = json_object(), *arr = json_array();
	char *text = NULL;
	int ret = -ENOMEM;

	if (root == NULL || arr == NULL)
		goto out;
	json_object_set_new(root, "version", json_integer(BLAME_RECORD_VERSION));
	json_object_set(root, "confs", arr);
	for (size_t i = 0; i < set->n; i++) {
		const struct blame_conf *cf = &set->confs[i];
		json_t *addrs = json_array(), *o;
		char hex[17];

		snprintf(hex, sizeof(hex), "%016" PRIx64, cf->hash);
		for (size_t a = 0; addrs != NULL && a < cf->n_addrs; a++)
			json_array_append_new(addrs, json_string(cf->addrs[a]));
		o = json_pack("{s:s, s:s, s:I, s:I, s:o*}", "path", cf->path,
			      "hash", hex, "mtime", (json_int_t)cf->mtime.tv_sec,
			      "ctime", (json_int_t)cf->ctime.tv_sec,
			      "addresses", addrs);
		if (o == NULL || json_array_append_new(arr, o) < 0)
			goto out;
	}
	text = json_dumps(root, JSON_INDENT(1));
	if (text == NULL)
		goto out;
	ret = ophook_file_write_atomic(path, text, strlen(text), 0600);
out:
	if (ret < 0)
		*error_r = blame_err("writing %s: %s", path, strerror(-ret));
	free(text);
	json_decref(arr);
	json_decref(root);
	return ret;
}

int blame_record_load(const char *path, struct blame_set **set_r,
		      const char **error_r)
{
	struct blame_set *set = NULL;
	json_error_t jerr;
	json_t *root, *arr, *o;
	size_t idx;
	int ret;

	*set_r = NULL;
	root = json_load_file(path, 0, &jerr);
	if (root == NULL) {
		if (access(path, F_OK) < 0 && errno == ENOENT)
			return 0;
		*error_r = blame_err("%s:%d: %s", path, jerr.line, jerr.text);
		return -EINVAL;
	}
	arr = json_object_get(root, "confs");
	if (json_integer_value(json_object_get(root, "version")) !=
		    BLAME_RECORD_VERSION || !json_is_array(arr)) {
		*error_r = blame_err("%s: not a version %d record", path,
				     BLAME_RECORD_VERSION);
		ret = -EINVAL;
		goto out;
	}
	set = calloc(1, sizeof(*set));
	if (set == NULL ||
	    (json_array_size(arr) > 0 &&
	     (set->confs = calloc(json_array_size(arr), sizeof(*set->confs))) == NULL)) {
		ret = -ENOMEM;
		*error_r = "out of memory";
		goto out;
	}
	json_array_foreach(arr, idx, o) {
		struct blame_conf *cf = &set->confs[set->n];
		const char *p = json_string_value(json_object_get(o, "path"));
		const char *h = json_string_value(json_object_get(o, "hash"));
		json_t *addrs = json_object_get(o, "addresses"), *a;
		const char *slash;
		char *end = NULL;
		size_t ai;

		if (p == NULL || h == NULL || (slash = strrchr(p, '/')) == NULL) {
			*error_r = blame_err("%s: conf %zu: no path or hash", path,
					     idx);
			ret = -EINVAL;
			goto out;
		}
		set->n++;
		cf->path = strdup(p);
		cf->name = strdup(slash + 1);
		cf->hash = strtoull(h, &end, 16);
		cf->mtime.tv_sec = (time_t)json_integer_value(json_object_get(o, "mtime"));
		cf->ctime.tv_sec = (time_t)json_integer_value(json_object_get(o, "ctime"));
		if (cf->path == NULL || cf->name == NULL) {
			ret = -ENOMEM;
			*error_r = "out of memory";
			goto out;
		}
		if (json_array_size(addrs) > 0) {
			cf->addrs = calloc(json_array_size(addrs), sizeof(*cf->addrs));
			if (cf->addrs == NULL) {
				ret = -ENOMEM;
				*error_r = "out of memory";
				goto out;
			}
		}
		json_array_foreach(addrs, ai, a) {
			if (!json_is_string(a))
				continue;
			if ((cf->addrs[cf->n_addrs] = strdup(json_string_value(a))) == NULL) {
				ret = -ENOMEM;
				*error_r = "out of memory";
				goto out;
			}
			cf->n_addrs++;
		}
	}
	if (set->n > 1)
		qsort(set->confs, set->n, sizeof(*set->confs),
		      blame_conf_cmp_path);
	*set_r = set;
	set = NULL;
	ret = 0;
out:
	blame_set_free(&set);
	json_decref(root);
	return ret;
}
