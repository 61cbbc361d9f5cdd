/* types.h — the allocator's vocabulary and data structures, with their invariants. */
#ifndef HAKMEM_TYPES_H
#define HAKMEM_TYPES_H

/*
 * Glossary
 * --------
 * size class     A block size. Tiny classes C0..C7 are 8,16,...,1024 bytes
 *                (powers of two, the seed's numbering); mid classes C8..C27
 *                cover 1025..32768 bytes in four steps per doubling; the
 *                between classes C28..C40 are the steps between the tiny ones
 *                (48; 80..112, 160..224, 320..448, 640..896), numbered after
 *                the mid classes so that the seed's keep their numbers: a
 *                class's number says nothing of its size order. The medium
 *                classes C41..C60 go on in four steps per doubling from
 *                40 KiB to 1 MiB, carved from spans. Larger requests take the
 *                large path.
 * block          One object handed to the user. A free block's first word links
 *                it to the next free block (hak_block).
 * slab           64 KiB of a SuperSlab carved into blocks of one class. Owned by
 *                at most one thread heap at a time.
 * span           A medium class's slab: 2^k slabs, aligned to their number in
 *                the chunk, claimed and released as one, so that a span holds
 *                several blocks of up to 1 MiB. Its metadata is its first slab's;
 *                the others' stay FREE and unowned, so a free into them misses
 *                the fast path and finds the first. Their pages are committed as
 *                carving reaches them, so that a class touched lightly is charged
 *                what it uses. Every class below 40 KiB has spans of one slab.
 * SuperSlab      (chunk) 2 MiB region aligned to 2 MiB holding 32 slabs; its
 *                header (hak_superslab) sits at the start, so slab 0 hands out
 *                blocks only after HAK_SLAB0_DATA_OFFSET. One class per chunk.
 * slab_bitmap    bit i set <=> slab i of the chunk is in use (claimed by a heap,
 *                abandoned, or retired). Full mask = 0xffffffff.
 * active_slabs   popcount(slab_bitmap): derived, never stored, so the two can
 *                never disagree (the seed's crash came from them disagreeing).
 * SuperSlabHead  Per class: the chain of chunks and current_chunk, the one
 *                chunk where slabs are claimed. expand_superslab_head is the
 *                only way current_chunk changes and the only caller of
 *                superslab_allocate.
 * heap           Per thread: for every class a ring of slabs it holds, one of
 *                them current (the fast path pops its free list without atomics
 *                or locks).
 * holding        Exactly one party may touch a slab's free list and counts: its
 *                holder. A heap holds the slabs of its ring (`owner` names it);
 *                a slab no heap holds is unheld, and whoever clears its UNHELD
 *                bit first (a free into it, or an adopting refill) holds it.
 * remote free    A free by a thread that does not hold the slab: one CAS pushes
 *                the block on the slab's lock-free stack; the holder collects.
 * unheld slab    A slab its holder let go: exhausted (every block out), or its
 *                owner thread exited, or a free that held it for a moment had no
 *                use for it. The first free into it takes it over: it returns the
 *                slab to its chunk when every block is back, adopts it into its
 *                own heap, or lets it go again, listed. Listed slabs (they have
 *                blocks to hand out) are found by refills of their class.
 * committed      A slab whose pages are in memory and charged to HAKMEM_MAX_MEMORY.
 *                A slab is committed when claimed; a free slab beyond the class's
 *                small reserve goes back to the OS (MADV_DONTNEED) and is uncharged.
 * refill         superslab_refill: the slow path that gives a heap a slab with
 *                free blocks; every decision it takes is a trace event.
 * chunk window   One reservation of address space (HAKMEM_CHUNK_WINDOW) that
 *                chunks are carved from: read-only zero pages wherever no chunk
 *                is, so free() may read the slab header of any pointer in it
 *                (a zero one has no owner and is not live). A slot is never
 *                unmapped, only made read-only again.
 * region map     One byte per 2 MiB of address space telling whether hakmem
 *                mapped it and as what; lets free() identify a pointer outside
 *                the window (a large block, a chunk past a full window) without
 *                reading memory hakmem did not map.
 * op word        Per heap and direction (allocs, frees): odd while a call of the
 *                heap's thread is open, half of it the blocks counted (types.h
 *                hak_heap_ops, steal.c).
 * arena          Whose memory a chunk, heap or large block is: the program's,
 *                or (trace build only) the tracer's — what lttng-ust and what it
 *                loads allocate. The tracer's arena has chunks, heads and heaps
 *                of its own, is charged apart and is never refused by the cap or
 *                by fault injection, so a traced program gets exactly the memory
 *                and the refusals it gets untraced (trace_context.c says how the
 *                tracer's allocations are told apart).
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { HAK_ARENA_PROGRAM = 0, HAK_ARENA_TRACER = 1 };
#if defined(HAKMEM_TRACING) && HAKMEM_TRACING
#define HAK_ARENAS 2
#else
#define HAK_ARENAS 1 /* the release build has the program's only: every arena test folds away */
#endif

