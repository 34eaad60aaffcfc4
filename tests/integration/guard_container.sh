#!/bin/sh
# The guard's veto where the user panel runs opencli: inside the
# `openpanel` container.  That container (Alpine) mounts /etc/openpanel and
# /usr/local/opencli of the host but has no ophookctl and no /run of the
# host, so ophookd cannot be asked through its control socket.  ophookd
# listens on a relay (checks.relay_socket, under /etc/openpanel) that
# answers `check` only, and `guard install` copies the static client
# ophook-guard next to it.
#
# Here a real rootful Podman container (no image: --rootfs of bash and its
# libraries, nothing else) mounts $R/etc/openpanel and $R/usr/local/opencli
# where the real one mounts /etc/openpanel and /usr/local/opencli, and runs
# our copy of OpenPanel 2.x's opencli wrapper (opencli_lib.sh: the pre hook
# run as `bash HOOK ARGS`, its output on /dev/null, its exit status
# ignored).  A Lua pre hook on the host denies; the command's script must
# not run, the reason must reach the caller's stderr,
# and with ophookd stopped a fail-closed intent is refused and a fail-open
# one allowed.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/containers_lib.sh"
. "$top_srcdir/tests/integration/opencli_lib.sh"
need bash podman runc ldd setpriv python3
need_root
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
GUARD_CLIENT=$top_builddir/ophook-guard
[ -x "$GUARD_CLIENT" ] || skip_all "ophook-guard not built"

R=$T/root-host
OP=$R/etc/openpanel
HOOKS=$OP/openpanel/hooks
SCRIPTS=$R/usr/local/opencli
RELAY=$OP/ophookd/guard.sock
mkdir -p "$HOOKS" "$SCRIPTS/domains" "$SCRIPTS/user"
for s in domains/add user/add; do
	printf '#!/bin/bash\necho "%s $*" >> /etc/openpanel/ran\necho "%s done"\n' \
		"$s" "$s" > "$SCRIPTS/$s.sh"
done

# the container's file system: bash, its libraries (and ophook-guard's,
# when it is not static: sanitizer builds), the wrapper; the rest is
# mounted from the host as OpenPanel's compose file does
C=$T/ctr
mkdir -p "$C/bin" "$C/usr/local/bin" "$C/etc/openpanel" "$C/usr/local/opencli" \
	"$C/proc" "$C/dev" "$C/sys" "$C/tmp"
cp /bin/bash "$C/bin/bash"
for f in $(ldd /bin/bash "$GUARD_CLIENT" 2>/dev/null | grep -o '/[^ ]*'); do
	[ -f "$f" ] && cp -L --parents "$f" "$C/"
done
opencli_wrapper "$C/usr/local/bin/opencli" /usr/local/opencli \
	/etc/openpanel/openpanel/hooks

# Podman on storage under $T (containers_lib.sh)
pm_conf ctr
cleanup_cmd "pm_local ctr rm -af -t 0"
# copencli ARGS: opencli inside the container, as the Go panel starts it
# (not as the container's first process: a shell waits for it); stdout to
# $T/out, stderr to $T/err, exit status in rc
copencli() {
	pm_local ctr run --rm --network none \
		-v "$OP:/etc/openpanel" -v "$SCRIPTS:/usr/local/opencli:ro" \
		--rootfs "$C" /bin/bash -c '/usr/local/bin/opencli "$@"; rc=$?; exit $rc' \
		sh "$@" > "$T/out" 2> "$T/err"
	rc=$?
}

write_config
cat >> "$T/ophookd.yaml" <<EOF
checks:
  fail_open: [ "user.*" ]
  relay_socket: $RELAY
EOF
cat > "$T/hooks/deny.lua" <<'EOF'
ophook.pre("domain.add", function(req)
	if req.domain:match("%.example$") then
		return ophook.deny(req.domain .. " is reserved\n\27[31mred")
	end
end)
ophook.pre("user.add", function(req)
	if req.user == "root" then return ophook.deny("no user root") end
end)
EOF
chmod 644 "$T/hooks/deny.lua"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
wait_for 10 ctl check domain.add domain=x.com

# does a container run at all here?
copencli domains-add probe.com bob
if [ "$rc" -ne 0 ] || ! grep -q 'domains/add probe.com' "$OP/ran" 2>/dev/null; then
	echo "# podman run: rc=$rc"; sed 's/^/# /' "$T/err" | head -n 20
	skip_all "a rootful Podman container cannot run here"
fi
: > "$OP/ran"

ok "$([ -S "$RELAY" ]; echo $?)" "ophookd listens on the relay (checks.relay_socket)"
is "$(stat -c %a "$RELAY")" 660 "the relay socket is root's (mode 660, group root)"

