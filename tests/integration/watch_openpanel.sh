#!/bin/sh
# Replays what OpenPanel's scripts do to the tree, step by step, and checks
# the exact events the watcher produces.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need jq openssl
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"

watch_config
install_plugins log
R=$T/root
D=$R/caddy/domains
mkdir -p "$D" "$R/caddy/suspended_domains" "$R/caddy/deny" \
	"$R/openpanel/core/users" "$R/openpanel/conf" "$R/caddy/ssl"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
render() { # render TEMPLATE DOMAIN > out
	sed -e "s|<DOMAIN_NAME>|$2|g" -e "s|<USER>|bob|g" \
	    -e "s|<SSL_PORT>|8443|g" -e "s|<NON_SSL_PORT>|8080|g" "$1"
}

# user-add: the user folder first
mkdir -p "$R/openpanel/core/users/bob"
expect "user-add: user.added" "user.added user:bob"

# domains-add: conf rendered from the template, then sed -i edits
render "$FIX/domain.conf" example.com > "$D/example.com.conf"
expect "domains-add: domain.added" "domain.added example.com"
is "$(field_of domain.added path)" "$D/example.com.conf" "domain.added has the path"
sed -i 's|8080|8081|' "$D/example.com.conf"
expect "sed -i: one domain.updated" "domain.updated example.com"
sed -i 's|on_demand|on_demand\n        issuer internal|' "$D/example.com.conf"
expect "second sed -i: one domain.updated" "domain.updated example.com"
# an editor's save: the original renamed to a backup, the new file
# written slowly, the backup removed
mv "$D/example.com.conf" "$D/example.com.conf~"
exec 3> "$D/example.com.conf"
sleep 0.2
sed 's|8081|8082|' "$D/example.com.conf~" >&3
exec 3>&-
rm "$D/example.com.conf~"
expect "editor save: one domain.updated" "domain.updated example.com"
# truncate then rewrite in place, slowly (Go's os.WriteFile)
exec 3> "$D/example.com.conf"
sleep 0.2
printf 'example.com {\n    reverse_proxy http://127.0.0.1:8083\n}\n' >&3
exec 3>&-
expect "truncate and rewrite: one domain.updated" "domain.updated example.com"
# zone from the template and the named.conf.local line
sed -e 's/{ns1}/ns1.example.net/g' -e 's/{ns2}/ns2.example.net/g' \
    -e 's/{rpemail}/hostmaster.example.com/g' -e 's/{server_ip}/192.0.2.10/g' \
    "$FIX/zone_template.txt" > "$T/bind/zones/example.com.zone"
echo 'zone "example.com" IN { type master; file "/etc/bind/zones/example.com.zone"; };' \
	>> "$T/bind/named.conf.local"
expect "zone file and named.conf.local line" \
	"dns.zone.changed example.com" "dns.zone.changed example.com"
is "$(jq -r 'select(.type=="dns.zone.changed" and .serial != null) | .serial' "$T/events.log" | tail -n1)" \
	2026010101 "zone serial parsed"

# a zone edited in place (truncate + rewrite, serial bumped)
sed 's/2026010101/2026010102/' "$T/bind/zones/example.com.zone" > "$T/zone.new"
cat "$T/zone.new" > "$T/bind/zones/example.com.zone"
expect "zone edited in place" "dns.zone.changed example.com"
is "$(field_of dns.zone.changed serial) $(field_of dns.zone.changed old_serial)" \
	"2026010102 2026010101" "serial and old serial"

# user-suspend: copy to suspended_domains, overwrite from the template
cp "$D/example.com.conf" "$R/caddy/suspended_domains/example.com.conf"
render "$FIX/suspended_user.conf" example.com > "$D/example.com.conf"
expect "user-suspend: domain.suspended" "domain.suspended example.com"
is "$(field_of domain.suspended reason)" user "reason user"
is "$(field_of domain.suspended comment)" null \
	"no comment from the template's own comment lines"
# user-unsuspend: copy back; the suspended_domains copy stays
cp "$R/caddy/suspended_domains/example.com.conf" "$D/example.com.conf"
expect "user-unsuspend: domain.unsuspended" "domain.unsuspended example.com"
ok "$([ -f "$R/caddy/suspended_domains/example.com.conf" ]; echo $?)" \
	"suspended copy stays"
# domain suspend (reason domain) and back
render "$FIX/suspended.conf" example.com > "$D/example.com.conf"
expect "domain suspend" "domain.suspended example.com"
is "$(field_of domain.suspended reason)" domain "reason domain"
cp "$R/caddy/suspended_domains/example.com.conf" "$D/example.com.conf"
expect "domain unsuspend" "domain.unsuspended example.com"

