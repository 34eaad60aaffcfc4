#!/bin/sh
# Build every libFuzzer target in tests/fuzz and run each for a bounded time
# over a scratch copy of its seed corpus.  Exit 1 when a target crashes (or
# does not build).  Env: FUZZ_SECONDS (per target, default 30), FUZZ_BUILD
# (build folder, default a temp dir), CC (default clang).
# Prints a table (target, executions, cov, ft, status) and a last line
# "result: targets=N crashes=C build_failed=B".
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
secs=${FUZZ_SECONDS:-30}
cc=${CC:-clang}
case $cc in *clang*) ;; *) cc=clang ;; esac
own_build=
if [ -n "${FUZZ_BUILD:-}" ]; then
	build=$FUZZ_BUILD
	mkdir -p "$build" || exit 1
else
	build=$(mktemp -d "${TMPDIR:-/tmp}/ophook-fuzz.XXXXXX") || exit 1
	own_build=1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/ophook-fuzz-run.XXXXXX") || exit 1
cleanup() {
	rm -rf "$work"
	[ -n "$own_build" ] && rm -rf "$build"
}
trap cleanup EXIT INT TERM

if ! command -v "$cc" >/dev/null 2>&1; then
	echo "run.sh: $cc not found (contrib/deps.sh test installs clang)" >&2
	exit 1
fi

cflags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -I$top/include $(for d in lib journal bus sources handlers daemon; do printf -- "-I%s " "$top/core/$d"; done) -DOPHOOK_PLUGINDIR=\"/usr/lib/ophook/plugins\""

# target: extra sources and pkg-config modules
target_srcs() {
	case $1 in
	config) echo "core/lib/util.c core/lib/alertlevel.c" ;;
	classify) echo "core/sources/classify.c core/lib/util.c" ;;
	control) echo "core/lib/hmap.c core/lib/util.c core/lib/log.c" ;;
	luaevent) (cd "$top" && echo core/handlers/luahook*.c) && echo "core/handlers/exechook.c core/lib/util.c core/lib/log.c" ;;
	emitline) echo "core/lib/emitline.c" ;;
	*) echo "" ;;
	esac
}
target_pkgs() {
	case $1 in
	config) echo "yaml-0.1 jansson" ;;
	classify) echo "jansson libcrypto" ;;
	control) echo "jansson libuv" ;;
	luaevent) echo "lua5.4 jansson libcurl libuv" ;;
	*) echo "jansson" ;;
	esac
}

targets=
for f in "$top"/tests/fuzz/fuzz_*.c; do
	[ -f "$f" ] || continue
	t=$(basename "$f" .c)
	targets="$targets ${t#fuzz_}"
done

n=0
crashes=0
broken=0
table="$work/table"
printf '%-10s %12s %8s %8s  %s\n' target execs cov ft status >"$table"
for t in $targets; do
	n=$((n + 1))
	srcs=
	for s in $(target_srcs "$t"); do srcs="$srcs $top/$s"; done
	pkgs=$(target_pkgs "$t")
	# shellcheck disable=SC2086
	if ! $cc $cflags $(pkg-config --cflags $pkgs) \
	    "$top/tests/fuzz/fuzz_$t.c" $srcs -o "$build/fuzz_$t" \
	    $(pkg-config --libs $pkgs) >"$work/$t.build" 2>&1; then
		echo "run.sh: fuzz_$t does not build:" >&2
		cat "$work/$t.build" >&2
		broken=$((broken + 1))
		printf '%-10s %12s %8s %8s  %s\n' "$t" - - - "BUILD FAILED" >>"$table"
		continue
	fi
	corpus="$work/corpus-$t"
	mkdir -p "$corpus"
	[ -d "$top/tests/fuzz/corpus/$t" ] &&
		cp "$top/tests/fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null
	dict=
	[ -f "$top/tests/fuzz/$t.dict" ] && dict="-dict=$top/tests/fuzz/$t.dict"
	mkdir -p "$work/art-$t"
	# shellcheck disable=SC2086
	(cd "$work/art-$t" && "$build/fuzz_$t" -max_total_time="$secs" \
		-max_len=4096 -timeout=10 -rss_limit_mb=4096 \
		-print_final_stats=1 $dict "$corpus" >"$work/$t.log" 2>&1)
	rc=$?
	execs=$(grep -a '^stat::number_of_executed_units:' "$work/$t.log" |
		sed 's/^[^:]*::[^:]*: *//')
	last=$(grep -aE '^#[0-9]+[[:space:]].*cov: ' "$work/$t.log" | tail -n 1)
	cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
	ft=$(echo "$last" | sed -n 's/.*ft: \([0-9]*\).*/\1/p')
	status=ok
	if [ $rc -ne 0 ]; then
		crashes=$((crashes + 1))
		status="CRASH (exit $rc)"
		echo "run.sh: fuzz_$t failed:" >&2
		grep -a -A 14 -m 1 '^==[0-9]*==ERROR\|runtime error\|^==[0-9]*== ERROR' \
			"$work/$t.log" >&2
		echo "run.sh: end of its log:" >&2
		tail -n 12 "$work/$t.log" >&2
		for a in "$work/art-$t"/*; do
			[ -f "$a" ] || continue
			echo "run.sh: reproducer $(basename "$a") (base64):" >&2
			base64 "$a" | head -c 4096 >&2
			echo >&2
		done
	fi
	printf '%-10s %12s %8s %8s  %s\n' "$t" "${execs:--}" "${cov:--}" \
		"${ft:--}" "$status" >>"$table"
done

cat "$table"
echo "result: targets=$n crashes=$crashes build_failed=$broken"
[ "$crashes" -eq 0 ] && [ "$broken" -eq 0 ]
