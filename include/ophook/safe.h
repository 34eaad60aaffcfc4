/* ophook/safe.h: the checks and file helpers the daemon itself uses, for
 * plugins (in-tree or not) to apply the same rules.
 *
 * A single-header library (stb style).  Every file may include it for the
 * declarations; exactly one .c file of a plugin defines the functions:
 *
 *   #define OPHOOK_SAFE_IMPLEMENTATION
 *   #include <ophook/safe.h>
 *
 * With OPHOOK_SAFE_STATIC also defined there, the functions are static to
 * that file (for a plugin made of one .c file).
 *
 * The implementation needs POSIX.1-2008 (O_NOFOLLOW, O_CLOEXEC, mkstemp,
 * fchown): build with -std=gnu11, or define _POSIX_C_SOURCE 200809L (or
 * _GNU_SOURCE) before the first system header.  Functions return 0 or a
 * negative errno, never abort, and allocate nothing that outlives the call
 * except what they hand to the caller.
 */
#ifndef OPHOOK_SAFE_H
#define OPHOOK_SAFE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifdef OPHOOK_SAFE_STATIC
#define OPHOOK_SAFE_DEF static __attribute__((unused))
#else
#define OPHOOK_SAFE_DEF extern
#endif

/* A DNS name an OpenPanel domain can have: labels [A-Za-z0-9-] (IDN only as
 * punycode "xn--"), 1-63 bytes each, not starting or ending with '-', at
 * least two labels, total <= 253, no trailing dot.  On false, *why_r says
 * what is wrong (a static string). */
OPHOOK_SAFE_DEF bool ophook_name_valid_domain(const char *s,
					      const char **why_r);
/* An OpenPanel user (context) name: [a-z0-9_][a-z0-9_.-]{0,63}, no "..".
 * On false, *why_r says what is wrong (a static string). */
OPHOOK_SAFE_DEF bool ophook_name_valid_user(const char *s, const char **why_r);

/* mkdir -p with mode (follows symlinks: for root's own folders; below a
 * folder others can write to use ophook_dir_open_under() with
 * OPHOOK_DIR_CREATE); 0 or -errno. */
OPHOOK_SAFE_DEF int ophook_mkdir_p(const char *path, mode_t mode);
/* Write data to path atomically (temp file in the same folder, fsync,
 * rename).  mode is used for a new file; an existing file's mode and owner
 * are kept.  A symlink at path is replaced, never written through, but
 * symlinks in its folders are followed: for folders only root can write
 * to; elsewhere use ophook_dir_open_under() + ophook_file_write_atomic_at().
 * 0 or -errno. */
OPHOOK_SAFE_DEF int ophook_file_write_atomic(const char *path,
					     const void *data, size_t len,
					     mode_t mode);
/* Read a whole regular file without following a symlink in the last
 * component (O_NOFOLLOW), at most max bytes (-EFBIG beyond).  *data_r is
 * NUL-terminated and owned by the caller (free()).  0 or -errno. */
OPHOOK_SAFE_DEF int ophook_file_read_nofollow(const char *path, size_t max,
					      char **data_r, size_t *len_r);

/* --- working inside folders a customer may write to ---------------------
 *
 * A path is only as safe as its least trusted folder: when any folder on
 * it can be written by someone else (a customer's stats or log folder),
 * that one can swap a component for a symlink between a check and a use
 * and have root write anywhere.  So: open the folder once, walking each
 * component with O_DIRECTORY|O_NOFOLLOW, and do everything through that
 * descriptor (openat, renameat, unlinkat) with new files O_EXCL. */

/* ophook_dir_open_at() / ophook_dir_open_under() flags. */
#define OPHOOK_DIR_CREATE 1u /* make missing components (mkdirat, mode) */

/* Open the folder rel below the open folder dirfd (AT_FDCWD: the current
 * folder) one component at a time, each with openat(O_DIRECTORY |
 * O_NOFOLLOW): a symlink as any component is refused (-ELOOP), as is a
 * component that is not a folder (-ENOTDIR).  rel is relative: names
 * separated by '/', no "." or ".." (-EINVAL); "" opens dirfd itself.
 * With OPHOOK_DIR_CREATE, a missing component is made with mkdirat(mode)
 * and then opened the same way (a symlink swapped in is still refused).
 * *fd_r: O_RDONLY | O_DIRECTORY | O_CLOEXEC, the caller closes it.  On
 * failure *bad_len_r (when not NULL) is the length of the prefix of rel
 * that ends with the component that failed (for "%.*s"). 0 or -errno. */
OPHOOK_SAFE_DEF int ophook_dir_open_at(int dirfd, const char *rel,
				       unsigned flags, mode_t mode, int *fd_r,
				       size_t *bad_len_r);
