/* event.c — decoded events (reference counted) and the interned strings (labels, thread names) they point to. */
#include "event.h"

#include <stdlib.h>
#include <string.h>

#include "hashmap.h"

/* Most events are dropped as soon as they are counted: a free list (the core runs on one thread) saves a
 * malloc and a free per event. It holds at most as many as were ever alive at once. */
static struct hk_ev *free_events;

struct hk_ev *hk_ev_new(void)
{
    struct hk_ev *e = free_events;
    if (e) {
        free_events = *(struct hk_ev **)e;
        memset(e, 0, sizeof *e);
    } else if (!(e = calloc(1, sizeof *e))) {
        abort();
    }
    e->refs = 1;
    return e;
}

void hk_ev_unref(struct hk_ev *e)
{
    if (e && --e->refs == 0) {
        *(struct hk_ev **)e = free_events;
        free_events = e;
    }
}

bool hk_val_eq(const struct hk_val *a, const struct hk_val *b)
{
    if (!a || !b)
        return a == b;
    if (a->label || b->label)
        return a->label && b->label && strcmp(a->label, b->label) == 0;
    return hk_num(a) == hk_num(b);
}

bool hk_ev_same(const struct hk_ev *a, const struct hk_ev *b)
{
    if (a->id != b->id)
        return false;
    for (int i = 0; i < hk_events[a->id].nfields; i++)
        if (!hk_val_eq(&a->f[i], &b->f[i]))
            return false;
    return true;
}

/* Strings live as long as the process: labels of a few enumerations and the threads' names. */
static struct hk_strset {
    char **slot;
    size_t cap, n;
} strings;

static uint64_t str_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

const char *hk_intern(const char *s)
{
    if (!s)
        return NULL;
    if (strings.n * 2 >= strings.cap) {
        size_t cap = strings.cap ? strings.cap * 2 : 64;
        char **slot = calloc(cap, sizeof *slot);
        if (!slot)
            abort();
        for (size_t i = 0; i < strings.cap; i++)
            if (strings.slot[i]) {
                size_t j = str_hash(strings.slot[i]) & (cap - 1);
                while (slot[j])
                    j = (j + 1) & (cap - 1);
                slot[j] = strings.slot[i];
            }
        free(strings.slot);
        strings.slot = slot;
        strings.cap = cap;
    }
    size_t j = str_hash(s) & (strings.cap - 1);
    while (strings.slot[j]) {
        if (strcmp(strings.slot[j], s) == 0)
            return strings.slot[j];
        j = (j + 1) & (strings.cap - 1);
    }
    strings.slot[j] = strdup(s);
    if (!strings.slot[j])
        abort();
    strings.n++;
    return strings.slot[j];
}

void hk_intern_free(void)
{
    for (size_t i = 0; i < strings.cap; i++)
        free(strings.slot[i]);
    free(strings.slot);
    memset(&strings, 0, sizeof strings);
}
