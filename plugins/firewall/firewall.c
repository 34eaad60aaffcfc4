/* firewall: keeps the server's open ports equal to what the settings and
 * the panel's enabled modules ask for (ufw or csf backend), and applies
 * firewall.block / firewall.unblock events, expiring temporary blocks
 * itself (state in state_dir, across restarts).
 *
 * Only rules ophook made are ever removed: ufw rules carry a comment
 * starting with "ophook:", csf ports added by ophook are recorded in the
 * state file.  Per-user deny lists (user.denylist.changed) are Caddy's and
 * are never subscribed to here.  See plugins/firewall/README.md. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "ophook/plugin.h"
#include <ophook/safe.h>
#include "../common/plugerr.h"
#include "../common/run.h"

#define FW_RUN_TIMEOUT_MS 30000u
#define FW_REASON_MAX 64
#define FW_STATE_FILE "firewall.json"
#define FW_PROC_MAX (4u << 20) /* bytes of /proc/net/tcp{,6} read */

/* An address or network: family AF_INET/AF_INET6, the address in
 * network order (4 or 16 bytes), the prefix length.  IPv4-mapped IPv6
 * addresses are kept as IPv4. */
struct fw_net {
	int family;
	unsigned char a[16];
	unsigned plen;
};

enum fw_backend { FW_UFW, FW_CSF };

struct fw {
	struct ophook_ctx *ctx;
	const struct ophook_host *host;
	enum fw_backend backend;
	/* settings, owned by the host until fini */
	const char *const *ufw_argv, *const *csf_argv;
	const char *csf_conf, *csf_deny;
	const char *ssh_port, *panel_port, *admin_port, *ftp_range;
	const char *const *ports; /* extra ports: name, spec, ..., NULL */
	bool manage_ports;        /* converge the ports (manage_ports) */
	char *op_config, *state_path;
	pthread_mutex_t lock;
	json_t *state; /* {"blocks":{ip:{reason,expires}}, "csf_added":{KEY:[..]}} */
	char err[512];
	/* refusals (README "What is never blocked") */
	const char *const *admin_networks;
	unsigned min_prefix4, min_prefix6;
	int64_t max_ttl;
	const char *proc_tcp[2]; /* /proc/net/tcp and tcp6 (tests change them) */
	/* expiry: a thread sleeps until the earliest block's expiry (every
	 * block's own; a shorter one re-arms it), then asks for "expire" */
	pthread_t timer;
	bool timer_on, timer_stop;
	pthread_mutex_t tlock;
	pthread_cond_t tcond; /* CLOCK_MONOTONIC */
	int64_t due_ms;       /* wall clock ms, 0: nothing due */
};

static const char *const fw_mail_ports[] = {
	"25", "465", "587", "993", "995", "143", "110", NULL
};

/* ---- validation ---------------------------------------------------- */

/* Strict IPv4/IPv6 address or CIDR check with inet_pton. */
static bool fw_ip_valid(const char *s, const char **why_r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	unsigned char addr[16];
	size_t len = s == NULL ? 0 : strlen(s);
	char *slash;
	int family;

	if (len == 0 || len >= sizeof(buf)) {
		*why_r = "field ip: empty or too long";
		return false;
	}
	memcpy(buf, s, len + 1);
	slash = strchr(buf, '/');
	if (slash != NULL)
		*slash++ = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		family = 4;
	else if (inet_pton(AF_INET6, buf, addr) == 1)
		family = 6;
	else {
		*why_r = "field ip: not an IPv4 or IPv6 address";
		return false;
	}
	if (slash != NULL) {
		unsigned long n = 0;
		size_t i, l = strlen(slash);

		if (l == 0 || l > 3) {
			*why_r = "field ip: bad prefix length";
			return false;
		}
		for (i = 0; i < l; i++) {
			if (!isdigit((unsigned char)slash[i])) {
				*why_r = "field ip: bad prefix length";
				return false;
			}
			n = n * 10 + (unsigned long)(slash[i] - '0');
		}
		if ((l > 1 && slash[0] == '0') ||
		    n > (family == 4 ? 32u : 128u)) {
			*why_r = "field ip: prefix length out of range";
			return false;
		}
	}
	return true;
}

/* Parse an address or CIDR checked by fw_ip_valid into *n (no prefix:
 * the full length). */
static int fw_net_parse(const char *s, struct fw_net *n, const char **why_r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	size_t len;

	if (!fw_ip_valid(s, why_r))
		return -EINVAL;
	memset(n, 0, sizeof(*n));
	slash = strchr(s, '/');
	len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, n->a) == 1) {
		n->family = AF_INET;
		n->plen = 32;
	} else {
		inet_pton(AF_INET6, buf, n->a);
		n->family = AF_INET6;
		n->plen = 128;
	}
	if (slash != NULL)
		n->plen = (unsigned)strtoul(slash + 1, NULL, 10);
	if (n->family == AF_INET6 &&
	    memcmp(n->a, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0 &&
	    n->plen >= 96) {
		memmove(n->a, n->a + 12, 4);
		memset(n->a + 4, 0, 12);
		n->family = AF_INET;
		n->plen -= 96;
	}
	return 0;
}

/* Do the two networks share an address (one holds the other)? */
static bool fw_net_overlap(const struct fw_net *x, const struct fw_net *y)
{
	unsigned plen = x->plen < y->plen ? x->plen : y->plen;
	unsigned full = plen / 8, rest = plen % 8;

	if (x->family != y->family)
		return false;
	if (memcmp(x->a, y->a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));

	return (x->a[full] & mask) == (y->a[full] & mask);
}

/* "ADDR/LEN" of n. */
static void fw_net_str(const struct fw_net *n, char *buf, size_t cap)
{
	char a[INET6_ADDRSTRLEN];

	inet_ntop(n->family, n->a, a, sizeof(a));
	snprintf(buf, cap, "%s/%u", a, n->plen);
}

