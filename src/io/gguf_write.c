/* gguf_write.c - GGUF v3 writer: an in-memory metadata buffer, a tensor-info table, then the
 * data section streamed to the file with each tensor padded to the alignment. */
#include "io/gguf_write.h"

#include "base/error.h"
#include "base/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 32

typedef struct wtensor {
    uint64_t offset, nbytes;
} wtensor;

struct gguf_writer {
    strbuf kv, ti; /* metadata key/values and tensor infos, in file order */
    uint64_t n_kv, n_tensors, data_size;
    wtensor *tensors;
    char **keys;
    bool oom;
    FILE *fp;
    char *path, *tmp;          /* the file is written as path.part and renamed when complete */
    uint64_t cur, cur_written; /* tensor being written and its bytes so far */
};

/* Append to a metadata buffer; a failure is remembered in w->oom and reported by the next
 * call that returns a status. */
static void put(gguf_writer *w, strbuf *b, const void *p, size_t n) {
    if (!w->oom && sb_append(b, p, n) != CLLM_OK) w->oom = true;
}

static void put_u32(gguf_writer *w, strbuf *b, uint32_t v) {
    put(w, b, &v, 4);
}
static void put_u64(gguf_writer *w, strbuf *b, uint64_t v) {
    put(w, b, &v, 8);
}
static void put_str(gguf_writer *w, strbuf *b, const char *s, size_t len) {
    put_u64(w, b, len);
    put(w, b, s, len);
}

cllm_status gguf_writer_create(gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? CLLM_OK : err_set(CLLM_ERR_NOMEM, "out of memory");
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    if (w->fp) {
        fclose(w->fp);
        remove(w->tmp);
    }
    free(w->tmp);
    for (uint64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    sb_free(&w->kv);
    sb_free(&w->ti);
    free(w->tensors);
    free(w->path);
    free(w);
}

/* Record key k as written (for gguf_w_has_key and the header's count); false on out of memory. */
static bool remember_key(gguf_writer *w, const char *k) {
    char **nk = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *nk);
    char *dup = strdup(k);
    if (!nk || !dup) {
        free(dup);
        if (nk) w->keys = nk;
        w->oom = true;
        return false;
    }
    w->keys = nk;
    w->keys[w->n_kv++] = dup;
    return true;
}

static void key(gguf_writer *w, const char *k, gguf_type t) {
    if (!remember_key(w, k)) return;
    put_str(w, &w->kv, k, strlen(k));
    put_u32(w, &w->kv, (uint32_t)t);
}

bool gguf_w_has_key(const gguf_writer *w, const char *k) {
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->keys[i], k)) return true;
    return false;
}

void gguf_w_str(gguf_writer *w, const char *k, const char *s, size_t len) {
    key(w, k, GGUF_TYPE_STRING);
    put_str(w, &w->kv, s, len);
}
void gguf_w_u32(gguf_writer *w, const char *k, uint32_t v) {
    key(w, k, GGUF_TYPE_UINT32);
    put_u32(w, &w->kv, v);
}
void gguf_w_i32(gguf_writer *w, const char *k, int32_t v) {
    key(w, k, GGUF_TYPE_INT32);
    put(w, &w->kv, &v, 4);
}
void gguf_w_f32(gguf_writer *w, const char *k, float v) {
    key(w, k, GGUF_TYPE_FLOAT32);
    put(w, &w->kv, &v, 4);
}
void gguf_w_bool(gguf_writer *w, const char *k, bool v) {
    key(w, k, GGUF_TYPE_BOOL);
    uint8_t b = v;
    put(w, &w->kv, &b, 1);
}
void gguf_w_arr_begin(gguf_writer *w, const char *k, gguf_type elem, uint64_t n) {
    key(w, k, GGUF_TYPE_ARRAY);
    put_u32(w, &w->kv, (uint32_t)elem);
    put_u64(w, &w->kv, n);
}
void gguf_w_arr_str(gguf_writer *w, const char *s, size_t len) {
    put_str(w, &w->kv, s, len);
}
void gguf_w_arr_i32(gguf_writer *w, int32_t v) {
    put(w, &w->kv, &v, 4);
}
void gguf_w_arr_f32(gguf_writer *w, float v) {
    put(w, &w->kv, &v, 4);
}

void gguf_w_raw_kv(gguf_writer *w, const uint8_t *p, size_t len) {
    uint64_t klen;
    memcpy(&klen, p, 8); /* the source file checked the entry */
    char k[256];
    snprintf(k, sizeof k, "%.*s", (int)(klen < 255 ? klen : 255), (const char *)p + 8);
    if (!remember_key(w, k)) return;
    put(w, &w->kv, p, len);
}

