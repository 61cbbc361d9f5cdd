/* slab.c — slabs inside a chunk: the bitmap claim and its commit, a slab's initialisation and release, lazy carving. */
#include "internal.h"
#include "slab_state.h"

/* Never handed out: a class with no slab points here, so the fast path needs
 * no NULL check (its free list is always empty). */
hak_slab hak_empty_slab;

/*
 * The bitmap check: one look at the head's current chunk and, if a slab is
 * free, one CAS to claim it — a committed one first, whose pages are there
 * already; else one the cap must agree to commit. `claimers` brackets the time
 * a pointer to the chunk is held without the head lock, so that retirement
 * never unmaps or recycles a chunk under a claimer (see superslab_head.c).
 */
void superslab_claim_slab(hak_superslab_head *head, hak_bitmap_check *out) {
    atomic_fetch_add_explicit(&head->claimers, 1, memory_order_seq_cst);
    hak_superslab *c = atomic_load_explicit(&head->current_chunk, memory_order_seq_cst);
    out->chunk = c;
    out->full_mask = HAK_FULL_BITMAP;
    out->capacity = HAK_SLABS_PER_CHUNK;
    out->slab = NULL;
    out->failure = (hak_os_failure){.reason = HAK_FAIL_NONE};
    if (!c) {
        out->bitmap = HAK_FULL_BITMAP; /* no chunk yet: nothing to claim */
        out->active_slabs = 0;
        out->outcome = HAK_CLAIM_FULL;
    } else {
        uint32_t bm = atomic_load_explicit(&c->slab_bitmap, memory_order_acquire);
        out->bitmap = bm;
        out->active_slabs = (uint32_t)__builtin_popcount(bm);
        if (bm == HAK_FULL_BITMAP) {
            out->outcome = HAK_CLAIM_FULL;
        } else {
            uint32_t warm = ~bm & atomic_load_explicit(&c->committed, memory_order_relaxed);
            unsigned idx = (unsigned)__builtin_ctz(warm ? warm : ~bm);
            uint32_t bit = 1u << idx;
            if (atomic_compare_exchange_strong_explicit(&c->slab_bitmap, &bm, bm | bit, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                out->outcome = HAK_CLAIM_CLAIMED;
                out->slab = &c->slabs[idx];
                HAK_CHECK(c->magic == HAK_SUPERSLAB_MAGIC && c->class_idx == head->class_idx,
                          "a slab is claimed from a chunk of its head's class");
                HAK_CHECK(hak_state_tag(atomic_load_explicit(&out->slab->state, memory_order_acquire)) ==
                              HAK_SLAB_FREE,
                          "a slab whose bitmap bit was clear is free");
                /* The slab is ours now: its committed bit cannot change under us. */
                if (atomic_load_explicit(&c->committed, memory_order_relaxed) & bit) {
                    atomic_fetch_sub_explicit(&head->free_committed, 1, memory_order_relaxed);
                } else if (hak_os_commit(head->arena, hak_slab_pages_bytes(idx), &out->failure)) {
                    atomic_fetch_or_explicit(&c->committed, bit, memory_order_relaxed);
                } else {
                    /* The cap refused its pages: it goes back free, as it was. */
                    out->outcome = HAK_CLAIM_CAP_REFUSED;
                    out->slab = NULL;
                    uint32_t old = atomic_fetch_and_explicit(&c->slab_bitmap, ~bit, memory_order_acq_rel);
                    if (old == bit) superslab_head_chunk_emptied(head, c);
                }
            } else {
                out->outcome = HAK_CLAIM_LOST_RACE;
            }
        }
    }
    atomic_fetch_sub_explicit(&head->claimers, 1, memory_order_seq_cst);
}

void slab_init(hak_slab *s, unsigned class_idx, hak_heap *owner) {
    hak_superslab *c = hak_slab_chunk(s);
    HAK_CHECK(c->class_idx == class_idx && s->class_idx == class_idx, "a slab is initialised for its chunk's class");
    HAK_CHECK(atomic_load_explicit(&c->slab_bitmap, memory_order_acquire) & (1u << s->slab_idx),
              "an initialised slab is claimed in its chunk's bitmap");
    HAK_CHECK(atomic_load_explicit(&c->committed, memory_order_relaxed) & (1u << s->slab_idx),
              "an initialised slab is committed");
    HAK_CHECK(hak_state_tag(atomic_load_explicit(&s->state, memory_order_relaxed)) == HAK_SLAB_FREE &&
                  atomic_load_explicit(&s->owner, memory_order_relaxed) == HAK_OWNER_NONE,
              "an initialised slab was free and unowned");
    uint32_t offset = s->slab_idx == 0 ? HAK_SLAB0_DATA_OFFSET : 0;
    s->data = hak_slab_pages(c, s->slab_idx);
    s->block_size = hak_class_size[class_idx];
    s->block_magic = UINT64_MAX / s->block_size + 1;
    s->capacity = (uint32_t)((HAK_SLAB_SIZE - offset) / s->block_size);
    /* class_idx was set with the chunk's (chunk_init_header) and never changes while the chunk
     * lives: late remote freers read it without any ordering against this claim. */
    s->carved = 0;
    s->used = 0;
    s->on_full = 0;
    s->free = NULL;
    s->home = owner;
    s->next = s->prev = NULL;
    atomic_store_explicit(&s->remote_free, 0, memory_order_relaxed);
    atomic_store_explicit(&s->owner, owner, memory_order_relaxed);
    /* A new life: late frees from the previous one see the generation change. */
    uint32_t gen = hak_state_gen(atomic_load_explicit(&s->state, memory_order_relaxed)) + 1;
    atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_LIVE, gen), memory_order_release);
}

