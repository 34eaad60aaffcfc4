/* Derived alerts: see alerts.h.
 *
 * Backups: OpenPanel's per-user `backup` service (offen/docker-volume-
 * backup, `restart: unless-stopped`) runs its schedule inside one long-
 * lived container, and a run started from the panel is a one-off run of
 * the same image; the one result the container source sees for sure is
 * the exit of a container with that name: container.died with exit code
 * 0 is a backup that succeeded, any other code (but 137/143, a stop) one
 * that failed.  The schedule's runs inside the long-lived container leave
 * no container event; they are not seen here (see README). */
#define _GNU_SOURCE 1
#include "alerts.h"
#include "alertlevel.h"
#include "classify.h"
#include "engine.h"
#include "hmap.h"
#include "log.h"
#include "util.h"
#include "watch.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ALERTS_STATE_MAX (16u * 1024 * 1024)
#define ALERTS_QUOTA_OUT_MAX (4u * 1024 * 1024)
#define ALERTS_CERT_RECHECK_S (6 * 3600) /* a clock jump is seen by then */

struct acert {
	char *path;     /* the certificate file (the key) */
	char *domain, *subject, *issuer;
	bool wildcard;
	char serial[130];
	char not_before_s[40]; /* "" when not known (facts of an older ophook) */
	char not_after_s[40];
	int64_t not_before, not_after;
	int level;      /* announced (ALERTLEVEL_NONE: nothing open) */
	bool overdue;   /* cert.renewal_overdue announced, not resolved */
	uint32_t gen;   /* sync generation that saw it */
};

struct aquota {
	int held;       /* level index held (ALERTLEVEL_NONE: none) */
	uint32_t gen;
};

/* Lives until the watcher's reconcile callback: alerts may be gone. */
struct alerts_token {
	struct alerts *a;
};

struct alerts {
	struct engine *e;
	struct watch *w;
	uv_loop_t *loop;
	const struct config *cfg;
	struct hmap *certs;   /* path -> struct acert */
	struct hmap *quota;   /* user -> struct aquota */
	struct hmap *backups; /* user -> json object of the open failure */
	json_t *pending_quota; /* saved quota levels not yet matched */
	uv_timer_t cert_timer, quota_timer, quota_kill;
	uv_process_t proc;
	uv_pipe_t out;
	char *outbuf;
	size_t outlen;
	bool proc_running, out_open, truncated;
	int64_t exit_status;
	int term_signal;
	unsigned handles;
	void *listen;
	struct alerts_token *token;
	bool certs_ready;
	bool stopping;
	uint32_t gen;
	uint64_t quota_runs; /* repquota runs read */
	char *state_path;
};

/* ---- helpers ---- */

static bool user_ok(const char *u)
{
	const char *why = NULL;

	return name_valid_user(u, &why);
}

static int64_t rfc3339_parse(const char *s)
{
	struct tm tm = { 0 };
	const char *end;

	if (s == NULL)
		return INT64_MIN;
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0')
		return INT64_MIN;
	return (int64_t)timegm(&tm);
}

static void alerts_emit(struct alerts *a, const char *type,
			const char *subject, const char *source, json_t *p)
{
	const char *err = NULL;

	if (engine_submit(a->e, type, subject, source, p, NULL, NULL, &err) <
	    0)
		log_error("alerts: cannot submit %s for %s: %s", type, subject,
			  err != NULL ? err : "error");
	else
		log_info("alerts: %s %s", type, subject);
}

/* ---- memory (alerts.json) ---- */

static bool save_cert(const char *key, void *value, void *ctx)
{
	struct acert *c = value;
	struct alerts *a = ((void **)ctx)[0];
	json_t *obj = ((void **)ctx)[1];
	size_t n = a->cfg->alerts.n_cert_thresholds;
	json_t *o;

	if (c->level == ALERTLEVEL_NONE && !c->overdue)
		return true;
	/* what describes it too: a removal while ophookd is down is
	 * resolved at start with these */
	o = json_pack("{s:s,s:s,s:s?,s:s?,s:s?,s:b}", "serial", c->serial,
		      "not_after", c->not_after_s, "domain", c->domain,
		      "subject", c->subject, "issuer", c->issuer, "wildcard",
		      c->wildcard);
	if (c->level != ALERTLEVEL_NONE)
		json_object_set_new(
			o, "announced_s",
			json_integer(c->level >= (int)n
					     ? 0
					     : a->cfg->alerts.cert_th_s[c->level]));
	if (c->overdue)
		json_object_set_new(o, "renewal_overdue", json_true());
	if (c->not_before_s[0] != '\0')
		json_object_set_new(o, "not_before",
				    json_string(c->not_before_s));
	json_object_set_new(obj, key, o);
	return true;
}

static bool save_quota(const char *key, void *value, void *ctx)
{
	struct aquota *q = value;
	struct alerts *a = ((void **)ctx)[0];
	json_t *obj = ((void **)ctx)[1];

	if (q->held != ALERTLEVEL_NONE)
		json_object_set_new(obj, key,
				    json_integer(a->cfg->alerts.quota_lv[q->held]));
	return true;
}

static bool save_backup(const char *key, void *value, void *ctx)
{
	json_object_set(ctx, key, value);
	return true;
}

