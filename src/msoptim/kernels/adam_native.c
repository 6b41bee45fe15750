/* MindSpore Adam's step for plain contiguous float32 CPU tensors, one pass over each parameter.
 *
 * The arithmetic and its order are msoptim.kernels.adam's reference (read its docstring first),
 * which is MindSpore's CPU kernel's. First, for every parameter in turn, its power accumulators
 * advance (b1p *= beta1, b2p *= beta2) and then its bias-corrected lr is
 * lr_t = (lr * sqrtf(1 - b2p)) / (1 - b1p). Then each element:
 *
 *   m <- fmaf(g - m, 1 - beta1, m)
 *   v <- fmaf(fmaf(g, g, -v), 1 - beta2, v)
 *   w <- w - (lr_t * n) / (sqrtf(v) + eps)       n = m, or fmaf(g, 1 - beta1, m * beta1) (Nesterov)
 *
 * except the last numel % 8 elements (MindSpore's scalar loop), where the division and the
 * subtraction are float64 and Nesterov's n is fmaf(m, beta1, g * (1 - beta1)):
 *
 *   w <- (float)((double)w - (double)(lr_t * n) / (sqrt((double)v) + (double)eps))
 *
 * fmaf is the one fused multiply-add written; nothing else may be fused or reassociated: the build
 * uses -ffp-contract=off and no -ffast-math (msoptim.kernels._native). Square roots are IEEE.
 */
#include <math.h>
#include <stdint.h>

#include "native_team.h"

#define SCALAR_LOOP 8 /* MindSpore's vector blocks: the last numel % 8 elements are its scalar loop */

/* One parameter: addresses (its power accumulators and its group's lr: one float32 each). */
typedef struct {
    int64_t param, grad, m, v, beta1_power, beta2_power, lr;
} Tensor;

typedef struct {
    const Tensor *tensors;
    const int64_t *numels;
    const float *lr_t; /* per row: the bias-corrected lr */
    float beta1, one_minus_beta1, one_minus_beta2, eps;
    double eps_wide;
    int nesterov;
} Step;

static void vector_blocks(const Step *s, float lr_t, float *restrict w, const float *restrict g,
                          float *restrict m, float *restrict v, int64_t first, int64_t last) {
    const float beta1 = s->beta1, b1c = s->one_minus_beta1, b2c = s->one_minus_beta2,
                eps = s->eps;
    if (s->nesterov) {
        for (int64_t i = first; i < last; i++) {
            const float new_m = fmaf(g[i] - m[i], b1c, m[i]);
            const float new_v = fmaf(fmaf(g[i], g[i], -v[i]), b2c, v[i]);
            m[i] = new_m;
            v[i] = new_v;
            w[i] = w[i] - (lr_t * fmaf(g[i], b1c, new_m * beta1)) / (sqrtf(new_v) + eps);
        }
    } else {
        for (int64_t i = first; i < last; i++) {
            const float new_m = fmaf(g[i] - m[i], b1c, m[i]);
            const float new_v = fmaf(fmaf(g[i], g[i], -v[i]), b2c, v[i]);
            m[i] = new_m;
            v[i] = new_v;
            w[i] = w[i] - (lr_t * new_m) / (sqrtf(new_v) + eps);
        }
    }
}

static void scalar_loop(const Step *s, float lr_t, float *restrict w, const float *restrict g,
                        float *restrict m, float *restrict v, int64_t first, int64_t last) {
    const float beta1 = s->beta1, b1c = s->one_minus_beta1, b2c = s->one_minus_beta2;
    for (int64_t i = first; i < last; i++) {
        const float new_m = fmaf(g[i] - m[i], b1c, m[i]);
        const float new_v = fmaf(fmaf(g[i], g[i], -v[i]), b2c, v[i]);
        m[i] = new_m;
        v[i] = new_v;
        const float n = s->nesterov ? fmaf(new_m, beta1, g[i] * b1c) : new_m;
        const double scaled = (double)(lr_t * n);
        w[i] = (float)((double)w[i] - scaled / (sqrt((double)new_v) + s->eps_wide));
    }
}

static void update(void *kernel, int64_t index, int64_t first, int64_t last,
                   const double *totals) {
    (void)totals;
    const Step *s = kernel;
    const Tensor *t = &s->tensors[index];
    float *w = (float *)(intptr_t)t->param, *m = (float *)(intptr_t)t->m,
          *v = (float *)(intptr_t)t->v;
    const float *g = (const float *)(intptr_t)t->grad;
    const float lr_t = s->lr_t[index];
    const int64_t numel = s->numels[index], blocks_end = numel - numel % SCALAR_LOOP;
    const int64_t blocks_last = last < blocks_end ? last : blocks_end;
    const int64_t tail_first = first > blocks_end ? first : blocks_end;
    if (first < blocks_last) vector_blocks(s, lr_t, w, g, m, v, first, blocks_last);
    if (tail_first < last) scalar_loop(s, lr_t, w, g, m, v, tail_first, last);
}

/* Every parameter's powers advance, then its lr_t is computed: the reference's order (a power
 * listed twice advances twice before either lr_t is read). */
static void advance_powers(const Tensor *tensors, int64_t count, float beta1, float beta2,
                           float *lr_t) {
    for (int64_t i = 0; i < count; i++) {
        float *p1 = (float *)(intptr_t)tensors[i].beta1_power;
        float *p2 = (float *)(intptr_t)tensors[i].beta2_power;
        *p1 = *p1 * beta1;
        *p2 = *p2 * beta2;
    }
    for (int64_t i = 0; i < count; i++) {
        const float p1 = *(const float *)(intptr_t)tensors[i].beta1_power;
        const float p2 = *(const float *)(intptr_t)tensors[i].beta2_power;
        const float lr = *(const float *)(intptr_t)tensors[i].lr;
        lr_t[i] = (lr * sqrtf(1.0f - p2)) / (1.0f - p1);
    }
}

/* tensors, numels: count rows, largest first (the parameters of several groups may share a
 * step: each row has its group's lr, a float32 read here). lr_t: count floats of scratch.
 * constants: beta1, beta2, 1 - beta1, 1 - beta2. eps: as the reference adds it (a float64,
 * normally holding a float32 value; the vector blocks add it rounded to float32). gomp_parallel,
 * omp_thread_num, omp_num_threads: torch's OpenMP runtime's entry points, or NULL (see
 * native_team.h). */
void msoptim_adam_step(const Tensor *tensors, const int64_t *numels, int64_t count, float *lr_t,
                       const float *constants, double eps, int nesterov, int threads,
                       void *gomp_parallel, void *omp_thread_num, void *omp_num_threads) {
    advance_powers(tensors, count, constants[0], constants[1], lr_t);
    Step s = {.tensors = tensors, .numels = numels, .lr_t = lr_t, .beta1 = constants[0],
              .one_minus_beta1 = constants[2], .one_minus_beta2 = constants[3],
              .eps = (float)eps, .eps_wide = eps, .nesterov = nesterov};
    TeamStep team = {.kernel = &s, .sums = NULL, .finish = update, .numels = numels,
                     .count = count, .sums_count = 0};
    team_run(&team, threads, gomp_parallel, omp_thread_num, omp_num_threads);
}
