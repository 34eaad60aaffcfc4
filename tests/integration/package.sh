#!/bin/sh
# The Debian packages, end to end: built from a copy of the source in $T
# (the build tree is not touched), lintian (no errors; warnings are
# printed), installed into this system with dpkg, upgraded by a second build
# with a higher version, removed (the config stays) and purged (nothing of
# the packages left).  The one test allowed to write outside $T: every exit
# path purges what it installed (the EXIT trap).  Skipped when not root,
# when the Debian tools or build dependencies are missing, or when an ophook
# package is already installed here (it is never replaced).
. "$top_srcdir/tests/lib.sh"

need_root
need dpkg dpkg-deb dpkg-buildpackage dpkg-checkbuilddeps fakeroot lintian tar
[ -f "$top_srcdir/debian/control" ] || skip_all "no debian/ in the source"
for p in ophook ophook-dev; do
	if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'installed\|config-files'; then
		skip_all "package $p is already on this system: not replaced by a test"
	fi
done
(cd "$top_srcdir" && dpkg-checkbuilddeps -B >"$T/builddeps.log" 2>&1) ||
	skip_all "build dependencies missing: $(sed -n 's/.*Unmet build dependencies: //p' "$T/builddeps.log")"

# Restore the system on every exit path: purge what may have been
# installed (registered before the first dpkg -i).
cleanup_cmd "dpkg --purge ophook-dev ophook"

# ---- a copy of the source --------------------------------------------------
S="$T/src/ophook"
mkdir -p "$S"
if git -C "$top_srcdir" rev-parse --git-dir >/dev/null 2>&1; then
	# tracked and new files as they are in the work tree, nothing ignored
	(cd "$top_srcdir" && git ls-files -z -co --exclude-standard |
		xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
		tar --null -T - -cf -) | tar -xf - -C "$S"
else
	tar -C "$top_srcdir" --exclude='./build*' --exclude=./autom4te.cache \
		--exclude='*.o' --exclude='*.lo' --exclude=.libs -cf - . |
		tar -xf - -C "$S"
fi
[ -f "$S/debian/rules" ] && [ -f "$S/configure.ac" ]
ok $? "source copied to \$T/src (the build tree is not used)"

# ---- build -----------------------------------------------------------------
# nocheck: the unit tests run in this suite already
build() {
	(cd "$S" && DEB_BUILD_OPTIONS="nocheck parallel=2" \
		dpkg-buildpackage -us -uc -b "$@") >"$T/build.log" 2>&1
}
build
rc=$?
ok $rc "dpkg-buildpackage -us -uc -b"
if [ $rc -ne 0 ]; then
	tail -n 30 "$T/build.log" | sed 's/^/# /'
	done_testing
	exit 1
fi
V1=$(dpkg-parsechangelog -l "$S/debian/changelog" -S Version)
A=$(dpkg --print-architecture)
DEB1="$T/src/ophook_${V1}_$A.deb"
DEV1="$T/src/ophook-dev_${V1}_$A.deb"
[ -f "$DEB1" ] && [ -f "$DEV1" ]
ok $? "ophook_${V1}_$A.deb and ophook-dev_${V1}_$A.deb built"

# What each package ships where (checked without installing).
contents() { dpkg-deb -c "$1" | awk '{ p = $6; sub(/^\./, "", p); sub(/\/$/, "", p); print p }'; }
contents "$DEB1" > "$T/ophook.list"
contents "$DEV1" > "$T/ophook-dev.list"
for f in /usr/sbin/ophookd /usr/sbin/ophookctl \
	"/usr/lib/$(dpkg-architecture -qDEB_HOST_MULTIARCH)/ophook/plugins/caddy.so" \
	/usr/libexec/ophook/ophook-plugin-runner /usr/libexec/ophook/ophook-guard \
	/etc/openpanel/ophookd/ophookd.yaml /etc/logrotate.d/ophookd \
	/usr/share/man/man8/ophookd.8.gz /usr/share/man/man5/ophookd.yaml.5.gz \
	/usr/share/doc/ophook/README.md \
	/usr/share/doc/ophook/examples/hooks/README.md \
	/usr/share/doc/ophook/examples/hooks/notify-slack.lua \
	/usr/share/doc/ophook/examples/hooks/exec/domain.added.d/10-example \
	/usr/share/doc/ophook/plugins/caddy/README.md \
	/usr/share/doc/ophook/plugins/firewall/README.md \
	/usr/share/man/man7/ophook-events.7.gz \
	/usr/share/ophook/schemas/domain.added.json \
	/var/lib/ophookd; do
	grep -qxF "$f" "$T/ophook.list"
	ok $? "ophook ships $f"
done
grep -qxF /lib/systemd/system/ophookd.service "$T/ophook.list"
ok $? "ophook ships the systemd unit in /lib/systemd/system"
for f in /usr/include/ophook/plugin.h /usr/share/man/man3/ophook-plugin.3.gz \
	/usr/share/doc/ophook-dev/examples/plugin-skeleton/skeleton.c \
	/usr/share/doc/ophook-dev/examples/plugin-skeleton/Makefile; do
	grep -qxF "$f" "$T/ophook-dev.list"
	ok $? "ophook-dev ships $f"
