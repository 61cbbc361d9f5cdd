/* json.c — the writers of json.h. */
#include "json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put(struct hk_json *j, const char *p, size_t n)
{
    if (j->n + n + 1 > j->cap) {
        size_t cap = j->cap ? j->cap : 4096;
        while (j->n + n + 1 > cap)
            cap *= 2;
        char *s = realloc(j->s, cap);
        if (!s)
            abort();
        j->s = s;
        j->cap = cap;
    }
    memcpy(j->s + j->n, p, n);
    j->n += n;
    j->s[j->n] = 0;
}

void hk_json_raw(struct hk_json *j, const char *text)
{
    put(j, text, strlen(text));
}

void hk_json_int(struct hk_json *j, int64_t v)
{
    char b[32];
    put(j, b, (size_t)snprintf(b, sizeof b, "%" PRId64, v));
}

void hk_json_opt(struct hk_json *j, struct hk_opt v)
{
    if (v.set)
        hk_json_int(j, v.v);
    else
        hk_json_raw(j, "null");
}

void hk_json_str(struct hk_json *j, const char *s)
{
    if (!s) {
        hk_json_raw(j, "null");
        return;
    }
    put(j, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            put(j, e, 2);
        } else if (*p < 0x20) {
            char e[8];
            put(j, e, (size_t)snprintf(e, sizeof e, "\\u%04x", *p));
        } else {
            put(j, (const char *)p, 1);
        }
    }
    put(j, "\"", 1);
}

void hk_json_val(struct hk_json *j, const struct hk_val *v)
{
    if (!v) {
        hk_json_raw(j, "null");
    } else if (v->label) {
        hk_json_str(j, v->label);
    } else if (v->uns) {
        char b[32];
        put(j, b, (size_t)snprintf(b, sizeof b, "%" PRIu64, (uint64_t)v->i));
    } else {
        hk_json_int(j, v->i);
    }
}

void hk_json_key(struct hk_json *j, const char *key)
{
    hk_json_str(j, key);
    put(j, ":", 1);
}

void hk_json_event(struct hk_json *j, const struct hk_ev *e)
{
    const struct hk_event_spec *spec = &hk_events[e->id];
    hk_json_raw(j, "[");
    hk_json_str(j, spec->name);
    hk_json_raw(j, ",");
    hk_json_int(j, e->ts);
    hk_json_raw(j, ",");
    hk_json_opt(j, (struct hk_opt){e->vpid, e->has_vpid});
    hk_json_raw(j, ",");
    hk_json_opt(j, (struct hk_opt){e->vtid, e->has_vtid});
    hk_json_raw(j, ",");
    hk_json_str(j, e->procname);
    hk_json_raw(j, ",{");
    for (int i = 0; i < spec->nfields; i++) {
        hk_json_key(j, spec->fields[i].name);
        hk_json_val(j, &e->f[i]);
        hk_json_raw(j, ",");
    }
    hk_json_close(j, '}');
    hk_json_raw(j, ",");
    hk_json_int(j, (int64_t)(uintptr_t)e);  /* which event: one that a record holds twice is one object */
    hk_json_raw(j, "]");
}

void hk_json_close(struct hk_json *j, char bracket)
{
    if (j->n && j->s[j->n - 1] == ',')
        j->n--;
    put(j, &bracket, 1);
}
