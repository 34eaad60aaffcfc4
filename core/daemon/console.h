/* The web console: an admin page served by ophookd (libmicrohttpd, its own
 * threads) on a loopback address or a Unix socket.  Every page and action
 * is a control command sent to ophookd's own control socket, the one
 * ophookctl uses: the console has no second implementation of anything.
 * Loopback needs the token of console.token_file (login form -> signed
 * session cookie, or Authorization: Bearer); a Unix socket is open to root
 * and socket_group (SO_PEERCRED), plus the token when a token_file is set;
 * without one, a member who is not root may look, not act (the control
 * socket's trust model).
 * Every POST needs the session's CSRF token; every answer carries a strict
 * Content-Security-Policy.  See ophookd.yaml(5) console. */
#ifndef OPHOOK_CONSOLE_H
#define OPHOOK_CONSOLE_H

#include "config.h"

#include <stddef.h>

struct console;

/* A file served from memory (console_assets.c, generated at build time from
 * core/daemon/console/ by embed.sh); the table ends with a NULL name. */
struct console_asset {
	const char *name;
	const char *mime;
	const unsigned char *data;
	size_t len;
};
extern const struct console_asset console_assets[];

/* Serve the console as cfg->console says (cfg->console.listen must be
 * set), sending control commands to cfg->socket.  Refuses a token file
 * that is missing, not a regular file, not root's or readable by group or
 * others (the message names the file). */
int console_start(const struct config *cfg, struct console **c_r,
		  const char **error_r);
/* Stop serving (live streams end within a quarter second); NULLs *c. */
void console_stop(struct console **c);

#endif
