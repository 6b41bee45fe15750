/* AdaFactor's step for plain contiguous float32 CPU tensors, in MindSpore FusedAdaFactor's order.
 *
 * The arithmetic and its order are msoptim.kernels.adafactor's reference (read its docstring
 * first); this file only changes how the memory is walked. A factored parameter with long rows
 * (MODE_ROWS: linear layers, embeddings) takes three passes:
 *
 *   1. read g: each row's and each column's sequential float32 sum of g*g + eps1 (the kernel's
 *      loops), then the small row/column work (state update, normalizer, square roots).
 *   2. read g (and w): sum of the squared direction (and of w*w) for the two RMS values.
 *   3. read g, w, exp_avg; write w, exp_avg: the update.
 *
 * With short rows (MODE_SCALED: convolution kernels) a slice's factors are final once the slice
 * is read, so passes 1 and 2 are one cache-blocked pass that writes the directions to scratch,
 * and pass 3 reads them instead of g. A flat parameter (MODE_FLAT: ndim < 2) updates its full
 * second moment, then takes passes 2 and 3.
 *
 * Parameters are handed out to threads largest first; from TEAM_MIN_THREADS threads on, one
 * larger than an even share of the step is walked by all threads together, phase by phase.
 *
 * Row sums run eight rows at a time, one row per vector lane, so each lane still adds its
 * row's terms in order: an 8x8 tile is transposed in registers. Nothing here may be fused or
 * reassociated: the build uses -ffp-contract=off and no -ffast-math (msoptim.kernels._native).
 *
 * RMS sums: up to RMS_SEQUENTIAL_MAX elements in sequence in float32 (MindSpore's CalcRMS
 * block); above it, in float64 in any order, rounded once (the reference's definition there).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#if defined(__AVX__) && !defined(MSOPTIM_PORTABLE)
#include <immintrin.h>
#define USE_AVX 1
#else
#define USE_AVX 0
#endif

#define FLOOR 1e-30f
#define RMS_SEQUENTIAL_MAX 1000
#define WIDE_LANES 8

/* One parameter. Factored (ndim >= 2): viewed as (batch, rows, cols), row/col states are
 * (batch, rows) and (batch, cols), sq is unused; factors is scratch for batch * (rows + cols)
 * floats (MODE_ROWS) or for every element (MODE_SCALED: short rows). Flat (MODE_FLAT, ndim < 2):
 * cols = numel, sq is the full second moment. exp_avg is 0 (NULL) when beta1 == 0. */
enum { MODE_FLAT = 0, MODE_ROWS = 1, MODE_SCALED = 2 };
typedef struct {
    int64_t param, grad, exp_avg, row, col, sq, factors; /* addresses */
    int64_t batch, rows, cols, mode;
} Tensor;

/* The OpenMP runtime's entry points (libgomp's ABI, which LLVM's and Intel's runtimes export). */
typedef void (*GompParallel)(void (*body)(void *), void *data, unsigned threads, unsigned flags);
typedef int (*OmpQuery)(void);

typedef struct {
    float lr, beta2t, one_minus_beta2t, eps1, eps2, clip_threshold, beta1, one_minus_beta1;
    float weight_decay;
    int scale_parameter;
    GompParallel gomp_parallel; /* torch's OpenMP workers run the threads' work, or NULL */
    OmpQuery thread_num, num_threads;
} Scalars;

static inline float floor_at(float x, float low) { return x < low ? low : x; } /* keeps NaN */

/* ---------------------------------------------------------------- pass 1: row and column sums */

#if USE_AVX
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(s[i], s[i + 4], 0x31);
    }
}

/* Eight rows starting at g: row_sum[0..8) and (unless NULL) col_sum[0..cols) continue their
 * sums. */
static void sum_eight_rows(const float *g, int64_t cols, float eps1, float *row_sum,
                           float *col_sum) {
    const __m256 eps = _mm256_set1_ps(eps1);
    __m256 lanes = _mm256_setzero_ps(); /* lane k: row k's running sum */
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 u[8];
        for (int k = 0; k < 8; k++) {
            __m256 x = _mm256_loadu_ps(g + k * cols + c);
            u[k] = _mm256_add_ps(_mm256_mul_ps(x, x), eps);
        }
        if (col_sum != NULL) {
            __m256 column = _mm256_loadu_ps(col_sum + c);
            for (int k = 0; k < 8; k++) column = _mm256_add_ps(column, u[k]); /* rows in order */
            _mm256_storeu_ps(col_sum + c, column);
        }
        transpose8(u);
        for (int j = 0; j < 8; j++) lanes = _mm256_add_ps(lanes, u[j]); /* columns in order */
    }
    float acc[8];
    _mm256_storeu_ps(acc, lanes);
    for (; c < cols; c++) {
        for (int k = 0; k < 8; k++) {
            float x = g[k * cols + c];
            float u = x * x + eps1;
            acc[k] += u;
            if (col_sum != NULL) col_sum[c] += u;
        }
    }
    memcpy(row_sum, acc, sizeof acc);
}
#endif

