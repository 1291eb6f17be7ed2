/*
 * test_prefill.c - the CPU backend's batched prompt path (l2c_backend_prefill) gives the logits
 * that running the same tokens one by one through l2c_backend_forward gives, and leaves the same
 * key/value cache behind: the forward() calls that follow a prefill match those that follow the
 * token-by-token run.
 *
 * Models are generated with random weights in several shapes: multi-head and grouped-query
 * attention, shared and separate classifiers, widths that are not multiples of the kernels' 4
 * rows or 8 lanes, fp32 and Q8_0 with group sizes on and off the vectorised path, and a context
 * longer than one prefill batch (256 tokens). Prompts of 1, 2 and 17 tokens and of the whole
 * context run from position 0, and one prompt continues a context already started.
 *
 * Tolerances: for Q8_0 the batched path quantizes each token's activations and sums the same
 * integers in the same order as the one-token path, so the logits must be equal bit for bit. For
 * fp32 the batched products go through a BLAS that orders the sums its own way; the rounding of
 * sums of at most a few hundred terms is about 1e-6 of their scale, so the largest logit
 * difference must stay below 1e-4 of the largest logit (l2c_logits_diff's relative measure),
 * while a wrong position, mask or cache entry moves logits by a sizeable fraction of it.
 */
#include "check.h"

#include "checkpoint_writer.h"
#include "llama2cl.h"

#define FP32_TOLERANCE 1e-4
#define FOLLOWING_STEPS 5 /* forward() calls compared after each prefill */

typedef struct {
    const char *name;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, shared;
    int format, group_size;
} shape;

static const shape shapes[] = {
    {"mha-legacy-unshared", 64, 172, 2, 8, 8, 301, 64, 0, L2C_GEN_LEGACY, 0},
    {"gqa-v1-shared", 96, 256, 3, 6, 2, 512, 48, 1, L2C_GEN_V1, 0},
    {"mqa-legacy-shared", 48, 100, 2, 4, 1, 263, 40, 1, L2C_GEN_LEGACY, 0},
    {"q8-gqa-gs32", 128, 384, 2, 4, 2, 322, 40, 1, L2C_GEN_V2, 32},
    {"q8-mha-gs16-unshared", 80, 160, 2, 5, 5, 300, 36, 0, L2C_GEN_V2, 64},
    {"long-context", 32, 64, 2, 4, 2, 270, 300, 1, L2C_GEN_LEGACY, 0},
    {"q8-long-context", 64, 128, 1, 4, 4, 270, 300, 1, L2C_GEN_V2, 64},
};

/* deterministic token ids in [0, vocab_size) */
static void make_tokens(int *tokens, int n, int vocab_size, unsigned seed) {
    unsigned long long state = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (int i = 0; i < n; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int)((state >> 33) % (unsigned long long)vocab_size);
    }
}

/* Compares logits; exact for Q8_0, within FP32_TOLERANCE for fp32. */
static void expect_same_logits(const char *what, const float *reference, const float *test, int n,
                               int exact) {
    double max_abs, max_rel;
    l2c_logits_diff(reference, test, n, &max_abs, &max_rel);
    int ok = exact ? memcmp(reference, test, n * sizeof(float)) == 0
                   : max_rel <= FP32_TOLERANCE;
    if (!ok) {
        fprintf(stderr, "%s: logits differ by %.3g (%.3g relative), expected %s\n", what,
                max_abs, max_rel, exact ? "equality" : "at most 1e-4 relative");
        check_failures++;
    }
}

/* Runs tokens[0 .. n_start) one by one on both backends, then tokens[n_start .. n_prompt) one by
 * one on the reference and as one prefill on the other, compares the logits of the last, then
 * feeds both the same FOLLOWING_STEPS tokens and compares each step. */
