/* cause.c — the structural cause of an OOM's path: what the path holds (a refusal and its reason) or lacks (an
 * expansion before the NULL), or an event contradicting the allocator's invariants. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf */
#endif
#include "cause.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define HK_CAUSE_NAME(c) #c,
const char *const hk_cause_names[HK_CAUSE_COUNT] = {HK_CAUSES(HK_CAUSE_NAME)};

static char *say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *say(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        abort();
    va_end(ap);
    return s;
}

/* An integer as Python's str() prints it. */
static const char *num(const struct hk_val *v, char *buf)
{
    if (!v)
        return "None";
    if (v->label)
        return v->label;
    if (v->uns)
        sprintf(buf, "%llu", (unsigned long long)(uint64_t)v->i);
    else
        sprintf(buf, "%lld", (long long)v->i);
    return buf;
}

/* The decision path[i] follows: the event before it, past the mid-simple choice (reported after the first check
 * that did not claim, whatever came next). */
static struct hk_ev *decision_before(struct hk_ev *const *path, size_t i)
{
    while (i-- > 0)
        if (path[i]->id != HK_EV_mid_simple_choice)
            return path[i];
    return NULL;
}

static bool is(const struct hk_ev *e, int id, int field, const char *label)
{
    return e && e->id == id && hk_is_label(hk_get(e, field), label);
}

int hk_structural_cause(struct hk_ev *const *path, size_t n, bool begins_midway, bool cut,
                        const struct hk_declared *declared, char **detail)
{
    const struct hk_ev *oom = path[n - 1];
    char a[32], b[32];
    if (cut) {
        *detail = say("the refill ran more than %d events; the middle is not kept", HK_PATH_LIMIT);
        return HK_CAUSE_incomplete;
    }
    bool large = hk_is_num(hk_get(oom, F_class_idx), HK_LARGE_CLASS);
    bool heapless = !large && hk_is_num(hk_get(oom, F_seq), 0);  /* no refill ran: the heap itself was refused */
    bool decisions = !heapless && declared->has[HK_EV_refill_enter] && declared->has[HK_EV_chunk_expand] &&
                     declared->has[HK_EV_bitmap_check];
    if (begins_midway && decisions && !large) {
        *detail = say("the trace begins in the middle of this path (a snapshot, or lost events)");
        return HK_CAUSE_incomplete;
    }
    for (size_t i = 0; i < n; i++) {
        const struct hk_ev *e = path[i];
        if (e->id != HK_EV_bitmap_check)
            continue;
        const struct hk_val *chunk = hk_get(e, F_chunk);
        if (!chunk || (!chunk->label && chunk->i == 0))
            continue;  /* no chunk yet: the check reports a full mask and 0 active slabs, with nothing to claim */
        uint64_t bits = (uint64_t)hk_get(e, F_bitmap)->i, mask = (uint64_t)hk_get(e, F_full_mask)->i;
        int used = __builtin_popcountll(bits & mask);
        const struct hk_val *active = hk_get(e, F_active_slabs);
        if (!hk_is_num(active, used)) {
            *detail = say("bitmap 0x%08llx has %d slabs in use but active_slabs says %s", (unsigned long long)bits,
                          used, num(active, a));
            return HK_CAUSE_bitmap_inconsistent;
        }
        const struct hk_val *outcome = hk_get(e, F_outcome);
        if (hk_is_label(outcome, "full") && bits != mask) {
            *detail = say("bitmap 0x%08llx shows free slabs, yet the claim found it full", (unsigned long long)bits);
            return HK_CAUSE_bitmap_inconsistent;
        }
        if ((hk_is_label(outcome, "claimed") || hk_is_label(outcome, "cap_refused")) && bits == mask) {
            *detail = say("a slab was claimed from a full bitmap 0x%08llx", (unsigned long long)bits);
            return HK_CAUSE_bitmap_inconsistent;
        }
    }
    if (!large && decisions) {
        /* The cap refusing a free slab's pages ends a path without an expansion: a new chunk would need
         * committing just the same. Any other NULL without one is the seed's bug. */
        bool expanded = false, cap_refused = false;
        for (size_t i = 0; i < n; i++) {
            expanded |= path[i]->id == HK_EV_chunk_expand;
            cap_refused |= is(path[i], HK_EV_bitmap_check, F_outcome, "cap_refused");
        }
        if (!expanded && !cap_refused) {
            *detail = say("the refill returned NULL without expand_superslab_head");
            return HK_CAUSE_expansion_bypassed;
        }
        for (size_t i = 0; i < n; i++) {
            if (path[i]->id != HK_EV_superslab_alloc_fail)
                continue;
            const struct hk_ev *before = decision_before(path, i);
            if (!is(before, HK_EV_chunk_expand, F_outcome, "failed") &&
                !is(before, HK_EV_bitmap_check, F_outcome, "cap_refused")) {
                *detail = say("superslab_allocate failed outside a chunk expansion "
                              "(called around expand_superslab_head)");
                return HK_CAUSE_expansion_bypassed;
            }
        }
    }
    size_t last = n;
    for (size_t i = 0; i < n; i++)
        if (path[i]->id == HK_EV_superslab_alloc_fail)
            last = i;
    if (last < n) {
        const struct hk_val *reason = hk_get(path[last], F_reason);
        int cause = hk_is_label(reason, "os") ? HK_CAUSE_os_refused
                    : hk_is_label(reason, "cap") ? HK_CAUSE_cap_reached
                    : hk_is_label(reason, "injected") ? HK_CAUSE_injected : -1;
        if (cause >= 0) {
            const struct hk_ev *before = decision_before(path, last);
            const char *what = large ? "a large block's mapping"
                               : heapless ? "the thread heap's own pages"
                               : before && before->id == HK_EV_bitmap_check ? "a free slab's pages"
                               : "a new chunk's header";
            *detail = say("%s bytes refused (%s), errno %s", num(hk_get(path[last], F_bytes), a), what,
                          num(hk_get(path[last], F_err), b));
            return cause;
        }
    }
    if (!declared->has[HK_EV_superslab_alloc_fail]) {
        *detail = say("this trace was recorded without superslab_alloc_fail events");
        return HK_CAUSE_incomplete;
    }
    *detail = say("no refusal recorded on this path");
    return HK_CAUSE_incomplete;
}