static void alerts_save(struct alerts *a)
{
	json_t *root = json_object(), *certs = json_object(),
	       *quota = json_object(), *backups = json_object();
	void *cc[2] = { a, certs }, *qc[2] = { a, quota };
	const char *k;
	json_t *v;
	char *text;
	int ret;

	hmap_each(a->certs, save_cert, cc);
	hmap_each(a->quota, save_quota, qc);
	/* levels of users the last repquota run has not listed yet */
	json_object_foreach(a->pending_quota, k, v)
		if (json_object_get(quota, k) == NULL)
			json_object_set(quota, k, v);
	hmap_each(a->backups, save_backup, backups);
	json_object_set_new(root, "version", json_integer(1));
	json_object_set_new(root, "certs", certs);
	json_object_set_new(root, "quota", quota);
	json_object_set_new(root, "backups", backups);
	text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
	ret = file_write_atomic(a->state_path, text, strlen(text), 0600);
	if (ret < 0)
		log_error("alerts: cannot write %s: %s", a->state_path,
			  strerror(-ret));
	free(text);
	json_decref(root);
}

/* The level index that an announced threshold (seconds; 0 = expired)
 * stands for with the thresholds configured now. */
static int cert_level_of(const struct alerts *a, int64_t announced_s)
{
	size_t n = a->cfg->alerts.n_cert_thresholds;
	int level = ALERTLEVEL_NONE;

	if (announced_s == 0)
		return (int)n;
	for (size_t i = 0; i < n; i++)
		if (a->cfg->alerts.cert_th_s[i] >= announced_s)
			level = (int)i;
	return level;
}

static void acert_free(void *p)
{
	struct acert *c = p;

	free(c->path);
	free(c->domain);
	free(c->subject);
	free(c->issuer);
	free(c);
}

static struct acert *acert_get(struct alerts *a, const char *path)
{
	struct acert *c = hmap_get(a->certs, path);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->path = xstrdup(path);
		c->level = ALERTLEVEL_NONE;
		c->not_before = INT64_MIN;
		c->not_after = INT64_MIN;
		hmap_put(a->certs, path, c);
	}
	return c;
}

/* Set a certificate's validity from RFC 3339 strings (not_before may be
 * NULL or bad: then unknown, and no renewal alert is possible). */
static void cert_dates(struct acert *c, const char *not_before,
		       const char *not_after)
{
	snprintf(c->not_after_s, sizeof(c->not_after_s), "%s", not_after);
	c->not_after = rfc3339_parse(not_after);
	c->not_before = rfc3339_parse(not_before);
	snprintf(c->not_before_s, sizeof(c->not_before_s), "%s",
		 c->not_before != INT64_MIN ? not_before : "");
}

/* Set what describes a certificate from saved JSON strings (a bad or
 * missing one leaves it undescribed: its alert then resolves silently). */
static void cert_describe(struct acert *c, const json_t *subject,
			  const json_t *domain, const json_t *issuer,
			  bool wildcard)
{
	const char *why = NULL, *d = json_string_value(domain),
		   *sub = json_string_value(subject);

	if (d == NULL || sub == NULL || !name_valid_domain(d, &why) ||
	    strlen(sub) > 255 || !json_is_string(issuer))
		return;
	c->domain = xstrdup(d);
	c->subject = xstrdup(sub);
	c->issuer = xstrdup(json_string_value(issuer));
	c->wildcard = wildcard;
}

static void alerts_load(struct alerts *a)
{
	char *text = NULL;
	size_t len = 0;
	json_t *root, *obj, *v;
	json_error_t jerr;
	const char *k;
	int ret;

	ret = file_read_nofollow(a->state_path, ALERTS_STATE_MAX, &text, &len);
	if (ret == -ENOENT)
		return;
	if (ret < 0) {
		log_error("alerts: cannot read %s: %s (open alerts are "
			  "forgotten)", a->state_path, strerror(-ret));
		return;
	}
	root = json_loadb(text, len, 0, &jerr);
	free(text);
	if (!json_is_object(root)) {
		log_error("alerts: %s: not a JSON object (line %d: %s): open "
			  "alerts are forgotten", a->state_path, jerr.line,
			  jerr.text);
		json_decref(root);
		return;
	}
	obj = json_object_get(root, "certs");
	json_object_foreach(obj, k, v) {
		const char *serial = json_string_value(json_object_get(v, "serial"));
		const char *na = json_string_value(json_object_get(v, "not_after"));
		const char *nb = json_string_value(json_object_get(v, "not_before"));
		json_t *ann = json_object_get(v, "announced_s");
		bool overdue = json_is_true(json_object_get(v, "renewal_overdue"));
		struct acert *c;

		if (serial == NULL || na == NULL ||
		    (!json_is_integer(ann) && !overdue) ||
		    rfc3339_parse(na) == INT64_MIN)
			continue;
		c = acert_get(a, k);
		snprintf(c->serial, sizeof(c->serial), "%s", serial);
		cert_dates(c, nb, na);
		if (json_is_integer(ann))
			c->level = cert_level_of(a, json_integer_value(ann));
		c->overdue = overdue;
		cert_describe(c, json_object_get(v, "subject"),
			      json_object_get(v, "domain"),
			      json_object_get(v, "issuer"),
			      json_is_true(json_object_get(v, "wildcard")));
	}
	obj = json_object_get(root, "quota");
	json_object_foreach(obj, k, v)
		if (json_is_integer(v) && user_ok(k))
			json_object_set(a->pending_quota, k, v);
	obj = json_object_get(root, "backups");
	json_object_foreach(obj, k, v)
		if (json_is_object(v) && user_ok(k))
			hmap_put(a->backups, k, json_incref(v));
	json_decref(root);
}

/* ---- certificates ---- */

static json_t *cert_payload(const struct acert *c)
{
	json_t *p = json_object();

	json_object_set_new(p, "domain", json_string(c->domain));
	json_object_set_new(p, "path", json_string(c->path));
	json_object_set_new(p, "issuer", json_string(c->issuer));
	if (c->wildcard)
		json_object_set_new(p, "wildcard", json_true());
	json_object_set_new(p, "serial", json_string(c->serial));
	if (c->not_before_s[0] != '\0')
		json_object_set_new(p, "not_before",
				    json_string(c->not_before_s));
	json_object_set_new(p, "not_after", json_string(c->not_after_s));
	return p;
}

