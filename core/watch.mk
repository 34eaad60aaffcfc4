# core/watch: inotify watcher, classifier, snapshot and reconcile.
core_libophookcore_la_SOURCES += core/watch.c core/watch.h \
	core/classify.c core/classify.h \
	core/snapshot.c core/snapshot.h \
	core/mountwatch.c core/mountwatch.h

check_PROGRAMS += tests/unit/test_classify tests/unit/test_snapshot
TESTS += tests/unit/test_classify tests/unit/test_snapshot
tests_unit_test_classify_SOURCES = tests/unit/test_classify.c \
	tests/unit/test_classify_certs.inc
tests_unit_test_classify_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_classify_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/unit/test_mountwatch
TESTS += tests/unit/test_mountwatch
tests_unit_test_mountwatch_SOURCES = tests/unit/test_mountwatch.c
tests_unit_test_mountwatch_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mountwatch_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/unit/test_watchtree
TESTS += tests/unit/test_watchtree
tests_unit_test_watchtree_SOURCES = tests/unit/test_watchtree.c
tests_unit_test_watchtree_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_watchtree_LDADD = $(TEST_LIBS)
tests_unit_test_snapshot_SOURCES = tests/unit/test_snapshot.c
tests_unit_test_snapshot_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_snapshot_LDADD = $(TEST_LIBS)

TESTS += tests/integration/watch_openpanel.sh
EXTRA_DIST += tests/integration/watch_openpanel.sh \
	tests/integration/watch_lib.sh \
	tests/integration/openpanel/domain.conf \
	tests/integration/openpanel/suspended.conf \
	tests/integration/openpanel/suspended_user.conf \
	tests/integration/openpanel/zone_template.txt \
	tests/integration/openpanel/openpanel.config
TESTS += tests/integration/watch_restart.sh
EXTRA_DIST += tests/integration/watch_restart.sh
TESTS += tests/integration/watch_roots.sh
EXTRA_DIST += tests/integration/watch_roots.sh
