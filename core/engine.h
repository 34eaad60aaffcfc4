/* The engine: owns the loop, the config, the journal, the dispatcher, the
 * handlers and the sources.  Everything that produces events calls
 * engine_submit(); everything that consumes them is a struct handler. */
#ifndef OPHOOK_ENGINE_H
#define OPHOOK_ENGINE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "event.h"
#include "handler.h"

struct engine;

/* Called once the event is durable in the journal (loop thread); ev is
 * NULL and error set when it could not be journaled. */
typedef void engine_submit_cb(struct event *ev, const char *error, void *ctx);

/* Create the engine on `loop` with `config` (owned by the engine from now
 * on): opens the journal under state_dir.  Sources and handlers are added
 * by engine_start(). */
int engine_new(uv_loop_t *loop, struct config *config, struct engine **e_r,
	       const char **error_r);
/* Load plugins and hooks, resume pending deliveries, start the sources
 * (watcher, db poller, control socket). */
int engine_start(struct engine *e, const char **error_r);
/* Stop sources, finish the journal (flush), unload handlers; the loop then
 * runs out. cb (may be NULL) runs when everything is closed. */
void engine_stop(struct engine *e, void (*cb)(void *ctx), void *ctx);
/* Reload the config file (SIGHUP): plugins enabled/disabled, settings. */
int engine_reload(struct engine *e, const char **error_r);
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

/* Status as JSON: version, node, uptime_s, queue depth, counts, handlers.
 * Caller owns the result. */
json_t *engine_status(struct engine *e);

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

/* Subsystems, for each other (NULL when not started). */
struct control *engine_control(struct engine *e);
struct paneldb *engine_paneldb(struct engine *e);
struct watch *engine_watch(struct engine *e);

#endif
