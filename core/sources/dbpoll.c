/* Panel DB snapshots, their diff into events, enrichment, persistence. */
#include "dbpoll.h"
#include "hmap.h"
#include "util.h"

#include <ctype.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

const char *const dbpoll_slice_props[DBPOLL_N_SLICE] = {
	"CPUQuota", "MemoryMax", "TasksMax"
};
const char *const dbpoll_slice_names[DBPOLL_N_SLICE] = {
	"cpu_quota", "memory_max", "tasks_max"
};

const char *const dbpoll_limit_names[DBPOLL_N_LIMITS] = {
	"domains_limit", "websites_limit", "email_limit", "ftp_limit",
	"disk_limit", "inodes_limit", "db_limit", "cpu", "ram", "bandwidth"
};

/* ---- small helpers ---- */

static bool dbpoll_streq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static char *dbpoll_strdup0(const char *s)
{
	return s != NULL ? xstrdup(s) : NULL;
}

/* An integer cell (integer, or a decimal string); -1 for null/other. */
static int64_t dbpoll_cell_int(json_t *v)
{
	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		char *end;
		long long n = strtoll(s, &end, 10);

		if (end != s && *end == '\0')
			return n;
	}
	if (json_is_true(v))
		return 1;
	if (json_is_false(v))
		return 0;
	return -1;
}

/* A string cell (numbers formatted into buf, which holds at least
 * INT64_STR_SIZE); NULL for null and empty strings. */
static const char *dbpoll_cell_str(json_t *v, char *buf, size_t size)
{
	(void)size;
	if (json_is_string(v))
		return json_string_length(v) > 0 ? json_string_value(v) : NULL;
	if (json_is_integer(v)) {
		int64_format(json_integer_value(v), buf);
		return buf;
	}
	return NULL;
}

/* What tells that a secret column changed (16 hex digits of a SHA-256
 * of a label, the user id and the value) into buf (17 bytes); NULL for
 * a null or empty value.  Stays in the state file: never in an event. */
static const char *dbpoll_secret_fp(const char *label, int64_t id,
				    const char *value, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[SHA256_DIGEST_LENGTH];
	char idbuf[24], stack[512], *in = stack;
	size_t ll, il, vl, n;

	if (value == NULL || value[0] == '\0')
		return NULL;
	/* "label:id:value", hashed with SHA256() one-shot (no EVP fetch per
	 * user, 10,000 a poll), built without printf */
	int64_format(id, idbuf);
	ll = strlen(label);
	il = strlen(idbuf);
	vl = strlen(value);
	n = ll + 1 + il + 1 + vl;
	if (n >= sizeof(stack))
		in = xmalloc(n + 1);
	memcpy(in, label, ll);
	in[ll] = ':';
	memcpy(in + ll + 1, idbuf, il);
	in[ll + 1 + il] = ':';
	memcpy(in + ll + 2 + il, value, vl);
	SHA256((const unsigned char *)in, n, md);
	if (in != stack)
		free(in);
	for (unsigned i = 0; i < 8; i++) {
		buf[2 * i] = hex[md[i] >> 4];
		buf[2 * i + 1] = hex[md[i] & 15];
	}
	buf[16] = '\0';
	return buf;
}

static void dbpoll_set_str(json_t *obj, const char *key, const char *s)
{
	json_t *v;

	if (s == NULL)
		return;
	v = json_string(s);
	if (v != NULL)
		json_object_set_new(obj, key, v);
}

static void dbpoll_set_str_or_null(json_t *obj, const char *key,
				   const char *s)
{
	json_t *v = s != NULL ? json_string(s) : NULL;

	json_object_set_new(obj, key, v != NULL ? v : json_null());
}

/* ---- usernames ---- */

void dbpoll_parse_username(const char *username, char **name_r,
			   char **suspended_at_r)
{
	static const char prefix[] = "SUSPENDED_";
	size_t pl = sizeof(prefix) - 1;

	*suspended_at_r = NULL;
	if (strncmp(username, prefix, pl) == 0) {
		const char *ts = username + pl;
		size_t i;

		for (i = 0; i < 14 && isdigit((unsigned char)ts[i]); i++)
			;
		if (i == 14 && ts[14] == '_' && ts[15] != '\0') {
			*name_r = xstrdup(ts + 15);
			*suspended_at_r = xstrndup(ts, 14);
			return;
		}
	}
	*name_r = xstrdup(username);
}

/* "20260102030405" -> "2026-01-02T03:04:05Z" */
static void dbpoll_ts_iso(const char *ts, char *buf, size_t size)
{
	snprintf(buf, size, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2sZ", ts, ts + 4,
		 ts + 6, ts + 8, ts + 10, ts + 12);
}

/* ---- snapshots ---- */

/* A snapshot's structs and strings live in its arena: built once, freed
 * at once (a poll of 50,000 domains makes no small allocations but the
 * hash map entries). */
struct dbpoll_chunk {
	struct dbpoll_chunk *next;
	size_t used, size;
	max_align_t data[];
};

static void *dbpoll_alloc(struct dbpoll_panel *p, size_t n)
{
	struct dbpoll_chunk *c = p->arena;
	void *r;

	n = (n + 15) & ~(size_t)15;
	if (c == NULL || c->size - c->used < n) {
		size_t size = n > 65536 ? n : 65536;

		c = xmalloc(sizeof(*c) + size);
		c->next = p->arena;
		c->used = 0;
		c->size = size;
		p->arena = c;
	}
	r = (char *)c->data + c->used;
	c->used += n;
	memset(r, 0, n);
	return r;
}

static char *dbpoll_strndup_a(struct dbpoll_panel *p, const char *s,
			      size_t len)
{
	char *d = dbpoll_alloc(p, len + 1);

	memcpy(d, s, len);
	d[len] = '\0';
	return d;
}

static char *dbpoll_strdup_a(struct dbpoll_panel *p, const char *s)
{
	return s != NULL ? dbpoll_strndup_a(p, s, strlen(s)) : NULL;
}

static uint64_t dbpoll_next_gen(void)
{
	static atomic_uint_fast64_t gen;

	return atomic_fetch_add(&gen, 1) + 1;
}

static struct dbpoll_panel *dbpoll_panel_new(void)
{
	struct dbpoll_panel *p = xcalloc(1, sizeof(*p));

	p->users = hmap_new();
	p->plans = hmap_new();
	p->owners = hmap_new();
	p->by_name = hmap_new();
	p->limits = hmap_new();
	p->gen = dbpoll_next_gen();
	return p;
}

void dbpoll_panel_free(struct dbpoll_panel **pp)
{
	struct dbpoll_panel *p = *pp;
	struct dbpoll_chunk *c, *next;

	if (p == NULL)
		return;
	hmap_free(&p->by_name, NULL);
	hmap_free(&p->users, NULL);
	hmap_free(&p->plans, NULL);
	hmap_free(&p->owners, NULL);
	hmap_free(&p->limits, NULL);
	if (p->sites != NULL)
		hmap_free(&p->sites, NULL);
	if (p->slices != NULL)
		hmap_free(&p->slices, NULL);
	for (c = p->arena; c != NULL; c = next) {
		next = c->next;
		free(c);
	}
	free(p);
	*pp = NULL;
}

/* What a users row says of its secrets (fingerprints, never values). */
struct dbpoll_user_secrets {
	const char *pw_fp, *otp_fp;
	int twofa;
	bool known;
	int64_t passkeys, passkey_max;
};

/* Add a user (strings copied); bad names and taken ids are counted. */
static void dbpoll_panel_add_user(struct dbpoll_panel *p, int64_t id,
				  const char *username, int64_t plan_id,
				  const char *email, const char *context,
				  const struct dbpoll_user_secrets *sec)
{
	static const char prefix[] = "SUSPENDED_";
	struct dbpoll_user *u;
	const char *name = username, *why;
	char key[32];
	size_t i;

	if (strncmp(username, prefix, sizeof(prefix) - 1) == 0) {
		const char *ts = username + sizeof(prefix) - 1;

		for (i = 0; i < 14 && isdigit((unsigned char)ts[i]); i++)
			;
		if (i == 14 && ts[14] == '_' && ts[15] != '\0')
			name = ts + 15;
	}
	int64_format(id, key);
	if (!name_valid_user(name, &why) || hmap_get(p->users, key) != NULL) {
		p->bad_rows++;
		return;
	}
	u = dbpoll_alloc(p, sizeof(*u));
	u->id = id;
	u->username = dbpoll_strdup_a(p, username);
	u->name = u->username + (name - username);
	if (name != username)
		u->suspended_at = dbpoll_strndup_a(p, u->username +
						   sizeof(prefix) - 1, 14);
	u->plan_id = plan_id;
	u->email = dbpoll_strdup_a(p, email);
	u->context = dbpoll_strdup_a(p, context);
	u->pw_fp = dbpoll_strdup_a(p, sec->pw_fp);
	u->otp_fp = dbpoll_strdup_a(p, sec->otp_fp);
	u->twofa = sec->twofa;
	u->secrets = sec->known;
	u->passkeys = sec->passkeys;
	u->passkey_max = sec->passkey_max;
	hmap_put(p->users, key, u);
	hmap_put(p->by_name, u->name, u);
}

static const char *dbpoll_plan_name(const struct dbpoll_panel *p,
				    int64_t plan_id)
{
	char key[32];

	if (plan_id < 0)
		return NULL;
	int64_format(plan_id, key);
	return hmap_get(p->plans, key);
}

