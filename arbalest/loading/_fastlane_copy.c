/* Rows in PostgreSQL's binary COPY format, from Arrow column buffers: what the PostgreSQL
 * loader sends for each batch (arbalest/backends/postgres.py, which writes the header and
 * the trailer and decides which columns come here). Each row is its field count, then each
 * field's byte length (-1 for NULL) and its bytes, big-endian, as the column type's own
 * binary input function reads them:
 *   int2/int4/int8, float4/float8  the value's bytes;   bool  one byte, 0 or 1
 *   text/varchar  the UTF-8 bytes;   jsonb  a version byte (1), then the text
 *   numeric  ndigits, weight, sign, dscale (int16 each), then base-10000 digits (int16 each),
 *            most significant first: the value is the sum of digit[i] * 10000^(weight - i)
 *   timestamp/timestamptz  int8 microseconds since 2000-01-01;   date  int4 days since then
 * See _fastlane.h for the other units. */
#include "_fastlane.h"

enum {
    P_INT16 = 1,
    P_INT32 = 2,
    P_INT64 = 3,
    P_FLOAT32 = 4,
    P_FLOAT64 = 5,
    P_BOOL = 6,
    P_TEXT = 7,        /* int32 offsets */
    P_LARGE_TEXT = 8,  /* int64 offsets */
    P_JSONB = 9,       /* text with int32 offsets, sent as jsonb */
    P_LARGE_JSONB = 10,
    P_NUMERIC = 11,    /* decimal128 (two's complement, little-endian) with a scale */
    P_TIMESTAMP = 12,  /* int64 microseconds since 1970 */
    P_DATE = 13,       /* int32 days since 1970 */
};

#define PG_EPOCH_DAYS 10957                  /* 2000-01-01 - 1970-01-01 */
#define PG_EPOCH_MICROS 946684800000000LL

typedef struct {
    int kind, scale;
    int64_t offset; /* the array's first row in its buffers */
    Py_buffer validity, values, offsets;
    int has_validity, has_values, has_offsets;
} Field;

