/* The fast lane's Python module, arbalest.loading._fastlane: convert() takes a chunk of
 * JSON lines and the schema's columns, builds the key tree, runs each line through the lane
 * (without the GIL) and hands back the taken rows' Arrow buffers and the deferred lines.
 * What the lane is, and its units: _fastlane.h. Python side: arbalest/loading/fastlane.py.
 */
#include "_fastlane.h"

/* -- the schema's columns as a key tree ------------------------------------------------- */

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

/* -- one chunk -------------------------------------------------------------------------- */

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
    {"copy_rows", fastlane_copy_rows, METH_VARARGS,
     "copy_rows(rows, columns) -> bytes\n\n"
     "`rows` rows of Arrow columns in PostgreSQL's binary COPY format; see "
     "arbalest/backends/postgres.py."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastlane", "The fast lane's one pass over JSON lines, in C.", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastlane(void) {
    if (rules_init()) return PyErr_NoMemory();
    return PyModule_Create(&module);
}
