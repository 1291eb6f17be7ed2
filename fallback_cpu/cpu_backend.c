/*
 * cpu_backend.c - the CPU reference forward pass, one token at a time and for a batch of prompt
 * tokens.
 *
 * One token at a time it computes what llama2.c's run.c computes for fp32 checkpoints and what
 * runq.c computes for Q8_0 ones (activations quantized in the same groups, integer dot products,
 * then scaled), step for step, so that it prints their text: for Q8_0 bit for bit what runq.c
 * built with gcc -O3 computes; for fp32 only the order of the terms inside the matrix products'
 * dot products differs. It is the reference that device backends are checked against.
 *
 * The prompt runs as one batch: every matrix is read once for all its tokens (cblas_sgemm for
 * fp32, the integer kernels for Q8_0), RoPE and attention run per token as when decoding, and the
 * key/value cache gets every position. For Q8_0 each batched output is the one-token output bit
 * for bit; for fp32 the BLAS orders the sums its own way.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu_matmul.h"
#include "internal.h"

/* the most prompt tokens run as one batch; longer prompts run in batches of this size */
#define CPU_BATCH 256

/* ------------------------------------------------------------------------------------------------
 * state
 */

/* the buffers of a batch of tokens, allocated by the first prefill */
typedef struct {
    int capacity;  /* tokens */
    float *x;      /* (capacity, dim) the residual streams */
    float *xb;     /* (capacity, dim) */
    float *xb2;    /* (capacity, dim) */
    float *q;      /* (capacity, dim) */
    float *k;      /* (capacity, kv_dim) */
    float *hb;     /* (capacity, hidden_dim) */
    float *hb2;    /* (capacity, hidden_dim) */
    float *att;    /* (threads, seq_len) attention scores, one row per thread */
    int threads;
    cpu_q8_vector *xq; /* (capacity) quantized activations, version 2 only */
    int8_t *xq_values; /* (capacity, max(dim, hidden_dim)) */
    float  *xq_scales; /* (capacity, max(dim, hidden_dim) / group_size) */
} cpu_batch;

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
    float *key_cache;   /* (n_layers, n_kv_heads, head_size, seq_len): keys transposed */
    float *value_cache; /* (n_layers, seq_len, kv_dim) */
    float *rope_cos;    /* (seq_len, head_size / 2) the rotation of each position and pair */
    float *rope_sin;
    cpu_q8_vector xq;   /* (max(dim, hidden_dim)) quantized activations, version 2 only */
    cpu_batch batch;
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

/* xout (d) = W (d, n) @ x (n), quantizing x first for a Q8_0 matrix */
static void matmul(cpu_backend *b, float *xout, const float *x, matrix w, int n, int d) {
    if (w.f32) {
        cpu_matmul_f32(xout, x, w.f32, n, d);
        return;
    }
    int gs = b->base.model->config.group_size;
    cpu_quantize_q8(&b->xq, x, n, gs);
    cpu_matmul_q8(xout, &b->xq, w.q8->q, w.q8->s, n, d, gs);
}

/* out (n_tokens, d, rows ldo apart) = x (n_tokens, n) @ W (d, n)^T */
static void matmul_batch(cpu_backend *b, float *out, int ldo, const float *x, matrix w, int n,
                         int d, int n_tokens) {
    if (w.f32) {
        cpu_matmul_f32_batch(out, ldo, x, w.f32, n, d, n_tokens);
        return;
    }
    int gs = b->base.model->config.group_size;
    #pragma omp parallel for if ((size_t)n_tokens * n >= CPU_PARALLEL_WORK)
    for (int t = 0; t < n_tokens; t++) {
        cpu_quantize_q8(&b->batch.xq[t], x + (size_t)t * n, n, gs);
    }
    cpu_matmul_q8_batch(out, ldo, b->batch.xq, w.q8->q, w.q8->s, n, d, gs, n_tokens);
}

/* The rotation angles of RoPE, computed once with llama2.c's expressions so that the values are
 * the same: pair i of a head turns by pos / 10000^(2i / head_size). */
static void rope_tables(const l2c_config *p, float *rope_cos, float *rope_sin) {
    int head_size = l2c_head_size(p);
    for (int pos = 0; pos < p->seq_len; pos++) {
        for (int head_dim = 0; head_dim < head_size; head_dim += 2) {
            float freq = 1.0f / powf(10000.0f, head_dim / (float)head_size);
            float val = pos * freq;
            size_t at = (size_t)pos * (head_size / 2) + head_dim / 2;
            rope_cos[at] = cosf(val);
            rope_sin[at] = sinf(val);
        }
    }
}

