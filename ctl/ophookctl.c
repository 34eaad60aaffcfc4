/* ophookctl: the command line of ophookd, over its control socket.
 *
 *   ophookctl [-c CONFIG | -s SOCKET] [--json] COMMAND ARGS...
 *
 * Sends {"cmd":COMMAND,"args":[ARGS...],"json":bool,"tty":bool} and prints
 * the answer's text (or its result as JSON with --json).  Exits with the
 * answer's exit status; 2 when ophookd cannot be reached.
 * `ophookctl emit -` reads "TYPE [SUBJECT] key=value..." lines from stdin
 * and sends them in batches. */
#define _GNU_SOURCE
#include "../core/lib/config.h" /* not the build's autoconf config.h */
#include "../core/lib/emitline.h"
#include "../core/lib/log.h"
#include "../core/bus/event.h"
#include "../core/lib/util.h"
#include "guard.h"
#include "types.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define CTL_DEFAULT_SOCKET "/run/ophookd.sock"
#define CTL_BATCH 1000

#ifndef OPHOOK_VERSION
#define OPHOOK_VERSION "unknown"
#endif

struct ctl {
	const char *socket;
	int fd;
	FILE *in;     /* reading side of fd */
	bool json;
	bool tty;
};

/* Every command the daemon has (its `commands` answer) and ophookctl's
 * own: the synopsis for --help and the text for `help COMMAND`.  Keep in
 * step with ophookctl(8); tests/integration/help.sh checks all three. */
struct ctl_help {
	const char *name;  /* as typed: "hooks test" */
	const char *usage; /* after "ophookctl " */
	const char *text;  /* what it does */
};

static const struct ctl_help ctl_helps[] = {
	{ "status", "status",
	  "The daemon's version, node, uptime, queue, deliveries by state,\n"
	  "handlers and plugins." },
	{ "events", "events [ID] [--type T] [--subject S] [--state STATE]\n"
	  "       [--since TIME|AGE] [--limit|-n N] [--after ID]",
	  "Journaled events with their deliveries (STATE: pending, done,\n"
	  "failed, dead, discarded; AGE: 90, 30s, 10m, 2h, 7d).  events ID\n"
	  "shows every attempt (time, duration, error)." },
	{ "emit", "emit TYPE [SUBJECT] key=value... | emit -",
	  "Journal and deliver an event; prints its id once durable.  With -,\n"
	  "one \"TYPE [SUBJECT] key=value...\" a line from stdin." },
	{ "tail", "tail [--type PATTERN] [--after ID] [-n N]",
	  "Follow events as they are journaled, until interrupted." },
	{ "replay", "replay ID",
	  "Deliver event ID again to every matching handler, as a new event." },
	{ "retry", "retry --failed | retry ID [--handler H] | retry --handler H",
	  "Deliver failed deliveries now and dead ones again: all of them,\n"
	  "event ID's (or only handler H's), or all of handler H's.  A retried\n"
	  "delivery gets max_attempts more tries; its history is kept." },
	{ "discard", "discard ID --handler H | discard --handler H [--dead]",
	  "Give up dead deliveries (kept in the journal as discarded): event\n"
	  "ID's for H, or all of H's (all open ones when H no longer exists)." },
	{ "metrics", "metrics",
	  "The daemon's metrics: queue, deliveries, handlers, plugins." },
	{ "cluster status", "cluster status",
	  "Nodes sharing the journal: heartbeat, alive/dead, lag, failed and\n"
	  "dead deliveries." },
	{ "reconcile", "reconcile",
	  "Compare the watched files and the panel database with the last\n"
	  "baseline now and emit the events for what changed." },
	{ "check", "check INTENT key=value...",
	  "Ask the pre hooks: exit 0 when allowed, 1 when denied (with the\n"
	  "reason), 2 for an unknown intent." },
	{ "types", "types [TYPE|INTENT] [--json] [--names|--intents]",
	  "The catalogue of event types and intents: fields, examples,\n"
	  "schemas (no daemon needed; ophook-events(7))." },
	{ "guard", "guard install|remove|status [--root DIR] [--fail-open]\n"
	  "       [--fail-open-intent PATTERN]... [--container-fail-closed]\n"
	  "       [--log FILE] [--ophookctl PATH]",
	  "opencli pre hooks that stop a command ophookd's pre hooks deny." },
	{ "plugins list", "plugins list",
	  "The plugins: state, version, deliveries, last error." },
	{ "plugins enable", "plugins enable NAME",
	  "Load plugin NAME (one the config has) again." },
	{ "plugins disable", "plugins disable NAME",
	  "Unload plugin NAME; its deliveries wait in the journal." },
	{ "plugins reload", "plugins reload NAME",
	  "Reload plugin NAME, once its calls in flight are over." },
	{ "hooks list", "hooks list",
	  "Every hook file with its kind, state, patterns and last error." },
	{ "hooks lint", "hooks lint [FILE...]",
	  "Check hooks as delivery would, without running them (relative\n"
	  "names in hooks_dir; without FILE every hook there)." },
	{ "hooks test", "hooks test FILE --event TYPE [--payload FILE.json]\n"
	  "       [--subject S] [--live]",
	  "Run a hook on a made-up event.  A dry run by default: what it would\n"
	  "post, run, write, emit or query is printed, not done; --live does\n"
	  "it (ophook-lua(7))." },
	{ "commands", "commands",
	  "The commands the running daemon has, one a line." },
	{ "help", "help [COMMAND]", "This help, or one command's." },
};

