/* Alert levels: see alertlevel.h. */
#include "alertlevel.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int alertlevel_duration(const char *s, int64_t *secs_r)
{
	unsigned long long v = 0, mul;
	const char *p = s;

	if (s == NULL || *s < '0' || *s > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > 100ULL * 366 * 86400)
			return -EINVAL;
		p++;
	}
	switch (*p) {
	case 's': mul = 1; break;
	case 'm': mul = 60; break;
	case 'h': mul = 3600; break;
	case 'd': mul = 86400; break;
	default: return -EINVAL;
	}
	if (p[1] != '\0' || v == 0 || v * mul > 100ULL * 366 * 86400)
		return -EINVAL;
	*secs_r = (int64_t)(v * mul);
	return 0;
}

static int cmp_desc(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? 1 : x > y ? -1 : 0;
}

int alertlevel_cert_thresholds(const char *const *strs, size_t n,
			       int64_t *th_r, const char **why_r)
{
	if (n > ALERTLEVEL_MAX) {
		*why_r = "too many thresholds (16 at most)";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (alertlevel_duration(strs[i], &th_r[i]) < 0) {
			*why_r = "a threshold is not a duration such as 14d, "
				 "12h, 30m or 45s";
			return -EINVAL;
		}
	}
	qsort(th_r, n, sizeof(*th_r), cmp_desc);
	for (size_t i = 1; i < n; i++) {
		if (th_r[i] == th_r[i - 1]) {
			*why_r = "the same threshold is given twice";
			return -EINVAL;
		}
	}
	return 0;
}

int alertlevel_cert(const int64_t *th, size_t n, int64_t not_after,
		    int64_t now)
{
	int level = ALERTLEVEL_NONE;

	if (now >= not_after)
		return (int)n;
	for (size_t i = 0; i < n; i++)
		if (now >= not_after - th[i])
			level = (int)i;
	return level;
}

int64_t alertlevel_cert_next(const int64_t *th, size_t n, int64_t not_after,
			     int64_t now)
{
	int level = alertlevel_cert(th, n, not_after, now);

	if (level == (int)n)
		return INT64_MAX;
	/* the next threshold still ahead, else the end itself */
	for (size_t i = (size_t)(level + 1); i < n; i++)
		if (not_after - th[i] > now)
			return not_after - th[i];
	return not_after;
}

int64_t alertlevel_renew_overdue(int64_t not_before, int64_t not_after,
				 int64_t *renew_at_r)
{
	int64_t left, grace;

	*renew_at_r = INT64_MAX;
	if (not_before == INT64_MIN || not_after == INT64_MIN ||
	    not_after <= not_before ||
	    not_after - not_before > (int64_t)100 * 366 * 86400)
		return INT64_MAX;
	left = (not_after - not_before) / 3;
	*renew_at_r = not_after - left;
	grace = left / 2 < 86400 ? left / 2 : 86400;
	return *renew_at_r + grace;
}

enum alertlevel_action alertlevel_cert_step(int announced, int level,
					    int *new_r)
{
	*new_r = level;
	if (level > announced)
		return ALERTLEVEL_OPEN;
	if (level == announced)
		return ALERTLEVEL_KEEP;
	return level == ALERTLEVEL_NONE ? ALERTLEVEL_RESOLVE : ALERTLEVEL_REOPEN;
}

