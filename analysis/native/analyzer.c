/* analyzer.c — the per-event work of the OOM-path analysis: one open refill per thread, counts per class, the
 * censuses and exit totals, and at each OOM its path, context and explaining events, judged once its window is. */
#include "analyzer.h"

#include <stdlib.h>
#include <string.h>

void hk_analyzer_init(struct hk_analyzer *a)
{
    memset(a, 0, sizeof *a);
    hk_catalogue_init();
}

static struct hk_thread *thread_of(struct hk_analyzer *a, int64_t vpid, int64_t vtid)
{
    struct hk_thread *t = a->last_thread;
    if (t && t->vpid == vpid && t->vtid == vtid)
        return t;
    t = a->last_thread = hk_map_get(&a->threads, hk_key2(vpid, vtid));
    if (!t) {
        t = calloc(1, sizeof *t);
        if (!t)
            abort();
        t->vpid = vpid;
        t->vtid = vtid;
        hk_map_put(&a->threads, hk_key2(vpid, vtid), t);
        a->last_thread = t;
    }
    return t;
}

static struct hk_class *class_of(struct hk_analyzer *a, int64_t cls)
{
    if (cls >= 0 && cls < 256 && a->class_by_index[cls])
        return a->class_by_index[cls];
    struct hk_class *c = hk_map_get(&a->classes, hk_key2(cls, 0));
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c)
            abort();
        c->cls = cls;
        hk_map_put(&a->classes, hk_key2(cls, 0), c);
    }
    if (cls >= 0 && cls < 256)
        a->class_by_index[cls] = c;
    return c;
}

static void count(hk_counter *c, const struct hk_val *key)
{
    struct hk_val none = {0};
    if (!key)
        key = &none;  /* a missing field counts under None; the catalogue check makes it impossible */
    for (size_t i = 0; i < c->n; i++)
        if (hk_val_eq(&c->v[i].key, key)) {
            c->v[i].n++;
            return;
        }
    hk_vec_push(*c, ((struct hk_count){*key, 1}));
}

static void free_refill(struct hk_open_refill *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->events.n; i++)
        hk_ev_unref(r->events.v[i]);
    hk_vec_free(r->events);
    free(r);
}

static void free_memory(struct hk_memory *m)
{
    if (m && --m->refs == 0) {
        hk_vec_free(m->classes);
        free(m);
    }
}

static void clear_large_fail(struct hk_thread *t)
{
    for (size_t i = 0; i < t->large_fail.n; i++)
        hk_ev_unref(t->large_fail.v[i]);
    t->large_fail.n = 0;
}

static const struct hk_val *get(const struct hk_ev *e, int f)
{
    static const struct hk_val none = {0};
    const struct hk_val *v = hk_get(e, f);
    return v ? v : &none;
}

/* ---- duplicates: overlapping snapshots ---- */

/* Whether this event was fed already: snapshots of one run overlap, and read together the same event comes once
 * from each, one right after the other for its thread (the muxer orders by time; one thread's events never
 * share a timestamp). */
static bool again(struct hk_analyzer *a, struct hk_ev *ev)
{
    if (!ev->has_vtid)
        return false;
    struct hk_thread *t = thread_of(a, ev->vpid, ev->vtid);
    if (t->has_last && t->last_ts == ev->ts) {
        for (size_t i = 0; i < t->last_events.n; i++)
            if (hk_ev_same(t->last_events.v[i], ev)) {
                a->events++;
                a->duplicates++;
                return true;
            }
    } else {
        for (size_t i = 0; i < t->last_events.n; i++)
            hk_ev_unref(t->last_events.v[i]);
        t->last_events.n = 0;
        t->has_last = true;
        t->last_ts = ev->ts;
    }
    hk_vec_push(t->last_events, hk_ev_ref(ev));
    return false;
}

/* ---- unlisted OOMs: judged once the trace has gone past their window ---- */