static void ctl_usage(FILE *f)
{
	fprintf(f,
		"usage: ophookctl [-c CONFIG | -s SOCKET] [--json] COMMAND "
		"[ARGS...]\n"
		"\n"
		"options:\n"
		"  -c, --config FILE   read the socket path from FILE\n"
		"                      (default " CONFIG_DEFAULT_PATH ")\n"
		"  -s, --socket PATH   the control socket (default from the "
		"config, else\n"
		"                      " CTL_DEFAULT_SOCKET ")\n"
		"  -j, --json          print results as JSON (for scripts)\n"
		"  -h, --help          this help\n"
		"  -V, --version       print the version\n"
		"\n"
		"commands (`ophookctl help COMMAND` for one):\n");
	for (size_t i = 0; i < sizeof(ctl_helps) / sizeof(ctl_helps[0]); i++)
		fprintf(f, "  %s\n", ctl_helps[i].usage);
	fprintf(f, "Plugins may add more commands; `ophookctl commands` lists "
		"the daemon's.\n");
}

/* `help WORD [WORD]`: the commands named so ("plugins": all of them).
 * 0, or 2 when none. */
static int ctl_help_command(int argc, char **argv)
{
	char name[128] = "";
	size_t len, found = 0;

	for (int i = 0; i < argc; i++) {
		len = strlen(name);
		snprintf(name + len, sizeof(name) - len, "%s%s",
			 i > 0 ? " " : "", argv[i]);
	}
	len = strlen(name);
	for (size_t i = 0; i < sizeof(ctl_helps) / sizeof(ctl_helps[0]); i++) {
		const char *n = ctl_helps[i].name;

		if (strcmp(n, name) != 0 &&
		    !(strncmp(n, name, len) == 0 && n[len] == ' '))
			continue;
		printf("%susage: ophookctl %s\n\n%s\n", found > 0 ? "\n" : "",
		       ctl_helps[i].usage, ctl_helps[i].text);
		found++;
	}
	if (found == 0) {
		fprintf(stderr, "ophookctl: help: no command '%s' "
			"(`ophookctl --help` lists them)\n", name);
		return 2;
	}
	return 0;
}

