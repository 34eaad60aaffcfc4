/* Entities: one event per lifecycle change of a user or a domain, whichever
 * source saw it (see entity.h).
 *
 * A user has two observations, its folder (the watcher) and its row (the
 * DB poller), each present or not, and one flag, `announced`: whether the
 * events said it exists.  A user with nothing pending and announced ==
 * (folder || row) has no entry (the sources' own snapshots say it all);
 * the others have one, saved in entities.json before the source is told
 * its observation is done.  A user.added or user.removed observation from
 * one source starts a pending change that waits merge_wait_ms for the
 * other source to agree (the DB is polled at once); it goes out earlier
 * when both agree, and as it is at the deadline.  A rename comes from the
 * DB only (the row keeps its id): it cancels the folder's pending
 * removal and addition. */
#define _GNU_SOURCE
#include "entity.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "engine.h"
#include "hmap.h"
#include "log.h"
#include "util.h"

#define ENTITY_WHO "entity"
#define ENTITY_STATE_FILE "entities.json"
#define ENTITY_STATE_MAX (64u * 1024 * 1024)
/* A domain.added waits at most this long for a DB poll to know its owner
 * (and never longer than merge_wait_ms). */
#define ENTITY_OWNER_WAIT_MS 3000
/* A journal failure of a merged event: tried again after this long. */
#define ENTITY_RETRY_MS 1000
/* A user gone from the folder and the DB whose domains' confs are still
 * there waits for their domain.removed: merge_wait_ms at a time, at most
 * this many times (a conf opencli left behind must not hold the user's
 * removal for ever). */
#define ENTITY_DOMAINS_WAITS 10

enum ent_pending { EP_NONE = 0, EP_ADD, EP_REMOVE };

struct ent_user {
	char *name;
	bool announced, folder, row;
	enum ent_pending pending;
	int64_t deadline_ms; /* wall clock, while pending */
	unsigned domain_waits; /* deadlines passed waiting for domains */
	json_t *payload;     /* fields gathered for the event */
	char *source;        /* of the first observation */
};

/* An event held behind a domain.added waiting for its owner. */
struct ent_held {
	struct ent_held *next;
	char *type, *source;
	json_t *payload;
	entity_done_fn *cb;
	void *ctx;
};

struct ent_hold {
	char *subject;
	int64_t since_ms; /* mono: a poll started after it knows the row */
	struct ent_held *head, *tail;
	unsigned n;
};

struct entity {
	struct engine *e;
	uv_loop_t *loop;
	char *root, *state_file;
	unsigned wait_ms;
	struct hmap *users; /* name -> struct ent_user */
	struct hmap *holds; /* subject -> struct ent_hold */
	unsigned n_held;
	struct entity_db db;
	bool have_db;
	struct entity_files files;
	bool have_files;
	uv_timer_t timer;
	bool stopping;
	unsigned refs; /* the timer's + one per merged event in flight */
};

struct ent_pass {
	entity_done_fn *cb;
	void *ctx;
};

struct ent_emit {
	struct entity *ent;
	char *name;
	enum ent_pending kind;
};

static void entity_schedule(struct entity *ent);
static void entity_user_try_remove(struct entity *ent, struct ent_user *u,
				   bool forced);

/* ---- helpers ---- */

static void ent_user_free(void *p)
{
	struct ent_user *u = p;

	if (u == NULL)
		return;
	free(u->name);
	free(u->source);
	json_decref(u->payload);
	free(u);
}

static bool entity_db_active(struct entity *ent)
{
	return ent->have_db && ent->db.active(ent->db.ctx);
}

static void entity_kick(struct entity *ent)
{
	if (ent->have_db)
		ent->db.kick(ent->db.ctx);
}

static char *entity_user_path(const struct entity *ent, const char *name)
{
	return xasprintf("%s/openpanel/core/users/%s", ent->root, name);
}

static bool entity_folder_known(struct entity *ent, const char *name)
{
	char *path;
	bool r;

	if (!ent->have_files)
		return false;
	path = entity_user_path(ent, name);
	r = ent->files.known(ent->files.ctx, path);
	free(path);
	return r;
}

