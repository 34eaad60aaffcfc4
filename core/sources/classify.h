/* The classifier: what a path in the OpenPanel tree means, and which typed
 * events a change of its content gives.  Pure functions (no I/O, no global
 * state) so they can be unit-tested and fuzzed; the watcher reads the files
 * and keeps the facts between calls (the snapshot). */
#ifndef OPHOOK_CLASSIFY_H
#define OPHOOK_CLASSIFY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum classify_kind {
	CLASSIFY_NONE = 0,
	CLASSIFY_DOMAIN_CONF,   /* ROOT/caddy/domains/<d>.conf */
	CLASSIFY_CERT_JSON,     /* ROOT/caddy/ssl/.../<issuer>/<d>/<d>.json:
				   completes a certificate (aux: <d>.crt) */
	CLASSIFY_CUSTOM_CERT,   /* ROOT/caddy/ssl/custom/<d>/fullchain.pem or
				   ROOT/caddy/ssl/custom/<h>/<h>.crt */
	CLASSIFY_USER_DIR,      /* ROOT/openpanel/core/users/<ctx> (folder) */
	CLASSIFY_DENYLIST,      /* ROOT/caddy/deny/<ctx>.ips */
	CLASSIFY_PANEL_CONFIG,  /* ROOT/openpanel/conf/openpanel.config */
	CLASSIFY_ZONE,          /* .../zones/<d>.zone */
	CLASSIFY_NAMED_CONF,    /* .../named.conf.local */
	CLASSIFY_MAIL_ACCOUNTS, /* .../postfix-accounts.cf */
	CLASSIFY_MAIL_VIRTUAL,  /* .../postfix-virtual.cf */
	CLASSIFY_MAIL_QUOTAS,   /* .../dovecot-quotas.cf */
	CLASSIFY_FTP_USERS,     /* ROOT/ftp/users/<ctx>/users.list */
	CLASSIFY_CRONS,         /* HOME/<ctx>/crons.ini */
	CLASSIFY_BACKUP_ENV,    /* HOME/<ctx>/backup.env */
	CLASSIFY_NOTIFICATIONS, /* OpenAdmin's notifications.log */
	CLASSIFY_KIND_MAX
};

/* What a path is: its kind and the domain or user named by the path. */
struct classify_target {
	enum classify_kind kind;
	char name[256];   /* domain (or user for USER_DIR / DENYLIST, the
			     context for FTP_USERS / CRONS / BACKUP_ENV); "";
			     CERT_JSON of a wildcard folder
			     (wildcard_.example.com): "*.example.com" */
	char issuer[128]; /* CERT_JSON: the issuer folder */
	bool wildcard;    /* CERT_JSON: name is "*." + a domain */
};

/* Short name of a kind ("domain_conf"), for logs. */
const char *classify_kind_name(enum classify_kind kind);

/* True for temp and swap files that are never classified: sedXXXXXX,
 * *.swp, *.swx, *.swo, *~, .#*, 4913, *.tmp*, any dot file (Caddy's and
 * renameio's atomic temp names ".<name><digits>"). */
bool classify_ignored_name(const char *basename);

/* Which kind of file `path` (absolute, normalized) is, given the OpenPanel
 * root.  Fills *t.  Returns the kind (CLASSIFY_NONE for paths that mean
 * nothing).  When the path has the right shape but a bad domain or user
 * name, returns CLASSIFY_NONE and sets *why_r to a message (the caller logs
 * it with the path); otherwise *why_r is NULL. */
enum classify_kind classify_path(const char *root, const char *path,
				 struct classify_target *t,
				 const char **why_r);

/* Where the trees are: the OpenPanel root, the users' homes
 * (paths.home, NULL: none) and OpenAdmin's notification log
 * (paths.admin_notifications, NULL: none). */
struct classify_roots {
	const char *root;
	const char *home;
	const char *notifications;
};

