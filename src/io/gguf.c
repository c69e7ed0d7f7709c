/* gguf.c - GGUF v2/v3 header and metadata parser. Every read goes through a cursor that checks
 * the remaining bytes first, so a truncated or hostile file yields CLLM_ERR_FORMAT, never a crash
 * or an allocation sized by an unchecked count. */
#include "io/gguf.h"
#include "base/error.h"
#include "base/mapfile.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct gguf_kv {
    size_t start, end; /* the whole entry's bytes */
    gguf_str key;
    gguf_type type;
    size_t off; /* value bytes (for arrays: the first element) */
    gguf_arr arr;
} gguf_kv;

struct gguf_file {
    mapfile mf;
    uint32_t version;
    uint64_t n_tensors;
    size_t n_kv;
    gguf_kv *kv;
    uint64_t **str_tabs; /* owned offset tables of string arrays, one per kv (or NULL) */
    gguf_tensor *tensors;
    uint32_t alignment;
    size_t data_off;
};

typedef struct cursor {
    const gguf_file *f;
    size_t pos;
    gguf_str key; /* the key being parsed, for messages */
} cursor;

static const char *const type_names[GGUF_TYPE_COUNT] = {
    "uint8", "int8",   "uint16", "int16",  "uint32", "int32",  "float32",
    "bool",  "string", "array",  "uint64", "int64",  "float64"};

/* Fixed element sizes; 0 for string/array. */
static const size_t type_size[GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *gguf_type_name(gguf_type t) {
    return (unsigned)t < GGUF_TYPE_COUNT ? type_names[t] : "unknown";
}

static cllm_status bad(const cursor *c, size_t at, const char *what) {
    if (c->key.p)
        return err_set(CLLM_ERR_FORMAT, "%s: key '%.*s' at offset %zu: %s", c->f->mf.path,
                       (int)(c->key.len > 200 ? 200 : c->key.len), c->key.p, at, what);
    return err_set(CLLM_ERR_FORMAT, "%s: at offset %zu: %s", c->f->mf.path, at, what);
}

static size_t remaining(const cursor *c) {
    return c->f->mf.size - c->pos;
}

static cllm_status need(const cursor *c, size_t n, const char *what) {
    if (n > remaining(c)) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s needs %zu bytes but only %zu remain (file size %zu)", what, n,
                 remaining(c), c->f->mf.size);
        return bad(c, c->pos, msg);
    }
    return CLLM_OK;
}

static cllm_status rd_u32(cursor *c, const char *what, uint32_t *v) {
    cllm_status st = need(c, 4, what);
    if (st != CLLM_OK) return st;
    memcpy(v, c->f->mf.data + c->pos, 4); /* GGUF is little-endian, as are our targets */
    c->pos += 4;
    return CLLM_OK;
}

static cllm_status rd_u64(cursor *c, const char *what, uint64_t *v) {
    cllm_status st = need(c, 8, what);
    if (st != CLLM_OK) return st;
    memcpy(v, c->f->mf.data + c->pos, 8);
    c->pos += 8;
    return CLLM_OK;
}

/* A string: u64 length then bytes, the length checked against what is left. */
static cllm_status rd_str(cursor *c, const char *what, gguf_str *s) {
    size_t at = c->pos;
    uint64_t len;
    cllm_status st = rd_u64(c, what, &len);
    if (st != CLLM_OK) return st;
    if (len > remaining(c)) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s length %llu runs past the end of the file (%zu bytes left)",
                 what, (unsigned long long)len, remaining(c));
        return bad(c, at, msg);
    }
    s->p = (const char *)c->f->mf.data + c->pos;
    s->len = (size_t)len;
    c->pos += (size_t)len;
    return CLLM_OK;
}

static cllm_status rd_type(cursor *c, const char *what, gguf_type *t) {
    size_t at = c->pos;
    uint32_t v;
    cllm_status st = rd_u32(c, what, &v);
    if (st != CLLM_OK) return st;
    if (v >= GGUF_TYPE_COUNT) {
        char msg[96];
        snprintf(msg, sizeof msg, "unknown %s %u", what, v);
        return bad(c, at, msg);
    }
    *t = (gguf_type)v;
    return CLLM_OK;
}

