/* remote_free.c — the cross-thread protocol: remote frees, parked and abandoned slabs, and who returns a slab to its chunk. */
#include "internal.h"
#include "slab_state.h"

/*
 * The protocol, in one place.
 *
 * Holding. Exactly one party touches a slab's holder fields (free lists,
 * used): the owner heap's thread while the slab is OWNED, and whoever moves
 * `state` out of PARKED/UNOWNED (the owner taking it back, an adopter, or the
 * thread that returns it to its chunk). PARKED and UNOWNED slabs sit in lists
 * guarded by their class head's lock, and every transition into or out of
 * those two tags happens under that lock.
 *
 * The remote_free word is the MPSC stack of remote frees plus one bit,
 * HAK_REMOTE_COUNTED, set exactly while the slab is PARKED or UNOWNED (it is
 * set and cleared only under the head lock, together with the tag).
 *
 * Remote free into an OWNED slab (the common case): one CAS pushes the block,
 * provided the bit is clear. Nothing is read afterwards: the owner's `used`
 * still counts the block until it collects the stack, so the slab (and its
 * chunk) outlives the push without pins or generations.
 *
 * Remote free into a PARKED or UNOWNED slab (the bit is set): under the head
 * lock, push and count the block in `state` (count = blocks still out).
 * Taking the count to 0 means every block is back: that pusher returns the
 * slab to its chunk. The lock makes push-and-count one step as far as the
 * transitions are concerned, so no free is counted twice or missed.
 *
 * Handing over (OWNED -> PARKED/UNOWNED, head lock held): one exchange takes
 * the whole stack and sets the bit, so every push is either in the stack the
 * owner collected or sees the bit and counts itself. The count starts at the
 * blocks still out after that collection (`used`).
 *
 * Taking back (PARKED/UNOWNED -> OWNED, head lock held): the count is simply
 * dropped and the bit cleared with the stack kept; blocks pushed meanwhile
 * are still counted in `used`, and leave it when the new holder collects.
 *
 * Waking the owner. A free into a PARKED slab sets the owner heap's per-class
 * remote_hint (heaps are never unmapped, so a stale owner only costs a scan);
 * the owner takes back hinted slabs when it runs out of blocks.
 */
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

/* Links b on top of the stack in word w; the word with b pushed (bit kept, length + 1). */
static inline uintptr_t stacked_on(hak_block *b, uintptr_t w) {
    b->next = (hak_block *)(w & HAK_REMOTE_PTR_MASK);
    return (uintptr_t)b | ((w & ~HAK_REMOTE_PTR_MASK) + HAK_REMOTE_LEN_ONE);
}

/* Pushes b whatever the bit; returns the word it pushed onto. */
static uintptr_t push(hak_slab *s, hak_block *b) {
    uintptr_t w = atomic_load_explicit(&s->remote_free, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->remote_free, &w, stacked_on(b, w), memory_order_release,
                                                  memory_order_relaxed)) {
    }
    return w;
}

/* A free into a slab set aside: pushed and counted under the head lock. */
static HAK_NOINLINE void remote_free_counted(hak_slab *s, hak_block *b) {
    hak_superslab_head *head = &hak_heads[s->class_idx];
    bool release = false;
    pthread_mutex_lock(&head->lock);
    uintptr_t w = push(s, b);
    if (w & HAK_REMOTE_COUNTED) {
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        unsigned tag = hak_state_tag(st);
        uint32_t out = hak_state_count(st);
        HAK_CHECK((tag == HAK_SLAB_PARKED || tag == HAK_SLAB_UNOWNED) && out != 0,
                  "a free into a slab set aside finds it parked or abandoned, with blocks out");
        if (out == 1) {
            atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_RELEASING, hak_state_gen(st), 0),
                                  memory_order_relaxed);
            list_remove(home_list(s, tag), s);
            release = true;
        } else {
            atomic_store_explicit(&s->state, hak_state_make(tag, hak_state_gen(st), out - 1), memory_order_relaxed);
            hak_heap *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
            if (tag == HAK_SLAB_PARKED && owner)
                atomic_store_explicit(&owner->cls[s->class_idx].remote_hint, 1, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&head->lock);
    if (release) {
        /* Every block is back: we hold the slab now; its stack is moot. */
        atomic_store_explicit(&s->remote_free, 0, memory_order_relaxed);
        slab_release(s);
    }
}

