/* The engine's backlog per handler: a slow handler with a large backlog
 * does not hold back a fast one, each handler's order per subject holds
 * across a spill to the journal and its refill, the memory bound (one
 * window per handler) holds, and a restart resumes every backlog.  Runs
 * the real bus on a SQLite journal in a temp folder, with a small window
 * (engine_set_window) so that a few hundred events spill. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "dispatch.h"
#include "engine.h"
#include "journal.h"
#include "util.h"

#define WINDOW 64
#define SUBJECTS 5
#define MAX_EVENTS 2048

struct rec {
	const char *name;
	bool hold;                 /* keep deliveries in flight (slow) */
	struct delivery *held[128];
	unsigned n_held;
	unsigned calls, max_queued;
	int64_t last[SUBJECTS];    /* last id seen per subject */
	unsigned char seen[MAX_EVENTS + 1];
	bool disorder, dup;
	struct engine *e;
};

struct fixture {
	char dir[64];
	char path[96];
	struct config *cfg;
	uv_loop_t loop;
	struct engine *e;
	bool drained;
};

static void rec_deliver(struct handler *h, struct delivery *d)
{
	struct rec *r = h->data;
	int64_t id = d->ev->pub.id;
	int s = d->ev->subject[1] - '0';
	unsigned q = dispatch_handler_queued(h);

	delivery_started(d);
	r->calls++;
	if (q > r->max_queued)
		r->max_queued = q;
	assert_true(id > 0 && id <= MAX_EVENTS);
	assert_true(s >= 0 && s < SUBJECTS);
	if (r->seen[id])
		r->dup = true;
	r->seen[id] = 1;
	if (id <= r->last[s])
		r->disorder = true;
	r->last[s] = id;
	if (r->hold) {
		assert_true(r->n_held < 128);
		r->held[r->n_held++] = d;
		return;
	}
	dispatch_done(d, 0, NULL);
}

/* Complete the deliveries held in flight (done). */
static unsigned rec_release(struct rec *r)
{
	struct delivery *held[128];
	unsigned n = r->n_held;

	memcpy(held, r->held, n * sizeof(*held));
	r->n_held = 0;
	for (unsigned i = 0; i < n; i++)
		dispatch_done(held[i], 0, NULL);
	return n;
}

static const struct handler_ops rec_ops = {
	.deliver = rec_deliver,
};

static void rec_reset(struct rec *r, const char *name, bool hold)
{
	memset(r, 0, sizeof(*r));
	r->name = name;
	r->hold = hold;
}

static struct handler *rec_handler(struct rec *r)
{
	struct handler *h = handler_new(&rec_ops, r->name);

	h->data = r;
	return h;
}

static unsigned rec_count(const struct rec *r)
{
	unsigned n = 0;

	for (unsigned i = 1; i <= MAX_EVENTS; i++)
		n += r->seen[i];
	return n;
}

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));
	const char *tmp = getenv("TMPDIR");

	snprintf(fx->dir, sizeof(fx->dir), "%s/test_backlog.XXXXXX",
		 tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	snprintf(fx->path, sizeof(fx->path), "%s/journal.db", fx->dir);
	fx->cfg = config_new_default();
	free(fx->cfg->state_dir);
	fx->cfg->state_dir = xstrdup(fx->dir);
	fx->cfg->dispatch.timeout_ms = 600000; /* held calls never time out */
	fx->cfg->dispatch.concurrency = 16;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	DIR *d = opendir(fx->dir);
	struct dirent *de;

	while (d != NULL && (de = readdir(d)) != NULL) {
		char p[512];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", fx->dir, de->d_name);
		unlink(p);
	}
	if (d != NULL)
		closedir(d);
	rmdir(fx->dir);
	config_free(&fx->cfg);
	free(fx);
	return 0;
}

static void start(struct fixture *fx, struct rec **recs, size_t n)
{
	struct journal_settings js = { .path = fx->path };
	struct journal *j = NULL;
	const char *err = NULL;

	assert_int_equal(uv_loop_init(&fx->loop), 0);
	if (journal_open(&js, &j, &err) < 0)
		fail_msg("journal_open: %s", err);
	assert_int_equal(engine_new(&fx->loop, fx->cfg, j, &fx->e, &err), 0);
	engine_set_window(fx->e, WINDOW);
	for (size_t i = 0; i < n; i++) {
		recs[i]->e = fx->e;
		assert_int_equal(engine_handler_add(fx->e, rec_handler(recs[i]),
						    &err), 0);
	}
	engine_start(fx->e);
}

static void emit(struct fixture *fx, unsigned n)
{
	const char *err = NULL;

	for (unsigned i = 0; i < n; i++) {
		char subject[8];

		snprintf(subject, sizeof(subject), "s%u", i % SUBJECTS);
		if (engine_submit(fx->e, "test.event", subject, "test", NULL,
				  NULL, NULL, &err) < 0)
			fail_msg("submit: %s", err);
	}
}

static void tick(uv_timer_t *t)
{
	(void)t;
}

struct until {
	struct fixture *fx;
	struct rec *r;
	unsigned n;
};

static bool until_count(const struct until *u)
{
	return rec_count(u->r) >= u->n;
}