/* Is the certificate one that renews itself?  Caddy's ACME storage does;
 * a custom one (opencli domains-ssl, issuer "custom") is the admin's to
 * replace, and its thresholds are its only alert. */
static bool cert_renews(const struct acert *c)
{
	return c->issuer != NULL && strcmp(c->issuer, "custom") != 0 &&
	       c->not_before != INT64_MIN;
}

static void rfc3339_format(int64_t t, char out[40])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 40, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* cert.renewal_overdue, or (reason set) cert.renewal_resolved. */
static void cert_renewal_say(struct alerts *a, const struct acert *c,
			     int64_t now, const char *reason,
			     const char *old_serial)
{
	json_t *p = cert_payload(c);
	int64_t due;
	char due_s[40];

	if (reason != NULL) {
		json_object_set_new(p, "reason", json_string(reason));
		if (old_serial != NULL && strcmp(old_serial, c->serial) != 0)
			json_object_set_new(p, "old_serial",
					    json_string(old_serial));
		alerts_emit(a, "cert.renewal_resolved", c->subject, "timer", p);
		return;
	}
	alertlevel_renew_overdue(c->not_before, c->not_after, &due);
	rfc3339_format(due, due_s);
	json_object_set_new(p, "renew_due", json_string(due_s));
	json_object_set_new(p, "overdue_s", json_integer(now - due));
	json_object_set_new(p, "remaining_s",
			    json_integer(c->not_after - now > 0
						 ? c->not_after - now
						 : 0));
	alerts_emit(a, "cert.renewal_overdue", c->subject, "timer", p);
}

/* The renewal alert of one certificate: opened once past its overdue
 * instant, resolved when a new certificate (not overdue) replaces it. */
static void cert_renewal_eval(struct alerts *a, struct acert *c, int64_t now,
			      const char *old_serial, bool *dirty)
{
	int64_t due, at = cert_renews(c) ? alertlevel_renew_overdue(
						   c->not_before, c->not_after,
						   &due)
					 : INT64_MAX;
	bool overdue = now >= at;

	if (overdue == c->overdue)
		return;
	if (c->overdue)
		cert_renewal_say(a, c, now, "renewed", old_serial);
	else
		cert_renewal_say(a, c, now, NULL, NULL);
	c->overdue = overdue;
	*dirty = true;
}

/* The configured spelling of threshold level i ("7d"). */
static const char *cert_threshold_name(const struct alerts *a, int level)
{
	const struct config *cfg = a->cfg;
	int64_t s;

	for (size_t i = 0; i < cfg->alerts.n_cert_thresholds; i++)
		if (alertlevel_duration(cfg->alerts.cert_thresholds[i], &s) ==
			    0 &&
		    s == cfg->alerts.cert_th_s[level])
			return cfg->alerts.cert_thresholds[i];
	return "?";
}

static void cert_open(struct alerts *a, struct acert *c, int level,
		      int64_t now)
{
	size_t n = a->cfg->alerts.n_cert_thresholds;
	json_t *p = cert_payload(c);

	json_object_set_new(p, "remaining_s",
			    json_integer(c->not_after - now > 0
						 ? c->not_after - now
						 : 0));
	if (level >= (int)n) {
		json_object_set_new(p, "expired_s",
				    json_integer(now - c->not_after));
		alerts_emit(a, "cert.expired", c->subject, "timer", p);
		return;
	}
	json_object_set_new(p, "days",
			    json_integer(a->cfg->alerts.cert_th_s[level] /
					 86400));
	json_object_set_new(p, "threshold",
			    json_string(cert_threshold_name(a, level)));
	json_object_set_new(p, "threshold_s",
			    json_integer(a->cfg->alerts.cert_th_s[level]));
	alerts_emit(a, "cert.expiring", c->subject, "timer", p);
}

static void cert_resolved(struct alerts *a, struct acert *c,
			  const char *reason, const char *old_serial,
			  int old_level)
{
	size_t n = a->cfg->alerts.n_cert_thresholds;
	json_t *p = cert_payload(c);

	json_object_set_new(p, "reason", json_string(reason));
	json_object_set_new(p, "was", json_string(old_level >= (int)n
							  ? "cert.expired"
							  : "cert.expiring"));
	if (old_serial != NULL && strcmp(old_serial, c->serial) != 0)
		json_object_set_new(p, "old_serial", json_string(old_serial));
	alerts_emit(a, "cert.expiry_resolved", c->subject, "timer", p);
}

static void cert_eval(struct alerts *a, struct acert *c, int64_t now,
		      const char *old_serial, bool *dirty)
{
	const struct config *cfg = a->cfg;
	size_t n = cfg->alerts.n_cert_thresholds;
	int level, next, old = c->level;
	enum alertlevel_action act;

	if (c->not_after == INT64_MIN || c->domain == NULL)
		return;
	cert_renewal_eval(a, c, now, old_serial, dirty);
	level = alertlevel_cert(cfg->alerts.cert_th_s, n, c->not_after, now);
	act = alertlevel_cert_step(c->level, level, &next);
	if (act == ALERTLEVEL_KEEP)
		return;
	if (act == ALERTLEVEL_RESOLVE || act == ALERTLEVEL_REOPEN)
		cert_resolved(a, c, "renewed", old_serial, old);
	if (act == ALERTLEVEL_OPEN || act == ALERTLEVEL_REOPEN)
		cert_open(a, c, level, now);
	c->level = next;
	*dirty = true;
}

struct eval_ctx {
	struct alerts *a;
	int64_t now, next;
	bool dirty;
};

