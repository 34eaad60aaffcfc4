/* Unit tests of the entity merger (core/sources/entity.c) against a fake
 * engine, a fake panel DB and a fake watcher snapshot. */
#include "../../core/sources/entity.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

struct engine {
	struct config *cfg;
	uv_loop_t *loop;
	json_t *journal; /* array of "type subject" strings */
	json_t *last;    /* payload of the last event */
};

const struct config *engine_config(struct engine *e) { return e->cfg; }
uv_loop_t *engine_loop(struct engine *e) { return e->loop; }

int engine_submit(struct engine *e, const char *type, const char *subject,
		  const char *source, json_t *payload, engine_submit_cb *cb,
		  void *ctx, const char **error_r)
{
	static struct event fake;
	char buf[512];

	(void)source;
	(void)error_r;
	snprintf(buf, sizeof(buf), "%s %s", type, subject);
	json_array_append_new(e->journal, json_string(buf));
	json_decref(e->last);
	e->last = payload != NULL ? payload : json_object();
	if (cb != NULL)
		cb(&fake, NULL, ctx);
	return 0;
}

/* the fake sources */
static json_t *rows, *known, *owned; /* name -> true; path -> true;
					 domain -> user */
static bool db_on = true;
static unsigned kicks;

static bool f_active(void *c) { (void)c; return db_on; }
static bool f_row(void *c, const char *n) { (void)c; return json_object_get(rows, n) != NULL; }
static bool f_owned(void *c, const char *d) { (void)c; return json_object_get(owned, d) != NULL; }
static void f_domains(void *c, const char *u, void (*fn)(const char *, void *),
		      void *arg)
{
	const char *d;
	json_t *v;

	(void)c;
	json_object_foreach(owned, d, v)
		if (strcmp(json_string_value(v), u) == 0)
			fn(d, arg);
}
static void f_kick(void *c) { (void)c; kicks++; }
static bool f_known(void *c, const char *p) { (void)c; return json_object_get(known, p) != NULL; }

struct rig {
	uv_loop_t loop;
	struct config cfg;
	struct engine e;
	struct entity *ent;
	char dir[64];
	unsigned done;
};

static void done_cb(bool ok, const char *error, void *ctx)
{
	struct rig *r = ctx;

	(void)error;
	assert_true(ok);
	r->done++;
}

static void rig_entity(struct rig *r)
{
	const struct entity_db db = { f_active, f_row, f_owned, f_domains,
				      f_kick, NULL };
	const struct entity_files files = { f_known, NULL };
	const char *err;

	assert_int_equal(entity_new(&r->e, &r->ent, &err), 0);
	entity_set_db(r->ent, &db);
	entity_set_files(r->ent, &files);
}

