/* large.c — blocks above HAK_SMALL_MAX: one 2 MiB-aligned mapping each, a header the region map finds, and a cache of freed mappings. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "trace.h"

#define LARGE_MAGIC 0x48414b4d4c415247ull /* "HAKMLARG" */
#define LARGE_HEADER 64u

/* Lives at the 2 MiB boundary at or below user - 1, which is what free()
 * computes from the pointer alone. */
typedef struct hak_large_header {
    uint64_t magic;
    uint8_t *map_base;
    size_t map_size;
    uint8_t *user;
#if HAKMEM_CHECKED
    size_t requested; /* the usable size; canary bytes from there to the mapping's end */
#endif
} hak_large_header;

_Static_assert(sizeof(hak_large_header) <= LARGE_HEADER, "header fits its slot");

static size_t page_round(size_t n) {
    size_t pg = hak_os_page_size();
    return (n + pg - 1) & ~(pg - 1);
}

static hak_large_header *header_of(const void *p) {
    return (hak_large_header *)(((uintptr_t)p - 1) & ~(uintptr_t)HAK_CHUNK_MASK);
}

#if HAKMEM_CHECKED
#define LARGE_CANARY 0xcau
/* How far back from a pointer's region a large block's header is looked for. */
#define LARGE_LOOKBACK_REGIONS 1024u

static uint8_t *map_end(const hak_large_header *h) {
    return h->map_base + h->map_size;
}

static void canary_set(hak_large_header *h, size_t requested) {
    h->requested = requested;
    memset(h->user + requested, LARGE_CANARY, (size_t)(map_end(h) - h->user) - requested);
}

static void canary_check(const hak_large_header *h, const char *op) {
    for (const uint8_t *b = h->user + h->requested; b < map_end(h); b++) {
        if (*b != LARGE_CANARY) {
            char detail[80];
            hak_format(detail, sizeof detail, "%zu B requested, byte %zu overwritten", h->requested,
                       (size_t)(b - h->user));
            hak_ck_report(HAK_CK_OVERFLOW, op, h->user, detail, HAK_CK_LARGE_CLASS, h->requested);
        }
    }
}

/* Only the header's region is marked in the region map, so a pointer far
 * into a big block finds it by walking back region by region. */
bool large_ck_lookup(const void *p, const uint8_t **user, size_t *requested) {
    uintptr_t region = ((uintptr_t)p - 1) & ~(uintptr_t)HAK_CHUNK_MASK;
    for (unsigned i = 0; i < LARGE_LOOKBACK_REGIONS && region != 0; i++, region -= HAK_CHUNK_SIZE) {
        unsigned kind = hak_region_kind(region);
        if (kind == HAK_REGION_SUPERSLAB) return false;
        if (kind != HAK_REGION_LARGE) continue;
        const hak_large_header *h = (const hak_large_header *)region;
        if (h->magic != LARGE_MAGIC || (const uint8_t *)p >= map_end(h)) return false;
        *user = h->user;
        *requested = h->requested;
        return true;
    }
    return false;
}
#endif

/*
 * The cache. A freed mapping keeps its pages resident for the next large
 * malloc: on a machine where a first touch costs tens of microseconds per
 * page, mapping afresh is what makes big buffers slow (glibc reuses its heap
 * for the same reason). Bounded in bytes and entries; a reused mapping much
 * bigger than asked for gives its tail back. The checked build has no cache,
 * so that a large block's address means one life only.
 */
/* 32 MiB: with 64, bench/large at one thread peaked at 1.60x mimalloc's RSS;
 * with 32, 1.35x, at 2.5x glibc's throughput (bench/run, 2026-11-29). */
#define LARGE_CACHE_ENTRIES 8
#define LARGE_CACHE_BYTES ((size_t)32 << 20)

#if !HAKMEM_CHECKED
typedef struct large_mapping {
    uint8_t *base;
    size_t size;
} large_mapping;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static large_mapping cache[LARGE_CACHE_ENTRIES]; /* oldest first; guarded by cache_lock */
static unsigned cache_count;
static _Atomic size_t cache_bytes;

