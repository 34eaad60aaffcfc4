/* Derived alerts with memory: events that say a state crossed a threshold,
 * each an open/resolved pair, never repeated while open, remembered across
 * restarts.
 *
 *   open                          resolved by
 *   cert.expiring (each threshold) cert.expiry_resolved (renewed, replaced
 *   cert.expired                   or removed)
 *   cert.renewal_overdue           cert.renewal_resolved (renewed or
 *                                  removed)
 *   quota.exceeded (each level)    quota.recovered (below the lowest level
 *                                  minus alerts.quota_margin, or no longer
 *                                  listed with a limit)
 *   backup.failed                  backup.succeeded (resolved: true)
 *
 * Certificates: the watcher's snapshot knows every certificate (the facts
 * classify.c keeps: serial, not_before, not_after); once the reconcile at start is
 * done they are read from it, and the cert.issued / renewed / installed /
 * removed events keep them current afterwards.  One libuv timer is set to
 * the next threshold instant of all certificates (no periodic scan of
 * files).  A threshold crossed while ophookd was down is announced once at
 * start, only the most severe (a certificate 6 days from its end with
 * thresholds 14d, 7d, 1d gives one cert.expiring with days 7).  A
 * certificate of Caddy's ACME storage still the same a day past the
 * instant Caddy renews it (a third of its lifetime left) gives
 * cert.renewal_overdue; the timer is set to that instant too.
 *
 * Quota: alerts.quota_command (repquota -a -u -O csv) runs every
 * alerts.quota_interval_s in a worker thread (argv, bounded time and
 * output); each user's usage of the soft limit (the hard limit when there
 * is no soft one) is held against alerts.quota_levels with hysteresis.
 *
 * Backups: the per-user `backup` container (offen/docker-volume-backup);
 * see alerts.c for what is seen of its runs.
 *
 * Memory: <state_dir>/alerts.json, written atomically after each change
 * (what is open, at which level, for which certificate or user).  Loop
 * thread only. */
#ifndef OPHOOK_ALERTS_H
#define OPHOOK_ALERTS_H

#include <jansson.h>

struct engine;
struct watch;
struct alerts;

/* Start the alerts for engine e when its config says alerts.enabled; w
 * (may be NULL: no certificate alerts) is the watcher whose snapshot holds
 * the certificates.  *a_r is NULL when alerts are off.  0 or -errno with
 * *error_r (static). */
int alerts_start(struct engine *e, struct watch *w, struct alerts **a_r,
		 const char **error_r);

/* Stop the timers (a running quota command is waited for), save the
 * state; NULLs *a.  Safe on NULL. */
void alerts_stop(struct alerts **a);

/* What is open now, as JSON (ophookctl status, the console's overview):
 * {open: [{alert, subject, detail}] sorted by alert then subject,
 * certs_open: [{path, domain, not_after, level, renewal_overdue}],
 * certs_known, backups_failing, quota_runs}.  Caller owns it. */
json_t *alerts_status(struct alerts *a);

#endif
