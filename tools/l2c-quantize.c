/*
 * l2c-quantize - turns a legacy or version-1 llama2.c checkpoint into version 2 (Q8_0) exactly as
 * llama2.c's export.py version2_export would write it: the same group-size back-off, rounding,
 * tensor order and shared-classifier flag.
 *
 * The input is mapped and read one tensor at a time, and the pages already read are dropped, so a
 * 7B model converts with bounded memory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint_writer.h"

static void usage(FILE *out) {
    fprintf(out,
        "usage: l2c-quantize [--group-size N] IN OUT\n"
        "converts a legacy or version-1 llama2.c checkpoint IN into version 2 (Q8_0) OUT\n"
        "  --group-size N   values per scale (default 64), halved until it divides dim\n"
        "  -h, --help       this text\n");
}

/* ------------------------------------------------------------------------------------------------
 * the input file
 */

typedef struct {
    const char   *path;
    unsigned char *map;
    size_t        size;
    l2c_gen_spec  spec;                          /* its shapes and format */
    size_t        offset[L2C_GEN_TENSOR_COUNT]; /* byte offset of each tensor's first layer */
    size_t        page;
} input;

/* prints "l2c-quantize: IN: message" and returns -1 */
__attribute__((format(printf, 2, 3)))
static int fail_input(const input *in, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "l2c-quantize: %s: ", in->path);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

/* a += b * c with overflow detection */
static int add_product(unsigned long long *a, unsigned long long b, unsigned long long c) {
    unsigned long long p;
    return __builtin_mul_overflow(b, c, &p) || __builtin_add_overflow(*a, p, a);
}

