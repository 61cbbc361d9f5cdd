/* decode.c — reading an event message by a plan made once per event class: which payload member holds each
 * catalogue field (found by name in the trace's metadata), whether it is signed, its enumeration labels, and where
 * the vpid, vtid and procname contexts are. */
#include "decode.h"

#include <stdlib.h>
#include <string.h>

#include "aux_events.h"

struct mapping {                  /* one enumeration label and its ranges */
    const char *label;
    size_t nranges;
    int64_t (*range)[2];          /* lower, upper (as the field's signedness reads them) */
};

struct member {
    uint64_t index;
    bool is_signed;
    size_t nmappings;             /* 0: not labelled */
    struct mapping *mappings;
};

struct plan {
    enum hk_decoded kind;         /* HK_DECODED: a catalogue event to read; else what every event of it is */
    bool aux;                     /* passed through whole too (aux_events.h) */
    int id;
    struct member members[HK_MAX_FIELDS];
    int64_t vpid_i, vtid_i, proc_i;  /* context member indexes, -1: absent */
    bool vpid_signed, vtid_signed;
    bool proc_is_string;
};

static bool is_int(const bt_field_class *fc)
{
    return bt_field_class_type_is(bt_field_class_get_type(fc), BT_FIELD_CLASS_TYPE_INTEGER);
}

static bool is_signed(const bt_field_class *fc)
{
    return bt_field_class_type_is(bt_field_class_get_type(fc), BT_FIELD_CLASS_TYPE_SIGNED_INTEGER);
}

static int64_t member_index(const bt_field_class *st, const char *name)
{
    uint64_t n = bt_field_class_structure_get_member_count(st);
    for (uint64_t i = 0; i < n; i++) {
        const bt_field_class_structure_member *m = bt_field_class_structure_borrow_member_by_index_const(st, i);
        if (strcmp(bt_field_class_structure_member_get_name(m), name) == 0)
            return (int64_t)i;
    }
    return -1;
}

static void read_mappings(const bt_field_class *fc, struct member *m)
{
    bool sig = is_signed(fc);
    uint64_t n = bt_field_class_enumeration_get_mapping_count(fc);
    m->mappings = calloc(n ? n : 1, sizeof *m->mappings);
    if (!m->mappings)
        abort();
    m->nmappings = n;
    for (uint64_t i = 0; i < n; i++) {
        struct mapping *mp = &m->mappings[i];
        if (sig) {
            const bt_field_class_enumeration_signed_mapping *sm =
                bt_field_class_enumeration_signed_borrow_mapping_by_index_const(fc, i);
            const bt_integer_range_set_signed *rs = bt_field_class_enumeration_signed_mapping_borrow_ranges_const(sm);
            mp->label = hk_intern(bt_field_class_enumeration_mapping_get_label(
                bt_field_class_enumeration_signed_mapping_as_mapping_const(sm)));
            mp->nranges = bt_integer_range_set_get_range_count(bt_integer_range_set_signed_as_range_set_const(rs));
            mp->range = calloc(mp->nranges ? mp->nranges : 1, sizeof *mp->range);
            if (!mp->range)
                abort();
            for (size_t r = 0; r < mp->nranges; r++) {
                const bt_integer_range_signed *ir = bt_integer_range_set_signed_borrow_range_by_index_const(rs, r);
                mp->range[r][0] = bt_integer_range_signed_get_lower(ir);
                mp->range[r][1] = bt_integer_range_signed_get_upper(ir);
            }
        } else {
            const bt_field_class_enumeration_unsigned_mapping *um =
                bt_field_class_enumeration_unsigned_borrow_mapping_by_index_const(fc, i);
            const bt_integer_range_set_unsigned *rs =
                bt_field_class_enumeration_unsigned_mapping_borrow_ranges_const(um);
            mp->label = hk_intern(bt_field_class_enumeration_mapping_get_label(
                bt_field_class_enumeration_unsigned_mapping_as_mapping_const(um)));
            mp->nranges = bt_integer_range_set_get_range_count(bt_integer_range_set_unsigned_as_range_set_const(rs));
            mp->range = calloc(mp->nranges ? mp->nranges : 1, sizeof *mp->range);
            if (!mp->range)
                abort();
            for (size_t r = 0; r < mp->nranges; r++) {
                const bt_integer_range_unsigned *ir =
                    bt_integer_range_set_unsigned_borrow_range_by_index_const(rs, r);
                mp->range[r][0] = (int64_t)bt_integer_range_unsigned_get_lower(ir);
                mp->range[r][1] = (int64_t)bt_integer_range_unsigned_get_upper(ir);
            }
        }
    }
}

