/*
 * test_golden.c - the command line prints exactly llama2.c's text on the real stories260K model:
 * greedy (llama2.c's published sample) and seeded sampling (outputs of llama2.c's run.c recorded
 * in tests/golden), from both fp32 formats.
 *
 * Usage: test_golden ["--cpu" | "--device N"]; without an argument, --cpu. With a device and
 * no OpenCL device present, it reports skipped.
 */
#include "check.h"

typedef struct {
    const char *golden; /* file in tests/golden, or NULL for the published greedy sample */
    const char *args;   /* llama2.c's flags that produced it */
    const char *stdin_text;
} golden_case;

static const golden_case cases[] = {
    {NULL, "-t 0 -n 256", NULL},
    {"stories260K.t0.8-p0.9-s42.txt", "-t 0.8 -p 0.9 -s 42 -n 256", NULL},
    {"stories260K.t1-p0-s7-once.txt", "-t 1.0 -p 0 -s 7 -n 200 -i 'Once upon a time'", NULL},
    {"stories260K.greedy-lily.txt", "-t 0 -n 64 -i 'Lily and Tom went to the'", NULL},
    {"stories260K.t1.2-p0.95-s1234-n512.txt", "-t 1.2 -p 0.95 -s 1234 -n 512", NULL},
    {"stories260K.chat-s5.txt", "-m chat -y 'You are kind' -t 0.9 -s 5 -n 200",
     "Tell me a story\n"},
};

/* runq.c's output on the version-2 file quantized with group size 4 */
static const golden_case q8_cases[] = {
    {"stories260K.q8-gs4.greedy.txt", "-t 0 -n 256", NULL},
    {"stories260K.q8-gs4.t0.8-p0.9-s42.txt", "-t 0.8 -p 0.9 -s 42 -n 256", NULL},
};

static void expect_output(const char *backend, const char *checkpoint, const golden_case *gc) {
    char expected_path[8192], cmd[16384];
    if (gc->golden) {
        snprintf(expected_path, sizeof expected_path, "%s/golden/%s", L2C_TESTS_DIR, gc->golden);
    } else {
        snprintf(expected_path, sizeof expected_path, "%s",
                 check_model_path("stories260K.greedy.txt"));
    }
    char *expected = check_read_file(expected_path, NULL);
    CHECK(expected != NULL);
    if (!expected) return;

    const char *tokenizer = check_model_path("tok512.bin");
    char tok[4096];
    snprintf(tok, sizeof tok, "%s", tokenizer);
    snprintf(cmd, sizeof cmd, "printf '%s' | %s/llama2cl %s %s -z %s %s 2>/dev/null",
             gc->stdin_text ? gc->stdin_text : "", check_bin_dir(), backend, checkpoint, tok,
             gc->args);
    int status;
    char *got = check_run(cmd, &status);
    CHECK_INT(status, 0);
    if (got && strcmp(got, expected) != 0) {
        size_t i = 0;
        while (got[i] && got[i] == expected[i]) i++;
        fprintf(stderr, "%s: output differs from %s at byte %zu\n  got:      %.80s\n"
                "  expected: %.80s\n", cmd, expected_path, i, got + i, expected + i);
        check_failures++;
    }
    free(got);
    free(expected);
}

int main(int argc, char **argv) {
    const char *flag = argc > 1 ? argv[1] : "--cpu";
    if (!check_models_dir("stories260K.bin") || !check_models_dir("stories260K.v1.bin") ||
        !check_models_dir("tok512.bin") || !check_models_dir("stories260K.greedy.txt")) {
        return check_skip("test_golden", "the real models folder (LLAMA2CL_MODELS, default "
                          "../shared/models) lacks stories260K.bin, stories260K.v1.bin, "
                          "tok512.bin or stories260K.greedy.txt");
    }

    if (strncmp(flag, "--device", 8) == 0) {
        char cmd[4096];
        int status = -1;
        snprintf(cmd, sizeof cmd, "%s/llama2cl --list-devices >/dev/null 2>&1", check_bin_dir());
        free(check_run(cmd, &status));
        if (status != 0) return check_skip("test_golden", "no OpenCL device is present");
    }

    /* both formats of the same weights must print the same bytes */
    const char *files[] = {"stories260K.bin", "stories260K.v1.bin"};
    for (int f = 0; f < 2; f++) {
        char checkpoint[4096];
        snprintf(checkpoint, sizeof checkpoint, "%s", check_model_path(files[f]));
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            expect_output(flag, checkpoint, &cases[i]);
        }
    }

    /* the same weights quantized to Q8_0 print runq.c's text on the CPU path; a device computes
     * Q8_0 with its own rounding of the activations and is held to a tolerance instead
     * (test_device) */
    if (strcmp(flag, "--cpu") != 0) return check_report("test_golden");
    char q8[4200], cmd[16384];
    int status = -1;
    snprintf(q8, sizeof q8, "%s/stories260K.q8-gs4.bin", check_tmpdir("golden"));
    snprintf(cmd, sizeof cmd, "%s/l2c-quantize --group-size 4 %s %s 2>&1", check_bin_dir(),
             check_model_path("stories260K.bin"), q8);
    free(check_run(cmd, &status));
    CHECK_INT(status, 0);
    for (size_t i = 0; i < sizeof q8_cases / sizeof q8_cases[0]; i++) {
        expect_output(flag, q8, &q8_cases[i]);
    }
    unlink(q8);
    return check_report("test_golden");
}
