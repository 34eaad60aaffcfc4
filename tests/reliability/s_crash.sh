#!/bin/sh
# A plugin that crashes the whole daemon on one event, in the middle of
# 300 events (emitted in one go): restarted like systemd would, the daemon
# stops crash-looping after max_attempts (3) crashes, that event goes dead
# for that plugin only, and every event reaches the log plugin and the
# crashing plugin's other deliveries are done.
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
	"$OPHOOKD" -f -c "$T/ophookd.yaml" >>"$T/ophookd.log" 2>&1 &
	OPHOOKD_PID=$!
	cleanup_pid "$OPHOOKD_PID"
	starts=$((starts + 1))
	wait_for 20 up_or_dead
done
diag "daemon started $starts times"
ok "$([ $starts -le 4 ] && kill -0 "$OPHOOKD_PID" 2>/dev/null && echo 0 || echo 1)" \
	"no crash loop: at most 3 crashes, then it stays up"
_all() { [ "$(distinct_subjects test.ev c)" -ge $((N - 1)) ] &&
	[ "$(distinct_subjects test.boom c)" -ge 1 ]; }
wait_for 60 _all
_settled() { ctl status | grep -q '^deliveries: *pending 0,'; }
wait_for 30 _settled
ok $? "no delivery left pending"
ctl --json events --subject c150.example | jq -r '.[0].deliveries[] | "\(.handler) \(.state)"' | sort > "$T/boom.st"
is "$(tr '\n' ' ' < "$T/boom.st")" "plugin:log done plugin:testgood dead " \
	"the crashing event: dead for the plugin, done for the log plugin"
good_done=$(ctl --json events --type test.ev --state done -n 1000 |
	jq '[.[] | select(any(.deliveries[]; .handler == "plugin:testgood" and .state == "done"))] | length')
is "$good_done" $((N - 1)) "every other event done for the crashing plugin"
got=$(( $(distinct_subjects test.ev c) + $(distinct_subjects test.boom c) ))
total=$(( $(total_subjects test.ev c) + $(total_subjects test.boom c) ))
is "$got" $N "every event reached the log plugin"
stop_ophookd
row $N $((N - got)) $((total - got))
done_testing