/* "user:<name>" -> name, or NULL. */
static const char *entity_user_of(const char *subject)
{
	return strncmp(subject, "user:", 5) == 0 && subject[5] != '\0'
		       ? subject + 5
		       : NULL;
}

/* ---- state file ---- */

static bool entity_dump_user(const char *key, void *value, void *ctx)
{
	struct ent_user *u = value;
	json_t *o = json_object();

	json_object_set_new(o, "announced", json_boolean(u->announced));
	json_object_set_new(o, "folder", json_boolean(u->folder));
	json_object_set_new(o, "row", json_boolean(u->row));
	json_object_set_new(o, "pending",
			    json_string(u->pending == EP_ADD      ? "add"
					: u->pending == EP_REMOVE ? "remove"
								  : "none"));
	json_object_set_new(o, "deadline_ms", json_integer(u->deadline_ms));
	if (u->payload != NULL)
		json_object_set(o, "payload", u->payload);
	if (u->source != NULL)
		json_object_set_new(o, "source", json_string(u->source));
	json_object_set_new(ctx, key, o);
	return true;
}

/* Write entities.json (temp + fsync + rename). */
static void entity_save(struct entity *ent)
{
	json_t *doc = json_object(), *users = json_object();
	char *text;
	int ret;

	hmap_each(ent->users, entity_dump_user, users);
	json_object_set_new(doc, "version", json_integer(1));
	json_object_set_new(doc, "users", users);
	text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(doc);
	if (text == NULL)
		return;
	ret = file_write_atomic(ent->state_file, text, strlen(text), 0600);
	if (ret < 0)
		log_msg(LOG_ERROR_L, ENTITY_WHO, "%s: cannot save: %s",
			ent->state_file, strerror(-ret));
	free(text);
}

static void entity_load(struct entity *ent)
{
	json_error_t jerr;
	const char *key, *why;
	char *data;
	size_t len;
	json_t *doc, *users, *o;
	int ret;

	ret = file_read_nofollow(ent->state_file, ENTITY_STATE_MAX, &data,
				 &len);
	if (ret == -ENOENT)
		return;
	if (ret < 0) {
		log_msg(LOG_WARN_L, ENTITY_WHO, "%s: cannot read: %s",
			ent->state_file, strerror(-ret));
		return;
	}
	doc = json_loadb(data, len, 0, &jerr);
	free(data);
	if (doc == NULL) {
		log_msg(LOG_WARN_L, ENTITY_WHO, "%s:%d:%d: %s", ent->state_file,
			jerr.line, jerr.column, jerr.text);
		return;
	}
	users = json_object_get(doc, "users");
	json_object_foreach(users, key, o) {
		struct ent_user *u;
		const char *p = json_string_value(json_object_get(o, "pending"));
		json_t *pl = json_object_get(o, "payload");
		const char *src = json_string_value(json_object_get(o, "source"));

		if (!json_is_object(o) || !name_valid_user(key, &why))
			continue;
		u = xcalloc(1, sizeof(*u));
		u->name = xstrdup(key);
		u->announced = json_is_true(json_object_get(o, "announced"));
		u->folder = json_is_true(json_object_get(o, "folder"));
		u->row = json_is_true(json_object_get(o, "row"));
		u->pending = p == NULL                  ? EP_NONE
			     : strcmp(p, "add") == 0    ? EP_ADD
			     : strcmp(p, "remove") == 0 ? EP_REMOVE
							: EP_NONE;
		u->deadline_ms =
			json_integer_value(json_object_get(o, "deadline_ms"));
		u->payload = json_is_object(pl) ? json_deep_copy(pl) : NULL;
		u->source = src != NULL ? xstrdup(src) : NULL;
		ent_user_free(hmap_put(ent->users, key, u));
	}
	if (hmap_count(ent->users) > 0)
		log_msg(LOG_INFO_L, ENTITY_WHO,
			"%zu users with a pending change loaded from %s",
			hmap_count(ent->users), ent->state_file);
	json_decref(doc);
}

/* ---- submitting ---- */

