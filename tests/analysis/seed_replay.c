/* seed_replay.c — emits hand-made hakmem refill paths through the real provider, for the analysis to judge. */

/*
 * Not an allocator test: this program links the `hakmem` LTTng-UST provider
 * itself (tracepoints/hakmem_tp.c, every event compiled in) and does not use
 * hakmem at all. Each scenario runs in a thread of its own, one after the
 * other, and emits with lttng_ust_tracepoint() the events of refills that the
 * real allocator cannot produce (the seed's failure, a self-contradicting
 * bitmap) next to ones it does produce, so tests/analysis/test_crafted.py can
 * check the cause `hakmem-trace oom-paths` gives each OOM.
 *
 * usage: seed_replay TIDFILE
 *        seed_replay --migrate TIDFILE
 * TIDFILE gets one line per scenario, "scenario vtid thread-name", written
 * before the scenario's events.
 *
 * --migrate (for a flight-recorder snapshot; needs CPUs 0 and 1): one failing
 * refill whose middle runs on another CPU. The main thread emits refill_enter
 * and bitmap_check on CPU 1, moves to CPU 0 for mid_simple_choice, chunk_expand
 * failed and superslab_alloc_fail os, moves back to CPU 1; then a thread pinned
 * to CPU 0 emits FLOOD claimed refills of class 5, far more than a small ring
 * buffer holds, so the snapshot keeps none of CPU 0's part of the path; then
 * the main thread emits refill_exit null and the oom (the snapshot trigger)
 * and waits for the snapshot. Exits 77 where CPU 0 and 1 cannot both be used.
 *
 * Every scenario but nochunk first completes one ordinary refill (claimed),
 * then fails the next:
 *   seed            the seed's failure: bitmap full, mid-simple path, then
 *                   superslab_alloc_fail (errno 12, os) with no chunk_expand,
 *                   refill_exit null, oom                 -> expansion_bypassed
 *   outside         a new chunk from the expansion, then superslab_alloc_fail
 *                   outside it (no failed chunk_expand before it)
 *                                                         -> expansion_bypassed
 *   bitmap_free     bitmap 0xfffffffe (one slab free, active 31) reported
 *                   full, then a failed expansion (os)   -> bitmap_inconsistent
 *   bitmap_active   bitmap 0xffffffff reported full with active_slabs 30,
 *                   then a failed expansion (os)         -> bitmap_inconsistent
 *   cap             what the allocator does under HAKMEM_MAX_MEMORY: a full
 *                   chunk, a failed expansion (cap), null -> cap_reached
 *   nochunk         the class's first refill under the cap: the head has no
 *                   chunk yet, so the bitmap check reports chunk 0, a full
 *                   mask and 0 active slabs (as superslab_claim_slab does),
 *                   then a failed expansion (cap)         -> cap_reached
 *   ust             a failed expansion (os) from a thread named like
 *                   lttng-ust's own ("<procname>-ust")   -> os_refused, labelled
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "hakmem_tp.h"

#define CLASS 4
#define BLOCK 128u
#define FULL 0xffffffffu
#define SLABS 32u
#define CHUNK_BYTES (2u * 1024 * 1024)

enum { CLAIMED = 0, CLAIM_FULL = 1 };
enum { PATH_MULTI = 0, PATH_SIMPLE = 1 };
enum { WHY_OFF = 0, WHY_ON = 1 };
enum { EXP_NEW = 1, EXP_FAILED = 3 };
enum { FAIL_OS = 1, FAIL_CAP = 2 };
enum { RES_CLAIMED = 0, RES_NULL = 2 };

static FILE *tidfile;
static __thread uint64_t seq; /* the thread's refill sequence number, as the allocator keeps it */
static char ust_name[16];

typedef void scenario_fn(uintptr_t chunk);

static const void *ptr(uintptr_t v) { return (const void *)v; }

/* malloc(BLOCK) refused: numbered like the allocator's, the first one cueing a snapshot. */
static _Atomic uint64_t ooms;
static void emit_oom(void) {
    uint64_t number = ++ooms;
    lttng_ust_tracepoint(hakmem, oom, (uint64_t)BLOCK, CLASS, BLOCK, seq, number, 0, (uint64_t)1, (uint64_t)0, ptr(0),
                         (uint8_t)(number == 1));
}

