# core/paneldb: owned by its subsystem.
core_libophookcore_la_SOURCES += core/paneldb.c core/paneldb.h
