/* Unit tests for the mount table filter: which mount points touch the
 * watched roots (at, under, above; "/" never), escapes decoded, and a live
 * start/stop on the real /proc/self/mountinfo. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mountwatch.h"

static const char table[] =
	"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"
	"25 22 0:5 / /dev rw,nosuid shared:2 - devtmpfs udev rw\n"
	"30 22 0:40 / /etc/openpanel/caddy/domains rw - tmpfs tmpfs rw\n"
	"31 22 0:41 / /etc/openpanel2 rw - tmpfs tmpfs rw\n"
	"32 22 0:42 / /etc rw - tmpfs tmpfs rw\n"
	"33 22 0:43 / /srv/my\\040zones rw - tmpfs tmpfs rw\n"
	"34 22 0:44 / /var/lib/docker/overlay2/x/merged rw - overlay o rw\n"
	"35 22 0:45 / /etc/openpanel rw - tmpfs tmpfs rw";

static void test_relevant(void **state)
{
	const char *roots[] = { "/etc/openpanel", "/srv/my zones/db" };
	char *rel;

	(void)state;
	rel = mountwatch_relevant(table, roots, 2);
	/* under a root, above one (/etc, /srv/my zones), at one; not "/",
	 * not a sibling sharing a prefix, not an unrelated mount */
	assert_string_equal(rel, "/etc/openpanel/caddy/domains\n/etc\n"
				 "/srv/my zones\n/etc/openpanel\n");
	free(rel);
}

static void test_none(void **state)
{
	const char *roots[] = { "/opt/panel" };
	char *rel;

	(void)state;
	rel = mountwatch_relevant(table, roots, 1);
	assert_string_equal(rel, "");
	free(rel);
	rel = mountwatch_relevant("", roots, 1);
	assert_string_equal(rel, "");
	free(rel);
	/* truncated and garbage lines are skipped */
	rel = mountwatch_relevant("1 2\n\n\\\\\\ x y z /opt/panel/a b\n",
				  roots, 1);
	assert_string_equal(rel, "/opt/panel/a\n");
	free(rel);
}

static void cb(void *ctx)
{
	(*(int *)ctx)++;
}

static void test_live(void **state)
{
	uv_loop_t loop;
	struct mountwatch *mw = NULL;
	const char *roots[] = { "/tmp" };
	const char *err = NULL;
	int calls = 0;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(mountwatch_start(&loop, NULL, roots, 1, cb, &calls,
					  &mw, &err), 0);
	assert_non_null(mw);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_int_equal(calls, 0); /* nothing changed */
	mountwatch_stop(&mw);
	assert_null(mw);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
	assert_int_equal(mountwatch_start(&loop, "/nonexistent/mountinfo",
					  roots, 1, cb, &calls, &mw, &err),
			 -ENOENT);
	assert_non_null(err);
	assert_null(mw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_relevant),
		cmocka_unit_test(test_none),
		cmocka_unit_test(test_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
