/* The catalogue: every event type ophook emits (its subject, fields, where
 * it comes from, an example) and every intent a pre check may ask about.
 * One table (catalogue.c); the man page ophook-events(7), the JSON Schemas
 * under share/ophook/schemas/ and `ophookctl types` are made from it.
 *
 * Events of other types stay allowed: hooks and `ophookctl emit` may send
 * types of their own (custom.thing); the catalogue documents ophook's.
 * Intents are a closed set: `check` refuses one that is not here. */
#ifndef OPHOOK_CATALOGUE_H
#define OPHOOK_CATALOGUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* One field of a payload.  type: "string", "integer", "boolean",
 * "object", "array", "string[]", "object[]", or alternatives joined by
 * '|' ("string|null").  values: the allowed values joined by '|', or
 * NULL. */
struct catalogue_field {
	const char *name;
	const char *type;
	bool required;       /* always there in the events ophook makes */
	const char *values;
	const char *meaning;
};

struct catalogue_type {
	const char *name;      /* "domain.added" */
	const char *subject;   /* the subject's form: "DOMAIN", "user:NAME" */
	const char *subject_re; /* a regular expression the subject matches
				   in events ophook makes, or NULL */
	const char *origin;    /* "files", "panel-db", "plugin caddy", ...*/
	const char *summary;   /* one line */
	const char *detail;    /* a paragraph, or NULL */
	const struct catalogue_field *fields; /* ends with name NULL */
	const char *example;   /* a whole payload, JSON text */
};

struct catalogue_intent {
	const char *name;      /* "domain.add" */
	const char *keys;      /* the keys a check carries, space-separated */
	const char *meaning;
};

/* The fields every event carries (id, type, subject, source, node, time,
 * replay_of), name NULL at the end. */
extern const struct catalogue_field catalogue_envelope[];

/* The sources whose events carry what their sender wrote (ophookctl emit,
 * a hook's ophook.emit, a replay): the required fields of a type are
 * required of the other sources' events.  NULL at the end. */
extern const char *const catalogue_free_sources[];

/* Every event type, sorted by name; *n_r the count. */
const struct catalogue_type *catalogue_types(size_t *n_r);
/* The type named name, or NULL. */
const struct catalogue_type *catalogue_type_find(const char *name);

/* Every intent, sorted by name; *n_r the count. */
const struct catalogue_intent *catalogue_intents(size_t *n_r);
/* The intent named name, or NULL. */
const struct catalogue_intent *catalogue_intent_find(const char *name);
/* The known intent closest to name (at most 2 edits away, or sharing its
 * last part with a typo in the first), or NULL. */
const char *catalogue_intent_suggest(const char *name);

/* The JSON Schema (draft-07) of the payload of type t.  New reference. */
json_t *catalogue_schema(const struct catalogue_type *t);
/* The catalogue entry of t as JSON: name, subject, origin, summary,
 * fields[], example (parsed).  New reference. */
json_t *catalogue_type_json(const struct catalogue_type *t);
/* The intent as JSON: name, keys[], meaning.  New reference. */
json_t *catalogue_intent_json(const struct catalogue_intent *in);

#endif
