/* The web console: see console.h.
 *
 * libmicrohttpd runs its own threads (one per connection, at most
 * CONSOLE_MAX_CONN): nothing here touches the libuv loop.  A page's data
 * comes from GET api/ctl?cmd=C&arg=A..., an action is POST api/ctl with
 * {"cmd":C,"args":[...]}: both are relayed as one control request to the
 * daemon's control socket (read commands and actions each from a fixed
 * list); api/tail relays the `tail` stream as Server-Sent Events.
 *
 * Sessions are stateless: the cookie is "SID.EXPIRY.MAC" with MAC an
 * HMAC-SHA256 under a key drawn at start (a restart logs everyone out);
 * a session's CSRF token is HMAC(key, "csrf:" SID).  Bearer clients and
 * Unix socket peers without a token file get the CSRF token of the fixed
 * session "bearer" / "unix" from GET api/session. */
#define _GNU_SOURCE
#include "console.h"
#include "authlimit.h"
#include "control.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <grp.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define CONSOLE_MAX_CONN 32
#define CONSOLE_BODY_MAX (64 * 1024)          /* a POST body */
#define CONSOLE_REPLY_MAX (64u * 1024 * 1024) /* a control reply line */
#define CONSOLE_CTL_TIMEOUT_MS 60000
#define CONSOLE_SLICE_MS 250                  /* stop flag checked */
#define CONSOLE_PING_MS 15000                 /* SSE keep-alive */
#define CONSOLE_SESSION_S (12 * 3600)
#define CONSOLE_COOKIE "ophook_console"
/* Wrong tokens on a loopback address (login form or bearer): after
 * CONSOLE_FAIL_MAX within CONSOLE_FAIL_WINDOW_S, token checks are refused
 * with 429 until CONSOLE_LOCKOUT_S after the last wrong one.  Sessions
 * already open keep working, so a local guesser cannot lock a logged-in
 * admin out. */
#define CONSOLE_FAIL_MAX 10
#define CONSOLE_FAIL_WINDOW_S 60
#define CONSOLE_LOCKOUT_S 60
#define CONSOLE_TOKEN_MIN 16
#define CONSOLE_TOKEN_MAX 4096
#define CONSOLE_EVENTS_LIMIT_MAX 500

#define CONSOLE_CSP \
	"default-src 'none'; script-src 'self'; style-src 'self'; " \
	"img-src 'self'; connect-src 'self'; form-action 'self'; " \
	"base-uri 'none'; frame-ancestors 'none'"

struct console {
	struct MHD_Daemon *mhd;
	char *ctl_path;    /* the daemon's control socket */
	char *unix_path;   /* the console's socket, or NULL (loopback) */
	bool has_group;
	gid_t group;
	char *token;       /* NULL: no token needed (Unix socket only) */
	unsigned char key[32];
	atomic_bool stopping;
	pthread_mutex_t limit_mu; /* guards limit */
	struct authlimit limit;
};

/* One request's state across libmicrohttpd's calls. */
struct console_req {
	char *body;
	size_t len;
	bool too_big;
};

static __thread char console_errbuf[512];

static const char *console_err(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static const char *console_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(console_errbuf, sizeof(console_errbuf), fmt, ap);
	va_end(ap);
	return console_errbuf;
}

/* ---- the commands a page may run ---- */

/* Read commands (GET): name and allowed first argument (NULL: any). */
static const char *const console_read_cmds[][2] = {
	{ "status", NULL },  { "events", NULL },
	{ "metrics", NULL }, { "cluster", "status" },
	{ "hooks", "list" }, { "hooks", "lint" },
	{ "plugins", "list" }, { NULL, NULL },
};
/* Actions (POST with the CSRF token). */
static const char *const console_write_cmds[][2] = {
	{ "retry", NULL },
	{ "discard", NULL },
	{ "plugins", "enable" },
	{ "plugins", "disable" },
	{ "plugins", "reload" },
	{ "hooks", "enable" },
	{ "hooks", "disable" },
	{ NULL, NULL },
};

static bool console_cmd_allowed(const char *const list[][2], const char *cmd,
				json_t *args)
{
	const char *a0 = json_string_value(json_array_get(args, 0));

	for (size_t i = 0; list[i][0] != NULL; i++) {
		if (strcmp(list[i][0], cmd) != 0)
			continue;
		if (list[i][1] == NULL ||
		    (a0 != NULL && strcmp(list[i][1], a0) == 0))
			return true;
	}
	return false;
}

/* ---- the control socket, as a client ---- */

static int64_t console_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until fd is ready for `events`: 1, 0 on timeout_ms, -1 when the
 * console stops or on error. */
