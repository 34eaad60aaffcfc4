# core/paneldb: the panel DB (SQLite / MySQL drivers), the DB poller,
# owner enrichment, OpenAdmin's users.db.
core_libophookcore_la_SOURCES += core/paneldb.c core/paneldb.h \
	core/paneldb_driver.h core/paneldb_sqlite.c core/paneldb_mysql.c \
	core/dbpoll.c core/dbpoll.h

check_PROGRAMS += tests/unit/test_paneldb
TESTS += tests/unit/test_paneldb
tests_unit_test_paneldb_SOURCES = tests/unit/test_paneldb.c
tests_unit_test_paneldb_CPPFLAGS = $(AM_CPPFLAGS) \
	-DTOP_SRCDIR='"$(abs_top_srcdir)"'
tests_unit_test_paneldb_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_paneldb_LDADD = $(TEST_LIBS)
EXTRA_DIST += contrib/demo/panel.sql

# Integration: the same scenarios on SQLite and on a real MariaDB server.
TESTS += tests/integration/paneldb_sqlite.sh tests/integration/paneldb_mariadb.sh
EXTRA_DIST += tests/integration/paneldb_sqlite.sh \
	tests/integration/paneldb_mariadb.sh \
	tests/integration/paneldb_common.sh
