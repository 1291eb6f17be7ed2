/*
 * make_corpus.c - writes the seed corpora of the fuzz targets from the checkpoint generator.
 *
 * Usage: make_corpus OUT_DIR [tok512.bin]
 * Makes OUT_DIR/checkpoint (small models in the three formats, shared and unshared classifier,
 * grouped-query attention, one and two layers), OUT_DIR/tokenizer (generated tokenizers, and the
 * real tok512.bin when given, each behind the two bytes that choose its vocab_size) and
 * OUT_DIR/encode (texts). The seeds are small so that libFuzzer's length limit stays small.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint_writer.h"

static const char *out_dir;

static void fail(const char *what, const char *why) {
    fprintf(stderr, "make_corpus: %s: %s\n", what, why);
    exit(1);
}

static void make_dir(const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, name);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) fail(path, strerror(errno));
}

/* Reads a whole file into a malloc'd buffer. */
static unsigned char *read_all(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) fail(path, strerror(errno));
    size_t cap = 1 << 16, n = 0, got;
    unsigned char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    if (!buf) fail(path, "out of memory");
    fclose(f);
    *size = n;
    return buf;
}

static void write_all(const char *path, const void *head, size_t head_size, const void *body,
                      size_t body_size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(head, 1, head_size, f) != head_size ||
        fwrite(body, 1, body_size, f) != body_size || fclose(f) != 0) {
        fail(path, strerror(errno));
    }
}

/* ------------------------------------------------------------------------------------------------
 * seeds
 */

static void checkpoints(void) {
    static const l2c_gen_spec specs[] = {
        /* dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len, shared,
         * format, group_size, seed */
        {8, 16, 1, 2, 1, 32, 8, 1, L2C_GEN_LEGACY, 0, 1},
        {8, 12, 2, 2, 2, 24, 4, 0, L2C_GEN_LEGACY, 0, 2},
        {8, 16, 1, 2, 1, 32, 8, 1, L2C_GEN_V1, 0, 3},
        {16, 24, 1, 4, 2, 20, 6, 0, L2C_GEN_V1, 0, 4},
        {8, 16, 1, 2, 1, 32, 8, 1, L2C_GEN_V2, 8, 5},
        {16, 32, 2, 4, 1, 24, 4, 0, L2C_GEN_V2, 16, 6},
        {8, 8, 1, 1, 1, 4, 1, 1, L2C_GEN_V2, 4, 7},
    };
    make_dir("checkpoint");
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/checkpoint/seed-%zu-v%d", out_dir, i, specs[i].format);
        if (l2c_gen_write(path, &specs[i]) != 0) fail(path, l2c_gen_last_error());
    }
}

/* a tokenizer seed: vocab_size - 1 as two little-endian bytes, then the file */
static void tokenizer_seed(const char *name, const char *file, int vocab_size) {
    char path[4096];
    size_t size;
    unsigned char *body = read_all(file, &size);
    unsigned char head[2] = {(unsigned char)((vocab_size - 1) & 0xff),
                             (unsigned char)((vocab_size - 1) >> 8)};
    snprintf(path, sizeof path, "%s/tokenizer/%s", out_dir, name);
    write_all(path, head, sizeof head, body, size);
    free(body);
}

static void tokenizers(const char *real) {
    static const int vocab_sizes[] = {260, 300, 400};
    make_dir("tokenizer");
    for (size_t i = 0; i < sizeof vocab_sizes / sizeof vocab_sizes[0]; i++) {
        char file[4096], name[64];
        snprintf(file, sizeof file, "%s/tokenizer/generated.tmp", out_dir);
        if (l2c_gen_write_tokenizer(file, vocab_sizes[i]) != 0) fail(file, l2c_gen_last_error());
        snprintf(name, sizeof name, "generated-%d", vocab_sizes[i]);
        tokenizer_seed(name, file, vocab_sizes[i]);
        remove(file);
    }
    if (real) tokenizer_seed("tok512", real, 512);
}

static void texts(void) {
    static const char *seeds[] = {
        "Once upon a time, there was a little girl named Lily.",
        "",
        " ",
        "hello world\n",
        "caf\xc3\xa9 na\xc3\xafve \xe2\x9c\x93 \xf0\x9f\x98\x80",
        "\xff\xfe\xc3\x28 \xe2\x82 \xf0\x9f",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "<0x41> <s> </s> <unk>",
        "[INST] <<SYS>>\nbe kind\n<</SYS>>\n\nTell me a story [/INST]",
        "  two  spaces\tand\ttabs  ",
    };
    make_dir("encode");
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/encode/text-%zu", out_dir, i);
        write_all(path, "", 0, seeds[i], strlen(seeds[i]));
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: make_corpus OUT_DIR [tok512.bin]\n");
        return 1;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) fail(out_dir, strerror(errno));
    checkpoints();
    tokenizers(argc == 3 ? argv[2] : NULL);
    texts();
    printf("make_corpus: seeds written to %s/{checkpoint,tokenizer,encode}\n", out_dir);
    return 0;
}
