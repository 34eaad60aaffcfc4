# core/paneldb: owned by its subsystem; appends to core_libophookcore_la_SOURCES, check_PROGRAMS, TESTS.
