# contrib: quickstart, demo tree, test runner, systemd unit, opencli glue
EXTRA_DIST += contrib/demo/scenario.sh contrib/demo/hooks/demo.lua \
	contrib/demo/tree/caddy/templates/domain.conf \
	contrib/demo/tree/caddy/templates/suspended.conf \
	contrib/demo/tree/caddy/templates/suspended_user.conf \
	contrib/demo/tree/caddy/domains/alice-blog.example.conf \
	contrib/demo/tree/openpanel/conf/openpanel.config \
	contrib/demo/tree/openpanel/core/users/alice/.keep

systemdunitdir = $(prefix)/lib/systemd/system
nodist_systemdunit_DATA = contrib/systemd/ophookd.service
contrib/systemd/ophookd.service: $(srcdir)/contrib/systemd/ophookd.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib/systemd && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' $(srcdir)/contrib/systemd/ophookd.service.in > $@
CLEANFILES += contrib/systemd/ophookd.service
logrotatedir = $(sysconfdir)/logrotate.d
dist_logrotate_DATA = contrib/logrotate/ophookd
EXTRA_DIST += contrib/systemd/ophookd.service.in

EXTRA_DIST += contrib/plugin-skeleton/skeleton.c \
	contrib/plugin-skeleton/Makefile contrib/plugin-skeleton/README.md
TESTS += tests/integration/install.sh
EXTRA_DIST += tests/integration/install.sh
