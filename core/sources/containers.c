/* The container source: see containers.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* struct ucred */
#endif
#include "containers.h"
#include "ctrevent.h"
#include "engine.h"
#include "hmap.h"
#include "journal.h"
#include "log.h"
#include "util.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CTR_LINE_MAX (256 * 1024) /* a longer event line is dropped */
#define CTR_SEEN_MAX 16384        /* keys kept per stream */
#define CTR_RECENT_MAX 256        /* user.suspended/removed remembered */
#define CTR_OOM_MAX 4096          /* kernel OOM kills remembered */
#define CTR_EXIT_OOM 137          /* SIGKILL: what an OOM kill exits with */
#define CTR_QUEUE_MAX 4096        /* a stream's events waiting for the loop;
				     past it the thread stops reading (a
				     user's socket may be anything) */

struct containers;

struct cstream {
	struct cstream *next;
	struct containers *c;
	char *path;
	unsigned uid;
	bool docker;
	bool scanned;      /* found by the run_user_dir scan */
	bool mark;         /* still there at the last scan */

	/* loop thread */
	struct ctrseen seen;
	struct ctrloop *loops;
	struct hmap *health;   /* container id -> "healthy"... (malloc'd) */
	struct hmap *oom_api;  /* ids the API reported an oom for */
	bool connected;
	uint64_t events, duplicates, errors;
	char *last_error;

	/* shared with the thread */
	atomic_llong since_s;  /* since= for the next connection */
	atomic_uint queued;    /* items posted, not yet handled */
	atomic_bool stop;
	pthread_t thread;
	bool thread_started;

	/* the thread's own */
	CURLM *multi;
	CURL *easy;            /* the stream's transfer */
	curl_socket_t fd;      /* its socket (CURLOPT_SOCKOPTFUNCTION) */
	CURL *inspect;
	char *buf;
	size_t len, cap;
	bool skipping;         /* inside an oversized line */
	long http_code;
	char errbody[200];
	unsigned catchup;      /* events older than the connection */
	int64_t connect_ns;
};

enum cq_kind { CQ_EVENT, CQ_CONNECTED, CQ_DISCONNECTED, CQ_BAD, CQ_WARN };

struct cqitem {
	struct cqitem *next;
	struct cstream *st;
	enum cq_kind kind;
	struct ctrevent ev;
	char msg[200];
};

struct recent_user {
	char name[65];    /* ctx or user name */
	char type[24];    /* user.suspended, user.removed */
	int64_t mono_ms;
};

struct containers {
	struct engine *e;
	uv_loop_t *loop;
	const struct config *cfg;
	int refs;          /* the source, plus one per submit in flight */
	bool stopped;
	int64_t start_ns;

	struct cstream *streams;
	uv_timer_t scan_timer, save_timer;
	uv_async_t async;
	pthread_mutex_t qlock;
	struct cqitem *qhead, *qtail;

	struct hmap *homes;    /* "<uid>" -> ctx (malloc'd) */
	json_t *state;         /* saved per-socket state, by path */
	char *state_path;
	bool dirty;

	int kmsg_fd;
	uv_poll_t kmsg_poll;
	bool kmsg_polling;
	struct hmap *oom_ids;  /* container id -> (void *)1 */

	void *listen;
	struct recent_user recent[CTR_RECENT_MAX];
	size_t n_recent;
	unsigned handles;      /* uv handles still open */
};

static void containers_unref(struct containers *c);

/* ---- the stream thread ------------------------------------------------ */

static void cstream_post(struct cstream *st, enum cq_kind kind,
			 const struct ctrevent *ev, const char *msg)
{
	struct containers *c = st->c;
	struct cqitem *it = xcalloc(1, sizeof(*it));

	it->st = st;
	it->kind = kind;
	atomic_fetch_add(&st->queued, 1);
	if (ev != NULL)
		it->ev = *ev;
	if (msg != NULL)
		snprintf(it->msg, sizeof(it->msg), "%s", msg);
	pthread_mutex_lock(&c->qlock);
	if (c->qtail != NULL)
		c->qtail->next = it;
	else
		c->qhead = it;
	c->qtail = it;
	pthread_mutex_unlock(&c->qlock);
	uv_async_send(&c->async);
}

static size_t cstream_sink(char *data, size_t size, size_t n, void *arg)
{
	char **body = arg;
	size_t len = size * n, have = strlen(*body);

	if (have + len < 64 * 1024) {
		*body = xrealloc(*body, have + len + 1);
		memcpy(*body + have, data, len);
		(*body)[have + len] = '\0';
	}
	return len;
}

/* Podman 4.3's health_status events do not carry the status: ask the
 * container (GET .../containers/<id>/json). */
static bool cstream_inspect_health(struct cstream *st, const char *id,
				   char *health)
{
	char url[160];
	char *body = xstrdup("");
	long code = 0;
	bool ok = false;
	json_t *doc;

	if (st->inspect == NULL)
		st->inspect = curl_easy_init();
	if (st->inspect == NULL) {
		free(body);
		return false;
	}
	curl_easy_reset(st->inspect);
	snprintf(url, sizeof(url), "http://d%s/containers/%s/json",
		 st->docker ? "" : "/v4.0.0/libpod", id);
	curl_easy_setopt(st->inspect, CURLOPT_UNIX_SOCKET_PATH, st->path);
	curl_easy_setopt(st->inspect, CURLOPT_URL, url);
	curl_easy_setopt(st->inspect, CURLOPT_TIMEOUT_MS, 3000L);
	curl_easy_setopt(st->inspect, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(st->inspect, CURLOPT_WRITEFUNCTION, cstream_sink);
	curl_easy_setopt(st->inspect, CURLOPT_WRITEDATA, &body);
	if (curl_easy_perform(st->inspect) == CURLE_OK &&
	    curl_easy_getinfo(st->inspect, CURLINFO_RESPONSE_CODE, &code) ==
		    CURLE_OK &&
	    code == 200) {
		doc = json_loads(body, 0, NULL);
		ok = doc != NULL && ctrevent_inspect_health(doc, health);
		json_decref(doc);
	}
	free(body);
	return ok;
}

static void cstream_line(struct cstream *st, const char *line, size_t len)
{
	struct ctrevent ev;
	const char *why = NULL;
	int ret;

	if (len == 0)
		return;
	ret = ctrevent_parse(line, len, &ev, &why);
	if (ret == 1)
		return;
	if (ret < 0) {
		cstream_post(st, CQ_BAD, NULL, why);
		return;
	}
	if (ev.kind == CTR_HEALTH && ev.health[0] == '\0' &&
	    !cstream_inspect_health(st, ev.id, ev.health))
		return; /* gone already: no status to tell */
	if (ev.time_ns < st->connect_ns && ++st->catchup == 1000 && st->docker)
		cstream_post(st, CQ_WARN, NULL,
			     "the catch-up reached Docker's 1,000 event limit: "
			     "older events may be lost");
	while (atomic_load(&st->queued) >= CTR_QUEUE_MAX &&
	       !atomic_load(&st->stop))
		usleep(10000); /* the loop is behind: read no more for now */
	cstream_post(st, CQ_EVENT, &ev, NULL);
}

/* A socket found under run_user_dir must be served by its uid (a user's
 * own Podman): a user who swaps a folder of his for a link to another
 * user's socket between the scan and the connect gets nothing. */
static bool cstream_peer_ok(struct cstream *st)
{
	curl_socket_t fd = st->fd;
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!st->scanned || !st->c->cfg->containers.peer_check)
		return true;
	if (fd == CURL_SOCKET_BAD ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		snprintf(st->errbody, sizeof(st->errbody),
			 "no peer credentials");
		st->http_code = -1;
		return false;
	}
	if (cred.uid == st->uid)
		return true;
	snprintf(st->errbody, sizeof(st->errbody),
		 "served by uid %u, not %u (containers.peer_check)",
		 (unsigned)cred.uid, st->uid);
	st->http_code = -1;
	return false;
}

static size_t cstream_write(char *data, size_t size, size_t n, void *arg)
{
	struct cstream *st = arg;
	size_t len = size * n;

	if (st->http_code == 0) {
		curl_easy_getinfo(st->easy, CURLINFO_RESPONSE_CODE,
				  &st->http_code);
		if (st->http_code == 200 && !cstream_peer_ok(st))
			return 0; /* CURLE_WRITE_ERROR: reconnect later */
	}
	if (st->http_code != 200) {
		size_t have = strlen(st->errbody);
		size_t room = sizeof(st->errbody) - 1 - have;

		memcpy(st->errbody + have, data, len < room ? len : room);
		st->errbody[have + (len < room ? len : room)] = '\0';
		return len;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = data[i];

		if (ch == '\n') {
			if (!st->skipping)
				cstream_line(st, st->buf, st->len);
			else
				cstream_post(st, CQ_BAD, NULL,
					     "event line too long");
			st->len = 0;
			st->skipping = false;
			continue;
		}
		if (st->skipping)
			continue;
		if (st->len + 1 >= CTR_LINE_MAX) {
			st->skipping = true;
			continue;
		}
		if (st->len + 1 >= st->cap) {
			st->cap = st->cap ? st->cap * 2 : 4096;
			st->buf = xrealloc(st->buf, st->cap);
		}
		st->buf[st->len++] = ch;
	}
	return len;
}

/* CURLOPT_SOCKOPTFUNCTION: remember the transfer's socket */
static int cstream_sockopt(void *arg, curl_socket_t fd, curlsocktype purpose)
{
	struct cstream *st = arg;

	(void)purpose;
	st->fd = fd;
	return CURL_SOCKOPT_OK;
}

static int cstream_header_done(CURL *h)
{
	long code = 0;

	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	return (int)code;
}

static void *cstream_thread(void *arg)
{
	struct cstream *st = arg;
	char url[256];

	while (!atomic_load(&st->stop)) {
		CURL *h = curl_easy_init();
		CURLcode result = CURLE_OK;
		bool told = false;
		int running = 1;
		CURLMsg *msg;
		int q;
		long long since = atomic_load(&st->since_s);

		if (h == NULL)
			break;
		if (st->docker)
			snprintf(url, sizeof(url),
				 "http://d/events?since=%lld", since);
		else
			snprintf(url, sizeof(url),
				 "http://d/v4.0.0/libpod/events?stream=true&"
				 "since=%lld", since);
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, st->path);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 0L);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cstream_write);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, st);
		curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, cstream_sockopt);
		curl_easy_setopt(h, CURLOPT_SOCKOPTDATA, st);
		curl_easy_setopt(h, CURLOPT_FORBID_REUSE, 1L);
		st->easy = h;
		st->fd = CURL_SOCKET_BAD;
		st->len = 0;
		st->skipping = false;
		st->http_code = 0;
		st->errbody[0] = '\0';
		st->catchup = 0;
		st->connect_ns = (int64_t)now_ms() * 1000000;
		curl_multi_add_handle(st->multi, h);
		while (!atomic_load(&st->stop)) {
			curl_multi_perform(st->multi, &running);
			if (st->http_code == 0) {
				int code = cstream_header_done(h);

				if (code != 0)
					st->http_code = code;
				if (code == 200)
					cstream_peer_ok(st);
			}
			if (st->http_code == -1)
				break; /* refused: see cstream_peer_ok */
			if (!told && st->http_code == 200) {
				told = true;
				cstream_post(st, CQ_CONNECTED, NULL, NULL);
			}
			while ((msg = curl_multi_info_read(st->multi, &q)) !=
			       NULL)
				if (msg->msg == CURLMSG_DONE)
					result = msg->data.result;
			if (!running)
				break;
			curl_multi_poll(st->multi, NULL, 0, 1000, NULL);
		}
		curl_multi_remove_handle(st->multi, h);
		curl_easy_cleanup(h);
		if (atomic_load(&st->stop))
			break;
		{
			char why[200];

			if (result != CURLE_OK)
				snprintf(why, sizeof(why), "%s",
					 curl_easy_strerror(result));
			else if (st->http_code == -1)
				snprintf(why, sizeof(why), "%s", st->errbody);
			else if (st->http_code != 200)
				snprintf(why, sizeof(why), "HTTP %ld: %.120s",
					 st->http_code, st->errbody);
			else
				snprintf(why, sizeof(why), "stream ended");
			cstream_post(st, CQ_DISCONNECTED, NULL, why);
		}
		/* wait, unless woken to stop */
		curl_multi_poll(st->multi, NULL, 0,
				(int)st->c->cfg->containers.reconnect_ms, NULL);
	}
	return NULL;
}

