/* Container API events: see ctrevent.h. */
#include "ctrevent.h"
#include "hmap.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static bool ctr_word_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool ctrevent_label_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= CTR_NAME_MAX || !ctr_word_char(s[i]))
			return false;
	return i > 0;
}

bool ctrevent_name_valid(const char *s)
{
	return ctrevent_label_valid(s) && s[0] != '_' && s[0] != '.' &&
	       s[0] != '-';
}

static bool ctr_id_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= CTR_ID_MAX ||
		    !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i >= 12;
}

/* an image reference: printable ASCII without spaces, quotes or
 * backslashes, at most 255 bytes */
static bool ctr_image_valid(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (i >= CTR_IMAGE_MAX || s[i] <= ' ' || s[i] >= 0x7f ||
		    s[i] == '"' || s[i] == '\'' || s[i] == '\\' || s[i] == '`')
			return false;
	return i > 0;
}

static bool ctr_health_word(const char *s, char *out)
{
	static const char *const words[] = { "healthy", "unhealthy",
					     "starting", NULL };

	for (size_t i = 0; words[i] != NULL; i++)
		if (strcmp(s, words[i]) == 0) {
			strcpy(out, words[i]);
			return true;
		}
	return false;
}

static const char *ctr_attr(json_t *attrs, const char *key)
{
	return json_string_value(json_object_get(attrs, key));
}

int ctrevent_from_json(json_t *obj, struct ctrevent *ev, const char **error_r)
{
	const char *type, *action, *id, *name, *s;
	json_t *actor, *attrs, *t;

	memset(ev, 0, sizeof(*ev));
	ev->exit_code = -1;
	if (!json_is_object(obj)) {
		*error_r = "not a JSON object";
		return -EINVAL;
	}
	type = json_string_value(json_object_get(obj, "Type"));
	if (type == NULL)
		type = json_string_value(json_object_get(obj, "type"));
	if (type == NULL || strcmp(type, "container") != 0)
		return 1;
	action = json_string_value(json_object_get(obj, "Action"));
	if (action == NULL)
		action = json_string_value(json_object_get(obj, "status"));
	if (action == NULL) {
		*error_r = "no Action";
		return -EINVAL;
	}
	if (strcmp(action, "start") == 0)
		ev->kind = CTR_STARTED;
	else if (strcmp(action, "stop") == 0)
		ev->kind = CTR_STOPPED;
	else if (strcmp(action, "died") == 0 || strcmp(action, "die") == 0)
		ev->kind = CTR_DIED;
	else if (strcmp(action, "oom") == 0)
		ev->kind = CTR_OOM;
	else if (strncmp(action, "health_status", 13) == 0 &&
		 (action[13] == '\0' || action[13] == ':'))
		ev->kind = CTR_HEALTH;
	else
		return 1;
	actor = json_object_get(obj, "Actor");
	attrs = json_object_get(actor, "Attributes");
	id = json_string_value(json_object_get(actor, "ID"));
	if (id == NULL || *id == '\0')
		id = json_string_value(json_object_get(obj, "id"));
	if (id == NULL || !ctr_id_valid(id)) {
		*error_r = "missing or invalid container id";
		return -EINVAL;
	}
	strcpy(ev->id, id);
	name = ctr_attr(attrs, "name");
	if (name != NULL && name[0] == '/')
		name++;
	if (name == NULL || !ctrevent_name_valid(name)) {
		*error_r = "missing or invalid container name";
		return -EINVAL;
	}
	strcpy(ev->name, name);
	/* the action word itself, health's "health_status: healthy" cut */
	snprintf(ev->action, sizeof(ev->action), "%.*s",
		 ev->kind == CTR_HEALTH ? 13 : CTR_ACTION_MAX, action);
	s = ctr_attr(attrs, "image");
	if (s == NULL)
		s = json_string_value(json_object_get(obj, "from"));
	if (s != NULL && ctr_image_valid(s))
		strcpy(ev->image, s);
	s = ctr_attr(attrs, "com.docker.compose.service");
	if (s != NULL && ctrevent_label_valid(s))
		strcpy(ev->service, s);
	s = ctr_attr(attrs, "com.docker.compose.project");
	if (s != NULL && ctrevent_label_valid(s))
		strcpy(ev->project, s);
	if (ev->kind == CTR_DIED) {
		s = ctr_attr(attrs, "containerExitCode"); /* Podman */
		if (s == NULL)
			s = ctr_attr(attrs, "exitCode"); /* Docker */
		if (s != NULL) {
			char *end;
			long v = strtol(s, &end, 10);

			if (end != s && *end == '\0' && v >= 0 && v <= 255)
				ev->exit_code = (int)v;
		}
	}
	if (ev->kind == CTR_HEALTH) {
		s = ctr_attr(attrs, "health_status"); /* Podman 4.4+ */
		if (s == NULL && action[13] == ':') {
			s = action + 14;
			while (*s == ' ')
				s++;
		}
		if (s != NULL && !ctr_health_word(s, ev->health))
			ev->health[0] = '\0';
	}
	t = json_object_get(obj, "timeNano");
	if (json_is_integer(t) && json_integer_value(t) > 0) {
		ev->time_ns = json_integer_value(t);
	} else {
		t = json_object_get(obj, "time");
		if (json_is_integer(t) && json_integer_value(t) > 0 &&
		    json_integer_value(t) < INT64_MAX / 1000000000)
			ev->time_ns = json_integer_value(t) * 1000000000;
	}
	if (ev->time_ns <= 0) {
		*error_r = "missing event time";
		return -EINVAL;
	}
	return 0;
}

