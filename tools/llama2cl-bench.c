/*
 * llama2cl-bench - prompt processing and generation speed per model, backend and weight type,
 * as a markdown table.
 *
 * For each model (files given with -m, and models of known shapes generated with --gen into a
 * temporary folder, fp32 and Q8_0), each backend (the CPU, OpenCL devices with their engine and
 * weight-type variants) it measures:
 *   ppN  N prompt tokens through l2c_backend_prefill from position 0, tokens per second;
 *   tgN  N tokens generated one at a time through l2c_backend_forward, each the previous one's
 *        greedy choice, tokens per second;
 * over -r repetitions after one warm-up, giving the median and the range. Generation reads every
 * weight once per token, so the table also gives the weight bytes read per generated token, the
 * bandwidth that implies, and that bandwidth as a share of the machine's memory-read bandwidth,
 * measured by this program just before each generation row with the same number of threads.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "checkpoint_writer.h"
#include "llama2cl.h"

#define MAX_MODELS   32
#define MAX_BACKENDS 16
#define MAX_VARIANTS 8
#define HUGE_PAGE    (2u << 20) /* alignment of the bandwidth buffer */

/* ------------------------------------------------------------------------------------------------
 * options
 */

typedef struct {
    const char *name;
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
} shape;

/* shapes --gen writes, as llama2.c's models; "tiny" is for quick checks */
static const shape shapes[] = {
    {"tiny", 64, 192, 2, 4, 4, 512, 256},
    {"stories15M", 288, 768, 6, 6, 6, 32000, 256},
    {"stories42M", 512, 1376, 8, 8, 8, 32000, 1024},
    {"stories110M", 768, 2048, 12, 12, 12, 32000, 1024},
};

typedef struct {
    const char *path;
    char label[128];
    int generated; /* written by this run, removed at exit */
} model_entry;

typedef struct {
    int device; /* -1 for the CPU */
} backend_entry;

typedef struct {
    model_entry models[MAX_MODELS];
    int n_models;
    backend_entry backends[MAX_BACKENDS];
    int n_backends;
    l2c_gemv_engine gemv[MAX_VARIANTS];
    int n_gemv;
    l2c_dtype dtype[MAX_VARIANTS];
    int n_dtype;
    int n_prompt;      /* -p */
    int n_gen;         /* -n */
    int repetitions;   /* -r */
    int threads;       /* -t, 0: OpenMP's default */
    double max_load;   /* --max-load: percent of the machine others may take during a repetition */
    size_t bw_bytes;   /* buffer of the bandwidth measurement */
    const char *tmpdir;
} options;

static void usage(FILE *out) {
    fprintf(out,
        "usage: llama2cl-bench [options]\n"
        "measures prompt processing (pp) and generation (tg) speed, printed as a markdown table\n"
        "  -m PATH              a checkpoint (repeatable)\n"
        "  --gen SHAPES         also generate random models of these shapes (comma-separated:\n"
        "                       tiny, stories15M, stories42M, stories110M), fp32 and Q8_0 each\n"
        "  --backends LIST      cpu, deviceN, comma-separated (default cpu)\n"
        "  --gemv LIST          device matrix-vector engines: clblast, own, auto\n"
        "                       (default auto, as llama2cl)\n"
        "  --dtype LIST         device weight types: f32, f16 (default f32)\n"
        "  -p N                 prompt tokens (default 128)\n"
        "  -n N                 generated tokens (default 128)\n"
        "  -r N                 repetitions (default 5)\n"
        "  -t N                 threads of the CPU backend and the bandwidth measurement\n"
        "                       (default: OpenMP's, OMP_NUM_THREADS or one per core)\n"
        "  --bw-mib N           buffer of the memory-bandwidth measurement (default 512)\n"
        "  --max-load P         measure a repetition again (up to 10 times) when other processes\n"
        "                       took more than P%% of all CPUs during it (default 100: never)\n"
        "  --tmpdir DIR         where --gen writes its models (default $TMPDIR or /tmp)\n"
        "  -h, --help           this text\n");
}

/* one line naming the flag and the cause, then exit 1 */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "llama2cl-bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static int parse_positive(const char *flag, const char *text) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || v < 1 || v > INT_MAX) {
        die("%s: expected a positive integer, got '%s'", flag, text);
    }
    return (int)v;
}

static double parse_percent(const char *flag, const char *text) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || errno != 0 || !(v >= 0.0 && v <= 100.0)) {
        die("%s: expected a percentage from 0 to 100, got '%s'", flag, text);
    }
    return v;
}

