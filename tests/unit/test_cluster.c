/* Cluster work against a fake bus and a fake MariaDB journal: the engine_*,
 * dispatch_* and jmysql_* functions cluster.c calls are defined here, so
 * neither a server nor the real engine is needed.  Checked: the handler
 * modes and the router given to the bus, claims released and cursors
 * forgotten at start, heartbeats, fan-out and shared rows dispatched to
 * their handler (fan-out filtered by the handler's patterns), a journal
 * that fails then comes back wakes the bus once, a local commit polls
 * soon, and cluster_free detaches from the bus. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster.h"
#include "config.h"
#include "dispatch.h"
#include "engine.h"
#include "event.h"
#include "handler.h"
#include "journal.h"
#include "journal_mysql.h"
#include "util.h"

/* ---- fake bus ---- */

struct engine {
	uv_loop_t loop;
	struct config *cfg;
	struct handler *fan, *shared;
	struct engine_router router;
	bool has_router;
	unsigned reachable;
	unsigned enqueued;
	int64_t enqueued_ids[16];
	const char *enqueued_handlers[16];
};

static struct engine *fe;

uv_loop_t *engine_loop(struct engine *e) { return &e->loop; }
const struct config *engine_config(struct engine *e) { return e->cfg; }
struct journal *engine_journal(struct engine *e) { (void)e; return NULL; }
struct dispatch *engine_dispatch(struct engine *e) { (void)e; return NULL; }
int64_t engine_started_ms(struct engine *e) { (void)e; return 1000; }

struct handler *engine_handler_find(struct engine *e, const char *name)
{
	if (strcmp(name, e->fan->name) == 0)
		return e->fan;
	if (strcmp(name, e->shared->name) == 0)
		return e->shared;
	return NULL;
}

void engine_journal_reachable(struct engine *e)
{
	e->reachable++;
}

void engine_set_router(struct engine *e, const struct engine_router *r)
{
	e->has_router = r != NULL;
	if (r != NULL)
		e->router = *r;
}

unsigned dispatch_handler_queued(const struct handler *h)
{
	(void)h;
	return 0;
}

bool engine_handler_behind(const struct handler *h)
{
	(void)h;
	return false;
}

void dispatch_enqueue(struct dispatch *dp, struct handler *h, struct event *ev,
		      unsigned attempts, enum delivery_state state,
		      int64_t next_ms)
{
	(void)dp, (void)attempts, (void)state, (void)next_ms;
	if (fe->enqueued < 16) {
		fe->enqueued_ids[fe->enqueued] = ev->pub.id;
		fe->enqueued_handlers[fe->enqueued] = h->name;
	}
	fe->enqueued++;
}

struct jmysql *journal_mysql(struct journal *j)
{
	(void)j;
	return NULL;
}

int journal_counts(struct journal *j, json_t **counts_r, const char **error_r)
{
	(void)j;
	*counts_r = NULL;
	*error_r = "fake";
	return -ENOSYS;
}

/* ---- fake MariaDB journal ---- */

struct jmysql {
	int fail;                  /* next calls fail with this */
	unsigned fetches, claims, beats, renews, releases, forgets;
	char modes[4][2][32];      /* handler, "fanout"/"shared" */
	unsigned n_modes;
	bool fan_served, claim_served;
};

static struct jmysql fjm;

const char *jmysql_node(const struct jmysql *jm)
{
	(void)jm;
	return "node1";
}

void jmysql_set_mode(struct jmysql *jm, const char *handler,
		     enum jmysql_mode mode)
{
	if (jm->n_modes < 4) {
		snprintf(jm->modes[jm->n_modes][0], 32, "%s", handler);
		snprintf(jm->modes[jm->n_modes][1], 32, "%s",
			 mode == JMYSQL_FANOUT ? "fanout" : "shared");
		jm->n_modes++;
	}
}

static struct jmysql_row *fake_rows(const int64_t *ids,
				    const char *const *types, size_t n)
{
	struct jmysql_row *rows = xcalloc(n, sizeof(*rows));

	for (size_t i = 0; i < n; i++) {
		rows[i].ev = (struct journal_event){
			.id = ids[i], .type = types[i], .subject = "a.example",
			.source = "socket", .node = "node2", .time_ms = 5,
			.payload = "{}",
		};
		rows[i].d = (struct journal_delivery){
			.event_id = ids[i], .state = DELIVERY_PENDING,
		};
	}
	return rows;
}

