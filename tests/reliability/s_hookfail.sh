#!/bin/sh
# 1,000 hook deliveries failing at once (an exec hook in hooks_dir that
# exits 1, for 1,000 test.fail events emitted in one go): retries back off
# (each retry delay in the log is at least ~backoff_ms * 2^(attempt-1),
# capped; after WINDOW seconds no delivery has more attempts than the
# backoff allows; each waiting one is due at most one capped delay away,
# or due and ready or running in the engine: `events` shows it live), and 200 other events emitted meanwhile reach the log
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
after=$(date +%s%3N)
# live: what the engine does with the delivery now (running, ready = due
# and waiting for a free slot, backoff = waiting for next_ms); its state,
# attempts and next_ms are the engine's, newer than the journal's
jq -r '.[].deliveries[] | select(.handler | startswith("exec:")) | "\(.attempts) \(.state) \(.next_ms) \(.live // "-")"' \
	"$T/fail.json" > "$T/att.txt"
is "$(wc -l < "$T/att.txt")" $NFAIL "1,000 exec deliveries journaled"
diag "attempts after ${WINDOW}+ s (count attempts): $(cut -d' ' -f1 "$T/att.txt" | sort -n | uniq -c | tr -s ' \n' ' ')"
diag "live (count state): $(cut -d' ' -f4 "$T/att.txt" | sort | uniq -c | tr -s ' \n' ' ')"
maxa=$(cut -d' ' -f1 "$T/att.txt" | sort -n | tail -n 1)
elapsed=$(( now / 1000 - t0 ))
# attempts a backoff of 500, 1000, 2000, 4000, 4000... ms allows in elapsed s
allow=$(awk -v e="$elapsed" 'BEGIN { t = 0; a = 1; d = 0.5 * 0.9;
	while (t + d <= e) { t += d; a++; d = d * 2; if (d > 4 * 1.1) d = 4 * 0.9 }; print a }')
ok "$([ "$maxa" -le "$allow" ] && echo 0 || echo 1)" \
	"attempt counts grow slowly: at most $maxa after $elapsed s (backoff allows $allow)"
# Every failed delivery is either waiting for its retry time, due within
# one capped delay (4 s) and not more than 1 s overdue (its timer fires),
# or due and in the engine's hands (ready for a free slot, or running):
# never forgotten (not held, or waiting with its time long past).  How
# late the due ones start is the machine's exec rate, shown as a figure.
awk -v now="$now" -v after="$after" '
	$2 != "failed" { next }
	$4 == "backoff" && $3 >= now - 1000 && $3 <= after + 4000 { next }
	($4 == "ready" || $4 == "running") && $3 <= after { due++; if (now - $3 > late) late = now - $3; next }
	{ bad++; if (bad <= 5) print "bad: " $0 > "/dev/stderr" }
	END { printf "%d %d %d\n", bad + 0, due + 0, late + 0 }' "$T/att.txt" > "$T/c6" 2>"$T/c6.bad"
read -r bad due late < "$T/c6"
[ -s "$T/c6.bad" ] && diag "$(cat "$T/c6.bad")"
diag "$due due retries waiting for a slot or running, the latest $late ms past its time"
is "$bad" 0 "every waiting delivery is due within one capped delay (4 s) or in the engine's hands"
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
done_testing
