#!/bin/sh
# ophookctl guard: a veto that stops a real opencli run.  $T/root/usr/local/
# bin/opencli below is our own copy of how OpenPanel 2.x's wrapper runs a
# command (written from reading it, not its text): the pre hook
# pre_<cmd>.sh (or pre_<cmd>) from /etc/openpanel/openpanel/hooks is run as
# `bash HOOK ARGS` with stdin/stdout/stderr on /dev/null and its exit status
# ignored, then `bash /usr/local/opencli/<cmd with - as />.sh ARGS`, then the
# post hook in the background.  Only the two folders are moved under $T.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/opencli_lib.sh"
need bash
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"

R=$T/root
HOOKS=$R/etc/openpanel/openpanel/hooks
SCRIPTS=$R/usr/local/opencli
mkdir -p "$R/usr/local/bin" "$SCRIPTS/domains" "$SCRIPTS/user" "$SCRIPTS/misc"

opencli_wrapper "$R/usr/local/bin/opencli" "$SCRIPTS" "$HOOKS"
for s in domains/add domains/suspend user/add user/suspend misc/thing; do
	printf '#!/bin/bash\necho "%s $*" >> "%s/ran"\necho "%s done"\n' \
		"$s" "$T" "$s" > "$SCRIPTS/$s.sh"
done

write_config
# user.* checks allow when they cannot be answered; the rest fail closed
printf 'checks:\n  fail_open: [ "user.*" ]\n' >> "$T/ophookd.yaml"
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
OPENCLI=$R/usr/local/bin/opencli
# opencli ARGS: run it as a caller would, stdout to $T/out, stderr appended
# to an emptied $T/err (a killed command's shell may print "Terminated"
# there too); sets rc
opencli() {
	: > "$T/err"
	"$OPENCLI" "$@" > "$T/out" 2>> "$T/err"
	rc=$?
}

# the hook as OpenPanel runs it: no guard yet, a plain failing hook blocks
# nothing (today's contrib/opencli-pre-hook behaviour)
mkdir -p "$HOOKS"
printf '#!/bin/bash\necho "denied" >&2\nexit 1\n' > "$HOOKS/pre_domains-add.sh"
opencli domains-add shop.example bob
ok "$(grep -q 'domains/add shop.example bob' "$T/ran"; echo $?)" \
	"without the guard, a pre hook's exit status stops nothing"
rm -f "$HOOKS/pre_domains-add.sh" "$T/ran"

# install
ctl guard install --root "$R" --log "$T/guard.log" > "$T/inst.out" 2>&1
is "$?" 0 "guard install"
ok "$([ -f "$HOOKS/pre_domains-add.sh" ] && [ -f "$HOOKS/pre_user-add.sh" ]; echo $?)" \
	"pre hooks written into the hooks folder"
ok "$([ -f "$HOOKS/pre_misc-thing.sh" ]; echo $?)" \
	"an opencli script the table does not know gets a hook too (to be logged)"
ok "$([ ! -e "$HOOKS/pre_sentinel.sh" ]; echo $?)" \
	"commands that change nothing get no hook"
