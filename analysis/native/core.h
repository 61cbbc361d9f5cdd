/* core.h — the analysis core as the Python side drives it (ctypes) and the sink component feeds it. */
#ifndef HK_CORE_H
#define HK_CORE_H

#include <babeltrace2/babeltrace.h>
#include <stdint.h>

#include "analyzer.h"
#include "aux_events.h"
#include "decode.h"

struct hk_core {
    struct hk_analyzer a;
    struct hk_decoder decoder;
    struct hk_aux aux;            /* stacks, heap samples, state dump: passed through (aux_events.h) */
    char failure[256];            /* why the analysis stopped (a value it cannot take), "" if it did not */
};

/* Exported for ctypes (the only symbols of the library besides the plugin's). */
struct hk_core *hk_core_new(int64_t timeline_buckets);
void hk_core_free(struct hk_core *c);
int hk_core_message(struct hk_core *c, const bt_message *msg);  /* 0, or -1: see hk_core_failure */
const char *hk_core_failure(const struct hk_core *c);
void hk_core_stream_lost(struct hk_core *c, const char *stream, int has_begin, int64_t begin, int has_end,
                         int64_t end, int has_packets, int64_t packets);
/* Crafted input (tests): an event given field by field (missing fields read as 0; labels[i] non-NULL for an
 * enumeration's label), and what the trace would declare. */
int hk_core_event(struct hk_core *c, const char *name, int64_t ts, int64_t vpid, int64_t vtid, const char *procname,
                  int n, const char *const *keys, const int64_t *values, const int *uns, const char *const *labels);
void hk_core_declare(struct hk_core *c, const char *name);
/* A crafted record to pass through (call_stack, heap_sample, heap_sample_free, the state dump's), name with its
 * provider: field i is kinds[i] (enum hk_aux_kind) with its value in ints[i], strs[i] or seqs[i] (seq_lens[i]
 * integers). -1: not an event the core passes through. */
int hk_core_aux_event(struct hk_core *c, const char *name, int64_t ts, int64_t vpid, int64_t vtid,
                      const char *procname, int n, const char *const *keys, const int *kinds, const int64_t *ints,
                      const char *const *strs, const int64_t *const *seqs, const int64_t *seq_lens);
/* The explainers' memory (tests): slots waiting, refills with slots, chunks kept for (vpid, class). */
void hk_core_explainers_state(struct hk_core *c, int64_t vpid, int64_t cls, int64_t out[3]);
/* The core's bounds: context window, context shown, details per cause, chunks kept, claims kept, path limit,
 * OOM stacks kept, refusal stacks kept. */
void hk_core_limits(int64_t out[8]);
char *hk_core_result(struct hk_core *c);   /* the analysis as JSON (result.c); free with hk_core_free_string */
void hk_core_free_string(char *s);
/* Live reading: the OOMs listed and not yet taken, and the take (result.c) — which frees them. */
int64_t hk_core_ooms_waiting(const struct hk_core *c);
char *hk_core_take_ooms(struct hk_core *c);

#endif
