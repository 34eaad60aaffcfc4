/* The in-flight ledger: a small memory-mapped file under state_dir listing
 * the deliveries being run right now.  If the process dies (a plugin that
 * crashes it, kill -9), the pages survive in the page cache, and the next
 * start counts each listed delivery as a failed attempt ("ophookd died
 * during this call"): a plugin that crashes the daemon on one event makes
 * that delivery dead after max_attempts restarts instead of a crash loop. */
#ifndef OPHOOK_LEDGER_H
#define OPHOOK_LEDGER_H

#include <stdint.h>

struct ledger;

/* Open (create) path with room for `slots` deliveries at once. */
int ledger_open(const char *path, unsigned slots, struct ledger **l_r,
		const char **error_r);
void ledger_close(struct ledger **l);

/* Record (event_id, handler) as running; returns a slot number, or -1 when
 * full (the call then runs unrecorded). */
int ledger_claim(struct ledger *l, int64_t event_id, const char *handler);
/* The call in `slot` ended. */
void ledger_release(struct ledger *l, int slot);

/* Entries left by a previous process: cb for each, then the ledger is
 * cleared. */
typedef void ledger_leftover_fn(int64_t event_id, const char *handler,
				void *ctx);
unsigned ledger_take_leftovers(struct ledger *l, ledger_leftover_fn *cb,
			       void *ctx);

#endif
