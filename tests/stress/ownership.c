/* ownership.c — the cross-thread protocol through the hak_ API: exits with blocks out, adoption racing with frees, slabs emptied under an idle owner, and fork during each. */
#define _GNU_SOURCE
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ownership.h"

/*
 * One scenario per run, repeated --rounds times; every thread of a round is joined before the next starts.
 *
 *   exit   producers allocate, free a quarter of their blocks themselves, publish the rest and exit;
 *          freers free the even-numbered blocks as soon as they appear (racing with the exits) and the
 *          odd-numbered ones only once their producer was joined (into slabs it abandoned).
 *   adopt  workers start one after another, at most --threads at a time; each allocates, frees a third of
 *          its blocks itself, swaps the rest into random slots (freeing what earlier workers left there)
 *          and exits, while freers keep emptying slots. New workers' refills meet the slabs of exited ones,
 *          abandoned with blocks free and blocks out, as frees keep arriving into them.
 *   idle   owners allocate, publish everything and idle, alive; freers free it all, interleaved, so
 *          that most slabs take their last free from either; then takers allocate as much again in the
 *          same classes and check it; the owners exit at the end of the round. With --sharp the cap is
 *          below twice the live set, so the takers can only get it all if the emptied slabs return while
 *          their owners idle; without, the cap leaves room for both.
 *
 * --fork: a thread forks while the others free and exit: once every block is published (exit,
 * idle: with the freers half way) and, in adopt, at a quarter, half and three quarters of the workers,
 * once none of the live ones is still allocating. The child frees everything it inherited (the slots'
 * blocks and the forking thread's own), allocates every class again, checks it, and must exit 0.
 *
 * Every block is checked against its tag before it is freed. After the rounds the counters balance, and
 * one new thread can have the whole cap (HAKMEM_MAX_MEMORY, required) but 4 MiB: memory came back.
 * exit and idle allow no NULL: the program refuses a cap too small for its configuration even if nothing
 * were ever reused. adopt's live set is bounded but not its fragmentation, so there a NULL is allowed (an
 * ENOMEM, counted and printed); the refill after it is not.
 */

#if defined(__SANITIZE_THREAD__)
/* A fork child leaves by _exit, past the runtime's verdict at exit: a race it reports must end it there. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void) {
    return "halt_on_error=1";
}
#endif

enum scenario { SCENARIO_EXIT, SCENARIO_ADOPT, SCENARIO_IDLE };
static const char *const scenario_names[] = {"exit", "adopt", "idle"};

#define MAX_THREADS 16
#define OWN_BLOCKS 8    /* per class, held by the keeper through every round (its fork children free them) */
#define CHILD_BLOCKS 32 /* per class, allocated by each fork child */

static struct {
    enum scenario scenario;
    unsigned rounds;
    unsigned threads;  /* producers (exit), owners and takers each (idle), workers alive at once (adopt) */
    unsigned freers;
    unsigned workers;  /* adopt: workers per round */
    size_t slot_count; /* adopt */
    size_t kib;        /* allocated per allocating thread per round */
    size_t blocks;     /* instead: this many blocks of each class (adopt: the big classes' slabs pile up) */
    bool fork, sharp;
} cfg = {SCENARIO_EXIT, 4, 6, 2, 200, 4096, 2048, 0, false, false};

/* A tiny, a small, a 1 KiB, a 4 KiB and a 20 KiB class: blocks per slab from thousands down to three. */
static const unsigned classes[] = {2, 4, 7, 15, 24};
#define CLASSES (sizeof classes / sizeof classes[0])

/* Which class each block of an allocating thread is: the bytes split evenly between the classes (or --blocks
 * of each), the classes interleaved, so that every class's slabs fill while the others' do. */
static unsigned *plan;
static size_t plan_len, plan_per_class[CLASSES];

static void make_plan(void) {
    size_t left[CLASSES];
    plan_len = 0;
    for (unsigned k = 0; k < CLASSES; k++) {
        size_t n = cfg.blocks ? cfg.blocks : cfg.kib * 1024 / CLASSES / class_block_size(classes[k]);
        plan_per_class[k] = left[k] = n ? n : 1;
        plan_len += plan_per_class[k];
    }
    plan = calloc(plan_len, sizeof *plan);
    CHECK(plan, "calloc");
    for (size_t i = 0; i < plan_len;)
        for (unsigned k = 0; k < CLASSES; k++)
            if (left[k]) {
                left[k]--;
                plan[i++] = classes[k];
            }
}

