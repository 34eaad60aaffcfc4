#include "metrics.h"
#include "hmap.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latency buckets in seconds. */
static const double metrics_le[] = { 0.0001, 0.0005, 0.001, 0.005, 0.01,
				     0.05, 0.1, 0.5, 1, 5, 30 };
#define METRICS_NB (sizeof(metrics_le) / sizeof(metrics_le[0]))

struct handler_metrics {
	uint64_t states[4];
	uint64_t buckets[METRICS_NB]; /* cumulative at render */
	uint64_t count;
	double sum_s;
};

struct metrics {
	struct hmap *events;   /* "type\tsource" -> uint64_t* */
	struct hmap *handlers; /* name -> struct handler_metrics */
	struct hmap *counters; /* name -> uint64_t* */
};

struct metrics *metrics_new(void)
{
	struct metrics *m = xcalloc(1, sizeof(*m));

	m->events = hmap_new();
	m->handlers = hmap_new();
	m->counters = hmap_new();
	return m;
}

void metrics_free(struct metrics **mp)
{
	struct metrics *m = *mp;

	if (m == NULL)
		return;
	*mp = NULL;
	hmap_free(&m->events, free);
	hmap_free(&m->handlers, free);
	hmap_free(&m->counters, free);
	free(m);
}

static uint64_t *metrics_counter(struct hmap *map, const char *key)
{
	uint64_t *c = hmap_get(map, key);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		hmap_put(map, key, c);
	}
	return c;
}

void metrics_event(struct metrics *m, const char *type, const char *source)
{
	char key[160];
	size_t tl = strnlen(type, 100), sl = strnlen(source, 50);

	/* "type\tsource" (snprintf cost 1% of an emitted event) */
	memcpy(key, type, tl);
	key[tl] = '\t';
	memcpy(key + tl + 1, source, sl);
	key[tl + 1 + sl] = '\0';
	(*metrics_counter(m->events, key))++;
}

void metrics_delivery(struct metrics *m, const char *handler,
		      enum delivery_state st, int64_t duration_us)
{
	struct handler_metrics *h = hmap_get(m->handlers, handler);
	double s = (double)(duration_us > 0 ? duration_us : 0) / 1e6;

	if (h == NULL) {
		h = xcalloc(1, sizeof(*h));
		hmap_put(m->handlers, handler, h);
	}
	if ((unsigned)st < 4)
		h->states[st]++;
	h->count++;
	h->sum_s += s;
	for (size_t i = 0; i < METRICS_NB; i++) {
		if (s <= metrics_le[i]) {
			h->buckets[i]++;
			break;
		}
	}
}

void metrics_count(struct metrics *m, const char *name, uint64_t n)
{
	*metrics_counter(m->counters, name) += n;
}

/* ---- rendering ---- */

struct buf {
	char *s;
	size_t len, cap;
};

static void buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		b->cap = b->cap * 2 + (size_t)(n > 0 ? n : 0) + 256;
		b->s = xrealloc(b->s, b->cap);
	}
}

