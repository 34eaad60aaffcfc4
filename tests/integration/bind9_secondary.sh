#!/bin/sh
# bind9 plugin, primary and secondary on one machine: two real named (node
# A's primary, node B's secondary, each on its own loopback port with its own
# rndc key and controls port, allow-new-zones yes) and two ophookd (nodeA and
# nodeB: own roots, state, sockets, SQLite journals).  A domain added on A
# (a real caddy/domains/<d>.conf in A's root) gets a master zone with notify
# and allow-transfer; the same event delivered to B gets a `type slave` zone
# that named transfers from A.  Until the shared journal delivers A's events
# to B, the test emits them on B's socket with origin_node=nodeA (emit cannot
# set the engine's own "node" field).  Removed on both: gone from both.
. "$top_srcdir/tests/lib.sh"

need named rndc rndc-confgen dig named-checkzone named-checkconf python3
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/bind9/.libs/bind9.so" ] || skip_all "bind9 plugin not built"

IP=192.0.2.45
D=shop.test
install_plugins bind9 log

. "$top_srcdir/tests/integration/named_lib.sh"

# write_node NAME BIND9_SETTINGS: $T/NAME/ophookd.yaml
write_node() {
	_n=$1
	mkdir -p "$T/$_n/root/caddy/domains" "$T/$_n/state" "$T/$_n/hooks"
	cat > "$T/$_n/ophookd.yaml" <<EOF
node: node$_n
root: $T/$_n/root
state_dir: $T/$_n/state
socket: $T/$_n/ophookd.sock
hooks_dir: $T/$_n/hooks
watch_extra: []
log_level: ${OPHOOK_LOG_LEVEL:-info}
plugin_dirs:
  - $T/plugins
panel_db:
  driver: sqlite
  path: $T/$_n/panel.db
  poll_ms: 0
journal:
  backoff_ms: 100
  backoff_max_ms: 1000
watch:
  settle_ms: 20
plugins:
  log:
    settings:
      path: $T/$_n/events.log
  bind9:
    settings:
      zones_dir: $T/$_n/zones
      named_conf_local: $T/$_n/named.conf.local
      server_ip: $IP
      window_ms: 100
      rndc_argv: ["rndc", "-s", "127.0.0.1", "-p", "$(eval echo "\$RNDC_$_n")", "-k", "$T/$_n/rndc.key"]
$2
EOF
}

start_node() {
	enable_plugins "$T/$1/ophookd.yaml"
	"$OPHOOKD" -f -c "$T/$1/ophookd.yaml" >>"$T/$1/ophookd.log" 2>&1 &
	cleanup_pid $!
	if ! wait_for 20 "$OPHOOKCTL" -s "$T/$1/ophookd.sock" status; then
		tail -n 20 "$T/$1/ophookd.log" | sed "s/^/# ophookd $1: /"
		echo "Bail out! ophookd $1 did not come up"
		exit 1
	fi
}
ctl_a() { "$OPHOOKCTL" -s "$T/A/ophookd.sock" "$@"; }
ctl_b() { "$OPHOOKCTL" -s "$T/B/ophookd.sock" "$@"; }

DNS_A=$(free_port); RNDC_A=$(free_port)
DNS_B=$(free_port); RNDC_B=$(free_port)
start_named A
start_named B

