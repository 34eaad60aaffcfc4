/* Cluster work on the MariaDB journal: fan-out polling, shared-work claims
 * and lease renewal, node heartbeats, and `ophookctl cluster status`.
 * Loop thread only.  See journal_mysql.h for the tables. */
#ifndef OPHOOK_CLUSTER_H
#define OPHOOK_CLUSTER_H

#include "config.h"
#include "control.h"

struct engine;
struct jmysql;
struct cluster;

/* Set up for engine e on journal jm: the handler modes of the plugins
 * configured fanout or shared (handler "plugin:NAME") go to jm, and the
 * cluster becomes the engine's router (engine_set_router). */
int cluster_new(struct engine *e, struct jmysql *jm, struct cluster **c_r);
/* Give back this node's old claims; start the poll and heartbeat timers. */
void cluster_start(struct cluster *c);
/* Poll soon (after a local commit). */
void cluster_kick(struct cluster *c);
/* The mode of handler `name` (local when c is NULL). */
enum config_mode cluster_mode(const struct cluster *c, const char *name);
/* Stop the timers and detach from the engine; the memory goes when libuv
 * closed them.  NULLs *c. */
void cluster_free(struct cluster **c);
/* `cluster status` (works with both backends); ctx: the struct engine. */
extern const struct control_command cluster_commands[];

#endif
