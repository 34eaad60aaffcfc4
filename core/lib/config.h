/* ophookd.yaml: strict YAML configuration (libyaml).  Unknown keys, wrong
 * types and missing files are errors reported as FILE:LINE:COL: message. */
#ifndef OPHOOK_CONFIG_H
#define OPHOOK_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_PATH "/etc/openpanel/ophookd/ophookd.yaml"

/* `plugins.NAME.mode`: which events a handler gets in a cluster (journal
 * backend mysql; with sqlite every mode is local). */
enum config_mode {
	CONFIG_MODE_LOCAL = 0,  /* this node's events (default) */
	CONFIG_MODE_FANOUT = 1, /* every node's events, once per node */
	CONFIG_MODE_SHARED = 2, /* every node's events, once in the cluster */
};

/* `plugins.NAME.isolation`: where a C plugin runs. */
enum config_isolation {
	CONFIG_ISOLATION_DEFAULT = 0, /* unset: process for a plugin of the
					 admin's drop-in folder (the last of
					 plugin_dirs), inline for the others */
	CONFIG_ISOLATION_INLINE,      /* inside ophookd */
	CONFIG_ISOLATION_PROCESS,     /* in its own ophook-plugin-runner */
};

#define CONFIG_CRASH_LIMIT_DEF 3u
#define CONFIG_CRASH_WINDOW_DEF_MS 600000u

struct config_plugin {
	char *name;       /* key under `plugins:` */
	bool enabled;     /* `enabled:` (default true: not disabled) */
	bool enabled_set; /* `enabled:` is written: a plugin of a system
			     plugin folder loads only with `enabled: true` */
	enum config_isolation isolation; /* `isolation:` process|inline */
	unsigned crash_limit;     /* `crash_limit:` crashes (1..1000, 3) ... */
	unsigned crash_window_ms; /* `crash_window:` ... within this (10m)
				     before the plugin is quarantined */
	enum config_mode mode; /* `mode:` local|fanout|shared (local) */
	json_t *settings; /* `settings:` as a JSON object (scalars as strings,
			     sequences as arrays, maps as objects); never NULL */
	json_t *settings_pos; /* settings key -> [key line, key column, value
				 line, value column]; never NULL */
	char *file;       /* config file, line, column of the entry, for errors */
	int line, column;
};

/* One `containers.sockets` entry: an API socket and whose it is. */
struct config_csocket {
	char *path;   /* absolute */
	unsigned uid; /* the user it belongs to (0: root's, the system's) */
	bool docker;  /* `api: docker` (Docker's /events), else libpod */
};

struct config {
	char *file;          /* the file this was loaded from */
	char *node;          /* `node`: this server's name (default hostname) */
	char *root;          /* `root`: OpenPanel tree (/etc/openpanel) */
	char **watch_extra;  /* `watch_extra`: extra roots (files or folders) */
	size_t n_watch_extra;
	char *state_dir;     /* `state_dir` (/var/lib/ophookd) */
	char *socket;        /* `socket` (/run/ophookd.sock) */
	char *socket_group;  /* `socket_group`: group also allowed (NULL) */
	unsigned socket_max_clients; /* `socket_max_clients`: clients at once
					(64) */
	unsigned socket_idle_ms;     /* `socket_idle_ms`: an idle client is
					closed after (300000) */
	unsigned socket_request_ms;  /* `socket_request_ms`: a request line
					finished, replies read within
					(30000) */
	char *metrics_listen; /* `metrics_listen`: loopback ADDR:PORT serving
				 GET /metrics (NULL = off) */
	struct {
		char *listen;     /* `console.listen`: loopback ADDR:PORT or a
				     Unix socket path (NULL = off) */
		char *token_file; /* `console.token_file`: 0600 root file
				     holding the login token */
	} console;
	struct {
		char *bind;  /* `paths.bind`: BIND's folder (/etc/bind) */
		char *bind_cache; /* `paths.bind_cache`: named's working
				     folder (/var/cache/bind) */
		char *mail;  /* `paths.mail`: docker-mailserver's tree
				(/usr/local/mail/openmail) */
		char *log;   /* `paths.log`: the logs (/var/log) */
		char *csf;   /* `paths.csf`: csf's config (/etc/csf) */
		char *systemd; /* `paths.systemd`: systemd's config
				  (/etc/systemd): the user-UID.slice.d
				  drop-ins under system/ and
				  system.control/ */
		char *home;  /* `paths.home`: the users' homes, <home>/<ctx>
				holds crons.ini and backup.env (/home) */
		char *admin_notifications; /* `paths.admin_notifications`:
					      OpenAdmin's notification log
					      (<paths.log>/openpanel/admin/
					      notifications.log) */
	} paths;             /* the host's trees outside root: watch_extra's
				default and the plugins' default paths */
	char **plugin_dirs;  /* `plugin_dirs` (system dir, admin drop-in dir) */
	size_t n_plugin_dirs;
	char *hooks_dir;     /* `hooks_dir` (/etc/openpanel/ophookd/hooks) */
	char *log_level;     /* `log_level`: debug|info|warn|error (info) */
	char *log;           /* `log`: stderr|syslog (stderr) */

