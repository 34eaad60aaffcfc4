/* The built-in control commands: status, events, emit, tail, replay. */
#ifndef OPHOOK_CTLCMDS_H
#define OPHOOK_CTLCMDS_H

#include "control.h"

/* status, events, emit, tail, replay; ctx: the struct engine. */
extern const struct control_command ctlcmds_commands[];

#endif
