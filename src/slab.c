/* slab.c — slabs inside a chunk: the bitmap claim and its commit, a slab's initialisation and release, lazy carving. */
#include "internal.h"
#include "slab_state.h"

/* Never handed out: a class with no slab points here, so the fast path needs
 * no NULL check (its free list is always empty). */
hak_slab hak_empty_slab;

/* Bit i set: slabs i .. i + 2^shift - 1 are all free and i starts a span. */
static uint32_t free_spans(uint32_t bitmap, unsigned shift) {
    static const uint32_t starts[] = {0xffffffffu, 0x55555555u, 0x11111111u, 0x01010101u, 0x00010001u, 1u};
    uint32_t f = ~bitmap;
    for (unsigned i = 0; i < shift; i++) f &= f >> (1u << i);
    return f & starts[shift];
}

/* The slabs a block from `start` (bytes into the chunk) of block_size bytes lies on. */
static uint32_t block_slabs(size_t start, uint32_t block_size) {
    return hak_slab_range_mask((unsigned)(start >> HAK_SLAB_SHIFT), (unsigned)((start + block_size - 1) >> HAK_SLAB_SHIFT));
}

/* Where a class's claims begin in its chunks. Chunks are 2 MiB-aligned, so if every class claimed slab 0 first
 * the metadata of a thread's current slabs — one per class, read and written at every call — would sit at the
 * same offset in each class's chunk, in the same few cache sets, and 40 classes' lines would evict each other
 * there (a set holds 8 to 16 lines). A class starts at slab 5r mod 32, r its rank by block size (5 is prime
 * to 32: any 32 neighbouring sizes start apart), rounded down to its span. larson at 2 threads without
 * hand-offs: 0.60x the wall time of claiming from slab 0 (interleaved pairs, medians of 7), 1 thread
 * unchanged. A claim is a slow path: counting the smaller classes costs nothing to speak of. */
static unsigned claim_start(unsigned class_idx, unsigned span_shift) {
    unsigned rank = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) rank += hak_class_size[c] < hak_class_size[class_idx];
    return (rank * 5u) % HAK_SLABS_PER_CHUNK & ~((1u << span_shift) - 1);
}

/* The first bit of mask at or after bit `start`, going round (mask is not 0). */
static unsigned first_at_or_after(uint32_t mask, unsigned start) {
    uint32_t rotated = start ? (mask >> start) | (mask << (32 - start)) : mask;
    return ((unsigned)__builtin_ctz(rotated) + start) % HAK_SLABS_PER_CHUNK;
}

