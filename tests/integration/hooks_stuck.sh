#!/bin/sh
# The hard backstop for Lua hooks: a call stuck inside one C function (a
# pathological pattern match, which the instruction-count hook cannot
# interrupt) disables that file after its deadline plus a grace period; the
# other hooks go on, pre checks on the file answer deny, and a new version
# of the file runs on a fresh thread.
. "$top_srcdir/tests/lib.sh"

[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"

H="$T/hooks"
write_config
printf 'hooks:\n  timeout_ms: 500\n' >> "$T/ophookd.yaml"
if [ -f "$PLUGIN_BUILD_DIRS/log/.libs/log.so" ]; then
	install_plugins log
fi
printf '%s\n' \
	'ophook.on("domain.added", function(ev) ophook.log.info("good saw", ev.domain) end)' \
	> "$H/good.lua"
printf '%s\n' \
	'ophook.on("domain.added", function(ev)' \
	'  local s = string.rep("a", 300000)' \
	'  return s:find(".-.-.-.-.-.-b")' \
	'end)' \
	'ophook.pre("domain.add", function(req) end)' \
	> "$H/stuck.lua"
chmod 0644 "$H/good.lua" "$H/stuck.lua"

start_ophookd || exit 1
ctl emit domain.added one.com domain=one.com >/dev/null
wait_for 10 grep -q "good saw one.com" "$T/ophookd.log"
ok $? "the good hook runs beside the stuck one"
wait_for 40 grep -q "stuck.lua: disabled: a call has been running for" "$T/ophookd.log"
ok $? "the stuck file is disabled with a clear message"
ctl emit domain.added two.com domain=two.com >/dev/null
wait_for 10 grep -q "good saw two.com" "$T/ophookd.log"
ok $? "the good hook still sees later events"
out=$(ctl check domain.add domain=shop.com 2>&1)
is "$?" 1 "a pre check on a disabled file denies"
ok "$(echo "$out" | grep -q 'disabled'; echo $?)" "and says why"
ok "$(ctl hooks list 2>&1 | grep 'stuck.lua' | grep -q disabled; echo $?)" \
	"hooks list shows the file disabled"

printf '%s\n' \
	'ophook.on("domain.added", function(ev) ophook.log.info("fixed saw", ev.domain) end)' \
	> "$H/stuck.lua"
wait_for 20 grep -q "stuck.lua: changed: loading it on a new thread" "$T/ophookd.log"
ok $? "a new version is loaded on a fresh thread"
wait_for 20 grep -q "stuck.lua: loaded" "$T/ophookd.log"
ctl emit domain.added three.com domain=three.com >/dev/null
wait_for 10 grep -q "fixed saw three.com" "$T/ophookd.log"
ok $? "the fixed file runs again"
ok "$(kill -0 "$OPHOOKD_PID"; echo $?)" "the daemon is still running"
stop_ophookd
done_testing
