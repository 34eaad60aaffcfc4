#include "dispatch.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A queue of deliveries for one (handler, subject): only its head runs. */
struct lane {
	struct handler *h;
	char *subject;
	struct delivery *head, *tail;
	bool running;      /* head is in flight */
	bool ready;        /* on the ready list */
	bool waiting;      /* head failed, waits for head->next_ms */
	bool parked;       /* serial handler busy */
	struct lane *ready_next;
	struct lane *park_next;   /* in h->parked_head's list */
	struct lane *wait_next, *wait_prev;
};

struct dispatch {
	uv_loop_t *loop;
	struct dispatch_settings set;
	dispatch_result_fn *result_fn;
	dispatch_release_fn *release_fn;
	void *ctx;
	struct lane *ready_head, *ready_tail;
	/* ready lanes, and those of handlers past their share: when all are
	 * (one busy handler), the pump takes the head without a scan */
	unsigned ready_n, ready_over;
	struct lane *wait_head;           /* lanes waiting for a retry */
	struct delivery *inflight_head;   /* for timeout sweeps */
	unsigned inflight, queued;
	bool pumping, paused;
	uv_timer_t retry_timer, sweep_timer;
	int64_t retry_at;                 /* wall ms the retry timer aims at */
	unsigned closed;                  /* timers closed (free at 2) */
};

static void dispatch_pump(struct dispatch *dp);

static void dispatch_result(struct dispatch *dp, struct delivery *d,
			    const char *error, int64_t duration_us)
{
	struct journal_delivery jd = {
		.event_id = d->ev->pub.id,
		.handler = d->h->name,
		.state = d->state,
		.attempts = d->attempts,
		.next_ms = d->next_ms,
		.last_error = error,
		.duration_us = duration_us,
		.started_ms = now_ms() - duration_us / 1000,
	};

	if (jd.started_ms <= 0)
		jd.started_ms = 1;
	dp->result_fn(&jd, dp->ctx);
}

static unsigned dispatch_handler_share(const struct dispatch *dp);

static bool handler_over(const struct dispatch *dp, const struct handler *h)
{
	return h->inflight >= dispatch_handler_share(dp);
}

/* l->ready flips: keep the counts */
static void ready_count(struct dispatch *dp, struct lane *l, bool on)
{
	bool over = handler_over(dp, l->h);

	if (on) {
		dp->ready_n++;
		l->h->ready_n++;
		dp->ready_over += over;
	} else {
		dp->ready_n--;
		l->h->ready_n--;
		dp->ready_over -= over;
	}
	l->ready = on;
}

/* h->inflight moves by one: its ready lanes may cross the share line */
static void handler_inflight(struct dispatch *dp, struct handler *h, bool up)
{
	bool was = handler_over(dp, h);

	if (up)
		h->inflight++;
	else
		h->inflight--;
	if (!was && handler_over(dp, h))
		dp->ready_over += h->ready_n;
	else if (was && !handler_over(dp, h))
		dp->ready_over -= h->ready_n;
}

static void lane_ready(struct dispatch *dp, struct lane *l)
{
	if (l->ready || l->running || l->waiting || l->parked ||
	    l->head == NULL)
		return;
	ready_count(dp, l, true);
	l->ready_next = NULL;
	if (dp->ready_tail != NULL)
		dp->ready_tail->ready_next = l;
	else
		dp->ready_head = l;
	dp->ready_tail = l;
}

static struct lane *lane_get(struct handler *h, const char *subject)
{
	struct lane *l;

	if (h->lanes == NULL)
		h->lanes = hmap_new();
	l = hmap_get(h->lanes, subject);
	if (l == NULL) {
		l = xcalloc(1, sizeof(*l));
		l->h = h;
		l->subject = xstrdup(subject);
		hmap_put(h->lanes, subject, l);
	}
	return l;
}

static void lane_free_if_empty(struct dispatch *dp, struct lane *l)
{
	if (l->head != NULL || l->running || l->ready || l->waiting ||
	    l->parked)
		return;
	hmap_del(l->h->lanes, l->subject);
	free(l->subject);
	free(l);
	(void)dp;
}

