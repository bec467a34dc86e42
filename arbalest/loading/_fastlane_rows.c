/* The fast lane's bookkeeping: growable buffers, the schema's key tree, the signatures of
 * keys no column reads (for the drift report), and a taken record's values appended to its
 * columns' Arrow buffers. See _fastlane.h. */
#include "_fastlane.h"

/* -- growable buffers ------------------------------------------------------------------- */

int buf_reserve(Buf *b, size_t extra) {
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

int buf_put(Buf *b, const void *src, size_t n) {
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

void lane_free(Lane *lane) {
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

int find_child(Lane *lane, int parent, const char *key, Py_ssize_t len) {
    for (int n = lane->nodes[parent].first_child; n >= 0; n = lane->nodes[n].next_sibling)
        if (same_key(&lane->nodes[n], key, len)) return n;
    return -1;
}

/* -- keys no column reads: their signatures --------------------------------------------- */

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t k = 0; k < n; k++) h = (h ^ (unsigned char)p[k]) * 1099511628211ULL;
    return h;
}

int32_t signature_id(Lane *lane) {
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

/* -- rows ------------------------------------------------------------------------------- */

int commit_row(Lane *lane, int32_t shape) {
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
