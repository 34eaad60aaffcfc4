# core/handlers: what takes deliveries: the C plugin host, admin hooks
# (Lua, exec) and pre-stage checks.  Depends on core/lib, core/journal,
# core/bus; never on core/sources.
noinst_LTLIBRARIES += core/handlers/libophook-handlers.la
core_handlers_libophook_handlers_la_SOURCES = \
	core/handlers/pluginhost.c core/handlers/pluginhost.h \
	core/handlers/plugsettings.c core/handlers/plugsettings.h \
	core/handlers/hooks.c core/handlers/hooks.h core/handlers/hooks_int.h \
	core/handlers/hooks_lua.c core/handlers/hooks_lua.h \
	core/handlers/hooks_exec.c core/handlers/hooks_exec.h \
	core/handlers/hooks_cmds.c core/handlers/hooks_cmds.h \
	core/handlers/luahook.c core/handlers/luahook.h \
	core/handlers/luahook_int.h \
	core/handlers/luahook_sandbox.c core/handlers/luahook_sandbox.h \
	core/handlers/luahook_json.c core/handlers/luahook_json.h \
	core/handlers/luahook_api.c core/handlers/luahook_api.h \
	core/handlers/luahook_http.c core/handlers/luahook_http.h \
	core/handlers/exechook.c core/handlers/exechook.h
core_handlers_libophook_handlers_la_CPPFLAGS = $(HANDLERS_CPPFLAGS)
core_handlers_libophook_handlers_la_CFLAGS = $(LAYER_CFLAGS)

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

check_PROGRAMS += tests/unit/test_luahook tests/unit/test_exechook
TESTS += tests/unit/test_luahook tests/unit/test_exechook
tests_unit_test_luahook_SOURCES = tests/unit/test_luahook.c
tests_unit_test_luahook_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_luahook_LDADD = $(TEST_LIBS)
tests_unit_test_exechook_SOURCES = tests/unit/test_exechook.c
tests_unit_test_exechook_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_exechook_LDADD = $(TEST_LIBS)

# The hooks against a fake bus: the test defines the engine_*, handler_*,
# dispatch_* and control_reply_* functions the hooks call, so the real
# engine, dispatcher and control socket are not linked.
check_PROGRAMS += tests/unit/test_hooks
TESTS += tests/unit/test_hooks
tests_unit_test_hooks_SOURCES = tests/unit/test_hooks.c
tests_unit_test_hooks_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_hooks_LDADD = $(TEST_LIBS)

TESTS += tests/integration/hooks_webhook.sh tests/integration/hooks_dryrun.sh
EXTRA_DIST += tests/integration/hooks_webhook.sh tests/integration/hooks_dryrun.sh

# Sample hooks (installed as documentation) and the man page.
hooksexampledir = $(docdir)/examples/hooks
dist_hooksexample_DATA = hooks/README.md hooks/notify-slack.lua \
	hooks/deny-reserved-domains.lua hooks/notify-containers.lua \
	hooks/alerts-webhook.lua
hooksexecexampledir = $(docdir)/examples/hooks/exec/domain.added.d
dist_hooksexecexample_SCRIPTS = hooks/exec/domain.added.d/10-example
dist_man7_MANS = doc/ophook-lua.7

# opencli glue: asks `ophookctl check` before opencli commands.
opencliprehookdir = $(pkglibexecdir)
dist_opencliprehook_SCRIPTS = contrib/opencli-pre-hook
TESTS += tests/integration/hooks_stuck.sh
EXTRA_DIST += tests/integration/hooks_stuck.sh

# the plugin host's side of isolation (pluginproc.c) and the runner, a
# program of its own that loads one plugin out of ophookd's process
core_handlers_libophook_handlers_la_SOURCES += \
	core/handlers/pluginproc.c core/handlers/pluginproc.h \
	core/handlers/pluginwire.c core/handlers/pluginwire.h
pkglibexec_PROGRAMS += ophook-plugin-runner
ophook_plugin_runner_SOURCES = core/handlers/pluginrunner.c \
	core/handlers/pluginwire.c core/handlers/pluginwire.h \
	core/handlers/plugsettings.c core/handlers/plugsettings.h
ophook_plugin_runner_CPPFLAGS = $(HANDLERS_CPPFLAGS)
ophook_plugin_runner_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
ophook_plugin_runner_LDADD = core/lib/libophook-lib.la $(DEPS_LIBS)

# test plugins for isolation and reload: crashplug (build 1 and build 2)
check_LTLIBRARIES += tests/unit/crashplug.la tests/unit/crashplug2.la
tests_unit_crashplug_la_SOURCES = tests/unit/plugins/crashplug.c
tests_unit_crashplug_la_LDFLAGS = $(TESTPLUG_LDFLAGS)
tests_unit_crashplug2_la_SOURCES = tests/unit/plugins/crashplug.c
tests_unit_crashplug2_la_CFLAGS = $(AM_CFLAGS) -DCRASHPLUG_BUILD=2
tests_unit_crashplug2_la_LDFLAGS = $(TESTPLUG_LDFLAGS)

TESTS += tests/integration/isolation.sh tests/integration/reload.sh
EXTRA_DIST += tests/integration/isolation.sh tests/integration/reload.sh

check_PROGRAMS += tests/unit/test_pluginwire
TESTS += tests/unit/test_pluginwire
tests_unit_test_pluginwire_SOURCES = tests/unit/test_pluginwire.c
tests_unit_test_pluginwire_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_pluginwire_LDADD = $(TEST_LIBS)
TESTS += tests/integration/hooks_testpool.sh
EXTRA_DIST += tests/integration/hooks_testpool.sh
