#!/bin/sh
# OpenPanel 2.x lifecycle commands replayed against a daemon watching a temp
# tree and polling an SQLite panel DB: each command's file and DB operations
# in the order opencli's scripts (branch podman), docker-mailserver's setup
# scripts, Caddy's certificate storage and the Go panel do them, with the
# tools they use (`>`, `>>`, sed -i, cp, cp -r, mv, rm -rf, background jobs;
# Go's os.WriteFile as truncate + write on the same inode).  Written from
# reading those scripts (facts only: see doc/openpanel.md and
# /work/shared/OPENPANEL.md); no text of theirs, the fixtures under
# openpanel/replay/ are ours in the templates' shape.  Each step expects its
# exact events by type and subject, none extra, and the payload fields that
# tell the change (user, reason, comment, ssl, waf, serial, quota).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need jq sqlite3 python3 openssl
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"

WAIT_MS=3000
PANEL_POLL_MS=300 SETTLE_MS=200 watch_config
sed -i "s|^  poll_ms: 300$|  poll_ms: 300\n  merge_wait_ms: $WAIT_MS|" "$T/ophookd.yaml"
grep -q "merge_wait_ms: $WAIT_MS" "$T/ophookd.yaml" || { plan 1; ok 1 "config"; exit 1; }
sqlite3 "$T/panel.db" < "$top_srcdir/contrib/demo/panel.sql"
install_plugins log
R=$T/root
D=$R/caddy/domains
U=$R/openpanel/core/users
Z=$T/bind/zones
NC=$T/bind/named.conf.local
HOME_DIR=$T/home
S=$R/caddy/suspended_domains
M=$T/mail/config
RFIX=$FIX/replay
mkdir -p "$D" "$S" "$U" "$R/openpanel/conf" "$R/caddy/ssl" "$HOME_DIR" \
	"$R/caddy/templates" "$R/bind9"
# what the installer puts under /etc/openpanel (read by the scripts; none of
# it is an event): the Caddy templates, the zone template, the skeleton
cp "$RFIX/domain.conf" "$FIX/suspended.conf" "$FIX/suspended_user.conf" \
	"$R/caddy/templates/"
cp "$RFIX/zone_template.txt" "$R/bind9/zone_template.txt"
cp -r "$RFIX/skeleton" "$R/skeleton"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
# the first poll is the baseline: wait for it
wait_for 10 test -s "$T/state/paneldb.json"

db() { sqlite3 "$T/panel.db" "$1" || echo "# db failed: $1" >&2; }
# quiet: past the merge wait, so that a late duplicate would show
quiet() { sleep $(( WAIT_MS / 1000 + 1 )); }
# expect_all NAME WANT...: expect, after the merge wait
expect_all() { _n=$1; shift; quiet; expect "$_n" "$@"; }
# journal id of the first event of TYPE SUBJECT (the journal's order: the
# log plugin writes events.log lane by lane, subjects side by side)
id_of() {
	jq -r --arg t "$1" --arg s "$2" \
		'select(.type == $t and .subject == $s) | .id' \
		"$T/events.log" | sort -n | head -n 1
}
# field FIELD of the last event TYPE SUBJECT ("null" when absent)
fld() {
	jq -r --arg t "$1" --arg s "$2" \
		"select(.type == \$t and .subject == \$s) | .$3" \
		"$T/events.log" | tail -n 1
}
uid_of() { db "SELECT id FROM users WHERE username='$1';"; }

