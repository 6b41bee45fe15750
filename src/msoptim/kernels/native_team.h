/* How msoptim's C kernels share a step among threads.
 *
 * Such an update needs sums over the whole tensor (its norms) before any element can be updated.
 * A kernel supplies two functions: `sums` reads a range of a tensor and adds its partial sums
 * (float64: any order gives the same rounded result, see msoptim.kernels._norms), and `finish`
 * updates a range once the tensor's totals are known. Each tensor is visited once: its sums, then
 * its update while the range just read is still in cache.
 *
 * Tensors [0, teamed) (the caller lists them first: at least TEAM_MIN_NUMEL elements) are split
 * among all threads: each sums its share, the shares' sums are added in thread order, each
 * updates the share it read (in its own core's caches). The others go whole to whichever thread
 * is free.
 *
 * An element-wise kernel (AdamWeightDecay) has no sums: sums_count 0 and sums NULL; each member
 * then updates its share of a large tensor without waiting for the others.
 *
 * The threads are torch's own OpenMP workers when the caller passes its runtime's GOMP_parallel:
 * right after a torch op they are still spinning, waiting for work, and threads of our own would
 * fight them for the cores. Without it, pthreads. The team is whatever the runtime grants (a call
 * from inside a parallel region gets one thread), so each member works out its part from the
 * size it sees.
 */
#ifndef MSOPTIM_NATIVE_TEAM_H
#define MSOPTIM_NATIVE_TEAM_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef TEAM_MIN_NUMEL
#define TEAM_MIN_NUMEL 65536
#endif
#define TEAM_THREADS_MAX 64
#define TEAM_SUMS_MAX 4 /* sums per tensor */
#define SHARE_ALIGN 16  /* share boundaries, in elements (whole vectors and cache lines) */

typedef struct {
    void *kernel; /* the kernel's own step description */
    void (*sums)(void *kernel, int64_t index, int64_t first, int64_t last, double *totals);
    void (*finish)(void *kernel, int64_t index, int64_t first, int64_t last,
                   const double *totals);
    const int64_t *numels; /* per tensor */
    int64_t count, teamed;
    int sums_count, threads; /* threads: the most a team may have */
    double *partials;        /* teamed * threads * sums_count */
    atomic_int *arrived;     /* per teamed tensor: members whose sums are in */
    atomic_long next;        /* the next tensor to take whole */
} TeamStep;

static void team_share(int64_t n, int shares, int index, int64_t *first, int64_t *last) {
    int64_t blocks = (n + SHARE_ALIGN - 1) / SHARE_ALIGN;
    int64_t lo = blocks * index / shares * SHARE_ALIGN, hi = blocks * (index + 1) / shares * SHARE_ALIGN;
    *first = lo < n ? lo : n;
    *last = hi < n ? hi : n;
}

static void team_whole(TeamStep *s, int64_t index) {
    double totals[TEAM_SUMS_MAX] = {0};
    if (s->sums_count) s->sums(s->kernel, index, 0, s->numels[index], totals);
    s->finish(s->kernel, index, 0, s->numels[index], totals);
}

static void team_split(TeamStep *s, int64_t index, int me, int team) {
    int64_t first, last;
    team_share(s->numels[index], team, me, &first, &last);
    if (!s->sums_count) {
        s->finish(s->kernel, index, first, last, NULL);
        return;
    }
    double *sums = &s->partials[index * s->threads * s->sums_count];
    double *mine = &sums[me * s->sums_count];
    for (int k = 0; k < s->sums_count; k++) mine[k] = 0.0;
    s->sums(s->kernel, index, first, last, mine);
    atomic_fetch_add_explicit(&s->arrived[index], 1, memory_order_acq_rel);
    for (long spins = 0; atomic_load_explicit(&s->arrived[index], memory_order_acquire) < team;
         spins++)
        if (spins > 1000) sched_yield(); /* a descheduled teammate: let it run */
    double totals[TEAM_SUMS_MAX] = {0};
    for (int p = 0; p < team; p++)
        for (int k = 0; k < s->sums_count; k++) totals[k] += sums[p * s->sums_count + k];
    s->finish(s->kernel, index, first, last, totals);
}

