/* Small helpers shared by the core: allocation that aborts on failure,
 * time, name validation, safe file access. */
#ifndef OPHOOK_UTIL_H
#define OPHOOK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Allocation for the core: abort with a message when memory is gone. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* asprintf that aborts on failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Wall clock in ms since the epoch. */
int64_t now_ms(void);
/* Monotonic clock in ms / ns. */
int64_t mono_ms(void);
int64_t mono_ns(void);
/* Format ms since epoch as RFC 3339 UTC with ms ("2026-01-02T03:04:05.678Z")
 * into buf (at least 32 bytes). */
void time_format_ms(int64_t ms, char *buf, size_t size);

/* A DNS name an OpenPanel domain can have: labels [A-Za-z0-9-] (IDN only as
 * punycode "xn--"), 1-63 bytes each, not starting or ending with '-', at
 * least two labels, total <= 253, no trailing dot.  On false, *why_r says
 * what is wrong. */
bool name_valid_domain(const char *s, const char **why_r);
/* An OpenPanel user (context) name: [a-z0-9_][a-z0-9_.-]{0,63}, no "..".
 * On false, *why_r says what is wrong. */
bool name_valid_user(const char *s, const char **why_r);

/* mkdir -p with mode; 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);
/* Write data to path atomically (temp file in the same folder, fsync,
 * rename).  mode is used for a new file; an existing file's mode and owner
 * are kept.  0 or -errno. */
int file_write_atomic(const char *path, const void *data, size_t len,
		      mode_t mode);
/* Read a whole regular file without following a symlink in the last
 * component (O_NOFOLLOW), at most max bytes (-EFBIG beyond).  *data_r is
 * NUL-terminated and owned by the caller.  0 or -errno. */
int file_read_nofollow(const char *path, size_t max, char **data_r,
		       size_t *len_r);

/* Shell-style glob match of an event type against a pattern where '*'
 * matches any run of characters ("domain.*", "*", "cert.issued"). */
bool pattern_match(const char *pattern, const char *type);

#endif
