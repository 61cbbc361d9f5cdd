/* cause.h — the cause a refill path that ended in NULL shows by itself (before losses and coverage are weighed). */
#ifndef HK_CAUSE_H
#define HK_CAUSE_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"

#define HK_PATH_LIMIT 256  /* events kept per open refill (a refill looping on lost races is cut, and said to be) */

/* The causes, in the order the summary lists them. */
#define HK_CAUSES(X) X(os_refused) X(cap_reached) X(injected) X(expansion_bypassed) X(bitmap_inconsistent) X(incomplete)
#define HK_CAUSE_ENUM(c) HK_CAUSE_##c,
enum hk_cause { HK_CAUSES(HK_CAUSE_ENUM) HK_CAUSE_COUNT };
extern const char *const hk_cause_names[HK_CAUSE_COUNT];

/* What the trace declares (the events its build compiled in). */
struct hk_declared {
    bool has[HK_EV_COUNT];
};

/* The structural cause of path (path[n-1] the oom); detail: a sentence (malloc'ed, the caller frees). */
int hk_structural_cause(struct hk_ev *const *path, size_t n, bool begins_midway, bool cut,
                        const struct hk_declared *declared, char **detail);

#endif
