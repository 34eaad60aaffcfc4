/* The watcher: raw inotify over the OpenPanel tree and the extra roots,
 * a settle window per path, the snapshot and the reconcile.
 *
 * Flow: inotify event -> path marked dirty (settle list, one timer for
 * all paths) -> settled: open (O_NOFOLLOW) + fstat + read + hash ->
 * compare with the snapshot -> classify -> engine_submit() -> once every
 * event of the change is journaled, the snapshot of the path is queued
 * and written in batches by the snapshot's writer thread.  A crash
 * between the two gives duplicates at the next start, never a loss.
 * Reconcile walks the trees on the thread pool (stat + hash), then compares
 * with the snapshot on the loop in chunks. */
#define _GNU_SOURCE
#include "watch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "classify.h"
#include "dispatch.h"
#include "engine.h"
#include "entity.h"
#include "hmap.h"
#include "journal.h"
#include "log.h"
#include "mountwatch.h"
#include "snapshot.h"
#include "util.h"

#define WATCH_MASK                                                           \
	(IN_CREATE | IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_FROM |            \
	 IN_MOVED_TO |                                                       \
	 IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW |        \
	 IN_ONLYDIR | IN_EXCL_UNLINK)
#define WATCH_READ_BUF (256 * 1024)
#define WATCH_FILE_MAX (32u << 20) /* bigger files are not classified */
#define WATCH_CHUNK 128            /* paths processed per loop turn (a
				      burst reaches the journal, then the
				      delivery queue, in smaller steps) */
#define WATCH_FLUSH_MS 200
#define WATCH_FLUSH_BATCH 4096
#define WATCH_MAX_INFLIGHT 512     /* changes submitted, not yet journaled
				      (each holds its events: memory; they
				      reach the delivery queue at once when
				      journaled) */
/* Deliveries every handler holds in memory past which settled paths wait
 * (as dirty paths, ~100 B each) instead of becoming events: below a
 * handler's window, so a burst is not spilled to the journal and read back
 * when all handlers are busy.  Short, because while a
 * handler is past its share of the slots every finished call walks the
 * ready lanes (dispatch_pump; bench/README.md has the figures).  Waiting
 * paths look again every 2 ms, so the queue does not run dry before 128k
 * deliveries/s. */
#define WATCH_QUEUE_HIGH 256
#define WATCH_QUEUE_RETRY_MS 2
/* ... but only while the queue drains: stuck that long (failing handlers
 * waiting for their retries), paths go on and the engine spills. */
#define WATCH_QUEUE_STUCK_MS 1000
/* Out of descriptors (EMFILE, ENFILE) or of inotify watches (ENOSPC):
 * every this long the paths that could not be read are read again, the
 * folders that could not be watched are polled (stat and scan) and their
 * watch tried again (the limit may have been raised). */
#define WATCH_TROUBLE_MS 1000

struct watch_dir {
	int wd;
	bool recursive; /* under a root folder (else: a parent watched for a
			   root that is a file or does not exist yet) */
	char *path;
};

struct dirty {
	struct dirty *prev, *next;
	struct dlist *list;
	int64_t deadline_ms;
	bool replaced; /* a file created or renamed onto the path since it
			  was last looked at (not a truncate in place) */
	bool empty_again; /* a customer's file found emptied in place a
			     second ago: empty is now its content */
	bool look;  /* looked at, not reported changed (a new context's
		       file): its events have source "reconcile" */
	char *path; /* key in w->dirty too */
};

/* A FIFO of dirty paths with one delay: deadlines grow along the list, so
 * one timer (for the head) serves every path. */
struct dlist {
	struct dirty *head, *tail;
	unsigned delay_ms;
	uv_timer_t timer;
	struct watch *w;
};

struct recon_item {
	char *path;
	uint64_t hash;
	bool exists;
};

struct recon_job {
	uv_work_t req;
	struct watch *w;
	char *root, *home, *notif;
	struct classify_roots croots; /* root, home, notif */
	char **roots;
	size_t n_roots;
	size_t n_static; /* roots[n_static..]: customer files, never walked
			    as folders */
	struct recon_item *items;
	size_t n_items, cap_items;
	char **gone; /* phase 2: snapshot paths not seen */
	char **skipped; /* folders the walk could not open (EMFILE): what
			   is below them is not "gone" */
	size_t n_skipped, cap_skipped;
	size_t n_gone, next;
	uint32_t gen;
	unsigned events;
	bool baseline;
	bool in_pool; /* the walk runs on the thread pool */
};

struct recon_waiter {
	void (*cb)(unsigned events, void *ctx);
	void *ctx;
	struct recon_waiter *next;
};

struct watch {
	struct engine *e;
	struct entity *ent; /* user and domain events merge there (or NULL) */
	uv_loop_t *loop;
	char *root;
	char *home;  /* paths.home, normalized */
	char *notif; /* paths.admin_notifications, normalized */
	struct classify_roots croots; /* root, home, notif */
	struct mountwatch *mounts; /* mounts on, under or above the roots */
	char **roots; /* root + watch_extra + the notification log, then
			 <home>/<ctx>/crons.ini and backup.env per context */
	size_t n_roots, cap_roots;
	size_t n_static; /* roots before this are the configured ones */
	struct hmap *root_set; /* root path -> (void *)1 */
	struct hmap *contexts; /* the panel's contexts -> (void *)1 */
	bool rebaseline; /* contexts came during the first baseline: the
			    next reconcile is a baseline too */
	bool started_fresh; /* no baseline when started */
	bool contexts_told; /* watch_set_contexts was called */
	unsigned settle_ms;

	int ifd;
	uv_poll_t poll;
	char *rbuf;
	struct hmap *wd_map;   /* "wd" -> struct watch_dir */
	struct hmap *path_map; /* path -> struct watch_dir */
	struct watch_dir *last_wdir; /* of the last event (a burst comes
					 from one folder), or NULL */
	uint32_t move_cookie;  /* last unpaired IN_MOVED_FROM */
	char *move_from;

	struct hmap *dirty;    /* path -> struct dirty */
	struct dlist settle;   /* changed: processed settle_ms after the last
				  change */
	struct dlist created;  /* created, not yet closed: processed at the
				  close, or after a second (hard links) */

	struct snapshot *snap;
	bool fresh;            /* first run: the first reconcile records a
				  baseline silently */
	uv_timer_t flush_timer;

	uv_timer_t periodic_timer;
	uv_timer_t lost_timer;
	bool lost_reconcile;   /* the lost timer reconciles too */
	bool throttled;        /* too many changes not yet journaled */
	int64_t qwait_ms;      /* delivery queue seen full since (0: not) */
	unsigned qwait_low;    /* lowest queue length seen since then */
	uv_idle_t recon_idle;
	struct recon_job *job;
	bool recon_again;
	struct recon_waiter *waiters, *waiters_next;
	uint32_t gen;

	bool replaced;         /* the path being processed was replaced
				  (struct dirty's flag) */
	bool empty_again;      /* ... was seen emptied before (idem) */
	unsigned inflight;     /* changes whose events are not journaled */
	unsigned handles_open;
	bool stopping;
	uint64_t n_events, n_changes;

	/* descriptors short: path -> WATCH_RETRY_FILE or _DIR, read again
	 * (folders scanned again) by the trouble timer */
	struct hmap *retry;
	bool fd_short;         /* an episode is on (logged once) */
	unsigned fd_hits;      /* shortages since the last tick */
	/* the inotify watch limit: folders without a watch, polled */
	struct hmap *unwatched; /* path -> (void *)1 */
	bool limit_hit;        /* an episode is on (logged once) */
	uv_timer_t trouble_timer;
};

#define WATCH_RETRY_FILE ((void *)1)
#define WATCH_RETRY_DIR ((void *)2)

/* A change whose events are being journaled. */
struct change {
	struct watch *w;
	char *path;
	bool gone;
	struct snapshot_entry next; /* state to persist */
	bool had_prev;
	struct snapshot_entry prev; /* state to restore on failure */
	unsigned remaining;
	bool failed;
};

static void watch_process(struct watch *w, const char *path,
			  const char *source, unsigned *events_r);
static void watch_dirty_empty_again(struct watch *w, const char *path);
static void watch_maybe_free(struct watch *w);
static void watch_reconcile_begin(struct watch *w);
static void watch_dirty(struct watch *w, const char *path);
static void watch_drain(struct watch *w);
static void dlist_schedule(struct watch *w, struct dlist *l);
static void recon_idle_cb(uv_idle_t *h);
static void watch_fd_short(struct watch *w, const char *path, bool is_dir,
			   int err);
static void watch_trouble_start(struct watch *w);

/* ---- file access ---- */

static char *path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *s = xmalloc(dl + 1 + nl + 1);

	memcpy(s, dir, dl);
	s[dl] = '/';
	memcpy(s + dl + 1, name, nl + 1);
	return s;
}

static char *path_normalize(const char *p)
{
	char *s = xstrdup(p);
	size_t n = strlen(s);

	while (n > 1 && s[n - 1] == '/')
		s[--n] = '\0';
	return s;
}

/* Read a regular file without following symlinks.  0 (content in
 * *data_r), -ENOENT (absent), -ELOOP (a symlink), -EISDIR (a folder),
 * other -errno. */
static int watch_read(const char *path, char **data_r, size_t *len_r,
		      struct stat *st_r, bool customer)
{
	struct stat st;
	int fd, ret = 0;
	char *buf;
	size_t len = 0, cap;

	*data_r = NULL;
	*len_r = 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == EMLINK)
			return -ELOOP;
		if (errno == ENOTDIR)
			return -ENOENT;
		return -errno;
	}
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		if (st_r != NULL)
			*st_r = st;
		return -EISDIR;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > WATCH_FILE_MAX ||
	    (customer && (uint64_t)st.st_size > CLASSIFY_CUSTOMER_MAX)) {
		close(fd);
		return -EFBIG;
	}
	if (customer && st.st_nlink > 1) {
		/* a hard link a customer made to another file */
		close(fd);
		return -EMLINK;
	}
	cap = (size_t)st.st_size + 1;
	buf = xmalloc(cap + 1);
	for (;;) {
		ssize_t n;

		if (len == cap) {
			if (cap > WATCH_FILE_MAX) {
				free(buf);
				close(fd);
				return -EFBIG;
			}
			cap *= 2;
			buf = xrealloc(buf, cap + 1);
		}
		n = read(fd, buf + len, cap - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			free(buf);
			close(fd);
			return ret;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		/* a short read of a regular file is its end: no second read
		 * for the 0 (unless it came short of the size fstat gave) */
		if (len < cap && st.st_size > 0 && len >= (size_t)st.st_size)
			break;
	}
	/* written while read (a truncate, a write): what was read may be a
	 * state the file only passed through */
	{
		struct stat st2;

		if (fstat(fd, &st2) == 0 &&
		    (st2.st_size != st.st_size ||
		     st2.st_mtim.tv_sec != st.st_mtim.tv_sec ||
		     st2.st_mtim.tv_nsec != st.st_mtim.tv_nsec ||
		     len != (size_t)st.st_size)) {
			free(buf);
			close(fd);
			return -EAGAIN;
		}
	}
	close(fd);
	buf[len] = '\0';
	*data_r = buf;
	*len_r = len;
	if (st_r != NULL)
		*st_r = st;
	return 0;
}

