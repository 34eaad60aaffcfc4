/* Pure text functions of the bind9 plugin: render a zone from a template,
 * find and change the SOA serial, hash a zone's content, edit the
 * `zone "<d>" ...;` lines of named.conf.local and the records the plugin
 * owns inside a zone.  No I/O; every function that makes a new text
 * returns it in *out_r (malloc'ed, the caller frees) and -ENOMEM when
 * memory runs out. */
#ifndef OPHOOK_BIND9_ZONE_H
#define OPHOOK_BIND9_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The built-in template: OpenPanel's bind9/zone_template.txt shape. */
extern const char zone_default_template[];

/* Values for the template placeholders {domain} {ns1} {ns2} {ns3} {ns4}
 * {rpemail} {server_ip} {serial}; NULL ones are left as they are. */
struct zone_vars {
	const char *domain;
	const char *ns1;
	const char *ns2;
	const char *ns3;
	const char *ns4;
	const char *rpemail;
	const char *server_ip;
	uint32_t serial;
};

/* Render tmpl with v, then set the SOA serial to v->serial whatever the
 * template had there (a number, YYYYMMDDnn, {serial}).  -EINVAL with
 * *error_r when the result has no SOA record or a placeholder is left
 * ("{...}" of the known names) unresolved. */
int zone_render(const char *tmpl, const struct zone_vars *v, char **out_r,
		const char **error_r);

/* Offset and length of the SOA serial token in a zone text (comments and
 * quoted strings skipped).  -ENOENT when there is no SOA record. */
int zone_serial_find(const char *text, size_t *off_r, size_t *len_r);
/* The SOA serial as a number; -ENOENT without SOA, -EINVAL when the token
 * is not a number in 0..4294967295. */
int zone_serial_get(const char *text, uint32_t *serial_r);
/* A copy of text with the SOA serial replaced by serial. */
int zone_serial_set(const char *text, uint32_t serial, char **out_r);
/* The next serial after old at time now: YYYYMMDD01 of the UTC day when
 * that is larger, else old + 1 (past nn = 99 it keeps counting as an
 * integer, into the next "day"). */
uint32_t zone_serial_next(uint32_t old, time_t now);
/* FNV-1a 64 of the text with the SOA serial token left out: equal hashes
 * mean the same content whatever the serial. */
uint64_t zone_hash(const char *text);

/* Where the `zone "<domain>"` statement is in a named.conf text: [*start_r,
 * *end_r) covers the whole statement up to its `;`, plus the rest of that
 * line when only blanks or a comment follow (the line break included), plus
 * the blanks before it when it starts a line.  Names compare without case
 * and with or without a trailing dot.  -ENOENT when absent. */
int zone_conf_find(const char *conf, const char *domain, size_t *start_r,
		   size_t *end_r);
/* The line the plugin writes: `zone "<d>" IN { type master; file "<p>"; };`
 * (no newline).  -EINVAL when path has '"', '\\' or a control character. */
int zone_conf_line(const char *domain, const char *path, char **out_r);
/* The same with opts (from zone_conf_opts) before the closing brace:
 * `zone "<d>" IN { type master; file "<p>"; <opts> };`.  opts NULL or ""
 * gives zone_conf_line's text. */
int zone_conf_line_opts(const char *domain, const char *path,
			const char *opts, char **out_r);
/* A secondary's line: `zone "<d>" IN { type slave; masters { <primary>; };
 * file "<p>"; };`.  primary is "IP" or "IP port N" (normalized with
 * zone_addr_norm); -EINVAL for a bad address or path. */
int zone_slave_line(const char *domain, const char *primary,
		    const char *path, char **out_r);
/* Check and normalize an address for named.conf: "IP", "IP port N" (when
 * allow_port), "IP/len" (when allow_prefix); IPv4 or IPv6, blanks around
 * it dropped.  *out_r: "IP", "IP port N" or "IP/len" as inet_ntop writes
 * the IP.  -EINVAL with *why_r for anything else (names, quotes, ';'). */
int zone_addr_norm(const char *s, bool allow_port, bool allow_prefix,
		   char **out_r, const char **why_r);
/* The options a primary's zone line carries: `notify yes; also-notify {
 * a; b; };` when notify (NULL-terminated, "IP [port N]") is not empty,
 * `allow-transfer { c; };` when allow_transfer ("IP" or "IP/len") is not
 * empty, joined by a blank; "" when both are empty.  Every address goes
 * through zone_addr_norm: -EINVAL when one is bad. */
int zone_conf_opts(const char *const *notify,
		   const char *const *allow_transfer, char **out_r);
/* Make line the statement for domain: appended when absent, replacing the
 * existing statement (in place) when that differs.  *out_r is NULL when the
 * text already has exactly that line. */
int zone_conf_put(const char *conf, const char *domain, const char *line,
		  char **out_r);
/* Append the zone line for domain unless a statement for it exists.
 * *out_r is NULL when nothing changed (the text already has it). */
int zone_conf_add(const char *conf, const char *domain, const char *path,
		  char **out_r);
/* Remove the statement for domain and nothing else.  *out_r is NULL when
 * it was not there. */
int zone_conf_remove(const char *conf, const char *domain, char **out_r);

/* Replace the records tagged `tag` (lines ending in "; ophook:<tag>") with
 * records (one or more lines, each gets the tag; NULL or "" removes them).
 * *out_r is NULL when nothing changed. */
int zone_records_set(const char *text, const char *tag, const char *records,
		     char **out_r);
/* True when some line carries the tag. */
bool zone_records_has(const char *text, const char *tag);

/* The value of a TXT record as zone text: one or more quoted strings of at
 * most 255 bytes, '"' and '\\' escaped.  If value itself is made of quoted
 * strings (OpenDKIM's mail.txt: `( "v=DKIM1; ..." "p=..." )`), their
 * contents are joined first.  -EINVAL for control characters. */
int zone_txt_strings(const char *value, char **out_r);

/* Directives a customer's zone may not use, refused before any checker
 * runs: `$INCLUDE` of a file outside zones_dir (a relative path, a `..`
 * or `.` component, anything not under zones_dir + "/"), and `$GENERATE`
 * ranges of more than generate_max steps (or stop < start).  Directive
 * names compare without case.  0, or -EINVAL with *msg_r ("line N:
 * $INCLUDE /x: ...", malloc'ed), or -ENOMEM. */
int zone_directives_check(const char *text, const char *zones_dir,
			  uint64_t generate_max, char **msg_r);

/* What a checker printed about the customer's zone (fed on stdin), kept
 * for events and logs: only the lines whose location is the zone's stream
 * ("stream-0x...:N:", "(null)", with or without a "word: " prefix, the
 * stream name replaced by path) and the lines "zone <zone>/IN: ..."; every
 * other line (another file's text, a backtrace) is dropped.  Bytes outside
 * printable ASCII become \xNN; at most ZONE_DIAG_LINE_MAX bytes a line and
 * ZONE_DIAG_LINES lines.  *out_r is "" when nothing was kept.  0 or
 * -ENOMEM. */
#define ZONE_DIAG_LINE_MAX 240u
#define ZONE_DIAG_LINES 8u
int zone_diag_filter(const char *out, const char *zone, const char *path,
		     char **out_r);

/* A domain OpenPanel can have (see ophook_name_valid_domain), copied in lower
 * case to *out_r.  -EINVAL with *why_r otherwise. */
int zone_domain_norm(const char *s, char **out_r, const char **why_r);
/* True when s ends with "." + parent (both lower case). */
bool zone_is_subdomain(const char *s, const char *parent);

#endif
