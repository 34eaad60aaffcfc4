/* bind9 plugin, several nodes: a node with role secondary (or both) keeps
 * a `type slave` zone for each domain.added from a node listed in
 * primaries, named transfers it; domain.removed from that node drops the
 * zone line, and the zone file after the next reconfig (state "gone").
 * State "secondaries": zone -> {node, user}. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include <ophook/safe.h>
#include "../common/plugerr.h"
#include "../common/run.h"
#include "bind9.h"
#include "secondary.h"
#include "zone.h"

/* Delete a secondary zone file and named's journal beside it. */
void secondary_unlink(struct bind9 *b, const char *path)
{
	char *jnl = path != NULL ? plug_fmt("%s.jnl", path) : NULL;

	if (path == NULL)
		return;
	if (unlink(path) < 0 && errno != ENOENT)
		b->host->log(b->ctx, OPHOOK_LOG_WARN, "%s: %s", path,
			     strerror(errno));
	if (jnl != NULL)
		(void)unlink(jnl);
	free(jnl);
}

/* A node name: [A-Za-z0-9._-], 1..64 bytes (names go into logs and the
 * state only, never into a path or argv). */
static bool secondary_node_ok(const char *s)
{
	return strlen(s) <= 64 && bind9_hostname_ok(s);
}

/* The node an event comes from: its "node" field (empty: this node).  An
 * event this node's socket took in (`ophookctl emit`) may name another
 * origin in "origin_node", so a test or a relay can deliver another
 * node's event before a shared journal does.  NULL when the name is not a
 * node name. */
const char *secondary_origin(struct bind9 *b, const struct ophook_event *ev)
{
	const char *n = b->host->event_get(ev, "node"), *o;

	if (n == NULL || *n == '\0' || strcmp(n, b->node) == 0) {
		/* this node's name is whatever the daemon calls itself */
		if (ev->source != NULL && strcmp(ev->source, "socket") == 0 &&
		    (o = b->host->event_get(ev, "origin_node")) != NULL)
			return secondary_node_ok(o) ? o : NULL;
		return b->node;
	}
	return secondary_node_ok(n) ? n : NULL;
}

/* The secondary zone file of d, as the plugin (named false) or named sees
 * it. */
static char *secondary_path(struct bind9 *b, const char *d, bool named)
{
	return plug_fmt("%s/%s.db", named ? b->sec_named : b->sec_dir, d);
}

/* State "gone": secondary zone files to delete after the next reconfig.
 * Under b->lock; NULL on ENOMEM. */
static json_t *secondary_state_gone(struct bind9 *b)
{
	json_t *gone = json_object_get(b->state, "gone");

	if (!json_is_object(gone)) {
		gone = json_object();
		if (gone == NULL ||
		    json_object_set_new(b->state, "gone", gone) < 0)
			return NULL;
	}
	return gone;
}

static json_t *secondary_state(struct bind9 *b)
{
	json_t *sec = json_object_get(b->state, "secondaries");

	if (!json_is_object(sec)) {
		sec = json_object();
		if (sec == NULL ||
		    json_object_set_new(b->state, "secondaries", sec) < 0)
			return NULL;
	}
	return sec;
}

/* The node a secondary zone follows (state "secondaries": d -> {node,
 * user}), or NULL.  Under b->lock. */
static const char *secondary_node(struct bind9 *b, const char *d,
				  const char **user_r)
{
	json_t *e =
		json_object_get(json_object_get(b->state, "secondaries"), d);

	if (user_r != NULL)
		*user_r = json_string_value(json_object_get(e, "user"));
	return json_string_value(json_object_get(e, "node"));
}

/* The secondary zone, followed from node `from` and owned by the same
 * user, that subdomain d's records live in on the primary (the primary
 * puts a subdomain of the same user into the parent's zone: see
 * bind9_parent_zone), or NULL.  Under b->lock. */
static const char *secondary_parent(struct bind9 *b, const char *d,
				    const char *from, const char *user)
{
	if (user == NULL || *user == '\0')
		return NULL;
	for (const char *p = strchr(d, '.'); p != NULL;
	     p = strchr(p + 1, '.')) {
		const char *owner = NULL, *node;

		if (strchr(p + 1, '.') == NULL)
			break; /* a TLD */
		node = secondary_node(b, p + 1, &owner);
		if (node != NULL && strcmp(node, from) == 0 &&
		    owner != NULL && strcmp(owner, user) == 0)
			return p + 1;
	}
	return NULL;
}

