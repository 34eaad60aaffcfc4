#!/bin/sh
# Operating commands: metrics (socket and HTTP on loopback), plugins
# list/disable/enable/reload, retry --failed of dead deliveries, reconcile,
# SIGHUP reload, --check-config errors with line and column.
. "$top_srcdir/tests/lib.sh"
need python3 curl

PORT=$(free_port)
write_config "  testgood:
    settings:
      fail_if_exists: $T/failing"
echo "metrics_listen: 127.0.0.1:$PORT" >> "$T/ophookd.yaml"
sed -i 's/^journal:/journal:\n  max_attempts: 2/' "$T/ophookd.yaml"
install_plugins log
cp "$top_builddir/tests/unit/.libs/testgood.so" "$T/plugins/"

"$OPHOOKD" --check-config -c "$T/ophookd.yaml" >/dev/null
ok $? "--check-config accepts the config"
printf 'root: %s\nbogus_key: 1\n' "$T/root" > "$T/bad.yaml"
out=$("$OPHOOKD" --check-config -c "$T/bad.yaml" 2>&1); rc=$?
is "$rc" 1 "--check-config exits 1 on an unknown key"
case "$out" in "$T/bad.yaml:2:1:"*) ok 0 "error names FILE:LINE:COL" ;; *) ok 1 "error names FILE:LINE:COL"; diag "$out" ;; esac

# a plugin's settings, checked against what the plugin declares (the
# firewall plugin in check-only mode: it does nothing else)
mkdir -p "$T/fwplug"
cp "$PLUGIN_BUILD_DIRS/firewall/.libs/firewall.so" "$T/fwplug/"
{
	echo "root: $T/root"
	echo "state_dir: $T/fwstate"
	echo "hooks_dir: $T/hooks"
	echo "plugin_dirs: [$T/fwplug]"
	# opt-in: enabled last, so the columns below stay the settings'
	echo "plugins: {firewall: {settings: {backend: ufx}, enabled: true}}"
} > "$T/fw.yaml"
out=$("$OPHOOKD" --check-config -c "$T/fw.yaml" 2>&1); rc=$?
is "$rc" 1 "--check-config exits 1 on a bad plugin setting"
is "$out" "$T/fw.yaml:5:42: plugins.firewall.settings.backend: 'ufx' is not one of: ufw, csf" \
	"the error names FILE:LINE:COL, the setting and the allowed values"
[ ! -e "$T/fwstate" ]
ok $? "the check-only load did no work (no state folder)"
sed -i 's/backend: ufx/backend: ufw, ssh_port: "2222", bogus: 1/' "$T/fw.yaml"
out=$("$OPHOOKD" --check-config -c "$T/fw.yaml" 2>&1); rc=$?
is "$rc" 1 "--check-config exits 1 on an unknown plugin setting"
case "$out" in "$T/fw.yaml:5:65: plugins.firewall.settings.bogus: unknown setting"*) ok 0 "unknown setting named with its position" ;; *) ok 1 "unknown setting named with its position"; diag "$out" ;; esac
sed -i 's/, bogus: 1//' "$T/fw.yaml"
"$OPHOOKD" --check-config -c "$T/fw.yaml" >/dev/null
ok $? "--check-config accepts good plugin settings"

