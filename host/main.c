/*
 * main.c - the llama2cl command line: llama2.c's flags and output, on the CPU or an OpenCL device.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "llama2cl.h"

/* the validation tolerance for fp32 weights: reordered fp32 sums stay far below it */
#define DEFAULT_TOLERANCE_F32 1e-4
/* for Q8_0 and fp16 weights the device may round activations differently than the reference */
#define DEFAULT_TOLERANCE_LOWP 3e-2

static const char *usage_text =
"Usage: llama2cl [options] <checkpoint>\n"
"Runs a Llama-2-architecture model in llama2.c's checkpoint formats on an OpenCL device or the\n"
"CPU. Options may stand before or after the checkpoint.\n"
"\n"
"Generation (llama2.c's flags):\n"
"  -t <float>   temperature in [0, inf), default 1.0; 0 is greedy\n"
"  -p <float>   top-p (nucleus) in [0, 1], default 0.9; 0 or 1 disables it\n"
"  -s <int>     random seed, default the current time (0 or negative too)\n"
"  -n <int>     positions to run, prompt included, default 256; 0 means seq_len; more than\n"
"               seq_len is clamped to it with a notice\n"
"  -i <string>  input prompt (may be empty)\n"
"  -z <path>    tokenizer, default tokenizer.bin beside the checkpoint, else in the current\n"
"               directory\n"
"  -m <mode>    generate (default) or chat\n"
"  -y <string>  system prompt in chat mode (asked on stdin when absent)\n"
"  -k <int>     top-k: sample among the k most likely tokens only; 0 disables (default)\n"
"\n"
"Where it runs:\n"
"  --cpu            the CPU reference path\n"
"  --device <N>     OpenCL device N (see --list-devices); default: device 0 when there is one\n"
"  --list-devices   list the OpenCL devices with their index and exit\n"
"  --gemv <engine>  matrix engine on the device: clblast, own or auto (default: auto, the faster\n"
"                   per product, timed once per device and kept in ~/.cache/llama2cl/gemv.txt;\n"
"                   LLAMA2CL_CACHE_DIR moves it); fp16 and Q8_0 weights always use llama2cl's\n"
"                   kernels for one token\n"
"  --dtype <type>   weights on the device: f32 (default: as in the file, Q8_0 for version-2\n"
"                   files) or f16 (fp32 files halved at load)\n"
"  --validate       run the device and the CPU reference in lockstep for -n positions, print\n"
"                   the largest logit differences per position, exit 1 past the tolerance\n"
"  --tolerance <x>  relative tolerance for --validate (default 1e-4 for fp32, 3e-2 otherwise)\n"
"  --profile        print the device's time per kernel kind per token at the end\n"
"  --mem-limit <MiB> use at most this much device memory (default: all of it)\n"
"  -h, --help       this text\n";

static void die(const char *fmt, const char *a, const char *b) {
    fprintf(stderr, "llama2cl: ");
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n");
    exit(1);
}

static void die_status(l2c_status s) {
    (void)s;
    fprintf(stderr, "llama2cl: %s\n", l2c_last_error());
    exit(1);
}

/* ------------------------------------------------------------------------------------------------
 * options
 */

typedef struct {
    const char *checkpoint;
    const char *tokenizer;
    const char *prompt;
    const char *system_prompt;
    const char *mode;
    float temperature;
    float topp;
    long long seed;
    int steps;
    int steps_given; /* -n was on the command line */
    int topk;
    int cpu;
    int device; /* -1: not given */
    int list_devices;
    int validate;
    double tolerance; /* 0: by weight type */
    int profile;
    long long mem_limit_mib;
    l2c_gemv_engine gemv;
    l2c_dtype dtype;
} options;

static long long parse_int(const char *flag, const char *value, long long min, long long max) {
    char *end;
    errno = 0;
    long long v = strtoll(value, &end, 10);
    if (errno || end == value || *end != '\0') die("%s: '%s' is not an integer", flag, value);
    if (v < min || v > max) {
        char range[64];
        snprintf(range, sizeof range, "%lld to %lld", min, max);
        fprintf(stderr, "llama2cl: %s: %s is outside %s\n", flag, value, range);
        exit(1);
    }
    return v;
}

