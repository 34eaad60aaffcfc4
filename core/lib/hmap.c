#include "hmap.h"
#include "util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct hmap_entry {
	struct hmap_entry *next;
	uint64_t hash;
	void *value;
	char key[];
};

struct hmap {
	struct hmap_entry **buckets;
	size_t nbuckets, count;
};

static uint64_t hmap_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

struct hmap *hmap_new(void)
{
	struct hmap *m = xcalloc(1, sizeof(*m));

	m->nbuckets = 16;
	m->buckets = xcalloc(m->nbuckets, sizeof(*m->buckets));
	return m;
}

void hmap_free(struct hmap **mapp, void (*free_value)(void *))
{
	struct hmap *m = *mapp;

	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e = m->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			if (free_value != NULL)
				free_value(e->value);
			free(e);
		}
	}
	free(m->buckets);
	free(m);
	*mapp = NULL;
}

static struct hmap_entry **hmap_find(const struct hmap *m, const char *key,
				     uint64_t h)
{
	struct hmap_entry **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			break;
	}
	return pp;
}

void *hmap_get(const struct hmap *m, const char *key)
{
	struct hmap_entry **pp = hmap_find(m, key, hmap_hash(key));

	return *pp != NULL ? (*pp)->value : NULL;
}

static void hmap_grow(struct hmap *m)
{
	size_t n = m->nbuckets * 2;
	struct hmap_entry **b = xcalloc(n, sizeof(*b));

	for (size_t i = 0; i < m->nbuckets; i++) {
		struct hmap_entry *e = m->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = n;
}

void *hmap_put(struct hmap *m, const char *key, void *value)
{
	uint64_t h = hmap_hash(key);
	struct hmap_entry **pp = hmap_find(m, key, h), *e;
	size_t klen;

	if (*pp != NULL) {
		void *old = (*pp)->value;

		(*pp)->value = value;
		return old;
	}
	klen = strlen(key);
	e = xmalloc(sizeof(*e) + klen + 1);
	memcpy(e->key, key, klen + 1);
	e->hash = h;
	e->value = value;
	e->next = NULL;
	*pp = e;
	if (++m->count > m->nbuckets)
		hmap_grow(m);
	return NULL;
}

void *hmap_del(struct hmap *m, const char *key)
{
	struct hmap_entry **pp = hmap_find(m, key, hmap_hash(key)), *e;
	void *v;

	if (*pp == NULL)
		return NULL;
	e = *pp;
	*pp = e->next;
	v = e->value;
	free(e);
	m->count--;
	return v;
}

size_t hmap_count(const struct hmap *m)
{
	return m->count;
}

void hmap_each(const struct hmap *m,
	       bool (*fn)(const char *key, void *value, void *ctx), void *ctx)
{
	for (size_t i = 0; i < m->nbuckets; i++) {
		for (struct hmap_entry *e = m->buckets[i]; e != NULL;
		     e = e->next) {
			if (!fn(e->key, e->value, ctx))
				return;
		}
	}
}
