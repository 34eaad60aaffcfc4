#define _GNU_SOURCE
#include "plugerr.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char plug_errbuf[1024];

int plug_fail(const char **error_r, int ret, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(plug_errbuf, sizeof(plug_errbuf), fmt, ap);
	va_end(ap);
	*error_r = plug_errbuf;
	return ret;
}

char *plug_fmt(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}
