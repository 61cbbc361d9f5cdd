/* coverage.c — snapshot coverage (coverage.h): which trace's every CPU buffer holds a window's events. */
#include "coverage.h"

#include <stdlib.h>

static struct hk_trace_cov *trace_of(struct hk_coverage *c, uintptr_t trace, bool create)
{
    struct hk_trace_cov *t = hk_map_get(&c->traces, hk_key2((int64_t)trace, 0));
    if (!t && create) {
        t = calloc(1, sizeof *t);
        struct hk_trace_cov **grown = realloc(c->list, (c->n + 1) * sizeof *grown);
        if (!t || !grown)
            abort();
        t->trace = trace;
        c->list = grown;
        c->list[c->n++] = t;
        hk_map_put(&c->traces, hk_key2((int64_t)trace, 0), t);
    }
    return t;
}

void hk_coverage_free(struct hk_coverage *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->list[i]);
    free(c->list);
    hk_map_free(&c->traces);
    hk_map_free(&c->stream_first);
    c->list = NULL;
    c->n = 0;
}

void hk_coverage_stream_began(struct hk_coverage *c, uintptr_t trace)
{
    trace_of(c, trace, true)->streams++;
}

void hk_coverage_packet_began(struct hk_coverage *c, uintptr_t trace, uintptr_t stream, struct hk_opt ts)
{
    struct hk_key k = hk_key2((int64_t)trace, (int64_t)stream);
    if (hk_map_get(&c->stream_first, k))
        return;
    hk_map_put(&c->stream_first, k, (void *)1);
    struct hk_trace_cov *t = trace_of(c, trace, true);
    t->begun++;
    if (ts.set && (!t->begins.set || ts.v > t->begins.v))
        t->begins = ts;
}

void hk_coverage_packet_ended(struct hk_coverage *c, uintptr_t trace, int64_t ts)
{
    struct hk_trace_cov *t = trace_of(c, trace, true);
    if (!t->end.set || ts > t->end.v)
        t->end = (struct hk_opt){ts, true};
}

struct hk_opt hk_coverage_uncovered(struct hk_coverage *c, bool has_trace, uintptr_t trace, int64_t start,
                                    int64_t end)
{
    struct hk_opt none = {0, false};
    struct hk_trace_cov *mine = has_trace ? trace_of(c, trace, false) : NULL;
    if (!mine || !mine->begins.set || start >= mine->begins.v)
        return none;
    for (size_t i = 0; i < c->n; i++) {
        struct hk_trace_cov *t = c->list[i];
        if (t != mine && t->begins.set && t->begins.v <= start && t->end.set && t->end.v >= end)
            return none;
    }
    return mine->begins;
}

bool hk_coverage_all_begun(struct hk_coverage *c, uintptr_t trace)
{
    struct hk_trace_cov *t = trace_of(c, trace, false);
    return !t || t->begun >= t->streams;
}
