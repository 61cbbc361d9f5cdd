/* large_cache.c — freed large mappings kept for the next large malloc: sized by what the program frees, decaying. */
#include "internal.h"

/*
 * A freed mapping keeps its pages resident for the next large malloc: on a
 * machine where a first touch costs tens of microseconds per page, mapping
 * afresh is what makes big buffers slow (glibc reuses its heap for the same
 * reason). Bounded in bytes and entries; a reused mapping much bigger than
 * asked for is split, one smaller than asked for grown and filled with the
 * pages of others. The checked build keeps no cache, so that a large block's
 * address means one life only.
 */
/*
 * Sized by what the program frees and holds: it may hold twice the largest
 * mapping freed in the last DECAY_NS or as much as the program's large blocks
 * in use, whichever is more, at least FLOOR and at most CEILING (a quarter of
 * the cap, under one), so a program cycling 25 MiB buffers keeps two of them
 * where a fixed 32 MiB kept none (16 MiB was the largest it took). The blocks
 * in use count because each thread frees into the one cache: bench/large at 4
 * threads (8 blocks of 1..32 MiB live) faulted in 164 k pages for a 249 MiB
 * peak when only the largest block sized it; sized by both, 105 k, 0.87x the
 * wall time in 1.10x the peak RSS, and 1 or 2 threads are unchanged (the
 * largest still rules there).
 * CEILING: 256 MiB kept no buffer of bench/grow's (256 MiB, doubled from
 * 256 KiB by realloc), so each one faulted in all its pages afresh; with 1 GiB
 * the last buffer's pages fill the next one's growth: 0.10x the wall time at
 * one thread, in 1.02x the peak RSS (2026-12-07). Mappings
 * unused for DECAY_NS go back to the OS at the next cache call or hak_collect;
 * a refusal takes them all (reclaim.c); while cached they stay charged.
 * FLOOR: with 64 MiB, bench/large at one thread peaked at 1.60x mimalloc's
 * RSS; with 32, 1.35x, at 2.5x glibc's throughput (bench/run, 2026-11-29).
 */
#define LARGE_CACHE_ENTRIES 16
#define LARGE_CACHE_FLOOR ((size_t)32 << 20)
#define LARGE_CACHE_CEILING ((size_t)1024 << 20)
#define DECAY_NS (2ull * 1000 * 1000 * 1000)
#define LARGE_FILL_PIECES 4 /* each adds a kernel mapping to the block */

typedef struct large_mapping {
    uint8_t *base;
    size_t size;
    uint64_t cached_ns; /* when it was put */
} large_mapping;

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static large_mapping cache[LARGE_CACHE_ENTRIES]; /* oldest first; guarded by cache_lock */
static unsigned cache_count;
static _Atomic size_t cache_bytes;
static size_t recent_max;     /* the largest mapping put since recent_since; guarded by cache_lock */
static uint64_t recent_since;

static void cache_remove_locked(unsigned i) {
    atomic_store_explicit(&cache_bytes, atomic_load_explicit(&cache_bytes, memory_order_relaxed) - cache[i].size,
                          memory_order_relaxed);
    for (unsigned k = i + 1; k < cache_count; k++) cache[k - 1] = cache[k];
    cache_count--;
}

/* Moves the mappings unused for DECAY_NS to `out` (unmapped by the caller, after the lock); how many. */
static unsigned decay_locked(uint64_t now, large_mapping *out) {
    unsigned n = 0;
    while (cache_count && now - cache[0].cached_ns >= DECAY_NS) {
        out[n++] = cache[0];
        cache_remove_locked(0);
    }
    return n;
}

static void unmap_all(const large_mapping *m, unsigned n) {
    for (unsigned i = 0; i < n; i++) hak_os_unmap(HAK_ARENA_PROGRAM, m[i].base, m[i].size);
}

/* `live`: the program's large mappings in use. */
static size_t budget_locked(uint64_t now, size_t size, size_t live) {
    if (now - recent_since >= DECAY_NS) {
        recent_max = 0;
        recent_since = now;
    }
    if (size > recent_max) recent_max = size;
    size_t ceiling = LARGE_CACHE_CEILING;
    if (hak_opt.max_memory && hak_opt.max_memory / 4 < ceiling) ceiling = (size_t)hak_opt.max_memory / 4;
    size_t want = 2 * recent_max > live ? 2 * recent_max : live;
    return want < LARGE_CACHE_FLOOR ? LARGE_CACHE_FLOOR : want > ceiling ? ceiling : want;
}

/* The first `bytes` of cache[i] (whole 2 MiB ranges, fewer than it has), split off: the rest stays cached. */
static large_mapping split_front_locked(unsigned i, size_t bytes) {
    large_mapping front = {cache[i].base, bytes, 0};
    cache[i].base += bytes;
    cache[i].size -= bytes;
    atomic_store_explicit(&cache_bytes, atomic_load_explicit(&cache_bytes, memory_order_relaxed) - bytes,
                          memory_order_relaxed);
    return front;
}

/* The smallest cached mapping that holds `need` bytes, split when it holds more than twice that: the rest, from the
 * first 2 MiB boundary past `need`, stays cached with its pages, where unmapping it made the next bigger block fault
 * them in again (bench_large at 1 thread: 1.7x as fast, 1.4x the peak RSS, still under tcmalloc's). It was split at
 * twice `need`, but the block's resident slack then served no one: bench/grow's 3 MiB neighbours held 8 MiB each.
 * With none, the largest one, *size < need: the caller grows it, and only the pages it lacks fault in (with blocks of random sizes, a fresh mapping for every block larger than the cached
 * ones faulted all its pages in again). */
