#!/bin/sh
# The panel-DB sources (user.updated, domain.php_changed, site.added,
# site.removed, user.limits_changed) on SQLite, the embedded default: the
# scenarios of sources_db_common.sh against a panel.db seeded from
# contrib/demo/panel.sql.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
DB_NAME=sqlite

db_setup() {
	sqlite3 "$T/panel.db" < "$top_srcdir/contrib/demo/panel.sql" || return 1
	PANEL_YAML="  driver: sqlite
  path: $T/panel.db"
}
db_sql() { sqlite3 "$T/panel.db" "$1"; }

. "$top_srcdir/tests/integration/sources_db_common.sh"
sources_db_run