static size_t plan_bytes(void) {
    size_t bytes = 0;
    for (unsigned k = 0; k < CLASSES; k++) bytes += plan_per_class[k] * class_block_size(classes[k]);
    return bytes;
}

static uint16_t tag_of(unsigned thread, size_t i) {
    return (uint16_t)(thread * 40503u + i * 7u + 1u);
}

/* What a round could need if nothing were ever reused: each allocating thread's blocks in slabs of its own
 * (the last one of each class partly used), plus the keeper's and a fork child's, counted in whole
 * chunks per class (a cap on committed memory counts less). A cap this big leaves no room for a NULL. */
static size_t unshared_bytes(unsigned allocating_threads) {
    size_t chunks = 0;
    for (unsigned k = 0; k < CLASSES; k++) {
        size_t per_slab = (HAK_SLAB_SIZE - HAK_SLAB0_DATA_OFFSET) / class_block_size(classes[k]);
        size_t slabs =
            allocating_threads * (plan_per_class[k] / per_slab + 1) + (OWN_BLOCKS + CHILD_BLOCKS) / per_slab + 2;
        chunks += (slabs + HAK_SLABS_PER_CHUNK - 1) / HAK_SLABS_PER_CHUNK + 1;
    }
    return chunks * HAK_CHUNK_SIZE + CAP_MARGIN;
}

static uint64_t mix64(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Slots through which blocks change hands: a put publishes a stamped block (release), a take gets it with its
 * stamp visible (acquire) and empties the slot, so each block has exactly one holder at a time. */
typedef struct slots {
    _Atomic held *slot;
    size_t n;
} slots;

static void slots_init(slots *s, size_t n) {
    s->slot = calloc(n, sizeof *s->slot);
    CHECK(s->slot, "calloc %zu slots", n);
    s->n = n;
}
static void slot_put(slots *s, size_t i, held h) {
    atomic_store_explicit(&s->slot[i], h, memory_order_release);
}
static held slot_take(slots *s, size_t i) {
    if (!atomic_load_explicit(&s->slot[i], memory_order_relaxed)) return 0;
    return atomic_exchange_explicit(&s->slot[i], 0, memory_order_acq_rel);
}
static held slot_swap(slots *s, size_t i, held h) {
    return atomic_exchange_explicit(&s->slot[i], h, memory_order_acq_rel);
}
/* Frees what is left; how many. */
static size_t slots_drain(slots *s) {
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        held h = slot_take(s, i);
        if (h) {
            check_and_free(h);
            n++;
        }
    }
    return n;
}

typedef struct refill_check {
    unsigned class_idx;
    size_t bytes;
    run blocks;
} refill_check;

static void *refill_thread(void *arg) {
    refill_check *rc = arg;
    run_alloc(&rc->blocks, rc->class_idx, rc->bytes / class_block_size(rc->class_idx), 0x4000);
    run_check(&rc->blocks);
    run_free(&rc->blocks);
    return NULL;
}

/* Every thread joined, every block freed: the memory went back if one new thread can now hold all the cap but
 * CAP_MARGIN in blocks of one class. Whatever a finished workload left behind beyond the margin shows as NULLs. */
static void expect_cap_refillable(unsigned c, size_t cap) {
    CHECK(cap > CAP_MARGIN, "a cap of %.1f MiB leaves nothing to refill", MIB_OF(cap));
    expect_balanced("before the refill");
    refill_check rc = {.class_idx = c, .bytes = cap - CAP_MARGIN};
    pthread_t t;
    start_thread(&t, refill_thread, &rc);
    join_thread(t);
    long nulls = rc.blocks.nulls;
    printf("refill after the workload: %.1f MiB of %zu-byte blocks under a %.1f MiB cap, %ld NULLs\n",
           MIB_OF(rc.bytes), class_block_size(c), MIB_OF(cap), nulls);
    CHECK(nulls == 0, "%ld NULLs refilling %.1f MiB of a %.1f MiB cap after everything was freed: memory the "
          "workload freed did not come back", nulls, MIB_OF(rc.bytes), MIB_OF(cap));
    expect_balanced("after the refill");
}

/* Forks; the child runs fn and exits 0 unless a CHECK failed (exit 1). stdout is flushed first so that the child
 * cannot print the parent's buffer again, and the child leaves by _exit: the parent's atexit work is not its. */