#define HAK_CHUNK_SHIFT 21
#define HAK_CHUNK_SIZE ((size_t)1 << HAK_CHUNK_SHIFT)
#define HAK_CHUNK_MASK (HAK_CHUNK_SIZE - 1)
/* The chunk window (chunk_window.c): address space reserved up front for chunks, HAKMEM_CHUNK_WINDOW bytes. */
#define HAK_WINDOW_DEFAULT ((size_t)64 << 30)
#define HAK_WINDOW_MAX ((size_t)256 << 30)
#define HAK_WINDOW_MIN ((size_t)64 << 20) /* smaller windows are not tried when a larger one is refused */
#define HAK_SLAB_SHIFT 16
#define HAK_SLAB_SIZE ((size_t)1 << HAK_SLAB_SHIFT)
#define HAK_SLABS_PER_CHUNK 32 /* ss_slabs_capacity */
#define HAK_FULL_BITMAP 0xffffffffu
/* Slab 0 shares its 64 KiB with the chunk header; its blocks start here,
 * page aligned so that power-of-two classes up to 4 KiB stay size-aligned. */
#define HAK_SLAB0_DATA_OFFSET 8192u

#define HAK_TINY_CLASSES 8   /* C0..C7 = 8..1024 */
#define HAK_BETWEEN_FIRST 28 /* + C8..C27 = 1280..32768 */
#define HAK_MEDIUM_FIRST 41  /* + C28..C40 = 48..896, between the tiny classes */
#define HAK_NUM_CLASSES 61   /* + C41..C60 = 40 KiB..1 MiB, the medium classes */
#define HAK_TINY_MAX 1024u
#define HAK_MID_MAX 32768u       /* the largest class whose span is one slab */
#define HAK_SMALL_MAX 1048576u   /* the largest class: above it, the large path */
#define HAK_REALLOC_LARGE_MIN (256u * 1024) /* a realloc growing a block beyond it takes the large path */
/* Exhausted slabs a heap keeps per class, for the frees to come, before letting
 * the oldest go: enough that random frees into mostly full slabs stay cheap. */
#define HAK_FULL_SLABS_MAX 128
/* A free that takes over an unheld slab adopts it into its own heap when that
 * heap allocates the class and the slab's last heap is gone (a thread that
 * inherits an exited one's blocks: larson), or holds fewer slabs of it than
 * this: not so many that a thread which frees for others hoards what they need.
 * A heap that only frees the class adopts every slab it takes over, and lets
 * go of the ones it held of the class when that would pass this bound. */
#define HAK_ADOPT_ON_FREE_MAX 8
/* Remote frees into one slab that a thread gathers before it pushes them in one CAS: a consumer freeing a
 * producer's blocks in order pays one CAS per this many, and an idle thread keeps back no more than this. */
#define HAK_OUTBOX_MAX 64
/* Free slabs per class whose pages stay committed: a release and the next
 * claim reuse them without faulting pages in again; beyond them, pages go back. */
