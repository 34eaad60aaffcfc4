# plugins/log: one JSON line per delivered event (audit trail).
plugin_LTLIBRARIES += plugins/log/log.la
plugins_log_log_la_SOURCES = plugins/log/log.c
plugins_log_log_la_CPPFLAGS = $(PLUGIN_CPPFLAGS)
plugins_log_log_la_LDFLAGS = $(PLUGIN_LDFLAGS)
EXTRA_DIST += plugins/log/README.md
