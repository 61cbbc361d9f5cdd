/* superslab.c — SuperSlab chunks: mapped for a class, kept in a reserve when empty, given back to the OS. */
#include <errno.h>

#include "internal.h"
#include "slab_state.h"

/* Empty chunks kept mapped (16 MiB) for reuse by any class: the seed project's
 * churn of thousands of mmap/munmap calls halved its throughput, and with 2 the
 * fragmentation bench still unmapped and re-faulted a class's chunks every round. */
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

static void chunk_init_header(hak_superslab *c, unsigned class_idx) {
    HAK_CHECK(((uintptr_t)c & HAK_CHUNK_MASK) == 0, "a chunk is 2 MiB aligned");
    HAK_CHECK(hak_region_kind((uintptr_t)c) == HAK_REGION_SUPERSLAB, "a chunk's region is marked SuperSlab");
    c->magic = HAK_SUPERSLAB_MAGIC;
    c->next_chunk = NULL;
    c->class_idx = (uint8_t)class_idx;
    for (unsigned i = 0; i < HAK_SLABS_PER_CHUNK; i++) {
        hak_slab *s = &c->slabs[i];
        s->slab_idx = (uint8_t)i;
        s->class_idx = (uint8_t)class_idx;
        s->block_size = 0;
        atomic_store_explicit(&s->state, hak_state_make(HAK_SLAB_FREE, 0, 0), memory_order_relaxed);
        atomic_store_explicit(&s->owner, HAK_OWNER_NONE, memory_order_relaxed);
        atomic_store_explicit(&s->remote_free, 0, memory_order_relaxed);
    }
    atomic_store_explicit(&c->slab_bitmap, 0, memory_order_release);
}

hak_superslab *superslab_allocate(unsigned class_idx, hak_os_failure *why) {
    if (hak_fault_fires(&hak_opt.fault_superslab, &fault_calls, class_idx)) {
        why->reason = HAK_FAIL_INJECTED;
        why->err = ENOMEM;
        why->bytes = HAK_CHUNK_SIZE;
        hak_count(class_idx, HAK_CTR_failures);
        return NULL;
    }
    pthread_mutex_lock(&reserve_lock);
    hak_superslab *c = reserve;
    if (c) {
        reserve = c->next_chunk;
        reserve_count--;
    }
    pthread_mutex_unlock(&reserve_lock);
    if (c) hak_ck_chunk_idle(c); /* a reserve chunk was freed idle and nobody touched it since */
    if (!c) {
        c = hak_os_map(HAK_CHUNK_SIZE, HAK_CHUNK_SIZE, why);
        if (!c) {
            hak_count(class_idx, HAK_CTR_failures);
            return NULL;
        }
        hak_region_set((uintptr_t)c, HAK_REGION_SUPERSLAB);
    }
    chunk_init_header(c, class_idx);
    why->reason = HAK_FAIL_NONE;
    why->err = 0;
    why->bytes = HAK_CHUNK_SIZE;
    hak_count(class_idx, HAK_CTR_chunks_new);
    return c;
}

size_t superslab_reserve_flush(void) {
    pthread_mutex_lock(&reserve_lock);
    hak_superslab *c = reserve;
    reserve = NULL;
    size_t n = reserve_count;
    reserve_count = 0;
    pthread_mutex_unlock(&reserve_lock);
    while (c) {
        hak_superslab *next = c->next_chunk;
        hak_region_set((uintptr_t)c, HAK_REGION_NONE);
        c->magic = 0;
        hak_os_unmap(c, HAK_CHUNK_SIZE);
        c = next;
    }
    return n;
}

/* The chunk is retired (unlinked, no claimer can reach it). */
void superslab_free(hak_superslab *chunk) {
    hak_ck_chunk_idle(chunk);
    hak_count(chunk->class_idx, HAK_CTR_chunks_freed);
    pthread_mutex_lock(&reserve_lock);
    if (reserve_count < HAK_CHUNK_RESERVE) {
        chunk->next_chunk = reserve;
        reserve = chunk;
        reserve_count++;
        chunk = NULL;
    }
    pthread_mutex_unlock(&reserve_lock);
    if (chunk) {
        hak_region_set((uintptr_t)chunk, HAK_REGION_NONE);
        chunk->magic = 0;
        hak_os_unmap(chunk, HAK_CHUNK_SIZE);
    }
}
