/* api.c — the hak_ allocation API: size dispatch, the fast paths, OOM reporting, alignment and realloc. */
#include <errno.h>
#include <string.h>

#include "hakmem.h"
#include "internal.h"
#include "slab_state.h"
#include "trace.h"

static HAK_NOINLINE void *report_oom(size_t size, unsigned class_idx) {
    hak_count(class_idx, HAK_CTR_OOMS);
    HAK_TRACE(oom, size, (uint8_t)class_idx, hak_class_size[class_idx], hak_tls_heap->refill_seq);
    errno = ENOMEM;
    return NULL;
}

static HAK_NOINLINE void *small_alloc_slow(size_t size, unsigned class_idx) {
    void *p = tiny_alloc_slow(hak_tls_heap, class_idx);
    return p ? p : report_oom(size, class_idx);
}

static inline void *small_alloc(size_t size) {
    unsigned c = hak_size_to_class(size);
    hak_heap *h = hak_tls_heap;
    hak_slab *s = h->cls[c].current;
    hak_block *b = s->free;
    if (HAK_LIKELY(b != NULL)) {
        s->free = b->next;
        s->used++;
        hak_heap_count(&h->counters.allocs);
        return b;
    }
    return small_alloc_slow(size, c);
}

static HAK_NOINLINE void *large_alloc_counted(size_t size, size_t align, bool zeroed) {
    void *p = large_alloc(size, align, zeroed);
    if (p) hak_stats_count_foreign_alloc();
    else HAK_TRACE(oom, size, HAKMEM_TP_LARGE_CLASS, 0, hak_tls_heap->refill_seq);
    return p; /* errno: ENOMEM from large_alloc; trace events keep errno as they found it */
}

#if HAKMEM_CHECKED
/* A block of the class for `need` (the request and its trailer) remembering `size`. */
static void *checked_small_alloc(size_t size, size_t need) {
    void *p = small_alloc(need);
    if (p) hak_ck_block_alloc(p, size);
    return p;
}
#endif

void *hak_malloc(size_t size) {
#if HAKMEM_CHECKED
    if (size <= HAK_CK_SMALL_MAX) return checked_small_alloc(size, hak_ck_block_need(size));
#else
    if (HAK_LIKELY(size <= HAK_SMALL_MAX)) return small_alloc(size);
#endif
    return large_alloc_counted(size, 0, false);
}

static HAK_NOINLINE void free_remote(hak_slab *s, void *p) {
    if (!hak_state_live(atomic_load_explicit(&s->state, memory_order_relaxed)) || !hak_slab_block_start(s, p))
        hak_fatal_invalid_pointer("free", p);
    remote_free_push(s, (hak_block *)p);
    hak_heap *h = hak_tls_heap;
    if (h != &hak_empty_heap) hak_heap_count(&h->counters.frees);
    else hak_stats_count_foreign_free();
}

static HAK_NOINLINE void free_not_small(void *p, unsigned kind) {
    if (kind != HAK_REGION_LARGE) hak_fatal_invalid_pointer("free", p);
    large_free(p, true);
    hak_stats_count_foreign_free();
}

void hak_free(void *p) {
    if (HAK_UNLIKELY(p == NULL)) return;
    uintptr_t a = (uintptr_t)p;
    unsigned kind = hak_region_kind(a - 1);
    if (HAK_UNLIKELY(kind != HAK_REGION_SUPERSLAB)) {
        free_not_small(p, kind);
        return;
    }
#if HAKMEM_CHECKED
    hak_ck_block_free(p); /* a live block of ours with its canary intact, or no return */
#endif
    hak_superslab *chunk = hak_chunk_of(p);
    hak_slab *s = hak_slab_of(chunk, p);
    hak_heap *h = hak_tls_heap;
    if (HAK_LIKELY(atomic_load_explicit(&s->owner, memory_order_relaxed) == h)) {
        if (HAK_UNLIKELY(!hak_slab_block_start(s, p))) hak_fatal_invalid_pointer("free", p);
        HAK_CHECK(s->used != 0, "a local free lands in a slab with blocks out");
        hak_block *b = p;
        b->next = s->free;
        s->free = b;
        hak_heap_count(&h->counters.frees);
        if (HAK_UNLIKELY(--s->used == 0 || s->aside == HAK_ASIDE_PARKED)) tiny_free_slow(h, s);
        return;
    }
    free_remote(s, p);
}

