/* The daemon: see daemon.h.
 *
 * Start order: journal, bus, plugin host (plugins loaded), hooks, panel
 * DB, bus resume (pending deliveries), cluster, control socket with every
 * subsystem's command table, metrics endpoint, console, watcher,
 * containers, alerts.
 * Stop order: alerts, containers, watcher, panel DB, entity merger (what it held is submitted),
 * console, control socket, metrics endpoint (no new
 * events or requests); the bus drains (running deliveries finish); hooks,
 * plugins, cluster; the bus closes its handlers, dispatcher and journal. */
#include "daemon.h"
#include "alerts.h"
#include "cluster.h"
#include "containers.h"
#include "console.h"
#include "control.h"
#include "ctlcmds.h"
#include "engine.h"
#include "hooks.h"
#include "journal.h"
#include "journal_mysql.h"
#include "log.h"
#include "metrics.h"
#include "entity.h"
#include "paneldb.h"
#include "pluginhost.h"
#include "util.h"
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct daemon {
	uv_loop_t *loop;
	struct config *config;
	struct engine *engine;
	struct pluginhost *plugins;
	struct hooks *hooks;
	struct paneldb *paneldb;
	struct watch *watch;
	struct containers *containers; /* Podman/Docker API streams */
	struct alerts *alerts; /* derived alerts (cert, quota, backup) */
	struct entity *entity; /* merges the watcher's and the DB's users */
	struct control *control;
	struct control *relay; /* checks.relay_socket: `check` only */
	struct cluster *cluster;        /* journal backend mysql only */
	struct metrics_http *metrics_http;
	struct console *console;        /* console.listen, or NULL */
	bool stopping;
	void (*stop_cb)(void *ctx);
	void *stop_ctx;
};

static int daemon_open_journal(const struct config *config,
			       struct journal **j_r, const char **error_r)
{
	struct jmysql_settings ms = {
		.host = config->journal.host,
		.port = config->journal.port,
		.socket = config->journal.socket,
		.user = config->journal.user,
		.password_file = config->journal.password_file,
		.database = config->journal.database,
		.node = config->node,
	};
	struct journal_settings js = {
		.backend = config->journal.backend,
		.sync_full = config->journal.sync == NULL ||
			     strcmp(config->journal.sync, "normal") != 0,
		.mysql = &ms,
	};
	char *path = xasprintf("%s/journal.db", config->state_dir);
	int ret;

	js.path = path;
	ret = journal_open(&js, j_r, error_r);
	free(path);
	return ret;
}

int daemon_new(uv_loop_t *loop, struct config *config, struct daemon **d_r,
	       const char **error_r)
{
	struct journal *journal = NULL;
	struct daemon *d;
	int ret;

	ret = mkdir_p(config->state_dir, 0700);
	if (ret < 0) {
		*error_r = "cannot create state_dir";
		config_free(&config);
		return ret;
	}
	ret = daemon_open_journal(config, &journal, error_r);
	if (ret < 0) {
		config_free(&config);
		return ret;
	}
	d = xcalloc(1, sizeof(*d));
	d->loop = loop;
	d->config = config;
	ret = engine_new(loop, config, journal, &d->engine, error_r);
	if (ret < 0) {
		journal_close(&journal);
		config_free(&d->config);
		free(d);
		return ret;
	}
	if (journal_mysql(journal) != NULL)
		cluster_new(d->engine, journal_mysql(journal), &d->cluster);
	d->plugins = pluginhost_new(d->engine);
	*d_r = d;
	return 0;
}

/* hooks_deps.db_query: the panel DB as it is when the hook asks (it
 * connects after the hooks are loaded, and may be off). */
static int daemon_db_query(void *ctx, const char *sql, json_t *params,
			   json_t **rows_r, char **error_r)
{
	struct daemon *d = ctx;

	if (d->paneldb == NULL) {
		*error_r = xstrdup("no panel database");
		return -ENOTCONN;
	}
	return paneldb_query(d->paneldb, sql, params, rows_r, error_r);
}

static void daemon_status(json_t *status, void *ctx)
{
	struct daemon *d = ctx;
	json_t *errs = hooks_errors(d->hooks), *p;
	size_t i;

	if (d->plugins != NULL) {
		json_t *plugins = pluginhost_list(d->plugins);

		/* quarantined (or any plugin not running) */
		json_array_foreach(plugins, i, p) {
			const char *st = json_string_value(
				json_object_get(p, "state"));
			const char *name = json_string_value(
				json_object_get(p, "name"));

			if (st == NULL || name == NULL ||
			    strcmp(st, "running") == 0)
				continue;
			json_array_append_new(
				errs, json_pack("{s:s+,s:s,s:O?}", "name",
						"plugin:", name, "state", st,
						"error",
						json_object_get(p, "reason")));
		}
		json_object_set_new(status, "plugins", plugins);
	}
	if (d->containers != NULL)
		json_object_set_new(status, "containers",
				    containers_status(d->containers));
	if (d->alerts != NULL)
		json_object_set_new(status, "alerts",
				    alerts_status(d->alerts));
	/* the handlers that should run and do not */
	json_object_set_new(status, "handlers_in_error", errs);
}

