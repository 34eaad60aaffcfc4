/* The event bus: see engine.h. */
#include "engine.h"
#include "control.h"
#include "dispatch.h"
#include "hmap.h"
#include "journal.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* Memory bound: each handler holds at most a window of deliveries in
 * memory; past it, its new deliveries stay in the journal only and are
 * read back (that handler's rows only) as its window drains below a
 * quarter (engine_window).  A handler's backlog, however large, thus
 * costs one window of memory, and never holds back another handler: a
 * handler 20 ms an event behind 100,000 events leaves the others'
 * deliveries flowing straight from the group commit.  The window is
 * ENGINE_QUEUE_TOTAL shared among the handlers, between
 * ENGINE_WINDOW_MIN (many handlers: the total then grows by MIN per
 * handler) and ENGINE_WINDOW_MAX (a lone handler: as much as the old
 * shared queue). */
#define ENGINE_QUEUE_TOTAL 16384
#define ENGINE_WINDOW_MIN 512
#define ENGINE_WINDOW_MAX 8192
/* A bulk producer held back (engine_when_drained) waits at most this long
 * for one handler to drain to a quarter of its window: past it, the
 * handler is taken as slower than the producer and put behind at once
 * (its next deliveries wait in the journal), so it no longer holds the
 * producer, and so every other handler, to its pace.  The log plugin
 * drains a quarter window in a few ms; a 20 ms exec hook never does. */
#define ENGINE_HOLD_MS 50

struct submit {
	struct event *ev;
	engine_submit_cb *cb;
	void *ctx;
	struct submit *next;
};

struct listener {
	engine_listen_fn *fn;
	void *ctx;
	struct listener *next;
};

struct drain_waiter {
	void (*fn)(void *ctx);
	void *ctx;
	int64_t deadline_ms; /* mono */
	struct drain_waiter *next;
};

struct result {
	struct journal_delivery jd; /* strings owned */
};

struct engine {
	uv_loop_t *loop;
	const struct config *config;
	struct journal *journal;
	struct dispatch *dispatch;
	struct engine_router router;    /* mode NULL: every handler local */
	engine_status_fn *status_extra;
	void *status_ctx;

	struct hmap *handlers;          /* name -> handler */
	struct handler **hlist;         /* in registration order */
	size_t n_hlist;

	pthread_mutex_t lock;           /* incoming */
	struct submit *in_head, *in_tail;
	size_t in_count;
	uv_async_t async;
	uv_prepare_t prepare;

	struct result *results;
	size_t n_results, cap_results;

	struct listener *listeners;
	struct metrics *metrics;
	struct ledger *ledger;
	struct hmap *suspects;  /* "id\thandler" of deliveries that were running
				   when the last process died: run one at a
				   time until they end (safe mode) */
	engine_enrich_fn *enrich;
	void *enrich_ctx;

	pthread_mutex_t own_lock;
	struct hmap *own_writes;        /* path -> expiry (mono ms) */

	int64_t started_ms;
	/* some handler's refill_pending is set: engine_refill at the end of
	 * the next flush (see handler->spill_from) */
	bool refill_pending;
	unsigned window_max; /* engine_set_window, 0: none */
	int64_t last_id;     /* newest event id journaled by this engine */
	uint64_t journaled, journal_errors;
	bool journal_failing, resumed, stopping;
	uv_timer_t retry_timer, prune_timer, stop_timer, pace_timer;
	uv_timer_t drain_timer;
	int64_t hold_until; /* mono ms: ENGINE_HOLD_MS for the waiters */
	struct drain_waiter *drain_head; /* engine_when_drained, in order */
	int64_t last_commit_ns;
	int64_t stop_deadline;
	bool (*busy_fn)(void *ctx);
	void (*drained_cb)(void *ctx);
	void *stop_ctx;
};

static void engine_prepare_run(uv_prepare_t *p);
static void engine_pace_cb(uv_timer_t *t);
static void engine_drain_cb(uv_timer_t *t);

/* Group commit pacing: at most one commit per ENGINE_PACE_NS under load
 * (everything that arrived meanwhile goes into it); at once when idle. */
#define ENGINE_PACE_NS (2 * 1000 * 1000)

static void engine_schedule_flush(struct engine *e)
{
	int64_t wait_ns;

	if (e->journal_failing || uv_is_active((uv_handle_t *)&e->prepare) ||
	    uv_is_active((uv_handle_t *)&e->pace_timer))
		return;
	wait_ns = e->last_commit_ns + ENGINE_PACE_NS - mono_ns();
	if (wait_ns <= 0)
		uv_prepare_start(&e->prepare, engine_prepare_run);
	else
		uv_timer_start(&e->pace_timer, engine_pace_cb,
			       (uint64_t)(wait_ns + 999999) / 1000000, 0);
}

/* ---- backpressure ---- */

/* A handler's window (most deliveries it holds in memory) and the mark
 * below which a spilled handler is refilled. */
unsigned engine_window(const struct engine *e)
{
	size_t n = e->n_hlist > 0 ? e->n_hlist : 1;
	size_t w = ENGINE_QUEUE_TOTAL / n;

	if (w < ENGINE_WINDOW_MIN)
		w = ENGINE_WINDOW_MIN;
	if (w > ENGINE_WINDOW_MAX)
		w = ENGINE_WINDOW_MAX;
	if (e->window_max != 0 && w > e->window_max)
		w = e->window_max;
	return (unsigned)w;
}

void engine_set_window(struct engine *e, unsigned max)
{
	e->window_max = max;
}

static unsigned engine_window_low(const struct engine *e)
{
	return engine_window(e) / 4;
}

/* True when a bulk producer may go on: every handler that keeps up (its
 * deliveries all in memory) is down to a quarter of its window.  A
 * handler that is behind (its backlog in the journal) is not waited for:
 * it would hold every producer, and so every other handler, to its
 * pace; more events for it only lengthen its backlog in the journal. */
static bool engine_drained(const struct engine *e)
{
	unsigned low = engine_window_low(e);

	for (size_t i = 0; i < e->n_hlist; i++) {
		const struct handler *h = e->hlist[i];

		if (h->spill_from == 0 && dispatch_handler_queued(h) > low)
			return false;
	}
	return true;
}

/* Run the drain waiters: all of them, or those past their deadline. */
static void engine_drain_run(struct engine *e, bool all)
{
	struct drain_waiter **pp = &e->drain_head, *run = NULL, **run_tail = &run;
	int64_t now = mono_ms(), next = INT64_MAX;

	while (*pp != NULL) {
		struct drain_waiter *w = *pp;

		if (all || w->deadline_ms <= now) {
			*pp = w->next;
			w->next = NULL;
			*run_tail = w;
			run_tail = &w->next;
		} else {
			if (w->deadline_ms < next)
				next = w->deadline_ms;
			pp = &w->next;
		}
	}
	if (e->drain_head == NULL) {
		uv_timer_stop(&e->drain_timer);
		e->hold_until = 0;
	} else {
		if (e->hold_until == 0)
			e->hold_until = now + ENGINE_HOLD_MS;
		if (e->hold_until > now && e->hold_until < next)
			next = e->hold_until;
		uv_timer_start(&e->drain_timer, engine_drain_cb,
			       (uint64_t)(next > now ? next - now : 0), 0);
	}
	/* callbacks last: they may add waiters */
	while (run != NULL) {
		struct drain_waiter *w = run;

		run = w->next;
		w->fn(w->ctx);
		free(w);
	}
}

/* Put every handler that holds the producers back behind (see
 * ENGINE_HOLD_MS): its deliveries from the next event on wait in the
 * journal, read back as its window drains. */
static void engine_hold_expired(struct engine *e)
{
	unsigned low = engine_window_low(e);

	for (size_t i = 0; i < e->n_hlist; i++) {
		struct handler *h = e->hlist[i];

		if (h->spill_from != 0 || dispatch_handler_queued(h) <= low)
			continue;
		h->spill_from = e->last_id + 1;
		log_debug("%s: slower than the producers: its deliveries from "
			  "event %lld wait in the journal", h->name,
			  (long long)h->spill_from);
	}
}

static void engine_drain_cb(uv_timer_t *t)
{
	struct engine *e = t->data;

	if (e->drain_head != NULL && mono_ms() >= e->hold_until) {
		engine_hold_expired(e);
		if (engine_drained(e)) {
			engine_drain_run(e, true);
			return;
		}
	}
	engine_drain_run(e, false);
}

void engine_when_drained(struct engine *e, unsigned max_ms,
			 void (*fn)(void *ctx), void *ctx)
{
	struct drain_waiter *w, **pp;

	if (e->stopping || e->dispatch == NULL || engine_drained(e) ||
	    max_ms == 0) {
		fn(ctx);
		return;
	}
	w = xcalloc(1, sizeof(*w));
	w->fn = fn;
	w->ctx = ctx;
	w->deadline_ms = mono_ms() + max_ms;
	for (pp = &e->drain_head; *pp != NULL; pp = &(*pp)->next)
		;
	*pp = w;
	if (!uv_is_active((uv_handle_t *)&e->drain_timer)) {
		e->hold_until = mono_ms() + ENGINE_HOLD_MS;
		uv_timer_start(&e->drain_timer, engine_drain_cb,
			       max_ms < ENGINE_HOLD_MS ? max_ms : ENGINE_HOLD_MS,
			       0);
	}
}

/* ---- results from the dispatcher ---- */

static void engine_result(const struct journal_delivery *jd, void *ctx)
{
	struct engine *e = ctx;
	struct handler *h;
	struct result *r;

	if (e->n_results == e->cap_results) {
		e->cap_results = e->cap_results ? e->cap_results * 2 : 256;
		e->results = xrealloc(e->results,
				      e->cap_results * sizeof(*e->results));
	}
	metrics_delivery(e->metrics, jd->handler, jd->state, jd->duration_us);
	h = hmap_get(e->handlers, jd->handler);
	if (h != NULL && h->spill_from != 0 && !h->refill_pending &&
	    dispatch_handler_queued(h) <= engine_window_low(e)) {
		h->refill_pending = true;
		e->refill_pending = true;
	}
	if (e->suspects != NULL) {
		char key[160];

		snprintf(key, sizeof(key), "%lld\t%s", (long long)jd->event_id,
			 jd->handler);
		if (hmap_del(e->suspects, key) != NULL &&
		    hmap_count(e->suspects) == 0) {
			hmap_free(&e->suspects, NULL);
			dispatch_set_concurrency(e->dispatch,
						 e->config->dispatch.concurrency);
			log_info("safe mode over: the deliveries that were "
				 "running at the last crash have all ended");
		}
	}
	if (e->drain_head != NULL && engine_drained(e))
		engine_drain_run(e, true);
	r = &e->results[e->n_results++];
	r->jd = *jd;
	r->jd.handler = xstrdup(jd->handler);
	r->jd.last_error = jd->last_error ? xstrdup(jd->last_error) : NULL;
	engine_schedule_flush(e);
}

static void engine_results_clear(struct engine *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)e->results[i].jd.handler);
		free((char *)e->results[i].jd.last_error);
	}
	if (n == 0)
		return;
	memmove(e->results, e->results + n,
		(e->n_results - n) * sizeof(*e->results));
	e->n_results -= n;
}

