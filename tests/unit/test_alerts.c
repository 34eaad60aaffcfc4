/* Unit tests of the alert levels (core/lib/alertlevel.c): certificate
 * thresholds walked with a moved clock, quota hysteresis, repquota CSV. */
#include "alertlevel.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define DAY 86400

static void test_duration(void **state)
{
	int64_t s = 0;

	(void)state;
	assert_int_equal(alertlevel_duration("14d", &s), 0);
	assert_int_equal(s, 14 * DAY);
	assert_int_equal(alertlevel_duration("30s", &s), 0);
	assert_int_equal(s, 30);
	assert_int_equal(alertlevel_duration("5m", &s), 0);
	assert_int_equal(s, 300);
	assert_int_equal(alertlevel_duration("2h", &s), 0);
	assert_int_equal(s, 7200);
	assert_int_equal(alertlevel_duration("14", &s), -EINVAL);
	assert_int_equal(alertlevel_duration("0d", &s), -EINVAL);
	assert_int_equal(alertlevel_duration("d", &s), -EINVAL);
	assert_int_equal(alertlevel_duration("1w", &s), -EINVAL);
	assert_int_equal(alertlevel_duration("1dd", &s), -EINVAL);
	assert_int_equal(alertlevel_duration("-1d", &s), -EINVAL);
	assert_int_equal(alertlevel_duration("99999999999999999999d", &s),
			 -EINVAL);
}

/* Renewal due at a third of the lifetime left, overdue a day later (or
 * half of the third, for short lifetimes). */
static void test_renew_overdue(void **state)
{
	int64_t due = 0;

	(void)state;
	/* 90 days: due 30 days before the end, overdue 29 days before */
	assert_int_equal(alertlevel_renew_overdue(0, 90 * DAY, &due),
			 61 * DAY);
	assert_int_equal(due, 60 * DAY);
	/* 6 days: due 2 days before, overdue 1 day before */
	assert_int_equal(alertlevel_renew_overdue(1000, 1000 + 6 * DAY, &due),
			 1000 + 5 * DAY);
	assert_int_equal(due, 1000 + 4 * DAY);
	/* 240 s: due 80 s before, overdue 40 s before */
	assert_int_equal(alertlevel_renew_overdue(0, 240, &due), 200);
	assert_int_equal(due, 160);
	/* no lifetime: never */
	assert_int_equal(alertlevel_renew_overdue(500, 500, &due), INT64_MAX);
	assert_int_equal(due, INT64_MAX);
	assert_int_equal(alertlevel_renew_overdue(600, 500, &due), INT64_MAX);
	assert_int_equal(alertlevel_renew_overdue(INT64_MIN, 500, &due),
			 INT64_MAX);
	assert_int_equal(alertlevel_renew_overdue(0, INT64_MAX, &due),
			 INT64_MAX);
}

static void test_thresholds_sorted(void **state)
{
	const char *in[] = { "1d", "14d", "7d" }, *dup[] = { "7d", "168h" };
	int64_t th[ALERTLEVEL_MAX];
	const char *why = NULL;

	(void)state;
	assert_int_equal(alertlevel_cert_thresholds(in, 3, th, &why), 0);
	assert_int_equal(th[0], 14 * DAY);
	assert_int_equal(th[1], 7 * DAY);
	assert_int_equal(th[2], 1 * DAY);
	assert_int_equal(alertlevel_cert_thresholds(dup, 2, th, &why),
			 -EINVAL);
	assert_non_null(why);
}

/* Walk a certificate's life hour by hour with thresholds 14d, 7d, 1d:
 * each level is opened exactly once, in order, and the timer instants
 * (alertlevel_cert_next) are exactly the crossing instants. */
