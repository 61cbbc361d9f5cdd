/* remote_free.c — the cross-thread protocol: remote frees, parked and abandoned slabs, and who returns a slab to its chunk. */
#include <sched.h>

#include "internal.h"
#include "slab_state.h"

/*
 * The protocol, in one place.
 *
 * Holding. Exactly one party touches a slab's holder fields (free lists,
 * used, remote_collected, park_total): the owner heap's thread while the slab
 * is OWNED, and whoever moves `state` out of PARKED/UNOWNED (the owner taking
 * it back, an adopter, or the thread that returns it to its chunk). PARKED and
 * UNOWNED slabs sit in lists guarded by their class head's lock, and every
 * transition out of or into those two tags happens under that lock, except
 * the lock-free count below.
 *
 * Remote free. A block freed by a thread other than the owner (and every
 * free into a PARKED-by-another or UNOWNED slab) is pushed on `remote_free`
 * with a CAS; only the holder takes the whole stack, with one exchange. Then
 * the pusher counts its free in `state`:
 *   OWNED            count + 1 (frees counted since the claim)
 *   PARKED, UNOWNED  count - 1 (blocks still out); taking it to 0 means every
 *                    block is back, so that pusher returns the slab to its
 *                    chunk — under the head lock, unlinking it from its list.
 * The owner converts between the two readings with park_total = used +
 * remote_collected (what the frees will add up to once all blocks are back):
 *   still out = park_total - frees counted.
 * The pusher reads `gen` before pushing, while its block keeps the slab's life
 * from ending; if `gen` or the tag says the slab has been returned since (the
 * holder collected the block and emptied the slab), its count is moot.
 *
 * Pins. After the push the pusher owns no live block, yet reads `state`; the
 * chunk is pinned meanwhile (chunk->pins) and a retired chunk is not recycled
 * while pinned (superslab_head.c). The pin is taken while the block is still
 * live, i.e. before the chunk can have been retired.
 *
 * Waking the owner. A free into a PARKED slab sets the owner heap's per-class
 * remote_hint (heaps are never unmapped, so a stale owner only costs a scan);
 * the owner takes back hinted slabs when it runs out of blocks.
 */
static void pin(hak_superslab *c) {
    atomic_fetch_add_explicit(&c->pins, 1, memory_order_seq_cst);
}

static void unpin(hak_superslab *c) {
    atomic_fetch_sub_explicit(&c->pins, 1, memory_order_seq_cst);
}

static void list_push(hak_slab **list, hak_slab *s) {
    s->prev = NULL;
    s->next = *list;
    if (*list) (*list)->prev = s;
    *list = s;
}

static void list_remove(hak_slab **list, hak_slab *s) {
    if (s->prev) s->prev->next = s->next;
    else *list = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
}

/* The list a PARKED or UNOWNED slab is on. Head lock held. */
static hak_slab **home_list(hak_slab *s, unsigned tag) {
    if (tag == HAK_SLAB_UNOWNED) return &hak_heads[s->class_idx].abandoned;
    hak_heap *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
    return &owner->cls[s->class_idx].parked;
}

/* Our free was the last block out: return the slab, unless it changed meanwhile. */
static bool release_if_last(hak_slab *s, uint32_t gen) {
    hak_superslab_head *head = &hak_heads[s->class_idx];
    bool released = false;
    pthread_mutex_lock(&head->lock);
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    unsigned tag = hak_state_tag(st);
    if (hak_state_gen(st) == gen && (tag == HAK_SLAB_PARKED || tag == HAK_SLAB_UNOWNED) &&
        hak_state_count(st) == 1 &&
        atomic_compare_exchange_strong_explicit(&s->state, &st, hak_state_make(HAK_SLAB_RELEASING, gen, 0),
                                                memory_order_acq_rel, memory_order_acquire)) {
        list_remove(home_list(s, tag), s);
        released = true;
    }
    pthread_mutex_unlock(&head->lock);
    if (released) slab_release(s);
    return released;
}