static double parse_float(const char *flag, const char *value, double min, double max) {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (errno || end == value || *end != '\0' || !isfinite(v)) {
        die("%s: '%s' is not a finite number", flag, value);
    }
    if (v < min || v > max) {
        fprintf(stderr, "llama2cl: %s: %s is outside [%g, %g]\n", flag, value, min, max);
        exit(1);
    }
    return v;
}

static void parse_options(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->temperature = 1.0f;
    o->topp = 0.9f;
    o->steps = 256;
    o->device = -1;
    o->mode = "generate";
    o->gemv = L2C_GEMV_AUTO;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            exit(0);
        }
        if (!strcmp(a, "--cpu"))          { o->cpu = 1; continue; }
        if (!strcmp(a, "--list-devices")) { o->list_devices = 1; continue; }
        if (!strcmp(a, "--validate"))     { o->validate = 1; continue; }
        if (!strcmp(a, "--profile"))      { o->profile = 1; continue; }
        if (a[0] != '-' || a[1] == '\0') {
            if (o->checkpoint) die("unexpected argument '%s' (the checkpoint is '%s')", a,
                                   o->checkpoint);
            o->checkpoint = a;
            continue;
        }

        /* every other flag takes a value */
        int known = !strcmp(a, "-t") || !strcmp(a, "-p") || !strcmp(a, "-s") ||
                    !strcmp(a, "-n") || !strcmp(a, "-i") || !strcmp(a, "-z") ||
                    !strcmp(a, "-m") || !strcmp(a, "-y") || !strcmp(a, "-k") ||
                    !strcmp(a, "--device") || !strcmp(a, "--gemv") || !strcmp(a, "--dtype") ||
                    !strcmp(a, "--tolerance") ||
                    !strcmp(a, "--mem-limit");
        if (!known) die("unknown flag '%s' (see --help)", a, NULL);
        if (i + 1 >= argc) die("%s needs a value (see --help)", a, NULL);
        const char *v = argv[++i];

        if (!strcmp(a, "-t")) {
            o->temperature = (float)parse_float(a, v, 0.0, 1e6);
        } else if (!strcmp(a, "-p")) {
            o->topp = (float)parse_float(a, v, 0.0, 1.0);
        } else if (!strcmp(a, "-s")) {
            o->seed = parse_int(a, v, LLONG_MIN, LLONG_MAX);
        } else if (!strcmp(a, "-n")) {
            o->steps = (int)parse_int(a, v, 0, INT_MAX);
            o->steps_given = 1;
        } else if (!strcmp(a, "-k")) {
            o->topk = (int)parse_int(a, v, 0, INT_MAX);
        } else if (!strcmp(a, "-i")) {
            o->prompt = v;
        } else if (!strcmp(a, "-z")) {
            o->tokenizer = v;
        } else if (!strcmp(a, "-y")) {
            o->system_prompt = v;
        } else if (!strcmp(a, "-m")) {
            if (strcmp(v, "generate") && strcmp(v, "chat")) {
                die("-m: unknown mode '%s' (generate or chat)", v, NULL);
            }
            o->mode = v;
        } else if (!strcmp(a, "--device")) {
            o->device = (int)parse_int(a, v, 0, INT_MAX);
        } else if (!strcmp(a, "--mem-limit")) {
            o->mem_limit_mib = parse_int(a, v, 1, 1LL << 30);
        } else if (!strcmp(a, "--tolerance")) {
            o->tolerance = parse_float(a, v, 0.0, 1e9);
        } else if (!strcmp(a, "--gemv")) {
            if (!strcmp(v, "clblast"))   o->gemv = L2C_GEMV_CLBLAST;
            else if (!strcmp(v, "own"))  o->gemv = L2C_GEMV_OWN;
            else if (!strcmp(v, "auto")) o->gemv = L2C_GEMV_AUTO;
            else die("--gemv: unknown engine '%s' (clblast, own or auto)", v, NULL);
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "f32"))      o->dtype = L2C_DTYPE_F32;
            else if (!strcmp(v, "f16")) o->dtype = L2C_DTYPE_F16;
            else die("--dtype: unknown weight type '%s' (f32 or f16)", v, NULL);
        }
    }
    if (o->cpu && o->device >= 0) die("--cpu and --device %s exclude each other", "N", NULL);
    if (o->cpu && o->validate) die("--validate compares a device with the CPU: drop --cpu%s", "",
                                   NULL);
}

