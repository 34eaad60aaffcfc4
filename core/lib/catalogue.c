/* The catalogue of event types and intents (see catalogue.h).  The fields
 * are the ones the code sets: core/sources/classify.c (files),
 * core/sources/dbpoll.c (the panel DB, and the owner fields it adds to
 * the events of files), core/sources/entity.c (user.added / user.removed
 * from the folder and the row), the plugins' emit calls and
 * core/handlers/pluginhost.c.  tests/integration/catalogue.sh checks every
 * event the test suite journals against the schemas made from here. */
#include "catalogue.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define END { NULL, NULL, false, NULL, NULL }

/* The owner, added by the panel DB poller to domain.*, cert.* and dns.*
 * events when the panel DB knows the domain. */
#define F_OWNER                                                              \
	{ "user", "string", false, NULL,                                     \
	  "the owner (from the panel DB), when known" },                     \
	{ "user_id", "integer", false, NULL, "the owner's users.id" },      \
	{ "plan", "string", false, NULL, "the owner's plan name" },         \
	{ "context", "string", false, NULL,                                  \
	  "the owner's context (the Podman user)" }

/* The panel DB's view of a user (user.* events). */
#define F_USERDB(plantype)                                                   \
	{ "user_id", "integer", false, NULL, "users.id" },                   \
	{ "context", "string", false, NULL,                                  \
	  "the user's context (the Podman user; the name when none)" },      \
	{ "plan", plantype, false, NULL, "the plan's name" },               \
	{ "plan_id", "integer", false, NULL, "users.plan_id" }

#define F_DOMAIN                                                             \
	{ "domain", "string", true, NULL, "the domain" }

#define F_CONFPATH                                                           \
	{ "path", "string", true, NULL,                                      \
	  "the Caddy conf: ROOT/caddy/domains/DOMAIN.conf" }

#define F_MODES                                                              \
	{ "ssl", "string", false, "auto|custom|internal",                    \
	  "the TLS mode the conf sets: auto (on_demand), custom "            \
	  "(tls CERT KEY), internal; absent when it sets none" },            \
	{ "waf", "string", false, "on|off|detection_only",                   \
	  "the Coraza WAF mode (the first SecRuleEngine line); absent "      \
	  "when none" }

#define F_OLDMODES                                                           \
	{ "old_ssl", "string", false, "auto|custom|internal",                \
	  "the TLS mode before, when it changed" },                          \
	{ "old_waf", "string", false, "on|off|detection_only",               \
	  "the WAF mode before, when it changed" }

#define F_CERT                                                               \
	F_DOMAIN,                                                            \
	{ "path", "string", true, NULL, "the certificate file" },           \
	{ "issuer", "string", true, NULL,                                    \
	  "the issuer folder (acme-v02.api.letsencrypt.org-directory, "      \
	  "local, ...) or \"custom\"" },                                     \
	{ "wildcard", "boolean", false, NULL,                                \
	  "true for a wildcard certificate (*.DOMAIN; domain is then the "   \
	  "base domain)" }

#define F_CERTDATA                                                           \
	{ "serial", "string", true, NULL, "the serial number, hex" },       \
	{ "not_before", "string", false, NULL,                               \
	  "start of validity, YYYY-MM-DDTHH:MM:SSZ" },                       \
	{ "not_after", "string", true, NULL,                                 \
	  "end of validity, YYYY-MM-DDTHH:MM:SSZ" },                         \
	{ "names", "string[]", true, NULL,                                   \
	  "the DNS names and IP addresses of subjectAltName" }

#define F_ADMIN                                                              \
	{ "admin", "string", true, NULL, "the admin's username" },          \
	{ "admin_id", "integer", false, NULL, "user.id in users.db" },      \
	{ "role", "string", false, NULL, "the admin's role" },              \
	{ "is_active", "boolean", false, NULL, "the account is active" },   \
	{ "totp_enabled", "boolean", false, NULL,                            \
	  "two-factor authentication is on" }

#define F_MAILPATH                                                           \
	{ "path", "string", true, NULL, "the docker-mailserver file" },     \
	{ "domain", "string", true, NULL, "the address's domain" }

const struct catalogue_field catalogue_envelope[] = {
	{ "id", "integer", true, NULL, "the journal id (unique, growing)" },
	{ "type", "string", true, NULL, "the event type" },
	{ "subject", "string", true, NULL,
	  "what the event is about; events of one subject are delivered in "
	  "order" },
	{ "source", "string", true,
	  NULL,
	  "inotify, reconcile (a change found by a full scan), db (the panel "
	  "DB poller), plugin, socket (ophookctl emit), hook (a Lua hook's "
	  "ophook.emit), replay" },
	{ "node", "string", true, NULL,
	  "the node that made it (cluster.node; \"\" when unset)" },
	{ "time", "string", true, NULL, "when, UTC: YYYY-MM-DDTHH:MM:SS.mmmZ" },
	{ "replay_of", "integer", false, NULL,
	  "ophookctl replay: the id of the event replayed" },
	END
};

const char *const catalogue_free_sources[] = { "socket", "hook", "replay",
					       NULL };

/* What every container.* event carries (core/sources/containers.c, the
 * panel fields from core/sources/dbpoll.c). */
#define F_CONTAINER                                                          \
	{ "container", "string", true, NULL,                                 \
	  "the container's name (the same names repeat for every user)" },   \
	{ "container_id", "string", true, NULL, "its id, hex" },             \
	{ "image", "string", false, NULL, "its image, when valid" },         \
	{ "service", "string", false, NULL,                                  \
	  "label com.docker.compose.service" },                              \
	{ "project", "string", false, NULL,                                  \
	  "label com.docker.compose.project" },                              \
	{ "uid", "integer", true, NULL,                                      \
	  "the uid the API socket belongs to (0: root's Podman)" },          \
	{ "ctx", "string", false, NULL,                                      \
	  "the user's context: the /home folder that uid owns" },           \
	{ "user", "string", false, NULL,                                     \
	  "the panel's current name of the user with that context (the "    \
	  "real one while suspended), else the context" },                   \
	{ "user_id", "integer", false, NULL, "that user's users.id" },      \
	{ "plan", "string", false, NULL, "that user's plan name" },         \
	{ "suspended", "boolean", false, NULL,                               \
	  "the user is suspended (from the panel DB)" },                     \
	{ "system", "boolean", false, NULL,                                  \
	  "root's Podman: a system container" },                             \
	{ "socket", "string", true, NULL, "the API socket" },                \
	{ "api", "string", true, "libpod|docker", "the API it speaks" },    \
	{ "action", "string", true, NULL,                                    \
	  "the API's action (start, died, die, stop, oom, health_status)" }, \
	{ "time_nano", "integer", true, NULL,                                \
	  "the API's event time, ns since the epoch" },                      \
	{ "container_time", "string", true, NULL,                            \
	  "the same as RFC 3339 (ms)" }

/* A stop or death right after the user's suspension or removal. */
#define F_CREASON                                                            \
	{ "reason", "string", false, "user.suspended|user.removed",          \
	  "the user's suspension or removal (within "                        \
	  "containers.reason_window_s) stopped it" }

#define CTR_EXAMPLE(id, type, extra)                                         \
	"{\"id\":" #id ",\"type\":\"" type "\",\"subject\":"                 \
	"\"container:alice/mysql\",\"source\":\"container\",\"node\":\"\","   \
	"\"time\":\"2025-05-03T10:00:00.120Z\",\"container\":\"mysql\","     \
	"\"container_id\":\"9779b670ea43125e3dc6d677a3e2ea935e9218e663da57de" \
	"ae3be839d9b5f296\",\"image\":\"docker.io/library/mysql:8\","        \
	"\"service\":\"mysql\",\"project\":\"alice\",\"uid\":1001,\"ctx\":"   \
	"\"alice\",\"user\":\"alice\",\"user_id\":1,\"plan\":\"Standard\","   \
	"\"suspended\":false,\"socket\":\"/run/user/1001/podman/podman.sock\"," \
	"\"api\":\"libpod\",\"time_nano\":1746266400000000000,"              \
	"\"container_time\":\"2025-05-03T10:00:00.000Z\"" extra "}"

#define F_CTXFILE(what)                                                      \
	{ "user", "string", true, NULL,                                      \
	  "the user's context (users.server: the Linux user and its "       \
	  "/home folder; the username unless renamed)" },                    \
	{ "path", "string", true, NULL, what }

/* Derived alerts (core/sources/alerts.c). */
#define F_ALERTUSER                                                          \
	{ "user", "string", true, NULL, "the user" }
#define F_CERTALERT                                                          \
	F_CERT,                                                              \
	{ "serial", "string", true, NULL, "the certificate's serial, hex" }, \
	{ "not_before", "string", false, NULL,                               \
	  "start of validity, YYYY-MM-DDTHH:MM:SSZ" },                       \
	{ "not_after", "string", true, NULL,                                 \
	  "end of validity, YYYY-MM-DDTHH:MM:SSZ" },                         \
	{ "remaining_s", "integer", false, NULL,                             \
	  "seconds left until not_after (0 once past)" }
#define F_QUOTA                                                              \
	F_ALERTUSER,                                                         \
	{ "percent", "number", true, NULL,                                   \
	  "usage in percent of the limit, one decimal" },                    \
	{ "used_kb", "integer", true, NULL, "blocks used, KiB" },           \
	{ "soft_kb", "integer", true, NULL, "soft block limit, KiB (0: none)" }, \
	{ "hard_kb", "integer", true, NULL, "hard block limit, KiB (0: none)" }, \
	{ "limit", "string", true, "soft|hard", "the limit measured against" }

