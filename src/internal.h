/* internal.h — prototypes shared inside the library, grouped by the file that defines them. */
#ifndef HAKMEM_INTERNAL_H
#define HAKMEM_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "hakmem.h"
#include "options.h"
#include "types.h"
/* The outcome codes below are the trace catalogue's, so events carry them as is. */
#define HAKMEM_TP_VALUES_ONLY
#include "hakmem_tp.h"
#undef HAKMEM_TP_VALUES_ONLY

#define HAK_LIKELY(x) __builtin_expect(!!(x), 1)
#define HAK_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define HAK_HIDDEN __attribute__((visibility("hidden")))
#define HAK_NOINLINE __attribute__((noinline))
/* Thread-locals the allocator reads on every call: static TLS, never a call
 * into the dynamic loader (its dynamic TLS allocates, through this malloc). */
#define HAK_TLS __thread __attribute__((tls_model("initial-exec")))
/* The TSan build: it cannot see into asm nor past plain reads of atomics, so it keeps the atomics. */
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HAK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define HAK_TSAN 1
#endif

#include "checked.h"

/* The allocation call in progress, as the program made it (trace build): what an oom names. */
#define HAK_CALL_ITEM(id, label, value) HAK_CALL_##id = value,
typedef enum hak_call_kind { HAKMEM_TP_ALLOC_CALL(HAK_CALL_ITEM) } hak_call_kind;
#undef HAK_CALL_ITEM
typedef struct hak_call {
    uint64_t count, size; /* count x size bytes were asked for (count 1 but for calloc and reallocarray) */
    uint64_t align;       /* 0: no alignment asked */
    const void *old;      /* realloc's and reallocarray's block */
    uint8_t kind;         /* hak_call_kind; HAK_CALL_MALLOC when no other call is open */
} hak_call;

/* Each thread's own (heaps.c), in one TLS block. */
typedef struct hak_thread_state {
    hak_heap *heap;          /* &hak_empty_heap until the thread's first malloc */
#if defined(HAKMEM_TRACING) && HAKMEM_TRACING
    /* Set while an event is emitted (trace.h), and for good on the tracer's threads and from the destructors
     * on (tracer.c): what the thread allocates then is the tracer's. */
    uint8_t trace_busy;
    hak_call call;           /* the outermost call but malloc in progress (oom_report.c) */
    int64_t sample_left;     /* bytes to the heap profile's next sample point; < 0: due (sampler.c) */
#endif
} hak_thread_state;
extern HAK_TLS hak_thread_state hak_tls;
/* Every thread starts here (heaps.c): all its classes point at the empty slab. */
extern hak_heap hak_empty_heap;

static inline size_t hak_pow2_ceil(size_t n) { /* n >= 2 */
    return (size_t)1 << (64 - __builtin_clzl(n - 1));
}

/* ---- size_class.c ---- */
extern const uint32_t hak_class_size[HAK_NUM_CLASSES];
/* Tiny class by 8-byte granule, ceil(size / 8): one load instead of a bit scan. */
extern const uint8_t hak_tiny_class_of[HAK_TINY_MAX / 8 + 1];
/* Mid class by 128-byte granule, ceil(size / 128), for sizes above HAK_TINY_MAX up to HAK_MID_MAX. */
extern const uint8_t hak_mid_class_of[HAK_MID_MAX / 128 + 1];
/* Per class, the granules it serves in a heap's direct table, from the first to one past the last; {0, 0}
 * (none) above the tiny classes. */
extern const uint8_t hak_class_granules[HAK_NUM_CLASSES][2];

/* log2 of the slabs in a class's span (0 below the medium classes). */
extern const uint8_t hak_class_span_shift[HAK_NUM_CLASSES];

/* Smallest class whose blocks hold `size` bytes; size must be <= HAK_SMALL_MAX. Four steps per doubling
 * above 1 KiB: the mid classes up to 32 KiB, then the medium ones, numbered after the between classes. */
static inline unsigned hak_size_to_class(size_t size) {
    if (size <= HAK_TINY_MAX) return hak_tiny_class_of[(size + 7) >> 3];
    if (size <= HAK_MID_MAX) return hak_mid_class_of[(size + 127) >> 7];
    size_t s = size - 1;
    unsigned b = 63u - (unsigned)__builtin_clzl(s); /* 10..19 */
    unsigned step = (unsigned)(s >> (b - 2)) & 3u;
    unsigned c = HAK_TINY_CLASSES + (b - 10u) * 4u + step;
    return c < HAK_BETWEEN_FIRST ? c : c + (HAK_MEDIUM_FIRST - HAK_BETWEEN_FIRST);
}

/* ---- options.c ---- */
/* Reads the options once; lock-free and allocation-free, so it is safe on the
 * very first malloc of the process, before any constructor. */
void hak_ensure_init(void);
void hak_options_init(void); /* reads the environment again (unit tests) */
uint64_t hak_purge_delay_ns(void); /* HAKMEM_PURGE_DELAY, or HAK_PURGE_DELAY_NS */
/* Parsers, exposed for unit tests; return false on malformed (or empty) input and leave *out alone. */
bool hak_parse_size(const char *text, uint64_t *out);
bool hak_parse_bool(const char *text, bool *out);
bool hak_parse_fault(const char *text, hak_fault_spec *out);
bool hak_parse_fault_os(const char *text, hak_fault_spec *out); /* as above, without /CLASS */
bool hak_fault_fires(const hak_fault_spec *spec, _Atomic uint64_t *calls, unsigned class_idx);

