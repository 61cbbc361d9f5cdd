/* misuse.c — commits one allocation error per run (named by argv[1]) for the checked build to report; prints what the report must name. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/*
 * Linked against the C library's malloc and run with
 * LD_PRELOAD=libhakmem-debug.so. Before the faulty call it prints, one per
 * line, `ptr=<the pointer the report names>`, `block=<its block>` where the
 * report names one, and `tid=<the thread making the call>`; expect_report.sh
 * builds the expected stderr line from them. Facts go out with write(2):
 * nothing sits in a stdio buffer when abort() comes. Exit status 3 means the
 * call was accepted (no report); 2 means the scenario could not be set up.
 */

/* Pointers and sizes the compiler cannot reason about: no warning, no
 * folding away of the deliberate misuse. */
static void *opaque(void *p) {
    void *volatile v = p;
    return v;
}

static size_t opaque_size(size_t n) {
    volatile size_t v = n;
    return v;
}

static void say(const char *key, const void *p) {
    char line[64];
    int n = snprintf(line, sizeof line, "%s=%p\n", key, p);
    if (write(1, line, (size_t)n) != n) _exit(2);
}

static void say_tid(void) {
    char line[32];
    int n = snprintf(line, sizeof line, "tid=%ld\n", (long)syscall(SYS_gettid));
    if (write(1, line, (size_t)n) != n) _exit(2);
}

static void *must_malloc(size_t n) {
    void *p = malloc(opaque_size(n));
    if (!p) _exit(2);
    return p;
}

/* 120 bytes and their 8-byte trailer: class 4 (128 B). */
static void double_free(void) {
    char *p = must_malloc(120);
    free(p);
    say("ptr", p);
    say_tid();
    free(opaque(p));
}

static void *free_twice(void *p) {
    say_tid();
    free(p);
    free(opaque(p));
    return NULL;
}

/* Both frees remote: the report names the freeing thread, not the owner. */
static void double_free_remote(void) {
    char *p = must_malloc(120);
    say("ptr", p);
    pthread_t t;
    if (pthread_create(&t, NULL, free_twice, p) != 0) _exit(2);
    pthread_join(t, NULL);
}

static void foreign(void) {
    char local[64];
    memset(local, 0, sizeof local);
    say("ptr", local + 16);
    say_tid();
    free(opaque(local + 16));
}

/* A block start in a slab no thread has claimed: the 2048 B class (11) has
 * a block start at the same offset of the next slab. */
static void unallocated(void) {
    char *p = must_malloc(2000);
    char *q = p + 64 * 1024;
    if (((uintptr_t)p >> 21) != ((uintptr_t)q >> 21)) _exit(2); /* not in the same chunk */
    say("ptr", q);
    say_tid();
    free(opaque(q));
}

/* The block after the first of a fresh carve: carved, never handed out
 * (3000 B + trailer: class 13, 3072 B). */
static void unallocated_fresh(void) {
    char *p = must_malloc(3000);
    char *q = p + 3072;
    say("ptr", q);
    say_tid();
    free(opaque(q));
}

static void interior(void) {
    char *p = must_malloc(120);
    say("ptr", p + 8);
    say("block", p);
    say_tid();
    free(opaque(p + 8));
}

/* 110 bytes: class 4 too, with canary bytes between the request and the trailer. */
static void overflow(void) {
    char *p = must_malloc(110);
    ((char *)opaque(p))[110] = 'x';
    say("ptr", p);
    say_tid();
    free(p);
}

/* 240 bytes + trailer: class 5 (256 B). The freed block comes back after the
 * slab's other free blocks; the malloc that hands it out reports. */
static void use_after_free(void) {
    char *p = must_malloc(240);
    free(p);
    ((char *)opaque(p))[40] = 1;
    say("ptr", p);
    say_tid();
    for (int i = 0; i < 10000; i++)
        if (must_malloc(240) == p) _exit(3);
    _exit(2); /* the block never came back */
}

static void realloc_freed(void) {
    char *p = must_malloc(120);
    free(p);
    say("ptr", p);
    say_tid();
    void *q = realloc(opaque(p), opaque_size(200));
    (void)q;
}

/* The large path (above the medium classes' 1 MiB), and a medium class's span (200000 B + trailer: class 51,
 * 229376 B blocks in spans of 16 slabs), where 64 KiB into a block is a later slab of the span. */
#define LARGE_BYTES 2000000
#define MEDIUM_BYTES 200000

static void double_free_of(size_t n) {
    char *p = must_malloc(n);
    free(p);
    say("ptr", p);
    say_tid();
    free(opaque(p));
}

static void interior_of(size_t n, size_t off) {
    char *p = must_malloc(n);
    say("ptr", p + off);
    say("block", p);
    say_tid();
    free(opaque(p + off));
}

static void overflow_of(size_t n) {
    char *p = must_malloc(n);
    ((char *)opaque(p))[n] = 'x';
    say("ptr", p);
    say_tid();
    free(p);
}

static void large_double_free(void) { double_free_of(LARGE_BYTES); }
static void large_interior(void) { interior_of(LARGE_BYTES, 64); }
static void large_overflow(void) { overflow_of(LARGE_BYTES); }
static void medium_double_free(void) { double_free_of(MEDIUM_BYTES); }
static void medium_interior(void) { interior_of(MEDIUM_BYTES, 65536); }
static void medium_overflow(void) { overflow_of(MEDIUM_BYTES); }

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        void (*run)(void);
    } cases[] = {
        {"double_free", double_free},
        {"double_free_remote", double_free_remote},
        {"foreign", foreign},
        {"unallocated", unallocated},
        {"unallocated_fresh", unallocated_fresh},
        {"interior", interior},
        {"overflow", overflow},
        {"use_after_free", use_after_free},
        {"realloc_freed", realloc_freed},
        {"large_double_free", large_double_free},
        {"large_interior", large_interior},
        {"large_overflow", large_overflow},
        {"medium_double_free", medium_double_free},
        {"medium_interior", medium_interior},
        {"medium_overflow", medium_overflow},
    };
    for (size_t i = 0; argc == 2 && i < sizeof cases / sizeof *cases; i++) {
        if (strcmp(argv[1], cases[i].name) == 0) {
            cases[i].run();
            return 3; /* the misuse went unreported */
        }
    }
    fprintf(stderr, "usage: misuse CASE (double_free, foreign, interior, overflow, use_after_free, ...)\n");
    return 2;
}
