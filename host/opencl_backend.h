/*
 * opencl_backend.h - what the OpenCL backend's files share: the device tensors, the backend
 * struct, the kernels and profile kinds, and the entry points of weight upload (opencl_weights.c)
 * and engine choice (opencl_tune.c).
 */
#ifndef L2C_OPENCL_BACKEND_H
#define L2C_OPENCL_BACKEND_H

#include <CL/cl.h>

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

/* How the weights of the matrices are stored on the device. */
typedef enum {
    L2C_CL_F32 = 0, /* as in an fp32 file */
    L2C_CL_F16,     /* fp32 weights halved at upload (L2C_DTYPE_F16) */
    L2C_CL_Q8,      /* Q8_0 int8 values and fp32 scales (version-2 files) */
} l2c_cl_wtype;

/* A weight matrix of rows outputs by cols inputs, row-major. */
typedef struct {
    l2c_cl_ref w; /* fp32, fp16 or int8 values */
    l2c_cl_ref s; /* Q8_0 scales, one per group of group_size values */
    int        rows;
    int        cols;
} l2c_cl_matrix;

/* The products of the forward pass, each with its own epilogue. wq | wk | wv and w1 | w3 are
 * stored as one matrix each (their rows concatenated), so a layer takes four products, not
 * seven. */
typedef enum {
    L2C_CL_QKV = 0,   /* xb -> q | k | v */
    L2C_CL_WO,        /* attention output -> x += wo xb */
    L2C_CL_W13,       /* xb -> hb = silu(w1 xb) * (w3 xb) */
    L2C_CL_W2,        /* hb -> x += w2 hb */
    L2C_CL_CLS,       /* final norm -> logits */
    L2C_CL_N_PRODUCTS
} l2c_cl_product;

extern const char *const l2c_cl_product_names[L2C_CL_N_PRODUCTS];

/* How one token's matrix-vector product runs. */
typedef enum {
    L2C_CL_GEMV_CLBLAST = 0, /* CLBlastSgemv (fp32 weights only) */
    L2C_CL_GEMV_ROWS,        /* gemv_*_rows: a work-item per row, the CPU-friendly mapping */
    L2C_CL_GEMV_WG,          /* gemv_*_wg: a team of 32 work-items per row, for GPUs */
    L2C_CL_N_GEMV
} l2c_cl_gemv;

/* How a batch of tokens' matrix product runs (fp16 and Q8_0 weights are dequantized first). */
typedef enum {
    L2C_CL_GEMM_CLBLAST = 0, /* CLBlastSgemm */
    L2C_CL_GEMM_OWN,         /* gemm_f32 */
    L2C_CL_N_GEMM
} l2c_cl_gemm;

extern const char *const l2c_cl_gemv_names[L2C_CL_N_GEMV];
extern const char *const l2c_cl_gemm_names[L2C_CL_N_GEMM];

typedef struct {
    l2c_cl_ref    rms_att_weight;
    l2c_cl_ref    rms_ffn_weight;
    l2c_cl_matrix wqkv; /* (dim + 2 * kv_dim, dim) */
    l2c_cl_matrix wo;   /* (dim, dim) */
    l2c_cl_matrix w13;  /* (2 * hidden_dim, dim) */
    l2c_cl_matrix w2;   /* (dim, hidden_dim) */
    cl_mem        key_cache;   /* (seq_len, kv_dim) */
    cl_mem        value_cache; /* (seq_len, kv_dim) */
} l2c_cl_layer;

/* ------------------------------------------------------------------------------------------------
 * kernels and profile kinds
 */

typedef enum {
    K_EMBED_F32,
    K_EMBED_F16,
    K_EMBED_Q8,
    K_RMSNORM,
    K_RMSNORM_Q8,
    K_QUANTIZE_Q8,
    K_REQUANTIZE_Q8,
    K_GEMV_F32_ROWS,
    K_GEMV_F32_WG,
    K_GEMV_F16_ROWS,
    K_GEMV_F16_WG,
    K_GEMV_Q8_ROWS,
    K_GEMV_Q8_WG,
    K_GEMM_F32,
    K_DEQUANTIZE_Q8,
    K_DEQUANTIZE_F16,
    K_ROPE_STORE,
    K_ATTENTION,
    K_SWIGLU,
    K_COUNT
} l2c_cl_kernel_id;

