/*
 * checkpoint_writer.h - writes llama2.c checkpoints (legacy, version 1, version 2) and tokenizers
 * with deterministic pseudo-random weights, for tests and benchmarks of every shape from 260K
 * parameters to Llama 2 7B.
 *
 * The library depends on libc and libm only. Every value is a pure function of (seed, tensor,
 * layer, element index), so a file is written as a stream in any format's order with bounded
 * memory, and a test can recompute any weight without reading the file.
 *
 * Functions that can fail return 0, or -1 with errno set and a one-line message in
 * l2c_gen_last_error().
 */
#ifndef L2C_CHECKPOINT_WRITER_H
#define L2C_CHECKPOINT_WRITER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------
 * model description
 */

/* file formats, the same values as llama2cl.h's l2c_format */
enum {
    L2C_GEN_LEGACY = 0, /* run.c's 7 int32 header; vocab_size negative when unshared */
    L2C_GEN_V1     = 1, /* "ak42" magic, version 1, 256-byte header, fp32, norms first */
    L2C_GEN_V2     = 2, /* "ak42" magic, version 2, fp32 norms, Q8_0 matrices */
};

#define L2C_GEN_MAGIC       0x616b3432u /* "ak42" */
#define L2C_GEN_HEADER_SIZE 256         /* bytes before the weights in versions 1 and 2 */

typedef struct {
    int dim;               /* transformer width */
    int hidden_dim;        /* feed-forward width */
    int n_layers;
    int n_heads;           /* query heads; head_size = dim / n_heads must be even */
    int n_kv_heads;        /* key/value heads, a divisor of n_heads */
    int vocab_size;
    int seq_len;
    int shared_classifier; /* 1: the classifier is the token embedding table */
    int format;            /* L2C_GEN_LEGACY, L2C_GEN_V1 or L2C_GEN_V2 */
    int group_size;        /* Q8_0 group size asked for (version 2); halved until it divides dim */
    unsigned long long seed;
} l2c_gen_spec;

/* The tensors of a model. Per-layer tensors have n_layers instances, the others one. */
typedef enum {
    L2C_GEN_TOKEN_EMBEDDING = 0, /* (vocab_size, dim) */
    L2C_GEN_RMS_ATT,             /* (1, dim) per layer */
    L2C_GEN_WQ,                  /* (n_heads * head_size, dim) per layer */
    L2C_GEN_WK,                  /* (kv_dim, dim) per layer */
    L2C_GEN_WV,                  /* (kv_dim, dim) per layer */
    L2C_GEN_WO,                  /* (dim, n_heads * head_size) per layer */
    L2C_GEN_RMS_FFN,             /* (1, dim) per layer */
    L2C_GEN_W1,                  /* (hidden_dim, dim) per layer */
    L2C_GEN_W2,                  /* (dim, hidden_dim) per layer */
    L2C_GEN_W3,                  /* (hidden_dim, dim) per layer */
    L2C_GEN_RMS_FINAL,           /* (1, dim) */
    L2C_GEN_WCLS,                /* (vocab_size, dim); only written when not shared */
    L2C_GEN_TENSOR_COUNT
} l2c_gen_tensor;

/* The message of the last failure in the calling thread, one line without a newline. */
const char *l2c_gen_last_error(void);

/* Checks the shapes, format and group size of spec. 0 or -1 (EINVAL) naming the field. */
int l2c_gen_check_spec(const l2c_gen_spec *spec);

/* The group size a version-2 file of width dim gets: group_size halved until it divides dim, as
 * export.py does. 0 when group_size < 1. */
int l2c_gen_group_size(int dim, int group_size);

/* Shape of one instance of a tensor, row-major (rows, cols); returns rows * cols. */
size_t l2c_gen_tensor_shape(const l2c_gen_spec *spec, l2c_gen_tensor tensor, int *rows, int *cols);

/* n_layers for the per-layer tensors, 1 for the others. */
int l2c_gen_tensor_layers(const l2c_gen_spec *spec, l2c_gen_tensor tensor);

/* A short lower-case name ("wq", "rms_att_weight"). */
const char *l2c_gen_tensor_name(l2c_gen_tensor tensor);

/* ------------------------------------------------------------------------------------------------
 * weights
 *
 * Matrices are uniform in [-1/sqrt(cols), 1/sqrt(cols)), the token embedding table and an
 * unshared classifier in [-4/sqrt(dim), 4/sqrt(dim)) (0.5 for dim 64; logits then have a standard
 * deviation near 2.3 at any width), norm weights in [0.9, 1.1). With a shared classifier,
 * L2C_GEN_WCLS yields the token embedding table.
 */

