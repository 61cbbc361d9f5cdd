/* oom_report.c — (trace build) what an oom event says beyond the refill: the call, its number, a snapshot's cue; and the totals at exit. */
#include "internal.h"
#include "trace.h"

/*
 * Numbers handed to the program's OOMs, from 1 in each process: an analysis
 * that sees OOMs 1, 2 and 46 919 of a process knows that 46 916 are not in
 * its trace, and the exit totals say how many came after the last it saw.
 */
static _Atomic uint64_t ooms_numbered;

/*
 * The flight recorder's trigger fires on an oom whose `snapshot` is 1: the
 * first, and then the first after a quiet second. A storm of NULLs thus asks
 * for one snapshot a second (each a copy of every buffer), not one per NULL;
 * the OOMs between two cues are in the next snapshot if the buffers still hold
 * them, and the numbers say which are not.
 */
#define SNAPSHOT_INTERVAL_NS 1000000000ull
static _Atomic uint64_t snapshot_cued_ns;

/* What the exit totals do not count: a fork child's share of its parent's counters. */
static uint64_t baseline[HAK_NUM_CLASSES + 1][2];
enum { BASE_REFILLS, BASE_OOMS };

static uint8_t snapshot_due(void) {
    uint64_t now = hak_os_now_ns();
    uint64_t last = atomic_load_explicit(&snapshot_cued_ns, memory_order_relaxed);
    if (last != 0 && now - last < SNAPSHOT_INTERVAL_NS) return 0;
    return atomic_compare_exchange_strong_explicit(&snapshot_cued_ns, &last, now, memory_order_relaxed,
                                                   memory_order_relaxed);
}

void hak_oom_trace(size_t size, unsigned class_idx, uint32_t block_size, unsigned arena) {
    if (arena != HAK_ARENA_PROGRAM || hak_in_tracer()) return; /* the tracer's own refusals are not the program's */
    uint64_t number = atomic_fetch_add_explicit(&ooms_numbered, 1, memory_order_relaxed) + 1;
    uint64_t seq = hak_tls.heap->refill_seq; /* read before HAK_TRACE, which hides the heap (trace.h) */
    hak_call call = hak_tls.call;
    if (call.kind == HAK_CALL_MALLOC) call = (hak_call){.count = 1, .size = size, .kind = HAK_CALL_MALLOC};
    uint8_t cue = snapshot_due();
    hak_census_trace(seq);
    HAK_TRACE_STACK(seq, number);
    HAK_TRACE(oom, call.count * call.size, (uint8_t)class_idx, block_size, seq, number, call.kind, call.count,
              call.align, call.old, cue);
}

static uint64_t counted(unsigned c, hak_class_counter ctr, unsigned base) {
    return atomic_load_explicit(&hak_class_counters[HAK_ARENA_PROGRAM][c][ctr], memory_order_relaxed) -
           baseline[c][base];
}

void hak_trace_forked(void) {
    atomic_store_explicit(&ooms_numbered, 0, memory_order_relaxed);
    atomic_store_explicit(&snapshot_cued_ns, 0, memory_order_relaxed);
    for (unsigned c = 0; c <= HAK_NUM_CLASSES; c++) {
        baseline[c][BASE_REFILLS] += counted(c, HAK_CTR_refills, BASE_REFILLS);
        baseline[c][BASE_OOMS] += counted(c, HAK_CTR_ooms, BASE_OOMS);
    }
}

/* Called by the trace library's destructor (tracepoints/hakmem_tp.c), before the tracer's teardown: what the
 * program's threads did in this process, for an analysis to tell what its trace lacks. */
void hak_trace_exit_totals(void) {
    uint64_t refills = 0;
    uint8_t classes = 0;
    for (unsigned c = 0; c <= HAK_NUM_CLASSES; c++) {
        refills += counted(c, HAK_CTR_refills, BASE_REFILLS);
        classes += counted(c, HAK_CTR_refills, BASE_REFILLS) || counted(c, HAK_CTR_ooms, BASE_OOMS);
    }
    HAK_TRACE(exit_totals, atomic_load_explicit(&ooms_numbered, memory_order_relaxed), refills, classes);
    for (unsigned c = 0; c <= HAK_NUM_CLASSES; c++) {
        uint64_t r = counted(c, HAK_CTR_refills, BASE_REFILLS), o = counted(c, HAK_CTR_ooms, BASE_OOMS);
        if (!r && !o) continue;
        bool large = c == HAK_NUM_CLASSES;
        HAK_TRACE(exit_class_totals, large ? HAKMEM_TP_LARGE_CLASS : (uint8_t)c, large ? 0 : hak_class_size[c], r, o);
    }
}
