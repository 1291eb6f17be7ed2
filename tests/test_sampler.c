/*
 * test_sampler.c - the sampler draws exactly llama2.c's tokens for a seed, and its greedy, top-k
 * and top-p choices follow from the probabilities as computed by hand here.
 */
#include "check.h"
#include "llama2cl.h"

/* the fixed logits of the reference runs: distinct values in [-5, 5.08] (1009 is prime) */
static void reference_logits(float *logits, int n) {
    for (int i = 0; i < n; i++) logits[i] = (float)((i * 7919) % 1009) / 100.0f - 5.0f;
}

/* ------------------------------------------------------------------------------------------------
 * seeded runs against llama2.c
 */

typedef struct {
    int                vocab_size;
    float              temperature;
    float              topp;
    unsigned long long seed;
    int                draws[16];
} reference_run;

/*
 * llama2.c run.c's outputs (karpathy/llama2.c, built under /tmp as a harness that includes run.c
 * with its main renamed): build_sampler(&s, vocab_size, temperature, topp, seed), then 16 times
 * sample(&s, logits) with logits refilled by reference_logits() before each call:
 *   harness samp <vocab_size> <temperature> <topp> <seed> 16
 * Seed 0 leaves xorshift at 0, so every coin is 0 and the most likely token (277) comes out.
 */
