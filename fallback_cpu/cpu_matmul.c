/*
 * cpu_matmul.c - matrix products for the CPU backend.
 *
 * Decoding reads every weight once per token, so the one-vector products are bound by memory
 * bandwidth: each thread streams a contiguous band of rows with independent accumulators that
 * hide the add latency. The batched products keep a band of rows in cache while every token of
 * the prompt passes over it.
 *
 * With AVX2 and FMA the kernels use intrinsics; elsewhere plain loops in the same order that the
 * compiler vectorises.
 */
#include <math.h>
#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef L2C_HAVE_BLAS
#include <cblas.h>
#endif
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define CPU_AVX2 1
#endif

#include "cpu_matmul.h"

/* rows handled together by the Q8_0 kernels and the batched loops */
#define ROWS 4

/* ------------------------------------------------------------------------------------------------
 * fp32 dot products
 *
 * A row's sum runs in 32 lanes (lane k takes the elements j with j % 32 == k, in four vectors of
 * 8 that hide the add latency), then in the first 8 lanes for the remaining multiples of 8; the
 * four vectors are added pairwise, their 8 lanes pairwise, then the n % 8 last elements follow in
 * order. One row at a time keeps one sequential stream per thread for the hardware prefetchers,
 * which measured faster than sharing each load of x between several rows.
 */

#ifdef CPU_AVX2

static inline float hsum_f32x8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float dot_f32(const float *w, const float *x, int n) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 8), _mm256_loadu_ps(x + j + 8), a1);
        a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 16), _mm256_loadu_ps(x + j + 16), a2);
        a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j + 24), _mm256_loadu_ps(x + j + 24), a3);
    }
    for (; j + 8 <= n; j += 8) {
        a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w + j), _mm256_loadu_ps(x + j), a0);
    }
    float s = hsum_f32x8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    for (; j < n; j++) {
        s += w[j] * x[j];
    }
    return s;
}

#else /* portable */

static inline float dot_f32(const float *w, const float *x, int n) {
    float a[32] = {0};
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        for (int k = 0; k < 32; k++) {
            a[k] += w[j + k] * x[j + k];
        }
    }
    for (; j + 8 <= n; j += 8) {
        for (int k = 0; k < 8; k++) {
            a[k] += w[j + k] * x[j + k];
        }
    }
    float v[8];
    for (int k = 0; k < 8; k++) {
        v[k] = (a[k] + a[k + 8]) + (a[k + 16] + a[k + 24]);
    }
    float s = ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
    for (; j < n; j++) {
        s += w[j] * x[j];
    }
    return s;
}

#endif

/* ------------------------------------------------------------------------------------------------
 * fp32 products
 */

void cpu_matmul_f32(float *xout, const float *x, const float *w, int n, int d) {
    #pragma omp parallel for schedule(static) if ((size_t)n * d >= CPU_PARALLEL_WORK)
    for (int i = 0; i < d; i++) {
        xout[i] = dot_f32(w + (size_t)i * n, x, n);
    }
}

#ifndef L2C_HAVE_BLAS

/* without a BLAS: a band of rows stays in cache while each token's vector meets it */
static void matmul_f32_batch_loop(float *out, int ldo, const float *x, const float *w, int n,
                                  int d, int n_tokens) {
    int blocks = (d + ROWS - 1) / ROWS;
    #pragma omp parallel for schedule(static) if ((size_t)n * d * n_tokens >= CPU_PARALLEL_WORK)
    for (int b = 0; b < blocks; b++) {
        for (int t = 0; t < n_tokens; t++) {
            for (int i = b * ROWS; i < d && i < (b + 1) * ROWS; i++) {
                out[(size_t)t * ldo + i] = dot_f32(w + (size_t)i * n, x + (size_t)t * n, n);
            }
        }
    }
}

#endif

