# core/bus: the event bus: submit and group commit into the journal, the
# dispatcher (order per subject, retries, timeouts), handlers, events, the
# in-flight ledger, metrics, cluster fan-out and claims.  Depends on
# core/lib and core/journal.
noinst_LTLIBRARIES += core/bus/libophook-bus.la
core_bus_libophook_bus_la_SOURCES = \
	core/bus/event.c core/bus/event.h \
	core/bus/handler.c core/bus/handler.h \
	core/bus/engine.c core/bus/engine.h \
	core/bus/dispatch.c core/bus/dispatch.h \
	core/bus/metrics.c core/bus/metrics.h \
	core/bus/ledger.c core/bus/ledger.h \
	core/bus/cluster.c core/bus/cluster.h
core_bus_libophook_bus_la_CPPFLAGS = $(BUS_CPPFLAGS)
core_bus_libophook_bus_la_CFLAGS = $(LAYER_CFLAGS)

check_PROGRAMS += tests/unit/test_dispatch
TESTS += tests/unit/test_dispatch
tests_unit_test_dispatch_SOURCES = tests/unit/test_dispatch.c
tests_unit_test_dispatch_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_dispatch_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_metrics
TESTS += tests/unit/test_metrics
tests_unit_test_metrics_SOURCES = tests/unit/test_metrics.c
tests_unit_test_metrics_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_metrics_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_ledger
TESTS += tests/unit/test_ledger
tests_unit_test_ledger_SOURCES = tests/unit/test_ledger.c
tests_unit_test_ledger_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_ledger_LDADD = $(TEST_LIBS)

# The cluster against a fake bus and a fake MariaDB journal.
check_PROGRAMS += tests/unit/test_cluster
TESTS += tests/unit/test_cluster
tests_unit_test_cluster_SOURCES = tests/unit/test_cluster.c
tests_unit_test_cluster_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_cluster_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_backlog
TESTS += tests/unit/test_backlog
tests_unit_test_backlog_SOURCES = tests/unit/test_backlog.c
tests_unit_test_backlog_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_backlog_LDADD = $(TEST_LIBS)