static const struct dbpoll_user *dbpoll_user_get(const struct dbpoll_panel *p,
						 int64_t id)
{
	char key[32];

	if (id < 0)
		return NULL;
	int64_format(id, key);
	return hmap_get(p->users, key);
}

/* Lower-case a domain into buf (256 bytes); false when it is not valid. */
static bool dbpoll_domain_key(const char *s, char *buf)
{
	const char *why;
	size_t i;

	if (s == NULL)
		return false;
	for (i = 0; s[i] != '\0' && i < 255; i++)
		buf[i] = (char)tolower((unsigned char)s[i]);
	buf[i] = '\0';
	return s[i] == '\0' && name_valid_domain(buf, &why);
}

static bool dbpoll_owner_eq(const struct dbpoll_owner *a,
			    const struct dbpoll_owner *b)
{
	return dbpoll_streq(a->user, b->user) && a->user_id == b->user_id &&
	       dbpoll_streq(a->plan, b->plan) &&
	       dbpoll_streq(a->context, b->context) && a->gone_ms == b->gone_ms &&
	       dbpoll_streq(a->php, b->php) && a->domain_id == b->domain_id;
}

struct dbpoll_carry {
	struct dbpoll_panel *p;
	int64_t now_ms;
};

/* For each owner of the previous snapshot: compare it with the new one,
 * or carry it over as gone (or drop it when gone for too long). */
static bool dbpoll_carry_gone(const char *domain, void *value, void *ctx)
{
	const struct dbpoll_owner *o = value, *cur;
	struct dbpoll_carry *c = ctx;
	struct dbpoll_panel *p = c->p;
	struct dbpoll_owner *n;

	cur = hmap_get(p->owners, domain);
	if (cur != NULL) {
		if (!p->owners_changed && !dbpoll_owner_eq(o, cur))
			p->owners_changed = true;
		return true;
	}
	if (o->gone_ms != 0 && c->now_ms - o->gone_ms > DBPOLL_GONE_KEEP_MS) {
		p->owners_changed = true;
		return true;
	}
	n = dbpoll_alloc(p, sizeof(*n));
	n->user = dbpoll_strdup_a(p, o->user);
	n->user_id = o->user_id;
	n->plan = dbpoll_strdup_a(p, o->plan);
	n->context = dbpoll_strdup_a(p, o->context);
	n->php = dbpoll_strdup_a(p, o->php);
	n->domain_id = o->domain_id;
	n->gone_ms = o->gone_ms != 0 ? o->gone_ms : c->now_ms;
	if (o->gone_ms == 0)
		p->owners_changed = true;
	hmap_put(p->owners, domain, n);
	return true;
}

static void dbpoll_panel_add_owner(struct dbpoll_panel *p, const char *url,
				   int64_t user_id, const char *php,
				   int64_t domain_id,
				   const struct dbpoll_panel *prev)
{
	const struct dbpoll_user *u = dbpoll_user_get(p, user_id);
	const struct dbpoll_owner *po;
	struct dbpoll_owner *o;
	char d[256];

	if (!dbpoll_domain_key(url, d) || hmap_get(p->owners, d) != NULL) {
		p->bad_rows++;
		return;
	}
	o = dbpoll_alloc(p, sizeof(*o));
	o->user_id = user_id;
	o->php = dbpoll_strdup_a(p, php);
	o->domain_id = domain_id;
	if (u != NULL) {
		/* the user's strings, in the same arena */
		o->user = u->name;
		o->plan = (char *)dbpoll_plan_name(p, u->plan_id);
		o->context = u->context != NULL ? u->context : u->name;
	} else if (prev != NULL && (po = hmap_get(prev->owners, d)) != NULL &&
		   po->user_id == user_id) {
		/* The user row went first (user-delete): keep naming it. */
		o->user = dbpoll_strdup_a(p, po->user);
		o->plan = dbpoll_strdup_a(p, po->plan);
		o->context = dbpoll_strdup_a(p, po->context);
	}
	hmap_put(p->owners, d, o);
}

struct dbpoll_panel *dbpoll_panel_build(json_t *users, json_t *plans,
					json_t *domains,
					const struct dbpoll_panel *prev,
					int64_t now_ms)
{
	struct dbpoll_panel *p = dbpoll_panel_new();
	char b1[32], b2[32], key[32];
	json_t *row;
	size_t i;

	json_array_foreach(plans, i, row) {
		int64_t id = dbpoll_cell_int(json_array_get(row, 0));
		const char *name = dbpoll_cell_str(json_array_get(row, 1), b1,
						   sizeof(b1));

		if (id < 0 || name == NULL) {
			p->bad_rows++;
			continue;
		}
		int64_format(id, key);
		hmap_put(p->plans, key, dbpoll_strdup_a(p, name));
		if (json_array_size(row) >= 2 + DBPOLL_N_LIMITS) {
			struct dbpoll_limits *l = dbpoll_alloc(p, sizeof(*l));

			for (unsigned k = 0; k < DBPOLL_N_LIMITS; k++)
				l->v[k] = dbpoll_strdup_a(p, dbpoll_cell_str(
					json_array_get(row, 2 + k), b1,
					sizeof(b1)));
			l->known = true;
			hmap_put(p->limits, key, l);
		}
	}
	json_array_foreach(users, i, row) {
		int64_t id = dbpoll_cell_int(json_array_get(row, 0));
		const char *name = dbpoll_cell_str(json_array_get(row, 1), b1,
						   sizeof(b1));
		json_t *plan = json_array_get(row, 2);

		if (id < 0 || name == NULL) {
			p->bad_rows++;
			continue;
		}
		struct dbpoll_user_secrets sec;
		json_t *twofa = json_array_get(row, 6);
		char fp1[17], fp2[17];

		sec.pw_fp = dbpoll_secret_fp("password", id, json_string_value(
			json_array_get(row, 5)), fp1);
		sec.otp_fp = dbpoll_secret_fp("otp", id, json_string_value(
			json_array_get(row, 7)), fp2);
		sec.twofa = twofa == NULL || json_is_null(twofa) ? -1 :
			    dbpoll_cell_int(twofa) > 0;
		sec.known = json_array_size(row) >= 8;
		sec.passkeys = sec.passkey_max = -1;
		dbpoll_panel_add_user(p, id, name,
			json_is_null(plan) ? -1 : dbpoll_cell_int(plan),
			json_string_value(json_array_get(row, 3)),
			dbpoll_cell_str(json_array_get(row, 4), b2, sizeof(b2)),
			&sec);
	}
	json_array_foreach(domains, i, row) {
		json_t *uid = json_array_get(row, 1), *did = json_array_get(row, 3);

		dbpoll_panel_add_owner(p, json_string_value(json_array_get(row, 0)),
				       json_is_null(uid) ? -1 : dbpoll_cell_int(uid),
				       dbpoll_cell_str(json_array_get(row, 2), b1,
						       sizeof(b1)),
				       did == NULL || json_is_null(did) ? -1 :
				       dbpoll_cell_int(did), prev);
	}
	if (prev != NULL) {
		struct dbpoll_carry c = { p, now_ms };

		hmap_each(prev->owners, dbpoll_carry_gone, &c);
		if (hmap_count(p->owners) != hmap_count(prev->owners))
			p->owners_changed = true;
		p->base_gen = prev->gen;
	}
	return p;
}

static bool dbpoll_passkeys_zero(const char *key, void *value, void *ctx)
{
	struct dbpoll_user *u = value;

	(void)key;
	(void)ctx;
	u->passkeys = 0;
	u->passkey_max = -1;
	return true;
}

void dbpoll_panel_set_passkeys(struct dbpoll_panel *p, json_t *rows)
{
	json_t *row;
	size_t i;

	if (rows == NULL)
		return;
	hmap_each(p->users, dbpoll_passkeys_zero, NULL);
	json_array_foreach(rows, i, row) {
		struct dbpoll_user *u = (struct dbpoll_user *)dbpoll_user_get(
			p, dbpoll_cell_int(json_array_get(row, 0)));

		if (u == NULL)
			continue;
		u->passkeys = dbpoll_cell_int(json_array_get(row, 1));
		u->passkey_max = dbpoll_cell_int(json_array_get(row, 2));
	}
}

void dbpoll_panel_slices_begin(struct dbpoll_panel *p)
{
	if (p->slices == NULL)
		p->slices = hmap_new();
}

void dbpoll_panel_add_slice(struct dbpoll_panel *p, int64_t uid,
			    const char *user, char *const v[DBPOLL_N_SLICE])
{
	struct dbpoll_slice *sl;
	char key[32];

	dbpoll_panel_slices_begin(p);
	int64_format(uid, key);
	if (uid < 0 || hmap_get(p->slices, key) != NULL)
		return;
	sl = dbpoll_alloc(p, sizeof(*sl));
	sl->uid = uid;
	sl->user = dbpoll_strdup_a(p, user);
	for (unsigned k = 0; k < DBPOLL_N_SLICE; k++)
		sl->v[k] = dbpoll_strdup_a(p, v[k]);
	hmap_put(p->slices, key, sl);
}