static inline void put16(char *p, uint16_t v) {
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static inline void put32(char *p, uint32_t v) {
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static inline void put64(char *p, uint64_t v) {
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static inline int bit(const Py_buffer *b, int64_t i) {
    return (((const unsigned char *)b->buf)[i >> 3] >> (i & 7)) & 1;
}

/* A decimal128's unscaled value (scale digits after the point) as numeric's fields, into
 * out (at most 8 + 2 * 20 bytes: 39 digits and a scale up to 38 span at most 20 groups).
 * Returns the bytes written. */
static size_t put_numeric(char *out, const char *value, int scale) {
    uint64_t lo, hi;
    memcpy(&lo, value, 8);
    memcpy(&hi, value + 8, 8);
    int negative = (hi >> 63) != 0;
    if (negative) { /* the magnitude (2^127 itself stays right, unsigned) */
        lo = ~lo + 1;
        hi = ~hi + (lo == 0);
    }
    /* digit k (from the least significant) is worth 10^(k - scale): base-10000 group
     * floor((k - scale) / 4), groups numbered from the point; weight is the highest */
    int low = scale > 0 ? -((scale + 3) / 4) : 0; /* the lowest group: covers the scale */
    int16_t groups[24] = {0};
    int high = low;
    int pad = (4 - scale % 4) % 4; /* the digits shifted so that the point is a group's */
    static const uint64_t shift[4] = {1, 10, 100, 1000};
    if (hi == 0 && lo <= UINT64_MAX / 1000) {
        /* most values: 64 bits, a group at a time */
        uint64_t v = lo * shift[pad];
        for (int g = 0; v; g++, v /= 10000) {
            groups[g] = (int16_t)(v % 10000);
            high = low + g;
        }
    } else {
        /* four 32-bit limbs, most significant first, divided by 10 until zero */
        uint32_t limbs[4] = {(uint32_t)(hi >> 32), (uint32_t)hi, (uint32_t)(lo >> 32),
                             (uint32_t)lo};
        for (int k = pad; limbs[0] | limbs[1] | limbs[2] | limbs[3]; k++) {
            uint64_t rest = 0;
            for (int j = 0; j < 4; j++) {
                uint64_t part = (rest << 32) | limbs[j];
                limbs[j] = (uint32_t)(part / 10);
                rest = part % 10;
            }
            groups[k / 4] = (int16_t)(groups[k / 4] + rest * shift[k % 4]);
            high = low + k / 4;
        }
    }
    /* numeric keeps no leading or trailing zero groups */
    while (high >= low && groups[high - low] == 0) high--;
    int first = low;
    while (first <= high && groups[first - low] == 0) first++;
    int ndigits = high >= first ? high - first + 1 : 0;
    put16(out, (uint16_t)ndigits);
    put16(out + 2, (uint16_t)(int16_t)(ndigits ? high : 0));
    put16(out + 4, negative && ndigits ? 0x4000 : 0);
    put16(out + 6, (uint16_t)scale);
    for (int i = 0; i < ndigits; i++) put16(out + 8 + 2 * i, (uint16_t)groups[high - i - low]);
    return 8 + 2 * (size_t)ndigits;
}

static int64_t text_offset(const Field *f, int64_t i) {
    if (f->kind == P_LARGE_TEXT || f->kind == P_LARGE_JSONB)
        return ((const int64_t *)f->offsets.buf)[f->offset + i];
    return ((const int32_t *)f->offsets.buf)[f->offset + i];
}

/* The bytes of a fixed-width kind's value (0: not fixed-width). */
static int fixed_width(int kind) {
    switch (kind) {
    case P_INT16: return 2;
    case P_BOOL: return 1;
    case P_INT32: case P_FLOAT32: case P_DATE: return 4;
    case P_INT64: case P_FLOAT64: case P_TIMESTAMP: return 8;
    default: return 0;
    }
}

static inline int is_null(const Field *f, int64_t r) {
    return f->has_validity && !bit(&f->validity, f->offset + r);
}

/* The rows are written column by column (one kind per loop: no branch on the kind per
 * value): measure() finds each row's length, hence where each row starts and the bytes in
 * all, and write_rows() puts each column's fields at each row's next place. measure()
 * encodes the numerics (NUMERIC_MOST bytes per row, a column after another), write_rows()
 * copies them. */
#define NUMERIC_MOST (8 + 2 * 20)

typedef struct {
    size_t rows;
    size_t *place;        /* per row: where its next field goes */
    char *encoded;        /* the numeric columns' values */
    uint8_t *numeric_len; /* and their lengths */
} Plan;

static void plan_free(Plan *plan) {
    free(plan->place);
    free(plan->encoded);
    free(plan->numeric_len);
}

/* The bytes the rows take; 0 with no memory (a row takes at least 2). */
static size_t measure(Plan *plan, const Field *fields, int nfields) {
    size_t n = plan->rows;
    int numerics = 0;
    for (int k = 0; k < nfields; k++) numerics += fields[k].kind == P_NUMERIC;
    size_t *place = plan->place = malloc((n ? n : 1) * sizeof *place);
    size_t cells = (size_t)numerics * n;
    char *encoded = plan->encoded = numerics ? malloc(cells * NUMERIC_MOST + 1) : NULL;
    uint8_t *numeric_len = plan->numeric_len = numerics ? malloc(cells + 1) : NULL;
    if (!place || (numerics && (!encoded || !numeric_len))) return 0;
    /* each row's length */
    for (size_t r = 0; r < n; r++) place[r] = 2;
    int nth = 0;
    for (int k = 0; k < nfields; k++) {
        const Field *f = &fields[k];
        int width = fixed_width(f->kind);
        if (width) {
            for (size_t r = 0; r < n; r++)
                place[r] += is_null(f, (int64_t)r) ? 4 : 4 + (size_t)width;
        } else if (f->kind == P_NUMERIC) {
            char *at = encoded + (size_t)nth * n * NUMERIC_MOST;
            uint8_t *len = numeric_len + (size_t)nth * n;
            for (size_t r = 0; r < n; r++) {
                if (is_null(f, (int64_t)r)) {
                    place[r] += 4;
                    continue;
                }
                const char *value = (const char *)f->values.buf + 16 * (f->offset + (int64_t)r);
                len[r] = (uint8_t)put_numeric(at + r * NUMERIC_MOST, value, f->scale);
                place[r] += 4 + len[r];
            }
            nth++;
        } else {
            size_t jsonb = f->kind == P_JSONB || f->kind == P_LARGE_JSONB;
            for (size_t r = 0; r < n; r++) {
                int64_t length = text_offset(f, (int64_t)r + 1) - text_offset(f, (int64_t)r);
                place[r] += is_null(f, (int64_t)r) ? 4 : 4 + jsonb + (size_t)length;
            }
        }
    }
    /* where each row starts */
    size_t total = 0;
    for (size_t r = 0; r < n; r++) {
        size_t length = place[r];
        place[r] = total;
        total += length;
    }
    return total;
}

static void write_rows(const Plan *plan, const Field *fields, int nfields, char *out) {
    size_t n = plan->rows, *place = plan->place;
    for (size_t r = 0; r < n; r++) {
        put16(out + place[r], (uint16_t)nfields);
        place[r] += 2;
    }
    int nth = 0;
    for (int k = 0; k < nfields; k++) {
        const Field *f = &fields[k];
        const char *values = f->values.buf;
        int64_t o = f->offset;
#define EACH_ROW(BODY)                                                                        \
    for (size_t r = 0; r < n; r++) {                                                          \
        char *p = out + place[r];                                                             \
        if (is_null(f, (int64_t)r)) {                                                         \
            put32(p, 0xFFFFFFFFu);                                                            \
            place[r] += 4;                                                                    \
            continue;                                                                         \
        }                                                                                     \
        int64_t i = o + (int64_t)r;                                                           \
        (void)i;                                                                              \
        BODY                                                                                  \
    }
        switch (f->kind) {
        case P_INT16:
            EACH_ROW(put32(p, 2); put16(p + 4, (uint16_t)((const int16_t *)values)[i]);
                     place[r] += 6;)
            break;
        case P_INT32:
        case P_FLOAT32:
            EACH_ROW(put32(p, 4); put32(p + 4, ((const uint32_t *)values)[i]); place[r] += 8;)
            break;
        case P_INT64:
        case P_FLOAT64:
            EACH_ROW(put32(p, 8); put64(p + 4, ((const uint64_t *)values)[i]); place[r] += 12;)
            break;
        case P_BOOL:
            EACH_ROW(put32(p, 1); p[4] = (char)bit(&f->values, i); place[r] += 5;)
            break;
        case P_DATE:
            EACH_ROW(put32(p, 4);
                     put32(p + 4, (uint32_t)(((const int32_t *)values)[i] - PG_EPOCH_DAYS));
                     place[r] += 8;)
            break;
        case P_TIMESTAMP:
            EACH_ROW(put32(p, 8);
                     put64(p + 4, (uint64_t)(((const int64_t *)values)[i] - PG_EPOCH_MICROS));
                     place[r] += 12;)
            break;
        case P_NUMERIC: {
            const char *at = plan->encoded + (size_t)nth * n * NUMERIC_MOST;
            const uint8_t *len = plan->numeric_len + (size_t)nth * n;
            EACH_ROW(put32(p, len[r]); memcpy(p + 4, at + r * NUMERIC_MOST, len[r]);
                     place[r] += 4 + (size_t)len[r];)
            nth++;
            break;
        }
        default: { /* text, jsonb */
            size_t jsonb = f->kind == P_JSONB || f->kind == P_LARGE_JSONB;
            EACH_ROW(int64_t start = text_offset(f, (int64_t)r);
                     size_t length = (size_t)(text_offset(f, (int64_t)r + 1) - start);
                     put32(p, (uint32_t)(length + jsonb)); if (jsonb) p[4] = 1;
                     memcpy(p + 4 + jsonb, values + start, length);
                     place[r] += 4 + jsonb + length;)
            break;
        }
        }
#undef EACH_ROW
    }
}

PyObject *fastlane_copy_rows(PyObject *self, PyObject *args) {
    (void)self;
    long long rows;
    PyObject *columns;
    if (!PyArg_ParseTuple(args, "LO!", &rows, &PyList_Type, &columns)) return NULL;
    Py_ssize_t nfields = PyList_GET_SIZE(columns);
    if (rows < 0 || nfields > 1600) {
        PyErr_SetString(PyExc_ValueError, "copy_rows: bad row or column count");
        return NULL;
    }
    Field *fields = calloc((size_t)nfields + 1, sizeof *fields);
    if (!fields) return PyErr_NoMemory();
    PyObject *result = NULL;
    for (Py_ssize_t k = 0; k < nfields; k++) {
        Field *f = &fields[k];
        PyObject *validity, *values, *offsets;
        long long offset;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(columns, k), "iiLOOO", &f->kind, &f->scale,
                              &offset, &validity, &values, &offsets))
            goto done;
        f->offset = offset;
        if (f->kind < P_INT16 || f->kind > P_DATE || offset < 0 || f->scale < 0 ||
            f->scale > 38) {
            PyErr_SetString(PyExc_ValueError, "copy_rows: bad column");
            goto done;
        }
        if (validity != Py_None) {
            if (PyObject_GetBuffer(validity, &f->validity, PyBUF_SIMPLE)) goto done;
            f->has_validity = 1;
        }
        if (PyObject_GetBuffer(values, &f->values, PyBUF_SIMPLE)) goto done;
        f->has_values = 1;
        if (offsets != Py_None) {
            if (PyObject_GetBuffer(offsets, &f->offsets, PyBUF_SIMPLE)) goto done;
            f->has_offsets = 1;
        }
        /* the buffers must hold the rows asked for (a wrong call is an error, not a read
         * past their end) */
        int64_t end = offset + rows;
        int text = f->kind >= P_TEXT && f->kind <= P_LARGE_JSONB;
        int64_t width = f->kind == P_INT16                           ? 2
                        : f->kind == P_INT64 || f->kind == P_FLOAT64 ? 8
                        : f->kind == P_TIMESTAMP                     ? 8
                        : f->kind == P_NUMERIC                       ? 16
                                                                     : 4;
        int64_t owidth = f->kind == P_LARGE_TEXT || f->kind == P_LARGE_JSONB ? 8 : 4;
        int bad = (f->has_validity && f->validity.len * 8 < end) ||
                  (text && (!f->has_offsets || f->offsets.len < (end + 1) * owidth)) ||
                  (!text && f->kind == P_BOOL && f->values.len * 8 < end) ||
                  (!text && f->kind != P_BOOL && f->values.len < end * width);
        if (!bad && text && rows) {
            int64_t lo = text_offset(f, 0), hi = text_offset(f, rows);
            bad = lo < 0 || hi < lo || hi > f->values.len;
            for (int64_t r = 0; !bad && r < rows; r++)
                bad = text_offset(f, r + 1) < text_offset(f, r);
        }
        if (bad) {
            PyErr_SetString(PyExc_ValueError, "copy_rows: a buffer is too short");
            goto done;
        }
    }
    for (Py_ssize_t k = 0; k < nfields; k++) {
        const Field *f = &fields[k];
        if (f->kind >= P_TEXT && f->kind <= P_LARGE_JSONB && rows &&
            text_offset(f, rows) - text_offset(f, 0) > INT32_MAX) {
            /* a batch's text is far below this; a field's length is an int32 */
            PyErr_SetString(PyExc_ValueError, "copy_rows: more than 2 GB of text");
            goto done;
        }
    }
    Plan plan = {(size_t)rows, NULL, NULL, NULL};
    size_t size;
    Py_BEGIN_ALLOW_THREADS
    size = measure(&plan, fields, (int)nfields);
    Py_END_ALLOW_THREADS
    if (!size && rows) {
        plan_free(&plan);
        PyErr_NoMemory();
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (result) {
        char *out = PyBytes_AS_STRING(result);
        Py_BEGIN_ALLOW_THREADS
        write_rows(&plan, fields, (int)nfields, out);
        Py_END_ALLOW_THREADS
    }
    plan_free(&plan);
done:
    for (Py_ssize_t k = 0; k < nfields; k++) {
        if (fields[k].has_validity) PyBuffer_Release(&fields[k].validity);
        if (fields[k].has_values) PyBuffer_Release(&fields[k].values);
        if (fields[k].has_offsets) PyBuffer_Release(&fields[k].offsets);
    }
    free(fields);
    return result;
}
