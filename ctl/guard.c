/* ophookctl guard: install, remove and run opencli pre hooks that can
 * veto.  See guard.h for how a deny stops an opencli run. */
#define _GNU_SOURCE
#include "guard.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

/* Where OpenPanel 2.x looks for hooks (the wrapper's HOOKS_DIR) and keeps
 * the scripts (SCRIPTS_DIR), below --root. */
#define GUARD_HOOKS_DIR "/etc/openpanel/openpanel/hooks"
#define GUARD_SCRIPTS_DIR "/usr/local/opencli"
/* First lines of every hook the guard writes: remove and status touch
 * only files that carry it. */
#define GUARD_MARK "# ophook-guard 1"
/* most fail-open intent patterns a hook carries */
#define GUARD_FO_MAX 16

/* The one table: every opencli 2.x command.  Rows with an intent are
 * asked; rows without change nothing a hook should stop (lists, status,
 * logs, the 5-minute cron jobs). */
static const struct guard_cmd guard_table[] = {
	/* domains */
	{ "domains-add", { NULL }, "domain.add", { "domain", "user" } },
	{ "domains-delete", { NULL }, "domain.delete", { "domain" } },
	{ "domains-suspend", { NULL }, "domain.suspend", { "domain" } },
	{ "domains-unsuspend", { NULL }, "domain.unsuspend", { "domain" } },
	{ "domains-ssl", { NULL }, "domain.ssl", { "domain", "mode" } },
	{ "domains-dns", { NULL }, "domain.dns", { "action", "domain" } },
	{ "domains-dnssec", { NULL }, "domain.dnssec", { "domain" } },
	{ "domains-docroot", { NULL }, "domain.docroot", { "domain", "docroot" } },
	{ "domains-edit", { NULL }, "domain.edit", { "domain" } },
	{ "domains-hsts", { NULL }, "domain.hsts", { "domain", "mode" } },
	{ "domains-varnish", { NULL }, "domain.varnish", { "domain", "mode" } },
	{ "domains-update_ns", { NULL }, "dns.update_ns", { NULL } },
	{ "domains-all", { NULL }, NULL, { NULL } },
	{ "domains-user", { NULL }, NULL, { NULL } },
	{ "domains-whoowns", { NULL }, NULL, { NULL } },
	{ "domains-stats", { NULL }, NULL, { NULL } },
	{ "domain", { NULL }, NULL, { NULL } },
	/* users */
	{ "user-add", { NULL }, "user.add", { "user", "-", "email", "plan" } },
	{ "user-delete", { NULL }, "user.delete", { "user" } },
	{ "user-suspend", { NULL }, "user.suspend", { "user" } },
	{ "user-unsuspend", { NULL }, "user.unsuspend", { "user" } },
	{ "user-rename", { NULL }, "user.rename", { "user", "new_user" } },
	{ "user-change_plan", { NULL }, "user.change_plan", { "user", "plan" } },
	{ "user-email", { NULL }, "user.email", { "user", "email" } },
	{ "user-password", { NULL }, "user.password", { "user", "-" } },
	{ "user-2fa", { NULL }, "user.2fa", { "user", "mode" } },
	{ "user-ip", { NULL }, "user.ip", { "user", "ip" } },
	{ "user-block_ip", { NULL }, "user.block_ip", { "user" } },
	{ "user-transfer", { NULL }, "user.transfer", { "user" } },
	{ "user-restore", { NULL }, "user.restore", { "user" } },
	{ "user-backup", { NULL }, "user.backup", { "user" } },
	{ "user-varnish", { NULL }, "user.varnish", { "user", "mode" } },
	{ "user-login", { NULL }, "user.login", { "user" } },
	{ "user-check", { NULL }, NULL, { NULL } },
	{ "user-list", { NULL }, NULL, { NULL } },
	{ "user-loginlog", { NULL }, NULL, { NULL } },
	{ "user-quota", { NULL }, NULL, { NULL } },
	/* plans */
	{ "plan-create", { NULL }, "plan.create", { "plan" } },
	{ "plan-delete", { NULL }, "plan.delete", { "plan" } },
	{ "plan-edit", { NULL }, "plan.edit", { NULL } },
	{ "plan-apply", { NULL }, "plan.apply", { "plan" } },
	{ "plan-list", { NULL }, NULL, { NULL } },
	{ "plan-usage", { NULL }, NULL, { NULL } },
	/* mail (email-setup passes its words on to docker-mailserver) */
	{ "email-setup", { "email", "add" }, "mail.account.add", { "address", "-" } },
	{ "email-setup", { "email", "update" }, "mail.account.password", { "address", "-" } },
	{ "email-setup", { "email", "del" }, "mail.account.delete", { "address" } },
	{ "email-setup", { "email", "list" }, NULL, { NULL } },
	{ "email-setup", { "alias", "add" }, "mail.alias.add", { "alias", "target" } },
	{ "email-setup", { "alias", "del" }, "mail.alias.delete", { "alias", "target" } },
	{ "email-setup", { "alias", "list" }, NULL, { NULL } },
	{ "email-setup", { "quota", "set" }, "mail.quota.set", { "address", "quota" } },
	{ "email-setup", { "quota", "del" }, "mail.quota.delete", { "address" } },
	{ "email-setup", { NULL }, "mail.setup", { "action" } },
	{ "email-manage", { NULL }, "mail.manage", { "action" } },
	{ "email-server", { NULL }, "mail.server", { "action" } },
	{ "email-ratelimit", { NULL }, "mail.ratelimit", { "action" } },
	{ "email-quotas", { NULL }, NULL, { NULL } },
	{ "email-webmail", { NULL }, "mail.webmail", { "action" } },
	/* FTP */
	{ "ftp-add", { NULL }, "ftp.add", { "ftp_user", "-", "folder", "user" } },
	{ "ftp-delete", { NULL }, "ftp.delete", { "ftp_user", "user" } },
	{ "ftp-password", { NULL }, "ftp.password", { "ftp_user", "-", "user" } },
	{ "ftp-path", { NULL }, "ftp.path", { "ftp_user", "folder", "user" } },
	{ "ftp-connections", { NULL }, NULL, { NULL } },
	{ "ftp-list", { NULL }, NULL, { NULL } },
	{ "ftp-logs", { NULL }, NULL, { NULL } },
	{ "ftp-users", { NULL }, NULL, { NULL } },
	/* PHP, websites, files */
	{ "php-default", { NULL }, "php.default", { "user", "version" } },
	{ "php-domain", { NULL }, "php.domain", { "domain", "version" } },
	{ "websites-scan", { NULL }, NULL, { NULL } },
	{ "websites-all", { NULL }, NULL, { NULL } },
	{ "websites-user", { NULL }, NULL, { NULL } },
	{ "websites-pagespeed", { NULL }, NULL, { NULL } },
	{ "websites-vulnerability", { NULL }, NULL, { NULL } },
	{ "websites-secure", { NULL }, "website.secure", { "domain" } },
	{ "files-fix_permissions", { NULL }, "files.fix_permissions", { "user" } },
	{ "files-purge_trash", { NULL }, "files.purge_trash", { "user" } },
	{ "files-calculate_resellers_storage", { NULL }, NULL, { NULL } },
	/* server */
	{ "admin", { NULL }, "admin.manage", { "action", "admin" } },
	{ "api", { NULL }, "server.api", { "mode" } },
	{ "backup", { NULL }, "server.backup", { NULL } },
	{ "config", { "get" }, NULL, { NULL } },
	{ "config", { NULL }, "server.config", { "action", "key" } },
	{ "docker", { NULL }, "server.docker", { "action" } },
	{ "docker-autostart", { NULL }, "server.docker", { "action" } },
	{ "docker-update", { NULL }, "server.docker_update", { NULL } },
	{ "docker-backup", { NULL }, "server.backup", { NULL } },
	{ "docker-collect_stats", { NULL }, NULL, { NULL } },
	{ "docker-logs", { NULL }, NULL, { NULL } },
	{ "imunify", { NULL }, "server.imunify", { "action" } },
	{ "license", { NULL }, "server.license", { "action" } },
	{ "phpmyadmin", { NULL }, "server.phpmyadmin", { "action" } },
	{ "port", { NULL }, "server.port", { "port" } },
	{ "proxy", { NULL }, "server.proxy", { "action" } },
	{ "server-migrate", { NULL }, "server.migrate", { NULL } },
	{ "server-logrotate", { NULL }, NULL, { NULL } },
	{ "update", { NULL }, "server.update", { NULL } },
	{ "waf", { NULL }, "waf.set", { "setting", "domain" } },
	{ "db", { NULL }, NULL, { NULL } },
	{ "dev", { NULL }, NULL, { NULL } },
	{ "faq", { NULL }, NULL, { NULL } },
	{ "report", { NULL }, NULL, { NULL } },
	{ "sentinel", { NULL }, NULL, { NULL } },
	{ "version", { NULL }, NULL, { NULL } },
};
#define GUARD_N (sizeof(guard_table) / sizeof(guard_table[0]))

