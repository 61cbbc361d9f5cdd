/* common.c — option parsing, PRNG seeding, threads, and the result line shared by the bench workloads. */
#define _GNU_SOURCE /* dladdr */
#include "common.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void usage(FILE *out, const char *prog, const char *summary, const struct bench_opt *opts)
{
    fprintf(out, "usage: %s [options]\n%s\n\noptions (all take an unsigned integer):\n", prog, summary);
    for (const struct bench_opt *o = opts; o->name; o++)
        fprintf(out, "  --%-10s %s (default %" PRIu64 ")\n", o->name, o->help, *o->value);
}

void bench_parse(int argc, char **argv, const char *prog, const char *summary, const struct bench_opt *opts)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout, prog, summary, opts);
            exit(0);
        }
        const struct bench_opt *o = NULL;
        if (strncmp(arg, "--", 2) == 0) {
            const char *name = arg + 2;
            size_t len = strcspn(name, "=");
            for (const struct bench_opt *c = opts; c->name; c++)
                if (strlen(c->name) == len && strncmp(c->name, name, len) == 0)
                    o = c;
        }
        if (!o) {
            fprintf(stderr, "%s: unknown option '%s'\n", prog, arg);
            usage(stderr, prog, summary, opts);
            exit(2);
        }
        /* --name=VALUE or --name VALUE */
        const char *value = strchr(arg, '=');
        if (value)
            value++;
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            fprintf(stderr, "%s: %s needs a value\n", prog, arg);
            exit(2);
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || value[0] == '-') {
            fprintf(stderr, "%s: %s: '%s' is not an unsigned integer\n", prog, o->name, value);
            exit(2);
        }
        *o->value = v;
    }
}

/* splitmix64 finaliser: spreads (seed, stream) over the whole state so that
 * neighbouring thread numbers get unrelated sequences, and never gives 0
 * (xorshift's one fixed point) for the inputs used here in practice; 0 is
 * still mapped away below. */
void bench_rng_seed(bench_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (stream + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    r->s = z ? z : 1;
}

void bench_check_failed(const void *p, const char *where)
{
    fprintf(stderr, "bench: block %p corrupted (%s): its first word changed while it was live\n", p, where);
    exit(3);
}

void *bench_malloc(size_t size)
{
    void *p = malloc(size);
    if (!p) {
        fprintf(stderr, "bench: malloc(%zu) returned NULL (errno %d)\n", size, errno);
        exit(4);
    }
    return p;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t bench_share(uint64_t total, unsigned i, unsigned n)
{
    return total / n + (i < total % n ? 1 : 0);
}

static void start_thread(pthread_t *tid, void *(*fn)(void *), void *arg)
{
    int err = pthread_create(tid, NULL, fn, arg);
    if (err) {
        fprintf(stderr, "bench: pthread_create: %s\n", strerror(err));
        exit(5);
    }
}

void bench_run_threads(unsigned n, void *(*fn)(void *), void *args, size_t arg_size)
{
    pthread_t *tids = bench_malloc(n * sizeof *tids);
    for (unsigned i = 0; i < n; i++)
        start_thread(&tids[i], fn, (char *)args + (size_t)i * arg_size);
    for (unsigned i = 0; i < n; i++)
        pthread_join(tids[i], NULL);
    free(tids);
}

struct lane {
    bench_generation_fn *fn;
    void *arg;
    unsigned index;
    uint64_t generations;
};

struct generation {
    const struct lane *lane;
    uint64_t index;
};

static void *generation_thread(void *arg)
{
    const struct generation *g = arg;
    g->lane->fn(g->lane->arg, g->lane->index, g->index);
    return NULL;
}

static void *lane_thread(void *arg)
{
    const struct lane *l = arg;
    for (uint64_t i = 0; i < l->generations; i++) {
        struct generation g = {.lane = l, .index = i};
        pthread_t tid;
        start_thread(&tid, generation_thread, &g);
        pthread_join(tid, NULL);
    }
    return NULL;
}

void bench_run_lanes(unsigned lanes, uint64_t generations, bench_generation_fn *fn, void *arg)
{
    struct lane *l = bench_malloc(lanes * sizeof *l);
    for (unsigned i = 0; i < lanes; i++)
        l[i] = (struct lane){.fn = fn, .arg = arg, .index = i, .generations = bench_share(generations, i, lanes)};
    bench_run_threads(lanes, lane_thread, l, sizeof *l);
    free(l);
}

void bench_ring_init(struct bench_ring *r)
{
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
}

/* Only the producer writes tail and only the consumer head, so each reads its own counter relaxed. */
struct bench_batch *bench_ring_try_reserve(struct bench_ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (tail - atomic_load_explicit(&r->head, memory_order_acquire) == BENCH_RING)
        return NULL;
    return &r->slots[tail % BENCH_RING];
}

struct bench_batch *bench_ring_reserve(struct bench_ring *r)
{
    struct bench_batch *b;
    while (!(b = bench_ring_try_reserve(r)))
        sched_yield();
    return b;
}

void bench_ring_publish(struct bench_ring *r)
{
    atomic_store_explicit(&r->tail, atomic_load_explicit(&r->tail, memory_order_relaxed) + 1, memory_order_release);
}

struct bench_batch *bench_ring_take(struct bench_ring *r)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    while (atomic_load_explicit(&r->tail, memory_order_acquire) == head)
        sched_yield();
    return &r->slots[head % BENCH_RING];
}

void bench_ring_release(struct bench_ring *r)
{
    atomic_store_explicit(&r->head, atomic_load_explicit(&r->head, memory_order_relaxed) + 1, memory_order_release);
}

/* VmRSS and VmHWM in KiB, read with read(2) into a stack buffer so that
 * reading them allocates nothing. */
static void read_rss(long *rss_kb, long *hwm_kb)
{
    *rss_kb = *hwm_kb = -1;
    char buf[4096];
    int fd = open("/proc/self/status", O_RDONLY);
    if (fd < 0)
        return;
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (len <= 0)
        return;
    buf[len] = '\0';
    const char *p;
    if ((p = strstr(buf, "VmRSS:")))
        *rss_kb = strtol(p + 6, NULL, 10);
    if ((p = strstr(buf, "VmHWM:")))
        *hwm_kb = strtol(p + 6, NULL, 10);
}

/* The shared object (base name) whose malloc this process calls. */
static const char *malloc_from(void)
{
    void *(*volatile fn)(size_t) = malloc;
    Dl_info info;
    if (!dladdr((void *)fn, &info) || !info.dli_fname)
        return "unknown";
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? slash + 1 : info.dli_fname;
}

void bench_report(const char *name, unsigned threads, uint64_t ops, double seconds, const char *extra)
{
    long rss_kb, hwm_kb;
    read_rss(&rss_kb, &hwm_kb);
    printf("bench=%s threads=%u ops=%" PRIu64 " seconds=%.6f ops_per_sec=%.0f%s%s rss_kb=%ld hwm_kb=%ld malloc_from=%s\n",
           name, threads, ops, seconds, seconds > 0 ? (double)ops / seconds : 0.0, extra && *extra ? " " : "",
           extra ? extra : "", rss_kb, hwm_kb, malloc_from());
    fflush(stdout);
}
