# Helpers for the reliability scenarios (sourced by each s_*.sh after
# tests/lib.sh and tests/integration/watch_lib.sh).  A scenario checks
# things with ok/is (TAP, indented by the runner) and ends with
#   row EVENTS LOST DUPLICATED
# which prints the line the runner puts in its table:
#   row: NAME EVENTS LOST DUPLICATED ok|FAIL
# (FAIL when LOST is not 0 or a check failed).  REL_NAME is the scenario's
# name (default: the script's name without s_ and .sh).
: "${REL_NAME:=$(basename "$0" .sh | sed 's/^s_//')}"

row() {
	_res=ok
	if [ "$2" != 0 ] || [ "$_tap_fail" -ne 0 ]; then _res=FAIL; fi
	echo "row: $REL_NAME $1 $2 $3 $_res"
}

# distinct_subjects TYPE PREFIX [FROM_LINE]: distinct subjects of the log
# plugin's events of TYPE whose subject starts with PREFIX
distinct_subjects() {
	tail -n +"${3:-1}" "$T/events.log" 2>/dev/null |
		jq -r --arg t "$1" --arg p "$2" \
		'select(.type == $t and (.subject | startswith($p))) | .subject' |
		sort -u | wc -l
}
# total_subjects TYPE PREFIX [FROM_LINE]: the same, duplicates counted
total_subjects() {
	tail -n +"${3:-1}" "$T/events.log" 2>/dev/null |
		jq -r --arg t "$1" --arg p "$2" \
		'select(.type == $t and (.subject | startswith($p))) | .subject' |
		wc -l
}

# restart_ophookd: start it again after a kill (the old pid is reaped)
restart_ophookd() {
	wait "$OPHOOKD_PID" 2>/dev/null
	start_ophookd
}

# burst_writer DIR PREFIX N: in the background, N caddy confs
# DIR/PREFIX<i>.example.org.conf in chunks of 500 with a 0.1 s pause (so
# the burst lasts a few seconds and kills land while files still arrive);
# WRITER is its pid, stopped at exit
burst_writer() {
	(
		i=0
		while [ $i -lt "$3" ]; do
			echo "$2$i.example.org { reverse_proxy http://127.0.0.1:80 }" \
				> "$1/$2$i.example.org.conf"
			i=$((i + 1))
			[ $((i % 500)) = 0 ] && sleep 0.1
		done
	) &
	WRITER=$!
	cleanup_pid $WRITER
}

# rand_ms SEED N LO HI: N pseudo-random integers in [LO, HI], one a line
rand_ms() {
	awk -v s="$1" -v n="$2" -v lo="$3" -v hi="$4" \
		'BEGIN { srand(s); for (i = 0; i < n; i++) print int(lo + rand() * (hi - lo + 1)) }'
}