/* Writes count values of one tensor instance (layer 0 for the tensors that have one), starting at
 * element first of its row-major matrix. Never fails for a valid spec. */
void l2c_gen_fill(const l2c_gen_spec *spec, l2c_gen_tensor tensor, int layer, size_t first,
                  size_t count, float *out);

/* All weights in memory, in llama2.c's layout: per-layer tensors contiguous, layer after layer. */
typedef struct {
    float *token_embedding_table; /* (vocab_size, dim) */
    float *rms_att_weight;        /* (n_layers, dim) */
    float *wq;                    /* (n_layers, n_heads * head_size, dim) */
    float *wk;                    /* (n_layers, kv_dim, dim) */
    float *wv;                    /* (n_layers, kv_dim, dim) */
    float *wo;                    /* (n_layers, dim, n_heads * head_size) */
    float *rms_ffn_weight;        /* (n_layers, dim) */
    float *w1;                    /* (n_layers, hidden_dim, dim) */
    float *w2;                    /* (n_layers, dim, hidden_dim) */
    float *w3;                    /* (n_layers, hidden_dim, dim) */
    float *rms_final_weight;      /* (dim) */
    float *wcls;                  /* (vocab_size, dim); token_embedding_table when shared */
} l2c_gen_weights;

/* Allocates and fills the weights a reader of spec's file sees: the generated fp32 values, and
 * for version 2 each matrix (token table and classifier included) replaced by its Q8_0 round trip
 * q * scale. Meant for small models; -1 (ENOMEM, EINVAL) on failure. */
int  l2c_gen_weights_create(const l2c_gen_spec *spec, l2c_gen_weights *weights);
void l2c_gen_weights_free(l2c_gen_weights *weights);

/* Pointer to one tensor in weights (the first layer's instance for per-layer tensors). */
float *l2c_gen_weights_tensor(const l2c_gen_weights *weights, l2c_gen_tensor tensor);

/* ------------------------------------------------------------------------------------------------
 * Q8_0, as export.py's quantize_q80
 *
 * Each group of group_size consecutive values x gets scale = max|x| / 127 (fp32) and
 * q = round-half-to-even(x / scale) in [-127, 127]; a group of zeros gets scale 0 and q 0.
 * n must be a multiple of group_size.
 */

void l2c_gen_q8_quantize(const float *x, size_t n, int group_size, int8_t *q, float *scales);
void l2c_gen_q8_dequantize(const int8_t *q, const float *scales, size_t n, int group_size,
                           float *x);

/* ------------------------------------------------------------------------------------------------
 * checkpoint files
 */

/* Writes spec's checkpoint to path with the generated weights. The file is removed on failure. */
int l2c_gen_write(const char *path, const l2c_gen_spec *spec);

/* Supplies the weights of a file being written: count values of one tensor instance starting at
 * element first, as l2c_gen_fill. Returns 0, or -1 after setting errno. */
typedef int (*l2c_gen_source)(void *ctx, l2c_gen_tensor tensor, int layer, size_t first,
                              size_t count, float *out);

/* Writes spec's checkpoint to path with the weights source gives (spec->seed is unused). Each
 * tensor instance is asked for once, in the file's order, in chunks of increasing first. */
int l2c_gen_write_from(const char *path, const l2c_gen_spec *spec, l2c_gen_source source,
                       void *ctx);

/* Size in bytes of spec's checkpoint file. */
unsigned long long l2c_gen_file_size(const l2c_gen_spec *spec);

/* ------------------------------------------------------------------------------------------------
 * tokenizer
 *
 * A tokenizer in llama2.c's format (int32 max_token_length, then per token: fp32 score, int32
 * length, the bytes) for vocab_size tokens: 0 "<unk>", 1 "\n<s>\n", 2 "\n</s>\n", 3..258
 * "<0x00>".."<0xFF>", 259 " ", then the other printable ASCII characters (lower-case letters,
 * upper-case letters, digits, punctuation), then merges: " a".." z", "aa".."zz", " aa".." zz",
 * "aaa".."zzz", and so on, each the concatenation of two earlier pieces. Every piece from 259 on
 * scores -(id - 259), so earlier merges win, as in Llama 2's tokenizer. All pieces are distinct.
 */

#define L2C_GEN_TOKENIZER_MIN_VOCAB 260 /* the special and byte tokens, and " " */

int l2c_gen_write_tokenizer(const char *path, int vocab_size);

/* The piece of token id in that tokenizer, into buf (at least 16 bytes); its length, or -1 when
 * id is out of range. */
int l2c_gen_tokenizer_piece(int vocab_size, int id, char *buf, size_t buf_size);

#ifdef __cplusplus
}
#endif

#endif /* L2C_CHECKPOINT_WRITER_H */
