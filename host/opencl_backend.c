/*
 * opencl_backend.c - the forward pass on an OpenCL device.
 *
 * At creation every weight is written once into device buffers ("arenas", each no larger than
 * the device's largest allocation, holding whole matrices), the key and value caches, the
 * activations and the RoPE table are allocated on the device, and the kernels of kernels_cl are
 * built. Per token only the token id and the position travel as kernel arguments; the layers run
 * without a host round trip, and one blocking read brings the logits back.
 *
 * Matrix-vector products go through one dispatcher (gemv) that each matrix's engine steers:
 * CLBlastSgemv or the own kernel of gemv_f32.cl for fp32 weights (with L2C_GEMV_AUTO, whichever
 * ran faster for the matrix's shape at creation), the own kernel of gemv_q8.cl for Q8_0 weights.
 */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <clblast_c.h>

#include "internal.h"
#include "opencl_device.h"

/* ------------------------------------------------------------------------------------------------
 * device tensors
 */

/* A place in a device buffer; offsets count elements of the tensor's type. */
typedef struct {
    cl_mem buffer;
    size_t offset;
} l2c_cl_ref;

/* How a matrix-vector product runs.
 * TODO: no fp16 weights yet (L2C_DTYPE_F16 fails); an fp16 engine would store the fp32 weights
 * halved at upload and add a gemv_f16 kernel beside gemv_f32. */
typedef enum {
    L2C_CL_GEMV_CLBLAST = 0, /* CLBlastSgemv, fp32 */
    L2C_CL_GEMV_OWN_F32,     /* gemv_f32 of gemv_f32.cl: a work-group per row */
    L2C_CL_GEMV_OWN_ROWS,    /* gemv_f32_rows of gemv_f32.cl: a work-item per row */
    L2C_CL_GEMV_OWN_Q8,      /* gemv_q8.cl, after quantize_q8 of the input */
} l2c_cl_gemv_engine;

static const char *const engine_names[] = {"clblast", "gemv_f32", "gemv_f32_rows", "gemv_q8"};

/* A weight matrix of rows outputs by cols inputs, row-major. */
typedef struct {
    l2c_cl_ref         w;      /* fp32 values, or Q8_0 int8 values */
    l2c_cl_ref         s;      /* Q8_0 scales, one per group of group_size values */
    int                rows;
    int                cols;
    l2c_cl_gemv_engine engine;
} l2c_cl_matrix;

typedef struct {
    l2c_cl_ref    rms_att_weight;
    l2c_cl_ref    rms_ffn_weight;
    l2c_cl_matrix wq, wk, wv, wo, w1, w2, w3;
    cl_mem        key_cache;   /* (seq_len, kv_dim) */
    cl_mem        value_cache; /* (seq_len, kv_dim) */
} l2c_cl_layer;

/* ------------------------------------------------------------------------------------------------
 * kernels and profile kinds
 */

typedef enum {
    K_EMBED_F32,
    K_EMBED_Q8,
    K_RMSNORM,
    K_QUANTIZE_Q8,
    K_GEMV_Q8,
    K_GEMV_F32,
    K_GEMV_F32_ROWS,
    K_ROPE,
    K_ATTENTION_SCORES,
    K_ATTENTION_SOFTMAX,
    K_ATTENTION_VALUES,
    K_RESIDUAL_ADD,
    K_SWIGLU,
    K_COUNT
} l2c_cl_kernel_id;

static const char *const kernel_names[K_COUNT] = {
    "embed_f32", "embed_q8", "rmsnorm", "quantize_q8", "gemv_q8", "gemv_f32", "gemv_f32_rows",
    "rope", "attention_scores", "attention_softmax", "attention_values", "residual_add",
    "swiglu",
};

/* What the profile adds up, in the order a token meets them. */
typedef enum {
    P_EMBED,
    P_RMSNORM,
    P_QUANTIZE,
    P_GEMV_QKV,
    P_ROPE,
    P_ATTENTION,
    P_GEMV_WO,
    P_RESIDUAL,
    P_GEMV_FFN_UP,
    P_SWIGLU,
    P_GEMV_FFN_DOWN,
    P_GEMV_CLASSIFIER,
    P_READ_LOGITS,
    P_COUNT
} l2c_cl_profile_kind;

static const char *const profile_names[P_COUNT] = {
    "embedding", "rmsnorm", "quantize", "gemv q k v", "rope", "attention", "gemv wo",
    "residual", "gemv w1 w3", "swiglu", "gemv w2", "gemv classifier", "read logits",
};

/* ------------------------------------------------------------------------------------------------
 * the backend
 */

typedef struct {
    l2c_backend        base;
    l2c_cl_device      dev;
    cl_context         context;
    cl_command_queue   queue;
    cl_program         program;
    cl_kernel          kernels[K_COUNT];
    size_t             reduce_size; /* work-group size of the reduction kernels */
    size_t             local_size;  /* work-group size of the other kernels */
    int                q8;          /* Q8_0 weights (version 2) */
    int                group_size;  /* Q8_0 */
    char               engines[72]; /* the gemv engines, for the description */

    /* weights */
    cl_mem       *arenas;
    int           n_arenas;
    l2c_cl_layer *layers;
    l2c_cl_matrix token_table;      /* (vocab_size, dim), fp32 or Q8_0 */
    l2c_cl_ref    rms_final_weight;
    l2c_cl_matrix wcls;

    /* activations of the current position */
    cl_mem x, xb, xb2, hb, hb2, q, att, logits;
    cl_mem xq, xs;                  /* the quantized input of the next products (Q8_0) */
    cl_mem rope_table;              /* (seq_len, head_size / 2) pairs of (cos, sin) */
    float *host_logits;

    /* profile: one event per command of the current token */
    int          profile;
    cl_event    *events;
    int         *event_kinds;
    int          n_events;
    int          max_events;
    double       profile_ns[P_COUNT];
    long long    profile_calls[P_COUNT];
    long long    profile_tokens;
} l2c_cl_backend;

/* Live backends: CLBlast's program cache keeps every context it compiled for alive, so it is
 * emptied when the last backend goes. */
static atomic_int live_backends;

void l2c_opencl_options_default(l2c_opencl_options *options) {
    options->device = -1;
    options->gemv = L2C_GEMV_AUTO;
    options->dtype = L2C_DTYPE_F32;
    options->profile = 0;
    options->max_alloc_override = 0;
    options->mem_limit = 0;
}

/* ------------------------------------------------------------------------------------------------
 * small helpers
 */

/* clSetKernelArg for each (size, pointer) pair in order. */
static cl_int set_args(cl_kernel kernel, int n, ...) {
    va_list args;
    va_start(args, n);
    cl_int err = CL_SUCCESS;
    for (int i = 0; i < n && err == CL_SUCCESS; i++) {
        size_t size = va_arg(args, size_t);
        const void *value = va_arg(args, const void *);
        err = clSetKernelArg(kernel, (cl_uint)i, size, value);
    }
    va_end(args);
    return err;
}

#define ARG(v)       sizeof(v), (const void *)&(v)
#define LOCAL(bytes) (size_t)(bytes), (const void *)NULL

/* The next profiling event slot, or NULL when not profiling. */
static cl_event *event_slot(l2c_cl_backend *b, l2c_cl_profile_kind kind) {
    if (!b->profile || b->n_events >= b->max_events) return NULL;
    b->event_kinds[b->n_events] = kind;
    b->events[b->n_events] = NULL;
    return &b->events[b->n_events++];
}

