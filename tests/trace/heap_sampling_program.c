/* heap_sampling_program.c — every allocation call, freed locally, remotely and by realloc's moves: the heap profile's bookkeeping. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Two threads each make ROUNDS rounds of blocks through malloc, calloc,
 * posix_memalign, aligned_alloc, a 2 MiB malloc (the large path) and a
 * realloc chain that grows a block until it moves; half of every round is
 * handed to the other thread, which frees it (remote frees), the rest is freed
 * by its owner, at the end (about 20 MiB held by then). With HAKMEM_TRACE_SAMPLE=1 every block of 64 bytes or more is
 * sampled, so the test can count. Under HAKMEM_MAX_MEMORY or HAKMEM_FAULT_OS a
 * call may return NULL: only blocks actually handed out count.
 *
 * Prints "program TEXT_START TEXT_END" (the executable's code: a sample whose
 * innermost frame is in it was made by one of the calls below) and
 * "allocations N" (the new blocks those calls handed out) on stdout.
 */

extern const char __executable_start[], etext[];

#define ROUNDS 200
#define PER_ROUND 12

struct hand_over {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    void *blocks[2][ROUNDS * PER_ROUND]; /* [to thread] */
    size_t count[2];
    int done[2];
};

static struct hand_over hand = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
static _Atomic unsigned long allocations;

static void *counted(void *p) {
    if (p) allocations++;
    return p;
}

/* A block grown from 100 bytes until realloc gives it a new address (each new address a new block). */
static void *grown(void) {
    char *p = counted(malloc(100));
    if (!p) return NULL;
    memset(p, 1, 100);
    for (size_t size = 200; size <= (1u << 20); size *= 2) {
        char *q = realloc(p, size);
        if (!q) return p; /* p stays the caller's */
        if (q != p) allocations++;
        p = q;
    }
    return p;
}

static void give(int to, void *p) {
    if (!p) return;
    pthread_mutex_lock(&hand.lock);
    hand.blocks[to][hand.count[to]++] = p;
    pthread_mutex_unlock(&hand.lock);
}

static void *worker(void *arg) {
    int me = (int)(intptr_t)arg, other = 1 - me;
    void *mine[PER_ROUND];
    for (int r = 0; r < ROUNDS; r++) {
        int n = 0;
        void *p = NULL;
        /* Even places are freed here, odd ones handed over: the other thread holds about 50 KiB a round. */
        mine[n++] = counted(malloc(2u << 20));
        mine[n++] = counted(calloc(10, 100));
        mine[n++] = grown();
        mine[n++] = counted(aligned_alloc(64, 640));
        mine[n++] = posix_memalign(&p, 4096, 5000) == 0 ? counted(p) : NULL;
        mine[n++] = counted(malloc(48 * 1024));
        mine[n++] = counted(malloc(300));
        mine[n++] = counted(malloc(64 + (size_t)r));
        for (int i = 0; i < n; i++) {
            if (i % 2) give(other, mine[i]);
            else free(mine[i]);
        }
    }
    pthread_mutex_lock(&hand.lock);
    hand.done[me] = 1;
    pthread_cond_broadcast(&hand.cond);
    while (!hand.done[other]) pthread_cond_wait(&hand.cond, &hand.lock);
    pthread_mutex_unlock(&hand.lock);
    for (size_t i = 0; i < hand.count[me]; i++) free(hand.blocks[me][i]); /* the other's blocks: remote frees */
    return NULL;
}

int main(void) {
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i) != 0) return 1;
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    printf("program %#lx %#lx\nallocations %lu\n", (unsigned long)(uintptr_t)__executable_start,
           (unsigned long)(uintptr_t)etext, (unsigned long)allocations);
    return 0;
}