/* Calls item(opt, token) for each comma-separated token of list. */
static void each_item(options *opt, const char *flag, const char *list,
                      void (*item)(options *, const char *, const char *)) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        item(opt, flag, tok);
    }
}

static void add_backend(options *opt, const char *flag, const char *name) {
    if (opt->n_backends == MAX_BACKENDS) die("%s: more than 16 backends at '%s'", flag, name);
    backend_entry *b = &opt->backends[opt->n_backends++];
    if (!strcmp(name, "cpu")) {
        b->device = -1;
        return;
    }
    char *end;
    if (strncmp(name, "device", 6) != 0 || name[6] == '\0' ||
        (b->device = (int)strtol(name + 6, &end, 10)) < 0 || *end != '\0') {
        die("%s: expected cpu or deviceN, got '%s'", flag, name);
    }
}

static void add_gemv(options *opt, const char *flag, const char *name) {
    if (opt->n_gemv == MAX_VARIANTS) die("%s: too many engines at '%s'", flag, name);
    if (!strcmp(name, "clblast")) opt->gemv[opt->n_gemv++] = L2C_GEMV_CLBLAST;
    else if (!strcmp(name, "own")) opt->gemv[opt->n_gemv++] = L2C_GEMV_OWN;
    else if (!strcmp(name, "auto")) opt->gemv[opt->n_gemv++] = L2C_GEMV_AUTO;
    else die("%s: expected clblast, own or auto, got '%s'", flag, name);
}

static void add_dtype(options *opt, const char *flag, const char *name) {
    if (opt->n_dtype == MAX_VARIANTS) die("%s: too many weight types at '%s'", flag, name);
    if (!strcmp(name, "f32")) opt->dtype[opt->n_dtype++] = L2C_DTYPE_F32;
    else if (!strcmp(name, "f16")) opt->dtype[opt->n_dtype++] = L2C_DTYPE_F16;
    else die("%s: expected f32 or f16, got '%s'", flag, name);
}

static void add_model(options *opt, const char *path, const char *label, int generated) {
    if (opt->n_models == MAX_MODELS) die("%s: more than 32 models at '%s'", "-m", path);
    model_entry *m = &opt->models[opt->n_models++];
    m->path = path;
    m->generated = generated;
    snprintf(m->label, sizeof m->label, "%s", label);
}

/* Writes an fp32 and a Q8_0 model of the named shape into opt->tmpdir. */
static void add_generated(options *opt, const char *flag, const char *name) {
    const shape *sh = NULL;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (!strcmp(shapes[i].name, name)) sh = &shapes[i];
    }
    if (!sh) die("%s: unknown shape '%s' (tiny, stories15M, stories42M, stories110M)", flag, name);
    for (int format = L2C_GEN_LEGACY; format <= L2C_GEN_V2; format += L2C_GEN_V2) {
        l2c_gen_spec spec = {
            .dim = sh->dim, .hidden_dim = sh->hidden_dim, .n_layers = sh->n_layers,
            .n_heads = sh->n_heads, .n_kv_heads = sh->n_kv_heads, .vocab_size = sh->vocab_size,
            .seq_len = sh->seq_len, .shared_classifier = 1, .format = format, .group_size = 64,
            .seed = 1,
        };
        char *path = malloc(4096);
        snprintf(path, 4096, "%s/%s.%s.bin", opt->tmpdir, name,
                 format == L2C_GEN_V2 ? "q80" : "f32");
        if (l2c_gen_write(path, &spec) != 0) die("--gen: %s: %s", path, l2c_gen_last_error());
        char label[128];
        snprintf(label, sizeof label, "%s (random)", name);
        add_model(opt, path, label, 1);
    }
}

static const char *gemv_name(l2c_gemv_engine e) {
    return e == L2C_GEMV_CLBLAST ? "clblast" : e == L2C_GEMV_OWN ? "own" : "auto";
}

/* ------------------------------------------------------------------------------------------------
 * measurements
 */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* median, min and max of n values (sorted in place) */
typedef struct {
    double median, min, max;
} summary;

static summary summarize(double *values, int n) {
    qsort(values, n, sizeof *values, compare_doubles);
    summary s = {n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]), values[0],
                 values[n - 1]};
    return s;
}

/* CPU time the whole machine and this process have used, in seconds, to tell how much of the
 * machine other processes took during a measurement (Linux; elsewhere valid is 0) */
typedef struct {
    double busy, total, self;
    int valid;
} cpu_clock;

