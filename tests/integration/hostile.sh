#!/bin/sh
# Hostile input against a running ophookd: symlinks out of the tree, domain
# conf names that are not domains, huge and binary files, a huge deny list,
# a control client that never sends a newline or is not root, world-writable
# hooks.  Each
# case: a clear log line naming the file, nothing read outside the tree, the
# daemon still serving, and nothing lost (an ordinary domain added at the
# end still gives domain.added).
. "$top_srcdir/tests/lib.sh"

need python3
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/log/.libs/log.so" ] || skip_all "log plugin not built"

write_config
install_plugins log
R=$T/root
D=$R/caddy/domains
mkdir -p "$D" "$R/caddy/deny" "$R/openpanel/core/users/bob" \
	"$R/openpanel/conf" "$R/caddy/ssl"
chmod 0755 "$T/hooks"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
LOG=$T/ophookd.log

pid_alive() { kill -0 "$OPHOOKD_PID" 2>/dev/null; }
serving() { ctl status >/dev/null 2>&1; }
logged() { grep -aF -- "$1" "$LOG" | grep -aqiE -- "${2:-.}"; }
has_added() { grep -a '"type": *"domain.added"' "$T/events.log" 2>/dev/null |
	grep -aq "\"subject\": *\"$1\""; }
n_added() { grep -ac '"type": *"domain.added"' "$T/events.log" 2>/dev/null || echo 0; }

# the first run records a baseline: files made before it ends give no event
wait_for 20 logged "baseline recorded" .
# a reference domain first, so the watcher is known to be running
printf 'ok1.example.com {\n    reverse_proxy http://127.0.0.1:8080\n}\n' \
	> "$D/ok1.example.com.conf"
ok "$(wait_for 15 has_added ok1.example.com; echo $?)" \
	"an ordinary domain conf gives domain.added"

# 1. a domain conf that is a symlink to /etc/shadow
ln -s /etc/shadow "$D/shadow.example.com.conf"
ok "$(wait_for 15 logged "$D/shadow.example.com.conf" symlink; echo $?)" \
	"symlinked domain conf: warning naming the path"
ok "$(has_added shadow.example.com && echo 1 || echo 0)" \
	"symlinked domain conf: no domain.added"
ok "$(grep -aq 'root:' "$T/events.log" && echo 1 || echo 0)" \
	"symlinked domain conf: nothing of /etc/shadow in the events"
ok "$(serving; echo $?)" "symlinked domain conf: daemon still serving"

# 2. conf names that are not domain names
before=$(n_added)
for n in 'x..y.com' 'a;b.com' '$(id).com' 'a b.com' "$(printf 'a\nb.com')" \
	"$(printf 'a%.0s' $(seq 1 70)).com" 'exаmple.com' '-lead.com' \
	'under_score.com'; do
	printf 'x {\n}\n' > "$D/$n.conf"
done
bad_logged=0
for n in 'x..y.com' 'a;b.com' '$(id).com' 'a b.com' 'exаmple.com' \
	'-lead.com' "$(printf 'a%.0s' $(seq 1 70)).com"; do
	if ! wait_for 15 logged "$D/$n.conf" ignored; then
		diag "no log line for '$n'"
		bad_logged=1
	fi
done
ok "$bad_logged" "bad domain conf names: a log line naming each file"
ok "$(wait_for 15 logged "$(printf 'a\nb.com')" .; echo $?)" \
	"conf name with a newline: logged"
sleep 0.5
is "$(n_added)" "$before" "bad domain conf names: no domain.added"
ok "$([ -e "$R/../uid=0" ] || [ -e "/tmp/uid=0(root)" ] && echo 1 || echo 0)" \
	"bad domain conf names: nothing written outside the tree"
ok "$(serving; echo $?)" "bad domain conf names: daemon still serving"

# 3. a 100 MB conf file
truncate -s 100M "$D/big.example.com.conf"
ok "$(wait_for 15 logged "$D/big.example.com.conf" 'large|size|big'; echo $?)" \
	"100 MB conf: refused with an error naming the file and the size"
ok "$(has_added big.example.com && echo 1 || echo 0)" \
	"100 MB conf: no domain.added"
ok "$(serving; echo $?)" "100 MB conf: daemon still serving"
rm -f "$D/big.example.com.conf"

# 4. binary garbage as a conf
head -c 65536 /dev/urandom > "$D/garbage.example.com.conf"
printf '\0\0\0{\xff\xfe}\n' >> "$D/garbage.example.com.conf"
sleep 1
ok "$(serving; echo $?)" "binary garbage conf: daemon still serving"
ok "$(pid_alive; echo $?)" "binary garbage conf: daemon alive"

