/*
 * opencl_tune.c - which engine runs each product: CLBlast or llama2cl's own kernels, for one
 * token (gemv) and for a batch of prompt tokens (gemm).
 *
 * With L2C_GEMV_AUTO each product's engines are timed once per device and shape, and the winners
 * are kept in a small text file, so that later runs on the same device start without timing:
 *
 *   $LLAMA2CL_CACHE_DIR/gemv.txt, else $XDG_CACHE_HOME/llama2cl/gemv.txt,
 *   else $HOME/.cache/llama2cl/gemv.txt
 *
 * The file starts with the line "# llama2cl engine cache 1"; every other line is a comment
 * ('#') or one choice of seven tab-separated fields, an optional eighth with the timings:
 *
 *   device name, gemv or gemm, weight type (f32, f16, q8), rows, cols, tokens, engine
 *
 * A file that breaks this anywhere is ignored as a whole (the backend's description says so)
 * and rewritten. Writes go to a temporary file in the same folder, renamed over the old one, so
 * that a reader never sees half a file.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "opencl_backend.h"

#define L2C_CACHE_HEADER "# llama2cl engine cache 1"
#define L2C_CACHE_FILE   "gemv.txt"
#define L2C_CACHE_MAX_ENTRIES 4096

static const char *const wtype_names[] = {"f32", "f16", "q8"};

/* ------------------------------------------------------------------------------------------------
 * the cache file
 */

typedef struct {
    char device[256];
    int  gemm;        /* 0: gemv, 1: gemm */
    int  wtype;
    int  rows, cols, tokens;
    int  engine;      /* l2c_cl_gemv or l2c_cl_gemm */
    char timings[128];
} l2c_cache_entry;

typedef struct {
    l2c_cache_entry *entries;
    int              n;
    int              max;
    char             path[4096];
    char             notice[96]; /* why the file was ignored, when it was */
} l2c_cache;

/* The cache file's path into path; 0 when no folder is known. */
static int cache_path(char *path, size_t size, char *dir, size_t dir_size) {
    const char *env = getenv("LLAMA2CL_CACHE_DIR");
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (env && env[0]) n = snprintf(dir, dir_size, "%s", env);
    else if (xdg && xdg[0]) n = snprintf(dir, dir_size, "%s/llama2cl", xdg);
    else if (home && home[0]) n = snprintf(dir, dir_size, "%s/.cache/llama2cl", home);
    else return 0;
    if (n < 0 || (size_t)n >= dir_size) return 0;
    n = snprintf(path, size, "%s/%s", dir, L2C_CACHE_FILE);
    return n > 0 && (size_t)n < size;
}

/* A device name as one field: tabs and line breaks become spaces. */
static void field_of(const char *name, char *out, size_t size) {
    snprintf(out, size, "%s", name);
    for (char *p = out; *p; p++) {
        if (*p == '\t' || *p == '\n' || *p == '\r') *p = ' ';
    }
}

static int index_of(const char *word, const char *const *names, int n) {
    for (int i = 0; i < n; i++) {
        if (!strcmp(word, names[i])) return i;
    }
    return -1;
}

/* A positive int from the whole of text, or -1. */
static int positive_int(const char *text) {
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end != '\0' || v <= 0 || v > 1 << 30) return -1;
    return (int)v;
}

/* Parses one choice line (without its newline) into e; 0 when malformed. */
static int parse_entry(char *line, l2c_cache_entry *e) {
    char *fields[8] = {0};
    int n = 0;
    for (char *p = line; n < 8;) {
        fields[n++] = p;
        char *tab = n < 8 ? strchr(p, '\t') : NULL;
        if (!tab) break;
        *tab = '\0';
        p = tab + 1;
    }
    if (n < 7 || fields[0][0] == '\0' || strlen(fields[0]) >= sizeof e->device) return 0;
    memset(e, 0, sizeof *e);
    snprintf(e->device, sizeof e->device, "%s", fields[0]);
    e->gemm = !strcmp(fields[1], "gemm") ? 1 : !strcmp(fields[1], "gemv") ? 0 : -1;
    e->wtype = index_of(fields[2], wtype_names, 3);
    e->rows = positive_int(fields[3]);
    e->cols = positive_int(fields[4]);
    e->tokens = positive_int(fields[5]);
    e->engine = e->gemm == 1 ? index_of(fields[6], l2c_cl_gemm_names, L2C_CL_N_GEMM)
                             : index_of(fields[6], l2c_cl_gemv_names, L2C_CL_N_GEMV);
    if (n == 8) snprintf(e->timings, sizeof e->timings, "%s", fields[7]);
    if (e->gemm < 0 || e->wtype < 0 || e->rows < 0 || e->cols < 0 || e->tokens < 0 ||
        e->engine < 0) {
        return 0;
    }
    /* CLBlast has no fp16 or Q8_0 matrix-vector product */
    return !(e->gemm == 0 && e->engine == L2C_CL_GEMV_CLBLAST && e->wtype != L2C_CL_F32);
}