#define HAK_COMMITTED_FREE_SLABS 4
/* How long more of them may keep their pages: a program that frees a heap of
 * blocks and builds the next one within this faults none of them in again. A
 * server's request bursts come further apart than 50 ms: at 50, redis-server
 * took 1.39x mimalloc's minor faults, at 250 1.08x. */
#define HAK_PURGE_DELAY_NS (250ull * 1000 * 1000)
/* Retries a refused request makes because other threads' reclaims ended meanwhile: bounded, so
 * threads that keep reclaiming under a cap cannot keep one another from reporting their OOMs. */
#define HAK_RECLAIM_RETRIES 8
/* The mid-simple shortcut applies to blocks of 128 B and more: the seed's classes >= 4 (a between class
 * smaller than C4 has a larger number, so the rule is on the block size). */
#define HAK_MID_SIMPLE_MIN_BLOCK 128u

#define HAK_ADDRESS_BITS 47 /* user-space virtual addresses on x86-64 / aarch64 */
#define HAK_REGION_COUNT ((size_t)1 << (HAK_ADDRESS_BITS - HAK_CHUNK_SHIFT))

/* What hakmem mapped at a 2 MiB region (region map values). */
enum hak_region_kind {
    HAK_REGION_NONE = 0,
    HAK_REGION_SUPERSLAB = 1, /* a chunk header starts here */
    HAK_REGION_LARGE = 2,     /* a large block's header starts here */
};

typedef struct hak_block {
    struct hak_block *next;
} hak_block;

struct hak_heap;

/* Owner value for a slab no heap holds (unheld, held by a freer, or free in its chunk). */
#define HAK_OWNER_NONE ((struct hak_heap *)0)

/* remote_free bit: no one holds the slab; the first free or adopter to clear it does. */
#define HAK_REMOTE_UNHELD ((uintptr_t)1)
/* The stack's length rides in the word's top 16 bits (a slab holds at most
 * 8192 blocks, user addresses fit 47 bits), so collecting it needs no walk. */
#define HAK_REMOTE_LEN_SHIFT 48
#define HAK_REMOTE_LEN_ONE ((uintptr_t)1 << HAK_REMOTE_LEN_SHIFT)
#define HAK_REMOTE_PTR_MASK ((HAK_REMOTE_LEN_ONE - 1) & ~(uintptr_t)7)

/* slab->state: FREE in its chunk, or LIVE (claimed: held or unheld); `gen` changes at every claim. */
enum hak_slab_tag {
    HAK_SLAB_FREE = 0,
    HAK_SLAB_LIVE = 1,
};

/*
 * Slab metadata, kept in the chunk header (never inside the slab) so that a
 * slab's blocks can all be handed out. The lines split by who writes them.
 * The first holds what a free reads to find its way (owner, block-start
 * check, state) and the remote stack it pushes on: the holder writes it only
 * when it collects, adopts or lets go, so a stream of remote frees keeps it
 * in the freeing thread's cache. The second holds what the holder writes at
 * every malloc and local free; no other thread reads it, so a producer's
 * mallocs and its consumer's frees never bounce a line between them.
 */
