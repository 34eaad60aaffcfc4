# Shared helpers for integration tests (sourced).  TAP output:
#   plan N; ok COND "name"; is GOT WANT "name"; skip_all "why"; done_testing
# A test gets a fresh temp folder $T, removed on every exit path, and can
# start ophookd with start_ophookd (config from $T/ophookd.yaml, written by
# write_config).  Servers it starts are stopped by the EXIT trap: register
# their pids with `cleanup_pid PID`, and extra commands with
# `cleanup_cmd "cmd"`.
set -u

: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
OPHOOKD="$top_builddir/ophookd"
OPHOOKCTL="$top_builddir/ophookctl"
PLUGIN_BUILD_DIRS="$top_builddir/plugins"
# isolated plugins run in the build tree's runner
OPHOOK_PLUGIN_RUNNER="$top_builddir/ophook-plugin-runner"
export OPHOOK_PLUGIN_RUNNER

T=$(mktemp -d /tmp/ophook-test.XXXXXX)
_tap_n=0
_tap_fail=0
_cleanup_pids=""
_cleanup_cmds=""

cleanup_pid() { _cleanup_pids="$_cleanup_pids $1"; }
cleanup_cmd() { _cleanup_cmds="$_cleanup_cmds
$1"; }

# With OPHOOK_JOURNALS_DIR set (contrib/run-tests.sh sets it), the events
# of every SQLite journal the test made (each daemon's state_dir/journal.db
# below $T) are written to $OPHOOK_JOURNALS_DIR/<test>.jsonl, one payload a
# line, when the test ends: tests/integration/catalogue.sh then checks them
# against the schemas of the catalogue.
_collect_journals() {
	mkdir -p "$OPHOOK_JOURNALS_DIR" || return 0
	find "$T" -name journal.db -type f 2>/dev/null |
		python3 -c '
import json, sqlite3, sys
out = open(sys.argv[1], "w")
for db in sys.stdin.read().split("\n"):
    if not db:
        continue
    try:
        c = sqlite3.connect(db, timeout=5)
        rows = c.execute("SELECT id, payload FROM events ORDER BY id")
        for i, p in rows:
            try:
                o = json.loads(p)
            except ValueError:
                o = {"unparsable_payload": p}
            o["id"] = i
            out.write(json.dumps(o, sort_keys=True) + "\n")
        c.close()
    except sqlite3.Error as e:
        sys.stderr.write("# %s: %s\n" % (db, e))
' "$OPHOOK_JOURNALS_DIR/$(basename "$0" .sh).jsonl" >/dev/null 2>&1
}

_cleanup() {
	rc=$?
	set +e
	printf '%s\n' "$_cleanup_cmds" | while IFS= read -r c; do
		[ -n "$c" ] && eval "$c" >/dev/null 2>&1
	done
	for p in $_cleanup_pids; do kill -TERM "$p" 2>/dev/null; done
	for p in $_cleanup_pids; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "${OPHOOK_JOURNALS_DIR:-}" ] && _collect_journals
	if [ "${KEEP_TMP:-0}" = 1 ] || [ "$_tap_fail" -ne 0 ]; then
		echo "# test folder kept: $T"
		if [ -f "$T/ophookd.log" ]; then
			echo "# --- last lines of ophookd.log ---"
			tail -n 40 "$T/ophookd.log" | sed 's/^/# /'
		fi
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap _cleanup EXIT
trap 'exit 130' INT TERM

plan() { echo "1..$1"; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
ok() {
	_tap_n=$((_tap_n + 1))
	if [ "$1" = 0 ] || [ "$1" = true ]; then
		echo "ok $_tap_n - $2"
	else
		_tap_fail=$((_tap_fail + 1))
		echo "not ok $_tap_n - $2"
	fi
}
# known_bug RC NAME REASON: as ok, but a failure is reported as a TAP
# TODO (a known, reported bug: XFAIL, not a failure); a pass is a pass
known_bug() {
	_tap_n=$((_tap_n + 1))
	if [ "$1" = 0 ] || [ "$1" = true ]; then
		echo "ok $_tap_n - $2"
	else
		echo "not ok $_tap_n - $2 # TODO $3"
	fi
}
# is GOT WANT NAME
is() {
	if [ "$1" = "$2" ]; then ok 0 "$3"; else
		ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want: '$2'"
	fi
}
diag() { echo "# $*"; }
done_testing() {
	echo "1..$_tap_n"
	[ "$_tap_fail" -eq 0 ]
}
need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip_all "$c not installed"; done; }
need_root() { [ "$(id -u)" = 0 ] || skip_all "needs root"; }
# sqlite3 as the tests' stand-in for the panel's MariaDB: a write waits for
# the lock ophookd's poller may hold while it reads (MariaDB's clients wait
# for locks too), instead of failing at once with "database is locked"
# and leaving a row out that the test then expects (the sqlite3 shell's
# busy timeout is 0)
sqlite3() { command sqlite3 -cmd ".timeout 10000" "$@"; }

# wait_for TIMEOUT_S CMD...: poll CMD every 0.05 s until it succeeds.
wait_for() {
	_to=$1; shift
	_end=$(( $(date +%s) + _to ))
	while ! "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -ge "$_end" ] && return 1
		sleep 0.05
	done
	return 0
}

# A free TCP port on 127.0.0.1.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_post_receiver PORT: an HTTP server on 127.0.0.1:PORT that writes
# each POST body to $T/posts/NNNN.json and answers 200 "ok"; stopped at exit.
start_post_receiver() {
	mkdir -p "$T/posts"
	cat > "$T/server.py" <<EOF
import http.server, os
n = 0
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global n
        body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
        n += 1
        with open(os.path.join('$T/posts', '%04d.json' % n), 'wb') as f:
            f.write(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'ok')
    def log_message(self, *a):
        pass
http.server.HTTPServer(('127.0.0.1', $1), H).serve_forever()
EOF
	python3 "$T/server.py" >"$T/server.log" 2>&1 &
	cleanup_pid $!
	_recv_port=$1
	_recv_open() { python3 -c "import socket; socket.create_connection(('127.0.0.1', $_recv_port), 1)"; }
	wait_for 10 _recv_open || { echo "# http server did not start"; return 1; }
}

# write_config [EXTRA_YAML]: a config for a daemon rooted in $T/root with
# state in $T/state, the build tree's plugins, the log plugin writing
# $T/events.log.  EXTRA_YAML is appended under `plugins:` (indent 2).
write_config() {
	mkdir -p "$T/root" "$T/state" "$T/hooks" "$T/dropin" "$T/plugins"
	{
		echo "root: $T/root"
		echo "state_dir: $T/state"
		echo "socket: $T/ophookd.sock"
		echo "hooks_dir: $T/hooks"
		echo "watch_extra: []"
		echo "paths:"
		echo "  home: $T/home"
		echo "  admin_notifications: $T/log/openpanel/admin/notifications.log"
		echo "log_level: ${OPHOOK_LOG_LEVEL:-info}"
		echo "plugin_dirs:"
		echo "  - $T/plugins"
		echo "  - $T/dropin"
		echo "panel_db:"
		echo "  driver: sqlite"
		echo "  path: $T/panel.db"
		echo "  poll_ms: ${PANEL_POLL_MS:-0}"
		echo "journal:"
		echo "  backoff_ms: ${BACKOFF_MS:-100}"
		echo "  backoff_max_ms: ${BACKOFF_MAX_MS:-1000}"
		echo "watch:"
		echo "  settle_ms: ${SETTLE_MS:-20}"
		echo "plugins:"
		echo "  log:"
		echo "    settings:"
		echo "      path: $T/events.log"
		[ $# -gt 0 ] && printf '%s\n' "$1"
	} > "$T/ophookd.yaml"
}

# enable_plugins [FILE]: plugins of a system folder are opt-in (they load
# only with `enabled: true`), and tests install the ones they use into one:
# every plugins.NAME entry of FILE ($T/ophookd.yaml) that does not say
# `enabled:` gets `enabled: true`, and the shipped and test plugins with no
# entry get one.  An entry that says `enabled: false` stays off.
# Idempotent; start_ophookd runs it, call it before starting ophookd some
# other way.
OPHOOK_TEST_PLUGINS="log caddy bind9 mailserver goaccess firewall testgood"
enable_plugins() {
	_f=${1:-$T/ophookd.yaml}
	awk -v names="$OPHOOK_TEST_PLUGINS" '
	function flush_missing(   i, n, a) {
		if (done) return
		done = 1
		n = split(names, a, " ")
		for (i = 1; i <= n; i++)
			if (!(a[i] in seen)) {
				if (!inplug) { print "plugins:"; inplug = 1 }
				print "  " a[i] ":"
				print "    enabled: true"
			}
	}
	function close_entry() {
		if (cur != "" && !(cur in has)) print "    enabled: true"
		cur = ""
	}
	# first pass: which entries say enabled:
	FNR == NR {
		if ($0 ~ /^[A-Za-z_]/) { top = $0; sub(/:.*/, "", top); e = "" }
		else if (top == "plugins" && $0 ~ /^  [a-z0-9_-]+:[ \t]*$/) {
			e = $0; sub(/^  /, "", e); sub(/:.*/, "", e); seen[e] = 1
		} else if (top == "plugins" && $0 ~ /^  [a-z0-9_-]+:/) {
			e = $0; sub(/^  /, "", e); sub(/:.*/, "", e)
			seen[e] = 1; has[e] = 1   # flow style: left alone
		} else if (top == "plugins" && e != "" && $0 ~ /^    enabled:/)
			has[e] = 1
		next
	}
	{
		if ($0 ~ /^[A-Za-z_]/) {
			if (inplug) { close_entry(); flush_missing(); inplug = 0 }
			top = $0; sub(/:.*/, "", top)
			print
			if (top == "plugins") { inplug = 1; done = 0 }
			next
		}
		if (inplug && $0 ~ /^  [a-z0-9_-]+:[ \t]*$/) {
			close_entry()
			print
			cur = $0; sub(/^  /, "", cur); sub(/:.*/, "", cur)
			if (!(cur in has)) { print "    enabled: true"; has[cur] = 1 }
			cur = ""
			next
		}
		print
	}
	END { if (inplug || !sawplug()) flush_missing() }
	function sawplug(   k) { for (k in seen) return 1; return 0 }
	' "$_f" "$_f" > "$_f.tmp" && mv "$_f.tmp" "$_f"
}

# install_plugins NAME...: copy built plugins into $T/plugins.
install_plugins() {
	mkdir -p "$T/plugins"
	for n in "$@"; do
		cp "$PLUGIN_BUILD_DIRS/$n/.libs/$n.so" "$T/plugins/$n.so"
	done
}

# start_ophookd [ARGS]: start the daemon in the foreground (background job),
# wait for its socket.
start_ophookd() {
	enable_plugins "$T/ophookd.yaml"
	"$OPHOOKD" -f -c "$T/ophookd.yaml" "$@" >>"$T/ophookd.log" 2>&1 &
	OPHOOKD_PID=$!
	cleanup_pid "$OPHOOKD_PID"
	if ! wait_for 20 "$OPHOOKCTL" -s "$T/ophookd.sock" status; then
		echo "# ophookd did not come up"; tail -n 20 "$T/ophookd.log" | sed 's/^/# /'
		return 1
	fi
}
stop_ophookd() {
	kill -TERM "$OPHOOKD_PID" 2>/dev/null
	wait "$OPHOOKD_PID" 2>/dev/null
	return 0
}
ctl() { "$OPHOOKCTL" -s "$T/ophookd.sock" "$@"; }

# log_count_type TYPE: number of lines of $T/events.log of that type
log_count_type() { grep -c "\"type\": *\"$1\"" "$T/events.log" 2>/dev/null || true; }

# log_events TYPE [KEY=VALUE...]: events of TYPE in $T/events.log whose
# top-level fields all match (booleans as true/false)
log_events() {
	python3 - "$T/events.log" "$@" <<'PY'
import json, sys
path, typ, conds = sys.argv[1], sys.argv[2], sys.argv[3:]
n = 0
try: lines = open(path).readlines()
except OSError: lines = []
for line in lines:
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("type") != typ: continue
    ok = True
    for c in conds:
        k, v = c.split("=", 1)
        got = e.get(k)
        if isinstance(got, bool): got = "true" if got else "false"
        if str(got) != v: ok = False
    n += ok
print(n)
PY
}
