/* tiny.c — a thread heap's slabs per class: the slow halves of the malloc/free fast paths. */
#include <errno.h>

#include "internal.h"

/* Never handed out: a class with no slab points here, so the fast path needs
 * no NULL check (its free list is always empty). */
hak_slab hak_empty_slab;

/* ---- the ring of slabs that may have blocks (current is one of them) ---- */

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

static void full_push(hak_class_cache *cc, hak_slab *s) {
    s->prev = NULL;
    s->next = cc->full;
    if (cc->full) cc->full->prev = s;
    cc->full = s;
    s->in_full_list = 1;
    atomic_store_explicit(&s->full_hint, 1, memory_order_seq_cst);
}

static void full_remove(hak_class_cache *cc, hak_slab *s) {
    if (s->prev) s->prev->next = s->next;
    else cc->full = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->in_full_list = 0;
    atomic_store_explicit(&s->full_hint, 0, memory_order_relaxed);
}

void tiny_heap_attach_slab(hak_heap *heap, hak_slab *s) {
    hak_class_cache *cc = &heap->cls[s->class_idx];
    s->in_full_list = 0;
    atomic_store_explicit(&s->full_hint, 0, memory_order_relaxed);
    ring_insert(cc, s);
    cc->current = s;
    cc->slab_count++;
}

static void detach_and_release(hak_class_cache *cc, hak_slab *s) {
    if (s->in_full_list) full_remove(cc, s);
    else ring_remove(cc, s);
    cc->slab_count--;
    slab_release(s);
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

/* Remote frees landed in full slabs: bring those slabs back to the ring and
 * give back the ones that emptied completely. */
static void collect_full_slabs(hak_class_cache *cc) {
    atomic_store_explicit(&cc->remote_hint, 0, memory_order_seq_cst);
    hak_slab *s = cc->full;
    while (s) {
        hak_slab *next = s->next;
        if (atomic_load_explicit(&s->remote_free, memory_order_seq_cst)) {
            remote_free_collect(s);
            if (s->used == 0 && cc->current != &hak_empty_slab) {
                detach_and_release(cc, s);
            } else {
                full_remove(cc, s);
                ring_insert(cc, s);
            }
        }
        s = next;
    }
}

static inline void *pop(hak_heap *heap, hak_slab *s) {
    hak_block *b = s->free;
    s->free = b->next;
    s->used++;
    hak_heap_count(&heap->counters.allocs);
    return b;
}

void *tiny_alloc_slow(hak_heap *heap, unsigned class_idx) {
    if (heap == &hak_empty_heap) {
        heap = hak_thread_heap_init();
        if (!heap) return NULL;
    }
    hak_class_cache *cc = &heap->cls[class_idx];
    if (atomic_load_explicit(&cc->remote_hint, memory_order_relaxed)) collect_full_slabs(cc);

    while (cc->current != &hak_empty_slab) {
        hak_slab *s = cc->current;
        if (slab_make_available(s)) return pop(heap, s);
        /* Exhausted: park it on the full list. A remote free racing with the
         * parking either sees full_hint or is seen by the check below. */
        ring_remove(cc, s);
        full_push(cc, s);
        if (atomic_load_explicit(&s->remote_free, memory_order_seq_cst))
            atomic_store_explicit(&cc->remote_hint, 1, memory_order_relaxed);
    }
    if (atomic_load_explicit(&cc->remote_hint, memory_order_relaxed)) {
        collect_full_slabs(cc);
        if (cc->current != &hak_empty_slab && slab_make_available(cc->current)) return pop(heap, cc->current);
    }

    hak_slab *s = superslab_refill(heap, class_idx);
    if (!s) return NULL;
    tiny_heap_attach_slab(heap, s);
    if (!slab_make_available(s)) return NULL; /* a fresh slab always has capacity */
    return pop(heap, s);
}

/* A local free took `used` to 0 or freed into a parked slab. */
void tiny_free_slow(hak_heap *heap, hak_slab *s) {
    hak_class_cache *cc = &heap->cls[s->class_idx];
    if (s->used == 0 && s != cc->current) {
        detach_and_release(cc, s);
    } else if (s->in_full_list) {
        full_remove(cc, s);
        ring_insert(cc, s);
    }
}

void tiny_heap_abandon_all(hak_heap *heap) {
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        while (cc->full) {
            hak_slab *s = cc->full;
            full_remove(cc, s);
            slab_abandon(s);
        }
        while (cc->current != &hak_empty_slab) {
            hak_slab *s = cc->current;
            ring_remove(cc, s);
            slab_abandon(s);
        }
        cc->slab_count = 0;
        cc->chunk = NULL;
        atomic_store_explicit(&cc->remote_hint, 0, memory_order_relaxed);
    }
}

/* hak_collect: everything this heap holds that no one uses goes back to the
 * chunks — remote frees collected, empty slabs released (current included). */
void tiny_heap_collect(hak_heap *heap) {
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &heap->cls[c];
        hak_slab *s = cc->full;
        while (s) {
            hak_slab *next = s->next;
            if (remote_free_collect(s)) {
                full_remove(cc, s);
                ring_insert(cc, s);
            }
            s = next;
        }
        atomic_store_explicit(&cc->remote_hint, 0, memory_order_relaxed);
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
            if (r->used == 0) {
                cc->slab_count--;
                slab_release(r);
            } else {
                ring_insert(cc, r);
            }
        }
    }
}
