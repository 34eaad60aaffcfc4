/* Cluster work on the MariaDB journal: see cluster.h.
 *
 * fan-out: every poll_ms (and soon after a local commit) each fan-out
 *   handler's new events are turned into pending delivery rows of this
 *   node and its cursor moved past them, in one transaction
 *   (jmysql_fanout_fetch); the rows are then dispatched like local ones,
 *   so retries, ordering per subject and resume after a restart are the
 *   engine's usual ones.
 * shared: the emitting node writes one delivery row with node '' per
 *   shared handler; every node claims due rows with SKIP LOCKED under a
 *   lease, renews the leases of its claims every second, and a claim whose
 *   lease ran out (its node died) is claimable again.
 * heartbeat: the nodes row of this node, every second. */
#include "cluster.h"
#include "control.h"
#include "dispatch.h"
#include "engine.h"
#include "event.h"
#include "hmap.h"
#include "journal.h"
#include "journal_mysql.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define CLUSTER_FANOUT_PAGE 1000
#define CLUSTER_CLAIM_BATCH 64
/* do not fetch more for a handler while this many of its deliveries wait
 * in memory (per handler: a slow handler never stops another's fetch) */
#define CLUSTER_QUEUE_MAX 4096
#define CLUSTER_BEAT_MS 1000
#define CLUSTER_DEAD_AFTER_MS 5000

struct cluster {
	struct engine *e;
	struct jmysql *jm;
	uv_timer_t poll, beat;
	unsigned open_handles;
	bool kicked, failing, freed;
	char **names; /* plugin handlers in fanout or shared mode */
	enum config_mode *modes;
	size_t n;
	char *last_error;
};

static void cluster_note(struct cluster *c, int ret, const char *what,
			 const char *err)
{
	if (ret == 0) {
		if (c->failing) {
			log_info("cluster: journal reachable again");
			/* the engine's results and events waiting for the
			 * journal go now, not at its next retry */
			engine_journal_reachable(c->e);
		}
		c->failing = false;
		return;
	}
	if (!c->failing)
		log_warn("cluster: %s: %s (retrying)", what,
			 err != NULL ? err : strerror(-ret));
	c->failing = true;
	free(c->last_error);
	c->last_error = xstrdup(err != NULL ? err : strerror(-ret));
}

static bool cluster_match(const char *type, void *ctx)
{
	return handler_matches(ctx, type);
}

static void cluster_enqueue(struct cluster *c, struct handler *h,
			    const struct jmysql_row *r)
{
	struct event *ev = event_from_row(r->ev.id, r->ev.type, r->ev.subject,
					  r->ev.source, r->ev.node,
					  r->ev.time_ms, r->ev.payload);

	if (ev == NULL) {
		log_error("journal: event %lld has a payload that is not "
			  "JSON; skipped", (long long)r->ev.id);
		return;
	}
	dispatch_enqueue(engine_dispatch(c->e), h, ev, r->d.attempts,
			 r->d.state, r->d.next_ms);
	event_unref(&ev);
}

static void cluster_poll_cb(uv_timer_t *t)
{
	struct cluster *c = t->data;
	const struct config *cfg = engine_config(c->e);
	bool again = false;

	c->kicked = false;
	for (size_t i = 0; i < c->n; i++) {
		struct handler *h = engine_handler_find(c->e, c->names[i]);
		struct jmysql_row *rows = NULL;
		const char *err = NULL;
		size_t n = 0;
		bool more = false;
		int ret;

		if (h == NULL)
			continue;
		if (c->modes[i] == CONFIG_MODE_FANOUT) {
			/* behind: its rows of this node are read back by the
			 * engine's refill first, in id order */
			if (dispatch_handler_queued(h) >= CLUSTER_QUEUE_MAX ||
			    engine_handler_behind(h))
				continue;
			ret = jmysql_fanout_fetch(c->jm, h->name,
						  CLUSTER_FANOUT_PAGE,
						  cluster_match, h, &rows, &n,
						  &more, &err);
		} else {
			if (dispatch_handler_queued(h) >=
			    CLUSTER_CLAIM_BATCH * 4)
				continue;
			ret = jmysql_shared_claim(c->jm, h->name,
						  CLUSTER_CLAIM_BATCH,
						  cfg->journal.lease_ms, &rows,
						  &n, &err);
			more = n == CLUSTER_CLAIM_BATCH;
		}
		cluster_note(c, ret, c->modes[i] == CONFIG_MODE_FANOUT
					     ? "fan-out poll" : "claim", err);
		if (ret < 0)
			break;
		for (size_t k = 0; k < n; k++)
			cluster_enqueue(c, h, &rows[k]);
		jmysql_rows_free(&rows, n);
		again = again || more;
	}
	if (again)
		cluster_kick(c);
}