# opencli user-add (user/add.sh): useradd -m makes the home; rootless
# Podman's storage.conf; then in the background the skeleton copied with
# `cp -r` (it makes the user's panel folder) and the html volume made; the
# compose file and .env copied and sed-edited; the Podman socket waited for;
# the users row INSERTed last (no id: AUTO_INCREMENT; server = username).
user_add() { # user_add NAME EMAIL PLAN_ID
	mkdir -p "$HOME_DIR/$1/docker-data" "$HOME_DIR/$1/.config/containers"
	printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\n' \
		"$HOME_DIR/$1/docker-data" \
		> "$HOME_DIR/$1/.config/containers/storage.conf"
	cp -r "$R/skeleton/" "$U/$1/" &
	_j1=$!
	mkdir -p "$HOME_DIR/$1/docker-data/volumes/${1}_html_data/_data" &
	_j2=$!
	printf 'services: {}\n' > "$HOME_DIR/$1/docker-compose.yml"
	printf 'USERNAME="x"\nHTTP_PORT="x"\n' > "$HOME_DIR/$1/.env"
	sed -i -e "s|USERNAME=\"[^\"]*\"|USERNAME=\"$1\"|" \
		-e "s|HTTP_PORT=\"[^\"]*\"|HTTP_PORT=\"127.0.0.1:32774\"|" \
		"$HOME_DIR/$1/.env"
	wait $_j1 $_j2 # (never a bare wait: the daemon is a child too)
	sleep 1 # the Podman socket, podman-compose up
	db "INSERT INTO users (username, password, email, plan_id, server)
	    VALUES ('$1', 'x', '$2', $3, '$1');"
}

# opencli domains-add (domains/add.sh): the row INSERTed first and read
# back; docroot folders; then in parallel: (a) the Caddy conf rendered from
# the template with `sed > conf`, then `sed -i` setting SecRuleEngine (Off:
# no waf in the panel config, so the same bytes); (b) the zone rendered
# (`echo "$(sed ... template)" > zone`), then the named.conf.local line
# appended if missing; (c) the vhost copied into the user's webserver volume
# and sed-edited there.
domains_add() { # domains_add DOMAIN USER
	_uid=$(uid_of "$2")
	db "INSERT INTO domains (user_id, docroot, php_version, domain_url)
	    VALUES ('$_uid', '/var/www/html/$1', '8.3', '$1');"
	db "SELECT COUNT(*) FROM domains WHERE domain_url='$1';" >/dev/null
	_vol=$HOME_DIR/$2/docker-data/volumes
	mkdir -p "$_vol/${2}_html_data/_data/$1" "$_vol/${2}_webserver_data/_data"
	(sed -e "s|<DOMAIN_NAME>|$1|g" -e "s|127.0.0.1:||g" \
	     -e "s|<SSL_PORT>|127.0.0.1:32775|g" \
	     -e "s|<NON_SSL_PORT>|127.0.0.1:32774|g" \
	     "$R/caddy/templates/domain.conf" > "$D/$1.conf" &&
	 sed -i "s/SecRuleEngine .*/SecRuleEngine Off/" "$D/$1.conf") &
	_j1=$!
	(_zone=$(sed -e "s|{domain}|$1|g" -e "s|{ns1}|ns1.example.net|g" \
		-e "s|{ns2}|ns2.example.net|g" -e "s|{rpemail}|root.$1|g" \
		-e "s|{server_ip}|192.0.2.10|g" "$R/bind9/zone_template.txt")
	 echo "$_zone" > "$Z/$1.zone"
	 grep -q "zone \"$1\"" "$NC" ||
		echo "zone \"$1\" IN { type master; file \"/etc/bind/zones/$1.zone\"; };" >> "$NC") &
	_j2=$!
	(printf 'server { server_name <DOMAIN_NAME>; }\n' \
		> "$_vol/${2}_webserver_data/_data/$1.conf" &&
	 sed -i "s|<DOMAIN_NAME>|$1|g" "$_vol/${2}_webserver_data/_data/$1.conf") &
	_j3=$!
	wait $_j1 $_j2 $_j3
}

