/* large.c — blocks above HAK_SMALL_MAX: one 2 MiB-aligned mapping each, with a header the region map finds. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "trace.h"

#define LARGE_MAGIC 0x48414b4d4c415247ull /* "HAKMLARG" */
#define LARGE_HEADER 64u

/* Lives at the 2 MiB boundary at or below user - 1, which is what free()
 * computes from the pointer alone. */
typedef struct hak_large_header {
    uint64_t magic;
    uint8_t *map_base;
    size_t map_size;
    uint8_t *user;
#if HAKMEM_CHECKED
    size_t requested; /* the usable size; canary bytes from there to the mapping's end */
#endif
} hak_large_header;

_Static_assert(sizeof(hak_large_header) <= LARGE_HEADER, "header fits its slot");

static size_t page_round(size_t n) {
    size_t pg = hak_os_page_size();
    return (n + pg - 1) & ~(pg - 1);
}

static hak_large_header *header_of(const void *p) {
    return (hak_large_header *)(((uintptr_t)p - 1) & ~(uintptr_t)HAK_CHUNK_MASK);
}

#if HAKMEM_CHECKED
#define LARGE_CANARY 0xcau
/* How far back from a pointer's region a large block's header is looked for. */
#define LARGE_LOOKBACK_REGIONS 1024u

static uint8_t *map_end(const hak_large_header *h) {
    return h->map_base + h->map_size;
}

static void canary_set(hak_large_header *h, size_t requested) {
    h->requested = requested;
    memset(h->user + requested, LARGE_CANARY, (size_t)(map_end(h) - h->user) - requested);
}

static void canary_check(const hak_large_header *h, const char *op) {
    for (const uint8_t *b = h->user + h->requested; b < map_end(h); b++) {
        if (*b != LARGE_CANARY) {
            char detail[80];
            hak_format(detail, sizeof detail, "%zu B requested, byte %zu overwritten", h->requested,
                       (size_t)(b - h->user));
            hak_ck_report(HAK_CK_OVERFLOW, op, h->user, detail, HAK_CK_LARGE_CLASS, h->requested);
        }
    }
}

/* Only the header's region is marked in the region map, so a pointer far
 * into a big block finds it by walking back region by region. */
bool large_ck_lookup(const void *p, const uint8_t **user, size_t *requested) {
    uintptr_t region = ((uintptr_t)p - 1) & ~(uintptr_t)HAK_CHUNK_MASK;
    for (unsigned i = 0; i < LARGE_LOOKBACK_REGIONS && region != 0; i++, region -= HAK_CHUNK_SIZE) {
        unsigned kind = hak_region_kind(region);
        if (kind == HAK_REGION_SUPERSLAB) return false;
        if (kind != HAK_REGION_LARGE) continue;
        const hak_large_header *h = (const hak_large_header *)region;
        if (h->magic != LARGE_MAGIC || (const uint8_t *)p >= map_end(h)) return false;
        *user = h->user;
        *requested = h->requested;
        return true;
    }
    return false;
}
#endif

/* The large path's refusal is reported like a chunk's: superslab_alloc_fail
 * with the large class, then (by the caller) oom. */
static void *large_refused(const hak_os_failure *why) {
    hak_count(HAK_NUM_CLASSES, HAK_CTR_FAILURES);
    hak_count(HAK_NUM_CLASSES, HAK_CTR_OOMS);
    HAK_TRACE(superslab_alloc_fail, HAKMEM_TP_LARGE_CLASS, 0, hak_tls_heap->refill_seq, why->bytes, why->err,
              (int)why->reason);
    errno = ENOMEM;
    return NULL;
}

void *large_alloc(size_t size, size_t align) {
    hak_ensure_init();
    if (align < LARGE_HEADER) align = LARGE_HEADER;
    size_t map_align = align > HAK_CHUNK_SIZE ? align : HAK_CHUNK_SIZE;
    size_t offset = align; /* user pointer = map_base + offset */
    hak_os_failure why;
    if (size > PTRDIFF_MAX - offset - hak_os_page_size()) {
        why = (hak_os_failure){.reason = HAK_FAIL_OS, .err = ENOMEM, .bytes = size};
        return large_refused(&why);
    }
    size_t map_size = page_round(offset + size);
    uint8_t *base = hak_os_map(map_size, map_align, &why);
    if (!base && superslab_reclaim_empty() > 0) base = hak_os_map(map_size, map_align, &why);
    if (!base) return large_refused(&why);
    uint8_t *user = base + offset;
    hak_large_header *h = header_of(user);
    h->magic = LARGE_MAGIC;
    h->map_base = base;
    h->map_size = map_size;
    h->user = user;
#if HAKMEM_CHECKED
    canary_set(h, size);
#endif
    hak_region_set((uintptr_t)h, HAK_REGION_LARGE);
    return user;
}

static hak_large_header *checked_header(const void *p, const char *op) {
    hak_large_header *h = header_of(p);
    if (h->magic != LARGE_MAGIC || h->user != p) hak_fatal_invalid_pointer(op, p);
    return h;
}

bool large_owns(const void *p) {
    hak_large_header *h = header_of(p);
    return h->magic == LARGE_MAGIC && h->user == p;
}

void large_free(void *p) {
    hak_large_header *h = checked_header(p, "free");
#if HAKMEM_CHECKED
    canary_check(h, "free");
    hak_ck_large_freed(p, h->requested); /* its mapping goes: a second free is known by address */
#endif
    uint8_t *base = h->map_base;
    size_t size = h->map_size;
    h->magic = 0;
    hak_region_set((uintptr_t)h, HAK_REGION_NONE);
    hak_os_unmap(base, size);
}

size_t large_usable_size(const void *p) {
    hak_large_header *h = checked_header(p, "malloc_usable_size");
#if HAKMEM_CHECKED
    return h->requested;
#else
    return h->map_size - (size_t)(h->user - h->map_base);
#endif
}

/* Returns p when the block now holds `size` bytes without moving, else NULL. */
void *large_realloc_in_place(void *p, size_t size) {
    hak_large_header *h = checked_header(p, "realloc");
#if HAKMEM_CHECKED
    canary_check(h, "realloc");
#endif
    size_t offset = (size_t)(h->user - h->map_base);
    if (size > PTRDIFF_MAX - offset - hak_os_page_size()) return NULL;
    size_t need = page_round(offset + size);
    if (need <= h->map_size) {
        /* Shrinking by at least a quarter gives the tail back to the OS. */
        if (need < h->map_size - h->map_size / 4) {
            hak_os_unmap(h->map_base + need, h->map_size - need);
            h->map_size = need;
        }
#if HAKMEM_CHECKED
        canary_set(h, size);
#endif
        return p;
    }
    if (hak_os_grow_in_place(h->map_base, h->map_size, need)) {
        h->map_size = need;
#if HAKMEM_CHECKED
        canary_set(h, size);
#endif
        return p;
    }
    return NULL;
}
