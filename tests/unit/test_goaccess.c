/* Unit tests: the goaccess plugin (plugins/goaccess/goaccess.c): schedule
 * parsing, [STATS] reading, argv building, suspended users skipped; runs
 * use a fake goaccess (a script writing its arguments and the two
 * outputs). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "pluginmock.h"

#include "../../plugins/goaccess/goaccess.c"

static char *join(const char *a, const char *b)
{
	char *s;

	assert_true(asprintf(&s, "%s/%s", a, b) > 0);
	return s;
}

static void spew(const char *path, const char *text, mode_t mode)
{
	char *dir = strdup(path);

	*strrchr(dir, '/') = '\0';
	assert_int_equal(ophook_mkdir_p(dir, 0755), 0);
	free(dir);
	assert_int_equal(
		ophook_file_write_atomic(path, text, strlen(text), mode), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len;

	if (ophook_file_read_nofollow(path, 1 << 24, &data, &len) < 0)
		return NULL;
	return data;
}

static void test_schedule_parse(void **state)
{
	unsigned ms = 1;

	(void)state;
	assert_int_equal(ga_schedule_parse("daily", &ms), 0);
	assert_int_equal(ms, 86400000u);
	assert_int_equal(ga_schedule_parse("Hourly", &ms), 0);
	assert_int_equal(ms, 3600000u);
	assert_int_equal(ga_schedule_parse("off", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(ga_schedule_parse("never", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(ga_schedule_parse("30s", &ms), 0);
	assert_int_equal(ms, 30000u);
	assert_int_equal(ga_schedule_parse("15m", &ms), 0);
	assert_int_equal(ms, 900000u);
	assert_int_equal(ga_schedule_parse("24h", &ms), 0);
	assert_int_equal(ms, 86400000u);
	assert_int_equal(ga_schedule_parse("25h", &ms), -EINVAL);
	assert_int_equal(ga_schedule_parse("5s", &ms), -EINVAL);
	assert_int_equal(ga_schedule_parse("weekly", &ms), -EINVAL);
	assert_int_equal(ga_schedule_parse("10", &ms), -EINVAL);
	assert_int_equal(ga_schedule_parse("10mm", &ms), -EINVAL);
	assert_int_equal(ga_schedule_parse("", &ms), -EINVAL);
}

static void test_ini_schedule(void **state)
{
	char *v;

	(void)state;
	v = ga_ini_schedule("[GENERAL]\nschedule=off\n\n[STATS]\n; c\n"
			    "  goaccess_schedule = \"hourly\"\r\n[USERS]\n"
			    "schedule=daily\n");
	assert_string_equal(v, "hourly");
	free(v);
	v = ga_ini_schedule("[stats]\nschedule=daily");
	assert_string_equal(v, "daily");
	free(v);
	assert_null(ga_ini_schedule("[GENERAL]\nschedule=hourly\n"));
	assert_null(ga_ini_schedule(""));
}

static const char fake_goaccess[] =
	"#!/bin/sh\n"
	"echo \"$*\" >> \"$(dirname \"$0\")/calls\"\n"
	"prev=; html=; json=\n"
	"for a; do\n"
	"  if [ \"$prev\" = -o ]; then\n"
	"    case \"$a\" in *.json) json=$a ;; *) html=$a ;; esac\n"
	"  fi\n"
	"  prev=$a\n"
	"done\n"
	"log=$(cat)\n"
	"case \"$log\" in *fail*) echo 'bad log' >&2; exit 1 ;; esac\n"
	"case \"$log\" in *SECRET*) echo 'leaked' >&2; exit 1 ;; esac\n"
	"d=$(dirname \"$0\")\n"
	"if [ -e \"$d/slow\" ]; then\n"
	"  mkdir -p \"$d/running\"; touch \"$d/running/$$\"\n"
	"  ls \"$d/running\" | wc -l >> \"$d/peaks\"\n"
	"  sleep 0.2; rm -f \"$d/running/$$\"\n"
	"fi\n"
	"echo '<html>report</html>' > \"$html\"\n"
	"echo '{\"general\":{\"valid_requests\":7,\"total_requests\":9}}' > \"$json\"\n";

struct fx {
	struct pluginmock *m;
	char *logs, *stats, *fake;
};

static void fx_setup(struct fx *f, const char *extra)
{
	char settings[2048];
	const char *tmp;

	f->m = pluginmock_new(NULL);
	tmp = pluginmock_tmp(f->m);
	f->logs = join(tmp, "domlogs");
	f->stats = join(tmp, "stats");
	f->fake = join(tmp, "bin/goaccess");
	spew(f->fake, fake_goaccess, 0755);
	snprintf(settings, sizeof(settings),
		 "{\"log_base\": \"%s\", \"stats_dir\": \"%s\", "
		 "\"goaccess_argv\": [\"%s\"], \"geoip_db\": \"%s/none.mmdb\", "
		 "\"run_user\": \"root\"%s}",
		 f->logs, f->stats, f->fake, tmp, extra != NULL ? extra : "");
	pluginmock_set_settings(f->m, settings);
	pluginmock_set_plugin(f->m, &ophook_plugin);
}

static void fx_init(struct fx *f)
{
	const char *err = NULL;

	assert_int_equal(pluginmock_init(f->m, &err), 0);
}

static void fx_free(struct fx *f)
{
	pluginmock_free(&f->m);
	free(f->logs);
	free(f->stats);
	free(f->fake);
}

static void fx_domain(struct fx *f, const char *d, const char *user,
		      bool with_log)
{
	char json[256], *p, *dir;
	const char *err = NULL;
	struct stat st;

	snprintf(json, sizeof(json), "{\"domain\":\"%s\",\"user\":\"%s\"}", d,
		 user);
	assert_int_equal(pluginmock_send(f->m, "domain.added", d, json, &err), 0);
	dir = join(f->logs, d);
	assert_int_equal(stat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	if (with_log) {
		p = join(dir, "access.log");
		spew(p, "{}\n", 0644);
		free(p);
	}
	free(dir);
	dir = join(f->stats, user);
	assert_int_equal(stat(dir, &st), 0);
	free(dir);
}

/* Send stats.run and wait for the queued runs. */
static int run_stats(struct fx *f, const char *subject, const char *json,
		     const char **err)
{
	int ret = pluginmock_send(f->m, "stats.run", subject, json, err);

	ga_drain(pluginmock_data(f->m));
	return ret;
}

