# tests: unit tests (cmocka, TAP) and integration scripts (TAP).
EXTRA_DIST += tests/testwrapper.sh tests/lib.sh
EXTRA_DIST += tests/valgrind.supp
TESTS += tests/integration/hostile.sh
EXTRA_DIST += tests/integration/hostile.sh