/* Adds the finished commands' times to the profile (when collect) and releases the events. */
static void settle_events(l2c_cl_backend *b, int collect) {
    for (int i = 0; i < b->n_events; i++) {
        if (!b->events[i]) continue;
        cl_ulong start = 0, end = 0;
        if (collect &&
            clGetEventProfilingInfo(b->events[i], CL_PROFILING_COMMAND_START, sizeof start,
                                    &start, NULL) == CL_SUCCESS &&
            clGetEventProfilingInfo(b->events[i], CL_PROFILING_COMMAND_END, sizeof end,
                                    &end, NULL) == CL_SUCCESS && end >= start) {
            b->profile_ns[b->event_kinds[i]] += (double)(end - start);
            b->profile_calls[b->event_kinds[i]]++;
        }
        clReleaseEvent(b->events[i]);
    }
    b->n_events = 0;
}

static l2c_status launch(l2c_cl_backend *b, l2c_cl_kernel_id id, cl_uint dims,
                         const size_t *global, const size_t *local, l2c_cl_profile_kind kind) {
    cl_int err = clEnqueueNDRangeKernel(b->queue, b->kernels[id], dims, NULL, global, local, 0,
                                        NULL, event_slot(b, kind));
    if (err != CL_SUCCESS) {
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "running the kernel %s on %s", kernel_names[id],
                           b->dev.name);
    }
    return L2C_OK;
}

/* Runs a one-element-per-work-item kernel over n elements: the global size is n rounded up to the
 * fixed local size, since an implementation that picks the local size itself (or compiles one
 * variant per local size, as PoCL does) would otherwise see a new size at every position. */
static l2c_status launch_elements(l2c_cl_backend *b, l2c_cl_kernel_id id, size_t n,
                                  l2c_cl_profile_kind kind) {
    size_t local = b->local_size;
    size_t global = (n + local - 1) / local * local;
    return launch(b, id, 1, &global, &local, kind);
}

static l2c_status args_failed(const l2c_cl_backend *b, l2c_cl_kernel_id id, cl_int err) {
    return l2c_cl_fail(L2C_ERR_DEVICE, err, "setting the arguments of the kernel %s on %s",
                       kernel_names[id], b->dev.name);
}

/* ------------------------------------------------------------------------------------------------
 * the operations of the forward pass: each enqueues its kernels and returns without waiting
 */

/* copy the token's embedding row into x */
static l2c_status op_embed(l2c_cl_backend *b, int token) {
    int dim = b->base.model->config.dim;
    const l2c_cl_matrix *t = &b->token_table;
    cl_ulong w_offset = t->w.offset;
    cl_int err;
    l2c_cl_kernel_id id;
    if (b->q8) {
        id = K_EMBED_Q8;
        cl_ulong s_offset = t->s.offset;
        err = set_args(b->kernels[id], 8, ARG(b->x), ARG(t->w.buffer), ARG(w_offset),
                       ARG(t->s.buffer), ARG(s_offset), ARG(token), ARG(dim),
                       ARG(b->group_size));
    } else {
        id = K_EMBED_F32;
        err = set_args(b->kernels[id], 5, ARG(b->x), ARG(t->w.buffer), ARG(w_offset),
                       ARG(token), ARG(dim));
    }
    if (err != CL_SUCCESS) return args_failed(b, id, err);
    return launch_elements(b, id, (size_t)dim, P_EMBED);
}

/* out = rmsnorm(x) * weight; out may be x */
static l2c_status op_rmsnorm(l2c_cl_backend *b, cl_mem out, cl_mem x, const l2c_cl_ref *weight) {
    int dim = b->base.model->config.dim;
    cl_ulong w_offset = weight->offset;
    cl_int err = set_args(b->kernels[K_RMSNORM], 6, ARG(out), ARG(x), ARG(weight->buffer),
                          ARG(w_offset), ARG(dim), LOCAL(b->reduce_size * sizeof(float)));
    if (err != CL_SUCCESS) return args_failed(b, K_RMSNORM, err);
    size_t global = b->reduce_size;
    return launch(b, K_RMSNORM, 1, &global, &global, P_RMSNORM);
}

/* Prepares x (n values) as the input of the matrix-vector products that follow: Q8_0 weights
 * take it quantized per group, as runq.c does. */
static l2c_status gemv_input(l2c_cl_backend *b, cl_mem x, int n) {
    if (!b->q8) return L2C_OK;
    int n_groups = n / b->group_size;
    cl_int err = set_args(b->kernels[K_QUANTIZE_Q8], 5, ARG(b->xq), ARG(b->xs), ARG(x),
                          ARG(n_groups), ARG(b->group_size));
    if (err != CL_SUCCESS) return args_failed(b, K_QUANTIZE_Q8, err);
    return launch_elements(b, K_QUANTIZE_Q8, (size_t)n_groups, P_QUANTIZE);
}

/* y[y_offset ..] = m x by the matrix's engine; a Q8_0 matrix reads x as gemv_input last
 * quantized it. name and layer are for messages. */
static l2c_status gemv(l2c_cl_backend *b, const l2c_cl_matrix *m, const char *name, int layer,
                       cl_mem x, cl_mem y, size_t y_offset, l2c_cl_profile_kind kind) {
    if (m->engine == L2C_CL_GEMV_OWN_F32) {
        cl_ulong y_off = y_offset;
        cl_ulong w_offset = m->w.offset;
        cl_int err = set_args(b->kernels[K_GEMV_F32], 7, ARG(y), ARG(y_off), ARG(m->w.buffer),
                              ARG(w_offset), ARG(x), ARG(m->cols),
                              LOCAL(b->local_size * sizeof(float)));
        if (err != CL_SUCCESS) return args_failed(b, K_GEMV_F32, err);
        size_t local = b->local_size;
        size_t global = (size_t)m->rows * local;
        return launch(b, K_GEMV_F32, 1, &global, &local, kind);
    }
    if (m->engine == L2C_CL_GEMV_OWN_ROWS) {
        cl_ulong y_off = y_offset;
        cl_ulong w_offset = m->w.offset;
        cl_int err = set_args(b->kernels[K_GEMV_F32_ROWS], 7, ARG(y), ARG(y_off),
                              ARG(m->w.buffer), ARG(w_offset), ARG(x), ARG(m->rows),
                              ARG(m->cols));
        if (err != CL_SUCCESS) return args_failed(b, K_GEMV_F32_ROWS, err);
        return launch_elements(b, K_GEMV_F32_ROWS, (size_t)m->rows, kind);
    }
    if (m->engine == L2C_CL_GEMV_OWN_Q8) {
        cl_ulong y_off = y_offset;
        cl_ulong w_offset = m->w.offset;
        cl_ulong s_offset = m->s.offset;
        cl_int err = set_args(b->kernels[K_GEMV_Q8], 11, ARG(y), ARG(y_off), ARG(m->w.buffer),
                              ARG(w_offset), ARG(m->s.buffer), ARG(s_offset), ARG(b->xq),
                              ARG(b->xs), ARG(m->cols), ARG(b->group_size),
                              LOCAL(b->local_size * sizeof(float)));
        if (err != CL_SUCCESS) return args_failed(b, K_GEMV_Q8, err);
        size_t local = b->local_size;
        size_t global = (size_t)m->rows * local;
        return launch(b, K_GEMV_Q8, 1, &global, &local, kind);
    }

    CLBlastStatusCode st = CLBlastSgemv(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                        (size_t)m->rows, (size_t)m->cols, 1.0f, m->w.buffer,
                                        m->w.offset, (size_t)m->cols, x, 0, 1, 0.0f, y,
                                        y_offset, 1, &b->queue, event_slot(b, kind));
    if (st != CLBlastSuccess) {
        char where[32] = "";
        if (layer >= 0) snprintf(where, sizeof where, " of layer %d", layer);
        return l2c_fail(L2C_ERR_DEVICE, "%s (%d) while CLBlastSgemv multiplied by %s%s "
                        "(%d x %d) on %s", l2c_clblast_status_name(st), (int)st, name, where,
                        m->rows, m->cols, b->dev.name);
    }
    return L2C_OK;
}