static cpu_clock cpu_clock_now(void) {
    cpu_clock c = {0.0, 0.0, 0.0, 0};
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (f) {
        c.valid = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                         &v[3], &v[4], &v[5], &v[6], &v[7]) == 8;
        fclose(f);
    }
    double tick = (double)sysconf(_SC_CLK_TCK);
    c.busy = (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / tick;
    c.total = c.busy + (v[3] + v[4]) / tick;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    c.self = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + ru.ru_stime.tv_sec +
             ru.ru_stime.tv_usec * 1e-6;
    return c;
}

/* the share of all CPUs that other processes used from a to b, 0 to 1 */
static double others_load(cpu_clock a, cpu_clock b) {
    if (!a.valid || !b.valid || b.total <= a.total) return 0.0;
    double load = ((b.busy - a.busy) - (b.self - a.self)) / (b.total - a.total);
    return load < 0.0 ? 0.0 : load > 1.0 ? 1.0 : load;
}

/* a buffer far larger than the caches, for measuring the memory-read bandwidth */
typedef struct {
    const uint64_t *words;
    size_t count;
} bandwidth_buffer;

/* Memory-read bandwidth in bytes per second: the best of passes summing the buffer, split over
 * the threads in contiguous parts as the matrix rows are. A pass during which other processes
 * took more than max_load percent of the machine runs again, up to 10 times. */
static double read_bandwidth(const bandwidth_buffer *buf, int passes, double max_load) {
    double best = 0.0;
    uint64_t sink = 0;
    for (int p = 0; p < passes; p++) {
        for (int attempt = 0; attempt < 10; attempt++) {
            uint64_t sum = 0;
            cpu_clock a = cpu_clock_now();
            double t0 = now_seconds();
            #pragma omp parallel for schedule(static) reduction(+:sum)
            for (size_t i = 0; i < buf->count; i++) {
                sum += buf->words[i];
            }
            double t1 = now_seconds();
            double load = others_load(a, cpu_clock_now());
            sink += sum;
            double rate = buf->count * sizeof(uint64_t) / (t1 - t0);
            if (load * 100.0 <= max_load || attempt == 9) {
                if (rate > best) best = rate;
                break;
            }
        }
    }
    if (sink == 1) fprintf(stderr, " ");
    return best;
}

/* Weight bytes one generated token reads: every matrix, the norms, one embedding row. */
static double weight_bytes_per_token(const l2c_config *c, int device, l2c_dtype dtype) {
    double kv_dim = (double)c->dim / c->n_heads * c->n_kv_heads;
    double matrices = c->n_layers * (2.0 * c->dim * c->dim + 2.0 * c->dim * kv_dim +
                                     3.0 * c->dim * c->hidden_dim) +
                      (double)c->vocab_size * c->dim;
    double norms = (2.0 * c->n_layers + 1) * c->dim;
    double bytes;
    if (c->format == L2C_FORMAT_V2) {
        bytes = matrices + matrices / c->group_size * 4;
    } else if (device >= 0 && dtype == L2C_DTYPE_F16) {
        bytes = matrices * 2;
    } else {
        bytes = matrices * 4;
    }
    return bytes + norms * 4 + c->dim * 4.0;
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++) {
        if (x[i] > x[best]) best = i;
    }
    return best;
}

/* one test's repetitions: tokens per second, and the others' load during each */
typedef struct {
    double *rate;
    double *load;
    double *bandwidth; /* the machine's, measured just before each repetition (tg only) */
    int retries;       /* repetitions measured again because others took more than --max-load */
} test_result;

typedef struct {
    l2c_backend *backend;
    const l2c_config *config;
    const int *prompt;
    int n_tokens;
    int generate; /* 0: pp through prefill, 1: tg through forward */
    const bandwidth_buffer *bandwidth; /* measure the bandwidth before each repetition; or NULL */
} test_case;

/* Runs the test once: the seconds it took, or -1 after a failure in *status. */
static double run_once(const test_case *t, l2c_status *status) {
    float *logits;
    double t0 = now_seconds();
    if (!t->generate) {
        *status = l2c_backend_prefill(t->backend, t->prompt, t->n_tokens, 0, &logits);
    } else {
        int token = L2C_TOKEN_BOS;
        for (int pos = 0; pos < t->n_tokens && *status == L2C_OK; pos++) {
            *status = l2c_backend_forward(t->backend, token, pos, &logits);
            if (*status == L2C_OK) token = argmax(logits, t->config->vocab_size);
        }
    }
    double t1 = now_seconds();
    return *status == L2C_OK ? t1 - t0 : -1.0;
}

