/* ophookd.yaml loader.  libyaml events are turned into a small node tree
 * (refusing anchors, aliases, tags, duplicate and non-scalar keys), then
 * the tree is walked against `cfg_keys`, one row per key.  Every error names
 * the file and the 1-based line and column of the offending node. */
#define _GNU_SOURCE
#include "config.h"
#include "alertlevel.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#ifndef OPHOOK_PLUGINDIR
#define OPHOOK_PLUGINDIR "/usr/local/lib/ophook/plugins"
#endif
#define CFG_DROPIN_PLUGINDIR "/etc/openpanel/ophookd/plugins"
#define CFG_ROOT_DEF "/etc/openpanel"

#define CFG_MAX_SIZE (1024 * 1024) /* bytes of YAML we read */
#define CFG_MAX_DEPTH 64	   /* nesting of sequences and mappings */
#define CFG_PLUGIN_NAME_MAX 32

/* ---- node tree ---------------------------------------------------------- */

enum cfg_kind { CFG_SCALAR, CFG_SEQ, CFG_MAP };

struct cfg_node {
	enum cfg_kind kind;
	int line, column;	 /* 1-based */
	char *value;		 /* scalar: NUL-terminated (may hold NULs) */
	size_t len;		 /* scalar: bytes in value */
	bool plain;		 /* scalar: unquoted, not a block scalar */
	struct cfg_node **items; /* seq: items; map: key, value, key, ... */
	size_t n, cap;
};

/* State of one load: the file name for messages, the parser, the input. */
struct cfg_parse {
	const char *file;
	const char *buf;
	size_t len;
	yaml_parser_t parser;
	char *error;
};

static void cfg_node_free(struct cfg_node **np)
{
	struct cfg_node *n = *np;

	if (n == NULL)
		return;
	for (size_t i = 0; i < n->n; i++)
		cfg_node_free(&n->items[i]);
	free(n->items);
	free(n->value);
	free(n);
	*np = NULL;
}

static int cfg_errorv(struct cfg_parse *p, int line, int column,
		      const char *fmt, va_list ap)
{
	char msg[1024];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (p->error == NULL)
		p->error = xasprintf("%s:%d:%d: %s", p->file, line, column, msg);
	return -EINVAL;
}

/* Record "FILE:LINE:COL: message" (the first error wins); -EINVAL. */
static int __attribute__((format(printf, 4, 5)))
cfg_error_at(struct cfg_parse *p, int line, int column, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = cfg_errorv(p, line, column, fmt, ap);
	va_end(ap);
	return r;
}

static int __attribute__((format(printf, 3, 4)))
cfg_error(struct cfg_parse *p, const struct cfg_node *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = cfg_errorv(p, n->line, n->column, fmt, ap);
	va_end(ap);
	return r;
}

/* Anchors (&a) and aliases (*a) are refused: say which. */
static int cfg_mark_error(struct cfg_parse *p, const yaml_mark_t *m,
			  const char *what, const char *sigil, const char *name)
{
	return cfg_error_at(p, (int)m->line + 1, (int)m->column + 1,
			    "%s (%s%.64s) are not supported in the configuration",
			    what, sigil, name);
}

/* Line and column (0-based) of a byte offset in the input. */
static void cfg_offset_mark(const struct cfg_parse *p, size_t offset,
			    size_t *line_r, size_t *column_r)
{
	size_t line = 0, col = 0;

	if (offset > p->len)
		offset = p->len;
	for (size_t i = 0; i < offset; i++) {
		if (p->buf[i] == '\n') {
			line++;
			col = 0;
		} else {
			col++;
		}
	}
	*line_r = line;
	*column_r = col;
}

static int cfg_syntax_error(struct cfg_parse *p)
{
	const yaml_parser_t *y = &p->parser;
	const char *problem = y->problem != NULL ? y->problem : "invalid YAML";
	size_t line, col;

	if (y->error == YAML_MEMORY_ERROR) {
		if (p->error == NULL)
			p->error = xasprintf("%s: out of memory", p->file);
		return -ENOMEM;
	}
	if (y->error == YAML_READER_ERROR) {
		cfg_offset_mark(p, y->problem_offset, &line, &col);
	} else {
		line = y->problem_mark.line;
		col = y->problem_mark.column;
	}
	if (y->context != NULL)
		return cfg_error_at(p, (int)line + 1, (int)col + 1,
				    "syntax error: %s (%s at %d:%d)", problem,
				    y->context, (int)y->context_mark.line + 1,
				    (int)y->context_mark.column + 1);
	return cfg_error_at(p, (int)line + 1, (int)col + 1,
			    "syntax error: %s", problem);
}

static int cfg_next(struct cfg_parse *p, yaml_event_t *ev)
{
	if (!yaml_parser_parse(&p->parser, ev))
		return cfg_syntax_error(p);
	return 0;
}

static struct cfg_node *cfg_node_new(enum cfg_kind kind, const yaml_mark_t *m)
{
	struct cfg_node *n = xcalloc(1, sizeof(*n));

	n->kind = kind;
	n->line = (int)m->line + 1;
	n->column = (int)m->column + 1;
	return n;
}

static void cfg_node_append(struct cfg_node *n, struct cfg_node *child)
{
	if (n->n == n->cap) {
		n->cap = n->cap ? n->cap * 2 : 8;
		n->items = xrealloc(n->items, n->cap * sizeof(*n->items));
	}
	n->items[n->n++] = child;
}

struct cfg_keyref {
	const struct cfg_node *key;
	size_t index;
};

