/* The fast lane's conversion rules, and the records they apply to. A value is converted for
 * its column where the answer is the SQL path's for certain (integers in range, decimals
 * whose text the SQL path sees digit for digit, correctly rounded floats, booleans, strings
 * within length, ISO 8601 in its plainest forms), else the whole line is deferred. A record
 * is one object walked down the key tree: each key's value goes to its column's rule, an
 * object the schema reads into is walked in turn, and a key no column reads is noted in the
 * record's signature and its value skipped. The walk sits here, beside parse_value, so that
 * the compiler inlines the rule into it (a call fewer per value). See _fastlane.h. */
#include "_fastlane.h"

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

int rules_init(void) {
    if (!c_locale) c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    return c_locale ? 0 : -1;
}

static const double EXACT10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

#if defined(__x86_64__) && defined(__LDBL_MANT_DIG__) && __LDBL_MANT_DIG__ == 64
#define FASTLANE_X87_LONG_DOUBLE 1
static const long double EXACT10L[20] = {
    1e0L,  1e1L,  1e2L,  1e3L,  1e4L,  1e5L,  1e6L,  1e7L,  1e8L,  1e9L,
    1e10L, 1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L};
#else
#define FASTLANE_X87_LONG_DOUBLE 0
#endif

/* Clinger's fast path: at most 15 digits and no exponent, so the digits and the power of
 * ten are exact doubles and one division rounds correctly. Then, where long double is x87's
 * (a 64-bit significand), 16 to 19 digits: the digits (below 10^19 < 2^64) and 10^k (k <= 19:
 * 5^19 < 2^64) are exact long doubles, so the division q is the quotient correctly rounded to
 * 64 bits, and rounding q to a double gives the quotient correctly rounded unless q is itself
 * halfway between two doubles (q's 11 bits below a double's 53 are 0x400): rounding is
 * monotonic and a halfway point is a long double, so the quotient and q lie on the same side
 * of every halfway point but the one q may equal. Those (and their neighbours, for margin) go
 * to strtod. 0: done; -1: not this way. */
static int fast_double(const Number *n, double *out) {
    size_t digits = n->int_len + n->frac_len;
    if (n->has_exp || digits > 19) return -1;
    uint64_t m = (uint64_t)digits_value(n->int_start, n->int_len);
    for (size_t k = 0; k < n->frac_len; k++) m = m * 10 + (uint64_t)(n->frac_start[k] - '0');
    double d;
    if (digits <= 15) {
        d = (double)(int64_t)m / EXACT10[n->frac_len];
    } else {
#if FASTLANE_X87_LONG_DOUBLE
        long double q = (long double)m / EXACT10L[n->frac_len];
        uint64_t significand;
        memcpy(&significand, &q, sizeof significand); /* x87: the low 8 bytes, bit 63 set */
        unsigned below = (unsigned)(significand & 0x7FF);
        if (m == 0 || (below >= 0x3FF && below <= 0x401)) return -1;
        d = (double)q;
#else
        return -1;
#endif
    }
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
        double d;
        if (fast_double(&num, &d)) {
            /* glibc's strtod is correctly rounded and thread-safe (this runs without the
             * GIL: Python's own dtoa keeps a shared free list), in the "C" locale */
            size_t len = (size_t)(q - p);
            char text[64];
            if (len >= sizeof text) return NULL;
            memcpy(text, p, len);
            text[len] = '\0';
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

/* -- records ---------------------------------------------------------------------------- */

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

int parse_record(Lane *lane, const char *p, const char *end) {
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
