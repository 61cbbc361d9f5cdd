/* test_steal.c — what an idle thread's heap holds with every block back (current slab, full list) is taken before an OOM, and the heap works on afterwards. */
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "hakmem.h"
#include "unit_support.h"

#define CLASS 5 /* 256 bytes */
#define SIZE ((int)(256 - HAK_BLOCK_OVERHEAD))
/* Three slabs and a bit: two or more end on the owner's full list, one is its current slab. */
#define N (3 * ((64 * 1024) / 256) + 17)

static void *blocks[N];
static pthread_barrier_t step;

/* Allocates, lets main free everything remotely, idles while main reclaims, then allocates again. */
static void *owner(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) {
        blocks[i] = hak_malloc(SIZE);
        CHECK(blocks[i], "malloc %d", i);
        memset(blocks[i], 0x5c, SIZE);
    }
    pthread_barrier_wait(&step); /* main frees all of them */
    pthread_barrier_wait(&step); /* main reclaims while this thread idles */
    /* The heap lost its slabs to the stealer: it must still hand out and take back blocks. */
    for (int i = 0; i < N; i++) {
        blocks[i] = hak_malloc(SIZE);
        CHECK(blocks[i], "malloc after the steal %d", i);
        memset(blocks[i], 0x6d, SIZE);
    }
    for (int i = 0; i < N; i++) hak_free(blocks[i]);
    return NULL;
}

int main(void) {
    hak_superslab_head *head = &hak_heads[HAK_ARENA_PROGRAM][CLASS];
    pthread_barrier_init(&step, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, owner, NULL);
    pthread_barrier_wait(&step);
    unsigned held = head_slabs_in_use(head);
    CHECK(held >= 4, "the owner holds %u slabs of class %d", held, CLASS);
    for (int i = 0; i < N; i++) {
        CHECK(((unsigned char *)blocks[i])[SIZE - 1] == 0x5c, "block %d intact", i);
        hak_free(blocks[i]); /* remote: the owner's slabs take every block back on their stacks */
    }
    /* Nothing came back by itself: the owner idles, holding its slabs. */
    CHECK(head_slabs_in_use(head) == held, "%u slabs in use before the reclaim, %u held", head_slabs_in_use(head),
          held);
    size_t back = hak_reclaim_unused(NULL);
    CHECK(back > 0, "the reclaim gave nothing back");
    CHECK(head_slabs_in_use(head) == 0, "%u slabs of the idle owner still in use after the reclaim",
          head_slabs_in_use(head));
    pthread_barrier_wait(&step);
    pthread_join(t, NULL);
    hak_stats st;
    hak_stats_get(&st);
    CHECK(st.allocs == st.frees, "%llu allocs, %llu frees", (unsigned long long)st.allocs,
          (unsigned long long)st.frees);
    CHECK(head_slabs_in_use(head) == 0, "%u slabs in use at the end", head_slabs_in_use(head));
    printf("steal ok: %u slabs of an idle thread back in their chunks\n", held);
    return 0;
}
