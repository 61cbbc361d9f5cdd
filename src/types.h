/* types.h — the allocator's vocabulary and data structures, with their invariants. */
#ifndef HAKMEM_TYPES_H
#define HAKMEM_TYPES_H

/*
 * Glossary
 * --------
 * size class     A block size. Tiny classes C0..C7 are 8,16,...,1024 bytes
 *                (powers of two, the seed's numbering); mid classes C8..C27
 *                cover 1025..32768 bytes in four steps per doubling. Larger
 *                requests take the large path.
 * block          One object handed to the user. A free block's first word links
 *                it to the next free block (hak_block).
 * slab           64 KiB of a SuperSlab carved into blocks of one class. Owned by
 *                at most one thread heap at a time.
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
 * heap           Per thread: for every class the current slab (fast path pops
 *                its free list without atomics or locks) and the owned slabs.
 * remote free    A free by a thread that does not own the slab: pushed on the
 *                slab's lock-free MPSC list, collected by the owner.
 * full slab      A slab its owner exhausted and keeps (still OWNED) on a short
 *                per-class list; when the ring runs dry, the full slabs that
 *                frees (local or remote) landed in since rejoin it.
 * parked slab    A full slab its owner set aside for good (the full list
 *                overflowed, or the owner is collecting). Frees into it are
 *                counted; the last one returns it to its chunk, with no help
 *                from the owner. The owner takes it back when it needs blocks.
 * abandoned slab A slab whose owner thread exited while blocks were live. The
 *                last free returns it to its chunk; a refill of its class may
 *                adopt it before that.
 * refill         superslab_refill: the slow path that gives a heap a slab with
 *                free blocks; every decision it takes is a trace event.
 * region map     One byte per 2 MiB of address space telling whether hakmem
 *                mapped it and as what; lets free() identify a pointer's owner
 *                without reading memory hakmem did not map.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HAK_CHUNK_SHIFT 21
#define HAK_CHUNK_SIZE ((size_t)1 << HAK_CHUNK_SHIFT)
#define HAK_CHUNK_MASK (HAK_CHUNK_SIZE - 1)
#define HAK_SLAB_SHIFT 16
#define HAK_SLAB_SIZE ((size_t)1 << HAK_SLAB_SHIFT)
#define HAK_SLABS_PER_CHUNK 32 /* ss_slabs_capacity */
#define HAK_FULL_BITMAP 0xffffffffu
/* Slab 0 shares its 64 KiB with the chunk header; its blocks start here,
 * page aligned so that power-of-two classes up to 4 KiB stay size-aligned. */
#define HAK_SLAB0_DATA_OFFSET 8192u

#define HAK_TINY_CLASSES 8  /* C0..C7 = 8..1024 */
#define HAK_NUM_CLASSES 28  /* + C8..C27 = 1280..32768 */
#define HAK_TINY_MAX 1024u
#define HAK_SMALL_MAX 32768u
/* Full slabs a heap keeps per class before parking the oldest: beyond it, memory
 * waiting on remote frees must be able to return without the owner's help. */
#define HAK_FULL_SLABS_MAX 32
#define HAK_MID_SIMPLE_MIN_CLASS 4 /* the mid-simple shortcut applies to classes >= 4 */

#define HAK_ADDRESS_BITS 47 /* user-space virtual addresses on x86-64 / aarch64 */
#define HAK_REGION_COUNT ((size_t)1 << (HAK_ADDRESS_BITS - HAK_CHUNK_SHIFT))

/* What hakmem mapped at a 2 MiB region (region map values). */
enum hak_region_kind {
    HAK_REGION_NONE = 0,
    HAK_REGION_SUPERSLAB = 1, /* a chunk header starts here */
    HAK_REGION_LARGE = 2,     /* a large block's header starts here */
};

enum hak_aside {
    HAK_ASIDE_NONE = 0,
    HAK_ASIDE_PARKED = 1,
    HAK_ASIDE_FULL = 2,
};

typedef struct hak_block {
    struct hak_block *next;
} hak_block;

struct hak_heap;

/* Owner value for a slab no heap owns (abandoned, or free in its chunk). */
#define HAK_OWNER_NONE ((struct hak_heap *)0)

/* remote_free bit: frees must count themselves in `state` (remote_free.c). */
#define HAK_REMOTE_COUNTED ((uintptr_t)1)
/* The stack's length rides in the word's top 16 bits (a slab holds at most
 * 8192 blocks, user addresses fit 47 bits), so collecting it needs no walk. */
#define HAK_REMOTE_LEN_SHIFT 48
#define HAK_REMOTE_LEN_ONE ((uintptr_t)1 << HAK_REMOTE_LEN_SHIFT)
#define HAK_REMOTE_PTR_MASK ((HAK_REMOTE_LEN_ONE - 1) & ~(uintptr_t)7)

/*
 * Slab life cycle (slab->state, see remote_free.c for the protocol):
 *   FREE -> OWNED (claimed by a heap) -> PARKED (exhausted; the owner moved on)
 *        -> OWNED (unparked) ... ; OWNED/PARKED -> UNOWNED (owner exited)
 *        -> OWNED (adopted); any of them -> RELEASING -> FREE (back to its chunk).
 * The low 32 bits count the blocks still to come back (PARKED, UNOWNED; 0
 * while OWNED); `gen` changes at every claim (a new life of the slab).
 */
