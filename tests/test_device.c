/*
 * test_device.c - the OpenCL backend computes the CPU reference's logits, position by position up
 * to the full seq_len, on generated checkpoints of awkward shapes and on the real stories260K; its
 * batched prompt path (prefill) gives the logits of running the prompt token by token; fp16
 * weights are rounded as IEEE 754 says; and the engine cache is written, read, and ignored when
 * corrupt.
 *
 * Each comparison feeds both backends the same tokens: at every position the CPU's greedy choice
 * of the previous one. Two things are asserted per position:
 *
 * 1. max |device - cpu| <= tolerance * max |cpu| over the logits. fp32 only (legacy, v1): the
 *    device adds the same products in another order (16-lane partial sums, work-group trees,
 *    CLBlast's blocked dot products), so each sum differs by a few units in the last place of its
 *    terms (fp32 epsilon 6e-8); through the layers, norms and softmax this stays near 1e-6 of the
 *    largest logit (measured worst with PoCL: 6.4e-7 on the generated cases, 1.5e-6 on
 *    stories260K). 1e-4 leaves a margin of about 100 over that, while an indexing or arithmetic
 *    fault (a wrong kv head, a missed pair, a position off by one, a missing residual) moves the
 *    logits by percents to tens of percents.
 *    fp16 weights (--dtype f16): each weight is rounded to 11 significant bits, a relative error
 *    of at most 2^-11 = 4.9e-4, independent from weight to weight, so a product of n terms errs
 *    by about 4.9e-4 / sqrt(3) of the root sum of its terms' squares, and the errors of the
 *    layers add up. Measured worst with PoCL: 7.1e-4 of the largest logit on the generated
 *    cases, 6.9e-4 on stories260K. 5e-3 covers that with a margin of 7, while the faults above
 *    (and a wrong half conversion, which moves a weight by a power of two) err by more.
 *    Q8_0 (v2): both sides quantize the activations to int8 per group as runq.c does. When an
 *    activation lies within fp32 rounding of a .5 step, the two sides can round it to
 *    neighbouring integers; the product then moves by 1/127 of the group's scale, and a key or
 *    value that moved stays in the cache for the later positions. runq.c itself, built once with
 *    -O2 and once with -Ofast (sums reordered, nothing else changed), differs by up to 1.0e-2 of
 *    the largest logit for that reason; the device measured up to 1.2e-2. 3e-2 covers that,
 *    while a wrong scale or group index, or a group left out, errs by tens of percents.
 * 2. The argmax is the same, so that greedy decoding gives the same text. Random weights can put
 *    two logits within the tolerance of each other, where either choice is right: a position is
 *    exempt when the CPU's top two differ by less than 2 * tolerance * max |cpu|. stories260K in
 *    fp32 is a trained model and gets no exemption.
 *
 * Prompts (prefill): the device runs the prompt as batches of up to 128 tokens, with matrix
 * products instead of matrix-vector products (CLBlastSgemm or the own gemm_f32; fp16 and Q8_0
 * weights dequantized to fp32 for them). Its logits for the prompt's last token, and those of the
 * forward() that follows, are compared with the CPU reference run token by token, for prompts of
 * 1, 2, 17 and 128 tokens, one of 150 (two batches) and one that continues a started context;
 * the tolerances are those above, since the batched sums differ from the one-token sums only in
 * their order (for Q8_0: the weights and activations dequantized, so the group sums are exact
 * but scaled before they are added).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "checkpoint_writer.h"
#include "llama2cl.h"
#include "opencl_device.h"

static const char *suite = "test_device";

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int argmax(const float *v, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (v[i] > v[best]) best = i;
    }
    return best;
}

/* The gap between the largest and the second largest value. */
static double top_gap(const float *v, int n) {
    int best = argmax(v, n);
    double second = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (i != best && v[i] > second) second = v[i];
    }
    return v[best] - second;
}

static double max_abs(const float *v, int n) {
    double m = 0.0;
    for (int i = 0; i < n; i++) m = fmax(m, fabs(v[i]));
    return m;
}

/* max |got - want| / max |want| over n values */
static double relative_difference(const float *got, const float *want, int n) {
    double diff = 0.0;
    for (int i = 0; i < n; i++) diff = fmax(diff, fabs((double)got[i] - want[i]));
    return diff / max_abs(want, n);
}

/* Runs both backends in lockstep over every position, recording the tokens fed in tokens
 * (seq_len); returns the worst relative difference. strict: the argmax must agree everywhere. */
