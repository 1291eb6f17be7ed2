/*
 * test_tools.c - the checkpoint writer, l2c-gen and l2c-quantize write llama2.c's formats byte
 * for byte: header fields and tensor offsets computed here from the shapes, the same tensors in
 * legacy and version 1, Q8_0 values worked out by hand, l2c-quantize equal to the writer's
 * version 2 and to an emulation of export.py on the real stories260K, a well-formed tokenizer,
 * and one-line errors naming the flag for bad command lines.
 */
#include "check.h"
#include "checkpoint_writer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>

static char tmp[4096];
static char bin_dir[4096];

/* a path in the test's directory (one of four rotating buffers) */
static const char *tmp_path(const char *name) {
    static char paths[4][4200];
    static int next = 0;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", tmp, name);
    return p;
}

/* ------------------------------------------------------------------------------------------------
 * an independent reader of llama2.c's fp32 files, written from run.c's and export.py's layouts
 */

enum { FREQ_TABLES = L2C_GEN_TENSOR_COUNT }; /* legacy's rotary tables, in the order lists */

static const int legacy_order[] = {
    L2C_GEN_TOKEN_EMBEDDING, L2C_GEN_RMS_ATT, L2C_GEN_WQ, L2C_GEN_WK, L2C_GEN_WV, L2C_GEN_WO,
    L2C_GEN_RMS_FFN, L2C_GEN_W1, L2C_GEN_W2, L2C_GEN_W3, L2C_GEN_RMS_FINAL, FREQ_TABLES,
    L2C_GEN_WCLS,
};
static const int v1_order[] = {
    L2C_GEN_RMS_ATT, L2C_GEN_RMS_FFN, L2C_GEN_RMS_FINAL, L2C_GEN_TOKEN_EMBEDDING, L2C_GEN_WQ,
    L2C_GEN_WK, L2C_GEN_WV, L2C_GEN_WO, L2C_GEN_W1, L2C_GEN_W2, L2C_GEN_W3, L2C_GEN_WCLS,
};
static const int v2_q8_order[] = {
    L2C_GEN_TOKEN_EMBEDDING, L2C_GEN_WQ, L2C_GEN_WK, L2C_GEN_WV, L2C_GEN_WO, L2C_GEN_W1,
    L2C_GEN_W2, L2C_GEN_W3, L2C_GEN_WCLS,
};

/* values per layer of tensor t for config (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, seq_len) */
static size_t numel(const int *c, int t) {
    size_t dim = c[0], hidden_dim = c[1], kv_dim = c[0] / c[3] * c[4], vocab = c[5];
    switch (t) {
    case L2C_GEN_TOKEN_EMBEDDING: case L2C_GEN_WCLS: return vocab * dim;
    case L2C_GEN_WQ: case L2C_GEN_WO: return dim * dim;
    case L2C_GEN_WK: case L2C_GEN_WV: return kv_dim * dim;
    case L2C_GEN_W1: case L2C_GEN_W2: case L2C_GEN_W3: return hidden_dim * dim;
    case FREQ_TABLES: return 2 * (size_t)c[6] * (size_t)(c[0] / c[3] / 2);
    default: return dim;
    }
}

static int instances(const int *c, int t) {
    return t == L2C_GEN_TOKEN_EMBEDDING || t == L2C_GEN_WCLS || t == L2C_GEN_RMS_FINAL ||
           t == FREQ_TABLES ? 1 : c[2];
}

typedef struct {
    int    config[7]; /* vocab_size positive */
    int    shared;
    int    version;   /* 0 legacy, 1 */
    size_t offset[L2C_GEN_TENSOR_COUNT + 1]; /* byte offset of each tensor in the file */
    float *tensor[L2C_GEN_TENSOR_COUNT + 1]; /* all instances; wcls NULL when shared */
    size_t file_size;
} fp32_file;

static void fp32_file_free(fp32_file *f) {
    for (int t = 0; t <= L2C_GEN_TENSOR_COUNT; t++) free(f->tensor[t]);
}

/* Reads a legacy or version-1 file; 0 on success. */
static int read_fp32_file(const char *path, fp32_file *f) {
    memset(f, 0, sizeof *f);
    size_t size;
    char *data = check_read_file(path, &size);
    if (!data || size < 28) {
        free(data);
        return -1;
    }
    f->file_size = size;
    uint32_t magic;
    memcpy(&magic, data, 4);
    size_t pos;
    const int *order;
    size_t n_order;
    if (magic == 0x616b3432u) {
        memcpy(&f->version, data + 4, 4);
        memcpy(f->config, data + 8, sizeof f->config);
        f->shared = (unsigned char)data[36];
        pos = 256;
        order = v1_order;
        n_order = sizeof v1_order / sizeof *v1_order;
    } else {
        memcpy(f->config, data, sizeof f->config);
        f->shared = f->config[5] > 0;
        f->config[5] = abs(f->config[5]);
        pos = 28;
        order = legacy_order;
        n_order = sizeof legacy_order / sizeof *legacy_order;
    }
    for (size_t i = 0; i < n_order; i++) {
        int t = order[i];
        if (t == L2C_GEN_WCLS && f->shared) continue;
        size_t bytes = numel(f->config, t) * instances(f->config, t) * sizeof(float);
        if (pos + bytes > size) break;
        f->offset[t] = pos;
        f->tensor[t] = malloc(bytes);
        memcpy(f->tensor[t], data + pos, bytes);
        pos += bytes;
    }
    free(data);
    return pos == size ? 0 : -1;
}

