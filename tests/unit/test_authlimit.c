/* Unit tests of the failed-authentication limit (core/lib/authlimit.c),
 * with a moved clock. */
#include "authlimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

/* Wrong attempts under the limit never lock; the max-th one does. */
static void test_locks_at_max(void **state)
{
	struct authlimit l;
	long retry = -1;

	(void)state;
	authlimit_init(&l, 3, 60, 30);
	for (int i = 0; i < 2; i++) {
		assert_true(authlimit_allow(&l, 1000 + i, &retry));
		assert_int_equal(retry, 0);
		assert_int_equal(authlimit_fail(&l, 1000 + i),
				 i == 0 ? AUTHLIMIT_FIRST : AUTHLIMIT_COUNTED);
	}
	assert_true(authlimit_allow(&l, 1002, &retry));
	assert_int_equal(authlimit_fail(&l, 1002), AUTHLIMIT_LOCKED);
	assert_false(authlimit_allow(&l, 1003, &retry));
	assert_int_equal(retry, 29);
	assert_false(authlimit_allow(&l, 1031, &retry));
	assert_int_equal(retry, 1);
	assert_int_equal(l.refused, 2);
	/* the lockout ends 30 s after the last wrong attempt, with a clean
	 * count: one wrong attempt does not lock again */
	assert_true(authlimit_allow(&l, 1032, &retry));
	assert_int_equal(authlimit_fail(&l, 1032), AUTHLIMIT_FIRST);
	assert_true(authlimit_allow(&l, 1033, &retry));
}

/* Wrong attempts spread wider than the window never lock. */
static void test_window_resets(void **state)
{
	struct authlimit l;
	long retry;

	(void)state;
	authlimit_init(&l, 3, 60, 30);
	for (int i = 0; i < 10; i++) {
		assert_true(authlimit_allow(&l, 5000 + i * 31, &retry));
		assert_int_equal(authlimit_fail(&l, 5000 + i * 31),
				 i % 2 == 0 ? AUTHLIMIT_FIRST : AUTHLIMIT_COUNTED);
	}
	assert_int_equal(l.refused, 0);
}

/* A clock stepped backwards starts a new window instead of locking for
 * ever or never. */
static void test_clock_backwards(void **state)
{
	struct authlimit l;
	long retry;

	(void)state;
	authlimit_init(&l, 2, 60, 30);
	assert_int_equal(authlimit_fail(&l, 9000), AUTHLIMIT_FIRST);
	assert_int_equal(authlimit_fail(&l, 100), AUTHLIMIT_FIRST);
	assert_int_equal(authlimit_fail(&l, 101), AUTHLIMIT_LOCKED);
	assert_false(authlimit_allow(&l, 102, &retry));
	assert_int_equal(retry, 29);
}

/* Zero settings are raised to 1, not a division or an open door. */
static void test_zero_settings(void **state)
{
	struct authlimit l;
	long retry;

	(void)state;
	authlimit_init(&l, 0, 0, 0);
	assert_int_equal(authlimit_fail(&l, 10), AUTHLIMIT_LOCKED);
	assert_false(authlimit_allow(&l, 10, &retry));
	assert_int_equal(retry, 1);
	assert_true(authlimit_allow(&l, 11, &retry));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_locks_at_max),
		cmocka_unit_test(test_window_resets),
		cmocka_unit_test(test_clock_backwards),
		cmocka_unit_test(test_zero_settings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
