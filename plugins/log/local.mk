# plugins/log: one JSON line per delivered event (audit trail).
plugin_LTLIBRARIES += plugins/log/log.la
plugins_log_log_la_SOURCES = plugins/log/log.c
plugins_log_log_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_log_log_la_LDFLAGS = $(PLUGIN_LDFLAGS)
# the README is installed as documentation: $(docdir)/plugins/log/
pluginlogdocdir = $(docdir)/plugins/log
dist_pluginlogdoc_DATA = plugins/log/README.md

check_PROGRAMS += tests/unit/test_log
TESTS += tests/unit/test_log
tests_unit_test_log_SOURCES = tests/unit/test_log.c
tests_unit_test_log_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_log_LDADD = tests/unit/libpluginmock.la \
	$(CMOCKA_LIBS) $(JANSSON_LIBS) -lpthread
