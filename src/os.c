/* os.c — every OS call hakmem makes for memory (mmap, munmap, mremap, madvise): committed memory and its cap, HAKMEM_FAULT_OS, refused releases, and the region map. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* 64 MiB of zero-initialised .bss: pages are only materialised where hakmem
 * maps memory, and reading an untouched one costs no memory. */
_Atomic uint8_t hak_region_map[HAK_REGION_COUNT];

/* Address space hakmem holds for blocks: chunks, large blocks, and ranges
 * whose release the OS refused (they are still mapped, so they still count). */
static _Atomic size_t mapped_bytes;
/* What HAKMEM_MAX_MEMORY caps, as a cgroup counts pages: memory hakmem has
 * committed (slabs claimed, chunk headers, large blocks, heaps' metadata), not
 * the address space a chunk reserves. Pages given back are uncharged. */
static _Atomic size_t committed_bytes[HAK_ARENAS]; /* the cap counts the program's only */

_Atomic uint64_t hak_os_fault_calls;

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

uint64_t hak_os_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

size_t hak_os_mapped_bytes(void) {
    return atomic_load_explicit(&mapped_bytes, memory_order_relaxed);
}

size_t hak_os_committed_bytes(void) {
    return atomic_load_explicit(&committed_bytes[HAK_ARENA_PROGRAM], memory_order_relaxed);
}

size_t hak_os_tracer_committed_bytes(void) {
    return HAK_ARENAS > 1 ? atomic_load_explicit(&committed_bytes[hak_arena_slot(HAK_ARENA_TRACER)], memory_order_relaxed)
                          : 0;
}

/* The tracer's memory is counted, never capped: it is not the program's. */
static bool charge(unsigned arena, size_t bytes) {
    uint64_t cap = arena == HAK_ARENA_PROGRAM ? hak_opt.max_memory : 0;
    _Atomic size_t *account = &committed_bytes[arena];
    size_t cur = atomic_load_explicit(account, memory_order_relaxed);
    for (;;) {
        if (cap && (cur > cap || bytes > cap - cur)) return false;
        if (atomic_compare_exchange_weak_explicit(account, &cur, cur + bytes, memory_order_relaxed,
                                                  memory_order_relaxed))
            return true;
    }
}

static void uncharge(unsigned arena, size_t bytes) {
    atomic_fetch_sub_explicit(&committed_bytes[arena], bytes, memory_order_relaxed);
}

bool hak_os_commit(unsigned arena, size_t bytes, hak_os_failure *why) {
    why->bytes = bytes;
    if (charge(arena, bytes)) {
        why->reason = HAK_FAIL_NONE;
        why->err = 0;
        return true;
    }
    why->reason = HAK_FAIL_CAP;
    why->err = ENOMEM;
    return false;
}

void hak_os_uncommit(unsigned arena, size_t bytes) {
    uncharge(arena, bytes);
}

/* ---- the system calls: HAKMEM_FAULT_OS is decided here and nowhere else ---- */

/* The tracer's calls are never refused by injection, and draw no number: the program's calls meet the very
 * refusals they meet untraced. */
static bool os_fault(unsigned arena) {
    return arena == HAK_ARENA_PROGRAM && hak_fault_fires(&hak_opt.fault_os, &hak_os_fault_calls, 0);
}

