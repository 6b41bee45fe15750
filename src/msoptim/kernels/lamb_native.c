/* Lamb's step for plain contiguous float32 CPU tensors: moments, norms and update in one visit.
 *
 * The arithmetic and its order are msoptim.kernels.lamb's reference (read its docstring first);
 * this file only changes how the memory is walked. Per parameter (native_team.h splits the work):
 *
 *   1. sums: read w, g, m, v; write the new m and v; sum the squares of w and of
 *      g_hat = m_hat / sqrt(v_hat + eps) (+ wd * w) in float64 (g_hat never reaches memory);
 *   2. finish: the trust ratio from the two norms ((float)sqrt(sum), msoptim.kernels._norms),
 *      then, while w, m and v are still in cache, w -= update * (trust * lr) with
 *      update = m_hat / (sqrt(v_hat) + eps) (+ wd * w).
 *
 * The compiled path reads w, m and v from memory twice (its two passes). Square roots are IEEE
 * sqrtf (correctly rounded, as the reference's exact_sqrt), divisions IEEE; nothing may be fused or
 * reassociated: the build uses -ffp-contract=off and no -ffast-math (msoptim.kernels._native).
 */
#include <math.h>
#include <stdint.h>

#include "native_team.h"

#define TRUST_MAX 10.0f
#define CHUNK 512 /* elements of g_hat kept on the stack at a time */

/* One parameter: addresses, and whether the weight decay applies to it. */
typedef struct {
    int64_t param, grad, m, v, decay;
} Tensor;

typedef struct {
    const Tensor *tensors;
    float beta1, beta2, one_minus_beta1, one_minus_beta2, eps;
    float correction1, correction2, weight_decay, lr;
} Step;

/* The new moments of n elements, written back, and their g_hat into out. */
static void moments_and_g_hat(const Step *s, int decay, const float *restrict w,
                              const float *restrict g, float *restrict m, float *restrict v,
                              float *restrict out, int64_t n) {
    const float beta1 = s->beta1, beta2 = s->beta2, one_minus_beta1 = s->one_minus_beta1,
                one_minus_beta2 = s->one_minus_beta2, eps = s->eps, c1 = s->correction1,
                c2 = s->correction2, wd = s->weight_decay;
    for (int64_t i = 0; i < n; i++) {
        float new_m = m[i] * beta1 + g[i] * one_minus_beta1;
        float new_v = v[i] * beta2 + (g[i] * g[i]) * one_minus_beta2;
        m[i] = new_m;
        v[i] = new_v;
        out[i] = (new_m / c1) / sqrtf(new_v / c2 + eps);
    }
    if (decay)
        for (int64_t i = 0; i < n; i++) out[i] = out[i] + w[i] * wd;
}

static void sums(void *kernel, int64_t index, int64_t first, int64_t last, double *totals) {
    const Step *s = kernel;
    const Tensor *t = &s->tensors[index];
    const float *w = (const float *)(intptr_t)t->param, *g = (const float *)(intptr_t)t->grad;
    float *m = (float *)(intptr_t)t->m, *v = (float *)(intptr_t)t->v;
    float g_hat[CHUNK]; /* a chunk's g_hat, summed from L1 and never written to memory */
    for (int64_t start = first; start < last; start += CHUNK) {
        const int64_t n = last - start < CHUNK ? last - start : CHUNK;
        moments_and_g_hat(s, (int)t->decay, w + start, g + start, m + start, v + start, g_hat, n);
        add_squares(w + start, n, &totals[0]);
        add_squares(g_hat, n, &totals[1]);
    }
}

/* The reference's _trust_ratio: r1/r2 when both are > 0, else 1; NaN or negative -> 0; <= 10. */
static float trust_ratio(double weight_sum, double g_hat_sum) {
    float r1 = (float)sqrt(weight_sum), r2 = (float)sqrt(g_hat_sum);
    float ratio = r1 > 0.0f ? (r2 > 0.0f ? r1 / r2 : 1.0f) : 1.0f;
    if (isnan(ratio) || ratio < 0.0f) return 0.0f;
    return ratio > TRUST_MAX ? TRUST_MAX : ratio;
}

static void finish(void *kernel, int64_t index, int64_t first, int64_t last,
                   const double *totals) {
    const Step *s = kernel;
    const Tensor *t = &s->tensors[index];
    float *w = (float *)(intptr_t)t->param;
    const float *m = (const float *)(intptr_t)t->m, *v = (const float *)(intptr_t)t->v;
    const float scale = trust_ratio(totals[0], totals[1]) * s->lr;
    const float c1 = s->correction1, c2 = s->correction2, eps = s->eps, wd = s->weight_decay;
    if (t->decay) {
        for (int64_t i = first; i < last; i++) {
            float update = (m[i] / c1) / (sqrtf(v[i] / c2) + eps) + w[i] * wd;
            w[i] = w[i] - update * scale;
        }
    } else {
        for (int64_t i = first; i < last; i++) {
            float update = (m[i] / c1) / (sqrtf(v[i] / c2) + eps);
            w[i] = w[i] - update * scale;
        }
    }
}

/* tensors, numels: count rows, largest first. constants: beta1, beta2, 1 - beta1, 1 - beta2,
 * eps. correction1, correction2, weight_decay, lr: float32 scalars read here (tensors' data).
 * gomp_parallel, omp_thread_num, omp_num_threads: torch's OpenMP runtime's entry points, or NULL
 * (see native_team.h). */
void msoptim_lamb_step(const Tensor *tensors, const int64_t *numels, int64_t count,
                       const float *constants, const float *correction1, const float *correction2,
                       const float *weight_decay, const float *lr, int threads,
                       void *gomp_parallel, void *omp_thread_num, void *omp_num_threads) {
    Step s = {.tensors = tensors, .beta1 = constants[0], .beta2 = constants[1],
              .one_minus_beta1 = constants[2], .one_minus_beta2 = constants[3],
              .eps = constants[4], .correction1 = *correction1, .correction2 = *correction2,
              .weight_decay = *weight_decay, .lr = *lr};
    TeamStep team = {.kernel = &s, .sums = sums, .finish = finish, .numels = numels,
                     .count = count, .sums_count = 2};
    team_run(&team, threads, gomp_parallel, omp_thread_num, omp_num_threads);
}
