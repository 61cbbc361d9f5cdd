/* hashmap.c — the map of hashmap.h. */
#include "hashmap.h"

#include <stdlib.h>
#include <string.h>

static size_t hash(struct hk_key k, size_t cap)
{
    uint64_t h = (uint64_t)k.a * 0x9E3779B97F4A7C15ull;
    h ^= (uint64_t)k.b * 0xC2B2AE3D27D4EB4Full + (h >> 29);
    h ^= (uint64_t)k.c * 0x165667B19E3779F9ull + (h >> 31);
    h ^= (uint64_t)k.d * 0x27D4EB2F165667C5ull + (h >> 27);
    h ^= h >> 33;
    return (size_t)h & (cap - 1);
}

static int same(struct hk_key x, struct hk_key y)
{
    return x.a == y.a && x.b == y.b && x.c == y.c && x.d == y.d;
}

void *hk_map_get(const struct hk_map *m, struct hk_key k)
{
    if (!m->cap)
        return NULL;
    for (size_t i = hash(k, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slot[i].value)
            return NULL;
        if (same(m->slot[i].key, k))
            return m->slot[i].value;
    }
}

static void grow(struct hk_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct hk_map_slot *old = m->slot;
    size_t oldcap = m->cap;
    m->slot = calloc(cap, sizeof *m->slot);
    if (!m->slot)
        abort();
    m->cap = cap;
    m->n = 0;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].value)
            hk_map_put(m, old[i].key, old[i].value);
    free(old);
}

void hk_map_put(struct hk_map *m, struct hk_key k, void *value)
{
    if ((m->n + 1) * 4 >= m->cap * 3)
        grow(m);
    size_t i = hash(k, m->cap);
    while (m->slot[i].value && !same(m->slot[i].key, k))
        i = (i + 1) & (m->cap - 1);
    if (!m->slot[i].value)
        m->n++;
    m->slot[i].key = k;
    m->slot[i].value = value;
}

void *hk_map_del(struct hk_map *m, struct hk_key k)
{
    if (!m->cap)
        return NULL;
    size_t i = hash(k, m->cap);
    while (m->slot[i].value && !same(m->slot[i].key, k))
        i = (i + 1) & (m->cap - 1);
    void *v = m->slot[i].value;
    if (!v)
        return NULL;
    /* Backward shift: move later entries of the probe run into the hole, so lookups never need tombstones. */
    size_t hole = i;
    for (size_t j = (i + 1) & (m->cap - 1); m->slot[j].value; j = (j + 1) & (m->cap - 1)) {
        size_t home = hash(m->slot[j].key, m->cap);
        if (((j - home) & (m->cap - 1)) >= ((j - hole) & (m->cap - 1))) {
            m->slot[hole] = m->slot[j];
            hole = j;
        }
    }
    m->slot[hole].value = NULL;
    m->n--;
    return v;
}

void hk_map_free(struct hk_map *m)
{
    free(m->slot);
    memset(m, 0, sizeof *m);
}
