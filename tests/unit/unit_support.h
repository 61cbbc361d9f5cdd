/* unit_support.h — helpers the unit tests share: fake heaps for driving refills directly, and head inspection. */
#ifndef HAK_UNIT_SUPPORT_H
#define HAK_UNIT_SUPPORT_H

#include <pthread.h>
#include <string.h>

#include "internal.h"

/* A heap that is not any thread's: enough for superslab_refill and slab_init. */
static inline void fake_heap_init(hak_heap *h) {
    memset(h, 0, sizeof *h);
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) h->cls[c].current = &hak_empty_slab;
}

/* Slabs in use across the head's chain (popcount of every bitmap). */
static inline unsigned head_slabs_in_use(hak_superslab_head *head) {
    unsigned n = 0;
    pthread_mutex_lock(&head->lock);
    for (hak_superslab *c = atomic_load(&head->chunks); c; c = atomic_load(&c->next_chunk))
        n += (unsigned)__builtin_popcount(atomic_load(&c->slab_bitmap));
    pthread_mutex_unlock(&head->lock);
    return n;
}

/* Slabs of the head's chain that no one holds: let go by their owner (exhausted, or the owner exited). */
static inline unsigned head_abandoned(hak_superslab_head *head) {
    unsigned n = 0;
    pthread_mutex_lock(&head->lock);
    for (hak_superslab *c = atomic_load(&head->chunks); c; c = atomic_load(&c->next_chunk))
        for (unsigned i = 0; i < HAK_SLABS_PER_CHUNK; i++)
            n += (atomic_load(&c->slabs[i].remote_free) & HAK_REMOTE_UNHELD) != 0;
    pthread_mutex_unlock(&head->lock);
    return n;
}

static inline unsigned head_chunks(hak_superslab_head *head) {
    pthread_mutex_lock(&head->lock);
    unsigned n = head->chunk_count;
    pthread_mutex_unlock(&head->lock);
    return n;
}

#endif