void jmysql_rows_free(struct jmysql_row **rows, size_t n)
{
	(void)n;
	free(*rows);
	*rows = NULL;
}

int jmysql_fanout_fetch(struct jmysql *jm, const char *handler,
			unsigned limit,
			bool (*match)(const char *type, void *ctx), void *ctx,
			struct jmysql_row **rows_r, size_t *n_r, bool *more_r,
			const char **error_r)
{
	static const int64_t ids[] = { 11, 12, 13 };
	static const char *const types[] = { "domain.added", "user.added",
					     "domain.removed" };
	int64_t keep_ids[3];
	const char *keep_types[3];
	size_t n = 0;

	(void)handler, (void)limit;
	jm->fetches++;
	*rows_r = NULL;
	*n_r = 0;
	*more_r = false;
	if (jm->fail) {
		*error_r = "server has gone away";
		return jm->fail;
	}
	if (jm->fan_served)
		return 0;
	jm->fan_served = true;
	for (size_t i = 0; i < 3; i++) {
		if (match(types[i], ctx)) {
			keep_ids[n] = ids[i];
			keep_types[n++] = types[i];
		}
	}
	*rows_r = fake_rows(keep_ids, keep_types, n);
	*n_r = n;
	return 0;
}

int jmysql_shared_claim(struct jmysql *jm, const char *handler,
			unsigned limit, unsigned lease_ms,
			struct jmysql_row **rows_r, size_t *n_r,
			const char **error_r)
{
	static const int64_t ids[] = { 21 };
	static const char *const types[] = { "cert.issued" };

	(void)handler, (void)limit, (void)lease_ms, (void)error_r;
	jm->claims++;
	*rows_r = NULL;
	*n_r = 0;
	if (jm->claim_served)
		return 0;
	jm->claim_served = true;
	*rows_r = fake_rows(ids, types, 1);
	*n_r = 1;
	return 0;
}

int jmysql_shared_renew(struct jmysql *jm, unsigned lease_ms,
			const char **error_r)
{
	(void)lease_ms, (void)error_r;
	jm->renews++;
	return 0;
}

int jmysql_shared_release(struct jmysql *jm, const char **error_r)
{
	(void)error_r;
	jm->releases++;
	return 0;
}

int jmysql_cursors_forget(struct jmysql *jm, const char **error_r)
{
	(void)error_r;
	jm->forgets++;
	return 0;
}

int jmysql_heartbeat(struct jmysql *jm, int64_t started_ms,
		     const char *version, const char *last_error,
		     const char **error_r)
{
	(void)started_ms, (void)version, (void)last_error, (void)error_r;
	jm->beats++;
	return 0;
}

int jmysql_cluster_status(struct jmysql *jm, int64_t dead_after_ms,
			  json_t **nodes_r, const char **error_r)
{
	(void)jm, (void)dead_after_ms, (void)error_r;
	*nodes_r = json_array();
	return 0;
}

/* ---- fixture ---- */

static const struct handler_ops no_ops = { 0 };

static int setup(void **state)
{
	struct engine *e = xcalloc(1, sizeof(*e));
	struct config *c = config_new_default();
	static const char *const names[] = { "fan", "sh", "loc" };
	static const enum config_mode modes[] = {
		CONFIG_MODE_FANOUT, CONFIG_MODE_SHARED, CONFIG_MODE_LOCAL
	};

	c->plugins = xcalloc(3, sizeof(*c->plugins));
	for (size_t i = 0; i < 3; i++) {
		c->plugins[i].name = xstrdup(names[i]);
		c->plugins[i].enabled = true;
		c->plugins[i].mode = modes[i];
		c->plugins[i].settings = json_object();
		c->plugins[i].settings_pos = json_object();
	}
	c->n_plugins = 3;
	c->journal.poll_ms = 50;
	c->journal.lease_ms = 3000;
	uv_loop_init(&e->loop);
	e->cfg = c;
	e->fan = handler_new(&no_ops, "plugin:fan");
	handler_add_pattern(e->fan, "domain.*");
	e->shared = handler_new(&no_ops, "plugin:sh");
	memset(&fjm, 0, sizeof(fjm));
	fe = e;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct engine *e = *state;

	uv_run(&e->loop, UV_RUN_DEFAULT); /* the cluster's handles close */
	assert_int_equal(uv_loop_close(&e->loop), 0);
	handler_free_unowned(&e->fan);
	handler_free_unowned(&e->shared);
	config_free(&e->cfg);
	free(e);
	return 0;
}

