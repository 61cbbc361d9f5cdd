/* slab_state.h — packing of hak_slab.state: tag (3 bits) | generation (29 bits). */
#ifndef HAKMEM_SLAB_STATE_H
#define HAKMEM_SLAB_STATE_H

#include <stdint.h>

#define HAK_STATE_GEN_MASK 0x1fffffffu

static inline uint64_t hak_state_make(unsigned tag, uint32_t gen) {
    return ((uint64_t)tag << 61) | ((uint64_t)(gen & HAK_STATE_GEN_MASK) << 32);
}
static inline unsigned hak_state_tag(uint64_t st) {
    return (unsigned)(st >> 61);
}
static inline uint32_t hak_state_gen(uint64_t st) {
    return (uint32_t)(st >> 32) & HAK_STATE_GEN_MASK;
}
/* Claimed from its chunk: its blocks may be live. */
static inline int hak_state_live(uint64_t st) {
    return hak_state_tag(st) == HAK_SLAB_LIVE;
}

#endif
