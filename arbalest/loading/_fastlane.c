/* The fast lane: one pass over a chunk of JSON lines, in C.
 *
 * Each line that is one JSON object whose every key is one the schema reads, with values
 * of the plainest forms (see accept_* below), is converted here into column buffers that
 * Python wraps as Arrow arrays without a copy. Every other line is *deferred*: its line
 * number and byte span go back to Python, which converts it with the exact SQL path as
 * before. The lane never rejects a line and never decides anything the SQL path might
 * decide differently: where a value is not certain, the whole line is deferred. The
 * differential tests (tests/unit/test_fastlane.py) hold both paths to the same rows.
 * Deferred lines come back as line numbers plus their text, contiguous (Arrow's layout).
 *
 * Python side: arbalest/loading/fastlane.py.
 */
#define _GNU_SOURCE /* strtod_l */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    K_INT16 = 1,
    K_INT32 = 2,
    K_INT64 = 3,
    K_DECIMAL = 4,
    K_REAL = 5,
    K_DOUBLE = 6,
    K_BOOL = 7,
    K_VARCHAR = 8,
    K_TIMESTAMP = 9,
    K_DATE = 10,
};

#define MAX_RECORD_BYTES (4 * 1024 * 1024)

/* -- growable buffers ------------------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const void *src, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static int buf_zero(Buf *b, size_t n) {
    if (buf_reserve(b, n)) return -1;
    memset(b->data + b->len, 0, n);
    b->len += n;
    return 0;
}

/* -- the schema as a tree of keys ------------------------------------------------------- */

typedef struct {
    const char *key;
    Py_ssize_t keylen;
    int column;     /* >= 0: a column's value; -1: an object the schema reads into */
    int first_child, next_sibling;
    long stamp;     /* the record in which this key was last seen (duplicates) */
    int next_hint;  /* the sibling key that followed this one last time (records repeat
                     * their keys' order), and for an object, its first key last time */
    int first_hint;
} Node;

typedef struct {
    int kind, nullable;
    long a, b;      /* INTn: -; DECIMAL: precision, scale; VARCHAR: byte length */
    /* the value staged for the current record */
    int has;        /* 0: NULL */
    int64_t i;
    double d;
    const char *s;
    size_t slen;
    size_t soff;    /* offset into the scratch buffer when decoded (s == NULL) */
    /* output */
    Buf validity, values, offsets;
} Column;

typedef struct {
    Node *nodes;
    int nnodes;
    Column *columns;
    int ncolumns;
    Buf scratch;    /* decoded strings of the current record */
    long record;
    int64_t rows;
    /* keys no column reads, for the drift report: the current record's (node, key) pairs
     * in order (its signature), and the distinct signatures so far with their ids */
    Buf signature;
    Buf shapes;     /* int32 per row: 0, or the id of its signature */
    Buf known;      /* the distinct signatures, each int32 length + bytes */
    Buf starts;     /* where each signature starts in `known` (size_t per id, from 1) */
    uint64_t *table; /* open addressing: (hash << 20 | id), 0 empty */
    size_t table_size;
    int32_t distinct;
} Lane;

#define MAX_SIGNATURES 4096

static void lane_free(Lane *lane) {
    if (lane->columns) {
        for (int c = 0; c < lane->ncolumns; c++) {
            free(lane->columns[c].validity.data);
            free(lane->columns[c].values.data);
            free(lane->columns[c].offsets.data);
        }
    }
    free(lane->columns);
    free(lane->nodes);
    free(lane->scratch.data);
    free(lane->signature.data);
    free(lane->shapes.data);
    free(lane->known.data);
    free(lane->starts.data);
    free(lane->table);
}

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)p[k]) * 1099511628211ULL;
    return h;
}

/* The id of the current record's signature (1...), adding it if new; -1: too many kinds of
 * record (the record is deferred) or no memory. */
