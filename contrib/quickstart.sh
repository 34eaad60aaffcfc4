#!/bin/sh
# The demo: builds ophook, runs ophookd on a demo OpenPanel tree (in a temp
# folder, SQLite panel DB) and shows events flowing while a script does what
# OpenPanel's scripts do.  Needs root on a fresh Debian (installs the build
# dependencies with apt).  KEEP=1 keeps the temp folder.
set -eu
cd "$(dirname "$0")/.."
SRC=$(pwd)
./contrib/deps.sh build
[ -x configure ] || autoreconf -fi >/dev/null 2>&1
mkdir -p build
(cd build && { [ -f Makefile ] || ../configure -q; } && make -j"$(nproc)" >/dev/null)
B=$SRC/build

D=$(mktemp -d /tmp/ophook-demo.XXXXXX)
cleanup() {
	[ -n "${TAIL_PID:-}" ] && kill "$TAIL_PID" 2>/dev/null || true
	[ -n "${DAEMON_PID:-}" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null || true
	if [ "${KEEP:-0}" = 1 ]; then echo "demo folder kept: $D"; else rm -rf "$D"; fi
}
trap cleanup EXIT INT TERM

cp -r contrib/demo/tree "$D/root"
mkdir -p "$D/state" "$D/plugins" "$D/dropin" "$D/hooks"
cp contrib/demo/hooks/*.lua "$D/hooks/" 2>/dev/null || true
cp "$B/plugins/log/.libs/log.so" "$D/plugins/"
if [ -f contrib/demo/panel.sql ] && command -v sqlite3 >/dev/null; then
	sqlite3 "$D/panel.db" < contrib/demo/panel.sql
fi
cat > "$D/ophookd.yaml" <<YAML
root: $D/root
state_dir: $D/state
socket: $D/ophookd.sock
hooks_dir: $D/hooks
watch_extra: []
plugin_dirs: [$D/plugins, $D/dropin]
panel_db:
  driver: sqlite
  path: $D/panel.db
  admin_db: $D/users.db
  poll_ms: 1000
watch:
  settle_ms: 50
paths:
  systemd: $D/systemd
  home: $D/home
plugins:
  log:
    enabled: true
    settings:
      path: $D/events.log
YAML

echo "== starting ophookd on the demo tree in $D"
"$B/ophookd" -f -c "$D/ophookd.yaml" 2>"$D/ophookd.log" &
DAEMON_PID=$!
i=0
until "$B/ophookctl" -s "$D/ophookd.sock" status >/dev/null 2>&1; do
	i=$((i + 1)); [ $i -gt 100 ] && { cat "$D/ophookd.log"; exit 1; }
	sleep 0.1
done
echo "== ophookctl tail (events as they become durable):"
"$B/ophookctl" -s "$D/ophookd.sock" tail &
TAIL_PID=$!
sleep 0.5
sh contrib/demo/scenario.sh "$D/root" "$D/panel.db"
sleep 1

printf '\n== a pre hook says no:\n$ ophookctl check domain.add domain=admin.example\n'
"$B/ophookctl" -s "$D/ophookd.sock" check domain.add domain=admin.example || true
printf '\n== ophookctl events (the journal):\n'
"$B/ophookctl" -s "$D/ophookd.sock" events --limit 30
printf '\n== delivered to the log plugin: %s events in %s\n' \
	"$(wc -l < "$D/events.log")" "$D/events.log"
printf '== daemon log:\n'
tail -n 15 "$D/ophookd.log"
