/*
 * test_bad_inputs.c - every malformed checkpoint, tokenizer and command line gets one clear line
 * on stderr and exit code 1, and the inputs that are odd but valid run to exit code 0.
 *
 * Each case builds its files in a fresh directory (small models from the checkpoint generator,
 * then header fields overwritten, bytes cut or appended), runs llama2cl there, and checks:
 *   exit 1: stderr is exactly one line, starting "llama2cl: ", that contains the case's keys
 *           (the file or flag, the field and its value);
 *   exit 0: stderr holds no "llama2cl: " line, or exactly the one notice the case expects.
 * It then writes every case with the message it got as a Markdown table into the build
 * directory, and fails when that differs from the committed tests/BAD_INPUTS.md. With
 * L2C_UPDATE_BAD_INPUTS=1 in the environment it rewrites tests/BAD_INPUTS.md instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "check.h"
#include "checkpoint_writer.h"

/* ------------------------------------------------------------------------------------------------
 * cases
 */

typedef enum {
    MAKE_NOTHING = 0, /* the path is left absent */
    MAKE_LEGACY,      /* the small model below, in each format */
    MAKE_V1,
    MAKE_V2,
    MAKE_TOKENIZER,   /* the generator's tokenizer */
    MAKE_TINY_TOKENIZER, /* <unk>, BOS, EOS and " ": no byte tokens */
    MAKE_DIRECTORY,
    MAKE_FIFO,        /* a named pipe with no writer: opening it must not block */
    MAKE_TEXT,        /* the bytes of text */
} make_kind;

typedef enum {
    F_NONE = 0,
    F_MAGIC, F_VERSION, F_DIM, F_HIDDEN_DIM, F_N_LAYERS, F_N_HEADS, F_N_KV_HEADS, F_VOCAB_SIZE,
    F_SEQ_LEN, F_SHARED, F_GROUP_SIZE,       /* checkpoint header */
    F_MAX_TOKEN_LENGTH, F_TOKEN0_LENGTH,     /* tokenizer */
    F_WEIGHT0,                               /* the first value after the header */
} field;

typedef struct {
    field     field;
    long long value; /* written as int32 (a byte for F_SHARED, fp32 bits for F_WEIGHT0) */
} patch;

typedef struct {
    const char *name;  /* file name in the test directory */
    make_kind   make;
    int         vocab; /* vocab_size of the made model or tokenizer; 0: SMALL_VOCAB */
    patch       set[8];
    long long   keep;  /* > 0: only the first keep bytes stay */
    long long   cut;   /* bytes removed from the end */
    long long   extra; /* zero bytes appended */
    const char *text;  /* MAKE_TEXT's contents */
} file_recipe;

typedef struct {
    const char *what;     /* the input, as BAD_INPUTS.md names it */
    file_recipe file;     /* made before the run */
    file_recipe file2;
    const char *args;     /* llama2cl's arguments (shell words), run in the test directory */
    int         exit_code;
    const char *keys[4];  /* substrings of the error line (exit 1) or of the notice (exit 0) */
    const char *any[3];   /* at least one of these too, when the message depends on the machine */
    const char *shown;    /* the table's text instead of the message, for such messages */
    const char *same_stdout_as;    /* exit 0: stdout must equal that of these arguments */
    const char *other_stdout_than; /* and differ from that of these */
} bad_case;

/* exit 1 with one line holding each key; exit 0 with the notice holding each key (0: none) */
#define ERR(...)   .exit_code = 1, .keys = {__VA_ARGS__}
#define VALID(...) .exit_code = 0, .keys = {__VA_ARGS__}

/* the shared valid files: a small version-1 model and its tokenizer */
#define SMALL_VOCAB   300
#define SMALL_SEQ_LEN 16
#define OK_MODEL      "model.bin"
#define OK_TOK        "tok.bin"
#define RUN           "--cpu " OK_MODEL " -z " OK_TOK
#define F32_NAN       0x7fc00000LL

/* a checkpoint made as recipe (name, make, fields...), run with the valid tokenizer */
#define MODEL(what_, name_, ...) \
    .what = what_, .file = {name_, __VA_ARGS__}, .args = "--cpu " name_ " -z " OK_TOK
/* a tokenizer made as recipe, run with the valid model */
#define TOKENIZER(what_, name_, ...) \
    .what = what_, .file = {name_, __VA_ARGS__}, .args = "--cpu " OK_MODEL " -z " name_

/*
 * The implied sizes of the largest headers the loader accepts, by hand: dim 65536, hidden_dim
 * 2^20, 4096 layers, 256 heads (head_size 256), 256 kv heads, vocab 2^24, seq_len 2^22, shared.
 *   per layer: wq, wk, wv, wo = 4 * 2^32 values, w1, w2, w3 = 3 * 2^36, so 13 * 2^34;
 *   all layers: 13 * 2^46 = 914793674309632; token table 2^40; norms 2 * 2^12 * 2^16 + 2^16.
 *   v1: 4 * (914793674309632 + 1099511627776 + 536936448) + 256 = 3663574891495680
 *   legacy: 28 + 4 * (the same + seq_len * head_size = 2^30) = 3663579186462748
 *   v2 (group 64): 256 + 4 * norms + q8 + q8 / 64 * 4 with q8 = 2^40 + 13 * 2^46 int8 values,
 *   973138657804544.
 * In 32-bit arithmetic every one of these products wraps.
 */
