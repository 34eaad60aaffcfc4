/* Unit tests for core/sources/watch.c's folder walk (watch_tree), driven step by
 * step on a real inotify instance.  The .c is included to reach the
 * static functions. */
#include "../../core/sources/watch.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cmocka.h>

struct fixture {
	char dir[64];
	char *root;
	uv_loop_t loop;
	struct watch *w;
};

static int setup(void **state)
{
	struct fixture *fx = xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/ophook-wt.XXXXXX");
	if (mkdtemp(fx->dir) == NULL)
		return -1;
	fx->root = xasprintf("%s/root", fx->dir);
	if (mkdir(fx->root, 0755) < 0)
		return -1;
	uv_loop_init(&fx->loop);
	struct watch *w = xcalloc(1, sizeof(*w));

	w->loop = &fx->loop;
	w->root = fx->root;
	w->croots = (struct classify_roots){ fx->root, NULL, NULL };
	w->roots = &fx->root;
	w->n_roots = w->n_static = 1;
	w->root_set = hmap_new();
	hmap_put(w->root_set, fx->root, (void *)1);
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd < 0)
		return -1;
	w->rbuf = xmalloc(WATCH_READ_BUF);
	w->wd_map = hmap_new();
	w->path_map = hmap_new();
	w->dirty = hmap_new();
	w->settle.w = w->created.w = w;
	uv_timer_init(&fx->loop, &w->settle.timer);
	uv_timer_init(&fx->loop, &w->created.timer);
	w->settle.timer.data = &w->settle;
	w->created.timer.data = &w->created;
	fx->w = w;
	*state = fx;
	return 0;
}

static void fx_free_dir(void *p)
{
	struct watch_dir *wdir = p;

	free(wdir->path);
	free(wdir);
}

static void fx_free_dirty(void *p)
{
	struct dirty *d = p;

	free(d->path);
	free(d);
}