static const reference_run reference_runs[] = {
    { 32, 0.0f, 0.0f, 42, { 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20 } },
    { 32, 0.0f, 0.0f, 1234, { 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20 } },
    { 32, 0.5f, 0.0f, 42, { 14, 20, 20, 27, 20, 20, 7, 20, 8, 20, 20, 14, 27, 7, 7, 20 } },
    { 32, 0.5f, 0.0f, 1234, { 20, 8, 20, 14, 27, 7, 20, 1, 14, 20, 14, 20, 7, 20, 20, 27 } },
    { 32, 0.5f, 0.9f, 42, { 20, 27, 27, 14, 7, 27, 20, 20, 20, 7, 20, 20, 27, 20, 20, 7 } },
    { 32, 0.5f, 0.9f, 1234, { 7, 20, 20, 20, 14, 20, 20, 20, 20, 20, 20, 7, 20, 27, 7, 27 } },
    { 32, 0.5f, 0.5f, 42, { 20, 7, 7, 7, 7, 7, 20, 20, 20, 7, 20, 20, 7, 20, 20, 20 } },
    { 32, 0.5f, 0.5f, 1234, { 7, 20, 20, 20, 7, 20, 20, 20, 20, 20, 20, 7, 20, 7, 20, 7 } },
    { 32, 1.0f, 0.0f, 42, { 8, 21, 21, 27, 21, 27, 7, 14, 8, 20, 14, 9, 27, 7, 1, 20 } },
    { 32, 1.0f, 0.0f, 1234, { 20, 8, 14, 8, 28, 7, 15, 1, 14, 14, 8, 20, 7, 27, 20, 27 } },
    { 32, 1.0f, 0.9f, 42, { 7, 1, 1, 8, 14, 1, 20, 7, 7, 14, 7, 7, 21, 20, 20, 27 } },
    { 32, 1.0f, 0.9f, 1234, { 14, 7, 7, 7, 28, 20, 7, 20, 7, 7, 7, 14, 20, 1, 27, 21 } },
    { 32, 1.0f, 0.5f, 42, { 20, 27, 27, 27, 7, 27, 20, 7, 20, 7, 20, 20, 27, 20, 20, 7 } },
    { 32, 1.0f, 0.5f, 1234, { 7, 20, 20, 20, 27, 20, 7, 20, 20, 7, 20, 7, 20, 27, 7, 27 } },
    { 32, 1.5f, 0.0f, 42, { 9, 22, 22, 28, 21, 27, 7, 14, 8, 20, 14, 9, 27, 7, 1, 20 } },
    { 32, 1.5f, 0.0f, 1234, { 21, 8, 14, 8, 29, 7, 15, 1, 10, 14, 9, 20, 7, 27, 20, 27 } },
    { 32, 1.5f, 0.9f, 42, { 7, 8, 8, 2, 21, 28, 7, 27, 7, 1, 27, 7, 28, 20, 20, 1 } },
    { 32, 1.5f, 0.9f, 1234, { 21, 7, 27, 7, 9, 20, 27, 20, 7, 27, 7, 1, 7, 8, 14, 15 } },
    { 32, 1.5f, 0.5f, 42, { 7, 27, 27, 14, 27, 14, 20, 7, 20, 27, 7, 7, 14, 20, 20, 27 } },
    { 32, 1.5f, 0.5f, 1234, { 27, 20, 7, 20, 14, 20, 7, 20, 7, 7, 7, 27, 20, 14, 27, 14 } },
    { 512, 0.0f, 0.0f, 42, { 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277,
      277, 277 } },
    { 512, 0.0f, 0.0f, 1234, { 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277,
      277, 277 } },
    { 512, 0.5f, 0.0f, 42, { 165, 383, 390, 475, 376, 409, 99, 225, 139, 332, 212, 165, 442, 86, 33,
      310 } },
    { 512, 0.5f, 0.0f, 1234, { 363, 139, 198, 152, 508, 80, 238, 20, 165, 231, 165, 330, 120, 409,
      310, 462 } },
    { 512, 0.5f, 0.9f, 42, { 165, 7, 7, 304, 495, 73, 99, 475, 409, 396, 475, 165, 139, 343, 33,
      86 } },
    { 512, 0.5f, 0.9f, 1234, { 462, 409, 198, 409, 403, 343, 508, 277, 165, 231, 165, 119, 376, 317,
      86, 482 } },
    { 512, 0.5f, 0.5f, 42, { 343, 475, 231, 20, 475, 508, 310, 376, 343, 442, 376, 343, 508, 310,
      277, 165 } },
    { 512, 0.5f, 0.5f, 1234, { 198, 343, 99, 343, 297, 310, 376, 277, 99, 376, 343, 442, 66, 231,
      165, 264 } },
    { 512, 1.0f, 0.0f, 42, { 165, 396, 396, 482, 383, 423, 99, 225, 152, 343, 218, 165, 442, 93, 33,
      310 } },
    { 512, 1.0f, 0.0f, 1234, { 370, 152, 205, 160, 502, 86, 238, 20, 173, 231, 165, 330, 132, 416,
      310, 469 } },
    { 512, 1.0f, 0.9f, 42, { 53, 14, 291, 331, 225, 423, 442, 429, 20, 27, 152, 53, 34, 165, 66,
      416 } },
    { 512, 1.0f, 0.9f, 1234, { 159, 20, 396, 297, 8, 409, 218, 33, 330, 185, 53, 238, 231, 390, 416,
      199 } },
    { 512, 1.0f, 0.5f, 42, { 165, 429, 185, 40, 152, 218, 99, 475, 409, 363, 475, 165, 495, 99, 33,
      53 } },
    { 512, 1.0f, 0.5f, 1234, { 396, 409, 198, 165, 317, 343, 231, 277, 442, 231, 165, 86, 132, 462,
      53, 7 } },
    { 512, 1.5f, 0.0f, 42, { 166, 396, 399, 482, 384, 423, 99, 225, 152, 343, 218, 167, 443, 93, 34,
      310 } },
    { 512, 1.5f, 0.0f, 1234, { 372, 152, 205, 165, 502, 86, 238, 20, 179, 231, 166, 331, 132, 416,
      310, 469 } },
    { 512, 1.5f, 0.9f, 42, { 462, 265, 21, 81, 199, 219, 264, 383, 152, 423, 350, 462, 417, 508, 99,
      258 } },
    { 512, 1.5f, 0.9f, 1234, { 344, 152, 73, 185, 134, 231, 449, 310, 495, 416, 462, 113, 86, 430,
      502, 160 } },
    { 512, 1.5f, 0.5f, 42, { 508, 106, 383, 304, 350, 172, 409, 330, 475, 7, 53, 508, 205, 132, 310,
      462 } },
    { 512, 1.5f, 0.5f, 1234, { 73, 475, 297, 231, 93, 132, 86, 33, 264, 330, 508, 251, 442, 416,
      462, 271 } },
    { 512, 1.0f, 0.95f, 0, { 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277, 277,
      277, 277 } },
    { 512, 2.0f, 1.0f, 7, { 416, 475, 42, 53, 188, 205, 436, 86, 185, 403, 344, 370, 330, 462, 63,
      166 } },
};

