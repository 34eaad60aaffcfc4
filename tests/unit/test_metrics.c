/* Metrics: Prometheus text, label escaping, cumulative histograms,
 * loopback-only listener. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static void test_render(void **state)
{
	struct metrics *m = metrics_new();
	struct metrics_gauges g = { .incoming = 3, .queued = 2, .inflight = 1,
				    .journal_ok = 1, .uptime_s = 9 };
	char *text;

	(void)state;
	metrics_event(m, "domain.added", "inotify");
	metrics_event(m, "domain.added", "inotify");
	metrics_event(m, "user.suspended", "db");
	metrics_delivery(m, "plugin:caddy", DELIVERY_DONE, 200);      /* 0.2 ms */
	metrics_delivery(m, "plugin:caddy", DELIVERY_FAILED, 20000);  /* 20 ms */
	metrics_delivery(m, "lua:x\"y.lua", DELIVERY_DEAD, 1);
	metrics_count(m, "reconciles", 2);
	text = metrics_render(m, &g);
	assert_non_null(strstr(text, "ophook_events_total{type=\"domain.added\",source=\"inotify\"} 2\n"));
	assert_non_null(strstr(text, "ophook_events_total{type=\"user.suspended\",source=\"db\"} 1\n"));
	assert_non_null(strstr(text, "ophook_deliveries_total{handler=\"plugin:caddy\",state=\"done\"} 1\n"));
	assert_non_null(strstr(text, "ophook_deliveries_total{handler=\"plugin:caddy\",state=\"failed\"} 1\n"));
	/* escaped quote in a label value */
	assert_non_null(strstr(text, "handler=\"lua:x\\\"y.lua\",state=\"dead\"} 1\n"));
	/* cumulative buckets: 0.2 ms is under 0.0005, 20 ms under 0.05 */
	assert_non_null(strstr(text, "bucket{handler=\"plugin:caddy\",le=\"0.0001\"} 0\n"));
	assert_non_null(strstr(text, "bucket{handler=\"plugin:caddy\",le=\"0.0005\"} 1\n"));
	assert_non_null(strstr(text, "bucket{handler=\"plugin:caddy\",le=\"0.01\"} 1\n"));
	assert_non_null(strstr(text, "bucket{handler=\"plugin:caddy\",le=\"0.05\"} 2\n"));
	assert_non_null(strstr(text, "bucket{handler=\"plugin:caddy\",le=\"+Inf\"} 2\n"));
	assert_non_null(strstr(text, "ophook_delivery_duration_seconds_count{handler=\"plugin:caddy\"} 2\n"));
	assert_non_null(strstr(text, "ophook_reconciles_total 2\n"));
	assert_non_null(strstr(text, "ophook_queue_depth{stage=\"incoming\"} 3\n"));
	assert_non_null(strstr(text, "ophook_inflight 1\n"));
	free(text);
	metrics_free(&m);
	assert_null(m);
}

static char *render_nothing(void *ctx)
{
	(void)ctx;
	return strdup("");
}

static void test_loopback_only(void **state)
{
	uv_loop_t loop;
	struct metrics_http *h = NULL;
	const char *err = NULL;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(metrics_http_start(&loop, "0.0.0.0:19102", render_nothing,
					    NULL, &h, &err), -EPERM);
	assert_non_null(strstr(err, "loopback"));
	assert_int_equal(metrics_http_start(&loop, "10.0.0.1:19102", render_nothing,
					    NULL, &h, &err), -EPERM);
	assert_int_equal(metrics_http_start(&loop, "127.0.0.1:99999", render_nothing,
					    NULL, &h, &err), -EINVAL);
	assert_int_equal(metrics_http_start(&loop, "localhost", render_nothing,
					    NULL, &h, &err), -EINVAL);
	assert_int_equal(metrics_http_start(&loop, "127.0.0.1:0", render_nothing,
					    NULL, &h, &err), -EINVAL);
	assert_int_equal(metrics_http_start(&loop, "127.0.0.1:19103", render_nothing,
					    NULL, &h, &err), 0);
	metrics_http_stop(&h);
	assert_null(h);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_loopback_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