# certmagic's FileStorage.Store, as current Caddy writes its storage: a
# temp file in the same folder named after the key plus random digits
# (os.CreateTemp(dir, base)), then renamed over the key.
caddy_store() { # caddy_store SRC DEST
	_tmp="$2$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')"
	cp "$1" "$_tmp" && chmod 600 "$_tmp" && mv -f "$_tmp" "$2"
}
# Caddy obtains a certificate: its folder made (0700), then the .key, the
# .crt and the .json metadata, in that order (certmagic saveCertResource).
# OpenPanel mounts Caddy's <data>/caddy/certificates at caddy/ssl, so the
# folder is caddy/ssl/<issuer key>/<domain>/.
caddy_issue() { # caddy_issue DOMAIN SERIAL
	_cd=$R/caddy/ssl/acme-v02.api.letsencrypt.org-directory/$1
	make_cert "$1" "$2" "$T/le.crt" "$T/le.key"
	printf '{\n\t"sans": [\n\t\t"%s"\n\t],\n\t"issuer_data": {\n\t\t"url": "https://acme-v02.api.letsencrypt.org/acme/cert/%s"\n\t}\n}' \
		"$1" "$2" > "$T/le.json"
	mkdir -p -m 700 "$_cd"
	caddy_store "$T/le.key" "$_cd/$1.key"
	caddy_store "$T/le.crt" "$_cd/$1.crt"
	caddy_store "$T/le.json" "$_cd/$1.json"
}

# opencli domains-ssl DOMAIN custom CERT KEY (domains/ssl.sh): the files
# copied to caddy/ssl/custom/<d>/fullchain.pem and key.pem, then, unless the
# conf already names them, its `tls {...}` block replaced by one `tls <cert>
# <key>` line with sed -i (the paths as Caddy sees them).
ssl_custom() { # ssl_custom DOMAIN CERT KEY
	_c=$R/caddy/ssl/custom/$1
	mkdir -p "$_c"
	cp "$2" "$_c/fullchain.pem"
	cp "$3" "$_c/key.pem"
	if ! grep -qE "tls\s+/.*?/fullchain\.pem\s+/.*?/key\.pem" "$D/$1.conf"; then
		sed -i "/tls {/,/}/c\
tls /data/caddy/certificates/custom/$1/fullchain.pem /data/caddy/certificates/custom/$1/key.pem
" "$D/$1.conf"
	fi
}
# opencli domains-ssl DOMAIN auto: sed -i back to `tls { on_demand }`; the
# custom files stay.
ssl_auto() { # ssl_auto DOMAIN
	sed -i -E "s|tls\s+/.*?/fullchain\.pem\s+/.*?/key\.pem|  tls {\n    on_demand\n  }|g" \
		"$D/$1.conf"
}

# opencli domains-suspend DOMAIN [--comment=X] (domains/suspend.sh): exits
# at once when suspended_domains/<d>.conf exists ("already suspended", even
# when domains-unsuspend left it there); else the live conf copied there,
# then the optional `# comment: X` line and the rendered suspended.conf
# written over the live conf.
domains_suspend() { # domains_suspend DOMAIN [COMMENT]
	[ -f "$S/$1.conf" ] && return 0
	mkdir -p "$S"
	cp "$D/$1.conf" "$S/"
	{
		[ -n "${2:-}" ] && printf '# comment: %s\n' "$2"
		sed -e "s|<DOMAIN_NAME>|$1|g" "$R/caddy/templates/suspended.conf"
	} > "$D/$1.conf"
}
# opencli domains-unsuspend DOMAIN: the copy put back with cp; it stays.
domains_unsuspend() { # domains_unsuspend DOMAIN
	[ -f "$S/$1.conf" ] || return 0
	cp "$S/$1.conf" "$D/$1.conf"
}

