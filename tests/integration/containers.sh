#!/bin/sh
# Container events from real Podman (issue 18): two "users" on two API
# sockets (alice's found under run_user_dir, bob's configured), containers
# of the same name under each, every event attributed to its user: a
# container that exits 3, one OOM-killed, one whose health check fails, one
# restarted in a loop, one stopped right after its user's suspension.
# alice also has a Docker socket (OpenPanel 1.x) served by a fake Docker
# API (python3: GET /events?since=, the lines of a file, kept open) that
# streams kill/die/stop, a health status and hostile lines.
# The sample hook hooks/notify-containers.lua posts the OOM and the loop to
# a webhook (python3 on loopback).  Then ophookd is killed (-9) while containers die, and alice's API service
# is stopped and started again: every event exactly once (checked against
# Podman's own event log), none lost, none repeated.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/containers_lib.sh"

need_root
need podman runc sqlite3 python3 curl
[ -x "$PM_BUSYBOX" ] && "$PM_BUSYBOX" --list >/dev/null 2>&1 ||
	skip_all "busybox-static not installed"
file -L "$PM_BUSYBOX" 2>/dev/null | grep -q 'dynamically' &&
	skip_all "$PM_BUSYBOX is not static (install busybox-static)"

U1=2001 U2=2002
mkdir -p "$T/home/alice" "$T/home/bob" "$T/run/user"
chown "$U1" "$T/home/alice"; chown "$U2" "$T/home/bob"
sqlite3 "$T/panel.db" < "$top_srcdir/contrib/demo/panel.sql"
# bob was renamed to bobby: the panel's name differs from his ctx
sqlite3 "$T/panel.db" "UPDATE users SET username='bobby' WHERE id=2"

pm_image || skip_all "cannot build the busybox image"
mkdir -p "$T/run/user/$U1/podman"
pm_service u1 "$U1" "$T/run/user/$U1/podman/podman.sock" ||
	skip_all "podman system service does not start here"
chown "$U1" "$T/run/user/$U1"
pm_service u2 "$U2" "$T/u2.sock" || skip_all "second podman service"

# the sample hook, pointed at a webhook receiver on loopback
PORT=$(free_port)
mkdir -p "$T/posts"
start_post_receiver "$PORT" || exit 1

# the fake Docker API: every line of docker-events.jsonl whose time is at
# or after since=, then new lines as they are appended
: > "$T/docker-events.jsonl"
cat > "$T/docker.py" <<'EOF'
import http.server, json, os, socketserver, sys, time, urllib.parse
sock, events = sys.argv[1], sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        if u.path != "/events":
            self.send_response(404); self.end_headers(); return
        since = int(urllib.parse.parse_qs(u.query).get("since", ["0"])[0])
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        done = 0
        try:
            while True:
                lines = open(events).read().split("\n")[:-1]
                for l in lines[done:]:
                    try: t = json.loads(l).get("time", 0)
                    except ValueError: t = since
                    if t >= since:
                        self.wfile.write((l + "\n").encode())
                self.wfile.flush()
                done = len(lines)
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass
    def log_message(self, *a):
        pass
