/* test_thread_exit.c — an exiting thread hands back its slabs; blocks it leaves behind drain its slabs when freed, taken over once each by a thread that only frees them; no growth under thread churn. */
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "hakmem.h"
#include "unit_support.h"

#define LEAVE_CLASS 5  /* 256 bytes */
#define CHURN_CLASS 6  /* 512 bytes */
/* Requests that land in those classes (checked builds add a trailer to each block). */
#define LEAVE_SIZE ((int)(256 - HAK_BLOCK_OVERHEAD))
#define CHURN_SIZE ((int)(512 - HAK_BLOCK_OVERHEAD))
#define KEEP_SIZE ((int)(1024 - HAK_BLOCK_OVERHEAD))
#define ORPHAN_CLASS 3 /* 64 bytes: no other part of this test allocates it */
#define ORPHAN_SIZE ((int)(64 - HAK_BLOCK_OVERHEAD))
#define ORPHAN_N 6000   /* six slabs or so */
#define N 10000
#define CHURN_THREADS 200
#define CHURN_BLOCKS 2000
#define CHURN_LEFT 500

static void *left[N];

static void *leaver(void *arg) {
    (void)arg;
    void *mine[N];
    for (int i = 0; i < N; i++) {
        mine[i] = hak_malloc(LEAVE_SIZE);
        CHECK(mine[i], "malloc");
        memset(mine[i], 0xab, LEAVE_SIZE);
    }
    for (int i = 0; i < N; i++) {
        if (i % 2) hak_free(mine[i]);
        else left[i / 2] = mine[i];
    }
    return NULL;
}

#define KEEP_CLASS 7 /* 1024 bytes */
#define KEEP_N ((64 * 1024 - 8192) / 1024 + 31 * 64) /* one chunk of class 7, every slab full */
static void *kept[KEEP_N];

/* Exits with every block still live: its full slabs are abandoned with nothing to hand out. */
static void *keeper(void *arg) {
    (void)arg;
    for (int i = 0; i < KEEP_N; i++) {
        kept[i] = hak_malloc(KEEP_SIZE);
        CHECK(kept[i], "keeper malloc %d", i);
    }
    return NULL;
}

static void *orphans[ORPHAN_N];

/* Exits with every block live, in slabs let go: the blocks of another heap's thread that is gone. */
static void *orphan_maker(void *arg) {
    (void)arg;
    for (int i = 0; i < ORPHAN_N; i++) {
        orphans[i] = hak_malloc(ORPHAN_SIZE);
        CHECK(orphans[i], "orphan malloc %d", i);
    }
    return NULL;
}

static uint64_t adopted_on_free(unsigned class_idx) {
    return atomic_load(&hak_class_counters[HAK_ARENA_PROGRAM][class_idx][HAK_CTR_adopted_on_free]);
}

/* This thread, with a heap of its own that never allocated ORPHAN_CLASS, frees all of a gone thread's blocks
 * of it in order (a consumer's pattern): it takes each slab over once, at its first free, and holds it for the
 * frees that follow — not a take-over and a letting go at every free — and the slabs all go back. */
static void frees_only_class(void) {
    hak_superslab_head *oh = &hak_heads[HAK_ARENA_PROGRAM][ORPHAN_CLASS];
    CHECK(hak_size_to_class(hak_block_need(ORPHAN_SIZE)) == ORPHAN_CLASS, "ORPHAN_SIZE lands in its class");
    CHECK(hak_tls.heap != &hak_empty_heap && hak_tls.heap->cls[ORPHAN_CLASS].current == &hak_empty_slab,
          "the freeing thread has a heap and no slab of the class");
    pthread_t t;
    pthread_create(&t, NULL, orphan_maker, NULL);
    pthread_join(t, NULL);
    unsigned slabs = head_slabs_in_use(oh);
    CHECK(slabs >= 2 && head_abandoned(oh) == slabs, "the gone thread's %u slabs are all unheld (%u)", slabs,
          head_abandoned(oh));
    uint64_t adopted = adopted_on_free(ORPHAN_CLASS);
    for (int i = 0; i < ORPHAN_N; i++) hak_free(orphans[i]);
    CHECK(adopted_on_free(ORPHAN_CLASS) - adopted == slabs, "%u slabs taken over %llu times by their frees", slabs,
          (unsigned long long)(adopted_on_free(ORPHAN_CLASS) - adopted));
    CHECK(head_slabs_in_use(oh) == 0, "every slab back in its chunk (%u in use)", head_slabs_in_use(oh));
    CHECK(hak_tls.heap->cls[ORPHAN_CLASS].current == &hak_empty_slab, "the freeing thread keeps none of them");
}

static void *handoff[CHURN_LEFT];