/* classify_path with the homes and the notification log too:
 * HOME/<ctx>/crons.ini and HOME/<ctx>/backup.env (a valid user name as
 * ctx), the notification log's exact path. */
enum classify_kind classify_path_in(const struct classify_roots *roots,
				    const char *path,
				    struct classify_target *t,
				    const char **why_r);

/* True for the kinds of files a customer writes (HOME/<ctx>/...): hostile
 * input, read with a smaller size bound. */
bool classify_kind_is_customer(enum classify_kind kind);
/* Bigger customer files are not read (a warning names the file). */
#define CLASSIFY_CUSTOMER_MAX (1u << 20)

/* True for folders whose kind is classified as a folder (user dirs). */
bool classify_kind_is_dir(enum classify_kind kind);

/* The auxiliary file the classifier needs besides the path itself (the
 * .crt next to a certificate's .json), malloc'd, or NULL. */
char *classify_aux_path(const struct classify_target *t, const char *path);

struct classify_event {
	char *type;
	char *subject;
	json_t *payload; /* owned */
};

struct classify_input {
	const char *path;
	const char *content; /* NULL: the file (or folder) does not exist */
	size_t len;
	const char *aux;     /* content of classify_aux_path(), or NULL */
	size_t aux_len;
	bool existed;        /* the snapshot knew the path */
	const json_t *old_facts; /* facts from the last time (NULL: none) */
	const char *const *secret_keys; /* patterns added to
					   classify_secret_defaults */
	size_t n_secret_keys;
};

struct classify_result {
	struct classify_event *events;
	size_t n_events, cap_events;
	json_t *facts;    /* facts to remember (owned), NULL = none */
	char **warnings;  /* malformed lines etc. (the caller logs them with
			     the path) */
	size_t n_warnings;
};

/* Classify one change: the events it gives and the new facts.  Fills *r
 * (zeroed by the caller or cleared with classify_result_clear). */
void classify_content(const struct classify_target *t,
		      const struct classify_input *in,
		      struct classify_result *r);
/* Free everything in r and zero it. */
void classify_result_clear(struct classify_result *r);

/* ---- parsers (exposed for tests) ---- */

/* Suspension facts of a Caddy domain conf: a file_server route serving
 * suspended_domain.html (reason "domain") or suspended_user.html (reason
 * "user") and no reverse_proxy.  *comment_r: X from the first line
 * `# comment: X` (what opencli domains-suspend --comment=X writes), malloc'd,
 * or NULL; other comments (the templates' `# auto ssl`) are not reasons. */
bool classify_conf_suspended(const char *content, size_t len,
			     const char **reason_r, char **comment_r);

/* The TLS and WAF modes a Caddy domain conf sets, as static strings or
 * NULL when it sets none: *ssl_r "auto" (a tls block with on_demand, the
 * template's and `opencli domains-ssl auto`'s), "custom" (`tls <cert>
 * <key>`, domains-ssl custom), "internal" (`tls internal` or `issuer
 * internal`); *waf_r "on", "off" or "detection_only" from the first
 * Coraza `SecRuleEngine` line. */
void classify_conf_modes(const char *content, size_t len,
			 const char **ssl_r, const char **waf_r);

struct classify_cert {
	char serial[130];    /* upper-case hex */
	char not_before[40]; /* RFC 3339 */
	char not_after[40];  /* RFC 3339 */
	json_t *names;       /* array of SAN DNS names (owned) */
};
/* Parse the first certificate of a PEM blob.  0 or -EINVAL (*why_r). */
int classify_cert_parse(const char *pem, size_t len,
			struct classify_cert *c, const char **why_r);

/* The SOA serial of a zone file, or -1. */
int64_t classify_zone_serial(const char *content, size_t len);

