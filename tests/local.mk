# tests: unit tests (cmocka, TAP) and integration scripts (TAP).
EXTRA_DIST += tests/testwrapper.sh tests/lib.sh
EXTRA_DIST += tests/valgrind.supp
EXTRA_DIST += tests/lsan.supp
TESTS += tests/integration/hostile.sh
# every plugin enabled at its default paths writes only in the trees (#20)
TESTS += tests/integration/confined.sh
EXTRA_DIST += tests/integration/confined.sh
TESTS += tests/integration/hostile_hooks.sh
EXTRA_DIST += tests/integration/hostile_hooks.sh
TESTS += tests/integration/hostile_state.sh
EXTRA_DIST += tests/integration/hostile_state.sh
TESTS += tests/integration/cluster.sh
EXTRA_DIST += tests/integration/cluster.sh
TESTS += tests/integration/cluster_dns.sh
EXTRA_DIST += tests/integration/cluster_dns.sh
EXTRA_DIST += tests/integration/hostile.sh
# reliability suite: one TAP test running every scenario, prints the table
TESTS += tests/reliability/run.sh
EXTRA_DIST += tests/reliability/run.sh tests/reliability/lib.sh \
	tests/reliability/README.md \
	tests/reliability/s_kill9.sh tests/reliability/s_diskfull.sh \
	tests/reliability/s_crash.sh tests/reliability/s_roots.sh \
	tests/reliability/s_mount.sh tests/reliability/s_hookfail.sh \
	tests/reliability/s_kill9slow.sh
# the catalogue against the journals (with OPHOOK_CATALOGUE_ALL=1, after
# the suite: contrib/run-tests.sh)
TESTS += tests/integration/catalogue.sh
EXTRA_DIST += tests/integration/catalogue.sh
