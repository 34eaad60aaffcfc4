/* Unit tests for the container source's pure parts (ctrevent.c): parsing
 * Podman's and Docker's event lines with hostile input refused, the
 * catch-up boundary (repeats dropped at the seam of a reconnect, saved and
 * loaded keys, the window), restart-loop counting, kernel OOM lines. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctrevent.h"

#define ID1 "e78190d1ee25f1d36bc98d02c6451cd3c7926f6c10dfee92468fcefa1c34598f"
#define ID2 "9416b76e5dae66706be660faccfce2b8e68d4aaaaaaaaaaaaaaaaaaaaaaaaaaa"

/* a libpod line as Podman 4.3 streams it */
static const char podman_died[] =
	"{\"status\":\"died\",\"id\":\"" ID1 "\",\"from\":\"localhost/bb:latest\","
	"\"Type\":\"container\",\"Action\":\"died\",\"Actor\":{\"ID\":\"" ID1
	"\",\"Attributes\":{\"com.docker.compose.project\":\"alice\","
	"\"com.docker.compose.service\":\"nginx\",\"containerExitCode\":\"3\","
	"\"image\":\"localhost/bb:latest\",\"name\":\"web\",\"podId\":\"\"}},"
	"\"scope\":\"local\",\"time\":1796465548,\"timeNano\":1796465548760827487}";

static void test_parse_podman(void **state)
{
	struct ctrevent ev;
	const char *why = NULL;

	(void)state;
	assert_int_equal(ctrevent_parse(podman_died, strlen(podman_died), &ev,
					&why), 0);
	assert_int_equal(ev.kind, CTR_DIED);
	assert_string_equal(ev.action, "died");
	assert_string_equal(ev.id, ID1);
	assert_string_equal(ev.name, "web");
	assert_string_equal(ev.image, "localhost/bb:latest");
	assert_string_equal(ev.service, "nginx");
	assert_string_equal(ev.project, "alice");
	assert_int_equal(ev.exit_code, 3);
	assert_true(ev.time_ns == 1796465548760827487LL);
}

static void test_parse_docker(void **state)
{
	static const char die[] =
		"{\"status\":\"die\",\"id\":\"" ID2 "\",\"Type\":\"container\","
		"\"Action\":\"die\",\"Actor\":{\"ID\":\"" ID2 "\",\"Attributes\":"
		"{\"exitCode\":\"137\",\"image\":\"mysql:8\",\"name\":\"mysql\"}},"
		"\"time\":1700000000,\"timeNano\":1700000000123456789}";
	static const char health[] =
		"{\"status\":\"health_status: unhealthy\",\"id\":\"" ID2 "\","
		"\"Type\":\"container\",\"Action\":\"health_status: unhealthy\","
		"\"Actor\":{\"ID\":\"" ID2 "\",\"Attributes\":{\"name\":\"/mysql\"}},"
		"\"time\":1700000001}";
	static const char oom[] =
		"{\"Type\":\"container\",\"Action\":\"oom\",\"Actor\":{\"ID\":\""
		ID2 "\",\"Attributes\":{\"name\":\"mysql\"}},\"timeNano\":5}";
	struct ctrevent ev;
	const char *why = NULL;

	(void)state;
	assert_int_equal(ctrevent_parse(die, strlen(die), &ev, &why), 0);
	assert_int_equal(ev.kind, CTR_DIED);
	assert_int_equal(ev.exit_code, 137);
	assert_string_equal(ev.name, "mysql");
	assert_int_equal(ctrevent_parse(health, strlen(health), &ev, &why), 0);
	assert_int_equal(ev.kind, CTR_HEALTH);
	assert_string_equal(ev.health, "unhealthy");
	assert_string_equal(ev.action, "health_status");
	assert_string_equal(ev.name, "mysql"); /* Docker's leading / cut */
	assert_true(ev.time_ns == 1700000001000000000LL);
	assert_int_equal(ctrevent_parse(oom, strlen(oom), &ev, &why), 0);
	assert_int_equal(ev.kind, CTR_OOM);
}

