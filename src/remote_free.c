/* remote_free.c — who holds a slab: remote frees, letting a slab go, taking an unheld one over, finding listed ones. */
#include "internal.h"
#include "slab_state.h"

/*
 * The protocol, in one place.
 *
 * Holding. Exactly one party touches a slab's holder fields (free list,
 * used, carved, home, ring links): its holder. A heap holds the slabs of its
 * ring, and `owner` names that heap so that its thread's frees are local,
 * with plain loads and stores. A slab no heap holds is unheld.
 *
 * The remote_free word is the lock-free stack of remote frees, its length,
 * and the UNHELD bit. Every change of holder is a CAS on that word, so the
 * stack and the holding change as one:
 *
 *  - A remote free pushes its block and clears UNHELD in one CAS. Into a held
 *    slab (the common case) that is all: nothing is read afterwards, and the
 *    holder's `used` still counts the block until it collects the stack, so
 *    the slab (and its chunk) outlives the push. A free whose CAS cleared the
 *    bit holds the slab now: it takes it over (tiny_take_over decides what
 *    becomes of it: back to its chunk when every block is back, adopted into
 *    the freeing thread's heap, or let go again).
 *  - Letting go: the holder sets `owner` to NONE, then sets UNHELD with a CAS
 *    on the word it last read, stack and all: the blocks on it stay counted in
 *    `used` for the next holder to collect. Before that CAS it compares the
 *    stack's length with `used`: equal, every block is back and it returns the
 *    slab to its chunk instead — no free is left to take it over. A push in
 *    between fails the CAS and the comparison is made again. So a free that
 *    takes a slab over and has no use for it lets it go again in one CAS,
 *    without collecting.
 *  - Adopting: a refill takes an unheld slab with CAS(w -> w & ~UNHELD).
 *  - The outbox: a thread gathers its frees into a slab another heap holds
 *    (linked, plain stores; counted in that slab's `used` all along) and
 *    pushes them in one CAS, as a list, with their number added to the length.
 *    Only a slab found held goes in: a free into an unheld one is pushed at
 *    once, so that it takes the slab over. Its thread pushes it (another slab,
 *    full, refill, collect, exit); a stealer pushes it with the heap shut out.
 *
 * Both takes are acquire and the letting go is release: the new holder sees
 * every write of the last one. Nothing waits, nothing takes a lock.
 *
 * Listed. An unheld slab with blocks to hand out is listed: its bit in the
 * chunk's `listed` mask is set (and counted in its head) before the slab is
 * let go, and cleared by whoever takes it over. A refill walks the chain of
 * its class for listed bits (slab_adopt). A bit can be stale for a moment (set
 * on a slab a free has just taken over); a take then simply fails. An
 * exhausted slab is let go unlisted: there is nothing in it to adopt, and the
 * first free into it takes it over.
 *
 * Returning to the chunk. Only the holder releases a slab, and only once
 * `used` is 0 after collecting its stack: the last block back returns the
 * slab whoever holds it, with no help from the thread that allocated it.
 */

bool remote_free_push_list(hak_slab *s, hak_block *first, hak_block *last, uint32_t count) {
    uintptr_t w = atomic_load_explicit(&s->remote_free, memory_order_relaxed);
    uintptr_t pushed;
    do {
        last->next = (hak_block *)(w & HAK_REMOTE_PTR_MASK);
        pushed = (uintptr_t)first | ((w & ~HAK_REMOTE_PTR_MASK & ~HAK_REMOTE_UNHELD) + count * HAK_REMOTE_LEN_ONE);
    } while (!atomic_compare_exchange_weak_explicit(&s->remote_free, &w, pushed, memory_order_acq_rel,
                                                    memory_order_relaxed));
    return HAK_UNLIKELY(w & HAK_REMOTE_UNHELD);
}

hak_slab *remote_outbox_push(hak_heap *heap) {
    hak_slab *s = hak_outbox_slab(heap);
    atomic_store_explicit(&heap->outbox_slab, NULL, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst); /* a fork child that retires this heap sees it empty, not pushed twice */
    return remote_free_push_list(s, heap->outbox_first, heap->outbox_last, heap->outbox_count) ? s : NULL;
}

/* Moves a stack (a remote_free word's value) to the free list; how many
 * blocks. Walks the stack only to append it to a non-empty free list. Holder only. */
static uint32_t collect_list(hak_slab *s, uintptr_t w) {
    hak_block *list = (hak_block *)(w & HAK_REMOTE_PTR_MASK);
    if (!list) return 0;
    uint32_t n = (uint32_t)(w >> HAK_REMOTE_LEN_SHIFT);
    if (HAKMEM_CHECKED) {
        uint32_t walked = 0;
        for (const hak_block *b = list; b; b = b->next) walked++;
        HAK_CHECK(walked == n, "a remote stack's length is its number of blocks");
    }
    if (s->free) {
        hak_block *tail = list;
        while (tail->next) tail = tail->next;
        tail->next = s->free;
    }
    s->free = list;
    HAK_CHECK(n <= s->used, "no more remote frees are collected than blocks are out");
    s->used -= n;
    return n;
}

