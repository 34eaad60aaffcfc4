/* skeleton: a complete example ophook plugin, built out of tree:
 *
 *   cc -shared -fPIC $(pkg-config --cflags ophook-plugin) -o skeleton.so skeleton.c
 *
 * It counts the domain events it sees, writes one line per event to
 * settings.path (optional), and asks for a coalesced "summary" action that
 * logs how many events arrived in the last window.  Domain names are checked
 * with <ophook/safe.h>, the daemon's own checks, defined in this file. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ophook/plugin.h>
/* One .c file of a plugin defines the helpers; STATIC keeps them local. */
#define OPHOOK_SAFE_IMPLEMENTATION
#define OPHOOK_SAFE_STATIC
#include <ophook/safe.h>

struct skeleton {
	const struct ophook_host *host;
	struct ophook_ctx *ctx;
	pthread_mutex_t lock;
	unsigned long seen, since_summary;
	FILE *out;
};

static void skeleton_summary(struct ophook_ctx *ctx, void *data)
{
	struct skeleton *sk = data;
	unsigned long n;

	pthread_mutex_lock(&sk->lock);
	n = sk->since_summary;
	sk->since_summary = 0;
	pthread_mutex_unlock(&sk->lock);
	sk->host->log(ctx, OPHOOK_LOG_INFO, "%lu domain events in the last window", n);
}

static int skeleton_init(struct ophook_ctx *ctx, const struct ophook_host *host,
			 void **data_r, const char **error_r)
{
	const char *path = host->setting(ctx, "path");
	struct skeleton *sk = calloc(1, sizeof(*sk));

	if (sk == NULL)
		return -ENOMEM;
	sk->host = host;
	sk->ctx = ctx;
	pthread_mutex_init(&sk->lock, NULL);
	if (path != NULL) {
		sk->out = fopen(path, "ae");
		if (sk->out == NULL) {
			int ret = -errno;

			*error_r = "cannot open settings.path";
			pthread_mutex_destroy(&sk->lock);
			free(sk);
			return ret;
		}
	}
	host->log(ctx, OPHOOK_LOG_INFO, "skeleton ready (host %s, ABI %u)",
		  host->version, host->abi);
	*data_r = sk;
	return 0;
}

static void skeleton_fini(void *data)
{
	struct skeleton *sk = data;

	if (sk->out != NULL)
		fclose(sk->out);
	pthread_mutex_destroy(&sk->lock);
	free(sk);
}

static int skeleton_on_event(void *data, const struct ophook_event *ev,
			     const char **error_r)
{
	struct skeleton *sk = data;
	const char *domain = sk->host->event_get(ev, "domain");
	const char *why;

	if (domain != NULL && !ophook_name_valid_domain(domain, &why)) {
		*error_r = why; /* a static string */
		return -EINVAL;
	}
	pthread_mutex_lock(&sk->lock);
	sk->seen++;
	sk->since_summary++;
	if (sk->out != NULL) {
		fprintf(sk->out, "%lld %s %s\n", (long long)ev->id, ev->type,
			domain != NULL ? domain : "-");
		fflush(sk->out);
	}
	pthread_mutex_unlock(&sk->lock);
	sk->host->request_action(sk->ctx, "summary", 1000, skeleton_summary, sk);
	return 0;
}

const struct ophook_plugin ophook_plugin = {
	OPHOOK_PLUGIN_HEADER("skeleton"),
	.description = "example plugin: counts domain events",
	.subscriptions = (const char *const[]){ "domain.*", NULL },
	.init = skeleton_init,
	.fini = skeleton_fini,
	.on_event = skeleton_on_event,
};
