/*
 * model.c - reading a checkpoint in one of llama2.c's three formats.
 *
 * The file is untrusted input: every header field is checked, every size is computed with
 * overflow checks, and the file must be exactly as long as the shapes imply. The weights are
 * mapped read-only and used in place; only a version-2 token table is dequantized into memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define L2C_MAGIC         0x616b3432u /* "ak42" */
#define LEGACY_HEADER     28
#define VERSIONED_HEADER  256

/* Bounds far above any real model that keep every product below 2^63. */
#define MAX_DIM        65536
#define MAX_HIDDEN_DIM (1 << 20)
#define MAX_LAYERS     4096
#define MAX_VOCAB      (1 << 24)
#define MAX_SEQ_LEN    (1 << 22)

/* ------------------------------------------------------------------------------------------------
 * header
 */

static int32_t read_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* dim .. seq_len in the order llama2.c writes them */
static void read_shape(const unsigned char *p, l2c_config *c) {
    c->dim        = read_i32(p + 0);
    c->hidden_dim = read_i32(p + 4);
    c->n_layers   = read_i32(p + 8);
    c->n_heads    = read_i32(p + 12);
    c->n_kv_heads = read_i32(p + 16);
    c->vocab_size = read_i32(p + 20);
    c->seq_len    = read_i32(p + 24);
}

static l2c_status check_field(const char *path, const char *field, long long value, long long max) {
    if (value <= 0 || value > max) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: header field %s is %lld, expected 1 to %lld",
                        path, field, value, max);
    }
    return L2C_OK;
}

static l2c_status check_config(const char *path, const l2c_config *c) {
    l2c_status s;
    if ((s = check_field(path, "dim", c->dim, MAX_DIM)) ||
        (s = check_field(path, "hidden_dim", c->hidden_dim, MAX_HIDDEN_DIM)) ||
        (s = check_field(path, "n_layers", c->n_layers, MAX_LAYERS)) ||
        (s = check_field(path, "n_heads", c->n_heads, c->dim)) ||
        (s = check_field(path, "n_kv_heads", c->n_kv_heads, c->n_heads)) ||
        (s = check_field(path, "vocab_size", c->vocab_size, MAX_VOCAB)) ||
        (s = check_field(path, "seq_len", c->seq_len, MAX_SEQ_LEN))) {
        return s;
    }
    if (c->dim % c->n_heads != 0) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: dim %d is not divisible by n_heads %d",
                        path, c->dim, c->n_heads);
    }
    if (c->n_heads % c->n_kv_heads != 0) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: n_heads %d is not divisible by n_kv_heads %d",
                        path, c->n_heads, c->n_kv_heads);
    }
    if (l2c_head_size(c) % 2 != 0) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: head size %d (dim %d / n_heads %d) is odd, "
                        "RoPE needs pairs", path, l2c_head_size(c), c->dim, c->n_heads);
    }
    if (c->format == L2C_FORMAT_V2) {
        int gs = c->group_size;
        if (gs <= 0 || c->dim % gs != 0 || c->hidden_dim % gs != 0) {
            return l2c_fail(L2C_ERR_FORMAT, "%s: group_size %d does not divide dim %d and "
                            "hidden_dim %d", path, gs, c->dim, c->hidden_dim);
        }
        if (gs % 4 != 0) {
            return l2c_fail(L2C_ERR_UNSUPPORTED, "%s: group_size %d is not a multiple of 4, "
                            "so the Q8_0 scales would be misaligned", path, gs);
        }
    }
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * sizes: element counts of each tensor, all below 2^62 thanks to the bounds above
 */

typedef struct {
    uint64_t embedding;  /* vocab_size * dim */
    uint64_t norms;      /* n_layers * dim */
    uint64_t wq, wk, wo; /* per layer; wv as wk */
    uint64_t w1;         /* per layer; w2 and w3 the same count */
} tensor_sizes;

static tensor_sizes tensor_sizes_of(const l2c_config *c) {
    tensor_sizes t;
    uint64_t dim = (uint64_t)c->dim;
    t.embedding = (uint64_t)c->vocab_size * dim;
    t.norms = (uint64_t)c->n_layers * dim;
    t.wq = dim * dim;
    t.wk = dim * (uint64_t)l2c_kv_dim(c);
    t.wo = dim * dim;
    t.w1 = dim * (uint64_t)c->hidden_dim;
    return t;
}

/* bytes of the weights after the header */
static uint64_t expected_weight_bytes(const l2c_config *c) {
    tensor_sizes t = tensor_sizes_of(c);
    uint64_t L = (uint64_t)c->n_layers;
    uint64_t matrices = L * (t.wq + 2 * t.wk + t.wo + 3 * t.w1);
    uint64_t classifier = c->shared_classifier ? 0 : t.embedding;
    uint64_t norms = 2 * t.norms + (uint64_t)c->dim;

    if (c->format == L2C_FORMAT_V2) {
        /* each matrix: one int8 per value, one fp32 scale per group */
        uint64_t q8 = t.embedding + matrices + classifier;
        return norms * 4 + q8 + q8 / (uint64_t)c->group_size * 4;
    }
    uint64_t floats = t.embedding + norms + matrices + classifier;
    if (c->format == L2C_FORMAT_LEGACY) {
        floats += (uint64_t)c->seq_len * (uint64_t)l2c_head_size(c); /* old freq_cis tables */
    }
    return floats * 4;
}