#define HUGE_DIMS_FP32 {F_DIM, 65536}, {F_HIDDEN_DIM, 1 << 20}, {F_N_LAYERS, 4096}, \
    {F_N_HEADS, 256}, {F_N_KV_HEADS, 256}, {F_VOCAB_SIZE, 1 << 24}, {F_SEQ_LEN, 1 << 22}
#define HUGE_DIMS_Q8 HUGE_DIMS_FP32, {F_GROUP_SIZE, 64}

static const bad_case checkpoint_cases[] = {
    /* files that are not checkpoints */
    {MODEL("missing file", "absent.bin", .make = MAKE_NOTHING),
     ERR("absent.bin: cannot open", "No such file")},
    {MODEL("a directory", "dir.bin", .make = MAKE_DIRECTORY),
     ERR("dir.bin: not a regular file", "directory")},
    {MODEL("a named pipe", "pipe.bin", .make = MAKE_FIFO),
     ERR("pipe.bin: not a regular file")},
    {MODEL("empty file", "empty.bin", MAKE_TEXT, .text = ""),
     ERR("empty.bin: file is empty")},
    {MODEL("text file", "text.bin", MAKE_TEXT, .text = "hello, world\n"),
     ERR("text.bin: file is 13 bytes, shorter than any checkpoint header (28 bytes)")},
    {MODEL("unknown magic (read as a legacy header)", "gguf.bin", MAKE_TEXT,
           .text = "GGUF, version 3: not a llama2.c checkpoint"),
     ERR("gguf.bin: header field dim is 1179993927, expected 1 to 65536")},
    {MODEL("v1 with its magic corrupted to \"ak43\" (read as a legacy header)", "v1-magic.bin",
           MAKE_V1, .set = {{F_MAGIC, 0x616b3433}}),
     ERR("v1-magic.bin: header field dim is 1634415667, expected 1 to 65536")},

    /* headers cut short */
    {MODEL("legacy: 20 bytes, shorter than its header", "legacy-short.bin", MAKE_LEGACY,
           .keep = 20),
     ERR("legacy-short.bin: file is 20 bytes, shorter than any checkpoint header (28 bytes)")},
    {MODEL("v1: 100 bytes, shorter than its header", "v1-short.bin", MAKE_V1, .keep = 100),
     ERR("v1-short.bin: file is 100 bytes, shorter than the 256-byte header")},
    {MODEL("v2: 255 bytes, shorter than its header", "v2-short.bin", MAKE_V2, .keep = 255),
     ERR("v2-short.bin: file is 255 bytes, shorter than the 256-byte header")},

    /* lengths that disagree with the shapes: 38236, 38208 and 14688 bytes when whole */
    {MODEL("legacy: 4 bytes missing", "legacy-cut.bin", MAKE_LEGACY, .cut = 4),
     ERR("legacy-cut.bin: file is 38232 bytes but its header's shapes imply 38236 (truncated)")},
    {MODEL("v1: 4 bytes missing", "v1-cut.bin", MAKE_V1, .cut = 4),
     ERR("v1-cut.bin: file is 38204 bytes but its header's shapes imply 38208 (truncated)")},
    {MODEL("v2: 1 byte missing", "v2-cut.bin", MAKE_V2, .cut = 1),
     ERR("v2-cut.bin: file is 14687 bytes but its header's shapes imply 14688 (truncated)")},
    {MODEL("legacy: 4 bytes too many", "legacy-long.bin", MAKE_LEGACY, .extra = 4),
     ERR("legacy-long.bin: file is 38240 bytes", "imply 38236 (trailing bytes)")},
    {MODEL("v1: 4 bytes too many", "v1-long.bin", MAKE_V1, .extra = 4),
     ERR("v1-long.bin: file is 38212 bytes", "imply 38208 (trailing bytes)")},
    {MODEL("v2: 1 byte too many", "v2-long.bin", MAKE_V2, .extra = 1),
     ERR("v2-long.bin: file is 14689 bytes", "imply 14688 (trailing bytes)")},
    {MODEL("v1: header says unshared, no classifier follows", "v1-unshared.bin", MAKE_V1,
           .set = {{F_SHARED, 0}}),
     ERR("v1-unshared.bin: file is 38208 bytes", "imply 57408 (truncated)")},
    {MODEL("legacy: negative vocab_size (unshared), no classifier follows",
           "legacy-unshared.bin", MAKE_LEGACY, .set = {{F_VOCAB_SIZE, -SMALL_VOCAB}}),
     ERR("legacy-unshared.bin: file is 38236 bytes", "imply 57436 (truncated)")},

    /* versions */
    {MODEL("version 3", "v3.bin", MAKE_V1, .set = {{F_VERSION, 3}}),
     ERR("v3.bin: header field version is 3, expected 1 or 2")},
    {MODEL("version 0", "v0.bin", MAKE_V2, .set = {{F_VERSION, 0}}),
     ERR("v0.bin: header field version is 0")},
    {MODEL("version -1", "vneg.bin", MAKE_V1, .set = {{F_VERSION, -1}}),
     ERR("vneg.bin: header field version is -1")},
    {MODEL("v1: shared_classifier 2", "v1-shared2.bin", MAKE_V1, .set = {{F_SHARED, 2}}),
     ERR("v1-shared2.bin: header field shared_classifier is 2, expected 0 or 1")},

    /* zero, negative and absurd dimensions, in each format */
    {MODEL("legacy: dim 0", "legacy-dim0.bin", MAKE_LEGACY, .set = {{F_DIM, 0}}),
     ERR("legacy-dim0.bin: header field dim is 0, expected 1 to 65536")},
    {MODEL("v1: dim 0", "v1-dim0.bin", MAKE_V1, .set = {{F_DIM, 0}}),
     ERR("v1-dim0.bin: header field dim is 0, expected 1 to 65536")},
    {MODEL("v2: dim 0", "v2-dim0.bin", MAKE_V2, .set = {{F_DIM, 0}}),
     ERR("v2-dim0.bin: header field dim is 0, expected 1 to 65536")},
    {MODEL("legacy: dim -16", "legacy-dimneg.bin", MAKE_LEGACY, .set = {{F_DIM, -16}}),
     ERR("legacy-dimneg.bin: header field dim is -16")},
    {MODEL("v1: dim 2^31 - 1", "v1-dimmax.bin", MAKE_V1, .set = {{F_DIM, 2147483647}}),
     ERR("v1-dimmax.bin: header field dim is 2147483647, expected 1 to 65536")},
    {MODEL("v2: hidden_dim -1", "v2-hidneg.bin", MAKE_V2, .set = {{F_HIDDEN_DIM, -1}}),
     ERR("v2-hidneg.bin: header field hidden_dim is -1")},
    {MODEL("legacy: hidden_dim 0", "legacy-hid0.bin", MAKE_LEGACY, .set = {{F_HIDDEN_DIM, 0}}),
     ERR("legacy-hid0.bin: header field hidden_dim is 0")},
    {MODEL("v1: n_layers 0", "v1-layers0.bin", MAKE_V1, .set = {{F_N_LAYERS, 0}}),
     ERR("v1-layers0.bin: header field n_layers is 0")},
    {MODEL("legacy: n_layers -2", "legacy-layersneg.bin", MAKE_LEGACY,
           .set = {{F_N_LAYERS, -2}}),
     ERR("legacy-layersneg.bin: header field n_layers is -2")},
    {MODEL("v2: n_layers 1000000", "v2-layersbig.bin", MAKE_V2, .set = {{F_N_LAYERS, 1000000}}),
     ERR("v2-layersbig.bin: header field n_layers is 1000000, expected 1 to 4096")},
    {MODEL("v1: n_heads 0", "v1-heads0.bin", MAKE_V1, .set = {{F_N_HEADS, 0}}),
     ERR("v1-heads0.bin: header field n_heads is 0")},
    {MODEL("legacy: n_heads greater than dim", "legacy-headsbig.bin", MAKE_LEGACY,
           .set = {{F_N_HEADS, 32}}),
     ERR("legacy-headsbig.bin: header field n_heads is 32, expected 1 to 16")},
    {MODEL("v2: n_kv_heads 0", "v2-kv0.bin", MAKE_V2, .set = {{F_N_KV_HEADS, 0}}),
     ERR("v2-kv0.bin: header field n_kv_heads is 0")},
    {MODEL("v1: n_kv_heads greater than n_heads", "v1-kvbig.bin", MAKE_V1,
           .set = {{F_N_KV_HEADS, 8}}),
     ERR("v1-kvbig.bin: header field n_kv_heads is 8, expected 1 to 4")},
    {MODEL("v1: vocab_size 0", "v1-vocab0.bin", MAKE_V1, .set = {{F_VOCAB_SIZE, 0}}),
     ERR("v1-vocab0.bin: header field vocab_size is 0")},
    {MODEL("legacy: vocab_size -2^31 (no positive counterpart)", "legacy-vocabmin.bin",
           MAKE_LEGACY, .set = {{F_VOCAB_SIZE, -2147483647LL - 1}}),
     ERR("legacy-vocabmin.bin: header field vocab_size is -2147483648")},
    {MODEL("v2: vocab_size 2^30", "v2-vocabbig.bin", MAKE_V2, .set = {{F_VOCAB_SIZE, 1 << 30}}),
     ERR("v2-vocabbig.bin: header field vocab_size is 1073741824, expected 1 to 16777216")},
    {MODEL("legacy: seq_len 0", "legacy-seq0.bin", MAKE_LEGACY, .set = {{F_SEQ_LEN, 0}}),
     ERR("legacy-seq0.bin: header field seq_len is 0")},
    {MODEL("v1: seq_len -1", "v1-seqneg.bin", MAKE_V1, .set = {{F_SEQ_LEN, -1}}),
     ERR("v1-seqneg.bin: header field seq_len is -1")},
    {MODEL("v2: seq_len 2^31 - 1", "v2-seqmax.bin", MAKE_V2, .set = {{F_SEQ_LEN, 2147483647}}),
     ERR("v2-seqmax.bin: header field seq_len is 2147483647, expected 1 to 4194304")},

    /* shapes that do not divide */
    {MODEL("legacy: dim 16 not divisible by n_heads 3", "legacy-heads3.bin", MAKE_LEGACY,
           .set = {{F_N_HEADS, 3}, {F_N_KV_HEADS, 3}}),
     ERR("legacy-heads3.bin: dim 16 is not divisible by n_heads 3")},
    {MODEL("v1: dim 16 not divisible by n_heads 5", "v1-heads5.bin", MAKE_V1,
           .set = {{F_N_HEADS, 5}, {F_N_KV_HEADS, 5}}),
     ERR("v1-heads5.bin: dim 16 is not divisible by n_heads 5")},
    {MODEL("v2: dim 16 not divisible by n_heads 6", "v2-heads6.bin", MAKE_V2,
           .set = {{F_N_HEADS, 6}, {F_N_KV_HEADS, 6}}),
     ERR("v2-heads6.bin: dim 16 is not divisible by n_heads 6")},
    {MODEL("legacy: n_heads 4 not divisible by n_kv_heads 3", "legacy-kv3.bin", MAKE_LEGACY,
           .set = {{F_N_KV_HEADS, 3}}),
     ERR("legacy-kv3.bin: n_heads 4 is not divisible by n_kv_heads 3")},
    {MODEL("v1: n_heads 4 not divisible by n_kv_heads 3", "v1-kv3.bin", MAKE_V1,
           .set = {{F_N_KV_HEADS, 3}}),
     ERR("v1-kv3.bin: n_heads 4 is not divisible by n_kv_heads 3")},
    {MODEL("v2: n_heads 8 not divisible by n_kv_heads 3", "v2-kv3.bin", MAKE_V2,
           .set = {{F_N_HEADS, 8}, {F_N_KV_HEADS, 3}}),
     ERR("v2-kv3.bin: n_heads 8 is not divisible by n_kv_heads 3")},
    {MODEL("legacy: odd head size (dim 16, n_heads 16)", "legacy-odd.bin", MAKE_LEGACY,
           .set = {{F_N_HEADS, 16}, {F_N_KV_HEADS, 16}}),
     ERR("legacy-odd.bin: head size 1 (dim 16 / n_heads 16) is odd")},
    {MODEL("v1: odd head size (dim 24, n_heads 8)", "v1-odd.bin", MAKE_V1,
           .set = {{F_DIM, 24}, {F_N_HEADS, 8}, {F_N_KV_HEADS, 8}}),
     ERR("v1-odd.bin: head size 3 (dim 24 / n_heads 8) is odd")},
    {MODEL("v2: odd head size (dim 12, n_heads 4)", "v2-odd.bin", MAKE_V2, .set = {{F_DIM, 12}}),
     ERR("v2-odd.bin: head size 3 (dim 12 / n_heads 4) is odd")},

    /* Q8_0 groups */
    {MODEL("v2: group_size 0", "v2-gs0.bin", MAKE_V2, .set = {{F_GROUP_SIZE, 0}}),
     ERR("v2-gs0.bin: group_size 0 does not divide dim 16")},
    {MODEL("v2: group_size -8", "v2-gsneg.bin", MAKE_V2, .set = {{F_GROUP_SIZE, -8}}),
     ERR("v2-gsneg.bin: group_size -8 does not divide")},
    {MODEL("v2: group_size 12, not dividing dim 16", "v2-gs12.bin", MAKE_V2,
           .set = {{F_GROUP_SIZE, 12}}),
     ERR("v2-gs12.bin: group_size 12 does not divide dim 16 and hidden_dim 32")},
    {MODEL("v2: group_size 16, not dividing hidden_dim 40", "v2-gs16.bin", MAKE_V2,
           .set = {{F_GROUP_SIZE, 16}, {F_HIDDEN_DIM, 40}}),
     ERR("v2-gs16.bin: group_size 16 does not divide dim 16 and hidden_dim 40")},
    {MODEL("v2: group_size 2 (scales misaligned)", "v2-gs2.bin", MAKE_V2,
           .set = {{F_GROUP_SIZE, 2}}),
     ERR("v2-gs2.bin: group_size 2 is not a multiple of 4")},
    {MODEL("v2: group_size 2^31 - 1", "v2-gsmax.bin", MAKE_V2,
           .set = {{F_GROUP_SIZE, 2147483647}}),
     ERR("v2-gsmax.bin: group_size 2147483647 does not divide")},

    /* the largest accepted dimensions: products far beyond 32 bits, checked against the length */
    {MODEL("legacy: largest dims (sizes overflow 32 bits)", "legacy-huge.bin", MAKE_LEGACY,
           .set = {HUGE_DIMS_FP32}),
     ERR("legacy-huge.bin: file is 38236 bytes", "imply 3663579186462748 (truncated)")},
    {MODEL("v1: largest dims (sizes overflow 32 bits)", "v1-huge.bin", MAKE_V1,
           .set = {HUGE_DIMS_FP32}),
     ERR("v1-huge.bin: file is 38208 bytes", "imply 3663574891495680 (truncated)")},
    {MODEL("v2: largest dims (sizes overflow 32 bits)", "v2-huge.bin", MAKE_V2,
           .set = {HUGE_DIMS_Q8}),
     ERR("v2-huge.bin: file is 14688 bytes", "imply 973138657804544 (truncated)")},

    /* weights that are not numbers run without crashing (fuzzing found the Q8_0 path
     * converting NaN activations to int8, which is undefined) */
    {.what = "v2: NaN norm weight",
     .file = {"v2-nan.bin", MAKE_V2, .set = {{F_WEIGHT0, F32_NAN}}},
     .args = "--cpu v2-nan.bin -z " OK_TOK " -n 4 -t 0", VALID(0)},
    {.what = "v1: NaN norm weight",
     .file = {"v1-nan.bin", MAKE_V1, .set = {{F_WEIGHT0, F32_NAN}}},
     .args = "--cpu v1-nan.bin -z " OK_TOK " -n 4 -t 0.8 -s 3", VALID(0)},
};

