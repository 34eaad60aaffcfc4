#!/bin/sh
# Certificate alerts (alerts.enabled): cert.expiring once per threshold,
# only the most severe at start, cert.expired, cert.expiry_resolved on a
# renewal or a removal, nothing repeated after a restart; then thresholds
# in seconds with a certificate ending 40 s ahead: the real timer gives
# each threshold once and cert.expired, also across a restart.  The
# sample hook hooks/alerts-webhook.lua posts each alert, open or
# resolved, to a webhook (python3 on loopback).  Renewal: a Caddy
# certificate past the point where Caddy renews gives cert.renewal_overdue
# (at start and from the timer), closed by a renewal or a removal; a
# custom one with the same dates does not.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need jq openssl python3
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"
PORT=$(free_port)
start_post_receiver "$PORT" || exit 1

alerts_config() {
	watch_config "alerts:
  enabled: true
  quota_interval_s: 0
  cert_thresholds: [$1]"
}
alerts_config '"14d", "7d", "1d"'
install_plugins log
sed "s|https://hooks.slack.com/services/CHANGE/ME|http://127.0.0.1:$PORT/hook|" \
	"$top_srcdir/hooks/alerts-webhook.lua" > "$T/hooks/alerts-webhook.lua"
chmod 644 "$T/hooks/alerts-webhook.lua"
R=$T/root
mkdir -p "$R/caddy/domains" "$R/caddy/ssl/custom" "$T/ca"

# cert_until DOMAIN START END: a custom certificate (fullchain.pem +
# key.pem) for DOMAIN valid from START to END (YYYYmmddHHMMSSZ), made with
# `openssl ca` (any dates, to the second)
cat > "$T/ca/ca.cnf" <<EOF
[ca]
default_ca = c
[c]
database = $T/ca/index.txt
new_certs_dir = $T/ca
rand_serial = yes
default_md = sha256
policy = p
unique_subject = no
copy_extensions = copy
[p]
commonName = supplied
EOF
cert_until() {
	cert_make "$@" || return 1
	_d=$R/caddy/ssl/custom/$1
	mkdir -p "$_d"
	cp "$T/ca/$1/key.pem" "$_d/key.pem"
	caddy_put "$T/ca/$1/fullchain.pem" "$_d/fullchain.pem"
}
# acme_until DOMAIN START END: the same, stored as Caddy stores an ACME
# certificate (.key, .crt, then .json, each written to a temp file and
# renamed)
ACMEDIR=$R/caddy/ssl/acme-v02.api.letsencrypt.org-directory
acme_until() {
	cert_make "$@" || return 1
	mkdir -p "$ACMEDIR/$1" &&
	caddy_put "$T/ca/$1/key.pem" "$ACMEDIR/$1/$1.key" &&
	caddy_put "$T/ca/$1/fullchain.pem" "$ACMEDIR/$1/$1.crt" &&
	echo "{\"sans\":[\"$1\"],\"issuer_data\":{\"n\":1}}" > "$T/ca/$1/json" &&
	caddy_put "$T/ca/$1/json" "$ACMEDIR/$1/$1.json"
}
# cert_make DOMAIN START END: key.pem and fullchain.pem in $T/ca/DOMAIN
cert_make() {
	mkdir -p "$T/ca/$1"
	: > "$T/ca/index.txt"
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$T/ca/$1/key.pem" -out "$T/ca/$1/csr" -subj "/CN=$1" \
		-addext "subjectAltName=DNS:$1" >/dev/null 2>&1 &&
	openssl ca -batch -config "$T/ca/ca.cnf" -selfsign \
		-keyfile "$T/ca/$1/key.pem" -in "$T/ca/$1/csr" \
		-startdate "$2" -enddate "$3" -notext \
		-out "$T/ca/$1/fullchain.pem" >/dev/null 2>&1
}
at() { date -u -d "@$(( $(date +%s) + $1 ))" +%Y%m%d%H%M%SZ; }
NOW0=$(at -3600)

# present before the first start (the baseline records them silently)
cert_until six.example.com "$NOW0" "$(at $((6 * 86400)))" &&
cert_until twenty.example.com "$NOW0" "$(at $((20 * 86400)))" &&
cert_until old.example.com 20200101000000Z 20200201000000Z &&
cert_until acme.example.com "$NOW0" "$(at $((5 * 86400)))" &&
acme_until late.example.com "$(at $((-80 * 86400)))" "$(at $((10 * 86400)))" &&
cert_until latecustom.example.com "$(at $((-80 * 86400)))" "$(at $((10 * 86400)))" ||
	{ plan 1; ok 1 "openssl ca makes certificates"; exit 1; }
