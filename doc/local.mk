# doc: man pages (ophook-lua.7 is the hooks subsystem's, in core/hooks.mk)
dist_man8_MANS = doc/ophookd.8 doc/ophookctl.8
dist_man5_MANS = doc/ophookd.yaml.5
dist_man3_MANS = doc/ophook-plugin.3

# Made from the catalogue (core/lib/catalogue.c) at build time: the man
# page ophook-events(7) and one JSON Schema an event type, installed in
# $(pkgdatadir)/schemas.
noinst_PROGRAMS = doc/gen-catalogue
doc_gen_catalogue_SOURCES = doc/gen-catalogue.c
doc_gen_catalogue_CPPFLAGS = $(LIB_CPPFLAGS)
doc_gen_catalogue_CFLAGS = $(AM_CFLAGS) $(DEPS_CFLAGS)
doc_gen_catalogue_LDADD = core/lib/libophook-lib.la $(DEPS_LIBS)
nodist_man7_MANS = doc/ophook-events.7
doc/ophook-events.7: doc/gen-catalogue$(EXEEXT)
	$(AM_V_GEN)$(MKDIR_P) doc && ./doc/gen-catalogue man > $@.tmp && \
	mv $@.tmp $@
nodist_noinst_DATA = schemas/.stamp
schemas/.stamp: doc/gen-catalogue$(EXEEXT)
	$(AM_V_GEN)rm -rf schemas && ./doc/gen-catalogue schemas schemas && \
	touch $@
schemasdir = $(pkgdatadir)/schemas
install-data-local: schemas/.stamp
	$(MKDIR_P) '$(DESTDIR)$(schemasdir)'
	$(INSTALL_DATA) schemas/*.json '$(DESTDIR)$(schemasdir)'
uninstall-local:
	rm -f '$(DESTDIR)$(schemasdir)'/*.json
	-rmdir '$(DESTDIR)$(schemasdir)'
clean-local:
	rm -rf schemas
CLEANFILES += doc/ophook-events.7
