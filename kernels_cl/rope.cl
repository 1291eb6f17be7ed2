/*
 * rope.cl - rotary position embedding of the query and the new key.
 *
 * rope: one work-item rotates one pair (i, i + 1), i = 2 * global id; global size dim / 2
 * rounded up to a multiple of the local size (work-items past the last pair do nothing). Pairs
 * below kv_dim also rotate the key, which already sits in the key cache at k_offset. table holds
 * (cos, sin) per position and per pair of a head, computed on the host as run.c computes them:
 * freq = 1 / 10000^(head_dim / head_size), angle = pos * freq.
 *
 * math: (v0, v1) -> (v0 cos - v1 sin, v0 sin + v1 cos)
 */

__kernel void rope(__global float *q, __global float *k, ulong k_offset,
                   __global const float2 *table, int pos, int dim, int head_size, int kv_dim)
{
    int i = 2 * (int)get_global_id(0);
    if (i >= dim) {
        return;
    }
    int head_dim = i % head_size;
    float2 cs = table[(size_t)pos * (head_size / 2) + head_dim / 2];
    float fcr = cs.x;
    float fci = cs.y;

    /* the query, every pair */
    float v0 = q[i];
    float v1 = q[i + 1];
    q[i] = v0 * fcr - v1 * fci;
    q[i + 1] = v0 * fci + v1 * fcr;

    /* the key, pairs below kv_dim */
    if (i < kv_dim) {
        k += k_offset;
        v0 = k[i];
        v1 = k[i + 1];
        k[i] = v0 * fcr - v1 * fci;
        k[i + 1] = v0 * fci + v1 * fcr;
    }
}
