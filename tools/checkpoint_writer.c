/*
 * checkpoint_writer.c - deterministic llama2.c checkpoints and tokenizers, see
 * checkpoint_writer.h.
 *
 * The layouts follow llama2.c's export.py (legacy_export, version1_export, version2_export) and
 * the readers run.c and runq.c.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* pwrite */
#endif
#include "checkpoint_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* values produced and written per step when streaming a tensor */
#define CHUNK_VALUES ((size_t)1 << 20)
/* bytes buffered before each write system call */
#define SINK_BYTES ((size_t)8 << 20)

/* ------------------------------------------------------------------------------------------------
 * errors
 */

static _Thread_local char last_error[512];

const char *l2c_gen_last_error(void) {
    return last_error;
}

/* Records the message, sets errno and returns -1. */
__attribute__((format(printf, 2, 3)))
static int fail(int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    errno = err;
    return -1;
}

/* ------------------------------------------------------------------------------------------------
 * shapes
 */

int l2c_gen_group_size(int dim, int group_size) {
    if (group_size < 1 || dim < 1) return 0;
    while (dim % group_size != 0) group_size /= 2;
    return group_size;
}

int l2c_gen_check_spec(const l2c_gen_spec *spec) {
    const struct { const char *name; int value; } positive[] = {
        {"dim", spec->dim}, {"hidden_dim", spec->hidden_dim}, {"n_layers", spec->n_layers},
        {"n_heads", spec->n_heads}, {"n_kv_heads", spec->n_kv_heads},
        {"vocab_size", spec->vocab_size}, {"seq_len", spec->seq_len},
    };
    for (size_t i = 0; i < sizeof positive / sizeof positive[0]; i++) {
        if (positive[i].value < 1) {
            return fail(EINVAL, "%s is %d, must be positive", positive[i].name, positive[i].value);
        }
    }

    /* heads split dim evenly, rotary pairs need an even head_size, kv heads are shared evenly */
    if (spec->dim % spec->n_heads != 0) {
        return fail(EINVAL, "n_heads %d does not divide dim %d", spec->n_heads, spec->dim);
    }
    int head_size = spec->dim / spec->n_heads;
    if (head_size % 2 != 0) {
        return fail(EINVAL, "head_size dim / n_heads = %d is odd, rotary embedding needs pairs",
                    head_size);
    }
    if (spec->n_heads % spec->n_kv_heads != 0) {
        return fail(EINVAL, "n_kv_heads %d does not divide n_heads %d", spec->n_kv_heads,
                    spec->n_heads);
    }
    if (spec->shared_classifier != 0 && spec->shared_classifier != 1) {
        return fail(EINVAL, "shared_classifier is %d, must be 0 or 1", spec->shared_classifier);
    }
    if (spec->format < L2C_GEN_LEGACY || spec->format > L2C_GEN_V2) {
        return fail(EINVAL, "format is %d, must be 0 (legacy), 1 or 2", spec->format);
    }

    /* every quantized matrix splits into whole groups */
    if (spec->format == L2C_GEN_V2) {
        if (spec->group_size < 1) {
            return fail(EINVAL, "group_size is %d, must be positive", spec->group_size);
        }
        int group_size = l2c_gen_group_size(spec->dim, spec->group_size);
        for (int t = 0; t < L2C_GEN_TENSOR_COUNT; t++) {
            size_t n = l2c_gen_tensor_shape(spec, (l2c_gen_tensor)t, NULL, NULL);
            if (n % (size_t)group_size != 0) {
                return fail(EINVAL, "%s has %zu values, not a multiple of group_size %d",
                            l2c_gen_tensor_name((l2c_gen_tensor)t), n, group_size);
            }
        }
    }
    return 0;
}