static int32_t signature_id(Lane *lane) {
    const char *sig = lane->signature.data;
    size_t len = lane->signature.len;
    uint64_t h = fnv1a(sig, len) & 0xFFFFFFFFFFFULL; /* 44 bits beside a 20-bit id */
    if (!lane->table) {
        lane->table_size = 64;
        lane->table = calloc(lane->table_size, sizeof(uint64_t));
        if (!lane->table) return -1;
    }
    size_t mask = lane->table_size - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint64_t slot = lane->table[i];
        if (!slot) break;
        if ((slot >> 20) != h) continue;
        int32_t id = (int32_t)(slot & 0xFFFFF);
        size_t off;
        memcpy(&off, lane->starts.data + (size_t)(id - 1) * sizeof off, sizeof off);
        int32_t n;
        memcpy(&n, lane->known.data + off, sizeof n);
        if ((size_t)n == len && memcmp(lane->known.data + off + sizeof n, sig, len) == 0)
            return id;
    }
    if (lane->distinct >= MAX_SIGNATURES) return -1;
    int32_t n = (int32_t)len, id = ++lane->distinct;
    size_t start = lane->known.len;
    if (buf_put(&lane->starts, &start, sizeof start) || buf_put(&lane->known, &n, sizeof n) ||
        buf_put(&lane->known, sig, len))
        return -1;
    if ((size_t)lane->distinct * 2 > lane->table_size) {
        size_t size = lane->table_size * 2;
        uint64_t *table = calloc(size, sizeof(uint64_t));
        if (!table) return -1;
        for (size_t i = 0; i < lane->table_size; i++) {
            uint64_t slot = lane->table[i];
            if (!slot) continue;
            size_t j = (size_t)(slot >> 20) & (size - 1);
            while (table[j]) j = (j + 1) & (size - 1);
            table[j] = slot;
        }
        free(lane->table);
        lane->table = table;
        lane->table_size = size;
    }
    size_t j = (size_t)h & (lane->table_size - 1);
    while (lane->table[j]) j = (j + 1) & (lane->table_size - 1);
    lane->table[j] = (h << 20) | (uint64_t)id;
    return id;
}

static inline int same_key(const Node *node, const char *key, Py_ssize_t len) {
    if (node->keylen != len) return 0;
    for (Py_ssize_t k = 0; k < len; k++)
        if (node->key[k] != key[k]) return 0;
    return 1;
}

static int find_child(Lane *lane, int parent, const char *key, Py_ssize_t len) {
    for (int n = lane->nodes[parent].first_child; n >= 0; n = lane->nodes[n].next_sibling)
        if (same_key(&lane->nodes[n], key, len)) return n;
    return -1;
}

/* -- scanning ---------------------------------------------------------------------------- */

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* A JSON number's parts: sign, integer digits, fraction digits, exponent. NULL: not one. */
typedef struct {
    int negative;
    const char *int_start;
    size_t int_len;
    const char *frac_start;
    size_t frac_len;
    int has_frac, has_exp;
    const char *start, *end;
} Number;

static const char *scan_number(const char *p, const char *end, Number *n) {
    memset(n, 0, sizeof *n);
    n->start = p;
    if (p < end && *p == '-') {
        n->negative = 1;
        p++;
    }
    if (p >= end || !is_digit(*p)) return NULL;
    n->int_start = p;
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p)) return NULL; /* a leading zero: not JSON */
    } else {
        while (p < end && is_digit(*p)) p++;
    }
    n->int_len = (size_t)(p - n->int_start);
    if (p < end && *p == '.') {
        p++;
        n->frac_start = p;
        while (p < end && is_digit(*p)) p++;
        n->frac_len = (size_t)(p - n->frac_start);
        if (n->frac_len == 0) return NULL;
        n->has_frac = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !is_digit(*p)) return NULL;
        while (p < end && is_digit(*p)) p++;
        n->has_exp = 1;
    }
    n->end = p;
    return p;
}

static int64_t digits_value(const char *p, size_t n) {
    int64_t v = 0;
    for (size_t k = 0; k < n; k++) v = v * 10 + (p[k] - '0');
    return v;
}

/* Whether [p, end) is UTF-8 without control characters: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
static int utf8_ok(const char *p, const char *end) {
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20) return 0;
        if (c < 0x80) {
            p++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (end - p < 2 || ((unsigned char)p[1] & 0xC0) != 0x80) return 0;
            p += 2;
        } else if (c >= 0xE0 && c <= 0xEF) {
            if (end - p < 3) return 0;
            unsigned char c1 = (unsigned char)p[1], c2 = (unsigned char)p[2];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80) return 0;
            if (c == 0xE0 && c1 < 0xA0) return 0;
            if (c == 0xED && c1 >= 0xA0) return 0;
            p += 3;
        } else if (c >= 0xF0 && c <= 0xF4) {
            if (end - p < 4) return 0;
            unsigned char c1 = (unsigned char)p[1], c2 = (unsigned char)p[2],
                          c3 = (unsigned char)p[3];
            if ((c1 & 0xC0) != 0x80 || (c2 & 0xC0) != 0x80 || (c3 & 0xC0) != 0x80) return 0;
            if (c == 0xF0 && c1 < 0x90) return 0;
            if (c == 0xF4 && c1 >= 0x90) return 0;
            p += 4;
        } else {
            return 0;
        }
    }
    return 1;
}

/* A string token without escapes: its bytes, valid UTF-8 without control characters.
 * Returns the position after the closing quote; NULL to defer. *escaped is set when the
 * string has a backslash (then nothing else is checked). */
/* Whether any byte of w is a quote, a backslash, a control character or not ASCII. */
static inline uint64_t special_bytes(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
    return ((quote - ones) & ~quote) | ((slash - ones) & ~slash) | ((w - ones * 0x20) & ~w) |
           w;
}

