# core/sources: what produces events: the inotify watcher, the classifier,
# the snapshot and reconcile, the mount table watch; the panel DB (SQLite /
# MySQL drivers), its poller, owner enrichment, OpenAdmin's users.db.
# Depends on core/lib, core/journal, core/bus; never on core/handlers.
noinst_LTLIBRARIES += core/sources/libophook-sources.la
core_sources_libophook_sources_la_SOURCES = \
	core/sources/watch.c core/sources/watch.h \
	core/sources/classify.c core/sources/classify.h \
	core/sources/snapshot.c core/sources/snapshot.h \
	core/sources/mountwatch.c core/sources/mountwatch.h \
	core/sources/paneldb.c core/sources/paneldb.h \
	core/sources/paneldb_driver.h core/sources/paneldb_sqlite.c \
	core/sources/paneldb_mysql.c core/sources/dbpoll.c core/sources/dbpoll.h \
	core/sources/entity.c core/sources/entity.h \
	core/sources/ctrevent.c core/sources/ctrevent.h \
	core/sources/containers.c core/sources/containers.h \
	core/sources/alerts.c core/sources/alerts.h
core_sources_libophook_sources_la_CPPFLAGS = $(SOURCES_CPPFLAGS)
core_sources_libophook_sources_la_CFLAGS = $(LAYER_CFLAGS)

check_PROGRAMS += tests/unit/test_classify tests/unit/test_snapshot
TESTS += tests/unit/test_classify tests/unit/test_snapshot
tests_unit_test_classify_SOURCES = tests/unit/test_classify.c \
	tests/unit/test_classify_certs.inc
tests_unit_test_classify_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_classify_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/unit/test_mountwatch
TESTS += tests/unit/test_mountwatch
tests_unit_test_mountwatch_SOURCES = tests/unit/test_mountwatch.c
tests_unit_test_mountwatch_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mountwatch_LDADD = $(TEST_LIBS)
check_PROGRAMS += tests/unit/test_watchtree
TESTS += tests/unit/test_watchtree
tests_unit_test_watchtree_SOURCES = tests/unit/test_watchtree.c
tests_unit_test_watchtree_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_watchtree_LDADD = $(TEST_LIBS)
tests_unit_test_snapshot_SOURCES = tests/unit/test_snapshot.c
tests_unit_test_snapshot_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_snapshot_LDADD = $(TEST_LIBS)

TESTS += tests/integration/watch_openpanel.sh
TESTS += tests/integration/openpanel_payloads.sh
EXTRA_DIST += tests/integration/openpanel_payloads.sh
EXTRA_DIST += tests/integration/watch_openpanel.sh \
	tests/integration/watch_lib.sh \
	tests/integration/openpanel/domain.conf \
	tests/integration/openpanel/suspended.conf \
	tests/integration/openpanel/suspended_user.conf \
	tests/integration/openpanel/zone_template.txt \
	tests/integration/openpanel/openpanel.config
TESTS += tests/integration/watch_restart.sh
EXTRA_DIST += tests/integration/watch_restart.sh
TESTS += tests/integration/watch_roots.sh
EXTRA_DIST += tests/integration/watch_roots.sh
# OpenPanel's lifecycle commands replayed (files and rows, in their order).
TESTS += tests/integration/openpanel_replay.sh
EXTRA_DIST += tests/integration/openpanel_replay.sh \
	tests/integration/openpanel/replay/domain.conf \
	tests/integration/openpanel/replay/zone_template.txt \
	tests/integration/openpanel/replay/skeleton/activity.log \
	tests/integration/openpanel/replay/skeleton/notifications.yaml \
	tests/integration/openpanel/replay/skeleton/domains/.gitkeep
# FTP accounts, crons.ini, backup.env, the WAF switch, admin notifications
TESTS += tests/integration/sources_files.sh
EXTRA_DIST += tests/integration/sources_files.sh

check_PROGRAMS += tests/unit/test_entity
TESTS += tests/unit/test_entity
tests_unit_test_entity_SOURCES = tests/unit/test_entity.c
tests_unit_test_entity_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_entity_LDADD = $(TEST_LIBS)

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
	tests/integration/paneldb_common.sh tests/integration/mariadb_lib.sh
# The Go panel's account, PHP, sites and plan writes (user.updated,
# domain.php_changed, site.*, user.limits_changed), on both databases.
TESTS += tests/integration/sources_db.sh tests/integration/sources_db_mariadb.sh
EXTRA_DIST += tests/integration/sources_db.sh \
	tests/integration/sources_db_mariadb.sh \
	tests/integration/sources_db_common.sh

# Containers: Podman/Docker API events per user (ctrevent: parsing, the
# catch-up window, restart loops, kernel OOM lines).
check_PROGRAMS += tests/unit/test_containers
TESTS += tests/unit/test_containers
tests_unit_test_containers_SOURCES = tests/unit/test_containers.c
tests_unit_test_containers_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_containers_LDADD = $(TEST_LIBS)
TESTS += tests/integration/containers.sh
EXTRA_DIST += tests/integration/containers.sh tests/integration/containers_lib.sh

# Derived alerts (certificates, quota, backups) with memory.
TESTS += tests/integration/alerts_cert.sh
EXTRA_DIST += tests/integration/alerts_cert.sh
TESTS += tests/integration/alerts_quota.sh
EXTRA_DIST += tests/integration/alerts_quota.sh
TESTS += tests/integration/alerts_backup.sh
EXTRA_DIST += tests/integration/alerts_backup.sh
