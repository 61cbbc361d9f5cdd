/* remote_free.c — frees from threads that do not own the slab, and abandoned slabs draining themselves. */
#include "internal.h"

/*
 * The protocol, in one place.
 *
 * Holding a slab. Exactly one party may touch a slab's owner-only fields: its
 * owner heap, or a thread that moved `owner` from HAK_OWNER_NONE to
 * HAK_OWNER_DRAINING by CAS. slab_init takes an unused slab the same way, so
 * a drainer and a claimer never both hold it.
 *
 * Remote free. A block freed by a thread other than its slab's owner is pushed
 * on the slab's `remote_free` stack with a CAS (many producers). Only the
 * holder takes the whole stack with one exchange (single consumer) and
 * subtracts the count from `used`. A pushed block counts in `used` until
 * collected, so `used` == 0 really means no live block.
 *
 * Pins. Once its CAS has landed, the pusher no longer owns a live block: the
 * holder may collect it and release the slab, and the chunk could then be
 * recycled. The pusher still needs to read `owner` afterwards, so it pins the
 * chunk (chunk->pins) for the whole operation, while it still holds the block
 * and the chunk therefore cannot be retired; a retired chunk is recycled only
 * when no pin is held (superslab_head.c). What it reads may be stale — the slab
 * released or reused — which the drain below checks for.
 *
 * Full slabs. An owned slab on its owner's full list tells the owner through
 * the heap's per-class remote_hint (heaps are never unmapped, so a stale owner
 * only causes a spurious scan); the owner clears the hint before scanning.
 *
 * Abandoned slabs (owner exited) have nobody to tell, so the pusher becomes the
 * drainer: it collects, releases the slab when `used` reaches 0, otherwise
 * hands it back to HAK_OWNER_NONE and looks once more for a push that raced
 * with the hand-back (that pusher saw DRAINING and left its block behind).
 */
static void pin(hak_superslab *c) {
    atomic_fetch_add_explicit(&c->pins, 1, memory_order_seq_cst);
}

static void unpin(hak_superslab *c) {
    atomic_fetch_sub_explicit(&c->pins, 1, memory_order_seq_cst);
}

void remote_free_push(hak_slab *s, hak_block *b) {
    hak_superslab *c = hak_slab_chunk(s);
    pin(c);
    hak_block *head = atomic_load_explicit(&s->remote_free, memory_order_relaxed);
    do {
        b->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote_free, &head, b, memory_order_seq_cst,
                                                    memory_order_relaxed));
    hak_heap *owner = atomic_load_explicit(&s->owner, memory_order_seq_cst);
    if (owner == HAK_OWNER_NONE) {
        abandoned_slab_drain_pinned(s);
    } else if (owner != HAK_OWNER_DRAINING && atomic_load_explicit(&s->full_hint, memory_order_seq_cst)) {
        atomic_store_explicit(&owner->cls[s->class_idx].remote_hint, 1, memory_order_seq_cst);
    }
    unpin(c);
}

uint32_t remote_free_collect(hak_slab *s) {
    if (!atomic_load_explicit(&s->remote_free, memory_order_relaxed)) return 0;
    hak_block *list = atomic_exchange_explicit(&s->remote_free, NULL, memory_order_acquire);
    if (!list) return 0;
    uint32_t n = 1;
    hak_block *tail = list;
    while (tail->next) {
        tail = tail->next;
        n++;
    }
    tail->next = s->free;
    s->free = list;
    s->used -= n;
    return n;
}

/* Caller pins the slab's chunk. */
void abandoned_slab_drain_pinned(hak_slab *s) {
    for (;;) {
        hak_heap *expected = HAK_OWNER_NONE;
        if (!atomic_compare_exchange_strong_explicit(&s->owner, &expected, HAK_OWNER_DRAINING,
                                                     memory_order_acq_rel, memory_order_relaxed))
            return; /* owned, adopted, or another thread drains it */
        if (!atomic_load_explicit(&s->in_use, memory_order_acquire)) {
            /* Stale: the slab was released after our push was collected. */
            atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_release);
            return;
        }
        remote_free_collect(s);
        if (s->used == 0) {
            superslab_head_unlink_abandoned(&hak_heads[s->class_idx], s);
            slab_release(s);
            return;
        }
        atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_seq_cst);
        if (!atomic_load_explicit(&s->remote_free, memory_order_seq_cst)) return;
    }
}

void abandoned_slab_drain(hak_slab *s) {
    hak_superslab *c = hak_slab_chunk(s);
    pin(c);
    abandoned_slab_drain_pinned(s);
    unpin(c);
}

/* The owner leaves (thread exit, or a thread that vanished in a fork): the
 * slab goes back to its chunk if nothing in it is live, else to the head's
 * abandoned list, published before ownership is dropped so adopters find it. */
void slab_abandon(hak_slab *s) {
    hak_superslab *c = hak_slab_chunk(s);
    pin(c);
    remote_free_collect(s);
    if (s->used == 0) {
        slab_release(s);
    } else {
        s->in_full_list = 0;
        atomic_store_explicit(&s->full_hint, 0, memory_order_relaxed);
        superslab_head_abandon(&hak_heads[s->class_idx], s);
        atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_seq_cst);
        if (atomic_load_explicit(&s->remote_free, memory_order_seq_cst)) abandoned_slab_drain_pinned(s);
    }
    unpin(c);
}
