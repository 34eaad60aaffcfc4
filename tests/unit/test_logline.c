/* Unit tests for core/lib/log.c: log_escape and one line per call (issue
 * 16, finding 13: a file name with a newline must not forge a log line). */
#include "../../core/lib/log.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmocka.h>

static const char *esc(const char *s, size_t len)
{
	static char out[256];

	log_escape(out, sizeof(out), s, len);
	return out;
}

static void test_escape_controls(void **state)
{
	(void)state;
	assert_string_equal(esc("a\nb", 3), "a\\x0ab");
	assert_string_equal(esc("\r\t\x1b[31m", 7), "\\x0d\\x09\\x1b[31m");
	assert_string_equal(esc("del\x7f", 4), "del\\x7f");
	assert_string_equal(esc("nul\0x", 5), "nul\\x00x");
	assert_string_equal(esc("plain/path.conf", 15), "plain/path.conf");
}

static void test_escape_utf8(void **state)
{
	(void)state;
	/* valid UTF-8 is kept (Cyrillic a, a CJK character, an emoji) */
	assert_string_equal(esc("ex\xd0\xb0mple", 8), "ex\xd0\xb0mple");
	assert_string_equal(esc("\xe4\xb8\xad", 3), "\xe4\xb8\xad");
	assert_string_equal(esc("\xf0\x9f\x98\x80", 4), "\xf0\x9f\x98\x80");
	/* invalid: a lone continuation, a truncated sequence, an overlong
	 * '/', a surrogate, a C1 control (U+0085, NEL) */
	assert_string_equal(esc("\x80", 1), "\\x80");
	assert_string_equal(esc("\xe4\xb8", 2), "\\xe4\\xb8");
	assert_string_equal(esc("\xc0\xaf", 2), "\\xc0\\xaf");
	assert_string_equal(esc("\xed\xa0\x80", 3), "\\xed\\xa0\\x80");
	assert_string_equal(esc("\xc2\x85", 2), "\\xc2\\x85");
	assert_string_equal(esc("\xff\xfe", 2), "\\xff\\xfe");
}

static void test_escape_truncates(void **state)
{
	char out[6];

	(void)state;
	/* never a half escape nor a half character */
	assert_int_equal(log_escape(out, sizeof(out), "ab\ncd", 5), 2);
	assert_string_equal(out, "ab");
	assert_int_equal(log_escape(out, sizeof(out), "abcd\xd0\xb0", 6), 4);
	assert_string_equal(out, "abcd");
	assert_int_equal(log_escape(out, 0, "x", 1), 0);
}

/* log_msg writes one line whatever the arguments hold */
static void test_one_line(void **state)
{
	char path[] = "/tmp/ophook-test-log.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);
	char buf[512];
	ssize_t n;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	log_msg(LOG_WARN_L, "plug\nin", "watch: %s: ignored: %s",
		"/r/caddy/domains/a\nerror: forged.conf", "not a domain");
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	buf[n] = '\0';
	/* the local time first: 2026-01-31T13:05:09.123+01:00 */
	assert_true(n > 30);
	for (int i = 0; i < 29; i++) {
		static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddd+dd:dd";

		if (shape[i] == 'd')
			assert_true(buf[i] >= '0' && buf[i] <= '9');
		else if (shape[i] == '+')
			assert_true(buf[i] == '+' || buf[i] == '-');
		else
			assert_int_equal(buf[i], shape[i]);
	}
	assert_int_equal(buf[29], ' ');
	assert_string_equal(buf + 30, "warn: plug\\x0ain: watch: /r/caddy/domains/"
				 "a\\x0aerror: forged.conf: ignored: not a "
				 "domain\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_controls),
		cmocka_unit_test(test_escape_utf8),
		cmocka_unit_test(test_escape_truncates),
		cmocka_unit_test(test_one_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
