/* ophookctl types: the catalogue (core/lib/catalogue.c), no daemon
 * needed. */
#include "types.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/lib/catalogue.h"

static void types_usage(FILE *f)
{
	fprintf(f, "usage: ophookctl types [--json] [TYPE|INTENT]\n"
		"       ophookctl types --names | --intents\n");
}

static int types_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	json_decref(j);
	if (s == NULL)
		return 1;
	printf("%s\n", s);
	free(s);
	return 0;
}

static void types_list(void)
{
	size_t n, ni;
	const struct catalogue_type *t = catalogue_types(&n);
	const struct catalogue_intent *in = catalogue_intents(&ni);

	printf("event types (fields and an example: ophookctl types TYPE; "
	       "ophook-events(7)):\n");
	for (size_t i = 0; i < n; i++)
		printf("  %-24s %s\n", t[i].name, t[i].summary);
	printf("\nintents of pre checks (ophookctl check INTENT "
	       "key=value...):\n");
	for (size_t i = 0; i < ni; i++)
		printf("  %-24s %s\n", in[i].name, in[i].meaning);
	printf("\nHooks and `ophookctl emit` may send event types of their "
	       "own; intents are only these.\n");
}

static void types_show(const struct catalogue_type *t)
{
	json_t *ex;
	char *s;

	printf("%s: %s\n", t->name, t->summary);
	printf("subject: %s\nfrom: %s\n", t->subject, t->origin);
	if (t->detail != NULL)
		printf("%s\n", t->detail);
	printf("fields (besides id, type, subject, source, node, time):\n");
	for (const struct catalogue_field *f = t->fields; f->name != NULL;
	     f++) {
		printf("  %-16s %-14s %-8s %s", f->name, f->type,
		       f->required ? "required" : "optional", f->meaning);
		if (f->values != NULL)
			printf(" (%s)", f->values);
		printf("\n");
	}
	ex = json_loads(t->example, 0, NULL);
	s = ex != NULL ? json_dumps(ex, JSON_INDENT(2) | JSON_PRESERVE_ORDER)
		       : NULL;
	printf("example:\n%s\n", s != NULL ? s : t->example);
	free(s);
	json_decref(ex);
}

int types_main(int argc, char **argv, bool json)
{
	const char *name = NULL;
	bool names = false, intents = false;
	size_t n;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 || strcmp(argv[i], "-j") == 0)
			json = true;
		else if (strcmp(argv[i], "--names") == 0)
			names = true;
		else if (strcmp(argv[i], "--intents") == 0)
			intents = true;
		else if (strcmp(argv[i], "--help") == 0 ||
			 strcmp(argv[i], "-h") == 0) {
			types_usage(stdout);
			return 0;
		} else if (argv[i][0] != '-' && name == NULL)
			name = argv[i];
		else {
			types_usage(stderr);
			return 2;
		}
	}
	if (names || intents) {
		if (names) {
			const struct catalogue_type *t = catalogue_types(&n);

			for (size_t i = 0; i < n; i++)
				printf("%s\n", t[i].name);
		}
		if (intents) {
			const struct catalogue_intent *in =
				catalogue_intents(&n);

			for (size_t i = 0; i < n; i++)
				printf("%s\n", in[i].name);
		}
		return 0;
	}
	if (name == NULL) {
		json_t *all, *ts, *is;
		const struct catalogue_type *t;
		const struct catalogue_intent *in;

		if (!json) {
			types_list();
			return 0;
		}
		ts = json_array();
		is = json_array();
		t = catalogue_types(&n);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(ts, catalogue_type_json(&t[i]));
		in = catalogue_intents(&n);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(is,
					      catalogue_intent_json(&in[i]));
		all = json_pack("{so so}", "types", ts, "intents", is);
		return types_print_json(all);
	}
	{
		const struct catalogue_type *t = catalogue_type_find(name);
		const struct catalogue_intent *in = catalogue_intent_find(name);
		const char *near;

		if (t != NULL) {
			if (json)
				return types_print_json(catalogue_type_json(t));
			types_show(t);
			return 0;
		}
		if (in != NULL) {
			if (json)
				return types_print_json(
					catalogue_intent_json(in));
			printf("%s: intent of a pre check: %s\nkeys: %s\n",
			       in->name, in->meaning,
			       in->keys[0] != '\0' ? in->keys : "(none)");
			printf("(a check from ophookctl guard also carries "
			       "command=OPENCLI-COMMAND)\n");
			return 0;
		}
		near = catalogue_intent_suggest(name);
		fprintf(stderr, "ophookctl types: '%s' is no event type or "
			"intent of ophook's%s%s%s\n", name,
			near != NULL ? " (did you mean " : "",
			near != NULL ? near : "", near != NULL ? "?)" : "");
		return 2;
	}
}