/* ---- diag.c ---- diagnostics straight to fd 2: no stdio, no allocation */
void hak_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int hak_format(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void hak_write_all(int fd, const char *buf, size_t len);
/* "hakmem: <op>(): invalid pointer <p>", then abort(). */
_Noreturn void hak_die_invalid_pointer(const char *op, const void *p);
/* A pointer hakmem never handed out: the checked build names what it is. */
static inline _Noreturn void hak_fatal_invalid_pointer(const char *op, const void *p) {
    hak_ck_invalid_pointer(op, p); /* freed, interior, foreign, ... (checked build) */
    hak_die_invalid_pointer(op, p);
}
static inline int32_t hak_gettid(void) {
    return (int32_t)syscall(SYS_gettid);
}

/* ---- os.c ---- every mmap, munmap, mremap and madvise; committed memory and the cap; the region map.
 * `arena` (HAK_ARENA_*) names the account a call charges or uncharges; only the program's is capped or
 * meets HAKMEM_FAULT_OS. */
/* none; os: mmap refused (by the OS or HAKMEM_FAULT_OS); cap: HAKMEM_MAX_MEMORY reached;
 * injected: HAKMEM_FAULT_SUPERSLAB fired */
#define HAK_FAIL_ITEM(id, label, value) HAK_FAIL_##id = value,
typedef enum hak_fail_reason { HAKMEM_TP_FAIL_REASON(HAK_FAIL_ITEM) } hak_fail_reason;

typedef struct hak_os_failure {
    hak_fail_reason reason;
    int err;        /* errno the OS gave, or ENOMEM for cap / injection */
    size_t bytes;   /* size of the refused request */
} hak_os_failure;

extern _Atomic uint8_t hak_region_map[HAK_REGION_COUNT];
/* The index is bounded instead of the address: one compare on the value the load needs (free's NULL, read
 * as address -1, falls outside too). */
static inline unsigned hak_region_kind(uintptr_t addr) {
    uintptr_t i = addr >> HAK_CHUNK_SHIFT;
    if (HAK_UNLIKELY(i >= HAK_REGION_COUNT)) return HAK_REGION_NONE;
    return atomic_load_explicit(&hak_region_map[i], memory_order_acquire);
}
/* Whether a chunk starts at region << HAK_CHUNK_SHIFT. A plain read, so that it is one compare with the byte in
 * memory (an atomic load is never folded into one): a free of a block is ordered after the region's setting by
 * the block's own malloc. */
static inline bool hak_region_is_superslab(uintptr_t region) {
    if (HAK_UNLIKELY(region >= HAK_REGION_COUNT)) return false;
#if defined(HAK_TSAN)
    return atomic_load_explicit(&hak_region_map[region], memory_order_acquire) == HAK_REGION_SUPERSLAB;
#else
    return ((const uint8_t *)hak_region_map)[region] == HAK_REGION_SUPERSLAB;
#endif
}
void hak_region_set(uintptr_t base, unsigned kind);
/* ---- chunk_window.c ---- the address space chunks are carved from */
extern HAK_HIDDEN uintptr_t hak_window_base;
extern HAK_HIDDEN size_t hak_window_size;
/* free's test, one subtraction and one compare: p - base < size. Plain reads of values written once; the TSan
 * build reads them as the atomics they are to it. */
static inline uintptr_t hak_window_offset(const void *p) {
#if defined(HAK_TSAN)
    return (uintptr_t)p - __atomic_load_n(&hak_window_base, __ATOMIC_ACQUIRE);
#else
    return (uintptr_t)p - hak_window_base;
#endif
}
static inline size_t hak_window_bytes(void) {
#if defined(HAK_TSAN)
    return __atomic_load_n(&hak_window_size, __ATOMIC_ACQUIRE);
#else
    return hak_window_size;
#endif
}
static inline bool hak_window_holds(const void *p) {
    return hak_window_offset(p) < hak_window_bytes();
}
/* A free chunk-sized slot of the window, still read-only; NULL when the window is full or absent (reserved at
 * the first call, HAKMEM_CHUNK_WINDOW). */
uint8_t *chunk_window_take(void);
void chunk_window_give(uint8_t *slot);
/* Maps `size` bytes aligned to `align` (a power of two >= HAK_CHUNK_SIZE)
 * without committing them (address space only: a chunk commits slab by slab);
 * on failure fills *why and returns NULL. errno is kept by every os.c call. */
void *hak_os_reserve(unsigned arena, size_t size, size_t align, hak_os_failure *why);
/* A chunk's 2 MiB, address space only: a slot of the window made writable, else hak_os_reserve's. */
void *hak_os_reserve_chunk(unsigned arena, hak_os_failure *why);
/* hak_os_reserve, all of it committed (a large block): the cap may refuse. */
void *hak_os_map(unsigned arena, size_t size, size_t align, hak_os_failure *why);
/* Charges `bytes` of memory about to be touched; false (why: cap) when the cap refuses. */
bool hak_os_commit(unsigned arena, size_t bytes, hak_os_failure *why);
void hak_os_uncommit(unsigned arena, size_t bytes);
/* Gives the pages of [base, base + size) back (MADV_DONTNEED) and uncharges the
 * `charged` bytes of them that were committed; false (nothing changed) when refused. */
bool hak_os_decommit(unsigned arena, void *base, size_t size, size_t charged);
/* Gives a range back, `committed` bytes of it charged; if the OS refuses, it stays
 * mapped and charged and is retried by later os.c calls (never lost, never
 * uncharged early). hak_os_unmap: all of it was committed. */
void hak_os_unmap_part(unsigned arena, void *base, size_t size, size_t committed);
void hak_os_unmap(unsigned arena, void *base, size_t size);
/* Grows a mapping in place (no move); charges the cap. */
bool hak_os_grow_in_place(unsigned arena, void *base, size_t old_size, size_t new_size);
/* Grows a mapping by moving its pages to a new range aligned to `align` (mremap, no copy); charges the cap.
 * The new base, or NULL (the old mapping untouched) when refused. */
void *hak_os_move_grow(unsigned arena, void *base, size_t old_size, size_t new_size, size_t align);
/* Moves the pages of [src, src + size), committed, over [dst, dst + size), committed and unused in a mapping of the
 * caller's (mremap, no copy); src's range is gone and uncharged after. False (nothing changed) when refused. */
bool hak_os_move_into(unsigned arena, void *src, size_t size, void *dst);
/* Pages for thread heaps, committed and never given back; NULL (why filled) if refused. */
void *hak_os_map_metadata(unsigned arena, size_t size, hak_os_failure *why);
/* MADV_HUGEPAGE over [base, base + size); advice, so it cannot fail. */
void hak_os_advise_huge(unsigned arena, void *base, size_t size);
/* MADV_COLLAPSE of the 2 MiB at base (aligned): one huge page now, for a range whose small pages would
 * otherwise keep it from ever getting one; advice too. */
void hak_os_collapse_huge(unsigned arena, void *base);
/* Retries the releases the OS refused; returns how many went back now. */
size_t hak_os_release_pending(void);
size_t hak_os_pending_bytes(void);      /* refused releases still mapped (part of mapped bytes) */
uint64_t hak_os_release_failures(void); /* munmap refusals since the start, retries included */
size_t hak_os_mapped_bytes(void);    /* address space held for blocks */
size_t hak_os_committed_bytes(void); /* what the cap counts: the program's */
size_t hak_os_tracer_committed_bytes(void); /* the tracer's (trace build; 0 otherwise) */
size_t hak_os_page_size(void);
uint64_t hak_os_now_ns(void); /* a coarse monotonic clock (vDSO: no system call) */
/* Calls HAKMEM_FAULT_OS has counted; unit tests set it to place an every:N failure. */
extern _Atomic uint64_t hak_os_fault_calls;

/* ---- superslab.c ---- chunks: reserved, kept in the reserve, given back */
/* A chunk's first pages hold its header: committed with the chunk. */
#define HAK_CHUNK_HEADER_BYTES HAK_SLAB0_DATA_OFFSET
/* Where slab idx's blocks live, and the bytes of it that are committed with it. */
static inline uint8_t *hak_slab_pages(hak_superslab *c, unsigned idx) {
    return (uint8_t *)c + ((size_t)idx << HAK_SLAB_SHIFT) + (idx == 0 ? HAK_SLAB0_DATA_OFFSET : 0);
}
static inline size_t hak_slab_pages_bytes(unsigned idx) {
    return HAK_SLAB_SIZE - (idx == 0 ? HAK_SLAB0_DATA_OFFSET : 0);
}
/* A span: `slabs` slabs from `first` (a multiple of them). Its bitmap bits, and the bytes its blocks may use. */
static inline uint32_t hak_span_mask(unsigned first, unsigned slabs) {
    return slabs == HAK_SLABS_PER_CHUNK ? HAK_FULL_BITMAP : ((1u << slabs) - 1u) << first;
}
static inline size_t hak_span_bytes(unsigned first, unsigned slabs) {
    return ((size_t)slabs << HAK_SLAB_SHIFT) - (first == 0 ? HAK_SLAB0_DATA_OFFSET : 0);
}
/* The chunk's slabs from lo to hi (inclusive) as bitmap bits. */
static inline uint32_t hak_slab_range_mask(unsigned lo, unsigned hi) {
    return (hi - lo + 1 == HAK_SLABS_PER_CHUNK ? HAK_FULL_BITMAP : ((1u << (hi - lo + 1)) - 1u)) << lo;
}
/* Committed bytes of the slabs in mask. */
static inline size_t hak_slabs_pages_bytes(uint32_t mask) {
    return (size_t)__builtin_popcount(mask) * HAK_SLAB_SIZE - ((mask & 1u) ? HAK_SLAB0_DATA_OFFSET : 0);
}
/* Free slabs a class keeps committed for good; none of the medium classes, whose freed spans keep their pages
 * for the purge delay only. With 4 slabs each, their 20 classes could hold 5 MiB more; thread_churn, whose
 * medium blocks are rare, filled them slowly, and its VmRSS crept by 1-2 MiB over 10 000 threads. The span a
 * heap is using stays with it when emptied, and serves its next blocks without a fault. */
static inline uint32_t hak_class_warm_slabs(unsigned class_idx) {
    return hak_class_span_shift[class_idx] ? 0 : HAK_COMMITTED_FREE_SLABS;
}
hak_superslab *superslab_allocate(unsigned class_idx, unsigned arena, hak_os_failure *why);
void superslab_free(hak_superslab *chunk);
size_t superslab_reserve_flush(void); /* unmaps the reserve; returns chunks freed */
void superslab_reserve_trim(void);    /* gives back the pages of the reserve's slabs now */
size_t superslab_reserve_count(void);
void superslab_reserve_lock(void);   /* fork handlers: lock order registry, heads, reserve */
/* Slab idx's pages go back to the OS and its committed bit goes; false when refused. The caller holds the slab. */
bool superslab_decommit_slab(hak_superslab *c, unsigned idx);
/* The same for up to `limit` free committed slabs of the chunk; how many went.
 * The chunk's bitmap may briefly read those slabs in use; a chunk left with no
 * slab in use afterwards is for the caller to retire. Head lock held. */
uint32_t superslab_decommit_free(hak_superslab *c, uint32_t limit);
void superslab_reserve_unlock(void);

/* ---- slab.c ---- slabs inside a chunk: the bitmap claim, a slab's life, carving */
static inline hak_superslab *hak_chunk_of(const void *p) {
    return (hak_superslab *)(((uintptr_t)p - 1) & ~(uintptr_t)HAK_CHUNK_MASK);
}
/* The slab index from p's own bits (no subtraction): a p at the chunk's very start, which hak_chunk_of puts in
 * the chunk before, reads that chunk's slab 0, whose block-start check refuses it, never a slab past the array. */
static inline hak_slab *hak_slab_of(hak_superslab *chunk, const void *p) {
    return &chunk->slabs[((uintptr_t)p >> HAK_SLAB_SHIFT) & (HAK_SLABS_PER_CHUNK - 1)];
}
/*
 * The block-start check: one multiply and one compare tell both whether the
 * block size d divides an offset n and whether n is below the span's last
 * block. With c = 2^64 / d rounded up (one more when d is a power of two,
 * whose product would wrap to 0) and e = d * c mod 2^64, in (0, d]: for
 * every n below 2^32, n * c mod 2^64 is (n / d) * e when d divides n, and at
 * least c otherwise (Lemire, Kaser, Kurz); so with limit = capacity * e,
 * n * c < limit <=> n is the start of one of the first `capacity` blocks. An
 * offset "below" the data (p in slab 0's header: n wrapped to 2^64 - x,
 * x <= 8 KiB) gives 2^64 - (x / d) * e - (x % d) * c, above the limit too.
 * The bound is exact where an offset below the slab's end was let through
 * before: the slack past a slab's last block, when d divides its offset.
 */
static inline uint64_t hak_block_magic(uint32_t size) {
    uint64_t c = UINT64_MAX / size + 1;
    return c * size == 0 ? c + 1 : c;
}
static inline uint64_t hak_block_limit(uint32_t size, uint32_t capacity) {
    return (uint64_t)capacity * (hak_block_magic(size) * size);
}
/* True when p is the start of one of the blocks of s's span. */
static inline bool hak_slab_block_start(const hak_slab *s, const void *p) {
    return (uint64_t)((uintptr_t)p - (uintptr_t)s->data) * s->block_magic < s->block_limit;
}
static inline hak_superslab *hak_slab_chunk(const hak_slab *s) {
    return (hak_superslab *)((uintptr_t)s & ~(uintptr_t)HAK_CHUNK_MASK);
}
/* The first slab of s's span, whose metadata is the span's (s itself below the medium classes). class_idx
 * is the chunk's, set for every slab when the chunk joined its class. */
static inline hak_slab *hak_span_head(hak_slab *s) {
    unsigned slabs = 1u << hak_class_span_shift[s->class_idx];
    return &hak_slab_chunk(s)->slabs[s->slab_idx & ~(slabs - 1u)];
}
#define HAK_CLAIM_ITEM(id, label, value) HAK_CLAIM_##id = value,
typedef enum hak_claim_outcome { HAKMEM_TP_CLAIM_OUTCOME(HAK_CLAIM_ITEM) } hak_claim_outcome;
typedef struct hak_bitmap_check {
    hak_superslab *chunk;     /* the head's current_chunk that was checked (may be NULL) */
    uint32_t bitmap;          /* as read before the claim */
    uint32_t full_mask;
    uint32_t capacity;
    uint32_t active_slabs;    /* popcount(bitmap) */
    hak_claim_outcome outcome;
    hak_slab *slab;           /* CLAIMED: the slab, not yet initialised */
    hak_os_failure failure;   /* CAP_REFUSED: what the cap refused to commit */
} hak_bitmap_check;
void superslab_claim_slab(hak_superslab_head *head, hak_bitmap_check *out);
/* Never handed out: what a class with no slab points at. */
extern hak_slab hak_empty_slab;
void slab_init(hak_slab *s, unsigned class_idx, struct hak_heap *owner);
/* Gives a slab with no live block back to its chunk; owner exclusive. */
void slab_release(hak_slab *s);
/* Links up to a page worth of uncarved blocks into s->free; false if none left. */
bool slab_carve(hak_slab *s);


/* ---- superslab_head.c ---- chains, expansion, retirement, abandoned slabs */
extern hak_superslab_head hak_heads[HAK_ARENAS][HAK_NUM_CLASSES];
/* An arena's slot in per-arena arrays: always 0 in the release build, which has only the program's. */
static inline unsigned hak_arena_slot(unsigned arena) {
    return HAK_ARENAS > 1 ? arena : 0;
}
static inline hak_superslab_head *hak_head(unsigned arena, unsigned class_idx) {
    return &hak_heads[hak_arena_slot(arena)][class_idx];
}
/* Every head, i < HAK_ARENAS * HAK_NUM_CLASSES, arena by arena (one lock order for all who take them all). */
static inline hak_superslab_head *hak_head_at(unsigned i) {
    return hak_head(i / HAK_NUM_CLASSES, i % HAK_NUM_CLASSES);
}
/* The head that chains a chunk. */
static inline hak_superslab_head *hak_chunk_head(const hak_superslab *c) {
    return hak_head(c->arena, c->class_idx);
}
/* reused: a chained chunk with a free slab became current; new: superslab_allocate
 * gave a chunk; lost_race: another thread expanded first, retry on its chunk;
 * failed: superslab_allocate failed (see failure). */
#define HAK_EXPAND_ITEM(id, label, value) HAK_EXPAND_##id = value,
typedef enum hak_expand_outcome { HAKMEM_TP_EXPAND_OUTCOME(HAK_EXPAND_ITEM) } hak_expand_outcome;
typedef struct hak_expansion {
    hak_expand_outcome outcome;
    hak_superslab *chunk;     /* the head's current_chunk afterwards */
    uint32_t chunk_count;
    bool waited;              /* had to wait for another expanding thread */
    hak_os_failure failure;
} hak_expansion;
void expand_superslab_head(hak_superslab_head *head, hak_superslab *observed, hak_expansion *out);
void superslab_head_chunk_emptied(hak_superslab_head *head, hak_superslab *chunk);
void superslab_heads_lock_all(void);
void superslab_heads_unlock_all(void);
/* Free slabs' committed pages go back; with retire_idle, chunks no slab uses retire too (under
 * refusal: current chunks included); how many pieces. */
size_t superslab_heads_give_back(bool retire_idle);
/* A slab release left the class with more than hak_class_warm_slabs free slabs whose pages stay
 * committed: once they have been so for the purge delay, the excess gives its pages back. */
void superslab_head_purge_later(hak_superslab_head *head);

/* ---- reclaim.c ---- memory that remains, given back when the OS or the cap refuses */
/* Returns what no one uses (refused releases, the large cache, the reserve, idle
 * chunks) to the OS; how many pieces went. One reclaim runs at a time. */
size_t hak_reclaim_unused(struct hak_heap *self); /* self: the caller's heap, or NULL */
#define HAK_RECLAIM_ITEM(id, label, value) HAK_RECLAIM_##id = value,
typedef enum hak_reclaim_outcome { HAKMEM_TP_RECLAIM_OUTCOME(HAK_RECLAIM_ITEM) } hak_reclaim_outcome;
#undef HAK_RECLAIM_ITEM
/* A refused request's retries: zero-initialised, one per request. After each hak_reclaim_retry, the last
 * fields tell the trace what that try did. */
typedef struct hak_reclaim_ticket {
    uint64_t seen;        /* reclaims ended when this request last looked */
    unsigned tries;
    uint8_t outcome;      /* hak_reclaim_outcome */
    uint32_t stolen;      /* slabs taken back from heaps by this request's own reclaim */
    uint64_t given_back;  /* bytes the program's committed account fell by over its own reclaim */
} hak_reclaim_ticket;
/* After a refusal: true when the request should try again — after its own
 * reclaim the first time, then while other reclaims have ended since (at most
 * HAK_RECLAIM_RETRIES more); false makes the refusal an OOM. */
bool hak_reclaim_retry(struct hak_heap *self, hak_reclaim_ticket *t);
void hak_reclaim_fork_lock(void); /* fork handlers: before every other lock */
void hak_reclaim_fork_unlock(void);
/* hak_collect's part: free slabs' pages, the releases the OS refused and the large mappings unused for a while go
 * back; the other caches stay. */
void hak_reclaim_trim(void);

/* ---- oom_report.c ---- (trace build) what an oom event says, and the totals the process ends with */
#if defined(HAKMEM_TRACING) && HAKMEM_TRACING
/* Names the call for an oom it may end; true when it did (an outer call, say posix_memalign around
 * hak_memalign, keeps its name). Only the trace build pays these two stores. */
static inline bool hak_call_begin(hak_call_kind kind, uint64_t count, uint64_t size, uint64_t align,
                                  const void *old) {
    if (hak_tls.call.kind != HAK_CALL_MALLOC) return false;
    hak_tls.call = (hak_call){.count = count, .size = size, .align = align, .old = old, .kind = (uint8_t)kind};
    return true;
}
static inline void hak_call_end(bool began) {
    if (began) hak_tls.call.kind = HAK_CALL_MALLOC;
}
/* The census and the oom of the program's allocation that is refused now; size: what malloc was asked for. */
void hak_oom_trace(size_t size, unsigned class_idx, uint32_t block_size, unsigned arena);
void hak_trace_forked(void); /* fork child: its totals count from here */
__attribute__((visibility("hidden"))) void hak_trace_exit_totals(void); /* the destructor's (hakmem_tp.c) */
#else
static inline bool hak_call_begin(hak_call_kind kind, uint64_t count, uint64_t size, uint64_t align,
                                  const void *old) {
    (void)kind, (void)count, (void)size, (void)align, (void)old;
    return false;
}
static inline void hak_call_end(bool began) { (void)began; }
static inline void hak_oom_trace(size_t size, unsigned class_idx, uint32_t block_size, unsigned arena) {
    (void)size, (void)class_idx, (void)block_size, (void)arena;
}
static inline void hak_trace_forked(void) {}
#endif

/* ---- census.c ---- where the memory is, per class, when an OOM is traced */
/* Trace build, events enabled: the census as oom_memory and one oom_class_memory per class, before an oom. */
void hak_census_trace(uint64_t seq);

/* ---- refill.c ---- */
hak_slab *superslab_refill(struct hak_heap *heap, unsigned class_idx);

/* ---- remote_free.c ---- who holds a slab (the protocol is narrated there) */
/* Pushes the blocks first..last (count of them, linked from first) on the slab's stack; true when the slab was
 * unheld: the caller holds it now. */
bool remote_free_push_list(hak_slab *s, hak_block *first, hak_block *last, uint32_t count);
static inline bool remote_free_push(hak_slab *s, hak_block *b) {
    return remote_free_push_list(s, b, b, 1);
}
/* Empties the heap's outbox (types.h) onto its slab's stack; the slab if it was unheld (the caller holds it now),
 * else NULL. The outbox's thread, or a stealer that shut its heap out. */
hak_slab *remote_outbox_push(struct hak_heap *heap);
/* Moves the slab's remote frees to its free list; returns how many. Holder only. */
uint32_t remote_free_collect(hak_slab *s);
/* Blocks to hand out without collecting: the free list or uncarved blocks. */
bool slab_has_blocks(const hak_slab *s);
/* The holder lets the slab go (owner NONE, UNHELD set), listed if it has blocks
 * to hand out. HAK_RELEASED: frees came in meanwhile and brought every block
 * back, so it went to its chunk instead. keep_if_fed (an exhausted slab): frees
 * that came in make it HAK_KEPT instead, still held, owner NONE, for the caller
 * to collect. */
typedef enum hak_letgo { HAK_LET_GO, HAK_RELEASED, HAK_KEPT } hak_letgo;
hak_letgo slab_let_go(hak_slab *s, bool keep_if_fed);
/* The holder clears the slab's listed bit, if set. */
void slab_unlist(hak_slab *s);
/* A refill takes a listed slab of the class for `heap` (its owner now), or NULL. */
hak_slab *slab_adopt(struct hak_heap *heap, unsigned class_idx);

/* ---- steal.c ---- what other heaps hold with every block back, taken before an OOM */
/* ---- tracer.c ---- (trace build) the tracer's allocations, told apart and served from its arena */
#if defined(HAKMEM_TRACING) && HAKMEM_TRACING
extern _Atomic uint8_t hak_tracer_window; /* tracepoints/hakmem_tp.c: open until the trace library's last constructor */
static inline bool hak_in_tracer(void) {
    return hak_tls.trace_busy || atomic_load_explicit(&hak_tracer_window, memory_order_acquire);
}
void hak_tracer_teardown(void);       /* the destructors begin: this thread is the tracer's from now on */
bool hak_tracer_thread_check(void);   /* a thread's first allocation: true (and the thread the tracer's) if it is */
void *hak_tracer_small_alloc(unsigned class_idx);
void hak_tracer_add_counts(uint64_t *allocs);
#else
static inline bool hak_in_tracer(void) { return false; }
static inline bool hak_tracer_thread_check(void) { return false; }
static inline void *hak_tracer_small_alloc(unsigned class_idx) { (void)class_idx; return NULL; }
static inline void hak_tracer_add_counts(uint64_t *allocs) { (void)allocs; }
#endif
/* ---- sampler.c ---- (trace build) the heap profile: a block allocated past the thread's next sample point is
 * sampled (heap_sample); the free of a sampled block is traced too (heap_sample_free). Only where heap_sample is
 * compiled in: the failures-only library, run in production, pays nothing for a profile it cannot record (about 8
 * of the 13 instructions per malloc+free pair it cost over the release library). */
#if defined(HAKMEM_TRACING) && HAKMEM_TRACING && HAKMEM_TRACE_EVENT_heap_sample
#define HAK_SAMPLING 1
#else
#define HAK_SAMPLING 0
#endif
#if HAK_SAMPLING
extern _Atomic uint64_t hak_samples_live; /* sampled blocks not freed yet: 0 spares the free path its lookup */
void *hak_sample_taken(void *p, size_t size, unsigned class_idx);
void hak_sample_forget(const void *p);
static inline void *hak_sampled(void *p, size_t size, unsigned class_idx) {
    if (HAK_UNLIKELY((hak_tls.sample_left -= (int64_t)size) < 0)) return hak_sample_taken(p, size, class_idx);
    return p;
}
static inline void hak_sample_freed(const void *p) {
    if (HAK_UNLIKELY(atomic_load_explicit(&hak_samples_live, memory_order_relaxed) != 0)) hak_sample_forget(p);
}
/* The same for a small block, by the slab its free reads anyway: no lookup unless the slab's filter says its block
 * may be a sample (a lookup on every free cost larson a quarter of its time at the default interval; one in every
 * slab holding a sample, 7 %). */
static inline uint32_t hak_sample_filter_bit(const void *p) {
    uintptr_t a = (uintptr_t)p;
    return (uint32_t)1 << (16 + (((a >> 4) ^ (a >> 9)) & 15));
}
static inline bool hak_sample_may_hold(const struct hak_slab *s, const void *p) {
    uint32_t sampled = atomic_load_explicit(&s->sampled, memory_order_relaxed);
    return HAK_UNLIKELY(sampled != 0) && (sampled & hak_sample_filter_bit(p));
}
#else
static inline void *hak_sampled(void *p, size_t size, unsigned class_idx) {
    (void)size, (void)class_idx;
    return p;
}
static inline void hak_sample_freed(const void *p) { (void)p; }
static inline void hak_sample_forget(const void *p) { (void)p; }
static inline bool hak_sample_may_hold(const struct hak_slab *s, const void *p) {
    (void)s, (void)p;
    return false;
}
#endif
/* The arena the current call allocates for. */
static inline unsigned hak_context_arena(void) {
    return hak_in_tracer() ? HAK_ARENA_TRACER : HAK_ARENA_PROGRAM;
}

/* A call that may touch a heap opens one of its op words (types.h) and ends it counted (hak_op_end) or not
 * (hak_op_cancel). Calls do not nest; a tracepoint's allocations (trace builds) are the empty heap's calls, for
 * hak_tracer_enter makes it the thread's heap meanwhile, so the call that emits stays open on its own. Only the
 * heap's thread writes: on x86-64 an unlocked add to memory is one aligned 8-byte store that readers see whole,
 * one instruction where a relaxed load and store take three. */
static inline void hak_op_step(_Atomic uint64_t *word, int64_t delta) { /* delta: 1 or -1 */
#if defined(__x86_64__) && !defined(HAK_TSAN)
    __asm__("addq %1, %0" : "+m"(*(uint64_t *)word) : "e"(delta));
#else
    atomic_store_explicit(word, atomic_load_explicit(word, memory_order_relaxed) + (uint64_t)delta,
                          memory_order_release);
#endif
}
static inline void hak_op_begin(_Atomic uint64_t *word) {
    hak_op_step(word, 1);
    atomic_signal_fence(memory_order_seq_cst); /* before the call reads any slab (steal.c) */
}
static inline void hak_op_end(_Atomic uint64_t *word) {
    atomic_signal_fence(memory_order_seq_cst);
    hak_op_step(word, 1);
}
static inline void hak_op_cancel(_Atomic uint64_t *word) {
    atomic_signal_fence(memory_order_seq_cst);
    hak_op_step(word, -1);
}
/* Whether the slab is the heap's to free into locally: free's owner check, an acquire load compared in one
 * instruction with the value in memory (GCC never folds an atomic load into a compare). The asm is volatile
 * with a memory clobber, so that no later read of the slab moves before it: x86-64 orders the loads
 * themselves. */
static inline bool hak_slab_owned_by(const struct hak_slab *s, const struct hak_heap *heap) {
#if defined(__x86_64__) && !defined(HAK_TSAN)
    bool owned;
    __asm__ volatile("cmpq %[heap], %[owner]"
                     : "=@ccz"(owned)
                     : [owner] "m"(s->owner), [heap] "r"(heap)
                     : "memory");
    return owned;
#else
    return atomic_load_explicit(&s->owner, memory_order_acquire) == heap;
#endif
}
/* The blocks a heap's op word counted; and whether a call of its heap is open. */
static inline uint64_t hak_op_count(const _Atomic uint64_t *word) {
    return atomic_load_explicit(word, memory_order_relaxed) >> 1;
}
static inline bool hak_op_open(const struct hak_heap *heap) {
    return ((atomic_load_explicit(&heap->ops.allocs, memory_order_acquire) |
             atomic_load_explicit(&heap->ops.frees, memory_order_acquire)) & 1) != 0;
}
/* A slow path's first step before it changes the heap's lists: waits while a stealer is at them. */
void hak_heap_wait_steal(struct hak_heap *heap);
static inline void hak_heap_enter_slow(struct hak_heap *heap) {
    if (HAK_UNLIKELY(atomic_load_explicit(&heap->stealing, memory_order_acquire))) hak_heap_wait_steal(heap);
}
/* Every live heap's slabs with no block out go to their chunks (`self`: the caller's heap, or NULL); how many. */
size_t hak_steal_unused(struct hak_heap *self);

/* ---- heaps.c ---- each thread's heap, and the registry of thread heaps */
void hak_heaps_lock(void);
void hak_heaps_unlock(void);
/* A pooled heap (an exited thread's), or NULL. Registry lock held, as for the next three. */
hak_heap *hak_heaps_pooled_locked(void);
void hak_heaps_add_locked(hak_heap *h);
/* Out of the live list, into the pool. */
void hak_heaps_pool_locked(hak_heap *h);
/* Fork child: every live heap but `keep` leaves the live list; they are returned, linked by next_heap. */
hak_heap *hak_heaps_detach_others_locked(hak_heap *keep);
/* Calls fn for every live heap, then fn(NULL, arg), all under the registry lock. */
typedef void (*hak_heap_visitor)(hak_heap *heap, void *arg);
void hak_heaps_visit(hak_heap_visitor fn, void *arg);
/* Fork handlers: the registry lock. */
void hak_heaps_fork_lock(void);
void hak_heaps_fork_unlock(void);

/* ---- tiny.c ---- per-thread caches of slabs */
/* A block of the class for a thread that has a heap, or NULL when no memory remains. */
void *tiny_alloc_slow(struct hak_heap *heap, unsigned class_idx);
void tiny_free_slow(struct hak_heap *heap, hak_slab *s);
/* A free that found the slab unheld holds it: released, adopted into `heap` (NULL: a thread without one) or let go. */
void tiny_take_over(struct hak_heap *heap, hak_slab *s);
static inline hak_slab *hak_outbox_slab(const struct hak_heap *heap) {
    return atomic_load_explicit(&heap->outbox_slab, memory_order_relaxed);
}
/* The heap's outbox (types.h), if any, onto its slab's stack, the slab taken over if it was unheld. Inside a call. */
void tiny_outbox_flush(struct hak_heap *heap);
void tiny_heap_abandon_all(struct hak_heap *heap);
void tiny_heap_collect(struct hak_heap *heap);

/* ---- thread.c ---- a thread's heap: its start, the thread's exit, fork */

/* Gives the calling thread its heap; NULL (errno = ENOMEM) when no metadata page could be mapped. */
/* The calling thread's heap; NULL with errno ENOMEM (and *why) when its metadata was refused. */
hak_heap *hak_thread_heap_init(hak_os_failure *why);
bool hak_thread_exiting(void); /* its heap was retired (the key's destructor ran): no new one for a free */
/* A heap of `arena` for use under a lock of the caller's: in no registry, never stolen from (tracer.c). */
hak_heap *hak_thread_heap_make(unsigned arena);

/* ---- large_cache.c ---- freed large mappings kept for reuse */
/* A cached mapping of at least `need` bytes (its size in *size), or NULL. */
uint8_t *large_cache_take(size_t need, size_t *size);
/* Moves cached pages over the unused [dst, dst + len) of a grown mapping; the bytes of it they cover, from dst. */
size_t large_cache_fill(uint8_t *dst, size_t len);
/* Keeps a freed mapping; false if it does not belong in the cache. `live`: the program's large mappings still in
 * use, which the cache may match. */
bool large_cache_put(uint8_t *base, size_t size, size_t live);
size_t large_cache_flush(void); /* unmaps every cached mapping; how many */
void large_cache_decay(void);   /* unmaps the mappings unused for a while */
size_t large_cache_bytes(void); /* part of the mapped bytes */

/* ---- large.c ---- blocks above HAK_SMALL_MAX, one mapping each */
#define HAK_LARGE_MAGIC 0x48414b4d4c415247ull /* "HAKMLARG" */
#define HAK_LARGE_HEADER 64u
/* At the 2 MiB boundary at or below user - 1, which is what free() computes
 * from the pointer alone. */
typedef struct hak_large_header {
    uint64_t magic;
    uint8_t *map_base;
    size_t map_size;
    uint8_t *user;
    size_t requested; /* checked build: the usable size; canary bytes from there to the mapping's end */
    unsigned arena;   /* charged to this arena's account; only the program's mappings are cached */
} hak_large_header;
static inline hak_large_header *hak_large_header_of(const void *p) {
    return (hak_large_header *)(((uintptr_t)p - 1) & ~(uintptr_t)HAK_CHUNK_MASK);
}
/* zeroed: the caller needs zero bytes (calloc); fresh mappings are, cached ones get cleared. */
void *large_alloc(size_t size, size_t align, bool zeroed);
size_t large_committed_bytes(void); /* the program's large mappings */
/* The block's header, or NULL when p is not a large block hakmem handed out. */
hak_large_header *large_block(const void *p);
/* keep_mapping: the mapping may go to the cache of freed mappings. */
void large_free(hak_large_header *h, bool keep_mapping);
size_t large_usable_size(const hak_large_header *h);
/* Whether the block now holds `size` bytes without moving. */
bool large_resize_in_place(hak_large_header *h, size_t size);
/* The block grown to `size` bytes by moving its pages (no copy), or NULL (the block untouched). */
void *large_grow_moved(hak_large_header *h, size_t size);

/* ---- stats.c ---- counters: per class in the slow paths, per thread heap on the fast paths */
#define HAK_CTR_ITEM(field, column, width, meaning) HAK_CTR_##field,
typedef enum hak_class_counter { HAK_CLASS_COUNTERS(HAK_CTR_ITEM) HAK_CTR_COUNT } hak_class_counter;
#undef HAK_CTR_ITEM
/* Per arena and class; index HAK_NUM_CLASSES is the large path. HAKMEM_STATS reports the program's arena:
 * the tracer's refills are not the program's, and the trace (which omits them) must match the table. */
extern _Atomic uint64_t hak_class_counters[HAK_ARENAS][HAK_NUM_CLASSES + 1][HAK_CTR_COUNT];
static inline void hak_count(unsigned arena, unsigned class_idx, hak_class_counter c) {
    atomic_fetch_add_explicit(&hak_class_counters[hak_arena_slot(arena)][class_idx][c], 1, memory_order_relaxed);
}
/* Counts that belong to no heap: large blocks, frees by threads without one, and exited heaps' totals. */
void hak_stats_shared_alloc(void);
void hak_stats_shared_free(void);
void hak_stats_retire_heap(const hak_heap *heap);
/* The shared counts so far, added to *allocs and *frees. */
void hak_stats_add_shared(uint64_t *allocs, uint64_t *frees);

#endif
