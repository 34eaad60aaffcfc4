#include "engine.h"
#include "cluster.h"
#include "control.h"
#include "ctlcmds.h"
#include "dispatch.h"
#include "hmap.h"
#include "hooks.h"
#include "journal.h"
#include "journal_mysql.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "paneldb.h"
#include "pluginhost.h"
#include "util.h"
#include "watch.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


/* Memory bound on deliveries held in memory (see spill_from). */
#define ENGINE_QUEUE_HIGH 8192
#define ENGINE_QUEUE_LOW 2048

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
	struct config *config;
	struct journal *journal;
	struct dispatch *dispatch;
	struct pluginhost *plugins;
	struct control *control;
	struct watch *watch;
	struct hooks *hooks;
	struct paneldb *paneldb;
	struct cluster *cluster;        /* journal backend mysql only */

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
	struct metrics_http *metrics_http;
	engine_enrich_fn *enrich;
	void *enrich_ctx;

	pthread_mutex_t own_lock;
	struct hmap *own_writes;        /* path -> expiry (mono ms) */

	int64_t started_ms;
	/* Memory bound: past ENGINE_QUEUE_HIGH queued deliveries, new events
	 * stay in the journal only ("spilled"), from event id spill_from on;
	 * they are loaded back in id order when the queue drains. */
	int64_t spill_from;
	bool refill_pending;
	uint64_t journaled, journal_errors;
	bool journal_failing, resumed, stopping;
	uv_timer_t retry_timer, prune_timer, stop_timer, pace_timer;
	uv_timer_t drain_timer;
	struct drain_waiter *drain_head; /* engine_when_drained, in order */
	int64_t last_commit_ns;
	int64_t stop_deadline;
	void (*stop_cb)(void *ctx);
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
	if (e->drain_head == NULL)
		uv_timer_stop(&e->drain_timer);
	else
		uv_timer_start(&e->drain_timer, engine_drain_cb,
			       (uint64_t)(next - now), 0);
	/* callbacks last: they may add waiters */
	while (run != NULL) {
		struct drain_waiter *w = run;

		run = w->next;
		w->fn(w->ctx);
		free(w);
	}
}

static void engine_drain_cb(uv_timer_t *t)
{
	engine_drain_run(t->data, false);
}