/* Sorted by name (the unit test checks). */
static const struct catalogue_type catalogue_type_table[] = {
	{
		"admin.added", "admin:NAME", "^admin:", "panel-db",
		"an OpenAdmin account was added",
		"A row appeared in the table user of OpenAdmin's users.db "
		"(panel_db.admin_db).",
		(const struct catalogue_field[]){ F_ADMIN, END },
		"{\"id\":120,\"type\":\"admin.added\",\"subject\":"
		"\"admin:carol\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-01T10:00:00.000Z\",\"admin\":\"carol\","
		"\"admin_id\":3,\"role\":\"reseller\",\"is_active\":true,"
		"\"totp_enabled\":false}",
	},
	{
		"admin.changed", "admin:NAME", "^admin:", "panel-db",
		"an OpenAdmin account's name, role, active flag or 2FA changed",
		NULL,
		(const struct catalogue_field[]){
			F_ADMIN,
			{ "changed", "string[]", true, NULL,
			  "what changed: username, role, is_active, "
			  "totp_enabled" },
			{ "old_admin", "string", false, NULL,
			  "the username before (renamed)" },
			{ "old_role", "string|null", false, NULL,
			  "the role before" },
			{ "old_is_active", "boolean|null", false, NULL,
			  "is_active before" },
			{ "old_totp_enabled", "boolean|null", false, NULL,
			  "totp_enabled before" },
			{ "deactivated", "boolean", false, NULL,
			  "true: the account went from active to inactive" },
			{ "totp_disabled", "boolean", false, NULL,
			  "true: two-factor authentication was turned off" },
			END },
		"{\"id\":121,\"type\":\"admin.changed\",\"subject\":"
		"\"admin:carol\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-01T10:05:00.000Z\",\"admin\":\"carol\","
		"\"admin_id\":3,\"role\":\"reseller\",\"is_active\":false,"
		"\"totp_enabled\":false,\"old_is_active\":true,"
		"\"deactivated\":true,\"changed\":[\"is_active\"]}",
	},
	{
		"admin.removed", "admin:NAME", "^admin:", "panel-db",
		"an OpenAdmin account was removed", NULL,
		(const struct catalogue_field[]){ F_ADMIN, END },
		"{\"id\":122,\"type\":\"admin.removed\",\"subject\":"
		"\"admin:carol\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-01T10:09:00.000Z\",\"admin\":\"carol\","
		"\"admin_id\":3,\"role\":\"reseller\",\"is_active\":false,"
		"\"totp_enabled\":false}",
	},
	{
		"backup.config_changed", "user:CTX", "^user:", "files",
		"a user's backup settings changed (backup.env)",
		"HOME/CTX/backup.env, the docker-volume-backup settings the "
		"Go panel's backup pages rewrite (os.WriteFile).  Watched "
		"for every context the panel DB knows (paths.home).  The "
		"value of a secret key (passwords, access keys, tokens, "
		"passphrases, connection strings, and secrets.extra_keys) is "
		"never sent, only a short fingerprint.",
		(const struct catalogue_field[]){
			F_CTXFILE("HOME/CTX/backup.env"),
			{ "keys", "string[]", true, NULL,
			  "the keys that changed" },
			{ "changes", "object[]", true, NULL,
			  "one {key, old, new} per key (null: absent), or "
			  "{key, secret: true, old_fingerprint, "
			  "new_fingerprint}" },
			END },
		"{\"id\":140,\"type\":\"backup.config_changed\",\"subject\":"
		"\"user:bob\",\"source\":\"inotify\",\"node\":\"\",\"time\":"
		"\"2025-05-01T10:20:00.000Z\",\"path\":\"/home/bob/backup.env\","
		"\"user\":\"bob\",\"keys\":[\"AWS_SECRET_ACCESS_KEY\","
		"\"BACKUP_CRON_EXPRESSION\"],\"changes\":[{\"key\":"
		"\"AWS_SECRET_ACCESS_KEY\",\"secret\":true,\"old_fingerprint\":"
		"\"sha256:1f2e3d4c\",\"new_fingerprint\":\"sha256:9a8b7c6d\"},"
		"{\"key\":\"BACKUP_CRON_EXPRESSION\",\"old\":\"@daily\","
		"\"new\":\"0 3 * * *\"}]}",
	},
	{
		"backup.failed", "user:NAME", "^user:", "alerts",
		"a user's backup container ended with an error (alert opened)",
		"Derived alert (alerts.enabled): the per-user container named "
		"alerts.backup_container (OpenPanel's `backup`, "
		"offen/docker-volume-backup) died with an exit code other than "
		"0, 137 or 143 (a stop).  Open until a run ends with 0 "
		"(backup.succeeded with resolved true); further failures while "
		"open send nothing.  Remembered across restarts.",
		(const struct catalogue_field[]){
			F_ALERTUSER,
			{ "container", "string", true, NULL,
			  "the container's name" },
			{ "exit_code", "integer", true, NULL, "its exit code" },
			{ "container_id", "string", false, NULL, "its id, hex" },
			{ "ctx", "string", false, NULL, "the user's context" },
			{ "event_id", "integer", true, NULL,
			  "the container.died event this comes from" },
			END },
		"{\"id\":301,\"type\":\"backup.failed\",\"subject\":"
		"\"user:alice\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-05-03T03:00:10.000Z\",\"user\":\"alice\",\"container\":"
		"\"backup\",\"exit_code\":1,\"ctx\":\"alice\",\"event_id\":300}",
	},
	{
		"backup.succeeded", "user:NAME", "^user:", "alerts",
		"a user's backup container ended with exit code 0",
		"Derived alert: sent for every run seen to end well; resolved "
		"true when it closes an open backup.failed.",
		(const struct catalogue_field[]){
			F_ALERTUSER,
			{ "container", "string", true, NULL,
			  "the container's name" },
			{ "exit_code", "integer", true, NULL, "0" },
			{ "resolved", "boolean", true, NULL,
			  "it closes an open backup.failed" },
			{ "failed_exit_code", "integer", false, NULL,
			  "the exit code of the failure it closes" },
			{ "container_id", "string", false, NULL, "its id, hex" },
			{ "ctx", "string", false, NULL, "the user's context" },
			{ "event_id", "integer", true, NULL,
			  "the container.died event this comes from" },
			END },
		"{\"id\":305,\"type\":\"backup.succeeded\",\"subject\":"
		"\"user:alice\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-05-04T03:00:10.000Z\",\"user\":\"alice\",\"container\":"
		"\"backup\",\"exit_code\":0,\"resolved\":true,"
		"\"failed_exit_code\":1,\"ctx\":\"alice\",\"event_id\":304}",
	},
	{
		"cert.expired", "DOMAIN (*.DOMAIN for a wildcard)", NULL,
		"alerts", "a certificate reached its not_after (alert opened)",
		"Derived alert (alerts.enabled): the most severe level of the "
		"certificate alert, sent once, at start when the certificate "
		"was already expired, else by the timer at not_after.  "
		"Resolved by cert.expiry_resolved.",
		(const struct catalogue_field[]){
			F_CERTALERT,
			{ "expired_s", "integer", true, NULL,
			  "seconds since not_after" },
			F_OWNER, END },
		"{\"id\":210,\"type\":\"cert.expired\",\"subject\":"
		"\"old.example\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-05-01T08:00:01.000Z\",\"domain\":\"old.example\",\"path\":"
		"\"/etc/openpanel/caddy/ssl/custom/old.example/fullchain.pem\","
		"\"issuer\":\"custom\",\"serial\":\"1A2B\",\"not_after\":"
		"\"2025-05-01T08:00:00Z\",\"remaining_s\":0,\"expired_s\":1}",
	},
	{
		"cert.expiring", "DOMAIN (*.DOMAIN for a wildcard)", NULL,
		"alerts",
		"a certificate crossed an expiry threshold (alert opened)",
		"Derived alert (alerts.enabled, thresholds "
		"alerts.cert_thresholds, 14d 7d 1d by default): once per "
		"threshold and certificate, from a timer set to the next "
		"threshold instant.  A threshold crossed while ophookd was down "
		"is sent at start, only the most severe one (6 days left: days "
		"7, not 14 then 7).  Remembered across restarts "
		"(STATE_DIR/alerts.json).  A certificate that still crosses "
		"thresholds has not been renewed by Caddy, which renews at a "
		"third of the lifetime left.",
		(const struct catalogue_field[]){
			F_CERTALERT,
			{ "days", "integer", true, NULL,
			  "the threshold in whole days (0 under a day)" },
			{ "threshold", "string", true, NULL,
			  "the threshold as configured (7d)" },
			{ "threshold_s", "integer", true, NULL,
			  "the threshold in seconds" },
			F_OWNER, END },
		"{\"id\":200,\"type\":\"cert.expiring\",\"subject\":"
		"\"shop.example\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-07-23T08:00:00.020Z\",\"domain\":\"shop.example\","
		"\"path\":\"/etc/openpanel/caddy/ssl/acme-v02.api.letsencrypt.org-"
		"directory/shop.example/shop.example.crt\",\"issuer\":"
		"\"acme-v02.api.letsencrypt.org-directory\",\"serial\":\"4B1D\","
		"\"not_after\":\"2025-07-30T08:00:00Z\",\"remaining_s\":604800,"
		"\"days\":7,\"threshold\":\"7d\",\"threshold_s\":604800,"
		"\"user\":\"bob\",\"user_id\":2,\"plan\":\"default\","
		"\"context\":\"bob\"}",
	},
	{
		"cert.expiry_resolved", "DOMAIN (*.DOMAIN for a wildcard)",
		NULL, "alerts",
		"an open cert.expiring or cert.expired alert is over",
		"The certificate was renewed or replaced by one further from "
		"its end (reason renewed; the fields describe the new one), or "
		"removed (reason removed; the fields describe the old one).  "
		"When the new one is still past a threshold, a cert.expiring "
		"for it follows.",
		(const struct catalogue_field[]){
			F_CERTALERT,
			{ "reason", "string", true, "renewed|removed",
			  "why it is over" },
			{ "was", "string", true, "cert.expiring|cert.expired",
			  "the alert it closes" },
			{ "old_serial", "string", false, NULL,
			  "the serial of the certificate replaced" },
			F_OWNER, END },
		"{\"id\":220,\"type\":\"cert.expiry_resolved\",\"subject\":"
		"\"shop.example\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-07-24T08:00:00.000Z\",\"domain\":\"shop.example\","
		"\"path\":\"/etc/openpanel/caddy/ssl/custom/shop.example/"
		"fullchain.pem\",\"issuer\":\"custom\",\"serial\":\"5C2E\","
		"\"not_after\":\"2025-10-22T08:00:00Z\",\"reason\":\"renewed\","
		"\"was\":\"cert.expiring\",\"old_serial\":\"4B1D\"}",
	},
	{
		"cert.installed", "DOMAIN", NULL, "files",
		"a custom certificate was installed (or replaced)",
		"ROOT/caddy/ssl/custom/DOMAIN/fullchain.pem (opencli "
		"domains-ssl) or custom/HOST/HOST.crt (the panel's own host "
		"name) with a serial not seen before; issuer is \"custom\".",
		(const struct catalogue_field[]){ F_CERT, F_CERTDATA, F_OWNER,
						  END },
		"{\"id\":57,\"type\":\"cert.installed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T09:00:00.000Z\",\"path\":"
		"\"/etc/openpanel/caddy/ssl/custom/shop.example/fullchain.pem\","
		"\"domain\":\"shop.example\",\"issuer\":\"custom\",\"serial\":"
		"\"3A7F\",\"not_after\":\"2026-05-01T00:00:00Z\",\"names\":"
		"[\"shop.example\",\"www.shop.example\"],\"user\":\"bob\"}",
	},
	{
		"cert.issued", "DOMAIN (*.DOMAIN for a wildcard)", NULL,
		"files", "Caddy stored the first certificate for a domain",
		"The .json of ROOT/caddy/ssl/.../ISSUER/DOMAIN/ landed next to "
		"its .crt (Caddy writes .key, .crt, then .json).",
		(const struct catalogue_field[]){ F_CERT, F_CERTDATA, F_OWNER,
						  END },
		"{\"id\":55,\"type\":\"cert.issued\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T08:00:00.000Z\",\"path\":\"/etc/openpanel"
		"/caddy/ssl/certificates/acme-v02.api.letsencrypt.org-directory"
		"/shop.example/shop.example.crt\",\"domain\":\"shop.example\","
		"\"issuer\":\"acme-v02.api.letsencrypt.org-directory\","
		"\"serial\":\"4B1D\",\"not_after\":\"2025-07-30T08:00:00Z\","
		"\"names\":[\"shop.example\"],\"user\":\"bob\",\"user_id\":2,"
		"\"plan\":\"default\",\"context\":\"bob\"}",
	},
	{
		"cert.removed", "DOMAIN", NULL, "files",
		"a certificate ophook knew was deleted",
		"Its folder, .crt or .json (Caddy's storage) or its "
		"fullchain.pem (custom) went away.",
		(const struct catalogue_field[]){
			F_CERT,
			{ "serial", "string", true, NULL,
			  "the serial of the certificate removed" },
			{ "names", "string[]", false, NULL,
			  "its subjectAltName names" },
			F_OWNER, END },
		"{\"id\":58,\"type\":\"cert.removed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-02T09:00:00.000Z\",\"path\":"
		"\"/etc/openpanel/caddy/ssl/custom/shop.example/fullchain.pem\","
		"\"domain\":\"shop.example\",\"issuer\":\"custom\",\"serial\":"
		"\"3A7F\",\"names\":[\"shop.example\",\"www.shop.example\"]}",
	},
	{
		"cert.renewal_overdue", "DOMAIN (*.DOMAIN for a wildcard)",
		NULL, "alerts",
		"Caddy has not renewed a certificate when it should have "
		"(alert opened)",
		"Derived alert (alerts.enabled), for the certificates Caddy "
		"renews (its ACME storage; not custom ones): Caddy renews once "
		"a third of the lifetime not_before..not_after is left "
		"(renew_due); past that by a day (or by half of that third, "
		"for lifetimes under 6 days) with the same certificate, the "
		"renewal is failing.  A 90-day certificate: 29 days before its "
		"end, well before the 14d threshold.  Sent once, from the "
		"timer (at start when already past), remembered across "
		"restarts; resolved by cert.renewal_resolved.",
		(const struct catalogue_field[]){
			F_CERTALERT,
			{ "renew_due", "string", true, NULL,
			  "when Caddy should have renewed, "
			  "YYYY-MM-DDTHH:MM:SSZ" },
			{ "overdue_s", "integer", true, NULL,
			  "seconds since renew_due" },
			F_OWNER, END },
		"{\"id\":230,\"type\":\"cert.renewal_overdue\",\"subject\":"
		"\"shop.example\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-07-02T08:00:00.020Z\",\"domain\":\"shop.example\","
		"\"path\":\"/etc/openpanel/caddy/ssl/acme-v02.api.letsencrypt.org-"
		"directory/shop.example/shop.example.crt\",\"issuer\":"
		"\"acme-v02.api.letsencrypt.org-directory\",\"serial\":\"4B1D\","
		"\"not_before\":\"2025-05-01T08:00:00Z\",\"not_after\":"
		"\"2025-07-30T08:00:00Z\",\"renew_due\":\"2025-06-30T08:00:00Z\","
		"\"overdue_s\":172800,\"remaining_s\":2419200}",
	},
	{
		"cert.renewal_resolved", "DOMAIN (*.DOMAIN for a wildcard)",
		NULL, "alerts", "an open cert.renewal_overdue alert is over",
		"Caddy stored a new certificate (reason renewed; the fields "
		"describe the new one) or the certificate was removed (reason "
		"removed; the fields describe the old one).",
		(const struct catalogue_field[]){
			F_CERTALERT,
			{ "reason", "string", true, "renewed|removed",
			  "why it is over" },
			{ "old_serial", "string", false, NULL,
			  "the serial of the certificate replaced" },
			F_OWNER, END },
		"{\"id\":240,\"type\":\"cert.renewal_resolved\",\"subject\":"
		"\"shop.example\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-07-03T08:00:00.000Z\",\"domain\":\"shop.example\","
		"\"path\":\"/etc/openpanel/caddy/ssl/acme-v02.api.letsencrypt.org-"
		"directory/shop.example/shop.example.crt\",\"issuer\":"
		"\"acme-v02.api.letsencrypt.org-directory\",\"serial\":\"5C2E\","
		"\"not_before\":\"2025-07-03T07:00:00Z\",\"not_after\":"
		"\"2025-10-01T07:00:00Z\",\"reason\":\"renewed\","
		"\"old_serial\":\"4B1D\"}",
	},
	{
		"cert.renewed", "DOMAIN (*.DOMAIN for a wildcard)", NULL,
		"files", "Caddy stored a certificate with a new serial",
		NULL,
		(const struct catalogue_field[]){
			F_CERT, F_CERTDATA,
			{ "old_serial", "string", true, NULL,
			  "the serial of the certificate it replaces" },
			F_OWNER, END },
		"{\"id\":56,\"type\":\"cert.renewed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-06-30T08:00:00.000Z\",\"path\":\"/etc/openpanel"
		"/caddy/ssl/certificates/acme-v02.api.letsencrypt.org-directory"
		"/shop.example/shop.example.crt\",\"domain\":\"shop.example\","
		"\"issuer\":\"acme-v02.api.letsencrypt.org-directory\","
		"\"serial\":\"5C2E\",\"not_after\":\"2025-09-28T08:00:00Z\","
		"\"names\":[\"shop.example\"],\"old_serial\":\"4B1D\"}",
	},
	{
		"config.changed", "config", "^config$", "files",
		"keys of openpanel.config were added, removed or changed",
		"ROOT/openpanel/conf/openpanel.config (INI).  Keys are "
		"SECTION.key; the value of a secret key (password, token, "
		"secret, key, ... and checks.secret_keys) is never sent, only "
		"a fingerprint.",
		(const struct catalogue_field[]){
			{ "path", "string", true, NULL,
			  "ROOT/openpanel/conf/openpanel.config" },
			{ "keys", "string[]", true, NULL,
			  "the keys that changed" },
			{ "changes", "object[]", true, NULL,
			  "one {key, old, new} per key (null: absent), or "
			  "{key, secret: true, old_fingerprint, "
			  "new_fingerprint}" },
			END },
		"{\"id\":80,\"type\":\"config.changed\",\"subject\":"
		"\"config\",\"source\":\"inotify\",\"node\":\"\",\"time\":"
		"\"2025-05-01T11:00:00.000Z\",\"path\":\"/etc/openpanel/"
		"openpanel/conf/openpanel.config\",\"keys\":[\"DEFAULT.ns1\"],"
		"\"changes\":[{\"key\":\"DEFAULT.ns1\",\"old\":"
		"\"ns1.old.example\",\"new\":\"ns1.example\"}]}",
	},
	{
		"container.died", "container:CTX/NAME (container:system/NAME "
		"for root's)", "^container:[^/]+/.+$", "containers",
		"a user's container exited (also after a stop)",
		"From Podman's died or Docker's die.  Podman 4.3 logs no stop "
		"for a `podman stop`: a stop is this with exit code 137 or 143. "
		"Deaths without a reason count towards container.restart_loop.",
		(const struct catalogue_field[]){
			F_CONTAINER,
			{ "exit_code", "integer", false, NULL,
			  "the exit code, when the API gives it" },
			F_CREASON, END },
		CTR_EXAMPLE(120, "container.died",
			    ",\"action\":\"died\",\"exit_code\":3"),
	},
	{
		"container.health_changed", "container:CTX/NAME",
		"^container:[^/]+/.+$", "containers",
		"a container's health check status changed",
		"Only changes: a check that gives the same status again sends "
		"nothing.  Podman 4.3 does not put the status in the event; it "
		"is read from the container then.",
		(const struct catalogue_field[]){
			F_CONTAINER,
			{ "health", "string", true, "healthy|unhealthy|starting",
			  "the new status" },
			{ "previous", "string", false,
			  "healthy|unhealthy|starting", "the one before" },
			END },
		CTR_EXAMPLE(121, "container.health_changed",
			    ",\"action\":\"health_status\",\"health\":"
			    "\"unhealthy\",\"previous\":\"healthy\""),
	},
	{
		"container.oom", "container:CTX/NAME", "^container:[^/]+/.+$",
		"containers", "a container was killed for lack of memory",
		"oom_source api: the API's oom event (Docker); kernel: it died "
		"with 137 and the kernel log (/dev/kmsg) has an OOM kill in its "
		"memory cgroup (Podman with runc on cgroup v1 says nothing).",
		(const struct catalogue_field[]){
			F_CONTAINER,
			{ "oom_source", "string", true, "api|kernel",
			  "who said so" },
			END },
		CTR_EXAMPLE(122, "container.oom",
			    ",\"action\":\"died\",\"oom_source\":\"kernel\""),
	},
	{
		"container.restart_loop", "container:CTX/NAME",
		"^container:[^/]+/.+$", "containers",
		"a container died restart_loop_deaths times within "
		"restart_loop_window_s",
		"Sent with the death that completes the count (the same "
		"time_nano and action); the next one needs as many new deaths.",
		(const struct catalogue_field[]){
			F_CONTAINER,
			{ "deaths", "integer", true, NULL,
			  "deaths within the window" },
			{ "window_s", "integer", true, NULL, "the window" },
			{ "exit_code", "integer", false, NULL,
			  "the last death's exit code" },
			END },
		CTR_EXAMPLE(123, "container.restart_loop",
			    ",\"action\":\"died\",\"deaths\":5,\"window_s\":300,"
			    "\"exit_code\":1"),
	},
	{
		"container.started", "container:CTX/NAME",
		"^container:[^/]+/.+$", "containers",
		"a user's container started", NULL,
		(const struct catalogue_field[]){ F_CONTAINER, END },
		CTR_EXAMPLE(124, "container.started", ",\"action\":\"start\""),
	},
	{
		"container.stopped", "container:CTX/NAME",
		"^container:[^/]+/.+$", "containers",
		"a user's container was stopped",
		"From the API's stop (Docker, newer Podman); its death comes "
		"as container.died too.",
		(const struct catalogue_field[]){ F_CONTAINER, F_CREASON, END },
		CTR_EXAMPLE(125, "container.stopped",
			    ",\"action\":\"stop\",\"reason\":\"user.suspended\""),
	},
	{
		"cron.changed", "user:CTX", "^user:", "files",
		"a user's cron jobs were added, removed or changed (crons.ini)",
		"HOME/CTX/crons.ini, the [job-exec \"NAME\"] blocks the Go "
		"panel's cron page rewrites (os.WriteFile) and the cron "
		"container runs.  Watched for every context the panel DB "
		"knows (paths.home).  A customer can write this file: "
		"values are cut at 4096 bytes, control bytes become '?', and "
		"what looks like a password in a command (--password=X, "
		"DB_PASSWORD=X, token=X, --password X, mysql's -pX) becomes "
		"***.",
		(const struct catalogue_field[]){
			F_CTXFILE("HOME/CTX/crons.ini"),
			{ "added", "object[]", true, NULL,
			  "jobs added: {name, schedule, container, command, "
			  "no_overlap}" },
			{ "removed", "object[]", true, NULL,
			  "jobs removed, as they were" },
			{ "changed", "object[]", true, NULL,
			  "jobs changed: the job now, and \"old\": the job "
			  "before" },
			END },
		"{\"id\":141,\"type\":\"cron.changed\",\"subject\":"
		"\"user:bob\",\"source\":\"inotify\",\"node\":\"\",\"time\":"
		"\"2025-05-01T10:25:00.000Z\",\"path\":\"/home/bob/crons.ini\","
		"\"user\":\"bob\",\"added\":[{\"name\":\"backup-db\","
		"\"schedule\":\"0 0 3 * * *\",\"container\":\"mysql\","
		"\"command\":\"sh /backup.sh\"}],\"removed\":[],\"changed\":"
		"[{\"name\":\"php\",\"schedule\":\"@every 5m\",\"container\":"
		"\"php-fpm-8.3\",\"command\":\"php /var/www/html/cron.php\","
		"\"old\":{\"schedule\":\"@every 1h\",\"container\":"
		"\"php-fpm-8.3\",\"command\":\"php /var/www/html/cron.php\"}}]}",
	},
	{
		"dns.config.changed", "dns", "^dns$", "files",
		"named.conf.local changed without adding or removing a zone",
		"The bind9 plugin runs `rndc reconfig`.",
		(const struct catalogue_field[]){
			{ "path", "string", true, NULL,
			  "the named.conf.local" },
			END },
		"{\"id\":91,\"type\":\"dns.config.changed\",\"subject\":"
		"\"dns\",\"source\":\"inotify\",\"node\":\"\",\"time\":"
		"\"2025-05-01T11:10:00.000Z\",\"path\":"
		"\"/etc/bind/named.conf.local\"}",
	},
	{
		"dns.zone.changed", "DOMAIN", NULL, "files",
		"a zone file or its named.conf.local line was added, changed "
		"or removed",
		"From /etc/bind/zones/DOMAIN.zone (with the SOA serial) or from "
		"a zone line added to or removed from named.conf.local (path is "
		"then that file, no serial).",
		(const struct catalogue_field[]){
			F_DOMAIN,
			{ "path", "string", true, NULL,
			  "the zone file, or named.conf.local" },
			{ "change", "string", true, "added|updated|removed",
			  "what happened" },
			{ "serial", "integer", false, NULL,
			  "the SOA serial now (zone files)" },
			{ "old_serial", "integer", false, NULL,
			  "the SOA serial before" },
			F_OWNER, END },
		"{\"id\":90,\"type\":\"dns.zone.changed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T11:09:00.000Z\",\"path\":"
		"\"/etc/bind/zones/shop.example.zone\",\"domain\":"
		"\"shop.example\",\"change\":\"updated\",\"serial\":2025050102,"
		"\"old_serial\":2025050101,\"user\":\"bob\"}",
	},
	{
		"dns.zone_rejected", "DOMAIN", NULL, "plugin bind9",
		"a zone failed named-checkzone or named-checkconf and was not "
		"loaded",
		"The zone BIND serves stays the one loaded before.",
		(const struct catalogue_field[]){
			F_DOMAIN,
			{ "path", "string", true, NULL, "the zone file" },
			{ "error", "string", true, NULL,
			  "the checker's message" },
			F_OWNER, END },
		"{\"id\":95,\"type\":\"dns.zone_rejected\",\"subject\":"
		"\"shop.example\",\"source\":\"plugin\",\"node\":\"\",\"time\":"
		"\"2025-05-01T11:12:00.000Z\",\"domain\":\"shop.example\","
		"\"path\":\"/etc/bind/zones/shop.example.zone\",\"error\":"
		"\"zone shop.example/IN: has no NS records\"}",
	},
	{
		"domain.added", "DOMAIN", NULL, "files",
		"a domain's Caddy conf appeared (opencli domains-add)",
		"ROOT/caddy/domains/DOMAIN.conf was created.  A conf that is "
		"already suspended when it appears says so (suspended, "
		"reason).",
		(const struct catalogue_field[]){
			F_DOMAIN, F_CONFPATH, F_MODES,
			{ "suspended", "boolean", false, NULL,
			  "true: the conf serves the suspended page" },
			{ "reason", "string", false, "domain|user",
			  "with suspended: the domain or its user was "
			  "suspended" },
			F_OWNER, END },
		"{\"id\":42,\"type\":\"domain.added\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T08:00:00.000Z\",\"path\":"
		"\"/etc/openpanel/caddy/domains/shop.example.conf\",\"domain\":"
		"\"shop.example\",\"ssl\":\"auto\",\"waf\":\"on\",\"user\":"
		"\"bob\",\"user_id\":2,\"plan\":\"default\",\"context\":\"bob\"}",
	},
	{
		"domain.config_rejected", "DOMAIN (\"caddy\" when the file "
		"name is no domain)", NULL, "plugin caddy",
		"a Caddy conf failed `caddy adapt` and was moved to the "
		"quarantine",
		"Caddy keeps serving the last good configuration.  blame, "
		"address and owner say who wrote the bad line when the caddy "
		"plugin could tell.",
		(const struct catalogue_field[]){
			{ "domain", "string", false, NULL,
			  "the domain (absent when the file name is none)" },
			{ "path", "string", true, NULL, "the rejected conf" },
			{ "quarantined", "string", true, NULL,
			  "where it was moved" },
			{ "error", "string", true, NULL, "Caddy's message" },
			{ "blame", "string", false, NULL,
			  "how the writer was found" },
			{ "address", "string", false, NULL,
			  "the site address at fault" },
			{ "owner", "string", false, NULL,
			  "the user owning that address" },
			F_OWNER, END },
		"{\"id\":43,\"type\":\"domain.config_rejected\",\"subject\":"
		"\"shop.example\",\"source\":\"plugin\",\"node\":\"\",\"time\":"
		"\"2025-05-01T08:00:01.000Z\",\"path\":\"/etc/openpanel/caddy/"
		"domains/shop.example.conf\",\"quarantined\":\"/var/lib/ophook"
		"/caddy/quarantine/shop.example.conf\",\"error\":\"adapting "
		"config using caddyfile: unrecognized directive: revers_proxy\","
		"\"domain\":\"shop.example\"}",
	},
	{
		"domain.php_changed", "DOMAIN", NULL, "panel-db",
		"a domain's PHP version changed (the Go panel's PHP page)",
		"From domains.php_version.  The Go panel rewrites the domain's "
		"vhost in the user's webserver volume first (php-fpm-OLD -> "
		"php-fpm-NEW), then updates the row: the row is the one "
		"observation, so the change is ONE event.  No hook runs for it "
		"in OpenPanel.",
		(const struct catalogue_field[]){
			F_DOMAIN,
			{ "php_version", "string", true, NULL,
			  "domains.php_version now (8.3)" },
			{ "old_php_version", "string", true, NULL,
			  "domains.php_version before" },
			{ "vhost_php_version", "string", false, NULL,
			  "the version the vhost names (its first php-fpm-X.Y: "
			  "PATHS_HOME/CTX/docker-data/volumes/"
			  "CTX_webserver_data/_data/DOMAIN.conf), when readable "
			  "without following a symlink: differs from "
			  "php_version when the rewrite failed" },
			F_OWNER, END },
		"{\"id\":47,\"type\":\"domain.php_changed\",\"subject\":"
		"\"shop.example\",\"source\":\"db\",\"node\":\"\","
		"\"time\":\"2025-05-01T09:00:00.000Z\",\"domain\":"
		"\"shop.example\",\"php_version\":\"8.3\",\"old_php_version\":"
		"\"8.2\",\"vhost_php_version\":\"8.3\",\"user\":\"bob\","
		"\"user_id\":2,\"context\":\"bob\"}",
	},
	{
		"domain.removed", "DOMAIN", NULL, "files",
		"a domain's Caddy conf was deleted (opencli domains-delete)",
		"The panel DB row goes first: the owner fields come from the "
		"map the daemon keeps.",
		(const struct catalogue_field[]){ F_DOMAIN, F_CONFPATH, F_OWNER,
						  END },
		"{\"id\":49,\"type\":\"domain.removed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-03T08:00:00.000Z\",\"path\":"
		"\"/etc/openpanel/caddy/domains/shop.example.conf\",\"domain\":"
		"\"shop.example\",\"user\":\"bob\"}",
	},
	{
		"domain.suspended", "DOMAIN", NULL, "files",
		"a domain's conf now serves the suspended page",
		"opencli domains-suspend (reason domain) or user-suspend "
		"(reason user) overwrote the conf from a suspended template.",
		(const struct catalogue_field[]){
			F_DOMAIN, F_CONFPATH,
			{ "reason", "string", true, "domain|user",
			  "suspended_domain.html (domain) or "
			  "suspended_user.html (user)" },
			{ "comment", "string", false, NULL,
			  "X of a first line `# comment: X` "
			  "(domains-suspend --comment=X)" },
			F_MODES, F_OLDMODES, F_OWNER, END },
		"{\"id\":45,\"type\":\"domain.suspended\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-02T08:00:00.000Z\",\"path\":"
		"\"/etc/openpanel/caddy/domains/shop.example.conf\",\"domain\":"
		"\"shop.example\",\"old_ssl\":\"auto\",\"old_waf\":\"on\","
		"\"reason\":\"domain\",\"comment\":\"unpaid invoice\","
		"\"user\":\"bob\"}",
	},
	{
		"domain.unsuspended", "DOMAIN", NULL, "files",
		"a suspended domain's conf serves the site again", NULL,
		(const struct catalogue_field[]){
			F_DOMAIN, F_CONFPATH,
			{ "reason", "string", false, "domain|user",
			  "the reason of the suspension that ended" },
			F_MODES, F_OLDMODES, F_OWNER, END },
		"{\"id\":46,\"type\":\"domain.unsuspended\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-02T09:00:00.000Z\",\"path\":"
		"\"/etc/openpanel/caddy/domains/shop.example.conf\",\"domain\":"
		"\"shop.example\",\"ssl\":\"auto\",\"waf\":\"on\",\"reason\":"
		"\"domain\",\"user\":\"bob\"}",
	},
	{
		"domain.updated", "DOMAIN", NULL, "files",
		"a domain's Caddy conf changed (not a suspension)",
		"sed -i, the Go panel's writes, domains-ssl, the WAF switch.  "
		"old_ssl / old_waf say what a mode was before it changed.",
		(const struct catalogue_field[]){
			F_DOMAIN, F_CONFPATH, F_MODES, F_OLDMODES,
			{ "suspended", "boolean", false, NULL,
			  "true: the conf (still) serves the suspended page" },
			F_OWNER, END },
		"{\"id\":44,\"type\":\"domain.updated\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T08:30:00.000Z\",\"path\":"
		"\"/etc/openpanel/caddy/domains/shop.example.conf\",\"domain\":"
		"\"shop.example\",\"ssl\":\"custom\",\"waf\":\"on\","
		"\"old_ssl\":\"auto\",\"user\":\"bob\"}",
	},
	{
		"domain.waf_changed", "DOMAIN", NULL, "files",
		"a domain's WAF was switched on or off",
		"The SecRuleEngine line of the domain's Caddy conf changed "
		"(opencli waf's sed -i, the Go panel's WAF page); sent besides "
		"the conf's domain.updated.",
		(const struct catalogue_field[]){
			F_DOMAIN, F_CONFPATH,
			{ "waf", "string", true, "on|off|detection_only",
			  "the WAF mode now" },
			{ "old_waf", "string", true, "on|off|detection_only",
			  "the WAF mode before" },
			F_OWNER, END },
		"{\"id\":45,\"type\":\"domain.waf_changed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T08:31:00.000Z\",\"path\":"
		"\"/etc/openpanel/caddy/domains/shop.example.conf\",\"domain\":"
		"\"shop.example\",\"waf\":\"on\",\"old_waf\":\"off\","
		"\"user\":\"bob\"}",
	},
	{
		"firewall.block", "the address", NULL, "sent (ophookctl emit, a "
		"hook); the firewall plugin acts on it",
		"a request to block an address in the firewall (ufw or csf)",
		"Not made by ophook: an admin or a hook emits it, the firewall "
		"plugin applies it (and unblocks after ttl seconds).",
		(const struct catalogue_field[]){
			{ "ip", "string", true, NULL,
			  "an IPv4 / IPv6 address or network" },
			{ "reason", "string", false, NULL,
			  "a comment kept with the rule" },
			{ "ttl", "string|integer", false, NULL,
			  "seconds until it is lifted, 0..31536000 (0 or "
			  "absent: permanent)" },
			END },
		"{\"id\":300,\"type\":\"firewall.block\",\"subject\":"
		"\"203.0.113.9\",\"source\":\"socket\",\"node\":\"\",\"time\":"
		"\"2025-05-01T12:00:00.000Z\",\"ip\":\"203.0.113.9\",\"reason\":"
		"\"brute force\",\"ttl\":\"3600\"}",
	},
	{
		"firewall.unblock", "the address", NULL, "sent (ophookctl emit, "
		"a hook); the firewall plugin acts on it",
		"a request to lift a block", NULL,
		(const struct catalogue_field[]){
			{ "ip", "string", true, NULL,
			  "the address or network blocked" },
			END },
		"{\"id\":301,\"type\":\"firewall.unblock\",\"subject\":"
		"\"203.0.113.9\",\"source\":\"socket\",\"node\":\"\",\"time\":"
		"\"2025-05-01T12:30:00.000Z\",\"ip\":\"203.0.113.9\"}",
	},
	{
		"firewall.unblocked", "the address", NULL, "plugin firewall",
		"a block with a ttl expired and was lifted", NULL,
		(const struct catalogue_field[]){
			{ "ip", "string", true, NULL, "the address" },
			{ "reason", "string", true, "expired", "why" },
			END },
		"{\"id\":302,\"type\":\"firewall.unblocked\",\"subject\":"
		"\"203.0.113.9\",\"source\":\"plugin\",\"node\":\"\",\"time\":"
		"\"2025-05-01T13:00:00.000Z\",\"ip\":\"203.0.113.9\","
		"\"reason\":\"expired\"}",
	},
	{
		"ftp.account.added", "user:CTX", "^user:", "files",
		"an FTP account was added (opencli ftp-add)",
		"A line account|hash|directory|uid|gid appeared in "
		"ROOT/ftp/users/CTX/users.list.  The password hash is never "
		"sent.",
		(const struct catalogue_field[]){
			F_CTXFILE("ROOT/ftp/users/CTX/users.list"),
			{ "account", "string", true, NULL,
			  "the FTP account (name@domain)" },
			{ "directory", "string", true, NULL,
			  "its folder (in the user's containers: "
			  "/var/www/html/...)" },
			END },
		"{\"id\":150,\"type\":\"ftp.account.added\",\"subject\":"
		"\"user:bob\",\"source\":\"inotify\",\"node\":\"\",\"time\":"
		"\"2025-05-01T10:30:00.000Z\",\"path\":\"/etc/openpanel/ftp/"
		"users/bob/users.list\",\"user\":\"bob\",\"account\":"
		"\"web@shop.example\",\"directory\":\"/var/www/html/"
		"shop.example\"}",
	},
	{
		"ftp.account.removed", "user:CTX", "^user:", "files",
		"an FTP account was removed (opencli ftp-delete, user-delete)",
		"Its line left ROOT/ftp/users/CTX/users.list (sed -i), or the "
		"file went.",
		(const struct catalogue_field[]){
			F_CTXFILE("ROOT/ftp/users/CTX/users.list"),
			{ "account", "string", true, NULL,
			  "the FTP account (name@domain)" },
			{ "directory", "string", true, NULL,
			  "the folder it had" },
			END },
		"{\"id\":151,\"type\":\"ftp.account.removed\",\"subject\":"
		"\"user:bob\",\"source\":\"inotify\",\"node\":\"\",\"time\":"
		"\"2025-05-01T10:40:00.000Z\",\"path\":\"/etc/openpanel/ftp/"
		"users/bob/users.list\",\"user\":\"bob\",\"account\":"
		"\"web@shop.example\",\"directory\":\"/var/www/html/"
		"shop.example\"}",
	},
	{
		"mail.account.added", "DOMAIN", NULL, "files",
		"a mailbox was added (postfix-accounts.cf)", NULL,
		(const struct catalogue_field[]){
			{ "address", "string", true, NULL,
			  "the mailbox, lower case" },
			F_MAILPATH, END },
		"{\"id\":70,\"type\":\"mail.account.added\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T14:00:00.000Z\",\"path\":\"/etc/openpanel"
		"/mailserver/config/postfix-accounts.cf\",\"address\":"
		"\"info@shop.example\",\"domain\":\"shop.example\"}",
	},
	{
		"mail.account.changed", "DOMAIN", NULL, "files",
		"a mailbox's password (or its line) changed", NULL,
		(const struct catalogue_field[]){
			{ "address", "string", true, NULL, "the mailbox" },
			F_MAILPATH, END },
		"{\"id\":71,\"type\":\"mail.account.changed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T14:05:00.000Z\",\"path\":\"/etc/openpanel"
		"/mailserver/config/postfix-accounts.cf\",\"address\":"
		"\"info@shop.example\",\"domain\":\"shop.example\"}",
	},
	{
		"mail.account.removed", "DOMAIN", NULL, "files",
		"a mailbox was removed", NULL,
		(const struct catalogue_field[]){
			{ "address", "string", true, NULL, "the mailbox" },
			F_MAILPATH, END },
		"{\"id\":72,\"type\":\"mail.account.removed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T14:09:00.000Z\",\"path\":\"/etc/openpanel"
		"/mailserver/config/postfix-accounts.cf\",\"address\":"
		"\"info@shop.example\",\"domain\":\"shop.example\"}",
	},
	{
		"mail.alias.added", "DOMAIN", NULL, "files",
		"an alias was added (postfix-virtual.cf)", NULL,
		(const struct catalogue_field[]){
			{ "alias", "string", true, NULL,
			  "the alias address, lower case" },
			F_MAILPATH,
			{ "targets", "string", true, NULL,
			  "where it forwards (the rest of the line)" },
			END },
		"{\"id\":73,\"type\":\"mail.alias.added\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T14:10:00.000Z\",\"path\":\"/etc/openpanel"
		"/mailserver/config/postfix-virtual.cf\",\"alias\":"
		"\"sales@shop.example\",\"domain\":\"shop.example\","
		"\"targets\":\"info@shop.example\"}",
	},
	{
		"mail.alias.changed", "DOMAIN", NULL, "files",
		"an alias's targets changed", NULL,
		(const struct catalogue_field[]){
			{ "alias", "string", true, NULL, "the alias" },
			F_MAILPATH,
			{ "targets", "string", true, NULL, "the targets now" },
			{ "old_targets", "string", true, NULL,
			  "the targets before" },
			END },
		"{\"id\":74,\"type\":\"mail.alias.changed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T14:11:00.000Z\",\"path\":\"/etc/openpanel"
		"/mailserver/config/postfix-virtual.cf\",\"alias\":"
		"\"sales@shop.example\",\"domain\":\"shop.example\","
		"\"targets\":\"info@shop.example,bob@shop.example\","
		"\"old_targets\":\"info@shop.example\"}",
	},
	{
		"mail.alias.removed", "DOMAIN", NULL, "files",
		"an alias was removed", NULL,
		(const struct catalogue_field[]){
			{ "alias", "string", true, NULL, "the alias" },
			F_MAILPATH, END },
		"{\"id\":75,\"type\":\"mail.alias.removed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T14:12:00.000Z\",\"path\":\"/etc/openpanel"
		"/mailserver/config/postfix-virtual.cf\",\"alias\":"
		"\"sales@shop.example\",\"domain\":\"shop.example\"}",
	},
	{
		"mail.dkim.created", "DOMAIN", NULL, "plugin mailserver",
		"a DKIM key was made for a mail domain",
		"The mailserver plugin wrote the key and the opendkim "
		"KeyTable / SigningTable lines; the bind9 plugin publishes "
		"SELECTOR._domainkey.DOMAIN.",
		(const struct catalogue_field[]){
			F_DOMAIN,
			{ "selector", "string", true, NULL,
			  "the DKIM selector" },
			{ "txt", "string", true, NULL,
			  "the TXT record's text (v=DKIM1; k=rsa; p=...)" },
			F_OWNER, END },
		"{\"id\":76,\"type\":\"mail.dkim.created\",\"subject\":"
		"\"shop.example\",\"source\":\"plugin\",\"node\":\"\",\"time\":"
		"\"2025-05-01T14:13:00.000Z\",\"domain\":\"shop.example\","
		"\"selector\":\"mail\",\"txt\":\"v=DKIM1; k=rsa; p=MIIBIjAN\"}",
	},
	{
		"mail.quota.changed", "DOMAIN", NULL, "files",
		"a mailbox quota was set, changed or unset "
		"(dovecot-quotas.cf)", NULL,
		(const struct catalogue_field[]){
			{ "address", "string", true, NULL, "the mailbox" },
			F_MAILPATH,
			{ "quota", "string|null", true, NULL,
			  "the quota now (null: none)" },
			{ "old_quota", "string|null", true, NULL,
			  "the quota before (null: none)" },
			END },
		"{\"id\":77,\"type\":\"mail.quota.changed\",\"subject\":"
		"\"shop.example\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T14:14:00.000Z\",\"path\":\"/etc/openpanel"
		"/mailserver/config/dovecot-quotas.cf\",\"address\":"
		"\"info@shop.example\",\"domain\":\"shop.example\",\"quota\":"
		"\"2G\",\"old_quota\":null}",
	},
	{
		"panel.notification", "notifications", "^notifications$",
		"files",
		"a new unread admin notification (opencli sentinel)",
		"A line `TIME UNREAD TITLE MESSAGE: TEXT` appended to "
		"OpenAdmin's notifications.log (paths.admin_notifications).  "
		"Once per line: marking it READ (sed -i) or rewriting the "
		"file sends nothing again, nor does a restart.",
		(const struct catalogue_field[]){
			{ "path", "string", true, NULL,
			  "the notification log" },
			{ "logged_at", "string", true, NULL,
			  "the line's time, YYYY-mm-dd HH:MM:SS (the server's "
			  "local time)" },
			{ "title", "string", true, NULL, "the title" },
			{ "message", "string", true, NULL,
			  "the message (cut at 4096 bytes)" },
			END },
		"{\"id\":160,\"type\":\"panel.notification\",\"subject\":"
		"\"notifications\",\"source\":\"inotify\",\"node\":\"\","
		"\"time\":\"2025-05-01T10:50:00.000Z\",\"path\":\"/var/log/"
		"openpanel/admin/notifications.log\",\"logged_at\":"
		"\"2025-05-01 12:50:00\",\"title\":\"High Load Average\","
		"\"message\":\"Load average is 9.1\"}",
	},
	{
		"plugin.quarantined", "plugin:NAME", "^plugin:", "engine",
		"a plugin crashed too often and was set aside",
		"`ophookctl plugins enable NAME` brings it back.",
		(const struct catalogue_field[]){
			{ "plugin", "string", true, NULL, "the plugin" },
			{ "reason", "string", true, NULL, "why" },
			{ "crashes", "integer", true, NULL,
			  "crashes counted" },
			END },
		"{\"id\":400,\"type\":\"plugin.quarantined\",\"subject\":"
		"\"plugin:crashy\",\"source\":\"plugin\",\"node\":\"\",\"time\":"
		"\"2025-05-01T15:00:00.000Z\",\"plugin\":\"crashy\",\"reason\":"
		"\"crashed 3 times\",\"crashes\":3}",
	},
	{
		"quota.exceeded", "user:NAME", "^user:", "alerts",
		"a user's disk usage crossed a quota level (alert opened)",
		"Derived alert (alerts.enabled): alerts.quota_command "
		"(repquota -a -u -O csv) is read every alerts.quota_interval_s; "
		"usage is measured against the soft block limit (the hard one "
		"when there is no soft one).  Once per level crossed upwards "
		"(alerts.quota_levels, 90 and 100 by default; straight over "
		"several: the highest only); a level is held until usage falls "
		"alerts.quota_margin points below it, so usage flapping around "
		"a level sends nothing more.  Remembered across restarts.",
		(const struct catalogue_field[]){
			F_QUOTA,
			{ "level", "integer", true, NULL,
			  "the level crossed, percent" },
			END },
		"{\"id\":400,\"type\":\"quota.exceeded\",\"subject\":"
		"\"user:bob\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-05-03T10:00:00.000Z\",\"user\":\"bob\",\"percent\":92.1,"
		"\"used_kb\":921,\"soft_kb\":1000,\"hard_kb\":2000,\"limit\":"
		"\"soft\",\"level\":90}",
	},
	{
		"quota.recovered", "user:NAME", "^user:", "alerts",
		"a user's disk usage fell back under the quota levels",
		"Usage went below the lowest level minus alerts.quota_margin "
		"(reason below), or the quota command no longer lists the user "
		"with a limit (reason unlisted: the user or the limits were "
		"removed, also while ophookd was down; no usage fields then): "
		"the open quota.exceeded is over.",
		(const struct catalogue_field[]){
			F_ALERTUSER,
			{ "reason", "string", true, "below|unlisted",
			  "why it is over" },
			{ "percent", "number", false, NULL,
			  "usage in percent of the limit, one decimal" },
			{ "used_kb", "integer", false, NULL, "blocks used, KiB" },
			{ "soft_kb", "integer", false, NULL,
			  "soft block limit, KiB (0: none)" },
			{ "hard_kb", "integer", false, NULL,
			  "hard block limit, KiB (0: none)" },
			{ "limit", "string", false, "soft|hard",
			  "the limit measured against" },
			{ "level", "integer", true, NULL,
			  "the level that was held, percent" },
			{ "margin", "integer", true, NULL,
			  "alerts.quota_margin" },
			END },
		"{\"id\":410,\"type\":\"quota.recovered\",\"subject\":"
		"\"user:bob\",\"source\":\"timer\",\"node\":\"\",\"time\":"
		"\"2025-05-03T12:00:00.000Z\",\"user\":\"bob\",\"percent\":50.1,"
		"\"used_kb\":501,\"soft_kb\":1000,\"hard_kb\":2000,\"limit\":"
		"\"soft\",\"reason\":\"below\",\"level\":90,\"margin\":5}",
	},
	{
		"site.added", "DOMAIN (site:ID when its domain is unknown)",
		NULL, "panel-db",
		"an application was installed on a domain (a `sites` row)",
		"The Go panel's site installers (WordPress, Joomla, ...) insert "
		"the row; no hook runs for it in OpenPanel.",
		(const struct catalogue_field[]){
			{ "site_id", "integer", true, NULL, "sites.id" },
			{ "site", "string|null", true, NULL, "sites.site_name" },
			{ "site_type", "string|null", true, NULL,
			  "sites.type (wordpress, ...): the application; "
			  "not \"type\", which is the event's" },
			{ "domain", "string", false, NULL,
			  "the domain of sites.domain_id, when known" },
			{ "domain_id", "integer", false, NULL,
			  "sites.domain_id" },
			{ "user", "string", false, NULL, "the domain's owner" },
			END },
		"{\"id\":60,\"type\":\"site.added\",\"subject\":"
		"\"shop.example\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-01T10:00:00.000Z\",\"site_id\":7,\"site\":"
		"\"shop.example\",\"site_type\":\"wordpress\",\"domain\":"
		"\"shop.example\",\"domain_id\":2,\"user\":\"bob\"}",
	},
	{
		"site.removed", "DOMAIN (site:ID when its domain is unknown)",
		NULL, "panel-db",
		"an application was removed (its `sites` row was deleted)",
		"The domain and user are the ones the site had when it was "
		"seen (the domain row may be gone already).",
		(const struct catalogue_field[]){
			{ "site_id", "integer", true, NULL, "sites.id" },
			{ "site", "string|null", true, NULL, "sites.site_name" },
			{ "site_type", "string|null", true, NULL,
			  "sites.type" },
			{ "domain", "string", false, NULL, "the site's domain" },
			{ "domain_id", "integer", false, NULL,
			  "sites.domain_id" },
			{ "user", "string", false, NULL, "the domain's owner" },
			END },
		"{\"id\":61,\"type\":\"site.removed\",\"subject\":"
		"\"shop.example\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-02T10:00:00.000Z\",\"site_id\":7,\"site\":"
		"\"shop.example\",\"site_type\":\"wordpress\",\"domain\":"
		"\"shop.example\",\"domain_id\":2,\"user\":\"bob\"}",
	},
	{
		"stats.report", "DOMAIN", NULL, "plugin goaccess",
		"GoAccess made (or failed to make) a domain's report", NULL,
		(const struct catalogue_field[]){
			F_DOMAIN,
			{ "user", "string", true, NULL, "the owner" },
			{ "ok", "boolean", true, NULL, "the report was made" },
			{ "hits", "integer", false, NULL,
			  "requests in this run's logs" },
			{ "total", "integer", false, NULL,
			  "requests counted so far" },
			{ "error", "string", false, NULL, "why it failed" },
			END },
		"{\"id\":501,\"type\":\"stats.report\",\"subject\":"
		"\"shop.example\",\"source\":\"plugin\",\"node\":\"\",\"time\":"
		"\"2025-05-02T00:00:05.000Z\",\"domain\":\"shop.example\","
		"\"user\":\"bob\",\"ok\":true,\"hits\":120,\"total\":3400}",
	},
	{
		"stats.run", "stats (or a domain when sent by hand)",
		"^stats$", "plugin goaccess (its schedule); also sent by hand",
		"run the GoAccess reports now",
		"The goaccess plugin emits it on its schedule ([STATS] of "
		"openpanel.config) and acts on it; `ophookctl emit stats.run "
		"stats [domain=D]` asks for a run (of one domain).",
		(const struct catalogue_field[]){
			{ "scheduled", "boolean", false, NULL,
			  "true: made by the schedule" },
			{ "domain", "string", false, NULL,
			  "only this domain" },
			END },
		"{\"id\":500,\"type\":\"stats.run\",\"subject\":\"stats\","
		"\"source\":\"plugin\",\"node\":\"\",\"time\":"
		"\"2025-05-02T00:00:00.000Z\",\"scheduled\":true}",
	},
	{
		"user.added", "user:NAME", "^user:", "files + panel-db",
		"a user was added (opencli user-add)",
		"ONE event for the user's folder ROOT/openpanel/core/users/NAME "
		"and its users row, whichever is seen first (the other "
		"observation is merged): path when the folder came first, the "
		"row's fields when the row did.",
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the user name" },
			{ "path", "string", false, NULL, "the user's folder" },
			F_USERDB("string"),
			{ "email", "string", false, NULL, "users.email" },
			{ "suspended", "boolean", false, NULL,
			  "the row was added suspended" },
			END },
		"{\"id\":10,\"type\":\"user.added\",\"subject\":\"user:bob\","
		"\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-01T07:00:00.000Z\",\"user\":\"bob\",\"user_id\":2,"
		"\"context\":\"bob\",\"plan\":\"default\",\"plan_id\":1,"
		"\"email\":\"bob@example.com\",\"suspended\":false}",
	},
	{
		"user.denylist.changed", "user:NAME", "^user:", "files",
		"addresses were added to or removed from a user's Caddy "
		"deny list",
		"ROOT/caddy/deny/NAME.ips (opencli user-block_ip): it blocks "
		"them from that user's sites only, never in the firewall.",
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the user" },
			{ "path", "string", true, NULL, "the .ips file" },
			{ "added", "string[]", true, NULL,
			  "addresses now blocked" },
			{ "removed", "string[]", true, NULL,
			  "addresses no longer blocked" },
			F_USERDB("string"), END },
		"{\"id\":20,\"type\":\"user.denylist.changed\",\"subject\":"
		"\"user:bob\",\"source\":\"inotify\",\"node\":\"\",\"time\":"
		"\"2025-05-01T16:00:00.000Z\",\"path\":\"/etc/openpanel/caddy/"
		"deny/bob.ips\",\"user\":\"bob\",\"added\":[\"198.51.100.7\"],"
		"\"removed\":[]}",
	},
	{
		"user.limits_changed", "user:NAME", "^user:", "panel-db",
		"the resource limits of a user changed without a plan change",
		"origin plan: the row of the user's plan was edited (one event "
		"per user on that plan; limits are the plans columns that "
		"changed).  A user moved to another plan gets user.plan_changed "
		"(with the limits that differ) instead, never both.  origin "
		"slice: the systemd drop-ins of user-UID.slice changed "
		"(PATHS_SYSTEMD/system/user-UID.slice.d/*.conf written by "
		"opencli plan-apply, system.control/ by `systemctl "
		"set-property`, which user-change_plan and plan-apply run); "
		"UID is the owner of the user's home.  A slice seen for the "
		"first time (a new user) is no change.",
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the user" },
			{ "origin", "string", true, "plan|slice",
			  "where the limits come from" },
			{ "uid", "integer", false, NULL,
			  "origin slice: the slice's uid" },
			{ "limits", "object", true, NULL,
			  "each limit that changed: {\"NAME\":{\"old\":..., "
			  "\"new\":...}} (origin plan: plans columns "
			  "domains_limit, websites_limit, email_limit, "
			  "ftp_limit, disk_limit, inodes_limit, db_limit, cpu, "
			  "ram, bandwidth; origin slice: cpu_quota, memory_max, "
			  "tasks_max from CPUQuota=, MemoryMax=, TasksMax=; "
			  "values as text, null for none)" },
			F_USERDB("string"), END },
		"{\"id\":31,\"type\":\"user.limits_changed\",\"subject\":"
		"\"user:bob\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-01T17:30:00.000Z\",\"user\":\"bob\",\"user_id\":2,"
		"\"context\":\"bob\",\"plan\":\"pro\",\"plan_id\":2,"
		"\"origin\":\"plan\",\"limits\":{\"cpu\":{\"old\":\"2\","
		"\"new\":\"4\"},\"ram\":{\"old\":\"2g\",\"new\":\"4g\"}}}",
	},
	{
		"user.plan_changed", "user:NAME", "^user:", "panel-db",
		"a user's plan changed (opencli user-change_plan)", NULL,
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the user" },
			F_USERDB("string|null"),
			{ "old_plan", "string|null", true, NULL,
			  "the plan before" },
			{ "old_plan_id", "integer|null", true, NULL,
			  "plan_id before" },
			{ "limits", "object", false, NULL,
			  "the limits that differ between the two plans, as "
			  "in user.limits_changed" },
			END },
		"{\"id\":30,\"type\":\"user.plan_changed\",\"subject\":"
		"\"user:bob\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-01T17:00:00.000Z\",\"user\":\"bob\",\"user_id\":2,"
		"\"context\":\"bob\",\"plan\":\"pro\",\"plan_id\":2,"
		"\"old_plan\":\"default\",\"old_plan_id\":1}",
	},
	{
		"user.removed", "user:NAME", "^user:", "files + panel-db",
		"a user was removed (opencli user-delete)",
		"ONE event once both the folder and the row are gone.",
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the user" },
			{ "path", "string", false, NULL, "the user's folder" },
			F_USERDB("string"), END },
		"{\"id\":11,\"type\":\"user.removed\",\"subject\":\"user:bob\","
		"\"source\":\"inotify\",\"node\":\"\",\"time\":"
		"\"2025-05-09T07:00:00.000Z\",\"path\":\"/etc/openpanel/"
		"openpanel/core/users/bob\",\"user\":\"bob\"}",
	},
	{
		"user.renamed", "user:NAME (the new name)", "^user:",
		"panel-db",
		"a user was renamed (opencli user-rename): one event for the "
		"row and the folder", NULL,
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the new name" },
			{ "old_user", "string", true, NULL, "the name before" },
			F_USERDB("string"), END },
		"{\"id\":12,\"type\":\"user.renamed\",\"subject\":"
		"\"user:robert\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-05T07:00:00.000Z\",\"user\":\"robert\",\"user_id\":2,"
		"\"context\":\"bob\",\"plan\":\"default\",\"plan_id\":1,"
		"\"old_user\":\"bob\"}",
	},
	{
		"user.suspended", "user:NAME", "^user:", "panel-db",
		"a user was suspended (opencli user-suspend)",
		"users.username became SUSPENDED_<YYYYmmddHHMMSS>_NAME; seen "
		"even for a user with no domain (no file changes then).",
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the user" },
			{ "username", "string", true, NULL,
			  "users.username as the panel wrote it" },
			{ "suspended_at", "string", true, NULL,
			  "the time in the username, YYYY-MM-DDTHH:MM:SSZ" },
			F_USERDB("string"), END },
		"{\"id\":13,\"type\":\"user.suspended\",\"subject\":"
		"\"user:bob\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-06T07:00:00.000Z\",\"user\":\"bob\",\"user_id\":2,"
		"\"context\":\"bob\",\"plan\":\"default\",\"plan_id\":1,"
		"\"suspended_at\":\"2025-05-06T07:00:00Z\",\"username\":"
		"\"SUSPENDED_20250506070000_bob\"}",
	},
	{
		"user.unsuspended", "user:NAME", "^user:", "panel-db",
		"a suspended user was unsuspended", NULL,
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the user" },
			{ "suspended_at", "string", true, NULL,
			  "when the suspension that ended began" },
			F_USERDB("string"), END },
		"{\"id\":14,\"type\":\"user.unsuspended\",\"subject\":"
		"\"user:bob\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-07T07:00:00.000Z\",\"user\":\"bob\",\"user_id\":2,"
		"\"context\":\"bob\",\"plan\":\"default\",\"plan_id\":1,"
		"\"suspended_at\":\"2025-05-06T07:00:00Z\"}",
	},
	{
		"user.updated", "user:NAME", "^user:", "panel-db",
		"a user's account settings changed: email, password, 2FA",
		"The Go panel changes these in the users row (passkeys in its "
		"user_passkeys table) with no opencli run and no hook.  changed says which; for the password and "
		"the 2FA secret only THAT they changed is said: never the hash, "
		"the secret, nor anything made from them.",
		(const struct catalogue_field[]){
			{ "user", "string", true, NULL, "the user" },
			{ "changed", "string[]", true, NULL,
			  "what changed: email, password, 2fa, passkeys" },
			{ "email", "string|null", false, NULL,
			  "users.email now (when it changed)" },
			{ "old_email", "string|null", false, NULL,
			  "users.email before (when it changed)" },
			{ "twofa_enabled", "boolean", false, NULL,
			  "users.twofa_enabled now (when 2fa changed)" },
			{ "twofa_disabled", "boolean", false, NULL,
			  "true when 2FA was turned off" },
			{ "passkeys", "integer", false, NULL,
			  "the user's passkeys now (user_passkeys rows; when "
			  "one was added or removed)" },
			{ "old_passkeys", "integer", false, NULL,
			  "how many before" },
			F_USERDB("string"), END },
		"{\"id\":15,\"type\":\"user.updated\",\"subject\":"
		"\"user:bob\",\"source\":\"db\",\"node\":\"\",\"time\":"
		"\"2025-05-08T07:00:00.000Z\",\"user\":\"bob\",\"user_id\":2,"
		"\"context\":\"bob\",\"plan\":\"default\",\"plan_id\":1,"
		"\"changed\":[\"email\",\"password\"],\"email\":"
		"\"bob@example.org\",\"old_email\":\"bob@example.com\"}",
	},
};
#define CATALOGUE_N_TYPES \
	(sizeof(catalogue_type_table) / sizeof(catalogue_type_table[0]))

