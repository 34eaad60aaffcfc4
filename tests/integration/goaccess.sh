#!/bin/sh
# Integration test of the goaccess plugin with the real goaccess: ophookd
# with the goaccess and log plugins, Caddy JSON access logs from
# tests/integration/fixtures/caddy-logs/ (written in Caddy's format).
# Checks: stats.run makes each active domain's report and the stats.report
# hit count equals the log's lines (less the user's excluded IP); a
# suspended user's domains are skipped; domain.removed takes the report
# away; the schedule from openpanel.config [STATS] emits stats.run.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/goaccess_lib.sh"

need goaccess python3
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/goaccess/.libs/goaccess.so" ] || skip_all "goaccess plugin not built"

FX="$top_srcdir/tests/integration/fixtures/caddy-logs"
LOGS="$T/domlogs"
STATS="$T/stats"
mkdir -p "$T/root/openpanel/conf" "$T/root/openpanel/core/users/bob"
printf '[GENERAL]\nns1=ns1.example\n\n[STATS]\nschedule=off\n' \
	> "$T/root/openpanel/conf/openpanel.config"
# bob's excluded IPs: one of a.example's five addresses, and a bad line
printf '# office\n10.9.9.9\nnot-an-ip!\n' \
	> "$T/root/openpanel/core/users/bob/goaccess_excluded_ips"

write_config "  goaccess:
    settings:
      log_base: $LOGS
      stats_dir: $STATS
      geoip_db: $T/GeoLite2-City.mmdb
      max_procs: 2"
install_plugins goaccess log
start_ophookd || { echo "Bail out! ophookd did not start"; exit 1; }


ctl emit domain.added a.example domain=a.example user=bob >/dev/null
ctl emit domain.added b.example domain=b.example user=carol >/dev/null
ok "$(wait_for 30 test -d "$LOGS/a.example" -a -d "$LOGS/b.example"; echo $?)" \
	"domain.added: log folders made"
ok "$(wait_for 30 test -d "$STATS/bob" -a -d "$STATS/carol"; echo $?)" \
	"domain.added: stats folders made"
cp "$FX/a.example.jsonl" "$LOGS/a.example/access.log"
cp "$FX/b.example.jsonl" "$LOGS/b.example/access.log"
A_LINES=$(wc -l < "$FX/a.example.jsonl")
A_EXCL=$(grep -c '"remote_ip":"10.9.9.9"' "$FX/a.example.jsonl")
B_LINES=$(wc -l < "$FX/b.example.jsonl")
diag "a.example: $A_LINES lines ($A_EXCL from the excluded IP), b.example: $B_LINES lines"

# --- a run over every domain --------------------------------------------------
ctl emit stats.run stats >/dev/null
ok "$(wait_for 60 more_reports a.example 0; echo $?)" "stats.report for a.example"
ok "$(wait_for 60 more_reports b.example 0; echo $?)" "stats.report for b.example"
is "$(last_report a.example ok)" True "a.example: ok"
is "$(last_report a.example hits)" "$((A_LINES - A_EXCL))" \
	"a.example: hits = log lines less bob's excluded IP"
is "$(last_report a.example total)" "$A_LINES" "a.example: total = log lines"
is "$(last_report b.example hits)" "$B_LINES" "b.example: hits = log lines"
ok "$(grep -q 'GoAccess' "$STATS/bob/a.example.html"; echo $?)" "bob/a.example.html is a GoAccess report"
ok "$(test -s "$STATS/carol/b.example.html"; echo $?)" "carol/b.example.html written"
ok "$(grep -q 'goaccess_excluded_ips:3: not an IP' "$T/ophookd.log"; echo $?)" \
	"the bad excluded-IP line is reported with file:line"
ok "$(ls -a "$STATS/bob" | grep -q '^\.ophook-'; [ $? -ne 0 ]; echo $?)" "no temp outputs left"

# --- a suspended user is skipped ------------------------------------------------
ctl emit user.suspended user:carol user=carol >/dev/null
rm -f "$STATS/carol/b.example.html"
NA=$(report_count a.example)
NB=$(report_count b.example)
ctl emit stats.run stats >/dev/null
ok "$(wait_for 60 more_reports a.example "$NA"; echo $?)" "after suspension: a.example reported again"
# the same subject "stats" runs in order: a run for b.example after it
# would be done once this one is
ctl emit stats.run stats domain=a.example >/dev/null
ok "$(wait_for 60 more_reports a.example "$((NA + 1))"; echo $?)" "a one-domain run"
is "$(report_count b.example)" "$NB" "suspended carol: no run for b.example"
ok "$(test ! -e "$STATS/carol/b.example.html"; echo $?)" "suspended carol: no report written"
ctl emit user.unsuspended user:carol user=carol >/dev/null
ctl emit stats.run stats domain=b.example >/dev/null
ok "$(wait_for 60 more_reports b.example "$NB"; echo $?)" "unsuspended: b.example runs again"

# --- a run that fails is in the journal ---------------------------------------------
ctl emit domain.added c.example domain=c.example user=bob >/dev/null
ctl emit stats.run stats domain=c.example >/dev/null
ok "$(wait_for 60 more_reports c.example 0; echo $?)" "stats.report for a domain without a log"
is "$(last_report c.example ok)" False "c.example: not ok"
ok "$(last_report c.example error | grep -q 'no access log'; echo $?)" "c.example: the error says why"
ok "$(ctl events --type stats.report 2>/dev/null | grep -q c.example; echo $?)" \
	"stats.report is in the journal"

# --- domain.removed takes the report away --------------------------------------------
ctl emit domain.removed a.example domain=a.example >/dev/null
ok "$(wait_for 30 test ! -e "$STATS/bob/a.example.html"; echo $?)" "domain.removed: report removed"
ok "$(test -s "$STATS/carol/b.example.html"; echo $?)" "the other user's report stays"

# --- the schedule from openpanel.config [STATS] ----------------------------------------
scheduled() { grep '"type": *"stats.run"' "$T/events.log" | grep -q '"scheduled": *true'; }
ok "$(scheduled; [ $? -ne 0 ]; echo $?)" "schedule off: no scheduled run"
printf '[GENERAL]\nns1=ns1.example\n\n[STATS]\nschedule=10s\n' \
	> "$T/root/openpanel/conf/openpanel.config"
ctl emit config.changed openpanel.config path="$T/root/openpanel/conf/openpanel.config" >/dev/null
ok "$(wait_for 60 scheduled; echo $?)" "schedule=10s: the plugin emits stats.run"

done_testing