static void delivery_free(struct delivery **dd)
{
	struct delivery *d = *dd;

	*dd = NULL;
	event_unref(&d->ev);
	free(d);
}

static void wait_add(struct dispatch *dp, struct lane *l)
{
	l->waiting = true;
	l->wait_prev = NULL;
	l->wait_next = dp->wait_head;
	if (dp->wait_head != NULL)
		dp->wait_head->wait_prev = l;
	dp->wait_head = l;
}

static void wait_del(struct dispatch *dp, struct lane *l)
{
	if (l->wait_prev != NULL)
		l->wait_prev->wait_next = l->wait_next;
	else
		dp->wait_head = l->wait_next;
	if (l->wait_next != NULL)
		l->wait_next->wait_prev = l->wait_prev;
	l->waiting = false;
	l->wait_next = l->wait_prev = NULL;
}

static void dispatch_retry_cb(uv_timer_t *t);

static void dispatch_arm_retry(struct dispatch *dp, int64_t at_ms)
{
	int64_t now = now_ms();

	if (uv_is_active((uv_handle_t *)&dp->retry_timer) &&
	    dp->retry_at <= at_ms)
		return;
	dp->retry_at = at_ms;
	uv_timer_start(&dp->retry_timer, dispatch_retry_cb,
		       at_ms > now ? (uint64_t)(at_ms - now) : 0, 0);
}

static void dispatch_retry_cb(uv_timer_t *t)
{
	struct dispatch *dp = t->data;
	int64_t now = now_ms(), next = INT64_MAX;
	struct lane *l = dp->wait_head, *nl;

	for (; l != NULL; l = nl) {
		nl = l->wait_next;
		if (l->head->next_ms <= now) {
			wait_del(dp, l);
			lane_ready(dp, l);
		} else if (l->head->next_ms < next) {
			next = l->head->next_ms;
		}
	}
	if (next != INT64_MAX)
		dispatch_arm_retry(dp, next);
	dispatch_pump(dp);
}

static void inflight_add(struct dispatch *dp, struct delivery *d)
{
	d->inflight_prev = NULL;
	d->inflight_next = dp->inflight_head;
	if (dp->inflight_head != NULL)
		dp->inflight_head->inflight_prev = d;
	dp->inflight_head = d;
}

static void inflight_del(struct dispatch *dp, struct delivery *d)
{
	if (d->inflight_prev != NULL)
		d->inflight_prev->inflight_next = d->inflight_next;
	else
		dp->inflight_head = d->inflight_next;
	if (d->inflight_next != NULL)
		d->inflight_next->inflight_prev = d->inflight_prev;
	d->inflight_next = d->inflight_prev = NULL;
}

static void handler_maybe_release(struct dispatch *dp, struct handler *h)
{
	if (h->removed && h->inflight == 0 && h->refs == 0) {
		hmap_free(&h->lanes, NULL);
		dp->release_fn(h, dp->ctx);
	}
}

static void dispatch_start(struct dispatch *dp, struct lane *l)
{
	struct delivery *d = l->head;
	struct handler *h = l->h;

	l->running = true;
	dp->inflight++;
	handler_inflight(dp, h, true);
	d->timed_out = false;
	atomic_store(&d->started_ns, 0);
	d->dispatched_ns = mono_ns();
	event_view_init(&d->view, d->ev, d->attempts + 1);
	inflight_add(dp, d);
	if (dp->set.call_fn != NULL)
		dp->set.call_fn(d, true, dp->ctx);
	h->ops->deliver(h, d);
}

/* A serial handler's lane waits, in arrival order, for the call in flight;
 * each finished call lets one waiting lane go (no scan of every lane). */
static void lane_park(struct lane *l)
{
	struct handler *h = l->h;

	l->parked = true;
	l->park_next = NULL;
	if (h->parked_tail != NULL)
		h->parked_tail->park_next = l;
	else
		h->parked_head = l;
	h->parked_tail = l;
}

