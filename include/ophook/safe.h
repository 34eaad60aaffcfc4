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

/* mkdir -p with mode; 0 or -errno. */
OPHOOK_SAFE_DEF int ophook_mkdir_p(const char *path, mode_t mode);
/* Write data to path atomically (temp file in the same folder, fsync,
 * rename).  mode is used for a new file; an existing file's mode and owner
 * are kept.  0 or -errno. */
OPHOOK_SAFE_DEF int ophook_file_write_atomic(const char *path,
					     const void *data, size_t len,
					     mode_t mode);
/* Read a whole regular file without following a symlink in the last
 * component (O_NOFOLLOW), at most max bytes (-EFBIG beyond).  *data_r is
 * NUL-terminated and owned by the caller (free()).  0 or -errno. */
OPHOOK_SAFE_DEF int ophook_file_read_nofollow(const char *path, size_t max,
					      char **data_r, size_t *len_r);

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

OPHOOK_SAFE_DEF int ophook_file_write_atomic(const char *path,
					     const void *data, size_t len,
					     mode_t mode)
{
	static const char suffix[] = ".ophook-tmp.XXXXXX";
	size_t plen = strlen(path);
	char *tmp = (char *)malloc(plen + sizeof(suffix));
	struct stat st;
	bool have_st = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	const char *p = (const char *)data;
	int fd, ret = 0;

	if (tmp == NULL)
		return -ENOMEM;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, suffix, sizeof(suffix));
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = -errno;
		free(tmp);
		return ret;
	}
	while (len > 0) {
		ssize_t n = write(fd, p, len);

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
	if (have_st && fchown(fd, st.st_uid, st.st_gid) < 0 && errno != EPERM) {
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
	if (rename(tmp, path) < 0) {
		ret = -errno;
		goto fail;
	}
	free(tmp);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return ret;
}

OPHOOK_SAFE_DEF int ophook_file_read_nofollow(const char *path, size_t max,
					      char **data_r, size_t *len_r)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd, ret = 0;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
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

#endif /* OPHOOK_SAFE_IMPLEMENTATION */
