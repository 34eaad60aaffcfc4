/* The built-in control commands: status, events, emit, tail, replay.
 * Every command answers with a JSON result and a human-readable text; the
 * client picks one. */
#define _GNU_SOURCE
#include "ctlcmds.h"
#include "emitline.h"
#include "engine.h"
#include "event.h"
#include "journal.h"
#include "log.h"
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CTL_BATCH_MAX 100000u     /* events in one batch emit */
#define CTL_TAIL_HISTORY 10000u   /* events tail --after / -n sends first */
#define CTL_DRAIN_MAX_MS 500u     /* batch answer held back for backpressure */

static __thread char ctl_errbuf[512];

static const char *ctl_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *ctl_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctl_errbuf, sizeof(ctl_errbuf), fmt, ap);
	va_end(ap);
	return ctl_errbuf;
}

static bool ctl_field_std(const char *k);

/* ---- a growing string ---- */

struct ctl_buf {
	char *s;
	size_t len, cap;
};

static void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
	va_list ap;

	for (;;) {
		size_t room = b->cap - b->len;
		va_start(ap, fmt);
		int n = vsnprintf(b->s != NULL ? b->s + b->len : NULL, room,
				  fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = xrealloc(b->s, b->cap);
	}
}

/* The text built so far (never NULL); the buffer is emptied. */
static char *ctl_buf_take(struct ctl_buf *b)
{
	char *s = b->s != NULL ? b->s : xstrdup("");

	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

/* ---- small parsers ---- */

/* Parse a positive integer in [min, max]. */
static bool ctl_parse_int(const char *s, int64_t min, int64_t max,
			  int64_t *v_r)
{
	char *end;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return false;
	*v_r = v;
	return true;
}

/* --since: an age ("90" seconds, "30s", "10m", "2h", "7d") or an ISO 8601
 * UTC time ("2026-01-02", "2026-01-02T03:04[:05[.678]]" with an optional
 * "Z" or "+HH:MM"/"-HH:MM" offset; no offset means UTC).  Returns ms since
 * the epoch. */
static bool ctl_parse_since(const char *s, int64_t now, int64_t *ms_r)
{
	char *end;

	if (s == NULL || s[0] == '\0')
		return false;
	if (isdigit((unsigned char)s[0]) && strchr(s, '-') == NULL) {
		errno = 0;
		long long n = strtoll(s, &end, 10);
		if (errno != 0 || n < 0)
			return false;
		int64_t unit;
		if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
			unit = 1000;
		else if (strcmp(end, "m") == 0)
			unit = 60 * 1000;
		else if (strcmp(end, "h") == 0)
			unit = 3600 * 1000;
		else if (strcmp(end, "d") == 0)
			unit = 86400 * 1000;
		else
			return false;
		if (n > INT64_MAX / unit)
			return false;
		*ms_r = now - n * unit;
		return true;
	}

	struct tm tm;
	memset(&tm, 0, sizeof(tm));
	const char *p = strptime(s, "%Y-%m-%d", &tm);
	if (p == NULL)
		return false;
	int64_t frac_ms = 0;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		const char *q = strptime(p + 1, "%H:%M", &tm);
		if (q == NULL)
			return false;
		p = q;
		if (*p == ':') {
			q = strptime(p + 1, "%S", &tm);
			if (q == NULL)
				return false;
			p = q;
			if (*p == '.') {
				int64_t scale = 100;
				p++;
				if (!isdigit((unsigned char)*p))
					return false;
				while (isdigit((unsigned char)*p)) {
					frac_ms += (*p - '0') * scale;
					scale /= 10;
					p++;
				}
			}
		}
	}
	int64_t offset_s = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;
		unsigned hh, mm;
		int n = 0;
		if (sscanf(p + 1, "%2u:%2u%n", &hh, &mm, &n) != 2 || n != 5 ||
		    hh > 23 || mm > 59)
			return false;
		offset_s = sign * (int64_t)(hh * 3600 + mm * 60);
		p += 6;
	}
	if (*p != '\0')
		return false;
	time_t t = timegm(&tm);
	*ms_r = ((int64_t)t - offset_s) * 1000 + frac_ms;
	return true;
}

/* ---- status ---- */

static void ctl_duration(struct ctl_buf *b, int64_t s)
{
	if (s >= 86400)
		ctl_buf_printf(b, "%" PRId64 "d %" PRId64 "h", s / 86400,
			       s % 86400 / 3600);
	else if (s >= 3600)
		ctl_buf_printf(b, "%" PRId64 "h %" PRId64 "m", s / 3600,
			       s % 3600 / 60);
	else if (s >= 60)
		ctl_buf_printf(b, "%" PRId64 "m %" PRId64 "s", s / 60, s % 60);
	else
		ctl_buf_printf(b, "%" PRId64 "s", s);
}

/* A value as text into b ("-" for null/missing, compact JSON for objects
 * and arrays). */
