/* Private to the Lua host: the sandbox (luahook_sandbox.c).  Memory is
 * capped by the state's allocator, time by an instruction-count hook
 * that checks the call's deadline and cancel flag (it never fires inside
 * one long C function: hooks_lua.c keeps a backstop for that), and only
 * safe libraries are opened. */
#ifndef OPHOOK_LUAHOOK_SANDBOX_H
#define OPHOOK_LUAHOOK_SANDBOX_H

#include <lua.h>
#include <stddef.h>

struct luahook;

/* A new state for lh: allocations capped at lh->mem_max (+ mem_slack),
 * the deadline hook set, lh in its extra space.  NULL when it does not
 * fit. */
lua_State *luahook_sandbox_newstate(struct luahook *lh);
/* Open the safe libraries (base without dofile/loadfile/collectgarbage,
 * string without dump, table, math, utf8, os clock functions only) and
 * replace load (text only), setmetatable (no __gc: finalizers run without
 * the deadline hook), pcall and xpcall (they do not swallow the sandbox's
 * own timeout, memory and cancel errors).  Stack unchanged. */
void luahook_sandbox_open(lua_State *L);
/* Why the current call was aborted, in buf (returned). */
const char *luahook_sandbox_abort_text(struct luahook *lh, char *buf,
				       size_t size);
/* For the functions that wait (exec, http, db): raise the abort error at
 * once when the call is past its deadline or cancelled (pcall cannot
 * swallow it); return when there is time left. */
void luahook_sandbox_check_deadline(lua_State *L);
/* Milliseconds left before the current call's deadline (at least 1). */
unsigned luahook_sandbox_remaining_ms(struct luahook *lh);

#endif
