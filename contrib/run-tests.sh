#!/bin/sh
# The whole test suite from a fresh clone: installs what the tests need
# (Debian packages), builds with warnings as errors and runs `make check`
# (unit tests with cmocka, integration tests against real Caddy, BIND,
# MariaDB, GoAccess, ufw in its own namespaces), then the events all of
# them journaled against the catalogue's schemas.
set -eu
cd "$(dirname "$0")/.."
./contrib/deps.sh test
[ -x configure ] || autoreconf -fi >/dev/null
mkdir -p build
cd build
[ -f Makefile ] || ../configure -q --enable-werror
make -j"$(nproc)" >/dev/null
# every integration test leaves its journal's events in tests/journals
# (tests/lib.sh); then the catalogue's test checks all of them against the
# schemas and that every event type was emitted by some test
rm -rf tests/journals
OPHOOK_JOURNALS_DIR=$PWD/tests/journals make -j"$(nproc)" check
OPHOOK_JOURNALS_DIR=$PWD/tests/journals OPHOOK_CATALOGUE_ALL=1 \
	make check TESTS=tests/integration/catalogue.sh