static int cfg_keyref_cmp(const void *a, const void *b)
{
	const struct cfg_keyref *x = a, *y = b;
	size_t len = x->key->len < y->key->len ? x->key->len : y->key->len;
	int c = memcmp(x->key->value, y->key->value, len);

	if (c != 0)
		return c;
	if (x->key->len != y->key->len)
		return x->key->len < y->key->len ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/* The first key (in document order) that repeats an earlier key, or NULL.
 * Sorting keeps this O(n log n) for hostile inputs. */
static const struct cfg_node *cfg_map_duplicate(const struct cfg_node *map)
{
	size_t n = map->n / 2, best = SIZE_MAX;
	struct cfg_keyref *refs;

	if (n < 2)
		return NULL;
	refs = xmalloc(n * sizeof(*refs));
	for (size_t i = 0; i < n; i++) {
		refs[i].key = map->items[2 * i];
		refs[i].index = i;
	}
	qsort(refs, n, sizeof(*refs), cfg_keyref_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct cfg_node *a = refs[i - 1].key, *b = refs[i].key;

		if (a->len == b->len && memcmp(a->value, b->value, a->len) == 0 &&
		    refs[i].index < best)
			best = refs[i].index;
	}
	free(refs);
	return best == SIZE_MAX ? NULL : map->items[2 * best];
}

static int cfg_build(struct cfg_parse *p, const yaml_event_t *ev, int depth,
		     struct cfg_node **node_r);

/* Children of a sequence or mapping up to its end event. */
static int cfg_build_children(struct cfg_parse *p, struct cfg_node *n,
			      int depth)
{
	yaml_event_type_t end = n->kind == CFG_SEQ ? YAML_SEQUENCE_END_EVENT
						   : YAML_MAPPING_END_EVENT;

	for (;;) {
		struct cfg_node *child;
		yaml_event_t ev;
		int r = cfg_next(p, &ev);

		if (r < 0)
			return r;
		if (ev.type == end) {
			yaml_event_delete(&ev);
			return 0;
		}
		r = cfg_build(p, &ev, depth + 1, &child);
		yaml_event_delete(&ev);
		if (r < 0)
			return r;
		cfg_node_append(n, child);
		if (n->kind == CFG_MAP && n->n % 2 == 1) {
			if (child->kind != CFG_SCALAR)
				return cfg_error(p, child,
						 "a mapping key must be a plain "
						 "string, not a %s",
						 child->kind == CFG_MAP
							 ? "mapping"
							 : "sequence");
			if (memchr(child->value, '\0', child->len) != NULL)
				return cfg_error(p, child,
						 "a key must not contain a NUL "
						 "character");
		}
	}
}

/* One node from its first event `ev` (the caller deletes ev). */
static int cfg_build(struct cfg_parse *p, const yaml_event_t *ev, int depth,
		     struct cfg_node **node_r)
{
	const yaml_char_t *anchor = NULL, *tag = NULL;
	struct cfg_node *n;
	enum cfg_kind kind;
	int r;

	*node_r = NULL;
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		return cfg_mark_error(p, &ev->start_mark, "aliases", "*",
				      (const char *)ev->data.alias.anchor);
	case YAML_SCALAR_EVENT:
		kind = CFG_SCALAR;
		anchor = ev->data.scalar.anchor;
		tag = ev->data.scalar.tag;
		break;
	case YAML_SEQUENCE_START_EVENT:
		kind = CFG_SEQ;
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		break;
	case YAML_MAPPING_START_EVENT:
		kind = CFG_MAP;
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		break;
	default:
		return cfg_error_at(p, (int)ev->start_mark.line + 1,
				    (int)ev->start_mark.column + 1,
				    "unexpected YAML event");
	}
	if (anchor != NULL)
		return cfg_mark_error(p, &ev->start_mark, "anchors", "&",
				      (const char *)anchor);
	if (tag != NULL)
		return cfg_error_at(p, (int)ev->start_mark.line + 1,
				    (int)ev->start_mark.column + 1,
				    "tags (%.64s) are not supported in the "
				    "configuration",
				    (const char *)tag);
	if (depth > CFG_MAX_DEPTH)
		return cfg_error_at(p, (int)ev->start_mark.line + 1,
				    (int)ev->start_mark.column + 1,
				    "nested deeper than %d levels",
				    CFG_MAX_DEPTH);

	n = cfg_node_new(kind, &ev->start_mark);
	if (kind == CFG_SCALAR) {
		n->len = ev->data.scalar.length;
		n->value = xmalloc(n->len + 1);
		memcpy(n->value, ev->data.scalar.value, n->len);
		n->value[n->len] = '\0';
		n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
		*node_r = n;
		return 0;
	}
	r = cfg_build_children(p, n, depth);
	if (r == 0 && kind == CFG_MAP) {
		const struct cfg_node *dup = cfg_map_duplicate(n);

		if (dup != NULL)
			r = cfg_error(p, dup, "duplicate key \"%.64s\"",
				      dup->value);
	}
	if (r < 0) {
		cfg_node_free(&n);
		return r;
	}
	*node_r = n;
	return 0;
}

/* The one document of the stream; *root_r NULL when there is none. */
static int cfg_parse_tree(struct cfg_parse *p, struct cfg_node **root_r)
{
	struct cfg_node *root = NULL;
	yaml_event_t ev;
	int r;

	*root_r = NULL;
	if ((r = cfg_next(p, &ev)) < 0) /* stream start */
		return r;
	yaml_event_delete(&ev);
	if ((r = cfg_next(p, &ev)) < 0)
		return r;
	if (ev.type == YAML_STREAM_END_EVENT) {
		yaml_event_delete(&ev);
		return 0;
	}
	yaml_event_delete(&ev); /* document start */
	if ((r = cfg_next(p, &ev)) < 0)
		return r;
	r = cfg_build(p, &ev, 0, &root);
	yaml_event_delete(&ev);
	if (r < 0)
		return r;
	if ((r = cfg_next(p, &ev)) < 0) /* document end */
		goto fail;
	yaml_event_delete(&ev);
	if ((r = cfg_next(p, &ev)) < 0)
		goto fail;
	if (ev.type != YAML_STREAM_END_EVENT) {
		r = cfg_error_at(p, (int)ev.start_mark.line + 1,
				 (int)ev.start_mark.column + 1,
				 "only one YAML document is allowed");
		yaml_event_delete(&ev);
		goto fail;
	}
	yaml_event_delete(&ev);
	*root_r = root;
	return 0;
fail:
	cfg_node_free(&root);
	return r;
}

/* ---- the table of keys -------------------------------------------------- */

enum cfg_type {
	CT_STR,	  /* char *: any non-empty string */
	CT_PATH,  /* char *: an absolute path */
	CT_ENUM,  /* char *: one of `choices` */
	CT_UINT,  /* unsigned: decimal, min..max */
	CT_BOOL,  /* bool: true/false/yes/no */
	CT_PATHS, /* char **, size_t: sequence of absolute paths */
};

#define CFG_LOG_DEF "/var/log"
#define CK_NULLABLE 0x1	 /* CT_STR: empty value / ~ / null sets NULL */
#define CK_HOSTNAME 0x2	 /* default: gethostname() */
#define CK_ROOT 0x4	 /* CT_PATHS default: [root] after loading */
#define CK_WORDS 0x8	 /* CT_PATHS: items are patterns, not paths */
#define CK_ARGV 0x80	 /* CT_PATHS: items are a command's argv (any
			    non-empty string; the first one a program) */
#define CK_IN_ROOT 0x10	 /* CT_PATH: default under `root` (the /etc/openpanel
			    of `def` replaced by root after loading) */
#define CK_EXTRA 0x20	 /* CT_PATHS: default from `paths` after loading */
#define CK_IN_LOG 0x40	 /* CT_PATH: default under `paths.log` (the /var/log
			    prefix of the declared default replaced) */

struct cfg_key {
	const char *path;	    /* "section.key" */
	enum cfg_type type;
	size_t off;		    /* offset of the field in struct config */
	size_t n_off;		    /* CT_PATHS: offset of the count */
	const char *def;	    /* CT_STR, CT_PATH, CT_ENUM default */
	const char *const *defv;    /* CT_PATHS default, NULL-terminated */
	const char *const *choices; /* CT_ENUM, NULL-terminated */
	unsigned udef, min, max;    /* CT_UINT */
	bool bdef;		    /* CT_BOOL */
	unsigned flags;		    /* CK_* */
};

#define CFG_OFF(m) offsetof(struct config, m)
#define K_STR(p, m, d, f) \
	{ .path = p, .type = CT_STR, .off = CFG_OFF(m), .def = d, .flags = f }
#define K_PATH(p, m, d) \
	{ .path = p, .type = CT_PATH, .off = CFG_OFF(m), .def = d }
#define K_PATHF(p, m, d, f) \
	{ .path = p, .type = CT_PATH, .off = CFG_OFF(m), .def = d, .flags = f }
#define K_ENUM(p, m, d, c) \
	{ .path = p, .type = CT_ENUM, .off = CFG_OFF(m), .def = d, .choices = c }
