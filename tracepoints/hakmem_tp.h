/* hakmem_tp.h — the one event catalogue (LTTng-UST provider `hakmem`): every refill decision and failure. */

/*
 * Read three ways:
 *  - the value lists and HAKMEM_TP_EVENTS, once (internal.h stops there, with
 *    HAKMEM_TP_VALUES_ONLY): the allocator's outcome enums come from here;
 *  - an empty inline function per event (hak_trace_nop_<event>), once: what a
 *    call site becomes when its event is compiled out, still type-checked;
 *  - in trace builds (HAKMEM_TRACING=1), as an LTTng-UST provider header,
 *    re-read by <lttng/tracepoint-event.h>; events outside the build's
 *    selection (HAKMEM_TRACE_EVENT_<event>=0) are not defined at all.
 * analysis/hakmem/catalogue.py mirrors this file; tests/trace checks the two
 * agree. Rules (after QEMU's trace-events): fixed-width integers, pointers as
 * hex integers, outcomes as enums, no floats; every refill event carries the
 * per-thread refill sequence number `seq` that ties one refill together
 * (refills count from 1: seq 0 on superslab_alloc_fail and oom means no refill
 * ran, the thread heap's own pages were refused). Stacks (call_stack, heap_sample) are return addresses,
 * innermost first, hakmem's own frames removed: frames[0] is in the code that called malloc (or calloc, ...);
 * the state dump of lttng-ust (lttng_ust_statedump:*, lttng_ust_dl:*) maps them to binaries.
 */

#ifndef HAKMEM_TP_CATALOGUE_H
#define HAKMEM_TP_CATALOGUE_H

#include <stdint.h>

/* Outcome enumerations: X(C identifier suffix, trace label, value). */
#define HAKMEM_TP_CLAIM_OUTCOME(X) \
    X(CLAIMED, claimed, 0) X(FULL, full, 1) X(LOST_RACE, lost_race, 2) X(CAP_REFUSED, cap_refused, 3)
#define HAKMEM_TP_MID_PATH(X) X(MULTI_STAGE, multi_stage, 0) X(SIMPLE, simple, 1)
#define HAKMEM_TP_MID_WHY(X) X(OPTION_OFF, option_off, 0) X(OPTION_ON, option_on, 1)
#define HAKMEM_TP_EXPAND_OUTCOME(X) \
    X(REUSED, reused_chained_chunk, 0) X(NEW, new_chunk, 1) X(LOST_RACE, lost_race, 2) X(FAILED, failed, 3)
#define HAKMEM_TP_FAIL_REASON(X) X(NONE, none, 0) X(OS, os, 1) X(CAP, cap, 2) X(INJECTED, injected, 3)
#define HAKMEM_TP_REFILL_RESULT(X) X(CLAIMED, claimed, 0) X(ADOPTED, adopted, 1) X(NO_SLAB, null, 2)
#define HAKMEM_TP_ADOPT_STAGE(X) X(BEFORE_CLAIM, before_claim, 0) X(AFTER_REFUSAL, after_refusal, 1)
#define HAKMEM_TP_ADOPT_OUTCOME(X) X(ADOPTED, adopted, 0) X(NONE, none, 1)
#define HAKMEM_TP_RECLAIM_OUTCOME(X) \
    X(RECLAIMED, reclaimed_retry, 0) X(OTHERS_RECLAIMED, others_reclaimed_retry, 1) X(GAVE_UP, gave_up, 2)
/* The allocation call an OOM ends: what the report prints, with its arguments. */
#define HAKMEM_TP_ALLOC_CALL(X)                                                                           \
    X(MALLOC, malloc, 0) X(CALLOC, calloc, 1) X(REALLOC, realloc, 2) X(REALLOCARRAY, reallocarray, 3)     \
    X(POSIX_MEMALIGN, posix_memalign, 4) X(ALIGNED_ALLOC, aligned_alloc, 5) X(MEMALIGN, memalign, 6)    \
    X(VALLOC, valloc, 7) X(PVALLOC, pvalloc, 8)

/* The class index the `oom` event reports for the large path. */
#define HAKMEM_TP_LARGE_CLASS 255

/*
 * The events: EVENT(name, loglevel, (argument types and names), (fields)).
 * Decisions at DEBUG, failures at WARNING / ERR, so that
 * `--loglevel=TRACE_WARNING` records failures only.
 */
