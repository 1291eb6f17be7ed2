/*
 * test_tokenizer.c - the tokenizer encodes as llama2.c does, decodes back to the text, prints
 * pieces as llama2.c does, and rejects malformed tokenizer files with a message naming the file.
 *
 * The synthetic checks (a small vocabulary written here, bad files) always run; the checks on the
 * real tokenizers need tokenizer.bin and tok512.bin from the models folder and are skipped
 * (exit 77) when those are absent.
 */
#include <sys/stat.h>

#include "check.h"
#include "llama2cl.h"

/* ------------------------------------------------------------------------------------------------
 * writing tokenizer files
 */

typedef struct {
    const char *piece;
    int         len;   /* 0: strlen(piece); negative: written as is, with no bytes */
    float       score;
} vocab_entry;

/* the 259 special and byte tokens every llama2.c vocabulary starts with */
static int write_base(FILE *f) {
    char piece[16];
    int n = 0;
    const char *special[3] = { "<unk>", "\n<s>\n", "\n</s>\n" };
    for (int i = 0; i < 3 + 256; i++) {
        if (i < 3) {
            snprintf(piece, sizeof piece, "%s", special[i]);
        } else {
            snprintf(piece, sizeof piece, "<0x%02X>", i - 3);
        }
        float score = 0.0f;
        int32_t len = (int32_t)strlen(piece);
        fwrite(&score, sizeof score, 1, f);
        fwrite(&len, sizeof len, 1, f);
        fwrite(piece, 1, (size_t)len, f);
        n++;
    }
    return n;
}

/* Writes max_token_length, then (with_base) the 259 base tokens, then entries; returns the token
 * count. */
static int write_tokenizer(const char *path, int32_t max_token_length, int with_base,
                           const vocab_entry *entries, int n_entries) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    fwrite(&max_token_length, sizeof max_token_length, 1, f);
    int n = with_base ? write_base(f) : 0;
    for (int i = 0; i < n_entries; i++) {
        int32_t len = entries[i].len != 0 ? entries[i].len : (int32_t)strlen(entries[i].piece);
        fwrite(&entries[i].score, sizeof(float), 1, f);
        fwrite(&len, sizeof len, 1, f);
        if (len > 0) fwrite(entries[i].piece, 1, (size_t)len, f);
        n++;
    }
    fclose(f);
    return n;
}

/* Cuts a copy of src to its first size bytes. */
static void write_prefix(const char *src, const char *dst, size_t size) {
    size_t total;
    char *data = check_read_file(src, &total);
    FILE *f = fopen(dst, "wb");
    if (!data || !f || size > total) {
        fprintf(stderr, "cannot cut %s\n", src);
        exit(2);
    }
    fwrite(data, 1, size, f);
    fclose(f);
    free(data);
}

/* ------------------------------------------------------------------------------------------------
 * the synthetic vocabulary: its merges can be followed by hand
 */

enum {
    ID_SPACE = 259, ID_A, ID_B, ID_AB, ID_SPACE_A, ID_BA, ID_C, ID_CC, ID_E_ACUTE, ID_NUL_X,
    ID_EMOJI, SYNTH_VOCAB
};

static const vocab_entry synth_entries[] = {
    { " ",        0, -1.0f },
    { "a",        0, -2.0f },
    { "b",        0, -3.0f },
    { "ab",       0,  1.0f },
    { " a",       0,  2.0f },
    { "ba",       0,  1.0f },
    { "c",        0, -4.0f },
    { "cc",       0, -2e10f }, /* at or below -1e10: llama2.c never merges it */
    { "\xc3\xa9", 0, -5.0f },  /* e acute, one code point of two bytes */
    { "x\0y",     3, -6.0f },  /* an embedded NUL: the piece acts as "x" */
    { "\xf0\x9f\x98\x80", 0, -7.0f }, /* an emoji, one code point of four bytes */
};

static void check_encode(l2c_tokenizer *tok, const char *text, int bos, int eos, const int *want,
                         int n_want, int line) {
    int tokens[64];
    int n = -1;
    l2c_status status = l2c_tokenizer_encode(tok, text, bos, eos, tokens, 64, &n);
    int same = status == L2C_OK && n == n_want;
    for (int i = 0; same && i < n; i++) same = tokens[i] == want[i];
    if (!same) {
        fprintf(stderr, "line %d: encoding \"%s\" (bos %d, eos %d) gave status %d:", line, text,
                bos, eos, (int)status);
        for (int i = 0; status == L2C_OK && i < n; i++) fprintf(stderr, " %d", tokens[i]);
        fprintf(stderr, "\n");
        check_failures++;
    }
}

