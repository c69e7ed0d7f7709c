/* config.c - config.json / generation_config.json parsing with range checks on every field. */
#include "model/config.h"

#include "base/error.h"
#include "base/mapfile.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* Integer field `key` (or the first present of alternative keys) into *out. */
static cllm_status get_int(const char *path, json_t *o, const char *key, const char *alt,
                           int required, int64_t lo, int64_t hi, int *out) {
    json_t *v = json_object_get(o, key);
    if ((!v || json_is_null(v)) && alt) v = json_object_get(o, alt);
    if (!v || json_is_null(v)) {
        if (required) return err_set(CLLM_ERR_FORMAT, "%s: missing '%s'", path, key);
        return CLLM_OK;
    }
    if (!json_is_integer(v))
        return err_set(CLLM_ERR_FORMAT, "%s: '%s' is not an integer", path, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return err_set(CLLM_ERR_FORMAT, "%s: '%s' = %lld out of range [%lld, %lld]", path, key,
                       (long long)x, (long long)lo, (long long)hi);
    *out = (int)x;
    return CLLM_OK;
}

static cllm_status get_num(const char *path, json_t *o, const char *key, const char *alt, double lo,
                           double hi, double *out) {
    json_t *v = json_object_get(o, key);
    if ((!v || json_is_null(v)) && alt) v = json_object_get(o, alt);
    if (!v || json_is_null(v)) return CLLM_OK;
    if (!json_is_number(v)) return err_set(CLLM_ERR_FORMAT, "%s: '%s' is not a number", path, key);
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi))
        return err_set(CLLM_ERR_FORMAT, "%s: '%s' = %g out of range [%g, %g]", path, key, x, lo,
                       hi);
    *out = x;
    return CLLM_OK;
}

static bool get_bool(json_t *o, const char *key, bool dflt) {
    json_t *v = json_object_get(o, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* eos_token_id: an integer or a list of integers. */
static cllm_status get_eos(const char *path, json_t *o, int vocab, model_config *c) {
    json_t *v = json_object_get(o, "eos_token_id");
    if (!v || json_is_null(v)) return CLLM_OK;
    int n = 0, ids[MODEL_MAX_EOS];
    if (json_is_integer(v)) {
        ids[n++] = (int)json_integer_value(v);
        if (json_integer_value(v) < 0 || json_integer_value(v) >= vocab) n = -1;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) >= vocab) {
                n = -1;
                break;
            }
            if (n < MODEL_MAX_EOS) ids[n++] = (int)json_integer_value(e);
        }
    } else {
        n = -1;
    }
    if (n < 0)
        return err_set(CLLM_ERR_FORMAT, "%s: bad 'eos_token_id' (need ids < vocab %d)", path,
                       vocab);
    memcpy(c->eos_ids, ids, sizeof(int) * (size_t)n);
    c->n_eos = n;
    return CLLM_OK;
}

