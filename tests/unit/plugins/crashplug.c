/* A plugin for the isolation tests: on test.segv it dereferences NULL, on
 * test.hang it never returns, on any other test.* event it appends
 * "build B event ID TYPE SUBJECT pid PID" to settings.out.  Built twice,
 * with CRASHPLUG_BUILD 1 and 2, for the reload test. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ophook/plugin.h"

#ifndef CRASHPLUG_BUILD
#define CRASHPLUG_BUILD 1
#endif

struct cp_data {
	const struct ophook_host *host;
	char out[512];
};

static struct cp_data cp_data;

static int cp_init(struct ophook_ctx *ctx, const struct ophook_host *host,
		   void **data_r, const char **error_r)
{
	const char *out = host->setting(ctx, "out");

	if (out == NULL || strlen(out) >= sizeof(cp_data.out)) {
		*error_r = "settings.out is required";
		return -EINVAL;
	}
	cp_data.host = host;
	strcpy(cp_data.out, out);
	*data_r = &cp_data;
	host->log(ctx, OPHOOK_LOG_INFO, "build %d ready", CRASHPLUG_BUILD);
	return 0;
}

static int cp_on_event(void *data, const struct ophook_event *ev,
		       const char **error_r)
{
	struct cp_data *d = data;
	FILE *f;

	/* a write through a null pointer, as a buggy plugin does; the
	 * sanitizer builds (CI) would catch the C-level null store itself
	 * and exit instead, so their build raises the same signal */
	if (strcmp(ev->type, "test.segv") == 0) {
#if defined(__SANITIZE_ADDRESS__)
		raise(SIGSEGV);
#else
		volatile int *nowhere = NULL;

		*nowhere = 42;
#endif
	}
	if (strcmp(ev->type, "test.hang") == 0) {
		for (;;)
			pause();
	}
	f = fopen(d->out, "a");
	if (f == NULL) {
		*error_r = "cannot open settings.out";
		return -EIO;
	}
	fprintf(f, "build %d event %lld %s %s pid %d\n", CRASHPLUG_BUILD,
		(long long)ev->id, ev->type, ev->subject, (int)getpid());
	fclose(f);
	return 0;
}

const struct ophook_plugin ophook_plugin = {
	OPHOOK_PLUGIN_HEADER("crashplug"),
	.description = "crashes, hangs or writes (isolation tests)",
	.subscriptions = (const char *const[]){ "test.*", NULL },
	.init = cp_init,
	.on_event = cp_on_event,
};