static const char *scan_plain_string(const char *p, const char *end, const char **s, size_t *len,
                                     int *escaped) {
    /* p is just after the opening quote; ASCII is checked here, the rest by utf8_ok */
    const char *q = p;
    int wide = 0;
    *escaped = 0;
    /* eight plain ASCII bytes at a time */
    while (end - q >= 8) {
        uint64_t w;
        memcpy(&w, q, 8);
        if (special_bytes(w) & 0x8080808080808080ULL) break;
        q += 8;
    }
    while (q < end) {
        unsigned char c = (unsigned char)*q;
        if (c == '"') break;
        if (c == '\\') {
            *escaped = 1;
            return NULL;
        }
        if (c < 0x20) return NULL;
        wide |= c & 0x80;
        q++;
    }
    if (q >= end) return NULL;
    if (wide && !utf8_ok(p, q)) return NULL;
    *s = p;
    *len = (size_t)(q - p);
    return q + 1;
}

static int hex4(const char *p, const char *end, unsigned *out) {
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

/* A string token with escapes, decoded into the scratch buffer. p is just after the opening
 * quote. Returns the position after the closing quote; NULL to defer (U+0000, a lone
 * surrogate, bad UTF-8 or control characters: the SQL path decides those). */
static const char *decode_string(Lane *lane, const char *p, const char *end, size_t *off,
                                 size_t *len) {
    Buf *out = &lane->scratch;
    *off = out->len;
    while (p < end) {
        /* copy the plain run up to the next backslash or quote */
        const char *q = p;
        while (q < end && *q != '"' && *q != '\\') q++;
        if (q >= end) return NULL;
        if (q > p) {
            if (!utf8_ok(p, q)) return NULL;
            if (buf_put(out, p, (size_t)(q - p))) return NULL;
        }
        if (*q == '"') {
            *len = out->len - *off;
            return q + 1;
        }
        /* a backslash */
        q++;
        if (q >= end) return NULL;
        char e = *q++;
        char one;
        switch (e) {
        case '"': one = '"'; break;
        case '\\': one = '\\'; break;
        case '/': one = '/'; break;
        case 'b': one = '\b'; break;
        case 'f': one = '\f'; break;
        case 'n': one = '\n'; break;
        case 'r': one = '\r'; break;
        case 't': one = '\t'; break;
        case 'u': {
            unsigned cp;
            if (hex4(q, end, &cp)) return NULL;
            q += 4;
            if (cp == 0) return NULL;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return NULL;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (end - q < 6 || q[0] != '\\' || q[1] != 'u' || hex4(q + 2, end, &lo))
                    return NULL;
                if (lo < 0xDC00 || lo > 0xDFFF) return NULL;
                q += 6;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            unsigned char u[4];
            size_t k;
            if (cp < 0x80) {
                u[0] = (unsigned char)cp;
                k = 1;
            } else if (cp < 0x800) {
                u[0] = (unsigned char)(0xC0 | (cp >> 6));
                u[1] = (unsigned char)(0x80 | (cp & 0x3F));
                k = 2;
            } else if (cp < 0x10000) {
                u[0] = (unsigned char)(0xE0 | (cp >> 12));
                u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (unsigned char)(0x80 | (cp & 0x3F));
                k = 3;
            } else {
                u[0] = (unsigned char)(0xF0 | (cp >> 18));
                u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (unsigned char)(0x80 | (cp & 0x3F));
                k = 4;
            }
            if (buf_put(out, u, k)) return NULL;
            p = q;
            continue;
        }
        default:
            return NULL;
        }
        if (buf_put(out, &one, 1)) return NULL;
        p = q;
    }
    return NULL;
}

/* -- values ------------------------------------------------------------------------------ */

static const int64_t POW10[19] = {1LL,
                                  10LL,
                                  100LL,
                                  1000LL,
                                  10000LL,
                                  100000LL,
                                  1000000LL,
                                  10000000LL,
                                  100000000LL,
                                  1000000000LL,
                                  10000000000LL,
                                  100000000000LL,
                                  1000000000000LL,
                                  10000000000000LL,
                                  100000000000000LL,
                                  1000000000000000LL,
                                  10000000000000000LL,
                                  100000000000000000LL,
                                  1000000000000000000LL};

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int64_t y, int64_t m) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return days[m - 1];
}

static int two(const char *p, int64_t *out) {
    if (!is_digit(p[0]) || !is_digit(p[1])) return -1;
    *out = (p[0] - '0') * 10 + (p[1] - '0');
    return 0;
}

/* ISO 8601 in its plainest forms: YYYY-MM-DD, or that with [T ]HH:MM[:SS[.f{1,6}]] and an
 * optional Z, years 0001 to 9999. Microseconds since 1970 (days for a date). */
