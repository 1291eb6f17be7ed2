/*
 * fuzz_tokenizer.c - libFuzzer target: any bytes as a tokenizer file.
 *
 * Input: two bytes that choose vocab_size (1 + their little-endian value modulo 1024), then the
 * file. l2c_tokenizer_load must either fail with one line, or give a tokenizer that encodes a few
 * texts within the promised bound (strlen + 3 ids, each in the vocabulary) and decodes every id.
 */
#include "fuzz_common.h"

static const char *texts[] = {
    "",
    "Once upon a time",
    " leading space, trailing space ",
    "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80",   /* two-, three- and four-byte UTF-8 */
    "\xff\xfe\x80 \xc3 broken \xe2\x9c",           /* invalid UTF-8 */
    "<0x41><s>\n</s>\t<unk>",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int vocab_size = 1 + (int)((data[0] | data[1] << 8) % 1024);
    char path[64];
    int fd = fuzz_file(data + 2, size - 2, path, sizeof path);

    l2c_tokenizer *tokenizer = NULL;
    l2c_status status = l2c_tokenizer_load(path, vocab_size, &tokenizer);
    close(fd);
    fuzz_check_message(status);
    if (status != L2C_OK) {
        if (tokenizer) abort(); /* a failed load leaves no tokenizer */
        return 0;
    }
    if (l2c_tokenizer_vocab_size(tokenizer) != vocab_size) abort();

    /* encoding: within strlen + 3 ids, each in the vocabulary, or one line saying why not */
    FILE *sink = fopen("/dev/null", "w");
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        int max_tokens = (int)strlen(texts[t]) + 3;
        int tokens[64];
        int n_tokens = -1;
        status = l2c_tokenizer_encode(tokenizer, texts[t], 1, 1, tokens, max_tokens, &n_tokens);
        fuzz_check_message(status);
        if (status == L2C_ERR_ARG) abort(); /* strlen + 3 always suffices */
        if (status != L2C_OK) continue;
        if (n_tokens < 0 || n_tokens > max_tokens) abort();
        for (int i = 0; i < n_tokens; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocab_size) abort();
            l2c_print_piece(sink, l2c_tokenizer_decode(tokenizer, i ? tokens[i - 1] : 1,
                                                       tokens[i]));
        }
    }

    /* decoding: every id after BOS and after itself; out-of-range ids give NULL */
    for (int id = 0; id < vocab_size; id++) {
        const char *piece = l2c_tokenizer_decode(tokenizer, L2C_TOKEN_BOS, id);
        if (!piece) abort();
        l2c_print_piece(sink, piece);
        l2c_print_piece(sink, l2c_tokenizer_decode(tokenizer, id, id));
    }
    if (l2c_tokenizer_decode(tokenizer, 0, vocab_size) || l2c_tokenizer_decode(tokenizer, 0, -1)) {
        abort();
    }
    if (sink) fclose(sink);
    l2c_tokenizer_free(tokenizer);
    return 0;
}
