#!/bin/sh
# Extra roots that do not exist yet are picked up when they appear; a root
# that is replaced is watched again and reconciled.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need jq
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"

write_config
install_plugins log
# extra roots: none of them exists yet
sed -i "s|^watch_extra: \[\]|watch_extra: [\"$T/bind/zones\", \"$T/bind/named.conf.local\", \"$T/mail/docker-data/dms/config\"]|" \
	"$T/ophookd.yaml"
R=$T/root
mkdir -p "$R/caddy/domains"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }

mkdir -p "$T/mail/docker-data/dms/config"
echo 'info@example.com|{SHA512-CRYPT}$6$x$y' > "$T/mail/docker-data/dms/config/postfix-accounts.cf"
expect "mail config folder created later: picked up" "mail.account.added example.com"
mkdir -p "$T/bind"
echo 'zone "example.com" IN { type master; file "x"; };' > "$T/bind/named.conf.local"
expect "named.conf.local created later: picked up" "dns.zone.changed example.com"
mkdir "$T/bind/zones"
echo '@ IN SOA ns1. h. ( 7 1 1 1 1 )' > "$T/bind/zones/example.com.zone"
expect "zones folder created later: picked up" "dns.zone.changed example.com"
is "$(field_of dns.zone.changed serial)" 7 "zone serial"

# a folder tree made at once inside the root: every level watched, files
# made before the watches landed are seen (many users at once: a folder
# made while its parent's walk is under way was once watched unscanned)
U=$R/openpanel/core/users
MORE=$(seq -f 'u%02g' 1 30)
mkdir -p "$U/erin" "$U/fred" $(for u in $MORE; do echo "$U/$u"; done)
expect "nested folders made at once" "user.added user:erin" "user.added user:fred" \
	"$(for u in $MORE; do echo "user.added user:$u"; done)"

# the mail folder removed and made again
rm -rf "$T/mail/docker-data"
expect "mail folder removed: accounts removed" "mail.account.removed example.com"
mkdir -p "$T/mail/docker-data/dms/config"
echo 'info@example.com|{SHA512-CRYPT}$6$x$y' > "$T/mail/docker-data/dms/config/postfix-accounts.cf"
expect "mail folder made again" "mail.account.added example.com"

# the whole root replaced (moved aside, a new one in place)
printf 'a.example.com {\n reverse_proxy x\n}\n' > "$R/caddy/domains/a.example.com.conf"
expect "a domain" "domain.added a.example.com"
mkdir -p "$T/newroot/caddy/domains"
printf 'b.example.com {\n reverse_proxy x\n}\n' > "$T/newroot/caddy/domains/b.example.com.conf"
mv "$R" "$T/oldroot"
mv "$T/newroot" "$R"
expect "root replaced: reconciled" "domain.removed a.example.com" \
	"domain.added b.example.com" "user.removed user:erin" "user.removed user:fred" \
	"$(for u in $MORE; do echo "user.removed user:$u"; done)"
# the old tree is not watched any more
echo x >> "$T/oldroot/caddy/domains/a.example.com.conf"
printf 'c.example.com {\n reverse_proxy x\n}\n' > "$R/caddy/domains/c.example.com.conf"
expect "old tree forgotten, new root watched" "domain.added c.example.com"
done_testing
