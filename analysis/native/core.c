/* core.c — one Babeltrace2 message at a time into the analyzer: events decoded, stream beginnings, packets and
 * losses noted. The sink component (plugin.c) and the Python plugin's sinks both call hk_core_message. */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HK_EXPORT __attribute__((visibility("default")))

HK_EXPORT struct hk_core *hk_core_new(int64_t timeline_buckets)
{
    struct hk_core *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    hk_analyzer_init(&c->a);
    if (timeline_buckets > 0)
        c->a.bins = hk_bins_new(timeline_buckets);
    return c;
}

HK_EXPORT void hk_core_free(struct hk_core *c)
{
    if (!c)
        return;
    hk_analyzer_free(&c->a);
    hk_decoder_free(&c->decoder);
    hk_aux_free(&c->aux);
    free(c);
}

HK_EXPORT const char *hk_core_failure(const struct hk_core *c)
{
    return c->failure;
}

static struct hk_opt opt(int has, int64_t v)
{
    return (struct hk_opt){has ? v : 0, has != 0};
}

HK_EXPORT void hk_core_stream_lost(struct hk_core *c, const char *stream, int has_begin, int64_t begin, int has_end,
                                   int64_t end, int has_packets, int64_t packets)
{
    hk_losses_stream_lost(&c->a.losses, stream, opt(has_begin, begin), opt(has_end, end), opt(has_packets, packets));
}

static struct hk_opt ns_of(const bt_clock_snapshot *cs)
{
    int64_t ns;
    if (!cs || bt_clock_snapshot_get_ns_from_origin(cs, &ns) != BT_CLOCK_SNAPSHOT_GET_NS_FROM_ORIGIN_STATUS_OK)
        return (struct hk_opt){0, false};
    return (struct hk_opt){ns, true};
}

static void malformed(struct hk_analyzer *a, const char *name)
{
    for (size_t i = 0; i < a->malformed.n; i++)
        if (a->malformed.v[i].name == name) {
            a->malformed.v[i].n++;
            return;
        }
    hk_vec_push(a->malformed, ((struct hk_malformed){name, 1}));
}

static void discarded(struct hk_analyzer *a, const bt_message *msg, bool events)
{
    const bt_stream *s = events ? bt_message_discarded_events_borrow_stream_const(msg)
                                : bt_message_discarded_packets_borrow_stream_const(msg);
    const bt_stream_class *sc = bt_stream_borrow_class_const(s);
    struct hk_opt beg = {0}, end = {0}, count = {0};
    bool timed = events ? bt_stream_class_discarded_events_have_default_clock_snapshots(sc)
                        : bt_stream_class_discarded_packets_have_default_clock_snapshots(sc);
    if (timed) {
        beg = ns_of(events ? bt_message_discarded_events_borrow_beginning_default_clock_snapshot_const(msg)
                           : bt_message_discarded_packets_borrow_beginning_default_clock_snapshot_const(msg));
        end = ns_of(events ? bt_message_discarded_events_borrow_end_default_clock_snapshot_const(msg)
                           : bt_message_discarded_packets_borrow_end_default_clock_snapshot_const(msg));
        if (!beg.set || !end.set) {
            beg.set = end.set = false;  /* no time: the loss could be anywhere */
        } else if (end.v < beg.v) {
            int64_t t = beg.v;
            beg.v = end.v;
            end.v = t;
        }
    }
    uint64_t n;
    if ((events ? bt_message_discarded_events_get_count(msg, &n) : bt_message_discarded_packets_get_count(msg, &n)) ==
        BT_PROPERTY_AVAILABILITY_AVAILABLE)
        count = (struct hk_opt){(int64_t)n, true};
    hk_losses_discarded(&a->losses, (uintptr_t)s, events, beg, end, count);
}

