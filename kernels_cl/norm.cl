/*
 * norm.cl - RMSNorm.
 *
 * rmsnorm: one work-group normalizes the whole vector (global size = local size = L, a power of
 * two). Work-item j sums the squares of elements j, j + L, j + 2L, ..., the work-group adds the
 * L partial sums in local memory (L floats), then every work-item scales its own elements.
 * out may be x itself: each element is read and written by the same work-item after the barrier.
 *
 * math: out[i] = weight[i] * (x[i] / sqrt(sum(x^2) / size + 1e-5))
 */

__kernel void rmsnorm(__global float *out, __global const float *x,
                      __global const float *weight, ulong weight_offset, int size,
                      __local float *partial)
{
    int j = get_local_id(0);
    int L = get_local_size(0);

    /* sum of squares, strided over the work-group */
    float sum = 0.0f;
    for (int i = j; i < size; i += L) {
        sum += x[i] * x[i];
    }
    partial[j] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = L / 2; stride > 0; stride /= 2) {
        if (j < stride) {
            partial[j] += partial[j + stride];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }

    /* the reciprocal root mean square, as run.c computes it */
    float ss = partial[0] / (float)size;
    ss += 1e-5f;
    ss = 1.0f / sqrt(ss);

    /* normalize and scale */
    weight += weight_offset;
    for (int i = j; i < size; i += L) {
        out[i] = weight[i] * (ss * x[i]);
    }
}
