/* invariant.c — breaks the slab life cycle on purpose (a slab released twice) so that a HAK_CHECK must fire. */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "unit_support.h"

/* Linked against the checked core: the second slab_release finds the slab
 * already FREE. Prints tid= first (see misuse.c); exit 3 = no check fired. */
int main(void) {
    hak_ensure_init();
    hak_heap heap;
    fake_heap_init(&heap);
    hak_slab *s = superslab_refill(&heap, 4);
    if (!s) return 2;
    char line[32];
    int n = snprintf(line, sizeof line, "tid=%ld\n", (long)syscall(SYS_gettid));
    if (write(1, line, (size_t)n) != n) return 2;
    slab_release(s);
    slab_release(s);
    return 3;
}