/* The socket_group trust model (ophookd.yaml(5) socket_group, ophookctl(8)
 * PERMISSIONS): a member who is not root may look (status, events, tail,
 * metrics, cluster status, hooks and plugins lists), ask the pre hooks
 * (check) and lint or test the admin's own hooks (hooks.c refuses any file
 * that is not root's, inside hooks_dir, writable by root only).  Nothing
 * that journals, delivers or changes the daemon: emit, replay, retry,
 * reconcile, plugins enable/disable/reload are root's. */
static const char *const daemon_group_commands[] = {
	"status", "events", "tail", "metrics", "cluster.status",
	"hooks.list", "plugins.list", "check", "hooks.lint", "hooks.test",
	NULL,
};

static int daemon_start_control(struct daemon *d, const char **error_r)
{
	const struct config *cfg = d->config;
	int ret;

	ret = control_start(d->loop, cfg->socket != NULL ? cfg->socket
							 : "/run/ophookd.sock",
			    cfg->socket_group, &d->control, error_r);
	if (ret < 0)
		return ret;
	control_set_limits(d->control, cfg->socket_max_clients,
			   cfg->socket_idle_ms, cfg->socket_request_ms);
	control_register_table(d->control, ctlcmds_commands, d->engine);
	control_register_table(d->control, engine_commands, d->engine);
	control_register_table(d->control, cluster_commands, d->engine);
	control_register_table(d->control, pluginhost_commands, d->plugins);
	if (d->hooks != NULL)
		control_register_table(d->control, hooks_commands, d->hooks);
	control_allow_group(d->control, daemon_group_commands);
	return 0;
}

/* The guard's relay (checks.relay_socket): a second socket, root only,
 * that answers `check` and nothing else.  The guard's hooks inside the
 * openpanel container reach it through its /etc/openpanel mount (they
 * see neither /run nor ophookctl).  A failure is logged: the control
 * socket and the hooks on the host still work. */
static void daemon_start_relay(struct daemon *d)
{
	const struct config *cfg = d->config;
	const char *path = cfg->checks.relay_socket, *err = NULL;
	char *dir;
	int ret;

	if (!cfg->checks.relay || path == NULL || d->hooks == NULL)
		return;
	dir = xstrdup(path);
	*strrchr(dir, '/') = '\0';
	ret = dir[0] != '\0' ? mkdir_p(dir, 0755) : 0;
	free(dir);
	if (ret == 0)
		ret = control_start(d->loop, path, NULL, &d->relay, &err);
	else
		err = strerror(-ret);
	if (ret < 0) {
		log_error("checks.relay_socket %s: %s (opencli run inside the "
			  "openpanel container cannot be vetoed)", path,
			  err != NULL ? err : "error");
		return;
	}
	control_set_limits(d->relay, cfg->socket_max_clients,
			   cfg->socket_idle_ms, cfg->socket_request_ms);
	for (const struct control_command *c = hooks_commands; c->name; c++)
		if (strcmp(c->name, "check") == 0)
			control_register(d->relay, c->name, c->fn, d->hooks);
}

/* The panel DB's contexts changed: the watcher follows their files. */
static void daemon_contexts(const char *const *contexts, size_t n, void *ctx)
{
	struct daemon *d = ctx;

	watch_set_contexts(d->watch, contexts, n);
}

