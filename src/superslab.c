/* superslab.c — SuperSlab chunks: reserved for a class, kept in a reserve when empty, given back to the OS. */
#include <errno.h>

#include "internal.h"
#include "slab_state.h"

/* Empty chunks kept mapped (16 MiB of address space, their slabs' pages given
 * back once idle for the purge delay) for reuse by any class: the seed project's churn of thousands of
 * mmap/munmap calls halved its throughput, and with 2 the fragmentation bench
 * still unmapped and re-mapped a class's chunks every round. */
#define HAK_CHUNK_RESERVE 8

static pthread_mutex_t reserve_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_superslab *reserve;   /* guarded by reserve_lock, linked by next_chunk */
static size_t reserve_count;
static _Atomic uint64_t fault_calls;

size_t superslab_reserve_count(void) {
    pthread_mutex_lock(&reserve_lock);
    size_t n = reserve_count;
    pthread_mutex_unlock(&reserve_lock);
    return n;
}

void superslab_reserve_lock(void) {
    pthread_mutex_lock(&reserve_lock);
}

void superslab_reserve_unlock(void) {
    pthread_mutex_unlock(&reserve_lock);
}

/* The header and the committed slabs. */
static size_t chunk_committed_bytes(const hak_superslab *c) {
    uint32_t m = atomic_load_explicit(&c->committed, memory_order_relaxed);
    size_t n = HAK_CHUNK_HEADER_BYTES + (size_t)__builtin_popcount(m) * HAK_SLAB_SIZE;
    return (m & 1u) ? n - HAK_SLAB0_DATA_OFFSET : n;
}

/* The committed slabs keep their bit; a reserve chunk whose pages could not be
 * given back brings them to its next class. */
static void chunk_init_header(hak_superslab *c, unsigned class_idx, unsigned arena) {
    HAK_CHECK(((uintptr_t)c & HAK_CHUNK_MASK) == 0, "a chunk is 2 MiB aligned");
    HAK_CHECK(hak_region_kind((uintptr_t)c) == HAK_REGION_SUPERSLAB, "a chunk's region is marked SuperSlab");
    c->magic = HAK_SUPERSLAB_MAGIC;
    atomic_store_explicit(&c->next_chunk, NULL, memory_order_relaxed);
    c->class_idx = (uint8_t)class_idx;
    c->arena = (uint8_t)arena;
    for (unsigned i = 0; i < HAK_SLABS_PER_CHUNK; i++) {
        hak_slab *s = &c->slabs[i];
        s->slab_idx = (uint8_t)i;
        s->class_idx = (uint8_t)class_idx;
        s->block_size = 0;
        atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_FREE, 0), memory_order_relaxed);
        atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_relaxed);
        atomic_store_explicit(&s->remote_free, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&c->listed, 0, memory_order_relaxed);
    atomic_store_explicit(&c->slab_bitmap, 0, memory_order_release);
}

/* The reserve is the program's: a tracer's chunk in it would carry the tracer's charge into a program class. */
hak_superslab *superslab_allocate(unsigned class_idx, unsigned arena, hak_os_failure *why) {
    bool program = arena == HAK_ARENA_PROGRAM;
    if (program && hak_fault_fires(&hak_opt.fault_superslab, &fault_calls, class_idx)) {
        why->reason = HAK_FAIL_INJECTED;
        why->err = ENOMEM;
        why->bytes = HAK_CHUNK_SIZE;
        hak_count(arena, class_idx, HAK_CTR_failures);
        return NULL;
    }
    hak_superslab *c = NULL;
    if (program) {
        pthread_mutex_lock(&reserve_lock);
        c = reserve;
        if (c) {
            reserve = atomic_load_explicit(&c->next_chunk, memory_order_relaxed);
            reserve_count--;
        }
        pthread_mutex_unlock(&reserve_lock);
    }
    if (c) hak_ck_chunk_idle(c); /* a reserve chunk was freed idle and nobody touched it since */
    if (!c) {
        /* Address space for the whole chunk; only the header is touched now. */
        if (!hak_os_commit(arena, HAK_CHUNK_HEADER_BYTES, why)) {
            hak_count(arena, class_idx, HAK_CTR_failures);
            return NULL;
        }
        c = hak_os_reserve_chunk(arena, why);
        if (!c) {
            hak_os_uncommit(arena, HAK_CHUNK_HEADER_BYTES);
            hak_count(arena, class_idx, HAK_CTR_failures);
            return NULL;
        }
        atomic_store_explicit(&c->committed, 0, memory_order_relaxed);
        hak_region_set((uintptr_t)c, HAK_REGION_SUPERSLAB);
    }
    chunk_init_header(c, class_idx, arena);
    why->reason = HAK_FAIL_NONE;
    why->err = 0;
    why->bytes = HAK_CHUNK_SIZE;
    hak_count(arena, class_idx, HAK_CTR_chunks_new);
    return c;
}

static void chunk_unmap(hak_superslab *c) {
    size_t committed = chunk_committed_bytes(c);
    hak_region_set((uintptr_t)c, HAK_REGION_NONE);
    c->magic = 0;
    hak_os_unmap_part(c->arena, c, HAK_CHUNK_SIZE, committed);
}