static double compare_backends(const char *name, l2c_backend *cpu, l2c_backend *dev,
                               const l2c_config *c, double tolerance, int strict, int *tokens) {
    int token = L2C_TOKEN_BOS;
    double worst = 0.0;
    int exempt = 0;
    int failures_before = check_failures;
    for (int pos = 0; pos < c->seq_len && check_failures - failures_before < 5; pos++) {
        float *want, *got;
        tokens[pos] = token;
        l2c_status s_cpu = l2c_backend_forward(cpu, token, pos, &want);
        CHECK_OK(s_cpu);
        l2c_status s_dev = l2c_backend_forward(dev, token, pos, &got);
        CHECK_OK(s_dev);
        if (s_cpu != L2C_OK || s_dev != L2C_OK) break;

        /* logits within tolerance of the largest */
        double relative = relative_difference(got, want, c->vocab_size);
        worst = fmax(worst, relative);
        if (!(relative <= tolerance)) {
            fprintf(stderr, "%s: position %d: max |device - cpu| is %g of max |logit|\n", name,
                    pos, relative);
            check_failures++;
        }

        /* the same greedy choice */
        int want_token = argmax(want, c->vocab_size);
        int got_token = argmax(got, c->vocab_size);
        if (got_token != want_token) {
            double gap = top_gap(want, c->vocab_size);
            if (!strict && gap < 2 * tolerance * max_abs(want, c->vocab_size)) {
                exempt++;
            } else {
                fprintf(stderr, "%s: position %d: device picks token %d, cpu %d\n", name, pos,
                        got_token, want_token);
                check_failures++;
            }
        }
        token = want_token;
    }
    printf("  %-28s worst relative difference %.2e over %d positions%s\n", name, worst,
           c->seq_len, exempt ? " (some near-ties exempt)" : "");
    return worst;
}

/* After compare_backends: the device's prefill of the first half of the same tokens gives the
 * CPU's logits for the last of them, and leaves the caches so that the next position's forward
 * does too. The CPU recomputes those two positions over its caches, which hold the same tokens. */
static void check_prefill(const char *name, l2c_backend *cpu, l2c_backend *dev,
                          const l2c_config *c, double tolerance, const int *tokens) {
    int n = c->seq_len / 2;
    float *want, *got;
    CHECK_OK(l2c_backend_prefill(dev, tokens, n, 0, &got));
    CHECK_OK(l2c_backend_forward(cpu, tokens[n - 1], n - 1, &want));
    double prefilled = relative_difference(got, want, c->vocab_size);
    CHECK_OK(l2c_backend_forward(dev, tokens[n], n, &got));
    CHECK_OK(l2c_backend_forward(cpu, tokens[n], n, &want));
    double next = relative_difference(got, want, c->vocab_size);
    if (!(prefilled <= tolerance && next <= tolerance)) {
        fprintf(stderr, "%s: prefill of %d tokens: relative difference %g, then %g at position "
                "%d\n", name, n, prefilled, next, n);
        check_failures++;
    }
}

/* The default options with another matrix-vector engine, weight type and buffer limit. */
static l2c_opencl_options options_of(l2c_gemv_engine gemv, size_t max_alloc) {
    l2c_opencl_options options;
    l2c_opencl_options_default(&options);
    options.gemv = gemv;
    options.max_alloc_override = max_alloc;
    return options;
}

static l2c_opencl_options f16_options(l2c_gemv_engine gemv) {
    l2c_opencl_options options = options_of(gemv, 0);
    options.dtype = L2C_DTYPE_F16;
    return options;
}

/* A generated checkpoint compared over its full seq_len. gemv, when not NULL, names the engines
 * forced after creation ("rows", "wg" or "clblast" for one token, with "own" or "clblast" for
 * batches after a slash: "rows/own"). Returns the device description through description when
 * asked; with profile_path, the device collects a profile and writes its report there. */