static bool eval_one(const char *key, void *value, void *ctx)
{
	struct eval_ctx *ec = ctx;
	struct acert *c = value;
	const struct config *cfg = ec->a->cfg;
	int64_t t;

	(void)key;
	cert_eval(ec->a, c, ec->now, NULL, &ec->dirty);
	if (c->not_after == INT64_MIN)
		return true;
	t = alertlevel_cert_next(cfg->alerts.cert_th_s,
				 cfg->alerts.n_cert_thresholds, c->not_after,
				 ec->now);
	if (t < ec->next)
		ec->next = t;
	if (!c->overdue && cert_renews(c)) {
		int64_t due;

		t = alertlevel_renew_overdue(c->not_before, c->not_after, &due);
		if (t > ec->now && t < ec->next)
			ec->next = t;
	}
	return true;
}

static void cert_timer_cb(uv_timer_t *t);

/* Evaluate every certificate now, then set the timer to the next
 * threshold instant of any of them. */
static void certs_eval_all(struct alerts *a)
{
	struct eval_ctx ec = { .a = a };
	int64_t ms = now_ms(), delay_ms;

	if (!a->certs_ready || a->stopping)
		return;
	ec.now = ms / 1000;
	ec.next = ec.now + ALERTS_CERT_RECHECK_S;
	hmap_each(a->certs, eval_one, &ec);
	if (ec.dirty)
		alerts_save(a);
	/* just past the instant, so that the level has changed by then */
	delay_ms = ec.next * 1000 - ms + 20;
	if (delay_ms < 0)
		delay_ms = 0;
	uv_timer_start(&a->cert_timer, cert_timer_cb, (uint64_t)delay_ms, 0);
}

static void cert_timer_cb(uv_timer_t *t)
{
	certs_eval_all(t->data);
}

/* Set a certificate's facts (from the snapshot or an event). */
static void cert_set(struct alerts *a, const char *path, const char *subject,
		     const char *domain, const char *issuer, bool wildcard,
		     const char *serial, const char *not_before,
		     const char *not_after)
{
	int64_t na = rfc3339_parse(not_after);
	struct acert *c;
	char old_serial[130];
	bool dirty = false;

	if (na == INT64_MIN || serial == NULL)
		return;
	c = acert_get(a, path);
	c->gen = a->gen;
	free(c->domain);
	free(c->subject);
	free(c->issuer);
	c->domain = xstrdup(domain);
	c->subject = xstrdup(subject);
	c->issuer = xstrdup(issuer != NULL ? issuer : "");
	c->wildcard = wildcard;
	snprintf(old_serial, sizeof(old_serial), "%s", c->serial);
	snprintf(c->serial, sizeof(c->serial), "%s", serial);
	cert_dates(c, not_before, not_after);
	if (a->certs_ready && strcmp(old_serial, serial) != 0) {
		cert_eval(a, c, now_ms() / 1000, old_serial, &dirty);
		if (dirty)
			alerts_save(a);
		certs_eval_all(a);
	}
}

static void cert_gone(struct alerts *a, const char *path)
{
	struct acert *c = hmap_del(a->certs, path);

	if (c == NULL)
		return;
	if (c->overdue && c->domain != NULL)
		cert_renewal_say(a, c, 0, "removed", NULL);
	if (c->level != ALERTLEVEL_NONE && c->domain != NULL)
		cert_resolved(a, c, "removed", NULL, c->level);
	if ((c->overdue || c->level != ALERTLEVEL_NONE) && c->domain != NULL) {
		c->level = ALERTLEVEL_NONE;
		c->overdue = false;
		alerts_save(a);
	}
	acert_free(c);
}

struct sync_ctx {
	struct alerts *a;
	const char *root;
};

/* Facts journaled by an ophook before not_before was kept: the
 * certificate file read once at start, without following a symlink. */
static int cert_read(const char *path, struct classify_cert *cc)
{
	char *pem = NULL;
	size_t len = 0;
	const char *why = NULL;
	int ret = file_read_nofollow(path, 1024 * 1024, &pem, &len);

	if (ret == 0) {
		ret = classify_cert_parse(pem, len, cc, &why);
		free(pem);
	}
	return ret;
}

static bool sync_fact(const char *path, const char *facts, void *ctx)
{
	struct sync_ctx *sc = ctx;
	struct classify_target t;
	const char *why = NULL, *issuer;
	enum classify_kind kind;
	json_t *f;
	char *key;

	kind = classify_path(sc->root, path, &t, &why);
	if (kind != CLASSIFY_CERT_JSON && kind != CLASSIFY_CUSTOM_CERT)
		return true;
	f = json_loads(facts, 0, NULL);
	if (!json_is_object(f)) {
		json_decref(f);
		return true;
	}
	if (kind == CLASSIFY_CERT_JSON) {
		key = classify_aux_path(&t, path);
		issuer = t.issuer;
	} else {
		key = xstrdup(path);
		issuer = "custom";
	}
	if (key != NULL) {
		struct classify_cert cc = { .names = NULL };
		const char *nb =
			json_string_value(json_object_get(f, "not_before"));

		if (nb == NULL && cert_read(key, &cc) == 0)
			nb = cc.not_before;
		cert_set(sc->a, key, t.name,
			 t.wildcard ? t.name + 2 : t.name, issuer, t.wildcard,
			 json_string_value(json_object_get(f, "serial")), nb,
			 json_string_value(json_object_get(f, "not_after")));
		json_decref(cc.names);
	}
	free(key);
	json_decref(f);
	return true;
}

struct gone_ctx {
	struct alerts *a;
	char **gone;
	size_t n;
};

