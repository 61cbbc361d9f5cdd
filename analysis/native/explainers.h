/* explainers.h — for an open refill's decisions, the other thread's event that explains each, however far back. */
#ifndef HK_EXPLAINERS_H
#define HK_EXPLAINERS_H

#include <stdbool.h>
#include <stdint.h>

#include "event.h"
#include "hashmap.h"
#include "vec.h"

#define HK_CHUNKS_KEPT 256  /* chunks per process and class whose explaining events are kept (LRU) */
#define HK_CLAIMS_KEPT 8    /* claims kept per chunk, by the bitmap they found */

enum hk_explain_kind { HK_BECAME_CURRENT, HK_FILLED, HK_CLAIMED };

struct hk_open_refill;  /* analyzer.h */

struct hk_slot {
    struct hk_ev *decision;       /* the path's event another thread explains */
    int kind;
    int64_t chunk;
    struct hk_val bitmap;         /* the bitmap the decision found (bitmap_check) */
    bool has_bitmap;
    struct hk_ev *found;          /* the explaining event, once known */
    bool waiting;
};

struct hk_explained {
    struct hk_ev *decision, *found;
    int kind;
    int64_t chunk;
};

struct hk_explainers {
    struct hk_map marks;          /* (vpid, class) -> chunk marks, least recently seen first */
    struct hk_map open;           /* (vpid, vtid) -> the refill's slots */
    struct hk_map waiting;        /* (vpid, class, chunk, kind) -> slots waiting for their event */
};

void hk_explainers_free(struct hk_explainers *x);
/* ev of thread (vpid, vtid), in refill ref (NULL outside one), class cls. last: ev is ref's newest event. */
void hk_explainers_event(struct hk_explainers *x, struct hk_open_refill *ref, bool last, struct hk_ev *ev,
                         int64_t cls);
void hk_explainers_forget(struct hk_explainers *x, int64_t vpid, int64_t vtid);
/* ref's decisions with their explaining events (references the caller owns), ref's slots forgotten. */
void hk_explainers_take(struct hk_explainers *x, int64_t vpid, int64_t vtid, struct hk_open_refill *ref,
                        struct hk_explained **out, size_t *n);

/* Slots waiting, refills with slots, chunks kept for (vpid, cls): what stays bounded. */
void hk_explainers_state(struct hk_explainers *x, int64_t vpid, int64_t cls, int64_t out[3]);

#endif
