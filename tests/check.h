/*
 * check.h - the few helpers every test program shares: assertions that report file and line,
 * finding the real models, skipping with a reason, and running the llama2cl command line.
 */
#ifndef L2C_CHECK_H
#define L2C_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <unistd.h>
#include <sys/wait.h>

static int check_failures = 0;

#define CHECK(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        check_failures++; \
    } \
} while (0)

#define CHECK_INT(got, want) do { \
    long long g_ = (long long)(got), w_ = (long long)(want); \
    if (g_ != w_) { \
        fprintf(stderr, "%s:%d: %s is %lld, expected %lld\n", __FILE__, __LINE__, #got, g_, w_); \
        check_failures++; \
    } \
} while (0)

#define CHECK_STR(got, want) do { \
    const char *g_ = (got), *w_ = (want); \
    if (g_ == NULL || strcmp(g_, w_) != 0) { \
        fprintf(stderr, "%s:%d: %s is \"%s\", expected \"%s\"\n", __FILE__, __LINE__, #got, \
                g_ ? g_ : "(null)", w_); \
        check_failures++; \
    } \
} while (0)

/* |got - want| <= tol */
#define CHECK_NEAR(got, want, tol) do { \
    double g_ = (got), w_ = (want); \
    if (!(fabs(g_ - w_) <= (tol))) { \
        fprintf(stderr, "%s:%d: %s is %.9g, expected %.9g within %g\n", __FILE__, __LINE__, \
                #got, g_, w_, (double)(tol)); \
        check_failures++; \
    } \
} while (0)

#define CHECK_OK(call) do { \
    l2c_status s_ = (call); \
    if (s_ != L2C_OK) { \
        fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, l2c_last_error()); \
        check_failures++; \
    } \
} while (0)

/* ends main: prints the verdict, exit 0 or 1 */
static inline int check_report(const char *suite) {
    if (check_failures) {
        fprintf(stderr, "%s: %d check(s) failed\n", suite, check_failures);
        return 1;
    }
    printf("%s: all checks passed\n", suite);
    return 0;
}

/* ctest's SKIP_RETURN_CODE */
#define CHECK_SKIP 77

static inline int check_skip(const char *suite, const char *why) {
    printf("%s: skipped: %s\n", suite, why);
    return CHECK_SKIP;
}

/* The real models folder: $LLAMA2CL_MODELS, else ../shared/models beside the source tree.
 * Returns NULL when it does not hold file. */
static inline const char *check_models_dir(const char *file) {
    const char *dir = getenv("LLAMA2CL_MODELS");
    if (!dir || !*dir) dir = getenv("L2C_DEFAULT_MODELS");
    if (!dir || !*dir) dir = "../shared/models";
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (access(path, R_OK) != 0) return NULL;
    return dir;
}

/* path of a file in the models folder (valid until the next call) */
static inline const char *check_model_path(const char *file) {
    static char path[4096];
    const char *dir = check_models_dir(file);
    if (!dir) return NULL;
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return path;
}

/* The build directory, where llama2cl and the tools are. */
static inline const char *check_bin_dir(void) {
    const char *dir = getenv("L2C_BIN_DIR");
    return dir && *dir ? dir : ".";
}

/* A fresh directory for this test's files (removed by the operating system's tmp cleaning). */
static inline const char *check_tmpdir(const char *suite) {
    static char dir[4096];
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/l2c-%s-XXXXXX", base && *base ? base : "/tmp", suite);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        exit(2);
    }
    return dir;
}

/* Runs a shell command, capturing stdout into a malloc'd string; *status gets the exit code. */
static inline char *check_run(const char *cmd, int *status) {
    if (status) *status = -1;
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += n;
        if (cap - len < 2) buf = realloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    int rc = pclose(p);
    if (status) *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return buf;
}

/* Reads a whole file into a malloc'd string; NULL if it cannot. */
static inline char *check_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (fread(buf, 1, n, f) != (size_t)n) n = 0;
    buf[n] = '\0';
    fclose(f);
    if (size) *size = n;
    return buf;
}

#endif /* L2C_CHECK_H */