cllm_status gguf_w_tensor(gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                          uint32_t type, uint64_t *nbytes) {
    int blck;
    size_t bs;
    if (!gguf_ggml_type_size(type, &blck, &bs) || n_dims < 1 || n_dims > GGUF_MAX_DIMS ||
        strlen(name) >= 64 || ne[0] % blck)
        return err_set(CLLM_ERR_INVALID_ARG, "gguf writer: bad tensor '%s' (type %s)", name,
                       gguf_ggml_type_name(type));
    uint64_t n = (uint64_t)(ne[0] / blck) * bs;
    for (int d = 1; d < n_dims; d++)
        n *= (uint64_t)ne[d];
    wtensor *nt = realloc(w->tensors, (size_t)(w->n_tensors + 1) * sizeof *nt);
    if (!nt) return err_set(CLLM_ERR_NOMEM, "out of memory");
    w->tensors = nt;
    nt[w->n_tensors++] = (wtensor){w->data_size, n};
    put_str(w, &w->ti, name, strlen(name));
    put_u32(w, &w->ti, (uint32_t)n_dims);
    for (int d = 0; d < n_dims; d++)
        put_u64(w, &w->ti, (uint64_t)ne[d]);
    put_u32(w, &w->ti, type);
    put_u64(w, &w->ti, w->data_size);
    w->data_size += (n + ALIGN - 1) / ALIGN * ALIGN;
    if (nbytes) *nbytes = n;
    return w->oom ? err_set(CLLM_ERR_NOMEM, "out of memory") : CLLM_OK;
}

static cllm_status io_fail(gguf_writer *w) {
    return err_set(CLLM_ERR_IO, "%s: write failed", w->path);
}

static cllm_status pad(gguf_writer *w, uint64_t n) {
    static const uint8_t zero[ALIGN];
    uint64_t r = n % ALIGN ? ALIGN - n % ALIGN : 0;
    return r && fwrite(zero, 1, r, w->fp) != r ? io_fail(w) : CLLM_OK;
}

cllm_status gguf_writer_begin(gguf_writer *w, const char *path) {
    if (w->oom) return err_set(CLLM_ERR_NOMEM, "out of memory building GGUF metadata");
    w->path = strdup(path);
    w->tmp = malloc(strlen(path) + 6);
    if (!w->path || !w->tmp) return err_set(CLLM_ERR_NOMEM, "out of memory");
    strcat(strcpy(w->tmp, path), ".part");
    w->fp = fopen(w->tmp, "wb");
    if (!w->fp) return err_set(CLLM_ERR_IO, "%s: cannot create", w->tmp);
    uint32_t hdr[2] = {0x46554747u /* "GGUF" */, 3};
    uint64_t counts[2] = {w->n_tensors, w->n_kv};
    if (fwrite(hdr, 4, 2, w->fp) != 2 || fwrite(counts, 8, 2, w->fp) != 2 ||
        fwrite(w->kv.p, 1, w->kv.len, w->fp) != w->kv.len ||
        fwrite(w->ti.p, 1, w->ti.len, w->fp) != w->ti.len)
        return io_fail(w);
    w->cur = 0;
    w->cur_written = 0;
    return pad(w, 24 + w->kv.len + w->ti.len);
}

cllm_status gguf_writer_data(gguf_writer *w, const void *p, size_t n) {
    const uint8_t *b = p;
    while (n) {
        if (w->cur >= w->n_tensors)
            return err_set(CLLM_ERR_INTERNAL, "%s: more tensor data than declared", w->path);
        uint64_t left = w->tensors[w->cur].nbytes - w->cur_written, k = n < left ? n : left;
        if (k && fwrite(b, 1, k, w->fp) != k) return io_fail(w);
        b += k;
        n -= k;
        w->cur_written += k;
        if (w->cur_written == w->tensors[w->cur].nbytes) {
            cllm_status st = pad(w, w->cur_written);
            if (st) return st;
            w->cur++;
            w->cur_written = 0;
        }
    }
    return CLLM_OK;
}

cllm_status gguf_writer_finish(gguf_writer *w) {
    /* empty tensors at the end have nothing to write */
    while (w->cur < w->n_tensors && w->tensors[w->cur].nbytes == 0)
        w->cur++;
    if (w->cur != w->n_tensors)
        return err_set(CLLM_ERR_INTERNAL, "%s: tensor %llu of %llu not written", w->path,
                       (unsigned long long)w->cur, (unsigned long long)w->n_tensors);
    int rc = fclose(w->fp);
    w->fp = NULL;
    if (rc || rename(w->tmp, w->path)) {
        remove(w->tmp);
        return io_fail(w);
    }
    return CLLM_OK;
}
