#!/bin/sh
# Hostile state and resources against a running ophookd (issue 16):
#  13  a file name with a newline is escaped in the log (no forged line)
#   5  idle control clients (a non-root socket_group member) cannot eat
#      the daemon's descriptors: a client limit, idle and request
#      timeouts; a descriptor shortage in the watcher retries the path
#   9  at the inotify watch limit (lowered inside a user namespace only:
#      the host's fs.inotify.max_user_watches is never touched): one error
#      line, the unwatched folders polled, watched again once it is raised
#   4  a corrupt or missing snapshot.db is named in an error, kept aside
#      and rebuilt from the journal (removals while down give
#      domain.removed, the others no domain.added); an emptied journal is
#      named in an error
. "$top_srcdir/tests/lib.sh"

need python3 setpriv prlimit unshare nsenter
# the daemon's clients run as nobody: a python it can run
PY=/usr/bin/python3
[ -x "$PY" ] || skip_all "no /usr/bin/python3"
need_root
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/log/.libs/log.so" ] || skip_all "log plugin not built"
getent group nogroup >/dev/null || skip_all "no group nogroup"

write_config
sed -i "s|^socket: .*|&\nsocket_group: nogroup\nsocket_max_clients: 8\nsocket_idle_ms: 3000\nsocket_request_ms: 2000|" "$T/ophookd.yaml"
install_plugins log
R=$T/root
D=$R/caddy/domains
mkdir -p "$D" "$R/openpanel/core/users" "$R/openpanel/conf"
LOG=$T/ophookd.log
chmod 0755 "$T" "$T/hooks"

logged() { grep -aF -- "$1" "$LOG" | grep -aqiE -- "${2:-.}"; }
n_logged() { grep -aF -- "$1" "$LOG" | grep -aciE -- "${2:-.}"; }
n_type() { # TYPE SUBJECT
	grep -a "\"type\": *\"$1\"" "$T/events.log" 2>/dev/null |
		grep -ac "\"subject\": *\"$2\"" || true
}
has() { [ "$(n_type "$1" "$2")" -ge 1 ]; }
conf() { printf '%s {\n    reverse_proxy http://127.0.0.1:8080\n}\n' "$1" > "$D/$1.conf"; }
serving() { ctl status >/dev/null 2>&1; }

start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
wait_for 20 logged "baseline recorded" .
conf ok1.example.com
ok "$(wait_for 15 has domain.added ok1.example.com; echo $?)" \
	"an ordinary domain conf gives domain.added"

# ---- 13: a file name with a newline ----
printf 'x {\n}\n' > "$D/$(printf 'evil\nerror: forged line.conf')"
wait_for 15 logged 'evil\x0aerror: forged line.conf' ignored
ok $? "13: a name with a newline is logged escaped (\\x0a) on one line"
ok "$(grep -aq '^error: forged line' "$LOG" && echo 1 || echo 0)" \
	"13: no log line starts with the text after the newline"
printf 'x {\n}\n' > "$D/$(printf 'esc\033[2Jape\377.conf')"
wait_for 15 logged 'esc\x1b[2Jape\xff.conf' ignored
ok $? "13: ESC and a byte that is not UTF-8 are escaped as \\xNN"

# ---- 5: idle control clients ----
cat > "$T/idle.py" <<'PY'
import socket, sys, time
path, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
socks, refused, dropped, errs = [], 0, 0, []
for i in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        errs.append(str(e)); continue
    socks.append(s)
# the refusals: read each socket until it answered or 10 s passed (a
# loaded machine accepts 300 connections slowly)
for s in socks:
    s.setblocking(False)
answered, end = set(), time.time() + 10
while time.time() < end and len(answered) < len(socks) - 8:
    for i, s in enumerate(socks):
        if i in answered:
            continue
        try:
            d = s.recv(4096)
            answered.add(i)
            if b"too many clients" in d:
                refused += 1
            elif d == b"":
                dropped += 1
        except BlockingIOError:
            pass
        except OSError:
            answered.add(i)
            dropped += 1
    time.sleep(0.05)