static bool dbpoll_slice_value_ok(const char *s, size_t len)
{
	if (len > 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return false;
	return true;
}

static void dbpoll_slice_line(const char *l, size_t len, bool *in_slice,
			      char *v[DBPOLL_N_SLICE])
{
	const char *eq, *val, *end = l + len;

	while (l < end && (*l == ' ' || *l == '\t'))
		l++;
	while (end > l && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		end--;
	if (l == end || *l == '#' || *l == ';')
		return;
	if (*l == '[') {
		*in_slice = (size_t)(end - l) == 7 && memcmp(l, "[Slice]", 7) == 0;
		return;
	}
	eq = memchr(l, '=', (size_t)(end - l));
	if (!*in_slice || eq == NULL)
		return;
	val = eq + 1;
	while (eq > l && (eq[-1] == ' ' || eq[-1] == '\t'))
		eq--;
	while (val < end && (*val == ' ' || *val == '\t'))
		val++;
	for (unsigned k = 0; k < DBPOLL_N_SLICE; k++) {
		size_t kl = strlen(dbpoll_slice_props[k]);

		if ((size_t)(eq - l) != kl || memcmp(l, dbpoll_slice_props[k], kl) != 0)
			continue;
		if (!dbpoll_slice_value_ok(val, (size_t)(end - val)))
			return;
		free(v[k]);
		v[k] = val < end ? xstrndup(val, (size_t)(end - val)) : NULL;
		return;
	}
}

void dbpoll_slice_parse(const char *text, size_t len,
			char *v[DBPOLL_N_SLICE])
{
	const char *l = text, *end = text + len;
	bool in_slice = false;

	while (l < end) {
		const char *nl = memchr(l, '\n', (size_t)(end - l));
		size_t ll = (size_t)((nl != NULL ? nl : end) - l);

		if (ll <= 1024)
			dbpoll_slice_line(l, ll, &in_slice, v);
		l += ll + 1;
	}
}

static bool dbpoll_index_domain(const char *key, void *value, void *ctx)
{
	const struct dbpoll_owner *o = value;
	char id[32];

	if (o->gone_ms == 0 && o->domain_id >= 0) {
		int64_format(o->domain_id, id);
		hmap_put(ctx, id, (void *)key);
	}
	return true;
}

void dbpoll_panel_add_sites(struct dbpoll_panel *p, json_t *sites,
			    const struct dbpoll_panel *prev)
{
	struct hmap *by_id = hmap_new();
	char b1[32], b2[32], key[32], did[32];
	json_t *row;
	size_t i;

	if (p->sites == NULL)
		p->sites = hmap_new();
	hmap_each(p->owners, dbpoll_index_domain, by_id);
	json_array_foreach(sites, i, row) {
		int64_t id = dbpoll_cell_int(json_array_get(row, 0));
		json_t *dcell = json_array_get(row, 2);
		const struct dbpoll_site *ps = NULL;
		const struct dbpoll_owner *o;
		const char *domain;
		struct dbpoll_site *st;

		if (id < 0) {
			p->bad_rows++;
			continue;
		}
		int64_format(id, key);
		if (hmap_get(p->sites, key) != NULL) {
			p->bad_rows++;
			continue;
		}
		st = dbpoll_alloc(p, sizeof(*st));
		st->id = id;
		st->name = dbpoll_strdup_a(p, dbpoll_cell_str(
			json_array_get(row, 1), b1, sizeof(b1)));
		st->domain_id = dcell == NULL || json_is_null(dcell) ? -1 :
				dbpoll_cell_int(dcell);
		st->type = dbpoll_strdup_a(p, dbpoll_cell_str(
			json_array_get(row, 3), b2, sizeof(b2)));
		int64_format(st->domain_id, did);
		domain = st->domain_id >= 0 ? hmap_get(by_id, did) : NULL;
		if (prev != NULL && prev->sites != NULL)
			ps = hmap_get(prev->sites, key);
		if (domain != NULL) {
			o = hmap_get(p->owners, domain);
			st->domain = dbpoll_strdup_a(p, domain);
			st->user = dbpoll_strdup_a(p, o != NULL ? o->user : NULL);
		} else if (ps != NULL && ps->domain_id == st->domain_id) {
			/* the domain row went first: keep naming it */
			st->domain = dbpoll_strdup_a(p, ps->domain);
			st->user = dbpoll_strdup_a(p, ps->user);
		}
		hmap_put(p->sites, key, st);
	}
	hmap_free(&by_id, NULL);
}

int dbpoll_fetch_panel(const struct paneldb_driver *drv,
		       struct paneldb_conn *conn,
		       const struct dbpoll_panel *prev, int64_t now_ms,
		       struct dbpoll_panel **panel_r, unsigned *queries_r,
		       char **error_r)
{
	static const char *const sql[5] = { DBPOLL_SQL_USERS, DBPOLL_SQL_PLANS,
					    DBPOLL_SQL_DOMAINS, DBPOLL_SQL_SITES,
					    DBPOLL_SQL_PASSKEYS };
	/* A panel DB that lacks a column read later (an older schema): the
	 * first columns only, and no sites table at all (NULL). */
	static const char *const base[5] = {
		"SELECT id, username, plan_id, email, server FROM users",
		"SELECT id, name FROM plans",
		"SELECT domain_url, user_id FROM domains", NULL, NULL };
	json_t *rows[5] = { NULL, NULL, NULL, NULL, NULL };
	int ret = 0;

	if (drv->begin != NULL)
		ret = drv->begin(conn, error_r);
	for (unsigned i = 0; i < 5 && ret == 0; i++) {
		(*queries_r)++;
		ret = drv->query(conn, sql[i], NULL, &rows[i], NULL, error_r);
		if (ret < 0 && ret != -EPIPE) {
			free(*error_r);
			*error_r = NULL;
			ret = 0;
			if (base[i] != NULL) {
				(*queries_r)++;
				ret = drv->query(conn, base[i], NULL, &rows[i],
						 NULL, error_r);
			}
		}
	}
	if (drv->end != NULL)
		drv->end(conn);
	if (ret == 0) {
		*panel_r = dbpoll_panel_build(rows[0], rows[1], rows[2], prev,
					      now_ms);
		if (rows[3] != NULL)
			dbpoll_panel_add_sites(*panel_r, rows[3], prev);
		dbpoll_panel_set_passkeys(*panel_r, rows[4]);
	}
	for (unsigned i = 0; i < 5; i++)
		json_decref(rows[i]);
	return ret;
}

/* ---- admins ---- */

static void dbpoll_admin_free(void *v)
{
	struct dbpoll_admin *a = v;

	free(a->username);
	free(a->role);
	free(a);
}

void dbpoll_admins_free(struct dbpoll_admins **ap)
{
	struct dbpoll_admins *a = *ap;

	if (a == NULL)
		return;
	hmap_free(&a->admins, dbpoll_admin_free);
	free(a);
	*ap = NULL;
}

static int dbpoll_col(json_t *cols, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(cols, i, c) {
		if (json_is_string(c) &&
		    strcasecmp(json_string_value(c), name) == 0)
			return (int)i;
	}
	return -1;
}

static int dbpoll_bool_cell(json_t *v)
{
	if (json_is_null(v) || v == NULL)
		return -1;
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		if (strcasecmp(s, "true") == 0)
			return 1;
		if (strcasecmp(s, "false") == 0)
			return 0;
	}
	return dbpoll_cell_int(v) != 0;
}

struct dbpoll_admins *dbpoll_admins_build(json_t *rows, json_t *cols)
{
	struct dbpoll_admins *a = xcalloc(1, sizeof(*a));
	int c_id = dbpoll_col(cols, "id"), c_user = dbpoll_col(cols, "username");
	int c_role = dbpoll_col(cols, "role");
	int c_act = dbpoll_col(cols, "is_active");
	int c_totp = dbpoll_col(cols, "totp_enabled");
	int c_secret = -1;
	char key[32], buf[32];
	void *old;
	json_t *row;
	size_t i;

	if (c_totp < 0)
		c_totp = dbpoll_col(cols, "twofa_enabled");
	if (c_totp < 0) {
		c_secret = dbpoll_col(cols, "totp_secret");
		if (c_secret < 0)
			c_secret = dbpoll_col(cols, "otp_secret");
	}
	a->admins = hmap_new();
	if (c_user < 0)
		return a;
	json_array_foreach(rows, i, row) {
		const char *name = dbpoll_cell_str(json_array_get(row, c_user),
						   buf, sizeof(buf));
		struct dbpoll_admin *ad;

		if (name == NULL)
			continue;
		ad = xcalloc(1, sizeof(*ad));
		ad->id = c_id >= 0 ? dbpoll_cell_int(json_array_get(row, c_id)) :
			 -1;
		ad->username = xstrdup(name);
		if (c_role >= 0)
			ad->role = dbpoll_strdup0(json_string_value(
				json_array_get(row, c_role)));
		ad->is_active = c_act >= 0 ?
				dbpoll_bool_cell(json_array_get(row, c_act)) : -1;
		if (c_totp >= 0) {
			ad->totp_enabled =
				dbpoll_bool_cell(json_array_get(row, c_totp));
		} else if (c_secret >= 0) {
			json_t *s = json_array_get(row, c_secret);

			ad->totp_enabled = json_is_string(s) &&
					   json_string_length(s) > 0;
		} else {
			ad->totp_enabled = -1;
		}
		if (ad->id >= 0)
			int64_format(ad->id, key);
		old = hmap_put(a->admins, ad->id >= 0 ? key : ad->username, ad);
		if (old != NULL)
			dbpoll_admin_free(old); /* duplicate key: last wins */
	}
	return a;
}

int dbpoll_fetch_admins(const struct paneldb_driver *drv,
			struct paneldb_conn *conn,
			struct dbpoll_admins **admins_r, char **error_r)
{
	static const char *const want[] = { "id", "username", "role",
		"is_active", "totp_enabled", "twofa_enabled", "totp_secret",
		"otp_secret" };
	json_t *info = NULL, *rows = NULL, *cols = NULL, *row;
	char *sql;
	size_t i, len = 0;
	int ret;

	ret = drv->query(conn, "PRAGMA table_info(\"user\")", NULL, &info,
			 NULL, error_r);
	if (ret < 0)
		return ret;
	sql = xstrdup("SELECT ");
	for (unsigned w = 0; w < sizeof(want) / sizeof(want[0]); w++) {
		json_array_foreach(info, i, row) {
			const char *n = json_string_value(json_array_get(row, 1));

			if (n != NULL && strcasecmp(n, want[w]) == 0) {
				char *s = xasprintf("%s%s\"%s\"", sql,
						    len > 0 ? ", " : "", want[w]);

				free(sql);
				sql = s;
				len++;
				break;
			}
		}
	}
	json_decref(info);
	if (len == 0 || strstr(sql, "\"username\"") == NULL) {
		free(sql);
		*error_r = xstrdup("table \"user\" not found or has no "
				   "username column");
		return -EINVAL;
	}
	{
		char *s = xasprintf("%s FROM \"user\"", sql);

		free(sql);
		sql = s;
	}
	ret = drv->query(conn, sql, NULL, &rows, &cols, error_r);
	free(sql);
	if (ret < 0)
		return ret;
	*admins_r = dbpoll_admins_build(rows, cols);
	json_decref(rows);
	json_decref(cols);
	return 0;
}

/* ---- events ---- */

static json_t *dbpoll_event_add(struct dbpoll_events *out, const char *type,
				const char *subject_prefix, const char *name,
				int64_t order, const char *key)
{
	struct dbpoll_event *ev;

	if (out == NULL)
		return NULL;
	if (out->n == out->cap) {
		out->cap = out->cap ? out->cap * 2 : 16;
		out->v = xrealloc(out->v, out->cap * sizeof(*out->v));
	}
	ev = &out->v[out->n++];
	ev->type = xstrdup(type);
	ev->subject = xasprintf("%s%s", subject_prefix, name);
	ev->payload = json_object();
	ev->order = order;
	ev->key = xstrdup(key);
	return ev->payload;
}

void dbpoll_events_clear(struct dbpoll_events *evs)
{
	for (size_t i = 0; i < evs->n; i++) {
		free(evs->v[i].type);
		free(evs->v[i].subject);
		free(evs->v[i].key);
		json_decref(evs->v[i].payload);
	}
	free(evs->v);
	evs->v = NULL;
	evs->n = evs->cap = 0;
}

static int dbpoll_event_cmp(const void *a, const void *b)
{
	const struct dbpoll_event *x = a, *y = b;

	if (x->order != y->order)
		return x->order < y->order ? -1 : 1;
	/* same user: keep the order they were added in (seq in key order) */
	return x < y ? -1 : x > y;
}

/* Sort events [from, n) by id, keeping the per-id order. */
static void dbpoll_events_sort(struct dbpoll_events *out, size_t from)
{
	size_t n = out->n - from;
	struct dbpoll_event *tmp;
	size_t *idx;

	if (n < 2)
		return;
	/* Stable: sort indexes, then permute. */
	idx = xmalloc(n * sizeof(*idx));
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	for (size_t i = 1; i < n; i++) { /* insertion sort on mostly few */
		size_t j = i, v = idx[i];

		while (j > 0 && (dbpoll_event_cmp(&out->v[from + idx[j - 1]],
						  &out->v[from + v]) > 0)) {
			idx[j] = idx[j - 1];
			j--;
		}
		idx[j] = v;
	}
	tmp = xmalloc(n * sizeof(*tmp));
	for (size_t i = 0; i < n; i++)
		tmp[i] = out->v[from + idx[i]];
	memcpy(&out->v[from], tmp, n * sizeof(*tmp));
	free(tmp);
	free(idx);
}

static void dbpoll_user_fields(json_t *o, const struct dbpoll_panel *p,
			       const struct dbpoll_user *u)
{
	dbpoll_set_str(o, "user", u->name);
	json_object_set_new(o, "user_id", json_integer(u->id));
	dbpoll_set_str(o, "context", u->context != NULL ? u->context : u->name);
	dbpoll_set_str(o, "plan", dbpoll_plan_name(p, u->plan_id));
	if (u->plan_id >= 0)
		json_object_set_new(o, "plan_id", json_integer(u->plan_id));
}

struct dbpoll_diff {
	const struct dbpoll_panel *old, *new;
	struct dbpoll_events *out;
	bool changed;
};

static void dbpoll_diff_account(struct dbpoll_diff *d, const char *key,
				const struct dbpoll_user *o,
				const struct dbpoll_user *n);
static json_t *dbpoll_limits_diff(const struct dbpoll_limits *o,
				  const struct dbpoll_limits *n);
static const struct dbpoll_limits *dbpoll_limits_of(const struct dbpoll_panel *p,
						    int64_t plan_id);

static void dbpoll_diff_user(struct dbpoll_diff *d, const char *key,
			     const struct dbpoll_user *o,
			     const struct dbpoll_user *n)
{
	const char *op = dbpoll_plan_name(d->old, o->plan_id);
	const char *np = dbpoll_plan_name(d->new, n->plan_id);
	char iso[32];
	json_t *ev;

	if (!dbpoll_streq(o->username, n->username) ||
	    o->plan_id != n->plan_id || !dbpoll_streq(o->email, n->email) ||
	    !dbpoll_streq(o->context, n->context) || !dbpoll_streq(op, np))
		d->changed = true;
	if (strcmp(o->name, n->name) != 0) {
		ev = dbpoll_event_add(d->out, "user.renamed", "user:", n->name,
				      n->id, key);
		if (ev != NULL) {
			dbpoll_user_fields(ev, d->new, n);
			dbpoll_set_str(ev, "old_user", o->name);
		}
	}
	if (o->suspended_at == NULL && n->suspended_at != NULL) {
		ev = dbpoll_event_add(d->out, "user.suspended", "user:",
				      n->name, n->id, key);
		if (ev != NULL) {
			dbpoll_user_fields(ev, d->new, n);
			dbpoll_ts_iso(n->suspended_at, iso, sizeof(iso));
			dbpoll_set_str(ev, "suspended_at", iso);
			dbpoll_set_str(ev, "username", n->username);
		}
	} else if (o->suspended_at != NULL && n->suspended_at == NULL) {
		ev = dbpoll_event_add(d->out, "user.unsuspended", "user:",
				      n->name, n->id, key);
		if (ev != NULL) {
			dbpoll_user_fields(ev, d->new, n);
			dbpoll_ts_iso(o->suspended_at, iso, sizeof(iso));
			dbpoll_set_str(ev, "suspended_at", iso);
		}
	}
	dbpoll_diff_account(d, key, o, n);
	if (o->plan_id != n->plan_id) {
		ev = dbpoll_event_add(d->out, "user.plan_changed", "user:",
				      n->name, n->id, key);
		if (ev != NULL) {
			json_t *lim = dbpoll_limits_diff(
				dbpoll_limits_of(d->old, o->plan_id),
				dbpoll_limits_of(d->new, n->plan_id));

			if (lim != NULL)
				json_object_set_new(ev, "limits", lim);
			dbpoll_user_fields(ev, d->new, n);
			dbpoll_set_str_or_null(ev, "old_plan", op);
			json_object_set_new(ev, "old_plan_id", o->plan_id >= 0 ?
					    json_integer(o->plan_id) :
					    json_null());
			if (np == NULL)
				json_object_set_new(ev, "plan", json_null());
		}
	}
}

/* The limits that differ between two plans, {"name":{"old":..,"new":..}}
 * (null for a null column), or NULL when none does or either is
 * unknown. */
static json_t *dbpoll_limits_diff(const struct dbpoll_limits *o,
				  const struct dbpoll_limits *n)
{
	json_t *out = NULL;

	if (o == NULL || n == NULL || !o->known || !n->known)
		return NULL;
	for (unsigned k = 0; k < DBPOLL_N_LIMITS; k++) {
		json_t *pair;

		if (dbpoll_streq(o->v[k], n->v[k]))
			continue;
		if (out == NULL)
			out = json_object();
		pair = json_object();
		dbpoll_set_str_or_null(pair, "old", o->v[k]);
		dbpoll_set_str_or_null(pair, "new", n->v[k]);
		json_object_set_new(out, dbpoll_limit_names[k], pair);
	}
	return out;
}

static const struct dbpoll_limits *dbpoll_limits_of(const struct dbpoll_panel *p,
						    int64_t plan_id)
{
	char key[32];

	if (plan_id < 0)
		return NULL;
	int64_format(plan_id, key);
	return hmap_get(p->limits, key);
}

/* user.updated: the email, the password, the 2FA settings.  Only that a
 * secret changed is said, never its value nor anything made from it. */
static void dbpoll_diff_account(struct dbpoll_diff *d, const char *key,
				const struct dbpoll_user *o,
				const struct dbpoll_user *n)
{
	bool email = !dbpoll_streq(o->email, n->email);
	bool pw = false, twofa = false, otp = false, pk = false;
	json_t *ev, *changed;

	if (o->secrets && n->secrets) {
		pw = !dbpoll_streq(o->pw_fp, n->pw_fp);
		otp = !dbpoll_streq(o->otp_fp, n->otp_fp);
		/* The Go panel's 2FA setup stores a pending secret with 2FA
		 * still off, and turns it on once a code is confirmed: a
		 * secret changing while 2FA is off is not a change of 2FA. */
		twofa = o->twofa != n->twofa ||
			(otp && o->twofa == 1 && n->twofa == 1);
	}
	if (o->passkeys >= 0 && n->passkeys >= 0)
		pk = o->passkeys != n->passkeys || o->passkey_max != n->passkey_max;
	if (pw || twofa || otp || pk || o->secrets != n->secrets ||
	    o->passkeys != n->passkeys || o->passkey_max != n->passkey_max)
		d->changed = true;
	if (!email && !pw && !twofa && !pk)
		return;
	d->changed = true;
	ev = dbpoll_event_add(d->out, "user.updated", "user:", n->name, n->id,
			      key);
	if (ev == NULL)
		return;
	dbpoll_user_fields(ev, d->new, n);
	changed = json_array();
	if (email) {
		json_array_append_new(changed, json_string("email"));
		dbpoll_set_str_or_null(ev, "email", n->email);
		dbpoll_set_str_or_null(ev, "old_email", o->email);
	}
	if (pw)
		json_array_append_new(changed, json_string("password"));
	if (twofa) {
		json_array_append_new(changed, json_string("2fa"));
		if (n->twofa >= 0)
			json_object_set_new(ev, "twofa_enabled",
					    json_boolean(n->twofa));
		if (o->twofa == 1 && n->twofa == 0)
			json_object_set_new(ev, "twofa_disabled", json_true());
	}
	if (pk) {
		json_array_append_new(changed, json_string("passkeys"));
		json_object_set_new(ev, "passkeys", json_integer(n->passkeys));
		json_object_set_new(ev, "old_passkeys",
				    json_integer(o->passkeys));
	}
	json_object_set_new(ev, "changed", changed);
}

static bool dbpoll_diff_new_user(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;
	const struct dbpoll_user *n = value, *o = hmap_get(d->old->users, key);
	json_t *ev;

	if (o != NULL) {
		dbpoll_diff_user(d, key, o, n);
		return true;
	}
	d->changed = true;
	ev = dbpoll_event_add(d->out, "user.added", "user:", n->name, n->id,
			      key);
	if (ev != NULL) {
		dbpoll_user_fields(ev, d->new, n);
		dbpoll_set_str(ev, "email", n->email);
		json_object_set_new(ev, "suspended",
				    json_boolean(n->suspended_at != NULL));
	}
	return true;
}

static bool dbpoll_diff_old_user(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;
	const struct dbpoll_user *o = value;
	json_t *ev;

	if (hmap_get(d->new->users, key) != NULL)
		return true;
	d->changed = true;
	ev = dbpoll_event_add(d->out, "user.removed", "user:", o->name, o->id,
			      key);
	if (ev != NULL)
		dbpoll_user_fields(ev, d->old, o);
	return true;
}

static bool dbpoll_diff_plan(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;
	const char *o = hmap_get(d->old->plans, key);

	if (o == NULL || strcmp(o, value) != 0) {
		d->changed = true;
		return false;
	}
	return true;
}

static bool dbpoll_diff_owner(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;
	const struct dbpoll_owner *n = value, *o = hmap_get(d->old->owners, key);

	if (o == NULL || !dbpoll_owner_eq(o, n)) {
		d->changed = true;
		return false;
	}
	return true;
}

/* user.limits_changed for each user on a plan whose limits changed (a
 * user whose plan_id changed gets user.plan_changed instead). */
struct dbpoll_plan_users {
	struct dbpoll_diff *d;
	int64_t plan_id;
	json_t *limits;
};

static bool dbpoll_plan_user_ev(const char *key, void *value, void *ctx)
{
	struct dbpoll_plan_users *pu = ctx;
	const struct dbpoll_user *n = value, *o;
	json_t *ev;

	if (n->plan_id != pu->plan_id)
		return true;
	o = hmap_get(pu->d->old->users, key);
	if (o == NULL || o->plan_id != n->plan_id)
		return true;
	ev = dbpoll_event_add(pu->d->out, "user.limits_changed", "user:",
			      n->name, n->id, key);
	if (ev == NULL)
		return true;
	dbpoll_user_fields(ev, pu->d->new, n);
	json_object_set_new(ev, "origin", json_string("plan"));
	json_object_set(ev, "limits", pu->limits);
	return true;
}

static bool dbpoll_diff_limits(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;
	const struct dbpoll_limits *n = value, *o = hmap_get(d->old->limits, key);
	struct dbpoll_plan_users pu = { d, -1, NULL };

	if (o == NULL) {
		if (n->known)
			d->changed = true;
		return true;
	}
	pu.limits = dbpoll_limits_diff(o, n);
	if (pu.limits == NULL)
		return true;
	d->changed = true;
	pu.plan_id = strtoll(key, NULL, 10);
	hmap_each(d->new->users, dbpoll_plan_user_ev, &pu);
	json_decref(pu.limits);
	return true;
}

/* domain.php_changed: domains.php_version of a present row changed. */
static bool dbpoll_diff_php(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;
	const struct dbpoll_owner *n = value, *o = hmap_get(d->old->owners, key);
	json_t *ev;

	if (o == NULL || o->gone_ms != 0 || n->gone_ms != 0 ||
	    o->php == NULL || n->php == NULL || strcmp(o->php, n->php) == 0)
		return true;
	d->changed = true;
	ev = dbpoll_event_add(d->out, "domain.php_changed", "", key,
			      n->user_id, key);
	if (ev == NULL)
		return true;
	dbpoll_set_str(ev, "domain", key);
	dbpoll_set_str(ev, "php_version", n->php);
	dbpoll_set_str(ev, "old_php_version", o->php);
	dbpoll_set_str(ev, "user", n->user);
	if (n->user_id >= 0)
		json_object_set_new(ev, "user_id", json_integer(n->user_id));
	dbpoll_set_str(ev, "context", n->context);
	return true;
}

/* site.added / site.removed: a `sites` row came or went. */
static void dbpoll_site_ev(struct dbpoll_diff *d, const char *type,
			   const char *key, const struct dbpoll_site *st)
{
	const struct dbpoll_user *u = st->user != NULL ?
		hmap_get(d->new->by_name, st->user) : NULL;
	json_t *ev;

	d->changed = true;
	if (st->domain != NULL)
		ev = dbpoll_event_add(d->out, type, "", st->domain,
				      u != NULL ? u->id : -1, key);
	else
		ev = dbpoll_event_add(d->out, type, "site:", key, -1, key);
	if (ev == NULL)
		return;
	json_object_set_new(ev, "site_id", json_integer(st->id));
	dbpoll_set_str_or_null(ev, "site", st->name);
	dbpoll_set_str_or_null(ev, "site_type", st->type);
	dbpoll_set_str(ev, "domain", st->domain);
	if (st->domain_id >= 0)
		json_object_set_new(ev, "domain_id", json_integer(st->domain_id));
	dbpoll_set_str(ev, "user", st->user);
}

static bool dbpoll_diff_site_new(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;
	const struct dbpoll_site *n = value, *o = hmap_get(d->old->sites, key);

	if (o == NULL)
		dbpoll_site_ev(d, "site.added", key, n);
	else if (!dbpoll_streq(o->name, n->name) ||
		 !dbpoll_streq(o->type, n->type) ||
		 !dbpoll_streq(o->domain, n->domain) ||
		 o->domain_id != n->domain_id || !dbpoll_streq(o->user, n->user))
		d->changed = true;
	return true;
}

static bool dbpoll_diff_site_old(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;

	if (hmap_get(d->new->sites, key) == NULL)
		dbpoll_site_ev(d, "site.removed", key, value);
	return true;
}

/* user.limits_changed (origin slice): a slice's drop-ins changed.  A
 * slice seen for the first time (a new user) or gone says nothing. */
static bool dbpoll_diff_slice(const char *key, void *value, void *ctx)
{
	struct dbpoll_diff *d = ctx;
	const struct dbpoll_slice *n = value, *o = hmap_get(d->old->slices, key);
	const struct dbpoll_user *u;
	json_t *ev, *lim = NULL;

	if (o == NULL) {
		d->changed = true;
		return true;
	}
	if (!dbpoll_streq(o->user, n->user))
		d->changed = true;
	for (unsigned k = 0; k < DBPOLL_N_SLICE; k++) {
		json_t *pair;

		if (dbpoll_streq(o->v[k], n->v[k]))
			continue;
		if (lim == NULL)
			lim = json_object();
		pair = json_object();
		dbpoll_set_str_or_null(pair, "old", o->v[k]);
		dbpoll_set_str_or_null(pair, "new", n->v[k]);
		json_object_set_new(lim, dbpoll_slice_names[k], pair);
	}
	if (lim == NULL)
		return true;
	d->changed = true;
	u = n->user != NULL ? hmap_get(d->new->by_name, n->user) : NULL;
	if (u == NULL) {
		json_decref(lim); /* no panel user: not ours to tell */
		return true;
	}
	ev = dbpoll_event_add(d->out, "user.limits_changed", "user:", u->name,
			      u->id, key);
	if (ev == NULL) {
		json_decref(lim);
		return true;
	}
	dbpoll_user_fields(ev, d->new, u);
	json_object_set_new(ev, "origin", json_string("slice"));
	json_object_set_new(ev, "uid", json_integer(n->uid));
	json_object_set_new(ev, "limits", lim);
	return true;
}

bool dbpoll_diff_panel(const struct dbpoll_panel *old,
		       const struct dbpoll_panel *new, struct dbpoll_events *out)
{
	struct dbpoll_diff d = { old, new, out, false };
	size_t from = out != NULL ? out->n : 0;

	if (old == NULL)
		return true; /* a baseline: save it, no events */
	hmap_each(new->users, dbpoll_diff_new_user, &d);
	hmap_each(old->users, dbpoll_diff_old_user, &d);
	hmap_each(new->limits, dbpoll_diff_limits, &d);
	if (hmap_count(old->limits) != hmap_count(new->limits))
		d.changed = true;
	if (new->base_gen != old->gen || new->owners_changed)
		hmap_each(new->owners, dbpoll_diff_php, &d);
	if (old->sites != NULL && new->sites != NULL) {
		hmap_each(new->sites, dbpoll_diff_site_new, &d);
		hmap_each(old->sites, dbpoll_diff_site_old, &d);
	} else if ((old->sites == NULL) != (new->sites == NULL)) {
		d.changed = true; /* a baseline of the sites */
	}
	if (old->slices != NULL && new->slices != NULL) {
		hmap_each(new->slices, dbpoll_diff_slice, &d);
		if (hmap_count(old->slices) != hmap_count(new->slices))
			d.changed = true;
	} else if ((old->slices == NULL) != (new->slices == NULL)) {
		d.changed = true;
	}
	if (hmap_count(old->plans) != hmap_count(new->plans) ||
	    hmap_count(old->owners) != hmap_count(new->owners))
		d.changed = true;
	if (!d.changed)
		hmap_each(new->plans, dbpoll_diff_plan, &d);
	if (!d.changed && new->base_gen == old->gen)
		d.changed = new->owners_changed; /* compared while building */
	else if (!d.changed)
		hmap_each(new->owners, dbpoll_diff_owner, &d);
	if (out != NULL)
		dbpoll_events_sort(out, from);
	return d.changed;
}

struct dbpoll_adiff {
	const struct dbpoll_admins *old, *new;
	struct dbpoll_events *out;
	bool changed;
};

static void dbpoll_admin_fields(json_t *o, const struct dbpoll_admin *a)
{
	dbpoll_set_str(o, "admin", a->username);
	if (a->id >= 0)
		json_object_set_new(o, "admin_id", json_integer(a->id));
	dbpoll_set_str(o, "role", a->role);
	if (a->is_active >= 0)
		json_object_set_new(o, "is_active",
				    json_boolean(a->is_active));
	if (a->totp_enabled >= 0)
		json_object_set_new(o, "totp_enabled",
				    json_boolean(a->totp_enabled));
}

static void dbpoll_tristate(json_t *o, const char *key, int v)
{
	json_object_set_new(o, key, v < 0 ? json_null() : json_boolean(v));
}

static bool dbpoll_adiff_new(const char *key, void *value, void *ctx)
{
	struct dbpoll_adiff *d = ctx;
	const struct dbpoll_admin *n = value, *o = hmap_get(d->old->admins, key);
	json_t *ev, *changed;

	if (o == NULL) {
		d->changed = true;
		ev = dbpoll_event_add(d->out, "admin.added", "admin:",
				      n->username, n->id, key);
		if (ev != NULL)
			dbpoll_admin_fields(ev, n);
		return true;
	}
	if (dbpoll_streq(o->username, n->username) &&
	    dbpoll_streq(o->role, n->role) && o->is_active == n->is_active &&
	    o->totp_enabled == n->totp_enabled)
		return true;
	d->changed = true;
	ev = dbpoll_event_add(d->out, "admin.changed", "admin:", n->username,
			      n->id, key);
	if (ev == NULL)
		return true;
	dbpoll_admin_fields(ev, n);
	changed = json_array();
	if (!dbpoll_streq(o->username, n->username)) {
		json_array_append_new(changed, json_string("username"));
		dbpoll_set_str(ev, "old_admin", o->username);
	}
	if (!dbpoll_streq(o->role, n->role)) {
		json_array_append_new(changed, json_string("role"));
		dbpoll_set_str_or_null(ev, "old_role", o->role);
	}
	if (o->is_active != n->is_active) {
		json_array_append_new(changed, json_string("is_active"));
		dbpoll_tristate(ev, "old_is_active", o->is_active);
		if (o->is_active == 1 && n->is_active == 0)
			json_object_set_new(ev, "deactivated", json_true());
	}
	if (o->totp_enabled != n->totp_enabled) {
		json_array_append_new(changed, json_string("totp_enabled"));
		dbpoll_tristate(ev, "old_totp_enabled", o->totp_enabled);
		if (o->totp_enabled == 1 && n->totp_enabled == 0)
			json_object_set_new(ev, "totp_disabled", json_true());
	}
	json_object_set_new(ev, "changed", changed);
	return true;
}

static bool dbpoll_adiff_old(const char *key, void *value, void *ctx)
{
	struct dbpoll_adiff *d = ctx;
	const struct dbpoll_admin *o = value;
	json_t *ev;

	if (hmap_get(d->new->admins, key) != NULL)
		return true;
	d->changed = true;
	ev = dbpoll_event_add(d->out, "admin.removed", "admin:", o->username,
			      o->id, key);
	if (ev != NULL)
		dbpoll_admin_fields(ev, o);
	return true;
}

bool dbpoll_diff_admins(const struct dbpoll_admins *old,
			const struct dbpoll_admins *new,
			struct dbpoll_events *out)
{
	struct dbpoll_adiff d = { old, new, out, false };
	size_t from = out != NULL ? out->n : 0;

	if (old == NULL)
		return true;
	hmap_each(new->admins, dbpoll_adiff_new, &d);
	hmap_each(old->admins, dbpoll_adiff_old, &d);
	if (out != NULL)
		dbpoll_events_sort(out, from);
	return d.changed;
}

/* ---- enrichment ---- */

const struct dbpoll_owner *dbpoll_owner_find(const struct dbpoll_panel *p,
					     const char *domain)
{
	char buf[256];
	size_t i;

	if (p == NULL || domain == NULL)
		return NULL;
	for (i = 0; domain[i] != '\0' && i < sizeof(buf) - 1; i++)
		buf[i] = (char)tolower((unsigned char)domain[i]);
	if (domain[i] != '\0')
		return NULL;
	buf[i] = '\0';
	return hmap_get(p->owners, buf);
}

static bool dbpoll_has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void dbpoll_enrich_set(json_t *payload, const char *key, json_t *v)
{
	if (v == NULL)
		return;
	if (json_object_get(payload, key) == NULL)
		json_object_set_new(payload, key, v);
	else
		json_decref(v);
}

static json_t *dbpoll_str_or_nothing(const char *s)
{
	return s != NULL ? json_string(s) : NULL;
}

struct dbpoll_ctx_find {
	const char *ctx;
	const struct dbpoll_user *found;
};

static bool dbpoll_ctx_find_one(const char *key, void *value, void *arg)
{
	struct dbpoll_ctx_find *f = arg;
	const struct dbpoll_user *u = value;
	const char *ctx = u->context != NULL ? u->context : u->name;

	(void)key;
	if (ctx == NULL || strcmp(ctx, f->ctx) != 0)
		return true;
	f->found = u;
	return false;
}

/* container.*: the source knows the ctx (the owner of /home/<ctx>), the
 * row with that `server` gives the current name (the real one while
 * suspended), its id, plan and whether it is suspended. */
static void dbpoll_enrich_container(const struct dbpoll_panel *p,
				    json_t *payload)
{
	struct dbpoll_ctx_find f = { 0 };

	f.ctx = json_string_value(json_object_get(payload, "ctx"));
	if (f.ctx == NULL || p->users == NULL)
		return;
	hmap_each(p->users, dbpoll_ctx_find_one, &f);
	if (f.found == NULL)
		return;
	json_object_set_new(payload, "user", json_string(f.found->name));
	json_object_set_new(payload, "user_id", json_integer(f.found->id));
	json_object_set_new(payload, "suspended",
			    json_boolean(f.found->suspended_at != NULL));
	dbpoll_enrich_set(payload, "plan", dbpoll_str_or_nothing(
		dbpoll_plan_name(p, f.found->plan_id)));
}

void dbpoll_enrich(const struct dbpoll_panel *p, json_t *payload,
		   const char *type, const char *subject)
{
	const char *domain, *user, *why;

	if (p == NULL || !json_is_object(payload) || type == NULL)
		return;
	if (dbpoll_has_prefix(type, "domain.") || dbpoll_has_prefix(type, "cert.") ||
	    dbpoll_has_prefix(type, "dns.")) {
		const struct dbpoll_owner *o;

		domain = json_string_value(json_object_get(payload, "domain"));
		if (domain == NULL && subject != NULL &&
		    name_valid_domain(subject, &why))
			domain = subject;
		o = dbpoll_owner_find(p, domain);
		if (o == NULL || o->user == NULL)
			return;
		dbpoll_enrich_set(payload, "user", json_string(o->user));
		if (o->user_id >= 0)
			dbpoll_enrich_set(payload, "user_id",
					  json_integer(o->user_id));
		dbpoll_enrich_set(payload, "plan", dbpoll_str_or_nothing(o->plan));
		dbpoll_enrich_set(payload, "context",
				  dbpoll_str_or_nothing(o->context));
		return;
	}
	if (dbpoll_has_prefix(type, "container.")) {
		dbpoll_enrich_container(p, payload);
		return;
	}
	if (dbpoll_has_prefix(type, "user.")) {
		const struct dbpoll_user *u;

		user = json_string_value(json_object_get(payload, "user"));
		if (user == NULL && subject != NULL &&
		    dbpoll_has_prefix(subject, "user:"))
			user = subject + 5;
		if (user == NULL)
			return;
		u = hmap_get(p->by_name, user);
		if (u == NULL)
			return;
		dbpoll_enrich_set(payload, "plan", dbpoll_str_or_nothing(
			dbpoll_plan_name(p, u->plan_id)));
		dbpoll_enrich_set(payload, "user_id", json_integer(u->id));
		dbpoll_enrich_set(payload, "context", json_string(
			u->context != NULL ? u->context : u->name));
	}
}

/* ---- SQLite file signatures ---- */

static void dbpoll_sig_one(const char *path, off_t head_at, void *out)
{
	struct { uint64_t dev, ino, size; int64_t mtime_ns;
		 unsigned char head[32]; } *f = out;
	struct stat st;
	int fd;

	memset(f, 0, sizeof(*f));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0) {
		f->dev = st.st_dev;
		f->ino = st.st_ino;
		f->size = (uint64_t)st.st_size;
		f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			      st.st_mtim.tv_nsec;
		if (pread(fd, f->head, sizeof(f->head), head_at) < 0)
			memset(f->head, 0, sizeof(f->head));
	}
	close(fd);
}

