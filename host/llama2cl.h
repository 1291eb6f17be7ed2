/*
 * llama2cl.h - the public interface of the llama2cl inference engine.
 *
 * A model is loaded once (l2c_model_load), then driven through a backend: the CPU reference
 * (l2c_backend_cpu_create) or an OpenCL device (l2c_backend_opencl_create). The tokenizer and the
 * sampler are independent of the backend, and so are the generation and chat loops, which only
 * ask a backend for the logits of the next position.
 *
 * Every function that can fail returns an l2c_status; l2c_last_error() then gives one line that
 * names the file, field, flag or device and the cause. The library never exits and never prints.
 */
#ifndef LLAMA2CL_H
#define LLAMA2CL_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------------
 * status
 */

typedef enum {
    L2C_OK = 0,
    L2C_ERR_IO,          /* a file could not be opened, read or mapped */
    L2C_ERR_FORMAT,      /* a file's contents are malformed or inconsistent */
    L2C_ERR_ARG,         /* an argument is outside its range */
    L2C_ERR_NOMEM,       /* a host allocation failed */
    L2C_ERR_NO_DEVICE,   /* no OpenCL platform, or no device with that index */
    L2C_ERR_DEVICE,      /* an OpenCL or CLBlast call failed */
    L2C_ERR_UNSUPPORTED, /* valid input that this build or backend cannot run */
} l2c_status;

/* A short name for a status ("file format error"). */
const char *l2c_status_name(l2c_status status);

/* The message of the last failure in the calling thread, one line without a newline. */
const char *l2c_last_error(void);

/* ------------------------------------------------------------------------------------------------
 * model: a checkpoint in one of llama2.c's three formats, mapped read-only
 */

typedef enum {
    L2C_FORMAT_LEGACY = 0, /* run.c's header of 7 int32, fp32 weights */
    L2C_FORMAT_V1     = 1, /* "ak42" magic, version 1, fp32 weights, norms first */
    L2C_FORMAT_V2     = 2, /* "ak42" magic, version 2, fp32 norms, Q8_0 matrices */
} l2c_format;

typedef struct {
    int dim;               /* transformer width */
    int hidden_dim;        /* feed-forward width */
    int n_layers;
    int n_heads;           /* query heads */
    int n_kv_heads;        /* key/value heads (grouped-query attention when < n_heads) */
    int vocab_size;
    int seq_len;           /* longest context */
    int shared_classifier; /* 1 when the classifier reuses the token embedding table */
    l2c_format format;
    int group_size;        /* Q8_0 group size (version 2 only, else 0) */
} l2c_config;

typedef struct l2c_model l2c_model;

l2c_status        l2c_model_load(const char *path, l2c_model **model);
const l2c_config *l2c_model_config(const l2c_model *model);
void              l2c_model_free(l2c_model *model);

/* ------------------------------------------------------------------------------------------------
 * tokenizer: llama2.c's tokenizer.bin format
 */

typedef struct l2c_tokenizer l2c_tokenizer;

#define L2C_TOKEN_BOS 1
#define L2C_TOKEN_EOS 2

/* vocab_size must match the model's. */
l2c_status l2c_tokenizer_load(const char *path, int vocab_size, l2c_tokenizer **tokenizer);
void       l2c_tokenizer_free(l2c_tokenizer *tokenizer);
int        l2c_tokenizer_vocab_size(const l2c_tokenizer *tokenizer);

/* Encodes text as llama2.c does: optional BOS, the dummy leading space, UTF-8 byte fallback, then
 * merges of the best-scoring pair. Writes at most max_tokens ids; L2C_ERR_ARG if more are needed,
 * with *n_tokens set to the count needed (strlen(text) + 3 always suffices). */
l2c_status l2c_tokenizer_encode(const l2c_tokenizer *tokenizer, const char *text, int bos, int eos,
                                int *tokens, int max_tokens, int *n_tokens);

/* The text of token following prev_token: the space after BOS stripped, <0xXX> turned into its
 * byte. The returned string lives as long as the tokenizer. NULL for an id out of range. */
const char *l2c_tokenizer_decode(const l2c_tokenizer *tokenizer, int prev_token, int token);

/* Writes a decoded piece as llama2.c does, skipping lone bytes that are neither printable nor
 * white space. */
void l2c_print_piece(FILE *out, const char *piece);

/* ------------------------------------------------------------------------------------------------
 * sampler: llama2.c's sampler (same generator, same arithmetic), plus top-k
 */

typedef struct l2c_sampler l2c_sampler;

/* temperature 0 is greedy; topp outside (0, 1) disables nucleus sampling; topk <= 0 or
 * >= vocab_size disables top-k. */
l2c_status l2c_sampler_create(int vocab_size, float temperature, float topp, int topk,
                              unsigned long long seed, l2c_sampler **sampler);
void       l2c_sampler_free(l2c_sampler *sampler);