/* Array: element type, u64 count, elements. String arrays get an offset table, allocated only
 * after the count is known to fit (each string takes at least its 8-byte length). */
static cllm_status rd_array(cursor *c, gguf_kv *kv, uint64_t **tab) {
    cllm_status st;
    size_t at = c->pos;
    uint64_t n;
    if ((st = rd_type(c, "array element type", &kv->arr.type)) != CLLM_OK ||
        (st = rd_u64(c, "array count", &n)) != CLLM_OK)
        return st;
    if (kv->arr.type == GGUF_TYPE_ARRAY) return bad(c, at, "nested arrays are not supported");
    size_t min = kv->arr.type == GGUF_TYPE_STRING ? 8 : type_size[kv->arr.type];
    if (n > remaining(c) / min) {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "array of %llu %s elements cannot fit in the %zu bytes left in the file",
                 (unsigned long long)n, type_names[kv->arr.type], remaining(c));
        return bad(c, at, msg);
    }
    kv->arr.n = (size_t)n;
    kv->arr.data = c->f->mf.data + c->pos;
    kv->off = c->pos;
    if (kv->arr.type != GGUF_TYPE_STRING) {
        c->pos += (size_t)n * min;
        return CLLM_OK;
    }
    *tab = malloc((n ? n : 1) * sizeof **tab);
    if (!*tab) return err_set(CLLM_ERR_NOMEM, "%s: out of memory", c->f->mf.path);
    kv->arr.str_at = *tab;
    for (size_t i = 0; i < n; i++) {
        gguf_str s;
        (*tab)[i] = c->pos - kv->off;
        if ((st = rd_str(c, "string array element", &s)) != CLLM_OK) return st;
    }
    return CLLM_OK;
}

static cllm_status rd_kv_value(cursor *c, gguf_kv *kv, uint64_t **tab);

static cllm_status rd_kv(cursor *c, gguf_kv *kv, uint64_t **tab) {
    kv->start = c->pos;
    cllm_status st = rd_kv_value(c, kv, tab);
    kv->end = c->pos;
    return st;
}

static cllm_status rd_kv_value(cursor *c, gguf_kv *kv, uint64_t **tab) {
    cllm_status st;
    c->key = (gguf_str){0};
    if ((st = rd_str(c, "key", &kv->key)) != CLLM_OK) return st;
    c->key = kv->key;
    if ((st = rd_type(c, "value type", &kv->type)) != CLLM_OK) return st;
    kv->off = c->pos;
    if (kv->type == GGUF_TYPE_ARRAY) return rd_array(c, kv, tab);
    if (kv->type == GGUF_TYPE_STRING) {
        gguf_str s;
        return rd_str(c, "string value", &s);
    }
    if ((st = need(c, type_size[kv->type], "value")) != CLLM_OK) return st;
    c->pos += type_size[kv->type];
    return CLLM_OK;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->str_tabs)
        for (size_t i = 0; i < f->n_kv; i++)
            free(f->str_tabs[i]);
    free(f->str_tabs);
    free(f->kv);
    free(f->tensors);
    mapfile_close(&f->mf);
    free(f);
}

bool gguf_is_file(const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0) return S_ISREG(sb.st_mode);
    size_t n = strlen(path);
    return n > 5 && !strcmp(path + n - 5, ".gguf");
}