# a bad setting of each plugin that declares its settings: FILE:LINE:COL,
# the setting and what it wants, exit 1, and no work done
# bad_setting PLUGIN KEY VALUE WHY
bad_setting() {
	mkdir -p "$T/bad_$1"
	cp "$PLUGIN_BUILD_DIRS/$1/.libs/$1.so" "$T/bad_$1/"
	{
		echo "root: $T/root"
		echo "state_dir: $T/bad_$1/state"
		echo "hooks_dir: $T/hooks"
		echo "plugin_dirs: [$T/bad_$1]"
		echo "plugins: {$1: {settings: {$2: $3}, enabled: true}}"
	} > "$T/bad_$1.yaml"
	out=$("$OPHOOKD" --check-config -c "$T/bad_$1.yaml" 2>&1); rc=$?
	is "$rc" 1 "--check-config exits 1 on a bad $1 setting"
	case "$out" in
	"$T/bad_$1.yaml:5:"[0-9]*": plugins.$1.settings.$2: $4") ok 0 "$1: FILE:LINE:COL, the setting and what it wants" ;;
	*) ok 1 "$1: FILE:LINE:COL, the setting and what it wants"; diag "$out" ;;
	esac
	[ ! -e "$T/bad_$1/state" ]
	ok $? "$1: the check did no work"
}
bad_setting caddy window_ms 4000000 "'4000000' is out of range 0..3600000"
bad_setting bind9 role boss "'boss' is not one of: primary, secondary, both"
bad_setting bind9 removed_zones shred "'shred' is not one of: archive, delete"
bad_setting mailserver dkim_bits 512 "'512' is out of range 1024..8192"
bad_setting goaccess max_procs 0 "'0' is out of range 1..64"
bad_setting log path events.log "'events.log' is not an absolute path"
# the column is the value's
case "$out" in "$T/bad_log.yaml:5:34: "*) ok 0 "the column is the value's" ;; *) ok 1 "the column is the value's"; diag "$out" ;; esac

# the shipped config passes, as shipped (root moved here) and with every
# plugin but the firewall (it needs a backend) enabled on its defaults
mkdir -p "$T/allplug"
for n in log caddy bind9 mailserver goaccess firewall; do
	cp "$PLUGIN_BUILD_DIRS/$n/.libs/$n.so" "$T/allplug/"
done
sed -e "s|^#plugin_dirs:.*|plugin_dirs: [$T/allplug]|" \
	-e "s|^root: .*|root: $T/root|" -e "s|^state_dir: .*|state_dir: $T/shipstate|" \
	"$top_srcdir/etc/ophookd.yaml" > "$T/shipped.yaml"
out=$("$OPHOOKD" --check-config -c "$T/shipped.yaml" 2>&1)
ok $? "--check-config accepts the shipped etc/ophookd.yaml"; [ -n "${out#*: ok}" ] && diag "$out"
awk '/^plugins:/ { p = 1 } /^  firewall:/ { fw = 1 }
	p && !fw && /^    enabled: false$/ { sub(/false/, "true") } { print }' \
	"$T/shipped.yaml" > "$T/shipped_on.yaml"
is "$(grep -c '^    enabled: true$' "$T/shipped_on.yaml")" 5 "shipped config: 5 plugins enabled"
out=$("$OPHOOKD" --check-config -c "$T/shipped_on.yaml" 2>&1)
ok $? "--check-config accepts the shipped config with its plugins enabled"; [ -n "${out#*: ok}" ] && diag "$out"
[ ! -e "$T/shipstate" ]
ok $? "the shipped config's check did no work"

# the plugin settings the plugins' integration tests run with (their
# write_config / write_node blocks, with made-up ports and paths) pass
mkdir -p "$T/itconf"
for s in caddy bind9 bind9_burst bind9_secondary cluster_dns mailserver \
	goaccess firewall_ufw firewall_csf; do
	awk -v out="$T/itconf/$s" '/^write_(config|node [A-Z]) "/ { p = 1; n++ }
		p { print > (out "." n ".sh") } p && /"$/ { p = 0 }' \
		"$top_srcdir/tests/integration/$s.sh"
done
sed -i 's/^write_node [A-Z] "/write_config "  bind9:\n    settings:\n      server_ip: 192.0.2.1\n/' "$T/itconf"/*.sh
nconf=0
for f in "$T/itconf"/*.sh; do
	nconf=$((nconf + 1))
	out=$(
		T="$f.d" CADDYFILE="$f.d/Caddyfile" ADMIN=2019 ZONES="$f.d/zones"
		CONF_LOCAL="$f.d/named.conf.local" IP=192.0.2.1 RNDC=953
		MAIL="$f.d/mail" LOGS="$f.d/logs" STATS="$f.d/stats"
		DNS_A=5301 DNS_B=5302
		# the plugins the block configures, and log
		. "$f" && install_plugins log $(sed -n \
			's/^\(write_config "\)\{0,1\}  \([a-z0-9_-]*\):$/\2/p' "$f") &&
			enable_plugins "$T/ophookd.yaml" &&
			"$OPHOOKD" --check-config -c "$T/ophookd.yaml" 2>&1
	); rc=$?
	ok $rc "--check-config accepts the settings of ${f##*/}"
	[ "$rc" = 0 ] || { diag "$out"; sed 's/^/# /' "$f"; }
