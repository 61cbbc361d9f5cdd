/* test_expand.c — threads racing through superslab_refill on one head create exactly one new chunk per exhaustion. */
#include <pthread.h>
#include <stdlib.h>

#include "check.h"
#include "unit_support.h"

#define THREADS 4
#define PER_THREAD 40 /* 160 slabs = exactly 5 chunks */
#define ROUNDS 10
#define CLASS 26

static hak_superslab_head *head = &hak_heads[HAK_ARENA_PROGRAM][CLASS];
static pthread_barrier_t start;
static hak_heap heaps[THREADS];
static hak_slab *got[THREADS][PER_THREAD];

static void *worker(void *arg) {
    int t = (int)(intptr_t)arg;
    pthread_barrier_wait(&start);
    for (int i = 0; i < PER_THREAD; i++) {
        got[t][i] = superslab_refill(&heaps[t], CLASS);
        CHECK(got[t][i] != NULL, "thread %d refill %d returned NULL with no cap", t, i);
    }
    return NULL;
}

static int cmp_ptr(const void *a, const void *b) {
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

int main(void) {
    hak_ensure_init();
    for (int i = 0; i < THREADS; i++) fake_heap_init(&heaps[i]);
    unsigned want_chunks = (THREADS * PER_THREAD + HAK_SLABS_PER_CHUNK - 1) / HAK_SLABS_PER_CHUNK;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_init(&start, NULL, THREADS);
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
        for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
        pthread_barrier_destroy(&start);

        CHECK(head_chunks(head) == want_chunks, "round %d: %u chunks for %d slabs, want %u", round, head_chunks(head),
              THREADS * PER_THREAD, want_chunks);
        CHECK(head_slabs_in_use(head) == THREADS * PER_THREAD, "round %d: %u slabs in use", round,
              head_slabs_in_use(head));
        uintptr_t all[THREADS * PER_THREAD];
        for (int i = 0; i < THREADS; i++)
            for (int j = 0; j < PER_THREAD; j++) all[i * PER_THREAD + j] = (uintptr_t)got[i][j];
        qsort(all, THREADS * PER_THREAD, sizeof *all, cmp_ptr);
        for (int k = 1; k < THREADS * PER_THREAD; k++) CHECK(all[k] != all[k - 1], "round %d: slab handed out twice", round);

        /* Give everything back: empty non-current chunks leave the chain. */
        for (int i = 0; i < THREADS; i++)
            for (int j = 0; j < PER_THREAD; j++) slab_release(got[i][j]);
        CHECK(head_slabs_in_use(head) == 0, "round %d: all released", round);
        CHECK(head_chunks(head) == 1, "round %d: only the current chunk stays, %u left", round, head_chunks(head));
    }
    printf("expand ok: %d rounds, %u chunks per round\n", ROUNDS, want_chunks);
    return 0;
}