/* What the path holds now, for comparing with the snapshot: existence and
 * the hash (content + the aux file).  Content and aux are returned when
 * wanted (may be NULL). */
struct observed {
	bool exists;
	bool symlink;
	bool is_dir;
	struct stat st;
	char *data, *aux;
	size_t len, aux_len;
	uint64_t hash;
	int err;
};

static void observed_clear(struct observed *o)
{
	free(o->data);
	free(o->aux);
	memset(o, 0, sizeof(*o));
}

static void watch_observe(const struct classify_target *t, const char *path,
			  struct observed *o)
{
	int ret;

	memset(o, 0, sizeof(*o));
	if (classify_kind_is_dir(t->kind)) {
		struct stat st;

		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
			o->exists = o->is_dir = true;
			o->st = st;
			o->data = xstrdup("");
			o->hash = 1;
		} else if (errno != ENOENT && errno != ENOTDIR) {
			o->err = -errno;
		}
		return;
	}
	ret = watch_read(path, &o->data, &o->len, &o->st,
			 classify_kind_is_customer(t->kind));
	if (ret == -ELOOP) {
		o->symlink = true;
		return;
	}
	if (ret == -ENOENT || ret == -EISDIR)
		return;
	if (ret < 0) {
		o->err = ret;
		return;
	}
	o->exists = true;
	o->hash = classify_hash(o->data, o->len, CLASSIFY_HASH_SEED);
	char *aux = classify_aux_path(t, path);
	if (aux != NULL) {
		if (watch_read(aux, &o->aux, &o->aux_len, NULL, false) == 0)
			o->hash = classify_hash(o->aux, o->aux_len,
						o->hash ^ 0x9e3779b97f4a7c15ULL);
		free(aux);
	}
}

/* ---- snapshot writes ---- */

static void watch_flush_cb(uv_timer_t *t);

/* Record the journal's last id with the next snapshot batch. */
static void watch_mark_journal(struct watch *w)
{
	struct journal *j = engine_journal(w->e);

	/* every queued state is journaled: the journal reaches this id */
	if (j != NULL && snapshot_pending(w->snap) > 0)
		snapshot_set_journal_mark(w->snap, journal_last_id(j));
}

/* Write the queued snapshot states now (baseline, stop). */
static void watch_flush(struct watch *w)
{
	const char *err;

	if (w->snap == NULL)
		return;
	watch_mark_journal(w);
	if (snapshot_flush(w->snap, &err) < 0)
		log_error("watch: %s", err);
}

/* Hand the queued states to the snapshot's writer thread (the SQLite
 * transaction off the loop); still queued (the writer busy, or failed):
 * again in WATCH_FLUSH_MS. */
static void watch_flush_async(struct watch *w)
{
	const char *err;

	if (w->snap == NULL)
		return;
	watch_mark_journal(w);
	if (snapshot_flush_async(w->snap, &err) < 0)
		log_error("watch: %s", err);
	if (snapshot_pending(w->snap) > 0 && !w->stopping &&
	    !uv_is_active((uv_handle_t *)&w->flush_timer))
		uv_timer_start(&w->flush_timer, watch_flush_cb, WATCH_FLUSH_MS,
			       0);
}

static void watch_flush_cb(uv_timer_t *t)
{
	watch_flush_async(t->data);
}

static void watch_persist(struct watch *w, const char *path,
			  const struct snapshot_entry *e)
{
	snapshot_persist(w->snap, path, e);
	if (snapshot_pending(w->snap) >= WATCH_FLUSH_BATCH)
		watch_flush_async(w);
	else if (!w->stopping && !uv_is_active((uv_handle_t *)&w->flush_timer))
		uv_timer_start(&w->flush_timer, watch_flush_cb, WATCH_FLUSH_MS,
			       0);
}

/* ---- events ---- */

static void change_free(struct change *c)
{
	free(c->path);
	snapshot_entry_clear(&c->next);
	snapshot_entry_clear(&c->prev);
	free(c);
}

static void change_done(struct change *c)
{
	struct watch *w = c->w;
	struct snapshot_entry *cur = snapshot_get(w->snap, c->path);

	if (cur != NULL && cur->busy > 0)
		cur->busy--;
	if (!c->failed) {
		watch_persist(w, c->path, c->gone ? NULL : &c->next);
	} else {
		/* Not journaled: forget what we learnt so that the next
		 * reconcile classifies the change again. */
		if (c->had_prev)
			snapshot_put(w->snap, c->path, &c->prev);
		else
			snapshot_del(w->snap, c->path);
		log_error("watch: events for %s were not journaled; the "
			  "next reconcile retries", c->path);
	}
	change_free(c);
	w->inflight--;
	if (w->stopping) {
		watch_maybe_free(w);
		return;
	}
	if (w->throttled && w->inflight <= WATCH_MAX_INFLIGHT / 2) {
		w->throttled = false;
		dlist_schedule(w, &w->settle);
		dlist_schedule(w, &w->created);
		if (w->job != NULL && !w->job->in_pool)
			uv_idle_start(&w->recon_idle, recon_idle_cb);
	}
}

static void watch_submit_cb(bool ok, const char *error, void *ctx)
{
	struct change *c = ctx;

	if (!ok) {
		c->failed = true;
		log_error("watch: journal: %s", error ? error : "failed");
	}
	if (--c->remaining == 0)
		change_done(c);
}

static void entry_from(struct snapshot_entry *e, const struct observed *o,
		       json_t *facts, uint32_t gen)
{
	memset(e, 0, sizeof(*e));
	e->ino = (uint64_t)o->st.st_ino;
	e->size = (uint64_t)o->st.st_size;
	e->mtime_ns = (int64_t)o->st.st_mtim.tv_sec * 1000000000LL +
		      o->st.st_mtim.tv_nsec;
	e->hash = o->hash;
	e->is_dir = o->is_dir;
	e->facts = facts != NULL && json_object_size(facts) > 0
			   ? json_dumps(facts, JSON_COMPACT | JSON_SORT_KEYS)
			   : NULL;
	e->seen = gen;
}

static void entry_copy_into(struct snapshot_entry *dst,
			    const struct snapshot_entry *src)
{
	*dst = *src;
	dst->facts = src->facts != NULL ? xstrdup(src->facts) : NULL;
}

static bool str_ends(const char *s, const char *end)
{
	size_t n = strlen(s), m = strlen(end);

	return n >= m && strcmp(s + n - m, end) == 0;
}

/* The first look at a path seeded from the journal: keep the events its
 * seeded facts can tell (suspended, unsuspended), drop the ones that
 * would only repeat what the journal has (added, updated, issued). */
static void watch_seeded_filter(struct classify_result *r)
{
	size_t k = 0;

	for (size_t i = 0; i < r->n_events; i++) {
		struct classify_event *ev = &r->events[i];

		if (str_ends(ev->type, ".suspended") ||
		    str_ends(ev->type, ".unsuspended")) {
			r->events[k++] = *ev;
			continue;
		}
		free(ev->type);
		free(ev->subject);
		json_decref(ev->payload);
	}
	r->n_events = k;
}

/* ---- corrupt or missing state ---- */

/* What the journal last said of one path. */
struct seed {
	bool exists;
	bool suspended;
	char *reason;
};

static void seed_free(void *p)
{
	struct seed *sd = p;

	free(sd->reason);
	free(sd);
}

/* The types whose subject is the path itself: their removal means the
 * path is gone (a mail.account.removed leaves its file in place). */
static bool seed_removes(const char *type)
{
	return strcmp(type, "domain.removed") == 0 ||
	       strcmp(type, "user.removed") == 0 ||
	       strcmp(type, "cert.removed") == 0;
}

static void seed_event(struct hmap *seeds, const char *type,
		       json_t *payload)
{
	const char *path = json_string_value(json_object_get(payload, "path"));
	const char *reason =
		json_string_value(json_object_get(payload, "reason"));
	struct seed *sd;

	if (path == NULL || path[0] != '/')
		return;
	sd = hmap_get(seeds, path);
	if (sd == NULL) {
		sd = xcalloc(1, sizeof(*sd));
		hmap_put(seeds, path, sd);
	}
	if (seed_removes(type)) {
		sd->exists = sd->suspended = false;
		return;
	}
	sd->exists = true;
	if (strncmp(type, "domain.", 7) != 0)
		return;
	if (strcmp(type, "domain.unsuspended") == 0) {
		sd->suspended = false;
		return;
	}
	if (strcmp(type, "domain.suspended") == 0 ||
	    json_is_true(json_object_get(payload, "suspended"))) {
		sd->suspended = true;
		if (reason != NULL) {
			free(sd->reason);
			sd->reason = xstrdup(reason);
		}
	} else if (strcmp(type, "domain.added") == 0 ||
		   strcmp(type, "domain.updated") == 0) {
		sd->suspended = false;
	}
}

struct seed_ctx {
	struct watch *w;
	size_t n;
};