static void test_reference_runs(void) {
    int n_runs = (int)(sizeof reference_runs / sizeof reference_runs[0]);
    for (int r = 0; r < n_runs; r++) {
        const reference_run *ref = &reference_runs[r];

        /* top-k off in three ways: 0, negative, not below vocab_size */
        const int topks[3] = { 0, -1, ref->vocab_size };
        for (int k = 0; k < 3; k++) {
            l2c_sampler *sampler = NULL;
            CHECK_OK(l2c_sampler_create(ref->vocab_size, ref->temperature, ref->topp, topks[k],
                                        ref->seed, &sampler));
            if (!sampler) continue;
            float logits[512];
            for (int d = 0; d < 16; d++) {
                reference_logits(logits, ref->vocab_size);
                int token = l2c_sampler_sample(sampler, logits);
                if (token != ref->draws[d]) {
                    fprintf(stderr, "run %d (vocab %d, temperature %g, topp %g, seed %llu, topk "
                            "%d): draw %d is %d, llama2.c drew %d\n", r, ref->vocab_size,
                            (double)ref->temperature, (double)ref->topp, ref->seed, topks[k], d,
                            token, ref->draws[d]);
                    check_failures++;
                    break;
                }
            }
            l2c_sampler_free(sampler);
        }
    }
}

/* ------------------------------------------------------------------------------------------------
 * the generator, computed by hand
 */

/* xorshift64* as defined by Vigna (Marsaglia's shifts 12, 25, 27, then the high half of the
 * product with 2685821657736338717), written out here independently of the library */
static unsigned int hand_u32(unsigned long long *state) {
    unsigned long long x = *state;
    x = x ^ (x >> 12);
    x = x ^ (x << 25);
    x = x ^ (x >> 27);
    *state = x;
    return (unsigned int)((x * 2685821657736338717ull) >> 32);
}

static float hand_coin(unsigned long long *state) {
    return (float)(hand_u32(state) >> 8) * (1.0f / 16777216.0f);
}

/* Over 256 equal logits every probability is exactly 1/256 and every running sum exact, so the
 * multinomial draw is floor(coin * 256), the top byte of the generator's output. */
static void test_generator(void) {

    /* seed 42's first outputs, computed with Python's integers */
    const unsigned int seed42[5] = { 1456360119u, 3359763283u, 3393612768u, 4054632243u,
                                     3283045847u };
    unsigned long long state = 42;
    for (int i = 0; i < 5; i++) CHECK_INT(hand_u32(&state), seed42[i]);

    /* the sampler's draws are their top bytes: 86, 200, 202, 241, 195, ... */
    l2c_sampler *sampler = NULL;
    CHECK_OK(l2c_sampler_create(256, 1.0f, 0.0f, 0, 42, &sampler));
    if (!sampler) return;
    state = 42;
    for (int i = 0; i < 64; i++) {
        float logits[256] = { 0 };
        unsigned int want = hand_u32(&state) >> 24;
        if (i < 5) CHECK_INT(want, seed42[i] >> 24);
        CHECK_INT(l2c_sampler_sample(sampler, logits), want);
        CHECK_NEAR(logits[17], 1.0 / 256, 0.0);
    }
    l2c_sampler_free(sampler);
}

/* ------------------------------------------------------------------------------------------------
 * greedy, top-k, top-p and the probabilities
 */

static void test_greedy(void) {
    l2c_sampler *sampler = NULL;
    CHECK_OK(l2c_sampler_create(6, 0.0f, 0.9f, 3, 42, &sampler));
    if (!sampler) return;

    /* the first of two equal maxima, and the logits left as they were */
    float logits[6] = { -1.0f, 2.5f, 0.0f, 2.5f, -7.0f, 1.0f };
    CHECK_INT(l2c_sampler_sample(sampler, logits), 1);
    CHECK_NEAR(logits[3], 2.5, 0.0);
    float last[6] = { -1.0f, 0.0f, 0.0f, 0.0f, -7.0f, 9.0f };
    CHECK_INT(l2c_sampler_sample(sampler, last), 5);
    float negative[6] = { -3.0f, -2.0f, -4.0f, -2.5f, -9.0f, -2.01f };
    CHECK_INT(l2c_sampler_sample(sampler, negative), 1);
    l2c_sampler_free(sampler);
}

/* softmax of logits / temperature: sums to 1, ratios are exp of differences (float exp and sum
 * over 32 values: 1e-5 relative is generous) */
static void test_probabilities(void) {
    l2c_sampler *sampler = NULL;
    CHECK_OK(l2c_sampler_create(32, 0.5f, 0.0f, 0, 7, &sampler));
    if (!sampler) return;
    float logits[32], original[32];
    reference_logits(original, 32);
    memcpy(logits, original, sizeof logits);
    l2c_sampler_sample(sampler, logits);
    double sum = 0;
    for (int i = 0; i < 32; i++) sum += logits[i];
    CHECK_NEAR(sum, 1.0, 1e-5);
    for (int i = 1; i < 32; i++) {
        double want = exp((original[i] - original[0]) / 0.5);
        CHECK_NEAR(logits[i] / logits[0] / want, 1.0, 1e-5);
    }
    l2c_sampler_free(sampler);
}