static cllm_status parse_llama(const char *path, json_t *o, model_config *c) {
    cllm_status st;
    if ((st = get_int(path, o, "hidden_size", NULL, 1, 1, 1 << 16, &c->hidden)) ||
        (st = get_int(path, o, "num_hidden_layers", NULL, 1, 1, 1024, &c->n_layers)) ||
        (st = get_int(path, o, "num_attention_heads", NULL, 1, 1, 1024, &c->n_heads)) ||
        (st = get_int(path, o, "intermediate_size", NULL, 1, 1, 1 << 20, &c->intermediate)))
        return st;
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->hidden / c->n_heads;
    c->norm_eps = 1e-6f;
    double eps = c->norm_eps, theta = 10000.0;
    c->max_ctx = 2048;
    if ((st = get_int(path, o, "num_key_value_heads", NULL, 0, 1, 1024, &c->n_kv_heads)) ||
        (st = get_int(path, o, "head_dim", NULL, 0, 2, 1024, &c->head_dim)) ||
        (st = get_int(path, o, "max_position_embeddings", NULL, 0, 1, 1 << 24, &c->max_ctx)) ||
        (st = get_num(path, o, "rms_norm_eps", NULL, 0, 1, &eps)) ||
        (st = get_num(path, o, "rope_theta", NULL, 1, 1e12, &theta)))
        return st;
    c->norm_eps = (float)eps;
    c->rope_theta = theta;
    if (c->hidden % c->n_heads != 0 && !json_object_get(o, "head_dim"))
        return err_set(CLLM_ERR_FORMAT,
                       "%s: hidden_size %d not divisible by num_attention_heads %d", path,
                       c->hidden, c->n_heads);
    c->tied = get_bool(o, "tie_word_embeddings", false);
    bool attn_bias = get_bool(o, "attention_bias", false);
    c->qkv_bias = c->arch == ARCH_QWEN2 ? true : attn_bias;
    c->o_bias = c->arch == ARCH_QWEN2 ? false : attn_bias;
    c->mlp_bias = get_bool(o, "mlp_bias", false);
    json_t *act = json_object_get(o, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu") != 0))
        return err_set(CLLM_ERR_UNSUPPORTED, "%s: hidden_act '%s' not supported (only silu)", path,
                       json_is_string(act) ? json_string_value(act) : "?");
    if (c->arch == ARCH_MISTRAL ||
        (c->arch == ARCH_QWEN2 && get_bool(o, "use_sliding_window", false))) {
        json_t *sw = json_object_get(o, "sliding_window");
        if (json_is_integer(sw) && json_integer_value(sw) > 0 && json_integer_value(sw) < (1 << 30))
            c->sliding_window = (int)json_integer_value(sw);
    }
    json_t *rs = json_object_get(o, "rope_scaling");
    if (rs && !json_is_null(rs)) {
        if (!json_is_object(rs))
            return err_set(CLLM_ERR_FORMAT, "%s: 'rope_scaling' is not an object", path);
        json_t *ty = json_object_get(rs, "rope_type");
        if (!json_is_string(ty)) ty = json_object_get(rs, "type");
        const char *t = json_string_value(ty);
        if (!t) return err_set(CLLM_ERR_FORMAT, "%s: rope_scaling has no 'rope_type'", path);
        double f = 1.0;
        if ((st = get_num(path, rs, "factor", NULL, 1e-6, 1e6, &f))) return st;
        c->rope_factor = f;
        if (strcmp(t, "default") == 0) {
            c->rope_scaling = ROPE_SCALING_NONE;
        } else if (strcmp(t, "linear") == 0) {
            c->rope_scaling = ROPE_SCALING_LINEAR;
        } else if (strcmp(t, "llama3") == 0) {
            c->rope_scaling = ROPE_SCALING_LLAMA3;
            c->rope_low_freq = 1.0;
            c->rope_high_freq = 4.0;
            c->rope_orig_ctx = 8192;
            if ((st = get_num(path, rs, "low_freq_factor", NULL, 1e-6, 1e6, &c->rope_low_freq)) ||
                (st = get_num(path, rs, "high_freq_factor", NULL, 1e-6, 1e6, &c->rope_high_freq)) ||
                (st = get_int(path, rs, "original_max_position_embeddings", NULL, 0, 1, 1 << 24,
                              &c->rope_orig_ctx)))
                return st;
            if (c->rope_high_freq <= c->rope_low_freq)
                return err_set(CLLM_ERR_FORMAT,
                               "%s: rope_scaling high_freq_factor <= low_freq_factor", path);
        } else {
            return err_set(CLLM_ERR_UNSUPPORTED, "%s: rope_scaling type '%s' not supported", path,
                           t);
        }
    }
    return CLLM_OK;
}

static cllm_status parse_gpt2(const char *path, json_t *o, model_config *c) {
    cllm_status st;
    c->hidden = 768;
    c->n_layers = 12;
    c->n_heads = 12;
    c->max_ctx = 1024;
    double eps = 1e-5;
    if ((st = get_int(path, o, "n_embd", "hidden_size", 0, 1, 1 << 16, &c->hidden)) ||
        (st = get_int(path, o, "n_layer", "num_hidden_layers", 0, 1, 1024, &c->n_layers)) ||
        (st = get_int(path, o, "n_head", "num_attention_heads", 0, 1, 1024, &c->n_heads)) ||
        (st = get_int(path, o, "n_positions", "max_position_embeddings", 0, 1, 1 << 24,
                      &c->max_ctx)) ||
        (st = get_num(path, o, "layer_norm_epsilon", NULL, 0, 1, &eps)))
        return st;
    if (c->hidden % c->n_heads)
        return err_set(CLLM_ERR_FORMAT, "%s: n_embd %d not divisible by n_head %d", path, c->hidden,
                       c->n_heads);
    c->intermediate = 4 * c->hidden;
    json_t *ni = json_object_get(o, "n_inner");
    if (json_is_integer(ni)) {
        if (json_integer_value(ni) < 1 || json_integer_value(ni) > (1 << 20))
            return err_set(CLLM_ERR_FORMAT, "%s: 'n_inner' out of range", path);
        c->intermediate = (int)json_integer_value(ni);
    }
    json_t *act = json_object_get(o, "activation_function");
    if (act && json_is_string(act) && strcmp(json_string_value(act), "gelu_new") != 0 &&
        strcmp(json_string_value(act), "gelu_pytorch_tanh") != 0)
        return err_set(CLLM_ERR_UNSUPPORTED,
                       "%s: activation_function '%s' not supported (gelu_new)", path,
                       json_string_value(act));
    c->n_kv_heads = c->n_heads;
    c->head_dim = c->hidden / c->n_heads;
    c->norm_eps = (float)eps;
    c->tied = get_bool(o, "tie_word_embeddings", true);
    c->qkv_bias = c->o_bias = c->mlp_bias = true;
    return CLLM_OK;
}

cllm_status model_config_load(const char *dir, model_config *c) {
    memset(c, 0, sizeof *c);
    c->bos_id = -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (!file_exists(path))
        return err_set(CLLM_ERR_NOT_FOUND, "%s: not found (is '%s' a model folder?)", path, dir);
    json_error_t jerr;
    json_t *o = json_load_file(path, 0, &jerr);
    if (!o)
        return err_set(CLLM_ERR_FORMAT, "%s: not valid JSON: %s (line %d)", path, jerr.text,
                       jerr.line);
    cllm_status st = CLLM_OK;
    if (!json_is_object(o)) {
        st = err_set(CLLM_ERR_FORMAT, "%s: not a JSON object", path);
        goto done;
    }
    json_t *archs = json_object_get(o, "architectures");
    const char *a = json_string_value(json_array_get(archs, 0));
    if (!a) {
        const char *mt = json_string_value(json_object_get(o, "model_type"));
        a = !mt                      ? ""
            : !strcmp(mt, "llama")   ? "LlamaForCausalLM"
            : !strcmp(mt, "qwen2")   ? "Qwen2ForCausalLM"
            : !strcmp(mt, "mistral") ? "MistralForCausalLM"
            : !strcmp(mt, "gpt2")    ? "GPT2LMHeadModel"
                                     : mt;
    }
    snprintf(c->arch_name, sizeof c->arch_name, "%s", a);
    if (!strcmp(a, "LlamaForCausalLM"))
        c->arch = ARCH_LLAMA;
    else if (!strcmp(a, "Qwen2ForCausalLM"))
        c->arch = ARCH_QWEN2;
    else if (!strcmp(a, "MistralForCausalLM"))
        c->arch = ARCH_MISTRAL;
    else if (!strcmp(a, "GPT2LMHeadModel"))
        c->arch = ARCH_GPT2;
    else {
        st = err_set(CLLM_ERR_UNSUPPORTED,
                     "%s: architecture '%s' not supported (LlamaForCausalLM, Qwen2ForCausalLM, "
                     "MistralForCausalLM, GPT2LMHeadModel)",
                     path, *a ? a : "(none)");
        goto done;
    }
    if ((st = get_int(path, o, "vocab_size", NULL, c->arch != ARCH_GPT2, 1, 1 << 24, &c->vocab)))
        goto done;
    if (c->arch == ARCH_GPT2 && !c->vocab) c->vocab = 50257;
    st = c->arch == ARCH_GPT2 ? parse_gpt2(path, o, c) : parse_llama(path, o, c);
    if (st) goto done;
    if (c->n_kv_heads == 0) c->n_kv_heads = c->n_heads;
    if (c->head_dim == 0) c->head_dim = c->hidden / c->n_heads;
    if (c->n_heads % c->n_kv_heads) {
        st = err_set(CLLM_ERR_FORMAT,
                     "%s: num_attention_heads %d not a multiple of num_key_value_heads %d", path,
                     c->n_heads, c->n_kv_heads);
        goto done;
    }
    if (c->n_heads / c->n_kv_heads > 64) {
        st = err_set(CLLM_ERR_UNSUPPORTED, "%s: more than 64 query heads per KV head", path);
        goto done;
    }
    if (c->head_dim % 2 || c->head_dim > 1024) {
        st =
            err_set(CLLM_ERR_FORMAT, "%s: head_dim %d must be even and <= 1024", path, c->head_dim);
        goto done;
    }
    json_t *bos = json_object_get(o, "bos_token_id");
    if (json_is_integer(bos) && json_integer_value(bos) >= 0 && json_integer_value(bos) < c->vocab)
        c->bos_id = (int)json_integer_value(bos);
    if ((st = get_eos(path, o, c->vocab, c))) goto done;
    /* generation_config.json's eos_token_id takes precedence (Llama 3 lists several there) */
    snprintf(path, sizeof path, "%s/generation_config.json", dir);
    if (file_exists(path)) {
        json_t *g = json_load_file(path, 0, &jerr);
        if (!g || !json_is_object(g)) {
            json_decref(g);
            st = err_set(CLLM_ERR_FORMAT, "%s: not a valid JSON object", path);
            goto done;
        }
        st = get_eos(path, g, c->vocab, c);
        json_decref(g);
    }
done:
    json_decref(o);
    return st;
}
