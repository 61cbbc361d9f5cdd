/* tracer.c — trace build only: the tracer's allocations told apart from the program's and served from an arena of their own. */
#define _GNU_SOURCE
#include <sys/prctl.h>
#include <string.h>

#include "internal.h"

/*
 * What lttng-ust and what it loads (liburcu, libnuma, libgcc_s at teardown)
 * allocate is not the program's: under HAKMEM_MAX_MEMORY or fault injection it
 * must neither be refused (lttng-ust aborts when it is) nor take the program's
 * share. Such an allocation is recognised by where it happens, never by its size:
 *
 *  - the probe while it emits: hak_tls.trace_busy, the nesting flag of trace.h;
 *  - the constructor window (hak_tracer_window, tracepoints/hakmem_tp.c): from
 *    the process start until the trace library's last constructor — lttng-ust's constructors run there, as
 *    dependencies of this library, and so do the probe's registration and
 *    its listener threads' start. Constructors of libraries the program loads
 *    before this one run there too (libstdc++'s exception pool, for one): the
 *    trace build counts them as the tracer's, the only difference from the
 *    release build it allows;
 *  - the destructor window: from this library's first destructor on
 *    (hakmem_tp.c calls hak_tracer_teardown), on the thread that runs it — lttng-ust's teardown follows (it cancels its
 *    threads, which loads libgcc_s);
 *  - the tracer's threads: lttng-ust names its listener threads `<procname>-ust`
 *    before they allocate; a thread whose first allocation comes in the window
 *    or under such a name is the tracer's for good (hak_tls.trace_busy stays set,
 *    so nothing it does is traced either).
 *
 * All of them allocate from one heap of the tracer's arena, under a lock (they
 * are few and rare); its chunks, heads and account are the tracer's own, never
 * capped, never faulted, never adopted by the program. A free of a tracer block
 * by anyone is a remote free into that heap's slab.
 */
static pthread_mutex_t tracer_lock = PTHREAD_MUTEX_INITIALIZER;
static hak_heap *tracer_heap; /* guarded by tracer_lock */

/* From the trace library's first destructor on (tracepoints/hakmem_tp.c), the thread running the destructors
 * allocates for the tracer only: lttng-ust's teardown. */
void hak_tracer_teardown(void) {
    hak_tls.trace_busy = 1;
}

bool hak_tracer_thread_check(void) {
    char name[17] = {0};
    if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0) return false;
    size_t n = strlen(name), k = sizeof "-ust" - 1;
    if (n < k || memcmp(name + n - k, "-ust", k) != 0) return false;
    hak_tls.trace_busy = 1;
    return true;
}

void *hak_tracer_small_alloc(unsigned class_idx) {
    pthread_mutex_lock(&tracer_lock);
    if (!tracer_heap) tracer_heap = hak_thread_heap_make(HAK_ARENA_TRACER);
    void *p = NULL;
    if (tracer_heap) { /* its calls are counted on its own op word, under the lock */
        hak_op_begin(&tracer_heap->ops.allocs);
        p = tiny_alloc_slow(tracer_heap, class_idx);
        if (p) hak_op_end(&tracer_heap->ops.allocs);
        else hak_op_cancel(&tracer_heap->ops.allocs);
    }
    pthread_mutex_unlock(&tracer_lock);
    return p;
}

void hak_tracer_add_counts(uint64_t *allocs) {
    pthread_mutex_lock(&tracer_lock);
    if (tracer_heap) *allocs += hak_op_count(&tracer_heap->ops.allocs);
    pthread_mutex_unlock(&tracer_lock);
}

static void fork_lock(void) {
    pthread_mutex_lock(&tracer_lock);
}

static void fork_unlock(void) {
    pthread_mutex_unlock(&tracer_lock);
}

/* Registered after thread.c's handlers (priority 101), so this prepare runs before theirs: the tracer's heap
 * refills under tracer_lock, and takes the reclaim, registry and head locks after it. */
__attribute__((constructor(103))) static void hak_tracer_init(void) {
    pthread_atfork(fork_lock, fork_unlock, fork_unlock);
}