static void check_generated(const char *name, const char *dir, l2c_gen_spec spec,
                            l2c_opencl_options options, const char *engines, double tolerance,
                            char *description, const char *profile_path) {
    double start = now();
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    if (l2c_gen_write(path, &spec) != 0) {
        fprintf(stderr, "%s: writing %s failed: %s\n", name, path, l2c_gen_last_error());
        check_failures++;
        return;
    }
    l2c_model *model = NULL;
    l2c_backend *cpu = NULL, *dev = NULL;
    CHECK_OK(l2c_model_load(path, &model));
    if (model) CHECK_OK(l2c_backend_cpu_create(model, &cpu));
    options.profile = profile_path != NULL;
    if (cpu) CHECK_OK(l2c_backend_opencl_create(model, &options, &dev));
    if (dev && engines) {
        char gemv[32], gemm[32] = "";
        sscanf(engines, "%31[^/]/%31s", gemv, gemm);
        CHECK_OK(l2c_cl_force_engines(dev, gemv, gemm[0] ? gemm : NULL));
        char want[80];
        snprintf(want, sizeof want, "gemv %s", gemv);
        CHECK(strstr(l2c_backend_describe(dev), want) != NULL);
    }
    if (dev) {
        if (description) snprintf(description, 256, "%s", l2c_backend_describe(dev));
        const l2c_config *c = l2c_model_config(model);
        int *tokens = calloc((size_t)c->seq_len, sizeof *tokens);
        compare_backends(name, cpu, dev, c, tolerance, 0, tokens);
        if (profile_path) {
            FILE *out = fopen(profile_path, "w");
            l2c_backend_report(dev, out);
            fclose(out);
        }
        check_prefill(name, cpu, dev, c, tolerance, tokens);
        free(tokens);
    }
    l2c_backend_free(dev);
    l2c_backend_free(cpu);
    l2c_model_free(model);
    printf("  %-28s %.1f s\n", "", now() - start);
}

/* A spec with the fields every case shares. */
static l2c_gen_spec spec_of(int dim, int hidden_dim, int n_layers, int n_heads, int n_kv_heads,
                            int vocab_size, int seq_len, int shared, int format) {
    l2c_gen_spec spec = {0};
    spec.dim = dim;
    spec.hidden_dim = hidden_dim;
    spec.n_layers = n_layers;
    spec.n_heads = n_heads;
    spec.n_kv_heads = n_kv_heads;
    spec.vocab_size = vocab_size;
    spec.seq_len = seq_len;
    spec.shared_classifier = shared;
    spec.format = format;
    spec.group_size = 32;
    spec.seed = 1234 + (unsigned long long)dim * 7 + (unsigned long long)hidden_dim;
    return spec;
}

/* Bytes of all weights of an fp32 spec, as the device holds them (a shared classifier once). */
static size_t fp32_weight_bytes(const l2c_gen_spec *s) {
    size_t dim = s->dim, hidden = s->hidden_dim, kv_dim = dim / s->n_heads * s->n_kv_heads;
    size_t per_layer = 2 * dim + 2 * dim * dim + 2 * kv_dim * dim + 3 * hidden * dim;
    size_t tables = (s->shared_classifier ? 1 : 2) * (size_t)s->vocab_size * dim;
    return (tables + s->n_layers * per_layer + dim) * sizeof(float);
}

/* ------------------------------------------------------------------------------------------------
 * fp16 conversion
 */

/* l2c_float_to_half against values worked out by hand from IEEE 754 binary16: 1 sign bit, 5
 * exponent bits (bias 15), 10 mantissa bits; rounding to nearest, ties to the even mantissa. */
