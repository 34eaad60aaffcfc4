#!/bin/sh
# Panel DB integration test on SQLite (the embedded default): the shared
# scenarios of paneldb_common.sh against a panel.db seeded from
# contrib/demo/panel.sql.  "Losing" the database = the file moved away.
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
. "$top_srcdir/tests/lib.sh"
DB_NAME=sqlite

db_setup() {
	sqlite3 "$T/panel.db" < "$top_srcdir/contrib/demo/panel.sql" || return 1
	PANEL_YAML="  driver: sqlite
  path: $T/panel.db"
}
db_sql() { sqlite3 "$T/panel.db" "$1"; }
db_down() { mv "$T/panel.db" "$T/panel.db.away"; }
db_sql_offline() { sqlite3 "$T/panel.db.away" "$1"; }
db_up() { mv "$T/panel.db.away" "$T/panel.db"; }

. "$top_srcdir/tests/integration/paneldb_common.sh"
paneldb_run
