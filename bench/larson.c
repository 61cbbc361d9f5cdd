/* larson.c — Larson-style server simulation: threads replace random blocks and pass their block arrays on. */
#include "common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/*
 * Each thread owns a slot array of live blocks (8..1024 bytes, uniform) and
 * replaces a random slot per op: free the old block, malloc a new one. The
 * work is cut into epochs; at the end of each epoch a thread passes its array
 * to the next thread in the ring and takes the one the previous thread
 * passed, as a server hands a connection's objects to another worker. So
 * almost every block is freed by a thread that did not allocate it, and each
 * thread works on blocks the allocator handed to someone else.
 *
 * The hand-off is a one-array mailbox per thread. It cannot deadlock: a thread
 * waiting to deposit into mailbox i+1 finds it full, so thread i+1 is not
 * waiting on it empty, and by induction all threads would be depositing with
 * every mailbox full: 2n arrays, but there are only n.
 */

struct mailbox {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void **array; /* NULL: empty */
};

struct larson_thread {
    unsigned index;
    uint64_t ops;
    bench_rng rng;
};

static uint64_t opt_threads = 1, opt_ops = 4000000, opt_slots = 1000, opt_epochs = 20, opt_seed = 1;
static struct mailbox *mailboxes;

static void deposit(struct mailbox *m, void **array)
{
    pthread_mutex_lock(&m->lock);
    while (m->array)
        pthread_cond_wait(&m->cond, &m->lock);
    m->array = array;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void **take(struct mailbox *m)
{
    pthread_mutex_lock(&m->lock);
    while (!m->array)
        pthread_cond_wait(&m->cond, &m->lock);
    void **array = m->array;
    m->array = NULL;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return array;
}

static void *larson_thread(void *arg)
{
    struct larson_thread *t = arg;
    bench_rng rng = t->rng; /* a local copy: the structs of neighbouring threads share cache lines */
    unsigned n = (unsigned)opt_threads;
    uint32_t slots = (uint32_t)opt_slots;
    /* The slot array is itself a block that travels between threads. */
    void **array = bench_malloc(slots * sizeof *array);
    for (uint32_t s = 0; s < slots; s++) {
        array[s] = bench_malloc(bench_size_uniform(&rng));
        bench_tag(array[s]);
    }
    for (uint64_t epoch = 0; epoch < opt_epochs; epoch++) {
        uint64_t ops = bench_share(t->ops, (unsigned)epoch, (unsigned)opt_epochs);
        for (uint64_t i = 0; i < ops; i++) {
            uint32_t s = bench_below(&rng, slots);
            bench_check(array[s], "larson replace");
            free(array[s]);
            array[s] = bench_malloc(bench_size_uniform(&rng));
            bench_tag(array[s]);
        }
        if (epoch + 1 < opt_epochs) {
            deposit(&mailboxes[(t->index + 1) % n], array);
            array = take(&mailboxes[t->index]);
        }
    }
    for (uint32_t s = 0; s < slots; s++) {
        bench_check(array[s], "larson final");
        free(array[s]);
    }
    free(array);
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "worker threads"},
        {"ops", &opt_ops, "block replacements (free + malloc), split over the threads"},
        {"slots", &opt_slots, "live blocks per thread"},
        {"epochs", &opt_epochs, "hand-offs + 1: each thread passes its array on this many times - 1"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "larson", "Larson-style server simulation (cross-thread frees via array hand-off).", opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_slots < 1 || opt_slots > (1u << 24) || opt_epochs < 1) {
        fprintf(stderr, "larson: need 1 <= threads <= 1024, 1 <= slots <= 2^24, epochs >= 1\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    mailboxes = bench_malloc(n * sizeof *mailboxes);
    struct larson_thread *threads = bench_malloc(n * sizeof *threads);
    for (unsigned i = 0; i < n; i++) {
        pthread_mutex_init(&mailboxes[i].lock, NULL);
        pthread_cond_init(&mailboxes[i].cond, NULL);
        mailboxes[i].array = NULL;
        threads[i] = (struct larson_thread){.index = i, .ops = bench_share(opt_ops, i, n)};
        bench_rng_seed(&threads[i].rng, opt_seed, i);
    }
    double t0 = bench_now();
    bench_run_threads(n, larson_thread, threads, sizeof *threads);
    double seconds = bench_now() - t0;
    char extra[96];
    snprintf(extra, sizeof extra, "slots=%llu epochs=%llu", (unsigned long long)opt_slots,
             (unsigned long long)opt_epochs);
    bench_report("larson", n, opt_ops, seconds, extra);
    free(threads);
    free(mailboxes);
    return 0;
}