/* Reads the cache file, if any, into cache; a malformed file leaves it empty with a notice. */
static l2c_status cache_read(l2c_cache *cache) {
    FILE *in = fopen(cache->path, "r");
    if (!in) return L2C_OK;
    char line[1024];
    int number = 0;
    int bad = 0;
    while (!bad && fgets(line, sizeof line, in)) {
        number++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        else if (!feof(in)) bad = number; /* a line longer than any choice */
        if (bad) break;
        if (number == 1) {
            if (strcmp(line, L2C_CACHE_HEADER) != 0) bad = number;
            continue;
        }
        if (line[0] == '#' || line[0] == '\0') continue;
        if (cache->n == cache->max) {
            int max = cache->max ? cache->max * 2 : 64;
            if (max > L2C_CACHE_MAX_ENTRIES) {
                bad = number;
                break;
            }
            l2c_cache_entry *more = realloc(cache->entries, (size_t)max * sizeof *more);
            if (!more) {
                fclose(in);
                return l2c_fail(L2C_ERR_NOMEM, "out of memory reading %s", cache->path);
            }
            cache->entries = more;
            cache->max = max;
        }
        if (!parse_entry(line, &cache->entries[cache->n])) bad = number;
        else cache->n++;
    }
    if (!bad && number == 0) bad = 1;
    if (!bad && ferror(in)) bad = number + 1;
    fclose(in);
    if (bad) {
        cache->n = 0;
        snprintf(cache->notice, sizeof cache->notice, "corrupt %s ignored (line %d)",
                 L2C_CACHE_FILE, bad);
    }
    return L2C_OK;
}

static l2c_cache_entry *cache_find(l2c_cache *cache, const l2c_cache_entry *key) {
    for (int i = 0; i < cache->n; i++) {
        l2c_cache_entry *e = &cache->entries[i];
        if (!strcmp(e->device, key->device) && e->gemm == key->gemm && e->wtype == key->wtype &&
            e->rows == key->rows && e->cols == key->cols && e->tokens == key->tokens) {
            return e;
        }
    }
    return NULL;
}

/* Adds or replaces the entry of key's shape. */
static l2c_status cache_put(l2c_cache *cache, const l2c_cache_entry *key) {
    l2c_cache_entry *e = cache_find(cache, key);
    if (!e) {
        if (cache->n == cache->max) {
            int max = cache->max ? cache->max * 2 : 64;
            l2c_cache_entry *more = realloc(cache->entries, (size_t)max * sizeof *more);
            if (!more) return l2c_fail(L2C_ERR_NOMEM, "out of memory for the engine cache");
            cache->entries = more;
            cache->max = max;
        }
        e = &cache->entries[cache->n++];
    }
    *e = *key;
    return L2C_OK;
}

/* Creates dir and its parents; 0 on failure. */
static int make_dirs(const char *dir) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return 0;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST) return 0;
        *p = '/';
    }
    return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* Writes the cache through a temporary file renamed over the old one; 0 on failure (the cache
 * only saves time, so a read-only folder is no error). */
