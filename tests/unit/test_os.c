/* test_os.c — refused OS calls: maps fail as OOMs, refused releases stay mapped and charged until a retry succeeds. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"
#include "internal.h"

#define MIB ((size_t)1 << 20)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* the runtime maps memory of its own, and mapping calls cost it more */
#else
#define SANITIZED 0
#endif

static size_t page;

static void faults(const char *spec) {
    CHECK(hak_parse_fault_os(spec, &hak_opt.fault_os), "fault spec %s", spec);
    atomic_store(&hak_os_fault_calls, 0);
}

/* Only the m-th OS call from now fails (for the next million calls). */
static void fail_call(unsigned m) {
    faults("every:1000000");
    atomic_store(&hak_os_fault_calls, 1000000u - m);
}

/* Every page of [p, p + size) is mapped (mincore fails with ENOMEM on a hole). */
static bool all_mapped(const void *p, size_t size) {
    static unsigned char vec[1 << 16];
    CHECK(size / page <= sizeof vec, "range too large to check");
    if (mincore((void *)p, size, vec) == 0) return true;
    CHECK(errno == ENOMEM, "mincore: errno %d", errno);
    return false;
}

/* The process's mappings, read once from /proc/self/maps, to tell that a range is gone entirely. */
static struct { uintptr_t start, end; } maps[16384];
static int nmaps;

static void load_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f, "/proc/self/maps");
    char line[512];
    nmaps = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        if (sscanf(line, "%lx-%lx", &a, &b) == 2 && nmaps < (int)(sizeof maps / sizeof *maps)) {
            maps[nmaps].start = a;
            maps[nmaps++].end = b;
        }
    }
    fclose(f);
}

static bool none_mapped_loaded(const void *p, size_t size) {
    uintptr_t a = (uintptr_t)p, b = a + size;
    for (int i = 0; i < nmaps; i++)
        if (maps[i].start < b && a < maps[i].end) return false;
    return true;
}

static bool none_mapped(const void *p, size_t size) {
    load_maps();
    return none_mapped_loaded(p, size);
}

static void *map_ok(size_t size, size_t align) {
    hak_os_failure why;
    void *p = hak_os_map(HAK_ARENA_PROGRAM, size, align, &why);
    CHECK(p && ((uintptr_t)p & (align - 1)) == 0, "map %zu aligned %zu: %p, reason %d", size, align, p,
          (int)why.reason);
    return p;
}

/* The mapped-bytes invariant: what is live plus what the OS refused to take back. */
static void check_accounting(size_t base, size_t live, const char *when) {
    CHECK(hak_os_mapped_bytes() == base + live + hak_os_pending_bytes(),
          "%s: mapped %zu, want base %zu + live %zu + pending %zu", when, hak_os_mapped_bytes(), base, live,
          hak_os_pending_bytes());
}

/* A thread whose heap metadata cannot be mapped gets NULL + ENOMEM, then a heap once the OS agrees. */
static void test_heap_metadata_refused(void) {
    faults("every:1");
    errno = 0;
    CHECK(hak_malloc(16) == NULL && errno == ENOMEM, "no heap: NULL with ENOMEM (errno %d)", errno);
    errno = 0;
    CHECK(hak_malloc(MIB) == NULL && errno == ENOMEM, "large, refused: NULL with ENOMEM (errno %d)", errno);
    faults("off");
    void *p = hak_malloc(16);
    CHECK(p, "the heap is made on the next malloc");
    hak_free(p);
}

static void test_map_refused(void) {
    faults("every:1");
    size_t base = hak_os_mapped_bytes();
    hak_os_failure why;
    errno = EDOM;
    CHECK(hak_os_map(HAK_ARENA_PROGRAM, HAK_CHUNK_SIZE, HAK_CHUNK_SIZE, &why) == NULL, "every map refused");
    CHECK(why.reason == HAK_FAIL_OS && why.err == ENOMEM && why.bytes == HAK_CHUNK_SIZE,
          "refusal reported as the OS's: reason %d err %d bytes %zu", (int)why.reason, why.err, why.bytes);
    CHECK(errno == EDOM, "errno kept (%d)", errno);
    CHECK(hak_os_mapped_bytes() == base, "nothing charged for a refused map");
    faults("off");
}