static void test_cert_walk(void **state)
{
	const int64_t th[] = { 14 * DAY, 7 * DAY, 1 * DAY };
	const int64_t na = 1000000000;
	int announced = ALERTLEVEL_NONE, opened[4] = { 0 }, next;
	int64_t now, t;

	(void)state;
	for (now = na - 30 * DAY; now <= na + DAY; now += 3600) {
		int level = alertlevel_cert(th, 3, na, now);

		switch (alertlevel_cert_step(announced, level, &next)) {
		case ALERTLEVEL_OPEN:
			opened[level]++;
			break;
		case ALERTLEVEL_KEEP:
			break;
		default:
			fail_msg("time going forward never resolves");
		}
		announced = next;
	}
	assert_int_equal(opened[0], 1);
	assert_int_equal(opened[1], 1);
	assert_int_equal(opened[2], 1);
	assert_int_equal(opened[3], 1); /* expired */
	t = alertlevel_cert_next(th, 3, na, na - 30 * DAY);
	assert_int_equal(t, na - 14 * DAY);
	assert_int_equal(alertlevel_cert_next(th, 3, na, t), na - 7 * DAY);
	assert_int_equal(alertlevel_cert_next(th, 3, na, na - 7 * DAY),
			 na - DAY);
	assert_int_equal(alertlevel_cert_next(th, 3, na, na - DAY), na);
	assert_true(alertlevel_cert_next(th, 3, na, na) == INT64_MAX);
}

/* 6 days left at start: the 7d level only (not 14d then 7d); a restart
 * (the announced level kept) says nothing more. */
static void test_cert_six_days_at_start(void **state)
{
	const int64_t th[] = { 14 * DAY, 7 * DAY, 1 * DAY };
	const int64_t now = 2000000000, na = now + 6 * DAY;
	int level = alertlevel_cert(th, 3, na, now), next;

	(void)state;
	assert_int_equal(level, 1);
	assert_int_equal(alertlevel_cert_step(ALERTLEVEL_NONE, level, &next),
			 ALERTLEVEL_OPEN);
	assert_int_equal(next, 1);
	assert_int_equal(alertlevel_cert_step(next, level, &next),
			 ALERTLEVEL_KEEP);
}

static void test_cert_renewal(void **state)
{
	int next;

	(void)state;
	/* renewed far away: resolved */
	assert_int_equal(alertlevel_cert_step(1, ALERTLEVEL_NONE, &next),
			 ALERTLEVEL_RESOLVE);
	assert_int_equal(next, ALERTLEVEL_NONE);
	/* expired, replaced by one with 5 days left: resolve, reopen */
	assert_int_equal(alertlevel_cert_step(3, 1, &next),
			 ALERTLEVEL_REOPEN);
	assert_int_equal(next, 1);
}

static const unsigned lv[] = { 90, 100 };

/* One step; returns the action, updates *held. */
static enum alertlevel_action q(int *held, double pct)
{
	int next;
	enum alertlevel_action a =
		alertlevel_quota_step(lv, 2, 5, *held, pct, &next);

	*held = next;
	return a;
}

static void test_quota_hysteresis(void **state)
{
	int held = ALERTLEVEL_NONE, opens = 0, resolves = 0;

	(void)state;
	assert_int_equal(q(&held, 50), ALERTLEVEL_KEEP);
	assert_int_equal(q(&held, 90), ALERTLEVEL_OPEN);
	assert_int_equal(held, 0);
	/* flapping around 90 inside the margin: nothing */
	for (int i = 0; i < 100; i++) {
		enum alertlevel_action a = q(&held, i % 2 ? 86 : 94);

		opens += a == ALERTLEVEL_OPEN;
		resolves += a == ALERTLEVEL_RESOLVE;
	}
	assert_int_equal(opens, 0);
	assert_int_equal(resolves, 0);
	assert_int_equal(q(&held, 100.5), ALERTLEVEL_OPEN);
	assert_int_equal(held, 1);
	assert_int_equal(q(&held, 96), ALERTLEVEL_KEEP);
	assert_int_equal(q(&held, 94), ALERTLEVEL_SILENT);
	assert_int_equal(held, 0);
	assert_int_equal(q(&held, 85), ALERTLEVEL_KEEP);
	assert_int_equal(q(&held, 84.9), ALERTLEVEL_RESOLVE);
	assert_int_equal(held, ALERTLEVEL_NONE);
	assert_int_equal(q(&held, 89), ALERTLEVEL_KEEP);
	/* straight over both: the top level only */
	assert_int_equal(q(&held, 150), ALERTLEVEL_OPEN);
	assert_int_equal(held, 1);
	assert_int_equal(q(&held, 10), ALERTLEVEL_RESOLVE);
}

