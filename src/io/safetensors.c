/* safetensors.c - safetensors parsing: header length, JSON header, dtype/shape/offset checks. */
#include "io/safetensors.h"

#include "base/error.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER (100u << 20) /* the format's own limit is 100 MB */

static const struct {
    const char *name;
    st_dtype dt;
    int size;
} k_dtypes[] = {
    {"F32", ST_F32, 4},   {"F16", ST_F16, 2},         {"BF16", ST_BF16, 2},
    {"F64", ST_F64, 8},   {"I64", ST_I64, 8},         {"I32", ST_I32, 4},
    {"I16", ST_I16, 2},   {"I8", ST_I8, 1},           {"U8", ST_U8, 1},
    {"BOOL", ST_BOOL, 1}, {"F8_E4M3", ST_F8_E4M3, 1}, {"F8_E5M2", ST_F8_E5M2, 1},
};

const char *st_dtype_name(st_dtype t) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (k_dtypes[i].dt == t) return k_dtypes[i].name;
    return "?";
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const tensor *)a)->name, ((const tensor *)b)->name);
}

/* Parse one tensor entry of file f into *t. */
static cllm_status parse_entry(const mapfile *f, uint64_t data_start, const char *name, json_t *v,
                               tensor *t) {
    const char *path = f->path;
    if (!json_is_object(v))
        return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path,
                       name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) || json_array_size(jo) != 2)
        return err_set(
            CLLM_ERR_FORMAT,
            "%s: tensor '%s': needs string 'dtype', array 'shape', 2-element 'data_offsets'", path,
            name);
    int esize = 0;
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++)
        if (strcmp(json_string_value(jd), k_dtypes[i].name) == 0) {
            t->dt = k_dtypes[i].dt;
            esize = k_dtypes[i].size;
        }
    if (!esize)
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: tensor '%s': unknown dtype '%s'", path, name,
                       json_string_value(jd));
    size_t nd = json_array_size(js);
    if (nd > TENSOR_MAX_DIMS)
        return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s': %zu dimensions (max %d)", path, name, nd,
                       TENSOR_MAX_DIMS);
    t->ndim = (int)nd;
    uint64_t nelem = 1;
    for (size_t i = 0; i < nd; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return err_set(CLLM_ERR_FORMAT,
                           "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name,
                           i);
        uint64_t dim = (uint64_t)json_integer_value(d);
        if (dim != 0 && nelem > (uint64_t)INT64_MAX / 8 / dim)
            return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s': shape too large (overflow)", path,
                           name);
        nelem *= dim;
        t->shape[i] = (int64_t)dim;
    }
    t->nelem = (int64_t)nelem;
    json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
    if (!json_is_integer(jb) || !json_is_integer(je) || json_integer_value(jb) < 0 ||
        json_integer_value(je) < json_integer_value(jb))
        return err_set(CLLM_ERR_FORMAT,
                       "%s: tensor '%s': bad data_offsets (need 0 <= begin <= end)", path, name);
    uint64_t b = (uint64_t)json_integer_value(jb), e = (uint64_t)json_integer_value(je);
    uint64_t data_size = f->size - data_start;
    if (e > data_size)
        return err_set(CLLM_ERR_FORMAT,
                       "%s: tensor '%s': data_offsets end %llu past end of data (%llu bytes)", path,
                       name, (unsigned long long)e, (unsigned long long)data_size);
    if (e - b != nelem * (uint64_t)esize)
        return err_set(
            CLLM_ERR_FORMAT, "%s: tensor '%s': %llu bytes in file but shape x dtype needs %llu",
            path, name, (unsigned long long)(e - b), (unsigned long long)(nelem * (uint64_t)esize));
    t->data = f->data + data_start + b;
    t->nbytes = e - b;
    t->file = f->path;
    t->name = strdup(name);
    if (!t->name) return err_set(CLLM_ERR_NOMEM, "out of memory");
    return CLLM_OK;
}

static int cmp_data(const void *a, const void *b) {
    const tensor *x = *(const tensor *const *)a, *y = *(const tensor *const *)b;
    const char *px = x->data, *py = y->data;
    return px < py ? -1 : px > py;
}

/* No two tensors of one file may share bytes (empty tensors share none): sort by start. */
static cllm_status check_overlaps(const char *path, tensor *ts, int n) {
    if (n < 2) return CLLM_OK;
    const tensor **v = malloc((size_t)n * sizeof *v);
    if (!v) return err_set(CLLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++)
        v[i] = &ts[i];
    qsort(v, (size_t)n, sizeof *v, cmp_data);
    cllm_status st = CLLM_OK;
    const tensor *prev = NULL;
    for (int i = 0; i < n && st == CLLM_OK; i++) {
        if (!v[i]->nbytes) continue;
        if (prev && (const char *)prev->data + prev->nbytes > (const char *)v[i]->data)
            st = err_set(CLLM_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap (data_offsets)", path,
                         prev->name, v[i]->name);
        if (!prev ||
            (const char *)v[i]->data + v[i]->nbytes > (const char *)prev->data + prev->nbytes)
            prev = v[i];
    }
    free(v);
    return st;
}

