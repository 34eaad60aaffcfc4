#!/bin/sh
# Quota alerts (alerts.enabled) over a real quota file read by the real
# repquota: an ext4 image in $T, loop-mounted with usrquota inside a
# private mount namespace (gone with the test), limits set with setquota,
# usage counted by quotacheck from real files owned by `nobody`.  This
# kernel may lack the quota formats (CONFIG_QFMT_V2): then quotaon fails
# and nothing is enforced or counted by the kernel, so the test recounts
# with quotacheck after each write; repquota reads the same quota file
# either way.  Levels 90 and 100, margin 5: each crossing once, flapping
# inside the margin gives nothing, recovery once, nothing repeated after
# a restart; limits removed (live, or while ophookd is down) resolve the
# open alert as unlisted.
if [ -z "${ALERTS_QUOTA_NS:-}" ]; then
	if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null 2>&1 &&
	   unshare -m --propagation private true 2>/dev/null; then
		ALERTS_QUOTA_NS=1 exec unshare -m --propagation private \
			sh "$0" "$@"
	fi
fi
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need_root
need jq repquota setquota quotacheck mkfs.ext4 mount
[ -n "${ALERTS_QUOTA_NS:-}" ] || skip_all "no private mount namespace"
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"

M=$T/mnt
mkdir -p "$M"
truncate -s 64M "$T/fs.img"
mkfs.ext4 -q -F -b 1024 "$T/fs.img" >/dev/null 2>&1 ||
	skip_all "mkfs.ext4 failed"
mount -o loop,usrquota "$T/fs.img" "$M" 2>/dev/null ||
	skip_all "cannot loop-mount an ext4 image with usrquota here"
cleanup_cmd "umount -l '$M'"
quotacheck -cu "$M" >/dev/null 2>&1 || skip_all "quotacheck -cu failed"
quotaon -u "$M" >/dev/null 2>&1 && KQUOTA=1 || KQUOTA=
[ -n "$KQUOTA" ] && diag "kernel quota on" ||
	diag "kernel without the quota format: usage recounted by quotacheck"
# 1000 KiB soft, 2000 KiB hard for nobody
setquota -u nobody 1000 2000 0 0 "$M" || skip_all "setquota failed"
mkdir "$M/nobody" && chown nobody "$M/nobody"
# a second filesystem where nobody uses 30%: one alert follows the worst
# of the two (repquota lists a row per filesystem)
M2=$T/mnt2
mkdir -p "$M2"
truncate -s 16M "$T/fs2.img"
mkfs.ext4 -q -F -b 1024 "$T/fs2.img" >/dev/null 2>&1 &&
	mount -o loop,usrquota "$T/fs2.img" "$M2" 2>/dev/null ||
	skip_all "second loop mount failed"
cleanup_cmd "umount -l '$M2'"
quotacheck -cu "$M2" >/dev/null 2>&1
[ -n "$KQUOTA" ] && quotaon -u "$M2" >/dev/null 2>&1
setquota -u nobody 1000 2000 0 0 "$M2"
dd if=/dev/zero of="$M2/f" bs=1024 count=300 2>/dev/null
chown nobody "$M2/f"
[ -n "$KQUOTA" ] || quotacheck -u "$M2" >/dev/null 2>&1

# usage KIB: nobody's files total about KIB KiB, counted
usage() {
	rm -f "$M/nobody/f"
	dd if=/dev/zero of="$M/nobody/f" bs=1024 count="$1" 2>/dev/null
	chown nobody "$M/nobody/f"
	sync
	[ -n "$KQUOTA" ] || quotacheck -u "$M" >/dev/null 2>&1
	diag "usage: $(repquota -u -O csv "$M" "$M2" | grep '^nobody,' | tr '\n' ' ')"
}
runs() { ctl --json status | jq -r '.alerts.quota_runs // 0'; }
# wait for two more repquota runs than now (the usage was read)
settle() {
	_r=$(runs)
	wait_for 20 sh -c "[ \$('$OPHOOKCTL' -s '$T/ophookd.sock' --json status | jq -r '.alerts.quota_runs // 0') -ge $((_r + 2)) ]"
}

watch_config "alerts:
  enabled: true
  quota_interval_s: 1
  quota_levels: [\"90\", \"100\"]
  quota_margin: 5
  quota_command: [\"repquota\", \"-u\", \"-O\", \"csv\", \"$M\", \"$M2\"]"
install_plugins log
usage 500
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
settle
expect "50%: nothing"

usage 920; settle
expect "92%: quota.exceeded level 90" "quota.exceeded user:nobody"
is "$(field_of quota.exceeded level)" 90 "level 90"
is "$(field_of quota.exceeded limit)" soft "measured against the soft limit"
usage 880; settle
usage 930; settle
usage 880; settle
expect "flapping 88% / 93% around 90 (margin 5): nothing"

usage 1010; settle
expect "101%: quota.exceeded level 100" "quota.exceeded user:nobody"
is "$(field_of quota.exceeded level)" 100 "level 100"
usage 970; settle
usage 1010; settle
expect "flapping 97% / 101% around 100: nothing"
usage 940; settle
expect "94%: below 100 - 5, still over 90: nothing (the 90 alert is open)"

stop_ophookd
start_ophookd || exit 1
settle
expect "restart at 94%: nothing repeated"

usage 500; settle
expect "50%: quota.recovered once" "quota.recovered user:nobody"
is "$(field_of quota.recovered level)" 90 "recovered from level 90"
usage 880; settle
expect "88% after recovery: nothing (under 90)"
usage 920; settle
expect "92% again: a new quota.exceeded" "quota.exceeded user:nobody"

# the limits removed (userdel, or the plan): repquota no longer lists the
# user with a limit, and the open alert is resolved as unlisted, once
drop_limits() {
	for m in "$@"; do
		setquota -u nobody 0 0 0 0 "$m"
		rm -f "$m/nobody/f" "$m/f"
		[ -n "$KQUOTA" ] || quotacheck -u "$m" >/dev/null 2>&1
	done
}
drop_limits "$M" "$M2"; settle
expect "limits removed: quota.recovered, unlisted" "quota.recovered user:nobody"
is "$(field_of quota.recovered reason)" unlisted "reason unlisted"
is "$(jq -r 'select(.type == "quota.recovered") | has("percent")' "$T/events.log" | tail -n 1)" false \
	"no usage fields when the usage is unknown"
settle
expect "nothing more"

# the same while ophookd is down: resolved by the first run after start
setquota -u nobody 1000 2000 0 0 "$M"
usage 920; settle
expect "92%: quota.exceeded" "quota.exceeded user:nobody"
stop_ophookd
drop_limits "$M"
start_ophookd || exit 1
settle
expect "removed while down: quota.recovered at the first run" "quota.recovered user:nobody"
is "$(jq -c '.quota' "$T/state/alerts.json")" "{}" "alerts.json forgets the user"
stop_ophookd
start_ophookd || exit 1
settle
expect "restart: nothing repeated"
stop_ophookd
done_testing
