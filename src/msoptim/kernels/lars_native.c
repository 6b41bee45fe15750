/* LARS's step for plain contiguous float32 CPU tensors: norms, local rate and update in one visit.
 *
 * The arithmetic and its order are msoptim.kernels.lars's reference (read its docstring first);
 * this file only changes how the memory is walked. Per parameter:
 *
 *   1. read w and g: the two sums of squares, in float64 (exact squares, then any order: the
 *      reference's definition, rounded once: norm = (float)sqrt(sum));
 *   2. the local rate from the two norms, in float32, in the reference's op order;
 *   3. while w and g are still in cache: g' = (w * wd + g) * local and either Momentum's update
 *      with g' (MODE_MOMENTUM, the rescaled gradient never reaches memory) or g' written out
 *      (MODE_RESCALE, for any other wrapped optimizer).
 *
 * The separate passes of the other paths read w and g from memory twice (the norms, then the
 * update); here the second read hits the cache. A parameter of at least TEAM_MIN_NUMEL elements
 * is split among all threads (each sums its share, the shares' sums are added in thread order,
 * each thread updates the share it read: it stays in that core's cache); smaller ones go whole to
 * whichever thread is free. Nothing here may be fused or reassociated: the build uses
 * -ffp-contract=off and no -ffast-math (msoptim.kernels._native).
 *
 * The threads are torch's own OpenMP workers when the caller passes its runtime's GOMP_parallel:
 * right after a torch op they are still spinning, waiting for work, and threads of our own would
 * fight them for the cores (measured: 12 -> 17 ms a ResNet-50 step on two cores). Without it,
 * pthreads. The team's size is whatever the runtime grants (a call from inside a parallel region
 * gets one thread), so every member works out its part from the size it sees.
 */
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#ifndef TEAM_MIN_NUMEL
#define TEAM_MIN_NUMEL 65536
#endif
#define LANES 16   /* float64 accumulators per sum: independent chains, vector registers */
#define ALIGN 16   /* share boundaries, in elements (whole vectors and cache lines) */
#define THREADS_MAX 64

enum { MODE_MOMENTUM = 0, MODE_RESCALE = 1 };

/* One parameter: addresses and length. moment is used by MODE_MOMENTUM, out by MODE_RESCALE. */
typedef struct {
    int64_t param, grad, moment, out, numel;
} Tensor;

typedef struct {
    const Tensor *tensors;
    int64_t count, teamed; /* tensors[0 .. teamed) are split among all threads */
    const float *decays;   /* per tensor: the weight decay (0 without the decay flag) */
    const float *clip_lrs; /* per tensor: the lr the clip divides by (use_clip only) */
    const float *lr;       /* Momentum's lr (MODE_MOMENTUM) */
    float epsilon, coefficient, momentum;
    int use_clip, nesterov, mode, threads; /* threads: the most a team may have */
    double *partials;     /* teamed * threads * 2 sums */
    atomic_int *arrived;  /* teamed counters */
    atomic_long next;     /* the next small tensor to take */
} Step;

typedef struct {
    Step *step;
    int index;
    atomic_int *go; /* set once the team's size is known */
    const int *team;
} Job;

/* The OpenMP runtime's entry points (libgomp's ABI, which LLVM's and Intel's runtimes export). */
typedef void (*GompParallel)(void (*body)(void *), void *data, unsigned threads, unsigned flags);
typedef int (*OmpQuery)(void);
typedef struct {
    Step *step;
    OmpQuery thread_num, num_threads;
} OmpJob;