/* domain.added from primary node `from` (address addr): a `type slave`
 * zone line for d, reconfig; named transfers the zone.  A zone this node
 * is the primary of is left alone (-EEXIST); a subdomain of a followed
 * zone of the same user needs none (its records come with the parent's
 * transfer). */
static int secondary_added(struct bind9 *b, const char *d, const char *from,
			   const char *addr, const char *user,
			   const char **error_r)
{
	const char *parent;
	json_t *entry;
	char *file = secondary_path(b, d, true), *line = NULL;
	char *path = bind9_zone_path(b, d), *conf = NULL, *out = NULL;
	json_t *sec;
	size_t len;
	int ret;

	if (file == NULL || path == NULL) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out_unlocked;
	}
	ret = zone_slave_line(d, addr, file, &line);
	if (ret < 0) {
		ret = plug_fail(error_r, ret, "%s: cannot write a secondary "
				 "zone line (primary \"%s\", file %s)",
				 d, addr, file);
		goto out_unlocked;
	}
	pthread_mutex_lock(&b->lock);
	sec = secondary_state(b);
	if (sec == NULL) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out;
	}
	if (bind9_state_zone(b, d) != NULL || bind9_file_exists(path)) {
		ret = plug_fail(error_r, -EEXIST,
				 "domain.added from %s: %s is a zone this "
				 "node is the primary of; no secondary zone",
				 from, d);
		goto out;
	}
	if (secondary_node(b, d, NULL) == NULL &&
	    (parent = secondary_parent(b, d, from, user)) != NULL) {
		b->host->log(b->ctx, OPHOOK_LOG_INFO,
			     "%s: a subdomain of %s (user %s): its records "
			     "come with that zone's transfer",
			     d, parent, user);
		goto out;
	}
	ret = ophook_mkdir_p(b->sec_dir, 0755);
	if (ret < 0) {
		ret = plug_fail(error_r, ret, "%s: %s", b->sec_dir,
				 strerror(-ret));
		goto out;
	}
	ret = ophook_file_read_nofollow(b->conf_path, BIND9_FILE_MAX, &conf,
					&len);
	if (ret == -ENOENT) {
		conf = strdup("");
		ret = conf == NULL ? -ENOMEM : 0;
	}
	if (ret < 0) {
		ret = plug_fail(error_r, ret, "%s: %s", b->conf_path,
				 strerror(-ret));
		goto out;
	}
	ret = zone_conf_put(conf, d, line, &out);
	if (ret < 0) {
		ret = plug_fail(error_r, ret, "out of memory");
		goto out;
	}
	if (out != NULL) {
		ret = bind9_write(b, b->conf_path, out, error_r);
		if (ret < 0)
			goto out;
	}
	entry = json_pack("{s:s,s:s?}", "node", from, "user",
			  user != NULL && *user != '\0' ? user : NULL);
	if (entry == NULL) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out;
	}
	if (json_equal(entry, json_object_get(sec, d)) &&
	    json_object_get(json_object_get(b->state, "gone"), d) == NULL) {
		json_decref(entry);
	} else {
		/* a zone added again is not deleted by an older removal's
		 * cleanup */
		json_object_del(json_object_get(b->state, "gone"), d);
		if (json_object_set_new(sec, d, entry) < 0) {
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
			goto out;
		}
		ret = bind9_state_save(b, error_r);
	}
out:
	pthread_mutex_unlock(&b->lock);
	if (ret == 0 && out != NULL) {
		b->host->log(b->ctx, OPHOOK_LOG_INFO,
			     "%s: secondary zone of %s (primary %s) added", d,
			     from, addr);
		bind9_reload_request(b, NULL);
	}
out_unlocked:
	free(out);
	free(conf);
	free(line);
	free(path);
	free(file);
	return ret;
}

/* domain.removed from node `from`: drop the secondary zone of d when it
 * came from that node (its line, then its file once named let go). */
