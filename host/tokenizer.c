/*
 * tokenizer.c - llama2.c's byte-pair tokenizer: loading tokenizer.bin, encoding text into token
 * ids and decoding ids back into text pieces.
 *
 * tokenizer.bin holds an int32 max_token_length, then for each of the vocab_size tokens a float
 * score, an int32 byte length and that many bytes (no terminator). The file does not record
 * vocab_size: it must come from the model. Every piece is kept with a NUL appended and handled as
 * a C string, as llama2.c does, so a piece with an embedded NUL acts as its text up to that NUL.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* No real tokenizer comes near this (Llama 2's longest piece is 27 bytes); a larger value is
 * treated as a corrupt header rather than trusted for allocations. */
#define L2C_MAX_TOKEN_LENGTH 65536

/* scores at or below this are never merged, as in llama2.c's merge loop */
#define L2C_MERGE_FLOOR -1e10f

/* ------------------------------------------------------------------------------------------------
 * types
 */

typedef struct {
    const char *str;
    int         id;
} l2c_token_index;

struct l2c_tokenizer {
    int              vocab_size;
    int              max_token_length;
    char           **vocab;        /* vocab_size NUL-terminated pieces, pointing into text */
    int             *vocab_len;    /* strlen of each piece (stops at an embedded NUL) */
    float           *vocab_scores;
    char            *text;         /* every piece, each followed by a NUL */
    l2c_token_index *sorted_vocab; /* by strcmp, then by id */
    char             byte_pieces[512]; /* byte i as the string at 2 * i */
    char            *path;         /* for messages */
};

/* one candidate merge of the adjacent symbols left and right into id */
typedef struct {
    float score;
    int   left;
    int   right;
    int   left_token;
    int   right_token;
    int   id;
} l2c_merge;

/* ------------------------------------------------------------------------------------------------
 * loading
 */

/* Reads exactly size bytes; L2C_OK, or the status and text describing a short read. */
static l2c_status read_exact(FILE *file, void *dst, size_t size, const char **why) {
    if (fread(dst, 1, size, file) == size) return L2C_OK;
    if (ferror(file)) {
        *why = strerror(errno);
        return L2C_ERR_IO;
    }
    *why = "file is truncated";
    return L2C_ERR_FORMAT;
}

/* Reads and drops up to count bytes; returns how many it dropped. */
static long long skip_bytes(FILE *file, long long count) {
    char chunk[4096];
    long long skipped = 0;
    while (skipped < count) {
        long long want = count - skipped;
        size_t size = want < (long long)sizeof chunk ? (size_t)want : sizeof chunk;
        size_t got = fread(chunk, 1, size, file);
        skipped += (long long)got;
        if (got < size) break;
    }
    return skipped;
}

/* Measures what follows the last expected token, for the message: *extra gets its bytes; the
 * result is the number of whole tokens it holds, or -1 when it is not a sequence of tokens. */
static int count_trailing_tokens(FILE *file, int max_token_length, long long *extra) {
    int n = 0;
    *extra = 0;
    for (;;) {
        unsigned char head[8];
        size_t got = fread(head, 1, sizeof head, file);
        *extra += (long long)got;
        if (got == 0) return n;
        int32_t len;
        memcpy(&len, head + 4, sizeof len);
        if (got < sizeof head || len < 0 || len > max_token_length) break;
        long long skipped = skip_bytes(file, len);
        *extra += skipped;
        if (skipped < len) break;
        n++;
    }
    *extra += skip_bytes(file, LLONG_MAX);
    return -1;
}

static int compare_token_index(const void *a, const void *b) {
    const l2c_token_index *x = a, *y = b;
    int c = strcmp(x->str, y->str);
    if (c != 0) return c;
    return (x->id > y->id) - (x->id < y->id);
}