/* Picks the next token. Except at temperature 0, logits (vocab_size values) are overwritten with
 * the softmax probabilities (before any top-k cut), as llama2.c does. */
int l2c_sampler_sample(l2c_sampler *sampler, float *logits);

/* ------------------------------------------------------------------------------------------------
 * backend: where the forward pass runs
 */

typedef struct l2c_backend l2c_backend;

typedef enum {
    L2C_GEMV_AUTO = 0,   /* time both engines once per shape and take the faster */
    L2C_GEMV_CLBLAST,    /* CLBlastSgemv */
    L2C_GEMV_OWN,        /* llama2cl's own matrix-vector kernels */
} l2c_gemv_engine;

typedef enum {
    L2C_DTYPE_F32 = 0,   /* weights as in the file (fp32, or Q8_0 for version 2) */
    L2C_DTYPE_F16,       /* fp32 weights stored as fp16 on the device */
} l2c_dtype;

typedef struct {
    int             device;  /* index in l2c_opencl_list_devices' order; -1 for the first */
    l2c_gemv_engine gemv;
    l2c_dtype       dtype;
    int             profile; /* collect per-kernel times (l2c_backend_report) */
    size_t          max_alloc_override; /* > 0: treat this as the device's largest allocation */
    size_t          mem_limit;          /* > 0: use at most this many bytes of device memory */
} l2c_opencl_options;

/* Fills options with the defaults (first device, the engine chosen by timing, weights as in the
 * file). */
void l2c_opencl_options_default(l2c_opencl_options *options);

l2c_status l2c_backend_cpu_create(const l2c_model *model, l2c_backend **backend);
l2c_status l2c_backend_opencl_create(const l2c_model *model, const l2c_opencl_options *options,
                                     l2c_backend **backend);
void       l2c_backend_free(l2c_backend *backend);

/* One line describing the backend ("cpu, 2 threads" or the device's name). */
const char *l2c_backend_describe(const l2c_backend *backend);

/* Runs token at position pos (0 <= pos < seq_len); *logits points at vocab_size values owned by
 * the backend, valid until the next call. */
l2c_status l2c_backend_forward(l2c_backend *backend, int token, int pos, float **logits);

/* Runs n_tokens tokens at positions pos .. pos + n_tokens - 1 and returns the logits of the last
 * one. Backends without a batched path run the tokens one by one. */
l2c_status l2c_backend_prefill(l2c_backend *backend, const int *tokens, int n_tokens, int pos,
                               float **logits);

/* Writes the backend's profile (per kernel kind, time per token) when it collected one. */
void l2c_backend_report(const l2c_backend *backend, FILE *out);

/* Prints every OpenCL platform's devices with their index; L2C_ERR_NO_DEVICE when none. */
l2c_status l2c_opencl_list_devices(FILE *out);

/* ------------------------------------------------------------------------------------------------
 * validation: a backend against a reference backend
 */

/* The largest absolute logit difference, and that difference divided by the largest |reference|
 * logit (the scale of the distribution). NaN anywhere makes both NaN. */
void l2c_logits_diff(const float *reference, const float *test, int n, double *max_abs,
                     double *max_rel);

/* Runs both backends on the same tokens (the prompt, then the reference's greedy choices) for
 * steps positions from 0, printing per position the largest absolute and relative difference.
 * *worst gets the largest relative difference; L2C_ERR_DEVICE when it exceeds tolerance. */
l2c_status l2c_validate(l2c_backend *reference, l2c_backend *test, const int *prompt,
                        int n_prompt, int steps, double tolerance, FILE *out, double *worst);

/* ------------------------------------------------------------------------------------------------
 * generation and chat loops, as llama2.c's
 */

typedef struct {
    int    n_tokens;       /* positions run */
    int    n_prompt;       /* prompt tokens */
    double prompt_seconds; /* running the prompt through the model */
    double seconds;        /* from the first generated token to the last */
    double tokens_per_sec; /* decoding speed, llama2.c's "achieved tok/s" */
} l2c_generate_stats;

/* Generates up to steps positions (prompt included) from prompt (NULL or "" for none), writing
 * text to out exactly as llama2.c does. */
l2c_status l2c_generate(l2c_backend *backend, const l2c_tokenizer *tokenizer, l2c_sampler *sampler,
                        const char *prompt, int steps, FILE *out, l2c_generate_stats *stats);

/* Llama 2 chat with the [INST] <<SYS>> template. A NULL system_prompt or user_prompt is read from
 * in after a guide printed to out; the loop ends after steps positions or at the end of in. */
l2c_status l2c_chat(l2c_backend *backend, const l2c_tokenizer *tokenizer, l2c_sampler *sampler,
                    const char *user_prompt, const char *system_prompt, int steps, FILE *in,
                    FILE *out);

#ifdef __cplusplus
}
#endif

#endif /* LLAMA2CL_H */