static int cache_write(const l2c_cache *cache, const char *dir) {
    if (!make_dirs(dir)) return 0;
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", cache->path);
    int fd = mkstemp(tmp);
    if (fd < 0) return 0;
    FILE *out = fdopen(fd, "w");
    if (!out) {
        close(fd);
        unlink(tmp);
        return 0;
    }
    fprintf(out, "%s\n", L2C_CACHE_HEADER);
    fprintf(out, "# device\tgemv or gemm\tweights\trows\tcols\ttokens\tengine\tseconds per "
            "candidate\n");
    for (int i = 0; i < cache->n; i++) {
        const l2c_cache_entry *e = &cache->entries[i];
        fprintf(out, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%s\n", e->device, e->gemm ? "gemm" : "gemv",
                wtype_names[e->wtype], e->rows, e->cols, e->tokens,
                e->gemm ? l2c_cl_gemm_names[e->engine] : l2c_cl_gemv_names[e->engine],
                e->timings);
    }
    int ok = fflush(out) == 0 && fsync(fileno(out)) == 0;
    ok = fclose(out) == 0 && ok;
    if (!ok || rename(tmp, cache->path) != 0) {
        unlink(tmp);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------------
 * timing
 */

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The fastest of reps runs of product kind (layer 0's matrix), each waited for, after one
 * warm-up run (which also compiles CLBlast's kernels). gemm: batched over b->batch tokens. */
static l2c_status time_product(l2c_cl_backend *b, l2c_cl_product kind, int gemm, int reps,
                               double *seconds) {
    *seconds = INFINITY;
    int layer = kind == L2C_CL_CLS ? -1 : 0;
    for (int r = 0; r <= reps; r++) {
        double start = seconds_now();
        l2c_status status = gemm ? l2c_cl_product_batch(b, kind, layer, b->batch)
                                 : l2c_cl_product_vector(b, kind, layer);
        if (status != L2C_OK) return status;
        cl_int err = clFinish(b->queue);
        if (err != CL_SUCCESS) {
            return l2c_cl_fail(L2C_ERR_DEVICE, err, "timing the products by %s on %s",
                               l2c_cl_product_names[kind], b->dev.name);
        }
        double elapsed = seconds_now() - start;
        if (r > 0 && elapsed < *seconds) *seconds = elapsed;
    }
    return L2C_OK;
}

/* The shape of product kind as a cache key. */
static void key_of(const l2c_cl_backend *b, l2c_cl_product kind, int gemm,
                   l2c_cache_entry *key) {
    const l2c_cl_matrix *m = kind == L2C_CL_CLS ? &b->wcls
                           : kind == L2C_CL_QKV ? &b->layers[0].wqkv
                           : kind == L2C_CL_WO ? &b->layers[0].wo
                           : kind == L2C_CL_W13 ? &b->layers[0].w13 : &b->layers[0].w2;
    memset(key, 0, sizeof *key);
    field_of(b->dev.name, key->device, sizeof key->device);
    key->gemm = gemm;
    key->wtype = b->wtype;
    key->rows = m->rows;
    key->cols = m->cols;
    key->tokens = gemm ? b->batch : 1;
}

/* Times every candidate engine of one product and records the fastest in key. */
static l2c_status time_candidates(l2c_cl_backend *b, l2c_cl_product kind, int gemm,
                                  l2c_cache_entry *key) {
    int n = gemm ? L2C_CL_N_GEMM : L2C_CL_N_GEMV;
    int first = !gemm && b->wtype != L2C_CL_F32 ? L2C_CL_GEMV_ROWS : 0;
    double best = INFINITY;
    size_t used = 0;
    key->engine = first;
    for (int e = first; e < n; e++) {
        double seconds;
        if (gemm) b->gemm[kind] = (l2c_cl_gemm)e;
        else b->gemv[kind] = (l2c_cl_gemv)e;
        l2c_status status = time_product(b, kind, gemm, gemm ? 2 : 4, &seconds);
        if (status != L2C_OK) return status;
        if (seconds < best) {
            best = seconds;
            key->engine = e;
        }
        const char *name = gemm ? l2c_cl_gemm_names[e] : l2c_cl_gemv_names[e];
        int w = snprintf(key->timings + used, sizeof key->timings - used, "%s%s %.3g",
                         used ? ", " : "", name, seconds);
        if (w > 0 && (size_t)w < sizeof key->timings - used) used += (size_t)w;
    }
    return L2C_OK;
}

/* ------------------------------------------------------------------------------------------------
 * the choice
 */

/* Sets every product's engines by cache or timing; writes the cache when it timed anything. */
static l2c_status choose_auto(l2c_cl_backend *b, int *timed, int *cached, char *notice,
                              size_t notice_size) {
    l2c_cache cache = {0};
    char dir[4096];
    int have_path = cache_path(cache.path, sizeof cache.path, dir, sizeof dir);
    l2c_status status = have_path ? cache_read(&cache) : L2C_OK;
    if (cache.notice[0]) snprintf(notice, notice_size, "%s", cache.notice);

    /* each product's gemv, and its gemm when the prompt runs in batches */
    for (int kind = 0; kind < L2C_CL_N_PRODUCTS && status == L2C_OK; kind++) {
        for (int gemm = 0; gemm <= 1 && status == L2C_OK; gemm++) {
            if (gemm && (kind == L2C_CL_CLS || b->batch == 0)) continue;
            l2c_cache_entry key;
            key_of(b, (l2c_cl_product)kind, gemm, &key);
            const l2c_cache_entry *found = cache_find(&cache, &key);
            if (found) {
                key.engine = found->engine;
                (*cached)++;
            } else {
                status = time_candidates(b, (l2c_cl_product)kind, gemm, &key);
                if (status == L2C_OK) status = cache_put(&cache, &key);
                (*timed)++;
            }
            if (gemm) b->gemm[kind] = (l2c_cl_gemm)key.engine;
            else b->gemv[kind] = (l2c_cl_gemv)key.engine;
        }
    }

    /* the new choices into the file */
    if (status == L2C_OK && *timed > 0 && have_path && !cache_write(&cache, dir) &&
        !notice[0]) {
        snprintf(notice, notice_size, "could not write the engine cache");
    }
    free(cache.entries);
    return status;
}

l2c_status l2c_cl_choose_engines(l2c_cl_backend *b, l2c_gemv_engine wanted) {
    int cpu = (b->dev.type & CL_DEVICE_TYPE_CPU) != 0;
    l2c_cl_gemv own_gemv = cpu ? L2C_CL_GEMV_ROWS : L2C_CL_GEMV_WG;
    int timed = 0, cached = 0;
    char notice[96] = "";
    l2c_status status = L2C_OK;

    /* the profile does not see the timing runs */
    int profile = b->profile;
    b->profile = 0;
    if (wanted == L2C_GEMV_AUTO) {
        status = choose_auto(b, &timed, &cached, notice, sizeof notice);
    } else {
        /* CLBlast, except for fp16 and Q8_0 matrix-vector products, which it does not have */
        int clblast = wanted == L2C_GEMV_CLBLAST;
        for (int k = 0; k < L2C_CL_N_PRODUCTS; k++) {
            b->gemv[k] = clblast && b->wtype == L2C_CL_F32 ? L2C_CL_GEMV_CLBLAST : own_gemv;
            b->gemm[k] = clblast ? L2C_CL_GEMM_CLBLAST : L2C_CL_GEMM_OWN;
        }
        /* CLBlast compiles its matrix-vector kernel now, not at the first token */
        if (b->gemv[L2C_CL_CLS] == L2C_CL_GEMV_CLBLAST) {
            status = l2c_cl_product_vector(b, L2C_CL_CLS, -1);
        }
    }
    b->profile = profile;
    if (status != L2C_OK) return status;

    /* "gemv rows, gemm own (auto: 9 timed, 0 from cache)": one name when every product has the
     * same engine, else one per product in the order q k v, wo, w1 w3, w2, classifier */
    size_t used = 0;
    used += (size_t)snprintf(b->engines + used, sizeof b->engines - used, "gemv");
    int same = 1;
    for (int k = 1; k < L2C_CL_N_PRODUCTS; k++) same = same && b->gemv[k] == b->gemv[0];
    for (int k = 0; k < (same ? 1 : L2C_CL_N_PRODUCTS) && used < sizeof b->engines; k++) {
        used += (size_t)snprintf(b->engines + used, sizeof b->engines - used, " %s",
                                 l2c_cl_gemv_names[b->gemv[k]]);
    }
    if (used < sizeof b->engines && b->batch > 0) {
        used += (size_t)snprintf(b->engines + used, sizeof b->engines - used, ", gemm");
        same = 1;
        for (int k = 1; k < L2C_CL_CLS; k++) same = same && b->gemm[k] == b->gemm[0];
        for (int k = 0; k < (same ? 1 : L2C_CL_CLS) && used < sizeof b->engines; k++) {
            used += (size_t)snprintf(b->engines + used, sizeof b->engines - used, " %s",
                                     l2c_cl_gemm_names[b->gemm[k]]);
        }
    } else if (used < sizeof b->engines) {
        used += (size_t)snprintf(b->engines + used, sizeof b->engines - used,
                                 ", prompts token by token");
    }
    if (used < sizeof b->engines && wanted == L2C_GEMV_AUTO) {
        snprintf(b->engines + used, sizeof b->engines - used, " (auto: %d timed, %d from "
                 "cache%s%s)", timed, cached, notice[0] ? "; " : "", notice);
    }
    return L2C_OK;
}
