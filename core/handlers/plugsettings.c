#define _GNU_SOURCE
#include "plugsettings.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct plugsettings_val {
	const struct ophook_setting_decl *d;
	bool set;    /* from the config, not the default */
	bool have;   /* set or defaulted */
	char *str;   /* STRING, PATH, ENUM */
	int64_t num; /* INT, MS, BOOL */
	char **list; /* LIST, ARGV, MAP (name, value, ...), NULL-terminated */
};

struct plugsettings {
	size_t n;
	struct plugsettings_val vals[];
};

static const char *const plugsettings_types[] = {
	[OPHOOK_SETTING_STRING] = "a string",
	[OPHOOK_SETTING_PATH] = "an absolute path",
	[OPHOOK_SETTING_INT] = "an integer",
	[OPHOOK_SETTING_MS] = "a duration (ms, or with a unit: ms, s, m, h)",
	[OPHOOK_SETTING_BOOL] = "a boolean (true or false)",
	[OPHOOK_SETTING_ENUM] = "one of",
	[OPHOOK_SETTING_LIST] = "a list of strings",
	[OPHOOK_SETTING_ARGV] = "a command (a list of strings, or words)",
	[OPHOOK_SETTING_MAP] = "a mapping of names to values",
};

static void plugsettings_strv_free(char ***v)
{
	for (size_t i = 0; *v != NULL && (*v)[i] != NULL; i++)
		free((*v)[i]);
	free(*v);
	*v = NULL;
}

static int plugsettings_strv_add(char ***v, size_t *n, const char *s,
				 size_t len)
{
	char **nv = realloc(*v, (*n + 2) * sizeof(**v));

	if (nv == NULL)
		return -ENOMEM;
	*v = nv;
	nv[*n] = strndup(s, len);
	if (nv[*n] == NULL)
		return -ENOMEM;
	nv[++*n] = NULL;
	return 0;
}

/* "a, b, c" of an enum's values into buf. */
static void plugsettings_values(const struct ophook_setting_decl *d,
				char *buf, size_t size)
{
	buf[0] = '\0';
	for (size_t i = 0; d->values != NULL && d->values[i] != NULL; i++)
		snprintf(buf + strlen(buf), size - strlen(buf), "%s%s",
			 i ? ", " : "", d->values[i]);
}

/* A scalar as text (the config gives scalars as strings; a default in
 * JSON may hold numbers or booleans). */
static const char *plugsettings_scalar(const json_t *v, char *buf,
				       size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	return NULL;
}

static int plugsettings_number(const char *s, bool ms, int64_t *out_r)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || end == s ||
	    ((*s < '0' || *s > '9') && *s != '-'))
		return -EINVAL;
	if (ms && *end != '\0') {
		static const struct {
			const char *unit;
			long long mul;
		} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
			      { "h", 3600000 } };
		size_t i;

		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(end, units[i].unit) == 0)
				break;
		if (i == sizeof(units) / sizeof(units[0]) ||
		    __builtin_mul_overflow(n, units[i].mul, &n))
			return -EINVAL;
		end += strlen(end);
	}
	if (*end != '\0')
		return -EINVAL;
	*out_r = n;
	return 0;
}

/* Words of a command line split on blanks (no quoting, no shell). */
static int plugsettings_words(const char *s, char ***list_r, size_t *n)
{
	while (*s != '\0') {
		size_t len = strcspn(s, " \t\r\n");

		if (len > 0 && plugsettings_strv_add(list_r, n, s, len) < 0)
			return -ENOMEM;
		s += len;
		s += strspn(s, " \t\r\n");
	}
	return 0;
}

/* Convert v for d into val.  0, -ENOMEM, or -EINVAL with *why_r
 * (malloc'd). */
