/* Unit tests for core/lib/catalogue.c: the table is consistent (names
 * valid, unique and sorted; every example parses and carries the fields
 * its type requires, with their types), the schemas are made, every
 * intent ophookctl guard maps is in the catalogue with its keys, and an
 * intent with a typo gets a suggestion. */
#include "../../core/lib/catalogue.h"
#include "../../core/bus/event.h"
#include "../../ctl/guard.h"

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* Does v have the type spec ("string|null", "string[]")? */
static bool value_has_type(const json_t *v, const char *spec)
{
	char buf[64];
	char *save = NULL;

	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *t = strtok_r(buf, "|", &save); t != NULL;
	     t = strtok_r(NULL, "|", &save)) {
		if (strcmp(t, "string") == 0 && json_is_string(v))
			return true;
		if (strcmp(t, "integer") == 0 && json_is_integer(v))
			return true;
		if (strcmp(t, "number") == 0 && json_is_number(v))
			return true;
		if (strcmp(t, "boolean") == 0 && json_is_boolean(v))
			return true;
		if (strcmp(t, "object") == 0 && json_is_object(v))
			return true;
		if (strcmp(t, "null") == 0 && json_is_null(v))
			return true;
		if (strcmp(t, "array") == 0 && json_is_array(v))
			return true;
		if ((strcmp(t, "string[]") == 0 ||
		     strcmp(t, "object[]") == 0) && json_is_array(v)) {
			size_t i;
			json_t *e;
			bool str = t[0] == 's';

			json_array_foreach(v, i, e)
				if (str ? !json_is_string(e) : !json_is_object(e))
					return false;
			return true;
		}
	}
	return false;
}

static void check_fields(const char *type, const json_t *ex,
			 const struct catalogue_field *f)
{
	for (; f->name != NULL; f++) {
		json_t *v = json_object_get(ex, f->name);

		if (v == NULL) {
			if (f->required)
				fail_msg("%s: example lacks required field %s",
					 type, f->name);
			continue;
		}
		if (!value_has_type(v, f->type))
			fail_msg("%s: example's %s is not %s", type, f->name,
				 f->type);
		if (f->values != NULL && json_is_string(v)) {
			char buf[128];
			bool found = false;
			char *save = NULL;

			snprintf(buf, sizeof(buf), "%s", f->values);
			for (char *w = strtok_r(buf, "|", &save); w != NULL;
			     w = strtok_r(NULL, "|", &save))
				found |= strcmp(w, json_string_value(v)) == 0;
			if (!found)
				fail_msg("%s: example's %s is not one of %s",
					 type, f->name, f->values);
		}
		assert_non_null(f->meaning);
		assert_true(f->meaning[0] != '\0');
	}
}

static void test_types_table(void **state)
{
	size_t n;
	const struct catalogue_type *t = catalogue_types(&n);
	const char *why;

	(void)state;
	assert_true(n >= 30);
	for (size_t i = 0; i < n; i++) {
		json_error_t jerr;
		json_t *ex;

		if (event_type_valid(t[i].name, &why) < 0)
			fail_msg("%s: %s", t[i].name, why);
		if (i > 0 && strcmp(t[i - 1].name, t[i].name) >= 0)
			fail_msg("%s after %s: not sorted or not unique",
				 t[i].name, t[i - 1].name);
		assert_ptr_equal(catalogue_type_find(t[i].name), &t[i]);
		assert_non_null(t[i].summary);
		assert_non_null(t[i].subject);
		assert_non_null(t[i].origin);
		/* field names unique within the type and the envelope */
		for (const struct catalogue_field *f = t[i].fields;
		     f->name != NULL; f++) {
			for (const struct catalogue_field *g = f + 1;
			     g->name != NULL; g++)
				if (strcmp(f->name, g->name) == 0)
					fail_msg("%s: field %s twice",
						 t[i].name, f->name);
			for (const struct catalogue_field *g =
				     catalogue_envelope;
			     g->name != NULL; g++)
				if (strcmp(f->name, g->name) == 0)
					fail_msg("%s: field %s is the "
						 "envelope's", t[i].name,
						 f->name);
		}
		ex = json_loads(t[i].example, 0, &jerr);
		if (ex == NULL)
			fail_msg("%s: example: %s", t[i].name, jerr.text);
		assert_string_equal(
			json_string_value(json_object_get(ex, "type")),
			t[i].name);
		check_fields(t[i].name, ex, catalogue_envelope);
		check_fields(t[i].name, ex, t[i].fields);
		json_decref(ex);
	}
	assert_null(catalogue_type_find("custom.thing"));
	assert_null(catalogue_type_find(NULL));
}

static void test_schema(void **state)
{
	const struct catalogue_type *t = catalogue_type_find("domain.updated");
	json_t *s, *req, *j;

	(void)state;
	assert_non_null(t);
	s = catalogue_schema(t);
	assert_string_equal(json_string_value(json_object_get(s, "title")),
			    "domain.updated");
	assert_true(json_is_true(json_object_get(s, "additionalProperties")));
	req = json_object_get(json_object_get(s, "else"), "required");
	assert_int_equal(json_array_size(req), 2); /* domain, path */
	assert_string_equal(json_string_value(json_object_get(
		json_object_get(json_object_get(s, "properties"), "type"),
		"const")), "domain.updated");
	json_decref(s);
	j = catalogue_type_json(catalogue_type_find("user.suspended"));
	assert_true(json_is_object(json_object_get(j, "example")));
	assert_true(json_array_size(json_object_get(j, "fields")) >= 3);
	json_decref(j);
}

static void test_intents(void **state)
{
	size_t n, ng;
	const struct catalogue_intent *in = catalogue_intents(&n);
	const struct guard_cmd *g = guard_table_get(&ng);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && strcmp(in[i - 1].name, in[i].name) >= 0)
			fail_msg("intent %s after %s: not sorted or not unique",
				 in[i].name, in[i - 1].name);
		assert_ptr_equal(catalogue_intent_find(in[i].name), &in[i]);
	}
	/* every intent the guard asks is known, with every key it sends */
	for (size_t i = 0; i < ng; i++) {
		const struct catalogue_intent *c;

		if (g[i].intent == NULL)
			continue;
		c = catalogue_intent_find(g[i].intent);
		if (c == NULL)
			fail_msg("guard: %s -> %s: not in the catalogue",
				 g[i].cmd, g[i].intent);
		for (int k = 0; k < 5 && g[i].keys[k] != NULL; k++) {
			char pad[80];
			char keys[200];

			if (strcmp(g[i].keys[k], "-") == 0)
				continue;
			snprintf(pad, sizeof(pad), " %s ", g[i].keys[k]);
			snprintf(keys, sizeof(keys), " %s ", c->keys);
			if (strstr(keys, pad) == NULL)
				fail_msg("guard: %s sends %s, the catalogue's "
					 "%s lacks it", g[i].cmd, g[i].keys[k],
					 c->name);
		}
	}
	assert_null(catalogue_intent_find("domian.add"));
	assert_string_equal(catalogue_intent_suggest("domian.add"),
			    "domain.add");
	assert_string_equal(catalogue_intent_suggest("user.suspnd"),
			    "user.suspend");
	assert_string_equal(catalogue_intent_suggest("domain.ad"),
			    "domain.add");
	assert_null(catalogue_intent_suggest("totally.different.thing"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types_table),
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_intents),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
