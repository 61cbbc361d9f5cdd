/* transfer_churn.c — generations of short-lived threads pass part of their live blocks on through a shared table. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * --threads N lanes of short-lived workers (bench_run_lanes: N alive at any
 * time, each a new thread started after its predecessor in the lane exited).
 * A worker
 *   1. mallocs --blocks blocks into its own working set;
 *   2. then, --blocks times, picks a random block of the set and either
 *      (--transfer-permille of the times) swaps it into a random slot of a
 *      table shared by all threads, freeing the block it takes out — one that
 *      an earlier worker left, often a thread that has exited, sometimes one
 *      still running in another lane — or frees it itself; either way it
 *      mallocs a new block in its place;
 *   3. frees what is left of its set and exits, its swapped-in blocks still
 *      live in the table for later generations.
 * A block in the table survives until a later swap hits its slot, so
 * lifetimes spread over a few generations (the table has --threads x
 * --blocks slots: each generation of N workers replaces about 40 % of it at
 * the default half share). Sizes are skewed small (8..1024 bytes) with
 * --mid-permille of them 1 KiB..--mid-max-size (16 KiB: the small-block
 * classes of most allocators; mstress also has blocks of up to 100 KiB, and
 * --mid-max-size 131072 brings those in, where they soon dominate the time:
 * consumers measures that path on its own).
 *
 * That is the pattern of mstress and of thread pools that are torn down and
 * rebuilt: thread heaps set up and retired all the time, and at every exit
 * a share of the heap's blocks still live, freed later by threads that did
 * not exist when they were allocated. bench/threads hands whole arrays from
 * one worker to one successor; here lifetimes are random and blocks cross
 * lanes.
 *
 * An op is one malloc (each block is freed once, by its worker, a later one,
 * or, for what the table holds at the end, the main thread, timed too).
 */

static uint64_t opt_threads = 1, opt_ops = 4000000, opt_blocks = 1000, opt_transfer_permille = 500,
                opt_mid_permille = 10, opt_mid_max_size = 16384, opt_seed = 1;
static _Atomic(void *) *table;
static uint32_t table_slots;
static uint64_t *lane_mallocs;

static size_t block_size(bench_rng *rng)
{
    if (bench_below(rng, 1000) < opt_mid_permille)
        return 1025 + bench_below(rng, (uint32_t)(opt_mid_max_size - 1024));
    return bench_size_skewed(rng);
}

static void *new_block(bench_rng *rng)
{
    void *p = bench_malloc(block_size(rng));
    bench_tag(p);
    return p;
}

static void worker(void *arg, unsigned lane, uint64_t generation)
{
    (void)arg;
    bench_rng rng;
    bench_rng_seed(&rng, opt_seed, bench_lane_stream(lane, generation));
    uint32_t k = (uint32_t)opt_blocks;
    void **set = bench_malloc(k * sizeof *set);
    for (uint32_t i = 0; i < k; i++)
        set[i] = new_block(&rng);
    for (uint32_t step = 0; step < k; step++) {
        uint32_t s = bench_below(&rng, k);
        if (bench_below(&rng, 1000) < opt_transfer_permille) {
            /* acq_rel: the block taken out was tagged by another thread, ours is read by a later one. */
            void *old = atomic_exchange_explicit(&table[bench_below(&rng, table_slots)], set[s], memory_order_acq_rel);
            if (old) {
                bench_check(old, "transfer_churn inherited");
                free(old);
            }
        } else {
            bench_check(set[s], "transfer_churn own");
            free(set[s]);
        }
        set[s] = new_block(&rng);
    }
    for (uint32_t i = 0; i < k; i++) {
        bench_check(set[i], "transfer_churn exit");
        free(set[i]);
    }
    free(set);
    lane_mallocs[lane] += 2 * (uint64_t)k;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "lanes: short-lived workers alive at the same time"},
        {"ops", &opt_ops, "blocks the workers malloc in all (ops / (2 x blocks) workers), split over the lanes"},
        {"blocks", &opt_blocks, "a worker's working set; it mallocs twice as many blocks in its life"},
        {"transfer-permille", &opt_transfer_permille, "of a worker's replacements, per 1000, those swapped into "
                                                      "the shared table (the rest it frees itself)"},
        {"mid-permille", &opt_mid_permille, "blocks per 1000 of 1 KiB..mid-max-size (the rest 8..1024 B, skewed small)"},
        {"mid-max-size", &opt_mid_max_size, "largest of those blocks in bytes"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "transfer_churn",
                "Generations of short-lived threads passing live blocks on through a shared table.", opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_blocks < 1 || opt_blocks > (1u << 20) ||
        opt_transfer_permille > 1000 || opt_mid_permille > 1000 || opt_mid_max_size <= 1024 ||
        opt_mid_max_size > (1u << 30)) {
        fprintf(stderr, "transfer_churn: need 1 <= threads <= 1024, 1 <= blocks <= 2^20, "
                        "transfer-permille and mid-permille <= 1000, 1024 < mid-max-size <= 2^30\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    uint64_t workers = (opt_ops + 2 * opt_blocks - 1) / (2 * opt_blocks);
    table_slots = n * (uint32_t)opt_blocks;
    table = calloc(table_slots, sizeof *table);
    lane_mallocs = calloc(n, sizeof *lane_mallocs);
    if (!table || !lane_mallocs) {
        fprintf(stderr, "transfer_churn: out of memory\n");
        return 4;
    }
    double t0 = bench_now();
    bench_run_lanes(n, workers, worker, NULL);
    for (uint32_t i = 0; i < table_slots; i++) {
        void *left = atomic_load_explicit(&table[i], memory_order_relaxed);
        if (left) {
            bench_check(left, "transfer_churn table");
            free(left);
        }
    }
    double seconds = bench_now() - t0;
    uint64_t mallocs = 0;
    for (unsigned i = 0; i < n; i++)
        mallocs += lane_mallocs[i];
    char extra[160];
    snprintf(extra, sizeof extra, "blocks=%llu workers=%llu transfer_permille=%llu mid_permille=%llu mid_max_size=%llu",
             (unsigned long long)opt_blocks, (unsigned long long)workers, (unsigned long long)opt_transfer_permille,
             (unsigned long long)opt_mid_permille, (unsigned long long)opt_mid_max_size);
    bench_report("transfer_churn", n, mallocs, seconds, extra);
    free(lane_mallocs);
    free(table);
    return 0;
}
