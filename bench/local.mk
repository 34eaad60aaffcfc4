# bench: executables bench/NAME N
