/* Metrics: Prometheus text, label escaping, cumulative histograms,
 * loopback-only listener. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
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

/* Every metric family has HELP and TYPE before its first sample (what
 * `promtool check metrics` asks), and the journal's deliveries by handler
 * and state are gauges (right after a restart, unlike the counters). */
static void test_help_and_journal(void **state)
{
	struct metrics *m = metrics_new();
	json_t *handlers = json_pack("{s{sIsIsIsI}}", "exec:x.d/10-y", "pending",
				     (json_int_t)4, "done", (json_int_t)9,
				     "failed", (json_int_t)2, "dead",
				     (json_int_t)7);
	json_t *lag = json_pack("{sf}", "lua:slow.lua", 2.5);
	struct metrics_gauges g = { .journal_ok = 1,
				    .journal_handlers = handlers,
				    .handler_lag = lag };
	char *text, *line, *save = NULL;
	char seen_help[64][96], seen_type[64][96];
	size_t nh = 0, nt = 0;

	(void)state;
	metrics_event(m, "domain.added", "inotify");
	metrics_delivery(m, "plugin:log", DELIVERY_DONE, 5);
	metrics_count(m, "plugin_crashes", 1);
	metrics_count(m, "something_new", 3);
	text = metrics_render(m, &g);
	assert_non_null(strstr(text, "ophook_journal_deliveries{handler=\"exec:x.d/10-y\",state=\"dead\"} 7\n"));
	assert_non_null(strstr(text, "ophook_journal_deliveries{handler=\"exec:x.d/10-y\",state=\"pending\"} 4\n"));
	assert_non_null(strstr(text, "ophook_journal_deliveries{handler=\"exec:x.d/10-y\",state=\"failed\"} 2\n"));
	assert_non_null(strstr(text, "ophook_handler_lag_seconds{handler=\"lua:slow.lua\"} 2.500\n"));
	for (line = strtok_r(text, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		char name[96];
		size_t n;

		if (strncmp(line, "# HELP ", 7) == 0) {
			sscanf(line + 7, "%95s", seen_help[nh++]);
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			sscanf(line + 7, "%95s", seen_type[nt++]);
			continue;
		}
		n = strcspn(line, "{ ");
		snprintf(name, sizeof(name), "%.*s", (int)n, line);
		/* a histogram's samples belong to its family */
		for (const char *suf = "_bucket\0_sum\0_count\0"; *suf != '\0';
		     suf += strlen(suf) + 1) {
			size_t l = strlen(name), k = strlen(suf);

			if (l > k && strcmp(name + l - k, suf) == 0 &&
			    strncmp(name, "ophook_delivery_duration_seconds", 32) == 0)
				name[l - k] = '\0';
		}
		bool help = false, type = false;

		for (size_t i = 0; i < nh; i++)
			help |= strcmp(seen_help[i], name) == 0;
		for (size_t i = 0; i < nt; i++)
			type |= strcmp(seen_type[i], name) == 0;
		if (!help || !type)
			fail_msg("%s: no %s before its sample", name,
				 help ? "TYPE" : "HELP");
	}
	free(text);
	json_decref(handlers);
	json_decref(lag);
	metrics_free(&m);
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
		cmocka_unit_test(test_help_and_journal),
		cmocka_unit_test(test_loopback_only),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
