/* os.c — where memory comes from: aligned mmap, the HAKMEM_MAX_MEMORY cap, and the region map. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* 64 MiB of zero-initialised .bss: pages are only materialised where hakmem
 * maps memory, and reading an untouched one costs no memory. */
_Atomic uint8_t hak_region_map[HAK_REGION_COUNT];

static _Atomic size_t mapped_bytes;

void hak_region_set(uintptr_t base, unsigned kind) {
    atomic_store_explicit(&hak_region_map[base >> HAK_CHUNK_SHIFT], (uint8_t)kind, memory_order_release);
}

size_t hak_os_page_size(void) {
    static _Atomic size_t page;
    size_t p = atomic_load_explicit(&page, memory_order_relaxed);
    if (!p) {
        long v = sysconf(_SC_PAGESIZE);
        p = v > 0 ? (size_t)v : 4096;
        atomic_store_explicit(&page, p, memory_order_relaxed);
    }
    return p;
}

size_t hak_os_mapped_bytes(void) {
    return atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
}

static bool charge(size_t bytes) {
    uint64_t cap = hak_opt.max_memory;
    size_t cur = atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
    for (;;) {
        if (cap && (cur > cap || bytes > cap - cur)) return false;
        if (atomic_compare_exchange_weak_explicit(&mapped_bytes, &cur, cur + bytes, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
}

static void uncharge(size_t bytes) {
    atomic_fetch_sub_explicit(&mapped_bytes, bytes, memory_order_relaxed);
}

static void *map_anonymous(void *hint, size_t size) {
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* Last aligned end we got: the next mapping is tried right there first, which
 * usually succeeds and saves the over-map-and-trim dance. */
static _Atomic uintptr_t next_hint;

void *hak_os_map(size_t size, size_t align, hak_os_failure *why) {
    int saved = errno;
    why->bytes = size;
    if (!charge(size)) {
        why->reason = HAK_FAIL_CAP;
        why->err = ENOMEM;
        return NULL;
    }
    uintptr_t hint = atomic_load_explicit(&next_hint, memory_order_relaxed);
    void *p = hint ? map_anonymous((void *)hint, size) : NULL;
    if (p && ((uintptr_t)p & (align - 1)) != 0) {
        munmap(p, size);
        p = NULL;
    }
    if (!p) {
        size_t span = size + align;
        if (span < size) {
            errno = ENOMEM;
        } else {
            uint8_t *raw = map_anonymous(NULL, span);
            if (raw) {
                uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
                size_t head = start - (uintptr_t)raw;
                size_t tail = span - head - size;
                if (head) munmap(raw, head);
                if (tail) munmap((void *)(start + size), tail);
                p = (void *)start;
            }
        }
    }
    if (!p) {
        why->reason = HAK_FAIL_OS;
        why->err = errno ? errno : ENOMEM;
        uncharge(size);
        errno = saved;
        return NULL;
    }
    atomic_store_explicit(&next_hint, (uintptr_t)p + ((size + align - 1) & ~(align - 1)), memory_order_relaxed);
    errno = saved;
    why->reason = HAK_FAIL_NONE;
    why->err = 0;
    return p;
}

void hak_os_unmap(void *base, size_t size) {
    int saved = errno;
    munmap(base, size);
    uncharge(size);
    errno = saved;
}

bool hak_os_grow_in_place(void *base, size_t old_size, size_t new_size) {
    if (!charge(new_size - old_size)) return false;
    int saved = errno;
    void *p = mremap(base, old_size, new_size, 0);
    errno = saved;
    if (p == MAP_FAILED) {
        uncharge(new_size - old_size);
        return false;
    }
    return true;
}
