/* steal.c — what another thread's heap holds with every block back, reached before an OOM: a handshake with its fast paths instead of a lock on them. */
#define _GNU_SOURCE
#include <linux/membarrier.h>
#include <sched.h>

#include "heap_lists.h"
#include "internal.h"

/*
 * Before an OOM, the slabs a heap holds whose every block came back — in its
 * ring (current slab included) or on its full list, an idle thread's as much
 * as a busy one's — are memory that remains. The owner's fast paths take no
 * lock and no atomic read-modify-write, so a stealer shuts them out with a
 * handshake instead:
 *
 *  - Every allocator call that may touch its heap opens one of the heap's op
 *    words (types.h: odd while the call is open; a store on entry, a release
 *    store on the way out, one add each that also counts the call's block),
 *    and a slow path, before it changes its heap's lists, waits while the
 *    heap's `stealing` word is set (hak_heap_enter_slow), its call still open.
 *  - Phase 1: the stealer sets `stealing`, then membarrier puts every thread
 *    of the process through a full memory barrier, so both words read even
 *    afterwards mean the owner is in no call, and any slow path it enters
 *    from then on sees `stealing` and waits: the lists hold still.
 *  - Phase 2: it points every class's `current` at the empty slab and sets the
 *    owner of every slab on the lists to NONE (mallocs then go to the waiting
 *    slow path, frees push on the stacks), and membarrier again: even words now
 *    mean no fast path can still be touching those slabs. It collects each
 *    slab's stack, returns the ones with no block out to their chunks, and
 *    hands the rest back as they were.
 *  - A call open at either check: the owner is busy, not idle. Everything is
 *    put back and the heap is skipped.
 * Each side stores, then (through membarrier) reads the other's word, so one
 * of them always sees the other. The owner pays no store for it that its
 * counts did not cost already; the stealer two system calls per heap, only
 * when memory was refused. Without membarrier (an old kernel, a seccomp
 * filter) nothing is stolen.
 */

static _Atomic int barrier_cmd; /* 0: not asked yet; -1: none; else the membarrier command */

static bool membarrier_all(void) {
    int cmd = atomic_load_explicit(&barrier_cmd, memory_order_acquire);
    if (cmd == 0) {
        cmd = syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0
                  ? MEMBARRIER_CMD_PRIVATE_EXPEDITED
                  : -1;
        atomic_store_explicit(&barrier_cmd, cmd, memory_order_release);
    }
    return cmd > 0 && syscall(SYS_membarrier, cmd, 0, 0) == 0;
}

/* The call stays open while it waits: it may hold a slab of its own (a
 * free that took one to 0, say) that the stealer must not take. A stealer
 * that sees it set backs off and clears `stealing`; one past both checks is
 * only finishing. Either way the wait ends. */
void hak_heap_wait_steal(hak_heap *heap) {
    while (atomic_load_explicit(&heap->stealing, memory_order_acquire)) sched_yield();
}

static bool owner_busy(const hak_heap *heap) {
    return !membarrier_all() || hak_op_open(heap);
}

/* Every slab of a cycle (ring or full list) gets `owner`. */
static void mark_cycle(hak_slab *anchor, hak_heap *owner) {
    if (!anchor || anchor == &hak_empty_slab) return;
    hak_slab *s = anchor;
    do {
        atomic_store_explicit(&s->owner, owner, memory_order_release);
        s = s->next;
    } while (s != anchor);
}

/* The slabs of a cycle with no block out (after collecting their stacks) go
 * to their chunks; *anchor becomes NULL when none remains. */
static size_t release_empty_cycle(hak_slab **anchor, uint32_t *count) {
    size_t n = 0;
    hak_slab *s = *anchor;
    for (uint32_t k = *count; k > 0; k--) {
        hak_slab *next = s->next;
        remote_free_collect(s);
        if (s->used == 0) {
            if (s->next == s) {
                *anchor = NULL;
            } else {
                s->prev->next = s->next;
                s->next->prev = s->prev;
                if (*anchor == s) *anchor = s->prev;
            }
            s->next = s->prev = NULL;
            s->on_full = 0;
            (*count)--;
            slab_release(s);
            n++;
        }
        s = next;
    }
    return n;
}

