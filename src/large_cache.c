/* large_cache.c — freed large mappings kept for the next large malloc, bounded in entries and bytes. */
#include "internal.h"

/*
 * A freed mapping keeps its pages resident for the next large malloc: on a
 * machine where a first touch costs tens of microseconds per page, mapping
 * afresh is what makes big buffers slow (glibc reuses its heap for the same
 * reason). Bounded in bytes and entries; a reused mapping much bigger than
 * asked for gives its tail back. The checked build keeps no cache, so that a
 * large block's address means one life only.
 */
/* 32 MiB: with 64, bench/large at one thread peaked at 1.60x mimalloc's RSS;
 * with 32, 1.35x, at 2.5x glibc's throughput (bench/run, 2026-11-29). */
#define LARGE_CACHE_ENTRIES 8
#define LARGE_CACHE_BYTES ((size_t)32 << 20)

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
uint8_t *large_cache_take(size_t need, size_t *size) {
    if (HAKMEM_CHECKED || atomic_load_explicit(&cache_bytes, memory_order_relaxed) == 0) return NULL;
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
            hak_os_unmap(HAK_ARENA_PROGRAM, m.base + keep, m.size - keep);
            m.size = keep;
        }
    }
    *size = m.size;
    return m.base;
}

/* Evicts the oldest to make room. */
bool large_cache_put(uint8_t *base, size_t size) {
    if (HAKMEM_CHECKED || size > LARGE_CACHE_BYTES / 2) return false;
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
    for (unsigned i = 0; i < n_evicted; i++) hak_os_unmap(HAK_ARENA_PROGRAM, evicted[i].base, evicted[i].size);
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
    for (unsigned i = 0; i < n; i++) hak_os_unmap(HAK_ARENA_PROGRAM, all[i].base, all[i].size);
    return n;
}

size_t large_cache_bytes(void) {
    return atomic_load_explicit(&cache_bytes, memory_order_relaxed);
}
