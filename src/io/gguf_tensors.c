/* gguf_tensors.c - the tensor-info table of a GGUF file (name, shape, ggml type, offset) and the
 * ggml type ids. Every count, dimension product, byte size and offset is checked against the file
 * before anything is allocated or pointed at; tensors may not overlap. */
#include "base/error.h"
#include "io/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ggml's type table (ggml.h enum ggml_type): block elements and bytes; 0 = removed id. */
static const struct {
    const char *name;
    int blck;
    int bytes;
} ggml_types[GGUF_GGML_TYPE_COUNT] = {
    {"F32", 1, 4},        {"F16", 1, 2},       {"Q4_0", 32, 18},     {"Q4_1", 32, 20},
    {NULL, 0, 0},         {NULL, 0, 0},        {"Q5_0", 32, 22},     {"Q5_1", 32, 24},
    {"Q8_0", 32, 34},     {"Q8_1", 32, 36},    {"Q2_K", 256, 84},    {"Q3_K", 256, 110},
    {"Q4_K", 256, 144},   {"Q5_K", 256, 176},  {"Q6_K", 256, 210},   {"Q8_K", 256, 292},
    {"IQ2_XXS", 256, 66}, {"IQ2_XS", 256, 74}, {"IQ3_XXS", 256, 98}, {"IQ1_S", 256, 50},
    {"IQ4_NL", 32, 18},   {"IQ3_S", 256, 110}, {"IQ2_S", 256, 82},   {"IQ4_XS", 256, 136},
    {"I8", 1, 1},         {"I16", 1, 2},       {"I32", 1, 4},        {"I64", 1, 8},
    {"F64", 1, 8},        {"IQ1_M", 256, 56},  {"BF16", 1, 2},       {NULL, 0, 0},
    {NULL, 0, 0},         {NULL, 0, 0},        {"TQ1_0", 256, 54},   {"TQ2_0", 256, 66},
};

/* cllm dtype <-> ggml type id */
static const uint32_t dtype_ggml[DTYPE_COUNT] = {
    [DTYPE_F32] = 0,   [DTYPE_F16] = 1,   [DTYPE_BF16] = 30, [DTYPE_Q8_0] = 8,
    [DTYPE_Q4_0] = 2,  [DTYPE_Q4_1] = 3,  [DTYPE_Q5_0] = 6,  [DTYPE_Q5_1] = 7,
    [DTYPE_Q4_K] = 12, [DTYPE_Q5_K] = 13, [DTYPE_Q6_K] = 14, [DTYPE_Q8_K] = 15,
};

const char *gguf_ggml_type_name(uint32_t t) {
    return t < GGUF_GGML_TYPE_COUNT && ggml_types[t].name ? ggml_types[t].name : "unknown";
}

bool gguf_ggml_type_size(uint32_t t, int *blck, size_t *bytes) {
    if (t >= GGUF_GGML_TYPE_COUNT || !ggml_types[t].blck) return false;
    *blck = ggml_types[t].blck;
    *bytes = (size_t)ggml_types[t].bytes;
    return true;
}

bool gguf_type_to_dtype(uint32_t t, dtype *out) {
    for (int d = 0; d < DTYPE_COUNT; d++)
        if (dtype_ggml[d] == t) {
            *out = (dtype)d;
            return true;
        }
    return false;
}

uint32_t gguf_dtype_to_type(dtype d) {
    return dtype_ggml[d];
}

typedef struct rd {
    const char *path;
    const uint8_t *p;
    size_t size, pos;
} rd;

static cllm_status short_read(const rd *r, uint64_t i, const char *what) {
    return err_set(CLLM_ERR_FORMAT,
                   "%s: tensor info %llu: %s at offset %zu runs past the end of "
                   "the file (size %zu)",
                   r->path, (unsigned long long)i, what, r->pos, r->size);
}

static bool rd_n(rd *r, void *v, size_t n) {
    if (n > r->size - r->pos) return false;
    memcpy(v, r->p + r->pos, n);
    r->pos += n;
    return true;
}

