#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level log_min = LOG_INFO_L;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const log_names[] = { "debug", "info", "warn", "error" };

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

void log_msgv(enum log_level level, const char *who, const char *fmt,
	      va_list ap)
{
	char buf[4096];

	if (level < log_min)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	pthread_mutex_lock(&log_lock);
	if (who != NULL)
		fprintf(stderr, "%s: %s: %s\n", log_names[level], who, buf);
	else
		fprintf(stderr, "%s: %s\n", log_names[level], buf);
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *who, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_msgv(level, who, fmt, ap);
	va_end(ap);
}