static int teardown(void **state)
{
	struct fixture *fx = *state;
	struct watch *w = fx->w;
	char *cmd[] = { "rm", "-rf", fx->dir, NULL };
	pid_t pid;

	uv_close((uv_handle_t *)&w->settle.timer, NULL);
	uv_close((uv_handle_t *)&w->created.timer, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	uv_loop_close(&fx->loop);
	close(w->ifd);
	hmap_free(&w->wd_map, NULL);
	hmap_free(&w->path_map, fx_free_dir);
	hmap_free(&w->dirty, fx_free_dirty);
	hmap_free(&w->root_set, NULL);
	free(w->rbuf);
	free(w->move_from);
	free(w);
	pid = fork();
	if (pid == 0) {
		execvp(cmd[0], cmd);
		_exit(127);
	}
	waitpid(pid, NULL, 0);
	free(fx->root);
	free(fx);
	return 0;
}

static char *fx_path(struct fixture *fx, const char *rel)
{
	return xasprintf("%s/%s", fx->root, rel);
}

static void fx_mkdir(struct fixture *fx, const char *rel)
{
	char *p = fx_path(fx, rel);

	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static bool fx_dirty(struct fixture *fx, const char *rel)
{
	char *p = fx_path(fx, rel);
	bool yes = hmap_get(fx->w->dirty, p) != NULL;

	free(p);
	return yes;
}

/* What the daemon does with inotify's queue: every event handled. */
static void fx_drain(struct fixture *fx)
{
	watch_drain(fx->w);
}

/* mkdir -p users/erin users/fred racing the watcher: users is made after
 * its parent's watch landed (its IN_CREATE is queued) and the parent's
 * scan finds it and scans it before fred exists; fred is made; then the
 * queued IN_CREATE(users) walks users again (it is watched already) and
 * meets fred before fred's own IN_CREATE.  fred must still be looked at:
 * it was lost (user.added never came until a reconcile) when the second
 * walk watched fred without scanning it. */
static void test_walk_race(void **state)
{
	struct fixture *fx = *state;
	char *core = fx_path(fx, "openpanel/core");
	char *users = fx_path(fx, "openpanel/core/users");
	bool is_new;

	fx_mkdir(fx, "openpanel");
	watch_tree(fx->w, fx->root, false); /* the daemon's start */
	fx_mkdir(fx, "openpanel/core");     /* IN_CREATE(core) queued */
	/* the walk of core's creation: core watched, then its scan ... */
	assert_non_null(watch_add_dir(fx->w, core, true, &is_new));
	fx_mkdir(fx, "openpanel/core/users"); /* IN_CREATE(users) queued */
	fx_mkdir(fx, "openpanel/core/users/erin");
	/* ... finds users and scans it: erin */
	watch_tree(fx->w, users, true);
	assert_true(fx_dirty(fx, "openpanel/core/users/erin"));
	fx_mkdir(fx, "openpanel/core/users/fred"); /* IN_CREATE(fred) queued */
	fx_drain(fx); /* core's and users' events walk them again first */
	assert_true(fx_dirty(fx, "openpanel/core/users/fred"));
	free(core);
	free(users);
}

/* A tree made while nothing of it was watched is scanned whole; a walk
 * of a watched tree does not mark old entries dirty. */
static void test_walk_new_and_old(void **state)
{
	struct fixture *fx = *state;

	watch_tree(fx->w, fx->root, false);
	fx_mkdir(fx, "openpanel");
	fx_mkdir(fx, "openpanel/core");
	fx_mkdir(fx, "openpanel/core/users");
	fx_mkdir(fx, "openpanel/core/users/ann");
	fx_drain(fx);
	assert_true(fx_dirty(fx, "openpanel/core/users/ann"));
	hmap_free(&fx->w->dirty, fx_free_dirty);
	fx->w->dirty = hmap_new();
	fx->w->settle.head = fx->w->settle.tail = NULL;
	watch_tree(fx->w, fx->root, true); /* all watched already */
	assert_false(fx_dirty(fx, "openpanel/core/users/ann"));
}

static void fx_write(struct fixture *fx, const char *rel)
{
	char *p = fx_path(fx, rel);
	FILE *f = fopen(p, "w");

	assert_non_null(f);
	fputs("x.example.com {\n    reverse_proxy http://127.0.0.1:1\n}\n", f);
	fclose(f);
	free(p);
}

/* Issue 16, findings 5 and 9: a folder that cannot be opened for want of
 * a descriptor is scanned again by the trouble timer (nothing lost); a
 * folder without a watch (ENOSPC) is polled, and watched again (then
 * reconciled) once a watch can be had. */
static void test_shortages(void **state)
{
	struct fixture *fx = *state;
	struct watch *w = fx->w;
	char *db = xasprintf("%s/snapshot.db", fx->dir);
	char *dom = fx_path(fx, "caddy/domains");
	struct rlimit rl, low;
	const char *err;
	bool fresh;
	int probe;

	fx_mkdir(fx, "caddy");
	fx_mkdir(fx, "caddy/domains");
	fx_write(fx, "caddy/domains/a.example.com.conf");
	w->retry = hmap_new();
	w->unwatched = hmap_new();
	uv_timer_init(&fx->loop, &w->trouble_timer);
	w->trouble_timer.data = w;
	assert_int_equal(snapshot_open(db, &w->snap, &fresh, &err), 0);

	/* every descriptor taken: the lowest free one is the limit */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	probe = dup(0);
	assert_true(probe >= 0);
	close(probe);
	low = rl;
	low.rlim_cur = (rlim_t)probe;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	watch_tree(w, fx->root, true);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	assert_true(w->fd_short);
	assert_ptr_equal(hmap_get(w->retry, fx->root), WATCH_RETRY_DIR);
	assert_true(uv_is_active((uv_handle_t *)&w->trouble_timer));
	assert_false(fx_dirty(fx, "caddy/domains/a.example.com.conf"));
	watch_trouble_cb(&w->trouble_timer); /* descriptors back */
	assert_int_equal(hmap_count(w->retry), 0);
	assert_true(fx_dirty(fx, "caddy/domains/a.example.com.conf"));
	watch_trouble_cb(&w->trouble_timer); /* nothing hit since: over */
	assert_false(w->fd_short);
	assert_false(uv_is_active((uv_handle_t *)&w->trouble_timer));

	/* caddy/domains loses its watch to the limit: polled */
	watch_forget_dir(w, hmap_get(w->path_map, dom), true);
	watch_limit_hit(w, dom);
	assert_true(w->limit_hit);
	assert_non_null(hmap_get(w->unwatched, dom));
	fx_write(fx, "caddy/domains/b.example.com.conf");
	assert_false(fx_dirty(fx, "caddy/domains/b.example.com.conf"));
	watch_poll_dir(w, dom);
	assert_true(fx_dirty(fx, "caddy/domains/b.example.com.conf"));
	/* a watch can be had again (no real limit here): watched and over */
	watch_trouble_cb(&w->trouble_timer);
	assert_non_null(hmap_get(w->path_map, dom));
	assert_int_equal(hmap_count(w->unwatched), 0);
	assert_false(w->limit_hit);

	uv_close((uv_handle_t *)&w->trouble_timer, NULL);
	snapshot_close(&w->snap);
	hmap_free(&w->retry, NULL);
	hmap_free(&w->unwatched, NULL);
	free(dom);
	free(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_walk_race, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_walk_new_and_old, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_shortages, setup,
						teardown),
	};

	log_set_level(LOG_ERROR_L);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