#define HAKMEM_TP_EVENTS(EVENT)                                                                                     \
    EVENT(refill_enter, DEBUG,                                                                                     \
          (uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, const void *, thread_chunk, const void *,      \
           current_chunk),                                                                                         \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer_hex(uintptr_t, thread_chunk, (uintptr_t)thread_chunk)                            \
           lttng_ust_field_integer_hex(uintptr_t, current_chunk, (uintptr_t)current_chunk)))                        \
    EVENT(slab_adopt, DEBUG,                                                                                       \
          (uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, int, stage, int, outcome, const void *, slab), \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_enum(hakmem, adopt_stage, int, stage, stage)                                             \
           lttng_ust_field_enum(hakmem, adopt_outcome, int, outcome, outcome)                                       \
           lttng_ust_field_integer_hex(uintptr_t, slab, (uintptr_t)slab)))                                          \
    EVENT(bitmap_check, DEBUG,                                                                                     \
          (uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, const void *, chunk, uint32_t, bitmap,         \
           uint32_t, full_mask, uint32_t, capacity, uint32_t, active_slabs, int, outcome),                         \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer_hex(uintptr_t, chunk, (uintptr_t)chunk)                                          \
           lttng_ust_field_integer_hex(uint32_t, bitmap, bitmap)                                                    \
           lttng_ust_field_integer_hex(uint32_t, full_mask, full_mask)                                              \
           lttng_ust_field_integer(uint32_t, capacity, capacity)                                                    \
           lttng_ust_field_integer(uint32_t, active_slabs, active_slabs)                                            \
           lttng_ust_field_enum(hakmem, claim_outcome, int, outcome, outcome)))                                     \
    EVENT(mid_simple_choice, DEBUG,                                                                                \
          (uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, uint8_t, enabled, int, path, int, why),        \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer(uint8_t, enabled, enabled)                                                       \
           lttng_ust_field_enum(hakmem, mid_path, int, path, path)                                                  \
           lttng_ust_field_enum(hakmem, mid_why, int, why, why)))                                                   \
    EVENT(chunk_expand, DEBUG,                                                                                     \
          (uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, int, outcome, const void *, chunk, uint32_t,   \
           chunk_count, uint8_t, waited),                                                                          \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_enum(hakmem, expand_outcome, int, outcome, outcome)                                      \
           lttng_ust_field_integer_hex(uintptr_t, chunk, (uintptr_t)chunk)                                          \
           lttng_ust_field_integer(uint32_t, chunk_count, chunk_count)                                              \
           lttng_ust_field_integer(uint8_t, waited, waited)))                                                       \
    EVENT(superslab_alloc_fail, WARNING,                                                                           \
          (uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, uint64_t, bytes, int32_t, err, int, reason),   \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer(uint64_t, bytes, bytes)                                                          \
           lttng_ust_field_integer(int32_t, err, err)                                                               \
           lttng_ust_field_enum(hakmem, fail_reason, int, reason, reason)))                                         \
    EVENT(reclaim_retry, WARNING,                                                                                  \
          (uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, uint32_t, attempt, int, outcome, uint64_t,     \
           given_back, uint32_t, stolen_slabs),                                                                    \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer(uint32_t, attempt, attempt)                                                      \
           lttng_ust_field_enum(hakmem, reclaim_outcome, int, outcome, outcome)                                     \
           lttng_ust_field_integer(uint64_t, given_back, given_back)                                                \
           lttng_ust_field_integer(uint32_t, stolen_slabs, stolen_slabs)))                                          \
    EVENT(refill_exit, DEBUG,                                                                                      \
          (uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, const void *, slab, int, result),              \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer_hex(uintptr_t, slab, (uintptr_t)slab)                                            \
           lttng_ust_field_enum(hakmem, refill_result, int, result, result)))                                       \
    EVENT(oom_memory, ERR,                                                                                         \
          (uint64_t, seq, uint64_t, cap, uint64_t, committed, uint64_t, large, uint64_t, tracer, uint8_t, classes), \
          (lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer(uint64_t, cap, cap)                                                              \
           lttng_ust_field_integer(uint64_t, committed, committed)                                                  \
           lttng_ust_field_integer(uint64_t, large, large)                                                          \
           lttng_ust_field_integer(uint64_t, tracer, tracer)                                                        \
           lttng_ust_field_integer(uint8_t, classes, classes)))                                                     \
    EVENT(oom_class_memory, ERR,                                                                                   \
          (uint64_t, seq, uint8_t, class_idx, uint32_t, block_size, uint64_t, committed, uint64_t, live, uint64_t,  \
           free, int32_t, holder_tid, uint64_t, holder_free),                                                      \
          (lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, committed, committed)                                                  \
           lttng_ust_field_integer(uint64_t, live, live)                                                            \
           lttng_ust_field_integer(uint64_t, free, free)                                                            \
           lttng_ust_field_integer(int32_t, holder_tid, holder_tid)                                                 \
           lttng_ust_field_integer(uint64_t, holder_free, holder_free)))                                            \
    EVENT(oom, ERR,                                                                                                \
          (uint64_t, size, uint8_t, class_idx, uint32_t, block_size, uint64_t, seq, uint64_t, oom_no, int, call,   \
           uint64_t, count, uint64_t, align, const void *, old_ptr, uint8_t, snapshot),                            \
          (lttng_ust_field_integer(uint64_t, size, size)                                                            \
           lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer(uint64_t, oom_no, oom_no)                                                        \
           lttng_ust_field_enum(hakmem, alloc_call, int, call, call)                                                \
           lttng_ust_field_integer(uint64_t, count, count)                                                          \
           lttng_ust_field_integer(uint64_t, align, align)                                                          \
           lttng_ust_field_integer_hex(uintptr_t, old_ptr, (uintptr_t)old_ptr)                                      \
           lttng_ust_field_integer(uint8_t, snapshot, snapshot)))                                                   \
    EVENT(call_stack, WARNING, (uint64_t, seq, uint64_t, oom_no, const uint64_t *, frames, uint8_t, depth),      \
          (lttng_ust_field_integer(uint64_t, seq, seq)                                                              \
           lttng_ust_field_integer(uint64_t, oom_no, oom_no)                                                        \
           lttng_ust_field_sequence_hex(uint64_t, frames, frames, uint8_t, depth)))                                 \
    EVENT(heap_sample, INFO,                                                                                       \
          (const void *, ptr, uint64_t, size, uint8_t, class_idx, uint64_t, mean, const uint64_t *, frames, uint8_t, \
           depth),                                                                                                 \
          (lttng_ust_field_integer_hex(uintptr_t, ptr, (uintptr_t)ptr)                                              \
           lttng_ust_field_integer(uint64_t, size, size)                                                            \
           lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint64_t, mean, mean)                                                            \
           lttng_ust_field_sequence_hex(uint64_t, frames, frames, uint8_t, depth)))                                 \
    EVENT(heap_sample_free, INFO, (const void *, ptr, uint64_t, size),                                             \
          (lttng_ust_field_integer_hex(uintptr_t, ptr, (uintptr_t)ptr)                                              \
           lttng_ust_field_integer(uint64_t, size, size)))                                                          \
    EVENT(exit_totals, WARNING, (uint64_t, ooms, uint64_t, refills, uint8_t, classes),                             \
          (lttng_ust_field_integer(uint64_t, ooms, ooms)                                                            \
           lttng_ust_field_integer(uint64_t, refills, refills)                                                      \
           lttng_ust_field_integer(uint8_t, classes, classes)))                                                     \
    EVENT(exit_class_totals, WARNING, (uint8_t, class_idx, uint32_t, block_size, uint64_t, refills, uint64_t, ooms), \
          (lttng_ust_field_integer(uint8_t, class_idx, class_idx)                                                   \
           lttng_ust_field_integer(uint32_t, block_size, block_size)                                                \
           lttng_ust_field_integer(uint64_t, refills, refills)                                                      \
           lttng_ust_field_integer(uint64_t, ooms, ooms)))