static bool seed_put(const char *path, void *value, void *ctx)
{
	struct seed_ctx *sc = ctx;
	struct seed *sd = value;
	struct snapshot_entry e = { 0 };
	struct classify_target t;
	const char *why;
	json_t *facts;

	if (!sd->exists ||
	    classify_path_in(&sc->w->croots, path, &t, &why) ==
		    CLASSIFY_NONE)
		return true;
	e.is_dir = classify_kind_is_dir(t.kind);
	e.hash = 0; /* unknown: never equal to what is read */
	if (sd->suspended) {
		facts = json_object();
		json_object_set_new(facts, "suspended", json_true());
		if (sd->reason != NULL)
			json_object_set_new(facts, "reason",
					    json_string(sd->reason));
		e.facts = json_dumps(facts, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(facts);
	}
	snapshot_put(sc->w->snap, path, &e);
	watch_persist(sc->w, path, &e);
	snapshot_entry_clear(&e);
	sc->n++;
	return true;
}

/* The newest events the seed reads from the journal (the rest are older
 * than any path's last word in all but odd cases). */
#define WATCH_SEED_MAX 1000000u

/* Rebuild an emptied snapshot from the journal's last word on each path:
 * the paths that existed are put back (content unknown) so that the
 * reconcile gives *.removed for those gone while the daemon was down and
 * no *.added for the others.  Returns the number of paths put back. */
static size_t watch_seed(struct watch *w, struct journal *j, int64_t last)
{
	struct journal_filter f = { 0 };
	struct hmap *seeds = hmap_new();
	struct seed_ctx sc = { w, 0 };
	const char *err = NULL;
	json_t *events = NULL, *ev;
	size_t i;

	f.limit = last > (int64_t)WATCH_SEED_MAX ? WATCH_SEED_MAX
						 : (unsigned)last;
	if (journal_query(j, &f, &events, &err) < 0) {
		log_error("watch: the snapshot cannot be rebuilt from the "
			  "journal: %s", err != NULL ? err : "query failed");
		hmap_free(&seeds, seed_free);
		return 0;
	}
	json_array_foreach(events, i, ev) {
		const char *type =
			json_string_value(json_object_get(ev, "type"));
		json_t *payload = json_object_get(ev, "payload");

		if (type != NULL && json_is_object(payload))
			seed_event(seeds, type, payload);
	}
	json_decref(events);
	hmap_each(seeds, seed_put, &sc);
	hmap_free(&seeds, seed_free);
	snapshot_mark_baseline(w->snap);
	watch_flush(w);
	return sc.n;
}

/* Corrupt or missing state is never silent: a snapshot set aside, or
 * missing while the journal has events, is named in an error line and
 * rebuilt from the journal; a journal whose last id is below the mark the
 * snapshot kept was emptied or replaced, and is named too. */
static void watch_state_check(struct watch *w, const char *dbpath)
{
	struct journal *j = engine_journal(w->e);
	int64_t last = j != NULL ? journal_last_id(j) : 0;
	int64_t mark = snapshot_journal_mark(w->snap);
	const char *why = NULL;
	const char *aside = snapshot_recovered(w->snap, &why);
	size_t n;

	if (j != NULL && mark > last)
		log_error("watch: the journal ends at event %lld but the "
			  "snapshot %s recorded events up to %lld as "
			  "journaled: the journal was emptied or replaced; "
			  "events %lld..%lld and their pending deliveries "
			  "are lost (changes made from now on are "
			  "journaled)", (long long)last, dbpath,
			  (long long)mark, (long long)last + 1,
			  (long long)mark);
	if (aside != NULL) {
		n = j != NULL && last > 0 ? watch_seed(w, j, last) : 0;
		log_error("watch: snapshot %s was unreadable (%s): kept aside "
			  "as %s; rebuilt from the journal's last known state "
			  "of each path (%zu paths, up to event %lld): paths "
			  "removed meanwhile give *.removed, the others no "
			  "*.added (their changes meanwhile are taken as "
			  "none but suspensions)", dbpath,
			  why != NULL ? why : "?", aside, n,
			  (long long)last);
		w->fresh = false;
	} else if (snapshot_created(w->snap) && last > 0) {
		n = watch_seed(w, j, last);
		log_error("watch: snapshot %s was missing while the journal "
			  "holds events up to %lld: rebuilt from the "
			  "journal's last known state of each path (%zu "
			  "paths): paths removed meanwhile give *.removed, "
			  "the others no *.added", dbpath, (long long)last,
			  n);
		w->fresh = false;
	}
}

/* Record the new state silently (own write, baseline, no events). */
static void watch_record(struct watch *w, const char *path,
			 const struct observed *o, json_t *facts)
{
	if (o->exists) {
		struct snapshot_entry e;

		entry_from(&e, o, facts, w->gen);
		snapshot_put(w->snap, path, &e);
		watch_persist(w, path, &e);
		snapshot_entry_clear(&e);
	} else {
		snapshot_del(w->snap, path);
		watch_persist(w, path, NULL);
	}
}

static void watch_process(struct watch *w, const char *path,
			  const char *source, unsigned *events_r)
{
	struct classify_target t;
	struct classify_input in = { 0 };
	struct classify_result r = { 0 };
	struct observed o;
	struct snapshot_entry *old;
	json_t *old_facts = NULL;
	const char *why;
	struct change *c;
	bool seeded;

	if (classify_path_in(&w->croots, path, &t, &why) == CLASSIFY_NONE) {
		if (why != NULL)
			log_warn("watch: %s: ignored: %s", path, why);
		return;
	}
	watch_observe(&t, path, &o);
	if (classify_kind_is_customer(t.kind) && o.exists &&
	    w->contexts_told && hmap_get(w->contexts, t.name) == NULL) {
		/* the file of a context the panel no longer has (or never
		 * had): forgotten, not read (a removal still gives its
		 * event) */
		if (snapshot_get(w->snap, path) != NULL) {
			snapshot_del(w->snap, path);
			watch_persist(w, path, NULL);
		}
		observed_clear(&o);
		return;
	}
	if (o.symlink) {
		log_warn("watch: %s is a symlink: not read (the watched tree "
			 "is never read through symlinks)", path);
		observed_clear(&o);
		return;
	}
	if (o.err == -EAGAIN) {
		/* changed while read: read again once it settles */
		log_debug("watch: %s changed while read: again", path);
		observed_clear(&o);
		if (!w->stopping)
			watch_dirty(w, path);
		return;
	}
	if (o.err == -EMFILE || o.err == -ENFILE) {
		/* no descriptor to read it: read again later, never lost */
		watch_fd_short(w, path, false, -o.err);
		old = snapshot_get(w->snap, path);
		if (old != NULL)
			old->seen = w->gen;
		observed_clear(&o);
		return;
	}
	if (o.err == -EFBIG || o.err == -EMLINK) {
		log_warn("watch: %s: not read: %s", path,
			 o.err == -EMLINK
				 ? "it has other hard links (a customer's "
				   "file is read only when it is its own)"
			 : classify_kind_is_customer(t.kind)
				 ? "larger than 1 MiB (a customer's file)"
				 : "larger than 32 MiB");
		observed_clear(&o);
		return;
	}
	if (o.err < 0) {
		log_warn("watch: %s: %s", path, strerror(-o.err));
		observed_clear(&o);
		return;
	}
	old = snapshot_get(w->snap, path);
	if (o.exists && !o.is_dir && o.len == 0 && old != NULL &&
	    !old->is_dir && old->size > 0 && !w->replaced &&
	    !w->empty_again && strcmp(source, "inotify") == 0) {
		/* emptied in place: a truncate before a rewrite (`template >
		 * conf`, Go's os.WriteFile) whose write has not come yet; the
		 * write brings the next change (a file left empty is seen by
		 * the next reconcile; an empty file created or renamed over
		 * it, as sed -i leaves it, goes on) */
		log_debug("watch: %s is empty (had %llu bytes): waiting for "
			  "its next change", path,
			  (unsigned long long)old->size);
		old->seen = w->gen;
		observed_clear(&o);
		/* a customer's file is emptied for good when its last job
		 * or setting is deleted (the Go panel writes nothing): one
		 * more look a second later takes empty as its content */
		if (classify_kind_is_customer(t.kind))
			watch_dirty_empty_again(w, path);
		return;
	}
	if (old != NULL)
		old->seen = w->gen;
	/* known only from the journal (the snapshot was rebuilt): its
	 * content is unknown, so only a change of state that its facts tell
	 * (a suspension) gives an event; it is not added again */
	seeded = old != NULL && old->hash == 0 && o.exists;
	if (!o.exists && old == NULL) {
		observed_clear(&o);
		return;
	}
	if (o.exists && old != NULL && old->hash == o.hash &&
	    old->is_dir == o.is_dir) {
		observed_clear(&o);
		return; /* unchanged content (touch, chmod, same rewrite) */
	}
	if (engine_own_write_take(w->e, path) ||
	    (w->fresh && strcmp(source, "reconcile") == 0)) {
		/* our own write (no loops), or the first baseline */
		if (o.exists) {
			in.path = path;
			in.content = o.data;
			in.len = o.len;
			in.aux = o.aux;
			in.aux_len = o.aux_len;
			in.existed = old != NULL;
			if (old != NULL && old->facts != NULL)
				old_facts = json_loads(old->facts, 0, NULL);
			in.old_facts = old_facts;
			in.secret_keys = (const char *const *)
				engine_config(w->e)->secrets.extra_keys;
			in.n_secret_keys =
				engine_config(w->e)->secrets.n_extra_keys;
			classify_content(&t, &in, &r);
		}
		watch_record(w, path, &o, r.facts);
		goto out;
	}
	if (old != NULL && old->facts != NULL)
		old_facts = json_loads(old->facts, 0, NULL);
	in.path = path;
	in.content = o.exists ? o.data : NULL;
	in.len = o.len;
	in.aux = o.aux;
	in.aux_len = o.aux_len;
	in.existed = old != NULL;
	in.old_facts = old_facts;
	in.secret_keys =
		(const char *const *)engine_config(w->e)->secrets.extra_keys;
	in.n_secret_keys = engine_config(w->e)->secrets.n_extra_keys;
	classify_content(&t, &in, &r);
	for (size_t i = 0; i < r.n_warnings; i++)
		log_warn("watch: %s: %s", path, r.warnings[i]);
	if (seeded)
		watch_seeded_filter(&r);
	if (r.n_events == 0) {
		watch_record(w, path, &o, r.facts);
		goto out;
	}

	c = xcalloc(1, sizeof(*c));
	c->w = w;
	c->path = xstrdup(path);
	c->gone = !o.exists;
	if (old != NULL) {
		c->had_prev = true;
		entry_copy_into(&c->prev, old);
		c->prev.busy = 0;
	}
	if (o.exists) {
		struct snapshot_entry *cur;

		entry_from(&c->next, &o, r.facts, w->gen);
		cur = snapshot_put(w->snap, path, &c->next);
		cur->busy++;
	} else {
		snapshot_del(w->snap, path);
	}
	c->remaining = 1; /* held while submitting */
	w->inflight++;
	w->n_changes++;
	for (size_t i = 0; i < r.n_events; i++) {
		struct classify_event *ev = &r.events[i];
		const char *err = NULL;

		c->remaining++;
		if (entity_submit(w->ent, w->e, ev->type, ev->subject, source,
				  ev->payload, watch_submit_cb, c, &err) < 0) {
			log_error("watch: %s: cannot submit %s for %s: %s",
				  path, ev->type, ev->subject,
				  err ? err : "error");
			c->failed = true;
			c->remaining--;
		} else {
			w->n_events++;
			if (events_r != NULL)
				(*events_r)++;
		}
		ev->payload = NULL; /* stolen */
	}
	if (--c->remaining == 0)
		change_done(c);
out:
	json_decref(old_facts);
	classify_result_clear(&r);
	observed_clear(&o);
}

/* ---- settle window ---- */

static void settle_cb(uv_timer_t *t);

static void dlist_schedule(struct watch *w, struct dlist *l)
{
	int64_t delay;

	if (l->head == NULL || w->stopping)
		return;
	delay = l->head->deadline_ms - mono_ms();
	if (delay < 0)
		delay = 0;
	uv_timer_start(&l->timer, settle_cb, (uint64_t)delay, 0);
}

static void dirty_unlink(struct dirty *d)
{
	struct dlist *l = d->list;

	if (d->prev != NULL)
		d->prev->next = d->next;
	else
		l->head = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	else
		l->tail = d->prev;
	d->prev = d->next = NULL;
	d->list = NULL;
}

static void dirty_append(struct watch *w, struct dlist *l, struct dirty *d)
{
	bool was_empty = l->head == NULL;

	d->list = l;
	d->deadline_ms = mono_ms() + l->delay_ms;
	d->prev = l->tail;
	if (l->tail != NULL)
		l->tail->next = d;
	else
		l->head = d;
	l->tail = d;
	if (was_empty || !uv_is_active((uv_handle_t *)&l->timer))
		dlist_schedule(w, l);
}

/* Mark path changed: it is processed settle_ms after its last change. */
static void watch_dirty(struct watch *w, const char *path)
{
	struct dirty *d = hmap_get(w->dirty, path);

	if (d != NULL) {
		dirty_unlink(d);
	} else {
		d = xcalloc(1, sizeof(*d));
		d->path = xstrdup(path);
		hmap_put(w->dirty, path, d);
	}
	d->look = false;
	dirty_append(w, &w->settle, d);
}

/* Compare one file with the snapshot soon, as a reconcile would (a new
 * context's crons.ini: what it holds was written before it was
 * watched), without walking every root.  A change reported meanwhile
 * makes it an ordinary change. */
static void watch_look(struct watch *w, const char *path)
{
	if (hmap_get(w->dirty, path) != NULL)
		return;
	watch_dirty(w, path);
	((struct dirty *)hmap_get(w->dirty, path))->look = true;
}

/* A file was created: wait for its close (IN_CLOSE_WRITE) so that
 * `cmd > file` is not seen empty; a file that is never written (a hard
 * link) is looked at after a second. */
static void watch_dirty_created(struct watch *w, const char *path)
{
	struct dirty *d = hmap_get(w->dirty, path);

	if (d != NULL) {
		/* removed or renamed away, now made again (an editor's
		 * save): wait for the new file's close too */
		dirty_unlink(d);
	} else {
		d = xcalloc(1, sizeof(*d));
		d->path = xstrdup(path);
		hmap_put(w->dirty, path, d);
	}
	d->replaced = true;
	dirty_append(w, &w->created, d);
}

/* True while settled paths should wait for the handlers to drain (see
 * WATCH_QUEUE_HIGH and WATCH_QUEUE_STUCK_MS): only while every handler
 * holds many deliveries; one slow handler falls behind instead (its
 * backlog waits in the journal) and does not pace the watcher. */
static bool watch_queue_full(struct watch *w, int64_t now)
{
	unsigned q = engine_queue_least(w->e);

	if (q < WATCH_QUEUE_HIGH) {
		w->qwait_ms = 0;
		return false;
	}
	if (w->qwait_ms == 0 || q < w->qwait_low) {
		w->qwait_ms = now; /* draining: keep waiting */
		w->qwait_low = q;
		return true;
	}
	return now - w->qwait_ms < WATCH_QUEUE_STUCK_MS;
}

static void settle_cb(uv_timer_t *t)
{
	struct dlist *l = t->data;
	struct watch *w = l->w;
	int64_t now = mono_ms();
	unsigned n = 0;

	watch_drain(w); /* keep the kernel queue short under a burst */

	if (l->head != NULL && l->head->deadline_ms <= now && !w->stopping &&
	    watch_queue_full(w, now)) {
		/* deliveries lag: paths wait here, retried shortly */
		uv_timer_start(&l->timer, settle_cb, WATCH_QUEUE_RETRY_MS, 0);
		return;
	}
	while (l->head != NULL && l->head->deadline_ms <= now &&
	       n < WATCH_CHUNK && !w->stopping) {
		if (w->inflight >= WATCH_MAX_INFLIGHT) {
			w->throttled = true; /* change_done() resumes */
			return;
		}
		struct dirty *d = l->head;

		dirty_unlink(d);
		hmap_del(w->dirty, d->path);
		w->replaced = d->replaced;
		w->empty_again = d->empty_again;
		watch_process(w, d->path, d->look ? "reconcile" : "inotify",
			      NULL);
		w->replaced = false;
		w->empty_again = false;
		free(d->path);
		free(d);
		n++;
	}
	dlist_schedule(w, l);
}

/* ---- inotify watches ---- */

static void wd_key(int wd, char buf[INT64_STR_SIZE])
{
	int64_format(wd, buf);
}

/* The value of a /proc/sys file, or -1. */
static long watch_sysctl(const char *file)
{
	FILE *f = fopen(file, "re");
	long v = -1;

	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld", &v) != 1)
		v = -1;
	fclose(f);
	return v;
}

/* No inotify watch for path (ENOSPC): polled until one can be had.  One
 * error line an episode, not one per folder. */
static void watch_limit_hit(struct watch *w, const char *path)
{
	if (hmap_get(w->unwatched, path) == NULL)
		hmap_put(w->unwatched, path, (void *)1);
	if (!w->limit_hit) {
		log_error("watch: inotify watch limit reached at %s "
			  "(fs.inotify.max_user_watches = %ld, %zu folders "
			  "watched): it and any other folder without a watch "
			  "are polled every %u ms, and watched again once "
			  "the limit allows (raise fs.inotify."
			  "max_user_watches)",
			  path,
			  watch_sysctl("/proc/sys/fs/inotify/"
				       "max_user_watches"),
			  hmap_count(w->wd_map), WATCH_TROUBLE_MS);
		w->limit_hit = true;
	}
	watch_trouble_start(w);
}

static struct watch_dir *watch_add_dir(struct watch *w, const char *path,
				       bool recursive, bool *new_r)
{
	struct watch_dir *wdir = hmap_get(w->path_map, path);
	char key[24];
	int wd;

	*new_r = false;
	wd = inotify_add_watch(w->ifd, path, WATCH_MASK);
	if (wd < 0) {
		if (errno == ENOSPC)
			watch_limit_hit(w, path);
		else if (errno != ENOENT && errno != ENOTDIR)
			log_warn("watch: cannot watch %s: %s", path,
				 strerror(errno));
		return NULL;
	}
	if (wdir != NULL && wdir->wd == wd) {
		wdir->recursive |= recursive;
		return wdir;
	}
	wd_key(wd, key);
	struct watch_dir *other = hmap_get(w->wd_map, key);
	if (other != NULL) {
		/* the same folder under a new name (renamed): re-key */
		hmap_del(w->path_map, other->path);
		free(other->path);
		other->path = xstrdup(path);
		other->recursive |= recursive;
		hmap_put(w->path_map, path, other);
		return other;
	}
	if (wdir != NULL) { /* stale entry for this path */
		if (w->last_wdir == wdir)
			w->last_wdir = NULL;
		wd_key(wdir->wd, key);
		hmap_del(w->wd_map, key);
		hmap_del(w->path_map, path);
		free(wdir->path);
		free(wdir);
		wd_key(wd, key);
	}
	wdir = xcalloc(1, sizeof(*wdir));
	wdir->wd = wd;
	wdir->recursive = recursive;
	wdir->path = xstrdup(path);
	hmap_put(w->wd_map, key, wdir);
	hmap_put(w->path_map, path, wdir);
	*new_r = true;
	return wdir;
}

static void watch_forget_dir(struct watch *w, struct watch_dir *wdir,
			     bool rm)
{
	char key[24];

	if (w->last_wdir == wdir)
		w->last_wdir = NULL;
	wd_key(wdir->wd, key);
	if (hmap_get(w->wd_map, key) == wdir)
		hmap_del(w->wd_map, key);
	if (hmap_get(w->path_map, wdir->path) == wdir)
		hmap_del(w->path_map, wdir->path);
	if (rm)
		inotify_rm_watch(w->ifd, wdir->wd);
	free(wdir->path);
	free(wdir);
}

static void watch_dirty_if_classified(struct watch *w, const char *path)
{
	struct classify_target t;
	const char *why;

	if (classify_path_in(&w->croots, path, &t, &why) != CLASSIFY_NONE)
		watch_dirty(w, path);
	else if (why != NULL)
		log_warn("watch: %s: ignored: %s", path, why);
}

static void watch_tree_scan(struct watch *w, const char *path, bool scan,
			    bool force);

/* Watch path and every folder below; when scan, mark dirty the files of
 * every folder newly watched (created before the watch landed). */
static void watch_tree(struct watch *w, const char *path, bool scan)
{
	watch_tree_scan(w, path, scan, false);
}

/* watch_tree; force: path's files are marked dirty even when it was
 * watched already (a folder read again after a shortage). */
static void watch_tree_scan(struct watch *w, const char *path, bool scan,
			    bool force)
{
	bool is_new, here;
	struct watch_dir *wdir = watch_add_dir(w, path, true, &is_new);
	int fd;
	DIR *d;
	struct dirent *de;

	if (wdir == NULL)
		return;
	if (force)
		is_new = true;
	/* a folder watched just now is read for what was made before its
	 * watch landed; one watched already is only walked for new folders
	 * below it (they are scanned: mkdir -p a/b/c may be walked from a's
	 * event after c exists, and c's own event then finds it watched) */
	here = scan && is_new;
	if (here)
		watch_dirty_if_classified(w, path);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			watch_fd_short(w, path, true, errno);
		return;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		unsigned char type = de->d_type;
		char *full;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (type != DT_DIR && !here)
			continue;
		full = path_join(path, de->d_name);
		if (type == DT_UNKNOWN) {
			struct stat st;

			if (lstat(full, &st) == 0 && S_ISDIR(st.st_mode))
				type = DT_DIR;
		}
		if (type == DT_DIR)
			watch_tree_scan(w, full, scan, false);
		else if (here)
			watch_dirty_if_classified(w, full);
		free(full);
	}
	closedir(d);
}