enum hak_slab_tag {
    HAK_SLAB_FREE = 0,
    HAK_SLAB_OWNED = 1,
    HAK_SLAB_PARKED = 2,
    HAK_SLAB_UNOWNED = 3,
    HAK_SLAB_RELEASING = 4,
};

/*
 * Slab metadata, kept in the chunk header (never inside the slab) so that a
 * slab's blocks can all be handed out. The first cache line is the holder's;
 * the second is what other threads touch, so remote frees do not bounce the
 * owner's fast-path line.
 */
typedef struct hak_slab {
    /* -- holder only: the owning heap's thread, or whoever moved `state`
     *    to RELEASING, or an adopter; plain loads and stores -- */
    hak_block *free;        /* blocks ready to hand out; the owner's frees go straight
                             * back here (LIFO: the block just freed is the warmest) */
    uint64_t pad1;          /* keeps the shared fields on the second line */
    uint32_t used;          /* blocks handed out and not yet collected back;
                             * 0 <=> no live block and nothing in remote_free */
    uint32_t capacity;      /* blocks this slab holds */
    uint32_t carved;        /* blocks linked into lists so far (lazy, <= capacity) */
    uint32_t block_size;
    uint8_t class_idx;
    uint8_t slab_idx;       /* position in its chunk, 0..31 */
    uint8_t aside;          /* owner's view of where the slab is: HAK_ASIDE_NONE (on the
                             * ring, or not the owner's), _FULL (exhausted, on the owner's
                             * full list, still OWNED), _PARKED (state is PARKED).
                             * _PARKED sends a local free to the slow path. */
    uint8_t pad0;
    uint32_t block_magic;   /* ceil(2^32 / block_size): offset / block_size with one multiply */
    uint8_t *data;          /* first block */
    struct hak_slab *next;  /* owner's ring, full or parked list, or the abandoned list */
    /* -- shared with other threads -- */
    struct hak_slab *prev;  /* (lists only; kept here for the 64-byte split) */
    _Atomic(struct hak_heap *) owner;   /* the heap whose thread frees locally, or NONE */
    _Atomic uintptr_t remote_free;      /* MPSC stack of remote frees: top block (bits 3..47)
                                         * | its length (bits 48..63) | HAK_REMOTE_COUNTED
                                         * while PARKED or UNOWNED */
    _Atomic uint64_t state;             /* tag | gen | count, see above */
    uint8_t pad2[40];
} hak_slab;

_Static_assert(sizeof(hak_slab) == 128, "slab metadata is two cache lines");

struct hak_superslab_head;

/* Chunk header at the start of every 2 MiB SuperSlab. */
typedef struct hak_superslab {
    uint64_t magic;
    struct hak_superslab *next_chunk;  /* head's chain; guarded by head->lock */
    uint8_t class_idx;
    uint8_t pad0[3];
    _Atomic uint32_t slab_bitmap;      /* bit set = slab in use; see glossary */
    uint8_t pad1[40];
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
    _Atomic uint32_t claimers;   /* threads between loading current_chunk and their CAS */
    uint8_t class_idx;
    pthread_mutex_t lock;        /* chain, expansion, parked, abandoned and retired lists */
    hak_superslab *chunks;       /* chain, newest first */
    uint32_t chunk_count;
    hak_slab *abandoned;         /* UNOWNED slabs, doubly linked through slab->next/prev */
    hak_superslab *retired;      /* unlinked, waiting for claimers == 0 */
} hak_superslab_head;

/* Per heap, per class. */
typedef struct hak_class_cache {
    hak_slab *current;      /* never NULL: &hak_empty_slab when the heap has none;
                             * with the other avail slabs, a ring via next/prev */
    hak_slab *full;         /* exhausted OWNED slabs, a cycle (anchor newest, anchor->next
                             * oldest); owner only. Off the ring so allocation never walks
                             * them; not parked, so frees into them take no lock */
    uint32_t full_count;    /* length of `full`, <= HAK_FULL_SLABS_MAX */
    hak_slab *parked;       /* PARKED slabs of this heap; guarded by the head lock */
    hak_superslab *chunk;   /* chunk of the last slab this heap claimed (trace context) */
    _Atomic uint32_t remote_hint; /* set by remote frees into a parked slab */
} hak_class_cache;

/* Counters kept per heap; written only by the heap's thread, read by stats. */
typedef struct hak_heap_counters {
    _Atomic uint64_t allocs;  /* blocks handed out (small and large) */
    _Atomic uint64_t frees;   /* blocks given back */
} hak_heap_counters;

typedef struct hak_heap {
    hak_class_cache cls[HAK_NUM_CLASSES];
    hak_heap_counters counters;
    uint64_t refill_seq;        /* per-thread refill sequence number (trace correlator) */
    struct hak_heap *next_heap; /* registry or pool list; guarded by the registry lock */
    int32_t tid;
    bool live;
} hak_heap;

#endif
