/* threads.c — thread churn: short-lived threads allocate blocks and leave them for later threads to free. */
#include "common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * --threads N lanes run side by side; each lane starts a worker thread,
 * joins it, and starts the next, so N workers are alive at any time and
 * threads are created and destroyed continuously. A worker
 *   1. takes one block array that an earlier worker (of any lane, usually
 *      exited by now) left on a shared stash, and frees those blocks and the
 *      array: frees into the heap of a thread that no longer exists;
 *   2. mallocs --blocks blocks (8..1024 bytes, uniform), frees every other
 *      one itself and mallocs it again, so its own heap does some work;
 *   3. leaves its array on the stash and exits with all of it still live.
 * This is what a thread-per-request server or a short-lived worker pool does
 * to an allocator: per-thread state set up and torn down all the time, and
 * memory that outlives the thread that allocated it. The stash holds about N
 * arrays (each worker takes one and leaves one), so memory stays bounded.
 * An op is one malloc (each block is freed once, by this or a later thread).
 */

struct handoff {
    struct handoff *next;
    uint32_t count;
    void *blocks[];
};

/* Per lane: what its workers malloc'd, summed one worker after another. */
struct lane {
    uint64_t mallocs;
};

static uint64_t opt_threads = 1, opt_ops = 1000000, opt_blocks = 256, opt_seed = 1;
static pthread_mutex_t stash_lock = PTHREAD_MUTEX_INITIALIZER;
static struct handoff *stash;

static void free_handoff(struct handoff *h)
{
    for (uint32_t i = 0; i < h->count; i++) {
        bench_check(h->blocks[i], "threads inherited");
        free(h->blocks[i]);
    }
    free(h);
}

static void worker(void *arg, unsigned lane, uint64_t generation)
{
    struct lane *lanes = arg;
    bench_rng rng;
    bench_rng_seed(&rng, opt_seed, bench_lane_stream(lane, generation));
    pthread_mutex_lock(&stash_lock);
    struct handoff *inherited = stash;
    if (inherited)
        stash = inherited->next;
    pthread_mutex_unlock(&stash_lock);
    if (inherited)
        free_handoff(inherited);

    uint32_t k = (uint32_t)opt_blocks;
    struct handoff *h = bench_malloc(sizeof *h + k * sizeof h->blocks[0]);
    h->count = k;
    for (uint32_t i = 0; i < k; i++) {
        h->blocks[i] = bench_malloc(bench_size_uniform(&rng));
        bench_tag(h->blocks[i]);
    }
    for (uint32_t i = 0; i < k; i += 2) {
        bench_check(h->blocks[i], "threads own");
        free(h->blocks[i]);
        h->blocks[i] = bench_malloc(bench_size_uniform(&rng));
        bench_tag(h->blocks[i]);
    }
    lanes[lane].mallocs += k + (k + 1) / 2;

    pthread_mutex_lock(&stash_lock);
    h->next = stash;
    stash = h;
    pthread_mutex_unlock(&stash_lock);
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "lanes: workers alive at the same time"},
        {"ops", &opt_ops, "blocks the workers allocate in all (ops / blocks workers), split over the lanes"},
        {"blocks", &opt_blocks, "blocks each worker leaves behind"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "threads", "Thread churn: threads created and destroyed, leaving blocks for others to free.",
                opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_blocks < 1 || opt_blocks > (1u << 20)) {
        fprintf(stderr, "threads: need 1 <= threads <= 1024, 1 <= blocks <= 2^20\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    uint64_t workers = (opt_ops + opt_blocks - 1) / opt_blocks;
    struct lane *lanes = calloc(n, sizeof *lanes);
    if (!lanes) {
        fprintf(stderr, "threads: out of memory\n");
        return 4;
    }
    double t0 = bench_now();
    bench_run_lanes(n, workers, worker, lanes);
    /* What the last workers left is freed here, timed too: it is part of the churn's cost. */
    while (stash) {
        struct handoff *h = stash;
        stash = h->next;
        free_handoff(h);
    }
    double seconds = bench_now() - t0;
    uint64_t mallocs = 0;
    for (unsigned i = 0; i < n; i++)
        mallocs += lanes[i].mallocs;
    char extra[96];
    snprintf(extra, sizeof extra, "blocks=%llu workers=%llu", (unsigned long long)opt_blocks,
             (unsigned long long)workers);
    bench_report("threads", n, mallocs, seconds, extra);
    free(lanes);
    return 0;
}
