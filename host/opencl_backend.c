/*
 * opencl_backend.c - the forward pass on an OpenCL device.
 *
 * At creation the weights are written once into device buffers (opencl_weights.c), the key and
 * value caches, the activations and the RoPE table are allocated on the device, the kernels of
 * kernels_cl are built, and each product gets its engines (opencl_tune.c).
 *
 * A token (forward) runs as a chain of launches with no host round trip until the one blocking
 * read of the logits: per layer RMSNorm (fused with the int8 quantization for Q8_0), one product
 * over wq | wk | wv, RoPE with the key and value written into the caches, attention in one
 * kernel, wo's product adding into the residual stream, RMSNorm, one product over w1 | w3 with
 * the SwiGLU gate in its epilogue, and w2's product adding into the residual stream.
 *
 * A prompt (prefill) runs in batches of up to b->batch tokens: the same steps over all the
 * batch's rows at once, the products as matrix products (CLBlastSgemm or gemm_f32, fp16 and
 * Q8_0 weights dequantized to fp32 first), attention causal within the batch, and only the last
 * token's logits computed.
 */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <clblast_c.h>

#include "opencl_backend.h"

/* Tokens of one batched step of a prompt, at most. */
#define L2C_CL_MAX_BATCH 128

const char *const l2c_cl_product_names[L2C_CL_N_PRODUCTS] = {
    "wq | wk | wv", "wo", "w1 | w3", "w2", "the classifier",
};
const char *const l2c_cl_gemv_names[L2C_CL_N_GEMV] = {"clblast", "rows", "wg"};
const char *const l2c_cl_gemm_names[L2C_CL_N_GEMM] = {"clblast", "own"};

static const char *const kernel_names[K_COUNT] = {
    "embed_f32", "embed_f16", "embed_q8", "rmsnorm", "rmsnorm_q8", "quantize_q8",
    "requantize_q8", "gemv_f32_rows", "gemv_f32_wg", "gemv_f16_rows", "gemv_f16_wg",
    "gemv_q8_rows", "gemv_q8_wg", "gemm_f32", "dequantize_q8", "dequantize_f16", "rope_store",
    "attention", "swiglu",
};

static const char *const profile_names[P_COUNT] = {
    "embedding", "rmsnorm", "quantize", "dequantize", "gemv q k v", "rope + cache", "attention",
    "gemv wo +x", "gemv w1 w3", "swiglu", "gemv w2 +x", "gemv classifier", "transfers",
};

/* The epilogue of each product (activations.cl's L2C_STORE, L2C_ACCUMULATE, L2C_SWIGLU). */
enum { MODE_STORE = 0, MODE_ACCUMULATE = 1, MODE_SWIGLU = 2 };
static const int product_modes[L2C_CL_N_PRODUCTS] = {
    MODE_STORE, MODE_ACCUMULATE, MODE_SWIGLU, MODE_ACCUMULATE, MODE_STORE,
};
static const l2c_cl_profile_kind product_kinds[L2C_CL_N_PRODUCTS] = {
    P_GEMV_QKV, P_GEMV_WO, P_GEMV_FFN_UP, P_GEMV_FFN_DOWN, P_GEMV_CLASSIFIER,
};

/* Live backends: CLBlast's program cache keeps every context it compiled for alive, so it is
 * emptied when the last backend goes. */
static atomic_int live_backends;

static const l2c_backend_ops opencl_ops;

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

/* The next profiling event slot of kind, or NULL when not profiling. */
static cl_event *event_slot(l2c_cl_backend *b, l2c_cl_profile_kind kind) {
    if (!b->profile || b->n_events >= b->max_events) return NULL;
    b->event_kinds[b->n_events] = kind;
    b->events[b->n_events] = NULL;
    b->event_starts[b->n_events] = NULL;
    return &b->events[b->n_events++];
}

/* An event slot for a library call that may enqueue several kernels (CLBlast's event is its last
 * kernel's): a marker enqueued first times the start, so the profile covers all of them. */
static cl_event *span_slot(l2c_cl_backend *b, l2c_cl_profile_kind kind) {
    if (!b->profile || b->n_events >= b->max_events) return NULL;
    cl_event start = NULL;
    if (clEnqueueMarkerWithWaitList(b->queue, 0, NULL, &start) != CL_SUCCESS) start = NULL;
    cl_event *slot = event_slot(b, kind);
    b->event_starts[slot - b->events] = start;
    return slot;
}