static void cluster_beat_cb(uv_timer_t *t)
{
	struct cluster *c = t->data;
	const struct config *cfg = engine_config(c->e);
	const char *err = NULL;
	int ret;

	ret = jmysql_heartbeat(c->jm, engine_started_ms(c->e), OPHOOK_VERSION,
			       c->failing ? c->last_error : NULL, &err);
	if (ret == 0)
		ret = jmysql_shared_renew(c->jm, cfg->journal.lease_ms, &err);
	cluster_note(c, ret, "heartbeat", err);
}

static enum config_mode cluster_router_mode(void *ctx, const char *handler)
{
	return cluster_mode(ctx, handler);
}

static void cluster_router_committed(void *ctx)
{
	cluster_kick(ctx);
}

int cluster_new(struct engine *e, struct jmysql *jm, struct cluster **c_r)
{
	const struct config *cfg = engine_config(e);
	struct cluster *c = xcalloc(1, sizeof(*c));

	c->e = e;
	c->jm = jm;
	c->names = xcalloc(cfg->n_plugins + 1, sizeof(*c->names));
	c->modes = xcalloc(cfg->n_plugins + 1, sizeof(*c->modes));
	for (size_t i = 0; i < cfg->n_plugins; i++) {
		const struct config_plugin *pl = &cfg->plugins[i];

		if (pl->mode == CONFIG_MODE_LOCAL)
			continue;
		c->names[c->n] = xasprintf("plugin:%s", pl->name);
		c->modes[c->n] = pl->mode;
		jmysql_set_mode(jm, c->names[c->n],
				pl->mode == CONFIG_MODE_FANOUT ? JMYSQL_FANOUT
							       : JMYSQL_SHARED);
		c->n++;
	}
	uv_timer_init(engine_loop(e), &c->poll);
	c->poll.data = c;
	uv_timer_init(engine_loop(e), &c->beat);
	c->beat.data = c;
	c->open_handles = 2;
	engine_set_router(e, &(struct engine_router){
		.mode = cluster_router_mode,
		.committed = cluster_router_committed,
		.ctx = c,
	});
	*c_r = c;
	return 0;
}

void cluster_start(struct cluster *c)
{
	const struct config *cfg = engine_config(c->e);
	const char *err = NULL;
	unsigned beat = CLUSTER_BEAT_MS;

	if (cfg->journal.lease_ms / 3 < beat)
		beat = cfg->journal.lease_ms / 3 > 0 ? cfg->journal.lease_ms / 3
						     : 1;
	cluster_note(c, jmysql_shared_release(c->jm, &err), "release claims",
		     err);
	cluster_note(c, jmysql_cursors_forget(c->jm, &err), "old cursors", err);
	cluster_beat_cb(&c->beat);
	uv_timer_start(&c->beat, cluster_beat_cb, beat, beat);
	if (c->n > 0)
		uv_timer_start(&c->poll, cluster_poll_cb, 0,
			       cfg->journal.poll_ms);
	log_info("cluster: node %s on the MariaDB journal, %zu handlers in "
		 "fanout/shared mode", jmysql_node(c->jm), c->n);
}

void cluster_kick(struct cluster *c)
{
	if (c == NULL || c->n == 0 || c->kicked || c->freed)
		return;
	c->kicked = true;
	uv_timer_start(&c->poll, cluster_poll_cb, 5,
		       engine_config(c->e)->journal.poll_ms);
}

enum config_mode cluster_mode(const struct cluster *c, const char *name)
{
	if (c == NULL)
		return CONFIG_MODE_LOCAL;
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->names[i], name) == 0)
			return c->modes[i];
	return CONFIG_MODE_LOCAL;
}