static pid_t fork_child(void (*fn)(void *), void *arg) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    return pid;
}

static void expect_child_ok(pid_t pid) {
    int status = 0;
    pid_t got;
    do got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    CHECK(got == pid, "waitpid(%d): %s", (int)pid, strerror(errno));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child %d: %s %d", (int)pid,
          WIFEXITED(status) ? "exit status" : "killed by signal", WIFEXITED(status) ? WEXITSTATUS(status)
                                                                                 : WTERMSIG(status));
}

static slots pool;
static _Atomic long nulls, published, freed;
static _Atomic unsigned published_threads, joined_threads, allocating;
static _Atomic int producer_joined[MAX_THREADS];
static _Atomic bool stop_freers;

/*
 * The keeper: a thread that holds blocks of every class through all the rounds and forks when main asks, so
 * that the child's own heap has blocks to free locally. It frees them and exits at the end, and with it its
 * heap's last slabs go (a live thread may keep an empty slab per class, which the refill must not count on).
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    enum { KEEPER_STARTING, KEEPER_READY, KEEPER_FORK, KEEPER_QUIT } request;
    pid_t children[3]; /* this round's, still to be waited for */
    unsigned child_count, forks;
} keeper = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, KEEPER_STARTING, {0}, 0, 0};
static run own[CLASSES];

/* A fork child's second life: it frees what it inherited (the slots' blocks, whatever threads were doing at the
 * fork, and the keeper's own), allocates every class again, and checks what it got. */
static void child_after_fork(void *arg) {
    (void)arg;
    slots_drain(&pool);
    run again[CLASSES];
    for (unsigned k = 0; k < CLASSES; k++) {
        run_free(&own[k]);
        memset(&again[k], 0, sizeof again[k]);
        run_alloc(&again[k], classes[k], CHILD_BLOCKS, (uint16_t)(0x6000 + k * 0x100));
        CHECK(again[k].nulls == 0, "forked child: %ld NULLs allocating class %u again", (long)again[k].nulls,
              classes[k]);
    }
    for (unsigned k = 0; k < CLASSES; k++) run_check(&again[k]);
    for (unsigned k = 0; k < CLASSES; k++) run_free(&again[k]);
}

static void *keeper_main(void *arg) {
    (void)arg;
    for (unsigned k = 0; k < CLASSES; k++) {
        run_alloc(&own[k], classes[k], OWN_BLOCKS, (uint16_t)(0x5000 + k * 0x100));
        CHECK(own[k].nulls == 0, "the keeper's blocks refused");
    }
    pthread_mutex_lock(&keeper.lock);
    keeper.request = KEEPER_READY;
    pthread_cond_broadcast(&keeper.changed);
    for (;;) {
        while (keeper.request != KEEPER_FORK && keeper.request != KEEPER_QUIT)
            pthread_cond_wait(&keeper.changed, &keeper.lock);
        if (keeper.request == KEEPER_QUIT) break;
        pthread_mutex_unlock(&keeper.lock);
        pid_t pid = fork_child(child_after_fork, NULL);
        pthread_mutex_lock(&keeper.lock);
        CHECK(keeper.child_count < sizeof keeper.children / sizeof keeper.children[0], "too many forks in a round");
        keeper.children[keeper.child_count++] = pid;
        keeper.forks++;
        keeper.request = KEEPER_READY;
        pthread_cond_broadcast(&keeper.changed);
    }
    pthread_mutex_unlock(&keeper.lock);
    for (unsigned k = 0; k < CLASSES; k++) run_free(&own[k]);
    return NULL;
}

/* Waits until the keeper is ready, then asks (READY: nothing more); a fork is done when this returns. */
static void keeper_ask(int request) {
    pthread_mutex_lock(&keeper.lock);
    while (keeper.request != KEEPER_READY) pthread_cond_wait(&keeper.changed, &keeper.lock);
    if (request != KEEPER_READY) {
        keeper.request = request;
        pthread_cond_broadcast(&keeper.changed);
    }
    if (request == KEEPER_FORK)
        while (keeper.request != KEEPER_READY) pthread_cond_wait(&keeper.changed, &keeper.lock);
    pthread_mutex_unlock(&keeper.lock);
}

static void fork_now(void) {
    keeper_ask(KEEPER_FORK);
}

