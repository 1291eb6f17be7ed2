/*
 * elementwise.cl - the one-element-per-work-item operations of the forward pass. Each kernel
 * maps one work-item to one of n elements of a token's row (global id 0) and one token (global
 * id 1); global size (n rounded up to a multiple of the local size, n_tokens), local size (L, 1),
 * which the host keeps fixed (work-items past n do nothing).
 *
 * embed_f32: x[t][i] = table[token_t * dim + i]                 (the tokens' embedding rows)
 * embed_f16: the same from an fp16 table
 * embed_q8:  x[t][i] = q[token_t * dim + i] * s[(token_t * dim + i) / group_size]   (a Q8_0
 *            row, as the loader of a version-2 file dequantizes it)
 *   token_t is tokens[t], or token when tokens is NULL (one token, passed by value).
 * swiglu:    hb[t][i] = silu(h13[t][i]) * h13[t][hidden_dim + i]   (h13 holds w1 x, then w3 x)
 */

int l2c_token(__global const int *tokens, int token)
{
    return tokens ? tokens[get_global_id(1)] : token;
}

__kernel void embed_f32(__global float *x, __global const float *table, ulong table_offset,
                        __global const int *tokens, int token, int dim)
{
    int i = get_global_id(0);
    if (i >= dim) {
        return;
    }
    size_t at = (size_t)l2c_token(tokens, token) * dim + i;
    x[(size_t)get_global_id(1) * dim + i] = table[table_offset + at];
}

__kernel void embed_f16(__global float *x, __global const half *table, ulong table_offset,
                        __global const int *tokens, int token, int dim)
{
    int i = get_global_id(0);
    if (i >= dim) {
        return;
    }
    size_t at = (size_t)l2c_token(tokens, token) * dim + i;
    x[(size_t)get_global_id(1) * dim + i] = vload_half(table_offset + at, table);
}

__kernel void embed_q8(__global float *x, __global const char *q, ulong q_offset,
                       __global const float *s, ulong s_offset, __global const int *tokens,
                       int token, int dim, int group_size)
{
    int i = get_global_id(0);
    if (i >= dim) {
        return;
    }
    size_t at = (size_t)l2c_token(tokens, token) * dim + i;
    x[(size_t)get_global_id(1) * dim + i] = (float)q[q_offset + at] *
                                              s[s_offset + at / group_size];
}

__kernel void swiglu(__global float *hb, __global const float *h13, int hidden_dim)
{
    int i = get_global_id(0);
    if (i >= hidden_dim) {
        return;
    }
    size_t t = get_global_id(1);
    __global const float *h = h13 + t * 2 * hidden_dim;
    hb[t * hidden_dim + i] = l2c_silu(h[i]) * h[hidden_dim + i];
}