# opencli user-suspend USER (user/suspend.sh): for each of the user's
# domains the live conf copied aside unless a copy is there already, then
# suspended_user.conf rendered over it; the container names listed in
# stopped_containers_on_suspend.txt and stopped; the row renamed last.
user_suspend() { # user_suspend USER
	for _d in $(db "SELECT domain_url FROM domains WHERE user_id=$(uid_of "$1");"); do
		[ -f "$D/$_d.conf" ] && { [ -f "$S/$_d.conf" ] || cp "$D/$_d.conf" "$S/$_d.conf"; }
		sed "s|<DOMAIN_NAME>|$_d|g" "$R/caddy/templates/suspended_user.conf" \
			> "$D/$_d.conf"
	done
	printf 'nginx\nphp-fpm-8.3\n' > "$HOME_DIR/$1/stopped_containers_on_suspend.txt"
	db "UPDATE users SET username='SUSPENDED_$(date +%Y%m%d%H%M%S)_$1'
	    WHERE username='$1';"
}
# opencli user-unsuspend USER (user/unsuspend.sh): the row renamed back
# first; then each domain's suspended_domains copy cp'd back (the copies
# stay); the containers started and their list removed.
user_unsuspend() { # user_unsuspend USER
	db "UPDATE users SET username='$1'
	    WHERE username LIKE 'SUSPENDED\_%\_$1' ESCAPE '\\';"
	for _d in $(db "SELECT domain_url FROM domains WHERE user_id=$(uid_of "$1");"); do
		[ -f "$S/$_d.conf" ] && cp "$S/$_d.conf" "$D/$_d.conf"
	done
	rm -f "$HOME_DIR/$1/stopped_containers_on_suspend.txt"
}

# The Go panel's WAF switch for one domain (modules/waf): the conf read,
# every `SecRuleEngine Off` replaced by `On` (or back), written with
# os.WriteFile (O_TRUNC on the same inode, one write); Caddy reloaded; the
# action appended to the user's activity.log.
go_waf() { # go_waf DOMAIN On|Off USER
	python3 - "$D/$1.conf" "$2" "$U/$3/activity.log" <<'PY'
import os, sys
path, status, act = sys.argv[1:4]
data = open(path, "rb").read()
old, new = (b"SecRuleEngine Off", b"SecRuleEngine On") if status == "On" \
	else (b"SecRuleEngine On", b"SecRuleEngine Off")
data = data.replace(old, new)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
os.close(fd)
fd = os.open(act, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, b"WAF switched for the domain\n")
os.close(fd)
PY
}

# The Go panel's DNS record add (modules/dns): the record line appended
# (O_APPEND), the action appended to activity.log, then RestartDNSService:
# the `<YYYYMMDD><NN> ; Serial number` line rewritten (today's UTC date, NN
# one more when the date is today's, else 01) and the zone written with
# os.WriteFile; then rndc reload.  Prints the new serial.
go_dns_add() { # go_dns_add DOMAIN "NAME TTL TYPE VALUE" USER
	python3 - "$Z/$1.zone" "$2" "$U/$3/activity.log" <<'PY'
import os, re, sys, time
path, rec, act = sys.argv[1:4]
name, ttl, typ, value = rec.split(None, 3)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, ("%s %s IN %s %s\n" % (name, ttl, typ, value)).encode())
os.close(fd)
fd = os.open(act, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
os.write(fd, b"added DNS record\n")
os.close(fd)
lines = open(path).read().splitlines(True)
today = time.strftime("%Y%m%d", time.gmtime())
serial = None
for i, line in enumerate(lines):
    m = re.search(r"(\d{8})(\d{2})\s*;\s*Serial number", line)
    if m is None:
        continue
    n = int(m.group(2)) + 1 if m.group(1) == today else 1
    serial = today + "%02d" % (n if n <= 99 else 1)
    lines[i] = line[:m.start()] + serial + " ; Serial number" + line[m.end():]
    break
if serial is not None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, "".join(lines).encode())
    os.close(fd)
print(serial)
PY
}

