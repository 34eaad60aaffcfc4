#!/bin/sh
# An inline plugin that crashes the whole daemon on one event, in the
# middle of 300 events (emitted in one go): the fatal signal is logged at
# that moment (plugin, event), and restarted like systemd would, the
# daemon comes up with that plugin quarantined (no crash loop); every
# event reaches the log plugin.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
. "$top_srcdir/tests/reliability/lib.sh"
need jq
N=300

write_config
sed -i 's/^journal:/journal:\n  max_attempts: 3/' "$T/ophookd.yaml"
install_plugins log
cp "$top_builddir/tests/unit/.libs/testgood.so" "$T/plugins/"
start_ophookd || { ok 1 "ophookd starts"; row $N $N 0; exit 1; }

i=0
while [ $i -lt $N ]; do
	if [ $i = 150 ]; then
		echo "test.boom c$i.example crash=yes"
	else
		echo "test.ev c$i.example n=$i"
	fi
	i=$((i + 1))
done > "$T/emit.txt"
ctl emit - < "$T/emit.txt" >/dev/null

up_or_dead() { ! kill -0 "$OPHOOKD_PID" 2>/dev/null || ctl status >/dev/null 2>&1; }
starts=1
while [ $starts -le 8 ]; do
	wait_for 10 sh -c "! kill -0 $OPHOOKD_PID 2>/dev/null"
	kill -0 "$OPHOOKD_PID" 2>/dev/null && break
	wait "$OPHOOKD_PID" 2>/dev/null
	enable_plugins "$T/ophookd.yaml"
	"$OPHOOKD" -f -c "$T/ophookd.yaml" >>"$T/ophookd.log" 2>&1 &
	OPHOOKD_PID=$!
	cleanup_pid "$OPHOOKD_PID"
	starts=$((starts + 1))
	wait_for 20 up_or_dead
done
diag "daemon started $starts times"
ok "$([ $starts -eq 2 ] && kill -0 "$OPHOOKD_PID" 2>/dev/null && echo 0 || echo 1)" \
	"no crash loop: one crash, then it stays up"
_all() { [ "$(distinct_subjects test.ev c)" -ge $((N - 1)) ] &&
	[ "$(distinct_subjects test.boom c)" -ge 1 ]; }
wait_for 60 _all
ok $? "every event reached the log plugin"
grep -q 'fatal: plugin testgood: SIGABRT in on_event, event' "$T/ophookd.log"
ok $? "the crash was logged at that moment, naming the plugin and event"
ctl plugins list | grep -q 'testgood *quarantined'
ok $? "the crashing plugin is quarantined at the next start"
got=$(( $(distinct_subjects test.ev c) + $(distinct_subjects test.boom c) ))
total=$(( $(total_subjects test.ev c) + $(total_subjects test.boom c) ))
is "$got" $N "every event reached the log plugin"
stop_ophookd
row $N $((N - got)) $((total - got))
done_testing