static int files_equal(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    char *da = check_read_file(a, &na), *db = check_read_file(b, &nb);
    int same = da && db && na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return same;
}

/* FNV-1a 64 of a file's bytes */
static uint64_t file_hash(const char *path) {
    size_t n;
    unsigned char *d = (unsigned char *)check_read_file(path, &n);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; d && i < n; i++) {
        h ^= d[i];
        h *= 0x100000001b3ull;
    }
    free(d);
    return h;
}

/* the test models: dim 16, hidden 24, 2 layers, 4 heads of 4, 2 kv heads, vocab 32, seq 8 */
static l2c_gen_spec tiny(int format, int shared) {
    l2c_gen_spec spec = {
        .dim = 16, .hidden_dim = 24, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
        .vocab_size = 32, .seq_len = 8, .shared_classifier = shared, .format = format,
        .group_size = 8, .seed = 1234,
    };
    return spec;
}

/* ------------------------------------------------------------------------------------------------
 * the fp32 formats
 */

static void test_legacy_file_has_run_c_layout(void) {
    l2c_gen_spec spec = tiny(L2C_GEN_LEGACY, 0);
    const char *path = tmp_path("legacy.bin");
    CHECK_INT(l2c_gen_write(path, &spec), 0);

    /* size: 28 bytes of header; emb 32*16, 2 * (norm 16, wq 256, wk 128, wv 128, wo 256, norm 16,
     * w1 384, w2 384, w3 384), final norm 16, rotary 2 * 8 * 2, classifier 32*16 */
    size_t floats = 512 + 2 * (16 + 256 + 128 + 128 + 256 + 16 + 384 + 384 + 384) + 16 + 32 + 512;
    size_t size;
    char *data = check_read_file(path, &size);
    CHECK(data != NULL);
    if (!data) return;
    CHECK_INT(size, 28 + 4 * floats);
    CHECK_INT(l2c_gen_file_size(&spec), 28 + 4 * floats);

    /* header: the 7 ints, vocab negative for the unshared classifier */
    int32_t header[7];
    memcpy(header, data, sizeof header);
    const int32_t want[7] = {16, 24, 2, 4, 2, -32, 8};
    for (int i = 0; i < 7; i++) CHECK_INT(header[i], want[i]);

    /* each tensor instance at its offset holds the generated values */
    size_t offset = 28;
    int config[7] = {16, 24, 2, 4, 2, 32, 8};
    for (size_t i = 0; i < sizeof legacy_order / sizeof *legacy_order; i++) {
        int t = legacy_order[i];
        if (t == FREQ_TABLES) {
            /* cos then sin of pos * 10000^(-2i/head_size), head_size 4 */
            for (int table = 0; table < 2; table++) {
                for (int p = 0; p < 8; p++) {
                    for (int k = 0; k < 2; k++) {
                        float got;
                        memcpy(&got, data + offset + 4 * ((table * 8 + p) * 2 + k), 4);
                        double angle = p * pow(10000.0, -2.0 * k / 4.0);
                        CHECK_NEAR(got, table == 0 ? cos(angle) : sin(angle), 1e-6);
                    }
                }
            }
            offset += 4 * numel(config, t);
            continue;
        }
        size_t n = numel(config, t);
        float *expected = malloc(n * sizeof(float));
        for (int layer = 0; layer < instances(config, t); layer++) {
            l2c_gen_fill(&spec, (l2c_gen_tensor)t, layer, 0, n, expected);
            if (memcmp(data + offset, expected, n * sizeof(float)) != 0) {
                fprintf(stderr, "legacy: %s layer %d differs at offset %zu\n",
                        l2c_gen_tensor_name((l2c_gen_tensor)t), layer, offset);
                check_failures++;
            }
            offset += n * sizeof(float);
        }
        free(expected);
    }
    CHECK_INT(offset, size);
    free(data);

    /* a shared classifier: positive vocab_size, no classifier at the end */
    spec.shared_classifier = 1;
    CHECK_INT(l2c_gen_write(path, &spec), 0);
    data = check_read_file(path, &size);
    memcpy(header, data, sizeof header);
    CHECK_INT(header[5], 32);
    CHECK_INT(size, 28 + 4 * (floats - 512));
    free(data);
}