static int ctl_write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int ctl_connect(struct ctl *ctl)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(ctl->socket) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "ophookctl: cannot connect to %s: path too "
			"long\n", ctl->socket);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, ctl->socket, strlen(ctl->socket) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "ophookctl: socket: %s\n", strerror(errno));
		return -errno;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno;
		fprintf(stderr, "ophookctl: cannot connect to %s: %s%s\n",
			ctl->socket, strerror(err),
			err == ENOENT || err == ECONNREFUSED
				? " (is ophookd running?)" : "");
		close(fd);
		return -err;
	}
	int fd2 = dup(fd);
	ctl->in = fd2 >= 0 ? fdopen(fd2, "r") : NULL;
	if (ctl->in == NULL) {
		fprintf(stderr, "ophookctl: %s\n", strerror(errno));
		if (fd2 >= 0)
			close(fd2);
		close(fd);
		return -ENOMEM;
	}
	ctl->fd = fd;
	return 0;
}

/* Send one request object (not stolen). */
static int ctl_send(struct ctl *ctl, json_t *req)
{
	char *s = json_dumps(req, JSON_COMPACT);
	if (s == NULL) {
		fprintf(stderr, "ophookctl: the request cannot be encoded as "
			"JSON (invalid UTF-8 in an argument?)\n");
		return -EINVAL;
	}
	size_t len = strlen(s);
	s = realloc(s, len + 2);
	if (s == NULL)
		return -ENOMEM;
	s[len] = '\n';
	int r = ctl_write_all(ctl->fd, s, len + 1);
	free(s);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		fprintf(stderr, "ophookctl: sending to %s: %s\n", ctl->socket,
			strerror(-r));
	return r;
}

/* Read one JSON line; NULL at EOF (*eof_r) or on error (message
 * printed). */
