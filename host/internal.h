/*
 * internal.h - what the engine's parts share and the public header does not show: the mapped
 * weights, the backend interface, and the error helper.
 */
#ifndef L2C_INTERNAL_H
#define L2C_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "llama2cl.h"

/* ------------------------------------------------------------------------------------------------
 * errors
 */

/* Records a printf-style message as l2c_last_error() and returns status. */
l2c_status l2c_fail(l2c_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------------------------------
 * weights
 */

/* One Q8_0 matrix: rows * cols int8 values, then one fp32 scale per group of group_size values
 * taken in row-major order. */
typedef struct {
    const int8_t *q;
    const float  *s;
} l2c_q8;

typedef struct {
    /* fp32 parameters; in version 2 only the norms are fp32 in the file, and the token table is
     * dequantized into host memory at load (as runq.c does) */
    const float *token_embedding_table; /* (vocab_size, dim) */
    const float *rms_att_weight;        /* (n_layers, dim) */
    const float *rms_ffn_weight;        /* (n_layers, dim) */
    const float *rms_final_weight;      /* (dim) */

    /* fp32 matrices, (out, in) row-major, layers contiguous; NULL in version 2 */
    const float *wq;   /* (n_layers, n_heads * head_size, dim) */
    const float *wk;   /* (n_layers, kv_dim, dim) */
    const float *wv;   /* (n_layers, kv_dim, dim) */
    const float *wo;   /* (n_layers, dim, n_heads * head_size) */
    const float *w1;   /* (n_layers, hidden_dim, dim) */
    const float *w2;   /* (n_layers, dim, hidden_dim) */
    const float *w3;   /* (n_layers, hidden_dim, dim) */
    const float *wcls; /* (vocab_size, dim) */

    /* Q8_0 matrices in version 2, one entry per layer; NULL otherwise */
    l2c_q8 *q_wq, *q_wk, *q_wv, *q_wo, *q_w1, *q_w2, *q_w3;
    l2c_q8  q_tokens; /* (vocab_size, dim) */
    l2c_q8  q_wcls;   /* (vocab_size, dim), equal to q_tokens when shared */
} l2c_weights;

struct l2c_model {
    l2c_config  config;
    l2c_weights weights;
    char       *path;        /* for messages */
    void       *map;         /* the mapped file */
    size_t      map_size;
    float      *dequantized; /* the token table of a version-2 file, owned */
};

/* head_size = dim / n_heads, kv_dim = head_size * n_kv_heads */
static inline int l2c_head_size(const l2c_config *c) { return c->dim / c->n_heads; }
static inline int l2c_kv_dim(const l2c_config *c) { return c->dim / c->n_heads * c->n_kv_heads; }

/* ------------------------------------------------------------------------------------------------
 * backend interface: each backend fills in the ops and embeds l2c_backend as its first member
 */

typedef struct {
    const char *name;
    l2c_status (*forward)(l2c_backend *backend, int token, int pos, float **logits);
    l2c_status (*prefill)(l2c_backend *backend, const int *tokens, int n_tokens, int pos,
                          float **logits);        /* (optional) batched prompt */
    void       (*report) (const l2c_backend *backend, FILE *out); /* (optional) profile */
    void       (*destroy)(l2c_backend *backend);
} l2c_backend_ops;

struct l2c_backend {
    const l2c_backend_ops *ops;
    const l2c_model       *model;
    char                   description[256];
};

#endif /* L2C_INTERNAL_H */
