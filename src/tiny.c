/* tiny.c — a thread heap's slabs per class: the slow halves of the malloc/free fast paths. */
#include "internal.h"

/* Never handed out: a class with no slab points here, so the fast path needs
 * no NULL check (its free list is always empty). */
hak_slab hak_empty_slab;

/* ---- the ring of OWNED slabs that may have blocks (current is one of them) ---- */

static void ring_insert(hak_class_cache *cc, hak_slab *s) {
    if (cc->current == &hak_empty_slab) {
        s->next = s->prev = s;
        cc->current = s;
        return;
    }
    hak_slab *cur = cc->current;
    s->next = cur->next;
    s->prev = cur;
    cur->next->prev = s;
    cur->next = s;
}

static void ring_remove(hak_class_cache *cc, hak_slab *s) {
    if (s->next == s) {
        cc->current = &hak_empty_slab;
    } else {
        s->prev->next = s->next;
        s->next->prev = s->prev;
        if (cc->current == s) cc->current = s->next;
    }
    s->next = s->prev = NULL;
}

/* Something to hand out, from (in order of cost) the free list, the owner's
 * own frees, remote frees, or fresh carving. */
static bool slab_make_available(hak_slab *s) {
    if (s->free) return true;
    if (s->local_free) {
        s->free = s->local_free;
        s->local_free = NULL;
        return true;
    }
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

/* Parked slabs that remote frees landed in come back to the ring; the ones
 * that emptied completely go back to their chunk (the ring keeps one). */
static void take_back_freed(hak_heap *heap, hak_class_cache *cc, unsigned class_idx) {
    hak_slab *s = slab_unpark_freed(heap, class_idx);
    while (s) {
        hak_slab *next = s->next;
        remote_free_collect(s);
        if (s->used == 0 && cc->current != &hak_empty_slab) {
            slab_release(s);
        } else {
            ring_insert(cc, s);
        }
        s = next;
    }
}

void *tiny_alloc_slow(hak_heap *heap, unsigned class_idx) {
    if (heap == &hak_empty_heap) {
        heap = hak_thread_heap_init();
        if (!heap) return NULL;
    }
    hak_class_cache *cc = &heap->cls[class_idx];
    for (;;) {
        while (cc->current != &hak_empty_slab) {
            hak_slab *s = cc->current;
            if (slab_make_available(s)) return pop(heap, s);
            ring_remove(cc, s); /* exhausted: every block is out */
            slab_park(heap, s);
        }
        if (!atomic_load_explicit(&cc->remote_hint, memory_order_relaxed)) break;
        take_back_freed(heap, cc, class_idx);
        if (cc->current == &hak_empty_slab) break;
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
        slab_park(heap, s);
    }
}

/* A local free took `used` to 0 or landed in a parked slab. */
void tiny_free_slow(hak_heap *heap, hak_slab *s) {
    hak_class_cache *cc = &heap->cls[s->class_idx];
    if (s->parked) {
        slab_unpark(heap, s);
        ring_insert(cc, s);
    }
    if (s->used == 0 && s != cc->current) {
        ring_remove(cc, s);
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
        slab_abandon_parked(heap, c);
        cc->chunk = NULL;
        atomic_store_explicit(&cc->remote_hint, 0, memory_order_relaxed);
    }
}

/* hak_collect: everything this heap holds that no one uses goes back to the
 * chunks — remote frees collected, empty slabs released (current included). */
void tiny_heap_collect(hak_heap *heap) {
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        take_back_freed(heap, cc, c);
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
