/* gguf_write.h - write a GGUF v3 file: metadata key/values and tensor infos are collected first,
 * then the header is written and tensor data streamed in the order the tensors were added, each
 * padded to the alignment (32). */
#ifndef CLLM_IO_GGUF_WRITE_H
#define CLLM_IO_GGUF_WRITE_H

#include "io/gguf.h"

typedef struct gguf_writer gguf_writer;

cllm_status gguf_writer_create(gguf_writer **out);
void gguf_writer_free(gguf_writer *w);

/* Metadata. Out-of-memory is remembered and reported by gguf_writer_begin. */
void gguf_w_str(gguf_writer *w, const char *key, const char *s, size_t len);
void gguf_w_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_w_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_w_f32(gguf_writer *w, const char *key, float v);
void gguf_w_bool(gguf_writer *w, const char *key, bool v);
/* Arrays: begin with the element type and count, then exactly n items. */
void gguf_w_arr_begin(gguf_writer *w, const char *key, gguf_type elem, uint64_t n);
void gguf_w_arr_str(gguf_writer *w, const char *s, size_t len);
void gguf_w_arr_i32(gguf_writer *w, int32_t v);
void gguf_w_arr_f32(gguf_writer *w, float v);
/* A whole key/value entry copied from another file (gguf_kv_raw). */
void gguf_w_raw_kv(gguf_writer *w, const uint8_t *p, size_t len);
bool gguf_w_has_key(const gguf_writer *w, const char *key);

/* A tensor of ggml type `type` with ne[0..n_dims) (ne[0] = row length); its byte size is
 * returned in *nbytes. */
cllm_status gguf_w_tensor(gguf_writer *w, const char *name, int n_dims, const int64_t *ne,
                          uint32_t type, uint64_t *nbytes);

/* Create the file (as PATH.part, renamed to PATH by gguf_writer_finish, so a source file being
 * read is never truncated and a failed run leaves no partial PATH) and write header, metadata
 * and tensor infos. */
cllm_status gguf_writer_begin(gguf_writer *w, const char *path);
/* Tensor data, in order; each tensor's bytes may come in several calls. */
cllm_status gguf_writer_data(gguf_writer *w, const void *p, size_t n);
/* Check every tensor got exactly its bytes, close and rename the file. On any failure (or
 * gguf_writer_free before finishing) the partial file is removed. */
cllm_status gguf_writer_finish(gguf_writer *w);

#endif