typedef struct hak_slab {
    /* -- read by every free; written by remote frees (remote_free) and rarely by the holder -- */
    _Atomic(struct hak_heap *) owner;   /* the heap whose thread frees locally, or NONE */
    uint8_t *data;          /* first block */
    uint64_t block_magic;   /* hak_block_magic(block_size), and block_limit = hak_block_limit(block_size,
                             * capacity): offset is the start of one of the span's blocks <=>
                             * offset * block_magic < block_limit (one multiply, one compare) */
    uint64_t block_limit;
    _Atomic uintptr_t remote_free;      /* lock-free stack of remote frees: top block (bits 3..47)
                                         * | its length (bits 48..63) | HAK_REMOTE_UNHELD */
    _Atomic uint64_t state;             /* tag | gen (slab_state.h) */
    uint32_t block_size;
    uint32_t capacity;      /* blocks this slab (its whole span) holds */
    uint8_t class_idx;
    uint8_t slab_idx;       /* position in its chunk, 0..31 */
    uint8_t span_slabs;     /* slabs in its span (a power of two; 1 below the medium classes) */
    uint8_t pad0;
    _Atomic uint32_t sampled; /* (trace build) the heap profile's live samples starting in this slab: how many
                               * (bits 0..15) and a 16-bit filter of their addresses (bits 16..31); a free looks
                               * its block up among the samples only when its filter bit is set (sampler.c) */
    /* -- holder only (see "holding"): plain loads and stores -- */
    hak_block *free;        /* blocks ready to hand out; the owner's frees go straight
                             * back here (LIFO: the block just freed is the warmest) */
    uint32_t used;          /* blocks handed out and not yet collected back;
                             * 0 <=> no live block and nothing in remote_free */
    uint32_t carved;        /* blocks linked into lists so far (lazy, <= capacity); every
                             * slab of the span a carved block touches is committed */
    struct hak_slab *next;  /* the owner's ring or full list */
    struct hak_slab *prev;
    struct hak_heap *home;  /* (holder) the heap that held it last: a free by that heap's
                             * thread into the unheld slab takes it straight back */
    uint8_t on_full;        /* on its owner's full list (else in its ring, or not a heap's) */
    uint8_t pad1[23];
} hak_slab;

_Static_assert(offsetof(hak_slab, free) == 64, "what the holder writes at every call has a line of its own");
_Static_assert(sizeof(hak_slab) == 128, "slab metadata is two cache lines");

struct hak_superslab_head;

/* Chunk header at the start of every 2 MiB SuperSlab. */
typedef struct hak_superslab {
    uint64_t magic;
    /* The head's chain (written under head->lock; adopters walk it without the
     * lock, inside the claimers bracket), then the retired list or the reserve. */
    _Atomic(struct hak_superslab *) next_chunk;
    uint8_t class_idx;
    uint8_t arena;                     /* HAK_ARENA_*: whose head chains it, whose account it is charged to */
    uint8_t pad0[2];
    _Atomic uint32_t slab_bitmap;      /* bit set = slab in use; see glossary; a span's bits are set and
                                        * cleared together (only the purge's claims take single
                                        * slabs, and of wholly free spans only) */
    _Atomic uint32_t listed;           /* bit i: slab i was let go with blocks to hand out; set
                                        * before its UNHELD bit, cleared by whoever takes it over */
    _Atomic uint32_t committed;        /* bit i: slab i's pages are committed and charged */
    uint64_t idle_since_ns;            /* in the reserve: since when (its pages go back after a while) */
    uint8_t pad1[24];
    hak_slab slabs[HAK_SLABS_PER_CHUNK];
} hak_superslab;

_Static_assert(sizeof(hak_superslab) <= HAK_SLAB0_DATA_OFFSET, "chunk header fits before slab 0 data");

#define HAK_SUPERSLAB_MAGIC 0x48414b4d53534c42ull /* "HAKMSSLB" */

/*
 * Per class. current_chunk changes only inside expand_superslab_head, under
 * lock. Chunks leave the chain only under lock, after their bitmap went from
 * 0 to full in one CAS (retired), and reach the OS or the reserve only once
 * no claimer can still hold a pointer to them (claimers observed 0).
 */
typedef struct hak_superslab_head {
    _Atomic(hak_superslab *) current_chunk;
    _Atomic uint32_t claimers;        /* threads holding a chunk pointer without the lock: between
                                       * loading current_chunk and their CAS, or walking the chain */
    _Atomic uint32_t listed_slabs;    /* listed bits set across the chain: adopters walk only when > 0 */
    _Atomic uint32_t free_committed;  /* free slabs of the chain whose pages stay committed */
    _Atomic uint64_t purge_due_ns;    /* when the excess of them gives its pages back (0: none due) */
    uint8_t class_idx;
    uint8_t arena;                    /* its chunks' arena */
    pthread_mutex_t lock;             /* chain, expansion, retired list */
    _Atomic(hak_superslab *) chunks;  /* chain, newest first */
    uint32_t chunk_count;
    hak_superslab *retired;           /* unlinked, waiting for claimers == 0 */
} hak_superslab_head;