/* Watch root i: a folder recursively (configured roots only), a file
 * through its parent, a missing root through its nearest existing
 * ancestor. */
static void watch_root_setup(struct watch *w, size_t i, bool scan)
{
	const char *r = w->roots[i];
	struct stat st;
	bool is_new, exists_file;
	char *anc;

	/* a customer's file made a folder is not walked (i >= n_static) */
	if (lstat(r, &st) == 0 && S_ISDIR(st.st_mode) && i < w->n_static) {
		watch_tree(w, r, scan);
		return;
	}
	if (lstat(r, &st) == 0 && S_ISLNK(st.st_mode))
		log_warn("watch: root %s is a symlink: not followed", r);
	exists_file = lstat(r, &st) == 0 && S_ISREG(st.st_mode);
	anc = xstrdup(r);
	for (;;) {
		char *slash = strrchr(anc, '/');

		if (slash == NULL || slash == anc) {
			strcpy(anc, "/");
			break;
		}
		*slash = '\0';
		if (lstat(anc, &st) == 0 && S_ISDIR(st.st_mode))
			break;
	}
	watch_add_dir(w, anc, false, &is_new);
	if (exists_file && scan)
		watch_dirty(w, r); /* compared with the snapshot */
	free(anc);
}

/* (Re)establish the watches for every root: a folder is watched
 * recursively, a file through its parent, a missing root through its
 * nearest existing ancestor (picked up when it appears). */