/* The intents: what `ophookctl check INTENT key=value...` may ask, the
 * ones ophookctl guard maps opencli's commands to (ctl/guard.c; the unit
 * test checks that every one of them is here, with its keys).  Every
 * check from the guard also carries command=OPENCLI-COMMAND. */
static const struct catalogue_intent catalogue_intent_table[] = {
	{ "admin.manage", "action admin", "opencli admin (OpenAdmin "
	  "accounts, notifications)" },
	{ "dns.update_ns", "", "opencli domains-update_ns: new name servers "
	  "in every zone" },
	{ "domain.add", "domain user docroot php_version comment",
	  "opencli domains-add: add a domain to a user" },
	{ "domain.delete", "domain", "opencli domains-delete" },
	{ "domain.dns", "action domain", "opencli domains-dns: change a "
	  "zone's records" },
	{ "domain.dnssec", "domain", "opencli domains-dnssec" },
	{ "domain.docroot", "domain docroot", "opencli domains-docroot" },
	{ "domain.edit", "domain", "opencli domains-edit: replace a "
	  "domain's Caddy conf" },
	{ "domain.hsts", "domain mode", "opencli domains-hsts" },
	{ "domain.ssl", "domain mode", "opencli domains-ssl: auto or custom "
	  "certificate" },
	{ "domain.suspend", "domain comment", "opencli domains-suspend" },
	{ "domain.unsuspend", "domain", "opencli domains-unsuspend" },
	{ "domain.varnish", "domain mode", "opencli domains-varnish" },
	{ "files.fix_permissions", "user", "opencli files-fix_permissions" },
	{ "files.purge_trash", "user", "opencli files-purge_trash" },
	{ "ftp.add", "ftp_user folder user", "opencli ftp-add" },
	{ "ftp.delete", "ftp_user user", "opencli ftp-delete" },
	{ "ftp.password", "ftp_user user", "opencli ftp-password" },
	{ "ftp.path", "ftp_user folder user", "opencli ftp-path" },
	{ "mail.account.add", "address", "opencli email-setup email add" },
	{ "mail.account.delete", "address", "opencli email-setup email del" },
	{ "mail.account.password", "address",
	  "opencli email-setup email update" },
	{ "mail.alias.add", "alias target", "opencli email-setup alias add" },
	{ "mail.alias.delete", "alias target",
	  "opencli email-setup alias del" },
	{ "mail.manage", "action", "opencli email-manage" },
	{ "mail.quota.delete", "address", "opencli email-setup quota del" },
	{ "mail.quota.set", "address quota", "opencli email-setup quota set" },
	{ "mail.ratelimit", "action", "opencli email-ratelimit" },
	{ "mail.server", "action", "opencli email-server (start, stop, "
	  "install the mail server)" },
	{ "mail.setup", "action", "opencli email-setup (its other "
	  "subcommands)" },
	{ "mail.webmail", "action", "opencli email-webmail" },
	{ "php.default", "user version", "opencli php-default" },
	{ "php.domain", "domain version", "opencli php-domain" },
	{ "plan.apply", "plan", "opencli plan-apply" },
	{ "plan.create", "plan", "opencli plan-create" },
	{ "plan.delete", "plan", "opencli plan-delete" },
	{ "plan.edit", "", "opencli plan-edit" },
	{ "server.api", "mode", "opencli api" },
	{ "server.backup", "", "opencli backup, docker-backup" },
	{ "server.config", "action key", "opencli config (not config get)" },
	{ "server.docker", "action", "opencli docker, docker-autostart" },
	{ "server.docker_update", "", "opencli docker-update" },
	{ "server.imunify", "action", "opencli imunify" },
	{ "server.license", "action", "opencli license" },
	{ "server.migrate", "", "opencli server-migrate" },
	{ "server.phpmyadmin", "action", "opencli phpmyadmin" },
	{ "server.port", "port", "opencli port" },
	{ "server.proxy", "action", "opencli proxy" },
	{ "server.update", "", "opencli update" },
	{ "user.2fa", "user mode", "opencli user-2fa" },
	{ "user.add", "user email plan reseller webserver sql",
	  "opencli user-add: add a user" },
	{ "user.backup", "user", "opencli user-backup" },
	{ "user.block_ip", "user", "opencli user-block_ip" },
	{ "user.change_plan", "user plan", "opencli user-change_plan" },
	{ "user.delete", "user", "opencli user-delete" },
	{ "user.email", "user email", "opencli user-email" },
	{ "user.ip", "user ip", "opencli user-ip" },
	{ "user.login", "user", "opencli user-login" },
	{ "user.password", "user", "opencli user-password (the password is "
	  "never passed on)" },
	{ "user.rename", "user new_user", "opencli user-rename" },
	{ "user.restore", "user", "opencli user-restore" },
	{ "user.suspend", "user", "opencli user-suspend" },
	{ "user.transfer", "user", "opencli user-transfer" },
	{ "user.unsuspend", "user", "opencli user-unsuspend" },
	{ "user.varnish", "user mode", "opencli user-varnish" },
	{ "waf.set", "setting domain", "opencli waf" },
	{ "website.secure", "domain", "opencli websites-secure" },
};
#define CATALOGUE_N_INTENTS \
	(sizeof(catalogue_intent_table) / sizeof(catalogue_intent_table[0]))

