/* trace_spread_program.c — OOMs spread over time: bursts of refused mallocs a little over a second apart, for the flight recorder's re-armed snapshots. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/*
 * Under a cap: 128-byte blocks to their first NULL, then ROUNDS bursts of BURST more 128-byte mallocs (each
 * refused: the cap is spent and nothing is freed), 1.1 s apart, so that each burst's first OOM comes more than a
 * second after the previous cue and cues a snapshot of its own. Writes how many NULLs it got to LOG. The pause
 * only paces the workload; nothing is asserted about time.
 */
#define MAX_LIVE (1 << 20)

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: trace_spread_program ROUNDS BURST LOG\n");
        return 2;
    }
    int rounds = atoi(argv[1]), burst = atoi(argv[2]);
    void **live = mmap(NULL, MAX_LIVE * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (live == MAP_FAILED) return 4;
    long n = 0, nulls = 0;
    void *p;
    while ((p = malloc(128))) {
        if (n == MAX_LIVE) return 6; /* the cap never refused */
        live[n++] = p;
    }
    nulls++;
    const struct timespec pause = {.tv_sec = 1, .tv_nsec = 100 * 1000 * 1000};
    for (int r = 0; r < rounds; r++) {
        nanosleep(&pause, NULL);
        for (int i = 0; i < burst; i++) {
            if ((p = malloc(128))) return 5; /* nothing was freed: the cap still refuses */
            nulls++;
        }
    }
    char text[32];
    int len = snprintf(text, sizeof text, "%ld\n", nulls);
    int fd = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, (size_t)len) != len) return 3;
    close(fd);
    return 0;
}
