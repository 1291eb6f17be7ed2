/*
 * l2c-gen - writes a llama2.c checkpoint of a known shape with deterministic random weights, and
 * optionally a matching tokenizer.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint_writer.h"

/* ------------------------------------------------------------------------------------------------
 * shapes of the models llama2.c runs
 */

typedef struct {
    const char *name;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_classifier;
} shape;

static const shape shapes[] = {
    {"stories260K", 64, 172, 5, 8, 4, 512, 512, 1},
    {"stories15M", 288, 768, 6, 6, 6, 32000, 256, 1},
    {"stories42M", 512, 1376, 8, 8, 8, 32000, 1024, 1},
    {"stories110M", 768, 2048, 12, 12, 12, 32000, 1024, 1},
    {"llama2-7b", 4096, 11008, 32, 32, 32, 32000, 2048, 0},
};

static void usage(FILE *out) {
    fprintf(out,
        "usage: l2c-gen [options] -o OUT\n"
        "writes a llama2.c checkpoint with deterministic random weights\n"
        "  --shape NAME        stories260K (default), stories15M, stories42M, stories110M,\n"
        "                      llama2-7b (unshared classifier)\n"
        "  --dim N             transformer width          (these override the shape's values)\n"
        "  --hidden-dim N      feed-forward width\n"
        "  --layers N          number of layers\n"
        "  --heads N           query heads (head size dim / heads must be even)\n"
        "  --kv-heads N        key/value heads, a divisor of heads\n"
        "  --vocab N           vocabulary size\n"
        "  --seq-len N         longest context\n"
        "  --unshared          the classifier is a matrix of its own (llama2-7b's default)\n"
        "  --shared            the classifier is the token table (the stories shapes' default)\n"
        "  --format F          legacy (default, run.c), v1 (fp32, ak42 header), v2 (Q8_0, runq.c)\n"
        "  --group-size N      Q8_0 group size for v2, halved until it divides dim (default 64)\n"
        "  --seed N            weights' seed (default 1)\n"
        "  --tokenizer PATH    also write a tokenizer for the vocabulary (vocab >= %d)\n"
        "  -o OUT              the checkpoint file\n"
        "  -h, --help          this text\n",
        L2C_GEN_TOKENIZER_MIN_VOCAB);
}

/* ------------------------------------------------------------------------------------------------
 * flags
 */

/* a positive int, else a one-line error naming the flag and exit 1 */
static int parse_positive(const char *flag, const char *text) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < 1 || v > INT_MAX) {
        fprintf(stderr, "l2c-gen: %s: expected a positive integer, got '%s'\n", flag, text);
        exit(1);
    }
    return (int)v;
}

static unsigned long long parse_seed(const char *text) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 0);
    if (end == text || *end != '\0' || errno != 0 || strchr(text, '-')) {
        fprintf(stderr, "l2c-gen: --seed: expected a non-negative integer, got '%s'\n", text);
        exit(1);
    }
    return v;
}

