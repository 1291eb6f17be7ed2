/*
 * attention.cl - causal multi-head attention with grouped-query heads, for a batch of tokens at
 * positions pos0 .. pos0 + n_tokens - 1, over one layer's key and value caches (seq_len rows of
 * kv_dim floats, already holding every position up to the batch's last). Query head h reads
 * key/value head h / kv_mul, where kv_mul = n_heads / n_kv_heads.
 *
 * attention: one work-group of L work-items per (head h, token t) (L a power of two); global
 *   size (L, n_heads * n_tokens), local size (L, 1), group id 1 = t * n_heads + h; local memory:
 *   L floats for the reductions and max(8 * L, head_size) floats for the value sums. The token at
 *   pos = pos0 + t attends to positions 0 .. pos. Its scores go to att (seq_len floats per
 *   (t, h), global memory, so any seq_len works):
 *   1. work-item j scores positions j, j + L, ... (8-wide loads when head_size allows);
 *   2. the work-group finds their largest and the sum of exponentials, and normalizes them;
 *   3. the head's dimensions are cut into chunks of 8 (of 1 when head_size is not a multiple of
 *      8), and the positions into parts = L / chunks interleaved sets: work-item j sums the
 *      values of chunk j % chunks over the positions of part j / chunks, in increasing order;
 *   4. the first chunks work-items add their chunk's parts in part order and write the output.
 *   math: att[s] = softmax_s(dot(q_h, k_s) / sqrt(head_size)),
 *         out[t][h * head_size + i] = sum_s att[s] * v_s[i]
 * The query of token t is row t of q, q_stride floats apart; out rows are dim floats apart.
 */

/* dot(q, k) over head_size values */
float l2c_head_dot(__global const float *q, __global const float *k, int head_size)
{
    float sum = 0.0f;
    if (head_size % 8 == 0) {
        float8 acc = 0.0f;
        for (int i = 0; i < head_size; i += 8) {
            acc += vload8(0, q + i) * vload8(0, k + i);
        }
        float4 a4 = acc.lo + acc.hi;
        sum = (a4.x + a4.y) + (a4.z + a4.w);
    } else {
        for (int i = 0; i < head_size; i++) {
            sum += q[i] * k[i];
        }
    }
    return sum;
}

__kernel void attention(__global const float *q, int q_stride, __global const float *key_cache,
                        __global const float *value_cache, __global float *att,
                        __global float *out, int pos0, int seq_len, int n_heads, int head_size,
                        int kv_dim, int kv_mul, float sqrt_head_size, __local float *partial,
                        __local float *sums)
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
        float score = l2c_head_dot(q_h, key_cache + (size_t)s * kv_dim + kv_head, head_size);
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
    barrier(CLK_GLOBAL_MEM_FENCE | CLK_LOCAL_MEM_FENCE);

    /* each (chunk, part): its chunk of the weighted sum over its part of the positions */
    int width = head_size % 8 == 0 ? 8 : 1;
    int chunks = head_size / width;
    int parts = L / chunks > 0 ? L / chunks : 1;
    __global const float *v_head = value_cache + kv_head;
    for (int item = j; item < chunks * parts; item += L) {
        int chunk = item % chunks;
        int part = item / chunks;
        __global const float *v = v_head + chunk * width;
        if (width == 8) {
            float8 acc = 0.0f;
            for (int s = part; s < n; s += parts) {
                acc += a[s] * vload8(0, v + (size_t)s * kv_dim);
            }
            vstore8(acc, item, sums);
        } else {
            float acc = 0.0f;
            for (int s = part; s < n; s += parts) {
                acc += a[s] * v[(size_t)s * kv_dim];
            }
            sums[item] = acc;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);

    /* the parts of each chunk added in order, into the output */
    __global float *o = out + (size_t)t * n_heads * head_size + h * head_size;
    for (int chunk = j; chunk < chunks; chunk += L) {
        if (width == 8) {
            float8 acc = vload8(chunk, sums);
            for (int part = 1; part < parts; part++) {
                acc += vload8(part * chunks + chunk, sums);
            }
            vstore8(acc, chunk, o);
        } else {
            float acc = sums[chunk];
            for (int part = 1; part < parts; part++) {
                acc += sums[part * chunks + chunk];
            }
            o[chunk] = acc;
        }
    }
}
