/* checked.c — the checked build's block bookkeeping (trailer, canary, poison) and its one-line misuse reports. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "slab_state.h"

#if !HAKMEM_CHECKED
#error "checked.c is built only with HAKMEM_CHECKED=1 (cmake -DHAKMEM_CHECKED=ON)"
#endif

/*
 * Every small block ends with a trailer: the size the program asked for and
 * a state word. The state tells a block the program holds (LIVE) from one
 * that was freed (FREE, its bytes poisoned) and one that was carved but never
 * handed out (FRESH, not poisoned: carving must not touch every byte). Bytes
 * from the requested end up to the trailer hold the canary. A free block's
 * first 8 bytes are the free-list link, so poison starts after them.
 *
 *   | user bytes (requested) | canary ... | requested:u32 | state:u32 |
 *   | link | poison ...                  | (free block)               |
 */
#define CK_FRESH 0x48534652u /* "RFSH" */
#define CK_LIVE 0x4556494cu  /* "LIVE" */
#define CK_FREE 0x45455246u  /* "FREE" */
#define CK_CANARY 0xcau
#define CK_POISON 0xdfu
#define CK_LINK 8u

typedef struct ck_trailer {
    uint32_t requested;
    uint32_t state; /* changed with __atomic builtins: two racing frees of one block see each other */
} ck_trailer;

_Static_assert(sizeof(ck_trailer) == HAK_BLOCK_OVERHEAD, "the trailer is the block overhead");

static ck_trailer *trailer_of(const void *block, uint32_t block_size) {
    return (ck_trailer *)((uintptr_t)block + block_size - sizeof(ck_trailer));
}

static uint32_t state_of(const ck_trailer *t) {
    return __atomic_load_n(&t->state, __ATOMIC_ACQUIRE);
}

/* ---- reports ---- */

static const char *phrase(hak_ck_kind kind, const char *op, char *buf, size_t cap) {
    bool is_free = strcmp(op, "free") == 0;
    switch (kind) {
    case HAK_CK_DOUBLE_FREE:
        if (is_free) return "double free of";
        hak_format(buf, cap, "%s of freed block", op);
        return buf;
    case HAK_CK_UNALLOCATED: hak_format(buf, cap, "%s of unallocated block", op); return buf;
    case HAK_CK_FOREIGN: hak_format(buf, cap, "%s of foreign pointer", op); return buf;
    case HAK_CK_INTERIOR: hak_format(buf, cap, "%s of interior pointer", op); return buf;
    case HAK_CK_OVERFLOW: return "write past the end of";
    case HAK_CK_USE_AFTER_FREE: return "use after free of";
    }
    return "misuse of";
}

void hak_ck_report(hak_ck_kind kind, const char *op, const void *p, const char *detail, int class_idx, size_t size) {
    char what[64], cls[64];
    cls[0] = '\0';
    if (class_idx == HAK_CK_LARGE_CLASS) hak_format(cls, sizeof cls, ", class large (%zu B)", size);
    else if (class_idx >= 0) hak_format(cls, sizeof cls, ", class %d (%zu B)", class_idx, size);
    hak_diag("hakmem: %s %p%s%s%s%s, thread %d\n", phrase(kind, op, what, sizeof what), p, detail ? " (" : "",
             detail ? detail : "", detail ? ")" : "", cls, (int)hak_gettid());
    abort();
}

void hak_check_failed(const char *what, const char *file, int line) {
    hak_diag("hakmem: check failed: %s (%s:%d), thread %d\n", what, file, line, (int)hak_gettid());
    abort();
}

/* ---- where a pointer into a SuperSlab falls ---- */

typedef struct ck_block {
    hak_slab *slab;
    unsigned class_idx;
    uint32_t block_size;
    uint8_t *block;   /* start of the block holding p */
    size_t offset;    /* p - block */
    uint32_t index;   /* block number in its slab */
    bool live;        /* the slab is in use (its blocks may be out) */
} ck_block;

/* By the chunk's class, not the slab's fields: a slab back in its chunk has
 * no block size, yet a late double free into it should still be named. */
