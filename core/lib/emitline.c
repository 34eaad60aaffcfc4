/* emit lines: see emitline.h. */
#include "emitline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Split line into words; the count or -1 with *why_r. */
static int emitline_split(char *line, char **words, int max,
			  const char **why_r)
{
	int n = 0;
	char *p = line;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p == '\0')
			return n;
		if (n == max) {
			*why_r = "too many words";
			return -1;
		}
		char *out = p;
		char quote = 0;

		words[n++] = out;
		while (*p != '\0') {
			char ch = *p;

			if (quote == 0 && (ch == ' ' || ch == '\t' ||
					   ch == '\r' || ch == '\n'))
				break;
			p++;
			if (quote == 0 && (ch == '"' || ch == '\'')) {
				quote = ch;
			} else if (quote != 0 && ch == quote) {
				quote = 0;
			} else if (ch == '\\' && quote != '\'' && *p != '\0') {
				*out++ = *p++;
			} else {
				*out++ = ch;
			}
		}
		if (quote != 0) {
			*why_r = "unterminated quote";
			return -1;
		}
		if (*p != '\0')
			p++;
		*out = '\0';
	}
}

int emitline_parse(char *line, struct emitline *el, const char **why_r)
{
	static __thread char msg[300];
	char *words[EMITLINE_MAX_WORDS];
	int n = emitline_split(line, words, EMITLINE_MAX_WORDS, why_r);
	int i = 1;

	if (n < 0)
		return -EINVAL;
	if (n == 0 || words[0][0] == '#')
		return 0;
	if (words[0][0] == '\0') {
		*why_r = "the line must start with an event type, not an "
			 "empty word";
		return -EINVAL;
	}
	if (strchr(words[0], '=') != NULL) {
		snprintf(msg, sizeof(msg), "the line must start with an event "
			 "type, not '%.200s'", words[0]);
		*why_r = msg;
		return -EINVAL;
	}
	el->type = words[0];
	el->subject = NULL;
	el->n_fields = 0;
	if (n > 1 && strchr(words[1], '=') == NULL) {
		el->subject = words[1];
		i = 2;
	}
	for (; i < n; i++) {
		char *eq = strchr(words[i], '=');

		if (eq == NULL || eq == words[i]) {
			snprintf(msg, sizeof(msg), "'%.200s' is not key=value",
				 words[i]);
			*why_r = msg;
			return -EINVAL;
		}
		*eq = '\0';
		el->keys[el->n_fields] = words[i];
		el->values[el->n_fields++] = eq + 1;
	}
	return 1;
}

json_t *emitline_fields(const struct emitline *el)
{
	json_t *fields = json_object();

	/* substrings of a valid UTF-8 text cut and unquoted at ASCII
	 * characters are valid UTF-8 */
	for (size_t i = 0; i < el->n_fields; i++)
		json_object_set_new_nocheck(fields, el->keys[i],
					    json_string_nocheck(el->values[i]));
	return fields;
}