static json_t *ctl_recv(struct ctl *ctl, bool *eof_r)
{
	char *line = NULL;
	size_t cap = 0;
	json_error_t jerr;

	*eof_r = false;
	errno = 0;
	ssize_t n = getline(&line, &cap, ctl->in);
	if (n < 0) {
		if (errno != 0)
			fprintf(stderr, "ophookctl: reading from %s: %s\n",
				ctl->socket, strerror(errno));
		else
			*eof_r = true;
		free(line);
		return NULL;
	}
	json_t *o = json_loadb(line, (size_t)n, 0, &jerr);
	free(line);
	if (!json_is_object(o)) {
		fprintf(stderr, "ophookctl: bad answer from ophookd: %s\n",
			o == NULL ? jerr.text : "not a JSON object");
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Write s to f.  On a terminal (tty) everything that could drive it
 * (control characters, DEL, C1 controls, bytes that are not UTF-8: file
 * names, domains and error texts come from events) is written as \xNN
 * with log_escape(); line breaks and tabs stay when keep_nl.  Elsewhere
 * (a pipe, a file) s is written as it is. */
static void ctl_out(FILE *f, bool tty, const char *s, bool keep_nl)
{
	size_t len = strlen(s);
	char *buf;

	if (!tty) {
		fputs(s, f);
		return;
	}
	buf = malloc(4 * len + 1);
	if (buf == NULL) {
		fputs("?", f);
		return;
	}
	while (*s != '\0') {
		size_t seg = keep_nl ? strcspn(s, "\n\t") : strlen(s);
		size_t n = log_escape(buf, 4 * len + 1, s, seg);

		fwrite(buf, 1, n, f);
		s += seg;
		if (*s != '\0')
			fputc(*s++, f);
	}
	free(buf);
}

/* Print a value as JSON (pretty). */
static void ctl_print_json(json_t *v, bool compact)
{
	char *s = json_dumps(v, (compact ? JSON_COMPACT : JSON_INDENT(2)) |
				JSON_ENCODE_ANY);
	if (s != NULL) {
		puts(s);
		free(s);
	}
}

/* One readable line for a streamed event. */
static void ctl_print_event(struct ctl *ctl, json_t *ev)
{
	static const char *const std[] = { "id", "type", "time", "subject",
					   "source", "node", NULL };
	const char *k;
	json_t *v;

	if (ctl->json) {
		ctl_print_json(ev, true);
		fflush(stdout);
		return;
	}
	printf("%" JSON_INTEGER_FORMAT "  ",
	       json_integer_value(json_object_get(ev, "id")));
	ctl_out(stdout, ctl->tty,
		json_string_value(json_object_get(ev, "time")) ?: "-", false);
	fputs("  ", stdout);
	ctl_out(stdout, ctl->tty,
		json_string_value(json_object_get(ev, "type")) ?: "-", false);
	fputs("  ", stdout);
	ctl_out(stdout, ctl->tty,
		json_string_value(json_object_get(ev, "subject")) ?: "-", false);
	json_object_foreach(ev, k, v) {
		bool skip = false;
		for (unsigned i = 0; std[i] != NULL; i++)
			skip = skip || strcmp(k, std[i]) == 0;
		if (skip)
			continue;
		putchar(' ');
		ctl_out(stdout, ctl->tty, k, false);
		putchar('=');
		if (json_is_string(v)) {
			ctl_out(stdout, ctl->tty, json_string_value(v), false);
		} else {
			char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			ctl_out(stdout, ctl->tty, s != NULL ? s : "?", false);
			free(s);
		}
	}
	printf("\n");
	fflush(stdout);
}

/* Print a final answer; returns the exit status. */
static int ctl_print_answer(struct ctl *ctl, json_t *ans)
{
	json_t *ex = json_object_get(ans, "exit");
	int status = json_is_integer(ex) ? (int)json_integer_value(ex) : 2;

	if (!json_is_true(json_object_get(ans, "ok"))) {
		const char *err = json_string_value(json_object_get(ans, "error"));
		fputs("ophookctl: ", stderr);
		ctl_out(stderr, isatty(STDERR_FILENO) == 1,
			err != NULL ? err : "failed", true);
		fputc('\n', stderr);
		if (status == 0)
			status = 2;
		return status;
	}
	if (ctl->json) {
		ctl_print_json(json_object_get(ans, "result"), false);
	} else {
		const char *text = json_string_value(json_object_get(ans, "text"));
		if (text != NULL) {
			size_t len = strlen(text);
			ctl_out(stdout, ctl->tty, text, true);
			if (len > 0 && text[len - 1] != '\n')
				putchar('\n');
		} else {
			json_t *res = json_object_get(ans, "result");
			if (res != NULL && !json_is_null(res))
				ctl_print_json(res, false);
		}
	}
	return status;
}

/* Send a request and print what comes back: streamed events, then the
 * answer.  Returns the exit status. */
static int ctl_run(struct ctl *ctl, json_t *req, bool streaming)
{
	int sent = ctl_send(ctl, req);
	/* a closed connection may still hold ophookd's answer (a refusal) */
	if (sent < 0 && sent != -EPIPE && sent != -ECONNRESET)
		return 2;
	for (;;) {
		bool eof;
		json_t *o = ctl_recv(ctl, &eof);
		if (o == NULL) {
			if (sent < 0)
				fprintf(stderr, "ophookctl: sending to %s: %s\n",
					ctl->socket, strerror(-sent));
			else if (eof && streaming)
				return 0;
			else if (eof)
				fprintf(stderr, "ophookctl: %s closed the "
					"connection without answering\n",
					ctl->socket);
			return 2;
		}
		json_t *ev = json_object_get(o, "event");
		if (ev != NULL && json_object_get(o, "ok") == NULL) {
			ctl_print_event(ctl, ev);
			json_decref(o);
			continue;
		}
		int status = ctl_print_answer(ctl, o);
		json_decref(o);
		return status;
	}
}

/* ---- progress on a TTY for long commands (reconcile) ---- */

struct ctl_spinner {
	pthread_t thread;
	atomic_bool stop;
	const char *what;
};

static void *ctl_spin(void *arg)
{
	struct ctl_spinner *sp = arg;
	struct timespec t0, now, nap = { 0, 100 * 1000 * 1000 };
	static const char marks[] = "|/-\\";
	unsigned i = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!atomic_load(&sp->stop)) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		fprintf(stderr, "\r%s %c %.1f s", sp->what, marks[i++ % 4],
			(double)(now.tv_sec - t0.tv_sec) +
				(double)(now.tv_nsec - t0.tv_nsec) / 1e9);
		fflush(stderr);
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "\r\033[K");
	fflush(stderr);
	return NULL;
}

