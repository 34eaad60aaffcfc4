# core/journal: owned by its subsystem; appends to core_libophookcore_la_SOURCES, check_PROGRAMS, TESTS.
core_libophookcore_la_SOURCES += core/journal.c core/journal.h \
	core/journal_backend.h core/journal_sqlite.c \
	core/journal_mysql.c core/journal_mysql.h core/cluster.c core/cluster.h

check_PROGRAMS += tests/unit/test_journal
TESTS += tests/unit/test_journal
tests_unit_test_journal_SOURCES = tests/unit/test_journal.c
tests_unit_test_journal_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_journal_LDADD = $(TEST_LIBS)