void cpu_matmul_f32_batch(float *out, int ldo, const float *x, const float *w, int n, int d,
                          int n_tokens) {
#ifdef L2C_HAVE_BLAS
    /* one BLAS call per OpenMP thread on its band of rows, the BLAS itself single-threaded: its
     * own threads would spin beside OpenMP's and take turns with them on the cores */
#ifdef OPENBLAS_VERSION
    openblas_set_num_threads(1);
#endif
    int blocks = (d + ROWS - 1) / ROWS;
    #pragma omp parallel if ((size_t)n * d * n_tokens >= CPU_PARALLEL_WORK)
    {
        int threads = 1, thread = 0;
#ifdef _OPENMP
        threads = omp_get_num_threads();
        thread = omp_get_thread_num();
#endif
        int first = blocks * thread / threads * ROWS;
        int last = blocks * (thread + 1) / threads * ROWS;
        if (last > d) last = d;
        if (last > first) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n_tokens, last - first, n, 1.0f,
                        x, n, w + (size_t)first * n, n, 0.0f, out + first, ldo);
        }
    }
#else
    matmul_f32_batch_loop(out, ldo, x, w, n, d, n_tokens);
#endif
}

const char *cpu_blas_name(void) {
#if defined(L2C_HAVE_BLAS) && defined(OPENBLAS_VERSION)
    return OPENBLAS_VERSION[0] == ' ' ? &OPENBLAS_VERSION[1] : OPENBLAS_VERSION;
#elif defined(L2C_HAVE_BLAS)
    return "BLAS";
#else
    return "no BLAS";
#endif
}

/* ------------------------------------------------------------------------------------------------
 * Q8_0
 *
 * A Q8_0 row is short (dim bytes), too short for the hardware prefetchers to ramp up before the
 * next block of rows starts, so the one-vector product asks for the rows PREFETCH_BLOCKS blocks
 * ahead itself (25% faster on a 2-core AMD EPYC, while the fp32 product gains nothing).
 */

#define PREFETCH_BLOCKS 4

static inline void prefetch(const void *p, size_t bytes) {
    for (size_t at = 0; at < bytes; at += 64) {
        __builtin_prefetch((const char *)p + at, 0, 0);
    }
}

void cpu_quantize_q8(cpu_q8_vector *xq, const float *x, int n, int group_size) {
    for (int group = 0; group < n / group_size; group++) {
        const float *xg = x + (size_t)group * group_size;
        int8_t *q = xq->q + (size_t)group * group_size;
        float wmax = 0.0f;
        for (int i = 0; i < group_size; i++) {
            float val = fabsf(xg[i]);
            if (val > wmax) wmax = val;
        }
        float scale = wmax / 127.0f;
        xq->s[group] = scale;
        for (int i = 0; i < group_size; i++) {
            /* clamped, since a NaN, an infinity or a subnormal scale from a corrupt file would
             * put x / scale outside int8 (an undefined conversion) */
            float r = scale > 0.0f ? roundf(xg[i] / scale) : 0.0f;
            q[i] = r > 127.0f ? 127 : r < -127.0f ? -127 : r == r ? (int8_t)r : 0;
        }
    }
}

/* One row in plain C: integer sums per group, each scaled and added in order. */
static inline float dot_row_q8(const int8_t *xq, const float *xs, const int8_t *wq,
                               const float *ws, int n, int gs) {
    float val = 0.0f;
    for (int j = 0, g = 0; j < n; j += gs, g++) {
        int32_t ival = 0;
        #pragma omp simd reduction(+:ival)
        for (int k = 0; k < gs; k++) {
            ival += (int32_t)xq[j + k] * (int32_t)wq[j + k];
        }
        val += (float)ival * ws[g] * xs[g];
    }
    return val;
}

#ifdef CPU_AVX2

/* 32 products w * x summed in pairs into 8 int32: |w| times x with w's sign, which stays within
 * int16 for x in [-127, 127] (the quantizer's range) and any w */
