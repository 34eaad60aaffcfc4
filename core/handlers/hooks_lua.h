/* Private to the hooks subsystem: the Lua hooks' handler (hooks_lua.c).
 * Each *.lua file has one thread running its jobs (load, event, pre, quit)
 * in its own sandbox, one at a time; results come back to the loop thread
 * through hk->async.  Types in hooks_int.h. */
#ifndef OPHOOK_HOOKS_LUA_H
#define OPHOOK_HOOKS_LUA_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

struct hooks;
struct hooks_job;
struct luafile;
struct luahook;

/* Fill hk->host: what a Lua hook may ask of the daemon (emit, the panel
 * DB query of hk->deps, own_write). */
void hooks_lua_host_init(struct hooks *hk);
/* A new file entry with its thread started (refs: 1 for hk->lua, 1 for
 * the thread); on failure last_error says so and no thread runs. */
struct luafile *hooks_lua_new(struct hooks *hk, const char *path,
			      const char *name);
/* Drop a reference to f; the last one frees it (and its ref on hk). */
void hooks_lua_unref(struct luafile *f);
/* Queue job on f's thread (ownership passes to the thread). */
void hooks_lua_queue(struct luafile *f, struct hooks_job *job);
/* Free a job and what it holds (its event reference, results); NULL is
 * fine. */
void hooks_lua_job_free(struct hooks_job *job);
/* Register f's handler "lua:NAME" with its patterns on the bus / remove
 * it (its in-flight deliveries finish first). */
void hooks_lua_register(struct luafile *f);
void hooks_lua_unregister(struct luafile *f);
/* The ophook.on patterns (pre false) or ophook.pre intents (pre true) of
 * lh without duplicates: a new JSON array of strings. */
json_t *hooks_lua_list(struct luahook *lh, bool pre);
/* The intents the text of the Lua file at path names in
 * ophook.pre("INTENT", ...) (a new array, empty when none or unreadable):
 * for a file that failed to load. */
json_t *hooks_lua_pre_named(const char *path);
/* hk->async's callback: complete the jobs the threads posted. */
void hooks_lua_async_cb(uv_async_t *a);
/* hmap_each callbacks over hk->lua (ctx: the struct hooks):
 * watch: disable a file whose call is stuck far past its deadline;
 * stop_thread: cancel what runs, ask the thread to quit and join it
 * (leaving it behind, and hk->leak set, when it does not stop);
 * stop_free: unregister and drop a file whose thread ended. */
bool hooks_lua_watch(const char *key, void *value, void *ctx);
bool hooks_lua_stop_thread(const char *key, void *value, void *ctx);
bool hooks_lua_stop_free(const char *key, void *value, void *ctx);

#endif
