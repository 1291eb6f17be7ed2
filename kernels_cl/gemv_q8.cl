/*
 * gemv_q8.cl - matrix-vector products on Q8_0 weights (version-2 checkpoints), following
 * runq.c: the input vector is quantized to int8 per group too, each group's products are summed
 * in integers, and the sum is scaled by the two groups' scales.
 *
 * quantize_q8: one work-item per group of group_size inputs; global size n / group_size
 *   rounded up to a multiple of the local size (work-items past the last group do nothing).
 *   math: s = max|x| / 127, q[i] = round(x[i] / s)
 * gemv_q8: one work-group of L work-items per output row (L a power of two, at most 64: a row
 *   of Llama 2 7B holds 64 groups of 64); global size rows * L, local size L, L floats of local
 *   memory. Work-item j takes the row's groups j, j + L, ..., then the work-group adds the
 *   partial sums.
 *   math: y[r] = sum_g (sum_{i in g} wq[r][i] * xq[i]) * ws[r][g] * xs[g]
 */

__kernel void quantize_q8(__global char *xq, __global float *xs, __global const float *x,
                          int n_groups, int group_size)
{
    int g = get_global_id(0);
    if (g >= n_groups) {
        return;
    }
    __global const float *xg = x + (size_t)g * group_size;

    /* the group's scale */
    float wmax = 0.0f;
    for (int i = 0; i < group_size; i++) {
        wmax = fmax(wmax, fabs(xg[i]));
    }
    float scale = wmax / 127.0f;
    xs[g] = scale;

    /* the rounded int8 values */
    for (int i = 0; i < group_size; i++) {
        xq[(size_t)g * group_size + i] = (char)round(xg[i] / scale);
    }
}

__kernel void gemv_q8(__global float *y, ulong y_offset, __global const char *wq,
                      ulong wq_offset, __global const float *ws, ulong ws_offset,
                      __global const char *xq, __global const float *xs, int cols,
                      int group_size, __local float *partial)
{
    int row = get_group_id(0);
    int j = get_local_id(0);
    int L = get_local_size(0);
    int n_groups = cols / group_size;
    __global const char *w_row = wq + wq_offset + (size_t)row * cols;
    __global const float *s_row = ws + ws_offset + (size_t)row * n_groups;

    /* this work-item's groups: integer dot products, scaled */
    float sum = 0.0f;
    for (int g = j; g < n_groups; g += L) {
        int ival = 0;
        for (int i = g * group_size; i < (g + 1) * group_size; i++) {
            ival += (int)xq[i] * (int)w_row[i];
        }
        sum += (float)ival * s_row[g] * xs[g];
    }

    /* the work-group's sum */
    partial[j] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = L / 2; stride > 0; stride /= 2) {
        if (j < stride) {
            partial[j] += partial[j + stride];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (j == 0) {
        y[y_offset + row] = partial[0];
    }
}
