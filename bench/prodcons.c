/* prodcons.c — producer/consumer pairs: every block is malloc'd by one thread and freed by another. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * Threads run in pairs; in each pair the producer mallocs blocks (skewed
 * sizes, 8..1024 bytes), tags them and sends them in batches through a
 * bounded single-producer/single-consumer ring; the consumer checks each
 * block's tag (it reads the "message") and frees it. So every free is a
 * remote free, the pattern of message passing and pipelines.
 *
 * Blocks travel BENCH_BATCH to a batch through a bench_ring (common.h), so
 * that the queue costs little next to the allocator.
 *
 * --threads N runs max(1, N / 2) pairs: --threads 1 runs one pair (2 threads),
 * the same work as --threads 2, because a remote free needs a second thread.
 */

struct pair {
    struct bench_ring ring;
    uint64_t ops;
    uint64_t seed_stream;
};

struct role {
    struct pair *pair;
    int producer;
};

static uint64_t opt_threads = 1, opt_ops = 4000000, opt_seed = 1;

static void produce(struct pair *p)
{
    bench_rng rng;
    bench_rng_seed(&rng, opt_seed, p->seed_stream);
    for (uint64_t left = p->ops; left > 0;) {
        struct bench_batch *b = bench_ring_reserve(&p->ring);
        b->count = left < BENCH_BATCH ? (uint32_t)left : BENCH_BATCH;
        for (uint32_t i = 0; i < b->count; i++) {
            b->blocks[i] = bench_malloc(bench_size_skewed(&rng));
            bench_tag(b->blocks[i]);
        }
        left -= b->count;
        bench_ring_publish(&p->ring);
    }
}

static void consume(struct pair *p)
{
    uint64_t batches = (p->ops + BENCH_BATCH - 1) / BENCH_BATCH;
    for (uint64_t k = 0; k < batches; k++) {
        struct bench_batch *b = bench_ring_take(&p->ring);
        for (uint32_t i = 0; i < b->count; i++) {
            bench_check(b->blocks[i], "prodcons consumer");
            free(b->blocks[i]);
        }
        bench_ring_release(&p->ring);
    }
}

static void *prodcons_thread(void *arg)
{
    struct role *r = arg;
    if (r->producer)
        produce(r->pair);
    else
        consume(r->pair);
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "threads; max(1, threads / 2) producer/consumer pairs"},
        {"ops", &opt_ops, "blocks passed from producer to consumer (malloc + remote free), split over the pairs"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "prodcons", "Producer/consumer pairs: every free is remote.", opts);
    if (opt_threads < 1 || opt_threads > 1024) {
        fprintf(stderr, "prodcons: need 1 <= threads <= 1024\n");
        return 2;
    }
    unsigned pairs = opt_threads >= 2 ? (unsigned)(opt_threads / 2) : 1;
    struct pair *p = aligned_alloc(64, pairs * sizeof *p);
    struct role *roles = bench_malloc(2 * pairs * sizeof *roles);
    if (!p) {
        fprintf(stderr, "prodcons: out of memory\n");
        return 4;
    }
    for (unsigned i = 0; i < pairs; i++) {
        bench_ring_init(&p[i].ring);
        p[i].ops = bench_share(opt_ops, i, pairs);
        p[i].seed_stream = i;
        roles[2 * i] = (struct role){.pair = &p[i], .producer = 1};
        roles[2 * i + 1] = (struct role){.pair = &p[i], .producer = 0};
    }
    double t0 = bench_now();
    bench_run_threads(2 * pairs, prodcons_thread, roles, sizeof *roles);
    double seconds = bench_now() - t0;
    char extra[64];
    snprintf(extra, sizeof extra, "pairs=%u batch=%d", pairs, BENCH_BATCH);
    bench_report("prodcons", 2 * pairs, opt_ops, seconds, extra);
    free(roles);
    free(p);
    return 0;
}