static void entity_pass_cb(struct event *ev, const char *error, void *ctx)
{
	struct ent_pass *p = ctx;

	if (p->cb != NULL)
		p->cb(ev != NULL, error, p->ctx);
	free(p);
}

static int entity_pass(struct engine *e, const char *type,
		       const char *subject, const char *source,
		       json_t *payload, entity_done_fn *cb, void *ctx,
		       const char **error_r)
{
	struct ent_pass *p = xmalloc(sizeof(*p));
	int ret;

	p->cb = cb;
	p->ctx = ctx;
	ret = engine_submit(e, type, subject, source, payload, entity_pass_cb,
			    p, error_r);
	if (ret < 0)
		free(p);
	return ret;
}

/* Drop u's entry when nothing sets it apart from the sources' snapshots. */
static void entity_user_settle(struct entity *ent, struct ent_user *u)
{
	if (u->pending == EP_NONE && u->announced == (u->folder || u->row)) {
		hmap_del(ent->users, u->name);
		ent_user_free(u);
	}
}

static void entity_unref(struct entity *ent)
{
	if (--ent->refs > 0)
		return;
	hmap_free(&ent->users, ent_user_free);
	hmap_free(&ent->holds, NULL);
	free(ent->root);
	free(ent->state_file);
	free(ent);
}

static void entity_emit_cb(struct event *ev, const char *error, void *ctx)
{
	struct ent_emit *em = ctx;
	struct entity *ent = em->ent;

	if (ev == NULL && !ent->stopping) {
		struct ent_user *u = hmap_get(ent->users, em->name);

		log_msg(LOG_ERROR_L, ENTITY_WHO,
			"user %s: event not journaled (%s): tried again",
			em->name, error != NULL ? error : "error");
		if (u == NULL) {
			u = xcalloc(1, sizeof(*u));
			u->name = xstrdup(em->name);
			u->folder = entity_folder_known(ent, em->name);
			u->row = ent->have_db &&
				 ent->db.user_row(ent->db.ctx, em->name);
			hmap_put(ent->users, u->name, u);
		}
		u->announced = em->kind != EP_ADD;
		u->pending = em->kind;
		u->deadline_ms = now_ms() + ENTITY_RETRY_MS;
		entity_save(ent);
		entity_schedule(ent);
	}
	free(em->name);
	free(em);
	entity_unref(ent);
}

/* Send user.added / user.removed for u now. */
static void entity_user_emit(struct entity *ent, struct ent_user *u,
			     enum ent_pending kind)
{
	struct ent_emit *em = xmalloc(sizeof(*em));
	char *subject = xasprintf("user:%s", u->name);
	json_t *p = u->payload != NULL ? json_deep_copy(u->payload)
				       : json_object();
	const char *err = NULL;

	json_object_set_new(p, "user", json_string(u->name));
	em->ent = ent;
	em->name = xstrdup(u->name);
	em->kind = kind;
	ent->refs++;
	if (engine_submit(ent->e, kind == EP_ADD ? "user.added" : "user.removed",
			  subject, u->source != NULL ? u->source : "inotify", p,
			  entity_emit_cb, em, &err) < 0) {
		log_msg(LOG_ERROR_L, ENTITY_WHO, "user %s: %s", u->name,
			err != NULL ? err : "cannot submit");
		free(em->name);
		free(em);
		ent->refs--;
	}
	free(subject);
	u->announced = kind == EP_ADD;
	u->pending = EP_NONE;
	json_decref(u->payload);
	u->payload = NULL;
	free(u->source);
	u->source = NULL;
}

static void entity_user_start(struct entity *ent, struct ent_user *u,
			      enum ent_pending kind)
{
	if (u->pending == kind)
		return;
	u->pending = kind;
	u->deadline_ms = now_ms() + ent->wait_ms;
	entity_kick(ent);
}

/* Merge an observation's payload into u's (the row's fields win). */
static void entity_user_take(struct ent_user *u, const char *source,
			     json_t *payload, bool db)
{
	if (payload == NULL)
		return;
	if (u->payload == NULL) {
		u->payload = json_incref(payload);
	} else if (db) {
		json_object_update(u->payload, payload);
	} else {
		json_object_update_missing(u->payload, payload);
	}
	if (u->source == NULL || db) {
		free(u->source);
		u->source = xstrdup(source);
	}
}