static void ctl_scalar(struct ctl_buf *b, json_t *v)
{
	if (json_is_string(v)) {
		ctl_buf_printf(b, "%s", json_string_value(v));
	} else if (json_is_integer(v)) {
		ctl_buf_printf(b, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
	} else if (json_is_real(v)) {
		ctl_buf_printf(b, "%g", json_real_value(v));
	} else if (json_is_true(v) || json_is_false(v)) {
		ctl_buf_printf(b, "%s", json_is_true(v) ? "yes" : "no");
	} else if (v == NULL || json_is_null(v)) {
		ctl_buf_printf(b, "-");
	} else {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		ctl_buf_printf(b, "%s", s != NULL ? s : "?");
		free(s);
	}
}

/* A value as a new string (ctl_scalar); caller frees. */
static char *ctl_scalar_str(json_t *v)
{
	struct ctl_buf b = { 0 };

	ctl_scalar(&b, v);
	return ctl_buf_take(&b);
}

/* "a, b, c" for an array of strings ("*" when empty). */
static char *ctl_join(json_t *arr)
{
	struct ctl_buf b = { 0 };
	json_t *v;
	size_t i;

	if (json_array_size(arr) == 0)
		return xstrdup("*");
	json_array_foreach(arr, i, v) {
		ctl_buf_printf(&b, "%s", i > 0 ? "," : "");
		ctl_scalar(&b, v);
	}
	return ctl_buf_take(&b);
}

#define CTL_HCOLS 9

/* The handler table: the engine's handlers (name, patterns, inflight) with
 * the journal's delivery counts per handler; handlers the journal knows
 * but the engine no longer runs are listed too. */
static void ctl_status_handlers(struct ctl_buf *b, json_t *handlers,
				json_t *counts)
{
	static const char *const head[CTL_HCOLS] = {
		"NAME", "PATTERNS", "INFLIGHT", "PENDING", "DONE", "FAILED",
		"DEAD", "DISCARDED", "LAG"
	};
	static const char *const states[5] = { "pending", "done", "failed",
					       "dead", "discarded" };
	size_t n = json_array_size(handlers) + json_object_size(counts);
	char *(*cell)[CTL_HCOLS] = xcalloc(n + 1, sizeof(*cell));
	size_t width[CTL_HCOLS], rows = 0;
	json_t *h;
	const char *k;
	size_t i;

	json_array_foreach(handlers, i, h) {
		const char *name = json_string_value(json_object_get(h, "name"));
		json_t *c = json_object_get(counts, name != NULL ? name : "");
		cell[rows][0] = xstrdup(name != NULL ? name : "-");
		cell[rows][1] = ctl_join(json_object_get(h, "patterns"));
		cell[rows][2] = ctl_scalar_str(json_object_get(h, "inflight"));
		for (unsigned s = 0; s < 5; s++)
			cell[rows][3 + s] = c != NULL
				? ctl_scalar_str(json_object_get(c, states[s]))
				: xstrdup("0");
		cell[rows][8] = xasprintf("%.1fs", (double)json_integer_value(
				json_object_get(h, "lag_ms")) / 1000.0);
		rows++;
	}
	json_object_foreach(counts, k, h) {
		bool known = false;
		json_array_foreach(handlers, i, h) {
			const char *name =
				json_string_value(json_object_get(h, "name"));
			known = known || (name != NULL && strcmp(name, k) == 0);
		}
		if (known)
			continue;
		h = json_object_get(counts, k);
		cell[rows][0] = xasprintf("%s (not loaded)", k);
		cell[rows][1] = xstrdup("-");
		cell[rows][2] = xstrdup("-");
		for (unsigned s = 0; s < 5; s++)
			cell[rows][3 + s] =
				ctl_scalar_str(json_object_get(h, states[s]));
		cell[rows][8] = xstrdup("-");
		rows++;
	}

	ctl_buf_printf(b, "handlers (%zu):\n", json_array_size(handlers));
	if (rows > 0) {
		for (unsigned c = 0; c < CTL_HCOLS; c++) {
			width[c] = strlen(head[c]);
			for (size_t r = 0; r < rows; r++) {
				if (strlen(cell[r][c]) > width[c])
					width[c] = strlen(cell[r][c]);
			}
		}
		ctl_buf_printf(b, " ");
		for (unsigned c = 0; c < CTL_HCOLS; c++)
			ctl_buf_printf(b, " %-*s",
				       c + 1 < CTL_HCOLS ? (int)width[c] : 0,
				       head[c]);
		ctl_buf_printf(b, "\n");
		for (size_t r = 0; r < rows; r++) {
			ctl_buf_printf(b, " ");
			for (unsigned c = 0; c < CTL_HCOLS; c++)
				ctl_buf_printf(b, " %-*s",
					       c + 1 < CTL_HCOLS ? (int)width[c]
								 : 0,
					       cell[r][c]);
			ctl_buf_printf(b, "\n");
		}
	}
	for (size_t r = 0; r < rows; r++) {
		for (unsigned c = 0; c < CTL_HCOLS; c++)
			free(cell[r][c]);
	}
	free(cell);
}

/* Is key one of the status fields shown in a dedicated line? */
static bool ctl_status_known(const char *k)
{
	static const char *const known[] = {
		"version", "node", "pid", "uptime_s", "incoming", "queued",
		"inflight", "journaled", "journal_ok", "journal_errors",
		"journal", "journal_error", "handlers", "plugins",
		"orphaned", "handlers_in_error", "alerts", NULL
	};
	for (unsigned i = 0; known[i] != NULL; i++) {
		if (strcmp(k, known[i]) == 0)
			return true;
	}
	return false;
}

/* The readable form of engine_status(). */
/* The derived alerts open now (alerts.enabled), one line each. */
static void ctl_status_alerts(struct ctl_buf *b, json_t *open)
{
	size_t i;
	json_t *v;

	ctl_buf_printf(b, "alerts:      %zu open%s\n", json_array_size(open),
		       json_array_size(open) > 0 ? ":" : "");
	json_array_foreach(open, i, v) {
		ctl_buf_printf(b, "  ");
		ctl_scalar(b, json_object_get(v, "alert"));
		ctl_buf_printf(b, " ");
		ctl_scalar(b, json_object_get(v, "subject"));
		ctl_buf_printf(b, ": ");
		ctl_scalar(b, json_object_get(v, "detail"));
		ctl_buf_printf(b, "\n");
	}
}

static char *ctl_status_text(json_t *st)
{
	struct ctl_buf b = { 0 };
	json_t *journal = json_object_get(st, "journal");
	json_t *deliveries = json_object_get(journal, "deliveries");
	const char *k;
	json_t *v;
	size_t i;

	ctl_buf_printf(&b, "ophookd %s",
		       json_string_value(json_object_get(st, "version")) ?: "?");
	const char *node = json_string_value(json_object_get(st, "node"));
	if (node != NULL)
		ctl_buf_printf(&b, " on %s", node);
	json_t *up = json_object_get(st, "uptime_s");
	if (json_is_number(up)) {
		ctl_buf_printf(&b, ", up ");
		ctl_duration(&b, (int64_t)json_number_value(up));
	}
	if (json_is_integer(json_object_get(st, "pid")))
		ctl_buf_printf(&b, " (pid %" JSON_INTEGER_FORMAT ")",
			       json_integer_value(json_object_get(st, "pid")));
	ctl_buf_printf(&b, "\n");

	if (json_object_get(st, "queued") != NULL ||
	    json_object_get(st, "incoming") != NULL) {
		ctl_buf_printf(&b, "queue:       ");
		ctl_scalar(&b, json_object_get(st, "incoming"));
		ctl_buf_printf(&b, " incoming, ");
		ctl_scalar(&b, json_object_get(st, "queued"));
		ctl_buf_printf(&b, " queued, ");
		ctl_scalar(&b, json_object_get(st, "inflight"));
		ctl_buf_printf(&b, " in flight\n");
	}
	if (journal != NULL || json_object_get(st, "journal_ok") != NULL) {
		ctl_buf_printf(&b, "journal:     %s, ",
			       json_is_false(json_object_get(st, "journal_ok"))
				       ? "FAILING" : "ok");
		ctl_scalar(&b, json_object_get(journal, "events"));
		ctl_buf_printf(&b, " events (last id ");
		ctl_scalar(&b, json_object_get(journal, "last_id"));
		ctl_buf_printf(&b, "), ");
		ctl_scalar(&b, json_object_get(st, "journaled"));
		ctl_buf_printf(&b, " journaled since start, ");
		ctl_scalar(&b, json_object_get(st, "journal_errors"));
		ctl_buf_printf(&b, " errors\n");
	}
	const char *jerr = json_string_value(json_object_get(st, "journal_error"));
	if (jerr != NULL)
		ctl_buf_printf(&b, "journal:     cannot count: %s\n", jerr);
	if (json_is_object(deliveries)) {
		bool first = true;
		ctl_buf_printf(&b, "deliveries: ");
		json_object_foreach(deliveries, k, v) {
			ctl_buf_printf(&b, "%s %s ", first ? "" : ",", k);
			ctl_scalar(&b, v);
			first = false;
		}
		ctl_buf_printf(&b, "\n");
	}
	json_t *plugins = json_object_get(st, "plugins");
	if (json_is_array(plugins)) {
		ctl_buf_printf(&b, "plugins:    ");
		if (json_array_size(plugins) == 0)
			ctl_buf_printf(&b, " none");
		json_array_foreach(plugins, i, v) {
			const char *state = json_string_value(
				json_object_get(v, "state"));

			ctl_buf_printf(&b, "%s ", i > 0 ? "," : "");
			ctl_scalar(&b, json_object_get(v, "name"));
			if (state != NULL && strcmp(state, "running") != 0)
				ctl_buf_printf(&b, " (%s)", state);
		}
		ctl_buf_printf(&b, "\n");
	}
	json_t *herr = json_object_get(st, "handlers_in_error");
	if (json_array_size(herr) > 0) {
		ctl_buf_printf(&b, "in error:    %zu handler%s:\n",
			       json_array_size(herr),
			       json_array_size(herr) == 1 ? "" : "s");
		json_array_foreach(herr, i, v) {
			const char *err = json_string_value(
				json_object_get(v, "error"));
			char line[200];

			/* the first line of the message */
			snprintf(line, sizeof(line), "%s", err != NULL ? err : "");
			line[strcspn(line, "\n")] = '\0';
			ctl_buf_printf(&b, "  ");
			ctl_scalar(&b, json_object_get(v, "name"));
			ctl_buf_printf(&b, " (");
			ctl_scalar(&b, json_object_get(v, "state"));
			ctl_buf_printf(&b, ")%s%s\n", line[0] ? ": " : "", line);
		}
	}
	json_t *orph = json_object_get(st, "orphaned");
	if (orph != NULL) {
		json_t *names = json_object_get(orph, "handlers");
		ctl_buf_printf(&b, "orphaned:    %" JSON_INTEGER_FORMAT
			       " deliveries of %zu handler%s that no longer "
			       "exist: ",
			       json_integer_value(json_object_get(orph,
								  "deliveries")),
			       json_array_size(names),
			       json_array_size(names) == 1 ? "" : "s");
		json_array_foreach(names, i, v) {
			ctl_buf_printf(&b, "%s", i > 0 ? ", " : "");
			ctl_scalar(&b, v);
		}
		ctl_buf_printf(&b, " (discard --handler H)\n");
	}
	json_t *alerts = json_object_get(st, "alerts");
	if (json_is_object(alerts))
		ctl_status_alerts(&b, json_object_get(alerts, "open"));
	/* anything newer versions add */
	json_object_foreach(st, k, v) {
		if (ctl_status_known(k))
			continue;
		ctl_buf_printf(&b, "%-12s ", k);
		ctl_scalar(&b, v);
		ctl_buf_printf(&b, "\n");
	}
	json_t *handlers = json_object_get(st, "handlers");
	if (json_is_array(handlers))
		ctl_status_handlers(&b, handlers,
				    json_object_get(journal, "handlers"));
	return ctl_buf_take(&b);
}

static void ctl_cmd_status(struct control_reply *reply, json_t *args,
			   json_t *req, void *ctx)
{
	struct engine *e = ctx;

	(void)req;
	if (json_array_size(args) > 0) {
		control_reply_error(&reply, 2, "status takes no arguments");
		return;
	}
	json_t *st = engine_status(e);
	if (st == NULL) {
		control_reply_error(&reply, 2, "no status available");
		return;
	}
	char *text = ctl_status_text(st);
	control_reply_ok(&reply, st, text, 0);
	free(text);
}

/* ---- events ---- */

struct ctl_events_opts {
	struct journal_filter f;
	int64_t id;           /* events ID: one event in detail */
	char *state;          /* owned copy (f.state points here) */
};

/* Parse the options of `events`; NULL when fine, else the message. */
static const char *ctl_events_parse(json_t *args, int64_t now,
				    struct ctl_events_opts *o)
{
	size_t n = json_array_size(args);

	memset(o, 0, sizeof(*o));
	for (size_t i = 0; i < n; i++) {
		const char *a = json_string_value(json_array_get(args, i));
		const char *val = NULL;
		char opt[32];

		if (a[0] != '-') {
			if (o->id != 0)
				return ctl_err("events: unexpected argument '%s'",
					       a);
			if (!ctl_parse_int(a, 1, INT64_MAX, &o->id))
				return ctl_err("events: '%s' is not an event id "
					       "(or an option)", a);
			continue;
		}
		const char *eq = strchr(a, '=');
		if (eq != NULL && (size_t)(eq - a) < sizeof(opt)) {
			memcpy(opt, a, (size_t)(eq - a));
			opt[eq - a] = '\0';
			val = eq + 1;
		} else {
			snprintf(opt, sizeof(opt), "%s", strcmp(a, "-n") == 0
							 ? "--limit" : a);
		}
		if (strcmp(opt, "--type") != 0 && strcmp(opt, "--subject") != 0 &&
		    strcmp(opt, "--state") != 0 && strcmp(opt, "--since") != 0 &&
		    strcmp(opt, "--limit") != 0 && strcmp(opt, "--after") != 0 &&
		    strcmp(opt, "--until") != 0 && strcmp(opt, "--before") != 0 &&
		    strcmp(opt, "--user") != 0)
			return ctl_err("events: unknown option '%s' (options: "
				       "--type T --subject S --user U "
				       "--state STATE --since TIME|AGE "
				       "--until TIME|AGE --limit|-n N "
				       "--after ID --before ID)",
				       a);
		if (val == NULL) {
			if (i + 1 >= n)
				return ctl_err("events: %s needs a value", opt);
			val = json_string_value(json_array_get(args, ++i));
		}
		if (strcmp(opt, "--type") == 0) {
			o->f.type = val;
		} else if (strcmp(opt, "--subject") == 0) {
			o->f.subject = val;
		} else if (strcmp(opt, "--user") == 0) {
			o->f.user = val;
		} else if (strcmp(opt, "--until") == 0) {
			if (!ctl_parse_since(val, now, &o->f.until_ms))
				return ctl_err("events: --until '%s': not a "
					       "time (2026-01-02T03:04:05Z) "
					       "nor an age (90, 30s, 10m, 2h, "
					       "7d)", val);
		} else if (strcmp(opt, "--before") == 0) {
			if (!ctl_parse_int(val, 1, INT64_MAX, &o->f.before_id))
				return ctl_err("events: --before '%s': not an "
					       "event id", val);
		} else if (strcmp(opt, "--state") == 0) {
			enum delivery_state st;
			if (delivery_state_parse(val, &st) < 0)
				return ctl_err("events: --state '%s': not one "
					       "of pending, done, failed, dead, "
					       "discarded",
					       val);
			o->f.state = val;
		} else if (strcmp(opt, "--since") == 0) {
			if (!ctl_parse_since(val, now, &o->f.since_ms))
				return ctl_err("events: --since '%s': not a "
					       "time (2026-01-02T03:04:05Z) "
					       "nor an age (90, 30s, 10m, 2h, "
					       "7d)", val);
		} else if (strcmp(opt, "--limit") == 0) {
			int64_t v;
			if (!ctl_parse_int(val, 1, 1000000, &v))
				return ctl_err("events: --limit '%s': not a "
					       "number from 1 to 1000000", val);
			o->f.limit = (unsigned)v;
		} else {
			if (!ctl_parse_int(val, 0, INT64_MAX, &o->f.after_id))
				return ctl_err("events: --after '%s': not an "
					       "event id", val);
		}
	}
	return NULL;
}

/* "2026-01-02T03:04:05.678Z" from a row's time (ms or already a string). */
static void ctl_time_text(json_t *row, char *buf, size_t size)
{
	json_t *t = json_object_get(row, "time");

	if (json_is_integer(t)) {
		time_format_ms(json_integer_value(t), buf, size);
	} else if (json_is_string(t)) {
		snprintf(buf, size, "%s", json_string_value(t));
	} else {
		json_t *ms = json_object_get(row, "time_ms");
		if (json_is_integer(ms))
			time_format_ms(json_integer_value(ms), buf, size);
		else
			snprintf(buf, size, "-");
	}
}

/* Delivery states of a row: "done", "2 done, 1 failed", "-". */
static void ctl_states_text(json_t *row, struct ctl_buf *b)
{
	static const char *const names[] = { "pending", "done", "failed",
					     "dead", "discarded" };
	unsigned count[5] = { 0 }, other = 0;
	json_t *d;
	size_t i;

	json_array_foreach(json_object_get(row, "deliveries"), i, d) {
		enum delivery_state st;
		const char *s = json_string_value(json_object_get(d, "state"));
		if (s != NULL && delivery_state_parse(s, &st) == 0 &&
		    (unsigned)st < 5)
			count[st]++;
		else
			other++;
	}
	unsigned kinds = 0, total = other;
	for (unsigned k = 0; k < 5; k++) {
		kinds += count[k] > 0;
		total += count[k];
	}
	if (total == 0) {
		ctl_buf_printf(b, "-");
		return;
	}
	if (kinds == 1 && other == 0) {
		for (unsigned k = 0; k < 5; k++) {
			if (count[k] > 0)
				ctl_buf_printf(b, "%s", names[k]);
		}
		return;
	}
	bool first = true;
	for (unsigned k = 0; k < 5; k++) {
		if (count[k] == 0)
			continue;
		ctl_buf_printf(b, "%s%u %s", first ? "" : ", ", count[k],
			       names[k]);
		first = false;
	}
	if (other > 0)
		ctl_buf_printf(b, "%s%u other", first ? "" : ", ", other);
}

/* The table ID TIME TYPE SUBJECT STATE for a journal_query result. */
static char *ctl_events_text(json_t *rows)
{
	struct ctl_buf b = { 0 };
	size_t n = json_array_size(rows);
	size_t wid = 2, wtime = 4, wtype = 4, wsubj = 7;
	json_t *row;
	size_t i;
	char tbuf[64];

	if (n == 0)
		return xstrdup("no events\n");
	json_array_foreach(rows, i, row) {
		char idb[32];
		snprintf(idb, sizeof(idb), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(json_object_get(row, "id")));
		ctl_time_text(row, tbuf, sizeof(tbuf));
		const char *type = json_string_value(json_object_get(row, "type"));
		const char *subj =
			json_string_value(json_object_get(row, "subject"));
		if (strlen(idb) > wid)
			wid = strlen(idb);
		if (strlen(tbuf) > wtime)
			wtime = strlen(tbuf);
		if (type != NULL && strlen(type) > wtype)
			wtype = strlen(type);
		if (subj != NULL && strlen(subj) > wsubj)
			wsubj = strlen(subj);
	}
	ctl_buf_printf(&b, "%*s  %-*s  %-*s  %-*s  %s\n", (int)wid, "ID",
		       (int)wtime, "TIME", (int)wtype, "TYPE", (int)wsubj,
		       "SUBJECT", "STATE");
	json_array_foreach(rows, i, row) {
		const char *type = json_string_value(json_object_get(row, "type"));
		const char *subj =
			json_string_value(json_object_get(row, "subject"));
		ctl_time_text(row, tbuf, sizeof(tbuf));
		ctl_buf_printf(&b, "%*" JSON_INTEGER_FORMAT "  %-*s  %-*s  %-*s  ",
			       (int)wid,
			       json_integer_value(json_object_get(row, "id")),
			       (int)wtime, tbuf, (int)wtype,
			       type != NULL ? type : "-", (int)wsubj,
			       subj != NULL ? subj : "-");
		ctl_states_text(row, &b);
		ctl_buf_printf(&b, "\n");
	}
	return ctl_buf_take(&b);
}

/* One event in detail (journal_get_event's object). */
static char *ctl_event_text(json_t *ev)
{
	struct ctl_buf b = { 0 };
	char tbuf[64];
	const char *k;
	json_t *v;
	size_t i;

	ctl_time_text(ev, tbuf, sizeof(tbuf));
	ctl_buf_printf(&b, "event %" JSON_INTEGER_FORMAT ": %s %s\n",
		       json_integer_value(json_object_get(ev, "id")),
		       json_string_value(json_object_get(ev, "type")) ?: "-",
		       json_string_value(json_object_get(ev, "subject")) ?: "-");
	ctl_buf_printf(&b, "  time     %s\n", tbuf);
	ctl_buf_printf(&b, "  source   %s\n",
		       json_string_value(json_object_get(ev, "source")) ?: "-");
	ctl_buf_printf(&b, "  node     %s\n",
		       json_string_value(json_object_get(ev, "node")) ?: "-");
	json_t *payload = json_object_get(ev, "payload");
	if (json_is_object(payload)) {
		ctl_buf_printf(&b, "payload:\n");
		json_object_foreach(payload, k, v) {
			if (ctl_field_std(k))
				continue; /* shown above */
			ctl_buf_printf(&b, "  %-16s ", k);
			ctl_scalar(&b, v);
			ctl_buf_printf(&b, "\n");
		}
	}
	json_t *ds = json_object_get(ev, "deliveries");
	ctl_buf_printf(&b, "deliveries (%zu):\n", json_array_size(ds));
	json_array_foreach(ds, i, v) {
		ctl_buf_printf(&b, "  %-28s %-8s attempts ",
			       json_string_value(json_object_get(v, "handler")) ?: "-",
			       json_string_value(json_object_get(v, "state")) ?: "-");
		ctl_scalar(&b, json_object_get(v, "attempts"));
		const char *live = json_string_value(json_object_get(v, "live"));
		if (live != NULL)
			ctl_buf_printf(&b, " (%s)", live);
		const char *err = json_string_value(json_object_get(v, "last_error"));
		if (err != NULL && err[0] != '\0')
			ctl_buf_printf(&b, "  error: %s", err);
		ctl_buf_printf(&b, "\n");
		size_t ai;
		json_t *at;
		json_array_foreach(json_object_get(v, "attempts_log"), ai, at) {
			char abuf[40];
			const char *aerr = json_string_value(
				json_object_get(at, "error"));

			time_format_ms(json_integer_value(json_object_get(
					       at, "started_ms")),
				       abuf, sizeof(abuf));
			ctl_buf_printf(&b, "    attempt %" JSON_INTEGER_FORMAT
				       "  %s  %" JSON_INTEGER_FORMAT " us  %s\n",
				       json_integer_value(json_object_get(
					       at, "attempt")),
				       abuf,
				       json_integer_value(json_object_get(
					       at, "duration_us")),
				       aerr != NULL ? aerr : "ok");
		}
	}
	return ctl_buf_take(&b);
}

/* Add "live" (what the engine is doing with it now: running, ready,
 * backoff, queued, backlog) to each pending or failed delivery of ev: the
 * journal row says when a retry is due, not whether it waits for a slot. */
static void ctl_event_live(struct engine *e, json_t *ev)
{
	const char *subject = json_string_value(json_object_get(ev, "subject"));
	json_int_t id = json_integer_value(json_object_get(ev, "id"));
	size_t i;
	json_t *d;

	json_array_foreach(json_object_get(ev, "deliveries"), i, d) {
		const char *state = json_string_value(json_object_get(d, "state"));
		struct journal_delivery jd = { .state = DELIVERY_PENDING };
		const char *live;

		if (state == NULL || strcmp(state, "done") == 0 ||
		    strcmp(state, "discarded") == 0)
			continue;
		live = engine_delivery_live(
			e, json_string_value(json_object_get(d, "handler")),
			json_string_value(json_object_get(d, "node")), subject,
			id, &jd);
		/* a dead delivery is never live, but may be orphaned */
		if (live == NULL ||
		    (strcmp(state, "dead") == 0 &&
		     strcmp(live, "orphaned") != 0))
			continue;
		json_object_set_new(d, "live", json_string(live));
		if (strcmp(live, "backlog") == 0 ||
		    strcmp(live, "orphaned") == 0)
			continue;
		/* the journal is written in batches: memory is newer */
		json_object_set_new(d, "state", json_string(delivery_state_name(jd.state)));
		json_object_set_new(d, "attempts", json_integer(jd.attempts));
		json_object_set_new(d, "next_ms", json_integer(jd.next_ms));
	}
}

static void ctl_cmd_events(struct control_reply *reply, json_t *args,
			   json_t *req, void *ctx)
{
	struct engine *e = ctx;
	struct ctl_events_opts o;
	const char *err;

	(void)req;
	if ((err = ctl_events_parse(args, now_ms(), &o)) != NULL) {
		control_reply_error(&reply, 2, "%s", err);
		return;
	}
	struct journal *j = engine_journal(e);
	if (j == NULL) {
		control_reply_error(&reply, 2, "the journal is not open");
		return;
	}
	if (o.id != 0) {
		json_t *ev = NULL;
		const char *jerr = NULL;
		int r = journal_get_event(j, o.id, &ev, &jerr);
		if (r == -ENOENT) {
			control_reply_error(&reply, 1, "no event %" PRId64, o.id);
		} else if (r < 0) {
			control_reply_error(&reply, 2, "journal: %s",
					    jerr != NULL ? jerr : strerror(-r));
		} else {
			ctl_event_live(e, ev);
			char *text = ctl_event_text(ev);
			control_reply_ok(&reply, ev, text, 0);
			free(text);
		}
		return;
	}
	json_t *rows = NULL;
	const char *jerr = NULL;
	int r = journal_query(j, &o.f, &rows, &jerr);
	if (r < 0) {
		control_reply_error(&reply, 2, "journal: %s",
				    jerr != NULL ? jerr : strerror(-r));
		return;
	}
	size_t i;
	json_t *ev;
	json_array_foreach(rows, i, ev)
		ctl_event_live(e, ev);
	char *text = ctl_events_text(rows);
	control_reply_ok(&reply, rows, text, 0);
	free(text);
}

/* ---- emit ---- */

/* The standard fields of every event (event.c), shown in the header of
 * `events ID`. */
static bool ctl_field_std(const char *k)
{
	static const char *const std[] = { "id", "type", "time", "source",
					   "subject", "node", NULL };
	for (unsigned i = 0; std[i] != NULL; i++) {
		if (strcmp(k, std[i]) == 0)
			return true;
	}
	return false;
}

/* Fields the engine sets itself, refused from every client in every emit
 * form: the standard ones, emitted_by (ophook.emit: a hook never sees the
 * events it emitted itself, so a forged one would hide an event from that
 * hook) and replay_of (engine_replay). */
static bool ctl_field_reserved(const char *k)
{
	return ctl_field_std(k) || strcmp(k, "emitted_by") == 0 ||
	       strcmp(k, "replay_of") == 0;
}

/* Check the fields of an emitted event: no standard field, and a domain or
 * user that is a valid name (they end up in paths).  NULL when fine. */
static const char *ctl_fields_check(json_t *fields)
{
	static __thread char msg[384];
	const char *k, *why = NULL;
	json_t *v;

	json_object_foreach(fields, k, v) {
		if (ctl_field_reserved(k)) {
			snprintf(msg, sizeof(msg), "field '%s' is set by the "
				 "engine", k);
			return msg;
		}
		if (strcmp(k, "domain") != 0 && strcmp(k, "user") != 0)
			continue;
		const char *name = json_string_value(v);
		if (name == NULL) {
			snprintf(msg, sizeof(msg), "field '%s' must be a "
				 "string", k);
			return msg;
		}
		bool ok = k[0] == 'd' ? name_valid_domain(name, &why)
				      : name_valid_user(name, &why);
		if (!ok) {
			snprintf(msg, sizeof(msg), "%s '%.200s': %s", k, name,
				 why != NULL ? why : "invalid");
			return msg;
		}
	}
	return NULL;
}

/* The subject of an event without one: its domain, else its user, else
 * the type. */
static const char *ctl_default_subject(const char *type, json_t *fields)
{
	const char *s = json_string_value(json_object_get(fields, "domain"));

	if (s == NULL || s[0] == '\0')
		s = json_string_value(json_object_get(fields, "user"));
	if (s == NULL || s[0] == '\0')
		s = type;
	return s;
}

/* Parse `emit TYPE [SUBJECT] key=value...`.  *fields_r gets a new object
 * (values as strings); *subject_r points into args or fields.  NULL when
 * fine, else the message. */
static const char *ctl_emit_parse(json_t *args, const char **type_r,
				  const char **subject_r, json_t **fields_r)
{
	size_t n = json_array_size(args);
	size_t i = 1;
	const char *subject = NULL;

	*fields_r = NULL;
	if (n == 0)
		return "emit: usage: emit TYPE [SUBJECT] key=value...";
	const char *type = json_string_value(json_array_get(args, 0));
	if (n > 1) {
		const char *a = json_string_value(json_array_get(args, 1));
		if (strchr(a, '=') == NULL) {
			subject = a;
			i = 2;
		}
	}
	json_t *fields = json_object();
	for (; i < n; i++) {
		const char *a = json_string_value(json_array_get(args, i));
		const char *eq = strchr(a, '=');
		if (eq == NULL) {
			json_decref(fields);
			return ctl_err("emit: '%s' is not key=value", a);
		}
		if (eq == a) {
			json_decref(fields);
			return ctl_err("emit: '%s' has an empty key", a);
		}
		char *key = xstrndup(a, (size_t)(eq - a));
		json_t *v = json_string(eq + 1);
		if (v == NULL) {
			free(key);
			json_decref(fields);
			return ctl_err("emit: the value of '%.*s' is not "
				       "valid UTF-8", (int)(eq - a), a);
		}
		json_object_set_new(fields, key, v);
		free(key);
	}
	const char *why = ctl_fields_check(fields);
	if (why != NULL) {
		json_decref(fields);
		return ctl_err("emit: %s", why);
	}
	*type_r = type;
	*subject_r = subject != NULL ? subject : ctl_default_subject(type, fields);
	*fields_r = fields;
	return NULL;
}

static void ctl_emit_cb(struct event *ev, const char *error, void *ctx)
{
	struct control_reply *reply = ctx;

	if (ev == NULL) {
		control_reply_error(&reply, 2, "event not journaled: %s",
				    error != NULL ? error : "unknown error");
		return;
	}
	char text[64];
	snprintf(text, sizeof(text), "emitted event %" PRId64 "\n", ev->pub.id);
	json_t *res = json_pack("{sI}", "id", (json_int_t)ev->pub.id);
	control_reply_ok(&reply, res, text, 0);
}

struct ctl_batch {
	struct engine *e;
	struct control_reply *reply;
	size_t n;               /* events in the request */
	size_t outstanding;     /* submitted, not yet called back */
	size_t journaled;
	int64_t first, last;
	char *error;            /* the first error */
	bool submitting;
};

static void ctl_batch_answer(void *ctx)
{
	struct ctl_batch *b = ctx;

	if (b->error != NULL) {
		control_reply_error(&b->reply, 2, "%s (%zu of %zu events "
				    "journaled)", b->error, b->journaled, b->n);
	} else {
		char text[128];
		snprintf(text, sizeof(text), "emitted %zu event%s (ids %" PRId64
			 "..%" PRId64 ")\n", b->journaled,
			 b->journaled == 1 ? "" : "s", b->first, b->last);
		json_t *res = json_pack("{s[II]sI}", "ids", (json_int_t)b->first,
					(json_int_t)b->last, "count",
					(json_int_t)b->journaled);
		control_reply_ok(&b->reply, res, text, 0);
	}
	free(b->error);
	free(b);
}

/* Everything journaled: answer once the delivery queue has room (at most
 * CTL_DRAIN_MAX_MS later), so that a client sending batch after batch
 * goes at the handlers' pace instead of pushing the engine into its
 * journal-only spill (which reads every event back). */
static void ctl_batch_finish(struct ctl_batch *b)
{
	if (b->error != NULL)
		ctl_batch_answer(b);
	else
		engine_when_drained(b->e, CTL_DRAIN_MAX_MS, ctl_batch_answer,
				    b);
}

static void ctl_batch_cb(struct event *ev, const char *error, void *ctx)
{
	struct ctl_batch *b = ctx;

	b->outstanding--;
	if (ev != NULL) {
		int64_t id = ev->pub.id;
		if (b->journaled == 0 || id < b->first)
			b->first = id;
		if (b->journaled == 0 || id > b->last)
			b->last = id;
		b->journaled++;
	} else if (b->error == NULL) {
		b->error = xasprintf("event not journaled: %s",
				     error != NULL ? error : "unknown error");
	}
	if (!b->submitting && b->outstanding == 0)
		ctl_batch_finish(b);
}

/* Check the "events" array of a batch emit; NULL when fine. */
static const char *ctl_batch_check(json_t *events)
{
	json_t *ev;
	size_t i;

	if (!json_is_array(events))
		return "emit: \"events\" must be an array of objects";
	if (json_array_size(events) == 0)
		return "emit: \"events\" is empty";
	if (json_array_size(events) > CTL_BATCH_MAX)
		return ctl_err("emit: more than %u events in one batch",
			       CTL_BATCH_MAX);
	json_array_foreach(events, i, ev) {
		if (!json_is_object(ev))
			return ctl_err("emit: events[%zu] is not an object", i);
		if (!json_is_string(json_object_get(ev, "type")))
			return ctl_err("emit: events[%zu] has no \"type\" "
				       "string", i);
		const char *key;
		json_t *kv;
		json_object_foreach(ev, key, kv) {
			if (strcmp(key, "type") != 0 &&
			    strcmp(key, "subject") != 0 &&
			    strcmp(key, "fields") != 0)
				return ctl_err("emit: events[%zu]: key '%.64s' "
					       "%s (only type, subject, "
					       "fields)", i, key,
					       ctl_field_reserved(key)
						       ? "is set by the engine"
						       : "is unknown");
		}
		json_t *s = json_object_get(ev, "subject");
		if (s != NULL && !json_is_null(s) && !json_is_string(s))
			return ctl_err("emit: events[%zu]: \"subject\" must be "
				       "a string", i);
		json_t *f = json_object_get(ev, "fields");
		if (f != NULL && !json_is_null(f) && !json_is_object(f))
			return ctl_err("emit: events[%zu]: \"fields\" must be "
				       "an object", i);
		const char *why = ctl_fields_check(f);
		if (why != NULL)
			return ctl_err("emit: events[%zu]: %s", i, why);
	}
	return NULL;
}

/* One event of a batch emit, ready for engine_submit. */
struct ctl_emit_item {
	char *type, *subject;
	json_t *fields; /* NULL once the engine took it */
};

static void ctl_emit_items_free(struct ctl_emit_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(items[i].fields);
		free(items[i].type);
		free(items[i].subject);
	}
	free(items);
}

