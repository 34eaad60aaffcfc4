#!/bin/sh
# The catalogue (core/lib/catalogue.c) against what ophook really journals.
# The schemas are installed (make install-data-local DESTDIR=...) and read
# by a real JSON Schema validator (python3-jsonschema):
#  - every schema is a valid draft-07 schema, one a type of `ophookctl
#    types`, and every example of the catalogue validates;
#  - a daemon here makes file and DB events (domains, zones, named.conf,
#    openpanel.config, users, admins) and every one it journals validates;
#  - `check` refuses an unknown intent (exit 2, a suggestion), `hooks lint`
#    warns of an ophook.pre for one;
#  - with OPHOOK_CATALOGUE_ALL=1 (contrib/run-tests.sh, after `make check`
#    ran the suite with OPHOOK_JOURNALS_DIR set, tests/lib.sh): every event
#    journaled by every integration test validates, and every type of the
#    catalogue was emitted by at least one test.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/integration/watch_lib.sh"
need sqlite3 make
[ -x "$OPHOOKD" ] || skip_all "ophookd not built"
python3 -c 'import jsonschema' 2>/dev/null ||
	skip_all "python3-jsonschema not installed (contrib/deps.sh test)"

# the installed schemas
make -s -C "$top_builddir" install-data-local DESTDIR="$T/inst" >/dev/null 2>&1
SCHEMAS=$(find "$T/inst" -type d -path '*/ophook/schemas' | head -n 1)
ok "$([ -n "$SCHEMAS" ] && [ -f "$SCHEMAS/domain.added.json" ]; echo $?)" \
	"make install puts the schemas in \$(pkgdatadir)/schemas"
[ -n "$SCHEMAS" ] || { done_testing; exit 1; }
"$OPHOOKCTL" types --names > "$T/types"
"$OPHOOKCTL" types --json > "$T/catalogue.json"

# validate FILE...: every line of the files (one event a line) of a type
# of the catalogue against its schema; prints "bad" lines and the counts,
# writes the types seen to $T/seen
validate() {
	python3 - "$SCHEMAS" "$T/seen" "$@" <<'PY'
import json, os, sys
import jsonschema
sdir, seen_file, files = sys.argv[1], sys.argv[2], sys.argv[3:]
validators = {}
for f in os.listdir(sdir):
    if f.endswith(".json"):
        s = json.load(open(os.path.join(sdir, f)))
        validators[f[:-5]] = jsonschema.Draft7Validator(s)
seen, n, custom, bad = {}, 0, 0, 0
for path in files:
    for line in open(path, errors="replace"):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        v = validators.get(ev.get("type"))
        if v is None:
            custom += 1
            continue
        n += 1
        errs = sorted(v.iter_errors(ev), key=lambda e: list(e.path))
        if errs:
            bad += 1
            if bad <= 20:
                print("# %s: %s %s (source %s): %s" % (
                    os.path.basename(path), ev.get("type"),
                    ev.get("subject"), ev.get("source"),
                    "; ".join(e.message for e in errs)[:300]))
        else:
            key = ev["type"]
            seen.setdefault(key, set()).add(os.path.basename(path))
with open(seen_file, "w") as f:
    for t in sorted(seen):
        f.write("%s %s\n" % (t, " ".join(sorted(seen[t]))))
print("# %d events of catalogue types checked, %d invalid, %d of other "
      "types" % (n, bad, custom))
sys.exit(1 if bad else 0)
PY
}

ok "$(python3 - "$SCHEMAS" "$T/types" <<'PY'
import json, os, sys
import jsonschema
sdir = sys.argv[1]
types = open(sys.argv[2]).read().split()
files = sorted(f[:-5] for f in os.listdir(sdir) if f.endswith(".json"))
if files != sorted(types):
    print("# schemas %s vs types %s" % (files, types)); sys.exit(1)
for t in types:
    jsonschema.Draft7Validator.check_schema(json.load(open(os.path.join(sdir, t + ".json"))))
PY
echo $?)" "one valid draft-07 schema for each of the $(wc -l < "$T/types") types"

python3 -c '
import json, sys
for t in json.load(open(sys.argv[1]))["types"]:
    print(json.dumps(t["example"]))' "$T/catalogue.json" > "$T/examples.jsonl"
validate "$T/examples.jsonl" > "$T/v.out"
ok $? "every example of the catalogue validates"
sed -n '/^# /p' "$T/v.out"
is "$(wc -l < "$T/seen")" "$(wc -l < "$T/types")" "an example for every type"

# ---- a daemon: file and DB events of its own ----
watch_config
sed -i 's|^panel_db:|panel_db:\n  admin_db: '"$T"'/users.db|' "$T/ophookd.yaml"
sed -i 's|^  poll_ms: .*|  poll_ms: 200|' "$T/ophookd.yaml"
install_plugins log
R=$T/root
mkdir -p "$R/caddy/domains" "$R/caddy/deny" "$R/openpanel/core/users" \
	"$R/openpanel/conf" "$R/caddy/ssl/custom/shop.example"
sqlite3 "$T/users.db" "CREATE TABLE user (id INTEGER PRIMARY KEY,
	username TEXT UNIQUE NOT NULL, password_hash TEXT NOT NULL, role TEXT
	NOT NULL DEFAULT 'user', is_active BOOLEAN DEFAULT 1 NOT NULL,
	totp_enabled BOOLEAN DEFAULT 0);
	INSERT INTO user VALUES (1, 'root', 'x', 'admin', 1, 1);"