# docker-mailserver's setup scripts (target/bin/*, helpers/database/db.sh)
# write its config folder under a lock file named after the script; a new
# key is appended with `>>`, an existing line rewritten or deleted with
# `sed -i` (its sedfile wrapper).  opencli email-setup then sed-appends the
# owner's uid to a new account's line and rebuilds core/users/<u>/emails.yml
# (truncate, then one `>>` per line).
dms() { # dms SCRIPT COMMANDS...: COMMANDS run under SCRIPT's lock
	_lock=$M/$1.lock; shift
	echo "lock-id" > "$_lock"
	"$@"
	rm -f "$_lock"
}
emails_yml() { # emails_yml USER DOMAIN
	: > "$U/$1/emails.yml"
	grep "@$2|" "$M/postfix-accounts.cf" 2>/dev/null | cut -d'|' -f1 |
		while read -r _a; do echo "* $_a" >> "$U/$1/emails.yml"; done
}
append() { _f=$1; shift; printf '%s\n' "$*" >> "$_f"; }

# --- user-add: the folder first (cp -r of the skeleton), its row last ---------
user_add dave dave@example.net 1
DAVE=$(uid_of dave)
expect_all "user-add: one user.added" "user.added user:dave"
is "$(field_of user.added user_id)" "$DAVE" "user.added carries the row's user_id"
is "$(field_of user.added email)" "dave@example.net" "user.added carries the row's email"
ok "$([ -f "$U/dave/domains/.gitkeep" ] && [ -f "$U/dave/notifications.yaml" ]; echo $?)" \
	"the skeleton's files and its domains/ folder are in the user's folder"

# --- a row made before its folder ----------------------------------------------
db "INSERT INTO users (id, username, password, email, plan_id, server)
    VALUES (11, 'frank', 'x', 'frank@example.net', 2, 'frank');"
sleep 1
mkdir -p "$U/frank"
expect_all "row before folder: one user.added" "user.added user:frank"
is "$(field_of user.added user_id)" 11 "user.added (row first) carries user_id"

# --- domains-add ------------------------------------------------------------------
domains_add dave.example dave
expect_all "domains-add: domain.added and the zone" \
	"domain.added dave.example" "dns.zone.changed dave.example" \
	"dns.zone.changed dave.example"
is "$(fld domain.added dave.example user) $(fld domain.added dave.example ssl) $(fld domain.added dave.example waf)" \
	"dave auto off" "domain.added: its owner, auto SSL, WAF off"
is "$(jq -r 'select(.type=="dns.zone.changed" and .subject=="dave.example" and .serial != null) | .serial' "$T/events.log" | tail -n1)" \
	2026082201 "the zone's serial (the template's)"

# --- Caddy issues the domain a certificate (on demand, Let's Encrypt) -----------
caddy_issue dave.example 0x5a01
expect "Caddy certificate: cert.issued" "cert.issued dave.example"
is "$(fld cert.issued dave.example issuer) $(fld cert.issued dave.example serial)" \
	"acme-v02.api.letsencrypt.org-directory 5A01" "issuer folder and serial"
caddy_issue dave.example 0x5a02
expect "Caddy renews it: cert.renewed" "cert.renewed dave.example"
is "$(fld cert.renewed dave.example old_serial)" 5A01 "renewal's old serial"

# --- domains-ssl custom, auto, custom again (same files), a new custom cert -----
make_cert dave.example 0x6a01 "$T/cu1.crt" "$T/cu1.key"
make_cert dave.example 0x6a02 "$T/cu2.crt" "$T/cu2.key"
ssl_custom dave.example "$T/cu1.crt" "$T/cu1.key"
expect "domains-ssl custom: cert.installed and domain.updated" \
	"cert.installed dave.example" "domain.updated dave.example"
is "$(fld domain.updated dave.example ssl) $(fld domain.updated dave.example old_ssl)" \
	"custom auto" "domain.updated: ssl custom, was auto"
is "$(fld cert.installed dave.example serial)" 6A01 "the custom certificate's serial"
ssl_auto dave.example
expect "domains-ssl auto: domain.updated only (the custom files stay)" \
	"domain.updated dave.example"