static int secondary_removed(struct bind9 *b, const char *d, const char *from,
			     const char **error_r)
{
	const char *owner;
	char *path = NULL;
	bool changed = false;
	json_t *sec;
	int ret = 0;

	pthread_mutex_lock(&b->lock);
	sec = secondary_state(b);
	owner = secondary_node(b, d, NULL);
	if (owner == NULL || strcmp(owner, from) != 0) {
		pthread_mutex_unlock(&b->lock);
		if (owner != NULL)
			b->host->log(b->ctx, OPHOOK_LOG_INFO,
				     "%s: domain.removed from %s, but the "
				     "secondary zone follows %s: kept",
				     d, from, owner);
		return 0;
	}
	path = secondary_path(b, d, false);
	ret = path == NULL ? plug_fail(error_r, -ENOMEM, "out of memory")
			   : bind9_conf_edit(b, d, false, &changed, error_r);
	/* the file goes now (the zone may never have loaded) and again after
	 * the reconfig (named may write it until then): "gone" in the state
	 * keeps that second step across a restart */
	if (ret == 0 && json_object_set_new(secondary_state_gone(b), d,
					    json_string(path)) < 0)
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
	if (ret == 0) {
		json_object_del(sec, d);
		ret = bind9_state_save(b, error_r);
	}
	if (ret == 0) {
		b->host->own_write(b->ctx, path);
		secondary_unlink(b, path);
	}
	pthread_mutex_unlock(&b->lock);
	free(path);
	if (ret < 0)
		return ret;
	b->host->log(b->ctx, OPHOOK_LOG_INFO,
		     "%s: secondary zone of %s removed", d, from);
	bind9_reload_request(b, NULL);
	return ret;
}

/* True when d is a secondary zone here (a local add or remove must not
 * touch it). */
bool secondary_is_zone(struct bind9 *b, const char *d)
{
	bool is;

	pthread_mutex_lock(&b->lock);
	is = json_object_get(json_object_get(b->state, "secondaries"), d) !=
	     NULL;
	pthread_mutex_unlock(&b->lock);
	return is;
}

/* An event from another node: domain.added/removed from a node listed in
 * primaries make or drop a secondary zone; everything else is that
 * node's business. */
int secondary_event(struct bind9 *b, const struct ophook_event *ev,
		    const char *from, const char **error_r)
{
	const char *addr, *user, *why = NULL;
	char *d = NULL;
	bool added = strcmp(ev->type, "domain.added") == 0;
	int ret;

	if (!added && strcmp(ev->type, "domain.removed") != 0)
		return 0;
	addr = json_string_value(json_object_get(b->primaries, from));
	if (!b->secondary || addr == NULL) {
		b->host->log(b->ctx, OPHOOK_LOG_DEBUG,
			     "%s %s from node %s: %s", ev->type, ev->subject,
			     from,
			     !b->secondary ? "role has no secondary: ignored"
					   : "not one of the primaries: "
					     "ignored");
		return 0;
	}
	ret = bind9_event_domain(b, ev, &d, error_r);
	if (ret < 0)
		return ret;
	user = b->host->event_get(ev, "user");
	if (added && user != NULL && !ophook_name_valid_user(user, &why))
		ret = plug_fail(error_r, -EINVAL, "%s: field user: %s",
				 ev->type, why);
	else if (added)
		ret = secondary_added(b, d, from, addr, user, error_r);
	else
		ret = secondary_removed(b, d, from, error_r);
	free(d);
	return ret;
}

/* Each address of a list setting, checked for named.conf. */
static int secondary_addrs_ok(const char *key, const char *const *list,
			      bool port, const char **error_r)
{
	for (size_t i = 0; list != NULL && list[i] != NULL; i++) {
		char *norm = NULL;
		const char *why = NULL;
		int ret = zone_addr_norm(list[i], port, !port, &norm, &why);

		free(norm);
		if (ret == -EINVAL)
			return plug_fail(error_r, ret,
					  "setting %s: \"%s\": %s", key,
					  list[i], why);
		if (ret < 0)
			return plug_fail(error_r, ret, "out of memory");
	}
	return 0;
}

/* role, node, notify, allow_transfer, primaries, secondary_dir(_in_conf):
 * declared with bind9.c's settings and checked by the host; the node
 * names, addresses and paths for named.conf are checked here. */
