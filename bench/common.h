/* common.h — what every bench workload shares: options, seeded PRNG, block tags, timing, the result line. */
#ifndef HAKMEM_BENCH_COMMON_H
#define HAKMEM_BENCH_COMMON_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Every workload is a plain C program calling malloc/free, so that
 * LD_PRELOAD decides which allocator it measures. It does a fixed amount of
 * work (an op count split over the threads, each thread with its own seeded
 * PRNG), never "as much as fits in N seconds", so two runs do the same
 * allocations and their times compare directly.
 */

/* One `--name N` option; the value's default is whatever it holds before parsing. */
struct bench_opt {
    const char *name; /* without the leading dashes */
    uint64_t *value;
    const char *help;
};

/* Parses argv against opts (terminated by a {NULL} entry); prints usage and
 * exits 2 on anything unknown or malformed, 0 on --help. */
void bench_parse(int argc, char **argv, const char *prog, const char *summary, const struct bench_opt *opts);

/* xorshift64*: small, fast and good enough to pick sizes and slots; one per
 * thread, so threads never share a PRNG state (no false sharing, no order
 * dependence between threads). */
typedef struct {
    uint64_t s;
} bench_rng;

void bench_rng_seed(bench_rng *r, uint64_t seed, uint64_t stream);

static inline uint64_t bench_rand(bench_rng *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* Uniform in [0, n) for n < 2^32 (multiply-shift: no division on the hot path). */
static inline uint32_t bench_below(bench_rng *r, uint32_t n)
{
    return (uint32_t)(((bench_rand(r) >> 32) * (uint64_t)n) >> 32);
}

/* Uniform size in 8..1024 bytes (larson's distribution). */
static inline size_t bench_size_uniform(bench_rng *r)
{
    return 8 + bench_below(r, 1017);
}

/* Sizes skewed towards small objects, as real programs allocate them:
 * half in 8..64, 30 % in 65..256, 20 % in 257..1024. */
static inline size_t bench_size_skewed(bench_rng *r)
{
    uint32_t pick = bench_below(r, 10);
    if (pick < 5)
        return 8 + bench_below(r, 57);
    if (pick < 8)
        return 65 + bench_below(r, 192);
    return 257 + bench_below(r, 768);
}

/* A block's first word holds a tag derived from its address: writing it is
 * the "use" of the block (the allocator has to hand out writable memory), and
 * checking it before free catches an allocator that handed one block out twice
 * or scribbled on a live one. */
#define BENCH_TAG_SALT 0x9e3779b97f4a7c15ULL

static inline void bench_tag(void *p)
{
    *(volatile uint64_t *)p = (uint64_t)(uintptr_t)p ^ BENCH_TAG_SALT;
}

/* Exits the process (status 3) when the tag is wrong. */
void bench_check_failed(const void *p, const char *where);

static inline void bench_check(const void *p, const char *where)
{
    if (*(const volatile uint64_t *)p != ((uint64_t)(uintptr_t)p ^ BENCH_TAG_SALT))
        bench_check_failed(p, where);
}

/* malloc that exits (status 4) on NULL: a benchmark cannot go on without its block. */
void *bench_malloc(size_t size);

double bench_now(void); /* CLOCK_MONOTONIC seconds */

/* The share of `total` that thread `i` of `n` does (the first total % n threads do one more). */
uint64_t bench_share(uint64_t total, unsigned i, unsigned n);

/* Starts n threads running fn(i) for i in 0..n-1 and joins them all; exits on failure. */
void bench_run_threads(unsigned n, void *(*fn)(void *), void *args, size_t arg_size);

/* Thread churn: `lanes` lanes run side by side; each starts a worker thread,
 * joins it and starts the next, so `lanes` workers are alive at any time and
 * each one is a new thread that begins only after its predecessor in the lane
 * has exited (its thread-exit handlers included). The lanes share
 * `generations` workers (bench_share); worker `generation` of lane `lane`
 * runs fn(arg, lane, generation). A lane's workers run one after another, so
 * they may pass state through per-lane data without locks (pthread_join
 * orders them). */
typedef void bench_generation_fn(void *arg, unsigned lane, uint64_t generation);
void bench_run_lanes(unsigned lanes, uint64_t generations, bench_generation_fn *fn, void *arg);

/* A PRNG stream per (lane, generation) for up to 1024 lanes: lane in the low bits, generation above. */
static inline uint64_t bench_lane_stream(unsigned lane, uint64_t generation)
{
    return (generation << 10) | lane;
}

/*
 * A bounded single-producer/single-consumer ring of block batches. Blocks
 * travel BENCH_BATCH to a batch so that one ring operation (two atomic stores
 * and the cache-line transfers behind them) is spread over many mallocs and
 * frees, and the queue costs little next to the allocator. A waiting thread
 * yields the CPU: with more threads than cores its peer may not be running,
 * and spinning would only measure the scheduler.
 */
#define BENCH_BATCH 64
#define BENCH_RING 32

struct bench_batch {
    uint32_t count;
    void *blocks[BENCH_BATCH];
};

struct bench_ring {
    alignas(64) _Atomic uint64_t head; /* batches consumed; written by the consumer */
    alignas(64) _Atomic uint64_t tail; /* batches produced; written by the producer */
    alignas(64) struct bench_batch slots[BENCH_RING];
};

void bench_ring_init(struct bench_ring *r);
/* Producer: the batch to fill next, or NULL while the ring is full. */
struct bench_batch *bench_ring_try_reserve(struct bench_ring *r);
/* Producer: the batch to fill next, waiting for room. */
struct bench_batch *bench_ring_reserve(struct bench_ring *r);
/* Producer: hands the reserved batch to the consumer. */
void bench_ring_publish(struct bench_ring *r);
/* Consumer: the oldest published batch, waiting for one. */
struct bench_batch *bench_ring_take(struct bench_ring *r);
/* Consumer: gives the taken batch's slot back to the producer. */
void bench_ring_release(struct bench_ring *r);

/* Prints the result line:
 *   bench=NAME threads=N ops=OPS seconds=S ops_per_sec=X [EXTRA] rss_kb=R hwm_kb=H malloc_from=LIB
 * rss_kb/hwm_kb are VmRSS/VmHWM of /proc/self/status when the line is printed;
 * malloc_from names the object that defines the malloc this process calls,
 * so a preload that silently did not happen shows. */
void bench_report(const char *name, unsigned threads, uint64_t ops, double seconds, const char *extra);

#endif