/* What the profile adds up, in the order a token meets them. */
typedef enum {
    P_EMBED,
    P_RMSNORM,
    P_QUANTIZE,
    P_DEQUANTIZE,
    P_GEMV_QKV,
    P_ROPE,
    P_ATTENTION,
    P_GEMV_WO,
    P_GEMV_FFN_UP,
    P_SWIGLU,
    P_GEMV_FFN_DOWN,
    P_GEMV_CLASSIFIER,
    P_TRANSFER,
    P_COUNT
} l2c_cl_profile_kind;

/* Profile sums of one kind of call (token by token, or batched prompt). */
typedef struct {
    double    ns[P_COUNT];
    long long calls[P_COUNT];
    long long tokens;
} l2c_cl_profile;

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
    size_t             attention_size; /* work-group size of attention */
    l2c_cl_wtype       wtype;
    int                group_size;  /* Q8_0 */
    int                batch;       /* most tokens of one batched step of a prompt */

    /* the engine of each product, and how they were chosen (for the description) */
    l2c_cl_gemv        gemv[L2C_CL_N_PRODUCTS];
    l2c_cl_gemm        gemm[L2C_CL_N_PRODUCTS];
    char               engines[160];

    /* weights */
    cl_mem       *arenas;
    int           n_arenas;
    l2c_cl_layer *layers;
    l2c_cl_matrix token_table;      /* (vocab_size, dim), in the weight type */
    l2c_cl_ref    rms_final_weight;
    l2c_cl_matrix wcls;

    /* activations, batch rows each (one row when decoding) */
    cl_mem x;          /* (batch, dim) the residual stream */
    cl_mem xb;         /* (batch, max(dim, hidden_dim)) the normalized input of a product */
    cl_mem qkv;        /* (batch, dim + 2 * kv_dim) */
    cl_mem h13;        /* (batch, 2 * hidden_dim) w1 x | w3 x before the gate */
    cl_mem hb;         /* (batch, hidden_dim) */
    cl_mem att;        /* (batch * n_heads, seq_len) attention scores */
    cl_mem logits;     /* (vocab_size) */
    cl_mem xq, xs;     /* the int8 input of the next Q8_0 product (as floats), its scales */
    cl_mem wscratch;   /* fp32 copy of one fp16 or Q8_0 matrix, for batched products */
    cl_mem tokens;     /* (batch) token ids of a batched step */
    cl_mem rope_table; /* (seq_len, head_size / 2) pairs of (cos, sin) */
    float *host_logits;

    /* profile: one event per command of the current call */
    int             profile;
    cl_event       *events;
    cl_event       *event_starts; /* a marker before a library call's commands, or NULL */
    int            *event_kinds;
    int             n_events;
    int             max_events;
    l2c_cl_profile  decode;  /* forward() calls */
    l2c_cl_profile  prompt;  /* prefill() calls */
} l2c_cl_backend;

/* ------------------------------------------------------------------------------------------------
 * shared entry points
 */

/* opencl_backend.c: allocates a read-write device buffer of bytes, filled with zeros; fails by
 * name when bytes exceeds limit. */
l2c_status l2c_cl_create_buffer(l2c_cl_backend *b, cl_mem *mem, size_t bytes, size_t limit,
                                const char *what);

/* opencl_backend.c: one token's product of kind, as forward() runs it, by layer's matrix (the
 * classifier for L2C_CL_CLS; layer is then ignored). Reads row 0 of hb for L2C_CL_W2, of xb for
 * the others (xq and xs for Q8_0 weights). */
l2c_status l2c_cl_product_vector(l2c_cl_backend *b, l2c_cl_product kind, int layer);

/* opencl_backend.c: n_tokens tokens' product of kind, as prefill() runs it; reads xb (or hb for
 * L2C_CL_W2). The classifier has no batched product. */
l2c_status l2c_cl_product_batch(l2c_cl_backend *b, l2c_cl_product kind, int layer,
                                int n_tokens);

/* opencl_weights.c: plans, allocates and writes every weight within buffers of at most limit
 * bytes, converting to the backend's weight type; also checks that weights and state fit the
 * device. state_bytes is what the caches and activations will take. */
l2c_status l2c_cl_upload_weights(l2c_cl_backend *b, size_t limit, size_t state_bytes);

/* opencl_tune.c: sets every product's engines: wanted CLBlast or own, or with L2C_GEMV_AUTO the
 * faster per product as the engine cache file records it, timing what it lacks. */
l2c_status l2c_cl_choose_engines(l2c_cl_backend *b, l2c_gemv_engine wanted);

#endif /* L2C_OPENCL_BACKEND_H */
