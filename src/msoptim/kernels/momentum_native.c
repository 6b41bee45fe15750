/* Momentum's step for plain contiguous float32 CPU tensors, one pass over each parameter.
 *
 * MindSpore's ApplyMomentum, each operation rounded to float32 (msoptim.kernels.momentum):
 *
 *   v <- v * momentum + g
 *   w <- w - lr * v                         (Nesterov: w - (g + v * momentum) * lr)
 *
 * Built with -ffp-contract=off (msoptim.kernels._native): no multiply-add may be fused.
 */
#include <stdint.h>

#include "native_team.h"

/* One parameter: addresses (its lr: one float32, its group's). */
typedef struct {
    int64_t param, grad, moment, lr;
} Tensor;

typedef struct {
    const Tensor *tensors;
    float momentum;
    int nesterov;
} Step;

static void update(void *kernel, int64_t index, int64_t first, int64_t last,
                   const double *totals) {
    (void)totals;
    const Step *s = kernel;
    const Tensor *t = &s->tensors[index];
    float *restrict w = (float *)(intptr_t)t->param;
    const float *restrict g = (const float *)(intptr_t)t->grad;
    float *restrict v = (float *)(intptr_t)t->moment;
    const float lr = *(const float *)(intptr_t)t->lr, momentum = s->momentum;
    if (s->nesterov) {
        for (int64_t i = first; i < last; i++) {
            const float new_v = v[i] * momentum + g[i];
            v[i] = new_v;
            w[i] = w[i] - (g[i] + new_v * momentum) * lr;
        }
    } else {
        for (int64_t i = first; i < last; i++) {
            const float new_v = v[i] * momentum + g[i];
            v[i] = new_v;
            w[i] = w[i] - new_v * lr;
        }
    }
}

/* tensors, numels: count rows, largest first (several groups may share a call: each row has its
 * group's lr, a float32 read here). gomp_parallel, omp_thread_num, omp_num_threads: torch's
 * OpenMP runtime's entry points, or NULL (see native_team.h). */
void msoptim_momentum_step(const Tensor *tensors, const int64_t *numels, int64_t count,
                           float momentum, int nesterov, int threads, void *gomp_parallel,
                           void *omp_thread_num, void *omp_num_threads) {
    Step s = {.tensors = tensors, .momentum = momentum, .nesterov = nesterov};
    TeamStep team = {.kernel = &s, .sums = NULL, .finish = update, .numels = numels,
                     .count = count, .sums_count = 0};
    team_run(&team, threads, gomp_parallel, omp_thread_num, omp_num_threads);
}