write_node A "      role: primary
      notify: [\"127.0.0.1 port $DNS_B\"]
      allow_transfer: [\"127.0.0.1\"]"
write_node B "      role: secondary
      secondary_dir: $T/B/secondary
      primaries: { nodeA: \"127.0.0.1 port $DNS_A\" }"
start_node A
start_node B

# q PORT NAME TYPE: named's short answer
q() { dig @127.0.0.1 -p "$1" +short +time=2 +tries=1 "$2" "$3" 2>/dev/null; }
soa_serial() { q "$1" "$2" SOA | awk '{print $3}'; }
has_soa() { [ -n "$(soa_serial "$1" "$2")" ]; }
answers() { [ "$(q "$1" "$2" "$3")" = "$4" ]; }
refused() { dig @127.0.0.1 -p "$1" +time=2 +tries=1 "$2" SOA 2>/dev/null | grep -q "status: REFUSED"; }
axfr() { dig @127.0.0.1 -p "$1" +time=2 +tries=1 "$2" AXFR 2>/dev/null; }
has_event() { # NODE TYPE SUBJECT
	grep "\"type\": *\"$2\"" "$T/$1/events.log" 2>/dev/null |
		grep -q "\"subject\": *\"$3\""
}

# --- added on node A: master zone with notify and transfer ------------------
printf '%s {\n reverse_proxy 127.0.0.1:8080\n}\n' "$D" > "$T/A/root/caddy/domains/$D.conf"
ok "$(wait_for 30 has_event A domain.added "$D"; echo $?)" "A: domain.added from the caddy file"
ok "$(wait_for 30 has_soa "$DNS_A" "$D"; echo $?)" "A: primary named answers SOA"
ok "$(grep "zone \"$D\"" "$T/A/named.conf.local" | grep -q "notify yes; also-notify { 127.0.0.1 port $DNS_B; }; allow-transfer { 127.0.0.1; };"; echo $?)" \
	"A: the zone line carries notify, also-notify and allow-transfer"
ok "$(axfr "$DNS_A" "$D" | grep -q "^$D\..*IN[[:space:]]*SOA"; echo $?)" "A: AXFR from the primary works"
ok "$([ "$(axfr "$DNS_A" "$D" | grep -c 'IN[[:space:]]*SOA')" -eq 2 ]; echo $?)" "A: AXFR is complete (SOA at both ends)"
ok "$(dig -b 127.0.0.2 @127.0.0.1 -p "$DNS_A" +time=2 +tries=1 "$D" AXFR 2>/dev/null | grep -q 'Transfer failed'; echo $?)" \
	"A: AXFR from an address not in allow_transfer is refused"
A_NODE=$(grep "\"type\": *\"domain.added\"" "$T/A/events.log" | grep -o '"node": *"[^"]*"' | head -n 1)
ok "$(echo "$A_NODE" | grep -q nodeA; echo $?)" "A: the event carries its node ($A_NODE)"

# --- the event on node B: slave zone, transferred ----------------------------
ok "$(refused "$DNS_B" "$D"; echo $?)" "B: nothing before the event"
t0=$(date +%s%N)
ctl_b emit domain.added "$D" domain="$D" origin_node=nodeA >/dev/null
ok "$(wait_for 30 has_soa "$DNS_B" "$D"; echo $?)" "B: secondary named answers SOA after the transfer"
diag "B answered $(( ($(date +%s%N) - t0) / 1000000 )) ms after the emit (window_ms 100)"
is "$(soa_serial "$DNS_B" "$D")" "$(soa_serial "$DNS_A" "$D")" "B: same serial as the primary"
ok "$(answers "$DNS_B" "$D" A "$IP"; echo $?)" "B: answers the domain's A record"
ok "$(grep "zone \"$D\"" "$T/B/named.conf.local" | grep -q "type slave; masters { 127.0.0.1 port $DNS_A; }; file \"$T/B/secondary/$D.db\""; echo $?)" \
	"B: a type slave line with the primary's address"
ok "$(wait_for 10 test -s "$T/B/secondary/$D.db"; echo $?)" "B: named wrote the transferred zone file"
ok "$([ ! -e "$T/B/zones/$D.zone" ]; echo $?)" "B: no master zone of its own"
# delivered again (at least once): nothing changes
cp "$T/B/named.conf.local" "$T/B/conf.before"
ctl_b emit domain.added "$D" domain="$D" origin_node=nodeA >/dev/null
sleep 1
ok "$(cmp -s "$T/B/named.conf.local" "$T/B/conf.before"; echo $?)" "B: delivered twice, named.conf.local unchanged"
is "$(grep -c "zone \"$D\"" "$T/B/named.conf.local")" 1 "B: one zone line"
# an event from a node that is not one of B's primaries
ctl_b emit domain.added other.test domain=other.test origin_node=nodeC >/dev/null
sleep 0.5
ok "$(! grep -q other.test "$T/B/named.conf.local"; echo $?)" "B: a domain from an unknown node is ignored"

# --- a change on the primary reaches the secondary (NOTIFY, IXFR/AXFR) ------
S1=$(soa_serial "$DNS_A" "$D")
printf 'fresh 300 IN A 192.0.2.77\n' >> "$T/A/zones/$D.zone"
ctl_a emit dns.zone.changed "$D" domain="$D" path="$T/A/zones/$D.zone" >/dev/null
ok "$(wait_for 30 answers "$DNS_A" "fresh.$D" A 192.0.2.77; echo $?)" "A: edited zone served (serial bumped)"
ok "$(wait_for 30 answers "$DNS_B" "fresh.$D" A 192.0.2.77; echo $?)" "B: follows the edit after NOTIFY"
ok "$([ "$(soa_serial "$DNS_B" "$D")" -gt "$S1" ]; echo $?)" "B: newer serial than before ($S1)"

ok "$(grep -q "zone $D/IN: notify from 127.0.0.1#[0-9]*: serial" "$T/B/named.log"; echo $?)" \
	"B: named logged the primary's NOTIFY"

