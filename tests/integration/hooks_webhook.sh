#!/bin/sh
# Integration test of hooks: a Lua hook posts every domain.added to a small
# HTTP server on loopback (python3 http.server, run by the test), while
# hostile hooks beside it (endless loop, memory bomb, os.execute and io
# attempts, an error in the middle, a huge return value, a syntax error on
# reload) each fail alone; an exec hook sees every event and a wrongly owned
# one is refused; `ophookctl check` answers allow/deny from a sample pre
# hook; hooks lint/test/list work.
. "$top_srcdir/tests/lib.sh"

need python3
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"

N=5
PORT=$(free_port)
H="$T/hooks"
mkdir -p "$T/posts"
export OPHOOK_LOG_LEVEL=info
write_config
cat >> "$T/ophookd.yaml" <<EOF
hooks:
  lua_memory_kb: 8192
  timeout_ms: 1000
  output_max: 2048
EOF
if [ -f "$PLUGIN_BUILD_DIRS/log/.libs/log.so" ]; then
	install_plugins log
fi

# -- the webhook receiver: one file per POST body --
start_post_receiver "$PORT" || exit 1

# -- hooks --
cat > "$H/webhook.lua" <<EOF
ophook.on("domain.added", function(ev)
  local status, body = ophook.http.post("http://127.0.0.1:$PORT/hook",
    ophook.json.encode(ev), {timeout = 3000})
  if status ~= 200 then return ophook.retry, tostring(body) end
  ophook.log.info("posted", ev.domain)
end)
EOF
cat > "$H/loop.lua" <<'EOF'
ophook.on("domain.added", function(ev) while true do end end)
EOF
cat > "$H/bomb.lua" <<'EOF'
ophook.on("domain.added", function(ev)
  local t = {}
  for i = 1, 1e9 do t[i] = string.rep("x", 4096) .. i end
end)
EOF
cat > "$H/escape.lua" <<'EOF'
ophook.on("domain.added", function(ev)
  if io then io.open("/tmp/ophook-escape-io", "w") end
  os.execute("touch /tmp/ophook-escape-exec")
end)
EOF
cat > "$H/middle.lua" <<'EOF'
ophook.on("domain.added", function(ev)
  local x = ev.domain
  error("broken in the middle: " .. x)
end)
EOF
cat > "$H/huge.lua" <<'EOF'
ophook.on("domain.added", function(ev)
  return false, string.rep("h", 1000000)
end)
EOF
cat > "$H/reload.lua" <<'EOF'
ophook.on("domain.added", function(ev) ophook.log.info("reload v1 saw", ev.domain) end)
EOF
cp "$top_srcdir/hooks/deny-reserved-domains.lua" "$H/"
mkdir -p "$H/domain.added.d"
cat > "$H/domain.added.d/10-record" <<EOF
#!/bin/sh
read -r line
echo "\$OPHOOK_EVENT \$OPHOOK_SUBJECT \$OPHOOK_ID" >> "$T/exec.log"
EOF
cat > "$H/domain.added.d/20-groupw" <<EOF
#!/bin/sh
echo ran >> "$T/groupw.log"
EOF
chmod 0644 "$H"/*.lua
chmod 0755 "$H/domain.added.d/10-record"
chmod 0775 "$H/domain.added.d/20-groupw"
rm -f /tmp/ophook-escape-io /tmp/ophook-escape-exec

start_ophookd || exit 1
loaded() { grep -q "reload.lua: loaded" "$T/ophookd.log"; }
wait_for 20 loaded
wait_for 10 grep -q "10-record: exec hook" "$T/ophookd.log"

# A syntax error on reload keeps the old version running.
cat > "$H/reload.lua" <<'EOF'
ophook.on("domain.added", function(ev)
  local = 1
end)
EOF
touch -d '+2 seconds' "$H/reload.lua" 2>/dev/null || true
wait_for 20 grep -q "reload.lua:2:" "$T/ophookd.log"
ok $? "syntax error on reload is reported with file:line"

i=1
while [ $i -le $N ]; do
	ctl emit domain.added "site$i.com" "domain=site$i.com" >/dev/null
	i=$((i + 1))
done

posts() { ls "$T/posts" | wc -l | tr -d ' '; }
have_posts() { [ "$(posts)" -ge "$N" ]; }
wait_for 60 have_posts
is "$(posts)" "$N" "the webhook server received one POST per domain.added"
ok "$(grep -l '"type": *"domain.added"\|"type":"domain.added"' "$T/posts"/*.json | wc -l | tr -d ' ' | grep -qx "$N"; echo $?)" \
	"each POST body is the event JSON"
ok "$(grep -q '"domain":"site3.com"\|"domain": "site3.com"' "$T/posts"/*.json; echo $?)" \
	"the payload carries the domain field"

exec_seen() { [ "$(wc -l < "$T/exec.log" 2>/dev/null || echo 0)" -ge "$N" ]; }
wait_for 30 exec_seen
is "$(grep -c '^domain.added site' "$T/exec.log" 2>/dev/null)" "$N" \
	"the exec hook saw every event with OPHOOK_EVENT/OPHOOK_SUBJECT"
ok "$([ ! -e "$T/groupw.log" ]; echo $?)" "a group-writable exec hook never runs"
ok "$(grep -q '20-groupw: refused: file writable by group or others' "$T/ophookd.log"; echo $?)" \
	"the refusal names the file and the reason"

# each hostile hook failed with its own message
wait_for 30 grep -q "loop.lua:1: timeout" "$T/ophookd.log"
ok $? "endless loop: timeout with file:line"
wait_for 30 grep -q "bomb.lua: memory limit of 8192 KiB exceeded" "$T/ophookd.log"
ok $? "memory bomb: memory limit message"
wait_for 30 grep -q "escape.lua:3: attempt to call a nil value (field 'execute')" "$T/ophookd.log"
ok $? "os.execute attempt: nil"
ok "$([ ! -e /tmp/ophook-escape-io ] && [ ! -e /tmp/ophook-escape-exec ]; echo $?)" \
	"no file was created by the escape attempts"
wait_for 30 grep -q "middle.lua:3: broken in the middle: site" "$T/ophookd.log"
ok $? "error in the middle: file:line and message"
ok "$(grep -q 'stack traceback' "$T/ophookd.log"; echo $?)" "errors carry a traceback"
wait_for 30 grep -q "huge.lua: handler for 'domain.added' returned false: hhhh.*bytes cut" "$T/ophookd.log"
ok $? "huge return value: truncated message"
ok "$(grep 'huge.lua' "$T/ophookd.log" | awk '{ if (length($0) > 8192) bad = 1 } END { exit bad }'; echo $?)" \
	"no log line carries the huge value"
wait_for 30 grep -q "reload v1 saw site$N.com" "$T/ophookd.log"
ok $? "the old version of reload.lua still runs after the bad reload"

rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$OPHOOKD_PID/status")
diag "ophookd VmRSS ${rss} kB"
# 9 Lua states capped at 8 MiB each plus the daemon; ASan builds keep a
# quarantine of freed memory on top
rss_max=262144
if ldd "$OPHOOKD" 2>/dev/null | grep -q libasan; then rss_max=1048576; fi
ok "$([ "${rss:-999999}" -lt "$rss_max" ]; echo $?)" "the daemon's memory stays bounded (< $rss_max kB)"
ok "$(kill -0 "$OPHOOKD_PID"; echo $?)" "the daemon is still running"

# pre-stage checks
out=$(ctl check domain.add domain=reserved.example 2>&1)
is "$?" 1 "check: a reserved domain is denied with exit 1"
ok "$(echo "$out" | grep -q 'reserved'; echo $?)" "check: the reason is printed"
diag "$out"
out=$(ctl check domain.add domain=shop.com 2>&1)
is "$?" 0 "check: a normal domain is allowed with exit 0"
out=$(ctl check user.add user=bob 2>&1)
is "$?" 0 "check: an intent without pre hooks is allowed"

# the opencli glue
GLUE="$top_srcdir/contrib/opencli-pre-hook"
out=$(OPHOOKCTL="$OPHOOKCTL" OPHOOK_SOCKET="$T/ophookd.sock" sh "$GLUE" domains-add reserved.example bob 2>&1)
is "$?" 1 "opencli-pre-hook: domains-add of a reserved domain is refused"
ok "$(echo "$out" | grep -q 'reserved name'; echo $?)" "opencli-pre-hook prints the reason"
OPHOOKCTL="$OPHOOKCTL" OPHOOK_SOCKET="$T/ophookd.sock" sh "$GLUE" domains-add shop.com bob >/dev/null 2>&1
is "$?" 0 "opencli-pre-hook: domains-add shop.com is allowed"
OPHOOKCTL="$OPHOOKCTL" OPHOOK_SOCKET="$T/ophookd.sock" sh "$GLUE" websites-list >/dev/null 2>&1
is "$?" 0 "opencli-pre-hook: commands without an intent pass"

# lint, test, list
out=$(ctl hooks lint "$H/reload.lua" 2>&1)
ok "$([ $? -ne 0 ] && echo "$out" | grep -q 'reload.lua:2:'; echo $?)" \
	"hooks lint reports the syntax error with file:line"
out=$(ctl hooks lint "$H/webhook.lua" 2>&1)
is "$?" 0 "hooks lint accepts a good file"
cat > "$T/payload.json" <<'EOF'
{"domain": "test.example.org", "user": "alice"}
EOF
cat > "$H/testme.lua.txt" <<'EOF'
ophook.on("domain.*", function(ev)
  ophook.log.info("testing", ev.domain, ev.user)
  ophook.emit("custom.noted", {domain = ev.domain})
end)
EOF
before=$(posts)
out=$(ctl hooks test "$H/testme.lua.txt" --event domain.added --payload "$T/payload.json" 2>&1)
is "$?" 0 "hooks test runs a file on a made-up event"
ok "$(echo "$out" | grep -q 'testing test.example.org alice'; echo $?)" \
	"hooks test prints what the hook logged"
ok "$(echo "$out" | grep -q '^would emit custom.noted'; echo $?)" \
	"hooks test does not submit emitted events"
out=$(ctl hooks test "$H/domain.added.d/10-record" --event domain.added --payload "$T/payload.json" --live 2>&1)
is "$?" 0 "hooks test runs an exec hook on a made-up event"
ok "$(grep -q '^domain.added test.example.org 0$' "$T/exec.log"; echo $?)" \
	"the exec hook got the made-up event"
out=$(ctl hooks list 2>&1)
ok "$(echo "$out" | grep -q 'webhook.lua' && echo "$out" | grep -q '20-groupw'; echo $?)" \
	"hooks list shows Lua and exec hooks"

# removing a file unregisters it
rm -f "$H/loop.lua"
wait_for 20 grep -q "loop.lua: removed" "$T/ophookd.log"
ok $? "a removed hook file is unloaded"

stop_ophookd
OPHOOKCTL="$OPHOOKCTL" OPHOOK_SOCKET="$T/ophookd.sock" sh "$GLUE" domains-add reserved.example bob >/dev/null 2>&1
is "$?" 0 "opencli-pre-hook: ophookd down: allowed by default"
OPHOOK_FAIL_CLOSED=1 OPHOOKCTL="$OPHOOKCTL" OPHOOK_SOCKET="$T/ophookd.sock" sh "$GLUE" domains-add shop.com bob >/dev/null 2>&1
is "$?" 1 "opencli-pre-hook: ophookd down: refused with OPHOOK_FAIL_CLOSED=1"
done_testing