const struct guard_cmd *guard_table_get(size_t *n_r)
{
	*n_r = GUARD_N;
	return guard_table;
}

/* Options passed on as key=value (never the secret key options). */
static const char *const guard_opt_keys[] = {
	"comment", "docroot", "php_version", "reseller", "webserver", "sql",
	NULL
};

static bool guard_is_opt(const char *a)
{
	return a[0] == '-' && a[1] == '-';
}

const struct guard_cmd *guard_lookup(int argc, char *const *argv)
{
	if (argc < 1)
		return NULL;
	for (size_t i = 0; i < GUARD_N; i++) {
		const struct guard_cmd *g = &guard_table[i];
		int k;

		if (strcmp(g->cmd, argv[0]) != 0)
			continue;
		for (k = 0; k < 2 && g->sub[k] != NULL; k++)
			if (k + 1 >= argc || strcmp(argv[k + 1], g->sub[k]) != 0)
				break;
		if (k == 2 || g->sub[k] == NULL)
			return g;
	}
	return NULL;
}

json_t *guard_check_args(const struct guard_cmd *g, int argc,
			 char *const *argv)
{
	json_t *a = json_array();
	int first = 1, pos = 0;
	char *kv0 = NULL;

	json_array_append_new(a, json_string(g->intent));
	if (asprintf(&kv0, "command=%s", argv[0]) >= 0) {
		json_t *s = json_string(kv0);

		if (s != NULL)
			json_array_append_new(a, s);
		free(kv0);
	}
	for (int k = 0; k < 2 && g->sub[k] != NULL; k++)
		first++;
	for (int i = first; i < argc; i++) {
		const char *w = argv[i];
		const char *key = NULL, *val = NULL;
		char kbuf[32];

		if (guard_is_opt(w)) {
			const char *eq = strchr(w, '=');
			size_t kl = eq != NULL ? (size_t)(eq - w - 2) : 0;

			if (eq == NULL || kl == 0 || kl >= sizeof(kbuf))
				continue;
			memcpy(kbuf, w + 2, kl);
			kbuf[kl] = '\0';
			for (size_t j = 0; guard_opt_keys[j] != NULL; j++)
				if (strcmp(guard_opt_keys[j], kbuf) == 0)
					key = kbuf;
			val = eq + 1;
		} else {
			if (pos < 5 && g->keys[pos] != NULL)
				key = g->keys[pos];
			pos++;
			val = w;
			if (key != NULL && strcmp(key, "-") == 0)
				key = NULL; /* a password: never passed on */
		}
		if (key == NULL)
			continue;
		char *kv = NULL;

		if (asprintf(&kv, "%s=%s", key, val) < 0 || kv == NULL)
			continue;
		json_t *s = json_string(kv); /* NULL: not UTF-8, left out */

		if (s != NULL)
			json_array_append_new(a, s);
		free(kv);
	}
	return a;
}