/* ttl text: absent or "0": permanent (0); else 1..max_s seconds (the
 * expiry is computed in 64-bit ms).  -EINVAL with *why_r. */
static int fw_ttl_parse(const char *s, int64_t max_s, int64_t *ttl_r,
			char *why, size_t cap)
{
	char *end = NULL;
	long long v;

	*ttl_r = 0;
	if (s == NULL)
		return 0;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || v < 0 || v > max_s) {
		snprintf(why, cap,
			 "field ttl: '%.32s' is not 0 (permanent) or 1..%" PRId64
			 " seconds (max_ttl)",
			 s, max_s);
		return -EINVAL;
	}
	*ttl_r = v;
	return 0;
}

/* The peers of established TCP connections to one of ports in the text
 * of /proc/net/tcp (v6 false) or /proc/net/tcp6, appended to *peers_r
 * (*n_r entries).  0 or -ENOMEM. */
static int fw_proc_tcp_peers(const char *text, bool v6, const unsigned *ports,
			     size_t nports, struct fw_net **peers_r,
			     size_t *n_r)
{
	const char *line = strchr(text, '\n'); /* the header */

	while (line != NULL && *++line != '\0') {
		char local[40], remote[40];
		unsigned lport = 0, rport = 0, st = 0;
		bool ours = false;
		struct fw_net peer = { 0 };
		struct fw_net *p;

		if (sscanf(line, " %*u: %39[0-9A-Fa-f]:%x %39[0-9A-Fa-f]:%x %x",
			   local, &lport, remote, &rport, &st) == 5 &&
		    st == 1 && strlen(remote) == (v6 ? 32u : 8u)) {
			for (size_t i = 0; i < nports; i++)
				ours = ours || ports[i] == lport;
		}
		if (ours) {
			/* each 32-bit word as the kernel printed it, in host
			 * order: its bytes in memory are the address's */
			for (size_t w = 0; w < (v6 ? 4u : 1u); w++) {
				char word[9];
				uint32_t val;

				memcpy(word, remote + 8 * w, 8);
				word[8] = '\0';
				val = (uint32_t)strtoul(word, NULL, 16);
				memcpy(peer.a + 4 * w, &val, 4);
			}
			peer.family = v6 ? AF_INET6 : AF_INET;
			peer.plen = v6 ? 128 : 32;
			if (v6 && memcmp(peer.a, "\0\0\0\0\0\0\0\0\0\0\xff\xff",
					 12) == 0) {
				memmove(peer.a, peer.a + 12, 4);
				memset(peer.a + 4, 0, 12);
				peer.family = AF_INET;
				peer.plen = 32;
			}
			p = realloc(*peers_r, (*n_r + 1) * sizeof(*p));
			if (p == NULL)
				return -ENOMEM;
			p[(*n_r)++] = peer;
			*peers_r = p;
		}
		line = strchr(line, '\n');
	}
	return 0;
}

/* Refuse a block that would cut the server off: shorter than the minimum
 * prefix, or holding (or inside) loopback, one of the server's own
 * addresses, an admin network, or the peer of an SSH connection open now.
 * 0, or -EINVAL with the reason in why. */
static int fw_block_allowed(struct fw *f, const struct fw_net *blk, char *why,
			    size_t cap)
{
	static const char *const loopback[] = { "127.0.0.0/8", "::1/128",
						"0.0.0.0/32", "::/128", NULL };
	unsigned minp = blk->family == AF_INET ? f->min_prefix4 : f->min_prefix6;
	struct fw_net n, *peers = NULL;
	struct ifaddrs *ifa = NULL;
	size_t npeers = 0;
	const char *dummy;
	char nb[INET6_ADDRSTRLEN + 8];
	int ret = 0;

	if (blk->plen < minp) {
		snprintf(why, cap,
			 "field ip: a /%u block is wider than min_prefix_%s "
			 "(/%u)",
			 blk->plen, blk->family == AF_INET ? "v4" : "v6", minp);
		return -EINVAL;
	}
	for (size_t i = 0; loopback[i] != NULL; i++) {
		fw_net_parse(loopback[i], &n, &dummy);
		if (fw_net_overlap(blk, &n)) {
			snprintf(why, cap, "field ip: covers %s (loopback)",
				 loopback[i]);
			return -EINVAL;
		}
	}
	for (size_t i = 0; f->admin_networks != NULL &&
			   f->admin_networks[i] != NULL; i++) {
		if (fw_net_parse(f->admin_networks[i], &n, &dummy) == 0 &&
		    fw_net_overlap(blk, &n)) {
			snprintf(why, cap,
				 "field ip: overlaps %s (admin_networks)",
				 f->admin_networks[i]);
			return -EINVAL;
		}
	}
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i != NULL && ret == 0;
		     i = i->ifa_next) {
			if (i->ifa_addr == NULL ||
			    (i->ifa_addr->sa_family != AF_INET &&
			     i->ifa_addr->sa_family != AF_INET6))
				continue;
			memset(&n, 0, sizeof(n));
			n.family = i->ifa_addr->sa_family;
			if (n.family == AF_INET) {
				memcpy(n.a, &((struct sockaddr_in *)(void *)
						      i->ifa_addr)->sin_addr, 4);
				n.plen = 32;
			} else {
				memcpy(n.a, &((struct sockaddr_in6 *)(void *)
						      i->ifa_addr)->sin6_addr, 16);
				n.plen = 128;
			}
			if (fw_net_overlap(blk, &n)) {
				fw_net_str(&n, nb, sizeof(nb));
				snprintf(why, cap,
					 "field ip: covers %s, an address of "
					 "this server (%s)",
					 nb, i->ifa_name);
				ret = -EINVAL;
			}
		}
		freeifaddrs(ifa);
		if (ret < 0)
			return ret;
	}
	{
		unsigned port = (unsigned)strtoul(f->ssh_port, NULL, 10);

		for (int v = 0; v < 2; v++) {
			char *text = NULL;
			size_t len;

			if (f->proc_tcp[v] == NULL ||
			    ophook_file_read_nofollow(f->proc_tcp[v], FW_PROC_MAX,
						      &text, &len) < 0)
				continue;
			if (fw_proc_tcp_peers(text, v == 1, &port, 1, &peers,
					      &npeers) < 0) {
				free(text);
				free(peers);
				snprintf(why, cap, "out of memory");
				return -ENOMEM;
			}
			free(text);
		}
	}
	for (size_t i = 0; i < npeers && ret == 0; i++) {
		if (fw_net_overlap(blk, &peers[i])) {
			fw_net_str(&peers[i], nb, sizeof(nb));
			snprintf(why, cap,
				 "field ip: covers %s, connected to SSH now",
				 nb);
			ret = -EINVAL;
		}
	}
	free(peers);
	return ret;
}

