#include "pluginwire.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static void pw_put(struct pluginwire_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap != 0 ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->data = xrealloc(b->data, cap);
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

void pluginwire_begin(struct pluginwire_buf *b, enum pluginwire_type type)
{
	uint32_t zero = 0;
	uint8_t t = (uint8_t)type;

	b->frame = b->len;
	pw_put(b, &zero, sizeof(zero));
	pw_put(b, &t, 1);
}

void pluginwire_u32(struct pluginwire_buf *b, uint32_t v)
{
	pw_put(b, &v, sizeof(v));
}

void pluginwire_u64(struct pluginwire_buf *b, uint64_t v)
{
	pw_put(b, &v, sizeof(v));
}

void pluginwire_str(struct pluginwire_buf *b, const char *s)
{
	uint32_t n = s != NULL ? (uint32_t)strlen(s) : UINT32_MAX;

	pw_put(b, &n, sizeof(n));
	if (s != NULL)
		pw_put(b, s, (size_t)n + 1);
}

void pluginwire_end(struct pluginwire_buf *b)
{
	uint32_t n = (uint32_t)(b->len - b->frame - sizeof(uint32_t));

	memcpy(b->data + b->frame, &n, sizeof(n));
}

void pluginwire_buf_free(struct pluginwire_buf *b)
{
	free(b->data);
	*b = (struct pluginwire_buf){ 0 };
}

long pluginwire_frame_len(const char *data, size_t len)
{
	uint32_t n;

	if (len < sizeof(n))
		return 0;
	memcpy(&n, data, sizeof(n));
	if (n < 1 || n > PLUGINWIRE_MAX_FRAME)
		return -EPROTO;
	if (len < sizeof(n) + n)
		return 0;
	return (long)(sizeof(n) + n);
}

int pluginwire_open(struct pluginwire_rd *rd, char *frame, size_t frame_len)
{
	rd->p = frame + sizeof(uint32_t) + 1;
	rd->end = frame + frame_len;
	rd->bad = 0;
	return (uint8_t)frame[sizeof(uint32_t)];
}

uint32_t pluginwire_get_u32(struct pluginwire_rd *rd)
{
	uint32_t v = 0;

	if ((size_t)(rd->end - rd->p) < sizeof(v)) {
		rd->bad = 1;
		return 0;
	}
	memcpy(&v, rd->p, sizeof(v));
	rd->p += sizeof(v);
	return v;
}

uint64_t pluginwire_get_u64(struct pluginwire_rd *rd)
{
	uint64_t v = 0;

	if ((size_t)(rd->end - rd->p) < sizeof(v)) {
		rd->bad = 1;
		return 0;
	}
	memcpy(&v, rd->p, sizeof(v));
	rd->p += sizeof(v);
	return v;
}

const char *pluginwire_get_str(struct pluginwire_rd *rd)
{
	uint32_t n = pluginwire_get_u32(rd);
	const char *s;

	if (rd->bad || n == UINT32_MAX)
		return NULL;
	if ((size_t)(rd->end - rd->p) < (size_t)n + 1 || rd->p[n] != '\0') {
		rd->bad = 1;
		return NULL;
	}
	s = rd->p;
	rd->p += (size_t)n + 1;
	return s;
}
