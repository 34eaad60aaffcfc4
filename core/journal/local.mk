# core/journal: the durable journal (SQLite, or MariaDB shared by a
# cluster).  Depends on core/lib.
noinst_LTLIBRARIES += core/journal/libophook-journal.la
core_journal_libophook_journal_la_SOURCES = \
	core/journal/journal.c core/journal/journal.h \
	core/journal/journal_backend.h core/journal/journal_sqlite.c \
	core/journal/journal_mysql.c core/journal/journal_mysql.h
core_journal_libophook_journal_la_CPPFLAGS = $(JOURNAL_CPPFLAGS)
core_journal_libophook_journal_la_CFLAGS = $(LAYER_CFLAGS)

check_PROGRAMS += tests/unit/test_journal
TESTS += tests/unit/test_journal
tests_unit_test_journal_SOURCES = tests/unit/test_journal.c
tests_unit_test_journal_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_journal_LDADD = $(TEST_LIBS)