/* Member `me` of a team of `team`: the large tensors together, then small ones as they come. */
static void team_work(TeamStep *s, int me, int team) {
    for (int64_t i = 0; i < s->teamed; i++) {
        if (team > 1)
            team_split(s, i, me, team);
        else
            team_whole(s, i);
    }
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
        if (i >= s->count) break;
        team_whole(s, i);
    }
}

/* The OpenMP runtime's entry points (libgomp's ABI, which LLVM's and Intel's runtimes export). */
typedef void (*GompParallel)(void (*body)(void *), void *data, unsigned threads, unsigned flags);
typedef int (*OmpQuery)(void);
typedef struct {
    TeamStep *step;
    OmpQuery thread_num, num_threads;
} OmpMember;

static void team_omp_body(void *arg) {
    OmpMember *member = arg;
    int team = member->num_threads();
    if (team > member->step->threads) team = member->step->threads;
    team_work(member->step, member->thread_num(), team);
}

typedef struct {
    TeamStep *step;
    int index;
    atomic_int *go; /* set once the team's size is known */
    const int *team;
} PthreadMember;

static void *team_pthread_body(void *arg) {
    PthreadMember *member = arg;
    while (!atomic_load_explicit(member->go, memory_order_acquire)) sched_yield();
    team_work(member->step, member->index, *member->team);
    return NULL;
}

static void team_run_pthreads(TeamStep *s) {
    PthreadMember members[TEAM_THREADS_MAX];
    pthread_t helpers[TEAM_THREADS_MAX];
    atomic_int go;
    atomic_init(&go, 0);
    int team = 1; /* whoever starts: every member's share must arrive */
    for (int p = 1; p < s->threads; p++) {
        members[p] = (PthreadMember){s, p, &go, &team};
        if (pthread_create(&helpers[p - 1], NULL, team_pthread_body, &members[p]) != 0) break;
        team++;
    }
    atomic_store_explicit(&go, 1, memory_order_release);
    team_work(s, 0, team);
    for (int p = 1; p < team; p++) pthread_join(helpers[p - 1], NULL);
}

/* Runs the step: s->kernel, sums, finish, numels, count and sums_count set by the caller, the
 * tensors of at least TEAM_MIN_NUMEL elements listed first. */
static void team_run(TeamStep *s, int threads, void *gomp_parallel, void *omp_thread_num,
                     void *omp_num_threads) {
    if (threads < 1) threads = 1;
    if (threads > TEAM_THREADS_MAX) threads = TEAM_THREADS_MAX;
    if (threads > s->count) threads = s->count > 0 ? (int)s->count : 1;
    s->threads = threads;
    s->teamed = 0;
    s->partials = NULL;
    s->arrived = NULL;
    while (threads > 1 && s->teamed < s->count && s->numels[s->teamed] >= TEAM_MIN_NUMEL)
        s->teamed++;
    if (s->teamed && s->sums_count) {
        s->partials = malloc(sizeof(double) * s->sums_count * threads * s->teamed);
        s->arrived = malloc(sizeof(atomic_int) * s->teamed);
        if (!s->partials || !s->arrived) s->teamed = 0; /* no room: every tensor goes whole */
        for (int64_t i = 0; i < s->teamed; i++) atomic_init(&s->arrived[i], 0);
    }
    atomic_init(&s->next, s->teamed);
    if (threads == 1) {
        team_work(s, 0, 1);
    } else if (gomp_parallel && omp_thread_num && omp_num_threads) {
        OmpMember member = {s, (OmpQuery)omp_thread_num, (OmpQuery)omp_num_threads};
        ((GompParallel)gomp_parallel)(team_omp_body, &member, (unsigned)threads, 0);
    } else {
        team_run_pthreads(s);
    }
    free(s->partials);
    free((void *)s->arrived);
}

/* Adds sum(x[i]^2) over [0, n) to *total, in float64 (each square of a float32 exact). */
static inline void add_squares(const float *x, int64_t n, double *total) {
    enum { LANES = 16 }; /* independent float64 chains: vector registers */
    double lanes[LANES] = {0};
    int64_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int k = 0; k < LANES; k++) {
            double v = x[i + k];
            lanes[k] += v * v;
        }
    for (; i < n; i++) {
        double v = x[i];
        lanes[0] += v * v;
    }
    double sum = 0.0;
    for (int k = 0; k < LANES; k++) sum += lanes[k];
    *total += sum;
}

#endif