#define K_UINT(p, m, d, lo, hi)                                         \
	{ .path = p, .type = CT_UINT, .off = CFG_OFF(m), .udef = d, .min = lo, \
	  .max = hi }
#define K_BOOL(p, m, d) \
	{ .path = p, .type = CT_BOOL, .off = CFG_OFF(m), .bdef = d }
#define K_PATHS(p, m, n, d, f)                                          \
	{ .path = p, .type = CT_PATHS, .off = CFG_OFF(m), .n_off = CFG_OFF(n), \
	  .defv = d, .flags = f }

static const char *const cfg_watch_extra_def[] = {
	"/etc/bind/zones", "/etc/bind/named.conf.local",
	"/usr/local/mail/openmail/docker-data/dms/config", NULL
};
static const char *const cfg_plugin_dirs_def[] = { OPHOOK_PLUGINDIR,
						   CFG_DROPIN_PLUGINDIR, NULL };
static const char *const cfg_none[] = { NULL };
static const char *const cfg_cert_thresholds_def[] = { "14d", "7d", "1d",
						       NULL };
static const char *const cfg_quota_levels_def[] = { "90", "100", NULL };
static const char *const cfg_quota_command_def[] = { "repquota", "-a", "-u",
						     "-O", "csv", NULL };
static const char *const cfg_log_levels[] = { "debug", "info", "warn",
					      "error", NULL };
static const char *const cfg_log_targets[] = { "stderr", "syslog", NULL };
static const char *const cfg_drivers[] = { "sqlite", "mysql", NULL };
static const char *const cfg_syncs[] = { "full", "normal", NULL };
static const char *const cfg_backends[] = { "sqlite", "mysql", NULL };

static const struct cfg_key cfg_keys[] = {
	K_STR("node", node, NULL, CK_HOSTNAME),
	K_PATH("root", root, CFG_ROOT_DEF),
	K_PATHS("watch_extra", watch_extra, n_watch_extra, cfg_watch_extra_def,
		CK_EXTRA),
	/* the host's trees outside root, for watch_extra and the plugins'
	 * default paths (${paths.NAME} in a declared default) */
	K_PATH("paths.bind", paths.bind, "/etc/bind"),
	K_PATH("paths.bind_cache", paths.bind_cache, "/var/cache/bind"),
	K_PATH("paths.mail", paths.mail, "/usr/local/mail/openmail"),
	K_PATH("paths.log", paths.log, CFG_LOG_DEF),
	K_PATH("paths.csf", paths.csf, "/etc/csf"),
	/* the users' homes: <home>/<ctx>/crons.ini and backup.env */
	K_PATH("paths.home", paths.home, "/home"),
	/* OpenAdmin's notification log (opencli sentinel appends to it) */
	K_PATHF("paths.admin_notifications", paths.admin_notifications,
		"/var/log/openpanel/admin/notifications.log", CK_IN_LOG),
	/* systemd's config: the user-UID.slice.d drop-ins (panel DB poller) */
	K_PATH("paths.systemd", paths.systemd, "/etc/systemd"),
	K_PATH("state_dir", state_dir, "/var/lib/ophookd"),
	K_PATH("socket", socket, "/run/ophookd.sock"),
	K_STR("socket_group", socket_group, NULL, CK_NULLABLE),
	K_UINT("socket_max_clients", socket_max_clients, 64, 1, 65536),
	K_UINT("socket_idle_ms", socket_idle_ms, 300000, 100, UINT_MAX),
	K_UINT("socket_request_ms", socket_request_ms, 30000, 100, UINT_MAX),
	K_STR("metrics_listen", metrics_listen, NULL, CK_NULLABLE),
	K_STR("console.listen", console.listen, NULL, CK_NULLABLE),
	K_STR("console.token_file", console.token_file, NULL, CK_NULLABLE),
	K_PATHS("plugin_dirs", plugin_dirs, n_plugin_dirs, cfg_plugin_dirs_def, 0),
	K_PATHF("hooks_dir", hooks_dir, "/etc/openpanel/ophookd/hooks",
		CK_IN_ROOT),
	K_ENUM("log_level", log_level, "info", cfg_log_levels),
	K_ENUM("log", log, "stderr", cfg_log_targets),

	K_PATHS("secrets.extra_keys", secrets.extra_keys, secrets.n_extra_keys,
		cfg_none, CK_WORDS),
	K_PATHS("checks.fail_open", checks.fail_open, checks.n_fail_open,
		cfg_none, CK_WORDS),
	K_BOOL("checks.relay", checks.relay, true),
	K_PATHF("checks.relay_socket", checks.relay_socket,
		"/etc/openpanel/ophookd/guard.sock", CK_IN_ROOT),

	K_ENUM("panel_db.driver", panel_db.driver, "sqlite", cfg_drivers),
	K_PATHF("panel_db.path", panel_db.path, "/etc/openpanel/ophookd/panel.db",
		CK_IN_ROOT),
	K_PATHF("panel_db.option_file", panel_db.option_file,
		"/etc/openpanel/mysql/host_my.cnf", CK_IN_ROOT),
	K_STR("panel_db.database", panel_db.database, "panel", 0),
	K_PATHF("panel_db.admin_db", panel_db.admin_db,
		"/etc/openpanel/openadmin/users.db", CK_IN_ROOT),
	K_UINT("panel_db.poll_ms", panel_db.poll_ms, 5000, 0, UINT_MAX),
	K_UINT("panel_db.merge_wait_ms", panel_db.merge_wait_ms, 15000, 0,
	       UINT_MAX),

	K_UINT("journal.max_attempts", journal.max_attempts, 8, 1, UINT_MAX),
	K_UINT("journal.backoff_ms", journal.backoff_ms, 1000, 0, UINT_MAX),
	K_UINT("journal.backoff_max_ms", journal.backoff_max_ms, 600000, 0, UINT_MAX),
	K_UINT("journal.retention_s", journal.retention_s, 604800, 0, UINT_MAX),
	K_UINT("journal.batch", journal.batch, 4096, 1, UINT_MAX),
	K_ENUM("journal.sync", journal.sync, "full", cfg_syncs),
	K_ENUM("journal.backend", journal.backend, "sqlite", cfg_backends),
	K_STR("journal.host", journal.host, NULL, CK_NULLABLE),
	K_UINT("journal.port", journal.port, 3306, 0, 65535),
	K_STR("journal.socket", journal.socket, NULL, CK_NULLABLE),
	K_STR("journal.user", journal.user, NULL, CK_NULLABLE),
	K_STR("journal.password_file", journal.password_file, NULL, CK_NULLABLE),
	K_STR("journal.database", journal.database, "ophook", 0),
	K_UINT("journal.poll_ms", journal.poll_ms, 200, 10, UINT_MAX),
	K_UINT("journal.lease_ms", journal.lease_ms, 30000, 100, UINT_MAX),

	K_UINT("dispatch.concurrency", dispatch.concurrency, 64, 1, UINT_MAX),
	K_UINT("dispatch.timeout_ms", dispatch.timeout_ms, 30000, 1, UINT_MAX),
	K_UINT("dispatch.threads", dispatch.threads, 8, 1, 1024),

	K_UINT("watch.settle_ms", watch.settle_ms, 50, 0, UINT_MAX),
	K_UINT("watch.reconcile_s", watch.reconcile_s, 3600, 0, UINT_MAX),
	K_BOOL("watch.enabled", watch.enabled, true),

	K_BOOL("containers.enabled", containers.enabled, false),
	K_STR("containers.root_socket", containers.root_socket,
	      "/run/podman/podman.sock", CK_NULLABLE),
	K_STR("containers.run_user_dir", containers.run_user_dir, "/run/user",
	      CK_NULLABLE),
	K_PATH("containers.home_dir", containers.home_dir, "/home"),
	K_STR("containers.kmsg", containers.kmsg, "/dev/kmsg", CK_NULLABLE),
	K_UINT("containers.scan_ms", containers.scan_ms, 2000, 100, UINT_MAX),
	K_UINT("containers.reconnect_ms", containers.reconnect_ms, 1000, 10,
	       UINT_MAX),
	K_UINT("containers.catchup_slack_s", containers.catchup_slack_s, 10, 1,
	       86400),
	K_UINT("containers.restart_loop_deaths",
	       containers.restart_loop_deaths, 5, 2, 1000),
	K_UINT("containers.restart_loop_window_s",
	       containers.restart_loop_window_s, 300, 1, 86400),
	K_UINT("containers.reason_window_s", containers.reason_window_s, 120,
	       0, 86400),
	K_BOOL("containers.peer_check", containers.peer_check, true),

	K_BOOL("alerts.enabled", alerts.enabled, false),
	K_PATHS("alerts.cert_thresholds", alerts.cert_thresholds,
		alerts.n_cert_thresholds, cfg_cert_thresholds_def, CK_WORDS),
	K_PATHS("alerts.quota_levels", alerts.quota_levels,
		alerts.n_quota_levels, cfg_quota_levels_def, CK_WORDS),
	K_UINT("alerts.quota_margin", alerts.quota_margin, 5, 0, 100),
	K_UINT("alerts.quota_interval_s", alerts.quota_interval_s, 300, 0,
	       86400),
	K_PATHS("alerts.quota_command", alerts.quota_command,
		alerts.n_quota_command, cfg_quota_command_def, CK_ARGV),
	K_UINT("alerts.quota_timeout_ms", alerts.quota_timeout_ms, 30000, 100,
	       600000),
	K_STR("alerts.backup_container", alerts.backup_container, "backup",
	      CK_NULLABLE),

	K_UINT("hooks.lua_memory_kb", hooks.memory_kb, 16384, 64, UINT_MAX),
	K_UINT("hooks.timeout_ms", hooks.timeout_ms, 5000, 1, UINT_MAX),
	K_UINT("hooks.output_max", hooks.output_max, 4096, 0, UINT_MAX),
	K_PATHS("hooks.file_roots", hooks.file_roots, hooks.n_file_roots, cfg_none,
		CK_ROOT),
};
#define CFG_N_KEYS (sizeof(cfg_keys) / sizeof(cfg_keys[0]))