static int plugsettings_parse(const struct ophook_setting_decl *d,
			      const json_t *v, struct plugsettings_val *val,
			      char **why_r)
{
	char buf[32], vals[256];
	const char *s = plugsettings_scalar(v, buf, sizeof(buf));
	json_t *parsed = NULL;
	size_t n = 0;
	int ret = 0;

	switch (d->type) {
	case OPHOOK_SETTING_STRING:
	case OPHOOK_SETTING_PATH:
	case OPHOOK_SETTING_ENUM:
		if (s == NULL)
			goto bad_type;
		if (d->type == OPHOOK_SETTING_PATH && s[0] != '/') {
			ret = asprintf(why_r, "'%.200s' is not an absolute "
				       "path", s);
			return ret < 0 ? -ENOMEM : -EINVAL;
		}
		if (d->type == OPHOOK_SETTING_ENUM) {
			size_t i;

			for (i = 0; d->values != NULL && d->values[i] != NULL;
			     i++)
				if (strcmp(d->values[i], s) == 0)
					break;
			if (d->values == NULL || d->values[i] == NULL) {
				plugsettings_values(d, vals, sizeof(vals));
				ret = asprintf(why_r, "'%.200s' is not one of: "
					       "%s", s, vals);
				return ret < 0 ? -ENOMEM : -EINVAL;
			}
		}
		val->str = strdup(s);
		return val->str == NULL ? -ENOMEM : 0;
	case OPHOOK_SETTING_INT:
	case OPHOOK_SETTING_MS:
		if (s == NULL)
			goto bad_type;
		if (plugsettings_number(s, d->type == OPHOOK_SETTING_MS,
					&val->num) < 0) {
			ret = asprintf(why_r, "'%.200s' is not %s", s,
				       plugsettings_types[d->type]);
			return ret < 0 ? -ENOMEM : -EINVAL;
		}
		if ((d->min != 0 || d->max != 0) &&
		    (val->num < d->min || val->num > d->max)) {
			ret = asprintf(why_r, "'%.200s' is out of range "
				       "%lld..%lld", s, (long long)d->min,
				       (long long)d->max);
			return ret < 0 ? -ENOMEM : -EINVAL;
		}
		return 0;
	case OPHOOK_SETTING_BOOL:
		if (s == NULL)
			goto bad_type;
		if (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 ||
		    strcmp(s, "on") == 0 || strcmp(s, "1") == 0)
			val->num = 1;
		else if (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 ||
			 strcmp(s, "off") == 0 || strcmp(s, "0") == 0)
			val->num = 0;
		else
			goto bad_value;
		return 0;
	case OPHOOK_SETTING_LIST:
	case OPHOOK_SETTING_ARGV:
		/* a string "[...]" is a JSON list (the old text form) */
		if (s != NULL && s[strspn(s, " \t\r\n")] == '[') {
			parsed = json_loads(s, 0, NULL);
			if (!json_is_array(parsed))
				goto bad_value;
			v = parsed;
			s = NULL;
		}
		if (s != NULL && d->type == OPHOOK_SETTING_ARGV)
			ret = plugsettings_words(s, &val->list, &n);
		else if (s != NULL)
			ret = plugsettings_strv_add(&val->list, &n, s,
						    strlen(s));
		else if (json_is_array(v))
			for (size_t i = 0; i < json_array_size(v) && ret == 0;
			     i++) {
				const char *it = plugsettings_scalar(
					json_array_get(v, i), buf, sizeof(buf));

				if (it == NULL) {
					ret = asprintf(why_r, "item %zu is not "
						       "a string", i + 1);
					ret = ret < 0 ? -ENOMEM : -EINVAL;
					break;
				}
				ret = plugsettings_strv_add(&val->list, &n, it,
							    strlen(it));
			}
		else
			ret = -EINVAL;
		if (ret == 0 && d->type == OPHOOK_SETTING_ARGV && n == 0)
			ret = -EINVAL;
		if (ret == 0 && val->list == NULL) /* an empty list */
			val->list = calloc(1, sizeof(*val->list));
		json_decref(parsed);
		if (ret == 0 && val->list == NULL)
			ret = -ENOMEM;
		if (ret == -EINVAL && *why_r == NULL)
			goto bad_type;
		return ret;
	case OPHOOK_SETTING_MAP: {
		const char *k;
		json_t *it;

		if (s != NULL && s[strspn(s, " \t\r\n")] == '{') {
			parsed = json_loads(s, 0, NULL);
			v = parsed;
		}
		if (!json_is_object(v)) {
			json_decref(parsed);
			goto bad_type;
		}
		json_object_foreach((json_t *)v, k, it)
		{
			const char *is = plugsettings_scalar(it, buf,
							     sizeof(buf));

			if (is == NULL) {
				ret = asprintf(why_r, "%.100s: not a scalar",
					       k);
				ret = ret < 0 ? -ENOMEM : -EINVAL;
				break;
			}
			if (plugsettings_strv_add(&val->list, &n, k,
						  strlen(k)) < 0 ||
			    plugsettings_strv_add(&val->list, &n, is,
						  strlen(is)) < 0) {
				ret = -ENOMEM;
				break;
			}
		}
		if (ret == 0 && val->list == NULL)
			val->list = calloc(1, sizeof(*val->list));
		json_decref(parsed);
		if (ret == 0 && val->list == NULL)
			ret = -ENOMEM;
		return ret;
	}
	}
	ret = asprintf(why_r, "unknown setting type %d", (int)d->type);
	return ret < 0 ? -ENOMEM : -EINVAL;
bad_value:
	if (s != NULL) {
		ret = asprintf(why_r, "'%.200s' is not %s", s,
			       plugsettings_types[d->type]);
		return ret < 0 ? -ENOMEM : -EINVAL;
	}
bad_type:
	ret = asprintf(why_r, "want %s", plugsettings_types[d->type]);
	return ret < 0 ? -ENOMEM : -EINVAL;
}

