/* LARS's step for plain contiguous float32 CPU tensors: norms, local rate and update in one visit.
 *
 * The arithmetic and its order are msoptim.kernels.lars's reference (read its docstring first);
 * this file only changes how the memory is walked. Per parameter (native_team.h splits the work):
 *
 *   1. sums: read w and g, the two sums of squares in float64 (the reference's norm:
 *      (float)sqrt(sum), see msoptim.kernels._norms);
 *   2. finish: the local rate from the two norms, in float32 in the reference's op order, then,
 *      while w and g are still in cache, g' = (w * wd + g) * local and either Momentum's update
 *      with g' (MODE_MOMENTUM: the rescaled gradient never reaches memory) or g' written out
 *      (MODE_RESCALE, for any other wrapped optimizer).
 *
 * The other paths read w and g from memory twice (the norms, then the update). Nothing here may
 * be fused or reassociated: the build uses -ffp-contract=off and no -ffast-math
 * (msoptim.kernels._native).
 */
#include <math.h>
#include <stdint.h>

#include "native_team.h"

enum { MODE_MOMENTUM = 0, MODE_RESCALE = 1 };

/* One parameter's addresses (its length is in numels): moment is used by MODE_MOMENTUM, out by
 * MODE_RESCALE. */
typedef struct {
    int64_t param, grad, moment, out;
} Tensor;

typedef struct {
    const Tensor *tensors;
    const float *decays;   /* per tensor: the weight decay (0 without the decay flag) */
    const float *clip_lrs; /* per tensor: the lr the clip divides by (use_clip only) */
    float lr, epsilon, coefficient, momentum;
    int use_clip, nesterov, mode;
} Step;

static void sums(void *kernel, int64_t index, int64_t first, int64_t last, double *totals) {
    const Tensor *t = &((const Step *)kernel)->tensors[index];
    add_squares((const float *)(intptr_t)t->param + first, last - first, &totals[0]);
    add_squares((const float *)(intptr_t)t->grad + first, last - first, &totals[1]);
}

/* The reference's _coefficient: float32 ops in its order; the clamps keep NaN (and -0). */
static float local_rate(const Step *s, int64_t index, const double *totals) {
    float weight_norm = (float)sqrt(totals[0]), grad_norm = (float)sqrt(totals[1]);
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

static void finish(void *kernel, int64_t index, int64_t first, int64_t last,
                   const double *totals) {
    const Step *s = kernel;
    const Tensor *t = &s->tensors[index];
    const float decay = s->decays[index], local = local_rate(s, index, totals);
    float *w = (float *)(intptr_t)t->param;
    const float *g = (const float *)(intptr_t)t->grad;
    if (s->mode == MODE_RESCALE) {
        float *out = (float *)(intptr_t)t->out;
        for (int64_t i = first; i < last; i++) out[i] = (w[i] * decay + g[i]) * local;
        return;
    }
    float *m = (float *)(intptr_t)t->moment;
    const float lr = s->lr, mu = s->momentum;
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

/* tensors, numels: count rows, largest first. decays, clip_lrs: per row. lr: Momentum's
 * (MODE_MOMENTUM). scalars: epsilon, coefficient, momentum. gomp_parallel, omp_thread_num,
 * omp_num_threads: torch's OpenMP runtime's entry points, or NULL (see native_team.h). */
void msoptim_lars_step(const Tensor *tensors, const int64_t *numels, int64_t count,
                       const float *decays, const float *clip_lrs, const float *lr,
                       const float *scalars, int use_clip, int nesterov, int mode, int threads,
                       void *gomp_parallel, void *omp_thread_num, void *omp_num_threads) {
    Step s = {.tensors = tensors, .decays = decays, .clip_lrs = clip_lrs,
              .lr = lr ? *lr : 0.0f, .epsilon = scalars[0], .coefficient = scalars[1],
              .momentum = scalars[2], .use_clip = use_clip, .nesterov = nesterov, .mode = mode};
    TeamStep team = {.kernel = &s, .sums = sums, .finish = finish, .numels = numels,
                     .count = count, .sums_count = 2};
    team_run(&team, threads, gomp_parallel, omp_thread_num, omp_num_threads);
}
