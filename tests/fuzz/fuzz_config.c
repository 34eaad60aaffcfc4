/* libFuzzer target for the config loader (core/lib/config.c).  Not part of the
 * automake build: see README.md.  Feeds the input to config_parse_buffer()
 * and checks the loader's contract: either a config and no error, or no
 * config and an error "fuzz.yaml:LINE:COL: message" (LINE, COL >= 1) or
 * "fuzz.yaml: message". */
#include "../../core/lib/config.c"

#include <stdio.h>

#define FUZZ_FILE "fuzz.yaml"

static void fuzz_check_error(const char *error)
{
	const char *s = error + strlen(FUZZ_FILE);
	int line = 0, col = 0, n = 0;

	if (strncmp(error, FUZZ_FILE ":", strlen(FUZZ_FILE ":")) != 0)
		abort();
	if (s[1] == ' ')
		return; /* "FILE: message" */
	if (sscanf(s, ":%d:%d: %n", &line, &col, &n) != 2 || n == 0 ||
	    line < 1 || col < 1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	char *error = NULL;
	int r;

	r = config_parse_buffer(FUZZ_FILE, (const char *)data, size, &c,
				&error);
	if (r == 0) {
		if (c == NULL || error != NULL)
			abort();
		for (size_t i = 0; i < c->n_plugins; i++)
			if (c->plugins[i].settings == NULL ||
			    config_plugin_find(c, c->plugins[i].name) == NULL)
				abort();
		config_free(&c);
	} else {
		if (c != NULL || error == NULL)
			abort();
		fuzz_check_error(error);
		free(error);
	}
	return 0;
}