uint32_t remote_free_collect(hak_slab *s) {
    if (!atomic_load_explicit(&s->remote_free, memory_order_relaxed)) return 0;
    /* Held: the bit is clear, so exchanging in 0 keeps it clear. */
    uintptr_t w = atomic_exchange_explicit(&s->remote_free, 0, memory_order_acquire);
    HAK_CHECK(!(w & HAK_REMOTE_UNHELD), "only the holder collects a slab's stack");
    return collect_list(s, w);
}

bool slab_has_blocks(const hak_slab *s) {
    return s->free || s->carved < s->capacity;
}

static void list(hak_slab *s) {
    hak_superslab *c = hak_slab_chunk(s);
    uint32_t bit = 1u << s->slab_idx;
    if (atomic_load_explicit(&c->listed, memory_order_relaxed) & bit) return; /* still listed from last time */
    if (!(atomic_fetch_or_explicit(&c->listed, bit, memory_order_relaxed) & bit))
        atomic_fetch_add_explicit(&hak_chunk_head(c)->listed_slabs, 1, memory_order_relaxed);
}

void slab_unlist(hak_slab *s) {
    hak_superslab *c = hak_slab_chunk(s);
    uint32_t bit = 1u << s->slab_idx;
    if (!(atomic_load_explicit(&c->listed, memory_order_relaxed) & bit)) return;
    if (atomic_fetch_and_explicit(&c->listed, ~bit, memory_order_relaxed) & bit)
        atomic_fetch_sub_explicit(&hak_chunk_head(c)->listed_slabs, 1, memory_order_relaxed);
}

hak_letgo slab_let_go(hak_slab *s, bool keep_if_fed) {
    HAK_CHECK(s->used <= s->capacity, "a slab has no more blocks out than it holds");
    atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_relaxed);
    uintptr_t w = atomic_load_explicit(&s->remote_free, memory_order_relaxed);
    for (;;) {
        uint32_t stacked = (uint32_t)(w >> HAK_REMOTE_LEN_SHIFT);
        if (keep_if_fed && stacked) return HAK_KEPT; /* frees came in while an exhausted slab was let go */
        if (stacked == s->used) {
            /* Every block is back: nobody is left to take it over, so it goes to its chunk now. */
            remote_free_collect(s);
            slab_unlist(s);
            slab_release(s);
            return HAK_RELEASED;
        }
        if (stacked || slab_has_blocks(s)) list(s);
        if (atomic_compare_exchange_weak_explicit(&s->remote_free, &w, w | HAK_REMOTE_UNHELD, memory_order_release,
                                                  memory_order_relaxed))
            return HAK_LET_GO;
    }
}

/* Takes an unheld slab (its stack stays, for the new holder to collect): true when this thread holds it now. */
static bool take(hak_slab *s) {
    uintptr_t w = atomic_load_explicit(&s->remote_free, memory_order_relaxed);
    while (w & HAK_REMOTE_UNHELD)
        if (atomic_compare_exchange_weak_explicit(&s->remote_free, &w, w & ~HAK_REMOTE_UNHELD, memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

hak_slab *slab_adopt(hak_heap *heap, unsigned class_idx) {
    hak_superslab_head *head = hak_head(heap->arena, class_idx);
    if (atomic_load_explicit(&head->listed_slabs, memory_order_relaxed) == 0) return NULL;
    hak_slab *found = NULL;
    atomic_fetch_add_explicit(&head->claimers, 1, memory_order_seq_cst); /* chunks stay mapped while we walk */
    for (hak_superslab *c = atomic_load_explicit(&head->chunks, memory_order_seq_cst); c && !found;
         c = atomic_load_explicit(&c->next_chunk, memory_order_acquire)) {
        for (uint32_t m = atomic_load_explicit(&c->listed, memory_order_relaxed); m && !found; m &= m - 1) {
            hak_slab *s = &c->slabs[__builtin_ctz(m)];
            if (take(s)) found = s;
        }
    }
    atomic_fetch_sub_explicit(&head->claimers, 1, memory_order_seq_cst);
    if (found) {
        HAK_CHECK(hak_state_live(atomic_load_explicit(&found->state, memory_order_relaxed)) &&
                      atomic_load_explicit(&found->owner, memory_order_relaxed) == HAK_OWNER_NONE,
                  "an adopted slab is live and had no owner");
        slab_unlist(found);
        remote_free_collect(found);
        found->home = heap;
        atomic_store_explicit(&found->owner, heap, memory_order_relaxed);
    }
    return found;
}
