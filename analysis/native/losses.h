/* losses.h — the trace's losses per stream, and which of them a refill's window must answer for. */
#ifndef HK_LOSSES_H
#define HK_LOSSES_H

#include <stdbool.h>
#include <stdint.h>

#include "hashmap.h"
#include "vec.h"

/* An optional integer (Python's None when !set). */
struct hk_opt {
    int64_t v;
    bool set;
};

/* A stream as losses name it: its file's name (interned), or, for a source that names none, its address. */
struct hk_stream_key {
    const char *name;
    uintptr_t addr;
};

struct hk_range {
    struct hk_opt beg, end, count;
    const char *kind;             /* "events", "packets", "stream" */
    struct hk_stream_key stream;
};

struct hk_losses {
    HK_VEC(struct hk_range) ranges;  /* in the order reported */
    struct hk_map lines;             /* stream key -> struct line (its losses) */
    struct hk_map keys;              /* Babeltrace2 stream address -> struct hk_stream_key* */
    struct hk_map debt;              /* stream key -> what a wrapped discarded count still owes */
};

void hk_losses_init(struct hk_losses *l);
void hk_losses_free(struct hk_losses *l);
void hk_losses_stream_began(struct hk_losses *l, uintptr_t addr, const char *name);
void hk_losses_stream_lost(struct hk_losses *l, const char *stream, struct hk_opt beg, struct hk_opt end,
                           struct hk_opt packets);
void hk_losses_discarded(struct hk_losses *l, uintptr_t stream, bool events, struct hk_opt beg, struct hk_opt end,
                         struct hk_opt count);

/* A set of Babeltrace2 stream addresses (a refill window's streams), or "not known" (all). */
struct hk_streams {
    bool known;
    size_t n;
    uintptr_t *addr;
};

/* The losses that make a path [start, end] incomplete (see losses.py's former judged, now here only):
 * the events lost (at least 1 when any range overlaps), on the path's own streams unless its cause is an
 * accusation, which rests on what the path lacks. */
int64_t hk_losses_judged(struct hk_losses *l, int64_t start, int64_t end, const struct hk_streams *streams,
                         const char *cause);

#endif
