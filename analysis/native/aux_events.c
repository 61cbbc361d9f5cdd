/* aux_events.c — call_stack, heap_sample, heap_sample_free and lttng-ust's state dump and dl events, read field by
 * field whatever their layout (integers, strings, arrays of integers), kept in time order for the Python side. */
#include "aux_events.h"

#include <stdlib.h>
#include <string.h>

#include "event.h"

static const char *const passed_hakmem[] = {"hakmem:call_stack", "hakmem:heap_sample", "hakmem:heap_sample_free"};
/* The providers that say which binary an address is in: lttng-ust's state dump, and with liblttng-ust-dl.so
 * preloaded its dlopen/dlclose events (lttng_ust_dl: every call, lttng_ust_lib: real loads and unloads). */
static const char *const passed_providers[] = {"lttng_ust_statedump:", "lttng_ust_dl:", "lttng_ust_lib:"};

bool hk_aux_wanted(const char *name)
{
    if (!name)
        return false;
    for (size_t i = 0; i < sizeof passed_hakmem / sizeof *passed_hakmem; i++)
        if (strcmp(name, passed_hakmem[i]) == 0)
            return true;
    for (size_t i = 0; i < sizeof passed_providers / sizeof *passed_providers; i++)
        if (strncmp(name, passed_providers[i], strlen(passed_providers[i])) == 0)
            return true;
    return false;
}

struct hk_aux_rec *hk_aux_rec_new(const char *name, int64_t ts, int64_t vpid, int64_t vtid, const char *procname,
                                  size_t nfields)
{
    struct hk_aux_rec *r = calloc(1, sizeof *r);
    if (!r || !(r->fields = calloc(nfields ? nfields : 1, sizeof *r->fields)))
        abort();
    r->name = hk_intern(name);
    r->ts = ts;
    r->vpid = vpid;
    r->vtid = vtid;
    r->has_vpid = r->has_vtid = true;
    r->procname = hk_intern(procname);
    r->nfields = nfields;
    return r;
}

static void rec_free(struct hk_aux_rec *r)
{
    for (size_t i = 0; i < r->nfields; i++) {
        free(r->fields[i].s);
        free(r->fields[i].seq);
    }
    free(r->fields);
    free(r);
}

static bool is_int_class(const bt_field_class *fc)
{
    return bt_field_class_type_is(bt_field_class_get_type(fc), BT_FIELD_CLASS_TYPE_INTEGER);
}

static bool signed_class(const bt_field_class *fc)
{
    return bt_field_class_type_is(bt_field_class_get_type(fc), BT_FIELD_CLASS_TYPE_SIGNED_INTEGER);
}

static int64_t int_of(const bt_field *f, bool is_signed)
{
    return is_signed ? bt_field_integer_signed_get_value(f) : (int64_t)bt_field_integer_unsigned_get_value(f);
}

/* lttng-ust precedes each sequence with its length as a member of its own (`_frames_length`): the list says it. */
static bool length_member(const char *name)
{
    size_t n = strlen(name);
    return n > 8 && name[0] == '_' && strcmp(name + n - 7, "_length") == 0;
}

/* One payload member into *out; false for what the analysis has no use for (floats, structures, variants). */
static bool read_field(const char *key, const bt_field *f, struct hk_aux_field *out)
{
    const bt_field_class *fc = bt_field_borrow_class_const(f);
    bt_field_class_type t = bt_field_class_get_type(fc);
    out->key = hk_intern(key);
    if (is_int_class(fc)) {
        out->kind = signed_class(fc) ? HK_AUX_INT : HK_AUX_UINT;
        out->i = int_of(f, out->kind == HK_AUX_INT);
        return true;
    }
    if (t == BT_FIELD_CLASS_TYPE_STRING) {
        out->kind = HK_AUX_STR;
        if (!(out->s = strdup(bt_field_string_get_value(f))))
            abort();
        return true;
    }
    if (bt_field_class_type_is(t, BT_FIELD_CLASS_TYPE_ARRAY) &&
        is_int_class(bt_field_class_array_borrow_element_field_class_const(fc))) {
        out->kind = HK_AUX_SEQ;
        out->seq_signed = signed_class(bt_field_class_array_borrow_element_field_class_const(fc));
        out->n = bt_field_array_get_length(f);
        if (!(out->seq = calloc(out->n ? out->n : 1, sizeof *out->seq)))
            abort();
        for (size_t i = 0; i < out->n; i++)
            out->seq[i] = (uint64_t)int_of(bt_field_array_borrow_element_field_by_index_const(f, i), out->seq_signed);
        return true;
    }
    return false;
}