static int parse_time(const char *s, size_t n, int date_only, int64_t *out) {
    if (n < 10) return -1;
    for (int k = 0; k < 4; k++)
        if (!is_digit(s[k])) return -1;
    int64_t y = digits_value(s, 4), m, d;
    if (y < 1 || s[4] != '-' || two(s + 5, &m) || s[7] != '-' || two(s + 8, &d)) return -1;
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return -1;
    int64_t days = days_from_civil(y, m, d);
    if (n == 10) {
        *out = date_only ? days : days * 86400000000LL;
        return 0;
    }
    if (date_only) return -1;
    if (s[10] != 'T' && s[10] != ' ') return -1;
    if (n < 16) return -1;
    int64_t hh, mi, ss = 0, micros = 0;
    if (two(s + 11, &hh) || s[13] != ':' || two(s + 14, &mi)) return -1;
    if (hh > 23 || mi > 59) return -1;
    size_t k = 16;
    if (k < n && s[k] == ':') {
        if (n < k + 3 || two(s + k + 1, &ss) || ss > 59) return -1;
        k += 3;
        if (k < n && s[k] == '.') {
            k++;
            size_t f = 0;
            while (k + f < n && is_digit(s[k + f])) f++;
            if (f < 1 || f > 6) return -1;
            micros = digits_value(s + k, f) * POW10[6 - f];
            k += f;
        }
    }
    if (k < n && s[k] == 'Z') k++;
    if (k != n) return -1;
    *out = ((days * 24 + hh) * 60 + mi) * 60000000LL + ss * 1000000LL + micros;
    return 0;
}

static locale_t c_locale;

static const double EXACT10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Clinger's fast path: at most 15 digits and no exponent, so the digits and the power of
 * ten are exact doubles and one division rounds correctly. 0: done; -1: not this way. */
static int fast_double(const Number *n, double *out) {
    if (n->has_exp || n->int_len + n->frac_len > 15) return -1;
    int64_t m = digits_value(n->int_start, n->int_len);
    for (size_t k = 0; k < n->frac_len; k++) m = m * 10 + (n->frac_start[k] - '0');
    double d = (double)m / EXACT10[n->frac_len];
    *out = n->negative ? -d : d;
    return 0;
}

