# bench: executables bench/NAME N (each prints a table and a result: line)
EXTRA_DIST += bench/README.md
EXTRA_DIST += bench/dispatch
EXTRA_DIST += bench/cluster
EXTRA_DIST += bench/isolation
# bench/containers (containers): Podman -> container source -> exec hook
EXTRA_DIST += bench/containers
# bench/poll (paneldb): the DB poller's cost; the script runs bench/poll_bench
check_PROGRAMS += bench/poll_bench
bench_poll_bench_SOURCES = bench/poll.c
bench_poll_bench_CFLAGS = $(TEST_CFLAGS)
bench_poll_bench_LDADD = $(TEST_LIBS)
EXTRA_DIST += bench/poll
# bench/hooks (hooks): no-op Lua hook vs exec hook vs fork+exec per event
check_PROGRAMS += bench/hooks_bench
bench_hooks_bench_SOURCES = bench/hooks.c
bench_hooks_bench_CFLAGS = $(TEST_CFLAGS)
bench_hooks_bench_LDADD = $(TEST_LIBS)
EXTRA_DIST += bench/hooks
# bench/burst (watch): inotify burst, inotifywait loop, bare loop, latency
check_PROGRAMS += bench/burst_helper
bench_burst_helper_SOURCES = bench/burst.c
bench_burst_helper_CFLAGS = $(AM_CFLAGS)
EXTRA_DIST += bench/burst
EXTRA_DIST += bench/console tests/console/paint.js
