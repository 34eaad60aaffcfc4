#!/bin/sh
# The journal's disk full: state_dir on a small tmpfs (in a private mount
# namespace), filled up while files arrive.  The daemon keeps running and
# serving, says the journal fails (log and status), and once the tmpfs is
# grown (mount -o remount,size=) every file becomes exactly one event.
# Env: REL_FULL_N (files written while full, 2000).
if [ "${REL_IN_NS:-0}" != 1 ]; then
	if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null 2>&1 ||
	    ! unshare -m --propagation private true 2>/dev/null; then
		echo "1..0 # SKIP needs root and unshare -m"
		exit 0
	fi
	REL_IN_NS=1 exec unshare -m --propagation private "${SHELL:-/bin/sh}" "$0" "$@"
fi
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
. "$top_srcdir/tests/reliability/lib.sh"
need jq
N=${REL_FULL_N:-2000}

write_config
install_plugins log
D=$T/root/caddy/domains
mkdir -p "$D"
mount -t tmpfs -o size=3m tmpfs "$T/state" || { ok 1 "tmpfs mounted"; row "$N" "$N" 0; exit 1; }
cleanup_cmd "umount -l '$T/state'"
start_ophookd || { ok 1 "ophookd starts"; row "$N" "$N" 0; exit 1; }

for i in 1 2 3; do echo "w$i.example.net { respond 200 }" > "$D/w$i.example.net.conf"; done
_warm() { [ "$(distinct_subjects domain.added w)" -ge 3 ]; }
wait_for 20 _warm
ok $? "events are delivered before the disk fills"

# fill the tmpfs to the last byte
dd if=/dev/zero of="$T/state/filler" bs=4k >/dev/null 2>&1
diag "state_dir: $(df -k "$T/state" | awk 'NR == 2 { print $3 " kB used, " $4 " kB free" }')"
i=0
while [ $i -lt "$N" ]; do
	echo "f$i.example.net { reverse_proxy http://127.0.0.1:8080 }" \
		> "$D/f$i.example.net.conf"
	i=$((i + 1))
done
_said() { grep -q 'journal:.*kept in memory' "$T/ophookd.log"; }
wait_for 30 _said
ok $? "the daemon logs that the journal fails"
grep -m 1 'journal:.*kept in memory' "$T/ophookd.log" | sed 's/^/# log: /'
sleep 2
ok "$(kill -0 "$OPHOOKD_PID" 2>/dev/null && echo 0 || echo 1)" "ophookd still runs with the disk full"
st=$(ctl status 2>&1)
ok $? "it answers status with the disk full"
echo "$st" | grep '^journal:' | sed 's/^/# /'
echo "$st" | grep -q '^journal:.*[1-9][0-9]* errors'
ok $? "status counts journal errors"
full_got=$(distinct_subjects domain.added f)
diag "$full_got of $N delivered while full"

# space returns
mount -o remount,size=64m "$T/state"
_all() { [ "$(distinct_subjects domain.added f)" -ge "$N" ]; }
wait_for 120 _all
got=$(distinct_subjects domain.added f)
total=$(total_subjects domain.added f)
is "$got" "$N" "every file written while full delivered once space returned"
ok "$(ctl status | grep -q '^journal: *ok' && echo 0 || echo 1)" "status says the journal is ok again"
# and it goes on
echo "z.example.net { respond 200 }" > "$D/z.example.net.conf"
_z() { [ "$(distinct_subjects domain.added z)" -ge 1 ]; }
wait_for 20 _z
ok $? "a later event is delivered"
stop_ophookd
row "$N" $((N - got)) $((total - got))
done_testing
