#!/bin/sh
# Panel DB integration test on a real MariaDB server started here (own
# data dir, loopback, high port; tests/integration/mariadb_lib.sh): the
# shared scenarios of paneldb_common.sh.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/mariadb_lib.sh"

. "$top_srcdir/tests/integration/paneldb_common.sh"
paneldb_run