/* Adds the finished commands' times to profile (when not NULL) and releases the events. */
static void settle_events(l2c_cl_backend *b, l2c_cl_profile *profile) {
    for (int i = 0; i < b->n_events; i++) {
        cl_ulong start = 0, end = 0;
        cl_event first = b->event_starts[i] ? b->event_starts[i] : b->events[i];
        cl_profiling_info first_time = b->event_starts[i] ? CL_PROFILING_COMMAND_END
                                                          : CL_PROFILING_COMMAND_START;
        if (profile && b->events[i] &&
            clGetEventProfilingInfo(first, first_time, sizeof start, &start, NULL) ==
                CL_SUCCESS &&
            clGetEventProfilingInfo(b->events[i], CL_PROFILING_COMMAND_END, sizeof end,
                                    &end, NULL) == CL_SUCCESS && end >= start) {
            profile->ns[b->event_kinds[i]] += (double)(end - start);
            profile->calls[b->event_kinds[i]]++;
        }
        if (b->events[i]) clReleaseEvent(b->events[i]);
        if (b->event_starts[i]) clReleaseEvent(b->event_starts[i]);
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

/* Runs a kernel over n elements of each of n_tokens rows: global size (n rounded up to the fixed
 * local size, n_tokens), since an implementation that picks the local size itself (or compiles
 * one variant per local size, as PoCL does) would otherwise see a new size at every call. */
static l2c_status launch_rows(l2c_cl_backend *b, l2c_cl_kernel_id id, size_t n, int n_tokens,
                              size_t local_size, l2c_cl_profile_kind kind) {
    size_t local[2] = {local_size, 1};
    size_t global[2] = {(n + local_size - 1) / local_size * local_size, (size_t)n_tokens};
    return launch(b, id, 2, global, local, kind);
}

/* One work-group of local_size per row: global size (rows * local_size, n_tokens). */
static l2c_status launch_groups(l2c_cl_backend *b, l2c_cl_kernel_id id, size_t rows,
                                int n_tokens, size_t local_size, l2c_cl_profile_kind kind) {
    size_t local[2] = {local_size, 1};
    size_t global[2] = {rows * local_size, (size_t)n_tokens};
    return launch(b, id, 2, global, local, kind);
}

static l2c_status args_failed(const l2c_cl_backend *b, l2c_cl_kernel_id id, cl_int err) {
    return l2c_cl_fail(L2C_ERR_DEVICE, err, "setting the arguments of the kernel %s on %s",
                       kernel_names[id], b->dev.name);
}

/* The teams of the team-per-row products (gemv_*_wg): 32 work-items a row (a warp on NVIDIA
 * GPUs, half a wavefront on AMD's), in work-groups of the reductions' size. */
static size_t team_size(const l2c_cl_backend *b) {
    return b->reduce_size < 32 ? b->reduce_size : 32;
}

/* ------------------------------------------------------------------------------------------------
 * the operations of the forward pass: each enqueues its kernels and returns without waiting
 */

/* the embedding rows of n_tokens tokens into x: tokens from b->tokens, or the one token given
 * when n_tokens is 1 and from_buffer is 0 */
static l2c_status op_embed(l2c_cl_backend *b, int token, int n_tokens, int from_buffer) {
    int dim = b->base.model->config.dim;
    const l2c_cl_matrix *t = &b->token_table;
    cl_mem tokens = from_buffer ? b->tokens : NULL;
    cl_ulong w_offset = t->w.offset;
    cl_int err;
    l2c_cl_kernel_id id;
    if (b->wtype == L2C_CL_Q8) {
        id = K_EMBED_Q8;
        cl_ulong s_offset = t->s.offset;
        err = set_args(b->kernels[id], 9, ARG(b->x), ARG(t->w.buffer), ARG(w_offset),
                       ARG(t->s.buffer), ARG(s_offset), ARG(tokens), ARG(token), ARG(dim),
                       ARG(b->group_size));
    } else {
        id = b->wtype == L2C_CL_F16 ? K_EMBED_F16 : K_EMBED_F32;
        err = set_args(b->kernels[id], 6, ARG(b->x), ARG(t->w.buffer), ARG(w_offset),
                       ARG(tokens), ARG(token), ARG(dim));
    }
    if (err != CL_SUCCESS) return args_failed(b, id, err);
    return launch_rows(b, id, (size_t)dim, n_tokens, b->local_size, P_EMBED);
}

/* rmsnorm of n_tokens rows of x from row first, into the same rows of out from row 0 */
static l2c_status op_rmsnorm(l2c_cl_backend *b, cl_mem out, const l2c_cl_ref *weight, int first,
                             int n_tokens) {
    int dim = b->base.model->config.dim;
    cl_ulong out_offset = 0;
    cl_ulong x_offset = (cl_ulong)first * dim;
    cl_ulong w_offset = weight->offset;
    cl_int err = set_args(b->kernels[K_RMSNORM], 8, ARG(out), ARG(out_offset), ARG(b->x),
                          ARG(x_offset), ARG(weight->buffer), ARG(w_offset), ARG(dim),
                          LOCAL(b->reduce_size * sizeof(float)));
    if (err != CL_SUCCESS) return args_failed(b, K_RMSNORM, err);
    return launch_groups(b, K_RMSNORM, 1, n_tokens, b->reduce_size, P_RMSNORM);
}

/* rmsnorm of row first of x, quantized into xq and xs (one token, Q8_0) */
static l2c_status op_rmsnorm_q8(l2c_cl_backend *b, const l2c_cl_ref *weight, int first) {
    int dim = b->base.model->config.dim;
    cl_ulong x_offset = (cl_ulong)first * dim;
    cl_ulong w_offset = weight->offset;
    cl_int err = set_args(b->kernels[K_RMSNORM_Q8], 9, ARG(b->xq), ARG(b->xs), ARG(b->x),
                          ARG(x_offset), ARG(weight->buffer), ARG(w_offset), ARG(dim),
                          ARG(b->group_size), LOCAL(b->reduce_size * sizeof(float)));
    if (err != CL_SUCCESS) return args_failed(b, K_RMSNORM_Q8, err);
    return launch_groups(b, K_RMSNORM_Q8, 1, 1, b->reduce_size, P_RMSNORM);
}

/* The normalized input of the next products of one token at row first of x: xb, or xq and xs
 * for Q8_0. */
static l2c_status op_norm_vector(l2c_cl_backend *b, const l2c_cl_ref *weight, int first) {
    if (b->wtype == L2C_CL_Q8) return op_rmsnorm_q8(b, weight, first);
    return op_rmsnorm(b, b->xb, weight, first, 1);
}

/* one token's n values of in quantized into xq and xs (Q8_0) */
static l2c_status op_quantize(l2c_cl_backend *b, cl_mem in, int n) {
    int n_groups = n / b->group_size;
    cl_int err = set_args(b->kernels[K_QUANTIZE_Q8], 5, ARG(b->xq), ARG(b->xs), ARG(in),
                          ARG(n_groups), ARG(b->group_size));
    if (err != CL_SUCCESS) return args_failed(b, K_QUANTIZE_Q8, err);
    return launch_rows(b, K_QUANTIZE_Q8, (size_t)n_groups, 1, b->local_size, P_QUANTIZE);
}

/* n values of x replaced by what Q8_0 quantization keeps of them (batched Q8_0 products) */
static l2c_status op_requantize(l2c_cl_backend *b, cl_mem x, size_t n) {
    int n_groups = (int)(n / (size_t)b->group_size);
    cl_int err = set_args(b->kernels[K_REQUANTIZE_Q8], 3, ARG(x), ARG(n_groups),
                          ARG(b->group_size));
    if (err != CL_SUCCESS) return args_failed(b, K_REQUANTIZE_Q8, err);
    return launch_rows(b, K_REQUANTIZE_Q8, (size_t)n_groups, 1, b->local_size, P_QUANTIZE);
}

static const l2c_cl_matrix *product_matrix(const l2c_cl_backend *b, l2c_cl_product kind,
                                           int layer) {
    switch (kind) {
    case L2C_CL_QKV: return &b->layers[layer].wqkv;
    case L2C_CL_WO:  return &b->layers[layer].wo;
    case L2C_CL_W13: return &b->layers[layer].w13;
    case L2C_CL_W2:  return &b->layers[layer].w2;
    default:         return &b->wcls;
    }
}

/* "wo of layer 3" or "the classifier", for messages */
static const char *product_where(l2c_cl_product kind, int layer, char *buf, size_t size) {
    if (kind == L2C_CL_CLS) snprintf(buf, size, "%s", l2c_cl_product_names[kind]);
    else snprintf(buf, size, "%s of layer %d", l2c_cl_product_names[kind], layer);
    return buf;
}

/* The fp32 input and the output of a product (Q8_0 products of one token read xq and xs). */
static void product_buffers(const l2c_cl_backend *b, l2c_cl_product kind, cl_mem *in,
                            cl_mem *out) {
    *in = kind == L2C_CL_W2 ? b->hb : b->xb;
    switch (kind) {
    case L2C_CL_QKV: *out = b->qkv; break;
    case L2C_CL_WO:  *out = b->x; break;
    case L2C_CL_W13: *out = b->hb; break;
    case L2C_CL_W2:  *out = b->x; break;
    default:         *out = b->logits; break;
    }
}

/* hb = silu(h13[:hidden_dim]) * h13[hidden_dim:] for n_tokens rows */
static l2c_status op_swiglu(l2c_cl_backend *b, int n_tokens) {
    int hidden_dim = b->base.model->config.hidden_dim;
    cl_int err = set_args(b->kernels[K_SWIGLU], 3, ARG(b->hb), ARG(b->h13), ARG(hidden_dim));
    if (err != CL_SUCCESS) return args_failed(b, K_SWIGLU, err);
    return launch_rows(b, K_SWIGLU, (size_t)hidden_dim, n_tokens, b->local_size, P_SWIGLU);
}

l2c_status l2c_cl_product_vector(l2c_cl_backend *b, l2c_cl_product kind, int layer) {
    const l2c_cl_matrix *m = product_matrix(b, kind, layer);
    l2c_cl_profile_kind profile_kind = product_kinds[kind];
    int mode = product_modes[kind];
    int n_out = mode == MODE_SWIGLU ? m->rows / 2 : m->rows;
    cl_mem in, out;
    product_buffers(b, kind, &in, &out);
    cl_ulong zero = 0;
    cl_ulong w_offset = m->w.offset;
    l2c_cl_gemv engine = b->gemv[kind];

    /* CLBlast: y = w x (+ y), the gate after it */
    if (engine == L2C_CL_GEMV_CLBLAST) {
        cl_mem y = mode == MODE_SWIGLU ? b->h13 : out;
        float beta = mode == MODE_ACCUMULATE ? 1.0f : 0.0f;
        CLBlastStatusCode st = CLBlastSgemv(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                            (size_t)m->rows, (size_t)m->cols, 1.0f, m->w.buffer,
                                            m->w.offset, (size_t)m->cols, in, 0, 1, beta, y, 0,
                                            1, &b->queue, span_slot(b, profile_kind));
        if (st != CLBlastSuccess) {
            char where[64];
            return l2c_fail(L2C_ERR_DEVICE, "%s (%d) while CLBlastSgemv multiplied by %s "
                            "(%d x %d) on %s", l2c_clblast_status_name(st), (int)st,
                            product_where(kind, layer, where, sizeof where), m->rows, m->cols,
                            b->dev.name);
        }
        return mode == MODE_SWIGLU ? op_swiglu(b, 1) : L2C_OK;
    }

    /* own kernels: a work-item or a work-group per row, the epilogue fused */
    int rows = engine == L2C_CL_GEMV_ROWS;
    l2c_cl_kernel_id id;
    cl_int err;
    if (b->wtype == L2C_CL_Q8) {
        id = rows ? K_GEMV_Q8_ROWS : K_GEMV_Q8_WG;
        cl_ulong s_offset = m->s.offset;
        err = set_args(b->kernels[id], 12, ARG(out), ARG(zero), ARG(m->w.buffer), ARG(w_offset),
                       ARG(m->s.buffer), ARG(s_offset), ARG(b->xq), ARG(b->xs), ARG(n_out),
                       ARG(m->cols), ARG(b->group_size), ARG(mode));
    } else {
        if (b->wtype == L2C_CL_F16) id = rows ? K_GEMV_F16_ROWS : K_GEMV_F16_WG;
        else id = rows ? K_GEMV_F32_ROWS : K_GEMV_F32_WG;
        err = set_args(b->kernels[id], 9, ARG(out), ARG(zero), ARG(m->w.buffer), ARG(w_offset),
                       ARG(in), ARG(zero), ARG(n_out), ARG(m->cols), ARG(mode));
    }
    if (err != CL_SUCCESS) return args_failed(b, id, err);
    if (rows) return launch_rows(b, id, (size_t)n_out, 1, b->local_size, profile_kind);

    /* teams: the team size and the local sums follow the common arguments */
    int team = (int)team_size(b);
    cl_uint next = b->wtype == L2C_CL_Q8 ? 12 : 9;
    err = clSetKernelArg(b->kernels[id], next, sizeof team, &team);
    if (err == CL_SUCCESS) {
        err = clSetKernelArg(b->kernels[id], next + 1, b->reduce_size * sizeof(float), NULL);
    }
    if (err != CL_SUCCESS) return args_failed(b, id, err);
    size_t rows_per_group = b->reduce_size / (size_t)team;
    size_t groups = ((size_t)n_out + rows_per_group - 1) / rows_per_group;
    return launch_groups(b, id, groups, 1, b->reduce_size, profile_kind);
}

/* The fp32 weights of m: m itself, or m dequantized into wscratch. */
static l2c_status batch_weights(l2c_cl_backend *b, const l2c_cl_matrix *m, l2c_cl_ref *w) {
    if (b->wtype == L2C_CL_F32) {
        *w = m->w;
        return L2C_OK;
    }
    w->buffer = b->wscratch;
    w->offset = 0;
    cl_ulong w_offset = m->w.offset;
    cl_int err;
    l2c_cl_kernel_id id;
    size_t n;
    if (b->wtype == L2C_CL_Q8) {
        id = K_DEQUANTIZE_Q8;
        int n_groups = (int)((size_t)m->rows * m->cols / b->group_size);
        cl_ulong s_offset = m->s.offset;
        err = set_args(b->kernels[id], 7, ARG(b->wscratch), ARG(m->w.buffer), ARG(w_offset),
                       ARG(m->s.buffer), ARG(s_offset), ARG(n_groups), ARG(b->group_size));
        n = (size_t)n_groups;
    } else {
        id = K_DEQUANTIZE_F16;
        cl_ulong count = (cl_ulong)m->rows * m->cols;
        err = set_args(b->kernels[id], 4, ARG(b->wscratch), ARG(m->w.buffer), ARG(w_offset),
                       ARG(count));
        n = (size_t)((count + 7) / 8);
    }
    if (err != CL_SUCCESS) return args_failed(b, id, err);
    return launch_rows(b, id, n, 1, b->local_size, P_DEQUANTIZE);
}

l2c_status l2c_cl_product_batch(l2c_cl_backend *b, l2c_cl_product kind, int layer,
                                int n_tokens) {
    const l2c_cl_matrix *m = product_matrix(b, kind, layer);
    l2c_cl_profile_kind profile_kind = product_kinds[kind];
    int mode = product_modes[kind];
    cl_mem in, out;
    product_buffers(b, kind, &in, &out);
    if (mode == MODE_SWIGLU) out = b->h13;
    int store_mode = mode == MODE_ACCUMULATE ? MODE_ACCUMULATE : MODE_STORE;
    l2c_cl_ref w;
    l2c_status status = batch_weights(b, m, &w);
    if (status != L2C_OK) return status;

    if (b->gemm[kind] == L2C_CL_GEMM_CLBLAST) {
        /* row-major out (n_tokens, rows) = in (n_tokens, cols) times w (rows, cols) transposed */
        float beta = store_mode == MODE_ACCUMULATE ? 1.0f : 0.0f;
        CLBlastStatusCode st = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                            CLBlastTransposeYes, (size_t)n_tokens,
                                            (size_t)m->rows, (size_t)m->cols, 1.0f, in, 0,
                                            (size_t)m->cols, w.buffer, w.offset,
                                            (size_t)m->cols, beta, out, 0, (size_t)m->rows,
                                            &b->queue, span_slot(b, profile_kind));
        if (st != CLBlastSuccess) {
            char where[64];
            return l2c_fail(L2C_ERR_DEVICE, "%s (%d) while CLBlastSgemm multiplied %d tokens by "
                            "%s (%d x %d) on %s", l2c_clblast_status_name(st), (int)st,
                            n_tokens, product_where(kind, layer, where, sizeof where), m->rows,
                            m->cols, b->dev.name);
        }
    } else {
        cl_ulong w_offset = w.offset;
        cl_int err = set_args(b->kernels[K_GEMM_F32], 8, ARG(out), ARG(w.buffer),
                              ARG(w_offset), ARG(in), ARG(m->rows), ARG(m->cols),
                              ARG(n_tokens), ARG(store_mode));
        if (err != CL_SUCCESS) return args_failed(b, K_GEMM_F32, err);
        /* work-items of 2 rows by 6 tokens, in work-groups of 16 by up to 16: a work-group's 32
         * weight rows stay in cache while it passes over the batch (10-15 % faster with PoCL
         * than work-groups of one token block) */
        size_t pairs = ((size_t)m->rows + 1) / 2;
        size_t blocks = ((size_t)n_tokens + 5) / 6;
        size_t local[2] = {b->local_size < 16 ? b->local_size : 16, blocks < 16 ? blocks : 16};
        size_t global[2] = {(pairs + local[0] - 1) / local[0] * local[0],
                            (blocks + local[1] - 1) / local[1] * local[1]};
        status = launch(b, K_GEMM_F32, 2, global, local, profile_kind);
        if (status != L2C_OK) return status;
    }
    return mode == MODE_SWIGLU ? op_swiglu(b, n_tokens) : L2C_OK;
}

/* RoPE on the queries and keys of qkv's n_tokens rows, keys and values into the caches at
 * positions pos0 .. */
static l2c_status op_rope_store(l2c_cl_backend *b, const l2c_cl_layer *layer, int pos0,
                                int n_tokens) {
    const l2c_config *c = &b->base.model->config;
    int head_size = l2c_head_size(c);
    int kv_dim = l2c_kv_dim(c);
    cl_int err = set_args(b->kernels[K_ROPE_STORE], 8, ARG(b->qkv), ARG(layer->key_cache),
                          ARG(layer->value_cache), ARG(b->rope_table), ARG(pos0), ARG(c->dim),
                          ARG(kv_dim), ARG(head_size));
    if (err != CL_SUCCESS) return args_failed(b, K_ROPE_STORE, err);
    return launch_rows(b, K_ROPE_STORE, (size_t)c->dim / 2, n_tokens, b->local_size, P_ROPE);
}

/* xb = causal attention of the n_tokens queries in qkv at positions pos0 .. */
static l2c_status op_attention(l2c_cl_backend *b, const l2c_cl_layer *layer, int pos0,
                               int n_tokens) {
    const l2c_config *c = &b->base.model->config;
    int head_size = l2c_head_size(c);
    int kv_dim = l2c_kv_dim(c);
    int kv_mul = c->n_heads / c->n_kv_heads;
    int q_stride = c->dim + 2 * kv_dim;
    float sqrt_head_size = sqrtf((float)head_size);
    size_t group = b->attention_size;
    size_t sums = 8 * group > (size_t)head_size ? 8 * group : (size_t)head_size;
    cl_int err = set_args(b->kernels[K_ATTENTION], 15, ARG(b->qkv), ARG(q_stride),
                          ARG(layer->key_cache), ARG(layer->value_cache), ARG(b->att),
                          ARG(b->xb), ARG(pos0), ARG(c->seq_len), ARG(c->n_heads),
                          ARG(head_size), ARG(kv_dim), ARG(kv_mul), ARG(sqrt_head_size),
                          LOCAL(group * sizeof(float)), LOCAL(sums * sizeof(float)));
    if (err != CL_SUCCESS) return args_failed(b, K_ATTENTION, err);
    return launch_groups(b, K_ATTENTION, 1, c->n_heads * n_tokens, group, P_ATTENTION);
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

/* final rmsnorm of row last of x, then the classifier into logits */
static l2c_status enqueue_logits(l2c_cl_backend *b, int last) {
    l2c_status status = op_norm_vector(b, &b->rms_final_weight, last);
    if (status != L2C_OK) return status;
    return l2c_cl_product_vector(b, L2C_CL_CLS, -1);
}

/* Enqueues the whole forward pass of token at pos, up to the logits on the device. */
static l2c_status enqueue_token(l2c_cl_backend *b, int token, int pos) {
    const l2c_config *c = &b->base.model->config;
    int q8 = b->wtype == L2C_CL_Q8;
    l2c_status status = L2C_OK;

    /* copy the token embedding into x */
    TRY(op_embed(b, token, 1, 0));

    for (int l = 0; l < c->n_layers; l++) {
        const l2c_cl_layer *layer = &b->layers[l];

        /* attention rmsnorm, then q, k and v in one product */
        TRY(op_norm_vector(b, &layer->rms_att_weight, 0));
        TRY(l2c_cl_product_vector(b, L2C_CL_QKV, l));

        /* RoPE: rotate q and k in each head; k and v into this position's cache rows */
        TRY(op_rope_store(b, layer, pos, 1));

        /* multi-head attention into xb */
        TRY(op_attention(b, layer, pos, 1));

        /* output projection, added into x (the residual connection) */
        if (q8) TRY(op_quantize(b, b->xb, c->dim));
        TRY(l2c_cl_product_vector(b, L2C_CL_WO, l));

        /* ffn rmsnorm, then hb = silu(w1 xb) * w3 xb in one product */
        TRY(op_norm_vector(b, &layer->rms_ffn_weight, 0));
        TRY(l2c_cl_product_vector(b, L2C_CL_W13, l));

        /* w2 hb added into x (the residual connection) */
        if (q8) TRY(op_quantize(b, b->hb, c->hidden_dim));
        TRY(l2c_cl_product_vector(b, L2C_CL_W2, l));
    }

    /* final rmsnorm and the classifier */
    TRY(enqueue_logits(b, 0));

done:
    return status;
}

/* Enqueues the forward pass of the n_tokens tokens in b->tokens at positions pos0 .., every
 * row at once, leaving the residual stream of each in x. */
static l2c_status enqueue_batch(l2c_cl_backend *b, int n_tokens, int pos0) {
    const l2c_config *c = &b->base.model->config;
    int q8 = b->wtype == L2C_CL_Q8;
    size_t rows = (size_t)n_tokens;
    l2c_status status = L2C_OK;

    /* the tokens' embeddings into x */
    TRY(op_embed(b, 0, n_tokens, 1));

    for (int l = 0; l < c->n_layers; l++) {
        const l2c_cl_layer *layer = &b->layers[l];

        /* attention rmsnorm, then q, k and v of every token in one product */
        TRY(op_rmsnorm(b, b->xb, &layer->rms_att_weight, 0, n_tokens));
        if (q8) TRY(op_requantize(b, b->xb, rows * c->dim));
        TRY(l2c_cl_product_batch(b, L2C_CL_QKV, l, n_tokens));

        /* RoPE, and every token's key and value into the caches */
        TRY(op_rope_store(b, layer, pos0, n_tokens));

        /* attention, each token over the positions up to its own */
        TRY(op_attention(b, layer, pos0, n_tokens));

        /* output projection, added into x */
        if (q8) TRY(op_requantize(b, b->xb, rows * c->dim));
        TRY(l2c_cl_product_batch(b, L2C_CL_WO, l, n_tokens));

        /* ffn rmsnorm, w1 | w3 and the gate */
        TRY(op_rmsnorm(b, b->xb, &layer->rms_ffn_weight, 0, n_tokens));
        if (q8) TRY(op_requantize(b, b->xb, rows * c->dim));
        TRY(l2c_cl_product_batch(b, L2C_CL_W13, l, n_tokens));

        /* w2, added into x */
        if (q8) TRY(op_requantize(b, b->hb, rows * c->hidden_dim));
        TRY(l2c_cl_product_batch(b, L2C_CL_W2, l, n_tokens));
    }

done:
    return status;
}

/* Brings the logits back to the host (the one wait per call). */
static l2c_status read_logits(l2c_cl_backend *b, int pos, float **logits) {
    size_t bytes = (size_t)b->base.model->config.vocab_size * sizeof(float);
    cl_int err = clEnqueueReadBuffer(b->queue, b->logits, CL_TRUE, 0, bytes, b->host_logits, 0,
                                     NULL, event_slot(b, P_TRANSFER));
    if (err != CL_SUCCESS) {
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "reading the logits of position %d from %s",
                           pos, b->dev.name);
    }
    *logits = b->host_logits;
    return L2C_OK;
}

/* After a call's commands: the profile takes their times (which needs them finished) for
 * n_tokens tokens; after a failure the queue is drained. */
static void finish_commands(l2c_cl_backend *b, l2c_status status, l2c_cl_profile *profile,
                            int n_tokens) {
    if (status != L2C_OK || b->profile) clFinish(b->queue);
    if (b->profile) {
        settle_events(b, status == L2C_OK ? profile : NULL);
        if (status == L2C_OK) profile->tokens += n_tokens;
    }
}

static l2c_status opencl_forward(l2c_backend *backend, int token, int pos, float **logits) {
    l2c_cl_backend *b = (l2c_cl_backend *)backend;
    l2c_status status = check_token(&backend->model->config, token, pos);
    if (status != L2C_OK) return status;
    status = enqueue_token(b, token, pos);
    if (status == L2C_OK) status = read_logits(b, pos, logits);
    finish_commands(b, status, &b->decode, 1);
    return status;
}

/* Writes n_tokens token ids into b->tokens. The host array outlives the write: prefill returns
 * only after the blocking read of the logits, which comes later in the same in-order queue. */
static l2c_status write_tokens(l2c_cl_backend *b, const int *tokens, int n_tokens) {
    cl_int err = clEnqueueWriteBuffer(b->queue, b->tokens, CL_FALSE, 0,
                                      (size_t)n_tokens * sizeof(int), tokens, 0, NULL,
                                      event_slot(b, P_TRANSFER));
    if (err != CL_SUCCESS) {
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "writing %d prompt tokens to %s", n_tokens,
                           b->dev.name);
    }
    return L2C_OK;
}