struct left_ctx {
	struct entity *ent;
	bool left;
};

static void entity_domain_left(const char *domain, void *arg)
{
	struct left_ctx *lc = arg;
	char *path;

	if (lc->left || !lc->ent->have_files)
		return;
	path = xasprintf("%s/caddy/domains/%s.conf", lc->ent->root, domain);
	lc->left = lc->ent->files.known(lc->ent->files.ctx, path);
	free(path);
}

/* user.removed for u, once the conf of every domain it owned is gone (the
 * watcher submitted their domain.removed), or at once when forced. */
static void entity_user_try_remove(struct entity *ent, struct ent_user *u,
				   bool forced)
{
	struct left_ctx lc = { ent, false };

	if (!forced && ent->have_db)
		ent->db.user_domains(ent->db.ctx, u->name, entity_domain_left,
				     &lc);
	if (lc.left) {
		if (u->pending != EP_REMOVE) {
			u->pending = EP_REMOVE;
			u->deadline_ms = now_ms() + ent->wait_ms;
		}
		return;
	}
	entity_user_emit(ent, u, EP_REMOVE);
}

static struct ent_user *entity_user_get(struct entity *ent, const char *name,
					bool db, bool present)
{
	struct ent_user *u = hmap_get(ent->users, name);

	if (u != NULL)
		return u;
	u = xcalloc(1, sizeof(*u));
	u->name = xstrdup(name);
	/* the observing source's snapshot says the new state already: what
	 * it said before is !present; the other's is its snapshot */
	if (db) {
		u->row = !present;
		u->folder = entity_folder_known(ent, name);
	} else {
		u->folder = !present;
		u->row = ent->have_db && ent->db.user_row(ent->db.ctx, name);
	}
	u->announced = u->folder || u->row;
	hmap_put(ent->users, u->name, u);
	return u;
}

/* One source saw u appear (present) or go. */
static void entity_user_observe(struct entity *ent, const char *name,
				const char *source, json_t *payload,
				bool present)
{
	bool db = strcmp(source, "db") == 0;
	struct ent_user *u = entity_user_get(ent, name, db, present);

	if (db)
		u->row = present;
	else
		u->folder = present;
	if (present) {
		entity_user_take(u, source, payload, db);
		if (!u->announced) {
			if (u->folder && (u->row || !entity_db_active(ent)))
				entity_user_emit(ent, u, EP_ADD);
			else
				entity_user_start(ent, u, EP_ADD);
		} else if (u->pending == EP_REMOVE) {
			u->pending = EP_NONE; /* back before the deadline */
		}
	} else if (!u->announced) {
		if (u->pending == EP_ADD && !u->folder && !u->row)
			u->pending = EP_NONE; /* gone before the deadline */
	} else {
		if (u->payload == NULL)
			entity_user_take(u, source, payload, db);
		if (!u->folder && !u->row)
			entity_user_try_remove(ent, u, false);
		else
			entity_user_start(ent, u, EP_REMOVE);
	}
	entity_user_settle(ent, u);
	entity_save(ent);
	entity_schedule(ent);
}

/* The DB says old_name is now u (same row): one user.renamed. */
static int entity_user_renamed(struct entity *ent, const char *name,
			       const char *subject, const char *source,
			       json_t *payload, entity_done_fn *cb, void *ctx,
			       const char **error_r)
{
	const char *old = json_string_value(json_object_get(payload, "old_user"));
	struct ent_user *u;
	int ret;

	if (old != NULL) {
		u = entity_user_get(ent, old, true, false);
		u->row = false;
		u->announced = false;
		u->pending = EP_NONE;
		entity_user_settle(ent, u);
	}
	u = entity_user_get(ent, name, true, true);
	u->row = true;
	u->announced = true;
	u->pending = EP_NONE;
	json_decref(u->payload);
	u->payload = NULL;
	entity_user_settle(ent, u);
	entity_save(ent);
	entity_schedule(ent);
	ret = entity_pass(ent->e, "user.renamed", subject, source, payload, cb,
			  ctx, error_r);
	return ret;
}