static void test_quota_levels(void **state)
{
	const char *ok[] = { "100", "90" }, *bad[] = { "0" },
		   *dup[] = { "90", "90" }, *junk[] = { "9x" };
	unsigned out[ALERTLEVEL_MAX];
	const char *why;

	(void)state;
	assert_int_equal(alertlevel_quota_levels(ok, 2, out, &why), 0);
	assert_int_equal(out[0], 90);
	assert_int_equal(out[1], 100);
	assert_int_equal(alertlevel_quota_levels(bad, 1, out, &why), -EINVAL);
	assert_int_equal(alertlevel_quota_levels(dup, 2, out, &why), -EINVAL);
	assert_int_equal(alertlevel_quota_levels(junk, 1, out, &why),
			 -EINVAL);
	assert_int_equal(alertlevel_quota_levels(ok, 0, out, &why), -EINVAL);
}

static void test_repquota_csv(void **state)
{
	/* the shape of quota tools 4.06's `repquota -u -O csv` */
	const char *out =
		"User,BlockStatus,FileStatus,BlockUsed,BlockSoftLimit,"
		"BlockHardLimit,BlockGrace,FileUsed,FileSoftLimit,"
		"FileHardLimit,FileGrace\n"
		"root,ok,ok,13,0,0,,2,0,0,\n"
		"bob,soft,ok,1011,1000,2000,7days,2,0,0,\n"
		"#4242,ok,ok,5,0,100,,1,0,0,\n"
		"../evil,ok,ok,5,10,10,,1,0,0,\n"
		"carol,ok,ok,notanumber,10,10,,1,0,0,\n"
		"dave,ok,ok,50\n";
	struct alertlevel_quota_row *rows = NULL;
	const char *why = NULL, *limit = NULL;
	size_t n = 0;

	(void)state;
	assert_int_equal(alertlevel_repquota_parse(out, strlen(out), &rows, &n,
						   &why), 0);
	assert_int_equal(n, 3);
	assert_string_equal(rows[0].user, "root");
	assert_true(alertlevel_quota_pct(&rows[0], &limit) < 0);
	assert_string_equal(rows[1].user, "bob");
	assert_int_equal(rows[1].used_kb, 1011);
	assert_int_equal(rows[1].soft_kb, 1000);
	assert_int_equal(rows[1].hard_kb, 2000);
	assert_true(alertlevel_quota_pct(&rows[1], &limit) > 101.0);
	assert_string_equal(limit, "soft");
	assert_string_equal(rows[2].user, "#4242");
	assert_true(alertlevel_quota_pct(&rows[2], &limit) == 5.0);
	assert_string_equal(limit, "hard");
	free(rows);
	assert_int_equal(alertlevel_repquota_parse("nope\n", 5, &rows, &n,
						   &why), -EINVAL);
	assert_non_null(why);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration),
		cmocka_unit_test(test_renew_overdue),
		cmocka_unit_test(test_thresholds_sorted),
		cmocka_unit_test(test_cert_walk),
		cmocka_unit_test(test_cert_six_days_at_start),
		cmocka_unit_test(test_cert_renewal),
		cmocka_unit_test(test_quota_hysteresis),
		cmocka_unit_test(test_quota_levels),
		cmocka_unit_test(test_repquota_csv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
