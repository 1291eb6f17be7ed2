/*
 * gemv_f32.cl - llama2cl's own matrix-vector products on fp32 weights, the alternative to
 * CLBlastSgemv. w is (rows, cols) row-major; y[r] = dot(w_r, x), then the epilogue of
 * activations.cl (mode). With L2C_SWIGLU, n_out rows are written from 2 * n_out rows of w.
 *
 * Two mappings of the same product:
 *
 * gemv_f32_rows: one work-item per output row; global size n_out rounded up to a multiple of the
 *   local size. Each work-item reads its row with 16-wide vector loads into 16 partial sums
 *   (then a scalar tail), which is what CPU drivers turn into full-width SIMD: one long
 *   work-item per row keeps each core streaming one row at a time.
 * gemv_f32_wg: teams of T work-items per output row (T a power of two, 32 on GPUs: a warp), L / T
 *   rows per work-group of L; global size ceil(n_out / (L / T)) * L, local size L, L floats of
 *   local memory. Lane j of a team reads 4-wide chunks j, j + T, ..., so neighbouring
 *   work-items read neighbouring memory (coalesced on GPUs), then each team adds its T partial
 *   sums in a tree.
 */

/* dot(w, x) over cols values: 16 lanes (two 8-wide sums, the width of AVX registers), then the
 * tail in order */
float l2c_dot_f32(__global const float *w, __global const float *x, int cols)
{
    float8 acc0 = 0.0f;
    float8 acc1 = 0.0f;
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        acc0 += vload8(0, w + i) * vload8(0, x + i);
        acc1 += vload8(1, w + i) * vload8(1, x + i);
    }
    float8 a8 = acc0 + acc1;
    float4 a4 = a8.lo + a8.hi;
    float2 a2 = a4.lo + a4.hi;
    float sum = a2.x + a2.y;
    for (; i < cols; i++) {
        sum += w[i] * x[i];
    }
    return sum;
}

__kernel void gemv_f32_rows(__global float *y, ulong y_offset, __global const float *w,
                            ulong w_offset, __global const float *x, ulong x_offset, int n_out,
                            int cols, int mode)
{
    int r = get_global_id(0);
    if (r >= n_out) {
        return;
    }
    w += w_offset;
    x += x_offset;
    float value = l2c_dot_f32(w + (size_t)r * cols, x, cols);
    float gate = 0.0f;
    if (mode == L2C_SWIGLU) {
        gate = l2c_dot_f32(w + (size_t)(r + n_out) * cols, x, cols);
    }
    l2c_epilogue(y + y_offset + r, mode, value, gate);
}

/* lane j's share of dot(w, x) in a team of L: 4-wide chunks j, j + L, ..., then the tail */
float l2c_dot_f32_part(__global const float *w, __global const float *x, int cols, int j, int L)
{
    float4 acc = 0.0f;
    for (int i = 4 * j; i + 4 <= cols; i += 4 * L) {
        acc += vload4(0, w + i) * vload4(0, x + i);
    }
    float sum = (acc.x + acc.y) + (acc.z + acc.w);
    for (int tail = cols / 4 * 4 + j; tail < cols; tail += L) {
        sum += w[tail] * x[tail];
    }
    return sum;
}

__kernel void gemv_f32_wg(__global float *y, ulong y_offset, __global const float *w,
                          ulong w_offset, __global const float *x, ulong x_offset, int n_out,
                          int cols, int mode, int team, __local float *partial)
{
    int lane = get_local_id(0) & (team - 1);
    int r = get_group_id(0) * (get_local_size(0) / team) + get_local_id(0) / team;
    int live = r < n_out;
    w += w_offset;
    x += x_offset;

    /* every work-item reaches the barriers of the sums, rows past n_out with nothing to add */
    float value = live ? l2c_dot_f32_part(w + (size_t)r * cols, x, cols, lane, team) : 0.0f;
    value = l2c_team_sum(value, partial, team);
    float gate = 0.0f;
    if (mode == L2C_SWIGLU) {
        gate = live ? l2c_dot_f32_part(w + (size_t)(r + n_out) * cols, x, cols, lane, team)
                    : 0.0f;
        gate = l2c_team_sum(gate, partial, team);
    }
    if (live && lane == 0) {
        l2c_epilogue(y + y_offset + r, mode, value, gate);
    }
}
