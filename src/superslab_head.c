/* superslab_head.c — per-class chains of chunks: expansion and retirement of empty chunks. */
#include "internal.h"

#define HEAD_INIT(a, i) [i] = {.lock = PTHREAD_MUTEX_INITIALIZER, .class_idx = (i), .arena = (a)}
#define HEAD_INIT4(a, i) HEAD_INIT(a, i), HEAD_INIT(a, i + 1), HEAD_INIT(a, i + 2), HEAD_INIT(a, i + 3)
#define ARENA_HEADS(a)                                                                                          \
    [a] = {HEAD_INIT4(a, 0),  HEAD_INIT4(a, 4),  HEAD_INIT4(a, 8),  HEAD_INIT4(a, 12), HEAD_INIT4(a, 16),      \
           HEAD_INIT4(a, 20), HEAD_INIT4(a, 24), HEAD_INIT4(a, 28), HEAD_INIT4(a, 32), HEAD_INIT4(a, 36),      \
           HEAD_INIT4(a, 40), HEAD_INIT4(a, 44), HEAD_INIT4(a, 48), HEAD_INIT4(a, 52), HEAD_INIT4(a, 56),      \
           HEAD_INIT(a, 60)}
hak_superslab_head hak_heads[HAK_ARENAS][HAK_NUM_CLASSES] = {
    ARENA_HEADS(HAK_ARENA_PROGRAM),
#if HAK_ARENAS > 1
    ARENA_HEADS(HAK_ARENA_TRACER),
#endif
};
_Static_assert(HAK_NUM_CLASSES == 61, "HEAD_INIT covers every class");

/* Retired chunks go to the reserve or the OS once no claimer can hold a
 * pointer to them. A claimer raises `claimers` before loading current_chunk
 * (both seq_cst) and a retired chunk is never current again, so reading 0
 * here, after the chunk stopped being current, proves no claimer still has
 * it; an adopter walking the chain (slab_adopt) is a claimer for the whole
 * walk, and a chunk it stands on when retired still leads, through the retired
 * list, to chunks that are alive. A remote free touches a slab only while its
 * block is live (remote_free.c), so it cannot outlast the chunk either.
 * Head lock held. */
static void release_retired_locked(hak_superslab_head *head) {
    if (!head->retired) return;
    if (atomic_load_explicit(&head->claimers, memory_order_seq_cst) != 0) return;
    while (head->retired) {
        hak_superslab *c = head->retired;
        head->retired = atomic_load_explicit(&c->next_chunk, memory_order_relaxed);
        superslab_free(c);
    }
}

static hak_superslab *chain_next(hak_superslab *c) {
    return atomic_load_explicit(&c->next_chunk, memory_order_acquire);
}

/*
 * The only place current_chunk changes and the only caller of
 * superslab_allocate. One thread expands a head at a time (the lock); a thread
 * that finds current_chunk already moved past the chunk it saw full reports
 * LOST_RACE and retries its claim on the new chunk, so losing the race never
 * turns into an OOM.
 */
