/* grow.c — growing arrays: each thread doubles a buffer by realloc up to --max-mib, a neighbour block mapped after each step, every new page written. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>

/*
 * Vectors, string builders, hash tables that rehash: a buffer that grows by
 * realloc to its final size, while the program allocates other big blocks
 * meanwhile, so the range right after the buffer is often taken and it cannot
 * grow where it is. Each op is one growth step: realloc to twice the size,
 * then one byte written in every new 4 KiB page (the old ones keep their
 * contents, checked at the end of each buffer's life). An allocator either
 * copies the old contents to a new block (and faults every page of it in), or
 * moves the pages (mremap) and copies nothing. The neighbours (--neighbour-kib
 * each, one per step) are freed with the buffer.
 */

#define PAGE 4096u
#define KIB 1024u
#define STEPS_MAX 40

struct grow_thread {
    uint64_t ops;
};

static uint64_t opt_threads = 1, opt_ops = 600, opt_start_kib = 256, opt_max_mib = 256, opt_neighbour_kib = 3072;

/* One buffer's life: from --start-kib to --max-mib, a neighbour per step; returns the steps it made. */
static uint64_t grow_once(uint64_t steps_left)
{
    size_t size = (size_t)opt_start_kib * KIB, max = (size_t)opt_max_mib * KIB * KIB;
    unsigned char *buf = bench_malloc(size);
    for (size_t off = 0; off < size; off += PAGE)
        buf[off] = (unsigned char)(off >> 12);
    void *neighbour[STEPS_MAX];
    uint64_t steps = 0;
    while (size * 2 <= max && steps < steps_left && steps < STEPS_MAX) {
        neighbour[steps] = bench_malloc((size_t)opt_neighbour_kib * KIB);
        ((unsigned char *)neighbour[steps])[0] = 1;
        unsigned char *bigger = realloc(buf, size * 2);
        if (!bigger) {
            fprintf(stderr, "grow: realloc to %zu B returned NULL\n", size * 2);
            exit(1);
        }
        buf = bigger;
        for (size_t off = size; off < size * 2; off += PAGE)
            buf[off] = (unsigned char)(off >> 12);
        size *= 2;
        steps++;
    }
    for (size_t off = 0; off < size; off += PAGE)
        if (buf[off] != (unsigned char)(off >> 12)) {
            fprintf(stderr, "grow: byte %zu of a grown buffer changed\n", off);
            exit(1);
        }
    free(buf);
    for (uint64_t s = 0; s < steps; s++)
        free(neighbour[s]);
    return steps;
}

static void *grow_thread(void *arg)
{
    struct grow_thread *t = arg;
    for (uint64_t done = 0; done < t->ops;)
        done += grow_once(t->ops - done);
    return NULL;
}

int main(int argc, char **argv)
{
    const struct bench_opt opts[] = {
        {"threads", &opt_threads, "worker threads"},
        {"ops", &opt_ops, "growth steps (realloc to twice the size), split over the threads"},
        {"start-kib", &opt_start_kib, "a buffer's first size in KiB"},
        {"max-mib", &opt_max_mib, "a buffer's last size in MiB (then it is freed and a new one starts)"},
        {"neighbour-kib", &opt_neighbour_kib, "the block malloc'd before each step, in KiB"},
        {NULL, NULL, NULL},
    };
    bench_parse(argc, argv, "grow", "Buffers doubled by realloc with a neighbour mapped after each step.", opts);
    if (opt_threads < 1 || opt_threads > 1024 || opt_start_kib < 4 || opt_max_mib < 1 || opt_max_mib > 4000 ||
        opt_start_kib * 2 > opt_max_mib * KIB || opt_neighbour_kib < 1) {
        fprintf(stderr, "grow: need 1 <= threads <= 1024, 4 <= start-kib, 2 * start-kib <= max-mib <= 4000 MiB\n");
        return 2;
    }
    unsigned n = (unsigned)opt_threads;
    struct grow_thread *threads = bench_malloc(n * sizeof *threads);
    for (unsigned i = 0; i < n; i++)
        threads[i] = (struct grow_thread){.ops = bench_share(opt_ops, i, n)};
    double t0 = bench_now();
    bench_run_threads(n, grow_thread, threads, sizeof *threads);
    double seconds = bench_now() - t0;
    char extra[96];
    snprintf(extra, sizeof extra, "start_kib=%llu max_mib=%llu neighbour_kib=%llu", (unsigned long long)opt_start_kib,
             (unsigned long long)opt_max_mib, (unsigned long long)opt_neighbour_kib);
    bench_report("grow", n, opt_ops, seconds, extra);
    free(threads);
    return 0;
}