# acme.example.com as Caddy stores an ACME certificate: .key, .crt, .json
ACME=$R/caddy/ssl/acme-v02.api.letsencrypt.org-directory/acme.example.com
mkdir -p "$ACME"
mv "$R/caddy/ssl/custom/acme.example.com/key.pem" "$ACME/acme.example.com.key"
mv "$R/caddy/ssl/custom/acme.example.com/fullchain.pem" "$ACME/acme.example.com.crt"
rm -rf "$R/caddy/ssl/custom/acme.example.com"
echo '{"sans":["acme.example.com"],"issuer_data":{"n":1}}' > "$ACME/acme.example.com.json"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
expect "at start: the most severe threshold of each, once" \
	"cert.expiring six.example.com" "cert.expired old.example.com" \
	"cert.expiring acme.example.com" "cert.expiring late.example.com" \
	"cert.expiring latecustom.example.com" "cert.renewal_overdue late.example.com"
is "$(jq -r 'select(.type == "cert.renewal_overdue") | [.domain, .issuer, (.overdue_s / 86400 | round), (((.not_after | fromdate) - (.renew_due | fromdate)) / 86400 | round), (.remaining_s / 86400 | round)] | join(" ")' "$T/events.log")" \
	"late.example.com acme-v02.api.letsencrypt.org-directory 20 30 10" \
	"renewal overdue: Caddy's, due 30 days before the end (a third of 90), 20 days ago"
is "$(jq -r 'select(.type == "cert.expiring" and .domain == "late.example.com") | .not_before | fromdate | (now - .) / 86400 | round' "$T/events.log")" 80 \
	"the alerts carry not_before"
is "$(jq -r 'select(.type == "cert.expiring" and .domain == "six.example.com") | .days' "$T/events.log")" 7 \
	"6 days left: days 7 (not 14 then 7)"
is "$(jq -r 'select(.type == "cert.expiring" and .domain == "acme.example.com") | [.issuer, .path] | join(" ")' "$T/events.log")" \
	"acme-v02.api.letsencrypt.org-directory $ACME/acme.example.com.crt" \
	"Caddy's storage: issuer and the .crt path"
is "$(jq -r 'select(.type == "cert.expiring") | .threshold' "$T/events.log" | sort -u | tr '\n' ' ')" "14d 7d " \
	"thresholds as configured (10 days left: 14d)"
is "$(field_of cert.expired domain)" old.example.com "expired: its domain"
is "$(ctl --json status | jq -r '.alerts.open[] | [.alert, .subject] | join(" ")' | tr '\n' ';')" \
	"cert.expired old.example.com;cert.expiring acme.example.com;cert.expiring late.example.com;cert.expiring latecustom.example.com;cert.expiring six.example.com;cert.renewal_overdue late.example.com;" \
	"ophookctl status: every open alert, sorted"

stop_ophookd
start_ophookd || exit 1
expect "restart: nothing repeated"
stop_ophookd
start_ophookd || exit 1
expect "second restart: nothing repeated"

# renewal: a 90-day certificate replaces the 6-day one
cert_until six.example.com "$NOW0" "$(at $((90 * 86400)))"
expect "renewed: installed, and the alert resolved" \
	"cert.installed six.example.com" "cert.expiry_resolved six.example.com"
is "$(field_of cert.expiry_resolved reason)" renewed "reason renewed"
is "$(field_of cert.expiry_resolved was)" cert.expiring "was cert.expiring"

# Caddy renews late.example.com at last: both its alerts close
OLD_LATE=$(jq -r 'select(.type == "cert.renewal_overdue") | .serial' "$T/events.log")
acme_until late.example.com "$NOW0" "$(at $((90 * 86400)))"
expect "Caddy renewed: cert.renewed, the renewal and expiry alerts resolved" \
	"cert.renewed late.example.com" "cert.renewal_resolved late.example.com" \
	"cert.expiry_resolved late.example.com"
is "$(jq -r 'select(.type == "cert.renewal_resolved") | [.reason, .old_serial == "'"$OLD_LATE"'", .serial != "'"$OLD_LATE"'"] | join(" ")' "$T/events.log")" \
	"renewed true true" "renewal resolved: reason renewed, the old and new serials"

# the expired one removed
rm -rf "$R/caddy/ssl/custom/old.example.com"
expect "removed: cert.removed, and the alert resolved" \
	"cert.removed old.example.com" "cert.expiry_resolved old.example.com"
is "$(field_of cert.expiry_resolved reason)" removed "reason removed"
stop_ophookd
start_ophookd || exit 1
expect "restart after resolutions: nothing"

