/* test_bitmap.c — slab claims and releases on one chunk's bitmap under contention: no slab is ever held twice. */
#include <pthread.h>

#include "check.h"
#include "unit_support.h"

#define THREADS 4
#define HOLD 33 /* more than a chunk holds: every filling phase ends on a full bitmap */
#define ROUNDS 20000
#define CLASS 27

static hak_superslab_head *head = &hak_heads[HAK_ARENA_PROGRAM][CLASS];
static _Atomic int holder[HAK_SLABS_PER_CHUNK];
static _Atomic unsigned long claims, fulls, lost;
static pthread_barrier_t start;
static hak_heap heaps[THREADS];

static void *worker(void *arg) {
    hak_heap *me = arg;
    hak_slab *held[HOLD];
    int n = 0;
    bool filling = true;
    pthread_barrier_wait(&start);
    for (int r = 0; r < ROUNDS; r++) {
        /* Claim until the chunk is full, then give all back. */
        if (n == HOLD) filling = false;
        if (n == 0) filling = true;
        if (filling) {
            hak_bitmap_check chk;
            superslab_claim_slab(head, &chk);
            if (chk.outcome == HAK_CLAIM_CLAIMED) {
                CHECK(chk.active_slabs == (unsigned)__builtin_popcount(chk.bitmap), "active_slabs is the popcount");
                unsigned idx = chk.slab->slab_idx;
                CHECK(atomic_exchange(&holder[idx], 1) == 0, "slab %u claimed while held", idx);
                slab_init(chk.slab, CLASS, me);
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
            CHECK(atomic_exchange(&holder[s->slab_idx], 0) == 1, "slab %u released but not held", s->slab_idx);
            slab_release(s);
        }
    }
    while (n > 0) {
        hak_slab *s = held[--n];
        atomic_store(&holder[s->slab_idx], 0);
        slab_release(s);
    }
    return NULL;
}

int main(void) {
    hak_ensure_init();
    hak_expansion exp;
    expand_superslab_head(head, NULL, &exp);
    CHECK(exp.outcome == HAK_EXPAND_NEW, "first expansion makes a chunk (outcome %d)", exp.outcome);
    hak_superslab *chunk = atomic_load(&head->current_chunk);
    pthread_t t[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        fake_heap_init(&heaps[i]);
        pthread_create(&t[i], NULL, worker, &heaps[i]);
    }
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    CHECK(atomic_load(&head->current_chunk) == chunk, "no expansion happened");
    CHECK(atomic_load(&chunk->slab_bitmap) == 0, "every claim was released: bitmap %#x", atomic_load(&chunk->slab_bitmap));
    CHECK(fulls > 0, "the chunk was seen full (%lu times)", fulls);
    printf("bitmap ok: %lu claims, %lu full, %lu lost races\n", claims, fulls, lost);
    return 0;
}
