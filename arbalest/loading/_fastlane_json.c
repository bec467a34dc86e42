/* The fast lane's JSON tokens: numbers, strings (plain, or with escapes decoded), and
 * whole values no column reads (skipped, checked strictly). See _fastlane.h. */
#include "_fastlane.h"

/* -- scanning ---------------------------------------------------------------------------- */

const char *scan_number(const char *p, const char *end, Number *n) {
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

/* Whether any byte of w is a quote, a backslash, a control character or not ASCII. */
static inline uint64_t special_bytes(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t quote = w ^ (ones * '"'), slash = w ^ (ones * '\\');
    return ((quote - ones) & ~quote) | ((slash - ones) & ~slash) | ((w - ones * 0x20) & ~w) |
           w;
}

const char *scan_plain_string(const char *p, const char *end, const char **s, size_t *len,
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

const char *decode_string(Lane *lane, const char *p, const char *end, size_t *off,
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

/* -- values no column reads --------------------------------------------------------------- */

const char *skip_value(Lane *lane, const char *p, const char *end, int depth) {
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
