/* log: one JSON line per delivered event, to the file in settings.path.
 * The audit trail admins want, and what the tests read. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ophook/plugin.h"

struct log_plugin {
	const struct ophook_host *host;
	struct ophook_ctx *ctx;
	pthread_mutex_t lock;
	int fd;
	char *path;
	bool fsync_each;
};

/* plugins.log.settings (README); the host checks them. */
static const struct ophook_setting_decl log_settings[] = {
	{ .name = "path", .type = OPHOOK_SETTING_PATH,
	  .def = "${paths.log}/ophookd/events.log",
	  .description = "the file the lines are appended to" },
	{ .name = "fsync", .type = OPHOOK_SETTING_BOOL, .def = "false",
	  .description = "fdatasync after each line" },
};

/* Open path for appending; its folder (the default's ophookd/ under
 * paths.log) is made when missing, one level only. */
static int log_open(const char *path)
{
	int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
	int fd = open(path, flags, 0640);
	char *dir, *slash;

	if (fd >= 0 || errno != ENOENT || (dir = strdup(path)) == NULL)
		return fd;
	slash = strrchr(dir, '/');
	if (slash != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0750) == 0 || errno == EEXIST)
			fd = open(path, flags, 0640);
		else
			errno = ENOENT;
	}
	free(dir);
	return fd;
}

static int log_init(struct ophook_ctx *ctx, const struct ophook_host *host,
		    void **data_r, const char **error_r)
{
	struct log_plugin *lp;
	const char *path;
	int ret;

	if (!OPHOOK_HOST_HAS(host, setting_is_set)) {
		*error_r = "the host is too old (no settings_declare)";
		return -ENOTSUP;
	}
	ret = host->settings_declare(ctx, log_settings,
				     sizeof(log_settings) /
					     sizeof(log_settings[0]),
				     error_r);
	if (ret != 0)
		return ret; /* a bad setting, or a check-only load */
	path = host->setting_str(ctx, "path");
	lp = calloc(1, sizeof(*lp));
	if (lp == NULL)
		return -ENOMEM;
	lp->path = strdup(path);
	if (lp->path == NULL) {
		free(lp);
		return -ENOMEM;
	}
	lp->fd = log_open(path);
	if (lp->fd < 0) {
		ret = -errno;
		*error_r = "cannot open settings.path for appending";
		host->log(ctx, OPHOOK_LOG_ERROR, "%s: %s", path,
			  strerror(errno));
		free(lp->path);
		free(lp);
		return ret;
	}
	lp->fsync_each = host->setting_bool(ctx, "fsync");
	lp->host = host;
	lp->ctx = ctx;
	pthread_mutex_init(&lp->lock, NULL);
	*data_r = lp;
	return 0;
}

static void log_fini(void *data)
{
	struct log_plugin *lp = data;

	close(lp->fd);
	pthread_mutex_destroy(&lp->lock);
	free(lp->path);
	free(lp);
}

static int log_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int log_on_event(void *data, const struct ophook_event *ev,
			const char **error_r)
{
	struct log_plugin *lp = data;
	size_t len = strlen(ev->json);
	char *line = malloc(len + 2);
	int ret;

	if (line == NULL)
		return -ENOMEM;
	memcpy(line, ev->json, len);
	line[len] = '\n';
	/* one write per line under the lock: lines never interleave */
	pthread_mutex_lock(&lp->lock);
	ret = log_write_all(lp->fd, line, len + 1);
	if (ret == 0 && lp->fsync_each && fdatasync(lp->fd) < 0)
		ret = -errno;
	pthread_mutex_unlock(&lp->lock);
	free(line);
	if (ret < 0)
		*error_r = strerror(-ret);
	return ret;
}

const struct ophook_plugin ophook_plugin = {
	OPHOOK_PLUGIN_HEADER("log"),
	.description = "one JSON line per delivered event (audit trail)",
	.flags = OPHOOK_PLUGIN_DECLARES_SETTINGS,
	.init = log_init,
	.fini = log_fini,
	.on_event = log_on_event,
};