static void run_until(struct engine *e, const unsigned *counter, unsigned n)
{
	for (int i = 0; i < 2000 && *counter < n; i++)
		uv_run(&e->loop, UV_RUN_ONCE);
	assert_true(*counter >= n);
}

static void test_modes_and_router(void **state)
{
	struct engine *e = *state;
	struct cluster *c = NULL;

	assert_int_equal(cluster_new(e, &fjm, &c), 0);
	assert_true(e->has_router);
	assert_int_equal(e->router.mode(e->router.ctx, "plugin:fan"),
			 CONFIG_MODE_FANOUT);
	assert_int_equal(e->router.mode(e->router.ctx, "plugin:sh"),
			 CONFIG_MODE_SHARED);
	assert_int_equal(e->router.mode(e->router.ctx, "plugin:loc"),
			 CONFIG_MODE_LOCAL);
	assert_int_equal(e->router.mode(e->router.ctx, "lua:x.lua"),
			 CONFIG_MODE_LOCAL);
	/* the journal learns the two non-local ones, nothing else */
	assert_int_equal(fjm.n_modes, 2);
	assert_string_equal(fjm.modes[0][0], "plugin:fan");
	assert_string_equal(fjm.modes[0][1], "fanout");
	assert_string_equal(fjm.modes[1][0], "plugin:sh");
	assert_string_equal(fjm.modes[1][1], "shared");
	cluster_free(&c);
	assert_null(c);
	assert_false(e->has_router); /* detached from the bus */
}

static void test_start_and_poll(void **state)
{
	struct engine *e = *state;
	struct cluster *c = NULL;

	assert_int_equal(cluster_new(e, &fjm, &c), 0);
	cluster_start(c);
	/* a previous process's claims and cursors are given back first */
	assert_int_equal(fjm.releases, 1);
	assert_int_equal(fjm.forgets, 1);
	assert_true(fjm.beats >= 1);
	run_until(e, &e->enqueued, 3);
	/* fan-out: the handler's patterns decide (domain.* only); shared:
	 * the claimed row */
	assert_int_equal(e->enqueued, 3);
	for (unsigned i = 0; i < 3; i++) {
		if (e->enqueued_ids[i] == 21)
			assert_string_equal(e->enqueued_handlers[i], "plugin:sh");
		else
			assert_string_equal(e->enqueued_handlers[i], "plugin:fan");
		assert_true(e->enqueued_ids[i] != 12); /* user.added */
	}
	/* heartbeats go on, and renew the leases */
	run_until(e, &fjm.renews, 2);
	cluster_free(&c);
}

static void test_journal_back(void **state)
{
	struct engine *e = *state;
	struct cluster *c = NULL;
	unsigned before;

	assert_int_equal(cluster_new(e, &fjm, &c), 0);
	fjm.fail = -EIO;
	cluster_start(c);
	run_until(e, &fjm.fetches, 2);
	assert_int_equal(e->reachable, 0);
	assert_int_equal(e->enqueued, 0);
	fjm.fail = 0;
	before = fjm.fetches;
	run_until(e, &fjm.fetches, before + 1);
	/* the bus is told once, so it retries what waits for the journal */
	assert_int_equal(e->reachable, 1);
	run_until(e, &e->enqueued, 3);
	assert_int_equal(e->reachable, 1);
	cluster_free(&c);
}

static void test_commit_kicks(void **state)
{
	struct engine *e = *state;
	struct cluster *c = NULL;
	unsigned before;

	e->cfg->journal.poll_ms = 600000; /* only a kick polls soon */
	assert_int_equal(cluster_new(e, &fjm, &c), 0);
	cluster_start(c);
	run_until(e, &fjm.fetches, 1); /* the poll at start */
	before = fjm.fetches;
	e->router.committed(e->router.ctx);
	run_until(e, &fjm.fetches, before + 1);
	cluster_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_modes_and_router, setup, teardown),
		cmocka_unit_test_setup_teardown(test_start_and_poll, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_commit_kicks, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