static bool locate(const void *p, ck_block *out) {
    hak_superslab *c = hak_chunk_of(p);
    size_t slab_idx = ((uintptr_t)p - (uintptr_t)c) >> HAK_SLAB_SHIFT;
    if (c->magic != HAK_SUPERSLAB_MAGIC || slab_idx >= HAK_SLABS_PER_CHUNK || c->class_idx >= HAK_NUM_CLASSES)
        return false;
    unsigned slabs = 1u << hak_class_span_shift[c->class_idx];
    slab_idx &= ~(size_t)(slabs - 1); /* the span's first slab holds its metadata */
    hak_slab *s = &c->slabs[slab_idx];
    uint32_t bs = hak_class_size[c->class_idx];
    uint8_t *data = hak_slab_pages(c, (unsigned)slab_idx);
    if ((const uint8_t *)p < data) return false;
    size_t off = (size_t)((const uint8_t *)p - data);
    size_t index = off / bs;
    if (index >= hak_span_bytes((unsigned)slab_idx, slabs) / bs) return false; /* the slack after the last block */
    out->slab = s;
    out->class_idx = c->class_idx;
    out->block_size = bs;
    out->block = data + index * bs;
    out->offset = off - index * bs;
    out->index = (uint32_t)index;
    out->live = hak_state_live(atomic_load_explicit(&s->state, memory_order_acquire));
    return true;
}

/* Carved in this slab's life. `carved` is the holder's, but it only grows
 * while the slab lives and the block reached the caller after its carving. */
static bool carved(const ck_block *b) {
    return b->live && b->index < __atomic_load_n(&b->slab->carved, __ATOMIC_RELAXED);
}

static _Noreturn void report_block(hak_ck_kind kind, const char *op, const void *p, const ck_block *b,
                                   const char *detail) {
    hak_ck_report(kind, op, p, detail, (int)b->class_idx, b->block_size);
}

/* ---- the large path's freed blocks: their mappings are gone, so remember a few addresses ---- */

#define CK_LARGE_FREED 256
static pthread_mutex_t freed_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    uintptr_t user;
    size_t requested;
} freed_large[CK_LARGE_FREED];
static unsigned freed_next;

void hak_ck_large_freed(const void *user, size_t requested) {
    pthread_mutex_lock(&freed_lock);
    freed_large[freed_next % CK_LARGE_FREED].user = (uintptr_t)user;
    freed_large[freed_next % CK_LARGE_FREED].requested = requested;
    freed_next++;
    pthread_mutex_unlock(&freed_lock);
}

static bool large_was_freed(const void *p, size_t *requested) {
    bool found = false;
    pthread_mutex_lock(&freed_lock);
    unsigned n = freed_next < CK_LARGE_FREED ? freed_next : CK_LARGE_FREED;
    for (unsigned i = 1; i <= n && !found; i++) { /* newest first */
        unsigned k = (freed_next - i) % CK_LARGE_FREED;
        if (freed_large[k].user == (uintptr_t)p) {
            *requested = freed_large[k].requested;
            found = true;
        }
    }
    pthread_mutex_unlock(&freed_lock);
    return found;
}

/* ---- diagnosis of a pointer the fast checks rejected ---- */

static _Noreturn void diagnose_small(const char *op, const void *p) {
    ck_block b;
    char detail[80];
    if (!locate(p, &b)) hak_ck_report(HAK_CK_FOREIGN, op, p, NULL, HAK_CK_NO_CLASS, 0);
    if (b.offset != 0) {
        hak_format(detail, sizeof detail, "block %p + %zu", (void *)b.block, b.offset);
        report_block(HAK_CK_INTERIOR, op, p, &b, detail);
    }
    uint32_t st = state_of(trailer_of(b.block, b.block_size));
    /* A FREE trailer outside a carved, live block is most likely the same
     * block freed before its slab went back to its chunk. */
    if (st == CK_FREE) report_block(HAK_CK_DOUBLE_FREE, op, p, &b, NULL);
    /* A carved block's state is always one of the three: anything else was
     * written over it, most likely by running off the block's end. */
    if (carved(&b) && st != CK_LIVE && st != CK_FRESH)
        report_block(HAK_CK_OVERFLOW, op, p, &b, "its trailer overwritten");
    if (st != CK_LIVE || !carved(&b)) report_block(HAK_CK_UNALLOCATED, op, p, &b, NULL);
    hak_check_failed("a live block was taken for an invalid pointer", __FILE_NAME__, __LINE__);
}