/* Number of stats.report events with ok == want_ok (and hits 7 when ok). */
static size_t reports(struct fx *f, const char *domain, bool want_ok)
{
	size_t n = 0;

	for (size_t i = 0; i < pluginmock_emitted_count(f->m, NULL); i++) {
		const struct pluginmock_emitted *e = pluginmock_emitted(f->m, i);
		json_t *o;

		if (strcmp(e->type, "stats.report") != 0 ||
		    strcmp(e->subject, domain) != 0)
			continue;
		o = json_loads(e->fields, 0, NULL);
		assert_non_null(o);
		if (json_is_true(json_object_get(o, "ok")) == want_ok) {
			n++;
			if (want_ok)
				assert_int_equal(json_integer_value(json_object_get(o, "hits")), 7);
			else
				assert_non_null(json_string_value(json_object_get(o, "error")));
		}
		json_decref(o);
	}
	return n;
}

static void test_runs_and_suspended(void **state)
{
	struct fx f;
	const char *err = NULL;
	char *p, *calls;
	struct stat st;

	(void)state;
	fx_setup(&f, NULL);
	fx_init(&f);
	fx_domain(&f, "a.example", "bob", true);
	fx_domain(&f, "b.example", "carol", true);
	fx_domain(&f, "c.example", "bob", true);
	fx_domain(&f, "nolog.example", "bob", false);
	assert_int_equal(pluginmock_send(f.m, "user.suspended", "user:carol",
					 "{\"user\":\"SUSPENDED_20261128101010_carol\"}",
					 &err),
			 0);
	assert_int_equal(run_stats(&f, "stats", NULL, &err),
			 0);
	assert_int_equal(reports(&f, "a.example", true), 1);
	assert_int_equal(reports(&f, "c.example", true), 1);
	assert_int_equal(reports(&f, "b.example", true) +
				 reports(&f, "b.example", false),
			 0);
	assert_int_equal(reports(&f, "nolog.example", false), 1);
	p = join(f.stats, "bob/a.example.html");
	assert_int_equal(stat(p, &st), 0);
	free(p);
	p = join(f.stats, "carol/b.example.html");
	assert_int_not_equal(stat(p, &st), 0);
	free(p);
	/* no temp outputs left behind */
	p = join(f.stats, "bob/.ophook-a.example.json");
	assert_int_not_equal(stat(p, &st), 0);
	free(p);
	p = join(pluginmock_tmp(f.m), "bin/calls");
	calls = slurp(p);
	/* the log comes as stdin, the outputs go to the work folder */
	assert_non_null(strstr(calls, "- --log-format=CADDY -o report.html -o "
				      "report.json "));
	assert_non_null(strstr(calls, " --no-global-config --no-progress"));
	assert_null(strstr(calls, "b.example"));
	assert_null(strstr(calls, "--geoip-database")); /* db missing */
	free(calls);
	free(p);
	/* one domain, suspended owner: nothing; unknown domain: refused */
	assert_int_equal(run_stats(&f, "b.example",
					 "{\"domain\":\"b.example\"}", &err),
			 0);
	assert_int_equal(reports(&f, "b.example", true), 0);
	assert_int_equal(run_stats(&f, "x.example",
					 "{\"domain\":\"x.example\"}", &err),
			 -EINVAL);
	assert_non_null(strstr(err, "field domain"));
	assert_int_equal(run_stats(&f, "x",
					 "{\"domain\":\"../../etc\"}", &err),
			 -EINVAL);
	/* unsuspended: runs again */
	assert_int_equal(pluginmock_send(f.m, "user.unsuspended", "user:carol",
					 "{\"user\":\"carol\"}", &err),
			 0);
	assert_int_equal(run_stats(&f, "b.example",
					 "{\"domain\":\"b.example\"}", &err),
			 0);
	assert_int_equal(reports(&f, "b.example", true), 1);
	/* domain.removed takes the report away */
	assert_int_equal(pluginmock_send(f.m, "domain.removed", "a.example",
					 "{\"domain\":\"a.example\"}", &err),
			 0);
	p = join(f.stats, "bob/a.example.html");
	assert_int_not_equal(stat(p, &st), 0);
	free(p);
	fx_free(&f);
}