/* rotate q and the key row at k_offset of the key cache */
static l2c_status op_rope(l2c_cl_backend *b, cl_mem key_cache, size_t k_offset, int pos) {
    const l2c_config *c = &b->base.model->config;
    int head_size = l2c_head_size(c);
    int kv_dim = l2c_kv_dim(c);
    cl_ulong k_off = k_offset;
    cl_int err = set_args(b->kernels[K_ROPE], 8, ARG(b->q), ARG(key_cache), ARG(k_off),
                          ARG(b->rope_table), ARG(pos), ARG(c->dim), ARG(head_size),
                          ARG(kv_dim));
    if (err != CL_SUCCESS) return args_failed(b, K_ROPE, err);
    return launch_elements(b, K_ROPE, (size_t)c->dim / 2, P_ROPE);
}

/* xb = attention of q over positions 0 .. pos of the layer's caches */
static l2c_status op_attention(l2c_cl_backend *b, const l2c_cl_layer *layer, int pos) {
    const l2c_config *c = &b->base.model->config;
    int head_size = l2c_head_size(c);
    int kv_dim = l2c_kv_dim(c);
    int kv_mul = c->n_heads / c->n_kv_heads;
    int seq_len = c->seq_len;
    int n = pos + 1;
    float sqrt_head_size = sqrtf((float)head_size);
    l2c_status status;

    /* scores */
    cl_int err = set_args(b->kernels[K_ATTENTION_SCORES], 9, ARG(b->q), ARG(layer->key_cache),
                          ARG(b->att), ARG(n), ARG(seq_len), ARG(head_size), ARG(kv_dim),
                          ARG(kv_mul), ARG(sqrt_head_size));
    if (err != CL_SUCCESS) return args_failed(b, K_ATTENTION_SCORES, err);
    size_t scores_local[2] = {b->local_size, 1};
    size_t scores_global[2] = {((size_t)n + b->local_size - 1) / b->local_size * b->local_size,
                               (size_t)c->n_heads};
    status = launch(b, K_ATTENTION_SCORES, 2, scores_global, scores_local, P_ATTENTION);
    if (status != L2C_OK) return status;

    /* softmax per head */
    err = set_args(b->kernels[K_ATTENTION_SOFTMAX], 4, ARG(b->att), ARG(n), ARG(seq_len),
                   LOCAL(b->reduce_size * sizeof(float)));
    if (err != CL_SUCCESS) return args_failed(b, K_ATTENTION_SOFTMAX, err);
    size_t softmax_global[2] = {b->reduce_size, (size_t)c->n_heads};
    size_t softmax_local[2] = {b->reduce_size, 1};
    status = launch(b, K_ATTENTION_SOFTMAX, 2, softmax_global, softmax_local, P_ATTENTION);
    if (status != L2C_OK) return status;

    /* weighted sum of the values */
    err = set_args(b->kernels[K_ATTENTION_VALUES], 9, ARG(b->att), ARG(layer->value_cache),
                   ARG(b->xb), ARG(n), ARG(seq_len), ARG(head_size), ARG(kv_dim), ARG(kv_mul),
                   ARG(c->dim));
    if (err != CL_SUCCESS) return args_failed(b, K_ATTENTION_VALUES, err);
    return launch_elements(b, K_ATTENTION_VALUES, (size_t)c->dim, P_ATTENTION);
}

/* x += y, n values */
static l2c_status op_residual(l2c_cl_backend *b, cl_mem x, cl_mem y, int n) {
    cl_int err = set_args(b->kernels[K_RESIDUAL_ADD], 3, ARG(x), ARG(y), ARG(n));
    if (err != CL_SUCCESS) return args_failed(b, K_RESIDUAL_ADD, err);
    return launch_elements(b, K_RESIDUAL_ADD, (size_t)n, P_RESIDUAL);
}

/* hb = silu(hb) * hb2 */
static l2c_status op_swiglu(l2c_cl_backend *b) {
    int hidden_dim = b->base.model->config.hidden_dim;
    cl_int err = set_args(b->kernels[K_SWIGLU], 3, ARG(b->hb), ARG(b->hb2), ARG(hidden_dim));
    if (err != CL_SUCCESS) return args_failed(b, K_SWIGLU, err);
    return launch_elements(b, K_SWIGLU, (size_t)hidden_dim, P_SWIGLU);
}

/* ------------------------------------------------------------------------------------------------
 * forward pass
 */

#define TRY(call) do { status = (call); if (status != L2C_OK) goto done; } while (0)

static l2c_status check_token(const l2c_config *c, int token, int pos) {
    if (token < 0 || token >= c->vocab_size) {
        return l2c_fail(L2C_ERR_ARG, "token %d is outside the vocabulary (0 .. %d)", token,
                        c->vocab_size - 1);
    }
    if (pos < 0 || pos >= c->seq_len) {
        return l2c_fail(L2C_ERR_ARG, "position %d is outside the context (0 .. %d)", pos,
                        c->seq_len - 1);
    }
    return L2C_OK;
}