void remote_free_push(hak_slab *s, hak_block *b) {
    uintptr_t w = atomic_load_explicit(&s->remote_free, memory_order_relaxed);
    while (!(w & HAK_REMOTE_COUNTED)) {
        if (atomic_compare_exchange_weak_explicit(&s->remote_free, &w, stacked_on(b, w), memory_order_release,
                                                  memory_order_relaxed))
            return;
    }
    remote_free_counted(s, b);
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
    /* OWNED: the bit is clear, so exchanging in 0 keeps it clear. */
    uintptr_t w = atomic_exchange_explicit(&s->remote_free, 0, memory_order_acquire);
    return collect_list(s, w);
}

/*
 * OWNED -> `to` (PARKED or UNOWNED): the stack is collected and the bit set
 * in one exchange, the count starts at the blocks still out; if none is, the
 * slab goes back to its chunk instead (HAK_HANDED_RELEASED). A slab about to be
 * parked that has blocks to hand out after the collection stays OWNED
 * (HAK_HANDED_KEPT): parked, they would wait for a free that may never
 * come. Clearing the bit again is safe: a pusher that saw it is waiting for
 * the head lock, which we hold. Head lock held.
 */
static hak_handover hand_over_locked(hak_slab *s, unsigned to) {
    HAK_CHECK(hak_state_tag(atomic_load_explicit(&s->state, memory_order_relaxed)) == HAK_SLAB_OWNED,
              "only an owned slab is parked or abandoned");
    HAK_CHECK(s->used <= s->capacity, "a slab has no more blocks out than it holds");
    uintptr_t w = atomic_exchange_explicit(&s->remote_free, HAK_REMOTE_COUNTED, memory_order_acquire);
    collect_list(s, w);
    uint32_t gen = hak_state_gen(atomic_load_explicit(&s->state, memory_order_relaxed));
    if (s->used == 0) {
        atomic_store_explicit(&s->remote_free, 0, memory_order_relaxed);
        atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_RELEASING, gen, 0), memory_order_relaxed);
        return HAK_HANDED_RELEASED;
    }
    if (to == HAK_SLAB_PARKED && (s->free || s->carved < s->capacity)) {
        atomic_fetch_and_explicit(&s->remote_free, ~HAK_REMOTE_COUNTED, memory_order_relaxed);
        return HAK_HANDED_KEPT;
    }
    atomic_store_explicit(&s->state, hak_state_make(to, gen, s->used), memory_order_relaxed);
    return HAK_HANDED_OVER;
}

/* PARKED/UNOWNED -> OWNED: the count is dropped, the bit cleared, the stack
 * kept (its blocks are still in `used`). Head lock held. */
static void take_back_locked(hak_slab *s) {
    HAK_CHECK(hak_state_tag(atomic_load_explicit(&s->state, memory_order_relaxed)) == HAK_SLAB_PARKED ||
                  hak_state_tag(atomic_load_explicit(&s->state, memory_order_relaxed)) == HAK_SLAB_UNOWNED,
              "only a parked or abandoned slab is taken back");
    HAK_CHECK(atomic_load_explicit(&s->remote_free, memory_order_relaxed) & HAK_REMOTE_COUNTED,
              "a slab set aside counts its frees");
    uint32_t gen = hak_state_gen(atomic_load_explicit(&s->state, memory_order_relaxed));
    atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_OWNED, gen, 0), memory_order_relaxed);
    atomic_fetch_and_explicit(&s->remote_free, ~HAK_REMOTE_COUNTED, memory_order_acquire);
}