static void engine_release(struct handler *h, void *ctx)
{
	(void)ctx;
	handler_free_unowned(&h);
}

/* ---- in-flight ledger ---- */

static void engine_call(struct delivery *d, bool start, void *ctx)
{
	struct engine *e = ctx;

	if (start) {
		d->ledger_slot = ledger_claim(e->ledger, d->ev->pub.id,
					      d->h->name);
	} else {
		ledger_release(e->ledger, d->ledger_slot);
		d->ledger_slot = -1;
	}
}

/* A delivery that was running when the previous process died: count it as
 * a failed attempt (dead at max_attempts), so a plugin that crashes the
 * daemon on one event cannot make it crash forever. */
static void engine_leftover(int64_t event_id, const char *handler, void *ctx)
{
	struct engine *e = ctx;
	json_t *ev = NULL, *d;
	const char *err = NULL;
	size_t i;

	if (journal_get_event(e->journal, event_id, &ev, &err) < 0)
		return;
	json_array_foreach(json_object_get(ev, "deliveries"), i, d) {
		const char *hn = json_string_value(json_object_get(d, "handler"));
		const char *st = json_string_value(json_object_get(d, "state"));
		struct journal_delivery jd;

		const char *dn = json_string_value(json_object_get(d, "node"));

		if (hn == NULL || strcmp(hn, handler) != 0 || st == NULL ||
		    strcmp(st, "done") == 0 || strcmp(st, "dead") == 0)
			continue;
		/* MariaDB journal: another node's fan-out row of the handler */
		if (dn != NULL && dn[0] != '\0' && strcmp(dn, e->config->node) != 0)
			continue;
		jd = (struct journal_delivery){
			.event_id = event_id, .handler = handler,
			.attempts = (unsigned)json_integer_value(
					    json_object_get(d, "attempts")) + 1,
			.last_error = "ophookd died during this call (a crash, "
				      "kill -9 or power loss)",
			.started_ms = now_ms(), /* when it was found */
		};
		jd.state = jd.attempts >= e->config->journal.max_attempts
				   ? DELIVERY_DEAD
				   : DELIVERY_FAILED;
		jd.next_ms = now_ms();
		struct handler *h = hmap_get(e->handlers, handler);

		/* a call made in a process of its own cannot have crashed
		 * ophookd: only in-process calls are suspects (and a handler
		 * not registered yet, to be safe) */
		if (jd.state == DELIVERY_FAILED &&
		    (h == NULL || !h->out_of_process)) {
			char key[160];

			if (e->suspects == NULL)
				e->suspects = hmap_new();
			snprintf(key, sizeof(key), "%lld\t%s",
				 (long long)event_id, handler);
			hmap_put(e->suspects, key, (void *)1);
		}
		if (journal_delivery_update(e->journal, &jd, &err) == 0)
			log_msg(jd.state == DELIVERY_DEAD ? LOG_ERROR_L : LOG_WARN_L,
				handler, "event %lld was being delivered when "
				"ophookd died: attempt %u counted as failed%s",
				(long long)event_id, jd.attempts,
				jd.state == DELIVERY_DEAD ? "; the delivery is dead" : "");
	}
	json_decref(ev);
}

