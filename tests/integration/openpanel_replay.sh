#!/bin/sh
# OpenPanel 2.x lifecycle commands replayed against a daemon watching a temp
# tree and polling an SQLite panel DB: each command's file and DB operations
# in the order opencli's scripts (branch podman) and the Go panel do them,
# with the tools they use (`>`, `>>`, sed -i, cp, mv, rm -rf, background
# jobs; Go's os.WriteFile as truncate + write on the same inode).  Written
# from reading the scripts (facts only: see doc/openpanel.md); no text of
# theirs.  Each step expects its exact events by type and subject, none
# extra: a user's folder and its `users` row are one user, a rename is one
# user.renamed, a user delete gives its domains' domain.removed then one
# user.removed, domain.added carries its owner.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need jq sqlite3 python3
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
mkdir -p "$D" "$R/caddy/suspended_domains" "$U" "$R/openpanel/conf" \
	"$R/caddy/ssl" "$HOME_DIR" "$T/skel"
echo "enabled: true" > "$T/skel/notifications.yaml"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
# the first poll is the baseline: wait for it
wait_for 10 test -s "$T/state/paneldb.json"

db() { sqlite3 "$T/panel.db" "$1"; }
# quiet: past the merge wait, so that a late duplicate would show
quiet() { sleep $(( WAIT_MS / 1000 + 1 )); }
# expect_all NAME WANT...: expect, after the merge wait
expect_all() { _n=$1; shift; quiet; expect "$_n" "$@"; }
# line number of the first event of TYPE SUBJECT
line_of() {
	jq -r '[.type, .subject] | join(" ")' "$T/events.log" |
		grep -n -x -F "$1 $2" | head -n 1 | cut -d: -f1
}
# The Go panel's DNS record add: the record appended (O_APPEND), then the
# whole zone written again with the serial bumped (os.WriteFile: O_TRUNC on
# the same inode, then one write); a pause between the truncate and the
# write, past the settle window, so the empty file is seen.
go_dns_add() { # go_dns_add ZONE_FILE RECORD OLD_SERIAL NEW_SERIAL
	python3 -c '
import os, sys, time
path, rec, old, new = sys.argv[1:5]
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
os.write(fd, (rec + "\n").encode())
os.close(fd)
with open(path, "rb") as f:
    data = f.read().replace(old.encode(), new.encode())
fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
time.sleep(0.4)
os.write(fd, data)
os.close(fd)' "$@"
}

# user-add: folder from the skeleton (background job), containers, the row
# last (INSERT with server = username)
user_add() { # user_add NAME ID
	(mkdir -p "$U/$1" && cp "$T/skel/notifications.yaml" "$U/$1/") &
	_j1=$!
	mkdir -p "$HOME_DIR/$1" && : > "$HOME_DIR/$1/docker-compose.yml"
	wait $_j1
	sleep 1 # podman-compose up
	db "INSERT INTO users (id, username, password, email, plan_id, server)
	    VALUES ($2, '$1', 'x', '$1@example.net', 1, '$1');"
}
# domains-add: the row first, then in parallel the Caddy conf (template >
# conf, then sed -i edits) and the zone (template > zone, then the
# named.conf.local line appended)
domains_add() { # domains_add DOMAIN USER_ID
	db "INSERT INTO domains (user_id, docroot, php_version, domain_url)
	    VALUES ($2, '/var/www/html/$1', '8.3', '$1');"
	(sed -e "s|<DOMAIN_NAME>|$1|g" -e "s|<SSL_PORT>|443|g" \
	     -e "s|<NON_SSL_PORT>|80|g" "$FIX/domain.conf" > "$D/$1.conf" &&
	 sed -i "s|SecRuleEngine On|SecRuleEngine Off|" "$D/$1.conf") &
	_j1=$!
	(sed -e 's/{ns1}/ns1.example.net/g' -e 's/{ns2}/ns2.example.net/g' \
	     -e 's/{rpemail}/hostmaster.example.net/g' \
	     -e 's/{server_ip}/192.0.2.10/g' "$FIX/zone_template.txt" \
	     > "$Z/$1.zone" &&
	 printf 'zone "%s" IN { type master; file "/etc/bind/zones/%s.zone"; };\n' \
		"$1" "$1" >> "$NC") &
	_j2=$!
	wait $_j1 $_j2 # (never a bare wait: the daemon is a child too)
}

