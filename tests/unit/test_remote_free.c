/* test_remote_free.c — blocks freed by another thread come back to their owner intact and are reused. */
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "hakmem.h"
#include "unit_support.h"

#define N 20000
#define SIZE ((int)(128 - HAK_BLOCK_OVERHEAD)) /* class 4, the seed's class (checked builds add a trailer) */

static void *blocks[N];
static pthread_barrier_t step;
static size_t mapped_after_first, mapped_after_second;

static void fill(void *p, unsigned tag) {
    memset(p, (int)(tag & 0xff), SIZE);
}

static void *owner(void *arg) {
    (void)arg;
    for (int i = 0; i < N; i++) {
        blocks[i] = hak_malloc(SIZE);
        CHECK(blocks[i], "malloc %d", i);
        fill(blocks[i], (unsigned)i);
    }
    hak_stats st;
    hak_stats_get(&st);
    mapped_after_first = st.mapped_bytes;
    pthread_barrier_wait(&step); /* the other thread frees everything */
    pthread_barrier_wait(&step);
    for (int i = 0; i < N; i++) {
        blocks[i] = hak_malloc(SIZE);
        CHECK(blocks[i], "second malloc %d", i);
        fill(blocks[i], 0x5a);
    }
    hak_stats_get(&st);
    mapped_after_second = st.mapped_bytes;
    for (int i = 0; i < N; i++) hak_free(blocks[i]);
    return NULL;
}

int main(void) {
    pthread_barrier_init(&step, NULL, 2);
    pthread_t t;
    pthread_create(&t, NULL, owner, NULL);
    pthread_barrier_wait(&step);
    for (int i = 0; i < N; i++) {
        unsigned char *p = blocks[i];
        for (int k = 0; k < SIZE; k++) CHECK(p[k] == (unsigned char)i, "block %d byte %d corrupted before free", i, k);
        hak_free(p); /* remote: main does not own these slabs */
    }
    pthread_barrier_wait(&step);
    pthread_join(t, NULL);
    CHECK(mapped_after_second <= mapped_after_first,
          "remote frees were not reused: mapped %zu bytes after refilling, %zu before", mapped_after_second,
          mapped_after_first);
    /* The owner exited with everything freed: nothing of class 4 stays in use but the slab whose last frees this
     * thread's outbox still gathers (at most HAK_OUTBOX_MAX - 1 of them), until its next refill or hak_collect. */
    hak_superslab_head *head = &hak_heads[HAK_ARENA_PROGRAM][4];
    hak_heap *me = hak_tls.heap;
    CHECK(!me->outbox_slab || me->outbox_count < HAK_OUTBOX_MAX, "outbox of %u blocks", me->outbox_count);
    CHECK(head_slabs_in_use(head) == (me->outbox_slab != NULL), "%u class-4 slabs still in use, outbox %s",
          head_slabs_in_use(head), me->outbox_slab ? "set" : "empty");
    hak_collect();
    CHECK(!me->outbox_slab && head_slabs_in_use(head) == 0, "%u class-4 slabs in use after hak_collect",
          head_slabs_in_use(head));
    printf("remote free ok: mapped %zu -> %zu bytes\n", mapped_after_first, mapped_after_second);
    return 0;
}
