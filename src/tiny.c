/* tiny.c — a thread heap's slabs per class: the slow halves of the malloc/free fast paths, taking over slabs, leaving. */
#include "internal.h"

/* Never handed out: a class with no slab points here, so the fast path needs
 * no NULL check (its free list is always empty). */
hak_slab hak_empty_slab;

/* ---- the ring: the slabs a heap holds for a class, a cycle through next/prev; current is one of them ---- */

static void ring_insert(hak_class_cache *cc, hak_slab *s) {
    if (cc->current == &hak_empty_slab) {
        s->next = s->prev = s;
        cc->current = s;
    } else {
        hak_slab *at = cc->current;
        s->next = at->next;
        s->prev = at;
        at->next->prev = s;
        at->next = s;
    }
    cc->ring_count++;
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
    cc->ring_count--;
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

/* An exhausted slab (every block out) leaves the ring unheld, so that the
 * frees to come can return it without this thread, idle or not; unless frees
 * came in meanwhile. */
static void let_go_exhausted(hak_class_cache *cc, hak_slab *s) {
    ring_remove(cc, s);
    if (slab_let_go(s, true) == HAK_KEPT) {
        ring_insert(cc, s);
        cc->current = s;
    }
}

void *tiny_alloc_slow(hak_heap *heap, unsigned class_idx) {
    hak_class_cache *cc = &heap->cls[class_idx];
    while (cc->current != &hak_empty_slab) {
        hak_slab *s = cc->current;
        if (slab_make_available(s)) return pop(heap, s);
        let_go_exhausted(cc, s);
    }
    for (;;) {
        hak_slab *s = superslab_refill(heap, class_idx);
        if (!s) return NULL;
        ring_insert(cc, s);
        cc->current = s;
        if (slab_make_available(s)) return pop(heap, s);
        /* Only an adopted slab can come empty-handed (a free took its last
         * block out of the listed state before us): let it go, refill again. */
        let_go_exhausted(cc, s);
    }
}

/* A local free took `used` to 0: the slab goes back to its chunk (the ring keeps its current one). */
void tiny_free_slow(hak_heap *heap, hak_slab *s) {
    hak_class_cache *cc = &heap->cls[s->class_idx];
    if (s != cc->current) {
        ring_remove(cc, s);
        slab_release(s);
    }
}

/* A free took an unheld slab over. Its blocks may all be back (to its chunk,
 * then); a heap that allocates the class and holds few of its slabs adopts it
 * (its next frees into it are local); else it is let go again, listed. */
void tiny_take_over(hak_heap *heap, hak_slab *s) {
    slab_unlist(s);
    remote_free_collect(s);
    if (s->used == 0) {
        slab_release(s);
        return;
    }
    if (heap) {
        hak_class_cache *cc = &heap->cls[s->class_idx];
        if (s->home == heap || (cc->current != &hak_empty_slab && cc->ring_count < HAK_ADOPT_ON_FREE_MAX)) {
            s->home = heap;
            atomic_store_explicit(&s->owner, heap, memory_order_relaxed);
            ring_insert(cc, s);
            hak_count(s->class_idx, HAK_CTR_adopted_on_free);
            return;
        }
    }
    slab_let_go(s, false);
}

/* The thread leaves (exit, or vanished in a fork): an empty slab goes back to
 * its chunk, any other is let go for the frees still to come. */
void tiny_heap_abandon_all(hak_heap *heap) {
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        while (cc->current != &hak_empty_slab) {
            hak_slab *s = cc->current;
            ring_remove(cc, s);
            remote_free_collect(s);
            if (s->used == 0) slab_release(s);
            else slab_let_go(s, false);
        }
        cc->chunk = NULL;
    }
}

/* hak_collect: the remote frees into this heap's slabs are collected and the
 * slabs left empty go back to their chunks, current ones included. */
void tiny_heap_collect(hak_heap *heap) {
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        for (uint32_t n = cc->ring_count; n > 0; n--) {
            hak_slab *s = cc->current;
            cc->current = s->next;
            remote_free_collect(s);
            if (s->used == 0) {
                ring_remove(cc, s);
                slab_release(s);
            }
        }
    }
}
