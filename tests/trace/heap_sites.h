/* heap_sites.h — what the heap_sites programs and their call sites (heap_sites_lib.c) share: one site's tally. */
#ifndef HEAP_SITES_H
#define HEAP_SITES_H

#include <stddef.h>

/* Every block is this big, so that a sampler with a 16 KiB mean interval takes about one block in five. */
#define HEAP_SITE_BLOCK 4096

/* Filled by the site on every call: where its malloc call is (the truth the heap profile must find) and what it
 * holds. The blocks are chained through their first word, so they stay reachable and touched. */
struct heap_site {
    const char *function;
    const char *file;
    int line;
    size_t blocks;
    void *kept;
};

/* One allocation through the site: the block, or NULL when the allocator refused it. */
typedef void *(*heap_site_fn)(struct heap_site *site);

void *alloc_big(struct heap_site *site);
void *alloc_mid(struct heap_site *site);
void *alloc_small(struct heap_site *site);

#endif