/* Usable bytes of a block hakmem handed out; aborts on a foreign pointer. */
size_t hak_usable_size(const void *p) {
    if (!p) return 0;
    uintptr_t a = (uintptr_t)p;
    unsigned kind = hak_region_kind(a - 1);
    if (kind == HAK_REGION_LARGE) return large_usable_size(p);
    if (kind != HAK_REGION_SUPERSLAB) hak_fatal_invalid_pointer("malloc_usable_size", p);
#if HAKMEM_CHECKED
    return hak_ck_block_usable(p, "malloc_usable_size"); /* the requested size: bytes past it are the canary */
#else
    hak_superslab *chunk = hak_chunk_of(p);
    hak_slab *s = hak_slab_of(chunk, p);
    if (!hak_state_live(atomic_load_explicit(&s->state, memory_order_relaxed)) || (const uint8_t *)p < s->data)
        hak_fatal_invalid_pointer("malloc_usable_size", p);
    /* An aligned allocation may point inside its block (never, today: small
     * aligned blocks are naturally aligned), so measure to the block's end. */
    size_t offset = (size_t)((const uint8_t *)p - s->data) % s->block_size;
    return s->block_size - offset;
#endif
}

void *hak_calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
#if HAKMEM_CHECKED
    bool small = total <= HAK_CK_SMALL_MAX;
#else
    bool small = total <= HAK_SMALL_MAX;
#endif
    if (!small) return large_alloc_counted(total, 0, true); /* zeroed by the large path, only if reused */
    void *p = hak_malloc(total);
    if (p) memset(p, 0, total);
    return p;
}

void *hak_realloc(void *p, size_t size) {
    if (!p) return hak_malloc(size);
    if (size == 0) {
        /* glibc frees and returns NULL; so do we (C23 leaves it undefined). */
        hak_free(p);
        return NULL;
    }
    uintptr_t a = (uintptr_t)p;
    unsigned kind = hak_region_kind(a - 1);
    size_t old_usable;
    if (kind == HAK_REGION_LARGE) {
        if (size > HAK_SMALL_MAX && large_realloc_in_place(p, size)) return p;
        old_usable = large_usable_size(p);
    } else {
#if HAKMEM_CHECKED
        if (kind != HAK_REGION_SUPERSLAB) hak_fatal_invalid_pointer("realloc", p);
        old_usable = hak_ck_block_usable(p, "realloc");
        /* The same rule over the room before the trailer; the canary moves. */
        size_t room = hak_ck_block_room(p);
        if (size <= room && (size > room / 2 || room <= 16)) {
            hak_ck_block_resize(p, size);
            return p;
        }
#else
        old_usable = hak_usable_size(p);
        /* In place when it fits and does not waste more than half the block. */
        if (size <= old_usable && (size > old_usable / 2 || old_usable <= 16)) return p;
#endif
    }
    void *q = hak_malloc(size);
    if (!q) return NULL; /* errno = ENOMEM, and p is untouched */
    memcpy(q, p, size < old_usable ? size : old_usable);
    if (kind == HAK_REGION_LARGE) {
        /* A large block realloc moved is usually a growing array: its old
         * mapping would not fit the next growth, so it is not worth keeping. */
        large_free(p, false);
        hak_stats_count_foreign_free();
    } else {
        hak_free(p);
    }
    return q;
}

/* Power-of-two alignment; callers validate. Small power-of-two classes are
 * naturally aligned up to 4 KiB (slab data starts page aligned), so an
 * aligned request is a plain request for a big enough power of two. */
void *hak_memalign(size_t alignment, size_t size) {
#if HAKMEM_CHECKED
    /* Every class from 16 bytes up is 16-byte aligned; beyond that, a power
     * of two that holds the request and its trailer. */
    if (alignment <= 16) return hak_malloc(size);
    if (alignment <= 4096 && size <= 4096) {
        size_t need = hak_ck_block_need(size) < alignment ? alignment : hak_ck_block_need(size);
        return checked_small_alloc(size, (size_t)1 << (64 - __builtin_clzl(need - 1)));
    }
#else
    if (alignment <= 16) return hak_malloc(size < alignment ? alignment : size);
    if (alignment <= 4096 && size <= 4096) {
        size_t need = size < alignment ? alignment : size;
        size_t pow2 = (size_t)1 << (64 - __builtin_clzl(need - 1));
        return small_alloc(pow2);
    }
#endif
    return large_alloc_counted(size, alignment, false);
}

void hak_collect(void) {
    hak_heap *h = hak_tls_heap;
    if (h != &hak_empty_heap) tiny_heap_collect(h);
    hak_os_release_pending(); /* releases the OS refused earlier are held memory too */
}