static void watch_roots_setup(struct watch *w, bool scan)
{
	for (size_t i = 0; i < w->n_roots; i++)
		watch_root_setup(w, i, scan);
}

static bool path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == 0);
}

static bool watch_is_root(struct watch *w, const char *path)
{
	return hmap_get(w->root_set, path) != NULL;
}

static bool watch_is_root_ancestor(struct watch *w, const char *path)
{
	for (size_t i = 0; i < w->n_roots; i++)
		if (path_under(w->roots[i], path))
			return true;
	return false;
}

/* A folder watched only for the root files in it (a user's home, for
 * crons.ini and backup.env) was removed or moved: those files are read
 * again at their paths (gone: their removal events), and the roots are
 * watched again; nothing else changed, so no full reconcile. */
static void watch_roots_later(struct watch *w, bool reconcile);

/* 1: root r is a file directly in dir (dl = strlen(dir)), 2: deeper below
 * it, 0: not below it. */
static int watch_root_in(const char *r, const char *dir, size_t dl)
{
	if (strncmp(r, dir, dl) != 0 || r[dl] != '/')
		return 0;
	return strchr(r + dl + 1, '/') == NULL ? 1 : 2;
}

/* True when every root below dir is a per-context file directly in it (a
 * user's home: crons.ini, backup.env; never walked, see
 * watch_root_setup), none a configured root or deeper. */
static bool watch_only_file_roots_in(struct watch *w, const char *dir)
{
	size_t dl = strlen(dir);

	for (size_t i = 0; i < w->n_roots; i++) {
		int in = watch_root_in(w->roots[i], dir, dl);

		if (in == 2 || (in == 1 && i < w->n_static))
			return false;
	}
	return true;
}

static void watch_parent_gone(struct watch *w, const char *dir)
{
	size_t dl = strlen(dir);

	for (size_t i = 0; i < w->n_roots; i++)
		if (watch_root_in(w->roots[i], dir, dl) == 1)
			watch_dirty(w, w->roots[i]);
	watch_roots_later(w, false);
}

static void lost_cb(uv_timer_t *t)
{
	struct watch *w = t->data;

	watch_roots_setup(w, true);
	if (w->lost_reconcile) { /* a watch was lost, or an overflow */
		w->lost_reconcile = false;
		watch_reconcile_begin(w);
	}
}

/* Re-establish roots soon (coalesced); reconcile when a watch was lost. */
static void watch_roots_later(struct watch *w, bool reconcile)
{
	if (w->stopping)
		return;
	if (reconcile)
		w->lost_reconcile = true;
	if (!uv_is_active((uv_handle_t *)&w->lost_timer))
		uv_timer_start(&w->lost_timer, lost_cb, 50, 0);
}

/* A file system mounted on (or unmounted from) a root, a folder under one
 * or one above: inotify says nothing, the watches stay on the covered
 * folders.  Watch the roots again (new folders are scanned) and reconcile
 * (covered files are gone, uncovered ones back). */
static void watch_mounts_cb(void *ctx)
{
	struct watch *w = ctx;

	log_info("watch: the mount table changed under a watched root: "
		 "watching again and reconciling");
	watch_roots_later(w, true);
}

struct prefix_ctx {
	const char *prefix;
	size_t len;
	char **paths;
	size_t n, cap;
};

static bool collect_prefix(const char *path, struct snapshot_entry *e,
			   void *ctx)
{
	struct prefix_ctx *pc = ctx;

	(void)e;
	if (strncmp(path, pc->prefix, pc->len) == 0 &&
	    path[pc->len] == '/') {
		if (pc->n == pc->cap) {
			pc->cap = pc->cap ? pc->cap * 2 : 16;
			pc->paths = xrealloc(pc->paths,
					     pc->cap * sizeof(*pc->paths));
		}
		pc->paths[pc->n++] = xstrdup(path);
	}
	return true;
}

static bool collect_wd_prefix(const char *key, void *value, void *ctx)
{
	struct watch_dir *wdir = value;
	struct prefix_ctx *pc = ctx;

	(void)key;
	if (path_under(wdir->path, pc->prefix)) {
		if (pc->n == pc->cap) {
			pc->cap = pc->cap ? pc->cap * 2 : 16;
			pc->paths = xrealloc(pc->paths,
					     pc->cap * sizeof(*pc->paths));
		}
		pc->paths[pc->n++] = (char *)wdir;
	}
	return true;
}

/* A folder left the tree (deleted or moved out): everything known below
 * it is re-examined (removals), its watches forgotten. */
static void watch_dir_gone(struct watch *w, const char *path, bool rm)
{
	struct prefix_ctx pc = { path, strlen(path), NULL, 0, 0 };

	watch_dirty_if_classified(w, path);
	snapshot_each(w->snap, collect_prefix, &pc);
	for (size_t i = 0; i < pc.n; i++) {
		watch_dirty(w, pc.paths[i]);
		free(pc.paths[i]);
	}
	free(pc.paths);
	memset(&pc, 0, sizeof(pc));
	pc.prefix = path;
	pc.len = strlen(path);
	hmap_each(w->wd_map, collect_wd_prefix, &pc);
	for (size_t i = 0; i < pc.n; i++)
		watch_forget_dir(w, (struct watch_dir *)pc.paths[i], rm);
	free(pc.paths);
}

/* ---- shortages: descriptors (EMFILE) and inotify watches (ENOSPC) ---- */

/* Path (a file, or a folder to scan again when is_dir) could not be read
 * for want of a descriptor: read again by the trouble timer.  One error
 * line an episode. */
static void watch_fd_short(struct watch *w, const char *path, bool is_dir,
			   int err)
{
	void *kind = is_dir ? WATCH_RETRY_DIR : WATCH_RETRY_FILE;

	if (w->stopping)
		return;
	if (hmap_get(w->retry, path) != WATCH_RETRY_DIR)
		hmap_put(w->retry, path, kind);
	w->fd_hits++;
	if (!w->fd_short) {
		log_error("watch: out of file descriptors (%s) reading %s: it "
			  "and any other path hit meanwhile are read again "
			  "every %u ms until descriptors are free (no change "
			  "lost)", strerror(err), path, WATCH_TROUBLE_MS);
		w->fd_short = true;
	}
	watch_trouble_start(w);
}

static void watch_trouble_cb(uv_timer_t *t);

static void watch_trouble_start(struct watch *w)
{
	if (!w->stopping &&
	    !uv_is_active((uv_handle_t *)&w->trouble_timer))
		uv_timer_start(&w->trouble_timer, watch_trouble_cb,
			       WATCH_TROUBLE_MS, WATCH_TROUBLE_MS);
}

static bool collect_key(const char *key, void *value, void *ctx)
{
	struct prefix_ctx *pc = ctx;

	if (pc->n == pc->cap) {
		pc->cap = pc->cap ? pc->cap * 2 : 16;
		pc->paths = xrealloc(pc->paths, pc->cap * sizeof(*pc->paths));
	}
	/* the kind rides in front of the path: '1' file, '2' folder */
	pc->paths[pc->n++] = xasprintf("%c%s",
				       value == WATCH_RETRY_DIR ? '2' : '1',
				       key);
	return true;
}

/* Everything the snapshot knows below folder path is looked at again (a
 * folder read again after a shortage: what went away meanwhile). */
static void watch_dirty_below(struct watch *w, const char *path)
{
	struct prefix_ctx pc = { path, strlen(path), NULL, 0, 0 };

	snapshot_each(w->snap, collect_prefix, &pc);
	for (size_t i = 0; i < pc.n; i++) {
		watch_dirty(w, pc.paths[i]);
		free(pc.paths[i]);
	}
	free(pc.paths);
}

struct poll_ctx {
	struct watch *w;
	char **paths;
	size_t n, cap;
};

/* Snapshot entries in a polled folder whose file went away. */
static bool collect_poll_gone(const char *path, struct snapshot_entry *e,
			      void *ctx)
{
	struct poll_ctx *pc = ctx;
	const char *slash = strrchr(path, '/');
	struct stat st;
	char *dir;
	bool polled;

	(void)e;
	if (slash == NULL || slash == path)
		return true;
	dir = xstrndup(path, (size_t)(slash - path));
	polled = hmap_get(pc->w->unwatched, dir) != NULL;
	free(dir);
	if (!polled || lstat(path, &st) == 0)
		return true;
	if (pc->n == pc->cap) {
		pc->cap = pc->cap ? pc->cap * 2 : 16;
		pc->paths = xrealloc(pc->paths, pc->cap * sizeof(*pc->paths));
	}
	pc->paths[pc->n++] = xstrdup(path);
	return true;
}

/* Poll one folder that has no watch: its files whose inode, size or mtime
 * differ from the snapshot are marked dirty, its folders watched (or
 * polled in turn). */
static void watch_poll_dir(struct watch *w, const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			watch_fd_short(w, path, true, errno);
		return;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		struct snapshot_entry *e;
		struct stat st;
		char *full;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    classify_ignored_name(de->d_name))
			continue;
		full = path_join(path, de->d_name);
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			free(full);
			continue;
		}
		if (S_ISDIR(st.st_mode) &&
		    hmap_get(w->path_map, full) == NULL &&
		    hmap_get(w->unwatched, full) == NULL) {
			watch_tree_scan(w, full, true, false);
			if (hmap_get(w->unwatched, full) != NULL)
				watch_dirty_if_classified(w, full);
		} else if (!S_ISDIR(st.st_mode)) {
			e = snapshot_get(w->snap, full);
			if (e == NULL || e->is_dir ||
			    e->ino != (uint64_t)st.st_ino ||
			    e->size != (uint64_t)st.st_size ||
			    e->mtime_ns != (int64_t)st.st_mtim.tv_sec *
							   1000000000LL +
						   st.st_mtim.tv_nsec)
				watch_dirty_if_classified(w, full);
		}
		free(full);
	}
	closedir(d);
}

/* The trouble timer: read again what a descriptor shortage left unread,
 * try the watch of every unwatched folder again (then reconcile it) or
 * poll it; stops when there is nothing left. */
