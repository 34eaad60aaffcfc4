#!/bin/sh
# Integration test of the firewall plugin's csf backend (csf is not
# packaged): a fake csf script records its argv, one call a line, arguments
# separated by '|'; the csf.conf fixture is edited by the plugin and checked
# line by line (only TCP_IN / TCP_OUT / UDP_IN / UDP_OUT may change).
. "$top_srcdir/tests/lib.sh"

[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
[ -f "$PLUGIN_BUILD_DIRS/firewall/.libs/firewall.so" ] || skip_all "firewall plugin not built"

FIX="$top_srcdir/tests/integration/fixtures/csf/csf.conf"
mkdir -p "$T/csf" "$T/root/openpanel/conf"
cp "$FIX" "$T/csf/csf.conf"
chmod 0600 "$T/csf/csf.conf"
: > "$T/csf/csf.deny"
printf '#!/bin/sh\n(IFS="|"; echo "$*") >> "%s/csf.argv"\nexit 0\n' "$T" > "$T/fakecsf"
chmod +x "$T/fakecsf"
printf '[DEFAULT]\nenabled_modules = domains,dns\n' > "$T/root/openpanel/conf/openpanel.config"

# manage_ports off (the default): block and unblock go through csf, and
# no port changes: csf.conf stays byte for byte, csf -r never runs.
write_config "  firewall:
    settings:
      backend: csf
      csf_argv: [\"$T/fakecsf\"]
      csf_conf: $T/csf/csf.conf
      csf_deny: $T/csf/csf.deny
      ports: {\"dns-alt\": \"5353/udp\"}"
install_plugins log firewall
start_ophookd
ok $? "ophookd is up (manage_ports off)"
ctl emit firewall.block 192.0.2.20 ip=192.0.2.20 reason=scan >/dev/null
ctl emit firewall.unblock 192.0.2.20 ip=192.0.2.20 >/dev/null
wait_for 20 grep -q -- "-dr|192.0.2.20" "$T/csf.argv"
ok $? "manage_ports off: block and unblock ran"
is "$(cat "$T/csf.argv")" '-d|192.0.2.20|ophook: scan
-dr|192.0.2.20' "manage_ports off: only the block and the unblock reached csf (no -r)"
cmp -s "$FIX" "$T/csf/csf.conf"
ok $? "manage_ports off: csf.conf unchanged"
stop_ophookd
: > "$T/csf.argv"

write_config "  firewall:
    settings:
      backend: csf
      manage_ports: true
      csf_argv: [\"$T/fakecsf\"]
      csf_conf: $T/csf/csf.conf
      csf_deny: $T/csf/csf.deny
      ports: {\"dns-alt\": \"5353/udp\"}"
start_ophookd
ok $? "ophookd is up (manage_ports: true)"

wait_for 20 grep -qx -- "-r" "$T/csf.argv"
ok $? "csf -r after the csf.conf edit"

# Lines that differ between fixture and result, as "old => new".
diff_lines() {
	diff "$FIX" "$T/csf/csf.conf" | awk '/^</ { sub(/^< /, ""); o[++n] = $0 }
		/^>/ { sub(/^> /, ""); m[++k] = $0 }
		END { for (i = 1; i <= n || i <= k; i++) print o[i] " => " m[i] }'
}
is "$(diff_lines)" 'TCP_IN = "20,21,22,25,53,80,110,143,443,465,587,993,995,8443" => TCP_IN = "20,21,22,25,53,80,110,143,443,465,587,993,995,8443,2083,2087,40000:50000"
TCP_OUT = "20,21,22,25,53,80,110,113,443,587,993,995" => TCP_OUT = "20,21,22,25,53,80,110,113,443,587,993,995,2083,2087,40000:50000"
UDP_IN = "20,21,53,80,443" => UDP_IN = "20,21,53,80,443,5353"
UDP_OUT = "20,21,53,113,123" => UDP_OUT = "20,21,53,113,123,5353"' "only the port lines changed, admin ports kept"
[ "$(wc -l < "$FIX")" = "$(wc -l < "$T/csf/csf.conf")" ]
ok $? "same number of lines"
is "$(stat -c %a "$T/csf/csf.conf")" 600 "csf.conf mode kept"
grep -rq '"TCP_IN"' "$T/state"
ok $? "ophook-added ports recorded in the state dir"

# The extra port goes away: 5353 removed, the fixture's ports stay.
: > "$T/csf.argv"
stop_ophookd
write_config "  firewall:
    settings:
      backend: csf
      manage_ports: true
      csf_argv: [\"$T/fakecsf\"]
      csf_conf: $T/csf/csf.conf
      csf_deny: $T/csf/csf.deny"
start_ophookd
wait_for 20 grep -qx -- "-r" "$T/csf.argv"
ok $? "csf -r after removing 5353"
grep -q '^UDP_IN = "20,21,53,80,443"$' "$T/csf/csf.conf"
ok $? "UDP_IN back to the admin's list"
grep -q '^TCP_IN = "20,21,22,25,53,80,110,143,443,465,587,993,995,8443,2083,2087,40000:50000"$' "$T/csf/csf.conf"
ok $? "TCP_IN keeps ophook's wanted ports and the admin's"

ctl emit firewall.block 192.0.2.10 ip=192.0.2.10 reason=brute ttl=3600 >/dev/null
ctl emit firewall.block 2001:db8::/64 ip=2001:db8::/64 reason='spam "net"' >/dev/null
ctl emit firewall.block evil ip='$(id)' reason=x >/dev/null
ctl emit firewall.unblock 2001:db8::/64 ip=2001:db8::/64 >/dev/null
wait_for 20 grep -q -- "-dr|2001:db8::/64" "$T/csf.argv"
ok $? "unblock ran"
is "$(grep -v -- '^-r$' "$T/csf.argv")" '-td|192.0.2.10|3600|ophook: brute
-d|2001:db8::/64|ophook: spam _net_
-dr|2001:db8::/64' "csf argv for temp block, permanent block, unblock; hostile ip never reached csf"
grep -q "field ip" "$T/ophookd.log"
ok $? "hostile ip refused naming the field"

# Lockouts refused (issue 16, finding 12); each block's own expiry.
: > "$T/csf.argv"
ctl emit firewall.block all ip=0.0.0.0/0 reason=all >/dev/null
ctl emit firewall.block lo ip=127.0.0.1 reason=lo >/dev/null
ctl emit firewall.block v6 ip=2001:db8::/32 reason=wide >/dev/null
ctl emit firewall.block huge ip=192.0.2.99 reason=huge ttl=31536001 >/dev/null
ctl emit firewall.block 192.0.2.11 ip=192.0.2.11 reason=short ttl=2 >/dev/null
wait_for 20 grep -q -- "-td|192.0.2.11|2|" "$T/csf.argv"
ok $? "ttl 2 block applied after the ttl 3600 one"
grep -q "firewall.block 0.0.0.0/0 refused: field ip: a /0 block" "$T/ophookd.log" &&
	grep -q "firewall.block 127.0.0.1 refused: field ip: covers 127.0.0.0/8 (loopback)" "$T/ophookd.log" &&
	grep -q "firewall.block 2001:db8::/32 refused: field ip: a /32 block is wider than min_prefix_v6 (/64)" "$T/ophookd.log" &&
	grep -q "firewall.block 192.0.2.99 refused: field ttl:" "$T/ophookd.log"
ok $? "0.0.0.0/0, loopback, a /32 IPv6 and a huge ttl refused naming the field"
is "$(grep -c -e '0.0.0.0' -e '127.0.0.1' -e '2001:db8::/32' -e '192.0.2.99' "$T/csf.argv")" 0 \
	"none of them reached csf"
wait_for 15 grep -q -- "-tr|192.0.2.11" "$T/csf.argv"
ok $? "the ttl 2 block is removed within 15 s"
grep -q -- "-tr|192.0.2.10" "$T/csf.argv"
ok $([ $? -ne 0 ] && echo 0 || echo 1) "the ttl 3600 block stays"

done_testing