/* How far back from a pointer's region a large block's header is looked for. */
#define LARGE_LOOKBACK_REGIONS 1024u

/* Only the header's region is marked in the region map, so a pointer far
 * into a big block finds it by walking back region by region. */
static bool large_lookup(const void *p, const uint8_t **user, size_t *requested) {
    uintptr_t region = ((uintptr_t)p - 1) & ~(uintptr_t)HAK_CHUNK_MASK;
    for (unsigned i = 0; i < LARGE_LOOKBACK_REGIONS && region != 0; i++, region -= HAK_CHUNK_SIZE) {
        unsigned kind = hak_region_kind(region);
        if (kind == HAK_REGION_SUPERSLAB) return false;
        if (kind != HAK_REGION_LARGE) continue;
        const hak_large_header *h = (const hak_large_header *)region;
        if (h->magic != HAK_LARGE_MAGIC || (const uint8_t *)p >= h->map_base + h->map_size) return false;
        *user = h->user;
        *requested = h->requested;
        return true;
    }
    return false;
}

static _Noreturn void diagnose_large(const char *op, const void *p) {
    size_t requested;
    const uint8_t *user;
    if (large_was_freed(p, &requested)) hak_ck_report(HAK_CK_DOUBLE_FREE, op, p, NULL, HAK_CK_LARGE_CLASS, requested);
    if (large_lookup(p, &user, &requested) && (const uint8_t *)p > user) {
        char detail[80];
        hak_format(detail, sizeof detail, "block %p + %zu", (const void *)user, (size_t)((const uint8_t *)p - user));
        hak_ck_report(HAK_CK_INTERIOR, op, p, detail, HAK_CK_LARGE_CLASS, requested);
    }
    hak_ck_report(HAK_CK_FOREIGN, op, p, NULL, HAK_CK_NO_CLASS, 0);
}

void hak_ck_invalid_pointer(const char *op, const void *p) {
    if (hak_region_kind((uintptr_t)p - 1) == HAK_REGION_SUPERSLAB) diagnose_small(op, p);
    diagnose_large(op, p);
}

/* ---- the life of a small block ---- */

void hak_ck_carved(uint8_t *first, uint32_t count, uint32_t block_size) {
    /* Requests take the class of size + trailer, at least 16 bytes: the 8-byte class is never carved here. */
    HAK_CHECK(block_size >= CK_LINK + HAK_BLOCK_OVERHEAD, "a carved block holds its link and its trailer");
    for (uint32_t i = 0; i < count; i++) {
        ck_trailer *t = trailer_of(first + (size_t)i * block_size, block_size);
        t->requested = 0;
        __atomic_store_n(&t->state, CK_FRESH, __ATOMIC_RELAXED);
    }
}

static size_t first_not(const uint8_t *p, size_t from, size_t to, uint8_t byte) {
    for (size_t i = from; i < to; i++)
        if (p[i] != byte) return i;
    return to;
}

/* The canary between the requested end and the trailer, and the trailer's own size field. */
static void check_canary(const char *op, const void *p, const ck_block *b, const ck_trailer *t) {
    char detail[80];
    size_t room = b->block_size - HAK_BLOCK_OVERHEAD;
    if (t->requested > room) report_block(HAK_CK_OVERFLOW, op, p, b, "its trailer overwritten");
    size_t bad = first_not(p, t->requested, room, CK_CANARY);
    if (bad < room) {
        hak_format(detail, sizeof detail, "%u B requested, byte %zu overwritten", t->requested, bad);
        report_block(HAK_CK_OVERFLOW, op, p, b, detail);
    }
}