/* ---- memory bound: each handler's backlog, refilled in order ---- */

static void engine_retry_cb(uv_timer_t *t);

struct refill_ctx {
	struct engine *e;
	struct handler *h;
	unsigned window, count;
	bool stopped;
};

static int engine_refill_row(const struct journal_event *je,
			     const struct journal_delivery *jd, void *ctx)
{
	struct refill_ctx *rc = ctx;
	struct event *ev;

	/* one row per event for a handler: stop at a full window */
	if (dispatch_handler_queued(rc->h) >= rc->window) {
		rc->h->spill_from = je->id;
		rc->stopped = true;
		return 1;
	}
	ev = event_from_row(je->id, je->type, je->subject, je->source,
			    je->node, je->time_ms, je->payload);
	if (ev == NULL) {
		log_error("journal: event %lld has a payload that is not "
			  "JSON; skipped", (long long)je->id);
		return 0;
	}
	dispatch_enqueue(rc->e->dispatch, rc->h, ev, jd->attempts, jd->state,
			 jd->next_ms);
	event_unref(&ev);
	rc->count++;
	return 0;
}

/* Load h's deliveries that wait in the journal only, from h->spill_from on
 * in id order, up to its window (loop thread).  Returns how many. */
static unsigned engine_refill_handler(struct engine *e, struct handler *h)
{
	struct refill_ctx rc = { .e = e, .h = h, .window = engine_window(e) };
	const char *err = NULL;
	int64_t from = h->spill_from;

	h->refill_pending = false;
	if (from == 0)
		return 0;
	if (journal_load_pending_handler(e->journal, h->name, from,
					 engine_refill_row, &rc, &err) < 0) {
		log_error("journal: loading the backlog of %s: %s", h->name,
			  err);
		/* tried again after its next result, or in a second when
		 * none is coming */
		if (dispatch_handler_queued(h) == 0) {
			h->refill_pending = e->refill_pending = true;
			uv_timer_start(&e->retry_timer, engine_retry_cb, 1000, 0);
		}
		return rc.count;
	}
	if (!rc.stopped)
		h->spill_from = 0;
	log_debug("%s: refilled %u deliveries from event %lld%s", h->name,
		  rc.count, (long long)from,
		  rc.stopped ? " (more wait in the journal)" : "");
	return rc.count;
}

/* Refill every handler that asked for it (end of a flush). */
static void engine_refill(struct engine *e)
{
	e->refill_pending = false;
	for (size_t i = 0; i < e->n_hlist; i++)
		if (e->hlist[i]->refill_pending)
			engine_refill_handler(e, e->hlist[i]);
}

/* ---- group commit ---- */

struct pending_delivery {
	struct handler *h;
	struct event *ev;
};

static void engine_retry_cb(uv_timer_t *t)
{
	struct engine *e = t->data;

	e->journal_failing = false;
	engine_schedule_flush(e);
}

void engine_journal_reachable(struct engine *e)
{
	if (!e->journal_failing)
		return;
	uv_timer_stop(&e->retry_timer);
	engine_retry_cb(&e->retry_timer);
}

static void engine_flush_failed(struct engine *e, struct submit *batch,
				struct submit *batch_tail, const char *what,
				const char *err)
{
	if (!e->journal_failing)
		log_error("journal: %s: %s (events are kept in memory and "
			  "journaled when it works again; retrying every "
			  "second)", what, err);
	e->journal_errors++;
	e->journal_failing = true;
	if (batch != NULL) {
		pthread_mutex_lock(&e->lock);
		batch_tail->next = e->in_head;
		e->in_head = batch;
		if (e->in_tail == NULL)
			e->in_tail = batch_tail;
		pthread_mutex_unlock(&e->lock);
	}
	uv_timer_start(&e->retry_timer, engine_retry_cb, 1000, 0);
}

static int engine_journal_event(struct engine *e, struct submit *s,
				struct pending_delivery **pd, size_t *n_pd,
				size_t *cap_pd, const char **err_r)
{
	struct event *ev = s->ev;
	struct journal_event je;
	char *text;
	int ret;

	text = event_payload_dump(ev->payload);
	if (text == NULL) {
		*err_r = "cannot serialize payload";
		return -EINVAL;
	}
	je = (struct journal_event){
		.type = ev->type, .subject = ev->subject, .source = ev->source,
		.node = ev->node, .time_ms = ev->time_ms, .payload = text,
	};
	ret = journal_append(e->journal, &je, err_r);
	if (ret < 0) {
		free(text);
		return ret;
	}
	event_set_id_text(ev, je.id, text);
	if (je.id > e->last_id)
		e->last_id = je.id;
	free(text);
	for (size_t i = 0; i < e->n_hlist; i++) {
		struct handler *h = e->hlist[i];
		enum config_mode mode;

		if (!handler_matches(h, ev->type))
			continue;
		/* fan-out rows come from the cluster poller, shared ones are
		 * claimed by whichever node gets them first */
		mode = e->router.mode != NULL
			       ? e->router.mode(e->router.ctx, h->name)
			       : CONFIG_MODE_LOCAL;
		if (mode == CONFIG_MODE_FANOUT)
			continue;
		ret = journal_delivery_add(e->journal, je.id, h->name, err_r);
		if (ret < 0)
			return ret;
		if (mode == CONFIG_MODE_SHARED)
			continue;
		if (*n_pd == *cap_pd) {
			*cap_pd = *cap_pd ? *cap_pd * 2 : 64;
			*pd = xrealloc(*pd, *cap_pd * sizeof(**pd));
		}
		(*pd)[(*n_pd)++] = (struct pending_delivery){ h, ev };
	}
	return 0;
}

