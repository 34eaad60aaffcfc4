# core: loop, engine, dispatcher, plugin host, small utilities.
core_libophookcore_la_SOURCES += \
	core/log.c core/log.h \
	core/util.c core/util.h \
	core/hmap.c core/hmap.h \
	core/event.c core/event.h \
	core/handler.h \
	core/engine.c core/engine.h \
	core/dispatch.c core/dispatch.h \
	core/pluginhost.c core/pluginhost.h

sbin_PROGRAMS += ophookd
ophookd_SOURCES = core/main.c
ophookd_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
ophookd_LDADD = core/libophookcore.la $(DEPS_LIBS)

# Small helpers that plugins may link (they do not link the core):
# name validation, atomic writes, mkdir -p.  plugins/common/ adds more.
noinst_LTLIBRARIES += plugins/libplugutil.la
plugins_libplugutil_la_SOURCES = core/util.c core/util.h
plugins_libplugutil_la_CFLAGS = $(AM_CFLAGS) -fvisibility=hidden

check_PROGRAMS += tests/unit/test_dispatch
TESTS += tests/unit/test_dispatch
tests_unit_test_dispatch_SOURCES = tests/unit/test_dispatch.c
tests_unit_test_dispatch_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_dispatch_LDADD = $(TEST_LIBS)