const struct catalogue_type *catalogue_types(size_t *n_r)
{
	*n_r = CATALOGUE_N_TYPES;
	return catalogue_type_table;
}

static int catalogue_type_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct catalogue_type *)elem)->name);
}

const struct catalogue_type *catalogue_type_find(const char *name)
{
	if (name == NULL)
		return NULL;
	return bsearch(name, catalogue_type_table, CATALOGUE_N_TYPES,
		       sizeof(catalogue_type_table[0]), catalogue_type_cmp);
}

const struct catalogue_intent *catalogue_intents(size_t *n_r)
{
	*n_r = CATALOGUE_N_INTENTS;
	return catalogue_intent_table;
}

static int catalogue_intent_cmp(const void *key, const void *elem)
{
	return strcmp(key, ((const struct catalogue_intent *)elem)->name);
}

const struct catalogue_intent *catalogue_intent_find(const char *name)
{
	if (name == NULL)
		return NULL;
	return bsearch(name, catalogue_intent_table, CATALOGUE_N_INTENTS,
		       sizeof(catalogue_intent_table[0]),
		       catalogue_intent_cmp);
}

/* Damerau-Levenshtein distance (adjacent swaps count one), capped: names
 * are at most 64 bytes (event_type_valid). */
static size_t catalogue_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	size_t d[66][66];

	if (la > 64 || lb > 64)
		return 99;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			size_t cost = a[i - 1] != b[j - 1];
			size_t v = d[i - 1][j] + 1;

			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (d[i - 1][j - 1] + cost < v)
				v = d[i - 1][j - 1] + cost;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

