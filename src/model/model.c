/* model.c - loading a model folder (config, weights, tokenizer) and the public model API. */
#include "model/model.h"

#include "base/clock.h"
#include "base/error.h"
#include "io/gguf.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cllm_model_params cllm_model_default_params(void) {
    cllm_model_params p = {.n_threads = 0, .require_tokenizer = 0, .skip_tokenizer = 0};
    return p;
}

void cllm_free(void *p) {
    free(p);
}

/* RoPE inverse frequencies theta^(-2i/d), with Llama-3 or linear scaling applied. */
static cllm_status rope_init(cllm_model *m) {
    const model_config *c = &m->cfg;
    int h = c->head_dim / 2;
    m->inv_freq = malloc(sizeof(double) * (size_t)h);
    if (!m->inv_freq) return err_set(CLLM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < h; i++) {
        double f = 1.0 / pow(c->rope_theta, (2.0 * i) / c->head_dim);
        if (c->rope_scaling == ROPE_SCALING_LINEAR) {
            f /= c->rope_factor;
        } else if (c->rope_scaling == ROPE_SCALING_LLAMA3) {
            double lo_wl = c->rope_orig_ctx / c->rope_low_freq;
            double hi_wl = c->rope_orig_ctx / c->rope_high_freq;
            double wl = 2.0 * M_PI / f;
            if (wl > lo_wl) {
                f /= c->rope_factor;
            } else if (wl >= hi_wl) {
                double s = (c->rope_orig_ctx / wl - c->rope_low_freq) /
                           (c->rope_high_freq - c->rope_low_freq);
                f = (1.0 - s) * f / c->rope_factor + s * f;
            }
        }
        m->inv_freq[i] = f;
    }
    return CLLM_OK;
}

/* A GGUF file without tokenizer.ggml.model, or with llama.cpp's "no_vocab", has no tokenizer. */
static bool gguf_has_vocab(const cllm_model *m) {
    gguf_str s;
    if (gguf_find(m->gguf, "tokenizer.ggml.model") < 0) return false;
    if (gguf_get_str(m->gguf, "tokenizer.ggml.model", &s)) return true; /* let the loader say */
    return !(s.len == 8 && !memcmp(s.p, "no_vocab", 8)) && !(s.len == 4 && !memcmp(s.p, "none", 4));
}

cllm_status cllm_model_load(const char *path, const cllm_model_params *p, cllm_model **out) {
    *out = NULL;
    double t0 = clock_now();
    cllm_model_params dp = cllm_model_default_params();
    if (!p) p = &dp;
    cllm_model *m = calloc(1, sizeof *m);
    if (!m) return err_set(CLLM_ERR_NOMEM, "out of memory");
    cllm_status st;
    dtype qt = DTYPE_F32;
    if (p->quant && !model_quant_type(p->quant, &qt)) {
        st = err_set(CLLM_ERR_INVALID_ARG, "unknown quantization type '%s'", p->quant);
        goto fail;
    }
    bool gguf = gguf_is_file(path);
    if (gguf) {
        if ((st = gguf_open(path, &m->gguf)) || (st = model_config_load_gguf(m->gguf, &m->cfg)) ||
            (st = model_weights_bind_gguf(&m->cfg, m->gguf, &m->w)) || (st = rope_init(m)) ||
            (st = model_gguf_rope_factors(m->gguf, m->cfg.head_dim / 2, m->inv_freq)))
            goto fail;
    } else if ((st = model_config_load(path, &m->cfg)) || (st = st_open_dir(path, &m->st)) ||
               (st = model_weights_bind(&m->cfg, &m->st, &m->w)) || (st = rope_init(m))) {
        goto fail;
    }
    if (p->quant && (st = model_weights_quantize(&m->w, m->cfg.n_layers, qt))) goto fail;
    st = p->skip_tokenizer            ? CLLM_ERR_NOT_FOUND
         : gguf && !gguf_has_vocab(m) ? err_set(CLLM_ERR_NOT_FOUND, "%s: no vocabulary", path)
         : gguf                       ? tok_load_gguf(path, &m->tok)
                                      : tok_load_dir(path, &m->tok);
    /* parsing tokenizer.json frees tens of MiB of JSON nodes: give them back to the OS so they
     * don't count on top of the weights in the resident set */
    malloc_trim(0);
    if (st == CLLM_ERR_NOT_FOUND && (!p->require_tokenizer || p->skip_tokenizer)) {
        m->tok = NULL;
    } else if (st) {
        goto fail;
    } else if (tok_vocab_size(m->tok) > m->cfg.vocab) {
        st = err_set(CLLM_ERR_FORMAT, "%s: tokenizer has %d ids but the model's vocab_size is %d",
                     path, tok_vocab_size(m->tok), m->cfg.vocab);
        goto fail;
    }
    if ((st = model_text_init(&m->text, m->tok, path, m->cfg.eos_ids, m->cfg.n_eos)) ||
        (st = tp_create(p->n_threads, &m->tp)) || (st = model_tune_kernels(m)))
        goto fail;
    m->load_seconds = clock_now() - t0;
    *out = m;
    return CLLM_OK;
fail:
    cllm_model_free(m);
    return st;
}

