# core/config: the strict YAML configuration loader (libyaml), its unit
# test and the default ophookd.yaml.
core_libophookcore_la_SOURCES += core/config.c core/config.h

dist_ophookconf_DATA += etc/ophookd.yaml

check_PROGRAMS += tests/unit/test_config
TESTS += tests/unit/test_config
tests_unit_test_config_SOURCES = tests/unit/test_config.c
tests_unit_test_config_CFLAGS = $(TEST_CFLAGS)
tests_unit_test_config_LDADD = $(TEST_LIBS)
