/* pluginwire: frames built and read back, partial frames, bad lengths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "pluginwire.h"

static void test_roundtrip(void **state)
{
	struct pluginwire_buf b = { 0 };
	struct pluginwire_rd rd;
	long fl;

	(void)state;
	pluginwire_begin(&b, PW_EVENT);
	pluginwire_u64(&b, 7);
	pluginwire_u32(&b, 3);
	pluginwire_str(&b, "domain.added");
	pluginwire_str(&b, NULL);
	pluginwire_str(&b, "");
	pluginwire_end(&b);
	pluginwire_begin(&b, PW_READY);
	pluginwire_end(&b);

	/* incomplete: no frame yet */
	assert_int_equal(pluginwire_frame_len(b.data, 3), 0);
	assert_int_equal(pluginwire_frame_len(b.data, 10), 0);
	fl = pluginwire_frame_len(b.data, b.len);
	assert_true(fl > 0 && (size_t)fl < b.len);
	assert_int_equal(pluginwire_open(&rd, b.data, (size_t)fl), PW_EVENT);
	assert_int_equal(pluginwire_get_u64(&rd), 7);
	assert_int_equal(pluginwire_get_u32(&rd), 3);
	assert_string_equal(pluginwire_get_str(&rd), "domain.added");
	assert_null(pluginwire_get_str(&rd));
	assert_string_equal(pluginwire_get_str(&rd), "");
	assert_int_equal(rd.bad, 0);
	/* past the end: flagged, not read */
	assert_int_equal(pluginwire_get_u32(&rd), 0);
	assert_int_equal(rd.bad, 1);
	assert_int_equal(pluginwire_frame_len(b.data + fl, b.len - (size_t)fl),
			 5);
	assert_int_equal(pluginwire_open(&rd, b.data + fl, 5), PW_READY);
	pluginwire_buf_free(&b);
}

static void test_bad(void **state)
{
	char zero[8] = { 0 };
	char huge[8] = { (char)0xff, (char)0xff, (char)0xff, (char)0x7f };
	struct pluginwire_buf b = { 0 };
	struct pluginwire_rd rd;

	(void)state;
	assert_int_equal(pluginwire_frame_len(zero, sizeof(zero)), -EPROTO);
	assert_int_equal(pluginwire_frame_len(huge, sizeof(huge)), -EPROTO);
	/* a string whose length runs past the frame */
	pluginwire_begin(&b, PW_LOG);
	pluginwire_u32(&b, 1000);
	pluginwire_end(&b);
	pluginwire_open(&rd, b.data, b.len);
	assert_null(pluginwire_get_str(&rd));
	assert_int_equal(rd.bad, 1);
	pluginwire_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
