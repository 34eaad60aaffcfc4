/* The engine, as a bus only: events submitted from any thread are journaled
 * in group commits, then handed to the dispatcher for every handler that
 * subscribes to them.  Everything that produces events calls
 * engine_submit(); everything that consumes them is a struct handler added
 * with engine_handler_add().  It creates no source and no handler: the
 * daemon (core/daemon/daemon.c) builds those around it. */
#ifndef OPHOOK_ENGINE_H
#define OPHOOK_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "control.h"
#include "event.h"
#include "handler.h"

struct engine;

/* Called once the event is durable in the journal (loop thread); ev is
 * NULL and error set when it could not be journaled. */
typedef void engine_submit_cb(struct event *ev, const char *error, void *ctx);

/* Create the bus on `loop` with `config` (borrowed: it must outlive the
 * engine) and `journal` (owned by the engine from now on).  Handlers are
 * added with engine_handler_add(); nothing is resumed before
 * engine_start(). */
int engine_new(uv_loop_t *loop, const struct config *config,
	       struct journal *journal, struct engine **e_r,
	       const char **error_r);
/* Count the deliveries that were running when the last process died (the
 * in-flight ledger), resume every pending delivery of the journal, start
 * the hourly prune. */
void engine_start(struct engine *e);
/* Stop dispatching; once no delivery runs and busy_fn(ctx) (may be NULL)
 * says false, or after 10 s, journal what is in memory and call
 * drained_cb(ctx) on the loop thread.  Handlers are still registered then:
 * the caller stops them, then calls engine_finish(). */
void engine_stop(struct engine *e, bool (*busy_fn)(void *ctx),
		 void (*drained_cb)(void *ctx), void *ctx);
/* After engine_stop's drained_cb: remove every handler, journal the last
 * results, close the loop handles, the dispatcher, the journal and the
 * ledger.  The loop then runs out. */
void engine_finish(struct engine *e);
void engine_free(struct engine **e);
/* The journal was found working again by someone else (the cluster
 * poller): retry what waits for it now instead of at the next retry tick. */
void engine_journal_reachable(struct engine *e);

uv_loop_t *engine_loop(struct engine *e);
const struct config *engine_config(struct engine *e);
struct journal *engine_journal(struct engine *e);
/* The dispatcher (cluster.c enqueues fan-out and claimed deliveries). */
struct dispatch *engine_dispatch(struct engine *e);
/* Wall clock ms when the engine was created. */
int64_t engine_started_ms(struct engine *e);

/* Submit an event from any thread.  payload: JSON object (reference
 * stolen) or NULL.  Validates type and subject (error_r).  cb (may be NULL)
 * is called on the loop thread once the event is journaled. */
int engine_submit(struct engine *e, const char *type, const char *subject,
		  const char *source, json_t *payload, engine_submit_cb *cb,
		  void *ctx, const char **error_r);

/* Backpressure for bulk producers (a batch emit answers through it): fn(ctx)
 * runs on the loop thread once few deliveries are queued in memory (below
 * the spill bound), after max_ms at the latest, or at once when the queue
 * is short already or the engine is stopping.  A producer that waits for
 * its answer before sending more then runs at the handlers' pace instead
 * of pushing events into the journal-only spill. */
void engine_when_drained(struct engine *e, unsigned max_ms,
			 void (*fn)(void *ctx), void *ctx);

/* Deliver the journaled event `id` again to every matching handler, as a
 * new event with "replay_of": id (source "replay"). */
int engine_replay(struct engine *e, int64_t id, engine_submit_cb *cb,
		  void *ctx, const char **error_r);

/* Watch events as they become durable (loop thread).  Returns a handle
 * for engine_unlisten(). */
typedef void engine_listen_fn(struct event *ev, void *ctx);
void *engine_listen(struct engine *e, engine_listen_fn *fn, void *ctx);
void engine_unlisten(struct engine *e, void **handle);