static int cmp_key(const void *pa, const void *pb) {
    const gguf_str *a = pa, *b = pb;
    int c = memcmp(a->p, b->p, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Every key at most once (llama.cpp rejects duplicates too): sort copies of the keys. */
static cllm_status check_duplicate_keys(const gguf_file *f) {
    if (f->n_kv < 2) return CLLM_OK;
    gguf_str *k = malloc(f->n_kv * sizeof *k);
    if (!k) return err_set(CLLM_ERR_NOMEM, "%s: out of memory", f->mf.path);
    for (size_t i = 0; i < f->n_kv; i++)
        k[i] = f->kv[i].key;
    qsort(k, f->n_kv, sizeof *k, cmp_key);
    cllm_status st = CLLM_OK;
    for (size_t i = 1; i < f->n_kv && st == CLLM_OK; i++)
        if (!cmp_key(&k[i - 1], &k[i]))
            st = err_set(CLLM_ERR_FORMAT, "%s: key '%.*s' appears more than once", f->mf.path,
                         (int)(k[i].len > 200 ? 200 : k[i].len), k[i].p);
    free(k);
    return st;
}

static cllm_status parse(gguf_file *f) {
    cursor c = {.f = f};
    uint32_t magic;
    uint64_t n_kv;
    cllm_status st;
    if (f->mf.size < 4 || memcmp(f->mf.data, "GGUF", 4))
        return err_set(CLLM_ERR_FORMAT, "%s: not a GGUF file (bad magic)", f->mf.path);
    if ((st = rd_u32(&c, "magic", &magic)) != CLLM_OK ||
        (st = rd_u32(&c, "version", &f->version)) != CLLM_OK)
        return st;
    if (f->version != 2 && f->version != 3)
        return err_set(CLLM_ERR_FORMAT, "%s: unsupported GGUF version %u (only 2 and 3)",
                       f->mf.path, f->version);
    if ((st = rd_u64(&c, "tensor count", &f->n_tensors)) != CLLM_OK ||
        (st = rd_u64(&c, "key/value count", &n_kv)) != CLLM_OK)
        return st;
    /* The smallest key/value is 8 (key length) + 4 (type) + 1 (uint8) bytes. */
    if (n_kv > remaining(&c) / 13)
        return err_set(
            CLLM_ERR_FORMAT,
            "%s: at offset 16: key/value count %llu cannot fit in the %zu bytes of the file",
            f->mf.path, (unsigned long long)n_kv, f->mf.size);
    f->kv = calloc(n_kv ? n_kv : 1, sizeof *f->kv);
    f->str_tabs = calloc(n_kv ? n_kv : 1, sizeof *f->str_tabs);
    if (!f->kv || !f->str_tabs) return err_set(CLLM_ERR_NOMEM, "%s: out of memory", f->mf.path);
    for (size_t i = 0; i < n_kv; i++) {
        f->n_kv = i + 1; /* so gguf_close frees a partly filled table */
        if ((st = rd_kv(&c, &f->kv[i], &f->str_tabs[i])) != CLLM_OK) return st;
    }
    f->n_kv = (size_t)n_kv;
    if ((st = check_duplicate_keys(f)) != CLLM_OK) return st;
    f->alignment = 32;
    if (gguf_find(f, "general.alignment") >= 0) {
        if ((st = gguf_get_u32(f, "general.alignment", &f->alignment)) != CLLM_OK) return st;
        if (!f->alignment || (f->alignment & (f->alignment - 1)))
            return err_set(CLLM_ERR_FORMAT, "%s: general.alignment %u is not a power of two",
                           f->mf.path, f->alignment);
    }
    return gguf_tensors_parse(f->mf.path, f->mf.data, f->mf.size, c.pos, f->n_tensors, f->alignment,
                              &f->tensors, &f->data_off);
}

const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i) {
    return i < f->n_tensors ? &f->tensors[i] : NULL;
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
    return NULL;
}

uint32_t gguf_alignment(const gguf_file *f) {
    return f->alignment;
}

size_t gguf_data_offset(const gguf_file *f) {
    return f->data_off;
}

void gguf_kv_raw(const gguf_file *f, size_t i, const uint8_t **p, size_t *len) {
    *p = f->mf.data + f->kv[i].start;
    *len = f->kv[i].end - f->kv[i].start;
}

cllm_status gguf_open(const char *path, gguf_file **out) {
    if (!path || !out) return err_set(CLLM_ERR_INVALID_ARG, "gguf_open: NULL argument");
    *out = NULL;
    gguf_file *f = calloc(1, sizeof *f);
    if (!f) return err_set(CLLM_ERR_NOMEM, "%s: out of memory", path);
    cllm_status st = mapfile_open(path, &f->mf);
    if (st != CLLM_OK) {
        free(f);
        return st;
    }
    if ((st = parse(f)) != CLLM_OK) {
        gguf_close(f);
        return st;
    }
    *out = f;
    return CLLM_OK;
}

const char *gguf_path(const gguf_file *f) {
    return f->mf.path;
}
uint32_t gguf_version(const gguf_file *f) {
    return f->version;
}
uint64_t gguf_n_tensors(const gguf_file *f) {
    return f->n_tensors;
}
size_t gguf_n_kv(const gguf_file *f) {
    return f->n_kv;
}
gguf_str gguf_key_at(const gguf_file *f, size_t i) {
    return i < f->n_kv ? f->kv[i].key : (gguf_str){0};
}
gguf_type gguf_type_at(const gguf_file *f, size_t i) {
    return i < f->n_kv ? f->kv[i].type : GGUF_TYPE_COUNT;
}

long gguf_find(const gguf_file *f, const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < f->n_kv; i++)
        if (f->kv[i].key.len == n && !memcmp(f->kv[i].key.p, key, n)) return (long)i;
    return -1;
}

