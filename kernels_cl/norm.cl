/*
 * norm.cl - RMSNorm of a batch of token rows, alone or fused with the int8 quantization that
 * Q8_0 products need next.
 *
 * rmsnorm: one work-group of L work-items per token (L a power of two); global size
 *   (L, n_tokens), local size (L, 1), L floats of local memory. Work-item j sums the squares of
 *   elements j, j + L, ... of its token's row, the work-group adds the partial sums, then every
 *   work-item scales its own elements. out may be x itself: each element is read and written by
 *   the same work-item after the barrier. Rows are size floats apart, from the offsets.
 *   math: out[i] = weight[i] * (x[i] / sqrt(sum(x^2) / size + 1e-5))
 * rmsnorm_q8: the same mapping and sum of squares, then work-item j quantizes groups j, j + L,
 *   ... of the normalized row as quantize_q8 does (int8 values stored as floats), writing only
 *   xq and xs (token t's values at t * size and its scales at t * size / group_size).
 */

/* 1 / sqrt(mean of the squares + 1e-5) of the row, as run.c computes it */
float l2c_rms_scale(__global const float *x, int size, __local float *partial)
{
    int j = get_local_id(0);
    int L = get_local_size(0);
    float sum = 0.0f;
    for (int i = j; i < size; i += L) {
        sum += x[i] * x[i];
    }
    float ss = l2c_group_sum(sum, partial) / (float)size;
    ss += 1e-5f;
    return 1.0f / sqrt(ss);
}

__kernel void rmsnorm(__global float *out, ulong out_offset, __global const float *x,
                      ulong x_offset, __global const float *weight, ulong weight_offset,
                      int size, __local float *partial)
{
    int j = get_local_id(0);
    int L = get_local_size(0);
    size_t row = (size_t)get_group_id(1) * size;
    x += x_offset + row;
    out += out_offset + row;
    weight += weight_offset;

    /* normalize and scale */
    float ss = l2c_rms_scale(x, size, partial);
    for (int i = j; i < size; i += L) {
        out[i] = weight[i] * (ss * x[i]);
    }
}

__kernel void rmsnorm_q8(__global float *xq, __global float *xs, __global const float *x,
                         ulong x_offset, __global const float *weight, ulong weight_offset,
                         int size, int group_size, __local float *partial)
{
    int j = get_local_id(0);
    int L = get_local_size(0);
    int t = get_group_id(1);
    int n_groups = size / group_size;
    x += x_offset + (size_t)t * size;
    xq += (size_t)t * size;
    xs += (size_t)t * n_groups;
    weight += weight_offset;

    /* the row's scale, then each group: its largest normalized value, its int8 values */
    float ss = l2c_rms_scale(x, size, partial);
    for (int g = j; g < n_groups; g += L) {
        int at = g * group_size;
        float wmax = 0.0f;
        for (int i = at; i < at + group_size; i++) {
            wmax = fmax(wmax, fabs(weight[i] * (ss * x[i])));
        }
        float scale = wmax / 127.0f;
        xs[g] = scale;
        for (int i = at; i < at + group_size; i++) {
            xq[i] = (float)(char)round(weight[i] * (ss * x[i]) / scale);
        }
    }
}
