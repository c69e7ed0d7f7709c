/* config_gguf.c - architecture hyper-parameters from a GGUF file's metadata (llama.cpp's
 * {arch}.* keys), with the same range checks as config.json. Architectures: llama (also
 * Mistral, SmolLM, TinyLlama), qwen2, gpt2. */
#include "base/error.h"
#include "io/gguf.h"
#include "model/config.h"

#include <stdio.h>
#include <string.h>

typedef struct keys {
    const gguf_file *f;
    const char *arch;
} keys;

/* {arch}.name as an integer in [lo, hi]; absent: *out unchanged unless required. */
static cllm_status get_int(const keys *k, const char *name, int required, int lo, int hi,
                           int *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", k->arch, name);
    if (gguf_find(k->f, key) < 0) {
        if (!required) return CLLM_OK;
        return err_set(CLLM_ERR_FORMAT, "%s: missing key '%s'", gguf_path(k->f), key);
    }
    int32_t v;
    uint32_t u;
    cllm_status st = gguf_get_i32(k->f, key, &v);
    if (st && (st = gguf_get_u32(k->f, key, &u)) == CLLM_OK) v = u > INT32_MAX ? INT32_MAX : (int)u;
    if (st) return st;
    if (v < lo || v > hi)
        return err_set(CLLM_ERR_FORMAT, "%s: '%s' = %d out of range [%d, %d]", gguf_path(k->f), key,
                       v, lo, hi);
    *out = v;
    return CLLM_OK;
}

static cllm_status get_num(const keys *k, const char *name, double lo, double hi, double *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", k->arch, name);
    if (gguf_find(k->f, key) < 0) return CLLM_OK;
    float v;
    cllm_status st = gguf_get_f32(k->f, key, &v);
    if (st) return st;
    if (!(v >= lo && v <= hi))
        return err_set(CLLM_ERR_FORMAT, "%s: '%s' = %g out of range [%g, %g]", gguf_path(k->f), key,
                       v, lo, hi);
    *out = v;
    return CLLM_OK;
}

static cllm_status read_rope_scaling(const keys *k, model_config *c) {
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", k->arch);
    gguf_str t = {"none", 4};
    cllm_status st;
    if (gguf_find(k->f, key) >= 0 && (st = gguf_get_str(k->f, key, &t))) return st;
    double factor = 1.0;
    if ((st = get_num(k, "rope.scaling.factor", 1e-6, 1e6, &factor))) return st;
    if (t.len == 6 && !memcmp(t.p, "linear", 6)) {
        if (factor != 1.0) c->rope_scaling = ROPE_SCALING_LINEAR;
        c->rope_factor = factor;
    } else if (!(t.len == 4 && !memcmp(t.p, "none", 4))) {
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: rope scaling type '%.*s' not supported",
                       gguf_path(k->f), (int)(t.len > 64 ? 64 : t.len), t.p);
    }
    return CLLM_OK;
}

/* A token id key: absent or "none" (0xFFFFFFFF / negative) -> *ok false; present and outside the
 * vocabulary -> an error, as config.json's ids are. */
static cllm_status id_key(const gguf_file *f, const char *key, int vocab, uint32_t *v, bool *ok) {
    int32_t sv;
    *ok = false;
    if (gguf_find(f, key) < 0) return CLLM_OK;
    if (gguf_get_i32(f, key, &sv) == CLLM_OK && sv < 0) return CLLM_OK;
    cllm_status st = gguf_get_u32(f, key, v);
    if (st != CLLM_OK || *v == UINT32_MAX) return st;
    if (*v >= (uint32_t)vocab)
        return err_set(CLLM_ERR_FORMAT, "%s: %s = %u is not a token id (vocabulary of %d)",
                       gguf_path(f), key, *v, vocab);
    *ok = true;
    return CLLM_OK;
}

/* EOS ids: tokenizer.ggml.eos_token_id plus the end-of-turn id when there is one. */
static cllm_status special_ids(const gguf_file *f, model_config *c) {
    static const char *const eos_keys[] = {"tokenizer.ggml.eos_token_id",
                                           "tokenizer.ggml.eot_token_id",
                                           "tokenizer.ggml.eom_token_id"};
    uint32_t v;
    bool ok;
    cllm_status st = id_key(f, "tokenizer.ggml.bos_token_id", c->vocab, &v, &ok);
    if (st != CLLM_OK) return st;
    if (ok) c->bos_id = (int)v;
    for (int i = 0; i < 3; i++) {
        if ((st = id_key(f, eos_keys[i], c->vocab, &v, &ok)) != CLLM_OK) return st;
        if (!ok) continue;
        bool dup = false;
        for (int j = 0; j < c->n_eos; j++)
            dup |= c->eos_ids[j] == (int)v;
        if (!dup && c->n_eos < MODEL_MAX_EOS) c->eos_ids[c->n_eos++] = (int)v;
    }
    return CLLM_OK;
}