static void handler_unpark_one(struct dispatch *dp, struct handler *h)
{
	struct lane *l = h->parked_head;

	if (l == NULL)
		return;
	h->parked_head = l->park_next;
	if (h->parked_head == NULL)
		h->parked_tail = NULL;
	l->park_next = NULL;
	l->parked = false;
	lane_ready(dp, l);
}

/* A handler's share of the slots: three quarters of the concurrency (all
 * of it below 4).  Past its share a handler's lanes run only when no other
 * handler's lane wants the slot, so a handler whose deliveries are slow or
 * failing (1,000 retries of a broken hook) never starves the others, and a
 * handler alone still gets every slot. */
static unsigned dispatch_handler_share(const struct dispatch *dp)
{
	unsigned n = dp->set.concurrency;

	return n < 4 ? n : n - n / 4;
}

static struct lane *dispatch_ready_pop(struct dispatch *dp)
{
	struct lane *l = dp->ready_head;

	dp->ready_head = l->ready_next;
	if (dp->ready_head == NULL)
		dp->ready_tail = NULL;
	l->ready_next = NULL;
	return l;
}

static void dispatch_pump(struct dispatch *dp)
{
	/* lanes of handlers past their share, in ready order; they keep
	 * l->ready set while held here */
	struct lane *over = NULL, *over_tail = NULL;

	if (dp->pumping || dp->paused)
		return;
	dp->pumping = true;
	while (dp->inflight < dp->set.concurrency && dp->ready_head != NULL) {
		bool all_over = dp->ready_over == dp->ready_n;
		struct lane *l = dispatch_ready_pop(dp);

		if (l->h->serial && l->h->inflight > 0) {
			/* busy serial handler: unparked when its call ends */
			ready_count(dp, l, false);
			lane_park(l);
			continue;
		}
		/* past its share: wait behind other handlers' lanes, unless
		 * every ready lane is past its share (then nobody is
		 * preferred, and no scan of them all per free slot) */
		if (handler_over(dp, l->h) && !all_over) {
			if (over_tail != NULL)
				over_tail->ready_next = l;
			else
				over = l;
			over_tail = l;
			continue;
		}
		ready_count(dp, l, false);
		dispatch_start(dp, l);
	}
	/* slots nobody else wanted go to the lanes past their share */
	while (over != NULL && dp->inflight < dp->set.concurrency) {
		struct lane *l = over;

		over = l->ready_next;
		l->ready_next = NULL;
		ready_count(dp, l, false);
		if (l->h->serial && l->h->inflight > 0) {
			lane_park(l);
			continue;
		}
		dispatch_start(dp, l);
	}
	if (over != NULL) {
		/* back to the head of the ready list, in their order */
		over_tail->ready_next = dp->ready_head;
		if (dp->ready_head == NULL)
			dp->ready_tail = over_tail;
		dp->ready_head = over;
	}
	dp->pumping = false;
}

