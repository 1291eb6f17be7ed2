/*
 * cpu_backend.c - the CPU reference forward pass.
 *
 * It computes what llama2.c's run.c computes for fp32 checkpoints and what runq.c computes for
 * Q8_0 ones (activations quantized in the same groups, integer dot products, then scaled), step
 * for step, so that it prints their text. It is the reference that device backends are checked
 * against, so it stays plain: OpenMP over rows and heads, and loops the compiler vectorises.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "internal.h"

/* ------------------------------------------------------------------------------------------------
 * state
 */

typedef struct {
    l2c_backend base;
    float *x;      /* (dim) the residual stream */
    float *xb;     /* (dim) */
    float *xb2;    /* (dim) */
    float *hb;     /* (hidden_dim) */
    float *hb2;    /* (hidden_dim) */
    float *q;      /* (dim) */
    float *k;      /* (kv_dim) */
    float *v;      /* (kv_dim) */
    float *att;    /* (n_heads, seq_len) */
    float *logits; /* (vocab_size) */
    float *key_cache;   /* (n_layers, seq_len, kv_dim) */
    float *value_cache; /* (n_layers, seq_len, kv_dim) */
    int8_t *xq;    /* (max(dim, hidden_dim)) quantized activations, version 2 only */
    float  *xs;    /* their group scales */
} cpu_backend;

/* A weight matrix (d rows of n) in whichever type the file holds. */
typedef struct {
    const float  *f32;
    const l2c_q8 *q8;
} matrix;

/* ------------------------------------------------------------------------------------------------
 * the operations of the forward pass
 */

static void rmsnorm(float *o, const float *x, const float *weight, int size) {
    float ss = 0.0f;
    for (int j = 0; j < size; j++) {
        ss += x[j] * x[j];
    }
    ss /= size;
    ss += 1e-5f;
    ss = 1.0f / sqrtf(ss);
    for (int j = 0; j < size; j++) {
        o[j] = weight[j] * (ss * x[j]);
    }
}

static void softmax(float *x, int size) {
    float max_val = x[0];
    for (int i = 1; i < size; i++) {
        if (x[i] > max_val) max_val = x[i];
    }
    float sum = 0.0f;
    for (int i = 0; i < size; i++) {
        x[i] = expf(x[i] - max_val);
        sum += x[i];
    }
    for (int i = 0; i < size; i++) {
        x[i] /= sum;
    }
}

/* xout (d) = W (d, n) @ x (n) */
static void matmul_f32(float *xout, const float *x, const float *w, int n, int d) {
    #pragma omp parallel for
    for (int i = 0; i < d; i++) {
        const float *row = w + (size_t)i * n;
        float val = 0.0f;
        #pragma omp simd reduction(+:val)
        for (int j = 0; j < n; j++) {
            val += row[j] * x[j];
        }
        xout[i] = val;
    }
}

/* symmetric int8 per group of gs values: scale = max|x| / 127, q = round(x / scale) */
static void quantize_q8(int8_t *q, float *s, const float *x, int n, int gs) {
    for (int group = 0; group < n / gs; group++) {
        const float *xg = x + group * gs;
        float wmax = 0.0f;
        for (int i = 0; i < gs; i++) {
            float val = fabsf(xg[i]);
            if (val > wmax) wmax = val;
        }
        float scale = wmax / 127.0f;
        s[group] = scale;
        for (int i = 0; i < gs; i++) {
            q[group * gs + i] = scale > 0.0f ? (int8_t)roundf(xg[i] / scale) : 0;
        }
    }
}

/* xout (d) = W (d, n) @ x (n) with W and x in Q8_0: integer sums per group, then scaled */
static void matmul_q8(float *xout, const int8_t *xq, const float *xs, const l2c_q8 *w, int n,
                      int d, int gs) {
    #pragma omp parallel for
    for (int i = 0; i < d; i++) {
        const int8_t *row = w->q + (size_t)i * n;
        const float *row_s = w->s + (size_t)i * (n / gs);
        float val = 0.0f;
        for (int j = 0; j < n; j += gs) {
            int32_t ival = 0;
            #pragma omp simd reduction(+:ival)
            for (int k = 0; k < gs; k++) {
                ival += (int32_t)xq[j + k] * (int32_t)row[j + k];
            }
            val += (float)ival * row_s[j / gs] * xs[j / gs];
        }
        xout[i] = val;
    }
}