#define CHECK_ENCODE(tok, text, bos, eos, ...) do { \
    const int want_[] = { __VA_ARGS__ }; \
    check_encode(tok, text, bos, eos, want_, (int)(sizeof want_ / sizeof want_[0]), __LINE__); \
} while (0)

static void test_synthetic_merges(const char *dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/synth.bin", dir);
    int n = write_tokenizer(path, 8, 1, synth_entries, SYNTH_VOCAB - 259);
    CHECK_INT(n, SYNTH_VOCAB);
    l2c_tokenizer *tok = NULL;
    CHECK_OK(l2c_tokenizer_load(path, SYNTH_VOCAB, &tok));
    if (!tok) return;
    CHECK_INT(l2c_tokenizer_vocab_size(tok), SYNTH_VOCAB);

    /* " a" (2) beats "ab" (1) although "ab" is not the leftmost pair... */
    CHECK_ENCODE(tok, "ab", 0, 0, ID_SPACE_A, ID_B);
    /* ...and between equal scores "ba" and "ab" the leftmost pair merges first */
    CHECK_ENCODE(tok, "bab", 0, 0, ID_SPACE, ID_BA, ID_B);
    /* BOS first, EOS last, around the same merges */
    CHECK_ENCODE(tok, "ab", 1, 1, L2C_TOKEN_BOS, ID_SPACE_A, ID_B, L2C_TOKEN_EOS);
    /* a pair scored -2e10 never merges */
    CHECK_ENCODE(tok, "cc", 0, 0, ID_SPACE, ID_C, ID_C);
    /* a code point in the vocabulary is one symbol; one that is not falls back to its bytes */
    CHECK_ENCODE(tok, "\xc3\xa9", 0, 0, ID_SPACE, ID_E_ACUTE);
    CHECK_ENCODE(tok, "\xc3\xbc", 0, 0, ID_SPACE, 0xc3 + 3, 0xbc + 3);
    CHECK_ENCODE(tok, "\xf0\x9f\x98\x80" "a", 0, 0, ID_SPACE, ID_EMOJI, ID_A);
    /* a code point is at most four bytes: a fifth continuation byte starts a new symbol */
    CHECK_ENCODE(tok, "\xf0\x9f\x98\x80\x80", 0, 0, ID_SPACE, ID_EMOJI, 0x80 + 3);
    /* a stray continuation byte is its own symbol */
    CHECK_ENCODE(tok, "a\x80" "b", 0, 0, ID_SPACE, 0x61 + 3, 0x80 + 3, ID_B);
    /* the empty text has no dummy prefix */
    CHECK_ENCODE(tok, "", 1, 1, L2C_TOKEN_BOS, L2C_TOKEN_EOS);
    /* the piece "x\0y" is the text "x" */
    CHECK_ENCODE(tok, "x", 0, 0, ID_SPACE, ID_NUL_X);
    CHECK_STR(l2c_tokenizer_decode(tok, 0, ID_NUL_X), "x");

    /* max_tokens counts the merged result; when short, n_tokens says how many are needed */
    int tokens[4];
    int n_tokens = -1;
    CHECK_OK(l2c_tokenizer_encode(tok, "ab", 0, 0, tokens, 2, &n_tokens));
    CHECK_INT(n_tokens, 2);
    CHECK_INT(l2c_tokenizer_encode(tok, "ab", 0, 1, tokens, 2, &n_tokens), L2C_ERR_ARG);
    CHECK_INT(n_tokens, 3);
    CHECK_INT(l2c_tokenizer_encode(tok, "ab", 0, 0, tokens, -1, &n_tokens), L2C_ERR_ARG);
    CHECK_INT(l2c_tokenizer_encode(tok, NULL, 0, 0, tokens, 4, &n_tokens), L2C_ERR_ARG);
    CHECK_INT(l2c_tokenizer_encode(tok, "", 0, 0, NULL, 0, &n_tokens), L2C_OK);
    CHECK_INT(n_tokens, 0);

    /* decode: ids out of range, the space after BOS, raw bytes */
    CHECK(l2c_tokenizer_decode(tok, 0, -1) == NULL);
    CHECK(l2c_tokenizer_decode(tok, 0, SYNTH_VOCAB) == NULL);
    CHECK_STR(l2c_tokenizer_decode(tok, 0, ID_SPACE_A), " a");
    CHECK_STR(l2c_tokenizer_decode(tok, L2C_TOKEN_BOS, ID_SPACE_A), "a");
    CHECK_STR(l2c_tokenizer_decode(tok, L2C_TOKEN_BOS, ID_A), "a");
    CHECK_STR(l2c_tokenizer_decode(tok, 0, 0x0A + 3), "\n");
    CHECK_STR(l2c_tokenizer_decode(tok, 0, 0x41 + 3), "A");
    const char *byte_ff = l2c_tokenizer_decode(tok, 0, 0xFF + 3);
    CHECK(byte_ff && (unsigned char)byte_ff[0] == 0xFF && byte_ff[1] == '\0');
    const char *byte_00 = l2c_tokenizer_decode(tok, 0, 0x00 + 3);
    CHECK(byte_00 && byte_00[0] == '\0');
    CHECK_STR(l2c_tokenizer_decode(tok, 0, L2C_TOKEN_BOS), "\n<s>\n");
    l2c_tokenizer_free(tok);
}