/* Parse the header of the already-mapped file set->files[fi] and append its tensors. */
static cllm_status parse_file(st_set *s, int fi) {
    const mapfile *f = &s->files[fi];
    if (f->size < 8)
        return err_set(CLLM_ERR_FORMAT, "%s: file too short for a safetensors header (%zu bytes)",
                       f->path, f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | f->data[i];
    if (hlen > f->size - 8)
        return err_set(CLLM_ERR_FORMAT, "%s: header length %llu past end of file (size %zu)",
                       f->path, (unsigned long long)hlen, f->size);
    if (hlen > ST_MAX_HEADER)
        return err_set(CLLM_ERR_FORMAT, "%s: header length %llu over the 100 MB limit", f->path,
                       (unsigned long long)hlen);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->data + 8, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return err_set(CLLM_ERR_FORMAT, "%s: header is not valid JSON: %s (offset %d)", f->path,
                       jerr.text, jerr.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return err_set(CLLM_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    }
    size_t add = json_object_size(root);
    tensor *nt = realloc(s->tensors, (s->n_tensors + add + 1) * sizeof(tensor));
    if (!nt) {
        json_decref(root);
        return err_set(CLLM_ERR_NOMEM, "out of memory");
    }
    s->tensors = nt;
    int first = s->n_tensors;
    const char *key;
    json_t *val;
    cllm_status st = CLLM_OK;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        tensor *t = &s->tensors[s->n_tensors];
        memset(t, 0, sizeof *t);
        st = parse_entry(f, 8 + hlen, key, val, t);
        if (st) break;
        s->n_tensors++;
    }
    json_decref(root);
    if (st == CLLM_OK) st = check_overlaps(f->path, s->tensors + first, s->n_tensors - first);
    return st;
}

static cllm_status add_file(st_set *s, const char *path) {
    mapfile *nf = realloc(s->files, (size_t)(s->n_files + 1) * sizeof(mapfile));
    if (!nf) return err_set(CLLM_ERR_NOMEM, "out of memory");
    s->files = nf;
    cllm_status st = mapfile_open(path, &s->files[s->n_files]);
    if (st) return st;
    s->n_files++;
    return parse_file(s, s->n_files - 1);
}

static cllm_status finish(st_set *s) {
    qsort(s->tensors, (size_t)s->n_tensors, sizeof(tensor), cmp_tensor);
    for (int i = 1; i < s->n_tensors; i++)
        if (strcmp(s->tensors[i - 1].name, s->tensors[i].name) == 0)
            return err_set(CLLM_ERR_FORMAT, "%s: tensor '%s' appears twice (also in %s)",
                           s->tensors[i].file, s->tensors[i].name, s->tensors[i - 1].file);
    return CLLM_OK;
}

cllm_status st_open_file(const char *path, st_set *out) {
    memset(out, 0, sizeof *out);
    cllm_status st = add_file(out, path);
    if (!st) st = finish(out);
    if (st) st_close(out);
    return st;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static cllm_status open_index(const char *dir, const char *index_path, st_set *out) {
    json_error_t jerr;
    json_t *root = json_load_file(index_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return err_set(CLLM_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", index_path, jerr.text,
                       jerr.line);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        json_decref(root);
        return err_set(CLLM_ERR_FORMAT, "%s: missing object 'weight_map'", index_path);
    }
    /* unique shard names, in sorted order */
    size_t n = json_object_size(wm), nu = 0;
    const char **names = calloc(n + 1, sizeof(char *));
    if (!names) {
        json_decref(root);
        return err_set(CLLM_ERR_NOMEM, "out of memory");
    }
    const char *key;
    json_t *val;
    cllm_status st = CLLM_OK;
    json_object_foreach(wm, key, val) {
        const char *fn = json_string_value(val);
        if (!fn || !*fn || strchr(fn, '/') || strcmp(fn, "..") == 0) {
            st = err_set(CLLM_ERR_FORMAT, "%s: tensor '%s': shard name must be a plain file name",
                         index_path, key);
            break;
        }
        names[nu++] = fn;
    }
    if (!st) {
        qsort(names, nu, sizeof(char *), cmp_str);
        for (size_t i = 0; i < nu && !st; i++) {
            if (i > 0 && strcmp(names[i], names[i - 1]) == 0) continue;
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            st = add_file(out, path);
        }
    }
    if (!st) st = finish(out);
    /* every tensor the index names must be in the shard it names */
    if (!st) {
        json_object_foreach(wm, key, val) {
            const tensor *t = st_find(out, key);
            const char *fn = json_string_value(val);
            size_t lf = strlen(t ? t->file : ""), ln = strlen(fn);
            if (!t || lf < ln || strcmp(t->file + lf - ln, fn) != 0) {
                st = err_set(CLLM_ERR_FORMAT, "%s: tensor '%s' listed in %s is not in that shard",
                             index_path, key, fn);
                break;
            }
        }
    }
    free(names);
    json_decref(root);
    return st;
}

cllm_status st_open_dir(const char *dir, st_set *out) {
    memset(out, 0, sizeof *out);
    char path[4096];
    cllm_status st;
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    if (file_exists(path)) {
        st = open_index(dir, path, out);
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        if (!file_exists(path))
            return err_set(CLLM_ERR_NOT_FOUND,
                           "%s: no model.safetensors or model.safetensors.index.json", dir);
        st = add_file(out, path);
        if (!st) st = finish(out);
    }
    if (st) st_close(out);
    return st;
}

void st_close(st_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_tensors; i++)
        free(s->tensors[i].name);
    free(s->tensors);
    for (int i = 0; i < s->n_files; i++)
        mapfile_close(&s->files[i]);
    free(s->files);
    memset(s, 0, sizeof *s);
}

const tensor *st_find(const st_set *s, const char *name) {
    tensor key;
    key.name = (char *)name;
    return bsearch(&key, s->tensors, (size_t)s->n_tensors, sizeof(tensor), cmp_tensor);
}
