#include "event.h"
#include "util.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int event_type_valid(const char *type, const char **why_r)
{
	size_t len = strlen(type);
	bool part_empty = true;

	if (len == 0 || len > 64) {
		*why_r = "event type must be 1 to 64 bytes";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		char c = type[i];

		if (c == '.') {
			if (part_empty) {
				*why_r = "empty part in event type";
				return -1;
			}
			part_empty = true;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
			   c == '_') {
			part_empty = false;
		} else {
			*why_r = "event type may only hold a-z, 0-9, '_' and '.'";
			return -1;
		}
	}
	if (part_empty) {
		*why_r = "event type ends with '.'";
		return -1;
	}
	return 0;
}

static int event_subject_valid(const char *s, const char **why_r)
{
	size_t len = strlen(s);

	if (len == 0 || len > 255) {
		*why_r = "subject must be 1 to 255 bytes";
		return -1;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			*why_r = "control character in subject";
			return -1;
		}
	}
	return 0;
}

/* time_format_ms, with the text of the last second kept per thread: events
 * come in bursts within one second, and gmtime_r + snprintf cost more than
 * the rest of event_new. */
static void event_time_format(int64_t ms, char *buf, size_t size)
{
	static _Thread_local int64_t last_sec = -1;
	static _Thread_local char last[40];
	static _Thread_local size_t last_len;
	int64_t sec = ms / 1000;
	int milli = (int)(ms % 1000);

	if (ms < 0 || size < sizeof(last)) {
		time_format_ms(ms, buf, size);
		return;
	}
	if (sec != last_sec) {
		time_format_ms(sec * 1000, last, sizeof(last));
		last_len = strlen(last);
		last_sec = sec;
	}
	memcpy(buf, last, last_len + 1);
	/* "...SS.mmmZ": the three digits before the Z */
	buf[last_len - 4] = (char)('0' + milli / 100);
	buf[last_len - 3] = (char)('0' + milli / 10 % 10);
	buf[last_len - 2] = (char)('0' + milli % 10);
}

static void event_fill_pub(struct event *ev)
{
	ev->pub.type = ev->type;
	ev->pub.subject = ev->subject;
	ev->pub.source = ev->source;
	ev->pub.time_ms = ev->time_ms;
	ev->pub.json = ev->json;
}

struct event *event_new(const char *type, const char *subject,
			const char *source, const char *node, int64_t time_ms,
			json_t *payload, const char **why_r)
{
	struct event *ev;
	char tbuf[40];

	if (payload != NULL && !json_is_object(payload)) {
		*why_r = "payload is not a JSON object";
		json_decref(payload);
		return NULL;
	}
	if (event_type_valid(type, why_r) < 0 ||
	    event_subject_valid(subject, why_r) < 0) {
		json_decref(payload);
		return NULL;
	}
	ev = xcalloc(1, sizeof(*ev));
	atomic_init(&ev->refcount, 1);
	ev->type = xstrdup(type);
	ev->subject = xstrdup(subject);
	ev->source = xstrdup(source);
	ev->node = xstrdup(node != NULL ? node : "");
	ev->time_ms = time_ms;
	ev->payload = payload != NULL ? payload : json_object();
	event_time_format(time_ms, tbuf, sizeof(tbuf));
	json_object_set_new(ev->payload, "type", json_string(type));
	json_object_set_new(ev->payload, "subject", json_string(subject));
	json_object_set_new(ev->payload, "source", json_string(source));
	json_object_set_new(ev->payload, "node", json_string(ev->node));
	json_object_set_new(ev->payload, "time", json_string(tbuf));
	event_fill_pub(ev);
	return ev;
}

