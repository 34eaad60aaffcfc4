/* Unit tests for the folder-walking and at-file helpers of <ophook/safe.h>
 * (issue 16, finding 2: root writes inside folders a customer can write
 * to).  Everything happens in a fresh temp folder. */
#define _GNU_SOURCE
#define OPHOOK_SAFE_IMPLEMENTATION
#define OPHOOK_SAFE_STATIC
#include <ophook/safe.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char top[256];

static char *pj(const char *rel)
{
	static char buf[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", top, rel);
	return buf[i];
}

static void put(const char *rel, const char *text)
{
	FILE *f = fopen(pj(rel), "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static char *get(const char *rel)
{
	char *data = NULL;
	size_t len;

	if (ophook_file_read_nofollow(pj(rel), 1 << 20, &data, &len) < 0)
		return NULL;
	return data;
}

/* Number of entries (other than . and ..) in folder rel. */
static int entries(const char *rel)
{
	DIR *d = opendir(pj(rel));
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static int setup(void **state)
{
	(void)state;
	snprintf(top, sizeof(top), "%s/test_safe.XXXXXX",
		 getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
	if (mkdtemp(top) == NULL)
		return -1;
	if (mkdir(pj("base"), 0755) < 0 || mkdir(pj("base/u"), 0755) < 0 ||
	    mkdir(pj("outside"), 0755) < 0)
		return -1;
	put("outside/victim", "precious\n");
	return 0;
}

static int teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_dir_open_plain(void **state)
{
	int fd = -1;
	size_t bad = 99;

	(void)state;
	assert_int_equal(ophook_dir_open_under(pj("base"), "u", 0, 0, &fd, &bad),
			 0);
	assert_true(fd >= 0);
	close(fd);
	/* "" is the base itself; doubled and trailing slashes are fine */
	assert_int_equal(ophook_dir_open_under(pj("base"), "", 0, 0, &fd, &bad), 0);
	close(fd);
	assert_int_equal(ophook_dir_open_under(pj("base"), "u//", 0, 0, &fd,
					       &bad), 0);
	close(fd);
	/* missing, no create */
	assert_int_equal(ophook_dir_open_under(pj("base"), "u/x/y", 0, 0, &fd,
					       &bad), -ENOENT);
	assert_int_equal(fd, -1);
	assert_int_equal(bad, 3); /* "u/x" */
	/* create makes each level */
	assert_int_equal(ophook_dir_open_under(pj("base"), "u/x/y",
					       OPHOOK_DIR_CREATE, 0750, &fd,
					       &bad), 0);
	close(fd);
	struct stat st;

	assert_int_equal(lstat(pj("base/u/x/y"), &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0750); /* umask 022 (main) */
	/* a missing base is made with create */
	assert_int_equal(ophook_dir_open_under(pj("newbase/a"), "b",
					       OPHOOK_DIR_CREATE, 0755, &fd,
					       &bad), 0);
	close(fd);
	assert_int_equal(lstat(pj("newbase/a/b"), &st), 0);
}

static void test_dir_open_refuses(void **state)
{
	int fd = -1;
	size_t bad = 0;

	(void)state;
	/* a symlink as the last, and as a middle component */
	assert_int_equal(symlink(pj("outside"), pj("base/link")), 0);
	assert_int_equal(ophook_dir_open_under(pj("base"), "link", 0, 0, &fd,
					       &bad), -ELOOP);
	assert_int_equal(bad, 4);
	assert_int_equal(ophook_dir_open_under(pj("base"), "link/sub",
					       OPHOOK_DIR_CREATE, 0755, &fd,
					       &bad), -ELOOP);
	assert_int_equal(bad, 4);
	assert_int_equal(entries("outside"), 1); /* nothing made through it */
	assert_int_equal(mkdir(pj("base/u2"), 0755), 0);
	assert_int_equal(symlink(pj("outside"), pj("base/u2/in")), 0);
	assert_int_equal(ophook_dir_open_under(pj("base"), "u2/in/x",
					       OPHOOK_DIR_CREATE, 0755, &fd,
					       &bad), -ELOOP);
	assert_int_equal(bad, 5); /* "u2/in" */
	/* a dangling symlink with create: not made through */
	assert_int_equal(symlink(pj("outside/made"), pj("base/dangling")), 0);
	assert_int_equal(ophook_dir_open_under(pj("base"), "dangling",
					       OPHOOK_DIR_CREATE, 0755, &fd,
					       &bad), -ELOOP);
	assert_int_equal(access(pj("outside/made"), F_OK), -1);
	/* a file where a folder should be */
	put("base/file", "x");
	assert_int_equal(ophook_dir_open_under(pj("base"), "file", 0, 0, &fd,
					       &bad), -ENOTDIR);
	/* . and .. and absolute paths */
	assert_int_equal(ophook_dir_open_under(pj("base"), "u/../..", 0, 0, &fd,
					       &bad), -EINVAL);
	assert_int_equal(bad, 4);
	assert_int_equal(ophook_dir_open_under(pj("base"), "./u", 0, 0, &fd,
					       &bad), -EINVAL);
	assert_int_equal(ophook_dir_open_at(AT_FDCWD, "/etc", 0, 0, &fd, &bad),
			 -EINVAL);
	assert_int_equal(fd, -1);
	/* the base itself is the admin's: a symlink there is followed */
	assert_int_equal(symlink(pj("base"), pj("baselink")), 0);
	assert_int_equal(ophook_dir_open_under(pj("baselink"), "u", 0, 0, &fd,
					       &bad), 0);
	close(fd);
	assert_int_equal(ophook_dir_open_under(pj("nosuch"), "u", 0, 0, &fd,
					       &bad), -ENOENT);
	assert_int_equal(bad, 0);
}

static void test_write_atomic_at(void **state)
{
	int dfd = -1;
	struct stat st;
	char *s;

	(void)state;
	assert_int_equal(ophook_dir_open_under(pj("base"), "u", 0, 0, &dfd,
					       NULL), 0);
	/* new file: mode, content */
	assert_int_equal(ophook_file_write_atomic_at(dfd, "r.html", "one", 3,
						     0640, (uid_t)-1,
						     (gid_t)-1), 0);
	assert_string_equal(s = get("base/u/r.html"), "one");
	free(s);
	assert_int_equal(lstat(pj("base/u/r.html"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* existing: replaced, mode kept */
	assert_int_equal(ophook_file_write_atomic_at(dfd, "r.html", "two", 3,
						     0600, (uid_t)-1,
						     (gid_t)-1), 0);
	assert_string_equal(s = get("base/u/r.html"), "two");
	free(s);
	assert_int_equal(lstat(pj("base/u/r.html"), &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	/* a symlink planted as the name is replaced, its target untouched */
	assert_int_equal(symlink(pj("outside/victim"), pj("base/u/s.html")), 0);
	assert_int_equal(ophook_file_write_atomic_at(dfd, "s.html", "rep", 3,
						     0644, (uid_t)-1,
						     (gid_t)-1), 0);
	assert_int_equal(lstat(pj("base/u/s.html"), &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_string_equal(s = get("outside/victim"), "precious\n");
	free(s);
	/* a hard link planted as the name: the other name keeps its data */
	assert_int_equal(link(pj("outside/victim"), pj("base/u/h.html")), 0);
	assert_int_equal(ophook_file_write_atomic_at(dfd, "h.html", "rep", 3,
						     0644, (uid_t)-1,
						     (gid_t)-1), 0);
	assert_string_equal(s = get("outside/victim"), "precious\n");
	free(s);
	/* bad names */
	assert_int_equal(ophook_file_write_atomic_at(dfd, "a/b", "x", 1, 0644,
						     (uid_t)-1, (gid_t)-1),
			 -EINVAL);
	assert_int_equal(ophook_file_write_atomic_at(dfd, "..", "x", 1, 0644,
						     (uid_t)-1, (gid_t)-1),
			 -EINVAL);
	/* a folder in the way: fails, no temp file left */
	assert_int_equal(mkdir(pj("base/u/d.html"), 0755), 0);
	assert_true(ophook_file_write_atomic_at(dfd, "d.html", "x", 1, 0644,
						(uid_t)-1, (gid_t)-1) < 0);
	/* r.html s.html h.html d.html: nothing else */
	assert_int_equal(entries("base/u"), 4);
	/* owner (root only: the test may run unprivileged) */
	if (geteuid() == 0) {
		assert_int_equal(ophook_file_write_atomic_at(dfd, "o.html", "x",
							     1, 0644, 1234,
							     1235), 0);
		assert_int_equal(lstat(pj("base/u/o.html"), &st), 0);
		assert_int_equal(st.st_uid, 1234);
		assert_int_equal(st.st_gid, 1235);
	}
	close(dfd);
}

static void test_copy_and_open_at(void **state)
{
	int dfd = -1, src = -1, fd = -1;
	char *s = NULL, big[5000];
	size_t len;

	(void)state;
	assert_int_equal(ophook_dir_open_under(pj("base"), "u",
					       OPHOOK_DIR_CREATE, 0755, &dfd,
					       NULL), 0);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put("base/u/src", big);
	assert_int_equal(ophook_file_open_at(dfd, "src", true, &src), 0);
	assert_int_equal(ophook_file_copy_atomic_at(dfd, "copy", src, 1 << 20,
						    0644, (uid_t)-1, (gid_t)-1),
			 0);
	close(src);
	assert_string_equal(s = get("base/u/copy"), big);
	free(s);
	/* over max: -EFBIG, the old file stays */
	assert_int_equal(ophook_file_open_at(dfd, "src", true, &src), 0);
	assert_int_equal(ophook_file_copy_atomic_at(dfd, "copy", src, 100, 0644,
						    (uid_t)-1, (gid_t)-1),
			 -EFBIG);
	close(src);
	assert_string_equal(s = get("base/u/copy"), big);
	free(s);
	/* open_at: symlink refused, folder refused, FIFO refused without
	 * blocking, second hard link refused with nlink1 */
	assert_int_equal(symlink(pj("outside/victim"), pj("base/u/ln")), 0);
	assert_int_equal(ophook_file_open_at(dfd, "ln", false, &fd), -ELOOP);
	assert_int_equal(ophook_file_open_at(dfd, ".", false, &fd), -EINVAL);
	assert_int_equal(mkfifo(pj("base/u/fifo"), 0644), 0);
	assert_int_equal(ophook_file_open_at(dfd, "fifo", false, &fd), -EINVAL);
	assert_int_equal(link(pj("outside/victim"), pj("base/u/hl")), 0);
	assert_int_equal(ophook_file_open_at(dfd, "hl", true, &fd), -EMLINK);
	assert_int_equal(ophook_file_open_at(dfd, "hl", false, &fd), 0);
	close(fd);
	/* read_at */
	assert_int_equal(ophook_file_read_at(dfd, "copy", 1 << 20, &s, &len), 0);
	assert_int_equal(len, strlen(big));
	free(s);
	assert_int_equal(ophook_file_read_at(dfd, "ln", 1 << 20, &s, &len),
			 -ELOOP);
	assert_int_equal(ophook_file_read_at(dfd, "copy", 10, &s, &len), -EFBIG);
	close(dfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_dir_open_plain, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_dir_open_refuses, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_at, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_copy_and_open_at, setup,
						teardown),
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