/* Enqueues the whole forward pass of token at pos, up to the logits on the device. */
static l2c_status enqueue_token(l2c_cl_backend *b, int token, int pos) {
    const l2c_config *c = &b->base.model->config;
    int dim = c->dim;
    int kv_dim = l2c_kv_dim(c);
    int hidden_dim = c->hidden_dim;
    l2c_status status = L2C_OK;

    /* copy the token embedding into x */
    TRY(op_embed(b, token));

    for (int l = 0; l < c->n_layers; l++) {
        const l2c_cl_layer *layer = &b->layers[l];
        size_t row = (size_t)pos * kv_dim;

        /* attention rmsnorm */
        TRY(op_rmsnorm(b, b->xb, b->x, &layer->rms_att_weight));

        /* q, and k and v straight into this position's rows of the caches */
        TRY(gemv_input(b, b->xb, dim));
        TRY(gemv(b, &layer->wq, "wq", l, b->xb, b->q, 0, P_GEMV_QKV));
        TRY(gemv(b, &layer->wk, "wk", l, b->xb, layer->key_cache, row, P_GEMV_QKV));
        TRY(gemv(b, &layer->wv, "wv", l, b->xb, layer->value_cache, row, P_GEMV_QKV));

        /* RoPE: rotate q and k in each head */
        TRY(op_rope(b, layer->key_cache, row, pos));

        /* multi-head attention into xb */
        TRY(op_attention(b, layer, pos));

        /* output projection, residual connection back into x */
        TRY(gemv_input(b, b->xb, dim));
        TRY(gemv(b, &layer->wo, "wo", l, b->xb, b->xb2, 0, P_GEMV_WO));
        TRY(op_residual(b, b->x, b->xb2, dim));

        /* ffn rmsnorm */
        TRY(op_rmsnorm(b, b->xb, b->x, &layer->rms_ffn_weight));

        /* w2(silu(w1 x) * w3 x) */
        TRY(gemv_input(b, b->xb, dim));
        TRY(gemv(b, &layer->w1, "w1", l, b->xb, b->hb, 0, P_GEMV_FFN_UP));
        TRY(gemv(b, &layer->w3, "w3", l, b->xb, b->hb2, 0, P_GEMV_FFN_UP));
        TRY(op_swiglu(b));
        TRY(gemv_input(b, b->hb, hidden_dim));
        TRY(gemv(b, &layer->w2, "w2", l, b->hb, b->xb, 0, P_GEMV_FFN_DOWN));

        /* residual connection */
        TRY(op_residual(b, b->x, b->xb, dim));
    }

    /* final rmsnorm */
    TRY(op_rmsnorm(b, b->x, b->x, &b->rms_final_weight));

    /* classifier into logits */
    TRY(gemv_input(b, b->x, dim));
    TRY(gemv(b, &b->wcls, "the classifier", -1, b->x, b->logits, 0, P_GEMV_CLASSIFIER));

done:
    return status;
}

/* Brings the logits of position pos back to the host (the one wait per call). */
static l2c_status read_logits(l2c_cl_backend *b, int pos, float **logits) {
    size_t bytes = (size_t)b->base.model->config.vocab_size * sizeof(float);
    cl_int err = clEnqueueReadBuffer(b->queue, b->logits, CL_TRUE, 0, bytes, b->host_logits, 0,
                                     NULL, event_slot(b, P_READ_LOGITS));
    if (err != CL_SUCCESS) {
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "reading the logits of position %d from %s",
                           pos, b->dev.name);
    }
    *logits = b->host_logits;
    return L2C_OK;
}

/* After a token: the profile takes its commands' times (which needs them finished); after a
 * failure the queue is drained. */
static void finish_token(l2c_cl_backend *b, l2c_status status) {
    if (status != L2C_OK || b->profile) clFinish(b->queue);
    if (b->profile) {
        settle_events(b, status == L2C_OK);
        if (status == L2C_OK) b->profile_tokens++;
    }
}

static l2c_status opencl_forward(l2c_backend *backend, int token, int pos, float **logits) {
    l2c_cl_backend *b = (l2c_cl_backend *)backend;
    l2c_status status = check_token(&backend->model->config, token, pos);
    if (status != L2C_OK) return status;
    status = enqueue_token(b, token, pos);
    if (status == L2C_OK) status = read_logits(b, pos, logits);
    finish_token(b, status);
    return status;
}

/* The prompt's tokens go into the queue one after another without waiting; only the last
 * position's logits come back.
 * TODO: the products still run one token at a time; CLBlastSgemm over all the prompt's rows
 * (with each row's attention limited to its own position) would batch them. */
