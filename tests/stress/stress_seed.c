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

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* the runtime maps memory of its own: no whole-process mapping balance */
#else
#define SANITIZED 0
#endif

#include "check.h"

/* Built twice: against the hak_ API (STRESS_LIBC undefined; stats checked) and
 * against plain malloc for LD_PRELOAD runs. */
#ifdef STRESS_LIBC
#include <dlfcn.h>
#define ALLOC(n) malloc(n)
#define REALLOC(p, n) realloc(p, n)
#define FREE(p) free(p)
/* Under LD_PRELOAD=libhakmem.so the hak_ API is there too. */
static void hak_collect(void) {
    void (*collect)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "hak_collect");
    if (collect) collect();
}
#else
#include "hakmem.h"
#include "internal.h" /* faultos: the OS accounting is checked against the chunk lists */
#define ALLOC(n) hak_malloc(n)
#define REALLOC(p, n) hak_realloc(p, n)
#define FREE(p) hak_free(p)
#endif

/* cap: under HAKMEM_MAX_MEMORY; fault: under HAKMEM_FAULT_SUPERSLAB; faultos: under HAKMEM_FAULT_OS, with reallocs */
enum mode { MODE_NORMAL, MODE_CAP, MODE_FAULT, MODE_FAULTOS };
static const char *const mode_names[] = {"normal", "cap", "fault", "faultos"};

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

/* Mostly class 4 (113..128 bytes: the seed's 128-byte blocks), the rest spread over small sizes, a few mid and
 * large. */
static uint32_t pick_size(uint64_t *rng) {
    uint64_t r = splitmix(rng);
    unsigned k = (unsigned)(r % 100);
    if (k < 70) return 113 + (uint32_t)((r >> 8) % 16);
    if (k < 95) return 1 + (uint32_t)((r >> 8) % 1024);
    if (k < 99 || (r >> 32) % 8 != 0) return 1025 + (uint32_t)((r >> 8) % 31744);
    return 32769 + (uint32_t)((r >> 8) % (128 * 1024));
}

static void fill(item *it) {
    memcpy(it->p, &it->tag, it->size < 4 ? it->size : 4);
    if (it->size > 4) memset(it->p + 4, (int)(it->tag & 0xff), it->size - 4);
}

/* The first len bytes of p are still what fill() wrote for a block of `size` bytes with `tag`. */
static void check_pattern(const unsigned char *p, uint32_t size, uint32_t tag, uint32_t len) {
    uint32_t head = 0, want = tag, n = len < 4 ? len : 4;
    memcpy(&head, p, n);
    if (n < 4) want &= (1u << (8 * n)) - 1;
    CHECK(head == want, "block %p (%u bytes): header %#x, want %#x", (const void *)p, size, head, want);
    for (uint32_t i = 4; i < len; i++)
        CHECK(p[i] == (unsigned char)(tag & 0xff), "block %p (%u bytes) corrupted at byte %u", (const void *)p, size,
              i);
}