static int cmp_name(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_off(const void *a, const void *b) {
    const gguf_tensor *x = *(const gguf_tensor *const *)a, *y = *(const gguf_tensor *const *)b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Shape, type and byte size of one tensor, all checked. */
static cllm_status read_info(rd *r, uint64_t i, gguf_tensor *t) {
    uint64_t len;
    if (!rd_n(r, &len, 8)) return short_read(r, i, "name length");
    if (len > r->size - r->pos) return short_read(r, i, "name");
    if (len >= sizeof t->name)
        return err_set(CLLM_ERR_FORMAT, "%s: tensor info %llu: name of %llu bytes (max %zu)",
                       r->path, (unsigned long long)i, (unsigned long long)len, sizeof t->name - 1);
    memcpy(t->name, r->p + r->pos, (size_t)len);
    t->name[len] = 0;
    r->pos += (size_t)len;
    if (strlen(t->name) != len)
        return err_set(CLLM_ERR_FORMAT, "%s: tensor info %llu: name contains a NUL byte", r->path,
                       (unsigned long long)i);
    if (!rd_n(r, &t->n_dims, 4)) return short_read(r, i, "n_dims");
    if (t->n_dims > GGUF_MAX_DIMS)
        return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s': %u dimensions (max %d)", r->path, t->name,
                       t->n_dims, GGUF_MAX_DIMS);
    int64_t nel = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if ((uint32_t)d < t->n_dims && !rd_n(r, &t->ne[d], 8)) return short_read(r, i, "dims");
        if (t->ne[d] < 0 || (t->ne[d] && nel > INT64_MAX / t->ne[d]))
            return err_set(CLLM_ERR_FORMAT,
                           "%s: tensor '%s': dimension %d = %lld is invalid or "
                           "makes the element count overflow",
                           r->path, t->name, d, (long long)t->ne[d]);
        nel *= t->ne[d];
    }
    if (!rd_n(r, &t->type, 4)) return short_read(r, i, "type");
    int blck;
    size_t bytes;
    if (!gguf_ggml_type_size(t->type, &blck, &bytes))
        return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s': unknown ggml type %u", r->path, t->name,
                       t->type);
    if (t->ne[0] % blck)
        return err_set(CLLM_ERR_FORMAT,
                       "%s: tensor '%s': row of %lld elements is not a multiple "
                       "of the %s block size %d",
                       r->path, t->name, (long long)t->ne[0], gguf_ggml_type_name(t->type), blck);
    /* nel / blck blocks of `bytes` each; nel < 2^63, bytes <= 292: check the product */
    uint64_t blocks = (uint64_t)nel / (uint64_t)blck;
    if (blocks > UINT64_MAX / 512)
        return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s': byte size overflows", r->path, t->name);
    t->nbytes = blocks * bytes;
    if (!rd_n(r, &t->offset, 8)) return short_read(r, i, "offset");
    return CLLM_OK;
}

cllm_status gguf_tensors_parse(const char *path, const uint8_t *data, size_t size, size_t pos,
                               uint64_t n, uint32_t align, gguf_tensor **out, size_t *data_off) {
    *out = NULL;
    rd r = {path, data, size, pos};
    /* the smallest tensor info: name length 8 + n_dims 4 + type 4 + offset 8 */
    if (n > (size - pos) / 24)
        return err_set(CLLM_ERR_FORMAT,
                       "%s: tensor count %llu cannot fit in the %zu bytes left in the file", path,
                       (unsigned long long)n, size - pos);
    gguf_tensor *ts = calloc(n ? n : 1, sizeof *ts);
    const gguf_tensor **by = calloc(n ? n : 1, sizeof *by);
    cllm_status st = CLLM_OK;
    if (!ts || !by) {
        st = err_set(CLLM_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    for (uint64_t i = 0; i < n && st == CLLM_OK; i++)
        st = read_info(&r, i, &ts[i]);
    if (st) goto done;
    size_t doff = (r.pos + align - 1) / align * align;
    if (doff < r.pos) doff = SIZE_MAX; /* overflow: any tensor with bytes is then out of range */
    for (uint64_t i = 0; i < n; i++) {
        gguf_tensor *t = &ts[i];
        by[i] = t;
        if (t->offset % align) {
            st = err_set(CLLM_ERR_FORMAT,
                         "%s: tensor '%s': offset %llu is not a multiple of the "
                         "alignment %u",
                         path, t->name, (unsigned long long)t->offset, align);
            goto done;
        }
        if (doff > size || t->offset > size - doff || t->nbytes > size - doff - t->offset) {
            st = err_set(CLLM_ERR_FORMAT,
                         "%s: tensor '%s': data [%llu, +%llu) past the end of the "
                         "file (data section at %zu, file size %zu)",
                         path, t->name, (unsigned long long)t->offset,
                         (unsigned long long)t->nbytes, doff, size);
            goto done;
        }
        t->data = data + doff + t->offset;
    }
    qsort(by, n, sizeof *by, cmp_name);
    for (uint64_t i = 1; i < n; i++)
        if (!strcmp(by[i]->name, by[i - 1]->name)) {
            st = err_set(CLLM_ERR_FORMAT, "%s: tensor '%s' appears twice", path, by[i]->name);
            goto done;
        }
    qsort(by, n, sizeof *by, cmp_off);
    const gguf_tensor *last = NULL; /* the non-empty tensor reaching furthest so far */
    for (uint64_t i = 0; i < n; i++) {
        if (!by[i]->nbytes) continue;
        if (last && by[i]->offset < last->offset + last->nbytes) {
            st = err_set(CLLM_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", path, last->name,
                         by[i]->name);
            goto done;
        }
        last = by[i];
    }
    *data_off = doff;
done:
    free(by);
    if (st)
        free(ts);
    else
        *out = ts;
    return st;
}