static void engine_flush(struct engine *e)
{
	struct submit *batch, *tail = NULL, *s, *next;
	struct pending_delivery *pd = NULL;
	size_t n_pd = 0, cap_pd = 0, n_res = e->n_results, count = 0;
	unsigned max = e->config->journal.batch ? e->config->journal.batch
						: 4096, window;
	const char *err = NULL;
	bool more;

	if (e->journal_failing)
		return;
	pthread_mutex_lock(&e->lock);
	batch = e->in_head;
	for (s = batch; s != NULL && count < max; s = s->next) {
		tail = s;
		count++;
	}
	if (tail != NULL) {
		e->in_head = tail->next;
		if (e->in_head == NULL)
			e->in_tail = NULL;
		tail->next = NULL;
		e->in_count -= count;
	} else {
		batch = NULL;
	}
	more = e->in_head != NULL;
	pthread_mutex_unlock(&e->lock);
	if (batch == NULL && n_res == 0) {
		if (e->refill_pending)
			engine_refill(e);
		return;
	}

	if ((batch != NULL ? journal_begin(e->journal, &err)
			   : journal_begin_results(e->journal, &err)) < 0) {
		engine_flush_failed(e, batch, tail, "begin", err);
		return;
	}
	for (s = batch; s != NULL; s = s->next) {
		if (e->enrich != NULL)
			e->enrich(s->ev->payload, s->ev->type, s->ev->subject,
				  e->enrich_ctx);
		if (engine_journal_event(e, s, &pd, &n_pd, &cap_pd, &err) < 0)
			goto fail;
	}
	for (size_t i = 0; i < n_res; i++) {
		int r = journal_delivery_update(e->journal, &e->results[i].jd,
						&err);

		/* a row pruned meanwhile: nothing to record, go on */
		if (r == -ENOENT)
			continue;
		if (r < 0)
			goto fail;
	}
	if (journal_commit(e->journal, &err) < 0)
		goto fail;
	e->last_commit_ns = mono_ns();
	e->journal_failing = false;
	if (batch != NULL && e->router.committed != NULL)
		e->router.committed(e->router.ctx);
	engine_results_clear(e, n_res);
	window = engine_window(e);
	for (size_t i = 0; i < n_pd; i++) {
		struct handler *h = pd[i].h;

		/* per handler: once its window is full, every later event
		 * of it stays in the journal until refilled, so its order
		 * per subject holds; the other handlers go on */
		if (h->spill_from == 0 &&
		    dispatch_handler_queued(h) >= window) {
			h->spill_from = pd[i].ev->pub.id;
			log_debug("%s: window full: its deliveries from event "
				  "%lld wait in the journal", h->name,
				  (long long)h->spill_from);
		}
		if (h->spill_from != 0 && pd[i].ev->pub.id >= h->spill_from)
			continue;
		dispatch_enqueue(e->dispatch, h, pd[i].ev, 0,
				 DELIVERY_PENDING, 0);
	}
	free(pd);
	for (s = batch; s != NULL; s = next) {
		next = s->next;
		e->journaled++;
		metrics_event(e->metrics, s->ev->type, s->ev->source);
		for (struct listener *l = e->listeners; l != NULL; l = l->next)
			l->fn(s->ev, l->ctx);
		if (s->cb != NULL)
			s->cb(s->ev, NULL, s->ctx);
		event_unref(&s->ev);
		free(s);
	}
	if (e->refill_pending)
		engine_refill(e);
	if (more || e->n_results > 0)
		engine_schedule_flush(e);
	return;
fail:
	journal_rollback(e->journal);
	free(pd);
	engine_flush_failed(e, batch, tail, "commit", err ? err : "failed");
}

static void engine_prepare_run(uv_prepare_t *p)
{
	struct engine *e = p->data;

	uv_prepare_stop(p);
	engine_flush(e);
}

static void engine_pace_cb(uv_timer_t *t)
{
	engine_flush(t->data);
}

static void engine_async_cb(uv_async_t *as)
{
	engine_schedule_flush(as->data);
}

/* ---- submit ---- */

int engine_submit(struct engine *e, const char *type, const char *subject,
		  const char *source, json_t *payload, engine_submit_cb *cb,
		  void *ctx, const char **error_r)
{
	struct submit *s;
	struct event *ev;

	ev = event_new(type, subject, source, e->config->node, now_ms(),
		       payload, error_r);
	if (ev == NULL)
		return -EINVAL;
	s = xcalloc(1, sizeof(*s));
	s->ev = ev;
	s->cb = cb;
	s->ctx = ctx;
	pthread_mutex_lock(&e->lock);
	if (e->in_tail != NULL)
		e->in_tail->next = s;
	else
		e->in_head = s;
	e->in_tail = s;
	e->in_count++;
	pthread_mutex_unlock(&e->lock);
	uv_async_send(&e->async);
	return 0;
}

int engine_replay(struct engine *e, int64_t id, engine_submit_cb *cb,
		  void *ctx, const char **error_r)
{
	json_t *row, *payload;
	const char *type, *subject;
	int ret;

	ret = journal_get_event(e->journal, id, &row, error_r);
	if (ret < 0)
		return ret;
	type = json_string_value(json_object_get(row, "type"));
	subject = json_string_value(json_object_get(row, "subject"));
	payload = json_deep_copy(json_object_get(row, "payload"));
	if (type == NULL || subject == NULL || !json_is_object(payload)) {
		json_decref(row);
		json_decref(payload);
		*error_r = "journal row is incomplete";
		return -EINVAL;
	}
	json_object_del(payload, "id");
	json_object_set_new(payload, "replay_of", json_integer(id));
	ret = engine_submit(e, type, subject, "replay", payload, cb, ctx,
			    error_r);
	json_decref(row);
	return ret;
}

void *engine_listen(struct engine *e, engine_listen_fn *fn, void *ctx)
{
	struct listener *l = xcalloc(1, sizeof(*l));

	l->fn = fn;
	l->ctx = ctx;
	l->next = e->listeners;
	e->listeners = l;
	return l;
}

void engine_unlisten(struct engine *e, void **handle)
{
	struct listener *target = *handle;

	*handle = NULL;
	for (struct listener **pp = &e->listeners; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == target) {
			*pp = target->next;
			free(target);
			return;
		}
	}
}

/* ---- handlers ---- */

/* Resume the pending deliveries of h (NULL: of every handler) from the
 * journal, in id order, up to each handler's window; the rest is read as
 * the window drains. */
static void engine_resume(struct engine *e, struct handler *only)
{
	unsigned count = 0, behind = 0;

	for (size_t i = 0; i < e->n_hlist; i++) {
		struct handler *h = e->hlist[i];

		if (only != NULL && h != only)
			continue;
		h->spill_from = 1;
		count += engine_refill_handler(e, h);
		behind += h->spill_from != 0;
	}
	if (count > 0 || behind > 0)
		log_info("resumed %u pending deliveries%s", count,
			 behind > 0 ? " (more are loaded as these finish)"
				    : "");
}

int engine_handler_add(struct engine *e, struct handler *h,
		       const char **error_r)
{
	if (hmap_get(e->handlers, h->name) != NULL) {
		*error_r = "a handler with this name is already registered";
		return -EEXIST;
	}
	hmap_put(e->handlers, h->name, h);
	e->hlist = xrealloc(e->hlist, (e->n_hlist + 1) * sizeof(*e->hlist));
	e->hlist[e->n_hlist++] = h;
	if (e->resumed)
		engine_resume(e, h);
	return 0;
}

void engine_handler_remove(struct engine *e, const char *name)
{
	struct handler *h = hmap_del(e->handlers, name);

	if (h == NULL)
		return;
	for (size_t i = 0; i < e->n_hlist; i++) {
		if (e->hlist[i] == h) {
			memmove(e->hlist + i, e->hlist + i + 1,
				(e->n_hlist - i - 1) * sizeof(*e->hlist));
			e->n_hlist--;
			break;
		}
	}
	dispatch_handler_remove(e->dispatch, h);
}

struct handler *engine_handler_find(struct engine *e, const char *name)
{
	return hmap_get(e->handlers, name);
}