static int console_wait(struct console *c, int fd, short events,
			int timeout_ms)
{
	int64_t end = console_now_ms() + timeout_ms;

	for (;;) {
		if (atomic_load(&c->stopping))
			return -1;
		int64_t left = end - console_now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = { .fd = fd, .events = events };
		int r = poll(&p, 1, left < CONSOLE_SLICE_MS ? (int)left
							    : CONSOLE_SLICE_MS);
		if (r < 0 && errno != EINTR)
			return -1;
		if (r > 0)
			return 1;
	}
}

/* Connect to the control socket and send req (one line). */
static int console_ctl_open(struct console *c, json_t *req, int *fd_r,
			    const char **error_r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", c->ctl_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*error_r = console_err("socket: %s", strerror(errno));
		return -errno;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		*error_r = console_err("control socket %s: %s", c->ctl_path,
				       strerror(e));
		close(fd);
		return -e;
	}
	char *line = json_dumps(req, JSON_COMPACT);
	size_t len = strlen(line), off = 0;
	int ret = 0;
	line = xrealloc(line, len + 2);
	line[len++] = '\n';
	while (off < len) {
		if (console_wait(c, fd, POLLOUT, CONSOLE_CTL_TIMEOUT_MS) <= 0) {
			ret = -ETIMEDOUT;
			break;
		}
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno != EINTR && errno != EAGAIN) {
			ret = -errno;
			break;
		}
		if (n > 0)
			off += (size_t)n;
	}
	free(line);
	if (ret < 0) {
		*error_r = console_err("control socket: %s", strerror(-ret));
		close(fd);
		return ret;
	}
	*fd_r = fd;
	return 0;
}

/* Read one line from fd into *buf (without the newline, NUL-terminated);
 * data after it stays in buf (*len counts all).  0, or -errno. */
static int console_read_line(struct console *c, int fd, char **buf,
			     size_t *len, size_t *cap, size_t *line_len_r,
			     int timeout_ms)
{
	for (;;) {
		char *nl = *len > 0 ? memchr(*buf, '\n', *len) : NULL;
		if (nl != NULL) {
			*nl = '\0';
			*line_len_r = (size_t)(nl - *buf);
			return 0;
		}
		if (*len >= CONSOLE_REPLY_MAX)
			return -EMSGSIZE;
		int w = console_wait(c, fd, POLLIN, timeout_ms);
		if (w <= 0)
			return w == 0 ? -ETIMEDOUT : -ECANCELED;
		if (*cap - *len < 65536) {
			*cap = *cap * 2 + 65536;
			*buf = xrealloc(*buf, *cap);
		}
		ssize_t n = recv(fd, *buf + *len, *cap - *len - 1, 0);
		if (n == 0)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		*len += (size_t)n;
	}
}

/* Run one control command; *reply_r gets the reply object. */
static int console_ctl(struct console *c, const char *cmd, json_t *args,
		       json_t **reply_r, const char **error_r)
{
	json_t *req = json_pack("{sssOsb}", "cmd", cmd, "args", args, "json", 1);
	int fd, ret;

	ret = console_ctl_open(c, req, &fd, error_r);
	json_decref(req);
	if (ret < 0)
		return ret;
	char *buf = NULL;
	size_t len = 0, cap = 0, line_len = 0;
	ret = console_read_line(c, fd, &buf, &len, &cap, &line_len,
				CONSOLE_CTL_TIMEOUT_MS);
	close(fd);
	if (ret < 0) {
		*error_r = console_err("control socket: %s", strerror(-ret));
		free(buf);
		return ret;
	}
	json_error_t jerr;
	*reply_r = json_loadb(buf, line_len, 0, &jerr);
	free(buf);
	if (*reply_r == NULL) {
		*error_r = console_err("control socket: bad reply: %s", jerr.text);
		return -EPROTO;
	}
	return 0;
}

/* ---- tokens, sessions, CSRF ---- */

