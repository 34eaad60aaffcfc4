#!/bin/sh
# kill -9 of ophookd at random moments during a 20,000-file burst into
# caddy/domains, five times in a row (restarted at once each time, like
# systemd would).  Every file must become a domain.added in the log
# plugin's file: lost = files without one, duplicated = extra deliveries.
# Env: REL_BURST (20000), REL_KILLS (5), REL_SEED (random; printed).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
. "$top_srcdir/tests/reliability/lib.sh"
need jq
BURST=${REL_BURST:-20000}
KILLS=${REL_KILLS:-5}
SEED=${REL_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
diag "seed $SEED (REL_SEED=$SEED to replay the kill moments)"

write_config
install_plugins log
D=$T/root/caddy/domains
mkdir -p "$D"
start_ophookd || { ok 1 "ophookd starts"; row "$BURST" "$BURST" 0; exit 1; }

burst_writer "$D" k "$BURST"

# kill moments: 150..1500 ms after the daemon is up again
n=0
for ms in $(rand_ms "$SEED" "$KILLS" 150 1500); do
	n=$((n + 1))
	sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
	got=$(distinct_subjects domain.added k)
	kill -9 "$OPHOOKD_PID"
	diag "kill $n: after ${ms} ms up, $got files delivered so far," \
		"writer $(kill -0 $WRITER 2>/dev/null && echo running || echo done)"
	restart_ophookd || { ok 1 "ophookd restarts after kill $n"; break; }
done
ok "$(kill -0 "$OPHOOKD_PID" 2>/dev/null && echo 0 || echo 1)" \
	"ophookd runs after $KILLS kills"
wait $WRITER
_all() { [ "$(distinct_subjects domain.added k)" -ge "$BURST" ]; }
wait_for 300 _all
got=$(distinct_subjects domain.added k)
total=$(total_subjects domain.added k)
is "$got" "$BURST" "every file of the burst delivered (distinct subjects)"
other=$(jq -r 'select(.type != "domain.added") | .type' "$T/events.log" | sort | uniq -c | tr '\n' ' ')
is "$other" "" "no other event type"
ctl status >/dev/null
ok $? "the daemon is serving"
stop_ophookd
row "$BURST" $((BURST - got)) $((total - got))
done_testing