printf '[DEFAULT]\nns1 = ns1.example.net\n' > "$R/openpanel/conf/openpanel.config"
start_ophookd || { ok 1 "ophookd starts"; done_testing; exit 1; }
_seen() { [ "$(log_count_type "$1")" -ge 1 ]; }
seen() { wait_for 15 _seen "$1" || diag "no $1 in events.log"; }
sleep 1 # the admin DB's baseline

mkdir "$R/openpanel/core/users/bob"
printf 'shop.example {\n    reverse_proxy http://127.0.0.1:8080\n}\n' \
	> "$R/caddy/domains/shop.example.conf"
seen domain.added
printf 'shop.example {\n    reverse_proxy http://127.0.0.1:8081\n}\n' \
	> "$R/caddy/domains/shop.example.conf"
printf '[DEFAULT]\nns1 = ns1.example.org\n' > "$R/openpanel/conf/openpanel.config"
printf '@blocked {\n    remote_ip 198.51.100.7\n}\nrespond @blocked 403\n' \
	> "$R/caddy/deny/bob.ips"
printf '$TTL 3600\n@ IN SOA ns1.example.net. hostmaster.shop.example. ( 2025050101 3600 600 86400 300 )\n@ IN NS ns1.example.net.\n' \
	> "$T/bind/zones/shop.example.zone"
echo 'zone "shop.example" IN { type master; file "/etc/bind/zones/shop.example.zone"; };' \
	>> "$T/bind/named.conf.local"
sleep 0.5
echo '// an edit that adds no zone' >> "$T/bind/named.conf.local"
printf 'info@shop.example|{SHA512-CRYPT}$6$x$y\n' > "$T/mail/config/postfix-accounts.cf"
if command -v openssl >/dev/null; then
	make_cert shop.example 4660 "$R/caddy/ssl/custom/shop.example/fullchain.pem" \
		"$R/caddy/ssl/custom/shop.example/key.pem"
fi
sqlite3 "$T/users.db" "INSERT INTO user VALUES (2, 'carol', 'x', 'reseller', 1, 0);"
seen admin.added
sqlite3 "$T/users.db" "UPDATE user SET is_active = 0 WHERE id = 2;"
seen admin.changed
sqlite3 "$T/users.db" "DELETE FROM user WHERE id = 2;"
seen admin.removed
seen domain.updated
rm "$R/caddy/domains/shop.example.conf"
_n_types() { [ "$(ctl --json events -n 1000 | jq -r '.[].type' 2>/dev/null |
	sort -u | wc -l)" -ge "$1" ]; }
wait_for 20 _n_types 12
sleep 1

# the check of an unknown intent, and lint
out=$(ctl check domian.add domain=shop.example 2>&1)
is "$?" 2 "check of an unknown intent: exit 2"
is "$out" "ophookctl: check: unknown intent 'domian.add' (did you mean domain.add?)" \
	"it says so and suggests the intent meant"
diag "$out"
out=$(ctl check domain.add domain=shop.example 2>&1)
is "$?" 0 "check of a known intent without pre hooks: allow"
printf 'ophook.pre("user.suspnd", function(r) return true end)\n' > "$T/typo.lua"
chmod 600 "$T/typo.lua"
out=$(ctl hooks lint "$T/typo.lua" 2>&1)
is "$?" 0 "hooks lint: a pre hook of an unknown intent still loads"
ok "$(echo "$out" | grep -q "warning: ophook.pre('user.suspnd'): unknown intent.*did you mean user.suspend?"; echo $?)" \
	"hooks lint warns of it"
diag "$out"

stop_ophookd
python3 -c '
import json, sqlite3, sys
for i, p in sqlite3.connect(sys.argv[1]).execute("SELECT id, payload FROM events"):
    o = json.loads(p); o["id"] = i; print(json.dumps(o))' "$T/state/journal.db" > "$T/own.jsonl"
validate "$T/own.jsonl" > "$T/v.out"
ok $? "every event this test journaled validates"
sed -n '/^# /p' "$T/v.out"
own=$(cut -d' ' -f1 "$T/seen" | tr '\n' ' ')
diag "types made here: $own"
for t in domain.added domain.updated domain.removed user.added config.changed \
	user.denylist.changed dns.zone.changed dns.config.changed \
	mail.account.added admin.added admin.changed admin.removed; do
	ok "$(grep -q "^$t " "$T/seen"; echo $?)" "$t made and valid"
done

# ---- the whole suite's journals ----
if [ "${OPHOOK_CATALOGUE_ALL:-0}" = 1 ]; then
	J=${OPHOOK_JOURNALS_DIR:-$top_builddir/tests/journals}
	nfiles=$(ls "$J"/*.jsonl 2>/dev/null | wc -l)
	ok "$([ "$nfiles" -gt 10 ]; echo $?)" "journals of $nfiles tests collected in $J"
	validate "$J"/*.jsonl "$T/own.jsonl" > "$T/v.out"
	ok $? "every event journaled by the integration tests validates"
	sed -n '/^# /p' "$T/v.out"
	missing=""
	for t in $(cat "$T/types"); do
		grep -q "^$t " "$T/seen" || missing="$missing $t"
	done
	is "$missing" "" "every type of the catalogue is emitted by at least one test"
	sed 's/^/# seen: /' "$T/seen"
fi
done_testing
