/* SGD's step for plain contiguous float32 CPU tensors, one pass over each parameter.
 *
 * MindSpore's SGD, each operation rounded to float32 (msoptim.kernels.sgd):
 *
 *   momentum > 0:  a <- stat > 0 ? g : a * momentum + g * keep     (keep = 1 - dampening; no
 *                                                                   product when dampening is 0)
 *                  stat <- 0
 *                  d <- a                                          (Nesterov: g + a * momentum)
 *   momentum == 0: d <- g                                          (a and stat untouched)
 *   w <- w - d * lr
 *
 * Built with -ffp-contract=off (msoptim.kernels._native): no multiply-add may be fused.
 */
#include <stdint.h>

#include "native_team.h"

/* One parameter: addresses (its lr: one float32, its group's). */
typedef struct {
    int64_t param, grad, accum, stat, lr;
} Tensor;

typedef struct {
    const Tensor *tensors;
    float momentum, keep;
    int accumulate, dampened, nesterov; /* accumulate: momentum > 0 (decided by the caller) */
} Step;

static void update(void *kernel, int64_t index, int64_t first, int64_t last,
                   const double *totals) {
    (void)totals;
    const Step *s = kernel;
    const Tensor *t = &s->tensors[index];
    float *restrict w = (float *)(intptr_t)t->param;
    const float *restrict g = (const float *)(intptr_t)t->grad;
    const float lr = *(const float *)(intptr_t)t->lr, momentum = s->momentum, keep = s->keep;
    if (!s->accumulate) {
        for (int64_t i = first; i < last; i++) w[i] = w[i] - g[i] * lr;
        return;
    }
    float *restrict a = (float *)(intptr_t)t->accum;
    float *restrict stat = (float *)(intptr_t)t->stat;
    for (int64_t i = first; i < last; i++) {
        const float scaled = s->dampened ? g[i] * keep : g[i];
        const float updated = a[i] * momentum + scaled;
        const float new_a = stat[i] > 0.0f ? g[i] : updated;
        a[i] = new_a;
        stat[i] = 0.0f;
        const float direction = s->nesterov ? g[i] + new_a * momentum : new_a;
        w[i] = w[i] - direction * lr;
    }
}

/* tensors, numels: count rows, largest first (several groups may share a call: each row has its
 * group's lr, a float32 read here). accumulate: momentum > 0; keep: 1 - dampening in float32,
 * used when dampened.
 * gomp_parallel, omp_thread_num, omp_num_threads: torch's OpenMP runtime's entry points, or NULL
 * (see native_team.h). */
void msoptim_sgd_step(const Tensor *tensors, const int64_t *numels, int64_t count, float momentum,
                      float keep, int accumulate, int dampened, int nesterov, int threads,
                      void *gomp_parallel, void *omp_thread_num, void *omp_num_threads) {
    Step s = {.tensors = tensors, .momentum = momentum, .keep = keep, .accumulate = accumulate,
              .dampened = dampened, .nesterov = nesterov};
    TeamStep team = {.kernel = &s, .sums = NULL, .finish = update, .numels = numels,
                     .count = count, .sums_count = 0};
    team_run(&team, threads, gomp_parallel, omp_thread_num, omp_num_threads);
}
