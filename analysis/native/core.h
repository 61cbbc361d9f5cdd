/* core.h — the analysis core as the Python side drives it (ctypes) and the sink component feeds it. */
#ifndef HK_CORE_H
#define HK_CORE_H

#include <babeltrace2/babeltrace.h>
#include <stdint.h>

#include "analyzer.h"
#include "decode.h"

struct hk_core {
    struct hk_analyzer a;
    struct hk_decoder decoder;
    char failure[256];            /* why the analysis stopped (a value it cannot take), "" if it did not */
};

/* Exported for ctypes (the only symbols of the library besides the plugin's). */
struct hk_core *hk_core_new(int64_t timeline_buckets);
void hk_core_free(struct hk_core *c);
int hk_core_message(struct hk_core *c, const bt_message *msg);  /* 0, or -1: see hk_core_failure */
const char *hk_core_failure(const struct hk_core *c);
void hk_core_stream_lost(struct hk_core *c, const char *stream, int has_begin, int64_t begin, int has_end,
                         int64_t end, int has_packets, int64_t packets);
char *hk_core_result(struct hk_core *c);   /* the analysis as JSON (result.c); free with hk_core_free_string */
void hk_core_free_string(char *s);

#endif
