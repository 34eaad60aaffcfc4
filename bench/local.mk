# bench: executables bench/NAME N (each prints a table and a result: line)
EXTRA_DIST += bench/dispatch