int ctrevent_parse(const char *line, size_t len, struct ctrevent *ev,
		   const char **error_r)
{
	json_error_t jerr;
	json_t *obj;
	int ret;

	obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (obj == NULL) {
		memset(ev, 0, sizeof(*ev));
		*error_r = "not JSON";
		return -EINVAL;
	}
	ret = ctrevent_from_json(obj, ev, error_r);
	json_decref(obj);
	return ret;
}

bool ctrevent_inspect_health(json_t *doc, char *health)
{
	json_t *state = json_object_get(doc, "State");
	json_t *h = json_object_get(state, "Health");
	const char *s;

	if (h == NULL)
		h = json_object_get(state, "Healthcheck");
	s = json_string_value(json_object_get(h, "Status"));
	return s != NULL && ctr_health_word(s, health);
}

/* ---- the catch-up boundary -------------------------------------------- */

void ctrseen_init(struct ctrseen *s, int64_t slack_ns, size_t max_keys)
{
	memset(s, 0, sizeof(*s));
	s->slack_ns = slack_ns;
	s->max_keys = max_keys > 0 ? max_keys : 1;
}

void ctrseen_clear(struct ctrseen *s)
{
	free(s->v);
	s->v = NULL;
	s->n = s->cap = 0;
}

static struct ctrseen_key *ctrseen_find(struct ctrseen *s, int64_t ns,
					const char *id, const char *action)
{
	/* newest last: repeats are near the end */
	for (size_t i = s->n; i-- > 0;)
		if (s->v[i].ns == ns && strcmp(s->v[i].id, id) == 0 &&
		    strcmp(s->v[i].action, action) == 0)
			return &s->v[i];
	return NULL;
}

/* drop keys older than the window; past max_keys, raise the floor */
static void ctrseen_prune(struct ctrseen *s)
{
	int64_t floor = s->newest_ns - s->slack_ns;
	size_t o = 0;

	if (floor > s->floor_ns)
		s->floor_ns = floor;
	while (s->n - o > s->max_keys) {
		/* the oldest key goes, and nothing older may come in */
		int64_t oldest = INT64_MAX;

		for (size_t i = 0; i < s->n; i++)
			if (s->v[i].ns >= s->floor_ns && s->v[i].ns < oldest)
				oldest = s->v[i].ns;
		s->floor_ns = oldest + 1;
		o = 0;
		for (size_t i = 0; i < s->n; i++)
			if (s->v[i].ns < s->floor_ns)
				o++;
	}
	o = 0;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i].ns >= s->floor_ns)
			s->v[o++] = s->v[i];
	s->n = o;
}

static void ctrseen_push(struct ctrseen *s, int64_t ns, const char *id,
			 const char *action, bool journaled)
{
	struct ctrseen_key *k;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	k = &s->v[s->n++];
	k->ns = ns;
	snprintf(k->id, sizeof(k->id), "%s", id);
	snprintf(k->action, sizeof(k->action), "%s", action);
	k->journaled = journaled;
	if (ns > s->newest_ns)
		s->newest_ns = ns;
}

bool ctrseen_add(struct ctrseen *s, int64_t ns, const char *id,
		 const char *action)
{
	if (ns < s->floor_ns || ctrseen_find(s, ns, id, action) != NULL)
		return false;
	ctrseen_push(s, ns, id, action, false);
	if (s->n > s->max_keys || s->newest_ns - s->slack_ns > s->floor_ns)
		ctrseen_prune(s);
	return true;
}

void ctrseen_journaled(struct ctrseen *s, int64_t ns, const char *id,
		       const char *action)
{
	struct ctrseen_key *k = ctrseen_find(s, ns, id, action);

	if (k != NULL)
		k->journaled = true;
}

int64_t ctrseen_since_s(const struct ctrseen *s, int64_t fallback_s)
{
	int64_t from;

	if (s->newest_ns <= 0)
		return fallback_s;
	from = s->newest_ns - s->slack_ns;
	if (from < s->floor_ns)
		from = s->floor_ns;
	return from > 0 ? from / 1000000000 : 0;
}

json_t *ctrseen_dump(const struct ctrseen *s)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < s->n; i++) {
		if (!s->v[i].journaled)
			continue;
		json_array_append_new(arr, json_pack("[Iss]", (json_int_t)s->v[i].ns,
						     s->v[i].id, s->v[i].action));
	}
	return arr;
}

