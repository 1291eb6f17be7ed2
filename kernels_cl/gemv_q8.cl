/*
 * gemv_q8.cl - matrix-vector products on Q8_0 weights (version-2 checkpoints), following
 * runq.c: the input vector is quantized to int8 per group too, each group's products are summed
 * in integers, and the sum is scaled by the two groups' scales, group after group.
 *
 * quantize_q8: one work-item per group of group_size inputs, over n_groups groups of a flat
 *   array; global size n_groups rounded up to a multiple of the local size. The int8 values are
 *   stored as floats: CPU devices convert the weights' int8 to fp32 and multiply-add in fp32
 *   faster than they widen both sides to integers, and the sums stay exact (see below).
 *   math: s = max|x| / 127, q[i] = round(x[i] / s)
 * gemv_q8_rows: one work-item per output row; global size n_out rounded up to a multiple of the
 *   local size. A group whose size is a multiple of 16 is read 16 values at a time.
 * gemv_q8_wg: teams of T work-items per output row, L / T rows per work-group of L (as
 *   gemv_f32_wg); lane j takes the row's groups j, j + T, ..., then each team adds its partial
 *   sums; global size ceil(n_out / (L / T)) * L, local size L, L floats of local memory.
 * Both take gemv_f32.cl's epilogues (mode); xq and xs hold the input as quantize_q8 left it.
 *
 * math: y[r] = sum_g (sum_{i in g} wq[r][i] * xq[i]) * ws[r][g] * xs[g]
 */

__kernel void quantize_q8(__global float *xq, __global float *xs, __global const float *x,
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
        xq[(size_t)g * group_size + i] = (float)(char)round(xg[i] / scale);
    }
}

/* sum_i w[i] * x[i] over one group. The products of int8 values (at most 127 * 127) and their
 * sums over a group of up to 1024 stay below 2^24, so fp32 holds every partial sum exactly, in any
 * order: the result is the integer runq.c computes (larger groups round like any fp32 sum). */
float l2c_group_dot_q8(__global const char *w, __global const float *x, int group_size)
{
    float sum = 0.0f;
    if (group_size % 16 == 0) {
        float8 acc0 = 0.0f;
        float8 acc1 = 0.0f;
        for (int i = 0; i < group_size; i += 16) {
            acc0 += convert_float8(vload8(0, w + i)) * vload8(0, x + i);
            acc1 += convert_float8(vload8(1, w + i)) * vload8(1, x + i);
        }
        float8 a8 = acc0 + acc1;
        float4 a4 = a8.lo + a8.hi;
        float2 a2 = a4.lo + a4.hi;
        sum = a2.x + a2.y;
    } else {
        for (int i = 0; i < group_size; i++) {
            sum += (float)w[i] * x[i];
        }
    }
    return sum;
}

/* one row's product over its groups, in order */
float l2c_dot_q8(__global const char *wq, __global const float *ws, __global const float *xq,
                 __global const float *xs, int n_groups, int group_size)
{
    float sum = 0.0f;
    for (int g = 0; g < n_groups; g++) {
        size_t at = (size_t)g * group_size;
        float ival = l2c_group_dot_q8(wq + at, xq + at, group_size);
        sum += ival * ws[g] * xs[g];
    }
    return sum;
}

__kernel void gemv_q8_rows(__global float *y, ulong y_offset, __global const char *wq,
                           ulong wq_offset, __global const float *ws, ulong ws_offset,
                           __global const float *xq, __global const float *xs, int n_out,
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

/* lane j's share of one row in a team of L: groups j, j + L, ... */
float l2c_dot_q8_part(__global const char *wq, __global const float *ws,
                      __global const float *xq, __global const float *xs, int n_groups,
                      int group_size, int j, int L)
{
    float sum = 0.0f;
    for (int g = j; g < n_groups; g += L) {
        size_t at = (size_t)g * group_size;
        float ival = l2c_group_dot_q8(wq + at, xq + at, group_size);
        sum += ival * ws[g] * xs[g];
    }
    return sum;
}

__kernel void gemv_q8_wg(__global float *y, ulong y_offset, __global const char *wq,
                         ulong wq_offset, __global const float *ws, ulong ws_offset,
                         __global const float *xq, __global const float *xs, int n_out,
                         int cols, int group_size, int mode, int team, __local float *partial)
{
    int lane = get_local_id(0) & (team - 1);
    int r = get_group_id(0) * (get_local_size(0) / team) + get_local_id(0) / team;
    int live = r < n_out;
    int n_groups = cols / group_size;
    wq += wq_offset;
    ws += ws_offset;
    float value = live ? l2c_dot_q8_part(wq + (size_t)r * cols, ws + (size_t)r * n_groups, xq,
                                         xs, n_groups, group_size, lane, team)
                       : 0.0f;
    value = l2c_team_sum(value, partial, team);
    float gate = 0.0f;
    if (mode == L2C_SWIGLU) {
        int g = r + n_out;
        gate = live ? l2c_dot_q8_part(wq + (size_t)g * cols, ws + (size_t)g * n_groups, xq, xs,
                                      n_groups, group_size, lane, team)
                    : 0.0f;
        gate = l2c_team_sum(gate, partial, team);
    }
    if (live && lane == 0) {
        l2c_epilogue(y + y_offset + r, mode, value, gate);
    }
}
