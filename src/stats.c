/* stats.c — counters: per class in the slow paths, per thread heap on the fast paths; HAKMEM_STATS=1 prints them at exit. */
#include <fcntl.h>
#include <string.h>

#include "hakmem.h"
#include "internal.h"

_Atomic uint64_t hak_class_counters[HAK_NUM_CLASSES + 1][HAK_CTR_COUNT];

/* Exited heaps' counts, and frees/allocs by threads without a heap (a thread
 * that only frees what others allocated has none). Sharded by thread, one
 * cache line each: consumer threads freeing all the time would otherwise all
 * hit one counter. */
#define SHARDS 16
static struct {
    _Atomic uint64_t allocs, frees;
    uint8_t pad[48];
} shard[SHARDS];

static unsigned my_shard(void) {
    /* Every thread's static TLS lives in its own block: its address tells threads apart. */
    uint64_t a = (uint64_t)(uintptr_t)&hak_tls_heap;
    return (unsigned)(((a >> 12) * 0x9e3779b97f4a7c15ull) >> 60) % SHARDS;
}

_Static_assert(HAK_STATS_CLASSES == HAK_NUM_CLASSES, "public stats cover every class");

void hak_stats_retire_heap(const hak_heap *heap) {
    unsigned s = my_shard();
    atomic_fetch_add_explicit(&shard[s].allocs, atomic_load_explicit(&heap->counters.allocs, memory_order_relaxed),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&shard[s].frees, atomic_load_explicit(&heap->counters.frees, memory_order_relaxed),
                              memory_order_relaxed);
}

void hak_stats_count_foreign_free(void) {
    atomic_fetch_add_explicit(&shard[my_shard()].frees, 1, memory_order_relaxed);
}

void hak_stats_count_foreign_alloc(void) {
    atomic_fetch_add_explicit(&shard[my_shard()].allocs, 1, memory_order_relaxed);
}

/* Visited under the registry lock; heap == NULL closes the visit, still
 * under the lock, so a heap retiring concurrently is counted exactly once. */
static void add_heap(const hak_heap *heap, void *arg) {
    hak_stats *out = arg;
    if (!heap) {
        for (unsigned s = 0; s < SHARDS; s++) {
            out->allocs += atomic_load_explicit(&shard[s].allocs, memory_order_relaxed);
            out->frees += atomic_load_explicit(&shard[s].frees, memory_order_relaxed);
        }
        return;
    }
    out->allocs += atomic_load_explicit(&heap->counters.allocs, memory_order_relaxed);
    out->frees += atomic_load_explicit(&heap->counters.frees, memory_order_relaxed);
}

void hak_stats_get(hak_stats *out) {
    memset(out, 0, sizeof *out);
    hak_heaps_visit(add_heap, out);
    out->mapped_bytes = hak_os_mapped_bytes();
    out->large_ooms = atomic_load_explicit(&hak_class_counters[HAK_NUM_CLASSES][HAK_CTR_OOMS], memory_order_relaxed);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_stats *cs = &out->classes[c];
        _Atomic uint64_t *k = hak_class_counters[c];
        cs->block_size = hak_class_size[c];
        cs->refills = atomic_load_explicit(&k[HAK_CTR_REFILLS], memory_order_relaxed);
        cs->expansions = atomic_load_explicit(&k[HAK_CTR_EXPANSIONS], memory_order_relaxed);
        cs->chunks_new = atomic_load_explicit(&k[HAK_CTR_CHUNKS_NEW], memory_order_relaxed);
        cs->chunks_freed = atomic_load_explicit(&k[HAK_CTR_CHUNKS_FREED], memory_order_relaxed);
        cs->adopted = atomic_load_explicit(&k[HAK_CTR_ADOPTED], memory_order_relaxed);
        cs->failures = atomic_load_explicit(&k[HAK_CTR_FAILURES], memory_order_relaxed);
        cs->ooms = atomic_load_explicit(&k[HAK_CTR_OOMS], memory_order_relaxed);
    }
}

void hak_stats_print(int fd) {
    hak_stats st;
    hak_stats_get(&st);
    char line[256];
    int n = hak_format(line, sizeof line,
                       "hakmem stats: allocs %llu frees %llu live %lld mapped %llu bytes large-ooms %llu\n",
                       (unsigned long long)st.allocs, (unsigned long long)st.frees,
                       (long long)(st.allocs - st.frees), (unsigned long long)st.mapped_bytes,
                       (unsigned long long)st.large_ooms);
    hak_write_all(fd, line, (size_t)n);
    n = hak_format(line, sizeof line, "%5s %6s %9s %10s %7s %7s %7s %8s %6s\n", "class", "size", "refills",
                   "expansions", "chunks", "freed", "adopted", "failures", "ooms");
    hak_write_all(fd, line, (size_t)n);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        const hak_class_stats *cs = &st.classes[c];
        if (!cs->refills && !cs->ooms && !cs->failures) continue;
        n = hak_format(line, sizeof line, "C%-4u %6u %9llu %10llu %7llu %7llu %7llu %8llu %6llu\n", c,
                       cs->block_size, (unsigned long long)cs->refills, (unsigned long long)cs->expansions,
                       (unsigned long long)cs->chunks_new, (unsigned long long)cs->chunks_freed,
                       (unsigned long long)cs->adopted, (unsigned long long)cs->failures,
                       (unsigned long long)cs->ooms);
        hak_write_all(fd, line, (size_t)n);
    }
}

/* Programs such as coreutils close stderr before exiting; a private copy,
 * taken at start, still reaches the terminal or log the user redirected. */
static int stats_fd = -1;

__attribute__((constructor(102))) static void hak_stats_at_start(void) {
    hak_ensure_init();
    if (hak_opt.stats) stats_fd = fcntl(2, F_DUPFD_CLOEXEC, 100);
}

__attribute__((destructor)) static void hak_stats_at_exit(void) {
    if (hak_opt.stats) hak_stats_print(stats_fd >= 0 ? stats_fd : 2);
}
