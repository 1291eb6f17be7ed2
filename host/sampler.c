/*
 * sampler.c - picks the next token from the logits: greedy, multinomial, top-p (nucleus) and
 * top-k sampling.
 *
 * Without top-k the choices are exactly llama2.c's: the same xorshift generator, one coin per
 * sampled token, and the same float arithmetic in the same order, so a seeded run draws the same
 * tokens. Top-k is an extension; its semantics are stated at sample_topk below.
 */
#include <math.h>
#include <stdlib.h>

#include "internal.h"

/* ------------------------------------------------------------------------------------------------
 * types
 */

typedef struct {
    float prob;
    int   index;
} l2c_prob_index;

struct l2c_sampler {
    int                 vocab_size;
    float               temperature;
    float               topp;
    int                 topk;       /* 0 when disabled */
    unsigned long long  rng_state;
    l2c_prob_index     *candidates; /* vocab_size entries for top-p and top-k */
};

/* ------------------------------------------------------------------------------------------------
 * random numbers: xorshift64* (Marsaglia's xorshift, then a multiplication keeping the high half)
 */

static unsigned int random_u32(unsigned long long *state) {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (unsigned int)((*state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* in [0, 1): the top 24 bits of a random_u32 over 2^24 */
static float random_f32(unsigned long long *state) {
    return (float)(random_u32(state) >> 8) / 16777216.0f;
}

/* ------------------------------------------------------------------------------------------------
 * the distribution
 */

/* the first index of the largest value */
static int sample_argmax(const float *probabilities, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (probabilities[i] > probabilities[best]) best = i;
    }
    return best;
}

/* in place; the sum runs in index order as llama2.c's does */
static void softmax(float *x, int n) {

    /* the largest value, subtracted for stability */
    float max_val = x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] > max_val) max_val = x[i];
    }

    /* exponentials and their sum */
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max_val);
        sum += x[i];
    }

    /* normalisation */
    for (int i = 0; i < n; i++) x[i] /= sum;
}

/* ------------------------------------------------------------------------------------------------
 * the draw
 */

/* multinomial: the first index where the running sum of probabilities passes coin */
static int sample_mult(const float *probabilities, int n, float coin) {
    float cdf = 0.0f;
    for (int i = 0; i < n; i++) {
        cdf += probabilities[i];
        if (coin < cdf) return i;
    }
    return n - 1; /* rounding left the sum below coin */
}

/* descending probability; qsort's order among equal probabilities is llama2.c's, since both pass
 * the same array in the same order to the same qsort with this comparison */
static int compare_prob_desc(const void *a, const void *b) {
    const l2c_prob_index *x = a, *y = b;
    if (x->prob > y->prob) return -1;
    if (x->prob < y->prob) return 1;
    return 0;
}

/* Draws from the pool candidates[0 .. n - 1], sorted by descending probability: the shortest
 * prefix whose running sum exceeds topp (the whole pool when none does), then coin scaled by that
 * prefix's sum picks within it. */
static int draw_nucleus(const l2c_prob_index *candidates, int n, float topp, float coin) {

    /* the prefix */
    float cumulative_prob = 0.0f;
    int last = n - 1;
    for (int i = 0; i < n; i++) {
        cumulative_prob += candidates[i].prob;
        if (cumulative_prob > topp) {
            last = i;
            break;
        }
    }

    /* the draw within it */
    float r = coin * cumulative_prob;
    float cdf = 0.0f;
    for (int i = 0; i <= last; i++) {
        cdf += candidates[i].prob;
        if (r < cdf) return candidates[i].index;
    }
    return candidates[last].index; /* rounding left the sum below r */
}

/* Top-p as llama2.c: probabilities below (1 - topp) / (n - 1) cannot be in the nucleus and are
 * left out before sorting. When nothing passes that cutoff (a flat distribution with
 * topp < 1 / n, or n == 1), where llama2.c reads before its buffer, the most likely token is
 * taken: it alone is the smallest set whose probability exceeds topp. */
static int sample_topp(const float *probabilities, int n, float topp, l2c_prob_index *candidates,
                       float coin) {

    /* the candidates above the cutoff, sorted */
    const float cutoff = (1.0f - topp) / (float)(n - 1);
    int n0 = 0;
    for (int i = 0; i < n; i++) {
        if (probabilities[i] >= cutoff) {
            candidates[n0].index = i;
            candidates[n0].prob = probabilities[i];
            n0++;
        }
    }
    if (n0 == 0) return sample_argmax(probabilities, n);
    qsort(candidates, (size_t)n0, sizeof *candidates, compare_prob_desc);

    return draw_nucleus(candidates, n0, topp, coin);
}

/* rank order for top-k, a total order so that the result does not depend on the sort: higher
 * probability first, then lower index; NaN ranks last */
static int ranks_before(const l2c_prob_index *a, const l2c_prob_index *b) {
    float pa = isnan(a->prob) ? -INFINITY : a->prob;
    float pb = isnan(b->prob) ? -INFINITY : b->prob;
    if (pa != pb) return pa > pb;
    return a->index < b->index;
}

static int compare_rank(const void *a, const void *b) {
    if (ranks_before(a, b)) return -1;
    if (ranks_before(b, a)) return 1;
    return 0;
}

