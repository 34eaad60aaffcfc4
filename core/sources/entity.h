/* Entities: a user (its folder openpanel/core/users/<name> and its panel DB
 * `users` row) and a domain (its caddy/domains/<d>.conf and its `domains`
 * row) are each ONE thing seen by two sources.  The watcher and the panel
 * DB poller hand their lifecycle events here instead of to the engine; this
 * module turns them into one event per change of the entity:
 * - user.added once: the first observation waits (merge_wait_ms) for the
 *   other, then goes with what it has; a later one does not repeat it;
 * - user.removed once, after the user's domains' domain.removed;
 * - user.renamed (from the DB) only, never a remove + add of the folders;
 * - domain.added waits for one DB poll (bounded) when its owner is not
 *   known yet, so it carries its owner; later events of the same domain
 *   queue behind it.
 * Pending user observations are kept in state_dir/entities.json (written
 * before the source records its observation as done), so a crash loses
 * none: the next start resolves them.  Loop thread only. */
#ifndef OPHOOK_ENTITY_H
#define OPHOOK_ENTITY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct engine;
struct entity;

/* Called once the observation is safe: journaled, or recorded as pending
 * in the entity state (ok), or not (ok false, error set). */
typedef void entity_done_fn(bool ok, const char *error, void *ctx);

/* What the panel DB poller tells (its committed snapshot). */
struct entity_db {
	/* polled and reachable: worth waiting for */
	bool (*active)(void *ctx);
	/* a `users` row has this real name */
	bool (*user_row)(void *ctx, const char *name);
	/* the owner of the domain is known */
	bool (*domain_owned)(void *ctx, const char *domain);
	/* call fn for each domain (present or gone) owned by user */
	void (*user_domains)(void *ctx, const char *user,
			     void (*fn)(const char *domain, void *arg),
			     void *arg);
	/* poll as soon as possible (after the running poll, if any) */
	void (*kick)(void *ctx);
	void *ctx;
};

/* What the watcher tells: the path is known (present) in its snapshot. */
struct entity_files {
	bool (*known)(void *ctx, const char *path);
	void *ctx;
};

/* Create the entity merger for engine e: load state_dir/entities.json and
 * arm its timer for what was pending.  0 or -errno with *error_r. */
int entity_new(struct engine *e, struct entity **ent_r, const char **error_r);
/* Submit what is held (held domain events go out as they are), close the
 * timer; the pending user observations stay in the state file.  NULLs
 * *ent.  Safe on NULL. */
void entity_free(struct entity **ent);

/* Set (NULL: clear) the panel DB's and the watcher's callbacks. */
void entity_set_db(struct entity *ent, const struct entity_db *db);
void entity_set_files(struct entity *ent, const struct entity_files *files);

/* Submit an event from a source (as engine_submit; payload stolen).
 * source "db" is the panel DB poller, anything else the watcher.
 * user.added / user.removed / user.renamed and domain.* go through the
 * merge; others go to the engine.  ent NULL: straight to engine e.
 * 0 or -errno with *error_r (then cb is not called). */
int entity_submit(struct entity *ent, struct engine *e, const char *type,
		  const char *subject, const char *source, json_t *payload,
		  entity_done_fn *cb, void *ctx, const char **error_r);

/* The panel DB poller committed a poll that started at mono time
 * started_ms: domain events held for an owner since then go out, pending
 * users are looked at again. */
void entity_db_polled(struct entity *ent, int64_t started_ms);

/* Number of users with a pending observation, of held domain events. */
unsigned entity_pending_users(const struct entity *ent);
unsigned entity_held_events(const struct entity *ent);

#endif
