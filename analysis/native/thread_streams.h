/* thread_streams.h — per thread, the streams its latest events came from (runs of events on one stream). */
#ifndef HK_THREAD_STREAMS_H
#define HK_THREAD_STREAMS_H

#include <stdint.h>

#include "losses.h"

#define HK_RUNS_KEPT 64  /* per thread, the latest runs of consecutive events on one stream */

struct hk_run {
    int64_t first, last;
    uintptr_t stream;
};

struct hk_runs {
    struct hk_run run[HK_RUNS_KEPT];  /* a ring: oldest at head */
    int head, n;
};

void hk_runs_saw(struct hk_runs *r, int64_t ts, uintptr_t stream);
/* The streams of the thread's events in [start, end]; known false when the window reaches back past the runs
 * kept (r NULL: the thread has no runs). The caller frees out->addr. */
void hk_runs_during(const struct hk_runs *r, int64_t start, int64_t end, struct hk_streams *out);

#endif