const char *catalogue_intent_suggest(const char *name)
{
	const char *best = NULL;
	size_t best_d = 3;

	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < CATALOGUE_N_INTENTS; i++) {
		size_t d = catalogue_distance(name,
					      catalogue_intent_table[i].name);

		if (d < best_d) {
			best_d = d;
			best = catalogue_intent_table[i].name;
		}
	}
	return best;
}

/* ---- JSON ---- */

/* The JSON Schema of one field type ("string|null", "string[]"). */
static json_t *catalogue_field_schema(const struct catalogue_field *f)
{
	json_t *s = json_object(), *types = json_array();
	char buf[64];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", f->type);
	for (char *t = strtok_r(buf, "|", &save); t != NULL;
	     t = strtok_r(NULL, "|", &save)) {
		size_t l = strlen(t);

		if (l > 2 && strcmp(t + l - 2, "[]") == 0) {
			t[l - 2] = '\0';
			json_object_set_new(s, "items",
					    json_pack("{ss}", "type", t));
			json_array_append_new(types, json_string("array"));
		} else {
			json_array_append_new(types, json_string(t));
		}
	}
	if (json_array_size(types) == 1)
		json_object_set(s, "type", json_array_get(types, 0));
	else
		json_object_set(s, "type", types);
	json_decref(types);
	if (f->values != NULL) {
		json_t *e = json_array();

		snprintf(buf, sizeof(buf), "%s", f->values);
		save = NULL;
		for (char *v = strtok_r(buf, "|", &save); v != NULL;
		     v = strtok_r(NULL, "|", &save))
			json_array_append_new(e, json_string(v));
		if (strstr(f->type, "null") != NULL)
			json_array_append_new(e, json_null());
		json_object_set_new(s, "enum", e);
	}
	json_object_set_new(s, "description", json_string(f->meaning));
	return s;
}