static cllm_status lookup(const gguf_file *f, const char *key, const gguf_kv **kv) {
    long i = gguf_find(f, key);
    if (i < 0) return err_set(CLLM_ERR_NOT_FOUND, "%s: no key '%s'", f->mf.path, key);
    *kv = &f->kv[i];
    return CLLM_OK;
}

static cllm_status wrong_type(const gguf_file *f, const gguf_kv *kv, const char *want) {
    return err_set(CLLM_ERR_FORMAT, "%s: key '%.*s' at offset %zu: expected %s, found %s",
                   f->mf.path, (int)kv->key.len, kv->key.p, kv->off, want, type_names[kv->type]);
}

/* An integer (or bool) scalar of any width, widened. */
static bool read_int(gguf_type t, const uint8_t *p, int64_t *v, uint64_t *uv) {
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        uint64_t u64;
        int64_t i64;
    } x;
    if ((unsigned)t >= GGUF_TYPE_COUNT || !type_size[t] || t == GGUF_TYPE_FLOAT32 ||
        t == GGUF_TYPE_FLOAT64)
        return false;
    memcpy(&x, p, type_size[t]);
    *uv = 0;
    switch (t) {
    case GGUF_TYPE_UINT8:
        *v = x.u8;
        break;
    case GGUF_TYPE_BOOL:
        *v = x.u8 != 0;
        break;
    case GGUF_TYPE_INT8:
        *v = x.i8;
        break;
    case GGUF_TYPE_UINT16:
        *v = x.u16;
        break;
    case GGUF_TYPE_INT16:
        *v = x.i16;
        break;
    case GGUF_TYPE_UINT32:
        *v = x.u32;
        break;
    case GGUF_TYPE_INT32:
        *v = x.i32;
        break;
    case GGUF_TYPE_INT64:
        *v = x.i64;
        break;
    case GGUF_TYPE_UINT64:
        *uv = x.u64; /* may not fit an int64: callers range-check with both */
        *v = x.u64 > INT64_MAX ? INT64_MAX : (int64_t)x.u64;
        return true;
    default:
        return false;
    }
    *uv = *v < 0 ? 0 : (uint64_t)*v;
    return true;
}

static cllm_status get_int(const gguf_file *f, const char *key, int64_t lo, int64_t hi,
                           int64_t *out) {
    const gguf_kv *kv = NULL;
    cllm_status st = lookup(f, key, &kv);
    if (st != CLLM_OK) return st;
    uint64_t uv;
    if (kv->type == GGUF_TYPE_BOOL || !read_int(kv->type, f->mf.data + kv->off, out, &uv))
        return wrong_type(f, kv, "an integer");
    if (*out < lo || *out > hi)
        return err_set(CLLM_ERR_FORMAT, "%s: key '%s' at offset %zu: value %lld out of range",
                       f->mf.path, key, kv->off, (long long)*out);
    return CLLM_OK;
}

