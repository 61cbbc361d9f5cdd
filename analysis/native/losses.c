/* losses.c — discarded events and packets and the stream check's losses, per stream, judged against windows. */
#include "losses.h"

#include <stdlib.h>
#include <string.h>

#include "event.h"

/* The losses of one stream: timed ones sorted by beginning (so that those overlapping a window are found fast),
 * those known only to begin or only to end, and the count of those without a time. */
struct timed {
    int64_t beg, end, n;
};
struct open_loss {
    struct hk_opt beg, end;
    int64_t n;
};
struct line {
    HK_VEC(struct timed) timed;
    int64_t longest;
    HK_VEC(struct open_loss) open;
    int64_t anywhere_n, anywhere_ranges;
};

struct debt {
    int64_t owed;                 /* unsigned 64-bit arithmetic, as the counter's */
    struct hk_opt first_beg;
};

static struct hk_key key_of(struct hk_stream_key s)
{
    return s.name ? hk_key2((int64_t)(uintptr_t)s.name, 0) : hk_key2(0, (int64_t)s.addr);
}

void hk_losses_init(struct hk_losses *l)
{
    memset(l, 0, sizeof *l);
}

void hk_losses_free(struct hk_losses *l)
{
    for (size_t i = 0; i < l->lines.cap; i++) {
        struct line *ln = l->lines.slot[i].value;
        if (ln) {
            hk_vec_free(ln->timed);
            hk_vec_free(ln->open);
            free(ln);
        }
    }
    for (size_t i = 0; i < l->keys.cap; i++)
        free(l->keys.slot[i].value);
    for (size_t i = 0; i < l->debt.cap; i++)
        free(l->debt.slot[i].value);
    hk_map_free(&l->lines);
    hk_map_free(&l->keys);
    hk_map_free(&l->debt);
    hk_vec_free(l->ranges);
}

static struct line *line_of(struct hk_losses *l, struct hk_stream_key s, bool create)
{
    struct line *ln = hk_map_get(&l->lines, key_of(s));
    if (!ln && create) {
        ln = calloc(1, sizeof *ln);
        if (!ln)
            abort();
        hk_map_put(&l->lines, key_of(s), ln);
    }
    return ln;
}

static void line_add(struct line *ln, struct hk_opt beg, struct hk_opt end, int64_t n)
{
    if (!beg.set && !end.set) {
        ln->anywhere_n += n;
        ln->anywhere_ranges++;
    } else if (!beg.set || !end.set) {
        hk_vec_push(ln->open, ((struct open_loss){beg, end, n}));
    } else {
        size_t lo = 0, hi = ln->timed.n;  /* bisect_right on the beginnings */
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (beg.v < ln->timed.v[mid].beg)
                hi = mid;
            else
                lo = mid + 1;
        }
        hk_vec_insert(ln->timed, lo, ((struct timed){beg.v, end.v, n}));
        if (end.v - beg.v > ln->longest)
            ln->longest = end.v - beg.v;
    }
}

/* (count, ranges) of one stream's losses overlapping [start, end]: the timed ones that began by end and had not
 * ended before start (only those beginning within the longest one's length before start can). */
static void line_lost_in(const struct line *ln, int64_t start, int64_t end, int64_t *n, int64_t *ranges)
{
    *n += ln->anywhere_n;
    *ranges += ln->anywhere_ranges;
    size_t lo = 0, hi = ln->timed.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (end < ln->timed.v[mid].beg)
            hi = mid;
        else
            lo = mid + 1;
    }
    int64_t floor = start - ln->longest;
    for (size_t i = lo; i > 0 && ln->timed.v[i - 1].beg >= floor; i--)
        if (ln->timed.v[i - 1].end >= start) {
            *n += ln->timed.v[i - 1].n;
            (*ranges)++;
        }
    for (size_t i = 0; i < ln->open.n; i++) {
        const struct open_loss *o = &ln->open.v[i];
        if ((!o->beg.set || o->beg.v <= end) && (!o->end.set || o->end.v >= start)) {
            *n += o->n;
            (*ranges)++;
        }
    }
}