# 5. a deny list with 1,000,000 lines
python3 - "$R/caddy/deny/bob.ips" <<'EOF'
import sys
with open(sys.argv[1] + ".tmp", "w") as f:
    for i in range(1000000):
        f.write("remote_ip 10.%d.%d.%d\n" % (i >> 16 & 255, i >> 8 & 255, i & 255))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
EOF
ok "$(wait_for 30 serving; echo $?)" \
	"1,000,000-line deny list: ctl status answers"
has_deny() { grep -aq '"type": *"user.denylist.changed"' "$T/events.log"; }
t0=$(date +%s)
wait_for 120 has_deny
ok $? "1,000,000-line deny list: user.denylist.changed delivered"
diag "user.denylist.changed after $(( $(date +%s) - t0 )) s"
ok "$(wait_for 30 serving; echo $?)" \
	"1,000,000-line deny list: still responsive afterwards"

# 6. a control client sending 1 GB without a newline
rss_max=$(python3 - "$T/ophookd.sock" "$OPHOOKD_PID" <<'EOF'
import socket, sys
path, pid = sys.argv[1], sys.argv[2]
def rss():
    with open("/proc/%s/status" % pid) as f:
        for l in f:
            if l.startswith("VmRSS:"):
                return int(l.split()[1])
    return 0
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
s.settimeout(10)
chunk = b"a" * (1 << 20)
sent, top = 0, rss()
base = top
try:
    while sent < (1 << 30):
        s.sendall(chunk)
        sent += len(chunk)
        if sent % (16 << 20) == 0:
            top = max(top, rss())
except (BrokenPipeError, ConnectionResetError, socket.timeout, OSError):
    pass
top = max(top, rss())
print(top // 1024, sent // (1 << 20), base // 1024)
EOF
)
set -- $rss_max
diag "socket flood: daemon VmRSS max $1 MB (before: $3 MB, after the deny list), $2 MB sent before the server closed"
ok "$([ "$(( $1 - $3 ))" -lt 200 ] 2>/dev/null && echo 0 || echo 1)" \
	"1 GB request without a newline: daemon RSS grows by less than 200 MB"
ok "$([ "$2" -lt 1024 ] 2>/dev/null && echo 0 || echo 1)" \
	"1 GB request without a newline: the server closes the connection"
ok "$(serving; echo $?)" "socket flood: daemon still serving"

# 7. world-writable hooks
printf 'function on_event(e) end\n' > "$T/hooks/evil.lua"
chmod 0666 "$T/hooks/evil.lua"
mkdir -p "$T/hooks/domain.added.d"
printf '#!/bin/sh\ntouch %s/exec-hook-ran\n' "$T" > "$T/hooks/domain.added.d/evil.sh"
chmod 0777 "$T/hooks/domain.added.d/evil.sh"
ok "$(wait_for 15 logged "$T/hooks/evil.lua" 'writable'; echo $?)" \
	"world-writable Lua hook: refused with a message naming it"
ok "$(serving; echo $?)" "world-writable hooks: daemon still serving"

# 8. a control client that is not root: the socket itself is opened to
# everyone for the test, so the refusal seen is the daemon's SO_PEERCRED
# check, not the file mode
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null 2>&1; then
	chmod 755 "$T"
	chmod 666 "$T/ophookd.sock"
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$OPHOOKCTL" -s "$T/ophookd.sock" status 2>&1)
	rc=$?
	chmod 600 "$T/ophookd.sock"
	chmod 700 "$T"
	ok "$([ "$rc" -ne 0 ] && echo "$out" | grep -q 'permission denied: uid 65534' && echo 0 || echo 1)" \
		"a client that is not root: refused, naming its uid"
	diag "its answer: $(echo "$out" | head -n 1)"
	ok "$(wait_for 10 logged 'refused uid 65534' 'not root'; echo $?)" \
		"a client that is not root: logged"
	ok "$(serving; echo $?)" "a client that is not root: daemon still serving"
fi

# nothing lost: an ordinary domain after all that
printf 'ok2.example.com {\n    reverse_proxy http://127.0.0.1:8080\n}\n' \
	> "$D/ok2.example.com.conf"
t0=$(date +%s)
wait_for 120 has_added ok2.example.com
ok $? \
	"nothing lost: a domain added at the end gives domain.added"
diag "domain.added for ok2 after $(( $(date +%s) - t0 )) s"
ok "$(wait_for 15 logged "$T/hooks/domain.added.d/evil.sh" 'writable|refused'; echo $?)" \
	"world-writable exec hook: refused with a message naming it"
ok "$([ -e "$T/exec-hook-ran" ] && echo 1 || echo 0)" \
	"world-writable exec hook: not run"
ok "$(pid_alive; echo $?)" "daemon alive at the end"
done_testing
