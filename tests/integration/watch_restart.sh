#!/bin/sh
# Changes made while ophookd is stopped become events at the next start
# (source reconcile); an unchanged file gives none.  kill -9 in the middle
# of a 20,000-file burst loses no event.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need jq
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"
BURST=${WATCH_BURST_N:-20000}

watch_config
install_plugins log
D=$T/root/caddy/domains
mkdir -p "$D" "$T/root/openpanel/core/users"
conf() { printf '%s {\n    reverse_proxy http://127.0.0.1:%s\n}\n' "$1" "$2"; }
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }

conf a.example.com 8001 > "$D/a.example.com.conf"
conf b.example.com 8002 > "$D/b.example.com.conf"
conf e.example.com 8005 > "$D/e.example.com.conf"
expect "three domains added" "domain.added a.example.com" \
	"domain.added b.example.com" "domain.added e.example.com"
stop_ophookd

# while stopped
sed -i 's/8001/9001/' "$D/a.example.com.conf"
rm "$D/b.example.com.conf"
conf c.example.com 8003 > "$D/c.example.com.conf"
touch "$D/e.example.com.conf"              # same content: no event
mkdir "$T/root/openpanel/core/users/dave"
start_ophookd || exit 1
expect "changes while stopped" "domain.updated a.example.com" \
	"domain.removed b.example.com" "domain.added c.example.com" \
	"user.added user:dave"
is "$(tail -n 4 "$T/events.log" | jq -r .source | sort -u)" reconcile \
	"source reconcile"
stop_ophookd
start_ophookd || exit 1
expect "restart without changes: no event"

# kill -9 in the middle of a burst
B=$T/root/caddy/domains
MARK0=$(nlines)
(
	i=0
	while [ $i -lt "$BURST" ]; do
		echo "b$i.example.org { reverse_proxy http://127.0.0.1:80 }" \
			> "$B/b$i.example.org.conf"
		i=$((i + 1))
	done
) &
WRITER=$!
wait_for 60 _have_lines $((MARK0 + BURST / 10))
kill -9 "$OPHOOKD_PID"
wait "$OPHOOKD_PID" 2>/dev/null
killed_at=$(nlines)
diag "killed after $((killed_at - MARK0)) delivered events"
wait $WRITER
start_ophookd || exit 1
distinct() {
	tail -n +$((MARK0 + 1)) "$T/events.log" | jq -r 'select(.type=="domain.added") | .subject' |
		sort -u | wc -l
}
_all() { [ "$(distinct)" -ge "$BURST" ]; }
wait_for 300 _all
total=$(tail -n +$((MARK0 + 1)) "$T/events.log" | jq -r 'select(.type=="domain.added") | .subject' | wc -l)
got=$(distinct)
is "$got" "$BURST" "every file of the burst delivered after kill -9 (distinct subjects)"
diag "burst $BURST: delivered $total domain.added, $((total - got)) duplicates"
is "$(tail -n +$((MARK0 + 1)) "$T/events.log" | jq -r .type | sort -u)" "domain.added" \
	"no other event type in the burst"
done_testing
