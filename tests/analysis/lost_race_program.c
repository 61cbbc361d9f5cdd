/* lost_race_program.c — an OOM whose chunk expansion lost its race to another thread's expansion long before. */

/*
 * Run under libhakmem-trace.so (preloaded) with HAKMEM_TINY_MID_REFILL_SIMPLE=1 and
 * HAKMEM_FAULT_SUPERSLAB=every:3/27, recorded by `hakmem-trace record`. Every block is 32 KiB (class 27: one
 * block in slab 0, two in the others). The threads, one step at a time (main hands the turn on):
 *
 *   F  fills the class's first chunk X (its first refill makes X: the class's first superslab_allocate), one
 *      slab per refill, until its blocks lie in all 32 slabs of X.
 *   C  refills: X is full, so it expands — and is held inside the mmap (or the chunk window's mprotect) of the
 *      new chunk Y (the class's second superslab_allocate), with the head's lock taken.
 *   A  refills: X is full, so it expands too and waits for the head's lock. Once A waits, C's mmap goes on: C
 *      makes Y current, unlocks and claims a slab of Y (its chunk_expand new_chunk is in the trace now). A gets
 *      the lock, finds the current chunk moved past X (lost_race), and is held in the futex wake of its unlock,
 *      before it emits that chunk_expand.
 *   N  meanwhile emits at least NOISE_REFILLS refills on the class (claiming a slab of Y, then giving the
 *      previous one back: Y never fills, no expansion) for at least 1 ms, then claims every free slab of Y.
 *   A  is let go: it emits its lost_race, finds Y full, expands and the class's third superslab_allocate is
 *      refused (injected): malloc returns NULL.
 *
 * So A's OOM path holds a lost expansion race whose winner (C's new_chunk) lies more than 3 * NOISE_REFILLS
 * events of other threads on this class and more than 1 ms before it. The holds are made with seccomp user
 * notifications (the kernel stops the call until the supervisor thread answers it): C's mmap calls and A's
 * futex calls reach the supervisor, which lets every other one go on at once. Nothing waits on time.
 *
 * usage: lost_race_program OUTFILE
 * OUTFILE gets "pid PID", "role tid" lines for F, C, A, N, then "chunk X 0x.. Y 0x..", then "null ERRNO" (A's NULL).
 * Exit status 0 when A got NULL with ENOMEM; 3 when a seccomp listener cannot be had; others: a step failed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/futex.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#else
#error "lost_race_program: no seccomp architecture for this target"
#endif

#define BLOCK 32768u
#define CHUNK ((uintptr_t)2 << 20)
#define SLAB ((uintptr_t)64 << 10)
#define SLABS 32
#define NOISE_REFILLS 400 /* 3 events each: well past any fixed window of recent events */
#define NOISE_NS 1000000  /* and at least this long */
#define MAX_BLOCKS 128

static void die(int status, const char *what) {
    char line[160];
    int n = snprintf(line, sizeof line, "lost_race_program: %s (errno %d)\n", what, errno);
    if (write(2, line, (size_t)n) < 0) _exit(status);
    _exit(status);
}

static long gettid_(void) {
    return (long)syscall(SYS_gettid);
}

static uintptr_t chunk_of(void *p) {
    return (uintptr_t)p & ~(CHUNK - 1);
}

static unsigned slab_of(void *p) {
    return (unsigned)(((uintptr_t)p - chunk_of(p)) / SLAB);
}

/* ---- turns: main hands the turn to one thread at a time ---- */

enum { T_NONE, T_F, T_C, T_A, T_N, T_A_END, T_EXIT };
static pthread_mutex_t turn_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t turn_cond = PTHREAD_COND_INITIALIZER;
static int turn = T_NONE, done = T_NONE;

static void give_turn(int t) {
    pthread_mutex_lock(&turn_lock);
    turn = t;
    pthread_cond_broadcast(&turn_cond);
    pthread_mutex_unlock(&turn_lock);
}

static void wait_turn(int t) {
    pthread_mutex_lock(&turn_lock);
    while (turn != t && turn != T_EXIT) pthread_cond_wait(&turn_cond, &turn_lock);
    pthread_mutex_unlock(&turn_lock);
}

static void turn_done(int t) {
    pthread_mutex_lock(&turn_lock);
    done = t;
    pthread_cond_broadcast(&turn_cond);
    pthread_mutex_unlock(&turn_lock);
}

static void wait_done(int t) {
    pthread_mutex_lock(&turn_lock);
    while (done != t) pthread_cond_wait(&turn_cond, &turn_lock);
    pthread_mutex_unlock(&turn_lock);
}

/* ---- the supervisor: answers the seccomp notifications of A (futex) and C (mmap) ---- */

static int ctl_pipe[2];   /* to the supervisor: a listener fd (4 bytes, tagged by the first), or a command */
static int event_pipe[2]; /* from the supervisor: 'C' (C held in its chunk's mmap), 'A' (A held after losing) */
static _Atomic int c_armed, a_armed;

