/* The panel DB poller's data: snapshots of the panel's users, plans and
 * domains (-> owners) and of OpenAdmin's admin accounts, loaded from query
 * rows, diffed into events, persisted as JSON under state_dir.  No I/O
 * happens here except through a driver in dbpoll_fetch_*(); no loop
 * access.  Snapshots are immutable once built: a worker thread builds and
 * diffs, the loop thread swaps them in and reads them (enrichment). */
#ifndef OPHOOK_DBPOLL_H
#define OPHOOK_DBPOLL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "paneldb_driver.h"

struct hmap;
struct dbpoll_chunk;

/* One SELECT per table per poll.  Columns past the first ones were added
 * later: rows that lack them (older snapshots, tests) read as null. */
#define DBPOLL_SQL_USERS                                                     \
	"SELECT id, username, plan_id, email, server, password, "            \
	"twofa_enabled, otp_secret FROM users"
#define DBPOLL_SQL_PLANS                                                     \
	"SELECT id, name, domains_limit, websites_limit, email_limit, "      \
	"ftp_limit, disk_limit, inodes_limit, db_limit, cpu, ram, bandwidth "\
	"FROM plans"
#define DBPOLL_SQL_DOMAINS                                                   \
	"SELECT domain_url, user_id, php_version, domain_id FROM domains"
#define DBPOLL_SQL_SITES "SELECT id, site_name, domain_id, type FROM sites"
/* The Go panel's passkeys (a table it makes on first use): how many a
 * user has and the newest id (an add and a remove in one poll still
 * move it). */
#define DBPOLL_SQL_PASSKEYS                                                  \
	"SELECT user_id, COUNT(*), MAX(id) FROM user_passkeys GROUP BY user_id"
/* The plan limits compared for user.limits_changed, in DBPOLL_SQL_PLANS
 * order from its third column. */
#define DBPOLL_N_LIMITS 10
extern const char *const dbpoll_limit_names[DBPOLL_N_LIMITS];
/* The systemd properties of a user-<uid>.slice drop-in compared for
 * user.limits_changed (origin slice), and their names in events. */
#define DBPOLL_N_SLICE 3
extern const char *const dbpoll_slice_props[DBPOLL_N_SLICE];
extern const char *const dbpoll_slice_names[DBPOLL_N_SLICE];
/* A domain whose row is gone keeps its owner this long (ms). */
#define DBPOLL_GONE_KEEP_MS (30LL * 24 * 3600 * 1000)

struct dbpoll_user {
	int64_t id;
	char *username;     /* as stored (SUSPENDED_<ts>_<name> when suspended) */
	char *name;         /* the real name */
	char *suspended_at; /* "YYYYmmddHHMMSS" while suspended, else NULL */
	int64_t plan_id;    /* -1: none */
	char *email;        /* NULL when unknown */
	char *context;      /* users.server (docker context); NULL when unset */
	/* What tells that the password or the 2FA secret changed, never the
	 * values: a truncated SHA-256 of the column (NULL: unknown, or
	 * empty).  Kept in the state file only, never in an event. */
	char *pw_fp;
	char *otp_fp;
	int twofa;          /* users.twofa_enabled 0/1; -1 unknown */
	bool secrets;       /* the three above were read (else unknown) */
	int64_t passkeys;   /* user_passkeys rows; -1 unknown (no table) */
	int64_t passkey_max; /* their newest id; -1 none or unknown */
};

/* A plan's limits (plans columns, as text; NULL: null or unknown). */
struct dbpoll_limits {
	char *v[DBPOLL_N_LIMITS];
	bool known; /* read from a row that had the columns */
};

/* A user-<uid>.slice's limits from its drop-ins (NULL: not set). */
struct dbpoll_slice {
	int64_t uid;
	char *user;   /* the panel user whose home that uid owns, or NULL */
	char *v[DBPOLL_N_SLICE];
};

/* An installed application (`sites` row), with its domain and user
 * resolved when it was first seen (the names stay for site.removed). */
struct dbpoll_site {
	int64_t id;
	char *name;      /* site_name */
	int64_t domain_id;
	char *type;      /* sites.type (wordpress, ...) or NULL */
	char *domain;    /* the domain's domain_url (lower case) or NULL */
	char *user;      /* the domain's owner or NULL */
};

