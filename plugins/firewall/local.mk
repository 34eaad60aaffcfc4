# plugins/firewall: open ports (ufw or csf) from settings + enabled modules,
# firewall.block/unblock with expiry.  See plugins/firewall/README.md.
plugin_LTLIBRARIES += plugins/firewall/firewall.la
plugins_firewall_firewall_la_SOURCES = plugins/firewall/firewall.c
plugins_firewall_firewall_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_firewall_firewall_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
plugins_firewall_firewall_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_firewall_firewall_la_LIBADD = plugins/common/libplugcommon.la \
	$(JANSSON_LIBS) -lpthread
# the README is installed as documentation: $(docdir)/plugins/firewall/
pluginfirewalldocdir = $(docdir)/plugins/firewall
dist_pluginfirewalldoc_DATA = plugins/firewall/README.md

check_PROGRAMS += tests/unit/test_firewall
TESTS += tests/unit/test_firewall
tests_unit_test_firewall_SOURCES = tests/unit/test_firewall.c
tests_unit_test_firewall_CFLAGS = $(TEST_CFLAGS) \
	-DTOP_SRCDIR='"$(abs_top_srcdir)"'
tests_unit_test_firewall_LDADD = tests/unit/libpluginmock.la \
	plugins/common/libplugcommon.la \
	$(CMOCKA_LIBS) $(JANSSON_LIBS) -lpthread
EXTRA_DIST += tests/integration/fixtures/csf/csf.conf

TESTS += tests/integration/firewall_ufw.sh
EXTRA_DIST += tests/integration/firewall_ufw.sh
TESTS += tests/integration/firewall_csf.sh
EXTRA_DIST += tests/integration/firewall_csf.sh