/*
 * The holder gives back a slab with no block out. Its pages stay committed:
 * up to HAK_COMMITTED_FREE_SLABS free slabs per class for good (a churning
 * program claims them straight back), the rest until the class's purge is
 * due (superslab_head_purge_later), when their pages go back to the OS and
 * the cap is uncharged.
 */
void slab_release(hak_slab *s) {
    hak_superslab *c = hak_slab_chunk(s);
    hak_superslab_head *head = hak_chunk_head(c);
    uint32_t bit = 1u << s->slab_idx;
    HAK_CHECK(hak_state_tag(atomic_load_explicit(&s->state, memory_order_acquire)) == HAK_SLAB_LIVE && s->used == 0,
              "a released slab is live and has no block out");
    HAK_CHECK(atomic_load_explicit(&s->remote_free, memory_order_relaxed) == 0,
              "a released slab's remote stack was collected");
    HAK_CHECK(atomic_load_explicit(&c->committed, memory_order_relaxed) & bit, "a released slab was committed");
    s->block_size = 0;
    s->free = NULL;
    s->next = s->prev = NULL;
    atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_relaxed);
    uint32_t gen = hak_state_gen(atomic_load_explicit(&s->state, memory_order_relaxed));
    atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_FREE, gen), memory_order_release);
    bool warm = atomic_fetch_add_explicit(&head->free_committed, 1, memory_order_relaxed) < HAK_COMMITTED_FREE_SLABS;
    uint32_t old = atomic_fetch_and_explicit(&c->slab_bitmap, ~bit, memory_order_acq_rel);
    HAK_CHECK(old & bit, "a released slab was claimed in its chunk's bitmap");
    if (old == bit) superslab_head_chunk_emptied(head, c);
    if (!warm) superslab_head_purge_later(head);
}

/* Carving lazily keeps untouched pages untouched (fresh pages are zero and
 * cost nothing until written). */
bool slab_carve(hak_slab *s) {
    uint32_t left = s->capacity - s->carved;
    if (left == 0) return false;
    uint32_t batch = (uint32_t)(4096 / s->block_size);
    if (batch < 8) batch = 8;
    if (batch > left) batch = left;
    uint8_t *first = s->data + (size_t)s->carved * s->block_size;
    uint8_t *p = first;
    for (uint32_t i = 1; i < batch; i++) {
        ((hak_block *)p)->next = (hak_block *)(p + s->block_size);
        p += s->block_size;
    }
    ((hak_block *)p)->next = s->free;
    s->free = (hak_block *)first;
    hak_ck_carved(first, batch, s->block_size); /* FRESH: handed out later without a poison check */
    s->carved += batch;
    HAK_CHECK(s->carved <= s->capacity, "a slab carves no more blocks than it holds");
    return true;
}
