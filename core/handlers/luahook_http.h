/* Private to the Lua host: ophook.http.get / ophook.http.post
 * (luahook_http.c), with libcurl, within the call's deadline. */
#ifndef OPHOOK_LUAHOOK_HTTP_H
#define OPHOOK_LUAHOOK_HTTP_H

#include <lua.h>

/* Set field "http" of the table on top of the stack.  Stack unchanged. */
void luahook_http_open(lua_State *L);

#endif
