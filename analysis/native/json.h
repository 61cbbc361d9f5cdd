/* json.h — a growable text buffer with the few JSON writers the result needs. */
#ifndef HK_JSON_H
#define HK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "losses.h"

struct hk_json {
    char *s;
    size_t n, cap;
};

void hk_json_raw(struct hk_json *j, const char *text);
void hk_json_int(struct hk_json *j, int64_t v);
void hk_json_opt(struct hk_json *j, struct hk_opt v);   /* null when not set */
void hk_json_str(struct hk_json *j, const char *s);     /* null for NULL */
void hk_json_val(struct hk_json *j, const struct hk_val *v);
void hk_json_key(struct hk_json *j, const char *key);   /* "key": */
/* An event: [name, ts, vpid, vtid, procname, {fields in catalogue order}, identity]. */
void hk_json_event(struct hk_json *j, const struct hk_ev *e);
/* Drop a trailing comma before closing (writers put one after every item). */
void hk_json_close(struct hk_json *j, char bracket);

#endif
