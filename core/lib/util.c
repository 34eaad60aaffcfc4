#define _GNU_SOURCE
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void oom(size_t n)
{
	fprintf(stderr, "error: out of memory allocating %zu bytes\n", n);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		oom(n);
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		oom(n * size);
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (p == NULL)
		oom(n);
	return p;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		oom(strlen(s));
	return p;
}

char *xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		oom(n);
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(strlen(fmt));
	return s;
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t mono_ms(void)
{
	return mono_ns() / 1000000;
}

void time_format_ms(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

bool name_valid_domain(const char *s, const char **why_r)
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

bool name_valid_user(const char *s, const char **why_r)
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

int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int ret = 0;

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

int file_write_atomic(const char *path, const void *data, size_t len,
		      mode_t mode)
{
	char *tmp = xasprintf("%s.ophook-tmp.XXXXXX", path);
	struct stat st;
	bool have_st = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
	const char *p = data;
	int fd, ret = 0;

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

int file_read_nofollow(const char *path, size_t max, char **data_r,
		       size_t *len_r)
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
	buf = xmalloc(cap);
	for (;;) {
		ssize_t n;

		if (len + 1 >= cap) {
			if (cap > max + 1) {
				ret = -EFBIG;
				goto out;
			}
			cap = cap * 2 + 4096;
			buf = xrealloc(buf, cap);
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

bool pattern_match(const char *pat, const char *s)
{
	const char *star = NULL, *ss = s;

	while (*s != '\0') {
		if (*pat == '*') {
			star = pat++;
			ss = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star != NULL) {
			pat = star + 1;
			s = ++ss;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}
