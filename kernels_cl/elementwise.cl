/*
 * elementwise.cl - the one-element-per-work-item operations of the forward pass. Each kernel
 * maps one work-item to one of n elements; global size = n rounded up to a multiple of the local
 * size, which the host keeps fixed (work-items past n do nothing).
 *
 * embed_f32: x[i] = table[token * dim + i]                      (copy the token's embedding row)
 * embed_q8:  x[i] = q[token * dim + i] * s[(token * dim + i) / group_size]   (Q8_0 row, as the
 *            loader of a version-2 file dequantizes it)
 * residual_add: x[i] = x[i] + y[i]
 * swiglu:    hb[i] = hb[i] * (1 / (1 + exp(-hb[i]))) * hb2[i]   (silu(w1 x) * w3 x)
 */

__kernel void embed_f32(__global float *x, __global const float *table, ulong table_offset,
                        int token, int dim)
{
    int i = get_global_id(0);
    if (i >= dim) {
        return;
    }
    x[i] = table[table_offset + (size_t)token * dim + i];
}

__kernel void embed_q8(__global float *x, __global const char *q, ulong q_offset,
                       __global const float *s, ulong s_offset, int token, int dim,
                       int group_size)
{
    int i = get_global_id(0);
    if (i >= dim) {
        return;
    }
    size_t at = (size_t)token * dim + i;
    x[i] = (float)q[q_offset + at] * s[s_offset + at / group_size];
}

__kernel void residual_add(__global float *x, __global const float *y, int n)
{
    int i = get_global_id(0);
    if (i >= n) {
        return;
    }
    x[i] = x[i] + y[i];
}

__kernel void swiglu(__global float *hb, __global const float *hb2, int n)
{
    int i = get_global_id(0);
    if (i >= n) {
        return;
    }
    float val = hb[i];
    val *= 1.0f / (1.0f + exp(-val));
    val *= hb2[i];
    hb[i] = val;
}