static void rig_start(struct rig *r, unsigned wait_ms)
{
	memset(r, 0, sizeof(*r));
	strcpy(r->dir, "/tmp/test_entity.XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	uv_loop_init(&r->loop);
	r->cfg.root = "/r";
	r->cfg.state_dir = r->dir;
	r->cfg.panel_db.merge_wait_ms = wait_ms;
	r->e.cfg = &r->cfg;
	r->e.loop = &r->loop;
	r->e.journal = json_array();
	rows = json_object();
	known = json_object();
	owned = json_object();
	db_on = true;
	kicks = 0;
	rig_entity(r);
}

static void rig_stop(struct rig *r)
{
	char *f = xasprintf("%s/entities.json", r->dir);

	entity_free(&r->ent);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	uv_loop_close(&r->loop);
	unlink(f);
	free(f);
	rmdir(r->dir);
	json_decref(r->e.journal);
	json_decref(r->e.last);
	json_decref(rows);
	json_decref(known);
	json_decref(owned);
}

/* a source observation (the fake snapshots updated first, as the real
 * sources do) */
static void folder(struct rig *r, const char *name, bool present)
{
	char path[256];
	const char *err;

	snprintf(path, sizeof(path), "/r/openpanel/core/users/%s", name);
	if (present)
		json_object_set_new(known, path, json_true());
	else
		json_object_del(known, path);
	snprintf(path, sizeof(path), "user:%s", name);
	assert_int_equal(entity_submit(r->ent, &r->e, present ? "user.added"
				       : "user.removed", path, "inotify",
				       json_pack("{s:s}", "path", "p"),
				       done_cb, r, &err), 0);
}

static void row(struct rig *r, const char *type, const char *name,
		json_t *payload)
{
	char subject[256];
	const char *err;

	snprintf(subject, sizeof(subject), "user:%s", name);
	assert_int_equal(entity_submit(r->ent, &r->e, type, subject, "db",
				       payload, done_cb, r, &err), 0);
	/* committed after its events, as the poller does */
	if (strcmp(type, "user.added") == 0)
		json_object_set_new(rows, name, json_true());
	else if (strcmp(type, "user.removed") == 0)
		json_object_del(rows, name);
}

static void conf(struct rig *r, const char *d, bool present)
{
	char path[256];
	const char *err;

	snprintf(path, sizeof(path), "/r/caddy/domains/%s.conf", d);
	if (present)
		json_object_set_new(known, path, json_true());
	else
		json_object_del(known, path);
	assert_int_equal(entity_submit(r->ent, &r->e, present ? "domain.added"
				       : "domain.removed", d, "inotify",
				       json_object(), done_cb, r, &err), 0);
}

static const char *journal(struct rig *r)
{
	static char buf[2048];
	size_t i;
	json_t *v;

	buf[0] = '\0';
	json_array_foreach(r->e.journal, i, v) {
		if (i > 0)
			strcat(buf, ", ");
		strcat(buf, json_string_value(v));
	}
	return buf;
}

static void run_for(struct rig *r, unsigned ms)
{
	int64_t end = mono_ms() + ms;

	while (mono_ms() < end) {
		uv_run(&r->loop, UV_RUN_NOWAIT);
		usleep(2000);
	}
}

static void test_folder_then_row(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 10000);
	folder(&r, "dave", true);
	assert_string_equal(journal(&r), "");
	assert_int_equal(entity_pending_users(r.ent), 1);
	assert_true(kicks > 0);
	row(&r, "user.added", "dave", json_pack("{s:s,s:i}", "user", "dave",
						 "user_id", 10));
	assert_string_equal(journal(&r), "user.added user:dave");
	assert_int_equal(json_integer_value(json_object_get(r.e.last,
							   "user_id")), 10);
	assert_int_equal(entity_pending_users(r.ent), 0);
	assert_int_equal(r.done, 2);
	rig_stop(&r);
}

static void test_deadline_then_late_row(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 50);
	row(&r, "user.added", "frank", json_pack("{s:s}", "user", "frank"));
	assert_string_equal(journal(&r), "");
	run_for(&r, 150);
	assert_string_equal(journal(&r), "user.added user:frank");
	folder(&r, "frank", true); /* late: not repeated */
	run_for(&r, 100);
	assert_string_equal(journal(&r), "user.added user:frank");
	rig_stop(&r);
}

static void test_no_db_no_wait(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 10000);
	db_on = false;
	folder(&r, "bob", true);
	assert_string_equal(journal(&r), "user.added user:bob");
	folder(&r, "bob", false);
	assert_string_equal(journal(&r),
			    "user.added user:bob, user.removed user:bob");
	rig_stop(&r);
}

static void test_rename(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 10000);
	json_object_set_new(rows, "dave", json_true());
	json_object_set_new(known, "/r/openpanel/core/users/dave", json_true());
	folder(&r, "dave", false); /* mv core/users/dave erin */
	folder(&r, "erin", true);
	assert_string_equal(journal(&r), "");
	row(&r, "user.renamed", "erin", json_pack("{s:s,s:s}", "user", "erin",
						  "old_user", "dave"));
	json_object_del(rows, "dave");
	json_object_set_new(rows, "erin", json_true());
	assert_string_equal(journal(&r), "user.renamed user:erin");
	assert_int_equal(entity_pending_users(r.ent), 0);
	rig_stop(&r);
}

