/*
 * validate.c - runs a backend beside a reference backend on the same tokens and compares their
 * logits position by position.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Largest absolute difference, and that difference relative to the largest |reference logit|:
 * logits are compared on the scale of the distribution, since a logit near zero has no
 * meaningful relative error of its own. */
void l2c_logits_diff(const float *reference, const float *test, int n, double *max_abs,
                     double *max_rel) {
    double diff = 0.0, scale = 0.0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)reference[i] - (double)test[i]);
        if (!(d <= diff)) diff = d; /* a NaN makes the difference NaN */
        double a = fabs((double)reference[i]);
        if (a > scale) scale = a;
    }
    *max_abs = diff;
    *max_rel = scale > 0.0 ? diff / scale : diff;
}

l2c_status l2c_validate(l2c_backend *reference, l2c_backend *test, const int *prompt,
                        int n_prompt, int steps, double tolerance, FILE *out, double *worst) {
    const l2c_config *c = &reference->model->config;
    int vocab_size = c->vocab_size;
    float *ref_copy = malloc(vocab_size * sizeof(float));
    if (!ref_copy) return l2c_fail(L2C_ERR_NOMEM, "out of memory for the reference logits");
    if (steps > c->seq_len) steps = c->seq_len;

    l2c_status s = L2C_OK;
    int token = prompt[0];
    int failures = 0;
    *worst = 0.0;
    fprintf(out, "%5s %8s %14s %14s %s\n", "pos", "token", "max_abs_diff", "max_rel_diff",
            "verdict");
    for (int pos = 0; pos < steps; pos++) {
        float *ref_logits, *test_logits;

        /* both backends take the same token at the same position */
        if ((s = l2c_backend_forward(reference, token, pos, &ref_logits))) break;
        memcpy(ref_copy, ref_logits, vocab_size * sizeof(float));
        if ((s = l2c_backend_forward(test, token, pos, &test_logits))) break;

        double max_abs, max_rel;
        l2c_logits_diff(ref_copy, test_logits, vocab_size, &max_abs, &max_rel);
        int ok = max_rel <= tolerance;
        failures += !ok;
        if (!(max_rel <= *worst)) *worst = max_rel;
        fprintf(out, "%5d %8d %14.3e %14.3e %s\n", pos, token, max_abs, max_rel,
                ok ? "ok" : "FAIL");

        /* the next token: the prompt's, then the reference's greedy choice */
        if (pos + 1 < n_prompt) {
            token = prompt[pos + 1];
        } else {
            int best = 0;
            for (int i = 1; i < vocab_size; i++) {
                if (ref_copy[i] > ref_copy[best]) best = i;
            }
            token = best;
        }
    }
    free(ref_copy);
    if (s == L2C_OK && failures) {
        s = l2c_fail(L2C_ERR_DEVICE, "%s differs from %s at %d position(s): largest relative "
                     "logit difference %.3e, tolerance %.1e", test->description,
                     reference->description, failures, *worst, tolerance);
    }
    return s;
}