static bool collect_unseen(const char *key, void *value, void *ctx)
{
	struct gone_ctx *gc = ctx;
	struct acert *c = value;

	if (c->gen != gc->a->gen) {
		gc->gone = xrealloc(gc->gone, (gc->n + 1) * sizeof(char *));
		gc->gone[gc->n++] = xstrdup(key);
	}
	return true;
}

/* After the reconcile at start: every certificate the snapshot knows. */
static void certs_sync(unsigned events, void *ctx)
{
	struct alerts_token *tok = ctx;
	struct alerts *a = tok->a;
	struct sync_ctx sc;
	struct gone_ctx gc = { 0 };

	(void)events;
	free(tok);
	if (a == NULL)
		return;
	a->token = NULL;
	if (a->stopping || a->w == NULL)
		return;
	sc.a = a;
	sc.root = watch_root(a->w);
	a->gen++;
	watch_each_fact(a->w, sync_fact, &sc);
	gc.a = a;
	hmap_each(a->certs, collect_unseen, &gc);
	a->certs_ready = true;
	for (size_t i = 0; i < gc.n; i++) {
		cert_gone(a, gc.gone[i]);
		free(gc.gone[i]);
	}
	free(gc.gone);
	log_info("alerts: %zu certificates known, thresholds %zu",
		 hmap_count(a->certs), a->cfg->alerts.n_cert_thresholds);
	certs_eval_all(a);
	alerts_save(a);
}

/* ---- backups ---- */

static void backup_event(struct alerts *a, struct event *ev)
{
	const char *name = json_string_value(json_object_get(ev->payload,
							     "container"));
	const char *user = json_string_value(json_object_get(ev->payload,
							     "user"));
	json_t *code = json_object_get(ev->payload, "exit_code");
	json_t *open, *p;
	json_int_t c;
	char subject[300];

	if (a->cfg->alerts.backup_container == NULL || name == NULL ||
	    strcmp(name, a->cfg->alerts.backup_container) != 0 ||
	    user == NULL || !user_ok(user) || !json_is_integer(code))
		return;
	c = json_integer_value(code);
	if (c == 137 || c == 143)
		return; /* stopped (SIGKILL / SIGTERM), not a result */
	snprintf(subject, sizeof(subject), "user:%s", user);
	open = hmap_get(a->backups, user);
	p = json_pack("{s:s,s:s,s:I,s:O?,s:O?}", "user", user, "container",
		      name, "exit_code", c, "container_id",
		      json_object_get(ev->payload, "container_id"), "ctx",
		      json_object_get(ev->payload, "ctx"));
	json_object_set_new(p, "event_id", json_integer(ev->pub.id));
	if (c != 0) {
		if (open != NULL) {
			json_decref(p);
			return; /* still failing: said already */
		}
		hmap_put(a->backups, user,
			 json_pack("{s:I,s:I}", "exit_code", c, "event_id",
				   (json_int_t)ev->pub.id));
		alerts_emit(a, "backup.failed", subject, "timer", p);
	} else {
		json_object_set_new(p, "resolved", json_boolean(open != NULL));
		if (open != NULL) {
			json_object_set(p, "failed_exit_code",
					json_object_get(open, "exit_code"));
			json_decref(hmap_del(a->backups, user));
		}
		alerts_emit(a, "backup.succeeded", subject, "timer", p);
	}
	alerts_save(a);
}

/* ---- events seen ---- */

static void alerts_listen(struct event *ev, void *ctx)
{
	struct alerts *a = ctx;
	const json_t *p = ev->payload;
	const char *path;

	if (a->stopping || ev->source == NULL ||
	    (strcmp(ev->source, "inotify") != 0 &&
	     strcmp(ev->source, "reconcile") != 0 &&
	     strcmp(ev->source, "container") != 0))
		return;
	if (strcmp(ev->type, "container.died") == 0) {
		backup_event(a, ev);
		return;
	}
	if (strncmp(ev->type, "cert.", 5) != 0)
		return;
	path = json_string_value(json_object_get(p, "path"));
	if (path == NULL)
		return;
	if (strcmp(ev->type, "cert.removed") == 0) {
		cert_gone(a, path);
		return;
	}
	if (strcmp(ev->type, "cert.issued") != 0 &&
	    strcmp(ev->type, "cert.renewed") != 0 &&
	    strcmp(ev->type, "cert.installed") != 0)
		return;
	cert_set(a, path, ev->subject,
		 json_string_value(json_object_get(p, "domain")),
		 json_string_value(json_object_get(p, "issuer")),
		 json_is_true(json_object_get(p, "wildcard")),
		 json_string_value(json_object_get(p, "serial")),
		 json_string_value(json_object_get(p, "not_before")),
		 json_string_value(json_object_get(p, "not_after")));
}

/* ---- quota ---- */

static void quota_schedule(struct alerts *a);