static void test_delete_after_domains(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 10000);
	json_object_set_new(rows, "gina", json_true());
	json_object_set_new(known, "/r/openpanel/core/users/gina", json_true());
	json_object_set_new(known, "/r/caddy/domains/g1.example.conf",
			    json_true());
	json_object_set_new(owned, "g1.example", json_string("gina"));
	row(&r, "user.removed", "gina", json_pack("{s:s}", "user", "gina"));
	folder(&r, "gina", false);
	assert_string_equal(journal(&r), ""); /* g1's conf still there */
	conf(&r, "g1.example", false);
	assert_string_equal(journal(&r),
			    "domain.removed g1.example, user.removed user:gina");
	rig_stop(&r);
}

/* the watcher far behind the DB and the folder: the user's removal waits
 * past merge_wait_ms for its domains' removals (bounded) */
static void test_delete_slow_watcher(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 40);
	json_object_set_new(rows, "gina", json_true());
	json_object_set_new(known, "/r/openpanel/core/users/gina", json_true());
	json_object_set_new(known, "/r/caddy/domains/g1.example.conf",
			    json_true());
	json_object_set_new(known, "/r/caddy/domains/g2.example.conf",
			    json_true());
	json_object_set_new(owned, "g1.example", json_string("gina"));
	json_object_set_new(owned, "g2.example", json_string("gina"));
	folder(&r, "gina", false);
	row(&r, "user.removed", "gina", json_pack("{s:s}", "user", "gina"));
	run_for(&r, 150); /* three deadlines */
	assert_string_equal(journal(&r), "");
	conf(&r, "g1.example", false);
	assert_string_equal(journal(&r), "domain.removed g1.example");
	run_for(&r, 100);
	conf(&r, "g2.example", false);
	assert_string_equal(journal(&r),
			    "domain.removed g1.example, domain.removed "
			    "g2.example, user.removed user:gina");
	rig_stop(&r);

	/* a conf that never goes: the removal goes after the last wait */
	rig_start(&r, 10);
	json_object_set_new(known, "/r/caddy/domains/g1.example.conf",
			    json_true());
	json_object_set_new(owned, "g1.example", json_string("gina"));
	json_object_set_new(rows, "gina", json_true());
	json_object_set_new(known, "/r/openpanel/core/users/gina", json_true());
	row(&r, "user.removed", "gina", json_pack("{s:s}", "user", "gina"));
	folder(&r, "gina", false);
	run_for(&r, 400);
	assert_string_equal(journal(&r), "user.removed user:gina");
	rig_stop(&r);
}

static void test_domain_waits_for_owner(void **state)
{
	struct rig r;
	int64_t t0;

	(void)state;
	rig_start(&r, 10000);
	t0 = mono_ms();
	conf(&r, "new.example", true);
	assert_string_equal(journal(&r), "");
	assert_int_equal(entity_held_events(r.ent), 1);
	assert_int_equal(r.done, 0);
	entity_db_polled(r.ent, t0 - 1); /* a poll started before: no */
	assert_int_equal(entity_held_events(r.ent), 1);
	entity_db_polled(r.ent, mono_ms()); /* one started after it */
	assert_string_equal(journal(&r), "domain.added new.example");
	assert_int_equal(r.done, 1);
	/* owner known: no wait */
	json_object_set_new(owned, "b.example", json_string("bob"));
	conf(&r, "b.example", true);
	assert_string_equal(journal(&r), "domain.added new.example, "
			    "domain.added b.example");
	rig_stop(&r);
}

static void test_pending_survives_restart(void **state)
{
	struct rig r;

	(void)state;
	rig_start(&r, 10000);
	folder(&r, "hank", true);
	assert_int_equal(entity_pending_users(r.ent), 1);
	/* the process dies: a new merger reads the state file */
	entity_free(&r.ent);
	uv_run(&r.loop, UV_RUN_DEFAULT);
	rig_entity(&r);
	assert_int_equal(entity_pending_users(r.ent), 1);
	row(&r, "user.added", "hank", json_pack("{s:s}", "user", "hank"));
	assert_string_equal(journal(&r), "user.added user:hank");
	rig_stop(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_folder_then_row),
		cmocka_unit_test(test_deadline_then_late_row),
		cmocka_unit_test(test_no_db_no_wait),
		cmocka_unit_test(test_rename),
		cmocka_unit_test(test_delete_after_domains),
		cmocka_unit_test(test_delete_slow_watcher),
		cmocka_unit_test(test_domain_waits_for_owner),
		cmocka_unit_test(test_pending_survives_restart),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