void event_set_id(struct event *ev, int64_t id)
{
	ev->pub.id = id;
	json_object_set_new(ev->payload, "id", json_integer(id));
	free(ev->json);
	ev->json = json_dumps(ev->payload, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (ev->json == NULL)
		ev->json = xstrdup("{}");
	event_fill_pub(ev);
}

void event_set_id_text(struct event *ev, int64_t id, const char *text)
{
	size_t len = strlen(text);

	ev->pub.id = id;
	json_object_set_new(ev->payload, "id", json_integer(id));
	free(ev->json);
	if (len < 2 || text[0] != '{') {
		ev->json = json_dumps(ev->payload, JSON_COMPACT);
	} else {
		/* {"id":N,<the rest of text>} or {"id":N} */
		char head[40];
		int hl = snprintf(head, sizeof(head), "{\"id\":%lld%s",
				  (long long)id, len == 2 ? "" : ",");

		ev->json = xmalloc((size_t)hl + len);
		memcpy(ev->json, head, (size_t)hl);
		memcpy(ev->json + hl, text + 1, len); /* with its NUL */
	}
	event_fill_pub(ev);
}

struct event *event_from_row(int64_t id, const char *type, const char *subject,
			     const char *source, const char *node,
			     int64_t time_ms, const char *payload)
{
	struct event *ev;
	json_t *obj = json_loads(payload, 0, NULL);

	if (obj == NULL || !json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	ev = xcalloc(1, sizeof(*ev));
	atomic_init(&ev->refcount, 1);
	ev->type = xstrdup(type);
	ev->subject = xstrdup(subject);
	ev->source = xstrdup(source != NULL ? source : "");
	ev->node = xstrdup(node != NULL ? node : "");
	ev->time_ms = time_ms;
	ev->payload = obj;
	if (json_object_get(obj, "id") == NULL)
		event_set_id_text(ev, id, payload);
	else
		ev->json = xstrdup(payload);
	ev->pub.id = id;
	event_fill_pub(ev);
	return ev;
}

/* Append s (len bytes, valid UTF-8) as a JSON string, escaped as jansson
 * does without flags: \\ \" \b \f \n \r \t, other bytes below 0x20 as
 * \u00XX; everything else as it is. */
static char *event_dump_string(char *p, const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";

	*p++ = '"';
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\') {
			*p++ = (char)c;
			continue;
		}
		*p++ = '\\';
		switch (c) {
		case '"': *p++ = '"'; break;
		case '\\': *p++ = '\\'; break;
		case '\b': *p++ = 'b'; break;
		case '\f': *p++ = 'f'; break;
		case '\n': *p++ = 'n'; break;
		case '\r': *p++ = 'r'; break;
		case '\t': *p++ = 't'; break;
		default:
			memcpy(p, "u00", 3);
			p[3] = hex[c >> 4];
			p[4] = hex[c & 15];
			p += 5;
		}
	}
	*p++ = '"';
	return p;
}

/* Bytes event_dump_string writes for s. */
static size_t event_dump_string_len(const char *s, size_t len)
{
	size_t n = len + 2;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		n += c == '"' || c == '\\' || c == '\b' || c == '\f' ||
				     c == '\n' || c == '\r' || c == '\t'
			     ? 1
			     : 5;
	}
	return n;
}

char *event_payload_dump(json_t *payload)
{
	const char *key;
	json_t *v;
	size_t cap = 3, n = 0;
	char *out, *p;

	if (!json_is_object(payload))
		return json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
	/* the exact size (integers: at most 20 digits and a sign): a
	 * worst-case guess would be a large-chunk request per event, and
	 * glibc consolidates its fast bins at every one of those */
	json_object_foreach(payload, key, v) {
		size_t vlen;

		switch (json_typeof(v)) {
		case JSON_STRING:
			vlen = event_dump_string_len(json_string_value(v),
						     json_string_length(v));
			break;
		case JSON_INTEGER:
		case JSON_TRUE:
		case JSON_FALSE:
		case JSON_NULL:
			vlen = 24;
			break;
		default: /* reals and nesting: jansson's own output */
			return json_dumps(payload, JSON_COMPACT);
		}
		cap += event_dump_string_len(key, strlen(key)) + 2 + vlen;
		n++;
	}
	p = out = xmalloc(cap);
	*p++ = '{';
	n = 0;
	json_object_foreach(payload, key, v) {
		if (n++ > 0)
			*p++ = ',';
		p = event_dump_string(p, key, strlen(key));
		*p++ = ':';
		switch (json_typeof(v)) {
		case JSON_STRING:
			p = event_dump_string(p, json_string_value(v),
					      json_string_length(v));
			break;
		case JSON_INTEGER:
			p += snprintf(p, 24, "%" JSON_INTEGER_FORMAT,
				      json_integer_value(v));
			break;
		case JSON_TRUE:
			memcpy(p, "true", 4);
			p += 4;
			break;
		case JSON_FALSE:
			memcpy(p, "false", 5);
			p += 5;
			break;
		default:
			memcpy(p, "null", 4);
			p += 4;
			break;
		}
	}
	*p++ = '}';
	*p = '\0';
	return out;
}

void event_view_init(struct event_view *view, struct event *ev,
		     unsigned attempt)
{
	view->pub = ev->pub;
	view->pub.attempt = attempt;
	view->ev = ev;
}

struct event *event_ref(struct event *ev)
{
	atomic_fetch_add(&ev->refcount, 1);
	return ev;
}

void event_unref(struct event **evp)
{
	struct event *ev = *evp;

	*evp = NULL;
	if (ev == NULL || atomic_fetch_sub(&ev->refcount, 1) != 1)
		return;
	free(ev->type);
	free(ev->subject);
	free(ev->source);
	free(ev->node);
	free(ev->json);
	json_decref(ev->payload);
	free(ev);
}

const char *event_get(const struct ophook_event *pub, const char *key)
{
	static _Thread_local char buf[64];
	const struct event_view *view = (const struct event_view *)(
		(const char *)pub - offsetof(struct event_view, pub));
	const struct event *ev = view->ev;
	json_t *v = json_object_get(ev->payload, key);

	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
		return buf;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	return NULL;
}