uint8_t *large_cache_take(size_t need, size_t *size) {
    if (HAKMEM_CHECKED || atomic_load_explicit(&cache_bytes, memory_order_relaxed) == 0) return NULL;
    large_mapping old[LARGE_CACHE_ENTRIES];
    pthread_mutex_lock(&cache_lock);
    unsigned n_old = decay_locked(hak_os_now_ns(), old);
    unsigned best = cache_count, largest = cache_count;
    for (unsigned i = 0; i < cache_count; i++) {
        if (cache[i].size >= need && (best == cache_count || cache[i].size < cache[best].size)) best = i;
        if (largest == cache_count || cache[i].size > cache[largest].size) largest = i;
    }
    if (best == cache_count) best = largest;
    large_mapping m = {NULL, 0, 0};
    size_t keep = (need + HAK_CHUNK_MASK) & ~(size_t)HAK_CHUNK_MASK;
    if (best < cache_count && cache[best].size / 2 > need && keep < cache[best].size) {
        m = split_front_locked(best, keep);
    } else if (best < cache_count) {
        m = cache[best];
        cache_remove_locked(best);
    }
    pthread_mutex_unlock(&cache_lock);
    unmap_all(old, n_old);
    *size = m.size;
    return m.base;
}

/* Moves cached mappings, largest first, over [dst, dst + len), the unused tail of a mapping just grown for a block
 * (dst 2 MiB-aligned); the bytes from dst to the end of the last one moved, 0 for none.
 * With blocks of random sizes the next block is often bigger than every cached mapping: growing the largest alone
 * faulted the rest in afresh while the other cached pages aged out unused (bench/large, one thread: 385 MiB faulted
 * in for a 93 MiB peak in a model of the cache; gathered, 78 MiB for 78). Only whole 2 MiB ranges move, to 2 MiB
 * offsets, so that huge pages move whole and the block's fresh ranges can still fault in as huge pages (a partial
 * one made bench/grow fault 80 k small pages in place of 156 huge ones); a piece's rest stays cached. The block is
 * then several kernel mappings (os.c grows those too). */
size_t large_cache_fill(uint8_t *dst, size_t len) {
    if (HAKMEM_CHECKED || atomic_load_explicit(&cache_bytes, memory_order_relaxed) == 0) return 0;
    large_mapping piece[LARGE_FILL_PIECES];
    size_t at[LARGE_FILL_PIECES];
    unsigned n = 0;
    size_t off = 0;
    pthread_mutex_lock(&cache_lock);
    while (n < LARGE_FILL_PIECES && cache_count && off < len) {
        unsigned largest = 0;
        for (unsigned i = 1; i < cache_count; i++)
            if (cache[i].size > cache[largest].size) largest = i;
        large_mapping m = cache[largest];
        size_t whole = (m.size < len - off ? m.size : len - off) & ~(size_t)HAK_CHUNK_MASK;
        if (whole == 0) break;
        if (whole < m.size) m = split_front_locked(largest, whole);
        else cache_remove_locked(largest);
        piece[n] = m;
        at[n++] = off;
        off += m.size;
    }
    pthread_mutex_unlock(&cache_lock);
    size_t filled = 0;
    for (unsigned i = 0; i < n; i++) {
        if (hak_os_move_into(HAK_ARENA_PROGRAM, piece[i].base, piece[i].size, dst + at[i]))
            filled = at[i] + piece[i].size;
        else if (!large_cache_put(piece[i].base, piece[i].size, 0)) /* refused: back, sized by its largest */
            hak_os_unmap(HAK_ARENA_PROGRAM, piece[i].base, piece[i].size);
    }
    return filled;
}

/* Evicts the oldest to make room. */
bool large_cache_put(uint8_t *base, size_t size, size_t live) {
    if (HAKMEM_CHECKED) return false;
    large_mapping evicted[LARGE_CACHE_ENTRIES];
    uint64_t now = hak_os_now_ns();
    pthread_mutex_lock(&cache_lock);
    size_t budget = budget_locked(now, size, live);
    if (size > budget / 2) {
        pthread_mutex_unlock(&cache_lock);
        return false;
    }
    unsigned n_evicted = decay_locked(now, evicted);
    while (cache_count == LARGE_CACHE_ENTRIES ||
           atomic_load_explicit(&cache_bytes, memory_order_relaxed) + size > budget) {
        evicted[n_evicted++] = cache[0];
        cache_remove_locked(0);
    }
    cache[cache_count++] = (large_mapping){base, size, now};
    atomic_store_explicit(&cache_bytes, atomic_load_explicit(&cache_bytes, memory_order_relaxed) + size,
                          memory_order_relaxed);
    pthread_mutex_unlock(&cache_lock);
    unmap_all(evicted, n_evicted);
    return true;
}

void large_cache_decay(void) {
    if (atomic_load_explicit(&cache_bytes, memory_order_relaxed) == 0) return;
    large_mapping old[LARGE_CACHE_ENTRIES];
    pthread_mutex_lock(&cache_lock);
    unsigned n = decay_locked(hak_os_now_ns(), old);
    pthread_mutex_unlock(&cache_lock);
    unmap_all(old, n);
}

size_t large_cache_flush(void) {
    large_mapping all[LARGE_CACHE_ENTRIES];
    pthread_mutex_lock(&cache_lock);
    unsigned n = cache_count;
    for (unsigned i = 0; i < n; i++) all[i] = cache[i];
    cache_count = 0;
    atomic_store_explicit(&cache_bytes, 0, memory_order_relaxed);
    pthread_mutex_unlock(&cache_lock);
    unmap_all(all, n);
    return n;
}

size_t large_cache_bytes(void) {
    return atomic_load_explicit(&cache_bytes, memory_order_relaxed);
}