/* Where llama2.c would read outside its vocabulary, encoding fails and names the token. */
static void test_missing_tokens(const char *dir) {
    char path[4200];
    l2c_tokenizer *tok = NULL;
    int tokens[16], n_tokens;

    /* no " " for the dummy prefix */
    snprintf(path, sizeof path, "%s/nospace.bin", dir);
    const vocab_entry no_space[] = { { "<unk>", 0, 0 }, { "<s>", 0, 0 }, { "</s>", 0, 0 },
                                     { "a", 0, 0 } };
    write_tokenizer(path, 8, 0, no_space, 4);
    CHECK_OK(l2c_tokenizer_load(path, 4, &tok));
    if (tok) {
        CHECK_INT(l2c_tokenizer_encode(tok, "a", 1, 0, tokens, 16, &n_tokens), L2C_ERR_FORMAT);
        CHECK(strstr(l2c_last_error(), path) && strstr(l2c_last_error(), "\" \""));
        CHECK_OK(l2c_tokenizer_encode(tok, "", 1, 0, tokens, 16, &n_tokens));
        CHECK_INT(n_tokens, 1);
        l2c_tokenizer_free(tok);
    }

    /* "z" needs the byte fallback id 'z' + 3 = 125, beyond a vocabulary of 5 */
    snprintf(path, sizeof path, "%s/nobytes.bin", dir);
    const vocab_entry no_bytes[] = { { "<unk>", 0, 0 }, { "<s>", 0, 0 }, { "</s>", 0, 0 },
                                     { " ", 0, 0 }, { "a", 0, 0 } };
    write_tokenizer(path, 8, 0, no_bytes, 5);
    tok = NULL;
    CHECK_OK(l2c_tokenizer_load(path, 5, &tok));
    if (tok) {
        CHECK_ENCODE(tok, "aa", 0, 0, 3, 4, 4);
        CHECK_INT(l2c_tokenizer_encode(tok, "az", 0, 0, tokens, 16, &n_tokens), L2C_ERR_FORMAT);
        CHECK(strstr(l2c_last_error(), path) && strstr(l2c_last_error(), "0x7A"));
        l2c_tokenizer_free(tok);
    }
}

/* ------------------------------------------------------------------------------------------------
 * malformed files
 */

static void expect_load_failure(const char *path, int vocab_size, l2c_status want,
                                const char *detail, int line) {
    l2c_tokenizer *tok = (l2c_tokenizer *)&tok; /* must come back NULL */
    l2c_status status = l2c_tokenizer_load(path, vocab_size, &tok);
    const char *msg = l2c_last_error();
    if (status != want || tok != NULL || !strstr(msg, path) || (detail && !strstr(msg, detail))) {
        fprintf(stderr, "line %d: loading %s gave status %d (want %d), message \"%s\" (want the "
                "path and \"%s\")\n", line, path, (int)status, (int)want, msg,
                detail ? detail : "");
        check_failures++;
    }
    if (status == L2C_OK && tok) l2c_tokenizer_free(tok);
}