static void *send_run(void *arg)
{
	struct fx *f = arg;
	const char *err = NULL;

	assert_int_equal(pluginmock_send(f->m, "stats.run", "stats", NULL, &err),
			 0);
	return NULL;
}

/* Two concurrent stats.run over 6 domains with max_procs 2: never more
 * than 2 goaccess processes at once. */
static void test_max_procs(void **state)
{
	struct fx f;
	char name[32], *p, *peaks;
	pthread_t th;
	unsigned n = 0, max = 0;

	(void)state;
	fx_setup(&f, ", \"max_procs\": \"2\"");
	fx_init(&f);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "d%d.example", i);
		fx_domain(&f, name, "bob", true);
	}
	p = join(pluginmock_tmp(f.m), "bin/slow");
	spew(p, "", 0644);
	free(p);
	assert_int_equal(pthread_create(&th, NULL, send_run, &f), 0);
	send_run(&f);
	pthread_join(th, NULL);
	ga_drain(pluginmock_data(f.m));
	p = join(pluginmock_tmp(f.m), "bin/peaks");
	peaks = slurp(p);
	assert_non_null(peaks);
	for (char *l = strtok(peaks, "\n"); l != NULL; l = strtok(NULL, "\n")) {
		unsigned v = (unsigned)strtoul(l, NULL, 10);

		n++;
		if (v > max)
			max = v;
	}
	/* 6 to 12 runs: a domain still queued is not queued twice */
	assert_in_range(n, 6, 12);
	assert_in_range(max, 1, 2);
	assert_int_equal(pluginmock_emitted_count(f.m, "stats.report"), n);
	free(peaks);
	free(p);
	fx_free(&f);
}

static void test_failure_reported(void **state)
{
	struct fx f;
	const char *err = NULL;
	char *p;

	(void)state;
	fx_setup(&f, NULL);
	fx_init(&f);
	fx_domain(&f, "fail.example", "bob", true);
	p = join(f.logs, "fail.example/access.log");
	spew(p, "{\"fail\": 1}\n", 0644);
	free(p);
	assert_int_equal(run_stats(&f, "fail.example",
					 "{\"domain\":\"fail.example\"}", &err),
			 0);
	assert_int_equal(reports(&f, "fail.example", false), 1);
	assert_int_equal(pluginmock_log_grep(f.m, "bad log"), 1);
	p = join(f.stats, "bob/fail.example.html");
	assert_int_not_equal(access(p, F_OK), 0);
	free(p);
	fx_free(&f);
}