static l2c_status opencl_prefill(l2c_backend *backend, const int *tokens, int n_tokens, int pos,
                                 float **logits) {
    l2c_cl_backend *b = (l2c_cl_backend *)backend;
    const l2c_config *c = &backend->model->config;
    for (int i = 0; i < n_tokens; i++) {
        l2c_status status = check_token(c, tokens[i], pos + i);
        if (status != L2C_OK) return status;
    }
    for (int i = 0; i < n_tokens; i++) {
        l2c_status status = enqueue_token(b, tokens[i], pos + i);
        if (status == L2C_OK && i == n_tokens - 1) status = read_logits(b, pos + i, logits);
        finish_token(b, status);
        if (status != L2C_OK) return status;
    }
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * report and destroy
 */

static void opencl_report(const l2c_backend *backend, FILE *out) {
    const l2c_cl_backend *b = (const l2c_cl_backend *)backend;
    if (!b->profile || b->profile_tokens == 0) return;
    double total = 0.0;
    for (int k = 0; k < P_COUNT; k++) total += b->profile_ns[k];
    double tokens = (double)b->profile_tokens;
    fprintf(out, "profile of %lld token(s) on %s (device time of each command):\n",
            b->profile_tokens, b->dev.name);
    fprintf(out, "  %-16s %12s %12s %8s\n", "kind", "calls/token", "ms/token", "share");
    for (int k = 0; k < P_COUNT; k++) {
        if (b->profile_calls[k] == 0) continue;
        fprintf(out, "  %-16s %12.1f %12.4f %7.1f%%\n", profile_names[k],
                b->profile_calls[k] / tokens, b->profile_ns[k] / tokens * 1e-6,
                total > 0.0 ? 100.0 * b->profile_ns[k] / total : 0.0);
    }
    fprintf(out, "  %-16s %12s %12.4f %7.1f%%\n", "total", "", total / tokens * 1e-6, 100.0);
}

static void release_mem(cl_mem *mem) {
    if (*mem) clReleaseMemObject(*mem);
    *mem = NULL;
}

static void opencl_destroy(l2c_backend *backend) {
    l2c_cl_backend *b = (l2c_cl_backend *)backend;
    if (!b) return;
    if (b->queue) clFinish(b->queue);
    settle_events(b, 0);

    /* device memory */
    if (b->layers) {
        for (int l = 0; l < b->base.model->config.n_layers; l++) {
            release_mem(&b->layers[l].key_cache);
            release_mem(&b->layers[l].value_cache);
        }
    }
    for (int i = 0; i < b->n_arenas; i++) release_mem(&b->arenas[i]);
    cl_mem *state[] = {&b->x, &b->xb, &b->xb2, &b->hb, &b->hb2, &b->q, &b->att, &b->logits,
                       &b->xq, &b->xs, &b->rope_table};
    for (size_t i = 0; i < sizeof state / sizeof state[0]; i++) release_mem(state[i]);

    /* kernels, program, queue, context */
    for (int k = 0; k < K_COUNT; k++) {
        if (b->kernels[k]) clReleaseKernel(b->kernels[k]);
    }
    if (b->program) clReleaseProgram(b->program);
    if (b->queue) clReleaseCommandQueue(b->queue);
    if (b->context) {
        clReleaseContext(b->context);
        if (atomic_fetch_sub(&live_backends, 1) == 1) CLBlastClearCache();
    }

    free(b->arenas);
    free(b->layers);
    free(b->host_logits);
    free(b->events);
    free(b->event_kinds);
    free(b);
}

static const l2c_backend_ops opencl_ops = {
    .name    = "opencl",
    .forward = opencl_forward,
    .prefill = opencl_prefill,
    .report  = opencl_report,
    .destroy = opencl_destroy,
};

/* ------------------------------------------------------------------------------------------------
 * creation: weights into arenas
 */

/* One tensor to upload: where it is on the host, and where it goes. */
typedef struct {
    const char *name;
    int         layer;  /* -1 for tensors of the whole model */
    const void *host;
    size_t      bytes;
    size_t      elem;   /* element size: device offsets count elements */
    l2c_cl_ref *ref;
    int         arena;
    size_t      at;     /* byte offset in its arena */
} l2c_cl_upload;

typedef struct {
    l2c_cl_upload *items;
    int            n;
    int            max;
} l2c_cl_plan;

/* Alignment of every tensor in an arena. */
#define L2C_CL_ALIGN 256

static void plan_add(l2c_cl_plan *plan, const char *name, int layer, const void *host,
                     size_t bytes, size_t elem, l2c_cl_ref *ref) {
    l2c_cl_upload *u = &plan->items[plan->n++];
    u->name = name;
    u->layer = layer;
    u->host = host;
    u->bytes = bytes;
    u->elem = elem;
    u->ref = ref;
    u->arena = -1;
    u->at = 0;
}

/* Adds a matrix of rows x cols: fp32 from f32 (layer-th of a contiguous stack), or Q8_0 from q8. */
static void plan_matrix(l2c_cl_plan *plan, const l2c_cl_backend *b, const char *name, int layer,
                        const float *f32, const l2c_q8 *q8, int rows, int cols,
                        l2c_cl_matrix *m) {
    size_t count = (size_t)rows * cols;
    m->rows = rows;
    m->cols = cols;
    if (b->q8) {
        m->engine = L2C_CL_GEMV_OWN_Q8;
        plan_add(plan, name, layer, q8->q, count, 1, &m->w);
        plan_add(plan, name, layer, q8->s, count / b->group_size * sizeof(float), sizeof(float),
                 &m->s);
    } else {
        size_t at = layer >= 0 ? (size_t)layer * count : 0;
        plan_add(plan, name, layer, f32 + at, count * sizeof(float), sizeof(float), &m->w);
    }
}

/* Lists every weight in upload order: the token table, the layers, the final norm and the
 * classifier (unless it is the token table). */
static l2c_status plan_weights(l2c_cl_backend *b, l2c_cl_plan *plan) {
    const l2c_config *c = &b->base.model->config;
    const l2c_weights *w = &b->base.model->weights;
    int dim = c->dim;
    int kv_dim = l2c_kv_dim(c);
    int hidden_dim = c->hidden_dim;
    int q8 = b->q8;

    plan->max = c->n_layers * 16 + 8;
    plan->n = 0;
    plan->items = calloc((size_t)plan->max, sizeof *plan->items);
    if (!plan->items) return l2c_fail(L2C_ERR_NOMEM, "out of memory planning the uploads");

    plan_matrix(plan, b, "token_embedding_table", -1, w->token_embedding_table, &w->q_tokens,
                c->vocab_size, dim, &b->token_table);
    for (int l = 0; l < c->n_layers; l++) {
        l2c_cl_layer *layer = &b->layers[l];
        plan_add(plan, "rms_att_weight", l, w->rms_att_weight + (size_t)l * dim,
                 (size_t)dim * sizeof(float), sizeof(float), &layer->rms_att_weight);
        plan_matrix(plan, b, "wq", l, w->wq, q8 ? &w->q_wq[l] : NULL, dim, dim, &layer->wq);
        plan_matrix(plan, b, "wk", l, w->wk, q8 ? &w->q_wk[l] : NULL, kv_dim, dim, &layer->wk);
        plan_matrix(plan, b, "wv", l, w->wv, q8 ? &w->q_wv[l] : NULL, kv_dim, dim, &layer->wv);
        plan_matrix(plan, b, "wo", l, w->wo, q8 ? &w->q_wo[l] : NULL, dim, dim, &layer->wo);
        plan_add(plan, "rms_ffn_weight", l, w->rms_ffn_weight + (size_t)l * dim,
                 (size_t)dim * sizeof(float), sizeof(float), &layer->rms_ffn_weight);
        plan_matrix(plan, b, "w1", l, w->w1, q8 ? &w->q_w1[l] : NULL, hidden_dim, dim,
                    &layer->w1);
        plan_matrix(plan, b, "w2", l, w->w2, q8 ? &w->q_w2[l] : NULL, dim, hidden_dim,
                    &layer->w2);
        plan_matrix(plan, b, "w3", l, w->w3, q8 ? &w->q_w3[l] : NULL, hidden_dim, dim,
                    &layer->w3);
    }
    plan_add(plan, "rms_final_weight", -1, w->rms_final_weight, (size_t)dim * sizeof(float),
             sizeof(float), &b->rms_final_weight);
    int shared = q8 ? w->q_wcls.q == w->q_tokens.q : w->wcls == w->token_embedding_table;
    if (!shared) {
        plan_matrix(plan, b, "wcls", -1, w->wcls, &w->q_wcls, c->vocab_size, dim, &b->wcls);
    }
    return L2C_OK;
}

/* Packs the tensors in order into arenas of at most limit bytes; a tensor larger than limit is
 * an error naming it. Fills u->arena, u->at and the arena sizes (malloc'd). */
static l2c_status pack_weights(const l2c_cl_backend *b, l2c_cl_plan *plan, size_t limit,
                               size_t **arena_sizes, int *n_arenas) {
    *arena_sizes = NULL;
    *n_arenas = 0;
    size_t *sizes = calloc((size_t)plan->n, sizeof *sizes);
    if (!sizes) return l2c_fail(L2C_ERR_NOMEM, "out of memory planning the uploads");
    int n = 0;
    for (int i = 0; i < plan->n; i++) {
        l2c_cl_upload *u = &plan->items[i];
        if (u->bytes > limit) {
            free(sizes);
            char where[32] = "";
            if (u->layer >= 0) snprintf(where, sizeof where, " of layer %d", u->layer);
            return l2c_fail(L2C_ERR_UNSUPPORTED, "the weight %s%s needs %zu bytes, more than the "
                            "largest allocation of %zu bytes on %s (whole matrices are never "
                            "split)", u->name, where, u->bytes, limit, b->dev.name);
        }
        size_t at = n > 0 ? (sizes[n - 1] + L2C_CL_ALIGN - 1) / L2C_CL_ALIGN * L2C_CL_ALIGN : 0;
        if (n == 0 || at + u->bytes > limit) {
            n++;
            at = 0;
        }
        u->arena = n - 1;
        u->at = at;
        sizes[n - 1] = at + u->bytes;
    }
    *arena_sizes = sizes;
    *n_arenas = n;
    return L2C_OK;
}

/* Allocates a read-write device buffer of bytes, filled with zeros. */
static l2c_status create_buffer(l2c_cl_backend *b, cl_mem *mem, size_t bytes, size_t limit,
                                const char *what) {
    if (bytes > limit) {
        return l2c_fail(L2C_ERR_UNSUPPORTED, "%s needs %zu bytes, more than the largest "
                        "allocation of %zu bytes on %s", what, bytes, limit, b->dev.name);
    }
    cl_int err;
    *mem = clCreateBuffer(b->context, CL_MEM_READ_WRITE, bytes, NULL, &err);
    if (err != CL_SUCCESS) {
        *mem = NULL;
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "allocating %s (%zu bytes) on %s", what, bytes,
                           b->dev.name);
    }
    cl_uchar zero = 0;
    err = clEnqueueFillBuffer(b->queue, *mem, &zero, 1, 0, bytes, 0, NULL, NULL);
    if (err != CL_SUCCESS) {
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "clearing %s (%zu bytes) on %s", what, bytes,
                           b->dev.name);
    }
    return L2C_OK;
}

/* Bytes of the caches, activations and RoPE table that create_state and upload_rope_table
 * allocate. */
