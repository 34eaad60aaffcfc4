/* stub: replaced by the control subsystem */
#include "control.h"
#include <stddef.h>
int control_start(struct engine *e, struct control **c_r, const char **error_r) { (void)e; (void)error_r; *c_r = NULL; return 0; }
void control_stop(struct control **c) { *c = NULL; }
void control_register(struct control *c, const char *name, control_cmd_fn *fn, void *ctx) { (void)c; (void)name; (void)fn; (void)ctx; }
