/* checked.h — the checked-build switch: src/ calls these hooks everywhere; in release builds they are empty inlines. */
#ifndef HAKMEM_CHECKED_H
#define HAKMEM_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "types.h"

/*
 * Shaped like trace.h: every function has one body, and the checked build
 * (HAKMEM_CHECKED=1, src/checked.c) adds to it through the hooks below. In a
 * release build each hook is an empty inline that returns its input, and
 * HAK_CHECK type-checks its condition without evaluating it, so the release
 * code is what it would be without them. Where code must branch on the
 * build, it tests HAKMEM_CHECKED itself: an integer constant, so the dead
 * branch is dropped even at -O0 (a `static const bool` is not, in C).
 */
#ifndef HAKMEM_CHECKED
#define HAKMEM_CHECKED 0
#endif

/* Each small block of the checked build ends with a trailer (requested size,
 * state), so a request takes the class of size + HAK_BLOCK_OVERHEAD, and at
 * least 8 bytes stay in front of the trailer for the free-list link. */
#define HAK_BLOCK_OVERHEAD (HAKMEM_CHECKED ? 8u : 0u)
/* The largest request the small classes serve. */
#define HAK_SMALL_REQUEST_MAX (HAK_SMALL_MAX - HAK_BLOCK_OVERHEAD)
/* The bytes a request for `size` takes from its class. */
static inline size_t hak_block_need(size_t size) {
    return HAKMEM_CHECKED ? (size < 8 ? 8 : size) + HAK_BLOCK_OVERHEAD : size;
}

/* Misuse reports: what the pointer is to the allocator. */
typedef enum hak_ck_kind {
    HAK_CK_DOUBLE_FREE,    /* the block is already free */
    HAK_CK_UNALLOCATED,    /* a block start hakmem never handed out */
    HAK_CK_FOREIGN,        /* not in any hakmem block */
    HAK_CK_INTERIOR,       /* inside a block, not at its start */
    HAK_CK_OVERFLOW,       /* bytes past the requested size were written */
    HAK_CK_USE_AFTER_FREE, /* a free block was written before it was handed out again */
} hak_ck_kind;
#define HAK_CK_NO_CLASS (-1)
#define HAK_CK_LARGE_CLASS HAK_NUM_CLASSES

#if HAKMEM_CHECKED
/* An invariant of the slab and chunk life cycle: one line naming it, then abort. */
#define HAK_CHECK(cond, what)                                                                   \
    do {                                                                                        \
        if (__builtin_expect(!(cond), 0)) hak_check_failed(what, __FILE_NAME__, __LINE__);     \
    } while (0)
_Noreturn void hak_check_failed(const char *what, const char *file, int line);
/* One line on fd 2 — "hakmem: <what> <p>[ (<detail>)][, class <c> (<size> B)], thread <tid>" — then abort(). */
_Noreturn void hak_ck_report(hak_ck_kind kind, const char *op, const void *p, const char *detail, int class_idx,
                             size_t size);
/* Finds out what is wrong with a pointer `op` (free, realloc, ...) was given, and reports it. */
_Noreturn void hak_ck_invalid_pointer(const char *op, const void *p);
/* A block handed out for `size` bytes (p may be NULL); returns p. */
void *hak_ck_block_alloc(void *p, size_t size);
/* A live block of ours with its canary intact, or no return. */
void hak_ck_block_free(void *p);
/* The requested size of a live block (bytes past it are the canary); `usable` is the release answer. */
size_t hak_ck_block_usable(const void *p, size_t usable, const char *op);
/* Room before the trailer of a live block; hak_ck_block_resize moves its end within it. */
size_t hak_ck_block_room(const void *p, size_t usable);
void *hak_ck_block_resize(void *p, size_t size);
void hak_ck_carved(uint8_t *first, uint32_t count, uint32_t block_size);
void hak_ck_chunk_idle(const hak_superslab *c);
/* A large block's mapping goes: a second free is then known by its address. */
void hak_ck_large_freed(const void *user, size_t requested);
#else
/* Type-checks the condition and evaluates nothing. */
#define HAK_CHECK(cond, what) ((void)sizeof((cond) ? 1 : 0), (void)(what))
static inline void hak_ck_report(hak_ck_kind kind, const char *op, const void *p, const char *detail, int class_idx,
                                 size_t size) {
    (void)kind, (void)op, (void)p, (void)detail, (void)class_idx, (void)size;
}
static inline void hak_ck_invalid_pointer(const char *op, const void *p) {
    (void)op, (void)p;
}
static inline void *hak_ck_block_alloc(void *p, size_t size) {
    (void)size;
    return p;
}
static inline void hak_ck_block_free(void *p) {
    (void)p;
}
static inline size_t hak_ck_block_usable(const void *p, size_t usable, const char *op) {
    (void)p, (void)op;
    return usable;
}
static inline size_t hak_ck_block_room(const void *p, size_t usable) {
    (void)p;
    return usable;
}
static inline void *hak_ck_block_resize(void *p, size_t size) {
    (void)size;
    return p;
}
static inline void hak_ck_carved(uint8_t *first, uint32_t count, uint32_t block_size) {
    (void)first, (void)count, (void)block_size;
}
static inline void hak_ck_chunk_idle(const hak_superslab *c) {
    (void)c;
}
static inline void hak_ck_large_freed(const void *user, size_t requested) {
    (void)user, (void)requested;
}
#endif

#endif
