/* AdamWeightDecay's step for plain contiguous float32 CPU tensors, one pass over each parameter.
 *
 * The arithmetic and its order are msoptim.kernels.adam_weight_decay's reference (read its
 * docstring first), which is MindSpore's CPU kernel's:
 *
 *   m <- fmaf(g - m, 1 - beta1, m)
 *   v <- fmaf(fmaf(g, g, -v), 1 - beta2, v)
 *   w <- (float)((double)w - (double)lr * ((double)m / (sqrt((double)v) + eps) + (double)(wd * w)))
 *
 * The compiled (Inductor) path spends most of its time converting to and from float64 and in the
 * float64 square root and division; here GCC vectorizes the whole loop (the float64 half in
 * vectors of 8), which keeps the step at the memory's pace on two cores. fmaf is the one fused
 * multiply-add written; nothing else may be fused or reassociated: the build uses
 * -ffp-contract=off and no -ffast-math (msoptim.kernels._native). sqrt is IEEE (correctly
 * rounded, as MindSpore's C sqrt).
 */
#include <math.h>
#include <stdint.h>

#include "native_team.h"

/* One parameter: addresses (its lr and weight decay: one float32 each, its group's). */
typedef struct {
    int64_t param, grad, m, v, lr, weight_decay;
} Tensor;

typedef struct {
    const Tensor *tensors;
    float one_minus_beta1, one_minus_beta2;
    double eps;
} Step;

static void update(void *kernel, int64_t index, int64_t first, int64_t last,
                   const double *totals) {
    (void)totals;
    const Step *s = kernel;
    const Tensor *t = &s->tensors[index];
    float *restrict w = (float *)(intptr_t)t->param;
    const float *restrict g = (const float *)(intptr_t)t->grad;
    float *restrict m = (float *)(intptr_t)t->m, *restrict v = (float *)(intptr_t)t->v;
    const float b1c = s->one_minus_beta1, b2c = s->one_minus_beta2;
    const float wd = *(const float *)(intptr_t)t->weight_decay;
    const double eps = s->eps, lr = *(const float *)(intptr_t)t->lr;
    for (int64_t i = first; i < last; i++) {
        const float new_m = fmaf(g[i] - m[i], b1c, m[i]);
        const float new_v = fmaf(fmaf(g[i], g[i], -v[i]), b2c, v[i]);
        m[i] = new_m;
        v[i] = new_v;
        const double step = (double)new_m / (sqrt((double)new_v) + eps) + (double)(w[i] * wd);
        w[i] = (float)((double)w[i] - lr * step);
    }
}

/* tensors, numels: count rows, largest first (the parameters of several groups may share a
 * step: each row has its group's lr and weight decay, float32 scalars read here; 0 for a
 * parameter that does not decay). constants: 1 - beta1, 1 - beta2. eps: as the reference adds it
 * (a float64, normally holding a float32 value). gomp_parallel, omp_thread_num, omp_num_threads:
 * torch's OpenMP runtime's entry points, or NULL (see native_team.h). */
void msoptim_adam_weight_decay_step(const Tensor *tensors, const int64_t *numels, int64_t count,
                                    const float *constants, double eps, int threads,
                                    void *gomp_parallel, void *omp_thread_num,
                                    void *omp_num_threads) {
    Step s = {.tensors = tensors, .one_minus_beta1 = constants[0],
              .one_minus_beta2 = constants[1], .eps = eps};
    TeamStep team = {.kernel = &s, .sums = NULL, .finish = update, .numels = numels,
                     .count = count, .sums_count = 0};
    team_run(&team, threads, gomp_parallel, omp_thread_num, omp_num_threads);
}