/* The folder base/rel: base is opened as given (the admin's setting:
 * symlinks in it are followed; with OPHOOK_DIR_CREATE it is made with
 * ophook_mkdir_p()), then rel as ophook_dir_open_at().  On failure
 * *bad_len_r is 0 when base itself failed, else as above (prefix of
 * rel). 0 or -errno. */
OPHOOK_SAFE_DEF int ophook_dir_open_under(const char *base, const char *rel,
					  unsigned flags, mode_t mode,
					  int *fd_r, size_t *bad_len_r);
/* Write data to name in the open folder dirfd atomically: a new temp file
 * (".ophook-tmp-<random>", openat O_CREAT | O_EXCL | O_NOFOLLOW), written,
 * fsync'd, then renameat() over name (a symlink there is replaced, never
 * followed).  name is one file name (no '/', not "." or "..": -EINVAL).
 * An existing regular file's mode and owner are kept; else mode, and
 * uid/gid unless (uid_t)-1 / (gid_t)-1.  0 or -errno (the temp file is
 * gone then). */
OPHOOK_SAFE_DEF int ophook_file_write_atomic_at(int dirfd, const char *name,
						const void *data, size_t len,
						mode_t mode, uid_t uid,
						gid_t gid);
/* The same with the content read from src_fd (from its offset to EOF, at
 * most max bytes: -EFBIG beyond). */
OPHOOK_SAFE_DEF int ophook_file_copy_atomic_at(int dirfd, const char *name,
					       int src_fd, size_t max,
					       mode_t mode, uid_t uid,
					       gid_t gid);
/* Open name in the open folder dirfd for reading: O_NOFOLLOW, a regular
 * file only (-EINVAL otherwise; opened O_NONBLOCK so a FIFO never blocks,
 * then set back to blocking).  With nlink1, a file with more than one
 * hard link is refused too (-EMLINK: a link to a file the caller may not
 * mean to read).  *fd_r is O_CLOEXEC.  0 or -errno. */
OPHOOK_SAFE_DEF int ophook_file_open_at(int dirfd, const char *name,
					bool nlink1, int *fd_r);
/* ophook_file_read_nofollow() for name in the open folder dirfd. */
OPHOOK_SAFE_DEF int ophook_file_read_at(int dirfd, const char *name,
					size_t max, char **data_r,
					size_t *len_r);

#ifdef __cplusplus
}
#endif
#endif /* OPHOOK_SAFE_H */

#if defined(OPHOOK_SAFE_IMPLEMENTATION) && !defined(OPHOOK_SAFE_IMPLEMENTED)
#define OPHOOK_SAFE_IMPLEMENTED

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

OPHOOK_SAFE_DEF bool ophook_name_valid_domain(const char *s,
					      const char **why_r)
{
	size_t len = strlen(s), label = 0, labels = 1;

	if (len == 0) {
		*why_r = "empty domain name";
		return false;
	}
	if (len > 253) {
		*why_r = "domain name longer than 253 bytes";
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0) {
				*why_r = "empty label in domain name";
				return false;
			}
			if (s[i - 1] == '-') {
				*why_r = "label ends with '-'";
				return false;
			}
			label = 0;
			labels++;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-')) {
			*why_r = "character not allowed in a domain name "
				 "(only letters, digits, '-' and '.')";
			return false;
		}
		if (c == '-' && label == 0) {
			*why_r = "label starts with '-'";
			return false;
		}
		if (++label > 63) {
			*why_r = "label longer than 63 bytes";
			return false;
		}
	}
	if (label == 0) {
		*why_r = "domain name ends with '.'";
		return false;
	}
	if (s[len - 1] == '-') {
		*why_r = "label ends with '-'";
		return false;
	}
	if (labels < 2) {
		*why_r = "domain name needs at least two labels";
		return false;
	}
	return true;
}

OPHOOK_SAFE_DEF bool ophook_name_valid_user(const char *s, const char **why_r)
{
	size_t len = strlen(s);

	if (len == 0 || len > 64) {
		*why_r = "user name must be 1 to 64 bytes";
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			  (c >= '0' && c <= '9') || c == '_' ||
			  (i > 0 && (c == '.' || c == '-'));

		if (!ok) {
			*why_r = "character not allowed in a user name";
			return false;
		}
	}
	if (strstr(s, "..") != NULL) {
		*why_r = "'..' not allowed in a user name";
		return false;
	}
	return true;
}

OPHOOK_SAFE_DEF int ophook_mkdir_p(const char *path, mode_t mode)
{
	size_t n = strlen(path);
	char *p = (char *)malloc(n + 1);
	int ret = 0;

	if (p == NULL)
		return -ENOMEM;
	memcpy(p, path, n + 1);
	for (char *q = p + 1; *q != '\0'; q++) {
		if (*q != '/')
			continue;
		*q = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST) {
			ret = -errno;
			goto out;
		}
		*q = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		ret = -errno;
out:
	free(p);
	return ret;
}

