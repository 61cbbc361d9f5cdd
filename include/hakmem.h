/* hakmem.h — the public API: the hak_ allocation calls and the counters. */
#ifndef HAKMEM_H
#define HAKMEM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HAKMEM_VERSION_MAJOR 0
#define HAKMEM_VERSION_MINOR 1

#if defined(__GNUC__)
#define HAK_API __attribute__((visibility("default")))
#else
#define HAK_API
#endif

/* Same contracts as the C library calls of the same name without the prefix.
 * On refusal they return NULL with errno = ENOMEM; they never abort for lack
 * of memory. */
HAK_API void *hak_malloc(size_t size);
HAK_API void *hak_calloc(size_t count, size_t size);
HAK_API void *hak_realloc(void *p, size_t size);
HAK_API void hak_free(void *p);
HAK_API void *hak_memalign(size_t alignment, size_t size);
HAK_API size_t hak_usable_size(const void *p);

/* Gives back what the calling thread's heap holds without using it: blocks
 * other threads freed into its slabs are collected, empty slabs return to
 * their chunks, and free slabs' pages (every class's) to the OS. Call it at
 * quiescent points of a long-running thread, like malloc_trim. */
HAK_API void hak_collect(void);

/* Counters since the process started (threads that exited included). */
#define HAK_STATS_CLASSES 61
/* The per-class counters, one list for the struct below, the library's own
 * counting and the columns HAKMEM_STATS=1 prints: X(field, column, width, meaning). */
#define HAK_CLASS_COUNTERS(X)                                                                  \
    X(refills, "refills", 9, "superslab_refill calls")                                        \
    X(expansions, "expansions", 10, "expand_superslab_head calls that made a chunk current")  \
    X(chunks_new, "chunks", 7, "SuperSlabs superslab_allocate handed out")                    \
    X(chunks_freed, "freed", 7, "SuperSlabs given back to the reserve or the OS")             \
    X(adopted, "adopted", 7, "listed slabs (let go with blocks to hand out) a refill adopted")  \
    X(adopted_on_free, "adopt-free", 10, "unheld slabs a free took over and adopted into its heap")  \
    X(decommitted, "decommits", 9, "free slabs whose pages went back to the OS")              \
    X(failures, "failures", 8, "superslab_allocate failures")                                 \
    X(ooms, "ooms", 6, "NULLs returned to the caller")

#define HAK_CLASS_COUNTER_FIELD(field, column, width, meaning) uint64_t field;
typedef struct hak_class_stats {
    uint32_t block_size;
    HAK_CLASS_COUNTERS(HAK_CLASS_COUNTER_FIELD)
} hak_class_stats;
#undef HAK_CLASS_COUNTER_FIELD

typedef struct hak_stats {
    uint64_t allocs;        /* blocks handed out, small and large */
    uint64_t frees;         /* blocks given back */
    uint64_t mapped_bytes;  /* address space currently mapped for blocks */
    uint64_t committed_bytes; /* memory committed: what HAKMEM_MAX_MEMORY caps */
    uint64_t tracer_committed_bytes; /* trace build: what the tracer's own allocations committed, never capped */
    uint64_t large_ooms;
    hak_class_stats classes[HAK_STATS_CLASSES];
} hak_stats;

/* Fills *out. allocs - frees equals the live blocks when no other thread
 * is allocating at the same time. */
HAK_API void hak_stats_get(hak_stats *out);
/* Writes the counters as text to the file descriptor (no stdio involved). */
HAK_API void hak_stats_print(int fd);

#ifdef __cplusplus
}
#endif
#endif
