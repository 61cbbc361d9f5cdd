/* stranded.c — blocks freed remotely while their allocating threads idle must serve the next thread under a cap below twice the live set. */
#define _GNU_SOURCE
#include "ownership.h"

/*
 * Three roles, each played by one or more threads:
 *   allocators  allocate L bytes of one class between them (every block stamped), hand all of it to the
 *               freers, and then idle, alive, on a barrier until the very end;
 *   freers      check and free every one of those blocks (remote frees: none of them owns a slab), the
 *               freers interleaved so that most slabs take their last free from either of them;
 *   takers      then allocate L bytes of the same class between them, stamp them, and check them once all
 *               are out (a block handed to two takers would show).
 * Under HAKMEM_MAX_MEMORY = L + 4 MiB < 2 L the takers can only succeed if the slabs the freers emptied
 * return to use while their owners idle; they must get no NULL. Every phase ends at a barrier, so what is
 * asserted does not depend on timing.
 */

static struct {
    unsigned class_idx;
    size_t bytes;
    unsigned allocators, freers, takers;
} cfg = {4, 12 * MIB, 1, 1, 1};

#define MAX_ROLE 8

static pthread_barrier_t phase;
static held *handed; /* the allocators' blocks, one slot each, taken by the freers */
static size_t total;  /* blocks in L */
static _Atomic long allocator_nulls;
static run taken[MAX_ROLE];

/* Thread i of `of` in a role gets blocks [share_begin(i, of), share_begin(i + 1, of)). */
static size_t share_begin(unsigned i, unsigned of) {
    return total * i / of;
}

/* Every thread (main included) passes every phase's barrier; reach(p) returns once all have finished phase p.
 * main checks the counters in COUNTED and EMPTIED, while nobody allocates or frees. */
enum { PHASE_ALLOCATED, PHASE_COUNTED, PHASE_FREED, PHASE_EMPTIED, PHASE_TAKEN, PHASE_REPORTED, PHASE_DONE };
static _Thread_local int phases_passed;
static void reach(int p) {
    while (phases_passed <= p) {
        pthread_barrier_wait(&phase);
        phases_passed++;
    }
}

static void *allocator(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    for (size_t i = share_begin(me, cfg.allocators); i < share_begin(me + 1, cfg.allocators); i++)
        handed[i] = new_block(cfg.class_idx, (uint16_t)i, &allocator_nulls);
    reach(PHASE_DONE); /* idle, alive, until the end */
    return NULL;
}

static void *freer(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    reach(PHASE_COUNTED);
    for (size_t i = me; i < total; i += cfg.freers)
        if (handed[i]) check_and_free(handed[i]);
    reach(PHASE_DONE);
    return NULL;
}

static void *taker(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    reach(PHASE_EMPTIED);
    size_t first = share_begin(me, cfg.takers);
    run_alloc(&taken[me], cfg.class_idx, share_begin(me + 1, cfg.takers) - first, (uint16_t)(0x8000 + first));
    reach(PHASE_REPORTED); /* every taker holds its share: now a block given twice would show */
    run_check(&taken[me]);
    run_free(&taken[me]);
    reach(PHASE_DONE);
    return NULL;
}

static void usage(void) {
    fprintf(stderr, "usage: stranded [--class C (1..27)] [--bytes N[K|M]] [--allocators N] [--freers N] [--takers N] "
                    "(1..%d each)\n", MAX_ROLE);
    exit(2);
}

static unsigned role_count(const char *text) {
    int n = atoi(text);
    if (n < 1 || n > MAX_ROLE) usage();
    return (unsigned)n;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--class") && i + 1 < argc) cfg.class_idx = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc) {
            if (!parse_bytes(argv[++i], &cfg.bytes)) usage();
        } else if (!strcmp(argv[i], "--allocators") && i + 1 < argc) cfg.allocators = role_count(argv[++i]);
        else if (!strcmp(argv[i], "--freers") && i + 1 < argc) cfg.freers = role_count(argv[++i]);
        else if (!strcmp(argv[i], "--takers") && i + 1 < argc) cfg.takers = role_count(argv[++i]);
        else usage();
    }
    if (cfg.class_idx < 1 || cfg.class_idx >= HAK_STATS_CLASSES || cfg.bytes == 0) usage();
    classes_init();
    size_t block = class_block_size(cfg.class_idx);
    total = (cfg.bytes + block - 1) / block;
    size_t live_bytes = total * block; /* L rounded up to whole blocks */
    size_t cap = cap_bytes();
    CHECK(cap, "HAKMEM_MAX_MEMORY is not set: the test asserts what a cap lets the takers have");
    CHECK(cap < 2 * live_bytes, "cap %.1f MiB >= 2 L = %.1f MiB: the takers could succeed without reusing anything",
          MIB_OF(cap), MIB_OF(2 * live_bytes));
    handed = calloc(total, sizeof *handed);
    CHECK(handed, "calloc");

    unsigned threads = cfg.allocators + cfg.freers + cfg.takers;
    pthread_barrier_init(&phase, NULL, threads + 1);
    pthread_t tids[3 * MAX_ROLE];
    unsigned t = 0;
    for (unsigned i = 0; i < cfg.allocators; i++) start_thread(&tids[t++], allocator, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < cfg.freers; i++) start_thread(&tids[t++], freer, (void *)(uintptr_t)i);
    for (unsigned i = 0; i < cfg.takers; i++) start_thread(&tids[t++], taker, (void *)(uintptr_t)i);

    reach(PHASE_ALLOCATED);
    uint64_t out = blocks_out();
    CHECK(allocator_nulls == 0, "the allocators got %ld NULLs: the live set must reach L = %.1f MiB under the cap",
          (long)allocator_nulls, MIB_OF(live_bytes));
    CHECK(out == total, "hakmem counts %llu blocks out, the allocators hold %zu", (unsigned long long)out, total);
    reach(PHASE_FREED);
    out = blocks_out();
    CHECK(out == 0, "hakmem counts %llu blocks out after the freers freed all of them", (unsigned long long)out);
    reach(PHASE_EMPTIED);
    reach(PHASE_TAKEN);
    long nulls = 0;
    for (unsigned i = 0; i < cfg.takers; i++) nulls += taken[i].nulls;
    printf("stranded: %ld NULLs for the takers; class %u (%zu B), L = %.2f MiB (%zu blocks) allocated by %u, freed "
           "remotely by %u while the allocators idle, taken again by %u; HAKMEM_MAX_MEMORY = %.2f MiB\n",
           nulls, cfg.class_idx, block, MIB_OF(live_bytes), total, cfg.allocators, cfg.freers, cfg.takers,
           MIB_OF(cap));
    fflush(stdout);
    reach(PHASE_DONE);
    for (unsigned i = 0; i < t; i++) join_thread(tids[i]);
    expect_balanced("every thread joined");
    CHECK(nulls == 0, "the takers got %ld NULLs (%.2f MiB) though only %.2f MiB was ever live: the slabs emptied by "
          "remote frees did not come back while their owners idled", nulls, MIB_OF((size_t)nulls * block),
          MIB_OF(live_bytes));
    free(handed);
    return 0;
}