/* Add a handler; its pending deliveries in the journal are resumed.
 * -EEXIST when the name is taken.  The engine owns h from now on. */
int engine_handler_add(struct engine *e, struct handler *h,
		       const char **error_r);
/* Remove and free a handler (after its in-flight deliveries finish). */
void engine_handler_remove(struct engine *e, const char *name);
/* The handler named `name`, or NULL. */
struct handler *engine_handler_find(struct engine *e, const char *name);
/* What handler's delivery of event `id` on `subject` is doing now (see
 * dispatch_delivery_live), "backlog" when it waits in the journal behind
 * the handler's window, "orphaned" when no handler of that name exists
 * (a removed hook file, a disabled plugin: nothing runs it), or NULL (not
 * pending here, or a row of another node: `node`, may be NULL, is the
 * row's node).  When it
 * is held in memory, *d_r (may be NULL) is set to its newer state. */
const char *engine_delivery_live(struct engine *e, const char *handler,
				 const char *node, const char *subject,
				 int64_t id, struct journal_delivery *d_r);

/* Status as JSON: version, node, uptime_s, queue depth, counts, handlers,
 * plus what the status function adds.  Caller owns the result. */
json_t *engine_status(struct engine *e);
/* Adds fields to engine_status's object (the daemon adds "plugins"). */
typedef void engine_status_fn(json_t *status, void *ctx);
void engine_set_status_fn(struct engine *e, engine_status_fn *fn, void *ctx);
/* True while some of h's pending deliveries wait in the journal only (its
 * backlog is past its in-memory window): they are read back in id order as
 * the window drains, so nobody else may hand h newer ones meanwhile. */
bool engine_handler_behind(const struct handler *h);
/* The fewest deliveries any handler holds in memory (0 without handlers):
 * a producer that waits while this is high waits only while every handler
 * is busy, never for one slow handler (that one falls behind and reads its
 * backlog from the journal). */
unsigned engine_queue_least(struct engine *e);
/* Cap each handler's in-memory window (deliveries it holds in memory
 * before its backlog stays in the journal) at max instead of the default
 * (0): for tests that want a spill with few events. */
void engine_set_window(struct engine *e, unsigned max);
/* The current window of each handler. */
unsigned engine_window(const struct engine *e);
/* Number of handlers registered. */
size_t engine_handler_count(struct engine *e);

/* Who runs a handler's deliveries when several nodes share the journal
 * (core/bus/cluster.c): local (this node, the default), fanout (every
 * node, rows fetched by the cluster poller) or shared (one row that some
 * node claims).  committed (may be NULL) is told after each local commit
 * of events. */
struct engine_router {
	enum config_mode (*mode)(void *ctx, const char *handler);
	void (*committed)(void *ctx);
	void *ctx;
};
/* Set the router (copied); NULL: every handler local. */
void engine_set_router(struct engine *e, const struct engine_router *r);

/* Register a path a plugin is about to write, so the watcher ignores the
 * resulting change (no loops).  Thread-safe. */
void engine_own_write(struct engine *e, const char *path);
/* True (and the mark consumed) when path was registered by
 * engine_own_write() within the last few seconds. */
bool engine_own_write_take(struct engine *e, const char *path);

/* Enrichment: called on the loop thread for every event before it is
 * journaled; may add fields to the payload (the owner user of a domain,
 * its plan).  One enricher (the panel DB); fn NULL removes it. */
typedef void engine_enrich_fn(json_t *payload, const char *type,
			      const char *subject, void *ctx);
void engine_set_enricher(struct engine *e, engine_enrich_fn *fn, void *ctx);

/* Add n to the Prometheus counter ophook_<name>_total (loop thread), e.g.
 * "reconciles", "watch_overflows". */
void engine_metric_count(struct engine *e, const char *name, uint64_t n);
/* The Prometheus text of the metrics (ctx: the engine); caller frees. */
char *engine_metrics_text(void *ctx);

/* metrics, retry; ctx: the struct engine. */
extern const struct control_command engine_commands[];

#endif
