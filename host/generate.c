/*
 * generate.c - the generation and chat loops, as llama2.c runs them.
 *
 * Both loops only ask the backend for logits; they never know which backend they drive.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Encodes text into a fresh array (BOS first); *tokens is malloc'd. */
static l2c_status encode_alloc(const l2c_tokenizer *tokenizer, const char *text, int **tokens,
                               int *n_tokens) {
    size_t max_tokens = strlen(text) + 3;
    if (max_tokens > (size_t)1 << 30) {
        return l2c_fail(L2C_ERR_ARG, "prompt of %zu bytes is too long", strlen(text));
    }
    *tokens = malloc(max_tokens * sizeof(int));
    if (!*tokens) return l2c_fail(L2C_ERR_NOMEM, "out of memory for the prompt's tokens");
    l2c_status s = l2c_tokenizer_encode(tokenizer, text, 1, 0, *tokens, (int)max_tokens,
                                        n_tokens);
    if (s != L2C_OK) {
        free(*tokens);
        *tokens = NULL;
    }
    return s;
}

static void print_token(FILE *out, const l2c_tokenizer *tokenizer, int prev, int token) {
    l2c_print_piece(out, l2c_tokenizer_decode(tokenizer, prev, token));
    fflush(out);
}

/* ------------------------------------------------------------------------------------------------
 * generation
 */

l2c_status l2c_generate(l2c_backend *backend, const l2c_tokenizer *tokenizer, l2c_sampler *sampler,
                        const char *prompt, int steps, FILE *out, l2c_generate_stats *stats) {
    const l2c_config *c = &backend->model->config;
    l2c_status s;
    int *prompt_tokens = NULL;
    int n_prompt = 0;
    float *logits = NULL;

    if (steps < 1 || steps > c->seq_len) {
        return l2c_fail(L2C_ERR_ARG, "steps %d is outside 1 to seq_len %d", steps, c->seq_len);
    }
    if ((s = encode_alloc(tokenizer, prompt ? prompt : "", &prompt_tokens, &n_prompt))) {
        return s;
    }
    if (n_prompt > c->seq_len) {
        free(prompt_tokens);
        return l2c_fail(L2C_ERR_ARG, "the prompt is %d tokens, longer than the model's context "
                        "of %d", n_prompt, c->seq_len);
    }

    /* the prompt: each token after the first is echoed as it is fed, and a run shorter than the
     * prompt stops inside it, as llama2.c does */
    int echoed = n_prompt - 1 < steps ? n_prompt - 1 : steps;
    for (int i = 1; i <= echoed; i++) {
        print_token(out, tokenizer, prompt_tokens[i - 1], prompt_tokens[i]);
    }
    int pos = 0;
    double start = now_seconds(), first = start;
    int generated = 0;
    if (steps >= n_prompt) {
        s = l2c_backend_prefill(backend, prompt_tokens, n_prompt, 0, &logits);
        pos = n_prompt;
        first = now_seconds();

        /* then sample, print and feed back until steps positions or BOS */
        int token = prompt_tokens[n_prompt - 1];
        while (s == L2C_OK) {
            int next = l2c_sampler_sample(sampler, logits);
            if (next == L2C_TOKEN_BOS) break;
            print_token(out, tokenizer, token, next);
            token = next;
            generated++;
            if (pos >= steps) break;
            s = l2c_backend_forward(backend, token, pos, &logits);
            pos++;
        }
    } else {
        pos = steps;
    }
    fprintf(out, "\n");
    fflush(out);
    free(prompt_tokens);

    /* llama2.c's "achieved tok/s" counts positions after the first; here the first is the
     * whole prompt, so the rate is that of decoding */
    double end = now_seconds();
    if (stats) {
        stats->n_tokens = pos;
        stats->n_prompt = n_prompt;
        stats->seconds = end - first;
        stats->tokens_per_sec = generated > 1 && end > first ? (generated - 1) / (end - first)
                                                             : 0.0;
        stats->prompt_seconds = first - start;
    }
    return s;
}

/* ------------------------------------------------------------------------------------------------
 * chat
 */

/* Prints guide, reads one line from in without its newline; NULL at the end of in. */
static char *read_line(FILE *in, FILE *out, const char *guide) {
    fprintf(out, "%s", guide);
    fflush(out);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, in);
    if (n < 0) {
        free(line);
        return NULL;
    }
    if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
    return line;
}

/* The turn's text in Llama 2's chat template; the system prompt only on the first turn. */
static char *render_turn(const char *system_prompt, const char *user_prompt) {
    const char *with_system = "[INST] <<SYS>>\n%s\n<</SYS>>\n\n%s [/INST]";
    const char *plain = "[INST] %s [/INST]";
    char *text = NULL;
    int n = system_prompt && system_prompt[0]
          ? asprintf(&text, with_system, system_prompt, user_prompt)
          : asprintf(&text, plain, user_prompt);
    return n < 0 ? NULL : text;
}

l2c_status l2c_chat(l2c_backend *backend, const l2c_tokenizer *tokenizer, l2c_sampler *sampler,
                    const char *user_prompt, const char *system_prompt, int steps, FILE *in,
                    FILE *out) {
    const l2c_config *c = &backend->model->config;
    l2c_status s = L2C_OK;
    char *system_text = NULL;
    int *prompt_tokens = NULL;
    int n_prompt = 0, user_idx = 0;
    int user_turn = 1;
    int next = 0, token;
    int pos = 0;
    float *logits;

    if (steps < 1 || steps > c->seq_len) {
        return l2c_fail(L2C_ERR_ARG, "steps %d is outside 1 to seq_len %d", steps, c->seq_len);
    }
    while (pos < steps) {

        /* the user's turn: read it, render the template, encode with BOS */
        if (user_turn) {
            if (pos == 0) {
                const char *guide = "Enter system prompt (optional): ";
                system_text = system_prompt ? strdup(system_prompt) : read_line(in, out, guide);
                if (!system_text) system_text = strdup("");
            }
            char *user_text = pos == 0 && user_prompt ? strdup(user_prompt)
                                                      : read_line(in, out, "User: ");
            if (!user_text) break; /* end of input */
            char *rendered = render_turn(pos == 0 ? system_text : NULL, user_text);
            free(user_text);
            free(prompt_tokens);
            prompt_tokens = NULL;
            if (!rendered) {
                s = l2c_fail(L2C_ERR_NOMEM, "out of memory for the chat turn");
                break;
            }
            s = encode_alloc(tokenizer, rendered, &prompt_tokens, &n_prompt);
            free(rendered);
            if (s != L2C_OK) break;
            user_idx = 0;
            user_turn = 0;
            fprintf(out, "Assistant: ");
            fflush(out);
        }

        /* feed the prompt's tokens, then the model's own; EOS hands the turn back */
        token = user_idx < n_prompt ? prompt_tokens[user_idx++] : next;
        if (token == L2C_TOKEN_EOS) user_turn = 1;
        if ((s = l2c_backend_forward(backend, token, pos, &logits))) break;
        next = l2c_sampler_sample(sampler, logits);
        pos++;

        if (user_idx >= n_prompt && next != L2C_TOKEN_EOS) {
            print_token(out, tokenizer, token, next);
        }
        if (next == L2C_TOKEN_EOS) fprintf(out, "\n");
    }
    fprintf(out, "\n");
    fflush(out);
    free(system_text);
    free(prompt_tokens);
    return s;
}