/* ---- expiry timer ------------------------------------------------------ */

static int64_t fw_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void fw_expire_action(struct ophook_ctx *ctx, void *data);

/* Wake the expiry thread at wall clock at_ms unless it wakes earlier. */
static void fw_timer_arm(struct fw *f, int64_t at_ms)
{
	pthread_mutex_lock(&f->tlock);
	if (f->due_ms == 0 || at_ms < f->due_ms) {
		f->due_ms = at_ms;
		pthread_cond_signal(&f->tcond);
	}
	pthread_mutex_unlock(&f->tlock);
}

static void *fw_timer_main(void *arg)
{
	struct fw *f = arg;

	pthread_mutex_lock(&f->tlock);
	while (!f->timer_stop) {
		int64_t now = fw_wall_ms(), wait;
		struct timespec ts;

		if (f->due_ms == 0) {
			pthread_cond_wait(&f->tcond, &f->tlock);
			continue;
		}
		if (now >= f->due_ms) {
			f->due_ms = 0;
			pthread_mutex_unlock(&f->tlock);
			/* fw_expire re-arms for the next one */
			f->host->request_action(f->ctx, "expire", 0,
						fw_expire_action, f);
			pthread_mutex_lock(&f->tlock);
			continue;
		}
		/* at most a minute: the wall clock may be set meanwhile */
		wait = f->due_ms - now;
		if (wait > 60000)
			wait = 60000;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(wait / 1000);
		ts.tv_nsec += (long)(wait % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&f->tcond, &f->tlock, &ts);
	}
	pthread_mutex_unlock(&f->tlock);
	return NULL;
}

/* Printable ASCII without quotes/backslash/'#', at most FW_REASON_MAX. */
static void fw_reason_sanitize(const char *in, char out[FW_REASON_MAX + 1])
{
	size_t n = 0;

	for (; in != NULL && *in != '\0' && n < FW_REASON_MAX; in++) {
		unsigned char c = (unsigned char)*in;

		if (c < 0x20 || c > 0x7e || c == '"' || c == '\'' ||
		    c == '\\' || c == '`' || c == '#')
			c = '_';
		out[n++] = (char)c;
	}
	out[n] = '\0';
	if (n == 0)
		strcpy(out, "none");
}

/* A port spec "22", "40000:50000", optionally "/tcp" or "/udp". */
static bool fw_port_valid(const char *s)
{
	unsigned long a = 0, b = 0;
	const char *p = s;
	bool range = false;

	if (s == NULL || *s == '\0' || strlen(s) > 20)
		return false;
	for (; *p != '\0' && *p != '/'; p++) {
		if (*p == ':' && !range && p != s) {
			range = true;
			continue;
		}
		if (!isdigit((unsigned char)*p))
			return false;
		if (range)
			b = b * 10 + (unsigned long)(*p - '0');
		else
			a = a * 10 + (unsigned long)(*p - '0');
		if (a > 65535 || b > 65535)
			return false;
	}
	if (a == 0 || (range && (b == 0 || b < a)))
		return false;
	if (*p == '/')
		return strcmp(p, "/tcp") == 0 || strcmp(p, "/udp") == 0;
	return true;
}

/* ---- wanted set -------------------------------------------------------- */

