/* stub: replaced by the paneldb subsystem */
#include "paneldb.h"
#include <stddef.h>
int paneldb_start(struct engine *e, struct paneldb **p_r, const char **error_r) { (void)e; (void)error_r; *p_r = NULL; return 0; }
void paneldb_stop(struct paneldb **p) { *p = NULL; }
int paneldb_query(struct paneldb *p, const char *sql, json_t *params, json_t **rows_r, char **error_r) { (void)p; (void)sql; (void)params; *rows_r = NULL; *error_r = NULL; return -95; }