struct dbpoll_owner {
	char *user;      /* owner's real name; NULL when the row had no user */
	int64_t user_id; /* -1: none */
	char *plan;      /* plan name or NULL */
	char *context;   /* NULL when unknown */
	int64_t gone_ms; /* when the domain row disappeared; 0 while present */
	char *php;       /* domains.php_version (NULL: unknown) */
	int64_t domain_id; /* -1: unknown */
};

/* Users, plans and the domain -> owner map, from one poll. */
struct dbpoll_panel {
	struct hmap *users;   /* "<id>" -> struct dbpoll_user */
	struct hmap *plans;   /* "<id>" -> char * (name) */
	struct hmap *owners;  /* domain (lower case) -> struct dbpoll_owner */
	struct hmap *by_name; /* real name -> struct dbpoll_user (not owned) */
	struct hmap *limits;  /* "<plan id>" -> struct dbpoll_limits */
	struct hmap *sites;   /* "<id>" -> struct dbpoll_site; NULL: the
				 table was not read (no site events) */
	struct hmap *slices;  /* "<uid>" -> struct dbpoll_slice; NULL: the
				 drop-ins were not read */
	unsigned bad_rows;    /* rows skipped (bad names, missing ids) */
	/* Built against a previous snapshot (base_gen == its gen): whether
	 * any owner differs from it, found while building. */
	uint64_t gen, base_gen;
	bool owners_changed;
	struct dbpoll_chunk *arena; /* every struct and string above */
};

struct dbpoll_admin {
	int64_t id;       /* -1 when the table has no id column */
	char *username;
	char *role;       /* NULL when the column is missing */
	int is_active;    /* 0/1; -1 when unknown */
	int totp_enabled; /* 0/1; -1 when unknown */
};

/* OpenAdmin's `user` table. */
struct dbpoll_admins {
	struct hmap *admins; /* "<id>" (or username) -> struct dbpoll_admin */
};

/* An event to submit (payload owned). */
struct dbpoll_event {
	char *type;
	char *subject;
	json_t *payload;
	int64_t order; /* sort key: user or admin id */
	char *key;     /* the snapshot key it comes from ("<id>") */
};

struct dbpoll_events {
	struct dbpoll_event *v;
	size_t n, cap;
};

/* Split a stored username: "SUSPENDED_20260102030405_bob" gives name "bob"
 * and suspended_at "20260102030405" (malloc'd); anything else is the name
 * itself with *suspended_at_r NULL. */
void dbpoll_parse_username(const char *username, char **name_r,
			   char **suspended_at_r);

/* Build a panel snapshot from rows of DBPOLL_SQL_USERS, _PLANS, _DOMAINS
 * (arrays of arrays).  Owners of domains whose rows are gone are carried
 * over from prev (may be NULL) with gone_ms set (now_ms) and dropped after
 * DBPOLL_GONE_KEEP_MS.  Never fails; bad rows are skipped and counted. */
struct dbpoll_panel *dbpoll_panel_build(json_t *users, json_t *plans,
					json_t *domains,
					const struct dbpoll_panel *prev,
					int64_t now_ms);
void dbpoll_panel_free(struct dbpoll_panel **p);
/* Add the rows of DBPOLL_SQL_SITES to p (built by dbpoll_panel_build):
 * each site's domain and user come from p's domains (matched on
 * domain_id), else from prev's site of the same id. */
/* Record that p carries the slices' state (even none), then add one
 * (strings copied; v as dbpoll_slice_parse leaves it). */
void dbpoll_panel_slices_begin(struct dbpoll_panel *p);
void dbpoll_panel_add_slice(struct dbpoll_panel *p, int64_t uid,
			    const char *user, char *const v[DBPOLL_N_SLICE]);
/* Apply one drop-in's text to v (malloc'd strings, NULL when unset): in
 * its [Slice] section, each CPUQuota=, MemoryMax=, TasksMax= replaces the
 * value before it, an empty one resets it.  Bounded: lines over 1 KiB and
 * values over 64 bytes or with control characters are ignored. */
void dbpoll_slice_parse(const char *text, size_t len,
			char *v[DBPOLL_N_SLICE]);

void dbpoll_panel_add_sites(struct dbpoll_panel *p, json_t *sites,
			    const struct dbpoll_panel *prev);
/* Set the users' passkey counts from the rows of DBPOLL_SQL_PASSKEYS
 * (rows NULL: the table is not there, counts unknown). */
void dbpoll_panel_set_passkeys(struct dbpoll_panel *p, json_t *rows);

/* Run the four SELECTs on conn (in one read-only transaction) and build
 * the snapshot.  *queries_r is incremented once per SELECT run.  0 or -errno (from the driver, -EPIPE
 * when the connection is gone) with *error_r (malloc'd). */
