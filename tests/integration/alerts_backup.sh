#!/bin/sh
# Backup alerts (alerts.enabled) from real Podman: runs of a container
# named `backup` (OpenPanel's per-user offen/docker-volume-backup service;
# here busybox exiting with a chosen code) on a user's API socket.  A
# failure gives backup.failed once; more failures while it is open give
# nothing, also after a restart of ophookd; a success resolves it
# (backup.succeeded resolved true); a stop (143/137) is no result; a
# container of another name is no backup.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/containers_lib.sh"

need_root
need podman runc python3
[ -x "$PM_BUSYBOX" ] && "$PM_BUSYBOX" --list >/dev/null 2>&1 ||
	skip_all "busybox-static not installed"
file -L "$PM_BUSYBOX" 2>/dev/null | grep -q 'dynamically' &&
	skip_all "$PM_BUSYBOX is not static (install busybox-static)"
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"

U1=2001
mkdir -p "$T/home/alice"
chown "$U1" "$T/home/alice"
pm_image || skip_all "cannot build the busybox image"
pm_service u1 "$U1" "$T/u1.sock" ||
	skip_all "podman system service does not start here"

write_config
install_plugins log
cat >> "$T/ophookd.yaml" <<YAML
containers:
  enabled: true
  root_socket: ~
  run_user_dir: ~
  home_dir: $T/home
  kmsg: ~
  reconnect_ms: 200
  peer_check: false
  sockets:
    - { path: $T/u1.sock, uid: $U1 }
alerts:
  enabled: true
  quota_interval_s: 0
YAML
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
wait_for 20 sh -c "'$OPHOOKCTL' -s '$T/ophookd.sock' --json status | grep -q '\"connected\": *true'"

# run NAME CODE: a container NAME that exits with CODE, its death seen
DIED=0
run() {
	pm u1 rm -f "$1" >/dev/null 2>&1
	pm u1 run --name "$1" localhost/bb sh -c "exit $2" >/dev/null 2>&1
	DIED=$((DIED + 1))
	wait_for 20 sh -c "[ \$(grep -c '\"container.died\"' '$T/events.log') -ge $DIED ]" ||
		diag "container.died of $1 ($2) not seen"
	sleep 0.5 # room for an alert that should not come
}

run backup 0
is "$(log_events backup.succeeded user=alice resolved=false)" 1 \
	"a run exiting 0: backup.succeeded (resolves nothing)"
run backup 1
is "$(log_events backup.failed user=alice exit_code=1)" 1 \
	"a run exiting 1: backup.failed"
run backup 2
is "$(log_events backup.failed)" 1 "a second failure while open: nothing more"
run nginx 1
is "$(log_events backup.failed)" 1 "another container dying: no backup alert"
stop_ophookd
start_ophookd || exit 1
wait_for 20 sh -c "'$OPHOOKCTL' -s '$T/ophookd.sock' --json status | grep -q '\"connected\": *true'"
DIED=$(grep -c '"container.died"' "$T/events.log")
run backup 3
is "$(log_events backup.failed)" 1 "after a restart, still failing: nothing more"
pm u1 rm -f backup >/dev/null 2>&1
pm u1 run -d --name backup localhost/bb sleep 300 >/dev/null 2>&1
pm u1 stop -t 0 backup >/dev/null 2>&1
DIED=$((DIED + 1))
wait_for 20 sh -c "[ \$(grep -c '\"container.died\"' '$T/events.log') -ge $DIED ]"
sleep 0.5
is "$(log_events backup.succeeded)" 1 "a stop (137/143) is no result"
is "$(log_events backup.failed)" 1 "nor a failure"
run backup 0
is "$(log_events backup.succeeded user=alice resolved=true failed_exit_code=1)" 1 \
	"a success after the failures: backup.succeeded resolved true"
run backup 4
is "$(log_events backup.failed)" 2 "a new failure after the success: backup.failed"
stop_ophookd
done_testing
