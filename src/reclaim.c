/* reclaim.c — memory that remains when the OS or the cap refuses: everything no one uses goes back, before any OOM. */
#include <pthread.h>

#include "internal.h"

/*
 * The one policy for "give memory back when refused", called by the refill
 * and by the large path alike: ranges whose release the OS refused before,
 * every heap's slabs whose blocks all came back, the large cache, the
 * chunk reserve, the pages of free slabs, and chunks no slab uses (current
 * ones included).
 *
 * Reclaims run one at a time. Two at once hid memory from each other: while
 * one stole an idle heap's slabs, the other's steal found them taken, its
 * give-back found them not yet released, its retry was refused again, and the
 * program got NULLs with half the cap free (the stranded test, 8 threads, one
 * run in 20). Serialised, a refused caller's reclaim starts after any other
 * has ended, and a caller refused again retries as long as another reclaim
 * has ended since its last try, so an OOM is only reported after a retry that
 * no reclaim overlapped.
 */
static pthread_mutex_t reclaim_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t reclaims_done; /* guarded by reclaim_lock */

static size_t reclaim_locked(hak_heap *self, size_t *stolen) {
    size_t n = hak_os_release_pending();
    *stolen = hak_steal_unused(self); /* slabs every block came back to, idle heaps' too: first, their pages follow */
    n += *stolen;
    n += large_cache_flush();
    n += superslab_reserve_flush();
    size_t back = superslab_heads_give_back(true);
    if (back) superslab_reserve_flush(); /* retired chunks may have landed there */
    reclaims_done++;
    return n + back;
}

size_t hak_reclaim_unused(hak_heap *self) {
    size_t stolen;
    pthread_mutex_lock(&reclaim_lock);
    size_t n = reclaim_locked(self, &stolen);
    pthread_mutex_unlock(&reclaim_lock);
    return n;
}

bool hak_reclaim_retry(hak_heap *self, hak_reclaim_ticket *t) {
    pthread_mutex_lock(&reclaim_lock); /* waits out a reclaim in progress */
    bool again;
    t->stolen = 0;
    t->given_back = 0;
    if (t->tries == 0) {
        size_t before = hak_os_committed_bytes(), stolen;
        reclaim_locked(self, &stolen);
        size_t after = hak_os_committed_bytes(); /* others' claims meanwhile may even make it grow */
        t->stolen = (uint32_t)stolen;
        t->given_back = before > after ? before - after : 0;
        t->outcome = HAK_RECLAIM_RECLAIMED;
        again = true;
    } else {
        /* Another reclaim ended since this caller's last try: what it gave back may be what was refused. */
        again = reclaims_done != t->seen && t->tries <= HAK_RECLAIM_RETRIES;
        t->outcome = again ? HAK_RECLAIM_OTHERS_RECLAIMED : HAK_RECLAIM_GAVE_UP;
    }
    t->seen = reclaims_done;
    t->tries++;
    pthread_mutex_unlock(&reclaim_lock);
    return again;
}

void hak_reclaim_trim(void) {
    hak_os_release_pending();
    large_cache_decay();
    superslab_heads_give_back(false);
    superslab_reserve_trim();
}

void hak_reclaim_fork_lock(void) {
    pthread_mutex_lock(&reclaim_lock);
}

void hak_reclaim_fork_unlock(void) {
    pthread_mutex_unlock(&reclaim_lock);
}
