#!/bin/sh
# Dead letters (issue 19): retry one event of one handler, retry all of a
# handler's, discard (a state of its own, kept across a restart), and the
# deliveries of a handler that no longer exists (a removed hook file).
. "$top_srcdir/tests/lib.sh"
need python3

[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"

H="$T/hooks"
write_config
sed -i 's/^journal:/journal:\n  max_attempts: 2/' "$T/ophookd.yaml"
install_plugins log
printf '%s\n' 'local n = 0' \
	'ophook.on("test.thing", function(ev) n = n + 1; error("boom " .. ev.subject .. " #" .. n) end)' \
	> "$H/fail.lua"
printf '%s\n' 'ophook.on("test.gone", function(ev) error("gone") end)' > "$H/gone.lua"
printf 'this is not Lua\n' > "$H/broken.lua"
mkdir -p "$H/test.other.d"
printf '#!/bin/sh\nexit 0\n' > "$H/test.other.d/loose"
chmod 0644 "$H/fail.lua" "$H/gone.lua" "$H/broken.lua"
chmod 0757 "$H/test.other.d/loose"
start_ophookd || exit 1

# handlers in error: a hook that fails to load, an exec file refused
ctl status > "$T/status.txt"
grep -q '^in error: *2 handlers:$' "$T/status.txt"
ok $? "status: two handlers in error"
grep -q '^  lua:broken.lua (error): ' "$T/status.txt"
ok $? "status: the Lua file that failed to load, with its error"
grep -q '^  exec:test.other.d/loose (refused): .*writable' "$T/status.txt" ||
	{ diag "$(cat "$T/status.txt")"; false; }
ok $? "status: the exec file refused, with the reason"

emit() { ctl --json emit "$@" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
# state ID HANDLER: the state of that delivery
state() {
	ctl --json events "$1" | python3 -c '
import json, sys
ev = json.load(sys.stdin)
print([d["state"] for d in ev["deliveries"] if d["handler"] == sys.argv[1]][0])' "$2"
}
is_state() { [ "$(state "$1" "$2")" = "$3" ]; }

A=$(emit test.thing a.example)
B=$(emit test.thing b.example)
C=$(emit test.thing c.example)
for id in $A $B $C; do
	wait_for 20 is_state "$id" lua:fail.lua dead
	ok $? "event $id: the failing hook's delivery is dead"
done
is "$(state "$A" plugin:log)" done "the log plugin's delivery of the same event is done"
# log ID HANDLER: "attempt:error" of each attempt kept, oldest first
log() {
	ctl --json events "$1" | python3 -c '
import json, sys
ev = json.load(sys.stdin)
d = [d for d in ev["deliveries"] if d["handler"] == sys.argv[1]][0]
print(" ".join("%d:%s" % (a["attempt"], (a["error"] or "ok").split("\n")[0].split(": ")[-1]) for a in d["attempts_log"]))' "$2"
}
is "$(log "$A" lua:fail.lua)" "1:boom a.example #1 2:boom a.example #2" \
	"the history keeps both attempts with their own errors"
is "$(log "$A" plugin:log)" "1:ok" "and the log plugin's one attempt"
ctl events "$A" | grep -q '^    attempt 2 .* boom a.example #2$'
ok $? "events ID shows one line per attempt under its delivery"

# the hook fixed: a new version of the file, same handler
printf '%s\n' 'ophook.on("test.thing", function(ev) end)' > "$H/fail.lua"
wait_for 20 grep -q 'fail.lua: reloaded' "$T/ophookd.log"
sleep 0.3

out=$(ctl retry "$A" --handler lua:fail.lua); rc=$?
is "$rc" 0 "retry ID --handler H exits 0"
is "$out" "requeued 1 deliveries" "retry ID --handler H says how many"
wait_for 20 is_state "$A" lua:fail.lua done
ok $? "the retried delivery is done"
is "$(log "$A" lua:fail.lua)" "1:boom a.example #1 2:boom a.example #2 1:ok" \
	"retry keeps the old attempts and errors; the new round counts from 1"
is "$(state "$B" lua:fail.lua)" dead "the others stay dead"
out=$(ctl retry "$A" --handler plugin:log)
is "$out" "requeued 0 deliveries" "a done delivery is not requeued"

out=$(ctl discard "$C" --handler lua:fail.lua); rc=$?
is "$rc" 0 "discard ID --handler H exits 0"
is "$out" "discarded 1 deliveries of lua:fail.lua" "discard says how many"
is "$(state "$C" lua:fail.lua)" discarded "the delivery is discarded, not deleted"

out=$(ctl --json retry --handler lua:fail.lua)
is "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requeued"])')" 1 \
	"retry --handler H requeues its dead deliveries, not the discarded one"
