/* hashmap.h — a map from a key of up to four integers to a pointer (open addressing, backward-shift delete). */
#ifndef HK_HASHMAP_H
#define HK_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

struct hk_key {
    int64_t a, b, c, d;
};

struct hk_map_slot {
    struct hk_key key;
    void *value;                  /* NULL: the slot is free (values are never NULL) */
};

struct hk_map {
    struct hk_map_slot *slot;
    size_t cap, n;
};

static inline struct hk_key hk_key2(int64_t a, int64_t b) { return (struct hk_key){a, b, 0, 0}; }

void *hk_map_get(const struct hk_map *m, struct hk_key k);
void hk_map_put(struct hk_map *m, struct hk_key k, void *value);
void *hk_map_del(struct hk_map *m, struct hk_key k);  /* the value removed, or NULL */
void hk_map_free(struct hk_map *m);

/* for (size_t i = 0; i < m->cap; i++) if (m->slot[i].value) ...: every entry, in no particular order. */

#endif
