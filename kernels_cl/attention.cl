/*
 * attention.cl - multi-head attention with grouped-query heads over one layer's key and value
 * caches (seq_len rows of kv_dim floats). Query head h reads key/value head h / kv_mul, where
 * kv_mul = n_heads / n_kv_heads. The scores live in a global buffer att of n_heads * seq_len
 * floats, so any seq_len works. Three kernels, run in this order:
 *
 * attention_scores: one work-item per (t, h); global size (pos + 1 rounded up to a multiple of
 *   the local size, n_heads), local size (L, 1); work-items with t > pos do nothing.
 *   math: att[h][t] = dot(q_h, k_t) / sqrt(head_size)
 * attention_softmax: one work-group of L work-items per head (L a power of two); global size
 *   (L, n_heads), local size (L, 1), L floats of local memory for the max and sum reductions.
 *   math: att[h][t] = exp(att[h][t] - max_t) / sum_t exp(att[h][t] - max_t), t = 0 .. pos
 * attention_values: one work-item per output element (h, i); global size n_heads * head_size
 *   rounded up to a multiple of the local size; sums over t in increasing order, as run.c does.
 *   math: out[h * head_size + i] = sum_t att[h][t] * v_t[i]
 */

__kernel void attention_scores(__global const float *q, __global const float *key_cache,
                               __global float *att, int n, int seq_len, int head_size,
                               int kv_dim, int kv_mul, float sqrt_head_size)
{
    int t = get_global_id(0);
    int h = get_global_id(1);
    if (t >= n) {
        return;
    }
    __global const float *q_h = q + h * head_size;
    __global const float *k = key_cache + (size_t)t * kv_dim + (h / kv_mul) * head_size;

    float score = 0.0f;
    for (int i = 0; i < head_size; i++) {
        score += q_h[i] * k[i];
    }
    att[(size_t)h * seq_len + t] = score / sqrt_head_size;
}

__kernel void attention_softmax(__global float *att, int n, int seq_len,
                                __local float *scratch)
{
    int j = get_local_id(0);
    int L = get_local_size(0);
    __global float *a = att + (size_t)get_group_id(1) * seq_len;

    /* the largest score */
    float max_val = a[0];
    for (int t = j; t < n; t += L) {
        max_val = fmax(max_val, a[t]);
    }
    scratch[j] = max_val;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = L / 2; stride > 0; stride /= 2) {
        if (j < stride) {
            scratch[j] = fmax(scratch[j], scratch[j + stride]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    max_val = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);

    /* exponentials and their sum */
    float sum = 0.0f;
    for (int t = j; t < n; t += L) {
        float e = exp(a[t] - max_val);
        a[t] = e;
        sum += e;
    }
    scratch[j] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = L / 2; stride > 0; stride /= 2) {
        if (j < stride) {
            scratch[j] += scratch[j + stride];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    sum = scratch[0];

    /* normalize */
    for (int t = j; t < n; t += L) {
        a[t] = a[t] / sum;
    }
}

__kernel void attention_values(__global const float *att, __global const float *value_cache,
                               __global float *out, int n, int seq_len, int head_size,
                               int kv_dim, int kv_mul, int dim)
{
    int idx = get_global_id(0);
    if (idx >= dim) {
        return;
    }
    int h = idx / head_size;
    int i = idx % head_size;
    __global const float *a = att + (size_t)h * seq_len;
    __global const float *v = value_cache + (h / kv_mul) * head_size + i;

    float sum = 0.0f;
    for (int t = 0; t < n; t++) {
        sum += a[t] * v[(size_t)t * kv_dim];
    }
    out[idx] = sum;
}