/* ---- output to humans ---- */

/* Copy s into buf with control characters and non-ASCII shown as '?': a
 * reason or a name a customer chose never reaches a terminal raw. */
static void guard_clean(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	for (; s != NULL && *s != '\0' && o + 1 < size; s++) {
		unsigned char c = (unsigned char)*s;

		buf[o++] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	buf[o] = '\0';
}

static void guard_log(const char *log_file, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void guard_log(const char *log_file, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_file == NULL) {
		openlog("ophook-guard", LOG_PID, LOG_AUTH);
		syslog(LOG_NOTICE, "%s", msg);
		closelog();
		return;
	}
	int fd = open(log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC |
					O_NOFOLLOW, 0600);

	if (fd >= 0) {
		dprintf(fd, "%ld ophook-guard[%ld]: %s\n", (long)time(NULL),
			(long)getpid(), msg);
		close(fd);
	}
}

/* True when process pid runs the opencli wrapper: one of its first three
 * argv words is named "opencli" (bash /usr/local/bin/opencli CMD ...). */
static bool guard_is_opencli(pid_t pid)
{
	char path[64], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%ld/cmdline", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	const char *w = buf;

	for (int i = 0; i < 3 && w < buf + n; i++) {
		const char *b = strrchr(w, '/');

		if (strcmp(b != NULL ? b + 1 : w, "opencli") == 0)
			return true;
		w += strlen(w) + 1;
	}
	return false;
}

/* Deny: tell whoever started opencli (its stderr) and stop that opencli
 * run.  Returns the hook's exit status (1). */
static int guard_stop(const char *cmd, const char *why, const char *log_file)
{
	pid_t pp = getppid();
	char line[1200], c_cmd[128], c_why[900];

	guard_clean(c_cmd, sizeof(c_cmd), cmd);
	guard_clean(c_why, sizeof(c_why), why);
	snprintf(line, sizeof(line), "ophook: opencli %s refused: %s\n", c_cmd,
		 c_why);
	/* our own stderr is /dev/null under opencli; also write it there for
	 * a hook run by hand */
	fputs(line, stderr);
	if (pp <= 1 || !guard_is_opencli(pp)) {
		guard_log(log_file, "opencli %s refused (%s); parent %ld is "
			  "not opencli: nothing stopped", c_cmd, c_why,
			  (long)pp);
		return 1;
	}
	char path[64];

	snprintf(path, sizeof(path), "/proc/%ld/fd/2", (long)pp);
	/* O_APPEND: a caller's log file is appended to, not overwritten */
	int fd = open(path, O_WRONLY | O_APPEND | O_NOCTTY | O_NONBLOCK |
				    O_CLOEXEC);

	if (fd >= 0) {
		ssize_t w = write(fd, line, strlen(line));

		(void)w;
		close(fd);
	}
	/* logged before the kill: when opencli is the process a container
	 * runs (podman exec), its end takes this process down with it */
	guard_log(log_file, "opencli %s refused: %s", c_cmd, c_why);
	/* opencli waits for this hook: it cannot exit (and its pid cannot
	 * be reused) before we do */
	if (kill(pp, SIGTERM) < 0)
		guard_log(log_file, "opencli %s: cannot stop pid %ld: %s",
			  c_cmd, (long)pp, strerror(errno));
	return 1;
}

/* The command a hook file stands for: pre_<cmd>.sh or pre_<cmd>. */
static int guard_hook_cmd(const char *hook, char *buf, size_t size)
{
	const char *b = strrchr(hook, '/');
	size_t l;

	b = b != NULL ? b + 1 : hook;
	if (strncmp(b, "pre_", 4) != 0)
		return -EINVAL;
	b += 4;
	l = strlen(b);
	if (l > 3 && strcmp(b + l - 3, ".sh") == 0)
		l -= 3;
	if (l == 0 || l >= size)
		return -EINVAL;
	memcpy(buf, b, l);
	buf[l] = '\0';
	return 0;
}

/* An intent pattern as checks.fail_open takes it, safe to write into a
 * hook between single quotes. */
static bool guard_intent_pat_ok(const char *p)
{
	size_t l = strlen(p);

	return l > 0 && l <= 64 &&
	       strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_.*?-") == l;
}

/* guard check [--fail-open|--fail-closed] [--fail-open-intent PAT]...
 * [--log FILE] --hook PATH -- ARGS */
static int guard_check(const struct guard_env *env, int argc, char **argv)
{
	bool fail_open = false;
	const char *log_file = NULL, *hook = NULL;
	const char *fo[GUARD_FO_MAX];
	size_t n_fo = 0;
	char cmd[128];
	int i;

	(void)env;
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--fail-open-intent") == 0 &&
		    i + 1 < argc) {
			if (n_fo < GUARD_FO_MAX)
				fo[n_fo++] = argv[i + 1];
			i++;
		} else if (strcmp(argv[i], "--fail-open") == 0)
			fail_open = true;
		else if (strcmp(argv[i], "--fail-closed") == 0)
			fail_open = false;
		else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
			log_file = argv[++i];
		else if (strcmp(argv[i], "--hook") == 0 && i + 1 < argc)
			hook = argv[++i];
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			fprintf(stderr, "ophookctl guard check: unknown "
				"option %s\n", argv[i]);
			return 2;
		}
	}
	if (hook == NULL || guard_hook_cmd(hook, cmd, sizeof(cmd)) < 0) {
		fprintf(stderr, "usage: ophookctl guard check [--fail-open] "
			"[--log FILE] --hook .../pre_CMD.sh -- ARGS...\n");
		return 2;
	}
	/* the row is looked up with the command first, as opencli got it */
	int n = argc - i + 1;
	char **av = calloc((size_t)n + 1, sizeof(char *));

	if (av == NULL)
		return guard_stop(cmd, "out of memory", log_file);
	av[0] = cmd;
	for (int k = 1; k < n; k++)
		av[k] = argv[i + k - 1];

	const struct guard_cmd *g = guard_lookup(n, av);
	char c_cmd[128];

	guard_clean(c_cmd, sizeof(c_cmd), cmd);
	if (g == NULL) {
		guard_log(log_file, "opencli %s: not in the guard's table: "
			  "allowed without asking", c_cmd);
		free(av);
		return 0;
	}
	if (g->intent == NULL) {
		free(av);
		return 0;
	}
	json_t *args = guard_check_args(g, n, av), *res = NULL;
	int r = env->ask(env->ask_ctx, args, &res);

	free(av);
	json_decref(args);
	if (r < 0) {
		char why[256];
		const char *pat = NULL;

		for (size_t k = 0; pat == NULL && k < n_fo; k++) {
			if (pattern_match(fo[k], g->intent))
				pat = fo[k];
		}
		if (fail_open || pat != NULL) {
			guard_log(log_file, "opencli %s: ophookd cannot "
				  "answer (%s): allowed (fail-open%s%s)", c_cmd,
				  strerror(-r), pat != NULL ? " for " : "",
				  pat != NULL ? pat : "");
			return 0;
		}
		snprintf(why, sizeof(why), "ophookd cannot answer (%s) and "
			 "the guard fails closed for %s", strerror(-r),
			 g->intent);
		return guard_stop(cmd, why, log_file);
	}
	if (json_is_true(json_object_get(res, "allow"))) {
		json_decref(res);
		return 0;
	}
	const char *reason = json_string_value(json_object_get(res, "reason"));
	char why[900];

	snprintf(why, sizeof(why), "%s: %s", g->intent,
		 reason != NULL ? reason : "denied by a pre hook");
	json_decref(res);
	return guard_stop(cmd, why, log_file);
}

