/* larson_exit.c — Larson as published: a worker replaces random blocks, exits, and a new thread inherits its blocks. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * --threads N worker slots ("lanes") run side by side. A lane owns an array
 * of --slots live blocks (uniform sizes, --min-size..--max-size). Its worker
 * thread does --rounds replacements (free a random slot's block, malloc a new
 * one in its place) and exits; then a new thread is created for the lane
 * (bench_run_lanes: after the old one has been joined, so its thread-exit
 * handlers have run) and carries on with the same array and PRNG.
 *
 * That is the server the Larson benchmark models, where a connection's
 * objects outlive the thread that served it: each successor starts by freeing
 * blocks whose allocating thread no longer exists, and whatever the allocator
 * did with the exited thread's heap (abandoned it, handed it over, kept its
 * free blocks) decides what those frees cost and where the successor's
 * mallocs find memory. The repository's larson passes arrays between
 * threads that stay alive, so it never meets this.
 *
 * The defaults are the shape of the published runs: 5000 blocks of 8..1000
 * bytes per thread, a thread's life 100 times its array size in
 * replacements, and the arrays first filled by the main thread (before the
 * clock starts), which stays alive and idle, so the first workers free blocks
 * of a heap that no longer allocates.
 *
 * An op is one replacement (free + malloc), counted over all generations;
 * the last worker of a lane frees its array, timed.
 */

/* A lane's state, passed from each worker to its successor (bench_run_lanes orders them). */
struct lane {
    void **slots;
    bench_rng rng;
    uint64_t ops;         /* the lane's share of --ops */
    uint64_t generations; /* workers the lane runs */
};

static uint64_t opt_threads = 1, opt_ops = 20000000, opt_slots = 5000, opt_rounds = 500000, opt_min_size = 8,
                opt_max_size = 1000, opt_seed = 1;

static size_t block_size(bench_rng *rng)
{
    return (size_t)opt_min_size + bench_below(rng, (uint32_t)(opt_max_size - opt_min_size + 1));
}

static void worker(void *arg, unsigned lane_index, uint64_t generation)
{
    struct lane *lane = &((struct lane *)arg)[lane_index];
    bench_rng rng = lane->rng; /* a local copy: neighbouring lanes share cache lines */
    uint32_t slots = (uint32_t)opt_slots;
    void **array = lane->slots;
    uint64_t ops = bench_share(lane->ops, (unsigned)generation, (unsigned)lane->generations);
    for (uint64_t i = 0; i < ops; i++) {
        uint32_t s = bench_below(&rng, slots);
        bench_check(array[s], "larson_exit replace");
        free(array[s]);
        array[s] = bench_malloc(block_size(&rng));
        bench_tag(array[s]);
    }
    if (generation + 1 == lane->generations) {
        for (uint32_t s = 0; s < slots; s++) {
            bench_check(array[s], "larson_exit final");
            free(array[s]);
        }
        free(array);
        array = NULL;
    }
    lane->slots = array;
    lane->rng = rng;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "worker threads alive at once (lanes)"},
        {"ops", &opt_ops, "block replacements (free + malloc) over all generations, split over the lanes"},
        {"slots", &opt_slots, "live blocks per lane (filled by the main thread), inherited by each new worker"},
        {"rounds", &opt_rounds, "replacements a worker does before it exits (the lane's ops split evenly)"},
        {"min-size", &opt_min_size, "smallest block in bytes"},
        {"max-size", &opt_max_size, "largest block in bytes (sizes are uniform in min-size..max-size)"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "larson_exit",
                "Larson with exiting threads: each worker's live blocks pass to a new thread when it exits.", opts);
    /* bench_share splits over unsigned counts: a lane's generations must fit one. */
    if (opt_threads < 1 || opt_threads > 1024 || opt_slots < 1 || opt_slots > (1u << 24) || opt_rounds < 1 ||
        opt_min_size < 1 || opt_min_size > opt_max_size || opt_max_size > (1u << 30) ||
        opt_ops / opt_rounds / opt_threads > (1u << 30)) {
        fprintf(stderr, "larson_exit: need 1 <= threads <= 1024, 1 <= slots <= 2^24, rounds >= 1, "
                        "1 <= min-size <= max-size <= 2^30, ops / rounds / threads <= 2^30\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    /* At least one worker per lane, so that every lane frees its array. */
    uint64_t generations = (opt_ops + opt_rounds - 1) / opt_rounds;
    if (generations < n)
        generations = n;
    struct lane *lanes = bench_malloc(n * sizeof *lanes);
    for (unsigned i = 0; i < n; i++) {
        lanes[i] = (struct lane){.ops = bench_share(opt_ops, i, n), .generations = bench_share(generations, i, n)};
        bench_rng_seed(&lanes[i].rng, opt_seed, i);
        lanes[i].slots = bench_malloc(opt_slots * sizeof *lanes[i].slots);
        for (uint32_t s = 0; s < opt_slots; s++) {
            lanes[i].slots[s] = bench_malloc(block_size(&lanes[i].rng));
            bench_tag(lanes[i].slots[s]);
        }
    }
    double t0 = bench_now();
    bench_run_lanes(n, generations, worker, lanes);
    double seconds = bench_now() - t0;
    char extra[160];
    snprintf(extra, sizeof extra, "slots=%llu rounds=%llu workers=%llu min_size=%llu max_size=%llu",
             (unsigned long long)opt_slots, (unsigned long long)opt_rounds, (unsigned long long)generations,
             (unsigned long long)opt_min_size, (unsigned long long)opt_max_size);
    bench_report("larson_exit", n, opt_ops, seconds, extra);
    free(lanes);
    return 0;
}
