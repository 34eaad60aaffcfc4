#!/bin/sh
# The watched tree changes shape under the daemon: a root folder deleted
# and recreated (a folder below the root, then the root itself), a watched
# file replaced by a folder (a domain conf, and a root file of watch_extra),
# (s_mount.sh: a mount on top).  After each, a change must still
# become its event and the daemon must serve.  events = changes checked,
# lost = changes without their event.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
. "$top_srcdir/tests/reliability/lib.sh"
need jq

watch_config
install_plugins log
D=$T/root/caddy/domains
mkdir -p "$D" "$T/root/openpanel/core/users"
conf() { echo "$1 { reverse_proxy http://127.0.0.1:8080 }" > "$D/$1.conf"; }
start_ophookd || { ok 1 "ophookd starts"; row 1 1 0; exit 1; }

EVENTS=0
LOST=0
# seen TYPE SUBJECT NAME: wait (15 s) for that event in the log plugin's
# file after line MARK
seen() {
	EVENTS=$((EVENTS + 1))
	_st=$1 _ss=$2
	_seen() { tail -n +$((MARK + 1)) "$T/events.log" |
		jq -r --arg t "$_st" --arg s "$_ss" \
		'select(.type == $t and .subject == $s) | .id' | grep -q .; }
	if wait_for 15 _seen; then ok 0 "$3"; else
		LOST=$((LOST + 1)); ok 1 "$3"
		diag "events since: $(ev_since "$MARK" | tr '\n' ',')"
	fi
	ctl status >/dev/null 2>&1
	ok $? "serving after: $3"
	MARK=$(nlines)
}

conf a.example
seen domain.added a.example "baseline: a new conf"

rm -rf "$D"
sleep 0.3
mkdir "$D"
conf b.example
seen domain.added b.example "caddy/domains deleted and recreated: a new conf"

rm -rf "$T/root"
sleep 0.5
mkdir -p "$D"
conf c.example
seen domain.added c.example "the root deleted and recreated: a new conf"

conf d.example
seen domain.added d.example "(d.example added)"
rm "$D/d.example.conf"
mkdir "$D/d.example.conf"
conf e.example
seen domain.added e.example "a conf replaced by a folder: a new conf"
rmdir "$D/d.example.conf"
conf d.example
seen domain.added d.example "the folder replaced by a conf again"

Z=$T/bind/zones
echo 'zone "z1.example" IN { type master; file "'"$Z"'/z1.example.zone"; };' > "$T/bind/named.conf.local"
seen dns.zone.changed z1.example "(named.conf.local: a zone)"
rm "$T/bind/named.conf.local"
mkdir "$T/bind/named.conf.local"
sleep 0.5
conf f.example
seen domain.added f.example "named.conf.local (a root file) replaced by a folder: a new conf"
rmdir "$T/bind/named.conf.local"
echo 'zone "z2.example" IN { type master; file "'"$Z"'/z2.example.zone"; };' > "$T/bind/named.conf.local"
seen dns.zone.changed z2.example "named.conf.local a file again: its change"

kill -0 "$OPHOOKD_PID"
ok $? "ophookd still runs"
stop_ophookd
row $EVENTS $LOST 0
done_testing
