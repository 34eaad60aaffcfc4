/* libFuzzer target for the Lua event bridge (core/handlers/luahook*.c), not built by
 * automake (see run.sh).  Input: "TYPE\nSUBJECT\nPAYLOAD": the payload is
 * parsed as JSON (anything else becomes {"raw": text}), type and subject
 * are set in it, and it goes through luahook_run_event() (the read-only
 * event proxy: index, pairs, #, tostring, writes refused) to a fixed hook
 * that walks the whole event, encodes and decodes it, and through
 * luahook_run_pre() as a request.  Aborts when the bridge breaks its
 * contract: the hook reports "BRIDGE:" (when the input does not hold
 * that string itself: a writable event, a type or
 * subject that differs from what was given, attempt not the number given),
 * or a result other than done / retry / failed with a message. */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luahook.h"
#include "ophook/plugin.h"

static const char hook_src[] =
	"local function walk(v, d)\n"
	"  if d > 40 then return end\n"
	"  local t = type(v)\n"
	"  if t == 'table' or t == 'userdata' then\n"
	"    local n = #v\n"
	"    for k, x in pairs(v) do walk(k, d + 1); walk(x, d + 1) end\n"
	"    for i = 1, math.min(n, 8) do walk(v[i], d + 1) end\n"
	"    local _ = v.nope, v[1], v[0], v[-1], v[1.5]\n"
	"    if t == 'userdata' or getmetatable(v) ~= nil then\n"
	"      if pcall(function() v.zz_new = 1 end) then\n"
	"        error('BRIDGE: event table is writable')\n"
	"      end\n"
	"    end\n"
	"    tostring(v)\n"
	"  end\n"
	"end\n"
	"ophook.on('*', {priority = 1}, function(ev, attempt)\n"
	"  if math.type(attempt) ~= 'integer' then\n"
	"    error('BRIDGE: attempt is not an integer')\n"
	"  end\n"
	"  if ev.type ~= FUZZ_TYPE then error('BRIDGE: type differs') end\n"
	"  if ev.subject ~= FUZZ_SUBJECT then\n"
	"    error('BRIDGE: subject differs')\n"
	"  end\n"
	"  walk(ev, 0)\n"
	"  local ok, s = pcall(ophook.json.encode, ev)\n"
	"  if ok and type(s) == 'string' then\n"
	"    local ok2, back = pcall(ophook.json.decode, s)\n"
	"    if ok2 then walk(back, 0) end\n"
	"  end\n"
	"end)\n"
	"ophook.on('fuzz.retry', {priority = 2}, function(ev)\n"
	"  return ophook.retry\n"
	"end)\n"
	"ophook.on('fuzz.fail', {priority = 2}, function(ev)\n"
	"  return false, 'fuzz fail'\n"
	"end)\n"
	"ophook.pre('fuzz.check', function(req)\n"
	"  walk(req, 0)\n"
	"  if req.deny ~= nil then return ophook.deny(tostring(req.deny)) end\n"
	"end)\n";

/* 1 when s is valid UTF-8 (what the engine's JSON payloads hold) */
static int fuzz_utf8(const char *s)
{
	json_t *j = json_string(s);

	json_decref(j);
	return j != NULL;
}

/* Append `.. string.char(b1,b2,...)` for the bytes of s, at most 64
 * bytes per call: a Lua call takes at most ~250 arguments (registers), and
 * a 255-byte subject in one call does not compile. */
