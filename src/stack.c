/* stack.c — (trace build) the program's call stack for an event: return addresses, taken without allocating. */
#define UNW_LOCAL_ONLY
#include <elf.h>
#include <libunwind.h>
#include <link.h>
#include <stdatomic.h>

#include "internal.h"
#include "trace.h"

/*
 * libunwind walks the stack from the .eh_frame unwind tables every binary of
 * Debian carries, so a program built without frame pointers still gives its
 * whole stack; a frame-pointer walk would stop (or stray) at the first frame
 * of such code. unw_backtrace keeps its caches in memory it maps itself and
 * takes no lock of its own with the per-thread caching policy set below (the
 * global cache's lock could be left held in a fork child); it finds a frame's
 * unwind table through dl_iterate_phdr, whose loader lock glibc's fork
 * initialises afresh in the child, as every C++ throw does.
 */

/* The first bytes of this library's own image (the linker's, hidden: never the program's). */
extern const ElfW(Ehdr) __ehdr_start __attribute__((visibility("hidden")));

/* The library's own frames: those of the mapping __ehdr_start begins. */
static _Atomic uintptr_t own_lo, own_hi;

static void find_own_range(void) {
    const ElfW(Ehdr) *eh = &__ehdr_start;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)((const char *)eh + eh->e_phoff);
    uintptr_t first = UINTPTR_MAX, end = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD) continue;
        if (ph[i].p_vaddr < first) first = ph[i].p_vaddr;
        if (ph[i].p_vaddr + ph[i].p_memsz > end) end = ph[i].p_vaddr + ph[i].p_memsz;
    }
    uintptr_t base = (uintptr_t)eh - first; /* the load bias; 0 for an executable linked at its address */
    unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
    atomic_store_explicit(&own_hi, base + end, memory_order_relaxed);
    atomic_store_explicit(&own_lo, base + first, memory_order_release);
}

/* Frames the library's own calls can take below the program's call (malloc -> a refill -> the failure). */
#define OWN_FRAMES_MAX 24

uint8_t hak_stack_capture(uint64_t frames[HAK_STACK_DEPTH]) {
    if (!atomic_load_explicit(&own_lo, memory_order_acquire)) find_own_range();
    uintptr_t lo = atomic_load_explicit(&own_lo, memory_order_relaxed);
    uintptr_t hi = atomic_load_explicit(&own_hi, memory_order_relaxed);
    void *raw[HAK_STACK_DEPTH + OWN_FRAMES_MAX];
    hak_tracer_turn turn = hak_tracer_enter();
    int n = unw_backtrace(raw, (int)(sizeof raw / sizeof raw[0]));
    hak_tracer_leave(turn);
    int skip = 0;
    while (skip < n && (uintptr_t)raw[skip] >= lo && (uintptr_t)raw[skip] < hi) skip++;
    /* Linked into the program itself (libhakmem-trace.a), every frame is "ours": keep them all rather than none. */
    if (skip == n) skip = 0;
    int depth = n - skip < HAK_STACK_DEPTH ? n - skip : HAK_STACK_DEPTH;
    for (int i = 0; i < depth; i++) frames[i] = (uint64_t)(uintptr_t)raw[skip + i];
    return (uint8_t)(depth > 0 ? depth : 0);
}