static void *churner(void *arg) {
    (void)arg;
    void *mine[CHURN_BLOCKS];
    for (int i = 0; i < CHURN_BLOCKS; i++) {
        mine[i] = hak_malloc(CHURN_SIZE);
        CHECK(mine[i], "churn malloc");
        memset(mine[i], 0x3c, CHURN_SIZE);
    }
    for (int i = 0; i < CHURN_LEFT; i++) { /* what the previous thread left */
        if (handoff[i]) {
            CHECK(((unsigned char *)handoff[i])[CHURN_SIZE - 1] == 0x3c, "handed-off block intact");
            hak_free(handoff[i]);
        }
        handoff[i] = mine[i];
    }
    for (int i = CHURN_LEFT; i < CHURN_BLOCKS; i++) hak_free(mine[i]);
    return NULL;
}

int main(void) {
    hak_superslab_head *lh = &hak_heads[HAK_ARENA_PROGRAM][LEAVE_CLASS];
    pthread_t t;
    pthread_create(&t, NULL, leaver, NULL);
    pthread_join(t, NULL);
    CHECK(head_abandoned(lh) > 0, "the exited thread's slabs with live blocks are abandoned");
    unsigned in_use = head_slabs_in_use(lh);
    /* Every other block was freed, so each slab the thread filled keeps live blocks. */
    CHECK(in_use > 0 && in_use <= N / ((64 * 1024 - 8192) / 256) + 2, "%u slabs hold %d live blocks", in_use, N / 2);
    for (int i = 0; i < N / 2; i++) {
        CHECK(((unsigned char *)left[i])[0] == 0xab, "left block %d intact", i);
        hak_free(left[i]);
    }
    CHECK(head_abandoned(lh) == 0, "freeing the last blocks drained every abandoned slab (%u left)", head_abandoned(lh));
    /* The freeing thread got a heap with its first free (the leaver's, from the pool: the slabs' home), so it
     * adopted them; the one it keeps current stays with it, empty, for its next mallocs. */
    hak_slab *cur = hak_tls.heap->cls[LEAVE_CLASS].current;
    unsigned kept_current = cur != &hak_empty_slab;
    CHECK(!kept_current || cur->used == 0, "the slab the freeing thread keeps is empty (%u blocks out)", cur->used);
    CHECK(head_slabs_in_use(lh) == kept_current, "all slabs back in their chunks but a current one (%u in use)",
          head_slabs_in_use(lh));

    /* A refill that adopts must not take a slab with nothing to hand out for an OOM. */
    pthread_create(&t, NULL, keeper, NULL);
    pthread_join(t, NULL);
    CHECK(head_abandoned(&hak_heads[HAK_ARENA_PROGRAM][KEEP_CLASS]) > 0, "the keeper's full slabs are abandoned");
    for (int i = 0; i < KEEP_N; i++) {
        void *p = hak_malloc(KEEP_SIZE);
        CHECK(p, "malloc(1024) #%d returned NULL with no cap next to a dead thread's full slabs", i);
        hak_free(p);
        p = hak_malloc(KEEP_SIZE);
        CHECK(p, "malloc(1024) #%d (held) returned NULL", i);
        kept[i] = (hak_free(kept[i]), p);
    }
    for (int i = 0; i < KEEP_N; i++) hak_free(kept[i]);
    CHECK(head_abandoned(&hak_heads[HAK_ARENA_PROGRAM][KEEP_CLASS]) == 0, "the dead thread's slabs drained");

    frees_only_class();

    hak_superslab_head *ch = &hak_heads[HAK_ARENA_PROGRAM][CHURN_CLASS];
    unsigned max_chunks = 0;
    for (int i = 0; i < CHURN_THREADS; i++) {
        pthread_create(&t, NULL, churner, NULL);
        pthread_join(t, NULL);
        unsigned c = head_chunks(ch);
        if (c > max_chunks) max_chunks = c;
    }
    /* One thread's working set is 2000 x 512 B = 16 slabs, plus 500 blocks left behind. */
    CHECK(max_chunks <= 2, "thread churn grew the class to %u chunks", max_chunks);
    for (int i = 0; i < CHURN_LEFT; i++) hak_free(handoff[i]);
    CHECK(head_abandoned(ch) == 0, "no abandoned slab after the last frees (%u)", head_abandoned(ch));
    CHECK(head_slabs_in_use(ch) == 0, "churn class fully returned (%u slabs in use)", head_slabs_in_use(ch));
    hak_stats st;
    hak_stats_get(&st);
    CHECK(st.allocs == st.frees, "every block handed out came back: %llu allocs, %llu frees",
          (unsigned long long)st.allocs, (unsigned long long)st.frees);
    printf("thread exit ok: churn peak %u chunks\n", max_chunks);
    return 0;
}