/* An injected refusal is what the kernel says when it has no room: ENOMEM. */
static void *sys_map(unsigned arena, void *hint, size_t size, int flags) {
    if (HAK_UNLIKELY(os_fault(arena))) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = mmap(hint, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

/* A window slot becomes a chunk's: writable, committed by the kernel as any private mapping (mprotect leaves
 * the range as it was when refused). */
static bool sys_make_writable(unsigned arena, void *base, size_t size) {
    if (HAK_UNLIKELY(os_fault(arena))) {
        errno = ENOMEM;
        return false;
    }
    return mprotect(base, size, PROT_READ | PROT_WRITE) == 0;
}

/* munmap fails for real with ENOMEM when splitting a mapping would exceed
 * vm.max_map_count; the range then stays mapped, as it does when injected.
 * A range of the chunk window is never unmapped (another mapping could land
 * in the hole, and free() would read it as a chunk): its pages go, it turns
 * read-only again, and its slots are free. An mprotect refused leaves it
 * writable, but zero all the same. */
static bool sys_unmap(unsigned arena, void *base, size_t size) {
    if (HAK_UNLIKELY(os_fault(arena))) {
        errno = ENOMEM;
        return false;
    }
    if (!hak_window_holds(base)) return munmap(base, size) == 0;
    if (madvise(base, size, MADV_DONTNEED) != 0) return false;
    (void)mprotect(base, size, PROT_READ);
    for (size_t off = 0; off < size; off += HAK_CHUNK_SIZE) chunk_window_give((uint8_t *)base + off);
    return true;
}

static bool sys_grow(unsigned arena, void *base, size_t old_size, size_t new_size) {
    if (HAK_UNLIKELY(os_fault(arena))) {
        errno = ENOMEM;
        return false;
    }
    if (mremap(base, old_size, new_size, 0) != MAP_FAILED) return true; /* no MREMAP_MAYMOVE: in place or not at all */
    if (errno != EFAULT) return false;
    /* The range is several kernel mappings (a large block gathered from cached ones, large_cache.c), and mremap
     * resizes one only: a mapping of the tail grows it all the same. */
    void *tail = (uint8_t *)base + old_size;
    void *p = mmap(tail, new_size - old_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p == tail) return true;
    if (p != MAP_FAILED) munmap(p, new_size - old_size); /* a kernel before 4.17 took the flag for a hint */
    errno = ENOMEM;
    return false;
}

/* ---- releases the OS refused ----
 * A refused munmap leaves the range mapped and writable, so the range itself
 * holds its record: the list needs no memory of its own and no bound. Ranges
 * on it stay charged, so the cap and the stats count what is really mapped;
 * the next map, unmap or grow (or a reclaim under refusal, or hak_collect)
 * tries them again. Threads only push one record or take the whole list, so
 * a CAS push against an exchange-to-NULL is free of ABA. */
typedef struct pending_release {
    struct pending_release *next;
    size_t size;
    size_t committed; /* the part still charged */
    unsigned arena;   /* to whose account */
} pending_release;

static _Atomic(pending_release *) pending;
static _Atomic size_t pending_bytes;
static _Atomic uint64_t release_failures;

static void pending_push(unsigned arena, void *base, size_t size, size_t committed) {
    pending_release *r = base;
    r->size = size;
    r->committed = committed;
    r->arena = arena;
    pending_release *head = atomic_load_explicit(&pending, memory_order_relaxed);
    do {
        r->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&pending, &head, r, memory_order_release,
                                                    memory_order_relaxed));
}

/* Gives [base, base+size) back, `committed` bytes of it charged; `counted` says
 * whether the mapped bytes count it already (a trim of an over-map does not).
 * Only what really went back leaves the counts; a refused range stays counted
 * and charged, and pending. */
static void release(unsigned arena, void *base, size_t size, size_t committed, bool counted) {
    if (sys_unmap(arena, base, size)) {
        if (counted) atomic_fetch_sub_explicit(&mapped_bytes, size, memory_order_relaxed);
        uncharge(arena, committed);
        return;
    }
    atomic_fetch_add_explicit(&release_failures, 1, memory_order_relaxed);
    if (!counted) atomic_fetch_add_explicit(&mapped_bytes, size, memory_order_relaxed); /* it is mapped */
    atomic_fetch_add_explicit(&pending_bytes, size, memory_order_relaxed);
    pending_push(arena, base, size, committed);
}

size_t hak_os_release_pending(void) {
    if (HAK_LIKELY(atomic_load_explicit(&pending, memory_order_relaxed) == NULL)) return 0;
    int saved = errno;
    pending_release *list = atomic_exchange_explicit(&pending, NULL, memory_order_acquire);
    size_t released = 0;
    while (list) {
        pending_release *r = list;
        list = r->next;
        size_t size = r->size, committed = r->committed;
        unsigned arena = r->arena;
        if (sys_unmap(arena, r, size)) {
            atomic_fetch_sub_explicit(&mapped_bytes, size, memory_order_relaxed);
            uncharge(arena, committed);
            atomic_fetch_sub_explicit(&pending_bytes, size, memory_order_relaxed);
            released++;
        } else {
            atomic_fetch_add_explicit(&release_failures, 1, memory_order_relaxed);
            pending_push(arena, r, size, committed); /* still mapped: its record is intact */
        }
    }
    errno = saved;
    return released;
}

size_t hak_os_pending_bytes(void) {
    return atomic_load_explicit(&pending_bytes, memory_order_relaxed);
}

uint64_t hak_os_release_failures(void) {
    return atomic_load_explicit(&release_failures, memory_order_relaxed);
}

/* ---- mappings ---- */

/* Last aligned end we got: the next mapping is tried right there first, which
 * usually succeeds and saves the over-map-and-trim dance. Per arena, so the
 * tracer's mappings do not change which calls the program's make (and so which
 * of them HAKMEM_FAULT_OS refuses). */
static _Atomic uintptr_t next_hint[HAK_ARENAS];

void *hak_os_reserve(unsigned arena, size_t size, size_t align, hak_os_failure *why) {
    int saved = errno;
    hak_os_release_pending(); /* what they give back may be what the cap needs */
    why->bytes = size;
    uintptr_t hint = atomic_load_explicit(&next_hint[arena], memory_order_relaxed);
    void *p = hint ? sys_map(arena, (void *)hint, size, MAP_NORESERVE) : NULL;
    if (p && ((uintptr_t)p & (align - 1)) != 0) {
        release(arena, p, size, 0, false);
        p = NULL;
    }
    if (!p) {
        size_t span = size + align;
        if (span < size) {
            errno = ENOMEM;
        } else {
            uint8_t *raw = sys_map(arena, NULL, span, MAP_NORESERVE);
            if (raw) {
                /* A refused trim stays pending beside the result, which is
                 * exactly [start, start + size) either way. */
                uintptr_t start = ((uintptr_t)raw + align - 1) & ~(uintptr_t)(align - 1);
                size_t head = start - (uintptr_t)raw;
                size_t tail = span - head - size;
                if (head) release(arena, raw, head, 0, false);
                if (tail) release(arena, (void *)(start + size), tail, 0, false);
                p = (void *)start;
            }
        }
    }
    if (!p) {
        why->reason = HAK_FAIL_OS;
        why->err = errno ? errno : ENOMEM;
        errno = saved;
        return NULL;
    }
    atomic_fetch_add_explicit(&mapped_bytes, size, memory_order_relaxed);
    atomic_store_explicit(&next_hint[arena], (uintptr_t)p + ((size + align - 1) & ~(align - 1)), memory_order_relaxed);
    errno = saved;
    why->reason = HAK_FAIL_NONE;
    why->err = 0;
    return p;
}

void *hak_os_reserve_chunk(unsigned arena, hak_os_failure *why) {
    uint8_t *slot = chunk_window_take();
    if (!slot) return hak_os_reserve(arena, HAK_CHUNK_SIZE, HAK_CHUNK_SIZE, why);
    int saved = errno;
    hak_os_release_pending();
    why->bytes = HAK_CHUNK_SIZE;
    if (!sys_make_writable(arena, slot, HAK_CHUNK_SIZE)) {
        chunk_window_give(slot);
        why->reason = HAK_FAIL_OS;
        why->err = errno ? errno : ENOMEM;
        errno = saved;
        return NULL;
    }
    atomic_fetch_add_explicit(&mapped_bytes, HAK_CHUNK_SIZE, memory_order_relaxed);
    errno = saved;
    why->reason = HAK_FAIL_NONE;
    why->err = 0;
    return slot;
}

void *hak_os_map(unsigned arena, size_t size, size_t align, hak_os_failure *why) {
    hak_os_release_pending(); /* what they give back may be what the cap needs */
    if (!hak_os_commit(arena, size, why)) return NULL;
    void *p = hak_os_reserve(arena, size, align, why);
    if (!p) uncharge(arena, size);
    return p;
}

void hak_os_unmap_part(unsigned arena, void *base, size_t size, size_t committed) {
    int saved = errno;
    hak_os_release_pending();
    release(arena, base, size, committed, true);
    errno = saved;
}

void hak_os_unmap(unsigned arena, void *base, size_t size) {
    hak_os_unmap_part(arena, base, size, size);
}

bool hak_os_decommit(unsigned arena, void *base, size_t size, size_t charged) {
    if (os_fault(arena)) return false;
    int saved = errno;
    bool done = madvise(base, size, MADV_DONTNEED) == 0;
    errno = saved;
    if (done) uncharge(arena, charged);
    return done;
}

bool hak_os_grow_in_place(unsigned arena, void *base, size_t old_size, size_t new_size) {
    int saved = errno;
    hak_os_release_pending(); /* a pending range right after this one would block the growth */
    bool grown = charge(arena, new_size - old_size);
    if (grown && !sys_grow(arena, base, old_size, new_size)) {
        uncharge(arena, new_size - old_size);
        grown = false;
    }
    if (grown) atomic_fetch_add_explicit(&mapped_bytes, new_size - old_size, memory_order_relaxed);
    errno = saved;
    return grown;
}

void *hak_os_move_grow(unsigned arena, void *base, size_t old_size, size_t new_size, size_t align) {
    int saved = errno;
    hak_os_failure why;
    void *target = NULL;
    if (charge(arena, new_size - old_size)) {
        target = hak_os_reserve(arena, new_size, align, &why);
        /* MREMAP_FIXED replaces the reservation with the old pages, moved: the kernel copies no byte. A range of
         * several kernel mappings cannot be resized (EFAULT), but since Linux 6.17 it can be moved whole, over the
         * reservation's start, whose rest is then the growth. */
        if (target && (os_fault(arena) ||
                       (mremap(base, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED &&
                        (errno != EFAULT ||
                         mremap(base, old_size, old_size, MREMAP_MAYMOVE | MREMAP_FIXED, target) == MAP_FAILED)))) {
            release(arena, target, new_size, 0, true);
            target = NULL;
        }
        if (target) atomic_fetch_sub_explicit(&mapped_bytes, old_size, memory_order_relaxed); /* moved away */
        else uncharge(arena, new_size - old_size);
    }
    errno = saved;
    return target;
}

bool hak_os_move_into(unsigned arena, void *src, size_t size, void *dst) {
    if (os_fault(arena)) return false;
    int saved = errno;
    bool moved = mremap(src, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, dst) != MAP_FAILED;
    errno = saved;
    if (moved) {
        atomic_fetch_sub_explicit(&mapped_bytes, size, memory_order_relaxed); /* [src, src + size) is gone */
        uncharge(arena, size);
    }
    return moved;
}

void *hak_os_map_metadata(unsigned arena, size_t size, hak_os_failure *why) {
    if (!hak_os_commit(arena, size, why)) return NULL;
    int saved = errno;
    void *p = sys_map(arena, NULL, size, 0);
    if (!p) {
        why->reason = HAK_FAIL_OS;
        why->err = errno ? errno : ENOMEM;
        uncharge(arena, size);
    }
    errno = saved;
    return p;
}

/* HAKMEM_HUGE_PAGES=auto: huge pages only where asking for them cannot make a
 * fault wait. Under the kernel's THP defrag settings "defer" and "never" a
 * fault takes a huge page when one is free and a small one otherwise; under
 * "madvise" (Debian's default), "defer+madvise" and "always", a fault in a
 * region advised MADV_HUGEPAGE first reclaims and compacts memory. On this
 * project's VMs such a fault took up to milliseconds: bench/grow at 1 thread
 * ran in 0.06-0.87 s with huge pages and 0.13 s without, the same 270 MiB
 * faulted in; bench/run's large cells swung 10x between runs. None of the
 * peers advises by default either. Read once, with no allocation. */
static bool defrag_never_waits(void) {
    static _Atomic int known; /* 0: not read yet; 1: never waits; 2: may wait */
    int k = atomic_load_explicit(&known, memory_order_relaxed);
    if (k == 0) {
        char text[128] = {0};
        int fd = open("/sys/kernel/mm/transparent_hugepage/defrag", O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, text, sizeof text - 1) : -1;
        if (fd >= 0) close(fd);
        k = n > 0 && (strstr(text, "[defer]") || strstr(text, "[never]")) ? 1 : 2;
        atomic_store_explicit(&known, k, memory_order_relaxed);
    }
    return k == 1;
}

static bool huge_wanted(void) {
    return hak_opt.huge_pages == HAK_HUGE_ON || (hak_opt.huge_pages == HAK_HUGE_AUTO && defrag_never_waits());
}

/* Huge pages for a big block: one fault per 2 MiB instead of 512, and one TLB
 * entry. Advice only: refused (really or injected), the block simply keeps
 * small pages. */
void hak_os_advise_huge(unsigned arena, void *base, size_t size) {
    int saved = errno;
    if (huge_wanted() && !os_fault(arena)) madvise(base, size, MADV_HUGEPAGE);
    errno = saved;
}

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25 /* Linux 6.1; older kernels refuse it (EINVAL), which advice may */
#endif
void hak_os_collapse_huge(unsigned arena, void *base) {
    int saved = errno;
    if (huge_wanted() && !os_fault(arena)) madvise(base, HAK_CHUNK_SIZE, MADV_COLLAPSE);
    errno = saved;
}