const char *engine_delivery_live(struct engine *e, const char *handler,
				 const char *node, const char *subject,
				 int64_t id, struct journal_delivery *d_r)
{
	const struct delivery *d = NULL;
	struct handler *h = handler != NULL ? engine_handler_find(e, handler)
					    : NULL;
	const char *live;

	if (handler == NULL ||
	    (node != NULL && node[0] != '\0' && strcmp(node, e->config->node) != 0))
		return NULL;
	if (h == NULL)
		return "orphaned";
	live = dispatch_delivery_live(h, subject, id, &d);
	if (d != NULL && d_r != NULL) {
		d_r->state = d->state;
		d_r->attempts = d->attempts;
		d_r->next_ms = d->next_ms;
	}
	if (live == NULL && h->spill_from != 0 && id >= h->spill_from)
		live = "backlog";
	return live;
}

/* ---- own writes (no loops) ---- */

void engine_own_write(struct engine *e, const char *path)
{
	pthread_mutex_lock(&e->own_lock);
	hmap_put(e->own_writes, path, (void *)(intptr_t)(mono_ms() + 5000));
	pthread_mutex_unlock(&e->own_lock);
}

bool engine_own_write_take(struct engine *e, const char *path)
{
	intptr_t until;

	pthread_mutex_lock(&e->own_lock);
	until = (intptr_t)hmap_del(e->own_writes, path);
	pthread_mutex_unlock(&e->own_lock);
	return until != 0 && until >= mono_ms();
}

/* ---- status ---- */

/* "orphaned": {"deliveries": N, "handlers": [..]}: the open deliveries
 * (pending, failed, dead) of handlers the journal knows but that no
 * longer exist (a removed hook file, a disabled plugin), when any. */
static void engine_status_orphans(struct engine *e, json_t *st,
				  json_t *handlers)
{
	static const char *const open_states[] = { "pending", "failed",
						   "dead" };
	json_t *names = json_array(), *c;
	json_int_t n = 0;
	const char *k;

	json_object_foreach(handlers, k, c) {
		json_int_t hn = 0;

		if (hmap_get(e->handlers, k) != NULL)
			continue;
		for (size_t i = 0; i < 3; i++)
			hn += json_integer_value(
				json_object_get(c, open_states[i]));
		if (hn == 0)
			continue;
		n += hn;
		json_array_append_new(names, json_string(k));
	}
	if (n > 0)
		json_object_set_new(st, "orphaned",
				    json_pack("{s:I,s:o}", "deliveries", n,
					      "handlers", names));
	else
		json_decref(names);
}

json_t *engine_status(struct engine *e)
{
	json_t *st = json_object(), *hs = json_array(), *counts = NULL;
	const char *err = NULL;
	int64_t now = now_ms();
	size_t incoming;

	pthread_mutex_lock(&e->lock);
	incoming = e->in_count;
	pthread_mutex_unlock(&e->lock);
	json_object_set_new(st, "version", json_string(OPHOOK_VERSION));
	json_object_set_new(st, "node", json_string(e->config->node));
	json_object_set_new(st, "pid", json_integer(getpid()));
	json_object_set_new(st, "uptime_s",
			    json_integer((now_ms() - e->started_ms) / 1000));
	json_object_set_new(st, "incoming", json_integer((json_int_t)incoming));
	json_object_set_new(st, "queued",
			    json_integer(dispatch_queued(e->dispatch)));
	json_object_set_new(st, "inflight",
			    json_integer(dispatch_inflight(e->dispatch)));
	json_object_set_new(st, "journaled", json_integer((json_int_t)e->journaled));
	json_object_set_new(st, "journal_ok", json_boolean(!e->journal_failing));
	json_object_set_new(st, "journal_errors",
			    json_integer((json_int_t)e->journal_errors));
	if (journal_counts(e->journal, &counts, &err) == 0) {
		json_object_set_new(st, "journal", counts);
		engine_status_orphans(e, st, json_object_get(counts,
							     "handlers"));
	} else {
		json_object_set_new(st, "journal_error", json_string(err));
	}
	for (size_t i = 0; i < e->n_hlist; i++) {
		struct handler *h = e->hlist[i];
		json_t *pats = json_array();

		for (size_t j = 0; j < h->n_patterns; j++)
			json_array_append_new(pats, json_string(h->patterns[j]));
		int64_t lag = dispatch_handler_lag_ms(h, now);

		json_array_append_new(
			hs, json_pack("{s:s, s:o, s:i, s:i, s:b, s:I}", "name",
				      h->name, "patterns", pats, "inflight",
				      h->inflight, "queued",
				      dispatch_handler_queued(h), "behind",
				      h->spill_from != 0, "lag_ms",
				      (json_int_t)lag));
	}
	json_object_set_new(st, "handlers", hs);
	if (e->status_extra != NULL)
		e->status_extra(st, e->status_ctx);
	return st;
}

/* ---- metrics ---- */

void engine_metric_count(struct engine *e, const char *name, uint64_t n)
{
	metrics_count(e->metrics, name, n);
}

char *engine_metrics_text(void *ctx)
{
	struct engine *e = ctx;
	struct metrics_gauges g;

	pthread_mutex_lock(&e->lock);
	g.incoming = e->in_count;
	pthread_mutex_unlock(&e->lock);
	g.queued = dispatch_queued(e->dispatch);
	g.inflight = dispatch_inflight(e->dispatch);
	g.journal_errors = e->journal_errors;
	g.journal_ok = !e->journal_failing;
	g.uptime_s = (now_ms() - e->started_ms) / 1000;
	json_t *counts = NULL;
	const char *err = NULL;

	g.journal_handlers = NULL;
	if (e->journal != NULL && journal_counts(e->journal, &counts, &err) == 0)
		g.journal_handlers = json_object_get(counts, "handlers");
	json_t *lag = json_object();
	int64_t now = now_ms();

	for (size_t i = 0; i < e->n_hlist; i++)
		json_object_set_new(
			lag, e->hlist[i]->name,
			json_real((double)dispatch_handler_lag_ms(e->hlist[i],
								  now) /
				  1000.0));
	g.handler_lag = lag;
	char *text = metrics_render(e->metrics, &g);

	json_decref(counts);
	json_decref(lag);
	return text;
}

static void engine_cmd_metrics(struct control_reply *reply, json_t *args,
			       json_t *req, void *ctx)
{
	char *text = engine_metrics_text(ctx);

	(void)args;
	(void)req;
	control_reply_ok(&reply, json_string(text), text, 0);
	free(text);
}

/* ---- operating commands: retry ---- */

static const char *engine_arg(json_t *args, size_t i)
{
	return json_string_value(json_array_get(args, i));
}

/* What retry and discard act on, and what they did. */
struct engine_requeue {
	int64_t id;          /* one event, or 0: every event */
	const char *handler; /* one handler, or NULL: every handler */
	bool discard;        /* discard instead of retry */
	bool failed_too;     /* retry: failed as well as dead */
	bool dead_only;      /* discard: only dead rows, even of orphans */
	unsigned done, now, skipped;
	json_t *orphans;     /* handler names skipped: not loaded */
	struct pending_delivery *pd; /* to enqueue after the commit */
	size_t n_pd, cap_pd;
};

