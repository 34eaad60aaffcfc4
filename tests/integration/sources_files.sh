#!/bin/sh
# The file sources of issue 22, replayed with OpenPanel's write patterns
# against a daemon watching a temp tree and polling an SQLite panel DB:
#  - the WAF switch of a domain (opencli waf: sed -i; the Go panel:
#    os.WriteFile) gives domain.waf_changed besides domain.updated;
#  - FTP accounts (opencli ftp-add: `>>` to users.list; ftp-delete:
#    sed -i '/^name|/d') give ftp.account.added / removed;
#  - crons.ini and backup.env under <paths.home>/<ctx>, written by the Go
#    panel (os.WriteFile: truncate + write on the same inode), watched only
#    for the contexts of the panel DB's users: cron.changed,
#    backup.config_changed (no secret value anywhere: events, log,
#    journal, snapshot);
#  - a customer's hostile crons.ini (symlink, hard link, huge) is not read,
#    with a warning naming it;
#  - opencli sentinel's notification lines (`>>`) give panel.notification
#    once; sed -i marking them READ gives nothing;
#  - changes made while the daemon is stopped come once at the next start.
# Written from reading opencli (ftp/, waf.sh, sentinel.sh) and the Go
# panel's crons, backups and waf modules (facts only).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need jq sqlite3 python3
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"

WAIT_MS=1000
PANEL_POLL_MS=300 SETTLE_MS=100 watch_config
sed -i "s|^  poll_ms: 300$|  poll_ms: 300\n  merge_wait_ms: $WAIT_MS|" "$T/ophookd.yaml"
sqlite3 "$T/panel.db" < "$top_srcdir/contrib/demo/panel.sql"
install_plugins log
R=$T/root
D=$R/caddy/domains
H=$T/home
NOTES=$T/log/openpanel/admin/notifications.log
FTPL=$R/ftp/users/alice/users.list
mkdir -p "$D" "$R/openpanel/core/users" "$H/alice" "$H/mallory" \
	"$(dirname "$NOTES")"
db() { sqlite3 "$T/panel.db" "$1"; }
# the last event of TYPE SUBJECT, field FIELD (jq path)
fld() {
	jq -c --arg t "$1" --arg s "$2" \
		"select(.type == \$t and .subject == \$s) | $3" \
		"$T/events.log" | tail -n 1
}

# Go's os.WriteFile: open O_TRUNC on the same inode, one write
go_write() { # go_write FILE (content on stdin)
	python3 -c '
import os, sys
data = sys.stdin.buffer.read()
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, data)
os.close(fd)' "$1"
}
# one crons.ini job block as the Go panel writes it
job() { # job NAME SCHEDULE CONTAINER COMMAND
	printf '[job-exec "%s"]\nschedule = %s\ncontainer = %s\ncommand = %s\n\n' \
		"$1" "$2" "$3" "$4"
}
# opencli sentinel's note: `echo "$TIME UNREAD $title MESSAGE: $msg" >>`
sentinel() { # sentinel TITLE MESSAGE
	echo "$(date +'%Y-%m-%d %H:%M:%S') UNREAD $1 MESSAGE: $2" >> "$NOTES"
}
# the admin panel / sentinel marking a note read
mark_read() { sed -i "s/UNREAD $1 MESSAGE:/READ $1 MESSAGE:/" "$NOTES"; }

# before the first start (the baseline): alice's cron job, a notification
# already there, and a crons.ini of mallory, who has no panel user
job php-cron "@every 1h" php-fpm-8.3 "php /var/www/html/cron.php" \
	> "$H/alice/crons.ini"
echo "2025-01-01 00:00:00 UNREAD Old MESSAGE: before ophook" > "$NOTES"
job evil "@every 1s" nginx "curl http://198.51.100.1/" > "$H/mallory/crons.ini"
start_ophookd || { plan 1; ok 1 "ophookd starts"; exit 1; }
wait_for 10 test -s "$T/state/paneldb.json"
# the baseline of the contexts' files is recorded (two runs at most)
wait_for 10 grep -q "baseline recorded" "$T/ophookd.log"
sleep 1
expect "baseline: no event"

# ---- WAF ----
printf 'w.example {\n    coraza_waf {\n        directives `\n            SecRuleEngine Off\n        `\n    }\n    reverse_proxy http://127.0.0.1:8080\n}\n' \
	> "$D/w.example.conf"
db "INSERT INTO domains (user_id, docroot, php_version, domain_url)
    VALUES (1, '/var/www/html/w.example', '8.3', 'w.example');"
expect "domain conf added" "domain.added w.example"
# opencli waf (waf.sh): sed -i "s/SecRuleEngine .*/SecRuleEngine On/"
sed -i "s/SecRuleEngine .*/SecRuleEngine On/" "$D/w.example.conf"
expect "opencli waf On: domain.updated + domain.waf_changed" \
	"domain.updated w.example" "domain.waf_changed w.example"
is "$(fld domain.waf_changed w.example '[.waf, .old_waf, .user]')" \
	'["on","off","alice"]' "waf_changed: on, was off, owner alice"