static size_t state_bytes(const l2c_cl_backend *b) {
    const l2c_config *c = &b->base.model->config;
    size_t caches = 2 * (size_t)c->n_layers * c->seq_len * l2c_kv_dim(c);
    size_t activations = 4 * (size_t)c->dim + 2 * (size_t)c->hidden_dim +
                         (size_t)c->n_heads * c->seq_len + (size_t)c->vocab_size;
    size_t rope = (size_t)c->seq_len * (l2c_head_size(c) / 2) * 2;
    return (caches + activations + rope) * sizeof(float);
}

/* Plans, allocates and writes the weights. */
static l2c_status upload_weights(l2c_cl_backend *b, size_t limit) {
    l2c_cl_plan plan = {0};
    size_t *sizes = NULL;
    l2c_status status = plan_weights(b, &plan);
    if (status == L2C_OK) status = pack_weights(b, &plan, limit, &sizes, &b->n_arenas);
    if (status != L2C_OK) goto done;

    /* everything must fit the device's memory */
    size_t weights = 0;
    for (int i = 0; i < b->n_arenas; i++) weights += sizes[i];
    size_t state = state_bytes(b);
    if (weights + state > b->dev.global_mem) {
        status = l2c_fail(L2C_ERR_DEVICE, "%s needs %zu bytes on %s (weights %zu, caches and "
                          "activations %zu), more than the %llu bytes of device memory it may use",
                          b->base.model->path, weights + state, b->dev.name, weights, state,
                          (unsigned long long)b->dev.global_mem);
        b->n_arenas = 0;
        goto done;
    }

    /* the arenas */
    b->arenas = calloc((size_t)b->n_arenas, sizeof *b->arenas);
    if (!b->arenas) {
        b->n_arenas = 0;
        status = l2c_fail(L2C_ERR_NOMEM, "out of memory listing the weight buffers");
        goto done;
    }
    for (int i = 0; i < b->n_arenas; i++) {
        cl_int err;
        b->arenas[i] = clCreateBuffer(b->context, CL_MEM_READ_ONLY, sizes[i], NULL, &err);
        if (err != CL_SUCCESS) {
            b->arenas[i] = NULL;
            status = l2c_cl_fail(L2C_ERR_DEVICE, err, "allocating weight buffer %d of %d "
                                 "(%zu bytes) on %s", i + 1, b->n_arenas, sizes[i], b->dev.name);
            goto done;
        }
    }

    /* every tensor into its place */
    for (int i = 0; i < plan.n; i++) {
        l2c_cl_upload *u = &plan.items[i];
        u->ref->buffer = b->arenas[u->arena];
        u->ref->offset = u->at / u->elem;
        cl_int err = clEnqueueWriteBuffer(b->queue, u->ref->buffer, CL_FALSE, u->at, u->bytes,
                                          u->host, 0, NULL, NULL);
        if (err != CL_SUCCESS) {
            char where[32] = "";
            if (u->layer >= 0) snprintf(where, sizeof where, " of layer %d", u->layer);
            status = l2c_cl_fail(L2C_ERR_DEVICE, err, "writing the weight %s%s (%zu bytes) to "
                                 "%s", u->name, where, u->bytes, b->dev.name);
            goto done;
        }
    }
    const l2c_weights *w = &b->base.model->weights;
    int shared = b->q8 ? w->q_wcls.q == w->q_tokens.q : w->wcls == w->token_embedding_table;
    if (shared) b->wcls = b->token_table;

done:
    free(plan.items);
    free(sizes);
    return status;
}

/* ------------------------------------------------------------------------------------------------
 * creation: state, kernels
 */

/* The (cos, sin) of every position and every pair of a head, in run.c's float arithmetic. */
static l2c_status upload_rope_table(l2c_cl_backend *b, size_t limit) {
    const l2c_config *c = &b->base.model->config;
    int head_size = l2c_head_size(c);
    size_t count = (size_t)c->seq_len * (head_size / 2) * 2;
    l2c_status status = create_buffer(b, &b->rope_table, count * sizeof(float), limit,
                                      "the RoPE table");
    if (status != L2C_OK) return status;
    float *table = malloc(count * sizeof(float));
    if (!table) return l2c_fail(L2C_ERR_NOMEM, "out of memory computing the RoPE table");
    float *entry = table;
    for (int pos = 0; pos < c->seq_len; pos++) {
        for (int head_dim = 0; head_dim < head_size; head_dim += 2) {
            float freq = 1.0f / powf(10000.0f, head_dim / (float)head_size);
            float val = pos * freq;
            *entry++ = cosf(val);
            *entry++ = sinf(val);
        }
    }
    cl_int err = clEnqueueWriteBuffer(b->queue, b->rope_table, CL_TRUE, 0, count * sizeof(float),
                                      table, 0, NULL, NULL);
    free(table);
    if (err != CL_SUCCESS) {
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "writing the RoPE table to %s", b->dev.name);
    }
    return L2C_OK;
}

/* The caches, the activations and the logits. */
static l2c_status create_state(l2c_cl_backend *b, size_t limit) {
    const l2c_config *c = &b->base.model->config;
    size_t f = sizeof(float);
    size_t cache_bytes = (size_t)c->seq_len * l2c_kv_dim(c) * f;
    l2c_status status = L2C_OK;
    char what[96];
    for (int l = 0; l < c->n_layers && status == L2C_OK; l++) {
        snprintf(what, sizeof what, "the key cache of layer %d", l);
        status = create_buffer(b, &b->layers[l].key_cache, cache_bytes, limit, what);
        if (status != L2C_OK) break;
        snprintf(what, sizeof what, "the value cache of layer %d", l);
        status = create_buffer(b, &b->layers[l].value_cache, cache_bytes, limit, what);
    }
    struct { cl_mem *mem; size_t bytes; const char *what; } state[] = {
        {&b->x,      c->dim * f,                          "the activation x"},
        {&b->xb,     c->dim * f,                          "the activation xb"},
        {&b->xb2,    c->dim * f,                          "the activation xb2"},
        {&b->hb,     c->hidden_dim * f,                   "the activation hb"},
        {&b->hb2,    c->hidden_dim * f,                   "the activation hb2"},
        {&b->q,      c->dim * f,                          "the query"},
        {&b->att,    (size_t)c->n_heads * c->seq_len * f, "the attention scores"},
        {&b->logits, c->vocab_size * f,                   "the logits"},
    };
    for (size_t i = 0; i < sizeof state / sizeof state[0] && status == L2C_OK; i++) {
        status = create_buffer(b, state[i].mem, state[i].bytes, limit, state[i].what);
    }
    if (status == L2C_OK && b->q8) {
        size_t n = (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim);
        status = create_buffer(b, &b->xq, n, limit, "the quantized activations");
        if (status == L2C_OK) {
            status = create_buffer(b, &b->xs, n / b->group_size * f, limit,
                                   "the activation scales");
        }
    }
    if (status != L2C_OK) return status;
    b->host_logits = malloc(c->vocab_size * f);
    if (!b->host_logits) return l2c_fail(L2C_ERR_NOMEM, "out of memory for the logits");
    return L2C_OK;
}