/* The error of the last stats.report for domain (static copy). */
static const char *report_error(struct fx *f, const char *domain)
{
	static char buf[1024];

	buf[0] = '\0';
	for (size_t i = 0; i < pluginmock_emitted_count(f->m, NULL); i++) {
		const struct pluginmock_emitted *e = pluginmock_emitted(f->m, i);
		json_t *o;

		if (strcmp(e->type, "stats.report") != 0 ||
		    strcmp(e->subject, domain) != 0)
			continue;
		o = json_loads(e->fields, 0, NULL);
		snprintf(buf, sizeof(buf), "%s",
			 json_string_value(json_object_get(o, "error")) != NULL
				 ? json_string_value(json_object_get(o, "error"))
				 : "");
		json_decref(o);
	}
	return buf;
}

/* Issue 16, finding 2: symlinks a customer plants in their stats folder or
 * log folder never make root write or read outside it. */
static void test_hostile_folders(void **state)
{
	struct fx f;
	const char *err = NULL, *tmp;
	char *outside, *victim, *p, *q, *s;
	struct stat st0, st1;

	(void)state;
	fx_setup(&f, NULL);
	fx_init(&f);
	tmp = pluginmock_tmp(f.m);
	outside = join(tmp, "outside");
	victim = join(outside, "a.example.html");
	spew(victim, "precious\n", 0644);
	p = join(outside, "secret");
	spew(p, "SECRET\n", 0600);
	free(p);
	assert_int_equal(stat(victim, &st0), 0);

	/* 1. the stats folder is a symlink to another folder */
	fx_domain(&f, "a.example", "bob", true);
	p = join(f.stats, "bob");
	q = join(f.stats, "bob.real");
	assert_int_equal(rename(p, q), 0);
	assert_int_equal(symlink(outside, p), 0);
	assert_int_equal(run_stats(&f, "a.example", "{\"domain\":\"a.example\"}",
				   &err), 0);
	assert_int_equal(reports(&f, "a.example", false), 1);
	assert_non_null(strstr(report_error(&f, "a.example"), "/bob: a symlink"));
	assert_int_equal(pluginmock_log_grep(f.m, "a.example: "), 1);
	assert_int_equal(stat(victim, &st1), 0);
	assert_int_equal(st1.st_mtim.tv_nsec, st0.st_mtim.tv_nsec);
	assert_string_equal(s = slurp(victim), "precious\n");
	free(s);
	/* domain.removed does not unlink through it either */
	assert_int_equal(pluginmock_send(f.m, "domain.removed", "a.example",
					 "{\"domain\":\"a.example\",\"user\":\"bob\"}",
					 &err), -ELOOP);
	assert_non_null(strstr(err, "a.example: "));
	assert_non_null(strstr(err, "/bob: a symlink"));
	assert_int_equal(access(victim, F_OK), 0);
	/* domain.added refuses to make folders through it */
	assert_int_equal(pluginmock_send(f.m, "domain.added", "a.example",
					 "{\"domain\":\"a.example\",\"user\":\"bob\"}",
					 &err), -ELOOP);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(rename(q, p), 0);
	free(q);

	/* 2. the report's name is a symlink: replaced, the target untouched */
	q = join(p, "a.example.html");
	assert_int_equal(symlink(victim, q), 0);
	assert_int_equal(run_stats(&f, "a.example", "{\"domain\":\"a.example\"}",
				   &err), 0);
	assert_int_equal(reports(&f, "a.example", true), 1);
	assert_int_equal(lstat(q, &st1), 0);
	assert_true(S_ISREG(st1.st_mode));
	assert_string_equal(s = slurp(victim), "precious\n");
	free(s);
	free(q);
	free(p);

	/* 3. the log is a symlink to a root-only file: not read */
	p = join(f.logs, "a.example/access.log");
	assert_int_equal(unlink(p), 0);
	q = join(outside, "secret");
	assert_int_equal(symlink(q, p), 0);
	assert_int_equal(run_stats(&f, "a.example", "{\"domain\":\"a.example\"}",
				   &err), 0);
	assert_non_null(strstr(report_error(&f, "a.example"),
			       "/a.example/access.log: a symlink, refused"));
	assert_int_equal(pluginmock_log_grep(f.m, "leaked"), 0);
	/* a hard link to it: refused too */
	assert_int_equal(unlink(p), 0);
	assert_int_equal(link(q, p), 0);
	assert_int_equal(run_stats(&f, "a.example", "{\"domain\":\"a.example\"}",
				   &err), 0);
	assert_non_null(strstr(report_error(&f, "a.example"), "hard link"));
	assert_int_equal(pluginmock_log_grep(f.m, "leaked"), 0);
	assert_int_equal(unlink(p), 0);
	free(q);
	free(p);
	/* 4. the log folder is a symlink */
	p = join(f.logs, "a.example");
	assert_int_equal(rmdir(p), 0);
	assert_int_equal(symlink(outside, p), 0);
	spew(victim, "SECRET\n", 0644);
	q = join(outside, "access.log");
	assert_int_equal(symlink("a.example.html", q), 0);
	assert_int_equal(run_stats(&f, "a.example", "{\"domain\":\"a.example\"}",
				   &err), 0);
	assert_non_null(strstr(report_error(&f, "a.example"),
			       "/a.example: a symlink, refused"));
	assert_int_equal(pluginmock_log_grep(f.m, "leaked"), 0);
	free(q);
	free(p);
	/* no work folder left in state_dir */
	p = join(pluginmock_state_dir(f.m), "");
	{
		DIR *dh = opendir(pluginmock_state_dir(f.m));
		struct dirent *de;

		assert_non_null(dh);
		while ((de = readdir(dh)) != NULL)
			assert_int_not_equal(strncmp(de->d_name, "work-", 5), 0);
		closedir(dh);
	}
	free(p);
	free(victim);
	free(outside);
	fx_free(&f);
}

