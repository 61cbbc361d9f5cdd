/* vec.h — a growable array of any element type (the core's lists: ranges, paths, windows). */
#ifndef HK_VEC_H
#define HK_VEC_H

#include <stdlib.h>
#include <string.h>

#define HK_VEC(type) struct { type *v; size_t n, cap; }

#define hk_vec_push(vec, x)                                                                 \
    do {                                                                                    \
        if ((vec).n == (vec).cap) {                                                         \
            (vec).cap = (vec).cap ? (vec).cap * 2 : 8;                                      \
            void *grown_ = realloc((vec).v, (vec).cap * sizeof *(vec).v);                   \
            if (!grown_)                                                                    \
                abort();                                                                    \
            (vec).v = grown_;                                                               \
        }                                                                                   \
        (vec).v[(vec).n++] = (x);                                                           \
    } while (0)

/* Insert x at index at (0 <= at <= n). */
#define hk_vec_insert(vec, at, x)                                                           \
    do {                                                                                    \
        hk_vec_push(vec, x);                                                                \
        memmove(&(vec).v[(at) + 1], &(vec).v[at], ((vec).n - 1 - (at)) * sizeof *(vec).v);  \
        (vec).v[at] = (x);                                                                  \
    } while (0)

#define hk_vec_remove(vec, at)                                                              \
    do {                                                                                    \
        memmove(&(vec).v[at], &(vec).v[(at) + 1], ((vec).n - 1 - (at)) * sizeof *(vec).v);  \
        (vec).n--;                                                                          \
    } while (0)

#define hk_vec_free(vec) (free((vec).v), (vec).v = NULL, (vec).n = (vec).cap = 0)

#endif
