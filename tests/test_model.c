/*
 * test_model.c - loading each checkpoint format from generated files, and the CPU forward pass
 * against a reference computed independently here, in double precision, from the generator's
 * weights.
 *
 * Tolerances, relative to the largest |logit| at each position:
 *   fp32 files: 1e-5. The engine sums in fp32 in another order than this double-precision
 *     reference; over sums of at most a few hundred terms of magnitude ~1 the rounding error is a
 *     few fp32 ulps, about 1e-6 relative.
 *   Q8_0 files: 3e-2. The engine quantizes every activation vector to int8 as runq.c does (a
 *     relative error up to 1/254 per element) while this reference keeps activations exact.
 */
#include <stdint.h>

#include "check.h"
#include "checkpoint_writer.h"
#include "internal.h"

/* ------------------------------------------------------------------------------------------------
 * the reference forward pass, in double precision
 */

typedef struct {
    l2c_gen_spec spec;
    l2c_gen_weights w;
    double *key_cache, *value_cache; /* (n_layers, seq_len, kv_dim) */
} reference;

static void ref_matvec(double *out, const float *w, const double *x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
        double sum = 0.0;
        for (int c = 0; c < cols; c++) sum += (double)w[(size_t)r * cols + c] * x[c];
        out[r] = sum;
    }
}

static void ref_rmsnorm(double *out, const double *x, const float *weight, int n) {
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double scale = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; i++) out[i] = weight[i] * x[i] * scale;
}

/* rotates pairs (2i, 2i+1) of each head by pos * 10000^(-2i / head_size) */
static void ref_rope(double *v, int n, int head_size, int pos) {
    for (int i = 0; i < n; i += 2) {
        double angle = pos * pow(10000.0, -(double)(i % head_size) / head_size);
        double c = cos(angle), s = sin(angle);
        double a = v[i], b = v[i + 1];
        v[i] = a * c - b * s;
        v[i + 1] = a * s + b * c;
    }
}

static void ref_forward(reference *r, int token, int pos, double *logits) {
    const l2c_gen_spec *p = &r->spec;
    int dim = p->dim, hidden = p->hidden_dim, hs = dim / p->n_heads;
    int kv_dim = hs * p->n_kv_heads, group = p->n_heads / p->n_kv_heads;
    double *x = calloc(dim, sizeof *x), *xb = calloc(dim, sizeof *xb);
    double *q = calloc(dim, sizeof *q), *att_out = calloc(dim, sizeof *att_out);
    double *h1 = calloc(hidden, sizeof *h1), *h3 = calloc(hidden, sizeof *h3);
    double *delta = calloc(dim, sizeof *delta), *scores = calloc(pos + 1, sizeof *scores);

    for (int i = 0; i < dim; i++) x[i] = r->w.token_embedding_table[(size_t)token * dim + i];
    for (int l = 0; l < p->n_layers; l++) {
        size_t cache = ((size_t)l * p->seq_len + pos) * kv_dim;
        double *k = r->key_cache + cache, *v = r->value_cache + cache;

        /* attention: q, k, v, rotated q and k, softmax over positions 0..pos per head */
        ref_rmsnorm(xb, x, r->w.rms_att_weight + (size_t)l * dim, dim);
        ref_matvec(q, r->w.wq + (size_t)l * dim * dim, xb, dim, dim);
        ref_matvec(k, r->w.wk + (size_t)l * kv_dim * dim, xb, kv_dim, dim);
        ref_matvec(v, r->w.wv + (size_t)l * kv_dim * dim, xb, kv_dim, dim);
        ref_rope(q, dim, hs, pos);
        ref_rope(k, kv_dim, hs, pos);
        for (int h = 0; h < p->n_heads; h++) {
            int kvh = h / group;
            double max = -INFINITY, sum = 0.0;
            for (int t = 0; t <= pos; t++) {
                const double *kt = r->key_cache + ((size_t)l * p->seq_len + t) * kv_dim + kvh * hs;
                double dot = 0.0;
                for (int i = 0; i < hs; i++) dot += q[h * hs + i] * kt[i];
                scores[t] = dot / sqrt((double)hs);
                if (scores[t] > max) max = scores[t];
            }
            for (int t = 0; t <= pos; t++) sum += scores[t] = exp(scores[t] - max);
            for (int i = 0; i < hs; i++) {
                double acc = 0.0;
                for (int t = 0; t <= pos; t++) {
                    acc += scores[t] / sum *
                           r->value_cache[((size_t)l * p->seq_len + t) * kv_dim + kvh * hs + i];
                }
                att_out[h * hs + i] = acc;
            }
        }
        ref_matvec(delta, r->w.wo + (size_t)l * dim * dim, att_out, dim, dim);
        for (int i = 0; i < dim; i++) x[i] += delta[i];

        /* feed-forward: w2(silu(w1 x) * w3 x) */
        ref_rmsnorm(xb, x, r->w.rms_ffn_weight + (size_t)l * dim, dim);
        ref_matvec(h1, r->w.w1 + (size_t)l * hidden * dim, xb, hidden, dim);
        ref_matvec(h3, r->w.w3 + (size_t)l * hidden * dim, xb, hidden, dim);
        for (int i = 0; i < hidden; i++) h1[i] = h1[i] / (1.0 + exp(-h1[i])) * h3[i];
        ref_matvec(delta, r->w.w2 + (size_t)l * dim * hidden, h1, dim, hidden);
        for (int i = 0; i < dim; i++) x[i] += delta[i];
    }
    ref_rmsnorm(xb, x, r->w.rms_final_weight, dim);
    ref_matvec(logits, r->w.wcls, xb, p->vocab_size, dim);
    free(x); free(xb); free(q); free(att_out); free(h1); free(h3); free(delta); free(scores);
}

