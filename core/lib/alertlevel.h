/* Alert levels: the pure arithmetic behind the derived alerts (alerts.h),
 * with the clock passed in so that unit tests can move it.  No I/O, no
 * global state.
 *
 * Certificates: thresholds are "seconds before not_after", sorted from the
 * largest (least severe, 14 days) to the smallest (1 day); level i means
 * threshold i is crossed (now >= not_after - th[i]), level n means expired
 * (now >= not_after), ALERTLEVEL_NONE no threshold crossed.  A higher
 * level is more severe.
 *
 * Quota: levels are percentages of the limit sorted ascending (90, 100);
 * an open level holds until usage falls below it minus the margin
 * (hysteresis), so usage flapping around a level gives no new event. */
#ifndef OPHOOK_ALERTLEVEL_H
#define OPHOOK_ALERTLEVEL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ALERTLEVEL_NONE (-1)
#define ALERTLEVEL_MAX 16 /* thresholds or levels at most */

/* Parse a duration "<N><unit>" with unit s, m, h or d ("14d", "30s") into
 * *secs_r (1 .. 100 years).  0 or -EINVAL. */
int alertlevel_duration(const char *s, int64_t *secs_r);

/* Parse and sort (largest first, duplicates refused) the certificate
 * thresholds strs[0..n) into th_r (ALERTLEVEL_MAX entries).  0 or -EINVAL
 * with *why_r naming the bad entry (static text). */
int alertlevel_cert_thresholds(const char *const *strs, size_t n,
			       int64_t *th_r, const char **why_r);

/* The level of a certificate ending at not_after (Unix seconds) at now. */
int alertlevel_cert(const int64_t *th, size_t n, int64_t not_after,
		    int64_t now);

/* The next instant (Unix seconds, > now) at which the level of the
 * certificate goes up, or INT64_MAX once it is expired. */
int64_t alertlevel_cert_next(const int64_t *th, size_t n, int64_t not_after,
			     int64_t now);

/* Renewal of a certificate that renews itself (Caddy's ACME storage):
 * Caddy renews once a third of the lifetime not_before..not_after is
 * left; that instant goes to *renew_at_r.  Returns the instant the
 * renewal is overdue: renew_at plus a grace of a day, or of half of what
 * is left at renew_at when that is less (a 6-day certificate: due 2 days
 * before its end, overdue 1 day before).  INT64_MAX when the dates make
 * no lifetime. */
int64_t alertlevel_renew_overdue(int64_t not_before, int64_t not_after,
				 int64_t *renew_at_r);

/* What an evaluation decided for one alert. */
enum alertlevel_action {
	ALERTLEVEL_KEEP = 0, /* nothing to say */
	ALERTLEVEL_OPEN,     /* announce the (new, more severe) level */
	ALERTLEVEL_RESOLVE,  /* the open alert is over */
	ALERTLEVEL_REOPEN,   /* resolve the old level, then open the new one
				(a certificate replaced by one that is still
				near its end, but less so) */
	ALERTLEVEL_SILENT,   /* the held level changes, nothing is said (a
				quota falling from 100% to 92% with levels
				90 and 100: still over 90, already said) */
};

/* Certificates: given the announced level (ALERTLEVEL_NONE: none) and the
 * level now, what to do; *new_r is the level to remember. */
enum alertlevel_action alertlevel_cert_step(int announced, int level,
					    int *new_r);

/* Parse and sort (ascending, duplicates refused) quota levels, each a
 * percentage 1..1000, into lv_r (ALERTLEVEL_MAX entries).  0 or -EINVAL. */
int alertlevel_quota_levels(const char *const *strs, size_t n,
			    unsigned *lv_r, const char **why_r);

/* Quota: levels lv[0..n) ascending, margin in percentage points, the held
 * level index `held` (ALERTLEVEL_NONE: none) and the usage in percent now.
 * Returns the action; *new_r is the level index to hold from now on. */
enum alertlevel_action alertlevel_quota_step(const unsigned *lv, size_t n,
					     unsigned margin, int held,
					     double pct, int *new_r);

/* One user's line of `repquota -O csv` (quota tools 4.x): the user, the
 * blocks used and the soft and hard block limits (KiB; 0 = none). */
struct alertlevel_quota_row {
	char user[64];
	uint64_t used_kb, soft_kb, hard_kb;
};

/* Parse repquota's CSV output (header line first: "User,BlockStatus,
 * FileStatus,BlockUsed,BlockSoftLimit,BlockHardLimit,..."; columns found
 * by name).  Rows whose user is not a valid name (as repquota prints
 * "#1234" for a uid without a name: kept as "#1234") are skipped.  Fills
 * *rows_r (malloc'd) and *n_r; -EINVAL with *why_r when no header is
 * found. */
int alertlevel_repquota_parse(const char *out, size_t len,
			      struct alertlevel_quota_row **rows_r,
			      size_t *n_r, const char **why_r);

/* The usage percentage a quota row is measured by: used over the soft
 * limit when there is one, else over the hard limit; *limit_r says which
 * ("soft" / "hard").  -1 when the row has no limit. */
double alertlevel_quota_pct(const struct alertlevel_quota_row *row,
			    const char **limit_r);

#endif