/* row_sum[r] = sum over c of g*g + eps1, col_sum[c] = sum over r, each in index order; with
 * col_sum NULL, the row sums only. */
static void row_and_column_sums(const float *g, int64_t rows, int64_t cols, float eps1,
                                float *row_sum, float *col_sum) {
    if (col_sum != NULL) memset(col_sum, 0, (size_t)cols * sizeof(float));
    int64_t r = 0;
#if USE_AVX
    if (cols >= 8)
        for (; r + 8 <= rows; r += 8) sum_eight_rows(g + r * cols, cols, eps1, row_sum + r, col_sum);
#endif
    for (; r < rows; r++) {
        const float *x = g + r * cols;
        float acc = 0.0f;
        for (int64_t c = 0; c < cols; c++) {
            float u = x[c] * x[c] + eps1;
            acc += u;
            if (col_sum != NULL) col_sum[c] += u;
        }
        row_sum[r] = acc;
    }
}

/* col_sum[c] for c in [first, last) of one (rows, cols) slice, adding the rows in order. */
static void column_sums(const float *g, int64_t rows, int64_t cols, float eps1, int64_t first,
                        int64_t last, float *col_sum) {
    for (int64_t c = first; c < last; c++) col_sum[c] = 0.0f;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = g + r * cols;
        for (int64_t c = first; c < last; c++) col_sum[c] += x[c] * x[c] + eps1;
    }
}

/* The state update and the two factors of one (rows, cols) slice. row_sum becomes the row factor,
 * col_sum the column factor. */
static void update_factors(const Scalars *s, int64_t rows, int64_t cols, float *row, float *col,
                           float *row_sum, float *col_sum) {
    const float b = s->beta2t, om = s->one_minus_beta2t;
    float norm = 0.0f;
    for (int64_t r = 0; r < rows; r++) {
        row[r] = row[r] * b + (row_sum[r] / (float)cols) * om;
        norm += row[r];
    }
    norm = floor_at(norm / (float)rows, FLOOR);
    for (int64_t r = 0; r < rows; r++) row_sum[r] = sqrtf(row[r] / norm);
    for (int64_t c = 0; c < cols; c++) {
        float v = floor_at(col[c] * b + (col_sum[c] / (float)rows) * om, FLOOR);
        col[c] = v;
        col_sum[c] = sqrtf(v);
    }
}

/* ---------------------------------------------------------------- pass 2: sums of squares */

typedef struct {
    float narrow;             /* sequential float32 sum (small tensors) */
    double wide[WIDE_LANES]; /* float64 lanes (large tensors) */
} __attribute__((aligned(64))) SquareSum; /* a team's per-thread sums on separate cache lines */

static float rms_of(const SquareSum *sum, int64_t numel) {
    float total = sum->narrow;
    if (numel > RMS_SEQUENTIAL_MAX) {
        double wide = 0.0;
        for (int i = 0; i < WIDE_LANES; i++) wide += sum->wide[i];
        total = (float)wide;
    }
    return sqrtf(total / (float)numel);
}

/* Adds x[i]*x[i] (each square rounded to float32) to sum, sequentially or in lanes. */
static void add_squares(SquareSum *sum, const float *x, int64_t n, int sequential) {
    if (sequential) {
        for (int64_t i = 0; i < n; i++) sum->narrow += x[i] * x[i];
        return;
    }
    int64_t i = 0;
    for (; i + WIDE_LANES <= n; i += WIDE_LANES)
        for (int k = 0; k < WIDE_LANES; k++) {
            float square = x[i + k] * x[i + k];
            sum->wide[k] += (double)square;
        }
    for (; i < n; i++) {
        float square = x[i] * x[i];
        sum->wide[0] += (double)square;
    }
}

