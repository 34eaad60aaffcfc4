#!/bin/sh
# Integration test of the mailserver plugin: ophookd with the mailserver,
# bind9 and log plugins over a docker-mailserver config folder made from
# tests/integration/fixtures/mail/.  Checks: a removed domain's lines go
# and every other line stays byte for byte (against fixtures/mail/expected/);
# Debian's postmap accepts the access maps a suspension writes and answers
# REJECT for the user's domains; unsuspension gives the files back byte for
# byte; a new domain's DKIM key is published by the bind9 plugin in a real
# named and the TXT read back with dig matches the private key (openssl).
. "$top_srcdir/tests/lib.sh"

need postmap openssl named rndc rndc-confgen dig named-checkzone named-checkconf python3
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
for p in mailserver bind9; do
	[ -f "$PLUGIN_BUILD_DIRS/$p/.libs/$p.so" ] || skip_all "$p plugin not built"
done

FX="$top_srcdir/tests/integration/fixtures/mail"
MAIL="$T/mail"
mkdir -p "$MAIL" "$T/pf" "$T/bind/zones" "$T/named"
for f in postfix-accounts.cf postfix-virtual.cf dovecot-quotas.cf \
	postfix-send-access.cf postfix-receive-access.cf; do
	cp "$FX/$f" "$MAIL/$f"
done
chmod 0640 "$MAIL/postfix-accounts.cf"
chmod 0600 "$MAIL/dovecot-quotas.cf"
: > "$T/pf/main.cf" # postmap -c: an empty main.cf is enough

# --- named, as in tests/integration/bind9.sh ----------------------------------
DNS=$(free_port)
RNDC=$(free_port)
IP=192.0.2.45
CONF_LOCAL="$T/bind/named.conf.local"
: > "$CONF_LOCAL"
rndc-confgen -a -A hmac-sha256 -c "$T/rndc.key" -k rndc-key >/dev/null 2>&1 ||
	skip_all "rndc-confgen -a failed"
cat > "$T/named.conf" <<EOF
include "$T/rndc.key";
options {
	directory "$T/named";
	listen-on port $DNS { 127.0.0.1; };
	listen-on-v6 { none; };
	pid-file "$T/named/named.pid";
	session-keyfile "$T/named/session.key";
	managed-keys-directory "$T/named";
	allow-new-zones yes;
	recursion no;
	dnssec-validation no;
};
controls {
	inet 127.0.0.1 port $RNDC allow { 127.0.0.1; } keys { "rndc-key"; };
};
include "$CONF_LOCAL";
EOF
named -g -c "$T/named.conf" >"$T/named.log" 2>&1 &
cleanup_pid $!
if ! wait_for 30 rndc -s 127.0.0.1 -p "$RNDC" -k "$T/rndc.key" status; then
	tail -n 20 "$T/named.log" | sed 's/^/# named: /'
	echo "Bail out! named did not come up"
	exit 1
fi