/* ---- the loop side ---------------------------------------------------- */

static const char *containers_ctx(struct containers *c, unsigned uid);

static void containers_save_cb(uv_timer_t *t);

/* save soon (200 ms): a burst of events makes one write */
static void containers_dirty(struct containers *c)
{
	c->dirty = true;
	if (!c->stopped && !uv_is_active((uv_handle_t *)&c->save_timer))
		uv_timer_start(&c->save_timer, containers_save_cb, 200, 0);
}

struct csubmit {
	struct containers *c;
	char *path;
	int64_t ns;
	char id[CTR_ID_MAX + 1];
	char action[CTR_ACTION_MAX + 1];
	bool key; /* marks the key journaled */
};

static struct cstream *containers_find(struct containers *c, const char *path)
{
	for (struct cstream *st = c->streams; st != NULL; st = st->next)
		if (strcmp(st->path, path) == 0)
			return st;
	return NULL;
}

static void containers_submitted(struct event *ev, const char *error,
				 void *arg)
{
	struct csubmit *s = arg;
	struct containers *c = s->c;

	if (ev == NULL)
		log_error("containers: %s not journaled: %s (fetched again at "
			  "the next start)", s->action, error);
	else if (s->key && !c->stopped) {
		struct cstream *st = containers_find(c, s->path);

		if (st != NULL) {
			ctrseen_journaled(&st->seen, s->ns, s->id, s->action);
			containers_dirty(c);
		}
	}
	free(s->path);
	free(s);
	containers_unref(c);
}

