/* mixed.c — each thread mallocs, uses and frees mixed sizes over its own live working set. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * The common single-owner case: every thread allocates and frees its own
 * blocks, sizes skewed to small (half 8..64, 30 % 65..256, 20 % 257..1024),
 * lifetimes random. Each op picks a random slot of the thread's working set:
 * an empty slot gets a new block; an occupied one is freed or, with equal
 * chance, used (its tag checked and rewritten). The set settles at about
 * two thirds full, so frees and mallocs interleave at random positions instead
 * of the LIFO order a tight malloc/free loop gives.
 *
 * An op is one such step; mallocs and frees each make up about a third of them.
 */

struct mixed_thread {
    uint64_t ops;
    bench_rng rng;
    uint64_t mallocs;
};

static uint64_t opt_threads = 1, opt_ops = 6000000, opt_live = 4096, opt_seed = 1;

static void *mixed_thread(void *arg)
{
    struct mixed_thread *t = arg;
    bench_rng rng = t->rng; /* a local copy: the structs of neighbouring threads share cache lines */
    uint32_t live = (uint32_t)opt_live;
    void **set = calloc(live, sizeof *set);
    if (!set) {
        fprintf(stderr, "mixed: out of memory\n");
        exit(4);
    }
    uint64_t mallocs = 0;
    for (uint64_t i = 0; i < t->ops; i++) {
        uint64_t r = bench_rand(&rng);
        uint32_t s = (uint32_t)(((r >> 32) * live) >> 32);
        if (!set[s]) {
            set[s] = bench_malloc(bench_size_skewed(&rng));
            bench_tag(set[s]);
            mallocs++;
        } else if (r & 1) {
            bench_check(set[s], "mixed free");
            free(set[s]);
            set[s] = NULL;
        } else {
            bench_check(set[s], "mixed use");
            bench_tag(set[s]);
        }
    }
    for (uint32_t s = 0; s < live; s++)
        if (set[s]) {
            bench_check(set[s], "mixed final");
            free(set[s]);
        }
    free(set);
    t->mallocs = mallocs;
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "worker threads"},
        {"ops", &opt_ops, "steps (malloc, free or use of a random slot), split over the threads"},
        {"live", &opt_live, "working-set slots per thread"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "mixed", "Mixed sizes over a per-thread live working set (all frees local).", opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_live < 1 || opt_live > (1u << 24)) {
        fprintf(stderr, "mixed: need 1 <= threads <= 1024, 1 <= live <= 2^24\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    struct mixed_thread *threads = bench_malloc(n * sizeof *threads);
    for (unsigned i = 0; i < n; i++) {
        threads[i] = (struct mixed_thread){.ops = bench_share(opt_ops, i, n)};
        bench_rng_seed(&threads[i].rng, opt_seed, i);
    }
    double t0 = bench_now();
    bench_run_threads(n, mixed_thread, threads, sizeof *threads);
    double seconds = bench_now() - t0;
    uint64_t mallocs = 0;
    for (unsigned i = 0; i < n; i++)
        mallocs += threads[i].mallocs;
    char extra[64];
    snprintf(extra, sizeof extra, "live=%llu mallocs=%llu", (unsigned long long)opt_live, (unsigned long long)mallocs);
    bench_report("mixed", n, opt_ops, seconds, extra);
    free(threads);
    return 0;
}