static void verify_and_free(item *it) {
    check_pattern(it->p, it->size, it->tag, it->size);
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

/* faultos: grows and shrinks a held block (large ones in place when the OS lets them); the contents
 * must survive whether it moved or not, and a refusal must leave the block as it was. */
static void realloc_item(item *it, uint64_t *rng) {
    uint64_t r = splitmix(rng);
    uint32_t ns;
    if (it->size > 32768) ns = (r & 1) ? it->size * 2 : 32769 + (it->size - 32769) / 4;
    else ns = pick_size(rng);
    errno = 0;
    unsigned char *q = REALLOC(it->p, ns);
    if (!q) {
        CHECK(errno == ENOMEM, "NULL from realloc(%u -> %u) with errno %d, want ENOMEM", it->size, ns, errno);
        nulls++;
        check_pattern(it->p, it->size, it->tag, it->size);
        return;
    }
    check_pattern(q, ns, it->tag, it->size < ns ? it->size : ns);
    if (q != it->p) { /* a move is a malloc and a free for the counters */
        allocs_ok++;
        frees_done++;
    }
    it->p = q;
    it->size = ns;
    it->tag = (uint32_t)splitmix(rng);
    fill(it);
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
        if (cfg.mode == MODE_FAULTOS && (r >> 56) < 8 && w->n > 0) {
            realloc_item(&w->held[(r >> 20) % (uint64_t)w->n], &w->rng);
        } else if (k < alloc_pct) {
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
                mode_names[cfg.mode], cfg.threads, cfg.live,
                cfg.ops, (unsigned long long)cfg.seed);
}

static void usage(void) {
    fprintf(stderr, "usage: stress_seed [normal|cap|fault|faultos] [--threads N] [--live N] [--ops N] [--seed N]\n");
    exit(2);
}

/* Under LD_PRELOAD with HAKMEM_FAULT_OS the harness's own memory (and glibc's, inside pthread_create)
 * can be refused too: like any careful program, it tries again. */
static void *harness_calloc(size_t n, size_t size) {
    void *p = NULL;
    for (int tries = 0; !p && tries < 1000; tries++) p = calloc(n, size);
    CHECK(p, "harness memory refused 1000 times in a row");
    return p;
}

static void start_thread(pthread_t *tid, const pthread_attr_t *attr, void *(*fn)(void *), void *arg) {
    int rc = EAGAIN;
    for (int tries = 0; rc == EAGAIN && tries < 1000; tries++) rc = pthread_create(tid, attr, fn, arg);
    CHECK(rc == 0, "pthread_create: %s", strerror(rc));
}

static void *idle_thread(void *arg) {
    return arg;
}

#ifndef STRESS_LIBC
/* Bytes of unnamed anonymous mappings: hakmem's chunks, large blocks and refused releases are among them. */
static long long anon_bytes(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f, "/proc/self/maps");
    char line[512];
    long long total = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b, inode;
        char perms[8] = "";
        int name = 0;
        /* Writable ones only: the chunk window's read-only rest holds no memory (its pages are the zero page). */
        if (sscanf(line, "%lx-%lx %7s %*s %*s %lu %n", &a, &b, perms, &inode, &name) >= 4 && inode == 0 &&
            perms[1] == 'w' && (line[name] == '\n' || line[name] == '\0'))
            total += (long long)(b - a);
    }
    fclose(f);
    return total;
}

/* Bytes the allocator's structures hold: chunks in the chains, retired, or in the reserve (no large block is live). */
static size_t chunk_bytes(void) {
    size_t chunks = superslab_reserve_count();
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_superslab_head *head = &hak_heads[HAK_ARENA_PROGRAM][c];
        pthread_mutex_lock(&head->lock);
        chunks += head->chunk_count;
        for (hak_superslab *r = head->retired; r; r = r->next_chunk) chunks++;
        pthread_mutex_unlock(&head->lock);
    }
    return chunks * HAK_CHUNK_SIZE;
}

/* faultos, everything freed and every thread gone: hakmem's mapped bytes are its chunks plus the releases the
 * OS refused; once injection stops those go back and the rest is chunks. A refused munmap that was dropped or
 * uncharged early, or never retried, breaks one of these. */