static void check_half_conversion(void) {
    /* exact values */
    CHECK_INT(l2c_float_to_half(0.0f), 0x0000);
    CHECK_INT(l2c_float_to_half(-0.0f), 0x8000);
    CHECK_INT(l2c_float_to_half(1.0f), 0x3c00);
    CHECK_INT(l2c_float_to_half(-2.0f), 0xc000);
    CHECK_INT(l2c_float_to_half(65504.0f), 0x7bff);              /* the largest finite half */
    CHECK_INT(l2c_float_to_half(ldexpf(1.0f, -14)), 0x0400);     /* the smallest normal */
    CHECK_INT(l2c_float_to_half(ldexpf(1.0f, -24)), 0x0001);     /* the smallest subnormal */
    CHECK_INT(l2c_float_to_half(ldexpf(1023.0f, -24)), 0x03ff);  /* the largest subnormal */

    /* rounding of normal values: 1 + 2^-11 is halfway between 1 and 1 + 2^-10 (even: 1);
     * 1 + 3 * 2^-11 is halfway between mantissas 1 and 2 (even: 2); just above halfway rounds up;
     * 0.1 is 0x2e66 (mantissa 0x266.66... rounds down) */
    CHECK_INT(l2c_float_to_half(1.0f + ldexpf(1.0f, -11)), 0x3c00);
    CHECK_INT(l2c_float_to_half(1.0f + ldexpf(3.0f, -11)), 0x3c02);
    CHECK_INT(l2c_float_to_half(1.0f + ldexpf(1.0f, -11) + ldexpf(1.0f, -20)), 0x3c01);
    CHECK_INT(l2c_float_to_half(0.1f), 0x2e66);
    CHECK_INT(l2c_float_to_half(-0.1f), 0xae66);

    /* rounding into subnormals: 2^-25 is half a unit (even: 0), 1.5 * 2^-25 rounds up to 1 unit,
     * 3 * 2^-25 is 1.5 units (even: 2), and 1023.5 units round up to the smallest normal */
    CHECK_INT(l2c_float_to_half(ldexpf(1.0f, -25)), 0x0000);
    CHECK_INT(l2c_float_to_half(ldexpf(1.5f, -25)), 0x0001);
    CHECK_INT(l2c_float_to_half(ldexpf(3.0f, -25)), 0x0002);
    CHECK_INT(l2c_float_to_half(ldexpf(2047.0f, -25)), 0x0400);
    CHECK_INT(l2c_float_to_half(-ldexpf(1.0f, -30)), 0x8000);

    /* overflow: 65519 rounds down to 65504; 65520 is halfway to 65536 and the even choice has
     * no finite half, so infinity; infinities stay, NaN stays NaN */
    CHECK_INT(l2c_float_to_half(65519.0f), 0x7bff);
    CHECK_INT(l2c_float_to_half(65520.0f), 0x7c00);
    CHECK_INT(l2c_float_to_half(-1e9f), 0xfc00);
    CHECK_INT(l2c_float_to_half(INFINITY), 0x7c00);
    uint16_t nan = l2c_float_to_half(NAN);
    CHECK((nan & 0x7c00) == 0x7c00 && (nan & 0x03ff) != 0);
}

/* ------------------------------------------------------------------------------------------------
 * prompts
 */

/* The device's prefill of tokens[pos0 .. pos0 + n) after forward() over tokens[0 .. pos0), then
 * one forward() at pos0 + n, against the CPU run token by token; returns the worse relative
 * difference of the two. */
static double prefill_difference(l2c_backend *cpu, l2c_backend *dev, const l2c_config *c,
                                 const int *tokens, int pos0, int n) {
    float *want = NULL, *got = NULL;
    double worst = 0.0;
    for (int pos = 0; pos < pos0; pos++) {
        CHECK_OK(l2c_backend_forward(dev, tokens[pos], pos, &got));
    }
    for (int pos = 0; pos < pos0 + n; pos++) {
        CHECK_OK(l2c_backend_forward(cpu, tokens[pos], pos, &want));
    }
    l2c_status s = l2c_backend_prefill(dev, tokens + pos0, n, pos0, &got);
    CHECK_OK(s);
    if (s != L2C_OK || !want) return INFINITY;
    worst = relative_difference(got, want, c->vocab_size);
    CHECK_OK(l2c_backend_forward(cpu, tokens[pos0 + n], pos0 + n, &want));
    s = l2c_backend_forward(dev, tokens[pos0 + n], pos0 + n, &got);
    CHECK_OK(s);
    if (s != L2C_OK) return INFINITY;
    return fmax(worst, relative_difference(got, want, c->vocab_size));
}

/* Prompts of 1, 2, 17, 128 and 150 tokens from position 0, and 17 tokens from position 5, on a
 * model with a context of 160 (so 150 takes two batches); the same backend serves every prompt,
 * since each overwrites the cache rows it attends to. engines as check_generated's. */
