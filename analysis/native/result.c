/* result.c — the analysis handed to the Python side as one JSON text: counts, threads, processes, loss ranges,
 * the listed OOMs with their paths, contexts and explaining events judged against the losses, the timeline's
 * buckets. The Python side shapes it into the report (hakmem/paths.py) without looking at any event again. */
#include <stdlib.h>

#include "core.h"
#include "json.h"

#define HK_EXPORT __attribute__((visibility("default")))

static const char *const kind_names[] = {"became_current", "filled", "claimed"};

static void counter(struct hk_json *j, const char *name, const hk_counter *c)
{
    hk_json_key(j, name);
    hk_json_raw(j, "[");
    for (size_t i = 0; i < c->n; i++) {
        hk_json_raw(j, "[");
        hk_json_val(j, &c->v[i].key);
        hk_json_raw(j, ",");
        hk_json_int(j, c->v[i].n);
        hk_json_raw(j, "],");
    }
    hk_json_close(j, ']');
    hk_json_raw(j, ",");
}

static void memory(struct hk_json *j, const struct hk_memory *m)
{
    if (!m) {
        hk_json_raw(j, "null");
        return;
    }
    hk_json_raw(j, "{\"cap\":");
    hk_json_val(j, &m->cap);
    hk_json_raw(j, ",\"committed\":");
    hk_json_val(j, &m->committed);
    hk_json_raw(j, ",\"large\":");
    hk_json_val(j, &m->large);
    hk_json_raw(j, ",\"tracer\":");
    hk_json_val(j, &m->tracer);
    hk_json_raw(j, ",\"classes\":[");
    for (size_t i = 0; i < m->classes.n; i++) {
        const struct hk_class_memory *c = &m->classes.v[i];
        hk_json_raw(j, "{\"class\":");
        hk_json_val(j, &c->cls);
        hk_json_raw(j, ",\"block_size\":");
        hk_json_val(j, &c->block_size);
        hk_json_raw(j, ",\"committed\":");
        hk_json_val(j, &c->committed);
        hk_json_raw(j, ",\"live\":");
        hk_json_val(j, &c->live);
        hk_json_raw(j, ",\"free\":");
        hk_json_val(j, &c->free);
        hk_json_raw(j, ",\"holder_vtid\":");
        hk_json_val(j, &c->holder_vtid);
        hk_json_raw(j, ",\"holder_free\":");
        hk_json_val(j, &c->holder_free);
        hk_json_raw(j, "},");
    }
    hk_json_close(j, ']');
    hk_json_raw(j, m->complete ? ",\"complete\":true,\"other\":" : ",\"complete\":false,\"other\":");
    hk_json_int(j, m->other);
    hk_json_raw(j, "}");
}

static void events(struct hk_json *j, const char *name, struct hk_ev *const *v, size_t n)
{
    hk_json_key(j, name);
    hk_json_raw(j, "[");
    for (size_t i = 0; i < n; i++) {
        hk_json_event(j, v[i]);
        hk_json_raw(j, ",");
    }
    hk_json_close(j, ']');
    hk_json_raw(j, ",");
}

static void oom(struct hk_json *j, struct hk_analyzer *a, const struct hk_oom *o)
{
    int64_t start = o->path.v[0]->ts, end = o->oom->ts;
    hk_json_raw(j, "{\"vpid\":");
    hk_json_int(j, o->vpid);
    hk_json_raw(j, ",\"vtid\":");
    hk_json_int(j, o->vtid);
    hk_json_raw(j, ",\"number\":");
    hk_json_int(j, o->number);
    hk_json_raw(j, o->begins_midway ? ",\"begins_midway\":true" : ",\"begins_midway\":false");
    hk_json_raw(j, o->cut ? ",\"cut\":true,\"cause\":" : ",\"cut\":false,\"cause\":");
    hk_json_str(j, hk_cause_names[o->cause]);
    hk_json_raw(j, ",\"detail\":");
    hk_json_str(j, o->detail);
    hk_json_raw(j, ",\"lost\":");
    hk_json_int(j, hk_losses_judged(&a->losses, start, end, &o->streams, hk_cause_names[o->cause]));
    hk_json_raw(j, ",\"coverage_begins\":");
    hk_json_opt(j, hk_coverage_uncovered(&a->coverage, o->has_trace, o->trace, start, end));
    hk_json_raw(j, ",\"memory\":");
    memory(j, o->memory);
    hk_json_raw(j, ",");
    events(j, "path", o->path.v, o->path.n);
    events(j, "context", o->context.v, o->context.n);
    hk_json_raw(j, "\"explaining\":[");
    for (size_t i = 0; i < o->explaining.n; i++) {
        const struct hk_explaining *x = &o->explaining.v[i];
        hk_json_raw(j, "[");
        hk_json_event(j, x->ev);
        hk_json_raw(j, ",");
        hk_json_str(j, kind_names[x->kind]);
        hk_json_raw(j, ",");
        hk_json_int(j, x->chunk);
        hk_json_raw(j, ",[");
        for (size_t s = 0; s < x->steps.n; s++) {
            hk_json_int(j, x->steps.v[s]);
            hk_json_raw(j, ",");
        }
        hk_json_close(j, ']');
        hk_json_raw(j, "],");
    }
    hk_json_close(j, ']');
    hk_json_raw(j, "}");
}