hak_handover slab_park(hak_heap *heap, hak_slab *s) {
    hak_superslab_head *head = &hak_heads[s->class_idx];
    hak_class_cache *cc = &heap->cls[s->class_idx];
    HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == heap && s->aside == HAK_ASIDE_NONE,
              "a slab is parked by its owner, once");
    pthread_mutex_lock(&head->lock);
    hak_handover r = hand_over_locked(s, HAK_SLAB_PARKED);
    if (r == HAK_HANDED_OVER) {
        s->aside = HAK_ASIDE_PARKED;
        list_push(&cc->parked, s);
    }
    pthread_mutex_unlock(&head->lock);
    if (r == HAK_HANDED_RELEASED) slab_release(s);
    return r;
}

void slab_unpark(hak_heap *heap, hak_slab *s) {
    hak_superslab_head *head = &hak_heads[s->class_idx];
    HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == heap && s->aside == HAK_ASIDE_PARKED,
              "a slab is unparked by its owner, after it was parked");
    pthread_mutex_lock(&head->lock);
    take_back_locked(s);
    list_remove(&heap->cls[s->class_idx].parked, s);
    s->aside = HAK_ASIDE_NONE;
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
        HAK_CHECK(s->aside == HAK_ASIDE_PARKED && atomic_load_explicit(&s->owner, memory_order_relaxed) == heap,
                  "a heap's parked list holds its own parked slabs");
        if (atomic_load_explicit(&s->remote_free, memory_order_acquire) & ~HAK_REMOTE_COUNTED) {
            take_back_locked(s);
            list_remove(&cc->parked, s);
            s->aside = HAK_ASIDE_NONE;
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
    HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == heap && s->aside == HAK_ASIDE_NONE,
              "a slab in a heap's ring is abandoned by that heap");
    hak_superslab_head *head = &hak_heads[s->class_idx];
    remote_free_collect(s);
    bool keep = false;
    if (s->used != 0) {
        pthread_mutex_lock(&head->lock);
        keep = hand_over_locked(s, HAK_SLAB_UNOWNED) == HAK_HANDED_OVER;
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
        uint64_t st = atomic_load_explicit(&s->state, memory_order_relaxed);
        HAK_CHECK(hak_state_tag(st) == HAK_SLAB_PARKED && s->aside == HAK_ASIDE_PARKED &&
                      atomic_load_explicit(&s->owner, memory_order_relaxed) == heap,
                  "an exiting heap's parked slabs are parked and its own");
        atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_UNOWNED, hak_state_gen(st), hak_state_count(st)),
                              memory_order_relaxed);
        list_remove(&cc->parked, s);
        s->aside = HAK_ASIDE_NONE;
        atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_relaxed);
        list_push(&head->abandoned, s);
    }
    pthread_mutex_unlock(&head->lock);
}

/* Something an adopter could hand out. UNOWNED holder fields are frozen
 * (nobody holds the slab), so reading them under the head lock is safe. */
static bool has_blocks_locked(const hak_slab *s) {
    return s->free || s->carved < s->capacity ||
           (atomic_load_explicit(&s->remote_free, memory_order_relaxed) & ~HAK_REMOTE_COUNTED);
}

hak_slab *slab_adopt(hak_heap *heap, unsigned class_idx) {
    hak_superslab_head *head = &hak_heads[class_idx];
    pthread_mutex_lock(&head->lock);
    hak_slab *s = head->abandoned;
    while (s && !has_blocks_locked(s)) s = s->next;
    if (s) {
        HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == HAK_OWNER_NONE && s->aside == HAK_ASIDE_NONE,
                  "an adopted slab has no owner");
        take_back_locked(s);
        list_remove(&head->abandoned, s);
        atomic_store_explicit(&s->owner, heap, memory_order_relaxed);
    }
    pthread_mutex_unlock(&head->lock);
    return s;
}