static void cluster_closed(uv_handle_t *h)
{
	struct cluster *c = h->data;

	if (--c->open_handles > 0)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->names[i]);
	free(c->names);
	free(c->modes);
	free(c->last_error);
	free(c);
}

void cluster_free(struct cluster **cp)
{
	struct cluster *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	engine_set_router(c->e, NULL);
	c->freed = true;
	c->jm = NULL;
	uv_close((uv_handle_t *)&c->poll, cluster_closed);
	uv_close((uv_handle_t *)&c->beat, cluster_closed);
}

/* ---- ophookctl cluster status ---- */

struct cluster_cmd {
	struct engine *e;
};

static char *cluster_status_text(json_t *nodes)
{
	char *text = xasprintf("%-20s %-10s %-6s %8s %8s %8s\n", "node",
			       "heartbeat", "state", "lag", "failed", "dead");
	size_t i;
	json_t *n;

	json_array_foreach(nodes, i, n) {
		char age[32], *line, *joined;

		snprintf(age, sizeof(age), "%.1fs ago",
			 (double)json_integer_value(json_object_get(n, "age_ms")) /
				 1000.0);
		line = xasprintf("%-20s %-10s %-6s %8lld %8lld %8lld\n",
				 json_string_value(json_object_get(n, "name")),
				 age,
				 json_is_true(json_object_get(n, "alive"))
					 ? "alive" : "dead",
				 (long long)json_integer_value(
					 json_object_get(n, "lag")),
				 (long long)json_integer_value(
					 json_object_get(n, "failed")),
				 (long long)json_integer_value(
					 json_object_get(n, "dead")));
		joined = xasprintf("%s%s", text, line);
		free(text);
		free(line);
		text = joined;
	}
	return text;
}

static void cluster_cmd_status(struct control_reply *reply, json_t *args,
			       json_t *req, void *ctx)
{
	struct engine *e = ctx;
	struct jmysql *jm = journal_mysql(engine_journal(e));
	const char *err = NULL;
	json_t *nodes = NULL;
	char *text;

	(void)req;
	if (json_array_size(args) > 0) {
		control_reply_error(&reply, 2, "cluster status takes no "
					       "arguments");
		return;
	}
	if (jm != NULL) {
		if (jmysql_cluster_status(jm, CLUSTER_DEAD_AFTER_MS, &nodes,
					  &err) < 0) {
			control_reply_error(&reply, 2, "cluster status: %s",
					    err);
			return;
		}
	} else {
		/* SQLite: the one local node */
		json_t *counts = NULL, *o = json_object(), *d;
		long long pending = 0, failed = 0, dead = 0;

		if (journal_counts(engine_journal(e), &counts, &err) == 0) {
			d = json_object_get(counts, "deliveries");
			pending = json_integer_value(json_object_get(d, "pending"));
			failed = json_integer_value(json_object_get(d, "failed"));
			dead = json_integer_value(json_object_get(d, "dead"));
			json_decref(counts);
		}
		json_object_set_new(o, "name",
				    json_string(engine_config(e)->node));
		json_object_set_new(o, "heartbeat_ms", json_integer(now_ms()));
		json_object_set_new(o, "age_ms", json_integer(0));
		json_object_set_new(o, "alive", json_true());
		json_object_set_new(o, "started_ms",
				    json_integer(engine_started_ms(e)));
		json_object_set_new(o, "version", json_string(OPHOOK_VERSION));
		json_object_set_new(o, "last_error", json_null());
		json_object_set_new(o, "lag", json_integer(pending + failed));
		json_object_set_new(o, "pending", json_integer(pending));
		json_object_set_new(o, "failed", json_integer(failed));
		json_object_set_new(o, "dead", json_integer(dead));
		nodes = json_array();
		json_array_append_new(nodes, o);
	}
	text = cluster_status_text(nodes);
	control_reply_ok(&reply, nodes, text, 0);
	free(text);
}

const struct control_command cluster_commands[] = {
	{"cluster.status", cluster_cmd_status},
	{NULL, NULL},
};
