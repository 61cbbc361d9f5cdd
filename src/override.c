/* override.c — the only file defining malloc & co: the C library's names mapped onto the hak_ API. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "fast_path.h"
#include "hakmem.h"
#include "internal.h"

#define HAK_EXPORT __attribute__((visibility("default")))

/* The fast paths themselves, not a jump to hak_malloc and hak_free (fast_path.h). */
HAK_EXPORT void *malloc(size_t size) {
    return hak_malloc_fast(size);
}

HAK_EXPORT void free(void *p) {
    hak_free_fast(p);
}

HAK_EXPORT void *calloc(size_t count, size_t size) {
    return hak_calloc(count, size);
}

HAK_EXPORT void *realloc(void *p, size_t size) {
    return hak_realloc(p, size);
}

HAK_EXPORT void *reallocarray(void *p, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    bool named = hak_call_begin(HAK_CALL_REALLOCARRAY, count, size, 0, p);
    void *q = hak_realloc(p, total);
    hak_call_end(named);
    return q;
}

/* hak_memalign(alignment, size) under the name and arguments of the call the program made (an oom in the trace
 * says which). */
static void *memalign_named(hak_call_kind kind, size_t asked_align, size_t asked_size, size_t alignment,
                            size_t size) {
    bool named = hak_call_begin(kind, 1, asked_size, asked_align, NULL);
    void *p = hak_memalign(alignment, size);
    hak_call_end(named);
    return p;
}

HAK_EXPORT size_t malloc_usable_size(void *p) {
    return hak_usable_size(p);
}

static bool is_pow2(size_t x) {
    return x != 0 && (x & (x - 1)) == 0;
}

/* glibc's memalign: alignments that are not a power of two are rounded up;
 * only ones beyond any power of two are refused. */
HAK_EXPORT void *memalign(size_t alignment, size_t size) {
    if (alignment > SIZE_MAX / 2 + 1) {
        errno = EINVAL;
        return NULL;
    }
    size_t asked = alignment;
    if (!is_pow2(alignment)) alignment = alignment <= 1 ? 1 : (size_t)1 << (64 - __builtin_clzl(alignment - 1));
    return memalign_named(HAK_CALL_MEMALIGN, asked, size, alignment, size);
}

/* C17 / glibc >= 2.38: the alignment must be a power of two (0 counts as the
 * smallest, as in glibc). */
HAK_EXPORT void *aligned_alloc(size_t alignment, size_t size) {
    if (alignment != 0 && !is_pow2(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return memalign_named(HAK_CALL_ALIGNED_ALLOC, alignment, size, alignment ? alignment : 1, size);
}

HAK_EXPORT int posix_memalign(void **out, size_t alignment, size_t size) {
    if (!is_pow2(alignment) || alignment % sizeof(void *) != 0) return EINVAL;
    int saved = errno;
    void *p = memalign_named(HAK_CALL_POSIX_MEMALIGN, alignment, size, alignment, size);
    errno = saved;
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}

HAK_EXPORT void *valloc(size_t size) {
    return memalign_named(HAK_CALL_VALLOC, 0, size, hak_os_page_size(), size);
}

HAK_EXPORT void *pvalloc(size_t size) {
    size_t page = hak_os_page_size();
    if (size > SIZE_MAX - page) {
        errno = ENOMEM;
        return NULL;
    }
    size_t rounded = (size + page - 1) & ~(page - 1);
    return memalign_named(HAK_CALL_PVALLOC, 0, size, page, rounded ? rounded : page);
}
