/* event.h — one decoded hakmem event, shared by reference between the structures that keep it. */
#ifndef HK_EVENT_H
#define HK_EVENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "catalogue.h"

/* A field's value as the report shows it: an integer, or the label of an enumeration (label non-NULL). */
struct hk_val {
    int64_t i;
    bool uns;                     /* i holds an unsigned 64-bit value */
    const char *label;            /* interned */
};

struct hk_ev {
    int refs;
    uint8_t id;                   /* enum hk_event_id */
    bool has_vpid, has_vtid;
    int64_t ts;                   /* ns from origin */
    int64_t vpid, vtid;
    const char *procname;         /* interned; NULL: no procname context */
    struct hk_val f[HK_MAX_FIELDS];
};

struct hk_ev *hk_ev_new(void);
static inline struct hk_ev *hk_ev_ref(struct hk_ev *e)
{
    if (e)
        e->refs++;
    return e;
}
void hk_ev_unref(struct hk_ev *e);

/* The field of e named id, or NULL when e's event has none. */
static inline const struct hk_val *hk_get(const struct hk_ev *e, int id)
{
    int i = hk_field_index(e->id, id);
    return i < 0 ? NULL : &e->f[i];
}

/* Comparisons with Python's semantics (an integer never equals a label). */
bool hk_val_eq(const struct hk_val *a, const struct hk_val *b);
static inline bool hk_is_int(const struct hk_val *v) { return v && !v->label; }
static inline __int128 hk_num(const struct hk_val *v) { return v->uns ? (__int128)(uint64_t)v->i : (__int128)v->i; }
/* v is the integer n */
static inline bool hk_is_num(const struct hk_val *v, __int128 n) { return hk_is_int(v) && hk_num(v) == n; }

static inline bool hk_is_label(const struct hk_val *v, const char *label)
{
    return v && v->label && v->label[0] == label[0] && strcmp(v->label, label) == 0;
}

/* Equality of two events' (name, fields), as the duplicate check of overlapping snapshots compares them. */
bool hk_ev_same(const struct hk_ev *a, const struct hk_ev *b);

const char *hk_intern(const char *s);
void hk_intern_free(void);

#endif