done
[ "$nconf" -ge 12 ]
ok $? "the integration tests' plugin settings found ($nconf blocks)"

start_ophookd || exit 1

# plugins
ctl --json plugins list > "$T/pl.json"
python3 -c 'import json,sys; n=sorted(p["name"] for p in json.load(open(sys.argv[1]))); sys.exit(n!=["log","testgood"])' "$T/pl.json"
ok $? "plugins list: log and testgood"
ctl plugins disable testgood >/dev/null
ctl --json plugins list > "$T/pl.json"
python3 -c 'import json,sys; n=[p["name"] for p in json.load(open(sys.argv[1]))]; sys.exit(n!=["log"])' "$T/pl.json"
ok $? "plugins disable removes it"
ctl plugins enable testgood >/dev/null
ok $? "plugins enable brings it back"
ctl plugins reload testgood >/dev/null
ok $? "plugins reload"
ctl plugins disable nosuch >/dev/null 2>&1
is $? 1 "disabling an unknown plugin exits 1"

# a failing handler: dead after 2 attempts, then retry --failed after the fix
touch "$T/failing"
id=$(ctl --json emit test.thing r.example | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
dead() { ctl --json events --state dead | python3 -c 'import json,sys; sys.exit(0 if any(e["id"]=='"$id"' for e in json.load(sys.stdin)) else 1)'; }
wait_for 20 dead
ok $? "a delivery failing twice is dead (max_attempts 2)"
rm -f "$T/failing"
ctl --json retry --failed > "$T/retry.json"
python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["dead"] < 1)' "$T/retry.json"
ok $? "retry --failed requeues the dead delivery"
done_ok() { ctl --json events --subject r.example | python3 -c 'import json,sys; ev=[e for e in json.load(sys.stdin) if e["id"]=='"$id"'][0]; sys.exit(0 if all(d["state"]=="done" for d in ev["deliveries"]) else 1)'; }
wait_for 20 done_ok
ok $? "after the retry every delivery of the event is done"

