/* gguf_export.h - a model (Hugging Face folder or GGUF file) seen as the tensors and metadata of
 * the GGUF file llama.cpp's converter would write for it: llama.cpp tensor names, GPT-2 Conv1D
 * matrices transposed, llama-arch q/k rows permuted for llama.cpp's RoPE. Used by
 * `cllm quantize`; rows are produced one at a time as f32. */
#ifndef CLLM_MODEL_GGUF_EXPORT_H
#define CLLM_MODEL_GGUF_EXPORT_H

#include "io/gguf_write.h"
#include "io/safetensors.h"
#include "model/config.h"

typedef struct gx_tensor {
    char name[64];
    int n_dims;
    int64_t ne[4];     /* ne[0] = row length */
    const void *src;   /* source bytes */
    uint32_t src_type; /* ggml type of the source */
    int transpose;     /* source stored [ne0][ne1] (GPT-2 Conv1D) */
    int perm_heads;    /* > 0: rows reordered per head for llama.cpp's adjacent-pair RoPE */
    int layer;         /* blk index, -1 for the others */
    uint32_t type;     /* output ggml type, chosen by the caller */
} gx_tensor;

typedef struct gx_model {
    const char *path;
    const char *arch; /* "llama", "qwen2", "gpt2" */
    bool from_gguf;
    model_config cfg;
    st_set st;
    struct gguf_file *gg;
    gx_tensor *t;
    int n;
    float *rope_freqs; /* Llama-3 scaling factors written as rope_freqs.weight */
} gx_model;

cllm_status gx_open(const char *path, gx_model *m);
void gx_close(gx_model *m);
/* Rows of a tensor (ne[1] * ne[2] * ne[3]). */
int64_t gx_rows(const gx_tensor *t);
/* True if the source bytes can be copied as they are (same type, no reordering). */
bool gx_copyable(const gx_tensor *t);
/* Row r as f32 (ne[0] floats). */
void gx_row(const gx_tensor *t, int64_t r, float *out);
/* general.*, {arch}.* and tokenizer.* keys (for a GGUF source: its own keys, copied).
 * file_type: llama.cpp's LLAMA_FTYPE value. */
cllm_status gx_write_metadata(const gx_model *m, gguf_writer *w, uint32_t file_type,
                              bool quantized);
/* tokenizer.ggml.* and tokenizer.chat_template from a Hugging Face folder (gguf_export_vocab.c).
 * CLLM_ERR_NOT_FOUND when the folder has no tokenizer.json. */
cllm_status gx_write_vocab_hf(const char *dir, const model_config *c, gguf_writer *w);

#endif
