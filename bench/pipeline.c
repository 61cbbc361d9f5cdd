/* pipeline.c — producers and consumers around one deep shared queue of big batches: its depth, hence peak RSS, is set by whether a remote free is cheaper than a malloc. */
#include "common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * --threads N runs max(1, N / 2) producers and as many consumers around one
 * queue, under a mutex and two condition variables. A producer mallocs a
 * batch (an array of --batch pointers, itself a malloc'd block: 32 KiB at the
 * default), fills it with blocks of --size bytes (0: skewed, 8..1024), tags
 * each and writes its first 128 bytes, and appends it to the queue, waiting
 * while --depth batches are queued; a consumer takes the oldest batch, checks
 * and frees every block, then the batch.
 *
 * That is xmalloc-test's pattern (Lever and Boreham's producer/consumer
 * test, 4096 blocks a batch, 100 batches at most, 64-byte blocks in
 * mimalloc-bench) and that of pipelines whose stages hand work on through a
 * queue. Unlike prodcons (a shallow ring per pair), the queue here holds up
 * to depth x batch blocks — 26 MiB of 64-byte ones — and how full it runs
 * depends on the allocator: if the consumers free faster than the producers
 * allocate, it stays near empty and peak RSS is a few MiB; if not, it fills,
 * and peak RSS is the whole queue. So the memory column is the one to read.
 *
 * An op is one block passed (malloc by a producer, free by a consumer). The
 * extra field max_queued is the deepest the queue got.
 */

static uint64_t opt_threads = 1, opt_ops = 4000000, opt_seed = 1, opt_batch = 4096, opt_depth = 100, opt_size = 64;

struct batch {
    struct batch *next;
    uint32_t count;
    void *blocks[]; /* opt_batch of them */
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    struct batch *head, *tail;
    uint64_t queued, max_queued;
    uint64_t batches_left; /* not yet taken by a consumer */
} queue = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0, 0};

struct role {
    unsigned index;
    int producer;
    uint64_t ops; /* a producer's share of the blocks */
};

static void enqueue(struct batch *b)
{
    pthread_mutex_lock(&queue.lock);
    while (queue.queued >= opt_depth)
        pthread_cond_wait(&queue.not_full, &queue.lock);
    b->next = NULL;
    if (queue.tail)
        queue.tail->next = b;
    else
        queue.head = b;
    queue.tail = b;
    if (++queue.queued > queue.max_queued)
        queue.max_queued = queue.queued;
    pthread_cond_signal(&queue.not_empty);
    pthread_mutex_unlock(&queue.lock);
}

/* The oldest batch, or NULL once every batch has been taken. */
static struct batch *dequeue(void)
{
    pthread_mutex_lock(&queue.lock);
    struct batch *b = NULL;
    if (queue.batches_left > 0) {
        queue.batches_left--;
        while (!queue.head)
            pthread_cond_wait(&queue.not_empty, &queue.lock);
        b = queue.head;
        queue.head = b->next;
        if (!queue.head)
            queue.tail = NULL;
        queue.queued--;
        pthread_cond_signal(&queue.not_full);
    }
    pthread_mutex_unlock(&queue.lock);
    return b;
}

static void produce(const struct role *r)
{
    bench_rng rng;
    bench_rng_seed(&rng, opt_seed, r->index);
    for (uint64_t left = r->ops; left > 0;) {
        struct batch *b = bench_malloc(sizeof *b + opt_batch * sizeof(void *));
        b->count = left < opt_batch ? (uint32_t)left : (uint32_t)opt_batch;
        for (uint32_t i = 0; i < b->count; i++) {
            size_t size = opt_size ? opt_size : bench_size_skewed(&rng);
            b->blocks[i] = bench_malloc(size);
            memset(b->blocks[i], (int)i, size < 128 ? size : 128);
            bench_tag(b->blocks[i]);
        }
        left -= b->count;
        enqueue(b);
    }
}

static void consume(void)
{
    for (struct batch *b; (b = dequeue()) != NULL;) {
        for (uint32_t i = 0; i < b->count; i++) {
            bench_check(b->blocks[i], "pipeline consumer");
            free(b->blocks[i]);
        }
        free(b);
    }
}

static void *pipeline_thread(void *arg)
{
    const struct role *r = arg;
    if (r->producer)
        produce(r);
    else
        consume();
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "threads; max(1, threads / 2) producers and as many consumers"},
        {"ops", &opt_ops, "blocks passed from a producer to a consumer (malloc + remote free)"},
        {"batch", &opt_batch, "blocks per batch"},
        {"depth", &opt_depth, "batches the queue holds at most"},
        {"size", &opt_size, "block size in bytes (0: skewed, 8..1024)"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "pipeline", "Producers and consumers around one deep queue of big batches.", opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_batch < 1 || opt_batch > (1u << 24) || opt_depth < 1 ||
        opt_size > (1u << 20) || (opt_size > 0 && opt_size < sizeof(uint64_t))) {
        fprintf(stderr, "pipeline: need 1 <= threads <= 1024, 1 <= batch <= 2^24, depth >= 1, size 0 or 8..2^20\n");
        return 2;
    }
    unsigned pairs = opt_threads >= 2 ? (unsigned)(opt_threads / 2) : 1;
    struct role *roles = bench_malloc(2 * pairs * sizeof *roles);
    for (unsigned i = 0; i < pairs; i++) {
        uint64_t share = bench_share(opt_ops, i, pairs);
        queue.batches_left += (share + opt_batch - 1) / opt_batch;
        roles[2 * i] = (struct role){.index = i, .producer = 1, .ops = share};
        roles[2 * i + 1] = (struct role){.index = i, .producer = 0, .ops = 0};
    }
    double t0 = bench_now();
    bench_run_threads(2 * pairs, pipeline_thread, roles, sizeof *roles);
    double seconds = bench_now() - t0;
    char extra[96];
    snprintf(extra, sizeof extra, "producers=%u batch=%llu depth=%llu max_queued=%llu", pairs,
             (unsigned long long)opt_batch, (unsigned long long)opt_depth, (unsigned long long)queue.max_queued);
    bench_report("pipeline", 2 * pairs, opt_ops, seconds, extra);
    free(roles);
    return 0;
}
