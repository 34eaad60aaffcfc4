#!/bin/sh
# The web console (issue 21): token file checks, HTTP refusals (no token,
# bad token, no CSRF token), the security headers, and a real headless
# Chromium driving every page (tests/console/drive.js): log in, the demo
# scenario's events appear live, filter by user, an event's attempts, retry
# a dead delivery until done, discard another, hooks and plugins, hostile
# names shown as text.  Screenshots are kept in
# $top_builddir/tests/console-screens/.
. "$top_srcdir/tests/lib.sh"
need python3 curl node openssl sqlite3
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || skip_all "chromium not installed (contrib/deps.sh test)"
[ -d "$top_srcdir/tests/console/node_modules/playwright-core" ] ||
	skip_all "playwright-core not installed (contrib/deps.sh test runs npm ci in tests/console)"
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"

H="$T/hooks"
write_config
sed -i 's/^journal:/journal:\n  max_attempts: 2/' "$T/ophookd.yaml"
# the demo: its OpenPanel tree, panel DB and hook (contrib/quickstart.sh)
rm -rf "$T/root"
cp -r "$top_srcdir/contrib/demo/tree" "$T/root"
sqlite3 "$T/panel.db" < "$top_srcdir/contrib/demo/panel.sql"
sed -i "s|^  poll_ms: .*|  poll_ms: 200\n  admin_db: $T/users.db|" "$T/ophookd.yaml"
cp "$top_srcdir/contrib/demo/hooks/demo.lua" "$H/"
printf '%s\n' 'ophook.on("test.fail", function(ev) error("boom " .. ev.subject) end)' > "$H/fail.lua"
printf 'this is not Lua\n' > "$H/broken.lua"
chmod 0644 "$H"/*.lua
install_plugins log
# a custom certificate ending tomorrow: an open alert for the overview
mkdir -p "$T/root/caddy/ssl/custom/shop.example"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-keyout "$T/root/caddy/ssl/custom/shop.example/key.pem" \
	-out "$T/root/caddy/ssl/custom/shop.example/fullchain.pem" \
	-subj /CN=shop.example -addext subjectAltName=DNS:shop.example 2>/dev/null
printf 'alerts:\n  enabled: true\n  quota_interval_s: 0\n' >> "$T/ophookd.yaml"
PORT=$(free_port)
BASE="http://127.0.0.1:$PORT"
openssl rand -hex 32 > "$T/token"
TOKEN=$(cat "$T/token")
printf 'console:\n  listen: "127.0.0.1:%s"\n  token_file: %s\n' "$PORT" "$T/token" \
	>> "$T/ophookd.yaml"

# a token file others can read: ophookd refuses to start, naming the file
chmod 0644 "$T/token"
enable_plugins "$T/ophookd.yaml"
timeout 20 "$OPHOOKD" -f -c "$T/ophookd.yaml" > "$T/refused.log" 2>&1
rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "token_file $T/token: must be owned by root and readable by root only" "$T/refused.log"
ok $? "a group/world-readable token file: ophookd refuses to start and names it" ||
	diag "$(tail -n 3 "$T/refused.log")"
chmod 0600 "$T/token"
# refused_with YAML_SED MESSAGE NAME: ophookd with the config changed by
# YAML_SED exits with MESSAGE in its log
refused_with() {
	sed "$1" "$T/ophookd.yaml" > "$T/bad.yaml"
	timeout 20 "$OPHOOKD" -f -c "$T/bad.yaml" > "$T/refused.log" 2>&1
	rc=$?
	[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qF "$2" "$T/refused.log"
	ok $? "$3" || diag "$(tail -n 2 "$T/refused.log")"
}
refused_with "s|listen: \"127.0.0.1:|listen: \"0.0.0.0:|" "only loopback addresses" \
	"console.listen on 0.0.0.0 is refused (loopback or a Unix socket only)"
refused_with "/token_file:/d" "console.listen on a loopback address needs console.token_file" \
	"console.listen on loopback without a token file is refused"
printf 'short\n' > "$T/short.token"
chmod 600 "$T/short.token"
refused_with "s|token_file: .*|token_file: $T/short.token|" "the token must be 16 to 4096 bytes" \
	"a token shorter than 16 bytes is refused"
start_ophookd || exit 1
wait_for 10 curl -sf -o /dev/null "$BASE/login"
ok $? "the console answers on $BASE"
wait_for 20 sh -c "'$OPHOOKCTL' -s '$T/ophookd.sock' status | grep -q '^  cert.expiring shop.example: under 1d, not after '"
ok $? "ophookctl status lists the open alert (the overview shows the same)" ||
	diag "$(ctl status | grep -A3 '^alerts')"

# ---- HTTP without a browser ----
code() { curl -s -o "$T/body" -w '%{http_code}' "$@"; }
is "$(code "$BASE/api/ctl?cmd=status")" 401 "no token: 401"
is "$(code -H "Authorization: Bearer wrong-token-wrong-token" "$BASE/api/ctl?cmd=status")" 401 "a bad token: 401"
is "$(code -H "Cookie: ophook_console=0123456789abcdef0123456789abcdef.99999999999.00" "$BASE/api/ctl?cmd=status")" 401 \
	"a forged session cookie: 401"
is "$(code -H "Authorization: Bearer $TOKEN" "$BASE/api/ctl?cmd=status")" 200 "the token as a bearer header: 200"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["ok"] and d["result"]["journal_ok"]' "$T/body"
ok $? "status comes from the control command"
curl -s -D "$T/headers" -o /dev/null -H "Authorization: Bearer $TOKEN" "$BASE/"
grep -qi "^content-security-policy: default-src 'none'; script-src 'self'; style-src 'self';.*frame-ancestors 'none'" "$T/headers"
ok $? "a strict Content-Security-Policy"
grep -qi '^x-content-type-options: nosniff' "$T/headers"
ok $? "X-Content-Type-Options: nosniff"
! grep -qi '<script>\|style=\|[[:space:]]on[a-z]*=' "$top_srcdir/core/daemon/console/index.html"
ok $? "no inline script or style in the page"

CSRF=$(curl -s -H "Authorization: Bearer $TOKEN" "$BASE/api/session" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf"])')
post() { code -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@" "$BASE/api/ctl"; }
is "$(post -d '{"cmd":"retry","args":["--failed"]}')" 403 "POST without the CSRF token: 403"
is "$(post -H "X-CSRF-Token: 0000" -d '{"cmd":"retry","args":["--failed"]}')" 403 "POST with a wrong CSRF token: 403"
is "$(post -H "X-CSRF-Token: $CSRF" -d '{"cmd":"emit","args":["test.x"]}')" 403 \
	"POST of a command that is not a console action: 403"
is "$(code -H "Authorization: Bearer $TOKEN" "$BASE/api/ctl?cmd=emit&arg=test.x")" 403 \
	"GET of a command that changes things: 403"
is "$(post -H "X-CSRF-Token: $CSRF" -d '{"cmd":"retry","args":["--failed"]}')" 200 \
	"POST with the CSRF token: the action runs"
is "$(code -X POST -d 'token=wrong' "$BASE/login")" 401 "login with a wrong token: 401"
code -D "$T/login.h" -X POST --data-urlencode "token=$TOKEN" "$BASE/login" > /dev/null
grep -qi '^set-cookie: ophook_console=.*HttpOnly; SameSite=Strict' "$T/login.h"
ok $? "login sets an HttpOnly, SameSite=Strict session cookie"
COOKIE=$(sed -n 's/^[Ss]et-[Cc]ookie: \(ophook_console=[^;]*\);.*/\1/p' "$T/login.h")
is "$(code -H "Cookie: $COOKIE" "$BASE/api/ctl?cmd=events")" 200 "the session cookie opens the console"
is "$(code -H "Cookie: $COOKIE" -X POST -H 'Content-Type: application/json' \
	-H "X-CSRF-Token: $CSRF" -d '{"cmd":"retry","args":["--failed"]}' "$BASE/api/ctl")" 403 \
	"a cookie session needs its own CSRF token, not the bearer one"