static void test_parse_ignored_and_hostile(void **state)
{
	char line[1024];
	struct ctrevent ev;
	const char *why = NULL;

	(void)state;
	/* other types and actions: ignored, not errors */
	strcpy(line, "{\"Type\":\"image\",\"Action\":\"pull\"}");
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), 1);
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"cleanup\",\"Actor\":{\"ID\":\"%s\"},\"timeNano\":1}", ID1);
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), 1);
	/* not JSON, not an object */
	assert_int_equal(ctrevent_parse("{\"Type\":", 8, &ev, &why), -EINVAL);
	assert_int_equal(ctrevent_parse("[1]", 3, &ev, &why), -EINVAL);
	/* an id that is not hex, or too short */
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"start\",\"Actor\":{\"ID\":\"../../etc\",\"Attributes\":"
		 "{\"name\":\"web\"}},\"timeNano\":1}");
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), -EINVAL);
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"start\",\"Actor\":{\"ID\":\"abc\",\"Attributes\":"
		 "{\"name\":\"web\"}},\"timeNano\":1}");
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), -EINVAL);
	/* names with shell or newline characters, or too long */
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"start\",\"Actor\":{\"ID\":\"%s\",\"Attributes\":"
		 "{\"name\":\"web;rm -rf /\"}},\"timeNano\":1}", ID1);
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), -EINVAL);
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"start\",\"Actor\":{\"ID\":\"%s\",\"Attributes\":"
		 "{\"name\":\"a\\nb\"}},\"timeNano\":1}", ID1);
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), -EINVAL);
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"start\",\"Actor\":{\"ID\":\"%s\",\"Attributes\":"
		 "{\"name\":\"%0129d\"}},\"timeNano\":1}", ID1, 0);
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), -EINVAL);
	/* no time */
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"start\",\"Actor\":{\"ID\":\"%s\",\"Attributes\":"
		 "{\"name\":\"web\"}}}", ID1);
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), -EINVAL);
	/* hostile labels and image are dropped, the event stays */
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"start\",\"Actor\":{\"ID\":\"%s\",\"Attributes\":{\"name\":"
		 "\"web\",\"image\":\"x y\",\"com.docker.compose.service\":"
		 "\"$(id)\",\"com.docker.compose.project\":\"%0200d\"}},"
		 "\"timeNano\":1}", ID1, 0);
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), 0);
	assert_string_equal(ev.image, "");
	assert_string_equal(ev.service, "");
	assert_string_equal(ev.project, "");
	/* an exit code that is not one */
	snprintf(line, sizeof(line), "{\"Type\":\"container\",\"Action\":"
		 "\"died\",\"Actor\":{\"ID\":\"%s\",\"Attributes\":{\"name\":"
		 "\"web\",\"containerExitCode\":\"3x\"}},\"timeNano\":1}", ID1);
	assert_int_equal(ctrevent_parse(line, strlen(line), &ev, &why), 0);
	assert_int_equal(ev.exit_code, -1);
}

static void test_inspect_health(void **state)
{
	json_t *doc = json_loads("{\"State\":{\"Health\":{\"Status\":"
				 "\"unhealthy\"}}}", 0, NULL);
	char h[16];

	(void)state;
	assert_true(ctrevent_inspect_health(doc, h));
	assert_string_equal(h, "unhealthy");
	json_decref(doc);
	doc = json_loads("{\"State\":{\"Healthcheck\":{\"Status\":\"rm -rf\"}}}",
			 0, NULL);
	assert_false(ctrevent_inspect_health(doc, h));
	json_decref(doc);
}

#define S 1000000000LL

/* a reconnect with since = newest - slack gets the seam again: every key
 * seen is dropped, new ones at the same ns (another container, another
 * action) pass */
static void test_seen_boundary(void **state)
{
	struct ctrseen s;

	(void)state;
	ctrseen_init(&s, 10 * S, 1000);
	assert_true(ctrseen_add(&s, 100 * S + 5, ID1, "start"));
	assert_true(ctrseen_add(&s, 100 * S + 9, ID1, "died"));
	assert_int_equal(ctrseen_since_s(&s, 7), 90);
	/* the replay */
	assert_false(ctrseen_add(&s, 100 * S + 5, ID1, "start"));
	assert_false(ctrseen_add(&s, 100 * S + 9, ID1, "died"));
	/* same time, other key: new */
	assert_true(ctrseen_add(&s, 100 * S + 9, ID2, "died"));
	assert_true(ctrseen_add(&s, 100 * S + 9, ID1, "stop"));
	/* late but within the window (written out of order): new */
	assert_true(ctrseen_add(&s, 99 * S, ID2, "start"));
	/* the window moves: older than newest - slack is dropped */
	assert_true(ctrseen_add(&s, 200 * S, ID1, "start"));
	assert_false(ctrseen_add(&s, 150 * S, ID2, "start"));
	assert_true(ctrseen_add(&s, 195 * S, ID2, "stop"));
	ctrseen_clear(&s);
	/* nothing seen: the fallback */
	ctrseen_init(&s, 10 * S, 1000);
	assert_int_equal(ctrseen_since_s(&s, 7), 7);
	ctrseen_clear(&s);
}

/* only journaled keys are saved: a key posted but never journaled (a
 * crash) is fetched and accepted again after the restart */