/* The direction of one row: g / max(row_factor * col_factor, 1e-30). */
static inline void factored_direction(const float *g, float row_factor, const float *col_factor,
                                      int64_t cols, float *out) {
    for (int64_t c = 0; c < cols; c++) out[c] = g[c] / floor_at(row_factor * col_factor[c], FLOOR);
}

static inline void elementwise_direction(const float *g, const float *denominator, int64_t n,
                                         int root, float *out) {
    if (root)
        for (int64_t i = 0; i < n; i++) out[i] = g[i] / sqrtf(denominator[i]);
    else
        for (int64_t i = 0; i < n; i++) out[i] = g[i] / denominator[i];
}

/* ---------------------------------------------------------------- pass 3: the update */

typedef struct {
    float coefficient, lr_eff;
} Step;

static Step step_scalars(const Scalars *s, const SquareSum *weights, const SquareSum *directions,
                         int64_t numel) {
    Step out;
    out.lr_eff = s->scale_parameter ? s->lr * floor_at(rms_of(weights, numel), s->eps2) : s->lr;
    out.coefficient = out.lr_eff / floor_at(rms_of(directions, numel) / s->clip_threshold, 1.0f);
    return out;
}

/* w <- w - (m + w*wd*lr_eff), m <- m*beta1 + d*coefficient*(1 - beta1), for n elements. */
static void apply(const Scalars *s, Step step, const float *direction, float *w, float *m,
                  int64_t n) {
    const float wd = s->weight_decay, b1 = s->beta1, omb1 = s->one_minus_beta1;
    const float coefficient = step.coefficient, lr_eff = step.lr_eff;
    if (m != NULL && wd != 0.0f) {
        for (int64_t i = 0; i < n; i++) {
            float update = m[i] * b1 + (direction[i] * coefficient) * omb1;
            m[i] = update;
            w[i] = w[i] - (update + (w[i] * wd) * lr_eff);
        }
    } else if (m != NULL) {
        for (int64_t i = 0; i < n; i++) {
            float update = m[i] * b1 + (direction[i] * coefficient) * omb1;
            m[i] = update;
            w[i] = w[i] - update;
        }
    } else if (wd != 0.0f) {
        for (int64_t i = 0; i < n; i++)
            w[i] = w[i] - (direction[i] * coefficient + (w[i] * wd) * lr_eff);
    } else {
        for (int64_t i = 0; i < n; i++) w[i] = w[i] - direction[i] * coefficient;
    }
}

/* ---------------------------------------------------------------- one parameter */

#define CHUNK 1024 /* direction elements computed into a stack buffer at a time */

/* Passes 2 and 3 of a tensor whose direction is elementwise: g / sqrt(denominator) (flat) or
 * g / denominator (scaled). */
static void finish_elementwise(const Tensor *t, const Scalars *s, int64_t numel,
                               const float *denominator, int root) {
    const float *g = (const float *)t->grad;
    float *w = (float *)t->param, *m = (float *)t->exp_avg;
    float buffer[CHUNK];
    const int sequential = numel <= RMS_SEQUENTIAL_MAX;
    SquareSum weights = {0}, directions = {0};
    if (s->scale_parameter) add_squares(&weights, w, numel, sequential);
    for (int64_t at = 0; at < numel; at += CHUNK) {
        const int64_t n = numel - at < CHUNK ? numel - at : CHUNK;
        elementwise_direction(g + at, denominator + at, n, root, buffer);
        add_squares(&directions, buffer, n, sequential);
    }
    const Step step = step_scalars(s, &weights, &directions, numel);
    for (int64_t at = 0; at < numel; at += CHUNK) {
        const int64_t n = numel - at < CHUNK ? numel - at : CHUNK;
        elementwise_direction(g + at, denominator + at, n, root, buffer);
        apply(s, step, buffer, w + at, m == NULL ? NULL : m + at, n);
    }
}

/* ndim < 2: sq <- max(sq*b + (g*g + eps1)*(1 - b), 1e-30), direction g / sqrt(sq). */
static void step_flat(const Tensor *t, const Scalars *s) {
    const int64_t numel = t->cols;
    const float *g = (const float *)t->grad;
    float *sq = (float *)t->sq;
    for (int64_t i = 0; i < numel; i++) {
        float u = g[i] * g[i] + s->eps1;
        sq[i] = floor_at(sq[i] * s->beta2t + u * s->one_minus_beta2t, FLOOR);
    }
    finish_elementwise(t, s, numel, sq, 1);
}

