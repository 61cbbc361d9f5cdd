/* decode.h — event messages read into struct hk_ev, through a read plan made once per event class. */
#ifndef HK_DECODE_H
#define HK_DECODE_H

#include <babeltrace2/babeltrace.h>

#include "event.h"
#include "hashmap.h"

enum hk_decoded {
    HK_DECODED,                   /* *out is a catalogue event */
    HK_NOT_CATALOGUE,             /* another provider's, or a hakmem event of another version */
    HK_MALFORMED,                 /* a catalogue event lacking a catalogue field (or not an integer): *malformed */
    HK_OVERFLOW,                  /* its clock snapshot does not fit in ns from origin */
};

struct hk_decoder {
    struct hk_map plans;          /* event class address -> its plan */
    struct {                      /* the plans last used, by class address (a direct-mapped cache of plans) */
        const void *ec;
        void *plan;
    } recent[64];
    const char *procname;         /* the procname last read (interned): most events repeat it */
};

/* *aux: whether the event is also one to pass through whole (aux_events.h), when it is not malformed. */
enum hk_decoded hk_decode(struct hk_decoder *d, const bt_message *msg, struct hk_ev **out, const char **malformed,
                          bool *aux);
void hk_decoder_free(struct hk_decoder *d);

#endif
