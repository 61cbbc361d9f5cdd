/* explainers.c — the explaining events of explainers.h: looked up in the chunk's marks when the decision is seen,
 * or, when the explaining event is not in the trace yet (emitted after the decision's, the two threads racing to
 * the tracer), the first matching one that comes while the refill is open. Memory: HK_CHUNKS_KEPT chunks per
 * process and class, one slot per such decision of an open refill; per event O(1). */
#include "explainers.h"

#include <stdlib.h>

struct claim {
    struct hk_val bitmap;
    struct hk_ev *ev;
};

/* A chunk's events that can explain another thread's decision: the last expansion that made it current (new or
 * reused), the last claim that took its last free slab, and its last claims by the bitmap each found. */
struct marks {
    int64_t chunk;
    struct hk_ev *became_current, *filled;
    struct claim claims[HK_CLAIMS_KEPT];  /* oldest first */
    int nclaims;
    struct marks *prev, *next;    /* least recently seen first */
};

struct chunks {
    struct hk_map by_chunk;
    struct marks *head, *tail;
    size_t n;
};

struct open_entry {
    struct hk_open_refill *ref;
    HK_VEC(struct hk_slot *) slots;
};

struct waiter {
    int64_t vpid, vtid;
    struct hk_slot *slot;
};
struct waiters {
    HK_VEC(struct waiter) w;
};

static void unlink_marks(struct chunks *c, struct marks *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        c->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        c->tail = m->prev;
    m->prev = m->next = NULL;
}

static void append_marks(struct chunks *c, struct marks *m)
{
    m->prev = c->tail;
    m->next = NULL;
    if (c->tail)
        c->tail->next = m;
    else
        c->head = m;
    c->tail = m;
}

static void clear_claims(struct marks *m)
{
    for (int i = 0; i < m->nclaims; i++)
        hk_ev_unref(m->claims[i].ev);
    m->nclaims = 0;
}

static void free_marks(struct marks *m)
{
    hk_ev_unref(m->became_current);
    hk_ev_unref(m->filled);
    clear_claims(m);
    free(m);
}

static struct marks *chunk_marks(struct hk_explainers *x, int64_t vpid, int64_t cls, int64_t chunk, bool create)
{
    struct chunks *c = hk_map_get(&x->marks, hk_key2(vpid, cls));
    if (!c) {
        if (!create)
            return NULL;
        c = calloc(1, sizeof *c);
        if (!c)
            abort();
        hk_map_put(&x->marks, hk_key2(vpid, cls), c);
    }
    struct marks *m = hk_map_get(&c->by_chunk, hk_key2(chunk, 0));
    if (!m) {
        if (!create)
            return NULL;
        m = calloc(1, sizeof *m);
        if (!m)
            abort();
        m->chunk = chunk;
        hk_map_put(&c->by_chunk, hk_key2(chunk, 0), m);
        append_marks(c, m);
        if (++c->n > HK_CHUNKS_KEPT) {
            struct marks *old = c->head;
            unlink_marks(c, old);
            hk_map_del(&c->by_chunk, hk_key2(old->chunk, 0));
            free_marks(old);
            c->n--;
        }
    } else {
        unlink_marks(c, m);
        append_marks(c, m);
    }
    return m;
}

static struct hk_ev *find(struct marks *m, int kind, const struct hk_val *bitmap)
{
    if (kind == HK_BECAME_CURRENT)
        return m->became_current;
    if (kind == HK_FILLED)
        return m->filled;
    for (int i = 0; i < m->nclaims; i++)
        if (bitmap && hk_val_eq(&m->claims[i].bitmap, bitmap))
            return m->claims[i].ev;
    return NULL;
}

static struct hk_key where(int64_t vpid, int64_t cls, int64_t chunk, int kind)
{
    return (struct hk_key){vpid, cls, chunk, kind};
}

/* ev (of thread vpid/vtid) may be what the slots waiting at w wait for: another thread's, and for a lost claim
 * one that found the same bitmap. */
static void fill(struct hk_explainers *x, int64_t vpid, int64_t vtid, struct hk_ev *ev, struct hk_key w)
{
    struct waiters *ws = hk_map_get(&x->waiting, w);
    if (!ws)
        return;
    const struct hk_val *bitmap = hk_get(ev, F_bitmap);
    size_t keep = 0;
    for (size_t i = 0; i < ws->w.n; i++) {
        struct waiter it = ws->w.v[i];
        bool other_bitmap = it.slot->kind == HK_CLAIMED &&
                            !(it.slot->has_bitmap ? hk_val_eq(&it.slot->bitmap, bitmap) : bitmap == NULL);
        if ((it.vpid == vpid && it.vtid == vtid) || other_bitmap) {
            ws->w.v[keep++] = it;
            continue;
        }
        it.slot->found = hk_ev_ref(ev);
        it.slot->waiting = false;
    }
    ws->w.n = keep;
    if (!keep) {
        hk_map_del(&x->waiting, w);
        hk_vec_free(ws->w);
        free(ws);
    }
}

