/* trace_oom_workload.c — 4 threads grow class-4 live sets until each has been refused K times; every NULL is logged with its gettid(). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 4
#define MAX_LIVE (1 << 20)

static int log_fd;
static int refusals_wanted;
static pthread_barrier_t start;

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
    while (refused < refusals_wanted) {
        errno = 0;
        void *p = malloc(128);
        if (!p) {
            log_null(128, errno);
            refused++;
            continue;
        }
        memset(p, 0x5a, 128);
        if (n == MAX_LIVE) _exit(5); /* the cap never refused: the test's cap is too high */
        live[n++] = p;
    }
    for (int i = 0; i < n; i++) free(live[i]);
    munmap(live, MAX_LIVE * sizeof(void *));
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: trace_oom_workload LOG REFUSALS_PER_THREAD\n");
        return 2;
    }
    log_fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
    refusals_wanted = atoi(argv[2]);
    if (log_fd < 0 || refusals_wanted < 1) return 2;
    pthread_barrier_init(&start, NULL, THREADS);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, grow, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    return 0;
}