# custom SSL install
make_cert example.com 0x1001 "$T/c1.crt" "$T/c1.key"
mkdir -p "$R/caddy/ssl/custom/example.com"
cp "$T/c1.crt" "$R/caddy/ssl/custom/example.com/fullchain.pem"
cp "$T/c1.key" "$R/caddy/ssl/custom/example.com/key.pem"
expect "custom SSL: cert.installed" "cert.installed example.com"
is "$(field_of cert.installed serial)" 1001 "custom cert serial"

# Caddy: a new certificate folder with .key, .crt, .json by temp + rename
CD=$R/caddy/ssl/certificates/local/example.com
make_cert example.com 0x2001 "$T/c2.crt" "$T/c2.key"
echo '{"sans":["example.com"],"issuer_data":{"n":1}}' > "$T/c2.json"
mkdir -p "$CD" && caddy_put "$T/c2.key" "$CD/example.com.key" &&
	caddy_put "$T/c2.crt" "$CD/example.com.crt" &&
	caddy_put "$T/c2.json" "$CD/example.com.json"
expect "caddy first certificate: cert.issued" "cert.issued example.com"
is "$(field_of cert.issued serial) $(field_of cert.issued issuer)" "2001 local" \
	"issued serial and issuer"
is "$(jq -r 'select(.type=="cert.issued") | .names | join(",")' "$T/events.log")" \
	"example.com,www.example.com" "names from the SANs"
# renewal with a new serial
make_cert example.com 0x2002 "$T/c3.crt" "$T/c3.key"
echo '{"sans":["example.com"],"issuer_data":{"n":2}}' > "$T/c3.json"
caddy_put "$T/c3.key" "$CD/example.com.key"
caddy_put "$T/c3.crt" "$CD/example.com.crt"
caddy_put "$T/c3.json" "$CD/example.com.json"
expect "caddy renewal: cert.renewed" "cert.renewed example.com"
is "$(field_of cert.renewed serial) $(field_of cert.renewed old_serial)" \
	"2002 2001" "renewed serial and old serial"
# .json rewritten with the same certificate: nothing
echo '{"sans":["example.com"],"issuer_data":{"n":3}}' > "$T/c4.json"
caddy_put "$T/c4.json" "$CD/example.com.json"
expect "same certificate: no event"

# Caddy: a wildcard certificate (folder wildcard_.example.com)
WD=$R/caddy/ssl/certificates/local/wildcard_.example.com
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/w1.key" -out "$T/w1.crt" -days 90 -subj "/CN=*.example.com" \
	-addext "subjectAltName=DNS:*.example.com" -set_serial 0x3001 >/dev/null 2>&1
echo '{"sans":["*.example.com"]}' > "$T/w1.json"
mkdir -p "$WD" && caddy_put "$T/w1.key" "$WD/wildcard_.example.com.key" &&
	caddy_put "$T/w1.crt" "$WD/wildcard_.example.com.crt" &&
	caddy_put "$T/w1.json" "$WD/wildcard_.example.com.json"
expect "wildcard certificate: cert.issued" "cert.issued *.example.com"
is "$(jq -r 'select(.type=="cert.issued") | [.serial, .domain, .wildcard, (.names | join(","))] | join(" ")' "$T/events.log" | tail -n1)" \
	"3001 example.com true *.example.com" "wildcard serial, domain and names"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	-keyout "$T/w2.key" -out "$T/w2.crt" -days 90 -subj "/CN=*.example.com" \
	-addext "subjectAltName=DNS:*.example.com" -set_serial 0x3002 >/dev/null 2>&1
caddy_put "$T/w2.key" "$WD/wildcard_.example.com.key"
caddy_put "$T/w2.crt" "$WD/wildcard_.example.com.crt"
caddy_put "$T/w1.json" "$WD/wildcard_.example.com.json"
expect "wildcard renewal: cert.renewed" "cert.renewed *.example.com"
is "$(field_of cert.renewed serial) $(field_of cert.renewed old_serial)" \
	"3002 3001" "wildcard renewed serial and old serial"

# certificate removal: the .crt deleted, then its folder; a whole folder
rm "$CD/example.com.crt"
expect "caddy .crt deleted: cert.removed" "cert.removed example.com"
is "$(field_of cert.removed serial) $(field_of cert.removed issuer)" \
	"2002 local" "removed serial and issuer"
rm -rf "$CD"
expect "then its folder: nothing more"
rm -rf "$WD"
expect "wildcard folder deleted: cert.removed" "cert.removed *.example.com"
is "$(field_of cert.removed serial)" 3002 "removed wildcard serial"
rm -rf "$R/caddy/ssl/custom/example.com"
expect "custom certificate folder deleted: cert.removed" \
	"cert.removed example.com"
is "$(field_of cert.removed serial) $(field_of cert.removed issuer)" \
	"1001 custom" "removed custom serial and issuer"