/* ------------------------------------------------------------------------------------------------
 * the cases
 */

static void expect_same_floats(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fprintf(stderr, "%s[%zu] is %.9g, expected %.9g\n", what, i, got[i], want[i]);
            check_failures++;
            return;
        }
    }
}

static void check_model(const char *dir, l2c_gen_spec spec, double tolerance) {
    char path[4200];
    snprintf(path, sizeof path, "%s/model-%d-%d.bin", dir, spec.format, spec.shared_classifier);
    CHECK_INT(l2c_gen_write(path, &spec), 0);

    /* the header's fields come back as written */
    l2c_model *model = NULL;
    CHECK_OK(l2c_model_load(path, &model));
    if (!model) return;
    const l2c_config *c = l2c_model_config(model);
    CHECK_INT(c->format, spec.format);
    CHECK_INT(c->dim, spec.dim);
    CHECK_INT(c->hidden_dim, spec.hidden_dim);
    CHECK_INT(c->n_layers, spec.n_layers);
    CHECK_INT(c->n_heads, spec.n_heads);
    CHECK_INT(c->n_kv_heads, spec.n_kv_heads);
    CHECK_INT(c->vocab_size, spec.vocab_size);
    CHECK_INT(c->seq_len, spec.seq_len);
    CHECK_INT(c->shared_classifier, spec.shared_classifier);
    CHECK_INT(c->group_size, spec.format == 2 ? l2c_gen_group_size(spec.dim, spec.group_size)
                                              : 0);

    /* every weight is where the format puts it */
    reference r = {.spec = spec};
    CHECK_INT(l2c_gen_weights_create(&spec, &r.w), 0);
    const l2c_weights *w = &model->weights;
    size_t dim = spec.dim, L = spec.n_layers, hidden = spec.hidden_dim;
    size_t kv_dim = dim / spec.n_heads * spec.n_kv_heads;
    expect_same_floats("token_embedding_table", w->token_embedding_table,
                       r.w.token_embedding_table, spec.vocab_size * dim);
    expect_same_floats("rms_att_weight", w->rms_att_weight, r.w.rms_att_weight, L * dim);
    expect_same_floats("rms_ffn_weight", w->rms_ffn_weight, r.w.rms_ffn_weight, L * dim);
    expect_same_floats("rms_final_weight", w->rms_final_weight, r.w.rms_final_weight, dim);
    if (spec.format != 2) {
        expect_same_floats("wq", w->wq, r.w.wq, L * dim * dim);
        expect_same_floats("wk", w->wk, r.w.wk, L * kv_dim * dim);
        expect_same_floats("wv", w->wv, r.w.wv, L * kv_dim * dim);
        expect_same_floats("wo", w->wo, r.w.wo, L * dim * dim);
        expect_same_floats("w1", w->w1, r.w.w1, L * hidden * dim);
        expect_same_floats("w2", w->w2, r.w.w2, L * hidden * dim);
        expect_same_floats("w3", w->w3, r.w.w3, L * hidden * dim);
        expect_same_floats("wcls", w->wcls, r.w.wcls, spec.vocab_size * dim);
    } else {
        /* Q8_0: the last layer's w2 and the classifier, dequantized */
        int gs = c->group_size;
        size_t n = hidden * dim;
        float *deq = malloc(spec.vocab_size * dim * sizeof *deq);
        l2c_gen_q8_dequantize(w->q_w2[L - 1].q, w->q_w2[L - 1].s, n, gs, deq);
        expect_same_floats("w2 (last layer)", deq, r.w.w2 + (L - 1) * n, n);
        l2c_gen_q8_dequantize(w->q_wcls.q, w->q_wcls.s, spec.vocab_size * dim, gs, deq);
        expect_same_floats("wcls", deq, r.w.wcls, spec.vocab_size * dim);
        free(deq);
    }

    /* the forward pass at every position against the double-precision reference */
    l2c_backend *cpu = NULL;
    CHECK_OK(l2c_backend_cpu_create(model, &cpu));
    size_t cache = L * spec.seq_len * kv_dim;
    r.key_cache = calloc(cache, sizeof(double));
    r.value_cache = calloc(cache, sizeof(double));
    double *want = malloc(spec.vocab_size * sizeof *want);
    double worst = 0.0;
    for (int pos = 0; cpu && pos < spec.seq_len; pos++) {
        int token = (pos * 37 + 11) % spec.vocab_size;
        float *got;
        CHECK_OK(l2c_backend_forward(cpu, token, pos, &got));
        ref_forward(&r, token, pos, want);
        double scale = 0.0, diff = 0.0;
        for (int i = 0; i < spec.vocab_size; i++) {
            if (fabs(want[i]) > scale) scale = fabs(want[i]);
            double d = fabs(got[i] - want[i]);
            if (!(d <= diff)) diff = d;
        }
        if (!(diff / scale <= worst)) worst = diff / scale;
    }
    printf("format %d, %s classifier: largest relative logit error %.2e (tolerance %.0e)\n",
           spec.format, spec.shared_classifier ? "shared" : "unshared", worst, tolerance);
    CHECK(worst <= tolerance);
    CHECK(worst > 0.0 || spec.format != 2); /* Q8_0 activations must have rounded something */

    free(want);
    free(r.key_cache);
    free(r.value_cache);
    l2c_backend_free(cpu);
    l2c_gen_weights_free(&r.w);
    l2c_model_free(model);
    unlink(path);
}

int main(void) {
    const char *dir = check_tmpdir("model");

    /* grouped-query heads of size 8, an FFN width that is no power of two */
    l2c_gen_spec spec = {.dim = 48, .hidden_dim = 96, .n_layers = 2, .n_heads = 6,
                         .n_kv_heads = 2, .vocab_size = 300, .seq_len = 16,
                         .shared_classifier = 1, .group_size = 64, .seed = 11};
    for (int format = 0; format <= 2; format++) {
        for (int shared = 1; shared >= 0; shared--) {
            spec.format = format;
            spec.shared_classifier = shared;
            check_model(dir, spec, format == 2 ? 3e-2 : 1e-5);
        }
    }
    rmdir(dir);
    return check_report("test_model");
}
