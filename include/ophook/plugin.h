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
 * Settings: a plugin declares the keys of its plugins.NAME.settings
 * (struct ophook_setting_decl, host->settings_declare() first thing in
 * init(), flag OPHOOK_PLUGIN_DECLARES_SETTINGS); the host checks them and
 * `ophookd --check-config` loads such plugins in a check-only mode where
 * init() returns OPHOOK_SETTINGS_CHECKED before doing anything else.
 *
 * Errors: functions return 0 or a negative errno.  A human-readable message
 * goes out through `const char **error_r`; the plugin owns that string and it
 * must stay valid until the next call into the plugin from the same thread
 * (a static or thread-local buffer is fine).
 */
#ifndef OPHOOK_PLUGIN_H
#define OPHOOK_PLUGIN_H

#include <stdbool.h>
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

/* Plugin flag: init() calls host->settings_declare() before anything else
 * and returns at once what it returns when that is not 0 (see
 * OPHOOK_SETTINGS_CHECKED).  Only plugins with this flag are loaded by
 * `ophookd --check-config`; the settings of the others are not checked. */
#define OPHOOK_PLUGIN_DECLARES_SETTINGS 0x4u

/* Settings schema (Knot DNS's module config schema): a plugin declares the
 * keys of its `plugins.NAME.settings`, the host checks the config against
 * them (unknown key, wrong type, out of bounds, value not allowed: an error
 * naming FILE:LINE:COL of the YAML node) and hands out typed values. */
enum ophook_setting_type {
	OPHOOK_SETTING_STRING = 1, /* any scalar, as text */
	OPHOOK_SETTING_PATH,       /* an absolute path */
	OPHOOK_SETTING_INT,        /* a decimal integer in [min, max] */
	OPHOOK_SETTING_MS,         /* a duration in ms in [min, max]: a
				    * number (ms) or with a unit: 250ms, 5s,
				    * 2m, 1h */
	OPHOOK_SETTING_BOOL,       /* true/false, yes/no, on/off, 1/0 */
	OPHOOK_SETTING_ENUM,       /* one of `values` */
	OPHOOK_SETTING_LIST,       /* a sequence of scalars, or one scalar as
				    * a list of one */
	OPHOOK_SETTING_ARGV,       /* a command: a non-empty sequence of
				    * strings, or a string of words split on
				    * blanks (no shell) */
	OPHOOK_SETTING_MAP,        /* a mapping of names to scalars */
};

/* Setting flags. */
#define OPHOOK_SETTING_REQUIRED 0x1u /* no default: must be set */

/* One declared setting. */
struct ophook_setting_decl {
	const char *name;              /* key under settings: */
	enum ophook_setting_type type;
	const char *def;               /* default in the config's own syntax
					* ("22", "5s", "[\"ufw\"]" for a
					* list or argv), NULL: none.  A
					* path default names the config's
					* trees, never a fixed system path:
					* ${root}, ${state_dir},
					* ${paths.bind}, ${paths.bind_cache},
					* ${paths.mail}, ${paths.log},
					* ${paths.csf} are replaced by them
					* ("${paths.log}/caddy/domlogs");
					* an older host refuses such a
					* default as not absolute */
	int64_t min, max;              /* INT, MS: bounds (both 0: any) */
	const char *const *values;     /* ENUM: NULL-terminated */
	const char *description;       /* one short line */
	unsigned flags;                /* OPHOOK_SETTING_* */
};

/* settings_declare() result in a check-only load (`ophookd
 * --check-config`): the settings are good and init() must return it at
 * once, having done nothing else. */
#define OPHOOK_SETTINGS_CHECKED 1

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

	/* Declare the plugin's settings (decls: n entries, kept by the host
	 * until fini()).  Called first thing in init(), once.  The host
	 * checks plugins.NAME.settings against them.  0: good, read them with
	 * the setting_* calls below; OPHOOK_SETTINGS_CHECKED: good, but this
	 * is a check-only load (init() returns it at once); -EINVAL: a bad
	 * setting, or a bad declaration, with *error_r
	 * ("FILE:LINE:COL: plugins.NAME.settings.KEY: ...", valid until
	 * fini()): init() returns it.  Plugins set
	 * OPHOOK_PLUGIN_DECLARES_SETTINGS and test
	 * OPHOOK_HOST_HAS(host, settings_declare). */
	int (*settings_declare)(struct ophook_ctx *ctx,
				const struct ophook_setting_decl *decls,
				size_t n, const char **error_r);
	/* Typed values of declared settings: the checked value, else the
	 * declared default.  STRING, PATH, ENUM: text, NULL when neither is
	 * set.  INT, MS (ms): a number, 0 when neither.  BOOL: false when
	 * neither.  LIST, ARGV: a NULL-terminated array; MAP: name, value,
	 * name, value, ..., NULL; NULL when neither.  Owned by the host,
	 * valid until fini(), thread-safe.  An undeclared key reads as
	 * unset. */
	const char *(*setting_str)(struct ophook_ctx *ctx, const char *key);
	int64_t (*setting_int)(struct ophook_ctx *ctx, const char *key);
	bool (*setting_bool)(struct ophook_ctx *ctx, const char *key);
	const char *const *(*setting_list)(struct ophook_ctx *ctx,
					   const char *key);
	/* True when the config sets key (a default does not count). */
	bool (*setting_is_set)(struct ophook_ctx *ctx, const char *key);

	/* True once the daemon is stopping: long work in a call or an action
	 * (a checker on customer input, a slow tool) should give up and
	 * return OPHOOK_RETRY, so that the event stays pending and the stop
	 * is prompt.  Thread-safe and cheap: poll it.  (An isolated plugin's
	 * runner always says false: its process is ended at stop.) */
	bool (*stopping)(struct ophook_ctx *ctx);
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
