/*
 * cpu_matmul.h - the CPU backend's matrix products: one activation vector at a time (decoding)
 * and a batch of them (the prompt), for fp32 and Q8_0 weights.
 *
 * Weights are (d, n) row-major: d output rows of n inputs. Every function splits the rows over
 * the OpenMP threads itself when the product is large enough, so it is called from serial code.
 * Each output is computed in an order that depends only on n, never on the thread count or on
 * the rows around it, so the batched Q8_0 product gives bit for bit what the one-vector product
 * gives.
 */
#ifndef L2C_CPU_MATMUL_H
#define L2C_CPU_MATMUL_H

#include <stdint.h>

/* Products of fewer multiply-adds than this run on the calling thread alone: waking the other
 * threads and meeting them at the end costs more than they would save (and far more when other
 * processes keep the cores busy). */
#define CPU_PARALLEL_WORK (1u << 14)

/* Activations in Q8_0: n int8 values and one scale per group of group_size. */
typedef struct {
    int8_t *q;
    float  *s;
} cpu_q8_vector;

/* xout (d) = W (d, n) @ x (n) */
void cpu_matmul_f32(float *xout, const float *x, const float *w, int n, int d);

/* out (n_tokens, d, rows ldo apart) = x (n_tokens, n) @ W (d, n)^T: through cblas_sgemm when the
 * build has a BLAS, else a blocked loop that reads each weight row once per batch. The sums are
 * ordered differently from cpu_matmul_f32's. */
void cpu_matmul_f32_batch(float *out, int ldo, const float *x, const float *w, int n, int d,
                          int n_tokens);

/* Quantizes x (n) into groups of group_size as runq.c does: scale = max|x| / 127,
 * q = round(x / scale), and q = 0 for a group of zeros. */
void cpu_quantize_q8(cpu_q8_vector *xq, const float *x, int n, int group_size);

/* xout (d) = W (d, n) @ x (n), both Q8_0: an exact integer sum per group, then the groups' sums
 * times both scales added in order, which is runq.c's arithmetic. */
void cpu_matmul_q8(float *xout, const cpu_q8_vector *x, const int8_t *wq, const float *ws,
                   int n, int d, int group_size);

/* out (n_tokens, d, rows ldo apart) = x (n_tokens quantized rows of n) @ W (d, n)^T, each output
 * equal to what cpu_matmul_q8 gives for that token. x[t] is token t's vector. */
void cpu_matmul_q8_batch(float *out, int ldo, const cpu_q8_vector *x, const int8_t *wq,
                         const float *ws, int n, int d, int group_size, int n_tokens);

/* "OpenBLAS 0.3.21" or "no BLAS": what cpu_matmul_f32_batch runs on (may end in spaces). */
const char *cpu_blas_name(void);

#endif /* L2C_CPU_MATMUL_H */