/* Parse one value for column c at p; returns the position after it, NULL to defer. */
static const char *parse_value(Lane *lane, Column *c, const char *p, const char *end) {
    if (end - p >= 4 && memcmp(p, "null", 4) == 0) {
        if (!c->nullable) return NULL;
        c->has = 0;
        return p + 4;
    }
    Number num;
    switch (c->kind) {
    case K_INT16:
    case K_INT32:
    case K_INT64: {
        const char *q = scan_number(p, end, &num);
        if (!q || num.has_frac || num.has_exp || num.int_len > 18) return NULL;
        int64_t v = digits_value(num.int_start, num.int_len);
        if (num.negative) v = -v;
        int64_t lo = c->kind == K_INT16 ? -32768 : c->kind == K_INT32 ? -2147483648LL : INT64_MIN;
        int64_t hi = c->kind == K_INT16 ? 32767 : c->kind == K_INT32 ? 2147483647LL : INT64_MAX;
        if (v < lo || v > hi) return NULL;
        c->has = 1;
        c->i = v;
        return q;
    }
    case K_DECIMAL: {
        const char *q = scan_number(p, end, &num);
        if (!q || num.has_exp) return NULL;
        long precision = c->a, scale = c->b;
        int zero_int = num.int_len == 1 && num.int_start[0] == '0';
        size_t nint = zero_int ? 0 : num.int_len;
        if (num.has_frac) {
            /* what the SQL path sees is the double's shortest text: the same digits when
             * there are at most 15 significant ones and the value prints without an
             * exponent (1e-5 <= |x| < 1e15 here) */
            const char *first = NULL, *last = NULL;
            for (size_t k = 0; k < num.int_len; k++)
                if (num.int_start[k] != '0') {
                    if (!first) first = num.int_start + k;
                    last = num.int_start + k;
                }
            size_t lead_zeros = 0;
            int seen = first != NULL;
            for (size_t k = 0; k < num.frac_len; k++) {
                if (num.frac_start[k] != '0') {
                    if (!first) first = num.frac_start + k;
                    last = num.frac_start + k;
                    seen = 1;
                } else if (!seen) {
                    lead_zeros++;
                }
            }
            if (first) {
                size_t significant;
                if (first < num.frac_start && last >= num.frac_start)
                    significant = (size_t)(last - first); /* minus the point */
                else
                    significant = (size_t)(last - first) + 1;
                if (significant > 15) return NULL;
                if (nint > 15) return NULL;
                if (nint == 0 && lead_zeros >= 5) return NULL;
            }
        }
        if ((long)nint > precision - scale) return NULL; /* out of range: the SQL decides */
        if ((long)nint + scale > 18) return NULL;
        int64_t v = nint ? digits_value(num.int_start, nint) : 0;
        size_t take = num.frac_len < (size_t)scale ? num.frac_len : (size_t)scale;
        v = v * POW10[take] + (take ? digits_value(num.frac_start, take) : 0);
        v *= POW10[scale - (long)take];
        c->has = 1;
        c->i = num.negative ? -v : v;
        return q;
    }
    case K_REAL:
    case K_DOUBLE: {
        const char *q = scan_number(p, end, &num);
        if (!q) return NULL;
        if (!num.has_frac && !num.has_exp && num.int_len > 18) return NULL;
        size_t len = (size_t)(q - p);
        char text[64];
        if (len >= sizeof text) return NULL;
        memcpy(text, p, len);
        text[len] = '\0';
        double d;
        if (fast_double(&num, &d)) {
            /* glibc's strtod is correctly rounded and thread-safe (this runs without the
             * GIL: Python's own dtoa keeps a shared free list), in the "C" locale */
            char *stop = NULL;
            d = strtod_l(text, &stop, c_locale);
            if (stop != text + len) return NULL;
        }
        if (!isfinite(d)) return NULL;
        if (d == 0.0 && num.negative) return NULL; /* -0: the SQL path's reader decides */
        if (d != 0.0 && fpclassify(d) != FP_NORMAL) return NULL;
        if (d == 0.0) {
            for (const char *r = num.int_start; r < q && *r != 'e' && *r != 'E'; r++)
                if (*r >= '1' && *r <= '9') return NULL; /* underflowed to zero */
        }
        if (c->kind == K_REAL) {
            float f = (float)d;
            if (!isfinite(f) || (f != 0.0f && fpclassify(f) != FP_NORMAL)) return NULL;
            if (f == 0.0f && d != 0.0) return NULL;
            d = f;
        }
        c->has = 1;
        c->d = d;
        return q;
    }
    case K_BOOL:
        if (end - p >= 4 && memcmp(p, "true", 4) == 0) {
            c->has = 1;
            c->i = 1;
            return p + 4;
        }
        if (end - p >= 5 && memcmp(p, "false", 5) == 0) {
            c->has = 1;
            c->i = 0;
            return p + 5;
        }
        return NULL;
    case K_VARCHAR: {
        if (p >= end || *p != '"') return NULL;
        const char *s;
        size_t len;
        int escaped;
        const char *q = scan_plain_string(p + 1, end, &s, &len, &escaped);
        if (q) {
            c->s = s;
        } else if (escaped) {
            size_t off;
            q = decode_string(lane, p + 1, end, &off, &len);
            if (!q) return NULL;
            for (size_t k = 0; k < len; k++)
                if (lane->scratch.data[off + k] == '\0') return NULL;
            c->s = NULL;
            c->soff = off;
        } else {
            return NULL;
        }
        if ((long)len > c->a) return NULL;
        c->has = 1;
        c->slen = len;
        return q;
    }
    case K_TIMESTAMP:
    case K_DATE: {
        if (p >= end || *p != '"') return NULL;
        const char *s;
        size_t len;
        int escaped;
        const char *q = scan_plain_string(p + 1, end, &s, &len, &escaped);
        if (!q) return NULL;
        int64_t v;
        if (parse_time(s, len, c->kind == K_DATE, &v)) return NULL;
        c->has = 1;
        c->i = v;
        return q;
    }
    }
    return NULL;
}

/* -- values no column reads --------------------------------------------------------------- */

/* Skip one JSON value, checking it as strictly as any reader would (NULL to defer: the SQL
 * path decides whether the record is JSON at all). */
static const char *skip_value(Lane *lane, const char *p, const char *end, int depth) {
    if (p >= end || depth > 32) return NULL;
    char c = *p;
    if (c == '"') {
        const char *s;
        size_t len;
        int escaped;
        const char *q = scan_plain_string(p + 1, end, &s, &len, &escaped);
        if (q) return q;
        if (!escaped) return NULL;
        size_t off, n;
        size_t mark = lane->scratch.len;
        q = decode_string(lane, p + 1, end, &off, &n);
        lane->scratch.len = mark;
        return q;
    }
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        p = skip_ws(p + 1, end);
        if (p < end && *p == close) return p + 1;
        for (;;) {
            if (c == '{') {
                if (p >= end || *p != '"') return NULL;
                p = skip_value(lane, p, end, depth + 1);
                if (!p) return NULL;
                p = skip_ws(p, end);
                if (p >= end || *p != ':') return NULL;
                p = skip_ws(p + 1, end);
            }
            p = skip_value(lane, p, end, depth + 1);
            if (!p) return NULL;
            p = skip_ws(p, end);
            if (p < end && *p == ',') {
                p = skip_ws(p + 1, end);
                continue;
            }
            if (p < end && *p == close) return p + 1;
            return NULL;
        }
    }
    if (c == 't') return end - p >= 4 && memcmp(p, "true", 4) == 0 ? p + 4 : NULL;
    if (c == 'f') return end - p >= 5 && memcmp(p, "false", 5) == 0 ? p + 5 : NULL;
    if (c == 'n') return end - p >= 4 && memcmp(p, "null", 4) == 0 ? p + 4 : NULL;
    Number num;
    const char *q = scan_number(p, end, &num);
    if (!q) return NULL;
    /* numbers any reader takes the same way: no overflow, no huge integers */
    if (!num.has_frac && !num.has_exp && num.int_len > 18) return NULL;
    if (q - p > 24) return NULL;
    if (num.has_exp) {
        const char *e = num.frac_start ? num.frac_start + num.frac_len : num.int_start + num.int_len;
        e++; /* past the e */
        if (*e == '+' || *e == '-') e++;
        if (q - e > 3 || (q - e == 3 && digits_value(e, 3) > 300)) return NULL;
    }
    return q;
}