/* Reads the header, checks the shapes and the file size, and finds each tensor. */
static int read_header(input *in) {
    l2c_gen_spec *spec = &in->spec;
    int32_t config[7];

    /* version 1 starts with the magic, legacy with the config */
    uint32_t magic = 0;
    if (in->size >= 4) memcpy(&magic, in->map, 4);
    size_t header_size;
    if (magic == L2C_GEN_MAGIC) {
        int32_t version;
        if (in->size < L2C_GEN_HEADER_SIZE) {
            return fail_input(in, "file is shorter than the 256-byte version header");
        }
        memcpy(&version, in->map + 4, 4);
        if (version == 2) {
            return fail_input(in, "version 2: the file is already quantized");
        }
        if (version != 1) {
            return fail_input(in, "version %d is not supported (legacy or 1)", version);
        }
        memcpy(config, in->map + 8, sizeof config);
        unsigned char flag = in->map[36];
        if (flag > 1) {
            return fail_input(in, "shared classifier flag is %d, must be 0 or 1", flag);
        }
        spec->format = L2C_GEN_V1;
        spec->shared_classifier = flag;
        header_size = L2C_GEN_HEADER_SIZE;
    } else {
        if (in->size < sizeof config) {
            return fail_input(in, "file is shorter than the 28-byte legacy header");
        }
        memcpy(config, in->map, sizeof config);
        if (config[5] == INT32_MIN) return fail_input(in, "header: vocab_size out of range");

        /* a negative vocab_size marks an unshared classifier */
        spec->format = L2C_GEN_LEGACY;
        spec->shared_classifier = config[5] > 0;
        if (config[5] < 0) config[5] = -config[5];
        header_size = sizeof config;
    }
    spec->dim = config[0];
    spec->hidden_dim = config[1];
    spec->n_layers = config[2];
    spec->n_heads = config[3];
    spec->n_kv_heads = config[4];
    spec->vocab_size = config[5];
    spec->seq_len = config[6];
    if (l2c_gen_check_spec(spec) != 0) {
        return fail_input(in, "header: %s", l2c_gen_last_error());
    }

    /* the tensors in the file's order; legacy has the two rotary tables before the classifier */
    static const l2c_gen_tensor legacy_order[] = {
        L2C_GEN_TOKEN_EMBEDDING, L2C_GEN_RMS_ATT, L2C_GEN_WQ, L2C_GEN_WK, L2C_GEN_WV, L2C_GEN_WO,
        L2C_GEN_RMS_FFN, L2C_GEN_W1, L2C_GEN_W2, L2C_GEN_W3, L2C_GEN_RMS_FINAL,
        L2C_GEN_TENSOR_COUNT /* rotary tables */, L2C_GEN_WCLS,
    };
    static const l2c_gen_tensor v1_order[] = {
        L2C_GEN_RMS_ATT, L2C_GEN_RMS_FFN, L2C_GEN_RMS_FINAL, L2C_GEN_TOKEN_EMBEDDING, L2C_GEN_WQ,
        L2C_GEN_WK, L2C_GEN_WV, L2C_GEN_WO, L2C_GEN_W1, L2C_GEN_W2, L2C_GEN_W3, L2C_GEN_WCLS,
    };
    const l2c_gen_tensor *order = spec->format == L2C_GEN_LEGACY ? legacy_order : v1_order;
    size_t n_order = spec->format == L2C_GEN_LEGACY ? sizeof legacy_order / sizeof *legacy_order
                                                    : sizeof v1_order / sizeof *v1_order;
    unsigned long long end = header_size;
    int overflow = 0;
    for (size_t i = 0; i < n_order; i++) {
        l2c_gen_tensor t = order[i];
        if (t == L2C_GEN_TENSOR_COUNT) {
            unsigned long long half_head = (unsigned long long)(spec->dim / spec->n_heads / 2);
            unsigned long long seq_len = (unsigned long long)spec->seq_len;
            overflow |= add_product(&end, 2ull * 4ull * half_head, seq_len);
            continue;
        }
        if (t == L2C_GEN_WCLS && spec->shared_classifier) {
            in->offset[t] = in->offset[L2C_GEN_TOKEN_EMBEDDING];
            continue;
        }
        in->offset[t] = (size_t)end;
        unsigned long long n = l2c_gen_tensor_shape(spec, t, NULL, NULL);
        overflow |= add_product(&end, 4ull * n, (unsigned long long)l2c_gen_tensor_layers(spec, t));
    }

    /* the size must match exactly: a mismatch means a wrong header or a truncated file */
    if (overflow) return fail_input(in, "header: the shapes are implausibly large");
    if (end != in->size) {
        return fail_input(in, "file is %zu bytes, but its header's shapes (%s, %s classifier) "
                          "need %llu", in->size, spec->format == L2C_GEN_LEGACY ? "legacy" : "v1",
                          spec->shared_classifier ? "shared" : "unshared", end);
    }
    return 0;
}

/* Copies values from the mapping, then drops the whole pages read: each is read only once. */
static int mapped_source(void *ctx, l2c_gen_tensor tensor, int layer, size_t first, size_t count,
                         float *out) {
    input *in = ctx;
    size_t n = l2c_gen_tensor_shape(&in->spec, tensor, NULL, NULL);
    size_t begin = in->offset[tensor] + ((size_t)layer * n + first) * sizeof(float);
    size_t end = begin + count * sizeof(float);
    memcpy(out, in->map + begin, end - begin);

    size_t page_begin = (begin + in->page - 1) / in->page * in->page;
    size_t page_end = end / in->page * in->page;
    if (page_end > page_begin) madvise(in->map + page_begin, page_end - page_begin, MADV_DONTNEED);
    return 0;
}

