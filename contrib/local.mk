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

# the plugin skeleton (ophook-plugin(3)) and the README, as documentation
skeletondir = $(docdir)/examples/plugin-skeleton
dist_skeleton_DATA = contrib/plugin-skeleton/skeleton.c \
	contrib/plugin-skeleton/Makefile contrib/plugin-skeleton/README.md
dist_doc_DATA = README.md
TESTS += tests/integration/install.sh
EXTRA_DIST += tests/integration/install.sh

# the Debian packaging (dpkg-buildpackage -us -uc -b) and its test
EXTRA_DIST += debian/changelog debian/control debian/copyright debian/rules \
	debian/source/format debian/ophook.install debian/ophook-dev.install \
	debian/ophook.dirs debian/ophook.postinst debian/ophook.postrm \
	debian/ophook.lintian-overrides
TESTS += tests/integration/package.sh
EXTRA_DIST += tests/integration/package.sh
