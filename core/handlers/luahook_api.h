/* Private to the Lua host: the ophook.* functions (luahook_api.c); see
 * ophook-lua(7). */
#ifndef OPHOOK_LUAHOOK_API_H
#define OPHOOK_LUAHOOK_API_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>

/* Set the global `ophook` (on, pre, deny, retry, exec, emit, read_file,
 * write_file, log.*, json.*, db.query, http.*, version, name), `print`
 * (as ophook.log.info) and the deny metatable.  Stack unchanged. */
void luahook_api_open(lua_State *L);
/* opts.timeout of the table at idx (1..300000 ms, raises otherwise), def
 * when absent. */
unsigned luahook_api_opt_timeout(lua_State *L, int idx, unsigned def);
/* Return nil, msg (the API's soft failure): `return luahook_api_fail()`. */
int luahook_api_fail(lua_State *L, const char *msg);
/* In a dry run (host.record set): append call (reference stolen) with
 * "text" (printf) and "log_index" (how many log lines came before it), and
 * return true; else free call and return false. */
struct luahook;
bool luahook_api_record(struct luahook *lh, json_t *call, const char *fmt,
			...) __attribute__((format(printf, 3, 4)));

#endif