static void settle(struct hk_analyzer *a, int64_t now, bool final)
{
    while (a->pending_head < a->pending.n) {
        struct hk_pending *p = &a->pending.v[a->pending_head];
        if (!final && !(p->end < now))
            break;
        if (!final && p->has_trace && !hk_coverage_all_begun(&a->coverage, p->trace))
            break;  /* a stream of this (snapshot) trace has not begun yet: its coverage is not known */
        a->pending_head++;
        int cause = p->cause;
        if (hk_losses_judged(&a->losses, p->start, p->end, &p->streams, hk_cause_names[cause]))
            cause = HK_CAUSE_incomplete;
        else if (!p->large && hk_coverage_uncovered(&a->coverage, p->has_trace, p->trace, p->start, p->end).set)
            cause = HK_CAUSE_incomplete;
        a->unlisted_causes[cause]++;
        free(p->streams.addr);
    }
    if (a->pending_head == a->pending.n)
        a->pending.n = a->pending_head = 0;
}

void hk_analyzer_settle_all(struct hk_analyzer *a)
{
    settle(a, 0, true);
}

/* ---- what the program counted: censuses and exit totals ---- */

static void census(struct hk_analyzer *a, struct hk_thread *t, struct hk_ev *ev)
{
    if (ev->id == HK_EV_oom_memory) {
        free_memory(t->memory_pending);
        struct hk_memory *m = calloc(1, sizeof *m);
        if (!m)
            abort();
        m->refs = 1;
        m->seq = *get(ev, F_seq);
        m->cap = *get(ev, F_cap);
        m->committed = *get(ev, F_committed);
        m->large = *get(ev, F_large);
        m->tracer = *get(ev, F_tracer);
        m->classes_expected = *get(ev, F_classes);
        t->memory_pending = m;
        return;
    }
    (void)a;
    struct hk_memory *m = t->memory_pending;
    if (m && hk_val_eq(&m->seq, get(ev, F_seq))) {
        struct hk_class_memory c = {*get(ev, F_class_idx), *get(ev, F_block_size), *get(ev, F_committed),
                                    *get(ev, F_live), *get(ev, F_free), *get(ev, F_holder_tid),
                                    *get(ev, F_holder_free)};
        hk_vec_push(m->classes, c);
    }
}

static void exit_totals(struct hk_analyzer *a, struct hk_ev *ev)
{
    struct hk_key k = hk_key2(ev->vpid, 0);
    struct hk_exit *e = hk_map_get(&a->exits, k);
    if (ev->id == HK_EV_exit_totals) {
        if (!e) {
            e = calloc(1, sizeof *e);
            if (!e)
                abort();
            hk_map_put(&a->exits, k, e);
        }
        e->vpid = ev->vpid;
        e->ooms = *get(ev, F_ooms);
        e->refills = *get(ev, F_refills);
        e->classes_expected = *get(ev, F_classes);
        e->classes.n = 0;
        return;
    }
    if (!e)
        return;
    struct hk_exit_class c = {*get(ev, F_class_idx), *get(ev, F_refills), *get(ev, F_ooms), *get(ev, F_block_size)};
    for (size_t i = 0; i < e->classes.n; i++)
        if (hk_val_eq(&e->classes.v[i].cls, &c.cls)) {
            e->classes.v[i] = c;
            return;
        }
    hk_vec_push(e->classes, c);
}

static void count_event(struct hk_analyzer *a, struct hk_class *cc, struct hk_ev *ev)
{
    switch (ev->id) {
    case HK_EV_refill_enter: {
        cc->refills++;
        struct hk_key k = hk_key2(ev->vpid, cc->cls);
        hk_map_put(&a->proc_refills, k, (void *)((uintptr_t)hk_map_get(&a->proc_refills, k) + 1));
        break;
    }
    case HK_EV_slab_adopt:
        count(&cc->adoptions, hk_get(ev, F_outcome));
        break;
    case HK_EV_reclaim_retry:
        count(&cc->reclaims, hk_get(ev, F_outcome));
        break;
    case HK_EV_bitmap_check:
        count(&cc->bitmap_checks, hk_get(ev, F_outcome));
        break;
    case HK_EV_mid_simple_choice:
        count(&cc->mid_simple, hk_get(ev, F_path));
        break;
    case HK_EV_chunk_expand:
        count(&cc->expansions, hk_get(ev, F_outcome));
        break;
    case HK_EV_superslab_alloc_fail:
        count(&cc->failures, hk_get(ev, F_reason));
        break;
    case HK_EV_oom:
        cc->ooms++;
        break;
    default:
        break;
    }
}

/* ---- the OOM numbers a process gave ---- */

