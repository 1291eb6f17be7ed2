/*
 * test_bench.c - llama2cl-bench runs end to end on a tiny generated model and prints its table:
 * a pp and a tg row per weight type on the CPU with positive speeds, the machine's bandwidth,
 * a note instead of a row for a device that does not exist, its generated models removed at the
 * end, and one line naming the flag for a bad value. No speed is asserted.
 */
#include <dirent.h>

#include "check.h"

/* the t/s column of the table row of that model, weight type, backend and test; -1 when absent */
static double row_speed(const char *table, const char *model_type, const char *backend_test) {
    for (const char *line = table; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1
                                                                          : NULL) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char row[1024];
        snprintf(row, sizeof row, "%.*s", (int)(len < sizeof row ? len : sizeof row - 1), line);
        const char *at = strstr(row, backend_test);
        if (strncmp(row, model_type, strlen(model_type)) == 0 && at) {
            return strtod(at + strlen(backend_test), NULL);
        }
    }
    return -1.0;
}

static int dir_is_empty(const char *path) {
    DIR *d = opendir(path);
    if (!d) return 0;
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) entries++;
    }
    closedir(d);
    return entries == 0;
}

int main(void) {
    const char *tmp = check_tmpdir("bench");
    char dir[4096], cmd[8192];
    snprintf(dir, sizeof dir, "%s", tmp);

    /* a tiny run on the CPU and on a device index no machine has */
    snprintf(cmd, sizeof cmd, "%s/llama2cl-bench --gen tiny -r 1 -p 8 -n 8 --bw-mib 64 "
             "--backends cpu,device999 --tmpdir %s", check_bin_dir(), dir);
    int status;
    char *out = check_run(cmd, &status);
    CHECK_INT(status, 0);
    if (!out) return check_report("test_bench");
    printf("%s", out);

    CHECK(strstr(out, "memory read bandwidth") != NULL);
    CHECK(strstr(out, "| model | weights | size | backend | test | t/s |") != NULL);
    const char *rows[][2] = {
        {"| tiny (random) | fp32 | ", "| cpu | pp8 | "},
        {"| tiny (random) | fp32 | ", "| cpu | tg8 | "},
        {"| tiny (random) | Q8_0 | ", "| cpu | pp8 | "},
        {"| tiny (random) | Q8_0 | ", "| cpu | tg8 | "},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        double speed = row_speed(out, rows[i][0], rows[i][1]);
        if (!(speed > 0.0)) {
            fprintf(stderr, "no row '%s ... %s' with a positive speed\n", rows[i][0], rows[i][1]);
            check_failures++;
        }
    }
    CHECK(strstr(out, "device999") != NULL && strstr(out, "skipped") != NULL);
    CHECK(strstr(out, "| device999") == NULL);
    CHECK(dir_is_empty(dir));
    free(out);

    /* a bad value: exit 1, one line naming the flag */
    snprintf(cmd, sizeof cmd, "%s/llama2cl-bench --gen tiny -p 0 2>&1", check_bin_dir());
    out = check_run(cmd, &status);
    CHECK_INT(status, 1);
    CHECK(out && strstr(out, "-p: expected a positive integer, got '0'") != NULL);
    free(out);

    rmdir(dir);
    return check_report("test_bench");
}