/* Another event about a user with a pending change: the change goes first
 * (as it is), so that the user's events keep their order. */
static void entity_user_flush(struct entity *ent, const char *name)
{
	struct ent_user *u = hmap_get(ent->users, name);

	if (u == NULL || u->pending == EP_NONE)
		return;
	if (u->pending == EP_ADD) {
		if (u->folder || u->row)
			entity_user_emit(ent, u, EP_ADD);
		else
			u->pending = EP_NONE;
	} else {
		entity_user_try_remove(ent, u, true);
	}
	entity_user_settle(ent, u);
	entity_save(ent);
}

/* ---- domains held for their owner ---- */

static void entity_hold_release(struct entity *ent, struct ent_hold *h)
{
	struct ent_held *x = h->head;

	hmap_del(ent->holds, h->subject);
	while (x != NULL) {
		struct ent_held *next = x->next;
		const char *err = NULL;

		ent->n_held--;
		if (entity_pass(ent->e, x->type, h->subject, x->source,
				x->payload, x->cb, x->ctx, &err) < 0) {
			log_msg(LOG_ERROR_L, ENTITY_WHO, "%s %s: %s", x->type,
				h->subject, err != NULL ? err : "refused");
			if (x->cb != NULL)
				x->cb(false, err, x->ctx);
		}
		free(x->type);
		free(x->source);
		free(x);
		x = next;
	}
	free(h->subject);
	free(h);
}

static void entity_hold_add(struct ent_hold *h, const char *type,
			    const char *source, json_t *payload,
			    entity_done_fn *cb, void *ctx)
{
	struct ent_held *x = xcalloc(1, sizeof(*x));

	x->type = xstrdup(type);
	x->source = xstrdup(source);
	x->payload = payload;
	x->cb = cb;
	x->ctx = ctx;
	if (h->tail != NULL)
		h->tail->next = x;
	else
		h->head = x;
	h->tail = x;
	h->n++;
}

struct release_ctx {
	struct entity *ent;
	int64_t before; /* release holds since <= before (mono) */
	struct ent_hold **v;
	size_t n, cap;
};

static bool entity_collect_holds(const char *key, void *value, void *ctx)
{
	struct release_ctx *rc = ctx;
	struct ent_hold *h = value;

	(void)key;
	if (h->since_ms <= rc->before) {
		if (rc->n == rc->cap) {
			rc->cap = rc->cap ? rc->cap * 2 : 8;
			rc->v = xrealloc(rc->v, rc->cap * sizeof(*rc->v));
		}
		rc->v[rc->n++] = h;
	}
	return true;
}

static void entity_release_before(struct entity *ent, int64_t before)
{
	struct release_ctx rc = { ent, before, NULL, 0, 0 };

	hmap_each(ent->holds, entity_collect_holds, &rc);
	for (size_t i = 0; i < rc.n; i++)
		entity_hold_release(ent, rc.v[i]);
	free(rc.v);
}

/* ---- timer ---- */

struct due_ctx {
	struct entity *ent;
	int64_t now, next; /* wall clock */
	struct ent_user **v;
	size_t n, cap;
};

static bool entity_collect_due(const char *key, void *value, void *ctx)
{
	struct due_ctx *dc = ctx;
	struct ent_user *u = value;

	(void)key;
	if (u->pending == EP_NONE)
		return true;
	if (u->deadline_ms <= dc->now) {
		if (dc->n == dc->cap) {
			dc->cap = dc->cap ? dc->cap * 2 : 8;
			dc->v = xrealloc(dc->v, dc->cap * sizeof(*dc->v));
		}
		dc->v[dc->n++] = u;
	} else if (dc->next == 0 || u->deadline_ms < dc->next) {
		dc->next = u->deadline_ms;
	}
	return true;
}

static bool entity_hold_next(const char *key, void *value, void *ctx)
{
	int64_t *next = ctx;
	struct ent_hold *h = value;

	(void)key;
	if (*next == 0 || h->since_ms < *next)
		*next = h->since_ms;
	return true;
}

