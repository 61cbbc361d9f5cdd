/* trace_census_program.c — one thread holds known live sets in three classes and grows one of them to its first NULL, then says what it held. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_LIVE (1 << 20)

/* The three sets: their block sizes are the classes' (128, 256 and 1024 bytes), so the bytes they hold are known. */
static const struct {
    unsigned class_idx;
    size_t request, block;
    long fixed; /* blocks held before the growing set starts; -1: the set that grows to the NULL */
} sets[] = {{7, 1000, 1024, 2048}, {5, 240, 256, 4096}, {4, 128, 128, -1}};
#define SETS (sizeof sets / sizeof sets[0])

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: trace_census_program TRUTH_FILE\n");
        return 2;
    }
    /* The harness's own memory stays outside the allocator under test and its cap. */
    void **live = mmap(NULL, MAX_LIVE * sizeof(void *), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (live == MAP_FAILED) return 4;
    long held[SETS] = {0}, n = 0;
    for (unsigned s = 0; s < SETS; s++) {
        for (long i = 0; sets[s].fixed < 0 || i < sets[s].fixed; i++) {
            void *p = malloc(sets[s].request);
            if (!p) {
                if (sets[s].fixed >= 0) return 5; /* the cap is too low for the fixed sets */
                break;
            }
            memset(p, 0x5a, sets[s].request);
            if (n == MAX_LIVE) return 6; /* the cap never refused */
            live[n++] = p;
            held[s]++;
        }
    }
    /* What it held at its NULL, per class: "CLASS BYTES" lines (written with write(): no stdio buffer). */
    char text[256];
    int len = 0;
    for (unsigned s = 0; s < SETS; s++)
        len += snprintf(text + len, sizeof text - (size_t)len, "%u %zu\n", sets[s].class_idx,
                        (size_t)held[s] * sets[s].block);
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, (size_t)len) != len) return 3;
    close(fd);
    for (long i = 0; i < n; i++) free(live[i]);
    return 0;
}
