/* The plugin host: loads C plugins (.so) from plugin_dirs, checks their ABI,
 * gives them the host table and turns each into a handler. */
#ifndef OPHOOK_PLUGINHOST_H
#define OPHOOK_PLUGINHOST_H

#include <jansson.h>
#include <stdbool.h>

#include "control.h"

struct config;
struct engine;
struct pluginhost;

/* Create the host for engine e (nothing loaded yet). */
struct pluginhost *pluginhost_new(struct engine *e);
/* Load every *.so in the plugin dirs that the config does not disable.
 * Failures are logged with the file and reason and do not stop the others;
 * *loaded_r gets the number loaded. */
void pluginhost_load_all(struct pluginhost *ph, unsigned *loaded_r);
/* Load one file.  0, or -errno with *error_r (malloc'd) naming the file and
 * the reason (ABI mismatch naming both versions, duplicate name, ...). */
int pluginhost_load(struct pluginhost *ph, const char *path, char **error_r);
/* Look for new .so files in the admin drop-in dir every `interval_ms`. */
void pluginhost_watch(struct pluginhost *ph, unsigned interval_ms);
/* Unload a plugin by name (fini once its calls are over). */
int pluginhost_unload(struct pluginhost *ph, const char *name);
/* Load again a plugin that was loaded once (by name), even when the config
 * disables it.  -EALREADY when loaded, -ENOENT when never seen. */
int pluginhost_enable(struct pluginhost *ph, const char *name, char **error_r);
/* Load the plugin's file again (the new build when it was replaced) with
 * the config's current settings, once the old code's calls are over:
 * 0 when done now, 1 when it happens after the calls in flight, -ENOENT
 * with *error_r when not loaded.  Isolated plugins get a new runner. */
int pluginhost_reload(struct pluginhost *ph, const char *name, char **error_r);
/* [{"name", "file", "description", "abi", "state": "running",
 * "isolation": "inline"|"process", "pid" (isolated), "inode", "mtime_ms",
 * "crashes"}, ..., {"name", "state": "quarantined", "reason"}] */
json_t *pluginhost_list(struct pluginhost *ph);
/* True while a plugin action runs on the thread pool. */
bool pluginhost_busy(struct pluginhost *ph);

/* The daemon is stopping: from now on host->stopping() says true, so that
 * plugins give up long work (their checkers are killed) at once. */
void pluginhost_stopping(struct pluginhost *ph);
/* Unload everything and free; NULLs *ph. */
void pluginhost_free(struct pluginhost **ph);

/* `ophookd --check-config`: load each enabled plugin of the plugin dirs
 * that declares its settings (OPHOOK_PLUGIN_DECLARES_SETTINGS) in
 * check-only mode, with no engine: its init() only declares its settings
 * and returns, doing nothing else.  0, or -EINVAL with *error_r (malloc'd,
 * "FILE:LINE:COL: plugins.NAME.settings.KEY: ...") for the first bad
 * setting. */
int pluginhost_check_config(const struct config *cfg, char **error_r);

/* Validate a plugin file before dlopen: a regular file (not a symlink)
 * owned by root or by us, not writable by group or others.  0 or -errno
 * with *why_r. */
int pluginhost_check_file(const char *path, const char **why_r);

/* plugins.list, plugins.enable, plugins.disable, plugins.reload; ctx: the
 * struct pluginhost. */
extern const struct control_command pluginhost_commands[];

#endif