/* ---- (type, name, ...) pairs -> a parameter list; up to 10 pairs, as LTTng allows ---- */
#define HAK_TP_CAT(a, b) HAK_TP_CAT_(a, b)
#define HAK_TP_CAT_(a, b) a##b
#define HAK_TP_NARGS(...) HAK_TP_NARGS_(__VA_ARGS__, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)
#define HAK_TP_NARGS_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, n, \
                      ...)                                                                                         \
    n
#define HAK_TP_PARAM(t, n) t n __attribute__((unused))
#define HAK_TP_P2(t, n) HAK_TP_PARAM(t, n)
#define HAK_TP_P4(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P2(__VA_ARGS__)
#define HAK_TP_P6(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P4(__VA_ARGS__)
#define HAK_TP_P8(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P6(__VA_ARGS__)
#define HAK_TP_P10(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P8(__VA_ARGS__)
#define HAK_TP_P12(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P10(__VA_ARGS__)
#define HAK_TP_P14(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P12(__VA_ARGS__)
#define HAK_TP_P16(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P14(__VA_ARGS__)
#define HAK_TP_P18(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P16(__VA_ARGS__)
#define HAK_TP_P20(t, n, ...) HAK_TP_PARAM(t, n), HAK_TP_P18(__VA_ARGS__)
#define HAK_TP_PARAMS(...) HAK_TP_CAT(HAK_TP_P, HAK_TP_NARGS(__VA_ARGS__))(__VA_ARGS__)