/* ---- install, remove, status ---- */

struct guard_opts {
	const char *root;      /* "" or --root */
	char *hooks_dir;       /* root + GUARD_HOOKS_DIR or --hooks-dir */
	char *scripts_dir;     /* root + GUARD_SCRIPTS_DIR */
	const char *ctl;       /* --ophookctl (default: this binary) */
	char self[PATH_MAX];
	const char *log_file;  /* --log */
	bool fail_open;
	/* intents allowed when ophookd cannot answer: the config's
	 * checks.fail_open and each --fail-open-intent */
	const char *fo_intents[GUARD_FO_MAX];
	size_t n_fo;
	/* where ophookctl cannot run at all (inside the openpanel container,
	 * which has neither ophookctl nor ophookd's socket): allow, unless
	 * --container-fail-closed; failing closed there refuses every action
	 * of the user panel for good, not only while ophookd is down */
	bool container_fail_closed;
	/* the relay for the container: the socket as the host sees it
	 * (--relay or checks.relay_socket; NULL: none), the client to copy
	 * next to it (--guard-client), and both as the container sees them
	 * (the socket without --root: /etc/openpanel/...) */
	const char *relay;
	const char *client_src;
	char relay_ctr[PATH_MAX], client_ctr[PATH_MAX + 16];
	char client_host[PATH_MAX + 16];
	bool relay_on;
};

