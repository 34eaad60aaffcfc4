/* Test plugins for test_pluginhost, built three times with -D switches:
 * a good one, one with a wrong ABI version, one reusing the good name. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "ophook/plugin.h"

#ifndef TEST_ABI
#define TEST_ABI OPHOOK_ABI_VERSION
#endif
#ifndef TEST_NAME
#define TEST_NAME "testgood"
#endif

static struct ophook_ctx *tp_ctx;

static int tp_init(struct ophook_ctx *ctx, const struct ophook_host *host,
		   void **data_r, const char **error_r)
{
	const char *fail = host->setting(ctx, "fail");

	if (fail != NULL) {
		*error_r = fail;
		return -EINVAL;
	}
	tp_ctx = ctx;
	*data_r = (void *)host;
	return 0;
}

static void tp_fini(void *data)
{
	(void)data;
}

#if !defined(__SANITIZE_ADDRESS__)
/* Recursion that overflows the thread's stack (not a tail call: the
 * frame is used after the call; small frames, so that one lands in the
 * guard page rather than past it). */
static unsigned tp_deep(volatile char *prev, unsigned n)
{
	volatile char buf[256];

	if (n > (1u << 30))
		return 0; /* never: the stack ends long before */
	buf[0] = (char)n;
	buf[1] = prev != NULL ? prev[0] : 0;
	return tp_deep(buf, n + 1) + (unsigned)buf[1];
}
#endif

static int tp_on_event(void *data, const struct ophook_event *ev,
		       const char **error_r)
{
	const struct ophook_host *host = data;
	const char *v = host->event_get(ev, "fail");
	const char *flag = host->setting(tp_ctx, "fail_if_exists");

	/* an event with a "crash" field kills the whole daemon (reliability
	 * tests: such an event must go dead, not crash-loop) */
	if (host->event_get(ev, "crash") != NULL)
		abort();
	/* "overflow": the plugin overflows its stack (the fatal signal
	 * handler needs its own stack to say so); sanitizer builds catch
	 * the overflow themselves and exit, so they raise the signal */
	if (host->event_get(ev, "overflow") != NULL) {
#if defined(__SANITIZE_ADDRESS__)
		raise(SIGSEGV);
#else
		(void)tp_deep(NULL, 0);
#endif
	}
	/* settings.fail_if_exists: fail while that file exists */
	if (flag != NULL && access(flag, F_OK) == 0) {
		*error_r = "fail_if_exists file is present";
		return -EIO;
	}
	if (v != NULL) {
		*error_r = v;
		return -EIO;
	}
	return 0;
}

const struct ophook_plugin ophook_plugin = {
	.abi = TEST_ABI,
	.name = TEST_NAME,
	.description = "test plugin",
	.subscriptions = (const char *const[]){ "test.*", NULL },
	.init = tp_init,
	.fini = tp_fini,
	.on_event = tp_on_event,
};
