/* What AdamWeightDecay's exact per-element arithmetic costs on this CPU, data in cache.
 *
 * Three loops over 16,384-element float32 arrays (in L2), one thread: MindSpore's update as
 * msoptim's C kernel computes it (float64 square root and division), the same loop with the square
 * root and division replaced by a multiplication, and a float32 form (torch's AdamW arithmetic).
 * The first two differ by what an approximate float64 quotient could save at most.
 *
 *   gcc -O3 -march=native -ffp-contract=off -fno-math-errno tools/awd_arithmetic_cost.c -lm \
 *       -o /tmp/awd_cost && /tmp/awd_cost
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef void (*Loop)(float *restrict, const float *restrict, float *restrict, float *restrict,
                     int64_t, double);

static const float B1C = 0.1f, B2C = 0.001f, WD = 0.01f;
static const double EPS = 1e-8;

static void exact(float *restrict w, const float *restrict g, float *restrict m,
                  float *restrict v, int64_t n, double lr) {
    for (int64_t i = 0; i < n; i++) {
        m[i] = fmaf(g[i] - m[i], B1C, m[i]);
        v[i] = fmaf(fmaf(g[i], g[i], -v[i]), B2C, v[i]);
        const double step = (double)m[i] / (sqrt((double)v[i]) + EPS) + (double)(w[i] * WD);
        w[i] = (float)((double)w[i] - lr * step);
    }
}

static void no_root_no_division(float *restrict w, const float *restrict g, float *restrict m,
                                float *restrict v, int64_t n, double lr) {
    for (int64_t i = 0; i < n; i++) {
        m[i] = fmaf(g[i] - m[i], B1C, m[i]);
        v[i] = fmaf(fmaf(g[i], g[i], -v[i]), B2C, v[i]);
        const double step = (double)m[i] * ((double)v[i] + EPS) + (double)(w[i] * WD);
        w[i] = (float)((double)w[i] - lr * step);
    }
}

static void in_float32(float *restrict w, const float *restrict g, float *restrict m,
                       float *restrict v, int64_t n, double lr) {
    for (int64_t i = 0; i < n; i++) {
        m[i] = fmaf(g[i] - m[i], B1C, m[i]);
        v[i] = fmaf(fmaf(g[i], g[i], -v[i]), B2C, v[i]);
        const float step = m[i] / (sqrtf(v[i]) + (float)EPS) + w[i] * WD;
        w[i] = w[i] - (float)lr * step;
    }
}

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void) {
    const int64_t n = 16384;
    const int rounds = 20000;
    float *w = malloc(n * sizeof *w), *g = malloc(n * sizeof *g);
    float *m = malloc(n * sizeof *m), *v = malloc(n * sizeof *v);
    const Loop loops[] = {exact, no_root_no_division, in_float32};
    const char *names[] = {"exact (float64 sqrt, division)", "without sqrt and division",
                           "float32 arithmetic"};
    for (int k = 0; k < 3; k++) {
        for (int64_t i = 0; i < n; i++) {
            w[i] = 1.0f + 1e-6f * (float)i;
            g[i] = 0.01f * (float)(i % 7 - 3);
            m[i] = 1e-3f;
            v[i] = 1e-4f;
        }
        const double start = seconds();
        for (int r = 0; r < rounds; r++) loops[k](w, g, m, v, n, 1e-3);
        printf("%-32s %.3f ns an element\n", names[k], (seconds() - start) / rounds / n * 1e9);
    }
    return 0;
}