void engine_when_drained(struct engine *e, unsigned max_ms,
			 void (*fn)(void *ctx), void *ctx)
{
	struct drain_waiter *w, **pp;

	if (e->stopping || e->dispatch == NULL ||
	    dispatch_queued(e->dispatch) <= ENGINE_QUEUE_LOW || max_ms == 0) {
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
	if (!uv_is_active((uv_handle_t *)&e->drain_timer))
		uv_timer_start(&e->drain_timer, engine_drain_cb, max_ms, 0);
}

/* ---- results from the dispatcher ---- */

static void engine_result(const struct journal_delivery *jd, void *ctx)
{
	struct engine *e = ctx;
	struct result *r;

	if (e->n_results == e->cap_results) {
		e->cap_results = e->cap_results ? e->cap_results * 2 : 256;
		e->results = xrealloc(e->results,
				      e->cap_results * sizeof(*e->results));
	}
	metrics_delivery(e->metrics, jd->handler, jd->state, jd->duration_us);
	if (e->spill_from != 0 && !e->refill_pending &&
	    dispatch_queued(e->dispatch) <= ENGINE_QUEUE_LOW)
		e->refill_pending = true;
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
	if (e->drain_head != NULL &&
	    dispatch_queued(e->dispatch) <= ENGINE_QUEUE_LOW)
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

static void handler_destroy(struct handler *h)
{
	if (h->ops->free != NULL)
		h->ops->free(h);
	for (size_t i = 0; i < h->n_patterns; i++)
		free(h->patterns[i]);
	free(h->patterns);
	free(h->name);
	free(h);
}

static void engine_release(struct handler *h, void *ctx)
{
	(void)ctx;
	handler_destroy(h);
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
		};
		jd.state = jd.attempts >= e->config->journal.max_attempts
				   ? DELIVERY_DEAD
				   : DELIVERY_FAILED;
		jd.next_ms = now_ms();
		if (jd.state == DELIVERY_FAILED) {
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

/* ---- memory bound: spill to the journal, refill in order ---- */


struct refill_ctx {
	struct engine *e;
	struct event *last;
	unsigned count;
	bool stopped;
};

static int engine_refill_row(const struct journal_event *je,
			     const struct journal_delivery *jd, void *ctx)
{
	struct refill_ctx *rc = ctx;
	struct handler *h = hmap_get(rc->e->handlers, jd->handler);

	if (rc->last == NULL || rc->last->pub.id != je->id) {
		/* stop at an event boundary */
		if (dispatch_queued(rc->e->dispatch) >= ENGINE_QUEUE_HIGH) {
			rc->e->spill_from = je->id;
			rc->stopped = true;
			return 1;
		}
		event_unref(&rc->last);
		rc->last = event_from_row(je->id, je->type, je->subject,
					  je->source, je->node, je->time_ms,
					  je->payload);
		if (rc->last == NULL)
			return 0;
	}
	if (h == NULL)
		return 0;
	dispatch_enqueue(rc->e->dispatch, h, rc->last, jd->attempts, jd->state,
			 jd->next_ms);
	rc->count++;
	return 0;
}

/* Load spilled deliveries back from the journal (loop thread). */
static void engine_refill(struct engine *e)
{
	struct refill_ctx rc = { .e = e };
	const char *err = NULL;
	int64_t from = e->spill_from;

	e->refill_pending = false;
	if (from == 0)
		return;
	if (journal_load_pending_from(e->journal, from, engine_refill_row, &rc,
				      &err) < 0) {
		log_error("journal: loading spilled deliveries: %s", err);
		e->refill_pending = true;
		return;
	}
	event_unref(&rc.last);
	if (!rc.stopped)
		e->spill_from = 0;
	log_debug("refilled %u deliveries from event %lld%s", rc.count,
		  (long long)from, rc.stopped ? " (more spilled)" : "");
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
	free(text);
	for (size_t i = 0; i < e->n_hlist; i++) {
		struct handler *h = e->hlist[i];
		enum config_mode mode;

		if (!handler_matches(h, ev->type))
			continue;
		/* fan-out rows come from the cluster poller, shared ones are
		 * claimed by whichever node gets them first */
		mode = cluster_mode(e->cluster, h->name);
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
						: 4096;
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
	if (batch == NULL && n_res == 0)
		return;

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
	if (batch != NULL)
		cluster_kick(e->cluster);
	engine_results_clear(e, n_res);
	for (size_t i = 0; i < n_pd; i++) {
		/* per event: once spilled, every later event stays in the
		 * journal until refilled, so order per subject holds */
		if (e->spill_from == 0 && (i == 0 || pd[i].ev != pd[i - 1].ev) &&
		    dispatch_queued(e->dispatch) >= ENGINE_QUEUE_HIGH) {
			e->spill_from = pd[i].ev->pub.id;
			log_debug("queue full: events from %lld stay in the "
				  "journal until the queue drains",
				  (long long)e->spill_from);
		}
		if (e->spill_from != 0 && pd[i].ev->pub.id >= e->spill_from)
			continue;
		dispatch_enqueue(e->dispatch, pd[i].h, pd[i].ev, 0,
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

struct resume_ctx {
	struct engine *e;
	struct handler *only; /* NULL: every handler */
	struct event *last;
	unsigned count, orphans;
};

static int engine_resume_row(const struct journal_event *je,
			     const struct journal_delivery *jd, void *ctx)
{
	struct resume_ctx *rc = ctx;
	struct handler *h = hmap_get(rc->e->handlers, jd->handler);

	if (h == NULL || (rc->only != NULL && h != rc->only)) {
		if (h == NULL)
			rc->orphans++;
		return 0;
	}
	/* spilled rows come back through engine_refill for every handler */
	if (rc->e->spill_from != 0 && je->id >= rc->e->spill_from)
		return 1;
	if (rc->last == NULL || rc->last->pub.id != je->id) {
		event_unref(&rc->last);
		rc->last = event_from_row(je->id, je->type, je->subject,
					  je->source, je->node, je->time_ms,
					  je->payload);
		if (rc->last == NULL) {
			log_error("journal: event %lld has a payload that is "
				  "not JSON; skipped", (long long)je->id);
			return 0;
		}
	}
	dispatch_enqueue(rc->e->dispatch, h, rc->last, jd->attempts, jd->state,
			 jd->next_ms);
	rc->count++;
	return 0;
}

static void engine_resume(struct engine *e, struct handler *only)
{
	struct resume_ctx rc = { .e = e, .only = only };
	const char *err = NULL;

	if (only == NULL) {
		/* everything pending, in id order, up to the memory bound; the
		 * rest is loaded as the queue drains */
		e->spill_from = 1;
		engine_refill(e);
		if (dispatch_queued(e->dispatch) > 0 || e->spill_from != 0)
			log_info("resumed %u pending deliveries%s",
				 dispatch_queued(e->dispatch),
				 e->spill_from != 0 ? " (more are loaded as "
						      "these finish)" : "");
		return;
	}
	if (journal_load_pending(e->journal, engine_resume_row, &rc, &err) < 0)
		log_error("journal: resume: %s", err);
	event_unref(&rc.last);
	if (only == NULL && (rc.count > 0 || rc.orphans > 0))
		log_info("resumed %u pending deliveries (%u for handlers that "
			 "are not loaded)", rc.count, rc.orphans);
}

struct handler *handler_new(const struct handler_ops *ops, const char *name)
{
	struct handler *h = xcalloc(1, sizeof(*h));

	h->ops = ops;
	h->name = xstrdup(name);
	return h;
}

void handler_add_pattern(struct handler *h, const char *pattern)
{
	h->patterns = xrealloc(h->patterns,
			       (h->n_patterns + 1) * sizeof(*h->patterns));
	h->patterns[h->n_patterns++] = xstrdup(pattern);
}

bool handler_matches(const struct handler *h, const char *type)
{
	if (h->n_patterns == 0)
		return true;
	for (size_t i = 0; i < h->n_patterns; i++) {
		if (pattern_match(h->patterns[i], type))
			return true;
	}
	return false;
}

void handler_free_unowned(struct handler **hp)
{
	struct handler *h = *hp;

	*hp = NULL;
	if (h != NULL)
		handler_destroy(h);
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

json_t *engine_status(struct engine *e)
{
	json_t *st = json_object(), *hs = json_array(), *counts = NULL;
	const char *err = NULL;
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
	if (journal_counts(e->journal, &counts, &err) == 0)
		json_object_set_new(st, "journal", counts);
	else
		json_object_set_new(st, "journal_error", json_string(err));
	for (size_t i = 0; i < e->n_hlist; i++) {
		struct handler *h = e->hlist[i];
		json_t *pats = json_array();

		for (size_t j = 0; j < h->n_patterns; j++)
			json_array_append_new(pats, json_string(h->patterns[j]));
		json_array_append_new(hs, json_pack("{s:s, s:o, s:i}", "name",
						    h->name, "patterns", pats,
						    "inflight", h->inflight));
	}
	json_object_set_new(st, "handlers", hs);
	if (e->plugins != NULL)
		json_object_set_new(st, "plugins", pluginhost_list(e->plugins));
	return st;
}

/* ---- metrics ---- */

void engine_metric_count(struct engine *e, const char *name, uint64_t n)
{
	metrics_count(e->metrics, name, n);
}

static char *engine_metrics_text(void *ctx)
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
	return metrics_render(e->metrics, &g);
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

/* ---- operating commands: plugins, retry, reconcile ---- */

static const char *engine_arg(json_t *args, size_t i)
{
	return json_string_value(json_array_get(args, i));
}

static void engine_cmd_plugins_list(struct control_reply *reply, json_t *args,
				    json_t *req, void *ctx)
{
	struct engine *e = ctx;
	json_t *list = pluginhost_list(e->plugins);
	size_t n = json_array_size(list);
	char *text = xstrdup("NAME            ABI  FILE\n");

	(void)args;
	(void)req;
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_array_get(list, i);
		char *t = xasprintf("%s%-15s %-4lld %s\n", text,
				    json_string_value(json_object_get(p, "name")),
				    (long long)json_integer_value(json_object_get(p, "abi")),
				    json_string_value(json_object_get(p, "file")));

		free(text);
		text = t;
	}
	control_reply_ok(&reply, list, text, 0);
	free(text);
}

static void engine_cmd_plugins_op(struct control_reply *reply, json_t *args,
				  const char *op, struct engine *e)
{
	const char *name = engine_arg(args, 0);
	char *err = NULL;
	int ret;

	if (name == NULL || json_array_size(args) != 1) {
		control_reply_error(&reply, 2, "usage: plugins %s NAME", op);
		return;
	}
	if (strcmp(op, "disable") == 0) {
		ret = pluginhost_unload(e->plugins, name);
		if (ret < 0)
			err = xasprintf("plugin %s is not loaded", name);
	} else if (strcmp(op, "enable") == 0) {
		ret = pluginhost_enable(e->plugins, name, &err);
	} else {
		ret = pluginhost_reload(e->plugins, name, &err);
	}
	if (ret < 0) {
		control_reply_error(&reply, ret == -ENOENT ? 1 : 2, "%s",
				    err != NULL ? err : strerror(-ret));
	} else {
		const char *done = strcmp(op, "disable") == 0 ? "disabled"
				   : strcmp(op, "enable") == 0 ? "enabled"
							       : "reloaded";
		char *text = xasprintf("plugin %s: %s", name, done);

		log_info("plugin %s: %s from the control socket", name, done);
		control_reply_ok(&reply, json_pack("{s:s,s:s}", "plugin", name,
						   "done", done),
				 text, 0);
		free(text);
	}
	free(err);
}

static void engine_cmd_plugins_enable(struct control_reply *r, json_t *a,
				      json_t *q, void *ctx)
{
	(void)q;
	engine_cmd_plugins_op(r, a, "enable", ctx);
}

static void engine_cmd_plugins_disable(struct control_reply *r, json_t *a,
				       json_t *q, void *ctx)
{
	(void)q;
	engine_cmd_plugins_op(r, a, "disable", ctx);
}

static void engine_cmd_plugins_reload(struct control_reply *r, json_t *a,
				      json_t *q, void *ctx)
{
	(void)q;
	engine_cmd_plugins_op(r, a, "reload", ctx);
}

/* Dead deliveries back to pending for handlers that are loaded. */
static unsigned engine_retry_dead(struct engine *e, const char **err_r)
{
	struct journal_filter f = { .state = "dead", .limit = 100000 };
	json_t *events = NULL, *ev;
	unsigned n = 0;
	size_t i;

	if (journal_query(e->journal, &f, &events, err_r) < 0)
		return 0;
	json_array_foreach(events, i, ev) {
		json_t *dels = json_object_get(ev, "deliveries"), *d;
		struct event *row = NULL;
		size_t j;

		json_array_foreach(dels, j, d) {
			const char *hn = json_string_value(json_object_get(d, "handler"));
			const char *st = json_string_value(json_object_get(d, "state"));
			struct handler *h = hn ? hmap_get(e->handlers, hn) : NULL;
			struct journal_delivery jd;

			if (h == NULL || st == NULL || strcmp(st, "dead") != 0)
				continue;
			if (row == NULL) {
				char *text = json_dumps(json_object_get(ev, "payload"),
							JSON_COMPACT);

				row = event_from_row(
					json_integer_value(json_object_get(ev, "id")),
					json_string_value(json_object_get(ev, "type")),
					json_string_value(json_object_get(ev, "subject")),
					json_string_value(json_object_get(ev, "source")),
					json_string_value(json_object_get(ev, "node")),
					json_integer_value(json_object_get(ev, "time_ms")),
					text != NULL ? text : "{}");
				free(text);
				if (row == NULL)
					break;
			}
			jd = (struct journal_delivery){
				.event_id = row->pub.id, .handler = h->name,
				.state = DELIVERY_PENDING,
			};
			if (journal_delivery_update(e->journal, &jd, err_r) < 0)
				continue;
			dispatch_enqueue(e->dispatch, h, row, 0, DELIVERY_PENDING, 0);
			n++;
		}
		event_unref(&row);
	}
	json_decref(events);
	return n;
}

static void engine_cmd_retry(struct control_reply *reply, json_t *args,
			     json_t *req, void *ctx)
{
	struct engine *e = ctx;
	const char *a = engine_arg(args, 0), *err = NULL;
	unsigned waiting, dead;
	char *text;

	(void)req;
	if (a == NULL || strcmp(a, "--failed") != 0 || json_array_size(args) != 1) {
		control_reply_error(&reply, 2, "usage: retry --failed");
		return;
	}
	waiting = dispatch_retry_now(e->dispatch);
	dead = engine_retry_dead(e, &err);
	if (err != NULL) {
		control_reply_error(&reply, 2, "journal: %s", err);
		return;
	}
	text = xasprintf("retrying now: %u failed (waiting for backoff), %u dead",
			 waiting, dead);
	control_reply_ok(&reply, json_pack("{s:i,s:i}", "failed", waiting,
					   "dead", dead),
			 text, 0);
	free(text);
}

static void engine_reconciled(unsigned events, void *ctx)
{
	struct control_reply *reply = ctx;
	char *text = xasprintf("reconcile done: %u events", events);

	control_reply_ok(&reply, json_pack("{s:i}", "events", events), text, 0);
	free(text);
}

static void engine_cmd_reconcile(struct control_reply *reply, json_t *args,
				 json_t *req, void *ctx)
{
	struct engine *e = ctx;

	(void)args;
	(void)req;
	if (e->watch == NULL) {
		control_reply_error(&reply, 2, "the watcher is off (watch.enabled: false)");
		return;
	}
	engine_metric_count(e, "reconciles_requested", 1);
	if (watch_reconcile(e->watch, engine_reconciled, reply) < 0)
		control_reply_error(&reply, 2, "reconcile could not start");
}

static const struct control_command engine_commands[] = {
	{"metrics", engine_cmd_metrics},
	{"plugins.list", engine_cmd_plugins_list},
	{"plugins.enable", engine_cmd_plugins_enable},
	{"plugins.disable", engine_cmd_plugins_disable},
	{"plugins.reload", engine_cmd_plugins_reload},
	{"retry", engine_cmd_retry},
	{"reconcile", engine_cmd_reconcile},
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

int engine_new(uv_loop_t *loop, struct config *config, struct engine **e_r,
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
	int ret;

	e->loop = loop;
	uv_loop_set_data(loop, e);
	e->config = config;
	e->started_ms = now_ms();
	ret = mkdir_p(config->state_dir, 0700);
	if (ret < 0) {
		*error_r = "cannot create state_dir";
		free(e);
		return ret;
	}
	if (config->journal.backend != NULL &&
	    strcmp(config->journal.backend, "mysql") == 0) {
		struct jmysql_settings ms = {
			.host = config->journal.host,
			.port = config->journal.port,
			.socket = config->journal.socket,
			.user = config->journal.user,
			.password_file = config->journal.password_file,
			.database = config->journal.database,
			.node = config->node,
		};

		ret = journal_open_mysql(&ms, &e->journal, error_r);
		if (ret == 0)
			cluster_new(e, journal_mysql(e->journal), &e->cluster);
	} else {
		path = xasprintf("%s/journal.db", config->state_dir);
		ret = journal_open(path, config->journal.sync == NULL ||
					 strcmp(config->journal.sync, "normal") != 0,
				   &e->journal, error_r);
		free(path);
	}
	if (ret < 0) {
		free(e);
		return ret;
	}
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
	e->plugins = pluginhost_new(e);
	e->metrics = metrics_new();
	*e_r = e;
	return 0;
}

/* The hooks' panel DB queries (hooks_query_fn); the DB starts after the
 * hooks, so it is looked up at each query. */
static int engine_hooks_db_query(void *ctx, const char *sql, json_t *params,
				 json_t **rows_r, char **error_r)
{
	struct engine *e = ctx;

	if (e->paneldb == NULL) {
		*error_r = xstrdup("no panel database");
		return -ENOTCONN;
	}
	return paneldb_query(e->paneldb, sql, params, rows_r, error_r);
}

int engine_start(struct engine *e, const char **error_r)
{
	const struct hooks_deps hdeps = {
		.db_query = engine_hooks_db_query, .db_ctx = e,
	};
	unsigned loaded = 0;
	int ret;

	pluginhost_load_all(e->plugins, &loaded);
	pluginhost_watch(e->plugins, 2000);
	ret = hooks_start(e, &hdeps, &e->hooks, error_r);
	if (ret < 0)
		log_error("hooks: %s", *error_r);
	ret = paneldb_start(e, &e->paneldb, error_r);
	if (ret < 0)
		log_error("panel db: %s", *error_r);
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
	if (e->cluster != NULL)
		cluster_start(e->cluster);
	ret = control_start(e->loop, e->config->socket != NULL ?
			    e->config->socket : "/run/ophookd.sock",
			    e->config->socket_group, &e->control, error_r);
	if (ret < 0)
		return ret;
	control_register_table(e->control, ctlcmds_commands, e);
	control_register_table(e->control, engine_commands, e);
	control_register_table(e->control, cluster_commands, e);
	if (e->hooks != NULL)
		control_register_table(e->control, hooks_commands, e->hooks);
	if (e->config->metrics_listen != NULL) {
		ret = metrics_http_start(e->loop, e->config->metrics_listen,
					 engine_metrics_text, e,
					 &e->metrics_http, error_r);
		if (ret < 0)
			log_error("metrics_listen %s: %s",
				  e->config->metrics_listen, *error_r);
		else
			log_info("metrics on http://%s/metrics",
				 e->config->metrics_listen);
	}
	if (e->config->watch.enabled) {
		ret = watch_start(e, &e->watch, error_r);
		if (ret < 0)
			log_error("watch: %s", *error_r);
	}
	uv_timer_start(&e->prune_timer, engine_prune_cb, 60 * 1000,
		       3600 * 1000);
	uv_unref((uv_handle_t *)&e->prune_timer);
	log_info("ophookd %s started: %u plugins, %zu handlers, node %s",
		 OPHOOK_VERSION, loaded, e->n_hlist, e->config->node);
	return 0;
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

static void engine_stop_finish(struct engine *e)
{
	engine_flush_all(e);
	hooks_stop(&e->hooks);
	pluginhost_free(&e->plugins);
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
	cluster_free(&e->cluster);
	dispatch_free(&e->dispatch);
	journal_close(&e->journal);
	ledger_close(&e->ledger);
	log_info("ophookd stopped: journal closed");
	if (e->stop_cb != NULL)
		e->stop_cb(e->stop_ctx);
}

static void engine_stop_poll(uv_timer_t *t)
{
	struct engine *e = t->data;
	bool busy;

	engine_flush(e);
	busy = !dispatch_idle(e->dispatch) ||
	       (e->plugins != NULL && pluginhost_busy(e->plugins));
	if (busy && mono_ms() < e->stop_deadline)
		return;
	if (busy)
		log_warn("stopping with %u deliveries still running (they "
			 "stay pending in the journal)",
			 dispatch_inflight(e->dispatch));
	engine_stop_finish(e);
}

void engine_stop(struct engine *e, void (*cb)(void *ctx), void *ctx)
{
	if (e->stopping)
		return;
	e->stopping = true;
	e->stop_cb = cb;
	e->stop_ctx = ctx;
	log_info("stopping");
	watch_stop(&e->watch);
	paneldb_stop(&e->paneldb);
	control_stop(&e->control);
	metrics_http_stop(&e->metrics_http);
	dispatch_pause(e->dispatch);
	engine_drain_run(e, true); /* nothing drains from now on */
	e->stop_deadline = mono_ms() + 10000;
	uv_timer_start(&e->stop_timer, engine_stop_poll, 0, 20);
}

int engine_reload(struct engine *e, const char **error_r)
{
	struct config *nc = NULL;
	char *err = NULL;
	int ret;

	ret = config_load(e->config->file, &nc, &err);
	if (ret < 0) {
		log_error("reload: %s (keeping the running config)", err);
		free(err);
		*error_r = "config has errors; see the log";
		return ret;
	}
	/* Settings that can change live: log level, plugin enable flags
	 * (new plugins get loaded by the drop-in scan). */
	{
		enum log_level lvl;

		if (nc->log_level != NULL &&
		    log_level_parse(nc->log_level, &lvl) == 0)
			log_set_level(lvl);
	}
	for (size_t i = 0; i < nc->n_plugins; i++) {
		if (!nc->plugins[i].enabled)
			pluginhost_unload(e->plugins, nc->plugins[i].name);
	}
	log_info("config reloaded from %s", nc->file);
	config_free(&nc);
	return 0;
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
	config_free(&e->config);
	free(e);
}

uv_loop_t *engine_loop(struct engine *e) { return e->loop; }
const struct config *engine_config(struct engine *e) { return e->config; }
struct journal *engine_journal(struct engine *e) { return e->journal; }
struct dispatch *engine_dispatch(struct engine *e) { return e->dispatch; }
int64_t engine_started_ms(struct engine *e) { return e->started_ms; }
struct control *engine_control(struct engine *e) { return e->control; }
struct paneldb *engine_paneldb(struct engine *e) { return e->paneldb; }
struct watch *engine_watch(struct engine *e) { return e->watch; }

void engine_set_enricher(struct engine *e, engine_enrich_fn *fn, void *ctx)
{
	e->enrich = fn;
	e->enrich_ctx = ctx;
}
