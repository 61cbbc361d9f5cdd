/* trace_decisions_program.c — forces the refill decisions around a refusal (adoption, reclaim-and-retry) and an OOM from every allocation call. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Under HAKMEM_MAX_MEMORY=8M, in this order, one step at a time (threads hand over with joins and barriers):
 *  1. a thread fills two slabs' worth of 128-byte blocks, frees every other one and exits: its slabs, half
 *     free, are let go; the main thread's first 128-byte malloc adopts one (slab_adopt before_claim);
 *  2. thread A allocates 4 MiB of 256-byte blocks and stays alive, idle; thread B frees them all: A's slabs
 *     are all free but A's; the main thread then grows 128-byte blocks to their first NULL, and on the way the
 *     cap's refusal is met by a reclaim that takes A's slabs back (reclaim_retry, bytes given back);
 *  3. with the cap spent, each allocation call in turn, on a class that was first filled to its NULL by
 *     malloc: its OOM must name it. Each refused call is written to LOG as the report should print it.
 * The harness's own memory is mmap'ed, outside the allocator and its cap.
 */

#define MAX_LIVE (1 << 20)
#define SMALL 128
#define MEDIUM 256
#define STRANDED (4u << 20)

static void **live;
static long nlive;
static char *logbuf;
static size_t loglen;

static void keep(void *p) {
    if (nlive == MAX_LIVE) _exit(6);
    live[nlive++] = p;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    __builtin_va_list ap;
    __builtin_va_start(ap, fmt);
    loglen += (size_t)vsnprintf(logbuf + loglen, 65536 - loglen, fmt, ap);
    __builtin_va_end(ap);
}

static void *halves(void *arg) {
    (void)arg;
    enum { N = 1024 }; /* two 64 KiB slabs of 128-byte blocks */
    static void *blocks[N];
    for (int i = 0; i < N; i++)
        if (!(blocks[i] = malloc(SMALL))) _exit(7);
    for (int i = 0; i < N; i += 2) free(blocks[i]);
    return NULL; /* the odd ones stay out: the slabs outlive the thread with blocks to hand out */
}

static pthread_barrier_t handed, done;
static void **stranded;
static long nstranded;

static void *holder(void *arg) {
    (void)arg;
    for (nstranded = 0; nstranded < (long)(STRANDED / MEDIUM); nstranded++)
        if (!(stranded[nstranded] = malloc(MEDIUM))) _exit(8);
    pthread_barrier_wait(&handed);
    pthread_barrier_wait(&done); /* alive and idle until the main thread is finished */
    return NULL;
}

static void *freer(void *arg) {
    (void)arg;
    for (long i = 0; i < nstranded; i++) free(stranded[i]);
    return NULL;
}

static void fill(size_t size) {
    void *p;
    while ((p = malloc(size))) keep(p);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: trace_decisions_program LOG\n");
        return 2;
    }
    live = mmap(NULL, MAX_LIVE * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    stranded = mmap(NULL, STRANDED / MEDIUM * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
    logbuf = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (live == MAP_FAILED || stranded == MAP_FAILED || logbuf == MAP_FAILED) return 4;
    void *old = malloc(100), *old2 = malloc(100); /* realloc's and reallocarray's blocks, before the cap is spent */
    if (!old || !old2) return 5;

    pthread_t t, a, b;
    if (pthread_create(&t, NULL, halves, NULL) || pthread_join(t, NULL)) return 3;
    keep(malloc(SMALL)); /* 1: the main thread's first refill of the class */

    pthread_barrier_init(&handed, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    if (pthread_create(&a, NULL, holder, NULL)) return 3;
    pthread_barrier_wait(&handed);
    if (pthread_create(&b, NULL, freer, NULL) || pthread_join(b, NULL)) return 3;
    fill(SMALL); /* 2 */

    /* 3: each call on a class filled first; the large path last. */
    void *p;
    fill(20480);
    if (!malloc(20000)) say("malloc(20000)\n");
    fill(10240);
    if (!calloc(10, 1000)) say("calloc(10, 1000)\n");
    fill(14336);
    unsigned long was = (unsigned long)old, was2 = (unsigned long)old2;
    if (!realloc(old, 14000)) say("realloc(%#lx, 14000)\n", was);
    fill(16384);
    if (!reallocarray(old2, 10, 1600)) say("reallocarray(%#lx, 10, 1600)\n", was2);
    fill(4096);
    if (posix_memalign(&p, 4096, 3000) != 0) say("posix_memalign(&p, 4096, 3000)\n");
    fill(2048);
    if (!aligned_alloc(64, 2000)) say("aligned_alloc(64, 2000)\n");
    fill(1024);
    if (!memalign(256, 1000)) say("memalign(256, 1000)\n");
    fill(65536);
    if (!valloc(100000)) say("valloc(100000)\n");
    if (!pvalloc(100000)) say("pvalloc(100000)\n");

    pthread_barrier_wait(&done);
    pthread_join(a, NULL);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, logbuf, loglen) != (ssize_t)loglen) return 3;
    close(fd);
    return 0;
}
