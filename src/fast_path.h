/* fast_path.h — malloc's and free's fast paths, inline both in hak_malloc/hak_free and in the exported malloc/free. */
#ifndef HAKMEM_FAST_PATH_H
#define HAKMEM_FAST_PATH_H

#include "internal.h"

/*
 * Inline in override.c's malloc and free as much as in api.c's hak_ functions: the exported names are the
 * fast paths themselves, not a jump to them (one instruction of a malloc+free pair's ~60 each). Everything
 * past the first test that fails is a call into api.c, so the paths keep no register across a call.
 */

/* api.c: the slow halves. small_alloc_slow ends the call the fast path began; so do free_remote and
 * free_emptied. */
void *small_alloc_slow(size_t need, unsigned class_idx);
void *large_alloc_counted(size_t size, size_t align, bool zeroed);
void free_remote(hak_slab *s, void *p);
void free_emptied(hak_heap *h, hak_slab *s);
void free_outside_window(void *p);
void free_sampled(hak_slab *s, void *p);

/* A block from s, the current slab of need's class in the thread's heap h, inside the call begun; `need` is what
 * the block must hold: the request and, in the checked build, its trailer. The class is worked out again off the
 * fast path only. */
static inline __attribute__((always_inline)) void *small_alloc_from(hak_heap *h, hak_slab *s, size_t need) {
    hak_block *b = s->free;
#if defined(__x86_64__)
    __asm__("" : "+a"(b)); /* loaded where it is returned: the compiler gave rax to h and moved b at the end */
#endif
    if (HAK_LIKELY(b != NULL)) {
        s->free = b->next;
        s->used++;
        hak_op_end(&h->ops.allocs);
        return hak_sampled(b, need, hak_size_to_class(need));
    }
    return small_alloc_slow(need, hak_size_to_class(need));
}

static inline __attribute__((always_inline)) void *small_alloc(size_t need) {
    unsigned c = hak_size_to_class(need);
    hak_heap *h = hak_tls.heap;
    hak_op_begin(&h->ops.allocs);
    return small_alloc_from(h, atomic_load_explicit(&h->cls[c].current, memory_order_acquire), need);
}

/* The tiny sizes first, by the heap's direct table: one compare and one load to their slab. The bound is on the
 * request (in the checked build, size + trailer would wrap for a size near SIZE_MAX). */
static inline __attribute__((always_inline)) void *hak_malloc_fast(size_t size) {
    if (HAK_LIKELY(size <= HAK_TINY_MAX - HAK_BLOCK_OVERHEAD)) {
        size_t need = hak_block_need(size);
        size_t granule = (need + 7) >> 3;
        hak_heap *h = hak_tls.heap;
        hak_op_begin(&h->ops.allocs);
        hak_slab *s = atomic_load_explicit(&h->direct[granule], memory_order_acquire);
        return hak_ck_block_alloc(small_alloc_from(h, s, need), size);
    }
    if (size <= HAK_SMALL_REQUEST_MAX) return hak_ck_block_alloc(small_alloc(hak_block_need(size)), size);
    return large_alloc_counted(size, 0, false);
}

/* The holder's free of the block p (checked) into s: back on the free list. Ends the call the free began; the
 * last block back is a tail call, so that the fast path keeps no register across a call. */
static inline __attribute__((always_inline)) void free_local(hak_heap *h, hak_slab *s, void *p) {
    HAK_CHECK(s->used != 0, "a local free lands in a slab with blocks out");
    hak_block *b = p;
    b->next = s->free;
    s->free = b;
    if (HAK_UNLIKELY(--s->used == 0)) {
        free_emptied(h, s);
        return;
    }
    hak_op_end(&h->ops.frees);
}

/* The free of the small block p, in slab s (p's own, maybe a later slab of a span). */
static inline __attribute__((always_inline)) void free_small(hak_slab *s, void *p) {
    hak_heap *h = hak_tls.heap;
    hak_op_begin(&h->ops.frees); /* before the owner is read: a stealer may take it away (steal.c) */
    if (HAK_LIKELY(hak_slab_owned_by(s, h))) {
        if (HAK_UNLIKELY(!hak_slab_block_start(s, p))) hak_fatal_invalid_pointer("free", p);
        free_local(h, s, p);
        return;
    }
    free_remote(s, p); /* ends the call: a tail call, the fast path keeps no register across it */
}

/* The free of p, a block of a chunk as far as its address tells (a bad p reads a slab header the checks refuse).
 * `bits`: p less any multiple of 2 MiB, whose slab index is p's (the window's test leaves p - base in a register
 * that is dead otherwise: one copy of p fewer). */
static inline __attribute__((always_inline)) void free_in_chunk(void *p, uintptr_t bits) {
    hak_ck_block_free(p);
    /* A p at the chunk's very start reads slab 0, whose block-start check refuses it. The empty asm hides from the
     * compiler that s is chunk + index, which it would otherwise add twice (once for the owner, once for the
     * other fields). */
    hak_superslab *chunk = (hak_superslab *)((uintptr_t)p & ~(uintptr_t)HAK_CHUNK_MASK);
    hak_slab *s = &chunk->slabs[(bits >> HAK_SLAB_SHIFT) & (HAK_SLABS_PER_CHUNK - 1)];
    __asm__("" : "+r"(s));
    if (hak_sample_may_hold(s, p)) {
        free_sampled(s, p);
        return;
    }
    free_small(s, p);
}

/* In the chunk window (chunk_window.c), or not: a chunk apart, a large block, NULL or a bad pointer. */
static inline __attribute__((always_inline)) void hak_free_fast(void *p) {
    uintptr_t offset = hak_window_offset(p);
    if (HAK_UNLIKELY(offset >= hak_window_bytes())) {
        free_outside_window(p);
        return;
    }
    free_in_chunk(p, offset);
}

#endif