static const bad_case tokenizer_cases[] = {
    {TOKENIZER("missing tokenizer", "absent-tok.bin", .make = MAKE_NOTHING),
     ERR("absent-tok.bin: cannot open", "No such file")},
    {.what = "default tokenizer.bin absent", .args = "--cpu " OK_MODEL,
     ERR("tokenizer.bin: cannot open", "No such file")},
    {TOKENIZER("tokenizer is a directory", "dir-tok", .make = MAKE_DIRECTORY),
     ERR("dir-tok: is a directory")},
    {TOKENIZER("tokenizer is a named pipe", "pipe-tok", .make = MAKE_FIFO),
     ERR("pipe-tok: is not a regular file")},
    {TOKENIZER("empty tokenizer", "empty-tok.bin", MAKE_TEXT, .text = ""),
     ERR("empty-tok.bin: cannot read max_token_length", "truncated")},
    {TOKENIZER("truncated in a token's bytes", "cut-tok.bin", MAKE_TOKENIZER, .cut = 1),
     ERR("cut-tok.bin: cannot read the 1 bytes of token 299", "truncated")},
    {TOKENIZER("truncated after 107 tokens", "half-tok.bin", MAKE_TOKENIZER, .keep = 1500),
     ERR("half-tok.bin: file ends after 107 tokens, but vocab_size is 300")},
    {TOKENIZER("max_token_length 0", "max0-tok.bin", MAKE_TOKENIZER,
               .set = {{F_MAX_TOKEN_LENGTH, 0}}),
     ERR("max0-tok.bin: max_token_length is 0, expected 1")},
    {TOKENIZER("max_token_length -1", "maxneg-tok.bin", MAKE_TOKENIZER,
               .set = {{F_MAX_TOKEN_LENGTH, -1}}),
     ERR("maxneg-tok.bin: max_token_length is -1")},
    {TOKENIZER("max_token_length 2^31 - 1", "maxbig-tok.bin", MAKE_TOKENIZER,
               .set = {{F_MAX_TOKEN_LENGTH, 2147483647}}),
     ERR("maxbig-tok.bin: max_token_length is 2147483647")},
    {TOKENIZER("token longer than max_token_length", "long-tok.bin", MAKE_TOKENIZER,
               .set = {{F_MAX_TOKEN_LENGTH, 5}}),
     ERR("long-tok.bin: token 2 has length 6, expected 0 to max_token_length 5")},
    {TOKENIZER("token length -1", "neglen-tok.bin", MAKE_TOKENIZER,
               .set = {{F_TOKEN0_LENGTH, -1}}),
     ERR("neglen-tok.bin: token 0 has length -1")},
    {TOKENIZER("fewer tokens than the model's vocab_size", "small-tok.bin", MAKE_TOKENIZER,
               .vocab = 280),
     ERR("small-tok.bin: file ends after 280 tokens, but vocab_size is 300")},
    {TOKENIZER("more tokens than the model's vocab_size", "big-tok.bin", MAKE_TOKENIZER,
               .vocab = 320),
     ERR("big-tok.bin: file holds 320 tokens, but vocab_size is 300")},
    {TOKENIZER("bytes after the last token", "tail-tok.bin", MAKE_TOKENIZER, .extra = 3),
     ERR("tail-tok.bin: 3 unexpected bytes")},
    {.what = "prompt byte without a token (no byte pieces)",
     .file = {"tiny.bin", MAKE_V1, .vocab = 4}, .file2 = {"tiny-tok.bin", MAKE_TINY_TOKENIZER},
     .args = "--cpu tiny.bin -z tiny-tok.bin -i hi",
     ERR("tiny-tok.bin: no token for byte 0x68", "vocab_size 4")},
    {.what = "no byte pieces, no prompt (valid)",
     .file = {"tiny.bin", MAKE_V1, .vocab = 4}, .file2 = {"tiny-tok.bin", MAKE_TINY_TOKENIZER},
     .args = "--cpu tiny.bin -z tiny-tok.bin -t 0.9 -s 1", VALID(0)},
};

