/* large.c — blocks above HAK_SMALL_MAX: one 2 MiB-aligned mapping each, with a header the region map finds. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "trace.h"

_Static_assert(sizeof(hak_large_header) <= HAK_LARGE_HEADER, "header fits its slot");

static size_t page_round(size_t n) {
    size_t pg = hak_os_page_size();
    return (n + pg - 1) & ~(pg - 1);
}

/* ---- the checked build: canary bytes from the requested end to the mapping's end ---- */
#define LARGE_CANARY 0xcau

static uint8_t *map_end(const hak_large_header *h) {
    return h->map_base + h->map_size;
}

static void canary_set(hak_large_header *h, size_t requested) {
    if (!HAKMEM_CHECKED) return;
    h->requested = requested;
    memset(h->user + requested, LARGE_CANARY, (size_t)(map_end(h) - h->user) - requested);
}

static void canary_check(const hak_large_header *h, const char *op) {
    if (!HAKMEM_CHECKED) return;
    for (const uint8_t *b = h->user + h->requested; b < map_end(h); b++) {
        if (*b != LARGE_CANARY) {
            char detail[80];
            hak_format(detail, sizeof detail, "%zu B requested, byte %zu overwritten", h->requested,
                       (size_t)(b - h->user));
            hak_ck_report(HAK_CK_OVERFLOW, op, h->user, detail, HAK_CK_LARGE_CLASS, h->requested);
        }
    }
}

/* The large path's refusal is reported like a chunk's: superslab_alloc_fail
 * with the large class, each reclaim-and-retry after it, then (if no retry
 * mapped it) the caller's oom. */
static void large_refusal_traced(const hak_os_failure *why) {
    hak_count(hak_context_arena(), HAK_NUM_CLASSES, HAK_CTR_failures);
    uint64_t seq = hak_tls.heap->refill_seq; /* read before HAK_TRACE, which hides the heap (trace.h) */
    HAK_TRACE_STACK(seq, 0);
    HAK_TRACE(superslab_alloc_fail, HAKMEM_TP_LARGE_CLASS, 0, seq, why->bytes, why->err,
              (int)why->reason);
}

static bool large_retry(const hak_reclaim_ticket *t, bool again) {
    uint64_t seq = hak_tls.heap->refill_seq;
    HAK_TRACE(reclaim_retry, HAKMEM_TP_LARGE_CLASS, 0, seq, t->tries, t->outcome, t->given_back, t->stolen);
    return again;
}

static void *large_refused(void) {
    hak_count(hak_context_arena(), HAK_NUM_CLASSES, HAK_CTR_ooms);
    errno = ENOMEM;
    return NULL;
}

/* Huge pages from 2 MiB up, over the whole mapping: advice on a part would split it into two kernel mappings
 * (VMAs), and mremap, which the growth of a realloc needs, fails (EFAULT) on a range spanning two. */
static void advise_huge(unsigned arena, uint8_t *base, size_t size) {
    if (size >= HAK_CHUNK_SIZE) hak_os_advise_huge(arena, base, size);
}

/* A mapping grew from old_size: the huge-page advice again over all of it, and its old last page (the page the
 * header's offset pushes past a 2 MiB boundary) sits in 2 MiB that the growth now fills, and as a small page it
 * keeps them from a huge page, so the array's next writes fault 511 times there. Collapsed now, they fault never. */
static void grown_huge(unsigned arena, uint8_t *base, size_t old_size, size_t new_size) {
    advise_huge(arena, base, new_size);
    size_t region = old_size & ~(size_t)HAK_CHUNK_MASK;
    if (new_size < HAK_CHUNK_SIZE || region == old_size || region + HAK_CHUNK_SIZE > new_size) return;
    hak_os_collapse_huge(arena, base + region);
}

/* Mapped for the program's large blocks in use: the census's figure and the cache's measure (an atomic add beside
 * the system calls of a large block's life). */
static _Atomic size_t program_large_bytes;

size_t large_committed_bytes(void) {
    return atomic_load_explicit(&program_large_bytes, memory_order_relaxed);
}

