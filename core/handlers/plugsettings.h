/* Plugin settings checked against the schema a plugin declares
 * (struct ophook_setting_decl, include/ophook/plugin.h): the checker behind
 * host->settings_declare and the typed getters.  Self-contained (jansson
 * and libc only) so the fake plugin host of the unit tests uses it too. */
#ifndef OPHOOK_PLUGSETTINGS_H
#define OPHOOK_PLUGSETTINGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ophook/plugin.h"

struct plugsettings;

/* Where the settings came from, for messages; every field may be NULL/0. */
struct plugsettings_src {
	const char *plugin; /* plugin name: "plugins.NAME.settings.KEY" */
	const char *file;   /* config file */
	const json_t *pos;  /* key -> [key line, key col, value line, value
			       col] (config_plugin.settings_pos) */
	int line, column;   /* the plugin's entry, for a missing setting */
	const json_t *vars; /* name -> path: what ${root}, ${state_dir},
			       ${paths.bind|bind_cache|mail|log|
			       csf} in a declared
			       default stand for (NULL, or a name missing:
			       the config's built-in default) */
};

/* Check settings (a JSON object as the config gives it: scalars as
 * strings) against decls[0..n-1] and keep the typed values, defaults
 * filled in.  decls must outlive *ps_r.  0 with *ps_r; -EINVAL with
 * *error_r (malloc'd, "FILE:LINE:COL: plugins.NAME.settings.KEY: ...");
 * -ENOMEM. */
int plugsettings_new(const struct plugsettings_src *src,
		     const json_t *settings,
		     const struct ophook_setting_decl *decls, size_t n,
		     struct plugsettings **ps_r, char **error_r);
/* The typed getters (see struct ophook_host): NULL/0/false when key is
 * unset without a default, or undeclared; ps may be NULL. */
const char *plugsettings_str(const struct plugsettings *ps, const char *key);
int64_t plugsettings_int(const struct plugsettings *ps, const char *key);
bool plugsettings_bool(const struct plugsettings *ps, const char *key);
const char *const *plugsettings_list(const struct plugsettings *ps,
				     const char *key);
bool plugsettings_is_set(const struct plugsettings *ps, const char *key);
/* Free and NULL *ps. */
void plugsettings_free(struct plugsettings **ps);

#endif
