/* trace_hygiene_program.c — a small traced program that waits, mid-recording, for test_record_hygiene.py to say
 * how it ends.
 *
 * Usage: trace_hygiene_program READY_FIFO GO_FIFO
 * Allocates and frees blocks of a few size classes (refills: hakmem events to record), writes one byte to
 * READY_FIFO (the test then knows the recording is under way: no sleeping and hoping), and blocks reading one
 * byte from GO_FIFO: 'a' makes it abort(), anything else or end of file exit 0. A signal the test sends meanwhile
 * finds it blocked. Errors: a line on stderr, exit 1.
 * Built twice: trace_hygiene_program (malloc from the preloaded libhakmem-trace.so) and
 * trace_hygiene_program_static (statically linked: LD_PRELOAD never reaches it, so it runs untraced).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void allocate(void) {
    static void *blocks[4096];
    static const size_t sizes[] = {16, 128, 1024, 4096};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        for (int i = 0; i < 4096; i++) {
            blocks[i] = malloc(sizes[s]);
            if (!blocks[i]) {
                fprintf(stderr, "trace_hygiene_program: malloc(%zu) failed\n", sizes[s]);
                exit(1);
            }
            memset(blocks[i], 0x5a, sizes[s]);
        }
        for (int i = 0; i < 4096; i++) free(blocks[i]);
    }
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: trace_hygiene_program READY_FIFO GO_FIFO\n");
        return 1;
    }
    allocate();
    int ready = open(argv[1], O_WRONLY);
    if (ready < 0 || write(ready, "r", 1) != 1) {
        perror("trace_hygiene_program: READY_FIFO");
        return 1;
    }
    close(ready);
    int go = open(argv[2], O_RDONLY);
    if (go < 0) {
        perror("trace_hygiene_program: GO_FIFO");
        return 1;
    }
    char c = 0;
    ssize_t n;
    do {
        n = read(go, &c, 1);
    } while (n < 0 && errno == EINTR);
    close(go);
    if (n == 1 && c == 'a') abort();
    return 0;
}