/* Submit n prepared events (takes the items; answers reply once all are
 * journaled or one failed). */
static void ctl_emit_submit(struct engine *e, struct control_reply *reply,
			    struct ctl_emit_item *items, size_t n)
{
	struct ctl_batch *b = xcalloc(1, sizeof(*b));
	const char *err = NULL;

	b->e = e;
	b->reply = reply;
	b->n = n;
	b->submitting = true;
	for (size_t i = 0; i < n; i++) {
		b->outstanding++;
		int r = engine_submit(e, items[i].type, items[i].subject,
				      "socket", items[i].fields, ctl_batch_cb,
				      b, &err);
		items[i].fields = NULL;
		if (r < 0) {
			b->outstanding--;
			b->error = xasprintf("events[%zu] (%s): %s", i,
					     items[i].type, err != NULL ? err
					     : strerror(-r));
			break;
		}
	}
	ctl_emit_items_free(items, n);
	b->submitting = false;
	if (b->outstanding == 0)
		ctl_batch_finish(b);
}

static void ctl_emit_batch(struct engine *e, struct control_reply *reply,
			   json_t *events)
{
	const char *err = ctl_batch_check(events);
	if (err != NULL) {
		control_reply_error(&reply, 2, "%s", err);
		return;
	}
	size_t n = json_array_size(events);
	struct ctl_emit_item *items = xcalloc(n, sizeof(*items));
	json_t *ev;
	size_t i;

	json_array_foreach(events, i, ev) {
		const char *type = json_string_value(json_object_get(ev, "type"));
		json_t *f = json_object_get(ev, "fields");
		/* the request is dropped after this command: the engine may
		 * take the fields object itself (no deep copy) */
		json_t *fields = json_is_object(f) ? json_incref(f)
						    : json_object();
		const char *subject =
			json_string_value(json_object_get(ev, "subject"));

		items[i].fields = fields;
		items[i].type = xstrdup(type);
		items[i].subject = xstrdup(subject != NULL ? subject
				   : ctl_default_subject(type, fields));
	}
	ctl_emit_submit(e, reply, items, n);
}