	struct {
		char **fail_open;    /* `checks.fail_open`: patterns of the
					intents a check allows when it cannot
					be answered (a pre hook fails, is not
					loaded, or ophookd is down); others
					fail closed (none) */
		size_t n_fail_open;
		bool relay;          /* `checks.relay` (true): listen on
					relay_socket too */
		char *relay_socket;  /* `checks.relay_socket`
					(/etc/openpanel/ophookd/guard.sock):
					a second socket that answers only
					`check`, for the guard's hooks inside
					the openpanel container, which sees
					/etc/openpanel but not /run */
	} checks;

	struct {
		char **extra_keys;   /* `secrets.extra_keys`: fnmatch patterns
					of openpanel.config keys whose values
					are secret, added to the built-in list
					(classify_secret_defaults) */
		size_t n_extra_keys;
	} secrets;

	struct {
		char *driver;        /* `panel_db.driver`: sqlite|mysql (sqlite) */
		char *path;          /* `panel_db.path`: SQLite file */
		char *option_file;   /* `panel_db.option_file`: my.cnf-style
					(/etc/openpanel/mysql/host_my.cnf,
					which /etc/my.cnf links to) */
		char *database;      /* `panel_db.database` (panel) */
		char *admin_db;      /* `panel_db.admin_db`: OpenAdmin users.db
					(/etc/openpanel/openadmin/users.db) */
		unsigned poll_ms;    /* `panel_db.poll_ms` (5000); 0 = off */
		unsigned merge_wait_ms; /* `panel_db.merge_wait_ms` (15000): a
					   user's folder or row waits this
					   long for the other */
	} panel_db;

	struct {
		unsigned max_attempts;   /* `journal.max_attempts` (8) */
		unsigned backoff_ms;     /* `journal.backoff_ms`: first retry (1000) */
		unsigned backoff_max_ms; /* `journal.backoff_max_ms` (600000) */
		unsigned retention_s;    /* `journal.retention_s`: keep done rows
					    (604800) */
		unsigned batch;          /* `journal.batch`: max events per
					    transaction (4096) */
		char *sync;              /* `journal.sync`: full|normal (full) */
		char *backend;           /* `journal.backend`: sqlite|mysql */
		char *host;              /* `journal.host` (NULL: localhost) */
		unsigned port;           /* `journal.port` (3306) */
		char *socket;            /* `journal.socket` (NULL) */
		char *user;              /* `journal.user` (NULL) */
		char *password_file;     /* `journal.password_file` (NULL) */
		char *database;          /* `journal.database` (ophook) */
		unsigned poll_ms;        /* `journal.poll_ms`: fan-out/shared
					    poll period (200) */
		unsigned lease_ms;       /* `journal.lease_ms`: shared-work
					    claim lease (30000) */
	} journal;

	struct {
		unsigned concurrency;    /* `dispatch.concurrency`: deliveries in
					    flight at once (64) */
		unsigned timeout_ms;     /* `dispatch.timeout_ms`: per handler
					    call (30000) */
		unsigned threads;        /* `dispatch.threads`: worker threads for
					    plugins (8) */
	} dispatch;

	struct {
		unsigned settle_ms;      /* `watch.settle_ms` (50) */
		unsigned reconcile_s;    /* `watch.reconcile_s`: periodic full
					    reconcile (3600); 0 = off */
		bool enabled;            /* `watch.enabled` (true) */
	} watch;

