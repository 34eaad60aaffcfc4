/* Small helpers shared by the core: allocation that aborts on failure,
 * time, name validation, safe file access. */
#ifndef OPHOOK_UTIL_H
#define OPHOOK_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <ophook/safe.h>

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

/* v in decimal into buf, NUL-terminated, without printf (hash keys made on
 * hot paths: inotify events, every row of a poll). */
#define INT64_STR_SIZE 21
void int64_format(int64_t v, char buf[INT64_STR_SIZE]);

/* Name checks and safe file access: <ophook/safe.h>, the same code the
 * plugins use.  The short names are kept for the core's call sites. */
#define name_valid_domain ophook_name_valid_domain
#define name_valid_user ophook_name_valid_user
#define mkdir_p ophook_mkdir_p
#define file_write_atomic ophook_file_write_atomic
#define file_read_nofollow ophook_file_read_nofollow

/* Shell-style glob match of an event type against a pattern where '*'
 * matches any run of characters ("domain.*", "*", "cert.issued"). */
bool pattern_match(const char *pattern, const char *type);

#endif
