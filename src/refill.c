/* refill.c — superslab_refill: the one procedure that gives a thread heap a new slab, every decision traced. */
#include "internal.h"
#include "slab_state.h"
#include "trace.h"

/* Step 2 (or the last try after a refusal): a listed slab of the class, traced whether one was found or not. */
static hak_slab *refill_adopt(hak_heap *heap, unsigned class_idx, uint64_t seq, enum hak_trace_adopt_stage stage) {
    hak_slab *s = slab_adopt(heap, class_idx);
    HAK_TRACE(slab_adopt, (uint8_t)class_idx, hak_class_size[class_idx], seq, (int)stage,
              s ? HAK_ADOPT_ADOPTED : HAK_ADOPT_NONE, s);
    if (!s) return NULL;
    HAK_CHECK(atomic_load_explicit(&s->owner, memory_order_relaxed) == heap &&
                  hak_state_live(atomic_load_explicit(&s->state, memory_order_relaxed)),
              "an adopted slab is owned by the adopter");
    hak_count(heap->arena, class_idx, HAK_CTR_adopted);
    heap->last_chunk[class_idx] = hak_slab_chunk(s);
    HAK_TRACE(refill_exit, (uint8_t)class_idx, hak_class_size[class_idx], seq, s, HAK_REFILL_ADOPTED);
    return s;
}

/*
 * 1. refill entry
 * 2. collect: adopt a listed slab of the class — one let go with blocks to
 *    hand out (by an exited thread, or by a free that had no use for it) —
 *    before claiming a new one; the mid-simple path skips this
 * 3. bitmap check on the head's current chunk (claim by CAS, committing the
 *    slab's pages): claimed -> exit; cap_refused (the cap would not take its
 *    pages) -> 6, traced as a superslab_alloc_fail with reason cap
 * 4. mid-simple choice (blocks >= 128 B: the seed's classes >= 4), decided at entry and reported here,
 *    after the first check that did not claim: the simple path skipped 2
 * 5. chunk expansion: reused / new / lost race -> back to 3; failed -> 6
 * 6. superslab_allocate failure (os / cap / injected), or the cap refusing a
 *    slab's pages: for os and cap, memory nobody uses (of every class) is
 *    given back (reclaim.c) and 3 runs again, and again while other threads'
 *    reclaims end meanwhile (each try traced as reclaim_retry); then listed
 *    slabs are tried once more
 *    (the only step 2 of the simple path), so no OOM is reported while one
 *    remains
 * 7. refill exit: a slab, or NULL (the caller reports the OOM)
 * No path reaches superslab_allocate except through expand_superslab_head,
 * and no path returns NULL except after a refusal.
 * Events are emitted with no lock held: the tracer may allocate.
 */
hak_slab *superslab_refill(hak_heap *heap, unsigned class_idx) {
    hak_superslab_head *head = hak_head(heap->arena, class_idx);
    uint64_t seq = ++heap->refill_seq;
    uint8_t cls = (uint8_t)class_idx;
    uint32_t bs = hak_class_size[class_idx];
    hak_count(heap->arena, class_idx, HAK_CTR_refills);
    HAK_TRACE(refill_enter, cls, bs, seq, heap->last_chunk[class_idx],
              atomic_load_explicit(&head->current_chunk, memory_order_relaxed));

    bool mid = bs >= HAK_MID_SIMPLE_MIN_BLOCK;
    bool simple = mid && hak_opt.mid_refill_simple;
    if (!simple) {
        hak_slab *s = refill_adopt(heap, class_idx, seq, HAK_ADOPT_STAGE_BEFORE_CLAIM);
        if (s) return s;
    }
    bool chose = false;
    hak_reclaim_ticket retry = {0};
    for (;;) {
        hak_bitmap_check check;
        superslab_claim_slab(head, &check);
        HAK_TRACE(bitmap_check, cls, bs, seq, check.chunk, check.bitmap, check.full_mask, check.capacity,
                  check.active_slabs, (int)check.outcome);
        if (check.outcome == HAK_CLAIM_CLAIMED) {
            slab_init(check.slab, class_idx, heap);
            HAK_CHECK(check.slab->capacity > 0 && check.slab->block_size == bs,
                      "a claimed slab holds blocks of its class");
            heap->last_chunk[class_idx] = check.chunk;
            HAK_TRACE(refill_exit, cls, bs, seq, check.slab, HAK_REFILL_CLAIMED);
            return check.slab;
        }
        if (check.outcome == HAK_CLAIM_LOST_RACE) continue;

        if (!chose) {
            chose = true;
            if (mid) {
                HAK_TRACE(mid_simple_choice, cls, bs, seq, hak_opt.mid_refill_simple,
                          simple ? HAK_MID_PATH_SIMPLE : HAK_MID_PATH_MULTI_STAGE,
                          simple ? HAK_MID_WHY_OPTION_ON : HAK_MID_WHY_OPTION_OFF);
            }
        }

        hak_os_failure refused = check.failure; /* CAP_REFUSED: the pages of a free slab */
        if (check.outcome == HAK_CLAIM_FULL) {
            hak_expansion exp;
            expand_superslab_head(head, check.chunk, &exp);
            HAK_TRACE(chunk_expand, cls, bs, seq, (int)exp.outcome, exp.chunk, exp.chunk_count, exp.waited);
            if (exp.outcome != HAK_EXPAND_FAILED) continue;
            refused = exp.failure;
        }
        /* The one failure event, right after the decision it ends: a failed expansion, or a claim whose
         * slab the cap would not commit (expanding would not help: a new chunk's slabs need committing too). */
        HAK_TRACE_STACK(seq, 0);
        HAK_TRACE(superslab_alloc_fail, cls, bs, seq, refused.bytes, refused.err, (int)refused.reason);
        /* Tried again even when nothing came back here: a refusal is of its
         * moment, and another thread's reclaim may have made room since. */
        if (refused.reason != HAK_FAIL_INJECTED) {
            bool again = hak_reclaim_retry(heap, &retry);
            HAK_TRACE(reclaim_retry, cls, bs, seq, retry.tries, retry.outcome, retry.given_back, retry.stolen);
            if (again) continue;
        }
        /* What others let go since entry (and, on the simple path, at all) is memory that remains. */
        hak_slab *s = refill_adopt(heap, class_idx, seq, HAK_ADOPT_STAGE_AFTER_REFUSAL);
        if (s) return s;
        HAK_TRACE(refill_exit, cls, bs, seq, NULL, HAK_REFILL_NO_SLAB);
        return NULL;
    }
}
