# core/daemon: ophookd itself: main (options, signals), daemon.c (builds,
# starts, stops and reloads every subsystem and owns the stop order), the
# built-in control commands; and ophookctl, the client.  The only layer
# that sees both sources and handlers.
noinst_LTLIBRARIES += core/daemon/libophook-daemon.la
core_daemon_libophook_daemon_la_SOURCES = \
	core/daemon/daemon.c core/daemon/daemon.h \
	core/daemon/ctlcmds.c core/daemon/ctlcmds.h \
	core/daemon/console.c core/daemon/console.h
# The console's files, served from memory: embed.sh makes a C array of each.
CONSOLE_ASSETS = $(srcdir)/core/daemon/console/index.html \
	$(srcdir)/core/daemon/console/login.html \
	$(srcdir)/core/daemon/console/console.js \
	$(srcdir)/core/daemon/console/console.css
nodist_core_daemon_libophook_daemon_la_SOURCES = core/daemon/console_assets.c
BUILT_SOURCES = core/daemon/console_assets.c
CLEANFILES += core/daemon/console_assets.c
EXTRA_DIST += $(CONSOLE_ASSETS) core/daemon/console/embed.sh
core/daemon/console_assets.c: $(CONSOLE_ASSETS) $(srcdir)/core/daemon/console/embed.sh
	$(AM_V_GEN)$(MKDIR_P) core/daemon && \
	$(SHELL) $(srcdir)/core/daemon/console/embed.sh $(CONSOLE_ASSETS) > $@.tmp && \
	mv $@.tmp $@
core_daemon_libophook_daemon_la_CPPFLAGS = $(DAEMON_CPPFLAGS)
core_daemon_libophook_daemon_la_CFLAGS = $(LAYER_CFLAGS)

sbin_PROGRAMS += ophookd
ophookd_SOURCES = core/daemon/main.c
ophookd_CPPFLAGS = $(DAEMON_CPPFLAGS)
ophookd_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
ophookd_LDADD = core/libophookcore.la $(DEPS_LIBS)

sbin_PROGRAMS += ophookctl
ophookctl_SOURCES = ctl/ophookctl.c ctl/guard.c ctl/guard.h \
	ctl/types.c ctl/types.h
ophookctl_CPPFLAGS = $(BUS_CPPFLAGS)
ophookctl_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
ophookctl_LDADD = core/libophookcore.la $(DEPS_LIBS)

# the guard's check alone, static (ctl/guardclient.c): for the hooks inside
# the openpanel container; only libc and jansson
pkglibexec_PROGRAMS += ophook-guard
ophook_guard_SOURCES = ctl/guardclient.c ctl/guard.c ctl/guard.h \
	core/lib/util.c core/lib/util.h
ophook_guard_CPPFLAGS = $(LIB_CPPFLAGS) -I$(top_srcdir)/ctl
ophook_guard_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
ophook_guard_LDFLAGS = $(AM_LDFLAGS) $(GUARD_STATIC_LDFLAGS)
ophook_guard_LDADD = $(JANSSON_LIBS)

check_PROGRAMS += tests/unit/test_control
TESTS += tests/unit/test_control
tests_unit_test_control_SOURCES = tests/unit/test_control.c
tests_unit_test_control_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_control_LDADD = $(TEST_LIBS)

TESTS += tests/integration/ctl.sh
EXTRA_DIST += tests/integration/guard.sh
TESTS += tests/integration/guard.sh
TESTS += tests/integration/guard_container.sh
EXTRA_DIST += tests/integration/guard_container.sh \
	tests/integration/opencli_lib.sh
EXTRA_DIST += tests/integration/ctl.sh
TESTS += tests/integration/help.sh
EXTRA_DIST += tests/integration/help.sh
TESTS += tests/integration/ops.sh
TESTS += tests/integration/deadletters.sh
EXTRA_DIST += tests/integration/deadletters.sh
EXTRA_DIST += tests/integration/ops.sh
TESTS += tests/integration/console.sh
EXTRA_DIST += tests/integration/console.sh tests/console/package.json \
	tests/console/package-lock.json tests/console/drive.js
TESTS += tests/integration/crash.sh
EXTRA_DIST += tests/integration/crash.sh

# bash completion for ophookctl (installed, and in the tarball)
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = contrib/bash-completion/ophookctl
