#!/bin/sh
# Crash containment: a drop-in plugin runs in its own runner process
# (isolation: process by default); its segfaults and hangs kill only the
# runner, the delivery fails naming what happened, and after crash_limit
# crashes the plugin is quarantined until `plugins enable`.
. "$top_srcdir/tests/lib.sh"
need python3

write_config "  crashplug:
    crash_limit: 3
    crash_window: 10m
    settings:
      out: $T/crash.out"
sed -i 's/^journal:/journal:\n  max_attempts: 3/' "$T/ophookd.yaml"
printf 'dispatch:\n  timeout_ms: 3000\n' >>"$T/ophookd.yaml"
install_plugins log
cp "$top_builddir/tests/unit/.libs/crashplug.so" "$T/dropin/"

start_ophookd || exit 1
ctl plugins list | grep -q 'crashplug.*process'
ok $? "a drop-in plugin runs isolated by default"
runner_pid() { ctl --json plugins list | python3 -c '
import json, sys
print([p for p in json.load(sys.stdin) if p["name"] == "crashplug"][0].get("pid", ""))'; }
pid1=$(runner_pid)
ok "$([ -n "$pid1" ] && [ "$pid1" != "$OPHOOKD_PID" ] && kill -0 "$pid1" && echo 0 || echo 1)" "it has its own runner process ($pid1)"

ctl emit test.ok a.example >/dev/null
wait_for 10 grep -q 'a.example' "$T/crash.out"
ok $? "the isolated plugin delivers"
ctl emit test.segv b.example >/dev/null
ctl emit test.ok c.example >/dev/null
wait_for 10 grep -q '"subject":"c.example"' "$T/events.log"
ok $? "other handlers deliver while it crashes"
wait_for 10 grep -q 'c.example' "$T/crash.out"
ok $? "the plugin itself goes on with other subjects after a crash"
kill -0 "$OPHOOKD_PID"
ok $? "ophookd is still serving"
segv_error() { ctl --json events --subject b.example | python3 -c '
import json, sys
ev = json.load(sys.stdin)[0]
d = [d for d in ev["deliveries"] if d["handler"] == "plugin:crashplug"][0]
e = d.get("last_error") or ""
print("# last_error:", e)
sys.exit(0 if "SIGSEGV in on_event, event %d, attempt" % ev["id"] in e and "plugin crashplug" in e else 1)'; }
wait_for 10 segv_error
ok $? "the failure names the plugin, the signal and the event"
quarantined() { ctl --json plugins list | python3 -c '
import json, sys
p = [p for p in json.load(sys.stdin) if p["name"] == "crashplug"][0]
sys.exit(0 if p["state"] == "quarantined" else 1)'; }
wait_for 20 quarantined
ok $? "quarantined after crash_limit (3) crashes"
ctl plugins list | sed 's/^/# /'
wait_for 10 grep -q '"type":"plugin.quarantined"' "$T/events.log"
ok $? "a plugin.quarantined event"
ctl status | grep -qi 'quarantined'
ok $? "status shows the quarantine"
grep -q 'plugin crashplug: quarantined' "$T/ophookd.log"
ok $? "the log says so"
ctl emit test.ok d.example >/dev/null
wait_for 10 grep -q '"subject":"d.example"' "$T/events.log"
ok $? "the daemon serves the others meanwhile"
ctl plugins enable crashplug >/dev/null
ok $? "plugins enable"
ctl emit test.ok g.example >/dev/null
wait_for 10 grep -q 'g.example' "$T/crash.out"
ok $? "enable brings it back: it delivers again"

# a hang: killed at the timeout (3 s), others unaffected meanwhile
pid2=$(runner_pid)
ctl emit test.hang e.example >/dev/null
sleep 0.5
ctl emit test.ok f.example >/dev/null
wait_for 2 grep -q '"subject":"f.example"' "$T/events.log"
ok $? "another handler delivers while the plugin hangs"
hung_error() { ctl --json events --subject e.example | python3 -c '
import json, sys
ev = json.load(sys.stdin)[0]
d = [d for d in ev["deliveries"] if d["handler"] == "plugin:crashplug"][0]
e = d.get("last_error") or ""
print("# last_error:", e)
sys.exit(0 if "timed out" in e or "hung" in e else 1)'; }
wait_for 10 hung_error
ok $? "the hung delivery fails at the timeout"
wait_for 5 sh -c "! kill -0 $pid2 2>/dev/null"
ok $? "the hung runner was killed"
wait_for 10 grep -q 'f.example' "$T/crash.out"
ok $? "a new runner delivers the next event"
grep -q 'hung in on_event' "$T/ophookd.log"
ok $? "the log names the hang"
kill -0 "$OPHOOKD_PID"
ok $? "ophookd still serving"
stop_ophookd
sleep 0.3
pgrep -f "ophook-plugin-runner --fd 3 $T" >/dev/null
ok "$([ $? -ne 0 ] && echo 0 || echo 1)" "no runner left after stop"
done_testing