int secondary_init(struct bind9 *b, const char **error_r)
{
	const struct ophook_host *h = b->host;
	const char *const *notify = h->setting_list(b->ctx, "notify");
	const char *const *xfer = h->setting_list(b->ctx, "allow_transfer");
	const char *const *map = h->setting_list(b->ctx, "primaries");
	const char *role = h->setting_str(b->ctx, "role");
	char *sec_conf = NULL;
	int ret;

	if ((ret = bind9_str(b, "node", NULL, &b->node)) < 0 ||
	    (ret = bind9_str(b, "secondary_dir", NULL, &b->sec_dir)) < 0 ||
	    (ret = bind9_str(b, "secondary_dir_in_conf", b->sec_dir,
			     &sec_conf)) < 0) {
		ret = plug_fail(error_r, ret, "out of memory");
		goto out;
	}
	b->primary = strcmp(role, "primary") == 0 || strcmp(role, "both") == 0;
	b->secondary =
		strcmp(role, "secondary") == 0 || strcmp(role, "both") == 0;
	if (b->node != NULL && !secondary_node_ok(b->node)) {
		ret = plug_fail(error_r, -EINVAL,
				 "setting node: \"%s\" is not a node name",
				 b->node);
		goto out;
	}
	if (OPHOOK_HOST_HAS(b->host, node) && b->host->node != NULL &&
	    b->host->node(b->ctx) != NULL && *b->host->node(b->ctx) != '\0') {
		/* the daemon's own name wins: its events carry it */
		const char *hn = b->host->node(b->ctx);

		if (b->node != NULL && strcmp(b->node, hn) != 0)
			b->host->log(b->ctx, OPHOOK_LOG_WARN,
				     "setting node \"%s\" ignored: the "
				     "daemon's node is \"%s\"",
				     b->node, hn);
		free(b->node);
		b->node = strdup(hn);
		if (b->node == NULL) {
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
			goto out;
		}
	}
	if (b->node == NULL) {
		char host[256] = "";

		if (gethostname(host, sizeof(host) - 1) < 0 || host[0] == '\0')
			strcpy(host, "localhost");
		b->node = strdup(host);
		if (b->node == NULL) {
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
			goto out;
		}
	}
	for (size_t l = strlen(b->sec_dir); l > 1 && b->sec_dir[l - 1] == '/';
	     l--)
		b->sec_dir[l - 1] = '\0';
	for (size_t l = strlen(sec_conf); l > 1 && sec_conf[l - 1] == '/'; l--)
		sec_conf[l - 1] = '\0';
	b->sec_named = sec_conf;
	sec_conf = NULL;
	if ((ret = bind9_path_ok("secondary_dir", b->sec_dir, error_r)) < 0 ||
	    (ret = bind9_path_ok("secondary_dir_in_conf", b->sec_named,
				 error_r)) < 0 ||
	    (ret = secondary_addrs_ok("notify", notify, true, error_r)) < 0 ||
	    (ret = secondary_addrs_ok("allow_transfer", xfer, false,
				      error_r)) < 0)
		goto out;
	ret = zone_conf_opts(notify, xfer, &b->opts);
	if (ret < 0) {
		ret = plug_fail(error_r, ret, "setting notify/allow_transfer: "
				 "%s", strerror(-ret));
		goto out;
	}
	b->primaries = json_object();
	if (b->primaries == NULL) {
		ret = plug_fail(error_r, -ENOMEM, "out of memory");
		goto out;
	}
	if (b->server_ip == NULL && b->primary)
		b->host->log(b->ctx, OPHOOK_LOG_WARN,
			     "setting server_ip is not set: domain.added "
			     "will fail until it is");
	for (size_t i = 0; map != NULL && map[i] != NULL; i += 2) {
		const char *k = map[i], *addr = map[i + 1], *why = NULL;
		char *norm = NULL;

		if (!secondary_node_ok(k)) {
			ret = plug_fail(error_r, -EINVAL,
					 "setting primaries: \"%s\" is not a "
					 "node name",
					 k);
			goto out;
		}
		ret = zone_addr_norm(addr, true, false, &norm, &why);
		if (ret < 0) {
			ret = plug_fail(error_r, ret,
					 "setting primaries.%s: \"%s\": %s", k,
					 addr, ret == -EINVAL ? why
							      : strerror(-ret));
			goto out;
		}
		if (json_object_set_new(b->primaries, k, json_string(norm)) < 0)
			ret = plug_fail(error_r, -ENOMEM, "out of memory");
		free(norm);
		if (ret < 0)
			goto out;
	}
	if (json_object_size(b->primaries) > 0 && !b->secondary)
		b->host->log(b->ctx, OPHOOK_LOG_WARN,
			     "setting primaries is set but role is %s: "
			     "other nodes' domains get no secondary zones",
			     role);
out:
	free(sec_conf);
	return ret;
}
