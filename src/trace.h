/* trace.h — the tracing switch: src/ calls HAK_TRACE(event, ...) and includes nothing of LTTng's itself. */
#ifndef HAKMEM_TRACE_H
#define HAKMEM_TRACE_H

#include <errno.h>

#include "internal.h"

#if defined(HAKMEM_TRACING) && HAKMEM_TRACING
/* The provider is linked into the library itself: tracepoint symbols stay
 * hidden and the enabled check is one RIP-relative load. */
#define LTTNG_UST_TRACEPOINT_HIDDEN_DEFINITION
#define LTTNG_UST_TRACEPOINT_PROVIDER_HIDDEN_DEFINITION
#endif
#include "hakmem_tp.h"

#define HAK_MID_PATH_ITEM(id, label, value) HAK_MID_PATH_##id = value,
#define HAK_MID_WHY_ITEM(id, label, value) HAK_MID_WHY_##id = value,
#define HAK_REFILL_ITEM(id, label, value) HAK_REFILL_##id = value,
#define HAK_ADOPT_STAGE_ITEM(id, label, value) HAK_ADOPT_STAGE_##id = value,
#define HAK_ADOPT_ITEM(id, label, value) HAK_ADOPT_##id = value,
enum hak_trace_mid_path { HAKMEM_TP_MID_PATH(HAK_MID_PATH_ITEM) };
enum hak_trace_mid_why { HAKMEM_TP_MID_WHY(HAK_MID_WHY_ITEM) };
enum hak_trace_refill_result { HAKMEM_TP_REFILL_RESULT(HAK_REFILL_ITEM) };
enum hak_trace_adopt_stage { HAKMEM_TP_ADOPT_STAGE(HAK_ADOPT_STAGE_ITEM) };
enum hak_trace_adopt_outcome { HAKMEM_TP_ADOPT_OUTCOME(HAK_ADOPT_ITEM) };

#if defined(HAKMEM_TRACING) && HAKMEM_TRACING
/*
 * The tracer may allocate (its first event in a thread, for one, makes glibc
 * allocate dynamic TLS through our malloc). A static-TLS flag, never a
 * pthread key, stops such a nested allocation from emitting in turn; events
 * are only emitted with no allocator lock held, so the nested allocation
 * itself is safe.
 */
#define HAK_TRACE(event, ...) HAK_TRACE_PICK(HAKMEM_TRACE_EVENT_##event, event, __VA_ARGS__)
#define HAK_TRACE_PICK(on, event, ...) HAK_TP_CAT(HAK_TRACE_PICK_, on)(event, __VA_ARGS__)
#define HAK_TRACE_PICK_0(event, ...) hak_trace_nop_##event(__VA_ARGS__)
/* While an event is emitted the thread has no heap: the tracer's allocations are the empty heap's calls, so
 * that the call that emits stays open on the thread's own (internal.h), and what they get comes from the
 * tracer's arena (tracer.c), none of it traced. The arguments are evaluated then too:
 * a caller reads what it needs of hak_tls.heap before. */
typedef struct hak_tracer_turn {
    int err; /* the tracer's own syscalls must not show */
    hak_heap *heap;
} hak_tracer_turn;
static inline hak_tracer_turn hak_tracer_enter(void) {
    hak_tracer_turn t = {errno, hak_tls.heap};
    hak_tls.trace_busy = 1;
    hak_tls.heap = &hak_empty_heap;
    return t;
}
static inline void hak_tracer_leave(hak_tracer_turn t) {
    hak_tls.heap = t.heap;
    hak_tls.trace_busy = 0;
    errno = t.err;
}
#define HAK_TRACE_PICK_1(event, ...)                                                   \
    do {                                                                               \
        if (lttng_ust_tracepoint_enabled(hakmem, event) && !hak_in_tracer()) {         \
            hak_tracer_turn hak_trace_turn = hak_tracer_enter();                       \
            lttng_ust_do_tracepoint(hakmem, event, __VA_ARGS__);                       \
            hak_tracer_leave(hak_trace_turn);                                          \
        }                                                                              \
    } while (0)
/* Whether the event would be recorded now: for work done only to fill an event (census.c). */
#define HAK_TRACE_ON(event) HAK_TP_CAT(HAK_TRACE_ON_, HAKMEM_TRACE_EVENT_##event)(event)
#define HAK_TRACE_ON_0(event) 0
#define HAK_TRACE_ON_1(event) (lttng_ust_tracepoint_enabled(hakmem, event) && !hak_in_tracer())
/* The return addresses of the allocation call in progress, innermost first, the library's own frames left out
 * (stack.c): taken as the tracer, so that whatever the unwinder allocates is the tracer's. */
#define HAK_STACK_DEPTH 32
uint8_t hak_stack_capture(uint64_t frames[HAK_STACK_DEPTH]);
#else
/* Compiled out: an empty inline call that still type-checks its arguments. */
#define HAK_TRACE(event, ...) hak_trace_nop_##event(__VA_ARGS__)
#define HAK_TRACE_ON(event) 0
#define HAK_STACK_DEPTH 1
static inline uint8_t hak_stack_capture(uint64_t frames[HAK_STACK_DEPTH]) { (void)frames; return 0; }
#endif

/* The caller's stack (call_stack), just before the failure event it belongs to: a superslab_alloc_fail (oom_no 0)
 * or the oom numbered oom_no. */
#define HAK_TRACE_STACK(seq, oom_no)                                          \
    do {                                                                      \
        if (HAK_TRACE_ON(call_stack)) {                                       \
            uint64_t hak_stack_frames[HAK_STACK_DEPTH];                       \
            uint8_t hak_stack_depth = hak_stack_capture(hak_stack_frames);    \
            HAK_TRACE(call_stack, seq, oom_no, hak_stack_frames, hak_stack_depth); \
        }                                                                     \
    } while (0)

#endif
