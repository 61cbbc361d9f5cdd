/* many_classes.c — L bytes live in one class and a few blocks in each of 20 others fit a cap of L + 4 MiB: the cap counts memory in use, not a chunk per class. */
#define _GNU_SOURCE
#include "ownership.h"

/*
 * One thread allocates L bytes of a heavy class and, spread over that growth, touches `light` other classes
 * with a few blocks each, all kept live until everything is out; then it checks every block and frees them
 * all. The same round runs twice: the second, under the same cap, shows that the first gave its memory back.
 * The light classes hold a few hundred KiB between them, so a cap that counts what is used (slabs in use,
 * the header parts of chunks, large blocks) fits them in its 4 MiB margin; one that charges a whole 2 MiB
 * chunk per class touched needs 40 MiB more than the cap allows.
 */

static struct {
    unsigned heavy;
    size_t bytes;
    unsigned light;
    size_t light_blocks;
    unsigned rounds;
} cfg = {4, 12 * MIB, 20, 4, 2};

/* Spread over every class but the heavy one and class 0 (which the checked build cannot request exactly),
 * up to 32 KiB blocks: a few blocks of the medium classes (up to 1 MiB each) are no light touch. */
static void light_classes(unsigned *out) {
    unsigned others[HAK_STATS_CLASSES], n = 0;
    for (unsigned c = 1; c < HAK_STATS_CLASSES; c++)
        if (c != cfg.heavy && class_block_size(c) <= 32768) others[n++] = c;
    for (unsigned k = 0; k < cfg.light; k++) out[k] = others[k * n / cfg.light];
}

static void usage(void) {
    fprintf(stderr, "usage: many_classes [--class C (1..60)] [--bytes N[K|M]] [--light N (1..39)] "
                    "[--light-blocks N] [--rounds N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--class") && i + 1 < argc) cfg.heavy = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bytes") && i + 1 < argc) {
            if (!parse_bytes(argv[++i], &cfg.bytes)) usage();
        } else if (!strcmp(argv[i], "--light") && i + 1 < argc) cfg.light = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--light-blocks") && i + 1 < argc) cfg.light_blocks = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) cfg.rounds = (unsigned)atoi(argv[++i]);
        else usage();
    }
    if (cfg.heavy < 1 || cfg.heavy >= HAK_STATS_CLASSES || cfg.bytes == 0 || cfg.light < 1 ||
        cfg.light > 39 || cfg.light_blocks < 1 || cfg.rounds < 1)
        usage();
    classes_init();
    unsigned light[HAK_STATS_CLASSES];
    light_classes(light);
    size_t block = class_block_size(cfg.heavy);
    size_t heavy_blocks = (cfg.bytes + block - 1) / block;
    size_t heavy_bytes = heavy_blocks * block, light_bytes = 0;
    for (unsigned k = 0; k < cfg.light; k++) light_bytes += cfg.light_blocks * class_block_size(light[k]);
    size_t cap = cap_bytes();
    CHECK(cap, "HAKMEM_MAX_MEMORY is not set: the test asserts what fits under a cap");
    CHECK(cap <= heavy_bytes + CAP_MARGIN, "cap %.2f MiB is more than L + 4 MiB = %.2f MiB: the test would not hold "
          "the cap to what is in use", MIB_OF(cap), MIB_OF(heavy_bytes + CAP_MARGIN));

    long total_nulls = 0;
    for (unsigned r = 0; r < cfg.rounds; r++) {
        run heavy = {0};
        run lights[HAK_STATS_CLASSES];
        memset(lights, 0, sizeof lights);
        heavy.blocks = calloc(heavy_blocks, sizeof *heavy.blocks);
        CHECK(heavy.blocks, "calloc");
        heavy.n = heavy_blocks;
        /* The light classes are touched one after another while the heavy class grows. */
        unsigned touched = 0;
        for (size_t i = 0; i < heavy_blocks; i++) {
            if (touched < cfg.light && i >= heavy_blocks * touched / cfg.light) {
                run_alloc(&lights[touched], light[touched], cfg.light_blocks, (uint16_t)(0x7000 + touched * 64));
                touched++;
            }
            heavy.blocks[i] = new_block(cfg.heavy, (uint16_t)i, &heavy.nulls);
        }
        long nulls = heavy.nulls, light_nulls = 0;
        for (unsigned k = 0; k < cfg.light; k++) light_nulls += lights[k].nulls;
        size_t held_blocks = heavy_blocks + cfg.light * cfg.light_blocks - (size_t)(nulls + light_nulls);
        uint64_t out = blocks_out();
        CHECK(out == held_blocks, "hakmem counts %llu blocks out, the test holds %zu", (unsigned long long)out,
              held_blocks);
        printf("many_classes round %u: %ld NULLs in the heavy class %u (%zu B), %ld in the %u light classes; "
               "L = %.2f MiB live, light %.1f KiB (%zu blocks each); HAKMEM_MAX_MEMORY = %.2f MiB\n",
               r + 1, nulls, cfg.heavy, block, light_nulls, cfg.light, MIB_OF(heavy_bytes), light_bytes / 1024.0,
               cfg.light_blocks, MIB_OF(cap));
        run_free(&heavy);
        for (unsigned k = 0; k < cfg.light; k++) run_free(&lights[k]);
        expect_balanced("all freed");
        total_nulls += nulls + light_nulls;
    }
    CHECK(total_nulls == 0, "%ld NULLs with %.2f MiB live under a cap of %.2f MiB: classes touched lightly cost more "
          "than the memory they use", total_nulls, MIB_OF(heavy_bytes + light_bytes), MIB_OF(cap));
    return 0;
}
