/* coverage.h — per trace, the time from which every stream (CPU buffer) of it holds its events. */
#ifndef HK_COVERAGE_H
#define HK_COVERAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "hashmap.h"
#include "losses.h"

/* A snapshot keeps only the newest packets of each stream, so each begins at its own time and, before the latest
 * of them, events that went to the other streams are missing. In a normal recording every stream begins before
 * the program's first event, so this changes nothing. */
struct hk_trace_cov {
    uintptr_t trace;
    int64_t streams, begun;       /* streams announced; those whose first packet was seen */
    struct hk_opt end;            /* the end of its latest packet */
    struct hk_opt begins;         /* the latest first-packet beginning of its streams (None: none timed yet) */
};

struct hk_coverage {
    struct hk_map stream_first;   /* (trace, stream) -> seen (its first packet) */
    struct hk_map traces;         /* trace -> struct hk_trace_cov */
    struct hk_trace_cov **list;   /* the same, as a list */
    size_t n;
};

void hk_coverage_free(struct hk_coverage *c);
void hk_coverage_stream_began(struct hk_coverage *c, uintptr_t trace);
void hk_coverage_packet_began(struct hk_coverage *c, uintptr_t trace, uintptr_t stream, struct hk_opt ts);
void hk_coverage_packet_ended(struct hk_coverage *c, uintptr_t trace, int64_t ts);
/* None (!set) when some trace holds every stream's events over [start, end] (the OOM's own, or another snapshot
 * of the same run); else when the OOM's trace begins to. */
struct hk_opt hk_coverage_uncovered(struct hk_coverage *c, bool has_trace, uintptr_t trace, int64_t start,
                                    int64_t end);
bool hk_coverage_all_begun(struct hk_coverage *c, uintptr_t trace);

#endif
