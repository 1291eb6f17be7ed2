/*
 * opencl_weights.c - the weights of a model written once into device buffers ("arenas", each no
 * larger than the device's largest allocation, holding whole matrices), in the backend's weight
 * type: fp32 as in the file, fp16 converted here on the host, or Q8_0 as in a version-2 file.
 * The query, key and value matrices of a layer become one matrix (their rows one after another),
 * and so do w1 and w3.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opencl_backend.h"

/* ------------------------------------------------------------------------------------------------
 * fp16 conversion
 */

uint16_t l2c_float_to_half(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    uint32_t sign = (bits >> 16) & 0x8000u;
    int exponent = (int)((bits >> 23) & 0xffu);
    uint32_t mantissa = bits & 0x7fffffu;

    /* infinities, and NaNs kept quiet with the top of their payload */
    if (exponent == 0xff) {
        return (uint16_t)(sign | 0x7c00u | (mantissa ? 0x200u | (mantissa >> 13) : 0u));
    }

    /* normal halves: drop 13 mantissa bits, rounding to nearest, ties to even; a carry moves
     * into the exponent, and past the largest finite half gives infinity */
    int half_exponent = exponent - 127 + 15;
    if (half_exponent >= 31) return (uint16_t)(sign | 0x7c00u);
    if (half_exponent > 0) {
        uint32_t result = ((uint32_t)half_exponent << 10) | (mantissa >> 13);
        uint32_t rest = mantissa & 0x1fffu;
        if (rest > 0x1000u || (rest == 0x1000u && (result & 1u))) result++;
        return (uint16_t)(sign | result);
    }

    /* subnormal halves (units of 2^-24) and zero: the full significand shifted, rounded the
     * same way; rounding up from the largest subnormal gives the smallest normal */
    int shift = 126 - exponent;
    if (shift > 24) return (uint16_t)sign;
    uint32_t significand = mantissa | 0x800000u;
    uint32_t result = significand >> shift;
    uint32_t rest = significand & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (result & 1u))) result++;
    return (uint16_t)(sign | result);
}

/* ------------------------------------------------------------------------------------------------
 * the plan: every device tensor, from up to three host pieces
 */

#define L2C_CL_MAX_PIECES 3

typedef struct {
    const char *name;
    int         layer;       /* -1 for tensors of the whole model */
    const void *host[L2C_CL_MAX_PIECES];
    size_t      count[L2C_CL_MAX_PIECES]; /* elements of each piece */
    int         n_pieces;
    size_t      host_elem;   /* bytes of a host element */
    size_t      device_elem; /* bytes of a device element (2 when fp32 becomes fp16) */
    size_t      bytes;       /* on the device */
    l2c_cl_ref *ref;
    int         arena;
    size_t      at;          /* byte offset in its arena */
} l2c_cl_upload;

typedef struct {
    l2c_cl_upload *items;
    int            n;
    int            max;
} l2c_cl_plan;

/* Alignment of every tensor in an arena. */
#define L2C_CL_ALIGN 256

/* Adds one tensor made of n pieces of host elements; fp16 halves fp32 pieces on the way. */
static void plan_add(l2c_cl_plan *plan, const char *name, int layer, int n,
                     const void *const *host, const size_t *count, size_t host_elem,
                     size_t device_elem, l2c_cl_ref *ref) {
    l2c_cl_upload *u = &plan->items[plan->n++];
    memset(u, 0, sizeof *u);
    u->name = name;
    u->layer = layer;
    u->n_pieces = n;
    u->host_elem = host_elem;
    u->device_elem = device_elem;
    for (int i = 0; i < n; i++) {
        u->host[i] = host[i];
        u->count[i] = count[i];
        u->bytes += count[i] * device_elem;
    }
    u->ref = ref;
    u->arena = -1;
}

/* An fp32 vector (a norm). */
static void plan_vector(l2c_cl_plan *plan, const char *name, int layer, const float *host,
                        size_t count, l2c_cl_ref *ref) {
    const void *pieces[1] = {host};
    plan_add(plan, name, layer, 1, pieces, &count, sizeof(float), sizeof(float), ref);
}

/* One matrix of the pieces' rows stacked: fp32 pieces f32[i] (rows[i] x cols, the layer-th of
 * a contiguous stack when layer >= 0), or Q8_0 pieces q8[i]. */