/* the reason for a stop: a recent user.suspended / user.removed of its
 * owner */
static const char *containers_reason(struct containers *c, const char *ctx)
{
	int64_t now = mono_ms();
	int64_t win = (int64_t)c->cfg->containers.reason_window_s * 1000;

	if (ctx == NULL)
		return NULL;
	for (size_t i = c->n_recent; i-- > 0;) {
		struct recent_user *r = &c->recent[i];

		if (now - r->mono_ms <= win && strcmp(r->name, ctx) == 0)
			return r->type;
	}
	return NULL;
}

static void containers_submit(struct cstream *st, const char *type,
			      const struct ctrevent *ev, json_t *payload,
			      bool key)
{
	struct containers *c = st->c;
	struct csubmit *s = xcalloc(1, sizeof(*s));
	const char *ctx = containers_ctx(c, st->uid), *why = NULL;
	char subject[300], when[40];

	json_object_set_new(payload, "container", json_string(ev->name));
	json_object_set_new(payload, "container_id", json_string(ev->id));
	if (ev->image[0] != '\0')
		json_object_set_new(payload, "image", json_string(ev->image));
	if (ev->service[0] != '\0')
		json_object_set_new(payload, "service", json_string(ev->service));
	if (ev->project[0] != '\0')
		json_object_set_new(payload, "project", json_string(ev->project));
	json_object_set_new(payload, "uid", json_integer(st->uid));
	if (ctx != NULL) {
		/* the enricher puts the panel's current name here */
		json_object_set_new(payload, "user", json_string(ctx));
		json_object_set_new(payload, "ctx", json_string(ctx));
	} else if (st->uid == 0) {
		json_object_set_new(payload, "system", json_true());
	}
	json_object_set_new(payload, "socket", json_string(st->path));
	json_object_set_new(payload, "api",
			    json_string(st->docker ? "docker" : "libpod"));
	json_object_set_new(payload, "action", json_string(ev->action));
	json_object_set_new(payload, "time_nano", json_integer(ev->time_ns));
	time_format_ms(ev->time_ns / 1000000, when, sizeof(when));
	json_object_set_new(payload, "container_time", json_string(when));
	if (ctx != NULL)
		snprintf(subject, sizeof(subject), "container:%s/%s", ctx,
			 ev->name);
	else if (st->uid == 0)
		snprintf(subject, sizeof(subject), "container:system/%s",
			 ev->name);
	else
		snprintf(subject, sizeof(subject), "container:uid%u/%s",
			 st->uid, ev->name);
	s->c = c;
	s->path = xstrdup(st->path);
	s->ns = ev->time_ns;
	s->key = key;
	snprintf(s->id, sizeof(s->id), "%s", ev->id);
	snprintf(s->action, sizeof(s->action), "%s", ev->action);
	c->refs++;
	if (engine_submit(c->e, type, subject, "container", payload,
			  containers_submitted, s, &why) < 0) {
		log_error("containers: %s: %s", type, why);
		free(s->path);
		free(s);
		c->refs--;
		return;
	}
	engine_metric_count(c->e, "container_events", 1);
}