/* rotate each (even, odd) pair of q (dim), and of k (kv_dim), by position pos */
static void rope(const cpu_backend *b, float *q, float *k, int pos) {
    const l2c_config *p = &b->base.model->config;
    int head_size = l2c_head_size(p);
    int kv_dim = l2c_kv_dim(p);
    const float *fcr = b->rope_cos + (size_t)pos * (head_size / 2);
    const float *fci = b->rope_sin + (size_t)pos * (head_size / 2);
    for (int i = 0; i < p->dim; i += 2) {
        int pair = (i % head_size) / 2;
        int rotn = i < kv_dim ? 2 : 1;
        for (int v = 0; v < rotn; v++) {
            float *vec = v == 0 ? q : k;
            float v0 = vec[i];
            float v1 = vec[i + 1];
            vec[i] = v0 * fcr[pair] - v1 * fci[pair];
            vec[i + 1] = v0 * fci[pair] + v1 * fcr[pair];
        }
    }
}

/* One query head over positions 0 .. pos: xb (head_size) gets the softmax(q . k / sqrt(head_size))
 * -weighted sum of the values. keys is the head's key/value head in the transposed key cache
 * (head_size rows of seq_len positions), values its first value in the value cache (rows kv_dim
 * apart); att holds pos + 1 scores.
 *
 * The keys are transposed so that the scores of consecutive positions are computed side by side
 * in vector lanes while each position's sum still adds q[i] * k[i] in the order of i, as
 * llama2.c's loop does. */
static void attend(float *xb, const float *q, float *att, const float *keys, int seq_len,
                   const float *values, int kv_dim, int head_size, int pos) {
    for (int t = 0; t <= pos; t++) {
        att[t] = 0.0f;
    }
    for (int i = 0; i < head_size; i++) {
        const float *k = keys + (size_t)i * seq_len;
        float qi = q[i];
        for (int t = 0; t <= pos; t++) {
            att[t] += qi * k[t];
        }
    }
    float scale = sqrtf(head_size);
    for (int t = 0; t <= pos; t++) {
        att[t] /= scale;
    }
    softmax(att, pos + 1);

    memset(xb, 0, head_size * sizeof(float));
    for (int t = 0; t <= pos; t++) {
        const float *v = values + (size_t)t * kv_dim;
        float a = att[t];
        for (int i = 0; i < head_size; i++) {
            xb[i] += a * v[i];
        }
    }
}

/* Writes the keys k (n_tokens, kv_dim) of positions pos .. into layer l's transposed cache. */
static void store_keys(cpu_backend *b, int l, int pos, const float *k, int n_tokens) {
    const l2c_config *p = &b->base.model->config;
    int kv_dim = l2c_kv_dim(p);
    float *keys = b->key_cache + (size_t)l * kv_dim * p->seq_len + pos;
    for (int i = 0; i < kv_dim; i++) {
        for (int t = 0; t < n_tokens; t++) {
            keys[(size_t)i * p->seq_len + t] = k[(size_t)t * kv_dim + i];
        }
    }
}

/* SwiGLU's gate: hb = silu(hb) * hb2 */
static void swiglu(float *hb, const float *hb2, int size) {
    for (int i = 0; i < size; i++) {
        float val = hb[i];
        val *= (1.0f / (1.0f + expf(-val)));
        val *= hb2[i];
        hb[i] = val;
    }
}

static void add(float *x, const float *y, int size) {
    for (int i = 0; i < size; i++) {
        x[i] += y[i];
    }
}

/* ------------------------------------------------------------------------------------------------
 * forward: one token
 */

static l2c_status check_token(const l2c_config *p, int token) {
    if (token < 0 || token >= p->vocab_size) {
        return l2c_fail(L2C_ERR_ARG, "token id %d is outside the vocabulary (0 to %d)",
                        token, p->vocab_size - 1);
    }
    return L2C_OK;
}