/*
 * The bitmap check: one look at the head's current chunk and, if a span (a
 * slab, below the medium classes) is free, one CAS to claim it — a committed
 * one first, whose pages are there already; else one the cap must agree to
 * commit. A span commits the slabs of its first block; carving commits the
 * rest as it reaches them. `claimers` brackets the time
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
        unsigned shift = hak_class_span_shift[head->class_idx];
        uint32_t spans = free_spans(bm, shift);
        /* Spans are claimed and released whole (the purge too), so none is free only when every slab is in use. */
        HAK_CHECK(spans != 0 || bm == HAK_FULL_BITMAP, "a chunk with a free slab has a free span");
        if (spans == 0) {
            out->outcome = HAK_CLAIM_FULL;
        } else {
            uint32_t warm = spans & atomic_load_explicit(&c->committed, memory_order_relaxed);
            unsigned idx = first_at_or_after(warm ? warm : spans, claim_start(head->class_idx, shift));
            uint32_t bit = hak_span_mask(idx, 1u << shift);
            if (atomic_compare_exchange_strong_explicit(&c->slab_bitmap, &bm, bm | bit, memory_order_acq_rel,
                                                        memory_order_acquire)) {
                out->outcome = HAK_CLAIM_CLAIMED;
                out->slab = &c->slabs[idx];
                HAK_CHECK(c->magic == HAK_SUPERSLAB_MAGIC && c->class_idx == head->class_idx,
                          "a slab is claimed from a chunk of its head's class");
                HAK_CHECK(hak_state_tag(atomic_load_explicit(&out->slab->state, memory_order_acquire)) ==
                              HAK_SLAB_FREE,
                          "a slab whose bitmap bit was clear is free");
                /* The span is ours now: its committed bits cannot change under us. */
                uint32_t committed = atomic_load_explicit(&c->committed, memory_order_relaxed) & bit;
                uint32_t first = block_slabs((size_t)(hak_slab_pages(c, idx) - (uint8_t *)c),
                                             hak_class_size[head->class_idx]);
                uint32_t need = first & ~committed;
                if (!need || hak_os_commit(head->arena, hak_slabs_pages_bytes(need), &out->failure)) {
                    if (need) atomic_fetch_or_explicit(&c->committed, need, memory_order_relaxed);
                    atomic_fetch_sub_explicit(&head->free_committed, (uint32_t)__builtin_popcount(committed),
                                              memory_order_relaxed);
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
    unsigned slabs = 1u << hak_class_span_shift[class_idx];
    HAK_CHECK(s->slab_idx % slabs == 0, "a span starts at a multiple of its slabs");
    HAK_CHECK(hak_state_tag(atomic_load_explicit(&s->state, memory_order_relaxed)) == HAK_SLAB_FREE &&
                  atomic_load_explicit(&s->owner, memory_order_relaxed) == HAK_OWNER_NONE,
              "an initialised slab was free and unowned");
    s->data = hak_slab_pages(c, s->slab_idx);
    s->block_size = hak_class_size[class_idx];
    s->span_slabs = (uint8_t)slabs;
    s->capacity = (uint32_t)(hak_span_bytes(s->slab_idx, slabs) / s->block_size);
    s->block_magic = hak_block_magic(s->block_size);
    s->block_limit = hak_block_limit(s->block_size, s->capacity);
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
 * The holder gives back a slab (its span) with no block out. Its pages stay committed:
 * up to hak_class_warm_slabs free slabs per class for good (a churning
 * program claims them straight back), the rest until the class's purge is
 * due (superslab_head_purge_later), when their pages go back to the OS and
 * the cap is uncharged.
 */
void slab_release(hak_slab *s) {
    hak_superslab *c = hak_slab_chunk(s);
    hak_superslab_head *head = hak_chunk_head(c);
    uint32_t bit = hak_span_mask(s->slab_idx, s->span_slabs);
    HAK_CHECK(hak_state_tag(atomic_load_explicit(&s->state, memory_order_acquire)) == HAK_SLAB_LIVE && s->used == 0,
              "a released slab is live and has no block out");
    HAK_CHECK(atomic_load_explicit(&s->remote_free, memory_order_relaxed) == 0,
              "a released slab's remote stack was collected");
    uint32_t committed = atomic_load_explicit(&c->committed, memory_order_relaxed) & bit;
    HAK_CHECK(committed & (1u << s->slab_idx), "a released slab was committed");
    s->block_size = 0;
    s->free = NULL;
    s->next = s->prev = NULL;
    atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_relaxed);
    uint32_t gen = hak_state_gen(atomic_load_explicit(&s->state, memory_order_relaxed));
    atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_FREE, gen), memory_order_release);
    uint32_t n = (uint32_t)__builtin_popcount(committed);
    bool warm = atomic_fetch_add_explicit(&head->free_committed, n, memory_order_relaxed) + n <=
                hak_class_warm_slabs(c->class_idx);
    uint32_t old = atomic_fetch_and_explicit(&c->slab_bitmap, ~bit, memory_order_acq_rel);
    HAK_CHECK((old & bit) == bit, "a released slab was claimed in its chunk's bitmap");
    if (old == bit) superslab_head_chunk_emptied(head, c);
    if (!warm) superslab_head_purge_later(head);
}

/* A span's next block, when the cap agrees to commit the slabs it reaches into. */
static bool span_commit_next(hak_slab *s) {
    hak_superslab *c = hak_slab_chunk(s);
    size_t start = (size_t)(s->data - (uint8_t *)c) + (size_t)s->carved * s->block_size;
    uint32_t need = block_slabs(start, s->block_size) & ~atomic_load_explicit(&c->committed, memory_order_relaxed);
    if (!need) return true;
    hak_os_failure refused;
    if (!hak_os_commit(c->arena, hak_slabs_pages_bytes(need), &refused)) return false;
    atomic_fetch_or_explicit(&c->committed, need, memory_order_relaxed);
    return true;
}

/* Carving lazily keeps untouched pages untouched (fresh pages are zero and
 * cost nothing until written). A span carves one block at a time, committing
 * its slabs as it goes: refused, it has nothing to hand out for now, and the
 * refill that follows meets the same cap and reports it. */
bool slab_carve(hak_slab *s) {
    uint32_t left = s->capacity - s->carved;
    if (left == 0) return false;
    uint32_t batch = (uint32_t)(4096 / s->block_size);
    if (batch < 8) batch = 8;
    if (s->span_slabs > 1) {
        if (!span_commit_next(s)) return false;
        batch = 1;
    }
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