void cllm_model_free(cllm_model *m) {
    if (!m) return;
    model_release_kernels(m);
    tp_free(m->tp);
    model_text_destroy(&m->text);
    tok_free(m->tok);
    model_weights_free(&m->w);
    st_close(&m->st);
    gguf_close(m->gguf);
    free(m->inv_freq);
    free(m);
}

void cllm_model_get_info(const cllm_model *m, cllm_model_info *o) {
    const model_config *c = &m->cfg;
    memset(o, 0, sizeof *o);
    snprintf(o->arch, sizeof o->arch, "%s", c->arch_name);
    o->n_layers = c->n_layers;
    o->n_heads = c->n_heads;
    o->n_kv_heads = c->n_kv_heads;
    o->head_dim = c->head_dim;
    o->hidden = c->hidden;
    o->intermediate = c->intermediate;
    o->vocab_size = c->vocab;
    o->max_ctx = c->max_ctx;
    snprintf(o->weight_dtypes, sizeof o->weight_dtypes, "%s", m->w.dtypes);
    o->n_params = m->w.n_params;
    o->weight_bytes = m->w.n_bytes;
    o->kv_bytes_per_token_f32 =
        (int64_t)kv_bytes_per_token(c->n_layers, c->n_kv_heads, c->head_dim, DTYPE_F32);
    o->tied_embeddings = m->w.lm_head.data == m->w.tok_embd.data;
    o->has_tokenizer = m->tok != NULL;
    o->rope_theta = c->rope_theta;
    o->load_seconds = m->load_seconds;
}

cllm_status cllm_tokenize(const cllm_model *m, const char *text, size_t len, int add_special,
                          int parse_special, int32_t **ids, size_t *n) {
    if (!m->tok) return err_set(CLLM_ERR_NOT_FOUND, "this model folder has no tokenizer");
    return tok_encode(m->tok, text, len, add_special, parse_special, ids, n);
}

cllm_status cllm_detokenize(const cllm_model *m, const int32_t *ids, size_t n, int skip_special,
                            char **text, size_t *len) {
    if (!m->tok) return err_set(CLLM_ERR_NOT_FOUND, "this model folder has no tokenizer");
    return tok_decode(m->tok, ids, n, skip_special, text, len);
}

dtype model_kv_dtype(const cllm_model *m, cllm_kv_type asked) {
    switch (asked) {
    case CLLM_KV_F32:
        return DTYPE_F32;
    case CLLM_KV_F16:
        return DTYPE_F16;
    case CLLM_KV_BF16:
        return DTYPE_BF16;
    default: /* quantized models keep f16 K/V, as llama.cpp does */
        return dtype_is_quant(m->w.tok_embd.dt) ? DTYPE_F16 : m->w.tok_embd.dt;
    }
}