static void check_os_accounting(void) {
    size_t pending = hak_os_pending_bytes();
    size_t cached = large_cache_bytes();
    CHECK(hak_os_mapped_bytes() == chunk_bytes() + pending + cached,
          "mapped %zu, chunks %zu + pending %zu + large cache %zu", hak_os_mapped_bytes(), chunk_bytes(), pending,
          cached);
    /* Whether a release was refused depends on how many the run made (a chunk that never empties is never
     * unmapped): the run's refusals of any kind are checked in main; here only that injection was on. */
    CHECK(hak_opt.fault_os.mode != HAK_FAULT_OFF, "HAKMEM_FAULT_OS unset");
    hak_opt.fault_os.mode = HAK_FAULT_OFF; /* every thread is joined: nothing reads it concurrently */
    hak_os_release_pending();
    CHECK(hak_os_pending_bytes() == 0, "%zu bytes still pending with injection off", hak_os_pending_bytes());
    hak_reclaim_unused(NULL);
    CHECK(hak_os_mapped_bytes() == chunk_bytes(), "mapped %zu, chunks %zu after the retries",
          hak_os_mapped_bytes(), chunk_bytes());
}
#endif

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "normal")) cfg.mode = MODE_NORMAL;
        else if (!strcmp(argv[i], "cap")) cfg.mode = MODE_CAP;
        else if (!strcmp(argv[i], "fault")) cfg.mode = MODE_FAULT;
        else if (!strcmp(argv[i], "faultos")) cfg.mode = MODE_FAULTOS;
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
    /* Fixed-size stacks, and a first round of idle threads, so that glibc's stack cache is the same before and
     * after the workers and the mapping balance below sees only what the allocator kept. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 4u << 20);
    for (int t = 0; t < cfg.threads; t++) start_thread(&tids[t], &attr, idle_thread, NULL);
    for (int t = 0; t < cfg.threads; t++) pthread_join(tids[t], NULL);
#ifndef STRESS_LIBC
    long long anon_start = anon_bytes();
    size_t mapped_start = hak_os_mapped_bytes();
#endif
    for (int t = 0; t < cfg.threads; t++) pthread_mutex_init(&boxes[t].lock, NULL);
    for (int t = 0; t < cfg.threads; t++) {
        ws[t] = (worker){.id = t, .rng = cfg.seed * 1000003u + (uint64_t)t};
        ws[t].held = harness_calloc((size_t)cfg.live, sizeof(item));
        start_thread(&tids[t], &attr, thread_main, &ws[t]);
    }
    for (int t = 0; t < cfg.threads; t++) {
        pthread_join(tids[t], NULL);
        free(ws[t].held);
    }
    pthread_attr_destroy(&attr);
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
    if (cfg.mode == MODE_FAULTOS) {
        /* A refused chunk map is retried after the reserve and the large cache go back, so a run can see refusals
         * without a single NULL; refusals it must see. Chunks are reused and commit slab by slab, so a short
         * run maps few: a refused release or decommit counts as well. */
        CHECK(failures + st.large_ooms + hak_os_release_failures() > 0,
              "no mapping or release was ever refused: HAKMEM_FAULT_OS unset?");
        check_os_accounting();
        long long grew = 0;
        if (!SANITIZED) {
            /* The OS's view: mappings that appeared during the run are the ones hakmem still counts, give or
             * take its thread heaps' metadata pages. A refused munmap forgotten uncharged shows here. */
            grew = anon_bytes() - anon_start;
            long long counted = (long long)hak_os_mapped_bytes() - (long long)mapped_start;
            CHECK(grew <= counted + (256 << 10), "anonymous mappings grew by %lld bytes, hakmem counts %lld", grew,
                  counted);
        }
        printf("faultos: %llu refused munmaps, all retried; mapped bytes %zu = chunks held; anonymous mappings "
               "%+lld bytes\n",
               (unsigned long long)hak_os_release_failures(), hak_os_mapped_bytes(), grew);
    }
#endif
    if (cfg.mode == MODE_FAULT) CHECK(nulls > 0, "fault injection never surfaced: HAKMEM_FAULT_SUPERSLAB unset?");
    printf("stress_seed %s: %d threads, seed %llu, %ld allocations, %ld sent across threads, %ld NULLs (ENOMEM), "
           "all blocks intact\n",
           mode_names[cfg.mode], cfg.threads, (unsigned long long)cfg.seed, (long)allocs_ok, (long)sent, (long)nulls);
    finished = true;
    return 0;
}