HK_EXPORT int hk_core_message(struct hk_core *c, const bt_message *msg)
{
    struct hk_analyzer *a = &c->a;
    switch (bt_message_get_type(msg)) {
    case BT_MESSAGE_TYPE_EVENT: {
        struct hk_ev *ev = NULL;
        const char *bad = NULL;
        bool aux = false;
        enum hk_decoded decoded = hk_decode(&c->decoder, msg, &ev, &bad, &aux);
        if (aux && decoded != HK_OVERFLOW && !hk_aux_read(&c->aux, msg))
            decoded = HK_OVERFLOW;
        if (decoded == HK_OVERFLOW && ev) {
            hk_ev_unref(ev);
            ev = NULL;
        }
        switch (decoded) {
        case HK_DECODED: {
            const bt_stream *s = bt_event_borrow_stream_const(bt_message_event_borrow_event_const(msg));
            hk_analyzer_event(a, ev, (uintptr_t)s, (uintptr_t)bt_stream_borrow_trace_const(s));
            break;
        }
        case HK_NOT_CATALOGUE:
            a->events++;
            break;
        case HK_MALFORMED:
            a->events++;
            malformed(a, bad);
            break;
        case HK_OVERFLOW:
            snprintf(c->failure, sizeof c->failure, "a clock snapshot does not fit in nanoseconds from origin");
            return -1;
        }
        break;
    }
    case BT_MESSAGE_TYPE_PACKET_BEGINNING: {
        const bt_stream *s = bt_packet_borrow_stream_const(bt_message_packet_beginning_borrow_packet_const(msg));
        struct hk_opt ts = {0};
        if (bt_stream_class_packets_have_beginning_default_clock_snapshot(bt_stream_borrow_class_const(s)))
            ts = ns_of(bt_message_packet_beginning_borrow_default_clock_snapshot_const(msg));
        hk_coverage_packet_began(&a->coverage, (uintptr_t)bt_stream_borrow_trace_const(s), (uintptr_t)s, ts);
        break;
    }
    case BT_MESSAGE_TYPE_PACKET_END: {
        const bt_stream *s = bt_packet_borrow_stream_const(bt_message_packet_end_borrow_packet_const(msg));
        if (bt_stream_class_packets_have_end_default_clock_snapshot(bt_stream_borrow_class_const(s))) {
            struct hk_opt ts = ns_of(bt_message_packet_end_borrow_default_clock_snapshot_const(msg));
            if (ts.set)
                hk_coverage_packet_ended(&a->coverage, (uintptr_t)bt_stream_borrow_trace_const(s), ts.v);
        }
        break;
    }
    case BT_MESSAGE_TYPE_STREAM_BEGINNING: {
        const bt_stream *s = bt_message_stream_beginning_borrow_stream_const(msg);
        const bt_stream_class *sc = bt_stream_borrow_class_const(s);
        for (uint64_t i = 0; i < bt_stream_class_get_event_class_count(sc); i++) {
            const char *name = bt_event_class_get_name(bt_stream_class_borrow_event_class_by_index_const(sc, i));
            if (name)
                hk_analyzer_declare(a, name);
        }
        hk_coverage_stream_began(&a->coverage, (uintptr_t)bt_stream_borrow_trace_const(s));
        hk_losses_stream_began(&a->losses, (uintptr_t)s, bt_stream_get_name(s));
        break;
    }
    case BT_MESSAGE_TYPE_DISCARDED_EVENTS:
        discarded(a, msg, true);
        break;
    case BT_MESSAGE_TYPE_DISCARDED_PACKETS:
        discarded(a, msg, false);
        break;
    default:
        break;
    }
    return 0;
}

HK_EXPORT void hk_core_free_string(char *s)
{
    free(s);
}

HK_EXPORT int hk_core_event(struct hk_core *c, const char *name, int64_t ts, int64_t vpid, int64_t vtid,
                            const char *procname, int n, const char *const *keys, const int64_t *values,
                            const int *uns, const char *const *labels)
{
    int id = hk_event_by_name(name);
    if (id < 0)
        return -1;
    struct hk_ev *e = hk_ev_new();
    e->id = (uint8_t)id;
    e->ts = ts;
    e->vpid = vpid;
    e->vtid = vtid;
    e->has_vpid = e->has_vtid = true;
    e->procname = hk_intern(procname);
    for (int f = 0; f < hk_events[id].nfields; f++)
        for (int i = 0; i < n; i++)
            if (strcmp(keys[i], hk_events[id].fields[f].name) == 0) {
                e->f[f].i = values[i];
                e->f[f].uns = uns[i] != 0;
                e->f[f].label = hk_intern(labels[i]);
            }
    hk_analyzer_inject(&c->a, e);
    return 0;
}

HK_EXPORT int hk_core_aux_event(struct hk_core *c, const char *name, int64_t ts, int64_t vpid, int64_t vtid,
                                const char *procname, int n, const char *const *keys, const int *kinds,
                                const int64_t *ints, const char *const *strs, const int64_t *const *seqs,
                                const int64_t *seq_lens)
{
    if (!hk_aux_wanted(name) || n < 0)
        return -1;
    struct hk_aux_rec *r = hk_aux_rec_new(name, ts, vpid, vtid, procname, (size_t)n);
    for (int i = 0; i < n; i++) {
        struct hk_aux_field *f = &r->fields[i];
        f->key = hk_intern(keys[i]);
        f->kind = (enum hk_aux_kind)kinds[i];
        if (f->kind == HK_AUX_STR) {
            if (!(f->s = strdup(strs[i] ? strs[i] : "")))
                abort();
        } else if (f->kind == HK_AUX_SEQ) {
            f->n = seq_lens[i] > 0 ? (size_t)seq_lens[i] : 0;
            if (!(f->seq = calloc(f->n ? f->n : 1, sizeof *f->seq)))
                abort();
            for (size_t k = 0; k < f->n; k++)
                f->seq[k] = (uint64_t)seqs[i][k];
        } else {
            f->i = ints[i];
        }
    }
    hk_aux_add(&c->aux, r);
    return 0;
}

HK_EXPORT void hk_core_declare(struct hk_core *c, const char *name)
{
    hk_analyzer_declare(&c->a, name);
}

HK_EXPORT void hk_core_explainers_state(struct hk_core *c, int64_t vpid, int64_t cls, int64_t out[3])
{
    hk_explainers_state(&c->a.explainers, vpid, cls, out);
}

HK_EXPORT void hk_core_limits(int64_t out[8])
{
    out[0] = HK_CONTEXT_WINDOW;
    out[1] = HK_CONTEXT_SHOWN;
    out[2] = HK_DETAIL_PER_CAUSE;
    out[3] = HK_CHUNKS_KEPT;
    out[4] = HK_CLAIMS_KEPT;
    out[5] = HK_PATH_LIMIT;
    out[6] = HK_OOM_STACKS_KEPT;
    out[7] = HK_REFUSAL_STACKS_KEPT;
}
