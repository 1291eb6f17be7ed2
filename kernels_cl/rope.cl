/*
 * rope.cl - rotary position embedding of a batch of tokens' queries and keys, and the keys and
 * values written into the caches.
 *
 * rope_store: qkv holds one row per token, the query (dim), the key (kv_dim), then the value
 *   (kv_dim), as the one product over wq | wk | wv leaves them. One work-item per pair (i, i + 1)
 *   of a token, i = 2 * global id 0; global size (dim / 2 rounded up to a multiple of the local
 *   size, n_tokens), local size (L, 1). Each work-item rotates its query pair in place and, for
 *   pairs below kv_dim, writes the rotated key pair and the value pair into row pos0 + t of the
 *   caches. table holds (cos, sin) per position and per pair of a head, computed on the host as
 *   run.c computes them: freq = 1 / 10000^(head_dim / head_size), angle = pos * freq.
 *   math: (v0, v1) -> (v0 cos - v1 sin, v0 sin + v1 cos)
 */

__kernel void rope_store(__global float *qkv, __global float *key_cache,
                         __global float *value_cache, __global const float2 *table, int pos0,
                         int dim, int kv_dim, int head_size)
{
    int i = 2 * (int)get_global_id(0);
    int t = get_global_id(1);
    if (i >= dim) {
        return;
    }
    int pos = pos0 + t;
    __global float *q = qkv + (size_t)t * (dim + 2 * kv_dim);
    __global const float *k = q + dim;
    __global const float *v = k + kv_dim;
    float2 cs = table[(size_t)pos * (head_size / 2) + (i % head_size) / 2];
    float fcr = cs.x;
    float fci = cs.y;

    /* the query, every pair */
    float v0 = q[i];
    float v1 = q[i + 1];
    q[i] = v0 * fcr - v1 * fci;
    q[i + 1] = v0 * fci + v1 * fcr;

    /* the key rotated and the value as it is, pairs below kv_dim, into the caches */
    if (i < kv_dim) {
        size_t at = (size_t)pos * kv_dim + i;
        v0 = k[i];
        v1 = k[i + 1];
        key_cache[at] = v0 * fcr - v1 * fci;
        key_cache[at + 1] = v0 * fci + v1 * fcr;
        value_cache[at] = v[i];
        value_cache[at + 1] = v[i + 1];
    }
}
