/* consumers.c — few producers, many consumers: blocks (mostly small, some 34 and 168 KiB) freed by other threads. */
#include "common.h"

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * --threads N consumer threads and max(1, N / 4) producer threads. Each
 * producer mallocs blocks, tags them and deals them out in batches, round
 * robin, to its consumers (consumer c belongs to producer c % producers),
 * one bench_ring per consumer; a batch that finds its consumer's ring full
 * goes to the next one that has room, so one descheduled consumer does not
 * stall the rest. The consumers check and free every block, and each
 * also allocates a little of its own: per batch it replaces --own blocks of
 * a small private set, so a consumer has a heap that does work too, not only
 * remote frees.
 *
 * This is the shape of sh8bench and of servers where a few threads build
 * requests or messages that many workers consume: the frees come from many
 * threads at once, all into the few producers' heaps, and blocks of 34 KiB
 * and 168 KiB travel among the small ones (--medium-permille and
 * --big-permille of all blocks; the rest are skewed small, 8..1024 bytes),
 * sizes that sit above many allocators' small classes. bench/prodcons is one
 * producer per consumer, small blocks only.
 *
 * An op is one block passed (malloc by a producer, free by a consumer); the
 * consumers' own replacements are part of the cost, not of the count.
 */

#define OWN_SET 64

struct consumer {
    struct bench_ring ring; /* cache-line aligned, so consumers never share a line */
    uint64_t blocks;        /* freed, for the report */
    uint64_t seed_stream;
};

/* Threads 0..producers-1 produce, the rest consume. */
struct role {
    unsigned index;
    uint64_t ops; /* a producer's share of --ops */
};

static uint64_t opt_threads = 1, opt_ops = 4000000, opt_own = 4, opt_medium_size = 34 * 1024, opt_medium_permille = 10,
                opt_big_size = 168 * 1024, opt_big_permille = 1, opt_seed = 1;
static unsigned producers, consumers;
static struct consumer *consumer;

static size_t block_size(bench_rng *rng)
{
    uint32_t pick = bench_below(rng, 1000);
    if (pick < opt_big_permille)
        return (size_t)opt_big_size;
    if (pick < opt_big_permille + opt_medium_permille)
        return (size_t)opt_medium_size;
    return bench_size_skewed(rng);
}

/* A batch to fill in the next ring with room, from this producer's consumer `*next` on; waits while all are
 * full. *to is the consumer it goes to. */
static struct bench_batch *reserve_any(const struct role *p, unsigned *next, struct consumer **to)
{
    unsigned mine = (consumers - p->index + producers - 1) / producers;
    for (;;) {
        for (unsigned k = 0; k < mine; k++) {
            struct consumer *c = &consumer[p->index + *next * producers];
            *next = (*next + 1) % mine;
            struct bench_batch *b = bench_ring_try_reserve(&c->ring);
            if (b) {
                *to = c;
                return b;
            }
        }
        sched_yield();
    }
}

static void produce(const struct role *p)
{
    bench_rng rng;
    bench_rng_seed(&rng, opt_seed, p->index);
    unsigned next = 0;
    for (uint64_t left = p->ops; left > 0;) {
        struct consumer *c;
        struct bench_batch *b = reserve_any(p, &next, &c);
        b->count = left < BENCH_BATCH ? (uint32_t)left : BENCH_BATCH;
        for (uint32_t i = 0; i < b->count; i++) {
            b->blocks[i] = bench_malloc(block_size(&rng));
            bench_tag(b->blocks[i]);
        }
        left -= b->count;
        bench_ring_publish(&c->ring);
    }
    /* An empty batch tells each consumer that its producer is done. */
    for (unsigned c = p->index; c < consumers; c += producers) {
        bench_ring_reserve(&consumer[c].ring)->count = 0;
        bench_ring_publish(&consumer[c].ring);
    }
}