# --- the event reaches B before A made the zone: NOTIFY on load catches up --
D2=early.test
ctl_b emit domain.added "$D2" domain="$D2" origin_node=nodeA >/dev/null
ok "$(wait_for 30 grep -q "zone \"$D2\" IN { type slave;" "$T/B/named.conf.local"; echo $?)" \
	"B: slave zone line before the primary has the zone"
sleep 1
printf '%s {\n reverse_proxy 127.0.0.1:8080\n}\n' "$D2" > "$T/A/root/caddy/domains/$D2.conf"
ok "$(wait_for 30 has_soa "$DNS_A" "$D2"; echo $?)" "A: the late zone is served"
ok "$(wait_for 30 has_soa "$DNS_B" "$D2"; echo $?)" "B: transferred once the primary loaded it (not after the retry timer)"

# --- removed on both: gone from both -----------------------------------------
rm "$T/A/root/caddy/domains/$D.conf"
ok "$(wait_for 30 has_event A domain.removed "$D"; echo $?)" "A: domain.removed from the caddy file"
ok "$(wait_for 30 refused "$DNS_A" "$D"; echo $?)" "A: gone from the primary"
ctl_b emit domain.removed "$D" domain="$D" origin_node=nodeA >/dev/null
ok "$(wait_for 30 refused "$DNS_B" "$D"; echo $?)" "B: gone from the secondary"
ok "$(! grep -q "$D" "$T/B/named.conf.local"; echo $?)" "B: its line is gone"
ok "$(wait_for 10 test ! -e "$T/B/secondary/$D.db"; echo $?)" "B: its zone file is gone"

# --- a burst: N domains on A, the same events on B (catching up) ------------
N=${SEC_BURST_N:-100}
i=1
while [ "$i" -le "$N" ]; do
	echo "domain.added d$i.burst.test domain=d$i.burst.test user=u$((i % 7))" >> "$T/events.a"
	echo "domain.added d$i.burst.test domain=d$i.burst.test user=u$((i % 7)) origin_node=nodeA" >> "$T/events.b"
	echo "d$i.burst.test SOA" >> "$T/queries"
	i=$((i + 1))
done
answered() { # PORT
	dig @127.0.0.1 -p "$1" +short +time=2 +tries=1 -f "$T/queries" 2>/dev/null |
		grep -c " 3600 900 604800 3600\$" || true
}
all_answer() { [ "$(answered "$1")" -eq "$N" ]; }
rc_before=$(grep -c 'rndc reconfig done' "$T/B/ophookd.log")
start=$(date +%s%N)
ctl_a emit - < "$T/events.a" >/dev/null
ctl_b emit - < "$T/events.b" >/dev/null
ok "$(wait_for 300 all_answer "$DNS_A"; echo $?)" "burst: all $N zones served by the primary"
mid=$(date +%s%N)
grep -c '^zone "d[0-9]*\.burst\.test" IN { type slave;' "$T/B/named.conf.local" > "$T/B/lines_at_mid"
ok "$(wait_for 300 all_answer "$DNS_B"; echo $?)" "burst: all $N zones transferred to the secondary"
end=$(date +%s%N)
diag "burst of $N: primary answers after $(( (mid - start) / 1000000 )) ms; B's lines written by then: $(cat "$T/B/lines_at_mid")"
is "$(grep -c '^zone "d[0-9]*\.burst\.test" IN { type slave;' "$T/B/named.conf.local")" "$N" \
	"burst: one slave line per domain"
reconfigs=$(( $(grep -c 'rndc reconfig done' "$T/B/ophookd.log") - rc_before ))
ok "$([ "$reconfigs" -ge 1 ] && [ "$reconfigs" -le $((N / 4)) ]; echo $?)" \
	"burst: reconfigs on B are coalesced ($reconfigs for $N zones)"
diag "burst of $N: both answer after $(( (end - start) / 1000000 )) ms, $reconfigs reconfigs on B"

# hostile origin or domain on B: nothing written
before=$(cat "$T/B/named.conf.local"; ls -a "$T/B/secondary")
ctl_b emit domain.added evil.test domain=evil.test 'origin_node=../x' >/dev/null 2>&1
ctl_b emit domain.added evil.test 'domain=../../x"; };' origin_node=nodeA >/dev/null 2>&1
sleep 0.5
is "$(cat "$T/B/named.conf.local"; ls -a "$T/B/secondary")" "$before" "B: hostile names change no file"

if [ "$_tap_fail" -ne 0 ]; then
	for n in A B; do
		tail -n 15 "$T/$n/named.log" | sed "s/^/# named $n: /"
		tail -n 15 "$T/$n/ophookd.log" | sed "s/^/# ophookd $n: /"
	done
fi
done_testing
