/* heap_lists.h — a heap's slabs per class: the ring (current among them) and the full list, as the owner's slow paths and a stealer change them. */
#ifndef HAKMEM_HEAP_LISTS_H
#define HAKMEM_HEAP_LISTS_H

#include "internal.h"

/*
 * Both lists are cycles through slab->next/prev, changed only by the heap's
 * own slow paths or by a stealer that has shut them out (steal.c), never by
 * the fast paths: those read `current` (atomic, because a stealer may point it
 * at the empty slab) and the free list of the slabs the heap owns.
 */

static inline hak_slab *hak_current(hak_class_cache *cc) {
    return atomic_load_explicit(&cc->current, memory_order_acquire);
}

/* The class's current slab, and the heap's direct slots of its granules (none above the tiny classes). */
static inline void hak_set_current(hak_class_cache *cc, hak_slab *s) {
    atomic_store_explicit(&cc->current, s, memory_order_release);
    hak_heap *heap = (hak_heap *)((char *)(cc - cc->class_idx) - offsetof(hak_heap, cls));
    const uint8_t *g = hak_class_granules[cc->class_idx];
    for (unsigned i = g[0]; i < g[1]; i++) atomic_store_explicit(&heap->direct[i], s, memory_order_release);
}

/* s joins the ring after current (or alone). */
static inline void ring_insert(hak_class_cache *cc, hak_slab *s) {
    hak_slab *at = hak_current(cc);
    if (at == &hak_empty_slab) {
        s->next = s->prev = s;
        hak_set_current(cc, s);
    } else {
        s->next = at->next;
        s->prev = at;
        at->next->prev = s;
        at->next = s;
    }
    cc->ring_count++;
}

static inline void ring_remove(hak_class_cache *cc, hak_slab *s) {
    if (s->next == s) {
        hak_set_current(cc, &hak_empty_slab);
    } else {
        s->prev->next = s->next;
        s->next->prev = s->prev;
        if (hak_current(cc) == s) hak_set_current(cc, s->next);
    }
    s->next = s->prev = NULL;
    cc->ring_count--;
}

/* The full list: exhausted slabs the heap still owns; anchor = newest, anchor->next = oldest. */
static inline void full_link(hak_class_cache *cc, hak_slab *s) {
    if (!cc->full) {
        s->next = s->prev = s;
    } else {
        hak_slab *at = cc->full;
        s->next = at->next;
        s->prev = at;
        at->next->prev = s;
        at->next = s;
    }
    cc->full = s;
    cc->full_count++;
    s->on_full = 1;
}

static inline void full_unlink(hak_class_cache *cc, hak_slab *s) {
    if (s->next == s) {
        cc->full = NULL;
    } else {
        s->prev->next = s->next;
        s->next->prev = s->prev;
        if (cc->full == s) cc->full = s->prev;
    }
    s->next = s->prev = NULL;
    cc->full_count--;
    s->on_full = 0;
}

#endif