/* An ordinary refill that claims a slab from a chunk with one free slab. */
static void claimed_refill(uintptr_t chunk) {
    ++seq;
    lttng_ust_tracepoint(hakmem, refill_enter, CLASS, BLOCK, seq, ptr(0), ptr(chunk));
    lttng_ust_tracepoint(hakmem, bitmap_check, CLASS, BLOCK, seq, ptr(chunk), 0x7fffffffu, FULL, SLABS, 31u, CLAIMED);
    lttng_ust_tracepoint(hakmem, refill_exit, CLASS, BLOCK, seq, ptr(chunk + 31 * 65536), RES_CLAIMED);
}

static void enter_full(uintptr_t chunk, uint32_t bitmap, uint32_t active, int simple) {
    ++seq;
    lttng_ust_tracepoint(hakmem, refill_enter, CLASS, BLOCK, seq, ptr(chunk), ptr(chunk));
    lttng_ust_tracepoint(hakmem, bitmap_check, CLASS, BLOCK, seq, ptr(chunk), bitmap, FULL, SLABS, active, CLAIM_FULL);
    lttng_ust_tracepoint(hakmem, mid_simple_choice, CLASS, BLOCK, seq, (uint8_t)simple,
                         simple ? PATH_SIMPLE : PATH_MULTI, simple ? WHY_ON : WHY_OFF);
}

static void fail_null_oom(int reason) {
    lttng_ust_tracepoint(hakmem, superslab_alloc_fail, CLASS, BLOCK, seq, (uint64_t)CHUNK_BYTES, (int32_t)ENOMEM,
                         reason);
    lttng_ust_tracepoint(hakmem, refill_exit, CLASS, BLOCK, seq, ptr(0), RES_NULL);
    emit_oom();
}

static void expand_failed(uintptr_t chunk, uint32_t chunks) {
    lttng_ust_tracepoint(hakmem, chunk_expand, CLASS, BLOCK, seq, EXP_FAILED, ptr(chunk), chunks, (uint8_t)0);
}

static void seed(uintptr_t chunk) {
    enter_full(chunk, FULL, SLABS, 1);
    fail_null_oom(FAIL_OS); /* no chunk_expand: superslab_allocate was called around expand_superslab_head */
}

static void outside(uintptr_t chunk) {
    enter_full(chunk, FULL, SLABS, 1);
    lttng_ust_tracepoint(hakmem, chunk_expand, CLASS, BLOCK, seq, EXP_NEW, ptr(chunk + CHUNK_BYTES), 2u, (uint8_t)0);
    fail_null_oom(FAIL_OS);
}

static void bitmap_free(uintptr_t chunk) {
    enter_full(chunk, 0xfffffffeu, 31u, 0); /* slab 0 is free, yet the claim says full */
    expand_failed(chunk, 1u);
    fail_null_oom(FAIL_OS);
}

static void bitmap_active(uintptr_t chunk) {
    enter_full(chunk, FULL, 30u, 0); /* 32 bits set, active_slabs 30 */
    expand_failed(chunk, 1u);
    fail_null_oom(FAIL_OS);
}

static void cap(uintptr_t chunk) {
    enter_full(chunk, FULL, SLABS, 0);
    expand_failed(chunk, 1u);
    fail_null_oom(FAIL_CAP);
}

static void nochunk(uintptr_t chunk) {
    (void)chunk;
    enter_full(0, FULL, 0u, 0); /* superslab_claim_slab with no current chunk */
    expand_failed(0, 0u);
    fail_null_oom(FAIL_CAP);
}

static void ust(uintptr_t chunk) {
    enter_full(chunk, FULL, SLABS, 0);
    expand_failed(chunk, 1u);
    fail_null_oom(FAIL_OS);
}

struct scenario {
    const char *name;
    scenario_fn *fn;
    uintptr_t chunk;
};

static void *run(void *arg) {
    const struct scenario *s = arg;
    if (s->fn == ust && pthread_setname_np(pthread_self(), ust_name) != 0) exit(3);
    char comm[16] = "";
    pthread_getname_np(pthread_self(), comm, sizeof comm);
    fprintf(tidfile, "%s %ld %s\n", s->name, (long)syscall(SYS_gettid), comm);
    fflush(tidfile);
    if (s->chunk) claimed_refill(s->chunk);
    s->fn(s->chunk);
    return NULL;
}