wait_for 20 is_state "$B" lua:fail.lua done
ok $? "retry --handler H: the delivery is done"
is "$(state "$C" lua:fail.lua)" discarded "a discarded delivery is never retried"
ctl retry --handler plugin:nosuch >/dev/null 2>&1
is $? 1 "retry --handler of a handler not loaded exits 1"
ctl retry >/dev/null 2>&1
is $? 2 "retry without arguments is a usage error"
ctl discard "$C" >/dev/null 2>&1
is $? 2 "discard without --handler is a usage error"

ids=$(ctl --json events --state discarded | python3 -c 'import json,sys; print(" ".join(str(e["id"]) for e in json.load(sys.stdin)))')
is "$ids" "$C" "events --state discarded lists it"
ctl status | grep -q DISCARDED
ok $? "status has a DISCARDED column"

# an orphan: a hook file removed while its delivery is dead
D=$(emit test.gone d.example)
wait_for 20 is_state "$D" lua:gone.lua dead
ok $? "the gone hook's delivery is dead"
rm -f "$H/gone.lua"
wait_for 20 grep -q "gone.lua: removed" "$T/ophookd.log"
ok $? "the hook file is removed"
sleep 0.3
ctl status | grep -q '^orphaned: *1 deliveries of 1 handler that no longer exist: lua:gone.lua'
ok $? "status: the orphaned deliveries and their handler"
ctl --json events "$D" | python3 -c '
import json, sys
ev = json.load(sys.stdin)
sys.exit([d.get("live") for d in ev["deliveries"] if d["handler"] == "lua:gone.lua"] != ["orphaned"])'
ok $? "events: the orphan's delivery is live orphaned"
out=$(ctl retry --failed); rc=$?
is "$rc" 0 "retry --failed exits 0"
case "$out" in
*"skipped 1 of handlers that no longer exist: lua:gone.lua"*) ok 0 "retry --failed reports the orphan as skipped" ;;
*) ok 1 "retry --failed reports the orphan as skipped"; diag "$out" ;;
esac
out=$(ctl discard --handler lua:gone.lua)
is "$out" "discarded 1 deliveries of lua:gone.lua" "discard --handler H of a handler that no longer exists"
is "$(state "$D" lua:gone.lua)" discarded "the orphan's delivery is discarded"
ctl status | grep -q '^orphaned'
ok "$([ $? -ne 0 ] && echo 0 || echo 1)" "status: no orphaned line once discarded"
out=$(ctl discard --handler lua:fail.lua 2>&1)
is "$?" 2 "discard --handler of a loaded handler needs --dead or an ID"
out=$(ctl discard --handler lua:fail.lua --dead)
is "$out" "discarded 0 deliveries of lua:fail.lua" "discard --handler H --dead: none left"

# the discarded state survives a restart, and shows in the metrics
stop_ophookd
start_ophookd || exit 1
is "$(state "$C" lua:fail.lua)" discarded "after a restart the delivery is still discarded"
ctl --json metrics | grep -q 'ophook_journal_deliveries{handler=\\"lua:fail.lua\\",state=\\"discarded\\"} 1'
ok $? "metrics: the discarded gauge"
stop_ophookd
done_testing