/* Read all of fd (a regular file, checked) into *data_r; closes fd. */
static __attribute__((unused)) int ophook_safe_read_fd(int fd, size_t max, char **data_r,
			       size_t *len_r)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int ret = 0;

	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		ret = -EFBIG;
		goto out;
	}
	cap = (size_t)st.st_size + 1;
	buf = (char *)malloc(cap);
	if (buf == NULL) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			char *nbuf;

			if (cap > max + 1) {
				ret = -EFBIG;
				goto out;
			}
			cap = cap * 2 + 4096;
			nbuf = (char *)realloc(buf, cap);
			if (nbuf == NULL) {
				ret = -ENOMEM;
				goto out;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > max) {
			ret = -EFBIG;
			goto out;
		}
	}
	buf[len] = '\0';
	*data_r = buf;
	*len_r = len;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return ret;
}

OPHOOK_SAFE_DEF int ophook_file_read_nofollow(const char *path, size_t max,
					      char **data_r, size_t *len_r)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	return ophook_safe_read_fd(fd, max, data_r, len_r);
}

/* Is name one plain file name (not empty, no '/', not "." or "..")? */
static __attribute__((unused)) bool ophook_safe_name_ok(const char *name)
{
	return name[0] != '\0' && strchr(name, '/') == NULL &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

OPHOOK_SAFE_DEF int ophook_dir_open_at(int dirfd, const char *rel,
				       unsigned flags, mode_t mode, int *fd_r,
				       size_t *bad_len_r)
{
	const int oflags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	const char *p = rel;
	char name[256];
	int fd, ret = 0;

	if (bad_len_r != NULL)
		*bad_len_r = 0;
	*fd_r = -1;
	if (rel[0] == '/')
		return -EINVAL;
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (*p != '\0') {
		size_t n = strcspn(p, "/");
		int nfd;

		if (n == 0) { /* "a//b", "a/" */
			p++;
			continue;
		}
		if (bad_len_r != NULL)
			*bad_len_r = (size_t)(p - rel) + n;
		if (n >= sizeof(name)) {
			ret = -ENAMETOOLONG;
			break;
		}
		memcpy(name, p, n);
		name[n] = '\0';
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
			ret = -EINVAL;
			break;
		}
		nfd = openat(fd, name, oflags);
		if (nfd < 0 && errno == ENOENT && (flags & OPHOOK_DIR_CREATE)) {
			if (mkdirat(fd, name, mode) < 0 && errno != EEXIST) {
				ret = -errno;
				break;
			}
			nfd = openat(fd, name, oflags);
		}
		if (nfd < 0) {
			/* O_NOFOLLOW on a symlink gives ELOOP, or ENOTDIR
			 * with O_DIRECTORY on some kernels: say which */
			struct stat st;

			ret = -errno;
			if (ret == -ENOTDIR &&
			    fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    S_ISLNK(st.st_mode))
				ret = -ELOOP;
			break;
		}
		close(fd);
		fd = nfd;
		p += n;
	}
	if (ret < 0) {
		close(fd);
		return ret;
	}
	*fd_r = fd;
	return 0;
}

OPHOOK_SAFE_DEF int ophook_dir_open_under(const char *base, const char *rel,
					  unsigned flags, mode_t mode,
					  int *fd_r, size_t *bad_len_r)
{
	int bfd, ret;

	if (bad_len_r != NULL)
		*bad_len_r = 0;
	*fd_r = -1;
	bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (bfd < 0 && errno == ENOENT && (flags & OPHOOK_DIR_CREATE)) {
		if ((ret = ophook_mkdir_p(base, mode)) < 0)
			return ret;
		bfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	if (bfd < 0)
		return -errno;
	ret = ophook_dir_open_at(bfd, rel, flags, mode, fd_r, bad_len_r);
	close(bfd);
	return ret;
}

/* A fresh temp name ".ophook-tmp-<16 hex>" in buf (32 bytes). */
static __attribute__((unused)) void ophook_safe_tmp_name(char *buf, size_t size)
{
	static unsigned long counter;
	unsigned long long r = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd < 0 || read(fd, &r, sizeof(r)) != (ssize_t)sizeof(r))
		r = 0;
	if (fd >= 0)
		close(fd);
	r ^= ((unsigned long long)getpid() << 32) ^
	     (unsigned long long)time(NULL) ^
	     __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15ull;
	snprintf(buf, size, ".ophook-tmp-%016llx", r);
}

/* Write data (or, with src_fd >= 0, src_fd's content up to max) to dirfd
 * name atomically. */
