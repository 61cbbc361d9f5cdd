/* chunk_window.c — the chunk window: one reservation of address space that chunks are carved from, so that free() knows a chunk's block by its address alone. */
#include <sys/mman.h>
#include <sys/resource.h>

#include "internal.h"

/*
 * free() must tell hakmem's small blocks from everything else without reading
 * memory that may not be mapped. The region map does it with a bounded lookup
 * (seven instructions); an address range does it with a subtraction and a
 * compare (four). The window is that range: reserved once, readable and zero
 * wherever no chunk is, so a bad pointer into it reads a zero slab header —
 * no owner, not live — which the checks refuse (an abort, never a fault). A
 * chunk's slot is made writable when carved (os.c) and read-only again, its
 * pages dropped, when released. Chunks past a full window, or when it could
 * not be reserved, are mapped apart and found through the region map.
 *
 * Reserving costs no memory: a read-only private mapping is not committed
 * (not even under vm.overcommit_memory=2), and pages never written stay the
 * kernel's zero page.
 */

/* Before the window exists no address is in it, whatever size a thread reads beside it: base - p wraps past
 * any size for every user-space p. Written once; a thread that reads the old pair, or one old and one new,
 * sends a free down the region map's path, which knows every chunk too. */
uintptr_t hak_window_base = (uintptr_t)1 << 63;
size_t hak_window_size;

static _Atomic int window_state; /* 0: not tried, 1: being reserved, 2: settled (reserved or not) */
/* A bit per chunk slot, taken lowest first so that the chunks stay together. A take scans at most 2048 words,
 * next to the system call that makes the slot writable. */
static _Atomic uint64_t taken[HAK_WINDOW_MAX / HAK_CHUNK_SIZE / 64];

/* What to reserve: the option, else the default; under RLIMIT_AS at most an eighth of it, so that the
 * address space a capped program has left is its own. */
static size_t window_wanted(void) {
    size_t size = hak_opt.chunk_window.set ? hak_opt.chunk_window.bytes : HAK_WINDOW_DEFAULT;
    struct rlimit as;
    if (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY && size > as.rlim_cur / 8)
        size = (size_t)(as.rlim_cur / 8);
    return size & ~HAK_CHUNK_MASK;
}

/* Not an OS call of the program's memory (no fault is injected into it, nothing is charged or counted): a
 * refusal only means smaller windows, then none. */
static void window_reserve(void) {
    for (size_t size = window_wanted(); size >= HAK_WINDOW_MIN; size = (size / 4) & ~HAK_CHUNK_MASK) {
        uint8_t *raw = mmap(NULL, size + HAK_CHUNK_SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                            -1, 0);
        if (raw == MAP_FAILED) continue;
        uintptr_t start = ((uintptr_t)raw + HAK_CHUNK_MASK) & ~(uintptr_t)HAK_CHUNK_MASK;
        size_t head = start - (uintptr_t)raw;
        if (head) munmap(raw, head);
        if (HAK_CHUNK_SIZE - head) munmap((void *)(start + size), HAK_CHUNK_SIZE - head);
        __atomic_store_n(&hak_window_base, start, __ATOMIC_RELEASE);
        __atomic_store_n(&hak_window_size, size, __ATOMIC_RELEASE);
        return;
    }
}

/* Whoever finds the window being reserved by another thread does without it this once, rather than wait: a
 * fork child of that moment would wait for good. */
static bool window_ready(void) {
    int state = atomic_load_explicit(&window_state, memory_order_acquire);
    if (state == 2) return true;
    if (state == 1 || !atomic_compare_exchange_strong_explicit(&window_state, &state, 1, memory_order_acq_rel,
                                                               memory_order_acquire))
        return state == 2;
    window_reserve();
    atomic_store_explicit(&window_state, 2, memory_order_release);
    return true;
}

uint8_t *chunk_window_take(void) {
    if (!window_ready()) return NULL;
    size_t slots = hak_window_size >> HAK_CHUNK_SHIFT;
    for (size_t w = 0; w * 64 < slots; w++) {
        uint64_t word = atomic_load_explicit(&taken[w], memory_order_relaxed);
        while (~word != 0) {
            unsigned bit = (unsigned)__builtin_ctzll(~word);
            size_t slot = w * 64 + bit;
            if (slot >= slots) return NULL;
            if (atomic_compare_exchange_weak_explicit(&taken[w], &word, word | (uint64_t)1 << bit,
                                                      memory_order_acquire, memory_order_relaxed))
                return (uint8_t *)(hak_window_base + (slot << HAK_CHUNK_SHIFT));
        }
    }
    return NULL;
}

void chunk_window_give(uint8_t *slot) {
    size_t index = ((uintptr_t)slot - hak_window_base) >> HAK_CHUNK_SHIFT;
    atomic_fetch_and_explicit(&taken[index / 64], ~((uint64_t)1 << (index % 64)), memory_order_release);
}
