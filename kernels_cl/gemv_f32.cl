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
 * gemv_f32_wg: one work-group of L work-items per output row (L a power of two); global size
 *   n_out * L, local size L, L floats of local memory. Work-item j reads 4-wide chunks j,
 *   j + L, ..., so neighbouring work-items read neighbouring memory (coalesced on GPUs), then
 *   the work-group adds its L partial sums in a tree.
 */

/* dot(w, x) over cols values: 16 lanes, then the tail in order */
float l2c_dot_f32(__global const float *w, __global const float *x, int cols)
{
    float16 acc = 0.0f;
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        acc += vload16(0, w + i) * vload16(0, x + i);
    }
    float8 a8 = acc.lo + acc.hi;
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

/* work-item j's share of dot(w, x): 4-wide chunks j, j + L, ..., then tail elements */
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
                          int cols, int mode, __local float *partial)
{
    int r = get_group_id(0);
    int j = get_local_id(0);
    int L = get_local_size(0);
    w += w_offset;
    x += x_offset;
    float value = l2c_group_sum(l2c_dot_f32_part(w + (size_t)r * cols, x, cols, j, L), partial);
    float gate = 0.0f;
    if (mode == L2C_SWIGLU) {
        gate = l2c_group_sum(l2c_dot_f32_part(w + (size_t)(r + n_out) * cols, x, cols, j, L),
                             partial);
    }
    if (j == 0) {
        l2c_epilogue(y + y_offset + r, mode, value, gate);
    }
}