/* tokenizer.bin beside the checkpoint, else in the current directory */
static char *default_tokenizer(const char *checkpoint) {
    const char *slash = strrchr(checkpoint, '/');
    char *path = NULL;
    if (slash) {
        if (asprintf(&path, "%.*s/tokenizer.bin", (int)(slash - checkpoint), checkpoint) < 0) {
            path = NULL;
        }
        if (path && access(path, R_OK) == 0) return path;
        free(path);
    }
    return strdup("tokenizer.bin");
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------------------------------
 * backends
 */

/* OpenCL device N with the command line's settings */
static l2c_status create_device(const l2c_model *model, const options *o, int device,
                                l2c_backend **backend) {
    l2c_opencl_options cl;
    l2c_opencl_options_default(&cl);
    cl.device = device;
    cl.gemv = o->gemv;
    cl.dtype = o->dtype;
    cl.profile = o->profile;
    cl.mem_limit = (size_t)o->mem_limit_mib << 20;
    return l2c_backend_opencl_create(model, &cl, backend);
}

static l2c_backend *open_device(const l2c_model *model, const options *o, int device) {
    l2c_backend *backend;
    l2c_status s = create_device(model, o, device, &backend);
    if (s != L2C_OK) die_status(s);
    return backend;
}

static l2c_backend *open_backend(const l2c_model *model, const options *o) {
    l2c_backend *backend;
    if (o->cpu) {
        l2c_status s = l2c_backend_cpu_create(model, &backend);
        if (s != L2C_OK) die_status(s);
        return backend;
    }
    if (o->device >= 0) return open_device(model, o, o->device);

    /* neither flag: the first OpenCL device, else the CPU with a notice */
    l2c_status s = create_device(model, o, 0, &backend);
    if (s == L2C_ERR_NO_DEVICE) {
        fprintf(stderr, "llama2cl: %s; running on the CPU instead\n", l2c_last_error());
        s = l2c_backend_cpu_create(model, &backend);
    }
    if (s != L2C_OK) die_status(s);
    return backend;
}

static int run_validation(const l2c_model *model, const l2c_tokenizer *tokenizer,
                          const options *o, int steps) {
    l2c_backend *device = open_device(model, o, o->device >= 0 ? o->device : 0);
    l2c_backend *cpu;
    l2c_status s = l2c_backend_cpu_create(model, &cpu);
    if (s != L2C_OK) die_status(s);

    const char *prompt = o->prompt ? o->prompt : "";
    int *tokens = malloc((strlen(prompt) + 3) * sizeof(int));
    int n_tokens;
    if (!tokens) die("out of memory%s", "", NULL);
    s = l2c_tokenizer_encode(tokenizer, prompt, 1, 0, tokens, (int)strlen(prompt) + 3,
                             &n_tokens);
    if (s != L2C_OK) die_status(s);

    const l2c_config *c = l2c_model_config(model);
    int low_precision = c->format == L2C_FORMAT_V2 || o->dtype == L2C_DTYPE_F16;
    double tolerance = o->tolerance > 0 ? o->tolerance
                     : low_precision ? DEFAULT_TOLERANCE_LOWP : DEFAULT_TOLERANCE_F32;
    fprintf(stderr, "validating %s against %s over %d positions, relative tolerance %.1e\n",
            l2c_backend_describe(device), l2c_backend_describe(cpu), steps, tolerance);
    double worst;
    s = l2c_validate(cpu, device, tokens, n_tokens, steps, tolerance, stdout, &worst);
    free(tokens);
    l2c_backend_free(device);
    l2c_backend_free(cpu);
    if (s != L2C_OK) {
        fprintf(stderr, "llama2cl: validation failed: %s\n", l2c_last_error());
        return 1;
    }
    fprintf(stderr, "validation passed: largest relative logit difference %.3e\n", worst);
    return 0;
}

/* ------------------------------------------------------------------------------------------------
 * main
 */

int main(int argc, char **argv) {
    options o;
    l2c_status s;
    parse_options(argc, argv, &o);

    /* --validate alternates the CPU and the device: OpenMP's threads must sleep rather than spin
     * while the device works, and the OpenMP runtime reads that setting only at start-up */
    if (o.validate && !getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }

    if (o.list_devices) {
        s = l2c_opencl_list_devices(stdout);
        if (s != L2C_OK) die_status(s);
        return 0;
    }
    if (!o.checkpoint) {
        if (argc == 1) fputs(usage_text, stderr);
        die("no checkpoint given (see --help)%s", "", NULL);
    }

    /* the model and its tokenizer */
    double t0 = now_seconds();
    l2c_model *model;
    if ((s = l2c_model_load(o.checkpoint, &model))) die_status(s);
    const l2c_config *c = l2c_model_config(model);
    char *tokenizer_path = o.tokenizer ? strdup(o.tokenizer) : default_tokenizer(o.checkpoint);
    l2c_tokenizer *tokenizer;
    if ((s = l2c_tokenizer_load(tokenizer_path, c->vocab_size, &tokenizer))) die_status(s);

    /* steps: 0 means the whole context, more is clamped to it */
    int steps = o.steps;
    if (steps == 0) {
        steps = c->seq_len;
    } else if (steps > c->seq_len) {
        if (o.steps_given) {
            fprintf(stderr, "llama2cl: -n %d is beyond the model's seq_len %d; running %d "
                    "positions\n", steps, c->seq_len, c->seq_len);
        }
        steps = c->seq_len;
    }

    /* a prompt that cannot fit the context fails here, before anything is printed */
    if (o.prompt && !strcmp(o.mode, "generate")) {
        size_t max_tokens = strlen(o.prompt) + 3;
        int *tokens = malloc(max_tokens * sizeof(int));
        int n_tokens = 0;
        if (!tokens) die("-i: out of memory for the prompt's tokens%s", "", NULL);
        s = l2c_tokenizer_encode(tokenizer, o.prompt, 1, 0, tokens, (int)max_tokens, &n_tokens);
        free(tokens);
        if (s != L2C_OK) die_status(s);
        if (n_tokens > c->seq_len) {
            fprintf(stderr, "llama2cl: -i: the prompt is %d tokens (BOS included), longer than "
                    "the model's seq_len %d\n", n_tokens, c->seq_len);
            exit(1);
        }
    }

    if (o.validate) {
        int rc = run_validation(model, tokenizer, &o, steps);
        l2c_tokenizer_free(tokenizer);
        free(tokenizer_path);
        l2c_model_free(model);
        return rc;
    }

    l2c_backend *backend = open_backend(model, &o);
    double t1 = now_seconds();
    fprintf(stderr, "loaded %s (dim %d, %d layers, vocab %d, seq_len %d) in %.0f ms; running on "
            "%s\n", o.checkpoint, c->dim, c->n_layers, c->vocab_size, c->seq_len,
            (t1 - t0) * 1e3, l2c_backend_describe(backend));

    /* the sampler, seeded from the clock when no seed is given, as llama2.c does */
    unsigned long long seed = o.seed > 0 ? (unsigned long long)o.seed
                                         : (unsigned int)time(NULL);
    l2c_sampler *sampler;
    if ((s = l2c_sampler_create(c->vocab_size, o.temperature, o.topp, o.topk, seed, &sampler))) {
        die_status(s);
    }

    if (!strcmp(o.mode, "chat")) {
        s = l2c_chat(backend, tokenizer, sampler, o.prompt, o.system_prompt, steps, stdin,
                     stdout);
    } else {
        l2c_generate_stats stats;
        s = l2c_generate(backend, tokenizer, sampler, o.prompt, steps, stdout, &stats);
        if (s == L2C_OK && stats.n_tokens > 1) {
            if (stats.n_prompt > 1) {
                fprintf(stderr, "prompt: %d tokens in %.0f ms (%.1f tok/s)\n", stats.n_prompt,
                        stats.prompt_seconds * 1e3, stats.n_prompt / stats.prompt_seconds);
            }
            fprintf(stderr, "achieved tok/s: %f\n", stats.tokens_per_sec);
        }
    }
    if (s == L2C_OK && o.profile) l2c_backend_report(backend, stderr);

    l2c_sampler_free(sampler);
    l2c_backend_free(backend);
    l2c_tokenizer_free(tokenizer);
    free(tokenizer_path);
    l2c_model_free(model);
    if (s != L2C_OK) die_status(s);
    return 0;
}