static void console_hex(const unsigned char *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

/* hex(HMAC-SHA256(key, msg)) into out[65]. */
static void console_mac(const struct console *c, const char *msg,
			char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = sizeof(md);

	HMAC(EVP_sha256(), c->key, sizeof(c->key), (const unsigned char *)msg,
	     strlen(msg), md, &mdlen);
	console_hex(md, sizeof(md), out);
}

/* Compare two strings in time independent of their contents (hashes of
 * both, compared with CRYPTO_memcmp: the length does not leak either). */
static bool console_secret_eq(const char *a, const char *b)
{
	unsigned char ha[32], hb[32];

	SHA256((const unsigned char *)a, strlen(a), ha);
	SHA256((const unsigned char *)b, strlen(b), hb);
	return CRYPTO_memcmp(ha, hb, sizeof(ha)) == 0;
}

/* The CSRF token of session `sid` into out[65]. */
static void console_csrf(const struct console *c, const char *sid,
			 char out[65])
{
	char msg[128];

	snprintf(msg, sizeof(msg), "csrf:%s", sid);
	console_mac(c, msg, out);
}

/* A new session cookie value "SID.EXPIRY.MAC" (caller frees). */
static char *console_session_new(const struct console *c)
{
	unsigned char rnd[16];
	char sid[33], mac[65];

	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return NULL;
	console_hex(rnd, sizeof(rnd), sid);
	char *body = xasprintf("%s.%" PRId64, sid, (int64_t)time(NULL) +
						   CONSOLE_SESSION_S);
	console_mac(c, body, mac);
	char *cookie = xasprintf("%s.%s", body, mac);
	free(body);
	return cookie;
}

/* Check a cookie value; sid_r[33] gets its session id. */
static bool console_session_check(const struct console *c, const char *v,
				  char sid_r[33])
{
	const char *dot2;
	char body[96], mac[65];

	if (v == NULL || strlen(v) < 34 || v[32] != '.' ||
	    (dot2 = strchr(v + 33, '.')) == NULL ||
	    (size_t)(dot2 - v) >= sizeof(body))
		return false;
	memcpy(body, v, (size_t)(dot2 - v));
	body[dot2 - v] = '\0';
	console_mac(c, body, mac);
	if (!console_secret_eq(mac, dot2 + 1))
		return false;
	char *end;
	long long exp = strtoll(v + 33, &end, 10);
	if (end != dot2 || exp < (long long)time(NULL))
		return false;
	memcpy(sid_r, v, 32);
	sid_r[32] = '\0';
	return true;
}

/* Check a token given by a client against the console's: 1 right, 0
 * wrong, -1 not checked (locked out, seconds left in *retry_r).  On a
 * loopback address, where any local process can knock, under the
 * failed-attempt limit; a Unix socket is open to root and socket_group
 * only (Caddy, holding the token), so none there: a local guesser cannot
 * lock Caddy out.  `what` names the way it came, for the log. */
static int console_token_check(struct console *c, const char *given,
			       const char *what, long *retry_r)
{
	struct timespec ts;
	int ret;

	if (c->unix_path != NULL) /* root and socket_group only: no limit */
		return given != NULL && console_secret_eq(given, c->token);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pthread_mutex_lock(&c->limit_mu);
	if (!authlimit_allow(&c->limit, ts.tv_sec, retry_r)) {
		pthread_mutex_unlock(&c->limit_mu);
		return -1;
	}
	ret = given != NULL && console_secret_eq(given, c->token) ? 1 : 0;
	if (ret == 0) {
		enum authlimit_step st = authlimit_fail(&c->limit, ts.tv_sec);

		if (st == AUTHLIMIT_LOCKED)
			log_warn("console: %d wrong tokens within %d s: token "
				 "checks refused (429) for %d s; open sessions "
				 "are not affected", CONSOLE_FAIL_MAX,
				 CONSOLE_FAIL_WINDOW_S, CONSOLE_LOCKOUT_S);
		else if (st == AUTHLIMIT_FIRST)
			log_warn("console: %s refused (wrong token); further "
				 "wrong tokens within %d s are not logged one "
				 "by one", what, CONSOLE_FAIL_WINDOW_S);
	}
	pthread_mutex_unlock(&c->limit_mu);
	return ret;
}

static void console_headers(struct MHD_Response *r, const char *mime);

/* A 429 with Retry-After. */
static enum MHD_Result console_too_many(struct MHD_Connection *conn,
					long retry)
{
	char body[160], secs[24];
	struct MHD_Response *r;

	snprintf(body, sizeof(body),
		 "{\"ok\":false,\"error\":\"too many wrong tokens: try "
		 "again in %ld s\"}", retry);
	snprintf(secs, sizeof(secs), "%ld", retry);
	r = MHD_create_response_from_buffer(strlen(body), body,
					    MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	console_headers(r, "application/json; charset=utf-8");
	MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, secs);
	enum MHD_Result ret = MHD_queue_response(conn, 429, r);
	MHD_destroy_response(r);
	return ret;
}

/* Who is asking: fills sid_r (the session whose CSRF token applies) and
 * returns 1 when the request may see the console, 0 when not, -1 when a
 * bearer token was not checked (locked out, seconds left in *retry_r). */
static int console_auth(struct console *c, struct MHD_Connection *conn,
			char sid_r[33], long *retry_r)
{
	if (c->token == NULL) {
		snprintf(sid_r, 33, "unix");
		return 1;
	}
	const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						    MHD_HTTP_HEADER_AUTHORIZATION);
	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0) {
		snprintf(sid_r, 33, "bearer");
		return console_token_check(c, h + 7, "bearer token", retry_r);
	}
	const char *ck = MHD_lookup_connection_value(conn, MHD_COOKIE_KIND,
						     CONSOLE_COOKIE);
	return console_session_check(c, ck, sid_r);
}

