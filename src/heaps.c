/* heaps.c — thread heaps: each thread's own (which heap, whether it is in a call), and the registry of the live ones and the pool. */
#include "internal.h"

/* Every thread starts here: all its classes point at the empty slab, so its
 * first malloc takes the slow path, which gives the thread a real heap. */
hak_heap hak_empty_heap = {.cls = {[0 ... HAK_NUM_CLASSES - 1] = {.current = &hak_empty_slab}},
                            .direct = {[0 ... HAK_DIRECT_SLOTS - 1] = &hak_empty_slab}};

/* One TLS block for both, so the fast paths find them with one offset. */
HAK_TLS hak_thread_state hak_tls = {.heap = &hak_empty_heap};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_heap *live_heaps;   /* guarded by registry_lock, linked by next_heap */
static hak_heap *pooled_heaps; /* exited threads' heaps, for reuse */

void hak_heaps_lock(void) {
    pthread_mutex_lock(&registry_lock);
}

void hak_heaps_unlock(void) {
    pthread_mutex_unlock(&registry_lock);
}

hak_heap *hak_heaps_pooled_locked(void) {
    hak_heap *h = pooled_heaps;
    if (h) pooled_heaps = h->next_heap;
    return h;
}

void hak_heaps_add_locked(hak_heap *h) {
    atomic_store_explicit(&h->live, true, memory_order_relaxed);
    h->next_heap = live_heaps;
    live_heaps = h;
}

void hak_heaps_pool_locked(hak_heap *h) {
    hak_heap **link = &live_heaps;
    while (*link && *link != h) link = &(*link)->next_heap;
    if (*link) *link = h->next_heap;
    atomic_store_explicit(&h->live, false, memory_order_relaxed);
    h->next_heap = pooled_heaps;
    pooled_heaps = h;
}

hak_heap *hak_heaps_detach_others_locked(hak_heap *keep) {
    hak_heap *others = NULL;
    hak_heap **link = &live_heaps;
    while (*link) {
        hak_heap *h = *link;
        if (h != keep) {
            *link = h->next_heap;
            h->next_heap = others;
            others = h;
        } else {
            link = &h->next_heap;
        }
    }
    return others;
}

void hak_heaps_visit(hak_heap_visitor fn, void *arg) {
    pthread_mutex_lock(&registry_lock);
    for (hak_heap *h = live_heaps; h; h = h->next_heap) fn(h, arg);
    fn(NULL, arg);
    pthread_mutex_unlock(&registry_lock);
}

void hak_heaps_fork_lock(void) {
    pthread_mutex_lock(&registry_lock);
}

void hak_heaps_fork_unlock(void) {
    pthread_mutex_unlock(&registry_lock);
}
