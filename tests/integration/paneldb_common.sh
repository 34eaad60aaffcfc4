# Shared body of the panel DB integration tests (sourced by paneldb_sqlite.sh
# and paneldb_mariadb.sh after tests/lib.sh).  The driver script defines:
#   db_setup    start the database, load contrib/demo/panel.sql, and set
#               PANEL_YAML to the `panel_db:` lines of the daemon's config
#   db_sql SQL  run statements as a writer
#   db_down     make the database unreachable (server killed, file gone);
#               statements may still be run with db_sql_offline meanwhile
#   db_up       bring it back
#   db_sql_offline SQL  change the data while it is down (the SQLite file
#               moved away); for MariaDB, a no-op returning 1 (no data can
#               change while the server is down)
# and DB_NAME (for messages).
#
# Scenarios: a user with no domains suspended gives user.suspended; a plan
# change gives user.plan_changed; a domain deleted rows-first then its
# files still names its owner (also after a daemon restart); an admin's 2FA
# turned off in OpenAdmin's users.db gives admin.changed; the database lost
# and back mid-run while users change: every change once, none twice.

need sqlite3

# ev_count TYPE SUBJECT [KEY=VALUE...]: events in $T/events.log (compact
# JSON lines, one per event) of that type and subject whose payload has
# those top-level values (true, false, null and digits as JSON, anything
# else as a string).
ev_json_pair() {
	case "$2" in
	true|false|null) printf '"%s":%s' "$1" "$2" ;;
	''|*[!0-9]*) printf '"%s":"%s"' "$1" "$2" ;;
	*) printf '"%s":%s' "$1" "$2" ;;
	esac
}
ev_count() {
	_f=$(mktemp "$T/evc.XXXXXX")
	grep -F "$(ev_json_pair type "$1")" "$T/events.log" 2>/dev/null |
		grep -F "$(ev_json_pair subject "$2")" > "$_f"
	shift 2
	for _kv in "$@"; do
		grep -F "$(ev_json_pair "${_kv%%=*}" "${_kv#*=}")" "$_f" \
			> "$_f.n"
		mv "$_f.n" "$_f"
	done
	wc -l < "$_f" | tr -d ' '
	rm -f "$_f"
}
# has_event TYPE SUBJECT [KEY=VALUE...]: at least one such event
has_event() { [ "$(ev_count "$@")" -ge 1 ]; }
# user_events: the number of user.* events from the poller
user_events() {
	grep -F '"source":"db"' "$T/events.log" 2>/dev/null |
		grep -c -F '"type":"user.' || true
}
log_has() { grep -q "$1" "$T/ophookd.log"; }
log_lines() { grep -c "$1" "$T/ophookd.log" || true; }
state_has() { grep -q "$1" "$T/state/paneldb.json" 2>/dev/null; }
# state_gone DOMAIN: the saved owner map marks DOMAIN's rows as gone
# (owners: "domain": [user, user_id, plan, context, gone_ms != 0])
state_gone() {
	grep -Eq "\"$1\":\[[^]]*,[1-9][0-9]*\]" "$T/state/paneldb.json" 2>/dev/null
}

paneldb_write_config() {
	mkdir -p "$T/root/caddy/domains" "$T/state" "$T/hooks" "$T/plugins"
	install_plugins log
	{
		echo "root: $T/root"
		echo "state_dir: $T/state"
		echo "socket: $T/ophookd.sock"
		echo "hooks_dir: $T/hooks"
		echo "watch_extra: []"
		echo "log_level: ${OPHOOK_LOG_LEVEL:-info}"
		echo "plugin_dirs:"
		echo "  - $T/plugins"
		echo "panel_db:"
		printf '%s\n' "$PANEL_YAML"
		echo "  admin_db: $T/users.db"
		echo "  poll_ms: 200"
		echo "journal:"
		echo "  backoff_ms: 100"
		echo "  backoff_max_ms: 1000"
		echo "watch:"
		echo "  settle_ms: 20"
		echo "paths:"
		echo "  systemd: $T/systemd"
		echo "  home: $T/home"
		echo "plugins:"
		echo "  log:"
		echo "    settings:"
		echo "      path: $T/events.log"
	} > "$T/ophookd.yaml"
}

paneldb_run() {
	db_setup || { echo "Bail out! $DB_NAME did not start"; exit 1; }
	# OpenAdmin's users.db (WAL, as the Flask app leaves it)
	sqlite3 "$T/users.db" "PRAGMA journal_mode=WAL;
		CREATE TABLE user (id INTEGER PRIMARY KEY, username TEXT UNIQUE
		NOT NULL, password_hash TEXT NOT NULL, role TEXT NOT NULL
		DEFAULT 'user', is_active BOOLEAN DEFAULT 1 NOT NULL,
		totp_enabled BOOLEAN DEFAULT 0);
		INSERT INTO user VALUES (1, 'root', 'x', 'admin', 1, 1);" >/dev/null
	paneldb_write_config
	start_ophookd || { echo "Bail out! ophookd did not start"; exit 1; }

	# the first poll is a baseline: no events, a saved snapshot
	ok "$(wait_for 30 state_has '"carol"'; echo $?)" \
		"$DB_NAME: first poll saved a baseline"
	is "$(user_events)" 0 "$DB_NAME: the baseline emits no user events"

	# a user without domains is suspended: only the DB knows
	db_sql "UPDATE users SET username = 'SUSPENDED_20261128120000_carol' WHERE id = 3;"
	ok "$(wait_for 30 has_event user.suspended user:carol user=carol \
		suspended_at=2026-11-28T12:00:00Z plan="Standard plan"; echo $?)" \
		"$DB_NAME: user with no domains suspended => user.suspended"

	# a plan change
	db_sql "UPDATE users SET plan_id = 2 WHERE id = 1;"
	ok "$(wait_for 30 has_event user.plan_changed user:alice \
		old_plan="Standard plan" plan="Developer Plus"; echo $?)" \
		"$DB_NAME: plan change => user.plan_changed (old and new plan)"

	# an admin's 2FA turned off in users.db
	sqlite3 "$T/users.db" "UPDATE user SET totp_enabled = 0 WHERE id = 1;"
	ok "$(wait_for 30 has_event admin.changed admin:root \
		totp_disabled=true totp_enabled=false; echo $?)" \
		"$DB_NAME: admin 2FA disabled => admin.changed totp_disabled"

	# bob's domain conf appears (the watcher): the event names its owner
	printf 'bob-site.example {\n\treverse_proxy localhost:8080\n}\n' \
		> "$T/root/caddy/domains/bob-site.example.conf"
	ok "$(wait_for 30 has_event domain.added bob-site.example user=bob \
		plan="Developer Plus" user_id=2; echo $?)" \
		"$DB_NAME: domain.added from the watcher carries user, plan, user_id"

	# a domain deleted rows-first, then its files (domain.removed)
	db_sql "DELETE FROM sites WHERE domain_id = 3; DELETE FROM domains WHERE domain_id = 3;"
	ok "$(wait_for 30 state_gone 'bob-site\.example'; echo $?)" \
		"$DB_NAME: the poller saw the domain's rows go"
	rm "$T/root/caddy/domains/bob-site.example.conf"
	ok "$(wait_for 30 has_event domain.removed bob-site.example user=bob \
		plan="Developer Plus" context=bob source=inotify; echo $?)" \
		"$DB_NAME: domain deleted rows-first then files still names its owner"
	ctl emit domain.updated alice-blog.example domain=alice-blog.example >/dev/null
	ok "$(wait_for 30 has_event domain.updated alice-blog.example user=alice \
		plan="Developer Plus"; echo $?)" \
		"$DB_NAME: domain events carry owner and (new) plan"

	# the daemon restarts; a change made while it was down is seen once,
	# nothing is emitted again, the removed domain still has its owner
	stop_ophookd
	db_sql "UPDATE users SET username = 'carol' WHERE id = 3;"
	start_ophookd || { echo "Bail out! ophookd did not restart"; exit 1; }
	ok "$(wait_for 30 has_event user.unsuspended user:carol; echo $?)" \
		"$DB_NAME: change made while the daemon was down => user.unsuspended"
	ctl emit cert.removed bob-site.example domain=bob-site.example >/dev/null
	ok "$(wait_for 30 has_event cert.removed bob-site.example user=bob; echo $?)" \
		"$DB_NAME: after a restart the removed domain still names its owner"

	# the database is lost mid-run while users change
	db_sql "INSERT INTO users (id, username, password, email, server, plan_id)
		VALUES (10, 'dave', 'x', 'dave@example.net', 'dave', 1);"
	ok "$(wait_for 30 has_event user.added user:dave; echo $?)" \
		"$DB_NAME: new user => user.added"
	# committed just before the loss: maybe never polled before it
	db_sql "UPDATE users SET username = 'SUSPENDED_20261128130000_dave' WHERE id = 10;"
	db_down
	ok "$(wait_for 60 log_has 'panel DB lost'; echo $?)" \
		"$DB_NAME: losing the database is logged"
	db_sql_offline "UPDATE users SET plan_id = 1 WHERE id = 2;" &&
		offline_change=1 || offline_change=0
	# stay down over a few retries (the loss must still be logged once)
	sleep 1
	db_up || { echo "Bail out! $DB_NAME did not restart"; exit 1; }
	db_sql "INSERT INTO users (id, username, password, email, server, plan_id)
		VALUES (11, 'erin', 'x', 'erin@example.net', 'erin', 2);
		UPDATE users SET plan_id = 1 WHERE id = 2;
		DELETE FROM users WHERE id = 1;"
	ok "$(wait_for 90 log_has 'panel DB back'; echo $?)" \
		"$DB_NAME: the database coming back is logged"
	ok "$(wait_for 60 has_event user.removed user:alice; echo $?)" \
		"$DB_NAME: changes made around the outage arrive"
	wait_for 30 has_event user.added user:erin || true
	is "$(log_lines 'panel DB lost')" 1 "$DB_NAME: the loss is logged once"
	is "$(ev_count user.suspended user:dave)" 1 \
		"$DB_NAME: change committed just before the loss: once"
	is "$(ev_count user.added user:erin)" 1 "$DB_NAME: user added after: once"
	is "$(ev_count user.plan_changed user:bob plan="Standard plan")" 1 \
		"$DB_NAME: plan changed around the outage: once (offline=$offline_change)"
	is "$(ev_count user.removed user:alice)" 1 "$DB_NAME: user removed: once"
	is "$(ev_count user.suspended user:carol)" 1 "$DB_NAME: no earlier event repeated"
	is "$(ev_count user.added user:dave)" 1 "$DB_NAME: no earlier event repeated (added)"
	# suspended, plan_changed, unsuspended, added dave, suspended dave,
	# added erin, plan_changed bob, removed alice
	is "$(user_events)" 8 "$DB_NAME: exactly the expected user events, no duplicates"
	done_testing
}