static void test_seen_persist(void **state)
{
	struct ctrseen a, b;
	json_t *dump;

	(void)state;
	ctrseen_init(&a, 10 * S, 1000);
	assert_true(ctrseen_add(&a, 50 * S, ID1, "start"));
	assert_true(ctrseen_add(&a, 51 * S, ID1, "died"));
	ctrseen_journaled(&a, 50 * S, ID1, "start");
	dump = ctrseen_dump(&a);
	assert_int_equal(json_array_size(dump), 1);
	ctrseen_init(&b, 10 * S, 1000);
	assert_int_equal(ctrseen_load(&b, dump), 1);
	/* loading the journal's copy of the same keys adds nothing */
	assert_int_equal(ctrseen_load(&b, dump), 0);
	assert_int_equal(ctrseen_since_s(&b, 0), 40);
	assert_false(ctrseen_add(&b, 50 * S, ID1, "start"));
	assert_true(ctrseen_add(&b, 51 * S, ID1, "died"));
	json_decref(dump);
	/* malformed entries are skipped */
	dump = json_loads("[[1,\"zz\",\"start\"],\"x\",[0,\"" ID1 "\",\"a\"]]",
			  0, NULL);
	assert_int_equal(ctrseen_load(&b, dump), 0);
	json_decref(dump);
	ctrseen_clear(&a);
	ctrseen_clear(&b);
}

/* past max_keys the oldest keys go and the floor rises with them: nothing
 * older than a forgotten key can be taken for new */
static void test_seen_cap(void **state)
{
	struct ctrseen s;

	(void)state;
	ctrseen_init(&s, 1000 * S, 4);
	for (int i = 1; i <= 6; i++)
		assert_true(ctrseen_add(&s, i * S, ID1, "start"));
	assert_true(s.n <= 4);
	assert_false(ctrseen_add(&s, 1 * S, ID1, "start"));
	assert_false(ctrseen_add(&s, 2 * S, ID2, "start"));
	assert_false(ctrseen_add(&s, 6 * S, ID1, "start"));
	ctrseen_clear(&s);
}

static void test_restart_loop(void **state)
{
	struct ctrloop *l = ctrloop_new(3, 60 * S), *m;
	unsigned n = 0;
	json_t *dump;

	(void)state;
	assert_false(ctrloop_death(l, "web", 10 * S, &n));
	assert_int_equal(n, 1);
	assert_false(ctrloop_death(l, "db", 11 * S, &n)); /* other name */
	assert_false(ctrloop_death(l, "web", 20 * S, &n));
	assert_true(ctrloop_death(l, "web", 30 * S, &n));
	assert_int_equal(n, 3);
	/* reported once: the next report needs 3 new deaths */
	assert_false(ctrloop_death(l, "web", 31 * S, &n));
	assert_int_equal(n, 1);
	/* deaths further apart than the window never make a loop */
	assert_false(ctrloop_death(l, "db", 100 * S, &n));
	assert_false(ctrloop_death(l, "db", 170 * S, &n));
	assert_int_equal(n, 1);
	assert_false(ctrloop_death(l, "db", 200 * S, &n));
	/* kept across a restart */
	dump = ctrloop_dump(l);
	m = ctrloop_new(3, 60 * S);
	ctrloop_load(m, dump);
	assert_true(ctrloop_death(m, "db", 210 * S, &n));
	assert_int_equal(n, 3);
	json_decref(dump);
	ctrloop_free(&l);
	ctrloop_free(&m);
	assert_null(l);
}

static void test_kmsg(void **state)
{
	static const char line[] =
		"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset="
		"libpod-" ID1 ",mems_allowed=0,oom_memcg=/libpod_parent/libpod-"
		ID1 ",task_memcg=/libpod_parent/libpod-" ID1 ",task=tail,"
		"pid=23224,uid=0";
	static const char rootless[] =
		"oom-kill:constraint=CONSTRAINT_MEMCG,task_memcg=/user.slice/"
		"user-1001.slice/user@1001.service/user.slice/libpod-" ID2
		".scope/container,task=mysqld,pid=1,uid=1001";
	static const char other[] =
		"Memory cgroup out of memory: Killed process 23224 (tail)";
	static const char short_id[] =
		"oom-kill:task_memcg=/system.slice/foo-0123456789abcdef.scope";
	char id[CTR_ID_MAX + 1];

	(void)state;
	assert_true(ctrevent_kmsg_oom(line, strlen(line), id));
	assert_string_equal(id, ID1);
	assert_true(ctrevent_kmsg_oom(rootless, strlen(rootless), id));
	assert_string_equal(id, ID2);
	assert_false(ctrevent_kmsg_oom(other, strlen(other), id));
	assert_false(ctrevent_kmsg_oom(short_id, strlen(short_id), id));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_podman),
		cmocka_unit_test(test_parse_docker),
		cmocka_unit_test(test_parse_ignored_and_hostile),
		cmocka_unit_test(test_inspect_health),
		cmocka_unit_test(test_seen_boundary),
		cmocka_unit_test(test_seen_persist),
		cmocka_unit_test(test_seen_cap),
		cmocka_unit_test(test_restart_loop),
		cmocka_unit_test(test_kmsg),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
