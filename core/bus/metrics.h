/* Metrics in the Prometheus text format: events by type, deliveries by
 * handler and state, delivery latency histograms, queue depth, and named
 * counters other subsystems bump (reconciles, overflows).  Loop thread
 * only.  Served by `ophookctl metrics` and, when `metrics_listen` is set,
 * over HTTP on a loopback address. */
#ifndef OPHOOK_METRICS_H
#define OPHOOK_METRICS_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "journal.h"

struct metrics;

struct metrics *metrics_new(void);
void metrics_free(struct metrics **m);

/* An event became durable. */
void metrics_event(struct metrics *m, const char *type, const char *source);
/* A delivery attempt ended in state st after duration_us. */
void metrics_delivery(struct metrics *m, const char *handler,
		      enum delivery_state st, int64_t duration_us);
/* Add n to the counter ophook_<name>_total (name: [a-z_]+). */
void metrics_count(struct metrics *m, const char *name, uint64_t n);

struct metrics_gauges {
	uint64_t incoming, queued, inflight, journal_errors;
	int64_t uptime_s;
	int journal_ok;
	/* journal_counts()'s "handlers" object ({"h":{"pending":N,..}}), or
	 * NULL: the deliveries in the journal by handler and state, which
	 * survive a restart (the counters above start from zero) */
	const json_t *journal_handlers;
	/* {"handler": seconds}: the age of each running handler's oldest
	 * unfinished event (0 when it has none), or NULL */
	const json_t *handler_lag;
};
/* The whole exposition text; caller frees. */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g);

/* Serve GET /metrics on addr ("127.0.0.1:9101", "[::1]:9101"); only
 * loopback addresses are accepted.  render(ctx) gives the text (freed by
 * the server).  0 or -errno with *error_r. */
struct metrics_http;
int metrics_http_start(uv_loop_t *loop, const char *addr,
		       char *(*render)(void *ctx), void *ctx,
		       struct metrics_http **h_r, const char **error_r);
void metrics_http_stop(struct metrics_http **h);

#endif
