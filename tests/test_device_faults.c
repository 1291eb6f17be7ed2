/*
 * test_device_faults.c - device failures end in one clear message and exit code 1: a kernel that
 * fails to build (its build log shown), a kernel file that cannot be read, a model larger than the
 * device memory the user allows. In the sanitizer build the same runs also check that the error
 * paths leak nothing.
 */
#include "check.h"
#include "checkpoint_writer.h"

static char dir[4096], model[4200], tokenizer[4200];

/* runs llama2cl with env and args; returns its stderr, *status its exit code */
static char *run(const char *env, const char *args, int *status) {
    char cmd[16384], err_path[4200];
    snprintf(err_path, sizeof err_path, "%s/stderr.txt", dir);
    snprintf(cmd, sizeof cmd, "%s timeout 300 %s/llama2cl --device 0 %s -z %s %s 2>%s",
             env, check_bin_dir(), model, tokenizer, args, err_path);
    free(check_run(cmd, status));
    char *err = check_read_file(err_path, NULL);
    return err ? err : strdup("");
}

/* a copy of kernels_cl in dir/name, with text appended to file (NULL: unchanged) */
static void copy_kernels(const char *name, const char *file, const char *text) {
    char cmd[16384];
    int status = -1;
    snprintf(cmd, sizeof cmd, "mkdir -p %s/%s && cp %s/*.cl %s/%s/", dir, name, L2C_KERNELS_DIR,
             dir, name);
    free(check_run(cmd, &status));
    CHECK_INT(status, 0);
    if (file) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s/%s", dir, name, file);
        FILE *f = fopen(path, "a");
        CHECK(f != NULL);
        if (f) {
            fputs(text, f);
            fclose(f);
        }
    }
}

int main(void) {
    int status = -1;
    char cmd[16384], env[4096];
    snprintf(cmd, sizeof cmd, "%s/llama2cl --list-devices >/dev/null 2>&1", check_bin_dir());
    free(check_run(cmd, &status));
    if (status != 0) return check_skip("test_device_faults", "no OpenCL device is present");

    /* a small model: 2.3 MB of weights, more than the 1 MiB limit below */
    memcpy(dir, check_tmpdir("faults"), sizeof dir);
    snprintf(model, sizeof model, "%s/model.bin", dir);
    snprintf(tokenizer, sizeof tokenizer, "%s/tok.bin", dir);
    l2c_gen_spec spec = {.dim = 64, .hidden_dim = 160, .n_layers = 2, .n_heads = 4,
                         .n_kv_heads = 2, .vocab_size = 8192, .seq_len = 32,
                         .shared_classifier = 1, .format = 1, .group_size = 0, .seed = 5};
    CHECK_INT(l2c_gen_write(model, &spec), 0);
    CHECK_INT(l2c_gen_write_tokenizer(tokenizer, spec.vocab_size), 0);

    /* unchanged kernels read from a folder print what the embedded ones print */
    char *reference_out, *override_out;
    snprintf(cmd, sizeof cmd, "%s/llama2cl --device 0 %s -z %s -t 0 -n 12 2>/dev/null",
             check_bin_dir(), model, tokenizer);
    reference_out = check_run(cmd, &status);
    CHECK_INT(status, 0);
    copy_kernels("good", NULL, NULL);
    snprintf(cmd, sizeof cmd, "LLAMA2CL_KERNELS_DIR=%s/good %s/llama2cl --device 0 %s -z %s -t 0 "
             "-n 12 2>%s/override.txt", dir, check_bin_dir(), model, tokenizer, dir);
    override_out = check_run(cmd, &status);
    CHECK_INT(status, 0);
    if (status != 0) {
        snprintf(cmd, sizeof cmd, "%s/override.txt", dir);
        char *err = check_read_file(cmd, NULL);
        fprintf(stderr, "stderr of the run: %s\n", err ? err : "(none)");
        free(err);
    }
    CHECK_STR(override_out, reference_out);
    free(reference_out);
    free(override_out);

    /* a kernel that does not compile: the OpenCL error's name, the file, the build log (the
     * driver may print its own lines before llama2cl's) */
    copy_kernels("broken", "rope.cl", "\nthis is not OpenCL C\n");
    snprintf(env, sizeof env, "LLAMA2CL_KERNELS_DIR=%s/broken", dir);
    char *err = run(env, "-n 4", &status);
    CHECK_INT(status, 1);
    CHECK(strstr(err, "llama2cl: CL_BUILD_PROGRAM_FAILURE") != NULL);
    CHECK(strstr(err, "build log") != NULL);
    CHECK(strstr(err, "rope.cl") != NULL);
    free(err);

    /* a kernel file that is missing from the folder */
    snprintf(env, sizeof env, "LLAMA2CL_KERNELS_DIR=%s/absent", dir);
    err = run(env, "-n 4", &status);
    CHECK_INT(status, 1);
    CHECK(strstr(err, "absent/") != NULL && strstr(err, "cannot open the kernel source"));
    CHECK(strchr(err, '\n') == strrchr(err, '\n')); /* one line */
    free(err);

    /* more memory than allowed: refused before the upload, naming the sizes */
    err = run("", "--mem-limit 1 -n 4", &status);
    CHECK_INT(status, 1);
    CHECK(strstr(err, "model.bin needs") != NULL);
    CHECK(strstr(err, "more than the 1048576 bytes of device memory it may use") != NULL);
    CHECK(strchr(err, '\n') == strrchr(err, '\n'));
    free(err);

    /* within the limit it runs */
    err = run("", "--mem-limit 64 -n 4", &status);
    CHECK_INT(status, 0);
    free(err);

    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    free(check_run(cmd, &status));
    return check_report("test_device_faults");
}
