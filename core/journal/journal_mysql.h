/* The journal on MariaDB/MySQL (libmysqlclient, InnoDB): a backend of
 * journal.c, opened by journal_open with backend "mysql" and these
 * settings, plus what a cluster of nodes needs: handler modes, fan-out
 * cursors, shared-work claims with leases, node heartbeats.  One
 * connection, used by the loop thread only.  A lost server is reconnected
 * at the next call outside a transaction.
 *
 * Inside a transaction, journal_append (ids allocated under the seq lock:
 * the newest id + 1 on), journal_delivery_add and journal_delivery_update
 * only buffer their rows; they are sent as multi-row statements at commit
 * or before any other statement, so errors such as a duplicate row come
 * from commit, and an update of a row that is gone is skipped there
 * instead of returning -ENOENT.  Outside one, each call is sent at once.
 *
 * Tables: events, deliveries (key event_id, handler, node; node '' for a
 * shared delivery, claimed_by/lease_until for its claim), cursors (node,
 * handler, last_event_id), nodes (heartbeats), seq (one row locked by
 * every transaction that appends events, so event ids become visible in
 * id order and a fan-out cursor never steps over an id still being
 * committed by another node), commit_marks (node, token: written by
 * each transaction just before its COMMIT; when the answer to a COMMIT is
 * lost, the node reconnects and reads its token back to learn whether the
 * transaction is in, so a retry does not journal its events twice).
 *
 * Errors: 0 or -errno, *error_r owned by the journal until its next call;
 * -EPIPE means the server connection was lost. */
#ifndef OPHOOK_JOURNAL_MYSQL_H
#define OPHOOK_JOURNAL_MYSQL_H

#include "journal.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct jmysql;

struct jmysql_settings {
	const char *host;          /* NULL: localhost (or socket) */
	unsigned port;             /* 0: default */
	const char *socket;        /* Unix socket, or NULL */
	const char *user;          /* NULL: current user */
	const char *password_file; /* first line is the password, or NULL */
	const char *database;      /* must exist */
	const char *node;          /* this node's name */
};

enum jmysql_mode {
	JMYSQL_LOCAL = 0,  /* this node's events only (rows keyed by node) */
	JMYSQL_FANOUT = 1, /* every node's events, per-node cursor */
	JMYSQL_SHARED = 2, /* one node runs each delivery (node '' rows) */
};

/* The MariaDB journal behind j, or NULL when j is on another backend. */
struct jmysql *journal_mysql(struct journal *j);
/* This node's name. */
const char *jmysql_node(const struct jmysql *jm);

/* Set how deliveries to `handler` are keyed (default local). */
void jmysql_set_mode(struct jmysql *jm, const char *handler,
		     enum jmysql_mode mode);

/* An event row handed out by the cluster calls, with its delivery state
 * (shared claims keep their attempts).  Free with jmysql_rows_free. */
struct jmysql_row {
	struct journal_event ev;
	struct journal_delivery d;
	char *strings;
};
void jmysql_rows_free(struct jmysql_row **rows, size_t n);

/* Fan-out: in one transaction, read up to `limit` events after this node's
 * cursor for `handler` (a new cursor starts at the newest event), add a
 * pending delivery row (node = this node) for those `match` accepts, and
 * move the cursor past all that were read.  *rows_r gets the added ones,
 * to be dispatched after the call; *more_r is true when the page was
 * full. */
int jmysql_fanout_fetch(struct jmysql *jm, const char *handler,
			unsigned limit,
			bool (*match)(const char *type, void *ctx), void *ctx,
			struct jmysql_row **rows_r, size_t *n_r, bool *more_r,
			const char **error_r);
/* Shared work: claim up to `limit` runnable shared deliveries of handler
 * (pending/failed, due, unclaimed or with an expired lease) with SELECT ...
 * FOR UPDATE SKIP LOCKED, setting claimed_by = this node and lease_until =
 * now + lease_ms. */
int jmysql_shared_claim(struct jmysql *jm, const char *handler,
			unsigned limit, unsigned lease_ms,
			struct jmysql_row **rows_r, size_t *n_r,
			const char **error_r);
/* Extend the lease of every unfinished claim of this node. */
int jmysql_shared_renew(struct jmysql *jm, unsigned lease_ms,
			const char **error_r);
/* Give back this node's unfinished claims (at start: they were in memory
 * of a previous process). */
int jmysql_shared_release(struct jmysql *jm, const char **error_r);

/* Drop this node's cursors of handlers no longer in fanout mode (their
 * lag would count forever); fanout again later starts at the newest. */
int jmysql_cursors_forget(struct jmysql *jm, const char **error_r);
/* Upsert this node's heartbeat row. */
int jmysql_heartbeat(struct jmysql *jm, int64_t started_ms,
		     const char *version, const char *last_error,
		     const char **error_r);
/* [{"name","heartbeat_ms","age_ms","alive","started_ms","version",
 * "last_error","lag","pending","failed","dead"}] for every node;
 * alive when the heartbeat is younger than dead_after_ms. */
int jmysql_cluster_status(struct jmysql *jm, int64_t dead_after_ms,
			  json_t **nodes_r, const char **error_r);

#endif
