/* ophook.http.get / ophook.http.post for Lua hooks (webhooks): libcurl,
 * http and https only, within the call's deadline, the response capped. */
#define _GNU_SOURCE
#include "luahook_http.h"

#include <curl/curl.h>
#include <jansson.h>
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luahook_api.h"
#include "luahook_int.h"
#include "luahook_sandbox.h"
#include "util.h"

#define LUAHOOK_HTTP_MAX (1u << 20)

static pthread_once_t luahook_http_once = PTHREAD_ONCE_INIT;

static void luahook_http_global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct luahook_http_body {
	char *data;
	size_t len, max;
	bool too_big;
};

static size_t luahook_http_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct luahook_http_body *b = ud;
	size_t n = size * nmemb;

	if (b->len + n > b->max) {
		b->too_big = true;
		return 0;
	}
	b->data = xrealloc(b->data, b->len + n + 1);
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static bool luahook_http_header_ok(const char *s)
{
	return strpbrk(s, "\r\n") == NULL;
}

/* Collect opts.headers into a curl list; false on a bad header. */
static bool luahook_http_headers(lua_State *L, int opts,
				 struct curl_slist **list, bool *has_ct,
				 const char **bad_r)
{
	if (opts == 0 || lua_getfield(L, opts, "headers") != LUA_TTABLE) {
		if (opts != 0)
			lua_pop(L, 1);
		return true;
	}
	lua_pushnil(L);
	while (lua_next(L, -2) != 0) {
		char *line = NULL;

		if (lua_type(L, -2) == LUA_TSTRING &&
		    lua_type(L, -1) == LUA_TSTRING) {
			const char *k = lua_tostring(L, -2);
			const char *v = lua_tostring(L, -1);

			if (luahook_http_header_ok(k) &&
			    luahook_http_header_ok(v) &&
			    strchr(k, ':') == NULL)
				line = xasprintf("%s: %s", k, v);
			if (strcasecmp(k, "content-type") == 0)
				*has_ct = true;
		} else if (lua_type(L, -2) == LUA_TNUMBER &&
			   lua_type(L, -1) == LUA_TSTRING) {
			const char *v = lua_tostring(L, -1);

			if (luahook_http_header_ok(v) && strchr(v, ':') != NULL)
				line = xstrdup(v);
			if (strncasecmp(v, "content-type:", 13) == 0)
				*has_ct = true;
		}
		if (line == NULL) {
			*bad_r = "opts.headers: each header must be "
				 "name = \"value\" (no CR/LF)";
			lua_pop(L, 3);
			return false;
		}
		*list = curl_slist_append(*list, line);
		free(line);
		lua_pop(L, 1);
	}
	lua_pop(L, 1);
	return true;
}

static int luahook_http_request(lua_State *L, bool post)
{
	struct luahook *lh = luahook_of(L);
	const char *url = luaL_checkstring(L, 1);
	size_t body_len = 0;
	const char *body = post ? luaL_optlstring(L, 2, "", &body_len) : NULL;
	int opts = post ? 3 : 2;
	unsigned timeout;
	struct curl_slist *headers = NULL;
	struct luahook_http_body b = { .max = LUAHOOK_HTTP_MAX };
	bool has_ct = false;
	const char *bad = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	long status = 0;
	CURLcode rc;
	CURL *c;

	luahook_sandbox_check_deadline(L); /* past it: fail at once */
	timeout = luahook_sandbox_remaining_ms(lh);
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return luahook_api_fail(L, "ophook.http: only http:// and "
				       "https:// URLs");
	if (lua_type(L, opts) != LUA_TTABLE) {
		opts = 0;
	} else {
		unsigned t = luahook_api_opt_timeout(L, opts, timeout);

		if (t < timeout)
			timeout = t;
	}
	if (!luahook_http_headers(L, opts, &headers, &has_ct, &bad)) {
		curl_slist_free_all(headers);
		return luahook_api_fail(L, bad);
	}
	if (lh->host.record != NULL) {
		/* dry run: checked as for real, not sent; 200 and "" */
		curl_slist_free_all(headers);
		json_t *call = json_pack("{sssssI}", "call",
					 post ? "http.post" : "http.get",
					 "url", url, "bytes",
					 (json_int_t)body_len);

		if (post)
			luahook_api_record(lh, call, "would POST %s (%zu "
					   "bytes)", url, body_len);
		else
			luahook_api_record(lh, call, "would GET %s", url);
		lua_pushinteger(L, 200);
		lua_pushliteral(L, "");
		return 2;
	}
	if (post && !has_ct)
		headers = curl_slist_append(headers,
					    "Content-Type: application/json");
	pthread_once(&luahook_http_once, luahook_http_global_init);
	c = curl_easy_init();
	if (c == NULL) {
		curl_slist_free_all(headers);
		return luahook_api_fail(L, "ophook.http: curl_easy_init "
					   "failed");
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(c, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "ophook/" OPHOOK_VERSION);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, luahook_http_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (post) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)body_len);
		curl_easy_setopt(c, CURLOPT_COPYPOSTFIELDS, body);
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	curl_slist_free_all(headers);
	luahook_tmp_add(lh, b.data);
	if (rc != CURLE_OK) {
		lua_pushnil(L);
		if (b.too_big)
			lua_pushfstring(L, "ophook.http: %s: response larger "
					   "than %d bytes", url,
					(int)LUAHOOK_HTTP_MAX);
		else
			lua_pushfstring(L, "ophook.http: %s: %s", url,
					errbuf[0] != '\0' ? errbuf
						: curl_easy_strerror(rc));
		luahook_tmp_free(lh, b.data);
		return 2;
	}
	lua_pushinteger(L, status);
	lua_pushlstring(L, b.data != NULL ? b.data : "", b.len);
	luahook_tmp_free(lh, b.data);
	return 2;
}

static int luahook_http_post(lua_State *L)
{
	return luahook_http_request(L, true);
}

static int luahook_http_get(lua_State *L)
{
	return luahook_http_request(L, false);
}

void luahook_http_open(lua_State *L)
{
	static const luaL_Reg fns[] = {
		{ "post", luahook_http_post },
		{ "get", luahook_http_get },
		{ NULL, NULL },
	};

	lua_newtable(L);
	luaL_setfuncs(L, fns, 0);
	lua_setfield(L, -2, "http");
}