#define EXPECT_LOAD_FAILURE(path, vocab_size, want, detail) \
    expect_load_failure(path, vocab_size, want, detail, __LINE__)

static void test_bad_files(const char *dir) {
    char good[4200], bad[4200];
    snprintf(good, sizeof good, "%s/good.bin", dir);
    snprintf(bad, sizeof bad, "%s/bad.bin", dir);

    /* six tokens of 2 bytes: token i starts at byte 4 + 10 * i */
    const vocab_entry six[] = { { "t0", 0, 0 }, { "t1", 0, 0 }, { "t2", 0, 0 },
                                { "t3", 0, 0 }, { "t4", 0, 0 }, { "t5", 0, 0 } };
    write_tokenizer(good, 4, 0, six, 6);
    l2c_tokenizer *tok = NULL;
    CHECK_OK(l2c_tokenizer_load(good, 6, &tok));
    if (tok) CHECK_STR(l2c_tokenizer_decode(tok, 0, 5), "t5");
    l2c_tokenizer_free(tok);

    /* truncated: in the header, in a score, in a length, in the bytes */
    write_prefix(good, bad, 2);
    EXPECT_LOAD_FAILURE(bad, 6, L2C_ERR_FORMAT, "max_token_length");
    write_prefix(good, bad, 4 + 10 * 3 + 2);
    EXPECT_LOAD_FAILURE(bad, 6, L2C_ERR_FORMAT, "token 3");
    write_prefix(good, bad, 4 + 10 * 3 + 6);
    EXPECT_LOAD_FAILURE(bad, 6, L2C_ERR_FORMAT, "token 3");
    write_prefix(good, bad, 4 + 10 * 3 + 9);
    EXPECT_LOAD_FAILURE(bad, 6, L2C_ERR_FORMAT, "token 3");

    /* vocab_size disagrees with the file: fewer tokens, or bytes after the last one */
    EXPECT_LOAD_FAILURE(good, 7, L2C_ERR_FORMAT, "ends after 6 tokens");
    EXPECT_LOAD_FAILURE(good, 5, L2C_ERR_FORMAT, "holds 6 tokens");
    write_prefix(good, bad, 4 + 10 * 5 + 3);
    EXPECT_LOAD_FAILURE(bad, 5, L2C_ERR_FORMAT, "3 unexpected bytes");

    /* a token longer than max_token_length, a negative length, an absurd length */
    const vocab_entry oversized[] = { { "t0", 0, 0 }, { "long!", 0, 0 } };
    write_tokenizer(bad, 4, 0, oversized, 2);
    EXPECT_LOAD_FAILURE(bad, 2, L2C_ERR_FORMAT, "token 1 has length 5");
    const vocab_entry negative[] = { { "t0", 0, 0 }, { "", -7, 0 } };
    write_tokenizer(bad, 4, 0, negative, 2);
    EXPECT_LOAD_FAILURE(bad, 2, L2C_ERR_FORMAT, "token 1 has length -7");
    write_tokenizer(bad, 0x7fffffff, 0, six, 1);
    EXPECT_LOAD_FAILURE(bad, 1, L2C_ERR_FORMAT, "max_token_length is 2147483647");

    /* max_token_length must be positive */
    write_tokenizer(bad, 0, 0, six, 1);
    EXPECT_LOAD_FAILURE(bad, 1, L2C_ERR_FORMAT, "max_token_length is 0");
    write_tokenizer(bad, -3, 0, six, 1);
    EXPECT_LOAD_FAILURE(bad, 1, L2C_ERR_FORMAT, "max_token_length is -3");

    /* an empty file, a missing file, a directory */
    write_prefix(good, bad, 0);
    EXPECT_LOAD_FAILURE(bad, 6, L2C_ERR_FORMAT, "max_token_length");
    char missing[4200];
    snprintf(missing, sizeof missing, "%s/missing.bin", dir);
    EXPECT_LOAD_FAILURE(missing, 6, L2C_ERR_IO, NULL);
    EXPECT_LOAD_FAILURE(dir, 6, L2C_ERR_IO, "directory");

    /* arguments */
    tok = NULL;
    CHECK_INT(l2c_tokenizer_load(good, 0, &tok), L2C_ERR_ARG);
    CHECK(tok == NULL);
    CHECK_INT(l2c_tokenizer_load(NULL, 6, &tok), L2C_ERR_ARG);
    CHECK_INT(l2c_tokenizer_load(good, 6, NULL), L2C_ERR_ARG);
}