/* Per heap, per class; changed by the heap's thread, or by a stealer that shut it out (steal.c). */
typedef struct hak_class_cache {
    _Atomic(hak_slab *) current; /* never NULL: &hak_empty_slab when the heap has none; with the
                                  * other slabs it owns that have blocks, a ring via next/prev */
    uint32_t ring_count;    /* slabs in the ring */
    uint32_t full_count;    /* length of `full`, <= HAK_FULL_SLABS_MAX */
    hak_slab *full;         /* exhausted slabs the heap still owns, a cycle via next/prev,
                             * anchor the newest: frees into them are local, and when the ring
                             * runs dry the ones frees landed in rejoin it */
    uint8_t class_idx;      /* its place in the heap's cls[] (hak_set_current finds the heap's direct slots) */
    bool allocates;         /* the heap has refilled the class: it hands its blocks out, not only frees them */
    uint8_t pad[6];
} hak_class_cache;

/* A heap's op words: one for the calls that hand small blocks out, one for those that take them back. A call
 * that may touch the heap adds 1 to one as it begins and, as it ends, 1 more if it counted a block or -1 if it
 * did not. Odd: a call is open, which is what the stealers' handshake reads (steal.c); half of it: the blocks
 * counted, which is what the stats read. The call's mark and its count are one store at each end, where a flag
 * and a counter apart cost one instruction more a call. Written only by the heap's thread; hak_empty_heap's by
 * any thread (its calls are never counted, its words never read). */
typedef struct hak_heap_ops {
    _Atomic uint64_t allocs;
    _Atomic uint64_t frees;
} hak_heap_ops;

/* Slots of a heap's direct table: one per 8-byte granule of the tiny sizes, 0..1024 bytes. */
#define HAK_DIRECT_SLOTS (HAK_TINY_MAX / 8 + 1)

typedef struct hak_heap {
    /* By granule, ceil(size / 8): the current slab of the granule's tiny class, always its cls[].current
     * (hak_set_current writes both), so that malloc goes from a size to a slab with one load, as mimalloc's
     * pages_free_direct does. First, so that the load needs no displacement beside the index. */
    _Atomic(hak_slab *) direct[HAK_DIRECT_SLOTS];
    hak_class_cache cls[HAK_NUM_CLASSES];
    hak_superslab *last_chunk[HAK_NUM_CLASSES]; /* per class: the chunk of the last slab claimed (trace context) */
    _Atomic uint32_t stealing;  /* a thread is taking what this heap holds unused (steal.c) */
    hak_heap_ops ops;
    /* The outbox: the thread's last remote frees, all into one slab another heap holds, linked first..last and
     * pushed onto the slab's stack in one CAS when a free goes to another slab, at HAK_OUTBOX_MAX blocks, and at
     * the heap's next refill, collect or exit. Until then they stay counted in the slab's `used`, so the slab
     * outlives them. The heap's thread's only (a stealer leaves it alone). */
    _Atomic(hak_slab *) outbox_slab; /* NULL: empty. Atomic (relaxed) for a stealer's look before its handshake */
    hak_block *outbox_first, *outbox_last;
    uint32_t outbox_count;      /* 1..HAK_OUTBOX_MAX while outbox_slab is set */
    uint64_t refill_seq;        /* per-thread refill sequence number (trace correlator) */
    struct hak_heap *next_heap; /* registry or pool list; guarded by the registry lock */
    int32_t tid;
    _Atomic bool live;          /* its thread runs (false once pooled); read without the lock as a hint */
    uint8_t arena;              /* it claims slabs from this arena's heads only, and adopts only its slabs */
} hak_heap;

#endif