/* every:2 from a known point: call 1 succeeds, 2 fails, 3 (the retry) succeeds, 4 fails. */
static void test_release_retried(void) {
    faults("off");
    CHECK(hak_os_pending_bytes() == 0, "nothing pending to start with");
    void *p = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
    void *q = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
    void *r = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
    size_t base = hak_os_mapped_bytes() - 3 * HAK_CHUNK_SIZE;
    memset(q, 0x5a, HAK_CHUNK_SIZE);
    uint64_t refusals = hak_os_release_failures();

    faults("every:2");
    hak_os_unmap(HAK_ARENA_PROGRAM, p, HAK_CHUNK_SIZE); /* call 1 */
    CHECK(none_mapped(p, HAK_CHUNK_SIZE), "p went back");
    check_accounting(base, 2 * HAK_CHUNK_SIZE, "p released");
    errno = EDOM;
    hak_os_unmap(HAK_ARENA_PROGRAM, q, HAK_CHUNK_SIZE); /* call 2: refused */
    CHECK(errno == EDOM, "errno kept across a refused release");
    CHECK(hak_os_pending_bytes() == HAK_CHUNK_SIZE, "q is pending (%zu)", hak_os_pending_bytes());
    CHECK(all_mapped(q, HAK_CHUNK_SIZE), "q still mapped");
    CHECK(((unsigned char *)q)[HAK_CHUNK_SIZE - 1] == 0x5a, "q's contents untouched past its record");
    check_accounting(base, HAK_CHUNK_SIZE, "q refused");
    CHECK(hak_os_mapped_bytes() == base + 2 * HAK_CHUNK_SIZE, "q stays charged");
    hak_os_unmap(HAK_ARENA_PROGRAM, r, HAK_CHUNK_SIZE); /* call 3 retries q and succeeds, call 4 refuses r */
    CHECK(none_mapped(q, HAK_CHUNK_SIZE), "q went back on the next unmap");
    CHECK(all_mapped(r, HAK_CHUNK_SIZE), "r still mapped");
    CHECK(hak_os_pending_bytes() == HAK_CHUNK_SIZE, "only r is pending");
    check_accounting(base, 0, "r refused");
    CHECK(hak_os_release_failures() == refusals + 2, "two refusals counted");

    faults("every:1");
    CHECK(hak_os_release_pending() == 0, "a refused retry releases nothing");
    CHECK(hak_os_pending_bytes() == HAK_CHUNK_SIZE, "r still pending after a refused retry");
    check_accounting(base, 0, "retry refused");
    faults("off");
    CHECK(hak_os_release_pending() == 1, "the retry releases r");
    CHECK(none_mapped(r, HAK_CHUNK_SIZE), "r went back");
    CHECK(hak_os_pending_bytes() == 0 && hak_os_mapped_bytes() == base, "back to the start");

    /* A refused release is also retried by the next map. */
    p = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
    fail_call(1);
    hak_os_unmap(HAK_ARENA_PROGRAM, p, HAK_CHUNK_SIZE);
    CHECK(hak_os_pending_bytes() == HAK_CHUNK_SIZE, "p pending");
    q = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
    CHECK(hak_os_pending_bytes() == 0, "the map retried p");
    check_accounting(base, HAK_CHUNK_SIZE, "after the map");
    hak_os_unmap(HAK_ARENA_PROGRAM, q, HAK_CHUNK_SIZE);
    faults("off");
}

/* every:2 placed so that the hint map (call 2) fails, the over-map (3) succeeds and its first trim (4) is refused. */
static void test_trim_refused(void) {
    faults("off");
    void *warm = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE); /* leaves a hint for the next map */
    size_t base = hak_os_mapped_bytes();
    uint64_t refusals = hak_os_release_failures();
    faults("every:2");
    atomic_store(&hak_os_fault_calls, 1);
    void *p = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
    size_t pending = hak_os_pending_bytes();
    CHECK(hak_os_release_failures() == refusals + 1, "one trim refused");
    CHECK(pending > 0 && pending <= HAK_CHUNK_SIZE && pending % page == 0, "the trim is pending (%zu)", pending);
    CHECK(all_mapped(p, HAK_CHUNK_SIZE), "the result is mapped in full");
    memset(p, 0xc3, HAK_CHUNK_SIZE);
    check_accounting(base, HAK_CHUNK_SIZE, "trim refused");
    faults("off");
    CHECK(hak_os_release_pending() == 1 && hak_os_pending_bytes() == 0, "the trim goes back");
    CHECK(((unsigned char *)p)[0] == 0xc3 && ((unsigned char *)p)[HAK_CHUNK_SIZE - 1] == 0xc3,
          "releasing the trim left the result alone");
    CHECK(all_mapped(p, HAK_CHUNK_SIZE), "the result is still mapped");
    check_accounting(base, HAK_CHUNK_SIZE, "trim released");
    hak_os_unmap(HAK_ARENA_PROGRAM, p, HAK_CHUNK_SIZE);
    hak_os_unmap(HAK_ARENA_PROGRAM, warm, HAK_CHUNK_SIZE);
}