json_t *catalogue_schema(const struct catalogue_type *t)
{
	json_t *s = json_object(), *props = json_object();
	json_t *req = json_array(), *freq = json_array(), *free_src;
	json_t *subj, *els;
	char id[128];

	snprintf(id, sizeof(id), "https://ophook.invalid/schemas/%s.json",
		 t->name);
	json_object_set_new(s, "$schema",
			    json_string("http://json-schema.org/draft-07/"
					"schema#"));
	json_object_set_new(s, "$id", json_string(id));
	json_object_set_new(s, "title", json_string(t->name));
	json_object_set_new(s, "description", json_string(t->summary));
	json_object_set_new(s, "type", json_string("object"));
	for (const struct catalogue_field *f = catalogue_envelope;
	     f->name != NULL; f++) {
		json_object_set_new(props, f->name, catalogue_field_schema(f));
		if (f->required)
			json_array_append_new(req, json_string(f->name));
	}
	json_object_set_new(json_object_get(props, "type"), "const",
			    json_string(t->name));
	json_object_set_new(json_object_get(props, "subject"), "description",
			    json_string(t->subject));
	for (const struct catalogue_field *f = t->fields; f->name != NULL;
	     f++) {
		json_object_set_new(props, f->name, catalogue_field_schema(f));
		if (f->required)
			json_array_append_new(freq, json_string(f->name));
	}
	json_object_set_new(s, "properties", props);
	json_object_set_new(s, "required", req);
	/* new optional fields do not break a consumer's validation */
	json_object_set_new(s, "additionalProperties", json_true());
	/* the fields' presence (and the subject's form) is ophook's promise
	 * for the events it makes; emitted ones carry what was sent */
	free_src = json_array();
	for (size_t i = 0; catalogue_free_sources[i] != NULL; i++)
		json_array_append_new(free_src,
				      json_string(catalogue_free_sources[i]));
	json_object_set_new(s, "if",
			    json_pack("{s{s{so}}s[s]}", "properties", "source",
				      "enum", free_src, "required", "source"));
	els = json_pack("{so}", "required", freq);
	if (t->subject_re != NULL) {
		subj = json_pack("{s{s{ss}}}", "properties", "subject",
				 "pattern", t->subject_re);
		json_object_update(els, subj);
		json_decref(subj);
	}
	json_object_set_new(s, "else", els);
	return s;
}