static bool context_int(const bt_field *ctx, const char *name, int64_t *out)
{
    const bt_field *f = ctx ? bt_field_structure_borrow_member_field_by_name_const(ctx, name) : NULL;
    if (!f || !is_int_class(bt_field_borrow_class_const(f)))
        return false;
    *out = int_of(f, signed_class(bt_field_borrow_class_const(f)));
    return true;
}

static bool field_eq(const struct hk_aux_field *a, const struct hk_aux_field *b)
{
    if (a->key != b->key || a->kind != b->kind)
        return false;
    switch (a->kind) {
    case HK_AUX_STR:
        return strcmp(a->s, b->s) == 0;
    case HK_AUX_SEQ:
        return a->n == b->n && memcmp(a->seq, b->seq, a->n * sizeof *a->seq) == 0;
    default:
        return a->i == b->i;
    }
}

static bool rec_same(const struct hk_aux_rec *a, const struct hk_aux_rec *b)
{
    if (a->name != b->name || a->nfields != b->nfields)
        return false;
    for (size_t i = 0; i < a->nfields; i++)
        if (!field_eq(&a->fields[i], &b->fields[i]))
            return false;
    return true;
}

struct last {
    int64_t ts;
    HK_VEC(const struct hk_aux_rec *) recs;
};

/* Whether r was read already: snapshots of one run overlap, and read together the same event comes once from
 * each, right after the other for its thread (as the catalogue events' check in analyzer.c). */
static bool again(struct hk_aux *x, const struct hk_aux_rec *r)
{
    struct last *l = r->has_vtid ? hk_map_get(&x->last, hk_key2(r->vpid, r->vtid)) : NULL;
    if (!l || l->ts != r->ts)
        return false;
    for (size_t i = 0; i < l->recs.n; i++)
        if (rec_same(l->recs.v[i], r))
            return true;
    return false;
}

/* r kept: the records of its thread at its timestamp, for again(). */
static void remember(struct hk_aux *x, const struct hk_aux_rec *r)
{
    if (!r->has_vtid)
        return;
    struct hk_key k = hk_key2(r->vpid, r->vtid);
    struct last *l = hk_map_get(&x->last, k);
    if (!l) {
        if (!(l = calloc(1, sizeof *l)))
            abort();
        hk_map_put(&x->last, k, l);
    }
    if (l->ts != r->ts)
        l->recs.n = 0;
    l->ts = r->ts;
    hk_vec_push(l->recs, r);
}

static const struct hk_aux_field *field(const struct hk_aux_rec *r, const char *key)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (strcmp(r->fields[i].key, key) == 0)
            return &r->fields[i];
    return NULL;
}

/* Whether the bound on stacks leaves room for r (counting it if so). */
static bool room(struct hk_aux *x, const struct hk_aux_rec *r)
{
    if (strcmp(r->name, passed_hakmem[0]) != 0)
        return true;
    const struct hk_aux_field *no = field(r, "oom_no");
    bool of_oom = no && no->kind != HK_AUX_STR && no->kind != HK_AUX_SEQ && no->i != 0;
    int64_t *kept = of_oom ? &x->oom_stacks : &x->refusal_stacks;
    if (*kept >= (of_oom ? HK_OOM_STACKS_KEPT : HK_REFUSAL_STACKS_KEPT)) {
        x->stacks_dropped++;
        return false;
    }
    (*kept)++;
    return true;
}

bool hk_aux_read(struct hk_aux *x, const bt_message *msg)
{
    const bt_event *event = bt_message_event_borrow_event_const(msg);
    const bt_event_class *ec = bt_event_borrow_class_const(event);
    if (!bt_stream_class_borrow_default_clock_class_const(bt_event_class_borrow_stream_class_const(ec)))
        return true;  /* no time: it could not be placed (lttng always gives one) */
    int64_t ns;
    if (bt_clock_snapshot_get_ns_from_origin(bt_message_event_borrow_default_clock_snapshot_const(msg), &ns) !=
        BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK)
        return false;
    const bt_field *payload = bt_event_borrow_payload_field_const(event);
    uint64_t members = payload ? bt_field_class_structure_get_member_count(bt_field_borrow_class_const(payload)) : 0;
    struct hk_aux_rec *r = hk_aux_rec_new(bt_event_class_get_name(ec), ns, 0, 0, NULL, (size_t)members);
    r->nfields = 0;
    for (uint64_t i = 0; i < members; i++) {
        const bt_field_class *st = bt_field_borrow_class_const(payload);
        const char *key =
            bt_field_class_structure_member_get_name(bt_field_class_structure_borrow_member_by_index_const(st, i));
        if (!length_member(key) &&
            read_field(key, bt_field_structure_borrow_member_field_by_index_const(payload, i), &r->fields[r->nfields]))
            r->nfields++;
    }
    const bt_field *ctx = bt_event_borrow_common_context_field_const(event);
    r->has_vpid = context_int(ctx, "vpid", &r->vpid);
    r->has_vtid = r->has_vpid && context_int(ctx, "vtid", &r->vtid);
    const bt_field *proc = ctx ? bt_field_structure_borrow_member_field_by_name_const(ctx, "procname") : NULL;
    if (proc && bt_field_class_get_type(bt_field_borrow_class_const(proc)) == BT_FIELD_CLASS_TYPE_STRING)
        r->procname = hk_intern(bt_field_string_get_value(proc));
    if (again(x, r)) {
        x->duplicates++;
        rec_free(r);
    } else if (!room(x, r)) {
        rec_free(r);  /* a copy of it in an overlapping snapshot is counted again */
    } else {
        remember(x, r);
        hk_vec_push(x->recs, r);
    }
    return true;
}