static void test_argv(void **state)
{
	struct fx f;
	char *geo, *ips, **argv = NULL;
	struct ga *g;
	size_t n;

	(void)state;
	fx_setup(&f, NULL);
	geo = join(pluginmock_tmp(f.m), "none.mmdb");
	spew(geo, "x", 0644);
	ips = join(pluginmock_root(f.m),
		   "openpanel/core/users/bob/goaccess_excluded_ips");
	spew(ips, "# mine\n10.0.0.1\n\n 192.168.1.0/24 \nevil; rm -rf /\n"
		  "10.1.1.1-10.1.1.9\n::1\n", 0644);
	fx_init(&f);
	g = pluginmock_data(f.m);
	assert_int_equal(ga_build_argv(g, "bob", "/l/a.log", "/s/a.html",
				       "/s/a.json", &argv),
			 0);
	n = argv_len((const char *const *)argv);
	assert_int_equal(n, 1 + 8 + 1 + 4);
	assert_string_equal(argv[0], f.fake);
	assert_string_equal(argv[1], "/l/a.log");
	assert_string_equal(argv[2], "--log-format=CADDY");
	assert_string_equal(argv[3], "-o");
	assert_string_equal(argv[4], "/s/a.html");
	assert_string_equal(argv[6], "/s/a.json");
	assert_string_equal(argv[7], "--no-global-config");
	assert_int_equal(strncmp(argv[9], "--geoip-database=", 17), 0);
	assert_string_equal(argv[10], "--exclude-ip=10.0.0.1");
	assert_string_equal(argv[11], "--exclude-ip=192.168.1.0/24");
	assert_string_equal(argv[12], "--exclude-ip=10.1.1.1-10.1.1.9");
	assert_string_equal(argv[13], "--exclude-ip=::1");
	assert_int_equal(pluginmock_log_grep(f.m, "goaccess_excluded_ips:5:"), 1);
	argv_free(&argv);
	/* another user: no list */
	assert_int_equal(ga_build_argv(g, "carol", "/l/a.log", "/s/a.html",
				       "/s/a.json", &argv),
			 0);
	assert_int_equal(argv_len((const char *const *)argv), 10);
	argv_free(&argv);
	free(ips);
	free(geo);
	fx_free(&f);
}