/* The "lines" form: "TYPE [SUBJECT] key=value..." texts, as `ophookctl
 * emit -` reads them (see emitline.h).  Checked all first, like "events":
 * nothing is submitted from a batch with a bad line. */
static void ctl_emit_lines(struct engine *e, struct control_reply *reply,
			   json_t *lines)
{
	size_t n = json_array_size(lines), cap = 0;
	struct emitline *el;
	struct ctl_emit_item *items;
	char *buf = NULL;
	const char *why = NULL;
	size_t i;

	if (!json_is_array(lines) || n == 0 || n > CTL_BATCH_MAX) {
		control_reply_error(&reply, 2, "emit: \"lines\" must be an "
				    "array of 1 to %u strings", CTL_BATCH_MAX);
		return;
	}
	el = xmalloc(sizeof(*el));
	items = xcalloc(n, sizeof(*items));
	for (i = 0; i < n; i++) {
		json_t *l = json_array_get(lines, i);
		size_t len = json_string_length(l);
		int r;

		if (!json_is_string(l)) {
			why = "not a string";
			break;
		}
		if (len + 1 > cap) {
			cap = len + 1 > 256 ? len + 1 : 256;
			buf = xrealloc(buf, cap);
		}
		memcpy(buf, json_string_value(l), len + 1);
		r = emitline_parse(buf, el, &why);
		if (r == 0)
			why = "no event on the line";
		if (r <= 0 || event_type_valid(el->type, &why) < 0)
			break;
		items[i].fields = emitline_fields(el);
		why = ctl_fields_check(items[i].fields);
		if (why != NULL)
			break;
		items[i].type = xstrdup(el->type);
		items[i].subject = xstrdup(el->subject != NULL ? el->subject
				   : ctl_default_subject(el->type,
							 items[i].fields));
	}
	free(buf);
	free(el);
	if (i < n) {
		control_reply_error(&reply, 2, "emit: lines[%zu]: %s", i, why);
		ctl_emit_items_free(items, n);
		return;
	}
	ctl_emit_submit(e, reply, items, n);
}