size_t l2c_gen_tensor_shape(const l2c_gen_spec *spec, l2c_gen_tensor tensor, int *rows,
                            int *cols) {
    int kv_dim = spec->dim / spec->n_heads * spec->n_kv_heads;
    int r = 1, c = spec->dim;
    switch (tensor) {
    case L2C_GEN_TOKEN_EMBEDDING: r = spec->vocab_size; break;
    case L2C_GEN_WCLS:            r = spec->vocab_size; break;
    case L2C_GEN_WQ:              r = spec->dim; break;
    case L2C_GEN_WK:              r = kv_dim; break;
    case L2C_GEN_WV:              r = kv_dim; break;
    case L2C_GEN_WO:              r = spec->dim; break;
    case L2C_GEN_W1:              r = spec->hidden_dim; break;
    case L2C_GEN_W2:              r = spec->dim; c = spec->hidden_dim; break;
    case L2C_GEN_W3:              r = spec->hidden_dim; break;
    default:                      break; /* norms: (1, dim) */
    }
    if (rows) *rows = r;
    if (cols) *cols = c;
    return (size_t)r * (size_t)c;
}

int l2c_gen_tensor_layers(const l2c_gen_spec *spec, l2c_gen_tensor tensor) {
    switch (tensor) {
    case L2C_GEN_TOKEN_EMBEDDING:
    case L2C_GEN_RMS_FINAL:
    case L2C_GEN_WCLS:
        return 1;
    default:
        return spec->n_layers;
    }
}

const char *l2c_gen_tensor_name(l2c_gen_tensor tensor) {
    static const char *names[L2C_GEN_TENSOR_COUNT] = {
        "token_embedding_table", "rms_att_weight", "wq", "wk", "wv", "wo", "rms_ffn_weight",
        "w1", "w2", "w3", "rms_final_weight", "wcls",
    };
    return (unsigned)tensor < L2C_GEN_TENSOR_COUNT ? names[tensor] : "?";
}

static int is_norm(l2c_gen_tensor tensor) {
    return tensor == L2C_GEN_RMS_ATT || tensor == L2C_GEN_RMS_FFN || tensor == L2C_GEN_RMS_FINAL;
}

/* ------------------------------------------------------------------------------------------------
 * weights: splitmix64 used as a counter-based generator, so any element is computed directly
 */

#define GOLDEN 0x9e3779b97f4a7c15ull

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* the stream of one tensor instance */
static uint64_t stream_key(unsigned long long seed, l2c_gen_tensor tensor, int layer) {
    uint64_t id = ((uint64_t)(tensor + 1) << 32) | (uint32_t)layer;
    return mix64(mix64(seed) ^ mix64(id * GOLDEN));
}

void l2c_gen_fill(const l2c_gen_spec *spec, l2c_gen_tensor tensor, int layer, size_t first,
                  size_t count, float *out) {
    /* a shared classifier is the token table */
    if (tensor == L2C_GEN_WCLS && spec->shared_classifier) tensor = L2C_GEN_TOKEN_EMBEDDING;
    if (l2c_gen_tensor_layers(spec, tensor) == 1) layer = 0;

    /* half-width of the uniform range, and its centre: matrices keep the activations' scale;
     * the token table and the classifier give logits of standard deviation 4 / sqrt(3) = 2.3 at
     * any dim, so greedy choices have clear margins */
    int cols;
    l2c_gen_tensor_shape(spec, tensor, NULL, &cols);
    float half = 1.0f / sqrtf((float)cols);
    float centre = 0.0f;
    if (tensor == L2C_GEN_TOKEN_EMBEDDING || tensor == L2C_GEN_WCLS) {
        half = 4.0f / sqrtf((float)spec->dim);
    }
    if (is_norm(tensor)) {
        half = 0.1f;
        centre = 1.0f;
    }

    /* 24 random bits per value give an exact float in [-1, 1) */
    uint64_t key = stream_key(spec->seed, tensor, layer);
    for (size_t i = 0; i < count; i++) {
        uint64_t z = mix64(key + (uint64_t)(first + i + 1) * GOLDEN);
        float u = (float)((int32_t)(z >> 40) - (1 << 23)) * 0x1p-23f;
        out[i] = centre + half * u;
    }
}

/* ------------------------------------------------------------------------------------------------
 * Q8_0
 */

