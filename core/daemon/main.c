/* ophookd: the daemon. */
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "ophook/plugin.h"
#include "pluginhost.h"
#include "util.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>
#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

struct main_state {
	struct daemon *daemon;
	uv_signal_t sigterm, sigint, sighup;
	uv_timer_t watchdog;
	bool watchdog_on;
	bool stopping;
};

/* systemd: READY=1 once started, WATCHDOG=1 from the loop thread (a stuck
 * loop stops the keep-alives and systemd restarts us). */
static void main_watchdog_cb(uv_timer_t *t)
{
	(void)t;
#ifdef HAVE_SYSTEMD
	sd_notify(0, "WATCHDOG=1");
#endif
}

static void main_notify_ready(struct main_state *st, uv_loop_t *loop)
{
#ifdef HAVE_SYSTEMD
	uint64_t usec = 0;

	sd_notifyf(0, "READY=1\nSTATUS=watching, pid %d", (int)getpid());
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		uv_timer_init(loop, &st->watchdog);
		uv_timer_start(&st->watchdog, main_watchdog_cb,
			       usec / 2000, usec / 2000);
		st->watchdog_on = true;
	}
#else
	(void)st;
	(void)loop;
#endif
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: ophookd [-c FILE] [-f] [--check-config] [--version]\n"
		"  -c, --config FILE   config file (default %s)\n"
		"  -f, --foreground    stay in the foreground (logs to stderr)\n"
		"      --check-config  check the config file and exit\n"
		"  -V, --version       print the version and exit\n",
		CONFIG_DEFAULT_PATH);
}

static void main_closed(uv_handle_t *h)
{
	(void)h;
}

static void main_stopped(void *ctx)
{
	struct main_state *st = ctx;

	uv_close((uv_handle_t *)&st->sigterm, main_closed);
	uv_close((uv_handle_t *)&st->sigint, main_closed);
	uv_close((uv_handle_t *)&st->sighup, main_closed);
	if (st->watchdog_on)
		uv_close((uv_handle_t *)&st->watchdog, main_closed);
}

/* daemon_stop's callback after a failed start: nothing more to close. */
static void main_start_failed(void *ctx)
{
	(void)ctx;
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
	struct main_state *st = s->data;

	if (st->stopping) {
		log_warn("second %s: exiting now", strsignal(signum));
		exit(1);
	}
	st->stopping = true;
	log_info("%s received", strsignal(signum));
#ifdef HAVE_SYSTEMD
	sd_notify(0, "STOPPING=1");
#endif
	daemon_stop(st->daemon, main_stopped, st);
}

static void on_hup(uv_signal_t *s, int signum)
{
	struct main_state *st = s->data;
	const char *err = NULL;

	(void)signum;
#ifdef HAVE_SYSTEMD
	sd_notify(0, "RELOADING=1");
#endif
	daemon_reload(st->daemon, &err);
#ifdef HAVE_SYSTEMD
	sd_notify(0, "READY=1");
#endif
}

/* Load and check the config (and, for --check-config, the plugins'
 * settings); print the error and return -errno on failure. */
static int check_config(const char *path, bool check_plugins,
			struct config **config_r)
{
	char *err = NULL;
	int ret;

	ret = config_load(path, config_r, &err);
	if (ret == 0)
		ret = config_check_paths(*config_r, &err);
	if (ret == 0 && check_plugins)
		ret = pluginhost_check_config(*config_r, &err);
	if (ret < 0) {
		fprintf(stderr, "%s\n", err != NULL ? err : strerror(-ret));
		free(err);
		config_free(config_r);
		return ret;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = CONFIG_DEFAULT_PATH, *err = NULL;
	bool only_check = false;
	struct config *config = NULL;
	struct main_state st = { 0 };
	enum log_level lvl;
	uv_loop_t loop;
	char threads[16];
	int c, ret;

	while ((c = getopt_long(argc, argv, "c:fVh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'f':
			break; /* always foreground: systemd supervises */
		case 'C':
			only_check = true;
			break;
		case 'V':
			printf("ophookd %s (plugin ABI %u)\n", OPHOOK_VERSION,
			       OPHOOK_ABI_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (check_config(path, only_check, &config) < 0)
		return 1;
	if (only_check) {
		printf("%s: ok\n", path);
		config_free(&config);
		return 0;
	}
	if (config->log_level != NULL &&
	    log_level_parse(config->log_level, &lvl) == 0)
		log_set_level(lvl);
	if (config->log != NULL &&
	    log_set_target(config->log, &err) < 0) {
		fprintf(stderr, "ophookd: %s\n", err);
		config_free(&config);
		return 1;
	}
	/* worker threads for plugins, hooks and actions */
	snprintf(threads, sizeof(threads), "%u",
		 config->dispatch.threads ? config->dispatch.threads : 8);
	setenv("UV_THREADPOOL_SIZE", threads, 0);
	signal(SIGPIPE, SIG_IGN);

	uv_loop_init(&loop);
	ret = daemon_new(&loop, config, &st.daemon, &err);
	if (ret < 0) {
		fprintf(stderr, "ophookd: %s\n", err);
		return 1;
	}
	ret = daemon_start(st.daemon, &err);
	if (ret < 0) {
		fprintf(stderr, "ophookd: %s\n", err);
		/* what did start stops as at SIGTERM, so that its handles and
		 * threads are gone before the loop closes */
		daemon_stop(st.daemon, main_start_failed, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		daemon_free(&st.daemon);
		(void)uv_loop_close(&loop);
		return 1;
	}
	uv_signal_init(&loop, &st.sigterm);
	uv_signal_init(&loop, &st.sigint);
	uv_signal_init(&loop, &st.sighup);
	st.sigterm.data = st.sigint.data = st.sighup.data = &st;
	uv_signal_start(&st.sigterm, on_stop_signal, SIGTERM);
	uv_signal_start(&st.sigint, on_stop_signal, SIGINT);
	uv_signal_start(&st.sighup, on_hup, SIGHUP);
	main_notify_ready(&st, &loop);
	uv_run(&loop, UV_RUN_DEFAULT);
	daemon_free(&st.daemon);
	ret = uv_loop_close(&loop);
	if (ret != 0)
		log_warn("loop closed with open handles: %s", uv_strerror(ret));
	return 0;
}