static char **cfg_field_str(struct config *c, const struct cfg_key *k)
{
	return (char **)((char *)c + k->off);
}

static char ***cfg_field_strv(struct config *c, const struct cfg_key *k)
{
	return (char ***)((char *)c + k->off);
}

static size_t *cfg_field_count(struct config *c, const struct cfg_key *k)
{
	return (size_t *)((char *)c + k->n_off);
}

static void cfg_strv_free(char ***vp, size_t *np)
{
	for (size_t i = 0; i < *np; i++)
		free((*vp)[i]);
	free(*vp);
	*vp = NULL;
	*np = 0;
}

static void cfg_set_default(struct config *c, const struct cfg_key *k)
{
	switch (k->type) {
	case CT_STR:
	case CT_PATH:
	case CT_ENUM: {
		char **s = cfg_field_str(c, k);

		free(*s);
		*s = k->def != NULL ? xstrdup(k->def) : NULL;
		if (k->flags & CK_HOSTNAME) {
			char host[256] = "";

			if (gethostname(host, sizeof(host) - 1) < 0 ||
			    host[0] == '\0')
				strcpy(host, "localhost");
			free(*s);
			*s = xstrdup(host);
		}
		break;
	}
	case CT_UINT:
		*(unsigned *)((char *)c + k->off) = k->udef;
		break;
	case CT_BOOL:
		*(bool *)((char *)c + k->off) = k->bdef;
		break;
	case CT_PATHS: {
		char ***v = cfg_field_strv(c, k);
		size_t *n = cfg_field_count(c, k);

		cfg_strv_free(v, n);
		while (k->defv[*n] != NULL)
			(*n)++;
		*v = xcalloc(*n ? *n : 1, sizeof(char *));
		for (size_t i = 0; i < *n; i++)
			(*v)[i] = xstrdup(k->defv[i]);
		if ((k->flags & CK_ROOT) && c->root != NULL) {
			cfg_strv_free(v, n);
			*v = xcalloc(1, sizeof(char *));
			(*v)[0] = xstrdup(c->root);
			*n = 1;
		}
		break;
	}
	}
}

struct config *config_new_default(void)
{
	struct config *c = xcalloc(1, sizeof(*c));

	for (size_t i = 0; i < CFG_N_KEYS; i++)
		cfg_set_default(c, &cfg_keys[i]);
	return c;
}

static void cfg_plugin_clear(struct config_plugin *pl)
{
	free(pl->name);
	free(pl->file);
	json_decref(pl->settings);
	json_decref(pl->settings_pos);
	memset(pl, 0, sizeof(*pl));
}

static void cfg_csockets_free(struct config *c)
{
	for (size_t i = 0; i < c->containers.n_sockets; i++)
		free(c->containers.sockets[i].path);
	free(c->containers.sockets);
	c->containers.sockets = NULL;
	c->containers.n_sockets = 0;
}

void config_free(struct config **cp)
{
	struct config *c = *cp;

	if (c == NULL)
		return;
	for (size_t i = 0; i < CFG_N_KEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (k->type == CT_PATHS)
			cfg_strv_free(cfg_field_strv(c, k), cfg_field_count(c, k));
		else if (k->type != CT_UINT && k->type != CT_BOOL)
			free(*cfg_field_str(c, k));
	}
	for (size_t i = 0; i < c->n_plugins; i++)
		cfg_plugin_clear(&c->plugins[i]);
	free(c->plugins);
	cfg_csockets_free(c);
	for (size_t i = 0; i < c->n_sections; i++)
		free(c->sections[i].key);
	free(c->sections);
	free(c->file);
	free(c);
	*cp = NULL;
}

static uint64_t cfg_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 1099511628211ull;
	return h;
}

/* A digest of a node's value: kinds, lengths and bytes, not positions
 * (a key moved, or a comment added, is no change). */
static uint64_t cfg_node_digest(const struct cfg_node *n, uint64_t h)
{
	unsigned char kind = (unsigned char)n->kind;

	h = cfg_fnv(h, &kind, 1);
	if (n->kind == CFG_SCALAR) {
		h = cfg_fnv(h, &n->len, sizeof(n->len));
		return cfg_fnv(h, n->value, n->len);
	}
	h = cfg_fnv(h, &n->n, sizeof(n->n));
	for (size_t i = 0; i < n->n; i++)
		h = cfg_node_digest(n->items[i], h);
	return h;
}

