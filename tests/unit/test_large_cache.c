/* test_large_cache.c — large mappings: a bigger block gathers the pages of several cached ones, such a block grows and zeroes like any other, the cache holds what the program holds, huge pages as HAKMEM_HUGE_PAGES says, and nothing stays charged. */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "hakmem.h"
#include "internal.h"

#define MIB ((size_t)1 << 20)

/* Bytes of [p, p + len) resident, by mincore. */
static size_t resident_bytes(const void *p, size_t len) {
    size_t page = hak_os_page_size();
    uintptr_t start = (uintptr_t)p & ~(page - 1), end = ((uintptr_t)p + len + page - 1) & ~(page - 1);
    size_t n = (end - start) / page, resident = 0;
    unsigned char *vec = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(vec != MAP_FAILED, "mmap for mincore's vector");
    CHECK(mincore((void *)start, end - start, vec) == 0, "mincore");
    for (size_t i = 0; i < n; i++) resident += vec[i] & 1;
    munmap(vec, n);
    return resident * page;
}

static unsigned char *dirty_block(size_t size, int byte) {
    unsigned char *p = hak_malloc(size);
    CHECK(p != NULL, "malloc(%zu MiB) NULL", size / MIB);
    memset(p, byte, size);
    return p;
}

/* One byte per page, from the page's number and the seed. */
static void write_pattern(unsigned char *p, size_t size, unsigned seed) {
    for (size_t off = 0; off < size; off += 4096) p[off] = (unsigned char)(seed + off / 4096);
}

static size_t pattern_broken_at(const unsigned char *p, size_t size, unsigned seed) {
    for (size_t off = 0; off < size; off += 4096)
        if (p[off] != (unsigned char)(seed + off / 4096)) return off;
    return SIZE_MAX;
}

static void test_gather(void) {
    /* Two freed 16 MiB blocks, neither big enough for 30 MiB: the block grows the one and takes the other's pages. */
    unsigned char *a = dirty_block(16 * MIB, 0xaa), *b = dirty_block(16 * MIB, 0xbb);
    hak_free(a);
    hak_free(b);
    unsigned char *gathered = hak_malloc(30 * MIB);
    CHECK(gathered != NULL, "malloc(30 MiB) NULL");
    size_t resident = resident_bytes(gathered, 30 * MIB);
    if (!HAKMEM_CHECKED)
        CHECK(resident >= 26 * MIB,
              "a 30 MiB block over two cached 16 MiB mappings: %zu MiB of it resident before it was written "
              "(the larger one grown alone gives 16)",
              resident / MIB);
    write_pattern(gathered, 30 * MIB, 1);
    CHECK(pattern_broken_at(gathered, 30 * MIB, 1) == SIZE_MAX, "the gathered block does not keep what it holds");

    /* calloc over gathered pages: zero over the cached pages of both mappings. */
    unsigned char *c = dirty_block(16 * MIB, 0xcc);
    hak_free(gathered);
    hak_free(c);
    unsigned char *zeroed = hak_calloc(1, 44 * MIB);
    CHECK(zeroed != NULL, "calloc(44 MiB) NULL");
    size_t bad = SIZE_MAX;
    for (size_t i = 0; i < 44 * MIB && bad == SIZE_MAX; i += 512)
        if (zeroed[i] != 0 || zeroed[i + 511] != 0) bad = i;
    CHECK(bad == SIZE_MAX, "calloc's 44 MiB block over gathered pages: not zero at byte %zu", bad);

    /* A block of several kernel mappings grows by realloc and keeps its bytes (moved, or copied where the kernel
     * cannot move several mappings at once). */
    write_pattern(zeroed, 44 * MIB, 7);
    unsigned char *grown = hak_realloc(zeroed, 100 * MIB);
    CHECK(grown != NULL, "realloc of the gathered block to 100 MiB NULL");
    size_t at = pattern_broken_at(grown, 44 * MIB, 7);
    CHECK(at == SIZE_MAX, "realloc of a gathered block: byte %zu lost", at);
    write_pattern(grown, 100 * MIB, 9);
    hak_free(grown);
}

