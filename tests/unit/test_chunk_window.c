/* test_chunk_window.c — the chunk window: chunks are carved from it, a released slot is read-only and empty again, a bad pointer into it aborts, chunks past a full window (or with none) work through the region map, RLIMIT_AS bounds it. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"
#include "internal.h"

#define MIB ((size_t)1 << 20)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* the runtime reserves address space of its own: no RLIMIT_AS for it */
#else
#define SANITIZED 0
#endif

/* The permissions /proc/self/maps gives the page at p ("r--p", "rw-p"), or "" when none maps it. */
static void perms_at(const void *p, char out[8]) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f, "/proc/self/maps");
    char line[512];
    out[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &a, &b, perms) == 3 && (uintptr_t)p >= a && (uintptr_t)p < b) {
            memcpy(out, perms, sizeof perms);
            break;
        }
    }
    fclose(f);
}

static bool resident(const void *p) {
    unsigned char v = 0;
    CHECK(mincore((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, &v) == 0, "mincore");
    return v & 1;
}

static uint64_t live_blocks(void) {
    hak_stats st;
    hak_stats_get(&st);
    return st.allocs - st.frees;
}

/* Blocks of every kind of class come from the window, which is the default size and read-only between chunks. */
static void test_blocks_in_window(void) {
    static const size_t sizes[] = {8, 100, 1000, 5000, 30000, 100000};
    void *p[sizeof sizes / sizeof *sizes];
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        p[i] = hak_malloc(sizes[i]);
        CHECK(p[i] != NULL, "malloc(%zu)", sizes[i]);
        CHECK(hak_window_holds(p[i]), "malloc(%zu) = %p: outside the window [%#lx, +%zu MiB)", sizes[i], p[i],
              (unsigned long)hak_window_base, hak_window_size / MIB);
        CHECK(hak_region_kind((uintptr_t)p[i] - 1) == HAK_REGION_SUPERSLAB, "a window chunk is in the region map too");
    }
    struct rlimit as;
    CHECK(getrlimit(RLIMIT_AS, &as) == 0, "getrlimit");
    if (as.rlim_cur == RLIM_INFINITY)
        CHECK(hak_window_size == HAK_WINDOW_DEFAULT, "the window is %zu MiB, not the default 64 GiB",
              hak_window_size / MIB);
    char perms[8];
    perms_at(p[0], perms);
    CHECK(strcmp(perms, "rw-p") == 0, "a chunk's page is %s, not rw-p", perms);
    perms_at((void *)(hak_window_base + hak_window_size - 4096), perms);
    CHECK(strcmp(perms, "r--p") == 0, "the window's last page (no chunk there) is '%s', not r--p", perms);
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) hak_free(p[i]);
}

/* A slot given back is read-only and empty again, uncounted, and the next chunk takes it (lowest first). */
static void test_release(void) {
    hak_os_failure why;
    size_t mapped = hak_os_mapped_bytes();
    uint8_t *c = hak_os_reserve_chunk(HAK_ARENA_PROGRAM, &why);
    CHECK(c && hak_window_holds(c), "a chunk from the window: %p", (void *)c);
    CHECK(hak_os_mapped_bytes() == mapped + HAK_CHUNK_SIZE, "a carved slot counts as mapped");
    memset(c, 0x5a, 3 * 4096);
    hak_os_unmap_part(HAK_ARENA_PROGRAM, c, HAK_CHUNK_SIZE, 0);
    CHECK(hak_os_mapped_bytes() == mapped, "a released slot no longer counts as mapped");
    char perms[8];
    perms_at(c, perms);
    CHECK(strcmp(perms, "r--p") == 0, "a released slot is '%s', not r--p (never unmapped: a hole could be mapped)",
          perms);
    CHECK(!resident(c) && c[4096] == 0, "a released slot's pages went back (resident %d, byte %#x)", resident(c),
          c[4096]);
    uint8_t *again = hak_os_reserve_chunk(HAK_ARENA_PROGRAM, &why);
    CHECK(again == c, "the next chunk takes the lowest free slot: %p, not %p", (void *)again, (void *)c);
    CHECK(again[8192] == 0, "a slot carved again is zero");
    hak_os_unmap_part(HAK_ARENA_PROGRAM, again, HAK_CHUNK_SIZE, 0);
}

