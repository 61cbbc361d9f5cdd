/* stats_report.c — the counters as the public API gives them (hak_stats_get, hak_stats_print) and HAKMEM_STATS=1 at exit. */
#include <fcntl.h>
#include <stddef.h>
#include <string.h>

#include "internal.h"

_Static_assert(HAK_STATS_CLASSES == HAK_NUM_CLASSES, "public stats cover every class");

/* Visited under the registry lock; heap == NULL closes the visit, still
 * under the lock, so a heap retiring concurrently is counted exactly once. */
static void add_heap(hak_heap *heap, void *arg) {
    hak_stats *out = arg;
    if (!heap) {
        hak_stats_add_shared(&out->allocs, &out->frees);
        return;
    }
    out->allocs += hak_op_count(&heap->ops.allocs);
    out->frees += hak_op_count(&heap->ops.frees);
}

void hak_stats_get(hak_stats *out) {
    memset(out, 0, sizeof *out);
    hak_heaps_visit(add_heap, out);
    hak_tracer_add_counts(&out->allocs); /* its frees are counted where they happen */
    out->mapped_bytes = hak_os_mapped_bytes();
    out->committed_bytes = hak_os_committed_bytes();
    out->tracer_committed_bytes = hak_os_tracer_committed_bytes();
    out->large_ooms = atomic_load_explicit(&hak_class_counters[HAK_ARENA_PROGRAM][HAK_NUM_CLASSES][HAK_CTR_ooms], memory_order_relaxed);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_stats *cs = &out->classes[c];
        _Atomic uint64_t *k = hak_class_counters[HAK_ARENA_PROGRAM][c];
        cs->block_size = hak_class_size[c];
#define COPY(field, column, width, meaning) cs->field = atomic_load_explicit(&k[HAK_CTR_##field], memory_order_relaxed);
        HAK_CLASS_COUNTERS(COPY)
#undef COPY
    }
}

/* HAKMEM_STATS' columns after class and size, in the order of the list. */
static const struct column {
    const char *label;
    int width;
    size_t offset; /* of the uint64_t field in hak_class_stats */
} columns[] = {
#define COLUMN(field, column, width, meaning) {column, width, offsetof(hak_class_stats, field)},
    HAK_CLASS_COUNTERS(COLUMN)
#undef COLUMN
};
#define COLUMNS (sizeof columns / sizeof columns[0])

void hak_stats_print(int fd) {
    hak_stats st;
    hak_stats_get(&st);
    char line[256]; /* the widest line of the table and its newline fit */
    int n = hak_format(line, sizeof line,
                       "hakmem stats: allocs %llu frees %llu live %lld mapped %llu bytes committed %llu bytes "
                       "large-ooms %llu\n",
                       (unsigned long long)st.allocs, (unsigned long long)st.frees,
                       (long long)(st.allocs - st.frees), (unsigned long long)st.mapped_bytes,
                       (unsigned long long)st.committed_bytes, (unsigned long long)st.large_ooms);
    hak_write_all(fd, line, (size_t)n);
    if (HAK_ARENAS > 1) { /* the trace build: the tracer's share, apart from the program's */
        n = hak_format(line, sizeof line, "hakmem stats: tracer committed %llu bytes (not capped, not faulted)\n",
                       (unsigned long long)st.tracer_committed_bytes);
        hak_write_all(fd, line, (size_t)n);
    }
    n = hak_format(line, sizeof line, "%5s %6s", "class", "size");
    for (unsigned i = 0; i < COLUMNS; i++)
        n += hak_format(line + n, sizeof line - (size_t)n, " %*s", columns[i].width, columns[i].label);
    line[n++] = '\n';
    hak_write_all(fd, line, (size_t)n);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        const hak_class_stats *cs = &st.classes[c];
        if (!cs->refills && !cs->ooms && !cs->failures) continue;
        n = hak_format(line, sizeof line, "C%-4u %6u", c, cs->block_size);
        for (unsigned i = 0; i < COLUMNS; i++) {
            uint64_t v;
            memcpy(&v, (const char *)cs + columns[i].offset, sizeof v);
            n += hak_format(line + n, sizeof line - (size_t)n, " %*llu", columns[i].width, (unsigned long long)v);
        }
        line[n++] = '\n';
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