static void wait_children(void) {
    pthread_mutex_lock(&keeper.lock);
    for (unsigned i = 0; i < keeper.child_count; i++) expect_child_ok(keeper.children[i]);
    keeper.child_count = 0;
    pthread_mutex_unlock(&keeper.lock);
}

/* ---- exit ---- */

static void *producer(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    for (size_t i = 0; i < plan_len; i++) {
        held h = new_block(plan[i], tag_of(me, i), &nulls);
        if (!h) continue;
        if (i % 4 == 3) {
            check_and_free(h); /* the slabs it abandons have free blocks too */
        } else {
            published++;
            slot_put(&pool, me * plan_len + i, h);
        }
    }
    published_threads++;
    return NULL; /* three quarters of its blocks still out */
}

/* The freers' view of a slot: may it be taken now, and is everything that will ever be takeable there? */
static bool takeable(size_t s) {
    if (cfg.scenario != SCENARIO_EXIT) return true;
    size_t i = s % plan_len;
    return i % 2 == 0 || atomic_load_explicit(&producer_joined[s / plan_len], memory_order_acquire);
}

static bool nothing_more_to_come(void) {
    switch (cfg.scenario) {
    case SCENARIO_EXIT: return joined_threads == cfg.threads;
    case SCENARIO_IDLE: return published_threads == cfg.threads;
    case SCENARIO_ADOPT: return stop_freers;
    }
    return true;
}

static void *freer(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    for (;;) {
        bool last = nothing_more_to_come(); /* read before the sweep: a sweep after it that finds nothing ends */
        long got = 0;
        for (size_t s = me; s < pool.n; s += cfg.freers) {
            if (!takeable(s)) continue;
            held h = slot_take(&pool, s);
            if (h) {
                check_and_free(h);
                got++;
                freed++;
            }
        }
        if (last && !got) return NULL;
        if (!got) sched_yield();
    }
}

static void start_freers(pthread_t *tids) {
    stop_freers = false;
    for (unsigned f = 0; f < cfg.freers; f++) start_thread(&tids[f], freer, (void *)(uintptr_t)f);
}

static void join_freers(pthread_t *tids) {
    for (unsigned f = 0; f < cfg.freers; f++) join_thread(tids[f]);
}

static void wait_until(_Atomic unsigned *counter, unsigned value) {
    while (atomic_load(counter) < value) sched_yield();
}

static void wait_until_none_allocating(void) {
    while (atomic_load(&allocating) > 0) sched_yield();
}

static void round_exit(void) {
    pthread_t producers[MAX_THREADS], freers[MAX_THREADS];
    slots_init(&pool, cfg.threads * plan_len);
    start_freers(freers);
    for (unsigned p = 0; p < cfg.threads; p++) start_thread(&producers[p], producer, (void *)(uintptr_t)p);
    if (cfg.fork) {
        wait_until(&published_threads, cfg.threads); /* nobody allocates: they are exiting, the freers freeing */
        fork_now();
    }
    for (unsigned p = 0; p < cfg.threads; p++) {
        join_thread(producers[p]);
        atomic_store_explicit(&producer_joined[p], 1, memory_order_release);
        joined_threads++;
    }
    join_freers(freers);
    wait_children();
    CHECK(freed == published, "%ld blocks published, %ld freed", (long)published, (long)freed);
    CHECK(slots_drain(&pool) == 0, "blocks left in the slots after the freers finished");
}

/* ---- adopt ---- */

static void *worker(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0x5bd1e995u + me;
    held *mine = calloc(plan_len, sizeof *mine);
    CHECK(mine, "calloc");
    size_t n = 0;
    for (size_t i = 0; i < plan_len; i++) {
        held h = new_block(plan[i], tag_of(me, i), &nulls);
        if (!h) continue;
        if (i % 3 == 0) check_and_free(h);
        else mine[n++] = h;
    }
    allocating--; /* from here on it only frees, hands over and exits */
    for (size_t i = 0; i < n; i++) {
        held old = slot_swap(&pool, mix64(&rng) % pool.n, mine[i]);
        if (old) check_and_free(old);
    }
    free(mine);
    return NULL;
}