# ---- dead letters and a hostile event for the browser ----
emit() { ctl --json emit "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
state() {
	ctl --json events "$1" | python3 -c '
import json, sys
ev = json.load(sys.stdin)
print([d["state"] for d in ev["deliveries"] if d["handler"] == sys.argv[1]][0])' "$2"
}
is_state() { [ "$(state "$1" "$2")" = "$3" ]; }
A=$(emit test.fail a.example)
B=$(emit test.fail b.example)
wait_for 20 is_state "$A" lua:fail.lua dead && wait_for 20 is_state "$B" lua:fail.lua dead
ok $? "two dead deliveries for the browser"
HOSTILE_SUBJECT='<b>bold</b>"&.example'
HOSTILE=$(emit test.hostile "$HOSTILE_SUBJECT" 'note=<img src=x onerror=window.__pwned=1>')
# the hook fixed: a retry now succeeds
printf '%s\n' 'ophook.on("test.fail", function(ev) end)' > "$H/fail.lua"
wait_for 20 grep -q 'fail.lua: reloaded' "$T/ophookd.log"
ok $? "the failing hook is fixed (reloaded)"

# ---- the browser ----
mkdir -p "$T/shots" "$T/profile"
BASE="$BASE" TOKEN="$TOKEN" SHOTS="$T/shots" PROFILE="$T/profile" CHROMIUM="$CHROMIUM" \
	DEAD_A="$A" DEAD_B="$B" HOSTILE="$HOSTILE" HOSTILE_SUBJECT="$HOSTILE_SUBJECT" \
	SCENARIO="STEP_PAUSE=0.3 sh '$top_srcdir/contrib/demo/scenario.sh' '$T/root' '$T/panel.db' >/dev/null" \
	timeout 300 node "$top_srcdir/tests/console/drive.js" > "$T/drive.out" 2>"$T/drive.err" &
DRIVE=$!
cleanup_pid "$DRIVE"
wait "$DRIVE"
while IFS= read -r line; do
	case $line in
	"ok - "*) ok 0 "browser: ${line#ok - }" ;;
	"not ok - "*) ok 1 "browser: ${line#not ok - }" ;;
	"#"*) echo "$line" ;;
	esac