/* a sampled run whose 15th and 16th positions both print text, so that the number of positions
 * shows in the output */
#define SEEDED " -t 1 -p 0 -s 7"

/* With the generated tokenizer of 300 pieces (no merges), "abc...": BOS, " ", one per letter. */
#define PROMPT_16_TOKENS "abcdefghijklmn"
#define PROMPT_17_TOKENS "abcdefghijklmno"

static const bad_case command_line_cases[] = {
    {"unknown flag", .args = RUN " --frobnicate", ERR("unknown flag '--frobnicate'")},
    {"unknown short flag", .args = RUN " -x 1", ERR("unknown flag '-x'")},
    {"flag without value", .args = RUN " -n", ERR("-n needs a value")},
    {"-z without value", .args = "--cpu " OK_MODEL " -z", ERR("-z needs a value")},
    {"two checkpoints", .args = RUN " " OK_MODEL, ERR("unexpected argument 'model.bin'")},
    {"no checkpoint", .args = "-t 0", ERR("no checkpoint given")},
    {"unknown mode", .args = RUN " -m poem", ERR("-m: unknown mode 'poem'")},
    {"-n negative", .args = RUN " -n -5", ERR("-n: -5 is outside 0 to")},
    {"-n not a number", .args = RUN " -n ten", ERR("-n: 'ten' is not an integer")},
    {"-n past 2^31", .args = RUN " -n 4294967296", ERR("-n: 4294967296 is outside")},
    {"-n with trailing text", .args = RUN " -n 12x", ERR("-n: '12x' is not an integer")},
    {"-t negative", .args = RUN " -t -0.5", ERR("-t: -0.5 is outside [0,")},
    {"-t NaN", .args = RUN " -t nan", ERR("-t: 'nan' is not a finite number")},
    {"-t infinite", .args = RUN " -t inf", ERR("-t: 'inf' is not a finite number")},
    {"-p above 1", .args = RUN " -p 1.5", ERR("-p: 1.5 is outside [0, 1]")},
    {"-p negative", .args = RUN " -p -0.1", ERR("-p: -0.1 is outside [0, 1]")},
    {"-k negative", .args = RUN " -k -3", ERR("-k: -3 is outside 0 to")},
    {"-s not a number", .args = RUN " -s abc", ERR("-s: 'abc' is not an integer")},
    {"--device negative", .args = "--device -1 " OK_MODEL " -z " OK_TOK,
     ERR("--device: -1 is outside 0 to")},
    {"--device out of range", .args = "--device 99 " OK_MODEL " -z " OK_TOK, ERR(0),
     .any = {"no OpenCL device 99", "no OpenCL platform", "have no device"},
     .shown = "(depends on the machine) names device 99 and how many devices there are, or says "
              "that no OpenCL platform or device is installed"},
    {"--cpu with --device", .args = RUN " --device 0", ERR("--cpu and --device")},
    {"--validate with --cpu", .args = RUN " --validate", ERR("--validate", "--cpu")},
    {"unknown --gemv engine", .args = RUN " --gemv fast", ERR("--gemv: unknown engine 'fast'")},
    {"unknown --dtype", .args = RUN " --dtype f8", ERR("--dtype: unknown weight type 'f8'")},
    {"--tolerance negative", .args = RUN " --tolerance -1", ERR("--tolerance: -1 is outside")},
    {"prompt one token longer than the context", .args = RUN " -i " PROMPT_17_TOKENS,
     ERR("-i: the prompt is 17 tokens (BOS included), longer than the model's seq_len 16")},

    /* odd but valid */
    {"-n beyond seq_len (clamped with a notice)", .args = RUN " -n 1000" SEEDED,
     VALID("-n 1000 is beyond the model's seq_len 16; running 16 positions"),
     .same_stdout_as = RUN " -n 16" SEEDED, .other_stdout_than = RUN " -n 15" SEEDED},
    {"-n 0 (the whole context, no notice)", .args = RUN " -n 0" SEEDED, VALID(0),
     .same_stdout_as = RUN " -n 16" SEEDED, .other_stdout_than = RUN " -n 15" SEEDED},
    {"empty prompt", .args = RUN " -i ''" SEEDED, VALID(0), .same_stdout_as = RUN SEEDED},
    {"invalid UTF-8 prompt", .args = RUN " -t 0 -i \"$(printf 'a\\377\\376b\\303')\"", VALID(0)},
    {"prompt filling the context exactly", .args = RUN " -t 0 -i " PROMPT_16_TOKENS, VALID(0)},
    {"chat turn longer than the context (the context ends the chat)",
     .args = RUN " -m chat -y 'be brief' -i " PROMPT_17_TOKENS " -t 0 </dev/null", VALID(0)},
    {"chat with stdin at its end", .args = RUN " -m chat -t 0 </dev/null", VALID(0)},
};