/* Run the loop until r has n events (at most 20 s). */
static void run_until_count(struct fixture *fx, struct rec *r, unsigned n)
{
	struct until u = { fx, r, n };
	int64_t end = mono_ms() + 20000;
	uv_timer_t ticker;

	uv_timer_init(&fx->loop, &ticker);
	uv_timer_start(&ticker, tick, 5, 5);
	while (!until_count(&u) && mono_ms() < end)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&ticker, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	if (!until_count(&u))
		fail_msg("%s: %u of %u events", r->name, rec_count(r), n);
}

static void drained(void *ctx)
{
	((struct fixture *)ctx)->drained = true;
}

/* Stop the engine; held deliveries of recs are completed first. */
static void stop(struct fixture *fx, struct rec **recs, size_t n)
{
	engine_stop(fx->e, NULL, drained, fx);
	for (size_t i = 0; i < n; i++)
		rec_release(recs[i]);
	while (!fx->drained)
		uv_run(&fx->loop, UV_RUN_ONCE);
	engine_finish(fx->e);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	engine_free(&fx->e);
	fx->drained = false;
}

/* A slow handler (its calls held in flight) with a backlog of many
 * windows: the fast handler gets every event meanwhile, the slow one
 * holds at most its window in memory; once it goes on, it gets every
 * event, in order per subject, once. */
static void test_slow_does_not_hold_back(void **state)
{
	struct fixture *fx = *state;
	static struct rec fast, slow;
	struct rec *recs[] = { &fast, &slow };
	const unsigned n = 20 * WINDOW;
	json_t *st;

	rec_reset(&fast, "fast", false);
	rec_reset(&slow, "slow", true);
	start(fx, recs, 2);
	emit(fx, n);
	run_until_count(fx, &fast, n);
	assert_false(fast.disorder);
	assert_false(fast.dup);
	/* the slow one: its calls in flight, the rest of its window queued,
	 * the backlog in the journal */
	assert_true(slow.calls <= WINDOW);
	assert_true(slow.max_queued <= WINDOW);
	assert_true(fast.max_queued <= WINDOW);
	assert_true(dispatch_queued(engine_dispatch(fx->e)) <= 2 * WINDOW);
	assert_true(engine_handler_behind(engine_handler_find(fx->e, "slow")));
	assert_false(engine_handler_behind(engine_handler_find(fx->e, "fast")));
	st = engine_status(fx->e);
	assert_true(json_is_true(json_object_get(
		json_array_get(json_object_get(st, "handlers"), 1), "behind")));
	json_decref(st);

	/* the slow one drains its backlog from the journal, window by
	 * window */
	slow.hold = false;
	rec_release(&slow);
	run_until_count(fx, &slow, n);
	assert_false(slow.disorder);
	assert_false(slow.dup);
	assert_true(slow.max_queued <= WINDOW);
	assert_int_equal(slow.calls, n);
	assert_false(engine_handler_behind(engine_handler_find(fx->e, "slow")));
	stop(fx, recs, 2);
}

/* Events emitted while the slow handler refills still reach it in order:
 * a refill and new events from the group commit interleave per subject
 * without a swap or a duplicate. */
static void test_refill_while_emitting(void **state)
{
	struct fixture *fx = *state;
	static struct rec fast, slow;
	struct rec *recs[] = { &fast, &slow };
	const unsigned n = 10 * WINDOW;

	rec_reset(&fast, "fast", false);
	rec_reset(&slow, "slow", true);
	start(fx, recs, 2);
	emit(fx, n);
	run_until_count(fx, &fast, n);
	slow.hold = false;
	rec_release(&slow);
	emit(fx, n); /* while it refills */
	run_until_count(fx, &slow, 2 * n);
	run_until_count(fx, &fast, 2 * n);
	assert_false(slow.disorder);
	assert_false(slow.dup);
	assert_false(fast.disorder);
	assert_int_equal(slow.calls, 2 * n);
	assert_int_equal(fast.calls, 2 * n);
	stop(fx, recs, 2);
}

/* A restart resumes every handler's backlog, the part past its window
 * included, in order. */
static void test_restart_resumes(void **state)
{
	struct fixture *fx = *state;
	static struct rec fast, slow, fast2, slow2;
	struct rec *recs[] = { &fast, &slow };
	struct rec *recs2[] = { &fast2, &slow2 };
	const unsigned n = 12 * WINDOW;
	unsigned done;

	rec_reset(&fast, "fast", false);
	rec_reset(&slow, "slow", true);
	start(fx, recs, 2);
	emit(fx, n);
	run_until_count(fx, &fast, n);
	done = slow.n_held; /* completed (done) by stop */
	stop(fx, recs, 2);

	rec_reset(&fast2, "fast", false);
	rec_reset(&slow2, "slow", false);
	start(fx, recs2, 2);
	run_until_count(fx, &slow2, n - done);
	assert_int_equal(fast2.calls, 0);
	assert_int_equal(slow2.calls, n - done);
	assert_false(slow2.disorder);
	assert_false(slow2.dup);
	/* every event reached the slow handler once across both runs */
	for (unsigned i = 1; i <= n; i++)
		assert_int_equal(slow.seen[i] + slow2.seen[i], 1);
	stop(fx, recs2, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_slow_does_not_hold_back,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_refill_while_emitting,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_resumes, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