/* One small (rows, cols) slice in short-row mode: state update, then each element's direction
 * g / max(row_factor * col_factor, 1e-30). sums holds rows + cols floats. */
static void direction_slice(const Scalars *s, const float *g, int64_t rows, int64_t cols,
                            float *row, float *col, float *sums, float *direction) {
    float *rf = sums, *cf = sums + rows;
    row_and_column_sums(g, rows, cols, s->eps1, rf, cf);
    update_factors(s, rows, cols, row, col, rf, cf);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            direction[r * cols + c] = g[r * cols + c] / floor_at(rf[r] * cf[c], FLOOR);
}

/* 1x1 slices (pointwise convolutions): the row and column sums are the element itself. */
static void direction_pointwise(const Scalars *s, const float *g, int64_t batch, float *row,
                                float *col, float *direction) {
    const float b = s->beta2t, om = s->one_minus_beta2t, eps1 = s->eps1;
    for (int64_t i = 0; i < batch; i++) {
        const float u = g[i] * g[i] + eps1;
        const float r = row[i] * b + (u / 1.0f) * om;
        row[i] = r;
        const float norm = floor_at(r / 1.0f, FLOOR);
        const float v = floor_at(col[i] * b + (u / 1.0f) * om, FLOOR);
        col[i] = v;
        direction[i] = g[i] / floor_at(sqrtf(r / norm) * sqrtf(v), FLOOR);
    }
}

/* 3x3 slices (convolution kernels), written out so that the compiler vectorizes across slices:
 * the same operations in the same order as direction_slice. */
#if USE_AVX && defined(__AVX2__)
/* Eight 3x3 slices at once, one per lane, as direction_3x3 computes each. */
static void direction_3x3_eight(const Scalars *s, const float *g, float *row, float *col,
                                float *direction) {
    const __m256 b = _mm256_set1_ps(s->beta2t), om = _mm256_set1_ps(s->one_minus_beta2t);
    const __m256 eps1 = _mm256_set1_ps(s->eps1), three = _mm256_set1_ps(3.0f);
    const __m256 floor = _mm256_set1_ps(FLOOR);
    const __m256i nine = _mm256_setr_epi32(0, 9, 18, 27, 36, 45, 54, 63);
    const __m256i by3 = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
    __m256 x[9], u[9], rows[3], cols[3], rf[3], cf[3], out[9];
    /* elements 0-7 of each slice: eight loads and a transpose; element 8 gathered */
    for (int k = 0; k < 8; k++) x[k] = _mm256_loadu_ps(g + 9 * k);
    transpose8(x);
    x[8] = _mm256_i32gather_ps(g + 8, nine, 4);
    for (int e = 0; e < 9; e++) u[e] = _mm256_add_ps(_mm256_mul_ps(x[e], x[e]), eps1);
    /* floor_at(x, low) = x < low ? low : x, which keeps NaN: blend on the ordered compare */
#define FLOOR_AT(x, low) _mm256_blendv_ps((x), (low), _mm256_cmp_ps((x), (low), _CMP_LT_OQ))
    __m256 norm = _mm256_setzero_ps();
    for (int r = 0; r < 3; r++) {
        const __m256 sum = _mm256_add_ps(
            _mm256_add_ps(_mm256_add_ps(_mm256_setzero_ps(), u[3 * r]), u[3 * r + 1]),
            u[3 * r + 2]);
        rows[r] = _mm256_add_ps(_mm256_mul_ps(_mm256_i32gather_ps(row + r, by3, 4), b),
                                _mm256_mul_ps(_mm256_div_ps(sum, three), om));
        norm = _mm256_add_ps(norm, rows[r]);
    }
    norm = FLOOR_AT(_mm256_div_ps(norm, three), floor);
    for (int r = 0; r < 3; r++) rf[r] = _mm256_sqrt_ps(_mm256_div_ps(rows[r], norm));
    for (int c = 0; c < 3; c++) {
        const __m256 sum = _mm256_add_ps(
            _mm256_add_ps(_mm256_add_ps(_mm256_setzero_ps(), u[c]), u[3 + c]), u[6 + c]);
        const __m256 v = _mm256_add_ps(_mm256_mul_ps(_mm256_i32gather_ps(col + c, by3, 4), b),
                                       _mm256_mul_ps(_mm256_div_ps(sum, three), om));
        cols[c] = FLOOR_AT(v, floor);
        cf[c] = _mm256_sqrt_ps(cols[c]);
    }
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            out[3 * r + c] = _mm256_div_ps(x[3 * r + c],
                                           FLOOR_AT(_mm256_mul_ps(rf[r], cf[c]), floor));
#undef FLOOR_AT
    float last[8], row_lanes[3][8], col_lanes[3][8];
    _mm256_storeu_ps(last, out[8]);
    transpose8(out); /* back to slices: out[k] holds elements 0-7 of slice k */
    for (int r = 0; r < 3; r++) _mm256_storeu_ps(row_lanes[r], rows[r]);
    for (int c = 0; c < 3; c++) _mm256_storeu_ps(col_lanes[c], cols[c]);
    for (int k = 0; k < 8; k++) {
        _mm256_storeu_ps(direction + 9 * k, out[k]);
        direction[9 * k + 8] = last[k];
        for (int r = 0; r < 3; r++) row[3 * k + r] = row_lanes[r][k];
        for (int c = 0; c < 3; c++) col[3 * k + c] = col_lanes[c][k];
    }
}
#endif