static void quota_row(struct alerts *a, const struct alertlevel_quota_row *r,
		      bool *dirty)
{
	const struct config *cfg = a->cfg;
	struct aquota *q;
	const char *limit = NULL;
	double pct = alertlevel_quota_pct(r, &limit);
	enum alertlevel_action act;
	char subject[300];
	json_t *saved, *p;
	int next, held;

	if (r->user[0] == '#' || pct < 0)
		return;
	q = hmap_get(a->quota, r->user);
	if (q == NULL) {
		q = xcalloc(1, sizeof(*q));
		q->held = ALERTLEVEL_NONE;
		saved = json_object_get(a->pending_quota, r->user);
		for (size_t i = 0; saved != NULL &&
				   i < cfg->alerts.n_quota_levels; i++)
			if ((json_int_t)cfg->alerts.quota_lv[i] <=
			    json_integer_value(saved))
				q->held = (int)i;
		json_object_del(a->pending_quota, r->user);
		hmap_put(a->quota, r->user, q);
	}
	q->gen = a->gen;
	held = q->held;
	act = alertlevel_quota_step(cfg->alerts.quota_lv,
				    cfg->alerts.n_quota_levels,
				    cfg->alerts.quota_margin, held, pct, &next);
	q->held = next;
	if (next != held)
		*dirty = true;
	if (act != ALERTLEVEL_OPEN && act != ALERTLEVEL_RESOLVE)
		return;
	snprintf(subject, sizeof(subject), "user:%s", r->user);
	p = json_pack("{s:s,s:f,s:I,s:I,s:I,s:s}", "user", r->user, "percent",
		      (double)((int64_t)(pct * 10 + 0.5)) / 10.0, "used_kb",
		      (json_int_t)r->used_kb, "soft_kb", (json_int_t)r->soft_kb,
		      "hard_kb", (json_int_t)r->hard_kb, "limit", limit);
	if (act == ALERTLEVEL_OPEN) {
		json_object_set_new(p, "level",
				    json_integer(cfg->alerts.quota_lv[next]));
		alerts_emit(a, "quota.exceeded", subject, "timer", p);
	} else {
		json_object_set_new(p, "level",
				    json_integer(cfg->alerts.quota_lv[held]));
		json_object_set_new(p, "margin",
				    json_integer(cfg->alerts.quota_margin));
		json_object_set_new(p, "reason", json_string("below"));
		alerts_emit(a, "quota.recovered", subject, "timer", p);
	}
}

/* An open quota alert of a user the quota command no longer lists with a
 * limit (user or limits removed): resolved, usage unknown. */
static void quota_unlisted(struct alerts *a, const char *user,
			   json_int_t level)
{
	char subject[300];

	snprintf(subject, sizeof(subject), "user:%s", user);
	alerts_emit(a, "quota.recovered", subject, "timer",
		    json_pack("{s:s,s:s,s:I,s:I}", "user", user, "reason",
			      "unlisted", "level", level, "margin",
			      (json_int_t)a->cfg->alerts.quota_margin));
}

struct unlisted_ctx {
	struct alerts *a;
	char **users;
	size_t n;
};

static bool collect_unlisted(const char *key, void *value, void *ctx)
{
	struct unlisted_ctx *uc = ctx;
	struct aquota *q = value;

	if (q->gen != uc->a->gen) {
		uc->users = xrealloc(uc->users, (uc->n + 1) * sizeof(char *));
		uc->users[uc->n++] = xstrdup(key);
	}
	return true;
}

/* After a run: users known before and not listed now are forgotten, an
 * open alert of theirs resolved (saved ones too: gone while down). */
static void quota_forget_unlisted(struct alerts *a, bool *dirty)
{
	struct unlisted_ctx uc = { .a = a };
	const char *k;
	json_t *v;
	void *tmp;

	hmap_each(a->quota, collect_unlisted, &uc);
	for (size_t i = 0; i < uc.n; i++) {
		struct aquota *q = hmap_del(a->quota, uc.users[i]);

		if (q->held != ALERTLEVEL_NONE) {
			quota_unlisted(a, uc.users[i],
				       a->cfg->alerts.quota_lv[q->held]);
			*dirty = true;
		}
		free(q);
		free(uc.users[i]);
	}
	free(uc.users);
	json_object_foreach_safe(a->pending_quota, tmp, k, v) {
		quota_unlisted(a, k, json_integer_value(v));
		json_object_del(a->pending_quota, k);
		*dirty = true;
	}
}

/* With several filesystems (repquota -a) a user has a row on each: keep
 * the one whose usage is the highest, so that one alert follows the
 * worst of them instead of flipping between them. */
static void quota_worst_rows(struct alertlevel_quota_row *rows, size_t *n)
{
	struct hmap *seen = hmap_new(); /* user -> its index + 1 in rows */
	size_t out = 0;

	for (size_t i = 0; i < *n; i++) {
		const char *lim;
		double pct = alertlevel_quota_pct(&rows[i], &lim);
		uintptr_t j = (uintptr_t)hmap_get(seen, rows[i].user);

		if (j == 0) {
			rows[out] = rows[i];
			hmap_put(seen, rows[out].user, (void *)(uintptr_t)(out + 1));
			out++;
		} else if (pct > alertlevel_quota_pct(&rows[j - 1], &lim)) {
			rows[j - 1] = rows[i];
		}
	}
	hmap_free(&seen, NULL);
	*n = out;
}

static void quota_output(struct alerts *a)
{
	struct alertlevel_quota_row *rows = NULL;
	size_t n = 0;
	const char *why = NULL;
	bool dirty = false;

	if (a->exit_status != 0 || a->term_signal != 0) {
		log_warn("alerts: %s exited with %lld (signal %d): quota not "
			 "read this time", a->cfg->alerts.quota_command[0],
			 (long long)a->exit_status, a->term_signal);
		return;
	}
	if (alertlevel_repquota_parse(a->outbuf != NULL ? a->outbuf : "",
				      a->outlen, &rows, &n, &why) < 0) {
		log_warn("alerts: %s: %s", a->cfg->alerts.quota_command[0],
			 why);
		return;
	}
	a->gen++;
	a->quota_runs++;
	quota_worst_rows(rows, &n);
	for (size_t i = 0; i < n; i++)
		quota_row(a, &rows[i], &dirty);
	free(rows);
	quota_forget_unlisted(a, &dirty);
	if (dirty)
		alerts_save(a);
}