is "$(fld domain.updated dave.example ssl) $(fld domain.updated dave.example old_ssl)" \
	"auto custom" "domain.updated: ssl auto, was custom"
ssl_custom dave.example "$T/cu1.crt" "$T/cu1.key"
expect "domains-ssl custom again, same files: domain.updated only" \
	"domain.updated dave.example"
is "$(fld domain.updated dave.example ssl)" custom "ssl custom again"
ssl_custom dave.example "$T/cu2.crt" "$T/cu2.key"
expect "domains-ssl custom with a new certificate, conf already custom: cert.installed only" \
	"cert.installed dave.example"
is "$(fld cert.installed dave.example serial)" 6A02 "the new custom serial"

# --- domains-suspend --comment, domains-unsuspend, domains-suspend again -------
domains_suspend dave.example "unpaid invoice 7"
expect "domains-suspend --comment: domain.suspended" "domain.suspended dave.example"
is "$(fld domain.suspended dave.example reason)|$(fld domain.suspended dave.example comment)" \
	"domain|unpaid invoice 7" "reason domain, the --comment text"
domains_unsuspend dave.example
expect "domains-unsuspend: domain.unsuspended" "domain.unsuspended dave.example"
is "$(fld domain.unsuspended dave.example ssl)" custom "the restored conf's SSL is custom"
ok "$([ -f "$S/dave.example.conf" ]; echo $?)" "the suspended copy stays"
domains_suspend dave.example "second time"
expect "domains-suspend again: opencli exits (\"already suspended\"), nothing written, no event"
ok "$(grep -q 'suspended_domain.html' "$D/dave.example.conf"; [ $? -ne 0 ]; echo $?)" \
	"(OpenPanel: the domain is still served: its stale copy blocks a new suspension)"

# --- the Go panel's WAF switch ---------------------------------------------------
go_waf dave.example On dave
expect "Go WAF On (os.WriteFile in place): domain.updated + domain.waf_changed" \
	"domain.updated dave.example" "domain.waf_changed dave.example"
is "$(fld domain.updated dave.example waf) $(fld domain.updated dave.example old_waf)" \
	"on off" "domain.updated: waf on, was off"
is "$(fld domain.waf_changed dave.example waf) $(fld domain.waf_changed dave.example old_waf)" \
	"on off" "domain.waf_changed: waf on, was off"
is "$(grep -c 'SecRuleEngine On' "$D/dave.example.conf")" 2 "both sites' SecRuleEngine are On"

# --- DNS records added in the Go panel (append, then the serial bump) -------------
S1=$(go_dns_add dave.example "shop 14400 A 192.0.2.11" dave)
expect "Go DNS record add: one dns.zone.changed" "dns.zone.changed dave.example"
is "$(fld dns.zone.changed dave.example serial) $(fld dns.zone.changed dave.example old_serial)" \
	"$S1 2026082201" "the bumped serial and the template's"
S2=$(go_dns_add dave.example "_acme 300 TXT \"token\"" dave)
expect "second record: one dns.zone.changed" "dns.zone.changed dave.example"
is "$(fld dns.zone.changed dave.example serial) $(fld dns.zone.changed dave.example old_serial)" \
	"$S2 $S1" "serial bumped again"

# --- user-suspend (a user with one domain), user-unsuspend -------------------------
user_suspend dave
expect_all "user-suspend: domain.suspended and user.suspended" \
	"domain.suspended dave.example" "user.suspended user:dave"
is "$(fld domain.suspended dave.example reason)|$(fld domain.suspended dave.example comment)" \
	"user|null" "reason user, no comment"
user_unsuspend dave
expect_all "user-unsuspend: user.unsuspended and domain.unsuspended" \
	"user.unsuspended user:dave" "domain.unsuspended dave.example"