/* the classifier into logits from the last residual stream x (overwritten by its rmsnorm) */
static void classify(cpu_backend *b, float *x) {
    const l2c_config *p = &b->base.model->config;
    const l2c_weights *w = &b->base.model->weights;
    rmsnorm(x, x, w->rms_final_weight, p->dim);
    matrix cls = {w->wcls, w->wcls ? NULL : &w->q_wcls};
    matmul(b, b->logits, x, cls, p->dim, p->vocab_size);
}

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

    l2c_status s = check_token(p, token);
    if (s != L2C_OK) return s;
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
        rope(b, b->q, b->k, pos);

        /* key and value at this position into the cache */
        size_t loff = (size_t)l * p->seq_len * kv_dim;
        store_keys(b, l, pos, b->k, 1);
        memcpy(b->value_cache + loff + (size_t)pos * kv_dim, b->v, kv_dim * sizeof(float));

        /* multi-head attention, each kv head shared by kv_mul query heads */
        size_t attention_work = (size_t)p->n_heads * head_size * (pos + 1);
        #pragma omp parallel for if (attention_work >= CPU_PARALLEL_WORK)
        for (int h = 0; h < p->n_heads; h++) {
            int kv = (h / kv_mul) * head_size;
            attend(b->xb + h * head_size, b->q + h * head_size, b->att + (size_t)h * p->seq_len,
                   b->key_cache + loff + (size_t)kv * p->seq_len, p->seq_len,
                   b->value_cache + loff + kv, kv_dim, head_size, pos);
        }

        /* output projection, then the residual connection back into x */
        matmul(b, b->xb2, b->xb, layer_matrix(w->wo, w->q_wo, l, dim, dim), dim, dim);
        add(x, b->xb2, dim);

        /* ffn rmsnorm */
        rmsnorm(b->xb, x, w->rms_ffn_weight + (size_t)l * dim, dim);

        /* SwiGLU feed-forward: w2(silu(w1(x)) * w3(x)) */
        matmul(b, b->hb, b->xb, layer_matrix(w->w1, w->q_w1, l, dim, hidden_dim), dim,
               hidden_dim);
        matmul(b, b->hb2, b->xb, layer_matrix(w->w3, w->q_w3, l, dim, hidden_dim), dim,
               hidden_dim);
        swiglu(b->hb, b->hb2, hidden_dim);
        matmul(b, b->xb, b->hb, layer_matrix(w->w2, w->q_w2, l, hidden_dim, dim), hidden_dim,
               dim);

        /* residual connection */
        add(x, b->xb, dim);
    }

    /* final rmsnorm, then the classifier into logits */
    classify(b, x);
    *logits = b->logits;
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * prefill: a batch of prompt tokens
 */

static void batch_free(cpu_batch *batch) {
    free(batch->x);
    free(batch->xb);
    free(batch->xb2);
    free(batch->q);
    free(batch->k);
    free(batch->hb);
    free(batch->hb2);
    free(batch->att);
    free(batch->xq);
    free(batch->xq_values);
    free(batch->xq_scales);
    memset(batch, 0, sizeof *batch);
}

/* Allocates the batch buffers for CPU_BATCH tokens (fewer when seq_len is shorter). */
static l2c_status batch_alloc(cpu_backend *b) {
    const l2c_config *p = &b->base.model->config;
    cpu_batch *batch = &b->batch;
    size_t n = (size_t)(p->seq_len < CPU_BATCH ? p->seq_len : CPU_BATCH);
    size_t widest = (size_t)(p->dim > p->hidden_dim ? p->dim : p->hidden_dim);
    batch->threads = 1;
#ifdef _OPENMP
    batch->threads = omp_get_max_threads();
#endif
    batch->x = malloc(n * p->dim * sizeof(float));
    batch->xb = malloc(n * p->dim * sizeof(float));
    batch->xb2 = malloc(n * p->dim * sizeof(float));
    batch->q = malloc(n * p->dim * sizeof(float));
    batch->k = malloc(n * l2c_kv_dim(p) * sizeof(float));
    batch->hb = malloc(n * p->hidden_dim * sizeof(float));
    batch->hb2 = malloc(n * p->hidden_dim * sizeof(float));
    batch->att = malloc((size_t)batch->threads * p->seq_len * sizeof(float));
    int ok = batch->x && batch->xb && batch->xb2 && batch->q && batch->k && batch->hb &&
             batch->hb2 && batch->att;
    if (ok && p->format == L2C_FORMAT_V2) {
        size_t groups = widest / p->group_size;
        batch->xq = malloc(n * sizeof *batch->xq);
        batch->xq_values = malloc(n * widest);
        batch->xq_scales = malloc(n * groups * sizeof(float));
        ok = batch->xq && batch->xq_values && batch->xq_scales;
        for (size_t t = 0; ok && t < n; t++) {
            batch->xq[t].q = batch->xq_values + t * widest;
            batch->xq[t].s = batch->xq_scales + t * groups;
        }
    }
    if (!ok) {
        batch_free(batch);
        return l2c_fail(L2C_ERR_NOMEM, "out of memory for the CPU backend's prompt batch of %zu "
                        "tokens", n);
    }
    batch->capacity = (int)n;
    return L2C_OK;
}