static void direction_3x3(const Scalars *s, const float *g, int64_t batch, float *row,
                          float *col, float *direction) {
    const float b = s->beta2t, om = s->one_minus_beta2t, eps1 = s->eps1;
    int64_t i = 0;
#if USE_AVX && defined(__AVX2__)
    for (; i + 8 <= batch; i += 8)
        direction_3x3_eight(s, g + 9 * i, row + 3 * i, col + 3 * i, direction + 9 * i);
#endif
    for (; i < batch; i++) {
        const float *x = g + 9 * i;
        float u[9], rf[3], cf[3];
        for (int e = 0; e < 9; e++) u[e] = x[e] * x[e] + eps1;
        float norm = 0.0f;
        for (int r = 0; r < 3; r++) {
            const float sum = ((0.0f + u[3 * r]) + u[3 * r + 1]) + u[3 * r + 2];
            row[3 * i + r] = row[3 * i + r] * b + (sum / 3.0f) * om;
            norm += row[3 * i + r];
        }
        norm = floor_at(norm / 3.0f, FLOOR);
        for (int r = 0; r < 3; r++) rf[r] = sqrtf(row[3 * i + r] / norm);
        for (int c = 0; c < 3; c++) {
            const float sum = ((0.0f + u[c]) + u[3 + c]) + u[6 + c];
            const float v = floor_at(col[3 * i + c] * b + (sum / 3.0f) * om, FLOOR);
            col[3 * i + c] = v;
            cf[c] = sqrtf(v);
        }
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                direction[9 * i + 3 * r + c] = x[3 * r + c] / floor_at(rf[r] * cf[c], FLOOR);
    }
}

/* Factored tensors with short rows (convolution kernels): the factors of a slice are final once
 * the slice is read, so pass 1 writes each element's direction to the scratch and sums its
 * squares (and the parameter's) while the block is in cache; pass 2 is the update, reading the
 * directions instead of the gradient. The caller keeps rows + cols <= SCALED_SUMS_MAX. */
#define SCALED_SUMS_MAX 2048
static void directions_of(const Scalars *s, const Tensor *t, int64_t first, int64_t count,
                          float *sums, float *direction) {
    const int64_t rows = t->rows, cols = t->cols, size = rows * cols;
    const float *g = (const float *)t->grad + first * size;
    float *row = (float *)t->row + first * rows, *col = (float *)t->col + first * cols;
    if (rows == 1 && cols == 1)
        direction_pointwise(s, g, count, row, col, direction);
    else if (rows == 3 && cols == 3)
        direction_3x3(s, g, count, row, col, direction);
    else
        for (int64_t b = 0; b < count; b++)
            direction_slice(s, g + b * size, rows, cols, row + b * rows, col + b * cols, sums,
                            direction + b * size);
}

/* ---------------------------------------------------------------- one tensor, by a team of threads
 *
 * A factored tensor is walked by a team, phase by phase (each phase a parallel loop over
 * contiguous ranges, joined before the next). Usually the team is one thread (no thread is
 * started) and the list is shared out tensor by tensor; a tensor larger than an even share of the
 * step (an embedding among many threads, a model of one matrix) would keep one thread busy while
 * the others wait, so all threads walk it together. The sequential sums keep their order: row
 * sums by ranges of whole rows and column sums by ranges of whole columns, two sweeps at once
 * (one sweep for a team of one); a team's RMS sums are float64 lanes per thread, added after the
 * join (any order: see the header). */