cllm_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    int64_t v;
    cllm_status st = get_int(f, key, 0, UINT32_MAX, &v);
    if (st == CLLM_OK) *out = (uint32_t)v;
    return st;
}

cllm_status gguf_get_i32(const gguf_file *f, const char *key, int32_t *out) {
    int64_t v;
    cllm_status st = get_int(f, key, INT32_MIN, INT32_MAX, &v);
    if (st == CLLM_OK) *out = (int32_t)v;
    return st;
}

cllm_status gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    const gguf_kv *kv = NULL;
    cllm_status st = lookup(f, key, &kv);
    if (st != CLLM_OK) return st;
    if (kv->type == GGUF_TYPE_FLOAT32) {
        memcpy(out, f->mf.data + kv->off, 4);
    } else if (kv->type == GGUF_TYPE_FLOAT64) {
        double d;
        memcpy(&d, f->mf.data + kv->off, 8);
        *out = (float)d;
    } else {
        return wrong_type(f, kv, "a float");
    }
    return CLLM_OK;
}

cllm_status gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const gguf_kv *kv = NULL;
    cllm_status st = lookup(f, key, &kv);
    if (st != CLLM_OK) return st;
    if (kv->type != GGUF_TYPE_BOOL) return wrong_type(f, kv, "a bool");
    *out = f->mf.data[kv->off] != 0;
    return CLLM_OK;
}

cllm_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out) {
    const gguf_kv *kv = NULL;
    cllm_status st = lookup(f, key, &kv);
    if (st != CLLM_OK) return st;
    if (kv->type != GGUF_TYPE_STRING) return wrong_type(f, kv, "a string");
    uint64_t len;
    memcpy(&len, f->mf.data + kv->off, 8); /* checked at open */
    *out = (gguf_str){(const char *)f->mf.data + kv->off + 8, (size_t)len};
    return CLLM_OK;
}

cllm_status gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem, gguf_arr *out) {
    const gguf_kv *kv = NULL;
    cllm_status st = lookup(f, key, &kv);
    if (st != CLLM_OK) return st;
    if (kv->type != GGUF_TYPE_ARRAY) return wrong_type(f, kv, "an array");
    if (elem != GGUF_TYPE_COUNT && kv->arr.type != elem)
        return err_set(CLLM_ERR_FORMAT,
                       "%s: key '%s' at offset %zu: expected an array of %s, "
                       "found an array of %s",
                       f->mf.path, key, kv->off, type_names[elem], type_names[kv->arr.type]);
    *out = kv->arr;
    return CLLM_OK;
}

gguf_str gguf_arr_str(const gguf_arr *a, size_t i) {
    if (a->type != GGUF_TYPE_STRING || i >= a->n) return (gguf_str){"", 0};
    const uint8_t *p = a->data + a->str_at[i];
    uint64_t len;
    memcpy(&len, p, 8);
    return (gguf_str){(const char *)p + 8, (size_t)len};
}

int64_t gguf_arr_int(const gguf_arr *a, size_t i) {
    int64_t v;
    uint64_t uv;
    if (i >= a->n || !read_int(a->type, a->data + i * type_size[a->type], &v, &uv)) return 0;
    return v;
}

double gguf_arr_float(const gguf_arr *a, size_t i) {
    if (i >= a->n) return 0;
    if (a->type == GGUF_TYPE_FLOAT32) {
        float v;
        memcpy(&v, a->data + i * 4, 4);
        return v;
    }
    if (a->type == GGUF_TYPE_FLOAT64) {
        double v;
        memcpy(&v, a->data + i * 8, 8);
        return v;
    }
    return 0;
}

void gguf_mapped_range(const gguf_file *f, const uint8_t **data, size_t *size) {
    *data = f->mf.data;
    *size = f->mf.size;
}
