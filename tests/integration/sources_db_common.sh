# Shared body of the panel-DB sources tests (sourced by sources_db.sh on
# SQLite and sources_db_mariadb.sh on MariaDB, after tests/lib.sh and the
# db_* functions; see paneldb_common.sh, whose helpers and config this
# reuses).  The writes are the Go panel's own statements, in its order
# (OpenPanel 2.x, openpanel/internal/modules/...):
#   account/settings.go      UPDATE users SET email = ? WHERE id = ?
#   account/passwords.go     UPDATE users SET password = ? WHERE id = ?
#   account/handlers_passkeys.go  CREATE TABLE IF NOT EXISTS user_passkeys
#                            on first use, INSERT INTO user_passkeys
#   account/api_twofa.go     setup: twofa_enabled = 0, otp_secret = NEW;
#                            confirm: twofa_enabled = 1; disable:
#                            twofa_enabled = 0, otp_secret = NULL
#   php/domains.go           os.WriteFile of the vhost (php-fpm-OLD ->
#                            php-fpm-NEW), then UPDATE domains SET
#                            php_version = ? WHERE domain_url = ?
#   <app>/install.go         INSERT INTO sites (site_name, domain_id,
#                            admin_email, version, type)
#   <app>/manage.go          DELETE FROM sites WHERE id = ?
#   OpenAdmin plan edit      UPDATE plans SET cpu, ram ... WHERE id = ?
# and opencli's (CLI2 plan/apply.sh, user/change_plan.sh): a
# system/user-UID.slice.d/override.conf written with `cat >`, then
# `systemctl set-property user-UID.slice TasksMax=...`, which systemd
# writes as system.control/user-UID.slice.d/50-TasksMax.conf (a temp file
# renamed over it); UID is the owner of /home/<ctx>.
# Asserts the exact events (none extra), that no password hash nor 2FA
# secret reaches the journal, the events or the log, and that a change
# made while the daemon was down comes once after a restart.

. "$top_srcdir/tests/integration/paneldb_common.sh"

NEWHASH='$2b$12$Qm9ndXNIYXNoRm9yVGVzdHMuWmF4cXdlcnR5dWlvcGFzZGZnaGprbA'
OTP='KZXW6YTBOI4DMNZQGEZTAMBSHA2DSMRX'

# db_events: the number of events the poller journaled (source db)
db_events() { grep -c -F '"source":"db"' "$T/events.log" 2>/dev/null || true; }
# ev_changed USER LIST: user.updated events of USER whose changed is LIST
# (JSON text, e.g. ["email"])
ev_changed() {
	grep -F '"type":"user.updated"' "$T/events.log" 2>/dev/null |
		grep -F "\"subject\":\"user:$1\"" |
		grep -c -F "\"changed\":$2" || true
}

# set_property UID PROPERTY VALUE: what `systemctl set-property
# user-UID.slice PROPERTY=VALUE` leaves on disk
set_property() {
	_d="$T/systemd/system.control/user-$1.slice.d"
	mkdir -p "$_d"
	printf '# A drop-in made by "systemctl set-property"; not to be edited.\n[Slice]\n%s=%s\n' \
		"$2" "$3" > "$_d/.#50-$2.conf.tmp"
	mv "$_d/.#50-$2.conf.tmp" "$_d/50-$2.conf"
}
# plan_apply UID CPU% RAM TASKS: opencli plan-apply for one user
plan_apply() {
	_d="$T/systemd/system/user-$1.slice.d"
	if [ ! -f "$_d/override.conf" ]; then
		mkdir -p "$_d"
		printf '[Slice]\nDelegate=yes\n' > "$_d/override.conf"
	fi
	set_property "$1" MemoryMax "$3"
	set_property "$1" TasksMax "$4"
	set_property "$1" CPUQuota "$2"
}

has_changed() { [ "$(ev_changed "$1" "$2")" -ge 1 ]; }

sources_db_run() {
	db_setup || { echo "Bail out! $DB_NAME did not start"; exit 1; }
	sqlite3 "$T/users.db" "CREATE TABLE user (id INTEGER PRIMARY KEY,
		username TEXT UNIQUE NOT NULL, password_hash TEXT NOT NULL,
		role TEXT NOT NULL DEFAULT 'user', is_active BOOLEAN DEFAULT 1
		NOT NULL, totp_enabled BOOLEAN DEFAULT 0);
		INSERT INTO user VALUES (1, 'root', 'x', 'admin', 1, 0);" >/dev/null
	# alice's vhost in her webserver volume, as the Go panel reads it
	VHOST_DIR="$T/home/alice/docker-data/volumes/alice_webserver_data/_data"
	mkdir -p "$VHOST_DIR"
	cat > "$VHOST_DIR/alice-blog.example.conf" <<'CONF'
