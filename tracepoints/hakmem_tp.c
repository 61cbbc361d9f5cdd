/* hakmem_tp.c — the probe-definition unit: creates the `hakmem` provider inside the trace library. */
#include <stdint.h>

#define LTTNG_UST_TRACEPOINT_CREATE_PROBES
#define LTTNG_UST_TRACEPOINT_DEFINE
#define LTTNG_UST_TRACEPOINT_HIDDEN_DEFINITION
#define LTTNG_UST_TRACEPOINT_PROVIDER_HIDDEN_DEFINITION
#include "hakmem_tp.h"

/* The nesting flag of src/trace.h: static TLS, so reading it never allocates. */
__attribute__((visibility("hidden"))) __thread __attribute__((tls_model("initial-exec"))) uint8_t hak_trace_busy;