static inline __m256i dot32_q8(const int8_t *w, const int8_t *x) {
    __m256i wv = _mm256_loadu_si256((const __m256i *)w);
    __m256i xv = _mm256_loadu_si256((const __m256i *)x);
    __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

/* ROWS rows whose group size is a multiple of 32: the four rows' group sums are reduced
 * together, then scaled and added per row in group order, as dot_row_q8 does */
static inline void dot_rows4_q8_avx2(float *xout, const int8_t *xq, const float *xs,
                                     const int8_t *wq, const float *ws, int n, int gs) {
    const int8_t *w0 = wq, *w1 = wq + n, *w2 = wq + 2 * (size_t)n, *w3 = wq + 3 * (size_t)n;
    int groups = n / gs;
    const float *s0 = ws, *s1 = ws + groups, *s2 = ws + 2 * groups, *s3 = ws + 3 * groups;
    __m128 val = _mm_setzero_ps();
    for (int j = 0, g = 0; j < n; j += gs, g++) {
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        for (int k = j; k < j + gs; k += 32) {
            a0 = _mm256_add_epi32(a0, dot32_q8(w0 + k, xq + k));
            a1 = _mm256_add_epi32(a1, dot32_q8(w1 + k, xq + k));
            a2 = _mm256_add_epi32(a2, dot32_q8(w2 + k, xq + k));
            a3 = _mm256_add_epi32(a3, dot32_q8(w3 + k, xq + k));
        }
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
        __m128i ival = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        __m128 scaled = _mm_mul_ps(_mm_cvtepi32_ps(ival), _mm_setr_ps(s0[g], s1[g], s2[g], s3[g]));
        val = _mm_add_ps(val, _mm_mul_ps(scaled, _mm_set1_ps(xs[g])));
    }
    _mm_storeu_ps(xout, val);
}

/* the same for two vectors x and y at once, each weight loaded once for both: out_x and out_y
 * get what dot_rows4_q8_avx2 gives for each */
static inline void dot_rows4_q8x2_avx2(float *out_x, float *out_y, const cpu_q8_vector *x,
                                       const cpu_q8_vector *y, const int8_t *wq, const float *ws,
                                       int n, int gs) {
    const int8_t *w[ROWS] = {wq, wq + n, wq + 2 * (size_t)n, wq + 3 * (size_t)n};
    int groups = n / gs;
    const float *s0 = ws, *s1 = ws + groups, *s2 = ws + 2 * groups, *s3 = ws + 3 * groups;
    const __m256i ones = _mm256_set1_epi16(1);
    __m128 val_x = _mm_setzero_ps(), val_y = _mm_setzero_ps();
    for (int j = 0, g = 0; j < n; j += gs, g++) {
        __m256i ax[ROWS], ay[ROWS];
        for (int r = 0; r < ROWS; r++) {
            ax[r] = _mm256_setzero_si256();
            ay[r] = _mm256_setzero_si256();
        }
        for (int k = j; k < j + gs; k += 32) {
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x->q + k));
            __m256i yv = _mm256_loadu_si256((const __m256i *)(y->q + k));
            for (int r = 0; r < ROWS; r++) {
                __m256i wv = _mm256_loadu_si256((const __m256i *)(w[r] + k));
                __m256i magnitude = _mm256_abs_epi8(wv);
                __m256i px = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(xv, wv));
                __m256i py = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(yv, wv));
                ax[r] = _mm256_add_epi32(ax[r], _mm256_madd_epi16(px, ones));
                ay[r] = _mm256_add_epi32(ay[r], _mm256_madd_epi16(py, ones));
            }
        }
        __m128 scales = _mm_setr_ps(s0[g], s1[g], s2[g], s3[g]);
        __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(ax[0], ax[1]),
                                      _mm256_hadd_epi32(ax[2], ax[3]));
        __m128i ival = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        __m128 scaled = _mm_mul_ps(_mm_cvtepi32_ps(ival), scales);
        val_x = _mm_add_ps(val_x, _mm_mul_ps(scaled, _mm_set1_ps(x->s[g])));
        h = _mm256_hadd_epi32(_mm256_hadd_epi32(ay[0], ay[1]), _mm256_hadd_epi32(ay[2], ay[3]));
        ival = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
        scaled = _mm_mul_ps(_mm_cvtepi32_ps(ival), scales);
        val_y = _mm_add_ps(val_y, _mm_mul_ps(scaled, _mm_set1_ps(y->s[g])));
    }
    _mm_storeu_ps(out_x, val_x);
    _mm_storeu_ps(out_y, val_y);
}