static __attribute__((unused)) int ophook_safe_write_at(int dirfd, const char *name, const void *data,
				size_t len, int src_fd, size_t max,
				mode_t mode, uid_t uid, gid_t gid)
{
	char tmp[32], buf[16384];
	struct stat st;
	bool have_st;
	const char *p = (const char *)data;
	size_t total = 0;
	int fd = -1, ret = 0;

	if (!ophook_safe_name_ok(name))
		return -EINVAL;
	have_st = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		  S_ISREG(st.st_mode);
	for (int i = 0; i < 100 && fd < 0; i++) {
		ophook_safe_tmp_name(tmp, sizeof(tmp));
		fd = openat(dirfd, tmp,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			    0600);
		if (fd < 0 && errno != EEXIST)
			return -errno;
	}
	if (fd < 0)
		return -EEXIST;
	for (;;) {
		ssize_t n;

		if (src_fd >= 0 && len == 0) {
			n = read(src_fd, buf, sizeof(buf));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				ret = -errno;
				goto fail;
			}
			if (n == 0)
				break;
			total += (size_t)n;
			if (total > max) {
				ret = -EFBIG;
				goto fail;
			}
			p = buf;
			len = (size_t)n;
		} else if (len == 0) {
			break;
		}
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto fail;
		}
		p += n;
		len -= (size_t)n;
	}
	if (fchmod(fd, have_st ? (st.st_mode & 07777) : mode) < 0) {
		ret = -errno;
		goto fail;
	}
	if (have_st) {
		uid = st.st_uid;
		gid = st.st_gid;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && fchown(fd, uid, gid) < 0 &&
	    errno != EPERM) {
		ret = -errno;
		goto fail;
	}
	if (fsync(fd) < 0) {
		ret = -errno;
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		ret = -errno;
		goto fail;
	}
	fd = -1;
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		ret = -errno;
		goto fail;
	}
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(dirfd, tmp, 0);
	return ret;
}

/* The path form: the folder opened by path (its symlinks followed, as
 * documented), then the same temp file, fsync and renameat. */
OPHOOK_SAFE_DEF int ophook_file_write_atomic(const char *path,
					     const void *data, size_t len,
					     mode_t mode)
{
	const char *slash = strrchr(path, '/');
	size_t dlen;
	char *dir;
	int dfd, ret;

	if (slash == NULL)
		return ophook_safe_write_at(AT_FDCWD, path, data, len, -1, 0,
					    mode, (uid_t)-1, (gid_t)-1);
	dlen = slash == path ? 1 : (size_t)(slash - path);
	dir = (char *)malloc(dlen + 1);
	if (dir == NULL)
		return -ENOMEM;
	memcpy(dir, path, dlen);
	dir[dlen] = '\0';
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ret = dfd < 0 ? -errno : 0;
	free(dir);
	if (ret < 0)
		return ret;
	ret = ophook_safe_write_at(dfd, slash + 1, data, len, -1, 0, mode,
				   (uid_t)-1, (gid_t)-1);
	close(dfd);
	return ret;
}

OPHOOK_SAFE_DEF int ophook_file_write_atomic_at(int dirfd, const char *name,
						const void *data, size_t len,
						mode_t mode, uid_t uid,
						gid_t gid)
{
	return ophook_safe_write_at(dirfd, name, data, len, -1, 0, mode, uid,
				    gid);
}

OPHOOK_SAFE_DEF int ophook_file_copy_atomic_at(int dirfd, const char *name,
					       int src_fd, size_t max,
					       mode_t mode, uid_t uid,
					       gid_t gid)
{
	if (src_fd < 0)
		return -EBADF;
	return ophook_safe_write_at(dirfd, name, NULL, 0, src_fd, max, mode,
				    uid, gid);
}

OPHOOK_SAFE_DEF int ophook_file_open_at(int dirfd, const char *name,
					bool nlink1, int *fd_r)
{
	struct stat st;
	int fd, fl;

	*fd_r = -1;
	if (!ophook_safe_name_ok(name))
		return -EINVAL;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (nlink1 && st.st_nlink > 1)) {
		int ret = fstat(fd, &st) < 0	 ? -errno
			  : !S_ISREG(st.st_mode) ? -EINVAL
						 : -EMLINK;

		close(fd);
		return ret;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	*fd_r = fd;
	return 0;
}

OPHOOK_SAFE_DEF int ophook_file_read_at(int dirfd, const char *name,
					size_t max, char **data_r,
					size_t *len_r)
{
	int fd;

	if (!ophook_safe_name_ok(name))
		return -EINVAL;
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	return ophook_safe_read_fd(fd, max, data_r, len_r);
}

#endif /* OPHOOK_SAFE_IMPLEMENTATION */
