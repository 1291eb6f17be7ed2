/*
 * gemv_f16.cl - matrix-vector products on fp16 weights (fp32 weights halved at upload) with
 * fp32 activations and fp32 sums. The halves are read with vload_half, which every OpenCL device
 * has, so no cl_khr_fp16 is needed. The mappings, arguments and epilogues are gemv_f32.cl's:
 *
 * gemv_f16_rows: one work-item per output row, 16-wide loads (a scalar tail); global size n_out
 *   rounded up to a multiple of the local size.
 * gemv_f16_wg: teams of T work-items per output row, L / T rows per work-group of L (as
 *   gemv_f32_wg); lane j reads 8-wide chunks j, j + T, ... (16 bytes each), then each team adds
 *   its partial sums; global size ceil(n_out / (L / T)) * L, local size L, L floats of local
 *   memory.
 *
 * math: y[r] = sum_i float(w[r][i]) * x[i]
 */

float l2c_dot_f16(__global const half *w, __global const float *x, int cols)
{
    float8 acc0 = 0.0f;
    float8 acc1 = 0.0f;
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        acc0 += vload_half8(0, w + i) * vload8(0, x + i);
        acc1 += vload_half8(1, w + i) * vload8(1, x + i);
    }
    float8 a8 = acc0 + acc1;
    float4 a4 = a8.lo + a8.hi;
    float2 a2 = a4.lo + a4.hi;
    float sum = a2.x + a2.y;
    for (; i < cols; i++) {
        sum += vload_half(i, w) * x[i];
    }
    return sum;
}

__kernel void gemv_f16_rows(__global float *y, ulong y_offset, __global const half *w,
                            ulong w_offset, __global const float *x, ulong x_offset, int n_out,
                            int cols, int mode)
{
    int r = get_global_id(0);
    if (r >= n_out) {
        return;
    }
    w += w_offset;
    x += x_offset;
    float value = l2c_dot_f16(w + (size_t)r * cols, x, cols);
    float gate = 0.0f;
    if (mode == L2C_SWIGLU) {
        gate = l2c_dot_f16(w + (size_t)(r + n_out) * cols, x, cols);
    }
    l2c_epilogue(y + y_offset + r, mode, value, gate);
}

float l2c_dot_f16_part(__global const half *w, __global const float *x, int cols, int j, int L)
{
    float8 acc = 0.0f;
    for (int i = 8 * j; i + 8 <= cols; i += 8 * L) {
        acc += vload_half8(0, w + i) * vload8(0, x + i);
    }
    float4 a4 = acc.lo + acc.hi;
    float sum = (a4.x + a4.y) + (a4.z + a4.w);
    for (int tail = cols / 8 * 8 + j; tail < cols; tail += L) {
        sum += vload_half(tail, w) * x[tail];
    }
    return sum;
}

__kernel void gemv_f16_wg(__global float *y, ulong y_offset, __global const half *w,
                          ulong w_offset, __global const float *x, ulong x_offset, int n_out,
                          int cols, int mode, int team, __local float *partial)
{
    int lane = get_local_id(0) & (team - 1);
    int r = get_group_id(0) * (get_local_size(0) / team) + get_local_id(0) / team;
    int live = r < n_out;
    w += w_offset;
    x += x_offset;
    float value = live ? l2c_dot_f16_part(w + (size_t)r * cols, x, cols, lane, team) : 0.0f;
    value = l2c_team_sum(value, partial, team);
    float gate = 0.0f;
    if (mode == L2C_SWIGLU) {
        gate = live ? l2c_dot_f16_part(w + (size_t)(r + n_out) * cols, x, cols, lane, team)
                    : 0.0f;
        gate = l2c_team_sum(gate, partial, team);
    }
    if (live && lane == 0) {
        l2c_epilogue(y + y_offset + r, mode, value, gate);
    }
}
