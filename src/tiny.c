/* tiny.c — a thread heap's slabs per class: the slow halves of the malloc/free fast paths. */
#include "internal.h"

/* Never handed out: a class with no slab points here, so the fast path needs
 * no NULL check (its free list is always empty). */
hak_slab hak_empty_slab;

/* ---- circular doubly linked lists through next/prev: the ring and the full list ---- */

/* s joins the list right after *anchor (or alone, when the list is `empty`). */
static void cycle_link(hak_slab **anchor, hak_slab *empty, hak_slab *s) {
    if (*anchor == empty) {
        s->next = s->prev = s;
        *anchor = s;
        return;
    }
    hak_slab *at = *anchor;
    s->next = at->next;
    s->prev = at;
    at->next->prev = s;
    at->next = s;
}

static void cycle_unlink(hak_slab **anchor, hak_slab *empty, hak_slab *s) {
    if (s->next == s) {
        *anchor = empty;
    } else {
        s->prev->next = s->next;
        s->next->prev = s->prev;
        if (*anchor == s) *anchor = s->next;
    }
    s->next = s->prev = NULL;
}

/* The ring: OWNED slabs that may have blocks; current is one of them. */
static void ring_insert(hak_class_cache *cc, hak_slab *s) {
    cycle_link(&cc->current, &hak_empty_slab, s);
}

static void ring_remove(hak_class_cache *cc, hak_slab *s) {
    cycle_unlink(&cc->current, &hak_empty_slab, s);
}

/* The full list: anchor = newest, anchor->next = oldest. */
static void full_remove(hak_class_cache *cc, hak_slab *s) {
    cycle_unlink(&cc->full, NULL, s);
    cc->full_count--;
    s->aside = HAK_ASIDE_NONE;
}

/* An exhausted slab waits on the full list; past HAK_FULL_SLABS_MAX the
 * oldest is parked, so that its remote frees can return it on their own. */
static void full_add(hak_heap *heap, hak_class_cache *cc, hak_slab *s) {
    if (cc->full_count >= HAK_FULL_SLABS_MAX) {
        hak_slab *oldest = cc->full->next;
        full_remove(cc, oldest);
        if (slab_park(heap, oldest) == HAK_HANDED_KEPT) ring_insert(cc, oldest);
    }
    cycle_link(&cc->full, NULL, s);
    cc->full = s;
    cc->full_count++;
    s->aside = HAK_ASIDE_FULL;
}

/* Something to hand out, from (in order of cost) the free list (which holds
 * the owner's own frees too), remote frees, or fresh carving. */
static bool slab_make_available(hak_slab *s) {
    if (s->free) return true;
    if (remote_free_collect(s)) return true;
    return slab_carve(s);
}

static inline void *pop(hak_heap *heap, hak_slab *s) {
    hak_block *b = s->free;
    s->free = b->next;
    s->used++;
    hak_heap_count(&heap->counters.allocs);
    return b;
}

/* A slab back from the full or parked list: its remote frees are collected;
 * emptied completely, it goes back to its chunk (the ring keeps one). */
static void back_to_ring(hak_class_cache *cc, hak_slab *s) {
    remote_free_collect(s);
    if (s->used == 0 && cc->current != &hak_empty_slab) {
        slab_release(s);
    } else {
        ring_insert(cc, s);
    }
}

/* Full slabs that frees landed in since (the owner's stay on the fast path and
 * are found here, when the ring runs dry); whether any came back. */
static bool take_back_full(hak_class_cache *cc) {
    bool any = false;
    hak_slab *s = cc->full;
    for (uint32_t n = cc->full_count; n > 0; n--) {
        hak_slab *next = s->next;
        if (s->free || atomic_load_explicit(&s->remote_free, memory_order_relaxed) != 0) { /* OWNED: no bit */
            full_remove(cc, s);
            back_to_ring(cc, s);
            any = true;
        }
        s = next;
    }
    return any;
}

/* Parked slabs that remote frees landed in; whether any came back. */
static bool take_back_parked(hak_heap *heap, hak_class_cache *cc, unsigned class_idx) {
    hak_slab *s = slab_unpark_freed(heap, class_idx);
    bool any = s != NULL;
    while (s) {
        hak_slab *next = s->next;
        back_to_ring(cc, s);
        s = next;
    }
    return any;
}

void *tiny_alloc_slow(hak_heap *heap, unsigned class_idx) {
    hak_class_cache *cc = &heap->cls[class_idx];
    for (;;) {
        while (cc->current != &hak_empty_slab) {
            hak_slab *s = cc->current;
            if (slab_make_available(s)) return pop(heap, s);
            ring_remove(cc, s); /* exhausted: every block is out */
            full_add(heap, cc, s);
        }
        bool full_back = take_back_full(cc);
        /* Only when a free into a parked slab said so: the scan takes the lock. */
        bool parked_back =
            atomic_load_explicit(&cc->remote_hint, memory_order_relaxed) && take_back_parked(heap, cc, class_idx);
        if (!full_back && !parked_back) break;
    }
    for (;;) {
        hak_slab *s = superslab_refill(heap, class_idx);
        if (!s) return NULL;
        ring_insert(cc, s);
        cc->current = s;
        if (slab_make_available(s)) return pop(heap, s);
        /* Only an adopted slab can come empty-handed (its last free block
         * went to a racing remote free's count): set it aside, refill again. */
        ring_remove(cc, s);
        full_add(heap, cc, s);
    }
}

/* A local free took `used` to 0 or landed in a parked slab. */
void tiny_free_slow(hak_heap *heap, hak_slab *s) {
    hak_class_cache *cc = &heap->cls[s->class_idx];
    if (s->aside == HAK_ASIDE_PARKED) {
        slab_unpark(heap, s);
        ring_insert(cc, s);
    }
    if (s->used == 0 && s != cc->current) {
        if (s->aside == HAK_ASIDE_FULL) full_remove(cc, s);
        else ring_remove(cc, s);
        slab_release(s);
    }
}

void tiny_heap_abandon_all(hak_heap *heap) {
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        while (cc->current != &hak_empty_slab) {
            hak_slab *s = cc->current;
            ring_remove(cc, s);
            slab_abandon(heap, s);
        }
        while (cc->full) {
            hak_slab *s = cc->full;
            full_remove(cc, s);
            slab_abandon(heap, s);
        }
        slab_abandon_parked(heap, c);
        cc->chunk = NULL;
        atomic_store_explicit(&cc->remote_hint, 0, memory_order_relaxed);
    }
}

/* hak_collect: everything this heap holds that no one uses goes back to the
 * chunks — remote frees collected, empty slabs released (current included) —
 * and full slabs are parked, so the frees still to come return them. */
void tiny_heap_collect(hak_heap *heap) {
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        take_back_parked(heap, cc, c);
        take_back_full(cc);
        while (cc->full) {
            hak_slab *s = cc->full;
            full_remove(cc, s);
            if (slab_park(heap, s) == HAK_HANDED_KEPT) ring_insert(cc, s);
        }
        hak_slab *ring = NULL;
        while (cc->current != &hak_empty_slab) {
            hak_slab *r = cc->current;
            ring_remove(cc, r);
            r->next = ring;
            ring = r;
        }
        while (ring) {
            hak_slab *r = ring;
            ring = r->next;
            r->next = NULL;
            remote_free_collect(r);
            if (r->used == 0) slab_release(r);
            else ring_insert(cc, r);
        }
    }
}
