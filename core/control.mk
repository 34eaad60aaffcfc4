# core/control: owned by its subsystem.
core_libophookcore_la_SOURCES += core/control.c core/control.h