/* Line sets: each returns a JSON object key -> value.
 * named.conf.local: zone name -> "" (names that are not valid domains are
 * warned about and skipped).  postfix-accounts.cf (`addr|hash[|uid...]`):
 * address -> short digest of the password hash field only (never the hash
 * itself; fields appended after it, such as opencli's `|uid`, do not
 * count).  postfix-virtual.cf:
 * alias -> targets.  dovecot-quotas.cf (`addr:quota`): address -> quota.
 * deny .ips: ip -> "".  INI: "section.key" -> value. */
json_t *classify_named_zones(const char *content, size_t len,
			     struct classify_result *warn);
json_t *classify_mail_accounts(const char *content, size_t len,
			       struct classify_result *warn);
json_t *classify_mail_aliases(const char *content, size_t len,
			      struct classify_result *warn);
json_t *classify_mail_quotas(const char *content, size_t len,
			     struct classify_result *warn);
json_t *classify_deny_ips(const char *content, size_t len,
			  struct classify_result *warn);
json_t *classify_ini(const char *content, size_t len,
		     struct classify_result *warn);

/* users.list of the FTP server (`account|hash|directory|uid|gid`, what
 * opencli ftp-add appends): account -> directory (the password hash is
 * never kept). */
json_t *classify_ftp_accounts(const char *content, size_t len,
			      struct classify_result *warn);
/* crons.ini (ofelia / go-cron `[job-exec "NAME"]` blocks, what the Go
 * panel writes): NAME -> {schedule, container, command, no_overlap}.  At
 * most CLASSIFY_CRON_MAX jobs; values are cut at 4096 bytes. */
#define CLASSIFY_CRON_MAX 1000
json_t *classify_cron_jobs(const char *content, size_t len,
			   struct classify_result *warn);
/* backup.env (KEY=VALUE lines, `#` comments, a pair of wrapping quotes
 * stripped, an `export ` prefix allowed): KEY -> value, secret keys
 * (classify_secret_key, or the backup patterns: *passphrase*,
 * *connection_string*, *credential*) -> their fingerprint only. */
json_t *classify_backup_env(const char *content, size_t len,
			    const char *const *extra, size_t n_extra,
			    struct classify_result *warn);
/* One line of OpenAdmin's notifications.log (`YYYY-mm-dd HH:MM:SS
 * UNREAD|READ TITLE MESSAGE: TEXT`, what opencli sentinel appends; READ is
 * set by sed -i).  True when it has that shape: *unread_r, the time,
 * title and message (pointers into line; lengths). */
struct classify_note {
	bool unread;
	const char *time, *title, *message;
	size_t time_len, title_len, message_len;
};
bool classify_note_parse(const char *line, size_t len,
			 struct classify_note *n);
/* Notifications kept in the facts: the last this many lines. */
#define CLASSIFY_NOTES_MAX 20000

/* Secret keys of openpanel.config: a key (`section.key` or `key`) is
 * secret when it or its last part matches one of these fnmatch(3)
 * patterns, case-insensitively: *_token, token, *password*, *passwd*,
 * *secret*, *_key, key, *apikey*, *api_key*, *private* (NULL-terminated),
 * or one of the admin's `secrets.extra_keys`.  The value of a secret key is
 * never stored in the facts nor put in an event: config.changed carries
 * `secret: true` and old_fingerprint / new_fingerprint instead of old /
 * new. */
extern const char *const classify_secret_defaults[];

/* True when `key` is secret (defaults or one of extra[0..n_extra)). */
bool classify_secret_key(const char *key, const char *const *extra,
			 size_t n_extra);

/* "sha256:" + the first 8 hex digits of the SHA-256 of value (OpenSSL
 * libcrypto), NUL-terminated: tells a change apart, cannot give back a
 * 64-character token. */
#define CLASSIFY_FP_SIZE 16
void classify_fingerprint(const char *value, size_t len,
			  char out[CLASSIFY_FP_SIZE]);

/* 64-bit FNV-1a of a buffer (content hash for the snapshot). */
uint64_t classify_hash(const void *data, size_t len, uint64_t seed);
#define CLASSIFY_HASH_SEED 0xcbf29ce484222325ULL

#endif