/* ------------------------------------------------------------------------------------------------
 * printing pieces
 */

static void test_print_piece(void) {
    FILE *f = tmpfile();
    if (!f) {
        perror("tmpfile");
        exit(2);
    }

    /* NULL, empty and lone control bytes vanish; everything else is written as is */
    const char *pieces[] = { "ab", NULL, "", "\x01", "\n", " ", "\x7f", "\t", "\x01\x02", "\xff",
                             "\xc3\xa9", "!" };
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++) l2c_print_piece(f, pieces[i]);
    fflush(f);
    rewind(f);
    char got[64] = { 0 };
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    const char want[] = "ab\n \t\x01\x02\xc3\xa9!";
    CHECK_INT(n, sizeof want - 1);
    CHECK(memcmp(got, want, sizeof want - 1) == 0);
}

/* ------------------------------------------------------------------------------------------------
 * the real tokenizers against llama2.c
 */

typedef struct {
    const char *text;
    int         n_tokens;
    int         tokens[24];
} reference_encoding;

/*
 * These are llama2.c run.c's encode() outputs with bos = 1, eos = 0 (karpathy/llama2.c, built
 * under /tmp as a harness that includes run.c with its main renamed, then calls
 * build_tokenizer(&t, path, vocab_size) and encode(&t, text, 1, 0, tokens, &n)):
 *   harness enc /work/shared/models/tok512.bin 512 "Hello world" ...
 *   harness enc /work/shared/models/tokenizer.bin 32000 "Hello world" ...
 * With eos = 1 instead it gave the same ids without the leading 1 and with a trailing 2.
 */
static const reference_encoding tok512_reference[] = {
    { "Hello world", 7, { 1, 346, 306, 414, 263, 304, 341 } },
    { "  leading and trailing spaces  ", 20,
      { 1, 410, 410, 278, 411, 380, 299, 269, 259, 420, 412, 290, 299, 262, 427, 412, 331, 419,
        410, 410 } },
    { "line one\nline two\n", 14,
      { 1, 278, 271, 411, 353, 411, 13, 421, 271, 411, 259, 424, 414, 13 } },
    { "h\xc3\xa9llo", 5, { 1, 270, 485, 306, 414 } },
    { "emoji \xf0\x9f\x98\x80 here", 13,
      { 1, 344, 423, 414, 449, 417, 410, 243, 162, 155, 131, 281, 276 } },
    { "", 1, { 1 } },
    { "Once upon a time, there was a little girl named Lily.", 16,
      { 1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426 } },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 11,
      { 1, 410, 233, 154, 168, 233, 159, 175, 235, 173, 161 } },
    { "tab\there", 7, { 1, 259, 412, 430, 12, 260, 276 } },
};

static const reference_encoding llama2_reference[] = {
    { "Hello world", 3, { 1, 15043, 3186 } },
    { "  leading and trailing spaces  ", 7, { 1, 259, 8236, 322, 25053, 8162, 259 } },
    { "line one\nline two\n", 7, { 1, 1196, 697, 13, 1220, 1023, 13 } },
    { "h\xc3\xa9llo", 4, { 1, 298, 3610, 417 } },
    { "emoji \xf0\x9f\x98\x80 here", 10, { 1, 953, 29877, 2397, 29871, 243, 162, 155, 131, 1244 } },
    { "", 1, { 1 } },
    { "Once upon a time, there was a little girl named Lily.", 15,
      { 1, 9038, 2501, 263, 931, 29892, 727, 471, 263, 2217, 7826, 4257, 365, 2354, 29889 } },
    { "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", 5, { 1, 29871, 30325, 30346, 30968 } },
    { "tab\there", 4, { 1, 4434, 12, 4150 } },
};