static int takes_value(const char *flag) {
    static const char *flags[] = {
        "--shape", "--dim", "--hidden-dim", "--layers", "--heads", "--kv-heads", "--vocab",
        "--seq-len", "--format", "--group-size", "--seed", "--tokenizer", "-o",
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (!strcmp(flag, flags[i])) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    /* flags; -1 marks a shape value not overridden */
    const char *shape_name = "stories260K", *out = NULL, *tokenizer = NULL;
    int dim = -1, hidden_dim = -1, n_layers = -1, n_heads = -1, n_kv_heads = -1;
    int vocab_size = -1, seq_len = -1, shared = -1, format = L2C_GEN_LEGACY, group_size = 64;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(flag, "--unshared")) {
            shared = 0;
            continue;
        }
        if (!strcmp(flag, "--shared")) {
            shared = 1;
            continue;
        }

        /* the flags with a value */
        if (!takes_value(flag)) {
            fprintf(stderr, "l2c-gen: unknown argument '%s' (see --help)\n", flag);
            return 1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "l2c-gen: %s needs a value\n", flag);
            return 1;
        }
        const char *value = argv[++i];
        if (!strcmp(flag, "--shape")) shape_name = value;
        else if (!strcmp(flag, "--dim")) dim = parse_positive(flag, value);
        else if (!strcmp(flag, "--hidden-dim")) hidden_dim = parse_positive(flag, value);
        else if (!strcmp(flag, "--layers")) n_layers = parse_positive(flag, value);
        else if (!strcmp(flag, "--heads")) n_heads = parse_positive(flag, value);
        else if (!strcmp(flag, "--kv-heads")) n_kv_heads = parse_positive(flag, value);
        else if (!strcmp(flag, "--vocab")) vocab_size = parse_positive(flag, value);
        else if (!strcmp(flag, "--seq-len")) seq_len = parse_positive(flag, value);
        else if (!strcmp(flag, "--group-size")) group_size = parse_positive(flag, value);
        else if (!strcmp(flag, "--seed")) seed = parse_seed(value);
        else if (!strcmp(flag, "--tokenizer")) tokenizer = value;
        else if (!strcmp(flag, "-o")) out = value;
        else if (!strcmp(flag, "--format")) {
            if (!strcmp(value, "legacy")) format = L2C_GEN_LEGACY;
            else if (!strcmp(value, "v1")) format = L2C_GEN_V1;
            else if (!strcmp(value, "v2")) format = L2C_GEN_V2;
            else {
                fprintf(stderr, "l2c-gen: --format: expected legacy, v1 or v2, got '%s'\n", value);
                return 1;
            }
        }
    }
    if (!out) {
        fprintf(stderr, "l2c-gen: -o OUT is required (see --help)\n");
        return 1;
    }

    /* the shape, then the explicit values over it */
    const shape *base = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (!strcmp(shapes[i].name, shape_name)) base = &shapes[i];
    }
    if (!base) {
        fprintf(stderr, "l2c-gen: --shape: unknown shape '%s' (stories260K, stories15M, "
                "stories42M, stories110M, llama2-7b)\n", shape_name);
        return 1;
    }
    l2c_gen_spec spec = {
        .dim = dim > 0 ? dim : base->dim,
        .hidden_dim = hidden_dim > 0 ? hidden_dim : base->hidden_dim,
        .n_layers = n_layers > 0 ? n_layers : base->n_layers,
        .n_heads = n_heads > 0 ? n_heads : base->n_heads,
        .n_kv_heads = n_kv_heads > 0 ? n_kv_heads : base->n_kv_heads,
        .vocab_size = vocab_size > 0 ? vocab_size : base->vocab_size,
        .seq_len = seq_len > 0 ? seq_len : base->seq_len,
        .shared_classifier = shared >= 0 ? shared : base->shared_classifier,
        .format = format,
        .group_size = group_size,
        .seed = seed,
    };

    /* the shapes must fit together; name the flags involved */
    if (spec.dim % spec.n_heads != 0) {
        fprintf(stderr, "l2c-gen: --heads %d does not divide --dim %d\n", spec.n_heads, spec.dim);
        return 1;
    }
    if (spec.dim / spec.n_heads % 2 != 0) {
        fprintf(stderr, "l2c-gen: --dim %d / --heads %d gives an odd head size %d (must be even)\n",
                spec.dim, spec.n_heads, spec.dim / spec.n_heads);
        return 1;
    }
    if (spec.n_heads % spec.n_kv_heads != 0) {
        fprintf(stderr, "l2c-gen: --kv-heads %d does not divide --heads %d\n", spec.n_kv_heads,
                spec.n_heads);
        return 1;
    }
    if (tokenizer && spec.vocab_size < L2C_GEN_TOKENIZER_MIN_VOCAB) {
        fprintf(stderr, "l2c-gen: --tokenizer needs --vocab >= %d, the vocabulary is %d\n",
                L2C_GEN_TOKENIZER_MIN_VOCAB, spec.vocab_size);
        return 1;
    }
    if (l2c_gen_check_spec(&spec) != 0) {
        fprintf(stderr, "l2c-gen: %s\n", l2c_gen_last_error());
        return 1;
    }
    int used_group_size = l2c_gen_group_size(spec.dim, spec.group_size);
    if (format == L2C_GEN_V2 && used_group_size != group_size) {
        fprintf(stderr, "l2c-gen: --group-size %d does not divide --dim %d, using %d\n",
                group_size, spec.dim, used_group_size);
    }

    /* the files */
    if (l2c_gen_write(out, &spec) != 0) {
        fprintf(stderr, "l2c-gen: %s\n", l2c_gen_last_error());
        return 1;
    }
    static const char *format_names[] = {"legacy", "v1", "v2"};
    fprintf(stderr, "l2c-gen: wrote %s (%s, dim %d, hidden_dim %d, %d layers, %d heads, "
            "%d kv heads, vocab %d, seq_len %d, %s classifier, %llu bytes)\n", out,
            format_names[format], spec.dim, spec.hidden_dim, spec.n_layers, spec.n_heads,
            spec.n_kv_heads, spec.vocab_size, spec.seq_len,
            spec.shared_classifier ? "shared" : "unshared", l2c_gen_file_size(&spec));
    if (tokenizer) {
        if (l2c_gen_write_tokenizer(tokenizer, spec.vocab_size) != 0) {
            fprintf(stderr, "l2c-gen: --tokenizer: %s\n", l2c_gen_last_error());
            return 1;
        }
        fprintf(stderr, "l2c-gen: wrote %s (%d tokens)\n", tokenizer, spec.vocab_size);
    }
    return 0;
}