static void matmul(cpu_backend *b, float *xout, const float *x, matrix w, int n, int d) {
    if (w.f32) {
        matmul_f32(xout, x, w.f32, n, d);
        return;
    }
    int gs = b->base.model->config.group_size;
    quantize_q8(b->xq, b->xs, x, n, gs);
    matmul_q8(xout, b->xq, b->xs, w.q8, n, d, gs);
}

/* layer l's matrix of d rows of n */
static matrix layer_matrix(const float *f32, const l2c_q8 *q8, int l, int n, int d) {
    matrix m = {NULL, NULL};
    if (f32) {
        m.f32 = f32 + (size_t)l * n * d;
    } else {
        m.q8 = q8 + l;
    }
    return m;
}

/* rotate each (even, odd) pair of q, and of k where the pair lies within kv_dim */
static void rope(float *q, float *k, int pos, int dim, int kv_dim, int head_size) {
    for (int i = 0; i < dim; i += 2) {
        int head_dim = i % head_size;
        float freq = 1.0f / powf(10000.0f, head_dim / (float)head_size);
        float val = pos * freq;
        float fcr = cosf(val);
        float fci = sinf(val);
        int rotn = i < kv_dim ? 2 : 1;
        for (int v = 0; v < rotn; v++) {
            float *vec = v == 0 ? q : k;
            float v0 = vec[i];
            float v1 = vec[i + 1];
            vec[i] = v0 * fcr - v1 * fci;
            vec[i + 1] = v0 * fci + v1 * fcr;
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * forward
 */

static l2c_status cpu_forward(l2c_backend *backend, int token, int pos, float **logits) {
    cpu_backend *b = (cpu_backend *)backend;
    const l2c_config *p = &backend->model->config;
    const l2c_weights *w = &backend->model->weights;
    int dim = p->dim;
    int kv_dim = l2c_kv_dim(p);
    int kv_mul = p->n_heads / p->n_kv_heads;
    int hidden_dim = p->hidden_dim;
    int head_size = l2c_head_size(p);
    float *x = b->x;

    if (token < 0 || token >= p->vocab_size) {
        return l2c_fail(L2C_ERR_ARG, "token id %d is outside the vocabulary (0 to %d)",
                        token, p->vocab_size - 1);
    }
    if (pos < 0 || pos >= p->seq_len) {
        return l2c_fail(L2C_ERR_ARG, "position %d is outside the context (0 to %d)",
                        pos, p->seq_len - 1);
    }

    /* the token's embedding */
    memcpy(x, w->token_embedding_table + (size_t)token * dim, dim * sizeof *x);

    for (int l = 0; l < p->n_layers; l++) {

        /* attention rmsnorm */
        rmsnorm(b->xb, x, w->rms_att_weight + (size_t)l * dim, dim);

        /* qkv matmuls for this position */
        matmul(b, b->q, b->xb, layer_matrix(w->wq, w->q_wq, l, dim, dim), dim, dim);
        matmul(b, b->k, b->xb, layer_matrix(w->wk, w->q_wk, l, dim, kv_dim), dim, kv_dim);
        matmul(b, b->v, b->xb, layer_matrix(w->wv, w->q_wv, l, dim, kv_dim), dim, kv_dim);

        /* RoPE: rotate q and k by the position */
        rope(b->q, b->k, pos, dim, kv_dim, head_size);

        /* key and value at this position into the cache */
        size_t loff = (size_t)l * p->seq_len * kv_dim;
        memcpy(b->key_cache + loff + (size_t)pos * kv_dim, b->k, kv_dim * sizeof(float));
        memcpy(b->value_cache + loff + (size_t)pos * kv_dim, b->v, kv_dim * sizeof(float));

        /* multi-head attention, each kv head shared by kv_mul query heads */
        #pragma omp parallel for
        for (int h = 0; h < p->n_heads; h++) {
            const float *q = b->q + h * head_size;
            float *att = b->att + (size_t)h * p->seq_len;
            for (int t = 0; t <= pos; t++) {
                const float *k = b->key_cache + loff + (size_t)t * kv_dim
                               + (h / kv_mul) * head_size;
                float score = 0.0f;
                for (int i = 0; i < head_size; i++) {
                    score += q[i] * k[i];
                }
                score /= sqrtf(head_size);
                att[t] = score;
            }
            softmax(att, pos + 1);

            float *xb = b->xb + h * head_size;
            memset(xb, 0, head_size * sizeof(float));
            for (int t = 0; t <= pos; t++) {
                const float *v = b->value_cache + loff + (size_t)t * kv_dim
                               + (h / kv_mul) * head_size;
                float a = att[t];
                for (int i = 0; i < head_size; i++) {
                    xb[i] += a * v[i];
                }
            }
        }

        /* output projection, then the residual connection back into x */
        matmul(b, b->xb2, b->xb, layer_matrix(w->wo, w->q_wo, l, dim, dim), dim, dim);
        for (int i = 0; i < dim; i++) {
            x[i] += b->xb2[i];
        }

        /* ffn rmsnorm */
        rmsnorm(b->xb, x, w->rms_ffn_weight + (size_t)l * dim, dim);

        /* SwiGLU feed-forward: w2(silu(w1(x)) * w3(x)) */
        matmul(b, b->hb, b->xb, layer_matrix(w->w1, w->q_w1, l, dim, hidden_dim), dim,
               hidden_dim);
        matmul(b, b->hb2, b->xb, layer_matrix(w->w3, w->q_w3, l, dim, hidden_dim), dim,
               hidden_dim);
        for (int i = 0; i < hidden_dim; i++) {
            float val = b->hb[i];
            val *= (1.0f / (1.0f + expf(-val)));
            val *= b->hb2[i];
            b->hb[i] = val;
        }
        matmul(b, b->xb, b->hb, layer_matrix(w->w2, w->q_w2, l, hidden_dim, dim), hidden_dim,
               dim);

        /* residual connection */
        for (int i = 0; i < dim; i++) {
            x[i] += b->xb[i];
        }
    }

    /* final rmsnorm, then the classifier into logits */
    rmsnorm(x, x, w->rms_final_weight, dim);
    matrix cls = {w->wcls, w->wcls ? NULL : &w->q_wcls};
    matmul(b, b->logits, x, cls, dim, p->vocab_size);

    *logits = b->logits;
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * creation
 */

static void cpu_destroy(l2c_backend *backend) {
    cpu_backend *b = (cpu_backend *)backend;
    free(b->x);
    free(b->xb);
    free(b->xb2);
    free(b->hb);
    free(b->hb2);
    free(b->q);
    free(b->k);
    free(b->v);
    free(b->att);
    free(b->logits);
    free(b->key_cache);
    free(b->value_cache);
    free(b->xq);
    free(b->xs);
    free(b);
}

static const l2c_backend_ops cpu_ops = {
    .name    = "cpu",
    .forward = cpu_forward,
    .prefill = NULL,
    .report  = NULL,
    .destroy = cpu_destroy,
};

l2c_status l2c_backend_cpu_create(const l2c_model *model, l2c_backend **backend) {
    *backend = NULL;
    const l2c_config *p = &model->config;
    size_t kv_dim = (size_t)l2c_kv_dim(p);
    size_t cache = (size_t)p->n_layers * p->seq_len * kv_dim;
    size_t widest = (size_t)(p->dim > p->hidden_dim ? p->dim : p->hidden_dim);

    cpu_backend *b = calloc(1, sizeof *b);
    if (!b) return l2c_fail(L2C_ERR_NOMEM, "out of memory for the CPU backend");
    b->base.ops = &cpu_ops;
    b->base.model = model;
    b->x = calloc(p->dim, sizeof(float));
    b->xb = calloc(p->dim, sizeof(float));
    b->xb2 = calloc(p->dim, sizeof(float));
    b->hb = calloc(p->hidden_dim, sizeof(float));
    b->hb2 = calloc(p->hidden_dim, sizeof(float));
    b->q = calloc(p->dim, sizeof(float));
    b->k = calloc(kv_dim, sizeof(float));
    b->v = calloc(kv_dim, sizeof(float));
    b->att = calloc((size_t)p->n_heads * p->seq_len, sizeof(float));
    b->logits = calloc(p->vocab_size, sizeof(float));
    b->key_cache = calloc(cache, sizeof(float));
    b->value_cache = calloc(cache, sizeof(float));
    if (p->format == L2C_FORMAT_V2) {
        b->xq = calloc(widest, 1);
        b->xs = calloc(widest, sizeof(float));
    }
    if (!b->x || !b->xb || !b->xb2 || !b->hb || !b->hb2 || !b->q || !b->k || !b->v || !b->att ||
        !b->logits || !b->key_cache || !b->value_cache ||
        (p->format == L2C_FORMAT_V2 && (!b->xq || !b->xs))) {
        cpu_destroy(&b->base);
        return l2c_fail(L2C_ERR_NOMEM, "out of memory for the CPU backend's state "
                        "(key/value cache of %zu MiB)", 2 * cache * sizeof(float) >> 20);
    }

    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    snprintf(b->base.description, sizeof b->base.description, "cpu, %d thread%s", threads,
             threads == 1 ? "" : "s");
    *backend = &b->base;
    return L2C_OK;
}