static void large_count(unsigned arena, size_t bytes, bool add) {
    if (arena != HAK_ARENA_PROGRAM) return;
    if (add) atomic_fetch_add_explicit(&program_large_bytes, bytes, memory_order_relaxed);
    else atomic_fetch_sub_explicit(&program_large_bytes, bytes, memory_order_relaxed);
}

/* A cached mapping smaller than the block, grown to `need` in place or by moving its pages (mremap): its resident
 * pages serve the block's start. NULL, the mapping given back, when neither growth works. */
static uint8_t *grow_cached(unsigned arena, uint8_t *base, size_t size, size_t need) {
    uint8_t *grown = hak_os_grow_in_place(arena, base, size, need) ? base
                                                                   : hak_os_move_grow(arena, base, size, need, HAK_CHUNK_SIZE);
    if (!grown) {
        hak_os_unmap(arena, base, size);
        return NULL;
    }
    grown_huge(arena, grown, size, need);
    return grown;
}

/* A mapping grown from old_size to size: its fresh tail, from the first 2 MiB boundary past old_size, filled with
 * the pages of other cached mappings (the program's only: only they are cached). Returns how many bytes from base
 * may hold old data. */
static size_t fill_grown(unsigned arena, uint8_t *base, size_t old_size, size_t size) {
    if (arena != HAK_ARENA_PROGRAM) return old_size;
    size_t from = (old_size + HAK_CHUNK_MASK) & ~(size_t)HAK_CHUNK_MASK;
    size_t filled = from < size ? large_cache_fill(base + from, size - from) : 0;
    return filled ? from + filled : old_size;
}

void *large_alloc(size_t size, size_t align, bool zeroed) {
    hak_ensure_init();
    if (align < HAK_LARGE_HEADER) align = HAK_LARGE_HEADER;
    size_t map_align = align > HAK_CHUNK_SIZE ? align : HAK_CHUNK_SIZE;
    size_t offset = align; /* user pointer = map_base + offset */
    hak_os_failure why;
    if (size > PTRDIFF_MAX - offset - hak_os_page_size()) {
        why = (hak_os_failure){.reason = HAK_FAIL_OS, .err = ENOMEM, .bytes = size};
        large_refusal_traced(&why);
        return large_refused();
    }
    size_t map_size = page_round(offset + size);
    uint8_t *base = NULL;
    unsigned arena = hak_context_arena();
    if (map_align == HAK_CHUNK_SIZE && arena == HAK_ARENA_PROGRAM) {
        size_t cached_size = 0;
        base = large_cache_take(map_size, &cached_size);
        size_t reused = cached_size;
        if (base && cached_size < map_size) {
            base = grow_cached(arena, base, cached_size, map_size);
            if (base) reused = fill_grown(arena, base, cached_size, map_size);
        } else if (base) {
            map_size = cached_size;
        }
        /* Fresh pages are zero; reused ones are only if we make them so. */
        if (base && zeroed) memset(base + offset, 0, reused - offset < size ? reused - offset : size);
    }
    if (!base) {
        base = hak_os_map(arena, map_size, map_align, &why);
        if (base) advise_huge(arena, base, map_size);
    }
    if (!base) {
        large_refusal_traced(&why);
        hak_heap *self = hak_tls.heap != &hak_empty_heap ? hak_tls.heap : NULL;
        for (hak_reclaim_ticket t = {0}; !base && large_retry(&t, hak_reclaim_retry(self, &t));)
            base = hak_os_map(arena, map_size, map_align, &why);
        if (!base) return large_refused();
    }
    uint8_t *user = base + offset;
    hak_large_header *h = hak_large_header_of(user);
    h->magic = HAK_LARGE_MAGIC;
    h->map_base = base;
    h->map_size = map_size;
    h->user = user;
    h->arena = arena;
    large_count(arena, map_size, true);
    canary_set(h, size);
    hak_region_set((uintptr_t)h, HAK_REGION_LARGE);
    return user;
}

hak_large_header *large_block(const void *p) {
    hak_large_header *h = hak_large_header_of(p);
    return h->magic == HAK_LARGE_MAGIC && h->user == p ? h : NULL;
}