/* -- records ----------------------------------------------------------------------------- */

static const char *parse_object(Lane *lane, int node, const char *p, const char *end) {
    /* p is just after '{'; an object node's hint is its first key last time */
    int previous = -1, hint = lane->nodes[node].first_hint;
    p = skip_ws(p, end);
    if (p < end && *p == '}') return p + 1;
    for (;;) {
        if (p >= end || *p != '"') return NULL;
        const char *key;
        size_t keylen;
        int escaped;
        p = scan_plain_string(p + 1, end, &key, &keylen, &escaped);
        if (!p) return NULL;
        int child = hint;
        if (child < 0 || !same_key(&lane->nodes[child], key, (Py_ssize_t)keylen))
            child = find_child(lane, node, key, (Py_ssize_t)keylen);
        Node *n = NULL; /* NULL: a key no column reads */
        if (child < 0) {
            /* the drift report counts it; its value is skipped */
            int32_t at = node, len = (int32_t)keylen;
            if (buf_put(&lane->signature, &at, sizeof at) ||
                buf_put(&lane->signature, &len, sizeof len) ||
                buf_put(&lane->signature, key, keylen))
                return NULL;
        } else {
            if (previous >= 0) lane->nodes[previous].next_hint = child;
            else lane->nodes[node].first_hint = child;
            previous = child;
            hint = lane->nodes[child].next_hint;
            n = &lane->nodes[child];
            if (n->stamp == lane->record) return NULL; /* a key written twice */
            n->stamp = lane->record;
        }
        p = skip_ws(p, end);
        if (p >= end || *p != ':') return NULL;
        p = skip_ws(p + 1, end);
        if (n == NULL) {
            p = skip_value(lane, p, end, 0);
        } else if (n->column >= 0) {
            p = parse_value(lane, &lane->columns[n->column], p, end);
        } else {
            if (p >= end || *p != '{') return NULL;
            p = parse_object(lane, child, p + 1, end);
        }
        if (!p) return NULL;
        p = skip_ws(p, end);
        if (p < end && *p == ',') {
            p = skip_ws(p + 1, end);
            continue;
        }
        if (p < end && *p == '}') return p + 1;
        return NULL;
    }
}

static int parse_record(Lane *lane, const char *p, const char *end) {
    lane->record++;
    lane->scratch.len = 0;
    lane->signature.len = 0;
    for (int c = 0; c < lane->ncolumns; c++) lane->columns[c].has = 0;
    if (p >= end || *p != '{') return 0;
    p = parse_object(lane, 0, p + 1, end);
    if (!p) return 0;
    p = skip_ws(p, end);
    if (p != end) return 0;
    /* a column whose key is missing is NULL: allowed only where NULL is */
    for (int c = 0; c < lane->ncolumns; c++)
        if (!lane->columns[c].has && !lane->columns[c].nullable) return 0;
    return 1;
}

