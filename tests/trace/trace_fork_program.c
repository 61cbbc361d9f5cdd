/* trace_fork_program.c — dlopen, 4 allocating threads and a fork without exec, through the plain malloc names.
 *
 * Run by test_fork.py under `hakmem-trace record` (LD_PRELOAD of libhakmem-trace.so and
 * liblttng-ust-fork.so). Usage: trace_fork_program CHILD_PID_FILE PARENT_PID_FILE
 *
 *  - writes getpid() to PARENT_PID_FILE;
 *  - dlopen()s libm.so.6 (not linked in) and calls cos through dlsym;
 *  - starts WORKERS threads; each keeps SMALL_BLOCKS 128-byte and MID_BLOCKS 2048-byte
 *    blocks live at once (so every one of them refills many times: a 64 KiB slab holds
 *    at most 512 and 32 of them), checks their patterns, frees them, and does it again
 *    after the fork;
 *  - forks while the workers hold their blocks; the child (a new process: its heap is the
 *    forking thread's only, the workers' slabs are abandoned) keeps CHILD_BLOCKS 100-byte
 *    blocks live, checks and frees them, writes its getpid() to CHILD_PID_FILE and _exit(0)s;
 *  - waits for the child (exit status 0 required), joins the workers, exits 0.
 * Any failure prints one line to stderr and exits 1.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define WORKERS 4
#define SMALL_BLOCKS 20000
#define SMALL_SIZE 128
#define MID_BLOCKS 4000
#define MID_SIZE 2048
#define CHILD_BLOCKS 50000
#define CHILD_SIZE 120

#define DIE(...)                                                                                                       \
    do {                                                                                                               \
        fprintf(stderr, "trace_fork_program: " __VA_ARGS__);                                                           \
        fputc('\n', stderr);                                                                                           \
        exit(1);                                                                                                       \
    } while (0)

/* In the child only async-signal-safe reporting: no stdio after a multithreaded fork. */
static _Noreturn void child_die(const char *msg) {
    (void)!write(2, msg, strlen(msg));
    _exit(1);
}

static pthread_barrier_t forked; /* the workers and main: blocks allocated, then the fork happens */

static int write_pid(const char *path, pid_t pid) {
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%ld\n", (long)pid);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int ok = write(fd, buf, (size_t)n) == n;
    return close(fd) == 0 && ok ? 0 : -1;
}

/* Allocate n blocks of size bytes, all live at once, each filled with its own byte; then check and free them. */
static int churn(unsigned char **blocks, int n, size_t size, unsigned salt) {
    for (int i = 0; i < n; i++) {
        blocks[i] = malloc(size);
        if (!blocks[i]) return -1;
        memset(blocks[i], (int)((i + salt) & 0xff), size);
    }
    return 0;
}

static int check_and_free(unsigned char **blocks, int n, size_t size, unsigned salt) {
    int bad = 0;
    for (int i = 0; i < n; i++) {
        unsigned char want = (unsigned char)((i + salt) & 0xff);
        if (blocks[i][0] != want || blocks[i][size - 1] != want) bad = 1;
        free(blocks[i]);
    }
    return bad ? -1 : 0;
}

static void *worker(void *arg) {
    unsigned id = (unsigned)(uintptr_t)arg;
    unsigned char **small = malloc(sizeof(*small) * SMALL_BLOCKS);
    unsigned char **mid = malloc(sizeof(*mid) * MID_BLOCKS);
    if (!small || !mid) DIE("worker %u: no memory for the block arrays", id);
    for (int round = 0; round < 2; round++) {
        unsigned salt = id * 7 + (unsigned)round;
        if (churn(small, SMALL_BLOCKS, SMALL_SIZE, salt) || churn(mid, MID_BLOCKS, MID_SIZE, salt))
            DIE("worker %u: malloc returned NULL (errno %d)", id, errno);
        if (round == 0) pthread_barrier_wait(&forked); /* main forks while these blocks are live */
        if (check_and_free(small, SMALL_BLOCKS, SMALL_SIZE, salt) || check_and_free(mid, MID_BLOCKS, MID_SIZE, salt))
            DIE("worker %u: a block was overwritten", id);
    }
    free(small);
    free(mid);
    return NULL;
}

static _Noreturn void child_main(const char *pid_file) {
    unsigned char **blocks = malloc(sizeof(*blocks) * CHILD_BLOCKS);
    if (!blocks) child_die("trace_fork_program: child: no memory for the block array\n");
    if (churn(blocks, CHILD_BLOCKS, CHILD_SIZE, 3)) child_die("trace_fork_program: child: malloc returned NULL\n");
    if (check_and_free(blocks, CHILD_BLOCKS, CHILD_SIZE, 3))
        child_die("trace_fork_program: child: a block was overwritten\n");
    free(blocks);
    if (write_pid(pid_file, getpid())) child_die("trace_fork_program: child: cannot write its pid file\n");
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: trace_fork_program CHILD_PID_FILE PARENT_PID_FILE\n");
        return 2;
    }
    if (write_pid(argv[2], getpid())) DIE("cannot write %s: %s", argv[2], strerror(errno));

    void *libm = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
    if (!libm) DIE("dlopen(libm.so.6): %s", dlerror());
    double (*cosine)(double) = (double (*)(double))dlsym(libm, "cos");
    if (!cosine) DIE("dlsym(cos): %s", dlerror());
    if (cosine(0.0) != 1.0) DIE("cos(0) from libm.so.6 is not 1");

    if (pthread_barrier_init(&forked, NULL, WORKERS + 1)) DIE("pthread_barrier_init");
    pthread_t tids[WORKERS];
    for (unsigned t = 0; t < WORKERS; t++)
        if (pthread_create(&tids[t], NULL, worker, (void *)(uintptr_t)t)) DIE("pthread_create");

    pthread_barrier_wait(&forked);
    fflush(NULL);
    pid_t child = fork();
    if (child < 0) DIE("fork: %s", strerror(errno));
    if (child == 0) child_main(argv[1]);

    int status;
    pid_t got;
    do got = waitpid(child, &status, 0);
    while (got < 0 && errno == EINTR);
    if (got != child) DIE("waitpid: %s", strerror(errno));
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        DIE("the child %ld ended with status %#x, want exit 0", (long)child, status);

    for (unsigned t = 0; t < WORKERS; t++)
        if (pthread_join(tids[t], NULL)) DIE("pthread_join");
    if (dlclose(libm)) DIE("dlclose: %s", dlerror());
    printf("trace_fork_program: parent %ld, child %ld, %d workers: ok\n", (long)getpid(), (long)child, WORKERS);
    return 0;
}