/* Builds the program and creates every kernel; picks the reductions' work-group size. */
static l2c_status create_kernels(l2c_cl_backend *b) {
    l2c_status status = l2c_cl_build_program(b->context, &b->dev, &b->program);
    if (status != L2C_OK) return status;
    for (int k = 0; k < K_COUNT; k++) {
        cl_int err;
        b->kernels[k] = clCreateKernel(b->program, kernel_names[k], &err);
        if (err != CL_SUCCESS) {
            b->kernels[k] = NULL;
            return l2c_cl_fail(L2C_ERR_DEVICE, err, "creating the kernel %s for %s",
                               kernel_names[k], b->dev.name);
        }
    }

    /* work-group sizes: powers of two, up to 256 for the reductions and 64 for the others, that
     * the device and every kernel allow */
    size_t limit = b->dev.max_work_group;
    for (int k = 0; k < K_COUNT; k++) {
        size_t size = 0;
        if (clGetKernelWorkGroupInfo(b->kernels[k], b->dev.device, CL_KERNEL_WORK_GROUP_SIZE,
                                     sizeof size, &size, NULL) == CL_SUCCESS &&
            size > 0 && size < limit) {
            limit = size;
        }
    }
    b->reduce_size = 1;
    while (b->reduce_size * 2 <= limit && b->reduce_size * 2 <= 256) b->reduce_size *= 2;
    b->local_size = b->reduce_size < 64 ? b->reduce_size : 64;
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * creation: the matrix-vector engines
 */

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The fastest of reps single products by m with its engine, each waited for; x and y are scratch
 * vectors long enough for any matrix. */
static l2c_status time_gemv(l2c_cl_backend *b, const l2c_cl_matrix *m, cl_mem x, cl_mem y,
                            int reps, double *seconds) {
    *seconds = INFINITY;
    for (int r = 0; r < reps; r++) {
        double start = seconds_now();
        l2c_status status = gemv(b, m, "a matrix of this shape", -1, x, y, 0, P_GEMV_QKV);
        if (status != L2C_OK) return status;
        cl_int err = clFinish(b->queue);
        if (err != CL_SUCCESS) {
            return l2c_cl_fail(L2C_ERR_DEVICE, err, "timing a %d x %d product on %s", m->rows,
                               m->cols, b->dev.name);
        }
        double elapsed = seconds_now() - start;
        if (elapsed < *seconds) *seconds = elapsed;
    }
    return L2C_OK;
}

/* Every matrix of the forward pass, in a malloc'd array of n_layers * 7 + 1. */
static l2c_cl_matrix **all_matrices(l2c_cl_backend *b) {
    int n_layers = b->base.model->config.n_layers;
    l2c_cl_matrix **all = malloc(((size_t)n_layers * 7 + 1) * sizeof *all);
    if (!all) return NULL;
    for (int l = 0; l < n_layers; l++) {
        l2c_cl_layer *layer = &b->layers[l];
        l2c_cl_matrix *of_layer[7] = {&layer->wq, &layer->wk, &layer->wv, &layer->wo,
                                      &layer->w1, &layer->w2, &layer->w3};
        memcpy(all + l * 7, of_layer, sizeof of_layer);
    }
    all[n_layers * 7] = &b->wcls;
    return all;
}

/* Times the fp32 engines once per shape and gives every matrix the fastest for its shape. */
static l2c_status time_engines(l2c_cl_backend *b, l2c_cl_matrix **all, int n) {
    const l2c_config *c = &b->base.model->config;
    static const l2c_cl_gemv_engine candidates[] = {
        L2C_CL_GEMV_CLBLAST, L2C_CL_GEMV_OWN_F32, L2C_CL_GEMV_OWN_ROWS,
    };
    int n_candidates = (int)(sizeof candidates / sizeof candidates[0]);

    /* scratch vectors for the products, and no profile of them */
    size_t longest = (size_t)c->dim;
    if ((size_t)c->hidden_dim > longest) longest = (size_t)c->hidden_dim;
    if ((size_t)c->vocab_size > longest) longest = (size_t)c->vocab_size;
    cl_mem x = NULL, y = NULL;
    int profile = b->profile;
    b->profile = 0;
    l2c_status status = create_buffer(b, &x, longest * sizeof(float), (size_t)-1,
                                      "a vector to time the products");
    if (status == L2C_OK) {
        status = create_buffer(b, &y, longest * sizeof(float), (size_t)-1,
                               "a vector to time the products");
    }

    /* the first matrix of each shape is timed; the others copy its engine */
    int wins[3] = {0, 0, 0};
    for (int i = 0; i < n && status == L2C_OK; i++) {
        int seen = -1;
        for (int j = 0; j < i && seen < 0; j++) {
            if (all[j]->rows == all[i]->rows && all[j]->cols == all[i]->cols) seen = j;
        }
        if (seen >= 0) {
            all[i]->engine = all[seen]->engine;
            continue;
        }
        double best = INFINITY;
        int best_candidate = 0;
        for (int k = 0; k < n_candidates && status == L2C_OK; k++) {
            double warm, seconds;
            all[i]->engine = candidates[k];
            status = time_gemv(b, all[i], x, y, 1, &warm);
            if (status == L2C_OK) status = time_gemv(b, all[i], x, y, 5, &seconds);
            if (status == L2C_OK && seconds < best) {
                best = seconds;
                best_candidate = k;
            }
        }
        all[i]->engine = candidates[best_candidate];
        wins[best_candidate]++;
    }
    snprintf(b->engines, sizeof b->engines, "auto (per shape: %d %s, %d %s, %d %s)",
             wins[0], engine_names[candidates[0]], wins[1], engine_names[candidates[1]],
             wins[2], engine_names[candidates[2]]);
    b->profile = profile;
    release_mem(&x);
    release_mem(&y);
    return status;
}

/* Sets every matrix's engine. Q8_0 matrices always take the own int8 kernel. For fp32:
 * CLBlast; own (a work-item per row on CPU devices, a work-group per row elsewhere); or per
 * shape the fastest of the three over a few timed products (the first product of each engine is
 * a warm-up, which also compiles CLBlast's kernel). */
static l2c_status choose_engines(l2c_cl_backend *b, l2c_gemv_engine wanted) {
    if (b->q8) {
        snprintf(b->engines, sizeof b->engines, "%s", engine_names[L2C_CL_GEMV_OWN_Q8]);
        return L2C_OK;
    }
    int n = b->base.model->config.n_layers * 7 + 1;
    l2c_cl_matrix **all = all_matrices(b);
    if (!all) return l2c_fail(L2C_ERR_NOMEM, "out of memory choosing the gemv engines");
    l2c_status status = L2C_OK;
    if (wanted == L2C_GEMV_AUTO) {
        status = time_engines(b, all, n);
    } else {
        l2c_cl_gemv_engine engine = L2C_CL_GEMV_CLBLAST;
        if (wanted == L2C_GEMV_OWN) {
            engine = b->dev.type & CL_DEVICE_TYPE_CPU ? L2C_CL_GEMV_OWN_ROWS
                                                      : L2C_CL_GEMV_OWN_F32;
        }
        for (int i = 0; i < n; i++) all[i]->engine = engine;
        snprintf(b->engines, sizeof b->engines, "%s", engine_names[engine]);
        if (engine == L2C_CL_GEMV_CLBLAST) {
            status = gemv(b, &b->wcls, "the classifier", -1, b->x, b->logits, 0,
                          P_GEMV_CLASSIFIER);
        }
    }
    free(all);
    return status;
}

l2c_status l2c_cl_force_gemv_kernel(l2c_backend *backend, const char *kernel) {
    l2c_cl_backend *b = (l2c_cl_backend *)backend;
    l2c_cl_gemv_engine engine;
    if (!strcmp(kernel, "clblast")) engine = L2C_CL_GEMV_CLBLAST;
    else if (!strcmp(kernel, "gemv_f32")) engine = L2C_CL_GEMV_OWN_F32;
    else if (!strcmp(kernel, "gemv_f32_rows")) engine = L2C_CL_GEMV_OWN_ROWS;
    else return l2c_fail(L2C_ERR_ARG, "no fp32 matrix-vector kernel is named %s", kernel);
    if (backend->ops != &opencl_ops || b->q8) {
        return l2c_fail(L2C_ERR_ARG, "only an OpenCL backend with fp32 weights can use %s",
                        kernel);
    }
    int n = backend->model->config.n_layers * 7 + 1;
    l2c_cl_matrix **all = all_matrices(b);
    if (!all) return l2c_fail(L2C_ERR_NOMEM, "out of memory setting the gemv kernel");
    for (int i = 0; i < n; i++) all[i]->engine = engine;
    free(all);
    snprintf(b->engines, sizeof b->engines, "%s", engine_names[engine]);
    char *engines_at = strstr(backend->description, ", products by ");
    if (engines_at) {
        size_t room = sizeof backend->description - (size_t)(engines_at - backend->description);
        snprintf(engines_at, room, ", products by %s", b->engines);
    }
    return L2C_OK;
}

/* Checks the model and the options against what this backend runs. */
static l2c_status check_supported(const l2c_model *model, const l2c_opencl_options *options) {
    const l2c_config *c = &model->config;
    if (options->dtype == L2C_DTYPE_F16) {
        return l2c_fail(L2C_ERR_UNSUPPORTED, "fp16 weights are not implemented by the OpenCL "
                        "backend yet (use fp32)");
    }
    if (options->gemv != L2C_GEMV_AUTO && options->gemv != L2C_GEMV_CLBLAST &&
        options->gemv != L2C_GEMV_OWN) {
        return l2c_fail(L2C_ERR_ARG, "unknown matrix-vector engine %d", (int)options->gemv);
    }
    if (c->dim <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->dim % c->n_heads != 0 ||
        c->n_heads % c->n_kv_heads != 0) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: dim %d, n_heads %d and n_kv_heads %d do not divide "
                        "evenly", model->path, c->dim, c->n_heads, c->n_kv_heads);
    }
    if (l2c_head_size(c) % 2 != 0) {
        return l2c_fail(L2C_ERR_UNSUPPORTED, "%s: head_size %d is odd, but RoPE rotates pairs "
                        "within a head", model->path, l2c_head_size(c));
    }
    if (c->format == L2C_FORMAT_V2 &&
        (c->group_size <= 0 || c->dim % c->group_size != 0 ||
         c->hidden_dim % c->group_size != 0)) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: group_size %d does not divide dim %d and "
                        "hidden_dim %d", model->path, c->group_size, c->dim, c->hidden_dim);
    }
    return L2C_OK;
}