static int cmp_asc(const void *a, const void *b)
{
	unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

int alertlevel_quota_levels(const char *const *strs, size_t n,
			    unsigned *lv_r, const char **why_r)
{
	if (n == 0 || n > ALERTLEVEL_MAX) {
		*why_r = "between 1 and 16 levels";
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(strs[i], &end, 10);
		if (strs[i][0] < '0' || strs[i][0] > '9' || errno != 0 ||
		    *end != '\0' || v < 1 || v > 1000) {
			*why_r = "a level is a percentage from 1 to 1000";
			return -EINVAL;
		}
		lv_r[i] = (unsigned)v;
	}
	qsort(lv_r, n, sizeof(*lv_r), cmp_asc);
	for (size_t i = 1; i < n; i++) {
		if (lv_r[i] == lv_r[i - 1]) {
			*why_r = "the same level is given twice";
			return -EINVAL;
		}
	}
	return 0;
}

enum alertlevel_action alertlevel_quota_step(const unsigned *lv, size_t n,
					     unsigned margin, int held,
					     double pct, int *new_r)
{
	int up = ALERTLEVEL_NONE, down = ALERTLEVEL_NONE;

	for (size_t i = 0; i < n; i++) {
		if (pct >= (double)lv[i])
			up = (int)i;
		if (pct >= (double)lv[i] - (double)margin)
			down = (int)i;
	}
	if (up > held) {
		*new_r = up;
		return ALERTLEVEL_OPEN;
	}
	/* held: kept while usage stays above it minus the margin */
	if (held == ALERTLEVEL_NONE || down >= held) {
		*new_r = held;
		return ALERTLEVEL_KEEP;
	}
	*new_r = down;
	return down == ALERTLEVEL_NONE ? ALERTLEVEL_RESOLVE : ALERTLEVEL_SILENT;
}

/* The fields of one CSV line (no quoting in repquota's output: names and
 * numbers only).  Returns the count, at most max. */
static size_t csv_split(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *p = line;

	while (n < max) {
		f[n++] = p;
		p = strchr(p, ',');
		if (p == NULL)
			break;
		*p++ = '\0';
	}
	return n;
}

static bool user_ok(const char *u)
{
	const char *why = NULL;

	return name_valid_user(u, &why);
}

static bool quota_user_ok(const char *u)
{
	size_t len = strlen(u);

	if (len == 0 || len >= 64)
		return false;
	if (u[0] == '#') /* a uid without a name */
		u++;
	return *u != '\0' && user_ok(u);
}

static bool parse_u64(const char *s, uint64_t *v_r)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || (*end != '\0' && *end != 'K' && *end != 'k'))
		return false;
	*v_r = v;
	return true;
}

int alertlevel_repquota_parse(const char *out, size_t len,
			      struct alertlevel_quota_row **rows_r,
			      size_t *n_r, const char **why_r)
{
	char *buf = xmalloc(len + 1), *line, *save = NULL;
	int c_used = -1, c_soft = -1, c_hard = -1;
	struct alertlevel_quota_row *rows = NULL;
	size_t n = 0, cap = 0;
	bool header = false;

	memcpy(buf, out, len);
	buf[len] = '\0';
	for (line = strtok_r(buf, "\r\n", &save); line != NULL;
	     line = strtok_r(NULL, "\r\n", &save)) {
		char *f[32];
		size_t nf = csv_split(line, f, 32);
		struct alertlevel_quota_row r = { 0 };

		if (strcmp(f[0], "User") == 0) {
			c_used = c_soft = c_hard = -1;
			for (size_t i = 0; i < nf; i++) {
				if (strcmp(f[i], "BlockUsed") == 0)
					c_used = (int)i;
				else if (strcmp(f[i], "BlockSoftLimit") == 0)
					c_soft = (int)i;
				else if (strcmp(f[i], "BlockHardLimit") == 0)
					c_hard = (int)i;
			}
			header = c_used >= 0 && c_soft >= 0 && c_hard >= 0;
			continue;
		}
		if (!header || (size_t)c_used >= nf || (size_t)c_soft >= nf ||
		    (size_t)c_hard >= nf || !quota_user_ok(f[0]))
			continue;
		if (!parse_u64(f[c_used], &r.used_kb) ||
		    !parse_u64(f[c_soft], &r.soft_kb) ||
		    !parse_u64(f[c_hard], &r.hard_kb))
			continue;
		snprintf(r.user, sizeof(r.user), "%s", f[0]);
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			rows = xrealloc(rows, cap * sizeof(*rows));
		}
		rows[n++] = r;
	}
	free(buf);
	if (!header) {
		free(rows);
		*why_r = "no CSV header with BlockUsed, BlockSoftLimit and "
			 "BlockHardLimit (repquota -O csv)";
		return -EINVAL;
	}
	*rows_r = rows;
	*n_r = n;
	return 0;
}

double alertlevel_quota_pct(const struct alertlevel_quota_row *row,
			    const char **limit_r)
{
	if (row->soft_kb > 0) {
		*limit_r = "soft";
		return (double)row->used_kb * 100.0 / (double)row->soft_kb;
	}
	if (row->hard_kb > 0) {
		*limit_r = "hard";
		return (double)row->used_kb * 100.0 / (double)row->hard_kb;
	}
	*limit_r = NULL;
	return -1;
}
