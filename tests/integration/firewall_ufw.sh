#!/bin/sh
# Integration test of the firewall plugin with the REAL ufw and iptables,
# inside a network + mount namespace of its own: a holder process made with
# `unshare -n -m` bind-mounts temp copies over /etc/ufw, /lib/ufw and
# /etc/default/ufw (IPV6=no), and ophookd / ufw / iptables run in it through
# nsenter, so the host's rules and ufw files never change (checked: host
# `iptables -S` and `ip6tables -S` before and after are identical).
# ophookctl talks to the daemon from outside through the socket in $T.
. "$top_srcdir/tests/lib.sh"

need_root
need ufw iptables unshare nsenter
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/firewall/.libs/firewall.so" ] || skip_all "firewall plugin not built"
[ -d /etc/ufw ] && [ -d /lib/ufw ] && [ -f /etc/default/ufw ] || skip_all "ufw files missing"

iptables -S > "$T/host-before.v4" 2>&1
ip6tables -S > "$T/host-before.v6" 2>&1 || true
md5sum /etc/ufw/* /etc/default/ufw 2>/dev/null > "$T/host-ufw-before.md5"

cp -a /etc/ufw "$T/ufw"
cp -a /lib/ufw "$T/libufw"
cp /etc/default/ufw "$T/default-ufw"
sed -i 's/^IPV6=.*/IPV6=no/' "$T/default-ufw"

unshare -n -m sh -c '
	mount --make-rprivate / &&
	mount --bind "$1/ufw" /etc/ufw &&
	mount --bind "$1/libufw" /lib/ufw &&
	mount --bind "$1/default-ufw" /etc/default/ufw || exit 7
	ip link set lo up 2>/dev/null
	echo ready > "$1/ns-ready"
	exec sleep 100000' sh "$T" >"$T/ns.log" 2>&1 &
NS_PID=$!
cleanup_pid "$NS_PID"
wait_for 10 test -f "$T/ns-ready" || { cat "$T/ns.log"; skip_all "unshare -n -m failed"; }
NS="nsenter -t $NS_PID -n -m"

# Sanity: the namespace sees the copies, not the host files.
$NS sh -c 'grep -q "^IPV6=no" /etc/default/ufw'
ok $? "namespace has the temp ufw files"
$NS ufw --force enable >"$T/ufw-enable.log" 2>&1
ok $? "ufw --force enable inside the namespace"
$NS ufw allow 12345/tcp >/dev/null 2>&1
ok $? "admin rule 12345/tcp added by hand"

mkdir -p "$T/root/openpanel/conf"
printf '[DEFAULT]\nenabled_modules = domains,dns,ssl\n' > "$T/root/openpanel/conf/openpanel.config"

# `ufw status` rule lines, normalized: "SPEC ACTION FROM # COMMENT".
rules() {
	$NS ufw status 2>/dev/null | awk '
		/^--/ { go = 1; next }
		go && NF { $1 = $1; print }' | sort
}
has_rule() { rules | grep -qF -- "$1"; }
no_rule() { ! rules | grep -qF -- "$1"; }

# Start the daemon inside the namespace.
start_ns_ophookd() {
	enable_plugins "$T/ophookd.yaml"
	$NS "$OPHOOKD" -f -c "$T/ophookd.yaml" >>"$T/ophookd.log" 2>&1 &
	OPHOOKD_PID=$!
	cleanup_pid "$OPHOOKD_PID"
	wait_for 20 ctl status
}