/* ------------------------------------------------------------------------------------------------
 * weights
 */

static const float *take_f32(const unsigned char **p, uint64_t count) {
    const float *w = (const float *)*p;
    *p += count * 4;
    return w;
}

/* n_layers consecutive Q8_0 matrices of count values each */
static l2c_q8 *take_q8(const unsigned char **p, int n_layers, uint64_t count, int group_size) {
    l2c_q8 *m = malloc((size_t)n_layers * sizeof *m);
    if (!m) return NULL;
    for (int l = 0; l < n_layers; l++) {
        m[l].q = (const int8_t *)*p;
        m[l].s = (const float *)(*p + count);
        *p += count + count / (uint64_t)group_size * 4;
    }
    return m;
}

static void map_fp32_legacy(l2c_model *m, const unsigned char *p) {
    const l2c_config *c = &m->config;
    tensor_sizes t = tensor_sizes_of(c);
    uint64_t L = (uint64_t)c->n_layers;
    l2c_weights *w = &m->weights;

    w->token_embedding_table = take_f32(&p, t.embedding);
    w->rms_att_weight = take_f32(&p, t.norms);
    w->wq = take_f32(&p, L * t.wq);
    w->wk = take_f32(&p, L * t.wk);
    w->wv = take_f32(&p, L * t.wk);
    w->wo = take_f32(&p, L * t.wo);
    w->rms_ffn_weight = take_f32(&p, t.norms);
    w->w1 = take_f32(&p, L * t.w1);
    w->w2 = take_f32(&p, L * t.w1);
    w->w3 = take_f32(&p, L * t.w1);
    w->rms_final_weight = take_f32(&p, (uint64_t)c->dim);
    take_f32(&p, (uint64_t)c->seq_len * (uint64_t)l2c_head_size(c)); /* freq_cis, unused */
    w->wcls = c->shared_classifier ? w->token_embedding_table : take_f32(&p, t.embedding);
}

static void map_fp32_v1(l2c_model *m, const unsigned char *p) {
    const l2c_config *c = &m->config;
    tensor_sizes t = tensor_sizes_of(c);
    uint64_t L = (uint64_t)c->n_layers;
    l2c_weights *w = &m->weights;

    w->rms_att_weight = take_f32(&p, t.norms);
    w->rms_ffn_weight = take_f32(&p, t.norms);
    w->rms_final_weight = take_f32(&p, (uint64_t)c->dim);
    w->token_embedding_table = take_f32(&p, t.embedding);
    w->wq = take_f32(&p, L * t.wq);
    w->wk = take_f32(&p, L * t.wk);
    w->wv = take_f32(&p, L * t.wk);
    w->wo = take_f32(&p, L * t.wo);
    w->w1 = take_f32(&p, L * t.w1);
    w->w2 = take_f32(&p, L * t.w1);
    w->w3 = take_f32(&p, L * t.w1);
    w->wcls = c->shared_classifier ? w->token_embedding_table : take_f32(&p, t.embedding);
}

