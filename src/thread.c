/* thread.c — thread heaps: TLS, the registry, thread exit and fork. */
#include <errno.h>

#include "internal.h"

#define EMPTY_CLASS {.current = &hak_empty_slab}
#define EMPTY4 EMPTY_CLASS, EMPTY_CLASS, EMPTY_CLASS, EMPTY_CLASS
/* Every thread starts here: all its classes point at the empty slab, so its
 * first malloc takes the slow path, which gives the thread a real heap. */
hak_heap hak_empty_heap = {.cls = {EMPTY4, EMPTY4, EMPTY4, EMPTY4, EMPTY4, EMPTY4, EMPTY4}};
_Static_assert(HAK_NUM_CLASSES == 28, "EMPTY4 covers every class");

HAK_TLS hak_heap *hak_tls_heap = &hak_empty_heap;

/* Heaps are carved from metadata pages that are never unmapped: a remote free
 * may still write a hint into the heap of a thread that just exited. */
static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_heap *live_heaps;   /* guarded by registry_lock */
static hak_heap *pooled_heaps; /* exited threads' heaps, for reuse */
static uint8_t *meta_cursor, *meta_end;

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);

static void create_exit_key(void) {
    if (pthread_key_create(&exit_key, thread_exit) != 0) exit_key = (pthread_key_t)-1;
}

static hak_heap *heap_take_locked(void) {
    hak_heap *h = pooled_heaps;
    if (h) {
        pooled_heaps = h->next_heap;
        return h;
    }
    size_t size = (sizeof(hak_heap) + 63) & ~(size_t)63;
    if (!meta_cursor || (size_t)(meta_end - meta_cursor) < size) {
        size_t span = 64 * 1024;
        void *p = hak_os_map_metadata(span);
        if (!p) return NULL; /* the caller's malloc returns NULL with ENOMEM; the next one tries again */
        meta_cursor = p;
        meta_end = meta_cursor + span;
    }
    h = (hak_heap *)meta_cursor;
    meta_cursor += size;
    return h;
}

hak_heap *hak_thread_heap_init(void) {
    int saved = errno;
    hak_ensure_init();
    pthread_mutex_lock(&registry_lock);
    hak_heap *h = heap_take_locked();
    if (h) {
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
            hak_class_cache *cc = &h->cls[c];
            cc->current = &hak_empty_slab;
            cc->ring_count = 0;
            cc->chunk = NULL;
        }
        atomic_store_explicit(&h->counters.allocs, 0, memory_order_relaxed);
        atomic_store_explicit(&h->counters.frees, 0, memory_order_relaxed);
        h->refill_seq = 0;
        h->tid = hak_gettid();
        h->live = true;
        h->next_heap = live_heaps;
        live_heaps = h;
    }
    pthread_mutex_unlock(&registry_lock);
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    hak_tls_heap = h;
    pthread_once(&exit_key_once, create_exit_key);
    if (exit_key != (pthread_key_t)-1) pthread_setspecific(exit_key, h);
    errno = saved;
    return h;
}

static void heap_retire(hak_heap *h) {
    tiny_heap_abandon_all(h);
    pthread_mutex_lock(&registry_lock);
    hak_stats_retire_heap(h);
    hak_heap **link = &live_heaps;
    while (*link && *link != h) link = &(*link)->next_heap;
    if (*link) *link = h->next_heap;
    h->live = false;
    h->next_heap = pooled_heaps;
    pooled_heaps = h;
    pthread_mutex_unlock(&registry_lock);
}

/* pthread key destructor. If a later destructor allocates again, the thread
 * gets a fresh heap and the key is set again, so this runs once more. */
static void thread_exit(void *arg) {
    hak_heap *h = arg;
    if (h != hak_tls_heap) return;
    hak_tls_heap = &hak_empty_heap;
    heap_retire(h);
}

void hak_heaps_visit(hak_heap_visitor fn, void *arg) {
    pthread_mutex_lock(&registry_lock);
    for (hak_heap *h = live_heaps; h; h = h->next_heap) fn(h, arg);
    fn(NULL, arg);
    pthread_mutex_unlock(&registry_lock);
}

/* ---- fork: no lock may be held by a thread that does not exist in the child ---- */

static void fork_prepare(void) {
    pthread_mutex_lock(&registry_lock);
    superslab_heads_lock_all();
    superslab_reserve_lock();
}

static void fork_parent(void) {
    superslab_reserve_unlock();
    superslab_heads_unlock_all();
    pthread_mutex_unlock(&registry_lock);
}

static void fork_child(void) {
    superslab_reserve_unlock();
    superslab_heads_unlock_all();
    /* Threads other than this one are gone: their slabs become abandoned, so
     * the child's frees of their blocks give the memory back. */
    hak_heap *orphans = NULL;
    hak_heap *me = hak_tls_heap;
    hak_heap **link = &live_heaps;
    while (*link) {
        hak_heap *h = *link;
        if (h != me) {
            *link = h->next_heap;
            h->next_heap = orphans;
            orphans = h;
        } else {
            link = &h->next_heap;
        }
    }
    if (me != &hak_empty_heap) me->tid = hak_gettid();
    pthread_mutex_unlock(&registry_lock);
    while (orphans) {
        hak_heap *h = orphans;
        orphans = h->next_heap;
        pthread_mutex_lock(&registry_lock);
        h->next_heap = live_heaps;
        live_heaps = h;
        pthread_mutex_unlock(&registry_lock);
        heap_retire(h);
    }
}

/* Registered first thing, so in the child our handler runs before any other
 * that might allocate (handlers run in registration order after fork). */
__attribute__((constructor(101))) static void hak_process_init(void) {
    hak_ensure_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}
