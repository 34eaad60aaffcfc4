# core/hooks: owned by its subsystem.
core_libophookcore_la_SOURCES += core/hooks.c core/hooks.h
