/* A fake plugin host for unit tests of C plugins (collectd's libplugin_mock
 * style).  Link tests/unit/libpluginmock.la.
 *
 *   struct pluginmock *m = pluginmock_new("{\"window_ms\": 0}");
 *   pluginmock_set_plugin(m, &ophook_plugin);   // or pluginmock_load(m, so)
 *   assert_int_equal(pluginmock_init(m, &err), 0);
 *   struct ophook_event *ev = pluginmock_event("domain.added", "a.test",
 *                                 "{\"domain\":\"a.test\"}");
 *   assert_int_equal(pluginmock_deliver(m, ev, &err), 0);
 *   pluginmock_run_actions(m);                  // run coalesced actions
 *   pluginmock_event_free(&ev);
 *   pluginmock_free(&m);                        // fini, dlclose, rm -rf
 *
 * The host it gives the plugin: setting() reads the settings JSON object;
 * log() records each line and prints it as a TAP diagnostic ("# ...");
 * emit() records (type, subject, fields); request_action() records the
 * request and keeps the action pending until pluginmock_run_actions();
 * state_dir() and root() are fresh folders under a temp folder removed by
 * pluginmock_free(); event_get() reads a top-level field of events made by
 * pluginmock_event(); own_write() records paths; settings_declare() and
 * the typed setting_*() getters check the settings JSON with the host's own
 * checker (core/plugsettings.c; messages without a file position).  Host
 * calls are thread-safe (one mutex). */
#ifndef OPHOOK_PLUGINMOCK_H
#define OPHOOK_PLUGINMOCK_H

#include <stdbool.h>
#include <stddef.h>

#include "ophook/plugin.h"

struct pluginmock;

/* One event the plugin emitted. */
struct pluginmock_emitted {
	char *type;
	char *subject;
	char *fields; /* JSON object text or NULL */
};

/* A new mock with settings from a JSON object text (NULL: none).  Makes a
 * temp folder with root/ and state/ inside.  Aborts on failure (tests). */
struct pluginmock *pluginmock_new(const char *settings_json);
/* Call the plugin's fini() if init() succeeded, dlclose a loaded .so,
 * remove the temp folder (unless PLUGINMOCK_KEEP=1), free; sets NULL. */
void pluginmock_free(struct pluginmock **m);

/* Replace the settings (JSON object text); only before pluginmock_init(). */
void pluginmock_set_settings(struct pluginmock *m, const char *settings_json);
/* Set one setting: value_json is any JSON value text ("\"x\"", "5",
 * "[\"a\"]"); NULL removes it. */
void pluginmock_set_setting(struct pluginmock *m, const char *key,
			    const char *value_json);

/* A check-only load (`ophookd --check-config`): settings_declare() answers
 * OPHOOK_SETTINGS_CHECKED when the settings are good. */
void pluginmock_check_only(struct pluginmock *m, bool on);

/* What host->stopping() says from now on (default false). */
void pluginmock_stopping(struct pluginmock *m, bool on);

/* The last settings_declare() error, or NULL. */
const char *pluginmock_settings_error(struct pluginmock *m);

/* Load a plugin .so by path (dlopen RTLD_NOW|RTLD_LOCAL, dlsym
 * "ophook_plugin"); checks the ABI version.  0 or -errno with *error_r. */
int pluginmock_load(struct pluginmock *m, const char *path,
		    const char **error_r);
/* Use a plugin struct linked into the test. */
void pluginmock_set_plugin(struct pluginmock *m,
			   const struct ophook_plugin *plugin);
/* The plugin in use (NULL before load/set). */
const struct ophook_plugin *pluginmock_plugin(struct pluginmock *m);

/* Call the plugin's init() with the fake host; 0 or its error. */
int pluginmock_init(struct pluginmock *m, const char **error_r);
/* Call fini() now (pluginmock_free() then does not). */
void pluginmock_fini(struct pluginmock *m);
/* The plugin's private data from init(). */
void *pluginmock_data(struct pluginmock *m);
/* Deliver one event through on_event() (no subscription filtering); its
 * return value. */
int pluginmock_deliver(struct pluginmock *m, const struct ophook_event *ev,
		       const char **error_r);
/* Build an event and deliver it; json NULL gives a payload with the
 * standard fields only.  Returns on_event()'s result. */
int pluginmock_send(struct pluginmock *m, const char *type,
		    const char *subject, const char *json,
		    const char **error_r);
/* True when the plugin subscribes to this event type. */
bool pluginmock_subscribed(struct pluginmock *m, const char *type);

/* The fake host table and the ctx handed to init(). */
const struct ophook_host *pluginmock_host(struct pluginmock *m);
struct ophook_ctx *pluginmock_ctx(struct pluginmock *m);

/* The temp folder, root() and state_dir() folders. */
const char *pluginmock_tmp(struct pluginmock *m);
const char *pluginmock_root(struct pluginmock *m);
const char *pluginmock_state_dir(struct pluginmock *m);
/* Files and folders under the temp folder besides root/ and state/
 * themselves: 0 right after pluginmock_new() (a check-only init must leave
 * it so). */
size_t pluginmock_tmp_entries(struct pluginmock *m);

/* Log lines recorded ("LEVEL message"; LEVEL is debug/info/warn/error). */
size_t pluginmock_log_count(struct pluginmock *m);
const char *pluginmock_log_line(struct pluginmock *m, size_t i);
/* Number of log lines containing substr. */
size_t pluginmock_log_grep(struct pluginmock *m, const char *substr);

/* Emitted events, in order; count of those of a type (NULL: all).  A
 * pointer from pluginmock_emitted() is valid until the next emit(). */
size_t pluginmock_emitted_count(struct pluginmock *m, const char *type);
const struct pluginmock_emitted *pluginmock_emitted(struct pluginmock *m,
						    size_t i);
/* Make emit() fail with ret (0: succeed again). */
void pluginmock_emit_fail(struct pluginmock *m, int ret);

/* Number of request_action() calls for name (NULL: all names). */
unsigned pluginmock_action_requests(struct pluginmock *m, const char *name);
/* Number of times the action name has run (NULL: all). */
unsigned pluginmock_action_calls(struct pluginmock *m, const char *name);
/* True when an action is requested and has not run since. */
bool pluginmock_action_pending(struct pluginmock *m, const char *name);
/* The delay_ms of the last request of name, or 0. */
unsigned pluginmock_action_delay(struct pluginmock *m, const char *name);
/* Run pending actions (as the host's loop would), again while actions
 * request themselves, at most 100 rounds.  Returns the number of calls. */
unsigned pluginmock_run_actions(struct pluginmock *m);

/* Paths passed to own_write(), in order. */
size_t pluginmock_own_write_count(struct pluginmock *m);
const char *pluginmock_own_write(struct pluginmock *m, size_t i);
bool pluginmock_own_written(struct pluginmock *m, const char *path);

/* An event as the host would deliver it.  json: the payload (a JSON object
 * text) or NULL; id/type/subject/source/time are added to it when absent.
 * Aborts on bad JSON.  event_get() works on events made here only. */
struct ophook_event *pluginmock_event(const char *type, const char *subject,
				      const char *json);
void pluginmock_event_free(struct ophook_event **ev);

#endif
