/* slab_state.h — packing of hak_slab.state: tag (3 bits) | generation (29 bits) | count (32 bits). */
#ifndef HAKMEM_SLAB_STATE_H
#define HAKMEM_SLAB_STATE_H

#include <stdint.h>

#define HAK_STATE_GEN_MASK 0x1fffffffu

static inline uint64_t hak_state_make(unsigned tag, uint32_t gen, uint32_t count) {
    return ((uint64_t)tag << 61) | ((uint64_t)(gen & HAK_STATE_GEN_MASK) << 32) | count;
}
static inline unsigned hak_state_tag(uint64_t st) {
    return (unsigned)(st >> 61);
}
static inline uint32_t hak_state_gen(uint64_t st) {
    return (uint32_t)(st >> 32) & HAK_STATE_GEN_MASK;
}
static inline uint32_t hak_state_count(uint64_t st) {
    return (uint32_t)st;
}
/* Same slab life (gen) and a tag whose blocks may still be live. */
static inline int hak_state_live(uint64_t st) {
    unsigned t = hak_state_tag(st);
    return t == HAK_SLAB_OWNED || t == HAK_SLAB_PARKED || t == HAK_SLAB_UNOWNED;
}

#endif
