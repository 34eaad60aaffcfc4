/* Dispatcher: per-subject order, concurrency, retries with backoff, dead
 * after max attempts, timeouts, a failing handler not holding back others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "event.h"
#include "util.h"

struct fake {
	uv_loop_t *loop;
	unsigned delay_ms;       /* complete after this (0: at once) */
	int fail_times;          /* fail this many first attempts */
	bool hang;               /* never complete (timeout test) */
	char seen[4096];         /* "subject:id " in delivery order */
	unsigned calls, max_inflight, inflight;
	unsigned cancels;
};

struct pending {
	uv_timer_t t;
	struct delivery *d;
	struct fake *f;
};

static struct journal_delivery results[512];
static char result_handler[512][32];
static unsigned n_results;
static unsigned released;

static void on_result(const struct journal_delivery *jd, void *ctx)
{
	(void)ctx;
	assert_true(n_results < 512);
	results[n_results] = *jd;
	snprintf(result_handler[n_results], 32, "%s", jd->handler);
	results[n_results].handler = result_handler[n_results];
	results[n_results].last_error = NULL;
	n_results++;
}

static void on_release(struct handler *h, void *ctx)
{
	(void)ctx;
	released++;
	for (size_t i = 0; i < h->n_patterns; i++)
		free(h->patterns[i]);
	free(h->patterns);
	free(h->name);
	free(h);
}

static void fake_complete(struct fake *f, struct delivery *d)
{
	int rc = 0;

	f->inflight--;
	if (f->fail_times > 0 && d->attempts < (unsigned)f->fail_times)
		rc = -EIO;
	dispatch_done(d, rc, rc ? "boom" : NULL);
}

static void pending_closed(uv_handle_t *h)
{
	free(h->data);
}

static void fake_timer(uv_timer_t *t)
{
	struct pending *p = t->data;

	fake_complete(p->f, p->d);
	t->data = p;
	uv_close((uv_handle_t *)t, pending_closed);
}

static void fake_deliver(struct handler *h, struct delivery *d)
{
	struct fake *f = h->data;
	size_t len = strlen(f->seen);

	delivery_started(d);
	snprintf(f->seen + len, sizeof(f->seen) - len, "%s:%lld ",
		 d->ev->subject, (long long)d->ev->pub.id);
	f->calls++;
	if (++f->inflight > f->max_inflight)
		f->max_inflight = f->inflight;
	if (f->hang)
		return;
	if (f->delay_ms == 0) {
		fake_complete(f, d);
		return;
	}
	struct pending *p = xcalloc(1, sizeof(*p));

	p->d = d;
	p->f = f;
	uv_timer_init(f->loop, &p->t);
	p->t.data = p;
	uv_timer_start(&p->t, fake_timer, f->delay_ms, 0);
}

static void fake_cancel(struct handler *h, struct delivery *d)
{
	struct fake *f = h->data;

	f->cancels++;
	f->inflight--;
	/* the handler gives up its call: report it, as a process kill would */
	dispatch_done(d, -ECANCELED, "cancelled");
}

static const struct handler_ops fake_ops = {
	.deliver = fake_deliver,
	.cancel = fake_cancel,
};

static struct handler *fake_handler(const char *name, struct fake *f)
{
	struct handler *h = xcalloc(1, sizeof(*h));

	h->ops = &fake_ops;
	h->name = xstrdup(name);
	h->data = f;
	return h;
}

static struct event *mkev(int64_t id, const char *subject)
{
	const char *why = NULL;
	struct event *ev = event_new("test.event", subject, "test", "n", 0,
				     NULL, &why);

