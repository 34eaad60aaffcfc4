# core/control: the control socket server, its built-in commands and the
# ophookctl client.
core_libophookcore_la_SOURCES += core/control.c core/control.h \
	core/ctlcmds.c core/ctlcmds.h core/emitline.c core/emitline.h

sbin_PROGRAMS += ophookctl
ophookctl_SOURCES = ctl/ophookctl.c
ophookctl_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
ophookctl_LDADD = core/libophookcore.la $(DEPS_LIBS)

check_PROGRAMS += tests/unit/test_control
TESTS += tests/unit/test_control
tests_unit_test_control_SOURCES = tests/unit/test_control.c
tests_unit_test_control_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_control_LDADD = $(TEST_LIBS)

TESTS += tests/integration/ctl.sh
EXTRA_DIST += tests/integration/ctl.sh

# bash completion for ophookctl (installed, and in the tarball)
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = contrib/bash-completion/ophookctl