/* Characters allowed in a path written into a hook: the hook is a shell
 * script, so nothing a shell would read specially. */
static bool guard_path_ok(const char *p)
{
	return p != NULL && p[0] == '/' && strlen(p) < 1024 &&
	       strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789/_.+-") == strlen(p);
}

static bool guard_cmd_ok(const char *c)
{
	return c[0] != '\0' && c[0] != '-' && strlen(c) < 96 &&
	       strspn(c, "abcdefghijklmnopqrstuvwxyz0123456789_-") ==
		       strlen(c);
}

/* The folder of path, in a static buffer ("/" for a top-level name). */
static const char *guard_dir_of(const char *path)
{
	static char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t l = slash != NULL ? (size_t)(slash - path) : 0;

	if (l == 0 || l >= sizeof(dir))
		return "/";
	memcpy(dir, path, l);
	dir[l] = '\0';
	return dir;
}

static char *guard_hook_text(const struct guard_opts *o, const char *socket)
{
	char *t = NULL, *relay = NULL;
	char logopt[1100] = "", foopt[GUARD_FO_MAX * 90] = "";
	size_t used = 0;

	if (o->log_file != NULL)
		snprintf(logopt, sizeof(logopt), " --log '%s'", o->log_file);
	for (size_t i = 0; i < o->n_fo; i++)
		used += (size_t)snprintf(foopt + used, sizeof(foopt) - used,
					 " --fail-open-intent '%s'",
					 o->fo_intents[i]);
	/* inside the openpanel container: the static client and the relay,
	 * both where the container's /etc/openpanel mount shows them; its
	 * refusals are logged next to them */
	if (o->relay_on &&
	    asprintf(&relay,
		     "client='%s'\n"
		     "if [ -x \"$client\" ]; then\n"
		     "\texec \"$client\" -s '%s' check %s%s --log '%s/guard.log' "
		     "--hook \"$0\" -- \"$@\"\n"
		     "fi\n",
		     o->client_ctr, o->relay_ctr,
		     o->fail_open ? "--fail-open" : "--fail-closed", foopt,
		     guard_dir_of(o->relay_ctr)) < 0)
		return NULL;
	/* opencli runs this as `bash FILE ARGS...` with stdout and stderr on
	 * /dev/null and ignores the exit status (see ctl/guard.h). */
	if (asprintf(&t,
		     "#!/bin/bash\n" GUARD_MARK "\n"
		     "# Installed by `ophookctl guard install`; `ophookctl "
		     "guard remove` takes it away.\n"
		     "# Asks ophookd's pre hooks; on deny, prints the reason "
		     "on opencli's stderr\n"
		     "# and stops this opencli run (SIGTERM to opencli, the "
		     "parent of this hook).\n"
		     "ctl='%s'\n"
		     "if [ -x \"$ctl\" ]; then\n"
		     "\texec \"$ctl\" -s '%s' guard check %s%s%s --hook \"$0\" "
		     "-- \"$@\"\n"
		     "fi\n"
		     "%s"
		     "# ophookctl cannot run here (inside the openpanel "
		     "container, say)\n"
		     "%s",
		     o->ctl, socket, o->fail_open ? "--fail-open" : "--fail-closed",
		     foopt, logopt, relay != NULL ? relay : "",
		     !o->container_fail_closed
			     ? "exit 0\n"
			     : "p=$PPID\n"
			       "if tr '\\0' '\\n' < /proc/$p/cmdline 2>/dev/null "
			       "| head -n 3 | grep -q '\\(^\\|/\\)opencli$'; then\n"
			       "\techo \"ophook: opencli refused: ophookd "
			       "cannot be asked from here and the guard fails "
			       "closed\" >> /proc/$p/fd/2\n"
			       "\tkill -TERM \"$p\"\n"
			       "fi\n"
			       "exit 1\n") < 0)
		t = NULL;
	free(relay);
	return t;
}

/* 1: a guard hook, 0: no file, -1: someone else's file */
static int guard_file_state(const char *path)
{
	char head[256];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	n = read(fd, head, sizeof(head) - 1);
	close(fd);
	if (n < 0)
		return -1;
	head[n] = '\0';
	return strstr(head, "\n" GUARD_MARK "\n") != NULL ? 1 : -1;
}

/* The commands that get a hook: every row with an intent, and every
 * opencli script found that the table does not know (so that it is
 * logged).  Calls fn for each command once. */