void expand_superslab_head(hak_superslab_head *head, hak_superslab *observed, hak_expansion *out) {
    out->waited = false;
    out->failure.reason = HAK_FAIL_NONE;
    out->failure.err = 0;
    out->failure.bytes = 0;
    if (pthread_mutex_trylock(&head->lock) != 0) {
        out->waited = true;
        pthread_mutex_lock(&head->lock);
    }
    hak_superslab *cur = atomic_load_explicit(&head->current_chunk, memory_order_relaxed);
    if (cur != observed) {
        out->outcome = HAK_EXPAND_LOST_RACE;
    } else {
        hak_superslab *found = NULL;
        for (hak_superslab *c = atomic_load_explicit(&head->chunks, memory_order_relaxed); c; c = chain_next(c)) {
            if (c != cur && atomic_load_explicit(&c->slab_bitmap, memory_order_acquire) != HAK_FULL_BITMAP) {
                found = c;
                break;
            }
        }
        if (found) {
            out->outcome = HAK_EXPAND_REUSED;
        } else {
            release_retired_locked(head); /* their bytes count against the cap */
            found = superslab_allocate(head->class_idx, head->arena, &out->failure);
            if (found) {
                HAK_CHECK(found->class_idx == head->class_idx &&
                              atomic_load_explicit(&found->slab_bitmap, memory_order_relaxed) == 0,
                          "a new chunk is of its head's class, every slab free");
                atomic_store_explicit(&found->next_chunk, atomic_load_explicit(&head->chunks, memory_order_relaxed),
                                      memory_order_relaxed);
                atomic_store_explicit(&head->chunks, found, memory_order_release);
                head->chunk_count++;
                /* A reserve chunk whose pages could not be given back brings committed free slabs. */
                atomic_fetch_add_explicit(&head->free_committed,
                                          (uint32_t)__builtin_popcount(atomic_load_explicit(
                                              &found->committed, memory_order_relaxed)),
                                          memory_order_relaxed);
                out->outcome = HAK_EXPAND_NEW;
            } else {
                out->outcome = HAK_EXPAND_FAILED;
            }
        }
        if (found) {
            atomic_store_explicit(&head->current_chunk, found, memory_order_seq_cst);
            hak_count(head->arena, head->class_idx, HAK_CTR_expansions);
        }
        release_retired_locked(head);
    }
    out->chunk = atomic_load_explicit(&head->current_chunk, memory_order_relaxed);
    out->chunk_count = head->chunk_count;
    pthread_mutex_unlock(&head->lock);
}

/* Takes the chunk at *link out of the chain if no slab of it is in use: its
 * bitmap goes from 0 to full in one CAS, which no claim can then undo, and it
 * waits on the retired list for the claimers to leave. Head lock held. */
static bool retire_if_idle_locked(hak_superslab_head *head, _Atomic(hak_superslab *) *link) {
    hak_superslab *chunk = atomic_load_explicit(link, memory_order_relaxed);
    uint32_t expected = 0;
    if (!atomic_compare_exchange_strong_explicit(&chunk->slab_bitmap, &expected, HAK_FULL_BITMAP,
                                                 memory_order_acq_rel, memory_order_relaxed))
        return false;
    hak_ck_chunk_idle(chunk); /* retired: every slab back, no claim can land */
    atomic_store_explicit(link, chain_next(chunk), memory_order_release);
    head->chunk_count--;
    /* Its free slabs leave the class with it (superslab_free gives their pages back). */
    atomic_fetch_sub_explicit(&head->free_committed,
                              (uint32_t)__builtin_popcount(atomic_load_explicit(&chunk->committed, memory_order_relaxed)),
                              memory_order_relaxed);
    atomic_store_explicit(&chunk->next_chunk, head->retired, memory_order_release);
    head->retired = chunk;
    return true;
}

/* The link in the chain that points at `chunk`, or NULL when it is not chained. Head lock held. */
static _Atomic(hak_superslab *) *chain_link_locked(hak_superslab_head *head, hak_superslab *chunk) {
    _Atomic(hak_superslab *) *link = &head->chunks;
    for (hak_superslab *c; (c = atomic_load_explicit(link, memory_order_relaxed)) != NULL; link = &c->next_chunk)
        if (c == chunk) return link;
    return NULL;
}

/*
 * A slab release took `chunk`'s bitmap to 0. The current chunk stays (it is
 * where the next claim lands); any other leaves the chain — but a medium
 * class's, which stay until the purge is due: a span holds a few blocks, so
 * a program that frees a dozen 1 MiB blocks and allocates them again empties
 * a dozen chunks, and the reserve's 8 would have sent the rest to the OS and
 * back. The chunk is found by pointer comparison first: it may already be gone.
 */
void superslab_head_chunk_emptied(hak_superslab_head *head, hak_superslab *chunk) {
    if (hak_class_span_shift[head->class_idx]) return; /* superslab_head_purge_later */
    pthread_mutex_lock(&head->lock);
    _Atomic(hak_superslab *) *link = chain_link_locked(head, chunk);
    if (link && chunk != atomic_load_explicit(&head->current_chunk, memory_order_relaxed))
        retire_if_idle_locked(head, link);
    release_retired_locked(head);
    pthread_mutex_unlock(&head->lock);
}