ok "$(find "$R" -newer "$T/ophookd.yaml" -type f ! -path "$HOOKS/*" \
	! -path "$SCRIPTS/*" ! -name opencli | grep -q .; [ $? -ne 0 ]; echo $?)" \
	"nothing written outside the hooks folder"
ctl guard status --root "$R" > "$T/st.out"
is "$?" 0 "guard status: installed"

# allowed: the script runs; denied: it does not, the reason on stderr
guard_allow_deny opencli "$T/ran" ""
is "$(cat "$T/out")" "" "nothing on stdout"
# the -x debug flag changes nothing
: > "$T/ran"
opencli -x user-add root pw a@b.c default
ok "$([ ! -s "$T/ran" ] && grep -q 'no user root' "$T/err"; echo $?)" \
	"opencli -x: denied too"
# the password is never passed on
"$OPENCLI" user-add carol s3cretPW a@b.c default > /dev/null 2>&1
ok "$(grep -rq s3cretPW "$T/ophookd.log" "$T/guard.log" "$T/state" 2>/dev/null; [ $? -ne 0 ]; echo $?)" \
	"user-add's password is not sent to ophookd"
# unmapped: logged and allowed
: > "$T/ran"
"$OPENCLI" misc-thing a > /dev/null 2>&1
ok "$(grep -q 'misc/thing a' "$T/ran" && grep -q 'opencli misc-thing: not in the guard' "$T/guard.log"; echo $?)" \
	"an unmapped command is logged and allowed"

# a pre hook file that does not load fails the checks of the intents it
# names in ophook.pre(...): closed by default, open for user.* (the config)
cat > "$T/hooks/broken.lua" <<'EOF'
ophook.pre("domain.suspend", function(req)
	return ophook.deny("nope"
end)
ophook.pre( 'user.suspend', function(req) end)
EOF
chmod 644 "$T/hooks/broken.lua"
_broken_denies() { ! ctl check domain.suspend domain=shop.com > "$T/chk.out" 2>&1; }
wait_for 10 _broken_denies
ok $? "a check of an intent named by a Lua file that does not load: deny"
ok "$(grep -q 'broken.lua: not loaded' "$T/chk.out" && grep -q 'a failing check fails closed' "$T/chk.out"; echo $?)" \
	"the answer names the file, why, and that it failed closed: $(cat "$T/chk.out")"
ctl --json check domain.suspend domain=shop.com > "$T/chk.json"
is "$(jq -r '"\(.allow) \(.on_failure) \(.failed)"' "$T/chk.json")" "false closed 1" \
	"--json: allow false, on_failure closed, failed 1"
ctl check user.suspend user=bob > "$T/chk.out" 2>&1
is "$?" 0 "user.suspend (checks.fail_open: user.*) is allowed though its hook fails"
ok "$(grep -q '1 failed: allowed, checks.fail_open' "$T/chk.out"; echo $?)" \
	"and says so: $(cat "$T/chk.out")"
is "$(ctl --json check user.suspend user=bob | jq -r .on_failure)" open \
	"--json: on_failure open"
: > "$T/ran"
opencli domains-suspend shop.com
ok "$([ $rc -ne 0 ] && [ ! -s "$T/ran" ] && grep -q 'broken.lua: not loaded' "$T/err"; echo $?)" \
	"opencli domains-suspend is refused while the file does not load"
rm -f "$T/hooks/broken.lua"
_broken_gone() { ctl check domain.suspend domain=shop.com > /dev/null 2>&1; }
wait_for 10 _broken_gone
ok $? "the file removed: domain.suspend allowed again"

# ophookd stopped: fail-closed
stop_ophookd
: > "$T/ran"
opencli domains-add shop.com bob
ok "$([ $rc -ne 0 ] && [ ! -s "$T/ran" ]; echo $?)" \
	"ophookd stopped: refused (fail-closed)"
ok "$(grep -q 'ophookd cannot answer' "$T/err"; echo $?)" \
	"and the caller is told why"
# reinstalled with the config (-c): its checks.fail_open is written into the
# hooks: user.* allowed while ophookd is down, the rest refused
"$OPHOOKCTL" -c "$T/ophookd.yaml" guard install --root "$R" --log "$T/guard.log" > "$T/inst.out" 2>&1
ok "$(grep -q 'fail-open when ophookd cannot answer: user\.\*' "$T/inst.out"; echo $?)" \
	"install shows the intents that fail open: $(tail -n 1 "$T/inst.out")"
: > "$T/ran"
opencli user-suspend bob
ok "$([ $rc -eq 0 ] && grep -q 'user/suspend bob' "$T/ran"; echo $?)" \
	"ophookd stopped, user.suspend (fail_open user.*): allowed"
ok "$(grep -q 'allowed (fail-open for user\.\*)' "$T/guard.log"; echo $?)" \
	"logged with the pattern that allowed it"
: > "$T/ran"
opencli domains-add shop.com bob
ok "$([ $rc -ne 0 ] && [ ! -s "$T/ran" ]; echo $?)" \
	"ophookd stopped, domain.add: still refused"
ok "$(grep -q 'fails closed for domain.add' "$T/err"; echo $?)" \
	"the caller is told which intent failed closed"
# reinstall fail-open
ctl guard install --root "$R" --fail-open --log "$T/guard.log" > /dev/null 2>&1
: > "$T/ran"
opencli domains-add shop.com bob
ok "$([ $rc -eq 0 ] && grep -q 'domains/add shop.com' "$T/ran"; echo $?)" \
	"ophookd stopped, fail-open: allowed"
ok "$(grep -q 'allowed (fail-open)' "$T/guard.log"; echo $?)" \
	"fail-open is logged"
# where ophookctl cannot run (the openpanel container): allowed unless
# --container-fail-closed (failing closed there would refuse every action
# of the user panel for good)
ctl guard install --root "$R" --ophookctl /nonexistent/ophookctl > "$T/inst.out" 2>&1
ok "$(grep -q 'allowed unchecked' "$T/inst.out"; echo $?)" \
	"install says what happens where ophookctl cannot run"
: > "$T/ran"
opencli domains-add shop.com bob
ok "$([ $rc -eq 0 ] && grep -q 'domains/add shop.com' "$T/ran"; echo $?)" \
	"no ophookctl where opencli runs: allowed by default"
ctl guard install --root "$R" --ophookctl /nonexistent/ophookctl --container-fail-closed > /dev/null 2>&1
: > "$T/ran"
opencli domains-add shop.com bob
ok "$([ $rc -ne 0 ] && [ ! -s "$T/ran" ] && grep -q 'cannot be asked from here' "$T/err"; echo $?)" \
	"no ophookctl where opencli runs, --container-fail-closed: refused"

# an admin's own hook is left alone; remove takes only ours
printf '#!/bin/bash\ntrue\n' > "$HOOKS/pre_user-suspend.sh"
ctl guard install --root "$R" > /dev/null 2>&1
is "$?" 1 "install reports a command that keeps the admin's own hook"
ctl guard status --root "$R" > "$T/st.out"
is "$?" 1 "status: partly installed"
ok "$(grep -q 'not guarded (own hook): user-suspend' "$T/st.out"; echo $?)" \
	"status names it"
ctl guard remove --root "$R" > /dev/null
is "$?" 0 "guard remove"
is "$(ls "$HOOKS")" "pre_user-suspend.sh" "only the admin's hook is left"
ctl guard status --root "$R" > /dev/null
is "$?" 1 "status: not installed"
: > "$T/ran"
"$OPENCLI" domains-add shop.example bob > /dev/null 2>&1
ok "$(grep -q 'domains/add shop.example' "$T/ran"; echo $?)" \
	"after remove, opencli runs as before"
ctl guard install --root "$R" --ophookctl "/bad path;rm" > /dev/null 2>&1
is "$?" 2 "a path a shell would read specially is refused"
done_testing