# changes while ophookd is down resolve at start
cert_until gone.example.com "$NOW0" "$(at $((3 * 86400)))"
cert_until two.example.com "$NOW0" "$(at $((2 * 86400)))"
expect "two more near their end" \
	"cert.installed gone.example.com" "cert.expiring gone.example.com" \
	"cert.installed two.example.com" "cert.expiring two.example.com"
stop_ophookd
rm -rf "$R/caddy/ssl/custom/gone.example.com"
cert_until two.example.com "$NOW0" "$(at $((60 * 86400)))"
start_ophookd || exit 1
expect "removed and renewed while down: resolved at start" \
	"cert.removed gone.example.com" "cert.expiry_resolved gone.example.com" \
	"cert.installed two.example.com" "cert.expiry_resolved two.example.com"
is "$(jq -r 'select(.type == "cert.expiry_resolved") | [.domain, .reason] | join(" ")' "$T/events.log" | tail -n 2 | sort | tr '\n' ' ')" \
	"gone.example.com removed two.example.com renewed " "reasons removed and renewed"
stop_ophookd

# thresholds in seconds: a certificate ending 40 s from now, the timer
alerts_config '"30s", "15s"'
start_ophookd || exit 1
cert_until soon.example.com "$NOW0" "$(at 40)"
expect "a new certificate 40 s from its end: installed only" \
	"cert.installed soon.example.com"
wait_for 30 sh -c "grep -q '\"cert.expiring\".*soon.example.com' '$T/events.log'"
expect "the 30 s threshold, once" "cert.expiring soon.example.com"
is "$(field_of cert.expiring threshold_s)" 30 "threshold_s 30"
stop_ophookd
start_ophookd || exit 1
wait_for 30 sh -c "[ \$(grep -c '\"cert.expiring\".*soon.example.com' '$T/events.log') -ge 2 ]"
expect "after a restart: the 15 s threshold, once (30 s not repeated)" \
	"cert.expiring soon.example.com"
is "$(field_of cert.expiring threshold_s)" 15 "threshold_s 15"
wait_for 30 sh -c "grep -q '\"cert.expired\".*soon.example.com' '$T/events.log'"
expect "at its end: cert.expired, once" "cert.expired soon.example.com"
sleep 2
expect "nothing more"

# the renewal timer: a Caddy certificate of 420 s whose renewal is overdue
# 30 s from now (due at a third left, 140 s before its end, overdue half of
# that later), before its first threshold (30 s before the end)
acme_until tick.example.com "$(at -320)" "$(at 100)"
expect "a new Caddy certificate, not yet due: issued only" \
	"cert.issued tick.example.com"
wait_for 40 sh -c "grep -q '\"cert.renewal_overdue\".*tick.example.com' '$T/events.log'"
expect "the timer: cert.renewal_overdue, once" "cert.renewal_overdue tick.example.com"
rm -rf "$ACMEDIR/tick.example.com"
expect "removed: its renewal alert resolved" \
	"cert.removed tick.example.com" "cert.renewal_resolved tick.example.com"
is "$(field_of cert.renewal_resolved reason)" removed "reason removed"

# the webhook got each alert once: 12 opened, 7 resolved
posts() { cat "$T"/posts/*.json 2>/dev/null | jq -r '[.alert.type, .alert.subject, .alert.state] | join(" ")' | sort; }
wait_for 20 sh -c "[ \$(ls '$T/posts' | wc -l) -ge 19 ]"
sleep 0.5
is "$(posts)" "$(printf '%s\n' \
	"cert.expired old.example.com open" \
	"cert.expired soon.example.com open" \
	"cert.expiring acme.example.com open" \
	"cert.expiring gone.example.com open" \
	"cert.expiring two.example.com open" \
	"cert.expiry_resolved gone.example.com resolved" \
	"cert.expiry_resolved two.example.com resolved" \
	"cert.expiring six.example.com open" \
	"cert.expiring soon.example.com open" \
	"cert.expiring soon.example.com open" \
	"cert.expiry_resolved old.example.com resolved" \
	"cert.expiry_resolved six.example.com resolved" \
	"cert.expiring late.example.com open" \
	"cert.expiring latecustom.example.com open" \
	"cert.renewal_overdue late.example.com open" \
	"cert.renewal_resolved late.example.com resolved" \
	"cert.expiry_resolved late.example.com resolved" \
	"cert.renewal_overdue tick.example.com open" \
	"cert.renewal_resolved tick.example.com resolved" | sort)" \
	"alerts-webhook.lua: every alert posted once with its state"
cat "$T"/posts/*.json | jq -r .text | grep -q 'certificate of six.example.com expires in less than 7d'
ok $? "the text says which domain and threshold"
stop_ophookd
done_testing