/* A live block hakmem handed out, or no return. */
static ck_trailer *live_block(const char *op, const void *p, ck_block *b) {
    if (!locate(p, b) || b->offset != 0 || !carved(b)) hak_ck_invalid_pointer(op, p);
    ck_trailer *t = trailer_of(b->block, b->block_size);
    if (state_of(t) != CK_LIVE) hak_ck_invalid_pointer(op, p);
    return t;
}

void *hak_ck_block_alloc(void *p, size_t size) {
    if (!p) return NULL;
    ck_block b;
    bool found = locate(p, &b);
    HAK_CHECK(found && b.offset == 0 && b.live, "a block handed out is a block start of a slab in use");
    HAK_CHECK(b.slab->block_size == b.block_size, "a slab in use has its chunk's block size");
    ck_trailer *t = trailer_of(p, b.block_size);
    size_t room = b.block_size - HAK_BLOCK_OVERHEAD;
    HAK_CHECK(size <= room, "the class holds the request and the trailer");
    uint32_t st = state_of(t);
    if (st == CK_FREE) {
        size_t bad = first_not(p, CK_LINK, room, CK_POISON);
        if (bad < room) {
            char detail[80];
            hak_format(detail, sizeof detail, "byte %zu written after free", bad);
            report_block(HAK_CK_USE_AFTER_FREE, "malloc", p, &b, detail);
        }
    } else {
        HAK_CHECK(st == CK_FRESH, "a block on a free list is free or freshly carved");
    }
    t->requested = (uint32_t)size;
    memset((uint8_t *)p + size, CK_CANARY, room - size);
    __atomic_store_n(&t->state, CK_LIVE, __ATOMIC_RELEASE);
    return p;
}

void hak_ck_block_free(void *p) {
    ck_block b;
    ck_trailer *t = live_block("free", p, &b);
    check_canary("free", p, &b, t);
    uint32_t expected = CK_LIVE;
    /* Two threads freeing one block at once: the loser sees FREE. */
    if (!__atomic_compare_exchange_n(&t->state, &expected, CK_FREE, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        report_block(HAK_CK_DOUBLE_FREE, "free", p, &b, NULL);
    size_t room = b.block_size - HAK_BLOCK_OVERHEAD;
    memset((uint8_t *)p + CK_LINK, CK_POISON, room - CK_LINK);
}

size_t hak_ck_block_usable(const void *p, size_t usable, const char *op) {
    (void)usable;
    ck_block b;
    return live_block(op, p, &b)->requested;
}

size_t hak_ck_block_room(const void *p, size_t usable) {
    (void)usable;
    ck_block b;
    live_block("realloc", p, &b);
    return b.block_size - HAK_BLOCK_OVERHEAD;
}

void *hak_ck_block_resize(void *p, size_t size) {
    ck_block b;
    ck_trailer *t = live_block("realloc", p, &b);
    check_canary("realloc", p, &b, t);
    size_t room = b.block_size - HAK_BLOCK_OVERHEAD;
    HAK_CHECK(size <= room, "an in-place realloc fits the block's room");
    t->requested = (uint32_t)size;
    memset((uint8_t *)p + size, CK_CANARY, room - size);
    return p;
}

/* ---- chunks ---- */

/* A chunk leaving its head (retired) or its class (freed): no slab in it is in use. */
void hak_ck_chunk_idle(const hak_superslab *c) {
    HAK_CHECK(c->magic == HAK_SUPERSLAB_MAGIC, "an idle chunk has the SuperSlab magic");
    HAK_CHECK(atomic_load_explicit(&c->slab_bitmap, memory_order_acquire) == HAK_FULL_BITMAP,
              "an idle chunk's bitmap is full (retired: no claim can land)");
    for (unsigned i = 0; i < HAK_SLABS_PER_CHUNK; i++)
        HAK_CHECK(hak_state_tag(atomic_load_explicit(&c->slabs[i].state, memory_order_acquire)) == HAK_SLAB_FREE,
                  "every slab of an idle chunk is free");
}
