/* ophook plugin ABI: the one public header.
 *
 * A plugin is a shared object that exports exactly one data symbol,
 * `ophook_plugin`, a const struct ophook_plugin.  The host dlopens it with
 * RTLD_NOW|RTLD_LOCAL, checks `abi` and `name` before running any plugin code,
 * then calls init() with a table of host functions.  The table is
 * size-prefixed and append-only: a plugin built against an older header sees
 * a prefix of it; a plugin must check `host->size` before using a field that
 * was added after OPHOOK_ABI_VERSION 1 (use OPHOOK_HOST_HAS()).
 *
 *   const struct ophook_plugin ophook_plugin = {
 *           OPHOOK_PLUGIN_HEADER("myplugin"),
 *           .subscriptions = (const char *const[]){ "domain.*", NULL },
 *           .init = my_init, .fini = my_fini, .on_event = my_on_event,
 *   };
 *
 * Build: cc -shared -fPIC $(pkg-config --cflags ophook-plugin) -o my.so my.c
 *
 * Threads: on_event() is called from worker threads.  Calls for the same
 * subject are never concurrent and arrive in journal order.  By default one
 * worker at a time runs a plugin's calls (cheapest for fast plugins); a
 * plugin that blocks per event and wants calls for different subjects to
 * run at the same time sets OPHOOK_PLUGIN_PARALLEL (then it must be
 * thread-safe); OPHOOK_PLUGIN_SERIAL forbids overlap even across
 * timeouts.  init() and fini() run on the daemon's loop thread;
 * action callbacks (request_action) run on a worker thread, never two at
 * once for the same action name.
 *
 * Errors: functions return 0 or a negative errno.  A human-readable message
 * goes out through `const char **error_r`; the plugin owns that string and it
 * must stay valid until the next call into the plugin from the same thread
 * (a static or thread-local buffer is fine).
 */
#ifndef OPHOOK_PLUGIN_H
#define OPHOOK_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on any incompatible change to struct ophook_plugin or
 * struct ophook_event.  Additions to struct ophook_host do not bump it. */
#define OPHOOK_ABI_VERSION 1u

#define OPHOOK_EXPORT __attribute__((visibility("default")))

/* Fills the fields every plugin must set. */
#define OPHOOK_PLUGIN_HEADER(name_) .abi = OPHOOK_ABI_VERSION, .name = (name_)

/* True when the host table has the member `field` (newer hosts only). */
#define OPHOOK_HOST_HAS(host, field) \
	((host)->size >= offsetof(struct ophook_host, field) + sizeof((host)->field))

enum ophook_log_level {
	OPHOOK_LOG_DEBUG = 0,
	OPHOOK_LOG_INFO = 1,
	OPHOOK_LOG_WARN = 2,
	OPHOOK_LOG_ERROR = 3,
};

/* on_event() results besides 0 (done): -EINVAL means the event itself is
 * unusable (a hostile name, a missing field) and the delivery is dead at
 * once; other negative errnos fail the attempt, retried with backoff until
 * the delivery is dead. */
#define OPHOOK_RETRY (-11) /* -EAGAIN: not done, try again later, no blame */

/* Plugin flags. */
#define OPHOOK_PLUGIN_SERIAL 0x1u   /* never call on_event concurrently */
#define OPHOOK_PLUGIN_PARALLEL 0x2u /* several workers, one per subject */

/* One journaled event, read-only for the plugin, valid during the call. */
struct ophook_event {
	int64_t id;          /* journal id, unique and increasing per node */
	const char *type;    /* "domain.added" */
	const char *subject; /* "example.com", "user:bob", ... */
	const char *source;  /* inotify|reconcile|db|socket|timer|plugin|hook */
	int64_t time_ms;     /* wall-clock time of the change, ms since epoch */
	const char *json;    /* the whole payload, one JSON object */
	unsigned attempt;    /* 1 on the first delivery to this handler */
};

/* Opaque handle identifying the calling plugin to the host. */
struct ophook_ctx;

/* Coalesced action: see ophook_host.request_action. */
typedef void ophook_action_fn(struct ophook_ctx *ctx, void *data);

/* Host functions, passed to init().  Size-prefixed, append-only. */
struct ophook_host {
	size_t size; /* sizeof(struct ophook_host) as the host knows it */
	unsigned abi;
	const char *version; /* ophook version string */

	/* printf-like log line, prefixed with the plugin's name. */
	void (*log)(struct ophook_ctx *ctx, enum ophook_log_level level,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

	/* A setting from plugins.NAME in the config.  Scalars come back as
	 * their text, lists and maps as JSON text.  NULL when unset.  Valid
	 * until fini(). */
	const char *(*setting)(struct ophook_ctx *ctx, const char *key);

	/* Emit a new event (journaled, then delivered like any other).
	 * fields_json: a JSON object with extra payload fields, or NULL.
	 * Thread-safe. */
	int (*emit)(struct ophook_ctx *ctx, const char *type,
		    const char *subject, const char *fields_json,
		    const char **error_r);

	/* Ask for fn(ctx, data) to run on a worker thread after delay_ms.  Many
	 * requests with the same name inside the window give one call; a
	 * request made while the call runs gives exactly one more call after
	 * it.  Thread-safe.  `data` is passed to the first registration of a
	 * name and kept. */
	int (*request_action)(struct ophook_ctx *ctx, const char *name,
			      unsigned delay_ms, ophook_action_fn *fn,
			      void *data);

	/* A folder of the plugin's own under state_dir (created). */
	const char *(*state_dir)(struct ophook_ctx *ctx);

	/* The OpenPanel tree (config `root`, default /etc/openpanel). */
	const char *(*root)(struct ophook_ctx *ctx);

	/* A top-level string or number field of the event payload, as text in
	 * a buffer owned by the event; NULL when absent. */
	const char *(*event_get)(const struct ophook_event *ev,
				 const char *key);

	/* Tell the watcher that the plugin is about to write `path`, so the
	 * change does not come back as a fresh event (no loops).  Thread-safe. */
	void (*own_write)(struct ophook_ctx *ctx, const char *path);

	/* This node's name (config `node`, default the host name): the
	 * "node" field of the events this daemon journals. */
	const char *(*node)(struct ophook_ctx *ctx);
};

struct ophook_plugin {
	unsigned abi;     /* OPHOOK_ABI_VERSION */
	const char *name; /* [a-z0-9_-]{1,32}, unique per daemon */
	const char *description;
	unsigned flags;   /* OPHOOK_PLUGIN_* */
	/* NULL-terminated list of event patterns ("domain.*", "cert.issued",
	 * "*"); NULL means every event. */
	const char *const *subscriptions;

	/* Called once after load; store private state in *data_r.  A failure
	 * unloads the plugin and logs error_r. */
	int (*init)(struct ophook_ctx *ctx, const struct ophook_host *host,
		    void **data_r, const char **error_r);
	/* Called before unload (also on reload of the .so). */
	void (*fini)(void *data);
	/* Deliver one event.  0 done, OPHOOK_RETRY, or another -errno. */
	int (*on_event)(void *data, const struct ophook_event *ev,
			const char **error_r);
};

/* The one symbol a plugin exports. */
extern OPHOOK_EXPORT const struct ophook_plugin ophook_plugin;

#ifdef __cplusplus
}
#endif
#endif