static void unwait(struct hk_explainers *x, struct hk_key w, struct hk_slot *slot)
{
    struct waiters *ws = hk_map_get(&x->waiting, w);
    if (!ws)
        return;
    for (size_t i = 0; i < ws->w.n; i++)
        if (ws->w.v[i].slot == slot) {
            hk_vec_remove(ws->w, i);
            break;
        }
    if (!ws->w.n) {
        hk_map_del(&x->waiting, w);
        hk_vec_free(ws->w);
        free(ws);
    }
}

static void free_slot(struct hk_slot *s)
{
    hk_ev_unref(s->decision);
    hk_ev_unref(s->found);
    free(s);
}

void hk_explainers_forget(struct hk_explainers *x, int64_t vpid, int64_t vtid)
{
    struct open_entry *e = hk_map_del(&x->open, hk_key2(vpid, vtid));
    if (!e)
        return;
    for (size_t i = 0; i < e->slots.n; i++) {
        struct hk_slot *s = e->slots.v[i];
        if (s->waiting) {
            const struct hk_val *cls = hk_get(s->decision, F_class_idx);
            unwait(x, where(vpid, cls ? cls->i : 0, s->chunk, s->kind), s);
        }
        free_slot(s);
    }
    hk_vec_free(e->slots);
    free(e);
}

void hk_explainers_event(struct hk_explainers *x, struct hk_open_refill *ref, bool last, struct hk_ev *ev,
                         int64_t cls)
{
    if (ev->id != HK_EV_bitmap_check && ev->id != HK_EV_chunk_expand)
        return;
    const struct hk_val *chunkv = hk_get(ev, F_chunk), *outcome = hk_get(ev, F_outcome);
    if (!hk_is_int(chunkv) || chunkv->i == 0)
        return;  /* no chunk (the class's first refill), or a damaged field */
    int64_t chunk = chunkv->i, vpid = ev->vpid, vtid = ev->vtid;
    int mark = -1;
    if (ev->id == HK_EV_chunk_expand &&
        (hk_is_label(outcome, "new_chunk") || hk_is_label(outcome, "reused_chained_chunk"))) {
        struct marks *m = chunk_marks(x, vpid, cls, chunk, true);
        if (hk_is_label(outcome, "new_chunk")) {
            hk_ev_unref(m->filled);
            m->filled = NULL;
            clear_claims(m);
        }
        hk_ev_unref(m->became_current);
        m->became_current = hk_ev_ref(ev);
        mark = HK_BECAME_CURRENT;
    } else if (ev->id == HK_EV_bitmap_check && hk_is_label(outcome, "claimed")) {
        struct marks *m = chunk_marks(x, vpid, cls, chunk, true);
        const struct hk_val *bitmap = hk_get(ev, F_bitmap);
        int i;
        for (i = 0; i < m->nclaims; i++)
            if (hk_val_eq(&m->claims[i].bitmap, bitmap))
                break;
        if (i < m->nclaims) {  /* replaced, and moved to the end */
            struct claim c = m->claims[i];
            hk_ev_unref(c.ev);
            for (; i + 1 < m->nclaims; i++)
                m->claims[i] = m->claims[i + 1];
            m->nclaims--;
        }
        if (m->nclaims == HK_CLAIMS_KEPT) {
            hk_ev_unref(m->claims[0].ev);
            for (i = 0; i + 1 < m->nclaims; i++)
                m->claims[i] = m->claims[i + 1];
            m->nclaims--;
        }
        m->claims[m->nclaims++] = (struct claim){*bitmap, hk_ev_ref(ev)};
        fill(x, vpid, vtid, ev, where(vpid, cls, chunk, HK_CLAIMED));
        const struct hk_val *capacity = hk_get(ev, F_capacity), *active = hk_get(ev, F_active_slabs);
        if (hk_is_int(capacity) && hk_is_num(active, hk_num(capacity) - 1)) {
            hk_ev_unref(m->filled);
            m->filled = hk_ev_ref(ev);
            mark = HK_FILLED;
        }
    }
    if (mark >= 0)
        fill(x, vpid, vtid, ev, where(vpid, cls, chunk, mark));
    int kind = -1;
    if (ev->id == HK_EV_chunk_expand && hk_is_label(outcome, "lost_race"))
        kind = HK_BECAME_CURRENT;
    else if (ev->id == HK_EV_bitmap_check && hk_is_label(outcome, "full"))
        kind = HK_FILLED;
    else if (ev->id == HK_EV_bitmap_check && hk_is_label(outcome, "lost_race"))
        kind = HK_CLAIMED;
    if (kind < 0 || !ref || !last)
        return;  /* no decision another thread explains, or one past the path's limit (not in the path) */
    struct open_entry *e = hk_map_get(&x->open, hk_key2(vpid, vtid));
    if (!e || e->ref != ref) {
        hk_explainers_forget(x, vpid, vtid);
        e = calloc(1, sizeof *e);
        if (!e)
            abort();
        e->ref = ref;
        hk_map_put(&x->open, hk_key2(vpid, vtid), e);
    }
    struct hk_slot *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->decision = hk_ev_ref(ev);
    s->kind = kind;
    s->chunk = chunk;
    const struct hk_val *bitmap = hk_get(ev, F_bitmap);
    if (bitmap) {
        s->bitmap = *bitmap;
        s->has_bitmap = true;
    }
    hk_vec_push(e->slots, s);
    struct marks *m = chunk_marks(x, vpid, cls, chunk, false);
    struct hk_ev *found = m ? find(m, kind, bitmap) : NULL;
    if (found && !(found->vpid == vpid && found->vtid == vtid)) {
        s->found = hk_ev_ref(found);
    } else if (!found) {
        struct hk_key w = where(vpid, cls, chunk, kind);
        struct waiters *ws = hk_map_get(&x->waiting, w);
        if (!ws) {
            ws = calloc(1, sizeof *ws);
            if (!ws)
                abort();
            hk_map_put(&x->waiting, w, ws);
        }
        hk_vec_push(ws->w, ((struct waiter){vpid, vtid, s}));
        s->waiting = true;
    }
}

