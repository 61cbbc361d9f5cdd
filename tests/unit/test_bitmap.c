/* test_bitmap.c — slab and span claims and releases on one chunk's bitmap under contention, a purge claiming free spans meanwhile: no slab is ever held twice; the classes' first slabs sit in different cache sets. */
#include <pthread.h>

#include "check.h"
#include "unit_support.h"

#define THREADS 4
#define ROUNDS 20000

/* The class under test: a mid class (spans of one slab) and a medium one (spans of four). */
static unsigned cls;
static unsigned span;          /* slabs per span */
static int hold;               /* more spans than a chunk holds: every filling phase ends on a full bitmap */
static hak_superslab_head *head;
static _Atomic int holder[HAK_SLABS_PER_CHUNK];
static _Atomic unsigned long claims, fulls, lost, purged;
static _Atomic bool done;
static pthread_barrier_t start;
static hak_heap heaps[THREADS];

static void hold_span(hak_slab *s, int v) {
    for (unsigned i = 0; i < span; i++)
        CHECK(atomic_exchange(&holder[s->slab_idx + i], v) == !v, "slab %u %s", s->slab_idx + i,
              v ? "claimed while held" : "released but not held");
}

static void *worker(void *arg) {
    hak_heap *me = arg;
    hak_slab *held[HAK_SLABS_PER_CHUNK + 1];
    int n = 0;
    bool filling = true;
    pthread_barrier_wait(&start);
    for (int r = 0; r < ROUNDS; r++) {
        /* Claim until the chunk is full, then give all back. */
        if (n == hold) filling = false;
        if (n == 0) filling = true;
        if (filling) {
            hak_bitmap_check chk;
            superslab_claim_slab(head, &chk);
            if (chk.outcome == HAK_CLAIM_CLAIMED) {
                CHECK(chk.active_slabs == (unsigned)__builtin_popcount(chk.bitmap), "active_slabs is the popcount");
                CHECK(chk.slab->slab_idx % span == 0, "a span starts at a multiple of its %u slabs: %u", span,
                      chk.slab->slab_idx);
                hold_span(chk.slab, 1);
                slab_init(chk.slab, cls, me);
                CHECK(chk.slab->capacity == hak_span_bytes(chk.slab->slab_idx, span) / hak_class_size[cls] &&
                          chk.slab->span_slabs == span,
                      "a span of %u slabs holds its blocks", span);
                held[n++] = chk.slab;
                claims++;
            } else if (chk.outcome == HAK_CLAIM_FULL) {
                CHECK(chk.bitmap == HAK_FULL_BITMAP, "FULL reported with bitmap %#x", chk.bitmap);
                fulls++;
                filling = false;
            } else {
                lost++;
            }
        } else if (n > 0) {
            hak_slab *s = held[--n];
            hold_span(s, 0);
            slab_release(s);
        }
    }
    while (n > 0) {
        hak_slab *s = held[--n];
        hold_span(s, 0);
        slab_release(s);
    }
    return NULL;
}

/* The purge, as superslab_head_purge_later runs it: free spans' pages back, the spans claimed meanwhile. */
static void *purger(void *arg) {
    hak_superslab *chunk = arg;
    pthread_barrier_wait(&start);
    while (!atomic_load(&done)) {
        pthread_mutex_lock(&head->lock);
        uint32_t back = superslab_decommit_free(chunk, UINT32_MAX);
        atomic_fetch_sub(&head->free_committed, back);
        pthread_mutex_unlock(&head->lock);
        purged += back;
    }
    return NULL;
}

static void run(unsigned class_idx) {
    cls = class_idx;
    span = 1u << hak_class_span_shift[cls];
    hold = (int)(HAK_SLABS_PER_CHUNK / span) + 1;
    head = &hak_heads[HAK_ARENA_PROGRAM][cls];
    claims = fulls = lost = purged = 0;
    atomic_store(&done, false);
    hak_expansion exp;
    expand_superslab_head(head, NULL, &exp);
    CHECK(exp.outcome == HAK_EXPAND_NEW, "first expansion makes a chunk (outcome %d)", exp.outcome);
    hak_superslab *chunk = atomic_load(&head->current_chunk);
    pthread_t t[THREADS], p;
    pthread_barrier_init(&start, NULL, THREADS + 1);
    pthread_create(&p, NULL, purger, chunk);
    for (int i = 0; i < THREADS; i++) {
        fake_heap_init(&heaps[i]);
        pthread_create(&t[i], NULL, worker, &heaps[i]);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    atomic_store(&done, true);
    pthread_join(p, NULL);
    pthread_barrier_destroy(&start);
    CHECK(atomic_load(&head->current_chunk) == chunk, "no expansion happened");
    CHECK(atomic_load(&chunk->slab_bitmap) == 0, "every claim was released: bitmap %#x", atomic_load(&chunk->slab_bitmap));
    CHECK(fulls > 0, "the chunk was seen full (%lu times)", fulls);
    CHECK(atomic_load(&head->free_committed) == (unsigned)__builtin_popcount(atomic_load(&chunk->committed)),
          "free_committed (%u) counts the chunk's committed free slabs (%u)", atomic_load(&head->free_committed),
          __builtin_popcount(atomic_load(&chunk->committed)));
    printf("bitmap ok, class %u (%u-slab spans): %lu claims, %lu full, %lu lost races, %lu slabs purged\n", cls, span,
           claims, fulls, lost, purged);
}

/* One block of every class up to 1 KiB (21 of them, 20 in the checked build, fresh chunks each): their slabs'
 * metadata, which every malloc and free of the class reads and writes, lies at as many different offsets in a 4 KiB page, so not in the same few
 * cache sets, though every chunk is 2 MiB-aligned. */
static void first_slabs_apart(void) {
    uintptr_t offsets[HAK_NUM_CLASSES];
    unsigned n = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        if (hak_class_size[c] > HAK_TINY_MAX || hak_class_size[c] <= HAK_BLOCK_OVERHEAD) continue; /* checked: trailer */
        void *p = hak_malloc(hak_class_size[c] - HAK_BLOCK_OVERHEAD);
        CHECK(p && hak_size_to_class(hak_block_need(hak_class_size[c] - HAK_BLOCK_OVERHEAD)) == c, "class %u", c);
        uintptr_t off = (uintptr_t)hak_slab_of(hak_chunk_of(p), p) & 4095;
        for (unsigned i = 0; i < n; i++)
            CHECK(offsets[i] != off, "class %u's first slab sits at offset %#lx in its page, as another class's", c,
                  (unsigned long)off);
        offsets[n++] = off;
        hak_free(p);
    }
    CHECK(n >= 20, "%u classes up to 1 KiB", n);
}

int main(void) {
    hak_ensure_init();
    first_slabs_apart();
    run(27);
    run(HAK_MEDIUM_FIRST);
    return 0;
}