#endif /* HAKMEM_TP_CATALOGUE_H */

#ifndef HAKMEM_TP_VALUES_ONLY

#ifndef HAKMEM_TP_NOP_H
#define HAKMEM_TP_NOP_H
#define HAK_TP_NOP_EVENT(name, level, args, fields) static inline void hak_trace_nop_##name(HAK_TP_PARAMS args) {}
HAKMEM_TP_EVENTS(HAK_TP_NOP_EVENT)
#endif

#if defined(HAKMEM_TRACING) && HAKMEM_TRACING

#undef LTTNG_UST_TRACEPOINT_PROVIDER
#define LTTNG_UST_TRACEPOINT_PROVIDER hakmem
#undef LTTNG_UST_TRACEPOINT_INCLUDE
#define LTTNG_UST_TRACEPOINT_INCLUDE "hakmem_tp.h"

#if !defined(HAKMEM_TP_LTTNG_H) || defined(LTTNG_UST_TRACEPOINT_HEADER_MULTI_READ)
#define HAKMEM_TP_LTTNG_H

#include <lttng/tracepoint.h>

/* Compile-time selection: HAKMEM_TRACE_EVENT_<event> is 0 or 1 (CMake's HAKMEM_TRACE_EVENTS). */
#define HAK_TP_WHEN(on, ...) HAK_TP_CAT(HAK_TP_WHEN_, on)(__VA_ARGS__)
#define HAK_TP_WHEN_0(...)
#define HAK_TP_WHEN_1(...) __VA_ARGS__
#define HAK_TP_LTTNG_EVENT(name, level, args, fields)                                                              \
    HAK_TP_WHEN(HAKMEM_TRACE_EVENT_##name,                                                                         \
                LTTNG_UST_TRACEPOINT_EVENT(hakmem, name, LTTNG_UST_TP_ARGS args, LTTNG_UST_TP_FIELDS fields)       \
                    LTTNG_UST_TRACEPOINT_LOGLEVEL(hakmem, name, LTTNG_UST_TRACEPOINT_LOGLEVEL_##level))
#define HAK_TP_ENUM_VALUE(id, label, value) lttng_ust_field_enum_value(#label, value)

LTTNG_UST_TRACEPOINT_ENUM(hakmem, claim_outcome, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_CLAIM_OUTCOME(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, mid_path, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_MID_PATH(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, mid_why, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_MID_WHY(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, expand_outcome, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_EXPAND_OUTCOME(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, fail_reason, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_FAIL_REASON(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, refill_result, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_REFILL_RESULT(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, adopt_stage, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_ADOPT_STAGE(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, adopt_outcome, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_ADOPT_OUTCOME(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, reclaim_outcome, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_RECLAIM_OUTCOME(HAK_TP_ENUM_VALUE)))
LTTNG_UST_TRACEPOINT_ENUM(hakmem, alloc_call, LTTNG_UST_TP_ENUM_VALUES(HAKMEM_TP_ALLOC_CALL(HAK_TP_ENUM_VALUE)))

HAKMEM_TP_EVENTS(HAK_TP_LTTNG_EVENT)

#endif /* HAKMEM_TP_LTTNG_H */

#include <lttng/tracepoint-event.h>

#endif /* HAKMEM_TRACING */
#endif /* HAKMEM_TP_VALUES_ONLY */
