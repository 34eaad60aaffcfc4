#!/bin/sh
# Safe by default (issue 20): ophookd with EVERY shipped plugin enabled,
# every plugin path left at its default, and a config whose trees (root,
# paths, state_dir; watch_extra, hooks_dir and the panel DB follow them)
# all sit in $T, runs the demo scenario (contrib/demo, as
# contrib/quickstart.sh plays it) without writing anything outside $T.
#
# Proof: the daemon runs in a mount and network namespace of its own
# (unshare -m -n) where every mount is remounted read-only except $T, so a
# write anywhere else fails with EROFS; the daemon log must show none, and
# the plugins' files must appear under $T where their defaults put them.
# Commands that talk to services (podman exec for Caddy's reload, rndc,
# ufw, csf) are stubs on PATH that record their argv: this test is about
# paths; Caddy's validate, named-checkzone and GoAccess are the real ones.
. "$top_srcdir/tests/lib.sh"

need_root
need unshare nsenter mount sqlite3 openssl
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
for p in log caddy bind9 mailserver goaccess firewall; do
	[ -f "$PLUGIN_BUILD_DIRS/$p/.libs/$p.so" ] || skip_all "plugin $p not built"
done

# ---- the trees, all in $T ------------------------------------------------
cp -r "$top_srcdir/contrib/demo/tree" "$T/root"
mkdir -p "$T/root/caddy/domains" "$T/root/caddy/ssl" "$T/root/ophookd/hooks" \
	"$T/root/openpanel/core/users" \
	"$T/etc/bind/zones" "$T/var/cache/bind" "$T/var/log" "$T/etc/csf" \
	"$T/usr/local/mail/openmail/docker-data/dms/config" \
	"$T/state" "$T/home" "$T/stubs"
: > "$T/etc/bind/named.conf.local"
printf '{\n\tadmin off\n}\nimport %s/root/caddy/domains/*.conf\n' "$T" \
	> "$T/root/caddy/Caddyfile"
sqlite3 "$T/root/ophookd/panel.db" < "$top_srcdir/contrib/demo/panel.sql"
cp "$top_srcdir/contrib/demo/hooks/demo.lua" "$T/root/ophookd/hooks/"
install_plugins log caddy bind9 mailserver goaccess firewall
mkdir -p "$T/dropin"
for c in podman rndc ufw csf; do
	printf '#!/bin/sh\n(IFS="|"; echo "%s|$*") >> "%s/calls.log"\nexit 0\n' \
		"$c" "$T" > "$T/stubs/$c"
	chmod 0755 "$T/stubs/$c"
done

# Only what cannot be a default: the trees, the socket, where plugins load
# from, the firewall backend (required) and the zone's address (bind9
# needs one for an A record).  Every plugin path is its default.
cat > "$T/ophookd.yaml" <<YAML
root: $T/root
state_dir: $T/state
socket: $T/ophookd.sock
paths:
  bind: $T/etc/bind
  bind_cache: $T/var/cache/bind
  mail: $T/usr/local/mail/openmail
  log: $T/var/log
  csf: $T/etc/csf
  home: $T/home
plugin_dirs: [$T/plugins, $T/dropin]
log_level: info
panel_db:
  poll_ms: 500
  merge_wait_ms: 2000
journal:
  backoff_ms: 200
  backoff_max_ms: 1000
watch:
  settle_ms: 50
plugins:
  log: { enabled: true }
  caddy: { enabled: true }
  bind9:
    enabled: true
    settings: { server_ip: 192.0.2.1 }
  mailserver: { enabled: true }
  goaccess: { enabled: true }
  firewall:
    enabled: true
    settings: { backend: ufw }
YAML
"$OPHOOKD" --check-config -c "$T/ophookd.yaml" >"$T/check.log" 2>&1
ok $? "ophookd --check-config: every plugin enabled, paths at their defaults"
[ -s "$T/check.log" ] && sed 's/^/# /' "$T/check.log"