/* Runs n_tokens <= capacity tokens at positions pos ..; the residual stream of the last is left
 * in batch->x's row n_tokens - 1. */
static void prefill_batch(cpu_backend *b, const int *tokens, int n_tokens, int pos) {
    const l2c_config *p = &b->base.model->config;
    const l2c_weights *w = &b->base.model->weights;
    cpu_batch *batch = &b->batch;
    int dim = p->dim;
    int kv_dim = l2c_kv_dim(p);
    int kv_mul = p->n_heads / p->n_kv_heads;
    int hidden_dim = p->hidden_dim;
    int head_size = l2c_head_size(p);
    int n_heads = p->n_heads;

    /* the tokens' embeddings */
    for (int t = 0; t < n_tokens; t++) {
        memcpy(batch->x + (size_t)t * dim, w->token_embedding_table + (size_t)tokens[t] * dim,
               dim * sizeof(float));
    }

    for (int l = 0; l < p->n_layers; l++) {
        size_t loff = (size_t)l * p->seq_len * kv_dim;
        float *value_rows = b->value_cache + loff + (size_t)pos * kv_dim;

        /* attention rmsnorm */
        for (int t = 0; t < n_tokens; t++) {
            rmsnorm(batch->xb + (size_t)t * dim, batch->x + (size_t)t * dim,
                    w->rms_att_weight + (size_t)l * dim, dim);
        }

        /* qkv matmuls for all tokens, the values straight into the cache */
        matmul_batch(b, batch->q, dim, batch->xb, layer_matrix(w->wq, w->q_wq, l, dim, dim), dim,
                     dim, n_tokens);
        matmul_batch(b, batch->k, kv_dim, batch->xb,
                     layer_matrix(w->wk, w->q_wk, l, dim, kv_dim), dim, kv_dim, n_tokens);
        matmul_batch(b, value_rows, kv_dim, batch->xb,
                     layer_matrix(w->wv, w->q_wv, l, dim, kv_dim), dim, kv_dim, n_tokens);

        /* RoPE: rotate each token's q and k by its position, then the keys into the cache */
        for (int t = 0; t < n_tokens; t++) {
            rope(b, batch->q + (size_t)t * dim, batch->k + (size_t)t * kv_dim, pos + t);
        }
        store_keys(b, l, pos, batch->k, n_tokens);

        /* causal multi-head attention: token t sees positions 0 .. pos + t */
        size_t attention_work = (size_t)n_tokens * n_heads * head_size * (pos + n_tokens);
        #pragma omp parallel for schedule(dynamic, 1) num_threads(batch->threads) \
            if (attention_work >= CPU_PARALLEL_WORK)
        for (int th = 0; th < n_tokens * n_heads; th++) {
            int t = th / n_heads, h = th % n_heads;
            int thread = 0;
#ifdef _OPENMP
            thread = omp_get_thread_num();
#endif
            int kv = (h / kv_mul) * head_size;
            attend(batch->xb + (size_t)t * dim + h * head_size,
                   batch->q + (size_t)t * dim + h * head_size,
                   batch->att + (size_t)thread * p->seq_len,
                   b->key_cache + loff + (size_t)kv * p->seq_len, p->seq_len,
                   b->value_cache + loff + kv, kv_dim, head_size, pos + t);
        }

        /* output projection, then the residual connection back into x */
        matmul_batch(b, batch->xb2, dim, batch->xb, layer_matrix(w->wo, w->q_wo, l, dim, dim),
                     dim, dim, n_tokens);
        add(batch->x, batch->xb2, n_tokens * dim);

        /* ffn rmsnorm */
        for (int t = 0; t < n_tokens; t++) {
            rmsnorm(batch->xb + (size_t)t * dim, batch->x + (size_t)t * dim,
                    w->rms_ffn_weight + (size_t)l * dim, dim);
        }

        /* SwiGLU feed-forward: w2(silu(w1(x)) * w3(x)) */
        matmul_batch(b, batch->hb, hidden_dim, batch->xb,
                     layer_matrix(w->w1, w->q_w1, l, dim, hidden_dim), dim, hidden_dim, n_tokens);
        matmul_batch(b, batch->hb2, hidden_dim, batch->xb,
                     layer_matrix(w->w3, w->q_w3, l, dim, hidden_dim), dim, hidden_dim, n_tokens);
        swiglu(batch->hb, batch->hb2, n_tokens * hidden_dim);
        matmul_batch(b, batch->xb2, dim, batch->hb,
                     layer_matrix(w->w2, w->q_w2, l, hidden_dim, dim), hidden_dim, dim, n_tokens);

        /* residual connection */
        add(batch->x, batch->xb2, n_tokens * dim);
    }
}

