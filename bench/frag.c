/* frag.c — fragmentation: allocate many small blocks, free most, allocate other sizes; report RSS vs live bytes. */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Each thread runs --rounds rounds of:
 *   1. malloc many small blocks (16..128 bytes);
 *   2. free 90 % of them at random, keeping every survivor live to the end,
 *      scattered over the memory the small blocks took;
 *   3. free the previous round's larger blocks, then malloc larger blocks
 *      (256..1024 bytes, other size classes) adding up to about the bytes just
 *      freed in 2: memory that only a size-segregated allocator's freed small
 *      slots could have given back.
 * An allocator that cannot reuse or return the mostly-empty small-block pages
 * ends with a resident set far above the bytes the program holds. After the
 * last round, with everything still live, the threads stop and VmRSS is read
 * (frag_rss_kb) next to the live bytes (live_kb); then everything is freed
 * and the result line's rss_kb says what the allocator kept after that.
 * hwm_kb (VmHWM) is the peak. An op is one malloc (each block is freed once).
 */

struct block_list {
    void **items;
    uint32_t *sizes;
    size_t count, cap;
};

struct frag_thread {
    unsigned index;
    uint64_t ops;
    bench_rng rng;
    uint64_t mallocs;
    uint64_t live_bytes;
};

static uint64_t opt_threads = 1, opt_ops = 1600000, opt_rounds = 8, opt_seed = 1;
static pthread_barrier_t barrier;
static long frag_rss_kb = -1;

static void list_push(struct block_list *l, void *p, uint32_t size)
{
    if (l->count == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 1024;
        l->items = realloc(l->items, l->cap * sizeof *l->items);
        l->sizes = realloc(l->sizes, l->cap * sizeof *l->sizes);
        if (!l->items || !l->sizes) {
            fprintf(stderr, "frag: out of memory\n");
            exit(4);
        }
    }
    l->items[l->count] = p;
    l->sizes[l->count] = size;
    l->count++;
}

static void list_free_all(struct block_list *l)
{
    for (size_t i = 0; i < l->count; i++) {
        bench_check(l->items[i], "frag free");
        free(l->items[i]);
    }
    l->count = 0;
}

/* The blocks' bytes plus the list's own arrays: both are data the program holds. */
static uint64_t list_bytes(const struct block_list *l)
{
    uint64_t bytes = l->cap * (sizeof *l->items + sizeof *l->sizes);
    for (size_t i = 0; i < l->count; i++)
        bytes += l->sizes[i];
    return bytes;
}

static void list_release(struct block_list *l)
{
    free(l->items);
    free(l->sizes);
}

static long vm_rss_kb(void)
{
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return -1;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return -1;
    buf[len] = '\0';
    const char *p = strstr(buf, "VmRSS:");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

static void *frag_thread(void *arg)
{
    struct frag_thread *t = arg;
    bench_rng rng = t->rng; /* a local copy: the structs of neighbouring threads share cache lines */
    struct block_list small = {0}, survivors = {0}, larger = {0};
    uint64_t mallocs = 0;
    for (uint64_t round = 0; round < opt_rounds; round++) {
        uint64_t n = bench_share(t->ops, (unsigned)round, (unsigned)opt_rounds);
        for (uint64_t i = 0; i < n; i++) {
            uint32_t size = 16 + bench_below(&rng, 113);
            void *p = bench_malloc(size);
            bench_tag(p);
            list_push(&small, p, size);
        }
        mallocs += n;
        uint64_t freed = 0;
        for (size_t i = 0; i < small.count; i++) {
            if (bench_below(&rng, 10) == 0) {
                list_push(&survivors, small.items[i], small.sizes[i]);
            } else {
                bench_check(small.items[i], "frag free small");
                free(small.items[i]);
                freed += small.sizes[i];
            }
        }
        small.count = 0;
        list_free_all(&larger);
        for (uint64_t bytes = 0; bytes < freed;) {
            uint32_t size = 256 + bench_below(&rng, 769);
            void *p = bench_malloc(size);
            bench_tag(p);
            list_push(&larger, p, size);
            bytes += size;
            mallocs++;
        }
    }
    t->live_bytes = list_bytes(&small) + list_bytes(&survivors) + list_bytes(&larger);
    /* Everything this thread holds is live: let thread 0 read the RSS of the fragmented heap. */
    pthread_barrier_wait(&barrier);
    if (t->index == 0)
        frag_rss_kb = vm_rss_kb();
    pthread_barrier_wait(&barrier);
    list_free_all(&survivors);
    list_free_all(&larger);
    list_release(&small);
    list_release(&survivors);
    list_release(&larger);
    t->mallocs = mallocs;
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "worker threads"},
        {"ops", &opt_ops, "small blocks malloc'd over all rounds, split over the threads"},
        {"rounds", &opt_rounds, "allocate / free 90 % / allocate other sizes rounds"},
        {"seed", &opt_seed, "PRNG seed"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "frag", "Fragmentation: RSS after freeing most small blocks and allocating other sizes.",
                opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_rounds < 1) {
        fprintf(stderr, "frag: need 1 <= threads <= 1024, rounds >= 1\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    pthread_barrier_init(&barrier, NULL, n);
    struct frag_thread *threads = bench_malloc(n * sizeof *threads);
    for (unsigned i = 0; i < n; i++) {
        threads[i] = (struct frag_thread){.index = i, .ops = bench_share(opt_ops, i, n)};
        bench_rng_seed(&threads[i].rng, opt_seed, i);
    }
    double t0 = bench_now();
    bench_run_threads(n, frag_thread, threads, sizeof *threads);
    double seconds = bench_now() - t0;
    uint64_t mallocs = 0, live = 0;
    for (unsigned i = 0; i < n; i++) {
        mallocs += threads[i].mallocs;
        live += threads[i].live_bytes;
    }
    char extra[128];
    snprintf(extra, sizeof extra, "rounds=%llu live_kb=%llu frag_rss_kb=%ld", (unsigned long long)opt_rounds,
             (unsigned long long)(live / 1024), frag_rss_kb);
    bench_report("frag", n, mallocs, seconds, extra);
    pthread_barrier_destroy(&barrier);
    free(threads);
    return 0;
}
