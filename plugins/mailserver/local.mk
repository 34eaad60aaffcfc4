# plugins/mailserver: docker-mailserver config (removed domains,
# suspensions, DKIM keys).  See plugins/mailserver/README.md.
plugin_LTLIBRARIES += plugins/mailserver/mailserver.la
plugins_mailserver_mailserver_la_SOURCES = plugins/mailserver/mailserver.c \
	plugins/mailserver/mailfile.c plugins/mailserver/mailfile.h \
	plugins/mailserver/dkim.c plugins/mailserver/dkim.h
plugins_mailserver_mailserver_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_mailserver_mailserver_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) \
	$(CRYPTO_CFLAGS)
plugins_mailserver_mailserver_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_mailserver_mailserver_la_LIBADD = plugins/common/libplugcommon.la \
	$(JANSSON_LIBS) $(CRYPTO_LIBS)
# the README is installed as documentation: $(docdir)/plugins/mailserver/
pluginmailserverdocdir = $(docdir)/plugins/mailserver
dist_pluginmailserverdoc_DATA = plugins/mailserver/README.md

check_PROGRAMS += tests/unit/test_mailserver
TESTS += tests/unit/test_mailserver
tests_unit_test_mailserver_SOURCES = tests/unit/test_mailserver.c
tests_unit_test_mailserver_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_mailserver_LDADD = tests/unit/libpluginmock.la \
	plugins/common/libplugcommon.la \
	$(CMOCKA_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) -lpthread

# Integration test: real postmap, named (with the bind9 plugin) and dig.
TESTS += tests/integration/mailserver.sh
EXTRA_DIST += tests/integration/mailserver.sh \
	tests/integration/fixtures/mail/postfix-accounts.cf \
	tests/integration/fixtures/mail/postfix-virtual.cf \
	tests/integration/fixtures/mail/dovecot-quotas.cf \
	tests/integration/fixtures/mail/postfix-send-access.cf \
	tests/integration/fixtures/mail/postfix-receive-access.cf \
	tests/integration/fixtures/mail/expected/postfix-accounts.cf \
	tests/integration/fixtures/mail/expected/postfix-virtual.cf \
	tests/integration/fixtures/mail/expected/dovecot-quotas.cf