# mail accounts: lines added and removed (docker-mailserver setup.sh)
M=$T/mail/config
echo 'info@example.com|{SHA512-CRYPT}$6$abc$secrethashone' >> "$M/postfix-accounts.cf"
expect "mail account added" "mail.account.added example.com"
echo 'sales@example.com|{SHA512-CRYPT}$6$abc$secrethashtwo' >> "$M/postfix-accounts.cf"
expect "second account added" "mail.account.added example.com"
sed -i '/^info@/d' "$M/postfix-accounts.cf"
expect "mail account removed" "mail.account.removed example.com"
is "$(field_of mail.account.removed address)" info@example.com "removed address"
ok "$(grep -q secrethash "$T/events.log"; [ $? = 1 ]; echo $?)" \
	"no password hash in any event"
echo 'all@example.com info@example.com,sales@example.com' >> "$M/postfix-virtual.cf"
expect "alias added" "mail.alias.added example.com"

# mail quotas (docker-mailserver dovecot-quotas.cf, `addr:quota`)
echo 'sales@example.com:1G' >> "$M/dovecot-quotas.cf"
expect "quota set" "mail.quota.changed example.com"
is "$(jq -r 'select(.type=="mail.quota.changed") | [.address, .quota, .old_quota] | tostring' "$T/events.log" | tail -n1)" \
	'["sales@example.com","1G",null]' "quota set: address, quota, no old quota"
sed -i 's/:1G$/:2G/' "$M/dovecot-quotas.cf"
echo 'boss@example.com:5G' >> "$M/dovecot-quotas.cf"
expect "quota changed and another set" "mail.quota.changed example.com" \
	"mail.quota.changed example.com"
is "$(jq -c 'select(.type=="mail.quota.changed" and .address=="sales@example.com") | [.quota, .old_quota]' "$T/events.log" | tail -n1)" \
	'["2G","1G"]' "changed quota with old quota"
sed -i '/^boss@/d' "$M/dovecot-quotas.cf"
expect "quota line removed" "mail.quota.changed example.com"
is "$(jq -c 'select(.type=="mail.quota.changed") | [.address, .quota, .old_quota]' "$T/events.log" | tail -n1)" \
	'["boss@example.com",null,"5G"]' "removed quota"

# per-user deny list
printf '@blocked {\n    remote_ip 203.0.113.7 198.51.100.0/24\n}\nrespond @blocked 403\n' \
	> "$R/caddy/deny/bob.ips"
expect "deny list" "user.denylist.changed user:bob"
is "$(jq -c 'select(.type=="user.denylist.changed") | .added' "$T/events.log")" \
	'["198.51.100.0/24","203.0.113.7"]' "added IPs"

# panel config
cp "$FIX/openpanel.config" "$R/openpanel/conf/openpanel.config"
expect "openpanel.config created" "config.changed config"
sed -i 's/ns1.example.net/ns9.example.net/' "$R/openpanel/conf/openpanel.config"
expect "openpanel.config edited" "config.changed config"
is "$(jq -c 'select(.type=="config.changed") | .changes' "$T/events.log" | tail -n1)" \
	'[{"key":"DEFAULT.ns1","old":"ns1.example.net","new":"ns9.example.net"}]' \
	"changed key with old and new"

# things that give no event: swap files, hostile names, symlinks
touch "$D/.example.com.conf.swp" "$D/example.com.conf~" "$D/sedAb12Cd"
echo x > "$D/a;b.com.conf"
ln -s /etc/passwd "$D/evil.com.conf"
expect "temp files, hostile names and symlinks: no event"
wait_for 5 grep -q "evil.com.conf is a symlink" "$T/ophookd.log"
ok $? "symlinked conf reported in the log"
grep -q 'a;b.com.conf: ignored' "$T/ophookd.log"
ok $? "hostile name reported in the log"
rm -f "$D/evil.com.conf" "$D/a;b.com.conf" "$D/.example.com.conf.swp" \
	"$D/example.com.conf~" "$D/sedAb12Cd"

# domains-delete: conf, zone file, named.conf.local line
rm "$D/example.com.conf"
rm "$T/bind/zones/example.com.zone"
sed -i '/"example.com"/d' "$T/bind/named.conf.local"
expect "domains-delete" "domain.removed example.com" \
	"dns.zone.changed example.com" "dns.zone.changed example.com"
# user-delete
rm -rf "$R/openpanel/core/users/bob"
expect "user-delete: user.removed" "user.removed user:bob"

# a folder moved into the tree is scanned; moved out gives removals
mkdir -p "$T/staging/carol"
mv "$T/staging/carol" "$R/openpanel/core/users/carol"
expect "user folder moved in" "user.added user:carol"
mv "$R/openpanel/core/users/carol" "$T/staging/carol2"
expect "user folder moved out" "user.removed user:carol"
is "$(jq -r .source "$T/events.log" | sort -u | tr '\n' ' ')" "inotify " \
	"every event came from inotify"
done_testing
