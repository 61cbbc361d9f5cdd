/* sampler.c — (trace build) the heap profile: allocations sampled by bytes (HAKMEM_TRACE_SAMPLE), and their frees. */
#include <math.h>

#include "internal.h"
#include "options.h"
#include "trace.h"

#if HAK_SAMPLING /* else the heap profile is compiled out (internal.h) */

/*
 * Sample points fall on the bytes a thread allocates as a Poisson process of
 * mean interval S: the gap to the next one is exponential, drawn afresh after
 * each sampled block (the process has no memory). A block of n bytes is then
 * sampled with probability 1 - exp(-n/S), whatever its neighbours, so the
 * analysis can weigh each sample by n / (1 - exp(-n/S)) and large blocks count
 * in proportion to their bytes (as tcmalloc's heap profiler does).
 *
 * The blocks sampled and still live are in a table the free path consults,
 * for a small block only when its slab's filter of live samples has the
 * block's bit (hak_slab.sampled, on the line the free reads anyway): SLOT_PROBE slots per hash, claimed and released by compare-and-swap, so a
 * free reads at most two cache lines and never takes a lock (a fork child
 * cannot find one held). Entries never move; a released slot is a tombstone
 * until a sample reuses it. A sample that finds its slots taken is not traced:
 * 65 536 live samples are 32 GiB of live heap at the default 512 KiB.
 */

#define TABLE_SLOTS (1u << 16)
#define SLOT_PROBE 8
#define SLOT_EMPTY ((uintptr_t)0)
#define SLOT_RELEASED ((uintptr_t)1)

typedef struct sample_slot {
    _Atomic uintptr_t block;
    uint64_t size; /* written by the sampling thread before malloc returns; read by the block's free */
} sample_slot;

_Atomic uint64_t hak_samples_live;
static sample_slot *_Atomic table;
static HAK_TLS uint64_t rng_state;

static uint64_t next_random(void) {
    if (!rng_state) rng_state = hak_os_now_ns() ^ ((uint64_t)(uintptr_t)&rng_state << 17) ^ (uint64_t)hak_gettid();
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The bytes to the next sample point: exponential with mean `mean`, at least 1. */
static int64_t next_interval(uint64_t mean) {
    double u = ((double)(next_random() >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double gap = -log(u) * (double)mean;
    return gap < 1.0 ? 1 : gap > 0x1.0p62 ? INT64_MAX : (int64_t)gap;
}

static sample_slot *table_get(void) {
    sample_slot *t = atomic_load_explicit(&table, memory_order_acquire);
    if (t) return t;
    hak_os_failure why = {.reason = HAK_FAIL_NONE};
    sample_slot *made = hak_os_map_metadata(HAK_ARENA_TRACER, TABLE_SLOTS * sizeof(sample_slot), &why);
    if (!made) return NULL;
    if (!atomic_compare_exchange_strong_explicit(&table, &t, made, memory_order_acq_rel, memory_order_acquire))
        return t; /* another thread's came first; ours stays mapped (a few pages of the tracer's, once) */
    return made;
}

static unsigned slot_of(const void *p) {
    return (unsigned)(((uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull) >> 48) & (TABLE_SLOTS - 1);
}

/* The slab a small block starts in, whose `sampled` count lets its free skip the table; NULL for a large block. */
static hak_slab *slab_counting(const void *p) {
    if (hak_region_kind((uintptr_t)p - 1) != HAK_REGION_SUPERSLAB) return NULL;
    return hak_slab_of(hak_chunk_of(p), p);
}

/* One sample more (or less) in the slab, its filter bit set; the filter is cleared with the last sample, in the
 * same exchange, so that no sample can lose its bit. A slab holding 65 535 samples keeps its word full for good:
 * every free in it looks up, which stays right. */
#define SAMPLED_COUNT 0xffffu
static void slab_count(hak_slab *slab, const void *p, bool more) {
    uint32_t seen = atomic_load_explicit(&slab->sampled, memory_order_relaxed), next;
    do {
        uint32_t count = seen & SAMPLED_COUNT;
        if (count == SAMPLED_COUNT) return;
        if (more) next = (seen | hak_sample_filter_bit(p)) + 1;
        else next = count == 1 ? 0 : seen - 1;
    } while (!atomic_compare_exchange_weak_explicit(&slab->sampled, &seen, next, memory_order_relaxed,
                                                    memory_order_relaxed));
}

static bool table_insert(const void *p, uint64_t size) {
    sample_slot *t = table_get();
    if (!t) return false;
    unsigned at = slot_of(p);
    for (unsigned i = 0; i < SLOT_PROBE; i++) {
        sample_slot *s = &t[(at + i) & (TABLE_SLOTS - 1)];
        uintptr_t seen = atomic_load_explicit(&s->block, memory_order_relaxed);
        if (seen != SLOT_EMPTY && seen != SLOT_RELEASED) continue;
        if (atomic_compare_exchange_strong_explicit(&s->block, &seen, (uintptr_t)p, memory_order_relaxed,
                                                    memory_order_relaxed)) {
            s->size = size;
            atomic_fetch_add_explicit(&hak_samples_live, 1, memory_order_relaxed);
            hak_slab *slab = slab_counting(p);
            if (slab) slab_count(slab, p, true); /* before malloc returns p: no free of it can miss it */
            return true;
        }
    }
    return false;
}

void *hak_sample_taken(void *p, size_t size, unsigned class_idx) {
    uint64_t mean = hak_opt.trace_sample;
    if (!mean) { /* off: no further sample point */
        hak_tls.sample_left = INT64_MAX;
        return p;
    }
    hak_tls.sample_left = next_interval(mean);
    if (!p || hak_in_tracer() || !HAK_TRACE_ON(heap_sample) || !table_insert(p, size)) return p;
    uint64_t frames[HAK_STACK_DEPTH];
    uint8_t depth = hak_stack_capture(frames);
    HAK_TRACE(heap_sample, p, size, (uint8_t)class_idx, mean, frames, depth);
    return p;
}

void hak_sample_forget(const void *p) {
    sample_slot *t = atomic_load_explicit(&table, memory_order_acquire);
    if (!p || !t) return;
    unsigned at = slot_of(p);
    for (unsigned i = 0; i < SLOT_PROBE; i++) {
        sample_slot *s = &t[(at + i) & (TABLE_SLOTS - 1)];
        uintptr_t seen = (uintptr_t)p;
        if (atomic_load_explicit(&s->block, memory_order_relaxed) != seen) continue;
        uint64_t size = s->size;
        /* Only the block's own free gets here, but realloc's move may ask again: the exchange decides. */
        if (!atomic_compare_exchange_strong_explicit(&s->block, &seen, SLOT_RELEASED, memory_order_relaxed,
                                                     memory_order_relaxed))
            return;
        atomic_fetch_sub_explicit(&hak_samples_live, 1, memory_order_relaxed);
        hak_slab *slab = slab_counting(p);
        if (slab) slab_count(slab, p, false);
        HAK_TRACE(heap_sample_free, p, size);
        return;
    }
}
#endif /* HAK_SAMPLING */
