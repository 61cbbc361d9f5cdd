/* thread.c — thread heaps: TLS, the registry, thread exit and fork. */
#include <errno.h>

#include "heap_lists.h"
#include "internal.h"

/* Heaps are carved from metadata pages that are never unmapped: a remote free
 * may still read the owner of a slab whose heap's thread just exited.
 * Guarded by the registry lock (heaps.c). */
static uint8_t *meta_cursor[HAK_ARENAS], *meta_end[HAK_ARENAS]; /* per arena: each pays for its own pages */

static pthread_key_t exit_key;
static pthread_once_t exit_key_once = PTHREAD_ONCE_INIT;

static void thread_exit(void *arg);

static void create_exit_key(void) {
    if (pthread_key_create(&exit_key, thread_exit) != 0) exit_key = (pthread_key_t)-1;
}

/* Set once the thread's key destructor ran: it gets no heap for a free any more (hak_thread_exiting). */
static HAK_TLS bool thread_exiting;

static hak_heap *heap_take_locked(unsigned arena, hak_os_failure *why) {
    hak_heap *h = arena == HAK_ARENA_PROGRAM ? hak_heaps_pooled_locked() : NULL;
    if (h) return h;
    size_t size = (sizeof(hak_heap) + 63) & ~(size_t)63;
    unsigned a = hak_arena_slot(arena);
    if (!meta_cursor[a] || (size_t)(meta_end[a] - meta_cursor[a]) < size) {
        size_t span = 64 * 1024;
        void *p = hak_os_map_metadata(arena, span, why);
        if (!p) return NULL; /* the caller's malloc returns NULL with ENOMEM; the next one tries again */
        meta_cursor[a] = p;
        meta_end[a] = meta_cursor[a] + span;
    }
    h = (hak_heap *)meta_cursor[a];
    meta_cursor[a] += size;
    return h;
}

static void heap_reset(hak_heap *h, unsigned arena) {
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_cache *cc = &h->cls[c];
        cc->class_idx = (uint8_t)c;
        hak_set_current(cc, &hak_empty_slab); /* and the class's direct slots: one writer for both */
        cc->ring_count = 0;
        cc->full = NULL;
        cc->full_count = 0;
        cc->allocates = false;
        h->last_chunk[c] = NULL;
    }
    atomic_store_explicit(&h->outbox_slab, NULL, memory_order_relaxed); /* a retired heap flushed it */
    /* A pooled heap's words may be odd: its retirement's call was never closed (heap_retire). */
    atomic_store_explicit(&h->ops.allocs, 0, memory_order_relaxed);
    atomic_store_explicit(&h->ops.frees, 0, memory_order_relaxed);
    h->refill_seq = 0;
    h->tid = hak_gettid();
    h->arena = (uint8_t)arena;
    atomic_store_explicit(&h->stealing, 0, memory_order_relaxed);
}

hak_heap *hak_thread_heap_make(unsigned arena) {
    hak_ensure_init();
    hak_os_failure why;
    hak_heaps_lock();
    hak_heap *h = heap_take_locked(arena, &why);
    if (h) heap_reset(h, arena); /* in no registry: never stolen from */
    hak_heaps_unlock();
    return h;
}

hak_heap *hak_thread_heap_init(hak_os_failure *why) {
    int saved = errno;
    hak_ensure_init();
    hak_heaps_lock();
    hak_heap *h = heap_take_locked(HAK_ARENA_PROGRAM, why);
    if (h) {
        heap_reset(h, HAK_ARENA_PROGRAM);
        hak_heaps_add_locked(h);
    }
    hak_heaps_unlock();
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    hak_tls.heap = h;
    pthread_once(&exit_key_once, create_exit_key);
    if (exit_key != (pthread_key_t)-1) pthread_setspecific(exit_key, h);
    errno = saved;
    return h;
}

bool hak_thread_exiting(void) {
    return thread_exiting;
}

/* The call it opens on h is never closed: h's words are read for the last time under the registry lock, which
 * no stealer holds meanwhile (they visit under it), and once pooled h may be another thread's at once. */
static void heap_retire(hak_heap *h) {
    hak_op_begin(&h->ops.allocs);
    tiny_heap_abandon_all(h);
    hak_heaps_lock();
    hak_stats_retire_heap(h);
    hak_heaps_pool_locked(h);
    hak_heaps_unlock();
}

/* pthread key destructor. If a later destructor allocates again, the thread
 * gets a fresh heap and the key is set again, so this runs once more. */
static void thread_exit(void *arg) {
    hak_heap *h = arg;
    if (h != hak_tls.heap) return;
    thread_exiting = true;
    hak_tls.heap = &hak_empty_heap;
    heap_retire(h);
}

/* ---- fork: no lock may be held by a thread that does not exist in the child ---- */

static void fork_prepare(void) {
    hak_reclaim_fork_lock(); /* a reclaim takes the registry and the heads after it */
    hak_heaps_fork_lock();
    superslab_heads_lock_all();
    superslab_reserve_lock();
}

static void fork_parent(void) {
    superslab_reserve_unlock();
    superslab_heads_unlock_all();
    hak_heaps_fork_unlock();
    hak_reclaim_fork_unlock();
}

static void fork_child(void) {
    superslab_reserve_unlock();
    superslab_heads_unlock_all();
    hak_heaps_fork_unlock();
    hak_reclaim_fork_unlock();
    hak_trace_forked();
    /* Threads other than this one are gone: their slabs are let go, so the
     * child's frees of their blocks give the memory back. */
    hak_heap *me = hak_tls.heap;
    hak_heaps_lock();
    hak_heap *orphans = hak_heaps_detach_others_locked(me);
    if (me != &hak_empty_heap) me->tid = hak_gettid();
    hak_heaps_unlock();
    /* Their threads are gone: nothing of theirs is in a call, and no stealer can be at them either. */
    while (orphans) {
        hak_heap *h = orphans;
        orphans = h->next_heap;
        atomic_store_explicit(&h->stealing, 0, memory_order_relaxed);
        hak_heaps_lock();
        hak_heaps_add_locked(h);
        hak_heaps_unlock();
        heap_retire(h);
    }
}

/* Registered first thing, so in the child our handler runs before any other
 * that might allocate (handlers run in registration order after fork). */
__attribute__((constructor(101))) static void hak_process_init(void) {
    hak_ensure_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}
