/* thread_streams.c — the runs of thread_streams.h: a refill's streams are those of the runs overlapping it. */
#include "thread_streams.h"

#include <stdlib.h>

void hk_runs_saw(struct hk_runs *r, int64_t ts, uintptr_t stream)
{
    if (r->n) {
        struct hk_run *last = &r->run[(r->head + r->n - 1) % HK_RUNS_KEPT];
        if (last->stream == stream) {
            last->last = ts;
            return;
        }
    }
    if (r->n == HK_RUNS_KEPT) {
        r->head = (r->head + 1) % HK_RUNS_KEPT;
        r->n--;
    }
    r->run[(r->head + r->n) % HK_RUNS_KEPT] = (struct hk_run){ts, ts, stream};
    r->n++;
}

static void add(struct hk_streams *out, uintptr_t s)
{
    for (size_t i = 0; i < out->n; i++)
        if (out->addr[i] == s)
            return;
    uintptr_t *grown = realloc(out->addr, (out->n + 1) * sizeof *grown);
    if (!grown)
        abort();
    out->addr = grown;
    out->addr[out->n++] = s;
}

void hk_runs_during(const struct hk_runs *r, int64_t start, int64_t end, struct hk_streams *out)
{
    out->known = false;
    out->n = 0;
    out->addr = NULL;
    if (!r || !r->n)
        return;
    for (int k = r->n - 1; k >= 0; k--) {
        const struct hk_run *run = &r->run[(r->head + k) % HK_RUNS_KEPT];
        if (run->first <= end && run->last >= start)
            add(out, run->stream);
        if (run->first <= start) {
            out->known = true;
            return;
        }
    }
    out->known = r->n != HK_RUNS_KEPT;
    if (!out->known) {
        free(out->addr);
        out->addr = NULL;
        out->n = 0;
    }
}