static void cache_remove_locked(unsigned i) {
    atomic_store_explicit(&cache_bytes, atomic_load_explicit(&cache_bytes, memory_order_relaxed) - cache[i].size,
                          memory_order_relaxed);
    for (unsigned k = i + 1; k < cache_count; k++) cache[k - 1] = cache[k];
    cache_count--;
}

/* The smallest cached mapping that holds `need` bytes, trimmed to twice that. */
static uint8_t *cache_take(size_t need, size_t *size) {
    if (atomic_load_explicit(&cache_bytes, memory_order_relaxed) == 0) return NULL;
    pthread_mutex_lock(&cache_lock);
    unsigned best = cache_count;
    for (unsigned i = 0; i < cache_count; i++) {
        if (cache[i].size >= need && (best == cache_count || cache[i].size < cache[best].size)) best = i;
    }
    large_mapping m = {NULL, 0};
    if (best < cache_count) {
        m = cache[best];
        cache_remove_locked(best);
    }
    pthread_mutex_unlock(&cache_lock);
    if (m.base && m.size / 2 > need) {
        size_t keep = (2 * need + HAK_CHUNK_MASK) & ~(size_t)HAK_CHUNK_MASK;
        if (keep < m.size) {
            hak_os_unmap(m.base + keep, m.size - keep);
            m.size = keep;
        }
    }
    *size = m.size;
    return m.base;
}

/* Keeps a freed mapping, evicting the oldest to make room; false if it does not belong in the cache. */
static bool cache_put(uint8_t *base, size_t size) {
    if (size > LARGE_CACHE_BYTES / 2) return false;
    large_mapping evicted[LARGE_CACHE_ENTRIES];
    unsigned n_evicted = 0;
    pthread_mutex_lock(&cache_lock);
    while (cache_count == LARGE_CACHE_ENTRIES ||
           atomic_load_explicit(&cache_bytes, memory_order_relaxed) + size > LARGE_CACHE_BYTES) {
        evicted[n_evicted++] = cache[0];
        cache_remove_locked(0);
    }
    cache[cache_count++] = (large_mapping){base, size};
    atomic_store_explicit(&cache_bytes, atomic_load_explicit(&cache_bytes, memory_order_relaxed) + size,
                          memory_order_relaxed);
    pthread_mutex_unlock(&cache_lock);
    for (unsigned i = 0; i < n_evicted; i++) hak_os_unmap(evicted[i].base, evicted[i].size);
    return true;
}

size_t large_cache_flush(void) {
    large_mapping all[LARGE_CACHE_ENTRIES];
    pthread_mutex_lock(&cache_lock);
    unsigned n = cache_count;
    for (unsigned i = 0; i < n; i++) all[i] = cache[i];
    cache_count = 0;
    atomic_store_explicit(&cache_bytes, 0, memory_order_relaxed);
    pthread_mutex_unlock(&cache_lock);
    for (unsigned i = 0; i < n; i++) hak_os_unmap(all[i].base, all[i].size);
    return n;
}

size_t large_cache_bytes(void) {
    return atomic_load_explicit(&cache_bytes, memory_order_relaxed);
}
#else
static uint8_t *cache_take(size_t need, size_t *size) {
    (void)need;
    *size = 0;
    return NULL;
}
static bool cache_put(uint8_t *base, size_t size) {
    (void)base;
    (void)size;
    return false;
}
size_t large_cache_flush(void) {
    return 0;
}
size_t large_cache_bytes(void) {
    return 0;
}
#endif

/* The large path's refusal is reported like a chunk's: superslab_alloc_fail
 * with the large class, then (by the caller) oom. */
static void *large_refused(const hak_os_failure *why) {
    hak_count(HAK_NUM_CLASSES, HAK_CTR_FAILURES);
    hak_count(HAK_NUM_CLASSES, HAK_CTR_OOMS);
    HAK_TRACE(superslab_alloc_fail, HAKMEM_TP_LARGE_CLASS, 0, hak_tls_heap->refill_seq, why->bytes, why->err,
              (int)why->reason);
    errno = ENOMEM;
    return NULL;
}

