/* Levelled logging: to stderr, each line with the local time (RFC 3339,
 * milliseconds) and the level; or to syslog (config `log: syslog`). */
#ifndef OPHOOK_LOG_H
#define OPHOOK_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_DEBUG_L = 0, LOG_INFO_L, LOG_WARN_L, LOG_ERROR_L };

/* Set the lowest level printed. */
void log_set_level(enum log_level level);
/* Where lines go: "stderr" (the default) or "syslog" (openlog("ophookd",
 * LOG_PID, LOG_DAEMON), levels mapped to LOG_DEBUG, LOG_INFO, LOG_WARNING,
 * LOG_ERR).  0, or -EINVAL with *error_r (static). */
int log_set_target(const char *name, const char **error_r);
/* Parse "debug|info|warn|error"; returns 0 or -EINVAL. */
int log_level_parse(const char *s, enum log_level *level_r);
/* Copy len bytes of src into dst (size bytes, always NUL-terminated) with
 * control characters, DEL, C1 controls and bytes that are not valid UTF-8
 * written as \xNN; stops before a character that would not fit.  Returns
 * the length written.  For anything taken from a file name or file
 * content. */
size_t log_escape(char *dst, size_t size, const void *src, size_t len);
/* Print one line "TIME LEVEL: [who: ]message" to stderr (TIME:
 * 2026-01-31T13:05:09.123+01:00), or "[who: ]message" to syslog at the
 * level's priority; thread-safe.  The
 * whole line goes through log_escape (names and file text may be in it). */
void log_msg(enum log_level level, const char *who, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_msgv(enum log_level level, const char *who, const char *fmt,
	      va_list ap);

#define log_debug(...) log_msg(LOG_DEBUG_L, NULL, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO_L, NULL, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN_L, NULL, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR_L, NULL, __VA_ARGS__)

#endif