/* Reads the whole file into t: header, tokens, then checks that nothing follows. */
static l2c_status read_tokenizer(l2c_tokenizer *t, FILE *file, const char *path) {
    const char *why = NULL;
    l2c_status status;

    /* header */
    int32_t max_token_length;
    status = read_exact(file, &max_token_length, sizeof max_token_length, &why);
    if (status != L2C_OK) {
        return l2c_fail(status, "%s: cannot read max_token_length: %s", path, why);
    }
    if (max_token_length <= 0 || max_token_length > L2C_MAX_TOKEN_LENGTH) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: max_token_length is %d, expected 1 to %d",
                        path, (int)max_token_length, L2C_MAX_TOKEN_LENGTH);
    }
    t->max_token_length = max_token_length;

    /* tokens: score, length, bytes; the pieces grow into one block of text */
    size_t text_size = 0, text_cap = 4096;
    size_t *offsets = malloc((size_t)t->vocab_size * sizeof *offsets);
    t->text = malloc(text_cap);
    if (!offsets || !t->text) {
        free(offsets);
        return l2c_fail(L2C_ERR_NOMEM, "%s: no memory for %d tokens", path, t->vocab_size);
    }
    for (int i = 0; i < t->vocab_size; i++) {
        float score;
        size_t got = fread(&score, 1, sizeof score, file);
        if (got != sizeof score) {
            free(offsets);
            if (ferror(file)) {
                return l2c_fail(L2C_ERR_IO, "%s: cannot read token %d: %s", path, i,
                                strerror(errno));
            }
            if (got == 0) {
                return l2c_fail(L2C_ERR_FORMAT, "%s: file ends after %d tokens, but vocab_size "
                                "is %d", path, i, t->vocab_size);
            }
            return l2c_fail(L2C_ERR_FORMAT, "%s: file is truncated in the score of token %d",
                            path, i);
        }
        int32_t len;
        status = read_exact(file, &len, sizeof len, &why);
        if (status != L2C_OK) {
            free(offsets);
            return l2c_fail(status, "%s: cannot read the length of token %d: %s", path, i, why);
        }
        if (len < 0 || len > max_token_length) {
            free(offsets);
            return l2c_fail(L2C_ERR_FORMAT, "%s: token %d has length %d, expected 0 to "
                            "max_token_length %d", path, i, (int)len, (int)max_token_length);
        }
        if (text_cap - text_size < (size_t)len + 1) {
            while (text_cap - text_size < (size_t)len + 1) text_cap *= 2;
            char *grown = realloc(t->text, text_cap);
            if (!grown) {
                free(offsets);
                return l2c_fail(L2C_ERR_NOMEM, "%s: no memory for the pieces", path);
            }
            t->text = grown;
        }
        status = read_exact(file, t->text + text_size, (size_t)len, &why);
        if (status != L2C_OK) {
            free(offsets);
            return l2c_fail(status, "%s: cannot read the %d bytes of token %d: %s", path,
                            (int)len, i, why);
        }
        offsets[i] = text_size;
        text_size += (size_t)len;
        t->text[text_size++] = '\0';
        t->vocab_scores[i] = score;
    }
    for (int i = 0; i < t->vocab_size; i++) {
        t->vocab[i] = t->text + offsets[i];
        t->vocab_len[i] = (int)strlen(t->vocab[i]);
    }
    free(offsets);

    /* nothing may follow the last token */
    int next = fgetc(file);
    if (next != EOF) {
        ungetc(next, file);
        long long extra;
        int more = count_trailing_tokens(file, max_token_length, &extra);
        if (more > 0) {
            return l2c_fail(L2C_ERR_FORMAT, "%s: file holds %lld tokens, but vocab_size is %d",
                            path, (long long)t->vocab_size + more, t->vocab_size);
        }
        return l2c_fail(L2C_ERR_FORMAT, "%s: %lld unexpected bytes after the last token (%d, "
                        "vocab_size %d)", path, extra, t->vocab_size - 1, t->vocab_size);
    }
    if (ferror(file)) {
        return l2c_fail(L2C_ERR_IO, "%s: read error after token %d: %s", path,
                        t->vocab_size - 1, strerror(errno));
    }
    return L2C_OK;
}