static void cfg_sections(struct config *c, const struct cfg_node *root)
{
	c->n_sections = root->n / 2;
	c->sections = xcalloc(c->n_sections + 1, sizeof(*c->sections));
	for (size_t i = 0; i < c->n_sections; i++) {
		const struct cfg_node *k = root->items[2 * i];

		c->sections[i].key = xstrndup(k->value != NULL ? k->value : "",
					      k->len);
		c->sections[i].digest = cfg_node_digest(
			root->items[2 * i + 1], 14695981039346656037ull);
	}
}

static const struct config_section *cfg_section(const struct config *c,
						const char *key)
{
	for (size_t i = 0; i < c->n_sections; i++)
		if (strcmp(c->sections[i].key, key) == 0)
			return &c->sections[i];
	return NULL;
}

static bool cfg_skipped(const char *key, const char *const *skip)
{
	for (size_t i = 0; skip != NULL && skip[i] != NULL; i++)
		if (strcmp(skip[i], key) == 0)
			return true;
	return false;
}

/* Append to buf the keys of x that y lacks, or (all_changed) also those
 * whose value differs in y. */
static void cfg_changed_from(const struct config *x, const struct config *y,
			     bool all_changed, const char *const *skip,
			     char *buf, size_t size)
{
	for (size_t i = 0; i < x->n_sections; i++) {
		const char *key = x->sections[i].key;
		const struct config_section *o = cfg_section(y, key);
		size_t used = strlen(buf);
		int n;

		if (cfg_skipped(key, skip) ||
		    (o != NULL &&
		     (!all_changed || o->digest == x->sections[i].digest)))
			continue;
		n = snprintf(buf + used, size - used, "%s%s",
			     used > 0 ? ", " : "", key);
		if (n < 0 || (size_t)n >= size - used) {
			buf[used] = '\0'; /* no cut-off key */
			return;
		}
	}
}

void config_changed_keys(const struct config *a, const struct config *b,
			 const char *const *skip, char *buf, size_t size)
{
	if (size == 0)
		return;
	buf[0] = '\0';
	cfg_changed_from(b, a, true, skip, buf, size);  /* added, edited */
	cfg_changed_from(a, b, false, skip, buf, size); /* removed */
}

const struct config_plugin *config_plugin_find(const struct config *config,
					       const char *name)
{
	for (size_t i = 0; i < config->n_plugins; i++)
		if (strcmp(config->plugins[i].name, name) == 0)
			return &config->plugins[i];
	return NULL;
}

/* ---- walking the tree --------------------------------------------------- */

struct cfg_load {
	struct cfg_parse *p;
	struct config *c;
	const struct cfg_node *seen[CFG_N_KEYS]; /* value node of each key */
};

static bool cfg_is_null(const struct cfg_node *n)
{
	return n->kind == CFG_SCALAR && n->plain &&
	       (n->len == 0 || strcmp(n->value, "~") == 0 ||
		strcmp(n->value, "null") == 0 || strcmp(n->value, "Null") == 0 ||
		strcmp(n->value, "NULL") == 0);
}

/* "a sequence", "a mapping", "nothing", "\"value\"" for messages. */
static const char *cfg_describe(const struct cfg_node *n, char *buf,
				size_t size)
{
	if (n->kind == CFG_SEQ)
		return "a sequence";
	if (n->kind == CFG_MAP)
		return "a mapping";
	if (cfg_is_null(n))
		return "an empty value";
	snprintf(buf, size, "\"%.64s\"%s", n->value,
		 n->len > 64 ? "..." : "");
	return buf;
}

static int cfg_expected(struct cfg_load *l, const struct cfg_node *n,
			const char *path, const char *what)
{
	char buf[80];

	return cfg_error(l->p, n, "%s: expected %s, got %s", path, what,
			 cfg_describe(n, buf, sizeof(buf)));
}

static const struct cfg_key *cfg_key_find(const char *path)
{
	for (size_t i = 0; i < CFG_N_KEYS; i++)
		if (strcmp(cfg_keys[i].path, path) == 0)
			return &cfg_keys[i];
	return NULL;
}

/* Whether `path` is a section: some key is "path.something". */
static bool cfg_is_section(const char *path)
{
	size_t len = strlen(path);

	for (size_t i = 0; i < CFG_N_KEYS; i++)
		if (strncmp(cfg_keys[i].path, path, len) == 0 &&
		    cfg_keys[i].path[len] == '.')
			return true;
	return false;
}

/* A scalar string without NUL bytes; absolute when `path_only`. */
static int cfg_get_string(struct cfg_load *l, const struct cfg_node *n,
			  const char *path, bool path_only)
{
	const char *what = path_only ? "an absolute path" : "a string";

	if (n->kind != CFG_SCALAR || cfg_is_null(n))
		return cfg_expected(l, n, path, what);
	if (memchr(n->value, '\0', n->len) != NULL)
		return cfg_error(l->p, n, "%s: must not contain a NUL character",
				 path);
	if (n->len == 0)
		return cfg_error(l->p, n, "%s: must not be empty", path);
	if (path_only && n->value[0] != '/')
		return cfg_error(l->p, n,
				 "%s: must be an absolute path, got \"%.64s\"",
				 path, n->value);
	return 0;
}

static int cfg_get_bool(struct cfg_load *l, const struct cfg_node *n,
			const char *path, bool *b_r)
{
	if (n->kind == CFG_SCALAR && n->plain) {
		if (strcasecmp(n->value, "true") == 0 ||
		    strcasecmp(n->value, "yes") == 0) {
			*b_r = true;
			return 0;
		}
		if (strcasecmp(n->value, "false") == 0 ||
		    strcasecmp(n->value, "no") == 0) {
			*b_r = false;
			return 0;
		}
	}
	return cfg_expected(l, n, path, "true or false");
}

static int cfg_get_uint(struct cfg_load *l, const struct cfg_node *n,
			const struct cfg_key *k, unsigned *u_r)
{
	const char *s = n->value;
	unsigned long long v;
	char *end;

	if (n->kind != CFG_SCALAR || !n->plain || n->len == 0)
		return cfg_expected(l, n, k->path, "a number");
	if (s[0] == '-' && s[1] >= '0' && s[1] <= '9')
		return cfg_error(l->p, n, "%s: must not be negative, got %.64s",
				 k->path, s);
	for (size_t i = 0; i < n->len; i++)
		if (s[i] < '0' || s[i] > '9')
			return cfg_expected(l, n, k->path, "a number");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE || v > k->max || v < k->min)
		return cfg_error(l->p, n, "%s: %.64s is out of range (%u..%u)",
				 k->path, s, k->min, k->max);
	*u_r = (unsigned)v;
	return 0;
}

