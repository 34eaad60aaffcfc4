/* libFuzzer target: the "TYPE [SUBJECT] key=value..." lines of
 * `ophookctl emit -` as the daemon splits them (core/lib/emitline.c), from a
 * root client's batch.  Checks: the split never reads or writes out of the
 * line, a parsed line has a type without '=', keys are non-empty and
 * without '=', and its fields object holds every key (the last value of a
 * repeated key) as a string. */
#include "emitline.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct emitline el;
	char *line = malloc(size + 1);
	const char *why = NULL;
	int r;

	/* the daemon builds fields only from UTF-8 text (jansson checked
	 * the batch): note whether this one is */
	json_t *utf8 = json_stringn((const char *)data, size);

	memcpy(line, data, size);
	line[size] = '\0';
	r = emitline_parse(line, &el, &why);
	if (r < 0 && (why == NULL || why[0] == '\0'))
		abort();
	if (r > 0) {
		if (el.type == NULL || el.type[0] == '\0' ||
		    strchr(el.type, '=') != NULL)
			abort();
		for (size_t i = 0; i < el.n_fields; i++)
			if (el.keys[i][0] == '\0' ||
			    strchr(el.keys[i], '=') != NULL)
				abort();
		if (utf8 != NULL) {
			json_t *f = emitline_fields(&el);

			for (size_t i = 0; i < el.n_fields; i++)
				if (!json_is_string(json_object_get(f,
							el.keys[i])))
					abort();
			json_decref(f);
		}
	}
	json_decref(utf8);
	free(line);
	return 0;
}
