/* api.c — the hak_ allocation API: the fast paths' slow halves (fast_path.h), OOM reporting, alignment and realloc. */
#include <errno.h>
#include <string.h>

#include "fast_path.h"
#include "internal.h"
#include "slab_state.h"
#include "trace.h"

static HAK_NOINLINE void *report_oom(size_t size, unsigned class_idx, unsigned arena) {
    hak_count(arena, class_idx, HAK_CTR_ooms);
    hak_oom_trace(size, class_idx, hak_class_size[class_idx], arena);
    errno = ENOMEM;
    return NULL;
}

/* Inside the call the fast path began on the thread's heap; ends it. */
HAK_NOINLINE void *small_alloc_slow(size_t size, unsigned class_idx) {
    hak_heap *h = hak_tls.heap;
    /* The tracer's (tracer.c): at teardown the fast path may still have served it from the thread's heap,
     * but nothing of the program's is claimed, refused or counted for it. */
    if (hak_in_tracer() || (h == &hak_empty_heap && hak_tracer_thread_check())) {
        void *p = hak_tracer_small_alloc(class_idx);
        hak_op_cancel(&h->ops.allocs);
        return p ? p : report_oom(size, class_idx, HAK_ARENA_TRACER);
    }
    if (h == &hak_empty_heap) { /* the thread's first malloc */
        hak_op_cancel(&h->ops.allocs); /* pthread_setspecific may allocate: no call of ours is open around it */
        hak_os_failure why = {.reason = HAK_FAIL_NONE};
        h = hak_thread_heap_init(&why);
        if (!h) {
            /* No refill ran: the refusal of the heap's own pages is the path, with seq 0. */
            HAK_TRACE_STACK(0, 0);
            HAK_TRACE(superslab_alloc_fail, (uint8_t)class_idx, hak_class_size[class_idx], 0, why.bytes, why.err,
                      (int)why.reason);
            return report_oom(size, class_idx, HAK_ARENA_PROGRAM);
        }
        hak_op_begin(&h->ops.allocs);
    }
    void *p = tiny_alloc_slow(h, class_idx);
    if (!p) {
        hak_op_cancel(&h->ops.allocs);
        return report_oom(size, class_idx, h->arena);
    }
    hak_op_end(&h->ops.allocs);
    return hak_sampled(p, size, class_idx);
}

HAK_NOINLINE void *large_alloc_counted(size_t size, size_t align, bool zeroed) {
    void *p = large_alloc(size, align, zeroed);
    if (!p) {
        hak_oom_trace(size, HAKMEM_TP_LARGE_CLASS, 0, hak_context_arena());
        return NULL;
    }
    hak_stats_shared_alloc();
    return hak_sampled(p, size, HAKMEM_TP_LARGE_CLASS); /* errno: ENOMEM from large_alloc; trace events keep errno as they found it */
}

void *hak_malloc(size_t size) {
    return hak_malloc_fast(size);
}

/* A thread whose first call is a free of another thread's block gets its heap now, as its first malloc would
 * have. Its frees are then counted in its own heap, with a plain add (a consumer thread that only frees paid a
 * locked add on a shared counter at every free: 6 % of an xmalloc-test-like run's time), and tiny_take_over can
 * adopt the slabs it takes over — pooled heaps are handed out again, so the new heap is often the slab's last
 * home — where a heapless free lets each go again. A worker that starts by freeing what the last one left
 * (bench threads, 2 threads): class 4's refills fell from 3896 to 580, and the run is 1.28x as fast. Not for
 * the tracer, nor once the thread's heap was retired. */
static hak_heap *heap_to_adopt_into(void) {
    if (hak_in_tracer() || hak_thread_exiting() || hak_tracer_thread_check()) return &hak_empty_heap;
    hak_os_failure why = {.reason = HAK_FAIL_NONE};
    hak_heap *h = hak_thread_heap_init(&why);
    return h ? h : &hak_empty_heap; /* no memory for it: the free goes on without one */
}

/* Into h's outbox, the remote frees on their way to one slab (types.h): consecutive frees into a slab another
 * heap holds — a consumer's of what a producer allocated — cost a CAS per HAK_OUTBOX_MAX blocks, not one each
 * (a locked instruction waits for the store to the block, a cache miss, where plain stores overlap theirs). An
 * unheld slab is pushed at once: that free takes it over. False when b must be pushed now. Inside a call, past
 * hak_heap_enter_slow: a stealer flushes the outbox of a heap it shut out (steal.c). The stores go in the order
 * that keeps the outbox whole at every instruction, for a fork child that retires this heap. */
