/* Failed-authentication limit (authlimit.h). */
#include "authlimit.h"

void authlimit_init(struct authlimit *l, unsigned max, time_t window,
		    time_t lockout)
{
	*l = (struct authlimit){ .max = max > 0 ? max : 1,
				 .window = window > 0 ? window : 1,
				 .lockout = lockout > 0 ? lockout : 1 };
}

bool authlimit_allow(struct authlimit *l, time_t now, long *retry_r)
{
	if (l->locked_until != 0 && now < l->locked_until) {
		*retry_r = (long)(l->locked_until - now);
		l->refused++;
		return false;
	}
	if (l->locked_until != 0) {
		l->locked_until = 0;
		l->fails = 0;
	}
	*retry_r = 0;
	return true;
}

enum authlimit_step authlimit_fail(struct authlimit *l, time_t now)
{
	bool first = false;

	if (l->fails == 0 || now - l->window_start >= l->window ||
	    now < l->window_start) {
		l->window_start = now;
		l->fails = 0;
		first = true;
	}
	l->fails++;
	if (l->fails >= l->max && l->locked_until == 0) {
		l->locked_until = now + l->lockout;
		return AUTHLIMIT_LOCKED;
	}
	return first ? AUTHLIMIT_FIRST : AUTHLIMIT_COUNTED;
}
