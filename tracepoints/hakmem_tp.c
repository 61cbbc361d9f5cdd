/* hakmem_tp.c — the probe-definition unit: creates the `hakmem` provider inside the trace library. */
#include <stdatomic.h>
#include <stdint.h>

#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#define LTTNG_UST_TRACEPOINT_HIDDEN_DEFINITION
#define LTTNG_UST_TRACEPOINT_PROVIDER_HIDDEN_DEFINITION
#include "hakmem_tp.h"

/* The constructor window (src/tracer.c): open from the process start, so the tracer's allocations before any
 * constructor of ours count as the tracer's too. */
__attribute__((visibility("hidden"))) _Atomic uint8_t hak_tracer_window = 1;

/* Defined after the includes above, so it runs after their constructors (the tracepoints' and the probe's
 * registration, in this unit's order): everything allocated until here was the tracer's. */
__attribute__((constructor)) static void hak_tracer_constructors_done(void) {
    atomic_store_explicit(&hak_tracer_window, 0, memory_order_release);
}

/* src/oom_report.c and src/tracer.c; weak, for programs that craft events link this unit without the allocator. */
__attribute__((weak, visibility("hidden"))) void hak_trace_exit_totals(void);
__attribute__((weak, visibility("hidden"))) void hak_tracer_teardown(void);

/* Destructors run in the reverse order: this one before the probe's and lttng-ust's teardown, whose
 * allocations on this thread are the tracer's from here on (and nothing more is traced from it). The
 * program's totals are its last events. */
__attribute__((destructor)) static void hak_tracer_teardown_begins(void) {
    if (hak_trace_exit_totals) hak_trace_exit_totals();
    if (hak_tracer_teardown) hak_tracer_teardown();
}