void l2c_gen_q8_quantize(const float *x, size_t n, int group_size, int8_t *q, float *scales) {
    for (size_t g = 0; g * group_size < n; g++) {
        const float *xg = x + g * group_size;
        int8_t *qg = q + g * group_size;

        /* the scale maps the largest magnitude to 127 */
        float wmax = 0.0f;
        for (int i = 0; i < group_size; i++) {
            float a = fabsf(xg[i]);
            if (a > wmax) wmax = a;
        }
        float scale = wmax / 127.0f;
        scales[g] = scale;

        /* round half to even (the default rounding mode), as torch.round; the clamp only acts on
         * subnormal groups whose scale lost precision */
        for (int i = 0; i < group_size; i++) {
            float v = scale != 0.0f ? nearbyintf(xg[i] / scale) : 0.0f;
            if (v != v) v = 0.0f; /* NaN weights quantize to 0 rather than to undefined */
            if (v > 127.0f) v = 127.0f;
            if (v < -127.0f) v = -127.0f;
            qg[i] = (int8_t)v;
        }
    }
}

void l2c_gen_q8_dequantize(const int8_t *q, const float *scales, size_t n, int group_size,
                           float *x) {
    for (size_t i = 0; i < n; i++) x[i] = q[i] * scales[i / group_size];
}

/* ------------------------------------------------------------------------------------------------
 * output: buffered positional writes, so a Q8_0 matrix streams its values and its scales to two
 * places of the file at once
 */

typedef struct {
    int         fd;
    const char *path;
    off_t       offset; /* where buf goes */
    char       *buf;
    size_t      len;
} sink;

