# plugins/bind9: zones for the panel's domains (render, named-checkzone,
# named.conf.local, coalesced rndc).  See plugins/bind9/README.md.
plugin_LTLIBRARIES += plugins/bind9/bind9.la
plugins_bind9_bind9_la_SOURCES = plugins/bind9/bind9.c plugins/bind9/bind9.h \
	plugins/bind9/secondary.c plugins/bind9/secondary.h \
	plugins/bind9/zone.c plugins/bind9/zone.h
plugins_bind9_bind9_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_bind9_bind9_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
plugins_bind9_bind9_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_bind9_bind9_la_LIBADD = plugins/common/libplugcommon.la \
	$(JANSSON_LIBS)
dist_noinst_DATA += plugins/bind9/zone_template.txt
# the README is installed as documentation: $(docdir)/plugins/bind9/
pluginbind9docdir = $(docdir)/plugins/bind9
dist_pluginbind9doc_DATA = plugins/bind9/README.md

check_PROGRAMS += tests/unit/test_bind9
TESTS += tests/unit/test_bind9
tests_unit_test_bind9_SOURCES = tests/unit/test_bind9.c
tests_unit_test_bind9_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_bind9_LDADD = tests/unit/libpluginmock.la \
	plugins/common/libplugcommon.la \
	$(CMOCKA_LIBS) $(JANSSON_LIBS) -lpthread

TESTS += tests/integration/bind9.sh
EXTRA_DIST += tests/integration/bind9.sh
TESTS += tests/integration/bind9_burst.sh
EXTRA_DIST += tests/integration/bind9_burst.sh
TESTS += tests/integration/bind9_secondary.sh
EXTRA_DIST += tests/integration/bind9_secondary.sh tests/integration/named_lib.sh
