/*
 * gemv_q8.cl - matrix-vector products on Q8_0 weights (version-2 checkpoints), following
 * runq.c: the input vector is quantized to int8 per group too, each group's products are summed
 * in integers, and the sum is scaled by the two groups' scales, group after group.
 *
 * quantize_q8: one work-item per group of group_size inputs, over n_groups groups of a flat
 *   array (several tokens' rows, since group_size divides the row); global size n_groups rounded
 *   up to a multiple of the local size.
 *   math: s = max|x| / 127, q[i] = round(x[i] / s)
 * gemv_q8_rows: one work-item per output row; global size n_out rounded up to a multiple of the
 *   local size. A group whose size is a multiple of 16 is read 16 values at a time, multiplied
 *   as 16-bit integers (|q| <= 127, so each product fits) and summed as 32-bit integers.
 * gemv_q8_wg: one work-group of L work-items per output row (L a power of two); global size
 *   n_out * L, local size L, L floats of local memory. Work-item j takes the row's groups j,
 *   j + L, ..., then the work-group adds the partial sums.
 * Both take gemv_f32.cl's epilogues (mode); xq and xs hold the input as quantize_q8 left it.
 *
 * math: y[r] = sum_g (sum_{i in g} wq[r][i] * xq[i]) * ws[r][g] * xs[g]
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

/* sum_i w[i] * x[i] over one group, exact in 32-bit integers */
int l2c_group_dot_q8(__global const char *w, __global const char *x, int group_size)
{
    int sum = 0;
    if (group_size % 16 == 0) {
        int16 acc = 0;
        for (int i = 0; i < group_size; i += 16) {
            short16 product = convert_short16(vload16(0, w + i)) *
                              convert_short16(vload16(0, x + i));
            acc += convert_int16(product);
        }
        int8 a8 = acc.lo + acc.hi;
        int4 a4 = a8.lo + a8.hi;
        int2 a2 = a4.lo + a4.hi;
        sum = a2.x + a2.y;
    } else {
        for (int i = 0; i < group_size; i++) {
            sum += (int)w[i] * (int)x[i];
        }
    }
    return sum;
}

/* one row's product over its groups, in order */
float l2c_dot_q8(__global const char *wq, __global const float *ws, __global const char *xq,
                 __global const float *xs, int n_groups, int group_size)
{
    float sum = 0.0f;
    for (int g = 0; g < n_groups; g++) {
        size_t at = (size_t)g * group_size;
        int ival = l2c_group_dot_q8(wq + at, xq + at, group_size);
        sum += (float)ival * ws[g] * xs[g];
    }
    return sum;
}

__kernel void gemv_q8_rows(__global float *y, ulong y_offset, __global const char *wq,
                           ulong wq_offset, __global const float *ws, ulong ws_offset,
                           __global const char *xq, __global const float *xs, int n_out,
                           int cols, int group_size, int mode)
{
    int r = get_global_id(0);
    if (r >= n_out) {
        return;
    }
    int n_groups = cols / group_size;
    wq += wq_offset;
    ws += ws_offset;
    float value = l2c_dot_q8(wq + (size_t)r * cols, ws + (size_t)r * n_groups, xq, xs,
                             n_groups, group_size);
    float gate = 0.0f;
    if (mode == L2C_SWIGLU) {
        int g = r + n_out;
        gate = l2c_dot_q8(wq + (size_t)g * cols, ws + (size_t)g * n_groups, xq, xs, n_groups,
                          group_size);
    }
    l2c_epilogue(y + y_offset + r, mode, value, gate);
}

/* work-item j's share of one row: groups j, j + L, ... */
float l2c_dot_q8_part(__global const char *wq, __global const float *ws,
                      __global const char *xq, __global const float *xs, int n_groups,
                      int group_size, int j, int L)
{
    float sum = 0.0f;
    for (int g = j; g < n_groups; g += L) {
        size_t at = (size_t)g * group_size;
        int ival = l2c_group_dot_q8(wq + at, xq + at, group_size);
        sum += (float)ival * ws[g] * xs[g];
    }
    return sum;
}

__kernel void gemv_q8_wg(__global float *y, ulong y_offset, __global const char *wq,
                         ulong wq_offset, __global const float *ws, ulong ws_offset,
                         __global const char *xq, __global const float *xs, int n_out,
                         int cols, int group_size, int mode, __local float *partial)
{
    int r = get_group_id(0);
    int j = get_local_id(0);
    int L = get_local_size(0);
    int n_groups = cols / group_size;
    wq += wq_offset;
    ws += ws_offset;
    float value = l2c_group_sum(l2c_dot_q8_part(wq + (size_t)r * cols, ws + (size_t)r * n_groups,
                                                xq, xs, n_groups, group_size, j, L), partial);
    float gate = 0.0f;
    if (mode == L2C_SWIGLU) {
        int g = r + n_out;
        gate = l2c_group_sum(l2c_dot_q8_part(wq + (size_t)g * cols, ws + (size_t)g * n_groups,
                                             xq, xs, n_groups, group_size, j, L), partial);
    }
    if (j == 0) {
        l2c_epilogue(y + y_offset + r, mode, value, gate);
    }
}