static int commit_row(Lane *lane, int32_t shape) {
    int64_t row = lane->rows;
    if (buf_put(&lane->shapes, &shape, sizeof shape)) return -1;
    for (int k = 0; k < lane->ncolumns; k++) {
        Column *c = &lane->columns[k];
        if ((row & 7) == 0 && buf_zero(&c->validity, 1)) return -1;
        if (c->has) c->validity.data[row >> 3] |= (char)(1 << (row & 7));
        switch (c->kind) {
        case K_INT16: {
            int16_t v = c->has ? (int16_t)c->i : 0;
            if (buf_put(&c->values, &v, sizeof v)) return -1;
            break;
        }
        case K_INT32:
        case K_DATE: {
            int32_t v = c->has ? (int32_t)c->i : 0;
            if (buf_put(&c->values, &v, sizeof v)) return -1;
            break;
        }
        case K_INT64:
        case K_TIMESTAMP: {
            int64_t v = c->has ? c->i : 0;
            if (buf_put(&c->values, &v, sizeof v)) return -1;
            break;
        }
        case K_DECIMAL: {
            int64_t v[2];
            v[0] = c->has ? c->i : 0;
            v[1] = v[0] < 0 ? -1 : 0; /* 128 bits, two's complement, little-endian */
            if (buf_put(&c->values, v, sizeof v)) return -1;
            break;
        }
        case K_REAL: {
            float v = c->has ? (float)c->d : 0.0f;
            if (buf_put(&c->values, &v, sizeof v)) return -1;
            break;
        }
        case K_DOUBLE: {
            double v = c->has ? c->d : 0.0;
            if (buf_put(&c->values, &v, sizeof v)) return -1;
            break;
        }
        case K_BOOL:
            if ((row & 7) == 0 && buf_zero(&c->values, 1)) return -1;
            if (c->has && c->i) c->values.data[row >> 3] |= (char)(1 << (row & 7));
            break;
        case K_VARCHAR: {
            if (c->has) {
                const char *s = c->s ? c->s : lane->scratch.data + c->soff;
                if (buf_put(&c->values, s, c->slen)) return -1;
            }
            if (c->values.len > INT32_MAX) return -1;
            int32_t off = (int32_t)c->values.len;
            if (buf_put(&c->offsets, &off, sizeof off)) return -1;
            break;
        }
        }
    }
    lane->rows++;
    return 0;
}

/* -- the Python entry point -------------------------------------------------------------- */

static int build_plan(Lane *lane, PyObject *columns) {
    Py_ssize_t ncol = PyList_Size(columns);
    if (ncol < 0) return -1;
    Py_ssize_t steps = 0;
    for (Py_ssize_t k = 0; k < ncol; k++) {
        PyObject *spec = PyList_GetItem(columns, k);
        if (!PyTuple_Check(spec) || PyTuple_Size(spec) != 5) {
            PyErr_SetString(PyExc_TypeError, "a column is (path, kind, a, b, nullable)");
            return -1;
        }
        PyObject *path = PyTuple_GetItem(spec, 0);
        if (!PyTuple_Check(path)) {
            PyErr_SetString(PyExc_TypeError, "a path is a tuple of bytes");
            return -1;
        }
        steps += PyTuple_Size(path);
    }
    lane->nodes = calloc((size_t)steps + 1, sizeof(Node));
    lane->columns = calloc((size_t)(ncol ? ncol : 1), sizeof(Column));
    if (!lane->nodes || !lane->columns) {
        PyErr_NoMemory();
        return -1;
    }
    lane->ncolumns = (int)ncol;
    lane->nnodes = 1;
    lane->nodes[0].column = -1;
    lane->nodes[0].first_child = lane->nodes[0].next_sibling = -1;
    lane->nodes[0].stamp = -1;
    lane->nodes[0].next_hint = lane->nodes[0].first_hint = -1;
    for (Py_ssize_t k = 0; k < ncol; k++) {
        PyObject *spec = PyList_GetItem(columns, k);
        PyObject *path = PyTuple_GetItem(spec, 0);
        Column *c = &lane->columns[k];
        c->kind = (int)PyLong_AsLong(PyTuple_GetItem(spec, 1));
        c->a = PyLong_AsLong(PyTuple_GetItem(spec, 2));
        c->b = PyLong_AsLong(PyTuple_GetItem(spec, 3));
        c->nullable = PyObject_IsTrue(PyTuple_GetItem(spec, 4));
        if (PyErr_Occurred()) return -1;
        if (c->kind < K_INT16 || c->kind > K_DATE) {
            PyErr_SetString(PyExc_ValueError, "unknown column kind");
            return -1;
        }
        if (c->kind == K_DECIMAL && (c->b < 0 || c->b > 18 || c->a < c->b)) {
            PyErr_SetString(PyExc_ValueError, "DECIMAL scale must be 0 to 18");
            return -1;
        }
        Py_ssize_t depth = PyTuple_Size(path);
        if (depth < 1) {
            PyErr_SetString(PyExc_ValueError, "a column's path has at least one key");
            return -1;
        }
        int node = 0;
        for (Py_ssize_t s = 0; s < depth; s++) {
            PyObject *key = PyTuple_GetItem(path, s);
            char *data;
            Py_ssize_t len;
            if (PyBytes_AsStringAndSize(key, &data, &len)) return -1;
            int leaf = s == depth - 1;
            int child = find_child(lane, node, data, len);
            if (child >= 0) {
                /* a key both a value and an object, or read by two columns */
                if (leaf || lane->nodes[child].column >= 0) {
                    PyErr_SetString(PyExc_ValueError, "a key is read twice");
                    return -1;
                }
            } else {
                child = lane->nnodes++;
                Node *n = &lane->nodes[child];
                n->key = data; /* the path tuple outlives the call */
                n->keylen = len;
                n->column = leaf ? (int)k : -1;
                n->first_child = -1;
                n->next_sibling = lane->nodes[node].first_child;
                n->stamp = -1;
                n->next_hint = n->first_hint = -1;
                lane->nodes[node].first_child = child;
            }
            node = child;
        }
    }
    return 0;
}

