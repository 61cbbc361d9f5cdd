/* options.h — the one table of HAKMEM_* environment options (mirrored in README.md, checked by a test). */
#ifndef HAKMEM_OPTIONS_H
#define HAKMEM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

/* X(field of hak_options, environment variable, kind, default text, description). The kind names the C
 * type (HAK_OPT_TYPE_<kind>) and the parser (options.c). */
#define HAK_OPTION_TABLE(X)                                                                      \
    X(mid_refill_simple, "HAKMEM_TINY_MID_REFILL_SIMPLE", bool, "0",                             \
      "1: refills of classes of 128 B blocks and up (the seed's C4..) skip adopting abandoned "  \
      "slabs and go straight to the bitmap claim and chunk expansion")                           \
    X(max_memory, "HAKMEM_MAX_MEMORY", cap, "0 (no cap)",                                        \
      "cap on the memory hakmem commits (slabs claimed, chunk headers, large blocks, heaps' "   \
      "metadata), not the address space it reserves: digits, optionally K, M, G or T (powers "  \
      "of 1024), at least 1M (0: no cap); beyond it allocation fails with ENOMEM")              \
    X(fault_superslab, "HAKMEM_FAULT_SUPERSLAB", fault, "off",                                   \
      "every:N or prob:P[:SEED], optionally /CLASS: make superslab_allocate fail as if the "     \
      "OS refused (for that size class only)")                                                   \
    X(fault_os, "HAKMEM_FAULT_OS", fault_os, "off",                                              \
      "every:N or prob:P[:SEED]: each mmap, munmap and mremap hakmem makes (and the chunk "      \
      "window's carving and release) fails as the OS would (ENOMEM); refused maps are OOMs, "   \
      "refused releases are retried")                                                            \
    X(purge_delay, "HAKMEM_PURGE_DELAY", delay, "250",                                           \
      "milliseconds (0..3600000) free slabs beyond a class's few, the medium classes' empty "    \
      "chunks and the reserve's chunks keep their pages before they go back to the OS: longer "  \
      "saves page faults on memory freed and used again, shorter gives memory back sooner")      \
    X(huge_pages, "HAKMEM_HUGE_PAGES", huge, "auto",                                             \
      "on, off or auto: MADV_HUGEPAGE over large blocks from 2 MiB up; auto asks for huge pages "  \
      "only where the kernel's THP defrag setting is defer or never, so that no fault waits for "  \
      "compaction")                                                                              \
    X(chunk_window, "HAKMEM_CHUNK_WINDOW", window, "64G",                                        \
      "address space reserved at the first chunk for the chunks of small blocks (readable zero "  \
      "pages where no chunk is, committed chunk by chunk, at most an eighth of RLIMIT_AS): "      \
      "digits, optionally K, M, G or T (powers of 1024), 0 or 2M..256G; free() knows a block in " \
      "it by its address alone, chunks past it are mapped apart (0: none, every chunk apart)")   \
    X(trace_sample, "HAKMEM_TRACE_SAMPLE", sample, "0 (off)",                                   \
      "(trace build) the heap profile's mean sampling interval: digits, optionally K, M or G "   \
      "(powers of 1024); each allocated byte is a sample point with probability 1/BYTES, and "   \
      "every sampled block and its free are heap_sample events with their stacks (0: off)")     \
    X(stats, "HAKMEM_STATS", bool, "0", "1: print counters to stderr at exit")

/* The smallest cap HAKMEM_MAX_MEMORY takes: below it not even the first slab and its metadata fit. */
#define HAK_CAP_MIN ((uint64_t)1 << 20)

typedef enum hak_fault_mode { HAK_FAULT_OFF, HAK_FAULT_EVERY, HAK_FAULT_PROB } hak_fault_mode;

typedef struct hak_fault_spec {
    hak_fault_mode mode;
    uint64_t every;      /* HAK_FAULT_EVERY: the Nth, 2Nth, ... call fails */
    uint64_t threshold;  /* HAK_FAULT_PROB: fail when hash < threshold (P * 2^64) */
    uint64_t seed;
    int class_filter;    /* -1: every class; else only superslab_allocate for this class
                          * (HAKMEM_FAULT_OS takes none: OS calls have no class) */
} hak_fault_spec;

#define HAK_OPT_TYPE_bool bool
#define HAK_OPT_TYPE_cap uint64_t /* 0 = no cap */
#define HAK_OPT_TYPE_fault hak_fault_spec
#define HAK_OPT_TYPE_fault_os hak_fault_spec
#define HAK_OPT_TYPE_delay hak_delay_opt
#define HAK_OPT_TYPE_sample uint64_t /* bytes; 0 = off */
#define HAK_OPT_TYPE_huge hak_huge_mode
#define HAK_OPT_TYPE_window hak_window_opt

typedef enum hak_huge_mode { HAK_HUGE_AUTO, HAK_HUGE_ON, HAK_HUGE_OFF } hak_huge_mode; /* AUTO: the zero default */

typedef struct hak_window_opt {
    bool set;      /* false: the default */
    uint64_t bytes; /* a multiple of 2 MiB, or 0 */
} hak_window_opt;

typedef struct hak_delay_opt {
    bool set;    /* false: the default */
    uint64_t ns;
} hak_delay_opt;

typedef struct hak_options {
#define HAK_OPT_FIELD(field, env, kind, dflt, desc) HAK_OPT_TYPE_##kind field;
    HAK_OPTION_TABLE(HAK_OPT_FIELD)
#undef HAK_OPT_FIELD
} hak_options;

/* Parsed once, on first use, without allocating; defaults until then. */
extern hak_options hak_opt;

#endif