l2c_status l2c_backend_opencl_create(const l2c_model *model, const l2c_opencl_options *options,
                                     l2c_backend **backend) {
    *backend = NULL;
    l2c_opencl_options defaults;
    if (!options) {
        l2c_opencl_options_default(&defaults);
        options = &defaults;
    }
    l2c_status status = check_supported(model, options);
    if (status != L2C_OK) return status;
    const l2c_config *c = &model->config;

    l2c_cl_backend *b = calloc(1, sizeof *b);
    if (!b) return l2c_fail(L2C_ERR_NOMEM, "out of memory creating the OpenCL backend");
    b->base.ops = &opencl_ops;
    b->base.model = model;
    b->q8 = c->format == L2C_FORMAT_V2;
    b->group_size = c->group_size;
    b->profile = options->profile;
    b->layers = calloc((size_t)c->n_layers, sizeof *b->layers);
    if (!b->layers) {
        free(b);
        return l2c_fail(L2C_ERR_NOMEM, "out of memory creating the OpenCL backend");
    }

    /* the device, its context and queue */
    status = l2c_cl_find_device(options->device, &b->dev);
    if (status != L2C_OK) goto fail;
    cl_int err;
    b->context = clCreateContext(NULL, 1, &b->dev.device, NULL, NULL, &err);
    if (err != CL_SUCCESS) {
        b->context = NULL;
        status = l2c_cl_fail(L2C_ERR_DEVICE, err, "creating a context on %s", b->dev.name);
        goto fail;
    }
    atomic_fetch_add(&live_backends, 1);
    cl_command_queue_properties properties = b->profile ? CL_QUEUE_PROFILING_ENABLE : 0;
    b->queue = clCreateCommandQueue(b->context, b->dev.device, properties, &err);
    if (err != CL_SUCCESS) {
        b->queue = NULL;
        status = l2c_cl_fail(L2C_ERR_DEVICE, err, "creating a command queue on %s", b->dev.name);
        goto fail;
    }
    if (b->profile) {
        b->max_events = c->n_layers * 24 + 8;
        b->events = calloc((size_t)b->max_events, sizeof *b->events);
        b->event_kinds = calloc((size_t)b->max_events, sizeof *b->event_kinds);
        if (!b->events || !b->event_kinds) {
            status = l2c_fail(L2C_ERR_NOMEM, "out of memory for the profile");
            goto fail;
        }
    }

    /* weights, caches, activations and the RoPE table, within the largest allocation and the
     * memory the user allows */
    if (options->mem_limit > 0 && options->mem_limit < b->dev.global_mem) {
        b->dev.global_mem = options->mem_limit;
    }
    size_t limit = options->max_alloc_override > 0 ? options->max_alloc_override
                                                   : (size_t)b->dev.max_alloc;
    status = upload_weights(b, limit);
    if (status != L2C_OK) goto fail;
    err = clFinish(b->queue);
    if (err != CL_SUCCESS) {
        status = l2c_cl_fail(L2C_ERR_DEVICE, err, "writing the weights of %s to %s",
                             model->path, b->dev.name);
        goto fail;
    }
    status = create_state(b, limit);
    if (status == L2C_OK) status = upload_rope_table(b, limit);
    if (status != L2C_OK) goto fail;

    /* kernels */
    status = create_kernels(b);
    if (status != L2C_OK) goto fail;

    /* the engine of each matrix; CLBlast compiles its kernel now, not at the first token */
    status = choose_engines(b, options->gemv);
    if (status != L2C_OK) goto fail;
    err = clFinish(b->queue);
    if (err != CL_SUCCESS) {
        status = l2c_cl_fail(L2C_ERR_DEVICE, err, "preparing the products of %s on %s",
                             model->path, b->dev.name);
        goto fail;
    }
    settle_events(b, 0);

    snprintf(b->base.description, sizeof b->base.description,
             "opencl device %d: %.90s (%s, %.40s), weights in %d buffer%s, products by %.60s",
             b->dev.index, b->dev.name, l2c_cl_device_type_name(b->dev.type),
             b->dev.platform_name, b->n_arenas, b->n_arenas == 1 ? "" : "s", b->engines);
    *backend = &b->base;
    return L2C_OK;

fail:
    opencl_destroy(&b->base);
    return status;
}