void hk_explainers_take(struct hk_explainers *x, int64_t vpid, int64_t vtid, struct hk_open_refill *ref,
                        struct hk_explained **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    struct open_entry *e = hk_map_get(&x->open, hk_key2(vpid, vtid));
    if (e && e->ref == ref) {
        for (size_t i = 0; i < e->slots.n; i++) {
            struct hk_slot *s = e->slots.v[i];
            if (!s->found)
                continue;
            struct hk_explained *grown = realloc(*out, (*n + 1) * sizeof *grown);
            if (!grown)
                abort();
            *out = grown;
            (*out)[(*n)++] = (struct hk_explained){hk_ev_ref(s->decision), hk_ev_ref(s->found), s->kind, s->chunk};
        }
    }
    hk_explainers_forget(x, vpid, vtid);
}

void hk_explainers_free(struct hk_explainers *x)
{
    for (size_t i = 0; i < x->open.cap; i++) {
        struct open_entry *e = x->open.slot[i].value;
        if (!e)
            continue;
        for (size_t j = 0; j < e->slots.n; j++)
            free_slot(e->slots.v[j]);
        hk_vec_free(e->slots);
        free(e);
    }
    for (size_t i = 0; i < x->waiting.cap; i++) {
        struct waiters *ws = x->waiting.slot[i].value;
        if (ws) {
            hk_vec_free(ws->w);
            free(ws);
        }
    }
    for (size_t i = 0; i < x->marks.cap; i++) {
        struct chunks *c = x->marks.slot[i].value;
        if (!c)
            continue;
        for (struct marks *m = c->head, *next; m; m = next) {
            next = m->next;
            free_marks(m);
        }
        hk_map_free(&c->by_chunk);
        free(c);
    }
    hk_map_free(&x->open);
    hk_map_free(&x->waiting);
    hk_map_free(&x->marks);
}

void hk_explainers_state(struct hk_explainers *x, int64_t vpid, int64_t cls, int64_t out[3])
{
    out[0] = 0;
    for (size_t i = 0; i < x->waiting.cap; i++) {
        struct waiters *ws = x->waiting.slot[i].value;
        if (ws)
            out[0] += (int64_t)ws->w.n;
    }
    out[1] = (int64_t)x->open.n;
    struct chunks *c = hk_map_get(&x->marks, hk_key2(vpid, cls));
    out[2] = c ? (int64_t)c->n : 0;
}