int daemon_start(struct daemon *d, const char **error_r)
{
	const struct config *cfg = d->config;
	struct hooks_deps deps = { .db_query = daemon_db_query, .db_ctx = d };
	unsigned loaded = 0;
	int ret;

	engine_set_status_fn(d->engine, daemon_status, d);
	pluginhost_load_all(d->plugins, &loaded);
	pluginhost_watch(d->plugins, 2000);
	ret = hooks_start(d->engine, &deps, &d->hooks, error_r);
	if (ret < 0)
		log_error("hooks: %s", *error_r);
	ret = entity_new(d->engine, &d->entity, error_r);
	if (ret < 0)
		log_error("entities: %s", *error_r);
	ret = paneldb_start(d->engine, d->entity, &d->paneldb, error_r);
	if (ret < 0)
		log_error("panel db: %s", *error_r);
	engine_start(d->engine);
	if (d->cluster != NULL)
		cluster_start(d->cluster);
	ret = daemon_start_control(d, error_r);
	if (ret < 0)
		return ret;
	daemon_start_relay(d);
	if (cfg->metrics_listen != NULL) {
		ret = metrics_http_start(d->loop, cfg->metrics_listen,
					 engine_metrics_text, d->engine,
					 &d->metrics_http, error_r);
		if (ret < 0)
			log_error("metrics_listen %s: %s", cfg->metrics_listen,
				  *error_r);
		else
			log_info("metrics on http://%s/metrics",
				 cfg->metrics_listen);
	}
	if (cfg->console.listen != NULL) {
		/* it speaks to the control socket: started after it */
		ret = console_start(cfg, &d->console, error_r);
		if (ret < 0)
			return ret;
	}
	if (cfg->watch.enabled) {
		ret = watch_start(d->engine, d->entity, &d->watch, error_r);
		if (ret < 0)
			log_error("watch: %s", *error_r);
	}
	/* the panel's contexts: whose crons.ini and backup.env to watch */
	if (d->watch != NULL)
		paneldb_on_contexts(d->paneldb, daemon_contexts, d);
	ret = containers_start(d->engine, &d->containers, error_r);
	if (ret < 0)
		log_error("containers: %s", *error_r);
	ret = alerts_start(d->engine, d->watch, &d->alerts, error_r);
	if (ret < 0)
		log_error("alerts: %s", *error_r);
	/* NULL when the watcher is off: the command says so */
	control_register_table(d->control, watch_commands, d->watch);
	log_info("ophookd %s started: %u plugins, %zu handlers, node %s",
		 OPHOOK_VERSION, loaded, engine_handler_count(d->engine),
		 cfg->node);
	return 0;
}

static bool daemon_busy(void *ctx)
{
	struct daemon *d = ctx;

	return d->plugins != NULL && pluginhost_busy(d->plugins);
}

static void daemon_drained(void *ctx)
{
	struct daemon *d = ctx;

	hooks_stop(&d->hooks);
	pluginhost_free(&d->plugins);
	cluster_free(&d->cluster);
	engine_finish(d->engine);
	log_info("ophookd stopped: journal closed");
	if (d->stop_cb != NULL)
		d->stop_cb(d->stop_ctx);
}

void daemon_stop(struct daemon *d, void (*cb)(void *ctx), void *ctx)
{
	if (d->stopping)
		return;
	d->stopping = true;
	d->stop_cb = cb;
	d->stop_ctx = ctx;
	log_info("stopping");
	pluginhost_stopping(d->plugins);
	alerts_stop(&d->alerts);
	containers_stop(&d->containers);
	paneldb_on_contexts(d->paneldb, NULL, NULL);
	watch_stop(&d->watch);
	paneldb_stop(&d->paneldb);
	entity_free(&d->entity); /* what it held goes to the engine */
	console_stop(&d->console); /* before the control socket it uses */
	control_stop(&d->control);
	control_stop(&d->relay);
	metrics_http_stop(&d->metrics_http);
	engine_stop(d->engine, daemon_busy, daemon_drained, d);
}

/* Say which edited settings a reload does not apply: everything but the
 * log settings and disabling a plugin is read at start only. */
static void daemon_reload_tell(const struct config *running,
			       const struct config *nc)
{
	static const char *const live[] = { "log", "log_level", NULL };
	char keys[1024];

	config_changed_keys(running, nc, live, keys, sizeof(keys));
	if (keys[0] != '\0')
		log_warn("reload: %s changed in %s: not applied until ophookd "
			 "restarts (a reload applies log, log_level and a "
			 "plugin's enabled: false)", keys, nc->file);
}

int daemon_reload(struct daemon *d, const char **error_r)
{
	struct config *nc = NULL;
	enum log_level lvl;
	char *err = NULL;
	int ret;

	ret = config_load(d->config->file, &nc, &err);
	if (ret < 0) {
		log_error("reload: %s (keeping the running config)", err);
		free(err);
		*error_r = "config has errors; see the log";
		return ret;
	}
	/* Settings that can change live: log level, plugin enable flags
	 * (new plugins get loaded by the drop-in scan). */
	if (nc->log_level != NULL && log_level_parse(nc->log_level, &lvl) == 0)
		log_set_level(lvl);
	if (nc->log != NULL) {
		const char *why = NULL;

		if (log_set_target(nc->log, &why) < 0)
			log_error("reload: %s", why);
	}
	for (size_t i = 0; i < nc->n_plugins; i++) {
		if (!nc->plugins[i].enabled && d->plugins != NULL)
			pluginhost_unload(d->plugins, nc->plugins[i].name);
	}
	log_info("config reloaded from %s", nc->file);
	daemon_reload_tell(d->config, nc);
	config_free(&nc);
	return 0;
}

void daemon_free(struct daemon **dp)
{
	struct daemon *d = *dp;

	if (d == NULL)
		return;
	*dp = NULL;
	console_stop(&d->console);
	engine_free(&d->engine);
	config_free(&d->config);
	free(d);
}
