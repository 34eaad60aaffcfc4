#!/bin/sh
# `hooks test` is a dry run unless --live: a Lua hook's webhook POST, its
# ophook.exec of a script, its write_file and emit are recorded and printed,
# not done (nothing reaches the receiver, no file is touched); with --live
# they happen.  An exec hook is not run in a dry run (its argv, environment
# and stdin are printed), and is with --live.  Relative names are taken in
# hooks_dir, whatever the working folder.  `hooks lint` refuses what
# delivery would refuse: no "#!", not executable, a name the scan skips.
. "$top_srcdir/tests/lib.sh"

need python3
[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"

PORT=$(free_port)
H="$T/hooks"
mkdir -p "$T/posts" "$T/out" "$T/elsewhere"
write_config
cat >> "$T/ophookd.yaml" <<EOF
hooks:
  timeout_ms: 5000
  file_roots:
    - $T/out
EOF

start_post_receiver "$PORT" || exit 1
posts() { ls "$T/posts" | wc -l; }

cat > "$T/touch.sh" <<EOF
#!/bin/sh
touch "$T/touched"
EOF
chmod 0755 "$T/touch.sh"
cat > "$H/dry.lua" <<EOF
ophook.on("domain.added", function(ev)
  local status, body = ophook.http.post("http://127.0.0.1:$PORT/hook",
    ophook.json.encode(ev), {timeout = 3000})
  if status ~= 200 then return ophook.retry, tostring(body) end
  ophook.log.info("posted", ev.subject, "dry", tostring(ophook.dry_run))
  local rc = ophook.exec({"$T/touch.sh", "now"})
  if rc ~= 0 then return false, "touch failed" end
  ophook.write_file("$T/out/written", "x")
  ophook.emit("custom.noted", {domain = ev.domain})
end)
EOF
mkdir -p "$H/domain.added.d"
cat > "$H/domain.added.d/10-mark" <<EOF
#!/bin/sh
cat > "$T/exec-stdin"
EOF
chmod 0644 "$H/dry.lua"
chmod 0755 "$H/domain.added.d/10-mark"

start_ophookd || exit 1
wait_for 20 grep -q "dry.lua: loaded" "$T/ophookd.log"

# -- Lua: dry by default, relative name in hooks_dir --
out=$(cd "$T/elsewhere" && ctl hooks test dry.lua --event domain.added --subject a.example 2>&1)
is "$?" 0 "hooks test (dry) of a relative name from another folder: done"
diag "$out"
is "$(posts)" 0 "dry run: nothing reached the webhook receiver"
ok "$([ ! -e "$T/touched" ]; echo $?)" "dry run: the script was not run"
ok "$([ ! -e "$T/out/written" ]; echo $?)" "dry run: write_file wrote nothing"
ok "$(echo "$out" | grep -q "^would POST http://127.0.0.1:$PORT/hook ([0-9]* bytes)"; echo $?)" \
	"dry run: prints the POST it would make"
ok "$(echo "$out" | grep -q "^would run $T/touch.sh now"; echo $?)" \
	"dry run: prints the command it would run"
ok "$(echo "$out" | grep -q "^would write $T/out/written (1 bytes)"; echo $?)" \
	"dry run: prints the file it would write"
ok "$(echo "$out" | grep -q "^would emit custom.noted"; echo $?)" \
	"dry run: prints the event it would emit"
ok "$(echo "$out" | grep -q 'posted a.example dry true'; echo $?)" \
	"dry run: ophook.dry_run is true"
j=$(ctl --json hooks test dry.lua --event domain.added 2>&1)
calls=$(printf '%s' "$j" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(" ".join(c["call"] for c in r["calls"]), r["dry_run"])')
is "$calls" "http.post exec write_file emit True" "--json: the calls in order, dry_run true"
is "$(posts)" 0 "still nothing reached the receiver"

# -- Lua: --live does it --
out=$(ctl hooks test "$H/dry.lua" --event domain.added --subject b.example --live 2>&1)
is "$?" 0 "hooks test --live: done"
is "$(posts)" 1 "--live: the webhook was posted"
ok "$([ -e "$T/touched" ]; echo $?)" "--live: the script ran"
ok "$([ -e "$T/out/written" ]; echo $?)" "--live: the file was written"
ok "$(echo "$out" | grep -q '^would'; [ $? -ne 0 ]; echo $?)" "--live: no 'would' lines"

# -- exec hook --
out=$(ctl hooks test domain.added.d/10-mark --event domain.added --subject c.example 2>&1)
is "$?" 0 "hooks test (dry) of an exec hook: exit 0"
ok "$([ ! -e "$T/exec-stdin" ]; echo $?)" "dry run: the exec hook was not run"
ok "$(echo "$out" | grep -q "^would run $H/domain.added.d/10-mark" &&
	echo "$out" | grep -q 'env: OPHOOK_EVENT=domain.added' &&
	echo "$out" | grep -q 'stdin: .*c.example'; echo $?)" \
	"dry run: prints its argv, environment and stdin"
out=$(ctl hooks test domain.added.d/10-mark --event domain.added --subject c.example --live 2>&1)
is "$?" 0 "hooks test --live of an exec hook: exit 0"
ok "$(grep -q c.example "$T/exec-stdin"; echo $?)" "--live: the exec hook ran with the event"

# -- lint refuses what delivery would refuse --
printf 'echo no shebang\n' > "$H/domain.added.d/20-noshebang"
chmod 0755 "$H/domain.added.d/20-noshebang"
out=$(ctl hooks lint domain.added.d/20-noshebang 2>&1)
ok "$([ $? -eq 1 ] && echo "$out" | grep -q "20-noshebang: refused: no \"#!\" line"; echo $?)" \
	"lint: an exec hook without #! is refused, named"
printf '#!/bin/sh\n' > "$H/domain.added.d/30-noexec"
chmod 0644 "$H/domain.added.d/30-noexec"
out=$(ctl hooks lint domain.added.d/30-noexec 2>&1)
ok "$([ $? -eq 1 ] && echo "$out" | grep -q "30-noexec: skipped: not executable"; echo $?)" \
	"lint: an exec hook without the execute bit is refused, named"
printf '#!/bin/sh\n' > "$H/domain.added.d/40-old.bak"
chmod 0755 "$H/domain.added.d/40-old.bak"
out=$(ctl hooks lint domain.added.d/40-old.bak 2>&1)
ok "$([ $? -eq 1 ] && echo "$out" | grep -q "40-old.bak: refused: the hooks scan skips this name"; echo $?)" \
	"lint: a name the scan skips is refused, named"
out=$(cd "$T/elsewhere" && ctl hooks lint dry.lua domain.added.d/10-mark 2>&1)
is "$?" 0 "lint: good files by relative names in hooks_dir"
is "$(posts)" 1 "lint ran nothing for real"

done_testing
