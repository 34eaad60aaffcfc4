#!/bin/sh
# The panel-DB sources of sources_db_common.sh on a real MariaDB server
# started here (tests/integration/mariadb_lib.sh): the driver returns
# other cell types (TINYINT, VARCHAR) than SQLite's.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/mariadb_lib.sh"

. "$top_srcdir/tests/integration/sources_db_common.sh"
sources_db_run