static l2c_status map_q8_v2(l2c_model *m, const unsigned char *p) {
    const l2c_config *c = &m->config;
    tensor_sizes t = tensor_sizes_of(c);
    int L = c->n_layers, gs = c->group_size;
    l2c_weights *w = &m->weights;

    w->rms_att_weight = take_f32(&p, t.norms);
    w->rms_ffn_weight = take_f32(&p, t.norms);
    w->rms_final_weight = take_f32(&p, (uint64_t)c->dim);

    l2c_q8 *tokens = take_q8(&p, 1, t.embedding, gs);
    if (!tokens) return l2c_fail(L2C_ERR_NOMEM, "%s: out of memory", m->path);
    w->q_tokens = tokens[0];
    free(tokens);
    w->q_wq = take_q8(&p, L, t.wq, gs);
    w->q_wk = take_q8(&p, L, t.wk, gs);
    w->q_wv = take_q8(&p, L, t.wk, gs);
    w->q_wo = take_q8(&p, L, t.wo, gs);
    w->q_w1 = take_q8(&p, L, t.w1, gs);
    w->q_w2 = take_q8(&p, L, t.w1, gs);
    w->q_w3 = take_q8(&p, L, t.w1, gs);
    if (!w->q_wq || !w->q_wk || !w->q_wv || !w->q_wo || !w->q_w1 || !w->q_w2 || !w->q_w3) {
        return l2c_fail(L2C_ERR_NOMEM, "%s: out of memory", m->path);
    }
    if (c->shared_classifier) {
        w->q_wcls = w->q_tokens;
    } else {
        l2c_q8 *cls = take_q8(&p, 1, t.embedding, gs);
        if (!cls) return l2c_fail(L2C_ERR_NOMEM, "%s: out of memory", m->path);
        w->q_wcls = cls[0];
        free(cls);
    }

    /* the token table is dequantized once, as runq.c does, since a row is copied per token */
    m->dequantized = malloc(t.embedding * sizeof(float));
    if (!m->dequantized) {
        return l2c_fail(L2C_ERR_NOMEM, "%s: out of memory for the %llu-value token table",
                        m->path, (unsigned long long)t.embedding);
    }
    for (uint64_t i = 0; i < t.embedding; i++) {
        m->dequantized[i] = w->q_tokens.q[i] * w->q_tokens.s[i / (uint64_t)gs];
    }
    w->token_embedding_table = m->dequantized;
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * loading
 */

static l2c_status parse_header(l2c_model *m, const unsigned char *p, size_t size, size_t *offset) {
    const char *path = m->path;
    l2c_config *c = &m->config;
    uint32_t magic;

    if (size < LEGACY_HEADER) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: file is %zu bytes, shorter than any checkpoint "
                        "header (%d bytes)", path, size, LEGACY_HEADER);
    }
    memcpy(&magic, p, 4);
    if (magic != L2C_MAGIC) {
        /* legacy: a negative vocab_size marks an unshared classifier */
        read_shape(p, c);
        c->format = L2C_FORMAT_LEGACY;
        c->shared_classifier = c->vocab_size > 0;
        if (c->vocab_size < 0 && c->vocab_size != INT32_MIN) c->vocab_size = -c->vocab_size;
        *offset = LEGACY_HEADER;
        return L2C_OK;
    }

    if (size < VERSIONED_HEADER) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: file is %zu bytes, shorter than the %d-byte header "
                        "of its format", path, size, VERSIONED_HEADER);
    }
    int version = read_i32(p + 4);
    if (version != 1 && version != 2) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: header field version is %d, expected 1 or 2",
                        path, version);
    }
    c->format = version == 1 ? L2C_FORMAT_V1 : L2C_FORMAT_V2;
    read_shape(p + 8, c);
    if (p[36] > 1) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: header field shared_classifier is %d, expected 0 "
                        "or 1", path, p[36]);
    }
    c->shared_classifier = p[36];
    c->group_size = version == 2 ? read_i32(p + 37) : 0;
    *offset = VERSIONED_HEADER;
    return L2C_OK;
}

static l2c_status load(l2c_model *m, const char *path) {
    l2c_status s;
    /* non-blocking, so that a named pipe is refused below instead of waiting for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) {
        return l2c_fail(L2C_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st = {0};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return l2c_fail(L2C_ERR_IO, "%s: not a regular file%s", path,
                        S_ISDIR(st.st_mode) ? " (it is a directory)" : "");
    }
    size_t size = (size_t)st.st_size;
    if (size == 0) {
        close(fd);
        return l2c_fail(L2C_ERR_FORMAT, "%s: file is empty", path);
    }
    m->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m->map == MAP_FAILED) {
        m->map = NULL;
        return l2c_fail(L2C_ERR_IO, "%s: cannot map %zu bytes: %s", path, size, strerror(errno));
    }
    m->map_size = size;

    /* the header, then its shapes against the file's length */
    const unsigned char *bytes = m->map;
    size_t offset = 0;
    if ((s = parse_header(m, bytes, size, &offset)) || (s = check_config(path, &m->config))) {
        return s;
    }
    uint64_t expected = offset + expected_weight_bytes(&m->config);
    if (expected != size) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: file is %zu bytes but its header's shapes imply "
                        "%llu (%s)", path, size, (unsigned long long)expected,
                        size < expected ? "truncated" : "trailing bytes");
    }

    switch (m->config.format) {
    case L2C_FORMAT_LEGACY: map_fp32_legacy(m, bytes + offset); return L2C_OK;
    case L2C_FORMAT_V1:     map_fp32_v1(m, bytes + offset); return L2C_OK;
    case L2C_FORMAT_V2:     return map_q8_v2(m, bytes + offset);
    }
    return L2C_OK;
}

l2c_status l2c_model_load(const char *path, l2c_model **model) {
    *model = NULL;
    l2c_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(path))) {
        free(m);
        return l2c_fail(L2C_ERR_NOMEM, "%s: out of memory", path);
    }
    l2c_status s = load(m, path);
    if (s != L2C_OK) {
        l2c_model_free(m);
        return s;
    }
    *model = m;
    return L2C_OK;
}

const l2c_config *l2c_model_config(const l2c_model *model) {
    return &model->config;
}

void l2c_model_free(l2c_model *model) {
    if (!model) return;
    l2c_weights *w = &model->weights;
    free(w->q_wq);
    free(w->q_wk);
    free(w->q_wv);
    free(w->q_wo);
    free(w->q_w1);
    free(w->q_w2);
    free(w->q_w3);
    free(model->dequantized);
    if (model->map) munmap(model->map, model->map_size);
    free(model->path);
    free(model);
}