# --- user-add: the folder first, its row last ---------------------------------
user_add dave 10
expect_all "user-add: one user.added" "user.added user:dave"
is "$(field_of user.added user_id)" 10 "user.added carries the row's user_id"
is "$(field_of user.added email)" "dave@example.net" "user.added carries the row's email"

# --- a row made before its folder ----------------------------------------------
db "INSERT INTO users (id, username, password, email, plan_id, server)
    VALUES (11, 'frank', 'x', 'frank@example.net', 2, 'frank');"
sleep 1
mkdir -p "$U/frank"
expect_all "row before folder: one user.added" "user.added user:frank"
is "$(field_of user.added user_id)" 11 "user.added (row first) carries user_id"

# --- domains-add ------------------------------------------------------------------
domains_add dave.example 10
expect_all "domains-add: domain.added and the zone" \
	"domain.added dave.example" "dns.zone.changed dave.example" \
	"dns.zone.changed dave.example"
is "$(field_of domain.added user)" dave "domain.added carries its owner"

# --- a Go DNS edit: a record appended, then the serial bumped by a second write --
go_dns_add "$Z/dave.example.zone" 'shop    IN      A       192.0.2.11' \
	2026010101 2026010102
expect "Go DNS edit (append + truncate/rewrite): one dns.zone.changed" \
	"dns.zone.changed dave.example"
is "$(field_of dns.zone.changed serial)" 2026010102 "the event has the bumped serial"

# --- domains-delete: rows first, then the conf, the zone and its line -------------
db "DELETE FROM sites WHERE domain_id IN (SELECT domain_id FROM domains
    WHERE domain_url='dave.example');
    DELETE FROM domains WHERE domain_url='dave.example';"
rm -f "$D/dave.example.conf" "$R/caddy/suspended_domains/dave.example.conf"
rm -f "$Z/dave.example.zone"
sed -i '/zone "dave.example" IN {/,/};/d' "$NC"
expect "domains-delete" "domain.removed dave.example" \
	"dns.zone.changed dave.example" "dns.zone.changed dave.example"
is "$(field_of domain.removed user)" dave "domain.removed names its owner"

# --- user-rename: the folder moved, then the row renamed ---------------------------
mv "$U/dave" "$U/erin"
db "UPDATE users SET username='erin' WHERE username='dave';"
expect_all "user-rename: user.renamed only" "user.renamed user:erin"
is "$(field_of user.renamed old_user)" dave "user.renamed names the old user"

# --- user-delete of a user with two domains ------------------------------------------
user_add gina 12
domains_add g1.example 12
domains_add g2.example 12
expect_all "gina and her two domains" "user.added user:gina" \
	"domain.added g1.example" "domain.added g2.example" \
	"dns.zone.changed g1.example" "dns.zone.changed g1.example" \
	"dns.zone.changed g2.example" "dns.zone.changed g2.example"
# in parallel: the DB batch then the domains' files; the home folder and
# the panel folder
(db "DELETE FROM sites WHERE domain_id IN (SELECT domain_id FROM domains
     WHERE user_id=12); DELETE FROM domains WHERE user_id='12';
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
ur=$(line_of user.removed user:gina)
d1=$(line_of domain.removed g1.example)
d2=$(line_of domain.removed g2.example)
ok "$([ -n "$ur" ] && [ -n "$d1" ] && [ -n "$d2" ] && [ "$ur" -gt "$d1" ] && [ "$ur" -gt "$d2" ]; echo $?)" \
	"user.removed comes after its domains' domain.removed"

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
