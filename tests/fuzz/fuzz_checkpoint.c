/*
 * fuzz_checkpoint.c - libFuzzer target: any bytes as a checkpoint file.
 *
 * l2c_model_load must either fail with one line naming the cause, or give a model whose every
 * tensor lies inside the file; then the CPU backend runs a two-token prompt and one more
 * position, so that a header the loader accepted but the forward pass cannot use shows up as an
 * out-of-bounds access. Models whose state would be large are only loaded, to keep each input
 * fast.
 */
#include "fuzz_common.h"

/* the CPU backend's per-model state (key/value cache, scores, RoPE tables) must stay below this */
#define MAX_STATE_BYTES (64u << 20)

/* bytes of state the CPU backend allocates for c, in double to stay clear of overflow */
static double state_bytes(const l2c_config *c) {
    double kv_dim = (double)c->dim / c->n_heads * c->n_kv_heads;
    double cache = 2.0 * c->n_layers * c->seq_len * kv_dim;
    double scores = (double)(c->n_heads + 64) * c->seq_len;
    double rope = (double)c->seq_len * (c->dim / c->n_heads);
    double batch = 64.0 * (4.0 * c->dim + 2.0 * c->hidden_dim);
    return 4.0 * (cache + scores + rope + batch + c->vocab_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);

    /* the loader: a model, or one line */
    l2c_model *model = NULL;
    l2c_status status = l2c_model_load(path, &model);
    fuzz_check_message(status);
    if (status != L2C_OK) {
        if (model) abort(); /* a failed load leaves no model */
        close(fd);
        return 0;
    }

    /* a prompt of two tokens at positions 0 and 1, then one token at position 2 */
    const l2c_config *c = l2c_model_config(model);
    l2c_backend *backend = NULL;
    if (state_bytes(c) <= MAX_STATE_BYTES &&
        (status = l2c_backend_cpu_create(model, &backend)) == L2C_OK) {
        int prompt[2] = {c->vocab_size > 1 ? 1 : 0, c->vocab_size - 1};
        int n_prompt = c->seq_len >= 2 ? 2 : 1;
        float *logits = NULL;
        status = l2c_backend_prefill(backend, prompt, n_prompt, 0, &logits);
        if (status == L2C_OK && c->seq_len > n_prompt) {
            status = l2c_backend_forward(backend, 0, n_prompt, &logits);
        }
        if (status != L2C_OK || !logits) abort(); /* valid tokens at valid positions must run */

        /* every logit is read, so that a short buffer is an error here */
        volatile float sum = 0.0f;
        for (int i = 0; i < c->vocab_size; i++) sum += logits[i];
        (void)sum;
    }
    fuzz_check_message(status);
    l2c_backend_free(backend);
    l2c_model_free(model);
    close(fd);
    return 0;
}
