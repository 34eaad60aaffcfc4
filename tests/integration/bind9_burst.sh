#!/bin/sh
# Burst test of the bind9 plugin with a real named: N domains (default 200,
# BURST_N to change) added in one burst through `ophookctl emit -`; all of
# them must answer, with few rndc runs (new zones are checked in one
# named-checkconf -z batch and loaded with one `rndc reconfig` per
# coalescing window).  Prints the time it took as a diagnostic (no timing
# assertion).
. "$top_srcdir/tests/lib.sh"

need named rndc rndc-confgen dig named-checkzone named-checkconf python3
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/bind9/.libs/bind9.so" ] || skip_all "bind9 plugin not built"

N=${BURST_N:-200}
DNS=$(free_port)
RNDC=$(free_port)
IP=192.0.2.77
ZONES="$T/bind/zones"
CONF_LOCAL="$T/bind/named.conf.local"
mkdir -p "$ZONES" "$T/named"
rndc-confgen -a -A hmac-sha256 -c "$T/rndc.key" -k rndc-key >/dev/null 2>&1 ||
	skip_all "rndc-confgen -a failed"
echo "// burst" > "$CONF_LOCAL"
cat > "$T/named.conf" <<EOF
include "$T/rndc.key";
options {
	directory "$T/named";
	listen-on port $DNS { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file "$T/named/named.pid";
	session-keyfile "$T/named/session.key";
	managed-keys-directory "$T/named";
	allow-new-zones yes;
	recursion no;
	dnssec-validation no;
};
controls {
	inet 127.0.0.1 port $RNDC allow { 127.0.0.1; } keys { "rndc-key"; };
};
include "$CONF_LOCAL";
EOF
named -g -c "$T/named.conf" >"$T/named.log" 2>&1 &
cleanup_pid $!
wait_for 30 rndc -s 127.0.0.1 -p "$RNDC" -k "$T/rndc.key" status ||
	{ echo "Bail out! named did not come up"; exit 1; }

write_config "  bind9:
    settings:
      zones_dir: $ZONES
      named_conf_local: $CONF_LOCAL
      server_ip: $IP
      window_ms: 500
      rndc_argv: [\"rndc\", \"-s\", \"127.0.0.1\", \"-p\", \"$RNDC\", \"-k\", \"$T/rndc.key\"]"
install_plugins bind9 log
start_ophookd || { echo "Bail out! ophookd did not start"; exit 1; }

i=1
while [ "$i" -le "$N" ]; do
	echo "domain.added d$i.burst.test domain=d$i.burst.test user=u$((i % 7))"
	echo "d$i.burst.test A" >> "$T/queries"
	i=$((i + 1))
done > "$T/events"

answered() {
	dig @127.0.0.1 -p "$DNS" +short +time=2 +tries=1 -f "$T/queries" 2>/dev/null |
		grep -c "^$IP\$"
}
all_answer() { [ "$(answered)" -eq "$N" ]; }

start=$(date +%s.%N)
ctl emit - < "$T/events" >/dev/null
ok "$(wait_for 600 all_answer; echo $?)" "all $N domains answer"
end=$(date +%s.%N)
is "$(grep -c '^zone "d[0-9]*\.burst\.test" IN' "$CONF_LOCAL")" "$N" "one zone line per domain"
reconfigs=$(grep -c 'rndc reconfig done' "$T/ophookd.log")
batches=$(grep -c 'new zones checked in one batch' "$T/ophookd.log")
ok "$([ "$reconfigs" -le 5 ]; echo $?)" "at most 5 rndc reconfigs ($reconfigs)"
diag "$N domains: $(python3 -c "print(round($end - $start, 2))") s, $reconfigs reconfigs, $batches check batches"
done_testing