static bool outbox_add(hak_heap *h, hak_slab *s, hak_block *b) {
    hak_slab *waiting = hak_outbox_slab(h);
    if (s == waiting) {
        b->next = h->outbox_first;
        h->outbox_first = b;
        atomic_signal_fence(memory_order_seq_cst);
        if (++h->outbox_count == HAK_OUTBOX_MAX) tiny_outbox_flush(h);
        return true;
    }
    tiny_outbox_flush(h);
    if (atomic_load_explicit(&s->remote_free, memory_order_relaxed) & HAK_REMOTE_UNHELD) return false;
    b->next = NULL;
    h->outbox_first = h->outbox_last = b;
    h->outbox_count = 1;
    atomic_signal_fence(memory_order_seq_cst);
    atomic_store_explicit(&h->outbox_slab, s, memory_order_relaxed);
    return true;
}

/* A free into a slab this thread does not hold (s is a span's first slab), inside the call the fast path began on
 * the thread's heap; ends it. Kept open from the fast path on, not closed and opened again: each end of a call
 * is an add to the op word, two of them a chain of store-to-load forwards the free does not need. */
static void free_foreign(hak_slab *s, void *p) {
    if (!hak_state_live(atomic_load_explicit(&s->state, memory_order_relaxed)) || !hak_slab_block_start(s, p))
        hak_fatal_invalid_pointer("free", p);
    hak_heap *h = hak_tls.heap;
    if (HAK_UNLIKELY(h == &hak_empty_heap)) {
        hak_op_cancel(&h->ops.frees); /* the heap's making may allocate: no call of ours is open around it */
        h = heap_to_adopt_into();
        if (h == &hak_empty_heap) { /* no heap to count in, nor an outbox */
            if (remote_free_push(s, p)) {
                hak_op_begin(&h->ops.frees);
                tiny_take_over(NULL, s);
                hak_op_cancel(&h->ops.frees);
            }
            hak_stats_shared_free();
            return;
        }
        hak_op_begin(&h->ops.frees);
    }
    hak_heap_enter_slow(h);
    if (!outbox_add(h, s, p) && remote_free_push(s, p)) tiny_take_over(h, s); /* it was unheld: ours now */
    hak_op_end(&h->ops.frees);
}

/* A block of a span past its first slab, whose metadata (s) is the first slab's: the fast path's owner check
 * again, on the right slab. Inside the call; ends it. */
static void free_in_span(hak_slab *s, void *p) {
    hak_heap *h = hak_tls.heap;
    if (hak_slab_owned_by(s, h)) {
        if (!hak_slab_block_start(s, p)) hak_fatal_invalid_pointer("free", p);
        free_local(h, s, p);
        return;
    }
    free_foreign(s, p);
}

/* The fast path's owner check failed: a remote free, or a free into a span's later slabs (never owned). Inside
 * the call the fast path began; ends it. */
HAK_NOINLINE void free_remote(hak_slab *s, void *p) {
    hak_slab *head = hak_span_head(s);
    if (head != s) free_in_span(head, p);
    else free_foreign(s, p);
}

/* A local free took the slab's last block back; ends the call hak_free began (a tail call, so that the fast
 * path keeps no register across a call). */
HAK_NOINLINE void free_emptied(hak_heap *h, hak_slab *s) {
    tiny_free_slow(h, s);
    hak_op_end(&h->ops.frees);
}

/* The large block p is, or no return. */
static hak_large_header *large_or_die(const void *p, unsigned kind, const char *op) {
    hak_large_header *h = kind == HAK_REGION_LARGE ? large_block(p) : NULL;
    if (!h) hak_fatal_invalid_pointer(op, p);
    return h;
}

static void free_not_small(void *p) {
    hak_large_header *large = large_or_die(p, hak_region_kind((uintptr_t)p - 1), "free");
    hak_sample_freed(p); /* before the block can be handed out again and sampled anew */
    large_free(large, true);
    hak_stats_shared_free();
}

/* A chunk apart from the window is found through the region map, by p's own region (its p - 1 would cost an
 * instruction more): NULL is region 0, where no chunk can start, and a large block's pointer at a region's start
 * (a 2 MiB alignment) reads its mapping's next region, never SUPERSLAB, so free_not_small looks at p - 1's. */
HAK_NOINLINE void free_outside_window(void *p) {
    if (hak_region_is_superslab((uintptr_t)p >> HAK_CHUNK_SHIFT)) {
        free_in_chunk(p, (uintptr_t)p);
        return;
    }
    if (p) free_not_small(p);
}

/* (trace build) A block the heap profile may have sampled: its sample goes first, before the block can be handed
 * out and sampled again. Apart, so that the fast path keeps no register across the lookup's call. */
HAK_NOINLINE void free_sampled(hak_slab *s, void *p) {
    hak_sample_forget(p);
    free_small(s, p);
}

void hak_free(void *p) {
    hak_free_fast(p);
}

/* Usable bytes of the small block p, or no return. An aligned allocation may
 * point inside its block (never, today: small aligned blocks are naturally
 * aligned), so it is measured to the block's end. */
static size_t small_usable(const void *p, const char *op) {
    hak_superslab *chunk = hak_chunk_of(p);
    hak_slab *s = hak_span_head(hak_slab_of(chunk, p));
    if (!hak_state_live(atomic_load_explicit(&s->state, memory_order_relaxed)) || (const uint8_t *)p < s->data)
        hak_fatal_invalid_pointer(op, p);
    size_t offset = (size_t)((const uint8_t *)p - s->data) % s->block_size;
    return hak_ck_block_usable(p, s->block_size - offset, op);
}