/* ---- emit - ---- */

/* Check one "TYPE [SUBJECT] key=value..." line (split as the daemon
 * splits it, see emitline.h): 1 when it holds an event, 0 for a blank or
 * comment line, -1 with why filled for a bad one. */
static int ctl_emit_line(const char *line, char *why, size_t why_size)
{
	static struct emitline el;
	char *copy = xstrdup(line);
	const char *err = NULL;
	int r = emitline_parse(copy, &el, &err);

	if (r < 0)
		snprintf(why, why_size, "%s", err);
	else if (r > 0 && event_type_valid(el.type, &err) < 0) {
		snprintf(why, why_size, "type '%.200s': %s", el.type, err);
		r = -1;
	}
	free(copy);
	return r < 0 ? -1 : r;
}

/* Send one batch; adds to the totals.  Returns 0 or the exit status. */
static int ctl_emit_send(struct ctl *ctl, json_t *batch,
			 const unsigned *linenos, json_int_t *count,
			 json_int_t *first, json_int_t *last)
{
	json_t *req = json_pack("{sss[]sOsbsb}", "cmd", "emit", "args",
				"lines", batch, "json", ctl->json, "tty",
				ctl->tty);
	bool eof;

	int r = ctl_send(ctl, req);
	json_decref(req);
	if (r < 0 && r != -EPIPE && r != -ECONNRESET)
		return 2;
	json_t *ans = ctl_recv(ctl, &eof);
	if (ans == NULL) {
		if (r < 0)
			fprintf(stderr, "ophookctl: sending to %s: %s\n",
				ctl->socket, strerror(-r));
		else if (eof)
			fprintf(stderr, "ophookctl: %s closed the connection "
				"without answering\n", ctl->socket);
		return 2;
	}
	const char *err = json_string_value(json_object_get(ans, "error"));
	size_t idx;
	int at = 0;
	if (!json_is_true(json_object_get(ans, "ok")) && err != NULL &&
	    sscanf(err, "emit: lines[%zu]: %n", &idx, &at) == 1 && at > 0 &&
	    idx < json_array_size(batch)) {
		/* the daemon names the batch's line: say which stdin line */
		fprintf(stderr, "ophookctl: stdin:%u: %s\n", linenos[idx],
			err + at);
		json_decref(ans);
		return 2;
	}
	if (!json_is_true(json_object_get(ans, "ok"))) {
		int status = ctl_print_answer(ctl, ans);
		json_decref(ans);
		return status;
	}
	json_t *res = json_object_get(ans, "result");
	json_t *ids = json_object_get(res, "ids");
	json_int_t n = json_integer_value(json_object_get(res, "count"));
	if (*count == 0)
		*first = json_integer_value(json_array_get(ids, 0));
	*last = json_integer_value(json_array_get(ids, 1));
	*count += n;
	json_decref(ans);
	return 0;
}

