/* options.c — parsing the HAKMEM_* table from the environment, once, without allocating. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

hak_options hak_opt; /* zero = every default */

bool hak_parse_size(const char *text, uint64_t *out) {
    const char *p = text;
    if (!p || *p < '0' || *p > '9') return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    case 't': case 'T': shift = 40; p++; break;
    default: break;
    }
    if (*p == 'B' || *p == 'b') p++;
    if (*p != '\0') return false;
    if (shift && v > (UINT64_MAX >> shift)) return false;
    *out = v << shift;
    return true;
}

static bool parse_u64(const char **pp, uint64_t *out) {
    const char *p = *pp;
    if (*p < '0' || *p > '9') return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *pp = p;
    *out = v;
    return true;
}

/* A probability in [0, 1] as a threshold on a uniform 64-bit hash. */
static bool parse_probability(const char **pp, uint64_t *threshold) {
    const char *p = *pp;
    uint64_t whole = 0, frac = 0, scale = 1;
    if (!parse_u64(&p, &whole)) return false;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return false;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (scale < 1000000000ull) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
    }
    if (whole > 1 || (whole == 1 && frac != 0)) return false;
    *threshold = whole == 1 ? UINT64_MAX : (uint64_t)(((__uint128_t)frac << 64) / scale);
    *pp = p;
    return true;
}

bool hak_parse_fault(const char *text, hak_fault_spec *out) {
    hak_fault_spec spec = {.class_filter = -1};
    const char *p = text;
    if (!p) return false;
    if (strncmp(p, "every:", 6) == 0) {
        p += 6;
        if (!parse_u64(&p, &spec.every) || spec.every == 0) return false;
        spec.mode = HAK_FAULT_EVERY;
    } else if (strncmp(p, "prob:", 5) == 0) {
        p += 5;
        if (!parse_probability(&p, &spec.threshold)) return false;
        spec.seed = 0x9e3779b97f4a7c15ull;
        if (*p == ':') {
            p++;
            if (!parse_u64(&p, &spec.seed)) return false;
        }
        spec.mode = HAK_FAULT_PROB;
    } else if (strcmp(p, "off") == 0 || strcmp(p, "0") == 0 || *p == '\0') {
        *out = spec;
        return true;
    } else {
        return false;
    }
    if (*p == '/') {
        uint64_t c;
        p++;
        if (!parse_u64(&p, &c) || c >= HAK_NUM_CLASSES) return false;
        spec.class_filter = (int)c;
    }
    if (*p != '\0') return false;
    *out = spec;
    return true;
}

/* The OS calls belong to no size class, so a /CLASS suffix would silently
 * mean "never": it is refused instead. */
bool hak_parse_fault_os(const char *text, hak_fault_spec *out) {
    hak_fault_spec spec;
    if (!hak_parse_fault(text, &spec) || spec.class_filter >= 0) return false;
    *out = spec;
    return true;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Call n (counting from 1, calls of the filtered class only) fails when the spec says so; the sequence depends
 * only on the seed and the call order, so a run can be replayed. */
bool hak_fault_fires(const hak_fault_spec *spec, _Atomic uint64_t *calls, unsigned class_idx) {
    if (spec->mode == HAK_FAULT_OFF) return false;
    if (spec->class_filter >= 0 && (unsigned)spec->class_filter != class_idx) return false;
    uint64_t n = atomic_fetch_add_explicit(calls, 1, memory_order_relaxed) + 1;
    if (spec->mode == HAK_FAULT_EVERY) return n % spec->every == 0;
    return splitmix64(spec->seed ^ splitmix64(n)) < spec->threshold;
}

static bool parse_bool(const char *text, bool *out) {
    if (strcmp(text, "1") == 0 || strcmp(text, "on") == 0 || strcmp(text, "yes") == 0 ||
        strcmp(text, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(text, "0") == 0 || strcmp(text, "off") == 0 || strcmp(text, "no") == 0 ||
        strcmp(text, "false") == 0 || text[0] == '\0') {
        *out = false;
        return true;
    }
    return false;
}

static void warn_bad(const char *name, const char *value, const char *dflt) {
    hak_diag("hakmem: warning: %s=%.64s is not valid; using the default (%s)\n", name, value, dflt);
}

#define OPT_FIELD_MID_REFILL_SIMPLE mid_refill_simple
#define OPT_FIELD_MAX_MEMORY max_memory
#define OPT_FIELD_FAULT_SUPERSLAB fault_superslab
#define OPT_FIELD_FAULT_OS fault_os
#define OPT_FIELD_STATS stats
#define PARSE_bool(text, field) parse_bool(text, field)
#define PARSE_size(text, field) hak_parse_size(text, field)
#define PARSE_fault(text, field) hak_parse_fault(text, field)
#define PARSE_fault_os(text, field) hak_parse_fault_os(text, field)

void hak_options_init(void) {
    hak_options o = {0};
#define X(id, env, kind, dflt, desc)                                                 \
    {                                                                                \
        const char *v = getenv(env);                                                 \
        if (v && !PARSE_##kind(v, &o.OPT_FIELD_##id)) warn_bad(env, v, dflt);        \
    }
    HAK_OPTION_TABLE(X)
#undef X
    hak_opt = o;
}