/* One class: `ring` is its ring's anchor (current, or the empty slab); returns what remains of it. */
static hak_slab *release_empty_class(hak_class_cache *cc, hak_slab *ring, size_t *n) {
    *n += release_empty_cycle(&cc->full, &cc->full_count);
    if (ring == &hak_empty_slab) return ring;
    *n += release_empty_cycle(&ring, &cc->ring_count);
    return ring ? ring : &hak_empty_slab;
}

static size_t steal_from(hak_heap *heap, hak_heap *self) {
    size_t n = 0;
    if (heap == self) { /* in its own slow path: nothing to shut out */
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            hak_class_cache *cc = &heap->cls[c];
            hak_set_current(cc, release_empty_class(cc, hak_current(cc), &n));
        }
        return n;
    }
    unsigned idle = 0;
    if (!atomic_compare_exchange_strong_explicit(&heap->stealing, &idle, 1, memory_order_acq_rel,
                                                 memory_order_relaxed)) {
        /* Another thread is at it: what it gives back is ours to claim too, once it is done. */
        while (atomic_load_explicit(&heap->stealing, memory_order_acquire)) sched_yield();
        return 1;
    }
    if (!owner_busy(heap)) { /* phase 1: the lists hold still */
        hak_slab *ring[HAK_NUM_CLASSES];
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            hak_class_cache *cc = &heap->cls[c];
            ring[c] = hak_current(cc);
            hak_set_current(cc, &hak_empty_slab);
            mark_cycle(ring[c], HAK_OWNER_NONE);
            mark_cycle(cc->full, HAK_OWNER_NONE);
        }
        if (!owner_busy(heap)) /* phase 2: no fast path is on those slabs */
            for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) ring[c] = release_empty_class(&heap->cls[c], ring[c], &n);
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            hak_class_cache *cc = &heap->cls[c];
            mark_cycle(ring[c], heap);
            mark_cycle(cc->full, heap);
            hak_set_current(cc, ring[c]);
        }
    }
    atomic_store_explicit(&heap->stealing, 0, memory_order_release);
    return n;
}

/* The heap's outbox (types.h) onto its slab's stack, phase 1 only: with the heap shut out its remote frees wait
 * in hak_heap_enter_slow before they touch the outbox. A slab it finds unheld the stealer lets go again, or
 * returns to its chunk when those were its last blocks. */
static void flush_outbox_of(hak_heap *heap, hak_heap *self) {
    if (!hak_outbox_slab(heap)) return; /* a hint, read without the handshake */
    bool shut_out = false;
    if (heap != self) {
        unsigned idle = 0;
        if (!atomic_compare_exchange_strong_explicit(&heap->stealing, &idle, 1, memory_order_acq_rel,
                                                     memory_order_relaxed))
            return; /* another stealer is at it */
        shut_out = !owner_busy(heap);
    }
    if ((heap == self || shut_out) && hak_outbox_slab(heap)) {
        hak_slab *unheld = remote_outbox_push(heap);
        if (unheld) slab_let_go(unheld, false);
    }
    if (heap != self) atomic_store_explicit(&heap->stealing, 0, memory_order_release);
}

struct steal {
    hak_heap *self;
    size_t released;
};

/* Visited under the registry lock: no heap retires meanwhile. */
static void flush_visit(hak_heap *heap, void *arg) {
    struct steal *st = arg;
    if (heap) flush_outbox_of(heap, st->self);
}

static void steal_visit(hak_heap *heap, void *arg) {
    struct steal *st = arg;
    if (heap) st->released += steal_from(heap, st->self);
}

/* Outboxes first, every heap's: their blocks may be the last ones out of another heap's slabs. */
size_t hak_steal_unused(hak_heap *self) {
    struct steal st = {self, 0};
    hak_heaps_visit(flush_visit, &st);
    hak_heaps_visit(steal_visit, &st);
    return st.released;
}