static void ctl_cmd_emit(struct control_reply *reply, json_t *args,
			 json_t *req, void *ctx)
{
	struct engine *e = ctx;
	const char *type = NULL, *subject = NULL, *err = NULL;
	json_t *fields = NULL;

	json_t *lines = json_object_get(req, "lines");
	if (lines != NULL) {
		if (json_array_size(args) > 0 ||
		    json_object_get(req, "events") != NULL) {
			control_reply_error(&reply, 2, "emit: give one of "
					    "arguments, \"events\" or "
					    "\"lines\"");
			return;
		}
		ctl_emit_lines(e, reply, lines);
		return;
	}
	json_t *events = json_object_get(req, "events");
	if (events != NULL) {
		if (json_array_size(args) > 0) {
			control_reply_error(&reply, 2, "emit: give either "
					    "arguments or \"events\", not both");
			return;
		}
		ctl_emit_batch(e, reply, events);
		return;
	}
	if ((err = ctl_emit_parse(args, &type, &subject, &fields)) != NULL) {
		control_reply_error(&reply, 2, "%s", err);
		return;
	}
	/* subject may point into fields, which the engine takes */
	char *subj = xstrdup(subject);
	int r = engine_submit(e, type, subj, "socket", fields, ctl_emit_cb,
			      reply, &err);
	free(subj);
	if (r < 0)
		control_reply_error(&reply, 2, "emit: %s",
				    err != NULL ? err : strerror(-r));
}

