# Helpers for the goaccess tests (sourced after tests/lib.sh; the log
# plugin writes $T/events.log).

# report_count D: number of stats.report events of D
report_count() {
	grep '"type": *"stats.report"' "$T/events.log" 2>/dev/null |
		grep -c "\"subject\": *\"$1\"" || true
}
# more_reports D N: D has more than N stats.report events
more_reports() { [ "$(report_count "$1")" -gt "$2" ]; }
# last_report D FIELD: FIELD of D's last stats.report
last_report() {
	grep '"type": *"stats.report"' "$T/events.log" | grep "\"subject\": *\"$1\"" |
		tail -n 1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read()).get(sys.argv[1]))' "$2"
}