/* Is the peer of a Unix socket connection root or in socket_group?
 * *root_r: the peer is root (or the console is on loopback). */
static bool console_peer_ok(const struct console *c,
			    struct MHD_Connection *conn, bool *root_r)
{
	*root_r = true;
	if (c->unix_path == NULL)
		return true;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t clen = sizeof(cred);

	if (ci == NULL ||
	    getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred,
		       &clen) < 0)
		return false;
	*root_r = cred.uid == 0;
	return control_peer_allowed(cred.uid, cred.gid, c->has_group, c->group);
}

/* ---- responses ---- */

static void console_headers(struct MHD_Response *r, const char *mime)
{
	MHD_add_response_header(r, "Content-Security-Policy", CONSOLE_CSP);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(r, "X-Frame-Options", "DENY");
	MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(r, "Cache-Control", "no-store");
	if (mime != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, mime);
}

static enum MHD_Result console_send(struct MHD_Connection *conn,
				    unsigned status, const char *mime,
				    const void *data, size_t len, bool copy)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		len, (void *)data,
		copy ? MHD_RESPMEM_MUST_COPY : MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	console_headers(r, mime);
	enum MHD_Result ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* A JSON answer; obj is stolen. */
static enum MHD_Result console_json(struct MHD_Connection *conn,
				    unsigned status, json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (s == NULL)
		return MHD_NO;
	enum MHD_Result ret = console_send(conn, status,
					   "application/json; charset=utf-8",
					   s, strlen(s), true);
	free(s);
	return ret;
}

static enum MHD_Result console_error(struct MHD_Connection *conn,
				     unsigned status, const char *msg)
{
	return console_json(conn, status,
			    json_pack("{sbss}", "ok", 0, "error", msg));
}

static const struct console_asset *console_asset(const char *name)
{
	for (size_t i = 0; console_assets[i].name != NULL; i++) {
		if (strcmp(console_assets[i].name, name) == 0)
			return &console_assets[i];
	}
	return NULL;
}

static enum MHD_Result console_send_asset(struct MHD_Connection *conn,
					  unsigned status, const char *name)
{
	const struct console_asset *a = console_asset(name);

	if (a == NULL)
		return console_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	return console_send(conn, status, a->mime, a->data, a->len, false);
}

static enum MHD_Result console_redirect(struct MHD_Connection *conn,
					const char *to, const char *cookie)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(0, (void *)"",
						MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	console_headers(r, NULL);
	MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, to);
	if (cookie != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_SEE_OTHER, r);
	MHD_destroy_response(r);
	return ret;
}

/* ---- login ---- */

/* The value of `name` in an application/x-www-form-urlencoded body
 * (caller frees), or NULL. */
static char *console_form_value(const char *body, const char *name)
{
	size_t nlen = strlen(name);
	const char *p = body;

	while (p != NULL && *p != '\0') {
		const char *amp = strchr(p, '&');
		size_t len = amp != NULL ? (size_t)(amp - p) : strlen(p);
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			char *v = xstrndup(p + nlen + 1, len - nlen - 1);
			for (char *q = v; *q != '\0'; q++) {
				if (*q == '+')
					*q = ' ';
			}
			MHD_http_unescape(v);
			return v;
		}
		p = amp != NULL ? amp + 1 : NULL;
	}
	return NULL;
}

static enum MHD_Result console_login(struct console *c,
				     struct MHD_Connection *conn,
				     const struct console_req *rq)
{
	char *tok = rq->body != NULL ? console_form_value(rq->body, "token")
				     : NULL;

	if (c->token == NULL) {
		free(tok);
		return console_redirect(conn, "./", NULL);
	}
	long retry;
	int ok = console_token_check(c, tok, "login", &retry);
	if (tok != NULL)
		OPENSSL_cleanse(tok, strlen(tok));
	free(tok);
	if (ok < 0)
		return console_too_many(conn, retry);
	if (ok == 0)
		return console_send_asset(conn, MHD_HTTP_UNAUTHORIZED,
					  "login.html");
	char *sess = console_session_new(c);
	if (sess == NULL)
		return console_error(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				     "no randomness");
	char *cookie = xasprintf(CONSOLE_COOKIE "=%s; Path=/; HttpOnly; "
				 "SameSite=Strict; Max-Age=%d", sess,
				 CONSOLE_SESSION_S);
	free(sess);
	enum MHD_Result ret = console_redirect(conn, "./", cookie);
	free(cookie);
	return ret;
}

/* ---- api/ctl ---- */

struct console_args {
	json_t *args;
	const char *cmd;
};

static enum MHD_Result console_query_cb(void *cls, enum MHD_ValueKind kind,
					const char *key, const char *value)
{
	struct console_args *a = cls;

	(void)kind;
	if (key == NULL)
		return MHD_YES;
	if (strcmp(key, "cmd") == 0)
		a->cmd = value;
	else if (strcmp(key, "arg") == 0)
		json_array_append_new(a->args, json_string(value ? value : ""));
	return MHD_YES;
}

