/* Line-level edits of docker-mailserver's config files, for the mailserver
 * plugin.  Pure functions on text: every line they do not remove or add
 * is copied byte for byte. */
#ifndef OPHOOK_MAILSERVER_MAILFILE_H
#define OPHOOK_MAILSERVER_MAILFILE_H

#include <stdbool.h>
#include <stddef.h>

enum mailfile_kind {
	MAILFILE_ACCOUNTS,     /* postfix-accounts.cf: addr|{SCHEME}hash[|...] */
	MAILFILE_VIRTUAL,      /* postfix-virtual.cf: alias targets (postfix map) */
	MAILFILE_QUOTAS,       /* dovecot-quotas.cf: addr:quota */
	MAILFILE_KEYTABLE,     /* opendkim KeyTable: sel._domainkey.d d:sel:path */
	MAILFILE_SIGNINGTABLE, /* opendkim SigningTable: *@d sel._domainkey.d */
};

/* Called for each line that cannot be parsed (kept as it is): 1-based
 * line number and why. */
typedef void mailfile_warn_fn(void *arg, unsigned line, const char *why);

/* Remove the lines of `domain` (case-insensitive) from text[0..len) of the
 * given kind: accounts, quotas, aliases whose alias is user@domain or
 * @domain (catch-all; with their continuation lines), DKIM table entries.
 * Comments, blank lines, other domains' lines and unparseable lines (each
 * reported through warn) are copied unchanged.  *out_r (caller frees,
 * NUL-terminated, *out_len_r bytes) and *removed_r lines removed.  0 or
 * -ENOMEM. */
int mailfile_remove_domain(enum mailfile_kind kind, const char *text,
			   size_t len, const char *domain,
			   mailfile_warn_fn *warn, void *arg, char **out_r,
			   size_t *out_len_r, unsigned *removed_r);

/* The marker comment put before each access-map line added for a
 * suspended user. */
#define MAILFILE_MARK "# ophook:suspended:"

/* Remove from an access map (postfix-send-access.cf,
 * postfix-receive-access.cf) the lines added by mailfile_access_add() for
 * user: each marker line and the line after it.  A newline added by
 * mailfile_access_add() after a last line that had none is taken away
 * again.  0 or -ENOMEM. */
int mailfile_access_strip(const char *text, size_t len, const char *user,
			  char **out_r, size_t *out_len_r,
			  unsigned *removed_r);

/* Append, for each domain, "# ophook:suspended:<user>\n<domain> REJECT
 * <reason>\n" to text.  0 or -ENOMEM. */
int mailfile_access_add(const char *text, size_t len, const char *user,
			const char *const *domains, size_t n_domains,
			const char *reason, char **out_r, size_t *out_len_r);

/* True when the first field (up to blank) of some non-comment line equals
 * key exactly (KeyTable, SigningTable). */
bool mailfile_has_key(const char *text, size_t len, const char *key);

/* text with `line` appended (and a newline before it when text does not
 * end with one); `line` ends with '\n'.  NULL on ENOMEM. */
char *mailfile_append(const char *text, size_t len, const char *line,
		      size_t *out_len_r);

#endif
