# plugins/goaccess: GoAccess reports from Caddy's JSON access logs.
# See plugins/goaccess/README.md.
plugin_LTLIBRARIES += plugins/goaccess/goaccess.la
plugins_goaccess_goaccess_la_SOURCES = plugins/goaccess/goaccess.c
plugins_goaccess_goaccess_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_goaccess_goaccess_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
plugins_goaccess_goaccess_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_goaccess_goaccess_la_LIBADD = plugins/common/libplugcommon.la \
	$(JANSSON_LIBS)
# the README is installed as documentation: $(docdir)/plugins/goaccess/
plugingoaccessdocdir = $(docdir)/plugins/goaccess
dist_plugingoaccessdoc_DATA = plugins/goaccess/README.md

check_PROGRAMS += tests/unit/test_goaccess
TESTS += tests/unit/test_goaccess
tests_unit_test_goaccess_SOURCES = tests/unit/test_goaccess.c
tests_unit_test_goaccess_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_goaccess_LDADD = tests/unit/libpluginmock.la \
	plugins/common/libplugcommon.la \
	$(CMOCKA_LIBS) $(JANSSON_LIBS) -lpthread

# Integration tests with the real goaccess (skip when it is missing).
TESTS += tests/integration/goaccess.sh tests/integration/goaccess_hostile.sh
EXTRA_DIST += tests/integration/goaccess.sh \
	tests/integration/goaccess_hostile.sh tests/integration/goaccess_lib.sh \
	tests/integration/fixtures/caddy-logs/a.example.jsonl \
	tests/integration/fixtures/caddy-logs/b.example.jsonl