/* Label values: backslash, double quote and newline escaped. */
static void buf_label(struct buf *b, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"')
			buf_printf(b, "\\%c", *v);
		else if (*v == '\n')
			buf_printf(b, "\\n");
		else
			buf_printf(b, "%c", *v);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

struct keys {
	const char **k;
	size_t n;
};

static bool collect_key(const char *key, void *value, void *ctx)
{
	struct keys *ks = ctx;

	(void)value;
	ks->k[ks->n++] = key;
	return true;
}

/* Keys of a map, sorted (stable output). */
static struct keys sorted_keys(const struct hmap *map)
{
	struct keys ks = { xcalloc(hmap_count(map) + 1, sizeof(char *)), 0 };

	hmap_each(map, collect_key, &ks);
	qsort(ks.k, ks.n, sizeof(*ks.k), cmp_str);
	return ks;
}

static void render_events(struct buf *b, const struct metrics *m)
{
	struct keys ks = sorted_keys(m->events);

	buf_printf(b, "# HELP ophook_events_total Events journaled, by type and source.\n"
		      "# TYPE ophook_events_total counter\n");
	for (size_t i = 0; i < ks.n; i++) {
		const char *tab = strchr(ks.k[i], '\t');
		char type[128];

		snprintf(type, sizeof(type), "%.*s", (int)(tab - ks.k[i]),
			 ks.k[i]);
		buf_printf(b, "ophook_events_total{type=\"");
		buf_label(b, type);
		buf_printf(b, "\",source=\"");
		buf_label(b, tab + 1);
		buf_printf(b, "\"} %llu\n",
			   (unsigned long long)*(uint64_t *)hmap_get(m->events, ks.k[i]));
	}
	free(ks.k);
}

static void render_handlers(struct buf *b, const struct metrics *m)
{
	struct keys ks = sorted_keys(m->handlers);

	buf_printf(b, "# HELP ophook_deliveries_total Delivery attempts, by handler and resulting state.\n"
		      "# TYPE ophook_deliveries_total counter\n");
	for (size_t i = 0; i < ks.n; i++) {
		const struct handler_metrics *h = hmap_get(m->handlers, ks.k[i]);

		for (unsigned s = DELIVERY_DONE; s <= DELIVERY_DEAD; s++) {
			buf_printf(b, "ophook_deliveries_total{handler=\"");
			buf_label(b, ks.k[i]);
			buf_printf(b, "\",state=\"%s\"} %llu\n",
				   delivery_state_name((enum delivery_state)s),
				   (unsigned long long)h->states[s]);
		}
	}
	buf_printf(b, "# HELP ophook_delivery_duration_seconds Time a handler call took.\n"
		      "# TYPE ophook_delivery_duration_seconds histogram\n");
	for (size_t i = 0; i < ks.n; i++) {
		const struct handler_metrics *h = hmap_get(m->handlers, ks.k[i]);
		uint64_t cum = 0;

		for (size_t j = 0; j < METRICS_NB; j++) {
			cum += h->buckets[j];
			buf_printf(b, "ophook_delivery_duration_seconds_bucket{handler=\"");
			buf_label(b, ks.k[i]);
			buf_printf(b, "\",le=\"%g\"} %llu\n", metrics_le[j],
				   (unsigned long long)cum);
		}
		buf_printf(b, "ophook_delivery_duration_seconds_bucket{handler=\"");
		buf_label(b, ks.k[i]);
		buf_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)h->count);
		buf_printf(b, "ophook_delivery_duration_seconds_sum{handler=\"");
		buf_label(b, ks.k[i]);
		buf_printf(b, "\"} %.6f\n", h->sum_s);
		buf_printf(b, "ophook_delivery_duration_seconds_count{handler=\"");
		buf_label(b, ks.k[i]);
		buf_printf(b, "\"} %llu\n", (unsigned long long)h->count);
	}
	free(ks.k);
}

/* HELP text of the named counters (metrics_count); others get a generic
 * one. */
static const char *counter_help(const char *name)
{
	static const char *const help[][2] = {
		{ "plugins_quarantined", "Plugins quarantined since the start." },
		{ "plugin_crashes", "Isolated plugin runners that died in a call." },
		{ "reconciles_requested", "Reconciles asked for (ophookctl reconcile)." },
	};

	for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++) {
		if (strcmp(help[i][0], name) == 0)
			return help[i][1];
	}
	return "Count since the daemon started.";
}

/* The journal's deliveries by handler and state: gauges read from the
 * journal at each scrape, so pending, failed and dead are right after a
 * restart. */
static void render_journal(struct buf *b, const json_t *handlers)
{
	static const char *const states[] = { "pending", "failed", "dead",
					      "discarded" };
	const char *name;
	json_t *h;

	if (handlers == NULL)
		return;
	buf_printf(b, "# HELP ophook_journal_deliveries Deliveries in the journal "
		      "not done, by handler and state (discarded: given up by "
		      "hand, kept until pruned) (read from the journal).\n"
		      "# TYPE ophook_journal_deliveries gauge\n");
	json_object_foreach((json_t *)handlers, name, h) {
		for (size_t i = 0; i < sizeof(states) / sizeof(states[0]);
		     i++) {
			buf_printf(b, "ophook_journal_deliveries{handler=\"");
			buf_label(b, name);
			buf_printf(b, "\",state=\"%s\"} %lld\n", states[i],
				   (long long)json_integer_value(
					   json_object_get(h, states[i])));
		}
	}
}

