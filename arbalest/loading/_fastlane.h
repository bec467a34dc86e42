/* The fast lane: one pass over a chunk of JSON lines, in C.
 *
 * Each line that is one JSON object walked down the schema's key tree, with values of the
 * plainest forms (see parse_value in _fastlane_rules.c), is converted by the lane into column
 * buffers that Python wraps as Arrow arrays without a copy; a key no column reads is skipped
 * (its value checked strictly) and noted in the record's signature for the drift report.
 * Every other line is *deferred*: its line number and a copy of its text go back to Python,
 * which converts it with the exact SQL path as before (line numbers plus their text,
 * contiguous: Arrow's layout). The lane never rejects a line and never decides anything the
 * SQL path might decide differently: where a value is not certain, the whole line is
 * deferred. The differential tests (tests/unit/loading/test_fastlane.py) hold both paths to
 * the same rows.
 *
 * This header is what the units share; each unit keeps the rest to itself (static):
 *   _fastlane.c        the Python module: the schema's columns into a key tree, the loop
 *                      over a chunk's lines, the buffers handed back to Python
 *   _fastlane_json.c   JSON tokens: numbers, strings, values no column reads (skipped)
 *   _fastlane_rules.c  the conversion rules (one value for one column, or defer), and the
 *                      walk of a record's keys that applies them
 *   _fastlane_rows.c   growable buffers, the key tree, key signatures, rows into columns
 *   _fastlane_copy.c   Arrow columns into PostgreSQL's binary COPY rows (the PostgreSQL
 *                      loader's encoding, apart from the lane)
 * Nothing but PyInit__fastlane leaves the shared object: what one unit lends another is
 * declared FASTLANE_INTERNAL (hidden) below.
 *
 * Python side: arbalest/loading/fastlane.py.
 */
#ifndef ARBALEST_FASTLANE_H
#define ARBALEST_FASTLANE_H

#define _GNU_SOURCE /* strtod_l */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define FASTLANE_INTERNAL __attribute__((visibility("hidden")))
#else
#define FASTLANE_INTERNAL
#endif

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

/* -- growable buffers (_fastlane_rows.c) ---------------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

FASTLANE_INTERNAL int buf_reserve(Buf *b, size_t extra);
FASTLANE_INTERNAL int buf_put(Buf *b, const void *src, size_t n);

/* -- the schema as a tree of keys ----------------------------------------------------- */

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

static inline int same_key(const Node *node, const char *key, Py_ssize_t len) {
    if (node->keylen != len) return 0;
    for (Py_ssize_t k = 0; k < len; k++)
        if (node->key[k] != key[k]) return 0;
    return 1;
}

/* _fastlane_rows.c */
FASTLANE_INTERNAL void lane_free(Lane *lane);
FASTLANE_INTERNAL int find_child(Lane *lane, int parent, const char *key, Py_ssize_t len);
/* The id of the current record's signature (1...), adding it if new; -1: too many kinds of
 * record (the record is deferred) or no memory. */
FASTLANE_INTERNAL int32_t signature_id(Lane *lane);
FASTLANE_INTERNAL int commit_row(Lane *lane, int32_t shape);

/* -- scanning (_fastlane_json.c) ------------------------------------------------------ */

static inline const char *skip_ws(const char *p, const char *end) {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

static inline int64_t digits_value(const char *p, size_t n) {
    int64_t v = 0;
    for (size_t k = 0; k < n; k++) v = v * 10 + (p[k] - '0');
    return v;
}

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

FASTLANE_INTERNAL const char *scan_number(const char *p, const char *end, Number *n);
/* A string token without escapes: its bytes, valid UTF-8 without control characters. p is
 * just after the opening quote. Returns the position after the closing quote; NULL to
 * defer. *escaped is set when the string has a backslash (then nothing else is checked). */
FASTLANE_INTERNAL const char *scan_plain_string(const char *p, const char *end, const char **s,
                                                size_t *len, int *escaped);
/* A string token with escapes, decoded into the scratch buffer. p is just after the opening
 * quote. Returns the position after the closing quote; NULL to defer (U+0000, a lone
 * surrogate, bad UTF-8 or control characters: the SQL path decides those). */
FASTLANE_INTERNAL const char *decode_string(Lane *lane, const char *p, const char *end,
                                            size_t *off, size_t *len);
/* Skip one JSON value, checking it as strictly as any reader would (NULL to defer: the SQL
 * path decides whether the record is JSON at all). */
FASTLANE_INTERNAL const char *skip_value(Lane *lane, const char *p, const char *end, int depth);

/* -- values and records (_fastlane_rules.c) ------------------------------------------- */

/* Once, before any record: the "C" locale numbers are read in. 0: done; -1: no memory. */
FASTLANE_INTERNAL int rules_init(void);
/* Whether the line [p, end) is one record the lane takes, its values staged in the columns
 * (and its keys no column reads in lane->signature); 0 to defer it. */
FASTLANE_INTERNAL int parse_record(Lane *lane, const char *p, const char *end);

/* -- PostgreSQL's binary COPY (_fastlane_copy.c) ----------------------------------------- */

/* copy_rows(rows, columns) -> bytes: see arbalest/backends/postgres.py. */
FASTLANE_INTERNAL PyObject *fastlane_copy_rows(PyObject *self, PyObject *args);

#endif