static void plan_matrix(l2c_cl_plan *plan, const l2c_cl_backend *b, const char *name, int layer,
                        int n, const float *const *f32, const l2c_q8 *const *q8, const int *rows,
                        int cols, l2c_cl_matrix *m) {
    const void *values[L2C_CL_MAX_PIECES], *scales[L2C_CL_MAX_PIECES];
    size_t counts[L2C_CL_MAX_PIECES], scale_counts[L2C_CL_MAX_PIECES];
    m->rows = 0;
    m->cols = cols;
    for (int i = 0; i < n; i++) {
        counts[i] = (size_t)rows[i] * cols;
        m->rows += rows[i];
        if (b->wtype == L2C_CL_Q8) {
            values[i] = q8[i]->q;
            scales[i] = q8[i]->s;
            scale_counts[i] = counts[i] / b->group_size;
        } else {
            values[i] = f32[i] + (layer >= 0 ? (size_t)layer * counts[i] : 0);
        }
    }
    if (b->wtype == L2C_CL_Q8) {
        plan_add(plan, name, layer, n, values, counts, 1, 1, &m->w);
        plan_add(plan, name, layer, n, scales, scale_counts, sizeof(float), sizeof(float),
                 &m->s);
    } else {
        size_t device_elem = b->wtype == L2C_CL_F16 ? 2 : sizeof(float);
        plan_add(plan, name, layer, n, values, counts, sizeof(float), device_elem, &m->w);
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
    int q8 = b->wtype == L2C_CL_Q8;

    plan->max = c->n_layers * 10 + 8; /* Q8_0: 10 a layer, 5 outside */
    plan->n = 0;
    plan->items = calloc((size_t)plan->max, sizeof *plan->items);
    if (!plan->items) return l2c_fail(L2C_ERR_NOMEM, "out of memory planning the uploads");

    /* the token table: dequantized on the host for version 2, but the device keeps Q8_0 */
    const float *table[1] = {w->token_embedding_table};
    const l2c_q8 *q_table[1] = {&w->q_tokens};
    int vocab_rows[1] = {c->vocab_size};
    plan_matrix(plan, b, "token_embedding_table", -1, 1, table, q_table, vocab_rows, dim,
                &b->token_table);

    for (int l = 0; l < c->n_layers; l++) {
        l2c_cl_layer *layer = &b->layers[l];
        plan_vector(plan, "rms_att_weight", l, w->rms_att_weight + (size_t)l * dim,
                    (size_t)dim, &layer->rms_att_weight);

        const float *qkv[3] = {w->wq, w->wk, w->wv};
        const l2c_q8 *q_qkv[3] = {q8 ? &w->q_wq[l] : NULL, q8 ? &w->q_wk[l] : NULL,
                                  q8 ? &w->q_wv[l] : NULL};
        int qkv_rows[3] = {dim, kv_dim, kv_dim};
        plan_matrix(plan, b, "wq | wk | wv", l, 3, qkv, q_qkv, qkv_rows, dim, &layer->wqkv);

        const float *wo[1] = {w->wo};
        const l2c_q8 *q_wo[1] = {q8 ? &w->q_wo[l] : NULL};
        int dim_rows[1] = {dim};
        plan_matrix(plan, b, "wo", l, 1, wo, q_wo, dim_rows, dim, &layer->wo);

        plan_vector(plan, "rms_ffn_weight", l, w->rms_ffn_weight + (size_t)l * dim,
                    (size_t)dim, &layer->rms_ffn_weight);

        const float *w13[2] = {w->w1, w->w3};
        const l2c_q8 *q_w13[2] = {q8 ? &w->q_w1[l] : NULL, q8 ? &w->q_w3[l] : NULL};
        int w13_rows[2] = {hidden_dim, hidden_dim};
        plan_matrix(plan, b, "w1 | w3", l, 2, w13, q_w13, w13_rows, dim, &layer->w13);

        const float *w2[1] = {w->w2};
        const l2c_q8 *q_w2[1] = {q8 ? &w->q_w2[l] : NULL};
        plan_matrix(plan, b, "w2", l, 1, w2, q_w2, dim_rows, hidden_dim, &layer->w2);
    }
    plan_vector(plan, "rms_final_weight", -1, w->rms_final_weight, (size_t)dim,
                &b->rms_final_weight);

    int shared = q8 ? w->q_wcls.q == w->q_tokens.q : w->wcls == w->token_embedding_table;
    if (!shared) {
        const float *cls[1] = {w->wcls};
        const l2c_q8 *q_cls[1] = {&w->q_wcls};
        plan_matrix(plan, b, "wcls", -1, 1, cls, q_cls, vocab_rows, dim, &b->wcls);
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

/* Writes one tensor: its pieces straight from the mapped file, or halved through staging
 * (blocking, so staging can be reused). */
static l2c_status write_tensor(l2c_cl_backend *b, const l2c_cl_upload *u, uint16_t *staging) {
    size_t at = u->at;
    cl_int err = CL_SUCCESS;
    for (int p = 0; p < u->n_pieces && err == CL_SUCCESS; p++) {
        size_t bytes = u->count[p] * u->device_elem;
        if (u->device_elem == u->host_elem) {
            err = clEnqueueWriteBuffer(b->queue, u->ref->buffer, CL_FALSE, at, bytes,
                                       u->host[p], 0, NULL, NULL);
        } else {
            const float *from = u->host[p];
            for (size_t i = 0; i < u->count[p]; i++) staging[i] = l2c_float_to_half(from[i]);
            err = clEnqueueWriteBuffer(b->queue, u->ref->buffer, CL_TRUE, at, bytes, staging, 0,
                                       NULL, NULL);
        }
        at += bytes;
    }
    if (err != CL_SUCCESS) {
        char where[32] = "";
        if (u->layer >= 0) snprintf(where, sizeof where, " of layer %d", u->layer);
        return l2c_cl_fail(L2C_ERR_DEVICE, err, "writing the weight %s%s (%zu bytes) to %s",
                           u->name, where, u->bytes, b->dev.name);
    }
    return L2C_OK;
}

l2c_status l2c_cl_upload_weights(l2c_cl_backend *b, size_t limit, size_t state_bytes) {
    l2c_cl_plan plan = {0};
    size_t *sizes = NULL;
    uint16_t *staging = NULL;
    l2c_status status = plan_weights(b, &plan);
    if (status == L2C_OK) status = pack_weights(b, &plan, limit, &sizes, &b->n_arenas);
    if (status != L2C_OK) goto done;

    /* everything must fit the device's memory, or what the user allows of it */
    size_t weights = 0;
    for (int i = 0; i < b->n_arenas; i++) weights += sizes[i];
    if (weights + state_bytes > b->dev.global_mem) {
        status = l2c_fail(L2C_ERR_DEVICE, "%s needs %zu bytes on %s (weights %zu, caches and "
                          "activations %zu), more than the %llu bytes of device memory it may use",
                          b->base.model->path, weights + state_bytes, b->dev.name, weights,
                          state_bytes, (unsigned long long)b->dev.global_mem);
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

    /* staging for the largest piece that is converted on the way */
    size_t most = 0;
    for (int i = 0; i < plan.n; i++) {
        const l2c_cl_upload *u = &plan.items[i];
        for (int p = 0; p < u->n_pieces && u->device_elem != u->host_elem; p++) {
            if (u->count[p] > most) most = u->count[p];
        }
    }
    if (most > 0 && !(staging = malloc(most * sizeof *staging))) {
        status = l2c_fail(L2C_ERR_NOMEM, "out of memory converting the weights to fp16");
        goto done;
    }

    /* every tensor into its place */
    for (int i = 0; i < plan.n && status == L2C_OK; i++) {
        l2c_cl_upload *u = &plan.items[i];
        u->ref->buffer = b->arenas[u->arena];
        u->ref->offset = u->at / u->device_elem;
        status = write_tensor(b, u, staging);
    }
    if (status != L2C_OK) goto done;
    const l2c_weights *w = &b->base.model->weights;
    int shared = b->wtype == L2C_CL_Q8 ? w->q_wcls.q == w->q_tokens.q
                                       : w->wcls == w->token_embedding_table;
    if (shared) b->wcls = b->token_table;

    /* the writes from the mapped file complete before creation returns */
    cl_int err = clFinish(b->queue);
    if (err != CL_SUCCESS) {
        status = l2c_cl_fail(L2C_ERR_DEVICE, err, "writing the weights of %s to %s",
                             b->base.model->path, b->dev.name);
    }

done:
    free(plan.items);
    free(sizes);
    free(staging);
    return status;
}