/* ------------------------------------------------------------------------------------------------
 * making the files
 */

static const char *test_dir;

static l2c_gen_spec small_spec(int format, int vocab) {
    l2c_gen_spec spec = {
        .dim = 16, .hidden_dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
        .vocab_size = vocab ? vocab : SMALL_VOCAB, .seq_len = SMALL_SEQ_LEN,
        .shared_classifier = 1, .format = format, .group_size = 8, .seed = 7,
    };
    return spec;
}

/* byte offset of a field in a file made as make; -1 when that file has no such field */
static long field_offset(make_kind make, field f) {
    int versioned = make == MAKE_V1 || make == MAKE_V2;
    int header = versioned ? L2C_GEN_HEADER_SIZE : 28;
    switch (f) {
    case F_MAGIC:            return versioned ? 0 : -1;
    case F_VERSION:          return versioned ? 4 : -1;
    case F_SHARED:           return versioned ? 36 : -1;
    case F_GROUP_SIZE:       return make == MAKE_V2 ? 37 : -1;
    case F_MAX_TOKEN_LENGTH: return make == MAKE_TOKENIZER ? 0 : -1;
    case F_TOKEN0_LENGTH:    return make == MAKE_TOKENIZER ? 8 : -1;
    case F_WEIGHT0:          return make == MAKE_TOKENIZER ? -1 : header;
    case F_NONE:             return -1;
    default:                 return (versioned ? 8 : 0) + 4 * (f - F_DIM);
    }
}

