/* bins.h — the timeline's marks: every event binned per thread into a bounded number of time buckets. */
#ifndef HK_BINS_H
#define HK_BINS_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "hashmap.h"
#include "vec.h"

/* A bucket keeps, per event kind and outcome, a count and its first event; the bucket width doubles whenever the
 * trace outgrows max_buckets, so memory stays bounded whatever the trace length. */
struct hk_bin_kind {
    uint8_t id;
    bool has_outcome;
    struct hk_val outcome;
    int64_t n;
    struct hk_ev *first;
};

struct hk_cell {
    int64_t bucket;
    HK_VEC(struct hk_bin_kind) kinds;  /* in first-seen order */
};

struct hk_lane {
    int64_t vpid, vtid;
    int64_t events;
    HK_VEC(struct hk_cell) cells;      /* ascending buckets */
};

struct hk_bins {
    int64_t max_buckets;
    bool has_t0;
    int64_t t0;
    int shift;                         /* bucket width: 1 << shift ns */
    struct hk_map lanes;
    HK_VEC(struct hk_lane *) lane_list;
};

struct hk_bins *hk_bins_new(int64_t max_buckets);
void hk_bins_free(struct hk_bins *b);
void hk_bins_event(struct hk_bins *b, struct hk_ev *ev);

#endif