static void watch_trouble_cb(uv_timer_t *t)
{
	struct watch *w = t->data;
	struct prefix_ctx pc = { NULL, 0, NULL, 0, 0 };
	struct poll_ctx gc = { w, NULL, 0, 0 };
	size_t rewatched = 0;

	if (w->stopping)
		return;
	/* descriptors: each path once a tick; a new shortage puts it back */
	if (w->fd_short && w->fd_hits == 0 && hmap_count(w->retry) == 0) {
		log_info("watch: file descriptors available again: the paths "
			 "left unread were read");
		w->fd_short = false;
	}
	w->fd_hits = 0;
	hmap_each(w->retry, collect_key, &pc);
	for (size_t i = 0; i < pc.n; i++) {
		const char *path = pc.paths[i] + 1;

		hmap_del(w->retry, path);
		if (pc.paths[i][0] == '2') {
			watch_tree_scan(w, path, true, true);
			watch_dirty_below(w, path);
		} else {
			watch_dirty(w, path);
		}
		free(pc.paths[i]);
	}
	free(pc.paths);

	/* watches: try again, else poll */
	memset(&pc, 0, sizeof(pc));
	hmap_each(w->unwatched, collect_key, &pc);
	for (size_t i = 0; i < pc.n; i++) {
		const char *path = pc.paths[i] + 1;
		struct stat st;
		bool is_new;

		if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
			/* gone: its parent (watched or polled) or the
			 * snapshot entries below tell */
			hmap_del(w->unwatched, path);
			watch_dirty_below(w, path);
			watch_dirty_if_classified(w, path);
		} else if (watch_add_dir(w, path, true, &is_new) != NULL) {
			hmap_del(w->unwatched, path);
			watch_tree_scan(w, path, true, true);
			watch_dirty_below(w, path);
			rewatched++;
		}
		free(pc.paths[i]);
	}
	free(pc.paths);
	snapshot_each(w->snap, collect_poll_gone, &gc);
	for (size_t i = 0; i < gc.n; i++) {
		watch_dirty(w, gc.paths[i]);
		free(gc.paths[i]);
	}
	free(gc.paths);
	memset(&pc, 0, sizeof(pc));
	hmap_each(w->unwatched, collect_key, &pc);
	for (size_t i = 0; i < pc.n; i++) {
		watch_poll_dir(w, pc.paths[i] + 1);
		free(pc.paths[i]);
	}
	free(pc.paths);
	if (w->limit_hit && hmap_count(w->unwatched) == 0) {
		log_info("watch: inotify watches available again: every "
			 "folder is watched (%zu; %zu watched again and "
			 "reconciled this time)", hmap_count(w->wd_map),
			 rewatched);
		w->limit_hit = false;
	}
	if (!w->fd_short && !w->limit_hit && hmap_count(w->retry) == 0 &&
	    hmap_count(w->unwatched) == 0)
		uv_timer_stop(t);
}

static void watch_file_changed(struct watch *w, const char *full)
{
	size_t n = strlen(full);
	struct dirty *d = hmap_get(w->dirty, full);

	if (d != NULL) {
		/* marked already (classified then): settle from now */
		dirty_unlink(d);
		dirty_append(w, &w->settle, d);
	} else {
		watch_dirty_if_classified(w, full);
	}
	/* a certificate's .crt written alone (older Caddy, or after the
	 * .json): look at the certificate again */
	if (n > 4 && strcmp(full + n - 4, ".crt") == 0) {
		char *json = xasprintf("%.*s.json", (int)(n - 4), full);
		struct classify_target t;
		const char *why;

		if (classify_path_in(&w->croots, json, &t, &why) ==
		    CLASSIFY_CERT_JSON)
			watch_dirty(w, json);
		free(json);
	}
}

/* A rename onto (or a creation of) a dirty path: what it holds is a new
 * file, not one being rewritten in place. */
static void watch_mark_replaced(struct watch *w, const char *full,
				uint32_t mask)
{
	struct dirty *d;

	if (!(mask & (IN_MOVED_TO | IN_CREATE)))
		return;
	d = hmap_get(w->dirty, full);
	if (d != NULL)
		d->replaced = true;
}

static void watch_handle(struct watch *w, const struct inotify_event *ev)
{
	char key[24];
	struct watch_dir *wdir;
	char *full;

	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("watch: inotify queue overflow: full reconcile");
		watch_roots_later(w, true);
		return;
	}
	if (w->last_wdir != NULL && w->last_wdir->wd == ev->wd) {
		wdir = w->last_wdir;
	} else {
		wd_key(ev->wd, key);
		wdir = hmap_get(w->wd_map, key);
		if (wdir == NULL)
			return;
		w->last_wdir = wdir;
	}
	if (ev->mask & (IN_IGNORED | IN_UNMOUNT)) {
		bool root = watch_is_root(w, wdir->path);
		bool recursive = wdir->recursive; /* wdir is freed below */
		bool parent = !root && !recursive && !(ev->mask & IN_UNMOUNT);
		char *dir = parent ? xstrdup(wdir->path) : NULL;

		watch_forget_dir(w, wdir, false);
		if (parent)
			watch_parent_gone(w, dir);
		else if (root || !recursive)
			watch_roots_later(w, true);
		free(dir);
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
		if (watch_is_root(w, wdir->path)) {
			char *root = xstrdup(wdir->path);

			log_warn("watch: root %s was removed or moved: "
				 "watching it again", root);
			/* the watches below now see another place: drop
			 * them; what was known below is looked at again */
			watch_dir_gone(w, root, true);
			free(root);
			watch_roots_later(w, true);
		} else if (!wdir->recursive) {
			watch_parent_gone(w, wdir->path);
		}
		return;
	}
	if (ev->len == 0)
		return;
	full = path_join(wdir->path, ev->name);
	if (!wdir->recursive) {
		/* a parent watched for a root file or a missing root */
		if (watch_is_root(w, full) && !(ev->mask & IN_ISDIR)) {
			watch_dirty(w, full);
			watch_mark_replaced(w, full, ev->mask);
		}
		if ((ev->mask & (IN_CREATE | IN_MOVED_TO | IN_DELETE |
				 IN_MOVED_FROM)) &&
		    ((ev->mask & IN_ISDIR) || !watch_is_root(w, full)) &&
		    watch_is_root_ancestor(w, full)) {
			if (ev->mask & (IN_CREATE | IN_MOVED_TO))
				watch_roots_later(w, false);
			else if (watch_only_file_roots_in(w, full))
				/* a user's home gone (user-delete): only
				 * its crons.ini and backup.env to look at */
				watch_parent_gone(w, full);
			else
				watch_roots_later(w, true);
		}
		free(full);
		return;
	}
	if (ev->mask & IN_MOVED_FROM) {
		free(w->move_from);
		w->move_from = xstrdup(full);
		w->move_cookie = ev->cookie;
	} else if ((ev->mask & IN_MOVED_TO) && w->move_from != NULL &&
		   ev->cookie == w->move_cookie) {
		log_debug("watch: renamed %s -> %s", w->move_from, full);
		free(w->move_from);
		w->move_from = NULL;
	}
	if (ev->mask & IN_ISDIR) {
		if (ev->mask & (IN_CREATE | IN_MOVED_TO))
			watch_tree(w, full, true);
		else if (ev->mask & (IN_DELETE | IN_MOVED_FROM))
			watch_dir_gone(w, full, (ev->mask & IN_MOVED_FROM) != 0);
	} else if (ev->mask & IN_CREATE) {
		struct classify_target t;
		const char *why;

		/* classify_path() says CLASSIFY_NONE for ignored names */
		if (classify_path_in(&w->croots, full, &t, &why) !=
		    CLASSIFY_NONE)
			watch_dirty_created(w, full);
	} else if (ev->mask & IN_MODIFY) {
		/* a truncate or a write: a path waiting to settle waits from
		 * now (its close, if any, comes later) */
		struct dirty *d = hmap_get(w->dirty, full);

		if (d != NULL) {
			struct dlist *l = d->list;

			dirty_unlink(d);
			dirty_append(w, l, d);
		}
	} else if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM |
			       IN_DELETE)) {
		if (!classify_ignored_name(ev->name)) {
			watch_file_changed(w, full);
			watch_mark_replaced(w, full, ev->mask);
		}
	}
	free(full);
}

/* Look at path again in a second, an empty content then being its
 * content (unless a change came meanwhile: it brings the next look). */
static void watch_dirty_empty_again(struct watch *w, const char *path)
{
	struct dirty *d;

	if (w->stopping || hmap_get(w->dirty, path) != NULL)
		return;
	d = xcalloc(1, sizeof(*d));
	d->path = xstrdup(path);
	d->empty_again = true;
	hmap_put(w->dirty, path, d);
	dirty_append(w, &w->created, d);
}

/* Read and handle what inotify has queued (non-blocking). */
static void watch_drain(struct watch *w)
{
	for (int round = 0; round < 64 && !w->stopping; round++) {
		ssize_t n = read(w->ifd, w->rbuf, WATCH_READ_BUF);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				log_error("watch: inotify read: %s",
					  strerror(errno));
			break;
		}
		if (n == 0)
			break;
		for (char *q = w->rbuf; q < w->rbuf + n;) {
			const struct inotify_event *ev = (const void *)q;

			watch_handle(w, ev);
			q += sizeof(*ev) + ev->len;
		}
		/* an unpaired IN_MOVED_FROM at the end of a read is a move
		 * out; it was handled as a removal already */
		free(w->move_from);
		w->move_from = NULL;
	}
}

static void watch_poll_cb(uv_poll_t *p, int status, int events)
{
	struct watch *w = p->data;

	(void)events;
	if (status < 0) {
		log_error("watch: poll: %s", uv_strerror(status));
		return;
	}
	watch_drain(w);
}

/* ---- reconcile ---- */

static void job_add(struct recon_job *j, const char *path, uint64_t hash,
		    bool exists)
{
	if (j->n_items == j->cap_items) {
		j->cap_items = j->cap_items ? j->cap_items * 2 : 256;
		j->items = xrealloc(j->items,
				    j->cap_items * sizeof(*j->items));
	}
	j->items[j->n_items].path = xstrdup(path);
	j->items[j->n_items].hash = hash;
	j->items[j->n_items].exists = exists;
	j->n_items++;
}

static void job_observe(struct recon_job *j, const char *path)
{
	struct classify_target t;
	const char *why;
	struct observed o;

	if (classify_path_in(&j->croots, path, &t, &why) == CLASSIFY_NONE)
		return;
	watch_observe(&t, path, &o);
	if (!o.symlink && o.err == 0 && o.exists)
		job_add(j, path, o.hash, true);
	else if (o.err == -EMFILE || o.err == -ENFILE)
		job_add(j, path, 0, false); /* unknown: read again later */
	observed_clear(&o);
}

/* The walk could not open folder path (descriptors short). */
static void job_skip(struct recon_job *j, const char *path)
{
	if (j->n_skipped == j->cap_skipped) {
		j->cap_skipped = j->cap_skipped ? j->cap_skipped * 2 : 8;
		j->skipped = xrealloc(j->skipped,
				      j->cap_skipped * sizeof(*j->skipped));
	}
	j->skipped[j->n_skipped++] = xstrdup(path);
}

static void job_walk(struct recon_job *j, const char *path, unsigned depth)
{
	int fd;
	DIR *d;
	struct dirent *de;

	if (depth > 64)
		return;
	job_observe(j, path); /* folders that classify (user dirs) */
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			job_skip(j, path);
		return;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return;
	}
	while ((de = readdir(d)) != NULL) {
		unsigned char type = de->d_type;
		char *full;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0 ||
		    classify_ignored_name(de->d_name))
			continue;
		full = path_join(path, de->d_name);
		if (type == DT_UNKNOWN) {
			struct stat st;

			if (lstat(full, &st) == 0)
				type = S_ISDIR(st.st_mode)   ? DT_DIR
				       : S_ISLNK(st.st_mode) ? DT_LNK
							     : DT_REG;
		}
		if (type == DT_DIR)
			job_walk(j, full, depth + 1);
		else if (type == DT_REG)
			job_observe(j, full);
		free(full);
	}
	closedir(d);
}