size_t ctrseen_load(struct ctrseen *s, json_t *arr)
{
	size_t i, added = 0;
	json_t *e;

	json_array_foreach(arr, i, e) {
		json_int_t ns = json_integer_value(json_array_get(e, 0));
		const char *id = json_string_value(json_array_get(e, 1));
		const char *action = json_string_value(json_array_get(e, 2));

		if (ns <= 0 || id == NULL || action == NULL ||
		    !ctr_id_valid(id) || strlen(action) > CTR_ACTION_MAX ||
		    ctrseen_find(s, ns, id, action) != NULL)
			continue;
		ctrseen_push(s, ns, id, action, true);
		added++;
	}
	ctrseen_prune(s);
	return added;
}

/* ---- restart loops ---------------------------------------------------- */

struct ctrloop_deaths {
	size_t n;
	int64_t ns[]; /* oldest first, at most l->deaths */
};

struct ctrloop {
	unsigned deaths;
	int64_t window_ns;
	struct hmap *names; /* name -> struct ctrloop_deaths */
};

struct ctrloop *ctrloop_new(unsigned deaths, int64_t window_ns)
{
	struct ctrloop *l = xcalloc(1, sizeof(*l));

	l->deaths = deaths > 0 ? deaths : 1;
	l->window_ns = window_ns;
	l->names = hmap_new();
	return l;
}

void ctrloop_free(struct ctrloop **lp)
{
	struct ctrloop *l = *lp;

	if (l == NULL)
		return;
	*lp = NULL;
	hmap_free(&l->names, free);
	free(l);
}

bool ctrloop_death(struct ctrloop *l, const char *name, int64_t ns,
		   unsigned *count_r)
{
	struct ctrloop_deaths *d = hmap_get(l->names, name);
	size_t o = 0;

	if (d == NULL) {
		d = xcalloc(1, sizeof(*d) + l->deaths * sizeof(int64_t));
		hmap_put(l->names, name, d);
	}
	/* forget deaths that left the window (and any count above N) */
	for (size_t i = 0; i < d->n; i++)
		if (d->ns[i] > ns - l->window_ns)
			d->ns[o++] = d->ns[i];
	d->n = o;
	if (d->n == l->deaths) {
		memmove(d->ns, d->ns + 1, (d->n - 1) * sizeof(int64_t));
		d->n--;
	}
	d->ns[d->n++] = ns;
	*count_r = (unsigned)d->n;
	if (d->n < l->deaths)
		return false;
	free(hmap_del(l->names, name));
	return true;
}

struct ctrloop_dump_ctx {
	json_t *obj;
};

static bool ctrloop_dump_one(const char *key, void *value, void *arg)
{
	struct ctrloop_dump_ctx *c = arg;
	struct ctrloop_deaths *d = value;
	json_t *arr = json_array();

	for (size_t i = 0; i < d->n; i++)
		json_array_append_new(arr, json_integer(d->ns[i]));
	json_object_set_new(c->obj, key, arr);
	return true;
}

json_t *ctrloop_dump(const struct ctrloop *l)
{
	struct ctrloop_dump_ctx c = { .obj = json_object() };

	hmap_each(l->names, ctrloop_dump_one, &c);
	return c.obj;
}

void ctrloop_load(struct ctrloop *l, json_t *obj)
{
	const char *name;
	json_t *arr;

	json_object_foreach(obj, name, arr) {
		struct ctrloop_deaths *d;
		size_t i;
		json_t *v;

		if (!ctrevent_name_valid(name) || !json_is_array(arr))
			continue;
		d = xcalloc(1, sizeof(*d) + l->deaths * sizeof(int64_t));
		json_array_foreach(arr, i, v) {
			if (d->n < l->deaths && json_integer_value(v) > 0)
				d->ns[d->n++] = json_integer_value(v);
		}
		free(hmap_put(l->names, name, d));
	}
}

/* ---- kernel OOM lines ------------------------------------------------- */

static bool ctr_is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool ctrevent_kmsg_oom(const char *line, size_t len, char *id)
{
	static const char *const keys[] = { "task_memcg=", "oom_memcg=", NULL };
	const char *end = line + len;
	const char *p = NULL;

	for (const char *q = line; q + 9 <= end; q++)
		if (memcmp(q, "oom-kill:", 9) == 0) {
			p = q;
			break;
		}
	if (p == NULL)
		return false;
	for (size_t k = 0; keys[k] != NULL; k++) {
		size_t kl = strlen(keys[k]);

		for (const char *q = p; q + kl <= end; q++) {
			if (memcmp(q, keys[k], kl) != 0)
				continue;
			/* the value runs to the next ',' or the end */
			const char *v = q + kl, *ve = v;

			while (ve < end && *ve != ',' && *ve != '\n')
				ve++;
			for (const char *h = v; h + CTR_ID_MAX <= ve; h++) {
				size_t n = 0;

				if (h > v && ctr_is_hex(h[-1]))
					continue;
				while (n < CTR_ID_MAX && ctr_is_hex(h[n]))
					n++;
				if (n == CTR_ID_MAX &&
				    (h + n == ve || !ctr_is_hex(h[n]))) {
					memcpy(id, h, CTR_ID_MAX);
					id[CTR_ID_MAX] = '\0';
					return true;
				}
			}
			break;
		}
	}
	return false;
}
