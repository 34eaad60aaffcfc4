#!/bin/sh
# What OpenPanel's own scripts do to the tree, step by step.
# usage: scenario.sh ROOT [PANEL_DB]
set -eu
# the panel DB's writes wait for the lock ophookd's poller may hold while it
# reads (MariaDB's clients wait too; the sqlite3 shell's busy timeout is 0)
db() { sqlite3 -cmd ".timeout 10000" "$@"; }
R=$1
DB=${2:-}
# the pause comes first, so each step's events show under its own header
step() { sleep "${STEP_PAUSE:-1.5}"; printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step "opencli domains-add shop.example --user alice (render template, then sed -i)"
sed 's/<DOMAIN_NAME>/shop.example/g; s/<SSL_PORT>/443/; s/<NON_SSL_PORT>/8081/; s/<USER>/alice/' \
	"$R/caddy/templates/domain.conf" > "$R/caddy/domains/shop.example.conf"
sleep 0.3
sed -i 's/reverse_proxy 127.0.0.1:8081/reverse_proxy 127.0.0.1:8082/' "$R/caddy/domains/shop.example.conf"

step "Caddy issues a certificate for shop.example (.crt, .key, then .json)"
d="$R/caddy/ssl/local/shop.example"
mkdir -p "$d"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
	-subj "/CN=shop.example" -addext "subjectAltName=DNS:shop.example" \
	-keyout "$d/.shop.example.key.tmp" -out "$d/.shop.example.crt.tmp" 2>/dev/null
mv "$d/.shop.example.crt.tmp" "$d/shop.example.crt"
mv "$d/.shop.example.key.tmp" "$d/shop.example.key"
printf '{"sans":["shop.example"],"issuer_data":null}\n' > "$d/.shop.example.json.tmp"
mv "$d/.shop.example.json.tmp" "$d/shop.example.json"

step "opencli user-suspend alice (panel DB rename, copy confs aside, overwrite from suspended_user.conf)"
if [ -n "$DB" ] && command -v sqlite3 >/dev/null; then
	db "$DB" "UPDATE users SET username='SUSPENDED_$(date +%Y%m%d%H%M%S)_alice' WHERE username='alice'"
fi
mkdir -p "$R/caddy/suspended_domains"
for f in "$R"/caddy/domains/*.conf; do
	n=$(basename "$f" .conf)
	cp "$f" "$R/caddy/suspended_domains/$n.conf"
	sed "s/<DOMAIN_NAME>/$n/g; s/<SSL_PORT>/443/" "$R/caddy/templates/suspended_user.conf" > "$f"
done

step "opencli user-unsuspend alice (panel DB rename back, copy confs back; the suspended copies stay)"
if [ -n "$DB" ] && command -v sqlite3 >/dev/null; then
	db "$DB" "UPDATE users SET username='alice' WHERE username LIKE 'SUSPENDED_%_alice'"
fi
for f in "$R"/caddy/suspended_domains/*.conf; do
	cp "$f" "$R/caddy/domains/$(basename "$f")"
done

step "the Go panel, no opencli, no hook: alice sets a new password, shop.example moves to PHP 8.4"
if [ -n "$DB" ] && command -v sqlite3 >/dev/null; then
	db "$DB" "UPDATE users SET password = '\$2b\$12\$ZGVtb0hhc2hPbmx5Lk5vdEFSZWFsT25lLkF0QWxsLkF0QWxsLkF0QQ' WHERE username = 'alice';"
	db "$DB" "UPDATE domains SET php_version = '8.4' WHERE domain_url = 'shop.example';"
fi

step "opencli user-add dave (the Linux user and its panel folder, then the panel DB row, last)"
mkdir -p "$R/openpanel/core/users/dave"
if [ -n "$DB" ] && command -v sqlite3 >/dev/null; then
	db "$DB" "INSERT INTO users (username, password, email, plan_id, server) VALUES ('dave', 'x', 'dave@example.com', 1, 'dave');"
fi

step "opencli domains-delete shop.example"
rm -f "$R/caddy/domains/shop.example.conf"
sleep "${STEP_PAUSE:-1.5}"