static void test_v1_file_has_export_py_layout(void) {
    l2c_gen_spec spec = tiny(L2C_GEN_V1, 0);
    const char *path = tmp_path("v1.bin");
    CHECK_INT(l2c_gen_write(path, &spec), 0);
    size_t size;
    unsigned char *data = (unsigned char *)check_read_file(path, &size);
    CHECK(data != NULL);
    if (!data) return;

    /* header: magic "ak42" as a little-endian uint32, version 1, 7 ints, flag, zero padding */
    size_t floats = 512 + 2 * (16 + 256 + 128 + 128 + 256 + 16 + 384 + 384 + 384) + 16 + 512;
    CHECK_INT(size, 256 + 4 * floats);
    CHECK_INT(l2c_gen_file_size(&spec), 256 + 4 * floats);
    CHECK(memcmp(data, "24ka", 4) == 0);
    int32_t version, config[7];
    memcpy(&version, data + 4, 4);
    memcpy(config, data + 8, sizeof config);
    CHECK_INT(version, 1);
    const int32_t want[7] = {16, 24, 2, 4, 2, 32, 8};
    for (int i = 0; i < 7; i++) CHECK_INT(config[i], want[i]);
    CHECK_INT(data[36], 0);
    int padding_zero = 1;
    for (int i = 37; i < 256; i++) padding_zero &= data[i] == 0;
    CHECK(padding_zero);

    /* norms first, then the token table, the matrices, the classifier */
    size_t offset = 256;
    for (size_t i = 0; i < sizeof v1_order / sizeof *v1_order; i++) {
        int t = v1_order[i];
        size_t n = numel(config, t);
        float *expected = malloc(n * sizeof(float));
        for (int layer = 0; layer < instances(config, t); layer++) {
            l2c_gen_fill(&spec, (l2c_gen_tensor)t, layer, 0, n, expected);
            if (memcmp(data + offset, expected, n * sizeof(float)) != 0) {
                fprintf(stderr, "v1: %s layer %d differs at offset %zu\n",
                        l2c_gen_tensor_name((l2c_gen_tensor)t), layer, offset);
                check_failures++;
            }
            offset += n * sizeof(float);
        }
        free(expected);
    }
    CHECK_INT(offset, size);
    free(data);

    /* shared: flag 1 and no classifier */
    spec.shared_classifier = 1;
    CHECK_INT(l2c_gen_write(path, &spec), 0);
    data = (unsigned char *)check_read_file(path, &size);
    CHECK_INT(data[36], 1);
    CHECK_INT(size, 256 + 4 * (floats - 512));
    free(data);
}

static void test_legacy_and_v1_of_a_seed_hold_the_same_tensors(void) {
    for (int shared = 0; shared <= 1; shared++) {
        l2c_gen_spec legacy = tiny(L2C_GEN_LEGACY, shared), v1 = tiny(L2C_GEN_V1, shared);
        legacy.seed = v1.seed = 99 + shared;
        CHECK_INT(l2c_gen_write(tmp_path("same.legacy.bin"), &legacy), 0);
        CHECK_INT(l2c_gen_write(tmp_path("same.v1.bin"), &v1), 0);
        fp32_file a, b;
        CHECK_INT(read_fp32_file(tmp_path("same.legacy.bin"), &a), 0);
        CHECK_INT(read_fp32_file(tmp_path("same.v1.bin"), &b), 0);
        CHECK_INT(a.version, 0);
        CHECK_INT(b.version, 1);
        CHECK_INT(a.shared, shared);
        CHECK_INT(b.shared, shared);
        for (int i = 0; i < 7; i++) CHECK_INT(a.config[i], b.config[i]);
        for (int t = 0; t < L2C_GEN_TENSOR_COUNT; t++) {
            if (t == L2C_GEN_WCLS && shared) {
                CHECK(a.tensor[t] == NULL && b.tensor[t] == NULL);
                continue;
            }
            size_t bytes = numel(a.config, t) * instances(a.config, t) * sizeof(float);
            CHECK(a.tensor[t] && b.tensor[t] && memcmp(a.tensor[t], b.tensor[t], bytes) == 0);
        }
        fp32_file_free(&a);
        fp32_file_free(&b);
    }
}

static void test_weights_are_in_their_ranges_and_depend_on_seed_and_layer(void) {
    l2c_gen_spec spec = tiny(L2C_GEN_LEGACY, 0);
    l2c_gen_weights w, other;
    CHECK_INT(l2c_gen_weights_create(&spec, &w), 0);
    spec.seed++;
    CHECK_INT(l2c_gen_weights_create(&spec, &other), 0);
    spec.seed--;
    int config[7] = {16, 24, 2, 4, 2, 32, 8};

    for (int t = 0; t < L2C_GEN_TENSOR_COUNT; t++) {
        /* bounds, closed as fp32 rounding may reach them: norms in [0.9, 1.1], the table and the
         * classifier within 4/sqrt(dim) = 1, matrices within 1/sqrt(cols) (cols is hidden_dim 24
         * for w2, else dim 16) */
        float lo = -0.25f, hi = 0.25f;
        if (t == L2C_GEN_W2) {
            hi = 1.0f / sqrtf(24.0f);
            lo = -hi;
        }
        if (t == L2C_GEN_TOKEN_EMBEDDING || t == L2C_GEN_WCLS) {
            lo = -1.0f;
            hi = 1.0f;
        }
        if (t == L2C_GEN_RMS_ATT || t == L2C_GEN_RMS_FFN || t == L2C_GEN_RMS_FINAL) {
            lo = 0.9f;
            hi = 1.1f;
        }
        const float *x = l2c_gen_weights_tensor(&w, (l2c_gen_tensor)t);
        const float *y = l2c_gen_weights_tensor(&other, (l2c_gen_tensor)t);
        size_t n = numel(config, t), all = n * instances(config, t);
        double sum = 0, sum2 = 0;
        int in_range = 1;
        for (size_t i = 0; i < all; i++) {
            in_range &= x[i] >= lo && x[i] <= hi;
            sum += x[i];
            sum2 += x[i] * x[i];
        }
        CHECK(in_range);

        /* spread: a uniform variable's variance is (hi - lo)^2 / 12; 16+ samples land within
         * 60% of it comfortably */
        double var = sum2 / all - (sum / all) * (sum / all);
        double uniform_var = (double)(hi - lo) * (hi - lo) / 12.0;
        if (!(var > 0.4 * uniform_var && var < 1.6 * uniform_var)) {
            fprintf(stderr, "%s: variance %g, uniform %g\n", l2c_gen_tensor_name(t), var,
                    uniform_var);
            check_failures++;
        }

        /* another seed, and the next layer, give other values */
        CHECK(memcmp(x, y, n * sizeof(float)) != 0);
        if (instances(config, t) > 1) CHECK(memcmp(x, x + n, n * sizeof(float)) != 0);
    }

    /* a fill from the middle of a tensor continues the same sequence */
    float part[10];
    l2c_gen_fill(&spec, L2C_GEN_W1, 1, 100, 10, part);
    CHECK(memcmp(part, w.w1 + 384 + 100, sizeof part) == 0);
    l2c_gen_weights_free(&w);
    l2c_gen_weights_free(&other);

    /* the same spec writes the same bytes */
    CHECK_INT(l2c_gen_write(tmp_path("again1.bin"), &spec), 0);
    CHECK_INT(l2c_gen_write(tmp_path("again2.bin"), &spec), 0);
    CHECK(files_equal(tmp_path("again1.bin"), tmp_path("again2.bin")));
}