/* How far behind each running handler is. */
static void render_lag(struct buf *b, const json_t *lag)
{
	const char *name;
	json_t *v;

	if (lag == NULL || json_object_size(lag) == 0)
		return;
	buf_printf(b, "# HELP ophook_handler_lag_seconds Age of the oldest "
		      "event a handler has yet to finish (0: none waiting).\n"
		      "# TYPE ophook_handler_lag_seconds gauge\n");
	json_object_foreach((json_t *)lag, name, v) {
		buf_printf(b, "ophook_handler_lag_seconds{handler=\"");
		buf_label(b, name);
		buf_printf(b, "\"} %.3f\n", json_real_value(v));
	}
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g)
{
	struct buf b = { xmalloc(4096), 0, 4096 };
	struct keys ks;

	b.s[0] = '\0';
	render_events(&b, m);
	render_handlers(&b, m);
	ks = sorted_keys(m->counters);
	for (size_t i = 0; i < ks.n; i++) {
		buf_printf(&b, "# HELP ophook_%s_total %s\n"
			   "# TYPE ophook_%s_total counter\nophook_%s_total %llu\n",
			   ks.k[i], counter_help(ks.k[i]), ks.k[i], ks.k[i],
			   (unsigned long long)*(uint64_t *)hmap_get(m->counters, ks.k[i]));
	}
	free(ks.k);
	buf_printf(&b,
		   "# HELP ophook_queue_depth Events and deliveries waiting.\n"
		   "# TYPE ophook_queue_depth gauge\n"
		   "ophook_queue_depth{stage=\"incoming\"} %llu\n"
		   "ophook_queue_depth{stage=\"queued\"} %llu\n"
		   "# HELP ophook_inflight Handler calls running now.\n"
		   "# TYPE ophook_inflight gauge\nophook_inflight %llu\n"
		   "# HELP ophook_journal_errors_total Journal writes that failed since the start.\n"
		   "# TYPE ophook_journal_errors_total counter\n"
		   "ophook_journal_errors_total %llu\n"
		   "# HELP ophook_journal_ok 1 when the journal takes writes, 0 while it fails.\n"
		   "# TYPE ophook_journal_ok gauge\nophook_journal_ok %d\n"
		   "# HELP ophook_uptime_seconds Seconds since the daemon started.\n"
		   "# TYPE ophook_uptime_seconds gauge\nophook_uptime_seconds %lld\n",
		   (unsigned long long)g->incoming, (unsigned long long)g->queued,
		   (unsigned long long)g->inflight,
		   (unsigned long long)g->journal_errors, g->journal_ok,
		   (long long)g->uptime_s);
	render_journal(&b, g->journal_handlers);
	render_lag(&b, g->handler_lag);
	return b.s;
}

/* ---- HTTP on loopback ---- */

struct metrics_http {
	uv_tcp_t server;
	char *(*render)(void *ctx);
	void *ctx;
};

struct http_client {
	uv_tcp_t tcp;
	struct metrics_http *h;
	char req[8192];
	size_t len;
	bool answered;
	uv_write_t wr;
	char *out;
};

static void http_client_closed(uv_handle_t *hd)
{
	struct http_client *c = hd->data;

	free(c->out);
	free(c);
}

static void http_written(uv_write_t *w, int status)
{
	struct http_client *c = w->data;

	(void)status;
	uv_close((uv_handle_t *)&c->tcp, http_client_closed);
}

static void http_alloc(uv_handle_t *hd, size_t sugg, uv_buf_t *buf)
{
	struct http_client *c = hd->data;

	(void)sugg;
	*buf = uv_buf_init(c->req + c->len, (unsigned)(sizeof(c->req) - 1 - c->len));
}

static void http_answer(struct http_client *c, const char *status,
			const char *body, size_t len)
{
	uv_buf_t b;

	c->answered = true;
	uv_read_stop((uv_stream_t *)&c->tcp);
	c->out = xasprintf("HTTP/1.0 %s\r\nContent-Type: text/plain; "
			   "version=0.0.4\r\nContent-Length: %zu\r\n"
			   "Connection: close\r\n\r\n%.*s",
			   status, len, (int)len, body);
	b = uv_buf_init(c->out, (unsigned)strlen(c->out));
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, http_written) < 0)
		uv_close((uv_handle_t *)&c->tcp, http_client_closed);
}

