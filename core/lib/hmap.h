/* A string-keyed hash map (chained, grows by doubling).  Keys are copied;
 * values are the caller's.  Not thread-safe. */
#ifndef OPHOOK_HMAP_H
#define OPHOOK_HMAP_H

#include <stdbool.h>
#include <stddef.h>

struct hmap;

struct hmap *hmap_new(void);
/* Free the map; free_value (may be NULL) is called on every value. */
void hmap_free(struct hmap **map, void (*free_value)(void *));
/* The value for key, or NULL. */
void *hmap_get(const struct hmap *map, const char *key);
/* Set key to value; returns the old value or NULL. */
void *hmap_put(struct hmap *map, const char *key, void *value);
/* Remove key; returns its value or NULL. */
void *hmap_del(struct hmap *map, const char *key);
size_t hmap_count(const struct hmap *map);
/* Call fn on every entry; fn must not change the map. Stops when fn returns
 * false. */
void hmap_each(const struct hmap *map,
	       bool (*fn)(const char *key, void *value, void *ctx), void *ctx);

#endif
