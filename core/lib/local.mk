# core/lib: the bottom layer: allocation and small helpers, hash map, log,
# the `emit -` line splitter, the strict YAML config and the control socket
# server.  Depends on nothing else of ophook.
noinst_LTLIBRARIES += core/lib/libophook-lib.la
core_lib_libophook_lib_la_SOURCES = \
	core/lib/util.c core/lib/util.h \
	core/lib/hmap.c core/lib/hmap.h \
	core/lib/log.c core/lib/log.h \
	core/lib/emitline.c core/lib/emitline.h \
	core/lib/config.c core/lib/config.h \
	core/lib/alertlevel.c core/lib/alertlevel.h \
	core/lib/authlimit.c core/lib/authlimit.h \
	core/lib/control.c core/lib/control.h \
	core/lib/catalogue.c core/lib/catalogue.h
core_lib_libophook_lib_la_CPPFLAGS = $(LIB_CPPFLAGS)
core_lib_libophook_lib_la_CFLAGS = $(LAYER_CFLAGS)

dist_ophookconf_DATA += etc/ophookd.yaml

check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_config_LDADD = $(TEST_LIBS)

# The layer check: no layer includes one above it, no two files include
# each other in a circle.
TESTS += tests/layers.sh
EXTRA_DIST += tests/layers.sh

check_PROGRAMS += tests/unit/test_logline
TESTS += tests/unit/test_logline
tests_unit_test_logline_SOURCES = tests/unit/test_logline.c
tests_unit_test_logline_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_logline_LDADD = $(TEST_LIBS)

# <ophook/safe.h>: folder walks without symlinks, files made in a folder fd
# (issue 16, finding 2).
check_PROGRAMS += tests/unit/test_safe
TESTS += tests/unit/test_safe
tests_unit_test_safe_SOURCES = tests/unit/test_safe.c
tests_unit_test_safe_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_safe_LDADD = $(TEST_LIBS)

# The catalogue of event types and intents: consistent, and every intent
# ophookctl guard maps is in it.
check_PROGRAMS += tests/unit/test_catalogue
TESTS += tests/unit/test_catalogue
tests_unit_test_catalogue_SOURCES = tests/unit/test_catalogue.c ctl/guard.c
tests_unit_test_catalogue_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_catalogue_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_alerts
TESTS += tests/unit/test_alerts
tests_unit_test_alerts_SOURCES = tests/unit/test_alerts.c
tests_unit_test_alerts_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_alerts_LDADD = $(TEST_LIBS)

check_PROGRAMS += tests/unit/test_authlimit
TESTS += tests/unit/test_authlimit
tests_unit_test_authlimit_SOURCES = tests/unit/test_authlimit.c
tests_unit_test_authlimit_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_authlimit_LDADD = $(TEST_LIBS)
