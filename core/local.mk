# core: loop, engine, dispatcher, plugin host, small utilities.
core_libophookcore_la_SOURCES += \
	core/log.c core/log.h \
	core/util.c core/util.h \
	core/hmap.c core/hmap.h \
	core/event.c core/event.h \
	core/handler.h \
	core/engine.c core/engine.h \
	core/dispatch.c core/dispatch.h \
	core/pluginhost.c core/pluginhost.h \
	core/plugsettings.c core/plugsettings.h \
	core/metrics.c core/metrics.h \
	core/ledger.c core/ledger.h

sbin_PROGRAMS += ophookd
ophookd_SOURCES = core/main.c
ophookd_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
ophookd_LDADD = core/libophookcore.la $(DEPS_LIBS)

check_PROGRAMS += tests/unit/test_dispatch
TESTS += tests/unit/test_dispatch
tests_unit_test_dispatch_SOURCES = tests/unit/test_dispatch.c
tests_unit_test_dispatch_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_dispatch_LDADD = $(TEST_LIBS)

# test plugins: a good one, a wrong ABI, a duplicate name
TESTPLUG_LDFLAGS = -module -avoid-version -shared -rpath /nowhere $(SAN_CFLAGS)
check_LTLIBRARIES += tests/unit/testgood.la tests/unit/testbadabi.la \
	tests/unit/testdup.la
tests_unit_testgood_la_SOURCES = tests/unit/plugins/testplug.c
tests_unit_testgood_la_LDFLAGS = $(TESTPLUG_LDFLAGS)
tests_unit_testbadabi_la_SOURCES = tests/unit/plugins/testplug.c
tests_unit_testbadabi_la_CFLAGS = $(AM_CFLAGS) -DTEST_ABI=999u
tests_unit_testbadabi_la_LDFLAGS = $(TESTPLUG_LDFLAGS)
tests_unit_testdup_la_SOURCES = tests/unit/plugins/testplug.c
tests_unit_testdup_la_CFLAGS = $(AM_CFLAGS) -DTEST_NAME='"testgood"'
tests_unit_testdup_la_LDFLAGS = $(TESTPLUG_LDFLAGS)

check_PROGRAMS += tests/unit/test_pluginhost
TESTS += tests/unit/test_pluginhost
tests_unit_test_pluginhost_SOURCES = tests/unit/test_pluginhost.c
tests_unit_test_pluginhost_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_pluginhost_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_plugsettings
TESTS += tests/unit/test_plugsettings
tests_unit_test_plugsettings_SOURCES = tests/unit/test_plugsettings.c
tests_unit_test_plugsettings_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_plugsettings_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_metrics
TESTS += tests/unit/test_metrics
tests_unit_test_metrics_SOURCES = tests/unit/test_metrics.c
tests_unit_test_metrics_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_metrics_LDADD = $(TEST_LIBS)

TESTS += tests/integration/ops.sh
EXTRA_DIST += tests/integration/ops.sh
TESTS += tests/integration/crash.sh
EXTRA_DIST += tests/integration/crash.sh