/* ---- tail ---- */

struct ctl_tail {
	struct engine *e;
	struct control_reply *reply;
	void *listen;
	char *pattern;
};

static void ctl_tail_event(struct event *ev, void *ctx)
{
	struct ctl_tail *t = ctx;

	if (t->reply == NULL || control_reply_gone(t->reply))
		return; /* the gone callback cleans up */
	if (t->pattern != NULL && !pattern_match(t->pattern, ev->type))
		return;
	control_reply_stream(t->reply, ev->payload);
}

static void ctl_tail_gone(struct control_reply *reply, void *ctx)
{
	struct ctl_tail *t = ctx;

	(void)reply;
	engine_unlisten(t->e, &t->listen);
	control_reply_end(&t->reply);
	free(t->pattern);
	free(t);
}

/* Send the journal's events first (tail --after ID / -n N). */
static const char *ctl_tail_history(struct ctl_tail *t,
				    const struct journal_filter *f)
{
	struct journal *j = engine_journal(t->e);
	json_t *rows = NULL, *row;
	const char *err = NULL;
	size_t i;

	if (j == NULL)
		return "the journal is not open";
	int r = journal_query(j, f, &rows, &err);
	if (r < 0)
		return ctl_err("journal: %s", err != NULL ? err : strerror(-r));
	json_array_foreach(rows, i, row) {
		json_t *p = json_object_get(row, "payload");
		if (p != NULL)
			control_reply_stream(t->reply, p);
	}
	json_decref(rows);
	return NULL;
}

