/*
 * attention.cl - causal multi-head attention with grouped-query heads, for a batch of tokens at
 * positions pos0 .. pos0 + n_tokens - 1, over one layer's key and value caches (seq_len rows of
 * kv_dim floats, already holding every position up to the batch's last). Query head h reads
 * key/value head h / kv_mul, where kv_mul = n_heads / n_kv_heads.
 *
 * attention: one work-group of L work-items per (head h, token t) (L a power of two); global
 *   size (L, n_heads * n_tokens), local size (L, 1), group id 1 = t * n_heads + h, L floats of
 *   local memory. The token at pos = pos0 + t attends to positions 0 .. pos. Its scores go to
 *   att (seq_len floats per (t, h), global memory, so any seq_len works): work-item j scores
 *   positions j, j + L, ...; the work-group finds their largest and the sum of exponentials,
 *   normalizes them, then work-item j sums the values of dimensions j, j + L, ... over the
 *   positions in increasing order, as run.c does.
 *   math: att[s] = softmax_s(dot(q_h, k_s) / sqrt(head_size)),
 *         out[t][h * head_size + i] = sum_s att[s] * v_s[i]
 * The query of token t is row t of q, q_stride floats apart; out rows are dim floats apart.
 */

__kernel void attention(__global const float *q, int q_stride, __global const float *key_cache,
                        __global const float *value_cache, __global float *att,
                        __global float *out, int pos0, int seq_len, int n_heads, int head_size,
                        int kv_dim, int kv_mul, float sqrt_head_size, __local float *partial)
{
    int j = get_local_id(0);
    int L = get_local_size(0);
    int h = get_group_id(1) % n_heads;
    int t = get_group_id(1) / n_heads;
    int n = pos0 + t + 1;
    __global const float *q_h = q + (size_t)t * q_stride + h * head_size;
    __global float *a = att + (size_t)get_group_id(1) * seq_len;
    int kv_head = (h / kv_mul) * head_size;

    /* scores, and their largest */
    float max_val = -INFINITY;
    for (int s = j; s < n; s += L) {
        __global const float *k = key_cache + (size_t)s * kv_dim + kv_head;
        float score = 0.0f;
        for (int i = 0; i < head_size; i++) {
            score += q_h[i] * k[i];
        }
        score /= sqrt_head_size;
        a[s] = score;
        max_val = fmax(max_val, score);
    }
    max_val = l2c_group_max(max_val, partial);

    /* exponentials and their sum */
    float sum = 0.0f;
    for (int s = j; s < n; s += L) {
        float e = exp(a[s] - max_val);
        a[s] = e;
        sum += e;
    }
    sum = l2c_group_sum(sum, partial);

    /* normalize; every work-item then reads every score */
    for (int s = j; s < n; s += L) {
        a[s] = a[s] / sum;
    }
    barrier(CLK_GLOBAL_MEM_FENCE);

    /* weighted sum of the values */
    __global float *o = out + (size_t)t * n_heads * head_size + h * head_size;
    for (int i = j; i < head_size; i += L) {
        __global const float *v = value_cache + kv_head + i;
        float acc = 0.0f;
        for (int s = 0; s < n; s++) {
            acc += a[s] * v[(size_t)s * kv_dim];
        }
        o[i] = acc;
    }
}
