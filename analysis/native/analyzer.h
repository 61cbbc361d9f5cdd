/* analyzer.h — the streaming OOM-path analysis: its state, fed one decoded event or loss at a time. */
#ifndef HK_ANALYZER_H
#define HK_ANALYZER_H

#include <stdbool.h>
#include <stdint.h>

#include "bins.h"
#include "cause.h"
#include "coverage.h"
#include "event.h"
#include "explainers.h"
#include "hashmap.h"
#include "losses.h"
#include "thread_streams.h"
#include "vec.h"

/* Memory: one open refill per thread, a window of recent events per class, the explainers' chunk marks, the
 * reports of the first HK_DETAIL_PER_CAUSE OOMs of each cause (the others are only counted) and the loss
 * ranges — not the trace. */
#define HK_CONTEXT_WINDOW 512    /* recent events kept per class for the "meanwhile" context */
#define HK_CONTEXT_SHOWN 40      /* context events reported per OOM */
#define HK_DETAIL_PER_CAUSE 1000 /* OOMs listed with their path and context per cause */

struct hk_open_refill {
    struct hk_val seq;
    HK_VEC(struct hk_ev *) events;
    bool begins_midway, cut;
};

/* A Counter keyed by a field's value (a label, or the integer when unlabelled), in first-seen order. */
struct hk_count {
    struct hk_val key;
    int64_t n;
};
typedef HK_VEC(struct hk_count) hk_counter;

struct hk_class {
    int64_t cls;
    int64_t refills, ooms;
    hk_counter adoptions, reclaims, bitmap_checks, mid_simple, expansions, failures;
    bool has_block_size;
    struct hk_val block_size;
    struct hk_ev *recent[HK_CONTEXT_WINDOW];  /* a ring, oldest at recent_head */
    int recent_head, recent_n;
};

struct hk_class_memory {
    struct hk_val cls, block_size, committed, live, free, holder_vtid, holder_free;
};

struct hk_memory {
    int refs;                     /* held by the last census and by the OOMs that report it */
    struct hk_val seq, cap, committed, large, tracer, classes_expected;
    HK_VEC(struct hk_class_memory) classes;
    bool complete;
    int64_t other;
};

struct hk_thread {
    int64_t vpid, vtid;
    bool listed;                  /* in the summary's threads (it emitted a refill or OOM event) */
    const char *procname;
    int64_t ooms;
    struct hk_open_refill *open;
    bool has_large_fail;
    HK_VEC(struct hk_ev *) large_fail;  /* the large path's refusal and retries, awaiting oom */
    struct hk_memory *memory_pending;
    bool has_last;                /* its latest events, for the duplicate check of overlapping snapshots */
    int64_t last_ts;
    HK_VEC(struct hk_ev *) last_events;
    struct hk_runs runs;
    bool traced;                  /* its process's trace is noted (vpid_trace) */
};

struct hk_explaining {
    struct hk_ev *ev;
    int kind;
    int64_t chunk;
    HK_VEC(int) steps;
};

struct hk_oom {
    int64_t vpid, vtid;
    struct hk_ev *oom;
    HK_VEC(struct hk_ev *) path;  /* ending with the oom */
    bool begins_midway, cut;
    bool has_trace;
    uintptr_t trace;
    int64_t number;
    struct hk_memory *memory;
    struct hk_streams streams;
    int cause;
    char *detail;
    HK_VEC(struct hk_ev *) context;
    HK_VEC(struct hk_explaining) explaining;
};

struct hk_pending {               /* an unlisted OOM whose window cannot be judged yet */
    int64_t start, end;
    int cause;
    bool large, has_trace;
    uintptr_t trace;
    struct hk_streams streams;
};

struct hk_exit_class {
    struct hk_val cls, refills, ooms, block_size;
};
struct hk_exit {
    int64_t vpid;
    struct hk_val ooms, refills, classes_expected;
    HK_VEC(struct hk_exit_class) classes;
};

struct hk_numbers {               /* a process's OOM numbers seen, as sorted disjoint ranges */
    int64_t vpid;
    HK_VEC(int64_t) r;            /* first, last, first, last ... */
};

struct hk_malformed {
    const char *name;
    int64_t n;
};

struct hk_analyzer {
    struct hk_declared declared;
    HK_VEC(const char *) declared_names;
    struct hk_map threads;        /* (vpid, vtid) -> struct hk_thread */
    struct hk_map classes;        /* class -> struct hk_class */
    struct hk_memory *last_memory;
    struct hk_explainers explainers;
    HK_VEC(struct hk_oom *) ooms;
    struct hk_losses losses;
    struct hk_coverage coverage;
    int64_t events, hakmem_events;
    bool has_ts;
    int64_t first_ts, last_ts;
    HK_VEC(struct hk_malformed) malformed;
    int64_t no_thread_context;
    struct hk_map vpid_trace;     /* vpid -> the trace its first event came from (+1, so never NULL) */
    struct hk_map numbers;        /* vpid -> struct hk_numbers */
    struct hk_map exits;          /* vpid -> struct hk_exit */
    struct hk_map proc_refills;   /* (vpid, class) -> refill_enter events (as a pointer-sized count) */
    struct hk_map procnames;      /* vpid -> procname */
    int64_t duplicates;
    int64_t n_ooms;
    int64_t listed[HK_CAUSE_COUNT];
    int64_t unlisted;
    HK_VEC(struct hk_pending) pending;
    size_t pending_head;
    int64_t unlisted_causes[HK_CAUSE_COUNT];
    struct hk_bins *bins;         /* the timeline's, when asked for */
    struct hk_thread *last_thread;  /* the thread of the latest event (lookups: most events follow their own) */
    struct hk_class *class_by_index[256];  /* classes 0-255, found without a lookup */
};

void hk_analyzer_init(struct hk_analyzer *a);
void hk_analyzer_free(struct hk_analyzer *a);
/* A decoded catalogue event (a reference the analyzer takes), of stream `stream` in trace `trace`. */
void hk_analyzer_event(struct hk_analyzer *a, struct hk_ev *ev, uintptr_t stream, uintptr_t trace);
/* An event that no trace holds (a test's crafted one): analysed as read, without the duplicate check. */
void hk_analyzer_inject(struct hk_analyzer *a, struct hk_ev *ev);
void hk_analyzer_declare(struct hk_analyzer *a, const char *name);
/* The end of the input: count the OOMs still waiting. */
void hk_analyzer_settle_all(struct hk_analyzer *a);
/* The listed OOMs handed on (a live reader took them): freed, and no longer counted against HK_DETAIL_PER_CAUSE,
 * so a reader that takes them as they come sees every one listed however long the session runs. */
void hk_analyzer_release_listed(struct hk_analyzer *a);

#endif
