/* large.c — large blocks (1..32 MiB) allocated, every page written, and freed, over a small live set. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * Buffers, images, arenas of other libraries: big blocks that the program
 * really fills. Each thread keeps --live slots; an op replaces a random slot:
 * free the old block, malloc one of 1..32 MiB (uniform, not page-multiple)
 * and write one byte in every 4 KiB page of it. Unlike the other workloads,
 * touching memory is the point here: it shows whether the allocator hands back
 * pages that are already resident (a cache of large blocks) or maps fresh
 * ones that fault and get zeroed on first write, and what holding those pages
 * costs in RSS. An op is one malloc + page-touch + free.
 */

#define PAGE 4096u
#define MIB (1024u * 1024u)

struct large_thread {
    uint64_t ops;
    bench_rng rng;
};

static uint64_t opt_threads = 1, opt_ops = 400, opt_live = 2, opt_max_mib = 32, opt_seed = 1;

static void *large_block(bench_rng *rng)
{
    size_t max = (size_t)opt_max_mib * MIB;
    size_t size = MIB + (size_t)bench_below(rng, (uint32_t)(max - MIB + 1));
    unsigned char *p = bench_malloc(size);
    for (size_t off = 0; off < size; off += PAGE)
        p[off] = (unsigned char)off;
    p[size - 1] = 1;
    bench_tag(p);
    return p;
}

static void *large_thread(void *arg)
{
    struct large_thread *t = arg;
    bench_rng rng = t->rng; /* a local copy: the structs of neighbouring threads share cache lines */
    uint32_t live = (uint32_t)opt_live;
    void **set = bench_malloc(live * sizeof *set);
    for (uint32_t s = 0; s < live; s++)
        set[s] = NULL;
    for (uint64_t i = 0; i < t->ops; i++) {
        uint32_t s = bench_below(&rng, live);
        if (set[s]) {
            bench_check(set[s], "large replace");
            free(set[s]);
        }
        set[s] = large_block(&rng);
    }
    for (uint32_t s = 0; s < live; s++)
        if (set[s]) {
            bench_check(set[s], "large final");
            free(set[s]);
        }
    free(set);
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "worker threads"},
        {"ops", &opt_ops, "large blocks malloc'd, touched and freed, split over the threads"},
        {"live", &opt_live, "large blocks each thread keeps live"},
        {"max-mib", &opt_max_mib, "largest block in MiB (sizes are uniform in 1 MiB..this)"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "large", "Large blocks (1..32 MiB) allocated, every page written, freed.", opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_live < 1 || opt_live > 1024 || opt_max_mib < 1 ||
        opt_max_mib > 4000) {
        fprintf(stderr, "large: need 1 <= threads <= 1024, 1 <= live <= 1024, 1 <= max-mib <= 4000\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    struct large_thread *threads = bench_malloc(n * sizeof *threads);
    for (unsigned i = 0; i < n; i++) {
        threads[i] = (struct large_thread){.ops = bench_share(opt_ops, i, n)};
        bench_rng_seed(&threads[i].rng, opt_seed, i);
    }
    double t0 = bench_now();
    bench_run_threads(n, large_thread, threads, sizeof *threads);
    double seconds = bench_now() - t0;
    char extra[64];
    snprintf(extra, sizeof extra, "live=%llu max_mib=%llu", (unsigned long long)opt_live,
             (unsigned long long)opt_max_mib);
    bench_report("large", n, opt_ops, seconds, extra);
    free(threads);
    return 0;
}