static int sink_flush(sink *s) {
    size_t done = 0;
    while (done < s->len) {
        ssize_t n = pwrite(s->fd, s->buf + done, s->len - done, s->offset + (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            return fail(err, "%s: write failed: %s", s->path, strerror(err));
        }
        done += (size_t)n;
    }
    s->offset += (off_t)s->len;
    s->len = 0;
    return 0;
}

static int sink_write(sink *s, const void *data, size_t size) {
    const char *p = data;
    while (size > 0) {
        size_t n = SINK_BYTES - s->len < size ? SINK_BYTES - s->len : size;
        memcpy(s->buf + s->len, p, n);
        s->len += n;
        p += n;
        size -= n;
        if (s->len == SINK_BYTES && sink_flush(s) != 0) return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * writing
 */

typedef struct {
    const l2c_gen_spec *spec;
    l2c_gen_source      source;
    void               *ctx;
    sink                out;    /* the file, in order */
    sink                scales; /* a matrix's scales, after its int8 values */
    size_t              chunk;  /* values per step: CHUNK_VALUES, whole groups in version 2 */
    float              *values; /* chunk values */
    int8_t             *q;      /* chunk values */
    float              *s;      /* chunk / group_size scales */
    int                 group_size;
} writer;

static int ask_source(writer *w, l2c_gen_tensor tensor, int layer, size_t first, size_t count) {
    if (w->source(w->ctx, tensor, layer, first, count, w->values) != 0) {
        int err = errno ? errno : EIO;
        return fail(err, "%s: reading %s of layer %d failed: %s", w->out.path,
                    l2c_gen_tensor_name(tensor), layer, strerror(err));
    }
    return 0;
}

/* every instance of tensor, layer after layer, in fp32 */
static int write_fp32(writer *w, l2c_gen_tensor tensor) {
    size_t n = l2c_gen_tensor_shape(w->spec, tensor, NULL, NULL);
    for (int layer = 0; layer < l2c_gen_tensor_layers(w->spec, tensor); layer++) {
        for (size_t first = 0; first < n; first += w->chunk) {
            size_t count = n - first < w->chunk ? n - first : w->chunk;
            if (ask_source(w, tensor, layer, first, count) != 0) return -1;
            if (sink_write(&w->out, w->values, count * sizeof(float)) != 0) return -1;
        }
    }
    return 0;
}

/* every instance of tensor in Q8_0: per instance its int8 values, then its scales */
static int write_q8(writer *w, l2c_gen_tensor tensor) {
    size_t n = l2c_gen_tensor_shape(w->spec, tensor, NULL, NULL);
    size_t group_size = (size_t)w->group_size;
    size_t chunk = w->chunk;
    for (int layer = 0; layer < l2c_gen_tensor_layers(w->spec, tensor); layer++) {
        if (sink_flush(&w->out) != 0) return -1;
        w->scales.offset = w->out.offset + (off_t)n;
        for (size_t first = 0; first < n; first += chunk) {
            size_t count = n - first < chunk ? n - first : chunk;
            if (ask_source(w, tensor, layer, first, count) != 0) return -1;
            l2c_gen_q8_quantize(w->values, count, w->group_size, w->q, w->s);
            if (sink_write(&w->out, w->q, count) != 0) return -1;
            if (sink_write(&w->scales, w->s, count / group_size * sizeof(float)) != 0) return -1;
        }
        if (sink_flush(&w->out) != 0 || sink_flush(&w->scales) != 0) return -1;
        w->out.offset = w->scales.offset;
    }
    return 0;
}

/* the 7 int32 of run.c's Config */
static void put_config(char *p, const l2c_gen_spec *spec, int vocab_size) {
    int config[7] = {spec->dim, spec->hidden_dim, spec->n_layers, spec->n_heads,
                     spec->n_kv_heads, vocab_size, spec->seq_len};
    memcpy(p, config, sizeof config);
}

static int write_legacy(writer *w) {
    const l2c_gen_spec *spec = w->spec;

    /* header: a negative vocab_size marks an unshared classifier */
    char header[28];
    put_config(header, spec, spec->shared_classifier ? spec->vocab_size : -spec->vocab_size);
    if (sink_write(&w->out, header, sizeof header) != 0) return -1;

    /* weights in run.c's order */
    static const l2c_gen_tensor order[] = {
        L2C_GEN_TOKEN_EMBEDDING, L2C_GEN_RMS_ATT, L2C_GEN_WQ, L2C_GEN_WK, L2C_GEN_WV, L2C_GEN_WO,
        L2C_GEN_RMS_FFN, L2C_GEN_W1, L2C_GEN_W2, L2C_GEN_W3, L2C_GEN_RMS_FINAL,
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (write_fp32(w, order[i]) != 0) return -1;
    }

    /* the rotary tables cos(pos * freq) and sin(pos * freq), freq = 10000^(-2i / head_size),
     * computed in fp32 as model.py's precompute_freqs_cis; readers skip them */
    int head_size = spec->dim / spec->n_heads;
    for (int table = 0; table < 2; table++) {
        for (int pos = 0; pos < spec->seq_len; pos++) {
            for (int i = 0; i < head_size / 2; i++) {
                float freq = 1.0f / powf(10000.0f, (float)(2 * i) / (float)head_size);
                float angle = (float)pos * freq;
                float v = table == 0 ? cosf(angle) : sinf(angle);
                if (sink_write(&w->out, &v, sizeof v) != 0) return -1;
            }
        }
    }

    if (!spec->shared_classifier && write_fp32(w, L2C_GEN_WCLS) != 0) return -1;
    return 0;
}

/* magic, version, config, shared flag (and group size in version 2), zero padding to 256 */
static int write_header_v1_v2(writer *w, int version) {
    char header[L2C_GEN_HEADER_SIZE];
    memset(header, 0, sizeof header);
    uint32_t magic = L2C_GEN_MAGIC;
    int32_t v = version;
    memcpy(header, &magic, 4);
    memcpy(header + 4, &v, 4);
    put_config(header + 8, w->spec, w->spec->vocab_size);
    header[36] = (char)(w->spec->shared_classifier ? 1 : 0);
    if (version == 2) {
        int32_t group_size = w->group_size;
        memcpy(header + 37, &group_size, 4);
    }
    return sink_write(&w->out, header, sizeof header);
}

/* the norms, then the matrices, as version1_export and version2_export list them */
static int write_v1_v2(writer *w, int version) {
    if (write_header_v1_v2(w, version) != 0) return -1;

    static const l2c_gen_tensor norms[] = {L2C_GEN_RMS_ATT, L2C_GEN_RMS_FFN, L2C_GEN_RMS_FINAL};
    for (size_t i = 0; i < sizeof norms / sizeof norms[0]; i++) {
        if (write_fp32(w, norms[i]) != 0) return -1;
    }

    static const l2c_gen_tensor matrices[] = {
        L2C_GEN_TOKEN_EMBEDDING, L2C_GEN_WQ, L2C_GEN_WK, L2C_GEN_WV, L2C_GEN_WO,
        L2C_GEN_W1, L2C_GEN_W2, L2C_GEN_W3, L2C_GEN_WCLS,
    };
    for (size_t i = 0; i < sizeof matrices / sizeof matrices[0]; i++) {
        if (matrices[i] == L2C_GEN_WCLS && w->spec->shared_classifier) continue;
        int rc = version == 2 ? write_q8(w, matrices[i]) : write_fp32(w, matrices[i]);
        if (rc != 0) return -1;
    }
    return 0;
}

int l2c_gen_write_from(const char *path, const l2c_gen_spec *spec, l2c_gen_source source,
                       void *ctx) {
    if (l2c_gen_check_spec(spec) != 0) {
        char why[sizeof last_error];
        snprintf(why, sizeof why, "%s", last_error);
        return fail(EINVAL, "%s: %s", path, why);
    }

    /* buffers */
    writer w = {.spec = spec, .source = source, .ctx = ctx};
    w.group_size = spec->format == L2C_GEN_V2 ? l2c_gen_group_size(spec->dim, spec->group_size) : 1;
    w.chunk = CHUNK_VALUES / (size_t)w.group_size * (size_t)w.group_size;
    if (w.chunk == 0) w.chunk = (size_t)w.group_size;
    w.out.buf = malloc(SINK_BYTES);
    w.scales.buf = malloc(SINK_BYTES);
    w.values = malloc(w.chunk * sizeof(float));
    w.q = malloc(w.chunk);
    w.s = malloc(w.chunk / (size_t)w.group_size * sizeof(float));
    int rc = -1;
    if (!w.out.buf || !w.scales.buf || !w.values || !w.q || !w.s) {
        fail(ENOMEM, "%s: out of memory for the write buffers", path);
        goto done;
    }

    /* the file */
    w.out.fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w.out.fd < 0) {
        fail(errno, "%s: cannot create: %s", path, strerror(errno));
        goto done;
    }
    w.out.path = path;
    w.scales.fd = w.out.fd;
    w.scales.path = path;

    /* the weights in the format's order */
    rc = spec->format == L2C_GEN_LEGACY ? write_legacy(&w) : write_v1_v2(&w, spec->format);
    if (rc == 0) rc = sink_flush(&w.out);
    if (close(w.out.fd) != 0 && rc == 0) rc = fail(errno, "%s: close failed: %s", path,
                                                   strerror(errno));
    if (rc != 0) {
        int err = errno;
        unlink(path);
        errno = err;
    }

done:
    free(w.out.buf);
    free(w.scales.buf);
    free(w.values);
    free(w.q);
    free(w.s);
    return rc;
}

static int generated_source(void *ctx, l2c_gen_tensor tensor, int layer, size_t first,
                            size_t count, float *out) {
    l2c_gen_fill(ctx, tensor, layer, first, count, out);
    return 0;
}

int l2c_gen_write(const char *path, const l2c_gen_spec *spec) {
    return l2c_gen_write_from(path, spec, generated_source, (void *)spec);
}

unsigned long long l2c_gen_file_size(const l2c_gen_spec *spec) {
    unsigned long long values = 0, matrices_q8 = 0, scales = 0;
    int group_size = l2c_gen_group_size(spec->dim, spec->group_size);
    for (int t = 0; t < L2C_GEN_TENSOR_COUNT; t++) {
        if (t == L2C_GEN_WCLS && spec->shared_classifier) continue;
        unsigned long long n = l2c_gen_tensor_shape(spec, (l2c_gen_tensor)t, NULL, NULL) *
                               (unsigned long long)l2c_gen_tensor_layers(spec, (l2c_gen_tensor)t);
        if (spec->format == L2C_GEN_V2 && !is_norm((l2c_gen_tensor)t)) {
            matrices_q8 += n;
            scales += group_size > 0 ? n / (unsigned long long)group_size : 0;
        } else {
            values += n;
        }
    }
    if (spec->format == L2C_GEN_LEGACY) {
        int head_size = spec->dim / spec->n_heads;
        values += 2ull * (unsigned long long)spec->seq_len * (unsigned long long)(head_size / 2);
        return 28 + 4 * values;
    }
    return L2C_GEN_HEADER_SIZE + 4 * values + matrices_q8 + 4 * scales;
}

/* ------------------------------------------------------------------------------------------------
 * weights in memory
 */

float *l2c_gen_weights_tensor(const l2c_gen_weights *weights, l2c_gen_tensor tensor) {
    switch (tensor) {
    case L2C_GEN_TOKEN_EMBEDDING: return weights->token_embedding_table;
    case L2C_GEN_RMS_ATT:         return weights->rms_att_weight;
    case L2C_GEN_WQ:              return weights->wq;
    case L2C_GEN_WK:              return weights->wk;
    case L2C_GEN_WV:              return weights->wv;
    case L2C_GEN_WO:              return weights->wo;
    case L2C_GEN_RMS_FFN:         return weights->rms_ffn_weight;
    case L2C_GEN_W1:              return weights->w1;
    case L2C_GEN_W2:              return weights->w2;
    case L2C_GEN_W3:              return weights->w3;
    case L2C_GEN_RMS_FINAL:       return weights->rms_final_weight;
    case L2C_GEN_WCLS:            return weights->wcls;
    default:                      return NULL;
    }
}

static float **weights_slot(l2c_gen_weights *weights, l2c_gen_tensor tensor) {
    float **slots[L2C_GEN_TENSOR_COUNT] = {
        &weights->token_embedding_table, &weights->rms_att_weight, &weights->wq, &weights->wk,
        &weights->wv, &weights->wo, &weights->rms_ffn_weight, &weights->w1, &weights->w2,
        &weights->w3, &weights->rms_final_weight, &weights->wcls,
    };
    return slots[tensor];
}

int l2c_gen_weights_create(const l2c_gen_spec *spec, l2c_gen_weights *weights) {
    memset(weights, 0, sizeof *weights);
    if (l2c_gen_check_spec(spec) != 0) return -1;
    int group_size = l2c_gen_group_size(spec->dim, spec->group_size);

    for (int t = 0; t < L2C_GEN_TENSOR_COUNT; t++) {
        l2c_gen_tensor tensor = (l2c_gen_tensor)t;
        if (tensor == L2C_GEN_WCLS && spec->shared_classifier) {
            weights->wcls = weights->token_embedding_table;
            continue;
        }

        /* every instance, layer after layer */
        size_t n = l2c_gen_tensor_shape(spec, tensor, NULL, NULL);
        int n_instances = l2c_gen_tensor_layers(spec, tensor);
        float *p = malloc(n * (size_t)n_instances * sizeof(float));
        if (!p) {
            l2c_gen_weights_free(weights);
            return fail(ENOMEM, "out of memory for %s", l2c_gen_tensor_name(tensor));
        }
        *weights_slot(weights, tensor) = p;
        for (int layer = 0; layer < n_instances; layer++) {
            l2c_gen_fill(spec, tensor, layer, 0, n, p + (size_t)layer * n);
        }

        /* a version-2 reader sees the matrices through Q8_0 */
        if (spec->format == L2C_GEN_V2 && !is_norm(tensor)) {
            int8_t *q = malloc(n);
            float *s = malloc(n / (size_t)group_size * sizeof(float));
            if (!q || !s) {
                free(q);
                free(s);
                l2c_gen_weights_free(weights);
                return fail(ENOMEM, "out of memory for %s", l2c_gen_tensor_name(tensor));
            }
            for (int layer = 0; layer < n_instances; layer++) {
                float *x = p + (size_t)layer * n;
                l2c_gen_q8_quantize(x, n, group_size, q, s);
                l2c_gen_q8_dequantize(q, s, n, group_size, x);
            }
            free(q);
            free(s);
        }
    }
    return 0;
}

void l2c_gen_weights_free(l2c_gen_weights *weights) {
    if (weights->wcls == weights->token_embedding_table) weights->wcls = NULL;
    for (int t = 0; t < L2C_GEN_TENSOR_COUNT; t++) {
        float **slot = weights_slot(weights, (l2c_gen_tensor)t);
        free(*slot);
        *slot = NULL;
    }
}

/* ------------------------------------------------------------------------------------------------
 * tokenizer
 */

/* printable ASCII after " ", in the order the pieces get ids 260.. */
static const char single_pieces[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

int l2c_gen_tokenizer_piece(int vocab_size, int id, char *buf, size_t buf_size) {
    if (id < 0 || id >= vocab_size || buf_size < 16) return -1;

    /* special tokens and the byte tokens */
    static const char *special[3] = {"<unk>", "\n<s>\n", "\n</s>\n"};
    if (id < 3) return snprintf(buf, buf_size, "%s", special[id]);
    if (id < 259) return snprintf(buf, buf_size, "<0x%02X>", id - 3);

    /* " " and the other printable characters */
    if (id == 259) return snprintf(buf, buf_size, " ");
    if (id < 260 + (int)sizeof single_pieces - 1) {
        return snprintf(buf, buf_size, "%c", single_pieces[id - 260]);
    }

    /* merges by length: " " and length - 1 letters, then length letters */
    uint64_t index = (uint64_t)(id - 260 - ((int)sizeof single_pieces - 1));
    for (int length = 2; length < (int)buf_size; length++) {
        for (int spaced = 1; spaced >= 0; spaced--) {
            int letters = spaced ? length - 1 : length;
            uint64_t block = 1;
            for (int i = 0; i < letters; i++) block *= 26;
            if (index < block) {
                int n = 0;
                if (spaced) buf[n++] = ' ';
                for (int i = letters - 1; i >= 0; i--) {
                    buf[n + i] = (char)('a' + index % 26);
                    index /= 26;
                }
                n += letters;
                buf[n] = '\0';
                return n;
            }
            index -= block;
        }
    }
    return -1;
}

int l2c_gen_write_tokenizer(const char *path, int vocab_size) {
    if (vocab_size < L2C_GEN_TOKENIZER_MIN_VOCAB) {
        return fail(EINVAL, "%s: vocab_size %d is below the tokenizer's minimum %d", path,
                    vocab_size, L2C_GEN_TOKENIZER_MIN_VOCAB);
    }

    /* the longest piece comes first in the file */
    char piece[32];
    int32_t max_token_length = 0;
    for (int id = 0; id < vocab_size; id++) {
        int n = l2c_gen_tokenizer_piece(vocab_size, id, piece, sizeof piece);
        if (n > max_token_length) max_token_length = n;
    }

    FILE *f = fopen(path, "wb");
    if (!f) return fail(errno, "%s: cannot create: %s", path, strerror(errno));
    int ok = fwrite(&max_token_length, sizeof max_token_length, 1, f) == 1;

    /* score, length, bytes per token */
    for (int id = 0; id < vocab_size && ok; id++) {
        int32_t length = l2c_gen_tokenizer_piece(vocab_size, id, piece, sizeof piece);
        float score = id < 259 ? 0.0f : -(float)(id - 259);
        ok = fwrite(&score, sizeof score, 1, f) == 1 &&
             fwrite(&length, sizeof length, 1, f) == 1 &&
             fwrite(piece, 1, (size_t)length, f) == (size_t)length;
    }
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        err = errno;
    }
    if (!ok) {
        unlink(path);
        return fail(err ? err : EIO, "%s: write failed: %s", path, strerror(err ? err : EIO));
    }
    return 0;
}
