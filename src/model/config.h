/* config.h - architecture hyper-parameters read from a Hugging Face config.json. */
#ifndef CLLM_MODEL_CONFIG_H
#define CLLM_MODEL_CONFIG_H

#include "cllm.h"
#include <stdbool.h>

typedef enum model_arch { ARCH_LLAMA, ARCH_QWEN2, ARCH_MISTRAL, ARCH_GPT2 } model_arch;
typedef enum rope_scaling {
    ROPE_SCALING_NONE,
    ROPE_SCALING_LLAMA3,
    ROPE_SCALING_LINEAR
} rope_scaling;

#define MODEL_MAX_EOS 8

typedef struct model_config {
    model_arch arch;
    char arch_name[64];
    int hidden; /* d_model */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;
    int intermediate; /* MLP inner width */
    int vocab;
    int max_ctx; /* max_position_embeddings / n_positions */
    float norm_eps;
    double rope_theta;
    rope_scaling rope_scaling;
    double rope_factor, rope_low_freq, rope_high_freq;
    int rope_orig_ctx;
    int sliding_window; /* 0: none */
    bool tied;          /* lm_head shares the embedding matrix */
    bool qkv_bias;      /* q/k/v projections have biases (Qwen2; Llama attention_bias) */
    bool o_bias;        /* output projection bias (Llama attention_bias) */
    bool mlp_bias;
    bool rope_adjacent; /* q/k rows in llama.cpp's GGUF order: RoPE rotates adjacent pairs */
    int bos_id;         /* -1: none */
    int eos_ids[MODEL_MAX_EOS];
    int n_eos;
} model_config;

/* Parse dir/config.json (and dir/generation_config.json for EOS ids, when present). */
cllm_status model_config_load(const char *dir, model_config *out);

struct gguf_file;
/* From a GGUF file's general.architecture and {arch}.* keys (config_gguf.c). */
cllm_status model_config_load_gguf(const struct gguf_file *f, model_config *out);
/* Llama-3 RoPE scaling in GGUF form: divide inv_freq[half] by rope_freqs.weight when present. */
cllm_status model_gguf_rope_factors(const struct gguf_file *f, int half, double *inv_freq);

#endif