static struct plan *make_plan(const bt_event_class *ec)
{
    struct plan *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->kind = HK_NOT_CATALOGUE;
    const char *name = bt_event_class_get_name(ec);
    p->aux = hk_aux_wanted(name);
    const char *prefix = hk_provider_prefix();
    size_t np = strlen(prefix);
    if (!name || strncmp(name, prefix, np) != 0 || (p->id = hk_event_by_name(name + np)) < 0)
        return p;
    p->kind = HK_MALFORMED;
    const struct hk_event_spec *spec = &hk_events[p->id];
    const bt_field_class *payload = bt_event_class_borrow_payload_field_class_const(ec);
    for (int i = 0; i < spec->nfields; i++) {
        int64_t at = payload ? member_index(payload, spec->fields[i].name) : -1;
        if (at < 0)
            return p;
        const bt_field_class *fc = bt_field_class_structure_member_borrow_field_class_const(
            bt_field_class_structure_borrow_member_by_index_const(payload, (uint64_t)at));
        p->members[i].index = (uint64_t)at;
        if (spec->fields[i].is_enum == HK_FIELD_SEQUENCE) {
            if (!bt_field_class_type_is(bt_field_class_get_type(fc), BT_FIELD_CLASS_TYPE_ARRAY) ||
                !is_int(bt_field_class_array_borrow_element_field_class_const(fc)))
                return p;
            continue;  /* not read into the event's integer fields */
        }
        if (!is_int(fc))
            return p;
        bool is_enum = bt_field_class_type_is(bt_field_class_get_type(fc), BT_FIELD_CLASS_TYPE_ENUMERATION);
        if (spec->fields[i].is_enum && !is_enum)
            return p;  /* the catalogue labels it: a plain integer there is not this catalogue's */
        p->members[i].index = (uint64_t)at;
        p->members[i].is_signed = is_signed(fc);
        if (spec->fields[i].is_enum)
            read_mappings(fc, &p->members[i]);
    }
    p->kind = HK_DECODED;
    p->vpid_i = p->vtid_i = p->proc_i = -1;
    const bt_field_class *ctx =
        bt_stream_class_borrow_event_common_context_field_class_const(bt_event_class_borrow_stream_class_const(ec));
    if (ctx) {
        int64_t i;
        if ((i = member_index(ctx, "vpid")) >= 0 &&
            is_int(bt_field_class_structure_member_borrow_field_class_const(
                bt_field_class_structure_borrow_member_by_index_const(ctx, (uint64_t)i))))
            p->vpid_i = i;
        if (p->vpid_i >= 0)
            p->vpid_signed = is_signed(bt_field_class_structure_member_borrow_field_class_const(
                bt_field_class_structure_borrow_member_by_index_const(ctx, (uint64_t)p->vpid_i)));
        if ((i = member_index(ctx, "vtid")) >= 0 &&
            is_int(bt_field_class_structure_member_borrow_field_class_const(
                bt_field_class_structure_borrow_member_by_index_const(ctx, (uint64_t)i))))
            p->vtid_i = i;
        if (p->vtid_i >= 0)
            p->vtid_signed = is_signed(bt_field_class_structure_member_borrow_field_class_const(
                bt_field_class_structure_borrow_member_by_index_const(ctx, (uint64_t)p->vtid_i)));
        if ((i = member_index(ctx, "procname")) >= 0) {
            const bt_field_class *fc = bt_field_class_structure_member_borrow_field_class_const(
                bt_field_class_structure_borrow_member_by_index_const(ctx, (uint64_t)i));
            if (bt_field_class_get_type(fc) == BT_FIELD_CLASS_TYPE_STRING) {
                p->proc_i = i;
                p->proc_is_string = true;
            }
        }
    }
    return p;
}

/* The label of the one mapping holding v, or NULL (none, or several: the integer is shown). */
static const char *label_of(const struct member *m, int64_t v)
{
    const char *found = NULL;
    for (size_t i = 0; i < m->nmappings; i++) {
        const struct mapping *mp = &m->mappings[i];
        for (size_t r = 0; r < mp->nranges; r++) {
            bool in = m->is_signed ? (v >= mp->range[r][0] && v <= mp->range[r][1])
                                   : ((uint64_t)v >= (uint64_t)mp->range[r][0] &&
                                      (uint64_t)v <= (uint64_t)mp->range[r][1]);
            if (in) {
                if (found && found != mp->label)
                    return NULL;
                found = mp->label;
                break;
            }
        }
    }
    return found;
}

