/* Failed-authentication limit: after `max` wrong secrets within `window`
 * seconds, every further attempt is refused without being checked until
 * `lockout` seconds have passed since the last wrong one.  Used by the
 * console for its login form and bearer tokens (a short token chosen by
 * an admin cannot be guessed over loopback at wire speed).  The clock is
 * passed in so that unit tests can move it; the caller holds any lock. */
#ifndef OPHOOK_AUTHLIMIT_H
#define OPHOOK_AUTHLIMIT_H

#include <stdbool.h>
#include <time.h>

struct authlimit {
	unsigned max;          /* wrong attempts allowed per window */
	time_t window;         /* seconds */
	time_t lockout;        /* seconds after the last wrong attempt */
	time_t window_start;
	unsigned fails;        /* wrong attempts in the current window */
	time_t locked_until;   /* 0: not locked */
	unsigned long refused; /* attempts refused while locked, all time */
};

/* A limit of `max` wrong attempts per `window` s, `lockout` s of refusal. */
void authlimit_init(struct authlimit *l, unsigned max, time_t window,
		    time_t lockout);

/* May an attempt be checked at `now`?  true, or false with the seconds
 * left in *retry_r (counted in l->refused). */
bool authlimit_allow(struct authlimit *l, time_t now, long *retry_r);

/* What a wrong attempt did, for the caller's log (once per window and
 * once per lockout, not once per attempt). */
enum authlimit_step {
	AUTHLIMIT_COUNTED, /* one more in the window */
	AUTHLIMIT_FIRST,   /* the first of a new window */
	AUTHLIMIT_LOCKED,  /* this one starts a lockout */
};

/* Count a wrong secret at `now`. */
enum authlimit_step authlimit_fail(struct authlimit *l, time_t now);

#endif
