#!/bin/sh
# make install into a DESTDIR: every file in its place, the systemd unit
# verifies, the plugin skeleton builds out of tree against the installed SDK
# and ophookd loads it and delivers to it.
. "$top_srcdir/tests/lib.sh"
need cc make pkg-config

D="$T/dest"
make -s -C "$top_builddir" install DESTDIR="$D" >"$T/install.log" 2>&1
ok $? "make install DESTDIR"
prefix=$(sed -n 's/^prefix=//p' "$top_builddir/ophook-plugin.pc")
libdir=$(sed -n 's/^libdir=//p' "$top_builddir/ophook-plugin.pc" | sed "s|\${exec_prefix}|$prefix|")
sysconf=$(grep -m1 '^sysconfdir = ' "$top_builddir/Makefile" | sed "s/^sysconfdir = //; s|\${prefix}|$prefix|")
for f in "$prefix/sbin/ophookd" "$prefix/sbin/ophookctl" \
	"$prefix/include/ophook/plugin.h" "$libdir/pkgconfig/ophook-plugin.pc" \
	"$libdir/ophook/plugins/log.so" \
	"$prefix/lib/systemd/system/ophookd.service" \
	"$sysconf/logrotate.d/ophookd" "$sysconf/openpanel/ophookd/ophookd.yaml"; do
	[ -f "$D$f" ]; ok $? "installed $f"
done
[ -x "$D$prefix/sbin/ophookd" ]; ok $? "ophookd is executable"
# plugins export exactly one symbol
syms=$(nm -D --defined-only "$D$libdir/ophook/plugins/log.so" | awk '$2 ~ /[TDBR]/ {print $3}' | grep -v '^_' | tr '\n' ' ')
is "$syms" "ophook_plugin " "log.so exports only ophook_plugin"

if command -v systemd-analyze >/dev/null 2>&1; then
	# verify with the binary where the unit says it is
	sed "s|$prefix/sbin/ophookd|$D$prefix/sbin/ophookd|g; /^Documentation=/d" \
		"$D$prefix/lib/systemd/system/ophookd.service" > "$T/ophookd.service"
	out=$(systemd-analyze verify "$T/ophookd.service" 2>&1)
	ok $? "systemd-analyze verify accepts the unit"
	[ -n "$out" ] && echo "$out" | sed 's/^/# /'
	grep -q '^Type=notify' "$T/ophookd.service"; ok $? "unit is Type=notify"
fi

# the skeleton, out of tree, against the installed SDK only
mkdir -p "$T/sk"
cp "$top_srcdir/contrib/plugin-skeleton/skeleton.c" "$T/sk/"
cflags=$(PKG_CONFIG_PATH="$D$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$D" pkg-config --cflags ophook-plugin)
ok $? "pkg-config finds ophook-plugin in the DESTDIR"
# shellcheck disable=SC2086
cc -shared -fPIC -Wall -Wextra -Werror $cflags -o "$T/sk/skeleton.so" "$T/sk/skeleton.c" -lpthread 2>"$T/sk/cc.log"
ok $? "skeleton builds out of tree: cc -shared -fPIC \$(pkg-config --cflags ophook-plugin)"
[ -s "$T/sk/cc.log" ] && sed 's/^/# /' "$T/sk/cc.log"

write_config "  skeleton:
    settings:
      path: $T/skeleton.out"
install_plugins log
OPHOOKD="$D$prefix/sbin/ophookd"
OPHOOKCTL="$D$prefix/sbin/ophookctl"
start_ophookd
ok $? "installed ophookd starts"
# dropped in while running: loaded without a restart
cp "$T/sk/skeleton.so" "$T/dropin/skeleton.so"
wait_for 15 grep -q "plugin skeleton loaded" "$T/ophookd.log"
ok $? "skeleton dropped into the admin dir is loaded without a restart"
ctl emit domain.added sk.example domain=sk.example >/dev/null
wait_for 10 grep -q "domain.added sk.example" "$T/skeleton.out"
ok $? "skeleton receives domain.added"
ctl --json status > "$T/status.json"
python3 - "$T/status.json" <<'PY'
import json, sys
st = json.load(open(sys.argv[1]))
names = sorted(p["name"] for p in st["plugins"])
sys.exit(0 if names == ["log", "skeleton"] else 1)
PY
ok $? "status lists plugins log and skeleton"
stop_ophookd
done_testing