void hk_aux_add(struct hk_aux *x, struct hk_aux_rec *r)
{
    if (room(x, r))
        hk_vec_push(x->recs, r);
    else
        rec_free(r);
}

static void seq_json(struct hk_json *j, const struct hk_aux_field *f)
{
    hk_json_raw(j, "[");
    for (size_t i = 0; i < f->n; i++) {
        struct hk_val v = {(int64_t)f->seq[i], !f->seq_signed, NULL};
        hk_json_val(j, &v);
        hk_json_raw(j, ",");
    }
    hk_json_close(j, ']');
}

void hk_aux_json(struct hk_json *j, const struct hk_aux *x)
{
    hk_json_raw(j, "{\"duplicates\":");
    hk_json_int(j, x->duplicates);
    hk_json_raw(j, ",\"stacks_dropped\":");
    hk_json_int(j, x->stacks_dropped);
    hk_json_raw(j, ",\"records\":[");
    for (size_t i = 0; i < x->recs.n; i++) {
        const struct hk_aux_rec *r = x->recs.v[i];
        hk_json_raw(j, "{\"name\":");
        hk_json_str(j, r->name);
        hk_json_raw(j, ",\"ts\":");
        hk_json_int(j, r->ts);
        hk_json_raw(j, ",\"vpid\":");
        hk_json_opt(j, (struct hk_opt){r->vpid, r->has_vpid});
        hk_json_raw(j, ",\"vtid\":");
        hk_json_opt(j, (struct hk_opt){r->vtid, r->has_vtid});
        hk_json_raw(j, ",\"procname\":");
        hk_json_str(j, r->procname);
        hk_json_raw(j, ",\"fields\":{");
        for (size_t k = 0; k < r->nfields; k++) {
            const struct hk_aux_field *f = &r->fields[k];
            hk_json_key(j, f->key);
            if (f->kind == HK_AUX_STR) {
                hk_json_str(j, f->s);
            } else if (f->kind == HK_AUX_SEQ) {
                seq_json(j, f);
            } else {
                struct hk_val v = {f->i, f->kind == HK_AUX_UINT, NULL};
                hk_json_val(j, &v);
            }
            hk_json_raw(j, ",");
        }
        hk_json_close(j, '}');
        hk_json_raw(j, "},");
    }
    hk_json_close(j, ']');
    hk_json_raw(j, "}");
}

void hk_aux_forget_stack(struct hk_aux *x, int64_t vpid, int64_t vtid, int64_t oom_no)
{
    for (size_t i = 0; i < x->recs.n; i++) {
        struct hk_aux_rec *r = x->recs.v[i];
        const struct hk_aux_field *no = field(r, "oom_no");
        if (strcmp(r->name, passed_hakmem[0]) != 0 || r->vpid != vpid || r->vtid != vtid || !no || no->i != oom_no)
            continue;
        struct last *l = hk_map_get(&x->last, hk_key2(vpid, vtid));
        for (size_t k = 0; l && k < l->recs.n; k++)
            if (l->recs.v[k] == r) {
                l->recs.v[k] = l->recs.v[--l->recs.n];
                break;
            }
        memmove(&x->recs.v[i], &x->recs.v[i + 1], (x->recs.n - i - 1) * sizeof *x->recs.v);
        x->recs.n--;
        x->oom_stacks--;
        rec_free(r);
        return;
    }
}

void hk_aux_free(struct hk_aux *x)
{
    for (size_t i = 0; i < x->recs.n; i++)
        rec_free(x->recs.v[i]);
    hk_vec_free(x->recs);
    for (size_t i = 0; i < x->last.cap; i++) {
        struct last *l = x->last.slot[i].value;
        if (l) {
            hk_vec_free(l->recs);
            free(l);
        }
    }
    hk_map_free(&x->last);
}