static void die_making(const char *path, const char *why) {
    fprintf(stderr, "test_bad_inputs: cannot make %s: %s\n", path, why);
    exit(2);
}

static void write_bytes(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, size, f) != size || fclose(f) != 0) {
        die_making(path, strerror(errno));
    }
}

/* <unk>, BOS, EOS and " ": a tokenizer with no byte tokens */
static void write_tiny_tokenizer(const char *path) {
    const char *pieces[] = {"<unk>", "\n<s>\n", "\n</s>\n", " "};
    unsigned char buf[128];
    size_t n = 0;
    int32_t max_len = 6;
    memcpy(buf + n, &max_len, 4);
    n += 4;
    for (int i = 0; i < 4; i++) {
        float score = 0.0f;
        int32_t len = (int32_t)strlen(pieces[i]);
        memcpy(buf + n, &score, 4);
        memcpy(buf + n + 4, &len, 4);
        memcpy(buf + n + 8, pieces[i], (size_t)len);
        n += 8 + (size_t)len;
    }
    write_bytes(path, buf, n);
}

static void make_file(const file_recipe *r) {
    char path[4096];
    if (!r->name || r->make == MAKE_NOTHING) return;
    snprintf(path, sizeof path, "%s/%s", test_dir, r->name);

    /* the base file */
    switch (r->make) {
    case MAKE_LEGACY:
    case MAKE_V1:
    case MAKE_V2: {
        l2c_gen_spec spec = small_spec(r->make - MAKE_LEGACY + L2C_GEN_LEGACY, r->vocab);
        if (l2c_gen_write(path, &spec) != 0) die_making(path, l2c_gen_last_error());
        break;
    }
    case MAKE_TOKENIZER:
        if (l2c_gen_write_tokenizer(path, r->vocab ? r->vocab : SMALL_VOCAB) != 0) {
            die_making(path, l2c_gen_last_error());
        }
        break;
    case MAKE_TINY_TOKENIZER:
        write_tiny_tokenizer(path);
        break;
    case MAKE_DIRECTORY:
        if (mkdir(path, 0755) != 0 && errno != EEXIST) die_making(path, strerror(errno));
        return;
    case MAKE_FIFO:
        if (mkfifo(path, 0644) != 0 && errno != EEXIST) die_making(path, strerror(errno));
        return;
    case MAKE_TEXT:
        write_bytes(path, r->text, strlen(r->text));
        break;
    case MAKE_NOTHING:
        return;
    }

    /* fields overwritten in place */
    int fd = open(path, O_RDWR);
    if (fd < 0) die_making(path, strerror(errno));
    for (int i = 0; i < 8 && r->set[i].field != F_NONE; i++) {
        long offset = field_offset(r->make, r->set[i].field);
        int32_t v = (int32_t)r->set[i].value;
        size_t width = r->set[i].field == F_SHARED ? 1 : 4;
        unsigned char byte = (unsigned char)v;
        if (offset < 0) die_making(path, "the recipe sets a field this format lacks");
        if (pwrite(fd, width == 1 ? (void *)&byte : (void *)&v, width, offset) != (ssize_t)width) {
            die_making(path, strerror(errno));
        }
    }

    /* then the length */
    struct stat st;
    if (fstat(fd, &st) != 0) die_making(path, strerror(errno));
    long long size = st.st_size;
    if (r->keep > 0) size = r->keep;
    size -= r->cut;
    if (ftruncate(fd, size + r->extra) != 0) die_making(path, strerror(errno));
    close(fd);
}