int dbpoll_fetch_panel(const struct paneldb_driver *drv,
		       struct paneldb_conn *conn,
		       const struct dbpoll_panel *prev, int64_t now_ms,
		       struct dbpoll_panel **panel_r, unsigned *queries_r,
		       char **error_r);

/* Read OpenAdmin's `user` table through conn (SQLite): whichever of id,
 * username, role, is_active, totp_enabled (or twofa_enabled, or a
 * totp_secret/otp_secret column) exist.  0 or -errno with *error_r. */
int dbpoll_fetch_admins(const struct paneldb_driver *drv,
			struct paneldb_conn *conn,
			struct dbpoll_admins **admins_r, char **error_r);
/* Build an admin snapshot from rows and their column names. */
struct dbpoll_admins *dbpoll_admins_build(json_t *rows, json_t *cols);
void dbpoll_admins_free(struct dbpoll_admins **a);

/* Diff two snapshots (old may be NULL: no events, a baseline) and append
 * the events to out: user.added, user.removed, user.suspended,
 * user.unsuspended, user.renamed, user.plan_changed, user.updated (email,
 * password, 2FA: what changed, never a value of the last two),
 * user.limits_changed (a plan's limits changed: one event per user on
 * it), domain.php_changed, site.added, site.removed (source "db"),
 * ordered by user id.  Returns true when anything differs (events or not: an email,
 * a plan name, a domain's owner), i.e. the snapshot must be saved. */
bool dbpoll_diff_panel(const struct dbpoll_panel *old,
		       const struct dbpoll_panel *new, struct dbpoll_events *out);
/* Same for admin accounts: admin.added, admin.removed, admin.changed
 * ("changed": [fields], old_<field>, "totp_disabled": true when 2FA went
 * off, "deactivated": true when is_active went off). */
bool dbpoll_diff_admins(const struct dbpoll_admins *old,
			const struct dbpoll_admins *new,
			struct dbpoll_events *out);

void dbpoll_events_clear(struct dbpoll_events *evs);

/* Owner of a domain (lower-cased lookup), or NULL. */
const struct dbpoll_owner *dbpoll_owner_find(const struct dbpoll_panel *p,
					     const char *domain);
/* Add owner fields to an event payload (fields already set are kept):
 * domain.* / cert.* / dns.* events with a "domain" field (or a domain as
 * subject) get user, user_id, plan, context; user.* events with a user
 * field (or subject "user:<name>") get plan, user_id, context. */
void dbpoll_enrich(const struct dbpoll_panel *p, json_t *payload,
		   const char *type, const char *subject);

/* What an SQLite database's files look like (the file and its -wal:
 * device, inode, size, mtime, and the header bytes SQLite changes on every
 * commit).  Equal signatures: nothing was committed in between (a
 * periodic full read still bounds any doubt). */
struct dbpoll_file_sig {
	struct {
		uint64_t dev, ino, size;
		int64_t mtime_ns;
		unsigned char head[32];
	} f[2];
};
/* Fill sig for the SQLite file `path` (zeros for missing files); false
 * when the main file does not exist. */
bool dbpoll_file_sig(const char *path, struct dbpoll_file_sig *sig);

/* Persistence, as JSON text (malloc'd): {"version":1, "panel_source":
 * ..., "admin_source": ... (which databases it describes), "panel":
 * {"users":{"<id>":[username, plan_id, email, context, pw_fp, twofa,
 * otp_fp, passkeys, passkey_max]}, "plans":{"<id>": name}, "limits":{"<id>":[limit...]},
 * "owners":{"<domain>":[user, user_id, plan, context, gone_ms, php,
 * domain_id]}, "sites":{"<id>":[name, domain_id, type, domain, user]},
 * "slices":{"<uid>":[user, CPUQuota, MemoryMax, TasksMax]}}
 * or null, "admins":{"<key>":{id, username, role, is_active,
 * totp_enabled}} or null}.  Sources may be NULL. */
char *dbpoll_state_dump(const struct dbpoll_panel *p,
			const struct dbpoll_admins *a,
			const char *panel_source, const char *admin_source);
/* Parse what dbpoll_state_dump wrote; missing parts come back NULL.
 * -EINVAL with *error_r (static) on a malformed document. */
int dbpoll_state_from_json(json_t *doc, struct dbpoll_panel **p_r,
			   struct dbpoll_admins **a_r, const char **error_r);

#endif