static struct event *engine_row_event(json_t *ev)
{
	char *text = json_dumps(json_object_get(ev, "payload"), JSON_COMPACT);
	struct event *row = event_from_row(
		json_integer_value(json_object_get(ev, "id")),
		json_string_value(json_object_get(ev, "type")),
		json_string_value(json_object_get(ev, "subject")),
		json_string_value(json_object_get(ev, "source")),
		json_string_value(json_object_get(ev, "node")),
		json_integer_value(json_object_get(ev, "time_ms")),
		text != NULL ? text : "{}");

	free(text);
	return row;
}

/* Retry or discard the deliveries of one event row (a journal_get_event
 * object) that rq selects.  Within a results transaction. */
static int engine_requeue_event(struct engine *e, struct engine_requeue *rq,
				json_t *ev, const char **err_r)
{
	json_t *dels = json_object_get(ev, "deliveries"), *d;
	int64_t id = json_integer_value(json_object_get(ev, "id"));
	const char *subject = json_string_value(json_object_get(ev, "subject"));
	struct event *row = NULL;
	size_t j;
	int ret = 0;

	json_array_foreach(dels, j, d) {
		const char *hn = json_string_value(json_object_get(d, "handler"));
		const char *sn = json_string_value(json_object_get(d, "state"));
		const char *node = json_string_value(json_object_get(d, "node"));
		struct handler *h = hn ? hmap_get(e->handlers, hn) : NULL;
		enum delivery_state st;
		struct journal_delivery jd;

		if (hn == NULL || sn == NULL ||
		    delivery_state_parse(sn, &st) < 0 ||
		    (rq->handler != NULL && strcmp(hn, rq->handler) != 0))
			continue;
		/* another node's row (MariaDB fan-out): its node's to run */
		if (node != NULL && node[0] != '\0' &&
		    strcmp(node, e->config->node) != 0)
			continue;
		if (rq->discard) {
			/* a loaded handler's failed or pending rows may be
			 * in memory: only dead ones are discarded; an
			 * orphan's rows are never run, so any open one */
			if (st != DELIVERY_DEAD &&
			    (h != NULL || rq->dead_only ||
			     st == DELIVERY_DONE || st == DELIVERY_DISCARDED))
				continue;
		} else {
			if (st != DELIVERY_DEAD &&
			    !(rq->failed_too && st == DELIVERY_FAILED))
				continue;
			if (h == NULL) {
				rq->skipped++;
				if (json_object_get(rq->orphans, hn) == NULL)
					json_object_set_new(rq->orphans, hn,
							    json_true());
				continue;
			}
			if (st == DELIVERY_FAILED &&
			    dispatch_delivery_live(h, subject, id, NULL) !=
				    NULL) {
				/* held in memory: run now if it waits */
				if (dispatch_retry_delivery(e->dispatch, h,
							    subject, id))
					rq->now++;
				continue;
			}
		}
		jd = (struct journal_delivery){
			.event_id = id, .handler = hn,
			.state = rq->discard ? DELIVERY_DISCARDED
					     : DELIVERY_PENDING,
			.attempts = rq->discard
				? (unsigned)json_integer_value(
					  json_object_get(d, "attempts"))
				: 0,
			.last_error = json_string_value(
				json_object_get(d, "last_error")),
			.duration_us = json_integer_value(
				json_object_get(d, "duration_us")),
		};
		ret = journal_delivery_update(e->journal, &jd, err_r);
		if (ret == -ENOENT) /* pruned meanwhile */
			continue;
		if (ret < 0)
			break;
		rq->done++;
		/* behind: its refill reads the row, now pending */
		if (rq->discard || (h->spill_from != 0 && id >= h->spill_from))
			continue;
		if (row == NULL && (row = engine_row_event(ev)) == NULL)
			continue;
		if (rq->n_pd == rq->cap_pd) {
			rq->cap_pd = rq->cap_pd ? rq->cap_pd * 2 : 16;
			rq->pd = xrealloc(rq->pd, rq->cap_pd * sizeof(*rq->pd));
		}
		event_ref(row);
		rq->pd[rq->n_pd++] = (struct pending_delivery){ h, row };
	}
	event_unref(&row);
	return ret;
}

/* Retry or discard what rq selects, in one results transaction; the
 * requeued deliveries of handlers not behind go to the dispatcher after
 * the commit.  0 or -errno with *err_r. */
static int engine_requeue(struct engine *e, struct engine_requeue *rq,
			  const char **err_r)
{
	json_t *events = NULL, *ev;
	size_t i;
	int ret;

	/* results not yet journaled first: a dead result flushed after the
	 * update would undo it */
	if (!e->journal_failing && e->n_results > 0)
		engine_flush(e);
	if (e->journal_failing) {
		*err_r = "the journal is failing; try again";
		return -EAGAIN;
	}
	if (rq->id != 0) {
		ret = journal_get_event(e->journal, rq->id, &ev, err_r);
		if (ret < 0)
			return ret;
		events = json_array();
		json_array_append_new(events, ev);
	} else {
		const char *states[3] = { "dead", NULL, NULL };

		if (rq->failed_too)
			states[1] = "failed";
		if (rq->discard && !rq->dead_only) {
			states[1] = "failed";
			states[2] = "pending";
		}
		events = json_array();
		for (size_t k = 0; k < 3 && states[k] != NULL; k++) {
			struct journal_filter f = { .state = states[k],
						    .limit = 100000 };
			json_t *part = NULL;

			ret = journal_query(e->journal, &f, &part, err_r);
			if (ret < 0) {
				json_decref(events);
				return ret;
			}
			json_array_extend(events, part);
			json_decref(part);
		}
	}
	ret = journal_begin_results(e->journal, err_r);
	if (ret < 0) {
		json_decref(events);
		return ret;
	}
	json_array_foreach(events, i, ev) {
		ret = engine_requeue_event(e, rq, ev, err_r);
		if (ret < 0)
			break;
	}
	if (ret == 0)
		ret = journal_commit(e->journal, err_r);
	if (ret < 0) {
		journal_rollback(e->journal);
		rq->done = 0;
	}
	for (size_t k = 0; k < rq->n_pd; k++) {
		if (ret == 0)
			dispatch_enqueue(e->dispatch, rq->pd[k].h, rq->pd[k].ev,
					 0, DELIVERY_PENDING, 0);
		event_unref(&rq->pd[k].ev);
	}
	free(rq->pd);
	rq->pd = NULL;
	rq->n_pd = rq->cap_pd = 0;
	json_decref(events);
	return ret;
}

/* "exec:x, plugin:y" of rq->orphans, or NULL when none. */
static char *engine_orphans_text(json_t *orphans)
{
	char *text = NULL;
	const char *k;
	json_t *v;

	json_object_foreach(orphans, k, v) {
		char *t = xasprintf("%s%s%s", text ? text : "",
				    text ? ", " : "", k);

		free(text);
		text = t;
	}
	return text;
}

