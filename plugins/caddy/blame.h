/* caddy plugin: which domain conf to blame when Caddy refuses the config.
 *
 * The rules (README "Blame"): only confs that are new or changed since the
 * last configuration Caddy accepted (the "last good set", kept in the
 * plugin's state folder) can be blamed; a site address claimed by two
 * confs stays with the conf that had it first; Caddy's error text is
 * matched to confs by their full path; a blamed conf is confirmed by
 * validating the config without it.  No I/O here except blame_scan and the
 * record's load/save: the caller validates subsets through a callback. */
#ifndef OPHOOK_CADDY_BLAME_H
#define OPHOOK_CADDY_BLAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One domain conf. */
struct blame_conf {
	char *name;		/* file name in the folder ("a.test.conf") */
	char *path;		/* the folder's path + "/" + name */
	uint64_t hash;		/* FNV-1a 64 of the content; 0: unreadable */
	struct timespec mtime;
	struct timespec ctime;	/* the change time: users cannot set it */
	char **addrs;		/* normalised site addresses (blame_addr_norm) */
	size_t n_addrs;
	bool changed;		/* new or changed since the last good set */
};

/* The confs of one folder, sorted by name (Caddy's glob order); or the
 * last good set as recorded. */
struct blame_set {
	struct blame_conf *confs;
	size_t n;
};

/* Site addresses declared by a Caddyfile fragment: the keys before `{` of
 * every top-level block (several per block, separated by blanks or
 * commas, continued on the next line after a trailing comma), each
 * normalised by blame_addr_norm.  Snippets `(name)`, named routes `&(name)`
 * and the global options block are not sites.  Comments, quotes and
 * nested blocks are skipped.  *addrs_r (malloc'd strings in a malloc'd
 * array, no duplicates) and *n_r; 0 or -ENOMEM. */
int blame_addresses_parse(const char *text, size_t len, char ***addrs_r,
			  size_t *n_r);

/* A site address in the form it is compared: lower case, without a
 * leading "https://" and without a trailing ":443" (Caddy's defaults for
 * a bare host).  malloc'd, NULL on ENOMEM. */
char *blame_addr_norm(const char *addr, size_t len);

/* Read the regular files of dir whose names match glob (fnmatch), hash
 * them and parse their site addresses.  Files that cannot be read are
 * kept with hash 0 (always "changed").  0 or -errno (*error_r). */
int blame_scan(const char *dir, const char *glob, struct blame_set **set_r,
	       const char **error_r);

/* Set cur->confs[i].changed: true unless good (may be NULL: no record)
 * holds the same path with the same hash. */
void blame_mark_changed(struct blame_set *cur, const struct blame_set *good);

/* Indexes into cur of the changed confs, newest change (ctime) first, ties
 * by name.  *idx_r malloc'd (NULL when none); returns the count, or
 * (size_t)-1 on ENOMEM. */
size_t blame_candidates(const struct blame_set *cur, size_t **idx_r);

/* The site-address rule.  A changed conf c that declares an address which
 * another present conf o also declares, where o had it in the last good
 * set and c did not (or, with neither in it, o changed before c: older
 * ctime, then name), is to blame.  Returns true and sets *conf_r, *owner_r
 * (indexes into cur) and *addr_r (points into cur's strings) for the
 * newest such conf; false when there is none. */
bool blame_duplicate(const struct blame_set *cur, const struct blame_set *good,
		     size_t *conf_r, size_t *owner_r, const char **addr_r);

/* The changed conf Caddy's message names as an error location: the full
 * path "<prefix>/<name>" of one of cur's changed confs, for one of the
 * prefixes (folders as Caddy may name them), followed by ":<digit>" and
 * preceded by the start of the message, a blank, a quote, '(' or ','.
 * The earliest such location in the message wins.  Base names and paths
 * of unchanged confs are never matched.  true and *conf_r, else false. */
bool blame_message_match(const struct blame_set *cur, const char *msg,
			 const char *const *prefixes, size_t *conf_r);

/* Validate the config with only the confs where include[i] (i < cur->n)
 * is true imported.  0 valid, 1 invalid (*msg_r malloc'd or NULL),
 * -errno when it cannot be checked. */
typedef int blame_validate_fn(void *ud, const bool *include, char **msg_r);

enum blame_how {
	BLAME_DUPLICATE,	/* claims another conf's site address */
	BLAME_MESSAGE,		/* Caddy's message names it, confirmed */
	BLAME_MESSAGE_UNCONFIRMED, /* named, no way to validate without it */
	BLAME_NEWEST,		/* the newest change; valid without it */
	BLAME_BISECT,		/* the first change that breaks the config */
};

struct blame_result {
	size_t conf;		/* index into cur */
	enum blame_how how;
	size_t owner;		/* BLAME_DUPLICATE: the conf that had it */
	const char *addr;	/* BLAME_DUPLICATE: the address */
	unsigned validations;	/* how many subset validations were run */
};

/* Find the conf to blame for a refused config (msg: Caddy's message).
 * cur must have been through blame_mark_changed.  validate may be NULL
 * (subsets cannot be validated: only the site-address rule and an
 * unconfirmed message location apply).  full_fails: the whole current set
 * is known to fail validation (msg came from the validator); else it is
 * checked before bisecting.  0 and *res_r; -ENOENT when no changed conf is
 * to blame (*error_r says why); other -errno from validate. */
int blame_find(const struct blame_set *cur, const struct blame_set *good,
	       const char *msg, const char *const *prefixes,
	       blame_validate_fn *validate, void *ud, bool full_fails,
	       struct blame_result *res_r, const char **error_r);

/* The last good set, as JSON in path ({"version":1,"confs":[{"path",
 * "hash","mtime","ctime","addresses"}]}).  A missing file gives *set_r
 * NULL and 0 (no record yet).  0 or -errno (*error_r). */
int blame_record_load(const char *path, struct blame_set **set_r,
		      const char **error_r);
/* Write set to path atomically.  0 or -errno (*error_r). */
int blame_record_save(const char *path, const struct blame_set *set,
		      const char **error_r);

/* The conf of cur (or NULL) with that path. */
const struct blame_conf *blame_set_find(const struct blame_set *set,
					const char *path);

void blame_set_free(struct blame_set **setp);

#endif
