/* Private to the Lua host: JSON <-> Lua (luahook_json.c).  Events reach a
 * hook as read-only views of their JSON (valid during the call that got
 * them); other JSON is copied into plain tables, JSON null being
 * ophook.json.null (a NULL light userdata). */
#ifndef OPHOOK_LUAHOOK_JSON_H
#define OPHOOK_LUAHOOK_JSON_H

#include <jansson.h>
#include <lua.h>
#include <stdbool.h>

struct luahook;

/* Push j (sp += 1): as a read-only view when proxy and j is an object or
 * array, else as plain Lua values (depth: the nesting so far, 0).  Raises
 * when nested too deeply. */
void luahook_json_push(lua_State *L, struct luahook *lh, json_t *j,
		       bool proxy, int depth);
/* Push a read-only view of j (an object or array, borrowed: it must live
 * until the call ends). */
void luahook_json_push_ro(lua_State *L, struct luahook *lh, json_t *j);
/* The Lua value at idx as new JSON; raises "what: cannot encode ..." when
 * it has no JSON form (a function, a NaN, a cycle, bad UTF-8). */
json_t *luahook_json_check(lua_State *L, int idx, const char *what);
/* Register the views' metatable.  Stack unchanged. */
void luahook_json_open(lua_State *L);

#endif
