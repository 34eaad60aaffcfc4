# plugins/caddy, plus the helpers every plugin shares (plugins/common/) and
# the fake plugin host for unit tests (tests/unit/pluginmock.*).

# Shared plugin helpers: run_argv (spawn without a shell, capture, timeout),
# argv parsing, and the definition of <ophook/safe.h> (safe.c).  Plugins
# link plugins/common/libplugcommon.la $(JANSSON_LIBS) $(CURL_LIBS).
noinst_LTLIBRARIES += plugins/common/libplugcommon.la
plugins_common_libplugcommon_la_SOURCES = \
	plugins/common/plugerr.c plugins/common/plugerr.h \
	plugins/common/run.c plugins/common/run.h \
	plugins/common/safe.c
plugins_common_libplugcommon_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_common_libplugcommon_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) \
	-fvisibility=hidden
plugins_common_libplugcommon_la_LIBADD = $(JANSSON_LIBS)

# The caddy plugin.
plugin_LTLIBRARIES += plugins/caddy/caddy.la
plugins_caddy_caddy_la_SOURCES = plugins/caddy/caddy.c \
	plugins/caddy/blame.c plugins/caddy/blame.h
plugins_caddy_caddy_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_caddy_caddy_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS)
plugins_caddy_caddy_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_caddy_caddy_la_LIBADD = plugins/common/libplugcommon.la \
	$(JANSSON_LIBS) $(CURL_LIBS)

# Fake host table for plugin unit tests (collectd's libplugin_mock style).
check_LTLIBRARIES += tests/unit/libpluginmock.la
tests_unit_libpluginmock_la_SOURCES = \
	tests/unit/pluginmock.c tests/unit/pluginmock.h \
	core/handlers/plugsettings.c core/handlers/plugsettings.h
tests_unit_libpluginmock_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_libpluginmock_la_LIBADD = $(JANSSON_LIBS) -ldl

check_PROGRAMS += tests/unit/test_caddy
TESTS += tests/unit/test_caddy
tests_unit_test_caddy_SOURCES = tests/unit/test_caddy.c plugins/caddy/blame.c
tests_unit_test_caddy_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_caddy_LDADD = tests/unit/libpluginmock.la \
	plugins/common/libplugcommon.la $(TEST_LIBS)

# The blame rules (plugins/caddy/blame.c) on their own.
check_PROGRAMS += tests/unit/test_caddy_blame
TESTS += tests/unit/test_caddy_blame
tests_unit_test_caddy_blame_SOURCES = tests/unit/test_caddy_blame.c
tests_unit_test_caddy_blame_CFLAGS = $(TEST_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_caddy_blame_LDADD = plugins/common/libplugcommon.la \
	$(JANSSON_LIBS) $(TEST_LIBS)

# Integration test with a real Caddy (skips when caddy is missing).
TESTS += tests/integration/caddy.sh
EXTRA_DIST += tests/integration/caddy.sh \
	plugins/caddy/templates/test-domain.conf \
	plugins/caddy/templates/test-suspended.conf
# the README is installed as documentation: $(docdir)/plugins/caddy/
plugincaddydocdir = $(docdir)/plugins/caddy
dist_plugincaddydoc_DATA = plugins/caddy/README.md

# bench/reload N (caddy + bind9 plugins against real Caddy and named).
EXTRA_DIST += bench/reload

# plugins/common/run.c: run_argv() and run_argv_ex()
check_PROGRAMS += tests/unit/test_run
TESTS += tests/unit/test_run
tests_unit_test_run_SOURCES = tests/unit/test_run.c
tests_unit_test_run_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_run_LDADD = plugins/common/libplugcommon.la \
	$(CMOCKA_LIBS) $(JANSSON_LIBS) -lpthread