# user-suspend kept the copy domains-suspend had left (WAF Off), so the
# user's WAF switch is undone: ophook reports what the conf now says
is "$(fld domain.unsuspended dave.example waf)" off \
	"domain.unsuspended: waf off (OpenPanel restored domains-suspend's stale copy)"

# --- email: account, quota and aliases; quota change; delete ----------------------
dms addmailuser append "$M/postfix-accounts.cf" \
	'info@dave.example|{SHA512-CRYPT}$6$s1$hashinfoAAAA'
sed -i "/^info@dave.example|/ { s/^\([^|]*|[^|]*\).*/\1|1004/}" "$M/postfix-accounts.cf"
emails_yml dave dave.example
dms setquota append "$M/dovecot-quotas.cf" 'info@dave.example:1G'
emails_yml dave dave.example
dms addalias append "$M/postfix-virtual.cf" 'sales@dave.example info@dave.example'
dms addalias append "$M/postfix-virtual.cf" 'team@dave.example boss@example.net'
expect "email-setup email add, quota set, alias add" \
	"mail.account.added dave.example" "mail.quota.changed dave.example" \
	"mail.alias.added dave.example" "mail.alias.added dave.example"
# a second target for an existing alias: setup.sh edits its line (a separate
# opencli run, so a separate change, whatever the settle window)
dms addalias sed -i '/^team@dave\.example\s/s/$/,info@dave.example/' "$M/postfix-virtual.cf"
expect "alias add to an existing alias: mail.alias.changed" \
	"mail.alias.changed dave.example"
# opencli email-setup quota set info@dave.example 2G: the line replaced
dms setquota sed -i 's/^info@dave\.example:.*/info@dave.example:2G/' "$M/dovecot-quotas.cf"
emails_yml dave dave.example
expect "email quota change: mail.quota.changed" "mail.quota.changed dave.example"
is "$(fld mail.quota.changed dave.example quota) $(fld mail.quota.changed dave.example old_quota)" \
	"2G 1G" "new and old quota"
# opencli email-setup email del -y info@dave.example (delmailuser): the
# account line, then the aliases (sole target: line gone; one of several:
# taken out), then the quota line; the mailbox removed in the container
dms delmailuser sh -c '
	sed -i "/^info@dave\.example|/d" "$1/postfix-accounts.cf"
	sed -i -e "/ info@dave\.example$/d" -e "s/,info@dave\.example//g" \
		-e "s/info@dave\.example,//g" "$1/postfix-virtual.cf"
	sed -i -e "/^info@dave\.example:.*$/d" "$1/dovecot-quotas.cf"' sh "$M"
emails_yml dave dave.example
expect "email delete: account, aliases and quota" \
	"mail.account.removed dave.example" "mail.alias.removed dave.example" \
	"mail.alias.changed dave.example" "mail.quota.changed dave.example"
is "$(fld mail.quota.changed dave.example quota) $(fld mail.quota.changed dave.example old_quota)" \
	"null 2G" "quota gone"
is "$(fld mail.alias.changed dave.example alias) $(fld mail.alias.changed dave.example targets)" \
	"team@dave.example boss@example.net" "the alias left with its other target"

# --- domains-delete: rows, the confs, custom SSL, then the zone and its line ------
db "DELETE FROM sites WHERE domain_id IN (SELECT domain_id FROM domains
    WHERE domain_url='dave.example');"
db "DELETE FROM domains WHERE domain_url='dave.example';"
db "SELECT COUNT(*) FROM domains WHERE domain_url='dave.example';" >/dev/null
rm -f "$D/dave.example.conf"
rm -f "$S/dave.example.conf"
rm -rf "$R/caddy/ssl/custom/dave.example"
rm -f "$Z/dave.example.zone"
grep -q 'zone "dave.example"' "$NC" && sed -i '/zone "dave.example"/d' "$NC"
expect "domains-delete" "domain.removed dave.example" "cert.removed dave.example" \
	"dns.zone.changed dave.example" "dns.zone.changed dave.example"