static void round_adopt(void) {
    pthread_t alive[MAX_THREADS], freers[MAX_THREADS];
    slots_init(&pool, cfg.slot_count);
    start_freers(freers);
    unsigned joined = 0;
    for (unsigned w = 0; w < cfg.workers; w++) {
        if (w - joined == cfg.threads) join_thread(alive[joined++ % cfg.threads]);
        if (cfg.fork && w > 0 && w % (cfg.workers / 4) == 0 && w / (cfg.workers / 4) < 4) {
            wait_until_none_allocating();
            fork_now();
        }
        allocating++;
        start_thread(&alive[w % cfg.threads], worker, (void *)(uintptr_t)w);
    }
    while (joined < cfg.workers) join_thread(alive[joined++ % cfg.threads]);
    stop_freers = true;
    join_freers(freers);
    wait_children();
    slots_drain(&pool);
}

/* ---- idle ---- */

static pthread_barrier_t owners_idle; /* the owners and main: passed once the takers are done */
static run taken[MAX_THREADS];
static pthread_barrier_t takers_out; /* the takers and main: passed once every taker holds its blocks */

static void *owner(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    for (size_t i = 0; i < plan_len; i++) {
        held h = new_block(plan[i], tag_of(me, i), &nulls);
        if (!h) continue;
        published++;
        slot_put(&pool, me * plan_len + i, h);
    }
    published_threads++;
    pthread_barrier_wait(&owners_idle); /* alive and idle while its slabs are emptied and others allocate */
    return NULL;
}

static void *taker(void *arg) {
    unsigned me = (unsigned)(uintptr_t)arg;
    run *r = &taken[me];
    r->nulls = 0;
    r->blocks = calloc(plan_len, sizeof *r->blocks);
    CHECK(r->blocks, "calloc");
    r->n = plan_len;
    for (size_t i = 0; i < plan_len; i++) r->blocks[i] = new_block(plan[i], tag_of(me + MAX_THREADS, i), &r->nulls);
    pthread_barrier_wait(&takers_out); /* all out at once: a block handed to two takers shows now */
    run_check(r);
    run_free(r);
    return NULL;
}

static long taker_nulls;

static void round_idle(void) {
    pthread_t owners[MAX_THREADS], takers[MAX_THREADS], freers[MAX_THREADS];
    slots_init(&pool, cfg.threads * plan_len);
    pthread_barrier_init(&owners_idle, NULL, cfg.threads + 1);
    pthread_barrier_init(&takers_out, NULL, cfg.threads + 1);
    start_freers(freers);
    for (unsigned o = 0; o < cfg.threads; o++) start_thread(&owners[o], owner, (void *)(uintptr_t)o);
    if (cfg.fork) {
        wait_until(&published_threads, cfg.threads);
        while (freed < published / 2) sched_yield();
        fork_now(); /* the owners idle, the freers half way */
    }
    join_freers(freers);
    CHECK(freed == published, "%ld blocks published, %ld freed", (long)published, (long)freed);
    uint64_t out = blocks_out();
    CHECK(out == CLASSES * OWN_BLOCKS, "hakmem counts %llu blocks out once the owners' are freed, the keeper holds %zu",
          (unsigned long long)out, CLASSES * OWN_BLOCKS);
    for (unsigned t = 0; t < cfg.threads; t++) start_thread(&takers[t], taker, (void *)(uintptr_t)t);
    pthread_barrier_wait(&takers_out);
    long round_nulls = 0;
    for (unsigned t = 0; t < cfg.threads; t++) round_nulls += taken[t].nulls;
    for (unsigned t = 0; t < cfg.threads; t++) join_thread(takers[t]);
    pthread_barrier_wait(&owners_idle);
    for (unsigned o = 0; o < cfg.threads; o++) join_thread(owners[o]);
    wait_children();
    pthread_barrier_destroy(&owners_idle);
    pthread_barrier_destroy(&takers_out);
    taker_nulls += round_nulls;
}

/* ---- main ---- */