/* Parse "[ID] [--handler H] [extra]"; extra (may be NULL) is the one flag
 * allowed besides.  0, or -EINVAL. */
static int engine_requeue_args(json_t *args, const char *extra,
			       int64_t *id_r, const char **handler_r,
			       bool *extra_r)
{
	*id_r = 0;
	*handler_r = NULL;
	*extra_r = false;
	for (size_t i = 0; i < json_array_size(args); i++) {
		const char *a = engine_arg(args, i);
		char *end;
		long long v;

		if (a == NULL)
			return -EINVAL;
		if (strcmp(a, "--handler") == 0) {
			*handler_r = engine_arg(args, ++i);
			if (*handler_r == NULL || (*handler_r)[0] == '\0')
				return -EINVAL;
		} else if (extra != NULL && strcmp(a, extra) == 0) {
			*extra_r = true;
		} else if (*id_r == 0 && a[0] >= '0' && a[0] <= '9') {
			errno = 0;
			v = strtoll(a, &end, 10);
			if (errno != 0 || *end != '\0' || v <= 0)
				return -EINVAL;
			*id_r = v;
		} else {
			return -EINVAL;
		}
	}
	return 0;
}

static void engine_cmd_retry(struct control_reply *reply, json_t *args,
			     json_t *req, void *ctx)
{
	struct engine *e = ctx;
	struct engine_requeue rq = { .orphans = json_object() };
	const char *err = NULL;
	unsigned waiting = 0;
	bool failed;
	char *text, *orphans;
	json_t *res;

	(void)req;
	if (engine_requeue_args(args, "--failed", &rq.id, &rq.handler,
				&failed) < 0 ||
	    (failed && (rq.id != 0 || rq.handler != NULL)) ||
	    (!failed && rq.id == 0 && rq.handler == NULL)) {
		json_decref(rq.orphans);
		control_reply_error(&reply, 2,
				    "usage: retry --failed | retry ID "
				    "[--handler H] | retry --handler H");
		return;
	}
	if (failed)
		waiting = dispatch_retry_now(e->dispatch);
	else
		rq.failed_too = true;
	if (!failed && rq.handler != NULL &&
	    hmap_get(e->handlers, rq.handler) == NULL) {
		json_decref(rq.orphans);
		control_reply_error(&reply, 1,
				    "retry: no handler %s is loaded (discard "
				    "its deliveries with discard --handler %s)",
				    rq.handler, rq.handler);
		return;
	}
	if (engine_requeue(e, &rq, &err) < 0) {
		json_decref(rq.orphans);
		control_reply_error(&reply, rq.id != 0 ? 1 : 2, "retry: %s",
				    err);
		return;
	}
	orphans = engine_orphans_text(rq.orphans);
	if (failed && rq.skipped > 0)
		text = xasprintf("retrying now: %u failed (waiting for "
				 "backoff), %u dead; skipped %u of handlers "
				 "that no longer exist: %s (discard them with "
				 "discard --handler H)",
				 waiting, rq.done, rq.skipped, orphans);
	else if (failed)
		text = xasprintf("retrying now: %u failed (waiting for "
				 "backoff), %u dead", waiting, rq.done);
	else if (rq.now > 0)
		text = xasprintf("requeued %u deliveries (%u failed ones "
				 "waiting for backoff run now)",
				 rq.done + rq.now, rq.now);
	else
		text = xasprintf("requeued %u deliveries", rq.done);
	free(orphans);
	if (failed) {
		res = json_pack("{s:i,s:i,s:i,s:o}", "failed", waiting, "dead",
				rq.done, "skipped", rq.skipped, "orphans",
				rq.orphans);
	} else {
		res = json_pack("{s:i,s:i}", "requeued", rq.done + rq.now,
				"now", rq.now);
		json_decref(rq.orphans);
	}
	control_reply_ok(&reply, res, text, 0);
	free(text);
}

static void engine_cmd_discard(struct control_reply *reply, json_t *args,
			       json_t *req, void *ctx)
{
	struct engine *e = ctx;
	struct engine_requeue rq = { .discard = true };
	const char *err = NULL;
	char *text;

	(void)req;
	if (engine_requeue_args(args, "--dead", &rq.id, &rq.handler,
				&rq.dead_only) < 0 ||
	    rq.handler == NULL || (rq.id != 0 && rq.dead_only)) {
		control_reply_error(&reply, 2,
				    "usage: discard ID --handler H | discard "
				    "--handler H [--dead]");
		return;
	}
	if (rq.id == 0 && !rq.dead_only &&
	    hmap_get(e->handlers, rq.handler) != NULL) {
		control_reply_error(&reply, 2,
				    "discard: %s is loaded: give --dead (its "
				    "dead deliveries) or an event ID",
				    rq.handler);
		return;
	}
	if (engine_requeue(e, &rq, &err) < 0) {
		control_reply_error(&reply, rq.id != 0 ? 1 : 2, "discard: %s",
				    err);
		return;
	}
	text = xasprintf("discarded %u deliveries of %s", rq.done,
			 rq.handler);
	control_reply_ok(&reply, json_pack("{s:i}", "discarded", rq.done),
			 text, rq.done > 0 || rq.id == 0 ? 0 : 1);
	free(text);
}

const struct control_command engine_commands[] = {
	{"metrics", engine_cmd_metrics},
	{"retry", engine_cmd_retry},
	{"discard", engine_cmd_discard},
	{NULL, NULL},
};

/* ---- lifecycle ---- */

static void engine_prune_cb(uv_timer_t *t)
{
	struct engine *e = t->data;
	unsigned deleted = 0;
	const char *err = NULL;
	int64_t before = now_ms() - (int64_t)e->config->journal.retention_s * 1000;

	if (journal_prune(e->journal, before, &deleted, &err) < 0)
		log_warn("journal: prune: %s", err);
	else if (deleted > 0)
		log_info("journal: pruned %u old events", deleted);
}

int engine_new(uv_loop_t *loop, const struct config *config,
	       struct journal *journal, struct engine **e_r,
	       const char **error_r)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	struct dispatch_settings ds = {
		.call_fn = engine_call,
		.concurrency = config->dispatch.concurrency,
		.timeout_ms = config->dispatch.timeout_ms,
		.max_attempts = config->journal.max_attempts,
		.backoff_ms = config->journal.backoff_ms,
		.backoff_max_ms = config->journal.backoff_max_ms,
	};
	char *path;

	e->loop = loop;
	e->config = config;
	e->journal = journal;
	e->started_ms = now_ms();
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->own_lock, NULL);
	e->own_writes = hmap_new();
	e->handlers = hmap_new();
	e->dispatch = dispatch_new(loop, &ds, engine_result, engine_release, e);
	uv_async_init(loop, &e->async, engine_async_cb);
	e->async.data = e;
	uv_prepare_init(loop, &e->prepare);
	e->prepare.data = e;
	uv_timer_init(loop, &e->retry_timer);
	e->retry_timer.data = e;
	uv_timer_init(loop, &e->prune_timer);
	e->prune_timer.data = e;
	uv_timer_init(loop, &e->stop_timer);
	e->stop_timer.data = e;
	uv_timer_init(loop, &e->pace_timer);
	e->pace_timer.data = e;
	uv_timer_init(loop, &e->drain_timer);
	e->drain_timer.data = e;
	path = xasprintf("%s/inflight", config->state_dir);
	if (ledger_open(path, 4096, &e->ledger, error_r) < 0)
		log_warn("%s: %s (crash accounting off)", path, *error_r);
	free(path);
	e->metrics = metrics_new();
	*e_r = e;
	return 0;
}