/* *error_r = "FILE:LINE:COL: plugins.NAME.settings.KEY: why" with the
 * position of key's value (value true) or key, else of the entry. */
static int plugsettings_fail(const struct plugsettings_src *src,
			     const char *key, bool value, char **error_r,
			     const char *fmt, ...)
{
	const json_t *p = src->pos != NULL ? json_object_get(src->pos, key)
					   : NULL;
	int line = src->line, col = src->column, r;
	char *why = NULL, *where = NULL;
	va_list ap;

	if (json_array_size(p) == 4) {
		line = (int)json_integer_value(json_array_get(p, value ? 2 : 0));
		col = (int)json_integer_value(json_array_get(p, value ? 3 : 1));
	}
	va_start(ap, fmt);
	r = vasprintf(&why, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -ENOMEM;
	if (src->file != NULL && line > 0)
		r = asprintf(&where, "%s:%d:%d: ", src->file, line, col);
	else if (src->file != NULL)
		r = asprintf(&where, "%s: ", src->file);
	else
		r = asprintf(&where, "%s", "");
	if (r >= 0)
		r = asprintf(error_r, "%splugins.%s.settings%s%s: %s", where,
			     src->plugin != NULL ? src->plugin : "?",
			     key != NULL ? "." : "", key != NULL ? key : "",
			     why);
	free(where);
	free(why);
	return r < 0 ? -ENOMEM : -EINVAL;
}

static const struct ophook_setting_decl *
plugsettings_decl(const struct ophook_setting_decl *decls, size_t n,
		  const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(decls[i].name, key) == 0)
			return &decls[i];
	return NULL;
}

/* The config's trees a declared default may name as ${NAME}, and what
 * they are when the host gives none (the config's own defaults). */
static const char *const plugsettings_var_def[] = {
	"root", "/etc/openpanel", "state_dir", "/var/lib/ophookd",
	"paths.bind", "/etc/bind", "paths.mail", "/usr/local/mail/openmail",
	"paths.log", "/var/log", "paths.csf", "/etc/csf",
	"paths.bind_cache", "/var/cache/bind", NULL
};

