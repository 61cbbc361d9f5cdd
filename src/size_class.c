/* size_class.c — the block size of every class (the mapping from sizes is inline in internal.h). */
#include "internal.h"

/* C0..C7: 8..1024 (the seed's tiny classes); C8..C27: four steps per doubling up to 32 KiB; C28..C40: the
 * steps between the tiny classes from 32 up (48; then three per doubling from 64), numbered after them so that
 * the seed's classes keep their numbers; C41..C60: the medium classes, four steps per doubling up to 1 MiB. */
#define MID(k) (5u << (8 + (k))), (6u << (8 + (k))), (7u << (8 + (k))), (8u << (8 + (k)))
#define BETWEEN(k) (5u << (4 + (k))), (6u << (4 + (k))), (7u << (4 + (k)))
const uint32_t hak_class_size[HAK_NUM_CLASSES] = {
    8, 16, 32, 64, 128, 256, 512, 1024, MID(0), MID(1), MID(2), MID(3), MID(4),
    48, BETWEEN(0), BETWEEN(1), BETWEEN(2), BETWEEN(3),
    MID(5), MID(6), MID(7), MID(8), MID(9),
};
/* Spans hold four blocks or more up to 448 KiB (3..1 from 512 KiB, where a span is the whole chunk): fewer,
 * and the rest of the span after its last block is a larger share of it. */
const uint8_t hak_class_span_shift[HAK_NUM_CLASSES] = {
    [HAK_MEDIUM_FIRST ... HAK_MEDIUM_FIRST + 3] = 2,      /* 40..64 KiB in 256 KiB */
    [HAK_MEDIUM_FIRST + 4 ... HAK_MEDIUM_FIRST + 7] = 3,  /* 80..128 KiB in 512 KiB */
    [HAK_MEDIUM_FIRST + 8 ... HAK_MEDIUM_FIRST + 11] = 4, /* 160..256 KiB in 1 MiB */
    [HAK_MEDIUM_FIRST + 12 ... HAK_NUM_CLASSES - 1] = 5,  /* 320 KiB..1 MiB in the chunk */
};
#undef BETWEEN
#undef MID

_Static_assert(HAK_MEDIUM_FIRST == HAK_BETWEEN_FIRST + 13, "48, and three steps in each of four doublings");
_Static_assert(HAK_NUM_CLASSES == HAK_MEDIUM_FIRST + 20, "four steps in each of five doublings");

/* Granule g holds sizes 8g-7..8g; its class is the smallest block >= 8g. Steps of 25 % at most (mimalloc's and
 * jemalloc's spacing): with powers of two alone, uniform request sizes waste a quarter of every block, and the
 * working set that misses the cache grows by a third. One list (first granule, last granule, class) gives both
 * tables. */
#define TINY_GRANULES(X)                                                                                       \
    X(0, 1, 0) X(2, 2, 1) X(3, 4, 2) X(5, 6, 28) X(7, 8, 3) X(9, 10, 29) X(11, 12, 30) X(13, 14, 31) X(15, 16, 4) \
    X(17, 20, 32) X(21, 24, 33) X(25, 28, 34) X(29, 32, 5) X(33, 40, 35) X(41, 48, 36) X(49, 56, 37)           \
    X(57, 64, 6) X(65, 80, 38) X(81, 96, 39) X(97, 112, 40) X(113, 128, 7)
#define CLASS_OF(first, last, c) [first ... last] = c,
const uint8_t hak_tiny_class_of[HAK_TINY_MAX / 8 + 1] = {TINY_GRANULES(CLASS_OF)};
#undef CLASS_OF
#define GRANULES_OF(first, last, c) [c] = {first, last + 1},
const uint8_t hak_class_granules[HAK_NUM_CLASSES][2] = {TINY_GRANULES(GRANULES_OF)};
#undef GRANULES_OF
#undef TINY_GRANULES

/* Above the tiny sizes, up to 32 KiB: by 128-byte granule, ceil(size / 128) (every mid class is a multiple of
 * 256), so that a 4 KiB buffer finds its class with one load instead of a bit scan and its arithmetic. */
#define MID_GRANULES(X)                                                                                        \
    X(9, 10, 8) X(11, 12, 9) X(13, 14, 10) X(15, 16, 11) X(17, 20, 12) X(21, 24, 13) X(25, 28, 14) X(29, 32, 15) \
    X(33, 40, 16) X(41, 48, 17) X(49, 56, 18) X(57, 64, 19) X(65, 80, 20) X(81, 96, 21) X(97, 112, 22)          \
    X(113, 128, 23) X(129, 160, 24) X(161, 192, 25) X(193, 224, 26) X(225, 256, 27)
#define CLASS_OF(first, last, c) [first ... last] = c,
const uint8_t hak_mid_class_of[HAK_MID_MAX / 128 + 1] = {MID_GRANULES(CLASS_OF)};
#undef CLASS_OF
#undef MID_GRANULES