static void recon_work(uv_work_t *req)
{
	struct recon_job *j = req->data;

	for (size_t i = 0; i < j->n_roots; i++) {
		struct stat st;

		if (lstat(j->roots[i], &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode) && i < j->n_static)
			job_walk(j, j->roots[i], 0);
		else if (S_ISREG(st.st_mode))
			job_observe(j, j->roots[i]);
	}
}

static void job_free(struct recon_job *j)
{
	for (size_t i = 0; i < j->n_items; i++)
		free(j->items[i].path);
	free(j->items);
	for (size_t i = 0; i < j->n_gone; i++)
		free(j->gone[i]);
	free(j->gone);
	for (size_t i = 0; i < j->n_skipped; i++)
		free(j->skipped[i]);
	free(j->skipped);
	for (size_t i = 0; i < j->n_roots; i++)
		free(j->roots[i]);
	free(j->roots);
	free(j->root);
	free(j->home);
	free(j->notif);
	free(j);
}

struct gone_ctx {
	struct recon_job *j;
	size_t cap;
};

static bool collect_unseen(const char *path, struct snapshot_entry *e,
			   void *ctx)
{
	struct gone_ctx *gc = ctx;
	struct recon_job *j = gc->j;

	if (e->seen == j->gen)
		return true;
	/* below a folder the walk could not open: not known to be gone */
	for (size_t i = 0; i < j->n_skipped; i++) {
		if (path_under(path, j->skipped[i]))
			return true;
	}
	if (j->n_gone == gc->cap) {
		gc->cap = gc->cap ? gc->cap * 2 : 64;
		j->gone = xrealloc(j->gone, gc->cap * sizeof(*j->gone));
	}
	j->gone[j->n_gone++] = xstrdup(path);
	return true;
}

static void recon_finish(struct watch *w)
{
	struct recon_job *j = w->job;
	struct recon_waiter *wt = w->waiters;

	uv_idle_stop(&w->recon_idle);
	w->job = NULL;
	w->waiters = NULL;
	if (j->baseline && w->rebaseline) {
		/* contexts came meanwhile: their files are walked by the
		 * next run, a baseline too */
		w->rebaseline = false;
		w->recon_again = true;
	} else if (j->baseline) {
		w->fresh = false;
		snapshot_mark_baseline(w->snap);
		log_info("watch: baseline recorded: %zu paths",
			 snapshot_count(w->snap));
	} else {
		log_info("watch: reconcile done: %zu paths, %u events",
			 snapshot_count(w->snap), j->events);
	}
	watch_flush(w);
	while (wt != NULL) {
		struct recon_waiter *next = wt->next;

		if (wt->cb != NULL)
			wt->cb(j->events, wt->ctx);
		free(wt);
		wt = next;
	}
	job_free(j);
	if (w->recon_again && !w->stopping) {
		w->recon_again = false;
		watch_reconcile_begin(w);
	}
}

static void recon_idle_cb(uv_idle_t *h)
{
	struct watch *w = h->data;
	struct recon_job *j = w->job;
	unsigned n = 0;

	if (j == NULL || w->stopping) {
		uv_idle_stop(h);
		return;
	}
	if (w->inflight >= WATCH_MAX_INFLIGHT) {
		w->throttled = true; /* change_done() resumes */
		uv_idle_stop(h);
		return;
	}
	while (j->next < j->n_items && n < WATCH_CHUNK) {
		struct recon_item *it = &j->items[j->next++];
		struct snapshot_entry *e = snapshot_get(w->snap, it->path);

		n++;
		if (e != NULL) {
			e->seen = j->gen;
			if (it->exists && e->hash == it->hash)
				continue;
		}
		if (!it->exists && it->hash == 0 && e != NULL) {
			/* could not be read (descriptors short) */
			watch_fd_short(w, it->path, false, EMFILE);
			continue;
		}
		if (hmap_get(w->dirty, it->path) != NULL)
			/* a change inotify reported is pending (a file
			 * created and not yet closed, a settle window):
			 * that path reads it when it is done, not now */
			continue;
		watch_process(w, it->path, "reconcile", &j->events);
	}
	if (j->next < j->n_items)
		return;
	if (j->gone == NULL && j->n_gone == 0) {
		struct gone_ctx gc = { j, 0 };

		snapshot_each(w->snap, collect_unseen, &gc);
		if (j->gone == NULL)
			j->gone = xcalloc(1, sizeof(*j->gone));
		j->next = j->n_items;
	}
	size_t gi = j->next - j->n_items;
	while (gi < j->n_gone && n < WATCH_CHUNK) {
		if (hmap_get(w->dirty, j->gone[gi]) == NULL)
			watch_process(w, j->gone[gi], "reconcile", &j->events);
		gi++;
		n++;
		j->next++;
	}
	if (gi >= j->n_gone) {
		for (size_t i = 0; i < j->n_skipped; i++)
			watch_fd_short(w, j->skipped[i], true, EMFILE);
		recon_finish(w);
	}
}

static void recon_after(uv_work_t *req, int status)
{
	struct recon_job *j = req->data;
	struct watch *w = j->w;

	j->in_pool = false;
	if (status < 0 || w->stopping) {
		w->job = NULL;
		job_free(j);
		while (w->waiters != NULL) {
			struct recon_waiter *wt = w->waiters;

			w->waiters = wt->next;
			if (wt->cb != NULL)
				wt->cb(0, wt->ctx);
			free(wt);
		}
		watch_maybe_free(w);
		return;
	}
	j->gen = ++w->gen;
	/* paths marked during the walk by inotify get this gen too */
	uv_idle_start(&w->recon_idle, recon_idle_cb);
}