/* ------------------------------------------------------------------------------------------------
 * Q8_0
 */

static void test_q8_rounds_half_to_even_and_zero_groups_get_zero(void) {
    /* group 1: max 127, scale 1: 2.5 -> 2, -3.5 -> -4, 0.5 -> 0, -0.5 -> 0, 1.5 -> 2, 3.49 -> 3
     * group 2: all zero: scale 0, q 0
     * group 3: max |-254|, scale 2: 5 -> 2.5 -> 2, -3 -> -1.5 -> -2, 7 -> 3.5 -> 4, 1 -> 0.5 -> 0
     * group 4: max 63.5, scale 0.5: -1 -> -2, 0.25 -> 0.5 -> 0, 0.75 -> 1.5 -> 2, 63.5 -> 127 */
    const float x[32] = {
        127, 2.5f, -3.5f, 0.5f, -0.5f, 1.5f, 3.49f, -127,
        0, 0, 0, 0, 0, 0, 0, 0,
        -254, 5, -3, 7, 1, -1, 254, 0,
        -1, 0.25f, 0.75f, 63.5f, -63.5f, 31.75f, 2.25f, 0,
    };
    const int8_t want_q[32] = {
        127, 2, -4, 0, 0, 2, 3, -127,
        0, 0, 0, 0, 0, 0, 0, 0,
        -127, 2, -2, 4, 0, 0, 127, 0,
        -2, 0, 2, 127, -127, 64, 4, 0,
    };
    const float want_s[4] = {1.0f, 0.0f, 2.0f, 0.5f};
    int8_t q[32];
    float s[4];
    l2c_gen_q8_quantize(x, 32, 8, q, s);
    for (int i = 0; i < 32; i++) CHECK_INT(q[i], want_q[i]);
    for (int g = 0; g < 4; g++) CHECK(s[g] == want_s[g]);

    /* the scale is max|x| / 127 in fp32 */
    const float y[4] = {0.1f, -0.3f, 0.2f, 0.0f};
    l2c_gen_q8_quantize(y, 4, 4, q, s);
    CHECK(s[0] == 0.3f / 127.0f);
    CHECK_INT(q[1], -127);
    CHECK_INT(q[0], 42); /* 0.1 / (0.3 / 127) = 42.33 */

    /* dequantize is q * scale */
    float back[32];
    l2c_gen_q8_quantize(x, 32, 8, q, s);
    l2c_gen_q8_dequantize(q, s, 32, 8, back);
    CHECK(back[1] == 2.0f && back[17] == 4.0f && back[24] == -1.0f && back[8] == 0.0f);
}

static void test_group_size_backs_off_like_export_py(void) {
    CHECK_INT(l2c_gen_group_size(64, 64), 64);
    CHECK_INT(l2c_gen_group_size(288, 64), 32);
    CHECK_INT(l2c_gen_group_size(24, 64), 8);
    CHECK_INT(l2c_gen_group_size(4096, 64), 64);
    CHECK_INT(l2c_gen_group_size(48, 48), 48);
    CHECK_INT(l2c_gen_group_size(15, 64), 1);
}