void *large_alloc(size_t size, size_t align, bool zeroed) {
    hak_ensure_init();
    if (align < LARGE_HEADER) align = LARGE_HEADER;
    size_t map_align = align > HAK_CHUNK_SIZE ? align : HAK_CHUNK_SIZE;
    size_t offset = align; /* user pointer = map_base + offset */
    hak_os_failure why;
    if (size > PTRDIFF_MAX - offset - hak_os_page_size()) {
        why = (hak_os_failure){.reason = HAK_FAIL_OS, .err = ENOMEM, .bytes = size};
        return large_refused(&why);
    }
    size_t map_size = page_round(offset + size);
    uint8_t *base = NULL;
    if (map_align == HAK_CHUNK_SIZE) {
        size_t cached_size;
        base = cache_take(map_size, &cached_size);
        if (base) {
            map_size = cached_size;
            /* Fresh mappings are zero; a reused one is only if we make it so. */
            if (zeroed) memset(base + offset, 0, size);
        }
    }
    if (!base) {
        base = hak_os_map(map_size, map_align, &why);
        if (base && map_size >= HAK_CHUNK_SIZE) hak_os_advise_huge(base, map_size & ~(size_t)HAK_CHUNK_MASK);
    }
    if (!base && superslab_reclaim_empty() > 0) base = hak_os_map(map_size, map_align, &why);
    if (!base) return large_refused(&why);
    uint8_t *user = base + offset;
    hak_large_header *h = header_of(user);
    h->magic = LARGE_MAGIC;
    h->map_base = base;
    h->map_size = map_size;
    h->user = user;
#if HAKMEM_CHECKED
    canary_set(h, size);
#endif
    hak_region_set((uintptr_t)h, HAK_REGION_LARGE);
    return user;
}

static hak_large_header *checked_header(const void *p, const char *op) {
    hak_large_header *h = header_of(p);
    if (h->magic != LARGE_MAGIC || h->user != p) hak_fatal_invalid_pointer(op, p);
    return h;
}

bool large_owns(const void *p) {
    hak_large_header *h = header_of(p);
    return h->magic == LARGE_MAGIC && h->user == p;
}

void large_free(void *p, bool keep_mapping) {
    hak_large_header *h = checked_header(p, "free");
#if HAKMEM_CHECKED
    canary_check(h, "free");
    hak_ck_large_freed(p, h->requested); /* its mapping goes: a second free is known by address */
#endif
    uint8_t *base = h->map_base;
    size_t size = h->map_size;
    h->magic = 0;
    hak_region_set((uintptr_t)h, HAK_REGION_NONE);
    if (!keep_mapping || !cache_put(base, size)) hak_os_unmap(base, size);
}

size_t large_usable_size(const void *p) {
    hak_large_header *h = checked_header(p, "malloc_usable_size");
#if HAKMEM_CHECKED
    return h->requested;
#else
    return h->map_size - (size_t)(h->user - h->map_base);
#endif
}

/* Returns p when the block now holds `size` bytes without moving, else NULL. */
void *large_realloc_in_place(void *p, size_t size) {
    hak_large_header *h = checked_header(p, "realloc");
#if HAKMEM_CHECKED
    canary_check(h, "realloc");
#endif
    size_t offset = (size_t)(h->user - h->map_base);
    if (size > PTRDIFF_MAX - offset - hak_os_page_size()) return NULL;
    size_t need = page_round(offset + size);
    if (need <= h->map_size) {
        /* Shrinking by at least a quarter gives the tail back to the OS. */
        if (need < h->map_size - h->map_size / 4) {
            hak_os_unmap(h->map_base + need, h->map_size - need);
            h->map_size = need;
        }
#if HAKMEM_CHECKED
        canary_set(h, size);
#endif
        return p;
    }
    if (hak_os_grow_in_place(h->map_base, h->map_size, need)) {
        h->map_size = need;
#if HAKMEM_CHECKED
        canary_set(h, size);
#endif
        return p;
    }
    return NULL;
}
