/* bind9 plugin, several nodes (README "Primary and secondary"): the role,
 * node and transfer settings, and the secondary zones this node keeps for
 * the domains of the nodes listed in `primaries`. */
#ifndef OPHOOK_BIND9_SECONDARY_H
#define OPHOOK_BIND9_SECONDARY_H

#include <stdbool.h>

#include "bind9.h"

/* Read role, node, notify, allow_transfer, primaries, secondary_dir and
 * secondary_dir_in_conf into b.  0 or -errno with *error_r. */
int secondary_init(struct bind9 *b, const char **error_r);

/* The node an event comes from: its "node" field (empty: this node), or
 * the "origin_node" of an event this node's socket took in.  NULL when the
 * name is not a node name. */
const char *secondary_origin(struct bind9 *b, const struct ophook_event *ev);

/* An event from another node `from`: domain.added/removed from a node
 * listed in primaries make or drop a secondary zone; anything else is
 * ignored.  0 or -errno with *error_r. */
int secondary_event(struct bind9 *b, const struct ophook_event *ev,
		    const char *from, const char **error_r);

/* True when d is a secondary zone here (a local add or remove must not
 * touch it). */
bool secondary_is_zone(struct bind9 *b, const char *d);

/* Delete a secondary zone file and named's journal beside it. */
void secondary_unlink(struct bind9 *b, const char *path);

#endif