static unsigned entity_owner_wait(const struct entity *ent)
{
	return ent->wait_ms < ENTITY_OWNER_WAIT_MS ? ent->wait_ms
						   : ENTITY_OWNER_WAIT_MS;
}

static void entity_timer_cb(uv_timer_t *t)
{
	struct entity *ent = t->data;
	struct due_ctx dc = { ent, now_ms(), 0, NULL, 0, 0 };
	bool changed = false;

	if (ent->stopping)
		return;
	entity_release_before(ent, mono_ms() - entity_owner_wait(ent));
	hmap_each(ent->users, entity_collect_due, &dc);
	for (size_t i = 0; i < dc.n; i++) {
		struct ent_user *u = dc.v[i];

		if (u->pending == EP_ADD) {
			if (u->folder || u->row)
				entity_user_emit(ent, u, EP_ADD);
			else
				u->pending = EP_NONE;
		} else if (!u->folder && !u->row &&
			   u->domain_waits < ENTITY_DOMAINS_WAITS) {
			/* both sources agree; only domains' confs are left
			 * (the watcher is behind): wait for them again */
			u->domain_waits++;
			u->deadline_ms = dc.now + ent->wait_ms;
			entity_user_try_remove(ent, u, false);
		} else {
			entity_user_try_remove(ent, u, true);
		}
		entity_user_settle(ent, u);
		changed = true;
	}
	free(dc.v);
	if (changed)
		entity_save(ent);
	entity_schedule(ent);
}

static void entity_schedule(struct entity *ent)
{
	struct due_ctx dc = { ent, now_ms(), 0, NULL, 0, 0 };
	int64_t hold = 0, delay = -1;

	if (ent->stopping)
		return;
	hmap_each(ent->users, entity_collect_due, &dc);
	if (dc.n > 0)
		delay = 0;
	else if (dc.next != 0)
		delay = dc.next - dc.now;
	free(dc.v);
	hmap_each(ent->holds, entity_hold_next, &hold);
	if (hold != 0) {
		int64_t d = hold + entity_owner_wait(ent) - mono_ms();

		if (d < 0)
			d = 0;
		if (delay < 0 || d < delay)
			delay = d;
	}
	if (delay < 0) {
		uv_timer_stop(&ent->timer);
		return;
	}
	uv_timer_start(&ent->timer, entity_timer_cb, (uint64_t)delay, 0);
}

/* ---- public ---- */

int entity_submit(struct entity *ent, struct engine *e, const char *type,
		  const char *subject, const char *source, json_t *payload,
		  entity_done_fn *cb, void *ctx, const char **error_r)
{
	const char *name, *why;
	struct ent_hold *h;
	bool added, removed;
	int ret;

	if (ent == NULL || ent->stopping)
		return entity_pass(e, type, subject, source, payload, cb, ctx,
				   error_r);
	name = entity_user_of(subject);
	added = strcmp(type, "user.added") == 0;
	removed = strcmp(type, "user.removed") == 0;
	if (name != NULL && (added || removed)) {
		if (!name_valid_user(name, &why)) {
			*error_r = why;
			json_decref(payload);
			return -EINVAL;
		}
		entity_user_observe(ent, name, source, payload, added);
		json_decref(payload);
		if (cb != NULL)
			cb(true, NULL, ctx);
		return 0;
	}
	if (name != NULL && strcmp(type, "user.renamed") == 0 &&
	    strcmp(source, "db") == 0)
		return entity_user_renamed(ent, name, subject, source, payload,
					   cb, ctx, error_r);
	if (name != NULL && strncmp(type, "user.", 5) == 0) {
		entity_user_flush(ent, name);
		entity_schedule(ent);
		return entity_pass(e, type, subject, source, payload, cb, ctx,
				   error_r);
	}
	if (strncmp(type, "domain.", 7) != 0)
		return entity_pass(e, type, subject, source, payload, cb, ctx,
				   error_r);
	h = hmap_get(ent->holds, subject);
	if (h == NULL && strcmp(type, "domain.added") == 0 &&
	    json_object_get(payload, "user") == NULL &&
	    name_valid_domain(subject, &why) && entity_db_active(ent) &&
	    !ent->db.domain_owned(ent->db.ctx, subject) &&
	    entity_owner_wait(ent) > 0) {
		/* its row came after the last poll: one poll more */
		h = xcalloc(1, sizeof(*h));
		h->subject = xstrdup(subject);
		h->since_ms = mono_ms();
		hmap_put(ent->holds, subject, h);
		entity_kick(ent);
		entity_schedule(ent);
	}
	if (h != NULL) {
		entity_hold_add(h, type, source, payload, cb, ctx);
		ent->n_held++;
		return 0;
	}
	ret = entity_pass(e, type, subject, source, payload, cb, ctx, error_r);
	if (ret < 0)
		return ret;
	if (strcmp(type, "domain.removed") == 0 &&
	    hmap_count(ent->users) > 0) {
		/* a user's removal may have waited for this one */
		struct due_ctx dc = { ent, INT64_MAX, 0, NULL, 0, 0 };
		bool changed = false;

		hmap_each(ent->users, entity_collect_due, &dc);
		for (size_t i = 0; i < dc.n; i++) {
			struct ent_user *u = dc.v[i];

			if (u->pending == EP_REMOVE && !u->folder && !u->row) {
				entity_user_try_remove(ent, u, false);
				entity_user_settle(ent, u);
				changed = true;
			}
		}
		free(dc.v);
		if (changed) {
			entity_save(ent);
			entity_schedule(ent);
		}
	}
	return 0;
}

