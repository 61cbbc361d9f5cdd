/* diag.c — diagnostics written straight to stderr: no stdio, no allocation, usable inside malloc. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

void hak_write_all(int fd, const char *buf, size_t len) {
    int saved = errno;
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        buf += n;
        len -= (size_t)n;
    }
    errno = saved;
}

/* vsnprintf with plain integer, pointer and string conversions formats into the
 * caller's buffer without allocating. */
int hak_format(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= cap) n = (int)cap - 1;
    return n;
}

void hak_diag(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof buf) n = sizeof buf - 1;
    hak_write_all(2, buf, (size_t)n);
}

void hak_die_invalid_pointer(const char *op, const void *p) {
    hak_diag("hakmem: %s(): invalid pointer %p\n", op, p);
    abort();
}
