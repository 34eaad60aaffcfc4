/* gen-catalogue: writes what is made from the catalogue (core/lib/
 * catalogue.c) at build time.
 *   gen-catalogue man            the man page ophook-events(7), on stdout
 *   gen-catalogue schemas DIR    DIR/TYPE.json, one JSON Schema a type */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "catalogue.h"

/* Text for roff: backslashes doubled as \e, a leading . or ' guarded. */
static void roff(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
		if (*s == '\n' && (s[1] == '.' || s[1] == '\''))
			fputs("\\&", f);
	}
}

static void man_fields(FILE *f, const struct catalogue_field *fl)
{
	for (; fl->name != NULL; fl++) {
		fputs(".TP\n.B ", f);
		roff(f, fl->name);
		fputs("\n(", f);
		roff(f, fl->type);
		fputs(fl->required ? ", required" : ", optional", f);
		if (fl->values != NULL) {
			fputs(": ", f);
			roff(f, fl->values);
		}
		fputs(")\n", f);
		roff(f, fl->meaning);
		fputs("\n", f);
	}
}

static int gen_man(FILE *f)
{
	size_t n, ni;
	const struct catalogue_type *t = catalogue_types(&n);
	const struct catalogue_intent *in = catalogue_intents(&ni);

	fputs(".\\\" Made by doc/gen-catalogue from core/lib/catalogue.c: "
	      "edit that, not this.\n"
	      ".TH OPHOOK-EVENTS 7 \"\" \"ophook\" \"ophook\"\n"
	      ".SH NAME\nophook-events \\- the event types ophook emits, "
	      "their fields, and the intents of pre checks\n"
	      ".SH DESCRIPTION\n"
	      "Every event is one JSON object, journaled before it is "
	      "delivered to plugins and hooks.\n"
	      "This page lists every event type ophook itself makes "
	      "(from the OpenPanel files, the panel database, its plugins "
	      "and the engine), with its subject, its fields and an "
	      "example.\n"
	      "The same catalogue gives \\fBophookctl types\\fR and one JSON "
	      "Schema a type in \\fI/usr/share/ophook/schemas/TYPE.json\\fR "
	      "(draft-07).\n"
	      ".PP\n"
	      "A field marked required is in every event of that type "
	      "that ophook makes.\n"
	      "Events sent with \\fBophookctl emit\\fR, a Lua hook's "
	      "\\fBophook.emit\\fR or \\fBophookctl replay\\fR (source "
	      "socket, hook or replay) carry what their sender wrote; the "
	      "schemas check only the types of the fields they have.\n"
	      "Fields may be added to a type in a later version "
	      "(the schemas allow fields they do not name).\n"
	      ".PP\n"
	      "Types not listed here are allowed too: hooks and \\fBophookctl "
	      "emit\\fR may send types of their own (1\\-64 of [a\\-z0\\-9_] in "
	      "dot\\-separated parts).\n"
	      "Intents are a closed list: \\fBophookctl check\\fR refuses an "
	      "intent that is not in \\fBINTENTS\\fR below.\n"
	      ".SH FIELDS OF EVERY EVENT\n", f);
	man_fields(f, catalogue_envelope);
	fputs(".SH EVENT TYPES\n", f);
	for (size_t i = 0; i < n; i++) {
		fputs(".SS ", f);
		roff(f, t[i].name);
		fputs("\n", f);
		roff(f, t[i].summary);
		fputs(".\n", f);
		if (t[i].detail != NULL) {
			fputs("\n", f);
			roff(f, t[i].detail);
			fputs("\n", f);
		}
		fputs(".PP\nSubject: \\fB", f);
		roff(f, t[i].subject);
		fputs("\\fR; from: ", f);
		roff(f, t[i].origin);
		fputs(".\n.RS\n", f);
		man_fields(f, t[i].fields);
		fputs(".RE\n.PP\nExample:\n.PP\n.RS\n.nf\n", f);
		{
			json_t *ex = json_loads(t[i].example, 0, NULL);
			char *s = ex != NULL ? json_dumps(ex, JSON_INDENT(2) |
							      JSON_PRESERVE_ORDER)
					     : NULL;

			if (s == NULL) {
				fprintf(stderr, "gen-catalogue: %s: bad "
					"example\n", t[i].name);
				json_decref(ex);
				return 1;
			}
			roff(f, s);
			fputs("\n", f);
			free(s);
			json_decref(ex);
		}
		fputs(".fi\n.RE\n", f);
	}
	fputs(".SH INTENTS\n"
	      "What \\fBophookctl check INTENT key=value...\\fR may ask "
	      "(the Lua hooks' \\fBophook.pre(INTENT, fn)\\fR answer), "
	      "with the keys a check from \\fBophookctl guard\\fR carries "
	      "(and command=OPENCLI\\-COMMAND).\n", f);
	for (size_t i = 0; i < ni; i++) {
		fputs(".TP\n.B ", f);
		roff(f, in[i].name);
		fputs("\n", f);
		if (in[i].keys[0] != '\0') {
			fputs("keys: ", f);
			roff(f, in[i].keys);
			fputs(". ", f);
		}
		roff(f, in[i].meaning);
		fputs("\n", f);
	}
	fputs(".SH FILES\n.TP\n.I /usr/share/ophook/schemas/TYPE.json\n"
	      "the JSON Schema of each type\n"
	      ".SH SEE ALSO\n.BR ophookctl (8),\n.BR ophookd (8),\n"
	      ".BR ophook\\-lua (7),\n.BR ophook\\-plugin (3)\n", f);
	return ferror(f) ? 1 : 0;
}

static int gen_schemas(const char *dir)
{
	size_t n;
	const struct catalogue_type *t = catalogue_types(&n);

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "gen-catalogue: %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		char *path = NULL;
		json_t *s = catalogue_schema(&t[i]);
		int r;

		if (asprintf(&path, "%s/%s.json", dir, t[i].name) < 0)
			return 1;
		r = json_dump_file(s, path, JSON_INDENT(2) |
					    JSON_PRESERVE_ORDER);
		json_decref(s);
		if (r < 0) {
			fprintf(stderr, "gen-catalogue: cannot write %s\n",
				path);
			free(path);
			return 1;
		}
		free(path);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "man") == 0)
		return gen_man(stdout);
	if (argc == 3 && strcmp(argv[1], "schemas") == 0)
		return gen_schemas(argv[2]);
	fprintf(stderr, "usage: gen-catalogue man | schemas DIR\n");
	return 2;
}
