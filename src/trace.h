/* trace.h — the tracing switch: src/ calls HAK_TRACE(event, ...) and never includes LTTng. */
#ifndef HAKMEM_TRACE_H
#define HAKMEM_TRACE_H

#include <stdint.h>

/* Outcome codes carried by the events (mirrored by the catalogue's enums). */
enum hak_trace_mid_path { HAK_MID_PATH_MULTI_STAGE = 0, HAK_MID_PATH_SIMPLE = 1 };
enum hak_trace_mid_why { HAK_MID_WHY_OPTION_OFF = 0, HAK_MID_WHY_OPTION_ON = 1 };
enum hak_trace_refill_result { HAK_REFILL_CLAIMED = 0, HAK_REFILL_ADOPTED = 1, HAK_REFILL_NULL = 2 };

/*
 * With tracing compiled out every event is an empty inline function: the call
 * sites still type-check their arguments and generate no code.
 */
static inline void hak_trace_nop_refill_enter(uint8_t class_idx, uint32_t block_size, uint64_t seq,
                                              const void *thread_chunk, const void *current_chunk) {
    (void)class_idx, (void)block_size, (void)seq, (void)thread_chunk, (void)current_chunk;
}
static inline void hak_trace_nop_bitmap_check(uint8_t class_idx, uint64_t seq, const void *chunk, uint32_t bitmap,
                                              uint32_t full_mask, uint32_t capacity, uint32_t active_slabs,
                                              int outcome) {
    (void)class_idx, (void)seq, (void)chunk, (void)bitmap, (void)full_mask, (void)capacity, (void)active_slabs,
        (void)outcome;
}
static inline void hak_trace_nop_mid_simple_choice(uint8_t class_idx, uint64_t seq, uint8_t enabled, int path,
                                                   int why) {
    (void)class_idx, (void)seq, (void)enabled, (void)path, (void)why;
}
static inline void hak_trace_nop_chunk_expand(uint8_t class_idx, uint64_t seq, int outcome, const void *chunk,
                                              uint32_t chunk_count, uint8_t waited) {
    (void)class_idx, (void)seq, (void)outcome, (void)chunk, (void)chunk_count, (void)waited;
}
static inline void hak_trace_nop_superslab_alloc_fail(uint8_t class_idx, uint64_t seq, uint64_t bytes, int32_t err,
                                                      int reason) {
    (void)class_idx, (void)seq, (void)bytes, (void)err, (void)reason;
}
static inline void hak_trace_nop_refill_exit(uint8_t class_idx, uint64_t seq, const void *slab, int result) {
    (void)class_idx, (void)seq, (void)slab, (void)result;
}
static inline void hak_trace_nop_oom(uint64_t size, uint8_t class_idx, uint64_t seq) {
    (void)size, (void)class_idx, (void)seq;
}

#define HAK_TRACE(event, ...) hak_trace_nop_##event(__VA_ARGS__)

#endif
