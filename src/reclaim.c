/* reclaim.c — memory that remains when the OS or the cap refuses: everything no one uses goes back, once, before any OOM. */
#include "internal.h"

/*
 * The one policy for "give memory back when refused", called by the refill
 * and by the large path alike: ranges whose release the OS refused before,
 * the large cache, the chunk reserve, and current chunks no slab uses. The
 * caller tries once more; only then is the refusal an OOM.
 */
size_t hak_reclaim_unused(void) {
    size_t n = hak_os_release_pending();
    n += large_cache_flush();
    n += superslab_reserve_flush();
    size_t retired = superslab_heads_retire_idle();
    if (retired) superslab_reserve_flush(); /* retired chunks may have landed there */
    return n + retired;
}