/* `emit -`: events from stdin in batches of CTL_BATCH. */
static int ctl_emit_stdin(struct ctl *ctl)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	json_int_t count = 0, first = 0, last = 0;
	json_t *batch = json_array();
	unsigned *linenos = xcalloc(CTL_BATCH, sizeof(*linenos));
	int status = 0;
	char why[512];

	while (getline(&line, &cap, stdin) >= 0) {
		lineno++;
		size_t len = strlen(line);
		if (len > 0 && line[len - 1] == '\n')
			line[len - 1] = '\0';
		int r = ctl_emit_line(line, why, sizeof(why));
		if (r == 0)
			continue;
		json_t *text = r > 0 ? json_string(line) : NULL;
		if (r > 0 && text == NULL)
			snprintf(why, sizeof(why), "not valid UTF-8");
		if (text == NULL) {
			fprintf(stderr, "ophookctl: stdin:%u: %s\n", lineno,
				why);
			status = 2;
			break;
		}
		linenos[json_array_size(batch)] = lineno;
		json_array_append_new(batch, text);
		if (json_array_size(batch) >= CTL_BATCH) {
			status = ctl_emit_send(ctl, batch, linenos, &count,
					       &first, &last);
			json_array_clear(batch);
			if (status != 0)
				break;
		}
	}
	if (status == 0 && json_array_size(batch) > 0)
		status = ctl_emit_send(ctl, batch, linenos, &count, &first,
				       &last);
	json_decref(batch);
	free(linenos);
	free(line);
	if (status != 0) {
		if (count > 0)
			fprintf(stderr, "ophookctl: %" JSON_INTEGER_FORMAT
				" events were emitted before the error (ids %"
				JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT
				")\n", count, first, last);
		return status;
	}
	if (ctl->json) {
		json_t *res = count > 0
			? json_pack("{s[II]sI}", "ids", first, last, "count",
				    count)
			: json_pack("{s[]sI}", "ids", "count", count);
		ctl_print_json(res, false);
		json_decref(res);
	} else if (count > 0) {
		printf("emitted %" JSON_INTEGER_FORMAT " event%s (ids %"
		       JSON_INTEGER_FORMAT "..%" JSON_INTEGER_FORMAT ")\n",
		       count, count == 1 ? "" : "s", first, last);
	} else {
		printf("no events on stdin\n");
	}
	return 0;
}

/* ---- guard: ask ophookd on behalf of an opencli pre hook ---- */

/* How long a guard hook waits for ophookd's pre hooks (opencli waits for
 * the hook): past this, ophookd "cannot answer". */
#define CTL_GUARD_TIMEOUT_S 30