void entity_db_polled(struct entity *ent, int64_t started_ms)
{
	if (ent == NULL || ent->stopping)
		return;
	entity_release_before(ent, started_ms);
	entity_schedule(ent);
}

void entity_set_db(struct entity *ent, const struct entity_db *db)
{
	if (ent == NULL)
		return;
	ent->have_db = db != NULL;
	if (db != NULL) {
		ent->db = *db;
	} else {
		memset(&ent->db, 0, sizeof(ent->db));
		entity_release_before(ent, INT64_MAX);
	}
}

void entity_set_files(struct entity *ent, const struct entity_files *files)
{
	if (ent == NULL)
		return;
	ent->have_files = files != NULL;
	if (files != NULL)
		ent->files = *files;
	else
		memset(&ent->files, 0, sizeof(ent->files));
}

unsigned entity_pending_users(const struct entity *ent)
{
	return ent != NULL ? (unsigned)hmap_count(ent->users) : 0;
}

unsigned entity_held_events(const struct entity *ent)
{
	return ent != NULL ? ent->n_held : 0;
}

int entity_new(struct engine *e, struct entity **ent_r, const char **error_r)
{
	const struct config *cfg = engine_config(e);
	struct entity *ent;
	int ret;

	*ent_r = NULL;
	ret = mkdir_p(cfg->state_dir, 0700);
	if (ret < 0 && ret != -EEXIST) {
		*error_r = "state_dir: cannot create it";
		return ret;
	}
	ent = xcalloc(1, sizeof(*ent));
	ent->e = e;
	ent->loop = engine_loop(e);
	ent->root = xstrdup(cfg->root);
	ent->state_file = xasprintf("%s/%s", cfg->state_dir,
				    ENTITY_STATE_FILE);
	ent->wait_ms = cfg->panel_db.merge_wait_ms;
	ent->users = hmap_new();
	ent->holds = hmap_new();
	ent->refs = 1;
	uv_timer_init(ent->loop, &ent->timer);
	ent->timer.data = ent;
	entity_load(ent);
	entity_schedule(ent);
	*ent_r = ent;
	return 0;
}

static void entity_timer_closed(uv_handle_t *h)
{
	entity_unref(h->data);
}

void entity_free(struct entity **entp)
{
	struct entity *ent = *entp;

	if (ent == NULL)
		return;
	*entp = NULL;
	entity_release_before(ent, INT64_MAX);
	ent->stopping = true;
	uv_timer_stop(&ent->timer);
	uv_close((uv_handle_t *)&ent->timer, entity_timer_closed);
}