void large_free(hak_large_header *h, bool keep_mapping) {
    canary_check(h, "free");
    hak_ck_large_freed(h->user, h->requested);
    uint8_t *base = h->map_base;
    size_t size = h->map_size;
    h->magic = 0;
    hak_region_set((uintptr_t)h, HAK_REGION_NONE);
    unsigned arena = h->arena;
    large_count(arena, size, false);
    if (!keep_mapping || arena != HAK_ARENA_PROGRAM || !large_cache_put(base, size, large_committed_bytes()))
        hak_os_unmap(arena, base, size);
}

size_t large_usable_size(const hak_large_header *h) {
    return HAKMEM_CHECKED ? h->requested : h->map_size - (size_t)(h->user - h->map_base);
}

/* A block that realloc grows is likely to grow again: its mapping grows to a 2 MiB multiple, so that the next
 * growth's fresh range begins at a 2 MiB boundary, where cached pages fill it whole (fill_grown) and huge pages can
 * fault in; from a page multiple, every doubling of bench/grow left almost 2 MiB to fault in afresh. The checked
 * build keeps the page multiple: its canary fills the mapping's end. */
static size_t regrown_size(size_t need) {
    return HAKMEM_CHECKED ? need : (need + HAK_CHUNK_MASK) & ~(size_t)HAK_CHUNK_MASK;
}

/* Only blocks whose header is the mapping's start (alignment up to 2 MiB) move: the header moves with the pages,
 * so the new block is at the same offset in a mapping aligned the same. */
void *large_grow_moved(hak_large_header *h, size_t size) {
    size_t offset = (size_t)(h->user - h->map_base);
    if ((uint8_t *)h != h->map_base || size > PTRDIFF_MAX - offset - hak_os_page_size()) return NULL;
    size_t need = regrown_size(page_round(offset + size)), old_size = h->map_size;
    unsigned arena = h->arena;
    uint8_t *old_base = h->map_base;
    const uint8_t *old_user = h->user;
    size_t old_requested = h->requested;
    /* Out of the map before the move: once mremap has taken the old range away, another thread may map it
     * and set the region for a block of its own, which a later reset would wipe (its free: invalid pointer). */
    hak_region_set((uintptr_t)old_base, HAK_REGION_NONE);
    uint8_t *base = hak_os_move_grow(arena, old_base, old_size, need, HAK_CHUNK_SIZE);
    if (!base) {
        hak_region_set((uintptr_t)old_base, HAK_REGION_LARGE);
        return NULL;
    }
    hak_ck_large_freed(old_user, old_requested); /* the old pointer is a freed block now, as after a copy */
    h = (hak_large_header *)base;
    h->map_base = base;
    h->map_size = need;
    h->user = base + offset;
    large_count(arena, need - old_size, true);
    grown_huge(arena, base, old_size, need);
    fill_grown(arena, base, old_size, need);
    canary_set(h, size);
    hak_region_set((uintptr_t)h, HAK_REGION_LARGE);
    return h->user;
}

bool large_resize_in_place(hak_large_header *h, size_t size) {
    canary_check(h, "realloc");
    size_t offset = (size_t)(h->user - h->map_base);
    if (size > PTRDIFF_MAX - offset - hak_os_page_size()) return false;
    size_t need = page_round(offset + size);
    if (need <= h->map_size) {
        /* Shrinking by at least a quarter gives the tail back to the OS. */
        if (need < h->map_size - h->map_size / 4) {
            hak_os_unmap(h->arena, h->map_base + need, h->map_size - need);
            large_count(h->arena, h->map_size - need, false);
            h->map_size = need;
        }
    } else {
        need = regrown_size(need);
        if (!hak_os_grow_in_place(h->arena, h->map_base, h->map_size, need)) return false;
        large_count(h->arena, need - h->map_size, true);
        grown_huge(h->arena, h->map_base, h->map_size, need);
        fill_grown(h->arena, h->map_base, h->map_size, need);
        h->map_size = need;
    }
    canary_set(h, size);
    return true;
}
