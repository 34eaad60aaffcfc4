/* Handlers: anything that takes deliveries (C plugins, Lua hooks, exec
 * hooks).  The dispatcher owns ordering, concurrency, timeouts and retries;
 * a handler only runs one delivery and reports its result. */
#ifndef OPHOOK_HANDLER_H
#define OPHOOK_HANDLER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "journal.h"

struct handler;
struct delivery;

struct handler_ops {
	/* Start one delivery.  The handler must call dispatch_done() for it
	 * exactly once, on the loop thread (now or later). */
	void (*deliver)(struct handler *h, struct delivery *d);
	/* The delivery timed out and was already reported failed: stop it if
	 * you can (kill a process); a later dispatch_done() for it is ignored.
	 * Optional. */
	void (*cancel)(struct handler *h, struct delivery *d);
	/* Free h->data and anything else the handler owns (not h itself). */
	void (*free)(struct handler *h);
};

struct lane;

struct handler {
	const struct handler_ops *ops;
	char *name;          /* unique: "plugin:caddy", "lua:notify.lua",
				"exec:domain.added.d/10-mail" */
	char **patterns;     /* event type patterns; n_patterns 0 = all */
	size_t n_patterns;
	unsigned timeout_ms; /* per call; 0 = dispatch.timeout_ms */
	int priority;        /* lower runs first when a subject has several
				events ready for different handlers (hint) */
	bool serial;         /* at most one delivery in flight */
	bool out_of_process; /* its calls run in a process of their own (exec
				hooks, isolated plugins): a crash of ophookd
				during one is not blamed on it (no safe mode) */
	void *data;          /* the handler's own */

	/* dispatcher-private */
	struct hmap *lanes;  /* subject -> struct lane */
	struct lane *parked_head, *parked_tail; /* serial: lanes waiting for
						   the call in flight */
	unsigned inflight;
	unsigned ready_n;    /* lanes in the dispatcher's ready list */
	unsigned queued;     /* deliveries held in memory (lanes + in flight) */
	bool removed;
	unsigned refs;

	/* engine-private: the handler's backlog (core/bus/engine.c).  Past
	 * its in-memory window, the handler's deliveries from event id
	 * spill_from on stay in the journal only, and are read back in id
	 * order (a query of this handler's rows) as its window drains. */
	int64_t spill_from;  /* 0: nothing of it waits in the journal only */
	bool refill_pending;
};

struct delivery {
	struct event *ev;     /* referenced */
	struct handler *h;
	unsigned attempts;    /* attempts made before this one */
	enum delivery_state state;
	int64_t next_ms;      /* wall clock when it may run */
	atomic_llong started_ns; /* mono_ns() when the call really started,
				    0 = not yet (set by delivery_started) */
	int64_t dispatched_ns;
	bool timed_out;
	struct event_view view; /* what a plugin gets (attempt numbered) */
	struct delivery *next; /* lane queue */
	struct delivery *inflight_next, *inflight_prev;
	void *hdata;          /* free for the handler during a call */
	struct dispatch *dp;  /* dispatcher-private */
	struct lane *lane;    /* dispatcher-private */
	int ledger_slot;      /* engine-private: in-flight ledger slot */
};

/* Handler helpers. */
struct handler *handler_new(const struct handler_ops *ops, const char *name);
/* Add a pattern (copied). */
void handler_add_pattern(struct handler *h, const char *pattern);
/* Free a handler (ops->free is called when set): the engine does so when a
 * removed handler's last call has ended; call it yourself only for a
 * handler never given to the engine.  NULLs *h. */
void handler_free_unowned(struct handler **h);
/* True when the handler subscribes to `type`. */
bool handler_matches(const struct handler *h, const char *type);

#endif