	assert_non_null(ev);
	event_set_id(ev, id);
	return ev;
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until cond holds; a ticking timer keeps the loop alive so
 * the dispatcher's unreferenced sweep timer gets its turn. */
static void run_until(uv_loop_t *loop, bool (*cond)(void *), void *ctx)
{
	int64_t end = mono_ms() + 10000;
	uv_timer_t ticker;

	uv_timer_init(loop, &ticker);
	uv_timer_start(&ticker, tick, 5, 5);
	while (!cond(ctx) && mono_ms() < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&ticker, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	assert_true(cond(ctx));
}

static bool results_at_least(void *ctx)
{
	return n_results >= *(unsigned *)ctx;
}

static struct dispatch *mkdispatch(uv_loop_t *loop, unsigned conc,
				   unsigned attempts, unsigned timeout_ms)
{
	struct dispatch_settings s = {
		.concurrency = conc, .timeout_ms = timeout_ms,
		.max_attempts = attempts, .backoff_ms = 20,
		.backoff_max_ms = 40,
	};

	n_results = 0;
	released = 0;
	return dispatch_new(loop, &s, on_result, on_release, NULL);
}

static void finish(uv_loop_t *loop, struct dispatch **dp,
		   struct handler **hs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dispatch_handler_remove(*dp, hs[i]);
	dispatch_free(dp);
	uv_run(loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(loop), 0);
}

/* Events of one subject are delivered in order, even with a slow handler
 * and concurrency: per subject the ids seen are increasing. */
static void test_order_per_subject(void **state)
{
	uv_loop_t loop;
	struct fake f = { .loop = &loop, .delay_ms = 1 };
	struct handler *h;
	struct dispatch *dp;
	unsigned want = 60;
	const char *subjects[] = { "a.com", "b.com", "c.com" };

	(void)state;
	uv_loop_init(&loop);
	dp = mkdispatch(&loop, 8, 3, 5000);
	h = fake_handler("fake", &f);
	for (int i = 1; i <= 60; i++) {
		struct event *ev = mkev(i, subjects[i % 3]);

		dispatch_enqueue(dp, h, ev, 0, DELIVERY_PENDING, 0);
		event_unref(&ev);
	}
	run_until(&loop, results_at_least, &want);
	for (int s = 0; s < 3; s++) {
		long long last = 0;
		char *p = f.seen;

		while ((p = strstr(p, subjects[s])) != NULL) {
			long long id = atoll(p + strlen(subjects[s]) + 1);

			assert_true(id > last);
			last = id;
			p++;
		}
		assert_true(last > 0);
	}
	/* different subjects ran concurrently, one per subject at most */
	assert_true(f.max_inflight >= 2);
	assert_true(f.max_inflight <= 3);
	for (unsigned i = 0; i < n_results; i++)
		assert_int_equal(results[i].state, DELIVERY_DONE);
	finish(&loop, &dp, &h, 1);
	assert_int_equal(released, 1);
}

/* The concurrency limit holds across subjects. */
static void test_concurrency_limit(void **state)
{
	uv_loop_t loop;
	struct fake f = { .loop = &loop, .delay_ms = 2 };
	struct handler *h;
	struct dispatch *dp;
	unsigned want = 40;

	(void)state;
	uv_loop_init(&loop);
	dp = mkdispatch(&loop, 4, 3, 5000);
	h = fake_handler("fake", &f);
	for (int i = 1; i <= 40; i++) {
		char subj[16];
		struct event *ev;

		snprintf(subj, sizeof(subj), "s%d.com", i);
		ev = mkev(i, subj);
		dispatch_enqueue(dp, h, ev, 0, DELIVERY_PENDING, 0);
		event_unref(&ev);
	}
	run_until(&loop, results_at_least, &want);
	assert_int_equal(f.max_inflight, 4);
	finish(&loop, &dp, &h, 1);
}

static bool fake_called(void *ctx)
{
	return ((struct fake *)ctx)->calls > 0;
}

/* A slow handler with many subjects ready does not hold every slot: past
 * its share (3 of 4 slots) another handler's lane goes first, so b runs at
 * a's first completion, not after all 20 of a's lanes have started. */
static void test_handler_share(void **state)
{
	uv_loop_t loop;
	struct fake fa = { .loop = &loop, .delay_ms = 50 };
	struct fake fb = { .loop = &loop };
	struct handler *hs[2];
	struct dispatch *dp;
	unsigned want = 21;

	(void)state;
	uv_loop_init(&loop);
	dp = mkdispatch(&loop, 4, 3, 5000);
	hs[0] = fake_handler("a", &fa);
	hs[1] = fake_handler("b", &fb);
	for (int i = 1; i <= 20; i++) {
		char subj[16];
		struct event *ev;

		snprintf(subj, sizeof(subj), "s%d.com", i);
		ev = mkev(i, subj);
		dispatch_enqueue(dp, hs[0], ev, 0, DELIVERY_PENDING, 0);
		event_unref(&ev);
	}
	struct event *ev = mkev(21, "other.com");

	dispatch_enqueue(dp, hs[1], ev, 0, DELIVERY_PENDING, 0);
	event_unref(&ev);
	/* alone, a takes all four slots */
	assert_int_equal(fa.inflight, 4);
	run_until(&loop, fake_called, &fb);
	assert_true(fa.calls < 12);
	run_until(&loop, results_at_least, &want);
	assert_int_equal(fa.max_inflight, 4);
	finish(&loop, &dp, hs, 2);
}

/* A serial handler with many subjects waiting: one call at a time, every
 * delivery made, each finished call letting the next waiting lane go (in
 * arrival order across subjects). */
static void test_serial_many(void **state)
{
	uv_loop_t loop;
	struct fake f = { .loop = &loop, .delay_ms = 1 };
	struct handler *h;
	struct dispatch *dp;
	unsigned want = 300;

	(void)state;
	uv_loop_init(&loop);
	dp = mkdispatch(&loop, 8, 3, 5000);
	h = fake_handler("serial", &f);
	h->serial = true;
	for (int i = 1; i <= 300; i++) {
		char subj[16];
		struct event *ev;

		snprintf(subj, sizeof(subj), "s%d.com", i % 100);
		ev = mkev(i, subj);
		dispatch_enqueue(dp, h, ev, 0, DELIVERY_PENDING, 0);
		event_unref(&ev);
	}
	run_until(&loop, results_at_least, &want);
	assert_int_equal(n_results, 300);
	assert_int_equal(f.max_inflight, 1);
	assert_int_equal(f.calls, 300);
	/* the first round goes in arrival order: s1..s99 then s0 */
	assert_true(strncmp(f.seen, "s1.com:1 s2.com:2 s3.com:3 ", 27) == 0);
	finish(&loop, &dp, &h, 1);
}

/* A failing delivery is retried after a backoff (state failed, attempts
 * counted), then done; the next event of the subject waits for it. */
static void test_retry_then_done(void **state)
{
	uv_loop_t loop;
	struct fake f = { .loop = &loop, .fail_times = 2 };
	struct handler *h;
	struct dispatch *dp;
	struct event *e1, *e2;
	unsigned want = 6;

	(void)state;
	uv_loop_init(&loop);
	dp = mkdispatch(&loop, 4, 5, 5000);
	h = fake_handler("fake", &f);
	e1 = mkev(1, "x.com");
	e2 = mkev(2, "x.com");
	dispatch_enqueue(dp, h, e1, 0, DELIVERY_PENDING, 0);
	dispatch_enqueue(dp, h, e2, 0, DELIVERY_PENDING, 0);
	event_unref(&e1);
	event_unref(&e2);
	run_until(&loop, results_at_least, &want);
	/* e1: failed, failed, done; e2: failed, failed, done */
	assert_int_equal(results[0].event_id, 1);
	assert_int_equal(results[0].state, DELIVERY_FAILED);
	assert_int_equal(results[0].attempts, 1);
	assert_true(results[0].next_ms > 0);
	assert_int_equal(results[1].state, DELIVERY_FAILED);
	assert_int_equal(results[1].attempts, 2);
	assert_int_equal(results[2].event_id, 1);
	assert_int_equal(results[2].state, DELIVERY_DONE);
	assert_int_equal(results[2].attempts, 3);
	assert_int_equal(results[3].event_id, 2);
	assert_string_equal(f.seen, "x.com:1 x.com:1 x.com:1 x.com:2 x.com:2 x.com:2 ");
	finish(&loop, &dp, &h, 1);
}

/* What `events` shows as live: the head of a lane in flight is running,
 * the next event of its subject queued, a due lane with no free slot
 * ready, a failed head waiting for its next_ms backoff (with the newer
 * attempts and next_ms); an id the dispatcher does not hold is NULL. */
static void test_delivery_live(void **state)
{
	uv_loop_t loop;
	/* "hung": calls that last a second, longer than the checks */
	struct fake hung = { .loop = &loop, .delay_ms = 1000 };
	struct fake failing = { .loop = &loop, .fail_times = 5 };
	struct dispatch_settings set = {
		.concurrency = 2, .timeout_ms = 60000, .max_attempts = 5,
		.backoff_ms = 60000, .backoff_max_ms = 60000,
	};
	struct handler *hs[2];
	const struct delivery *d = NULL;
	struct event *ev;
	unsigned want = 1;

	(void)state;
	uv_loop_init(&loop);
	n_results = 0;
	released = 0;
	struct dispatch *dp = dispatch_new(&loop, &set, on_result, on_release,
					   NULL);
	hs[0] = fake_handler("hung", &hung);
	hs[1] = fake_handler("failing", &failing);
	/* failing: one attempt, then 60 s of backoff */
	ev = mkev(1, "f.com");
	dispatch_enqueue(dp, hs[1], ev, 0, DELIVERY_PENDING, 0);
	event_unref(&ev);
	run_until(&loop, results_at_least, &want);
	assert_string_equal(dispatch_delivery_live(hs[1], "f.com", 1, &d),
			    "backoff");
	assert_non_null(d);
	assert_int_equal(d->attempts, 1);
	assert_int_equal(d->state, DELIVERY_FAILED);
	assert_true(d->next_ms > now_ms() + 30000);
	/* hung: x.com:2 runs, x.com:3 waits behind it, y.com:4 runs in the
	 * second slot, z.com:5 has no slot */
	const int64_t ids[] = { 2, 3, 4, 5 };
	const char *subj[] = { "x.com", "x.com", "y.com", "z.com" };
	for (int i = 0; i < 4; i++) {
		ev = mkev(ids[i], subj[i]);
		dispatch_enqueue(dp, hs[0], ev, 0, DELIVERY_PENDING, 0);
		event_unref(&ev);
	}
	run_until(&loop, fake_called, &hung);
	uv_run(&loop, UV_RUN_NOWAIT);
	assert_string_equal(dispatch_delivery_live(hs[0], "x.com", 2, NULL),
			    "running");
	assert_string_equal(dispatch_delivery_live(hs[0], "x.com", 3, NULL),
			    "queued");
	assert_string_equal(dispatch_delivery_live(hs[0], "y.com", 4, NULL),
			    "running");
	assert_string_equal(dispatch_delivery_live(hs[0], "z.com", 5, NULL),
			    "ready");
	assert_null(dispatch_delivery_live(hs[0], "x.com", 9, NULL));
	assert_null(dispatch_delivery_live(hs[0], "nowhere.com", 2, NULL));
	assert_null(dispatch_delivery_live(hs[1], "x.com", 2, NULL));
	want = 5; /* the four calls of "hung" end */
	run_until(&loop, results_at_least, &want);
	assert_null(dispatch_delivery_live(hs[0], "z.com", 5, NULL));
	finish(&loop, &dp, hs, 2);
}

/* After max attempts the delivery is dead and the lane moves on; another
 * handler of the same events is not held back by the failing one. */
static void test_dead_and_isolation(void **state)
{
	uv_loop_t loop;
	struct fake bad = { .loop = &loop, .fail_times = 100 };
	struct fake good = { .loop = &loop };
	struct handler *hs[2];
	struct dispatch *dp;
	unsigned want = 3 * 2 + 2; /* bad: 3 attempts x 2 events; good: 2 */

	(void)state;
	uv_loop_init(&loop);
	dp = mkdispatch(&loop, 4, 3, 5000);
	hs[0] = fake_handler("bad", &bad);
	hs[1] = fake_handler("good", &good);
	for (int i = 1; i <= 2; i++) {
		struct event *ev = mkev(i, "y.com");

		dispatch_enqueue(dp, hs[0], ev, 0, DELIVERY_PENDING, 0);
		dispatch_enqueue(dp, hs[1], ev, 0, DELIVERY_PENDING, 0);
		event_unref(&ev);
	}
	run_until(&loop, results_at_least, &want);
	assert_string_equal(good.seen, "y.com:1 y.com:2 ");
	/* the good handler finished before the bad one's retries */
	assert_string_equal(result_handler[0], "bad");
	assert_int_equal(results[0].state, DELIVERY_FAILED);
	unsigned dead = 0, good_done = 0;

	for (unsigned i = 0; i < n_results; i++) {
		if (strcmp(result_handler[i], "bad") == 0 &&
		    results[i].state == DELIVERY_DEAD) {
			assert_int_equal(results[i].attempts, 3);
			dead++;
		}
		if (strcmp(result_handler[i], "good") == 0 &&
		    results[i].state == DELIVERY_DONE)
			good_done++;
	}
	assert_int_equal(dead, 2);
	assert_int_equal(good_done, 2);
	/* good's results came first: not held back by bad's backoff */
	assert_string_equal(result_handler[1], "good");
	finish(&loop, &dp, hs, 2);
}

/* A call that hangs past the timeout is failed with a timeout message and
 * cancelled; the lane goes on. */
static void test_timeout(void **state)
{
	uv_loop_t loop;
	struct fake f = { .loop = &loop, .hang = true };
	struct handler *h;
	struct dispatch *dp;
	struct event *ev;
	unsigned want = 2;

	(void)state;
	uv_loop_init(&loop);
	dp = mkdispatch(&loop, 4, 2, 50);
	h = fake_handler("slow", &f);
	ev = mkev(7, "z.com");
	dispatch_enqueue(dp, h, ev, 0, DELIVERY_PENDING, 0);
	event_unref(&ev);
	run_until(&loop, results_at_least, &want);
	assert_int_equal(results[0].state, DELIVERY_FAILED);
	assert_int_equal(results[1].state, DELIVERY_DEAD);
	assert_int_equal(f.cancels, 2);
	finish(&loop, &dp, &h, 1);
}

/* Resumed deliveries keep their attempt count and wait for next_ms. */
static void test_resume_failed(void **state)
{
	uv_loop_t loop;
	struct fake f = { .loop = &loop };
	struct handler *h;
	struct dispatch *dp;
	struct event *ev;
	unsigned want = 1;
	int64_t start = now_ms();

	(void)state;
	uv_loop_init(&loop);
	dp = mkdispatch(&loop, 4, 5, 5000);
	h = fake_handler("fake", &f);
	ev = mkev(9, "r.com");
	dispatch_enqueue(dp, h, ev, 2, DELIVERY_FAILED, start + 60);
	event_unref(&ev);
	assert_int_equal(f.calls, 0);
	run_until(&loop, results_at_least, &want);
	assert_true(now_ms() >= start + 60);
	assert_int_equal(results[0].attempts, 3);
	assert_int_equal(results[0].state, DELIVERY_DONE);
	finish(&loop, &dp, &h, 1);
}

/* event_payload_dump gives json_dumps(JSON_COMPACT)'s bytes: escapes,
 * NULs, integers, literals, key order; reals and nesting fall back. */
static void test_payload_dump(void **state)
{
	unsigned seed = 7;

	(void)state;
	for (int t = 0; t < 3000; t++) {
		json_t *o = json_object();
		int n = (int)(rand_r(&seed) % 6);

		for (int i = 0; i < n; i++) {
			char k[8], v[16];
			int vl = (int)(rand_r(&seed) % 16);

			snprintf(k, sizeof(k), "k%u\x01", rand_r(&seed) % 10);
			if (rand_r(&seed) % 3 == 0)
				k[2] = '"';
			for (int c = 0; c < vl; c++)
				v[c] = (char)(rand_r(&seed) % 128);
			switch (rand_r(&seed) % 6) {
			case 0:
				json_object_set_new(o, k, json_integer(
					(json_int_t)rand_r(&seed) - 1000000000));
				break;
			case 1: json_object_set_new(o, k, json_true()); break;
			case 2: json_object_set_new(o, k, json_null()); break;
			case 3: json_object_set_new(o, k, json_false()); break;
			default:
				json_object_set_new(o, k, json_stringn(v, (size_t)vl));
			}
		}
		if (t % 10 == 0)
			json_object_set_new(o, "r", t % 20 == 0 ? json_real(1.5)
						   : json_pack("{s:i}", "a", 1));
		char *want = json_dumps(o, JSON_COMPACT);
		char *got = event_payload_dump(o);

		assert_non_null(got);
		assert_string_equal(got, want);
		free(want);
		free(got);
		json_decref(o);
	}
}

/* The cached time text of event_new is time_format_ms's. */
static void test_event_time(void **state)
{
	static const int64_t ms[] = { 1000, 1999, 1001, 1764633600123,
				      1764633600999, 1764633601000, 0, 5,
				      253402300799999 };

	(void)state;
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		const char *why = NULL;
		char want[40];
		struct event *ev = event_new("a.b", "s", "test", "", ms[i],
					     NULL, &why);

		assert_non_null(ev);
		time_format_ms(ms[i], want, sizeof(want));
		assert_string_equal(json_string_value(json_object_get(
					    ev->payload, "time")),
				    want);
		event_unref(&ev);
	}
}

/* The id is spliced in front of the journaled text. */
static void test_set_id_text(void **state)
{
	const char *why = NULL;
	struct event *ev = event_new("a.b", "s.example", "test", "n1", 1000,
				     json_pack("{s:s}", "k", "v"), &why);

	(void)state;
	assert_non_null(ev);
	event_set_id_text(ev, 42, "{\"k\":\"v\"}");
	assert_string_equal(ev->json, "{\"id\":42,\"k\":\"v\"}");
	assert_int_equal(ev->pub.id, 42);
	event_set_id_text(ev, 7, "{}");
	assert_string_equal(ev->json, "{\"id\":7}");
	event_unref(&ev);
}

static void test_pattern_match(void **state)
{
	(void)state;
	assert_true(pattern_match("*", "domain.added"));
	assert_true(pattern_match("domain.*", "domain.added"));
	assert_false(pattern_match("domain.*", "user.added"));
	assert_true(pattern_match("*.added", "user.added"));
	assert_true(pattern_match("cert.issued", "cert.issued"));
	assert_false(pattern_match("cert.issued", "cert.issued2"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_per_subject),
		cmocka_unit_test(test_concurrency_limit),
		cmocka_unit_test(test_handler_share),
		cmocka_unit_test(test_serial_many),
		cmocka_unit_test(test_retry_then_done),
		cmocka_unit_test(test_delivery_live),
		cmocka_unit_test(test_dead_and_isolation),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_resume_failed),
		cmocka_unit_test(test_pattern_match),
		cmocka_unit_test(test_payload_dump),
		cmocka_unit_test(test_set_id_text),
		cmocka_unit_test(test_event_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