static l2c_status cpu_prefill(l2c_backend *backend, const int *tokens, int n_tokens, int pos,
                              float **logits) {
    cpu_backend *b = (cpu_backend *)backend;
    const l2c_config *p = &backend->model->config;
    for (int t = 0; t < n_tokens; t++) {
        l2c_status s = check_token(p, tokens[t]);
        if (s != L2C_OK) return s;
    }
    if (!b->batch.capacity) {
        l2c_status s = batch_alloc(b);
        if (s != L2C_OK) return s;
    }

    /* the prompt in batches, then the classifier on the last token only */
    int done = 0;
    while (done < n_tokens) {
        int n = n_tokens - done < b->batch.capacity ? n_tokens - done : b->batch.capacity;
        prefill_batch(b, tokens + done, n, pos + done);
        done += n;
    }
    int last = (n_tokens - 1) % b->batch.capacity;
    memcpy(b->x, b->batch.x + (size_t)last * p->dim, p->dim * sizeof(float));
    classify(b, b->x);
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
    free(b->rope_cos);
    free(b->rope_sin);
    free(b->xq.q);
    free(b->xq.s);
    batch_free(&b->batch);
    free(b);
}

static const l2c_backend_ops cpu_ops = {
    .name    = "cpu",
    .forward = cpu_forward,
    .prefill = cpu_prefill,
    .report  = NULL,
    .destroy = cpu_destroy,
};

l2c_status l2c_backend_cpu_create(const l2c_model *model, l2c_backend **backend) {
    *backend = NULL;
    const l2c_config *p = &model->config;
    size_t kv_dim = (size_t)l2c_kv_dim(p);
    size_t cache = (size_t)p->n_layers * p->seq_len * kv_dim;
    size_t widest = (size_t)(p->dim > p->hidden_dim ? p->dim : p->hidden_dim);
    size_t rotations = (size_t)p->seq_len * (l2c_head_size(p) / 2);

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
    b->rope_cos = malloc(rotations * sizeof(float));
    b->rope_sin = malloc(rotations * sizeof(float));
    if (p->format == L2C_FORMAT_V2) {
        b->xq.q = calloc(widest, 1);
        b->xq.s = calloc(widest, sizeof(float));
    }
    if (!b->x || !b->xb || !b->xb2 || !b->hb || !b->hb2 || !b->q || !b->k || !b->v || !b->att ||
        !b->logits || !b->key_cache || !b->value_cache || !b->rope_cos || !b->rope_sin ||
        (p->format == L2C_FORMAT_V2 && (!b->xq.q || !b->xq.s))) {
        cpu_destroy(&b->base);
        return l2c_fail(L2C_ERR_NOMEM, "out of memory for the CPU backend's state "
                        "(key/value cache of %zu MiB)", 2 * cache * sizeof(float) >> 20);
    }
    rope_tables(p, b->rope_cos, b->rope_sin);

    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    snprintf(b->base.description, sizeof b->base.description, "cpu, %d thread%s, %s", threads,
             threads == 1 ? "" : "s", cpu_blas_name());
    size_t end = strlen(b->base.description);
    while (end > 0 && b->base.description[end - 1] == ' ') {
        b->base.description[--end] = '\0';
    }
    *backend = &b->base;
    return L2C_OK;
}