# ---- the read-only namespace: only $T writable ---------------------------
# shellcheck disable=SC2016
unshare -m -n sh -c '
	T=$1
	mount --make-rprivate / || exit 7
	# every mount read-only (a per-mount flag: the host keeps its own),
	# but the kernel file systems
	awk "{ print \$5 }" /proc/self/mountinfo | sort -u | while read -r mp; do
		case "$mp" in /proc|/proc/*|/sys|/sys/*|/dev|/dev/*) continue ;; esac
		mount -o remount,bind,ro "$mp" 2>/dev/null
	done
	mount --bind "$T" "$T" && mount -o remount,bind,rw "$T" || exit 8
	ip link set lo up 2>/dev/null
	echo ready > "$T/ns-ready"
	exec sleep 100000' sh "$T" >"$T/ns.log" 2>&1 &
NS_PID=$!
cleanup_pid "$NS_PID"
wait_for 10 test -f "$T/ns-ready" || { cat "$T/ns.log"; skip_all "unshare -m -n failed"; }
NS="nsenter -t $NS_PID -m -n"

# the confinement itself works
$NS sh -c ': > /etc/.ophook-confined-canary' 2>"$T/canary.err"
ok $([ $? -ne 0 ] && echo 0 || echo 1) "in the namespace, /etc is read-only"
grep -q "Read-only file system" "$T/canary.err"
ok $? "  ... a write there fails with EROFS"
$NS sh -c ': > /var/tmp/.ophook-confined-canary' 2>/dev/null
ok $([ $? -ne 0 ] && echo 0 || echo 1) "in the namespace, /var/tmp is read-only"
$NS sh -c ": > '$T/canary' && rm '$T/canary'"
ok $? "in the namespace, \$T is writable"

$NS env PATH="$T/stubs:$PATH" HOME="$T/home" XDG_DATA_HOME="$T/home/data" \
	XDG_CONFIG_HOME="$T/home/config" TMPDIR="$T/state" \
	"$OPHOOKD" -f -c "$T/ophookd.yaml" >>"$T/ophookd.log" 2>&1 &
OPHOOKD_PID=$!
cleanup_pid "$OPHOOKD_PID"
wait_for 20 ctl status
ok $? "ophookd is up in the read-only namespace"
for p in log caddy bind9 mailserver goaccess firewall; do
	grep -q "plugin $p loaded" "$T/ophookd.log"
	ok $? "plugin $p loaded"
done

# ---- the demo scenario ---------------------------------------------------
STEP_PAUSE=0.5 sh "$top_srcdir/contrib/demo/scenario.sh" "$T/root" \
	"$T/root/ophookd/panel.db" >"$T/scenario.log" 2>&1
ok $? "demo scenario played (contrib/demo/scenario.sh)"
ctl emit mail.account.added shop.example address=info@shop.example \
	domain=shop.example >/dev/null
ctl emit firewall.block 192.0.2.99 ip=192.0.2.99 reason=demo >/dev/null
wait_for 30 grep -q '"domain.removed"' "$T/var/log/ophookd/events.log"
ok $? "events delivered to the log plugin at its default path (paths.log/ophookd/events.log)"
# let the coalesced actions (reloads, reports) run
sleep 3
n=$(ctl events --limit 100 2>/dev/null | grep -c 'done\|failed\|pending')
diag "$n events in the journal"

# ---- nothing written outside $T ------------------------------------------
grep -i "read-only file system\|EROFS" "$T/ophookd.log" > "$T/erofs.log"
is "$(wc -l < "$T/erofs.log")" 0 "no write outside \$T was tried (no EROFS in the daemon log)"
sed 's/^/# EROFS: /' "$T/erofs.log" | head -n 20
[ -e "$T/var/log/ophookd/events.log" ]
ok $? "log plugin: \$T/var/log/ophookd/events.log"
# shop.example's zone was written, then archived by domains-delete
ls "$T/etc/bind/zones/.removed" 2>/dev/null | grep -q '^shop\.example\.zone\.'
ok $? "bind9: zone written and archived in \$T/etc/bind/zones (paths.bind)"
grep -q 'DKIM selector mail published in zone shop.example' "$T/ophookd.log"
ok $? "mailserver + bind9: DKIM key under \$T/usr/local/mail (paths.mail) published in the zone"
[ -d "$T/state/plugins/caddy" ] && [ -d "$T/state/plugins/goaccess" ]
ok $? "plugins' own state under \$T/state/plugins"
grep -q '^podman|exec|caddy' "$T/calls.log"
ok $? "caddy reload ran its default argv (podman exec caddy ..., a stub here)"
grep -q '^ufw|' "$T/calls.log" && grep -q '^ufw|.*allow' "$T/calls.log"
ok $([ $? -ne 0 ] && echo 0 || echo 1) "firewall (manage_ports off): no port opened"
grep -i ' error \|\[error\]\|: error' "$T/ophookd.log" | head -n 15 | sed 's/^/# log error: /'
diag "stub calls: $(sort "$T/calls.log" 2>/dev/null | cut -c1-60 | uniq -c | tr '\n' ';')"
diag "files under \$T written by ophookd: $(find "$T/etc" "$T/var" "$T/usr" -type f | sed "s|^$T||" | sort | head -n 30 | tr '\n' ' ')"

kill -TERM "$OPHOOKD_PID" 2>/dev/null; wait "$OPHOOKD_PID" 2>/dev/null
done_testing
