#!/bin/sh
# Integration test of the bind9 plugin with a real named (Debian's BIND 9):
# named on a loopback high port with rndc on loopback (key from
# rndc-confgen -a), ophookd with the bind9 and log plugins, the bind folder
# watched as an extra root.  Domain events are emitted with ophookctl (the
# tree's domains come from the caddy folder, which this test does not use);
# dns.zone.changed comes from the watcher after an edit, or is emitted when
# the watcher is not active.
. "$top_srcdir/tests/lib.sh"

need named rndc rndc-confgen dig named-checkzone named-checkconf python3
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/bind9/.libs/bind9.so" ] || skip_all "bind9 plugin not built"

DNS=$(free_port)
RNDC=$(free_port)
IP=192.0.2.44
ZONES="$T/bind/zones"
CONF_LOCAL="$T/bind/named.conf.local"
mkdir -p "$ZONES" "$T/named"

rndc-confgen -a -A hmac-sha256 -c "$T/rndc.key" -k rndc-key >/dev/null 2>&1 ||
	skip_all "rndc-confgen -a failed"
RNDC_CMD="rndc -s 127.0.0.1 -p $RNDC -k $T/rndc.key"

# A zone that is not the plugin's, and lines around it that must stay.
cat > "$T/bind/keep.test.zone" <<EOF
\$TTL 300
@ IN SOA ns1.keep.test. root.keep.test. ( 1 3600 600 86400 300 )
@ IN NS ns1.keep.test.
ns1 IN A 192.0.2.1
@ IN A 192.0.2.1
EOF
cat > "$CONF_LOCAL" <<EOF
// zones of this server
zone "keep.test" IN { type master; file "$T/bind/keep.test.zone"; };
// the line after keep.test
EOF

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
if ! wait_for 30 $RNDC_CMD status; then
	tail -n 20 "$T/named.log" | sed 's/^/# named: /'
	echo "Bail out! named did not come up"
	exit 1
fi

# answer NAME [TYPE]: named's short answer
answer() { dig @127.0.0.1 -p "$DNS" +short +time=2 +tries=1 "$1" "${2:-A}" 2>/dev/null; }
answers() { [ "$(answer "$1" "${3:-A}")" = "$2" ]; }
refused() { dig @127.0.0.1 -p "$DNS" +time=2 +tries=1 "$1" A 2>/dev/null | grep -q "status: REFUSED"; }
serial() { answer "$1" SOA | awk '{print $3}'; }
has_event() { # TYPE SUBJECT
	grep "\"type\": *\"$1\"" "$T/events.log" 2>/dev/null |
		grep -q "\"subject\": *\"$2\""
}
count_event() { # TYPE SUBJECT
	grep "\"type\": *\"$1\"" "$T/events.log" 2>/dev/null |
		grep -c "\"subject\": *\"$2\"" || true
}
more_events() { [ "$(count_event "$1" "$2")" -gt "$3" ]; }
# zone_edited D: after an edit of D's zone file, the watcher's
# dns.zone.changed, or one emitted when the watcher is not active.
WATCHER=unknown
zone_edited() {
	if [ "$WATCHER" != no ] && wait_for 5 more_events dns.zone.changed "$1" "$N_BEFORE"; then
		[ "$WATCHER" = unknown ] && diag "watcher active: dns.zone.changed came from the tree"
		WATCHER=yes
		return 0
	fi
	[ "$WATCHER" = unknown ] && diag "watcher not active: emitting dns.zone.changed"
	WATCHER=no
	ctl emit dns.zone.changed "$1" domain="$1" path="$ZONES/$1.zone" >/dev/null
}