/* read what the kernel logged since last time */
static void containers_kmsg_drain(struct containers *c)
{
	char rec[8192], id[CTR_ID_MAX + 1];

	if (c->kmsg_fd < 0)
		return;
	for (;;) {
		ssize_t n = read(c->kmsg_fd, rec, sizeof(rec) - 1);
		char *msg;

		if (n < 0 && (errno == EINTR || errno == EPIPE))
			continue; /* EPIPE: records overwritten; go on */
		if (n <= 0)
			break;
		rec[n] = '\0';
		msg = memchr(rec, ';', (size_t)n);
		if (msg == NULL ||
		    !ctrevent_kmsg_oom(msg, (size_t)(rec + n - msg), id))
			continue;
		if (hmap_count(c->oom_ids) >= CTR_OOM_MAX) {
			hmap_free(&c->oom_ids, NULL);
			c->oom_ids = hmap_new();
		}
		hmap_put(c->oom_ids, id, (void *)1);
	}
}

static void containers_kmsg_cb(uv_poll_t *p, int status, int events)
{
	(void)status;
	(void)events;
	containers_kmsg_drain(p->data);
}

static void cstream_handle(struct cstream *st, const struct ctrevent *ev)
{
	struct containers *c = st->c;
	const struct config *cfg = c->cfg;
	const char *reason;
	json_t *p;
	unsigned count = 0;

	if (!ctrseen_add(&st->seen, ev->time_ns, ev->id, ev->action)) {
		st->duplicates++;
		return;
	}
	st->events++;
	atomic_store(&st->since_s, ctrseen_since_s(&st->seen, 0));
	switch (ev->kind) {
	case CTR_STARTED:
		containers_submit(st, "container.started", ev, json_object(),
				  true);
		break;
	case CTR_STOPPED:
	case CTR_DIED:
		p = json_object();
		if (ev->kind == CTR_DIED && ev->exit_code >= 0)
			json_object_set_new(p, "exit_code",
					    json_integer(ev->exit_code));
		reason = containers_reason(c, containers_ctx(c, st->uid));
		if (reason != NULL)
			json_object_set_new(p, "reason", json_string(reason));
		containers_submit(st, ev->kind == CTR_DIED ? "container.died"
							   : "container.stopped",
				  ev, p, true);
		if (ev->kind != CTR_DIED)
			break;
		/* an OOM the API did not report: the kernel's log says */
		containers_kmsg_drain(c);
		if (hmap_get(st->oom_api, ev->id) != NULL) {
			hmap_del(st->oom_api, ev->id);
		} else if (ev->exit_code == CTR_EXIT_OOM &&
			   hmap_del(c->oom_ids, ev->id) != NULL) {
			p = json_object();
			json_object_set_new(p, "oom_source", json_string("kernel"));
			containers_submit(st, "container.oom", ev, p, false);
		}
		if (reason == NULL &&
		    ctrloop_death(st->loops, ev->name, ev->time_ns, &count)) {
			p = json_object();
			json_object_set_new(p, "deaths", json_integer(count));
			json_object_set_new(p, "window_s", json_integer(
				cfg->containers.restart_loop_window_s));
			if (ev->exit_code >= 0)
				json_object_set_new(p, "exit_code",
						    json_integer(ev->exit_code));
			containers_submit(st, "container.restart_loop", ev, p,
					  false);
		}
		containers_dirty(c);
		break;
	case CTR_OOM:
		if (hmap_count(st->oom_api) > CTR_OOM_MAX) {
			hmap_free(&st->oom_api, NULL);
			st->oom_api = hmap_new();
		}
		hmap_put(st->oom_api, ev->id, (void *)1);
		p = json_object();
		json_object_set_new(p, "oom_source", json_string("api"));
		containers_submit(st, "container.oom", ev, p, true);
		break;
	case CTR_HEALTH: {
		const char *was = hmap_get(st->health, ev->id);

		if (was != NULL && strcmp(was, ev->health) == 0)
			break;
		p = json_object();
		json_object_set_new(p, "health", json_string(ev->health));
		if (was != NULL)
			json_object_set_new(p, "previous", json_string(was));
		if (was == NULL && hmap_count(st->health) >= CTR_OOM_MAX) {
			/* ids of long-gone containers: start over */
			hmap_free(&st->health, free);
			st->health = hmap_new();
		}
		free(hmap_put(st->health, ev->id, xstrdup(ev->health)));
		containers_submit(st, "container.health_changed", ev, p, true);
		containers_dirty(c);
		break;
	}
	}
}