static int guard_add_unique(char ***v, size_t *n, const char *c)
{
	for (size_t i = 0; i < *n; i++)
		if (strcmp((*v)[i], c) == 0)
			return 0;
	char **nv = realloc(*v, (*n + 1) * sizeof(char *));

	if (nv == NULL)
		return -ENOMEM;
	*v = nv;
	if ((nv[*n] = strdup(c)) == NULL)
		return -ENOMEM;
	(*n)++;
	return 0;
}

static void guard_scan_scripts(const char *dir, const char *prefix,
			       char ***v, size_t *n, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL || depth > 2) {
		if (d != NULL)
			closedir(d);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		char name[256], sub[PATH_MAX];
		size_t l = strlen(e->d_name);

		if (e->d_name[0] == '.' || strcmp(e->d_name, "lib") == 0)
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		if (e->d_type == DT_DIR) {
			snprintf(name, sizeof(name), "%s%s-", prefix,
				 e->d_name);
			guard_scan_scripts(sub, name, v, n, depth + 1);
			continue;
		}
		if (l <= 3 || strcmp(e->d_name + l - 3, ".sh") != 0)
			continue;
		snprintf(name, sizeof(name), "%s%.*s", prefix, (int)(l - 3),
			 e->d_name);
		if (guard_cmd_ok(name) && guard_lookup(1, (char *[]){ name }) ==
						  NULL)
			(void)guard_add_unique(v, n, name);
	}
	closedir(d);
}

static void guard_commands(const struct guard_opts *o, char ***v, size_t *n)
{
	*v = NULL;
	*n = 0;
	for (size_t i = 0; i < GUARD_N; i++)
		if (guard_table[i].intent != NULL)
			(void)guard_add_unique(v, n, guard_table[i].cmd);
	guard_scan_scripts(o->scripts_dir, "", v, n, 0);
}

static void guard_free_list(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static int guard_write_data(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX + 16];
	int fd;

	snprintf(tmp, sizeof(tmp), "%s.ophook-tmp", path);
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0755);
	if (fd < 0)
		return -errno;
	ssize_t w = write(fd, data, len);

	if (w != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0) {
		int err = errno ? errno : EIO;

		unlink(tmp);
		return -err;
	}
	if (rename(tmp, path) < 0) {
		int err = errno;

		unlink(tmp);
		return -err;
	}
	return 0;
}

static int guard_write_file(const char *path, const char *text)
{
	return guard_write_data(path, text, strlen(text));
}

/* The relay for the container: check that the socket is under
 * ROOT/etc/openpanel (what the container mounts), then copy the static
 * client next to it.  Sets o->relay_on; a problem is a warning (the hooks
 * then do what --container-fail-closed says). */
static void guard_relay_prepare(struct guard_opts *o)
{
	char prefix[PATH_MAX], *data = NULL;
	size_t len = 0, rl = strlen(o->root);
	int r;

	o->relay_on = false;
	if (o->relay == NULL)
		return;
	snprintf(prefix, sizeof(prefix), "%s/etc/openpanel/", o->root);
	if (!guard_path_ok(o->relay) ||
	    strncmp(o->relay, prefix, strlen(prefix)) != 0) {
		fprintf(stderr, "ophookctl guard: relay socket %s is not below "
			"%s: the openpanel container cannot reach it, so opencli "
			"run there is not asked\n", o->relay, prefix);
		return;
	}
	snprintf(o->relay_ctr, sizeof(o->relay_ctr), "%s", o->relay + rl);
	snprintf(o->client_ctr, sizeof(o->client_ctr), "%s/ophook-guard",
		 guard_dir_of(o->relay_ctr));
	snprintf(o->client_host, sizeof(o->client_host), "%s/ophook-guard",
		 guard_dir_of(o->relay));
	r = file_read_nofollow(o->client_src, 64u << 20, &data, &len);
	if (r < 0) {
		fprintf(stderr, "ophookctl guard: %s: %s: opencli run inside "
			"the openpanel container is not asked\n", o->client_src,
			strerror(-r));
		return;
	}
	if ((r = mkdir_p(guard_dir_of(o->client_host), 0755)) < 0 ||
	    (r = guard_write_data(o->client_host, data, len)) < 0) {
		fprintf(stderr, "ophookctl guard: %s: %s\n", o->client_host,
			strerror(-r));
		free(data);
		return;
	}
	free(data);
	o->relay_on = true;
}