/* Every argument a string of printable text (no control characters). */
static bool console_args_ok(json_t *args)
{
	size_t i;
	json_t *v;

	if (!json_is_array(args) || json_array_size(args) > 64)
		return false;
	json_array_foreach(args, i, v) {
		const char *s = json_string_value(v);
		if (s == NULL || strlen(s) > 1024)
			return false;
		for (const char *p = s; *p != '\0'; p++) {
			if ((unsigned char)*p < 0x20)
				return false;
		}
	}
	return true;
}

/* Relay a control command; answers 200 with the reply when ok, else 422
 * (the command's error) or 502 (no daemon). */
static enum MHD_Result console_relay(struct console *c,
				     struct MHD_Connection *conn,
				     const char *cmd, json_t *args)
{
	json_t *reply = NULL;
	const char *err = NULL;

	if (console_ctl(c, cmd, args, &reply, &err) < 0)
		return console_error(conn, MHD_HTTP_BAD_GATEWAY, err);
	bool ok = json_is_true(json_object_get(reply, "ok"));
	/* the pages draw their own tables: no need for the text twice */
	if (strcmp(cmd, "events") == 0 || strcmp(cmd, "status") == 0)
		json_object_del(reply, "text");
	return console_json(conn, ok ? MHD_HTTP_OK
				     : 422, reply);
}

static enum MHD_Result console_ctl_get(struct console *c,
				       struct MHD_Connection *conn)
{
	struct console_args a = { .args = json_array() };
	enum MHD_Result ret;

	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND,
				  console_query_cb, &a);
	if (a.cmd == NULL || !console_args_ok(a.args) ||
	    !console_cmd_allowed(console_read_cmds, a.cmd, a.args))
		ret = console_error(conn, MHD_HTTP_FORBIDDEN,
				    "not a command the console may read");
	else
		ret = console_relay(c, conn, a.cmd, a.args);
	json_decref(a.args);
	return ret;
}

static enum MHD_Result console_ctl_post(struct console *c,
					struct MHD_Connection *conn,
					const struct console_req *rq)
{
	json_t *req = rq->body != NULL ? json_loads(rq->body, 0, NULL) : NULL;
	const char *cmd = json_string_value(json_object_get(req, "cmd"));
	json_t *args = json_object_get(req, "args");
	enum MHD_Result ret;

	if (cmd == NULL || !console_args_ok(args))
		ret = console_error(conn, MHD_HTTP_BAD_REQUEST,
				    "expected {\"cmd\":C,\"args\":[...]}");
	else if (!console_cmd_allowed(console_write_cmds, cmd, args))
		ret = console_error(conn, MHD_HTTP_FORBIDDEN,
				    "not an action of the console");
	else {
		log_info("console: %s %s", cmd,
			 json_string_value(json_array_get(args, 0)) ?: "");
		ret = console_relay(c, conn, cmd, args);
	}
	json_decref(req);
	return ret;
}

/* ---- api/tail: Server-Sent Events ---- */

struct console_sse {
	struct console *c;
	int fd;
	char *in;            /* control stream read so far */
	size_t in_len, in_cap;
	char *out;           /* SSE text not yet handed to MHD */
	size_t out_len, out_off;
	bool end;
};

static void console_sse_out(struct console_sse *s, const char *text)
{
	size_t n = strlen(text);

	if (s->out_off == s->out_len)
		s->out_off = s->out_len = 0;
	s->out = xrealloc(s->out, s->out_len + n + 1);
	memcpy(s->out + s->out_len, text, n + 1);
	s->out_len += n;
}

/* Turn one control line into an SSE message ({"event":E} -> id + data;
 * anything else ends the stream after an "error" message). */
static void console_sse_line(struct console_sse *s, const char *line)
{
	json_t *j = json_loads(line, 0, NULL);
	json_t *ev = json_object_get(j, "event");

	if (json_is_object(ev)) {
		char *data = json_dumps(ev, JSON_COMPACT);
		char *msg = xasprintf("id: %" JSON_INTEGER_FORMAT "\ndata: %s\n\n",
				      json_integer_value(json_object_get(ev, "id")),
				      data != NULL ? data : "{}");
		console_sse_out(s, msg);
		free(msg);
		free(data);
	} else {
		const char *err = json_string_value(json_object_get(j, "error"));
		json_t *e = json_pack("{ss}", "error", err ? err : "stream ended");
		char *data = json_dumps(e, JSON_COMPACT);
		char *msg = xasprintf("event: failure\ndata: %s\n\n", data);
		console_sse_out(s, msg);
		free(msg);
		free(data);
		json_decref(e);
		s->end = true;
	}
	json_decref(j);
}