static void dispatch_finish(struct dispatch *dp, struct delivery *d, int rc,
			    const char *error)
{
	struct lane *l = d->lane;
	struct handler *h = d->h;
	int64_t dur_us = (mono_ns() - (atomic_load(&d->started_ns) != 0
					       ? atomic_load(&d->started_ns)
					       : d->dispatched_ns)) / 1000;

	l->running = false;
	d->attempts++;
	if (rc == 0) {
		d->state = DELIVERY_DONE;
		dispatch_result(dp, d, NULL, dur_us);
	} else if (d->attempts >= dp->set.max_attempts || rc == -EINVAL) {
		/* -EINVAL: the event itself is unusable (a hostile name, a
		 * missing field): no retry can help */
		d->state = DELIVERY_DEAD;
		log_msg(LOG_ERROR_L, h->name,
			"event %lld (%s %s) is dead after %u attempts: %s",
			(long long)d->ev->pub.id, d->ev->type, d->ev->subject,
			d->attempts, error != NULL ? error : "failed");
		dispatch_result(dp, d, error != NULL ? error : "failed",
				dur_us);
	} else {
		d->state = DELIVERY_FAILED;
		d->next_ms = now_ms() +
			     journal_backoff_ms(dp->set.backoff_ms,
						dp->set.backoff_max_ms,
						d->attempts);
		log_msg(LOG_WARN_L, h->name,
			"event %lld (%s %s) attempt %u failed, retry in %lld ms: %s",
			(long long)d->ev->pub.id, d->ev->type, d->ev->subject,
			d->attempts, (long long)(d->next_ms - now_ms()),
			error != NULL ? error
				      : (rc == OPHOOK_RETRY ? "retry asked"
							    : "failed"));
		dispatch_result(dp, d,
				error != NULL ? error
					      : (rc == OPHOOK_RETRY ? "retry asked"
								    : "failed"),
				dur_us);
		wait_add(dp, l);
		dispatch_arm_retry(dp, d->next_ms);
	}
	if (d->state == DELIVERY_DONE || d->state == DELIVERY_DEAD) {
		l->head = d->next;
		if (l->head == NULL)
			l->tail = NULL;
		dp->queued--;
		h->queued--;
		delivery_free(&d);
		if (h->serial && h->parked_head != NULL && l->head != NULL)
			lane_park(l); /* behind the lanes already waiting */
		else
			lane_ready(dp, l);
	}
	if (h->serial)
		handler_unpark_one(dp, h);
	lane_free_if_empty(dp, l);
}

void dispatch_done(struct delivery *d, int rc, const char *error)
{
	struct dispatch *dp = d->dp;
	struct handler *h = d->h;

	if (d->timed_out) {
		/* already reported as failed by the sweep; the lane moved on
		 * with a copy of this delivery */
		h->refs--;
		delivery_free(&d);
		handler_maybe_release(dp, h);
		return;
	}
	inflight_del(dp, d);
	dp->inflight--;
	handler_inflight(dp, h, false);
	if (dp->set.call_fn != NULL)
		dp->set.call_fn(d, false, dp->ctx);
	if (h->removed) {
		struct lane *l = d->lane;

		dp->queued--;
		h->queued--;
		delivery_free(&d);
		free(l->subject);
		free(l);
		handler_maybe_release(dp, h);
		dispatch_pump(dp);
		return;
	}
	dispatch_finish(dp, d, rc, error);
	dispatch_pump(dp);
}

void delivery_started(struct delivery *d)
{
	atomic_store(&d->started_ns, mono_ns());
}

static void dispatch_timeout(struct dispatch *dp, struct delivery *d,
			     unsigned timeout_ms)
{
	struct handler *h = d->h;
	struct delivery *copy = xcalloc(1, sizeof(*copy));
	struct lane *l = d->lane;
	char msg[96];

	/* the lane continues with a copy; d stays with the handler until it
	 * calls dispatch_done, which then only frees it */
	*copy = *d;
	copy->ev = event_ref(d->ev);
	atomic_init(&copy->started_ns, atomic_load(&d->started_ns));
	copy->inflight_next = copy->inflight_prev = NULL;
	inflight_del(dp, d);
	if (dp->set.call_fn != NULL)
		dp->set.call_fn(d, false, dp->ctx);
	d->timed_out = true;
	h->refs++;
	l->head = copy;
	if (l->tail == d)
		l->tail = copy;
	dp->inflight--;
	handler_inflight(dp, h, false);
	if (h->ops->cancel != NULL)
		h->ops->cancel(h, d);
	snprintf(msg, sizeof(msg), "timed out after %u ms", timeout_ms);
	dispatch_finish(dp, copy, -ETIMEDOUT, msg);
}

