/* heap_sites_lib.c — the three call sites whose memory the heap profile must attribute (in the program, or a dlopen'ed module). */
#include <stdlib.h>

#include "heap_sites.h"

/* A rebuild with -DREBUILT=1 moves every site below by two lines: a trace of the old binary must not be
 * resolved against the new one's lines. */
#if REBUILT
int heap_sites_rebuilt(void);
int heap_sites_rebuilt(void) { return 1; }
#endif

/* Not inlined: every instruction of a site is its own, so its return addresses map to its line whatever a
 * symbolizer does with inlined code. */
__attribute__((noinline)) static void *keep(struct heap_site *site, void *block, const char *function,
                                            const char *file, int line)
{
    site->function = function;
    site->file = file;
    site->line = line;
    if (block) {
        *(void **)block = site->kept;
        site->kept = block;
        site->blocks++;
    }
    return block;
}

/* Each malloc call and the __LINE__ naming it stand on one line: the call's return address maps to it. */
__attribute__((noinline)) void *alloc_big(struct heap_site *site)
{
    return keep(site, malloc(HEAP_SITE_BLOCK), __func__, __FILE__, __LINE__);
}

__attribute__((noinline)) void *alloc_mid(struct heap_site *site)
{
    return keep(site, malloc(HEAP_SITE_BLOCK), __func__, __FILE__, __LINE__);
}

__attribute__((noinline)) void *alloc_small(struct heap_site *site)
{
    return keep(site, malloc(HEAP_SITE_BLOCK), __func__, __FILE__, __LINE__);
}