#define TEAM_MAX 64

typedef struct Team Team;
typedef void (*Part)(Team *team, int part, int64_t first, int64_t last);
struct Team {
    const Tensor *t;
    const Scalars *s;
    int parts;
    int sequential; /* sums in order in float32 (a team of one, at most one CalcRMS block) */
    Step step;
    SquareSum weights[TEAM_MAX], directions[TEAM_MAX];
};

typedef struct {
    Team *team;
    Part part_fn;
    int part;
    int64_t first, last;
} Job;

static void *run_job(void *arg) {
    Job *job = arg;
    if (job->first < job->last) job->part_fn(job->team, job->part, job->first, job->last);
    return NULL;
}

static void share_of(int64_t n, int shares, int index, int64_t align, int64_t *first,
                     int64_t *last);

typedef struct {
    Job *jobs;
    int parts;
    const Scalars *s;
} Parts;

/* An OpenMP worker's parts: the runtime may grant fewer threads than parts. */
static void omp_parts(void *arg) {
    Parts *all = arg;
    const int threads = all->s->num_threads();
    for (int p = all->s->thread_num(); p < all->parts; p += threads) run_job(&all->jobs[p]);
}

/* part_fn over [0, n) in team->parts contiguous ranges (multiples of align), one per thread. */
static void parallel_for(Team *team, int64_t n, int64_t align, Part part_fn) {
    Job jobs[TEAM_MAX];
    pthread_t ids[TEAM_MAX];
    int started[TEAM_MAX];
    for (int p = 0; p < team->parts; p++) {
        jobs[p] = (Job){team, part_fn, p, 0, 0};
        share_of(n, team->parts, p, align, &jobs[p].first, &jobs[p].last);
    }
    if (team->s->gomp_parallel) {
        Parts all = {jobs, team->parts, team->s};
        team->s->gomp_parallel(omp_parts, &all, (unsigned)team->parts, 0);
        return;
    }
    for (int p = 1; p < team->parts; p++) {
        started[p] = pthread_create(&ids[p], NULL, run_job, &jobs[p]) == 0;
        if (!started[p]) run_job(&jobs[p]);
    }
    run_job(&jobs[0]);
    for (int p = 1; p < team->parts; p++)
        if (started[p]) pthread_join(ids[p], NULL);
}

static Step team_step(Team *team, int64_t numel) {
    SquareSum weights = team->weights[0], directions = team->directions[0];
    for (int p = 1; p < team->parts; p++)
        for (int k = 0; k < WIDE_LANES; k++) {
            weights.wide[k] += team->weights[p].wide[k];
            directions.wide[k] += team->directions[p].wide[k];
        }
    return step_scalars(team->s, &weights, &directions, numel);
}

/* The range of [0, n) that share `index` of `shares` covers, in multiples of align. */
static void share_of(int64_t n, int shares, int index, int64_t align, int64_t *first,
                     int64_t *last) {
    int64_t size = (n + shares - 1) / shares;
    size = (size + align - 1) / align * align;
    *first = index * size < n ? index * size : n;
    *last = *first + size < n ? *first + size : n;
}

/* Long rows, pass 1: half the threads sum ranges of whole rows (global rows: batch * rows of
 * them, contiguous in memory), the other half ranges of whole columns, both sweeps at once. */
static void sums_of_rows_or_columns(Team *team, int part, int64_t first, int64_t last) {
    const Tensor *t = team->t;
    const int row_parts = (team->parts + 1) / 2, column_parts = team->parts - row_parts;
    const int64_t slice = t->rows * t->cols;
    float *col_factor = (float *)t->factors + t->batch * t->rows;
    (void)first;
    (void)last;
    int64_t begin, end;
    if (column_parts == 0) { /* a team of one: both sums in one sweep, slice by slice */
        for (int64_t b = 0; b < t->batch; b++)
            row_and_column_sums((const float *)t->grad + b * slice, t->rows, t->cols,
                                team->s->eps1, (float *)t->factors + b * t->rows,
                                col_factor + b * t->cols);
        return;
    }
    if (part < row_parts) {
        share_of(t->batch * t->rows, row_parts, part, 8, &begin, &end);
        if (begin < end)
            row_and_column_sums((const float *)t->grad + begin * t->cols, end - begin, t->cols,
                                team->s->eps1, (float *)t->factors + begin, NULL);
        return;
    }
    share_of(t->cols, column_parts, part - row_parts, 16, &begin, &end);
    for (int64_t b = 0; b < t->batch && begin < end; b++)
        column_sums((const float *)t->grad + b * slice, t->rows, t->cols, team->s->eps1, begin,
                    end, col_factor + b * t->cols);
}

