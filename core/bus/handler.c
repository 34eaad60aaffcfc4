/* Handler helpers: see handler.h. */
#include "handler.h"
#include "util.h"

#include <stdlib.h>

static void handler_destroy(struct handler *h)
{
	if (h->ops->free != NULL)
		h->ops->free(h);
	for (size_t i = 0; i < h->n_patterns; i++)
		free(h->patterns[i]);
	free(h->patterns);
	free(h->name);
	free(h);
}

struct handler *handler_new(const struct handler_ops *ops, const char *name)
{
	struct handler *h = xcalloc(1, sizeof(*h));

	h->ops = ops;
	h->name = xstrdup(name);
	return h;
}

void handler_add_pattern(struct handler *h, const char *pattern)
{
	h->patterns = xrealloc(h->patterns,
			       (h->n_patterns + 1) * sizeof(*h->patterns));
	h->patterns[h->n_patterns++] = xstrdup(pattern);
}

bool handler_matches(const struct handler *h, const char *type)
{
	if (h->n_patterns == 0)
		return true;
	for (size_t i = 0; i < h->n_patterns; i++) {
		if (pattern_match(h->patterns[i], type))
			return true;
	}
	return false;
}

void handler_free_unowned(struct handler **hp)
{
	struct handler *h = *hp;

	*hp = NULL;
	if (h != NULL)
		handler_destroy(h);
}