	struct {
		unsigned memory_kb;      /* `hooks.lua_memory_kb` (16384) */
		unsigned timeout_ms;     /* `hooks.timeout_ms` (5000) */
		unsigned output_max;     /* `hooks.output_max`: bytes of exec
					    output kept (4096) */
		char **file_roots;       /* `hooks.file_roots`: where read_file /
					    write_file may go (root) */
		size_t n_file_roots;
	} hooks;

	struct {
		bool enabled;            /* `containers.enabled` (false) */
		char *root_socket;       /* `containers.root_socket`: root's
					    Podman (/run/podman/podman.sock);
					    NULL = none */
		char *run_user_dir;      /* `containers.run_user_dir`: each
					    user's <uid>/podman/podman.sock
					    and <uid>/docker.sock (/run/user);
					    NULL = no scan */
		char *home_dir;          /* `containers.home_dir`: uid -> ctx
					    by the owner of <home_dir>/<ctx>
					    (/home) */
		char *kmsg;              /* `containers.kmsg`: kernel log for
					    OOM kills (/dev/kmsg); NULL = off */
		struct config_csocket *sockets; /* `containers.sockets` */
		size_t n_sockets;
		unsigned scan_ms;        /* `containers.scan_ms` (2000) */
		unsigned reconnect_ms;   /* `containers.reconnect_ms` (1000) */
		unsigned catchup_slack_s; /* `containers.catchup_slack_s` (10) */
		unsigned restart_loop_deaths;   /* (5) */
		unsigned restart_loop_window_s; /* (300) */
		unsigned reason_window_s; /* `containers.reason_window_s` (120) */
		bool peer_check;         /* `containers.peer_check` (true): a
					    socket found under run_user_dir
					    must be served by its uid */
	} containers;

	struct {
		bool enabled;            /* `alerts.enabled` (false) */
		char **cert_thresholds;  /* `alerts.cert_thresholds`: durations
					    before not_after (14d, 7d, 1d) */
		size_t n_cert_thresholds;
		int64_t cert_th_s[16];   /* the same in seconds, largest first
					    (filled by config_load) */
		char **quota_levels;     /* `alerts.quota_levels`: percent of
					    the limit (90, 100) */
		size_t n_quota_levels;
		unsigned quota_lv[16];   /* the same, ascending */
		unsigned quota_margin;   /* `alerts.quota_margin`: points
					    below a level before it is left
					    (5) */
		unsigned quota_interval_s; /* `alerts.quota_interval_s` (300);
					      0 = no quota alerts */
		char **quota_command;    /* `alerts.quota_command`: argv
					    (repquota -a -u -O csv) */
		size_t n_quota_command;
		unsigned quota_timeout_ms; /* `alerts.quota_timeout_ms`
					      (30000) */
		char *backup_container;  /* `alerts.backup_container`: the
					    per-user backup container's name
					    (backup); NULL = off */
	} alerts;

	struct config_plugin *plugins; /* `plugins:` map NAME -> {...} */
	size_t n_plugins;

	/* each top-level key of the file with a digest of its YAML value,
	 * for telling what a reload changed (config_changed_keys) */
	struct config_section {
		char *key;
		uint64_t digest;
	} *sections;
	size_t n_sections;
};

/* Defaults for every key (root /etc/openpanel etc.). Caller frees. */
struct config *config_new_default(void);

/* Load and check `path`.  On error returns -errno (-ENOENT for a missing
 * file, -EINVAL for a bad one) and sets *error_r to a malloc'd string
 * "FILE:LINE:COL: message" (or "FILE: message" when there is no position);
 * the caller frees it. */
int config_load(const char *path, struct config **config_r, char **error_r);

/* Check references to files and folders (root exists, plugin_dirs exist,
 * ...).  Same error convention as config_load. */
int config_check_paths(const struct config *config, char **error_r);

/* The plugin entry `name`, or NULL. */
const struct config_plugin *config_plugin_find(const struct config *config,
					       const char *name);

void config_free(struct config **config);

/* The top-level keys whose YAML differs between the files a and b were
 * loaded from (added, removed or edited; a key given its default value
 * counts as edited), but those in `skip` (NULL-terminated), as "k1, k2"
 * into buf (empty: none). */
void config_changed_keys(const struct config *a, const struct config *b,
			 const char *const *skip, char *buf, size_t size);

#endif
