#!/bin/sh
# Issue 16, finding 2: the goaccess plugin writes reports as root into
# folders a customer can write to (<stats_dir>/<user>) and reads logs from
# folders Caddy shares with them (<log_base>/<d>).  With the real goaccess,
# as root, in $T only: a stats folder that is a symlink, symlinks as the
# old fixed temp names and as the report, a symlinked log folder, a log
# that is a symlink (and a hard link) to a root-only file, a stats folder
# owned by someone else.  Each time: the file outside keeps its content
# and mtime, the stats.report error names the domain's folder or file,
# and a normal folder next to it still gets its report.  Then: goaccess
# runs as nobody, and a goaccess still running dies with a killed daemon.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/goaccess_lib.sh"

need goaccess python3 setpriv
need_root
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/goaccess/.libs/goaccess.so" ] || skip_all "goaccess plugin not built"
id nobody >/dev/null 2>&1 || skip_all "no account nobody"

FX="$top_srcdir/tests/integration/fixtures/caddy-logs"
LOGS="$T/domlogs"
STATS="$T/stats"
OUT="$T/outside"
mkdir -p "$T/root/openpanel/conf" "$OUT" "$STATS" "$LOGS"
printf '[STATS]\nschedule=off\n' > "$T/root/openpanel/conf/openpanel.config"
# the files a hostile customer points at: one a report could overwrite,
# one root-only secret a report or an error could leak
printf 'precious\n' > "$OUT/victim.html"
printf '{"SECRET":"root only"}\n' > "$OUT/secret"
chmod 0600 "$OUT/secret"
touch -d '2020-01-02 03:04:05' "$OUT/victim.html" "$OUT/secret"
fp() { stat -c '%s %Y %i' "$1"; cat "$1"; }
VICTIM0=$(fp "$OUT/victim.html")
SECRET0=$(fp "$OUT/secret")
untouched() {
	is "$(fp "$OUT/victim.html")" "$VICTIM0" "$1: the file outside is untouched (content, mtime)"
}

write_config "  goaccess:
    settings:
      log_base: $LOGS
      stats_dir: $STATS
      geoip_db: $T/none.mmdb
      max_procs: 2"
install_plugins goaccess log
start_ophookd || { echo "Bail out! ophookd did not start"; exit 1; }

# run D: one stats.run for D, wait for its report
run() {
	_n=$(report_count "$1")
	ctl emit stats.run "$1" domain="$1" >/dev/null
	wait_for 60 more_reports "$1" "$_n"
}
add() {
	ctl emit domain.added "$1" domain="$1" user="$2" >/dev/null
	wait_for 30 test -d "$LOGS/$1" -a -d "$STATS/$2"
	cp "$FX/a.example.jsonl" "$LOGS/$1/access.log"
}
A_LINES=$(wc -l < "$FX/a.example.jsonl")

add ok.example good
add a.example bob
add b.example carol
add c.example dave
add d.example erin
add e.example frank

# --- 1. the stats folder is a symlink --------------------------------------
mv "$STATS/bob" "$STATS/bob.real"
ln -s "$OUT" "$STATS/bob"
run a.example
is "$(last_report a.example ok)" False "symlinked stats folder: not ok"
ok "$(last_report a.example error | grep -q "$STATS/bob: a symlink, refused"; echo $?)" \
	"symlinked stats folder: the error names the folder"
ok "$(grep -q "a.example: $STATS/bob: a symlink" "$T/ophookd.log"; echo $?)" \
	"symlinked stats folder: the log names the domain and the folder"
ok "$(ls "$OUT" | grep -q 'a.example\|ophook'; [ $? -ne 0 ]; echo $?)" \
	"symlinked stats folder: nothing made in the folder it points to"
untouched "symlinked stats folder"
ctl emit domain.removed a.example domain=a.example user=bob >/dev/null
ok "$(wait_for 30 grep -q "a.example: $STATS/bob: a symlink" "$T/events.log" "$T/ophookd.log"; echo $?)" \
	"symlinked stats folder: domain.removed refused too"
ok "$(test -e "$OUT/victim.html"; echo $?)" "symlinked stats folder: nothing unlinked through it"

# --- 2. symlinks as the old temp names and as the report --------------------
ln -s "$OUT/victim.html" "$STATS/carol/.ophook-b.example.html"
ln -s "$OUT/victim.html" "$STATS/carol/.ophook-b.example.json"
ln -s "$OUT/victim.html" "$STATS/carol/b.example.html"
run b.example
is "$(last_report b.example ok)" True "planted symlinks as names: the report is made"
is "$(last_report b.example total)" "$A_LINES" "planted symlinks as names: total = log lines"
ok "$(test -f "$STATS/carol/b.example.html" -a ! -L "$STATS/carol/b.example.html"; echo $?)" \
	"planted symlinks as names: the report replaced the symlink"
