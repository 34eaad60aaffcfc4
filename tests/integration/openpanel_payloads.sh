#!/bin/sh
# Payloads true to OpenPanel 2.x: what opencli and the Go panel write,
# replayed with the tools they use (written from reading the scripts), and
# the payloads ophook makes of it:
# - user-suspend / domains-suspend with the real templates' shape (their own
#   `# auto ssl` comment is no reason; `--comment=X` gives X)
# - the uid opencli appends to a postfix-accounts.cf line (no event) vs a
#   password change (one event)
# - a notification mail rotating mail_security_token (a fingerprint, the
#   token nowhere: journal, log plugin output, daemon log)
# - noise under core/users/<u>/ (activity.log, logintoken.txt, emails.yml)
# - custom certificates in both shapes.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need jq openssl
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"

watch_config
install_plugins log
R=$T/root
D=$R/caddy/domains
S=$R/caddy/suspended_domains
mkdir -p "$D" "$S" "$R/openpanel/core/users" "$R/openpanel/conf" \
	"$R/caddy/ssl/custom" "$R/caddy/templates"
cp "$FIX/suspended.conf" "$FIX/suspended_user.conf" "$R/caddy/templates/"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
render() { # render TEMPLATE DOMAIN > out
	sed -e "s|<DOMAIN_NAME>|$2|g" -e "s|<USER>|bob|g" \
	    -e "s|<SSL_PORT>|8443|g" -e "s|<NON_SSL_PORT>|8080|g" "$1"
}
# what domains-suspend does: copy the live conf aside, then the optional
# comment line and the rendered template over the live conf
domains_suspend() { # DOMAIN [COMMENT]
	[ -f "$S/$1.conf" ] && return 0 # "already suspended"
	cp "$D/$1.conf" "$S/"
	{
		[ -n "${2:-}" ] && printf '# comment: %s\n' "$2"
		sed -e "s|<DOMAIN_NAME>|$1|g" "$R/caddy/templates/suspended.conf"
	} > "$D/$1.conf"
}

mkdir -p "$R/openpanel/core/users/bob"
expect "user folder" "user.added user:bob"
for d in a.com b.com c.com d.com; do
	render "$FIX/domain.conf" $d > "$D/$d.conf"
done
expect "four domains" "domain.added a.com" "domain.added b.com" \
	"domain.added c.com" "domain.added d.com"

# user-suspend: every conf copied aside, then overwritten from the template
cp "$D/a.com.conf" "$S/"
sed -e "s|<DOMAIN_NAME>|a.com|g" "$R/caddy/templates/suspended_user.conf" \
	> "$D/a.com.conf"
expect "user-suspend" "domain.suspended a.com"
is "$(field_of domain.suspended reason)" user "reason user"
is "$(field_of domain.suspended comment)" null \
	"the template's '# auto ssl' is not a comment"
cp "$S/a.com.conf" "$D/a.com.conf"
expect "user-unsuspend" "domain.unsuspended a.com"

# domains-suspend --comment=X
domains_suspend b.com "unpaid invoice 42"
expect "domains-suspend --comment" "domain.suspended b.com"
is "$(field_of domain.suspended reason)" domain "reason domain"
is "$(field_of domain.suspended comment)" "unpaid invoice 42" \
	"comment from --comment only"
# without --comment
domains_suspend c.com
expect "domains-suspend" "domain.suspended c.com"
is "$(field_of domain.suspended comment)" null "no --comment, no comment"
# a comment with control characters (a customer's text in an admin's
# comment): never raw in the payload or the log
domains_suspend d.com "$(printf 'late\033[31m red\007')"
expect "domains-suspend, hostile comment" "domain.suspended d.com"
ok "$(field_of domain.suspended comment | grep -q 'late'; echo $?)" \
	"hostile comment kept"
ok "$(grep -q "$(printf '\033')" "$T/events.log" "$T/ophookd.log"; [ $? -ne 0 ]; echo $?)" \
	"no raw control character in the events or the log"

# mail: docker-mailserver's `setup email add` (lock file, append, unlock),
# then opencli's sed -i appending |uid to the line
M=$T/mail/config
: > "$M/addmailuser.lock"
echo 'info@a.com|{SHA512-CRYPT}$6$salt1$hashoneAAAA' >> "$M/postfix-accounts.cf"
rm -f "$M/addmailuser.lock"
expect "email add" "mail.account.added a.com"
sed -i '/^info@a.com|/ { s/^\([^|]*|[^|]*\).*/\1|1001/}' "$M/postfix-accounts.cf"
expect "opencli appends the uid: no event"
is "$(cat "$M/postfix-accounts.cf")" 'info@a.com|{SHA512-CRYPT}$6$salt1$hashoneAAAA|1001' \
	"the line has the uid"