/* Runs fn in a child: it must die of SIGABRT with hakmem's invalid-pointer line, never of SIGSEGV. */
static void expect_invalid(const char *what, void (*fn)(void)) {
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    char out[1024];
    ssize_t n = 0, r;
    while ((r = read(fds[0], out + n, sizeof out - 1 - (size_t)n)) > 0) n += r;
    out[n] = '\0';
    close(fds[0]);
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "%s: the child ended with %s %d, not SIGABRT; "
          "stderr: '%s'", what, WIFSIGNALED(status) ? "signal" : "status",
          WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), out);
    const char *want = HAKMEM_CHECKED ? "hakmem: free of foreign pointer 0x" : "hakmem: free(): invalid pointer 0x";
    CHECK(strstr(out, want), "%s: stderr lacks '%s': '%s'", what, want, out);
}

static void free_where_no_chunk_is(void) {
    hak_free((void *)(hak_window_base + hak_window_size - HAK_CHUNK_SIZE + 3 * 65536 + 64));
}

static void free_into_released_slot(void) {
    hak_os_failure why;
    uint8_t *c = hak_os_reserve_chunk(HAK_ARENA_PROGRAM, &why);
    hak_os_unmap_part(HAK_ARENA_PROGRAM, c, HAK_CHUNK_SIZE, 0);
    hak_free(c + 8192 + 64);
}

/* Every slot taken: a class's next chunks are mapped apart, and their blocks are freed through the region map. */
static void test_full_window(void) {
    uint64_t live = live_blocks();
    size_t taken = 0;
    static uint8_t *slots[HAK_WINDOW_MAX / HAK_CHUNK_SIZE];
    for (uint8_t *s; (s = chunk_window_take());) slots[taken++] = s;
    CHECK(taken > 0, "no slot was free");
    enum { N = 6000 }; /* 1 KiB blocks: 6 MiB, more than two chunks */
    static void *blocks[N];
    size_t outside = 0;
    for (size_t i = 0; i < N; i++) {
        blocks[i] = hak_malloc(1000);
        CHECK(blocks[i] != NULL, "malloc(1000) #%zu with the window full", i);
        memset(blocks[i], (int)i, 1000);
        if (!hak_window_holds(blocks[i])) {
            outside++;
            CHECK(hak_region_kind((uintptr_t)blocks[i] - 1) == HAK_REGION_SUPERSLAB, "a chunk apart is in the map");
        }
    }
    CHECK(outside > 0, "a full window still gave every chunk");
    for (size_t i = 0; i < N; i++) hak_free(blocks[i]);
    CHECK(live_blocks() == live, "%llu blocks live after freeing all, %llu before",
          (unsigned long long)live_blocks(), (unsigned long long)live);
    for (size_t i = 0; i < taken; i++) chunk_window_give(slots[i]);
    printf("window full: %zu of %d blocks in chunks apart\n", outside, N);
}

/* The child's half of the runs below: env and limits set by the parent before exec. */
static int child_main(const char *mode) {
    void *p = hak_malloc(48);
    CHECK(p != NULL, "malloc(48)");
    if (strcmp(mode, "none") == 0) {
        CHECK(hak_window_size == 0 && !hak_window_holds(p), "HAKMEM_CHUNK_WINDOW=0 left a window of %zu MiB",
              hak_window_size / MIB);
        CHECK(hak_region_kind((uintptr_t)p - 1) == HAK_REGION_SUPERSLAB, "a chunk apart is in the region map");
    } else { /* "limited": RLIMIT_AS of 16 GiB */
        CHECK(hak_window_size > 0 && hak_window_size <= (size_t)2 << 30 && hak_window_holds(p),
              "under a 16 GiB RLIMIT_AS the window is %zu MiB (at most an eighth: 2048)", hak_window_size / MIB);
    }
    hak_free(p);
    CHECK(live_blocks() == 0, "blocks left live");
    return 0;
}

static void run_child(const char *mode, const char *window_env, rlim_t as_limit) {
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        if (window_env) setenv("HAKMEM_CHUNK_WINDOW", window_env, 1);
        if (as_limit) {
            struct rlimit as = {as_limit, as_limit};
            setrlimit(RLIMIT_AS, &as);
        }
        execl("/proc/self/exe", "test_chunk_window", mode, (char *)NULL);
        _exit(127);
    }
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the %s child failed (status %#x)", mode, status);
}

int main(int argc, char **argv) {
    if (argc > 1) return child_main(argv[1]);
    test_blocks_in_window();
    test_release();
    expect_invalid("a free where no chunk is", free_where_no_chunk_is);
    expect_invalid("a free into a released slot", free_into_released_slot);
    test_full_window();
    run_child("none", "0", 0);
    if (!SANITIZED) run_child("limited", NULL, (rlim_t)16 << 30);
    printf("test_chunk_window: ok\n");
    return 0;
}
