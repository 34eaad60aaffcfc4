#!/bin/sh
# DNS secondaries that follow the shared journal: one MariaDB server, two
# named (A's primary, B's secondary, own loopback ports and rndc keys) and
# two ophookd nodes (nodeA, nodeB: own roots, state, sockets) journaling to
# MariaDB with the bind9 plugin in fanout mode on both.  A domain added on A
# (a real caddy/domains/<d>.conf in A's root) is a master zone on A and,
# through the journal, a slave zone on B that named transfers; removed on
# A, it is gone from both.  B stopped during 500 domain additions on A
# catches up from its cursor.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
# own folder name: other jobs on this machine sweep /tmp/ophook-test.*
rmdir "$T"; T=$(mktemp -d /tmp/ophook-cluster.XXXXXX)

need named rndc rndc-confgen dig mariadbd mariadb-install-db mariadb python3
[ -f "$PLUGIN_BUILD_DIRS/bind9/.libs/bind9.so" ] || skip_all "bind9 plugin not built"

IP=192.0.2.45
D=shop.test
install_plugins bind9 log

MDB_PORT=$(free_port)
mariadb-install-db --no-defaults --datadir="$T/db" \
	--auth-root-authentication-method=normal --skip-test-db \
	--user="$(id -un)" >"$T/db-install.log" 2>&1 || skip_all "mariadb-install-db failed"
mariadbd --no-defaults --datadir="$T/db" --socket="$T/db.sock" \
	--port="$MDB_PORT" --bind-address=127.0.0.1 --user="$(id -un)" \
	--pid-file="$T/db.pid" --log-error="$T/db.err" --skip-log-bin \
	--innodb-buffer-pool-size=16M --skip-name-resolve 2>>"$T/db.stderr" &
cleanup_pid $!
wait_for 60 mariadb --no-defaults -uroot --socket="$T/db.sock" -e "SELECT 1" ||
	skip_all "mariadbd did not start"
pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mariadb --no-defaults -uroot --socket="$T/db.sock" -e "
	CREATE DATABASE ophook;
	CREATE USER 'ophook'@'127.0.0.1' IDENTIFIED BY '$pw';
	GRANT ALL ON ophook.* TO 'ophook'@'127.0.0.1';" || exit 1
printf '%s\n' "$pw" > "$T/db.pw"
chmod 600 "$T/db.pw"

. "$top_srcdir/tests/integration/named_lib.sh"

# write_node NAME BIND9_SETTINGS: $T/NAME/ophookd.yaml
write_node() {
	_n=$1
	mkdir -p "$T/$_n/root/caddy/domains" "$T/$_n/state" "$T/$_n/hooks"
	cat > "$T/$_n/ophookd.yaml" <<EOF2
node: node$_n
root: $T/$_n/root
state_dir: $T/$_n/state
socket: $T/$_n/ophookd.sock
hooks_dir: $T/$_n/hooks
watch_extra: []
log_level: ${OPHOOK_LOG_LEVEL:-info}
plugin_dirs:
  - $T/plugins
panel_db: { driver: sqlite, path: $T/$_n/panel.db, poll_ms: 0 }
journal:
  backend: mysql
  host: 127.0.0.1
  port: $MDB_PORT
  user: ophook
  password_file: $T/db.pw
  database: ophook
  poll_ms: 100
  backoff_ms: 100
  backoff_max_ms: 1000
watch:
  settle_ms: 20
plugins:
  log:
    settings:
      path: $T/$_n/events.log
  bind9:
    mode: fanout
    settings:
      zones_dir: $T/$_n/zones
      named_conf_local: $T/$_n/named.conf.local
      server_ip: $IP
      window_ms: 100
      rndc_argv: ["rndc", "-s", "127.0.0.1", "-p", "$(eval echo "\$RNDC_$_n")", "-k", "$T/$_n/rndc.key"]
$2
EOF2
}

