/* gguf.h - read the header and metadata key/values of GGUF v2/v3 files (llama.cpp's format).
 * The file is mmap'd and untrusted: every length and count is checked at open. */
#ifndef CLLM_IO_GGUF_H
#define CLLM_IO_GGUF_H

#include "base/dtype.h"
#include "cllm.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum gguf_type {
    GGUF_TYPE_UINT8 = 0,
    GGUF_TYPE_INT8 = 1,
    GGUF_TYPE_UINT16 = 2,
    GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4,
    GGUF_TYPE_INT32 = 5,
    GGUF_TYPE_FLOAT32 = 6,
    GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8,
    GGUF_TYPE_ARRAY = 9,
    GGUF_TYPE_UINT64 = 10,
    GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_COUNT
} gguf_type;

typedef struct gguf_file gguf_file;

/* A view into the mapped file (not NUL-terminated). */
typedef struct gguf_str {
    const char *p;
    size_t len;
} gguf_str;

/* An array value: elements of one type; read them with the gguf_arr_* accessors. */
typedef struct gguf_arr {
    gguf_type type;
    size_t n;
    const uint8_t *data;    /* first element */
    const uint64_t *str_at; /* string arrays: offset of each element from data */
} gguf_arr;

/* Whether a model path is read as a GGUF file rather than as a Hugging Face folder: it is a regular
 * file (whatever it holds: one without the GGUF magic then gets gguf_open's "not a GGUF file"
 * error), or it does not exist and its name ends in ".gguf" (so the error is gguf_open's "cannot
 * open"). A directory, even one named *.gguf, is a folder. The one test every loader uses. */
bool gguf_is_file(const char *path);

cllm_status gguf_open(const char *path, gguf_file **out);
void gguf_close(gguf_file *f);

const char *gguf_path(const gguf_file *f);
uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_n_tensors(const gguf_file *f);
size_t gguf_n_kv(const gguf_file *f);
/* Key and value type of entry i (i < gguf_n_kv). */
gguf_str gguf_key_at(const gguf_file *f, size_t i);
gguf_type gguf_type_at(const gguf_file *f, size_t i);
const char *gguf_type_name(gguf_type t);

/* Index of a key, or -1 when absent. */
long gguf_find(const gguf_file *f, const char *key);

/* Typed lookups: CLLM_ERR_NOT_FOUND when the key is absent (with a message), CLLM_ERR_FORMAT
 * when its value has another type or does not fit. Integer getters accept any integer type
 * whose value is in range. */
cllm_status gguf_get_str(const gguf_file *f, const char *key, gguf_str *out);
cllm_status gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
cllm_status gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
cllm_status gguf_get_f32(const gguf_file *f, const char *key, float *out);
cllm_status gguf_get_bool(const gguf_file *f, const char *key, bool *out);
/* elem: the required element type, or GGUF_TYPE_COUNT for any. */
cllm_status gguf_get_arr(const gguf_file *f, const char *key, gguf_type elem, gguf_arr *out);

/* Element i of an array (i < a->n; the element type must match, else 0 / empty). */
gguf_str gguf_arr_str(const gguf_arr *a, size_t i);
int64_t gguf_arr_int(const gguf_arr *a, size_t i);  /* any integer or bool type */
double gguf_arr_float(const gguf_arr *a, size_t i); /* float32/float64 */

/* ---- tensors ---- */

#define GGUF_MAX_DIMS 4
#define GGUF_GGML_TYPE_COUNT 36 /* ggml type ids 0..35 (some removed) */

/* One tensor info; data points into the mapped file (checked to lie inside it). ne[0] is the
 * row length (ggml order: innermost dimension first), unused dimensions are 1. */
typedef struct gguf_tensor {
    char name[64]; /* ggml's limit: names shorter than 64 bytes */
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS];
    uint32_t type; /* ggml type id */
    uint64_t offset;
    uint64_t nbytes;
    const uint8_t *data;
} gguf_tensor;

/* Tensor i < gguf_n_tensors(f), or by name (NULL when absent). */
const gguf_tensor *gguf_tensor_at(const gguf_file *f, size_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
uint32_t gguf_alignment(const gguf_file *f);
/* File offset of the data section. */
size_t gguf_data_offset(const gguf_file *f);
/* The whole mapped file (tensor data are views into it). */
void gguf_mapped_range(const gguf_file *f, const uint8_t **data, size_t *size);
/* The raw bytes of key/value entry i (key, type, value) as stored, for copying into a new file. */
void gguf_kv_raw(const gguf_file *f, size_t i, const uint8_t **p, size_t *len);

/* ggml type ids: name ("Q4_K"; "unknown"), block elements and bytes (false for unknown ids),
 * and the mapping to cllm's dtype (false when cllm cannot compute with the type). */
const char *gguf_ggml_type_name(uint32_t t);
bool gguf_ggml_type_size(uint32_t t, int *blck, size_t *bytes);
bool gguf_type_to_dtype(uint32_t t, dtype *out);
uint32_t gguf_dtype_to_type(dtype d);

/* Parse n tensor infos at data[pos] (used by gguf_open). *out is malloc'd; *data_off is where
 * the aligned data section starts. */
cllm_status gguf_tensors_parse(const char *path, const uint8_t *data, size_t size, size_t pos,
                               uint64_t n, uint32_t align, gguf_tensor **out, size_t *data_off);

#endif
