#!/bin/sh
# `hooks test` and `hooks lint` run on a small pool of their own, never on
# libuv's (the plugins' deliveries): tests stuck in a C function (a
# pathological string.find, which the Lua deadline hook cannot interrupt)
# neither stop the log plugin's deliveries nor SIGTERM; past the pool's size
# a request is answered "busy" at once, and a stuck one is answered
# "abandoned" after hooks.timeout_ms plus a grace.
. "$top_srcdir/tests/lib.sh"

[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/log/.libs/log.so" ] || skip_all "log plugin not built"

write_config
# a libuv pool of 4: the old code gave all of it to four stuck tests
printf 'hooks:\n  timeout_ms: 1000\ndispatch:\n  threads: 4\n' >> "$T/ophookd.yaml"
install_plugins log
# string.find with ".-" six times over 300000 characters: years, in C
printf '%s\n' \
	'ophook.on("domain.added", function(ev)' \
	'  local s = string.rep("a", 300000)' \
	'  return s:find(".-.-.-.-.-.-b")' \
	'end)' > "$T/stuck.lua"

start_ophookd || exit 1
ctl emit domain.added before.com domain=before.com >/dev/null
wait_for 10 grep -q "before.com" "$T/events.log"
ok $? "the log plugin gets events"

# two run (and stick), four wait in the queue
for i in 1 2 3 4 5 6; do
	( timeout 60 "$OPHOOKCTL" -s "$T/ophookd.sock" hooks test "$T/stuck.lua" \
		--event domain.added >"$T/out.$i" 2>&1; echo $? >"$T/rc.$i" ) &
	cleanup_pid $!
done
sleep 1
t0=$(date +%s)
out=$(timeout 10 "$OPHOOKCTL" -s "$T/ophookd.sock" hooks test "$T/stuck.lua" \
	--event domain.added 2>&1)
rc=$?
is "$rc" 2 "a test past the pool's size exits 2"
ok "$(echo "$out" | grep -q 'busy: 6 hook tests already running, try again'; echo $?)" \
	"and says busy at once"
out=$(timeout 10 "$OPHOOKCTL" -s "$T/ophookd.sock" hooks lint 2>&1)
ok "$(echo "$out" | grep -q 'busy:'; echo $?)" "a lint past it is busy too"
ok "$([ $(( $(date +%s) - t0 )) -le 3 ]; echo $?)" "both answered without waiting"

ctl emit domain.added during.com domain=during.com >/dev/null
wait_for 5 grep -q "during.com" "$T/events.log"
ok $? "the log plugin still gets events within seconds"

all_answered() {
	for i in 1 2 3 4 5 6; do [ -s "$T/rc.$i" ] || return 1; done
}
wait_for 20 all_answered
ok $? "every stuck or waiting test is answered"
n=$(cat "$T"/out.* | grep -c 'abandoned')
is "$n" 6 "all six abandoned"
n=$(cat "$T"/out.* | grep -c "hooks test $T/stuck.lua: still running after 3000 ms (stuck in a C function?); abandoned")
is "$n" 2 "the two running ones say they are stuck"
ok "$(all_answered && ! cat "$T"/rc.* | grep -qv '^1$'; echo $?)" \
	"with exit status 1"
ok "$(grep -q 'still running after 3000 ms' "$T/ophookd.log"; echo $?)" \
	"the daemon logs it"

ctl emit domain.added after.com domain=after.com >/dev/null
wait_for 5 grep -q "after.com" "$T/events.log"
ok $? "the log plugin still gets events while two threads stay stuck"

t0=$(date +%s)
kill -TERM "$OPHOOKD_PID"
wait_for 15 sh -c "! kill -0 $OPHOOKD_PID"
ok $? "SIGTERM stops ophookd within 15 s (took $(( $(date +%s) - t0 )) s)"
done_testing