l2c_status l2c_tokenizer_load(const char *path, int vocab_size, l2c_tokenizer **tokenizer) {
    if (!tokenizer) return l2c_fail(L2C_ERR_ARG, "tokenizer: no output pointer");
    *tokenizer = NULL;
    if (!path) return l2c_fail(L2C_ERR_ARG, "tokenizer: no path");
    if (vocab_size <= 0) {
        return l2c_fail(L2C_ERR_ARG, "%s: vocab_size is %d, expected > 0", path, vocab_size);
    }

    /* open without blocking on a named pipe, refusing anything but a regular file (fopen
     * accepts directories, and reads then fail) */
    int fd = open(path, O_RDONLY | O_NONBLOCK);
    if (fd < 0) return l2c_fail(L2C_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st = {0};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return l2c_fail(L2C_ERR_IO, "%s: %s, not a tokenizer file", path,
                        S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
    }
    FILE *file = fdopen(fd, "rb");
    if (!file) {
        close(fd);
        return l2c_fail(L2C_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }

    /* the per-token arrays and the single-byte strings */
    l2c_tokenizer *t = calloc(1, sizeof *t);
    if (!t) {
        fclose(file);
        return l2c_fail(L2C_ERR_NOMEM, "%s: no memory for the tokenizer", path);
    }
    t->vocab_size = vocab_size;
    t->path = strdup(path);
    t->vocab = malloc((size_t)vocab_size * sizeof *t->vocab);
    t->vocab_len = malloc((size_t)vocab_size * sizeof *t->vocab_len);
    t->vocab_scores = malloc((size_t)vocab_size * sizeof *t->vocab_scores);
    t->sorted_vocab = malloc((size_t)vocab_size * sizeof *t->sorted_vocab);
    if (!t->path || !t->vocab || !t->vocab_len || !t->vocab_scores || !t->sorted_vocab) {
        fclose(file);
        l2c_tokenizer_free(t);
        return l2c_fail(L2C_ERR_NOMEM, "%s: no memory for %d tokens", path, vocab_size);
    }
    for (int i = 0; i < 256; i++) {
        t->byte_pieces[2 * i] = (char)i;
        t->byte_pieces[2 * i + 1] = '\0';
    }

    /* the file's contents */
    l2c_status status = read_tokenizer(t, file, path);
    fclose(file);
    if (status != L2C_OK) {
        l2c_tokenizer_free(t);
        return status;
    }

    /* the sorted vocabulary for lookups; equal pieces keep the lowest id first */
    for (int i = 0; i < vocab_size; i++) {
        t->sorted_vocab[i].str = t->vocab[i];
        t->sorted_vocab[i].id = i;
    }
    qsort(t->sorted_vocab, (size_t)vocab_size, sizeof *t->sorted_vocab, compare_token_index);

    *tokenizer = t;
    return L2C_OK;
}

void l2c_tokenizer_free(l2c_tokenizer *tokenizer) {
    if (!tokenizer) return;
    free(tokenizer->vocab);
    free(tokenizer->vocab_len);
    free(tokenizer->vocab_scores);
    free(tokenizer->text);
    free(tokenizer->sorted_vocab);
    free(tokenizer->path);
    free(tokenizer);
}

int l2c_tokenizer_vocab_size(const l2c_tokenizer *tokenizer) {
    return tokenizer ? tokenizer->vocab_size : 0;
}

/* ------------------------------------------------------------------------------------------------
 * encoding
 */

/* The id of the piece equal to str, the lowest such id when pieces repeat; -1 if none. llama2.c's
 * bsearch may return any of several equal pieces; no known tokenizer repeats a piece. */
static int lookup(const l2c_tokenizer *t, const char *str) {
    int lo = 0, hi = t->vocab_size;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (strcmp(t->sorted_vocab[mid].str, str) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo < t->vocab_size && strcmp(t->sorted_vocab[lo].str, str) == 0) {
        return t->sorted_vocab[lo].id;
    }
    return -1;
}

/* heap order: higher score first, then the leftmost pair, which is llama2.c's choice of the
 * first best pair in a left-to-right scan (merging never reorders symbols) */
static int merge_before(const l2c_merge *a, const l2c_merge *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static void heap_push(l2c_merge *heap, int *n, l2c_merge m) {
    int i = (*n)++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!merge_before(&m, &heap[parent])) break;
        heap[i] = heap[parent];
        i = parent;
    }
    heap[i] = m;
}

static l2c_merge heap_pop(l2c_merge *heap, int *n) {
    l2c_merge top = heap[0];
    l2c_merge last = heap[--(*n)];
    int i = 0;
    for (;;) {
        int child = 2 * i + 1;
        if (child >= *n) break;
        if (child + 1 < *n && merge_before(&heap[child + 1], &heap[child])) child++;
        if (!merge_before(&heap[child], &last)) break;
        heap[i] = heap[child];
        i = child;
    }
    if (*n > 0) heap[i] = last;
    return top;
}

/* Queues the merge of symbols left and right when their concatenation is a piece whose score
 * llama2.c would accept (above -1e10; a NaN score never wins its comparison). */
static void queue_pair(const l2c_tokenizer *t, const int *symbols, char *buffer, l2c_merge *heap,
                       int *n_heap, int left, int right) {
    int a = symbols[left], b = symbols[right];
    memcpy(buffer, t->vocab[a], (size_t)t->vocab_len[a]);
    memcpy(buffer + t->vocab_len[a], t->vocab[b], (size_t)t->vocab_len[b] + 1);
    int id = lookup(t, buffer);
    if (id < 0 || !(t->vocab_scores[id] > L2C_MERGE_FLOOR)) return;
    l2c_merge m = { t->vocab_scores[id], left, right, a, b, id };
    heap_push(heap, n_heap, m);
}

/*
 * The output equals llama2.c's encode(). Its merge loop rescans every adjacent pair after each
 * merge (quadratic in the prompt); here the candidate pairs wait in a heap ordered as that scan
 * chooses, and a popped candidate is dropped when one of its symbols has merged since.
 *
 * Where llama2.c would index outside the vocabulary (no " " piece for the dummy prefix, a
 * byte-fallback id byte + 3 >= vocab_size, BOS or EOS >= vocab_size) this fails with
 * L2C_ERR_FORMAT naming the missing token. When the result needs more than max_tokens ids it
 * fails with L2C_ERR_ARG and *n_tokens holds the count needed; other failures set it to 0.
 */
l2c_status l2c_tokenizer_encode(const l2c_tokenizer *tokenizer, const char *text, int bos, int eos,
                                int *tokens, int max_tokens, int *n_tokens) {
    if (n_tokens) *n_tokens = 0;
    if (!tokenizer || !text || !n_tokens || max_tokens < 0 || (!tokens && max_tokens > 0)) {
        return l2c_fail(L2C_ERR_ARG, "tokenizer encode: missing tokenizer, text or output, or "
                        "max_tokens %d < 0", max_tokens);
    }
    const l2c_tokenizer *t = tokenizer;
    if ((bos && L2C_TOKEN_BOS >= t->vocab_size) || (eos && L2C_TOKEN_EOS >= t->vocab_size)) {
        return l2c_fail(L2C_ERR_FORMAT, "%s: no %s token: id %d >= vocab_size %d", t->path,
                        bos ? "BOS" : "EOS", bos ? L2C_TOKEN_BOS : L2C_TOKEN_EOS, t->vocab_size);
    }

    /* working space: one symbol per input byte at most, plus BOS and the dummy prefix */
    size_t text_len = strlen(text);
    if (text_len > (size_t)(1 << 30)) {
        return l2c_fail(L2C_ERR_ARG, "tokenizer encode: text of %zu bytes is too long", text_len);
    }
    int cap = (int)text_len + 2;
    int *symbols = malloc((size_t)cap * sizeof *symbols);   /* token id of each symbol */
    int *next = malloc((size_t)cap * sizeof *next);         /* next live symbol, -1 at the end */
    int *prev = malloc((size_t)cap * sizeof *prev);         /* previous live symbol, -1 first */
    l2c_merge *heap = malloc((size_t)3 * cap * sizeof *heap);
    char *buffer = malloc((size_t)2 * t->max_token_length + 8);
    l2c_status status = L2C_OK;
    if (!symbols || !next || !prev || !heap || !buffer) {
        status = l2c_fail(L2C_ERR_NOMEM, "tokenizer encode: no memory for %zu bytes of text",
                          text_len);
        goto done;
    }
    int n = 0;

    /* optional BOS, then the dummy prefix " " before non-empty text */
    if (bos) symbols[n++] = L2C_TOKEN_BOS;
    if (text_len > 0) {
        int space = lookup(t, " ");
        if (space < 0) {
            status = l2c_fail(L2C_ERR_FORMAT, "%s: no \" \" token for the dummy prefix", t->path);
            goto done;
        }
        symbols[n++] = space;
    }

    /* one symbol per UTF-8 code point in the vocabulary, else one per byte (id byte + 3); a
     * code point is a byte and up to three following continuation bytes (10xxxxxx) */
    const unsigned char *c = (const unsigned char *)text;
    for (size_t i = 0; i < text_len;) {
        size_t len = 1;
        while (len < 4 && (c[i + len] & 0xC0) == 0x80) len++;
        memcpy(buffer, c + i, len);
        buffer[len] = '\0';
        int id = lookup(t, buffer);
        if (id >= 0) {
            symbols[n++] = id;
        } else {
            for (size_t j = 0; j < len; j++) {
                int byte_id = c[i + j] + 3;
                if (byte_id >= t->vocab_size) {
                    status = l2c_fail(L2C_ERR_FORMAT, "%s: no token for byte 0x%02X of the text "
                                      "(byte fallback id %d >= vocab_size %d)", t->path,
                                      c[i + j], byte_id, t->vocab_size);
                    goto done;
                }
                symbols[n++] = byte_id;
            }
        }
        i += len;
    }

    /* link the symbols and queue every adjacent pair that forms a piece */
    int n_heap = 0;
    for (int i = 0; i < n; i++) {
        prev[i] = i - 1;
        next[i] = i + 1 < n ? i + 1 : -1;
    }
    for (int i = 0; i + 1 < n; i++) queue_pair(t, symbols, buffer, heap, &n_heap, i, i + 1);

    /* merge the best pair until none is left; a symbol merged away is marked by prev = -2 */
    int n_live = n;
    while (n_heap > 0) {
        l2c_merge m = heap_pop(heap, &n_heap);
        if (prev[m.left] == -2 || prev[m.right] == -2 || next[m.left] != m.right ||
            symbols[m.left] != m.left_token || symbols[m.right] != m.right_token) {
            continue;
        }
        symbols[m.left] = m.id;
        next[m.left] = next[m.right];
        if (next[m.right] >= 0) prev[next[m.right]] = m.left;
        prev[m.right] = -2;
        n_live--;
        if (prev[m.left] >= 0) {
            queue_pair(t, symbols, buffer, heap, &n_heap, prev[m.left], m.left);
        }
        if (next[m.left] >= 0) {
            queue_pair(t, symbols, buffer, heap, &n_heap, m.left, next[m.left]);
        }
    }

    /* write the live symbols and the optional EOS */
    int needed = n_live + (eos ? 1 : 0);
    if (needed > max_tokens) {
        *n_tokens = needed;
        status = l2c_fail(L2C_ERR_ARG, "tokenizer encode: the text needs %d tokens, more than "
                          "max_tokens %d", needed, max_tokens);
        goto done;
    }
    int out = 0;
    for (int i = n > 0 ? 0 : -1; i >= 0; i = next[i]) tokens[out++] = symbols[i];
    if (eos) tokens[out++] = L2C_TOKEN_EOS;
    *n_tokens = out;

done:
    free(symbols);
    free(next);
    free(prev);
    free(heap);
    free(buffer);
    return status;
}

/* ------------------------------------------------------------------------------------------------
 * decoding
 */

const char *l2c_tokenizer_decode(const l2c_tokenizer *tokenizer, int prev_token, int token) {
    if (!tokenizer || token < 0 || token >= tokenizer->vocab_size) return NULL;
    const char *piece = tokenizer->vocab[token];

    /* after BOS, sentencepiece drops the piece's leading space */
    if (prev_token == L2C_TOKEN_BOS && piece[0] == ' ') piece++;

    /* a raw-byte piece "<0xXX>" stands for the byte itself; this is llama2.c's exact test, so
     * it also accepts the looser forms scanf does (one digit, no closing '>') */
    unsigned char byte;
    if (sscanf(piece, "<0x%02hhX>", &byte) == 1) piece = tokenizer->byte_pieces + 2 * byte;
    return piece;
}

void l2c_print_piece(FILE *out, const char *piece) {
    if (!out || !piece || piece[0] == '\0') return;

    /* a lone byte may be a control code: only printable characters and white space pass */
    if (piece[1] == '\0') {
        unsigned char byte = (unsigned char)piece[0];
        if (!(isprint(byte) || isspace(byte))) return;
    }
    fputs(piece, out);
}