/* restores the heap below i, whose root is the candidate ranked last */
static void sift_down_worst(l2c_prob_index *heap, int n, int i) {
    for (;;) {
        int child = 2 * i + 1;
        if (child >= n) break;
        if (child + 1 < n && ranks_before(&heap[child], &heap[child + 1])) child++;
        if (!ranks_before(&heap[i], &heap[child])) break;
        l2c_prob_index tmp = heap[i];
        heap[i] = heap[child];
        heap[child] = tmp;
        i = child;
    }
}

/*
 * Top-k (with 0 < topk < n), then optionally top-p:
 *  1. rank the tokens by probability, higher first, equal probabilities by lower index, NaN last;
 *  2. keep the first topk and divide their probabilities by their sum (summed in rank order);
 *  3. with topp in (0, 1), keep the shortest prefix of them whose running sum of renormalised
 *     probabilities exceeds topp (all topk when none does); otherwise keep all topk;
 *  4. r = coin * (sum of the kept renormalised probabilities): the first kept token in rank order
 *     whose running sum exceeds r, or the last kept one when rounding leaves r unreached.
 * topk == 1 therefore always returns the first index of the highest probability.
 */
static int sample_topk(const float *probabilities, int n, int topk, float topp,
                       l2c_prob_index *candidates, float coin) {

    /* the topk best in a heap whose root is the worst of them */
    for (int i = 0; i < topk; i++) {
        candidates[i].index = i;
        candidates[i].prob = probabilities[i];
    }
    for (int i = topk / 2 - 1; i >= 0; i--) sift_down_worst(candidates, topk, i);
    for (int i = topk; i < n; i++) {
        l2c_prob_index c = { probabilities[i], i };
        if (ranks_before(&c, &candidates[0])) {
            candidates[0] = c;
            sift_down_worst(candidates, topk, 0);
        }
    }

    /* rank order, then renormalise */
    qsort(candidates, (size_t)topk, sizeof *candidates, compare_rank);
    float mass = 0.0f;
    for (int i = 0; i < topk; i++) mass += candidates[i].prob;
    for (int i = 0; i < topk; i++) candidates[i].prob /= mass;

    /* nucleus within the top-k, or all of them */
    float limit = (topp > 0.0f && topp < 1.0f) ? topp : INFINITY;
    return draw_nucleus(candidates, topk, limit, coin);
}

/* ------------------------------------------------------------------------------------------------
 * the sampler
 */

l2c_status l2c_sampler_create(int vocab_size, float temperature, float topp, int topk,
                              unsigned long long seed, l2c_sampler **sampler) {
    if (!sampler) return l2c_fail(L2C_ERR_ARG, "sampler: no output pointer");
    *sampler = NULL;
    if (vocab_size <= 0) {
        return l2c_fail(L2C_ERR_ARG, "sampler: vocab_size is %d, expected > 0", vocab_size);
    }
    if (!isfinite(temperature) || temperature < 0.0f) {
        return l2c_fail(L2C_ERR_ARG, "sampler: temperature is %g, expected a finite value >= 0",
                        (double)temperature);
    }
    if (isnan(topp)) return l2c_fail(L2C_ERR_ARG, "sampler: topp is NaN");

    l2c_sampler *s = calloc(1, sizeof *s);
    if (!s) return l2c_fail(L2C_ERR_NOMEM, "sampler: no memory");
    s->candidates = malloc((size_t)vocab_size * sizeof *s->candidates);
    if (!s->candidates) {
        free(s);
        return l2c_fail(L2C_ERR_NOMEM, "sampler: no memory for %d candidates", vocab_size);
    }
    s->vocab_size = vocab_size;
    s->temperature = temperature;
    s->topp = topp;
    s->topk = (topk > 0 && topk < vocab_size) ? topk : 0;
    s->rng_state = seed;
    *sampler = s;
    return L2C_OK;
}

void l2c_sampler_free(l2c_sampler *sampler) {
    if (!sampler) return;
    free(sampler->candidates);
    free(sampler);
}

/* Greedy decoding leaves logits unchanged; otherwise they end as the softmax probabilities
 * (before any top-k or top-p restriction). -1 when sampler or logits is NULL. */
int l2c_sampler_sample(l2c_sampler *sampler, float *logits) {
    if (!sampler || !logits) return -1;
    int n = sampler->vocab_size;

    /* greedy: the most likely token, no coin drawn */
    if (sampler->temperature == 0.0f) return sample_argmax(logits, n);

    /* temperature, then probabilities */
    for (int i = 0; i < n; i++) logits[i] /= sampler->temperature;
    softmax(logits, n);

    /* one coin per token, whatever the method */
    float coin = random_f32(&sampler->rng_state);

    /* top-k (then top-p), top-p, or the whole distribution */
    if (sampler->topk > 0) {
        return sample_topk(logits, n, sampler->topk, sampler->topp, sampler->candidates, coin);
    }
    if (sampler->topp <= 0.0f || sampler->topp >= 1.0f) return sample_mult(logits, n, coin);
    return sample_topp(logits, n, sampler->topp, sampler->candidates, coin);
}