bool dbpoll_file_sig(const char *path, struct dbpoll_file_sig *sig)
{
	char *wal = xasprintf("%s-wal", path);

	/* db header from offset 24: file change counter, size in pages;
	 * WAL header: checkpoint sequence, salts, checksums */
	dbpoll_sig_one(path, 24, &sig->f[0]);
	dbpoll_sig_one(wal, 0, &sig->f[1]);
	free(wal);
	return sig->f[0].ino != 0;
}

/* ---- persistence ---- */

/* The state file is written by hand, not through a jansson tree: for
 * 50,000 domains that is ten times faster and allocates nothing per row. */
struct dbpoll_buf {
	char *s;
	size_t len, cap;
};

static void dbpoll_buf_add(struct dbpoll_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 65536;
		b->s = xrealloc(b->s, b->cap);
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void dbpoll_buf_lit(struct dbpoll_buf *b, const char *s)
{
	dbpoll_buf_add(b, s, strlen(s));
}

/* A JSON string (or null); the text is UTF-8 already (it came from the
 * database through jansson or a driver that checked it). */
static void dbpoll_buf_str(struct dbpoll_buf *b, const char *s)
{
	const char *run;
	char esc[8];

	if (s == NULL) {
		dbpoll_buf_lit(b, "null");
		return;
	}
	dbpoll_buf_add(b, "\"", 1);
	for (run = s; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		dbpoll_buf_add(b, run, (size_t)(s - run));
		snprintf(esc, sizeof(esc), "\\u%04x", c);
		dbpoll_buf_lit(b, esc);
		run = s + 1;
	}
	dbpoll_buf_add(b, run, (size_t)(s - run));
	dbpoll_buf_add(b, "\"", 1);
}

static void dbpoll_buf_int(struct dbpoll_buf *b, int64_t v, bool null_if_neg)
{
	char num[32];

	if (null_if_neg && v < 0) {
		dbpoll_buf_lit(b, "null");
		return;
	}
	snprintf(num, sizeof(num), "%" PRId64, v);
	dbpoll_buf_lit(b, num);
}

struct dbpoll_dump {
	struct dbpoll_buf *b;
	bool first;
};

static void dbpoll_dump_key(struct dbpoll_dump *d, const char *key)
{
	if (!d->first)
		dbpoll_buf_add(d->b, ",", 1);
	d->first = false;
	dbpoll_buf_str(d->b, key);
	dbpoll_buf_add(d->b, ":", 1);
}

static bool dbpoll_user_dump(const char *key, void *value, void *ctx)
{
	const struct dbpoll_user *u = value;
	struct dbpoll_dump *d = ctx;

	/* [username, plan_id, email, context] */
	dbpoll_dump_key(d, key);
	dbpoll_buf_add(d->b, "[", 1);
	dbpoll_buf_str(d->b, u->username);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_int(d->b, u->plan_id, true);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_str(d->b, u->email);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_str(d->b, u->context);
	if (u->secrets) {
		dbpoll_buf_add(d->b, ",", 1);
		dbpoll_buf_str(d->b, u->pw_fp);
		dbpoll_buf_add(d->b, ",", 1);
		dbpoll_buf_int(d->b, u->twofa, true);
		dbpoll_buf_add(d->b, ",", 1);
		dbpoll_buf_str(d->b, u->otp_fp);
		dbpoll_buf_add(d->b, ",", 1);
		dbpoll_buf_int(d->b, u->passkeys, true);
		dbpoll_buf_add(d->b, ",", 1);
		dbpoll_buf_int(d->b, u->passkey_max, true);
	}
	dbpoll_buf_add(d->b, "]", 1);
	return true;
}

static bool dbpoll_limits_dump(const char *key, void *value, void *ctx)
{
	const struct dbpoll_limits *l = value;
	struct dbpoll_dump *d = ctx;

	dbpoll_dump_key(d, key);
	dbpoll_buf_add(d->b, "[", 1);
	for (unsigned k = 0; k < DBPOLL_N_LIMITS; k++) {
		if (k > 0)
			dbpoll_buf_add(d->b, ",", 1);
		dbpoll_buf_str(d->b, l->v[k]);
	}
	dbpoll_buf_add(d->b, "]", 1);
	return true;
}

static bool dbpoll_slice_dump(const char *key, void *value, void *ctx)
{
	const struct dbpoll_slice *sl = value;
	struct dbpoll_dump *d = ctx;

	dbpoll_dump_key(d, key);
	dbpoll_buf_add(d->b, "[", 1);
	dbpoll_buf_str(d->b, sl->user);
	for (unsigned k = 0; k < DBPOLL_N_SLICE; k++) {
		dbpoll_buf_add(d->b, ",", 1);
		dbpoll_buf_str(d->b, sl->v[k]);
	}
	dbpoll_buf_add(d->b, "]", 1);
	return true;
}

static bool dbpoll_site_dump(const char *key, void *value, void *ctx)
{
	const struct dbpoll_site *st = value;
	struct dbpoll_dump *d = ctx;

	/* [name, domain_id, type, domain, user] */
	dbpoll_dump_key(d, key);
	dbpoll_buf_add(d->b, "[", 1);
	dbpoll_buf_str(d->b, st->name);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_int(d->b, st->domain_id, true);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_str(d->b, st->type);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_str(d->b, st->domain);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_str(d->b, st->user);
	dbpoll_buf_add(d->b, "]", 1);
	return true;
}

static bool dbpoll_plan_dump(const char *key, void *value, void *ctx)
{
	struct dbpoll_dump *d = ctx;

	dbpoll_dump_key(d, key);
	dbpoll_buf_str(d->b, value);
	return true;
}

static bool dbpoll_owner_dump(const char *key, void *value, void *ctx)
{
	const struct dbpoll_owner *o = value;
	struct dbpoll_dump *d = ctx;

	/* [user, user_id, plan, context, gone_ms] */
	dbpoll_dump_key(d, key);
	dbpoll_buf_add(d->b, "[", 1);
	dbpoll_buf_str(d->b, o->user);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_int(d->b, o->user_id, true);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_str(d->b, o->plan);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_str(d->b, o->context);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_int(d->b, o->gone_ms, false);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_str(d->b, o->php);
	dbpoll_buf_add(d->b, ",", 1);
	dbpoll_buf_int(d->b, o->domain_id, true);
	dbpoll_buf_add(d->b, "]", 1);
	return true;
}

static bool dbpoll_admin_dump(const char *key, void *value, void *ctx)
{
	const struct dbpoll_admin *a = value;
	struct dbpoll_dump *d = ctx;

	dbpoll_dump_key(d, key);
	dbpoll_buf_lit(d->b, "{\"id\":");
	dbpoll_buf_int(d->b, a->id, false);
	dbpoll_buf_lit(d->b, ",\"username\":");
	dbpoll_buf_str(d->b, a->username);
	dbpoll_buf_lit(d->b, ",\"role\":");
	dbpoll_buf_str(d->b, a->role);
	dbpoll_buf_lit(d->b, ",\"is_active\":");
	dbpoll_buf_int(d->b, a->is_active, false);
	dbpoll_buf_lit(d->b, ",\"totp_enabled\":");
	dbpoll_buf_int(d->b, a->totp_enabled, false);
	dbpoll_buf_add(d->b, "}", 1);
	return true;
}

static void dbpoll_dump_map(struct dbpoll_buf *b, const char *name,
			    const struct hmap *m,
			    bool (*fn)(const char *, void *, void *))
{
	struct dbpoll_dump d = { b, true };

	dbpoll_buf_str(b, name);
	dbpoll_buf_lit(b, ":{");
	hmap_each(m, fn, &d);
	dbpoll_buf_add(b, "}", 1);
}

char *dbpoll_state_dump(const struct dbpoll_panel *p,
			const struct dbpoll_admins *a,
			const char *panel_source, const char *admin_source)
{
	struct dbpoll_buf b = { 0 };

	dbpoll_buf_lit(&b, "{\"version\":1,\"panel_source\":");
	dbpoll_buf_str(&b, panel_source);
	dbpoll_buf_lit(&b, ",\"admin_source\":");
	dbpoll_buf_str(&b, admin_source);
	dbpoll_buf_lit(&b, ",\"panel\":");
	if (p != NULL) {
		dbpoll_buf_add(&b, "{", 1);
		dbpoll_dump_map(&b, "users", p->users, dbpoll_user_dump);
		dbpoll_buf_add(&b, ",", 1);
		dbpoll_dump_map(&b, "plans", p->plans, dbpoll_plan_dump);
		dbpoll_buf_add(&b, ",", 1);
		dbpoll_dump_map(&b, "limits", p->limits, dbpoll_limits_dump);
		dbpoll_buf_add(&b, ",", 1);
		if (p->sites != NULL) {
			dbpoll_dump_map(&b, "sites", p->sites, dbpoll_site_dump);
			dbpoll_buf_add(&b, ",", 1);
		}
		if (p->slices != NULL) {
			dbpoll_dump_map(&b, "slices", p->slices,
					dbpoll_slice_dump);
			dbpoll_buf_add(&b, ",", 1);
		}
		dbpoll_dump_map(&b, "owners", p->owners, dbpoll_owner_dump);
		dbpoll_buf_add(&b, "}", 1);
	} else {
		dbpoll_buf_lit(&b, "null");
	}
	dbpoll_buf_lit(&b, ",\"admins\":");
	if (a != NULL) {
		dbpoll_buf_add(&b, "{", 1);
		{
			struct dbpoll_dump d = { &b, true };

			hmap_each(a->admins, dbpoll_admin_dump, &d);
		}
		dbpoll_buf_add(&b, "}", 1);
	} else {
		dbpoll_buf_lit(&b, "null");
	}
	dbpoll_buf_lit(&b, "}\n");
	return b.s;
}

static int64_t dbpoll_int64_at(json_t *a, size_t i, int64_t dflt)
{
	json_t *v = json_array_get(a, i);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static const char *dbpoll_str_at(json_t *a, size_t i)
{
	return json_string_value(json_array_get(a, i));
}

static int dbpoll_int_field(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (int)json_integer_value(v) : (int)dflt;
}

static int64_t dbpoll_int64_field(json_t *o, const char *key, int64_t dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

static int dbpoll_panel_from_json(json_t *jp, struct dbpoll_panel **p_r,
				  const char **error_r)
{
	json_t *users = json_object_get(jp, "users");
	json_t *plans = json_object_get(jp, "plans");
	json_t *owners = json_object_get(jp, "owners");
	json_t *limits = json_object_get(jp, "limits");
	json_t *sites = json_object_get(jp, "sites");
	json_t *slices = json_object_get(jp, "slices");
	struct dbpoll_panel *p;
	const char *key;
	json_t *v;

	if (!json_is_object(users) || !json_is_object(plans) ||
	    !json_is_object(owners)) {
		*error_r = "\"panel\" needs objects users, plans, owners";
		return -EINVAL;
	}
	p = dbpoll_panel_new();
	json_object_foreach(plans, key, v) {
		if (json_is_string(v))
			hmap_put(p->plans, key,
				 dbpoll_strdup_a(p, json_string_value(v)));
	}
	json_object_foreach(users, key, v) {
		const char *name = dbpoll_str_at(v, 0);
		char *end;
		long long id = strtoll(key, &end, 10);

		if (name == NULL || *end != '\0' || end == key) {
			*error_r = "a user needs a numeric key and a username";
			dbpoll_panel_free(&p);
			return -EINVAL;
		}
		struct dbpoll_user_secrets sec = {
			dbpoll_str_at(v, 4), dbpoll_str_at(v, 6),
			(int)dbpoll_int64_at(v, 5, -1), json_array_size(v) >= 7,
			dbpoll_int64_at(v, 7, -1), dbpoll_int64_at(v, 8, -1)
		};

		dbpoll_panel_add_user(p, id, name, dbpoll_int64_at(v, 1, -1),
				      dbpoll_str_at(v, 2), dbpoll_str_at(v, 3),
				      &sec);
	}
	json_object_foreach(limits, key, v) {
		struct dbpoll_limits *l;

		if (!json_is_array(v) || json_array_size(v) != DBPOLL_N_LIMITS)
			continue;
		l = dbpoll_alloc(p, sizeof(*l));
		for (unsigned k = 0; k < DBPOLL_N_LIMITS; k++)
			l->v[k] = dbpoll_strdup_a(p, dbpoll_str_at(v, k));
		l->known = true;
		hmap_put(p->limits, key, l);
	}
	if (json_is_object(slices)) {
		dbpoll_panel_slices_begin(p);
		json_object_foreach(slices, key, v) {
			char *sv[DBPOLL_N_SLICE];

			if (!json_is_array(v))
				continue;
			for (unsigned k = 0; k < DBPOLL_N_SLICE; k++)
				sv[k] = (char *)dbpoll_str_at(v, k + 1);
			dbpoll_panel_add_slice(p, strtoll(key, NULL, 10),
					       dbpoll_str_at(v, 0), sv);
		}
	}
	if (json_is_object(sites)) {
		p->sites = hmap_new();
		json_object_foreach(sites, key, v) {
			struct dbpoll_site *st;

			if (!json_is_array(v))
				continue;
			st = dbpoll_alloc(p, sizeof(*st));
			st->id = strtoll(key, NULL, 10);
			st->name = dbpoll_strdup_a(p, dbpoll_str_at(v, 0));
			st->domain_id = dbpoll_int64_at(v, 1, -1);
			st->type = dbpoll_strdup_a(p, dbpoll_str_at(v, 2));
			st->domain = dbpoll_strdup_a(p, dbpoll_str_at(v, 3));
			st->user = dbpoll_strdup_a(p, dbpoll_str_at(v, 4));
			hmap_put(p->sites, key, st);
		}
	}
	json_object_foreach(owners, key, v) {
		struct dbpoll_owner *o;

		if (!json_is_array(v))
			continue;
		o = dbpoll_alloc(p, sizeof(*o));
		o->user = dbpoll_strdup_a(p, dbpoll_str_at(v, 0));
		o->user_id = dbpoll_int64_at(v, 1, -1);
		o->plan = dbpoll_strdup_a(p, dbpoll_str_at(v, 2));
		o->context = dbpoll_strdup_a(p, dbpoll_str_at(v, 3));
		o->gone_ms = dbpoll_int64_at(v, 4, 0);
		o->php = dbpoll_strdup_a(p, dbpoll_str_at(v, 5));
		o->domain_id = dbpoll_int64_at(v, 6, -1);
		hmap_put(p->owners, key, o); /* JSON keys are unique */
	}
	*p_r = p;
	return 0;
}

static int dbpoll_admins_from_json(json_t *ja, struct dbpoll_admins **a_r,
				   const char **error_r)
{
	struct dbpoll_admins *a;
	const char *key;
	json_t *v;

	if (!json_is_object(ja)) {
		*error_r = "\"admins\" must be an object";
		return -EINVAL;
	}
	a = xcalloc(1, sizeof(*a));
	a->admins = hmap_new();
	json_object_foreach(ja, key, v) {
		const char *name = json_string_value(json_object_get(v, "username"));
		struct dbpoll_admin *ad;

		if (name == NULL)
			continue;
		ad = xcalloc(1, sizeof(*ad));
		ad->id = dbpoll_int64_field(v, "id", -1);
		ad->username = xstrdup(name);
		ad->role = dbpoll_strdup0(json_string_value(json_object_get(v, "role")));
		ad->is_active = dbpoll_int_field(v, "is_active", -1);
		ad->totp_enabled = dbpoll_int_field(v, "totp_enabled", -1);
		hmap_put(a->admins, key, ad);
	}
	*a_r = a;
	return 0;
}

int dbpoll_state_from_json(json_t *doc, struct dbpoll_panel **p_r,
			   struct dbpoll_admins **a_r, const char **error_r)
{
	json_t *jp, *ja;
	int ret;

	*p_r = NULL;
	*a_r = NULL;
	if (!json_is_object(doc) ||
	    json_integer_value(json_object_get(doc, "version")) != 1) {
		*error_r = "not a version 1 paneldb state document";
		return -EINVAL;
	}
	jp = json_object_get(doc, "panel");
	ja = json_object_get(doc, "admins");
	if (jp != NULL && !json_is_null(jp)) {
		ret = dbpoll_panel_from_json(jp, p_r, error_r);
		if (ret < 0)
			return ret;
	}
	if (ja != NULL && !json_is_null(ja)) {
		ret = dbpoll_admins_from_json(ja, a_r, error_r);
		if (ret < 0) {
			dbpoll_panel_free(p_r);
			return ret;
		}
	}
	return 0;
}
