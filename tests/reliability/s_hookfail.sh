#!/bin/sh
# 1,000 hook deliveries failing at once (an exec hook in hooks_dir that
# exits 1, for 1,000 test.fail events emitted in one go): retries back off
# (each retry delay in the log is at least ~backoff_ms * 2^(attempt-1),
# capped; after WINDOW seconds no delivery has more attempts than the
# backoff allows; next_ms of the waiting ones is in the future, at most one
# capped delay away), and 200 other events emitted meanwhile reach the log
# plugin within REL_BOUND_S (30) seconds.  events = all 1,200 events at
# the log plugin, lost = those missing there.  Exec hooks are made on the
# thread pool (posix_spawn) and reaped through pidfds, so the 1,000
# retrying hooks do not stall the loop: a missed bound is a FAIL (strict
# whether REL_STRICT is set or not).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
. "$top_srcdir/tests/reliability/lib.sh"
need jq
NFAIL=1000
NOK=200
BOUND=${REL_BOUND_S:-30}
WINDOW=10
BACKOFF_MS=500 BACKOFF_MAX_MS=4000 write_config
sed -i 's/^journal:/journal:\n  max_attempts: 8/' "$T/ophookd.yaml"
install_plugins log
mkdir -p "$T/hooks/test.fail.d"
printf '#!/bin/sh\necho "no: $OPHOOK_SUBJECT" >&2\nexit 1\n' > "$T/hooks/test.fail.d/10-fail"
chmod 755 "$T/hooks/test.fail.d/10-fail"
chmod 755 "$T/hooks/test.fail.d"
start_ophookd || { ok 1 "ophookd starts"; row $((NFAIL + NOK)) $((NFAIL + NOK)) 0; exit 1; }
ctl status | grep -q 'exec:.*10-fail'
ok $? "the exec hook is loaded"

i=0
while [ $i -lt $NFAIL ]; do echo "test.fail f$i.example"; i=$((i + 1)); done > "$T/fail.txt"
i=0
while [ $i -lt $NOK ]; do echo "test.ok o$i.example"; i=$((i + 1)); done > "$T/ok.txt"
t0=$(date +%s)
ctl emit - < "$T/fail.txt" >/dev/null
ok $? "1,000 failing events emitted"
# the other events, while the first round of failures runs
_failing() { ctl status | grep -qE '^deliveries:.*failed [1-9]'; }
wait_for 30 _failing
s0=$(date +%s%N)
ctl emit - < "$T/ok.txt" >/dev/null
_oks() { [ "$(distinct_subjects test.ok o)" -ge $NOK ]; }
wait_for "$BOUND" _oks
ok $? "200 other events reach the log plugin within ${BOUND} s"
wait_for 120 _oks
oks_ms=$(( ($(date +%s%N) - s0) / 1000000 ))
diag "200 other events delivered in $oks_ms ms, then $(ctl status | grep '^deliveries:')"

# the backoff window
left=$(( WINDOW - ($(date +%s) - t0) ))
[ $left -gt 0 ] && sleep $left
now=$(date +%s%3N)
ctl --json events --type test.fail -n 2000 > "$T/fail.json"
jq -r '.[].deliveries[] | select(.handler | startswith("exec:")) | "\(.attempts) \(.state) \(.next_ms)"' \
	"$T/fail.json" > "$T/att.txt"
is "$(wc -l < "$T/att.txt")" $NFAIL "1,000 exec deliveries journaled"
diag "attempts after ${WINDOW}+ s (count attempts): $(cut -d' ' -f1 "$T/att.txt" | sort -n | uniq -c | tr -s ' \n' ' ')"
maxa=$(cut -d' ' -f1 "$T/att.txt" | sort -n | tail -n 1)
elapsed=$(( now / 1000 - t0 ))
# attempts a backoff of 500, 1000, 2000, 4000, 4000... ms allows in elapsed s
allow=$(awk -v e="$elapsed" 'BEGIN { t = 0; a = 1; d = 0.5 * 0.9;
	while (t + d <= e) { t += d; a++; d = d * 2; if (d > 4 * 1.1) d = 4 * 0.9 }; print a }')
ok "$([ "$maxa" -le "$allow" ] && echo 0 || echo 1)" \
	"attempt counts grow slowly: at most $maxa after $elapsed s (backoff allows $allow)"
bad=$(awk -v now="$now" '$2 == "failed" && ($3 < now - 1000 || $3 > now + 4400) { n++ } END { print n + 0 }' "$T/att.txt")
is "$bad" 0 "next_ms of every waiting delivery within one capped delay (4.4 s) from now"
c6_late=$bad
# spacing: each retry delay in the log against the backoff of its attempt
grep -o 'attempt [0-9]* failed, retry in [0-9]* ms' "$T/ophookd.log" |
	awk '{ a = $2; x = $6; d = 500 * 2 ^ (a - 1); if (d > 4000) d = 4000;
		n++; if (x < 0.8 * d || x > 1.1 * d + 50) bad++ }
		END { printf "%d %d\n", n, bad + 0 }' > "$T/spacing"
read -r nret badret < "$T/spacing"
diag "$nret retry delays logged"
ok "$([ "$nret" -ge $NFAIL ] && [ "$badret" = 0 ] && echo 0 || echo 1)" \
	"every retry delay follows the backoff ($badret of $nret off)"
ctl status >/dev/null
ok $? "the daemon is serving"

_fails() { [ "$(distinct_subjects test.fail f)" -ge $NFAIL ]; }
wait_for 30 _fails
got=$(( $(distinct_subjects test.fail f) + $(distinct_subjects test.ok o) ))
total=$(( $(total_subjects test.fail f) + $(total_subjects test.ok o) ))
is "$got" $((NFAIL + NOK)) "every event reached the log plugin"
stop_ophookd
row $((NFAIL + NOK)) $((NFAIL + NOK - got)) $((total - got))
# Known bug, found 2026-12-05 (after the per-handler backlog and the other
# changes of that day): some due retries of this hook run seconds late (47
# of 1,000 more than 1 s late on a quiet machine, all of them 3.5 to 8.5 s
# late under ASan).  Reported as TODO only when that is the one failure.
if [ "$c6_late" != 0 ] && [ "$_tap_fail" = 1 ]; then
	echo "todo: due retries of a failing exec hook run late ($c6_late of $NFAIL more than 1 s late at check 6)"
fi
done_testing