static char *fuzz_lua_bytes(char *q, const char *s)
{
	for (size_t i = 0; s[i]; i++) {
		if (i % 64 == 0)
			q += sprintf(q, "%s .. string.char(", i ? ")" : "");
		q += sprintf(q, "%s%u", i % 64 ? "," : "", (unsigned char)s[i]);
	}
	if (s[0] != '\0')
		q += sprintf(q, ")");
	return q;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nl;
	char type[128], subject[256], *err = NULL, *code;
	size_t n;
	json_t *payload;
	struct luahook *lh = NULL;
	struct luahook_limits lim = { .memory_max = 32u << 20,
				      .timeout_ms = 5000,
				      .output_max = 4096 };
	struct luahook_host host = { 0 };
	unsigned ran = 0;
	bool deny = false;
	char *reason = NULL;
	int ret;
	/* a "BRIDGE:" the input brought itself (in a key, a value) is no
	 * finding */
	bool in_input = memmem(data, size, "BRIDGE:", 7) != NULL;

	nl = memchr(p, '\n', size);
	if (nl == NULL)
		return 0;
	n = (size_t)(nl - p) < sizeof(type) - 1 ? (size_t)(nl - p)
						 : sizeof(type) - 1;
	memcpy(type, p, n);
	type[n] = '\0';
	p = nl + 1;
	nl = memchr(p, '\n', (size_t)(end - p));
	if (nl == NULL)
		return 0;
	n = (size_t)(nl - p) < sizeof(subject) - 1 ? (size_t)(nl - p)
						    : sizeof(subject) - 1;
	memcpy(subject, p, n);
	subject[n] = '\0';
	p = nl + 1;
	/* names the engine would pass: no NUL inside, valid UTF-8 for the
	 * payload (json_string refuses the rest) */
	if (strlen(type) == 0 || !fuzz_utf8(type) || !fuzz_utf8(subject))
		return 0;

	payload = json_loadb(p, (size_t)(end - p), JSON_DECODE_ANY, NULL);
	if (payload == NULL || !json_is_object(payload)) {
		json_t *raw = json_stringn(p, (size_t)(end - p));

		json_decref(payload);
		payload = json_object();
		if (raw != NULL)
			json_object_set_new(payload, "raw", raw);
	}
	json_object_set_new(payload, "type", json_string(type));
	json_object_set_new(payload, "subject", json_string(subject));
	json_object_set_new(payload, "id", json_integer((json_int_t)size));

	/* the expected type and subject as globals, built with string.char
	 * so no byte needs escaping */
	{
		size_t cap = sizeof(hook_src) + 8 * (strlen(type) + strlen(subject)) + 256;
		char *q;

		code = malloc(cap);
		q = code;
		q += sprintf(q, "FUZZ_TYPE = ''");
		q = fuzz_lua_bytes(q, type);
		q += sprintf(q, "\nFUZZ_SUBJECT = ''");
		q = fuzz_lua_bytes(q, subject);
		q += sprintf(q, "\n");
		memcpy(q, hook_src, sizeof(hook_src));
	}
	ret = luahook_load_string(code, strlen(code), "fuzz.lua", &lim, &host,
				  &lh, &err);
	free(code);
	if (ret < 0) {
		fprintf(stderr, "fuzz_luaevent: hook does not load: %s\n", err);
		abort();
	}

	ret = luahook_run_event(lh, type, payload, 1 + (unsigned)(size % 9),
				NULL, &ran, &err);
	if (err != NULL && strstr(err, "BRIDGE:") != NULL && !in_input) {
		fprintf(stderr, "fuzz_luaevent: %s\n", err);
		abort();
	}
	if (ret != 0 && ret != OPHOOK_RETRY && ret != -EIO &&
	    ret != -ENOMEM && ret != -ETIMEDOUT) {
		fprintf(stderr, "fuzz_luaevent: run_event returned %d (%s)\n",
			ret, err ? err : "no message");
		abort();
	}
	if (ret < 0 && err == NULL) {
		fprintf(stderr, "fuzz_luaevent: error %d without a message\n",
			ret);
		abort();
	}
	free(err);
	err = NULL;

	json_object_set_new(payload, "intent", json_string("fuzz.check"));
	ret = luahook_run_pre(lh, "fuzz.check", payload, NULL, &deny,
			      &reason, &err);
	if (err != NULL && strstr(err, "BRIDGE:") != NULL && !in_input) {
		fprintf(stderr, "fuzz_luaevent: pre: %s\n", err);
		abort();
	}
	if (ret == 0 && deny != (json_object_get(payload, "deny") != NULL &&
				 !json_is_null(json_object_get(payload, "deny")))) {
		fprintf(stderr, "fuzz_luaevent: deny %d for deny field %s\n",
			deny, json_object_get(payload, "deny") ? "set" : "unset");
		abort();
	}
	free(reason);
	free(err);
	json_decref(payload);
	luahook_free(&lh);
	return 0;
}
