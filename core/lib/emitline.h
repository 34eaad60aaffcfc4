/* The "TYPE [SUBJECT] key=value..." lines of `ophookctl emit -`: split
 * into words the way ophookctl always has (blanks separate, '...' and
 * "..." quote, \ escapes outside '...').  ophookctl checks each line and
 * sends the lines as they are (the "lines" form of a batch emit); the
 * daemon splits them again and builds the events, which costs far less
 * than a JSON object per event on both sides. */
#ifndef OPHOOK_EMITLINE_H
#define OPHOOK_EMITLINE_H

#include <jansson.h>
#include <stddef.h>

#define EMITLINE_MAX_WORDS 1024

struct emitline {
	const char *type;
	const char *subject; /* NULL when the line gives none */
	size_t n_fields;
	const char *keys[EMITLINE_MAX_WORDS];
	const char *values[EMITLINE_MAX_WORDS];
};

/* Split `line` in place (it is modified; el points into it).  1 when it
 * holds an event, 0 for a blank or '#' comment line, -EINVAL with *why_r
 * (static text or a thread-local buffer) for a bad line. */
int emitline_parse(char *line, struct emitline *el, const char **why_r);

/* The fields of a parsed line as a new JSON object of strings.  The line
 * must be valid UTF-8 (a jansson string is): no check is repeated. */
json_t *emitline_fields(const struct emitline *el);

#endif
