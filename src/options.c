/* options.c — parsing the HAKMEM_* table from the environment, once, without allocating. */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

hak_options hak_opt; /* zero = every default */

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

/* Digits, then at most one of K, M, G, T (either case, powers of 1024): what the README documents, nothing more. */
bool hak_parse_size(const char *text, uint64_t *out) {
    const char *p = text;
    uint64_t v;
    if (!p || !parse_u64(&p, &v)) return false;
    static const char units[] = "kmgt";
    unsigned shift = 0;
    if (*p) {
        const char *u = strchr(units, *p | 0x20);
        if (!u || !*u) return false;
        shift = 10u * (unsigned)(u - units + 1);
        p++;
    }
    if (*p != '\0') return false;
    if (shift && v > (UINT64_MAX >> shift)) return false;
    *out = v << shift;
    return true;
}

/* A probability in [0, 1] as a threshold on a uniform 64-bit hash. Digits past the ninth set no threshold bit
 * but still count when deciding whether the value exceeds 1 (1.0000000001 is refused, not read as 1). */
static bool parse_probability(const char **pp, uint64_t *threshold) {
    const char *p = *pp;
    uint64_t whole = 0, frac = 0, scale = 1;
    bool any_frac = false;
    if (!parse_u64(&p, &whole)) return false;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9') return false;
        for (; *p >= '0' && *p <= '9'; p++) {
            if (*p != '0') any_frac = true;
            if (scale < 1000000000ull) {
                frac = frac * 10 + (uint64_t)(*p - '0');
                scale *= 10;
            }
        }
    }
    if (whole > 1 || (whole == 1 && any_frac)) return false;
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
    } else if (strcmp(p, "off") == 0 || strcmp(p, "0") == 0) {
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

bool hak_parse_bool(const char *text, bool *out) {
    if (!text) return false;
    if (strcmp(text, "1") == 0 || strcmp(text, "on") == 0 || strcmp(text, "yes") == 0 ||
        strcmp(text, "true") == 0) {
        *out = true;
        return true;
    }
    if (strcmp(text, "0") == 0 || strcmp(text, "off") == 0 || strcmp(text, "no") == 0 ||
        strcmp(text, "false") == 0) {
        *out = false;
        return true;
    }
    return false;
}

/* The value as one line can show it: in quotes (an empty value or a trailing blank is visible), control
 * characters, quotes and backslashes escaped, cut after VALUE_SHOWN bytes. */
#define VALUE_SHOWN 64
static void quote_value(char *buf, size_t cap, const char *v) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, i = 0;
    buf[n++] = '"';
    for (; v[i] && i < VALUE_SHOWN && n + 8 < cap; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
            buf[n++] = '\\';
            if (c == '"' || c == '\\') {
                buf[n++] = (char)c;
            } else {
                buf[n++] = 'x';
                buf[n++] = hex[c >> 4];
                buf[n++] = hex[c & 15];
            }
        } else {
            buf[n++] = (char)c;
        }
    }
    buf[n++] = '"';
    if (v[i]) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

static void warn_bad(const char *name, const char *value, const char *why, const char *dflt) {
    char shown[VALUE_SHOWN * 4 + 16];
    quote_value(shown, sizeof shown, value);
    hak_diag("hakmem: warning: %s=%s %s; using the default: %s\n", name, shown, why, dflt);
}

/* One parser per kind of the table: NULL when the value was read into *out, else what is wrong with it. */
#define NOT_VALID "is not valid"
static const char *parse_bool(const char *text, bool *out) {
    return hak_parse_bool(text, out) ? NULL : NOT_VALID;
}

static const char *parse_cap(const char *text, uint64_t *out) {
    uint64_t v;
    if (!hak_parse_size(text, &v)) return NOT_VALID;
    /* A cap too small for anything would make every allocation fail, which no one asks for on purpose. */
    if (v != 0 && v < HAK_CAP_MIN) return "is below the smallest cap, 1M";
    *out = v;
    return NULL;
}

static const char *parse_fault(const char *text, hak_fault_spec *out) {
    return hak_parse_fault(text, out) ? NULL : NOT_VALID;
}

static const char *parse_fault_os(const char *text, hak_fault_spec *out) {
    return hak_parse_fault_os(text, out) ? NULL : NOT_VALID;
}

#define HAK_DELAY_MAX_MS 3600000u
static const char *parse_delay(const char *text, hak_delay_opt *out) {
    const char *p = text;
    uint64_t ms;
    if (!parse_u64(&p, &ms) || *p != '\0') return NOT_VALID;
    if (ms > HAK_DELAY_MAX_MS) return "is above the longest delay, 3600000 ms";
    *out = (hak_delay_opt){.set = true, .ns = ms * 1000000u};
    return NULL;
}

static const char *parse_huge(const char *text, hak_huge_mode *out) {
    bool on;
    if (strcmp(text, "auto") == 0) *out = HAK_HUGE_AUTO;
    else if (hak_parse_bool(text, &on)) *out = on ? HAK_HUGE_ON : HAK_HUGE_OFF;
    else return NOT_VALID;
    return NULL;
}

static const char *parse_window(const char *text, hak_window_opt *out) {
    uint64_t v;
    if (!hak_parse_size(text, &v)) return NOT_VALID;
    if (v != 0 && v < ((uint64_t)2 << 20)) return "is below the smallest window, 2M";
    if (v > HAK_WINDOW_MAX) return "is above the largest window, 256G";
    *out = (hak_window_opt){.set = true, .bytes = v & ~(uint64_t)HAK_CHUNK_MASK};
    return NULL;
}

static const char *parse_sample(const char *text, uint64_t *out) {
    return hak_parse_size(text, out) ? NULL : NOT_VALID;
}

uint64_t hak_purge_delay_ns(void) {
    return hak_opt.purge_delay.set ? hak_opt.purge_delay.ns : HAK_PURGE_DELAY_NS;
}

/* An empty value is malformed too (every parser refuses it): HAKMEM_MAX_MEMORY=$CAP with CAP unset meant a cap,
 * and HAKMEM_FAULT_SUPERSLAB=$SPEC faults, so neither should quietly mean the default. */
void hak_options_init(void) {
    hak_options o = {0};
#define X(field, env, kind, dflt, desc)                                  \
    {                                                                    \
        const char *v = getenv(env);                                     \
        const char *why = v ? parse_##kind(v, &o.field) : NULL;          \
        if (why) warn_bad(env, v, why, dflt);                            \
    }
    HAK_OPTION_TABLE(X)
#undef X
    hak_opt = o;
}

static _Atomic int init_state; /* 0 none, 1 running, 2 done */

void hak_ensure_init(void) {
    if (atomic_load_explicit(&init_state, memory_order_acquire) == 2) return;
    int expected = 0;
    if (atomic_compare_exchange_strong_explicit(&init_state, &expected, 1, memory_order_acq_rel,
                                                memory_order_acquire)) {
        hak_options_init();
        atomic_store_explicit(&init_state, 2, memory_order_release);
        return;
    }
    while (atomic_load_explicit(&init_state, memory_order_acquire) != 2) sched_yield();
}
