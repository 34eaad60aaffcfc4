#!/bin/sh
# Issue 16, hooks and the control socket, against a running ophookd: a
# socket_group member who is not root (uid 65534 with the group of gid
# 65534 as socket_group) cannot run its own code as root through hooks
# test/lint, and runs only the commands the daemon's trust model gives it;
# engine-owned fields are refused in every emit form; a Lua finalizer is
# refused at load, naming the file and line.
. "$top_srcdir/tests/lib.sh"

need python3 setpriv
need_root
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
NOGROUP=$(getent group 65534 | cut -d: -f1)
[ -n "$NOGROUP" ] || skip_all "no group with gid 65534"

write_config
echo "socket_group: $NOGROUP" >> "$T/ophookd.yaml"
H=$T/hooks
chmod 0755 "$H"
chmod 0711 "$T"
printf '%s\n' \
	'ophook.on("domain.added", function(ev) ophook.log.info("good saw", ev.domain) end)' \
	> "$H/good.lua"
printf '%s\n' 'local t = {}' \
	'setmetatable(t, {__gc = function() while true do end end})' \
	'ophook.on("domain.added", function(ev) end)' > "$H/gc.lua"
chmod 0644 "$H/good.lua" "$H/gc.lua"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
LOG=$T/ophookd.log
SOCK=$T/ophookd.sock
# the member's own folder, where it writes what it likes
M=$T/member
mkdir -p "$M"
chown 65534:65534 "$M"
member() { setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$OPHOOKCTL" -s "$SOCK" "$@"; }
as_member() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

# ---- finding 1: no code of a member's runs as root ----
as_member sh -c "printf '#!/bin/sh\ntouch $T/pwned-exec\n' > $M/evil.sh; chmod 0755 $M/evil.sh"
as_member sh -c "printf 'ophook.on(\"domain.added\", function(ev) ophook.exec({\"/bin/touch\", \"$T/pwned-lua\"}) end)\n' > $M/evil.lua; chmod 0644 $M/evil.lua"
out=$(member hooks test "$M/evil.sh" --event domain.added 2>&1)
rc=$?
ok "$([ $rc -ne 0 ] && [ ! -e "$T/pwned-exec" ] && echo 0 || echo 1)" \
	"hooks test on a member's #! script: refused, not run as root"
diag "its answer: $(echo "$out" | head -n 1)"
out=$(member hooks test "$M/evil.lua" --event domain.added 2>&1)
rc=$?
ok "$([ $rc -ne 0 ] && [ ! -e "$T/pwned-lua" ] && echo 0 || echo 1)" \
	"hooks test on a member's Lua file: refused, its ophook.exec not run"
ok "$(echo "$out" | grep -q 'hooks_dir'; echo $?)" \
	"and the refusal says why (not inside hooks_dir)"
out=$(member hooks lint "$M/evil.lua" 2>&1)
ok "$([ $? -ne 0 ] && echo 0 || echo 1)" "hooks lint on a member's file: refused"
# a symlink in hooks_dir to the member's file is the member's file
ln -s "$M/evil.lua" "$H/link.lua"
member hooks test link.lua --event domain.added >/dev/null 2>&1
ok "$([ $? -ne 0 ] && [ ! -e "$T/pwned-lua" ] && echo 0 || echo 1)" \
	"hooks test through a symlink in hooks_dir: refused"
rm -f "$H/link.lua"
# a hook in hooks_dir that the member may write
cp "$M/evil.lua" "$H/writable.lua"
chmod 0666 "$H/writable.lua"
member hooks test writable.lua --event domain.added >/dev/null 2>&1
ok "$([ $? -ne 0 ] && [ ! -e "$T/pwned-lua" ] && echo 0 || echo 1)" \
	"hooks test on a world-writable file in hooks_dir: refused"
rm -f "$H/writable.lua"
# the admin's own hooks: a member may test and lint them
out=$(member hooks test "$H/good.lua" --event domain.added 2>&1)
is "$?" 0 "hooks test of a root-owned hook in hooks_dir: allowed"
diag "its answer: $(echo "$out" | tail -n 1)"
printf '{"domain":"p.example.com"}\n' > "$M/p.json"
chmod 0644 "$M/p.json"
out=$(member hooks test "$H/good.lua" --event domain.added --payload "$M/p.json" 2>&1)
ok "$(echo "$out" | grep -q 'good saw p.example.com'; echo $?)" \
	"a member's payload file is read by ophookctl with its own rights"
printf '{"domain":"secret.example.com"}\n' > "$H/secret.json"
chmod 0600 "$H/secret.json"
out=$(member hooks test "$H/good.lua" --event domain.added --payload "$H/secret.json" 2>&1)
ok "$([ $? -ne 0 ] && ! echo "$out" | grep -q secret.example && echo 0 || echo 1)" \
	"a payload the member cannot read: refused, nothing of it shown"
out=$(python3 - "$SOCK" "$H/secret.json" <<'PY'
import json, os, socket, sys
os.setgroups([]); os.setgid(65534); os.setuid(65534)
s = socket.socket(socket.AF_UNIX)
s.settimeout(30)
s.connect(sys.argv[1])
s.sendall((json.dumps({"cmd": "hooks", "args": ["test", "good.lua", "--event",
    "domain.added", "--payload", sys.argv[2]]}) + "\n").encode())
print(s.makefile("rb").readline().decode().strip())
PY
)
ok "$(echo "$out" | grep -q '"ok": *false' && ! echo "$out" | grep -q secret.example && echo 0 || echo 1)" \
	"a root-only payload path sent by a member: the daemon does not read it"
member hooks lint "$H/good.lua" >/dev/null 2>&1
is "$?" 0 "hooks lint of a root-owned hook: allowed"
# per command: looking is allowed, changing is root's
member status >/dev/null 2>&1
is "$?" 0 "a member may run status"
member hooks list >/dev/null 2>&1
is "$?" 0 "a member may run hooks list"
for c in "emit test.ping" "replay 1" "retry" "reconcile" \
	"plugins reload log" "plugins disable log"; do
	# shellcheck disable=SC2086
	out=$(member $c 2>&1)
	rc=$?
	ok "$([ $rc -eq 2 ] && echo "$out" | grep -q 'permission denied.*root only' && echo 0 || echo 1)" \
		"a member may not run '$c'"
done
ok "$(grep -q "refused 'emit' to uid 65534" "$LOG"; echo $?)" \
	"a refused command is logged with the uid"
ctl status >/dev/null
is "$?" 0 "root is still served"

# ---- finding 8: engine-owned fields refused in every emit form ----
for f in emitted_by=lua:good.lua replay_of=1 id=7 node=x source=inotify \
	time=now type=x subject=y; do
	out=$(ctl emit domain.added a.example.com domain=a.example.com "$f" 2>&1)
	rc=$?
	k=${f%%=*}
	ok "$([ $rc -eq 2 ] && echo "$out" | grep -q "'$k'" && echo 0 || echo 1)" \
		"emit with $k: refused, naming the field"
done
out=$(printf 'domain.added b.example.com domain=b.example.com emitted_by=lua:good.lua\n' |
	ctl emit - 2>&1)
ok "$([ $? -ne 0 ] && echo "$out" | grep -q "emitted_by" && echo 0 || echo 1)" \
	"emit - with emitted_by: refused, naming the field"
out=$(python3 - "$SOCK" <<'PY'
import json, socket, sys
def ask(req):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sys.argv[1])
    s.sendall((json.dumps(req) + "\n").encode())
    return s.makefile("rb").readline().decode().strip()
print(ask({"cmd": "emit", "events": [{"type": "domain.added", "subject": "c.example.com",
      "fields": {"domain": "c.example.com", "emitted_by": "lua:good.lua"}}]}))
print(ask({"cmd": "emit", "events": [{"type": "domain.added", "subject": "c.example.com",
      "emitted_by": "lua:good.lua", "fields": {"domain": "c.example.com"}}]}))
PY
)
n=$(echo "$out" | grep -c '"ok": *false.*emitted_by')
is "$n" 2 "the JSON events form: emitted_by refused in fields and beside them"
ctl emit domain.added d.example.com domain=d.example.com >/dev/null
wait_for 10 grep -q "good saw d.example.com" "$LOG"
ok $? "an ordinary emit still reaches the hook"

# ---- finding 6: no finalizers ----
out=$(ctl hooks list 2>&1)
ok "$(echo "$out" | grep 'gc.lua' | grep -q 'gc.lua:2:.*__gc'; echo $?)" \
	"a Lua file with a __gc finalizer is refused, naming the file and line"
ok "$(echo "$out" | grep 'gc.lua' | grep -q 'loaded'; [ $? -ne 0 ]; echo $?)" \
	"and hooks list does not say loaded"

ok "$(kill -0 "$OPHOOKD_PID"; echo $?)" "the daemon is still running"
stop_ophookd
done_testing