write_config "  bind9:
    settings:
      zones_dir: $ZONES
      named_conf_local: $CONF_LOCAL
      server_ip: $IP
      window_ms: 200
      rndc_argv: [\"rndc\", \"-s\", \"127.0.0.1\", \"-p\", \"$RNDC\", \"-k\", \"$T/rndc.key\"]"
sed -i "s|^watch_extra: \[\]\$|watch_extra: [$T/bind]|" "$T/ophookd.yaml"
install_plugins bind9 log
start_ophookd || { echo "Bail out! ophookd did not start"; exit 1; }

ok "$(answers keep.test 192.0.2.1; echo $?)" "named serves the zone that is not ours"

# --- an added domain is answered --------------------------------------------
ctl emit domain.added example.test domain=example.test user=bob >/dev/null
ok "$(wait_for 30 answers example.test $IP; echo $?)" "added domain answers with the server IP"
ok "$(answers www.example.test "example.test.
$IP"; echo $?)" "www answers (CNAME to the domain)"
is "$(grep -c 'zone "example.test"' "$CONF_LOCAL")" 1 "one zone line for example.test"
ctl emit domain.added example.test domain=example.test user=bob >/dev/null
ctl emit domain.added other.test domain=other.test user=alice >/dev/null
ok "$(wait_for 30 answers other.test $IP; echo $?)" "a second domain answers"
is "$(grep -c 'zone "example.test"' "$CONF_LOCAL")" 1 "added twice: still one line"
S1=$(serial example.test)
ok "$(expr "$S1" : '20[0-9]\{8\}$' >/dev/null; echo $?)" "serial is YYYYMMDDnn ($S1)"

# --- a subdomain of the same user goes into the parent zone ------------------
ctl emit domain.added blog.example.test domain=blog.example.test user=bob >/dev/null
ok "$(wait_for 30 answers blog.example.test $IP; echo $?)" "subdomain answers from the parent zone"
ok "$([ ! -e "$ZONES/blog.example.test.zone" ]; echo $?)" "no zone file of its own"
is "$(grep -c 'zone "blog.example.test"' "$CONF_LOCAL")" 0 "no zone line of its own"

# --- an in-place edit without a serial bump ----------------------------------
S2=$(serial example.test)
N_BEFORE=$(count_event dns.zone.changed example.test)
printf 'edited 300 IN A 192.0.2.55\n' >> "$ZONES/example.test.zone"
zone_edited example.test
ok "$(wait_for 30 answers edited.example.test 192.0.2.55; echo $?)" "edit without serial bump is served"
S3=$(serial example.test)
ok "$([ "$S3" -gt "$S2" ]; echo $?)" "the plugin bumped the serial ($S2 -> $S3)"
sleep 1
is "$(grep -c 'example.test: content changed without a serial bump' "$T/ophookd.log")" 1 \
	"one bump: the plugin's own write does not come back as a change"

# --- a broken zone leaves the old answers ------------------------------------
cp "$ZONES/example.test.zone" "$T/good.zone"
N_BEFORE=$(count_event dns.zone.changed example.test)
printf 'this is not a record\n' >> "$ZONES/example.test.zone"
zone_edited example.test
ok "$(wait_for 30 has_event dns.zone_rejected example.test; echo $?)" "dns.zone_rejected raised"
ok "$(grep 'dns.zone_rejected' "$T/events.log" | grep -q 'unknown RR type'; echo $?)" \
	"the event carries named-checkzone's message"
ok "$(answers example.test $IP; echo $?)" "broken zone: old answers still served"
ok "$(answers edited.example.test 192.0.2.55; echo $?)" "broken zone: old edit still served"
is "$(serial example.test)" "$S3" "broken zone: old serial still served"
cp "$T/good.zone" "$ZONES/example.test.zone"

# --- a customer zone cannot read other files (issue 16, finding 11) --------
# $INCLUDE of a root-only file outside the zones folder is refused before any
# checker runs; one inside the folder is read by the checker as nobody,
# which cannot open it.  The secret's words reach no event, journal or log.
cp "$ZONES/other.test.zone" "$T/other.good"
mkdir -p "$T/secret" && chmod 700 "$T/secret"
printf 'topsecretalpha topsecretbeta\n' > "$T/secret/words"
printf 'topsecretgamma topsecretdelta\n' > "$ZONES/words.inc"
chmod 600 "$T/secret/words" "$ZONES/words.inc"
no_secret() { ! grep -rqa topsecret "$T/events.log" "$T/ophookd.log" "$T/state"; }
N_BEFORE=$(count_event dns.zone.changed other.test)
R_BEFORE=$(count_event dns.zone_rejected other.test)
printf '$INCLUDE %s\n' "$T/secret/words" >> "$ZONES/other.test.zone"
zone_edited other.test
ok "$(wait_for 30 more_events dns.zone_rejected other.test "$R_BEFORE"; echo $?)" \
	"\$INCLUDE outside the zones folder: dns.zone_rejected"
ok "$(grep dns.zone_rejected "$T/events.log" | grep -q "\$INCLUDE $T/secret/words: only files inside"; echo $?)" \
	"the event names the file and says why"
ok "$(no_secret; echo $?)" "no word of the file in events, journal or logs"
if [ "$(id -u)" = 0 ]; then
	cp "$T/other.good" "$ZONES/other.test.zone"
	N_BEFORE=$(count_event dns.zone.changed other.test)
	R_BEFORE=$(count_event dns.zone_rejected other.test)
	printf '$INCLUDE %s\n' "$ZONES/words.inc" >> "$ZONES/other.test.zone"
	zone_edited other.test
	ok "$(wait_for 30 more_events dns.zone_rejected other.test "$R_BEFORE"; echo $?)" \
		"\$INCLUDE of a root-only file inside the folder: rejected (checker runs as nobody)"
	ok "$(grep dns.zone_rejected "$T/events.log" | grep -q 'permission denied'; echo $?)" \
		"the checker could not open it"
	ok "$(no_secret; echo $?)" "no word of the file in events, journal or logs"
else
	for _i in 1 2 3; do
		_tap_n=$((_tap_n + 1))
		echo "ok $_tap_n # SKIP not root: the checker runs as the daemon's user"
	done
fi
cp "$T/other.good" "$ZONES/other.test.zone"
N_BEFORE=$(count_event dns.zone.changed other.test)
R_BEFORE=$(count_event dns.zone_rejected other.test)
printf '$GENERATE 0-2147483646 h$ A 192.0.2.1\n' >> "$ZONES/other.test.zone"
zone_edited other.test
ok "$(wait_for 30 more_events dns.zone_rejected other.test "$R_BEFORE"; echo $?)" \
	"\$GENERATE 0-2147483646: dns.zone_rejected"
ok "$(grep dns.zone_rejected "$T/events.log" | grep -q 'more than the 65536 steps allowed'; echo $?)" \
	"with the limit (generate_max) named"
ok "$(answers other.test $IP; echo $?)" "the old zone still answers"
cp "$T/other.good" "$ZONES/other.test.zone"
rm -f "$ZONES/words.inc"

# --- a removed domain is no longer answered ----------------------------------
grep -v "^zone \"example.test\" " "$CONF_LOCAL" > "$T/conf.expected"
ctl emit domain.removed example.test domain=example.test >/dev/null
ok "$(wait_for 30 refused example.test; echo $?)" "removed domain is no longer answered"
ok "$(cmp -s "$CONF_LOCAL" "$T/conf.expected"; echo $?)" \
	"named.conf.local keeps every other line byte for byte"
ok "$(grep -q '^// the line after keep.test$' "$CONF_LOCAL"; echo $?)" "the line after is kept"
ok "$(answers other.test $IP; echo $?)" "the other domain still answers"
ok "$(answers keep.test 192.0.2.1; echo $?)" "the zone that is not ours still answers"
ok "$(ls "$ZONES/.removed/" 2>/dev/null | grep -q '^example.test.zone\.'; echo $?)" \
	"zone file archived under .removed/"

# --- hostile names touch nothing ---------------------------------------------
before=$(cat "$CONF_LOCAL"; ls -a "$ZONES")
ctl emit domain.added evil.test 'domain=../../etc/x"; };' user=bob >/dev/null 2>&1
ctl emit domain.added 'x;rm.test' 'domain=x;rm.test' user=bob >/dev/null 2>&1
sleep 1
is "$(cat "$CONF_LOCAL"; ls -a "$ZONES")" "$before" "hostile names change no file"

ok "$(grep -q 'reloads=' "$T/ophookd.log"; echo $?)" "reloads are counted in the log"
diag "$(grep -o 'rndc [a-z]*[^[]*\[reloads=[0-9]*\]' "$T/ophookd.log" | tail -n 1)"

# --- the checker's limits, and it never outlives the daemon ------------------
# A $GENERATE of identical records burns CPU in little memory.  With
# generate_max raised, the real checker runs: checker_cpu_s stops it; with
# no CPU limit it runs until SIGTERM, which ophookd honours at once (the
# checker is killed, the event stays pending); after a SIGKILL of ophookd
# the checker dies too (PR_SET_PDEATHSIG).  The checker is started through
# a symlink under $T so that pgrep finds only this test's.
stop_ophookd
chmod 711 "$T"
mkdir -p "$T/bin" && chmod 755 "$T/bin"
ln -sf "$(command -v named-checkzone)" "$T/bin/named-checkzone"
checkers() { pgrep -f "^$T/bin/named-checkzone" >/dev/null; }
limits_config() { # CPU_S
	write_config "  bind9:
    settings:
      zones_dir: $ZONES
      named_conf_local: $CONF_LOCAL
      server_ip: $IP
      window_ms: 200
      generate_max: 4294967296
      checker_cpu_s: $1
      checker_timeout_ms: 600000
      checkzone_argv: [\"$T/bin/named-checkzone\"]
      rndc_argv: [\"rndc\", \"-s\", \"127.0.0.1\", \"-p\", \"$RNDC\", \"-k\", \"$T/rndc.key\"]"
}
limits_config 2
start_ophookd || { echo "Bail out! ophookd did not restart"; exit 1; }
cp "$T/other.good" "$ZONES/other.test.zone"
N_BEFORE=$(count_event dns.zone.changed other.test)
R_BEFORE=$(count_event dns.zone_rejected other.test)
printf '$GENERATE 0-2147483646 x A 192.0.2.1\n' >> "$ZONES/other.test.zone"
WATCHER=unknown
zone_edited other.test
ok "$(wait_for 30 more_events dns.zone_rejected other.test "$R_BEFORE"; echo $?)" \
	"CPU-bound zone with checker_cpu_s 2: dns.zone_rejected"
ok "$(grep dns.zone_rejected "$T/events.log" | tail -n 1 | grep -q 'over a checker limit'; echo $?)" \
	"the event says a checker limit stopped it"
stop_ophookd
limits_config 0
start_ophookd || { echo "Bail out! ophookd did not restart"; exit 1; }
ctl emit dns.zone.changed other.test domain=other.test path="$ZONES/other.test.zone" >/dev/null
ok "$(wait_for 20 checkers; echo $?)" "no CPU limit: the checker runs"
ok "$(ctl status >/dev/null; echo $?)" "the daemon answers while it runs"
t0=$(date +%s)
kill -TERM "$OPHOOKD_PID"
ok "$(wait_for 8 sh -c "! kill -0 $OPHOOKD_PID 2>/dev/null"; echo $?)" \
	"SIGTERM while the checker runs: ophookd stops ($(( $(date +%s) - t0 )) s)"
wait "$OPHOOKD_PID" 2>/dev/null
ok "$(wait_for 5 sh -c "! pgrep -f '^$T/bin/named-checkzone' >/dev/null"; echo $?)" \
	"and no checker remains"
start_ophookd || { echo "Bail out! ophookd did not restart"; exit 1; }
ok "$(wait_for 20 checkers; echo $?)" "the pending event runs the checker again after a restart"
kill -KILL "$OPHOOKD_PID"
wait "$OPHOOKD_PID" 2>/dev/null
ok "$(wait_for 5 sh -c "! pgrep -f '^$T/bin/named-checkzone' >/dev/null"; echo $?)" \
	"SIGKILL of ophookd: no checker outlives it"
pkill -KILL -f "^$T/bin/named-checkzone" 2>/dev/null
cp "$T/other.good" "$ZONES/other.test.zone"

done_testing