static void test_grow_and_shrink_refused(void) {
    faults("off");
    size_t base = hak_os_mapped_bytes();
    void *p = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
    fail_call(1);
    CHECK(!hak_os_grow_in_place(HAK_ARENA_PROGRAM, p, HAK_CHUNK_SIZE, 2 * HAK_CHUNK_SIZE), "a refused mremap does not grow");
    check_accounting(base, HAK_CHUNK_SIZE, "grow refused");
    faults("off");
    size_t size = hak_os_grow_in_place(HAK_ARENA_PROGRAM, p, HAK_CHUNK_SIZE, 2 * HAK_CHUNK_SIZE) ? 2 * HAK_CHUNK_SIZE : HAK_CHUNK_SIZE;
    check_accounting(base, size, "grow allowed");
    hak_os_unmap(HAK_ARENA_PROGRAM, p, size);

    /* realloc moves a large block (above the medium classes' 1 MiB) whose growth was refused, contents and all. */
    unsigned char *a = hak_malloc(1100000);
    CHECK(a, "large block");
    for (size_t i = 0; i < 1100000; i++) a[i] = (unsigned char)(i * 7);
    fail_call(1); /* the mremap */
    unsigned char *b = hak_realloc(a, 3300000);
    CHECK(b && b != a, "realloc moved after the refused growth (%p -> %p)", (void *)a, (void *)b);
    for (size_t i = 0; i < 1100000; i++) CHECK(b[i] == (unsigned char)(i * 7), "moved byte %zu", i);
    faults("off");

    /* A refused shrink keeps the tail mapped and charged until hak_collect retries it. */
    size_t before = hak_os_mapped_bytes();
    fail_call(1); /* the tail's munmap */
    unsigned char *c = hak_realloc(b, 1050000);
    CHECK(c == b, "shrinking stays in place");
    size_t tail = hak_os_pending_bytes();
    CHECK(tail > 0 && hak_os_mapped_bytes() == before, "the refused tail is pending (%zu) and charged", tail);
    CHECK(hak_usable_size(c) >= 1050000 && hak_usable_size(c) < 3300000, "the block shrank anyway");
    for (size_t i = 0; i < 1050000; i++) CHECK(c[i] == (unsigned char)(i * 7), "kept byte %zu", i);
    faults("off");
    hak_collect();
    CHECK(hak_os_pending_bytes() == 0 && hak_os_mapped_bytes() == before - tail, "hak_collect released the tail");
    hak_free(c);
}

/* Random maps, grows and unmaps under prob:0.3: every step keeps the invariant, and at the end every range
 * handed out is unmapped and nothing is charged. */
#define RANGES 32
#define STEPS 300
static void test_random(uint64_t seed) {
    char spec[64];
    snprintf(spec, sizeof spec, "prob:0.3:%llu", (unsigned long long)seed);
    faults("off");
    CHECK(hak_os_pending_bytes() == 0, "seed %llu: clean start", (unsigned long long)seed);
    size_t base = hak_os_mapped_bytes();
    struct { unsigned char *p; size_t size; } live[RANGES], seen[STEPS];
    int n = 0, nseen = 0;
    size_t live_bytes = 0;
    uint64_t rng = seed * 0x9e3779b97f4a7c15ull;
    faults(spec);
    for (int step = 0; step < STEPS; step++) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        unsigned op = (unsigned)(rng >> 60) % 4;
        if ((op <= 1 && n < RANGES) || n == 0) {
            size_t size = HAK_CHUNK_SIZE + ((rng >> 20) % 512) * page;
            size_t align = (rng >> 40) & 1 ? HAK_CHUNK_SIZE : 2 * HAK_CHUNK_SIZE;
            hak_os_failure why;
            unsigned char *p = hak_os_map(HAK_ARENA_PROGRAM, size, align, &why);
            if (p) {
                CHECK(((uintptr_t)p & (align - 1)) == 0, "aligned");
                p[0] = p[size - 1] = (unsigned char)step;
                live[n].p = p;
                live[n++].size = size;
                seen[nseen].p = p;
                seen[nseen++].size = size;
                live_bytes += size;
            } else {
                CHECK(why.reason == HAK_FAIL_OS && why.err == ENOMEM, "refused as the OS would");
            }
        } else if (op == 2) {
            int i = (int)((rng >> 8) % (uint64_t)n);
            size_t grown = live[i].size + (1 + (rng >> 24) % 64) * page;
            unsigned char mark = live[i].p[0];
            if (hak_os_grow_in_place(HAK_ARENA_PROGRAM, live[i].p, live[i].size, grown)) {
                live_bytes += grown - live[i].size;
                live[i].size = grown;
                live[i].p[grown - 1] = mark;
                for (int k = 0; k < nseen; k++)
                    if (seen[k].p == live[i].p) seen[k].size = grown;
            }
        } else {
            int i = (int)((rng >> 8) % (uint64_t)n);
            live_bytes -= live[i].size;
            hak_os_unmap(HAK_ARENA_PROGRAM, live[i].p, live[i].size);
            live[i] = live[--n];
        }
        check_accounting(base, live_bytes, "random step");
        for (int i = 0; i < n; i++)
            CHECK(live[i].p[0] == live[i].p[live[i].size - 1], "seed %llu step %d: range %d intact",
                  (unsigned long long)seed, step, i);
    }
    faults("off");
    while (n) {
        n--;
        hak_os_unmap(HAK_ARENA_PROGRAM, live[n].p, live[n].size);
    }
    hak_os_release_pending();
    CHECK(hak_os_pending_bytes() == 0 && hak_os_mapped_bytes() == base, "seed %llu: all back (mapped %zu, base %zu)",
          (unsigned long long)seed, hak_os_mapped_bytes(), base);
    load_maps();
    for (int k = 0; k < nseen; k++)
        CHECK(none_mapped_loaded(seen[k].p, seen[k].size), "seed %llu: range %p still mapped: leaked",
              (unsigned long long)seed, (void *)seen[k].p);
}