static void check_prompts(const char *name, const char *dir, l2c_gen_spec spec,
                          l2c_opencl_options options, const char *engines, double tolerance) {
    double start = now();
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.bin", dir, name);
    if (l2c_gen_write(path, &spec) != 0) {
        fprintf(stderr, "%s: writing %s failed: %s\n", name, path, l2c_gen_last_error());
        check_failures++;
        return;
    }
    l2c_model *model = NULL;
    l2c_backend *cpu = NULL, *dev = NULL;
    CHECK_OK(l2c_model_load(path, &model));
    if (model) CHECK_OK(l2c_backend_cpu_create(model, &cpu));
    if (cpu) CHECK_OK(l2c_backend_opencl_create(model, &options, &dev));
    if (dev && engines) {
        char gemv[32], gemm[32];
        CHECK_INT(sscanf(engines, "%31[^/]/%31s", gemv, gemm), 2);
        CHECK_OK(l2c_cl_force_engines(dev, gemv, gemm));
        char want[80];
        snprintf(want, sizeof want, "gemm %s", gemm);
        CHECK(strstr(l2c_backend_describe(dev), want) != NULL);
    }
    if (dev) {
        const l2c_config *c = l2c_model_config(model);
        int tokens[160];
        unsigned long long state = 99;
        for (int i = 0; i < c->seq_len; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            tokens[i] = (int)((state >> 33) % (unsigned long long)c->vocab_size);
        }
        const int starts[] = {0, 0, 0, 0, 0, 5};
        const int lengths[] = {1, 2, 17, 128, 150, 17};
        double worst = 0.0;
        for (int i = 0; i < 6; i++) {
            double d = prefill_difference(cpu, dev, c, tokens, starts[i], lengths[i]);
            worst = fmax(worst, d);
            if (!(d <= tolerance)) {
                fprintf(stderr, "%s: prompt of %d tokens from position %d: relative difference "
                        "%g\n", name, lengths[i], starts[i], d);
                check_failures++;
            }
        }
        printf("  %-28s worst relative difference %.2e over 6 prompts\n", name, worst);

        /* a token outside the vocabulary, or a prompt past the context, is refused */
        float *logits;
        int bad[3] = {tokens[0], c->vocab_size, tokens[1]};
        CHECK_INT(l2c_backend_prefill(dev, bad, 3, 0, &logits), L2C_ERR_ARG);
        CHECK_INT(l2c_backend_prefill(dev, tokens, 2, c->seq_len - 1, &logits), L2C_ERR_ARG);
    }
    l2c_backend_free(dev);
    l2c_backend_free(cpu);
    l2c_model_free(model);
    printf("  %-28s %.1f s\n", "", now() - start);
}

/* ------------------------------------------------------------------------------------------------
 * engine cache
 */

/* The description of an OpenCL backend created on path with the automatic engine choice; "" when
 * creation failed. */
static void describe_auto(const char *path, char *description, size_t size) {
    description[0] = '\0';
    l2c_model *model = NULL;
    l2c_backend *dev = NULL;
    CHECK_OK(l2c_model_load(path, &model));
    l2c_opencl_options options = options_of(L2C_GEMV_AUTO, 0);
    if (model) CHECK_OK(l2c_backend_opencl_create(model, &options, &dev));
    if (dev) snprintf(description, size, "%s", l2c_backend_describe(dev));
    l2c_backend_free(dev);
    l2c_model_free(model);
}

static void write_text(const char *path, const char *text) {
    FILE *out = fopen(path, "w");
    CHECK(out != NULL);
    if (!out) return;
    fputs(text, out);
    fclose(out);
}

/* The automatic choice times each product once (5 matrix-vector shapes, 4 batched ones), writes
 * the cache file, and later creations take every choice from it; choices edited in the file are
 * used as they are; a corrupt file is ignored with a notice in the description and rewritten. */