server {
    listen 80;
    server_name alice-blog.example www.alice-blog.example;
    root /var/www/html/alice-blog.example;
    location ~ \.php$ {
        fastcgi_pass php-fpm-8.2:9000;
        include fastcgi_params;
    }
}
CONF
	# the users' homes (uid -> ctx as plan-apply maps them) and slices
	SLICES=0
	mkdir -p "$T/home/alice" "$T/home/bob" "$T/home/carol"
	if chown 2001 "$T/home/alice" 2>/dev/null &&
	   chown 2002 "$T/home/bob" && chown 2003 "$T/home/carol"; then
		SLICES=1
		plan_apply 2001 200% 2G 300
		plan_apply 2002 400% 6G 900
		plan_apply 2003 200% 2G 300
		plan_apply 9999 100% 1G 150 # a uid no panel user has
	fi
	paneldb_write_config
	start_ophookd || { echo "Bail out! ophookd did not start"; exit 1; }
	ok "$(wait_for 30 state_has '"carol"'; echo $?)" \
		"$DB_NAME: first poll saved a baseline"
	is "$(db_events)" 0 "$DB_NAME: the baseline emits no events"

	# the account page: email, then password
	db_sql "UPDATE users SET email = 'alice@example.org' WHERE id = 1;"
	ok "$(wait_for 30 has_event user.updated user:alice \
		email=alice@example.org old_email=alice@example.net; echo $?)" \
		"$DB_NAME: email changed => user.updated with email, old_email"
	is "$(ev_changed alice '["email"]')" 1 "$DB_NAME: changed is [\"email\"]"
	db_sql "UPDATE users SET password = '$NEWHASH' WHERE id = 1;"
	ok "$(wait_for 30 has_changed alice '["password"]'; echo $?)" \
		"$DB_NAME: password changed => user.updated changed [\"password\"]"

	# 2FA: setup stores a pending secret (2FA still off), confirm turns
	# it on, disable clears both
	db_sql "UPDATE users SET twofa_enabled = 0, otp_secret = '$OTP' WHERE id = 2;"
	db_sql "UPDATE users SET twofa_enabled = 1 WHERE id = 2;"
	ok "$(wait_for 30 has_event user.updated user:bob twofa_enabled=true; echo $?)" \
		"$DB_NAME: 2FA confirmed => user.updated twofa_enabled true"
	db_sql "UPDATE users SET twofa_enabled = 0, otp_secret = NULL WHERE id = 2;"
	ok "$(wait_for 30 has_event user.updated user:bob twofa_disabled=true \
		twofa_enabled=false; echo $?)" \
		"$DB_NAME: 2FA disabled => user.updated twofa_disabled"
	is "$(ev_changed bob '["2fa"]')" 2 \
		"$DB_NAME: 2FA: two events (the pending secret is none)"

	# passkeys: the Go panel makes its table on first use (no event: a
	# baseline), then registers one
	db_sql "CREATE TABLE user_passkeys (id INTEGER NOT NULL PRIMARY KEY,
		user_id INT NOT NULL, credential_id VARCHAR(255) NOT NULL UNIQUE,
		public_key TEXT NOT NULL, sign_count INT NOT NULL DEFAULT 0,
		name VARCHAR(100) NOT NULL,
		created_at TIMESTAMP NULL DEFAULT CURRENT_TIMESTAMP,
		last_used_at TIMESTAMP NULL);"
	wait_for 30 state_has '"bob@example.net",[^]]*,0,null\]' || true
	db_sql "INSERT INTO user_passkeys (id, user_id, credential_id, public_key, name)
		VALUES (1, 2, 'Y3JlZGVudGlhbC0x', 'cHVibGljLWtleS0x', 'laptop');"
	ok "$(wait_for 30 has_event user.updated user:bob passkeys=1 \
		old_passkeys=0; echo $?)" \
		"$DB_NAME: a passkey registered => user.updated changed [\"passkeys\"]"

	# PHP version: the vhost rewritten in place first, then the row
	sed 's/php-fpm-8\.2/php-fpm-8.4/g' "$VHOST_DIR/alice-blog.example.conf" \
		> "$T/vhost.new"
	cat "$T/vhost.new" > "$VHOST_DIR/alice-blog.example.conf"
	db_sql "UPDATE domains SET php_version = '8.4' WHERE domain_url = 'alice-blog.example';"
	ok "$(wait_for 30 has_event domain.php_changed alice-blog.example \
		domain=alice-blog.example php_version=8.4 old_php_version=8.2 \
		user=alice; echo $?)" \
		"$DB_NAME: PHP version changed => domain.php_changed (owner, old, new)"
	ok "$(has_event domain.php_changed alice-blog.example \
		vhost_php_version=8.4; echo $?)" \
		"$DB_NAME: the same event says what the rewritten vhost names"

	# an application installed on shop.example, the blog's WordPress removed
	db_sql "INSERT INTO sites (id, site_name, domain_id, admin_email, version, type)
		VALUES (2, 'shop.example', 2, 'alice@example.org', '6.7', 'wordpress');"
	ok "$(wait_for 30 has_event site.added shop.example site=shop.example \
		site_type=wordpress user=alice domain_id=2 site_id=2; echo $?)" \
		"$DB_NAME: sites row inserted => site.added (domain, user, type)"
	db_sql "DELETE FROM sites WHERE id = 1;"
	ok "$(wait_for 30 has_event site.removed alice-blog.example \
		site=alice-blog.example site_type=wordpress user=alice; echo $?)" \
		"$DB_NAME: sites row deleted => site.removed"

	# the plan's limits edited: one user.limits_changed per user on it
	db_sql "UPDATE plans SET cpu = '3', ram = '4g' WHERE id = 1;"
	ok "$(wait_for 30 has_event user.limits_changed user:carol origin=plan \
		plan="Standard plan"; echo $?)" \
		"$DB_NAME: plan edited => user.limits_changed for its users"
	wait_for 30 has_event user.limits_changed user:alice || true
	ok "$(grep -F '"type":"user.limits_changed"' "$T/events.log" |
		grep -F '"subject":"user:alice"' |
		grep -q -F '"cpu":{"old":"2","new":"3"}'; echo $?)" \
		"$DB_NAME: limits say old and new values"
	# a user moved to another plan: user.plan_changed with the limits
	db_sql "UPDATE users SET plan_id = 2 WHERE id = 3;"
	ok "$(wait_for 30 has_event user.plan_changed user:carol \
		plan="Developer Plus" old_plan="Standard plan"; echo $?)" \
		"$DB_NAME: plan change => user.plan_changed"
	ok "$(grep -F '"type":"user.plan_changed"' "$T/events.log" |
		grep -q -F '"disk_limit":{"old":"5 GB","new":"10 GB"}'; echo $?)" \
		"$DB_NAME: user.plan_changed carries the limits that differ"

	# an admin raises bob's process ceiling (set-property on his slice)
	if [ "$SLICES" = 1 ]; then
		set_property 2002 TasksMax 1000
		ok "$(wait_for 30 has_event user.limits_changed user:bob \
			origin=slice uid=2002 plan="Developer Plus"; echo $?)" \
			"$DB_NAME: slice drop-in changed => user.limits_changed origin slice"
		ok "$(grep -F '"origin":"slice"' "$T/events.log" |
			grep -q -F '"tasks_max":{"old":"900","new":"1000"}'; echo $?)" \
			"$DB_NAME: slice limits say old and new values"
		# hostile drop-ins in carol's folder: a symlink, a FIFO, a
		# big file, all ignored; a uid of no panel user: no event
		_d="$T/systemd/system.control/user-2003.slice.d"
		printf '[Slice]\nMemoryMax=64G\n' > "$T/evil.conf"
		ln -s "$T/evil.conf" "$_d/60-evil.conf"
		mkfifo "$_d/70-fifo.conf"
		# (written aside and renamed in, as systemd writes its
		# drop-ins: the poll must not catch it half-written, under
		# the size limit)
		{ printf '[Slice]\nMemoryMax=1G\n'; head -c 70000 /dev/zero |
			tr '\0' '#'; } > "$T/big.conf"
		mv "$T/big.conf" "$_d/80-big.conf"
		set_property 9999 CPUQuota 50%
		# a change the test waits for, after those
		set_property 2001 TasksMax 450
		ok "$(wait_for 30 has_event user.limits_changed user:alice \
			origin=slice; echo $?)" \
			"$DB_NAME: slice drop-in (alice) => user.limits_changed"
	else
		for _i in 1 2 3; do
			ok 0 "$DB_NAME: slices # SKIP not root (chown of the homes)"
		done
	fi

	# a restart: changes made while the daemon was down come once
	stop_ophookd
	[ "$SLICES" = 1 ] && set_property 2003 CPUQuota 400%
	# bob's webserver volume folder is a symlink (his to make): never
	# followed, so the event says nothing of that vhost
	mkdir -p "$T/elsewhere" "$T/home/bob/docker-data/volumes/bob_webserver_data"
	printf 'fastcgi_pass php-fpm-9.9:9000;\n' > "$T/elsewhere/bob-site.example.conf"
	ln -s "$T/elsewhere" "$T/home/bob/docker-data/volumes/bob_webserver_data/_data"
	db_sql "UPDATE users SET email = 'bob@example.org' WHERE id = 2;
		UPDATE domains SET php_version = '8.1' WHERE domain_id = 3;"
	start_ophookd || { echo "Bail out! ophookd did not restart"; exit 1; }
	ok "$(wait_for 30 has_event domain.php_changed bob-site.example \
		php_version=8.1 old_php_version=8.2 user=bob; echo $?)" \
		"$DB_NAME: PHP change made while down => domain.php_changed"
	ok "$(! grep -F '"type":"domain.php_changed"' "$T/events.log" |
		grep -q -F '9.9'; echo $?)" \
		"$DB_NAME: a vhost behind a symlink is not read"
	ok "$(wait_for 30 has_event user.updated user:bob email=bob@example.org; echo $?)" \
		"$DB_NAME: email change made while down => user.updated"
	if [ "$SLICES" = 1 ]; then
		ok "$(wait_for 30 has_event user.limits_changed user:carol \
			origin=slice uid=2003; echo $?)" \
			"$DB_NAME: slice changed while down => user.limits_changed"
	else
		ok 0 "$DB_NAME: slices # SKIP not root"
	fi
	# one more write, so that we know the poller went past them
	db_sql "UPDATE users SET email = 'carol@example.org' WHERE id = 3;"
	wait_for 30 has_event user.updated user:carol || true

	# exactly these, once each
	is "$(ev_count user.updated user:alice)" 2 "$DB_NAME: alice: 2 user.updated"
	is "$(ev_count user.updated user:bob)" 4 "$DB_NAME: bob: 4 user.updated"
	is "$(ev_count user.updated user:carol)" 1 "$DB_NAME: carol: 1 user.updated"
	is "$(ev_count domain.php_changed alice-blog.example)" 1 \
		"$DB_NAME: vhost + row: ONE domain.php_changed"
	is "$(ev_count domain.php_changed bob-site.example)" 1 \
		"$DB_NAME: change made while down: once"
	is "$(ev_count site.added shop.example)" 1 "$DB_NAME: site.added once"
	is "$(ev_count site.removed alice-blog.example)" 1 "$DB_NAME: site.removed once"
	is "$(ev_count user.limits_changed user:alice origin=plan)" 1 \
		"$DB_NAME: plan limits: alice once"
	is "$(ev_count user.limits_changed user:carol origin=plan)" 1 \
		"$DB_NAME: plan limits: carol once (the plan move is user.plan_changed)"
	is "$(ev_count user.limits_changed user:bob origin=plan)" 0 \
		"$DB_NAME: plan limits: bob's plan was not edited"
	is "$(ev_count user.limits_changed user:bob origin=slice)" "$SLICES" \
		"$DB_NAME: slice limits: bob once"
	is "$(ev_count user.limits_changed user:alice origin=slice)" "$SLICES" \
		"$DB_NAME: slice limits: alice once"
	is "$(ev_count user.limits_changed user:carol origin=slice)" "$SLICES" \
		"$DB_NAME: slice limits: carol once (hostile drop-ins ignored)"
	is "$(ev_count user.plan_changed user:carol)" 1 "$DB_NAME: plan change once"
	# 7 user.updated, 2 domain.php_changed, 2 site.*, 2 plan limits,
	# 1 plan change, and 3 slice limits
	is "$(db_events)" $((14 + 3 * SLICES)) \
		"$DB_NAME: exactly the expected events, none extra"

	# no hash, no 2FA secret, not even a fingerprint, anywhere
	sqlite3 "$T/state/journal.db" "SELECT payload FROM events" > "$T/journal.txt"
	for f in "$T/journal.txt" "$T/events.log" "$T/ophookd.log"; do
		ok "$(! grep -q -F -e '$2b$' -e "$OTP" -e 'Qm9ndXNIYXNo' "$f"; echo $?)" \
			"$DB_NAME: no password hash or 2FA secret in $(basename "$f")"
	done
	ok "$(! grep -q -E -e '"(password|otp_secret|pw_fp|otp_fp)":' \
		"$T/journal.txt" "$T/events.log"; echo $?)" \
		"$DB_NAME: no password or secret field in any event"
	ok "$(! grep -q -F -e '$2b$' -e "$OTP" "$T/state/paneldb.json"; echo $?)" \
		"$DB_NAME: the saved snapshot keeps no hash or secret either"
	done_testing
}