is "$(fld domain.removed dave.example user)" dave "domain.removed names its owner"
is "$(fld cert.removed dave.example issuer) $(fld cert.removed dave.example serial)" \
	"custom 6A02" "the custom certificate removed (Caddy's own stays)"

# --- user-rename: the folder moved, then the row renamed ---------------------------
mv "$U/dave" "$U/erin"
db "UPDATE users SET username='erin' WHERE username='dave';"
expect_all "user-rename: user.renamed only" "user.renamed user:erin"
is "$(field_of user.renamed old_user)" dave "user.renamed names the old user"

# --- user-delete of a user with two domains ------------------------------------------
user_add gina gina@example.net 1
GINA=$(uid_of gina)
domains_add g1.example gina
domains_add g2.example gina
expect_all "gina and her two domains" "user.added user:gina" \
	"domain.added g1.example" "domain.added g2.example" \
	"dns.zone.changed g1.example" "dns.zone.changed g1.example" \
	"dns.zone.changed g2.example" "dns.zone.changed g2.example"
is "$(fld domain.added g1.example user) $(fld domain.added g2.example user)" \
	"gina gina" "both domain.added carry their owner"
# in parallel: the DB batch then the domains' files; the home folder and
# the panel folder
(db "DELETE FROM sites WHERE domain_id IN (SELECT domain_id FROM domains
     WHERE user_id=$GINA); DELETE FROM domains WHERE user_id='$GINA';
     DELETE FROM users WHERE username='gina' OR username LIKE 'SUSPENDED_%_gina';"
 for d in g1.example g2.example; do
	sed -i "/zone \"$d\" IN {/,/};/d" "$NC"
 done
 rm -rf "$D/g1.example.conf" "$R/caddy/suspended_domains/g1.example.conf" \
	"$Z/g1.example.zone" "$D/g2.example.conf" \
	"$R/caddy/suspended_domains/g2.example.conf" "$Z/g2.example.zone") &
_j1=$!
(rm -rf "$HOME_DIR/gina"; rm -rf "$U/gina") &
_j2=$!
wait $_j1 $_j2
expect_all "user-delete: the domains' removals, then one user.removed" \
	"domain.removed g1.example" "domain.removed g2.example" \
	"dns.zone.changed g1.example" "dns.zone.changed g1.example" \
	"dns.zone.changed g2.example" "dns.zone.changed g2.example" \
	"user.removed user:gina"
ur=$(id_of user.removed user:gina)
d1=$(id_of domain.removed g1.example)
d2=$(id_of domain.removed g2.example)
ok "$([ -n "$ur" ] && [ -n "$d1" ] && [ -n "$d2" ] && [ "$ur" -gt "$d1" ] && [ "$ur" -gt "$d2" ]; echo $?)" \
	"user.removed comes after its domains' domain.removed"
ok "$([ "$(fld user.removed user:gina source)" != reconcile ] &&
	[ "$(fld domain.removed g2.example source)" != reconcile ]; echo $?)" \
	"seen as it happened: the home's removal is no full reconcile"

# --- a crash while a user waits for its row: the restart still announces it ---------
kill -KILL "$OPHOOKD_PID"; wait "$OPHOOKD_PID" 2>/dev/null
mkdir -p "$U/hank"
start_ophookd || { ok 1 "ophookd restarts"; done_testing; exit 1; }
sleep 0.5
kill -KILL "$OPHOOKD_PID"; wait "$OPHOOKD_PID" 2>/dev/null
db "INSERT INTO users (id, username, password, email, plan_id, server)
    VALUES (13, 'hank', 'x', 'hank@example.net', 1, 'hank');"
start_ophookd || { ok 1 "ophookd restarts"; done_testing; exit 1; }
expect_all "killed while a folder waited for its row: one user.added" \
	"user.added user:hank"

stop_ophookd
done_testing
