/* ophookctl types: the event types and intents of the catalogue. */
#ifndef OPHOOK_CTL_TYPES_H
#define OPHOOK_CTL_TYPES_H

#include <stdbool.h>

/* `ophookctl types [--json] [TYPE|INTENT]`, `types --names|--intents`
 * (argv[0] = "types").  Returns the exit status. */
int types_main(int argc, char **argv, bool json);

#endif
