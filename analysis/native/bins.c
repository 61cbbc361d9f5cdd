/* bins.c — the timeline's buckets (bins.h), merged pairwise when the bucket width doubles. */
#include "bins.h"

#include <stdlib.h>

struct hk_bins *hk_bins_new(int64_t max_buckets)
{
    struct hk_bins *b = calloc(1, sizeof *b);
    if (!b)
        abort();
    b->max_buckets = max_buckets;
    return b;
}

static void free_cell(struct hk_cell *c)
{
    for (size_t i = 0; i < c->kinds.n; i++)
        hk_ev_unref(c->kinds.v[i].first);
    hk_vec_free(c->kinds);
}

void hk_bins_free(struct hk_bins *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->lane_list.n; i++) {
        struct hk_lane *l = b->lane_list.v[i];
        for (size_t j = 0; j < l->cells.n; j++)
            free_cell(&l->cells.v[j]);
        hk_vec_free(l->cells);
        free(l);
    }
    hk_vec_free(b->lane_list);
    hk_map_free(&b->lanes);
    free(b);
}

/* The field that tells an event kind's outcomes apart (none for refill_enter, oom and the censuses). */
static int outcome_field(int id)
{
    switch (id) {
    case HK_EV_slab_adopt:
    case HK_EV_bitmap_check:
    case HK_EV_chunk_expand:
    case HK_EV_reclaim_retry:
        return F_outcome;
    case HK_EV_mid_simple_choice:
        return F_path;
    case HK_EV_superslab_alloc_fail:
        return F_reason;
    case HK_EV_refill_exit:
        return F_result;
    default:
        return -1;
    }
}

static bool same_kind(const struct hk_bin_kind *k, uint8_t id, bool has, const struct hk_val *outcome)
{
    return k->id == id && k->has_outcome == has && (!has || hk_val_eq(&k->outcome, outcome));
}

static void add_kind(struct hk_cell *c, uint8_t id, bool has, const struct hk_val *outcome, int64_t n,
                     struct hk_ev *first)
{
    for (size_t i = 0; i < c->kinds.n; i++)
        if (same_kind(&c->kinds.v[i], id, has, outcome)) {
            c->kinds.v[i].n += n;
            hk_ev_unref(first);
            return;
        }
    struct hk_bin_kind k = {id, has, {0}, n, first};
    if (has)
        k.outcome = *outcome;
    hk_vec_push(c->kinds, k);
}

static void rebin(struct hk_bins *b, int d)
{
    for (size_t i = 0; i < b->lane_list.n; i++) {
        struct hk_lane *l = b->lane_list.v[i];
        size_t out = 0;
        for (size_t j = 0; j < l->cells.n; j++) {
            struct hk_cell c = l->cells.v[j];
            int64_t nb = c.bucket >> d;
            if (out && l->cells.v[out - 1].bucket == nb) {  /* ascending: the first event of a kind stays first */
                struct hk_cell *t = &l->cells.v[out - 1];
                for (size_t k = 0; k < c.kinds.n; k++) {
                    struct hk_bin_kind *x = &c.kinds.v[k];
                    add_kind(t, x->id, x->has_outcome, &x->outcome, x->n, x->first);
                }
                hk_vec_free(c.kinds);
            } else {
                c.bucket = nb;
                l->cells.v[out++] = c;
            }
        }
        l->cells.n = out;
    }
}

void hk_bins_event(struct hk_bins *b, struct hk_ev *ev)
{
    if (!b->has_t0) {
        b->has_t0 = true;
        b->t0 = ev->ts;
    }
    int64_t off = ev->ts - b->t0 > 0 ? ev->ts - b->t0 : 0;
    if ((off >> b->shift) >= b->max_buckets) {
        int s = b->shift;
        while ((off >> s) >= b->max_buckets)
            s++;
        rebin(b, s - b->shift);
        b->shift = s;
    }
    struct hk_key key = hk_key2(ev->vpid, ev->vtid);
    struct hk_lane *l = hk_map_get(&b->lanes, key);
    if (!l) {
        l = calloc(1, sizeof *l);
        if (!l)
            abort();
        l->vpid = ev->vpid;
        l->vtid = ev->vtid;
        hk_map_put(&b->lanes, key, l);
        hk_vec_push(b->lane_list, l);
    }
    l->events++;
    int64_t bucket = off >> b->shift;
    struct hk_cell *c = NULL;
    for (size_t j = l->cells.n; j > 0; j--) {
        if (l->cells.v[j - 1].bucket == bucket) {
            c = &l->cells.v[j - 1];
            break;
        }
        if (l->cells.v[j - 1].bucket < bucket)
            break;
    }
    if (!c) {
        struct hk_cell fresh = {bucket, {0}};
        hk_vec_push(l->cells, fresh);  /* time order: a new bucket is the lane's latest */
        c = &l->cells.v[l->cells.n - 1];
    }
    int f = outcome_field(ev->id);
    const struct hk_val *outcome = f >= 0 ? hk_get(ev, f) : NULL;
    add_kind(c, ev->id, outcome != NULL, outcome, 1, hk_ev_ref(ev));
}