/* Does the INI text have `enabled_modules` listing `mod`? */
static bool fw_module_enabled(const char *ini, const char *mod)
{
	const char *line = ini;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		const char *p = line;

		while (p < line + len && isspace((unsigned char)*p))
			p++;
		if (strncmp(p, "enabled_modules", 15) == 0) {
			p += 15;
			while (p < line + len && isspace((unsigned char)*p))
				p++;
			if (p < line + len && *p == '=') {
				p++;
				while (p < line + len) {
					const char *q;

					while (p < line + len &&
					       (isspace((unsigned char)*p) ||
						*p == ','))
						p++;
					q = p;
					while (q < line + len && *q != ',' &&
					       !isspace((unsigned char)*q))
						q++;
					if ((size_t)(q - p) == strlen(mod) &&
					    strncmp(p, mod, (size_t)(q - p)) == 0)
						return true;
					p = q;
				}
			}
		}
		line = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* Add "spec" (default proto tcp) with a name to the wanted object. */
static int fw_want_add(json_t *want, const char *spec, const char *name)
{
	char key[32];

	if (!fw_port_valid(spec))
		return -EINVAL;
	if (strchr(spec, '/') != NULL)
		snprintf(key, sizeof(key), "%s", spec);
	else
		snprintf(key, sizeof(key), "%s/tcp", spec);
	return json_object_set_new(want, key, json_string(name)) == 0 ?
		0 : -ENOMEM;
}

/* The wanted port set as a JSON object "port/proto" -> name.  ini may be
 * NULL (no openpanel.config: no optional modules). */
static int fw_wanted(struct fw *f, const char *ini, json_t **want_r,
		     const char **error_r)
{
	json_t *want = json_object();
	char ftp[64];
	char *save = NULL, *tok;
	int ret = 0;

	if (want == NULL)
		return -ENOMEM;
	if (fw_want_add(want, f->ssh_port, "ssh") < 0 ||
	    fw_want_add(want, f->panel_port, "panel") < 0 ||
	    fw_want_add(want, f->admin_port, "admin") < 0) {
		*error_r = "setting ssh_port/panel_port/admin_port: bad port";
		ret = -EINVAL;
		goto out;
	}
	snprintf(ftp, sizeof(ftp), "%s", f->ftp_range);
	for (tok = strtok_r(ftp, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		if (*tok == '\0')
			continue;
		if (fw_want_add(want, tok, "ftp") < 0) {
			*error_r = "setting ftp_range: bad port or range";
			ret = -EINVAL;
			goto out;
		}
	}
	if (ini != NULL && fw_module_enabled(ini, "dns")) {
		fw_want_add(want, "53/tcp", "dns");
		fw_want_add(want, "53/udp", "dns");
	}
	if (ini != NULL && (fw_module_enabled(ini, "mail") ||
			    fw_module_enabled(ini, "emails"))) {
		for (size_t i = 0; fw_mail_ports[i] != NULL; i++)
			fw_want_add(want, fw_mail_ports[i], "mail");
	}
	for (size_t i = 0; f->ports != NULL && f->ports[i] != NULL; i += 2) {
		if (fw_want_add(want, f->ports[i + 1], f->ports[i]) < 0) {
			*error_r = "setting ports: bad port spec";
			ret = -EINVAL;
			goto out;
		}
	}
out:
	if (ret < 0)
		json_decref(want);
	else
		*want_r = want;
	return ret;
}

/* ---- running commands ---------------------------------------------- */

static int fw_run(struct fw *f, const char *const *base,
		  const char *const *args,
		  char **out_r)
{
	const char *argv[64];
	size_t n = 0;
	char *out = NULL, *err = NULL;
	const char *why = NULL;
	int status = 0, ret;

	for (size_t i = 0; base[i] != NULL && n < 40; i++)
		argv[n++] = base[i];
	for (size_t i = 0; args[i] != NULL && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	ret = run_argv(argv, NULL, FW_RUN_TIMEOUT_MS, &out, &err, &status,
		       &why);
	if (ret < 0) {
		f->host->log(f->ctx, OPHOOK_LOG_ERROR, "%s: %s", argv[0], why);
		free(out);
		free(err);
		return ret;
	}
	if (status != 0) {
		f->host->log(f->ctx, OPHOOK_LOG_WARN, "%s %s exited %d: %.200s",
			     argv[0], args[0], status, err ? err : "");
		ret = -EIO;
	}
	free(err);
	if (out_r != NULL)
		*out_r = out;
	else
		free(out);
	return ret;
}

/* ---- state ------------------------------------------------------------ */

static json_t *fw_state_obj(struct fw *f, const char *key)
{
	json_t *o = json_object_get(f->state, key);

	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(f->state, key, o);
	}
	return o;
}

static int fw_state_save(struct fw *f)
{
	char *text = json_dumps(f->state, JSON_SORT_KEYS | JSON_INDENT(1));
	int ret;

	if (text == NULL)
		return -ENOMEM;
	ret = ophook_file_write_atomic(f->state_path, text, strlen(text), 0600);
	free(text);
	if (ret < 0)
		f->host->log(f->ctx, OPHOOK_LOG_ERROR, "%s: %s", f->state_path,
			     strerror(-ret));
	return ret;
}

static void fw_state_load(struct fw *f)
{
	char *text = NULL;
	size_t len;
	json_error_t jerr;

	f->state = NULL;
	if (ophook_file_read_nofollow(f->state_path, 1 << 24, &text,
				      &len) == 0) {
		f->state = json_loads(text, 0, &jerr);
		if (!json_is_object(f->state)) {
			f->host->log(f->ctx, OPHOOK_LOG_ERROR,
				     "%s line %d: %s (starting empty)",
				     f->state_path, jerr.line, jerr.text);
			json_decref(f->state);
			f->state = NULL;
		}
	}
	free(text);
	if (f->state == NULL)
		f->state = json_object();
}

/* ---- csf.conf editing -------------------------------------------------- */

/* Split a comma list into a JSON array of strings. */
static json_t *fw_list_split(const char *s, size_t len)
{
	json_t *a = json_array();
	size_t i = 0;

	while (i < len) {
		size_t j = i;

		while (j < len && s[j] != ',')
			j++;
		if (j > i)
			json_array_append_new(a, json_stringn(s + i, j - i));
		i = j + 1;
	}
	return a;
}

static bool fw_list_has(json_t *a, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* Rewrite the `key = "a,b,c"` line of csf.conf text: add each of `add`
 * missing, drop each of `del` present; every other line and byte stays.
 * *out_r is newly allocated.  -ENOENT when the key has no line. */
static int fw_csf_edit(const char *text, const char *key, json_t *add,
		       json_t *del, char **out_r)
{
	const char *line = text;
	size_t klen = strlen(key);

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		const char *eol = end != NULL ? end : line + strlen(line);
		const char *p = line, *q1, *q2;

		if (strncmp(p, key, klen) == 0 &&
		    (p[klen] == ' ' || p[klen] == '=' || p[klen] == '\t')) {
			json_t *cur, *v, *res;
			size_t i;
			char *list = NULL, *out;
			size_t llen = 0;
			FILE *m;

			q1 = memchr(p, '"', (size_t)(eol - p));
			q2 = q1 != NULL ? memchr(q1 + 1, '"',
						 (size_t)(eol - q1 - 1)) : NULL;
			if (q2 == NULL)
				return -EINVAL;
			cur = fw_list_split(q1 + 1, (size_t)(q2 - q1 - 1));
			res = json_array();
			json_array_foreach(cur, i, v)
				if (!fw_list_has(del, json_string_value(v)))
					json_array_append(res, v);
			json_array_foreach(add, i, v)
				if (!fw_list_has(res, json_string_value(v)))
					json_array_append(res, v);
			m = open_memstream(&list, &llen);
			if (m == NULL) {
				json_decref(cur);
				json_decref(res);
				return -ENOMEM;
			}
			json_array_foreach(res, i, v)
				fprintf(m, "%s%s", i ? "," : "",
					json_string_value(v));
			fclose(m);
			json_decref(cur);
			json_decref(res);
			if (asprintf(&out, "%.*s%s%s", (int)(q1 + 1 - text),
				     text, list, q2) < 0) {
				free(list);
				return -ENOMEM;
			}
			free(list);
			*out_r = out;
			return 0;
		}
		line = end != NULL ? end + 1 : NULL;
	}
	return -ENOENT;
}

/* ---- converge ----------------------------------------------------------- */

static char *fw_read_ini(struct fw *f)
{
	char *text = NULL;
	size_t len;

	if (ophook_file_read_nofollow(f->op_config, 1 << 20, &text, &len) < 0)
		return NULL;
	return text;
}

/* ufw: the specs of ALLOW rules with an "ophook:" comment in `ufw status`
 * (v4 and v6 lines give the same spec once). */
static json_t *fw_ufw_parse_status(const char *out)
{
	json_t *have = json_object();
	const char *line = out;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		char buf[512], spec[64];

		if (len < sizeof(buf)) {
			memcpy(buf, line, len);
			buf[len] = '\0';
			if (strstr(buf, "# ophook:") != NULL &&
			    strstr(buf, "ophook: block:") == NULL &&
			    strstr(buf, "ALLOW") != NULL &&
			    sscanf(buf, "%63s", spec) == 1 &&
			    fw_port_valid(spec))
				json_object_set_new(have, spec, json_true());
		}
		line = end != NULL ? end + 1 : NULL;
	}
	return have;
}

static int fw_converge_ufw(struct fw *f, json_t *want)
{
	char *out = NULL;
	json_t *have;
	const char *spec;
	json_t *v;
	int ret, failed = 0;

	ret = fw_run(f, f->ufw_argv, (const char *[]){ "status", NULL }, &out);
	if (ret < 0) {
		free(out);
		return ret;
	}
	have = fw_ufw_parse_status(out);
	free(out);
	json_object_foreach(want, spec, v) {
		char comment[96];

		if (json_object_get(have, spec) != NULL)
			continue;
		snprintf(comment, sizeof(comment), "ophook: %s",
			 json_string_value(v));
		if (fw_run(f, f->ufw_argv, (const char *[]){
				"allow", spec, "comment", comment, NULL },
			   NULL) < 0)
			failed++;
		else
			f->host->log(f->ctx, OPHOOK_LOG_INFO, "opened %s (%s)",
				     spec, json_string_value(v));
	}
	json_object_foreach(have, spec, v) {
		if (json_object_get(want, spec) != NULL)
			continue;
		if (fw_run(f, f->ufw_argv, (const char *[]){
				"delete", "allow", spec, NULL }, NULL) < 0)
			failed++;
		else
			f->host->log(f->ctx, OPHOOK_LOG_INFO, "closed %s", spec);
	}
	json_decref(have);
	return failed ? -EIO : 0;
}

/* csf: per key (TCP_IN, TCP_OUT, UDP_IN, UDP_OUT) the ports wanted. */
static void fw_csf_wanted_keys(json_t *want, json_t *keys)
{
	const char *spec;
	json_t *v;

	json_object_foreach(want, spec, v) {
		char port[32];
		const char *slash = strchr(spec, '/');
		bool udp = slash != NULL && strcmp(slash, "/udp") == 0;
		size_t n = slash ? (size_t)(slash - spec) : strlen(spec);

		snprintf(port, sizeof(port), "%.*s", (int)n, spec);
		json_array_append_new(json_object_get(keys,
			udp ? "UDP_IN" : "TCP_IN"), json_string(port));
		json_array_append_new(json_object_get(keys,
			udp ? "UDP_OUT" : "TCP_OUT"), json_string(port));
	}
}

static int fw_converge_csf(struct fw *f, json_t *want)
{
	static const char *const keys[] = {
		"TCP_IN", "TCP_OUT", "UDP_IN", "UDP_OUT", NULL
	};
	json_t *wk = json_object(), *added = fw_state_obj(f, "csf_added");
	char *text = NULL;
	size_t len;
	int ret;
	bool changed = false;

	ret = ophook_file_read_nofollow(f->csf_conf, 1 << 22, &text, &len);
	if (ret < 0) {
		f->host->log(f->ctx, OPHOOK_LOG_ERROR, "%s: %s", f->csf_conf,
			     strerror(-ret));
		json_decref(wk);
		return ret;
	}
	for (size_t i = 0; keys[i] != NULL; i++)
		json_object_set_new(wk, keys[i], json_array());
	fw_csf_wanted_keys(want, wk);
	for (size_t i = 0; keys[i] != NULL && ret == 0; i++) {
		const char *k = keys[i];
		json_t *w = json_object_get(wk, k);
		json_t *prev = json_object_get(added, k);
		json_t *del = json_array(), *add = json_array(), *v, *cur;
		json_t *now_added = json_array();
		const char *line, *q1;
		size_t j;
		char *next = NULL;

		if (!json_is_array(prev))
			prev = NULL;
		/* present ports on the line now */
		line = strstr(text, k);
		cur = NULL;
		while (line != NULL) {
			if ((line == text || line[-1] == '\n') &&
			    (line[strlen(k)] == ' ' || line[strlen(k)] == '=')) {
				const char *eol = strchrnul(line, '\n');
				const char *q2;

				q1 = memchr(line, '"', (size_t)(eol - line));
				q2 = q1 ? memchr(q1 + 1, '"',
						 (size_t)(eol - q1 - 1)) : NULL;
				if (q2 != NULL)
					cur = fw_list_split(q1 + 1,
						(size_t)(q2 - q1 - 1));
				break;
			}
			line = strstr(line + 1, k);
		}
		if (cur == NULL) {
			json_decref(del);
			json_decref(add);
			json_decref(now_added);
			continue; /* key absent: nothing to do */
		}
		json_array_foreach(prev, j, v)
			if (!fw_list_has(w, json_string_value(v)))
				json_array_append(del, v);
			else
				json_array_append(now_added, v);
		json_array_foreach(w, j, v)
			if (!fw_list_has(cur, json_string_value(v))) {
				json_array_append(add, v);
				json_array_append(now_added, v);
			}
		if (json_array_size(add) > 0 || json_array_size(del) > 0) {
			ret = fw_csf_edit(text, k, add, del, &next);
			if (ret == 0) {
				free(text);
				text = next;
				changed = true;
			}
		}
		json_object_set_new(added, k, now_added);
		json_decref(cur);
		json_decref(add);
		json_decref(del);
	}
	json_decref(wk);
	if (ret == 0 && changed) {
		f->host->own_write(f->ctx, f->csf_conf);
		ret = ophook_file_write_atomic(f->csf_conf, text, strlen(text),
					       0600);
		if (ret == 0)
			ret = fw_run(f, f->csf_argv,
				     (const char *[]){ "-r", NULL }, NULL);
	}
	free(text);
	fw_state_save(f);
	return ret;
}

static int fw_converge(struct fw *f)
{
	char *ini = fw_read_ini(f);
	json_t *want = NULL;
	const char *why = NULL;
	int ret;

	ret = fw_wanted(f, ini, &want, &why);
	free(ini);
	if (ret < 0) {
		f->host->log(f->ctx, OPHOOK_LOG_ERROR, "%s", why);
		return ret;
	}
	pthread_mutex_lock(&f->lock);
	ret = f->backend == FW_UFW ? fw_converge_ufw(f, want) :
		fw_converge_csf(f, want);
	pthread_mutex_unlock(&f->lock);
	json_decref(want);
	return ret;
}

static void fw_converge_action(struct ophook_ctx *ctx, void *data)
{
	(void)ctx;
	fw_converge(data);
}

/* ---- blocks ---------------------------------------------------------- */

/* The backend's argv tail for a block (ttl 0 = permanent). */
static void fw_block_args(struct fw *f, const char *ip, const char *reason,
			  long ttl, const char **args, char *comment,
			  size_t csize, char *ttlbuf, size_t tsize)
{
	size_t n = 0;

	if (f->backend == FW_UFW) {
		snprintf(comment, csize, "ophook: block: %s", reason);
		args[n++] = "insert";
		args[n++] = "1";
		args[n++] = "deny";
		args[n++] = "from";
		args[n++] = ip;
		args[n++] = "comment";
		args[n++] = comment;
	} else {
		snprintf(comment, csize, "ophook: %s", reason);
		if (ttl > 0) {
			snprintf(ttlbuf, tsize, "%ld", ttl);
			args[n++] = "-td";
			args[n++] = ip;
			args[n++] = ttlbuf;
		} else {
			args[n++] = "-d";
			args[n++] = ip;
		}
		args[n++] = comment;
	}
	args[n] = NULL;
}

static int fw_block_apply(struct fw *f, const char *ip, const char *reason,
			  long ttl)
{
	const char *args[12];
	char comment[FW_REASON_MAX + 32], ttlbuf[24];
	int ret;

	fw_block_args(f, ip, reason, ttl, args, comment, sizeof(comment),
		      ttlbuf, sizeof(ttlbuf));
	ret = fw_run(f, f->backend == FW_UFW ? f->ufw_argv : f->csf_argv,
		     args, NULL);
	if (ret == -EIO && f->backend == FW_UFW)
		/* "insert 1" fails on an empty rule list or across v4/v6. */
		ret = fw_run(f, f->ufw_argv, (const char *[]){
				"deny", "from", ip, "comment", comment, NULL },
			     NULL);
	return ret;
}

static int fw_unblock_apply(struct fw *f, const char *ip, bool temp)
{
	if (f->backend == FW_UFW)
		return fw_run(f, f->ufw_argv, (const char *[]){
				"delete", "deny", "from", ip, NULL }, NULL);
	return fw_run(f, f->csf_argv, (const char *[]){
			temp ? "-tr" : "-dr", ip, NULL }, NULL);
}

/* Remove expired blocks (emitting firewall.unblocked) and re-arm the
 * timer for the next one.  Caller holds no lock. */
static void fw_expire(struct fw *f);

static void fw_expire_action(struct ophook_ctx *ctx, void *data)
{
	(void)ctx;
	fw_expire(data);
}

static void fw_expire(struct fw *f)
{
	/* the clock the timer uses (time() may lag it by a tick) */
	time_t now = (time_t)(fw_wall_ms() / 1000);
	long long next = 0;
	json_t *blocks, *expired = json_array(), *v;
	const char *ip;
	void *tmp;
	size_t i;

	pthread_mutex_lock(&f->lock);
	blocks = fw_state_obj(f, "blocks");
	json_object_foreach_safe(blocks, tmp, ip, v) {
		long long exp = json_integer_value(json_object_get(v, "expires"));

		if (exp <= 0)
			continue;
		if (exp <= (long long)now) {
			if (fw_unblock_apply(f, ip, true) < 0)
				f->host->log(f->ctx, OPHOOK_LOG_WARN,
					     "expire %s: unblock failed", ip);
			json_array_append_new(expired, json_string(ip));
			json_object_del(blocks, ip);
		} else if (next == 0 || exp < next) {
			next = exp;
		}
	}
	if (json_array_size(expired) > 0)
		fw_state_save(f);
	pthread_mutex_unlock(&f->lock);
	json_array_foreach(expired, i, v) {
		char *fields = NULL;
		json_t *o = json_pack("{s:s, s:s}", "ip", json_string_value(v),
				      "reason", "expired");
		const char *why = NULL;

		fields = o ? json_dumps(o, JSON_COMPACT) : NULL;
		if (fields == NULL ||
		    f->host->emit(f->ctx, "firewall.unblocked",
				  json_string_value(v), fields, &why) < 0)
			f->host->log(f->ctx, OPHOOK_LOG_WARN,
				     "emit firewall.unblocked: %s",
				     why ? why : "out of memory");
		free(fields);
		json_decref(o);
	}
	json_decref(expired);
	if (next > 0)
		fw_timer_arm(f, (int64_t)next * 1000);
}

static int fw_on_block(struct fw *f, const struct ophook_event *ev,
		       bool block, const char **error_r)
{
	const char *ip = f->host->event_get(ev, "ip");
	const char *ttl_s = f->host->event_get(ev, "ttl");
	const char *why = NULL;
	char reason[FW_REASON_MAX + 1];
	int64_t ttl = 0, expires = 0;
	struct fw_net net;
	char why2[256];
	json_t *blocks, *rec;
	int ret;

	if (fw_net_parse(ip, &net, &why) < 0) {
		snprintf(f->err, sizeof(f->err), "%s: %s", ev->type, why);
		*error_r = f->err;
		return -EINVAL;
	}
	if (block) {
		ret = fw_ttl_parse(ttl_s, f->max_ttl, &ttl, why2, sizeof(why2));
		if (ret == 0)
			ret = fw_block_allowed(f, &net, why2, sizeof(why2));
		if (ret < 0) {
			snprintf(f->err, sizeof(f->err), "%s %s refused: %s",
				 ev->type, ip, why2);
			*error_r = f->err;
			f->host->log(f->ctx, OPHOOK_LOG_WARN, "%s", f->err);
			return ret;
		}
		if (ttl > 0)
			expires = (fw_wall_ms() + ttl * 1000 + 999) / 1000;
	}
	fw_reason_sanitize(f->host->event_get(ev, "reason"), reason);
	pthread_mutex_lock(&f->lock);
	blocks = fw_state_obj(f, "blocks");
	rec = json_object_get(blocks, ip);
	if (block) {
		ret = fw_block_apply(f, ip, reason, (long)ttl);
		if (ret == 0) {
			json_object_set_new(blocks, ip, json_pack(
				"{s:s, s:I}", "reason", reason, "expires",
				(json_int_t)expires));
			fw_state_save(f);
		}
	} else {
		bool temp = rec != NULL &&
			json_integer_value(json_object_get(rec, "expires")) > 0;

		ret = fw_unblock_apply(f, ip, temp);
		if (rec != NULL) {
			json_object_del(blocks, ip);
			fw_state_save(f);
		}
		if (ret == -EIO && rec == NULL)
			ret = 0; /* nothing of ours to remove */
	}
	pthread_mutex_unlock(&f->lock);
	if (ret < 0) {
		snprintf(f->err, sizeof(f->err), "%s %s: firewall command failed",
			 ev->type, ip);
		*error_r = f->err;
		return ret;
	}
	if (block && expires > 0)
		fw_timer_arm(f, expires * 1000);
	return 0;
}

/* ---- plugin glue ---------------------------------------------------------- */

static void fw_free(struct fw *f)
{
	if (f == NULL)
		return;
	if (f->timer_on) {
		pthread_mutex_lock(&f->tlock);
		f->timer_stop = true;
		pthread_cond_signal(&f->tcond);
		pthread_mutex_unlock(&f->tlock);
		pthread_join(f->timer, NULL);
	}
	pthread_cond_destroy(&f->tcond);
	pthread_mutex_destroy(&f->tlock);
	free(f->op_config);
	free(f->state_path);
	json_decref(f->state);
	pthread_mutex_destroy(&f->lock);
	free(f);
}

/* plugins.firewall.settings (README "Settings"). */
static const char *const fw_backends[] = { "ufw", "csf", NULL };
static const struct ophook_setting_decl fw_settings[] = {
	{ .name = "backend", .type = OPHOOK_SETTING_ENUM,
	  .values = fw_backends, .flags = OPHOOK_SETTING_REQUIRED,
	  .description = "the firewall to drive" },
	{ .name = "ufw_argv", .type = OPHOOK_SETTING_ARGV, .def = "ufw",
	  .description = "ufw command (no shell)" },
	{ .name = "csf_argv", .type = OPHOOK_SETTING_ARGV, .def = "csf",
	  .description = "csf command (no shell)" },
	{ .name = "csf_conf", .type = OPHOOK_SETTING_PATH,
	  .def = "${paths.csf}/csf.conf", .description = "csf.conf, edited" },
	{ .name = "csf_deny", .type = OPHOOK_SETTING_PATH,
	  .def = "${paths.csf}/csf.deny", .description = "(reserved)" },
	{ .name = "openpanel_config", .type = OPHOOK_SETTING_PATH,
	  .description = "openpanel.config (default under root)" },
	{ .name = "ssh_port", .type = OPHOOK_SETTING_STRING, .def = "22",
	  .description = "SSH port" },
	{ .name = "panel_port", .type = OPHOOK_SETTING_STRING, .def = "2083",
	  .description = "OpenPanel user panel port" },
	{ .name = "admin_port", .type = OPHOOK_SETTING_STRING, .def = "2087",
	  .description = "OpenAdmin port" },
	{ .name = "ftp_range", .type = OPHOOK_SETTING_STRING,
	  .def = "21,40000:50000", .description = "FTP ports and ranges" },
	{ .name = "ports", .type = OPHOOK_SETTING_MAP,
	  .description = "extra ports: name -> port[/tcp|/udp]" },
	{ .name = "admin_networks", .type = OPHOOK_SETTING_LIST,
	  .description = "IPs or CIDRs never blocked" },
	{ .name = "min_prefix_v4", .type = OPHOOK_SETTING_INT, .def = "24",
	  .min = 0, .max = 32,
	  .description = "wider IPv4 blocks are refused" },
	{ .name = "min_prefix_v6", .type = OPHOOK_SETTING_INT, .def = "64",
	  .min = 0, .max = 128,
	  .description = "wider IPv6 blocks are refused" },
	{ .name = "max_ttl", .type = OPHOOK_SETTING_INT, .def = "31536000",
	  .min = 1, .max = 3153600000LL,
	  .description = "longest temporary block, seconds" },
	{ .name = "manage_ports", .type = OPHOOK_SETTING_BOOL, .def = "false",
	  .description = "converge the open ports (off: blocks only)" },
};

static int fw_init(struct ophook_ctx *ctx, const struct ophook_host *host,
		   void **data_r, const char **error_r)
{
	struct fw *f;
	const char *conf;
	int ret;

	if (!OPHOOK_HOST_HAS(host, setting_is_set)) {
		*error_r = "the host is too old (no settings_declare)";
		return -ENOTSUP;
	}
	ret = host->settings_declare(ctx, fw_settings,
				     sizeof(fw_settings) / sizeof(fw_settings[0]),
				     error_r);
	if (ret != 0)
		return ret; /* a bad setting, or a check-only load */
	f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	pthread_mutex_init(&f->lock, NULL);
	pthread_mutex_init(&f->tlock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&f->tcond, &ca);
		pthread_condattr_destroy(&ca);
	}
	f->ctx = ctx;
	f->host = host;
	f->backend = strcmp(host->setting_str(ctx, "backend"), "ufw") == 0
			     ? FW_UFW
			     : FW_CSF;
	f->ufw_argv = host->setting_list(ctx, "ufw_argv");
	f->csf_argv = host->setting_list(ctx, "csf_argv");
	f->csf_conf = host->setting_str(ctx, "csf_conf");
	f->csf_deny = host->setting_str(ctx, "csf_deny");
	conf = host->setting_str(ctx, "openpanel_config");
	if (conf != NULL)
		f->op_config = strdup(conf);
	else if (asprintf(&f->op_config, "%s/openpanel/conf/openpanel.config",
			  host->root(ctx)) < 0)
		f->op_config = NULL;
	f->ssh_port = host->setting_str(ctx, "ssh_port");
	f->panel_port = host->setting_str(ctx, "panel_port");
	f->admin_port = host->setting_str(ctx, "admin_port");
	f->ftp_range = host->setting_str(ctx, "ftp_range");
	f->ports = host->setting_list(ctx, "ports");
	f->admin_networks = host->setting_list(ctx, "admin_networks");
	f->min_prefix4 = (unsigned)host->setting_int(ctx, "min_prefix_v4");
	f->min_prefix6 = (unsigned)host->setting_int(ctx, "min_prefix_v6");
	f->max_ttl = host->setting_int(ctx, "max_ttl");
	f->proc_tcp[0] = "/proc/net/tcp";
	f->proc_tcp[1] = "/proc/net/tcp6";
	for (size_t i = 0; f->admin_networks != NULL &&
			   f->admin_networks[i] != NULL; i++) {
		struct fw_net n;
		const char *why = NULL;

		if (fw_net_parse(f->admin_networks[i], &n, &why) < 0) {
			ret = plug_fail(error_r, -EINVAL,
					"setting admin_networks: '%s': %s",
					f->admin_networks[i], why);
			fw_free(f);
			return ret;
		}
	}
	if (asprintf(&f->state_path, "%s/" FW_STATE_FILE,
		     host->state_dir(ctx)) < 0)
		f->state_path = NULL;
	if (f->op_config == NULL || f->state_path == NULL) {
		fw_free(f);
		return -ENOMEM;
	}
	{
		json_t *want = NULL;

		ret = fw_wanted(f, NULL, &want, error_r);
		json_decref(want);
		if (ret < 0) {
			fw_free(f);
			return ret;
		}
	}
	fw_state_load(f);
	if (pthread_create(&f->timer, NULL, fw_timer_main, f) != 0) {
		*error_r = "cannot start the expiry thread";
		fw_free(f);
		return -EAGAIN;
	}
	f->timer_on = true;
	/* ports are opened and closed only when asked for: enabling the
	 * plugin to block IPs changes no port rule */
	f->manage_ports = host->setting_bool(ctx, "manage_ports");
	if (f->manage_ports)
		host->request_action(ctx, "converge", 0, fw_converge_action, f);
	host->request_action(ctx, "expire", 0, fw_expire_action, f);
	*data_r = f;
	return 0;
}

static void fw_fini(void *data)
{
	fw_free(data);
}

static int fw_on_event(void *data, const struct ophook_event *ev,
		       const char **error_r)
{
	struct fw *f = data;

	if (strcmp(ev->type, "firewall.block") == 0)
		return fw_on_block(f, ev, true, error_r);
	if (strcmp(ev->type, "firewall.unblock") == 0)
		return fw_on_block(f, ev, false, error_r);
	if (strcmp(ev->type, "config.changed") == 0 && f->manage_ports)
		f->host->request_action(f->ctx, "converge", 200,
					fw_converge_action, f);
	return 0;
}

OPHOOK_EXPORT const struct ophook_plugin ophook_plugin = {
	OPHOOK_PLUGIN_HEADER("firewall"),
	.description = "open ports (ufw/csf) and IP blocks with expiry",
	.flags = OPHOOK_PLUGIN_SERIAL | OPHOOK_PLUGIN_DECLARES_SETTINGS,
	/* Never user.denylist.changed: per-user deny lists are Caddy's. */
	.subscriptions = (const char *const[]){
		"firewall.block", "firewall.unblock", "config.changed", NULL
	},
	.init = fw_init,
	.fini = fw_fini,
	.on_event = fw_on_event,
};
