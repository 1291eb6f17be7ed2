/*
 * fuzz_encode.c - libFuzzer target: any bytes as text to encode and decode.
 *
 * Two tokenizers: the generator's (512 pieces, written once at start), for which decoding the
 * ids after BOS must give back the text exactly (its merges only join letters and spaces, so no
 * run of text can merge into a special or byte piece); and the real tok512.bin when the models
 * folder has it ($LLAMA2CL_MODELS, else L2C_DEFAULT_MODELS), for which the ids must stay within
 * the bound and the vocabulary. The text ends at the input's first NUL, as a C string does.
 */
#include "checkpoint_writer.h"
#include "fuzz_common.h"

#define GENERATED_VOCAB 512

static l2c_tokenizer *generated;
static l2c_tokenizer *real; /* NULL when tok512.bin is absent */
static FILE *sink;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;

    /* the generator's tokenizer, through a temporary file */
    char path[] = "/tmp/l2c-fuzz-tok-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || l2c_gen_write_tokenizer(path, GENERATED_VOCAB) != 0 ||
        l2c_tokenizer_load(path, GENERATED_VOCAB, &generated) != L2C_OK) {
        fprintf(stderr, "fuzz_encode: cannot make the generated tokenizer: %s %s\n",
                l2c_gen_last_error(), l2c_last_error());
        abort();
    }
    close(fd);
    unlink(path);

    /* the real one, when present */
    const char *dir = getenv("LLAMA2CL_MODELS");
    if (!dir || !*dir) dir = getenv("L2C_DEFAULT_MODELS");
    if (dir && *dir) {
        char real_path[4096];
        snprintf(real_path, sizeof real_path, "%s/tok512.bin", dir);
        if (access(real_path, R_OK) == 0 && l2c_tokenizer_load(real_path, 512, &real) != L2C_OK) {
            fprintf(stderr, "fuzz_encode: %s\n", l2c_last_error());
            abort();
        }
    }
    fprintf(stderr, "fuzz_encode: generated tokenizer, %s\n",
            real ? "and tok512.bin" : "tok512.bin absent");
    sink = fopen("/dev/null", "w");
    return 0;
}

/* Encodes text with BOS (and EOS when eos); checks the bound and the ids; returns the count. */
static int encode(const l2c_tokenizer *tokenizer, const char *text, int eos, int *tokens,
                  int max_tokens) {
    int n_tokens = -1;
    l2c_status status = l2c_tokenizer_encode(tokenizer, text, 1, eos, tokens, max_tokens,
                                             &n_tokens);
    fuzz_check_message(status);
    if (status != L2C_OK || n_tokens < 1 || n_tokens > max_tokens || tokens[0] != L2C_TOKEN_BOS) {
        fprintf(stderr, "encoding %zu bytes: status %d, %d ids: %s\n", strlen(text), (int)status,
                n_tokens, l2c_last_error());
        abort();
    }
    for (int i = 0; i < n_tokens; i++) {
        if (tokens[i] < 0 || tokens[i] >= l2c_tokenizer_vocab_size(tokenizer)) abort();
    }
    if (eos && tokens[n_tokens - 1] != L2C_TOKEN_EOS) abort();

    /* one id fewer than needed is refused and says how many were needed; exactly enough works
     * and gives the same count */
    int needed = -1;
    if (l2c_tokenizer_encode(tokenizer, text, 1, eos, tokens, n_tokens - 1, &needed) !=
        L2C_ERR_ARG || needed != n_tokens) {
        abort();
    }
    int again = -1;
    if (l2c_tokenizer_encode(tokenizer, text, 1, eos, tokens, n_tokens, &again) != L2C_OK ||
        again != n_tokens) {
        abort();
    }
    return n_tokens;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    int *tokens = malloc((size + 3) * sizeof *tokens);
    if (!text || !tokens) abort();
    memcpy(text, data, size);
    text[size] = '\0';
    int max_tokens = (int)strlen(text) + 3;
    int eos = size > 0 && (data[size - 1] & 1);

    /* the generated tokenizer: the pieces after BOS spell the text */
    int n = encode(generated, text, eos, tokens, max_tokens);
    size_t done = 0;
    for (int i = 1; i < n - eos; i++) {
        const char *piece = l2c_tokenizer_decode(generated, tokens[i - 1], tokens[i]);
        size_t len = piece ? strlen(piece) : 0;
        if (!piece || strncmp(text + done, piece, len) != 0) {
            fprintf(stderr, "id %d (\"%s\") does not spell the text at byte %zu\n", tokens[i],
                    piece ? piece : "(null)", done);
            abort();
        }
        done += len;
        l2c_print_piece(sink, piece);
    }
    if (done != strlen(text)) {
        fprintf(stderr, "the decoded pieces spell %zu of the text's %zu bytes\n", done,
                strlen(text));
        abort();
    }

    /* the real tokenizer: bounds and ids only */
    if (real) {
        n = encode(real, text, eos, tokens, max_tokens);
        for (int i = 1; i < n; i++) {
            l2c_print_piece(sink, l2c_tokenizer_decode(real, tokens[i - 1], tokens[i]));
        }
    }
    free(text);
    free(tokens);
    return 0;
}
