/* option_probe.c — which HAKMEM_* settings took effect in this process (run with libhakmem.so preloaded).
 *
 * Prints one line: "nulls N of M adopted4 A"
 *   nulls:    allocations that returned NULL, of M: 64 large blocks of 4 MiB (256 MiB), then 256 blocks of each of
 *             28 sizes (one per size class). With no cap and no injected fault every one succeeds; a cap of a few
 *             hundred MiB or less (a mis-parsed HAKMEM_MAX_MEMORY) or any fault injection makes some fail.
 *   adopted4: slabs of class 4 (128 bytes) adopted by this thread's refills after another thread exited leaving
 *             them half used. A refill that finds the bitmap full adopts before it expands with
 *             HAKMEM_TINY_MID_REFILL_SIMPLE off (the default): > 0; with it on, classes >= 4 skip adopting unless
 *             an expansion is refused, which nothing here makes happen: 0. "-" when the thread could not start.
 * Exit status 0, or 3 when hakmem is not serving this process (no hak_stats_get).
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "hakmem.h"

#define LARGE_BLOCKS 64
#define LARGE_SIZE (4u << 20)
#define PER_CLASS 256
/* 120 bytes: class 4 (128-byte blocks) in the release build and in the checked build, whose 8-byte trailer
 * takes a request of 128 to the next class. */
#define CLASS4_SIZE 120
#define CLASS4_BLOCKS (40 * 512) /* 40 slabs of 64 KiB: more than one 2 MiB chunk holds */

static void *class4[CLASS4_BLOCKS];

/* Fills 40 class-4 slabs (two chunks) and frees every other block: the slabs are half used when the thread exits,
 * so they are abandoned (not returned) and wait for a refill to adopt them. A refill adopts only once the current
 * chunk's bitmap is full, so the main thread then asks for as many slabs again. */
static void *half_fill(void *arg) {
    (void)arg;
    for (int i = 0; i < CLASS4_BLOCKS; i++) class4[i] = malloc(CLASS4_SIZE);
    for (int i = 0; i < CLASS4_BLOCKS; i += 2) {
        free(class4[i]);
        class4[i] = NULL;
    }
    return NULL;
}

int main(void) {
    void (*stats_get)(hak_stats *) = (void (*)(hak_stats *))dlsym(RTLD_DEFAULT, "hak_stats_get");
    if (!stats_get) {
        fprintf(stderr, "option_probe: hak_stats_get not found: run with LD_PRELOAD=libhakmem.so\n");
        return 3;
    }
    static const size_t sizes[] = {8,    16,   32,   64,   128,  256,   512,   1024,  1280,  1536,
                                   1792, 2048, 2560, 3072, 3584, 4096,  5120,  6144,  7168,  8192,
                                   10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768};
    static void *small[sizeof sizes / sizeof *sizes][PER_CLASS];
    void *large[LARGE_BLOCKS];
    int nulls = 0, total = 0;
    for (int i = 0; i < LARGE_BLOCKS; i++, total++) nulls += (large[i] = malloc(LARGE_SIZE)) == NULL;
    for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++)
        for (int i = 0; i < PER_CLASS; i++, total++) nulls += (small[c][i] = malloc(sizes[c])) == NULL;
    for (int i = 0; i < LARGE_BLOCKS; i++) free(large[i]);
    for (size_t c = 0; c < sizeof sizes / sizeof *sizes; c++)
        for (int i = 0; i < PER_CLASS; i++) free(small[c][i]);

    pthread_t t;
    if (pthread_create(&t, NULL, half_fill, NULL) != 0 || pthread_join(t, NULL) != 0) {
        printf("nulls %d of %d adopted4 -\n", nulls, total);  /* an injected fault can refuse the thread itself */
        return 0;
    }
    static void *mine[CLASS4_BLOCKS];
    for (int i = 0; i < CLASS4_BLOCKS; i++) mine[i] = malloc(CLASS4_SIZE);
    hak_stats st;
    stats_get(&st);
    for (int i = 0; i < CLASS4_BLOCKS; i++) {
        free(mine[i]);
        free(class4[i]);
    }
    printf("nulls %d of %d adopted4 %llu\n", nulls, total, (unsigned long long)st.classes[4].adopted);
    return 0;
}
