/* bind9 plugin: the plugin's state and the helpers of bind9.c that
 * secondary.c uses.  Private to the plugin. */
#ifndef OPHOOK_BIND9_H
#define OPHOOK_BIND9_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "ophook/plugin.h"
#include "../common/run.h"

#define BIND9_FILE_MAX (16u * 1024u * 1024u)
#define BIND9_RUN_TIMEOUT_MS 60000u
#define BIND9_RNDC_RETRIES 10u
/* Staged zones per named-checkconf run (its output stays far below
 * run_argv's 1 MiB cap). */
#define BIND9_BATCH_MAX 2000u
/* Default folder of the transferred zones of a secondary. */
#define BIND9_SECONDARY_DIR "${paths.bind_cache}/secondary"
/* Comment line naming a zone's owner, added at the end of new zones. */
#define BIND9_OWNER_TAG "; ophook-owner: "

struct bind9 {
	struct ophook_ctx *ctx;
	const struct ophook_host *host;

	char *zones_dir;     /* where zone files live */
	char *conf_path;     /* named.conf.local */
	char *conf_file;     /* zone path in the zone line: folder or {domain} pattern */
	char *template_path; /* NULL: built-in template */
	char *server_ip;     /* NULL: adds fail */
	char *ns1, *ns2, *rpemail; /* settings, NULL: openpanel.config */
	char *state_path;    /* zones.json */
	char *removed_dir;   /* NULL: delete removed zone files */
	char *staging_dir;   /* new zones wait here for the batch check */
	char *staging_named; /* the same folder as named sees it */
	/* commands, owned by the host until fini */
	const char *const *rndc_argv;
	const char *const *checkzone_argv;
	const char *const *checkconf_argv;
	unsigned window_ms;
	unsigned reload_all_max; /* more changed zones: one `rndc reload` */
	/* named-checkzone on customer zones (README "Checking customer
	 * zones"): memory, CPU, uid, wall clock; cancelled at stop */
	struct run_opts check_lim;
	unsigned check_timeout_ms;
	uint64_t generate_max;
	struct run_opts tool_lim; /* rndc, named-checkconf: cancel only */

	pthread_mutex_t lock; /* files and state */
	json_t *state;        /* {"zones": {d: {user, serial, hash}}, "subs": {d: parent}} */

	pthread_mutex_t rlock; /* what the next rndc action does */
	bool reconfig;
	json_t *reload;        /* set of zones */
	unsigned rndc_failures;
	unsigned long reloads; /* rndc runs so far */

	/* several nodes (README "Primary and secondary") */
	bool primary;          /* role primary or both: this node's events */
	bool secondary;        /* role secondary or both: other nodes' events */
	char *node;            /* host node(), else setting, else hostname */
	char *opts;            /* notify/allow-transfer for master zone lines */
	json_t *primaries;     /* {node: "IP port N"} */
	char *sec_dir;         /* secondary zone files (plugin's view) */
	char *sec_named;       /* the same folder as named sees it */
};

/* Add (add) or remove the zone line of d in named.conf.local; *changed_r
 * when the file changed.  Under b->lock. */
int bind9_conf_edit(struct bind9 *b, const char *d, bool add,
		    bool *changed_r, const char **error_r);

/* The event's domain (field "domain", else the subject), validated and in
 * lower case, in *d_r (the caller frees it). */
int bind9_event_domain(struct bind9 *b, const struct ophook_event *ev,
		       char **d_r, const char **error_r);

/* True when path exists (lstat). */
bool bind9_file_exists(const char *path);

/* A host name for the SOA/NS fields: letters, digits, '-', '.', '_'. */
bool bind9_hostname_ok(const char *s);

/* A path setting that ends up quoted in named.conf: absolute, no quote,
 * backslash or control character. */
int bind9_path_ok(const char *key, const char *path,
		  const char **error_r);

/* Ask for `rndc reconfig` (zone NULL) or `rndc reload zone`. */
void bind9_reload_request(struct bind9 *b, const char *zone);

/* A copy of string setting key, or of def when unset or empty (NULL def:
 * NULL).  0 or -ENOMEM. */
int bind9_str(struct bind9 *b, const char *key, const char *def,
	      char **out_r);

/* Write the state file.  Under b->lock. */
int bind9_state_save(struct bind9 *b, const char **error_r);

/* The state entry of zone d, or NULL.  Under b->lock. */
json_t *bind9_state_zone(struct bind9 *b, const char *d);

/* Write a file named reads (own_write first).  0 or -errno. */
int bind9_write(struct bind9 *b, const char *path, const char *text,
		const char **error_r);

/* The zone file of d in zones_dir (NULL on ENOMEM). */
char *bind9_zone_path(struct bind9 *b, const char *d);

#endif
