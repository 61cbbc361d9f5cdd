/* aux_events.h — the heap profile's raw material passed through as read: stacks, heap samples, the state dump. */
#ifndef HK_AUX_EVENTS_H
#define HK_AUX_EVENTS_H

#include <babeltrace2/babeltrace.h>
#include <stdbool.h>
#include <stdint.h>

#include "hashmap.h"
#include "json.h"
#include "vec.h"

/* No decision is made from these: the Python side maps their addresses to source lines (hakmem/symbols.py) and
 * estimates the live heap (hakmem/heap.py). The core only reads them generically, drops the copies overlapping
 * snapshots repeat, and bounds the stacks: a heap sample stands for S bytes allocated, so all are kept, but a run
 * can refuse memory millions of times. */
#define HK_OOM_STACKS_KEPT 65536     /* call_stack events of OOMs (oom_no > 0) kept; later ones are counted */
#define HK_REFUSAL_STACKS_KEPT 4096  /* call_stack events of refusals (oom_no 0) kept; later ones are counted */

enum hk_aux_kind { HK_AUX_INT, HK_AUX_UINT, HK_AUX_STR, HK_AUX_SEQ };

struct hk_aux_field {
    const char *key;              /* interned */
    enum hk_aux_kind kind;
    int64_t i;                    /* HK_AUX_INT, HK_AUX_UINT (as unsigned) */
    char *s;                      /* HK_AUX_STR, owned */
    uint64_t *seq;                /* HK_AUX_SEQ, owned */
    size_t n;
    bool seq_signed;
};

struct hk_aux_rec {
    const char *name;             /* interned, with its provider: "hakmem:heap_sample" */
    int64_t ts, vpid, vtid;
    bool has_vpid, has_vtid;
    const char *procname;         /* interned; NULL: no procname context */
    size_t nfields;
    struct hk_aux_field *fields;
};

struct hk_aux {
    HK_VEC(struct hk_aux_rec *) recs;  /* in the order read: time order */
    struct hk_map last;           /* (vpid, vtid) -> its records at its latest timestamp (duplicate check) */
    int64_t oom_stacks, refusal_stacks, stacks_dropped, duplicates;
};

/* Whether events of this name (with its provider) are passed through. */
bool hk_aux_wanted(const char *name);
/* An event message of a wanted class, read whole; returns false when its clock snapshot is unusable. */
bool hk_aux_read(struct hk_aux *x, const bt_message *msg);
/* A crafted record (tests): taken as it is, without the duplicate check. */
void hk_aux_add(struct hk_aux *x, struct hk_aux_rec *r);
struct hk_aux_rec *hk_aux_rec_new(const char *name, int64_t ts, int64_t vpid, int64_t vtid, const char *procname,
                                  size_t nfields);
void hk_aux_json(struct hk_json *j, const struct hk_aux *x);
/* The call_stack record of OOM oom_no of (vpid, vtid) dropped (its OOM was reported and taken: a live reader
 * must not hold every stack of a session that runs for weeks, nor reach HK_OOM_STACKS_KEPT). */
void hk_aux_forget_stack(struct hk_aux *x, int64_t vpid, int64_t vtid, int64_t oom_no);
void hk_aux_free(struct hk_aux *x);

#endif
