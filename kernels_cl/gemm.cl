/*
 * gemm.cl - the products of a batch of tokens (prompt processing): llama2cl's own fp32 matrix
 * product, the alternative to CLBlastSgemm, and the conversions that let fp16 and Q8_0 weights
 * use the fp32 products.
 *
 * gemm_f32: y (n_tokens, n_out) = x (n_tokens, cols) times w (n_out, cols) transposed, all
 *   row-major, then the epilogue of activations.cl (L2C_STORE or L2C_ACCUMULATE). One work-item
 *   computes 2 output rows for 6 tokens: each 8-wide chunk of the two weight rows is loaded once
 *   and multiplied into the 6 tokens' sums, and each token's chunk into both rows' sums, so the
 *   weights are read once per 6 tokens and the activations once per 2 rows. Global size
 *   (ceil(n_out / 2), ceil(n_tokens / 6)) each rounded up to a multiple of the local size
 *   (L0, L1); work-items past either end do nothing.
 *   math: y[t][r] = sum_i w[r][i] * x[t][i]
 * dequantize_q8: one work-item per group of a Q8_0 matrix; writes its fp32 values.
 *   math: out[i] = q[i] * s[i / group_size]
 * dequantize_f16: one work-item per 8 values of an fp16 matrix (then the tail); writes fp32.
 * requantize_q8: one work-item per group of a flat array of activations; replaces each value by
 *   what runq.c's quantization keeps of it, so that a product with dequantized weights computes
 *   the sums of gemv_q8 (in another order of fp32 additions).
 *   math: s = max|x| / 127, x[i] = round(x[i] / s) * s
 */

#define L2C_GEMM_ROWS   2
#define L2C_GEMM_TOKENS 6

__kernel void gemm_f32(__global float *y, __global const float *w, ulong w_offset,
                       __global const float *x, int n_out, int cols, int n_tokens, int mode)
{
    int r = get_global_id(0) * L2C_GEMM_ROWS;
    int t0 = get_global_id(1) * L2C_GEMM_TOKENS;
    if (r >= n_out || t0 >= n_tokens) {
        return;
    }

    /* the 2 weight rows and the 6 tokens' rows; past the last, the last one (read, never
     * written) */
    __global const float *w0 = w + w_offset + (size_t)r * cols;
    __global const float *w1 = w + w_offset + (size_t)min(r + 1, n_out - 1) * cols;
    __global const float *x_row[L2C_GEMM_TOKENS];
#pragma unroll
    for (int k = 0; k < L2C_GEMM_TOKENS; k++) {
        x_row[k] = x + (size_t)min(t0 + k, n_tokens - 1) * cols;
    }

    /* 8-wide chunks into 12 sums of 8 lanes (unrolled, so that the 12 sums, the 2 weight chunks
     * and a token's chunk fill the 16 registers of AVX2 without spilling) */
    float8 acc0[L2C_GEMM_TOKENS], acc1[L2C_GEMM_TOKENS];
#pragma unroll
    for (int k = 0; k < L2C_GEMM_TOKENS; k++) {
        acc0[k] = 0.0f;
        acc1[k] = 0.0f;
    }
    int i = 0;
    for (; i + 8 <= cols; i += 8) {
        float8 u = vload8(0, w0 + i);
        float8 v = vload8(0, w1 + i);
#pragma unroll
        for (int k = 0; k < L2C_GEMM_TOKENS; k++) {
            float8 xv = vload8(0, x_row[k] + i);
            acc0[k] += u * xv;
            acc1[k] += v * xv;
        }
    }

    /* the lanes' sums, the tail, and the epilogue */
#pragma unroll
    for (int k = 0; k < L2C_GEMM_TOKENS; k++) {
        float4 a4 = acc0[k].lo + acc0[k].hi;
        float4 b4 = acc1[k].lo + acc1[k].hi;
        float sum0 = (a4.x + a4.y) + (a4.z + a4.w);
        float sum1 = (b4.x + b4.y) + (b4.z + b4.w);
        for (int tail = i; tail < cols; tail++) {
            sum0 += w0[tail] * x_row[k][tail];
            sum1 += w1[tail] * x_row[k][tail];
        }
        if (t0 + k < n_tokens) {
            __global float *y_row = y + (size_t)(t0 + k) * n_out;
            l2c_epilogue(y_row + r, mode, sum0, 0.0f);
            if (r + 1 < n_out) {
                l2c_epilogue(y_row + r + 1, mode, sum1, 0.0f);
            }
        }
    }
}

__kernel void dequantize_q8(__global float *out, __global const char *q, ulong q_offset,
                            __global const float *s, ulong s_offset, int n_groups,
                            int group_size)
{
    int g = get_global_id(0);
    if (g >= n_groups) {
        return;
    }
    size_t at = (size_t)g * group_size;
    float scale = s[s_offset + g];
    q += q_offset + at;
    out += at;
    int i = 0;
    for (; i + 8 <= group_size; i += 8) {
        vstore8(convert_float8(vload8(0, q + i)) * scale, 0, out + i);
    }
    for (; i < group_size; i++) {
        out[i] = (float)q[i] * scale;
    }
}

__kernel void dequantize_f16(__global float *out, __global const half *w, ulong w_offset,
                             ulong count)
{
    size_t i = get_global_id(0) * 8;
    if (i + 8 <= count) {
        vstore8(vload_half8(0, w + w_offset + i), 0, out + i);
    } else {
        for (; i < count; i++) {
            out[i] = vload_half(w_offset + i, w);
        }
    }
}

__kernel void requantize_q8(__global float *x, int n_groups, int group_size)
{
    int g = get_global_id(0);
    if (g >= n_groups) {
        return;
    }
    __global float *xg = x + (size_t)g * group_size;
    float wmax = 0.0f;
    for (int i = 0; i < group_size; i++) {
        wmax = fmax(wmax, fabs(xg[i]));
    }
    float scale = wmax / 127.0f;
    for (int i = 0; i < group_size; i++) {
        xg[i] = (float)(char)round(xg[i] / scale) * scale;
    }
}
