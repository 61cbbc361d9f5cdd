/* tiny.c — a thread heap's slabs per class: the slow halves of the malloc/free fast paths, taking slabs over, leaving. */
#include "heap_lists.h"
#include "internal.h"

/* Something to hand out, from (in order of cost) the free list (which holds
 * the owner's own frees too), remote frees, or fresh carving. */
static bool slab_make_available(hak_slab *s) {
    if (s->free) return true;
    if (remote_free_collect(s)) return true;
    return slab_carve(s);
}

static inline void *pop(hak_slab *s) {
    hak_block *b = s->free;
    s->free = b->next;
    s->used++;
    return b;
}

/* An exhausted slab (every block out) leaves the ring for the full list,
 * still the heap's: frees into it stay local. Past HAK_FULL_SLABS_MAX the
 * oldest is let go, so that the frees to come return it without this thread;
 * if frees came into it meanwhile, it rejoins the ring instead. */
static void set_aside(hak_heap *heap, hak_class_cache *cc, hak_slab *s) {
    ring_remove(cc, s);
    if (cc->full_count >= HAK_FULL_SLABS_MAX) {
        hak_slab *oldest = cc->full->next;
        full_unlink(cc, oldest);
        if (!oldest->free && slab_let_go(oldest, true) == HAK_KEPT) {
            atomic_store_explicit(&oldest->owner, heap, memory_order_relaxed);
            ring_insert(cc, oldest);
        } else if (oldest->free) {
            ring_insert(cc, oldest); /* its owner's frees landed in it */
        }
    }
    full_link(cc, s);
}

/* A slab back from the full list, its frees collected: emptied completely, it
 * goes back to its chunk (the ring keeps one). */
static void back_to_ring(hak_class_cache *cc, hak_slab *s) {
    remote_free_collect(s);
    if (s->used == 0 && hak_current(cc) != &hak_empty_slab) slab_release(s);
    else ring_insert(cc, s);
}

/* The full slabs frees (local or remote) landed in since; whether any came back. */
static bool take_back_full(hak_class_cache *cc) {
    bool any = false;
    hak_slab *s = cc->full;
    for (uint32_t n = cc->full_count; n > 0; n--) {
        hak_slab *next = s->next;
        if (s->free || atomic_load_explicit(&s->remote_free, memory_order_relaxed) != 0) {
            full_unlink(cc, s);
            back_to_ring(cc, s);
            any = true;
        }
        s = next;
    }
    return any;
}

void *tiny_alloc_slow(hak_heap *heap, unsigned class_idx) {
    hak_heap_enter_slow(heap);
    tiny_outbox_flush(heap); /* its blocks may be what this refill finds */
    hak_class_cache *cc = &heap->cls[class_idx];
    cc->allocates = true;
    do {
        for (hak_slab *s; (s = hak_current(cc)) != &hak_empty_slab;) {
            if (slab_make_available(s)) return pop(s);
            set_aside(heap, cc, s);
        }
    } while (take_back_full(cc));
    for (;;) {
        hak_slab *s = superslab_refill(heap, class_idx);
        if (!s) return NULL;
        hak_heap_enter_slow(heap); /* the refill may have waited, or stolen */
        ring_insert(cc, s);
        hak_set_current(cc, s);
        if (slab_make_available(s)) return pop(s);
        /* Only an adopted slab can come empty-handed (a free took its last
         * block out of the listed state before us): set it aside, refill again. */
        set_aside(heap, cc, s);
    }
}

/* A local free took `used` to 0: the slab goes back to its chunk (the ring of a class the heap allocates keeps
 * its current one; a heap that only frees the class has no use for it). */
void tiny_free_slow(hak_heap *heap, hak_slab *s) {
    hak_heap_enter_slow(heap);
    hak_class_cache *cc = &heap->cls[s->class_idx];
    if (s->on_full) {
        full_unlink(cc, s);
    } else {
        if (s == hak_current(cc) && cc->allocates) return;
        ring_remove(cc, s);
    }
    slab_release(s);
}

void tiny_outbox_flush(hak_heap *heap) {
    if (!hak_outbox_slab(heap)) return;
    hak_slab *s = remote_outbox_push(heap);
    if (s) tiny_take_over(heap, s);
}

/* A slab the heap leaves: an empty one goes back to its chunk, any other is let go for the frees still to come. */
static void leave(hak_slab *s) {
    remote_free_collect(s);
    if (s->used == 0) slab_release(s);
    else slab_let_go(s, false);
}

/* A free took an unheld slab over. A heap that allocates the class and holds
 * few of its slabs (or any, the slab's last heap gone) adopts it: its next
 * frees into it are local. So does a heap that has never refilled the class,
 * which only frees it (a consumer, a pipeline stage): the slabs it holds of the
 * class leave first, listed for the allocators, so that it takes each slab over
 * once, not at every free, and holds no more than the ring's few. Else the slab
 * is let go again, listed, its stack kept — or, that free bringing its last
 * block back, returned to its chunk. */
void tiny_take_over(hak_heap *heap, hak_slab *s) {
    /* A heap adopts only its own arena's slabs: the tracer's memory never serves the program, nor the reverse. */
    if (heap && (HAK_ARENAS == 1 || heap->arena == hak_slab_chunk(s)->arena)) {
        hak_heap_enter_slow(heap);
        hak_class_cache *cc = &heap->cls[s->class_idx];
        bool orphan = !s->home || !atomic_load_explicit(&s->home->live, memory_order_relaxed);
        bool adopt = s->home == heap ||
                     (hak_current(cc) != &hak_empty_slab && (orphan || cc->ring_count < HAK_ADOPT_ON_FREE_MAX));
        if (!adopt && !cc->allocates) { /* it only frees the class: what it holds of it leaves for this slab */
            for (hak_slab *held; (held = hak_current(cc)) != &hak_empty_slab;) {
                ring_remove(cc, held);
                leave(held);
            }
            adopt = true;
        }
        if (adopt) {
            slab_unlist(s);
            remote_free_collect(s);
            if (s->used == 0) {
                slab_release(s);
                return;
            }
            s->home = heap;
            atomic_store_explicit(&s->owner, heap, memory_order_relaxed);
            ring_insert(cc, s);
            hak_count(heap->arena, s->class_idx, HAK_CTR_adopted_on_free);
            return;
        }
    }
    slab_let_go(s, false); /* or back to its chunk, when that free was its last block */
}

/* The thread leaves (exit, or vanished in a fork). */
void tiny_heap_abandon_all(hak_heap *heap) {
    hak_heap_enter_slow(heap);
    tiny_outbox_flush(heap); /* first: a slab it takes over leaves with the rest */
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        for (hak_slab *s; (s = hak_current(cc)) != &hak_empty_slab;) {
            ring_remove(cc, s);
            leave(s);
        }
        while (cc->full) {
            hak_slab *s = cc->full;
            full_unlink(cc, s);
            leave(s);
        }
        heap->last_chunk[c] = NULL;
    }
}

/* hak_collect: the frees into this heap's slabs are collected and the slabs
 * left empty go back to their chunks, current ones included. */
void tiny_heap_collect(hak_heap *heap) {
    hak_heap_enter_slow(heap);
    tiny_outbox_flush(heap);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        take_back_full(cc);
        for (uint32_t n = cc->ring_count; n > 0; n--) {
            hak_slab *s = hak_current(cc);
            hak_set_current(cc, s->next);
            remote_free_collect(s);
            if (s->used == 0) {
                ring_remove(cc, s);
                slab_release(s);
            }
        }
    }
}