write_config "  mailserver:
    settings:
      config_dir: $MAIL
  bind9:
    settings:
      zones_dir: $T/bind/zones
      named_conf_local: $CONF_LOCAL
      server_ip: $IP
      window_ms: 200
      rndc_argv: [\"rndc\", \"-s\", \"127.0.0.1\", \"-p\", \"$RNDC\", \"-k\", \"$T/rndc.key\"]"
install_plugins mailserver bind9 log
start_ophookd || { echo "Bail out! ophookd did not start"; exit 1; }

same() { cmp -s "$1" "$2"; }
has_event() { # TYPE SUBJECT
	grep "\"type\": *\"$1\"" "$T/events.log" 2>/dev/null |
		grep -q "\"subject\": *\"$2\""
}
# pmap FILE: postmap (Debian's postfix) builds FILE.db without a warning
pmap() {
	postmap -c "$T/pf" "hash:$1" 2>"$T/postmap.err" && [ ! -s "$T/postmap.err" ]
}
pquery() { postmap -c "$T/pf" -q "$1" "hash:$2"; }

# --- domain.removed -------------------------------------------------------------
ctl emit domain.removed gone.test domain=gone.test user=bob >/dev/null
ok "$(wait_for 30 same "$MAIL/postfix-accounts.cf" "$FX/expected/postfix-accounts.cf"; echo $?)" \
	"accounts: gone.test's lines removed, every other line byte for byte"
ok "$(wait_for 30 same "$MAIL/postfix-virtual.cf" "$FX/expected/postfix-virtual.cf"; echo $?)" \
	"aliases: gone.test's aliases, catch-all and continuation removed, the rest byte for byte"
ok "$(wait_for 30 same "$MAIL/dovecot-quotas.cf" "$FX/expected/dovecot-quotas.cf"; echo $?)" \
	"quotas: gone.test's lines removed, the rest byte for byte"
is "$(stat -c %a "$MAIL/postfix-accounts.cf") $(stat -c %a "$MAIL/dovecot-quotas.cf")" "640 600" \
	"modes kept"
ok "$(grep -q 'postfix-accounts.cf:4: no .|. after the address; line kept' "$T/ophookd.log"; echo $?)" \
	"the bad account line is reported with file:line"
ok "$(ls "$MAIL/ophook-backups" | grep -q '^postfix-accounts.cf\.[0-9]\{14\}$'; echo $?)" \
	"a backup of the old accounts file"
ok "$(same "$MAIL/ophook-backups/$(ls "$MAIL/ophook-backups" | grep '^postfix-accounts' | head -n 1)" \
	"$FX/postfix-accounts.cf"; echo $?)" "the backup holds the old content"

# --- DKIM, published by bind9 in a real named ---------------------------------------
ctl emit domain.added keep.test domain=keep.test user=bob >/dev/null
ctl emit domain.added dkim.test domain=dkim.test user=bob >/dev/null
ok "$(wait_for 60 has_event mail.dkim.created dkim.test; echo $?)" "mail.dkim.created emitted"
KEY="$MAIL/opendkim/keys/dkim.test/mail.private"
is "$(stat -c %a "$KEY" 2>/dev/null)" 600 "private key mode 0600"
ok "$(openssl pkey -in "$KEY" -check -noout >/dev/null 2>&1; echo $?)" "openssl accepts the private key"
WANT=$(openssl pkey -in "$KEY" -pubout -outform DER 2>/dev/null | base64 -w0)
txt() {
	dig @127.0.0.1 -p "$DNS" +short +time=2 +tries=1 mail._domainkey.dkim.test TXT 2>/dev/null |
		sed 's/" "//g; s/"//g'
}
has_txt() { txt | grep -q 'p='; }
ok "$(wait_for 60 has_txt; echo $?)" "named serves mail._domainkey.dkim.test TXT"
GOT=$(txt)
is "${GOT%%p=*}" "v=DKIM1; h=sha256; k=rsa; " "TXT starts with v=DKIM1; h=sha256; k=rsa;"
is "${GOT#*p=}" "$WANT" "TXT p= (read with dig) is the private key's public part (openssl)"
is "$(grep -c '^mail._domainkey.dkim.test ' "$MAIL/opendkim/KeyTable")" 1 "one KeyTable line"
is "$(grep -c '^\*@dkim.test mail._domainkey.dkim.test$' "$MAIL/opendkim/SigningTable")" 1 \
	"one SigningTable line"
ok "$(grep -q '^mail._domainkey	IN	TXT	( "v=DKIM1; h=sha256; k=rsa; "' \
	"$MAIL/opendkim/keys/dkim.test/mail.txt"; echo $?)" "mail.txt in opendkim-genkey's form"
# added again: the key stays
SUM=$(md5sum < "$KEY")
N=$(grep -c '"type": *"mail.dkim.created"' "$T/events.log")
ctl emit domain.added dkim.test domain=dkim.test user=bob >/dev/null
more_dkim() { [ "$(grep -c '"type": *"mail.dkim.created"' "$T/events.log")" -gt "$N" ]; }
ok "$(wait_for 30 more_dkim; echo $?)" "added again: mail.dkim.created again"
is "$(md5sum < "$KEY")" "$SUM" "added again: the key is kept"
is "$(grep -c '^mail._domainkey.dkim.test ' "$MAIL/opendkim/KeyTable")" 1 "still one KeyTable line"

# --- suspension through the access maps, checked with postmap ---------------------
ctl emit user.suspended user:bob user=bob >/dev/null
suspended() { grep -q '^# ophook:suspended:bob' "$MAIL/postfix-receive-access.cf"; }
ok "$(wait_for 30 suspended; echo $?)" "suspension marks the access maps"
ok "$(pmap "$MAIL/postfix-send-access.cf"; echo $?)" "postmap accepts postfix-send-access.cf"
ok "$(pmap "$MAIL/postfix-receive-access.cf"; echo $?)" "postmap accepts postfix-receive-access.cf"
is "$(pquery dkim.test "$MAIL/postfix-send-access.cf")" "REJECT Mail for this account is suspended" \
	"postmap -q: bob's domain is refused as sender"
is "$(pquery keep.test "$MAIL/postfix-receive-access.cf")" "REJECT Mail for this account is suspended" \
	"postmap -q: bob's domain is refused as recipient"
is "$(pquery spammer@keep.test "$MAIL/postfix-send-access.cf")" "REJECT" "the admin's own entry still answers"
ok "$(same "$MAIL/postfix-accounts.cf" "$FX/expected/postfix-accounts.cf"; echo $?)" \
	"passwords untouched"
ctl emit user.unsuspended user:bob user=bob >/dev/null
restored() {
	same "$MAIL/postfix-send-access.cf" "$FX/postfix-send-access.cf" &&
		same "$MAIL/postfix-receive-access.cf" "$FX/postfix-receive-access.cf"
}
ok "$(wait_for 30 restored; echo $?)" "unsuspension gives both access maps back byte for byte"

# --- hostile names ---------------------------------------------------------------
before=$(find "$MAIL" | sort)
# refused by ophookd at the socket, or by the plugin: either way the field
# is named
refused() { # FIELD OUTPUT
	echo "$2" | grep -q "$1" || grep -q "field $1" "$T/ophookd.log"
}
out=$(ctl emit domain.added evil.test 'domain=../../etc' user=bob 2>&1)
diag "emit domain=../../etc: $out"
ok "$(wait_for 30 refused domain "$out"; echo $?)" "hostile domain refused, the field named"
out=$(ctl emit user.suspended user:x 'user=../../x' 2>&1)
diag "emit user=../../x: $out"
ok "$(wait_for 30 refused user "$out"; echo $?)" "hostile user refused, the field named"
is "$(find "$MAIL" | sort)" "$before" "hostile names create no file"

done_testing
