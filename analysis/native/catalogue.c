/* catalogue.c — the event tables of catalogue.h, expanded from the header's HAKMEM_TP_EVENTS. */
#include "catalogue.h"

#include <string.h>

#define HK_STRIP(...) __VA_ARGS__
/* Each field macro of the header becomes one field spec. */
#define lttng_ust_field_integer(type, name, expr) {#name, 0},
#define lttng_ust_field_integer_hex(type, name, expr) {#name, 0},
#define lttng_ust_field_enum(provider, enumeration, type, name, expr) {#name, 1},
#define lttng_ust_field_sequence_hex(type, name, expr, length_type, length) {#name, HK_FIELD_SEQUENCE},
#define HK_EVENT_SPEC(name, level, args, fields) \
    [HK_EV_##name] = {#name, sizeof((struct hk_field_spec[]){HK_STRIP fields}) / sizeof(struct hk_field_spec), \
                      {HK_STRIP fields}},

const struct hk_event_spec hk_events[HK_EV_COUNT] = {HAKMEM_TP_EVENTS(HK_EVENT_SPEC)};

static const char *const field_names[F_COUNT] = {
    "class_idx", "block_size", "seq", "chunk", "outcome", "bitmap", "full_mask", "capacity", "active_slabs",
    "result", "reason", "bytes", "err", "oom_no", "size", "cap", "committed", "large", "tracer", "classes",
    "live", "free", "holder_tid", "holder_free", "ooms", "refills", "path",
};

static signed char index_of[HK_EV_COUNT][F_COUNT];

void hk_catalogue_init(void)
{
    for (int e = 0; e < HK_EV_COUNT; e++)
        for (int f = 0; f < F_COUNT; f++) {
            index_of[e][f] = -1;
            for (int i = 0; i < hk_events[e].nfields; i++)
                if (strcmp(hk_events[e].fields[i].name, field_names[f]) == 0)
                    index_of[e][f] = (signed char)i;
        }
}

int hk_field_index(int event, int field)
{
    return index_of[event][field];
}

int hk_event_by_name(const char *short_name)
{
    for (int e = 0; e < HK_EV_COUNT; e++)
        if (strcmp(hk_events[e].name, short_name) == 0)
            return e;
    return -1;
}

const char *hk_provider_prefix(void)
{
    return "hakmem:";
}
