/* The dispatcher: per (handler, subject) lanes delivered in order, up to
 * `concurrency` deliveries in flight, a timeout per call, retries with
 * exponential backoff, dead after max_attempts.  Loop thread only. */
#ifndef OPHOOK_DISPATCH_H
#define OPHOOK_DISPATCH_H

#include <uv.h>

#include "config.h"
#include "handler.h"
#include "journal.h"

struct dispatch;

/* Called for every state change that must reach the journal. */
typedef void dispatch_result_fn(const struct journal_delivery *jd, void *ctx);
/* Called when a removed handler has nothing in flight and can be freed. */
typedef void dispatch_release_fn(struct handler *h, void *ctx);

/* Called when a call starts / ends (the in-flight ledger). */
typedef void dispatch_call_fn(struct delivery *d, bool start, void *ctx);

struct dispatch_settings {
	dispatch_call_fn *call_fn; /* may be NULL */
	unsigned concurrency;
	unsigned timeout_ms;
	unsigned max_attempts;
	unsigned backoff_ms;
	unsigned backoff_max_ms;
};

struct dispatch *dispatch_new(uv_loop_t *loop,
			      const struct dispatch_settings *settings,
			      dispatch_result_fn *result_fn,
			      dispatch_release_fn *release_fn, void *ctx);
/* Free; in-flight deliveries must be over (see dispatch_idle). */
void dispatch_free(struct dispatch **dp);

/* Queue a delivery of ev (referenced) to h, behind earlier ones of the same
 * subject.  attempts/state/next_ms come from the journal on resume, or
 * 0/PENDING/0 for a new event. */
void dispatch_enqueue(struct dispatch *dp, struct handler *h, struct event *ev,
		      unsigned attempts, enum delivery_state state,
		      int64_t next_ms);
/* Drop h's queued deliveries (they stay pending in the journal) and
 * release h once its in-flight calls are over. */
void dispatch_handler_remove(struct dispatch *dp, struct handler *h);
/* Stop starting new deliveries (shutdown). */
void dispatch_pause(struct dispatch *dp);

/* Change the number of deliveries in flight at once (safe mode: 1). */
void dispatch_set_concurrency(struct dispatch *dp, unsigned n);

/* Make every delivery waiting for a retry runnable now; returns how many. */
unsigned dispatch_retry_now(struct dispatch *dp);

/* Make h's delivery of event id on subject runnable now when it waits
 * for its backoff; false when it does not (not held, queued behind an
 * earlier one, ready or running). */
bool dispatch_retry_delivery(struct dispatch *dp, struct handler *h,
			     const char *subject, int64_t id);

/* Deliveries held in memory (queued and in flight): all handlers'. */
unsigned dispatch_queued(const struct dispatch *dp);
/* Deliveries of h held in memory (queued and in flight). */
unsigned dispatch_handler_queued(const struct handler *h);
/* The time (time_ms) of the oldest event h has yet to finish (running,
 * ready, waiting to retry or spilled to the journal), or 0 when it has
 * none: how far behind h is. */
int64_t dispatch_handler_oldest_ms(const struct handler *h);
/* How far behind h is at now_ms: now_ms minus its oldest unfinished
 * event's time, 0 when it has none. */
int64_t dispatch_handler_lag_ms(const struct handler *h, int64_t now_ms);
unsigned dispatch_inflight(const struct dispatch *dp);
/* What h's delivery of event `id` on `subject` is doing now: "running",
 * "ready" (due, waits for a free slot), "backoff" (waits for its next_ms),
 * "queued" (behind an earlier event of its subject), or NULL when it is
 * not held in memory (done, dead, or still in the journal).  *d_r (may be
 * NULL) is set to the delivery, whose state, attempts and next_ms are
 * newer than the journal's until the next flush. */
const char *dispatch_delivery_live(const struct handler *h,
				   const char *subject, int64_t id,
				   const struct delivery **d_r);
/* True when nothing is in flight. */
bool dispatch_idle(const struct dispatch *dp);

/* Report a delivery's result (loop thread).  rc: 0 done, OPHOOK_RETRY (try
 * later, counts as an attempt), other -errno failed.  error may be NULL. */
void dispatch_done(struct delivery *d, int rc, const char *error);
/* Note that the call really starts now (any thread); timeouts count from
 * here. */
void delivery_started(struct delivery *d);

#endif
