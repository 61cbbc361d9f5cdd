/* options.h — the one table of HAKMEM_* environment options (mirrored in README.md). */
#ifndef HAKMEM_OPTIONS_H
#define HAKMEM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

/* X(id, environment variable, kind, default text, description) */
#define HAK_OPTION_TABLE(X)                                                                   \
    X(MID_REFILL_SIMPLE, "HAKMEM_TINY_MID_REFILL_SIMPLE", bool, "0",                          \
      "1: refills of classes >= 4 skip adopting abandoned slabs and go straight to the "      \
      "bitmap claim and chunk expansion")                                                     \
    X(MAX_MEMORY, "HAKMEM_MAX_MEMORY", size, "0 (no cap)",                                    \
      "cap on bytes hakmem maps (K/M/G suffixes); beyond it allocation fails with ENOMEM")    \
    X(FAULT_SUPERSLAB, "HAKMEM_FAULT_SUPERSLAB", fault, "off",                                \
      "every:N or prob:P[:SEED], optionally /CLASS: make superslab_allocate fail as if the "  \
      "OS refused (for that size class only)")                                                \
    X(FAULT_OS, "HAKMEM_FAULT_OS", fault_os, "off",                                           \
      "every:N or prob:P[:SEED]: each mmap, munmap and mremap hakmem makes fails as the OS "  \
      "would (ENOMEM); refused maps are OOMs, refused releases are retried")                  \
    X(STATS, "HAKMEM_STATS", bool, "0", "1: print counters to stderr at exit")

typedef enum hak_fault_mode { HAK_FAULT_OFF, HAK_FAULT_EVERY, HAK_FAULT_PROB } hak_fault_mode;

typedef struct hak_fault_spec {
    hak_fault_mode mode;
    uint64_t every;      /* HAK_FAULT_EVERY: the Nth, 2Nth, ... call fails */
    uint64_t threshold;  /* HAK_FAULT_PROB: fail when hash < threshold (P * 2^64) */
    uint64_t seed;
    int class_filter;    /* -1: every class; else only superslab_allocate for this class
                          * (HAKMEM_FAULT_OS takes none: OS calls have no class) */
} hak_fault_spec;

typedef struct hak_options {
    bool mid_refill_simple;
    uint64_t max_memory;   /* 0 = no cap */
    hak_fault_spec fault_superslab;
    hak_fault_spec fault_os;
    bool stats;
} hak_options;

/* Parsed once, on first use, without allocating; defaults until then. */
extern hak_options hak_opt;

#endif