#endif

/* xout[0 .. rows) = W[0 .. rows) @ x, rows <= ROWS */
static inline void dot_rows_q8(float *xout, const int8_t *xq, const float *xs, const int8_t *wq,
                               const float *ws, int n, int gs, int rows) {
    int groups = n / gs;
#ifdef CPU_AVX2
    if (rows == ROWS && gs % 32 == 0) {
        dot_rows4_q8_avx2(xout, xq, xs, wq, ws, n, gs);
        return;
    }
#endif
    for (int r = 0; r < rows; r++) {
        xout[r] = dot_row_q8(xq, xs, wq + (size_t)r * n, ws + (size_t)r * groups, n, gs);
    }
}

void cpu_matmul_q8(float *xout, const cpu_q8_vector *x, const int8_t *wq, const float *ws,
                   int n, int d, int group_size) {
    int blocks = (d + ROWS - 1) / ROWS;
    int groups = n / group_size;
    #pragma omp parallel for schedule(static) if ((size_t)n * d >= CPU_PARALLEL_WORK)
    for (int b = 0; b < blocks; b++) {
        int i = b * ROWS;
        int rows = d - i < ROWS ? d - i : ROWS;
        if (b + PREFETCH_BLOCKS < blocks) {
            size_t ahead = (size_t)i + PREFETCH_BLOCKS * ROWS;
            prefetch(wq + ahead * n, (size_t)ROWS * n);
            prefetch(ws + ahead * groups, (size_t)ROWS * groups * sizeof(float));
        }
        dot_rows_q8(xout + i, x->q, x->s, wq + (size_t)i * n, ws + (size_t)i * groups, n,
                    group_size, rows);
    }
}

/* TODO: each output still gets its own horizontal sum per group, so this runs a 128-token prompt
 * at about 3 to 4 times the Q8_0 decoding speed, slower than the fp32 prompt through the BLAS;
 * wider register tiles (more rows and tokens per pass) would cut that overhead. */
void cpu_matmul_q8_batch(float *out, int ldo, const cpu_q8_vector *x, const int8_t *wq,
                         const float *ws, int n, int d, int group_size, int n_tokens) {
    int blocks = (d + ROWS - 1) / ROWS;
    int groups = n / group_size;
    #pragma omp parallel for schedule(static) if ((size_t)n * d * n_tokens >= CPU_PARALLEL_WORK)
    for (int b = 0; b < blocks; b++) {
        int i = b * ROWS;
        int rows = d - i < ROWS ? d - i : ROWS;
        int t = 0;
#ifdef CPU_AVX2
        if (rows == ROWS && group_size % 32 == 0) {
            for (; t + 2 <= n_tokens; t += 2) {
                dot_rows4_q8x2_avx2(out + (size_t)t * ldo + i, out + (size_t)(t + 1) * ldo + i,
                                    &x[t], &x[t + 1], wq + (size_t)i * n,
                                    ws + (size_t)i * groups, n, group_size);
            }
        }
#endif
        for (; t < n_tokens; t++) {
            dot_rows_q8(out + (size_t)t * ldo + i, x[t].q, x[t].s, wq + (size_t)i * n,
                        ws + (size_t)i * groups, n, group_size, rows);
        }
    }
}