/* The name lttng-ust gives its listener threads: the one it really uses, read back from /proc if present. */
static void find_ust_name(void) {
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[300], comm[32] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (fgets(comm, sizeof comm, f)) comm[strcspn(comm, "\n")] = 0;
        fclose(f);
        size_t n = strlen(comm);
        if (n > 4 && n < sizeof ust_name && strcmp(comm + n - 4, "-ust") == 0) {
            memcpy(ust_name, comm, n + 1);
            break;
        }
    }
    if (d) closedir(d);
    if (!ust_name[0]) snprintf(ust_name, sizeof ust_name, "%.11s-ust", program_invocation_short_name);
}

/* Run the calling thread on `cpu` only, and wait until it does. */
static int pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) return -1;
    for (int i = 0; sched_getcpu() != cpu; i++) {
        if (i > 1000) return -1;
        sched_yield();
    }
    return 0;
}

#define FLOOD 20000

static void *flood(void *arg) {
    (void)arg;
    if (pin(0) != 0) exit(77);
    for (uint64_t s = 1; s <= FLOOD; s++) {
        uintptr_t chunk = 0x7f0002000000u;
        lttng_ust_tracepoint(hakmem, refill_enter, 5, 160u, s, ptr(chunk), ptr(chunk));
        lttng_ust_tracepoint(hakmem, bitmap_check, 5, 160u, s, ptr(chunk), 0u, FULL, SLABS, 0u, CLAIMED);
        lttng_ust_tracepoint(hakmem, refill_exit, 5, 160u, s, ptr(chunk), RES_CLAIMED);
    }
    return NULL;
}

static int migrate(void) {
    const uintptr_t chunk = 0x7f0003000000u;
    if (pin(1) != 0 || pin(0) != 0 || pin(1) != 0) return 77; /* both CPUs usable, before any event */
    fprintf(tidfile, "migrate %ld %s\n", (long)syscall(SYS_gettid), program_invocation_short_name);
    fflush(tidfile);
    ++seq;
    lttng_ust_tracepoint(hakmem, refill_enter, CLASS, BLOCK, seq, ptr(chunk), ptr(chunk));
    lttng_ust_tracepoint(hakmem, bitmap_check, CLASS, BLOCK, seq, ptr(chunk), FULL, FULL, SLABS, SLABS, CLAIM_FULL);
    if (pin(0) != 0) return 6;
    lttng_ust_tracepoint(hakmem, mid_simple_choice, CLASS, BLOCK, seq, (uint8_t)0, PATH_MULTI, WHY_OFF);
    expand_failed(chunk, 1u);
    lttng_ust_tracepoint(hakmem, superslab_alloc_fail, CLASS, BLOCK, seq, (uint64_t)CHUNK_BYTES, (int32_t)ENOMEM,
                         FAIL_OS);
    if (pin(1) != 0) return 6;
    pthread_t t;
    if (pthread_create(&t, NULL, flood, NULL) != 0 || pthread_join(t, NULL) != 0) return 4;
    lttng_ust_tracepoint(hakmem, refill_exit, CLASS, BLOCK, seq, ptr(0), RES_NULL);
    emit_oom();
    sleep(2); /* the trigger snapshots the session while the process still runs */
    return 0;
}

int main(int argc, char **argv) {
    int migrating = argc == 3 && strcmp(argv[1], "--migrate") == 0;
    if (argc != 2 && !migrating) {
        fprintf(stderr, "usage: seed_replay [--migrate] TIDFILE\n");
        return 2;
    }
    tidfile = fopen(argv[argc - 1], "w");
    if (!tidfile) {
        perror(argv[argc - 1]);
        return 2;
    }
    if (migrating) {
        int status = migrate();
        return fclose(tidfile) == 0 ? status : 5;
    }
    find_ust_name();
    static const struct scenario scenarios[] = {
        {"seed", seed, 0x7f0000000000u},          {"outside", outside, 0x7f0000400000u},
        {"bitmap_free", bitmap_free, 0x7f0000800000u}, {"bitmap_active", bitmap_active, 0x7f0000c00000u},
        {"cap", cap, 0x7f0001000000u},            {"nochunk", nochunk, 0},
        {"ust", ust, 0x7f0001400000u},
    };
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, run, (void *)&scenarios[i]) != 0 || pthread_join(t, NULL) != 0) return 4;
    }
    return fclose(tidfile) == 0 ? 0 : 5;
}
