/*
 * test_cpu_leaks.c - the CPU path of the command line frees everything it allocates: llama2cl
 * --cpu runs under LeakSanitizer (detect_leaks=1, whatever ASAN_OPTIONS the suite sets) in
 * generate and chat modes, on each format, and on error paths, and no run may report a leak or
 * any other sanitizer error.
 *
 * Only meaningful in a build with -DL2C_SANITIZE=ON; elsewhere it reports skipped. It first
 * checks that a leak is caught at all here, by running itself with --leak.
 */
#include <errno.h>

#include "check.h"
#include "checkpoint_writer.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

#ifdef SANITIZED

/* LeakSanitizer's exit code, distinct from llama2cl's 0 and 1 */
#define LEAK_EXIT 23
#define LEAK_ENV "ASAN_OPTIONS=detect_leaks=1:exitcode=23 LSAN_OPTIONS=exitcode=23"

typedef struct {
    const char *what;
    const char *args;       /* llama2cl's arguments, run in the test directory */
    const char *stdin_text; /* NULL: /dev/null */
    int         exit_code;
} leak_case;

static const leak_case cases[] = {
    {"legacy, sampled with a prompt", "--cpu legacy.bin -z tok.bin -n 12 -t 1 -s 3 -i 'a b c'",
     NULL, 0},
    {"v1 with grouped-query attention, top-k", "--cpu v1.bin -z tok.bin -n 16 -t 0.8 -k 5 -s 4",
     NULL, 0},
    {"v2, top-p with a prompt", "--cpu v2.bin -z tok.bin -n 16 -t 1 -p 0.9 -s 5 -i 'hi there'",
     NULL, 0},
    {"chat, two turns", "--cpu v1.bin -z tok.bin -m chat -n 16 -t 0 -s 1", "be brief\nhi\nyo\n",
     0},
    {"chat with the prompts as flags", "--cpu v2.bin -z tok.bin -m chat -y sys -i hi -n 16 -t 0",
     NULL, 0},
    {"tokenizer of the wrong size (after the model loaded)", "--cpu v1.bin -z tok280.bin", NULL,
     1},
    {"prompt longer than the context", "--cpu v1.bin -z tok.bin -i abcdefghijklmnopqrstuvwxyz",
     NULL, 1},
    {"truncated checkpoint", "--cpu cut.bin -z tok.bin", NULL, 1},
};

static void write_model(const char *dir, const char *name, int format, int n_kv_heads,
                        int shared) {
    char path[8192];
    l2c_gen_spec spec = {
        .dim = 16, .hidden_dim = 32, .n_layers = 2, .n_heads = 4, .n_kv_heads = n_kv_heads,
        .vocab_size = 300, .seq_len = 16, .shared_classifier = shared, .format = format,
        .group_size = 8, .seed = 11,
    };
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (l2c_gen_write(path, &spec) != 0) {
        fprintf(stderr, "test_cpu_leaks: %s\n", l2c_gen_last_error());
        exit(2);
    }
}

/* Runs cmd with stderr into dir/stderr.txt; returns the exit code, *err the stderr text. */
static int run(const char *dir, const char *cmd, char **err) {
    char full[16384], err_path[8192];
    int status;
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
    snprintf(full, sizeof full, "cd '%s' && %s 2>stderr.txt", dir, cmd);
    free(check_run(full, &status));
    *err = check_read_file(err_path, NULL);
    if (!*err) *err = strdup("");
    return status;
}

int main(int argc, char **argv) {
    /* --leak: lose an allocation on purpose */
    if (argc > 1 && !strcmp(argv[1], "--leak")) {
        void *volatile lost = malloc(4096);
        memset(lost, 1, 4096);
        lost = NULL;
        return 0;
    }

    const char *dir = check_tmpdir("cpu-leaks");
    char cmd[8192];
    char *err;

    /* LeakSanitizer is active here: a known leak is reported */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        perror("readlink");
        return 2;
    }
    self[n] = '\0';
    snprintf(cmd, sizeof cmd, LEAK_ENV " '%s' --leak", self);
    int status = run(dir, cmd, &err);
    if (status != LEAK_EXIT || !strstr(err, "LeakSanitizer")) {
        fprintf(stderr, "test_cpu_leaks: a deliberate leak went unreported (exit %d):\n%s\n",
                status, err);
        return 1;
    }
    free(err);

    /* the models and tokenizers */
    write_model(dir, "legacy.bin", L2C_GEN_LEGACY, 4, 0);
    write_model(dir, "v1.bin", L2C_GEN_V1, 2, 1);
    write_model(dir, "v2.bin", L2C_GEN_V2, 1, 0);
    write_model(dir, "cut.bin", L2C_GEN_V1, 2, 1);
    char path[8192];
    snprintf(path, sizeof path, "%s/cut.bin", dir);
    if (truncate(path, 1000) != 0) {
        perror(path);
        return 2;
    }
    snprintf(path, sizeof path, "%s/tok.bin", dir);
    CHECK_INT(l2c_gen_write_tokenizer(path, 300), 0);
    snprintf(path, sizeof path, "%s/tok280.bin", dir);
    CHECK_INT(l2c_gen_write_tokenizer(path, 280), 0);

    /* every case: its exit code, and not a word from a sanitizer */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const leak_case *c = &cases[i];
        snprintf(cmd, sizeof cmd, "printf '%s' | " LEAK_ENV " '%s/llama2cl' %s",
                 c->stdin_text ? c->stdin_text : "", check_bin_dir(), c->args);
        status = run(dir, cmd, &err);
        if (status != c->exit_code || strstr(err, "Sanitizer") || strstr(err, "runtime error")) {
            fprintf(stderr, "%s: exit %d (expected %d): llama2cl %s\n--- stderr:\n%s---\n",
                    c->what, status, c->exit_code, c->args, err);
            check_failures++;
        }
        free(err);
    }
    return check_report("test_cpu_leaks");
}

#else

int main(void) {
    return check_skip("test_cpu_leaks", "built without AddressSanitizer (configure with "
                      "-DL2C_SANITIZE=ON)");
}

#endif