# closed without a word: accepted while the daemon was out of descriptors
# (libuv then accepts and closes at once); refused all the same
print("connected=%d refused=%d dropped=%d" % (len(socks), refused, dropped),
      flush=True)
# hold them idle; count the ones the server closes meanwhile
end = time.time() + hold
closed, idle = set(), 0
while time.time() < end and len(closed) < len(socks):
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            d = s.recv(4096)
            if b"idle for" in d:
                idle += 1
            if d == b"" or b"idle for" in d:
                closed.add(i)
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.1)
print("closed=%d idle=%d" % (len(closed), idle), flush=True)
PY
PID=$OPHOOKD_PID
# few descriptors: 300 idle clients would need more than the daemon has
# (soft limits only: raising a hard one needs CAP_SYS_RESOURCE)
soft=$(prlimit --pid "$PID" --nofile --noheadings --output=SOFT)
prlimit --pid "$PID" --nofile=160:
setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$PY" "$T/idle.py" "$T/ophookd.sock" 300 8 > "$T/idle.out" 2>&1 &
IDLE=$!
cleanup_pid "$IDLE"
wait_for 20 grep -q connected= "$T/idle.out"
diag "idle clients: $(head -n 1 "$T/idle.out")"
refused=$(sed -n 's/.*refused=\([0-9]*\).*/\1/p' "$T/idle.out")
dropped=$(sed -n 's/.*dropped=\([0-9]*\).*/\1/p' "$T/idle.out")
ok "$([ "${refused:-0}" -ge 1 ] && [ $((${refused:-0} + ${dropped:-0})) -ge 250 ] && echo 0 || echo 1)" \
	"5: clients over socket_max_clients get a 'too many clients' error"
is "$(n_logged 'control:' 'refusing new clients')" 1 \
	"5: one log line for the refused clients, not one per client"
conf fd1.example.com
ok "$(wait_for 15 has domain.added fd1.example.com; echo $?)" \
	"5: a conf written while 300 clients connect is delivered"
wait "$IDLE"
diag "idle clients: $(tail -n 1 "$T/idle.out")"
ok "$(grep -q 'closed=300 idle=8$' "$T/idle.out" && echo 0 || echo 1)" \
	"5: the 8 idle clients served are closed after socket_idle_ms"
# a request line left unfinished
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$PY" - "$T/ophookd.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1]); s.sendall(b'{"cmd":"sta'); s.settimeout(10)
t = time.time(); d = s.recv(4096)
print("%.1f %s" % (time.time() - t, d.decode(errors="replace").strip()))
PY
)
diag "unfinished request: $out"
ok "$(echo "$out" | grep -q 'request not finished within 2000 ms' && echo 0 || echo 1)" \
	"5: an unfinished request line is closed after socket_request_ms"
# a descriptor shortage in the watcher: no change lost
# the lowest free descriptor as the limit: every open fails (EMFILE)
nfd=$(ls /proc/"$PID"/fd | sort -n | awk 'BEGIN{n=0} $1==n{n++} END{print n}')
prlimit --pid "$PID" --nofile="$nfd":
conf fd2.example.com
ok "$(wait_for 15 logged 'out of file descriptors' "fd2.example.com.conf"; echo $?)" \
	"5: a descriptor shortage in the watcher is logged, naming the file"
conf fd3.example.com
sleep 2
is "$(n_logged 'out of file descriptors' .)" 1 "5: logged once an episode"
prlimit --pid "$PID" --nofile="$soft":
ok "$(wait_for 15 has domain.added fd2.example.com; echo $?)" \
	"5: the file is read again once descriptors are free (domain.added)"
ok "$(wait_for 15 has domain.added fd3.example.com; echo $?)" \
	"5: and so is the one written during the shortage"
ok "$(serving; echo $?)" "5: daemon still serving"

# ---- 4: corrupt or missing state ----
conf gone1.example.com
conf keep.example.com
wait_for 15 has domain.added gone1.example.com
wait_for 15 has domain.added keep.example.com
sleep 0.5
stop_ophookd
head -c 16384 /dev/urandom > "$T/state/snapshot.db"
rm -f "$T/state/snapshot.db-wal" "$T/state/snapshot.db-shm"
rm -f "$D/gone1.example.com.conf"
start_ophookd || { ok 1 "restarts on a corrupt snapshot"; exit 1; }
ok "$(wait_for 15 logged "$T/state/snapshot.db" 'unreadable.*kept aside as'; echo $?)" \
	"4: a corrupt snapshot.db is named in an error line"