size_t superslab_reserve_flush(void) {
    pthread_mutex_lock(&reserve_lock);
    hak_superslab *c = reserve;
    reserve = NULL;
    size_t n = reserve_count;
    reserve_count = 0;
    pthread_mutex_unlock(&reserve_lock);
    while (c) {
        hak_superslab *next = atomic_load_explicit(&c->next_chunk, memory_order_relaxed);
        chunk_unmap(c);
        c = next;
    }
    return n;
}

/* The slabs' pages of reserve chunks idle for the purge delay (all: every
 * one) go back to the OS; the address space and the header stay. Reserve lock held. */
static void reserve_purge_locked(uint64_t now, bool all) {
    for (hak_superslab *c = reserve; c; c = atomic_load_explicit(&c->next_chunk, memory_order_relaxed)) {
        size_t slab_bytes = chunk_committed_bytes(c) - HAK_CHUNK_HEADER_BYTES;
        if (!slab_bytes || (!all && now - c->idle_since_ns < hak_purge_delay_ns())) continue;
        if (hak_os_decommit(HAK_ARENA_PROGRAM, hak_slab_pages(c, 0), HAK_CHUNK_SIZE - HAK_SLAB0_DATA_OFFSET, slab_bytes))
            atomic_store_explicit(&c->committed, 0, memory_order_relaxed);
    }
}

void superslab_reserve_trim(void) {
    pthread_mutex_lock(&reserve_lock);
    reserve_purge_locked(0, true);
    pthread_mutex_unlock(&reserve_lock);
}

/* The chunk is retired (unlinked, no claimer can reach it). In the reserve it
 * keeps its address space and header, and its slabs' pages for a while: a
 * program that empties a class's chunks often fills them again at once. */
void superslab_free(hak_superslab *chunk) {
    hak_ck_chunk_idle(chunk);
    hak_count(chunk->arena, chunk->class_idx, HAK_CTR_chunks_freed);
    uint64_t now = hak_os_now_ns();
    chunk->idle_since_ns = now;
    pthread_mutex_lock(&reserve_lock);
    if (reserve_count < HAK_CHUNK_RESERVE && chunk->arena == HAK_ARENA_PROGRAM) {
        atomic_store_explicit(&chunk->next_chunk, reserve, memory_order_relaxed);
        reserve = chunk;
        reserve_count++;
        chunk = NULL;
    }
    reserve_purge_locked(now, false);
    pthread_mutex_unlock(&reserve_lock);
    if (chunk) chunk_unmap(chunk);
}

bool superslab_decommit_slab(hak_superslab *c, unsigned idx) {
    size_t bytes = hak_slab_pages_bytes(idx);
    if (!hak_os_decommit(c->arena, hak_slab_pages(c, idx), bytes, bytes)) return false;
    atomic_fetch_and_explicit(&c->committed, ~(1u << idx), memory_order_relaxed);
    hak_count(c->arena, c->class_idx, HAK_CTR_decommitted);
    return true;
}

/* The free spans holding free committed slabs, highest first, until they hold `limit` of them: the spans'
 * bits (whole spans, so that the bitmap stays made of whole spans) and, in *pages, their committed slabs. */
static uint32_t spans_to_purge(uint32_t bitmap, uint32_t committed, unsigned slabs, uint32_t limit,
                               uint32_t *pages) {
    uint32_t spans = 0, count = 0;
    *pages = 0;
    for (unsigned i = HAK_SLABS_PER_CHUNK; i >= slabs && count < limit; i -= slabs) {
        uint32_t span = hak_span_mask(i - slabs, slabs);
        uint32_t warm = committed & span;
        if ((bitmap & span) || !warm) continue;
        for (uint32_t k = (uint32_t)__builtin_popcount(warm); k > limit - count; k--) warm &= warm - 1;
        spans |= span;
        *pages |= warm;
        count += (uint32_t)__builtin_popcount(warm);
    }
    return spans;
}

/* Each free span with committed slabs is claimed in the bitmap for the
 * moment, so no claim can race with giving its pages back. */
uint32_t superslab_decommit_free(hak_superslab *c, uint32_t limit) {
    uint32_t n = 0;
    unsigned slabs = 1u << hak_class_span_shift[c->class_idx];
    uint32_t bm = atomic_load_explicit(&c->slab_bitmap, memory_order_acquire);
    for (;;) {
        uint32_t pages;
        uint32_t take = spans_to_purge(bm, atomic_load_explicit(&c->committed, memory_order_relaxed), slabs, limit,
                                       &pages);
        if (!take) return n;
        if (atomic_compare_exchange_weak_explicit(&c->slab_bitmap, &bm, bm | take, memory_order_acq_rel,
                                                  memory_order_acquire)) {
            for (uint32_t m = pages; m; m &= m - 1) n += superslab_decommit_slab(c, (unsigned)__builtin_ctz(m));
            atomic_fetch_and_explicit(&c->slab_bitmap, ~take, memory_order_acq_rel);
            return n;
        }
    }
}
