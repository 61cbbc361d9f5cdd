/* test_size_class.c — every small size maps to the smallest class that holds it; tiny classes keep the seed's numbering; the block-start check is exact. */
#include "check.h"
#include "internal.h"

int main(void) {
    for (unsigned i = 0; i < HAK_TINY_CLASSES; i++)
        CHECK(hak_class_size[i] == 8u << i, "tiny class C%u is %u bytes, want %u", i, hak_class_size[i], 8u << i);
    for (unsigned c = 1; c < HAK_NUM_CLASSES; c++)
        CHECK(hak_class_size[c] > hak_class_size[c - 1], "classes grow: C%u", c);
    CHECK(hak_class_size[HAK_NUM_CLASSES - 1] == HAK_SMALL_MAX, "last class is HAK_SMALL_MAX");
    for (size_t size = 0; size <= HAK_SMALL_MAX; size++) {
        unsigned c = hak_size_to_class(size);
        CHECK(c < HAK_NUM_CLASSES, "size %zu -> class %u out of range", size, c);
        CHECK(hak_class_size[c] >= size, "size %zu -> C%u (%u bytes) too small", size, c, hak_class_size[c]);
        CHECK(c == 0 || hak_class_size[c - 1] < size, "size %zu -> C%u but C%u (%u) fits", size, c, c - 1,
              hak_class_size[c - 1]);
    }
    /* The seed's class 4 is 128-byte blocks: 65..128 bytes. */
    CHECK(hak_size_to_class(65) == 4 && hak_size_to_class(128) == 4, "class 4 covers 65..128");
    /* Slab capacities: every class fits at least one block in slab 0. */
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        CHECK((HAK_SLAB_SIZE - HAK_SLAB0_DATA_OFFSET) / hak_class_size[c] >= 1, "C%u fits slab 0", c);
    /* The one-multiply block-start check agrees with the remainder at every offset of a slab, every class. */
    static uint8_t slab_bytes[2 * HAK_SLAB_SIZE];
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        hak_slab s = {.data = slab_bytes, .block_size = hak_class_size[c],
                      .block_magic = UINT64_MAX / hak_class_size[c] + 1};
        for (uint64_t off = 0; off < 2 * HAK_SLAB_SIZE; off++) {
            bool want = off < HAK_SLAB_SIZE && off % hak_class_size[c] == 0;
            CHECK(hak_slab_block_start(&s, slab_bytes + off) == want, "C%u offset %llu: block start %d, want %d", c,
                  (unsigned long long)off, !want, want);
        }
    }
    puts("size classes ok");
    return 0;
}