void remote_free_push(hak_slab *s, hak_block *b) {
    hak_superslab *c = hak_slab_chunk(s);
    pin(c);
    uint32_t gen = hak_state_gen(atomic_load_explicit(&s->state, memory_order_acquire));
    hak_block *top = atomic_load_explicit(&s->remote_free, memory_order_relaxed);
    do {
        b->next = top;
    } while (!atomic_compare_exchange_weak_explicit(&s->remote_free, &top, b, memory_order_release,
                                                    memory_order_relaxed));
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        if (hak_state_gen(st) != gen || !hak_state_live(st)) break; /* returned since: moot */
        unsigned tag = hak_state_tag(st);
        uint32_t n = hak_state_count(st);
        if (tag == HAK_SLAB_OWNED) {
            if (atomic_compare_exchange_weak_explicit(&s->state, &st, hak_state_make(tag, gen, n + 1),
                                                      memory_order_acq_rel, memory_order_acquire))
                break;
        } else if (n == 1) {
            if (release_if_last(s, gen)) break;
            st = atomic_load_explicit(&s->state, memory_order_acquire);
        } else if (atomic_compare_exchange_weak_explicit(&s->state, &st, hak_state_make(tag, gen, n - 1),
                                                         memory_order_acq_rel, memory_order_acquire)) {
            if (tag == HAK_SLAB_PARKED) {
                hak_heap *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
                if (owner) atomic_store_explicit(&owner->cls[s->class_idx].remote_hint, 1, memory_order_relaxed);
            }
            break;
        }
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
    HAK_CHECK(n <= s->used, "no more remote frees are collected than blocks are out");
    s->used -= n;
    s->remote_collected += n;
    return n;
}

/*
 * OWNED -> `to` (PARKED or UNOWNED) with the count turned into blocks still
 * out; if none is, the slab goes back to its chunk instead (returns false).
 * Head lock held.
 */
static bool hand_over_locked(hak_slab *s, unsigned to) {
    HAK_CHECK(s->used <= s->capacity, "a slab has no more blocks out than it holds");
    s->park_total = s->used + s->remote_collected;
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        HAK_CHECK(hak_state_tag(st) == HAK_SLAB_OWNED, "only an owned slab is parked or abandoned");
        HAK_CHECK(hak_state_count(st) <= s->park_total, "no more remote frees are counted than blocks went out");
        uint32_t gen = hak_state_gen(st);
        uint32_t out = s->park_total - hak_state_count(st);
        uint64_t next = out == 0 ? hak_state_make(HAK_SLAB_RELEASING, gen, 0) : hak_state_make(to, gen, out);
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, next, memory_order_acq_rel, memory_order_acquire))
            return out != 0;
    }
}

/* PARKED/UNOWNED -> OWNED, the count of blocks out turned back into frees
 * counted. Head lock held. */
static void take_back_locked(hak_slab *s) {
    uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
    for (;;) {
        HAK_CHECK(hak_state_tag(st) == HAK_SLAB_PARKED || hak_state_tag(st) == HAK_SLAB_UNOWNED,
                  "only a parked or abandoned slab is taken back");
        HAK_CHECK(hak_state_count(st) != 0 && hak_state_count(st) <= s->park_total,
                  "a parked or abandoned slab has blocks out, no more than were out when it was set aside");
        uint64_t next = hak_state_make(HAK_SLAB_OWNED, hak_state_gen(st), s->park_total - hak_state_count(st));
        if (atomic_compare_exchange_weak_explicit(&s->state, &st, next, memory_order_acq_rel, memory_order_acquire))
            return;
    }
}

bool slab_park(hak_heap *heap, hak_slab *s) {
    hak_superslab_head *head = &hak_heads[s->class_idx];
    hak_class_cache *cc = &heap->cls[s->class_idx];
    HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == heap && !s->parked,
              "a slab is parked by its owner, once");
    pthread_mutex_lock(&head->lock);
    bool parked = hand_over_locked(s, HAK_SLAB_PARKED);
    if (parked) {
        s->parked = 1;
        list_push(&cc->parked, s);
    }
    pthread_mutex_unlock(&head->lock);
    if (!parked) slab_release(s);
    return parked;
}