/* One warm-up, then the repetitions, each after a measurement of the memory bandwidth when the
 * test asks for one; a repetition during which other processes took more than max_load of the
 * machine runs again, up to 10 times. */
static l2c_status run_test(const test_case *t, const options *opt, test_result *result) {
    l2c_status s = L2C_OK;
    run_once(t, &s);
    for (int r = 0; r < opt->repetitions && s == L2C_OK; r++) {
        for (int attempt = 0; s == L2C_OK; attempt++) {
            if (t->bandwidth) result->bandwidth[r] = read_bandwidth(t->bandwidth, 2, opt->max_load);
            cpu_clock a = cpu_clock_now();
            double seconds = run_once(t, &s);
            double load = others_load(a, cpu_clock_now());
            if (load * 100.0 <= opt->max_load || attempt == 9) {
                result->rate[r] = t->n_tokens / seconds;
                result->load[r] = load;
                break;
            }
            result->retries++;
        }
    }
    return s;
}

/* ------------------------------------------------------------------------------------------------
 * the table
 */

static const char *format_name(const l2c_config *c, int device, l2c_dtype dtype) {
    if (c->format == L2C_FORMAT_V2) return "Q8_0";
    return device >= 0 && dtype == L2C_DTYPE_F16 ? "f16" : "fp32";
}

