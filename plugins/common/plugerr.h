/* Error messages and formatting shared by the plugins. */
#ifndef OPHOOK_PLUGERR_H
#define OPHOOK_PLUGERR_H

/* Format a message into a thread-local buffer, point *error_r at it (valid
 * until the next call on this thread, as the plugin ABI asks) and return
 * ret. */
int plug_fail(const char **error_r, int ret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* asprintf returning the string, or NULL on ENOMEM. */
char *plug_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