static void test_v2_file_has_export_py_layout(void) {
    /* dim 24 (head size 6): group size 64 backs off to 8 */
    l2c_gen_spec spec = tiny(L2C_GEN_V2, 0);
    spec.dim = 24;
    spec.group_size = 64;
    const char *path = tmp_path("v2.bin");
    CHECK_INT(l2c_gen_write(path, &spec), 0);
    size_t size;
    unsigned char *data = (unsigned char *)check_read_file(path, &size);
    CHECK(data != NULL);
    if (!data) return;

    /* header: as version 1 with version 2, then the int32 group size at byte 37 */
    int32_t version, config[7], group_size;
    memcpy(&version, data + 4, 4);
    memcpy(config, data + 8, sizeof config);
    memcpy(&group_size, data + 37, 4);
    CHECK(memcmp(data, "24ka", 4) == 0);
    CHECK_INT(version, 2);
    CHECK_INT(config[0], 24);
    CHECK_INT(config[5], 32);
    CHECK_INT(data[36], 0);
    CHECK_INT(group_size, 8);
    int padding_zero = 1;
    for (int i = 41; i < 256; i++) padding_zero &= data[i] == 0;
    CHECK(padding_zero);

    /* fp32 norms: 2 layers of attention norms, 2 of ffn norms, the final norm */
    size_t offset = 256;
    const int norms[3] = {L2C_GEN_RMS_ATT, L2C_GEN_RMS_FFN, L2C_GEN_RMS_FINAL};
    float expected[24 * 32];
    for (int i = 0; i < 3; i++) {
        for (int layer = 0; layer < instances(config, norms[i]); layer++) {
            l2c_gen_fill(&spec, (l2c_gen_tensor)norms[i], layer, 0, 24, expected);
            CHECK(memcmp(data + offset, expected, 24 * sizeof(float)) == 0);
            offset += 24 * sizeof(float);
        }
    }

    /* each matrix instance: its int8 values, then one scale per 8 values, checked against the
     * definition: scale = max|w| / 127, q = nearest (ties to even) of w / scale, and
     * |q * scale - w| <= scale / 2 */
    for (size_t i = 0; i < sizeof v2_q8_order / sizeof *v2_q8_order; i++) {
        int t = v2_q8_order[i];
        size_t n = numel(config, t);
        for (int layer = 0; layer < instances(config, t); layer++) {
            l2c_gen_fill(&spec, (l2c_gen_tensor)t, layer, 0, n, expected);
            const int8_t *q = (const int8_t *)(data + offset);
            const unsigned char *scales = data + offset + n;
            int bad = 0;
            for (size_t g = 0; g < n / 8; g++) {
                float scale, wmax = 0;
                memcpy(&scale, scales + 4 * g, 4);
                for (int k = 0; k < 8; k++) wmax = fmaxf(wmax, fabsf(expected[g * 8 + k]));
                bad |= scale != wmax / 127.0f;
                for (int k = 0; k < 8; k++) {
                    float w = expected[g * 8 + k];
                    bad |= q[g * 8 + k] != (int)nearbyintf(w / scale);
                    bad |= fabsf(q[g * 8 + k] * scale - w) > scale / 2 * 1.0001f;
                }
            }
            if (bad) {
                fprintf(stderr, "v2: %s layer %d is not its Q8_0\n",
                        l2c_gen_tensor_name((l2c_gen_tensor)t), layer);
                check_failures++;
            }
            offset += n + n / 8 * sizeof(float);
        }
    }
    CHECK_INT(offset, size);
    CHECK_INT(l2c_gen_file_size(&spec), size);
    free(data);

    /* the in-memory weights of a version-2 spec are the dequantized file */
    l2c_gen_weights w;
    CHECK_INT(l2c_gen_weights_create(&spec, &w), 0);
    float wmax = 0;
    l2c_gen_fill(&spec, L2C_GEN_WO, 1, 0, 24 * 24, expected);
    for (int k = 0; k < 8; k++) wmax = fmaxf(wmax, fabsf(expected[k]));
    for (int k = 0; k < 8; k++) {
        float scale = wmax / 127.0f;
        CHECK(w.wo[24 * 24 + k] == nearbyintf(expected[k] / scale) * scale);
    }
    l2c_gen_fill(&spec, L2C_GEN_RMS_FFN, 1, 0, 24, expected);
    CHECK(memcmp(w.rms_ffn_weight + 24, expected, 24 * sizeof(float)) == 0);
    l2c_gen_weights_free(&w);
}

/* ------------------------------------------------------------------------------------------------
 * the tools
 */