/* ------------------------------------------------------------------------------------------------
 * running a case
 */

typedef struct {
    int   status;
    char *out;
    char *err;
} run_result;

static run_result run_llama2cl(const char *args) {
    char cmd[8192], err_path[4096];
    run_result r;
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", test_dir);
    /* a hang (say, on a named pipe) ends as a failure with timeout's status 124 */
    snprintf(cmd, sizeof cmd, "cd '%s' && timeout 120 '%s/llama2cl' %s 2>stderr.txt", test_dir,
             check_bin_dir(), args);
    r.out = check_run(cmd, &r.status);
    r.err = check_read_file(err_path, NULL);
    if (!r.out) r.out = strdup("");
    if (!r.err) r.err = strdup("");
    return r;
}

/* lines of text starting "llama2cl: "; *first gets the first one (without its newline) */
static int count_message_lines(const char *text, char *first, size_t first_size) {
    int n = 0;
    first[0] = '\0';
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (strncmp(line, "llama2cl: ", 10) == 0) {
            if (n++ == 0) snprintf(first, first_size, "%.*s", (int)len, line);
        }
        line += len + (end ? 1 : 0);
    }
    return n;
}

static int contains_keys(const bad_case *c, const char *line) {
    int ok = 1;
    for (int k = 0; k < 4 && c->keys[k]; k++) {
        if (!strstr(line, c->keys[k])) {
            fprintf(stderr, "  the message lacks \"%s\"\n", c->keys[k]);
            ok = 0;
        }
    }
    if (c->any[0]) {
        int found = 0;
        for (int k = 0; k < 3 && c->any[k]; k++) found |= strstr(line, c->any[k]) != NULL;
        if (!found) {
            fprintf(stderr, "  the message names none of \"%s\", \"%s\", \"%s\"\n", c->any[0],
                    c->any[1] ? c->any[1] : "", c->any[2] ? c->any[2] : "");
            ok = 0;
        }
    }
    return ok;
}