static void answer(int fd, uint64_t id) {
    struct seccomp_notif_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.id = id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    /* ENOENT: the caller is gone (a signal interrupted the call): nothing to answer. */
    if (ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno != ENOENT) die(10, "NOTIF_SEND");
}

static void tell_main(char what) {
    if (write(event_pipe[1], &what, 1) != 1) die(11, "event pipe");
}

static void *supervise(void *arg) {
    (void)arg;
    int fd_a = -1, fd_c = -1;
    uint64_t held_c = 0, held_a = 0;
    bool have_c = false, have_a = false, a_waited = false;
    for (;;) {
        struct pollfd p[3] = {{ctl_pipe[0], POLLIN, 0}, {fd_a, POLLIN, 0}, {fd_c, POLLIN, 0}};
        if (poll(p, 3, -1) < 0) {
            if (errno == EINTR) continue;
            die(12, "poll");
        }
        if (p[0].revents & POLLIN) {
            char cmd[1];
            if (read(ctl_pipe[0], cmd, 1) != 1) die(13, "ctl pipe");
            if (cmd[0] == 'a' || cmd[0] == 'c') {
                int fd;
                if (read(ctl_pipe[0], &fd, sizeof fd) != sizeof fd) die(13, "ctl pipe");
                if (cmd[0] == 'a') fd_a = fd;
                else fd_c = fd;
            } else if (cmd[0] == 'R') { /* let A go on */
                if (!have_a) die(14, "release of A, which is not held");
                have_a = false;
                answer(fd_a, held_a);
            } else if (cmd[0] == 'Q') {
                return NULL;
            }
        }
        for (int i = 1; i < 3; i++) {
            int fd = i == 1 ? fd_a : fd_c;
            if (fd < 0) continue;
            if (p[i].revents & (POLLHUP | POLLERR | POLLNVAL)) { /* its thread has exited */
                close(fd);
                if (i == 1) fd_a = -1;
                else fd_c = -1;
                continue;
            }
            if (!(p[i].revents & POLLIN)) continue;
            struct seccomp_notif n;
            memset(&n, 0, sizeof n);
            if (ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) {
                if (errno == ENOENT || errno == EINTR) continue;
                die(15, "NOTIF_RECV");
            }
            if (i == 2) {
                /* C's first mapping (or window slot made writable) of a chunk's size once armed:
                 * superslab_allocate, head lock held. */
                if (atomic_load(&c_armed) && !have_c && n.data.args[1] >= CHUNK) {
                    atomic_store(&c_armed, 0);
                    have_c = true;
                    held_c = n.id;
                    tell_main('C');
                    continue;
                }
                answer(fd, n.id);
                continue;
            }
            int op = (int)(n.data.args[1] & FUTEX_CMD_MASK);
            if (atomic_load(&a_armed) && (op == FUTEX_WAIT || op == FUTEX_WAIT_BITSET) && have_c) {
                /* A waits for the head's lock, C's expansion holding it: C goes on (A wakes when it unlocks). */
                a_waited = true;
                answer(fd, n.id);
                have_c = false;
                answer(fd_c, held_c);
                continue;
            }
            if (atomic_load(&a_armed) && op == FUTEX_WAKE && a_waited) {
                /* A unlocks the head after its lost race: held until main says so. */
                atomic_store(&a_armed, 0);
                have_a = true;
                held_a = n.id;
                tell_main('A');
                continue;
            }
            answer(fd, n.id);
        }
    }
}

/* The calling thread's calls of syscalls nr and nr2 go to the supervisor from now on. */
static void listen_to(long nr, long nr2, char tag) {
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 1, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(3, "PR_SET_NO_NEW_PRIVS");
    int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (fd < 0) die(3, "seccomp user notification listener");
    char msg[1 + sizeof fd];
    msg[0] = tag;
    memcpy(msg + 1, &fd, sizeof fd);
    if (write(ctl_pipe[1], msg, sizeof msg) != (ssize_t)sizeof msg) die(13, "ctl pipe");
}

/* ---- the threads ---- */

static long tid_f, tid_c, tid_a, tid_n;
static void *block_c;   /* C's block, in Y */
static uintptr_t chunk_x;
static int null_errno = -1;
static void *null_block = (void *)1;

static void warm_up(void) {
    /* The thread's heap and its first events (lttng-ust's per-thread state) before anything is held. */
    void *p = malloc(64);
    if (!p) die(20, "warm-up malloc");
    free(p);
}

static void *thread_f(void *arg) {
    (void)arg;
    tid_f = gettid_();
    warm_up();
    wait_turn(T_F);
    static void *held[MAX_BLOCKS];
    uint32_t slabs = 0;
    int n = 0;
    while (slabs != UINT32_MAX) {
        if (n == MAX_BLOCKS) die(21, "F: X never filled");
        void *p = held[n++] = malloc(BLOCK);
        if (!p) die(21, "F: malloc");
        if (!chunk_x) chunk_x = chunk_of(p);
        if (chunk_of(p) != chunk_x) die(21, "F: a block outside X");
        slabs |= 1u << slab_of(p);
    }
    turn_done(T_F);
    wait_turn(T_EXIT);
    for (int i = 0; i < n; i++) free(held[i]);
    return NULL;
}

