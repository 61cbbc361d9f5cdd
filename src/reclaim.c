/* reclaim.c — memory that remains when the OS or the cap refuses: everything no one uses goes back, once, before any OOM. */
#include "internal.h"

/*
 * The one policy for "give memory back when refused", called by the refill
 * and by the large path alike: ranges whose release the OS refused before,
 * every heap's slabs whose blocks all came back, the large cache, the
 * chunk reserve, the pages of free slabs, and chunks no slab uses (current
 * ones included). The caller tries once more; only then is
 * the refusal an OOM.
 */
size_t hak_reclaim_unused(hak_heap *self) {
    size_t n = hak_os_release_pending();
    n += hak_steal_unused(self); /* slabs every block came back to, idle heaps' too: first, their pages follow */
    n += large_cache_flush();
    n += superslab_reserve_flush();
    size_t back = superslab_heads_give_back(true);
    if (back) superslab_reserve_flush(); /* retired chunks may have landed there */
    return n + back;
}

void hak_reclaim_trim(void) {
    hak_os_release_pending();
    superslab_heads_give_back(false);
    superslab_reserve_trim();
}