static void watch_reconcile_begin(struct watch *w)
{
	struct recon_job *j;

	if (w->stopping)
		return;
	if (w->job != NULL) {
		w->recon_again = true;
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->w = w;
	j->req.data = j;
	j->root = xstrdup(w->root);
	j->home = w->home != NULL ? xstrdup(w->home) : NULL;
	j->notif = w->notif != NULL ? xstrdup(w->notif) : NULL;
	j->croots = (struct classify_roots){ j->root, j->home, j->notif };
	j->n_static = w->n_static;
	j->roots = xcalloc(w->n_roots + 1, sizeof(*j->roots));
	for (size_t i = 0; i < w->n_roots; i++)
		j->roots[i] = xstrdup(w->roots[i]);
	j->n_roots = w->n_roots;
	j->baseline = w->fresh;
	w->job = j;
	/* waiters registered so far belong to this run */
	w->waiters = w->waiters_next;
	w->waiters_next = NULL;
	j->in_pool = true;
	uv_queue_work(w->loop, &j->req, recon_work, recon_after);
}

int watch_reconcile(struct watch *w, void (*cb)(unsigned events, void *ctx),
		    void *ctx)
{
	struct recon_waiter *wt;

	if (w == NULL || w->stopping) {
		if (cb != NULL)
			cb(0, ctx);
		return w == NULL ? 0 : -ECANCELED;
	}
	wt = xcalloc(1, sizeof(*wt));
	wt->cb = cb;
	wt->ctx = ctx;
	wt->next = w->waiters_next;
	w->waiters_next = wt;
	if (w->job != NULL)
		w->recon_again = true;
	else
		watch_reconcile_begin(w);
	return 0;
}

void watch_after_reconcile(struct watch *w,
			   void (*cb)(unsigned events, void *ctx), void *ctx)
{
	struct recon_waiter *wt;

	if (w->job == NULL || w->stopping) {
		cb(0, ctx);
		return;
	}
	wt = xcalloc(1, sizeof(*wt));
	wt->cb = cb;
	wt->ctx = ctx;
	wt->next = w->waiters;
	w->waiters = wt;
}

struct fact_each {
	bool (*fn)(const char *path, const char *facts, void *ctx);
	void *ctx;
};

static bool fact_each_one(const char *path, struct snapshot_entry *e,
			  void *ctx)
{
	struct fact_each *fe = ctx;

	return e->facts == NULL || fe->fn(path, e->facts, fe->ctx);
}

void watch_each_fact(struct watch *w,
		     bool (*fn)(const char *path, const char *facts,
				void *ctx),
		     void *ctx)
{
	struct fact_each fe = { fn, ctx };

	snapshot_each(w->snap, fact_each_one, &fe);
}

const char *watch_root(const struct watch *w)
{
	return w->root;
}

static void periodic_cb(uv_timer_t *t)
{
	struct watch *w = t->data;

	if (w->job == NULL)
		watch_reconcile_begin(w);
}

/* ---- start / stop ---- */

static bool free_wdir(const char *key, void *value, void *ctx)
{
	(void)key;
	(void)ctx;
	free(((struct watch_dir *)value)->path);
	free(value);
	return true;
}

static void free_dirty(void *p)
{
	struct dirty *d = p;

	free(d->path);
	free(d);
}

static void watch_free(struct watch *w)
{
	w->last_wdir = NULL;
	hmap_each(w->wd_map, free_wdir, NULL);
	hmap_free(&w->wd_map, NULL);
	hmap_free(&w->path_map, NULL);
	hmap_free(&w->dirty, free_dirty);
	hmap_free(&w->retry, NULL);
	hmap_free(&w->unwatched, NULL);
	snapshot_close(&w->snap);
	for (size_t i = 0; i < w->n_roots; i++)
		free(w->roots[i]);
	free(w->roots);
	hmap_free(&w->root_set, NULL);
	hmap_free(&w->contexts, NULL);
	free(w->root);
	free(w->home);
	free(w->notif);
	free(w->rbuf);
	free(w->move_from);
	while (w->waiters_next != NULL) {
		struct recon_waiter *wt = w->waiters_next;

		w->waiters_next = wt->next;
		if (wt->cb != NULL)
			wt->cb(0, wt->ctx);
		free(wt);
	}
	free(w);
}

static void watch_maybe_free(struct watch *w)
{
	if (w->stopping && w->handles_open == 0 && w->inflight == 0 &&
	    w->job == NULL)
		watch_free(w);
}

static void watch_handle_closed(uv_handle_t *h)
{
	struct watch *w = h->data;

	w->handles_open--;
	if (w->handles_open == 0 && w->ifd >= 0) {
		close(w->ifd);
		w->ifd = -1;
	}
	watch_maybe_free(w);
}

static void watch_init_timer(struct watch *w, uv_timer_t *t)
{
	uv_timer_init(w->loop, t);
	t->data = w;
	w->handles_open++;
}

static void watch_root_add(struct watch *w, const char *path)
{
	if (hmap_get(w->root_set, path) != NULL)
		return;
	if (w->n_roots == w->cap_roots) {
		w->cap_roots = w->cap_roots ? w->cap_roots * 2 : 8;
		w->roots = xrealloc(w->roots,
				    w->cap_roots * sizeof(*w->roots));
	}
	w->roots[w->n_roots] = xstrdup(path);
	hmap_put(w->root_set, w->roots[w->n_roots], (void *)1);
	w->n_roots++;
}

/* Drop the dynamic root path (a context gone). */
static void watch_root_del(struct watch *w, const char *path)
{
	for (size_t i = w->n_static; i < w->n_roots; i++) {
		if (strcmp(w->roots[i], path) != 0)
			continue;
		hmap_del(w->root_set, path);
		free(w->roots[i]);
		memmove(&w->roots[i], &w->roots[i + 1],
			(w->n_roots - i - 1) * sizeof(*w->roots));
		w->n_roots--;
		return;
	}
}

struct gone_args {
	struct hmap *now;
	char ***v;
	size_t *n;
};

static bool watch_collect_gone(const char *key, void *value, void *ctx)
{
	struct gone_args *g = ctx;

	(void)value;
	if (hmap_get(g->now, key) == NULL) {
		*g->v = xrealloc(*g->v, (*g->n + 1) * sizeof(**g->v));
		(*g->v)[(*g->n)++] = xstrdup(key);
	}
	return true;
}

static const char *const watch_home_files[] = { "crons.ini", "backup.env",
						NULL };

void watch_set_contexts(struct watch *w, const char *const *contexts,
			size_t n)
{
	struct hmap *now;
	const char *why;
	bool added = false, first, look;

	if (w == NULL || w->stopping || w->home == NULL)
		return;
	first = !w->contexts_told;
	/* a context added later (a new user) needs its own files looked at,
	 * not a walk of every root; the first list (at start, or before a
	 * first run's baseline) goes through a full reconcile */
	look = !first && !(w->job != NULL && w->job->baseline);
	w->contexts_told = true;
	now = hmap_new();
	for (size_t i = 0; i < n; i++) {
		if (!name_valid_user(contexts[i], &why)) {
			log_warn("watch: context %s: not watched: %s",
				 contexts[i], why);
			continue;
		}
		hmap_put(now, contexts[i], (void *)1);
		if (hmap_get(w->contexts, contexts[i]) != NULL)
			continue;
		hmap_put(w->contexts, contexts[i], (void *)1);
		for (size_t k = 0; watch_home_files[k] != NULL; k++) {
			char *f = xasprintf("%s/%s/%s", w->home, contexts[i],
					    watch_home_files[k]);

			watch_root_add(w, f);
			watch_root_setup(w, w->n_roots - 1, false);
			if (look)
				watch_look(w, f);
			free(f);
		}
		added = true;
	}
	/* contexts gone: their files are looked at once more (a removal
	 * gives its event), then no longer watched */
	char **gone = NULL;
	size_t n_gone = 0;
	struct gone_args ga = { now, &gone, &n_gone };

	hmap_each(w->contexts, watch_collect_gone, &ga);
	for (size_t i = 0; i < n_gone; i++) {
		char *dir = xasprintf("%s/%s", w->home, gone[i]);
		struct watch_dir *wdir = hmap_get(w->path_map, dir);

		for (size_t k = 0; watch_home_files[k] != NULL; k++) {
			char *f = xasprintf("%s/%s", dir, watch_home_files[k]);

			watch_root_del(w, f);
			if (snapshot_get(w->snap, f) != NULL)
				watch_dirty(w, f);
			free(f);
		}
		if (wdir != NULL && !wdir->recursive &&
		    !watch_is_root_ancestor(w, dir))
			watch_forget_dir(w, wdir, true);
		hmap_del(w->contexts, gone[i]);
		free(dir);
		free(gone[i]);
	}
	free(gone);
	hmap_free(&now, NULL);
	if (!added || look)
		return;
	/* what the new contexts' files hold is compared with the snapshot
	 * by a reconcile (changes made while stopped come with source
	 * "reconcile"); during the first baseline, silently */
	if (w->job != NULL && w->job->baseline)
		w->rebaseline = true;
	else if (w->started_fresh && first)
		/* the first run's baseline went before the panel DB told
		 * its contexts: their files are part of the baseline */
		w->fresh = true;
	watch_reconcile_begin(w);
}

static bool watch_known(void *ctx, const char *path)
{
	struct watch *w = ctx;

	return w->snap != NULL && snapshot_get(w->snap, path) != NULL;
}

int watch_start(struct engine *e, struct entity *ent, struct watch **w_r,
		const char **error_r)
{
	const struct config *cfg = engine_config(e);
	struct watch *w;
	char *dbpath;
	int ret;

	*w_r = NULL;
	w = xcalloc(1, sizeof(*w));
	w->e = e;
	w->ent = ent;
	w->loop = engine_loop(e);
	w->root = path_normalize(cfg->root);
	w->home = cfg->paths.home != NULL ? path_normalize(cfg->paths.home)
					  : NULL;
	w->notif = cfg->paths.admin_notifications != NULL
			   ? path_normalize(cfg->paths.admin_notifications)
			   : NULL;
	w->croots = (struct classify_roots){ w->root, w->home, w->notif };
	w->root_set = hmap_new();
	w->contexts = hmap_new();
	watch_root_add(w, w->root);
	for (size_t i = 0; i < cfg->n_watch_extra; i++) {
		char *r = path_normalize(cfg->watch_extra[i]);

		watch_root_add(w, r);
		free(r);
	}
	if (w->notif != NULL)
		watch_root_add(w, w->notif);
	w->n_static = w->n_roots;
	w->settle_ms = cfg->watch.settle_ms;
	w->wd_map = hmap_new();
	w->path_map = hmap_new();
	w->dirty = hmap_new();
	w->retry = hmap_new();
	w->unwatched = hmap_new();
	w->ifd = -1;

	(void)mkdir_p(cfg->state_dir, 0700);
	dbpath = xasprintf("%s/snapshot.db", cfg->state_dir);
	ret = snapshot_open(dbpath, &w->snap, &w->fresh, error_r);
	if (ret < 0) {
		free(dbpath);
		watch_free(w);
		return ret;
	}
	free(dbpath);
	w->ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->ifd < 0) {
		ret = -errno;
		*error_r = "inotify_init1 failed (inotify instance limit?)";
		watch_free(w);
		return ret;
	}
	w->rbuf = xmalloc(WATCH_READ_BUF);
	ret = uv_poll_init(w->loop, &w->poll, w->ifd);
	if (ret < 0) {
		close(w->ifd);
		*error_r = "uv_poll_init on the inotify fd failed";
		watch_free(w);
		return -EIO;
	}
	w->poll.data = w;
	w->handles_open++;
	watch_init_timer(w, &w->settle.timer);
	watch_init_timer(w, &w->created.timer);
	w->settle.timer.data = &w->settle;
	w->created.timer.data = &w->created;
	w->settle.w = w->created.w = w;
	w->settle.delay_ms = w->settle_ms;
	w->created.delay_ms = 1000;
	watch_init_timer(w, &w->flush_timer);
	watch_init_timer(w, &w->periodic_timer);
	watch_init_timer(w, &w->lost_timer);
	watch_init_timer(w, &w->trouble_timer);
	uv_idle_init(w->loop, &w->recon_idle);
	w->recon_idle.data = w;
	w->handles_open++;
	uv_poll_start(&w->poll, UV_READABLE, watch_poll_cb);
	/* the timers are ready (the seed persists states) */
	dbpath = xasprintf("%s/snapshot.db", cfg->state_dir);
	watch_state_check(w, dbpath);
	free(dbpath);

	w->started_fresh = w->fresh;
	watch_roots_setup(w, false);
	const char *err = NULL;

	if (mountwatch_start(w->loop, NULL, (const char *const *)w->roots,
			     w->n_roots, watch_mounts_cb, w, &w->mounts,
			     &err) < 0)
		log_warn("watch: mounts on the roots will go unnoticed: %s",
			 err);
	log_info("watch: %zu folders watched under %s and %zu extra roots%s",
		 hmap_count(w->wd_map), w->root, cfg->n_watch_extra,
		 w->fresh ? " (first run: recording a baseline)" : "");
	watch_reconcile_begin(w);
	if (cfg->watch.reconcile_s > 0) {
		uint64_t ms = (uint64_t)cfg->watch.reconcile_s * 1000;

		uv_timer_start(&w->periodic_timer, periodic_cb, ms, ms);
		uv_unref((uv_handle_t *)&w->periodic_timer);
	}
	{
		const struct entity_files files = { watch_known, w };

		entity_set_files(ent, &files);
	}
	*w_r = w;
	return 0;
}

void watch_stop(struct watch **wp)
{
	struct watch *w = *wp;

	if (w == NULL)
		return;
	*wp = NULL;
	w->stopping = true;
	entity_set_files(w->ent, NULL);
	watch_flush(w);
	mountwatch_stop(&w->mounts);
	uv_poll_stop(&w->poll);
	uv_close((uv_handle_t *)&w->poll, watch_handle_closed);
	w->settle.timer.data = w->created.timer.data = w;
	uv_close((uv_handle_t *)&w->settle.timer, watch_handle_closed);
	uv_close((uv_handle_t *)&w->created.timer, watch_handle_closed);
	uv_close((uv_handle_t *)&w->flush_timer, watch_handle_closed);
	uv_close((uv_handle_t *)&w->periodic_timer, watch_handle_closed);
	uv_close((uv_handle_t *)&w->lost_timer, watch_handle_closed);
	uv_close((uv_handle_t *)&w->trouble_timer, watch_handle_closed);
	uv_close((uv_handle_t *)&w->recon_idle, watch_handle_closed);
	if (w->job != NULL && w->job->in_pool) {
		uv_cancel((uv_req_t *)&w->job->req);
	} else if (w->job != NULL) { /* stopped between chunks */
		job_free(w->job);
		w->job = NULL;
		while (w->waiters != NULL) {
			struct recon_waiter *wt = w->waiters;

			w->waiters = wt->next;
			if (wt->cb != NULL)
				wt->cb(0, wt->ctx);
			free(wt);
		}
	}
}

/* ---- control command: reconcile ---- */

static void watch_cmd_reconciled(unsigned events, void *ctx)
{
	struct control_reply *reply = ctx;
	char *text = xasprintf("reconcile done: %u events", events);

	control_reply_ok(&reply, json_pack("{s:i}", "events", events), text, 0);
	free(text);
}

static void watch_cmd_reconcile(struct control_reply *reply, json_t *args,
				 json_t *req, void *ctx)
{
	struct watch *w = ctx;

	(void)args;
	(void)req;
	if (w == NULL) {
		control_reply_error(&reply, 2, "the watcher is off (watch.enabled: false)");
		return;
	}
	engine_metric_count(w->e, "reconciles_requested", 1);
	if (watch_reconcile(w, watch_cmd_reconciled, reply) < 0)
		control_reply_error(&reply, 2, "reconcile could not start");
}

const struct control_command watch_commands[] = {
	{"reconcile", watch_cmd_reconcile},
	{NULL, NULL},
};
