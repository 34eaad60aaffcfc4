#!/bin/sh
# The help is complete: every command the daemon has (its `commands`
# answer, the source of truth) and ophookctl's own is in `ophookctl
# --help`, has `ophookctl help CMD` text and an entry in ophookctl(8); the
# hooks synopsis of ophookctl(8) is that of ophook-lua(7).
. "$top_srcdir/tests/lib.sh"

[ -x "$OPHOOKD" ] && [ -x "$OPHOOKCTL" ] || skip_all "ophookd/ophookctl not built"
MAN="$top_srcdir/doc/ophookctl.8"
LUAMAN="$top_srcdir/doc/ophook-lua.7"

write_config
start_ophookd || exit 1

cmds=$(ctl commands)
is "$?" 0 "ophookctl commands answers"
ok "$(echo "$cmds" | grep -qx 'hooks test' && echo "$cmds" | grep -qx 'status'; echo $?)" \
	"the list has the daemon's commands, as typed"
usage=$("$OPHOOKCTL" --help)
# the man page's entries, fonts stripped: ".B plugins enable|disable|reload NAME"
entries=$(sed -n 's/\\f[BIRP]//g; s/\\-/-/g; /^\.B /{s/^\.B //; p}' "$MAN")
missing=""
for c in $(echo "$cmds" | tr ' ' '+') types guard help; do
	c=$(echo "$c" | tr '+' ' ')
	w1=${c%% *}
	w2=""
	[ "$w1" != "$c" ] && w2=${c#* }
	echo "$usage" | grep -Eq "^  $c( |\$)" || missing="$missing [--help: $c]"
	"$OPHOOKCTL" help $c 2>/dev/null | grep -q "^usage: ophookctl $c" ||
		missing="$missing [help $c]"
	if [ -z "$w2" ]; then
		echo "$entries" | grep -Eq "^$w1( |\$)" || missing="$missing [ophookctl.8: $c]"
	else
		echo "$entries" | grep -E "^$w1 " | grep -Eq "(^$w1 |\\|)$w2(\\||\$| )" ||
			missing="$missing [ophookctl.8: $c]"
	fi
done
is "$missing" "" "every command is in --help, help CMD and ophookctl(8)"

# ophookctl(8)'s hooks synopsis is ophook-lua(7)'s
strip() { sed 's/\\f[BIRP]//g; s/\\-/-/g; s/"//g; s/^\.BI* //; s/ *$//'; }
for sub in list lint test; do
	a=$(grep -E "^ophookctl hooks $sub" "$LUAMAN" | head -1 | strip | sed 's/^ophookctl //')
	b=$(grep -E "^\.B hooks $sub( |\$)" "$MAN" | head -1 | strip)
	is "$b" "$a" "hooks $sub: ophookctl(8) and ophook-lua(7) agree"
done

"$OPHOOKCTL" help nosuch >/dev/null 2>&1
is "$?" 2 "help of an unknown command: exit 2"
done_testing