static const char *plugsettings_var(const struct plugsettings_src *src,
				    const char *name, size_t len)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)src->vars, key, v)
	{
		if (strlen(key) == len && strncmp(key, name, len) == 0 &&
		    json_is_string(v))
			return json_string_value(v);
	}
	for (size_t i = 0; plugsettings_var_def[i] != NULL; i += 2)
		if (strlen(plugsettings_var_def[i]) == len &&
		    strncmp(plugsettings_var_def[i], name, len) == 0)
			return plugsettings_var_def[i + 1];
	return NULL;
}

/* d->def with every ${NAME} replaced (JSON-escaped when json); malloc'd,
 * NULL on an unknown name or no memory. */
static char *plugsettings_expand(const struct plugsettings_src *src,
				 const char *def, bool json)
{
	size_t cap = strlen(def) + 1, len = 0;
	char *out = malloc(cap);

	for (const char *p = def; out != NULL && *p != '\0';) {
		const char *val = NULL, *end;
		char one[2] = { *p, '\0' };
		size_t vlen;

		if (p[0] == '$' && p[1] == '{' &&
		    (end = strchr(p + 2, '}')) != NULL) {
			val = plugsettings_var(src, p + 2, (size_t)(end - p - 2));
			if (val == NULL) {
				free(out);
				return NULL;
			}
			p = end + 1;
		} else {
			val = one;
			p++;
		}
		vlen = strlen(val);
		if (len + 2 * vlen + 1 > cap) {
			char *n = realloc(out, cap = 2 * (len + 2 * vlen + 1));

			if (n == NULL) {
				free(out);
				return NULL;
			}
			out = n;
		}
		for (size_t i = 0; i < vlen; i++) {
			if (json && val != one &&
			    (val[i] == '"' || val[i] == '\\'))
				out[len++] = '\\';
			out[len++] = val[i];
		}
	}
	if (out != NULL)
		out[len] = '\0';
	return out;
}

/* The default text of d as the JSON value the config would give, its
 * ${NAME} placeholders filled in; NULL when it is not valid. */
static json_t *plugsettings_default(const struct plugsettings_src *src,
				    const struct ophook_setting_decl *d)
{
	const char *s = d->def + strspn(d->def, " \t\r\n");
	bool json = (*s == '[' && d->type != OPHOOK_SETTING_STRING) ||
		    (*s == '{' && d->type == OPHOOK_SETTING_MAP);
	char *text = plugsettings_expand(src, json ? s : d->def, json);
	json_t *v;

	if (text == NULL)
		return NULL;
	v = json ? json_loads(text, 0, NULL) : json_string(text);
	free(text);
	return v;
}

int plugsettings_new(const struct plugsettings_src *src,
		     const json_t *settings,
		     const struct ophook_setting_decl *decls, size_t n,
		     struct plugsettings **ps_r, char **error_r)
{
	struct plugsettings *ps;
	const char *key;
	json_t *v;
	int ret = 0;