static void containers_drain(struct containers *c)
{
	struct cqitem *it, *next;

	pthread_mutex_lock(&c->qlock);
	it = c->qhead;
	c->qhead = c->qtail = NULL;
	pthread_mutex_unlock(&c->qlock);
	for (; it != NULL; it = next) {
		struct cstream *st = it->st;

		next = it->next;
		atomic_fetch_sub(&st->queued, 1);
		switch (it->kind) {
		case CQ_EVENT:
			cstream_handle(st, &it->ev);
			break;
		case CQ_CONNECTED:
			st->connected = true;
			log_info("containers: %s (uid %u) connected, from %lld",
				 st->path, st->uid,
				 (long long)atomic_load(&st->since_s));
			if (st->docker)
				log_info("containers: %s: Docker keeps only its "
					 "last 1,000 events: a longer gap than "
					 "that loses the older ones", st->path);
			break;
		case CQ_DISCONNECTED:
			if (st->connected || st->last_error == NULL ||
			    strcmp(st->last_error, it->msg) != 0)
				log_warn("containers: %s: %s; reconnecting",
					 st->path, it->msg);
			st->connected = false;
			st->errors++;
			free(st->last_error);
			st->last_error = xstrdup(it->msg);
			break;
		case CQ_WARN:
			log_warn("containers: %s: %s", st->path, it->msg);
			break;
		case CQ_BAD:
			st->errors++;
			if (st->errors <= 10 || st->errors % 1000 == 0)
				log_warn("containers: %s: event dropped: %s",
					 st->path, it->msg);
			break;
		}
		free(it);
	}
}

static void containers_async_cb(uv_async_t *a)
{
	containers_drain(a->data);
}

/* ---- uid -> ctx ------------------------------------------------------- */