void slab_unpark(hak_heap *heap, hak_slab *s) {
    hak_superslab_head *head = &hak_heads[s->class_idx];
    HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == heap && s->parked,
              "a slab is unparked by its owner, after it was parked");
    pthread_mutex_lock(&head->lock);
    take_back_locked(s);
    list_remove(&heap->cls[s->class_idx].parked, s);
    s->parked = 0;
    pthread_mutex_unlock(&head->lock);
}

hak_slab *slab_unpark_freed(hak_heap *heap, unsigned class_idx) {
    hak_superslab_head *head = &hak_heads[class_idx];
    hak_class_cache *cc = &heap->cls[class_idx];
    hak_slab *taken = NULL;
    atomic_store_explicit(&cc->remote_hint, 0, memory_order_relaxed);
    pthread_mutex_lock(&head->lock);
    hak_slab *s = cc->parked;
    while (s) {
        hak_slab *next = s->next;
        HAK_CHECK(s->parked && atomic_load_explicit(&s->owner, memory_order_relaxed) == heap,
                  "a heap's parked list holds its own parked slabs");
        if (atomic_load_explicit(&s->remote_free, memory_order_acquire)) {
            take_back_locked(s);
            list_remove(&cc->parked, s);
            s->parked = 0;
            s->next = taken;
            taken = s;
        }
        s = next;
    }
    pthread_mutex_unlock(&head->lock);
    return taken;
}

void slab_abandon(hak_heap *heap, hak_slab *s) {
    (void)heap;
    HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == heap && !s->parked,
              "a slab in a heap's ring is abandoned by that heap");
    hak_superslab_head *head = &hak_heads[s->class_idx];
    remote_free_collect(s);
    bool keep = false;
    if (s->used != 0) {
        pthread_mutex_lock(&head->lock);
        keep = hand_over_locked(s, HAK_SLAB_UNOWNED);
        if (keep) {
            atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_relaxed);
            list_push(&head->abandoned, s);
        }
        pthread_mutex_unlock(&head->lock);
    }
    if (!keep) slab_release(s);
}

void slab_abandon_parked(hak_heap *heap, unsigned class_idx) {
    hak_superslab_head *head = &hak_heads[class_idx];
    hak_class_cache *cc = &heap->cls[class_idx];
    pthread_mutex_lock(&head->lock);
    while (cc->parked) {
        hak_slab *s = cc->parked;
        uint64_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        HAK_CHECK(hak_state_tag(st) == HAK_SLAB_PARKED && s->parked &&
                      atomic_load_explicit(&s->owner, memory_order_relaxed) == heap,
                  "an exiting heap's parked slabs are parked and its own");
        while (!atomic_compare_exchange_weak_explicit(
            &s->state, &st, hak_state_make(HAK_SLAB_UNOWNED, hak_state_gen(st), hak_state_count(st)),
            memory_order_acq_rel, memory_order_acquire)) {
        }
        list_remove(&cc->parked, s);
        s->parked = 0;
        atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_relaxed);
        list_push(&head->abandoned, s);
    }
    pthread_mutex_unlock(&head->lock);
}

/* Something an adopter could hand out. UNOWNED holder fields are frozen
 * (nobody holds the slab), so reading them under the head lock is safe. */
static bool has_blocks_locked(const hak_slab *s) {
    return s->free || s->local_free || s->carved < s->capacity ||
           atomic_load_explicit(&s->remote_free, memory_order_relaxed);
}

hak_slab *slab_adopt(hak_heap *heap, unsigned class_idx) {
    hak_superslab_head *head = &hak_heads[class_idx];
    pthread_mutex_lock(&head->lock);
    hak_slab *s = head->abandoned;
    while (s && !has_blocks_locked(s)) s = s->next;
    if (s) {
        HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == HAK_OWNER_NONE && !s->parked,
                  "an adopted slab has no owner");
        take_back_locked(s);
        list_remove(&head->abandoned, s);
        atomic_store_explicit(&s->owner, heap, memory_order_relaxed);
    }
    pthread_mutex_unlock(&head->lock);
    return s;
}
