/* uses_hakmem.c — a program built against an installed hakmem: its malloc and the hak_ API both served by it.
 * Usage: uses_hakmem PREFIX — fails unless the hakmem it runs on was loaded from under PREFIX. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <hakmem.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { N = 200 };

static int fail(const char *what) {
    fprintf(stderr, "FAIL: %s\n", what);
    return 1;
}

/* N blocks of growing sizes from alloc, each written over; 0, or 1 on a NULL. */
static int fill(void *(*alloc)(size_t), size_t base, void **blocks) {
    for (int i = 0; i < N; i++) {
        blocks[i] = alloc(base + (size_t)i);
        if (!blocks[i])
            return 1;
        memset(blocks[i], i, base + (size_t)i);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2)
        return fail("usage: uses_hakmem PREFIX");
    Dl_info info;
    char lib[PATH_MAX], prefix[PATH_MAX];
    if (!dladdr((void *)hak_malloc, &info) || !info.dli_fname || !realpath(info.dli_fname, lib) ||
        !realpath(argv[1], prefix))
        return fail("cannot tell where hak_malloc comes from");
    size_t plen = strlen(prefix);
    if (strncmp(lib, prefix, plen) != 0 || lib[plen] != '/') {
        fprintf(stderr, "FAIL: hak_malloc comes from %s, not from under %s\n", lib, prefix);
        return 1;
    }

    /* Each phase must show in hakmem's own counters: malloc is hakmem's, not libc's. */
    void *blocks[N];
    hak_stats s0, s1, s2, s3;
    hak_stats_get(&s0);
    if (fill(malloc, 16, blocks))
        return fail("malloc returned NULL");
    hak_stats_get(&s1);
    for (int i = 0; i < N; i++)
        free(blocks[i]);
    if (fill(hak_malloc, 100, blocks))
        return fail("hak_malloc returned NULL");
    hak_stats_get(&s2);
    for (int i = 0; i < N; i++)
        hak_free(blocks[i]);
    hak_stats_get(&s3);
    if (s1.allocs - s0.allocs < N)
        return fail("hakmem did not count the program's mallocs: malloc is not hakmem's");
    if (s2.allocs - s1.allocs < N)
        return fail("hakmem did not count the hak_malloc calls");
    if (s3.frees - s0.frees < 2 * N)
        return fail("hakmem did not count the frees");
    printf("%s: malloc and hak_malloc served by hakmem (%llu allocs, %llu frees counted)\n", lib,
           (unsigned long long)(s2.allocs - s0.allocs), (unsigned long long)(s3.frees - s0.frees));
    return 0;
}