static int cfg_set_paths(struct cfg_load *l, const struct cfg_key *k,
			 const struct cfg_node *n)
{
	char ***v = cfg_field_strv(l->c, k);
	size_t *count = cfg_field_count(l->c, k);

	bool words = (k->flags & CK_WORDS) != 0;
	bool argv = (k->flags & CK_ARGV) != 0;

	if (!cfg_is_null(n) && n->kind != CFG_SEQ)
		return cfg_expected(l, n, k->path,
				    argv    ? "a sequence of arguments"
				    : words ? "a sequence of patterns"
					    : "a sequence of absolute paths");
	cfg_strv_free(v, count);
	*v = xcalloc(n->n ? n->n : 1, sizeof(char *));
	for (size_t i = 0; i < n->n; i++) {
		char item[128];
		int r;

		snprintf(item, sizeof(item), "%s[%zu]", k->path, i);
		r = cfg_get_string(l, n->items[i], item, !words && !argv);
		if (r < 0)
			return r;
		if (words) {
			const char *w = n->items[i]->value;

			if (strlen(w) > 64 ||
			    strspn(w, "abcdefghijklmnopqrstuvwxyz"
				      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789_.-*?") != strlen(w))
				return cfg_error(l->p, n->items[i],
						 "%s: invalid pattern (letters, "
						 "digits, _ . - * ?, at most "
						 "64)",
						 item);
		}
		(*v)[(*count)++] = xstrdup(n->items[i]->value);
	}
	return 0;
}

static int cfg_set(struct cfg_load *l, const struct cfg_key *k,
		   const struct cfg_node *n)
{
	char **s = cfg_field_str(l->c, k);
	unsigned u = 0;
	bool b;
	int r;

	l->seen[k - cfg_keys] = n;
	switch (k->type) {
	case CT_STR:
		if ((k->flags & CK_NULLABLE) && cfg_is_null(n)) {
			free(*s);
			*s = NULL;
			return 0;
		}
		/* fall through */
	case CT_PATH:
	case CT_ENUM:
		r = cfg_get_string(l, n, k->path, k->type == CT_PATH);
		if (r < 0)
			return r;
		if (k->type == CT_ENUM) {
			size_t i;

			for (i = 0; k->choices[i] != NULL; i++)
				if (strcmp(k->choices[i], n->value) == 0)
					break;
			if (k->choices[i] == NULL) {
				char list[128] = "";

				for (i = 0; k->choices[i] != NULL; i++)
					snprintf(list + strlen(list),
						 sizeof(list) - strlen(list),
						 "%s%s", i ? "|" : "",
						 k->choices[i]);
				return cfg_error(l->p, n,
						 "%s: invalid value \"%.64s\" "
						 "(expected %s)",
						 k->path, n->value, list);
			}
		}
		free(*s);
		*s = xstrdup(n->value);
		return 0;
	case CT_UINT:
		if ((r = cfg_get_uint(l, n, k, &u)) < 0)
			return r;
		*(unsigned *)((char *)l->c + k->off) = u;
		return 0;
	case CT_BOOL:
		if ((r = cfg_get_bool(l, n, k->path, &b)) < 0)
			return r;
		*(bool *)((char *)l->c + k->off) = b;
		return 0;
	case CT_PATHS:
		return cfg_set_paths(l, k, n);
	}
	return -EINVAL;
}

/* `settings:` as JSON: scalars as strings, sequences as arrays, mappings as
 * objects. */
static int cfg_json(struct cfg_load *l, const struct cfg_node *n,
		    json_t **json_r)
{
	json_t *j = NULL;
	int r = 0;

	*json_r = NULL;
	switch (n->kind) {
	case CFG_SCALAR:
		j = json_stringn(n->value, n->len);
		if (j == NULL)
			return cfg_error(l->p, n, "invalid string");
		break;
	case CFG_SEQ:
		j = json_array();
		for (size_t i = 0; i < n->n && r == 0; i++) {
			json_t *item;

			if ((r = cfg_json(l, n->items[i], &item)) == 0)
				json_array_append_new(j, item);
		}
		break;
	case CFG_MAP:
		j = json_object();
		for (size_t i = 0; i + 1 < n->n && r == 0; i += 2) {
			json_t *item;

			if ((r = cfg_json(l, n->items[i + 1], &item)) == 0 &&
			    json_object_set_new(j, n->items[i]->value, item) < 0)
				r = cfg_error(l->p, n->items[i],
					      "invalid key \"%.64s\"",
					      n->items[i]->value);
		}
		break;
	}
	if (j == NULL)
		return cfg_error(l->p, n, "out of memory");
	if (r < 0) {
		json_decref(j);
		return r;
	}
	*json_r = j;
	return 0;
}

/* A duration: ms, or a number with a unit (250ms, 5s, 2m, 1h), from 1 s
 * to 1 day. */
static int cfg_get_duration(struct cfg_load *l, const struct cfg_node *n,
			    const char *path, unsigned *ms_r)
{
	unsigned long long v, mul = 1;
	char *end;

	if (n->kind != CFG_SCALAR || !n->plain || n->len == 0 ||
	    n->value[0] < '0' || n->value[0] > '9')
		return cfg_expected(l, n, path,
				    "a duration (ms, or 5s, 2m, 1h)");
	errno = 0;
	v = strtoull(n->value, &end, 10);
	if (strcmp(end, "ms") == 0 || *end == '\0')
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60000;
	else if (strcmp(end, "h") == 0)
		mul = 3600000;
	else
		return cfg_expected(l, n, path,
				    "a duration (ms, or 5s, 2m, 1h)");
	if (errno == ERANGE || v > 86400000ULL / mul || v * mul < 1000)
		return cfg_error(l->p, n, "%s: %.64s is out of range (1s..24h)",
				 path, n->value);
	*ms_r = (unsigned)(v * mul);
	return 0;
}

/* A plugin name: [a-z0-9_-]{1,32}. */
static bool cfg_plugin_name_valid(const struct cfg_node *n)
{
	if (n->len < 1 || n->len > CFG_PLUGIN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n->len; i++) {
		char ch = n->value[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		      ch == '_' || ch == '-'))
			return false;
	}
	return true;
}

static int cfg_plugin_entry(struct cfg_load *l, struct config_plugin *pl,
			    const struct cfg_node *n)
{
	char path[128];
	int r;

	snprintf(path, sizeof(path), "plugins.%s", pl->name);
	if (cfg_is_null(n))
		return 0;
	if (n->kind != CFG_MAP)
		return cfg_expected(l, n, path,
				    "a mapping (enabled, settings)");
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct cfg_node *key = n->items[i], *val = n->items[i + 1];
		char sub[192];

		snprintf(sub, sizeof(sub), "%s.%s", path, key->value);
		if (strcmp(key->value, "enabled") == 0) {
			r = cfg_get_bool(l, val, sub, &pl->enabled);
			pl->enabled_set = r == 0;
		} else if (strcmp(key->value, "mode") == 0) {
			static const char *const modes[] = { "local", "fanout",
							     "shared" };
			r = -EINVAL;
			for (int m = 0; val->kind == CFG_SCALAR && m < 3; m++)
				if (strcmp(val->value, modes[m]) == 0) {
					pl->mode = (enum config_mode)m;
					r = 0;
				}
			if (r < 0)
				return cfg_expected(l, val, sub,
						    "local, fanout or shared");
		} else if (strcmp(key->value, "isolation") == 0) {
			if (val->kind == CFG_SCALAR &&
			    strcmp(val->value, "process") == 0)
				pl->isolation = CONFIG_ISOLATION_PROCESS;
			else if (val->kind == CFG_SCALAR &&
				 strcmp(val->value, "inline") == 0)
				pl->isolation = CONFIG_ISOLATION_INLINE;
			else
				return cfg_expected(l, val, sub,
						    "process or inline");
			r = 0;
		} else if (strcmp(key->value, "crash_limit") == 0) {
			const struct cfg_key k = { .path = sub, .min = 1,
						   .max = 1000 };

			r = cfg_get_uint(l, val, &k, &pl->crash_limit);
		} else if (strcmp(key->value, "crash_window") == 0) {
			r = cfg_get_duration(l, val, sub, &pl->crash_window_ms);
		} else if (strcmp(key->value, "settings") == 0) {
			if (cfg_is_null(val))
				continue;
			if (val->kind != CFG_MAP)
				return cfg_expected(l, val, sub, "a mapping");
			json_decref(pl->settings);
			pl->settings = NULL;
			r = cfg_json(l, val, &pl->settings);
			if (pl->settings == NULL)
				pl->settings = json_object();
			/* where each setting is, for the plugin's checks */
			for (size_t j = 0; r == 0 && j + 1 < val->n; j += 2)
				json_object_set_new(
					pl->settings_pos, val->items[j]->value,
					json_pack("[iiii]", val->items[j]->line,
						  val->items[j]->column,
						  val->items[j + 1]->line,
						  val->items[j + 1]->column));
		} else {
			r = cfg_error(l->p, key, "unknown key \"%.128s\"", sub);
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int cfg_plugins(struct cfg_load *l, const struct cfg_node *n)
{
	struct config *c = l->c;

	if (cfg_is_null(n))
		return 0;
	if (n->kind != CFG_MAP)
		return cfg_expected(l, n, "plugins",
				    "a mapping of plugin names");
	c->plugins = xcalloc(n->n / 2 + 1, sizeof(*c->plugins));
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		const struct cfg_node *key = n->items[i];
		struct config_plugin *pl;
		int r;

		if (!cfg_plugin_name_valid(key))
			return cfg_error(l->p, key,
					 "plugins: invalid plugin name "
					 "\"%.64s\" (expected 1 to %d of "
					 "a-z 0-9 _ -)",
					 key->value, CFG_PLUGIN_NAME_MAX);
		pl = &c->plugins[c->n_plugins++];
		pl->name = xstrdup(key->value);
		pl->enabled = true;
		pl->enabled_set = false;
		pl->crash_limit = CONFIG_CRASH_LIMIT_DEF;
		pl->crash_window_ms = CONFIG_CRASH_WINDOW_DEF_MS;
		pl->settings = json_object();
		pl->settings_pos = json_object();
		pl->file = xstrdup(l->p->file);
		pl->line = key->line;
		pl->column = key->column;
		if ((r = cfg_plugin_entry(l, pl, n->items[i + 1])) < 0)
			return r;
	}
	return 0;
}

/* `containers.sockets`: a sequence of {path: ABS, uid: N, api: libpod|docker}. */
static int cfg_csockets(struct cfg_load *l, const struct cfg_node *seq)
{
	struct config *c = l->c;

	cfg_csockets_free(c);
	if (cfg_is_null(seq))
		return 0;
	if (seq->kind != CFG_SEQ)
		return cfg_expected(l, seq, "containers.sockets",
				    "a sequence of {path, uid, api}");
	c->containers.sockets = xcalloc(seq->n ? seq->n : 1,
					sizeof(*c->containers.sockets));
	for (size_t i = 0; i < seq->n; i++) {
		const struct cfg_node *m = seq->items[i];
		struct config_csocket *cs =
			&c->containers.sockets[c->containers.n_sockets++];
		bool has_uid = false;

		if (m->kind != CFG_MAP)
			return cfg_expected(l, m, "containers.sockets[]",
					    "a mapping (path, uid, api)");
		for (size_t j = 0; j + 1 < m->n; j += 2) {
			const struct cfg_node *k = m->items[j], *v = m->items[j + 1];
			int r;

			if (strcmp(k->value, "path") == 0) {
				r = cfg_get_string(l, v, "containers.sockets[].path",
						   true);
				if (r < 0)
					return r;
				free(cs->path);
				cs->path = xstrdup(v->value);
			} else if (strcmp(k->value, "uid") == 0) {
				char *end;
				unsigned long u;

				if (v->kind != CFG_SCALAR || v->len == 0 ||
				    v->value[0] < '0' || v->value[0] > '9')
					return cfg_expected(l, v,
						"containers.sockets[].uid",
						"a uid (0 to 4294967294)");
				errno = 0;
				u = strtoul(v->value, &end, 10);
				if (errno != 0 || *end != '\0' || u >= UINT_MAX)
					return cfg_expected(l, v,
						"containers.sockets[].uid",
						"a uid (0 to 4294967294)");
				cs->uid = (unsigned)u;
				has_uid = true;
			} else if (strcmp(k->value, "api") == 0) {
				if (v->kind != CFG_SCALAR ||
				    (strcmp(v->value, "libpod") != 0 &&
				     strcmp(v->value, "docker") != 0))
					return cfg_expected(l, v,
						"containers.sockets[].api",
						"libpod|docker");
				cs->docker = strcmp(v->value, "docker") == 0;
			} else {
				return cfg_error(l->p, k,
						 "unknown key \"containers.sockets[]."
						 "%.64s\"", k->value);
			}
		}
		if (cs->path == NULL || !has_uid)
			return cfg_error(l->p, m, "containers.sockets[]: path "
					 "and uid are required");
	}
	return 0;
}

static int cfg_walk_map(struct cfg_load *l, const struct cfg_node *map,
			const char *prefix)
{
	if (cfg_is_null(map))
		return 0;
	if (map->kind != CFG_MAP)
		return cfg_expected(l, map, prefix, "a mapping");
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct cfg_node *key = map->items[i];
		const struct cfg_node *val = map->items[i + 1];
		/* a dotted key ("journal.batch: 1") must not reach a row */
		bool simple = key->len > 0 && strchr(key->value, '.') == NULL;
		const struct cfg_key *k;
		char *full;
		int r;

		full = prefix != NULL ? xasprintf("%s.%s", prefix, key->value)
				      : xstrdup(key->value);
		k = simple ? cfg_key_find(full) : NULL;
		if (k != NULL)
			r = cfg_set(l, k, val);
		else if (simple && prefix == NULL && strcmp(full, "plugins") == 0)
			r = cfg_plugins(l, val);
		else if (simple && strcmp(full, "containers.sockets") == 0)
			r = cfg_csockets(l, val);
		else if (simple && cfg_is_section(full))
			r = cfg_walk_map(l, val, full);
		else
			r = cfg_error(l->p, key, "unknown key \"%.128s\"", full);
		free(full);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The node of key `path` in the file, when it was written. */
static const struct cfg_node *cfg_seen(struct cfg_load *l, const char *path)
{
	return l->seen[cfg_key_find(path) - cfg_keys];
}

/* alerts.*: thresholds and levels parsed (alertlevel.h) and checked. */
static int cfg_finish_alerts(struct cfg_load *l)
{
	struct config *c = l->c;
	const struct cfg_node *n;
	const char *why = NULL;

	if (alertlevel_cert_thresholds(
		    (const char *const *)c->alerts.cert_thresholds,
		    c->alerts.n_cert_thresholds, c->alerts.cert_th_s,
		    &why) < 0) {
		n = cfg_seen(l, "alerts.cert_thresholds");
		return n != NULL ? cfg_error(l->p, n, "alerts.cert_thresholds: "
					     "%s", why)
				 : cfg_error_at(l->p, 1, 1, "%s", why);
	}
	if (alertlevel_quota_levels(
		    (const char *const *)c->alerts.quota_levels,
		    c->alerts.n_quota_levels, c->alerts.quota_lv, &why) < 0) {
		n = cfg_seen(l, "alerts.quota_levels");
		return n != NULL ? cfg_error(l->p, n, "alerts.quota_levels: %s",
					     why)
				 : cfg_error_at(l->p, 1, 1, "%s", why);
	}
	return 0;
}

/* Checks across keys, and defaults that depend on other keys. */
static int cfg_finish(struct cfg_load *l)
{
	struct config *c = l->c;
	int r;

	for (size_t i = 0; i < CFG_N_KEYS; i++) {
		const struct cfg_key *k = &cfg_keys[i];

		if (l->seen[i] != NULL)
			continue;
		if (k->flags & CK_ROOT)
			cfg_set_default(c, k);
		if ((k->flags & CK_IN_ROOT) && strcmp(c->root, CFG_ROOT_DEF) != 0) {
			char **s = cfg_field_str(c, k);
			char *v = xasprintf("%s%s", c->root,
					    k->def + strlen(CFG_ROOT_DEF));

			free(*s);
			*s = v;
		}
		if ((k->flags & CK_IN_LOG) &&
		    strcmp(c->paths.log, CFG_LOG_DEF) != 0) {
			char **s = cfg_field_str(c, k);
			char *v = xasprintf("%s%s", c->paths.log,
					    k->def + strlen(CFG_LOG_DEF));

			free(*s);
			*s = v;
		}
		if (k->flags & CK_EXTRA) {
			/* BIND's zones and its zone list, docker-mailserver's
			 * config: the trees of paths.bind and paths.mail */
			char ***v = cfg_field_strv(c, k);
			size_t *n = cfg_field_count(c, k);

			cfg_strv_free(v, n);
			*v = xcalloc(3, sizeof(char *));
			(*v)[0] = xasprintf("%s/zones", c->paths.bind);
			(*v)[1] = xasprintf("%s/named.conf.local", c->paths.bind);
			(*v)[2] = xasprintf("%s/docker-data/dms/config",
					    c->paths.mail);
			*n = 3;
		}
	}
	if ((r = cfg_finish_alerts(l)) < 0)
		return r;
	if (c->journal.backoff_max_ms < c->journal.backoff_ms) {
		const struct cfg_key *k = cfg_key_find("journal.backoff_max_ms");
		const struct cfg_node *n = l->seen[k - cfg_keys];

		if (n == NULL)
			n = l->seen[cfg_key_find("journal.backoff_ms") - cfg_keys];
		if (n == NULL)
			return cfg_error_at(l->p, 1, 1, "journal.backoff_max_ms "
					    "is less than journal.backoff_ms");
		return cfg_error(l->p, n,
				 "journal.backoff_max_ms (%u) is less than "
				 "journal.backoff_ms (%u)",
				 c->journal.backoff_max_ms, c->journal.backoff_ms);
	}
	return 0;
}

/* Parse `len` bytes of YAML named `file` into a config. */
static int config_parse_buffer(const char *file, const char *buf, size_t len,
			       struct config **config_r, char **error_r)
{
	struct cfg_parse p = { .file = file, .buf = buf, .len = len };
	struct cfg_load l = { .p = &p };
	struct cfg_node *root = NULL;
	int r;

	*config_r = NULL;
	if (!yaml_parser_initialize(&p.parser)) {
		*error_r = xasprintf("%s: out of memory", file);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&p.parser, (const unsigned char *)buf, len);
	r = cfg_parse_tree(&p, &root);
	yaml_parser_delete(&p.parser);
	if (r == 0 && (root == NULL || cfg_is_null(root)))
		r = root == NULL ? cfg_error_at(&p, 1, 1, "empty configuration")
				 : cfg_error(&p, root, "empty configuration");
	if (r == 0 && root->kind != CFG_MAP)
		r = cfg_expected(&l, root, "top level", "a mapping of keys");
	if (r == 0) {
		l.c = config_new_default();
		l.c->file = xstrdup(file);
		r = cfg_walk_map(&l, root, NULL);
		if (r == 0)
			r = cfg_finish(&l);
		if (r == 0)
			cfg_sections(l.c, root);
		if (r < 0)
			config_free(&l.c);
	}
	cfg_node_free(&root);
	if (r < 0) {
		*error_r = p.error != NULL ? p.error
					   : xasprintf("%s: %s", file, strerror(-r));
		return r;
	}
	*config_r = l.c;
	return 0;
}

/* Read the whole file (regular, at most CFG_MAX_SIZE bytes). */
static int cfg_read_file(const char *path, char **buf_r, size_t *len_r,
			 char **error_r)
{
	size_t len = 0;
	struct stat st;
	char *buf;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		*error_r = xasprintf("%s: %s", path, strerror(-r));
		return r;
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		*error_r = xasprintf("%s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		*error_r = xasprintf("%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > CFG_MAX_SIZE) {
		*error_r = xasprintf("%s: file too large (more than %d bytes)",
				     path, CFG_MAX_SIZE);
		close(fd);
		return -EFBIG;
	}
	buf = xmalloc((size_t)st.st_size + 1);
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			*error_r = xasprintf("%s: %s", path, strerror(-r));
			free(buf);
			close(fd);
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*buf_r = buf;
	*len_r = len;
	return 0;
}

int config_load(const char *path, struct config **config_r, char **error_r)
{
	char *buf = NULL, *error = NULL;
	size_t len = 0;
	int r;

	*config_r = NULL;
	r = cfg_read_file(path, &buf, &len, &error);
	if (r == 0) {
		r = config_parse_buffer(path, buf, len, config_r, &error);
		free(buf);
	}
	if (error_r != NULL)
		*error_r = error;
	else
		free(error);
	return r;
}

/* ---- paths -------------------------------------------------------------- */

static int cfg_check_dir(const struct config *c, const char *key,
			 const char *path, char **error_r)
{
	const char *file = c->file != NULL ? c->file : "(defaults)";
	struct stat st;

	if (stat(path, &st) < 0) {
		int r = -errno;

		*error_r = xasprintf("%s: %s: %s: %s", file, key, path,
				     strerror(-r));
		return r;
	}
	if (!S_ISDIR(st.st_mode)) {
		*error_r = xasprintf("%s: %s: %s: not a directory", file, key,
				     path);
		return -ENOTDIR;
	}
	return 0;
}

/* The folder holding `path` ("/" for "/x" and "/"). */
static char *cfg_parent(const char *path)
{
	char *s = xstrdup(path), *slash;
	size_t len = strlen(s);

	while (len > 1 && s[len - 1] == '/')
		s[--len] = '\0';
	slash = strrchr(s, '/');
	if (slash == NULL || slash == s)
		strcpy(s, "/");
	else
		*slash = '\0';
	return s;
}

int config_check_paths(const struct config *config, char **error_r)
{
	char *error = NULL, *parent;
	int r;

	r = cfg_check_dir(config, "root", config->root, &error);
	if (r == 0) {
		parent = cfg_parent(config->state_dir);
		r = cfg_check_dir(config, "state_dir (parent)", parent, &error);
		free(parent);
	}
	for (size_t i = 0; r == 0 && i < config->n_plugin_dirs; i++) {
		const char *dir = config->plugin_dirs[i];

		if (strcmp(dir, OPHOOK_PLUGINDIR) == 0 ||
		    strcmp(dir, CFG_DROPIN_PLUGINDIR) == 0)
			continue;
		r = cfg_check_dir(config, "plugin_dirs", dir, &error);
	}
	if (error_r != NULL)
		*error_r = error;
	else
		free(error);
	return r;
}