class S(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    def get_request(self):
        r, _ = super().get_request()
        return r, ("local", 0)
if os.path.exists(sock): os.unlink(sock)
S(sock, H).serve_forever()
EOF
python3 "$T/docker.py" "$T/docker.sock" "$T/docker-events.jsonl" >"$T/docker.log" 2>&1 &
cleanup_pid $!
# dev NOW_S ACTION NAME [EXTRA_ATTRS]: a Docker event line
DID=4f1c0e2a9b8d7c6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e
dev() {
	printf '{"status":"%s","id":"%s","from":"nginx:1.27","Type":"container","Action":"%s","Actor":{"ID":"%s","Attributes":{"image":"nginx:1.27","name":"%s"%s}},"scope":"local","time":%s,"timeNano":%s%09d}\n' \
		"$2" "$DID" "$2" "$DID" "$3" "${4:-}" "$1" "$1" "$(( $(date +%N | sed 's/^0*//;s/^$/0/') ))" \
		>> "$T/docker-events.jsonl"
}

PANEL_POLL_MS=200 write_config
install_plugins log
sed "s|https://hooks.slack.com/services/CHANGE/ME|http://127.0.0.1:$PORT/hook|" \
	"$top_srcdir/hooks/notify-containers.lua" > "$T/hooks/notify-containers.lua"
chmod 644 "$T/hooks/notify-containers.lua"
cat >> "$T/ophookd.yaml" <<YAML
containers:
  enabled: true
  root_socket: ~
  run_user_dir: $T/run/user
  home_dir: $T/home
  kmsg: /dev/kmsg
  scan_ms: 200
  reconnect_ms: 200
  restart_loop_deaths: 3
  restart_loop_window_s: 60
  sockets:
    - { path: $T/u2.sock, uid: $U2 }
    - { path: $T/docker.sock, uid: $U1, api: docker }
YAML
cp "$T/ophookd.yaml" "$T/peer.yaml"

# peer_check (the default): a socket found under run_user_dir must be served
# by its uid; these services run as root, so alice's is refused
start_ophookd || exit 1
wait_for 10 grep -q "podman.sock: served by uid 0, not $U1" "$T/ophookd.log"
ok $? "peer_check: alice's socket served by root is refused"
stop_ophookd
# from here on the rootful services stand for the users' rootless ones
sed 's/^  scan_ms: 200$/  scan_ms: 200\n  peer_check: false/' "$T/peer.yaml" > "$T/ophookd.yaml"
grep -q 'peer_check: false' "$T/ophookd.yaml" || echo "# config edit failed"
start_ophookd || exit 1

# wait_ev N TYPE [KEY=VALUE...]: wait (20 s) until there are N
wait_ev() {
	_want=$1; shift
	for _ in $(seq 200); do
		[ "$(log_events "$@")" -ge "$_want" ] && return 0
		sleep 0.1
	done
	return 1
}

wait_for 10 sh -c "\"$OPHOOKCTL\" -s \"$T/ophookd.sock\" --json status | grep -q '\"connected\": *true.*\"connected\": *true'" ||
	wait_for 10 sh -c "[ \$(\"$OPHOOKCTL\" -s \"$T/ophookd.sock\" --json status | grep -o '\"connected\": *true' | wc -l) -ge 2 ]"
ok $? "both sockets connected (alice's found under run_user_dir)"

# ---- same name, two users; exit codes ----
pm u1 run --name web --label com.docker.compose.service=nginx \
	--label com.docker.compose.project=alice localhost/bb sh -c 'exit 3'
pm u2 run --name web localhost/bb sh -c 'exit 4'
wait_ev 1 container.died ctx=bob container=web
is "$(log_events container.died ctx=alice user=alice uid=$U1 container=web exit_code=3 service=nginx project=alice)" 1 \
	"alice's web died with exit 3, compose service and project"
is "$(log_events container.died ctx=bob user=bobby uid=$U2 container=web exit_code=4)" 1 \
	"bob's web (same name) died with exit 4, user is the panel's name bobby"
is "$(log_events container.started ctx=alice container=web)" 1 "alice's web started"
is "$(log_events container.started ctx=bob container=web)" 1 "bob's web started"

# ---- OOM (cgroup v1 + runc: Podman 4.3 reports no oom, the kernel does) ----
pm u1 run --name mem --memory 8m --memory-swap 8m localhost/bb tail /dev/zero
rc=$?
if [ "$rc" = 137 ]; then
	wait_ev 1 container.oom ctx=alice container=mem
	is "$(log_events container.oom ctx=alice container=mem)" 1 \
		"OOM kill of alice's mem: container.oom"
	is "$(log_events container.oom ctx=bob)" 0 "no OOM for bob"
else
	ok 0 "# SKIP the kernel did not OOM-kill (exit $rc)"
	ok 0 "# SKIP"
fi

# ---- health (no systemd: the test runs the checks) ----
pm u2 run -d --name db --health-cmd false --health-interval 1s \
	--health-retries 1 localhost/bb sleep 600 >/dev/null
pm u2 healthcheck run db >/dev/null 2>&1
pm u2 healthcheck run db >/dev/null 2>&1
wait_ev 1 container.health_changed ctx=bob container=db
sleep 0.5
is "$(log_events container.health_changed ctx=bob container=db health=unhealthy)" 1 \
	"bob's db unhealthy, once for two failed checks"

# ---- restart loop: on-failure:3 = 4 deaths; 3 in 60 s is a loop ----
pm u1 run -d --name loop --restart on-failure:3 localhost/bb sh -c 'sleep 0.2; exit 1' >/dev/null
wait_ev 1 container.restart_loop ctx=alice container=loop
is "$(log_events container.restart_loop ctx=alice container=loop deaths=3)" 1 \
	"alice's loop: container.restart_loop after 3 deaths"
is "$(log_events container.restart_loop ctx=bob)" 0 "no restart loop for bob"

# ---- the sample hook told the webhook about both ----
wait_for 20 sh -c "cat '$T'/posts/*.json 2>/dev/null | grep -q 'restarting in a loop'"
posts=$(cat "$T"/posts/*.json 2>/dev/null)
case "$posts" in
*"container mem of alice was killed: out of memory"*) ok 0 "sample hook: OOM posted, naming alice" ;;
*) if [ "$rc" = 137 ]; then ok 1 "sample hook: OOM posted"; else ok 0 "# SKIP no OOM here"; fi ;;
esac
case "$posts" in
*"container loop of alice is restarting in a loop: 3 deaths in 60 s"*) ok 0 "sample hook: restart loop posted" ;;
*) ok 1 "sample hook: restart loop posted"; diag "$posts" ;;
esac

# ---- a stop right after the user's suspension ----
sqlite3 "$T/panel.db" "UPDATE users SET username='SUSPENDED_20261205000000_bobby' WHERE id=2"
wait_ev 1 user.suspended || diag "no user.suspended"
pm u2 stop -t 0 db >/dev/null
# Podman 4.3 logs no "stop" for a stop, only its "died"; newer Podman and
# Docker add a "stop" (container.stopped, with the same reason)
wait_ev 1 container.died ctx=bob container=db
is "$(log_events container.died ctx=bob container=db reason=user.suspended user=bobby suspended=true)" 1 \
	"bob's db stopped: reason user.suspended, user bobby, suspended"
is "$(log_events container.stopped ctx=bob container=db)$(log_events container.stopped ctx=bob container=db reason=user.suspended)" \
	"$(log_events container.stopped ctx=bob container=db)$(log_events container.stopped ctx=bob container=db)" \
	"a container.stopped, if Podman logs one, has the reason too"
is "$(log_events container.restart_loop ctx=bob container=db)" 0 \
	"deaths with a reason count towards no restart loop"

# ---- opencli user-suspend's order: the user's Caddy confs first (a
# domain.suspended, reason user), the containers stopped next, the row
# renamed last: the stop already has its reason ----
pm u1 run -d --name cron localhost/bb sleep 600 >/dev/null
ctl emit domain.suspended alice-blog.example domain=alice-blog.example reason=user >/dev/null
pm u1 stop -t 0 cron >/dev/null
wait_ev 1 container.died ctx=alice container=cron
is "$(log_events container.died ctx=alice container=cron reason=user.suspended)" 1 \
	"a stop after the user's domain.suspended (reason user) has reason user.suspended"

# ---- alice's Docker (1.x): kill, die, stop; health; hostile lines ----
now=$(date +%s)
dev "$now" start nginx ',"com.docker.compose.service":"nginx"'
dev "$now" kill nginx ',"signal":"15"'
dev "$now" die nginx ',"exitCode":"0","com.docker.compose.service":"nginx"'
dev "$now" stop nginx
dev "$now" "health_status: unhealthy" nginx
dev "$now" start 'x;rm -rf /'
dev "$now" start "evil" ',"com.docker.compose.service":"$(reboot)","com.docker.compose.project":"a\\nb"'
printf 'not json at all\n' >> "$T/docker-events.jsonl"
wait_ev 1 container.started api=docker container=evil
wait_ev 1 container.health_changed api=docker
sleep 0.5
is "$(log_events container.stopped ctx=alice api=docker container=nginx service=None)" 1 \
	"Docker's stop: container.stopped for alice"
is "$(log_events container.died ctx=alice api=docker container=nginx exit_code=0 service=nginx)" 1 \
	"Docker's die: container.died, exitCode 0, compose service"
is "$(log_events container.health_changed ctx=alice api=docker container=nginx health=unhealthy)" 1 \
	"Docker's health_status: unhealthy (the status from the action)"
is "$(log_events container.started api=docker container=evil service=None project=None)" 1 \
	"hostile compose labels left out, the event kept"
_dropped() { [ "$(grep -c 'docker.sock: event dropped' "$T/ophookd.log")" -ge 2 ]; }
wait_for 20 _dropped
is "$(grep -c 'docker.sock: event dropped' "$T/ophookd.log")" 2 \
	"a hostile name and a line that is not JSON: dropped and logged"
grep -q 'Docker keeps only its last 1,000 events' "$T/ophookd.log"
ok $? "the Docker API's limit is logged"

# ---- kill -9 while containers die ----
for i in 1 2 3 4 5 6; do
	pm u1 run -d --name "k$i" localhost/bb sh -c "sleep 0.$i; exit $i" >/dev/null
	pm u2 run -d --name "k$i" localhost/bb sh -c "sleep 0.$i; exit 1$i" >/dev/null
	[ "$i" = 3 ] && kill -9 "$OPHOOKD_PID"
done
wait "$OPHOOKD_PID" 2>/dev/null
sleep 1
start_ophookd || exit 1
for i in 1 2 3 4 5 6; do
	wait_ev 1 container.died ctx=alice container=k$i exit_code=$i &&
	wait_ev 1 container.died ctx=bob container=k$i exit_code=1$i
done
ok $? "every death while ophookd was down arrives after its restart"

# ---- alice's API service stopped, containers die meanwhile, restarted ----
pm_service_stop u1
pm_local u1 run --name offline localhost/bb sh -c 'exit 7' 2>/dev/null
pm_service u1 "$U1" "$T/run/user/$U1/podman/podman.sock" || diag "restart failed"
wait_ev 1 container.died ctx=alice container=offline exit_code=7
ok $? "died while alice's API was down: caught up when it came back"
sleep 1

# ---- every event once, against Podman's own log ----
python3 - "$T/events.log" "$(pm_dir u1)/events.log" "$(pm_dir u2)/events.log" <<'PY' > "$T/exact.txt"
import json, sys, datetime
mine = {}
for line in open(sys.argv[1]):
    try: e = json.loads(line)
    except ValueError: continue
    if e.get("type") in ("container.started", "container.died", "container.stopped") \
       and e.get("api") == "libpod":
        k = (e["container_id"], e["action"], e["time_nano"])
        mine[k] = mine.get(k, 0) + 1
theirs = set()
for f in sys.argv[2:]:
    for line in open(f):
        e = json.loads(line)
        if e.get("Type") != "container" or e.get("Status") not in ("start", "died", "stop"):
            continue
        t = e["Time"]  # RFC 3339 with ns
        base, frac = t[:19], t[20:].rstrip("Z").split("+")[0].split("-")[0]
        sec = int(datetime.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc).timestamp())
        ns = sec * 10**9 + int((frac + "000000000")[:9])
        theirs.add((e["ID"], e["Status"], ns))
dups = sum(1 for v in mine.values() if v > 1)
missing = len(theirs - set(mine))
extra = len(set(mine) - theirs)
print(len(theirs), len(mine), dups, missing, extra)
PY
read -r n_theirs n_mine dups missing extra < "$T/exact.txt"
diag "podman: $n_theirs start/died/stop events, ophookd: $n_mine"
is "$dups" 0 "no event twice"
is "$missing" 0 "no event lost"
is "$extra" 0 "no event that Podman did not log"
[ "$n_theirs" -ge 30 ]; ok $? "enough events to mean something ($n_theirs)"
is "$(grep -v 'docker.sock: event dropped' "$T/ophookd.log" | grep -c 'not journaled\|event dropped')" 0 \
	"no event dropped or unjournaled (but the hostile ones)"
is "$(log_events container.stopped api=docker)$(log_events container.died api=docker)$(log_events container.started api=docker)" 112 \
	"the Docker stream after a kill -9: nothing twice"

done_testing