size_t hak_usable_size(const void *p) {
    if (!p) return 0;
    unsigned kind = hak_region_kind((uintptr_t)p - 1);
    if (kind != HAK_REGION_SUPERSLAB) return large_usable_size(large_or_die(p, kind, "malloc_usable_size"));
    return small_usable(p, "malloc_usable_size");
}

static void *calloc_total(size_t total) {
    if (total > HAK_SMALL_REQUEST_MAX) return large_alloc_counted(total, 0, true); /* zeroed only if reused */
    void *p = hak_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *hak_calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    bool named = hak_call_begin(HAK_CALL_CALLOC, count, size, 0, NULL);
    void *p = calloc_total(total);
    hak_call_end(named);
    return p;
}

static void *realloc_call(void *p, size_t size);

void *hak_realloc(void *p, size_t size) {
    bool named = hak_call_begin(HAK_CALL_REALLOC, 1, size, 0, p);
    void *q = realloc_call(p, size);
    hak_call_end(named);
    if (q != p && (q || size == 0)) hak_sample_freed(p); /* moved (or freed): a large block's old pages, too */
    return q;
}

static void *realloc_call(void *p, size_t size) {
    if (!p) return hak_malloc(size);
    if (size == 0) {
        /* glibc frees and returns NULL; so do we (C23 leaves it undefined). */
        hak_free(p);
        return NULL;
    }
    unsigned kind = hak_region_kind((uintptr_t)p - 1);
    hak_large_header *large = NULL;
    size_t old_usable;
    if (kind != HAK_REGION_SUPERSLAB) {
        large = large_or_die(p, kind, "realloc");
        if (size > HAK_REALLOC_LARGE_MIN && large_resize_in_place(large, size)) return p;
        void *moved = size > HAK_REALLOC_LARGE_MIN ? large_grow_moved(large, size) : NULL;
        if (moved) { /* a growing array: its pages move, none is copied; counted as the copy would be */
            hak_stats_shared_alloc();
            hak_stats_shared_free();
            return hak_sampled(moved, size, HAKMEM_TP_LARGE_CLASS);
        }
        old_usable = large_usable_size(large);
    } else {
        old_usable = small_usable(p, "realloc");
        /* In place when it fits and does not waste more than half the block (in the checked build, the room
         * before its trailer: the canary moves). */
        size_t room = hak_ck_block_room(p, old_usable);
        if (size <= room && (size > room / 2 || room <= 16)) return hak_ck_block_resize(p, size);
    }
    /* A block grown past HAK_REALLOC_LARGE_MIN is most likely an array that will grow again: on the large path
     * its next growths move pages (mremap) instead of copying, and no old copy waits out the purge delay in a
     * span (perl's doubling hash arrays: 5 MiB of peak RSS). */
    void *q = size > HAK_REALLOC_LARGE_MIN && size > old_usable ? large_alloc_counted(size, 0, false)
                                                               : hak_malloc(size);
    if (!q) return NULL; /* errno = ENOMEM, and p is untouched */
    memcpy(q, p, size < old_usable ? size : old_usable);
    if (large) {
        /* A large block realloc moved is usually a growing array: its old
         * mapping would not fit the next growth, so it is not worth keeping. */
        large_free(large, false);
        hak_stats_shared_free();
    } else {
        hak_free(p);
    }
    return q;
}

/* Power-of-two alignment; callers validate. Every class of 16 bytes or more
 * is 16-byte aligned, and power-of-two classes are naturally aligned up to
 * 4 KiB (slab data starts page aligned), so a small aligned request is a
 * plain request for a big enough class. */
static void *memalign_call(size_t alignment, size_t size);

void *hak_memalign(size_t alignment, size_t size) {
    bool named = hak_call_begin(HAK_CALL_MEMALIGN, 1, size, alignment, NULL);
    void *p = memalign_call(alignment, size);
    hak_call_end(named);
    return p;
}

static void *memalign_call(size_t alignment, size_t size) {
    if (size <= HAK_SMALL_REQUEST_MAX && (alignment <= 16 || (alignment <= 4096 && size <= 4096))) {
        size_t need = hak_block_need(size);
        if (need < alignment) need = alignment;
        if (alignment > 16) need = hak_pow2_ceil(need);
        return hak_ck_block_alloc(small_alloc(need), size);
    }
    return large_alloc_counted(size, alignment, false);
}

void hak_collect(void) {
    hak_heap *h = hak_tls.heap;
    if (h != &hak_empty_heap) {
        hak_op_begin(&h->ops.allocs);
        tiny_heap_collect(h);
        hak_op_cancel(&h->ops.allocs);
    }
    hak_reclaim_trim(); /* free slabs' pages, and releases the OS refused earlier */
}