static void check_engine_cache(const char *model_path, const char *cache_dir) {
    char cache_path[4400], description[256];
    snprintf(cache_path, sizeof cache_path, "%s/gemv.txt", cache_dir);
    remove(cache_path);

    /* first creation: everything timed, then written */
    describe_auto(model_path, description, sizeof description);
    CHECK(strstr(description, "(auto: 9 timed, 0 from cache)") != NULL);
    char *text = check_read_file(cache_path, NULL);
    CHECK(text != NULL);
    if (!text) return;
    CHECK(strncmp(text, "# llama2cl engine cache 1\n", 26) == 0);
    int entries = 0;
    for (const char *line = strchr(text, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        if (line[1] != '#') entries++;
    }
    CHECK_INT(entries, 9);
    CHECK(strstr(text, "\tgemv\tf32\t84\t60\t1\t") != NULL);   /* q | k | v: 60 + 2 * 12 rows */
    CHECK(strstr(text, "\tgemm\tf32\t346\t60\t40\t") != NULL); /* w1 | w3, a batch of 40 */
    CHECK(strstr(text, "\tgemv\tf32\t91\t60\t1\t") != NULL);   /* the classifier */

    /* second creation: nothing timed */
    describe_auto(model_path, description, sizeof description);
    CHECK(strstr(description, "(auto: 0 timed, 9 from cache)") != NULL);

    /* every choice edited to the work-group kernel and CLBlast's batched product: used as is */
    size_t size = strlen(text) + 64;
    char *edited = malloc(size * 2);
    char *out = edited;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (line[0] == '#') {
            out += sprintf(out, "%s\n", line);
            continue;
        }
        /* fields up to the engine, then the new engine */
        char *field = line;
        for (int i = 0; i < 6 && field; i++) {
            field = strchr(field, '\t');
            if (field) field++;
        }
        if (!field) continue;
        int gemm = strstr(line, "\tgemm\t") != NULL;
        out += sprintf(out, "%.*s%s\n", (int)(field - line), line, gemm ? "clblast" : "wg");
    }
    write_text(cache_path, edited);
    describe_auto(model_path, description, sizeof description);
    CHECK(strstr(description, "gemv wg, gemm clblast (auto") != NULL);
    CHECK(strstr(description, "(auto: 0 timed, 9 from cache)") != NULL);
    free(edited);
    free(text);

    /* a file of something else: ignored, named in the notice, timed again and rewritten */
    write_text(cache_path, "<html>not a cache</html>\n");
    describe_auto(model_path, description, sizeof description);
    CHECK(strstr(description, "9 timed, 0 from cache; corrupt gemv.txt ignored (line 1)") !=
          NULL);
    text = check_read_file(cache_path, NULL);
    CHECK(text && strncmp(text, "# llama2cl engine cache 1\n", 26) == 0);
    CHECK(text && strstr(text, "\tgemv\tf32\t84\t60\t1\t") != NULL);

    /* a bad engine name on line 3: the whole file is ignored */
    if (text) {
        char *third = strchr(strchr(text, '\n') + 1, '\n') + 1;
        char *engine = third;
        for (int i = 0; i < 6; i++) engine = strchr(engine, '\t') + 1;
        memcpy(engine, "zz", 2);
        write_text(cache_path, text);
    }
    free(text);
    describe_auto(model_path, description, sizeof description);
    CHECK(strstr(description, "9 timed, 0 from cache; corrupt gemv.txt ignored (line 3)") !=
          NULL);
    printf("  %-28s the cache is written, read, edited and ignored when corrupt\n",
           "engine cache");
}