/* The cache holds as much as the program's large blocks in use, when that is more than twice the largest block:
 * with 8 blocks of 8 MiB live, the first 4 freed stay cached (sized by the largest alone, 32 MiB held 3). */
static void test_sized_by_live(void) {
    large_cache_flush();
    unsigned char *block[8];
    for (unsigned i = 0; i < 8; i++) block[i] = dirty_block(8 * MIB, (int)i);
    for (unsigned i = 0; i < 4; i++) hak_free(block[i]);
    if (!HAKMEM_CHECKED)
        CHECK(large_cache_bytes() >= 32 * MIB, "4 freed 8 MiB blocks beside 4 in use: %zu MiB cached, want 32",
              large_cache_bytes() / MIB);
    for (unsigned i = 4; i < 8; i++) hak_free(block[i]);
    large_cache_flush();
}

/* Whether the kernel mapping holding p is advised MADV_HUGEPAGE: "hg" among its VmFlags in /proc/self/smaps. */
static bool advised_huge(const void *p) {
    FILE *f = fopen("/proc/self/smaps", "r");
    CHECK(f != NULL, "open /proc/self/smaps");
    char line[512];
    bool inside = false, huge = false, found = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's first line; field names fail at the '-' */
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        } else if (inside && strncmp(line, "VmFlags:", 8) == 0) {
            huge = strstr(line, " hg") != NULL;
            found = true;
        }
    }
    fclose(f);
    CHECK(found, "no mapping holds %p in /proc/self/smaps", p);
    return huge;
}

/* The kernel's THP defrag setting lets a fault take a small page rather than wait for compaction. */
static bool defrag_never_waits(void) {
    char text[128] = {0};
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/defrag", "r");
    if (!f) return false;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    return n > 0 && (strstr(text, "[defer]") || strstr(text, "[never]"));
}

/* HAKMEM_HUGE_PAGES: on advises a fresh 8 MiB block's mapping, off does not, auto as the defrag setting allows. */
static void test_huge_pages(void) {
    const struct { hak_huge_mode mode; const char *name; } modes[] = {
        {HAK_HUGE_ON, "on"}, {HAK_HUGE_OFF, "off"}, {HAK_HUGE_AUTO, "auto"}};
    for (unsigned i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        hak_opt.huge_pages = modes[i].mode;
        large_cache_flush(); /* a cached mapping keeps the advice it had */
        unsigned char *p = dirty_block(8 * MIB, 0x5a);
        bool want = modes[i].mode == HAK_HUGE_ON || (modes[i].mode == HAK_HUGE_AUTO && defrag_never_waits());
        CHECK(advised_huge(p) == want, "HAKMEM_HUGE_PAGES=%s: an 8 MiB block's mapping %s MADV_HUGEPAGE",
              modes[i].name, want ? "lacks" : "has");
        hak_free(p);
    }
    large_cache_flush();
}

int main(void) {
    hak_ensure_init();
    /* The baseline after one large block's life: what the first one sets up for good is not the cache's. */
    hak_free(dirty_block(4 * MIB, 0x11));
    large_cache_flush();
    size_t committed = hak_os_committed_bytes(), mapped = hak_os_mapped_bytes();
    test_sized_by_live(); /* first: the largest block freed in the last 2 s sizes the cache too */
    test_gather();
    test_huge_pages();
    large_cache_flush();
    CHECK(hak_os_committed_bytes() == committed, "committed %zu B after every block was freed and the cache flushed, "
          "%zu before: moved pages charged twice or uncharged twice", hak_os_committed_bytes(), committed);
    CHECK(hak_os_mapped_bytes() == mapped, "mapped %zu B after every block was freed and the cache flushed, %zu before",
          hak_os_mapped_bytes(), mapped);
    puts("large cache ok");
    return 0;
}
