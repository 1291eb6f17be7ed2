/*
 * gemv_f32.cl - llama2cl's own matrix-vector product on fp32 weights, the alternative to
 * CLBlastSgemv (L2C_GEMV_OWN, or L2C_GEMV_AUTO where it is faster for a shape).
 *
 * Two mappings of the same product, y[r] = sum_i w[r][i] * x[i]:
 *
 * gemv_f32: one work-group of L work-items per output row (L a power of two); global size
 *   rows * L, local size L, L floats of local memory. Work-item j sums the products of columns
 *   j, j + L, j + 2L, ... (neighbouring work-items read neighbouring weights, which suits GPUs),
 *   then the work-group adds the L partial sums.
 * gemv_f32_rows: one work-item per output row, summing its columns in order (as run.c does);
 *   global size rows rounded up to a multiple of the local size. Few, long work-items suit CPU
 *   drivers, where each work-group has a fixed cost.
 */

__kernel void gemv_f32(__global float *y, ulong y_offset, __global const float *w,
                       ulong w_offset, __global const float *x, int cols,
                       __local float *partial)
{
    int row = get_group_id(0);
    int j = get_local_id(0);
    int L = get_local_size(0);
    __global const float *w_row = w + w_offset + (size_t)row * cols;

    /* this work-item's columns */
    float sum = 0.0f;
    for (int i = j; i < cols; i += L) {
        sum += w_row[i] * x[i];
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

__kernel void gemv_f32_rows(__global float *y, ulong y_offset, __global const float *w,
                            ulong w_offset, __global const float *x, int rows, int cols)
{
    int row = get_global_id(0);
    if (row >= rows) {
        return;
    }
    __global const float *w_row = w + w_offset + (size_t)row * cols;

    float sum = 0.0f;
    for (int i = 0; i < cols; i++) {
        sum += w_row[i] * x[i];
    }
    y[y_offset + row] = sum;
}