static void check_prompt(const shape *sh, l2c_model *model, const int *tokens, int n_start,
                         int n_prompt) {
    const l2c_config *c = l2c_model_config(model);
    int exact = c->format == L2C_FORMAT_V2;
    l2c_backend *reference = NULL, *batched = NULL;
    CHECK_OK(l2c_backend_cpu_create(model, &reference));
    CHECK_OK(l2c_backend_cpu_create(model, &batched));
    if (!reference || !batched) {
        l2c_backend_free(reference);
        l2c_backend_free(batched);
        return;
    }
    char what[256];
    float *ref_logits = NULL, *test_logits = NULL;

    /* the context already started, the same way on both */
    for (int pos = 0; pos < n_start; pos++) {
        CHECK_OK(l2c_backend_forward(reference, tokens[pos], pos, &ref_logits));
        CHECK_OK(l2c_backend_forward(batched, tokens[pos], pos, &test_logits));
    }

    /* the prompt: one by one against one batch */
    for (int pos = n_start; pos < n_prompt; pos++) {
        CHECK_OK(l2c_backend_forward(reference, tokens[pos], pos, &ref_logits));
    }
    CHECK_OK(l2c_backend_prefill(batched, tokens + n_start, n_prompt - n_start, n_start,
                                 &test_logits));
    snprintf(what, sizeof what, "%s, prompt %d..%d, last prompt token", sh->name, n_start,
             n_prompt - 1);
    if (ref_logits && test_logits) {
        expect_same_logits(what, ref_logits, test_logits, c->vocab_size, exact);
    }

    /* then decoding reads the cache the prefill wrote */
    for (int pos = n_prompt; pos < n_prompt + FOLLOWING_STEPS && pos < c->seq_len; pos++) {
        int token = tokens[pos];
        CHECK_OK(l2c_backend_forward(reference, token, pos, &ref_logits));
        CHECK_OK(l2c_backend_forward(batched, token, pos, &test_logits));
        snprintf(what, sizeof what, "%s, prompt %d..%d, forward at position %d", sh->name,
                 n_start, n_prompt - 1, pos);
        expect_same_logits(what, ref_logits, test_logits, c->vocab_size, exact);
    }
    l2c_backend_free(reference);
    l2c_backend_free(batched);
}

static void check_shape(const char *dir, const shape *sh) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.bin", dir, sh->name);
    l2c_gen_spec spec = {
        .dim = sh->dim, .hidden_dim = sh->hidden_dim, .n_layers = sh->n_layers,
        .n_heads = sh->n_heads, .n_kv_heads = sh->n_kv_heads, .vocab_size = sh->vocab_size,
        .seq_len = sh->seq_len, .shared_classifier = sh->shared, .format = sh->format,
        .group_size = sh->group_size, .seed = 7,
    };
    if (l2c_gen_write(path, &spec) != 0) {
        fprintf(stderr, "%s: cannot write the model: %s\n", sh->name, l2c_gen_last_error());
        check_failures++;
        return;
    }
    l2c_model *model = NULL;
    CHECK_OK(l2c_model_load(path, &model));
    if (!model) return;
    const l2c_config *c = l2c_model_config(model);
    if (sh->format == L2C_GEN_V2 && sh->group_size == 64 && sh->dim == 80) {
        CHECK_INT(c->group_size, 16); /* off the 32-wide vectorised Q8_0 path */
    }

    int *tokens = malloc(c->seq_len * sizeof(int));
    make_tokens(tokens, c->seq_len, c->vocab_size, (unsigned)sh->dim);
    const int lengths[] = {1, 2, 17};
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        check_prompt(sh, model, tokens, 0, lengths[i]);
    }
    check_prompt(sh, model, tokens, 0, c->seq_len);
    check_prompt(sh, model, tokens, 3, 3 + 17);
    if (c->seq_len > 256) {
        check_prompt(sh, model, tokens, 0, 257); /* one full batch and one token */
    }

    /* a token outside the vocabulary is refused */
    l2c_backend *cpu = NULL;
    CHECK_OK(l2c_backend_cpu_create(model, &cpu));
    if (cpu) {
        int bad[3] = {tokens[0], c->vocab_size, tokens[1]};
        float *logits;
        CHECK_INT(l2c_backend_prefill(cpu, bad, 3, 0, &logits), L2C_ERR_ARG);
        CHECK_INT(l2c_backend_prefill(cpu, tokens, 2, c->seq_len - 1, &logits), L2C_ERR_ARG);
        l2c_backend_free(cpu);
    }
    free(tokens);
    l2c_model_free(model);
    remove(path);
}

int main(void) {
    const char *dir = check_tmpdir("prefill");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        check_shape(dir, &shapes[i]);
    }
    rmdir(dir);
    return check_report("test_prefill");
}