/*
 * A real refusal: with the process at vm.max_map_count, unmapping the middle
 * of a mapping (which splits it) fails with ENOMEM. Page-wise alternating
 * protections on a PROT_NONE reservation (no memory committed) use up the
 * count. The sanitizer runtimes need mappings of their own, so they skip it.
 */
static void test_real_refusal(void) {
    if (SANITIZED) return;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    long max = 0;
    if (!f || fscanf(f, "%ld", &max) != 1) max = 0;
    if (f) fclose(f);
    if (max <= 0 || max > (1L << 20)) {
        printf("real refusal: skipped (vm.max_map_count %ld)\n", max);
        return;
    }
    faults("off");
    unsigned char *p = map_ok(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE);
    memset(p, 0x77, HAK_CHUNK_SIZE);
    size_t base = hak_os_mapped_bytes() - HAK_CHUNK_SIZE;
    size_t span = (size_t)(2 * max + 16) * page;
    unsigned char *flood = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(flood != MAP_FAILED, "reservation of %zu bytes", span);
    bool full = false;
    for (size_t off = page; off + page < span; off += 2 * page) {
        if (mprotect(flood + off, page, PROT_READ) != 0) {
            full = errno == ENOMEM;
            break;
        }
    }
    hak_os_unmap(HAK_ARENA_PROGRAM, p + 64 * page, page); /* splits p: refused at the limit */
    size_t pending = hak_os_pending_bytes();
    munmap(flood, span);
    CHECK(full, "the map count was never reached");
    CHECK(pending == page, "the refused page is pending (%zu)", pending);
    check_accounting(base, HAK_CHUNK_SIZE - page, "real refusal");
    CHECK(hak_os_mapped_bytes() == base + HAK_CHUNK_SIZE, "still all charged");
    CHECK(p[64 * page + page - 1] == 0x77 && p[0] == 0x77, "contents intact");
    CHECK(hak_os_release_pending() == 1 && hak_os_pending_bytes() == 0, "released once mappings are available");
    CHECK(none_mapped(p + 64 * page, page), "the page went back");
    hak_os_unmap(HAK_ARENA_PROGRAM, p, 64 * page);
    hak_os_unmap(HAK_ARENA_PROGRAM, p + 65 * page, HAK_CHUNK_SIZE - 65 * page);
    CHECK(hak_os_mapped_bytes() == base, "back to the start");
    printf("real refusal: munmap refused at vm.max_map_count %ld, retried after\n", max);
}

int main(void) {
    page = hak_os_page_size();
    hak_ensure_init(); /* options first, so that the ones set below stick */
    test_heap_metadata_refused();
    test_map_refused();
    test_release_retried();
    test_trim_refused();
    test_grow_and_shrink_refused();
    for (uint64_t seed = 1; seed <= (SANITIZED ? 5 : 20); seed++) test_random(seed);
    test_real_refusal();
    puts("os ok");
    return 0;
}