ok "$(grep -q GoAccess "$STATS/carol/b.example.html"; echo $?)" \
	"planted symlinks as names: it is a GoAccess report"
untouched "planted symlinks as names"

# --- 3. the log folder is a symlink (a symlinked parent) --------------------
rm -rf "$LOGS/c.example"
mkdir "$OUT/logs"
ln -s "$OUT/secret" "$OUT/logs/access.log"
ln -s "$OUT/logs" "$LOGS/c.example"
run c.example
is "$(last_report c.example ok)" False "symlinked log folder: not ok"
ok "$(last_report c.example error | grep -q "$LOGS/c.example: a symlink, refused"; echo $?)" \
	"symlinked log folder: the error names the folder"

# --- 4. the log is a symlink, then a hard link, to a root-only file ---------
rm -f "$LOGS/d.example/access.log"
ln -s "$OUT/secret" "$LOGS/d.example/access.log"
run d.example
is "$(last_report d.example ok)" False "symlinked log: not ok"
ok "$(last_report d.example error | grep -q "$LOGS/d.example/access.log: a symlink, refused"; echo $?)" \
	"symlinked log: the error names the log"
rm -f "$LOGS/d.example/access.log"
ln "$OUT/secret" "$LOGS/d.example/access.log"
run d.example
ok "$(last_report d.example error | grep -q "access.log: more than one hard link, refused"; echo $?)" \
	"hard-linked log: refused"
rm -f "$LOGS/d.example/access.log"
ok "$(grep -rqs SECRET "$T/events.log" "$T/ophookd.log" "$STATS"; [ $? -ne 0 ]; echo $?)" \
	"the root-only file leaks into no report, event or log"
is "$(fp "$OUT/secret")" "$SECRET0" "the root-only file is untouched"

# --- 5. a stats folder owned by someone else ----------------------------------
cp "$FX/a.example.jsonl" "$LOGS/d.example/access.log"
chown 4242:4242 "$STATS/erin"
run d.example
ok "$(last_report d.example error | grep -q "$STATS/erin: owned by uid 4242"; echo $?)" \
	"stats folder of an unexpected owner: refused, named"
ok "$(test ! -e "$STATS/erin/d.example.html"; echo $?)" \
	"stats folder of an unexpected owner: no report in it"

# --- 6. a normal folder still gets its report -------------------------------
run ok.example
run e.example
is "$(last_report ok.example ok)" True "normal folder: ok"
is "$(last_report ok.example hits)" "$A_LINES" "normal folder: hits = log lines"
ok "$(grep -q GoAccess "$STATS/good/ok.example.html"; echo $?)" "normal folder: the report is there"
is "$(last_report e.example ok)" True "another normal folder: ok"
ok "$(ls -a "$STATS"/*/ | grep -q 'ophook-tmp'; [ $? -ne 0 ]; echo $?)" "no temp file left in any stats folder"
ok "$(ls "$T/state/plugins/goaccess" 2>/dev/null | grep -q '^work-'; [ $? -ne 0 ]; echo $?)" \
	"no work folder left"

# --- 7. goaccess runs as nobody, and dies with the daemon -------------------
stop_ophookd
write_config "  goaccess:
    settings:
      log_base: $LOGS
      stats_dir: $STATS
      geoip_db: $T/none.mmdb
      goaccess_argv: [sh, -c, 'exec sleep 317', ophook-slow-goaccess]"
start_ophookd || { echo "Bail out! ophookd did not restart"; exit 1; }
NOBODY=$(id -u nobody)
ctl emit stats.run ok.example domain=ok.example >/dev/null
slow_pid() { pgrep -f '^sleep 317$' | head -n 1; }
slow_running() { [ -n "$(slow_pid)" ]; }
ok "$(wait_for 30 slow_running; echo $?)" "a slow goaccess is running"
P=$(slow_pid)
[ -n "$P" ] && cleanup_cmd "kill -KILL $P"
is "$(stat -c %u "/proc/$P" 2>/dev/null)" "$NOBODY" "goaccess runs as nobody"
ok "$(awk '/^Max address space/ { exit !($4 == 2147483648) }' "/proc/$P/limits"; echo $?)" \
	"goaccess has the address space limit (2048 MiB)"
ok "$(awk '/^Max cpu time/ { exit !($4 == 3600) }' "/proc/$P/limits"; echo $?)" \
	"goaccess has the CPU time limit (timeout_s)"
kill -KILL "$OPHOOKD_PID"
wait "$OPHOOKD_PID" 2>/dev/null
ok "$(wait_for 10 sh -c "! kill -0 $P 2>/dev/null"; echo $?)" "a killed daemon takes goaccess with it"

done_testing