	*ps_r = NULL;
	*error_r = NULL;
	/* the declaration first: a plugin bug is named as such */
	for (size_t i = 0; i < n; i++) {
		const struct ophook_setting_decl *d = &decls[i];

		if (d->name == NULL || d->name[0] == '\0' ||
		    d->type < OPHOOK_SETTING_STRING ||
		    d->type > OPHOOK_SETTING_MAP ||
		    (d->type == OPHOOK_SETTING_ENUM && d->values == NULL) ||
		    plugsettings_decl(decls, i, d->name) != NULL)
			return plugsettings_fail(src, d->name, false, error_r,
						 "the plugin declares this "
						 "setting badly (entry %zu)",
						 i + 1);
	}
	ps = calloc(1, sizeof(*ps) + n * sizeof(ps->vals[0]));
	if (ps == NULL)
		return -ENOMEM;
	ps->n = n;
	json_object_foreach((json_t *)settings, key, v)
	{
		if (plugsettings_decl(decls, n, key) == NULL) {
			char known[512] = "";

			for (size_t i = 0; i < n; i++)
				snprintf(known + strlen(known),
					 sizeof(known) - strlen(known), "%s%s",
					 i ? ", " : "", decls[i].name);
			ret = plugsettings_fail(src, key, false, error_r,
						"unknown setting (known: %s)",
						n > 0 ? known : "none");
			goto out;
		}
	}
	for (size_t i = 0; i < n && ret == 0; i++) {
		const struct ophook_setting_decl *d = &decls[i];
		struct plugsettings_val *val = &ps->vals[i];
		char *why = NULL;
		char vals[256];

		val->d = d;
		v = json_object_get(settings, d->name);
		if (json_is_string(v) && json_string_length(v) == 0 &&
		    d->type != OPHOOK_SETTING_STRING)
			v = NULL; /* `key:` with nothing: unset */
		if (v != NULL && !json_is_null(v)) {
			ret = plugsettings_parse(d, v, val, &why);
			val->set = val->have = ret == 0;
			if (ret == -EINVAL)
				ret = plugsettings_fail(src, d->name, true,
							error_r, "%s", why);
		} else if (d->def != NULL) {
			json_t *def = plugsettings_default(src, d);

			if (def == NULL)
				why = strdup("an unknown ${NAME} in it, or no "
					     "memory");
			ret = def == NULL ? -EINVAL
					  : plugsettings_parse(d, def, val, &why);
			json_decref(def);
			val->have = ret == 0;
			if (ret == -EINVAL)
				ret = plugsettings_fail(src, d->name, false,
							error_r,
							"the plugin's default "
							"is not valid: %s",
							why != NULL ? why : "");
		} else if ((d->flags & OPHOOK_SETTING_REQUIRED) != 0) {
			/* at the plugin's entry: the key is not there */
			struct plugsettings_src at = *src;

			at.pos = NULL;
			plugsettings_values(d, vals, sizeof(vals));
			ret = plugsettings_fail(
				&at, d->name, false, error_r,
				"required%s%s%s", vals[0] ? " (one of: " : "",
				vals, vals[0] ? ")" : "");
		}
		free(why);
	}
out:
	if (ret < 0) {
		plugsettings_free(&ps);
		return ret;
	}
	*ps_r = ps;
	return 0;
}

static const struct plugsettings_val *
plugsettings_get(const struct plugsettings *ps, const char *key)
{
	for (size_t i = 0; ps != NULL && key != NULL && i < ps->n; i++)
		if (strcmp(ps->vals[i].d->name, key) == 0)
			return ps->vals[i].have ? &ps->vals[i] : NULL;
	return NULL;
}

const char *plugsettings_str(const struct plugsettings *ps, const char *key)
{
	const struct plugsettings_val *v = plugsettings_get(ps, key);

	return v != NULL ? v->str : NULL;
}

int64_t plugsettings_int(const struct plugsettings *ps, const char *key)
{
	const struct plugsettings_val *v = plugsettings_get(ps, key);

	return v != NULL ? v->num : 0;
}

bool plugsettings_bool(const struct plugsettings *ps, const char *key)
{
	const struct plugsettings_val *v = plugsettings_get(ps, key);

	return v != NULL && v->num != 0;
}

const char *const *plugsettings_list(const struct plugsettings *ps,
				     const char *key)
{
	const struct plugsettings_val *v = plugsettings_get(ps, key);

	return v != NULL ? (const char *const *)v->list : NULL;
}

bool plugsettings_is_set(const struct plugsettings *ps, const char *key)
{
	const struct plugsettings_val *v = plugsettings_get(ps, key);

	return v != NULL && v->set;
}

void plugsettings_free(struct plugsettings **psp)
{
	struct plugsettings *ps = *psp;

	if (ps == NULL)
		return;
	for (size_t i = 0; i < ps->n; i++) {
		free(ps->vals[i].str);
		plugsettings_strv_free(&ps->vals[i].list);
	}
	free(ps);
	*psp = NULL;
}
