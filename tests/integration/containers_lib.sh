# Podman for the container tests and bench/containers (sourced after
# tests/lib.sh, or with $T and cleanup_cmd/cleanup_pid defined): each
# "user" is a rootful `podman system service` of its own (own --root,
# --runroot, --tmpdir, containers.conf, events file, vfs storage so nothing
# stays mounted), all under $T, its socket chowned to the user's uid.
# Offline: the image is busybox-static imported as localhost/bb.
#   pm_image                  build $T/bb.tar
#   pm_conf NAME              write NAME's containers.conf
#   pm_service NAME UID SOCK  start NAME's API on SOCK (created, chowned)
#   pm NAME ARGS...           podman --remote against NAME's socket
#   pm_local NAME ARGS...     podman on NAME's storage, no service needed
#   pm_service_stop NAME      stop NAME's API (containers keep running)
# Why not rootless per user: rootless Podman needs newuidmap/newgidmap
# (uidmap) and /etc/subuid ranges for each test uid, plus a systemd user
# session or cgroup delegation for --memory; the VMs the tests run on have
# none of these, and adding users to /etc/subuid would touch the host.

PM_BUSYBOX=${PM_BUSYBOX:-/bin/busybox}

pm_dir() { echo "$T/pm/$1"; }

# Podman 4.3 (as root) keeps its blob-info cache in /var/lib/containers
# whatever --root says: podman runs in a mount namespace of its own with a
# tmpfs on /var/lib, so nothing is written outside $T
pm_ns() {
	unshare -m --propagation private sh -c \
		'mount -t tmpfs ophook-test /var/lib && exec "$@"' sh "$@"
}

pm_local() {
	_n=$1; shift
	CONTAINERS_CONF="$T/pm/$_n/containers.conf" pm_ns podman \
		--root "$T/pm/$_n/root" --runroot "$T/pm/$_n/run" \
		--tmpdir "$T/pm/$_n/tmp" --storage-driver vfs \
		--cgroup-manager cgroupfs --runtime runc "$@"
}

pm() {
	_n=$1; shift
	podman --remote --url "unix://$(cat "$T/pm/$_n/sock")" "$@"
}

pm_image() {
	rm -rf "$T/rootfs"
	mkdir -p "$T/rootfs/bin" "$T/rootfs/tmp" "$T/rootfs/proc" \
		"$T/rootfs/sys" "$T/rootfs/dev" "$T/rootfs/etc"
	cp "$PM_BUSYBOX" "$T/rootfs/bin/busybox" || return 1
	for a in sh sleep true false cat head tail dd echo; do
		ln -s busybox "$T/rootfs/bin/$a"
	done
	tar -C "$T/rootfs" -cf "$T/bb.tar" . || return 1
}

# pm_conf NAME: NAME's containers.conf (runc, cgroupfs, no network, its
# events in a file under $T)
pm_conf() {
	mkdir -p "$T/pm/$1"
	cat > "$T/pm/$1/containers.conf" <<CONF
[containers]
default_ulimits = []
netns = "none"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$T/pm/$1/events.log"
lock_type = "file"
CONF
}

pm_service() {
	_n=$1 _uid=$2 _sock=$3
	_d="$T/pm/$_n"
	mkdir -p "$_d/root" "$_d/run" "$_d/tmp" "$(dirname "$_sock")"
	echo "$_sock" > "$_d/sock"
	pm_conf "$_n"
	if [ ! -f "$_d/imported" ]; then
		pm_local "$_n" import "$T/bb.tar" localhost/bb >/dev/null 2>&1 ||
			return 1
		touch "$_d/imported"
		cleanup_cmd "pm_local $_n rm -af -t 0"
	fi
	# exec: $! is podman itself, so the cleanup's kill reaches it (a
	# shell function in the background left the service running)
	(CONTAINERS_CONF="$_d/containers.conf" exec unshare -m \
		--propagation private sh -c \
		'mount -t tmpfs ophook-test /var/lib && exec "$@"' sh podman \
		--root "$_d/root" --runroot "$_d/run" --tmpdir "$_d/tmp" \
		--storage-driver vfs --cgroup-manager cgroupfs --runtime runc \
		system service --time=0 "unix://$_sock") \
		>>"$_d/service.log" 2>&1 &
	echo $! > "$_d/pid"
	cleanup_pid "$(cat "$_d/pid")"
	wait_for 20 test -S "$_sock" || return 1
	chown "$_uid" "$_sock" "$(dirname "$_sock")"
	wait_for 20 pm "$_n" version
}

pm_service_stop() {
	_p=$(cat "$T/pm/$1/pid")
	kill -TERM "$_p" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$_p" 2>/dev/null || break; sleep 0.1; done
	rm -f "$(cat "$T/pm/$1/sock")"
}