start_node() {
	enable_plugins "$T/$1/ophookd.yaml"
	"$OPHOOKD" -f -c "$T/$1/ophookd.yaml" >>"$T/$1/ophookd.log" 2>&1 &
	eval "PID_$1=\$!"
	cleanup_pid $!
	if ! wait_for 20 "$OPHOOKCTL" -s "$T/$1/ophookd.sock" status; then
		tail -n 20 "$T/$1/ophookd.log" | sed "s/^/# ophookd $1: /"
		echo "Bail out! ophookd $1 did not come up"
		exit 1
	fi
}
stop_node() { eval "_p=\$PID_$1"; kill -TERM "$_p"; wait "$_p" 2>/dev/null; return 0; }

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

q() { dig @127.0.0.1 -p "$1" +short +time=2 +tries=1 "$2" "$3" 2>/dev/null; }
soa_serial() { q "$1" "$2" SOA | awk '{print $3}'; }
has_soa() { [ -n "$(soa_serial "$1" "$2")" ]; }
refused() { dig @127.0.0.1 -p "$1" +time=2 +tries=1 "$2" SOA 2>/dev/null | grep -q "status: REFUSED"; }
answers() { [ "$(q "$1" "$2" "$3")" = "$4" ]; }

# --- added on A: primary serves it, B's secondary after the transfer --------
printf '%s {\n reverse_proxy 127.0.0.1:8080\n}\n' "$D" > "$T/A/root/caddy/domains/$D.conf"
ok "$(wait_for 30 has_soa "$DNS_A" "$D"; echo $?)" "A: primary named answers SOA"
ok "$(wait_for 30 has_soa "$DNS_B" "$D"; echo $?)" "B: secondary named answers SOA (event from the shared journal, zone transferred)"
is "$(soa_serial "$DNS_B" "$D")" "$(soa_serial "$DNS_A" "$D")" "B: same serial as the primary"
ok "$(answers "$DNS_B" "$D" A "$IP"; echo $?)" "B: answers the domain's A record"
ok "$(grep "zone \"$D\"" "$T/B/named.conf.local" | grep -q "type slave"; echo $?)" "B: a type slave zone line"

# --- removed on A: gone from both --------------------------------------------
rm "$T/A/root/caddy/domains/$D.conf"
ok "$(wait_for 30 refused "$DNS_A" "$D"; echo $?)" "A: gone from the primary"
ok "$(wait_for 30 refused "$DNS_B" "$D"; echo $?)" "B: gone from the secondary"
ok "$(! grep -q "$D" "$T/B/named.conf.local"; echo $?)" "B: its line is gone"

# --- B stopped while A adds 500 domains: it catches up -----------------------
stop_node B
N=${DNS_CATCHUP_N:-500}
i=1
: > "$T/queries"
while [ "$i" -le "$N" ]; do
	printf '%s {\n reverse_proxy 127.0.0.1:8080\n}\n' "d$i.catch.test" > "$T/A/root/caddy/domains/d$i.catch.test.conf"
	echo "d$i.catch.test SOA" >> "$T/queries"
	i=$((i + 1))
done
answered() { dig @127.0.0.1 -p "$1" +short +time=2 +tries=1 -f "$T/queries" 2>/dev/null | grep -c " 3600 900 604800 3600\$" || true; }
all_answer() { [ "$(answered "$1")" -eq "$N" ]; }
ok "$(wait_for 180 all_answer "$DNS_A"; echo $?)" "catch-up: the primary serves all $N while B is down"
start_node B
ok "$(wait_for 240 all_answer "$DNS_B"; echo $?)" "catch-up: B started again serves all $N (from its cursor)"
"$OPHOOKCTL" -s "$T/B/ophookd.sock" cluster status | sed 's/^/# /'

if [ "$_tap_fail" -ne 0 ]; then
	for n in A B; do
		tail -n 15 "$T/$n/named.log" | sed "s/^/# named $n: /"
		tail -n 15 "$T/$n/ophookd.log" | sed "s/^/# ophookd $n: /"
	done
fi
done_testing