/* Runs one case and checks it; appends its table row to table. */
static void run_case(const bad_case *c, FILE *table) {
    make_file(&c->file);
    make_file(&c->file2);
    run_result r = run_llama2cl(c->args);
    char message[2048];
    int n_messages = count_message_lines(r.err, message, sizeof message);
    int ok = 1;

    if (r.status != c->exit_code) {
        fprintf(stderr, "  exit code %d, expected %d\n", r.status, c->exit_code);
        ok = 0;
    }
    if (c->exit_code != 0) {
        /* exactly one line, the error */
        size_t len = strlen(r.err);
        int one_line = len > 0 && r.err[len - 1] == '\n' && strchr(r.err, '\n') == r.err + len - 1;
        if (!one_line || strncmp(r.err, "llama2cl: ", 10) != 0) {
            fprintf(stderr, "  stderr is not one line starting \"llama2cl: \"\n");
            ok = 0;
        }
        ok &= contains_keys(c, message);
    } else {
        /* no error line; the notice when one is expected */
        int want = c->keys[0] ? 1 : 0;
        if (n_messages != want) {
            fprintf(stderr, "  %d \"llama2cl: \" line(s) on stderr, expected %d\n", n_messages,
                    want);
            ok = 0;
        }
        if (want) ok &= contains_keys(c, message);
        if (strstr(r.err, "runtime error:") || strstr(r.err, "Sanitizer")) {
            fprintf(stderr, "  a sanitizer reported an error\n");
            ok = 0;
        }
        size_t len = strlen(r.out);
        if (len == 0 || r.out[len - 1] != '\n') {
            fprintf(stderr, "  stdout does not end with the generation's final newline\n");
            ok = 0;
        }
        if (c->same_stdout_as) {
            run_result same = run_llama2cl(c->same_stdout_as);
            if (same.status != 0 || strcmp(same.out, r.out) != 0) {
                fprintf(stderr, "  stdout differs from that of: llama2cl %s\n", c->same_stdout_as);
                ok = 0;
            }
            free(same.out);
            free(same.err);
        }
        if (c->other_stdout_than) {
            run_result other = run_llama2cl(c->other_stdout_than);
            if (other.status != 0 || strcmp(other.out, r.out) == 0) {
                fprintf(stderr, "  stdout equals that of: llama2cl %s\n", c->other_stdout_than);
                ok = 0;
            }
            free(other.out);
            free(other.err);
        }
    }
    if (!ok) {
        fprintf(stderr, "case \"%s\" failed: llama2cl %s\n--- stderr:\n%s---\n", c->what, c->args,
                r.err);
        check_failures++;
    }

    /* the table row; '|' would end a cell */
    const char *shown = c->shown ? c->shown : message[0] ? message : "(none)";
    fprintf(table, "| %s | `llama2cl %s` | %d | ", c->what, c->args, r.status);
    for (const char *p = shown; *p; p++) {
        if (*p == '|') fputc('\\', table);
        fputc(*p, table);
    }
    fprintf(table, " |\n");
    free(r.out);
    free(r.err);
}

static void run_section(const char *title, const bad_case *cases, size_t n, FILE *table) {
    fprintf(table, "\n## %s\n\n| input | command | exit | stderr |\n|---|---|---|---|\n", title);
    for (size_t i = 0; i < n; i++) run_case(&cases[i], table);
}

/* ------------------------------------------------------------------------------------------------
 * the table
 */

static const char *table_header =
"# Bad inputs and what llama2cl says\n"
"\n"
"<!-- Generated by tests/test_bad_inputs.c; do not edit. test_bad_inputs runs every row and\n"
"fails when this file differs from what it wrote to build/tests/BAD_INPUTS.md. After changing\n"
"a case or a message, regenerate it with\n"
"    L2C_UPDATE_BAD_INPUTS=1 ctest --test-dir build -R test_bad_inputs\n"
"-->\n"
"\n"
"Each row is a case of `tests/test_bad_inputs.c`: the files are small generated models\n"
"(`model.bin`: version 1, dim 16, 2 layers, 4 heads, 2 kv heads, vocab 300, seq_len 16) and\n"
"their generated tokenizer (`tok.bin`), altered as the row says. A bad input must exit with\n"
"code 1 and print exactly one line on stderr, the one shown, naming the file or flag and the\n"
"cause; the valid rows must exit 0 and print no error (the notice shown, if any).\n";

static int same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = check_read_file(a, &na), *y = check_read_file(b, &nb);
    int same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

int main(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/llama2cl", check_bin_dir());
    if (access(path, X_OK) != 0) {
        fprintf(stderr, "test_bad_inputs: %s is missing (L2C_BIN_DIR)\n", path);
        return 1;
    }
    test_dir = check_tmpdir("bad-inputs");

    /* the valid model and tokenizer most cases use */
    file_recipe model = {OK_MODEL, .make = MAKE_V1};
    file_recipe tokenizer = {OK_TOK, .make = MAKE_TOKENIZER};
    make_file(&model);
    make_file(&tokenizer);

    /* every case, into the table */
    char table_path[4096];
    snprintf(table_path, sizeof table_path, "%s/BAD_INPUTS.md", L2C_TESTS_BINARY_DIR);
    FILE *table = fopen(table_path, "w");
    if (!table) {
        fprintf(stderr, "test_bad_inputs: cannot write %s: %s\n", table_path, strerror(errno));
        return 1;
    }
    fputs(table_header, table);
    run_section("Checkpoints", checkpoint_cases,
                sizeof checkpoint_cases / sizeof checkpoint_cases[0], table);
    run_section("Tokenizers", tokenizer_cases,
                sizeof tokenizer_cases / sizeof tokenizer_cases[0], table);
    run_section("Command line", command_line_cases,
                sizeof command_line_cases / sizeof command_line_cases[0], table);
    fclose(table);

    /* the committed table must be this run's */
    char committed[4096];
    snprintf(committed, sizeof committed, "%s/BAD_INPUTS.md", L2C_TESTS_DIR);
    const char *update = getenv("L2C_UPDATE_BAD_INPUTS");
    if (update && *update && strcmp(update, "0") != 0) {
        size_t n;
        char *text = check_read_file(table_path, &n);
        if (text) write_bytes(committed, text, n);
        free(text);
        printf("test_bad_inputs: rewrote %s\n", committed);
    } else if (!same_file(table_path, committed)) {
        fprintf(stderr, "test_bad_inputs: %s differs from this run's %s; compare them, then "
                "regenerate with L2C_UPDATE_BAD_INPUTS=1\n", committed, table_path);
        check_failures++;
    }
    return check_report("test_bad_inputs");
}
