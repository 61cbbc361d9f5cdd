/* census.c — where the memory is at a moment: per class what is committed, what is live, what is free and in whose heap. */
#include "internal.h"
#include "slab_state.h"
#include "trace.h"

/*
 * Taken when an OOM is traced, so the report can say where a capped process's
 * memory went. Each class's chain is walked under its head lock (no chunk
 * leaves meanwhile); a slab's counts belong to its holder and are read as they
 * are (relaxed), so a class's figures are right to within the blocks that
 * threads allocate or free during the walk — within one slab at a quiet OOM.
 * Heaps are never unmapped, so a slab's owner can be read for its tid.
 */

typedef struct hak_class_census {
    uint8_t class_idx;
    uint64_t committed;   /* chunk headers and committed slab pages of the class's chain */
    uint64_t live;        /* bytes in blocks the program holds */
    uint64_t free;        /* committed bytes not in live blocks: free blocks, free slabs' pages */
    int32_t holder_tid;   /* the thread whose heap holds the most of `free` (0: no heap's) */
    uint64_t holder_free;
} hak_class_census;

/* Blocks handed out and not on the remote stack: what the program holds. */
static uint64_t slab_live_blocks(hak_slab *s) {
    uint64_t used = __atomic_load_n(&s->used, __ATOMIC_RELAXED);
    uint64_t back = atomic_load_explicit(&s->remote_free, memory_order_relaxed) >> HAK_REMOTE_LEN_SHIFT;
    return used > back ? used - back : 0;
}

struct holder {
    const hak_heap *heap; /* NULL: no heap holds those slabs (let go, or between owners) */
    uint64_t free;
    bool taken;
};

static void census_class(hak_superslab_head *head, hak_class_census *out) {
    uint32_t bs = hak_class_size[head->class_idx];
    struct holder top[4] = {{0}}; /* the first heaps seen holding free blocks; enough to name the largest */
    pthread_mutex_lock(&head->lock);
    for (hak_superslab *c = atomic_load_explicit(&head->chunks, memory_order_relaxed); c;
         c = atomic_load_explicit(&c->next_chunk, memory_order_relaxed)) {
        uint32_t committed = atomic_load_explicit(&c->committed, memory_order_relaxed);
        uint32_t in_use = atomic_load_explicit(&c->slab_bitmap, memory_order_acquire);
        out->committed += HAK_CHUNK_HEADER_BYTES;
        unsigned slabs = 1u << hak_class_span_shift[head->class_idx];
        for (unsigned i = 0; i < HAK_SLABS_PER_CHUNK; i += slabs) {
            uint32_t span = hak_span_mask(i, slabs);
            if (!(committed & span)) continue;
            uint64_t pages = hak_slabs_pages_bytes(committed & span);
            out->committed += pages;
            hak_slab *s = &c->slabs[i];
            if (!(in_use & (1u << i)) || !hak_state_live(atomic_load_explicit(&s->state, memory_order_acquire))) {
                out->free += pages; /* free slabs whose pages stay committed */
                continue;
            }
            uint64_t live = slab_live_blocks(s) * bs;
            uint64_t free = pages > live ? pages - live : 0;
            out->live += live;
            out->free += free;
            const hak_heap *owner = atomic_load_explicit(&s->owner, memory_order_relaxed);
            for (unsigned k = 0; k < 4; k++) {
                if (!top[k].taken || top[k].heap == owner) {
                    top[k] = (struct holder){owner, top[k].free + free, true};
                    break;
                }
            }
        }
    }
    pthread_mutex_unlock(&head->lock);
    for (unsigned k = 0; k < 4; k++) {
        if (top[k].free > out->holder_free) {
            out->holder_free = top[k].free;
            out->holder_tid = top[k].heap ? top[k].heap->tid : 0;
        }
    }
}

/* Fills classes[] (HAK_NUM_CLASSES entries) with the program's classes that commit memory; how many. */
static unsigned census_take(hak_class_census *classes) {
    unsigned n = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_class_census cc = {.class_idx = (uint8_t)c};
        census_class(hak_head(HAK_ARENA_PROGRAM, c), &cc);
        if (cc.committed) classes[n++] = cc;
    }
    return n;
}

void hak_census_trace(uint64_t seq) {
    if (!HAK_TRACE_ON(oom_memory) && !HAK_TRACE_ON(oom_class_memory)) return;
    hak_class_census classes[HAK_NUM_CLASSES];
    unsigned n = census_take(classes); /* the head locks are released again: the tracer may allocate */
    HAK_TRACE(oom_memory, seq, hak_opt.max_memory, hak_os_committed_bytes(), large_committed_bytes(),
              hak_os_tracer_committed_bytes(), (uint8_t)n);
    for (unsigned i = 0; i < n; i++) {
        const hak_class_census *c = &classes[i];
        HAK_TRACE(oom_class_memory, seq, c->class_idx, hak_class_size[c->class_idx], c->committed, c->live, c->free,
                  c->holder_tid, c->holder_free);
    }
}