void hk_losses_stream_began(struct hk_losses *l, uintptr_t addr, const char *name)
{
    struct hk_stream_key *k = hk_map_get(&l->keys, hk_key2((int64_t)addr, 0));
    if (!k) {
        k = malloc(sizeof *k);
        if (!k)
            abort();
        hk_map_put(&l->keys, hk_key2((int64_t)addr, 0), k);
    }
    k->name = name && *name ? hk_intern(name) : NULL;
    k->addr = addr;
}

static struct hk_stream_key stream_of(struct hk_losses *l, uintptr_t addr)
{
    struct hk_stream_key *k = hk_map_get(&l->keys, hk_key2((int64_t)addr, 0));
    return k ? *k : (struct hk_stream_key){NULL, addr};
}

void hk_losses_stream_lost(struct hk_losses *l, const char *stream, struct hk_opt beg, struct hk_opt end,
                           struct hk_opt packets)
{
    struct hk_stream_key s = {hk_intern(stream), 0};
    int64_t n = packets.set ? packets.v : 1;
    hk_vec_push(l->ranges, ((struct hk_range){beg, end, packets, "stream", s}));
    line_add(line_of(l, s, true), beg, end, n > 1 ? n : 1);
}

void hk_losses_discarded(struct hk_losses *l, uintptr_t addr, bool events, struct hk_opt beg, struct hk_opt end,
                         struct hk_opt count)
{
    struct hk_stream_key s = stream_of(l, addr);
    if (events && count.set) {
        /* Babeltrace2 gives the difference of the tracer's per-stream counter between two packets, as an unsigned
         * 64-bit number. lttng-ust (2.13.5, discard mode, small sub-buffers) now and then closes a packet that
         * says 0 events discarded: the difference to it wraps around to 2**64 - N, and the next packet's
         * difference counts those N again. Carry the N over to the stream's next loss instead, and let that loss
         * cover both packets' time. */
        uint64_t c = (uint64_t)count.v;
        struct debt *d = hk_map_get(&l->debt, key_of(s));
        if (c >= (1ull << 63)) {
            uint64_t owed = -c;
            if (!d) {
                d = malloc(sizeof *d);
                if (!d)
                    abort();
                d->owed = (int64_t)owed;
                d->first_beg = beg;
                hk_map_put(&l->debt, key_of(s), d);
            } else {
                d->owed += (int64_t)owed;
            }
            return;
        }
        if (d) {
            int64_t take = d->owed < (int64_t)c ? d->owed : (int64_t)c;
            count.v -= take;
            struct hk_opt first = d->first_beg;
            if (d->owed > take) {
                d->owed -= take;
            } else {
                free(hk_map_del(&l->debt, key_of(s)));
            }
            if (beg.set && first.set && first.v < beg.v)
                beg.v = first.v;
        }
    }
    hk_vec_push(l->ranges, ((struct hk_range){beg, end, count, events ? "events" : "packets", s}));
    line_add(line_of(l, s, true), beg, end, count.set ? count.v : 1);
}

static bool accusation(const char *cause)
{
    return strcmp(cause, "expansion_bypassed") == 0 || strcmp(cause, "bitmap_inconsistent") == 0;
}

int64_t hk_losses_judged(struct hk_losses *l, int64_t start, int64_t end, const struct hk_streams *streams,
                         const char *cause)
{
    int64_t n = 0, ranges = 0;
    if (accusation(cause) || !streams->known) {
        for (size_t i = 0; i < l->lines.cap; i++)
            if (l->lines.slot[i].value)
                line_lost_in(l->lines.slot[i].value, start, end, &n, &ranges);
    } else {
        /* Each stream's line once, however many of the window's stream addresses name it. */
        struct hk_map seen = {0};
        for (size_t i = 0; i < streams->n; i++) {
            struct hk_stream_key s = stream_of(l, streams->addr[i]);
            if (hk_map_get(&seen, key_of(s)))
                continue;
            hk_map_put(&seen, key_of(s), (void *)1);
            struct line *ln = line_of(l, s, false);
            if (ln)
                line_lost_in(ln, start, end, &n, &ranges);
        }
        hk_map_free(&seen);
    }
    return ranges ? (n > 1 ? n : 1) : 0;
}