static void http_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct http_client *c = s->data;

	(void)buf;
	if (c->answered)
		return;
	if (n < 0) {
		uv_close((uv_handle_t *)s, http_client_closed);
		return;
	}
	c->len += (size_t)n;
	c->req[c->len] = '\0';
	if (strstr(c->req, "\r\n\r\n") == NULL &&
	    strstr(c->req, "\n\n") == NULL) {
		if (c->len >= sizeof(c->req) - 1)
			http_answer(c, "431 Request Header Fields Too Large",
				    "", 0);
		return;
	}
	if (strncmp(c->req, "GET /metrics ", 13) == 0 ||
	    strncmp(c->req, "GET /metrics\r", 13) == 0) {
		char *text = c->h->render(c->h->ctx);

		http_answer(c, "200 OK", text, strlen(text));
		free(text);
	} else {
		http_answer(c, "404 Not Found", "try GET /metrics\n", 17);
	}
}

static void http_connection(uv_stream_t *server, int status)
{
	struct metrics_http *h = server->data;
	struct http_client *c;

	if (status < 0)
		return;
	c = xcalloc(1, sizeof(*c));
	c->h = h;
	uv_tcp_init(uv_handle_get_loop((uv_handle_t *)server), &c->tcp);
	c->tcp.data = c;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 ||
	    uv_read_start((uv_stream_t *)&c->tcp, http_alloc, http_read) < 0)
		uv_close((uv_handle_t *)&c->tcp, http_client_closed);
}

/* Parse "127.0.0.1:9101" or "[::1]:9101"; loopback only. */
static int metrics_parse_addr(const char *addr, struct sockaddr_storage *ss,
			      const char **error_r)
{
	char host[64];
	const char *colon;
	char *end;
	long port;

	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (close == NULL || close[1] != ':' ||
		    (size_t)(close - addr - 1) >= sizeof(host)) {
			*error_r = "metrics_listen: want [ADDR]:PORT";
			return -EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - addr - 1),
			 addr + 1);
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
			*error_r = "metrics_listen: want ADDR:PORT";
			return -EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
	}
	port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535) {
		*error_r = "metrics_listen: bad port";
		return -EINVAL;
	}
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0) {
		if ((ntohl(((struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) != 127) {
			*error_r = "metrics_listen: only loopback addresses (127.0.0.0/8, ::1)";
			return -EPERM;
		}
		return 0;
	}
	if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0) {
		if (!IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)ss)->sin6_addr)) {
			*error_r = "metrics_listen: only loopback addresses (127.0.0.0/8, ::1)";
			return -EPERM;
		}
		return 0;
	}
	*error_r = "metrics_listen: not an IP address";
	return -EINVAL;
}

int metrics_http_start(uv_loop_t *loop, const char *addr,
		       char *(*render)(void *ctx), void *ctx,
		       struct metrics_http **h_r, const char **error_r)
{
	struct sockaddr_storage ss;
	struct metrics_http *h;
	int ret;

	ret = metrics_parse_addr(addr, &ss, error_r);
	if (ret < 0)
		return ret;
	h = xcalloc(1, sizeof(*h));
	h->render = render;
	h->ctx = ctx;
	uv_tcp_init(loop, &h->server);
	h->server.data = h;
	ret = uv_tcp_bind(&h->server, (struct sockaddr *)&ss, 0);
	if (ret == 0)
		ret = uv_listen((uv_stream_t *)&h->server, 16, http_connection);
	if (ret < 0) {
		*error_r = uv_strerror(ret);
		uv_close((uv_handle_t *)&h->server, (uv_close_cb)free);
		return ret;
	}
	*h_r = h;
	return 0;
}

static void metrics_http_closed(uv_handle_t *hd)
{
	free(hd->data);
}

void metrics_http_stop(struct metrics_http **hp)
{
	struct metrics_http *h = *hp;

	if (h == NULL)
		return;
	*hp = NULL;
	uv_close((uv_handle_t *)&h->server, metrics_http_closed);
}
