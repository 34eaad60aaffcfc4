#!/bin/sh
# Reliability suite: runs every scenario tests/reliability/s_*.sh (or the
# ones named as arguments: kill9 diskfull ...) and prints one table
#   scenario | events | lost | duplicated | result
# as TAP (one test per scenario; the scenarios' own TAP lines and notes
# are shown as "# " lines).  Exit 1 when a row is FAIL.  A scenario that
# fails and prints "todo: WHY" (a known daemon bug, reported) shows as
# TODO and a TAP "# TODO" test, which does not fail the suite.
# Needs top_srcdir and top_builddir (set by make check).
: "${top_srcdir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
export top_srcdir top_builddir
sh=${SHELL:-/bin/sh}
dir=$top_srcdir/tests/reliability
order="kill9 kill9slow diskfull crash roots mount hookfail"

if [ $# -gt 0 ]; then names="$*"; else
	names=
	for n in $order; do [ -f "$dir/s_$n.sh" ] && names="$names $n"; done
	for f in "$dir"/s_*.sh; do
		n=$(basename "$f" .sh); n=${n#s_}
		case " $names " in *" $n "*) ;; *) names="$names $n" ;; esac
	done
fi
if [ ! -x "$top_builddir/ophookd" ]; then
	echo "1..0 # SKIP ophookd not built in $top_builddir"; exit 0
fi

set -- $names
echo "1..$#"
rows=$(mktemp "${TMPDIR:-/tmp}/ophook-rel.XXXXXX") || exit 1
trap 'rm -f "$rows" "$rows.out"' EXIT
i=0
fails=0
todos=0
for n in "$@"; do
	i=$((i + 1))
	start=$(date +%s)
	REL_NAME=$n "$sh" "$dir/s_$n.sh" >"$rows.out" 2>&1
	rc=$?
	secs=$(( $(date +%s) - start ))
	sed 's/^/#   /' "$rows.out"
	r=$(grep '^row: ' "$rows.out" | tail -n 1)
	skip=$(grep -m 1 '^1\.\.0 # SKIP' "$rows.out")
	if [ -n "$skip" ]; then
		echo "ok $i - $n # SKIP ${skip#*SKIP }"
		echo "$n - - - skipped" >>"$rows"
		continue
	fi
	todo=$(grep -m 1 '^todo: ' "$rows.out")
	[ -n "$r" ] || r="row: $n - - - FAIL"
	set -- ${r#row: }
	res=$5
	[ $rc -ne 0 ] && res=FAIL
	if [ "$res" = FAIL ] && [ -n "$todo" ]; then
		echo "$1 $2 $3 $4 TODO" >>"$rows"
		echo "not ok $i - $n (${secs}s) # TODO ${todo#todo: }"
		todos=$((todos + 1))
		continue
	fi
	echo "$1 $2 $3 $4 $res" >>"$rows"
	if [ "$res" = ok ]; then
		echo "ok $i - $n (${secs}s)"
	else
		fails=$((fails + 1))
		echo "not ok $i - $n (${secs}s, exit $rc)"
	fi
done

echo
printf '%-10s | %6s | %4s | %10s | %s\n' scenario events lost duplicated result
printf '%s\n' '-----------+--------+------+------------+-------'
while read -r s e l d r; do
	printf '%-10s | %6s | %4s | %10s | %s\n' "$s" "$e" "$l" "$d" "$r"
done <"$rows"
echo "result: scenarios=$i failed=$fails known_failures=$todos"
[ "$fails" -eq 0 ]