/* Each global row of [first, last) in pieces of at most CHUNK directions: sums, or the update. */
static void row_pieces(Team *team, int part, int64_t first, int64_t last, int update) {
    const Tensor *t = team->t;
    const float *g = (const float *)t->grad, *row_factor = (const float *)t->factors;
    const float *col_factor = row_factor + t->batch * t->rows;
    float *w = (float *)t->param, *m = (float *)t->exp_avg;
    float buffer[CHUNK];
    if (!update && team->s->scale_parameter)
        add_squares(&team->weights[part], w + first * t->cols, (last - first) * t->cols,
                    team->sequential);
    for (int64_t row = first; row < last; row++) {
        const float *cf = col_factor + row / t->rows * t->cols;
        for (int64_t c = 0; c < t->cols; c += CHUNK) {
            const int64_t at = row * t->cols + c, n = t->cols - c < CHUNK ? t->cols - c : CHUNK;
            factored_direction(g + at, row_factor[row], cf + c, n, buffer);
            if (update)
                apply(team->s, team->step, buffer, w + at, m == NULL ? NULL : m + at, n);
            else
                add_squares(&team->directions[part], buffer, n, team->sequential);
        }
    }
}

static void sums_part(Team *team, int part, int64_t first, int64_t last) {
    row_pieces(team, part, first, last, 0);
}

static void update_part(Team *team, int part, int64_t first, int64_t last) {
    row_pieces(team, part, first, last, 1);
}

static void team_factored(Team *team) {
    const Tensor *t = team->t;
    const int64_t batch = t->batch, rows = t->rows, cols = t->cols;
    float *row_factor = (float *)t->factors, *col_factor = row_factor + batch * rows;
    parallel_for(team, team->parts, 1, sums_of_rows_or_columns); /* one job a thread */
    for (int64_t b = 0; b < batch; b++)
        update_factors(team->s, rows, cols, (float *)t->row + b * rows,
                       (float *)t->col + b * cols, row_factor + b * rows, col_factor + b * cols);
    parallel_for(team, batch * rows, 8, sums_part);
    team->step = team_step(team, batch * rows * cols);
    parallel_for(team, batch * rows, 8, update_part);
}

/* Short rows. Ranges of slices for the first pass, of elements for the update. */
static void slices_part(Team *team, int part, int64_t first, int64_t last) {
    const Tensor *t = team->t;
    const int64_t size = t->rows * t->cols;
    float *w = (float *)t->param, *direction = (float *)t->factors;
    float sums[SCALED_SUMS_MAX];
    int64_t per_block = size >= CHUNK ? 1 : CHUNK / size;
    if (per_block >= 8) per_block -= per_block % 8;
    for (int64_t slice = first; slice < last; slice += per_block) {
        const int64_t count = last - slice < per_block ? last - slice : per_block;
        const int64_t at = slice * size, n = count * size;
        directions_of(team->s, t, slice, count, sums, direction + at);
        add_squares(&team->directions[part], direction + at, n, team->sequential);
        if (team->s->scale_parameter)
            add_squares(&team->weights[part], w + at, n, team->sequential);
    }
}

static void elements_part(Team *team, int part, int64_t first, int64_t last) {
    const Tensor *t = team->t;
    float *m = (float *)t->exp_avg;
    (void)part;
    apply(team->s, team->step, (const float *)t->factors + first, (float *)t->param + first,
          m == NULL ? NULL : m + first, last - first);
}

static void team_scaled(Team *team) {
    const Tensor *t = team->t;
    const int64_t numel = t->batch * t->rows * t->cols;
    parallel_for(team, t->batch, 8, slices_part);
    team->step = team_step(team, numel);
    parallel_for(team, numel, 16, elements_part);
}

/* From this many threads on, a tensor above an even share is walked by all of them. With two,
 * the list is left to the queue: on the 2-vCPU VM of bench/RESULTS.md a team of two was 1.26x
 * faster on one 50257 x 768 matrix but 0.95x on one 2048 x 512 x 3 x 3 kernel (its first pass is
 * arithmetic-bound, and two vCPUs there share one core's arithmetic). */
