/* churn.c — fixed-size malloc/free churn, one phase per tiny size class (8, 16, ..., 1024 bytes). */
#include "common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * The allocator's fast path and nothing else: for each size, every thread
 * mallocs a batch of blocks, writes each one's first word, then frees the
 * batch in allocation order (FIFO, so the free list is walked, not just one
 * hot block bounced). All frees are local. The sizes run as phases separated
 * by barriers, so each size gets its own throughput: pairs of that size /
 * wall time of its phase.
 *
 * An op is one malloc + free pair. bench/run --callgrind runs this program
 * single-threaded under callgrind to count instructions per pair; churn_pass
 * is kept out of line so that its own (harness) instructions can be told
 * apart from the allocator's.
 */

#define MAX_BATCH 4096

static const uint32_t tiny_sizes[] = {8, 16, 32, 64, 128, 256, 512, 1024};
#define NUM_TINY (sizeof tiny_sizes / sizeof tiny_sizes[0])

static uint64_t opt_threads = 1, opt_ops = 2000000, opt_size = 0, opt_batch = 64;
static pthread_barrier_t barrier;
static double phase_seconds[NUM_TINY];
static uint32_t sizes[NUM_TINY];
static unsigned num_sizes;

struct churn_thread {
    unsigned index;
};

__attribute__((noinline)) static void churn_pass(void **batch, size_t size, uint64_t pairs)
{
    uint32_t per_batch = (uint32_t)opt_batch;
    while (pairs > 0) {
        uint32_t n = pairs < per_batch ? (uint32_t)pairs : per_batch;
        for (uint32_t i = 0; i < n; i++) {
            batch[i] = bench_malloc(size);
            bench_tag(batch[i]);
        }
        for (uint32_t i = 0; i < n; i++) {
            bench_check(batch[i], "churn");
            free(batch[i]);
        }
        pairs -= n;
    }
}

static void *churn_thread(void *arg)
{
    struct churn_thread *t = arg;
    void *batch[MAX_BATCH];
    unsigned n = (unsigned)opt_threads;
    for (unsigned k = 0; k < num_sizes; k++) {
        pthread_barrier_wait(&barrier);
        double t0 = bench_now();
        churn_pass(batch, sizes[k], bench_share(opt_ops, t->index, n));
        pthread_barrier_wait(&barrier);
        if (t->index == 0)
            phase_seconds[k] = bench_now() - t0;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "worker threads"},
        {"ops", &opt_ops, "malloc + free pairs per size, split over the threads"},
        {"size", &opt_size, "one of 8, 16, ..., 1024 to run that size only; 0 runs all eight"},
        {"batch", &opt_batch, "blocks malloc'd before they are freed (1..4096)"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "churn", "Fixed-size malloc/free churn per tiny size class (all frees local).", opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_batch < 1 || opt_batch > MAX_BATCH) {
        fprintf(stderr, "churn: need 1 <= threads <= 1024 and 1 <= batch <= %d\n", MAX_BATCH);
        return 2;
    }
    for (unsigned k = 0; k < NUM_TINY; k++)
        if (opt_size == 0 || opt_size == tiny_sizes[k])
            sizes[num_sizes++] = tiny_sizes[k];
    if (num_sizes == 0) {
        fprintf(stderr, "churn: --size must be 0 or one of 8, 16, 32, 64, 128, 256, 512, 1024\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    pthread_barrier_init(&barrier, NULL, n);
    struct churn_thread *threads = bench_malloc(n * sizeof *threads);
    for (unsigned i = 0; i < n; i++)
        threads[i].index = i;
    bench_run_threads(n, churn_thread, threads, sizeof *threads);
    double seconds = 0;
    char extra[512];
    int len = snprintf(extra, sizeof extra, "batch=%llu", (unsigned long long)opt_batch);
    for (unsigned k = 0; k < num_sizes; k++) {
        seconds += phase_seconds[k];
        len += snprintf(extra + len, sizeof extra - (size_t)len, " ops_per_sec_%u=%.0f", sizes[k],
                        phase_seconds[k] > 0 ? (double)opt_ops / phase_seconds[k] : 0.0);
    }
    bench_report("churn", n, opt_ops * num_sizes, seconds, extra);
    pthread_barrier_destroy(&barrier);
    free(threads);
    return 0;
}
