/* stress_seed.c — the seed's scenario: 4 threads, class-4-heavy cross-thread alloc/free, every block checked before it is freed. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "check.h"

/* Built twice: against the hak_ API (STRESS_LIBC undefined; stats checked) and
 * against plain malloc for LD_PRELOAD runs. */
#ifdef STRESS_LIBC
#include <dlfcn.h>
#define ALLOC(n) malloc(n)
#define FREE(p) free(p)
/* Under LD_PRELOAD=libhakmem.so the hak_ API is there too. */
static void hak_collect(void) {
    void (*collect)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "hak_collect");
    if (collect) collect();
}
#else
#include "hakmem.h"
#define ALLOC(n) hak_malloc(n)
#define FREE(p) hak_free(p)
#endif

enum mode { MODE_NORMAL, MODE_CAP, MODE_FAULT };

typedef struct item {
    unsigned char *p;
    uint32_t size;
    uint32_t tag;
} item;

#define MAX_THREADS 16
#define BOX_CAP 4096

typedef struct mailbox {
    pthread_mutex_t lock;
    item items[BOX_CAP];
    int n;
} mailbox;

static struct {
    enum mode mode;
    int threads;
    int live;   /* blocks a thread holds at most */
    long ops;   /* operations per thread per phase */
    uint64_t seed;
} cfg = {MODE_NORMAL, 4, 30000, 150000, 1};

static mailbox boxes[MAX_THREADS];
static pthread_barrier_t barrier;
static _Atomic long nulls, allocs_ok, frees_done, sent;
static _Atomic long live_blocks; /* what the harness holds; compared with hakmem's stats */

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Mostly class 4 (65..128 bytes), the rest spread over small sizes, a few mid and large. */
static uint32_t pick_size(uint64_t *rng) {
    uint64_t r = splitmix(rng);
    unsigned k = (unsigned)(r % 100);
    if (k < 70) return 65 + (uint32_t)((r >> 8) % 64);
    if (k < 95) return 1 + (uint32_t)((r >> 8) % 1024);
    if (k < 99 || (r >> 32) % 8 != 0) return 1025 + (uint32_t)((r >> 8) % 31744);
    return 32769 + (uint32_t)((r >> 8) % (128 * 1024));
}

static void fill(item *it) {
    memcpy(it->p, &it->tag, it->size < 4 ? it->size : 4);
    if (it->size > 4) memset(it->p + 4, (int)(it->tag & 0xff), it->size - 4);
}

static void verify_and_free(item *it) {
    uint32_t head = 0;
    memcpy(&head, it->p, it->size < 4 ? it->size : 4);
    uint32_t want = it->tag;
    if (it->size < 4) want &= (1u << (8 * it->size)) - 1;
    CHECK(head == want, "block %p (%u bytes): header %#x, want %#x", (void *)it->p, it->size, head, want);
    for (uint32_t i = 4; i < it->size; i++)
        CHECK(it->p[i] == (unsigned char)(it->tag & 0xff), "block %p (%u bytes) corrupted at byte %u",
              (void *)it->p, it->size, i);
    FREE(it->p);
    frees_done++;
    live_blocks--;
}

static bool try_alloc(item *it, uint64_t *rng) {
    it->size = pick_size(rng);
    errno = 0;
    it->p = ALLOC(it->size);
    if (!it->p) {
        CHECK(errno == ENOMEM, "NULL from malloc(%u) with errno %d, want ENOMEM", it->size, errno);
        CHECK(cfg.mode != MODE_NORMAL, "malloc(%u) returned NULL with no cap and no fault injection (tid %ld)",
              it->size, (long)syscall(SYS_gettid));
        nulls++;
        return false;
    }
    it->tag = (uint32_t)splitmix(rng);
    fill(it);
    allocs_ok++;
    live_blocks++;
    return true;
}

static void drain_box(int t) {
    mailbox *b = &boxes[t];
    item local[BOX_CAP];
    pthread_mutex_lock(&b->lock);
    int n = b->n;
    memcpy(local, b->items, sizeof(item) * (size_t)n);
    b->n = 0;
    pthread_mutex_unlock(&b->lock);
    for (int i = 0; i < n; i++) verify_and_free(&local[i]);
}

static bool send_to(int t, item *it) {
    mailbox *b = &boxes[t];
    pthread_mutex_lock(&b->lock);
    bool ok = b->n < BOX_CAP;
    if (ok) b->items[b->n++] = *it;
    pthread_mutex_unlock(&b->lock);
    if (ok) sent++;
    return ok;
}

typedef struct worker {
    int id;
    uint64_t rng;
    item *held;
    int n;
} worker;

/* One phase of mixed work; alloc_pct of operations allocate. */
static void run_phase(worker *w, long ops, int alloc_pct, int live_limit) {
    for (long op = 0; op < ops; op++) {
        uint64_t r = splitmix(&w->rng);
        int k = (int)(r % 100);
        if (k < alloc_pct) {
            if (w->n >= live_limit) verify_and_free(&w->held[--w->n]);
            item it;
            if (!try_alloc(&it, &w->rng)) continue;
            int to = (int)((r >> 16) % (uint64_t)cfg.threads);
            if ((r >> 40) & 1 && to != w->id && send_to(to, &it)) continue;
            w->held[w->n++] = it;
        } else if (k < alloc_pct + (100 - alloc_pct) * 3 / 4) {
            if (w->n > 0) {
                int i = (int)((r >> 20) % (uint64_t)w->n);
                item victim = w->held[i];
                w->held[i] = w->held[--w->n];
                verify_and_free(&victim);
            }
        } else {
            drain_box(w->id);
        }
    }
}