#ifndef TEAM_MIN_THREADS /* bench/adafactor_threads.py builds it with 2 to time a team of two */
#define TEAM_MIN_THREADS 3
#endif

/* Whether all threads should walk this tensor together (sums in float64: above one block). */
static int shared_by_all(const Tensor *t, int64_t total, int threads) {
    const int64_t numel = t->batch * t->rows * t->cols;
    return threads >= TEAM_MIN_THREADS && t->mode != MODE_FLAT && numel > RMS_SEQUENTIAL_MAX &&
           numel * threads > total;
}

/* One tensor on one thread: a team of one (no thread is started; sums in order where small). */
static void step_factored(const Tensor *t, const Scalars *s) {
    Team team = {.t = t, .s = s, .parts = 1,
                 .sequential = t->batch * t->rows * t->cols <= RMS_SEQUENTIAL_MAX};
    team_factored(&team);
}

static void step_scaled(const Tensor *t, const Scalars *s) {
    Team team = {.t = t, .s = s, .parts = 1,
                 .sequential = t->batch * t->rows * t->cols <= RMS_SEQUENTIAL_MAX};
    team_scaled(&team);
}

/* ---------------------------------------------------------------- the list, across threads */

typedef struct {
    const Tensor *tensors;
    int64_t count;
    const Scalars *scalars;
    atomic_long next;
} Work;

static void *worker(void *arg);

static void omp_worker(void *arg) { worker(arg); }

static void *worker(void *arg) {
    Work *work = arg;
    for (;;) {
        const long i = atomic_fetch_add(&work->next, 1);
        if (i >= work->count) return NULL;
        const Tensor *t = &work->tensors[i];
        if (t->mode == MODE_ROWS)
            step_factored(t, work->scalars);
        else if (t->mode == MODE_SCALED)
            step_scaled(t, work->scalars);
        else
            step_flat(t, work->scalars);
    }
}

/* Steps every tensor: those larger than an even share of the step (the first ones: the caller
 * orders them largest first) with all threads together, then the rest handed out in order to
 * `threads` threads. lr and beta2t are read from their float32 tensors; constants are eps1, eps2,
 * clip_threshold, beta1, 1 - beta1, weight_decay. gomp_parallel, omp_thread_num and
 * omp_num_threads are torch's OpenMP runtime's entry points (its workers then run the threads'
 * work: threads of our own would compete with them while they spin after a torch op), or NULL. */
void msoptim_adafactor_step(const Tensor *tensors, int64_t count, const float *lr,
                           const float *beta2t, const float *constants, int scale_parameter,
                           int threads, void *gomp_parallel, void *omp_thread_num,
                           void *omp_num_threads) {
    Scalars s;
    s.lr = *lr;
    s.beta2t = *beta2t;
    s.one_minus_beta2t = 1.0f - s.beta2t;
    s.eps1 = constants[0];
    s.eps2 = constants[1];
    s.clip_threshold = constants[2];
    s.beta1 = constants[3];
    s.one_minus_beta1 = constants[4];
    s.weight_decay = constants[5];
    s.scale_parameter = scale_parameter;
    s.gomp_parallel = omp_thread_num && omp_num_threads ? (GompParallel)gomp_parallel : NULL;
    s.thread_num = (OmpQuery)omp_thread_num;
    s.num_threads = (OmpQuery)omp_num_threads;
    if (threads > TEAM_MAX) threads = TEAM_MAX;
    int64_t total = 0, shared = 0;
    for (int64_t i = 0; i < count; i++) total += tensors[i].batch * tensors[i].rows * tensors[i].cols;
    for (; shared < count && shared_by_all(&tensors[shared], total, threads); shared++) {
        Team team = {.t = &tensors[shared], .s = &s, .parts = threads};
        if (tensors[shared].mode == MODE_ROWS)
            team_factored(&team);
        else
            team_scaled(&team);
    }
    Work work = {tensors, count, &s, shared};
    if (threads > count - shared) threads = (int)(count - shared);
    if (threads > 1 && s.gomp_parallel) {
        s.gomp_parallel(omp_worker, &work, (unsigned)threads, 0);
        return;
    }
    pthread_t helpers[64];
    int started = 0;
    for (int i = 1; i < threads && i < 64; i++)
        if (pthread_create(&helpers[started], NULL, worker, &work) == 0) started++;
    worker(&work);
    for (int i = 0; i < started; i++) pthread_join(helpers[i], NULL);
}