static int guard_install(struct guard_opts *o, const char *socket)
{
	char **v, *text;
	size_t n, done = 0, kept = 0;
	int status = 0;

	guard_relay_prepare(o);
	text = guard_hook_text(o, socket);

	if (text == NULL)
		return 2;
	if (mkdir(o->hooks_dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "ophookctl guard: %s: %s\n", o->hooks_dir,
			strerror(errno));
		free(text);
		return 2;
	}
	guard_commands(o, &v, &n);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX], legacy[PATH_MAX];
		int st, r;

		snprintf(path, sizeof(path), "%s/pre_%s.sh", o->hooks_dir, v[i]);
		snprintf(legacy, sizeof(legacy), "%s/pre_%s", o->hooks_dir, v[i]);
		st = guard_file_state(path);
		if (st < 0) {
			/* the admin's own pre hook: opencli runs only one */
			fprintf(stderr, "ophookctl guard: %s is not ours: "
				"left alone, opencli %s is not guarded\n", path,
				v[i]);
			kept++;
			status = 1;
			continue;
		}
		(void)legacy;
		if ((r = guard_write_file(path, text)) < 0) {
			fprintf(stderr, "ophookctl guard: %s: %s\n", path,
				strerror(-r));
			status = 2;
			continue;
		}
		done++;
	}
	printf("guard installed: %zu pre hook(s) in %s (%s)%s\n", done,
	       o->hooks_dir, o->fail_open ? "fail-open" : "fail-closed",
	       kept ? "; some commands keep their own hook" : "");
	for (size_t i = 0; i < o->n_fo && !o->fail_open; i++)
		printf("fail-open when ophookd cannot answer: %s\n",
		       o->fo_intents[i]);
	if (o->relay_on)
		printf("inside the openpanel container: %s asks ophookd "
		       "through %s (%s)\n", o->client_ctr, o->relay_ctr,
		       o->fail_open ? "fail-open" : "fail-closed");
	if (o->relay_on && o->container_fail_closed)
		printf("where neither can run: refused\n");
	else if (o->relay_on)
		printf("where neither can run: allowed unchecked "
		       "(--container-fail-closed refuses)\n");
	else if (!o->container_fail_closed)
		printf("note: where ophookctl cannot run (opencli inside the "
		       "openpanel container, which the user panel uses), "
		       "commands are allowed unchecked; "
		       "--container-fail-closed refuses them instead\n");
	else
		printf("note: opencli run inside the openpanel container (the "
		       "user panel) is refused, always: ophookd cannot be "
		       "asked from there\n");
	guard_free_list(v, n);
	free(text);
	return status;
}

/* Remove every guard hook in the folder (whatever the table says now). */
static int guard_remove(const struct guard_opts *o)
{
	DIR *d = opendir(o->hooks_dir);
	struct dirent *e;
	size_t removed = 0;
	int status = 0;

	if (d == NULL) {
		if (errno == ENOENT) {
			printf("guard removed: 0 pre hook(s)\n");
			return 0;
		}
		fprintf(stderr, "ophookctl guard: %s: %s\n", o->hooks_dir,
			strerror(errno));
		return 2;
	}
	while ((e = readdir(d)) != NULL) {
		char path[PATH_MAX];

		if (strncmp(e->d_name, "pre_", 4) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", o->hooks_dir, e->d_name);
		if (guard_file_state(path) != 1)
			continue;
		if (unlink(path) < 0) {
			fprintf(stderr, "ophookctl guard: %s: %s\n", path,
				strerror(errno));
			status = 2;
			continue;
		}
		removed++;
	}
	closedir(d);
	printf("guard removed: %zu pre hook(s) from %s\n", removed,
	       o->hooks_dir);
	if (o->relay != NULL) {
		char client[PATH_MAX + 16];

		snprintf(client, sizeof(client), "%s/ophook-guard",
			 guard_dir_of(o->relay));
		if (unlink(client) == 0)
			printf("guard removed: %s\n", client);
		else if (errno != ENOENT) {
			fprintf(stderr, "ophookctl guard: %s: %s\n", client,
				strerror(errno));
			status = 2;
		}
	}
	return status;
}

/* 0: every command guarded, 1: partly or not installed. */
static int guard_status(const struct guard_opts *o)
{
	char **v;
	size_t n, ours = 0, missing = 0, foreign = 0;

	guard_commands(o, &v, &n);
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX];
		int st;

		snprintf(path, sizeof(path), "%s/pre_%s.sh", o->hooks_dir, v[i]);
		st = guard_file_state(path);
		if (st == 1) {
			ours++;
		} else if (st == 0) {
			missing++;
		} else {
			foreign++;
			printf("not guarded (own hook): %s\n", v[i]);
		}
	}
	printf("guard: %s: %zu of %zu opencli commands guarded, %zu without "
	       "a hook, %zu with another hook\n",
	       ours == n ? "installed" : ours == 0 ? "not installed"
						   : "partly installed",
	       ours, n, missing, foreign);
	if (o->relay != NULL) {
		char client[PATH_MAX + 16];
		struct stat st;

		snprintf(client, sizeof(client), "%s/ophook-guard",
			 guard_dir_of(o->relay));
		printf("inside the openpanel container: %s, relay %s %s\n",
		       access(client, X_OK) == 0 ? "client installed"
						 : "no client",
		       o->relay,
		       stat(o->relay, &st) == 0 && S_ISSOCK(st.st_mode)
			       ? "listening"
			       : "absent (ophookd down, or checks.relay off)");
	}
	guard_free_list(v, n);
	return ours == n ? 0 : 1;
}