static void quota_handle_closed(uv_handle_t *h)
{
	struct alerts *a = h->data;

	a->handles--;
	if (h == (uv_handle_t *)&a->out) {
		a->out_open = false;
	} else if (h == (uv_handle_t *)&a->proc) {
		a->proc_running = false;
	}
	if (a->stopping) {
		if (a->handles == 0)
			free(a);
		return;
	}
	if (!a->out_open && !a->proc_running) {
		uv_timer_stop(&a->quota_kill);
		quota_output(a);
		free(a->outbuf);
		a->outbuf = NULL;
		a->outlen = 0;
		quota_schedule(a);
	}
}

static void quota_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct alerts *a = h->data;

	(void)suggested;
	a->outbuf = xrealloc(a->outbuf, a->outlen + 65536 + 1);
	buf->base = a->outbuf + a->outlen;
	buf->len = 65536;
}

static void quota_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct alerts *a = s->data;

	(void)buf;
	if (nread > 0) {
		if (a->outlen + (size_t)nread > ALERTS_QUOTA_OUT_MAX) {
			a->truncated = true;
			a->exit_status = -1;
			uv_process_kill(&a->proc, SIGKILL);
		} else {
			a->outlen += (size_t)nread;
			a->outbuf[a->outlen] = '\0';
		}
		return;
	}
	if (nread < 0 && !uv_is_closing((uv_handle_t *)s))
		uv_close((uv_handle_t *)s, quota_handle_closed);
}

static void quota_exited(uv_process_t *p, int64_t status, int sig)
{
	struct alerts *a = p->data;

	if (!a->truncated)
		a->exit_status = status;
	a->term_signal = sig;
	uv_close((uv_handle_t *)p, quota_handle_closed);
}

static void quota_kill_cb(uv_timer_t *t)
{
	struct alerts *a = t->data;

	log_warn("alerts: %s ran longer than %u ms: killed",
		 a->cfg->alerts.quota_command[0],
		 a->cfg->alerts.quota_timeout_ms);
	if (a->proc_running)
		uv_process_kill(&a->proc, SIGKILL);
}

static void quota_run(uv_timer_t *t)
{
	struct alerts *a = t->data;
	const struct config *cfg = a->cfg;
	uv_process_options_t opt = { 0 };
	uv_stdio_container_t stdio[3];
	char **args;
	int ret;

	if (a->stopping || a->proc_running || a->out_open)
		return;
	args = xcalloc(cfg->alerts.n_quota_command + 1, sizeof(char *));
	for (size_t i = 0; i < cfg->alerts.n_quota_command; i++)
		args[i] = cfg->alerts.quota_command[i];
	uv_pipe_init(a->loop, &a->out, 0);
	a->out.data = a;
	a->handles++;
	a->out_open = true;
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
	stdio[1].data.stream = (uv_stream_t *)&a->out;
	stdio[2].flags = UV_IGNORE;
	opt.file = args[0];
	opt.args = args;
	opt.exit_cb = quota_exited;
	opt.stdio = stdio;
	opt.stdio_count = 3;
	a->proc.data = a;
	a->exit_status = 0;
	a->term_signal = 0;
	a->truncated = false;
	ret = uv_spawn(a->loop, &a->proc, &opt);
	free(args);
	a->handles++;
	a->proc_running = true;
	if (ret < 0) {
		log_error("alerts: cannot run %s: %s (quota not read)",
			  cfg->alerts.quota_command[0], uv_strerror(ret));
		a->exit_status = -1;
		uv_close((uv_handle_t *)&a->proc, quota_handle_closed);
		uv_close((uv_handle_t *)&a->out, quota_handle_closed);
		return;
	}
	uv_read_start((uv_stream_t *)&a->out, quota_alloc, quota_read);
	uv_timer_start(&a->quota_kill, quota_kill_cb, cfg->alerts.quota_timeout_ms,
		       0);
}

static void quota_schedule(struct alerts *a)
{
	const struct config *cfg = a->cfg;

	if (a->stopping || cfg->alerts.quota_interval_s == 0 ||
	    cfg->alerts.n_quota_command == 0)
		return;
	uv_timer_start(&a->quota_timer, quota_run,
		       (uint64_t)cfg->alerts.quota_interval_s * 1000, 0);
}

/* ---- start / stop ---- */

static void timer_closed(uv_handle_t *h)
{
	struct alerts *a = h->data;

	if (--a->handles == 0)
		free(a);
}

int alerts_start(struct engine *e, struct watch *w, struct alerts **a_r,
		 const char **error_r)
{
	const struct config *cfg = engine_config(e);
	struct alerts *a;

	*a_r = NULL;
	(void)error_r;
	if (!cfg->alerts.enabled)
		return 0;
	a = xcalloc(1, sizeof(*a));
	a->e = e;
	a->w = w;
	a->cfg = cfg;
	a->loop = engine_loop(e);
	a->certs = hmap_new();
	a->quota = hmap_new();
	a->backups = hmap_new();
	a->pending_quota = json_object();
	a->state_path = xasprintf("%s/alerts.json", cfg->state_dir);
	uv_timer_init(a->loop, &a->cert_timer);
	uv_timer_init(a->loop, &a->quota_timer);
	uv_timer_init(a->loop, &a->quota_kill);
	a->cert_timer.data = a->quota_timer.data = a->quota_kill.data = a;
	a->handles = 3;
	alerts_load(a);
	a->listen = engine_listen(e, alerts_listen, a);
	if (w != NULL) {
		a->token = xcalloc(1, sizeof(*a->token));
		a->token->a = a;
		watch_after_reconcile(w, certs_sync, a->token);
	} else {
		log_warn("alerts: the watcher is off: no certificate alerts");
	}
	if (cfg->alerts.quota_interval_s > 0 &&
	    cfg->alerts.n_quota_command > 0)
		uv_timer_start(&a->quota_timer, quota_run, 0, 0);
	*a_r = a;
	return 0;
}