static void usage(void) {
    fprintf(stderr, "usage: ownership exit|adopt|idle [--rounds N] [--threads N (1..%d)] [--freers N (1..%d)] "
                    "[--workers N] [--slots N] [--kib N | --blocks N] [--fork] [--sharp]\n", MAX_THREADS, MAX_THREADS);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    if (!strcmp(argv[1], "exit")) cfg.scenario = SCENARIO_EXIT;
    else if (!strcmp(argv[1], "adopt")) cfg.scenario = SCENARIO_ADOPT, cfg.threads = 4, cfg.blocks = 64;
    else if (!strcmp(argv[1], "idle")) cfg.scenario = SCENARIO_IDLE, cfg.threads = 2, cfg.kib = 4096;
    else usage();
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc) cfg.rounds = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) cfg.threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--freers") && i + 1 < argc) cfg.freers = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc) cfg.workers = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--slots") && i + 1 < argc) cfg.slot_count = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--kib") && i + 1 < argc) cfg.kib = (size_t)atol(argv[++i]), cfg.blocks = 0;
        else if (!strcmp(argv[i], "--blocks") && i + 1 < argc) cfg.blocks = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--fork")) cfg.fork = true;
        else if (!strcmp(argv[i], "--sharp")) cfg.sharp = true;
        else usage();
    }
    if (cfg.rounds < 1 || cfg.threads < 1 || cfg.threads > MAX_THREADS || cfg.freers < 1 ||
        cfg.freers > MAX_THREADS || cfg.workers < 4 || cfg.slot_count < 1 || cfg.kib < 1 ||
        (cfg.sharp && cfg.scenario != SCENARIO_IDLE))
        usage();
    classes_init();
    make_plan();
    size_t cap = cap_bytes();
    CHECK(cap, "HAKMEM_MAX_MEMORY is not set: the test ends by filling the cap");
    size_t live = cfg.threads * plan_bytes(); /* exit, idle: what the allocating threads hold at most */
    if (cfg.sharp) {
        CHECK(cap < 2 * live, "cap %.1f MiB >= twice the owners' %.1f MiB: the takers could succeed without reuse",
              MIB_OF(cap), MIB_OF(live));
    } else if (cfg.scenario != SCENARIO_ADOPT) {
        unsigned allocating_threads = cfg.scenario == SCENARIO_IDLE ? 2 * cfg.threads : cfg.threads;
        size_t need = unshared_bytes(allocating_threads);
        CHECK(cap >= need, "cap %.1f MiB < %.1f MiB, what this configuration may need with nothing reused: a NULL "
              "would say nothing", MIB_OF(cap), MIB_OF(need));
    }
    pthread_t keeper_thread;
    start_thread(&keeper_thread, keeper_main, NULL);
    keeper_ask(KEEPER_READY); /* its blocks are out before the first round counts them */

    for (unsigned r = 0; r < cfg.rounds; r++) {
        published = freed = 0;
        published_threads = joined_threads = 0;
        for (unsigned p = 0; p < MAX_THREADS; p++) producer_joined[p] = 0;
        switch (cfg.scenario) {
        case SCENARIO_EXIT: round_exit(); break;
        case SCENARIO_ADOPT: round_adopt(); break;
        case SCENARIO_IDLE: round_idle(); break;
        }
        free(pool.slot);
        uint64_t out = blocks_out();
        CHECK(out == CLASSES * OWN_BLOCKS, "round %u: hakmem counts %llu blocks out, the keeper holds %zu", r + 1,
              (unsigned long long)out, CLASSES * OWN_BLOCKS);
    }
    keeper_ask(KEEPER_QUIT);
    join_thread(keeper_thread);
    expect_balanced("every round done, every block freed");

    hak_stats st;
    hak_stats_get(&st);
    unsigned long long adopted = 0;
    for (unsigned k = 0; k < CLASSES; k++) adopted += st.classes[classes[k]].adopted;
    printf("ownership %s%s%s: %u rounds, %u threads, %.1f MiB per allocating thread per round, %llu allocations, "
           "%llu slabs adopted, %u forks (every child exited 0), %ld NULLs%s; HAKMEM_MAX_MEMORY = %.1f MiB\n",
           scenario_names[cfg.scenario], cfg.fork ? " --fork" : "", cfg.sharp ? " --sharp" : "", cfg.rounds,
           cfg.threads, MIB_OF(plan_bytes()), (unsigned long long)st.allocs, adopted, keeper.forks, (long)(nulls + taker_nulls),
           cfg.scenario == SCENARIO_ADOPT ? " (allowed)" : "", MIB_OF(cap));
    if (cfg.scenario != SCENARIO_ADOPT)
        CHECK(nulls == 0, "%ld NULLs for the allocating threads under a cap that fits them", (long)nulls);
    CHECK(taker_nulls == 0, "the takers got %ld NULLs: the slabs emptied by remote frees did not come back while "
          "their owners idled", taker_nulls);
    expect_cap_refillable(4, cap);
    return 0;
}
