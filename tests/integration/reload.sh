#!/bin/sh
# Reload that reloads: a rebuilt .so replaces the old one in the drop-in
# folder; after `plugins reload` the new code runs (its own output says
# build 2) and the old file is no longer mapped (/proc/PID/maps), inline
# and isolated.
. "$top_srcdir/tests/lib.sh"
need python3

for iso in inline process; do
	rm -rf "$T/state" "$T/dropin" "$T/crash.out" "$T/events.log"
	write_config "  crashplug:
    isolation: $iso
    settings:
      out: $T/crash.out"
	install_plugins log
	cp "$top_builddir/tests/unit/.libs/crashplug.so" "$T/dropin/"
	start_ophookd || exit 1
	pid=$OPHOOKD_PID
	[ $iso = process ] && pid=$(ctl --json plugins list | python3 -c '
import json, sys
print([p for p in json.load(sys.stdin) if p["name"] == "crashplug"][0]["pid"])')
	ctl emit test.ok a.example >/dev/null
	wait_for 10 grep -q 'build 1 .*a.example' "$T/crash.out"
	ok $? "$iso: build 1 runs"
	# a rebuilt .so, installed as admins do (new file, rename)
	cp "$top_builddir/tests/unit/.libs/crashplug2.so" "$T/dropin/.crashplug.tmp"
	mv "$T/dropin/.crashplug.tmp" "$T/dropin/crashplug.so"
	ino=$(stat -c %i "$T/dropin/crashplug.so")
	ctl plugins reload crashplug | sed 's/^/# /'
	ctl emit test.ok b.example >/dev/null
	wait_for 10 grep -q 'build 2 .*b.example' "$T/crash.out"
	ok $? "$iso: after reload the new code runs (its own output)"
	[ $iso = process ] && pid=$(grep 'build 2 .*b.example' "$T/crash.out" | sed 's/.* pid //')
	grep "crashplug.so" "/proc/$pid/maps" | sed 's/^/# /' | head -3
	! grep "crashplug.so" "/proc/$pid/maps" | grep -q deleted
	ok $? "$iso: no deleted (old) build mapped"
	# the drop-in scan may reload it once more meanwhile: allow a moment
	[ $iso = process ] && pid=$(ctl --json plugins list | python3 -c '
import json, sys
print([p for p in json.load(sys.stdin) if p["name"] == "crashplug"][0]["pid"])')
	wait_for 5 sh -c "grep crashplug.so /proc/$pid/maps | grep -q ' $ino '"
	ok $? "$iso: the new inode ($ino) is mapped"
	ctl --json plugins list | python3 -c "
import json, sys
p = [p for p in json.load(sys.stdin) if p['name'] == 'crashplug'][0]
sys.exit(0 if p['inode'] == $ino else 1)"
	ok $? "$iso: plugins list shows the running build's inode"
	stop_ophookd
done
done_testing