cllm_status model_config_load_gguf(const gguf_file *f, model_config *c) {
    memset(c, 0, sizeof *c);
    c->bos_id = -1;
    const char *path = gguf_path(f);
    gguf_str a;
    cllm_status st = gguf_get_str(f, "general.architecture", &a);
    if (st) return st;
    snprintf(c->arch_name, sizeof c->arch_name, "%.*s", (int)(a.len > 60 ? 60 : a.len), a.p);
    if (!strcmp(c->arch_name, "llama")) {
        c->arch = ARCH_LLAMA;
        c->rope_adjacent = true; /* llama.cpp's converter permuted q/k rows for this arch */
    } else if (!strcmp(c->arch_name, "qwen2")) {
        c->arch = ARCH_QWEN2;
    } else if (!strcmp(c->arch_name, "gpt2")) {
        c->arch = ARCH_GPT2;
    } else {
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "%s: GGUF architecture '%s' not supported (llama, qwen2, gpt2)", path,
                       c->arch_name);
    }
    keys k = {f, c->arch_name};
    const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
    if (!emb || emb->n_dims != 2 || emb->ne[1] < 1 || emb->ne[1] > (1 << 24))
        return err_set(CLLM_ERR_FORMAT, "%s: missing or malformed tensor 'token_embd.weight'",
                       path);
    c->vocab = (int)emb->ne[1];
    c->max_ctx = 2048;
    double eps = c->arch == ARCH_GPT2 ? 1e-5 : 1e-6, theta = 10000.0;
    int rope_dims = 0;
    if ((st = get_int(&k, "block_count", 1, 1, 1024, &c->n_layers)) ||
        (st = get_int(&k, "embedding_length", 1, 1, 1 << 16, &c->hidden)) ||
        (st = get_int(&k, "feed_forward_length", 1, 1, 1 << 20, &c->intermediate)) ||
        (st = get_int(&k, "attention.head_count", 1, 1, 1024, &c->n_heads)) ||
        (st = get_int(&k, "context_length", 0, 1, 1 << 24, &c->max_ctx)) ||
        (st = get_num(&k, "rope.freq_base", 1, 1e12, &theta)) ||
        (st = get_num(&k,
                      c->arch == ARCH_GPT2 ? "attention.layer_norm_epsilon"
                                           : "attention.layer_norm_rms_epsilon",
                      0, 1, &eps)))
        return st;
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->hidden / c->n_heads;
    if ((st = get_int(&k, "attention.head_count_kv", 0, 1, 1024, &c->n_kv_heads)) ||
        (st = get_int(&k, "attention.key_length", 0, 2, 1024, &c->head_dim)) ||
        (st = get_int(&k, "rope.dimension_count", 0, 0, 1024, &rope_dims)))
        return st;
    if (c->arch != ARCH_GPT2 && (st = read_rope_scaling(&k, c))) return st;
    c->norm_eps = (float)eps;
    c->rope_theta = theta;
    if (c->arch != ARCH_GPT2 && rope_dims && rope_dims != c->head_dim)
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "%s: partial RoPE (rope.dimension_count %d, head dim %d) not supported",
                       path, rope_dims, c->head_dim);
    if (c->arch == ARCH_GPT2 && c->hidden % c->n_heads)
        return err_set(CLLM_ERR_FORMAT, "%s: embedding_length %d not divisible by head_count %d",
                       path, c->hidden, c->n_heads);
    if (c->n_heads % c->n_kv_heads || c->n_heads / c->n_kv_heads > 64)
        return err_set(CLLM_ERR_FORMAT, "%s: head_count %d vs head_count_kv %d not supported", path,
                       c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return err_set(CLLM_ERR_FORMAT, "%s: head dim %d must be even", path, c->head_dim);
    c->tied = gguf_find_tensor(f, "output.weight") == NULL;
    if (c->arch == ARCH_GPT2) {
        c->qkv_bias = c->o_bias = c->mlp_bias = true;
    } else {
        c->qkv_bias = gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL;
        c->o_bias = gguf_find_tensor(f, "blk.0.attn_output.bias") != NULL;
        c->mlp_bias = gguf_find_tensor(f, "blk.0.ffn_up.bias") != NULL;
    }
    return special_ids(f, c);
}

cllm_status model_gguf_rope_factors(const gguf_file *f, int half, double *inv_freq) {
    const gguf_tensor *t = gguf_find_tensor(f, "rope_freqs.weight");
    if (!t) return CLLM_OK;
    if (t->type != 0 || t->ne[0] != half || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return err_set(CLLM_ERR_FORMAT, "%s: tensor 'rope_freqs.weight' must be F32 [%d]",
                       gguf_path(f), half);
    for (int i = 0; i < half; i++) {
        float v;
        memcpy(&v, t->data + 4 * (size_t)i, 4);
        if (!(v > 0))
            return err_set(CLLM_ERR_FORMAT, "%s: rope_freqs.weight[%d] = %g is not positive",
                           gguf_path(f), i, v);
        inv_freq[i] /= v;
    }
    return CLLM_OK;
}