/* top-k 1 is argmax whatever the temperature, top-p or seed: of the 512 reference logits the
 * largest is at 277, where (277 * 7919) % 1009 = 1006 */
static void test_topk_one(void) {
    const float temperatures[3] = { 0.3f, 1.0f, 3.0f };
    const float topps[3] = { 0.0f, 0.5f, 0.99f };
    for (int t = 0; t < 3; t++) {
        for (int p = 0; p < 3; p++) {
            l2c_sampler *sampler = NULL;
            CHECK_OK(l2c_sampler_create(512, temperatures[t], topps[p], 1, 1000 + t * 3 + p,
                                        &sampler));
            if (!sampler) continue;
            for (int d = 0; d < 50; d++) {
                float logits[512];
                reference_logits(logits, 512);
                CHECK_INT(l2c_sampler_sample(sampler, logits), 277);
            }
            l2c_sampler_free(sampler);
        }
    }
}

/* top-k 5 of the 512 reference logits only ever draws the 5 largest, and draws all of them */
static void test_topk_set(void) {

    /* the five largest logits, by scanning */
    float base[512];
    reference_logits(base, 512);
    int top[5];
    for (int k = 0; k < 5; k++) {
        int best = -1;
        for (int i = 0; i < 512; i++) {
            int taken = 0;
            for (int j = 0; j < k; j++) taken |= top[j] == i;
            if (!taken && (best < 0 || base[i] > base[best])) best = i;
        }
        top[k] = best;
    }

    /* at temperature 10 the distribution is nearly flat, so the cut is what limits the draws */
    l2c_sampler *sampler = NULL;
    CHECK_OK(l2c_sampler_create(512, 10.0f, 0.0f, 5, 99, &sampler));
    if (!sampler) return;
    int seen[5] = { 0 };
    for (int d = 0; d < 500; d++) {
        float logits[512];
        memcpy(logits, base, sizeof logits);
        int token = l2c_sampler_sample(sampler, logits);
        int in_top = 0;
        for (int k = 0; k < 5; k++) {
            if (token == top[k]) {
                in_top = 1;
                seen[k]++;
            }
        }
        CHECK(in_top);
    }
    for (int k = 0; k < 5; k++) CHECK(seen[k] > 50);
    l2c_sampler_free(sampler);
}

/*
 * logits { 1, 3, 2, 0 } at temperature 1 rank tokens 1, 2, 0, 3 with probabilities proportional
 * to e^3, e^2, e^1, e^0. Each draw is predicted from the hand-computed coin:
 *   top-k 2:             token 1 when coin < e^3 / (e^3 + e^2) = 0.731059, else token 2;
 *   top-k 3, top-p 0.95: the renormalised 0.665241, 0.244728, 0.090031 sum past 0.95 only with
 *                        all three: token 1 below 0.665241, token 2 below 0.909969, else 0;
 *   top-k 3, top-p 0.6:  0.665241 alone passes 0.6: always token 1;
 *   top-k 2, top-p 0.7:  0.731059 alone passes 0.7 (top-p applies to the renormalised top-k;
 *                        before renormalisation it would be 0.643914): always token 1.
 * A coin within 1e-5 of a boundary would make the prediction depend on rounding: none occurs for
 * these seeds, which the test asserts.
 */
static int predict(float coin, const double *bounds, const int *tokens, int n) {
    for (int i = 0; i < n; i++) {
        CHECK(fabs(coin - bounds[i]) > 1e-5);
        if (coin < bounds[i]) return tokens[i];
    }
    return tokens[n];
}

static void test_topk_predicted(void) {
    const struct {
        int    topk;
        float  topp;
        int    n_bounds;
        double bounds[2];
        int    tokens[3];
    } cases[] = {
        { 2, 0.0f,  1, { 0.731059, 0 },        { 1, 2 } },
        { 3, 0.95f, 2, { 0.665241, 0.909969 }, { 1, 2, 0 } },
        { 3, 0.6f,  0, { 0, 0 },               { 1 } },
        { 2, 0.7f,  0, { 0, 0 },               { 1 } },
    };
    for (int c = 0; c < (int)(sizeof cases / sizeof cases[0]); c++) {
        l2c_sampler *sampler = NULL;
        CHECK_OK(l2c_sampler_create(4, 1.0f, cases[c].topp, cases[c].topk, 42 + c, &sampler));
        if (!sampler) continue;
        unsigned long long state = 42 + c;
        int counts[4] = { 0 };
        for (int d = 0; d < 200; d++) {
            float logits[4] = { 1.0f, 3.0f, 2.0f, 0.0f };
            int want = predict(hand_coin(&state), cases[c].bounds, cases[c].tokens,
                               cases[c].n_bounds);
            int token = l2c_sampler_sample(sampler, logits);
            CHECK_INT(token, want);
            if (token >= 0 && token < 4) counts[token]++;
        }
        CHECK_INT(counts[3], 0);
        l2c_sampler_free(sampler);
    }
}