# the Go panel's WAF page: the conf rewritten in place (os.WriteFile)
sed 's/SecRuleEngine On/SecRuleEngine Off/' "$D/w.example.conf" |
	go_write "$D/w.example.conf"
expect "Go WAF Off (os.WriteFile): domain.updated + domain.waf_changed" \
	"domain.updated w.example" "domain.waf_changed w.example"
is "$(fld domain.waf_changed w.example '[.waf, .old_waf]')" '["off","on"]' \
	"waf_changed: off, was on"
sed -i 's/8080/8081/' "$D/w.example.conf"
expect "another edit: domain.updated only" "domain.updated w.example"

# ---- FTP accounts ----
HASH1='$6$rounds=5000$Ftpsalt$FtpHashNeverInEvents0001'
mkdir -p "$(dirname "$FTPL")"
echo "web@w.example|$HASH1|/var/www/html/w.example|1001|1001" >> "$FTPL"
expect "ftp-add (>> users.list)" "ftp.account.added user:alice"
is "$(fld ftp.account.added user:alice '[.user, .account, .directory]')" \
	'["alice","web@w.example","/var/www/html/w.example"]' \
	"ftp.account.added: user, account, directory"
echo "up@w.example|\$6\$x\$FtpHashNeverInEvents0002|/var/www/html/up|1001|1001" >> "$FTPL"
expect "second ftp-add" "ftp.account.added user:alice"
# ftp-delete: touch, then sed -i "/^$username|/d"
touch "$FTPL"
sed -i "/^web@w.example|/d" "$FTPL"
expect "ftp-delete (sed -i)" "ftp.account.removed user:alice"
is "$(fld ftp.account.removed user:alice .account)" '"web@w.example"' \
	"the removed account"

# ---- crons.ini (a known context: alice) ----
{ job php-cron "@every 1h" php-fpm-8.3 "php /var/www/html/cron.php"
  job backup-db "0 0 3 * * *" mysql "mysqldump --password=CronPassNeverLogged db"; } | go_write "$H/alice/crons.ini"
expect "Go cron add (os.WriteFile)" "cron.changed user:alice"
is "$(fld cron.changed user:alice '[.added[].name, .added[].command, (.removed|length), (.changed|length)]')" \
	'["backup-db","mysqldump --password=*** db",0,0]' \
	"cron.changed: backup-db added, its password masked"
{ job php-cron "@every 5m" php-fpm-8.3 "php /var/www/html/cron.php"
  job backup-db "0 0 3 * * *" mysql "mysqldump --password=CronPassNeverLogged db"; } | go_write "$H/alice/crons.ini"
expect "Go cron edit" "cron.changed user:alice"
is "$(fld cron.changed user:alice '[.changed[0].name, .changed[0].schedule, .changed[0].old.schedule]')" \
	'["php-cron","@every 5m","@every 1h"]' "cron.changed: schedule changed"
job backup-db "0 0 3 * * *" mysql "mysqldump --password=CronPassNeverLogged db" | go_write "$H/alice/crons.ini"
expect "Go cron delete" "cron.changed user:alice"
is "$(fld cron.changed user:alice '[.removed[].name]')" '["php-cron"]' \
	"cron.changed: php-cron removed"
# not a context of the panel DB: mallory's file is never read
job evil2 "@every 1s" nginx "true" >> "$H/mallory/crons.ini"
expect "a /home folder without a panel user: no event"

# hostile: a symlink, a hard link, a huge file
echo "secret-of-root" > "$T/rootfile"
mv "$H/alice/crons.ini" "$H/alice/crons.ini.saved"
ln -s "$T/rootfile" "$H/alice/crons.ini"
expect "crons.ini made a symlink: not read"
ok "$(grep -q "crons.ini is a symlink" "$T/ophookd.log"; echo $?)" \
	"a warning names the symlink"
rm "$H/alice/crons.ini"
ln "$T/rootfile" "$H/alice/crons.ini"
expect "crons.ini made a hard link: not read"
ok "$(grep -q "crons.ini: not read: it has other hard links" "$T/ophookd.log"; echo $?)" \
	"a warning names the hard link"
rm "$H/alice/crons.ini"
head -c 2000000 /dev/zero | tr '\0' 'x' > "$H/alice/crons.ini"
expect "a 2 MB crons.ini: not read"
ok "$(grep -q "crons.ini: not read: larger than 1 MiB" "$T/ophookd.log"; echo $?)" \
	"a warning names the huge file"
mv "$H/alice/crons.ini.saved" "$H/alice/crons.ini"
expect "the saved file back: same jobs, no event"
ok "$(kill -0 "$OPHOOKD_PID"; echo $?)" \
	"the daemon still runs"
# the Go panel deletes the last job: the file written empty in place
: | go_write "$H/alice/crons.ini"
expect "last job deleted (emptied in place)" "cron.changed user:alice"
is "$(fld cron.changed user:alice '[.removed[].name]')" '["backup-db"]' \
	"cron.changed: backup-db removed"