ok "$(ls "$T/state"/snapshot.db.corrupt-* >/dev/null 2>&1; echo $?)" \
	"4: and kept aside"
ok "$(wait_for 15 has domain.removed gone1.example.com; echo $?)" \
	"4: a conf removed while down gives domain.removed"
wait_for 15 logged "reconcile done" .
sleep 1
is "$(n_type domain.added keep.example.com)" 1 \
	"4: an existing conf gives no second domain.added"
is "$(n_type domain.added ok1.example.com)" 1 \
	"4: (nor the first one)"
conf new1.example.com
ok "$(wait_for 15 has domain.added new1.example.com; echo $?)" \
	"4: a new conf afterwards gives domain.added"

# a missing snapshot
conf gone2.example.com
wait_for 15 has domain.added gone2.example.com
sleep 0.5
stop_ophookd
rm -f "$T/state/snapshot.db" "$T/state/snapshot.db-wal" "$T/state/snapshot.db-shm"
rm -f "$D/gone2.example.com.conf"
start_ophookd || { ok 1 "restarts without a snapshot"; exit 1; }
ok "$(wait_for 15 logged "$T/state/snapshot.db" 'missing'; echo $?)" \
	"4: a missing snapshot.db is named in an error line"
ok "$(wait_for 15 has domain.removed gone2.example.com; echo $?)" \
	"4: a conf removed while it was missing gives domain.removed"
sleep 1
is "$(n_type domain.added keep.example.com)" 1 \
	"4: an existing conf still gives no second domain.added"

# an emptied journal
stop_ophookd
rm -f "$T/state/journal.db" "$T/state/journal.db-wal" "$T/state/journal.db-shm"
start_ophookd || { ok 1 "restarts on an emptied journal"; exit 1; }
ok "$(wait_for 15 logged 'the journal ends at event 0' 'emptied or replaced'; echo $?)" \
	"4: an emptied journal is named in an error line"
stop_ophookd

# ---- 9: the inotify watch limit (in a user namespace of its own) ----
rm -rf "$T/state"/* "$T/events.log"
# only uid and gid 0 are mapped in the namespace: no socket_group there
sed -i '/^socket_group:/d' "$T/ophookd.yaml"
for i in $(seq 1 20); do mkdir -p "$R/openpanel/core/users/u$i/files"; done
conf before9.example.com
enable_plugins "$T/ophookd.yaml"
unshare -U -r sh -c 'echo 1 > /proc/sys/user/max_inotify_watches &&
	exec "$0" -f -c "$1"' "$OPHOOKD" "$T/ophookd.yaml" >>"$LOG" 2>&1 &
OPHOOKD_PID=$!
cleanup_pid "$OPHOOKD_PID"
wait_for 20 ctl status
wait_for 20 logged "baseline recorded" .
ok "$(wait_for 10 logged 'inotify watch limit reached' 'max_user_watches'; echo $?)" \
	"9: the watch limit is named with fs.inotify.max_user_watches"
is "$(n_logged 'watch limit reached' .)" 1 "9: one error line, not one per folder"
conf poll1.example.com
ok "$(wait_for 15 has domain.added poll1.example.com; echo $?)" \
	"9: a conf in an unwatched folder is found by polling"
rm -f "$D/before9.example.com.conf"
ok "$(wait_for 15 has domain.removed before9.example.com; echo $?)" \
	"9: a removal in an unwatched folder is found by polling"
nsenter -U -t "$OPHOOKD_PID" sh -c 'echo 100000 > /proc/sys/user/max_inotify_watches'
ok "$(wait_for 15 logged 'inotify watches available again' .; echo $?)" \
	"9: once the limit is raised the folders are watched again"
conf late9.example.com
ok "$(wait_for 15 has domain.added late9.example.com; echo $?)" \
	"9: and changes are seen after that"
ok "$(serving; echo $?)" "daemon still serving"
done_testing