/* Free slabs give their committed pages back; under a refusal, chunks left
 * with no slab in use — current chunks too, kept otherwise for the next
 * claim — are memory that remains as well. */
size_t superslab_heads_give_back(bool retire_idle) {
    size_t n = 0;
    for (unsigned i = 0; i < HAK_ARENAS * HAK_NUM_CLASSES; i++) {
        hak_superslab_head *head = hak_head_at(i);
        pthread_mutex_lock(&head->lock);
        hak_superslab *cur = atomic_load_explicit(&head->current_chunk, memory_order_relaxed);
        _Atomic(hak_superslab *) *link = &head->chunks;
        for (hak_superslab *c; (c = atomic_load_explicit(link, memory_order_relaxed)) != NULL;) {
            uint32_t back = superslab_decommit_free(c, UINT32_MAX);
            atomic_fetch_sub_explicit(&head->free_committed, back, memory_order_relaxed);
            n += back;
            if (retire_idle && retire_if_idle_locked(head, link)) {
                if (c == cur) atomic_store_explicit(&head->current_chunk, NULL, memory_order_seq_cst);
                n++;
            } else {
                link = &c->next_chunk;
            }
        }
        release_retired_locked(head);
        pthread_mutex_unlock(&head->lock);
    }
    return n;
}

/* Free slabs whose pages stay committed beyond the class's few: given back
 * only once they have stayed so for a while, because a program that frees a
 * heap of blocks usually builds the next one straight away (the fragmentation
 * bench, any round-based server), and giving the pages back at once made it
 * fault every one of them in again (1.7x slower). */
void superslab_head_purge_later(hak_superslab_head *head) {
    uint64_t now = hak_os_now_ns();
    uint64_t due = atomic_load_explicit(&head->purge_due_ns, memory_order_relaxed);
    if (due == 0) {
        atomic_compare_exchange_strong_explicit(&head->purge_due_ns, &due, now + hak_purge_delay_ns(),
                                                memory_order_relaxed, memory_order_relaxed);
        return;
    }
    if (now < due || pthread_mutex_trylock(&head->lock) != 0) return;
    atomic_store_explicit(&head->purge_due_ns, 0, memory_order_relaxed);
    for (hak_superslab *c = atomic_load_explicit(&head->chunks, memory_order_relaxed); c; c = chain_next(c)) {
        uint32_t fc = atomic_load_explicit(&head->free_committed, memory_order_relaxed);
        uint32_t warm = hak_class_warm_slabs(head->class_idx);
        if (fc <= warm) break;
        uint32_t back = superslab_decommit_free(c, fc - warm);
        atomic_fetch_sub_explicit(&head->free_committed, back, memory_order_relaxed);
    }
    /* A chunk the purge left with no slab in use waits, as after a release, for its last slab's release. */
    if (hak_class_span_shift[head->class_idx]) {
        /* The medium classes' empty chunks, kept since they emptied, leave now (superslab_head_chunk_emptied). */
        hak_superslab *cur = atomic_load_explicit(&head->current_chunk, memory_order_relaxed);
        _Atomic(hak_superslab *) *link = &head->chunks;
        for (hak_superslab *c; (c = atomic_load_explicit(link, memory_order_relaxed)) != NULL;)
            if (c == cur || !retire_if_idle_locked(head, link)) link = &c->next_chunk;
        release_retired_locked(head);
    }
    pthread_mutex_unlock(&head->lock);
}

void superslab_heads_lock_all(void) {
    for (unsigned i = 0; i < HAK_ARENAS * HAK_NUM_CLASSES; i++) pthread_mutex_lock(&hak_head_at(i)->lock);
}

void superslab_heads_unlock_all(void) {
    for (unsigned i = HAK_ARENAS * HAK_NUM_CLASSES; i-- > 0;) pthread_mutex_unlock(&hak_head_at(i)->lock);
}