# `setup email update`: the line rewritten with a new hash, then opencli's
# uid sed again
sed -i 's/^info@a.com|.*/info@a.com|{SHA512-CRYPT}$6$salt2$hashtwoBBBB/' "$M/postfix-accounts.cf"
sleep 0.2
sed -i '/^info@a.com|/ { s/^\([^|]*|[^|]*\).*/\1|1001/}' "$M/postfix-accounts.cf"
expect "password change: one event" "mail.account.changed a.com"
ok "$(grep -q 'hashone\|hashtwo' "$T/events.log"; [ $? -ne 0 ]; echo $?)" \
	"no password hash in any event"

# openpanel.config: created, then a notification mail rotates
# mail_security_token (sed -i, then Go's in-place rewrite)
cp "$FIX/openpanel.config" "$R/openpanel/conf/openpanel.config"
expect "openpanel.config created" "config.changed config"
TOK1=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 64)
TOK2=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 64)
sed -i "s/^mail_security_token=.*/mail_security_token=$TOK1/" \
	"$R/openpanel/conf/openpanel.config"
expect "token rotated (sed -i)" "config.changed config"
is "$(jq -c 'select(.type=="config.changed") | [.changes[] | [.key, .secret, ((.old_fingerprint // "")|test("^sha256:[0-9a-f]{8}$")), ((.new_fingerprint // "")|test("^sha256:[0-9a-f]{8}$")), has("old"), has("new")]]' "$T/events.log" | tail -n1)" \
	'[["SMTP.mail_security_token",true,true,true,false,false]]' \
	"config.changed: the key, secret, fingerprints, no values"
sed "s/^mail_security_token=.*/mail_security_token=$TOK2/" \
	"$R/openpanel/conf/openpanel.config" > "$T/cfg.new"
cat "$T/cfg.new" > "$R/openpanel/conf/openpanel.config"
expect "token rotated (rewrite in place)" "config.changed config"
sed -i "s/^mail_password=.*/mail_password=Hunter2Hunter2/" \
	"$R/openpanel/conf/openpanel.config"
expect "SMTP password set" "config.changed config"
sed -i "s/^login_ratelimit=.*/login_ratelimit=30/" \
	"$R/openpanel/conf/openpanel.config"
expect "an ordinary key" "config.changed config"
is "$(jq -c 'select(.type=="config.changed") | .changes' "$T/events.log" | tail -n1)" \
	'[{"key":"USERS.login_ratelimit","old":"20","new":"30"}]' \
	"ordinary keys keep old and new"
sleep 0.5
for tok in "$TOK1" "$TOK2" Hunter2Hunter2; do
	ok "$(grep -rqa "$tok" "$T/events.log" "$T/ophookd.log" "$T/state"; [ $? -ne 0 ]; echo $?)" \
		"secret ${tok%"${tok#????}"}... nowhere in the journal, the log plugin output or the daemon log"
done

# noise under core/users/<u>/: no events
U=$R/openpanel/core/users/bob
echo "$(date) bob logged in" >> "$U/activity.log"
echo "$(date) bob added a domain" >> "$U/activity.log"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$U/logintoken.txt"
: > "$U/emails.yml"
echo "info@a.com" >> "$U/emails.yml"
touch "$U/.lastlogin"
expect "activity.log, logintoken.txt, emails.yml, .lastlogin: no event"

# custom certificates: opencli domains-ssl (fullchain.pem + key.pem) and
# the panel's own host name (<h>/<h>.crt + .key)
make_cert a.com 0x4001 "$T/a.crt" "$T/a.key"
mkdir -p "$R/caddy/ssl/custom/a.com"
cp "$T/a.crt" "$R/caddy/ssl/custom/a.com/fullchain.pem"
cp "$T/a.key" "$R/caddy/ssl/custom/a.com/key.pem"
expect "domains-ssl custom" "cert.installed a.com"
make_cert panel.example.net 0x4002 "$T/p.crt" "$T/p.key"
mkdir -p "$R/caddy/ssl/custom/panel.example.net"
cp "$T/p.crt" "$R/caddy/ssl/custom/panel.example.net/panel.example.net.crt"
cp "$T/p.key" "$R/caddy/ssl/custom/panel.example.net/panel.example.net.key"
expect "host name certificate" "cert.installed panel.example.net"
is "$(field_of cert.installed serial) $(field_of cert.installed issuer)" \
	"4002 custom" "serial and issuer"
rm -rf "$R/caddy/ssl/custom/panel.example.net"
expect "host name certificate removed" "cert.removed panel.example.net"
stop_ophookd
done_testing