# the relay answers `check` and nothing else, and only to root
ctl_r() { "$OPHOOKCTL" -s "$RELAY" "$@"; }
ctl_r check domain.add domain=shop.example > "$T/r.out" 2>&1
is "$?" 1 "check over the relay: the Lua pre hook's deny"
ok "$(grep -q 'shop.example is reserved' "$T/r.out"; echo $?)" "with its reason"
ctl_r status > "$T/r.out" 2>&1
ok "$([ $? -ne 0 ] && grep -qi 'unknown command' "$T/r.out"; echo $?)" \
	"status over the relay: unknown command"
ctl_r emit domain.added '{"domain":"x.com"}' > "$T/r.out" 2>&1
ok "$([ $? -ne 0 ] && ! ctl events | grep -q 'x.com'; echo $?)" \
	"emit over the relay: refused, nothing journaled"
setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$OPHOOKCTL" -s "$RELAY" check domain.add domain=shop.com > "$T/r.out" 2>&1
ok "$([ $? -ne 0 ]; echo $?)" "a client that is not root is refused"
python3 - "$RELAY" > "$T/garbage.out" 2>&1 <<'PYEOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"\x00\xff garbage {\n")
print(s.recv(4096).decode("utf-8", "replace"))
PYEOF
ok "$(grep -q '"ok": *false' "$T/garbage.out" && ctl_r check domain.add domain=shop.com > /dev/null; echo $?)" \
	"garbage on the relay: an error line, and the relay still answers"

ctl guard install --root "$R" --relay "$RELAY" --guard-client "$GUARD_CLIENT" \
	--fail-open-intent 'user.*' --log "$T/guard.log" > "$T/inst.out" 2>&1
is "$?" 0 "guard install with the relay"
ok "$([ -x "$OP/ophookd/ophook-guard" ] && cmp -s "$GUARD_CLIENT" "$OP/ophookd/ophook-guard"; echo $?)" \
	"ophook-guard copied next to the relay socket"
ok "$(grep -q 'inside the openpanel container: /etc/openpanel/ophookd/ophook-guard asks ophookd through /etc/openpanel/ophookd/guard.sock' "$T/inst.out"; echo $?)" \
	"install says how the container asks (paths as the container sees them)"
ok "$(grep -q "client='/etc/openpanel/ophookd/ophook-guard'" "$HOOKS/pre_domains-add.sh"; echo $?)" \
	"the hooks name the client by its path inside the container"

# inside the container: allowed, then denied
guard_allow_deny copencli "$OP/ran" "container: "
ok "$(grep -q 'opencli domains-add refused' "$OP/ophookd/guard.log"; echo $?)" \
	"container: the refusal is logged in /etc/openpanel/ophookd/guard.log"
copencli user-add root pw a@b.c default
ok "$([ "$rc" -ne 0 ] && [ ! -s "$OP/ran" ] && grep -q 'no user root' "$T/err"; echo $?)" \
	"container: user-add root denied too"
# the watcher saw the relay, the client and the log appear: no event
ok "$(ctl events -n 1000 | grep -q 'ophookd/'; [ $? -ne 0 ]; echo $?)" \
	"no event about the relay's folder"

# ophookd stopped: fail closed, but for the fail-open intents
stop_ophookd
: > "$OP/ran"
copencli domains-add shop.com bob
ok "$([ "$rc" -ne 0 ] && [ ! -s "$OP/ran" ]; echo $?)" \
	"container, ophookd down: domains-add refused (fail-closed)"
ok "$(grep -q 'ophookd cannot answer' "$T/err"; echo $?)" \
	"container, ophookd down: the caller is told why"
copencli user-add carol pw c@d.e default
ok "$([ "$rc" -eq 0 ] && grep -q 'user/add carol' "$OP/ran"; echo $?)" \
	"container, ophookd down: user-add allowed (fail-open for user.*)"
ok "$([ ! -e "$RELAY" ]; echo $?)" "the relay socket is gone with ophookd"

# status and remove
ctl guard status --root "$R" --relay "$RELAY" > "$T/st.out" 2>&1
ok "$(grep -q 'inside the openpanel container: client installed' "$T/st.out"; echo $?)" \
	"guard status reports the container's client"
ctl guard remove --root "$R" --relay "$RELAY" > "$T/rm.out" 2>&1
is "$?" 0 "guard remove"
ok "$([ ! -e "$OP/ophookd/ophook-guard" ] && [ -z "$(ls "$HOOKS")" ]; echo $?)" \
	"remove takes the hooks and the client away"
: > "$OP/ran"
copencli domains-add shop.example bob
ok "$([ "$rc" -eq 0 ] && grep -q 'domains/add shop.example' "$OP/ran"; echo $?)" \
	"without the guard, the container's opencli runs anything again"
done_testing