int main(void) {
    /* fp16 rounding needs no device */
    check_half_conversion();

    /* skip only when there is no device at all */
    FILE *devnull = fopen("/dev/null", "w");
    l2c_status listed = l2c_opencl_list_devices(devnull);
    fclose(devnull);
    if (listed == L2C_ERR_NO_DEVICE) return check_skip(suite, l2c_last_error());
    CHECK_OK(listed);
    const char *dir = check_tmpdir(suite);
    double fp32_tolerance = 1e-4;
    double f16_tolerance = 5e-3;
    double q8_tolerance = 3e-2;

    /* the engine cache goes into this test's folder, never the user's */
    char cache_dir[4200];
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", dir);
    setenv("LLAMA2CL_CACHE_DIR", cache_dir, 1);

    /* grouped-query attention (4 query heads per kv head), hidden_dim 97, legacy, shared; the
     * own fp32 kernel with a work-group per row */
    check_generated("gqa_legacy_shared_own", dir,
                    spec_of(64, 97, 2, 8, 2, 67, 48, 1, L2C_GEN_LEGACY),
                    options_of(L2C_GEMV_OWN, 0), "wg", fp32_tolerance, NULL, NULL);

    /* multi-query attention, head_size 12, hidden_dim 173, version 1, own classifier; the
     * automatic engine choice (which times every engine, CLBlast's included) */
    l2c_gen_spec mqa = spec_of(60, 173, 2, 5, 1, 91, 40, 0, L2C_GEN_V1);
    check_generated("mqa_v1_unshared_auto", dir, mqa, options_of(L2C_GEMV_AUTO, 0), NULL,
                    fp32_tolerance, NULL, NULL);

    /* six heads of 10, three kv heads, legacy with its own classifier; the own fp32 kernel with
     * a work-item per row; profiled, so the report counts its 33 tokens, 2 rmsnorms per layer
     * plus the final one, and one product per layer for q | k | v and for w1 | w3 (the gate
     * fused into it, so no separate swiglu) */
    char profile_path[4200];
    snprintf(profile_path, sizeof profile_path, "%s/profile.txt", dir);
    check_generated("heads_of_10_legacy_unshared", dir,
                    spec_of(60, 97, 3, 6, 3, 53, 33, 0, L2C_GEN_LEGACY),
                    options_of(L2C_GEMV_OWN, 0), "rows/own", fp32_tolerance, NULL,
                    profile_path);
    char *report = check_read_file(profile_path, NULL);
    CHECK(report && strstr(report, "profile of 33 token(s)"));
    const char *rmsnorm = report ? strstr(report, "  rmsnorm ") : NULL;
    CHECK(rmsnorm && atof(rmsnorm + strlen("  rmsnorm ")) == 7.0);
    const char *qkv = report ? strstr(report, "  gemv q k v ") : NULL;
    CHECK(qkv && atof(qkv + strlen("  gemv q k v ")) == 3.0);
    const char *w13 = report ? strstr(report, "  gemv w1 w3 ") : NULL;
    CHECK(w13 && atof(w13 + strlen("  gemv w1 w3 ")) == 3.0);
    CHECK(report && !strstr(report, "swiglu"));
    CHECK(report && strstr(report, "gemv classifier") && strstr(report, "attention"));
    const char *total = report ? strstr(report, "  total ") : NULL;
    CHECK(total && atof(total + strlen("  total ")) > 0.0);
    free(report);

    /* weight buffers of 96 KiB: the largest matrix (w1 | w3, 346 x 60 fp32, 83040 bytes) fits
     * alone, so the weights spread over at least total / 96 KiB buffers, and the logits do not
     * change; CLBlast */
    char description[256] = "";
    size_t small = 96 * 1024;
    check_generated("split_buffers_v1", dir, mqa, options_of(L2C_GEMV_CLBLAST, small),
                    "clblast", fp32_tolerance, description, NULL);
    int n_buffers = 0;
    const char *at = strstr(description, "weights in ");
    if (at) n_buffers = atoi(at + strlen("weights in "));
    size_t at_least = (fp32_weight_bytes(&mqa) + small - 1) / small;
    if (!(n_buffers > 1 && (size_t)n_buffers >= at_least)) {
        fprintf(stderr, "split_buffers_v1: \"%s\": expected at least %zu weight buffers\n",
                description, at_least);
        check_failures++;
    }

    /* a buffer limit below the token table (91 x 60 fp32 = 21840 bytes) is refused by name */
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/mqa_v1_unshared_auto.bin", dir);
        l2c_model *model = NULL;
        l2c_backend *dev = NULL;
        CHECK_OK(l2c_model_load(path, &model));
        l2c_opencl_options options;
        l2c_opencl_options_default(&options);
        options.max_alloc_override = 20000;
        if (model) {
            CHECK_INT(l2c_backend_opencl_create(model, &options, &dev), L2C_ERR_UNSUPPORTED);
            CHECK(dev == NULL);
            CHECK(strstr(l2c_last_error(), "token_embedding_table") != NULL);
            CHECK(strstr(l2c_last_error(), "21840 bytes") != NULL);
            CHECK(strstr(l2c_last_error(), "20000 bytes") != NULL);
        }
        l2c_backend_free(dev);
        l2c_model_free(model);
    }

    /* a device index past the last: no device, with the hint */
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/gqa_legacy_shared_own.bin", dir);
        l2c_model *model = NULL;
        l2c_backend *dev = NULL;
        CHECK_OK(l2c_model_load(path, &model));
        l2c_opencl_options options;
        l2c_opencl_options_default(&options);
        options.device = 999;
        if (model) {
            CHECK_INT(l2c_backend_opencl_create(model, &options, &dev), L2C_ERR_NO_DEVICE);
            CHECK(dev == NULL);
            CHECK(strstr(l2c_last_error(), "999") != NULL);
            CHECK(strstr(l2c_last_error(), "--cpu") != NULL);
        }
        l2c_model_free(model);
    }

    /* the engine cache, on the multi-query model */
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/mqa_v1_unshared_auto.bin", dir);
        check_engine_cache(path, cache_dir);
    }

    /* fp16 weights: grouped-query with its own classifier, both own kernels; fp16 asks for a
     * version-1 or legacy file */
    check_generated("f16_gqa_v1_unshared_rows", dir,
                    spec_of(64, 97, 2, 8, 2, 67, 48, 0, L2C_GEN_V1), f16_options(L2C_GEMV_OWN),
                    "rows", f16_tolerance, NULL, NULL);
    check_generated("f16_heads_of_10_wg", dir,
                    spec_of(60, 97, 3, 6, 3, 53, 33, 1, L2C_GEN_LEGACY),
                    f16_options(L2C_GEMV_OWN), "wg", f16_tolerance, NULL, NULL);

    /* Q8_0 weights (version 2, group size 32): grouped-query, head_size 16, own classifier; and
     * multi-query, head_size 10, group size 16 (32 halved to divide dim 80), the classifier
     * shared with the token table; one work-item and one work-group per row. */
    check_generated("q8_v2_unshared_rows", dir, spec_of(96, 224, 2, 6, 2, 75, 40, 0, L2C_GEN_V2),
                    options_of(L2C_GEMV_OWN, 0), "rows", q8_tolerance, NULL, NULL);
    check_generated("q8_v2_mqa_shared_wg", dir, spec_of(80, 160, 2, 8, 1, 59, 40, 1, L2C_GEN_V2),
                    options_of(L2C_GEMV_OWN, 0), "wg", q8_tolerance, NULL, NULL);
    {
        char path[4200];
        snprintf(path, sizeof path, "%s/q8_v2_unshared_rows.bin", dir);
        l2c_model *model = NULL;
        l2c_backend *dev = NULL;
        CHECK_OK(l2c_model_load(path, &model));
        l2c_opencl_options options = f16_options(L2C_GEMV_AUTO);
        if (model) {
            CHECK_INT(l2c_backend_opencl_create(model, &options, &dev), L2C_ERR_UNSUPPORTED);
            CHECK(strstr(l2c_last_error(), "Q8_0") != NULL);
        }
        l2c_model_free(model);
    }

    /* prompts as batches: fp32 by both batched engines (grouped-query, head_size 8, hidden_dim
     * 97, so the product's 8-wide chunks leave a tail), fp16 and Q8_0 by both (their weights
     * dequantized for either); the fp16 model has heads of 10 (attention's scalar path) and a
     * w2 of 60 x 97 values (the dequantization's tail) */
    l2c_gen_spec prompt_spec = spec_of(64, 97, 2, 8, 2, 67, 160, 1, L2C_GEN_LEGACY);
    l2c_gen_spec prompt_f16_spec = spec_of(60, 97, 2, 6, 2, 67, 160, 1, L2C_GEN_LEGACY);
    l2c_gen_spec prompt_q8_spec = spec_of(64, 128, 2, 8, 2, 67, 160, 0, L2C_GEN_V2);
    check_prompts("prompts_fp32_own", dir, prompt_spec, options_of(L2C_GEMV_OWN, 0), "rows/own",
                  fp32_tolerance);
    check_prompts("prompts_fp32_clblast", dir, prompt_spec, options_of(L2C_GEMV_OWN, 0),
                  "clblast/clblast", fp32_tolerance);
    check_prompts("prompts_f16_own", dir, prompt_f16_spec, f16_options(L2C_GEMV_OWN),
                  "rows/own", f16_tolerance);
    check_prompts("prompts_f16_clblast", dir, prompt_f16_spec, f16_options(L2C_GEMV_OWN),
                  "wg/clblast", f16_tolerance);
    check_prompts("prompts_q8_own", dir, prompt_q8_spec, options_of(L2C_GEMV_OWN, 0), "rows/own",
                  q8_tolerance);
    check_prompts("prompts_q8_clblast", dir, prompt_q8_spec, options_of(L2C_GEMV_OWN, 0),
                  "wg/clblast", q8_tolerance);

    /* the real stories260K over its whole context of 512: fp32 with no argmax exemption, and
     * fp16 */
    const char *path = check_model_path("stories260K.bin");
    if (!path) {
        printf("  stories260K.bin not found: its cases are skipped\n");
    } else {
        double start = now();
        l2c_model *model = NULL;
        l2c_backend *cpu = NULL, *dev = NULL, *dev16 = NULL;
        CHECK_OK(l2c_model_load(path, &model));
        if (model) CHECK_OK(l2c_backend_cpu_create(model, &cpu));
        l2c_opencl_options options;
        l2c_opencl_options_default(&options);
        if (cpu) CHECK_OK(l2c_backend_opencl_create(model, &options, &dev));
        if (dev) {
            CHECK_INT(l2c_model_config(model)->seq_len, 512);
            int tokens[512];
            compare_backends("stories260K", cpu, dev, l2c_model_config(model), fp32_tolerance,
                             1, tokens);
        }
        options.dtype = L2C_DTYPE_F16;
        if (cpu) CHECK_OK(l2c_backend_opencl_create(model, &options, &dev16));
        if (dev16) {
            int tokens[512];
            compare_backends("stories260K_f16", cpu, dev16, l2c_model_config(model),
                             f16_tolerance, 0, tokens);
        }
        l2c_backend_free(dev16);
        l2c_backend_free(dev);
        l2c_backend_free(cpu);
        l2c_model_free(model);
        printf("  %-28s %.1f s\n", "", now() - start);
    }

    return check_report(suite);
}
