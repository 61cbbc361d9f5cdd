/* size_class.c — the block size of every class (the mapping from sizes is inline in internal.h). */
#include "internal.h"

/* C0..C7: 8..1024 (the seed's tiny classes); C8..C27: four steps per doubling up to 32 KiB. */
#define MID(k) (5u << (8 + (k))), (6u << (8 + (k))), (7u << (8 + (k))), (8u << (8 + (k)))
const uint32_t hak_class_size[HAK_NUM_CLASSES] = {
    8, 16, 32, 64, 128, 256, 512, 1024, MID(0), MID(1), MID(2), MID(3), MID(4),
};
#undef MID

_Static_assert(HAK_NUM_CLASSES == HAK_TINY_CLASSES + 20, "five doublings of mid classes");

/* Granule g holds sizes 8g-7..8g; its class is the smallest power of two >= 8g. */
const uint8_t hak_tiny_class_of[HAK_TINY_MAX / 8 + 1] = {
    [0 ... 1] = 0, [2] = 1, [3 ... 4] = 2, [5 ... 8] = 3, [9 ... 16] = 4, [17 ... 32] = 5, [33 ... 64] = 6,
    [65 ... 128] = 7,
};
