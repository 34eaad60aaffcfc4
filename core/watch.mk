# core/watch: owned by its subsystem.
core_libophookcore_la_SOURCES += core/watch.c core/watch.h