done
grep -q '/pkgconfig/ophook-plugin.pc$' "$T/ophook-dev.list"
ok $? "ophook-dev ships ophook-plugin.pc"
! grep -q '\.la$' "$T/ophook.list" "$T/ophook-dev.list"
ok $? "no libtool .la files shipped"
dpkg-deb -e "$DEB1" "$T/ctrl1"
grep -qx /etc/openpanel/ophookd/ophookd.yaml "$T/ctrl1/conffiles"
ok $? "the default config is a conffile"
grep -q 'deb-systemd-helper' "$T/ctrl1/postinst"
ok $? "postinst enables the unit (dh_installsystemd)"

# ---- lintian ---------------------------------------------------------------
lintian --tag-display-limit 0 --show-overrides "$T/src/"*.changes \
	>"$T/lintian.log" 2>&1
is "$(grep -c '^E: ' "$T/lintian.log")" 0 "lintian: no errors"
diag "lintian: $(grep -c '^W: ' "$T/lintian.log") warning(s), overrides (debian/ophook.lintian-overrides) shown as O:"
grep '^[EWO]: ' "$T/lintian.log" | sed 's/^/# lintian /'

# Paths of the packages that exist before the install (/usr, /etc, ...):
# only the others must be gone after the purge.
cat "$T/ophook.list" "$T/ophook-dev.list" | sort -u > "$T/all.list"
while IFS= read -r f; do
	[ -e "$f" ] || [ -L "$f" ] && echo "$f"
done < "$T/all.list" > "$T/pre-existing.list"
for f in /var/lib/ophookd /var/log/ophookd /etc/openpanel/ophookd; do
	[ -e "$f" ] && echo "$f"
done >> "$T/pre-existing.list"

# ---- install ---------------------------------------------------------------
dpkg -i "$DEB1" "$DEV1" >"$T/install.log" 2>&1
ok $? "dpkg -i ophook ophook-dev"
is "$(dpkg-query -W -f='${Status} ${Version}' ophook)" "install ok installed $V1" "ophook $V1 installed"
out=$(/usr/sbin/ophookd --version 2>&1)
ok $? "ophookd --version runs"
case "$out" in *"${V1%%[-+~]*}"*) ok 0 "ophookd --version says ${V1%%[-+~]*}: $out" ;;
*) ok 1 "ophookd --version says ${V1%%[-+~]*}: $out" ;; esac
is "$(stat -c '%a %U' /var/lib/ophookd)" "700 root" "state dir /var/lib/ophookd made by the package, 0700 root"
[ -d /etc/openpanel/ophookd/plugins ]
ok $? "the admins' drop-in folder exists"
/usr/sbin/ophookd --check-config >"$T/check.log" 2>&1
ok $? "ophookd --check-config accepts the shipped config"
[ -s "$T/check.log" ] && sed 's/^/# /' "$T/check.log"
UNIT=$(dpkg -L ophook | grep '/systemd/system/ophookd.service$' | head -n 1)
if command -v systemd-analyze >/dev/null 2>&1; then
	out=$(systemd-analyze verify "$UNIT" 2>&1)
	ok $? "systemd-analyze verify $UNIT"
	[ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/# /'
	systemd-analyze security --offline=yes "$UNIT" 2>/dev/null |
		grep 'Overall exposure' | sed 's/^/# /'
fi
# the admin's edit of the config must survive the upgrade and the remove
echo "# edited by the admin" >> /etc/openpanel/ophookd/ophookd.yaml

# ---- upgrade: the same source, a higher version --------------------------
sed -i "1s/($V1)/($V1+1)/" "$S/debian/changelog"
V2=$(dpkg-parsechangelog -l "$S/debian/changelog" -S Version)
build -nc
ok $? "second build, version $V2"
dpkg -i --force-confold "$T/src/ophook_${V2}_$A.deb" "$T/src/ophook-dev_${V2}_$A.deb" \
	>"$T/upgrade.log" 2>&1
ok $? "dpkg -i $V2 over $V1"
is "$(dpkg-query -W -f='${Version}' ophook) $(dpkg-query -W -f='${Version}' ophook-dev)" \
	"$V2 $V2" "both packages upgraded to $V2"
tail -n 1 /etc/openpanel/ophookd/ophookd.yaml | grep -qx "# edited by the admin"
ok $? "the admin's config kept by the upgrade"
/usr/sbin/ophookd --version >/dev/null 2>&1
ok $? "ophookd runs after the upgrade"

# ---- remove: the config stays ----------------------------------------------
dpkg -r ophook-dev ophook >"$T/remove.log" 2>&1
ok $? "dpkg -r"
[ ! -e /usr/sbin/ophookd ]
ok $? "ophookd removed"
is "$(dpkg-query -W -f='${Status}' ophook 2>/dev/null)" "deinstall ok config-files" "ophook: config-files left"
grep -qx "# edited by the admin" /etc/openpanel/ophookd/ophookd.yaml
ok $? "the config survives remove"

# ---- purge: nothing left ---------------------------------------------------
dpkg -P ophook ophook-dev >"$T/purge.log" 2>&1
ok $? "dpkg -P"
dpkg-query -W ophook >/dev/null 2>&1
ok $([ $? -ne 0 ] && echo 0 || echo 1) "ophook unknown to dpkg after the purge"
{
	cat "$T/all.list"
	echo /var/lib/ophookd; echo /var/log/ophookd; echo /etc/openpanel/ophookd
} | sort -u | while IFS= read -r f; do
	grep -qxF "$f" "$T/pre-existing.list" && continue
	[ -e "$f" ] || [ -L "$f" ] && echo "$f"
done > "$T/left.list"
is "$(cat "$T/left.list")" "" "nothing of the packages left after the purge"
sed 's/^/# left: /' "$T/left.list"

done_testing