static PyObject *take(Buf *b) {
    PyObject *out = PyBytes_FromStringAndSize(b->data ? b->data : "", (Py_ssize_t)b->len);
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    return out;
}

static PyObject *fastlane_convert(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer data;
    long long first_line;
    PyObject *columns;
    if (!PyArg_ParseTuple(args, "y*LO!", &data, &first_line, &PyList_Type, &columns)) return NULL;
    Lane lane;
    memset(&lane, 0, sizeof lane);
    Buf lines = {0}, deferred = {0}, dtext = {0}, doffsets = {0};
    PyObject *result = NULL;
    if (build_plan(&lane, columns)) goto done;
    /* an empty VARCHAR column's offsets start at 0 */
    for (int k = 0; k < lane.ncolumns; k++) {
        if (lane.columns[k].kind == K_VARCHAR) {
            int32_t zero = 0;
            if (buf_put(&lane.columns[k].offsets, &zero, sizeof zero)) {
                PyErr_NoMemory();
                goto done;
            }
        }
    }
    /* room for every line as a row: no copy as the buffers grow */
    size_t most = 1;
    for (const char *r = data.buf, *e = r + data.len; (r = memchr(r, '\n', (size_t)(e - r)));
         r++)
        most++;
    for (int k = 0; k < lane.ncolumns; k++) {
        Column *c = &lane.columns[k];
        size_t width = c->kind == K_DECIMAL ? 16 : 8;
        if (buf_reserve(&c->validity, most / 8 + 1) || buf_reserve(&c->values, most * width) ||
            (c->kind == K_VARCHAR && buf_reserve(&c->offsets, (most + 1) * 4))) {
            PyErr_NoMemory();
            goto done;
        }
    }
    if (buf_reserve(&lines, most * 8) || buf_reserve(&lane.shapes, most * 4)) {
        PyErr_NoMemory();
        goto done;
    }
    int32_t zero = 0;
    if (buf_put(&doffsets, &zero, sizeof zero)) {
        PyErr_NoMemory();
        goto done;
    }
    int failed = 0;
    Py_BEGIN_ALLOW_THREADS
    const char *p = data.buf, *end = p + data.len;
    long long line = first_line;
    for (;;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *stop = nl ? nl : end;
        size_t len = (size_t)(stop - p);
        if (len) {
            int ok = len <= MAX_RECORD_BYTES && parse_record(&lane, p, stop);
            int32_t shape = 0;
            if (ok && lane.signature.len) {
                shape = signature_id(&lane);
                ok = shape > 0;
            }
            if (ok) {
                int64_t at = line;
                if (commit_row(&lane, shape) || buf_put(&lines, &at, sizeof at)) {
                    failed = 1;
                    break;
                }
            } else {
                int64_t at = line;
                int32_t off;
                if (buf_put(&deferred, &at, sizeof at) || buf_put(&dtext, p, len) ||
                    dtext.len > INT32_MAX) {
                    failed = 1;
                    break;
                }
                off = (int32_t)dtext.len;
                if (buf_put(&doffsets, &off, sizeof off)) {
                    failed = 1;
                    break;
                }
            }
        }
        if (!nl) break;
        p = nl + 1;
        line++;
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    PyObject *cols = PyList_New(lane.ncolumns);
    if (!cols) goto done;
    for (int k = 0; k < lane.ncolumns; k++) {
        Column *c = &lane.columns[k];
        PyObject *item = Py_BuildValue("(NNN)", take(&c->validity), take(&c->values),
                                       c->kind == K_VARCHAR ? take(&c->offsets)
                                                            : Py_NewRef(Py_None));
        if (!item) {
            Py_DECREF(cols);
            goto done;
        }
        PyList_SET_ITEM(cols, k, item);
    }
    result = Py_BuildValue("(LNNNNNNN)", (long long)lane.rows, take(&lines), cols, take(&deferred),
                           take(&doffsets), take(&dtext), take(&lane.shapes), take(&lane.known));
done:
    free(lines.data);
    free(deferred.data);
    free(dtext.data);
    free(doffsets.data);
    lane_free(&lane);
    PyBuffer_Release(&data);
    return result;
}

static PyMethodDef methods[] = {
    {"convert", fastlane_convert, METH_VARARGS,
     "convert(data, first_line, columns) -> (rows, lines, columns, deferred lines, "
     "deferred offsets, deferred text, shapes, signatures)\n\n"
     "Convert the lines of `data` that take the fast lane; see arbalest/loading/fastlane.py."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastlane", "The fast lane's one pass over JSON lines, in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastlane(void) {
    if (!c_locale) c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!c_locale) return PyErr_NoMemory();
    return PyModule_Create(&module);
}