static void dispatch_sweep_cb(uv_timer_t *t)
{
	struct dispatch *dp = t->data;
	int64_t now = mono_ns();
	struct delivery *d = dp->inflight_head, *next;

	for (; d != NULL; d = next) {
		unsigned to = d->h->timeout_ms != 0 ? d->h->timeout_ms
						    : dp->set.timeout_ms;
		int64_t started = atomic_load(&d->started_ns);

		next = d->inflight_next;
		if (started != 0 && now - started > (int64_t)to * 1000000)
			dispatch_timeout(dp, d, to);
	}
	dispatch_pump(dp);
}

struct dispatch *dispatch_new(uv_loop_t *loop,
			      const struct dispatch_settings *settings,
			      dispatch_result_fn *result_fn,
			      dispatch_release_fn *release_fn, void *ctx)
{
	struct dispatch *dp = xcalloc(1, sizeof(*dp));

	dp->loop = loop;
	dp->set = *settings;
	if (dp->set.concurrency == 0)
		dp->set.concurrency = 1;
	if (dp->set.max_attempts == 0)
		dp->set.max_attempts = 1;
	dp->result_fn = result_fn;
	dp->release_fn = release_fn;
	dp->ctx = ctx;
	uv_timer_init(loop, &dp->retry_timer);
	dp->retry_timer.data = dp;
	uv_timer_init(loop, &dp->sweep_timer);
	dp->sweep_timer.data = dp;
	uv_timer_start(&dp->sweep_timer, dispatch_sweep_cb, 100, 100);
	uv_unref((uv_handle_t *)&dp->sweep_timer);
	return dp;
}

static void dispatch_free_timer(uv_handle_t *h)
{
	struct dispatch *dp = h->data;

	/* closing callbacks run in any order: free after the second */
	if (++dp->closed == 2)
		free(dp);
}

void dispatch_free(struct dispatch **dpp)
{
	struct dispatch *dp = *dpp;

	if (dp == NULL)
		return;
	*dpp = NULL;
	uv_close((uv_handle_t *)&dp->retry_timer, dispatch_free_timer);
	uv_close((uv_handle_t *)&dp->sweep_timer, dispatch_free_timer);
}

void dispatch_enqueue(struct dispatch *dp, struct handler *h, struct event *ev,
		      unsigned attempts, enum delivery_state state,
		      int64_t next_ms)
{
	struct lane *l = lane_get(h, ev->subject);
	struct delivery *d = xcalloc(1, sizeof(*d));

	d->ev = event_ref(ev);
	d->h = h;
	d->dp = dp;
	d->lane = l;
	d->ledger_slot = -1;
	d->attempts = attempts;
	d->state = state;
	d->next_ms = next_ms;
	atomic_init(&d->started_ns, 0);
	if (l->tail != NULL)
		l->tail->next = d;
	else
		l->head = d;
	l->tail = d;
	dp->queued++;
	h->queued++;
	if (l->head == d && state == DELIVERY_FAILED && next_ms > now_ms()) {
		wait_add(dp, l);
		dispatch_arm_retry(dp, next_ms);
		return;
	}
	lane_ready(dp, l);
	dispatch_pump(dp);
}

static bool lane_drop(const char *key, void *value, void *ctx)
{
	struct lane *l = value;
	struct dispatch *dp = ctx;
	struct delivery *d, *next;

	(void)key;
	if (l->waiting)
		wait_del(dp, l);
	if (l->ready) {
		struct lane **pp = &dp->ready_head, *prev = NULL;

		for (; *pp != NULL; prev = *pp, pp = &(*pp)->ready_next) {
			if (*pp == l) {
				*pp = l->ready_next;
				if (dp->ready_tail == l)
					dp->ready_tail = prev;
				break;
			}
		}
		ready_count(dp, l, false);
	}
	l->parked = false;
	/* keep a running head: dispatch_done frees it */
	d = l->running ? l->head->next : l->head;
	if (l->running)
		l->head->next = NULL;
	for (; d != NULL; d = next) {
		next = d->next;
		dp->queued--;
		l->h->queued--;
		delivery_free(&d);
	}
	if (!l->running) {
		l->head = l->tail = NULL;
		free(l->subject);
		free(l);
	} else {
		l->tail = l->head;
	}
	return true;
}