static void free_json(void *p)
{
	json_decref(p);
}

void alerts_stop(struct alerts **ap)
{
	struct alerts *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	a->stopping = true;
	if (a->token != NULL)
		a->token->a = NULL;
	engine_unlisten(a->e, &a->listen);
	alerts_save(a);
	if (a->proc_running)
		uv_process_kill(&a->proc, SIGKILL);
	hmap_free(&a->certs, acert_free);
	hmap_free(&a->quota, free);
	hmap_free(&a->backups, free_json);
	json_decref(a->pending_quota);
	free(a->state_path);
	uv_close((uv_handle_t *)&a->cert_timer, timer_closed);
	uv_close((uv_handle_t *)&a->quota_timer, timer_closed);
	uv_close((uv_handle_t *)&a->quota_kill, timer_closed);
}

static bool status_cert(const char *key, void *value, void *ctx)
{
	struct acert *c = value;

	if (c->level != ALERTLEVEL_NONE || c->overdue)
		json_array_append_new(ctx, json_pack("{s:s,s:s,s:s,s:i,s:b}",
						     "path", key, "domain",
						     c->domain ? c->domain : "",
						     "not_after", c->not_after_s,
						     "level", c->level,
						     "renewal_overdue",
						     c->overdue));
	return true;
}

static void open_add(json_t *open, const char *alert, const char *subject,
		     const char *detail)
{
	json_array_append_new(open, json_pack("{s:s,s:s,s:s}", "alert", alert,
					      "subject", subject, "detail",
					      detail));
}

static bool open_cert(const char *key, void *value, void *ctx)
{
	struct acert *c = value;
	struct alerts *a = ((void **)ctx)[0];
	json_t *open = ((void **)ctx)[1];
	size_t n = a->cfg->alerts.n_cert_thresholds;
	char detail[120], due_s[40];
	int64_t due;

	(void)key;
	if (c->subject == NULL)
		return true;
	if (c->level != ALERTLEVEL_NONE && c->level >= (int)n) {
		snprintf(detail, sizeof(detail), "expired %s", c->not_after_s);
		open_add(open, "cert.expired", c->subject, detail);
	} else if (c->level != ALERTLEVEL_NONE) {
		snprintf(detail, sizeof(detail), "under %s, not after %s",
			 cert_threshold_name(a, c->level), c->not_after_s);
		open_add(open, "cert.expiring", c->subject, detail);
	}
	if (c->overdue) {
		alertlevel_renew_overdue(c->not_before, c->not_after, &due);
		rfc3339_format(due, due_s);
		snprintf(detail, sizeof(detail), "renewal due %s", due_s);
		open_add(open, "cert.renewal_overdue", c->subject, detail);
	}
	return true;
}

static bool open_quota(const char *key, void *value, void *ctx)
{
	struct aquota *q = value;
	struct alerts *a = ((void **)ctx)[0];
	char subject[300], detail[40];

	if (q->held == ALERTLEVEL_NONE)
		return true;
	snprintf(subject, sizeof(subject), "user:%s", key);
	snprintf(detail, sizeof(detail), "level %u%%",
		 a->cfg->alerts.quota_lv[q->held]);
	open_add(((void **)ctx)[1], "quota.exceeded", subject, detail);
	return true;
}

static bool open_backup(const char *key, void *value, void *ctx)
{
	char subject[300], detail[40];

	snprintf(subject, sizeof(subject), "user:%s", key);
	snprintf(detail, sizeof(detail), "exit code %" JSON_INTEGER_FORMAT,
		 json_integer_value(json_object_get(value, "exit_code")));
	open_add(ctx, "backup.failed", subject, detail);
	return true;
}

static int open_cmp(const void *x, const void *y)
{
	const json_t *a = *(json_t *const *)x, *b = *(json_t *const *)y;
	int r = strcmp(json_string_value(json_object_get(a, "alert")),
		       json_string_value(json_object_get(b, "alert")));

	return r != 0 ? r
		      : strcmp(json_string_value(json_object_get(a, "subject")),
			       json_string_value(json_object_get(b, "subject")));
}

/* Every alert open now, sorted by type then subject. */
static json_t *alerts_open(struct alerts *a)
{
	json_t *open = json_array(), *sorted = json_array(), *v;
	void *ctx[2] = { a, open };
	const char *k;
	char subject[300], detail[40];
	json_t **items;
	size_t n;

	hmap_each(a->certs, open_cert, ctx);
	hmap_each(a->quota, open_quota, ctx);
	json_object_foreach(a->pending_quota, k, v) {
		snprintf(subject, sizeof(subject), "user:%s", k);
		snprintf(detail, sizeof(detail), "level %" JSON_INTEGER_FORMAT
			 "%% (not measured since the start)",
			 json_integer_value(v));
		open_add(open, "quota.exceeded", subject, detail);
	}
	hmap_each(a->backups, open_backup, open);
	n = json_array_size(open);
	items = xcalloc(n + 1, sizeof(*items));
	for (size_t i = 0; i < n; i++)
		items[i] = json_array_get(open, i);
	qsort(items, n, sizeof(*items), open_cmp);
	for (size_t i = 0; i < n; i++)
		json_array_append(sorted, items[i]);
	free(items);
	json_decref(open);
	return sorted;
}

json_t *alerts_status(struct alerts *a)
{
	json_t *certs = json_array();

	hmap_each(a->certs, status_cert, certs);
	return json_pack("{s:o,s:o,s:I,s:I,s:I}", "open", alerts_open(a),
			 "certs_open", certs,
			 "certs_known", (json_int_t)hmap_count(a->certs),
			 "backups_failing", (json_int_t)hmap_count(a->backups),
			 "quota_runs", (json_int_t)a->quota_runs);
}