static void ctl_cmd_tail(struct control_reply *reply, json_t *args,
			 json_t *req, void *ctx)
{
	struct engine *e = ctx;
	struct journal_filter f = { .limit = 0 };
	const char *pattern = NULL;
	bool history = false;
	size_t n = json_array_size(args);

	(void)req;
	for (size_t i = 0; i < n; i++) {
		const char *a = json_string_value(json_array_get(args, i));
		const char *v = i + 1 < n
			? json_string_value(json_array_get(args, i + 1)) : NULL;
		int64_t num;
		if (strcmp(a, "--type") == 0 && v != NULL) {
			pattern = v;
			i++;
		} else if (strcmp(a, "--after") == 0 && v != NULL) {
			if (!ctl_parse_int(v, 0, INT64_MAX, &f.after_id)) {
				control_reply_error(&reply, 2, "tail: --after "
						    "'%s': not an event id", v);
				return;
			}
			f.limit = CTL_TAIL_HISTORY;
			history = true;
			i++;
		} else if (strcmp(a, "-n") == 0 && v != NULL) {
			if (!ctl_parse_int(v, 1, CTL_TAIL_HISTORY, &num)) {
				control_reply_error(&reply, 2, "tail: -n '%s': "
						    "not a number from 1 to %u",
						    v, CTL_TAIL_HISTORY);
				return;
			}
			f.limit = (unsigned)num;
			history = true;
			i++;
		} else {
			control_reply_error(&reply, 2, "tail: unknown argument "
					    "'%s' (options: --type PATTERN, "
					    "--after ID, -n N)", a);
			return;
		}
	}
	struct ctl_tail *t = xcalloc(1, sizeof(*t));
	t->e = e;
	t->reply = reply;
	t->pattern = pattern != NULL ? xstrdup(pattern) : NULL;
	f.type = t->pattern;
	if (history) {
		const char *err = ctl_tail_history(t, &f);
		if (err != NULL) {
			control_reply_error(&t->reply, 2, "tail: %s", err);
			free(t->pattern);
			free(t);
			return;
		}
	}
	/* same loop turn as the history: nothing falls in between */
	t->listen = engine_listen(e, ctl_tail_event, t);
	control_reply_on_gone(reply, ctl_tail_gone, t);
}