static void test_schedule_actions(void **state)
{
	struct fx f;
	const char *err = NULL;
	char *conf;
	struct ga *g;

	(void)state;
	fx_setup(&f, NULL);
	conf = join(pluginmock_root(f.m), "openpanel/conf/openpanel.config");
	spew(conf, "[GENERAL]\nns1=a\n[STATS]\nschedule=hourly\n", 0644);
	fx_init(&f);
	g = pluginmock_data(f.m);
	assert_true(pluginmock_action_pending(f.m, "schedule-1"));
	assert_int_equal(pluginmock_action_delay(f.m, "schedule-1"), 3600000u);
	/* fired early (the mock runs at once): re-armed, nothing emitted */
	pluginmock_run_actions(f.m);
	assert_int_equal(pluginmock_emitted_count(f.m, "stats.run"), 0);
	/* due: one stats.run */
	pthread_mutex_lock(&g->lock);
	g->due_ms = 0;
	pthread_mutex_unlock(&g->lock);
	pluginmock_run_actions(f.m);
	assert_int_equal(pluginmock_emitted_count(f.m, "stats.run"), 1);
	/* config.changed to off: the old generation dies out */
	spew(conf, "[STATS]\nschedule=off\n", 0644);
	assert_int_equal(pluginmock_send(f.m, "config.changed", "openpanel.config",
					 NULL, &err),
			 0);
	assert_int_equal(g->interval_ms, 0);
	pthread_mutex_lock(&g->lock);
	g->due_ms = 0;
	pthread_mutex_unlock(&g->lock);
	pluginmock_run_actions(f.m);
	assert_false(pluginmock_action_pending(f.m, "schedule-1"));
	assert_false(pluginmock_action_pending(f.m, "schedule-2"));
	assert_int_equal(pluginmock_emitted_count(f.m, "stats.run"), 1);
	/* a bad value: warned, daily */
	spew(conf, "[STATS]\ngoaccess_schedule=weekly\n", 0644);
	assert_int_equal(pluginmock_send(f.m, "config.changed", "openpanel.config",
					 NULL, &err),
			 0);
	assert_int_equal(g->interval_ms, 86400000u);
	assert_int_equal(pluginmock_log_grep(f.m, "\"weekly\""), 1);
	assert_true(pluginmock_action_pending(f.m, "schedule-3"));
	free(conf);
	fx_free(&f);
}

static void test_settings(void **state)
{
	struct pluginmock *m;
	const char *err = NULL;

	(void)state;
	m = pluginmock_new("{\"schedule\": \"sometimes\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_non_null(strstr(err, "setting schedule"));
	pluginmock_free(&m);
	m = pluginmock_new("{\"max_procs\": \"0\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_non_null(strstr(err, "max_procs"));
	pluginmock_free(&m);
	m = pluginmock_new("{\"log_name\": \"../x\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	pluginmock_free(&m);
	/* schedule off from the setting: no action */
	m = pluginmock_new("{\"schedule\": \"off\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), 0);
	assert_int_equal(pluginmock_action_requests(m, NULL), 0);
	pluginmock_free(&m);
}

/* Settings are checked by the host against ga_settings_decl[]: the error
 * names the setting and the bounds; a check-only init does nothing (no
 * state file, no thread, no schedule). */
static void test_settings_declared(void **state)
{
	struct pluginmock *m;
	const char *err = NULL;
	char *settings = NULL;

	(void)state;
	m = pluginmock_new("{\"max_procs\": 65}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.goaccess.settings.max_procs: "
				 "'65' is out of range 1..64");
	pluginmock_free(&m);
	m = pluginmock_new("{\"timeout_s\": \"1h\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.goaccess.settings.timeout_s: "
				 "'1h' is not an integer");
	pluginmock_free(&m);
	m = pluginmock_new("{\"stats_dir\": \"stats\"}");
	pluginmock_set_plugin(m, &ophook_plugin);
	assert_int_equal(pluginmock_init(m, &err), -EINVAL);
	assert_string_equal(err, "plugins.goaccess.settings.stats_dir: "
				 "'stats' is not an absolute path");
	pluginmock_free(&m);

	m = pluginmock_new(NULL);
	assert_true(asprintf(&settings,
			     "{\"log_base\": \"%s/logs\", \"stats_dir\": "
			     "\"%s/stats\", \"schedule\": \"10s\", "
			     "\"goaccess_argv\": \"goaccess --no-global-config\"}",
			     pluginmock_tmp(m), pluginmock_tmp(m)) > 0);
	pluginmock_set_settings(m, settings);
	free(settings);
	pluginmock_set_plugin(m, &ophook_plugin);
	pluginmock_check_only(m, true);
	assert_int_equal(pluginmock_init(m, &err), OPHOOK_SETTINGS_CHECKED);
	assert_null(pluginmock_data(m));
	assert_int_equal(pluginmock_tmp_entries(m), 0);
	assert_int_equal(pluginmock_action_requests(m, NULL), 0);
	assert_int_equal(pluginmock_log_count(m), 0);
	pluginmock_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schedule_parse),
		cmocka_unit_test(test_ini_schedule),
		cmocka_unit_test(test_runs_and_suspended),
		cmocka_unit_test(test_failure_reported),
		cmocka_unit_test(test_max_procs),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_schedule_actions),
		cmocka_unit_test(test_hostile_folders),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_settings_declared),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