static void print_header(void) {
    printf("| model | weights | size | backend | test | t/s | min - max | weight MB/token | "
           "GB/s | mem read GB/s | %% of mem | others %% |\n");
    printf("|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
}

typedef struct {
    char notes[4096];
    size_t used;
} notes;

static void add_note(notes *n, const char *line) {
    int w = snprintf(n->notes + n->used, sizeof n->notes - n->used, "- %s\n", line);
    if (w > 0 && n->used + w < sizeof n->notes) n->used += w;
}

/* Measures one model on one backend variant and prints its two rows. */
static void bench_row(const model_entry *m, const l2c_model *model, int device,
                      const l2c_opencl_options *cl, const options *opt,
                      const bandwidth_buffer *bw, notes *n) {
    const l2c_config *c = l2c_model_config(model);
    char backend_name[64], line[1024];
    if (device < 0) {
        snprintf(backend_name, sizeof backend_name, "cpu");
    } else {
        snprintf(backend_name, sizeof backend_name, "device%d %s", device, gemv_name(cl->gemv));
    }
    l2c_dtype dtype = cl ? cl->dtype : L2C_DTYPE_F32;

    /* the backend, or a note saying why not */
    l2c_backend *backend = NULL;
    l2c_status s = device < 0 ? l2c_backend_cpu_create(model, &backend)
                              : l2c_backend_opencl_create(model, cl, &backend);
    if (s != L2C_OK) {
        snprintf(line, sizeof line, "%s, %s, %s: skipped (%s: %s)", m->label,
                 format_name(c, device, dtype), backend_name, l2c_status_name(s),
                 l2c_last_error());
        add_note(n, line);
        return;
    }
    if (opt->n_prompt > c->seq_len || opt->n_gen > c->seq_len) {
        snprintf(line, sizeof line, "%s: skipped (-p %d or -n %d exceeds seq_len %d)", m->label,
                 opt->n_prompt, opt->n_gen, c->seq_len);
        add_note(n, line);
        l2c_backend_free(backend);
        return;
    }

    /* the prompt: fixed pseudo-random ids past the special tokens */
    int *prompt = malloc(opt->n_prompt * sizeof(int));
    unsigned long long state = 12345;
    for (int i = 0; i < opt->n_prompt; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        prompt[i] = 3 + (int)((state >> 33) % (unsigned long long)(c->vocab_size - 3));
    }

    /* pp, then tg */
    int reps = opt->repetitions;
    double *values = calloc(7 * (size_t)reps, sizeof(double));
    test_result pp = {values, values + reps, NULL, 0};
    test_result tg = {values + 2 * reps, values + 3 * reps, values + 4 * reps, 0};
    double *share = values + 5 * reps, *tg_rate = values + 6 * reps;
    test_case pp_case = {backend, c, prompt, opt->n_prompt, 0, NULL};
    test_case tg_case = {backend, c, prompt, opt->n_gen, 1, bw};
    s = run_test(&pp_case, opt, &pp);
    if (s == L2C_OK) s = run_test(&tg_case, opt, &tg);
    if (s != L2C_OK) {
        snprintf(line, sizeof line, "%s, %s, %s: failed (%s: %s)", m->label,
                 format_name(c, device, dtype), backend_name, l2c_status_name(s),
                 l2c_last_error());
        add_note(n, line);
    } else {
        /* each repetition's bandwidth against the machine's just before it */
        double bytes = weight_bytes_per_token(c, device, dtype);
        for (int r = 0; r < reps; r++) {
            share[r] = bytes * tg.rate[r] / tg.bandwidth[r];
            tg_rate[r] = tg.rate[r];
        }
        double bandwidth = summarize(tg.bandwidth, reps).median;
        double shares = summarize(share, reps).median;
        summary pps = summarize(pp.rate, reps), tgs = summarize(tg_rate, reps);
        double pp_load = summarize(pp.load, reps).median * 100.0;
        double tg_load = summarize(tg.load, reps).median * 100.0;
        double size_mb = 0.0;
        struct stat st;
        if (stat(m->path, &st) == 0) size_mb = st.st_size / 1e6;
        const char *type = format_name(c, device, dtype);
        printf("| %s | %s | %.1f MB | %s | pp%d | %.2f | %.2f - %.2f | | | | | %.0f |\n",
               m->label, type, size_mb, backend_name, opt->n_prompt, pps.median, pps.min,
               pps.max, pp_load);
        printf("| %s | %s | %.1f MB | %s | tg%d | %.2f | %.2f - %.2f | %.1f | %.2f | %.2f | "
               "%.1f | %.0f |\n", m->label, type, size_mb, backend_name, opt->n_gen, tgs.median,
               tgs.min, tgs.max, bytes / 1e6, bytes * tgs.median / 1e9, bandwidth / 1e9,
               100.0 * shares, tg_load);
        fflush(stdout);
        snprintf(line, sizeof line, "%s: %s", backend_name, l2c_backend_describe(backend));
        if (!strstr(n->notes, line)) add_note(n, line);
        if (pp.retries + tg.retries > 0) {
            snprintf(line, sizeof line, "%s, %s, %s: %d repetition(s) measured again because "
                     "other processes took more than %g%% of the machine", m->label, type,
                     backend_name, pp.retries + tg.retries, opt->max_load);
            add_note(n, line);
        }
    }
    free(values);
    free(prompt);
    l2c_backend_free(backend);
}

/* ------------------------------------------------------------------------------------------------
 * main
 */

static int takes_value(const char *flag) {
    static const char *flags[] = {
        "-m", "--gen", "--backends", "--gemv", "--dtype", "-p", "-n", "-r", "-t", "--bw-mib",
        "--tmpdir", "--max-load",
    };
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        if (!strcmp(flag, flags[i])) return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    options opt = {.n_prompt = 128, .n_gen = 128, .repetitions = 5, .bw_bytes = 512u << 20,
                   .max_load = 100.0};
    const char *gen = NULL, *backends = "cpu", *gemv = "auto", *dtype = "f32";
    const char *tmp = getenv("TMPDIR");
    char tmpdir[4096];
    snprintf(tmpdir, sizeof tmpdir, "%s", tmp && *tmp ? tmp : "/tmp");

    /* flags; the model files keep their order */
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (!strcmp(flag, "-h") || !strcmp(flag, "--help")) {
            usage(stdout);
            return 0;
        }
        if (!takes_value(flag)) die("unknown argument '%s' (see --help)", flag);
        if (i + 1 >= argc) die("%s needs a value", flag);
        const char *value = argv[++i];
        if (!strcmp(flag, "-m")) add_model(&opt, value, value, 0);
        else if (!strcmp(flag, "--gen")) gen = value;
        else if (!strcmp(flag, "--backends")) backends = value;
        else if (!strcmp(flag, "--gemv")) gemv = value;
        else if (!strcmp(flag, "--dtype")) dtype = value;
        else if (!strcmp(flag, "-p")) opt.n_prompt = parse_positive(flag, value);
        else if (!strcmp(flag, "-n")) opt.n_gen = parse_positive(flag, value);
        else if (!strcmp(flag, "-r")) opt.repetitions = parse_positive(flag, value);
        else if (!strcmp(flag, "-t")) opt.threads = parse_positive(flag, value);
        else if (!strcmp(flag, "--bw-mib")) {
            opt.bw_bytes = (size_t)parse_positive(flag, value) << 20;
        }
        else if (!strcmp(flag, "--tmpdir")) snprintf(tmpdir, sizeof tmpdir, "%s", value);
        else if (!strcmp(flag, "--max-load")) opt.max_load = parse_percent(flag, value);
    }
    each_item(&opt, "--backends", backends, add_backend);
    each_item(&opt, "--gemv", gemv, add_gemv);
    each_item(&opt, "--dtype", dtype, add_dtype);
    if (opt.n_backends == 0 || opt.n_gemv == 0 || opt.n_dtype == 0) {
        die("--backends, --gemv and --dtype need at least one value");
    }
#ifdef _OPENMP
    if (opt.threads > 0) omp_set_num_threads(opt.threads);
    int threads = omp_get_max_threads();
#else
    int threads = 1;
#endif

    /* the generated models in a fresh folder */
    char gen_dir[4200] = "";
    if (gen) {
        snprintf(gen_dir, sizeof gen_dir, "%s/llama2cl-bench-XXXXXX", tmpdir);
        if (!mkdtemp(gen_dir)) die("--tmpdir: cannot create a folder in %s: %s", tmpdir,
                                   strerror(errno));
        opt.tmpdir = gen_dir;
        each_item(&opt, "--gen", gen, add_generated);
    }
    if (opt.n_models == 0) die("no model: give -m PATH or --gen SHAPES");

    /* the bandwidth buffer, touched by the threads that will read it */
    size_t bw_words = opt.bw_bytes / sizeof(uint64_t);
    size_t bw_alloc = (opt.bw_bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    uint64_t *bw_buf = aligned_alloc(HUGE_PAGE, bw_alloc);
    if (!bw_buf) die("--bw-mib: cannot allocate %zu MiB", opt.bw_bytes >> 20);
#ifdef MADV_HUGEPAGE
    /* in huge pages where the system allows, as the kernel may map a cached checkpoint's */
    madvise(bw_buf, bw_alloc, MADV_HUGEPAGE);
#endif
    bandwidth_buffer bw = {bw_buf, bw_words};
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < bw_words; i++) {
        bw_buf[i] = i;
    }
    double bandwidth = read_bandwidth(&bw, 5, opt.max_load);
    printf("llama2cl-bench: pp%d, tg%d, %d repetitions, %d thread%s; memory read bandwidth "
           "%.2f GB/s (best of 5 passes over %zu MiB)\n\n", opt.n_prompt, opt.n_gen,
           opt.repetitions, threads, threads == 1 ? "" : "s", bandwidth / 1e9, opt.bw_bytes >> 20);
    print_header();
    fflush(stdout);

    /* every model on every backend variant */
    notes n = {.used = 0};
    n.notes[0] = '\0';
    for (int mi = 0; mi < opt.n_models; mi++) {
        model_entry *m = &opt.models[mi];
        l2c_model *model = NULL;
        l2c_status s = l2c_model_load(m->path, &model);
        if (s != L2C_OK) {
            char line[1024];
            snprintf(line, sizeof line, "%s: not loaded (%s)", m->label, l2c_last_error());
            add_note(&n, line);
            continue;
        }
        for (int bi = 0; bi < opt.n_backends; bi++) {
            int device = opt.backends[bi].device;
            if (device < 0) {
                bench_row(m, model, -1, NULL, &opt, &bw, &n);
                continue;
            }
            for (int gi = 0; gi < opt.n_gemv; gi++) {
                for (int di = 0; di < opt.n_dtype; di++) {
                    l2c_opencl_options cl;
                    l2c_opencl_options_default(&cl);
                    cl.device = device;
                    cl.gemv = opt.gemv[gi];
                    cl.dtype = opt.dtype[di];
                    bench_row(m, model, device, &cl, &opt, &bw, &n);
                }
            }
        }
        l2c_model_free(model);
    }

    /* what the columns mean, and the rows left out */
    printf("\nweight MB/token: matrices, norms and one embedding row read per generated token "
           "(the key/value cache not counted); GB/s: that times tg t/s; mem read GB/s: this "
           "machine's, the best of 2 passes over a buffer with the same threads just before "
           "each tg repetition (median); %% of mem: the median over the repetitions of GB/s "
           "over it; others %%: the median share of all CPUs that other processes used during "
           "the repetitions.\n");
    if (n.used) printf("\n%s", n.notes);

    for (int mi = 0; mi < opt.n_models; mi++) {
        if (opt.models[mi].generated) {
            remove(opt.models[mi].path);
            free((char *)opt.models[mi].path);
        }
    }
    if (gen_dir[0]) rmdir(gen_dir);
    free(bw_buf);
    return 0;
}