/* guard_ask_fn: one `check` request on a new connection. */
static int ctl_guard_ask(void *vctx, json_t *args, json_t **result_r)
{
	struct ctl *ctl = vctx;
	struct timeval tv = { .tv_sec = CTL_GUARD_TIMEOUT_S };
	json_t *req, *ans;
	bool eof;
	int r;

	*result_r = NULL;
	if ((r = ctl_connect(ctl)) < 0)
		return r;
	(void)setsockopt(ctl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	req = json_pack("{sssOsbsb}", "cmd", "check", "args", args, "json", 1,
			"tty", 0);
	r = req != NULL ? ctl_send(ctl, req) : -ENOMEM;
	json_decref(req);
	ans = r < 0 ? NULL : ctl_recv(ctl, &eof);
	fclose(ctl->in);
	close(ctl->fd);
	ctl->in = NULL;
	ctl->fd = -1;
	if (r < 0)
		return r;
	if (ans == NULL)
		return eof ? -ECONNRESET : -ETIMEDOUT;
	json_t *res = json_object_get(ans, "result");

	if (!json_is_true(json_object_get(ans, "ok")) || !json_is_object(res)) {
		json_decref(ans);
		return -EPROTO;
	}
	*result_r = json_incref(res);
	json_decref(ans);
	return 0;
}

/* ---- main ---- */

/* The socket path: -s, else the config's, else the default.  *owned_r
 * gets what the caller frees. */
static int ctl_socket_path(const char *sock_opt, const char *config_opt,
			   const char **path_r, char **owned_r,
			   char ***fail_open_r, size_t *n_fail_open_r,
			   char **relay_r)
{
	*owned_r = NULL;
	*relay_r = NULL;
	*fail_open_r = NULL;
	*n_fail_open_r = 0;
	if (sock_opt != NULL) {
		*path_r = sock_opt;
		return 0;
	}
	const char *file = config_opt != NULL ? config_opt : CONFIG_DEFAULT_PATH;
	struct config *cfg = NULL;
	char *err = NULL;
	int r = config_load(file, &cfg, &err);
	if (r < 0) {
		if (config_opt != NULL) {
			fprintf(stderr, "ophookctl: %s\n",
				err != NULL ? err : strerror(-r));
			free(err);
			return -1;
		}
		/* no readable default config: the default socket */
		if (r != -ENOENT && r != -EACCES)
			fprintf(stderr, "ophookctl: warning: %s; using %s\n",
				err != NULL ? err : strerror(-r),
				CTL_DEFAULT_SOCKET);
		free(err);
		*path_r = CTL_DEFAULT_SOCKET;
		return 0;
	}
	free(err);
	if (cfg->socket != NULL && cfg->socket[0] != '\0') {
		*owned_r = strdup(cfg->socket);
		*path_r = *owned_r;
	} else {
		*path_r = CTL_DEFAULT_SOCKET;
	}
	/* checks.fail_open, for `guard install` */
	*fail_open_r = cfg->checks.fail_open;
	*n_fail_open_r = cfg->checks.n_fail_open;
	cfg->checks.fail_open = NULL;
	cfg->checks.n_fail_open = 0;
	/* checks.relay_socket, for `guard install` (the container's way) */
	if (cfg->checks.relay) {
		*relay_r = cfg->checks.relay_socket;
		cfg->checks.relay_socket = NULL;
	}
	config_free(&cfg);
	if (*path_r == NULL) {
		fprintf(stderr, "ophookctl: out of memory\n");
		return -1;
	}
	return 0;
}

/* `hooks test --payload FILE`: FILE's text as a JSON string (at most
 * 1 MiB), or NULL after a message. */
static json_t *ctl_payload_arg(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	size_t n;
	json_t *s;

	if (f == NULL) {
		fprintf(stderr, "ophookctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = xmalloc((1u << 20) + 1);
	n = fread(buf, 1, 1u << 20, f);
	if (ferror(f) || !feof(f)) {
		fprintf(stderr, "ophookctl: %s: %s\n", path,
			ferror(f) ? "read error" : "larger than 1 MiB");
		fclose(f);
		free(buf);
		return NULL;
	}
	fclose(f);
	s = json_stringn(buf, n);
	free(buf);
	if (s == NULL)
		fprintf(stderr, "ophookctl: %s: not UTF-8 text\n", path);
	return s;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock_opt = NULL, *config_opt = NULL;
	struct ctl ctl = { .fd = -1 };
	int opt;

	while ((opt = getopt_long(argc, argv, "+c:s:jhV", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'c':
			config_opt = optarg;
			break;
		case 's':
			sock_opt = optarg;
			break;
		case 'j':
			ctl.json = true;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		case 'V':
			printf("ophookctl %s\n", OPHOOK_VERSION);
			return 0;
		default:
			ctl_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		ctl_usage(stderr);
		return 2;
	}
	if (sock_opt != NULL && config_opt != NULL) {
		fprintf(stderr, "ophookctl: give -c or -s, not both\n");
		return 2;
	}
	const char *cmd = argv[optind];
	if (strcmp(cmd, "help") == 0) {
		if (optind + 1 < argc)
			return ctl_help_command(argc - optind - 1,
						argv + optind + 1);
		ctl_usage(stdout);
		return 0;
	}
	if (strcmp(cmd, "types") == 0) /* the catalogue: no daemon */
		return types_main(argc - optind, argv + optind, ctl.json);
	int status;

	ctl.tty = isatty(STDOUT_FILENO) == 1;
	signal(SIGPIPE, SIG_IGN);

	char *owned = NULL, **fail_open = NULL, *relay = NULL;
	size_t n_fail_open = 0;
	if (ctl_socket_path(sock_opt, config_opt, &ctl.socket, &owned,
			    &fail_open, &n_fail_open, &relay) < 0)
		return 2;
	if (strcmp(cmd, "guard") == 0) {
		/* connects only for `guard check`, once per question */
		struct guard_env env = { .socket = ctl.socket,
					 .ask = ctl_guard_ask,
					 .ask_ctx = &ctl,
					 .fail_open = (const char *const *)fail_open,
					 .n_fail_open = n_fail_open,
					 .relay_socket = relay };

		status = guard_main(&env, argc - optind, argv + optind);
		free(relay);
		for (size_t i = 0; i < n_fail_open; i++)
			free(fail_open[i]);
		free(fail_open);
		free(owned);
		return status;
	}
	for (size_t i = 0; i < n_fail_open; i++)
		free(fail_open[i]);
	free(fail_open);
	free(relay);
	if (ctl_connect(&ctl) < 0) {
		free(owned);
		return 2;
	}

	bool emit_stdin = strcmp(cmd, "emit") == 0 && argc - optind >= 2;
	for (int i = optind + 1; emit_stdin && i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			ctl.json = true;
		else if (strcmp(argv[i], "-") != 0 || i != argc - 1)
			emit_stdin = false;
	}
	if (emit_stdin && strcmp(argv[argc - 1], "-") == 0) {
		status = ctl_emit_stdin(&ctl);
	} else {
		json_t *args = json_array();
		bool dashdash = false;
		bool hooks_test = strcmp(cmd, "hooks") == 0 &&
				  optind + 1 < argc &&
				  strcmp(argv[optind + 1], "test") == 0;
		bool hooks_file = strcmp(cmd, "hooks") == 0 &&
				  optind + 1 < argc &&
				  (strcmp(argv[optind + 1], "test") == 0 ||
				   strcmp(argv[optind + 1], "lint") == 0);
		for (int i = optind + 1; i < argc; i++) {
			/* --json may also follow the command ("events
			 * --json"); after "--" every word is the command's */
			if (!dashdash && strcmp(argv[i], "--") == 0) {
				dashdash = true;
			} else if (!dashdash && strcmp(argv[i], "--json") == 0) {
				ctl.json = true;
				continue;
			}
			if (!dashdash && hooks_test &&
			    strcmp(argv[i], "--payload") == 0 && i + 1 < argc) {
				/* read here, with the caller's own rights: the
				 * daemon (root) reads no file for a client */
				json_t *pj = ctl_payload_arg(argv[++i]);

				if (pj == NULL) {
					json_decref(args);
					status = 2;
					goto out;
				}
				json_array_append_new(args,
						      json_string("--payload-json"));
				json_array_append_new(args, pj);
				continue;
			}
			json_t *a;
			if (!dashdash && hooks_file && argv[i][0] == '.' &&
			    (strncmp(argv[i], "./", 2) == 0 ||
			     strncmp(argv[i], "../", 3) == 0)) {
				/* a name in the working folder, said so: the
				 * daemon takes other relative names in
				 * hooks_dir */
				char *abs = realpath(argv[i], NULL);

				a = json_string(abs != NULL ? abs : argv[i]);
				free(abs);
			} else {
				a = json_string(argv[i]);
			}
			if (a == NULL) {
				fprintf(stderr, "ophookctl: argument %d is not "
					"valid UTF-8\n", i - optind);
				json_decref(args);
				status = 2;
				goto out;
			}
			json_array_append_new(args, a);
		}
		json_t *req = json_pack("{sssosbsb}", "cmd", cmd, "args", args,
					"json", ctl.json, "tty", ctl.tty);
		struct ctl_spinner sp = { .what = "reconciling" };
		bool spin = strcmp(cmd, "reconcile") == 0 && !ctl.json &&
			    isatty(STDERR_FILENO);

		atomic_init(&sp.stop, false);
		if (spin && pthread_create(&sp.thread, NULL, ctl_spin, &sp) != 0)
			spin = false;
		status = ctl_run(&ctl, req, strcmp(cmd, "tail") == 0);
		if (spin) {
			atomic_store(&sp.stop, true);
			pthread_join(sp.thread, NULL);
		}
		json_decref(req);
	}
out:
	fclose(ctl.in);
	close(ctl.fd);
	free(owned);
	if (fflush(stdout) != 0 && status == 0)
		status = 2;
	return status;
}
