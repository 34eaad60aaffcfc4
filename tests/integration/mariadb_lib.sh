# A real MariaDB server for the panel DB tests (sourced after tests/lib.sh):
# its own data dir under $T, loopback, a high port, the panel schema of
# contrib/demo/panel.sql.  ophookd reads it as OpenPanel does, through a
# my.cnf-style option file ([client] user, password, host, port) for a
# read-only account; the test writes as root over the Unix socket.
# Defines the db_* functions paneldb_common.sh and sources_db_common.sh
# expect; "losing" the database = mariadbd killed (SIGKILL) and started
# again.
DB_NAME=mariadb
need mariadbd mariadb-install-db mariadb

MDB_PID=""
mdb_start() {
	mariadbd --no-defaults --datadir="$T/db" --socket="$T/db.sock" \
		--port="$MDB_PORT" --bind-address=127.0.0.1 --user="$(id -un)" \
		--pid-file="$T/db.pid" --log-error="$T/db.err" --skip-log-bin \
		--innodb-buffer-pool-size=16M --skip-name-resolve \
		--max-connections=50 2>>"$T/db.stderr" &
	MDB_PID=$!
	cleanup_pid "$MDB_PID"
	wait_for 60 mariadb --no-defaults -uroot --socket="$T/db.sock" \
		-e "SELECT 1"
}
db_setup() {
	mariadb-install-db --no-defaults --datadir="$T/db" \
		--auth-root-authentication-method=normal --skip-test-db \
		--user="$(id -un)" >"$T/db-install.log" 2>&1 || {
		sed 's/^/# /' "$T/db-install.log"; return 1; }
	MDB_PORT=$(free_port)
	mdb_start || { sed 's/^/# /' "$T/db.err"; return 1; }
	pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	mariadb --no-defaults -uroot --socket="$T/db.sock" -e "
		CREATE DATABASE panel;
		CREATE USER 'ophook'@'127.0.0.1' IDENTIFIED BY '$pw';
		GRANT SELECT ON panel.* TO 'ophook'@'127.0.0.1';" || return 1
	mariadb --no-defaults -uroot --socket="$T/db.sock" panel \
		< "$top_srcdir/contrib/demo/panel.sql" || return 1
	# the shape of OpenPanel 2.x's /etc/openpanel/mysql/host_my.cnf
	cat > "$T/host_my.cnf" <<CNF
[client]
user = ophook
database = panel
password = $pw
host = 127.0.0.1
protocol = tcp
port = $MDB_PORT
CNF
	chmod 600 "$T/host_my.cnf"
	PANEL_YAML="  driver: mysql
  option_file: $T/host_my.cnf
  database: panel"
}
db_sql() {
	mariadb --no-defaults -uroot --socket="$T/db.sock" panel -e "$1"
}
db_down() {
	kill -KILL "$MDB_PID"
	wait "$MDB_PID" 2>/dev/null
	return 0
}
db_sql_offline() { return 1; }
db_up() { mdb_start; }