static void free_everything(worker *w) {
    while (w->n > 0) verify_and_free(&w->held[--w->n]);
    pthread_barrier_wait(&barrier); /* nobody sends after this */
    drain_box(w->id);
    pthread_barrier_wait(&barrier);
}

static void *thread_main(void *arg) {
    worker *w = arg;
    if (cfg.mode == MODE_CAP) {
        /* 1: grow until the cap refuses, and keep going through the refusals. */
        run_phase(w, cfg.ops, 85, cfg.live);
        pthread_barrier_wait(&barrier);
        if (w->id == 0) {
            CHECK(nulls > 0, "the cap never refused memory: raise the live set or lower HAKMEM_MAX_MEMORY");
#ifndef STRESS_LIBC
            hak_stats st;
            hak_stats_get(&st);
            CHECK((long)(st.allocs - st.frees) == live_blocks, "stats say %lld live, the harness holds %ld",
                  (long long)(st.allocs - st.frees), (long)live_blocks);
#endif
        }
        pthread_barrier_wait(&barrier);
        /* 2: give everything back. Blocks freed into a live thread's current
         * slabs wait for that thread; hak_collect() is how a quiescent thread
         * hands them back (the allocator then gives empty chunks of any
         * class to whichever class needs memory). */
        free_everything(w);
        hak_collect();
        long refused = nulls;
        pthread_barrier_wait(&barrier);

        /* 3: a working set well under the cap must now be served in full. */
        run_phase(w, cfg.ops / 2, 60, cfg.live / 16);
        CHECK(nulls == refused, "after freeing everything, %ld allocations were refused under the cap",
              (long)(nulls - refused));
    } else {
        run_phase(w, cfg.ops, 60, cfg.live);
    }
    free_everything(w);
    return NULL;
}

/* CHECK exits the process from whichever thread failed: name the run, so a
 * failure seen once in a soak can be replayed. */
static bool finished;
static void say_seed_on_failure(void) {
    if (!finished)
        fprintf(stderr, "stress_seed failed: replay with: stress_seed %s --threads %d --live %d --ops %ld --seed %llu\n",
                cfg.mode == MODE_NORMAL ? "normal" : cfg.mode == MODE_CAP ? "cap" : "fault", cfg.threads, cfg.live,
                cfg.ops, (unsigned long long)cfg.seed);
}

static void usage(void) {
    fprintf(stderr, "usage: stress_seed [normal|cap|fault] [--threads N] [--live N] [--ops N] [--seed N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "normal")) cfg.mode = MODE_NORMAL;
        else if (!strcmp(argv[i], "cap")) cfg.mode = MODE_CAP;
        else if (!strcmp(argv[i], "fault")) cfg.mode = MODE_FAULT;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) cfg.threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--live") && i + 1 < argc) cfg.live = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ops") && i + 1 < argc) cfg.ops = atol(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc) cfg.seed = strtoull(argv[++i], NULL, 0);
        else usage();
    }
    if (cfg.threads < 2 || cfg.threads > MAX_THREADS || cfg.live < 1 || cfg.ops < 1) usage();
    atexit(say_seed_on_failure);
    pthread_barrier_init(&barrier, NULL, (unsigned)cfg.threads);
    pthread_t tids[MAX_THREADS];
    worker ws[MAX_THREADS];
    for (int t = 0; t < cfg.threads; t++) pthread_mutex_init(&boxes[t].lock, NULL);
    for (int t = 0; t < cfg.threads; t++) {
        ws[t] = (worker){.id = t, .rng = cfg.seed * 1000003u + (uint64_t)t};
        ws[t].held = calloc((size_t)cfg.live, sizeof(item));
        CHECK(ws[t].held, "harness memory");
        CHECK(pthread_create(&tids[t], NULL, thread_main, &ws[t]) == 0, "pthread_create");
    }
    for (int t = 0; t < cfg.threads; t++) {
        pthread_join(tids[t], NULL);
        free(ws[t].held);
    }
    CHECK(live_blocks == 0, "harness still holds %ld blocks", (long)live_blocks);
#ifndef STRESS_LIBC
    hak_stats st;
    hak_stats_get(&st);
    CHECK(st.allocs == st.frees, "stats unbalanced at the end: %llu allocs, %llu frees",
          (unsigned long long)st.allocs, (unsigned long long)st.frees);
    CHECK((long)st.allocs == allocs_ok, "stats count %llu allocs, the harness made %ld",
          (unsigned long long)st.allocs, (long)allocs_ok);
    uint64_t ooms = st.large_ooms, failures = 0;
    for (int c = 0; c < HAK_STATS_CLASSES; c++) {
        ooms += st.classes[c].ooms;
        failures += st.classes[c].failures;
    }
    CHECK((long)ooms == nulls, "stats count %llu OOMs, the harness saw %ld NULLs", (unsigned long long)ooms,
          (long)nulls);
    if (cfg.mode == MODE_FAULT) CHECK(ooms <= failures + st.large_ooms, "every OOM comes from a refused mapping");
#endif
    if (cfg.mode == MODE_FAULT) CHECK(nulls > 0, "fault injection never surfaced: HAKMEM_FAULT_SUPERSLAB unset?");
    printf("stress_seed %s: %d threads, seed %llu, %ld allocations, %ld sent across threads, %ld NULLs (ENOMEM), "
           "all blocks intact\n",
           cfg.mode == MODE_NORMAL ? "normal" : cfg.mode == MODE_CAP ? "cap" : "fault", cfg.threads,
           (unsigned long long)cfg.seed, (long)allocs_ok, (long)sent, (long)nulls);
    finished = true;
    return 0;
}