/* The prompt in batches of up to b->batch tokens; only the last token's logits are computed
 * and brought back. Without a batch buffer (b->batch 0), the tokens run one by one. */
static l2c_status opencl_prefill(l2c_backend *backend, const int *tokens, int n_tokens, int pos,
                                 float **logits) {
    l2c_cl_backend *b = (l2c_cl_backend *)backend;
    const l2c_config *c = &backend->model->config;
    if (n_tokens <= 0) return l2c_fail(L2C_ERR_ARG, "a prompt needs at least one token");
    for (int i = 0; i < n_tokens; i++) {
        l2c_status status = check_token(c, tokens[i], pos + i);
        if (status != L2C_OK) return status;
    }
    if (b->batch == 0) {
        for (int i = 0; i < n_tokens; i++) {
            l2c_status status = opencl_forward(backend, tokens[i], pos + i, logits);
            if (status != L2C_OK) return status;
        }
        return L2C_OK;
    }
    for (int done = 0; done < n_tokens;) {
        int n = n_tokens - done < b->batch ? n_tokens - done : b->batch;
        int last = done + n == n_tokens;
        l2c_status status = write_tokens(b, tokens + done, n);
        if (status == L2C_OK) status = enqueue_batch(b, n, pos + done);
        if (status == L2C_OK && last) status = enqueue_logits(b, n - 1);
        if (status == L2C_OK && last) status = read_logits(b, pos + n_tokens - 1, logits);
        finish_commands(b, status, &b->prompt, n);
        if (status != L2C_OK) return status;
        done += n;
    }
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * report and destroy
 */

static void report_profile(const l2c_cl_profile *p, const char *title, FILE *out) {
    double total = 0.0;
    for (int k = 0; k < P_COUNT; k++) total += p->ns[k];
    double tokens = (double)p->tokens;
    fprintf(out, "%s", title);
    fprintf(out, "  %-16s %12s %12s %8s\n", "kind", "calls/token", "ms/token", "share");
    for (int k = 0; k < P_COUNT; k++) {
        if (p->calls[k] == 0) continue;
        fprintf(out, "  %-16s %12.2f %12.4f %7.1f%%\n", profile_names[k], p->calls[k] / tokens,
                p->ns[k] / tokens * 1e-6, total > 0.0 ? 100.0 * p->ns[k] / total : 0.0);
    }
    fprintf(out, "  %-16s %12s %12.4f %7.1f%%\n", "total", "", total / tokens * 1e-6, 100.0);
}

static void opencl_report(const l2c_backend *backend, FILE *out) {
    const l2c_cl_backend *b = (const l2c_cl_backend *)backend;
    if (!b->profile) return;
    char title[512];
    if (b->decode.tokens > 0) {
        snprintf(title, sizeof title, "profile of %lld token(s) on %s (device time of each "
                 "command):\n", b->decode.tokens, b->dev.name);
        report_profile(&b->decode, title, out);
    }
    if (b->prompt.tokens > 0) {
        snprintf(title, sizeof title, "profile of %lld prompt token(s) in batches of up to %d "
                 "on %s (device time of each command):\n", b->prompt.tokens, b->batch,
                 b->dev.name);
        report_profile(&b->prompt, title, out);
    }
}

static void release_mem(cl_mem *mem) {
    if (*mem) clReleaseMemObject(*mem);
    *mem = NULL;
}

static void opencl_destroy(l2c_backend *backend) {
    l2c_cl_backend *b = (l2c_cl_backend *)backend;
    if (!b) return;
    if (b->queue) clFinish(b->queue);
    settle_events(b, NULL);

    /* device memory */
    if (b->layers) {
        for (int l = 0; l < b->base.model->config.n_layers; l++) {
            release_mem(&b->layers[l].key_cache);
            release_mem(&b->layers[l].value_cache);
        }
    }
    for (int i = 0; i < b->n_arenas; i++) release_mem(&b->arenas[i]);
    cl_mem *state[] = {&b->x, &b->xb, &b->qkv, &b->h13, &b->hb, &b->att, &b->logits, &b->xq,
                       &b->xs, &b->wscratch, &b->tokens, &b->rope_table};
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
    free(b->event_starts);
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
 * creation: state, kernels
 */

l2c_status l2c_cl_create_buffer(l2c_cl_backend *b, cl_mem *mem, size_t bytes, size_t limit,
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

/* The device buffers besides the weights: what each holds and its bytes. */
typedef struct {
    cl_mem     *mem;
    size_t      bytes;
    const char *what;
} l2c_cl_state_buffer;

/* Lists the activations (batch rows each) and the scratch buffers; returns how many. */
static int state_buffers(l2c_cl_backend *b, l2c_cl_state_buffer *list) {
    const l2c_config *c = &b->base.model->config;
    size_t f = sizeof(float);
    size_t rows = b->batch > 0 ? (size_t)b->batch : 1;
    size_t kv_dim = (size_t)l2c_kv_dim(c);
    size_t widest = (size_t)(c->dim > c->hidden_dim ? c->dim : c->hidden_dim);
    int n = 0;
    list[n++] = (l2c_cl_state_buffer){&b->x, rows * c->dim * f, "the activation x"};
    list[n++] = (l2c_cl_state_buffer){&b->xb, rows * c->dim * f, "the activation xb"};
    list[n++] = (l2c_cl_state_buffer){&b->qkv, rows * (c->dim + 2 * kv_dim) * f,
                                      "the queries, keys and values"};
    list[n++] = (l2c_cl_state_buffer){&b->h13, rows * 2 * c->hidden_dim * f,
                                      "the activation h13"};
    list[n++] = (l2c_cl_state_buffer){&b->hb, rows * c->hidden_dim * f, "the activation hb"};
    list[n++] = (l2c_cl_state_buffer){&b->att, rows * c->n_heads * c->seq_len * f,
                                      "the attention scores"};
    list[n++] = (l2c_cl_state_buffer){&b->logits, (size_t)c->vocab_size * f, "the logits"};
    list[n++] = (l2c_cl_state_buffer){&b->tokens, rows * sizeof(int), "the prompt tokens"};
    if (b->wtype == L2C_CL_Q8) {
        list[n++] = (l2c_cl_state_buffer){&b->xq, widest * f, "the quantized activations"};
        list[n++] = (l2c_cl_state_buffer){&b->xs, widest / b->group_size * f,
                                          "the activation scales"};
    }
    if (b->wtype != L2C_CL_F32 && b->batch > 0) {
        size_t biggest = (size_t)(c->dim + 2 * kv_dim) * c->dim;
        if ((size_t)2 * c->hidden_dim * c->dim > biggest) {
            biggest = (size_t)2 * c->hidden_dim * c->dim;
        }
        list[n++] = (l2c_cl_state_buffer){&b->wscratch, biggest * f,
                                          "the fp32 copy of a matrix for batched products"};
    }
    return n;
}

#define L2C_CL_MAX_STATE 16

/* Bytes of the caches, activations and RoPE table that create_state allocates. */
static size_t state_bytes(l2c_cl_backend *b) {
    const l2c_config *c = &b->base.model->config;
    size_t caches = 2 * (size_t)c->n_layers * c->seq_len * l2c_kv_dim(c) * sizeof(float);
    size_t rope = (size_t)c->seq_len * (l2c_head_size(c) / 2) * 2 * sizeof(float);
    l2c_cl_state_buffer list[L2C_CL_MAX_STATE];
    int n = state_buffers(b, list);
    size_t total = caches + rope;
    for (int i = 0; i < n; i++) total += list[i].bytes;
    return total;
}

/* The (cos, sin) of every position and every pair of a head, in run.c's float arithmetic. */
static l2c_status upload_rope_table(l2c_cl_backend *b, size_t limit) {
    const l2c_config *c = &b->base.model->config;
    int head_size = l2c_head_size(c);
    size_t count = (size_t)c->seq_len * (head_size / 2) * 2;
    l2c_status status = l2c_cl_create_buffer(b, &b->rope_table, count * sizeof(float), limit,
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

/* The caches, the activations and the logits. A batch scratch buffer beyond the largest
 * allocation turns the batched prompt path off (b->batch 0) rather than failing. */
static l2c_status create_state(l2c_cl_backend *b, size_t limit) {
    const l2c_config *c = &b->base.model->config;
    size_t cache_bytes = (size_t)c->seq_len * l2c_kv_dim(c) * sizeof(float);
    l2c_status status = L2C_OK;
    char what[96];
    for (int l = 0; l < c->n_layers && status == L2C_OK; l++) {
        snprintf(what, sizeof what, "the key cache of layer %d", l);
        status = l2c_cl_create_buffer(b, &b->layers[l].key_cache, cache_bytes, limit, what);
        if (status != L2C_OK) break;
        snprintf(what, sizeof what, "the value cache of layer %d", l);
        status = l2c_cl_create_buffer(b, &b->layers[l].value_cache, cache_bytes, limit, what);
    }
    if (status != L2C_OK) return status;

    /* TODO: the batch buffers are not split, so a device whose largest allocation cannot hold
     * an fp32 copy of w1 | w3 (or batch rows of the scores) runs prompts token by token. */
    l2c_cl_state_buffer list[L2C_CL_MAX_STATE];
    int n = state_buffers(b, list);
    for (int i = 0; i < n; i++) {
        if (list[i].bytes > limit && b->batch > 0) {
            b->batch = 0;
            n = state_buffers(b, list);
            break;
        }
    }
    for (int i = 0; i < n && status == L2C_OK; i++) {
        status = l2c_cl_create_buffer(b, list[i].mem, list[i].bytes, limit, list[i].what);
    }
    if (status != L2C_OK) return status;
    b->host_logits = malloc((size_t)c->vocab_size * sizeof(float));
    if (!b->host_logits) return l2c_fail(L2C_ERR_NOMEM, "out of memory for the logits");
    return L2C_OK;
}

/* Builds the program and creates every kernel; picks the work-group sizes. */
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

    /* powers of two, up to 256 for the reductions and 64 for the others, that the device and
     * every kernel allow */
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

    /* attention on CPU devices: a work-group of 8, which streams a head's 8-wide value chunks
     * over all positions, measured 15 to 20% faster with PoCL than 256 */
    b->attention_size = b->reduce_size;
    if ((b->dev.type & CL_DEVICE_TYPE_CPU) && b->attention_size > 8) b->attention_size = 8;
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * creation
 */

l2c_status l2c_cl_force_engines(l2c_backend *backend, const char *gemv, const char *gemm) {
    l2c_cl_backend *b = (l2c_cl_backend *)backend;
    if (backend->ops != &opencl_ops) {
        return l2c_fail(L2C_ERR_ARG, "only an OpenCL backend has matrix-vector engines");
    }
    int v = -1, m = -1;
    for (int i = 0; i < L2C_CL_N_GEMV; i++) {
        if (gemv && !strcmp(gemv, l2c_cl_gemv_names[i])) v = i;
    }
    for (int i = 0; i < L2C_CL_N_GEMM; i++) {
        if (gemm && !strcmp(gemm, l2c_cl_gemm_names[i])) m = i;
    }
    if ((gemv && v < 0) || (gemm && m < 0)) {
        return l2c_fail(L2C_ERR_ARG, "unknown engine %s", gemv && v < 0 ? gemv : gemm);
    }
    if (v == L2C_CL_GEMV_CLBLAST && b->wtype != L2C_CL_F32) {
        return l2c_fail(L2C_ERR_ARG, "CLBlast's matrix-vector product needs fp32 weights");
    }
    for (int k = 0; k < L2C_CL_N_PRODUCTS; k++) {
        if (v >= 0) b->gemv[k] = (l2c_cl_gemv)v;
        if (m >= 0) b->gemm[k] = (l2c_cl_gemm)m;
    }
    snprintf(b->engines, sizeof b->engines, "gemv %s, gemm %s",
             l2c_cl_gemv_names[b->gemv[0]], l2c_cl_gemm_names[b->gemm[0]]);
    char *engines_at = strstr(backend->description, ", products by ");
    if (engines_at) {
        size_t room = sizeof backend->description - (size_t)(engines_at - backend->description);
        snprintf(engines_at, room, ", products by %s", b->engines);
    }
    return L2C_OK;
}

/* Tokens of one batched step: up to 128 (the products' weight reads shared by that many
 * tokens), fewer for long contexts, so that the batch's attention scores (n_heads * seq_len
 * floats a token) stay within 64 MiB; at least 8, the own batched product's token block. */
static int batch_size(const l2c_config *c) {
    size_t per_token = (size_t)c->n_heads * c->seq_len * sizeof(float);
    size_t fit = ((size_t)64 << 20) / per_token;
    int batch = L2C_CL_MAX_BATCH;
    if ((size_t)batch > fit) batch = fit < 8 ? 8 : (int)(fit / 8 * 8);
    return c->seq_len < batch ? c->seq_len : batch;
}

/* Checks the model and the options against what this backend runs. */
static l2c_status check_supported(const l2c_model *model, const l2c_opencl_options *options) {
    const l2c_config *c = &model->config;
    if (options->dtype != L2C_DTYPE_F32 && options->dtype != L2C_DTYPE_F16) {
        return l2c_fail(L2C_ERR_ARG, "unknown weight type %d", (int)options->dtype);
    }
    if (options->dtype == L2C_DTYPE_F16 && c->format == L2C_FORMAT_V2) {
        return l2c_fail(L2C_ERR_UNSUPPORTED, "%s holds Q8_0 weights: fp16 on the device is made "
                        "from fp32 checkpoints only (drop --dtype f16)", model->path);
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
    b->wtype = c->format == L2C_FORMAT_V2 ? L2C_CL_Q8
             : options->dtype == L2C_DTYPE_F16 ? L2C_CL_F16 : L2C_CL_F32;
    b->group_size = c->group_size;
    b->batch = batch_size(c);
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
        b->max_events = c->n_layers * 24 + 16;
        b->events = calloc((size_t)b->max_events, sizeof *b->events);
        b->event_kinds = calloc((size_t)b->max_events, sizeof *b->event_kinds);
        b->event_starts = calloc((size_t)b->max_events, sizeof *b->event_starts);
        if (!b->events || !b->event_kinds || !b->event_starts) {
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
    status = l2c_cl_upload_weights(b, limit, state_bytes(b));
    if (status == L2C_OK) status = create_state(b, limit);
    if (status == L2C_OK) status = upload_rope_table(b, limit);
    if (status != L2C_OK) goto fail;

    /* kernels, and the engine of each product */
    status = create_kernels(b);
    if (status == L2C_OK) status = l2c_cl_choose_engines(b, options->gemv);
    if (status != L2C_OK) goto fail;
    err = clFinish(b->queue);
    if (err != CL_SUCCESS) {
        status = l2c_cl_fail(L2C_ERR_DEVICE, err, "preparing the products of %s on %s",
                             model->path, b->dev.name);
        goto fail;
    }
    settle_events(b, NULL);

    static const char *const wtype_names[] = {"fp32", "fp16", "Q8_0"};
    char *d = b->base.description;
    snprintf(d, sizeof b->base.description, "opencl device %d: %.80s (%s, %.32s), %s weights in "
             "%d buffer%s", b->dev.index, b->dev.name, l2c_cl_device_type_name(b->dev.type),
             b->dev.platform_name, wtype_names[b->wtype], b->n_arenas,
             b->n_arenas == 1 ? "" : "s");
    size_t used = strlen(d);
    snprintf(d + used, sizeof b->base.description - used, ", products by %s", b->engines);
    *backend = &b->base;
    return L2C_OK;

fail:
    opencl_destroy(&b->base);
    return status;
}