static bool numbers_add(struct hk_analyzer *a, int64_t vpid, int64_t n)
{
    struct hk_numbers *nums = hk_map_get(&a->numbers, hk_key2(vpid, 0));
    if (!nums) {
        nums = calloc(1, sizeof *nums);
        if (!nums)
            abort();
        nums->vpid = vpid;
        hk_map_put(&a->numbers, hk_key2(vpid, 0), nums);
    }
    int64_t *r = nums->r.v;
    size_t count = nums->r.n / 2, lo = 0, hi = count;
    while (lo < hi) {  /* ranges starting at or before n end before index lo */
        size_t mid = (lo + hi) / 2;
        if (r[2 * mid] <= n)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t i = lo;
    if (i && r[2 * (i - 1) + 1] >= n)
        return false;  /* seen already (the same OOM in two snapshots) */
    if (i && r[2 * (i - 1) + 1] == n - 1) {
        r[2 * (i - 1) + 1] = n;
        if (i < count && r[2 * i] == n + 1) {
            r[2 * (i - 1) + 1] = r[2 * i + 1];
            hk_vec_remove(nums->r, 2 * i);
            hk_vec_remove(nums->r, 2 * i);
        }
    } else if (i < count && r[2 * i] == n + 1) {
        r[2 * i] = n;
    } else {
        hk_vec_insert(nums->r, 2 * i, n);
        hk_vec_insert(nums->r, 2 * i + 1, n);
    }
    return true;
}

/* ---- an OOM ---- */

static void oom(struct hk_analyzer *a, struct hk_thread *t, struct hk_ev *ev)
{
    const struct hk_val *no = hk_get(ev, F_oom_no);
    if (no && !no->label && no->i)
        numbers_add(a, ev->vpid, no->i);
    t->ooms++;
    struct hk_memory *memory = t->memory_pending;
    t->memory_pending = NULL;
    if (memory && hk_val_eq(&memory->seq, get(ev, F_seq))) {
        memory->complete = hk_is_num(&memory->classes_expected, (__int128)memory->classes.n);
        /* The rest of what the program commits: thread heaps' own pages (and releases the OS refused). */
        __int128 other = hk_num(&memory->committed) - hk_num(&memory->large);
        for (size_t i = 0; i < memory->classes.n; i++)
            other -= hk_num(&memory->classes.v[i].committed);
        memory->other = other > 0 ? (int64_t)other : 0;
        free_memory(a->last_memory);
        a->last_memory = memory;
        memory->refs++;
    } else {
        free_memory(memory);
        memory = NULL;
    }
    a->n_ooms++;
    const struct hk_val *clsv = get(ev, F_class_idx);
    int64_t cls = clsv->i;
    bool large = hk_is_num(clsv, HK_LARGE_CLASS);
    struct hk_oom *rec = calloc(1, sizeof *rec);
    if (!rec)
        abort();
    struct hk_explained *found = NULL;
    size_t nfound = 0;
    if (large || hk_is_num(get(ev, F_seq), 0)) {
        for (size_t i = 0; i < t->large_fail.n; i++)
            hk_vec_push(rec->path, t->large_fail.v[i]);  /* the thread's references move to the path */
        t->large_fail.n = 0;
        t->has_large_fail = false;
    } else {
        struct hk_open_refill *ref = t->open;
        t->open = NULL;
        hk_explainers_take(&a->explainers, t->vpid, t->vtid, ref, &found, &nfound);
        if (ref && hk_val_eq(&ref->seq, get(ev, F_seq))) {
            for (size_t i = 0; i < ref->events.n; i++)
                hk_vec_push(rec->path, hk_ev_ref(ref->events.v[i]));
            rec->begins_midway = ref->begins_midway;
            rec->cut = ref->cut;
        } else {
            rec->begins_midway = true;
            for (size_t i = 0; i < nfound; i++) {
                hk_ev_unref(found[i].decision);
                hk_ev_unref(found[i].found);
            }
            nfound = 0;
        }
        free_refill(ref);
        if (!a->declared.has[HK_EV_refill_enter])
            rec->begins_midway = false;  /* a failures-only build: no path has a recorded beginning to miss */
    }
    hk_vec_push(rec->path, hk_ev_ref(ev));
    rec->vpid = t->vpid;
    rec->vtid = t->vtid;
    rec->oom = hk_ev_ref(ev);
    int64_t start = rec->path.v[0]->ts;
    void *trace = hk_map_get(&a->vpid_trace, hk_key2(t->vpid, 0));
    rec->has_trace = trace != NULL;
    rec->trace = trace ? (uintptr_t)trace - 1 : 0;
    rec->number = a->n_ooms;
    rec->memory = memory;
    hk_runs_during(t->runs.n ? &t->runs : NULL, start, ev->ts, &rec->streams);
    rec->cause = hk_structural_cause(rec->path.v, rec->path.n, rec->begins_midway, rec->cut, &a->declared,
                                     &rec->detail);
    if (a->listed[rec->cause] >= HK_DETAIL_PER_CAUSE) {
        a->unlisted++;
        struct hk_pending p = {start, ev->ts, rec->cause, large, rec->has_trace, rec->trace, rec->streams};
        rec->streams.addr = NULL;
        hk_vec_push(a->pending, p);
        for (size_t i = 0; i < nfound; i++) {
            hk_ev_unref(found[i].decision);
            hk_ev_unref(found[i].found);
        }
        free(found);
        for (size_t i = 0; i < rec->path.n; i++)
            hk_ev_unref(rec->path.v[i]);
        hk_vec_free(rec->path);
        hk_ev_unref(rec->oom);
        free(rec->detail);
        free_memory(memory);
        free(rec);
        return;
    }
    a->listed[rec->cause]++;
    /* The newest HK_CONTEXT_SHOWN events of other threads since the path began (the window is in time order). */
    struct hk_class *cc = class_of(a, cls);
    struct hk_ev *ctx[HK_CONTEXT_SHOWN];
    int nctx = 0;
    for (int k = cc->recent_n - 1; k >= 0; k--) {
        struct hk_ev *e = cc->recent[(cc->recent_head + k) % HK_CONTEXT_WINDOW];
        if (e->ts < start || nctx == HK_CONTEXT_SHOWN)
            break;
        if (!(e->vpid == t->vpid && e->vtid == t->vtid) && e->ts <= ev->ts)
            ctx[nctx++] = e;
    }
    for (int k = nctx - 1; k >= 0; k--)
        hk_vec_push(rec->context, hk_ev_ref(ctx[k]));
    /* The explaining events, each once per reason, in time order, with the steps they explain. */
    for (size_t i = 0; i < nfound; i++) {
        int step = 0;
        for (size_t s = 0; s < rec->path.n; s++)
            if (rec->path.v[s] == found[i].decision) {
                step = (int)s + 1;
                break;
            }
        size_t j;
        for (j = 0; j < rec->explaining.n; j++)
            if (rec->explaining.v[j].ev == found[i].found && rec->explaining.v[j].kind == found[i].kind)
                break;
        if (j == rec->explaining.n) {
            struct hk_explaining x = {hk_ev_ref(found[i].found), found[i].kind, found[i].chunk, {0}};
            hk_vec_push(rec->explaining, x);
        }
        hk_vec_push(rec->explaining.v[j].steps, step);
        hk_ev_unref(found[i].decision);
        hk_ev_unref(found[i].found);
    }
    free(found);
    /* sorted by (time, first step), stably */
    for (size_t i = 1; i < rec->explaining.n; i++) {
        struct hk_explaining x = rec->explaining.v[i];
        size_t j = i;
        while (j > 0 && (rec->explaining.v[j - 1].ev->ts > x.ev->ts ||
                         (rec->explaining.v[j - 1].ev->ts == x.ev->ts &&
                          rec->explaining.v[j - 1].steps.v[0] > x.steps.v[0]))) {
            rec->explaining.v[j] = rec->explaining.v[j - 1];
            j--;
        }
        rec->explaining.v[j] = x;
    }
    hk_vec_push(a->ooms, rec);
}

/* ---- every event ---- */

void hk_analyzer_declare(struct hk_analyzer *a, const char *name)
{
    const char *prefix = hk_provider_prefix();
    size_t n = strlen(prefix);
    const char *s = hk_intern(name);
    for (size_t i = 0; i < a->declared_names.n; i++)
        if (a->declared_names.v[i] == s)
            return;
    hk_vec_push(a->declared_names, s);
    if (strncmp(name, prefix, n) == 0) {
        int id = hk_event_by_name(name + n);
        if (id >= 0)
            a->declared.has[id] = true;
    }
}

static void event(struct hk_analyzer *a, struct hk_ev *ev, uintptr_t stream)
{
    if (a->pending_head < a->pending.n && ev->ts > a->pending.v[a->pending_head].end)
        settle(a, ev->ts, false);
    a->events++;
    a->hakmem_events++;
    if (!a->has_ts) {
        a->has_ts = true;
        a->first_ts = ev->ts;
    }
    a->last_ts = ev->ts;
    struct hk_thread *t = thread_of(a, ev->vpid, ev->vtid);
    if (ev->has_vtid)
        hk_runs_saw(&t->runs, ev->ts, stream);
    /* Stacks and heap samples are no decision: they join no refill path and no class's counts. */
    if (ev->id == HK_EV_call_stack || ev->id == HK_EV_heap_sample || ev->id == HK_EV_heap_sample_free)
        return;
    if (a->bins)
        hk_bins_event(a->bins, ev);
    if (ev->id == HK_EV_oom_memory || ev->id == HK_EV_oom_class_memory) {
        census(a, t, ev);
        return;
    }
    if (ev->procname && *ev->procname)
        hk_map_put(&a->procnames, hk_key2(ev->vpid, 0), (void *)ev->procname);
    if (ev->id == HK_EV_exit_totals || ev->id == HK_EV_exit_class_totals) {
        exit_totals(a, ev);
        return;
    }
    if (!t->listed) {
        t->listed = true;
        t->procname = ev->procname;
    } else if (ev->procname && *ev->procname) {
        t->procname = ev->procname;
    }
    const struct hk_val *clsv = get(ev, F_class_idx);
    struct hk_class *cc = class_of(a, clsv->i);
    const struct hk_val *bs = hk_get(ev, F_block_size);
    if (!cc->has_block_size && bs) {
        cc->has_block_size = true;
        cc->block_size = *bs;
    }
    count_event(a, cc, ev);
    if (ev->id != HK_EV_oom) {
        if (cc->recent_n == HK_CONTEXT_WINDOW) {
            hk_ev_unref(cc->recent[cc->recent_head]);
            cc->recent_head = (cc->recent_head + 1) % HK_CONTEXT_WINDOW;
            cc->recent_n--;
        }
        cc->recent[(cc->recent_head + cc->recent_n++) % HK_CONTEXT_WINDOW] = hk_ev_ref(ev);
    }
    if (ev->id == HK_EV_oom) {
        oom(a, t, ev);
        return;
    }
    const struct hk_val *seq = get(ev, F_seq);
    if (hk_is_num(clsv, HK_LARGE_CLASS) || (hk_is_num(seq, 0) && ev->id == HK_EV_superslab_alloc_fail)) {
        /* Paths with no refill: a large block's mapping, or (seq 0) the pages of the thread's own heap. A refusal
         * begins one; the reclaim-and-retries after it follow (a retry that mapped the block leaves a path that
         * the next refusal replaces). */
        if (ev->id == HK_EV_superslab_alloc_fail) {
            clear_large_fail(t);
            t->has_large_fail = true;
            hk_vec_push(t->large_fail, hk_ev_ref(ev));
        } else if (ev->id == HK_EV_reclaim_retry && t->has_large_fail) {
            hk_vec_push(t->large_fail, hk_ev_ref(ev));
        }
        return;
    }
    struct hk_open_refill *ref = t->open;
    if (ev->id == HK_EV_refill_enter || !ref || !hk_val_eq(&ref->seq, seq)) {
        /* Without its refill_enter in the trace: a snapshot that starts here, or lost events. */
        free_refill(ref);
        ref = t->open = calloc(1, sizeof *ref);
        if (!ref)
            abort();
        ref->seq = *seq;
        ref->begins_midway = ev->id != HK_EV_refill_enter;
    }
    bool added = ref->events.n < HK_PATH_LIMIT;
    if (added)
        hk_vec_push(ref->events, hk_ev_ref(ev));
    else
        ref->cut = true;
    hk_explainers_event(&a->explainers, ref, added, ev, clsv->i);
    if (ev->id == HK_EV_refill_exit && !hk_is_label(hk_get(ev, F_result), "null")) {
        free_refill(ref);
        t->open = NULL;
        hk_explainers_forget(&a->explainers, t->vpid, t->vtid);
    }
}

void hk_analyzer_inject(struct hk_analyzer *a, struct hk_ev *ev)
{
    event(a, ev, 0);
    hk_ev_unref(ev);
}

void hk_analyzer_event(struct hk_analyzer *a, struct hk_ev *ev, uintptr_t stream, uintptr_t trace)
{
    if (!ev->has_vpid || !ev->has_vtid)
        a->no_thread_context++;
    struct hk_thread *t = thread_of(a, ev->vpid, ev->vtid);
    if (!t->traced) {
        t->traced = true;
        if (!hk_map_get(&a->vpid_trace, hk_key2(ev->vpid, 0)))
            hk_map_put(&a->vpid_trace, hk_key2(ev->vpid, 0), (void *)(trace + 1));
    }
    if (!again(a, ev))
        event(a, ev, stream);
    hk_ev_unref(ev);
}

static void free_oom(struct hk_oom *o)
{
    for (size_t i = 0; i < o->path.n; i++)
        hk_ev_unref(o->path.v[i]);
    hk_vec_free(o->path);
    for (size_t i = 0; i < o->context.n; i++)
        hk_ev_unref(o->context.v[i]);
    hk_vec_free(o->context);
    for (size_t i = 0; i < o->explaining.n; i++) {
        hk_ev_unref(o->explaining.v[i].ev);
        hk_vec_free(o->explaining.v[i].steps);
    }
    hk_vec_free(o->explaining);
    hk_ev_unref(o->oom);
    free(o->detail);
    free(o->streams.addr);
    free_memory(o->memory);
    free(o);
}

void hk_analyzer_release_listed(struct hk_analyzer *a)
{
    for (size_t i = 0; i < a->ooms.n; i++) {
        a->listed[a->ooms.v[i]->cause]--;
        free_oom(a->ooms.v[i]);
    }
    a->ooms.n = 0;
}

void hk_analyzer_free(struct hk_analyzer *a)
{
    for (size_t i = 0; i < a->ooms.n; i++)
        free_oom(a->ooms.v[i]);
    hk_vec_free(a->ooms);
    free_memory(a->last_memory);
    for (size_t i = 0; i < a->threads.cap; i++) {
        struct hk_thread *t = a->threads.slot[i].value;
        if (!t)
            continue;
        free_refill(t->open);
        clear_large_fail(t);
        hk_vec_free(t->large_fail);
        free_memory(t->memory_pending);
        for (size_t j = 0; j < t->last_events.n; j++)
            hk_ev_unref(t->last_events.v[j]);
        hk_vec_free(t->last_events);
        free(t);
    }
    for (size_t i = 0; i < a->classes.cap; i++) {
        struct hk_class *c = a->classes.slot[i].value;
        if (!c)
            continue;
        for (int k = 0; k < c->recent_n; k++)
            hk_ev_unref(c->recent[(c->recent_head + k) % HK_CONTEXT_WINDOW]);
        hk_vec_free(c->adoptions);
        hk_vec_free(c->reclaims);
        hk_vec_free(c->bitmap_checks);
        hk_vec_free(c->mid_simple);
        hk_vec_free(c->expansions);
        hk_vec_free(c->failures);
        free(c);
    }
    for (size_t i = 0; i < a->exits.cap; i++) {
        struct hk_exit *e = a->exits.slot[i].value;
        if (e) {
            hk_vec_free(e->classes);
            free(e);
        }
    }
    for (size_t i = 0; i < a->numbers.cap; i++) {
        struct hk_numbers *n = a->numbers.slot[i].value;
        if (n) {
            hk_vec_free(n->r);
            free(n);
        }
    }
    for (size_t i = a->pending_head; i < a->pending.n; i++)
        free(a->pending.v[i].streams.addr);
    hk_vec_free(a->pending);
    hk_explainers_free(&a->explainers);
    hk_losses_free(&a->losses);
    hk_coverage_free(&a->coverage);
    hk_bins_free(a->bins);
    hk_map_free(&a->threads);
    hk_map_free(&a->classes);
    hk_map_free(&a->vpid_trace);
    hk_map_free(&a->numbers);
    hk_map_free(&a->exits);
    hk_map_free(&a->proc_refills);
    hk_map_free(&a->procnames);
    hk_vec_free(a->malformed);
    hk_vec_free(a->declared_names);
}