static void add_squares(const float *x, int64_t n, double *total) {
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

/* The reference's _coefficient: float32 ops in its order; the clamps keep NaN (and -0). */
static float local_rate(const Step *s, int64_t index, double weight_sum, double grad_sum) {
    float weight_norm = (float)sqrt(weight_sum), grad_norm = (float)sqrt(grad_sum);
    float scaled = weight_norm * s->coefficient;
    float decayed = weight_norm * s->decays[index];
    float local = scaled / ((decayed + grad_norm) + s->epsilon);
    if (s->use_clip) {
        local = local / s->clip_lrs[index];
        if (local > 1.0f) local = 1.0f;
        if (local < 0.0f) local = 0.0f;
    }
    return local;
}

static void update(const Step *s, const Tensor *t, float decay, float local, int64_t first,
                   int64_t last) {
    float *w = (float *)(intptr_t)t->param;
    const float *g = (const float *)(intptr_t)t->grad;
    if (s->mode == MODE_RESCALE) {
        float *out = (float *)(intptr_t)t->out;
        for (int64_t i = first; i < last; i++) out[i] = (w[i] * decay + g[i]) * local;
        return;
    }
    float *m = (float *)(intptr_t)t->moment;
    const float lr = *s->lr, mu = s->momentum;
    if (s->nesterov) {
        for (int64_t i = first; i < last; i++) {
            float rescaled = (w[i] * decay + g[i]) * local;
            float moment = m[i] * mu + rescaled;
            m[i] = moment;
            w[i] = w[i] - (rescaled + moment * mu) * lr;
        }
    } else {
        for (int64_t i = first; i < last; i++) {
            float moment = m[i] * mu + (w[i] * decay + g[i]) * local;
            m[i] = moment;
            w[i] = w[i] - moment * lr;
        }
    }
}

static void whole(const Step *s, int64_t index) {
    const Tensor *t = &s->tensors[index];
    double weight_sum = 0.0, grad_sum = 0.0;
    add_squares((const float *)(intptr_t)t->param, t->numel, &weight_sum);
    add_squares((const float *)(intptr_t)t->grad, t->numel, &grad_sum);
    update(s, t, s->decays[index], local_rate(s, index, weight_sum, grad_sum), 0, t->numel);
}

static void share_of(int64_t n, int shares, int index, int64_t *first, int64_t *last) {
    int64_t blocks = (n + ALIGN - 1) / ALIGN;
    int64_t lo = blocks * index / shares * ALIGN, hi = blocks * (index + 1) / shares * ALIGN;
    *first = lo < n ? lo : n;
    *last = hi < n ? hi : n;
}

static void wait_for_team(atomic_int *arrived, int threads) {
    for (long spins = 0; atomic_load_explicit(arrived, memory_order_acquire) < threads; spins++)
        if (spins > 1000) sched_yield(); /* a descheduled teammate: let it run */
}

static void teamed(Step *s, int64_t index, int me, int team) {
    const Tensor *t = &s->tensors[index];
    int64_t first, last;
    share_of(t->numel, team, me, &first, &last);
    double *sums = &s->partials[index * s->threads * 2];
    sums[2 * me] = sums[2 * me + 1] = 0.0;
    add_squares((const float *)(intptr_t)t->param + first, last - first, &sums[2 * me]);
    add_squares((const float *)(intptr_t)t->grad + first, last - first, &sums[2 * me + 1]);
    atomic_fetch_add_explicit(&s->arrived[index], 1, memory_order_acq_rel);
    wait_for_team(&s->arrived[index], team);
    double weight_sum = 0.0, grad_sum = 0.0;
    for (int p = 0; p < team; p++) {
        weight_sum += sums[2 * p];
        grad_sum += sums[2 * p + 1];
    }
    update(s, t, s->decays[index], local_rate(s, index, weight_sum, grad_sum), first, last);
}

/* Member `me` of a team of `team` threads: the large tensors together, then small ones as they
 * come (the queue starts after the large ones). */
static void work(Step *s, int me, int team) {
    for (int64_t i = 0; i < s->teamed; i++) {
        if (team > 1)
            teamed(s, i, me, team);
        else
            whole(s, i);
    }
    for (;;) {
        int64_t i = atomic_fetch_add_explicit(&s->next, 1, memory_order_relaxed);
        if (i >= s->count) break;
        whole(s, i);
    }
}

static void omp_body(void *arg) {
    OmpJob *job = (OmpJob *)arg;
    int team = job->num_threads();
    work(job->step, job->thread_num(), team < job->step->threads ? team : job->step->threads);
}

static void *pthread_body(void *arg) {
    Job *job = (Job *)arg;
    while (!atomic_load_explicit(job->go, memory_order_acquire)) sched_yield();
    work(job->step, job->index, *job->team);
    return NULL;
}

static void run_pthreads(Step *s) {
    Job jobs[THREADS_MAX];
    pthread_t helpers[THREADS_MAX];
    atomic_int go;
    atomic_init(&go, 0);
    int team = 1; /* whoever starts: every member's share must arrive */
    for (int p = 1; p < s->threads; p++) {
        jobs[p] = (Job){s, p, &go, &team};
        if (pthread_create(&helpers[p - 1], NULL, pthread_body, &jobs[p]) != 0) break;
        team++;
    }
    atomic_store_explicit(&go, 1, memory_order_release);
    work(s, 0, team);
    for (int p = 1; p < team; p++) pthread_join(helpers[p - 1], NULL);
}

/* tensors: count rows, the teamed ones (numel >= TEAM_MIN_NUMEL) first (largest first does it).
 * decays, clip_lrs: per row. lr: Momentum's (MODE_MOMENTUM). scalars: epsilon, coefficient,
 * momentum. gomp_parallel, omp_thread_num, omp_num_threads: torch's OpenMP runtime's entry
 * points, or NULL (pthreads then). */
void msoptim_lars_step(const Tensor *tensors, int64_t count, const float *decays,
                       const float *clip_lrs, const float *lr, const float *scalars, int use_clip,
                       int nesterov, int mode, int threads, void *gomp_parallel,
                       void *omp_thread_num, void *omp_num_threads) {
    Step s = {.tensors = tensors, .count = count, .decays = decays, .clip_lrs = clip_lrs,
              .lr = lr, .epsilon = scalars[0], .coefficient = scalars[1],
              .momentum = scalars[2], .use_clip = use_clip, .nesterov = nesterov, .mode = mode};
    if (threads < 1) threads = 1;
    if (threads > THREADS_MAX) threads = THREADS_MAX;
    if (threads > count) threads = count > 0 ? (int)count : 1;
    s.threads = threads;
    while (s.teamed < count && tensors[s.teamed].numel >= TEAM_MIN_NUMEL) s.teamed++;
    if (threads == 1) s.teamed = 0;
    if (s.teamed) {
        s.partials = malloc(sizeof(double) * 2 * threads * s.teamed);
        s.arrived = malloc(sizeof(atomic_int) * s.teamed);
        if (!s.partials || !s.arrived) s.teamed = 0; /* no room: every tensor goes whole */
        for (int64_t i = 0; i < s.teamed; i++) atomic_init(&s.arrived[i], 0);
    }
    atomic_init(&s.next, s.teamed);
    if (threads == 1) {
        work(&s, 0, 1);
    } else if (gomp_parallel && omp_thread_num && omp_num_threads) {
        OmpJob job = {&s, (OmpQuery)omp_thread_num, (OmpQuery)omp_num_threads};
        ((GompParallel)gomp_parallel)(omp_body, &job, (unsigned)threads, 0);
    } else {
        run_pthreads(&s);
    }
    free(s.partials);
    free((void *)s.arrived);
}
