/* trace_oom_workload.c — threads (4 unless told) grow class-4 live sets until each has been refused K times; every NULL is logged with its gettid(). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAX_THREADS 8
#define MAX_LIVE (1 << 20)

static int log_fd;
static int refusals_wanted;
static pthread_barrier_t start;
static _Atomic long blocks_got; /* what the allocator handed out before and between the refusals */
/* A thread's live set filled without enough refusals. Every thread stops and main returns 5: an _exit from the
 * worker killed its siblings in the middle of their events, and `lttng destroy` of the session then hung (1 run
 * in about 90 of trace_parity's, under HAKMEM_FAULT_OS, where refusals are rare). */
static _Atomic bool overflowed;

/* One line per NULL, "tid size errno", written with one write() so lines never interleave. */
static void log_null(size_t size, int err) {
    char line[64];
    int n = snprintf(line, sizeof line, "%ld %zu %d\n", (long)syscall(SYS_gettid), size, err);
    if (write(log_fd, line, (size_t)n) != n) _exit(3);
}

static void *grow(void *arg) {
    (void)arg;
    /* The harness's own memory stays outside the allocator under test and its cap. */
    void **live = mmap(NULL, MAX_LIVE * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (live == MAP_FAILED) _exit(4);
    int n = 0, refused = 0;
    pthread_barrier_wait(&start);
    while (refused < refusals_wanted && !atomic_load(&overflowed)) {
        errno = 0;
        void *p = malloc(128);
        if (!p) {
            log_null(128, errno);
            refused++;
            continue;
        }
        memset(p, 0x5a, 128);
        live[n++] = p;
        if (n == MAX_LIVE) atomic_store(&overflowed, true); /* the cap never refused: the test's cap is too high */
    }
    atomic_fetch_add(&blocks_got, n);
    for (int i = 0; i < n; i++) free(live[i]);
    munmap(live, MAX_LIVE * sizeof(void *));
    return NULL;
}

/* With COUNT_FILE, writes "blocks N" there: under a cap with one thread and nothing freed before the end, N is
 * what the cap let the program have, so a traced run can be compared with an untraced one. */
int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: trace_oom_workload LOG REFUSALS_PER_THREAD [THREADS [COUNT_FILE]]\n");
        return 2;
    }
    log_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    refusals_wanted = atoi(argv[2]);
    int threads = argc >= 4 ? atoi(argv[3]) : 4;
    if (log_fd < 0 || refusals_wanted < 1 || threads < 1 || threads > MAX_THREADS) return 2;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    pthread_t t[MAX_THREADS];
    for (int i = 0; i < threads; i++) {
        /* pthread_create allocates (the new thread's TLS vector): a refusal there is a NULL of this thread's,
         * logged with size 0, and the run ends with status 7, for traced and untraced runs to compare. */
        int err = pthread_create(&t[i], NULL, grow, NULL);
        if (err) {
            log_null(0, err);
            _exit(7);
        }
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    if (atomic_load(&overflowed)) return 5;
    if (argc == 5) {
        int fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        char line[32];
        int n = snprintf(line, sizeof line, "blocks %ld\n", atomic_load(&blocks_got));
        if (fd < 0 || write(fd, line, (size_t)n) != n) return 6;
        close(fd);
    }
    return 0;
}