static void guard_usage(FILE *f)
{
	fprintf(f,
		"usage: ophookctl [-s SOCKET] guard install [--root DIR] "
		"[--fail-open] [--fail-open-intent PATTERN]... "
		"[--container-fail-closed] [--log FILE] [--ophookctl PATH]\n"
		"                 [--relay SOCKET | --no-relay] "
		"[--guard-client PATH]\n"
		"       ophookctl guard remove [--root DIR] [--relay SOCKET]\n"
		"       ophookctl guard status [--root DIR] [--relay SOCKET]\n"
		"       ophookctl [-s SOCKET] guard check [--fail-open] "
		"[--log FILE] --hook PATH -- ARGS...\n"
		"install writes pre_<cmd>.sh hooks into "
		"ROOT" GUARD_HOOKS_DIR " (the folder opencli\n"
		"reads hooks from) for every opencli command; remove takes "
		"them away again.\n");
}

/* Add an intent pattern allowed when ophookd cannot answer; -1 after a
 * message. */
static int guard_fo_add(struct guard_opts *o, const char *pat)
{
	if (!guard_intent_pat_ok(pat)) {
		fprintf(stderr, "ophookctl guard: fail-open intent '%s': "
			"1-64 of [a-z0-9_.*?-]\n", pat);
		return -1;
	}
	if (o->n_fo == GUARD_FO_MAX) {
		fprintf(stderr, "ophookctl guard: more than %d fail-open "
			"intents\n", GUARD_FO_MAX);
		return -1;
	}
	o->fo_intents[o->n_fo++] = pat;
	return 0;
}

int guard_main(const struct guard_env *env, int argc, char **argv)
{
	struct guard_opts o = { .root = "", .relay = env->relay_socket,
				.client_src = OPHOOK_GUARD_CLIENT };
	const char *sub, *hooks_opt = NULL;
	bool no_relay = false;
	int status;

	if (argc < 2) {
		guard_usage(stderr);
		return 2;
	}
	sub = argv[1];
	if (strcmp(sub, "check") == 0)
		return guard_check(env, argc - 1, argv + 1);
	for (size_t i = 0; i < env->n_fail_open; i++) {
		if (guard_fo_add(&o, env->fail_open[i]) < 0)
			return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--root") == 0 && i + 1 < argc)
			o.root = argv[++i];
		else if (strcmp(argv[i], "--hooks-dir") == 0 && i + 1 < argc)
			hooks_opt = argv[++i];
		else if (strcmp(argv[i], "--ophookctl") == 0 && i + 1 < argc)
			o.ctl = argv[++i];
		else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc)
			o.log_file = argv[++i];
		else if (strcmp(argv[i], "--fail-open") == 0)
			o.fail_open = true;
		else if (strcmp(argv[i], "--fail-closed") == 0)
			o.fail_open = false;
		else if (strcmp(argv[i], "--fail-open-intent") == 0 &&
			 i + 1 < argc) {
			if (guard_fo_add(&o, argv[++i]) < 0)
				return 2;
		} else if (strcmp(argv[i], "--container-fail-closed") == 0)
			o.container_fail_closed = true;
		else if (strcmp(argv[i], "--container-fail-open") == 0)
			o.container_fail_closed = false;
		else if (strcmp(argv[i], "--relay") == 0 && i + 1 < argc)
			o.relay = argv[++i];
		else if (strcmp(argv[i], "--no-relay") == 0)
			no_relay = true;
		else if (strcmp(argv[i], "--guard-client") == 0 && i + 1 < argc)
			o.client_src = argv[++i];
		else {
			guard_usage(stderr);
			return 2;
		}
	}
	if (no_relay)
		o.relay = NULL;
	if (o.root[0] != '\0' && !guard_path_ok(o.root)) {
		fprintf(stderr, "ophookctl guard: --root must be an absolute "
			"path of [A-Za-z0-9/_.+-]\n");
		return 2;
	}
	if (o.ctl == NULL) {
		ssize_t l = readlink("/proc/self/exe", o.self,
				     sizeof(o.self) - 1);

		o.self[l > 0 ? l : 0] = '\0';
		o.ctl = o.self;
	}
	if (asprintf(&o.hooks_dir, "%s%s", hooks_opt != NULL ? "" : o.root,
		     hooks_opt != NULL ? hooks_opt : GUARD_HOOKS_DIR) < 0 ||
	    asprintf(&o.scripts_dir, "%s%s", o.root, GUARD_SCRIPTS_DIR) < 0) {
		fprintf(stderr, "ophookctl guard: out of memory\n");
		return 2;
	}
	if (strcmp(sub, "install") == 0) {
		if (!guard_path_ok(o.ctl) || !guard_path_ok(env->socket) ||
		    (o.log_file != NULL && !guard_path_ok(o.log_file)) ||
		    !guard_path_ok(o.hooks_dir)) {
			fprintf(stderr, "ophookctl guard: the paths written "
				"into the hooks (ophookctl, socket, log, hooks "
				"folder) must be absolute, of "
				"[A-Za-z0-9/_.+-]\n");
			status = 2;
		} else {
			status = guard_install(&o, env->socket);
		}
	} else if (strcmp(sub, "remove") == 0) {
		status = guard_remove(&o);
	} else if (strcmp(sub, "status") == 0) {
		status = guard_status(&o);
	} else {
		guard_usage(stderr);
		status = 2;
	}
	free(o.hooks_dir);
	free(o.scripts_dir);
	return status;
}
