/* stats.c — the counters: per class in the slow paths, and those no heap keeps (large blocks, heapless threads, exited heaps). */
#include "internal.h"

_Atomic uint64_t hak_class_counters[HAK_ARENAS][HAK_NUM_CLASSES + 1][HAK_CTR_COUNT];

/* Exited heaps' counts, and frees/allocs by threads without a heap (the
 * tracer's, an exiting thread's, one whose heap could not be mapped: a thread
 * that only frees what others allocated gets one at its first such free).
 * Sharded by thread, one cache line each, so that such threads do not all hit
 * one counter. */
#define SHARDS 16
static struct {
    _Atomic uint64_t allocs, frees;
    uint8_t pad[48];
} shard[SHARDS];

/* Every thread's static TLS lives in its own block: this byte's address tells threads apart. */
static HAK_TLS uint8_t shard_marker;

static unsigned my_shard(void) {
    uint64_t a = (uint64_t)(uintptr_t)&shard_marker;
    return (unsigned)(((a >> 12) * 0x9e3779b97f4a7c15ull) >> 60) % SHARDS;
}

void hak_stats_retire_heap(const hak_heap *heap) {
    unsigned s = my_shard();
    atomic_fetch_add_explicit(&shard[s].allocs, hak_op_count(&heap->ops.allocs),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&shard[s].frees, hak_op_count(&heap->ops.frees),
                              memory_order_relaxed);
}

void hak_stats_shared_free(void) {
    atomic_fetch_add_explicit(&shard[my_shard()].frees, 1, memory_order_relaxed);
}

void hak_stats_shared_alloc(void) {
    atomic_fetch_add_explicit(&shard[my_shard()].allocs, 1, memory_order_relaxed);
}

void hak_stats_add_shared(uint64_t *allocs, uint64_t *frees) {
    for (unsigned s = 0; s < SHARDS; s++) {
        *allocs += atomic_load_explicit(&shard[s].allocs, memory_order_relaxed);
        *frees += atomic_load_explicit(&shard[s].frees, memory_order_relaxed);
    }
}
