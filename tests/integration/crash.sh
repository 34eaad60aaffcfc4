#!/bin/sh
# An inline plugin that crashes the whole daemon on one event: the fatal
# signal is logged at that moment (plugin, event), the plugin is
# quarantined at the next start (no crash loop), and every other event
# and handler goes on.
. "$top_srcdir/tests/lib.sh"
need python3

write_config
sed -i 's/^journal:/journal:\n  max_attempts: 3/' "$T/ophookd.yaml"
install_plugins log
cp "$top_builddir/tests/unit/.libs/testgood.so" "$T/plugins/"

start_ophookd || exit 1
ctl emit test.before a.example >/dev/null
ctl emit test.boom b.example crash=yes >/dev/null
# the daemon dies on the boom event; restart it like systemd would, until
# it stays up
up_or_dead() { ! kill -0 "$OPHOOKD_PID" 2>/dev/null || ctl status >/dev/null 2>&1; }
starts=1
while [ $starts -le 6 ]; do
	# wait for the crash (or not)
	wait_for 10 sh -c "! kill -0 $OPHOOKD_PID 2>/dev/null"
	if kill -0 "$OPHOOKD_PID" 2>/dev/null; then
		break
	fi
	wait "$OPHOOKD_PID" 2>/dev/null
	enable_plugins "$T/ophookd.yaml"
	"$OPHOOKD" -f -c "$T/ophookd.yaml" >>"$T/ophookd.log" 2>&1 &
	OPHOOKD_PID=$!
	cleanup_pid "$OPHOOKD_PID"
	starts=$((starts + 1))
	wait_for 20 up_or_dead
done
diag "daemon started $starts times"
ok "$([ $starts -eq 2 ] && kill -0 "$OPHOOKD_PID" 2>/dev/null && echo 0 || echo 1)" "one crash, then it stays up: the plugin is quarantined at the next start"
ctl status >/dev/null
ok $? "the daemon is serving"
grep -q 'fatal: plugin testgood: SIGABRT in on_event, event [0-9]*, attempt 1' "$T/ophookd.log"
ok $? "the crash was logged at that moment, naming the plugin, signal and event"
ctl plugins list | grep -q 'testgood *quarantined'
ok $? "plugins list shows it quarantined"
ctl plugins list | sed 's/^/# /'
done_log() { ctl --json events --subject b.example | python3 -c '
import json, sys
ev = json.load(sys.stdin)[0]
st = {d["handler"]: d["state"] for d in ev["deliveries"]}
sys.exit(0 if st.get("plugin:log") == "done" else 1)'; }
wait_for 20 done_log
ok $? "the boom event is done for the log plugin"
wait_for 10 grep -q '"type":"plugin.quarantined"' "$T/events.log"
ok $? "a plugin.quarantined event at the next start"
ctl emit test.after c.example >/dev/null
wait_for 10 grep -q '"subject":"c.example"' "$T/events.log"
ok $? "events after it are delivered"
grep -q '"subject":"a.example"' "$T/events.log"
ok $? "the event before it was delivered"

# a plugin that overflows its stack: the handler runs on a stack of its
# own, so the crash is still named and the plugin quarantined (a fresh
# state dir: the boom event would be retried first otherwise)
stop_ophookd
rm -rf "$T/state" && mkdir -p "$T/state"
start_ophookd
ok $? "started again on a fresh state dir"
ctl emit test.deep d.example overflow=yes >/dev/null
wait_for 20 sh -c "! kill -0 $OPHOOKD_PID 2>/dev/null"
ok $? "the stack overflow takes the daemon down"
wait "$OPHOOKD_PID" 2>/dev/null
grep -q 'fatal: plugin testgood: SIGSEGV in on_event, event [0-9]*, attempt 1' "$T/ophookd.log"
ok $? "the overflow was logged at that moment, naming the plugin and the event"
"$OPHOOKD" -f -c "$T/ophookd.yaml" >>"$T/ophookd.log" 2>&1 &
OPHOOKD_PID=$!
cleanup_pid "$OPHOOKD_PID"
wait_for 20 ctl status
ok $? "restarted, it stays up"
ctl plugins list | grep -q 'testgood *quarantined'
ok $? "the plugin is quarantined again"
stop_ophookd
done_testing