void dispatch_handler_remove(struct dispatch *dp, struct handler *h)
{
	h->removed = true;
	if (h->lanes != NULL) {
		struct hmap *lanes = h->lanes;

		/* lanes with a running head stay reachable through their
		 * deliveries; the map itself goes */
		h->lanes = NULL;
		hmap_each(lanes, lane_drop, dp);
		h->parked_head = h->parked_tail = NULL;
		hmap_free(&lanes, NULL);
	}
	handler_maybe_release(dp, h);
}

void dispatch_set_concurrency(struct dispatch *dp, unsigned n)
{
	dp->set.concurrency = n > 0 ? n : 1;
	/* the share changed: count the ready lanes past it again */
	dp->ready_over = 0;
	for (struct lane *l = dp->ready_head; l != NULL; l = l->ready_next)
		dp->ready_over += handler_over(dp, l->h);
	dispatch_pump(dp);
}

unsigned dispatch_retry_now(struct dispatch *dp)
{
	unsigned n = 0;

	while (dp->wait_head != NULL) {
		struct lane *l = dp->wait_head;

		wait_del(dp, l);
		l->head->next_ms = 0;
		lane_ready(dp, l);
		n++;
	}
	dispatch_pump(dp);
	return n;
}

bool dispatch_retry_delivery(struct dispatch *dp, struct handler *h,
			     const char *subject, int64_t id)
{
	struct lane *l;

	if (h->lanes == NULL || subject == NULL ||
	    (l = hmap_get(h->lanes, subject)) == NULL || !l->waiting ||
	    l->head == NULL || l->head->ev->pub.id != id)
		return false;
	wait_del(dp, l);
	l->head->next_ms = 0;
	lane_ready(dp, l);
	dispatch_pump(dp);
	return true;
}

void dispatch_pause(struct dispatch *dp)
{
	dp->paused = true;
}

unsigned dispatch_queued(const struct dispatch *dp)
{
	return dp->queued;
}

unsigned dispatch_handler_queued(const struct handler *h)
{
	return h->queued;
}

static bool dispatch_oldest_each(const char *key, void *value, void *ctx)
{
	const struct lane *l = value;
	int64_t *oldest = ctx;

	(void)key;
	if (l->head != NULL && l->head->ev != NULL &&
	    (*oldest == 0 || l->head->ev->pub.time_ms < *oldest))
		*oldest = l->head->ev->pub.time_ms;
	return true;
}

int64_t dispatch_handler_oldest_ms(const struct handler *h)
{
	int64_t oldest = 0;

	/* each lane's head is its oldest; what is spilled to the journal is
	 * newer than every delivery in the window */
	if (h->lanes != NULL)
		hmap_each(h->lanes, dispatch_oldest_each, &oldest);
	return oldest;
}

int64_t dispatch_handler_lag_ms(const struct handler *h, int64_t now_ms)
{
	int64_t oldest = dispatch_handler_oldest_ms(h);

	return oldest > 0 && now_ms > oldest ? now_ms - oldest : 0;
}

const char *dispatch_delivery_live(const struct handler *h,
				   const char *subject, int64_t id,
				   const struct delivery **d_r)
{
	const struct lane *l;
	const struct delivery *d;

	if (h->lanes == NULL || subject == NULL ||
	    (l = hmap_get(h->lanes, subject)) == NULL)
		return NULL;
	for (d = l->head; d != NULL && d->ev->pub.id != id; d = d->next)
		;
	if (d == NULL)
		return NULL;
	if (d_r != NULL)
		*d_r = d;
	if (d != l->head)
		return "queued";
	if (l->running)
		return "running";
	if (l->waiting)
		return "backoff";
	return "ready"; /* on the ready list, or parked (serial) */
}

unsigned dispatch_inflight(const struct dispatch *dp)
{
	return dp->inflight;
}

bool dispatch_idle(const struct dispatch *dp)
{
	return dp->inflight == 0;
}
