#!/bin/sh
# Runs a unit test binary, under valgrind when OPHOOK_VALGRIND=1 (not in
# sanitizer builds).  Scripts run as they are.
case "$1" in
*.sh) exec "${SHELL:-/bin/sh}" "$@" ;;
esac
if [ "${OPHOOK_VALGRIND:-0}" = 1 ] && command -v valgrind >/dev/null 2>&1; then
	# libtool wrappers: run the real binary
	exec valgrind -q --error-exitcode=99 \
		--leak-check=full --errors-for-leak-kinds=definite \
		--suppressions="${top_srcdir:-.}/tests/valgrind.supp" "$@"
fi
exec "$@"