static ssize_t console_sse_read(void *cls, uint64_t pos, char *buf,
				size_t max)
{
	struct console_sse *s = cls;

	(void)pos;
	while (s->out_off == s->out_len) {
		if (s->end || atomic_load(&s->c->stopping))
			return MHD_CONTENT_READER_END_OF_STREAM;
		size_t line_len;
		int r = console_read_line(s->c, s->fd, &s->in, &s->in_len,
					  &s->in_cap, &line_len,
					  CONSOLE_PING_MS);
		if (r == -ETIMEDOUT) {
			console_sse_out(s, ": ping\n\n");
			break;
		}
		if (r < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		console_sse_line(s, s->in);
		memmove(s->in, s->in + line_len + 1, s->in_len - line_len - 1);
		s->in_len -= line_len + 1;
	}
	size_t n = s->out_len - s->out_off;
	if (n > max)
		n = max;
	memcpy(buf, s->out + s->out_off, n);
	s->out_off += n;
	return (ssize_t)n;
}

static void console_sse_free(void *cls)
{
	struct console_sse *s = cls;

	close(s->fd);
	free(s->in);
	free(s->out);
	free(s);
}

/* GET api/tail?after=ID[&type=PATTERN]: the journal's events after ID (at
 * most 10,000), then every event as it becomes durable. */
static enum MHD_Result console_tail(struct console *c,
				    struct MHD_Connection *conn)
{
	const char *after = MHD_lookup_connection_value(
		conn, MHD_GET_ARGUMENT_KIND, "after");
	const char *type = MHD_lookup_connection_value(
		conn, MHD_GET_ARGUMENT_KIND, "type");
	json_t *args = json_array();
	const char *err = NULL;
	int fd;

	if (after != NULL && after[0] != '\0') {
		json_array_append_new(args, json_string("--after"));
		json_array_append_new(args, json_string(after));
	}
	if (type != NULL && type[0] != '\0') {
		json_array_append_new(args, json_string("--type"));
		json_array_append_new(args, json_string(type));
	}
	json_t *req = json_pack("{sssOsb}", "cmd", "tail", "args", args,
				"json", 1);
	json_decref(args);
	if (!console_args_ok(json_object_get(req, "args"))) {
		json_decref(req);
		return console_error(conn, MHD_HTTP_BAD_REQUEST, "bad argument");
	}
	int r = console_ctl_open(c, req, &fd, &err);
	json_decref(req);
	if (r < 0)
		return console_error(conn, MHD_HTTP_BAD_GATEWAY, err);
	struct console_sse *s = xcalloc(1, sizeof(*s));
	s->c = c;
	s->fd = fd;
	console_sse_out(s, "retry: 2000\n\n");
	struct MHD_Response *resp = MHD_create_response_from_callback(
		MHD_SIZE_UNKNOWN, 16384, console_sse_read, s, console_sse_free);
	if (resp == NULL) {
		console_sse_free(s);
		return MHD_NO;
	}
	console_headers(resp, "text/event-stream");
	enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* ---- routing ---- */

static enum MHD_Result console_route(struct console *c,
				     struct MHD_Connection *conn,
				     const char *url, const char *method,
				     const struct console_req *rq)
{
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	bool post = strcmp(method, "POST") == 0;
	char sid[33], csrf[65];
	bool root;

	if (!console_peer_ok(c, conn, &root))
		return console_error(conn, MHD_HTTP_FORBIDDEN,
				     "not root nor in socket_group");
	if (!get && !post)
		return console_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				     "GET or POST only");
	/* public: the login form and its style sheet */
	if (strcmp(url, "/login") == 0)
		return post ? console_login(c, conn, rq)
			    : console_send_asset(conn, MHD_HTTP_OK, "login.html");
	if (get && strcmp(url, "/console.css") == 0)
		return console_send_asset(conn, MHD_HTTP_OK, "console.css");
	if (get && strcmp(url, "/favicon.ico") == 0)
		return console_send(conn, MHD_HTTP_NO_CONTENT, NULL, "", 0, false);

	long retry;
	int authed = console_auth(c, conn, sid, &retry);
	if (authed < 0)
		return console_too_many(conn, retry);
	if (authed == 0) {
		if (get && (strcmp(url, "/") == 0 ||
			    strcmp(url, "/index.html") == 0))
			return console_redirect(conn, "login", NULL);
		return console_error(conn, MHD_HTTP_UNAUTHORIZED,
				     "log in first (or Authorization: Bearer "
				     "TOKEN)");
	}
	console_csrf(c, sid, csrf);
	if (post) {
		const char *h = MHD_lookup_connection_value(
			conn, MHD_HEADER_KIND, "X-CSRF-Token");
		if (h == NULL || !console_secret_eq(h, csrf))
			return console_error(conn, MHD_HTTP_FORBIDDEN,
					     "missing or wrong CSRF token");
		if (rq->too_big)
			return console_error(conn, 413,
					     "request body too large");
		/* the control socket's trust model: a socket_group member
		 * may look, not act, unless it holds the token */
		if (strcmp(url, "/api/ctl") == 0 && !root && c->token == NULL)
			return console_error(conn, MHD_HTTP_FORBIDDEN,
					     "actions need root or the console "
					     "token (socket_group members may "
					     "look only)");
		if (strcmp(url, "/api/ctl") == 0)
			return console_ctl_post(c, conn, rq);
		if (strcmp(url, "/logout") == 0)
			return console_redirect(conn, "login", CONSOLE_COOKIE
						"=; Path=/; HttpOnly; "
						"SameSite=Strict; Max-Age=0");
		return console_error(conn, MHD_HTTP_NOT_FOUND, "not found");
	}
	if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0)
		return console_send_asset(conn, MHD_HTTP_OK, "index.html");
	if (strcmp(url, "/console.js") == 0)
		return console_send_asset(conn, MHD_HTTP_OK, "console.js");
	if (strcmp(url, "/api/session") == 0)
		return console_json(conn, MHD_HTTP_OK,
				    json_pack("{sssb}", "csrf", csrf, "token",
					      c->token != NULL));
	if (strcmp(url, "/api/ctl") == 0)
		return console_ctl_get(c, conn);
	if (strcmp(url, "/api/tail") == 0)
		return console_tail(c, conn);
	return console_error(conn, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result console_request(void *cls, struct MHD_Connection *conn,
				       const char *url, const char *method,
				       const char *version,
				       const char *upload_data,
				       size_t *upload_data_size, void **con_cls)
{
	struct console *c = cls;
	struct console_req *rq = *con_cls;

	(void)version;
	if (rq == NULL) {
		*con_cls = xcalloc(1, sizeof(struct console_req));
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (rq->len + *upload_data_size > CONSOLE_BODY_MAX) {
			rq->too_big = true;
		} else {
			rq->body = xrealloc(rq->body,
					    rq->len + *upload_data_size + 1);
			memcpy(rq->body + rq->len, upload_data,
			       *upload_data_size);
			rq->len += *upload_data_size;
			rq->body[rq->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	return console_route(c, conn, url, method, rq);
}

static void console_request_done(void *cls, struct MHD_Connection *conn,
				 void **con_cls,
				 enum MHD_RequestTerminationCode toe)
{
	struct console_req *rq = *con_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (rq != NULL) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

/* ---- start and stop ---- */

/* Read the token file: a regular file of root's, mode 0600 or stricter. */
static int console_read_token(const char *path, char **token_r,
			      const char **error_r)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;

	if (fd < 0) {
		*error_r = console_err("console.token_file %s: %s", path,
				       strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		*error_r = console_err("console.token_file %s: not a regular "
				       "file", path);
		return -EINVAL;
	}
	if (st.st_uid != 0 || (st.st_mode & 077) != 0) {
		close(fd);
		*error_r = console_err("console.token_file %s: must be owned "
				       "by root and readable by root only "
				       "(chmod 600), is %04o uid %u", path,
				       (unsigned)(st.st_mode & 07777),
				       (unsigned)st.st_uid);
		return -EPERM;
	}
	char buf[CONSOLE_TOKEN_MAX + 1];
	ssize_t n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		*error_r = console_err("console.token_file %s: %s", path,
				       strerror(errno));
		return -EIO;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
			 buf[n - 1] == ' '))
		n--;
	buf[n] = '\0';
	if (n < CONSOLE_TOKEN_MIN || n > CONSOLE_TOKEN_MAX ||
	    strlen(buf) != (size_t)n) {
		*error_r = console_err("console.token_file %s: the token must "
				       "be %d to %d bytes of text (openssl "
				       "rand -hex 32)", path, CONSOLE_TOKEN_MIN,
				       CONSOLE_TOKEN_MAX);
		return -EINVAL;
	}
	*token_r = xstrdup(buf);
	OPENSSL_cleanse(buf, sizeof(buf));
	return 0;
}

/* A listening loopback TCP socket for "127.0.0.1:8089" / "[::1]:8089". */
static int console_listen_tcp(const char *addr, int *fd_r, bool *v6_r,
			      const char **error_r)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	char host[64];
	const char *colon = strrchr(addr, ':');
	char *end;

	if (colon == NULL || (size_t)(colon - addr) >= sizeof(host)) {
		*error_r = console_err("console.listen '%s': expected "
				       "127.0.0.1:PORT, [::1]:PORT or a "
				       "socket path", addr);
		return -EINVAL;
	}
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = '\0';
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 1 || port > 65535) {
		*error_r = console_err("console.listen '%s': bad port", addr);
		return -EINVAL;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	size_t hl = strlen(host);
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		if ((ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			goto not_loopback;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		sl = sizeof(*s4);
		*v6_r = false;
	} else if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
		host[hl - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			goto not_loopback;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		sl = sizeof(*s6);
		*v6_r = true;
	} else {
		goto not_loopback;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		*error_r = console_err("console.listen %s: %s", addr,
				       strerror(e));
		return -e;
	}
	*fd_r = fd;
	return 0;
not_loopback:
	*error_r = console_err("console.listen '%s': only loopback addresses "
			       "(127.0.0.0/8, [::1]) or a Unix socket path; "
			       "put a reverse proxy in front", addr);
	return -EINVAL;
}

/* A listening Unix socket at path, 0660 root:socket_group. */
static int console_listen_unix(struct console *c, const char *path,
			       const char *group, int *fd_r,
			       const char **error_r)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		*error_r = console_err("console.listen %s: path too long", path);
		return -ENAMETOOLONG;
	}
	if (group != NULL && group[0] != '\0') {
		struct group gr, *grp = NULL;
		char buf[16384];
		if (getgrnam_r(group, &gr, buf, sizeof(buf), &grp) != 0 ||
		    grp == NULL) {
			*error_r = console_err("socket_group '%s': no such group",
					       group);
			return -ENOENT;
		}
		c->has_group = true;
		c->group = grp->gr_gid;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			*error_r = console_err("console.listen %s: exists and "
					       "is not a socket", path);
			return -EEXIST;
		}
		unlink(path);
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	mode_t old = umask(0177); /* not reachable before chmod/chown */
	int r = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0 || chown(path, 0, c->has_group ? c->group : 0) < 0 ||
	    chmod(path, c->has_group ? 0660 : 0600) < 0 || listen(fd, 64) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		*error_r = console_err("console.listen %s: %s", path,
				       strerror(e));
		return -e;
	}
	c->unix_path = xstrdup(path);
	*fd_r = fd;
	return 0;
}

static void console_free(struct console *c)
{
	if (c->token != NULL) {
		OPENSSL_cleanse(c->token, strlen(c->token));
		free(c->token);
	}
	if (c->unix_path != NULL) {
		unlink(c->unix_path);
		free(c->unix_path);
	}
	OPENSSL_cleanse(c->key, sizeof(c->key));
	pthread_mutex_destroy(&c->limit_mu);
	free(c->ctl_path);
	free(c);
}

int console_start(const struct config *cfg, struct console **c_r,
		  const char **error_r)
{
	const char *listen_at = cfg->console.listen;
	struct console *c = xcalloc(1, sizeof(*c));
	bool unix_sock = listen_at[0] == '/', v6 = false;
	int fd = -1, ret;

	*c_r = NULL;
	atomic_init(&c->stopping, false);
	pthread_mutex_init(&c->limit_mu, NULL);
	authlimit_init(&c->limit, CONSOLE_FAIL_MAX, CONSOLE_FAIL_WINDOW_S,
		       CONSOLE_LOCKOUT_S);
	c->ctl_path = xstrdup(cfg->socket != NULL ? cfg->socket
						  : "/run/ophookd.sock");
	if (getrandom(c->key, sizeof(c->key), 0) != (ssize_t)sizeof(c->key)) {
		*error_r = "console: no randomness";
		console_free(c);
		return -EIO;
	}
	if (cfg->console.token_file != NULL) {
		ret = console_read_token(cfg->console.token_file, &c->token,
					 error_r);
		if (ret < 0) {
			console_free(c);
			return ret;
		}
	} else if (!unix_sock) {
		*error_r = "console.listen on a loopback address needs "
			   "console.token_file";
		console_free(c);
		return -EINVAL;
	}
	ret = unix_sock ? console_listen_unix(c, listen_at, cfg->socket_group,
					      &fd, error_r)
			: console_listen_tcp(listen_at, &fd, &v6, error_r);
	if (ret < 0) {
		console_free(c);
		return ret;
	}
	c->mhd = MHD_start_daemon(
		MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
			(v6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, console_request, c,
		MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONSOLE_MAX_CONN,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
		MHD_OPTION_NOTIFY_COMPLETED, console_request_done, c,
		MHD_OPTION_END);
	if (c->mhd == NULL) {
		close(fd);
		*error_r = console_err("console.listen %s: libmicrohttpd did "
				       "not start", listen_at);
		console_free(c);
		return -EIO;
	}
	log_info("console on %s%s%s", unix_sock ? "" : "http://", listen_at,
		 unix_sock ? "" : "/");
	*c_r = c;
	return 0;
}

void console_stop(struct console **cp)
{
	struct console *c = *cp;

	if (c == NULL)
		return;
	*cp = NULL;
	atomic_store(&c->stopping, true);
	MHD_stop_daemon(c->mhd);
	console_free(c);
}