/* top-k breaks ties in probability by the lower index */
static void test_topk_ties(void) {
    l2c_sampler *first = NULL, *pair = NULL;
    CHECK_OK(l2c_sampler_create(4, 1.0f, 0.0f, 1, 11, &first));
    CHECK_OK(l2c_sampler_create(4, 1.0f, 0.0f, 2, 12, &pair));
    if (!first || !pair) return;
    int counts[4] = { 0 };
    for (int d = 0; d < 100; d++) {
        float logits[4] = { 0.0f, 5.0f, 1.0f, 5.0f };
        CHECK_INT(l2c_sampler_sample(first, logits), 1);
        float three[4] = { 5.0f, 0.0f, 5.0f, 5.0f };
        int token = l2c_sampler_sample(pair, three);
        if (token >= 0 && token < 4) counts[token]++;
    }
    CHECK(counts[0] > 20 && counts[2] > 20);
    CHECK_INT(counts[1] + counts[3], 0);
    l2c_sampler_free(first);
    l2c_sampler_free(pair);
}

/* Where llama2.c's cutoff (1 - topp) / (n - 1) leaves no candidate (a flat distribution with
 * topp < 1 / n, or a single token), the nucleus is the most likely token: the first. */
static void test_topp_edges(void) {
    l2c_sampler *sampler = NULL;
    CHECK_OK(l2c_sampler_create(8, 1.0f, 0.05f, 0, 5, &sampler));
    if (sampler) {
        for (int d = 0; d < 10; d++) {
            float flat[8] = { 0 };
            CHECK_INT(l2c_sampler_sample(sampler, flat), 0);
        }
        l2c_sampler_free(sampler);
    }
    sampler = NULL;
    CHECK_OK(l2c_sampler_create(1, 0.8f, 0.9f, 0, 5, &sampler));
    if (sampler) {
        float one = 3.0f;
        CHECK_INT(l2c_sampler_sample(sampler, &one), 0);
        CHECK_NEAR(one, 1.0, 0.0);
        l2c_sampler_free(sampler);
    }
}

static void test_arguments(void) {
    l2c_sampler *sampler = (l2c_sampler *)&sampler; /* must come back NULL */
    CHECK_INT(l2c_sampler_create(0, 1.0f, 0.9f, 0, 1, &sampler), L2C_ERR_ARG);
    CHECK(sampler == NULL);
    CHECK(strstr(l2c_last_error(), "vocab_size") != NULL);
    CHECK_INT(l2c_sampler_create(-5, 1.0f, 0.9f, 0, 1, &sampler), L2C_ERR_ARG);
    CHECK_INT(l2c_sampler_create(10, -0.1f, 0.9f, 0, 1, &sampler), L2C_ERR_ARG);
    CHECK(strstr(l2c_last_error(), "temperature") != NULL);
    CHECK_INT(l2c_sampler_create(10, NAN, 0.9f, 0, 1, &sampler), L2C_ERR_ARG);
    CHECK_INT(l2c_sampler_create(10, INFINITY, 0.9f, 0, 1, &sampler), L2C_ERR_ARG);
    CHECK_INT(l2c_sampler_create(10, 1.0f, NAN, 0, 1, &sampler), L2C_ERR_ARG);
    CHECK(strstr(l2c_last_error(), "topp") != NULL);
    CHECK_INT(l2c_sampler_create(10, 1.0f, 0.9f, 0, 1, NULL), L2C_ERR_ARG);
    CHECK(sampler == NULL);

    /* sampling without a sampler or logits */
    CHECK_OK(l2c_sampler_create(10, 1.0f, 0.9f, 0, 1, &sampler));
    CHECK_INT(l2c_sampler_sample(sampler, NULL), -1);
    CHECK_INT(l2c_sampler_sample(NULL, NULL), -1);
    l2c_sampler_free(sampler);
    l2c_sampler_free(NULL);
}

int main(void) {
    test_reference_runs();
    test_generator();
    test_greedy();
    test_probabilities();
    test_topk_one();
    test_topk_set();
    test_topk_predicted();
    test_topk_ties();
    test_topp_edges();
    test_arguments();
    return check_report("test_sampler");
}