static void bins(struct hk_json *j, const struct hk_bins *b)
{
    if (!b) {
        hk_json_raw(j, "null");
        return;
    }
    hk_json_raw(j, "{\"shift\":");
    hk_json_int(j, b->shift);
    hk_json_raw(j, ",\"lanes\":[");
    for (size_t i = 0; i < b->lane_list.n; i++) {
        const struct hk_lane *l = b->lane_list.v[i];
        hk_json_raw(j, "[");
        hk_json_int(j, l->vpid);
        hk_json_raw(j, ",");
        hk_json_int(j, l->vtid);
        hk_json_raw(j, ",");
        hk_json_int(j, l->events);
        hk_json_raw(j, ",[");
        for (size_t c = 0; c < l->cells.n; c++) {
            const struct hk_cell *cell = &l->cells.v[c];
            hk_json_raw(j, "[");
            hk_json_int(j, cell->bucket);
            hk_json_raw(j, ",[");
            for (size_t k = 0; k < cell->kinds.n; k++) {
                const struct hk_bin_kind *kd = &cell->kinds.v[k];
                hk_json_raw(j, "[");
                hk_json_val(j, kd->has_outcome ? &kd->outcome : NULL);
                hk_json_raw(j, ",");
                hk_json_int(j, kd->n);
                hk_json_raw(j, ",");
                hk_json_event(j, kd->first);
                hk_json_raw(j, "],");
            }
            hk_json_close(j, ']');
            hk_json_raw(j, "],");
        }
        hk_json_close(j, ']');
        hk_json_raw(j, "],");
    }
    hk_json_close(j, ']');
    hk_json_raw(j, "}");
}

static void declared(struct hk_json *j, const struct hk_analyzer *a)
{
    hk_json_raw(j, ",\"declared\":[");
    for (size_t i = 0; i < a->declared_names.n; i++) {
        hk_json_str(j, a->declared_names.v[i]);
        hk_json_raw(j, ",");
    }
    hk_json_close(j, ']');
}

HK_EXPORT int64_t hk_core_ooms_waiting(const struct hk_core *c)
{
    return (int64_t)c->a.ooms.n;
}

/* A live reader's share (hakmem-trace watch): the OOMs listed since the last take, judged against the losses seen
 * so far, with what the Python side needs to shape them (the declared events, the stacks and the state dump);
 * then they and their stacks are let go. */
HK_EXPORT char *hk_core_take_ooms(struct hk_core *c)
{
    struct hk_analyzer *a = &c->a;
    struct hk_json j = {0};
    hk_json_raw(&j, "{\"n_ooms\":");
    hk_json_int(&j, a->n_ooms);
    hk_json_raw(&j, ",\"unlisted\":");
    hk_json_int(&j, a->unlisted);
    declared(&j, a);
    hk_json_raw(&j, ",\"ooms\":[");
    for (size_t i = 0; i < a->ooms.n; i++) {
        oom(&j, a, a->ooms.v[i]);
        hk_json_raw(&j, ",");
    }
    hk_json_close(&j, ']');
    hk_json_raw(&j, ",\"aux\":");
    hk_aux_json(&j, &c->aux);
    hk_json_raw(&j, "}");
    for (size_t i = 0; i < a->ooms.n; i++) {
        const struct hk_oom *o = a->ooms.v[i];
        const struct hk_val *no = hk_get(o->oom, F_oom_no);
        if (no && !no->label)
            hk_aux_forget_stack(&c->aux, o->vpid, o->vtid, no->i);
    }
    hk_analyzer_release_listed(a);
    return j.s;
}