# a second dead delivery, kept dead for the restart below
touch "$T/failing"
id=$(ctl --json emit test.thing d.example | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
wait_for 20 dead
ok $? "a second delivery is dead"

# metrics
ctl --json metrics > "$T/m.json"
python3 - "$T/m.json" <<'PY'
import json, sys
text = json.load(open(sys.argv[1]))
need = ['ophook_events_total{type="test.thing",source="socket"} 2',
        'ophook_deliveries_total{handler="plugin:testgood",state="dead"} 2',
        'ophook_deliveries_total{handler="plugin:testgood",state="done"} 1',
        'ophook_delivery_duration_seconds_count{handler="plugin:log"}',
        'ophook_queue_depth{stage="queued"}']
missing = [n for n in need if n not in text]
print("\n".join("# missing: " + m for m in missing))
sys.exit(1 if missing else 0)
PY
ok $? "metrics: events by type, deliveries by handler and state, histograms, queue depth"
curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/http.txt"
ok $? "GET /metrics on the loopback listener"
grep -q '^ophook_events_total{type="test.thing",source="socket"} 2$' "$T/http.txt"
ok $? "HTTP metrics carry the same counters"
grep -q '^ophook_journal_deliveries{handler="plugin:testgood",state="dead"} 1$' "$T/http.txt"
ok $? "the journal's dead deliveries as a gauge"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/other")
is "$code" 404 "other paths get 404"

# reconcile
ctl --json reconcile > "$T/rec.json"
python3 -c 'import json,sys; sys.exit("events" not in json.load(open(sys.argv[1])))' "$T/rec.json"
ok $? "reconcile reports its event count"

# SIGHUP: reload keeps serving
kill -HUP "$OPHOOKD_PID"
wait_for 10 grep -q "config reloaded" "$T/ophookd.log"
ok $? "SIGHUP reloads the config"
ctl status >/dev/null
ok $? "still serving after SIGHUP"
grep -q "not applied until ophookd restarts" "$T/ophookd.log"
ok "$([ $? -ne 0 ]; echo $?)" "an unchanged file: no warning"
# a setting read at start only: the reload says it is not applied
cp "$T/ophookd.yaml" "$T/ophookd.yaml.keep"
printf '# read at start\nsocket_idle_ms: 120000\n' >> "$T/ophookd.yaml"
sed -i 's/^log_level: .*/log_level: debug/' "$T/ophookd.yaml"
kill -HUP "$OPHOOKD_PID"
wait_for 10 grep -q "reload: .*changed" "$T/ophookd.log"
grep -q "reload: socket_idle_ms changed in $T/ophookd.yaml: not applied until ophookd restarts" "$T/ophookd.log"
ok $? "a reload names what it does not apply (socket_idle_ms), not what it does (log_level)" ||
	diag "$(grep 'reload' "$T/ophookd.log" | tail -n 2)"
cp "$T/ophookd.yaml.keep" "$T/ophookd.yaml"
stop_ophookd
grep -q "journal closed" "$T/ophookd.log"
ok $? "SIGTERM stops cleanly with the journal closed"

# right after a restart the counters start from zero, the journal's gauges
# do not
start_ophookd || exit 1
curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/http2.txt"
grep -q '^ophook_journal_deliveries{handler="plugin:testgood",state="dead"} 1$' "$T/http2.txt"
ok $? "after a restart the dead gauge still shows the dead delivery"
grep -q 'ophook_deliveries_total{handler="plugin:testgood",state="dead"}' "$T/http2.txt"
ok "$([ $? -ne 0 ] && echo 0 || echo 1)" "while the counters started again from zero"

# lag: how far behind a handler is (the age of its oldest unfinished event);
# the hook runs until the test lets it go
mkdir -p "$T/hooks/test.slow.d"
printf '#!/bin/sh\nwhile [ ! -e "%s/release" ]; do sleep 0.1; done\n' "$T" \
	> "$T/hooks/test.slow.d/10-wait"
chmod 0755 "$T/hooks/test.slow.d/10-wait"
_slow_loaded() { ctl --json status | grep -q 'exec:test.slow.d/10-wait'; }
wait_for 20 _slow_loaded
ok $? "a slow exec hook is loaded"
ctl emit test.slow slow.example > /dev/null
lag_of() {
	ctl --json status | python3 -c '
import json, sys
st = json.load(sys.stdin)
print([h["lag_ms"] for h in st["handlers"] if h["name"] == sys.argv[1]][0])' "$1"
}
_lagging() { [ "$(lag_of exec:test.slow.d/10-wait)" -ge 1500 ]; }
wait_for 60 _lagging
ok $? "status: the slow hook's lag_ms grows while its event runs"
is "$(lag_of plugin:log)" 0 "status: an idle handler's lag is 0"
curl -sf "http://127.0.0.1:$PORT/metrics" > "$T/http3.txt"
grep -q '^ophook_handler_lag_seconds{handler="exec:test.slow.d/10-wait"} [1-9]' "$T/http3.txt"
ok $? "metrics: ophook_handler_lag_seconds of the slow hook"
ctl status | grep -q ' LAG$'
ok $? "status: a LAG column"
touch "$T/release"
_caught_up() { [ "$(lag_of exec:test.slow.d/10-wait)" -eq 0 ]; }
wait_for 30 _caught_up
ok $? "the lag is back to 0 once the event is done"
stop_ophookd
done_testing