json_t *catalogue_type_json(const struct catalogue_type *t)
{
	json_t *o = json_object(), *fields = json_array();

	json_object_set_new(o, "name", json_string(t->name));
	json_object_set_new(o, "subject", json_string(t->subject));
	json_object_set_new(o, "origin", json_string(t->origin));
	json_object_set_new(o, "summary", json_string(t->summary));
	if (t->detail != NULL)
		json_object_set_new(o, "detail", json_string(t->detail));
	for (const struct catalogue_field *f = t->fields; f->name != NULL;
	     f++) {
		json_t *fo = json_pack("{ss ss sb ss}", "name", f->name,
				       "type", f->type, "required",
				       f->required, "meaning", f->meaning);

		if (f->values != NULL)
			json_object_set_new(fo, "values",
					    json_string(f->values));
		json_array_append_new(fields, fo);
	}
	json_object_set_new(o, "fields", fields);
	json_object_set_new(o, "example", json_loads(t->example, 0, NULL));
	json_object_set_new(o, "schema", catalogue_schema(t));
	return o;
}

json_t *catalogue_intent_json(const struct catalogue_intent *in)
{
	json_t *keys = json_array();
	char buf[128];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", in->keys);
	for (char *k = strtok_r(buf, " ", &save); k != NULL;
	     k = strtok_r(NULL, " ", &save))
		json_array_append_new(keys, json_string(k));
	return json_pack("{ss so ss}", "name", in->name, "keys", keys,
			 "meaning", in->meaning);
}
