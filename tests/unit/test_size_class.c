/* test_size_class.c — every small size maps to the smallest class that holds it; tiny classes keep the seed's numbering; the block-start check is exact. */
#include "check.h"
#include "internal.h"

int main(void) {
    for (unsigned i = 0; i < HAK_TINY_CLASSES; i++)
        CHECK(hak_class_size[i] == 8u << i, "tiny class C%u is %u bytes, want %u", i, hak_class_size[i], 8u << i);
    /* Numbers are not in size order (the between classes come last): walk the classes by size. */
    uint32_t largest = 0, previous = 0;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
        if (hak_class_size[c] > largest) largest = hak_class_size[c];
    CHECK(largest == HAK_SMALL_MAX, "largest class is HAK_SMALL_MAX");
    for (unsigned seen = 0; seen < HAK_NUM_CLASSES; seen++) {
        uint32_t next = UINT32_MAX;
        for (unsigned c = 0; c < HAK_NUM_CLASSES; c++)
            if (hak_class_size[c] > previous && hak_class_size[c] < next) next = hak_class_size[c];
        CHECK(next != UINT32_MAX, "%u classes of distinct sizes, want %u", seen, HAK_NUM_CLASSES);
        /* From 64 bytes up no step is more than 25 % (below, 8, 16, 32, 48: finer is not 16-byte aligned). */
        CHECK(previous < 64 || (uint64_t)next * 4 <= (uint64_t)previous * 5, "step %u -> %u is over 25 %%", previous,
              next);
        CHECK(next < 16 || next % 16 == 0, "class of %u bytes: blocks of 16 B and more are 16-byte aligned", next);
        previous = next;
    }
    for (size_t size = 0; size <= HAK_SMALL_MAX; size++) {
        unsigned c = hak_size_to_class(size);
        CHECK(c < HAK_NUM_CLASSES, "size %zu -> class %u out of range", size, c);
        CHECK(hak_class_size[c] >= size, "size %zu -> C%u (%u bytes) too small", size, c, hak_class_size[c]);
        for (unsigned o = 0; o < HAK_NUM_CLASSES; o++)
            CHECK(!(hak_class_size[o] >= size && hak_class_size[o] < hak_class_size[c]),
                  "size %zu -> C%u (%u) but C%u (%u) fits", size, c, hak_class_size[c], o, hak_class_size[o]);
    }
    /* The seed's class 4 is still 128-byte blocks, now for requests above the 112-byte between class. */
    CHECK(hak_size_to_class(113) == 4 && hak_size_to_class(128) == 4 && hak_size_to_class(112) != 4,
          "class 4 covers 113..128");
    /* Spans: one slab up to 32 KiB; above, a power of two of them, the fewest that hold four blocks (the whole
     * chunk when none does), so that every class fits a block in the chunk's first span, header and all. */
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        unsigned slabs = 1u << hak_class_span_shift[c];
        uint32_t bs = hak_class_size[c];
        CHECK(slabs <= HAK_SLABS_PER_CHUNK, "C%u: a span of %u slabs", c, slabs);
        CHECK(bs > HAK_MID_MAX || slabs == 1, "C%u (%u B): one slab a span below the medium classes", c, bs);
        CHECK(hak_span_bytes(0, slabs) / bs >= 1, "C%u (%u B) fits the chunk's first span", c, bs);
        CHECK(bs <= HAK_MID_MAX || slabs == HAK_SLABS_PER_CHUNK || hak_span_bytes(slabs, slabs) / bs >= 4,
              "C%u (%u B): a span of %u slabs holds %zu blocks, want 4", c, bs, slabs, hak_span_bytes(slabs, slabs) / bs);
        CHECK(bs <= HAK_MID_MAX || slabs == 1 || hak_span_bytes(slabs, slabs / 2) / bs < 4,
              "C%u (%u B): half a span would hold four blocks already", c, bs);
    }
    CHECK(hak_size_to_class(HAK_MID_MAX + 1) == HAK_MEDIUM_FIRST && hak_class_size[HAK_MEDIUM_FIRST] == 40960,
          "the first medium class takes the sizes just above 32 KiB");
    /* The one-multiply, one-compare block-start check agrees with the remainder and the bound at every offset of a
     * slab 0 (the header's bytes before its data included), of a later slab, and past them, every class; and across
     * a whole span for the medium classes. */
    static uint8_t slab_bytes[HAK_SLAB0_DATA_OFFSET + 2 * HAK_SLAB_SIZE];
    uint8_t *data = slab_bytes + HAK_SLAB0_DATA_OFFSET;
    for (unsigned c = 0; c < HAK_NUM_CLASSES; c++) {
        uint32_t bs = hak_class_size[c];
        for (unsigned first = 0; first <= 1; first++) {
            uint32_t capacity = (uint32_t)(hak_span_bytes(first, 1) / bs);
            hak_slab s = {.data = data, .block_size = bs, .block_magic = hak_block_magic(bs),
                          .block_limit = hak_block_limit(bs, capacity)};
            for (int64_t off = -(int64_t)HAK_SLAB0_DATA_OFFSET; off < 2 * (int64_t)HAK_SLAB_SIZE; off++) {
                bool want = off >= 0 && off < (int64_t)capacity * bs && off % bs == 0;
                CHECK(hak_slab_block_start(&s, data + off) == want,
                      "C%u (%u B, %u blocks) offset %lld: block start %d, want %d", c, bs, capacity, (long long)off,
                      !want, want);
            }
        }
    }
    for (unsigned c = HAK_MEDIUM_FIRST; c < HAK_NUM_CLASSES; c++) {
        unsigned slabs = 1u << hak_class_span_shift[c];
        uint32_t bs = hak_class_size[c];
        uintptr_t base = (uintptr_t)1 << 40;
        uint32_t capacity = (uint32_t)(hak_span_bytes(slabs, slabs) / bs);
        hak_slab s = {.data = (uint8_t *)base, .block_size = bs, .block_magic = hak_block_magic(bs),
                      .block_limit = hak_block_limit(bs, capacity)};
        for (uint64_t off = 0; off < ((uint64_t)slabs << HAK_SLAB_SHIFT) + bs; off += 8) {
            bool want = off < (uint64_t)capacity * bs && off % bs == 0;
            CHECK(hak_slab_block_start(&s, (const void *)(base + off)) == want, "C%u span offset %llu: block start %d",
                  c, (unsigned long long)off, !want);
        }
        for (uint64_t below = 8; below <= HAK_SLAB0_DATA_OFFSET; below += 8)
            CHECK(!hak_slab_block_start(&s, (const void *)(base - below)), "C%u: %llu B before the span's data taken "
                  "for a block start", c, (unsigned long long)below);
    }
    puts("size classes ok");
    return 0;
}