static void consume(struct consumer *c)
{
    bench_rng rng;
    bench_rng_seed(&rng, opt_seed, c->seed_stream);
    void *own[OWN_SET];
    for (unsigned i = 0; i < OWN_SET; i++) {
        own[i] = bench_malloc(bench_size_skewed(&rng));
        bench_tag(own[i]);
    }
    unsigned cursor = 0;
    uint64_t freed = 0;
    for (;;) {
        struct bench_batch *b = bench_ring_take(&c->ring);
        uint32_t count = b->count;
        for (uint32_t i = 0; i < count; i++) {
            bench_check(b->blocks[i], "consumers consumer");
            free(b->blocks[i]);
        }
        bench_ring_release(&c->ring);
        if (count == 0)
            break;
        freed += count;
        for (uint64_t k = 0; k < opt_own; k++) {
            bench_check(own[cursor], "consumers own");
            free(own[cursor]);
            own[cursor] = bench_malloc(bench_size_skewed(&rng));
            bench_tag(own[cursor]);
            cursor = (cursor + 1) % OWN_SET;
        }
    }
    for (unsigned i = 0; i < OWN_SET; i++) {
        bench_check(own[i], "consumers own final");
        free(own[i]);
    }
    c->blocks = freed;
}

static void *consumers_thread(void *arg)
{
    const struct role *p = arg;
    if (p->index < producers)
        produce(p);
    else
        consume(&consumer[p->index - producers]);
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "consumer threads; max(1, threads / 4) producers feed them"},
        {"ops", &opt_ops, "blocks passed from producers to consumers (malloc + remote free), split over the producers"},
        {"own", &opt_own, "blocks a consumer replaces in its own small set per batch it takes"},
        {"medium-size", &opt_medium_size, "size of the medium blocks in bytes"},
        {"medium-permille", &opt_medium_permille, "medium blocks per 1000 blocks passed"},
        {"big-size", &opt_big_size, "size of the big blocks in bytes"},
        {"big-permille", &opt_big_permille, "big blocks per 1000 blocks passed"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "consumers", "Few producers, many consumers: small and 34/168 KiB blocks freed remotely.",
                opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_medium_permille + opt_big_permille > 1000 ||
        opt_medium_size < 8 || opt_medium_size > (1u << 30) || opt_big_size < 8 || opt_big_size > (1u << 30) ||
        opt_own > 1000000) {
        fprintf(stderr, "consumers: need 1 <= threads <= 1024, medium-permille + big-permille <= 1000, "
                        "8 <= medium-size, big-size <= 2^30, own <= 10^6\n");
        return 2;
    }
    consumers = (unsigned)opt_threads;
    producers = consumers >= 4 ? consumers / 4 : 1;
    consumer = aligned_alloc(64, consumers * sizeof *consumer);
    struct role *roles = bench_malloc((producers + consumers) * sizeof *roles);
    if (!consumer) {
        fprintf(stderr, "consumers: out of memory\n");
        return 4;
    }
    for (unsigned i = 0; i < consumers; i++) {
        bench_ring_init(&consumer[i].ring);
        consumer[i].blocks = 0;
        consumer[i].seed_stream = producers + i;
    }
    for (unsigned i = 0; i < producers + consumers; i++)
        roles[i] = (struct role){.index = i, .ops = i < producers ? bench_share(opt_ops, i, producers) : 0};
    double t0 = bench_now();
    bench_run_threads(producers + consumers, consumers_thread, roles, sizeof *roles);
    double seconds = bench_now() - t0;
    uint64_t freed = 0;
    for (unsigned i = 0; i < consumers; i++)
        freed += consumer[i].blocks;
    if (freed != opt_ops) {
        fprintf(stderr, "consumers: %llu blocks freed, %llu passed\n", (unsigned long long)freed,
                (unsigned long long)opt_ops);
        return 3;
    }
    char extra[160];
    snprintf(extra, sizeof extra, "producers=%u own=%llu medium_permille=%llu big_permille=%llu", producers,
             (unsigned long long)opt_own, (unsigned long long)opt_medium_permille,
             (unsigned long long)opt_big_permille);
    bench_report("consumers", consumers, opt_ops, seconds, extra);
    free(roles);
    free(consumer);
    return 0;
}