done < "$T/drive.out"
grep -q '^ok - the token logs in' "$T/drive.out"
ok $? "the browser session ran" || diag "$(tail -n 5 "$T/drive.err")"

# what the browser did, seen through ophookctl
is "$(state "$A" lua:fail.lua)" done "ophookctl: the retried delivery is done"
is "$(state "$B" lua:fail.lua)" discarded "ophookctl: the other one is discarded"
ctl hooks disable ../ophookd.yaml > /dev/null 2>&1
is "$?" 2 "hooks disable refuses a name outside hooks_dir"
ctl hooks disable nosuch.lua > /dev/null 2>&1
is "$?" 1 "hooks disable of a file that is not there: exit 1"
[ -f "$H/fail.lua" ] && [ ! -e "$H/fail.lua.disabled" ]
ok $? "the browser's disable and enable left fail.lua in place"
n=$(ls "$T/shots"/*.png 2>/dev/null | wc -l)
[ "$n" -ge 10 ]
ok $? "screenshots of every page ($n)"
mkdir -p "$top_builddir/tests/console-screens"
cp "$T/shots"/*.png "$top_builddir/tests/console-screens/" 2>/dev/null

# ---- guessing the token: locked out after 10 wrong ones a minute ----
codes=
for i in 1 2 3 4 5 6 7 8 9 10; do
	codes="$codes $(code -X POST -d "token=guess$i" "$BASE/login")"
done
# (the test and the browser gave a few wrong tokens already this minute)
echo "$codes" | grep -Eq '^( 401)+( 429)*$'
ok $? "wrong tokens: 401 until the limit, then 429 ($codes)"
is "$(code -D "$T/429.h" -X POST -d 'token=guess11' "$BASE/login")" 429 \
	"past 10 wrong tokens a minute: 429"
grep -qi '^retry-after: [1-9][0-9]*' "$T/429.h"
ok $? "the 429 says when to retry (Retry-After)"
is "$(code -X POST --data-urlencode "token=$TOKEN" "$BASE/login")" 429 \
	"while locked out, even the right token is not checked"
is "$(code -H "Authorization: Bearer $TOKEN" "$BASE/api/session")" 429 \
	"bearer tokens are under the same limit"
is "$(code -H "Cookie: $COOKIE" "$BASE/api/ctl?cmd=status")" 200 \
	"an open session keeps working during the lockout"
is "$(grep -c 'token checks refused (429)' "$T/ophookd.log")" 1 \
	"the lockout is logged once"
n=$(grep -c 'refused (wrong token)' "$T/ophookd.log")
[ "$n" -ge 1 ] && [ "$n" -le 2 ]
ok $? "wrong tokens logged once a window, not one by one ($n lines for 12 wrong attempts)"

stop_ophookd

# ---- on a Unix socket, no token file: root and socket_group only ----
sed -i '/^console:/,$d' "$T/ophookd.yaml"
printf 'console:\n  listen: %s\n' "$T/console.sock" >> "$T/ophookd.yaml"
start_ophookd || exit 1
wait_for 10 test -S "$T/console.sock"
is "$(stat -c '%a %U' "$T/console.sock")" "600 root" "the console socket is 0600 root without socket_group"
ucode() { curl -s -o "$T/body" -w '%{http_code}' --unix-socket "$T/console.sock" "$@"; }
is "$(ucode "http://console/api/ctl?cmd=status")" 200 "root over the Unix socket, no token file: 200"
is "$(ucode -X POST -H 'Content-Type: application/json' -d '{"cmd":"retry","args":["--failed"]}' \
	"http://console/api/ctl")" 403 "over the Unix socket too, a POST needs the CSRF token"
UCSRF=$(curl -s --unix-socket "$T/console.sock" http://console/api/session |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf"])')
is "$(ucode -X POST -H 'Content-Type: application/json' -H "X-CSRF-Token: $UCSRF" \
	-d '{"cmd":"retry","args":["--failed"]}' "http://console/api/ctl")" 200 "root may act over the Unix socket"
stop_ophookd

# on the Unix socket with a token (Caddy's way): no lockout for guessers
# to cause, since only root and socket_group reach it
printf '  token_file: %s\n' "$T/token" >> "$T/ophookd.yaml"
start_ophookd || exit 1
wait_for 10 test -S "$T/console.sock"
codes=
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do
	codes="$codes $(ucode -H "Authorization: Bearer guess$i" "http://console/api/session")"
done
echo "$codes" | grep -Eq '^( 401){12}$'
ok $? "Unix socket: 12 wrong bearer tokens, all 401, no lockout ($codes)"
is "$(ucode -H "Authorization: Bearer $TOKEN" "http://console/api/ctl?cmd=status")" 200 \
	"Unix socket: the right token still opens it"
stop_ophookd
sed -i '/^  token_file:/d' "$T/ophookd.yaml"

# a socket_group member (nobody in nogroup): may look, not act, as on the
# control socket
if command -v setpriv >/dev/null && getent group nogroup >/dev/null; then
	sed -i 's/^socket: .*/&\nsocket_group: nogroup/' "$T/ophookd.yaml"
	chmod 711 "$T"
	start_ophookd || exit 1
	wait_for 10 test -S "$T/console.sock"
	is "$(stat -c '%a %U %G' "$T/console.sock")" "660 root nogroup" "with socket_group: 0660 root:socket_group"
	asnobody() { setpriv --reuid=65534 --regid="$(getent group nogroup | cut -d: -f3)" --clear-groups "$@"; }
	is "$(asnobody curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/console.sock" \
		"http://console/api/ctl?cmd=status")" 200 "a socket_group member may look"
	NCSRF=$(asnobody curl -s --unix-socket "$T/console.sock" http://console/api/session |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["csrf"])')
	is "$(asnobody curl -s -o /dev/null -w '%{http_code}' --unix-socket "$T/console.sock" -X POST \
		-H 'Content-Type: application/json' -H "X-CSRF-Token: $NCSRF" \
		-d '{"cmd":"retry","args":["--failed"]}' "http://console/api/ctl")" 403 \
		"a socket_group member may not act without the token"
	stop_ophookd
fi
[ ! -e "$T/console.sock" ]
ok $? "the console socket is removed at stop"
done_testing
