#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <syslog.h>
#include <sys/time.h>
#include <time.h>

static enum log_level log_min = LOG_INFO_L;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const log_names[] = { "debug", "info", "warn", "error" };
static const int log_prios[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
static bool log_syslog; /* set before threads start, or under log_lock */

int log_set_target(const char *name, const char **error_r)
{
	bool to_syslog;

	if (strcmp(name, "stderr") == 0) {
		to_syslog = false;
	} else if (strcmp(name, "syslog") == 0) {
		to_syslog = true;
	} else {
		*error_r = "log: must be stderr or syslog";
		return -EINVAL;
	}
	pthread_mutex_lock(&log_lock);
	if (to_syslog && !log_syslog)
		openlog("ophookd", LOG_PID, LOG_DAEMON);
	else if (!to_syslog && log_syslog)
		closelog();
	log_syslog = to_syslog;
	pthread_mutex_unlock(&log_lock);
	return 0;
}

/* The local time as RFC 3339 with milliseconds: 2026-01-31T13:05:09.123+01:00 */
static void log_time(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char date[32];
	long off;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (localtime_r(&ts.tv_sec, &tm) == NULL) {
		snprintf(buf, size, "-");
		return;
	}
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	off = tm.tm_gmtoff / 60;
	if (off < 0)
		off = -off;
	snprintf(buf, size, "%.20s.%03d%c%02d:%02d", date,
		 (int)(ts.tv_nsec / 1000000), tm.tm_gmtoff < 0 ? '-' : '+',
		 (int)(off / 60 % 24), (int)(off % 60));
}

void log_set_level(enum log_level level)
{
	log_min = level;
}

int log_level_parse(const char *s, enum log_level *level_r)
{
	for (unsigned i = 0; i < 4; i++) {
		if (strcmp(s, log_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Length of the valid UTF-8 sequence at s (at most len bytes), 0 when the
 * bytes there are not one: overlong forms, surrogates and code points above
 * U+10FFFF are refused, as are the C1 controls U+0080..U+009F (a terminal
 * acts on them as on ESC). */
static size_t log_utf8_len(const unsigned char *s, size_t len)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (len < n)
		return 0;
	cp = s[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || cp < 0xa0)
		return 0;
	return n;
}

size_t log_escape(char *dst, size_t size, const void *src, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = src;
	size_t o = 0;

	if (size == 0)
		return 0;
	for (size_t i = 0; i < len;) {
		size_t n = 1;

		if (s[i] >= 0x80)
			n = log_utf8_len(s + i, len - i);
		if (n == 0 || s[i] < 0x20 || s[i] == 0x7f) {
			if (o + 4 >= size)
				break;
			dst[o++] = '\\';
			dst[o++] = 'x';
			dst[o++] = hex[s[i] >> 4];
			dst[o++] = hex[s[i] & 15];
			i++;
			continue;
		}
		if (o + n >= size)
			break;
		memcpy(dst + o, s + i, n);
		o += n;
		i += n;
	}
	dst[o] = '\0';
	return o;
}

void log_msgv(enum log_level level, const char *who, const char *fmt,
	      va_list ap)
{
	char buf[4096], who_buf[256];
	/* every byte may become \xNN */
	char out[4 * sizeof(buf)];
	int n;

	if (level < log_min)
		return;
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	if (n < 0)
		n = 0;
	else if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	/* one call, one line: names and file text reach the message
	 * unescaped, so the whole line is escaped here (a file name with a
	 * newline cannot forge a second line) */
	log_escape(out, sizeof(out), buf, (size_t)n);
	if (who != NULL)
		log_escape(who_buf, sizeof(who_buf), who, strlen(who));
	pthread_mutex_lock(&log_lock);
	if (log_syslog) {
		if (who != NULL)
			syslog(log_prios[level], "%s: %s", who_buf, out);
		else
			syslog(log_prios[level], "%s", out);
	} else {
		char now[48];

		log_time(now, sizeof(now));
		if (who != NULL)
			fprintf(stderr, "%s %s: %s: %s\n", now,
				log_names[level], who_buf, out);
		else
			fprintf(stderr, "%s %s: %s\n", now, log_names[level],
				out);
	}
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, who, fmt, ap);
	va_end(ap);
}