/* ---- replay ---- */

static void ctl_replay_cb(struct event *ev, const char *error, void *ctx)
{
	struct control_reply *reply = ctx;

	if (ev == NULL) {
		control_reply_error(&reply, 2, "replay: %s",
				    error != NULL ? error : "unknown error");
		return;
	}
	json_t *res = json_pack("{sI}", "id", (json_int_t)ev->pub.id);
	json_t *of = json_object_get(ev->payload, "replay_of");
	if (of != NULL)
		json_object_set(res, "replay_of", of);
	char text[96];
	snprintf(text, sizeof(text), "replayed as event %" PRId64 "\n",
		 ev->pub.id);
	control_reply_ok(&reply, res, text, 0);
}

static void ctl_cmd_replay(struct control_reply *reply, json_t *args,
			   json_t *req, void *ctx)
{
	struct engine *e = ctx;
	int64_t id;
	const char *err = NULL;

	(void)req;
	if (json_array_size(args) != 1 ||
	    !ctl_parse_int(json_string_value(json_array_get(args, 0)), 1,
			   INT64_MAX, &id)) {
		control_reply_error(&reply, 2, "replay: usage: replay ID "
				    "(a positive event id)");
		return;
	}
	int r = engine_replay(e, id, ctl_replay_cb, reply, &err);
	if (r == -ENOENT)
		control_reply_error(&reply, 1, "replay: no event %" PRId64, id);
	else if (r < 0)
		control_reply_error(&reply, 2, "replay: %s",
				    err != NULL ? err : strerror(-r));
}

const struct control_command ctlcmds_commands[] = {
	{"status", ctl_cmd_status},
	{"events", ctl_cmd_events},
	{"emit", ctl_cmd_emit},
	{"tail", ctl_cmd_tail},
	{"replay", ctl_cmd_replay},
	{NULL, NULL},
};
