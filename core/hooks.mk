# core/hooks: Lua hooks, exec hooks, pre-stage checks (issue 6).
core_libophookcore_la_SOURCES += core/hooks.c core/hooks.h core/hooks_int.h \
	core/hooks_lua.c core/hooks_lua.h core/hooks_exec.c core/hooks_exec.h \
	core/hooks_cmds.c core/hooks_cmds.h \
	core/luahook.c core/luahook.h core/luahook_int.h \
	core/luahook_sandbox.c core/luahook_sandbox.h \
	core/luahook_json.c core/luahook_json.h \
	core/luahook_api.c core/luahook_api.h \
	core/luahook_http.c core/luahook_http.h \
	core/exechook.c core/exechook.h

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

TESTS += tests/integration/hooks_webhook.sh
EXTRA_DIST += tests/integration/hooks_webhook.sh

# Sample hooks (installed as documentation) and the man page.
hooksexampledir = $(docdir)/hooks
dist_hooksexample_DATA = hooks/README.md hooks/notify-slack.lua \
	hooks/deny-reserved-domains.lua
hooksexecexampledir = $(docdir)/hooks/domain.added.d
dist_hooksexecexample_SCRIPTS = hooks/exec/domain.added.d/10-example
dist_man7_MANS = doc/ophook-lua.7

# opencli glue: asks `ophookctl check` before opencli commands.
opencliprehookdir = $(pkglibexecdir)
dist_opencliprehook_SCRIPTS = contrib/opencli-pre-hook
TESTS += tests/integration/hooks_stuck.sh
EXTRA_DIST += tests/integration/hooks_stuck.sh