HK_EXPORT char *hk_core_result(struct hk_core *c)
{
    struct hk_analyzer *a = &c->a;
    struct hk_json j = {0};
    hk_json_raw(&j, "{\"events\":");
    hk_json_int(&j, a->events);
    hk_json_raw(&j, ",\"hakmem_events\":");
    hk_json_int(&j, a->hakmem_events);
    hk_json_raw(&j, ",\"first_ns\":");
    hk_json_opt(&j, (struct hk_opt){a->first_ts, a->has_ts});
    hk_json_raw(&j, ",\"last_ns\":");
    hk_json_opt(&j, (struct hk_opt){a->last_ts, a->has_ts});
    hk_json_raw(&j, ",\"duplicates\":");
    hk_json_int(&j, a->duplicates);
    hk_json_raw(&j, ",\"no_thread_context\":");
    hk_json_int(&j, a->no_thread_context);
    hk_json_raw(&j, ",\"malformed\":[");
    for (size_t i = 0; i < a->malformed.n; i++) {
        hk_json_raw(&j, "[");
        hk_json_str(&j, a->malformed.v[i].name);
        hk_json_raw(&j, ",");
        hk_json_int(&j, a->malformed.v[i].n);
        hk_json_raw(&j, "],");
    }
    hk_json_close(&j, ']');
    declared(&j, a);
    hk_json_raw(&j, ",\"n_ooms\":");
    hk_json_int(&j, a->n_ooms);
    hk_json_raw(&j, ",\"unlisted\":");
    hk_json_int(&j, a->unlisted);
    hk_json_raw(&j, ",\"classes\":[");
    for (size_t i = 0; i < a->classes.cap; i++) {
        const struct hk_class *cc = a->classes.slot[i].value;
        if (!cc)
            continue;
        hk_json_raw(&j, "[");
        hk_json_int(&j, cc->cls);
        hk_json_raw(&j, ",");
        hk_json_val(&j, cc->has_block_size ? &cc->block_size : NULL);
        hk_json_raw(&j, ",");
        hk_json_int(&j, cc->refills);
        hk_json_raw(&j, ",");
        hk_json_int(&j, cc->ooms);
        hk_json_raw(&j, ",{");
        counter(&j, "bitmap_checks", &cc->bitmap_checks);
        counter(&j, "mid_simple_choices", &cc->mid_simple);
        counter(&j, "expansions", &cc->expansions);
        counter(&j, "failures", &cc->failures);
        counter(&j, "adoptions", &cc->adoptions);
        counter(&j, "reclaims", &cc->reclaims);
        hk_json_close(&j, '}');
        hk_json_raw(&j, "],");
    }
    hk_json_close(&j, ']');
    hk_json_raw(&j, ",\"threads\":[");
    for (size_t i = 0; i < a->threads.cap; i++) {
        const struct hk_thread *t = a->threads.slot[i].value;
        if (!t || !t->listed)
            continue;
        hk_json_raw(&j, "[");
        hk_json_int(&j, t->vpid);
        hk_json_raw(&j, ",");
        hk_json_int(&j, t->vtid);
        hk_json_raw(&j, ",");
        hk_json_str(&j, t->procname);
        hk_json_raw(&j, ",");
        hk_json_int(&j, t->ooms);
        hk_json_raw(&j, "],");
    }
    hk_json_close(&j, ']');
    hk_json_raw(&j, ",\"memory_at_last_oom\":");
    memory(&j, a->last_memory);
    hk_json_raw(&j, ",\"numbers\":[");
    for (size_t i = 0; i < a->numbers.cap; i++) {
        const struct hk_numbers *nums = a->numbers.slot[i].value;
        if (!nums)
            continue;
        hk_json_raw(&j, "[");
        hk_json_int(&j, nums->vpid);
        hk_json_raw(&j, ",[");
        for (size_t r = 0; r < nums->r.n; r++) {
            hk_json_int(&j, nums->r.v[r]);
            hk_json_raw(&j, ",");
        }
        hk_json_close(&j, ']');
        hk_json_raw(&j, "],");
    }
    hk_json_close(&j, ']');
    hk_json_raw(&j, ",\"exits\":[");
    for (size_t i = 0; i < a->exits.cap; i++) {
        const struct hk_exit *e = a->exits.slot[i].value;
        if (!e)
            continue;
        hk_json_raw(&j, "[");
        hk_json_int(&j, e->vpid);
        hk_json_raw(&j, ",");
        hk_json_val(&j, &e->ooms);
        hk_json_raw(&j, ",");
        hk_json_val(&j, &e->refills);
        hk_json_raw(&j, ",");
        hk_json_val(&j, &e->classes_expected);
        hk_json_raw(&j, ",[");
        for (size_t k = 0; k < e->classes.n; k++) {
            const struct hk_exit_class *ec = &e->classes.v[k];
            hk_json_raw(&j, "[");
            hk_json_val(&j, &ec->cls);
            hk_json_raw(&j, ",");
            hk_json_val(&j, &ec->refills);
            hk_json_raw(&j, ",");
            hk_json_val(&j, &ec->ooms);
            hk_json_raw(&j, ",");
            hk_json_val(&j, &ec->block_size);
            hk_json_raw(&j, "],");
        }
        hk_json_close(&j, ']');
        hk_json_raw(&j, "],");
    }
    hk_json_close(&j, ']');
    hk_json_raw(&j, ",\"proc_refills\":[");
    for (size_t i = 0; i < a->proc_refills.cap; i++) {
        if (!a->proc_refills.slot[i].value)
            continue;
        hk_json_raw(&j, "[");
        hk_json_int(&j, a->proc_refills.slot[i].key.a);
        hk_json_raw(&j, ",");
        hk_json_int(&j, a->proc_refills.slot[i].key.b);
        hk_json_raw(&j, ",");
        hk_json_int(&j, (int64_t)(uintptr_t)a->proc_refills.slot[i].value);
        hk_json_raw(&j, "],");
    }
    hk_json_close(&j, ']');
    hk_json_raw(&j, ",\"procnames\":[");
    for (size_t i = 0; i < a->procnames.cap; i++) {
        if (!a->procnames.slot[i].value)
            continue;
        hk_json_raw(&j, "[");
        hk_json_int(&j, a->procnames.slot[i].key.a);
        hk_json_raw(&j, ",");
        hk_json_str(&j, a->procnames.slot[i].value);
        hk_json_raw(&j, "],");
    }
    hk_json_close(&j, ']');
    hk_json_raw(&j, ",\"ranges\":[");
    for (size_t i = 0; i < a->losses.ranges.n; i++) {
        const struct hk_range *r = &a->losses.ranges.v[i];
        hk_json_raw(&j, "[");
        hk_json_opt(&j, r->beg);
        hk_json_raw(&j, ",");
        hk_json_opt(&j, r->end);
        hk_json_raw(&j, ",");
        hk_json_opt(&j, r->count);
        hk_json_raw(&j, ",");
        hk_json_str(&j, r->kind);
        hk_json_raw(&j, ",");
        hk_json_str(&j, r->stream.name);
        hk_json_raw(&j, "],");
    }
    hk_json_close(&j, ']');
    hk_json_raw(&j, ",\"ooms\":[");
    for (size_t i = 0; i < a->ooms.n; i++) {
        oom(&j, a, a->ooms.v[i]);
        hk_json_raw(&j, ",");
    }
    hk_json_close(&j, ']');
    /* The OOMs that were only counted, judged now that every loss is known. */
    hk_analyzer_settle_all(a);
    hk_json_raw(&j, ",\"unlisted_causes\":{");
    for (int k = 0; k < HK_CAUSE_COUNT; k++) {
        hk_json_key(&j, hk_cause_names[k]);
        hk_json_int(&j, a->unlisted_causes[k]);
        hk_json_raw(&j, ",");
    }
    hk_json_close(&j, '}');
    hk_json_raw(&j, ",\"bins\":");
    bins(&j, a->bins);
    hk_json_raw(&j, ",\"aux\":");
    hk_aux_json(&j, &c->aux);
    hk_json_raw(&j, "}");
    return j.s;
}