static void test_reference(const char *file, int vocab_size, const reference_encoding *refs,
                           int n_refs) {
    const char *path = check_model_path(file);
    l2c_tokenizer *tok = NULL;
    CHECK_OK(l2c_tokenizer_load(path, vocab_size, &tok));
    if (!tok) return;

    for (int r = 0; r < n_refs; r++) {
        const reference_encoding *ref = &refs[r];

        /* BOS then the text, and the text then EOS */
        check_encode(tok, ref->text, 1, 0, ref->tokens, ref->n_tokens, __LINE__);
        int with_eos[25];
        memcpy(with_eos, ref->tokens + 1, (size_t)(ref->n_tokens - 1) * sizeof(int));
        with_eos[ref->n_tokens - 1] = L2C_TOKEN_EOS;
        check_encode(tok, ref->text, 0, 1, with_eos, ref->n_tokens, __LINE__);

        /* decoding the pieces after BOS gives the text back */
        char text[256] = { 0 };
        for (int i = 1; i < ref->n_tokens; i++) {
            const char *piece = l2c_tokenizer_decode(tok, ref->tokens[i - 1], ref->tokens[i]);
            CHECK(piece != NULL);
            if (piece) strncat(text, piece, sizeof text - strlen(text) - 1);
        }
        CHECK_STR(text, ref->text);
    }

    /* one token fewer than needed is refused */
    int tokens[24], n_tokens;
    CHECK_INT(l2c_tokenizer_encode(tok, refs[0].text, 1, 0, tokens, refs[0].n_tokens - 1,
                                   &n_tokens), L2C_ERR_ARG);
    CHECK_INT(n_tokens, refs[0].n_tokens);
    l2c_tokenizer_free(tok);

    /* the wrong vocab_size is caught in both directions */
    int other = vocab_size == 512 ? 32000 : 512;
    char detail[64];
    snprintf(detail, sizeof detail, vocab_size < other ? "ends after %d tokens" :
             "holds %d tokens", vocab_size);
    expect_load_failure(path, other, L2C_ERR_FORMAT, detail, __LINE__);
}

/* A long prompt (108 KB, where llama2.c's rescanning merge loop takes minutes) encodes each
 * repeated line the same way. */
static void test_long_prompt(void) {
    const char *path = check_model_path("tokenizer.bin");
    l2c_tokenizer *tok = NULL;
    CHECK_OK(l2c_tokenizer_load(path, 32000, &tok));
    if (!tok) return;
    const char *unit = "Once upon a time, there was a little girl named Lily.\n";
    int repeats = 2000;
    size_t unit_len = strlen(unit);
    char *text = malloc(unit_len * repeats + 1);
    for (int i = 0; i < repeats; i++) memcpy(text + unit_len * i, unit, unit_len);
    text[unit_len * repeats] = '\0';
    int max_tokens = (int)(unit_len * repeats) + 3;
    int *tokens = malloc((size_t)max_tokens * sizeof *tokens);
    int n_tokens = 0;
    CHECK_OK(l2c_tokenizer_encode(tok, text, 1, 0, tokens, max_tokens, &n_tokens));

    /* llama2.c (same harness, 60 repeats) gives 1, then 9038 ... 29889, 13 for the first unit
     * (15 ids), and the same 15 ids for each later unit except that, with no dummy space before
     * it, "Once" (26222) replaces " Once" (9038) */
    CHECK_INT(n_tokens, 1 + 15 * repeats);
    CHECK_INT(tokens[1], 9038);
    CHECK_INT(tokens[15], 13);
    for (int i = 1; i < repeats && n_tokens == 1 + 15 * repeats; i++) {
        CHECK_INT(tokens[1 + 15 * i], 26222);
        CHECK(memcmp(tokens + 2 + 15 * i, tokens + 2, 14 * sizeof(int)) == 0);
        if (check_failures) break;
    }
    free(tokens);
    free(text);
    l2c_tokenizer_free(tok);
}

int main(void) {
    const char *dir = check_tmpdir("tokenizer");
    test_synthetic_merges(dir);
    test_missing_tokens(dir);
    test_bad_files(dir);
    test_print_piece();

    if (!check_model_path("tokenizer.bin") || !check_model_path("tok512.bin")) {
        if (check_failures) return check_report("test_tokenizer");
        return check_skip("test_tokenizer", "tokenizer.bin or tok512.bin not in the models "
                          "folder (set LLAMA2CL_MODELS); the synthetic checks passed");
    }
    test_reference("tok512.bin", 512, tok512_reference,
                   (int)(sizeof tok512_reference / sizeof tok512_reference[0]));
    test_reference("tokenizer.bin", 32000, llama2_reference,
                   (int)(sizeof llama2_reference / sizeof llama2_reference[0]));
    test_long_prompt();
    return check_report("test_tokenizer");
}