static void containers_scan_homes(struct containers *c)
{
	const char *home = c->cfg->containers.home_dir;
	struct hmap *homes = hmap_new();
	DIR *dir = home != NULL ? opendir(home) : NULL;
	struct dirent *de;

	while (dir != NULL && (de = readdir(dir)) != NULL) {
		const char *why;
		struct stat sb;
		char key[16];

		if (de->d_name[0] == '.' || !name_valid_user(de->d_name, &why) ||
		    fstatat(dirfd(dir), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISDIR(sb.st_mode) || sb.st_uid == 0)
			continue;
		snprintf(key, sizeof(key), "%u", (unsigned)sb.st_uid);
		free(hmap_put(homes, key, xstrdup(de->d_name)));
	}
	if (dir != NULL)
		closedir(dir);
	hmap_free(&c->homes, free);
	c->homes = homes;
}

static const char *containers_ctx(struct containers *c, unsigned uid)
{
	char key[16];

	if (uid == 0)
		return NULL;
	snprintf(key, sizeof(key), "%u", uid);
	return hmap_get(c->homes, key);
}

/* ---- streams ---------------------------------------------------------- */

static json_t *containers_saved(struct containers *c, const char *path)
{
	return json_object_get(json_object_get(c->state, "streams"), path);
}

static void cstream_new(struct containers *c, const char *path, unsigned uid,
			bool docker, bool scanned)
{
	struct cstream *st = xcalloc(1, sizeof(*st));
	json_t *saved = containers_saved(c, path), *v;
	const char *k;
	int ret;

	st->c = c;
	st->path = xstrdup(path);
	st->uid = uid;
	st->docker = docker;
	st->scanned = scanned;
	st->mark = true;
	ctrseen_init(&st->seen,
		     (int64_t)c->cfg->containers.catchup_slack_s * 1000000000,
		     CTR_SEEN_MAX);
	st->loops = ctrloop_new(c->cfg->containers.restart_loop_deaths,
				(int64_t)c->cfg->containers.restart_loop_window_s *
					1000000000);
	st->health = hmap_new();
	st->oom_api = hmap_new();
	if (saved != NULL) {
		ctrseen_load(&st->seen, json_object_get(saved, "seen"));
		ctrloop_load(st->loops, json_object_get(saved, "deaths"));
		json_object_foreach(json_object_get(saved, "health"), k, v) {
			char h[16];

			if (json_is_string(v) && strlen(json_string_value(v)) < 16 &&
			    strlen(k) <= CTR_ID_MAX) {
				snprintf(h, sizeof(h), "%s", json_string_value(v));
				free(hmap_put(st->health, k, xstrdup(h)));
			}
		}
	}
	if (st->seen.newest_ns == 0)
		st->seen.floor_ns = c->start_ns; /* never seen: from now on */
	atomic_store(&st->since_s,
		     ctrseen_since_s(&st->seen, c->start_ns / 1000000000));
	st->multi = curl_multi_init();
	st->next = c->streams;
	c->streams = st;
	ret = st->multi != NULL ? pthread_create(&st->thread, NULL,
						 cstream_thread, st)
				: ENOMEM;
	if (ret != 0) {
		log_error("containers: %s: no stream thread: %s", path,
			  strerror(ret));
		return;
	}
	st->thread_started = true;
	log_info("containers: following %s (uid %u%s%s, %s)", path, uid,
		 containers_ctx(c, uid) != NULL ? ", ctx " : "",
		 containers_ctx(c, uid) != NULL ? containers_ctx(c, uid) : "",
		 docker ? "docker" : "libpod");
}

static bool containers_saved_health(const char *key, void *value, void *arg)
{
	json_object_set_new(arg, key, json_string(value));
	return true;
}

static void cstream_save(struct containers *c, struct cstream *st)
{
	json_t *streams = json_object_get(c->state, "streams");
	json_t *health = json_object();

	hmap_each(st->health, containers_saved_health, health);
	json_object_set_new(streams, st->path,
			    json_pack("{s:o,s:o,s:o,s:I}", "seen",
				      ctrseen_dump(&st->seen), "deaths",
				      ctrloop_dump(st->loops), "health", health,
				      "uid", (json_int_t)st->uid));
}

static void containers_save(struct containers *c)
{
	char *text;
	int ret;

	if (!c->dirty)
		return;
	c->dirty = false;
	for (struct cstream *st = c->streams; st != NULL; st = st->next)
		cstream_save(c, st);
	text = json_dumps(c->state, JSON_COMPACT);
	ret = file_write_atomic(c->state_path, text, strlen(text), 0600);
	if (ret < 0)
		log_error("containers: cannot write %s: %s", c->state_path,
			  strerror(-ret));
	free(text);
}

static void containers_save_cb(uv_timer_t *t)
{
	containers_save(t->data);
}

static void cstream_free(struct containers *c, struct cstream *st)
{
	if (st->thread_started) {
		atomic_store(&st->stop, true);
		curl_multi_wakeup(st->multi);
		pthread_join(st->thread, NULL);
	}
	containers_drain(c); /* what it posted before it stopped */
	cstream_save(c, st);
	c->dirty = true;
	if (st->inspect != NULL)
		curl_easy_cleanup(st->inspect);
	if (st->multi != NULL)
		curl_multi_cleanup(st->multi);
	ctrseen_clear(&st->seen);
	ctrloop_free(&st->loops);
	hmap_free(&st->health, free);
	hmap_free(&st->oom_api, NULL);
	free(st->last_error);
	free(st->buf);
	free(st->path);
	free(st);
}

static void containers_want(struct containers *c, const char *path,
			    unsigned uid, bool docker)
{
	struct cstream *st = containers_find(c, path);

	if (st != NULL) {
		st->mark = true;
		return;
	}
	cstream_new(c, path, uid, docker, true);
}

/* <run_user_dir>/<uid>/podman/podman.sock and <uid>/docker.sock, each a
 * socket owned by that uid */
static void containers_scan(struct containers *c)
{
	const char *run = c->cfg->containers.run_user_dir;
	struct cstream **pp;
	DIR *dir;
	struct dirent *de;

	containers_scan_homes(c);
	if (run == NULL)
		return;
	for (struct cstream *st = c->streams; st != NULL; st = st->next)
		st->mark = !st->scanned;
	dir = opendir(run);
	while (dir != NULL && (de = readdir(dir)) != NULL) {
		static const char *const socks[] = { "podman/podman.sock",
						     "docker.sock" };
		char *end, *path;
		unsigned long uid;
		struct stat sb;

		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		uid = strtoul(de->d_name, &end, 10);
		if (*end != '\0' || uid >= UINT_MAX)
			continue;
		for (size_t i = 0; i < 2; i++) {
			path = xasprintf("%s/%s/%s", run, de->d_name, socks[i]);
			if (lstat(path, &sb) == 0 && S_ISSOCK(sb.st_mode) &&
			    sb.st_uid == uid)
				containers_want(c, path, (unsigned)uid, i == 1);
			free(path);
		}
	}
	if (dir != NULL)
		closedir(dir);
	for (pp = &c->streams; *pp != NULL;) {
		struct cstream *st = *pp;

		if (st->mark) {
			pp = &st->next;
			continue;
		}
		*pp = st->next;
		log_info("containers: %s is gone", st->path);
		cstream_free(c, st);
	}
	containers_save(c);
}

static void containers_scan_cb(uv_timer_t *t)
{
	containers_scan(t->data);
}

/* ---- user.suspended / user.removed ------------------------------------ */

static void containers_recent_add(struct containers *c, const char *name,
				  const char *type)
{
	struct recent_user *r;

	if (name == NULL || strlen(name) >= sizeof(r->name))
		return;
	if (c->n_recent == CTR_RECENT_MAX) {
		memmove(c->recent, c->recent + 1,
			(CTR_RECENT_MAX - 1) * sizeof(*r));
		c->n_recent--;
	}
	r = &c->recent[c->n_recent++];
	snprintf(r->name, sizeof(r->name), "%s", name);
	snprintf(r->type, sizeof(r->type), "%s", type);
	r->mono_ms = mono_ms();
}

static void containers_listen_cb(struct event *ev, void *arg)
{
	struct containers *c = arg;
	const char *ctx, *user;

	if (strcmp(ev->type, "user.unsuspended") == 0) {
		ctx = json_string_value(json_object_get(ev->payload, "context"));
		for (size_t i = 0; i < c->n_recent; i++)
			if (ctx != NULL && strcmp(c->recent[i].name, ctx) == 0 &&
			    strcmp(c->recent[i].type, "user.suspended") == 0)
				c->recent[i].mono_ms = INT64_MIN / 2;
		return;
	}
	/* opencli user-suspend rewrites the user's Caddy confs first, stops
	 * the containers next and renames the row last: a domain suspended
	 * for its user (owner enriched) is the first sign of it */
	if (strcmp(ev->type, "domain.suspended") == 0) {
		const char *why = json_string_value(json_object_get(ev->payload,
								    "reason"));

		ctx = json_string_value(json_object_get(ev->payload, "context"));
		if (why != NULL && strcmp(why, "user") == 0)
			containers_recent_add(c, ctx, "user.suspended");
		return;
	}
	if (strcmp(ev->type, "user.suspended") != 0 &&
	    strcmp(ev->type, "user.removed") != 0)
		return;
	ctx = json_string_value(json_object_get(ev->payload, "context"));
	if (ctx == NULL)
		ctx = json_string_value(json_object_get(ev->payload, "ctx"));
	user = json_string_value(json_object_get(ev->payload, "user"));
	containers_recent_add(c, ctx, ev->type);
	if (user != NULL && (ctx == NULL || strcmp(user, ctx) != 0))
		containers_recent_add(c, user, ev->type);
}

/* ---- start and stop --------------------------------------------------- */

/* keys of container events already journaled (the state file may lag
 * behind a crash by one save) */
static void containers_recover(struct containers *c)
{
	struct journal_filter f = {
		.type = "container.*",
		.since_ms = now_ms() - 24LL * 3600 * 1000,
		.limit = 20000,
	};
	json_t *events = NULL, *streams = json_object_get(c->state, "streams");
	const char *why = NULL;
	size_t i, n = 0;
	json_t *row;

	if (journal_query(engine_journal(c->e), &f, &events, &why) < 0) {
		log_warn("containers: journal not read: %s", why);
		return;
	}
	json_array_foreach(events, i, row) {
		json_t *p = json_object_get(row, "payload");
		const char *path = json_string_value(json_object_get(p, "socket"));
		const char *type = json_string_value(json_object_get(row, "type"));
		json_t *key, *saved;

		/* derived events (restart_loop, a kernel OOM) carry the key
		 * of the death they come from: the same key again */
		if (path == NULL || type == NULL)
			continue;
		key = json_pack("[Oss]", json_object_get(p, "time_nano"),
				json_string_value(json_object_get(p, "container_id"))
					?: "",
				json_string_value(json_object_get(p, "action"))
					?: "");
		if (key == NULL)
			continue;
		saved = json_object_get(streams, path);
		if (saved == NULL) {
			saved = json_pack("{s:[]}", "seen");
			json_object_set_new(streams, path, saved);
		}
		if (!json_is_array(json_object_get(saved, "seen")))
			json_object_set_new(saved, "seen", json_array());
		json_array_append_new(json_object_get(saved, "seen"), key);
		n++;
	}
	json_decref(events);
	if (n > 0)
		log_debug("containers: %zu journaled events recovered", n);
}

static void containers_load(struct containers *c)
{
	char *text = NULL;
	size_t len = 0;
	json_t *doc = NULL;
	int ret;

	ret = file_read_nofollow(c->state_path, 64 * 1024 * 1024, &text, &len);
	if (ret == 0)
		doc = json_loadb(text, len, 0, NULL);
	free(text);
	if (ret == 0 && doc == NULL)
		log_warn("containers: %s unreadable; starting over (the "
			 "journal's events still count)", c->state_path);
	if (!json_is_object(doc) ||
	    !json_is_object(json_object_get(doc, "streams"))) {
		json_decref(doc);
		doc = json_pack("{s:i,s:{}}", "version", 1, "streams");
	}
	c->state = doc;
}

int containers_start(struct engine *e, struct containers **c_r,
		     const char **error_r)
{
	const struct config *cfg = engine_config(e);
	struct containers *c;
	int ret;

	*c_r = NULL;
	if (!cfg->containers.enabled)
		return 0;
	c = xcalloc(1, sizeof(*c));
	c->e = e;
	c->cfg = cfg;
	c->loop = engine_loop(e);
	c->refs = 1;
	c->start_ns = now_ms() * 1000000;
	c->kmsg_fd = -1;
	c->oom_ids = hmap_new();
	c->homes = hmap_new();
	c->state_path = xasprintf("%s/containers.json", cfg->state_dir);
	pthread_mutex_init(&c->qlock, NULL);
	ret = uv_async_init(c->loop, &c->async, containers_async_cb);
	if (ret < 0) {
		*error_r = "containers: no async handle";
		free(c->state_path);
		hmap_free(&c->oom_ids, NULL);
		hmap_free(&c->homes, free);
		free(c);
		return ret;
	}
	c->async.data = c;
	uv_timer_init(c->loop, &c->scan_timer);
	c->scan_timer.data = c;
	uv_timer_init(c->loop, &c->save_timer);
	c->save_timer.data = c;
	c->handles = 3;
	containers_load(c);
	containers_recover(c);
	if (cfg->containers.kmsg != NULL) {
		c->kmsg_fd = open(cfg->containers.kmsg,
				  O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (c->kmsg_fd < 0) {
			log_warn("containers: %s: %s (OOM kills only as the "
				 "API reports them)", cfg->containers.kmsg,
				 strerror(errno));
		} else {
			containers_kmsg_drain(c);
			if (uv_poll_init(c->loop, &c->kmsg_poll, c->kmsg_fd) == 0) {
				c->kmsg_poll.data = c;
				c->handles++;
				c->kmsg_polling = true;
				uv_poll_start(&c->kmsg_poll, UV_READABLE,
					      containers_kmsg_cb);
			}
		}
	}
	c->listen = engine_listen(e, containers_listen_cb, c);
	containers_scan_homes(c);
	for (size_t i = 0; i < cfg->containers.n_sockets; i++) {
		const struct config_csocket *cs = &cfg->containers.sockets[i];

		if (containers_find(c, cs->path) == NULL)
			cstream_new(c, cs->path, cs->uid, cs->docker, false);
	}
	if (cfg->containers.root_socket != NULL &&
	    containers_find(c, cfg->containers.root_socket) == NULL)
		cstream_new(c, cfg->containers.root_socket, 0, false, false);
	containers_scan(c);
	uv_timer_start(&c->scan_timer, containers_scan_cb,
		       cfg->containers.scan_ms, cfg->containers.scan_ms);
	*c_r = c;
	return 0;
}

static void containers_free(struct containers *c)
{
	json_decref(c->state);
	free(c->state_path);
	hmap_free(&c->oom_ids, NULL);
	hmap_free(&c->homes, free);
	if (c->kmsg_fd >= 0)
		close(c->kmsg_fd);
	pthread_mutex_destroy(&c->qlock);
	free(c);
}

static void containers_unref(struct containers *c)
{
	if (--c->refs == 0 && c->handles == 0)
		containers_free(c);
}

static void containers_closed(uv_handle_t *h)
{
	struct containers *c = h->data;

	if (--c->handles == 0 && c->refs == 0)
		containers_free(c);
}

void containers_stop(struct containers **cp)
{
	struct containers *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	while (c->streams != NULL) {
		struct cstream *st = c->streams;

		c->streams = st->next;
		cstream_free(c, st);
	}
	containers_drain(c);
	c->dirty = true;
	containers_save(c);
	c->stopped = true;
	engine_unlisten(c->e, &c->listen);
	uv_close((uv_handle_t *)&c->async, containers_closed);
	uv_close((uv_handle_t *)&c->scan_timer, containers_closed);
	uv_close((uv_handle_t *)&c->save_timer, containers_closed);
	if (c->kmsg_polling)
		uv_close((uv_handle_t *)&c->kmsg_poll, containers_closed);
	containers_unref(c);
}

json_t *containers_status(struct containers *c)
{
	json_t *arr = json_array();

	if (c == NULL)
		return arr;
	for (struct cstream *st = c->streams; st != NULL; st = st->next) {
		const char *ctx = containers_ctx(c, st->uid);

		json_array_append_new(arr, json_pack(
			"{s:s,s:I,s:s?,s:s,s:b,s:I,s:I,s:I,s:s?}", "socket",
			st->path, "uid", (json_int_t)st->uid, "ctx", ctx, "api",
			st->docker ? "docker" : "libpod", "connected",
			st->connected, "events", (json_int_t)st->events,
			"duplicates", (json_int_t)st->duplicates, "errors",
			(json_int_t)st->errors, "last_error", st->last_error));
	}
	return arr;
}
