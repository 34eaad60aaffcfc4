#!/bin/sh
# Installs the Debian packages ophook needs: `deps.sh build` for building,
# `deps.sh test` for building and running the whole test suite (real Caddy,
# BIND, MariaDB, GoAccess, ufw, postfix's postmap, Podman with runc and
# busybox-static for the container tests, quota (repquota, setquota,
# quotacheck) for the quota alerts, valgrind, clang, and
# debhelper/lintian for tests/integration/package.sh).
set -eu
BUILD="build-essential autoconf automake libtool pkg-config libuv1-dev
libyaml-dev liblua5.4-dev libsqlite3-dev libmariadb-dev libjansson-dev
libcurl4-openssl-dev libssl-dev libcmocka-dev libsystemd-dev sqlite3 openssl"
TEST="$BUILD caddy bind9 bind9-utils bind9-dnsutils mariadb-server
mariadb-client goaccess ufw iptables inotify-tools postfix python3 curl
valgrind clang libclang-rt-14-dev procps util-linux iproute2 jq
python3-jsonschema podman runc busybox-static quota
debhelper dh-autoreconf dpkg-dev fakeroot lintian systemd"
case "${1:-build}" in
build) PKGS=$BUILD ;;
test) PKGS=$TEST ;;
*) echo "usage: $0 build|test" >&2; exit 2 ;;
esac
missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# postfix asks no question with this preset
echo "postfix postfix/main_mailer_type select No configuration" |
	$SUDO debconf-set-selections 2>/dev/null || true
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