/* Runs a tool with arguments; returns its exit code, the output (stdout and stderr) in *out. */
static int tool(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int tool(char **out, const char *fmt, ...) {
    char args[4096], cmd[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s'/%s 2>&1", tmp, bin_dir, args);
    int status = -1;
    char *text = check_run(cmd, &status);
    if (out) *out = text;
    else free(text);
    return status;
}

static void test_l2c_gen_writes_what_the_library_writes(void) {
    /* the flags map onto the spec; --shape values are overridden by explicit flags */
    l2c_gen_spec spec = tiny(L2C_GEN_V1, 0);
    spec.seed = 77;
    CHECK_INT(l2c_gen_write(tmp_path("lib.bin"), &spec), 0);
    CHECK_INT(tool(NULL, "l2c-gen --shape stories15M --dim 16 --hidden-dim 24 --layers 2 --heads 4 "
                   "--kv-heads 2 --vocab 32 --seq-len 8 --unshared --format v1 --seed 77 "
                   "-o gen.bin"), 0);
    CHECK(files_equal(tmp_path("lib.bin"), tmp_path("gen.bin")));

    /* a shape alone, one value overridden: stories15M with 1 layer and vocab 300 */
    CHECK_INT(tool(NULL, "l2c-gen --shape stories15M --layers 1 --vocab 300 -o s15.bin"), 0);
    fp32_file f;
    CHECK_INT(read_fp32_file(tmp_path("s15.bin"), &f), 0);
    const int want[7] = {288, 768, 1, 6, 6, 300, 256};
    for (int i = 0; i < 7; i++) CHECK_INT(f.config[i], want[i]);
    CHECK_INT(f.version, 0);
    CHECK_INT(f.shared, 1);
    fp32_file_free(&f);

    /* --help */
    char *text;
    CHECK_INT(tool(&text, "l2c-gen --help"), 0);
    CHECK(text && strstr(text, "--shape") && strstr(text, "--group-size"));
    free(text);
}

static void test_l2c_quantize_equals_the_writers_v2(void) {
    const struct { int shared, group_size, dim, heads; } cases[] = {
        {1, 64, 16, 4}, {0, 64, 16, 4}, {0, 4, 16, 4}, {1, 64, 24, 4}, {0, 16, 48, 8},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        l2c_gen_spec spec = tiny(L2C_GEN_LEGACY, cases[i].shared);
        spec.group_size = cases[i].group_size;
        spec.dim = cases[i].dim;
        spec.n_heads = cases[i].heads;
        spec.seed = 500 + i;
        CHECK_INT(l2c_gen_write(tmp_path("q.legacy.bin"), &spec), 0);
        spec.format = L2C_GEN_V1;
        CHECK_INT(l2c_gen_write(tmp_path("q.v1.bin"), &spec), 0);
        spec.format = L2C_GEN_V2;
        CHECK_INT(l2c_gen_write(tmp_path("q.v2.bin"), &spec), 0);

        CHECK_INT(tool(NULL, "l2c-quantize --group-size %d q.legacy.bin q.from-legacy.bin",
                       cases[i].group_size), 0);
        CHECK_INT(tool(NULL, "l2c-quantize q.v1.bin --group-size %d q.from-v1.bin",
                       cases[i].group_size), 0);
        if (!files_equal(tmp_path("q.v2.bin"), tmp_path("q.from-legacy.bin")) ||
            !files_equal(tmp_path("q.v2.bin"), tmp_path("q.from-v1.bin"))) {
            fprintf(stderr, "l2c-quantize differs from the v2 writer in case %zu\n", i);
            check_failures++;
        }
    }

    /* export.py calls the classifier shared when it equals the table, whatever the flag says:
     * an unshared legacy file whose classifier is a copy of the table */
    l2c_gen_spec spec = tiny(L2C_GEN_LEGACY, 1);
    CHECK_INT(l2c_gen_write(tmp_path("copy.bin"), &spec), 0);
    size_t size;
    char *data = check_read_file(tmp_path("copy.bin"), &size);
    int32_t vocab = -32;
    memcpy(data + 20, &vocab, 4);
    FILE *f = fopen(tmp_path("copy.bin"), "wb");
    fwrite(data, 1, size, f);
    fwrite(data + 28, 1, 32 * 16 * sizeof(float), f);
    fclose(f);
    free(data);
    spec.format = L2C_GEN_V2;
    CHECK_INT(l2c_gen_write(tmp_path("copy.v2.bin"), &spec), 0);
    CHECK_INT(tool(NULL, "l2c-quantize --group-size 8 copy.bin copy.q.bin"), 0);
    CHECK(files_equal(tmp_path("copy.v2.bin"), tmp_path("copy.q.bin")));
}

/* The FNV-1a hashes of what an emulation of export.py's version2_export (Python, fp32 arithmetic
 * through struct round trips, round() ties to even) wrote for stories260K.bin. */
static void test_l2c_quantize_of_stories260K_matches_export_py(void) {
    const char *legacy = check_model_path("stories260K.bin");
    if (!legacy) {
        printf("test_tools: stories260K.bin absent, real-model quantization not checked\n");
        return;
    }
    char legacy_path[4096];
    snprintf(legacy_path, sizeof legacy_path, "%s", legacy);
    CHECK_INT(tool(NULL, "l2c-quantize '%s' real.v2.bin", legacy_path), 0);
    CHECK_INT(file_hash(tmp_path("real.v2.bin")), 0xad6d08b824f7b245ull);

    const char *v1 = check_model_path("stories260K.v1.bin");
    if (!v1) return;
    CHECK_INT(tool(NULL, "l2c-quantize --group-size 32 '%s' real32.v2.bin", v1), 0);
    CHECK_INT(file_hash(tmp_path("real32.v2.bin")), 0x9ae47c71428e6c6bull);
}

/* ------------------------------------------------------------------------------------------------
 * tokenizer
 */

typedef struct {
    char *s;
    int   id;
} piece;

static int piece_cmp(const void *a, const void *b) {
    return strcmp(((const piece *)a)->s, ((const piece *)b)->s);
}

static int piece_find(const piece *sorted, int n, const char *s) {
    piece key = {(char *)s, 0};
    const piece *p = bsearch(&key, sorted, n, sizeof *sorted, piece_cmp);
    return p ? p->id : -1;
}

static void check_tokenizer(const char *path, int vocab_size) {
    size_t size;
    char *data = check_read_file(path, &size);
    CHECK(data != NULL);
    if (!data) return;

    /* max_token_length, then (score, length, bytes) per token to the end of the file */
    int32_t max_len;
    memcpy(&max_len, data, 4);
    size_t pos = 4;
    char **pieces = calloc(vocab_size, sizeof *pieces);
    float *scores = calloc(vocab_size, sizeof *scores);
    int longest = 0, n = 0;
    while (n < vocab_size && pos + 8 <= size) {
        int32_t len;
        memcpy(&scores[n], data + pos, 4);
        memcpy(&len, data + pos + 4, 4);
        pos += 8;
        if (len < 1 || pos + len > size) break;
        pieces[n] = calloc(len + 1, 1);
        memcpy(pieces[n], data + pos, len);
        pos += len;
        if (len > longest) longest = len;
        n++;
    }
    CHECK_INT(n, vocab_size);
    CHECK_INT(pos, size);
    CHECK_INT(max_len, longest);
    if (n != vocab_size) return;

    /* the special tokens, the byte tokens, " " */
    CHECK_STR(pieces[0], "<unk>");
    CHECK_STR(pieces[1], "\n<s>\n");
    CHECK_STR(pieces[2], "\n</s>\n");
    char byte[8];
    for (int b = 0; b < 256; b++) {
        snprintf(byte, sizeof byte, "<0x%02X>", b);
        if (strcmp(pieces[3 + b], byte) != 0) {
            fprintf(stderr, "token %d is \"%s\", expected %s\n", 3 + b, pieces[3 + b], byte);
            check_failures++;
        }
    }

    /* distinct pieces; every longer piece after the bytes splits into two pieces of lower ids,
     * which makes it reachable by merges; scores fall from token 259 on */
    piece *sorted = malloc(n * sizeof *sorted);
    for (int i = 0; i < n; i++) sorted[i] = (piece){pieces[i], i};
    qsort(sorted, n, sizeof *sorted, piece_cmp);
    int distinct = 1;
    for (int i = 1; i < n; i++) distinct &= strcmp(sorted[i - 1].s, sorted[i].s) != 0;
    CHECK(distinct);
    CHECK(piece_find(sorted, n, " ") >= 259);
    int mergeable = 1, falling = 1;
    for (int i = 259; i < n; i++) {
        if (i > 259) falling &= scores[i] < scores[i - 1];
        size_t len = strlen(pieces[i]);
        if (len < 2) continue;
        int found = 0;
        char left[64];
        for (size_t k = 1; k < len && !found; k++) {
            memcpy(left, pieces[i], k);
            left[k] = '\0';
            int a = piece_find(sorted, n, left), b = piece_find(sorted, n, pieces[i] + k);
            found = a >= 0 && a < i && b >= 0 && b < i;
        }
        if (!found) {
            fprintf(stderr, "token %d \"%s\" is not a merge of two earlier pieces\n", i, pieces[i]);
            mergeable = 0;
        }
    }
    CHECK(mergeable);
    CHECK(falling);

    /* llama2.c's encoding of "the cat" (every character is a piece from 354 tokens on): the
     * dummy " ", one piece per character, then merges of the best-scoring pair; the pieces spell
     * " the cat", in fewer tokens than characters once " t" and " c" exist */
    const char *text = vocab_size >= 354 ? " the cat" : "";
    int tokens[16], n_tokens = 0;
    for (const char *c = text; *c; c++) {
        char s[2] = {*c, 0};
        tokens[n_tokens++] = piece_find(sorted, n, s);
    }
    for (;;) {
        int best = -1, best_id = -1;
        float best_score = -1e30f;
        char merged[128];
        for (int i = 0; i + 1 < n_tokens; i++) {
            snprintf(merged, sizeof merged, "%s%s", pieces[tokens[i]], pieces[tokens[i + 1]]);
            int id = piece_find(sorted, n, merged);
            if (id >= 0 && scores[id] > best_score) best = i, best_id = id, best_score = scores[id];
        }
        if (best < 0) break;
        tokens[best] = best_id;
        memmove(tokens + best + 1, tokens + best + 2, (n_tokens - best - 2) * sizeof(int));
        n_tokens--;
    }
    char spelled[128] = "";
    for (int i = 0; i < n_tokens; i++) strcat(spelled, pieces[tokens[i]]);
    CHECK_STR(spelled, text);
    if (vocab_size >= 512) CHECK(n_tokens < (int)strlen(text));

    for (int i = 0; i < n; i++) free(pieces[i]);
    free(pieces);
    free(scores);
    free(sorted);
    free(data);
}

static void test_tokenizer_is_well_formed(void) {
    const int sizes[] = {260, 300, 512, 32000};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        CHECK_INT(l2c_gen_write_tokenizer(tmp_path("tok.bin"), sizes[i]), 0);
        check_tokenizer(tmp_path("tok.bin"), sizes[i]);
    }

    /* l2c-gen --tokenizer writes the same file; below the minimum is an error */
    CHECK_INT(tool(NULL, "l2c-gen --vocab 512 -o m.bin --tokenizer t512.bin"), 0);
    CHECK_INT(l2c_gen_write_tokenizer(tmp_path("tok.bin"), 512), 0);
    CHECK(files_equal(tmp_path("tok.bin"), tmp_path("t512.bin")));
    errno = 0;
    CHECK_INT(l2c_gen_write_tokenizer(tmp_path("small.bin"), 259), -1);
    CHECK_INT(errno, EINVAL);
}

/* ------------------------------------------------------------------------------------------------
 * errors
 */

static void test_library_errors_name_the_cause(void) {
    l2c_gen_spec spec = tiny(L2C_GEN_LEGACY, 1);
    errno = 0;
    CHECK_INT(l2c_gen_write(tmp_path("no/such/dir/x.bin"), &spec), -1);
    CHECK_INT(errno, ENOENT);
    CHECK(strstr(l2c_gen_last_error(), "no/such/dir/x.bin") != NULL);

    spec.n_heads = 3;
    errno = 0;
    CHECK_INT(l2c_gen_write(tmp_path("bad.bin"), &spec), -1);
    CHECK_INT(errno, EINVAL);
    CHECK(strstr(l2c_gen_last_error(), "n_heads") != NULL);
    CHECK(access(tmp_path("bad.bin"), F_OK) != 0);
    spec.n_heads = 8; /* head_size 2 */
    CHECK_INT(l2c_gen_check_spec(&spec), 0);
    spec.n_kv_heads = 3;
    CHECK_INT(l2c_gen_check_spec(&spec), -1);
    CHECK(strstr(l2c_gen_last_error(), "n_kv_heads") != NULL);
    spec = tiny(L2C_GEN_V2, 1);
    spec.group_size = 0;
    CHECK_INT(l2c_gen_check_spec(&spec), -1);
    CHECK(strstr(l2c_gen_last_error(), "group_size") != NULL);
}

static void test_bad_command_lines_fail_with_a_line_naming_the_flag(void) {
    /* inputs for l2c-quantize: a version-2 file, a truncated legacy file, garbage */
    l2c_gen_spec spec = tiny(L2C_GEN_V2, 1);
    CHECK_INT(l2c_gen_write(tmp_path("in.v2.bin"), &spec), 0);
    spec.format = L2C_GEN_LEGACY;
    CHECK_INT(l2c_gen_write(tmp_path("in.bin"), &spec), 0);
    CHECK_INT(truncate(tmp_path("in.bin"), 1000), 0);
    FILE *f = fopen(tmp_path("junk.bin"), "wb");
    int32_t junk[8] = {16, 24, 2, 5, 2, 32, 8, 0};
    fwrite(junk, sizeof junk, 1, f);
    fclose(f);

    const struct { const char *args, *message; } cases[] = {
        {"l2c-gen --dim abc -o x.bin", "--dim"},
        {"l2c-gen --dim 0 -o x.bin", "--dim"},
        {"l2c-gen --dim -4 -o x.bin", "--dim"},
        {"l2c-gen --hidden-dim 1.5 -o x.bin", "--hidden-dim"},
        {"l2c-gen --layers 99999999999 -o x.bin", "--layers"},
        {"l2c-gen --heads 5 -o x.bin", "--heads"},
        {"l2c-gen --dim 48 --heads 16 -o x.bin", "--heads"},
        {"l2c-gen --kv-heads 3 -o x.bin", "--kv-heads"},
        {"l2c-gen --vocab x -o x.bin", "--vocab"},
        {"l2c-gen --seq-len 0 -o x.bin", "--seq-len"},
        {"l2c-gen --group-size 0 --format v2 -o x.bin", "--group-size"},
        {"l2c-gen --seed -1 -o x.bin", "--seed"},
        {"l2c-gen --format v3 -o x.bin", "--format"},
        {"l2c-gen --shape stories1B -o x.bin", "--shape"},
        {"l2c-gen --vocab 100 --tokenizer t.bin -o x.bin", "--tokenizer"},
        {"l2c-gen --frobnicate -o x.bin", "--frobnicate"},
        {"l2c-gen --dim", "--dim"},
        {"l2c-gen --format v2", "-o"},
        {"l2c-gen -o no/such/dir/x.bin", "no/such/dir/x.bin"},
        {"l2c-quantize --group-size 0 in.bin out.bin", "--group-size"},
        {"l2c-quantize --group-size", "--group-size"},
        {"l2c-quantize --bogus in.bin out.bin", "--bogus"},
        {"l2c-quantize in.bin", "OUT"},
        {"l2c-quantize a b c", "'c'"},
        {"l2c-quantize missing.bin out.bin", "missing.bin"},
        {"l2c-quantize in.bin in.bin", "input"},
        {"l2c-quantize in.v2.bin out.bin", "version 2"},
        {"l2c-quantize in.bin out.bin", "bytes"},
        {"l2c-quantize junk.bin out.bin", "n_heads"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char *text = NULL;
        int status = tool(&text, "%s", cases[i].args);
        int lines = 0;
        for (const char *c = text; c && *c; c++) lines += *c == '\n';
        if (status != 1 || !text || !strstr(text, cases[i].message) || lines != 1) {
            fprintf(stderr, "'%s': exit %d, expected 1 and one line naming %s; got: %s",
                    cases[i].args, status, cases[i].message, text ? text : "(nothing)\n");
            check_failures++;
        }
        free(text);
    }
    CHECK(access(tmp_path("out.bin"), F_OK) != 0);
}

int main(void) {
    snprintf(tmp, sizeof tmp, "%s", check_tmpdir("tools"));
    if (!realpath(check_bin_dir(), bin_dir)) {
        fprintf(stderr, "test_tools: build directory %s not found\n", check_bin_dir());
        return 1;
    }
    test_legacy_file_has_run_c_layout();
    test_v1_file_has_export_py_layout();
    test_legacy_and_v1_of_a_seed_hold_the_same_tensors();
    test_weights_are_in_their_ranges_and_depend_on_seed_and_layer();
    test_q8_rounds_half_to_even_and_zero_groups_get_zero();
    test_group_size_backs_off_like_export_py();
    test_v2_file_has_export_py_layout();
    test_l2c_gen_writes_what_the_library_writes();
    test_l2c_quantize_equals_the_writers_v2();
    test_l2c_quantize_of_stories260K_matches_export_py();
    test_tokenizer_is_well_formed();
    test_library_errors_name_the_cause();
    test_bad_command_lines_fail_with_a_line_naming_the_flag();
    return check_report("test_tools");
}