static void *thread_c(void *arg) {
    (void)arg;
    tid_c = gettid_();
    warm_up();
    listen_to(SYS_mmap, SYS_mprotect, 'c'); /* a chunk apart is mapped, a slot of the chunk window made writable */
    wait_turn(T_C);
    block_c = malloc(BLOCK); /* held in the mapping of Y until A waits for the lock */
    if (!block_c || chunk_of(block_c) == chunk_x) die(22, "C: no block in a new chunk");
    turn_done(T_C);
    wait_turn(T_EXIT);
    free(block_c);
    return NULL;
}

static void *thread_a(void *arg) {
    (void)arg;
    tid_a = gettid_();
    warm_up();
    listen_to(SYS_futex, SYS_futex, 'a');
    wait_turn(T_A);
    atomic_store(&a_armed, 1);
    errno = 0;
    null_block = malloc(BLOCK); /* held after its lost race until N is done */
    null_errno = errno;
    turn_done(T_A_END);
    wait_turn(T_EXIT);
    free(null_block);
    return NULL;
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void *thread_n(void *arg) {
    (void)arg;
    tid_n = gettid_();
    warm_up();
    wait_turn(T_N);
    uintptr_t y = chunk_of(block_c);
    static void *cur[MAX_BLOCKS];
    int ncur = 0, refills = 0;
    uint64_t start = now_ns();
    /* Refills on Y, giving the previous slab back each time: Y keeps free slabs, nobody expands. */
    while (refills < NOISE_REFILLS || now_ns() - start < NOISE_NS) {
        void *p = malloc(BLOCK);
        if (!p || chunk_of(p) != y) die(23, "N: a noise block outside Y");
        if (ncur && slab_of(p) != slab_of(cur[0])) { /* a refill gave a new slab: the old one goes back */
            for (int i = 0; i < ncur; i++) free(cur[i]);
            ncur = 0;
            refills++;
        }
        if (ncur == MAX_BLOCKS) die(23, "N: a slab of too many blocks");
        cur[ncur++] = p;
    }
    /* Then every free slab of Y: N's blocks and C's in all 32. */
    static void *fill[MAX_BLOCKS];
    int nfill = 0;
    uint32_t slabs = 1u << slab_of(block_c) | 1u << slab_of(cur[0]);
    while (slabs != UINT32_MAX) {
        if (nfill == MAX_BLOCKS) die(23, "N: Y never filled");
        void *p = fill[nfill++] = malloc(BLOCK);
        if (!p || chunk_of(p) != y) die(23, "N: a fill block outside Y");
        slabs |= 1u << slab_of(p);
    }
    turn_done(T_N);
    wait_turn(T_EXIT);
    for (int i = 0; i < ncur; i++) free(cur[i]);
    for (int i = 0; i < nfill; i++) free(fill[i]);
    return NULL;
}

static void wait_event(char want) {
    char got;
    if (read(event_pipe[0], &got, 1) != 1 || got != want) die(30, "supervisor event");
}

static void command(char c) {
    if (write(ctl_pipe[1], &c, 1) != 1) die(13, "ctl pipe");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: lost_race_program OUTFILE\n");
        return 2;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out || pipe(ctl_pipe) != 0 || pipe(event_pipe) != 0) die(2, "setup");
    pthread_t s, t[4];
    void *(*body[4])(void *) = {thread_f, thread_c, thread_a, thread_n};
    if (pthread_create(&s, NULL, supervise, NULL) != 0) die(2, "pthread_create");
    for (int i = 0; i < 4; i++)
        if (pthread_create(&t[i], NULL, body[i], NULL) != 0) die(2, "pthread_create");

    give_turn(T_F);
    wait_done(T_F);
    atomic_store(&c_armed, 1);
    give_turn(T_C);
    wait_event('C'); /* C holds the head's lock, in the mapping of Y */
    give_turn(T_A);
    wait_event('A'); /* A lost the race, and is held */
    wait_done(T_C);
    give_turn(T_N);
    wait_done(T_N);
    command('R');
    wait_done(T_A_END);
    give_turn(T_EXIT);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    command('Q');
    pthread_join(s, NULL);

    fprintf(out, "pid %ld\nF %ld\nC %ld\nA %ld\nN %ld\n", (long)getpid(), tid_f, tid_c, tid_a, tid_n);
    fprintf(out, "chunk X %#lx Y %#lx\n", (unsigned long)chunk_x, (unsigned long)chunk_of(block_c));
    fprintf(out, "null %d\n", null_block ? -1 : null_errno);
    if (fclose(out) != 0) die(2, "write OUTFILE");
    return null_block == NULL && null_errno == ENOMEM ? 0 : 1;
}