/* Whether s is valid UTF-8 (a damaged thread name reads as "?", as Python's strict decoding makes it). */
static bool utf8(const unsigned char *s)
{
    while (*s) {
        unsigned c = *s++;
        int more;
        unsigned min;
        if (c < 0x80)
            continue;
        if ((c & 0xE0) == 0xC0) {
            more = 1, min = 0x80, c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            more = 2, min = 0x800, c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            more = 3, min = 0x10000, c &= 0x07;
        } else {
            return false;
        }
        while (more--) {
            if ((*s & 0xC0) != 0x80)
                return false;
            c = (c << 6) | (*s++ & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
            return false;
    }
    return true;
}

static int64_t int_value(const bt_field *f, bool is_signed_field)
{
    return is_signed_field ? bt_field_integer_signed_get_value(f) : (int64_t)bt_field_integer_unsigned_get_value(f);
}

enum hk_decoded hk_decode(struct hk_decoder *d, const bt_message *msg, struct hk_ev **out, const char **malformed,
                          bool *aux)
{
    const bt_event *event = bt_message_event_borrow_event_const(msg);
    const bt_event_class *ec = bt_event_borrow_class_const(event);
    size_t slot = ((uintptr_t)ec >> 4) & 63;
    struct plan *p = d->recent[slot].ec == ec ? d->recent[slot].plan : NULL;
    if (!p) {
        struct hk_key k = hk_key2((int64_t)(uintptr_t)ec, 0);
        p = hk_map_get(&d->plans, k);
        if (!p) {
            p = make_plan(ec);
            hk_map_put(&d->plans, k, p);
        }
        d->recent[slot].ec = ec;
        d->recent[slot].plan = p;
    }
    *aux = p->aux && p->kind != HK_MALFORMED;
    if (p->kind == HK_MALFORMED)
        *malformed = hk_events[p->id].name;
    if (p->kind != HK_DECODED)
        return p->kind;
    struct hk_ev *e = hk_ev_new();
    e->id = (uint8_t)p->id;
    const bt_field *payload = bt_event_borrow_payload_field_const(event);
    for (int i = 0; i < hk_events[p->id].nfields; i++) {
        const struct member *m = &p->members[i];
        if (hk_events[p->id].fields[i].is_enum == HK_FIELD_SEQUENCE)
            continue;  /* left 0 */
        const bt_field *f = bt_field_structure_borrow_member_field_by_index_const(payload, m->index);
        struct hk_val *v = &e->f[i];
        if (m->is_signed) {
            v->i = bt_field_integer_signed_get_value(f);
        } else {
            v->i = (int64_t)bt_field_integer_unsigned_get_value(f);
            v->uns = true;
        }
        if (m->nmappings)
            v->label = label_of(m, v->i);
    }
    if (p->vpid_i >= 0 || p->vtid_i >= 0 || p->proc_i >= 0) {
        const bt_field *ctx = bt_event_borrow_common_context_field_const(event);
        if (p->vpid_i >= 0 && p->vtid_i >= 0) {
            e->vpid = int_value(bt_field_structure_borrow_member_field_by_index_const(ctx, (uint64_t)p->vpid_i),
                                p->vpid_signed);
            e->vtid = int_value(bt_field_structure_borrow_member_field_by_index_const(ctx, (uint64_t)p->vtid_i),
                                p->vtid_signed);
            e->has_vpid = e->has_vtid = true;
        }
        if (p->proc_i >= 0) {
            const char *s =
                bt_field_string_get_value(bt_field_structure_borrow_member_field_by_index_const(ctx, (uint64_t)p->proc_i));
            if (!d->procname || strcmp(s, d->procname) != 0)
                d->procname = hk_intern(utf8((const unsigned char *)s) ? s : "?");
            e->procname = d->procname;
        }
    }
    int64_t ns;
    if (bt_clock_snapshot_get_ns_from_origin(bt_message_event_borrow_default_clock_snapshot_const(msg), &ns) !=
        BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK) {
        hk_ev_unref(e);
        return HK_OVERFLOW;
    }
    e->ts = ns;
    *out = e;
    return HK_DECODED;
}

void hk_decoder_free(struct hk_decoder *d)
{
    for (size_t i = 0; i < d->plans.cap; i++) {
        struct plan *p = d->plans.slot[i].value;
        if (!p)
            continue;
        for (int f = 0; f < HK_MAX_FIELDS; f++) {
            for (size_t m = 0; m < p->members[f].nmappings; m++)
                free(p->members[f].mappings[m].range);
            free(p->members[f].mappings);
        }
        free(p);
    }
    hk_map_free(&d->plans);
}
