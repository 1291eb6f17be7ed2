/*
 * backend.c - the calls every backend answers, dispatched through its ops.
 */
#include "internal.h"

void l2c_backend_free(l2c_backend *backend) {
    if (backend) backend->ops->destroy(backend);
}

const char *l2c_backend_describe(const l2c_backend *backend) {
    return backend->description;
}

l2c_status l2c_backend_forward(l2c_backend *backend, int token, int pos, float **logits) {
    return backend->ops->forward(backend, token, pos, logits);
}

l2c_status l2c_backend_prefill(l2c_backend *backend, const int *tokens, int n_tokens, int pos,
                               float **logits) {
    const l2c_config *c = &backend->model->config;
    if (n_tokens < 1 || pos < 0 || n_tokens > c->seq_len - pos) {
        return l2c_fail(L2C_ERR_ARG, "%d prompt tokens at position %d do not fit the context "
                        "of %d", n_tokens, pos, c->seq_len);
    }
    if (backend->ops->prefill) {
        return backend->ops->prefill(backend, tokens, n_tokens, pos, logits);
    }
    for (int i = 0; i < n_tokens; i++) {
        l2c_status s = backend->ops->forward(backend, tokens[i], pos + i, logits);
        if (s != L2C_OK) return s;
    }
    return L2C_OK;
}

void l2c_backend_report(const l2c_backend *backend, FILE *out) {
    if (backend->ops->report) backend->ops->report(backend, out);
}