/* export.py decides sharing by comparing the values (torch.equal), not by a flag */
static int classifier_equals_table(const input *in) {
    size_t n = l2c_gen_tensor_shape(&in->spec, L2C_GEN_TOKEN_EMBEDDING, NULL, NULL);
    const unsigned char *table = in->map + in->offset[L2C_GEN_TOKEN_EMBEDDING];
    const unsigned char *wcls = in->map + in->offset[L2C_GEN_WCLS];
    for (size_t i = 0; i < n; i++) {
        float a, b;
        memcpy(&a, table + 4 * i, 4);
        memcpy(&b, wcls + 4 * i, 4);
        if (a != b) return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------------
 * command line
 */

int main(int argc, char **argv) {
    /* flags and the two paths */
    int group_size = 64;
    const char *paths[2];
    int n_paths = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "-h") || !strcmp(arg, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(arg, "--group-size")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "l2c-quantize: --group-size needs a value\n");
                return 1;
            }
            const char *value = argv[++i];
            char *end;
            errno = 0;
            long v = strtol(value, &end, 10);
            if (end == value || *end != '\0' || errno != 0 || v < 1 || v > INT_MAX) {
                fprintf(stderr, "l2c-quantize: --group-size: expected a positive integer, "
                        "got '%s'\n", value);
                return 1;
            }
            group_size = (int)v;
            continue;
        }
        if (arg[0] == '-' && arg[1] != '\0') {
            fprintf(stderr, "l2c-quantize: unknown flag '%s' (see --help)\n", arg);
            return 1;
        }
        if (n_paths == 2) {
            fprintf(stderr, "l2c-quantize: unexpected argument '%s': give IN and OUT only\n", arg);
            return 1;
        }
        paths[n_paths++] = arg;
    }
    if (n_paths != 2) {
        fprintf(stderr, "l2c-quantize: expected IN and OUT (see --help)\n");
        return 1;
    }

    /* map the input */
    input in = {.path = paths[0], .page = (size_t)sysconf(_SC_PAGESIZE)};
    int fd = open(in.path, O_RDONLY);
    struct stat st_in, st_out;
    if (fd < 0 || fstat(fd, &st_in) != 0) {
        fprintf(stderr, "l2c-quantize: %s: cannot open: %s\n", in.path, strerror(errno));
        return 1;
    }
    if (!S_ISREG(st_in.st_mode) || st_in.st_size == 0) {
        fprintf(stderr, "l2c-quantize: %s: not a regular non-empty file\n", in.path);
        return 1;
    }
    if (stat(paths[1], &st_out) == 0 && st_out.st_dev == st_in.st_dev &&
        st_out.st_ino == st_in.st_ino) {
        fprintf(stderr, "l2c-quantize: %s: OUT is the input file\n", paths[1]);
        return 1;
    }
    in.size = (size_t)st_in.st_size;
    in.map = mmap(NULL, in.size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (in.map == MAP_FAILED) {
        fprintf(stderr, "l2c-quantize: %s: cannot map: %s\n", in.path, strerror(errno));
        return 1;
    }
    madvise(in.map, in.size, MADV_SEQUENTIAL);

    /* the header, the classifier as export.py sees it, the group size */
    if (read_header(&in) != 0) return 1;
    const char *from = in.spec.format == L2C_GEN_LEGACY ? "legacy" : "v1";
    if (!in.spec.shared_classifier && classifier_equals_table(&in)) {
        in.spec.shared_classifier = 1;
        fprintf(stderr, "l2c-quantize: %s: the classifier equals the token table, writing it "
                "as shared\n", in.path);
    }
    l2c_gen_spec out = in.spec;
    out.format = L2C_GEN_V2;
    out.group_size = group_size;
    int used_group_size = l2c_gen_group_size(out.dim, group_size);
    if (used_group_size != group_size) {
        fprintf(stderr, "l2c-quantize: --group-size %d does not divide dim %d, using %d\n",
                group_size, out.dim, used_group_size);
    }

    /* the version-2 file */
    if (l2c_gen_write_from(paths[1], &out, mapped_source, &in) != 0) {
        fprintf(stderr, "l2c-quantize: %s\n", l2c_gen_last_error());
        return 1;
    }
    fprintf(stderr, "l2c-quantize: %s (%s, %s classifier) -> %s (v2, group size %d, %llu bytes)\n",
            in.path, from, out.shared_classifier ? "shared" : "unshared", paths[1],
            used_group_size, l2c_gen_file_size(&out));
    munmap(in.map, in.size);
    return 0;
}
