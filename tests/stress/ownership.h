/* ownership.h — what the ownership tests share: stamped blocks of chosen classes, runs of them, the cap, the counters. */
#ifndef HAK_TEST_OWNERSHIP_H
#define HAK_TEST_OWNERSHIP_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "hakmem.h"
#include "internal.h" /* HAK_BLOCK_OVERHEAD (the checked build's trailer) and hak_parse_size (the cap's syntax) */

#define MIB ((size_t)1 << 20)
#define MIB_OF(bytes) ((double)(bytes) / (double)MIB)
/* What a cap leaves beyond the live set in these tests: room for the chunks' headers, per-thread partial slabs
 * and the light classes, but less than any stranded slab list (33 slabs of 64 KiB per class and thread today). */
#define CAP_MARGIN (4 * MIB)

/* Block sizes come from the stats (the public view of the classes), read once before any thread starts. */
static uint32_t class_block_bytes[HAK_STATS_CLASSES];

static inline void classes_init(void) {
    hak_stats st;
    hak_stats_get(&st);
    for (unsigned c = 0; c < HAK_STATS_CLASSES; c++) class_block_bytes[c] = st.classes[c].block_size;
}

static inline size_t class_block_size(unsigned c) {
    CHECK(c < HAK_STATS_CLASSES && class_block_bytes[c], "class %u unknown (classes_init not called?)", c);
    return class_block_bytes[c];
}

/* The request that fills one block of class c: a checked build puts its trailer inside the block, so it asks
 * for less; a stamp needs 8 bytes (class 0 has none to spare in the checked build). */
static inline size_t class_request(unsigned c) {
    size_t request = class_block_size(c) - HAK_BLOCK_OVERHEAD;
    CHECK(request >= 8, "class %u (%zu B) leaves %zu bytes for a stamp", c, class_block_size(c), request);
    return request;
}

/*
 * A held block: its pointer (47 bits of user address) with its 16-bit tag on top, so that one atomic word hands
 * both to another thread. The block itself starts with the tag, its length and a magic, and every later byte is
 * a function of the tag and the offset: the holder checks the block against the tag it was handed, so a block
 * handed out twice, overlapping another, or written after a free shows at the next check.
 */
typedef uint64_t held;
#define STAMP_MAGIC 0x0b5eull

static inline held hold(void *p, uint16_t tag) {
    CHECK(((uintptr_t)p >> 48) == 0, "pointer %p does not fit 48 bits", p);
    return (uint64_t)(uintptr_t)p | (uint64_t)tag << 48;
}
static inline unsigned char *held_ptr(held h) {
    return (unsigned char *)(uintptr_t)(h & ((1ull << 48) - 1));
}
static inline uint16_t held_tag(held h) {
    return (uint16_t)(h >> 48);
}

static inline unsigned char stamp_byte(uint16_t tag, size_t offset) {
    return (unsigned char)((tag * 131u + 7u) ^ (tag >> 8) ^ offset);
}

static inline void stamp_block(unsigned char *p, size_t len, uint16_t tag) {
    uint64_t head = (uint64_t)tag | (uint64_t)len << 16 | STAMP_MAGIC << 48;
    memcpy(p, &head, 8);
    for (size_t i = 8; i < len; i++) p[i] = stamp_byte(tag, i);
}

/* Checks a held block in full; returns its length. */
static inline size_t check_block(held h) {
    const unsigned char *p = held_ptr(h);
    uint16_t tag = held_tag(h);
    uint64_t head;
    memcpy(&head, p, 8);
    size_t len = (size_t)(head >> 16) & 0xffffffffu;
    CHECK((head >> 48) == STAMP_MAGIC && (uint16_t)head == tag, "block %p: head %#llx, want tag %#x", (const void *)p,
          (unsigned long long)head, tag);
    CHECK(len >= 8 && len <= HAK_SMALL_MAX, "block %p: stamped length %zu", (const void *)p, len);
    CHECK(hak_usable_size(p) >= len, "block %p: %zu usable bytes, %zu were stamped", (const void *)p,
          hak_usable_size(p), len);
    for (size_t i = 8; i < len; i++)
        CHECK(p[i] == stamp_byte(tag, i), "block %p (%zu B, tag %#x) corrupted at byte %zu", (const void *)p, len, tag,
              i);
    return len;
}

/* One block of class c, stamped; 0 when refused, which must be an ENOMEM and is counted in *nulls. */
static inline held new_block(unsigned c, uint16_t tag, _Atomic long *nulls) {
    size_t len = class_request(c);
    errno = 0;
    unsigned char *p = hak_malloc(len);
    if (!p) {
        CHECK(errno == ENOMEM, "hak_malloc(%zu) returned NULL with errno %d, want ENOMEM", len, errno);
        (*nulls)++;
        return 0;
    }
    stamp_block(p, len, tag);
    return hold(p, tag);
}

static inline void check_and_free(held h) {
    check_block(h);
    hak_free(held_ptr(h));
}

/* A run of blocks one thread holds (its array is the C library's memory: tests link hakmem_core, not malloc). */
typedef struct run {
    held *blocks;
    size_t n;
    _Atomic long nulls;
} run;

static inline void run_alloc(run *r, unsigned c, size_t n, uint16_t first_tag) {
    r->blocks = calloc(n ? n : 1, sizeof *r->blocks);
    CHECK(r->blocks, "calloc %zu held blocks", n);
    r->n = n;
    for (size_t i = 0; i < n; i++) r->blocks[i] = new_block(c, (uint16_t)(first_tag + i), &r->nulls);
}

static inline void run_check(const run *r) {
    for (size_t i = 0; i < r->n; i++)
        if (r->blocks[i]) check_block(r->blocks[i]);
}

static inline void run_free(run *r) {
    for (size_t i = 0; i < r->n; i++)
        if (r->blocks[i]) check_and_free(r->blocks[i]);
    free(r->blocks);
    r->blocks = NULL;
    r->n = 0;
}

static inline void start_thread(pthread_t *tid, void *(*fn)(void *), void *arg) {
    int rc = pthread_create(tid, NULL, fn, arg);
    CHECK(rc == 0, "pthread_create: %s", strerror(rc));
}

static inline void join_thread(pthread_t tid) {
    int rc = pthread_join(tid, NULL);
    CHECK(rc == 0, "pthread_join: %s", strerror(rc));
}

/* A byte count with the K/M/G suffixes HAKMEM_MAX_MEMORY takes; false if malformed. */
static inline bool parse_bytes(const char *text, size_t *out) {
    uint64_t v;
    if (!hak_parse_size(text, &v) || v > SIZE_MAX) return false;
    *out = (size_t)v;
    return true;
}

/* HAKMEM_MAX_MEMORY as hakmem reads it (set through the test's environment); 0 when unset. */
static inline size_t cap_bytes(void) {
    const char *text = getenv("HAKMEM_MAX_MEMORY");
    size_t cap = 0;
    if (text) CHECK(parse_bytes(text, &cap), "HAKMEM_MAX_MEMORY=%s is not a size", text);
    return cap;
}

static inline void expect_balanced(const char *when) {
    hak_stats st;
    hak_stats_get(&st);
    CHECK(st.allocs == st.frees, "%s: hakmem counts %llu allocs and %llu frees", when, (unsigned long long)st.allocs,
          (unsigned long long)st.frees);
}

static inline uint64_t blocks_out(void) {
    hak_stats st;
    hak_stats_get(&st);
    return st.allocs - st.frees;
}

#endif
