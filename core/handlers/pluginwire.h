/* The wire between ophookd and an ophook-plugin-runner (isolation: process):
 * frames over a socketpair, each `u32 length` (of what follows), `u8 type`,
 * then the fields of that type.  Integers are host order (both ends are
 * the same machine and build); a string is `u32 length` + bytes + NUL,
 * length 0xffffffff for NULL.  Frames flow both ways without waiting for
 * each other: the daemon writes deliveries as they come, the runner answers
 * them in order, so both ends batch many frames per read and write. */
#ifndef OPHOOK_PLUGINWIRE_H
#define OPHOOK_PLUGINWIRE_H

#include <stddef.h>
#include <stdint.h>

enum pluginwire_type {
	/* runner -> daemon */
	PW_HELLO = 1,  /* str name, str description, u32 abi, u32 flags,
			  str subscriptions ("a\nb", NULL: all) */
	PW_READY,      /* init returned 0 */
	PW_FAIL,       /* str error: load or init failed (the runner exits) */
	PW_RESULT,     /* u64 token, i32 rc, str error */
	PW_LOG,        /* u32 level, str message */
	PW_EMIT,       /* str type, str subject, str fields_json */
	PW_OWN_WRITE,  /* str path */
	/* daemon -> runner */
	PW_INIT = 32,  /* str JSON {name, state_dir, root, node, settings,
			  settings_pos, file, line, column} */
	PW_EVENT,      /* u64 token, i64 id, i64 time_ms, u32 attempt,
			  str type, str subject, str source, str json */
	PW_FINI,       /* fini, then exit 0 */
};

/* A growing output buffer of frames. */
struct pluginwire_buf {
	char *data;
	size_t len, cap;
	size_t frame; /* offset of the frame being built */
};

/* Start a frame of `type`. */
void pluginwire_begin(struct pluginwire_buf *b, enum pluginwire_type type);
void pluginwire_u32(struct pluginwire_buf *b, uint32_t v);
void pluginwire_u64(struct pluginwire_buf *b, uint64_t v);
/* s may be NULL. */
void pluginwire_str(struct pluginwire_buf *b, const char *s);
/* Close the frame begun last (writes its length). */
void pluginwire_end(struct pluginwire_buf *b);
void pluginwire_buf_free(struct pluginwire_buf *b);

/* Reading one frame's fields in place. */
struct pluginwire_rd {
	char *p, *end;
	int bad; /* a field ran past the frame */
};

/* The length of the first complete frame in data[0..len) (header
 * included), 0 when incomplete, -EPROTO when oversized. */
long pluginwire_frame_len(const char *data, size_t len);
/* Set rd over a complete frame of frame_len bytes; returns its type. */
int pluginwire_open(struct pluginwire_rd *rd, char *frame, size_t frame_len);
uint32_t pluginwire_get_u32(struct pluginwire_rd *rd);
uint64_t pluginwire_get_u64(struct pluginwire_rd *rd);
/* A string in place (NUL-terminated), or NULL. */
const char *pluginwire_get_str(struct pluginwire_rd *rd);

/* Largest frame accepted (an event's payload is far smaller). */
#define PLUGINWIRE_MAX_FRAME (64u << 20)

#endif
