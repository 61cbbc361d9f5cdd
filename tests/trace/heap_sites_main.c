/* heap_sites_main.c — three threads fill the heap 6:3:1 through three call sites until one gets NULL, then print the truth as JSON. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "heap_sites.h"

/* Variants (CMake targets from this one source): HEAP_SITES_DLOPEN takes the sites from the module named by
 * argv[1], loaded after the threads exist; HEAP_SITES_FORK does the work in a forked child. */
#ifndef HEAP_SITES_DLOPEN
#define HEAP_SITES_DLOPEN 0
#endif
#ifndef HEAP_SITES_FORK
#define HEAP_SITES_FORK 0
#endif

enum { BIG, MID, SMALL, SITES };
static const char *const site_names[SITES] = {"alloc_big", "alloc_mid", "alloc_small"};
/* Blocks per round: the live heap's shares are 60 %, 30 % and 10 % whenever the NULL comes. */
static const int blocks_per_round[SITES] = {6, 3, 1};
/* Without a cap nothing would refuse: stop there and say so rather than fill the machine. */
#define MAX_TOTAL_BYTES ((size_t)1 << 30)

static heap_site_fn site_fn[SITES];
static struct heap_site site[SITES];
static pthread_barrier_t start, turn;
static atomic_int failed_site = -1;
static atomic_size_t total_bytes;
/* The failing call's two callers: where take_turn called the site, where grow called take_turn. */
static int take_turn_line, grow_line;

static int refused(int s, int call_line, int caller_line)
{
    take_turn_line = call_line;
    grow_line = caller_line;
    atomic_store(&failed_site, s);
    return 1;
}

/* This thread's blocks of one round; 1 when one came back NULL (noted for the truth). */
__attribute__((noinline)) static int take_turn(int s, int caller_line)
{
    for (int i = 0; i < blocks_per_round[s]; i++) {
        if (!site_fn[s](&site[s])) return refused(s, __LINE__, caller_line);
        atomic_fetch_add(&total_bytes, HEAP_SITE_BLOCK);
    }
    return 0;
}

/* Rounds in lockstep, one thread's turn at a time: the first NULL is one site's, and after it nobody allocates,
 * so the heap at the first OOM is exactly what the sites hold. */
__attribute__((noinline)) static void grow(int s)
{
    for (;;) {
        for (int t = 0; t < SITES; t++) {
            if (t == s && atomic_load(&total_bytes) < MAX_TOTAL_BYTES) take_turn(s, __LINE__);
            pthread_barrier_wait(&turn);
            int stop = atomic_load(&failed_site) >= 0 || atomic_load(&total_bytes) >= MAX_TOTAL_BYTES;
            /* Everyone has read this turn's outcome before the next turn can change it. */
            pthread_barrier_wait(&turn);
            if (stop) return;
        }
    }
}

static void *worker(void *arg)
{
    int s = (int)(long)arg;
    pthread_barrier_wait(&start);
    grow(s);
    return NULL;
}

#if !HEAP_SITES_DLOPEN
static void resolve_sites(const char *module)
{
    (void)module;
    site_fn[BIG] = alloc_big;
    site_fn[MID] = alloc_mid;
    site_fn[SMALL] = alloc_small;
}
#else
static void resolve_sites(const char *module)
{
    void *handle = module ? dlopen(module, RTLD_NOW) : NULL;
    if (!handle) {
        fprintf(stderr, "heap_sites: cannot dlopen %s: %s\n", module ? module : "(no module given)", dlerror());
        exit(2);
    }
    for (int s = 0; s < SITES; s++) {
        *(void **)&site_fn[s] = dlsym(handle, site_names[s]);
        if (!site_fn[s]) {
            fprintf(stderr, "heap_sites: %s has no %s\n", module, site_names[s]);
            exit(2);
        }
    }
}
#endif

/* One JSON line on stdout, formatted into static memory: the heap is full when it is printed. */
static int print_truth(void)
{
    static char line[8192];
    int f = atomic_load(&failed_site);
    size_t n = (size_t)snprintf(line, sizeof line, "{\"pid\": %d, \"block\": %d, \"sites\": [", (int)getpid(),
                                HEAP_SITE_BLOCK);
    for (int s = 0; s < SITES; s++)
        n += (size_t)snprintf(line + n, sizeof line - n,
                              "%s{\"function\": \"%s\", \"file\": \"%s\", \"line\": %d, "
                              "\"blocks\": %zu, \"bytes\": %zu}",
                              s ? ", " : "", site[s].function, site[s].file, site[s].line, site[s].blocks,
                              site[s].blocks * HEAP_SITE_BLOCK);
    n += (size_t)snprintf(line + n, sizeof line - n,
                          "], \"failed\": \"%s\", \"failing_stack\": [{\"function\": \"%s\", \"file\": \"%s\", "
                          "\"line\": %d}, {\"function\": \"take_turn\", \"file\": \"%s\", \"line\": %d}, "
                          "{\"function\": \"grow\", \"file\": \"%s\", \"line\": %d}]}\n",
                          site_names[f], site[f].function, site[f].file, site[f].line, __FILE__, take_turn_line,
                          __FILE__, grow_line);
    return write(STDOUT_FILENO, line, n) == (ssize_t)n ? 0 : 3;
}

static int run(const char *module)
{
    pthread_t threads[SITES];
    pthread_barrier_init(&start, NULL, SITES + 1);
    pthread_barrier_init(&turn, NULL, SITES);
    for (int s = 0; s < SITES; s++) {
        if (pthread_create(&threads[s], NULL, worker, (void *)(long)s) != 0) {
            fprintf(stderr, "heap_sites: pthread_create failed\n");
            return 2;
        }
    }
    resolve_sites(module);
    pthread_barrier_wait(&start);
    for (int s = 0; s < SITES; s++) pthread_join(threads[s], NULL);
    if (atomic_load(&failed_site) < 0) {
        fprintf(stderr, "heap_sites: %zu bytes and no NULL: set HAKMEM_MAX_MEMORY\n", atomic_load(&total_bytes));
        return 4;
    }
    return print_truth();
}

int main(int argc, char **argv)
{
    const char *module = argc > 1 ? argv[1] : NULL;
    if (!HEAP_SITES_FORK) return run(module);
    pid_t child = fork();
    if (child < 0) {
        perror("heap_sites: fork");
        return 2;
    }
    if (child == 0) _exit(run(module));
    int status;
    if (waitpid(child, &status, 0) != child) return 2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