# manage_ports off (the default): block and unblock work, and no port rule
# is added or removed: before, during and after, only the admin's rule and
# the block.
write_config "  firewall:
    settings:
      backend: ufw
      ports: {\"extra\": \"8443/tcp\"}"
install_plugins log firewall
start_ns_ophookd
ok $? "ophookd is up in the namespace (manage_ports off)"
ctl emit firewall.block 192.0.2.30 ip=192.0.2.30 reason=scan >/dev/null
wait_for 20 has_rule "Anywhere DENY 192.0.2.30 # ophook: block: scan"
ok $? "manage_ports off: block applied"
is "$(rules)" "12345/tcp ALLOW Anywhere
Anywhere DENY 192.0.2.30 # ophook: block: scan" "manage_ports off: no port rule added"
ctl emit firewall.unblock 192.0.2.30 ip=192.0.2.30 >/dev/null
wait_for 20 no_rule "192.0.2.30"
ok $? "manage_ports off: unblock removes it"
is "$(rules)" "12345/tcp ALLOW Anywhere" "manage_ports off: only the admin's rule left"
kill -TERM "$OPHOOKD_PID" 2>/dev/null; wait "$OPHOOKD_PID" 2>/dev/null

write_config "  firewall:
    settings:
      backend: ufw
      manage_ports: true
      ports: {\"extra\": \"8443/tcp\"}"
start_ns_ophookd
ok $? "ophookd is up in the namespace (manage_ports: true)"

wait_for 30 has_rule "53/udp ALLOW Anywhere # ophook: dns"
ok $? "converge at start opened 53/udp"

WANT="12345/tcp ALLOW Anywhere
21/tcp ALLOW Anywhere # ophook: ftp
2083/tcp ALLOW Anywhere # ophook: panel
2087/tcp ALLOW Anywhere # ophook: admin
22/tcp ALLOW Anywhere # ophook: ssh
40000:50000/tcp ALLOW Anywhere # ophook: ftp
53/tcp ALLOW Anywhere # ophook: dns
53/udp ALLOW Anywhere # ophook: dns
8443/tcp ALLOW Anywhere # ophook: extra"
wait_for 20 sh -c "[ \"\$($(printf '%s' "$NS") ufw status | grep -c ALLOW)\" -ge 9 ]"
is "$(rules)" "$(printf '%s\n' "$WANT" | sort)" "ufw status shows exactly the wanted rules + the admin's"

IPT=$($NS iptables -S)
for p in 22 2083 2087 21 8443 12345; do
	printf '%s\n' "$IPT" | grep -q -- "-A ufw-user-input -p tcp -m tcp --dport $p -j ACCEPT"
	ok $? "iptables: tcp $p accepted"
done
printf '%s\n' "$IPT" | grep -q -- "-A ufw-user-input -p tcp -m multiport --dports 40000:50000 -j ACCEPT"
ok $? "iptables: ftp passive range accepted"
printf '%s\n' "$IPT" | grep -q -- "-A ufw-user-input -p udp -m udp --dport 53 -j ACCEPT"
ok $? "iptables: udp 53 accepted"
printf '%s\n' "$IPT" | grep -q -- "--dport 25 "
ok $([ $? -ne 0 ] && echo 0 || echo 1) "iptables: no mail port without the mail module"

# Modules change: dns off, mail on; config.changed -> converge.
printf '[DEFAULT]\nenabled_modules = domains,ssl,mail\n' > "$T/root/openpanel/conf/openpanel.config"
ctl emit config.changed openpanel path="$T/root/openpanel/conf/openpanel.config" >/dev/null
ok $? "config.changed emitted"
wait_for 30 sh -c "! $NS ufw status | grep -q '^53/udp'"
ok $? "53/udp closed after dns left enabled_modules"
wait_for 30 has_rule "995/tcp ALLOW Anywhere # ophook: mail"
ok $? "mail ports opened"
has_rule "12345/tcp ALLOW Anywhere"
ok $? "admin's hand-added rule still there after converge"
for p in 25 465 587 993 143 110; do
	has_rule "$p/tcp ALLOW Anywhere # ophook: mail"
	ok $? "mail port $p open"
done

# A hostile IP is refused and never reaches ufw.
ctl emit firewall.block evil ip='1.2.3.4; rm -rf /' reason=x >/dev/null
ctl emit firewall.block 203.0.113.9 ip=203.0.113.9 reason='perm "block"' >/dev/null
wait_for 20 has_rule "Anywhere DENY 203.0.113.9 # ophook: block: perm _block_"
ok $? "permanent block applied with its comment"
no_rule "1.2.3.4"
ok $? "hostile ip not applied"
grep -q "field ip" "$T/ophookd.log"
ok $? "hostile ip refused naming the field (daemon log)"

# A temporary block expires by itself.  (ttl 6, not 2: the ttl runs from
# the event, before ufw applies the rule, and `ufw status` polls are slow
# on a loaded machine: a 2 s rule could come and go between two polls.)
ctl emit firewall.block 198.51.100.7 ip=198.51.100.7 reason=flood ttl=6 >/dev/null
wait_for 20 has_rule "Anywhere DENY 198.51.100.7 # ophook: block: flood"
ok $? "temporary block applied"
$NS iptables -S | grep -q -- "-A ufw-user-input -s 198.51.100.7/32 -j DROP"
ok $? "iptables drops 198.51.100.7"
wait_for 30 no_rule "198.51.100.7"
ok $? "temporary block gone after its ttl"
wait_for 20 grep -q '"firewall.unblocked"' "$T/events.log"
ok $? "firewall.unblocked emitted"
grep '"firewall.unblocked"' "$T/events.log" | grep -q '"expired"'
ok $? "firewall.unblocked says expired"
has_rule "Anywhere DENY 203.0.113.9"
ok $? "permanent block still there"

# Blocks that would lock the server out are refused (issue 16, finding 12):
# everything, the server's own address (an address on the
# namespace's veth), a /8 under the default min_prefix_v4 24, a ttl past
# max_ttl.
$NS ip link add ophd0 type veth peer name ophd1 &&
	$NS ip addr add 10.99.0.1/24 dev ophd0 && $NS ip link set ophd0 up
ok $? "veth with 10.99.0.1 in the namespace"
ctl emit firewall.block all ip=0.0.0.0/0 reason=all >/dev/null
ctl emit firewall.block own ip=10.99.0.1 reason=own >/dev/null
ctl emit firewall.block wide ip=10.0.0.0/8 reason=wide >/dev/null
ctl emit firewall.block huge ip=192.0.2.99 reason=huge ttl=99999999999 >/dev/null
wait_for 20 grep -q "firewall.block 0.0.0.0/0 refused: field ip: a /0 block is wider than min_prefix_v4" "$T/ophookd.log"
ok $? "0.0.0.0/0 refused, naming the field and the minimum"
wait_for 20 grep -q "firewall.block 10.99.0.1 refused: field ip: covers 10.99.0.1/32, an address of this server (ophd0)" "$T/ophookd.log"
ok $? "the server's own address refused"
wait_for 20 grep -q "firewall.block 10.0.0.0/8 refused: field ip: a /8 block" "$T/ophookd.log"
ok $? "/8 refused under the default min_prefix_v4"
wait_for 20 grep -q "firewall.block 192.0.2.99 refused: field ttl: '99999999999'" "$T/ophookd.log"
ok $? "huge ttl refused"
no_rule "0.0.0.0" && no_rule "10.99.0.1" && no_rule "10.0.0.0/8" && no_rule "192.0.2.99"
ok $? "none of them reached ufw"

# Each block keeps its own expiry: ttl 3600, then ttl 6 (see above).
ctl emit firewall.block 192.0.2.50 ip=192.0.2.50 reason=long ttl=3600 >/dev/null
wait_for 20 has_rule "Anywhere DENY 192.0.2.50"
ok $? "block with ttl 3600 applied"
ctl emit firewall.block 192.0.2.51 ip=192.0.2.51 reason=short ttl=6 >/dev/null
wait_for 20 has_rule "Anywhere DENY 192.0.2.51"
ok $? "block with ttl 6 applied after it"
wait_for 20 no_rule "192.0.2.51"
ok $? "the ttl 6 block is gone within 20 s"
has_rule "Anywhere DENY 192.0.2.50"
ok $? "the ttl 3600 block stays"

ctl emit firewall.unblock 203.0.113.9 ip=203.0.113.9 >/dev/null
wait_for 20 no_rule "203.0.113.9"
ok $? "unblock removes the permanent block"

kill -TERM "$OPHOOKD_PID" 2>/dev/null; wait "$OPHOOKD_PID" 2>/dev/null
kill -TERM "$NS_PID" 2>/dev/null; wait "$NS_PID" 2>/dev/null

iptables -S > "$T/host-after.v4" 2>&1
ip6tables -S > "$T/host-after.v6" 2>&1 || true
cmp -s "$T/host-before.v4" "$T/host-after.v4"
ok $? "host iptables -S unchanged"
cmp -s "$T/host-before.v6" "$T/host-after.v6"
ok $? "host ip6tables -S unchanged"
md5sum /etc/ufw/* /etc/default/ufw 2>/dev/null > "$T/host-ufw-after.md5"
cmp -s "$T/host-ufw-before.md5" "$T/host-ufw-after.md5"
ok $? "host ufw files unchanged"

done_testing