# ---- backup.env ----
SECRET1=AwsSecretNeverLogged0001
SECRET2=GpgPassNeverLogged0002
SECRET3=AwsSecretNeverLogged0003
printf 'BACKUP_CRON_EXPRESSION="@daily"\nAWS_S3_BUCKET_NAME=bkt\nAWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=%s\nGPG_PASSPHRASE="%s"\n' \
	"$SECRET1" "$SECRET2" | go_write "$H/alice/backup.env"
expect "Go backup settings (os.WriteFile)" "backup.config_changed user:alice"
is "$(fld backup.config_changed user:alice '.keys')" \
	'["AWS_ACCESS_KEY_ID","AWS_S3_BUCKET_NAME","AWS_SECRET_ACCESS_KEY","BACKUP_CRON_EXPRESSION","GPG_PASSPHRASE"]' \
	"backup.config_changed: the keys"
printf 'BACKUP_CRON_EXPRESSION="0 3 * * *"\nAWS_S3_BUCKET_NAME=bkt\nAWS_ACCESS_KEY_ID=AKIAEXAMPLE\nAWS_SECRET_ACCESS_KEY=%s\nGPG_PASSPHRASE="%s"\n' \
	"$SECRET3" "$SECRET2" | go_write "$H/alice/backup.env"
expect "secret and schedule changed" "backup.config_changed user:alice"
is "$(fld backup.config_changed user:alice '[.changes[] | [.key, .secret, .new, (.new_fingerprint|type)]]')" \
	'[["AWS_SECRET_ACCESS_KEY",true,null,"string"],["BACKUP_CRON_EXPRESSION",null,"0 3 * * *","null"]]' \
	"the secret by fingerprint, the schedule by value"

# ---- a user added in the panel DB: its home files are watched ----
mkdir -p "$H/dave"
job dave-job "@daily" php-fpm-8.3 "php x.php" > "$H/dave/crons.ini"
recons=$(grep -c 'watch: reconcile done' "$T/ophookd.log")
db "INSERT INTO users (id, username, password, email, plan_id, server)
    VALUES (9, 'dave', 'x', 'dave@example.net', 1, 'dave');"
expect "users row: user.added + dave's crons.ini read" \
	"user.added user:dave" "cron.changed user:dave"
is "$(fld cron.changed user:dave '[.source, .added[0].name]')" \
	'["reconcile","dave-job"]' "dave's job, found by looking (source reconcile)"
is "$(grep -c 'watch: reconcile done' "$T/ophookd.log")" "$recons" \
	"a new context: its own files looked at, no full reconcile"
echo "BACKUP_CRON_EXPRESSION=@weekly" > "$H/dave/backup.env"
expect "dave's backup.env (>)" "backup.config_changed user:dave"
db "DELETE FROM users WHERE id = 9;"
expect "users row gone" "user.removed user:dave"
job late "@daily" x y >> "$H/dave/crons.ini"
expect "no longer a context: not watched"

# ---- admin notifications ----
sentinel "High Load" "load average 9.1"
expect "sentinel note (>>)" "panel.notification notifications"
is "$(fld panel.notification notifications '[.title, .message]')" \
	'["High Load","load average 9.1"]' "title and message"
mark_read "High Load"
expect "marked READ (sed -i): nothing"
mark_read "Old"
sentinel "Disk Usage" "91% used"
expect "a second note" "panel.notification notifications"

# ---- changes while stopped: once, at the next start ----
stop_ophookd
MARK=$(nlines)
sentinel "SSH Login" "root from 203.0.113.5"
mark_read "Disk Usage"
job php-cron "@every 1m" php-fpm-8.3 "php /var/www/html/cron.php" >> "$H/alice/crons.ini"
echo "new@w.example|\$6\$y\$FtpHashNeverInEvents0003|/var/www/html/new|1001|1001" >> "$FTPL"
sed -i "s/SecRuleEngine Off/SecRuleEngine On/" "$D/w.example.conf"
start_ophookd || exit 1
expect "changes while stopped" "panel.notification notifications" \
	"cron.changed user:alice" "ftp.account.added user:alice" \
	"domain.updated w.example" "domain.waf_changed w.example"
is "$(tail -n 5 "$T/events.log" | jq -r .source | sort -u)" reconcile \
	"source reconcile"
is "$(fld panel.notification notifications .title)" '"SSH Login"' \
	"the note written while stopped"
stop_ophookd
start_ophookd || exit 1
sleep 2
expect "restart without changes: no event"

# ---- no secret anywhere ----
leaks=0
for s in "$SECRET1" "$SECRET2" "$SECRET3" FtpHashNeverInEvents secret-of-root \
	CronPassNeverLogged; do
	if grep -rqa -- "$s" "$T/events.log" "$T/ophookd.log" "$T/state"; then
		diag "leaked: $s"
		leaks=$((leaks + 1))
	fi
done
is "$leaks" 0 "no secret value in events, log, journal or snapshot"
stop_ophookd
done_testing
