#!/bin/sh
# The whole test suite from a fresh clone: installs what the tests need
# (Debian packages), builds with warnings as errors and runs `make check`
# (unit tests with cmocka, integration tests against real Caddy, BIND,
# MariaDB, GoAccess, ufw in its own namespaces).
set -eu
cd "$(dirname "$0")/.."
./contrib/deps.sh test
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q --enable-werror
make -j"$(nproc)" >/dev/null
make -j"$(nproc)" check