void engine_start(struct engine *e)
{
	if (e->ledger != NULL) {
		unsigned n = ledger_take_leftovers(e->ledger, engine_leftover, e);

		if (n > 0)
			log_warn("%u deliveries were running when ophookd last "
				 "stopped without finishing them", n);
		if (e->suspects != NULL) {
			/* one at a time, so a crash blames only its culprit */
			dispatch_set_concurrency(e->dispatch, 1);
			log_warn("safe mode: running deliveries one at a time "
				 "until the %zu that were running at the crash "
				 "have ended", hmap_count(e->suspects));
		}
	}
	engine_resume(e, NULL);
	e->resumed = true;
	uv_timer_start(&e->prune_timer, engine_prune_cb, 60 * 1000,
		       3600 * 1000);
	uv_unref((uv_handle_t *)&e->prune_timer);
}

bool engine_handler_behind(const struct handler *h)
{
	return h->spill_from != 0;
}

unsigned engine_queue_least(struct engine *e)
{
	unsigned least = 0;

	for (size_t i = 0; i < e->n_hlist; i++) {
		unsigned q = dispatch_handler_queued(e->hlist[i]);

		if (i == 0 || q < least)
			least = q;
	}
	return least;
}

size_t engine_handler_count(struct engine *e)
{
	return e->n_hlist;
}

static void engine_closed(uv_handle_t *h)
{
	(void)h;
}

#define ENGINE_STOP_JOURNAL_MS 5000

/* Journal everything still in memory (shutdown).  A journal that fails
 * (a database server restarting) is retried for a few seconds: results
 * left out run their handlers again at the next start, events left out
 * were never acknowledged (the watcher finds its changes again). */
static void engine_flush_all(struct engine *e)
{
	int64_t until = mono_ns() + ENGINE_STOP_JOURNAL_MS * 1000000LL;
	size_t events = 0;

	for (int i = 0; i < 100000 &&
			(e->in_head != NULL || e->n_results > 0); i++) {
		if (e->journal_failing) {
			if (mono_ns() >= until)
				break;
			uv_sleep(200);
			e->journal_failing = false;
		}
		engine_flush(e);
	}
	if (e->in_head == NULL && e->n_results == 0)
		return;
	for (struct submit *s = e->in_head; s != NULL; s = s->next)
		events++;
	log_error("stopping with %zu events and %zu delivery results not "
		  "journaled (the journal failed for %d s): those deliveries "
		  "run again at the next start", events, e->n_results,
		  ENGINE_STOP_JOURNAL_MS / 1000);
}

static void engine_stop_poll(uv_timer_t *t)
{
	struct engine *e = t->data;
	bool busy;

	engine_flush(e);
	busy = !dispatch_idle(e->dispatch) ||
	       (e->busy_fn != NULL && e->busy_fn(e->stop_ctx));
	if (busy && mono_ms() < e->stop_deadline)
		return;
	if (busy)
		log_warn("stopping with %u deliveries still running (they "
			 "stay pending in the journal)",
			 dispatch_inflight(e->dispatch));
	uv_timer_stop(&e->stop_timer);
	engine_flush_all(e);
	e->drained_cb(e->stop_ctx);
}

void engine_stop(struct engine *e, bool (*busy_fn)(void *ctx),
		 void (*drained_cb)(void *ctx), void *ctx)
{
	if (e->stopping)
		return;
	e->stopping = true;
	e->busy_fn = busy_fn;
	e->drained_cb = drained_cb;
	e->stop_ctx = ctx;
	dispatch_pause(e->dispatch);
	engine_drain_run(e, true); /* nothing drains from now on */
	e->stop_deadline = mono_ms() + 10000;
	uv_timer_start(&e->stop_timer, engine_stop_poll, 0, 20);
}

void engine_finish(struct engine *e)
{
	while (e->n_hlist > 0)
		engine_handler_remove(e, e->hlist[0]->name);
	engine_flush_all(e);
	uv_timer_stop(&e->stop_timer);
	uv_close((uv_handle_t *)&e->async, engine_closed);
	uv_close((uv_handle_t *)&e->prepare, engine_closed);
	uv_close((uv_handle_t *)&e->retry_timer, engine_closed);
	uv_close((uv_handle_t *)&e->prune_timer, engine_closed);
	uv_close((uv_handle_t *)&e->stop_timer, engine_closed);
	uv_close((uv_handle_t *)&e->pace_timer, engine_closed);
	uv_close((uv_handle_t *)&e->drain_timer, engine_closed);
	dispatch_free(&e->dispatch);
	journal_close(&e->journal);
	ledger_close(&e->ledger);
}

void engine_free(struct engine **ep)
{
	struct engine *e = *ep;

	if (e == NULL)
		return;
	*ep = NULL;
	for (size_t i = 0; i < e->n_results; i++) {
		free((char *)e->results[i].jd.handler);
		free((char *)e->results[i].jd.last_error);
	}
	free(e->results);
	while (e->drain_head != NULL) { /* never run: engine not stopped */
		struct drain_waiter *w = e->drain_head;

		e->drain_head = w->next;
		free(w);
	}
	while (e->in_head != NULL) {
		struct submit *s = e->in_head;

		e->in_head = s->next;
		event_unref(&s->ev);
		free(s);
	}
	while (e->listeners != NULL) {
		struct listener *l = e->listeners;

		e->listeners = l->next;
		free(l);
	}
	hmap_free(&e->handlers, NULL);
	free(e->hlist);
	hmap_free(&e->own_writes, NULL);
	hmap_free(&e->suspects, NULL);
	metrics_free(&e->metrics);
	pthread_mutex_destroy(&e->lock);
	pthread_mutex_destroy(&e->own_lock);
	free(e);
}

uv_loop_t *engine_loop(struct engine *e) { return e->loop; }
const struct config *engine_config(struct engine *e) { return e->config; }
struct journal *engine_journal(struct engine *e) { return e->journal; }
struct dispatch *engine_dispatch(struct engine *e) { return e->dispatch; }
int64_t engine_started_ms(struct engine *e) { return e->started_ms; }

void engine_set_enricher(struct engine *e, engine_enrich_fn *fn, void *ctx)
{
	e->enrich = fn;
	e->enrich_ctx = ctx;
}

void engine_set_router(struct engine *e, const struct engine_router *r)
{
	if (r != NULL)
		e->router = *r;
	else
		e->router = (struct engine_router){ 0 };
}

void engine_set_status_fn(struct engine *e, engine_status_fn *fn, void *ctx)
{
	e->status_extra = fn;
	e->status_ctx = ctx;
}
